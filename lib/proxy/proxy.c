/* proxy.c — the reverse proxy's exchange glue: a server request (tt_req/tt_res) becomes a
 * client exchange (tt_exchange) to an upstream and back. The request body streams from
 * tt_req_body_read into a bounded buffer that the client's body_read drains; the response
 * streams from on_body into tt_res_write, paused above the high mark until tt_res_on_drain.
 * Failures before a response head get 502/504 (or a retry on another upstream); after it,
 * the client connection is closed without completing the message (tt_res_abort). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/api.h"
#include "proxy/proxy_int.h"

static __thread tt__pworker *tls_workers; /* this thread's proxy workers */

/* ---- configuration ---- */

static char *dup_or(const char *s, const char *def)
{
    return strdup(s && *s ? s : def);
}

static void config_defaults(tt_proxy_config *c)
{
#define DEF(f, v)                                                                                  \
    if (c->f == 0 || (c->f < 0 && c->f != TT_OFF)) c->f = (v)
    DEF(keepalive, 32);
    DEF(idle_timeout_ms, 30000);
    DEF(connect_timeout_ms, 5000);
    DEF(timeout_ms, 60000);
    DEF(fail_threshold, 3);
    DEF(fail_rest_ms, 10000);
    DEF(max_retries, 1);
    DEF(buffer, 65536);
#undef DEF
    if (c->max_conns == 0) c->max_conns = TT_OFF;
    if (c->fail_rest_ms == TT_OFF) c->fail_rest_ms = 10000;
    if (c->buffer == TT_OFF) c->buffer = 65536;
    if (c->balance != TT_PROXY_ROUND_ROBIN) c->balance = TT_PROXY_LEAST_CONN;
}

TT_API int tt_proxy_new(tt_proxy **out, const tt_proxy_config *cfg, int *bad_upstream)
{
    if (bad_upstream) *bad_upstream = -1;
    *out = NULL;
    if (!cfg || cfg->nupstreams < 1 || cfg->nupstreams > TT_PROXY_MAX_UPSTREAMS) return -EINVAL;
    tt_proxy *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->cfg = *cfg;
    config_defaults(&p->cfg);
    for (int i = 0; i < cfg->nupstreams; i++)
        if (tt__upstream_parse(&p->ups[i], cfg->upstreams[i]) < 0) {
            if (bad_upstream) *bad_upstream = i;
            free(p);
            return -EINVAL;
        }
    p->nups = cfg->nupstreams;
    for (int i = 0; i < p->nups; i++)
        p->cfg.upstreams[i] = p->ups[i].url;
    p->host = cfg->upstream_host && *cfg->upstream_host ? strdup(cfg->upstream_host) : NULL;
    p->via = dup_or(cfg->via, "tether");
    p->proto = cfg->proto && *cfg->proto ? strdup(cfg->proto) : NULL; /* NULL: per connection */
    if ((cfg->upstream_host && *cfg->upstream_host && !p->host) || !p->via ||
        (cfg->proto && *cfg->proto && !p->proto)) {
        tt_proxy_free(p);
        return -ENOMEM;
    }
    if (strlen(p->via) > TT__PROXY_VIA_MAX || (p->proto && strlen(p->proto) > 32)) goto bad;
    /* values written into fields: no CR, LF or other controls */
    for (const char *s = p->host ? p->host : ""; *s; s++)
        if ((unsigned char)*s < 0x21 || *s == 0x7f) goto bad;
    for (const char *s = p->via; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) goto bad;
    for (const char *s = p->proto ? p->proto : ""; *s; s++)
        if ((unsigned char)*s < 0x21 || *s == 0x7f) goto bad;
    p->cfg.upstream_host = p->host;
    p->cfg.via = p->via;
    p->cfg.proto = p->proto;
    pthread_mutex_init(&p->mu, NULL);
    tt__list_init(&p->workers);
    *out = p;
    return 0;
bad:
    tt_proxy_free(p);
    return -EINVAL;
}

