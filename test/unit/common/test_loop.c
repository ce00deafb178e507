/* test_loop.c — the event loop: fd readiness (edge and level), stop, deferred callbacks,
 * cross-thread async wake-ups, signals, and watcher lifetime inside a dispatch batch. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether/loop.h"
#include "tether/timer.h"

static tt_loop *new_loop(void)
{
    tt_loop *loop = NULL;
    cr_assert_eq(tt_loop_new(&loop), 0);
    cr_assert_not_null(loop);
    return loop;
}

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

typedef struct counter {
    tt_io io;
    int calls;
    unsigned last;
    unsigned all;
    int drain; /* read everything on TT_READ */
    size_t got;
} counter;

static void count_cb(tt_loop *loop, tt_io *io, unsigned events)
{
    counter *c = io->data;
    c->calls++;
    c->last = events;
    c->all |= events;
    if (c->drain && (events & TT_READ)) {
        char buf[256];
        ssize_t n;
        while ((n = read(io->fd, buf, sizeof(buf))) > 0)
            c->got += (size_t)n;
    }
}

Test(loop, new_free_now)
{
    tt_loop *loop = new_loop();
    uint64_t a = tt_loop_now(loop);
    cr_assert(a > 0);
    cr_assert(tt_loop_update_time(loop) >= a);
    cr_assert_eq(tt_loop_run_once(loop, 0), 0);
    tt_loop_free(loop);
}

Test(loop, io_readable_with_socketpair)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    counter c = {.drain = 1};
    cr_assert_eq(tt_io_start(loop, &c.io, sv[0], TT_READ, 0, count_cb, &c), 0);
    cr_assert(tt_io_active(&c.io));
    cr_assert_eq(tt_io_start(loop, &c.io, sv[0], TT_READ, 0, count_cb, &c), -EBUSY);
    cr_assert_eq(tt_loop_run_once(loop, 0), 0, "nothing readable yet");
    cr_assert_eq(c.calls, 0);
    cr_assert_eq(write(sv[1], "hello", 5), 5);
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert_eq(c.calls, 1);
    cr_assert(c.last & TT_READ);
    cr_assert_eq(c.got, 5);
    cr_assert(c.io.ready & TT_READ, "delivered bits are remembered in io.ready");
    cr_assert_eq(c.io.ready & TT_WRITE, 0, "masked bits are not");
    close(sv[1]);
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert(c.last & TT_RDHUP, "peer close is reported as RDHUP (got %#x)", c.last);
    tt_io_stop(loop, &c.io);
    cr_assert(!tt_io_active(&c.io));
    tt_io_stop(loop, &c.io); /* idempotent */
    close(sv[0]);
    tt_loop_free(loop);
}

Test(loop, io_close_closes_the_fd_and_leaves_epoll)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    counter c = {.drain = 1};
    cr_assert_eq(tt_io_start(loop, &c.io, sv[0], TT_READ, 0, count_cb, &c), 0);
    int fd = sv[0];
    cr_assert_eq(tt_io_close(loop, &c.io), 0);
    cr_assert(!tt_io_active(&c.io));
    cr_assert_eq(c.io.fd, -1);
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "the fd is closed");
    cr_assert_eq(errno, EBADF);
    /* the peer sees our close, and no event reaches the forgotten watcher */
    char b;
    cr_assert_eq(read(sv[1], &b, 1), 0);
    int sv2[2];
    pair(sv2); /* likely reuses the fd number: the old registration must not deliver to c */
    cr_assert_eq(write(sv2[1], "x", 1), 1);
    cr_assert_eq(tt_loop_run_once(loop, 0), 0);
    cr_assert_eq(c.calls, 0);
    cr_assert_eq(tt_io_close(loop, &c.io), 0, "closing twice is harmless");
    close(sv[1]);
    close(sv2[0]);
    close(sv2[1]);
    tt_loop_free(loop);
}

Test(loop, edge_triggered_reports_each_edge_once)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    counter c = {.drain = 0}; /* do not drain: edge mode must not report again */
    cr_assert_eq(tt_io_start(loop, &c.io, sv[0], TT_READ, 0, count_cb, &c), 0);
    cr_assert_eq(write(sv[1], "x", 1), 1);
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(tt_loop_run_once(loop, 0), 0, "still readable, but no new edge");
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(write(sv[1], "y", 1), 1); /* new data: a new edge */
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert_eq(c.calls, 2);
    tt_io_stop(loop, &c.io);
    close(sv[0]);
    close(sv[1]);
    tt_loop_free(loop);
}

