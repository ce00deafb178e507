/* bench.c — `tether bench`: an HTTP/1.1 load generator on tether's event loop and response
 * parser. One loop per thread (one thread per core by default), each driving its share of the
 * connections; every buffer is allocated before the run, nothing per request. Closed loop by
 * default, open loop at a constant --rate with coordinated-omission correction (latency from the
 * intended send time). --compare runs keep-alive, then a new connection per request, and reads
 * the kernel's TIME_WAIT counts (sock_diag) on the target port before and after each run.
 *
 * A connection sends a batch (1 request, or --pipeline N in one send), parses the responses as
 * they arrive, and when the batch is complete sends the next one on the same connection (or, with
 * --no-keepalive or a response that ends the connection, closes first and reconnects). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tether.h>

#include "cli.h"
#include "hdr.h"

enum { E_CONNECT, E_READ, E_WRITE, E_TIMEOUT, E_STATUS, E_PARSE, E_VERIFY, E_N };
static const char *const err_names[E_N] = {"connect", "read",  "write", "timeout",
                                           "status",  "parse", "verify"};

#define READ_BUF   16384
#define MAX_HDRS   64
#define MAX_EXTRA  32
#define MAX_THREAD 256

typedef struct bench_cfg {
    const char *url;
    char host[256];     /* host as written in the URL (for Host:) */
    char hostname[256]; /* host to resolve (no brackets) */
    int port;
    const char *path;
    tt_addr addr;
    const char *method;
    tt_http1_method method_id;
    const char *extra[MAX_EXTRA]; /* -H lines */
    int nextra;
    const char *body_file;
    char *body;
    size_t body_len;
    int conns, threads, pipeline, keepalive, json, verify, compare, progress;
    double duration_s; /* -d (0 with -n) */
    long long nreq;    /* -n (0: duration-bound) */
    double rate;       /* --rate requests/s over all connections (0: closed loop) */
    int timeout_ms;
    long long verify_length; /* -1: learn from the first response */
    char *batch;             /* pipeline copies of the request, back to back */
    size_t req_len;
} bench_cfg;

/* What one run measured, merged over the threads. */
typedef struct bench_result {
    uint64_t requests, bytes, non2xx, conns_opened, errors, err[E_N];
    uint64_t status_class[6]; /* 1xx..5xx, [0] other */
    double duration_s;
    tt_hdr *hist;
    int keepalive;
    unsigned tw_server, tw_client; /* --compare: TIME_WAIT created during the run */
} bench_result;

typedef struct worker worker;

enum { R_HEAD, R_LENGTH, R_CHUNKED, R_CLOSE };

typedef struct conn {
    worker *w;
    tt_io io;
    tt_timer timer; /* request timeout while in flight, pacing (--rate) while idle */
    tt_defer defer; /* reconnect outside the io callback */
    int fd;
    int connecting;
    int parked; /* no more work */
    int close_after;
    int waiting_rate;  /* timer is pacing (--rate) */
    int waiting_retry; /* timer is a back-off after a failed connect */
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
    uint64_t bytes, non2xx, conns_opened, err[E_N], status_class[6];
    _Atomic uint64_t done, errors; /* progress display reads these */
    _Atomic int finished;
};

static _Atomic long long expected_len = -1; /* --verify */
static _Atomic int expected_status = 0;

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

static void conn_close_fd(conn *c)
{
    if (c->fd >= 0) {
        tt_io_stop(c->w->loop, &c->io);
        close(c->fd);
        c->fd = -1;
    }
    c->connecting = 0;
    c->start = c->len = 0;
    c->close_after = 0;
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

/* After a failed connect: try again in 10 ms rather than spin on a refusing
 * port. */
static void conn_retry_later(conn *c)
{
    c->waiting_retry = 1;
    tt_timer_start(c->w->loop, &c->timer, 10);
}

/* The batch failed (error of kind): drop the connection and start the next
 * batch afresh. */
static void conn_fail(conn *c, int kind)
{
    count_error(c->w, kind);
    tt_timer_stop(c->w->loop, &c->timer);
    c->waiting_rate = c->waiting_retry = 0; /* the timer is stopped: no pacing pending */
    conn_close_fd(c);
    c->inflight = 0;
    parser_reset(c);
    if (kind == E_CONNECT) {
        conn_retry_later(c);
        return;
    }
    tt_defer_queue(c->w->loop, &c->defer, conn_deferred);
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
    if (c->inflight) conn_fail(c, E_TIMEOUT);
}

/* Write what is left of the batch. 0 when done or waiting for writability, -1
 * on error. */
static int conn_write(conn *c)
{
    const char *data = c->w->cfg->batch;
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, data + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0 && errno == ECONNREFUSED) {
            c->w->conns_opened--; /* the connect failed: it never opened */
            conn_fail(c, E_CONNECT);
            return -1;
        }
        conn_fail(c, E_WRITE);
        return -1;
    }
    return 0;
}