TT_API void tt_proxy_free(tt_proxy *p)
{
    if (!p) return;
    free(p->host);
    free(p->via);
    free(p->proto);
    if (p->workers.next) pthread_mutex_destroy(&p->mu);
    free(p);
}

TT_API const tt_proxy_config *tt_proxy_get_config(const tt_proxy *p)
{
    return &p->cfg;
}

TT_API int tt_proxy_mount(tt_server_config *cfg, const char *prefix, tt_proxy *p)
{
    return tt_server_config_route_ex(cfg, prefix, tt_proxy_handler, p, TT_ROUTE_STREAM_BODY);
}

TT_API int tt_proxy_attach(tt_proxy *p, tt_server *srv)
{
    return tt_server_on_worker_exit(srv, tt_proxy_worker_exit, p);
}

/* ---- per worker ---- */

/* Publish the client's pool gauges for this worker (read by tt_proxy_stats). */
static void publish(tt__pworker *w)
{
    tt_route_stats rs[TT_PROXY_MAX_UPSTREAMS];
    int n = tt_client_route_stats(w->client, rs, TT_PROXY_MAX_UPSTREAMS);
    tt_proxy *p = w->p;
    w->published = tt_loop_now(w->loop);
    for (int i = 0; i < p->nups; i++) {
        int open = 0, idle = 0;
        uint64_t opened = w->opened[i];
        for (int k = 0; k < n; k++)
            if (rs[k].port == p->ups[i].port && !strcmp(rs[k].host, p->ups[i].host)) {
                open = rs[k].leased + rs[k].idle + rs[k].connecting;
                idle = rs[k].idle;
                opened = rs[k].opened;
            }
        TT__PSET(w->open[i], open);
        TT__PSET(w->idle[i], idle);
        if (opened > w->opened[i]) TT__PADD(p->ups[i].opened, opened - w->opened[i]);
        w->opened[i] = opened;
    }
}

static void tick(tt_loop *loop, tt_timer *t)
{
    tt__pworker *w = tt_container_of(t, tt__pworker, tick);
    publish(w);
    /* an idle worker without upstream connections sleeps: the next attempt re-arms it */
    for (int i = 0; i < w->p->nups; i++)
        if (w->open[i]) {
            tt_timer_start(loop, t, 1000);
            return;
        }
}

static tt__pworker *worker_get(tt_proxy *p, tt_req *req)
{
    for (tt__pworker *w = tls_workers; w; w = w->tnext)
        if (w->p == p) return w;
    tt__pworker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    const tt_proxy_config *c = &p->cfg;
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.max_per_route = c->max_conns;
    o.max_total = TT_OFF;
    o.max_idle_per_route = c->keepalive == TT_OFF ? 1 : c->keepalive;
    o.lease_timeout_ms = c->timeout_ms;
    o.connect_timeout_ms = c->connect_timeout_ms;
    o.head_timeout_ms = c->timeout_ms;
    o.idle_timeout_ms = c->idle_timeout_ms;
    o.leak_warn_ms = TT_OFF;
    w->p = p;
    w->loop = tt_req_loop(req);
    if (tt_client_new_on(&w->client, w->loop, &o) < 0) {
        free(w);
        return NULL;
    }
    tt__list_init(&w->free);
    tt__list_init(&w->busy);
    tt_timer_init(&w->tick, tick);
    pthread_mutex_lock(&p->mu);
    tt__list_push_back(&p->workers, &w->link);
    pthread_mutex_unlock(&p->mu);
    w->tnext = tls_workers;
    tls_workers = w;
    return w;
}

static void ctx_free(tt__pctx *x)
{
    tt_exchange_cleanup(&x->x);
    tt__parena_free(&x->hd);
    tt__parena_free(&x->rs);
    free(x->lines);
    free(x->offs);
    free(x->tlines);
    tt__parena_free(&x->body);
    free(x);
}

