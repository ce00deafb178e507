/* loadgen.c — the load generator of `tether bench`: one loop per thread (one thread per core by
 * default), each driving its share of the connections; every buffer is allocated before the
 * run, nothing per request. Closed loop by default, open loop at a constant --rate with
 * coordinated-omission correction (latency from the intended send time).
 *
 * A connection is a tt_stream (all socket I/O goes through the transport). It sends a batch
 * (1 request, or --pipeline N in one write), parses the responses as they arrive with the
 * library's parser, and when the batch is complete sends the next one on the same connection
 * (or, with --no-keepalive, closes first and reconnects). A response that ends the connection
 * (Connection: close, HTTP/1.0 without keep-alive) ends it at once, even with pipelined
 * requests still unanswered behind it: those go out again on a new connection and are counted
 * as resent, not as errors. So is a batch that a reused connection lost before any byte of an
 * answer arrived (the server closed it while idle).
 *
 * https: the stream is wrapped by tt_stream_tls_connect as soon as the connect starts, and the
 * handshake is driven from the io callback before the first write. With BENCH_TLS_RESUME each
 * connection puts its session in its worker's pool after its first response (TLS 1.3 tickets
 * arrive after the handshake), and a new connection takes one out: a TLS 1.3 session resumes
 * once (OpenSSL's client offers it no more), so sessions are not shared between connections;
 * a connection that resumed brings a fresh ticket back. BENCH_TLS_FULL offers none. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define READ_BUF 16384
#define MAX_HDRS 64

volatile sig_atomic_t bench_interrupted;

typedef struct worker worker;

enum { R_HEAD, R_LENGTH, R_CHUNKED, R_CLOSE };

/* What parsing the buffered bytes found. */
enum { P_MORE, P_DONE, P_CLOSE, P_FAILED };

typedef struct conn {
    tt_stream s; /* the connection (s.io.fd < 0: none) */
    worker *w;
    tt_timer timer; /* request timeout while in flight, pacing (--rate) while idle */
    tt_defer defer; /* reconnect outside the io callback */
    int connecting;
    int handshaking;  /* https: connected, TLS handshake in progress */
    int tls_up;       /* https: the handshake completed (a clean close sends close_notify) */
    int took_session; /* https: this connection's session was taken for the next ones */
    int parked;       /* no more work */
    int close_after;
    int opened;        /* counted in conns_opened: its close is counted as server or client first */
    int peer_ended;    /* the read side saw the server's FIN or reset */
    int waiting_rate;  /* timer is pacing (--rate) */
    int waiting_retry; /* timer is a back-off after a failed connect */
    int reused;        /* the current batch went out on a connection that answered before */
    int answered;      /* responses (or bytes of one) on this connection for this batch */
    char *buf;
    size_t start, len; /* unparsed bytes buf[start, len) */
    size_t woff, wlen; /* batch bytes written / to write */
    int inflight;      /* responses still expected in the current batch */
    int batch;         /* requests in the current batch */
    uint64_t sent_us;  /* when the batch was (meant to be) sent */
    uint64_t next_us;  /* --rate: intended time of the next batch */
    int rstate;
    uint64_t body_left, body_len;
    int status;
    tt_http1_parser p;
    tt_http1_response r;
    tt_http1_chunked_decoder cd;
    tt_header hdrs[MAX_HDRS];
} conn;

struct worker {
    _Alignas(64) const bench_cfg *cfg; /* workers sit in one array: no shared cache lines */
    int index;
    tt_loop *loop;
    tt_async wake; /* stop request from the main thread */
    tt_timer deadline;
    pthread_t th;
    conn *conns;
    int nconns, active;
    int stopping;
    long long budget;     /* -n: requests still to start (-1: unlimited) */
    uint64_t interval_us; /* --rate: gap between two batches on one connection */
    uint64_t t_start, t_end;
    tt_hdr *hist;
    uint64_t bytes, non2xx, conns_opened, resent, err[E_N], status_class[6];
    uint64_t closed_server_first, closed_client_first;
    tt_tls_session **sess; /* https: unused sessions for new connections (BENCH_TLS_RESUME) */
    int nsess;             /* in sess[], at most nconns */
    char tls_err[200];     /* https: the first failed handshake, "" when none */
    _Atomic uint64_t done, errors; /* progress display reads these */
    _Atomic int finished;
};

