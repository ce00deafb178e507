/* conn.c — the server connection state machine. Every state transition lives in this file, in
 * one function (conn_set_state, with the optional trace hook of tt_server_config); see
 * docs/server.md for the diagram, the timeout precedence and the closing rules.
 *
 * One read fills the read buffer; every complete request in it is parsed and handled in order;
 * the responses are serialized into the write buffer and sent with one send() per batch. An
 * async handler (one that returns before finishing its response) stops the batch: later
 * pipelined requests wait in the read buffer, and reading pauses (kernel flow control bounds
 * the queue). Idle connections give their exchange and buffers back. All socket I/O goes
 * through the connection's tt_stream, which also keeps the readiness bits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/api.h"
#include "server/server_int.h"

#define READ_MIN   4096u
#define FILE_CHUNK 16384u /* the sendfile fallback's buffer (streams that cannot send files) */

static void conn_process(tt__conn *c);
static void conn_on_io(tt_loop *loop, tt_io *io, unsigned ev);
static void conn_on_timer(tt_loop *loop, tt_timer *t);
static void conn_free(tt__conn *c);
static int drain_check(struct tt_req *x);

static inline const tt_server_config *CFG(const tt__conn *c)
{
    return &c->w->srv->cfg;
}

/* The close reason decided for c, or dflt when none was. */
static inline int conn_reason(const tt__conn *c, int dflt)
{
    return c->closing != TT__CLOSE_NONE ? c->closing : dflt;
}

/* The one place a connection changes state: per-state lists (appended, so the oldest is
 * first), counters and the trace hook. Moving to the same state re-queues it at the tail
 * (idle: the most recently used) and is not traced. */
static void conn_set_state(tt__conn *c, int st)
{
    tt__worker *w = c->w;
    int from = c->state;
    if (from == st && st != TT_CONN_IDLE) return;
    tt__list_remove(&c->link);
    if (from != TT_CONN_CLOSED) TT__DEC(w->stats.conns[from]);
    c->state = (uint8_t)st;
    if (st != TT_CONN_CLOSED) { /* conns[] counts open connections: CLOSED stays 0 */
        TT__INC(w->stats.conns[st]);
        tt__list_push_back(&w->lists[st], &c->link);
    }
    const tt_server_config *cfg = CFG(c);
    if (cfg->trace && from != st) cfg->trace(cfg->trace_data, tt__conn_id(c), from, st);
}

