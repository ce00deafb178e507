/* loop.c — the event loop: poller, cached clock, timer wheel, deferred callbacks, async wake-ups
 * and signals. One iteration (tt_loop_run_once):
 *   1. timeout = 0 if deferred callbacks are queued, else min(caller's, next timer deadline - now)
 *   2. wait for readiness (epoll_wait)
 *   3. refresh the cached clock (CLOCK_MONOTONIC, ms) — once per iteration
 *   4. dispatch fd events in the order the poller returned them
 *   5. fire due timers (earliest first)
 *   6. run the deferred callbacks queued before this step, FIFO; ones queued while they run wait
 *      for the next iteration (whose wait then does not block)
 * Async wake-ups and signals arrive as fd events on an eventfd and a signalfd (step 4). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/api.h"
#include "common/poller.h"
#include "common/timerwheel.h"
#include "tether/loop.h"
#include "tether/timer.h"

#define TT__IO_ACTIVE   0x100u
#define TT__MAX_EVENTS  256
#define TT__MAX_SIGNALS 8

struct tt_loop {
    tt__poller poller;
    uint64_t now;
    int stop;
    /* the batch being dispatched: tt_io_stop nulls later entries that point at the stopped io */
    int batch_n, batch_i;
    tt__pevent batch[TT__MAX_EVENTS];
    tt_defer *defer_head, **defer_tail;
    tt_defer *defer_run; /* the batch being run by run_defers */
    /* async: one eventfd per loop */
    int efd;
    tt_io eio;
    tt_async *asyncs;
    tt_async *async_next; /* the next async of a running dispatch (tt_async_close adjusts it) */
    /* signals: one signalfd per loop */
    int sfd;
    tt_io sio;
    sigset_t sigmask;
    int nsig;
    struct {
        int signo;
        tt_signal_cb cb;
        void *data;
    } sigs[TT__MAX_SIGNALS];
    tt__wheel wheel;
};

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void async_ready(tt_loop *loop, tt_io *io, unsigned events);

TT_API int tt_loop_new(tt_loop **out)
{
    tt_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) return -ENOMEM;
    int r = tt__poller_open(&loop->poller, TT__MAX_EVENTS);
    if (r < 0) {
        free(loop);
        return r;
    }
    loop->now = clock_ms();
    tt__wheel_init(&loop->wheel, loop->now);
    loop->defer_tail = &loop->defer_head;
    loop->sfd = -1;
    sigemptyset(&loop->sigmask);
    loop->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->efd < 0) {
        r = -errno;
        tt__poller_close(&loop->poller);
        free(loop);
        return r;
    }
    r = tt_io_start(loop, &loop->eio, loop->efd, TT_READ, TT_IO_LEVEL, async_ready, NULL);
    if (r < 0) {
        close(loop->efd);
        tt__poller_close(&loop->poller);
        free(loop);
        return r;
    }
    *out = loop;
    return 0;
}

TT_API void tt_loop_free(tt_loop *loop)
{
    if (!loop) return;
    if (loop->sfd >= 0) close(loop->sfd);
    close(loop->efd);
    tt__poller_close(&loop->poller);
    free(loop);
}

TT_API uint64_t tt_loop_now(const tt_loop *loop)
{
    return loop->now;
}

TT_API uint64_t tt_loop_update_time(tt_loop *loop)
{
    uint64_t t = clock_ms();
    if (t > loop->now) loop->now = t;
    return loop->now;
}

TT_API void tt_loop_stop(tt_loop *loop)
{
    loop->stop = 1;
}

/* ---- fd watchers ---- */

TT_API int tt_io_start(tt_loop *loop, tt_io *io, int fd, unsigned events, unsigned flags,
                       tt_io_cb cb, void *data)
{
    if (fd < 0 || !cb) return -EINVAL;
    if (io->flags & TT__IO_ACTIVE) return -EBUSY;
    io->fd = fd;
    io->events = (uint16_t)(events & (TT_READ | TT_WRITE));
    io->flags = (uint16_t)(flags & TT_IO_LEVEL);
    io->ready = 0;
    io->cb = cb;
    io->data = data;
    int r;
    if (flags & TT_IO_LEVEL)
        r = tt__poller_add(&loop->poller, fd, io->events, 0, io);
    else /* edge-triggered: both directions, once; the interest set only masks delivery */
        r = tt__poller_add(&loop->poller, fd, TT_READ | TT_WRITE, 1, io);
    if (r < 0) return r;
    io->flags |= TT__IO_ACTIVE;
    return 0;
}