static _Atomic long long expected_len = -1; /* --verify */
static _Atomic int expected_status = 0;
static _Atomic int run_fatal; /* a failure every connection would repeat (certificate): stop */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void count_error(worker *w, int kind)
{
    w->err[kind]++;
    atomic_store_explicit(&w->errors, atomic_load_explicit(&w->errors, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void conn_next(conn *c);
static void conn_send(conn *c);
static void conn_io(tt_loop *loop, tt_io *io, unsigned events);

/* Did the server close first? Yes when its FIN (or a reset) was already seen; else one read
 * settles it: a FIN that arrived since the last readiness edge reads as end of stream. */
static int server_closed_first(conn *c)
{
    if (c->peer_ended || tt_stream_peer_fin(&c->s)) return 1;
    if (c->connecting || c->handshaking) return 0; /* given up before it opened: ours */
    char b[1];
    ssize_t n = tt_stream_read(&c->s, b, sizeof b); /* bytes first: the server still sends */
    return n == 0 || (n < 0 && n != -EAGAIN);
}

/* Close the connection, counting which side closed first (the side that gets TIME_WAIT). */
static void conn_close_fd(conn *c)
{
    if (c->opened && tt_stream_fd(&c->s) >= 0) {
        if (server_closed_first(c)) {
            c->peer_ended = 1; /* no close_notify into a closed connection */
            c->w->closed_server_first++;
        } else
            c->w->closed_client_first++;
    }
    if (c->tls_up && !c->peer_ended && tt_stream_fd(&c->s) >= 0)
        tt_stream_shutdown(&c->s); /* close_notify: a clean end, as a browser or curl sends */
    c->opened = c->peer_ended = 0;
    tt_stream_close(&c->s, c->w->loop, 0);
    c->connecting = c->handshaking = c->tls_up = c->took_session = 0;
    c->start = c->len = 0;
    c->close_after = 0;
    c->reused = 0;
}

static void worker_maybe_done(worker *w)
{
    if (w->active == 0) tt_loop_stop(w->loop);
}

static void conn_park(conn *c)
{
    if (c->parked) return;
    tt_timer_stop(c->w->loop, &c->timer);
    conn_close_fd(c);
    c->parked = 1;
    c->inflight = 0;
    c->w->active--;
    worker_maybe_done(c->w);
}

static void parser_reset(conn *c)
{
    tt_http1_parser_init(&c->p, NULL);
    memset(&c->r, 0, sizeof c->r);
    c->r.headers = c->hdrs;
    c->r.max_headers = MAX_HDRS;
    c->rstate = R_HEAD;
    c->body_left = c->body_len = 0;
}

static void conn_deferred(tt_loop *loop, tt_defer *d);

/* After a failed connect: try again in 10 ms rather than spin on a refusing port. */
static void conn_retry_later(conn *c)
{
    c->waiting_retry = 1;
    tt_timer_start(c->w->loop, &c->timer, 10);
}

/* The batch failed (error of kind): drop the connection and start the next batch afresh. */
static void conn_fail(conn *c, int kind)
{
    count_error(c->w, kind);
    tt_timer_stop(c->w->loop, &c->timer);
    c->waiting_rate = c->waiting_retry = 0; /* the timer is stopped: no pacing pending */
    conn_close_fd(c);
    c->inflight = 0;
    parser_reset(c);
    if (kind == E_CONNECT || kind == E_TLS) {
        conn_retry_later(c);
        return;
    }
    tt_defer_queue(c->w->loop, &c->defer, conn_deferred);
}

/* The connection ended with c->inflight requests unanswered that the server never refused:
 * close it now and send exactly those again on a new connection (counted, not errors). The
 * latency of each still counts from the batch's first send. */
static void conn_resend(conn *c)
{
    worker *w = c->w;
    w->resent += (uint64_t)c->inflight;
    conn_close_fd(c);
    parser_reset(c);
    c->batch = c->inflight;
    c->inflight = 0;
    tt_timer_stop(w->loop, &c->timer);
    conn_send(c);
}

static void conn_deferred(tt_loop *loop, tt_defer *d)
{
    (void)loop;
    conn_next(tt_container_of(d, conn, defer));
}

static void conn_timer(tt_loop *loop, tt_timer *t)
{
    (void)loop;
    conn *c = tt_container_of(t, conn, timer);
    if (c->waiting_rate) {
        c->waiting_rate = 0;
        uint64_t now = now_us();
        /* latency counts from the intended time (never from a future one) */
        c->sent_us = c->next_us < now ? c->next_us : now;
        conn_send(c);
        return;
    }
    if (c->waiting_retry) {
        c->waiting_retry = 0;
        conn_next(c);
        return;
    }
    if (c->handshaking) tt_tls_ctx_count_failure(c->w->cfg->tls, TT_TLS_FAIL_TIMEOUT);
    if (c->inflight) conn_fail(c, E_TIMEOUT);
}

/* Write what is left of the batch while the stream takes it. 0 when done or waiting for
 * writability, -1 when the connection failed (handled). */
static int conn_write(conn *c)
{
    const char *data = c->w->cfg->batch;
    while (c->woff < c->wlen && tt_stream_can_write(&c->s)) {
        ssize_t n = tt_stream_write(&c->s, data + c->woff, c->wlen - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n == -EAGAIN) return 0;
        if (n == -ECONNREFUSED) {
            c->w->conns_opened--; /* the connect failed: it never opened */
            c->opened = 0;
            conn_fail(c, E_CONNECT);
        } else if (c->reused && !c->answered) {
            conn_resend(c); /* the server closed the idle connection as we reused it */
        } else {
            conn_fail(c, E_WRITE);
        }
        return -1;
    }
    return 0;
}

/* A connect that failed before the stream took it over: count it and try again later. */
static void conn_connect_failed(conn *c)
{
    tt_timer_stop(c->w->loop, &c->timer);
    count_error(c->w, E_CONNECT);
    c->inflight = 0;
    conn_retry_later(c);
}

static void conn_connect(conn *c)
{
    worker *w = c->w;
    int fd = tt_connect_start(&w->cfg->addr);
    if (fd < 0) {
        conn_connect_failed(c);
        return;
    }
    tt_sock_nodelay(fd, 1);
    if (tt_stream_open(&c->s, w->loop, fd, 0, conn_io, c) < 0) {
        c->s.io.fd = fd; /* the stream closes what it could not take */
        tt_stream_close(&c->s, w->loop, 0);
        conn_connect_failed(c);
        return;
    }
    c->connecting = 1;
    w->conns_opened++;
    c->opened = 1;
    parser_reset(c);
    if (w->cfg->tls) {
        tt_tls_session *offer = w->nsess > 0 ? w->sess[--w->nsess] : NULL; /* the newest */
        int rc = tt_stream_tls_connect(&c->s, w->cfg->tls, w->cfg->hostname, offer);
        tt_tls_session_free(offer); /* the stream holds its own reference */
        if (rc < 0) {
            conn_fail(c, E_TLS);
            return;
        }
        c->handshaking = 1;
    }
}

/* The handshake failed: remember the first reason; a certificate that does not verify fails
 * every connection alike, so it ends the run at once. */
static void conn_tls_failed(conn *c)
{
    worker *w = c->w;
    char msg[160] = "";
    int reason = tt_stream_tls_failure(&c->s, msg, sizeof msg);
    if (!w->tls_err[0])
        snprintf(w->tls_err, sizeof w->tls_err, "%s%s%s", tt_tls_fail_name(reason),
                 msg[0] ? ": " : "", msg);
    if (reason == TT_TLS_FAIL_CERT) atomic_store(&run_fatal, 1);
    conn_fail(c, E_TLS);
}

/* Drive the handshake: 0 when it completed, 1 while it waits for the socket, -1 when it
 * failed (handled). */
static int conn_handshake(conn *c)
{
    int rc = tt_stream_handshake(&c->s);
    if (rc == -EAGAIN) return 1;
    if (rc < 0) {
        conn_tls_failed(c);
        return -1;
    }
    c->handshaking = 0;
    c->tls_up = 1;
    return 0;
}

/* After a response on an https connection: put its session in the worker's pool for a new
 * connection (once per connection; none until the server sent one). A full pool drops its
 * oldest. */
static void conn_take_session(conn *c)
{
    worker *w = c->w;
    tt_tls_session *sess = tt_stream_tls_session(&c->s);
    if (!sess) return;
    c->took_session = 1;
    if (w->nsess == w->nconns) {
        tt_tls_session_free(w->sess[0]);
        memmove(w->sess, w->sess + 1, (size_t)(w->nsess - 1) * sizeof *w->sess);
        w->nsess--;
    }
    w->sess[w->nsess++] = sess;
}

/* Send the claimed batch now (connecting first if needed); sent_us is already set. */
static void conn_send(conn *c)
{
    worker *w = c->w;
    c->waiting_rate = c->waiting_retry = 0; /* from now on the timer is the request timeout */
    c->inflight = c->batch;
    c->answered = 0;
    c->woff = 0;
    c->wlen = (size_t)c->batch * w->cfg->req_len;
    if (w->cfg->timeout_ms > 0) tt_timer_start(w->loop, &c->timer, (uint64_t)w->cfg->timeout_ms);
    if (tt_stream_fd(&c->s) < 0) {
        conn_connect(c);
        return;
    }
    c->reused = 1;
    if (!c->connecting && !c->handshaking) conn_write(c);
}

/* Claim the next batch and send it (or wait for its intended time, or park). */
static void conn_next(conn *c)
{
    worker *w = c->w;
    if (c->parked) return;
    if (w->stopping || w->budget == 0) {
        conn_park(c);
        return;
    }
    int k = w->cfg->pipeline;
    if (w->budget > 0) {
        if (w->budget < k) k = (int)w->budget;
        w->budget -= k;
    }
    c->batch = k;
    if (w->interval_us) {
        uint64_t now = now_us();
        c->next_us += w->interval_us;
        if (c->next_us > now + 1000) {
            c->waiting_rate = 1;
            tt_timer_start(w->loop, &c->timer,
                           (c->next_us - now) / 1000 /* wake early, not late */);
            return;
        }
        c->sent_us = c->next_us < now ? c->next_us : now;
    } else {
        c->sent_us = now_us();
    }
    conn_send(c);
}

/* --verify: the first response sets the expected status and length; later ones must match. */
static int verify_ok(const conn *c, int st)
{
    long long want = atomic_load_explicit(&expected_len, memory_order_relaxed);
    if (want < 0) {
        long long unset = -1;
        atomic_compare_exchange_strong(&expected_len, &unset, (long long)c->body_len);
        want = atomic_load(&expected_len);
    }
    int wst = atomic_load_explicit(&expected_status, memory_order_relaxed);
    if (!wst) {
        int zero = 0;
        atomic_compare_exchange_strong(&expected_status, &zero, st);
        wst = atomic_load(&expected_status);
    }
    return (long long)c->body_len == want && st == wst;
}

/* One whole response arrived at time now. */
static void conn_response(conn *c, uint64_t now)
{
    worker *w = c->w;
    int st = c->status;
    tt_hdr_record(w->hist, now > c->sent_us ? now - c->sent_us : 0);
    atomic_store_explicit(&w->done, atomic_load_explicit(&w->done, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    w->status_class[st >= 100 && st < 600 ? st / 100 : 0]++;
    if (st < 200 || st > 299) w->non2xx++;
    if (st >= 400) count_error(w, E_STATUS);
    if (w->cfg->verify && !verify_ok(c, st)) count_error(w, E_VERIFY);
    if (!(c->r.flags & TT_HTTP1_F_KEEP_ALIVE)) c->close_after = 1;
    if (c->tls_up && !c->took_session && w->cfg->tls_sessions == BENCH_TLS_RESUME)
        conn_take_session(c);
    c->inflight--;
    parser_reset(c);
}

/* A response head was parsed: choose the body reader (a response without a body is done). */
static void conn_head_done(conn *c, uint64_t now)
{
    switch (c->r.body) {
    case TT_HTTP1_BODY_LENGTH:
        c->rstate = R_LENGTH;
        c->body_left = c->r.content_length;
        break;
    case TT_HTTP1_BODY_CHUNKED:
        c->rstate = R_CHUNKED;
        memset(&c->cd, 0, sizeof c->cd);
        tt_http1_chunked_init(&c->cd);
        break;
    case TT_HTTP1_BODY_CLOSE: c->rstate = R_CLOSE; break;
    default: c->rstate = R_LENGTH; c->body_left = 0;
    }
    if (c->rstate == R_LENGTH && c->body_left == 0) conn_response(c, now);
}

/* Parse one step of what is buffered: 1 to go on, 0 to wait for bytes, -1 on a parse error. */
static int conn_parse_step(conn *c, uint64_t now)
{
    size_t avail = c->len - c->start;
    char *p = c->buf + c->start;
    if (c->rstate == R_HEAD) {
        if (!avail) return 0;
        int n = tt_http1_parse_response(&c->p, p, avail, c->w->cfg->method_id, &c->r);
        if (n == -2) return c->start == 0 && c->len == READ_BUF ? -1 : 0; /* head > buffer */
        if (n < 0) return -1;
        c->start += (size_t)n;
        c->status = c->r.status;
        if (c->status >= 100 && c->status < 200 && c->status != 101) {
            parser_reset(c); /* interim response: the real one follows */
            return 1;
        }
        conn_head_done(c, now);
        return 1;
    }
    if (c->rstate == R_LENGTH) {
        size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
        c->start += take;
        c->body_left -= take;
        c->body_len += take;
        if (c->body_left) return 0;
        conn_response(c, now);
        return 1;
    }
    if (c->rstate == R_CHUNKED) {
        if (!avail) return 0;
        size_t out = 0;
        long n = tt_http1_chunked_decode(&c->cd, p, avail, &out);
        if (n < 0) return -1;
        c->body_len += out;
        c->start += (size_t)n;
        if (c->cd.done) {
            conn_response(c, now);
            return 1;
        }
        if (c->start > 0 && c->len - c->start == avail && c->len == READ_BUF) return -1;
        return 0;
    }
    /* R_CLOSE: everything until EOF is body */
    c->body_len += avail;
    c->start = c->len;
    return 0;
}

/* Parse what is buffered: P_MORE (keep reading), P_DONE (batch answered), P_CLOSE (a response
 * ended the connection with requests still unanswered) or P_FAILED (handled). */
static int conn_parse(conn *c, uint64_t now)
{
    int r;
    while (c->inflight > 0 && !c->close_after && (r = conn_parse_step(c, now)) != 0) {
        if (r < 0) {
            conn_fail(c, E_PARSE);
            return P_FAILED;
        }
    }
    if (c->start == c->len) {
        c->start = c->len = 0;
    } else if (c->start > 0 && READ_BUF - c->len < 4096) {
        memmove(c->buf, c->buf + c->start, c->len - c->start); /* the parser rebases */
        c->len -= c->start;
        c->start = 0;
    }
    if (c->inflight == 0) return P_DONE;
    return c->close_after ? P_CLOSE : P_MORE;
}

/* The batch is complete: reuse the connection or close it (we close first: TIME_WAIT here). */
static void conn_batch_done(conn *c)
{
    tt_timer_stop(c->w->loop, &c->timer);
    if (c->close_after || !c->w->cfg->keepalive || c->len > c->start) {
        conn_close_fd(c);
        tt_defer_queue(c->w->loop, &c->defer, conn_deferred);
        return;
    }
    conn_next(c);
}

/* The server closed (n == 0) or reset the connection while we read. */
static void conn_ended(conn *c, ssize_t n)
{
    worker *w = c->w;
    c->peer_ended = 1;
    if (n == 0 && c->inflight > 0 && c->rstate == R_CLOSE) {
        conn_response(c, now_us()); /* a close-delimited body is complete */
        c->close_after = 1;
        if (c->inflight == 0)
            conn_batch_done(c);
        else
            conn_resend(c); /* the requests pipelined behind it go out again */
        return;
    }
    if (c->inflight > 0) {
        if (n == -ECONNREFUSED) {
            w->conns_opened--;
            c->opened = 0;
            conn_fail(c, E_CONNECT);
        } else if (c->reused && !c->answered) {
            conn_resend(c); /* an idle close raced with our reuse: nothing was answered */
        } else {
            conn_fail(c, E_READ);
        }
        return;
    }
    conn_close_fd(c);                          /* the server closed an idle connection */
    if (!c->waiting_rate && !c->waiting_retry) /* else the timer sends (reconnecting) */
        tt_defer_queue(w->loop, &c->defer, conn_deferred);
}

/* Read and parse while the stream has input. */
static void conn_read(conn *c)
{
    worker *w = c->w;
    while (tt_stream_can_read(&c->s)) {
        if (c->len == READ_BUF) {
            conn_fail(c, E_PARSE); /* full of unparsed bytes that parse could not use */
            return;
        }
        ssize_t n = tt_stream_read(&c->s, c->buf + c->len, READ_BUF - c->len);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            conn_ended(c, n);
            return;
        }
        w->bytes += (uint64_t)n;
        c->len += (size_t)n;
        c->answered = 1;
        if (c->inflight == 0) {
            conn_fail(c, E_PARSE); /* bytes nobody asked for */
            return;
        }
        switch (conn_parse(c, now_us())) {
        case P_FAILED: return;
        case P_DONE: conn_batch_done(c); return;
        case P_CLOSE: conn_resend(c); return;
        default: break;
        }
    }
}

static void conn_io(tt_loop *loop, tt_io *io, unsigned events)
{
    (void)loop;
    conn *c = io->data;
    if (c->connecting) {
        /* writable without an error means connected: no getsockopt on the common path */
        if (events & (TT_ERROR | TT_HUP)) {
            int rc = tt_connect_result(tt_stream_fd(&c->s));
            if (rc == -EINPROGRESS) return;
            if (rc < 0) {
                c->w->conns_opened--; /* it never opened */
                c->opened = 0;
                conn_fail(c, E_CONNECT);
                return;
            }
        } else if (!tt_stream_can_write(&c->s)) {
            return;
        }
        c->connecting = 0;
    }
    if (c->handshaking && conn_handshake(c) != 0) return;
    if (c->woff < c->wlen && conn_write(c) < 0) return;
    conn_read(c);
}

static void worker_stop_now(worker *w)
{
    if (w->stopping) return;
    w->stopping = 1;
    w->t_end = now_us();
    tt_loop_stop(w->loop);
}

static void worker_deadline(tt_loop *loop, tt_timer *t)
{
    (void)loop;
    worker_stop_now(tt_container_of(t, worker, deadline));
}

static void worker_wake(tt_loop *loop, tt_async *a)
{
    (void)loop;
    worker_stop_now(a->data);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    const bench_cfg *cfg = w->cfg;
    w->t_start = now_us();
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        /* spread the first sends of an open-loop run over one interval */
        c->next_us =
            w->t_start + (w->interval_us * (uint64_t)i) / (uint64_t)w->nconns - w->interval_us;
        conn_next(c);
    }
    if (cfg->duration_s > 0)
        tt_timer_start(w->loop, &w->deadline, (uint64_t)(cfg->duration_s * 1000.0 + 0.5));
    if (w->active > 0) tt_loop_run(w->loop);
    if (!w->t_end) w->t_end = now_us();
    w->stopping = 1;
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        tt_timer_stop(w->loop, &c->timer);
        tt_defer_cancel(w->loop, &c->defer);
        conn_close_fd(c);
    }
    tt_timer_stop(w->loop, &w->deadline);
    atomic_store(&w->finished, 1);
    return NULL;
}

/* ---------- one run ---------- */

static int worker_setup(worker *w, const bench_cfg *cfg, int index, int nconns, long long budget)
{
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->index = index;
    w->nconns = w->active = nconns;
    w->budget = budget;
    if (cfg->rate > 0) {
        double per_conn = cfg->rate / (double)cfg->conns / (double)cfg->pipeline;
        w->interval_us = (uint64_t)(1e6 / per_conn);
        if (!w->interval_us) w->interval_us = 1;
    }
    if (tt_loop_new(&w->loop) < 0) return -1;
    w->hist = tt_hdr_new();
    w->conns = calloc((size_t)nconns, sizeof *w->conns);
    if (!w->hist || !w->conns) return -1;
    if (cfg->tls && cfg->tls_sessions == BENCH_TLS_RESUME &&
        !(w->sess = calloc((size_t)nconns, sizeof *w->sess)))
        return -1;
    if (tt_async_init(w->loop, &w->wake, worker_wake, w) < 0) return -1;
    tt_timer_init(&w->deadline, worker_deadline);
    for (int i = 0; i < nconns; i++) {
        conn *c = &w->conns[i];
        c->w = w;
        c->s.io.fd = -1;
        c->buf = malloc(READ_BUF);
        if (!c->buf) return -1;
        tt_timer_init(&c->timer, conn_timer);
        c->defer.cb = conn_deferred;
        parser_reset(c);
    }
    return 0;
}

static void worker_free(worker *w)
{
    if (w->conns)
        for (int i = 0; i < w->nconns; i++)
            free(w->conns[i].buf);
    free(w->conns);
    free(w->hist);
    for (int i = 0; i < w->nsess; i++)
        tt_tls_session_free(w->sess[i]);
    free(w->sess);
    if (w->loop) {
        tt_async_close(&w->wake);
        tt_loop_free(w->loop);
    }
}

/* The main thread's wait for the workers: a progress line on a TTY every half second, and
 * SIGINT/SIGTERM (blocked in every thread, taken here) stop the run early. */
static void wait_workers(const bench_cfg *cfg, worker *ws, int started, uint64_t t0)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    uint64_t last_done = 0, last_t = t0;
    int alive = started, shown = 0;
    while (alive > 0) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &tick);
        int fatal = atomic_exchange(&run_fatal, 0);
        if (sig == SIGINT || sig == SIGTERM) bench_interrupted = 1;
        if (sig == SIGINT || sig == SIGTERM || fatal)
            for (int i = 0; i < started; i++)
                tt_async_send(&ws[i].wake);
        alive = 0;
        uint64_t done = 0, errs = 0;
        for (int i = 0; i < started; i++) {
            done += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
            errs += atomic_load_explicit(&ws[i].errors, memory_order_relaxed);
            if (!atomic_load(&ws[i].finished)) alive++;
        }
        uint64_t t = now_us();
        if (!cfg->progress || !alive || t - last_t < 500000) continue;
        double rate = (double)(done - last_done) * 1e6 / (double)(t - last_t);
        char a[32], b[32];
        bench_fmt_count(a, sizeof a, (double)done);
        bench_fmt_count(b, sizeof b, rate);
        fprintf(stderr, "\r\033[K  %6.1fs  %s requests  %s req/s  %llu errors",
                (double)(t - t0) / 1e6, a, b, (unsigned long long)errs);
        fflush(stderr);
        shown = 1;
        last_t = t;
        last_done = done;
    }
    if (shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}