/* Ready the exchange for the next message on the connection. */
static void x_reset_message(struct tt_req *x, const tt_server_config *cfg)
{
    tt_http1_limits lim = {.max_request_line = (uint32_t)cfg->max_request_line,
                           .max_head = (uint32_t)cfg->max_header};
    tt_http1_parser_init(&x->parser, &lim);
    x->head_len = x->body_len = x->raw_len = x->tlen = 0;
    x->path = x->query = NULL;
    x->path_len = x->query_len = 0;
    x->sent_continue = x->handling = 0;
    if (x->body.defer.queued) tt_defer_cancel(x->conn->w->loop, &x->body.defer);
    memset(&x->body, 0, sizeof x->body);
    struct tt_res *r = &x->res;
    r->status = 0;
    r->started = r->finished = r->chunked = r->head_only = 0;
    r->nhdrs = r->store_used = 0;
    r->bytes_out = 0;
    r->note = NULL;
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

void tt__conn_accepted(tt__worker *w, int fd, int tls)
{
    tt__conn *c = tt__conn_alloc(w);
    if (!c) {
        tt_stream s = {.io = {.fd = fd}};
        tt_stream_close(&s, w->loop, 0);
        return;
    }
    memset(c, 0, sizeof *c);
    tt__list_init(&c->link);
    c->w = w;
    c->id = ++w->next_id;
    c->born = tt__worker_now(w);
    c->state = TT_CONN_CLOSED; /* not on any list yet */
    c->closing = TT__CLOSE_NONE;
    c->maxreq = tt__conn_maxreq(w);
    tt_timer_init(&c->timer, conn_on_timer);
    /* TCP_NODELAY and the TCP keepalive settings are inherited from the listener. */
    w->nconns++;
    TT__INC(w->stats.accepted);
    TT__INC(w->stats.open);
    conn_set_state(c, TT_CONN_READING_HEAD);
    if (tt_stream_open(&c->s, w->loop, fd, 1, conn_on_io, c) < 0) {
        c->s.io.fd = fd; /* still ours: the close below closes it */
        tt__conn_close(c, TT_CLOSE_PEER_RST);
        return;
    }
    /* The first request has the header deadline from accept on (TLS: the handshake's first). */
    uint64_t first = (uint64_t)CFG(c)->header_timeout_ms;
    if (tls && !(first = tt__tls_conn_accept(c))) {
        tt__conn_close(c, TT_CLOSE_PRESSURE);
        return;
    }
    tt_timer_start(w->loop, &c->timer, first);
    /* With TCP_DEFER_ACCEPT the request is normally there already (nginx reads at once too):
     * serve it now instead of one loop turn later; a short connection (Connection: close) is
     * then done before the next epoll_wait. Otherwise the registration's first edge reports
     * the data. c may be gone after this. */
    if (CFG(c)->defer_accept_s > 0) {
        c->s.io.ready |= TT_READ;
        conn_process(c);
    }
}

void tt__conn_close(tt__conn *c, int reason)
{
    tt__worker *w = c->w;
    if (c->state == TT_CONN_CLOSED) return;
    const tt_server_config *cfg = CFG(c);
    TT__INC(w->stats.closes[reason]);
    TT__INC(w->stats.reqs_per_conn[tt__log2_bucket(c->nreq)]);
    TT__INC(w->stats.lifetime_ms[tt__log2_bucket(tt__worker_now(w) - c->born)]);
    TT__DEC(w->stats.open);
    tt_timer_stop(w->loop, &c->timer);
    int reset = reason == TT_CLOSE_SEND_TIMEOUT ||
                (cfg->reset_timedout > 0 &&
                 (reason == TT_CLOSE_IDLE_TIMEOUT || reason == TT_CLOSE_HEADER_TIMEOUT ||
                  reason == TT_CLOSE_BODY_TIMEOUT));
    if (c->s.impl) tt__tls_conn_closing(c, reason, reset);
    /* No epoll_ctl(DEL): closing the descriptor removes it from the poller. */
    tt_stream_close(&c->s, w->loop, reset ? TT_STREAM_RESET : 0);
    conn_set_state(c, TT_CONN_CLOSED);
    w->nconns--;
    if (c->x && c->x->handling) {
        c->flags |= TT__C_ZOMBIE; /* freed when the handler finishes its response */
        if (c->x->res.drain_fn) tt__conn_drain_queue(c->x);
        tt__body_kick(c->x); /* a streaming body ends with -ECONNRESET */
    } else {
        tt__x_put(c);
        if (!(c->flags & TT__C_IN_PROC)) conn_free(c);
    }
    if (w->conn_gone) w->conn_gone(w);
}

static void conn_free(tt__conn *c)
{
    tt__list_push_front(&c->w->free_conns, &c->link);
}

/* Close up to max idle connections, oldest first (max < 0: all). */
void tt__worker_close_idle(tt__worker *w, int reason, int max)
{
    tt__list *n;
    while (max != 0 && (n = tt__list_first(&w->lists[TT_CONN_IDLE]))) {
        tt__conn_close(tt__list_entry(n, tt__conn, link), reason);
        if (max > 0) max--;
    }
}

/* Shutdown: close every connection that is not in the middle of an exchange; later ones. */
void tt__worker_free_all(tt__worker *w)
{
    tt__list *n;
    for (int s = 0; s < TT_CONN_CLOSED; s++)
        while ((n = tt__list_first(&w->lists[s])))
            tt__conn_close(tt__list_entry(n, tt__conn, link), TT_CLOSE_SHUTDOWN);
}

/* ---- output ---- */

/* Send a piece of the response's file: sendfile where the stream can, else (a TLS stream, or
 * the no_sendfile knob) pread into a small buffer and write it; what the stream did not take
 * is read again next time. As tt_stream_sendfile. */
static ssize_t conn_send_file(tt__conn *c, struct tt_res *r)
{
    ssize_t n = -EOPNOTSUPP;
    if (!c->w->srv->no_sendfile)
        n = tt_stream_sendfile(&c->s, r->file_fd, &r->file_off, r->file_left);
    if (n != -EOPNOTSUPP) return n;
    char buf[FILE_CHUNK];
    ssize_t got =
        pread(r->file_fd, buf, r->file_left < sizeof buf ? r->file_left : sizeof buf, r->file_off);
    if (got <= 0) return got < 0 ? -errno : 0;
    n = tt_stream_write(&c->s, buf, (size_t)got);
    if (n > 0) r->file_off += n;
    return n;
}

/* Send queued output: 0 all sent, 1 blocked (the write edge will resume), -errno on error. */
static int conn_flush(tt__conn *c)
{
    struct tt_req *x = c->x;
    struct tt_res *r = &x->res;
    while (x->wbuf.len) {
        ssize_t n = tt_stream_write(&c->s, x->wbuf.data, x->wbuf.len);
        if (n == -EAGAIN) return 1;
        if (n < 0) return (int)n;
        tt_buf_consume(&x->wbuf, (size_t)n);
    }
    while (r->file_left && x->wbuf.len == 0) {
        ssize_t n = conn_send_file(c, r);
        if (n == -EAGAIN) return 1;
        if (n < 0) return (int)n;
        if (n == 0) return -EPIPE; /* file shrank: the framing is broken, close */
        r->file_left -= (size_t)n;
        if (!r->file_left) {
            close(r->file_fd);
            r->file_fd = -1;
        }
    }
    tt_buf_release_if_empty(&x->wbuf, c->w->pool);
    return 0;
}

/* Flush; when blocked, (re)start the send deadline: it bounds the time between two writes
 * that made progress. Returns 0 flushed, 1 blocked, -1 closed. */
static int conn_flush_timed(tt__conn *c)
{
    int r = conn_flush(c);
    if (r < 0) {
        tt__conn_close(c, TT_CLOSE_PEER_RST);
        return -1;
    }
    if (r == 1) tt_timer_start(c->w->loop, &c->timer, (uint64_t)CFG(c)->send_timeout_ms);
    return r;
}

int tt__conn_push(tt__conn *c)
{
    int r = conn_flush_timed(c);
    if (r < 0) return -EPIPE;
    if (r > 0) conn_set_state(c, TT_CONN_WRITING);
    return 0;
}

/* ---- closing ---- */

static void linger_drain(tt__conn *c)
{
    char tmp[16384];
    tt__worker *w = c->w;
    for (;;) {
        ssize_t n = tt_stream_read(&c->s, tmp, sizeof tmp);
        if (n > 0) {
            c->x->discard += (uint64_t)n;
            if (c->x->discard > (uint64_t)CFG(c)->discard_limit * 16) break;
            continue;
        }
        if (n == -EAGAIN) {
            uint32_t now = tt__worker_now(w);
            uint32_t t = (uint32_t)CFG(c)->lingering_timeout_ms;
            if (c->deadline - now < t) t = c->deadline - now;
            if ((int32_t)(c->deadline - now) <= 0) break;
            tt_timer_start(w->loop, &c->timer, t);
            return;
        }
        break; /* EOF or error: done */
    }
    tt__conn_close(c, conn_reason(c, TT_CLOSE_BAD_REQUEST));
}

/* The final response is on the wire: close at once, as RFC 9112 §9.6 asks, in the way that
 * leaves the fewest problems.
 * - the peer already sent FIN: close now;
 * - the client said "Connection: close" (it sends no more requests) and nothing of it is
 *   unread: close now, our FIN goes out after the response (nginx does the same);
 * - otherwise a lingering close: shutdown(SHUT_WR), then drain input for a bounded time and
 *   byte count, so the peer reads our response, not an RST;
 * - with close_wait_ms (an opt-in that deviates from §9.6), a server-decided or client-asked
 *   close that is not an error waits a bounded time for the client's FIN first, so that
 *   TIME_WAIT lands on the client. */
static void conn_begin_close(tt__conn *c)
{
    tt__worker *w = c->w;
    int reason = conn_reason(c, TT_CLOSE_CONN_CLOSE);
    struct tt_req *x = c->x;
    if (tt_stream_eof(&c->s)) {
        tt__conn_close(c, reason);
        return;
    }
    int error = reason == TT_CLOSE_BAD_REQUEST || reason == TT_CLOSE_HEADER_TIMEOUT ||
                reason == TT_CLOSE_BODY_TIMEOUT;
    int unread = tt_stream_can_read(&c->s) || (x && x->rbuf.len);
    int wait = !error && CFG(c)->close_wait_ms > 0;
    if (!error && !unread && (c->flags & TT__C_PEER_CLOSE) &&
        (!wait || (x && x->req.minor_version == 0))) {
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
    if (!wait) {
        tt_stream_shutdown(&c->s);
        c->flags |= TT__C_LINGER_DRAIN;
        c->deadline = tt__worker_now(w) + (uint32_t)CFG(c)->lingering_time_ms;
    } else {
        c->deadline = tt__worker_now(w) + (uint32_t)CFG(c)->close_wait_ms;
    }
    tt_timer_start(w->loop, &c->timer, c->deadline - tt__worker_now(w));
    if (!x && !tt__x_get(c)) {
        tt__conn_close(c, reason);
        return;
    }
    if (tt_stream_can_read(&c->s)) linger_drain(c); /* else the next edge (input, FIN) wakes us */
}

/* ---- request handling ---- */

/* Finish the exchange with a small text/plain answer of the server's own (errors, 413, 404). */
static void conn_reply(tt__conn *c, int status, const char *body, size_t len)
{
    struct tt_req *x = c->x;
    if (len) tt__res_add_header(&x->res, "Content-Type", "text/plain");
    if (tt__res_begin(x, status, (long long)len) == 0 && !x->res.head_only && len) {
        tt_buf_append(&x->wbuf, c->w->pool, body, len);
        x->res.bytes_out += (long long)len;
    }
    x->handling = 0;
    x->res.finished = 1;
    tt__conn_exchange_end(x);
}

/* A body the budget refused (-ENOBUFS) is the server's pressure, not the client's error. */
static int conn_budget_reason(int err)
{
    return err == -ENOBUFS ? TT_CLOSE_PRESSURE : TT_CLOSE_BAD_REQUEST;
}

/* Answer a protocol error with status and Connection: close, then close for reason. */
static void conn_error(tt__conn *c, int status, int reason)
{
    struct tt_req *x = c->x;
    c->closing = (uint8_t)reason;
    x->res.keep_alive = 0;
    x->log_minor = (uint8_t)(x->req.minor_version + 1); /* the access log's (ops) */
    x->req.minor_version = 1;
    x->req.method_id = TT_HTTP1_M_OTHER;
    x->handling = 1;
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tt_http1_reason(status));
    x->res.nhdrs = x->res.store_used = 0;
    conn_reply(c, status, body, (size_t)n);
}

static const tt_route *find_route(const tt_server *s, const char *p, size_t n)
{
    const tt_route *best = NULL;
    size_t bl = 0;
    for (int i = 0; i < s->nroutes; i++) {
        const tt_route *r = &s->routes[i];
        size_t l = strlen(r->prefix);
        if (l <= n && l >= bl && memcmp(p, r->prefix, l) == 0) {
            best = r;
            bl = l;
        }
    }
    return best;
}

/* Count the request and decide, once, whether the connection outlives its exchange (every
 * response goes through here: handlers, 404, the 413 that skips a body); then the exchange
 * belongs to the handler. */
static void conn_handling(tt__conn *c)
{
    tt__worker *w = c->w;
    struct tt_req *x = c->x;
    const tt_server_config *cfg = CFG(c);
    c->nreq++;
    TT__INC(w->stats.requests);
    if (c->nreq > 1) TT__INC(w->stats.reused_requests);
    int reason = -1;
    if (!(x->req.flags & TT_HTTP1_F_KEEP_ALIVE)) {
        reason = TT_CLOSE_CONN_CLOSE;
        c->flags |= TT__C_PEER_CLOSE;
    } else if (w->shutting)
        reason = TT_CLOSE_SHUTDOWN;
    else if (cfg->keepalive_timeout_ms < 0)
        reason = TT_CLOSE_CONN_CLOSE;
    else if (c->maxreq && c->nreq >= c->maxreq)
        reason = TT_CLOSE_MAX_REQUESTS;
    else if (cfg->keepalive_time_ms > 0 &&
             tt__worker_now(w) - c->born >= (uint32_t)cfg->keepalive_time_ms)
        reason = TT_CLOSE_MAX_AGE;
    if (reason >= 0) tt__conn_closing(c, reason);
    tt_timer_stop(w->loop, &c->timer);
    x->res.keep_alive = reason < 0;
    x->handling = 1;
    x->res.head_only = x->req.method_id == TT_HTTP1_M_HEAD;
    conn_set_state(c, TT_CONN_HANDLING);
}

/* The methods a route can be reached with (OPTIONS * answers with them). */
#define CONN_ALLOW "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"

static void conn_dispatch(tt__conn *c)
{
    struct tt_req *x = c->x;
    conn_handling(c);
    if (x->req.target_form == TT_HTTP1_TARGET_ASTERISK) { /* OPTIONS *: the server itself */
        tt__res_add_header(&x->res, "Allow", CONN_ALLOW);
        conn_reply(c, 200, NULL, 0);
        return;
    }
    if (x->req.method_id == TT_HTTP1_M_CONNECT) { /* no tunnels; the client may not wait */
        x->res.keep_alive = 0;
        conn_reply(c, 501, "501 Not Implemented\n", 20);
        return;
    }
    const tt_route *r = x->route; /* found with the head (conn_head_done) */
    if (r)
        r->fn(x, &x->res, r->data);
    else
        conn_reply(c, 404, "404 Not Found\n", 14);
}

/* A Content-Length body over max_body: 413, skipping the body when it is small enough to keep
 * the connection, else closing. Returns conn_step's 1 or -1. */
static int conn_refuse_body(tt__conn *c)
{
    struct tt_req *x = c->x;
    const tt_server_config *cfg = CFG(c);
    uint64_t have = x->rbuf.len - x->head_len;
    uint64_t left =
        x->req.content_length - (have < x->req.content_length ? have : x->req.content_length);
    if ((x->req.flags & TT_HTTP1_F_EXPECT_CONTINUE) ||
        x->req.content_length > (uint64_t)cfg->discard_limit + (uint64_t)cfg->max_body) {
        conn_error(c, 413, TT_CLOSE_BAD_REQUEST);
        return -1;
    }
    x->raw_len = x->head_len + (size_t)(x->req.content_length - left);
    x->discard = left;
    conn_handling(c);
    conn_reply(c, 413, "413 Content Too Large\n", 22);
    return 1;
}

/* The head is complete (r bytes): check what it asks for and find its route. 0 go on, -1
 * answered and closing, 1 answered (413 with the body skipped) or handed to a streaming
 * route's handler before its body (body.c). */
static int conn_head_done(tt__conn *c, size_t r)
{
    struct tt_req *x = c->x;
    x->head_len = r;
    c->flags &= (uint8_t)~TT__C_HEAD_STARTED;
    tt__x_split_target(x);
    if (x->req.target_len > (size_t)CFG(c)->max_uri) {
        conn_error(c, 414, TT_CLOSE_BAD_REQUEST);
        return -1;
    }
    if (x->req.flags & TT_HTTP1_F_EXPECT_OTHER) {
        conn_error(c, 417, TT_CLOSE_BAD_REQUEST);
        return -1;
    }
    if (x->req.body == TT_HTTP1_BODY_CHUNKED) tt_http1_chunked_init(&x->dec);
    const tt_route *rt = x->route = find_route(c->w->srv, x->path, x->path_len);
    if (rt && (rt->flags & TT_ROUTE_STREAM_BODY) && x->req.method_id != TT_HTTP1_M_CONNECT &&
        x->req.target_form != TT_HTTP1_TARGET_ASTERISK) {
        x->body.on = 1; /* the handler takes the body as it arrives (body.c) */
        x->raw_len = r;
        conn_dispatch(c);
        return 1;
    }
    if (x->req.body == TT_HTTP1_BODY_LENGTH && x->req.content_length > (uint64_t)CFG(c)->max_body)
        return conn_refuse_body(c);
    return 0;
}

/* Decode what is buffered of a chunked body: 1 complete, 0 more input needed, -1 closing. */
static int conn_chunked_body(tt__conn *c)
{
    struct tt_req *x = c->x;
    for (;;) {
        char *p = x->rbuf.data + x->head_len + x->body_len;
        size_t avail = x->rbuf.len - x->head_len - x->body_len;
        size_t out = 0;
        long r = tt_http1_chunked_decode(&x->dec, p, avail, &out);
        if (r < 0) {
            conn_error(c, tt_http1_error_status(x->dec.error), TT_CLOSE_BAD_REQUEST);
            return -1;
        }
        /* Trailer fields (views into the consumed input) are packed right after the data,
         * before what follows moves down over the framing: they stay valid with the body. */
        size_t tl = x->dec.done ? tt__x_trailers_pack(x, p + out) : 0;
        if ((size_t)r > out + tl) {
            memmove(p + out + tl, p + r, avail - (size_t)r);
            x->rbuf.len -= (size_t)r - out - tl;
        }
        x->tlen = tl;
        x->body_len += out;
        if (x->body_len > (size_t)CFG(c)->max_body) {
            conn_error(c, 413, TT_CLOSE_BAD_REQUEST);
            return -1;
        }
        if (x->dec.done) {
            x->raw_len = x->head_len + x->body_len + x->tlen;
            return 1;
        }
        if ((size_t)r == avail || r == 0) {
            int rr = tt__x_reserve(x, c->w, READ_MIN);
            if (rr < 0) {
                conn_error(c, rr == -ENOBUFS ? 503 : 500, conn_budget_reason(rr));
                return -1;
            }
            return 0;
        }
    }
}

/* The body is incomplete: 100 Continue when asked, the body deadline. Returns 0. */
static int conn_need_body(tt__conn *c)
{
    struct tt_req *x = c->x;
    if ((x->req.flags & TT_HTTP1_F_EXPECT_CONTINUE) && !x->sent_continue) {
        x->sent_continue = 1;
        tt_buf_append(&x->wbuf, c->w->pool, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    if (c->state != TT_CONN_READING_BODY) {
        conn_set_state(c, TT_CONN_READING_BODY);
        tt__x_body_deadline(c, c->x->t_start, tt_loop_now(c->w->loop));
    }
    return 0;
}

/* Advance the current message with what is buffered. Returns 1 if a request was dispatched,
 * 0 if more input is needed, -1 if the connection is closing. */
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
            conn_error(c, tt_http1_error_status(x->parser.error), TT_CLOSE_BAD_REQUEST);
            return -1;
        }
        int h = conn_head_done(c, (size_t)r);
        if (h != 0) return h;
    }
    if (x->req.body == TT_HTTP1_BODY_LENGTH) {
        size_t need = x->head_len + (size_t)x->req.content_length;
        if (x->rbuf.len < need) {
            int rr = tt__x_reserve_body(x, w, need - x->rbuf.len);
            if (rr < 0) {
                conn_error(c, rr == -ENOBUFS ? 503 : 500, conn_budget_reason(rr));
                return -1;
            }
            return conn_need_body(c);
        }
        x->body_len = (size_t)x->req.content_length;
        x->raw_len = need;
    } else if (x->req.body == TT_HTTP1_BODY_CHUNKED) {
        int r = conn_chunked_body(c);
        if (r < 0) return r;
        if (r == 0) return conn_need_body(c);
    } else {
        x->raw_len = x->head_len;
    }
    conn_dispatch(c);
    return 1;
}

