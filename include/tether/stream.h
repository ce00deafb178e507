/* tether/stream.h — the transport: a connected byte stream on the loop. Every read, write,
 * sendfile, shutdown and close of a connection (server, client, bench) goes through here, and
 * so does the edge-triggered readiness bookkeeping: the loop ORs delivered bits into io.ready,
 * and the stream clears TT_READ / TT_WRITE when a call finds the socket drained or full. An
 * owner therefore asks tt_stream_can_read / tt_stream_can_write instead of tracking edges.
 *
 * A plain TCP stream is a tt_io plus one pointer (NULL), so embedding one costs 40 bytes. A TLS
 * stream (lib/tls, next) sets impl and plugs in behind the same calls: owners do not change.
 *
 * Results: bytes (> 0), 0 for end of stream on reads, or a negative errno: -EAGAIN when the call
 * would block (the matching readiness bit is then cleared and an edge will come), -EPIPE /
 * -ECONNRESET / ... when the connection failed. SIGPIPE is never raised. */
#ifndef TETHER_STREAM_H
#define TETHER_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buffer.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_stream tt_stream;

/* A stream, embedded in its owner (a connection). Zero-initialised means "not open". */
struct tt_stream {
    tt_io io;   /* the watcher: fd, interest, delivered readiness (io.ready), callback */
    void *impl; /* NULL: plain TCP; else the secure layer's state (first member: its ops) */
};

/* Operations of a non-plain stream (TLS); impl points to a struct whose first member is a
 * const tt_stream_ops *. A NULL entry means "not supported" (sendfile) or "nothing to do". */
typedef struct tt_stream_ops {
    const char *name; /* "tls" */
    int (*handshake)(tt_stream *s);
    ssize_t (*read)(tt_stream *s, void *buf, size_t len);
    ssize_t (*writev)(tt_stream *s, const struct iovec *iov, int iovcnt);
    ssize_t (*sendfile)(tt_stream *s, int fd, off_t *off, size_t len);
    int (*shutdown)(tt_stream *s);
    void (*free)(tt_stream *s); /* release impl (the fd is closed by the stream) */
    unsigned (*wants)(const tt_stream *s);
} tt_stream_ops;

/* Set in io.ready by the stream once a read returned end of stream (the loop never sets it). */
#define TT_STREAM_EOF 0x100u
/* Set in io.ready by a secure layer whose read waits for the socket to take output (TLS:
 * OpenSSL must send before it can read on): the read resumes on the next TT_WRITE edge, which
 * tt_stream_can_read then reports as input pending. */
#define TT_STREAM_RD_WANTS_WR 0x200u
/* The converse: a write that waits for input (TT_READ makes tt_stream_can_write true). */
#define TT_STREAM_WR_WANTS_RD 0x400u

/* Flags for tt_stream_close. */
enum {
    TT_STREAM_RESET = 1u,  /* abort: SO_LINGER 0, so the close sends RST and leaves no TIME_WAIT */
    TT_STREAM_SHARED = 2u, /* the fd may have been duplicated: deregister before closing */
};

/* Take ownership of socket fd and watch it edge-triggered for read and write on loop; cb gets
 * the stream's tt_io (io->data = data; the stream is the io's container). A connected socket
 * starts writable (TT_WRITE set in io.ready); a connecting one (tt_connect_start) starts with
 * nothing ready: its first write edge means the connect finished (tt_connect_result). 0 or
 * -errno (fd is then still the caller's). */
int tt_stream_open(tt_stream *s, tt_loop *loop, int fd, int connected, tt_io_cb cb, void *data);
/* The stream containing io (for tt_io_cb callbacks). */
static inline tt_stream *tt_stream_of(tt_io *io)
{
    return (tt_stream *)io; /* io is the first member */
}
/* The socket's fd, -1 when closed. */
static inline int tt_stream_fd(const tt_stream *s)
{
    return s->io.fd;
}
/* Nonzero while input may be pending (a read edge not yet drained to EAGAIN, or a FIN; TLS:
 * also decrypted bytes OpenSSL holds, and a read that waited for a write edge that came). */
static inline int tt_stream_can_read(const tt_stream *s)
{
    unsigned r = s->io.ready;
    return (r & (TT_READ | TT_RDHUP | TT_HUP | TT_ERROR)) != 0 ||
           ((r & TT_STREAM_RD_WANTS_WR) && (r & TT_WRITE));
}
/* Nonzero while the socket may accept output (no EAGAIN since the last write edge; TLS: or a
 * write that waited for a read edge that came). */
static inline int tt_stream_can_write(const tt_stream *s)
{
    unsigned r = s->io.ready;
    return (r & TT_WRITE) != 0 || ((r & TT_STREAM_WR_WANTS_RD) && (r & TT_READ));
}
/* Nonzero once the peer's FIN was signalled by the poller or read (bytes may still precede
 * it until tt_stream_eof). */
static inline int tt_stream_peer_fin(const tt_stream *s)
{
    return (s->io.ready & (TT_RDHUP | TT_HUP | TT_STREAM_EOF)) != 0;
}
/* Nonzero once a read returned end of stream: nothing more will arrive. */
static inline int tt_stream_eof(const tt_stream *s)
{
    return (s->io.ready & TT_STREAM_EOF) != 0;
}

/* Drive a secure layer's handshake: 0 done (always, for plain TCP), -EAGAIN in progress (wait
 * for tt_stream_wants), or -errno. */
int tt_stream_handshake(tt_stream *s);
/* The readiness (TT_READ/TT_WRITE) the stream waits for before a blocked call can progress;
 * 0 for plain TCP, where a read waits for TT_READ and a write for TT_WRITE. */
unsigned tt_stream_wants(const tt_stream *s);

/* Read at most len bytes. > 0 bytes, 0 end of stream, -EAGAIN, or -errno. A short read marks
 * the input drained (TT_READ cleared) unless the peer's FIN was signalled. */
ssize_t tt_stream_read(tt_stream *s, void *buf, size_t len);
/* Read once into b, reserving at least min_space (1 when 0). As tt_stream_read; -ENOMEM when
 * the pool cannot give a block. A buffer that held nothing and received nothing is left
 * holding nothing, so an idle owner stays buffer-free. */
ssize_t tt_stream_read_buf(tt_stream *s, tt_buf *b, tt_bufpool *pool, size_t min_space);
/* Write iovcnt buffers (one writev/sendmsg). Bytes written (maybe short), -EAGAIN or -errno. */
ssize_t tt_stream_writev(tt_stream *s, const struct iovec *iov, int iovcnt);
/* Write len bytes from buf. As tt_stream_writev. */
ssize_t tt_stream_write(tt_stream *s, const void *buf, size_t len);
/* Send up to len bytes of file fd from *off (advanced) with sendfile. Bytes sent, 0 when the
 * file ended early, -EAGAIN, -errno, or -EOPNOTSUPP when the stream cannot (TLS): then read
 * the file and tt_stream_write it. */
ssize_t tt_stream_sendfile(tt_stream *s, int fd, off_t *off, size_t len);
/* Half-close: no more output (TLS: close_notify, then FIN). Input may still be read. 0/-errno. */
int tt_stream_shutdown(tt_stream *s);
/* Stop watching and close the socket (flags: TT_STREAM_*). Without TT_STREAM_SHARED no
 * epoll_ctl is made: closing the last descriptor removes it from the poller. The stream is
 * zeroed but for io.fd = -1; safe on a stream that is not open. Returns close()'s 0/-errno. */
int tt_stream_close(tt_stream *s, tt_loop *loop, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
