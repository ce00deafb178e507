/* exchange.c — exchanges (one request and its response, struct tt_req) taken from and given
 * back to the worker's free list; the response head (headers, the keep-alive decision, the
 * serialized head in the write buffer); the message in the read buffer (room without losing the
 * request views, path and query, packed trailers); the connection slabs. Below both conn.c (which
 * answers protocol errors with it) and response.c (the public tt_res_* writer); it calls neither.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"

struct tt_req *tt__x_get(tt__conn *c)
{
    tt__worker *w = c->w;
    tt__list *n = tt__list_pop_front(&w->free_x);
    struct tt_req *x;
    if (n) {
        x = tt__list_entry(n, struct tt_req, free_link);
        w->nfree_x--;
    } else {
        x = malloc(sizeof *x);
        if (!x) return NULL;
    }
    memset(x, 0, offsetof(struct tt_req, hdrs));
    x->conn = c;
    tt__x_next(x);
    x->res.file_fd = -1;
    x->req.headers = x->hdrs;
    x->req.max_headers = TT__MAX_REQ_HEADERS;
    c->x = x;
    return x;
}

/* Give back what x's read buffer was charged to the server's body budget. */
static void x_uncharge(struct tt_req *x, tt__worker *w)
{
    if (x->charged) __atomic_sub_fetch(&w->srv->body_mem, x->charged, __ATOMIC_RELAXED);
    x->charged = 0;
}

void tt__x_put(tt__conn *c)
{
    struct tt_req *x = c->x;
    tt__worker *w = c->w;
    if (!x) return;
    if (x->res.drain_defer.queued) tt_defer_cancel(w->loop, &x->res.drain_defer);
    if (x->body.defer.queued) tt_defer_cancel(w->loop, &x->body.defer);
    x_uncharge(x, w);
    tt_buf_release(&x->rbuf, w->pool);
    tt_buf_release(&x->wbuf, w->pool);
    if (x->res.file_fd >= 0) close(x->res.file_fd);
    free(x->res.big); /* a pooled exchange holds no large head */
    x->res.big = NULL;
    c->x = NULL;
    if (w->nfree_x < 256) {
        tt__list_push_front(&w->free_x, &x->free_link);
        w->nfree_x++;
    } else {
        free(x);
    }
}

void tt__x_next(struct tt_req *x)
{
    x->t_start = tt_loop_now(x->conn->w->loop);
    x->rx = 0;
}

/* Move the fields to a tt__res_big (the inline arrays are full). 0 or -ENOMEM. */
static int res_grow(struct tt_res *r)
{
    tt__res_big *b = malloc(sizeof *b);
    if (!b) return -ENOMEM;
    memcpy(b->store, r->store, r->store_used);
    for (size_t i = 0; i < r->nhdrs; i++) { /* the views move with the bytes */
        tt_header h = r->hdrs[i];
        h.name = b->store + (h.name - r->store);
        h.value = b->store + (h.value - r->store);
        b->hdrs[i] = h;
    }
    r->big = b;
    return 0;
}

int tt__res_add_header(struct tt_res *r, const char *name, const char *value)
{
    return tt__res_add_header_n(r, name, strlen(name), value, strlen(value));
}

int tt__res_add_header_n(struct tt_res *r, const char *name, size_t nl, const char *value,
                         size_t vl)
{
    if (r->nhdrs >= TT_RES_MAX_FIELDS || r->store_used + nl + vl > TT_RES_FIELD_BYTES)
        return -ENOSPC;
    if (!r->big &&
        (r->nhdrs >= TT__MAX_RES_HEADERS - 2 || r->store_used + nl + vl > TT__RES_STORE)) {
        int rc = res_grow(r);
        if (rc < 0) return rc;
    }
    char *store = r->big ? r->big->store : r->store;
    char *p = store + r->store_used;
    memcpy(p, name, nl);
    memcpy(p + nl, value, vl);
    tt__res_hdrs(r)[r->nhdrs++] = (tt_header){p, nl, p + nl, vl};
    r->store_used += nl + vl;
    return 0;
}

