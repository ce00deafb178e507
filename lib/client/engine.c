/* engine.c — the client's engine: leasing (idle connection, pipeline, new connection or the
 * FIFO queue), attaching an exchange to a connection, readiness events, acting on the HTTP/1
 * exchange's outcomes, completion, retries and the exchange timers. It drives pool.c (get and
 * free connections), h1.c (write, parse) and resolve.c, and gives them its callbacks through
 * tt_client; none of them calls back into this file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

static void x_attempt(tt_exchange *x);
static void c_dispatch(tt_client *c);
static void conn_read(tt__conn *k);

/* ---- exchange timers ---- */

/* now + ms, or never (UINT64_MAX) when the limit is off. */
static uint64_t after(uint64_t now, int ms)
{
    return ms > 0 ? now + (uint64_t)ms : UINT64_MAX;
}

static uint64_t total_deadline(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    return after(p->started, p->client->o.total_timeout_ms);
}

/* Arm x's timer for the earlier of phase_deadline and the total deadline. */
static void x_arm(tt_exchange *x, uint64_t phase_deadline)
{
    tt__xpriv *p = tt__xp(x);
    uint64_t d = total_deadline(x);
    if (phase_deadline < d) d = phase_deadline;
    p->deadline = d;
    if (d == UINT64_MAX)
        tt_timer_stop(p->client->loop, &p->timer);
    else
        tt_timer_start_at(p->client->loop, &p->timer, d);
}

/* Arm the response-head timer from now. */
static void x_arm_head(tt_exchange *x)
{
    tt_client *c = tt__xp(x)->client;
    x_arm(x, after(tt_loop_now(c->loop), c->o.head_timeout_ms));
}

/* Body bytes arrived (or the head completed): arm the inactivity limit, and the end of the
 * low-speed window when a minimum speed is set. */
static void x_arm_body(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    p->rd_deadline = after(tt_loop_now(c->loop), c->o.head_timeout_ms);
    uint64_t d = p->rd_deadline;
    if (c->o.low_speed_limit > 0 && p->spd_at + (uint64_t)c->o.low_speed_time_ms < d)
        d = p->spd_at + (uint64_t)c->o.low_speed_time_ms;
    x_arm(x, d);
}

/* At the end of a low-speed window: 1 when the body came slower than low_speed_limit bytes/s
 * over it (curl's --speed-limit/--speed-time), else 0 and a new window starts. */
static int x_too_slow(tt_exchange *x, uint64_t now)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    uint64_t el = now - p->spd_at;
    if (el < (uint64_t)c->o.low_speed_time_ms) return 0;
    int slow = p->spd_bytes * 1000 < (uint64_t)c->o.low_speed_limit * el;
    p->spd_at = now;
    p->spd_bytes = 0;
    return slow;
}

/* ---- completion ---- */

/* Finish x: detach everything, record the outcome, call on_done. */
static void x_complete(tt_exchange *x, int err, const char *what, int sent)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    if (p->phase == TT_X_QUEUED) tt__queue_remove(c, x);
    tt_timer_stop(c->loop, &p->timer);
    tt_timer_stop(c->loop, &p->leak);
    tt_defer_cancel(c->loop, &p->fdefer);
    tt__x_set_phase(x, TT_X_DONE);
    p->conn = NULL;
    p->done = 1;
    x->error = err;
    x->error_what = what;
    x->sent_state = err ? sent : TT_NOT_SENT;
    if (x->resp_body) x->resp_body[x->resp_body_len] = 0;
    c->st.requests++;
    if (err) {
        c->st.errors++;
        TT__VLOG(c, "* Request failed: %s: %s (%s)", what ? what : "error", strerror(-err),
                 sent ? "maybe processed" : "not sent");
    }
    c->inflight--;
    if (x->on_done) x->on_done(x);
}

static void x_done_defer(tt_loop *loop, tt_defer *d)
{
    (void)loop;
    tt_exchange *x = TT__X_OF(d, defer);
    if (x->on_done) x->on_done(x);
}

/* Like x_complete, but on_done runs from a deferred callback: used while a pipelined connection
 * goes on reading, so no caller code runs under its feet. */
static void x_complete_later(tt_exchange *x, int err, const char *what, int sent)
{
    tt_exchange_cb cb = x->on_done;
    x->on_done = NULL;
    x_complete(x, err, what, sent);
    x->on_done = cb;
    if (cb) tt_defer_queue(tt__xp(x)->client->loop, &tt__xp(x)->defer, x_done_defer);
}