/* Read once. Returns bytes read, 0 when nothing more is available now (or end of stream:
 * tt_stream_eof), -1 if closed. */
static ssize_t conn_read(tt__conn *c)
{
    struct tt_req *x = c->x;
    if (tt_buf_space(&x->rbuf) < READ_MIN) {
        int rr = tt__x_reserve(x, c->w, READ_MIN);
        if (rr == -ENOBUFS && x->head_len) {
            conn_error(c, 503, TT_CLOSE_PRESSURE);
            return -1;
        }
        if (rr < 0) {
            tt__conn_close(c, TT_CLOSE_PEER_RST);
            return -1;
        }
    }
    ssize_t n = tt_stream_read(&c->s, x->rbuf.data + x->rbuf.len, tt_buf_space(&x->rbuf));
    if (n > 0) {
        tt_buf_commit(&x->rbuf, (size_t)n);
        x->rx += (uint64_t)n;
        if (c->state == TT_CONN_READING_BODY)
            tt__x_body_deadline(c, c->x->t_start, tt_loop_now(c->w->loop));
        return n;
    }
    if (n == 0 || n == -EAGAIN) return 0;
    tt__conn_close(c, tt__io_error_reason((int)n));
    return -1;
}

/* Go idle: no buffers, no exchange, the keep-alive deadline armed. */
static void conn_go_idle(tt__conn *c)
{
    tt__x_put(c);
    c->flags &= (uint8_t)~TT__C_HEAD_STARTED;
    conn_set_state(c, TT_CONN_IDLE);
    tt_timer_start(c->w->loop, &c->timer, (uint64_t)CFG(c)->keepalive_timeout_ms);
}