static void conn_connect(conn *c)
{
    worker *w = c->w;
    int fd = tt_connect_start(&w->cfg->addr);
    if (fd < 0) {
        tt_timer_stop(w->loop, &c->timer);
        count_error(w, E_CONNECT);
        c->inflight = 0;
        conn_retry_later(c);
        return;
    }
    tt_sock_nodelay(fd, 1);
    c->fd = fd;
    c->connecting = 1;
    w->conns_opened++;
    parser_reset(c);
    if (tt_io_start(w->loop, &c->io, fd, TT_READ | TT_WRITE, 0, conn_io, c) < 0) {
        close(fd);
        c->fd = -1;
        c->connecting = 0;
        w->conns_opened--;
        tt_timer_stop(w->loop, &c->timer);
        count_error(w, E_CONNECT);
        c->inflight = 0;
        conn_retry_later(c);
    }
}

/* Send the claimed batch now (connecting first if needed); sent_us is already
 * set. */
static void conn_send(conn *c)
{
    worker *w = c->w;
    c->waiting_rate = c->waiting_retry = 0; /* from now on the timer is the request timeout */
    c->inflight = c->batch;
    c->woff = 0;
    c->wlen = (size_t)c->batch * w->cfg->req_len;
    if (w->cfg->timeout_ms > 0) tt_timer_start(w->loop, &c->timer, (uint64_t)w->cfg->timeout_ms);
    if (c->fd < 0) {
        conn_connect(c);
        return;
    }
    if (!c->connecting) conn_write(c);
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

/* One whole response arrived at time now. */
static void conn_response(conn *c, uint64_t now)
{
    worker *w = c->w;
    const bench_cfg *cfg = w->cfg;
    int st = c->status;
    tt_hdr_record(w->hist, now > c->sent_us ? now - c->sent_us : 0);
    atomic_store_explicit(&w->done, atomic_load_explicit(&w->done, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    w->status_class[st >= 100 && st < 600 ? st / 100 : 0]++;
    if (st < 200 || st > 299) w->non2xx++;
    if (st >= 400) count_error(w, E_STATUS);
    if (cfg->verify) {
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
        if ((long long)c->body_len != want || st != wst) count_error(w, E_VERIFY);
    }
    if (!(c->r.flags & TT_HTTP1_F_KEEP_ALIVE)) c->close_after = 1;
    c->inflight--;
    parser_reset(c);
}

/* Parse what is buffered. Returns 0 to keep reading, -1 if the connection
 * failed. */
static int conn_parse(conn *c, uint64_t now)
{
    const bench_cfg *cfg = c->w->cfg;
    while (c->inflight > 0) {
        size_t avail = c->len - c->start;
        char *p = c->buf + c->start;
        if (c->rstate == R_HEAD) {
            if (!avail) break;
            int n = tt_http1_parse_response(&c->p, p, avail, cfg->method_id, &c->r);
            if (n == -2) {
                if (c->start == 0 && c->len == READ_BUF) {
                    conn_fail(c, E_PARSE); /* head larger than the read buffer */
                    return -1;
                }
                break;
            }
            if (n < 0) {
                conn_fail(c, E_PARSE);
                return -1;
            }
            c->start += (size_t)n;
            c->status = c->r.status;
            if (c->status >= 100 && c->status < 200 && c->status != 101) {
                parser_reset(c); /* interim response: the real one follows */
                continue;
            }
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
            continue;
        }
        if (c->rstate == R_LENGTH) {
            size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
            c->start += take;
            c->body_left -= take;
            c->body_len += take;
            if (c->body_left == 0) {
                conn_response(c, now);
                continue;
            }
            break;
        }
        if (c->rstate == R_CHUNKED) {
            if (!avail) break;
            size_t out = 0;
            long n = tt_http1_chunked_decode(&c->cd, p, avail, &out);
            if (n < 0) {
                conn_fail(c, E_PARSE);
                return -1;
            }
            c->body_len += out;
            c->start += (size_t)n;
            if (c->cd.done) {
                conn_response(c, now);
                continue;
            }
            if (c->start > 0 && c->len - c->start == avail && c->len == READ_BUF) {
                conn_fail(c, E_PARSE);
                return -1;
            }
            break;
        }
        /* R_CLOSE: everything until EOF is body */
        c->body_len += avail;
        c->start = c->len;
        break;
    }
    if (c->start == c->len) {
        c->start = c->len = 0;
    } else if (c->start > 0 && READ_BUF - c->len < 4096) {
        memmove(c->buf, c->buf + c->start, c->len - c->start); /* the parser rebases */
        c->len -= c->start;
        c->start = 0;
    }
    return 0;
}

/* The batch is complete: reuse the connection or close it (we close first:
 * TIME_WAIT here). */
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

static void conn_io(tt_loop *loop, tt_io *io, unsigned events)
{
    (void)loop;
    conn *c = io->data;
    worker *w = c->w;
    if (c->connecting) {
        /* writable without an error means connected: no getsockopt on the common
         * path */
        if (events & (TT_ERROR | TT_HUP)) {
            int rc = tt_connect_result(c->fd);
            if (rc == -EINPROGRESS) return;
            if (rc < 0) {
                c->w->conns_opened--; /* it never opened */
                conn_fail(c, E_CONNECT);
                return;
            }
        } else if (!(events & TT_WRITE)) {
            return;
        }
        c->connecting = 0;
        if (conn_write(c) < 0) return;
    } else if ((events & TT_WRITE) && c->woff < c->wlen) {
        if (conn_write(c) < 0) return;
    }
    if (!(events & (TT_READ | TT_RDHUP | TT_HUP | TT_ERROR))) return;
    for (;;) {
        if (c->len == READ_BUF) {
            /* the buffer is full of unparsed bytes that parse could not use */
            conn_fail(c, E_PARSE);
            return;
        }
        size_t space = READ_BUF - c->len;
        ssize_t n = recv(c->fd, c->buf + c->len, space, 0);
        if (n > 0) {
            w->bytes += (uint64_t)n;
            c->len += (size_t)n;
            if (c->inflight == 0) {
                conn_fail(c, E_PARSE); /* bytes nobody asked for */
                return;
            }
            if (conn_parse(c, now_us()) < 0) return;
            if (c->inflight == 0) {
                conn_batch_done(c);
                return;
            }
            if ((size_t)n < space && !(events & (TT_RDHUP | TT_HUP)))
                return; /* short read: drained (edge-triggered contract) */
            continue;
        }
        if (n == 0) {
            if (c->inflight > 0 && c->rstate == R_CLOSE) {
                conn_response(c, now_us());
                if (c->inflight == 0) {
                    c->close_after = 1;
                    conn_batch_done(c);
                    return;
                }
            }
            if (c->inflight > 0) {
                conn_fail(c, E_READ);
                return;
            }
            conn_close_fd(c);                          /* the server closed an idle connection */
            if (!c->waiting_rate && !c->waiting_retry) /* else the timer sends (reconnecting) */
                tt_defer_queue(w->loop, &c->defer, conn_deferred);
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == ECONNREFUSED) {
            w->conns_opened--;
            conn_fail(c, E_CONNECT);
            return;
        }
        conn_fail(c, E_READ);
        return;
    }
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
    if (tt_async_init(w->loop, &w->wake, worker_wake, w) < 0) return -1;
    tt_timer_init(&w->deadline, worker_deadline);
    for (int i = 0; i < nconns; i++) {
        conn *c = &w->conns[i];
        c->w = w;
        c->fd = -1;
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
    if (w->loop) {
        tt_async_close(&w->wake);
        tt_loop_free(w->loop);
    }
}

static volatile sig_atomic_t interrupted;

static void fmt_count(char *out, size_t size, double v)
{
    if (v >= 1e9)
        snprintf(out, size, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, size, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, size, "%.1fk", v / 1e3);
    else
        snprintf(out, size, "%.0f", v);
}

/* Run the load once with cfg; fills res. Returns 0, or -1 on a setup error. */
static int bench_run(const bench_cfg *cfg, bench_result *res)
{
    int nt = cfg->threads;
    worker *ws = aligned_alloc(64, (size_t)nt * sizeof *ws); /* sizeof is a multiple of 64 */
    if (!ws) return -1;
    memset(ws, 0, (size_t)nt * sizeof *ws);
    int rc = 0;
    for (int i = 0; i < nt; i++) {
        int nc = cfg->conns / nt + (i < cfg->conns % nt);
        long long budget = -1;
        if (cfg->nreq > 0) {
            budget = cfg->nreq / nt + (i < cfg->nreq % nt);
        }
        if (worker_setup(&ws[i], cfg, i, nc, budget) < 0) {
            fprintf(stderr, "tether bench: out of memory or loop setup failed\n");
            rc = -1;
            nt = i + 1;
            goto out;
        }
    }
    atomic_store(&expected_len, cfg->verify_length);
    atomic_store(&expected_status, 0);
    uint64_t t0 = now_us();
    int started = 0;
    for (int i = 0; i < nt; i++) {
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "tether bench: cannot start thread %d\n", i);
            break;
        }
        started++;
    }
    /* The main thread waits: progress line on a TTY, Ctrl-C stops the run early.
     */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    uint64_t last_done = 0, last_t = t0;
    int alive = started;
    int shown = 0;
    while (alive > 0) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            interrupted = 1;
            for (int i = 0; i < started; i++)
                tt_async_send(&ws[i].wake);
        }
        alive = 0;
        uint64_t done = 0, errs = 0;
        for (int i = 0; i < started; i++) {
            done += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
            errs += atomic_load_explicit(&ws[i].errors, memory_order_relaxed);
            if (!atomic_load(&ws[i].finished)) alive++;
        }
        if (cfg->progress && alive) {
            uint64_t t = now_us();
            if (t - last_t >= 500000) {
                double rate = (double)(done - last_done) * 1e6 / (double)(t - last_t);
                char a[32], b[32];
                fmt_count(a, sizeof a, (double)done);
                fmt_count(b, sizeof b, rate);
                fprintf(stderr, "\r\033[K  %6.1fs  %s requests  %s req/s  %llu errors",
                        (double)(t - t0) / 1e6, a, b, (unsigned long long)errs);
                fflush(stderr);
                shown = 1;
                last_t = t;
                last_done = done;
            }
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].th, NULL);
    if (shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    memset(res, 0, sizeof *res);
    res->hist = tt_hdr_new();
    if (!res->hist) {
        rc = -1;
        goto out;
    }
    res->keepalive = cfg->keepalive;
    uint64_t t_end = t0;
    for (int i = 0; i < started; i++) {
        worker *w = &ws[i];
        tt_hdr_merge(res->hist, w->hist);
        res->bytes += w->bytes;
        res->non2xx += w->non2xx;
        res->conns_opened += w->conns_opened;
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
    if (started < nt) rc = -1;
out:
    for (int i = 0; i < nt; i++)
        worker_free(&ws[i]);
    free(ws);
    return rc;
}

/* ---------- output ---------- */

static void fmt_us(char *out, size_t size, uint64_t us)
{
    if (us < 1000)
        snprintf(out, size, "%lluus", (unsigned long long)us);
    else if (us < 1000000)
        snprintf(out, size, "%.2fms", (double)us / 1e3);
    else
        snprintf(out, size, "%.2fs", (double)us / 1e6);
}

static void fmt_bytes(char *out, size_t size, double v)
{
    if (v >= 1024.0 * 1024 * 1024)
        snprintf(out, size, "%.2f GiB", v / (1024.0 * 1024 * 1024));
    else if (v >= 1024.0 * 1024)
        snprintf(out, size, "%.2f MiB", v / (1024.0 * 1024));
    else if (v >= 1024.0)
        snprintf(out, size, "%.2f KiB", v / 1024.0);
    else
        snprintf(out, size, "%.0f B", v);
}

static void print_text(const bench_cfg *cfg, const bench_result *r)
{
    char a[32], b[32];
    const tt_hdr *h = r->hist;
    printf("tether bench %s\n", cfg->url);
    printf("  %d connection%s, %d thread%s, %s", cfg->conns, cfg->conns == 1 ? "" : "s",
           cfg->threads, cfg->threads == 1 ? "" : "s",
           r->keepalive ? "keep-alive" : "new connection per request");
    if (cfg->pipeline > 1) printf(", pipeline %d", cfg->pipeline);
    if (cfg->rate > 0) printf(", open loop at %.0f req/s", cfg->rate);
    printf("\n");
    fmt_bytes(a, sizeof a, (double)r->bytes);
    printf("  requests      %llu in %.2fs, %s read\n", (unsigned long long)r->requests,
           r->duration_s, a);
    printf("  requests/s    %.1f\n", (double)r->requests / r->duration_s);
    fmt_bytes(a, sizeof a, (double)r->bytes / r->duration_s);
    printf("  transfer/s    %s\n", a);
    printf("  latency      ");
    static const double pcts[] = {50, 90, 99, 99.9};
    static const char *const pnames[] = {"p50", "p90", "p99", "p99.9"};
    for (int i = 0; i < 4; i++) {
        fmt_us(a, sizeof a, tt_hdr_percentile(h, pcts[i]));
        printf(" %s %s", pnames[i], a);
    }
    fmt_us(a, sizeof a, h->max);
    fmt_us(b, sizeof b, (uint64_t)tt_hdr_mean(h));
    printf(" max %s (mean %s)\n", a, b);
    printf("  connections   %llu opened\n", (unsigned long long)r->conns_opened);
    printf("  errors        %llu", (unsigned long long)r->errors);
    if (r->errors) {
        printf(" (");
        int first = 1;
        for (int k = 0; k < E_N; k++)
            if (r->err[k]) {
                printf("%s%s %llu", first ? "" : ", ", err_names[k], (unsigned long long)r->err[k]);
                first = 0;
            }
        printf(")");
    }
    printf("\n  non-2xx       %llu\n", (unsigned long long)r->non2xx);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void print_json_obj(FILE *f, const bench_cfg *cfg, const bench_result *r)
{
    const tt_hdr *h = r->hist;
    fprintf(f, "{\"url\": ");
    json_str(f, cfg->url);
    fprintf(f,
            ", \"keepalive\": %s, \"connections\": %d, \"threads\": %d, "
            "\"pipeline\": %d, ",
            r->keepalive ? "true" : "false", cfg->conns, cfg->threads, cfg->pipeline);
    fprintf(f,
            "\"requests\": %llu, \"duration_s\": %.6f, \"rps\": %.2f, \"bytes\": "
            "%llu, ",
            (unsigned long long)r->requests, r->duration_s, (double)r->requests / r->duration_s,
            (unsigned long long)r->bytes);
    fprintf(f, "\"transfer_bps\": %.1f, ", (double)r->bytes / r->duration_s);
    fprintf(f,
            "\"latency_us\": {\"min\": %llu, \"mean\": %.1f, \"p50\": %llu, "
            "\"p90\": %llu, "
            "\"p99\": %llu, \"p999\": %llu, \"max\": %llu}, ",
            (unsigned long long)(h->total ? h->min : 0), tt_hdr_mean(h),
            (unsigned long long)tt_hdr_percentile(h, 50),
            (unsigned long long)tt_hdr_percentile(h, 90),
            (unsigned long long)tt_hdr_percentile(h, 99),
            (unsigned long long)tt_hdr_percentile(h, 99.9), (unsigned long long)h->max);
    fprintf(f, "\"connections_opened\": %llu, \"errors\": %llu, \"errors_by_kind\": {",
            (unsigned long long)r->conns_opened, (unsigned long long)r->errors);
    for (int k = 0; k < E_N; k++)
        fprintf(f, "%s\"%s\": %llu", k ? ", " : "", err_names[k], (unsigned long long)r->err[k]);
    fprintf(f, "}, \"non2xx\": %llu, \"status\": {", (unsigned long long)r->non2xx);
    for (int k = 1; k < 6; k++)
        fprintf(f, "%s\"%dxx\": %llu", k > 1 ? ", " : "", k,
                (unsigned long long)r->status_class[k]);
    fprintf(f, "}");
    if (cfg->compare)
        fprintf(f, ", \"time_wait\": {\"server\": %u, \"client\": %u}", r->tw_server, r->tw_client);
    fprintf(f, "}");
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static void print_compare(const bench_cfg *cfg, const bench_result *ka, const bench_result *nc)
{
    char a[32], b[32];
    double rps_ka = (double)ka->requests / ka->duration_s;
    double rps_nc = (double)nc->requests / nc->duration_s;
    printf("tether bench --compare %s\n", cfg->url);
    printf("  %d connection%s, %d thread%s, ", cfg->conns, cfg->conns == 1 ? "" : "s", cfg->threads,
           cfg->threads == 1 ? "" : "s");
    if (cfg->nreq > 0)
        printf("%lld requests per run\n\n", cfg->nreq);
    else
        printf("%.1fs per run\n\n", cfg->duration_s);
    printf("  %-24s %16s %16s %10s\n", "", "keep-alive", "new connection", "ratio");
    printf("  %-24s %16llu %16llu\n", "requests", (unsigned long long)ka->requests,
           (unsigned long long)nc->requests);
    printf("  %-24s %16.1f %16.1f %9.2fx\n", "requests/s", rps_ka, rps_nc, ratio(rps_ka, rps_nc));
    uint64_t p50k = tt_hdr_percentile(ka->hist, 50), p50n = tt_hdr_percentile(nc->hist, 50);
    uint64_t p99k = tt_hdr_percentile(ka->hist, 99), p99n = tt_hdr_percentile(nc->hist, 99);
    fmt_us(a, sizeof a, p50k);
    fmt_us(b, sizeof b, p50n);
    printf("  %-24s %16s %16s %9.2fx\n", "latency p50", a, b, ratio((double)p50n, (double)p50k));
    fmt_us(a, sizeof a, p99k);
    fmt_us(b, sizeof b, p99n);
    printf("  %-24s %16s %16s %9.2fx\n", "latency p99", a, b, ratio((double)p99n, (double)p99k));
    printf("  %-24s %16llu %16llu %9.2fx\n", "connections opened",
           (unsigned long long)ka->conns_opened, (unsigned long long)nc->conns_opened,
           ratio((double)nc->conns_opened, (double)ka->conns_opened));
    printf("  %-24s %16u %16u\n", "TIME_WAIT, client side", ka->tw_client, nc->tw_client);
    printf("  %-24s %16u %16u\n", "TIME_WAIT, server side", ka->tw_server, nc->tw_server);
    printf("  %-24s %16llu %16llu\n", "errors", (unsigned long long)ka->errors,
           (unsigned long long)nc->errors);
    printf("  %-24s %16llu %16llu\n", "non-2xx", (unsigned long long)ka->non2xx,
           (unsigned long long)nc->non2xx);
    printf("\n  ratio: requests/s keep-alive / new; latency and connections new "
           "/ keep-alive.\n"
           "  TIME_WAIT: sockets entering TIME_WAIT on the port during the run "
           "(sock_diag);\n"
           "  server side = local port %d, client side = remote port %d.\n",
           cfg->port, cfg->port);
}

/* ---------- command line ---------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: tether bench [options] URL\n"
               "\n"
               "Load-test an HTTP/1.1 server and show what keep-alive buys.\n"
               "\n"
               "  -c, --connections N   concurrent connections [10]\n"
               "  -d, --duration T      run for T (seconds, or 500ms, 2m) [10s unless "
               "-n]\n"
               "  -n, --requests N      run exactly N requests (k/m suffixes) instead "
               "of -d\n"
               "  -t, --threads N       threads, each with its own event loop [one per "
               "core]\n"
               "      --rate R          open loop: R requests/s in total, latency "
               "measured from the\n"
               "                        intended send time (coordinated-omission "
               "correction)\n"
               "      --no-keepalive    a new connection per request (Connection: "
               "close; the client\n"
               "                        closes after reading, so TIME_WAIT lands on the "
               "client)\n"
               "      --pipeline N      N requests in flight per connection, written in "
               "one send [1]\n"
               "  -m, --method M        request method [GET]\n"
               "  -H, --header 'N: v'   add a request header (repeatable; Host "
               "overrides the URL's)\n"
               "      --body FILE       send FILE as the request body (Content-Length)\n"
               "      --timeout T       per-request timeout [2s]\n"
               "      --verify          check every response's status and body length "
               "against the\n"
               "                        first response (or --verify-length); mismatches "
               "are errors\n"
               "      --verify-length N expected body length for --verify\n"
               "      --compare         run the load twice, keep-alive then a new "
               "connection per\n"
               "                        request, side by side with ratios and TIME_WAIT "
               "by side\n"
               "      --json            print one JSON object instead of text\n"
               "  -h, --help            this help\n"
               "\n"
               "Exit status: 0, 1 when --verify saw an error or no request succeeded, 2 "
               "on bad usage.\n");
}

/* Parse a duration: plain seconds, or a number with ms / s / m / h. <0 when
 * invalid. */
static double parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return -1;
    if (!*end || !strcmp(end, "s")) return v;
    if (!strcmp(end, "ms")) return v / 1000.0;
    if (!strcmp(end, "m")) return v * 60.0;
    if (!strcmp(end, "h")) return v * 3600.0;
    return -1;
}

/* Parse a count with an optional k/m suffix. <0 when invalid. */
static long long parse_count(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1e6, end++;
    if (*end || v > 1e15) return -1;
    return (long long)(v + 0.5);
}

static int parse_url(bench_cfg *cfg, const char *url)
{
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://")) {
        fprintf(stderr, "tether bench: only http:// URLs are supported: %s\n", url);
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    if (alen == 0 || alen >= sizeof cfg->host) {
        fprintf(stderr, "tether bench: bad URL: %s\n", url);
        return -1;
    }
    memcpy(cfg->host, p, alen);
    cfg->host[alen] = 0;
    cfg->path = slash ? slash : "/";
    cfg->port = 80;
    const char *h = cfg->host, *colon;
    size_t hlen;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (!rb) return fprintf(stderr, "tether bench: bad URL: %s\n", url), -1;
        hlen = (size_t)(rb - h - 1);
        memcpy(cfg->hostname, h + 1, hlen);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        hlen = colon ? (size_t)(colon - h) : strlen(h);
        memcpy(cfg->hostname, h, hlen);
    }
    cfg->hostname[hlen] = 0;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
            return fprintf(stderr, "tether bench: bad port in URL: %s\n", url), -1;
        cfg->port = (int)port;
    }
    int n = tt_addr_resolve(cfg->hostname, cfg->port, &cfg->addr, 1);
    if (n <= 0) {
        fprintf(stderr, "tether bench: cannot resolve %s: %s\n", cfg->hostname, strerror(-n));
        return -1;
    }
    return 0;
}

static int header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return !strncasecmp(line, name, n) && line[n] == ':';
}