int tt__res_write_head(struct tt_req *x, tt_http1_response_head *h)
{
    tt_bufpool *pool = x->conn->w->pool;
    int keep = h->keep_alive;
    size_t want = 512;
    for (;;) {
        char *p = tt_buf_reserve(&x->wbuf, pool, want);
        if (!p) return -ENOMEM;
        size_t space = tt_buf_space(&x->wbuf);
        h->keep_alive = keep; /* an output field too: each try starts from the wish */
        size_t need = tt_http1_serialize_response(p, space, h);
        if (!need) return -EINVAL; /* an invalid field: nothing written */
        if (need <= space) {
            tt_buf_commit(&x->wbuf, need);
            return 0;
        }
        want = need;
    }
}

/* Serialize the response head into the write buffer (Server, Keep-Alive, Date and framing
 * added here) and settle keep-alive: a response that cannot keep the connection marks it
 * closing. 0, -EALREADY or -ENOMEM. */
int tt__res_begin(struct tt_req *x, int status, long long length)
{
    struct tt_res *r = &x->res;
    tt__conn *c = x->conn;
    tt__worker *w = c->w;
    const tt_server_config *cfg = &w->srv->cfg;
    if (r->started) return -EALREADY;
    r->started = 1;
    r->status = status;
    if (length < 0 && x->req.minor_version == 0) r->keep_alive = 0; /* close-delimited */
    size_t n = r->nhdrs;
    tt_header *hdrs = tt__res_hdrs(r);
    if (cfg->server_name[0])
        hdrs[n++] = (tt_header){"Server", 6, cfg->server_name, strlen(cfg->server_name)};
    char ka[48];
    if (r->keep_alive && status >= 200) {
        /* timeout=N: a whole number strictly between 0 and the real deadline (ceil - 1), or
         * none: a client reading timeout=0 as "forever" or timeout=deadline races our close */
        long t = ((long)cfg->keepalive_timeout_ms + 999) / 1000 - 1;
        long max = c->maxreq ? (long)(c->maxreq - c->nreq) : -1;
        size_t kl = tt_http1_keepalive_format(ka, sizeof ka, t >= 1 ? t : -1, max);
        if (kl) hdrs[n++] = (tt_header){"Keep-Alive", 10, ka, kl};
    }
    tt_http1_response_head h = {.status = status,
                                .headers = hdrs,
                                .num_headers = n,
                                .content_length = length,
                                .request_minor = x->req.minor_version,
                                .head_request = r->head_only,
                                .keep_alive = r->keep_alive,
                                .date = 1};
    int rc = tt__res_write_head(x, &h);
    if (rc < 0) return rc;
    r->chunked = h.body == TT_HTTP1_BODY_CHUNKED;
    r->nhdrs = r->store_used = 0; /* written: the store now holds trailers (tt_res_trailer) */
    if (!h.keep_alive) r->keep_alive = 0;
    if (!r->keep_alive) tt__conn_closing(c, TT_CLOSE_CONN_CLOSE);
    return 0;
}

/* ---- the message in the read buffer ---- */

static void rebase(struct tt_req *x, const char *old)
{
    ptrdiff_t d = x->rbuf.data - old;
    /* While the head is incomplete the parser rebases its own results on the next call (it
     * remembers the buffer address): rebasing here too would move them twice. */
    if (!d || !old || !x->head_len) return;
#define RB(p)                                                                                      \
    if (p) (p) += d
    RB(x->req.method);
    RB(x->req.target);
    RB(x->req.host);
    RB(x->path);
    RB(x->query);
    for (size_t i = 0; i < x->req.num_headers; i++) {
        RB(x->hdrs[i].name);
        RB(x->hdrs[i].value);
    }
#undef RB
}

