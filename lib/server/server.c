/* server.c — configuration and its defaults, server setup (listeners, the route table with the
 * static-file mount), worker threads (one loop + one SO_REUSEPORT listener each), graceful
 * shutdown, the worker-exit hooks and the counters. Accepting is in accept.c, connections in
 * conn.c, the access log in accesslog.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/api.h"
#include "server/server_int.h"
#include "tether/socket.h"

TT_API int tt_server_config_route_ex(tt_server_config *cfg, const char *prefix, tt_handler_fn fn,
                                     void *data, unsigned flags)
{
    if (cfg->nroutes >= TT_SERVER_MAX_ROUTES) return -ENOSPC;
    cfg->routes[cfg->nroutes++] = (tt_route){prefix, fn, data, flags};
    return 0;
}

TT_API int tt_server_config_route(tt_server_config *cfg, const char *prefix, tt_handler_fn fn,
                                  void *data)
{
    return tt_server_config_route_ex(cfg, prefix, fn, data, 0);
}

#define DEF(f, v)                                                                                  \
    if (c->f == 0) c->f = (v)

/* The one convention (tether/common.h): 0 takes the default, TT_OFF disables; every field is
 * documented in server.h. After this, the internal meaning is uniform: deadlines and limits
 * that are off become "never" / "unlimited" values. */
static void fill_defaults(tt_server_config *c)
{
    if (c->nlisten <= 0) {
        c->listen[0] = "127.0.0.1:8080";
        c->nlisten = 1;
    }
    if (c->workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (int)n : 1;
    }
    DEF(keepalive_timeout_ms, 75000);
    DEF(keepalive_requests, 1000);
    DEF(keepalive_time_ms, 3600000);
    DEF(header_timeout_ms, 20000);
    DEF(body_timeout_ms, 30000);
    DEF(send_timeout_ms, 30000);
    DEF(lingering_time_ms, 5000);
    DEF(lingering_timeout_ms, 2000);
    if (c->close_wait_ms < 0) c->close_wait_ms = 0; /* an opt-in: 0 and TT_OFF are off */
    DEF(defer_accept_s, 1);
    DEF(drain_timeout_ms, 10000);
    DEF(max_connections, 10000);
    DEF(max_body, 1 << 20);
    DEF(discard_limit, 64 << 10);
    DEF(max_header, 32768);
    DEF(max_uri, 8192);
    DEF(max_request_line, 8192);
    DEF(max_pipeline, 256 << 10);
    DEF(body_min_rate, 500);
    DEF(max_body_memory, (long long)256 << 20);
    if (!c->server_name) c->server_name = "tether";
    /* TT_OFF for a deadline means "never": use a very long timer instead. */
    int *ms[] = {&c->header_timeout_ms, &c->body_timeout_ms,      &c->send_timeout_ms,
                 &c->lingering_time_ms, &c->lingering_timeout_ms, &c->drain_timeout_ms};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (*ms[i] < 0) *ms[i] = 0x7fffffff;
    if (c->keepalive_time_ms < 0) c->keepalive_time_ms = 0;   /* unlimited age */
    if (c->keepalive_requests < 0) c->keepalive_requests = 0; /* unlimited */
    if (c->max_connections < 0) c->max_connections = 0x7fffffff;
    if (c->max_body < 0) c->max_body = (long long)1 << 40;
    if (c->discard_limit < 0) c->discard_limit = 0;
    if (c->max_header < 0) c->max_header = 0x7fffffff; /* bounded by the read buffer only */
    if (c->max_uri < 0) c->max_uri = 0x7fffffff;
    if (c->max_request_line < 0) c->max_request_line = 0x7fffffff;
    if (c->max_pipeline < 0) c->max_pipeline = 0x7fffffff;
    if (c->body_min_rate < 0) c->body_min_rate = 0;
    if (c->max_body_memory < 0) c->max_body_memory = (long long)1 << 62;
    if (c->access_log_fd < 0) c->access_log_fd = 0;
    if (c->reset_timedout < 0) c->reset_timedout = 0;
}

