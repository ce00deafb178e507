/* conn.c — the server connection state machine. Every state transition lives in this file
 * (conn_set_state); see docs/server.md for the diagram, the timeout precedence and the
 * closing rules.
 *
 * One read fills the read buffer; every complete request in it is parsed and handled in order;
 * the responses are serialized into the write buffer and sent with one send() per batch. An
 * async handler (one that returns before finishing its response) stops the batch: later
 * pipelined requests wait in the read buffer, and reading pauses (kernel flow control bounds
 * the queue). Idle connections give their exchange and buffers back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/api.h"
#include "server/server_int.h"
#include "tether/socket.h"

#define READ_MIN 4096u

static void conn_process(tt__conn *c);
static void conn_on_io(tt_loop *loop, tt_io *io, unsigned ev);
static void conn_on_timer(tt_loop *loop, tt_timer *t);
static void conn_free(tt__conn *c);
static void drain_on_defer(tt_loop *loop, tt_defer *d);
static int drain_check(struct tt_req *x);

static const char *const state_names[] = {"reading_head", "reading_body", "handling", "writing",
                                          "idle",         "lingering",    "closed"};
static const char *const reason_names[] = {
    "peer_fin",       "peer_rst",     "conn_close",   "max_requests", "max_age",  "idle_timeout",
    "header_timeout", "body_timeout", "send_timeout", "bad_request",  "shutdown", "pressure"};

TT_API const char *tt_conn_state_name(int state)
{
    return state >= 0 && state < TT_CONN_NSTATES ? state_names[state] : "?";
}

TT_API const char *tt_close_reason_name(int reason)
{
    return reason >= 0 && reason < TT_CLOSE_NREASONS ? reason_names[reason] : "?";
}

uint32_t tt__worker_now(tt__worker *w)
{
    return (uint32_t)(tt_loop_now(w->loop) - w->t0);
}

static inline const tt_server_config *CFG(const tt__conn *c)
{
    return &c->w->srv->cfg;
}

/* ---- per-state intrusive lists (oldest first) ---- */

static void list_remove(tt__worker *w, tt__conn *c)
{
    tt__conn **head = &w->lists[c->state];
    if (!c->next) return; /* on no list (new or closed) */
    if (c->next == c) {
        *head = NULL;
    } else {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        if (*head == c) *head = c->next;
    }
    c->next = c->prev = NULL;
}

static void list_append(tt__worker *w, tt__conn *c)
{
    tt__conn **head = &w->lists[c->state];
    if (!*head) {
        c->next = c->prev = c;
        *head = c;
    } else {
        tt__conn *tail = (*head)->prev;
        c->prev = tail;
        c->next = *head;
        tail->next = c;
        (*head)->prev = c;
    }
}

/* The one place a connection changes state. Moving to the same state re-queues it at the
 * tail (idle: the most recently used). */
static void conn_set_state(tt__conn *c, int st)
{
    tt__worker *w = c->w;
    if (c->state == st && st != TT_CONN_IDLE) return;
    list_remove(w, c);
    if (c->state != TT_CONN_CLOSED) TT__DEC(w->stats.conns[c->state]);
    c->state = (uint8_t)st;
    if (st != TT_CONN_CLOSED) { /* conns[] counts open connections: CLOSED stays 0 */
        TT__INC(w->stats.conns[st]);
        list_append(w, c);
    } else {
        c->next = c->prev = NULL;
    }
}

/* ---- exchanges ---- */

static struct tt_req *x_get(tt__conn *c)
{
    tt__worker *w = c->w;
    struct tt_req *x = w->free_x;
    if (x) {
        w->free_x = x->next_free;
        w->nfree_x--;
    } else {
        x = malloc(sizeof *x);
        if (!x) return NULL;
    }
    memset(x, 0, offsetof(struct tt_req, hdrs));
    x->conn = c;
    x->file_fd = -1;
    x->req.headers = x->hdrs;
    x->req.max_headers = TT__MAX_REQ_HEADERS;
    c->x = x;
    return x;
}

static void x_put(tt__conn *c)
{
    struct tt_req *x = c->x;
    tt__worker *w = c->w;
    if (!x) return;
    if (x->drain_defer.queued) tt_defer_cancel(w->loop, &x->drain_defer);
    tt_buf_release(&x->rbuf, w->pool);
    tt_buf_release(&x->wbuf, w->pool);
    if (x->file_fd >= 0) close(x->file_fd);
    c->x = NULL;
    if (w->nfree_x < 256) {
        x->next_free = w->free_x;
        w->free_x = x;
        w->nfree_x++;
    } else {
        free(x);
    }
}

static void x_reset_message(struct tt_req *x, const tt_server_config *cfg)
{
    tt_http1_limits lim = {.max_request_line = (uint32_t)cfg->max_uri,
                           .max_head = (uint32_t)cfg->max_header};
    tt_http1_parser_init(&x->parser, &lim);
    x->head_len = x->body_len = x->raw_len = x->tlen = 0;
    x->path = x->query = NULL;
    x->path_len = x->query_len = 0;
    x->status = 0;
    x->started = x->finished = x->chunked = x->head_only = x->close_req = 0;
    x->sent_continue = x->handling = 0;
    x->res_len = 0;
    x->nres = x->store_used = 0;
    x->bytes_out = 0;
    memset(&x->dec, 0, sizeof x->dec);
    x->dec.trailers = x->trailers;
    x->dec.max_trailers = TT__MAX_TRAILERS;
    x->req.num_headers = 0;
    x->req.flags = 0;
    x->req.body = TT_HTTP1_BODY_NONE;
    x->req.method = NULL;
    x->req.method_len = 0;
}