TT_API void tt_proxy_worker_exit(void *proxy)
{
    tt_proxy *p = proxy;
    for (tt__pworker **pp = &tls_workers; *pp; pp = &(*pp)->tnext) {
        tt__pworker *w = *pp;
        if (w->p != p) continue;
        *pp = w->tnext;
        tt_timer_stop(w->loop, &w->tick);
        publish(w);
        pthread_mutex_lock(&p->mu);
        for (int i = 0; i < p->nups; i++)
            w->open[i] = w->idle[i] = 0;
        tt__list_remove(&w->link);
        pthread_mutex_unlock(&p->mu);
        /* exchanges still running fail with -ECANCELED inside tt_client_free: their callbacks
         * touch nothing (dead); their server responses are ended and the contexts freed below */
        for (tt__list *n = w->busy.next; n != &w->busy; n = n->next)
            tt__list_entry(n, tt__pctx, link)->dead = 1;
        tt_client_free(w->client);
        tt__list *n;
        while ((n = tt__list_pop_front(&w->free)))
            ctx_free(tt__list_entry(n, tt__pctx, link));
        while ((n = tt__list_pop_front(&w->busy))) {
            tt__pctx *x = tt__list_entry(n, tt__pctx, link);
            /* the server keeps such an exchange until its handler finishes it: finish it
             * (the connection is gone; nothing more is written) */
            if (x->res) tt_res_abort(x->res);
            ctx_free(x);
        }
        free(w);
        return;
    }
}

/* ---- the exchange ---- */

static tt__pctx *ctx_get(tt__pworker *w)
{
    tt__list *n = tt__list_pop_front(&w->free);
    tt__pctx *x;
    if (n) {
        x = tt__list_entry(n, tt__pctx, link);
    } else {
        if (!(x = calloc(1, sizeof *x))) return NULL;
        tt_exchange_init(&x->x);
        tt__list_init(&x->link);
        x->w = w;
    }
    /* reset the per-request state, keep the buffers */
    x->up = -1;
    x->attempts = x->tried = 0;
    x->started = x->in_flight = x->has_body = x->body_started = x->body_end = 0;
    x->body_err = x->body_paused = x->body_waiting = x->res_paused = 0;
    x->aborted = x->discarded = x->expect = x->dead = x->too_big = 0;
    x->hd.len = x->rs.len = 0;
    x->nlines = x->ntlines = 0;
    x->roff = x->body.len = 0;
    tt__list_push_back(&w->busy, &x->link);
    return x;
}

static void ctx_put(tt__pctx *x)
{
    tt__list_remove(&x->link);
    x->req = NULL;
    x->res = NULL;
    tt__list_push_front(&x->w->free, &x->link);
}

/* Idempotent methods (RFC 9110 §9.2.2), or a request carrying Idempotency-Key. */
static int idempotent(tt_req *req)
{
    size_t ml;
    const char *m = tt_req_method(req, &ml);
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", NULL};
    for (int i = 0; ok[i]; i++)
        if (strlen(ok[i]) == ml && !memcmp(m, ok[i], ml)) return 1;
    size_t kl;
    return tt_req_header(req, "Idempotency-Key", &kl) != NULL;
}

/* The final answer when no upstream response can be relayed. */
static void answer_error(tt__pctx *x, int status, const char *why)
{
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s: upstream %s\n", status,
                     status == 504 ? "Gateway Timeout" : "Bad Gateway", why);
    tt_res *res = x->res;
    ctx_put(x);
    tt_res_log_note(res, why);
    if (tt_res_aborted(res)) {
        tt_res_end(res);
        return;
    }
    tt_res_send(res, status, "text/plain", body, (size_t)n);
}

static void count_fail(tt__pctx *x, int reason)
{
    if (x->up >= 0) TT__PADD(x->w->p->ups[x->up].failures[reason], 1);
}

/* ---- request body: the server's pieces into the buffer, the client's body_read out ---- */

static int body_room(tt__pctx *x, size_t len)
{
    tt__parena *b = &x->body;
    if (b->cap - b->len >= len) return 0;
    if (x->roff) { /* compact: what was sent cannot be replayed any more */
        memmove(b->buf, b->buf + x->roff, b->len - x->roff);
        b->len -= x->roff;
        x->roff = 0;
        x->discarded = 1;
    }
    if (!b->cap && (size_t)x->w->p->cfg.buffer > len) len = (size_t)x->w->p->cfg.buffer;
    return tt__parena_reserve(b, len);
}