/* Build one request and the pipeline batch (pipeline copies back to back). */
static int build_request(bench_cfg *cfg, int keepalive)
{
    size_t cap = 1024 + cfg->body_len + strlen(cfg->path) + strlen(cfg->host);
    for (int i = 0; i < cfg->nextra; i++)
        cap += strlen(cfg->extra[i]) + 2;
    char *req = malloc(cap);
    if (!req) return -1;
    int has_host = 0, has_conn = 0;
    for (int i = 0; i < cfg->nextra; i++) {
        has_host |= header_is(cfg->extra[i], "host");
        has_conn |= header_is(cfg->extra[i], "connection");
    }
    size_t len = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\n", cfg->method, cfg->path);
    if (!has_host) len += (size_t)snprintf(req + len, cap - len, "Host: %s\r\n", cfg->host);
    for (int i = 0; i < cfg->nextra; i++)
        len += (size_t)snprintf(req + len, cap - len, "%s\r\n", cfg->extra[i]);
    if (!keepalive && !has_conn)
        len += (size_t)snprintf(req + len, cap - len, "Connection: close\r\n");
    if (cfg->body)
        len += (size_t)snprintf(req + len, cap - len, "Content-Length: %zu\r\n", cfg->body_len);
    len += (size_t)snprintf(req + len, cap - len, "\r\n");
    if (cfg->body) {
        memcpy(req + len, cfg->body, cfg->body_len);
        len += cfg->body_len;
    }
    free(cfg->batch);
    cfg->batch = malloc(len * (size_t)cfg->pipeline);
    if (!cfg->batch) {
        free(req);
        return -1;
    }
    for (int i = 0; i < cfg->pipeline; i++)
        memcpy(cfg->batch + (size_t)i * len, req, len);
    cfg->req_len = len;
    cfg->keepalive = keepalive;
    free(req);
    return 0;
}

