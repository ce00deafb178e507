/* close_floor_uring.c — close_floor.c on io_uring: what the Connection: close row could cost if
 * accept, recv, send and close did not each need a syscall. Needs liburing (Debian:
 * liburing-dev); not built by make.
 *
 *     gcc -O2 -o close_floor_uring bench/peers/close_floor_uring.c -luring
 *     ./close_floor_uring PORT client-first|server-first
 *
 * One multishot accept; per connection a recv, then a send linked to either a recv that waits
 * for the client's FIN (client-first) or a close (server-first); everything is submitted and
 * reaped in batches by one io_uring_enter per loop turn. TCP_DEFER_ACCEPT as in close_floor.c.
 * Like it, it parses nothing and has no timeouts: a yardstick, never a server to copy. */
#define _GNU_SOURCE
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                           "Connection: close\r\n\r\nHello, World!";

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_EOF, OP_CLOSE, MAX_FD = 65536 };
#define UD(op, fd) (((uint64_t)(op) << 32) | (uint32_t)(fd))

static char bufs[MAX_FD][512];
static struct io_uring ring;

static struct io_uring_sqe *sqe(int op, int fd)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) { /* submission queue full: hand it to the kernel first */
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    io_uring_sqe_set_data64(s, UD(op, fd));
    return s;
}

static void arm_accept(int l)
{
    struct io_uring_sqe *s = sqe(OP_ACCEPT, l);
    io_uring_prep_multishot_accept(s, l, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, UD(OP_ACCEPT, l));
}

static void close_fd(int fd)
{
    struct io_uring_sqe *s = sqe(OP_CLOSE, fd);
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data64(s, UD(OP_CLOSE, fd));
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "client-first") && strcmp(argv[2], "server-first"))) {
        fprintf(stderr, "usage: close_floor_uring PORT client-first|server-first\n");
        return 2;
    }
    int server_first = !strcmp(argv[2], "server-first");
    int one = 1, defer = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4096) < 0) {
        perror("listen");
        return 1;
    }
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
        memset(&p, 0, sizeof p); /* older kernels: plain setup */
        int r = io_uring_queue_init_params(4096, &ring, &p);
        if (r < 0) {
            fprintf(stderr, "io_uring: %s\n", strerror(-r));
            return 1;
        }
    }
    arm_accept(l);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            n++;
            int op = (int)(cqe->user_data >> 32), fd = (int)(uint32_t)cqe->user_data;
            int res = cqe->res;
            struct io_uring_sqe *s;
            switch (op) {
            case OP_ACCEPT:
                if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(l); /* the multishot ended */
                if (res < 0) break;
                if (res >= MAX_FD) {
                    close_fd(res);
                    break;
                }
                s = sqe(OP_RECV, res);
                io_uring_prep_recv(s, res, bufs[res], sizeof bufs[res], 0);
                break;
            case OP_RECV:
                if (res <= 0) {
                    close_fd(fd);
                    break;
                }
                s = sqe(OP_SEND, fd); /* completes silently unless it fails */
                io_uring_prep_send(s, fd, RESP, sizeof RESP - 1, MSG_NOSIGNAL);
                s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
                if (server_first) {
                    close_fd(fd);
                } else {
                    s = sqe(OP_EOF, fd);
                    io_uring_prep_recv(s, fd, bufs[fd], sizeof bufs[fd], 0);
                }
                break;
            case OP_SEND: /* the send failed: a linked close was cancelled with it */
                if (server_first) close_fd(fd);
                break;
            case OP_EOF: /* the client's FIN (or an error, or a failed send cancelled it) */
                close_fd(fd);
                break;
            default: break;
            }
        }
        io_uring_cq_advance(&ring, n);
    }
}