/* Point the exchange's request strings into the head arena again (after it grew). */
static void relink(tt__pctx *x)
{
    for (int i = 0; i < x->nlines; i++)
        x->lines[i] = x->hd.buf + x->offs[i];
    x->x.headers = x->lines;
    x->x.nheaders = x->nlines;
    x->x.url = x->hd.buf + x->url_off;
    x->x.method = x->hd.buf + x->method_off;
}

/* The request's trailer fields as lines for the client (at the end of a chunked body). */
static int trailer_lines(tt__pctx *x)
{
    int n = tt_req_trailer_count(x->req);
    if (n <= 0) return 0;
    if (n > x->cap_tlines) {
        const char **t = realloc(x->tlines, (size_t)n * sizeof *t);
        if (!t) return -ENOMEM;
        x->tlines = t;
        x->cap_tlines = n;
    }
    long offs[64];
    int k = 0;
    for (int i = 0; i < n && k < 64; i++) {
        const char *nm, *v;
        size_t nl, vl;
        if (tt_req_trailer_at(x->req, i, &nm, &nl, &v, &vl) < 0) continue;
        if (tt__proxy_hop_static(nm, nl)) continue;
        long o = tt__parena_line(&x->hd, nm, nl, v, vl);
        if (o < 0) return -ENOMEM;
        offs[k++] = o;
    }
    for (int i = 0; i < k; i++)
        x->tlines[i] = x->hd.buf + offs[i];
    x->ntlines = k;
    relink(x); /* the arena may have moved */
    return 0;
}

static int on_req_body(tt_req *req, const char *data, size_t len, int err, void *ud)
{
    tt__pctx *x = ud;
    if (err < 0) {
        x->body_err = 1;
    } else if (!data) {
        x->body_end = 1;
    } else if (x->in_flight) {
        if (body_room(x, len) < 0) {
            x->body_err = 1;
        } else {
            memcpy(x->body.buf + x->body.len, data, len);
            x->body.len += len;
        }
    }
    if (x->in_flight && x->body_waiting) {
        x->body_waiting = 0;
        tt_exchange_body_ready(&x->x);
    }
    if (x->in_flight && !x->body_end && !x->body_err &&
        x->body.len - x->roff >= (size_t)x->w->p->cfg.buffer) {
        x->body_paused = 1;
        return TT_BODY_PAUSE;
    }
    return 0;
}

static ssize_t body_read(void *data, char *buf, size_t cap)
{
    tt__pctx *x = data;
    if (!x->body_started) {
        /* first pull: the upstream is ready for the body (after its 100 Continue when the
         * client asked for one): start reading it, which answers the client's Expect */
        x->body_started = 1;
        if (tt_req_body_read(x->req, on_req_body, x) < 0) {
            x->body_err = 1;
            return -EIO;
        }
    }
    size_t avail = x->body.len - x->roff;
    if (avail) {
        size_t n = avail < cap ? avail : cap;
        memcpy(buf, x->body.buf + x->roff, n);
        x->roff += n;
        if (x->body_paused && x->body.len - x->roff <= (size_t)x->w->p->cfg.buffer / 2) {
            x->body_paused = 0;
            tt_req_body_resume(x->req);
        }
        return (ssize_t)n;
    }
    if (x->body_err) return -EIO;
    if (x->body_end) {
        if (trailer_lines(x) < 0) return -ENOMEM;
        x->x.body_trailers = x->ntlines ? x->tlines : NULL;
        x->x.nbody_trailers = x->ntlines;
        return 0;
    }
    x->body_waiting = 1;
    return -EAGAIN;
}

static int body_rewind(void *data)
{
    tt__pctx *x = data;
    if (x->discarded || x->body_err) return -ESPIPE;
    x->roff = 0;
    return 0;
}

/* ---- the response: upstream head and body to the server's writer ---- */

static int add_field(void *ud, const char *name, const char *value)
{
    int r = tt_res_header(ud, name, value);
    return r == -EPERM || r == -EINVAL ? 0 : r; /* a field the server owns: its own wins */
}