static int read_body_file(bench_cfg *cfg)
{
    FILE *f = fopen(cfg->body_file, "rb");
    if (!f) {
        fprintf(stderr, "tether bench: %s: %s\n", cfg->body_file, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) {
            fclose(f);
            return -1;
        }
        size_t n = fread(b + len, 1, cap - len, f);
        len += n;
        if (len < cap) break;
        cap *= 2;
        char *nb = realloc(b, cap);
        if (!nb) free(b);
        b = nb;
    }
    fclose(f);
    cfg->body = b;
    cfg->body_len = len;
    return 0;
}

/* TIME_WAIT sockets on the port right now, by side. */
static int tw_snapshot(int port, unsigned *server, unsigned *client)
{
    tt_tcp_counts s, c;
    int rc = tt_sockdiag_count(port, &s, &c);
    if (rc < 0) {
        *server = *client = 0;
        return rc;
    }
    *server = s.n[TT_TCP_TIME_WAIT];
    *client = c.n[TT_TCP_TIME_WAIT];
    return 0;
}

static int run_with_tw(const bench_cfg *cfg, bench_result *r)
{
    unsigned s0 = 0, c0 = 0, s1 = 0, c1 = 0;
    int diag = tw_snapshot(cfg->port, &s0, &c0);
    if (bench_run(cfg, r) < 0) return -1;
    if (diag == 0) {
        /* closes finish their FIN exchange within a few round trips on loopback */
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        tw_snapshot(cfg->port, &s1, &c1);
        r->tw_server = s1 > s0 ? s1 - s0 : 0;
        r->tw_client = c1 > c0 ? c1 - c0 : 0;
    } else {
        fprintf(stderr, "tether bench: sock_diag unavailable (%s): TIME_WAIT not counted\n",
                strerror(-diag));
    }
    return 0;
}