/* The route table: with a root, the static files are an ordinary "/" route, first so that
 * any other route of the same or a longer prefix wins. */
static void setup_routes(tt_server *s)
{
    s->nroutes = 0;
    if (s->cfg.root)
        s->routes[s->nroutes++] = (tt_route){"/", tt_static_handler, (void *)s->cfg.root, 0};
    for (int i = 0; i < s->cfg.nroutes && i < TT_SERVER_MAX_ROUTES; i++)
        s->routes[s->nroutes++] = s->cfg.routes[i];
}

/* Open address a's listener for every worker: one SO_REUSEPORT socket each (the kernel spreads
 * connections), or one Unix-domain socket shared by all. Unless share_port, a port another
 * process listens on is an error (EADDRINUSE), not a silent share. 0 or -errno. */
static int open_listeners(tt_server *s, int a)
{
    tt_addr *addr = &s->addrs[a];
    int is_unix = addr->ss.ss_family == AF_UNIX;
    if (!s->cfg.share_port) {
        int r = tt_port_free(addr);
        if (r < 0) return r;
    }
    /* Deferred accept (h2o's default, nginx's "deferred"): one wake-up per connection instead
     * of two, and a connection is never accepted before its request can be read. */
    tt_listen_opts lo = {.reuseport = !is_unix,
                         .defer_accept =
                             s->cfg.defer_accept_s > 0 && !is_unix ? s->cfg.defer_accept_s : 0};
    for (int i = 0; i < s->nworkers; i++) {
        int fd = is_unix && i > 0 ? fcntl(s->workers[0].ls[a].fd, F_DUPFD_CLOEXEC, 3)
                                  : tt_listen(addr, &lo);
        if (fd < 0) return is_unix && i > 0 ? -errno : fd;
        s->workers[i].ls[a].fd = fd;
        s->workers[i].ls[a].tls = (s->tls_listen >> a) & 1;
        s->workers[i].nls = a + 1;
        if (is_unix) continue;
        if (tt_addr_port(addr) == 0) { /* port 0: every worker on the same port */
            tt_addr bound;
            if (tt_sock_local(fd, &bound) == 0) *addr = bound;
        }
        /* Accepted sockets inherit these: no setsockopt per connection. */
        tt_sock_nodelay(fd, 1);
        if (s->cfg.tcp_keepalive.idle_s > 0) tt_sock_keepalive(fd, &s->cfg.tcp_keepalive);
    }
    if (is_unix) s->unix_owned |= 1u << a; /* removed by tt_server_free */
    return 0;
}

TT_API int tt_server_new(tt_server **out, const tt_server_config *cfg)
{
    return tt_server_new_at(out, cfg, NULL);
}

TT_API int tt_server_new_at(tt_server **out, const tt_server_config *cfg, int *bad_listen)
{
    return tt_server_new_err(out, cfg, bad_listen, NULL, 0);
}

/* Parse listen[a] ("https://" marks a TLS listener) into s->addrs[a]. 0 or -EINVAL. */
static int parse_listen(tt_server *s, int a)
{
    char buf[256];
    int tls;
    const char *spec = tt__tls_listen_spec(s->cfg.listen[a], &tls, buf, sizeof buf);
    if (!spec) return -EINVAL;
    if (tls) s->tls_listen |= 1u << a;
    return tt_addr_parse(&s->addrs[a], spec);
}