static int on_head(tt_exchange *e)
{
    tt__pctx *x = e->data;
    tt_proxy *p = x->w->p;
    if (x->dead || tt_res_aborted(x->res)) return -1;
    TT__PADD(p->ups[x->up].responses, 1);
    tt__upstream_result(p, &p->ups[x->up], 0, tt_loop_now(x->w->loop));
    int r = tt__proxy_res_fields(e, p->via, &x->rs, add_field, x->res);
    if (r < 0) {
        x->too_big = r == -E2BIG || r == -ENOSPC;
        return -1;
    }
    long long len = -1;
    size_t cl;
    const char *v = tt_exchange_header(e, "Content-Length", &cl);
    if (v && cl && cl < 19) { /* the client's parser checked it: digits only */
        long long n = 0;
        size_t i = 0;
        for (; i < cl && v[i] >= '0' && v[i] <= '9'; i++)
            n = n * 10 + (v[i] - '0');
        if (i == cl) len = n;
    }
    /* no body for 204 and 304 (a Content-Length there describes the selected
     * representation, kept for 304 and HEAD by the serializer) */
    if (e->status == 204 || e->resp_framing == TT_FRAMING_CHUNKED ||
        e->resp_framing == TT_FRAMING_CLOSE)
        len = -1;
    x->started = 1;
    if (tt_res_start(x->res, e->status, len) < 0) return -1;
    return 0;
}

/* Each field line of a raw head or trailer section (lines after the first when skip_first),
 * split by the codec's one line splitter; calls fn(ud, field). Lines it refuses are skipped. */
static void each_field(const char *t, size_t len, int skip_first,
                       void (*fn)(void *ud, const tt_header *f), void *ud)
{
    const char *end = t + len;
    for (int first = 1; t < end; first = 0) {
        const char *eol = memchr(t, '\n', (size_t)(end - t));
        size_t ll = eol ? (size_t)(eol - t) : (size_t)(end - t);
        if (ll && t[ll - 1] == '\r') ll--;
        tt_header f;
        if (ll && !(first && skip_first) && tt_http1_header_line(t, ll, &f) == 0) fn(ud, &f);
        t = eol ? eol + 1 : end;
    }
}

typedef struct interim {
    tt_header f[32];
    size_t n;
} interim;

static void interim_field(void *ud, const tt_header *f)
{
    interim *h = ud;
    if (h->n < 32 && !tt__proxy_hop_static(f->name, f->name_len)) h->f[h->n++] = *f;
}

static int on_info(tt_exchange *e, int status, const char *head, size_t len)
{
    tt__pctx *x = e->data;
    if (x->dead) return -1;
    /* 100 Continue is the server's to send (tt_req_body_read answers the client's Expect once
     * the upstream asked for the body); other interim responses (103) are relayed */
    if (status == 100 || x->started) return 0;
    interim h;
    h.n = 0;
    each_field(head, len, 1, interim_field, &h);
    tt_res_interim(x->res, status, h.f, h.n);
    return 0;
}

static void on_drain(tt_res *res, void *data)
{
    tt__pctx *x = data;
    x->res_paused = 0;
    if (tt_res_aborted(res)) x->aborted = 1;
    tt_exchange_resume(&x->x);
}

static int on_body(tt_exchange *e, const char *data, size_t len)
{
    tt__pctx *x = e->data;
    if (x->dead || x->aborted || tt_res_aborted(x->res)) return -1;
    if (tt_res_write(x->res, data, len) < 0) return -1;
    size_t high = (size_t)x->w->p->cfg.buffer;
    if (tt_res_pending(x->res) > high) {
        x->res_paused = 1;
        tt_res_on_drain(x->res, high / 2, on_drain, x);
        return TT_BODY_PAUSE;
    }
    return 0;
}