int tt_cmd_bench(int argc, char **argv)
{
    bench_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conns = 10;
    cfg.pipeline = 1;
    cfg.keepalive = 1;
    cfg.method = "GET";
    cfg.timeout_ms = 2000;
    cfg.verify_length = -1;
    cfg.duration_s = -1;
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = 0;
    int keepalive = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *eq;
        char opt[32];
        int attached = 0; /* -c100 or --connections=100: the value is in this argument */
        if (a[0] == '-' && a[1] && a[1] != '-' && a[2] && strchr("cdntmH", a[1])) {
            opt[0] = '-', opt[1] = a[1], opt[2] = 0;
            v = a + 2;
            a = opt;
            attached = 1;
        } else if (a[0] == '-' && a[1] == '-' && (eq = strchr(a, '=')) &&
                   (size_t)(eq - a) < sizeof opt) {
            memcpy(opt, a, (size_t)(eq - a));
            opt[eq - a] = 0;
            v = eq + 1;
            a = opt;
            attached = 1;
        }
#define NEEDV()                                                                                    \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "tether bench: %s needs a value\n", a);                                \
            return 2;                                                                              \
        }                                                                                          \
        if (!attached) i++;                                                                        \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--connections")) {
            NEEDV();
            long long n = parse_count(v);
            if (n < 1 || n > 1000000)
                return fprintf(stderr, "tether bench: bad connection count: %s\n", v), 2;
            cfg.conns = (int)n;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--duration")) {
            NEEDV();
            cfg.duration_s = parse_duration(v);
            if (cfg.duration_s <= 0)
                return fprintf(stderr, "tether bench: bad duration: %s\n", v), 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--requests")) {
            NEEDV();
            cfg.nreq = parse_count(v);
            if (cfg.nreq < 1) return fprintf(stderr, "tether bench: bad request count: %s\n", v), 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEEDV();
            long long n = parse_count(v);
            if (n < 1 || n > MAX_THREAD)
                return fprintf(stderr, "tether bench: bad thread count: %s\n", v), 2;
            cfg.threads = (int)n;
        } else if (!strcmp(a, "--rate")) {
            NEEDV();
            cfg.rate = (double)parse_count(v);
            if (cfg.rate <= 0) return fprintf(stderr, "tether bench: bad rate: %s\n", v), 2;
        } else if (!strcmp(a, "--no-keepalive")) {
            keepalive = 0;
        } else if (!strcmp(a, "--pipeline")) {
            NEEDV();
            long long n = parse_count(v);
            if (n < 1 || n > 1024)
                return fprintf(stderr, "tether bench: bad pipeline depth: %s\n", v), 2;
            cfg.pipeline = (int)n;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--method")) {
            NEEDV();
            for (const char *q = v; *q; q++)
                if (!isalpha((unsigned char)*q) && *q != '-' && *q != '_')
                    return fprintf(stderr, "tether bench: bad method: %s\n", v), 2;
            if (!*v) return fprintf(stderr, "tether bench: empty method\n"), 2;
            cfg.method = v;
        } else if (!strcmp(a, "-H") || !strcmp(a, "--header")) {
            NEEDV();
            const char *colon = strchr(v, ':');
            if (!colon || colon == v || strpbrk(v, "\r\n"))
                return fprintf(stderr, "tether bench: bad header (want 'Name: value'): %s\n", v), 2;
            if (cfg.nextra == MAX_EXTRA)
                return fprintf(stderr, "tether bench: at most %d headers\n", MAX_EXTRA), 2;
            cfg.extra[cfg.nextra++] = v;
        } else if (!strcmp(a, "--body")) {
            NEEDV();
            cfg.body_file = v;
        } else if (!strcmp(a, "--timeout")) {
            NEEDV();
            double t = parse_duration(v);
            if (t <= 0) return fprintf(stderr, "tether bench: bad timeout: %s\n", v), 2;
            cfg.timeout_ms = (int)(t * 1000.0 + 0.5);
        } else if (!strcmp(a, "--verify")) {
            cfg.verify = 1;
        } else if (!strcmp(a, "--verify-length")) {
            NEEDV();
            cfg.verify_length = parse_count(v);
            if (cfg.verify_length < 0)
                return fprintf(stderr, "tether bench: bad length: %s\n", v), 2;
            cfg.verify = 1;
        } else if (!strcmp(a, "--compare")) {
            cfg.compare = 1;
        } else if (!strcmp(a, "--json")) {
            cfg.json = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tether bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!cfg.url) {
            cfg.url = a;
        } else {
            fprintf(stderr, "tether bench: more than one URL: %s\n", a);
            return 2;
        }
