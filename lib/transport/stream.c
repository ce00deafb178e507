/* stream.c — the transport: the only code that reads, writes, sends files on, shuts down and
 * closes connected sockets, and the one place that keeps the edge-triggered readiness bits
 * (io.ready) honest. Plain TCP is inline here; a secure layer plugs in through tt_stream_ops. */
#include <errno.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/api.h"
#include "tether/socket.h"
#include "tether/stream.h"

#define OPS(s) (*(const tt_stream_ops *const *)(s)->impl)

TT_API int tt_stream_open(tt_stream *s, tt_loop *loop, int fd, int connected, tt_io_cb cb,
                          void *data)
{
    s->impl = NULL;
    s->io.ready = 0;
    int r = tt_io_start(loop, &s->io, fd, TT_READ | TT_WRITE, 0, cb, data);
    if (r < 0) return r;
    if (connected) s->io.ready |= TT_WRITE;
    return 0;
}

TT_API int tt_stream_handshake(tt_stream *s)
{
    if (!s->impl || !OPS(s)->handshake) return 0;
    return OPS(s)->handshake(s);
}

TT_API unsigned tt_stream_wants(const tt_stream *s)
{
    if (!s->impl || !OPS(s)->wants) return 0;
    return OPS(s)->wants(s);
}

/* Bookkeeping after a read of want bytes returned n (or -errno). */
static ssize_t read_done(tt_stream *s, ssize_t n, size_t want)
{
    if (n > 0) {
        /* A short read drained the socket (stream sockets fill what they can), unless a FIN
         * was signalled: then read on until EOF, since that edge will not come again. */
        if ((size_t)n < want && !(s->io.ready & (TT_RDHUP | TT_HUP)))
            s->io.ready &= (uint16_t)~TT_READ;
        return n;
    }
    if (n == 0) {
        s->io.ready = (uint16_t)((s->io.ready & ~(TT_READ | TT_RDHUP)) | TT_STREAM_EOF);
        return 0;
    }
    if (n == -EAGAIN) s->io.ready &= (uint16_t) ~(TT_READ | TT_RDHUP);
    return n;
}

TT_API ssize_t tt_stream_read(tt_stream *s, void *buf, size_t len)
{
    ssize_t n;
    if (s->impl) {
        /* A secure layer keeps TT_READ itself: a short read of decrypted bytes does not mean
         * the socket is drained (OpenSSL may hold more). */
        n = OPS(s)->read(s, buf, len);
        if (n == 0) return read_done(s, 0, len);
        return n;
    } else {
        do
            n = recv(s->io.fd, buf, len, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return read_done(s, n, len);
}

TT_API ssize_t tt_stream_read_buf(tt_stream *s, tt_buf *b, tt_bufpool *pool, size_t min_space)
{
    int held = b->data != NULL;
    char *dst = tt_buf_reserve(b, pool, min_space ? min_space : 1);
    if (!dst) return -ENOMEM;
    ssize_t n = tt_stream_read(s, dst, tt_buf_space(b));
    if (n > 0) {
        tt_buf_commit(b, (size_t)n);
        return n;
    }
    if (!held && !b->len)
        tt_buf_release(b, pool); /* nothing arrived: an idle owner keeps holding no memory */
    return n;
}

/* Bookkeeping after a write: EAGAIN clears the write bit until the next edge. */
static ssize_t write_done(tt_stream *s, ssize_t n)
{
    if (n == -EAGAIN) s->io.ready &= (uint16_t)~TT_WRITE;
    return n;
}

TT_API ssize_t tt_stream_writev(tt_stream *s, const struct iovec *iov, int iovcnt)
{
    ssize_t n;
    if (s->impl) return write_done(s, OPS(s)->writev(s, iov, iovcnt));
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    do
        n = sendmsg(s->io.fd, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return write_done(s, n);
}

TT_API ssize_t tt_stream_write(tt_stream *s, const void *buf, size_t len)
{
    ssize_t n;
    if (s->impl) {
        struct iovec v = {(void *)buf, len};
        return write_done(s, OPS(s)->writev(s, &v, 1));
    }
    do
        n = send(s->io.fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return write_done(s, n);
}

TT_API ssize_t tt_stream_sendfile(tt_stream *s, int fd, off_t *off, size_t len)
{
    ssize_t n;
    if (s->impl) {
        if (!OPS(s)->sendfile) return -EOPNOTSUPP;
        return write_done(s, OPS(s)->sendfile(s, fd, off, len));
    }
    if (len > (1u << 30)) len = 1u << 30;
    do
        n = sendfile(s->io.fd, fd, off, len);
    while (n < 0 && errno == EINTR);
    if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return write_done(s, n);
}

TT_API int tt_stream_shutdown(tt_stream *s)
{
    if (s->impl && OPS(s)->shutdown) {
        int r = OPS(s)->shutdown(s);
        if (r < 0 && r != -EAGAIN) return r;
    }
    return shutdown(s->io.fd, SHUT_WR) < 0 ? -errno : 0;
}

TT_API int tt_stream_close(tt_stream *s, tt_loop *loop, unsigned flags)
{
    if (s->impl) {
        if (OPS(s)->free) OPS(s)->free(s);
        s->impl = NULL;
    }
    if (s->io.fd < 0) return 0;
    if (flags & TT_STREAM_RESET) tt_sock_linger_reset(s->io.fd);
    if (flags & TT_STREAM_SHARED) tt_io_stop(loop, &s->io);
    int r = tt_io_close(loop, &s->io);
    s->io.ready = 0;
    return r;
}

/* The public buffer helper (tether/buffer.h) for any fd, pipes included; it lives here so that
 * reads of sockets stay in the transport. */
TT_API ssize_t tt_buf_read_fd(tt_buf *b, tt_bufpool *pool, int fd, size_t min_space)
{
    int held = b->data != NULL;
    char *dst = tt_buf_reserve(b, pool, min_space ? min_space : 1);
    if (!dst) return -ENOMEM;
    ssize_t n;
    do
        n = read(fd, dst, tt_buf_space(b)); /* any fd (pipes included), not only sockets */
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        tt_buf_commit(b, (size_t)n);
        return n;
    }
    if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (!held && !b->len) tt_buf_release(b, pool);
    return n;
}
