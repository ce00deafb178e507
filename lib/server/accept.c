/* accept.c — accepting connections on the worker's listeners under limits and pressure. At
 * max_connections an idle keep-alive connection is given up first, else the reading connection
 * making the least progress (a slow head or body, after a grace period), else the connection
 * is handed to a worker that has room; only when every worker is full does accepting pause
 * until a connection closes. Out of descriptors, idle connections are closed or accepting
 * pauses briefly. New sockets go to conn.c. */
#include <errno.h>
#include <unistd.h>

#include "server/server_int.h"
#include "tether/socket.h"

enum {
    EVICT_GRACE_MS = 1000, /* a reading connection younger than this is not judged yet */
    EVICT_SCAN = 32,       /* oldest connections looked at per reading state */
};

static void on_accept(tt_loop *loop, tt_io *io, unsigned ev);

void tt__accept_pause(tt__worker *w)
{
    if (!w->accepting) return;
    for (int a = 0; a < w->nls; a++)
        tt_io_stop(w->loop, &w->ls[a].io);
    w->accepting = 0;
    TT__INC(w->stats.accept_paused);
}

void tt__accept_resume(tt__worker *w)
{
    if (w->accepting || w->shutting) return;
    for (int a = 0; a < w->nls; a++)
        tt_io_start(w->loop, &w->ls[a].io, w->ls[a].fd, TT_READ, TT_IO_LEVEL, on_accept, w);
    w->accepting = 1;
}

static void on_resume(tt_loop *loop, tt_timer *t)
{
    (void)loop;
    tt__accept_resume(tt_container_of(t, tt__worker, resume));
}

/* The reading connection (head or body) with the fewest bytes per ms since its message began,
 * among the oldest EVICT_SCAN of each reading state and older than the grace; or NULL. */
static tt__conn *slowest_reader(tt__worker *w)
{
    static const int states[] = {TT_CONN_READING_HEAD, TT_CONN_READING_BODY};
    uint64_t now = tt_loop_now(w->loop), best_rate = UINT64_MAX;
    tt__conn *best = NULL;
    for (int k = 0; k < 2; k++) {
        int seen = 0;
        tt__list *n, *tmp;
        tt__list_each(&w->lists[states[k]], n, tmp)
        {
            if (++seen > EVICT_SCAN) break;
            tt__conn *c = tt__list_entry(n, tt__conn, link);
            if (c->x && c->x->handling) continue;
            uint64_t start = c->x ? c->x->t_start : w->t0 + c->born;
            uint64_t age = now > start ? now - start : 0;
            if (age < EVICT_GRACE_MS) continue;
            uint64_t rate = (c->x ? c->x->rx : 0) * 1024 / age;
            if (rate < best_rate) {
                best_rate = rate;
                best = c;
            }
        }
    }
    return best;
}

/* At the limit: make room on w by closing an idle connection, else the slowest reader.
 * Returns 1 when a connection was closed. */
static int make_room(tt__worker *w)
{
    if (!tt__list_empty(&w->lists[TT_CONN_IDLE])) {
        tt__worker_close_idle(w, TT_CLOSE_PRESSURE, 1);
        return 1;
    }
    tt__conn *c = slowest_reader(w);
    if (!c) return 0;
    TT__INC(w->stats.evicted);
    tt__conn_close(c, TT_CLOSE_PRESSURE);
    return 1;
}

/* A worker of the same server with room for one more connection, or NULL. */
static tt__worker *worker_with_room(tt__worker *w)
{
    tt_server *s = w->srv;
    for (int k = 1; k < s->nworkers; k++) {
        tt__worker *o = &s->workers[(w->index + k) % s->nworkers];
        if (!__atomic_load_n(&o->shutting, __ATOMIC_RELAXED) &&
            __atomic_load_n(&o->nconns, __ATOMIC_RELAXED) +
                    __atomic_load_n(&o->nhand, __ATOMIC_RELAXED) <
                o->max_conns)
            return o;
    }
    return NULL;
}

/* Give a new socket (tls: from an https:// listener) to worker o (another thread): 0, or
 * -ENOSPC when its queue is full. */
