/* client.c — the client connection pool: routes, lease queue, connections as an edge-triggered
 * state machine on a tt_loop, reuse/expiry decisions, retries, statistics.
 *
 * Memory: a route and a connection are malloc'd when created (not per request); a connection's
 * read buffer comes from the client's buffer pool and is given back while it idles. Exchanges
 * belong to the caller. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client/client_int.h"
#include "common/api.h"
#include "tether/buffer.h"
#include "tether/http1.h"

enum { C_CONNECTING = 1, C_BUSY, C_IDLE };
enum { X_NONE = 0, X_QUEUED, X_CONNECTING, X_SENDING, X_WAIT_CONTINUE, X_READING, X_DONE };
enum { XF_HEAD_DONE = 1, XF_BODY_SENT = 2, XF_STREAM_EOF = 4, XF_BODY_DONE = 8, XF_DISCARD = 16 };
enum { DRAIN_MAX = 16384 };
enum { MAX_PIPELINE = 64 }; /* body bytes drained after on_body stops, to keep the connection */
enum { MAX_ADDRS = 8, READ_CHUNK = 16384 };

typedef struct route route;
typedef struct conn conn;

struct conn {
    tt_io io;
    tt_timer timer; /* idle expiry */
    int fd;
    int state;
    unsigned id;
    route *rt;
    tt_client *c;
    conn *prev, *next;   /* route idle list, most recently used first */
    conn *aprev, *anext; /* all connections */
    tt_buf rb;
    uint64_t created, last_used, lifetime_at;
    int expire_reason;
    int retired, peer_fin, rready, hint;
    uint32_t requests;
    tt_addr addr;
    tt_exchange *x;                 /* exchange whose response is being read */
    tt_exchange *w;                 /* exchange being written (== x unless pipelining) */
    tt_exchange *pq_head, *pq_tail; /* pipelined exchanges after x, in order */
    int pn, proven;                 /* pipeline depth; proven: kept alive at least once */
    tt_http1_parser parser;
    tt_http1_response resp;
    tt_header hdr[TT_CLIENT_MAX_HEADERS];
    tt_http1_chunked_decoder cd;
    tt_header trl[32];
    long ka_timeout, ka_max;
};

struct route {
    route *next;
    char host[256];
    char hosthdr[272];
    int port;
    tt_addr addrs[MAX_ADDRS];
    int naddr;
    uint64_t resolved_at;
    int resolving, resolve_err;
    conn *idle, *idle_tail;
    int nidle, nbusy, nconnecting, npending;
    uint64_t opened, requests, reused, learned_idle_ms;
};

typedef struct resolve_job {
    tt_async a;
    pthread_t th;
    tt_client *c;
    route *rt;
    char host[256];
    int port, n;
    tt_addr out[MAX_ADDRS];
    struct resolve_job *next;
} resolve_job;

struct tt_client {
    tt_loop *loop;
    int own_loop;
    tt_client_opts o;
    tt_bufpool *bp;
    route *routes;
    conn *all;
    tt_exchange *qhead, *qtail;
    int total, inflight;
    int dispatching, redispatch;
    unsigned next_id;
    uint32_t rng;
    tt_client_stats st;
    resolve_job *jobs;
};

static void x_attempt(tt_exchange *x);
static void c_dispatch(tt_client *c);
static void conn_io(tt_loop *loop, tt_io *io, unsigned events);
static int x_write(conn *k);
static void conn_read(conn *k);

static const char *const evict_names[TT_EVICT_NREASONS] = {
    "idle",  "server_hint",  "max_requests", "lifetime",  "peer_closed",
    "error", "not_reusable", "dns",          "pool_full", "shutdown"};

TT_API const char *tt_evict_reason_name(int r)
{
    return r >= 0 && r < TT_EVICT_NREASONS ? evict_names[r] : "?";
}

TT_API const char *tt_retry_reason_name(int r)
{
    return r == TT_RETRY_NOT_SENT          ? "not_sent"
           : r == TT_RETRY_MAYBE_PROCESSED ? "maybe_processed"
                                           : "?";
}

static void clog_(tt_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void clog_(tt_client *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->o.log)
        c->o.log(c->o.log_data, line);
    else
        fprintf(stderr, "%s\n", line);
}
#define VLOG(c, ...)                                                                               \
    do {                                                                                           \
        if ((c)->o.verbose) clog_((c), __VA_ARGS__);                                               \
    } while (0)

TT_API void tt_client_opts_default(tt_client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_per_route = 8;
    o->max_total = 64;
    o->lease_timeout_ms = 10000;
    o->connect_timeout_ms = 5000;
    o->head_timeout_ms = 30000;
    o->idle_timeout_ms = 30000;
    o->max_lifetime_ms = 300000;
    o->lifetime_jitter_pct = 10;
    o->leak_warn_ms = 60000;
    o->continue_timeout_ms = 1000;
    o->dns_ttl_ms = 30000;
    o->max_retries_not_sent = 3;
}

static void fill_defaults(tt_client_opts *o, const tt_client_opts *in)
{
    tt_client_opts d;
    tt_client_opts_default(&d);
    *o = in ? *in : d;
#define DEF(f)                                                                                     \
    if (o->f <= 0) o->f = d.f
    DEF(max_per_route);
    DEF(max_total);
    DEF(lease_timeout_ms);
    DEF(connect_timeout_ms);
    DEF(head_timeout_ms);
    DEF(idle_timeout_ms);
    DEF(max_lifetime_ms);
    DEF(leak_warn_ms);
    DEF(continue_timeout_ms);
    DEF(dns_ttl_ms);
#undef DEF
    if (o->lifetime_jitter_pct < 0) o->lifetime_jitter_pct = 0;
    if (o->max_retries_not_sent < 0) o->max_retries_not_sent = 0;
    if (o->max_idle_per_route <= 0) o->max_idle_per_route = o->max_per_route;
    if (o->max_total < o->max_per_route) o->max_per_route = o->max_total;
}

static int client_init(tt_client **out, tt_loop *loop, int own, const tt_client_opts *opts)
{
    tt_client *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    fill_defaults(&c->o, opts);
    c->loop = loop;
    c->own_loop = own;
    c->bp = tt_bufpool_new(READ_CHUNK, 64);
    if (!c->bp) {
        free(c);
        return -ENOMEM;
    }
    c->rng = (uint32_t)(uintptr_t)c ^ (uint32_t)getpid() ^ 0x9e3779b9u;
    *out = c;
    return 0;
}

TT_API int tt_client_new(tt_client **out, const tt_client_opts *opts)
{
    tt_loop *loop;
    int r = tt_loop_new(&loop);
    if (r < 0) return r;
    r = client_init(out, loop, 1, opts);
    if (r < 0) tt_loop_free(loop);
    return r;
}

TT_API int tt_client_new_on(tt_client **out, tt_loop *loop, const tt_client_opts *opts)
{
    return client_init(out, loop, 0, opts);
}

TT_API tt_loop *tt_client_loop(tt_client *c)
{
    return c->loop;
}

/* ---- exchanges ---- */

TT_API void tt_exchange_init(tt_exchange *x)
{
    memset(x, 0, sizeof *x);
}

static void x_clear_outcome(tt_exchange *x)
{
    x->error = 0;
    x->error_what = NULL;
    x->sent_state = TT_NOT_SENT;
    x->status = 0;
    x->version_minor = 0;
    x->head_len = 0;
    x->nhdrs = 0;
    x->resp_body_len = 0;
    x->trailers_len = 0;
    x->informational = 0;
    x->reused = 0;
    x->conn_id = 0;
    x->conn_kept = 0;
    x->close_reason = 0;
    if (x->head) x->head[0] = 0;
    if (x->resp_body) x->resp_body[0] = 0;
    if (x->trailers) x->trailers[0] = 0;
}

TT_API void tt_exchange_reset(tt_exchange *x)
{
    x_clear_outcome(x);
    x->retries = 0;
    x->retry_reason = 0;
    x->lease_wait_ms = 0;
}

TT_API void tt_exchange_cleanup(tt_exchange *x)
{
    free(x->head);
    free(x->resp_body);
    free(x->trailers);
    free(x->priv.wbuf);
    free(x->priv.sbuf);
    x->head = x->resp_body = x->trailers = x->priv.wbuf = x->priv.sbuf = NULL;
    x->priv.head_cap = x->priv.body_cap = x->priv.trl_cap = 0;
    x->priv.wcap = x->priv.scap = 0;
}