TT_API int tt_server_new_err(tt_server **out, const tt_server_config *cfg, int *bad_listen,
                             char *errbuf, size_t errlen)
{
    if (bad_listen) *bad_listen = -1;
    if (errlen) errbuf[0] = 0;
    tt_server *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->cfg = *cfg;
    fill_defaults(&s->cfg);
    setup_routes(s);
    if (s->cfg.root) tt_server_on_worker_exit(s, tt_static_worker_exit, NULL);
    s->nworkers = s->cfg.workers;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers) {
        free(s);
        return -ENOMEM;
    }
    int err = tt__alog_compile(&s->log, s->cfg.access_log_format);
    for (int a = 0; a < s->cfg.nlisten && !err; a++) {
        err = parse_listen(s, a);
        if (err && bad_listen) *bad_listen = a;
    }
    if (!err) err = tt__tls_setup(s, errbuf, errlen); /* before any port opens */
    for (int a = 0; a < s->cfg.nlisten && !err; a++) {
        err = open_listeners(s, a);
        if (err && bad_listen) *bad_listen = a;
    }
    if (!err) s->port = tt_addr_port(&s->addrs[0]);
    for (int i = 0; i < s->nworkers; i++) {
        tt__worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        for (int st = 0; st < TT_CONN_NSTATES; st++)
            tt__list_init(&w->lists[st]);
        tt__list_init(&w->free_conns);
        tt__list_init(&w->free_x);
        int per = s->cfg.max_connections / s->nworkers;
        w->max_conns = (uint32_t)(per > 0 ? per : 1);
        w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(i + 1) * 0x2545f4914f6cdd1dull) ^
                 (uint64_t)time(NULL);
    }
    if (err) {
        tt_server_free(s);
        return err;
    }
    *out = s;
    return 0;
}

TT_API int tt_server_on_worker_exit(tt_server *s, void (*fn)(void *data), void *data)
{
    if (s->nexit_hooks >= TT_SERVER_MAX_EXIT_HOOKS) return -ENOSPC;
    s->exit_hooks[s->nexit_hooks].fn = fn;
    s->exit_hooks[s->nexit_hooks++].data = data;
    return 0;
}

TT_API void tt_server_free(tt_server *s)
{
    if (!s) return;
    if (s->abandoned) return; /* a stuck worker may still touch it: kept until the process ends */
    for (int i = 0; i < s->nworkers; i++)
        for (int a = 0; a < s->workers[i].nls; a++)
            if (s->workers[i].ls[a].fd > 0) close(s->workers[i].ls[a].fd);
    for (int a = 0; a < s->cfg.nlisten; a++)
        if (s->unix_owned & (1u << a))
            unlink(((const struct sockaddr_un *)&s->addrs[a].ss)->sun_path);
    free(s->workers);
    tt_tls_ctx_free(s->tls);
    free(s);
}

TT_API const tt_server_config *tt_server_get_config(const tt_server *s)
{
    return &s->cfg;
}
TT_API int tt_server_workers(const tt_server *s)
{
    return s->nworkers;
}
TT_API int tt_server_port(const tt_server *s)
{
    return s->port;
}

TT_API int tt_server_stats_get(const tt_server *s, int worker, tt_server_stats *out)
{
    if (worker < -1 || worker >= s->nworkers) return -EINVAL;
    memset(out, 0, sizeof *out);
    int lo = worker < 0 ? 0 : worker, hi = worker < 0 ? s->nworkers : worker + 1;
    for (int i = lo; i < hi; i++) {
        const uint64_t *src = (const uint64_t *)&s->workers[i].stats;
        uint64_t *dst = (uint64_t *)out;
        for (size_t k = 0; k < sizeof *out / sizeof(uint64_t); k++)
            dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
    }
    return 0;
}

/* ---- shutdown ---- */

static void on_drain_timeout(tt_loop *loop, tt_timer *t)
{
    tt__worker *w = tt_container_of(t, tt__worker, drain);
    tt__worker_free_all(w);
    tt_loop_stop(loop);
}

static void worker_begin_shutdown(tt__worker *w)
{
    tt_server *s = w->srv;
    if (s->kill_now) {
        tt_loop_stop(w->loop);
        return;
    }
    if (w->shutting) return;
    tt__accept_pause(w);
    w->shutting = 1;
    for (int a = 0; a < w->nls; a++) {
        close(w->ls[a].fd);
        w->ls[a].fd = -1;
    }
    tt__worker_close_idle(w, TT_CLOSE_SHUTDOWN, -1);
    /* Connections waiting for a first request byte have nothing in flight either; those with
     * a partial head may finish it (and get Connection: close) before the drain deadline. */
    tt__list *n, *tmp;
    tt__list_each(&w->lists[TT_CONN_READING_HEAD], n, tmp)
    {
        tt__conn *c = tt__list_entry(n, tt__conn, link);
        if (!(c->x && c->x->rbuf.len)) tt__conn_close(c, TT_CLOSE_SHUTDOWN);
    }
    tt_timer_start(w->loop, &w->drain, (uint64_t)s->cfg.drain_timeout_ms);
    if (w->nconns == 0) tt_loop_stop(w->loop);
}