/* Retry x after its connection failed (already closed), or fail it. */
static void x_retry_or_fail(tt_exchange *x, int err, const char *what, int was_reused)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    p->conn = NULL;
    tt__retry_in in = {
        .err = err,
        .sent = p->wrote > 0 ? TT_MAYBE_PROCESSED : TT_NOT_SENT,
        .time_left = tt_loop_now(c->loop) < total_deadline(x),
        .attempts_ns = p->attempts_ns,
        .max_ns = c->o.max_retries_not_sent,
        .resp_bytes = p->resp_bytes,
        .attempt_maybe = p->attempt_maybe,
        .rewindable = x->body || !x->body_read || x->body_rewind || !p->body_pulled,
        .idempotent = x->idempotent ||
                      tt__client_idempotent(x->method ? x->method : "GET", x->headers, x->nheaders),
    };
    int why = tt__client_retry(&in);
    /* A refused connect is retried on the route's next address only, never on the same one
     * again at once (curl's happy-eyeballs order without the racing). */
    if (why == TT_RETRY_NOT_SENT && what && !strcmp(what, "connect") &&
        (c->o.unix_socket || p->attempts_ns + 1 >= p->route->naddr))
        why = -1;
    if (p->flags & TT__XF_BODY_ERR) why = -1; /* the request body itself failed */
    if (why == TT_RETRY_MAYBE_PROCESSED && x->body_read && !x->body && p->body_pulled) {
        if (x->body_rewind(x->body_data) < 0)
            why = -1;
        else
            tt__h1_stream_reset(x);
    }
    if (why < 0) {
        x_complete(x, err ? err : -ECONNRESET, what, in.sent);
        c_dispatch(c);
        return;
    }
    if (why == TT_RETRY_NOT_SENT) {
        p->attempts_ns++;
        TT__VLOG(c, "* Retrying (not sent: %s on %s connection)", strerror(err ? -err : ECONNRESET),
                 was_reused ? "a reused" : "a new");
    } else {
        p->attempt_maybe = 1;
        p->fresh_only = 1;
        TT__VLOG(c, "* Retrying idempotent request on a fresh connection (maybe processed: %s)",
                 strerror(err ? -err : ECONNRESET));
    }
    x->retries++;
    x->retry_reason = why;
    c->st.retries++;
    c->st.retries_by[why]++;
    x_attempt(x);
}

/* Detach every exchange from k (the reading one first, then the pipelined ones), close k. */
static int conn_detach_all(tt__conn *k, tt_exchange **list, int reason)
{
    int n = 0;
    if (k->x) list[n++] = k->x;
    tt__list *node;
    while ((node = tt__list_pop_front(&k->pq)))
        if (n < TT__C_MAX_PIPELINE + 1) list[n++] = TT__X_OF(node, qlink);
    for (int i = 0; i < n; i++) {
        list[i]->conn_id = k->id;
        list[i]->close_reason = TT_EVICT_ERROR;
    }
    k->x = k->w = NULL;
    k->pn = 0;
    tt__pool_close(k, reason);
    return n;
}

/* The connection failed under its exchange(s): close it, then retry or fail each. culprit (may
 * be NULL) is an exchange that timed out: it fails with -ETIMEDOUT, the others get err. */
static void conn_fail_all(tt__conn *k, int err, const char *what, tt_exchange *culprit)
{
    tt_exchange *list[TT__C_MAX_PIPELINE + 1];
    int was_reused = k->requests > 1;
    int n = conn_detach_all(k, list,
                            err == -EPIPE || err == -ECONNRESET || err == 0 ? TT_EVICT_PEER_CLOSED
                                                                            : TT_EVICT_ERROR);
    for (int i = 0; i < n; i++) {
        tt_exchange *x = list[i];
        if (x == culprit) {
            tt__xp(x)->conn = NULL;
            x_complete(x, -ETIMEDOUT, what, tt__xp(x)->wrote ? TT_MAYBE_PROCESSED : TT_NOT_SENT);
            c_dispatch(tt__xp(x)->client);
        } else {
            x_retry_or_fail(x, err, what, was_reused);
        }
    }
}

/* ---- writing ---- */

/* Write what k can write now and act on the outcome. 1 when k is gone. */
static int conn_write(tt__conn *k)
{
    tt_exchange *w = k->w;
    size_t wrote = w ? tt__xp(w)->wrote : 0;
    int r = tt__h1_write(k);
    /* A streamed body may take long to produce: the head deadline runs from its last byte. */
    if (r != TT__H1_FAIL && w && w->body_read && !w->body && w == k->x && !w->status &&
        tt__xp(w)->wrote != wrote && tt__xp(w)->phase != TT_X_WAIT_CONTINUE)
        x_arm_head(w);
    if (r == TT__H1_WAIT_CONTINUE) {
        tt_client *c = k->c;
        uint64_t now = tt_loop_now(c->loop);
        x_arm(k->w, c->o.continue_timeout_ms > 0 ? now + (uint64_t)c->o.continue_timeout_ms
                                                 : after(now, c->o.head_timeout_ms));
    } else if (r == TT__H1_FAIL) {
        conn_fail_all(k, k->err, k->what, NULL);
        return 1;
    }
    return 0;
}

static void x_timer(tt_loop *loop, tt_timer *t)
{
    tt_exchange *x = TT__X_OF(t, timer);
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    uint64_t now = tt_loop_now(loop);
    tt__conn *k = p->conn;
    if (p->phase == TT_X_WAIT_CONTINUE && c->o.continue_timeout_ms > 0 && now < total_deadline(x)) {
        /* No 100 Continue in time: send the body anyway. */
        tt__x_set_phase(x, TT_X_SENDING);
        x_arm_head(x);
        if (!conn_write(k) && k->rb.len) conn_read(k);
        return;
    }
    int body = p->phase == TT_X_READING && x->status && c->o.low_speed_limit > 0;
    if (body && now < p->rd_deadline && now < total_deadline(x)) {
        if (x_too_slow(x, now)) {
            conn_fail_all(k, -ECONNABORTED, "too slow", x);
            return;
        }
        x_arm(x, p->rd_deadline); /* the next window ends before it, or the read re-arms */
        if (p->deadline > p->spd_at + (uint64_t)c->o.low_speed_time_ms)
            x_arm(x, p->spd_at + (uint64_t)c->o.low_speed_time_ms);
        return;
    }
    const char *what = p->phase == TT_X_QUEUED       ? "lease timeout"
                       : p->phase == TT_X_CONNECTING ? "connect timeout"
                       : now >= total_deadline(x)    ? "total timeout"
                                                     : "response timeout";
    if (k && k->state == TT_CLIENT_CONN_HANDSHAKING) {
        what = "tls handshake: timeout";
        tt_tls_ctx_count_failure(c->tls, TT_TLS_FAIL_TIMEOUT);
    }
    if (k) {
        conn_fail_all(k, -ECONNABORTED, what, x);
        return;
    }
    x_complete(x, -ETIMEDOUT, what, TT_NOT_SENT);
    c_dispatch(c);
}

static void x_leak(tt_loop *loop, tt_timer *t)
{
    tt_exchange *x = TT__X_OF(t, leak);
    tt__xpriv *p = tt__xp(x);
    tt__conn *k = p->conn;
    tt__client_log(p->client,
                   "tether client: warning: connection #%u leased for %llu ms (taken at %s:%d, %s "
                   "%s)",
                   k ? k->id : 0, (unsigned long long)(tt_loop_now(loop) - p->queued_at),
                   p->file ? p->file : "?", p->line, x->method ? x->method : "GET", x->url);
}

/* Count the lease wait of x and start its leak timer. */
static void x_leased(tt_exchange *x, uint64_t now)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    uint64_t waited = now - p->queued_at;
    x->lease_wait_ms = waited;
    c->st.lease_wait[tt__client_wait_bucket(waited)]++;
    if (c->o.leak_warn_ms > 0 && !tt_timer_armed(&p->leak))
        tt_timer_start(c->loop, &p->leak, (uint64_t)c->o.leak_warn_ms);
}

/* Attach x to k: wait for the connect, or send at once. */
static void x_attach(tt_exchange *x, tt__conn *k, int reused)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    tt__route *rt = k->rt;
    uint64_t now = tt_loop_now(c->loop);
    k->x = x;
    k->w = x;
    p->conn = k;
    x->reused = reused;
    x->conn_id = k->id;
    if (p->phase != TT_X_CONNECTING)
        x_leased(x, now);
    else if (c->o.leak_warn_ms > 0 && !tt_timer_armed(&p->leak))
        tt_timer_start(c->loop, &p->leak, (uint64_t)c->o.leak_warn_ms);
    if (k->state == TT_CLIENT_CONN_CONNECTING) {
        tt__x_set_phase(x, TT_X_CONNECTING);
        x_arm(x, after(now, c->o.connect_timeout_ms));
        return;
    }
    if (reused) {
        c->st.connections_reused++;
        rt->reused++;
        TT__VLOG(c, "* Re-using existing connection #%u with %s:%d (idle %llu ms)", k->id, rt->host,
                 rt->port, (unsigned long long)(now - k->last_used));
    }
    tt__h1_begin(x, k);
    x->reused = reused;
    x->conn_id = k->id;
    tt__h1_reset(k);
    x_arm_head(x);
    if (c->o.verbose) tt__client_log_lines(c, "> ", p->wbuf, p->wlen);
    conn_write(k);
}

/* Append x to k's pipeline; it is written as soon as the requests before it are. */
static void x_attach_pipe(tt_exchange *x, tt__conn *k)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    uint64_t now = tt_loop_now(c->loop);
    tt__list_push_back(&k->pq, &p->qlink);
    k->pn++;
    p->conn = k;
    x_leased(x, now);
    c->st.connections_reused++;
    k->rt->reused++;
    tt__h1_begin(x, k);
    x->reused = 1;
    x->conn_id = k->id;
    x_arm_head(x);
    TT__VLOG(c, "* Pipelining on connection #%u (%d request%s ahead)", k->id, k->pn,
             k->pn == 1 ? "" : "s");
    if (!k->w) {
        k->w = x;
        conn_write(k);
    }
}

/* ---- responses ---- */

/* The pipelined requests behind x failed with k closing after x: complete x, retry them. */
static void pipe_broken(tt__conn *k, tt_exchange *x, int reason, int err, const char *what)
{
    tt_exchange *list[TT__C_MAX_PIPELINE + 1];
    tt_client *c = k->c;
    k->x = NULL;
    if (k->w == x) k->w = NULL;
    int n = conn_detach_all(k, list, reason);
    x->conn_kept = 0;
    x->close_reason = reason;
    x_complete(x, err, what, err ? TT_MAYBE_PROCESSED : TT_NOT_SENT);
    for (int i = 0; i < n; i++)
        x_retry_or_fail(list[i], -ECONNRESET, "connection closed behind a pipelined request", 1);
    c_dispatch(c);
}

/* Response complete: decide reuse (at the pool's free), complete x. Returns 1 when k is idle,
 * closed or another exchange's, 2 when k goes on reading the next pipelined response. */
