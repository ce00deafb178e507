/* test_stream.c — the transport: reads and writes keep the edge-triggered readiness bits
 * honest (EAGAIN and short reads clear them, a FIN keeps reading on, EOF is remembered),
 * buffers stay empty when nothing arrives, sendfile, half-close, reset, and a non-plain stream
 * dispatching through its ops (sendfile unsupported: -EOPNOTSUPP; free on close). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether/loop.h"
#include "tether/socket.h"
#include "tether/stream.h"

static void nop_cb(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)loop;
    (void)io;
    (void)ev;
}

/* A connected TCP pair on loopback: *a is ours (non-blocking), *b the peer (blocking). */
static void tcp_pair(int *a, int *b)
{
    tt_addr addr;
    cr_assert_eq(tt_addr_parse(&addr, "127.0.0.1:0"), 0);
    int l = tt_listen(&addr, NULL);
    cr_assert_geq(l, 0);
    cr_assert_eq(tt_sock_local(l, &addr), 0);
    *b = tt_connect_timeout(&addr, 2000);
    cr_assert_geq(*b, 0);
    int fl = fcntl(*b, F_GETFL);
    fcntl(*b, F_SETFL, fl & ~O_NONBLOCK);
    for (int i = 0; i < 200 && (*a = tt_accept(l, NULL)) == -EAGAIN; i++)
        usleep(5000);
    cr_assert_geq(*a, 0);
    close(l);
}

Test(stream, readiness_bits_follow_reads_and_writes)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    int a, b;
    tcp_pair(&a, &b);
    tt_stream s = {0};
    cr_assert_eq(tt_stream_open(&s, loop, a, 1, nop_cb, NULL), 0);
    cr_assert_eq(tt_stream_fd(&s), a);
    cr_assert(tt_stream_can_write(&s), "a connected stream starts writable");
    cr_assert(!tt_stream_can_read(&s));
    char buf[64];
    cr_assert_eq(tt_stream_read(&s, buf, sizeof buf), -EAGAIN);

    cr_assert_eq(write(b, "hello", 5), 5);
    tt_loop_run_once(loop, 1000);
    cr_assert(tt_stream_can_read(&s), "the loop ORs the read edge into io.ready");
    cr_assert_eq(tt_stream_read(&s, buf, sizeof buf), 5);
    cr_assert(!tt_stream_can_read(&s), "a short read means drained");
    cr_assert_eq(memcmp(buf, "hello", 5), 0);

    struct iovec v[2] = {{"ab", 2}, {"cd", 2}};
    cr_assert_eq(tt_stream_writev(&s, v, 2), 4);
    cr_assert_eq(tt_stream_write(&s, "e", 1), 1);
    cr_assert_eq(read(b, buf, 5), 5);
    cr_assert_eq(memcmp(buf, "abcde", 5), 0);

    /* Fill the socket until EAGAIN: the write bit clears, and comes back with the next edge. */
    static char big[1 << 16];
    ssize_t n;
    size_t sent = 0;
    while ((n = tt_stream_write(&s, big, sizeof big)) > 0)
        sent += (size_t)n;
    cr_assert_eq(n, -EAGAIN);
    cr_assert(!tt_stream_can_write(&s));
    while (sent) {
        n = read(b, big, sizeof big);
        cr_assert_gt(n, 0);
        sent -= (size_t)n;
    }
    for (int i = 0; i < 50 && !tt_stream_can_write(&s); i++)
        tt_loop_run_once(loop, 100);
    cr_assert(tt_stream_can_write(&s));

    /* FIN: bytes before it are read, then EOF is remembered. */
    cr_assert_eq(write(b, "xy", 2), 2);
    shutdown(b, SHUT_WR);
    for (int i = 0; i < 50 && !tt_stream_peer_fin(&s); i++)
        tt_loop_run_once(loop, 100);
    cr_assert(tt_stream_peer_fin(&s));
    cr_assert_eq(tt_stream_read(&s, buf, sizeof buf), 2);
    cr_assert(tt_stream_can_read(&s), "after a FIN a short read does not mean drained");
    cr_assert(!tt_stream_eof(&s));
    cr_assert_eq(tt_stream_read(&s, buf, sizeof buf), 0);
    cr_assert(tt_stream_eof(&s));
    cr_assert(!tt_stream_can_read(&s));

    cr_assert_eq(tt_stream_shutdown(&s), 0);
    cr_assert_eq(read(b, buf, sizeof buf), 0, "our half-close reaches the peer as EOF");
    cr_assert_eq(tt_stream_close(&s, loop, 0), 0);
    cr_assert_eq(tt_stream_fd(&s), -1);
    cr_assert_eq(tt_stream_close(&s, loop, 0), 0, "closing twice is harmless");
    close(b);
    tt_loop_free(loop);
}