/* ---- lifecycle ---- */

void tt__conn_accepted(tt__worker *w, int fd)
{
    const tt_server_config *cfg = &w->srv->cfg;
    tt__conn *c = w->free_conns;
    if (!c) {
        enum { N = 256 };
        if (w->nslabs == w->cap_slabs) {
            size_t nc = w->cap_slabs ? w->cap_slabs * 2 : 16;
            void **ns = realloc(w->slabs, nc * sizeof *ns);
            if (!ns) {
                close(fd);
                return;
            }
            w->slabs = ns;
            w->cap_slabs = nc;
        }
        tt__conn *slab = calloc(N, sizeof *slab);
        if (!slab) {
            close(fd);
            return;
        }
        w->slabs[w->nslabs++] = slab;
        for (int i = N - 1; i >= 0; i--) {
            slab[i].next = w->free_conns;
            w->free_conns = &slab[i];
        }
        c = w->free_conns;
    }
    w->free_conns = c->next;
    memset(c, 0, sizeof *c);
    c->w = w;
    c->id = ++w->next_id;
    c->born = tt__worker_now(w);
    c->state = TT_CONN_CLOSED; /* not on any list yet */
    if (cfg->keepalive_requests > 0) {
        uint32_t m = (uint32_t)cfg->keepalive_requests;
        if (m > 10) { /* ±10% jitter so reconnect waves do not synchronise */
            w->rng ^= w->rng << 13;
            w->rng ^= w->rng >> 7;
            w->rng ^= w->rng << 17;
            uint32_t span = m / 5 + 1;
            m = m - m / 10 + (uint32_t)(w->rng % span);
        }
        c->maxreq = m;
    }
    tt_timer_init(&c->timer, conn_on_timer);
    /* TCP_NODELAY and the TCP keepalive settings are inherited from the listener. */
    w->nconns++;
    TT__INC(w->stats.accepted);
    TT__INC(w->stats.open);
    conn_set_state(c, TT_CONN_READING_HEAD);
    if (tt_io_start(w->loop, &c->io, fd, TT_READ | TT_WRITE, 0, conn_on_io, c) < 0) {
        close(fd);
        c->io.fd = -1;
        tt__conn_close(c, TT_CLOSE_PEER_RST);
        return;
    }
    /* The first request has the header deadline from accept on. No read yet: registering an
     * edge-triggered fd reports data already there in the next wait. */
    tt_timer_start(w->loop, &c->timer, (uint64_t)cfg->header_timeout_ms);
}

static unsigned log2_bucket(uint64_t v)
{
    unsigned b = 0;
    while (v > 1 && b < TT_HIST_BUCKETS - 1) {
        v >>= 1;
        b++;
    }
    return b;
}

void tt__conn_close(tt__conn *c, int reason)
{
    tt__worker *w = c->w;
    if (c->state == TT_CONN_CLOSED) return;
    const tt_server_config *cfg = CFG(c);
    TT__INC(w->stats.closes[reason]);
    TT__INC(w->stats.reqs_per_conn[log2_bucket(c->nreq)]);
    TT__INC(w->stats.lifetime_ms[log2_bucket(tt__worker_now(w) - c->born)]);
    TT__DEC(w->stats.open);
    tt_timer_stop(w->loop, &c->timer);
    if (c->io.fd >= 0) {
        if (reason == TT_CLOSE_SEND_TIMEOUT ||
            (cfg->reset_timedout &&
             (reason == TT_CLOSE_IDLE_TIMEOUT || reason == TT_CLOSE_HEADER_TIMEOUT ||
              reason == TT_CLOSE_BODY_TIMEOUT)))
            tt_sock_linger_reset(c->io.fd);
        tt_io_close(w->loop, &c->io); /* no epoll_ctl(DEL): the close removes it */
    }
    conn_set_state(c, TT_CONN_CLOSED);
    w->nconns--;
    if (c->x && c->x->handling) {
        c->flags |= TT__C_ZOMBIE; /* freed when the handler finishes its response */
        if (c->x->drain_fn) tt_defer_queue(w->loop, &c->x->drain_defer, drain_on_defer);
    } else {
        x_put(c);
        if (!(c->flags & TT__C_IN_PROC)) conn_free(c);
    }
    tt__worker_conn_gone(w);
}

static void conn_free(tt__conn *c)
{
    tt__worker *w = c->w;
    c->next = w->free_conns;
    w->free_conns = c;
}

/* Close up to max idle connections, oldest first (max < 0: all). */
void tt__worker_close_idle(tt__worker *w, int reason, int max)
{
    while (max != 0 && w->lists[TT_CONN_IDLE]) {
        tt__conn_close(w->lists[TT_CONN_IDLE], reason);
        if (max > 0) max--;
    }
}

/* Shutdown: close every connection that is not in the middle of an exchange; later ones. */
void tt__worker_free_all(tt__worker *w)
{
    for (int s = 0; s < TT_CONN_CLOSED; s++)
        while (w->lists[s])
            tt__conn_close(w->lists[s], TT_CLOSE_SHUTDOWN);
}

/* ---- output ---- */