static int x_response_done(tt__conn *k, int close_delimited)
{
    if (close_delimited && tt_stream_tls_truncated(&k->s)) {
        /* Over TLS a body delimited by the close ends with the peer's close_notify: a bare FIN
         * may be an attacker's truncation (RFC 8446 §6.1). Not retried: bytes came. */
        tt__xp(k->x)->resp_bytes = 1;
        conn_fail_all(k, -EPIPE, "truncated: no close_notify", NULL);
        return 1;
    }
    tt_exchange *x = k->x;
    tt__xpriv *p = tt__xp(x);
    tt_client *c = k->c;
    tt__reuse_in in = {0};
    in.req_close = p->req_close;
    in.resp_close = (k->resp.flags & TT_HTTP1_F_CONN_CLOSE) != 0;
    in.resp_minor = k->resp.minor_version;
    in.resp_keepalive = (k->resp.flags & TT_HTTP1_F_CONN_KEEPALIVE) != 0;
    /* The parser's verdict, not a recomputation from raw flags (TE with CL: framed by TE, then
     * closed, RFC 9112 §6.1); a 204 that carries framing fields leaves the peer's framing in
     * doubt (RFC 9110 §15.3.5): do not reuse either. */
    in.resp_no_reuse =
        !(k->resp.flags & TT_HTTP1_F_KEEP_ALIVE) ||
        (k->resp.status == 204 && (k->resp.flags & (TT_HTTP1_F_HAS_CL | TT_HTTP1_F_HAS_TE)));
    in.close_delimited = close_delimited;
    in.body_complete = 1;
    tt__list *more = tt__list_first(&k->pq);
    in.leftover = !more && k->rb.len != 0;
    in.peer_fin = !more && tt_stream_peer_fin(&k->s);
    in.ka_max = k->ka_max;
    in.retired = k->retired;
    in.continue_unsent = !(p->flags & TT__XF_BODY_SENT);
    if (x->http10 && !in.resp_keepalive) in.req_close = 1;
    int err = (p->flags & TT__XF_DISCARD) ? -ECANCELED : 0;
    const char *what = err ? "body aborted (drained)" : NULL;
    int sent = err ? TT_MAYBE_PROCESSED : TT_NOT_SENT;
    int reason = 0;
    x->conn_id = k->id;
    k->last_used = tt_loop_now(c->loop);
    if (!err) tt__tls_after_response(k); /* the route's session cache, for resumption */
    if (more && tt__client_reuse(&in, &reason)) {
        /* The server closes after this response: the pipelined requests behind it failed. */
        pipe_broken(k, x, reason, err, what);
        return 1;
    }
    if (more) {
        /* Pipelining: the next exchange's response follows on the same connection. */
        tt__list_remove(more);
        k->pn--;
        k->x = TT__X_OF(more, qlink);
        k->proven = 1;
        tt__h1_reset(k);
        x->conn_kept = 1;
        x_complete_later(x, err, what, sent);
        return 2;
    }
    k->x = NULL;
    k->w = NULL;
    x->conn_kept = tt__pool_free(k, &in, &reason);
    if (!x->conn_kept) x->close_reason = reason;
    x_complete(x, err, what, sent);
    c_dispatch(c);
    return 1;
}

/* on_body paused delivery: no head/inactivity or low-speed limit until it resumes (the total
 * deadline still runs). */
static void x_paused(tt_exchange *x)
{
    tt__xp(x)->rd_deadline = UINT64_MAX;
    x_arm(x, UINT64_MAX);
}

/* Act on the HTTP/1 outcomes for the buffered bytes. 0: more input needed; 1: the response
 * completed or failed (k may be gone); 2: the next pipelined response is k's now. */
static int conn_process(tt__conn *k, int eof)
{
    for (;;) {
        switch (tt__h1_process(k, eof)) {
        case TT__H1_MORE: return 0;
        case TT__H1_DONE: return x_response_done(k, 0);
        case TT__H1_DONE_CLOSE: return x_response_done(k, 1);
        case TT__H1_PAUSED: x_paused(k->x); return 0;
        case TT__H1_CONTINUE:
            tt__x_set_phase(k->x, TT_X_SENDING);
            x_arm_head(k->x);
            if (conn_write(k)) return 1;
            continue;
        default: conn_fail_all(k, k->err, k->what, NULL); return 1;
        }
    }
}

static void conn_read(tt__conn *k)
{
    tt_client *c = k->c;
    for (;;) {
        if (k->state == TT_CLIENT_CONN_IDLE) {
            if (tt__pool_idle_check(k)) c_dispatch(c);
            return;
        }
        if (k->x && (tt__xp(k->x)->flags & TT__XF_PAUSED))
            return; /* backpressure: leave it in the socket */
        ssize_t n = tt_stream_read_buf(&k->s, &k->rb, c->bp, TT__C_READ_CHUNK);
        int eof = 0;
        if (n == -EAGAIN) {
            if (!tt_stream_peer_fin(&k->s)) return;
            eof = 1; /* FIN reported with nothing left to read */
        } else if (n < 0) {
            conn_fail_all(k, (int)n, "recv", NULL);
            return;
        } else if (n == 0) {
            eof = 1;
        } else {
            tt__xp(k->x)->resp_bytes = 1;
        }
        int r;
        while ((r = conn_process(k, eof)) == 2) /* pipelined: the next response may be here */
            tt__xp(k->x)->resp_bytes = k->rb.len != 0;
        if (r || eof || (tt__xp(k->x)->flags & TT__XF_PAUSED)) return;
        /* The head timeout is a deadline for the whole head (armed once, when the request went
         * out); only reads once the head is in re-arm it, as the body's inactivity limit. */
        if (n > 0 && tt__xp(k->x)->phase == TT_X_READING && k->x->status) x_arm_body(k->x);
        if (!tt_stream_can_read(&k->s)) return; /* drained: the next edge brings more */
    }
}