TT_API const char *tt_exchange_header(const tt_exchange *x, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (int i = 0; i < x->nhdrs; i++) {
        const tt_hdr_span *h = &x->hdrs[i];
        if (h->name_len == nl && !strncasecmp(x->head + h->name, name, nl)) {
            if (len) *len = h->value_len;
            return x->head + h->value;
        }
    }
    return NULL;
}

/* Grow *p (capacity *cap) to hold need bytes. 0 or -ENOMEM. */
static int grow(char **p, uint32_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    if (n > UINT32_MAX) return -ENOMEM;
    char *q = realloc(*p, n);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = (uint32_t)n;
    return 0;
}

static int wgrow(tt_exchange *x, size_t need)
{
    if (need <= x->priv.wcap) return 0;
    size_t n = x->priv.wcap ? x->priv.wcap : 512;
    while (n < need)
        n *= 2;
    char *q = realloc(x->priv.wbuf, n);
    if (!q) return -ENOMEM;
    x->priv.wbuf = q;
    x->priv.wcap = n;
    return 0;
}

static int wput(tt_exchange *x, const char *s, size_t n)
{
    if (wgrow(x, x->priv.wlen + n + 1) < 0) return -ENOMEM;
    memcpy(x->priv.wbuf + x->priv.wlen, s, n);
    x->priv.wlen += n;
    return 0;
}
#define WPUTS(x, s) wput((x), (s), strlen(s))