/* After the batch: flush, then close, go idle or wait for more of the next request. */
static void conn_after_batch(tt__conn *c)
{
    struct tt_req *x = c->x;
    if (!x) { /* idle with nothing new */
        if (tt_stream_eof(&c->s)) tt__conn_close(c, TT_CLOSE_PEER_FIN);
        return;
    }
    if (tt__out_pending(x)) {
        int r = conn_flush_timed(c);
        if (r < 0) return;
        if (r > 0) {
            if (!x->handling) conn_set_state(c, TT_CONN_WRITING);
            return;
        }
    }
    if (x->handling) return;
    if (c->closing != TT__CLOSE_NONE) {
        conn_begin_close(c);
        return;
    }
    if (tt_stream_eof(&c->s)) {
        /* FIN with a partial request (or none): nothing more will come. */
        tt__conn_close(c, TT_CLOSE_PEER_FIN);
        return;
    }
    if (!x->rbuf.len && !x->head_len && !x->discard) {
        if (c->nreq)
            conn_go_idle(c);
        else /* a new connection with nothing yet: no buffers; the header deadline stays */
            tt__x_put(c);
    } else if (c->state == TT_CONN_WRITING || c->state == TT_CONN_HANDLING) {
        conn_set_state(c, x->head_len ? TT_CONN_READING_BODY : TT_CONN_READING_HEAD);
    }
}