static void on_wake(tt_loop *loop, tt_async *a)
{
    (void)loop;
    worker_begin_shutdown(a->data);
}

TT_API void tt_server_shutdown(tt_server *s)
{
    int n = __atomic_add_fetch(&s->shutdown_count, 1, __ATOMIC_SEQ_CST);
    if (n >= 2) s->kill_now = 1;
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].wake.loop) tt_async_send(&s->workers[i].wake);
    if (s->ctl_done.loop) tt_async_send(&s->ctl_done); /* the control loop arms its deadline */
}

TT_API int tt_server_reopen_log(tt_server *s)
{
    return tt__alog_reopen(s);
}

static void on_signal(tt_loop *loop, int signo, void *data)
{
    (void)loop;
    tt_server *s = data;
    if (signo == SIGHUP) {
        tt_server_reopen_log(s); /* logrotate: keep serving */
        char err[256];
        /* A new certificate: the library has no other channel to say a reload failed (the
         * old pair stays in use), as a client without a log sink. */
        if (s->tls && tt_server_reload_tls(s, err, sizeof err) < 0)
            fprintf(stderr, "tether: TLS reload failed, keeping the old certificate: %s\n", err);
        return;
    }
    tt_server_shutdown(s);
    if (s->kill_now) _exit(1);
}

/* ---- running ---- */

static int worker_setup(tt__worker *w)
{
    int r = tt_loop_new(&w->loop);
    if (r < 0) return r;
    w->pool = tt_bufpool_new(0, 64);
    if (!w->pool) return -ENOMEM;
    w->t0 = tt_loop_now(w->loop);
    tt_timer_init(&w->drain, on_drain_timeout);
    r = tt__accept_init(w);
    if (r < 0) return r;
    r = tt_async_init(w->loop, &w->wake, on_wake, w);
    if (r < 0) return r;
    tt__accept_resume(w);
    return 0;
}

static void worker_teardown(tt__worker *w)
{
    tt__worker_free_all(w);
    for (int a = 0; a < w->nls; a++)
        if (w->ls[a].fd >= 0) {
            if (w->accepting) tt_io_stop(w->loop, &w->ls[a].io);
            close(w->ls[a].fd);
            w->ls[a].fd = -1;
        }
    tt__list *n;
    while ((n = tt__list_pop_front(&w->free_x))) {
        struct tt_req *x = tt__list_entry(n, struct tt_req, free_link);
        free(x);
    }
    for (size_t i = 0; i < w->nslabs; i++)
        free(w->slabs[i]);
    free(w->slabs);
    w->slabs = NULL;
    if (w->wake.loop) tt_async_close(&w->wake);
    tt__accept_fini(w);
    tt_timer_stop(w->loop, &w->drain);
    tt_timer_stop(w->loop, &w->resume);
    if (w->pool) tt_bufpool_free(w->pool);
    tt_loop_free(w->loop);
    w->loop = NULL;
}

static void *worker_main(void *arg)
{
    tt__worker *w = arg;
    tt_loop_run(w->loop);
    /* Per-worker state of the handlers (the static files' open-file cache) goes now, on the
     * worker's own thread. */
    const tt_server *s = w->srv;
    for (int i = 0; i < s->nexit_hooks; i++)
        s->exit_hooks[i].fn(s->exit_hooks[i].data);
    __atomic_sub_fetch(&w->srv->running, 1, __ATOMIC_SEQ_CST);
    tt_async_send(&w->srv->ctl_done);
    return NULL;
}

/* The control loop's state (on tt_server_run's stack): the drain deadline it enforces. */
typedef struct ctl_state {
    tt_server *s;
    tt_timer deadline;
} ctl_state;