/* Serialize the request head into priv.wbuf (kept across retries). */
static int x_build(tt_exchange *x, route *rt, const char *path)
{
    const char *m = x->method ? x->method : "GET";
    int has_host = 0, has_conn = 0, has_expect = 0;
    for (int i = 0; i < x->nheaders; i++) {
        if (!strncasecmp(x->headers[i], "Host:", 5)) has_host = 1;
        if (!strncasecmp(x->headers[i], "Connection:", 11)) has_conn = 1;
        if (!strncasecmp(x->headers[i], "Expect:", 7)) has_expect = 1;
    }
    x->priv.wlen = 0;
    size_t plen = strcspn(path, "#");
    int r = 0;
    r |= WPUTS(x, m);
    r |= wput(x, " ", 1);
    r |= wput(x, path, plen);
    r |= WPUTS(x, x->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    if (!has_host) {
        r |= WPUTS(x, "Host: ");
        r |= WPUTS(x, rt->hosthdr);
        r |= wput(x, "\r\n", 2);
    }
    for (int i = 0; i < x->nheaders; i++) {
        r |= WPUTS(x, x->headers[i]);
        r |= wput(x, "\r\n", 2);
    }
    if (!has_conn) {
        if (x->no_keepalive && !x->http10)
            r |= WPUTS(x, "Connection: close\r\n");
        else if (!x->no_keepalive && x->http10)
            r |= WPUTS(x, "Connection: keep-alive\r\n");
    }
    if (x->body) {
        char num[48];
        int n = snprintf(num, sizeof num, "Content-Length: %zu\r\n", x->body_len);
        r |= wput(x, num, (size_t)n);
    } else if (x->body_read) {
        r |= WPUTS(x, "Transfer-Encoding: chunked\r\n");
    } else if (!strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
        r |= WPUTS(x, "Content-Length: 0\r\n");
    }
    if (x->expect_continue && !has_expect && (x->body || x->body_read) && !x->http10)
        r |= WPUTS(x, "Expect: 100-continue\r\n");
    r |= wput(x, "\r\n", 2);
    return r ? -ENOMEM : 0;
}

/* ---- routes and DNS ---- */

static void route_apply(tt_client *c, route *rt, const tt_addr *a, int n)
{
    if (n <= 0) {
        rt->resolve_err = n ? n : -ENOENT;
        rt->naddr = 0;
        rt->resolved_at = tt_loop_now(c->loop);
        return;
    }
    rt->resolve_err = 0;
    rt->naddr = n > MAX_ADDRS ? MAX_ADDRS : n;
    memcpy(rt->addrs, a, sizeof(tt_addr) * (size_t)rt->naddr);
    rt->resolved_at = tt_loop_now(c->loop);
    /* A connection to an address that left the answer is retired after its current use. */
    for (conn *k = c->all; k; k = k->anext) {
        if (k->rt != rt) continue;
        int found = 0;
        for (int i = 0; i < rt->naddr; i++)
            if (rt->addrs[i].len == k->addr.len &&
                !memcmp(&rt->addrs[i].ss, &k->addr.ss, k->addr.len))
                found = 1;
        if (!found) k->retired = 1;
    }
}

static void *resolve_thread(void *arg)
{
    resolve_job *j = arg;
    j->n = tt_addr_resolve(j->host, j->port, j->out, MAX_ADDRS);
    tt_async_send(&j->a);
    return NULL;
}

static void conn_close(conn *k, int reason);

static void resolve_done(tt_loop *loop, tt_async *a)
{
    resolve_job *j = a->data;
    tt_client *c = j->c;
    pthread_join(j->th, NULL);
    for (resolve_job **pp = &c->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    route *rt = j->rt;
    rt->resolving = 0;
    route_apply(c, rt, j->out, j->n);
    for (conn *k = c->all, *nx; k; k = nx) {
        nx = k->anext;
        if (k->retired && k->state == C_IDLE) conn_close(k, TT_EVICT_DNS);
    }
    tt_async_close(&j->a);
    free(j);
    c_dispatch(c);
}

/* Resolve rt: inline (blocking getaddrinfo) for a client with its own loop or a numeric host,
 * else in a helper thread whose result comes back through a tt_async. */
static void route_resolve(tt_client *c, route *rt)
{
    if (rt->resolving) return;
    tt_addr tmp;
    char numeric[300];
    if (strchr(rt->host, ':'))
        snprintf(numeric, sizeof numeric, "[%s]:%d", rt->host, rt->port);
    else
        snprintf(numeric, sizeof numeric, "%s:%d", rt->host, rt->port);
    if (tt_addr_parse(&tmp, numeric) == 0) {
        route_apply(c, rt, &tmp, 1);
        return;
    }
    if (c->own_loop) {
        tt_addr out[MAX_ADDRS];
        int n = tt_addr_resolve(rt->host, rt->port, out, MAX_ADDRS);
        route_apply(c, rt, out, n);
        return;
    }
    resolve_job *j = calloc(1, sizeof *j);
    if (!j) {
        rt->resolve_err = -ENOMEM;
        return;
    }
    j->c = c;
    j->rt = rt;
    snprintf(j->host, sizeof j->host, "%s", rt->host);
    j->port = rt->port;
    if (tt_async_init(c->loop, &j->a, resolve_done, j) < 0) {
        free(j);
        rt->resolve_err = -ENOMEM;
        return;
    }
    rt->resolving = 1;
    if (pthread_create(&j->th, NULL, resolve_thread, j) != 0) {
        tt_async_close(&j->a);
        free(j);
        rt->resolving = 0;
        rt->resolve_err = -EAGAIN;
        return;
    }
    j->next = c->jobs;
    c->jobs = j;
}

static route *route_get(tt_client *c, const char *host, int port)
{
    for (route *rt = c->routes; rt; rt = rt->next)
        if (rt->port == port && !strcasecmp(rt->host, host)) return rt;
    route *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    snprintf(rt->host, sizeof rt->host, "%s", host);
    rt->port = port;
    int v6 = strchr(host, ':') != NULL;
    if (port == 80)
        snprintf(rt->hosthdr, sizeof rt->hosthdr, v6 ? "[%s]" : "%s", host);
    else
        snprintf(rt->hosthdr, sizeof rt->hosthdr, v6 ? "[%s]:%d" : "%s:%d", host, port);
    rt->next = c->routes;
    c->routes = rt;
    return rt;
}

/* ---- connections ---- */

static void idle_unlink(conn *k)
{
    route *rt = k->rt;
    if (k->prev)
        k->prev->next = k->next;
    else
        rt->idle = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        rt->idle_tail = k->prev;
    k->prev = k->next = NULL;
    rt->nidle--;
}

static void conn_close(conn *k, int reason)
{
    tt_client *c = k->c;
    route *rt = k->rt;
    if (k->state == C_IDLE)
        idle_unlink(k);
    else if (k->state == C_CONNECTING)
        rt->nconnecting--;
    else if (k->state == C_BUSY)
        rt->nbusy--;
    c->st.evictions[reason]++;
    VLOG(c, "* Closing connection #%u (%s, %u request%s)", k->id, tt_evict_reason_name(reason),
         k->requests, k->requests == 1 ? "" : "s");
    tt_timer_stop(c->loop, &k->timer);
    tt_io_stop(c->loop, &k->io);
    close(k->fd);
    tt_buf_release(&k->rb, c->bp);
    if (k->aprev)
        k->aprev->anext = k->anext;
    else
        c->all = k->anext;
    if (k->anext) k->anext->aprev = k->aprev;
    c->total--;
    free(k);
}

static void conn_expire(tt_loop *loop, tt_timer *t)
{
    conn *k = tt_container_of(t, conn, timer);
    tt_client *c = k->c;
    conn_close(k, k->expire_reason);
    c_dispatch(c);
}

static conn *conn_open(tt_client *c, route *rt, const tt_addr *a, int *err)
{
    conn *k = calloc(1, sizeof *k);
    if (!k) {
        *err = -ENOMEM;
        return NULL;
    }
    int fd = tt_connect_start(a);
    if (fd < 0) {
        free(k);
        *err = fd;
        return NULL;
    }
    if (!c->o.no_nodelay) tt_sock_nodelay(fd, 1);
    if (c->o.tcp_keepalive.idle_s || c->o.tcp_keepalive.intvl_s || c->o.tcp_keepalive.cnt)
        tt_sock_keepalive(fd, &c->o.tcp_keepalive);
    k->fd = fd;
    k->c = c;
    k->rt = rt;
    k->addr = *a;
    k->id = ++c->next_id;
    k->state = C_CONNECTING;
    k->ka_max = -1;
    k->ka_timeout = -1;
    k->created = tt_loop_now(c->loop);
    uint64_t life = (uint64_t)c->o.max_lifetime_ms;
    if (c->o.lifetime_jitter_pct) {
        c->rng = c->rng * 1664525u + 1013904223u;
        uint64_t span = life * (uint64_t)c->o.lifetime_jitter_pct / 100;
        if (span) life = life - span + (c->rng >> 8) % (2 * span + 1);
    }
    k->lifetime_at = k->created + life;
    tt_timer_init(&k->timer, conn_expire);
    int r = tt_io_start(c->loop, &k->io, fd, TT_READ | TT_WRITE, 0, conn_io, k);
    if (r < 0) {
        close(fd);
        free(k);
        *err = r;
        return NULL;
    }
    k->anext = c->all;
    if (c->all) c->all->aprev = k;
    c->all = k;
    c->total++;
    rt->nconnecting++;
    return k;
}

/* ---- exchange timers ---- */

static uint64_t x_total_deadline(tt_exchange *x)
{
    tt_client *c = x->priv.client;
    return c->o.total_timeout_ms > 0 ? x->priv.started + (uint64_t)c->o.total_timeout_ms
                                     : UINT64_MAX;
}

static void x_arm(tt_exchange *x, uint64_t phase_deadline)
{
    uint64_t d = x_total_deadline(x);
    if (phase_deadline < d) d = phase_deadline;
    x->priv.deadline = d;
    if (d == UINT64_MAX)
        tt_timer_stop(x->priv.client->loop, &x->priv.timer);
    else
        tt_timer_start_at(x->priv.client->loop, &x->priv.timer, d);
}

static void q_remove(tt_client *c, tt_exchange *x)
{
    if (x->priv.qprev)
        x->priv.qprev->priv.qnext = x->priv.qnext;
    else
        c->qhead = x->priv.qnext;
    if (x->priv.qnext)
        x->priv.qnext->priv.qprev = x->priv.qprev;
    else
        c->qtail = x->priv.qprev;
    x->priv.qnext = x->priv.qprev = NULL;
    ((route *)x->priv.route)->npending--;
}

static void q_insert_before(tt_client *c, tt_exchange *x, tt_exchange *nx)
{
    if (!nx) {
        x->priv.qnext = NULL;
        x->priv.qprev = c->qtail;
        if (c->qtail)
            c->qtail->priv.qnext = x;
        else
            c->qhead = x;
        c->qtail = x;
    } else {
        x->priv.qnext = nx;
        x->priv.qprev = nx->priv.qprev;
        if (nx->priv.qprev)
            nx->priv.qprev->priv.qnext = x;
        else
            c->qhead = x;
        nx->priv.qprev = x;
    }
    ((route *)x->priv.route)->npending++;
}

static void q_push(tt_client *c, tt_exchange *x)
{
    x->priv.qnext = NULL;
    x->priv.qprev = c->qtail;
    if (c->qtail)
        c->qtail->priv.qnext = x;
    else
        c->qhead = x;
    c->qtail = x;
    ((route *)x->priv.route)->npending++;
}

/* Finish x: detach everything, record the outcome, call on_done. */
static void x_complete(tt_exchange *x, int err, const char *what, int sent)
{
    tt_client *c = x->priv.client;
    if (x->priv.phase == X_QUEUED) q_remove(c, x);
    tt_timer_stop(c->loop, &x->priv.timer);
    tt_timer_stop(c->loop, &x->priv.leak);
    x->priv.phase = X_DONE;
    x->priv.conn = NULL;
    x->priv.done = 1;
    x->error = err;
    x->error_what = what;
    x->sent_state = err ? sent : TT_NOT_SENT;
    if (x->resp_body) x->resp_body[x->resp_body_len] = 0;
    c->st.requests++;
    if (err) {
        c->st.errors++;
        VLOG(c, "* Request failed: %s: %s (%s)", what ? what : "error", strerror(-err),
             sent ? "maybe processed" : "not sent");
    }
    c->inflight--;
    if (x->on_done) x->on_done(x);
}

static void x_done_defer(tt_loop *loop, tt_defer *d)
{
    tt_exchange *x = tt_container_of(d, tt_exchange, priv.defer);
    if (x->on_done) x->on_done(x);
}

/* Like x_complete (success), but on_done runs from a deferred callback: used while a pipelined
 * connection goes on reading, so no caller code runs under its feet. */
static void x_complete_later(tt_exchange *x, int err, const char *what, int sent)
{
    tt_exchange_cb cb = x->on_done;
    x->on_done = NULL;
    x_complete(x, err, what, sent);
    x->on_done = cb;
    if (cb) tt_defer_queue(x->priv.client->loop, &x->priv.defer, x_done_defer);
}

/* The connection failed under x (or x's attempt failed): close it, then retry or fail x. */
/* Retry x after its connection failed (already closed), or fail it. */
static void x_retry_or_fail(tt_exchange *x, int err, const char *what, int was_reused)
{
    tt_client *c = x->priv.client;
    int sent = x->priv.wrote > 0 ? TT_MAYBE_PROCESSED : TT_NOT_SENT;
    x->priv.conn = NULL;
    uint64_t now = tt_loop_now(c->loop);
    int can_time = now < x_total_deadline(x);
    int rewindable = x->body || !x->body_read || x->body_rewind || !x->priv.body_pulled;
    if (can_time && sent == TT_NOT_SENT && err != -ETIMEDOUT &&
        x->priv.attempts_ns < c->o.max_retries_not_sent) {
        x->priv.attempts_ns++;
        x->retries++;
        x->retry_reason = TT_RETRY_NOT_SENT;
        c->st.retries++;
        c->st.retries_by[TT_RETRY_NOT_SENT]++;
        VLOG(c, "* Retrying (not sent: %s on %s connection)", strerror(err ? -err : ECONNRESET),
             was_reused ? "a reused" : "a new");
        x_attempt(x);
        return;
    }
    if (can_time && sent == TT_MAYBE_PROCESSED && !x->priv.resp_bytes && !x->priv.attempt_maybe &&
        err != -ETIMEDOUT && rewindable &&
        (x->idempotent ||
         tt__client_idempotent(x->method ? x->method : "GET", x->headers, x->nheaders))) {
        if (x->body_read && x->priv.body_pulled) {
            if (x->body_rewind(x->body_data) < 0) goto fail;
        }
        x->priv.attempt_maybe = 1;
        x->priv.fresh_only = 1;
        x->retries++;
        x->retry_reason = TT_RETRY_MAYBE_PROCESSED;
        c->st.retries++;
        c->st.retries_by[TT_RETRY_MAYBE_PROCESSED]++;
        VLOG(c, "* Retrying idempotent request on a fresh connection (maybe processed: %s)",
             strerror(err ? -err : ECONNRESET));
        x_attempt(x);
        return;
    }
fail:
    x_complete(x, err ? err : -ECONNRESET, what, sent);
    c_dispatch(c);
}

/* Detach every exchange from k (reading one first, then the pipelined ones), close k. */
static int conn_detach_all(conn *k, tt_exchange **list, int reason)
{
    int n = 0;
    if (k->x) list[n++] = k->x;
    for (tt_exchange *p = k->pq_head; p && n < MAX_PIPELINE + 1; p = p->priv.qnext)
        list[n++] = p;
    for (int i = 0; i < n; i++) {
        list[i]->conn_id = k->id;
        list[i]->close_reason = TT_EVICT_ERROR;
        list[i]->priv.qnext = list[i]->priv.qprev = NULL;
    }
    k->x = k->w = k->pq_head = k->pq_tail = NULL;
    k->pn = 0;
    conn_close(k, reason);
    return n;
}

/* The connection failed under its exchange(s): close it, then retry or fail each. culprit (may
 * be NULL) is an exchange that timed out: it fails with -ETIMEDOUT, the others get err. */
static void conn_fail_all(conn *k, int err, const char *what, tt_exchange *culprit)
{
    tt_exchange *list[MAX_PIPELINE + 1];
    int was_reused = k->requests > 1;
    int n = conn_detach_all(k, list,
                            err == -EPIPE || err == -ECONNRESET || err == 0 ? TT_EVICT_PEER_CLOSED
                                                                            : TT_EVICT_ERROR);
    for (int i = 0; i < n; i++) {
        tt_exchange *x = list[i];
        if (x == culprit) {
            x->priv.conn = NULL;
            x_complete(x, -ETIMEDOUT, what, x->priv.wrote ? TT_MAYBE_PROCESSED : TT_NOT_SENT);
            c_dispatch(x->priv.client);
        } else {
            x_retry_or_fail(x, err, what, was_reused);
        }
    }
}

static void x_conn_failed(conn *k, int err, const char *what)
{
    conn_fail_all(k, err, what, NULL);
}

static void x_timer(tt_loop *loop, tt_timer *t)
{
    tt_exchange *x = tt_container_of(t, tt_exchange, priv.timer);
    tt_client *c = x->priv.client;
    uint64_t now = tt_loop_now(loop);
    conn *k = x->priv.conn;
    if (x->priv.phase == X_WAIT_CONTINUE && now < x_total_deadline(x)) {
        /* No 100 Continue in time: send the body anyway. */
        x->priv.phase = X_SENDING;
        x_arm(x, now + (uint64_t)c->o.head_timeout_ms);
        if (!x_write(k) && k->rb.len) conn_read(k);
        return;
    }
    const char *what = x->priv.phase == X_QUEUED       ? "lease timeout"
                       : x->priv.phase == X_CONNECTING ? "connect timeout"
                       : now >= x_total_deadline(x)    ? "total timeout"
                                                       : "response timeout";
    if (k) {
        conn_fail_all(k, -ECONNABORTED, what, x);
        return;
    }
    x_complete(x, -ETIMEDOUT, what, TT_NOT_SENT);
    c_dispatch(c);
}

static void x_leak(tt_loop *loop, tt_timer *t)
{
    tt_exchange *x = tt_container_of(t, tt_exchange, priv.leak);
    tt_client *c = x->priv.client;
    conn *k = x->priv.conn;
    clog_(c, "tether client: warning: connection #%u leased for %llu ms (taken at %s:%d, %s %s)",
          k ? k->id : 0, (unsigned long long)(tt_loop_now(loop) - x->priv.queued_at),
          x->priv.file ? x->priv.file : "?", x->priv.line, x->method ? x->method : "GET", x->url);
}

/* Count one more request on k and reset x's per-attempt send and outcome state. */
static void x_begin_send(tt_exchange *x, conn *k)
{
    k->requests++;
    k->rt->requests++;
    x->priv.phase = X_SENDING;
    x->priv.woff = 0;
    x->priv.wrote = 0;
    x->priv.body_off = 0;
    x->priv.slen = x->priv.soff = 0;
    x->priv.flags = 0;
    x->priv.resp_bytes = 0;
    x_clear_outcome(x);
}
/* ---- sending ---- */

static void x_attach(tt_exchange *x, conn *k, int reused)
{
    tt_client *c = x->priv.client;
    route *rt = k->rt;
    uint64_t now = tt_loop_now(c->loop);
    k->x = x;
    k->w = x;
    x->priv.conn = k;
    x->reused = reused;
    x->conn_id = k->id;
    if (x->priv.phase != X_CONNECTING) {
        uint64_t waited = now - x->priv.queued_at;
        x->lease_wait_ms = waited;
        c->st.lease_wait[tt__client_wait_bucket(waited)]++;
    }
    if (!tt_timer_armed(&x->priv.leak))
        tt_timer_start(c->loop, &x->priv.leak, (uint64_t)c->o.leak_warn_ms);
    if (k->state == C_CONNECTING) {
        x->priv.phase = X_CONNECTING;
        x_arm(x, now + (uint64_t)c->o.connect_timeout_ms);
        return;
    }
    if (reused) {
        c->st.connections_reused++;
        rt->reused++;
        VLOG(c, "* Re-using existing connection #%u with %s:%d (idle %llu ms)", k->id, rt->host,
             rt->port, (unsigned long long)(now - k->last_used));
    }
    x_begin_send(x, k);
    x->reused = reused;
    x->conn_id = k->id;
    tt_http1_parser_init(&k->parser, NULL);
    memset(&k->resp, 0, sizeof k->resp);
    k->resp.headers = k->hdr;
    k->resp.max_headers = TT_CLIENT_MAX_HEADERS;
    x_arm(x, now + (uint64_t)c->o.head_timeout_ms);
    if (c->o.verbose) {
        const char *p = x->priv.wbuf, *e = x->priv.wbuf + x->priv.wlen;
        while (p < e) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t ll = (size_t)((nl ? nl : e) - p);
            if (ll && p[ll - 1] == '\r') ll--;
            if (ll) clog_(c, "> %.*s", (int)ll, p);
            p = nl ? nl + 1 : e;
        }
    }
    x_write(k);
}

/* Fill the streamed-body staging buffer with the next chunk. 0 or -errno. */
static int x_stream_fill(tt_exchange *x)
{
    if (!x->priv.sbuf) {
        x->priv.sbuf = malloc(READ_CHUNK + 32);
        if (!x->priv.sbuf) return -ENOMEM;
        x->priv.scap = READ_CHUNK + 32;
    }
    x->priv.body_pulled = 1;
    ssize_t n = x->body_read(x->body_data, x->priv.sbuf + 20, READ_CHUNK);
    if (n < 0) return (int)n;
    if (n == 0) {
        memcpy(x->priv.sbuf, "0\r\n\r\n", 5);
        x->priv.soff = 0;
        x->priv.slen = 5;
        x->priv.flags |= XF_STREAM_EOF;
        return 0;
    }
    char h[TT_HTTP1_CHUNK_HEADER_MAX];
    size_t hl = tt_http1_chunk_header(h, (uint64_t)n);
    x->priv.soff = 20 - hl;
    memcpy(x->priv.sbuf + x->priv.soff, h, hl);
    memcpy(x->priv.sbuf + 20 + n, "\r\n", 2);
    x->priv.slen = 20 + (size_t)n + 2;
    return 0;
}

/* The writer finished its request: the next pipelined exchange (if any) writes next. */
static void x_sent_all(conn *k)
{
    tt_exchange *x = k->w;
    x->priv.flags |= XF_BODY_SENT;
    if (x->priv.phase == X_SENDING) x->priv.phase = X_READING;
    tt_exchange *nx = x == k->x ? k->pq_head : x->priv.qnext;
    k->w = nx;
}

/* Write what can be written. Returns 1 if k may no longer be touched (failed/closed). */
static int x_write(conn *k)
{
    tt_exchange *x = k->w;
    if (!x) return 0;
    int expect = x->expect_continue && (x->body || x->body_read) && !x->http10;
    for (;;) {
        if (x != k->w) { /* pipelining: the next request is written right behind */
            x = k->w;
            if (!x) return 0;
            expect = 0;
        }
        struct iovec iov[2];
        int n = 0;
        int head_left = x->priv.woff < x->priv.wlen;
        if (head_left) {
            iov[n].iov_base = x->priv.wbuf + x->priv.woff;
            iov[n++].iov_len = x->priv.wlen - x->priv.woff;
        }
        int body_phase = !head_left && x->priv.phase == X_SENDING;
        if (!head_left && !(x->priv.flags & XF_HEAD_DONE)) {
            x->priv.flags |= XF_HEAD_DONE;
            if (expect && x->priv.phase == X_SENDING) {
                x->priv.phase = X_WAIT_CONTINUE;
                tt_client *c = k->c;
                x_arm(x, tt_loop_now(c->loop) + (uint64_t)c->o.continue_timeout_ms);
                return 0;
            }
        }
        if (x->body && x->priv.body_off < x->body_len && ((head_left && !expect) || body_phase)) {
            iov[n].iov_base = (char *)x->body + x->priv.body_off;
            iov[n++].iov_len = x->body_len - x->priv.body_off;
        } else if (x->body_read && !x->body && !head_left && body_phase) {
            if (x->priv.soff == x->priv.slen) {
                if (x->priv.flags & XF_STREAM_EOF) {
                    x_sent_all(k);
                    continue;
                }
                int r = x_stream_fill(x);
                if (r < 0) {
                    x_conn_failed(k, r, "request body");
                    return 1;
                }
            }
            iov[n].iov_base = x->priv.sbuf + x->priv.soff;
            iov[n++].iov_len = x->priv.slen - x->priv.soff;
        }
        if (n == 0) {
            if (x->priv.phase != X_SENDING) return 0;
            x_sent_all(k);
            continue;
        }
        /* sendmsg with MSG_NOSIGNAL: a peer that closed must not raise SIGPIPE. */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(k->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0; /* the next TT_WRITE edge resumes */
            if (errno == EINTR) continue;
            x_conn_failed(k, -errno, "send");
            return 1;
        }
        x->priv.wrote += (size_t)w;
        size_t left = (size_t)w;
        if (head_left) {
            size_t h = x->priv.wlen - x->priv.woff;
            size_t t = left < h ? left : h;
            x->priv.woff += t;
            left -= t;
        }
        if (left) {
            if (x->body)
                x->priv.body_off += left;
            else
                x->priv.soff += left;
        }
    }
}

/* ---- receiving ---- */

/* Deliver body bytes. After on_body asked to stop, up to DRAIN_MAX more bytes are read and
 * dropped so the connection can still be reused; beyond that the exchange fails and the
 * connection is closed. */
static int x_body(tt_exchange *x, const char *p, size_t n)
{
    if (!n) return 0;
    if (x->priv.flags & XF_DISCARD) {
        x->priv.chunk_left += n;
        return x->priv.chunk_left > DRAIN_MAX ? -ECANCELED : 0;
    }
    if (x->on_body) {
        if (!x->on_body(x, p, n)) return 0;
        x->priv.flags |= XF_DISCARD;
        x->priv.chunk_left = 0;
        return 0;
    }
    if (grow(&x->resp_body, &x->priv.body_cap, x->resp_body_len + n + 1) < 0) return -ENOMEM;
    memcpy(x->resp_body + x->resp_body_len, p, n);
    x->resp_body_len += n;
    return 0;
}

/* Copy the final head into x->head with header spans. */
static int x_store_head(tt_exchange *x, conn *k, const char *buf, size_t hl)
{
    if (grow(&x->head, &x->priv.head_cap, hl + 1) < 0) return -ENOMEM;
    memcpy(x->head, buf, hl);
    x->head[hl] = 0;
    x->head_len = hl;
    x->status = k->resp.status;
    x->version_minor = k->resp.minor_version;
    x->nhdrs = (int)k->resp.num_headers;
    for (int i = 0; i < x->nhdrs; i++) {
        x->hdrs[i].name = (uint32_t)(k->hdr[i].name - buf);
        x->hdrs[i].name_len = (uint32_t)k->hdr[i].name_len;
        x->hdrs[i].value = (uint32_t)(k->hdr[i].value - buf);
        x->hdrs[i].value_len = (uint32_t)k->hdr[i].value_len;
    }
    return 0;
}

static int x_store_trailers(tt_exchange *x, conn *k)
{
    size_t need = 1;
    for (size_t i = 0; i < k->cd.num_trailers; i++)
        need += k->trl[i].name_len + k->trl[i].value_len + 4;
    if (grow(&x->trailers, &x->priv.trl_cap, need) < 0) return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < k->cd.num_trailers; i++) {
        memcpy(x->trailers + o, k->trl[i].name, k->trl[i].name_len);
        o += k->trl[i].name_len;
        memcpy(x->trailers + o, ": ", 2);
        o += 2;
        memcpy(x->trailers + o, k->trl[i].value, k->trl[i].value_len);
        o += k->trl[i].value_len;
        memcpy(x->trailers + o, "\r\n", 2);
        o += 2;
    }
    x->trailers[o] = 0;
    x->trailers_len = o;
    return 0;
}