/* What a read buffer holds beyond one pool block: what the body budget counts. */
static size_t x_extra(const tt_buf *b, const tt__worker *w)
{
    size_t held = b->data ? (size_t)b->off + b->cap : 0;
    return held > tt_bufpool_block_size(w->pool) ? held : 0;
}

/* Make room for want more input bytes without invalidating the request views. Growing past
 * one pool block is charged to the server's body budget (max_body_memory): over it, a body
 * gets -ENOBUFS (the caller answers 503) instead of an allocation the server cannot afford. */
int tt__x_reserve(struct tt_req *x, tt__worker *w, size_t want)
{
    const char *old = x->rbuf.data;
    tt_buf *b = &x->rbuf;
    size_t total = b->data ? (size_t)b->off + b->cap : 0;
    if (b->data && total - b->len < want) { /* it will grow: as tt_buf_reserve does */
        size_t grown = total * 2 > b->len + want ? total * 2 : b->len + want;
        long long cap = w->srv->cfg.max_body_memory;
        if (x->head_len && grown > tt_bufpool_block_size(w->pool) &&
            __atomic_load_n(&w->srv->body_mem, __ATOMIC_RELAXED) + grown - x->charged >
                (unsigned long long)cap) {
            TT__INC(w->stats.body_mem_refused);
            return -ENOBUFS;
        }
    }
    if (!tt_buf_reserve(b, w->pool, want)) return -ENOMEM;
    size_t extra = x_extra(b, w);
    if (extra != x->charged) {
        __atomic_add_fetch(&w->srv->body_mem, extra, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&w->srv->body_mem, x->charged, __ATOMIC_RELAXED);
        x->charged = extra;
    }
    rebase(x, old);
    return 0;
}

/* The room a Content-Length body still needs, grown with what arrives (at most doubling what
 * is held), never all of the announced length at once. As tt__x_reserve. */
int tt__x_reserve_body(struct tt_req *x, tt__worker *w, size_t left)
{
    if (tt_buf_space(&x->rbuf) >= (left < 4096 ? left : 4096)) return 0;
    size_t step = x->rbuf.len > 16384 ? x->rbuf.len : 16384;
    return tt__x_reserve(x, w, left < step ? left : step);
}

/* Split the request-target into path and query (absolute-form: skip scheme://authority). */
void tt__x_split_target(struct tt_req *x)
{
    const char *t = x->req.target;
    size_t n = x->req.target_len;
    if (x->req.target_form == TT_HTTP1_TARGET_ABSOLUTE) { /* skip scheme://authority */
        const char *s = memchr(t, ':', n);
        if (s && (size_t)(s - t) + 3 <= n && s[1] == '/' && s[2] == '/') {
            const char *p = memchr(s + 3, '/', n - (size_t)(s + 3 - t));
            if (p) {
                n -= (size_t)(p - t);
                t = p;
            } else {
                t = "/";
                n = 1;
            }
        }
    }
    const char *q = memchr(t, '?', n);
    x->path = t;
    x->path_len = q ? (size_t)(q - t) : n;
    if (q) {
        x->query = q + 1;
        x->query_len = n - x->path_len - 1;
    }
}

/* Copy the decoded trailer fields' names and values to dst (back to back, in order; every copy
 * moves bytes down, never over one still to be read) and point the views there. Returns the
 * bytes used. */
size_t tt__x_trailers_pack(struct tt_req *x, char *dst)
{
    size_t n = x->dec.num_trailers < TT__MAX_TRAILERS ? x->dec.num_trailers : TT__MAX_TRAILERS;
    char *o = dst;
    for (size_t i = 0; i < n; i++) {
        tt_header *h = &x->trailers[i];
        memmove(o, h->name, h->name_len);
        h->name = o;
        o += h->name_len;
        memmove(o, h->value, h->value_len);
        h->value = o;
        o += h->value_len;
    }
    return (size_t)(o - dst);
}

/* ---- streaming request bodies (body.c) ---- */