/* Drive a TLS handshake (tls.c). 1 when the connection goes on to read its first request (also
 * after cleartext HTTP on the TLS port, answered 400 in cleartext as nginx does), else 0. */
static int conn_handshake(tt__conn *c)
{
    int r = tt__tls_conn_handshake(c);
    if (r == 0) return 1;
    if (r == 2 && (c->x || tt__x_get(c))) {
        x_reset_message(c->x, CFG(c));
        conn_error(c, 400, TT_CLOSE_BAD_REQUEST);
        return 1;
    }
    if (r != 1) tt__conn_close(c, r == 2 ? TT_CLOSE_PRESSURE : TT_CLOSE_TLS_FAILED);
    return 0;
}

/* Read, parse and handle every request available, in order; then conn_after_batch. */
static void conn_process(tt__conn *c)
{
    if (c->flags & TT__C_IN_PROC) return;
    c->flags |= TT__C_IN_PROC;
    if ((c->flags & TT__C_HANDSHAKE) && !conn_handshake(c)) goto out;
    for (;;) {
        struct tt_req *x = c->x;
        if (c->state == TT_CONN_CLOSED) goto out;
        if (c->state == TT_CONN_LINGERING) {
            linger_drain(c);
            goto out;
        }
        if (!x) {
            if (!tt_stream_can_read(&c->s)) break;
            if (!(x = tt__x_get(c))) {
                tt__conn_close(c, TT_CLOSE_PRESSURE);
                goto out;
            }
            x_reset_message(x, CFG(c));
        }
        if (x->handling) break; /* an async handler owns the exchange: keep order */
        if (c->closing != TT__CLOSE_NONE) break; /* the last response is queued: read no more */
        if (x->res.file_left || x->wbuf.len > (size_t)CFG(c)->max_pipeline) {
            int r = conn_flush_timed(c);
            if (r < 0) goto out;
            if (r > 0) break;
        }
        if (x->rbuf.len) {
            int r = conn_step(c);
            if (c->state == TT_CONN_CLOSED) goto out;
            if (r != 0) continue;
        }
        if (!tt_stream_can_read(&c->s)) break;
        ssize_t n = conn_read(c);
        if (n < 0) goto out;
        if (n == 0) break;
    }
    conn_after_batch(c);
out:
    c->flags &= (uint8_t)~TT__C_IN_PROC;
    if (c->state == TT_CONN_CLOSED && !(c->flags & TT__C_ZOMBIE)) conn_free(c);
}