/* Response complete: decide reuse, put the connection back or close it, complete x. */
/* Returns 1 when k is idle, closed or another exchange's, 2 when k goes on reading the next
 * pipelined response. */
static int x_response_done(conn *k, int close_delimited)
{
    tt_exchange *x = k->x;
    tt_client *c = k->c;
    route *rt = k->rt;
    uint64_t now = tt_loop_now(c->loop);
    tt__reuse_in in = {0};
    in.req_close = x->no_keepalive || (x->http10 && x->no_keepalive);
    in.resp_close = (k->resp.flags & TT_HTTP1_F_CONN_CLOSE) != 0;
    in.resp_minor = k->resp.minor_version;
    in.resp_keepalive = (k->resp.flags & TT_HTTP1_F_CONN_KEEPALIVE) != 0;
    in.close_delimited = close_delimited;
    in.body_complete = 1;
    int more = k->pq_head != NULL;
    in.leftover = !more && k->rb.len != 0;
    in.peer_fin = k->peer_fin && !more;
    in.ka_max = k->ka_max;
    in.retired = k->retired;
    in.continue_unsent = !(x->priv.flags & XF_BODY_SENT);
    if (x->http10 && !in.resp_keepalive) in.req_close = 1;
    int reason = 0;
    int closeit = tt__client_reuse(&in, &reason);
    if (!closeit && !more && rt->nidle >= c->o.max_idle_per_route) {
        closeit = 1;
        reason = TT_EVICT_POOL_FULL;
    }
    int err = (x->priv.flags & XF_DISCARD) ? -ECANCELED : 0;
    const char *what = err ? "body aborted (drained)" : NULL;
    int sent = err ? TT_MAYBE_PROCESSED : TT_NOT_SENT;
    x->conn_id = k->id;
    k->last_used = now;
    if (more && closeit) {
        /* The server closes after this response: the pipelined requests behind it failed. */
        tt_exchange *list[MAX_PIPELINE + 1];
        k->x = NULL;
        if (k->w == x) k->w = NULL;
        int n = conn_detach_all(k, list, reason);
        x->conn_kept = 0;
        x->close_reason = reason;
        x_complete(x, err, what, sent);
        for (int i = 0; i < n; i++)
            x_retry_or_fail(list[i], -ECONNRESET, "connection closed behind a pipelined request",
                            1);
        c_dispatch(c);
        return 1;
    }
    if (more) {
        /* Pipelining: the next exchange's response follows on the same connection. */
        tt_exchange *nx = k->pq_head;
        k->pq_head = nx->priv.qnext;
        if (!k->pq_head) k->pq_tail = NULL;
        nx->priv.qnext = NULL;
        k->pn--;
        k->x = nx;
        k->proven = 1;
        tt_http1_parser_init(&k->parser, NULL);
        memset(&k->resp, 0, sizeof k->resp);
        k->resp.headers = k->hdr;
        k->resp.max_headers = TT_CLIENT_MAX_HEADERS;
        x->conn_kept = 1;
        x_complete_later(x, err, what, sent);
        return 2;
    }
    k->x = NULL;
    k->w = NULL;
    if (!closeit) {
        tt__expiry_in e = {now, (uint64_t)c->o.idle_timeout_ms, k->ka_timeout, k->lifetime_at,
                           rt->learned_idle_ms};
        int why;
        uint64_t at = tt__client_expiry(&e, &why);
        if (at <= now) {
            closeit = 1;
            reason = why;
        } else {
            k->expire_reason = why;
            tt_timer_start_at(c->loop, &k->timer, at);
        }
    }
    if (closeit) {
        x->conn_kept = 0;
        x->close_reason = reason;
        conn_close(k, reason);
    } else {
        x->conn_kept = 1;
        k->proven = 1;
        rt->nbusy--;
        k->state = C_IDLE;
        k->next = rt->idle;
        k->prev = NULL;
        if (rt->idle)
            rt->idle->prev = k;
        else
            rt->idle_tail = k;
        rt->idle = k;
        rt->nidle++;
        tt_buf_release_if_empty(&k->rb, c->bp);
        if (k->rready) {
            /* The socket may hold more bytes: look once (a stray byte or FIN evicts it). */
            conn_read(k);
        }
    }
    x_complete(x, err, what, sent);
    c_dispatch(c);
    return 1;
}

