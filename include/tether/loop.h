/* tether/loop.h — one event loop per thread: fd readiness, deferred callbacks, cross-thread
 * wake-ups, signals and a cached monotonic clock. Timers live in tether/timer.h.
 *
 * Readiness is EDGE-TRIGGERED by default: an fd is registered once with read and write
 * interest and never modified again (no epoll_ctl per request). The owner must therefore
 * consume until EAGAIN (or a short read on a stream socket) and, when it stops early on
 * purpose, remember that the fd is still ready (see tt_io.ready). TT_IO_LEVEL asks for
 * level-triggered instead (listeners that accept in bounded batches use it).
 *
 * In edge mode the interest set given to tt_io_start/tt_io_modify only masks which bits are
 * delivered (tt_io_modify costs no syscall); a write edge arrives after a write hit EAGAIN and
 * space freed up, so ask for TT_WRITE before relying on it. TT_HUP and TT_ERROR are always
 * delivered and come with the interest bits set, so a reader or writer finds the error through
 * its next call. The clock is CLOCK_MONOTONIC in milliseconds, read once per iteration right
 * after the poller returns (and before the wait when a timer bounds it). One iteration: wait
 * (bounded by the next timer; no wait if deferred callbacks are queued) -> refresh clock -> fd
 * callbacks -> due timers -> deferred callbacks queued before this step (ones queued meanwhile run
 * in the next iteration). */
#ifndef TETHER_LOOP_H
#define TETHER_LOOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_loop tt_loop;
typedef struct tt_io tt_io;
typedef struct tt_defer tt_defer;
typedef struct tt_async tt_async;

/* Readiness bits passed to tt_io_cb and asked for in tt_io_start. */
enum {
    TT_READ = 1u,   /* readable (or a pending accept) */
    TT_WRITE = 2u,  /* writable */
    TT_RDHUP = 4u,  /* peer sent FIN (EPOLLRDHUP); data may still be queued before it */
    TT_HUP = 8u,    /* both directions gone (EPOLLHUP) */
    TT_ERROR = 16u, /* socket error pending (EPOLLERR): read SO_ERROR or the next I/O call */
};

/* Registration flags for tt_io_start. */
enum {
    TT_IO_LEVEL = 1u, /* level-triggered instead of edge-triggered */
};

/* Called with the readiness bits that fired. The callback may stop or free its tt_io. */
typedef void (*tt_io_cb)(tt_loop *loop, tt_io *io, unsigned events);

/* An fd watcher, embedded in its owner; the loop keeps a pointer to it while started. */
struct tt_io {
    int fd;          /* the watched fd (not owned: tt_io_stop never closes it) */
    uint16_t events; /* interest bits as registered */
    uint16_t flags;  /* TT_IO_* plus internal state */
    uint16_t ready;  /* bits delivered so far, ORed in before each callback (0 at start); the
                        owner clears what it consumed up to EAGAIN, the loop never does */
    tt_io_cb cb;     /* readiness callback */
    void *data;      /* owner's pointer, untouched by the loop */
};

/* Create a loop (one per thread). Returns 0 or a negative errno; *out is owned by the caller. */
int tt_loop_new(tt_loop **out);
/* Free a loop. Watchers, timers and asyncs still registered are forgotten (fds not closed);
 * call after the last run, from the loop's thread. */
void tt_loop_free(tt_loop *loop);

/* Run iterations until tt_loop_stop (an idle loop waits; it does not return on its own).
 * Returns 0, or a negative errno if the poller failed. */
int tt_loop_run(tt_loop *loop);
/* One iteration: wait at most timeout_ms (-1: until a timer or event; 0: poll), run what
 * is due. Returns the number of fd callbacks called or a negative errno. Not reentrant. */
int tt_loop_run_once(tt_loop *loop, int timeout_ms);
/* Ask tt_loop_run to return after the current iteration. Loop thread only; from another
 * thread or a signal handler use a tt_async. */
void tt_loop_stop(tt_loop *loop);

/* Cached monotonic time in milliseconds, refreshed once per iteration (cheap: no syscall). */
uint64_t tt_loop_now(const tt_loop *loop);
/* Refresh the cached time now (after long work inside a callback). Returns the new value. */
uint64_t tt_loop_update_time(tt_loop *loop);

/* Start watching fd for events (TT_READ|TT_WRITE, TT_RDHUP is always reported) with flags
 * (TT_IO_*). io is owned by the caller and must outlive the registration. 0 or -errno. */
int tt_io_start(tt_loop *loop, tt_io *io, int fd, unsigned events, unsigned flags, tt_io_cb cb,
                void *data);
/* Change the interest set (mostly for level-triggered watchers). 0 or -errno. */
int tt_io_modify(tt_loop *loop, tt_io *io, unsigned events);
/* Stop watching; safe inside any callback, including io's own; io may be freed right after
 * (pending events of the current batch are dropped). Call before closing the fd. */
void tt_io_stop(tt_loop *loop, tt_io *io);
/* Stop watching io (if active) and close its fd, without an epoll_ctl: closing the last
 * descriptor of an open file removes it from epoll by itself. Only for fds that were never
 * duplicated (dup, fork, SCM_RIGHTS); sets io->fd to -1. Returns close()'s result (0/-errno). */
int tt_io_close(tt_loop *loop, tt_io *io);
/* Nonzero while io is registered with the loop. */
int tt_io_active(const tt_io *io);

/* A deferred callback, embedded in its owner: runs once in the current or next iteration,
 * after fd events and timers, in FIFO order. */
typedef void (*tt_defer_cb)(tt_loop *loop, tt_defer *d);
struct tt_defer {
    tt_defer *next; /* internal queue link */
    tt_defer_cb cb; /* set before tt_defer_queue */
    uint32_t queued;
};
/* Queue d (no-op if already queued). d must stay valid until it runs or is cancelled. */
void tt_defer_queue(tt_loop *loop, tt_defer *d, tt_defer_cb cb);
/* Remove d from the queue if queued. O(n) in the queue length; rare by design. */
void tt_defer_cancel(tt_loop *loop, tt_defer *d);

/* A cross-thread wake-up (eventfd-backed): tt_async_send from any thread or signal handler
 * makes cb run on the loop's thread. Several sends before it runs coalesce into one call. */
typedef void (*tt_async_cb)(tt_loop *loop, tt_async *a);
struct tt_async {
    tt_async *next;       /* internal list link */
    tt_async_cb cb;       /* runs on the loop thread */
    volatile int pending; /* set atomically by tt_async_send */
    tt_loop *loop;
    void *data; /* owner's pointer */
};
/* Attach a to loop (loop thread). a is owned by the caller and must stay valid, and no
 * tt_async_send may still be running or start, until tt_async_close. */
int tt_async_init(tt_loop *loop, tt_async *a, tt_async_cb cb, void *data);
/* Wake the loop and run a's callback there. Thread-safe and async-signal-safe. */
void tt_async_send(tt_async *a);
/* Detach a from its loop (loop thread). */
void tt_async_close(tt_async *a);

/* Deliver signo (e.g. SIGTERM) to cb on this loop through a signalfd. The signal is blocked
 * in the calling thread (and stays blocked after tt_loop_free); call before creating other
 * threads so they inherit the mask.
 * Returns 0 or -errno. At most 8 signals per loop. */
typedef void (*tt_signal_cb)(tt_loop *loop, int signo, void *data);
int tt_loop_on_signal(tt_loop *loop, int signo, tt_signal_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif
