/* body.c — streaming request bodies (routes with TT_ROUTE_STREAM_BODY): the handler runs once
 * the head is read and takes the body with tt_req_body_read. Delivery runs from the loop (a
 * deferred callback the connection's edges, timer and close queue): each piece is handed
 * over zero-copy from the read buffer right after the head (de-chunked in place), then cut out,
 * so the buffer holds the head plus at most one read whatever the body's size. A handler that
 * returns TT_BODY_PAUSE stops the reads (TCP pushes back on the client) until
 * tt_req_body_resume. Above conn.c (it calls tt__conn_*), below response.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/api.h"
#include "server/server_int.h"

#define READ_MIN   4096u
#define BODY_READS 16 /* reads per turn: then the other connections get theirs */

/* Where the undelivered body bytes start: right after the head. */
static inline char *body_at(struct tt_req *x)
{
    return x->rbuf.data + x->head_len;
}

/* Remove n delivered bytes at the body's start (what follows moves down: usually nothing, or
 * the next pipelined request). */
static void body_cut(struct tt_req *x, size_t n)
{
    char *p = body_at(x);
    memmove(p, p + n, x->rbuf.len - x->head_len - n);
    x->rbuf.len -= n;
}

/* Arm the body deadline, unless the send deadline holds the timer (output blocked). */
static void body_deadline(tt__conn *c, struct tt_req *x)
{
    if (!tt__out_blocked(c)) tt__x_body_deadline(c, x->body.t0, x->body.last);
}

/* No more body deadline (paused or ended), unless the timer is the send deadline. */
static void body_no_deadline(tt__conn *c)
{
    if (!tt__out_blocked(c)) tt_timer_stop(c->w->loop, &c->timer);
}

/* Call the handler. 1 paused, 0 go on, -1 the exchange is no longer ours (the handler
 * finished the response inside: x may be gone, do not touch it). */
static int body_call(tt__conn *c, struct tt_req *x, const char *p, size_t n, int err)
{
    int rc = x->body.fn(x, p, n, err, x->body.ud);
    if (c->x != x || !x->handling) return -1;
    return rc == TT_BODY_PAUSE && !err && p;
}

/* The one terminal call: 0 at the end, or -errno. */
static void body_terminal(tt__conn *c, struct tt_req *x, int err)
{
    x->body.done = 1;
    body_no_deadline(c);
    body_call(c, x, NULL, 0, err);
}

/* The body cannot complete: answer status in the handler's place when it has not started a
 * response (its later output is dropped), close after the exchange, then the terminal err. */
static void body_fail(tt__conn *c, struct tt_req *x, int status, int reason, int err)
{
    c->closing = (uint8_t)reason;
    if (c->state != TT_CONN_CLOSED && !x->res.started) {
        char msg[64];
        size_t n = (size_t)snprintf(msg, sizeof msg, "%d %s\n", status, tt_http1_reason(status));
        x->res.keep_alive = 0;
        x->res.nhdrs = x->res.store_used = 0;
        tt__res_add_header(&x->res, "Content-Type", "text/plain");
        if (tt__res_begin(x, status, (long long)n) == 0 && !x->res.head_only) {
            tt_buf_append(&x->wbuf, c->w->pool, msg, n);
            x->res.bytes_out += (long long)n;
        }
        x->body.answered = 1;
    }
    body_terminal(c, x, err);
}

/* Deliver a piece; on pause remember when. As body_call. */
static int body_piece(tt__conn *c, struct tt_req *x, const char *p, size_t n)
{
    int rc = body_call(c, x, p, n, 0);
    if (rc == 1) {
        x->body.paused = 1;
        x->body.paused_at = tt_loop_now(c->w->loop);
        body_no_deadline(c);
    }
    return rc;
}

/* Deliver the buffered part of a Content-Length body. 1 delivered (go on), 0 needs input,
 * -1 stop (paused, ended or the exchange is gone). */
static int body_length(tt__conn *c, struct tt_req *x)
{
    size_t n = x->rbuf.len - x->head_len;
    if (n > x->body.left) n = (size_t)x->body.left;
    if (!n) return 0;
    /* left still counts the piece while the handler has it (an answer inside skips the rest
     * from the piece on: tt__x_body_abandon) */
    int rc = body_piece(c, x, body_at(x), n);
    if (rc < 0) return -1;
    x->body.left -= n;
    if (!x->body.left) x->body.ended = 1;
    body_cut(x, n);
    return rc ? -1 : 1;
}

/* Decode and deliver the buffered part of a chunked body; at its end the trailer fields are
 * packed right after the head (raw_len covers them). As body_length. */
static int body_chunked(tt__conn *c, struct tt_req *x)
{
    char *p = body_at(x);
    size_t avail = x->rbuf.len - x->head_len, out = 0;
    if (!avail) return 0;
    long r = tt_http1_chunked_decode(&x->dec, p, avail, &out);
    if (r < 0) {
        body_fail(c, x, tt_http1_error_status(x->dec.error), TT_CLOSE_BAD_REQUEST, -EPROTO);
        return -1;
    }
    int rc = 0;
    if (out && (rc = body_piece(c, x, p, out)) < 0) return -1;
    /* The data was had: the trailer fields (views into the consumed input) move down to the
     * body's start, then what follows the framing moves after them. */
    size_t tl = x->dec.done ? tt__x_trailers_pack(x, p) : 0;
    memmove(p + tl, p + r, avail - (size_t)r);
    x->rbuf.len -= (size_t)r - tl;
    if (x->dec.done) {
        x->tlen = tl;
        x->raw_len = x->head_len + tl;
        x->body.ended = 1; /* the end call follows (after a resume when paused) */
    }
    if (rc) return -1;
    return r > 0 || x->body.ended ? 1 : 0;
}

/* Read once after the buffered bytes. > 0 bytes, 0 nothing now, -1 the peer is gone (closed,
 * or its FIN: closing) or the buffer cannot grow (answered). */
static ssize_t body_read(tt__conn *c, struct tt_req *x)
{
    if (tt_buf_space(&x->rbuf) < READ_MIN) {
        int rr = tt__x_reserve(x, c->w, READ_MIN);
        if (rr < 0) {
            body_fail(c, x, 503, TT_CLOSE_PRESSURE, rr);
            return -1;
        }
    }
    ssize_t n = tt_stream_read(&c->s, x->rbuf.data + x->rbuf.len, tt_buf_space(&x->rbuf));
    if (n > 0) {
        tt_buf_commit(&x->rbuf, (size_t)n);
        x->rx += (uint64_t)n;
        x->body.last = tt_loop_now(c->w->loop);
        body_deadline(c, x);
        return n;
    }
    if (n == -EAGAIN || (n == 0 && !tt_stream_eof(&c->s))) return 0;
    if (n == 0) { /* FIN before the end: the client may still read an answer */
        tt__conn_closing(c, TT_CLOSE_PEER_FIN);
        body_terminal(c, x, -ECONNRESET);
    } else {
        tt__conn_close(c, tt__io_error_reason((int)n));
        body_terminal(c, x, -ECONNRESET);
    }
    return -1;
}

/* Deliver what is buffered, read more, repeat: until paused, ended, out of input or out of
 * this turn's reads. */
static void body_pump(tt__conn *c, struct tt_req *x)
{
    struct tt__body *b = &x->body;
    for (int reads = 0;;) {
        if (b->done) return;
        if (c->state == TT_CONN_CLOSED && !b->ended) { /* even while paused */
            body_terminal(c, x, -ECONNRESET);
            return;
        }
        if (b->paused) return;
        if (b->expired) {
            b->expired = 0;
            /* the timer may have been another deadline's (a send that blocked meanwhile) */
            if (tt__x_body_deadline(c, b->t0, b->last) > 0) continue;
            body_fail(c, x, 408, TT_CLOSE_BODY_TIMEOUT, -ETIMEDOUT);
            return;
        }
        if (b->ended) {
            body_terminal(c, x, 0);
            return;
        }
        int r = x->req.body == TT_HTTP1_BODY_CHUNKED ? body_chunked(c, x) : body_length(c, x);
        if (r < 0) return;
        if (r > 0) continue;
        if (!tt_stream_can_read(&c->s)) return;
        if (reads++ == BODY_READS) {
            tt__body_kick(x);
            return;
        }
        if (body_read(c, x) < 0) return;
    }
}

/* The deferred delivery: the handler's calls happen with conn.c's re-entrancy guard held, so
 * a response it finishes inside does not start the next request under our feet. */
static void body_run(tt_loop *loop, tt_defer *d)
{
    (void)loop;
    struct tt_req *x = tt_container_of(d, struct tt_req, body.defer);
    tt__conn *c = x->conn;
    if (c->flags & TT__C_IN_PROC) { /* not from the loop's top: later */
        tt__body_kick(x);
        return;
    }
    c->flags |= TT__C_IN_PROC;
    body_pump(c, x);
    c->flags &= (uint8_t)~TT__C_IN_PROC;
    tt__conn_resume(c);
}

TT_API int tt_req_body_read(tt_req *req, tt_req_body_fn fn, void *ud)
{
    struct tt__body *b = &req->body;
    tt__conn *c = req->conn;
    if (!b->on || !fn) return -EINVAL;
    if (b->fn || b->done) return -EALREADY;
    b->fn = fn;
    b->ud = ud;
    b->t0 = b->last = tt_loop_now(c->w->loop);
    if (req->req.body == TT_HTTP1_BODY_LENGTH) b->left = req->req.content_length;
    if (req->req.body == TT_HTTP1_BODY_NONE || (req->req.body == TT_HTTP1_BODY_LENGTH && !b->left))
        b->ended = 1;
    b->defer.cb = body_run;
    tt_defer_queue(c->w->loop, &b->defer, body_run);
    if (c->state != TT_CONN_CLOSED && !b->ended) {
        body_deadline(c, req);
        /* The client waits for this before it sends the body (RFC 9110 §10.1.1); never after
         * a final response began. Sent now unless the loop's processing flushes it anyway. */
        if ((req->req.flags & TT_HTTP1_F_EXPECT_CONTINUE) && !req->sent_continue &&
            !req->res.started) {
            req->sent_continue = 1;
            tt_buf_append(&req->wbuf, c->w->pool, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            if (!(c->flags & TT__C_IN_PROC)) tt__conn_push(c); /* a failure closes c */
        }
    }
    return 0;
}

TT_API int tt_req_body_resume(tt_req *req)
{
    struct tt__body *b = &req->body;
    tt__conn *c = req->conn;
    if (!b->on || !b->fn) return -EINVAL;
    if (!b->paused || b->done) return 0;
    b->paused = 0;
    b->last = tt_loop_now(c->w->loop);
    b->t0 += b->last - b->paused_at; /* the pause does not count */
    if (!b->ended && c->state != TT_CONN_CLOSED) body_deadline(c, req);
    tt_defer_queue(c->w->loop, &b->defer, body_run);
    return 0;
}

TT_API long long tt_req_body_length(const tt_req *req)
{
    if (req->req.body == TT_HTTP1_BODY_CHUNKED) return -1;
    return req->req.body == TT_HTTP1_BODY_LENGTH ? (long long)req->req.content_length : 0;
}

void tt__body_end(struct tt_req *x)
{
    struct tt__body *b = &x->body;
    if (!b->on) return;
    if (b->defer.queued) tt_defer_cancel(x->conn->w->loop, &b->defer);
    if (x->conn->state != TT_CONN_CLOSED) tt__x_body_abandon(x, 1);
    b->done = 1;
}