static void conn_on_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    tt__conn *c = io->data;
    (void)loop;
    if (c->flags & TT__C_HANDSHAKE) { /* any edge: the handshake learns of errors itself */
        conn_process(c);
        return;
    }
    if (ev & (TT_ERROR | TT_HUP)) {
        int lingering = c->state == TT_CONN_LINGERING;
        tt__conn_close(c, lingering ? conn_reason(c, TT_CLOSE_CONN_CLOSE)
                                    : tt__io_error_reason(tt_sock_error(tt_stream_fd(&c->s))));
        return;
    }
    if (c->x) tt__body_kick(c->x); /* a body streaming in (any edge: a TLS read may wait on one) */
    if ((ev & TT_WRITE) && c->x && tt__out_pending(c->x)) {
        int r = conn_flush_timed(c);
        if (r < 0) return;
        if (r == 0 && c->state == TT_CONN_WRITING && c->x->handling)
            conn_set_state(c, TT_CONN_HANDLING);
        if (c->x->res.drain_fn && drain_check(c->x)) return; /* the handler ran: c may be gone */
    }
    if (tt__out_blocked(c)) return; /* the peer is not reading: do not read more requests */
    if (c->x && c->x->handling) return;
    if (tt_stream_can_read(&c->s) || c->state == TT_CONN_WRITING) conn_process(c);
}