/* Send queued output: 0 all sent, 1 blocked (EPOLLOUT will resume), -errno on error. */
static int conn_flush(tt__conn *c)
{
    struct tt_req *x = c->x;
    while (x->wbuf.len) {
        ssize_t n = send(c->io.fd, x->wbuf.data, x->wbuf.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 1;
            return -errno;
        }
        tt_buf_consume(&x->wbuf, (size_t)n);
    }
    while (x->file_left && x->wbuf.len == 0) {
        ssize_t n = sendfile(c->io.fd, x->file_fd, &x->file_off,
                             x->file_left > (1u << 30) ? (1u << 30) : x->file_left);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 1;
            return -errno;
        }
        if (n == 0) { /* file shrank: the framing is broken, close */
            return -EPIPE;
        }
        x->file_left -= (size_t)n;
        if (!x->file_left) {
            close(x->file_fd);
            x->file_fd = -1;
        }
    }
    tt_buf_release_if_empty(&x->wbuf, c->w->pool);
    return 0;
}

/* Flush and arm/clear the send deadline. Returns 0 flushed, 1 blocked, -1 closed. */
static int conn_flush_timed(tt__conn *c)
{
    int r = conn_flush(c);
    if (r < 0) {
        tt__conn_close(c, TT_CLOSE_PEER_RST);
        return -1;
    }
    if (r == 1) {
        if (!(c->flags & TT__C_WANT_WRITE) || 1) /* progress or first block: refresh */
            tt_timer_start(c->w->loop, &c->timer, (uint64_t)CFG(c)->send_timeout_ms);
        c->flags |= TT__C_WANT_WRITE;
        return 1;
    }
    c->flags &= (uint8_t)~TT__C_WANT_WRITE;
    return 0;
}

/* ---- closing ---- */

static void linger_drain(tt__conn *c)
{
    char tmp[16384];
    tt__worker *w = c->w;
    for (;;) {
        ssize_t n = recv(c->io.fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            c->x->discard += (uint64_t)n;
            if (c->x->discard > (uint64_t)CFG(c)->discard_limit * 16) {
                tt__conn_close(c, c->closing ? c->closing - 1 : TT_CLOSE_BAD_REQUEST);
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            uint32_t now = tt__worker_now(w);
            uint32_t t = (uint32_t)CFG(c)->lingering_timeout_ms;
            if (c->deadline - now < t) t = c->deadline - now;
            if ((int32_t)(c->deadline - now) <= 0) break;
            tt_timer_start(w->loop, &c->timer, t);
            return;
        }
        break; /* EOF or error: done */
    }
    tt__conn_close(c, c->closing ? c->closing - 1 : TT_CLOSE_BAD_REQUEST);
}

/* The final response is on the wire: close in the way that leaves the fewest problems.
 * - the peer already sent FIN: close now;
 * - unread input (or an error response): lingering close — shutdown(SHUT_WR), then drain
 *   input for a bounded time and byte count, so the peer reads our response, not an RST;
 * - otherwise ("Connection: close" said by either side): wait a bounded time for the client's
 *   FIN so that TIME_WAIT lands on the client, then close. */
static void conn_begin_close(tt__conn *c)
{
    tt__worker *w = c->w;
    int reason = c->closing ? c->closing - 1 : TT_CLOSE_CONN_CLOSE;
    struct tt_req *x = c->x;
    if (c->flags & TT__C_PEER_FIN) {
        tt__conn_close(c, reason);
        return;
    }
    int error = reason == TT_CLOSE_BAD_REQUEST || reason == TT_CLOSE_HEADER_TIMEOUT ||
                reason == TT_CLOSE_BODY_TIMEOUT;
    if (!error && x && x->req.minor_version == 0 && !(c->flags & TT__C_READABLE) && !x->rbuf.len) {
        /* HTTP/1.0 clients (ab, old proxies) read until the server closes even with a
         * Content-Length: closing first is the only way they finish promptly. */
        tt__conn_close(c, reason);
        return;
    }
    conn_set_state(c, TT_CONN_LINGERING);
    if (x) {
        tt_buf_release(&x->rbuf, w->pool);
        tt_buf_release(&x->wbuf, w->pool);
        x->discard = 0;
    }
    /* Errors: the client may still be sending (an upload we refused) and may never read
     * until it is done, so tell it with our FIN at once. Otherwise the client was told
     * "Connection: close" in a complete response: pipelined requests it already sent are
     * drained and discarded, and it closes first. */
    if (error) {
        shutdown(c->io.fd, SHUT_WR);
        c->flags |= TT__C_LINGER_DRAIN;
        c->deadline = tt__worker_now(w) + (uint32_t)CFG(c)->lingering_time_ms;
    } else {
        c->deadline = tt__worker_now(w) + (uint32_t)CFG(c)->close_wait_ms;
    }
    tt_timer_start(w->loop, &c->timer, c->deadline - tt__worker_now(w));
    if (!x && !x_get(c)) {
        tt__conn_close(c, reason);
        return;
    }
    if (c->flags & TT__C_READABLE) linger_drain(c); /* else the next edge (input, FIN) wakes us */
}

/* ---- request handling ---- */

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

/* Make room for want more input bytes without invalidating the request views. */
static int x_reserve(struct tt_req *x, tt__worker *w, size_t want)
{
    const char *old = x->rbuf.data;
    if (!tt_buf_reserve(&x->rbuf, w->pool, want)) return -ENOMEM;
    rebase(x, old);
    return 0;
}

static int res_begin(struct tt_req *x, int status, long long length);

/* Answer a protocol error with status and Connection: close, then close. */
static void conn_error(tt__conn *c, int status)
{
    struct tt_req *x = c->x;
    c->closing = TT_CLOSE_BAD_REQUEST + 1;
    x->keep_alive = 0;
    x->req.minor_version = 1;
    x->req.method_id = TT_HTTP1_M_OTHER;
    x->handling = 1;
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tt_http1_reason(status));
    x->nres = x->store_used = 0;
    tt_res_send(x, status, "text/plain", body, (size_t)n);
}