/* k's TLS handshake failed (k->err, k->what): its exchange fails without a retry, since the
 * same server would refuse the same handshake again (and a certificate must never be). */
static void conn_tls_fail(tt__conn *k)
{
    tt_client *c = k->c;
    tt_exchange *list[TT__C_MAX_PIPELINE + 1];
    int err = k->err;
    const char *what = k->what;
    int n = conn_detach_all(k, list, TT_EVICT_ERROR);
    for (int i = 0; i < n; i++) {
        tt__xp(list[i])->conn = NULL;
        x_complete(list[i], err, what, TT_NOT_SENT);
    }
    c_dispatch(c);
}

/* Step k's TLS handshake; once done, k is busy and its exchange is sent. */
static void conn_handshake(tt__conn *k)
{
    int r = tt__tls_step(k);
    if (r == -EAGAIN) return;
    if (r < 0) {
        conn_tls_fail(k);
        return;
    }
    tt__conn_set_state(k, TT_CLIENT_CONN_BUSY);
    x_attach(k->x, k, 0);
}

/* The connect of k finished (or failed). */
static void conn_connected(tt__conn *k)
{
    tt_client *c = k->c;
    int r = tt_connect_result(tt_stream_fd(&k->s));
    if (r == -EINPROGRESS || r == -EALREADY) return;
    if (r < 0) {
        if (k->x)
            conn_fail_all(k, r, "connect", NULL);
        else
            tt__pool_close(k, TT_EVICT_ERROR);
        return;
    }
    k->rt->opened++;
    c->st.connections_opened++;
    if (c->o.verbose) {
        char a[64];
        tt_addr_format(&k->addr, a, sizeof a);
        tt__client_log(c, "* Connected to %s (%s) as connection #%u", k->rt->host, a, k->id);
    }
    if (k->rt->tls) {
        if (tt__tls_start(k) < 0) {
            conn_tls_fail(k);
            return;
        }
        tt__conn_set_state(k, TT_CLIENT_CONN_HANDSHAKING);
        /* The handshake has its own deadline, counted from the TCP connect. */
        x_arm(k->x, after(tt_loop_now(c->loop), c->o.tls_handshake_timeout_ms));
        conn_handshake(k);
        return;
    }
    tt__conn_set_state(k, TT_CLIENT_CONN_BUSY);
    x_attach(k->x, k, 0);
}

static void conn_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)loop;
    tt__conn *k = io->data;
    switch (k->state) {
    case TT_CLIENT_CONN_CONNECTING:
        if (ev & (TT_WRITE | TT_ERROR | TT_HUP)) conn_connected(k);
        return;
    case TT_CLIENT_CONN_HANDSHAKING: conn_handshake(k); return;
    case TT_CLIENT_CONN_IDLE: {
        tt_client *c = k->c; /* k is freed when evicted */
        if (tt_stream_can_read(&k->s) && tt__pool_idle_check(k)) c_dispatch(c);
        return;
    }
    case TT_CLIENT_CONN_BUSY:
        if (!k->x) return;
        /* TLS: a write may wait for a read edge and a read for a write edge (stream.h). */
        if ((k->s.io.ready & TT_STREAM_WR_WANTS_RD) && (ev & TT_READ)) ev |= TT_WRITE;
        if ((k->s.io.ready & TT_STREAM_RD_WANTS_WR) && (ev & TT_WRITE)) ev |= TT_READ;
        if ((ev & TT_WRITE) && k->w && tt__xp(k->w)->phase == TT_X_SENDING && conn_write(k)) return;
        if (ev & (TT_READ | TT_RDHUP | TT_HUP | TT_ERROR)) {
            if ((ev & TT_ERROR) && !(ev & TT_READ)) {
                int e = tt_connect_result(tt_stream_fd(&k->s));
                if (e < 0 && !k->rb.len) {
                    conn_fail_all(k, e, "socket error", NULL);
                    return;
                }
            }
            conn_read(k);
        }
        return;
    }
}

static void conn_expire(tt_loop *loop, tt_timer *t)
{
    (void)loop;
    tt__conn *k = tt_container_of(t, tt__conn, timer);
    tt_client *c = k->c;
    tt__pool_close(k, k->expire_reason);
    c_dispatch(c);
}