static void trailer_field(void *ud, const tt_header *f)
{
    tt__pctx *x = ud;
    if (tt__proxy_hop_static(f->name, f->name_len)) return;
    x->rs.len = 0;
    long no = tt__parena_put(&x->rs, f->name, f->name_len);
    long vo = tt__parena_put(&x->rs, f->value, f->value_len);
    if (no >= 0 && vo >= 0) tt_res_trailer(x->res, x->rs.buf + no, x->rs.buf + vo);
}

/* Forward the trailer fields of a chunked upstream response. */
static void forward_trailers(tt__pctx *x)
{
    if (x->x.trailers && x->x.trailers_len)
        each_field(x->x.trailers, x->x.trailers_len, 0, trailer_field, x);
}

/* Classify a failure before the response head. */
static int fail_reason(const tt__pctx *x)
{
    const tt_exchange *e = &x->x;
    const char *what = e->error_what ? e->error_what : "";
    if (x->body_err) return TT_PROXY_FAIL_REQ_BODY;
    if (x->too_big) return TT_PROXY_FAIL_MALFORMED; /* a head we cannot relay */
    if (!strcmp(what, "connect") || e->error == -ECONNREFUSED || e->error == -EHOSTUNREACH ||
        e->error == -ENETUNREACH)
        return TT_PROXY_FAIL_CONNECT;
    if (e->error == -ETIMEDOUT) return TT_PROXY_FAIL_TIMEOUT;
    if (e->error == -EPROTO || e->error == -EBADMSG) return TT_PROXY_FAIL_MALFORMED;
    if (e->error == -ECONNRESET || e->error == -EPIPE || e->error == -ECONNABORTED)
        return TT_PROXY_FAIL_RESET;
    return TT_PROXY_FAIL_OTHER;
}

static int attempt(tt__pctx *x);

/* Whether a failed attempt goes to another upstream: the request never reached the upstream
 * (connect failure), or it is idempotent, its body can be replayed and the client pool did
 * not already retry it; and an upstream not tried yet is usable. */
static int retry_elsewhere(tt__pctx *x, int reason)
{
    tt_proxy *p = x->w->p;
    if (p->cfg.max_retries == TT_OFF || x->attempts > p->cfg.max_retries) return 0;
    if (tt_res_aborted(x->res) || x->body_err) return 0;
    if (reason == TT_PROXY_FAIL_CONNECT && x->x.sent_state == TT_NOT_SENT) {
        if (x->body_started && body_rewind(x) < 0) return 0;
    } else if (reason == TT_PROXY_FAIL_RESET) {
        if (!idempotent(x->req)) return 0;
        if (x->x.retries && x->x.retry_reason == TT_RETRY_MAYBE_PROCESSED) return 0; /* once */
        if (x->body_started && (!x->body_end || body_rewind(x) < 0)) return 0;
    } else {
        return 0;
    }
    uint64_t now = tt_loop_now(x->w->loop);
    for (int i = 0; i < p->nups; i++)
        if (!(x->tried & (1u << i)) && tt__upstream_usable(p, &p->ups[i], now, 0)) return 1;
    return 0;
}

static void on_done(tt_exchange *e)
{
    tt__pctx *x = e->data;
    tt_proxy *p = x->w->p;
    tt__upstream *u = &p->ups[x->up];
    x->in_flight = 0;
    TT__PADD(u->inflight, -1);
    if (x->dead) {
        tt__upstream_unprobe(u);
        return;
    }
    if (e->reused) TT__PADD(u->reused, 1);
    if (e->retries) TT__PADD(u->retries, (uint64_t)e->retries); /* the pool's own */
    if (tt_loop_now(x->w->loop) - x->w->published >= 100) publish(x->w);
    if (!e->error) {
        forward_trailers(x);
        tt_res *res = x->res;
        ctx_put(x);
        tt_res_end(res);
        return;
    }
    if (x->started) { /* truncated: the client must see it (no last chunk, short body) */
        if (!tt_res_aborted(x->res) && !x->aborted) {
            count_fail(x, TT_PROXY_FAIL_BODY);
            tt_res_log_note(x->res, tt_proxy_fail_name(TT_PROXY_FAIL_BODY));
        }
        tt_res *res = x->res;
        ctx_put(x);
        tt_res_abort(res);
        return;
    }
    if (tt_res_aborted(x->res)) { /* the client left first: not the upstream's failure */
        tt__upstream_unprobe(u);
        tt_res *res = x->res;
        ctx_put(x);
        tt_res_end(res);
        return;
    }
    int reason = fail_reason(x);
    count_fail(x, reason);
    uint64_t now = tt_loop_now(x->w->loop);
    tt__upstream_result(p, u, reason == TT_PROXY_FAIL_CONNECT || reason == TT_PROXY_FAIL_RESET,
                        now);
    if (retry_elsewhere(x, reason) && attempt(x) == 0) return;
    if (reason == TT_PROXY_FAIL_REQ_BODY) {
        tt_res *res = x->res;
        ctx_put(x);
        tt_res_close(res);
        tt_res_log_note(res, tt_proxy_fail_name(TT_PROXY_FAIL_REQ_BODY));
        tt_res_send(res, 400, "text/plain", "400 Bad Request: request body\n", 30);
        return;
    }
    answer_error(x, reason == TT_PROXY_FAIL_TIMEOUT ? 504 : 502, tt_proxy_fail_name(reason));
}