TT_API int tt_io_modify(tt_loop *loop, tt_io *io, unsigned events)
{
    if (!(io->flags & TT__IO_ACTIVE)) return -EINVAL;
    events &= TT_READ | TT_WRITE;
    if (events == io->events) return 0;
    if (io->flags & TT_IO_LEVEL) {
        int r = tt__poller_mod(&loop->poller, io->fd, events, 0, io);
        if (r < 0) return r;
    }
    io->events = (uint16_t)events;
    return 0;
}

/* Mark io inactive. The owner may free io as soon as a stop returns: forget it in the rest of
 * the current batch. */
static void io_forget(tt_loop *loop, tt_io *io)
{
    io->flags &= (uint16_t)~TT__IO_ACTIVE;
    for (int i = loop->batch_i + 1; i < loop->batch_n; i++)
        if (loop->batch[i].ptr == io) loop->batch[i].ptr = NULL;
}

TT_API void tt_io_stop(tt_loop *loop, tt_io *io)
{
    if (!(io->flags & TT__IO_ACTIVE)) return;
    tt__poller_del(&loop->poller, io->fd); /* fails only if the fd was closed first: harmless */
    io_forget(loop, io);
}

TT_API int tt_io_close(tt_loop *loop, tt_io *io)
{
    if (io->flags & TT__IO_ACTIVE) io_forget(loop, io);
    int r = io->fd >= 0 ? close(io->fd) : 0;
    io->fd = -1;
    return r < 0 ? -errno : 0;
}

TT_API int tt_io_active(const tt_io *io)
{
    return (io->flags & TT__IO_ACTIVE) != 0;
}

/* ---- deferred callbacks ---- */

TT_API void tt_defer_queue(tt_loop *loop, tt_defer *d, tt_defer_cb cb)
{
    if (d->queued) return;
    d->cb = cb;
    d->next = NULL;
    d->queued = 1;
    *loop->defer_tail = d;
    loop->defer_tail = &d->next;
}

/* Unlink d from the singly-linked list at *pp; returns nonzero if it was there. */
static int defer_unlink(tt_defer **pp, tt_defer ***tail, tt_defer *d)
{
    for (; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            if (tail && *tail == &d->next) *tail = pp;
            return 1;
        }
    }
    return 0;
}

TT_API void tt_defer_cancel(tt_loop *loop, tt_defer *d)
{
    if (!d->queued) return;
    if (!defer_unlink(&loop->defer_head, &loop->defer_tail, d))
        defer_unlink(&loop->defer_run, NULL, d);
    d->next = NULL;
    d->queued = 0;
}

/* Run the callbacks queued so far (detached as one batch); those queued meanwhile wait for the
 * next iteration, so a callback that re-queues itself cannot starve fd events. */
static void run_defers(tt_loop *loop)
{
    loop->defer_run = loop->defer_head;
    loop->defer_head = NULL;
    loop->defer_tail = &loop->defer_head;
    while (loop->defer_run) {
        tt_defer *d = loop->defer_run;
        loop->defer_run = d->next;
        d->next = NULL;
        d->queued = 0;
        d->cb(loop, d);
    }
}

/* ---- timers ---- */

static void fire_timer(tt_timer *t, void *arg)
{
    t->cb((tt_loop *)arg, t);
}

TT_API void tt_timer_start(tt_loop *loop, tt_timer *t, uint64_t delay_ms)
{
    uint64_t at = loop->now + delay_ms;
    if (at < loop->now) at = UINT64_MAX;
    tt__wheel_add(&loop->wheel, t, at);
}

TT_API void tt_timer_start_at(tt_loop *loop, tt_timer *t, uint64_t at)
{
    tt__wheel_add(&loop->wheel, t, at);
}

TT_API void tt_timer_stop(tt_loop *loop, tt_timer *t)
{
    tt__wheel_del(&loop->wheel, t);
}

/* ---- one iteration ---- */