static const tt_route *find_route(const tt_server_config *cfg, const char *p, size_t n)
{
    const tt_route *best = NULL;
    size_t bl = 0;
    for (int i = 0; i < cfg->nroutes; i++) {
        const tt_route *r = &cfg->routes[i];
        size_t l = strlen(r->prefix);
        if (l <= n && l >= bl && memcmp(p, r->prefix, l) == 0) {
            best = r;
            bl = l;
        }
    }
    return best;
}

static void conn_dispatch(tt__conn *c)
{
    tt__worker *w = c->w;
    struct tt_req *x = c->x;
    const tt_server_config *cfg = CFG(c);
    c->nreq++;
    TT__INC(w->stats.requests);
    if (c->nreq > 1) TT__INC(w->stats.reused_requests);
    /* Will this connection outlive this exchange? Decided once, before the handler runs. */
    int reason = -1;
    if (!(x->req.flags & TT_HTTP1_F_KEEP_ALIVE))
        reason = TT_CLOSE_CONN_CLOSE;
    else if (w->shutting)
        reason = TT_CLOSE_SHUTDOWN;
    else if (cfg->keepalive_timeout_ms < 0)
        reason = TT_CLOSE_CONN_CLOSE;
    else if (c->maxreq && c->nreq >= c->maxreq)
        reason = TT_CLOSE_MAX_REQUESTS;
    else if (cfg->keepalive_time_ms > 0 &&
             tt__worker_now(w) - c->born >= (uint32_t)cfg->keepalive_time_ms)
        reason = TT_CLOSE_MAX_AGE;
    x->keep_alive = reason < 0;
    if (reason >= 0 && !c->closing) c->closing = (uint8_t)(reason + 1);
    tt_timer_stop(w->loop, &c->timer);
    conn_set_state(c, TT_CONN_HANDLING);
    x->handling = 1;
    x->head_only = x->req.method_id == TT_HTTP1_M_HEAD;
    const tt_route *r = find_route(cfg, x->path, x->path_len);
    if (r)
        r->fn(x, x, r->data);
    else if (cfg->root)
        tt_static_handler(x, x, (void *)cfg->root);
    else
        tt_res_send(x, 404, "text/plain", "404 Not Found\n", 14);
}

static void split_target(struct tt_req *x)
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

/* Advance the current message with what is buffered. Returns 1 if a request was dispatched,
 * 0 if more input is needed, -1 if the connection is closing. */
/* Copy the decoded trailer fields' names and values to dst (back to back, in order; every copy
 * moves bytes down, never over one still to be read) and point the views there. Returns the
 * bytes used. */
static size_t trailers_pack(struct tt_req *x, char *dst)
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