/* A request (head or body) stalled past its deadline: 408 with Connection: close when a request
 * was started and the peer may still read it (nginx, Apache mod_reqtimeout), else close. */
static void conn_timed_out(tt__conn *c, int started, int reason)
{
    if (started && !tt_stream_eof(&c->s)) {
        c->flags |= TT__C_IN_PROC;
        conn_error(c, 408, reason);
        c->flags &= (uint8_t)~TT__C_IN_PROC;
        conn_process(c);
        return;
    }
    tt__conn_close(c, reason);
}

/* One timer per connection; which deadline it is depends on the state (docs/server.md):
 * blocked output (send) first, then the state's own. */
static void conn_on_timer(tt_loop *loop, tt_timer *t)
{
    tt__conn *c = tt_container_of(t, tt__conn, timer);
    (void)loop;
    if (tt__out_blocked(c)) {
        tt__conn_close(c, TT_CLOSE_SEND_TIMEOUT);
        return;
    }
    switch (c->state) {
    case TT_CONN_IDLE: tt__conn_close(c, TT_CLOSE_IDLE_TIMEOUT); return;
    case TT_CONN_READING_HEAD:
        conn_timed_out(c, c->x && c->x->rbuf.len,
                       c->flags & TT__C_HANDSHAKE ? TT_CLOSE_HANDSHAKE_TIMEOUT
                                                  : TT_CLOSE_HEADER_TIMEOUT);
        return;
    case TT_CONN_READING_BODY: /* a body we skip after a 413 was answered already */
        conn_timed_out(c, c->x && !c->x->discard, TT_CLOSE_BODY_TIMEOUT);
        return;
    case TT_CONN_HANDLING: /* a handler streaming a body in (body.c) */
    case TT_CONN_WRITING:
        if (c->x) tt__body_timer(c->x);
        return;
    case TT_CONN_LINGERING:
        if ((c->flags & TT__C_LINGER_DRAIN) && (int32_t)(c->deadline - tt__worker_now(c->w)) > 0) {
            linger_drain(c);
            return;
        }
        tt__conn_close(c, conn_reason(c, TT_CLOSE_CONN_CLOSE));
        return;
    default: return;
    }
}