/* Add the finished workers' counts into res (whose hist is allocated). */
static void merge_results(bench_result *res, const worker *ws, int started, uint64_t t0)
{
    uint64_t t_end = t0;
    for (int i = 0; i < started; i++) {
        const worker *w = &ws[i];
        tt_hdr_merge(res->hist, w->hist);
        res->bytes += w->bytes;
        res->non2xx += w->non2xx;
        res->conns_opened += w->conns_opened;
        res->closed_server_first += w->closed_server_first;
        res->closed_client_first += w->closed_client_first;
        res->resent += w->resent;
        for (int k = 0; k < E_N; k++) {
            res->err[k] += w->err[k];
            res->errors += w->err[k];
        }
        for (int k = 0; k < 6; k++)
            res->status_class[k] += w->status_class[k];
        if (w->t_end > t_end) t_end = w->t_end;
    }
    res->requests = res->hist->total;
    res->duration_s = (double)(t_end - t0) / 1e6;
    if (res->duration_s <= 0) res->duration_s = 1e-6;
}

/* The context's TLS counters over the run (after - before), and the first failure seen. */
static void tls_result(bench_tls_result *t, const tt_tls_stats *a, const tt_tls_stats *b,
                       const worker *ws, int started)
{
    tt_tls_stats d = *b;
    t->full = d.handshakes_full -= a->handshakes_full;
    t->resumed = d.handshakes_resumed -= a->handshakes_resumed;
    for (int k = 0; k < TT_TLS_FAIL_NREASONS; k++) {
        t->failures[k] = b->failures[k] - a->failures[k];
        t->failures_total += t->failures[k];
    }
    for (size_t i = 0; i < sizeof d.handshake_us_hist / sizeof d.handshake_us_hist[0]; i++)
        d.handshake_us_hist[i] -= a->handshake_us_hist[i];
    t->hs_p50_us = tt_tls_stats_handshake_p50_us(&d);
    for (int i = 0; i < started && !t->first_error[0]; i++)
        snprintf(t->first_error, sizeof t->first_error, "%s", ws[i].tls_err);
}