/* A lookup finished: close idle connections whose address left the answer, go on leasing. */
static void on_resolved(tt_client *c, tt__route *rt)
{
    (void)rt;
    tt__list *n, *tmp;
    tt__list_each(&c->all, n, tmp)
    {
        tt__conn *k = tt__list_entry(n, tt__conn, all_link);
        if (k->retired && k->state == TT_CLIENT_CONN_IDLE) tt__pool_close(k, TT_EVICT_DNS);
    }
    c_dispatch(c);
}

/* ---- leasing ---- */

/* The address to connect x to into *ua: the Unix socket, or the route's next address (a
 * not-sent retry after a refused connect takes the next one). 1 ready, 0 resolving, <0 failed. */
static int x_address(tt_exchange *x, tt_addr *ua)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    tt__route *rt = p->route;
    uint64_t now = tt_loop_now(c->loop);
    if (c->o.unix_socket) {
        int r = tt_addr_unix(ua, c->o.unix_socket);
        return r < 0 ? r : 1;
    }
    if (rt->naddr == 0 && rt->resolve_err && now < rt->resolved_at + 1000)
        return rt->resolve_err; /* a failed lookup is not repeated for every queued request */
    if (rt->naddr == 0 ||
        (c->o.dns_ttl_ms > 0 && now >= rt->resolved_at + (uint64_t)c->o.dns_ttl_ms)) {
        tt__resolve(c, rt);
        if (rt->resolving) return 0;
        if (rt->naddr == 0) return rt->resolve_err ? rt->resolve_err : -ENOENT;
    }
    *ua = rt->addrs[p->attempts_ns % rt->naddr];
    return 1;
}

/* Open a new connection for x (resolving first if needed). 1 started, 0 wait, <0 failed. */
static int x_connect(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    tt__route *rt = p->route;
    tt_addr ua;
    int err = x_address(x, &ua);
    if (err <= 0) return err;
    const tt_addr *a = &ua;
    tt__conn *k = tt__pool_connect(c, rt, a, &err);
    if (!k) return err;
    k->x = x;
    p->conn = k;
    tt__x_set_phase(x, TT_X_CONNECTING);
    p->fresh_only = 0;
    TT__VLOG(c, "* Connecting to %s:%d (connection #%u)", rt->host, rt->port, k->id);
    x_attach(x, k, 0);
    return 1;
}

/* Can x proceed now? 1: started (attached or connecting), 0: must wait, <0: failed. */
static int x_try_lease(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    tt__route *rt = p->route;
    if (rt->resolving) return 0;
    if (!p->fresh_only) {
        tt__conn *k = tt__pool_get(c, rt);
        if (k) {
            x_attach(x, k, 1);
            return 1;
        }
    }
    if (rt->nbusy + rt->nconnecting + rt->nidle >= c->o.max_per_route) {
        tt__conn *pk = tt__pool_pipe_conn(c, x);
        if (pk) {
            x_attach_pipe(x, pk);
            return 1;
        }
        tt__list *lru = tt__list_last(&rt->idle);
        if (!p->fresh_only || !lru) return 0;
        tt__pool_close(tt__list_entry(lru, tt__conn, idle_link), TT_EVICT_POOL_FULL);
    }
    /* Make room: close the least recently used idle connection of any route. */
    if (c->total >= c->o.max_total && !tt__pool_make_room(c)) return 0;
    return x_connect(x);
}

/* What failed when a lease attempt returned an error. */
static const char *x_fail_what(tt_exchange *x)
{
    return tt__xp(x)->route->naddr == 0 && !tt__xp(x)->client->o.unix_socket ? "resolve"
                                                                             : "connect";
}

/* Wait in the lease queue. */
static void x_enqueue(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    tt__x_set_phase(x, TT_X_QUEUED);
    tt__queue_push(p->client, x);
    x_arm(x, after(p->queued_at, p->client->o.lease_timeout_ms));
}