Test(stream, read_buf_holds_nothing_when_nothing_arrives)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    tt_bufpool *pool = tt_bufpool_new(0, 0);
    int a, b;
    tcp_pair(&a, &b);
    tt_stream s = {0};
    cr_assert_eq(tt_stream_open(&s, loop, a, 1, nop_cb, NULL), 0);
    tt_buf rb = {0};
    cr_assert_eq(tt_stream_read_buf(&s, &rb, pool, 0), -EAGAIN);
    cr_assert_null(rb.data);
    cr_assert_eq(tt_bufpool_in_use(pool), 0);
    cr_assert_eq(write(b, "abc", 3), 3);
    usleep(10000);
    cr_assert_eq(tt_stream_read_buf(&s, &rb, pool, 0), 3);
    cr_assert_eq(rb.len, 3);
    tt_buf_release(&rb, pool);
    tt_stream_close(&s, loop, 0);
    close(b);
    tt_bufpool_free(pool);
    tt_loop_free(loop);
}

Test(stream, sendfile_and_reset)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    int a, b;
    tcp_pair(&a, &b);
    tt_stream s = {0};
    cr_assert_eq(tt_stream_open(&s, loop, a, 1, nop_cb, NULL), 0);
    char path[] = "/tmp/tt_stream_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    cr_assert_eq(write(fd, "0123456789", 10), 10);
    off_t off = 2;
    cr_assert_eq(tt_stream_sendfile(&s, fd, &off, 5), 5);
    cr_assert_eq(off, 7);
    off = 10;
    cr_assert_eq(tt_stream_sendfile(&s, fd, &off, 5), 0, "the file ended");
    char buf[16];
    cr_assert_eq(read(b, buf, 5), 5);
    cr_assert_eq(memcmp(buf, "23456", 5), 0);
    close(fd);
    cr_assert_eq(tt_stream_close(&s, loop, TT_STREAM_RESET), 0);
    cr_assert_eq(read(b, buf, sizeof buf), -1);
    cr_assert_eq(errno, ECONNRESET, "TT_STREAM_RESET aborts with RST");
    close(b);
    tt_loop_free(loop);
}

/* A non-plain stream: XOR every byte with 0x20, no sendfile, counts its calls. */
typedef struct xor_impl {
    const tt_stream_ops *ops;
    int frees, shutdowns;
} xor_impl;

static ssize_t xor_read(tt_stream *s, void *buf, size_t len)
{
    ssize_t n = recv(s->io.fd, buf, len, 0);
    if (n < 0) return -errno;
    for (ssize_t i = 0; i < n; i++)
        ((char *)buf)[i] ^= 0x20;
    return n;
}

static ssize_t xor_writev(tt_stream *s, const struct iovec *iov, int iovcnt)
{
    char tmp[256];
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++)
        for (size_t k = 0; k < iov[i].iov_len && n < sizeof tmp; k++)
            tmp[n++] = (char)(((const char *)iov[i].iov_base)[k] ^ 0x20);
    ssize_t r = send(s->io.fd, tmp, n, MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

static int xor_shutdown(tt_stream *s)
{
    ((xor_impl *)s->impl)->shutdowns++;
    return 0;
}

static void xor_free(tt_stream *s)
{
    ((xor_impl *)s->impl)->frees++;
}

static const tt_stream_ops xor_ops = {.name = "xor",
                                      .read = xor_read,
                                      .writev = xor_writev,
                                      .shutdown = xor_shutdown,
                                      .free = xor_free};

Test(stream, ops_dispatch)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    int a, b;
    tcp_pair(&a, &b);
    tt_stream s = {0};
    cr_assert_eq(tt_stream_open(&s, loop, a, 1, nop_cb, NULL), 0);
    xor_impl x = {&xor_ops, 0, 0};
    s.impl = &x;
    cr_assert_eq(tt_stream_handshake(&s), 0, "no handshake op: nothing to do");
    cr_assert_eq(tt_stream_wants(&s), 0);
    cr_assert_eq(tt_stream_write(&s, "abc", 3), 3);
    char buf[8];
    cr_assert_eq(read(b, buf, 3), 3);
    cr_assert_eq(memcmp(buf, "ABC", 3), 0);
    cr_assert_eq(write(b, "XYZ", 3), 3);
    usleep(10000);
    cr_assert_eq(tt_stream_read(&s, buf, sizeof buf), 3);
    cr_assert_eq(memcmp(buf, "xyz", 3), 0);
    off_t off = 0;
    cr_assert_eq(tt_stream_sendfile(&s, 0, &off, 1), -EOPNOTSUPP);
    cr_assert_eq(tt_stream_shutdown(&s), 0);
    cr_assert_eq(x.shutdowns, 1);
    cr_assert_eq(tt_stream_close(&s, loop, 0), 0);
    cr_assert_eq(x.frees, 1);
    cr_assert_null(s.impl);
    close(b);
    tt_loop_free(loop);
}