static int conn_step(tt__conn *c)
{
    tt__worker *w = c->w;
    struct tt_req *x = c->x;
    const tt_server_config *cfg = CFG(c);
    if (x->discard) { /* rest of a refused body we chose to skip */
        size_t n = x->rbuf.len < x->discard ? x->rbuf.len : (size_t)x->discard;
        tt_buf_consume(&x->rbuf, n);
        x->discard -= n;
        if (x->discard) {
            tt_timer_start(w->loop, &c->timer, (uint64_t)cfg->body_timeout_ms);
            conn_set_state(c, TT_CONN_READING_BODY);
            return 0;
        }
        if (!x->rbuf.len) return 0;
    }
    if (!x->head_len) {
        if (!(c->flags & TT__C_HEAD_STARTED)) {
            c->flags |= TT__C_HEAD_STARTED;
            if (c->state != TT_CONN_READING_HEAD || !tt_timer_armed(&c->timer))
                tt_timer_start(w->loop, &c->timer, (uint64_t)cfg->header_timeout_ms);
            conn_set_state(c, TT_CONN_READING_HEAD);
        }
        int r = tt_http1_parse_request(&x->parser, x->rbuf.data, x->rbuf.len, &x->req);
        if (r == -2) return 0;
        if (r < 0) {
            conn_error(c, tt_http1_error_status(x->parser.error));
            return -1;
        }
        x->head_len = (size_t)r;
        c->flags &= (uint8_t)~TT__C_HEAD_STARTED;
        split_target(x);
        if (x->req.flags & TT_HTTP1_F_EXPECT_OTHER) {
            conn_error(c, 417);
            return -1;
        }
        if (x->req.body == TT_HTTP1_BODY_LENGTH &&
            x->req.content_length > (uint64_t)cfg->max_body) {
            /* 413: skip the body if it is small enough to keep the connection, else close. */
            uint64_t have = x->rbuf.len - x->head_len;
            uint64_t left = x->req.content_length -
                            (have < x->req.content_length ? have : x->req.content_length);
            if (!(x->req.flags & TT_HTTP1_F_EXPECT_CONTINUE) &&
                x->req.content_length <= (uint64_t)cfg->discard_limit + (uint64_t)cfg->max_body) {
                x->raw_len = x->head_len + (size_t)(x->req.content_length - left);
                x->discard = left;
                c->nreq++;
                TT__INC(w->stats.requests);
                x->keep_alive = cfg->keepalive_timeout_ms > 0 && !w->shutting &&
                                (x->req.flags & TT_HTTP1_F_KEEP_ALIVE);
                if (!x->keep_alive && !c->closing) c->closing = TT_CLOSE_CONN_CLOSE + 1;
                x->handling = 1;
                x->head_only = x->req.method_id == TT_HTTP1_M_HEAD;
                conn_set_state(c, TT_CONN_HANDLING);
                tt_res_send(x, 413, "text/plain", "413 Content Too Large\n", 22);
                return 1;
            }
            conn_error(c, 413);
            return -1;
        }
        if (x->req.body == TT_HTTP1_BODY_CHUNKED) tt_http1_chunked_init(&x->dec);
    }
    if (x->req.body == TT_HTTP1_BODY_LENGTH) {
        size_t need = x->head_len + (size_t)x->req.content_length;
        if (x->rbuf.len < need) {
            if (x_reserve(x, w, need - x->rbuf.len) < 0) {
                conn_error(c, 500);
                return -1;
            }
            goto need_body;
        }
        x->body_len = (size_t)x->req.content_length;
        x->raw_len = need;
    } else if (x->req.body == TT_HTTP1_BODY_CHUNKED) {
        for (;;) {
            char *p = x->rbuf.data + x->head_len + x->body_len;
            size_t avail = x->rbuf.len - x->head_len - x->body_len;
            size_t out = 0;
            long r = tt_http1_chunked_decode(&x->dec, p, avail, &out);
            if (r < 0) {
                conn_error(c, tt_http1_error_status(x->dec.error));
                return -1;
            }
            /* Trailer fields (views into the consumed input) are packed right after the data,
             * before what follows moves down over the framing: they stay valid with the body. */
            size_t tl = x->dec.done ? trailers_pack(x, p + out) : 0;
            if ((size_t)r > out + tl) {
                memmove(p + out + tl, p + r, avail - (size_t)r);
                x->rbuf.len -= (size_t)r - out - tl;
            }
            x->tlen = tl;
            x->body_len += out;
            if (x->body_len > (size_t)cfg->max_body) {
                conn_error(c, 413);
                return -1;
            }
            if (x->dec.done) {
                x->raw_len = x->head_len + x->body_len + x->tlen;
                break;
            }
            if ((size_t)r == avail || r == 0) {
                if (x_reserve(x, w, READ_MIN) < 0) {
                    conn_error(c, 500);
                    return -1;
                }
                goto need_body;
            }
        }
    } else {
        x->raw_len = x->head_len;
    }
    conn_dispatch(c);
    return 1;
need_body:
    if ((x->req.flags & TT_HTTP1_F_EXPECT_CONTINUE) && !x->sent_continue) {
        x->sent_continue = 1;
        tt_buf_append(&x->wbuf, w->pool, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    if (c->state != TT_CONN_READING_BODY) {
        conn_set_state(c, TT_CONN_READING_BODY);
        tt_timer_start(w->loop, &c->timer, (uint64_t)cfg->body_timeout_ms);
    }
    return 0;
}

/* Read once. Returns bytes read, 0 when nothing more is available now, -1 if closed. */
static ssize_t conn_read(tt__conn *c)
{
    struct tt_req *x = c->x;
    size_t space = tt_buf_space(&x->rbuf);
    if (space < READ_MIN) {
        if (x_reserve(x, c->w, READ_MIN) < 0) {
            tt__conn_close(c, TT_CLOSE_PEER_RST);
            return -1;
        }
        space = tt_buf_space(&x->rbuf);
    }
    for (;;) {
        ssize_t n = recv(c->io.fd, x->rbuf.data + x->rbuf.len, space, 0);
        if (n > 0) {
            tt_buf_commit(&x->rbuf, (size_t)n);
            if ((size_t)n < space && !(c->flags & TT__C_RDHUP))
                c->flags &= (uint8_t)~TT__C_READABLE; /* short read: drained, an edge follows */
            if (c->state == TT_CONN_READING_BODY)
                tt_timer_start(c->w->loop, &c->timer, (uint64_t)CFG(c)->body_timeout_ms);
            return n;
        }
        if (n == 0) {
            c->flags |= TT__C_PEER_FIN;
            c->flags &= (uint8_t)~TT__C_READABLE;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            c->flags &= (uint8_t)~TT__C_READABLE;
            return 0;
        }
        tt__conn_close(c, TT_CLOSE_PEER_RST);
        return -1;
    }
}

/* Go idle: no buffers, no exchange, the keep-alive deadline armed. */
static void conn_go_idle(tt__conn *c)
{
    x_put(c);
    c->flags &= (uint8_t)~TT__C_HEAD_STARTED;
    conn_set_state(c, TT_CONN_IDLE);
    tt_timer_start(c->w->loop, &c->timer, (uint64_t)CFG(c)->keepalive_timeout_ms);
}

static void conn_process(tt__conn *c)
{
    if (c->flags & TT__C_IN_PROC) return;
    c->flags |= TT__C_IN_PROC;
    for (;;) {
        struct tt_req *x = c->x;
        if (c->state == TT_CONN_CLOSED) goto out;
        if (c->state == TT_CONN_LINGERING) {
            linger_drain(c);
            goto out;
        }
        if (!x) {
            if (!(c->flags & TT__C_READABLE)) break;
            if (!(x = x_get(c))) {
                tt__conn_close(c, TT_CLOSE_PRESSURE);
                goto out;
            }
            x_reset_message(x, CFG(c));
        }
        if (x->handling) goto flush; /* an async handler owns the exchange: keep order */
        if (c->closing) goto flush;  /* the last response is queued: read no further requests */
        if (x->file_left || x->wbuf.len > (size_t)CFG(c)->max_pipeline) {
            int r = conn_flush_timed(c);
            if (r < 0) goto out;
            if (r > 0) break;
        }
        if (x->rbuf.len) {
            int r = conn_step(c);
            if (c->state == TT_CONN_CLOSED) goto out;
            if (r != 0) continue;
        }
        if (!(c->flags & TT__C_READABLE)) break;
        ssize_t n = conn_read(c);
        if (n < 0) goto out;
        if (n == 0) break;
    }
flush:;
    struct tt_req *x = c->x;
    if (!x) { /* idle with nothing new */
        if (c->flags & TT__C_PEER_FIN) tt__conn_close(c, TT_CLOSE_PEER_FIN);
        goto out;
    }
    if (x->wbuf.len || x->file_left) {
        int r = conn_flush_timed(c);
        if (r < 0) goto out;
        if (r > 0) {
            if (!x->handling) conn_set_state(c, TT_CONN_WRITING);
            goto out;
        }
    }
    if (x->handling) goto out;
    if (c->closing) {
        conn_begin_close(c);
        goto out;
    }
    if (c->flags & TT__C_PEER_FIN) {
        /* FIN with a partial request (or none): nothing more will come. */
        tt__conn_close(c, TT_CLOSE_PEER_FIN);
        goto out;
    }
    if (!x->rbuf.len && !x->head_len && !x->discard) {
        conn_go_idle(c);
    } else if (c->state == TT_CONN_WRITING || c->state == TT_CONN_HANDLING) {
        conn_set_state(c, x->head_len ? TT_CONN_READING_BODY : TT_CONN_READING_HEAD);
    }
out:
    c->flags &= (uint8_t)~TT__C_IN_PROC;
    if (c->state == TT_CONN_CLOSED && !(c->flags & TT__C_ZOMBIE)) conn_free(c);
}

static void conn_on_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    tt__conn *c = io->data;
    (void)loop;
    if (ev & (TT_ERROR | TT_HUP)) {
        if (c->state == TT_CONN_LINGERING)
            tt__conn_close(c, c->closing ? c->closing - 1 : TT_CLOSE_CONN_CLOSE);
        else if (!(ev & TT_READ) || c->state != TT_CONN_HANDLING)
            tt__conn_close(c, TT_CLOSE_PEER_RST);
        else
            tt__conn_close(c, TT_CLOSE_PEER_RST);
        if (c->state == TT_CONN_CLOSED && !(c->flags & TT__C_ZOMBIE)) return;
        return;
    }
    if (ev & (TT_READ | TT_RDHUP)) c->flags |= TT__C_READABLE;
    if (ev & TT_RDHUP) c->flags |= TT__C_RDHUP; /* the FIN edge will not come again */
    if ((ev & TT_WRITE) && (c->flags & TT__C_WANT_WRITE) && c->x) {
        int r = conn_flush_timed(c);
        if (r < 0) return;
        if (r == 0 && c->state == TT_CONN_WRITING && c->x->handling)
            conn_set_state(c, TT_CONN_HANDLING);
        if (c->x->drain_fn && drain_check(c->x)) return; /* the handler ran: c may be gone */
    }
    if (c->flags & TT__C_WANT_WRITE)
        return; /* the peer is not reading: do not read more requests either */
    if (c->x && c->x->handling) return;
    if (c->flags & TT__C_READABLE || c->state == TT_CONN_WRITING) conn_process(c);
}

/* One timer per connection; which deadline it is depends on the state (docs/server.md):
 * blocked output (send) first, then the state's own. */
static void conn_on_timer(tt_loop *loop, tt_timer *t)
{
    tt__conn *c = tt_container_of(t, tt__conn, timer);
    (void)loop;
    if (c->flags & TT__C_WANT_WRITE) {
        tt__conn_close(c, TT_CLOSE_SEND_TIMEOUT);
        return;
    }
    switch (c->state) {
    case TT_CONN_IDLE: tt__conn_close(c, TT_CLOSE_IDLE_TIMEOUT); return;
    case TT_CONN_READING_HEAD:
        if (c->x && c->x->rbuf.len && !(c->flags & TT__C_PEER_FIN)) {
            c->flags |= TT__C_IN_PROC;
            c->closing = TT_CLOSE_HEADER_TIMEOUT + 1;
            conn_error(c, 408);
            c->closing = TT_CLOSE_HEADER_TIMEOUT + 1;
            c->flags &= (uint8_t)~TT__C_IN_PROC;
            conn_process(c);
            return;
        }
        tt__conn_close(c, TT_CLOSE_HEADER_TIMEOUT);
        return;
    case TT_CONN_READING_BODY: tt__conn_close(c, TT_CLOSE_BODY_TIMEOUT); return;
    case TT_CONN_LINGERING:
        if ((c->flags & TT__C_LINGER_DRAIN) && (int32_t)(c->deadline - tt__worker_now(c->w)) > 0) {
            linger_drain(c);
            return;
        }
        tt__conn_close(c, c->closing ? c->closing - 1 : TT_CLOSE_CONN_CLOSE);
        return;
    default: return;
    }
}

/* ---- request accessors ---- */

TT_API const char *tt_req_method(const tt_req *req, size_t *len)
{
    if (len) *len = req->req.method_len;
    return req->req.method;
}

TT_API const char *tt_req_path(const tt_req *req, size_t *len)
{
    if (len) *len = req->path_len;
    return req->path;
}

TT_API const char *tt_req_query(const tt_req *req, size_t *len)
{
    if (len) *len = req->query_len;
    return req->query;
}

TT_API const char *tt_req_target(const tt_req *req, size_t *len)
{
    if (len) *len = req->req.target_len;
    return req->req.target;
}

TT_API int tt_req_minor(const tt_req *req)
{
    return req->req.minor_version;
}

TT_API const char *tt_req_header(const tt_req *req, const char *name, size_t *len)
{
    const tt_header *h = tt_http1_find_header(req->hdrs, req->req.num_headers, name, strlen(name));
    if (!h) return NULL;
    if (len) *len = h->value_len;
    return h->value;
}

TT_API int tt_req_header_count(const tt_req *req)
{
    return (int)req->req.num_headers;
}

TT_API int tt_req_header_at(const tt_req *req, int i, const char **name, size_t *nlen,
                            const char **value, size_t *vlen)
{
    if (i < 0 || (size_t)i >= req->req.num_headers) return -ERANGE;
    *name = req->hdrs[i].name;
    *nlen = req->hdrs[i].name_len;
    *value = req->hdrs[i].value;
    *vlen = req->hdrs[i].value_len;
    return 0;
}

TT_API const char *tt_req_body(const tt_req *req, size_t *len)
{
    if (len) *len = req->body_len;
    return req->body_len ? req->rbuf.data + req->head_len : NULL;
}

TT_API const char *tt_req_trailer(const tt_req *req, const char *name, size_t *len)
{
    size_t n = req->dec.num_trailers < TT__MAX_TRAILERS ? req->dec.num_trailers : TT__MAX_TRAILERS;
    const tt_header *h = tt_http1_find_header(req->trailers, n, name, strlen(name));
    if (!h) return NULL;
    if (len) *len = h->value_len;
    return h->value;
}

TT_API int tt_req_trailer_count(const tt_req *req)
{
    return req->req.body == TT_HTTP1_BODY_CHUNKED && req->dec.done ? (int)req->dec.num_trailers : 0;
}

TT_API int tt_req_trailer_at(const tt_req *req, int i, const char **name, size_t *nlen,
                             const char **value, size_t *vlen)
{
    if (i < 0 || i >= tt_req_trailer_count(req)) return -ERANGE;
    *name = req->trailers[i].name;
    *nlen = req->trailers[i].name_len;
    *value = req->trailers[i].value;
    *vlen = req->trailers[i].value_len;
    return 0;
}

TT_API int tt_req_conn_info(const tt_req *req, tt_conn_info *out)
{
    const tt__conn *c = req->conn;
    const tt_server_config *cfg = CFG(c);
    memset(out, 0, sizeof *out);
    out->id = ((uint64_t)c->w->index << 32) | c->id;
    out->worker = c->w->index;
    if (c->io.fd >= 0) {
        tt_sock_peer(c->io.fd, &out->peer);
        tt_sock_local(c->io.fd, &out->local);
    }
    out->requests = c->nreq;
    out->requests_left = c->maxreq ? (int32_t)(c->maxreq - c->nreq) : -1;
    out->age_ms = tt__worker_now(c->w) - c->born;
    out->idle_timeout_ms = req->keep_alive ? cfg->keepalive_timeout_ms : -1;
    out->state = c->state;
    return 0;
}

TT_API tt_loop *tt_req_loop(const tt_req *req)
{
    return req->conn->w->loop;
}
TT_API tt_server *tt_req_server(const tt_req *req)
{
    return req->conn->w->srv;
}
TT_API int tt_req_aborted(const tt_req *req)
{
    return req->conn->state == TT_CONN_CLOSED;
}

/* ---- response writer ---- */

TT_API int tt_res_header(tt_res *res, const char *name, const char *value)
{
    if (res->started) return -EALREADY;
    size_t nl = strlen(name), vl = strlen(value);
    if (res->nres >= TT__MAX_RES_HEADERS - 2 || res->store_used + nl + vl > TT__RES_STORE)
        return -ENOSPC;
    char *p = res->store + res->store_used;
    memcpy(p, name, nl);
    memcpy(p + nl, value, vl);
    res->res_hdrs[res->nres++] = (tt_header){p, nl, p + nl, vl};
    res->store_used += nl + vl;
    return 0;
}

TT_API void tt_res_close(tt_res *res)
{
    tt__conn *c = res->conn;
    if (!res->started) {
        res->keep_alive = 0;
        if (!c->closing) c->closing = TT_CLOSE_CONN_CLOSE + 1;
    }
}

static int res_begin(struct tt_req *x, int status, long long length)
{
    tt__conn *c = x->conn;
    tt__worker *w = c->w;
    const tt_server_config *cfg = CFG(c);
    if (x->started) return -EALREADY;
    x->started = 1;
    x->status = status;
    x->res_len = length;
    if (length < 0 && x->req.minor_version == 0) x->keep_alive = 0; /* close-delimited */
    size_t n = x->nres;
    if (cfg->server_name[0])
        x->res_hdrs[n++] = (tt_header){"Server", 6, cfg->server_name, strlen(cfg->server_name)};
    char ka[48];
    if (x->keep_alive && status >= 200) {
        int t = cfg->keepalive_timeout_ms / 1000;
        if (t >= 2) t -= 1; /* a little below the real deadline */
        long max = c->maxreq ? (long)(c->maxreq - c->nreq) : -1;
        size_t kl = tt_http1_keepalive_format(ka, sizeof ka, t, max);
        x->res_hdrs[n++] = (tt_header){"Keep-Alive", 10, ka, kl};
    }
    tt_http1_response_head h = {.status = status,
                                .headers = x->res_hdrs,
                                .num_headers = n,
                                .content_length = length,
                                .request_minor = x->req.minor_version,
                                .head_request = x->head_only,
                                .keep_alive = x->keep_alive,
                                .date = 1};
    size_t want = 512;
    for (;;) {
        char *p = tt_buf_reserve(&x->wbuf, w->pool, want);
        if (!p) return -ENOMEM;
        size_t space = tt_buf_space(&x->wbuf);
        size_t need = tt_http1_serialize_response(p, space, &h);
        if (need <= space) {
            tt_buf_commit(&x->wbuf, need);
            break;
        }
        want = need;
        h.keep_alive = x->keep_alive;
    }
    x->chunked = h.body == TT_HTTP1_BODY_CHUNKED;
    if (!h.keep_alive && x->keep_alive) {
        x->keep_alive = 0;
    }
    if (!x->keep_alive && !c->closing) c->closing = TT_CLOSE_CONN_CLOSE + 1;
    return 0;
}

TT_API int tt_res_start(tt_res *res, int status, long long length)
{
    if (res->conn->state == TT_CONN_CLOSED) {
        res->started = 1;
        return 0;
    }
    return res_begin(res, status, length);
}

TT_API int tt_res_write(tt_res *res, const void *data, size_t len)
{
    tt__conn *c = res->conn;
    if (!res->started) {
        int r = tt_res_start(res, 200, -1);
        if (r < 0) return r;
    }
    if (c->state == TT_CONN_CLOSED || res->head_only || !len) return 0;
    res->bytes_out += (long long)len;
    if (res->chunked) {
        char hb[TT_HTTP1_CHUNK_HEADER_MAX];
        size_t hl = tt_http1_chunk_header(hb, len);
        if (tt_buf_append(&res->wbuf, c->w->pool, hb, hl) < 0 ||
            tt_buf_append(&res->wbuf, c->w->pool, data, len) < 0 ||
            tt_buf_append(&res->wbuf, c->w->pool, "\r\n", 2) < 0)
            return -ENOMEM;
    } else if (tt_buf_append(&res->wbuf, c->w->pool, data, len) < 0) {
        return -ENOMEM;
    }
    /* A streaming (async) handler: push bytes out now. */
    if (!(c->flags & TT__C_IN_PROC) && res->wbuf.len > 0) {
        int r = conn_flush_timed(c);
        if (r < 0) return -EPIPE;
        if (r > 0) conn_set_state(c, TT_CONN_WRITING);
    }
    return 0;
}

TT_API int tt_res_sendfile(tt_res *res, int fd, off_t offset, size_t len)
{
    if (!res->started || res->chunked || res->conn->state == TT_CONN_CLOSED || res->head_only ||
        res->file_fd >= 0 || !len) {
        close(fd);
        return res->file_fd >= 0 ? -EBUSY : 0;
    }
    res->file_fd = fd;
    res->file_off = offset;
    res->file_left = len;
    res->bytes_out += (long long)len;
    return 0;
}

TT_API size_t tt_res_pending(const tt_res *res)
{
    return res->wbuf.len + res->file_left;
}

/* Run the drain callback if its condition holds (few enough unsent bytes, or the peer gone).
 * Returns 1 if it ran: the exchange and its connection may be gone. */
static int drain_check(struct tt_req *x)
{
    if (!x->drain_fn) return 0;
    if (x->conn->state != TT_CONN_CLOSED && tt_res_pending(x) > x->drain_low) return 0;
    tt_res_drain_fn fn = x->drain_fn;
    x->drain_fn = NULL;
    fn(x, x->drain_data);
    return 1;
}

static void drain_on_defer(tt_loop *loop, tt_defer *d)
{
    (void)loop;
    /* Not yet drained: the flush blocked, so the writable edge calls drain_check later. */
    drain_check(tt_container_of(d, struct tt_req, drain_defer));
}

TT_API int tt_res_on_drain(tt_res *res, size_t low, tt_res_drain_fn fn, void *data)
{
    if (res->finished || !fn) return res->finished ? -EALREADY : -EINVAL;
    res->drain_fn = fn;
    res->drain_data = data;
    res->drain_low = low;
    /* Checked after this iteration's flush; never re-entrantly from here. */
    tt_defer_queue(res->conn->w->loop, &res->drain_defer, drain_on_defer);
    return 0;
}

TT_API int tt_res_end(tt_res *res)
{
    tt__conn *c = res->conn;
    tt__worker *w = c->w;
    if (!res->started) {
        int r = tt_res_start(res, res->status ? res->status : 200, 0);
        if (r < 0) return r;
    }
    if (res->chunked && c->state != TT_CONN_CLOSED && !res->head_only)
        tt_buf_append(&res->wbuf, w->pool, "0\r\n\r\n", 5);
    res->drain_fn = NULL;
    if (res->drain_defer.queued) tt_defer_cancel(w->loop, &res->drain_defer);
    res->handling = 0;
    res->finished = 1;
    if (c->flags & TT__C_ZOMBIE) {
        c->flags &= (uint8_t)~TT__C_ZOMBIE;
        x_put(c);
        if (!(c->flags & TT__C_IN_PROC)) conn_free(c);
        return 0;
    }
    if (w->log) tt__access_log(res);
    /* The exchange is over: drop the request bytes; the views are now invalid. */
    if (res->raw_len) {
        tt_buf_consume(&res->rbuf, res->raw_len);
        int fin = c->closing;
        x_reset_message(res, CFG(c));
        (void)fin;
    }
    if (!(c->flags & TT__C_IN_PROC)) {
        c->flags |= TT__C_READABLE; /* requests may wait in the kernel */
        conn_process(c);
    }
    return 0;
}

TT_API int tt_res_send(tt_res *res, int status, const char *content_type, const void *body,
                       size_t len)
{
    if (content_type && !res->started) tt_res_header(res, "Content-Type", content_type);
    int r = tt_res_start(res, status, (long long)len);
    if (r < 0) return r;
    if (len) {
        r = tt_res_write(res, body, len);
        if (r < 0) return r;
    }
    return tt_res_end(res);
}
