/* close_floor.c — the floor for the Connection: close row: the fewest syscalls one connection
 * can cost with each way of closing, so that servers are compared with what their design allows.
 *
 *     gcc -O2 -o close_floor bench/peers/close_floor.c && ./close_floor PORT MODE
 *
 * MODE client-first: answer, then wait for the client's FIN and close (TIME_WAIT on the client:
 *                    what tether does);
 * MODE server-first: answer and close at once (TIME_WAIT on the server: what nginx and h2o do).
 * Both use TCP_DEFER_ACCEPT, read the request right after accept4 and write one fixed response.
 * It parses nothing (one read is assumed to hold the request) and has no timeouts: a yardstick
 * for CPU per connection, never a server to copy. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                           "Connection: close\r\n\r\nHello, World!";

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "client-first") && strcmp(argv[2], "server-first"))) {
        fprintf(stderr, "usage: close_floor PORT client-first|server-first\n");
        return 2;
    }
    int server_first = !strcmp(argv[2], "server-first");
    int one = 1, defer = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4096) < 0) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != l) { /* client-first: read the FIN (EOF), then close */
                if (recv(fd, buf, sizeof buf, 0) < 0 && errno == EAGAIN) continue;
                close(fd);
                continue;
            }
            int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); /* one per event */
            if (c < 0) continue;
            if (recv(c, buf, sizeof buf, 0) <= 0 ||
                send(c, RESP, sizeof RESP - 1, MSG_NOSIGNAL) < 0 || server_first) {
                close(c);
                continue;
            }
            struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) < 0) close(c);
        }
    }
}