Test(loop, edge_write_interest_is_a_mask_without_syscalls)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    counter c = {0};
    /* read interest only: the initial writability edge is not delivered */
    cr_assert_eq(tt_io_start(loop, &c.io, sv[0], TT_READ, 0, count_cb, &c), 0);
    tt_loop_run_once(loop, 0);
    cr_assert_eq(c.all & TT_WRITE, 0);
    /* fill the socket, ask for write interest, drain from the peer: a write edge arrives */
    char buf[4096];
    memset(buf, 'z', sizeof(buf));
    while (write(sv[0], buf, sizeof(buf)) > 0) {
    }
    cr_assert_eq(tt_io_modify(loop, &c.io, TT_READ | TT_WRITE), 0);
    while (read(sv[1], buf, sizeof(buf)) > 0) {
    }
    cr_assert(tt_loop_run_once(loop, 1000) >= 1);
    cr_assert(c.all & TT_WRITE);
    tt_io_stop(loop, &c.io);
    close(sv[0]);
    close(sv[1]);
    tt_loop_free(loop);
}

Test(loop, level_triggered_repeats_until_drained)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    counter c = {0};
    cr_assert_eq(tt_io_start(loop, &c.io, sv[0], TT_READ, TT_IO_LEVEL, count_cb, &c), 0);
    cr_assert_eq(write(sv[1], "x", 1), 1);
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert_eq(c.calls, 2);
    char ch;
    cr_assert_eq(read(sv[0], &ch, 1), 1);
    cr_assert_eq(tt_loop_run_once(loop, 0), 0);
    cr_assert_eq(c.calls, 2);
    /* level mode: modify really changes the kernel interest */
    cr_assert_eq(tt_io_modify(loop, &c.io, TT_WRITE), 0);
    cr_assert_eq(tt_loop_run_once(loop, 1000), 1);
    cr_assert(c.last & TT_WRITE);
    tt_io_stop(loop, &c.io);
    close(sv[0]);
    close(sv[1]);
    tt_loop_free(loop);
}

/* Two watchers ready in the same batch; whichever runs first stops and frees the other. */
typedef struct victim {
    tt_io io;
    int calls;
    struct victim *other;
    int sv_peer;
} victim;

static void kill_other_cb(tt_loop *loop, tt_io *io, unsigned events)
{
    victim *v = io->data;
    v->calls++;
    if (v->other) {
        victim *o = v->other;
        tt_io_stop(loop, &o->io);
        close(o->io.fd);
        o->other = NULL;
        memset(o, 0xA5, sizeof(*o)); /* poison, then free: a later dispatch would crash */
        free(o);
        v->other = NULL;
    }
}

Test(loop, stop_and_free_other_io_in_same_batch)
{
    tt_loop *loop = new_loop();
    int a[2], b[2];
    pair(a);
    pair(b);
    victim *va = calloc(1, sizeof(*va)), *vb = calloc(1, sizeof(*vb));
    va->other = vb;
    vb->other = va;
    cr_assert_eq(tt_io_start(loop, &va->io, a[0], TT_READ, 0, kill_other_cb, va), 0);
    cr_assert_eq(tt_io_start(loop, &vb->io, b[0], TT_READ, 0, kill_other_cb, vb), 0);
    cr_assert_eq(write(a[1], "1", 1), 1);
    cr_assert_eq(write(b[1], "2", 1), 1);
    int n = tt_loop_run_once(loop, 1000);
    /* both were ready in one batch; the stopped one must not be dispatched (it is freed) */
    cr_assert_eq(n, 1, "dispatched %d", n);
    /* exactly one survived; it ran once */
    victim *alive = va->other == NULL && va->calls == 1 ? va : vb;
    cr_assert_eq(alive->calls, 1);
    tt_io_stop(loop, &alive->io);
    close(alive->io.fd);
    free(alive);
    close(a[1]);
    close(b[1]);
    tt_loop_free(loop);
}

static void self_stop_cb(tt_loop *loop, tt_io *io, unsigned events)
{
    int *calls = io->data;
    (*calls)++;
    tt_io_stop(loop, io);
    free(io);
}