static void idle_event(conn *k)
{
    tt_client *c = k->c;
    char b;
    ssize_t n = recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !k->peer_fin) {
        k->rready = 0;
        return; /* spurious wake-up: still healthy */
    }
    uint64_t now = tt_loop_now(c->loop);
    if (n <= 0 && k->ka_timeout < 0) {
        /* The server closed an idle connection on its own: learn its idle-close time. */
        k->rt->learned_idle_ms = tt__client_learn(k->rt->learned_idle_ms, now - k->last_used);
    }
    VLOG(c, "* Connection #%u %s while idle after %llu ms", k->id,
         n > 0 ? "got unsolicited bytes" : "closed by the server",
         (unsigned long long)(now - k->last_used));
    conn_close(k, TT_EVICT_PEER_CLOSED);
    c_dispatch(c);
}

/* Process buffered bytes of the current response. Returns 1 when the response completed (or x
 * failed), 0 when more input is needed. */
static int x_process(conn *k, int eof)
{
    tt_exchange *x = k->x;
    tt_client *c = k->c;
    for (;;) {
        if (x->status == 0) {
            int r = tt_http1_parse_response(&k->parser, k->rb.data, k->rb.len,
                                            (tt_http1_method)x->priv.method_id, &k->resp);
            if (r == -2) {
                if (eof) {
                    x_conn_failed(k, k->rb.len ? -EPROTO : -ECONNRESET,
                                  k->rb.len ? "truncated response head" : "connection closed");
                    return 1;
                }
                return 0;
            }
            if (r < 0) {
                x_conn_failed(k, -EPROTO, tt_http1_error_name(k->parser.error));
                return 1;
            }
            if (k->resp.status < 200) {
                x->informational++;
                int st = k->resp.status;
                tt_buf_consume(&k->rb, (size_t)r);
                tt_http1_parser_init(&k->parser, NULL);
                memset(&k->resp, 0, sizeof k->resp);
                k->resp.headers = k->hdr;
                k->resp.max_headers = TT_CLIENT_MAX_HEADERS;
                if (st == 101) {
                    x_conn_failed(k, -EPROTO, "unexpected 101 Switching Protocols");
                    return 1;
                }
                if (st == 100 && x->priv.phase == X_WAIT_CONTINUE) {
                    x->priv.phase = X_SENDING;
                    x_arm(x, tt_loop_now(c->loop) + (uint64_t)c->o.head_timeout_ms);
                    if (x_write(k)) return 1;
                }
                continue;
            }
            if (x_store_head(x, k, k->rb.data, (size_t)r) < 0) {
                x_conn_failed(k, -ENOMEM, "memory");
                return 1;
            }
            tt_buf_consume(&k->rb, (size_t)r);
            x->priv.remain = 0;
            if (k->resp.flags & TT_HTTP1_F_KEEPALIVE_HDR) {
                size_t vl;
                const char *v = tt_exchange_header(x, "Keep-Alive", &vl);
                tt_http1_keepalive ka = {-1, -1};
                if (v) tt_http1_keepalive_parse(v, vl, &ka);
                k->ka_timeout = ka.timeout;
                k->ka_max = ka.max;
            } else {
                k->ka_timeout = -1;
                k->ka_max = -1;
            }
            if (x->priv.phase == X_WAIT_CONTINUE) {
                /* A final answer before the body was sent: the body is never sent. */
                x->priv.phase = X_READING;
            }
            if (c->o.verbose) {
                char line[512];
                size_t hl = x->head_len > 2 ? x->head_len - 2 : x->head_len;
                const char *p = x->head, *e = x->head + hl;
                while (p < e) {
                    const char *nl = memchr(p, '\n', (size_t)(e - p));
                    size_t ll = (size_t)((nl ? nl : e) - p);
                    if (ll && p[ll - 1] == '\r') ll--;
                    snprintf(line, sizeof line, "< %.*s", (int)ll, p);
                    clog_(c, "%s", line);
                    p = nl ? nl + 1 : e;
                }
            }
            if (k->resp.body == TT_HTTP1_BODY_CHUNKED) {
                memset(&k->cd, 0, sizeof k->cd);
                k->cd.trailers = k->trl;
                k->cd.max_trailers = 32;
                tt_http1_chunked_init(&k->cd);
            } else if (k->resp.body == TT_HTTP1_BODY_LENGTH) {
                x->priv.remain = (long long)k->resp.content_length;
            }
        }
        /* body */
        switch (k->resp.body) {
        case TT_HTTP1_BODY_NONE: return x_response_done(k, 0);
        case TT_HTTP1_BODY_LENGTH: {
            size_t n =
                k->rb.len < (unsigned long long)x->priv.remain ? k->rb.len : (size_t)x->priv.remain;
            if (x_body(x, k->rb.data, n) < 0) {
                x_conn_failed(k, -ECANCELED, "body aborted");
                return 1;
            }
            tt_buf_consume(&k->rb, n);
            x->priv.remain -= (long long)n;
            if (x->priv.remain == 0) {
                return x_response_done(k, 0);
            }
            if (eof) {
                x->priv.resp_bytes = 1;
                x_conn_failed(k, -EPROTO, "connection closed mid-body");
                return 1;
            }
            return 0;
        }
        case TT_HTTP1_BODY_CHUNKED: {
            size_t out = 0;
            long r = tt_http1_chunked_decode(&k->cd, k->rb.data, k->rb.len, &out);
            if (r < 0) {
                x->priv.resp_bytes = 1;
                x_conn_failed(k, -EPROTO, tt_http1_error_name(k->cd.error));
                return 1;
            }
            if (x_body(x, k->rb.data, out) < 0) {
                x_conn_failed(k, -ECANCELED, "body aborted");
                return 1;
            }
            if (k->cd.done && x_store_trailers(x, k) < 0) {
                x_conn_failed(k, -ENOMEM, "memory");
                return 1;
            }
            tt_buf_consume(&k->rb, (size_t)r);
            if (k->cd.done) {
                return x_response_done(k, 0);
            }
            if (eof) {
                x->priv.resp_bytes = 1;
                x_conn_failed(k, -EPROTO, "connection closed mid-body");
                return 1;
            }
            return 0;
        }
        case TT_HTTP1_BODY_CLOSE:
            if (x_body(x, k->rb.data, k->rb.len) < 0) {
                x_conn_failed(k, -ECANCELED, "body aborted");
                return 1;
            }
            tt_buf_consume(&k->rb, k->rb.len);
            if (eof) {
                return x_response_done(k, 1);
            }
            return 0;
        }
        return 0;
    }
}

