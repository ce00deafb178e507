/* proxy_floor: the least a keep-alive reverse proxy can do on Linux, the yardstick for
 * `tether proxy` as floor.c is for the server. One epoll loop (level-triggered, one recv per
 * readiness); each client connection gets its own upstream connection, opened at accept and
 * kept; the bytes are relayed unchanged both ways (no parsing, no header rewriting), so a
 * keep-alive request costs exactly one recv and one send per leg: 4 syscalls plus a share of
 * epoll_wait. Not a proxy: a probe (no partial-write handling, no errors beyond closing).
 * Usage: proxy_floor LISTEN_PORT UPSTREAM_PORT (both on 127.0.0.1). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAXEV = 256, BUF = 65536 };

static struct sockaddr_in addr(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    return a;
}

/* epoll data: this fd in the low half, its partner in the high half */
static void watch(int ep, int fd, int peer)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                             .data.u64 = (uint32_t)fd | (uint64_t)(uint32_t)peer << 32};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: proxy_floor LISTEN_PORT UPSTREAM_PORT\n");
        return 2;
    }
    struct sockaddr_in la = addr(atoi(argv[1])), ua = addr(atoi(argv[2]));
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (void *)&la, sizeof la) || listen(ls, 4096)) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint32_t)ls}, evs[MAXEV];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static char buf[BUF];
    for (;;) {
        int n = epoll_wait(ep, evs, MAXEV, -1);
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64, peer = (int)(evs[i].data.u64 >> 32);
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int u = socket(AF_INET, SOCK_STREAM, 0); /* blocking connect: loopback */
                    if (u < 0 || connect(u, (void *)&ua, sizeof ua)) {
                        if (u >= 0) close(u);
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    watch(ep, c, u);
                    watch(ep, u, c);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0 && send(peer, buf, (size_t)r, MSG_NOSIGNAL) == r) continue;
            if (r < 0) continue; /* EAGAIN after an event of the pair's other half */
            close(fd); /* the partner's later events find a closed fd: recv fails, ignored */
            close(peer);
        }
    }
}