#undef NEEDV
    }
    if (!cfg.url) {
        usage(stderr);
        return 2;
    }
    if (cfg.nreq > 0 && cfg.duration_s > 0)
        return fprintf(stderr, "tether bench: -d and -n exclude each other\n"), 2;
    if (cfg.nreq == 0 && cfg.duration_s < 0) cfg.duration_s = 10;
    if (cfg.nreq > 0) cfg.duration_s = 0;
    if (cfg.compare && !keepalive)
        return fprintf(stderr, "tether bench: --compare runs both modes; drop "
                               "--no-keepalive\n"),
               2;
    if (!keepalive && cfg.pipeline > 1)
        return fprintf(stderr, "tether bench: --pipeline needs keep-alive\n"), 2;
    if (cfg.threads == 0) cfg.threads = nproc > 0 ? (int)nproc : 1;
    if (cfg.threads > cfg.conns) cfg.threads = cfg.conns;
    if (cfg.nreq > 0 && cfg.nreq < cfg.threads) cfg.threads = (int)cfg.nreq;
    cfg.method_id = tt_http1_method_id(cfg.method, strlen(cfg.method));
    cfg.progress = isatty(STDERR_FILENO) && !cfg.json;
    if (parse_url(&cfg, cfg.url) < 0) return 2;
    if (cfg.body_file && read_body_file(&cfg) < 0) return 2;
    tt_raise_nofile();
    /* workers inherit a mask with SIGINT/SIGTERM blocked: the main thread takes
     * them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 0;
    bench_result r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    if (build_request(&cfg, cfg.compare ? 1 : keepalive) < 0) {
        fprintf(stderr, "tether bench: out of memory\n");
        return 1;
    }
    if (cfg.compare) {
        if (run_with_tw(&cfg, &r1) < 0) {
            status = 1;
            goto done;
        }
        if (!interrupted) {
            if (build_request(&cfg, 0) < 0 || run_with_tw(&cfg, &r2) < 0) {
                status = 1;
                goto done;
            }
        }
        if (cfg.json) {
            printf("{\"compare\": true, \"keepalive\": ");
            print_json_obj(stdout, &cfg, &r1);
            printf(", \"close\": ");
            print_json_obj(stdout, &cfg, &r2);
            double rk = (double)r1.requests / r1.duration_s;
            double rn = r2.requests ? (double)r2.requests / r2.duration_s : 0;
            printf(", \"ratios\": {\"rps\": %.3f, \"p50\": %.3f, \"p99\": %.3f, "
                   "\"connections_opened\": %.3f}}\n",
                   ratio(rk, rn),
                   ratio((double)tt_hdr_percentile(r2.hist, 50),
                         (double)tt_hdr_percentile(r1.hist, 50)),
                   ratio((double)tt_hdr_percentile(r2.hist, 99),
                         (double)tt_hdr_percentile(r1.hist, 99)),
                   ratio((double)r2.conns_opened, (double)r1.conns_opened));
        } else {
            print_compare(&cfg, &r1, &r2);
        }
        if ((cfg.verify && (r1.errors || r2.errors)) || (!r1.requests && r1.errors)) status = 1;
    } else {
        if (bench_run(&cfg, &r1) < 0) {
            status = 1;
            goto done;
        }
        if (cfg.json) {
            print_json_obj(stdout, &cfg, &r1);
            printf("\n");
        } else {
            print_text(&cfg, &r1);
        }
        if ((cfg.verify && r1.errors) || (!r1.requests && r1.errors)) status = 1;
    }
done:
    fflush(stdout);
    free(r1.hist);
    free(r2.hist);
    free(cfg.batch);
    free(cfg.body);
    return status;
}