static void conn_read(conn *k)
{
    tt_client *c = k->c;
    for (;;) {
        if (k->state == C_IDLE) {
            idle_event(k);
            return;
        }
        ssize_t n = tt_buf_read_fd(&k->rb, c->bp, k->fd, READ_CHUNK);
        int eof = 0;
        if (n == -EAGAIN) {
            k->rready = 0;
            if (!k->peer_fin) return;
            eof = 1; /* RDHUP reported with nothing left to read */
        } else if (n == -EINTR) {
            continue;
        } else if (n < 0) {
            x_conn_failed(k, (int)n, "recv");
            return;
        } else if (n == 0) {
            eof = 1;
            k->peer_fin = 1;
        } else {
            k->rready = tt_buf_space(&k->rb) == 0;
            k->x->priv.resp_bytes = 1;
            if (k->x->priv.phase == X_READING && k->resp.status)
                x_arm(k->x, tt_loop_now(c->loop) + (uint64_t)c->o.head_timeout_ms);
        }
        int r;
        while ((r = x_process(k, eof)) == 2) /* pipelined: the next response may be buffered */
            k->x->priv.resp_bytes = k->rb.len != 0;
        if (r || eof) return;
        if (!k->rready && !k->peer_fin)
            return; /* a short read drained the socket: the next edge brings more */
    }
}