/* Start an attempt on a picked upstream: 0, -1 when none is usable, -2 when it could not start
 * (counted as "other"). */
static int attempt(tt__pctx *x)
{
    tt_proxy *p = x->w->p;
    int up = tt__upstream_pick(p, tt_loop_now(x->w->loop), x->tried);
    if (up < 0) return -1;
    tt__upstream *u = &p->ups[up];
    size_t pl, ql;
    const char *path = tt_req_path(x->req, &pl), *q = tt_req_query(x->req, &ql);
    tt__pstr parts[4] = {{u->url, strlen(u->url)}, {path, pl}, {"?", q ? 1 : 0}, {q, q ? ql : 0}};
    long uo = tt__parena_join(&x->hd, parts, 4);
    if (uo < 0) return -2;
    x->url_off = uo;
    relink(x);
    if (x->attempts) TT__PADD(u->retries, 1);
    x->up = up;
    x->tried |= 1u << up;
    x->attempts++;
    x->in_flight = 1;
    x->body_waiting = 0;
    TT__PADD(u->inflight, 1);
    if (!tt_timer_armed(&x->w->tick)) tt_timer_start(x->w->loop, &x->w->tick, 1000);
    TT__PADD(u->requests, 1);
    if (tt_client_start(x->w->client, &x->x) < 0) {
        x->in_flight = 0;
        TT__PADD(u->inflight, -1);
        tt__upstream_unprobe(u);
        count_fail(x, TT_PROXY_FAIL_OTHER);
        return -2;
    }
    return 0;
}

/* The client's address as text and whether its connection is TLS, from the worker's cache by
 * connection id (the system calls once per connection, not per request). NULL when unknown. */
static const char *peer_ip(tt__pworker *w, tt_req *req, int *tls)
{
    uint64_t key = tt_req_conn_id(req) + 1;
    size_t slot = (size_t)(key % TT__PROXY_IPC);
    if (w->ipc[slot].key != key) {
        tt_conn_info ci;
        if (tt_req_conn_info(req, &ci) < 0) return NULL;
        tt__proxy_peer_ip(&ci.peer, w->ipc[slot].ip, sizeof w->ipc[slot].ip);
        tt_tls_info ti;
        w->ipc[slot].tls = tt_req_tls_info(req, &ti) == 0;
        w->ipc[slot].key = key;
    }
    *tls = w->ipc[slot].tls;
    return w->ipc[slot].ip;
}