static int hand_to(tt__worker *o, int fd, int tls)
{
    int r = -ENOSPC;
    pthread_mutex_lock(&o->hand_mu);
    if (o->nhand < TT__HAND_MAX) {
        o->hand_fds[o->nhand] = fd;
        o->hand_tls[o->nhand] = (unsigned char)tls;
        __atomic_store_n(&o->nhand, o->nhand + 1, __ATOMIC_RELAXED);
        r = 0;
    }
    pthread_mutex_unlock(&o->hand_mu);
    if (r == 0) tt_async_send(&o->hand);
    return r;
}

/* Sockets another worker accepted for this one. */
static void on_hand(tt_loop *loop, tt_async *a)
{
    tt__worker *w = a->data;
    int fds[TT__HAND_MAX], n;
    unsigned char tls[TT__HAND_MAX];
    (void)loop;
    pthread_mutex_lock(&w->hand_mu);
    n = w->nhand;
    for (int i = 0; i < n; i++) {
        fds[i] = w->hand_fds[i];
        tls[i] = w->hand_tls[i];
    }
    __atomic_store_n(&w->nhand, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&w->hand_mu);
    for (int i = 0; i < n; i++) {
        if (w->shutting) {
            close(fds[i]);
            continue;
        }
        TT__INC(w->stats.handed_in);
        tt__conn_accepted(w, fds[i], tls[i]);
    }
}

/* w is full and nothing can be closed: accept for a worker with room, else pause (resumed
 * when a connection closes). Returns 1 when a connection was handed over. */
static int accept_for_other(tt__worker *w, const tt__listener *l)
{
    tt__worker *o = worker_with_room(w);
    if (!o) {
        tt__accept_pause(w);
        /* look again soon: another worker's room does not wake this one */
        if (w->srv->nworkers > 1) tt_timer_start(w->loop, &w->resume, 50);
        return 0;
    }
    int fd = tt_accept(l->fd, NULL);
    if (fd < 0) return 0;
    if (hand_to(o, fd, l->tls) < 0) {
        close(fd); /* the other worker's queue is full too: refuse, as a full backlog would */
        return 0;
    }
    return 1;
}

static void on_accept(tt_loop *loop, tt_io *io, unsigned ev)
{
    tt__worker *w = io->data;
    const tt__listener *l = tt_container_of(io, tt__listener, io);
    (void)ev;
    for (int i = 0; i < 64; i++) {
        if (w->nconns >= w->max_conns && !make_room(w)) {
            if (!accept_for_other(w, l)) return;
            continue;
        }
        int fd = tt_accept(io->fd, NULL);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                /* Out of fds: free the oldest idle connections, else pause briefly
                 * (a level-triggered listener would otherwise spin). */
                if (!tt__list_empty(&w->lists[TT_CONN_IDLE])) {
                    tt__worker_close_idle(w, TT_CLOSE_PRESSURE, 16);
                    continue;
                }
                tt__accept_pause(w);
                tt_timer_start(loop, &w->resume, 100);
            }
            return;
        }
        tt__conn_accepted(w, fd, l->tls);
        if (w->shutting) return;
    }
}

/* A connection closed (conn.c calls this through w->conn_gone): room to accept again, or the
 * last one of a draining worker. */
static void conn_gone(tt__worker *w)
{
    if (!w->accepting && !w->shutting && w->nconns < w->max_conns && !tt_timer_armed(&w->resume))
        tt__accept_resume(w);
    if (w->shutting && w->nconns == 0) tt_loop_stop(w->loop);
}

int tt__accept_init(tt__worker *w)
{
    tt_timer_init(&w->resume, on_resume);
    w->conn_gone = conn_gone;
    pthread_mutex_init(&w->hand_mu, NULL);
    return tt_async_init(w->loop, &w->hand, on_hand, w);
}

void tt__accept_fini(tt__worker *w)
{
    if (w->hand.loop) tt_async_close(&w->hand);
    for (int i = 0; i < w->nhand; i++)
        close(w->hand_fds[i]);
    w->nhand = 0;
    pthread_mutex_destroy(&w->hand_mu);
}