Test(loop, stop_and_free_self_inside_callback)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    int calls = 0;
    tt_io *io = calloc(1, sizeof(*io));
    cr_assert_eq(tt_io_start(loop, io, sv[0], TT_READ, 0, self_stop_cb, &calls), 0);
    cr_assert_eq(write(sv[1], "x", 1), 1);
    tt_loop_run_once(loop, 1000);
    cr_assert_eq(write(sv[1], "y", 1), 1);
    tt_loop_run_once(loop, 0);
    cr_assert_eq(calls, 1);
    close(sv[0]);
    close(sv[1]);
    tt_loop_free(loop);
}

static void stop_loop_cb(tt_loop *loop, tt_io *io, unsigned events)
{
    int *calls = io->data;
    (*calls)++;
    char buf[16];
    while (read(io->fd, buf, sizeof(buf)) > 0) {
    }
    tt_loop_stop(loop);
}

Test(loop, stop_from_callback_returns_run)
{
    tt_loop *loop = new_loop();
    int sv[2];
    pair(sv);
    int calls = 0;
    tt_io io = {0};
    cr_assert_eq(tt_io_start(loop, &io, sv[0], TT_READ, 0, stop_loop_cb, &calls), 0);
    cr_assert_eq(write(sv[1], "x", 1), 1);
    cr_assert_eq(tt_loop_run(loop), 0);
    cr_assert_eq(calls, 1);
    /* run again: the stop flag was reset, so it runs until the next stop */
    cr_assert_eq(write(sv[1], "x", 1), 1);
    cr_assert_eq(tt_loop_run(loop), 0);
    cr_assert_eq(calls, 2);
    tt_io_stop(loop, &io);
    close(sv[0]);
    close(sv[1]);
    tt_loop_free(loop);
}

/* ---- deferred callbacks ---- */

typedef struct dtest {
    tt_defer d;
    int id;
    int *log;
    int *n;
    struct dtest *requeue; /* queued from inside this callback */
    struct dtest *cancel;  /* cancelled from inside this callback */
} dtest;

static void defer_cb(tt_loop *loop, tt_defer *d)
{
    dtest *t = tt_container_of(d, dtest, d);
    t->log[(*t->n)++] = t->id;
    if (t->requeue) tt_defer_queue(loop, &t->requeue->d, defer_cb);
    if (t->cancel) tt_defer_cancel(loop, &t->cancel->d);
}

Test(loop, defer_fifo_requeue_next_iteration_and_cancel)
{
    tt_loop *loop = new_loop();
    int log[16], n = 0;
    dtest t[6];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 6; i++) {
        t[i].id = i;
        t[i].log = log;
        t[i].n = &n;
    }
    t[0].requeue = &t[4]; /* queued while running: next iteration */
    t[1].cancel = &t[2];  /* cancelled while in the running batch */
    tt_defer_queue(loop, &t[0].d, defer_cb);
    tt_defer_queue(loop, &t[1].d, defer_cb);
    tt_defer_queue(loop, &t[2].d, defer_cb);
    tt_defer_queue(loop, &t[3].d, defer_cb);
    tt_defer_queue(loop, &t[3].d, defer_cb); /* no-op: already queued */
    tt_defer_queue(loop, &t[5].d, defer_cb);
    tt_defer_cancel(loop, &t[5].d);          /* cancel the tail */
    tt_defer_queue(loop, &t[5].d, defer_cb); /* and queue again at the tail */
    /* a 10 s timeout must not block: deferred callbacks are pending */
    cr_assert_eq(tt_loop_run_once(loop, 10000), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(log[0], 0);
    cr_assert_eq(log[1], 1);
    cr_assert_eq(log[2], 3);
    cr_assert_eq(log[3], 5);
    cr_assert_eq(tt_loop_run_once(loop, 10000), 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(log[4], 4);
    tt_loop_run_once(loop, 0);
    cr_assert_eq(n, 5);
    tt_loop_free(loop);
}

/* ---- async ---- */

typedef struct atest {
    tt_async a;
    int calls;
} atest;

static void async_cb(tt_loop *loop, tt_async *a)
{
    atest *t = a->data;
    t->calls++;
    tt_loop_stop(loop);
}

static void *sender(void *arg)
{
    usleep(20000);
    tt_async_send(arg);
    return NULL;
}

Test(loop, async_from_another_thread)
{
    tt_loop *loop = new_loop();
    atest t = {0}, idle = {0};
    cr_assert_eq(tt_async_init(loop, &t.a, async_cb, &t), 0);
    cr_assert_eq(tt_async_init(loop, &idle.a, async_cb, &idle), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, sender, &t.a), 0);
    cr_assert_eq(tt_loop_run(loop), 0); /* blocks until the other thread's send */
    pthread_join(th, NULL);
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(idle.calls, 0);
    /* several sends before the loop runs coalesce into one call */
    tt_async_send(&t.a);
    tt_async_send(&t.a);
    tt_async_send(&t.a);
    tt_loop_run_once(loop, 1000);
    cr_assert_eq(t.calls, 2);
    tt_loop_run_once(loop, 0);
    cr_assert_eq(t.calls, 2);
    tt_async_close(&idle.a);
    tt_async_close(&t.a);
    tt_loop_free(loop);
}