/* Build the upstream request's method and fields into x (once per request). 0 or -errno. */
static int build_head(tt__pctx *x, tt_req *req)
{
    tt_proxy *p = x->w->p;
    int n = tt_req_header_count(req);
    if (n < 0) n = 0;
    const char *names[128], *values[128];
    size_t nlens[128], vlens[128];
    if (n > 128) return -ENOSPC;
    const char *host = NULL;
    size_t host_len = 0;
    for (int i = 0; i < n; i++) {
        tt_req_header_at(req, i, &names[i], &nlens[i], &values[i], &vlens[i]);
        if (nlens[i] == 4 && !strncasecmp(names[i], "Host", 4)) {
            host = values[i];
            host_len = vlens[i];
        }
    }
    int tls = 0;
    const char *ip = peer_ip(x->w, req, &tls);
    tt__preq_in in = {.names = names,
                      .values = values,
                      .nlens = nlens,
                      .vlens = vlens,
                      .n = n,
                      .peer_ip = ip,
                      .host = host,
                      .host_len = host_len,
                      .up_host = p->host,
                      .via = p->via,
                      .minor = tt_req_minor(req),
                      .proto = p->proto ? p->proto
                               : tls    ? "https"
                                        : "http",
                      .forwarded = p->cfg.no_forwarded <= 0};
    int want = n + 8;
    if (want > x->cap_lines) {
        long *o = realloc(x->offs, (size_t)want * sizeof *o);
        if (o) x->offs = o;
        const char **l = realloc(x->lines, (size_t)want * sizeof *l);
        if (l) x->lines = l;
        if (!o || !l) return -ENOMEM;
        x->cap_lines = want;
    }
    int expect = 0;
    int k = tt__proxy_req_fields(&in, &x->hd, x->offs, x->cap_lines, &expect);
    if (k < 0) return k;
    x->nlines = k;
    x->expect = (uint8_t)expect;
    size_t ml;
    const char *m = tt_req_method(req, &ml);
    if ((x->method_off = tt__parena_put(&x->hd, m, ml)) < 0) return -ENOMEM;
    return 0;
}

/* Set up the exchange's request side: body mode and callbacks. */
static void setup_exchange(tt__pctx *x, tt_req *req)
{
    tt_exchange *e = &x->x;
    const tt_proxy_config *c = &x->w->p->cfg;
    e->data = x;
    e->on_head = on_head;
    e->on_info = on_info;
    e->on_body = on_body;
    e->on_done = on_done;
    e->no_keepalive = c->keepalive == TT_OFF;
    e->http10 = 0;
    e->idempotent = 0;
    e->body = NULL;
    e->body_len = 0;
    e->body_read = NULL;
    e->body_rewind = NULL;
    e->body_data = NULL;
    e->body_stream_len = 0;
    e->body_trailers = NULL;
    e->nbody_trailers = 0;
    e->expect_continue = 0;
    size_t bl = 0;
    const char *b = tt_req_body(req, &bl);
    long long len = tt_req_body_length(req);
    x->body_len = len;
    if (b && bl) { /* a buffered route: the whole body is here */
        e->body = b;
        e->body_len = bl;
    } else if (len != 0) {
        x->has_body = 1;
        e->body_read = body_read;
        e->body_rewind = body_rewind;
        e->body_data = x;
        e->body_stream_len = len > 0 ? len : 0;
        e->expect_continue = x->expect;
    }
}

TT_API void tt_proxy_handler(tt_req *req, tt_res *res, void *proxy)
{
    tt_proxy *p = proxy;
    tt__pworker *w = worker_get(p, req);
    tt__pctx *x = w ? ctx_get(w) : NULL;
    if (!x) {
        tt_res_send(res, 502, "text/plain", "502 Bad Gateway: no memory\n", 27);
        return;
    }
    x->req = req;
    x->res = res;
    if (build_head(x, req) < 0) {
        answer_error(x, 502, "request head");
        return;
    }
    setup_exchange(x, req);
    /* without Expect the body starts flowing at once (in parallel with the connect); with
     * it, on the upstream's 100 Continue (or the client's continue timeout) */
    if (x->has_body && !x->expect) {
        x->body_started = 1;
        if (tt_req_body_read(req, on_req_body, x) < 0) x->body_err = 1;
    }
    int r = attempt(x);
    if (r == -1) {
        for (int i = 0; i < p->nups; i++)
            TT__PADD(p->ups[i].failures[TT_PROXY_FAIL_DOWN], 1);
        answer_error(x, 502, "down");
    } else if (r < 0) {
        answer_error(x, 502, "other");
    }
}