static void conn_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    conn *k = io->data;
    if (ev & (TT_RDHUP | TT_HUP)) k->peer_fin = 1;
    switch (k->state) {
    case C_CONNECTING: {
        if (!(ev & (TT_WRITE | TT_ERROR | TT_HUP))) return;
        int r = tt_connect_result(k->fd);
        if (r == -EINPROGRESS || r == -EALREADY) return;
        if (r < 0) {
            if (k->x)
                x_conn_failed(k, r, "connect");
            else
                conn_close(k, TT_EVICT_ERROR);
            return;
        }
        tt_client *c = k->c;
        k->state = C_BUSY;
        k->rt->nconnecting--;
        k->rt->nbusy++;
        k->rt->opened++;
        c->st.connections_opened++;
        char a[64];
        tt_addr_format(&k->addr, a, sizeof a);
        VLOG(c, "* Connected to %s (%s) as connection #%u", k->rt->host, a, k->id);
        tt_exchange *x = k->x;
        k->state = C_BUSY;
        x_attach(x, k, 0);
        return;
    }
    case C_IDLE:
        if (ev & (TT_READ | TT_RDHUP | TT_HUP | TT_ERROR)) idle_event(k);
        return;
    case C_BUSY: {
        tt_exchange *x = k->x;
        if (!x) return;
        if ((ev & TT_WRITE) && k->w && k->w->priv.phase == X_SENDING) {
            if (x_write(k)) return;
        }
        if (ev & (TT_READ | TT_RDHUP | TT_HUP | TT_ERROR)) {
            if (ev & TT_ERROR && !(ev & TT_READ)) {
                int e = tt_connect_result(k->fd);
                if (e < 0 && !k->rb.len) {
                    x_conn_failed(k, e, "socket error");
                    return;
                }
            }
            conn_read(k);
        }
        return;
    }
    }
}

/* ---- leasing ---- */

/* May x be pipelined behind other requests? Only idempotent requests without a body. */
static int x_pipelinable(tt_client *c, tt_exchange *x)
{
    if (c->o.pipelining < 2 || x->body || x->body_read || x->no_keepalive || x->http10 ||
        x->expect_continue)
        return 0;
    const char *m = x->method ? x->method : "GET";
    return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}

/* A busy connection of x's route that x can be pipelined on: the server kept a connection
 * alive before (HTTP/1.1 persistent), nothing wrong seen, depth below the limit. */
static conn *pipe_conn(tt_client *c, tt_exchange *x)
{
    if (!x_pipelinable(c, x) || x->priv.fresh_only) return NULL;
    conn *best = NULL;
    for (conn *k = c->all; k; k = k->anext) {
        if (k->rt != x->priv.route || k->state != C_BUSY || !k->proven || k->peer_fin ||
            k->retired || !k->x || !x_pipelinable(c, k->x) || k->pn + 2 > c->o.pipelining ||
            k->pn >= MAX_PIPELINE || k->ka_max == 0 || (k->resp.flags & TT_HTTP1_F_CONN_CLOSE))
            continue;
        if (!best || k->pn < best->pn) best = k;
    }
    return best;
}

/* Append x to k's pipeline and write it as soon as the requests before it are written. */
static void x_attach_pipe(tt_exchange *x, conn *k)
{
    tt_client *c = x->priv.client;
    route *rt = k->rt;
    uint64_t now = tt_loop_now(c->loop);
    x->priv.qnext = x->priv.qprev = NULL;
    if (k->pq_tail)
        k->pq_tail->priv.qnext = x;
    else
        k->pq_head = x;
    k->pq_tail = x;
    k->pn++;
    x->priv.conn = k;
    uint64_t waited = now - x->priv.queued_at;
    x->lease_wait_ms = waited;
    c->st.lease_wait[tt__client_wait_bucket(waited)]++;
    if (!tt_timer_armed(&x->priv.leak))
        tt_timer_start(c->loop, &x->priv.leak, (uint64_t)c->o.leak_warn_ms);
    c->st.connections_reused++;
    rt->reused++;
    x_begin_send(x, k);
    x->reused = 1;
    x->conn_id = k->id;
    x_arm(x, now + (uint64_t)c->o.head_timeout_ms);
    VLOG(c, "* Pipelining on connection #%u (%d request%s ahead)", k->id, k->pn,
         k->pn == 1 ? "" : "s");
    if (!k->w) {
        k->w = x;
        x_write(k);
    }
}

/* Can x proceed now? 1: started (attached or connecting), 0: must wait, <0: failed. */
static int x_try_lease(tt_exchange *x)
{
    tt_client *c = x->priv.client;
    route *rt = x->priv.route;
    uint64_t now = tt_loop_now(c->loop);
    if (rt->resolving) return 0;
    if (!x->priv.fresh_only) {
        while (rt->idle) {
            conn *k = rt->idle;
            if (now >= k->timer.at && tt_timer_armed(&k->timer)) {
                conn_close(k, k->expire_reason);
                continue;
            }
            if (k->retired) { /* its address left the answer of an inline lookup */
                conn_close(k, TT_EVICT_DNS);
                continue;
            }
            idle_unlink(k);
            tt_timer_stop(c->loop, &k->timer);
            k->state = C_BUSY;
            rt->nbusy++;
            x_attach(x, k, 1);
            return 1;
        }
    }
    int rcount = rt->nbusy + rt->nconnecting + rt->nidle;
    if (rcount >= c->o.max_per_route) {
        conn *pk = pipe_conn(c, x);
        if (pk) {
            x_attach_pipe(x, pk);
            return 1;
        }
        if (!x->priv.fresh_only || !rt->idle) return 0;
        conn_close(rt->idle_tail, TT_EVICT_POOL_FULL);
    }
    if (c->total >= c->o.max_total) {
        /* Make room: close the least recently used idle connection of any route. */
        conn *victim = NULL;
        for (route *r2 = c->routes; r2; r2 = r2->next)
            if (r2->idle_tail && (!victim || r2->idle_tail->last_used < victim->last_used))
                victim = r2->idle_tail;
        if (!victim) return 0;
        conn_close(victim, TT_EVICT_POOL_FULL);
    }
    if (rt->naddr == 0 && rt->resolve_err && now < rt->resolved_at + 1000)
        return rt->resolve_err; /* a failed lookup is not repeated for every queued request */
    if (rt->naddr == 0 || now >= rt->resolved_at + (uint64_t)c->o.dns_ttl_ms) {
        route_resolve(c, rt);
        if (rt->resolving) return 0;
        if (rt->naddr == 0) return rt->resolve_err ? rt->resolve_err : -ENOENT;
    }
    int err = 0;
    const tt_addr *a = &rt->addrs[(x->priv.attempts_ns) % rt->naddr];
    conn *k = conn_open(c, rt, a, &err);
    if (!k) return err;
    k->x = x;
    x->priv.conn = k;
    x->priv.phase = X_CONNECTING;
    x->priv.fresh_only = 0;
    VLOG(c, "* Connecting to %s:%d (connection #%u)", rt->host, rt->port, k->id);
    x_attach(x, k, 0);
    return 1;
}

/* What failed when a lease attempt returned an error. */
static const char *x_fail_what(tt_exchange *x)
{
    return ((route *)x->priv.route)->naddr == 0 ? "resolve" : "connect";
}

static void x_attempt(tt_exchange *x)
{
    tt_client *c = x->priv.client;
    x->priv.wrote = 0;
    x->priv.resp_bytes = 0;
    x->priv.queued_at = tt_loop_now(c->loop);
    if (c->qhead) {
        /* Fair FIFO: wait behind earlier exchanges (dispatch lets it through if it can go). */
        x->priv.phase = X_QUEUED;
        q_push(c, x);
        x_arm(x, x->priv.queued_at + (uint64_t)c->o.lease_timeout_ms);
        c_dispatch(c);
        return;
    }
    int r = x_try_lease(x);
    if (r == 1) return;
    if (r < 0) {
        x_complete(x, r, x_fail_what(x), TT_NOT_SENT);
        return;
    }
    x->priv.phase = X_QUEUED;
    q_push(c, x);
    x_arm(x, x->priv.queued_at + (uint64_t)c->o.lease_timeout_ms);
}

/* Could queued x make progress now? */
static int x_can_go(tt_client *c, tt_exchange *x)
{
    route *rt = x->priv.route;
    if (rt->resolving) return 0;
    if (rt->idle && !x->priv.fresh_only) return 1;
    int rcount = rt->nbusy + rt->nconnecting + rt->nidle;
    if (rcount >= c->o.max_per_route && !(x->priv.fresh_only && rt->idle))
        return pipe_conn(c, x) != NULL;
    if (c->total < c->o.max_total) return 1;
    for (route *r2 = c->routes; r2; r2 = r2->next)
        if (r2->idle) return 1;
    return 0;
}

/* Start queued exchanges that can go, in FIFO order (an exchange blocked on its route does not
 * hold back other routes). Re-entrant calls only ask the running one to rescan. */