/* Many threads hammer one async; every burst is seen at least once, never lost at the end. */
typedef struct hammer {
    tt_async *a;
    volatile int *go;
} hammer;

static void *hammer_thread(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < 20000; i++)
        tt_async_send(h->a);
    return NULL;
}

static void count_async_cb(tt_loop *loop, tt_async *a)
{
    (*(int *)a->data)++;
}

Test(loop, async_many_senders_no_lost_wakeup)
{
    tt_loop *loop = new_loop();
    tt_async a;
    int calls = 0;
    cr_assert_eq(tt_async_init(loop, &a, count_async_cb, &calls), 0);
    pthread_t th[3];
    hammer h = {.a = &a};
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, hammer_thread, &h);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    /* all sends happened before this point: the loop must observe at least one pending call */
    int before = calls;
    for (int i = 0; i < 5 && calls == before; i++)
        tt_loop_run_once(loop, 1000);
    cr_assert(calls > before);
    /* and now it is quiet */
    int after = calls;
    tt_loop_run_once(loop, 0);
    cr_assert_eq(calls, after);
    tt_async_close(&a);
    tt_loop_free(loop);
}

/* ---- signals ---- */

static void sig_cb(tt_loop *loop, int signo, void *data)
{
    int *got = data;
    *got = signo;
    tt_loop_stop(loop);
}

Test(loop, signal_delivered_through_signalfd)
{
    tt_loop *loop = new_loop();
    int got = 0, got2 = 0;
    cr_assert_eq(tt_loop_on_signal(loop, SIGUSR1, sig_cb, &got), 0);
    cr_assert_eq(tt_loop_on_signal(loop, SIGUSR2, sig_cb, &got2), 0);
    cr_assert_eq(tt_loop_on_signal(loop, 0, sig_cb, &got), -EINVAL);
    cr_assert_eq(raise(SIGUSR1), 0); /* blocked now: waits in the signalfd instead of killing */
    cr_assert_eq(tt_loop_run(loop), 0);
    cr_assert_eq(got, SIGUSR1);
    cr_assert_eq(got2, 0);
    cr_assert_eq(raise(SIGUSR2), 0);
    cr_assert_eq(tt_loop_run(loop), 0);
    cr_assert_eq(got2, SIGUSR2);
    tt_loop_free(loop);
}

/* ---- timers through the loop ---- */

typedef struct tick {
    tt_timer t;
    int fired;
    uint64_t at_fire;
} tick;

static void tick_cb(tt_loop *loop, tt_timer *t)
{
    tick *k = tt_container_of(t, tick, t);
    k->fired++;
    k->at_fire = tt_loop_now(loop);
    if (k->fired < 3)
        tt_timer_start(loop, t, 2); /* periodic by re-arming */
    else
        tt_loop_stop(loop);
}

Test(loop, timers_fire_through_run_and_bound_the_wait)
{
    tt_loop *loop = new_loop();
    tick k = {0};
    tt_timer_init(&k.t, tick_cb);
    uint64_t t0 = tt_loop_now(loop);
    tt_timer_start(loop, &k.t, 5);
    cr_assert_eq(tt_loop_run(loop), 0); /* nothing else is registered: the timer ends it */
    cr_assert_eq(k.fired, 3);
    cr_assert(k.at_fire >= t0 + 9);
    cr_assert(!tt_timer_armed(&k.t));
    tt_loop_free(loop);
}