/* (Re)arm the body deadline: body_timeout after the last read (nginx's client_body_timeout),
 * and with body_min_rate no later than body_timeout after t0 plus 1 s per body_min_rate bytes
 * received (Apache mod_reqtimeout's MinRate): a body that trickles a byte now and then cannot
 * hold the connection forever. */
uint64_t tt__x_body_deadline(tt__conn *c, uint64_t t0, uint64_t last)
{
    const tt_server_config *cfg = &c->w->srv->cfg;
    uint64_t now = tt_loop_now(c->w->loop), ms = (uint64_t)cfg->body_timeout_ms;
    uint64_t end = last + ms;
    if (cfg->body_min_rate > 0) {
        uint64_t rate_end = t0 + ms + c->x->rx * 1000 / (uint64_t)cfg->body_min_rate;
        if (rate_end < end) end = rate_end;
    }
    uint64_t left = end > now ? end - now : 0;
    tt_timer_start(c->w->loop, &c->timer, left);
    return left;
}

/* The rest of a streamed body can be skipped when it has a Content-Length within discard_limit
 * and the client is not waiting for a 100 Continue it will never get; a chunked rest is not
 * decoded just to be dropped: the connection closes (lingering, so the answer is read). */
int tt__x_body_abandon(struct tt_req *x, int apply)
{
    struct tt__body *b = &x->body;
    const tt_server_config *cfg = &x->conn->w->srv->cfg;
    if (b->ended || b->done) return 1; /* the end, or an error that decided already */
    int keep = 0;
    uint64_t left = 0, have = 0;
    if (x->req.body == TT_HTTP1_BODY_NONE) {
        keep = 1;
    } else if (x->req.body == TT_HTTP1_BODY_LENGTH) {
        left = b->fn ? b->left : x->req.content_length;
        have = x->rbuf.len - x->head_len;
        if (have > left) have = left;
        keep =
            left == 0 || (cfg->discard_limit >= 0 && left - have <= (uint64_t)cfg->discard_limit &&
                          (x->sent_continue || !(x->req.flags & TT_HTTP1_F_EXPECT_CONTINUE)));
    }
    if (!apply) return keep;
    if (keep && left) {
        x->raw_len = x->head_len + (size_t)have;
        x->discard = left - have;
    } else if (!keep) {
        tt__conn_closing(x->conn, TT_CLOSE_CONN_CLOSE);
    }
    return keep;
}

/* ---- connection memory ---- */

/* A free connection from the worker's slabs (256 per slab), or NULL. */
tt__conn *tt__conn_alloc(tt__worker *w)
{
    tt__list *n = tt__list_pop_front(&w->free_conns);
    if (n) return tt__list_entry(n, tt__conn, link);
    enum { N = 256 };
    if (w->nslabs == w->cap_slabs) {
        size_t nc = w->cap_slabs ? w->cap_slabs * 2 : 16;
        void **ns = realloc(w->slabs, nc * sizeof *ns);
        if (!ns) return NULL;
        w->slabs = ns;
        w->cap_slabs = nc;
    }
    tt__conn *slab = calloc(N, sizeof *slab);
    if (!slab) return NULL;
    w->slabs[w->nslabs++] = slab;
    for (int i = 1; i < N; i++)
        tt__list_push_back(&w->free_conns, &slab[i].link);
    return &slab[0];
}

/* Requests allowed on a new connection: keepalive_requests ±10% so that reconnect waves do
 * not synchronise (0: unlimited). */
uint32_t tt__conn_maxreq(tt__worker *w)
{
    int cfgmax = w->srv->cfg.keepalive_requests;
    if (cfgmax <= 0) return 0;
    uint32_t m = (uint32_t)cfgmax;
    if (m > 10) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        uint32_t span = m / 5 + 1;
        m = m - m / 10 + (uint32_t)(w->rng % span);
    }
    return m;
}

unsigned tt__log2_bucket(uint64_t v)
{
    unsigned b = 0;
    while (v > 1 && b < TT_HIST_BUCKETS - 1) {
        v >>= 1;
        b++;
    }
    return b;
}