static void c_dispatch(tt_client *c)
{
    if (c->dispatching) {
        c->redispatch = 1;
        return;
    }
    c->dispatching = 1;
    do {
        c->redispatch = 0;
        for (tt_exchange *x = c->qhead, *nx; x; x = nx) {
            nx = x->priv.qnext;
            if (!x_can_go(c, x)) continue;
            q_remove(c, x);
            x->priv.phase = X_NONE;
            int r = x_try_lease(x);
            if (r == 0) {
                q_insert_before(c, x, nx);
                x->priv.phase = X_QUEUED;
                continue;
            }
            if (r < 0) x_complete(x, r, x_fail_what(x), TT_NOT_SENT);
            c->redispatch = 1; /* callbacks may have changed the queue: rescan */
            break;
        }
    } while (c->redispatch);
    c->dispatching = 0;
}

static void x_start_defer(tt_loop *loop, tt_defer *d)
{
    tt_exchange *x = tt_container_of(d, tt_exchange, priv.defer);
    x_attempt(x);
}

static int x_prepare(tt_client *c, tt_exchange *x, const char *file, int line)
{
    char host[256];
    int port;
    const char *path;
    if (!x->url) return -EINVAL;
    int r = tt__client_parse_url(x->url, host, sizeof host, &port, &path);
    if (r < 0) return r;
    route *rt = route_get(c, host, port);
    if (!rt) return -ENOMEM;
    tt_exchange_reset(x);
    x->priv.client = c;
    x->priv.route = rt;
    x->priv.conn = NULL;
    x->priv.qnext = x->priv.qprev = NULL;
    x->priv.file = file;
    x->priv.line = line;
    x->priv.attempts_ns = 0;
    x->priv.attempt_maybe = 0;
    x->priv.fresh_only = 0;
    x->priv.body_pulled = 0;
    x->priv.done = 0;
    x->priv.phase = X_NONE;
    x->priv.started = tt_loop_update_time(c->loop);
    const char *m = x->method ? x->method : "GET";
    x->priv.method_id = (int)tt_http1_method_id(m, strlen(m));
    tt_timer_init(&x->priv.timer, x_timer);
    tt_timer_init(&x->priv.leak, x_leak);
    if (x_build(x, rt, path) < 0) return -ENOMEM;
    c->inflight++;
    return 0;
}

TT_API int tt_client_start_at(tt_client *c, tt_exchange *x, const char *file, int line)
{
    int r = x_prepare(c, x, file, line);
    if (r < 0) return r;
    tt_defer_queue(c->loop, &x->priv.defer, x_start_defer);
    return 0;
}

TT_API int tt_client_request_at(tt_client *c, tt_exchange *x, const char *file, int line)
{
    int r = x_prepare(c, x, file, line);
    if (r < 0) {
        x->error = r;
        x->error_what = "url";
        return r;
    }
    /* One poll (a single epoll_wait) to reap idle connections the server closed meanwhile. */
    tt_loop_run_once(c->loop, 0);
    x_attempt(x);
    while (!x->priv.done) {
        r = tt_loop_run_once(c->loop, -1);
        if (r < 0 && r != -EINTR) {
            return r;
        }
    }
    return x->error;
}

TT_API int tt_client_wait(tt_client *c, int ms)
{
    uint64_t start = tt_loop_update_time(c->loop);
    for (;;) {
        int left = -1;
        if (ms >= 0) {
            uint64_t now = tt_loop_update_time(c->loop);
            if (now - start >= (uint64_t)ms) return 0;
            left = (int)((uint64_t)ms - (now - start));
        } else if (c->inflight == 0) {
            return 0;
        }
        int r = tt_loop_run_once(c->loop, left);
        if (r < 0 && r != -EINTR) return r;
    }
}

TT_API void tt_client_free(tt_client *c)
{
    if (!c) return;
    while (c->qhead) {
        tt_exchange *x = c->qhead;
        x_complete(x, -ECANCELED, "client closed", TT_NOT_SENT);
    }
    while (c->all) {
        tt_exchange *list[MAX_PIPELINE + 1];
        int n = conn_detach_all(c->all, list, TT_EVICT_SHUTDOWN);
        for (int i = 0; i < n; i++)
            x_complete(list[i], -ECANCELED, "client closed",
                       list[i]->priv.wrote ? TT_MAYBE_PROCESSED : TT_NOT_SENT);
    }
    while (c->jobs) {
        resolve_job *j = c->jobs;
        c->jobs = j->next;
        pthread_join(j->th, NULL);
        tt_async_close(&j->a);
        free(j);
    }
    while (c->routes) {
        route *rt = c->routes;
        c->routes = rt->next;
        free(rt);
    }
    tt_bufpool_free(c->bp);
    if (c->own_loop) tt_loop_free(c->loop);
    free(c);
}

/* ---- statistics ---- */

TT_API void tt_client_get_stats(tt_client *c, tt_client_stats *s)
{
    *s = c->st;
    s->open = c->total;
    s->leased = s->idle = s->pending = 0;
    for (route *rt = c->routes; rt; rt = rt->next) {
        s->leased += rt->nbusy + rt->nconnecting;
        s->idle += rt->nidle;
        s->pending += rt->npending;
    }
}

TT_API int tt_client_route_stats(tt_client *c, tt_route_stats *out, int max)
{
    int n = 0;
    for (route *rt = c->routes; rt; rt = rt->next, n++) {
        if (n >= max) continue;
        tt_route_stats *r = &out[n];
        snprintf(r->host, sizeof r->host, "%s", rt->host);
        r->port = rt->port;
        r->leased = rt->nbusy;
        r->connecting = rt->nconnecting;
        r->idle = rt->nidle;
        r->pending = rt->npending;
        r->opened = rt->opened;
        r->requests = rt->requests;
        r->reused = rt->reused;
        r->learned_idle_ms = rt->learned_idle_ms;
    }
    return n;
}

TT_API size_t tt_client_stats_json(tt_client *c, char *buf, size_t size)
{
    tt_client_stats s;
    tt_client_get_stats(c, &s);
    char tmp[8192];
    size_t o = 0;
#define J(...) o += (size_t)snprintf(tmp + o, o < sizeof tmp ? sizeof tmp - o : 0, __VA_ARGS__)
    J("{\"requests\":%llu,\"errors\":%llu,\"connections_opened\":%llu,"
      "\"connections_reused\":%llu,\"retries\":%llu,\"retries_by\":{",
      (unsigned long long)s.requests, (unsigned long long)s.errors,
      (unsigned long long)s.connections_opened, (unsigned long long)s.connections_reused,
      (unsigned long long)s.retries);
    for (int i = 0; i < TT_RETRY_NREASONS; i++)
        J("%s\"%s\":%llu", i ? "," : "", tt_retry_reason_name(i),
          (unsigned long long)s.retries_by[i]);
    J("},\"evictions\":{");
    for (int i = 0; i < TT_EVICT_NREASONS; i++)
        J("%s\"%s\":%llu", i ? "," : "", tt_evict_reason_name(i),
          (unsigned long long)s.evictions[i]);
    J("},\"lease_wait_ms_log2\":[");
    for (int i = 0; i < TT_CLIENT_WAIT_BUCKETS; i++)
        J("%s%llu", i ? "," : "", (unsigned long long)s.lease_wait[i]);
    J("],\"open\":%d,\"leased\":%d,\"idle\":%d,\"pending\":%d,\"routes\":[", s.open, s.leased,
      s.idle, s.pending);
    int nr = 0;
    for (route *rt = c->routes; rt && nr < 16; rt = rt->next, nr++) {
        char host[256];
        size_t i = 0;
        for (; rt->host[i] && i < sizeof host - 1; i++) {
            char ch = rt->host[i];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' || ch == '_';
            host[i] = ok ? ch : '?'; /* JSON-safe without escaping */
        }
        host[i] = 0;
        J("%s{\"host\":\"%s\",\"port\":%d,\"leased\":%d,\"idle\":%d,\"pending\":%d,"
          "\"opened\":%llu,\"requests\":%llu,\"reused\":%llu,\"learned_idle_ms\":%llu}",
          nr ? "," : "", host, rt->port, rt->nbusy + rt->nconnecting, rt->nidle, rt->npending,
          (unsigned long long)rt->opened, (unsigned long long)rt->requests,
          (unsigned long long)rt->reused, (unsigned long long)rt->learned_idle_ms);
    }
    J("]}");
#undef J
    if (o >= sizeof tmp) o = sizeof tmp - 1;
    if (size) {
        size_t n = o < size ? o : size - 1;
        memcpy(buf, tmp, n);
        buf[n] = 0;
    }
    return o;
}