/* ---- the end of an exchange, flow control ---- */

void tt__conn_exchange_end(struct tt_req *x)
{
    tt__conn *c = x->conn;
    tt__worker *w = c->w;
    if (c->flags & TT__C_ZOMBIE) {
        c->flags &= (uint8_t)~TT__C_ZOMBIE;
        tt__x_put(c);
        if (!(c->flags & TT__C_IN_PROC)) conn_free(c);
        return;
    }
    if (w->srv->log.fd > 0) tt__access_log(x);
    tt__x_next(x);
    /* The exchange is over: drop the request bytes; the views are now invalid. */
    if (x->raw_len) {
        tt_buf_consume(&x->rbuf, x->raw_len);
        x_reset_message(x, CFG(c));
    }
    /* Async: carry on with what is buffered (requests that arrived meanwhile brought an
     * edge, so the stream knows whether to read). */
    if (!(c->flags & TT__C_IN_PROC)) conn_process(c);
}

/* Run the drain callback if its condition holds (few enough unsent bytes, or the peer gone).
 * Returns 1 if it ran: the exchange and its connection may be gone. */
static int drain_check(struct tt_req *x)
{
    struct tt_res *r = &x->res;
    if (!r->drain_fn) return 0;
    if (x->conn->state != TT_CONN_CLOSED && x->wbuf.len + r->file_left > r->drain_low) return 0;
    tt_res_drain_fn fn = r->drain_fn;
    r->drain_fn = NULL;
    fn(r, r->drain_data);
    return 1;
}

static void drain_on_defer(tt_loop *loop, tt_defer *d)
{
    (void)loop;
    /* Not yet drained: the flush blocked, so the writable edge calls drain_check later. */
    drain_check(tt__x_of(tt_container_of(d, struct tt_res, drain_defer)));
}

void tt__conn_resume(tt__conn *c)
{
    conn_process(c);
}

void tt__conn_drain_queue(struct tt_req *x)
{
    tt_defer_queue(x->conn->w->loop, &x->res.drain_defer, drain_on_defer);
}