TT_API int tt_loop_run_once(tt_loop *loop, int timeout_ms)
{
    int timeout = timeout_ms;
    if (loop->defer_head) {
        timeout = 0;
    } else if (timeout != 0) {
        uint64_t next = tt__wheel_next_deadline(&loop->wheel);
        if (next != UINT64_MAX) {
            uint64_t now = tt_loop_update_time(loop);
            uint64_t d = next > now ? next - now : 0;
            if (d > INT32_MAX) d = INT32_MAX;
            if (timeout < 0 || (uint64_t)timeout > d) timeout = (int)d;
        }
    }
    int n = tt__poller_wait(&loop->poller, loop->batch, timeout);
    tt_loop_update_time(loop);
    if (n < 0) return n;
    loop->batch_n = n;
    int handled = 0;
    for (loop->batch_i = 0; loop->batch_i < n; loop->batch_i++) {
        tt_io *io = loop->batch[loop->batch_i].ptr;
        if (!io) continue; /* stopped by an earlier callback of this batch */
        unsigned ev = loop->batch[loop->batch_i].events;
        if (ev & (TT_HUP | TT_ERROR))
            ev |= io->events; /* let a reader or writer find out through its next call */
        ev &= io->events | TT_RDHUP | TT_HUP | TT_ERROR;
        if (ev) {
            handled++;
            io->ready |= (uint16_t)ev;
            io->cb(loop, io, ev);
        }
    }
    loop->batch_n = 0;
    loop->batch_i = 0;
    tt__wheel_run(&loop->wheel, loop->now, fire_timer, loop);
    if (loop->defer_head) run_defers(loop);
    return handled;
}

TT_API int tt_loop_run(tt_loop *loop)
{
    int r = 0;
    while (!loop->stop) {
        r = tt_loop_run_once(loop, -1);
        if (r < 0) break;
    }
    loop->stop = 0;
    return r < 0 ? r : 0;
}

/* ---- async ---- */

static void async_ready(tt_loop *loop, tt_io *io, unsigned events)
{
    uint64_t v;
    while (read(loop->efd, &v, sizeof(v)) > 0) {
    }
    for (tt_async *a = loop->asyncs; a; a = loop->async_next) {
        loop->async_next = a->next;
        if (__atomic_exchange_n(&a->pending, 0, __ATOMIC_ACQ_REL)) a->cb(loop, a);
    }
    loop->async_next = NULL;
}

TT_API int tt_async_init(tt_loop *loop, tt_async *a, tt_async_cb cb, void *data)
{
    if (!cb) return -EINVAL;
    a->cb = cb;
    a->data = data;
    a->loop = loop;
    a->pending = 0;
    a->next = loop->asyncs;
    loop->asyncs = a;
    return 0;
}

TT_API void tt_async_send(tt_async *a)
{
    if (__atomic_exchange_n(&a->pending, 1, __ATOMIC_ACQ_REL) == 0) {
        uint64_t one = 1;
        int saved = errno; /* async-signal-safe: keep the interrupted code's errno */
        ssize_t r = write(a->loop->efd, &one, sizeof(one));
        (void)r; /* EAGAIN means the counter is already nonzero: the loop wakes anyway */
        errno = saved;
    }
}

TT_API void tt_async_close(tt_async *a)
{
    tt_loop *loop = a->loop;
    if (!loop) return;
    for (tt_async **pp = &loop->asyncs; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    if (loop->async_next == a) loop->async_next = a->next;
    a->next = NULL;
    a->loop = NULL;
}

/* ---- signals ---- */

static void signal_ready(tt_loop *loop, tt_io *io, unsigned events)
{
    struct signalfd_siginfo si[8];
    ssize_t r;
    while ((r = read(loop->sfd, si, sizeof(si))) > 0) {
        size_t n = (size_t)r / sizeof(si[0]);
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < loop->nsig; k++)
                if (loop->sigs[k].signo == (int)si[i].ssi_signo)
                    loop->sigs[k].cb(loop, (int)si[i].ssi_signo, loop->sigs[k].data);
    }
}

TT_API int tt_loop_on_signal(tt_loop *loop, int signo, tt_signal_cb cb, void *data)
{
    if (!cb || signo <= 0 || signo >= NSIG) return -EINVAL;
    for (int k = 0; k < loop->nsig; k++) {
        if (loop->sigs[k].signo == signo) {
            loop->sigs[k].cb = cb;
            loop->sigs[k].data = data;
            return 0;
        }
    }
    if (loop->nsig == TT__MAX_SIGNALS) return -ENOSPC;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    int r = pthread_sigmask(SIG_BLOCK, &one, NULL);
    if (r) return -r;
    sigaddset(&loop->sigmask, signo);
    int fd = signalfd(loop->sfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        sigdelset(&loop->sigmask, signo);
        return r;
    }
    if (loop->sfd < 0) {
        loop->sfd = fd;
        r = tt_io_start(loop, &loop->sio, fd, TT_READ, TT_IO_LEVEL, signal_ready, NULL);
        if (r < 0) {
            close(fd);
            loop->sfd = -1;
            sigdelset(&loop->sigmask, signo);
            return r;
        }
    }
    loop->sigs[loop->nsig].signo = signo;
    loop->sigs[loop->nsig].cb = cb;
    loop->sigs[loop->nsig].data = data;
    loop->nsig++;
    return 0;
}