/* Workers end by their own drain timer; this one holds even when a handler is stuck in a
 * blocking call and its worker never gets back to its loop: past the drain timeout (plus a
 * grace for the workers' own timers) the control loop stops waiting for it. */
#define DRAIN_GRACE_MS 500

static void on_ctl_deadline(tt_loop *loop, tt_timer *t)
{
    ctl_state *st = tt_container_of(t, ctl_state, deadline);
    if (__atomic_load_n(&st->s->running, __ATOMIC_SEQ_CST) > 0) st->s->abandoned = 1;
    tt_loop_stop(loop);
}

/* A worker finished, or shutdown was asked for (tt_server_shutdown). */
static void on_worker_done(tt_loop *loop, tt_async *a)
{
    ctl_state *st = a->data;
    tt_server *s = st->s;
    if (__atomic_load_n(&s->running, __ATOMIC_SEQ_CST) == 0) {
        tt_loop_stop(loop);
        return;
    }
    if (__atomic_load_n(&s->shutdown_count, __ATOMIC_SEQ_CST) > 0 &&
        !tt_timer_armed(&st->deadline) && s->cfg.drain_timeout_ms < 0x7fffffff)
        tt_timer_start(loop, &st->deadline, (uint64_t)s->cfg.drain_timeout_ms + DRAIN_GRACE_MS);
}

/* After the control loop: join the workers; past the drain deadline, a worker still running
 * is detached and its memory (and the server's) kept, since it may wake up and use it. */
static void join_workers(tt_server *s, int started)
{
    for (int i = 0; i < started; i++) {
        tt__worker *w = &s->workers[i];
        if (!s->abandoned) {
            pthread_join(w->thread, NULL);
        } else if (pthread_tryjoin_np(w->thread, NULL) != 0) {
            pthread_detach(w->thread);
            continue;
        }
        if (w->loop) worker_teardown(w);
    }
    for (int i = started; i < s->nworkers; i++)
        if (s->workers[i].loop) worker_teardown(&s->workers[i]);
}

/* The calling thread runs a small control loop (signals, waiting for the workers), so a
 * second signal is seen even when some workers have already finished draining. */
TT_API int tt_server_run(tt_server *s, int handle_signals)
{
    ctl_state st = {.s = s};
    tt_timer_init(&st.deadline, on_ctl_deadline);
    int r = tt_loop_new(&s->ctl);
    if (r == 0) r = tt_async_init(s->ctl, &s->ctl_done, on_worker_done, &st);
    if (r == 0 && handle_signals) {
        signal(SIGPIPE, SIG_IGN);
        tt_loop_on_signal(s->ctl, SIGTERM, on_signal, s);
        tt_loop_on_signal(s->ctl, SIGHUP, on_signal, s);
        r = tt_loop_on_signal(s->ctl, SIGINT, on_signal, s);
    }
    /* The log thread starts after the signals are blocked here, so it inherits the mask and
     * the kernel never delivers SIGTERM/SIGINT to it (that would kill the process). */
    if (r == 0) r = tt__alog_start(s);
    /* Every worker's loop is created here so shutdown can reach it from the first instant. */
    for (int i = 0; i < s->nworkers && r == 0; i++)
        r = worker_setup(&s->workers[i]);
    int started = 0;
    for (int i = 0; i < s->nworkers && r == 0; i++) {
        __atomic_add_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            __atomic_sub_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
            r = -EAGAIN;
            break;
        }
        started++;
    }
    if (r == 0)
        r = tt_loop_run(s->ctl);
    else
        tt_server_shutdown(s);
    join_workers(s, started);
    if (s->ctl) tt_timer_stop(s->ctl, &st.deadline);
    if (s->abandoned) {
        /* A stuck worker still holds the control loop's async (it signals it when it ends):
         * the loop, the access log and the server stay. The process is expected to exit. */
        return -ETIMEDOUT;
    }
    if (s->ctl) {
        if (s->ctl_done.loop) tt_async_close(&s->ctl_done);
        tt_loop_free(s->ctl);
        s->ctl = NULL;
    }
    tt__alog_stop(s);
    return r;
}