static void x_attempt(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    tt_client *c = p->client;
    p->wrote = 0;
    p->resp_bytes = 0;
    p->queued_at = tt_loop_now(c->loop);
    if (tt__queue_first(c)) {
        /* Fair FIFO: wait behind earlier exchanges (dispatch lets it through if it can go). */
        x_enqueue(x);
        c_dispatch(c);
        return;
    }
    int r = x_try_lease(x);
    if (r == 1) return;
    if (r < 0) {
        x_complete(x, r, x_fail_what(x), TT_NOT_SENT);
        return;
    }
    x_enqueue(x);
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
        for (tt_exchange *x = tt__queue_first(c), *nx; x; x = nx) {
            nx = tt__queue_next(c, x);
            if (!tt__pool_can_go(c, x)) continue;
            tt__queue_remove(c, x);
            int r = x_try_lease(x);
            if (r == 0) {
                tt__queue_insert_before(c, x, nx);
                continue;
            }
            if (r < 0) x_complete(x, r, x_fail_what(x), TT_NOT_SENT);
            c->redispatch = 1; /* callbacks may have changed the queue: rescan */
            break;
        }
    } while (c->redispatch);
    c->dispatching = 0;
}

/* ---- flow control: resume a paused response, pull a waiting request body ---- */

/* Resume reading k for its paused exchange: first the bytes already buffered, then the
 * socket. */
static void conn_resume(tt__conn *k)
{
    int r;
    while ((r = conn_process(k, 0)) == 2)
        tt__xp(k->x)->resp_bytes = k->rb.len != 0;
    if (r == 0) conn_read(k);
}

static void x_flow(tt_loop *loop, tt_defer *d)
{
    tt_exchange *x = TT__X_OF(d, fdefer);
    tt__xpriv *p = tt__xp(x);
    tt__conn *k = p->conn;
    if (p->done || !k) return;
    if (p->flags & TT__XF_BODY_READY) {
        p->flags &= ~TT__XF_BODY_READY;
        if (k->w == x && p->phase == TT_X_SENDING && conn_write(k)) return;
    }
    if ((p->flags & TT__XF_RESUME) && k->x == x) {
        p->flags &= ~(TT__XF_RESUME | TT__XF_PAUSED);
        if (!x->status) return;
        p->spd_at = tt_loop_now(loop);
        p->spd_bytes = 0;
        x_arm_body(x);
        conn_resume(k);
    }
}

void tt__engine_flow(tt_exchange *x)
{
    tt_defer_queue(tt__xp(x)->client->loop, &tt__xp(x)->fdefer, x_flow);
}

/* ---- entry points for api.c ---- */

void tt__engine_init(tt_client *c)
{
    c->conn_cb = conn_io;
    c->expire_cb = conn_expire;
    c->resolved = on_resolved;
}

void tt__engine_prepare(tt_client *c, tt_exchange *x, tt__route *rt, const char *file, int line)
{
    tt__xpriv *p = tt__xp(x);
    p->client = c;
    p->route = rt;
    p->conn = NULL;
    tt__list_init(&p->qlink);
    p->file = file;
    p->line = line;
    p->id = ++c->next_xid;
    p->attempts_ns = 0;
    p->attempt_maybe = 0;
    p->fresh_only = 0;
    p->body_pulled = 0;
    p->done = 0;
    p->phase = TT_X_NONE; /* a new run (with a new id) starts here: not a transition */
    p->started = tt_loop_update_time(c->loop);
    tt__h1_stream_reset(x);
    const char *m = x->method ? x->method : "GET";
    p->method_id = (int)tt_http1_method_id(m, strlen(m));
    tt_timer_init(&p->timer, x_timer);
    tt_timer_init(&p->leak, x_leak);
    c->inflight++;
}

static void x_start_defer(tt_loop *loop, tt_defer *d)
{
    (void)loop;
    x_attempt(TT__X_OF(d, defer));
}

void tt__engine_start(tt_exchange *x, int deferred)
{
    if (deferred)
        tt_defer_queue(tt__xp(x)->client->loop, &tt__xp(x)->defer, x_start_defer);
    else
        x_attempt(x);
}

void tt__engine_shutdown(tt_client *c)
{
    tt_exchange *x;
    while ((x = tt__queue_first(c)))
        x_complete(x, -ECANCELED, "client closed", TT_NOT_SENT);
    tt__list *n;
    while ((n = tt__list_first(&c->all))) {
        tt_exchange *list[TT__C_MAX_PIPELINE + 1];
        int cnt = conn_detach_all(tt__list_entry(n, tt__conn, all_link), list, TT_EVICT_SHUTDOWN);
        for (int i = 0; i < cnt; i++)
            x_complete(list[i], -ECANCELED, "client closed",
                       tt__xp(list[i])->wrote ? TT_MAYBE_PROCESSED : TT_NOT_SENT);
    }
}