int bench_run(const bench_cfg *cfg, bench_result *res)
{
    int nt = cfg->threads;
    worker *ws = aligned_alloc(64, (size_t)nt * sizeof *ws); /* sizeof is a multiple of 64 */
    if (!ws) return -1;
    memset(ws, 0, (size_t)nt * sizeof *ws);
    memset(res, 0, sizeof *res);
    int rc = 0;
    for (int i = 0; i < nt; i++) {
        int nc = cfg->conns / nt + (i < cfg->conns % nt);
        long long budget = cfg->nreq > 0 ? cfg->nreq / nt + (i < cfg->nreq % nt) : -1;
        if (worker_setup(&ws[i], cfg, i, nc, budget) < 0) {
            fprintf(stderr, "tether bench: out of memory or loop setup failed\n");
            rc = -1;
            nt = i + 1;
            goto out;
        }
    }
    atomic_store(&expected_len, cfg->verify_length);
    atomic_store(&expected_status, 0);
    atomic_store(&run_fatal, 0);
    tt_tls_stats tls0, tls1;
    if (cfg->tls) tt_tls_ctx_stats(cfg->tls, &tls0);
    uint64_t t0 = now_us();
    int started = 0;
    for (int i = 0; i < nt; i++) {
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "tether bench: cannot start thread %d\n", i);
            break;
        }
        started++;
    }
    wait_workers(cfg, ws, started, t0);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].th, NULL);
    res->hist = tt_hdr_new();
    if (!res->hist) {
        rc = -1;
        goto out;
    }
    res->keepalive = cfg->keepalive;
    merge_results(res, ws, started, t0);
    if (cfg->tls) {
        tt_tls_ctx_stats(cfg->tls, &tls1);
        tls_result(&res->tls, &tls0, &tls1, ws, started);
        res->tls.sessions = cfg->tls_sessions;
    }
    if (started < nt) rc = -1;
out:
    for (int i = 0; i < nt; i++)
        worker_free(&ws[i]);
    free(ws);
    return rc;
}
