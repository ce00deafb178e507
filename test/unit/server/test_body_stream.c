/* test_body_stream.c — streaming request bodies (TT_ROUTE_STREAM_BODY, tt_req_body_read):
 * a real server on loopback and raw client sockets. The handler hashes what it is given and
 * answers with what it saw once the body ends (or fails); the tests check order and
 * completeness (hash), the one terminal call, backpressure (pause blocks the client's send),
 * bounded memory, timeouts, framing errors, 100 Continue, early answers and pipelining. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include "helpers.h"
#include "server/server_int.h"

/* What the handler saw (written on the worker thread; read after the answer arrived). */
static struct {
    volatile uint64_t bytes;
    uint64_t pieces, hash;
    volatile int terminals;
    int err, after_end;      /* terminal calls, the terminal's err, calls after it */
    int pause_every;         /* pause after every n-th piece (0: never) */
    int hold;                /* pause on the first piece until release is set */
    volatile int release;    /* set by the test thread: resume a held body */
    int answer_after;        /* answer (200) after this many bytes, reading on (-1: no) */
    int no_read;             /* answer at once without reading the body */
    volatile int start_read; /* no_read == 2: read once the test sets this */
    size_t max_held;         /* largest read buffer seen (block bytes held) */
    char trailer[64];
    int answered;
    tt_req *req;
    tt_res *res;
    tt_timer t;
} S;

static void st_hash(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        S.hash = (S.hash ^ (unsigned char)p[i]) * 1099511628211ull;
}

static void answer(int status)
{
    char b[256];
    int n = snprintf(b, sizeof b, "bytes=%llu hash=%016llx err=%d trailer=%s end\n",
                     (unsigned long long)S.bytes, (unsigned long long)S.hash, S.err, S.trailer);
    S.answered = 1;
    tt_res_send(S.res, status, "text/plain", b, (size_t)n);
}

static void on_timer(tt_loop *loop, tt_timer *t)
{
    if (S.hold && !S.release) {
        tt_timer_start(loop, t, 5);
        return;
    }
    S.hold = 0;
    tt_req_body_resume(S.req);
}

static int on_body(tt_req *req, const char *data, size_t len, int err, void *ud)
{
    (void)ud;
    if (S.terminals) {
        S.after_end++;
        return 0;
    }
    if (!data) {
        S.terminals++;
        S.err = err;
        size_t tl;
        const char *tv = tt_req_trailer(req, "X-Sum", &tl);
        if (tv && tl < sizeof S.trailer) memcpy(S.trailer, tv, tl);
        if (!S.answered) answer(err ? 500 : 200);
        return 0;
    }
    cr_assert_gt(len, 0);
    S.pieces++;
    S.bytes += len;
    st_hash(data, len);
    size_t held = req->rbuf.off + req->rbuf.cap;
    if (held > S.max_held) S.max_held = held;
    if (S.answer_after >= 0 && !S.answered && S.bytes >= (uint64_t)S.answer_after) {
        answer(200);
        return 0;
    }
    if (S.hold || (S.pause_every && S.pieces % (uint64_t)S.pause_every == 0)) {
        tt_timer_start(tt_req_loop(req), &S.t, 0);
        return TT_BODY_PAUSE;
    }
    return 0;
}

static void start_read(tt_loop *loop, tt_timer *t)
{
    if (!S.start_read) {
        tt_timer_start(loop, t, 5);
        return;
    }
    tt_timer_init(&S.t, on_timer);
    cr_assert_eq(tt_req_body_read(S.req, on_body, NULL), 0);
}

static void stream_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    S.req = req;
    S.res = res;
    S.answered = 0;
    S.terminals = 0;
    tt_timer_init(&S.t, on_timer);
    if (S.no_read == 1) {
        answer(413);
        return;
    }
    if (S.no_read == 2) {
        tt_timer_init(&S.t, start_read);
        tt_timer_start(tt_req_loop(req), &S.t, 5);
        return;
    }
    cr_assert_eq(tt_req_body_read(req, on_body, NULL), 0);
    cr_assert_eq(tt_req_body_read(req, on_body, NULL), -EALREADY);
}

static void plain_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    cr_assert_eq(tt_req_body_read(req, on_body, NULL), -EINVAL);
    tt_res_send(res, 200, "text/plain", "plain end\n", 10);
}

static tt_server *srv;
static pthread_t th;

static void serve(int body_timeout_ms)
{
    memset(&S, 0, sizeof S);
    S.answer_after = -1;
    signal(SIGPIPE, SIG_IGN);
    tt_server_config cfg;
    helper_config(&cfg);
    cfg.body_timeout_ms = body_timeout_ms;
    cfg.max_body = 1024; /* streaming routes are not bound by it */
    cr_assert_eq(tt_server_config_route_ex(&cfg, "/s", stream_handler, NULL, TT_ROUTE_STREAM_BODY),
                 0);
    cr_assert_eq(tt_server_config_route(&cfg, "/", plain_handler, NULL), 0);
    srv = helper_serve(&cfg, &th);
}

static void stop(void)
{
    helper_stop(srv, th);
}

/* Send all of p (the socket is non-blocking: wait for room, about 10 s at most). */
static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    for (int waits = 0; n && waits < 10000;) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k > 0) {
            c += k;
            n -= (size_t)k;
            waits = 0;
        } else {
            struct pollfd pfd = {fd, POLLOUT, 0};
            poll(&pfd, 1, 1);
            waits++;
        }
    }
    cr_assert_eq(n, 0, "send stalled");
}

/* read_some with a longer bound (about 10 s): generous on a loaded machine. */
static size_t read_long(int fd, char *buf, size_t size, const char *until)
{
    size_t got = 0;
    for (int i = 0; i < 5 && got < size - 1; i++) {
        got += read_some(fd, buf + got, size - got, until);
        if (strstr(buf, until)) break;
        char tmp;
        if (recv(fd, &tmp, 1, MSG_PEEK | MSG_DONTWAIT) == 0) break; /* EOF */
    }
    buf[got] = 0;
    return got;
}

/* Wait (about 10 s at most) until *flag is nonzero. */
static void wait_flag(volatile int *flag)
{
    for (int i = 0; i < 10000 && !*flag; i++)
        usleep(1000);
}

static void fill(char *b, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (seed + i * 7 + i / 13) % 26);
}

/* The hash of n generated bytes (as fill with seed 0, one piece at a time). */
static uint64_t want_hash(const char *b, size_t n)
{
    uint64_t h = S.hash;
    S.hash = 14695981039346656037ull;
    st_hash(b, n);
    uint64_t r = S.hash;
    S.hash = h;
    return r;
}

static void check_answer(const char *buf, uint64_t bytes, uint64_t hash)
{
    char want[128];
    snprintf(want, sizeof want, "bytes=%llu hash=%016llx err=0", (unsigned long long)bytes,
             (unsigned long long)hash);
    cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
    cr_assert(strstr(buf, want), "want %s in %s", want, buf);
}

Test(body_stream, content_length_small_writes)
{
    serve(0);
    S.hash = 14695981039346656037ull;
    enum { N = 200000 };
    char *b = malloc(N);
    fill(b, N, 0);
    int fd = connect_port(tt_server_port(srv));
    char head[128];
    int hl =
        snprintf(head, sizeof head, "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", N);
    send_all(fd, head, (size_t)hl);
    for (size_t off = 0, step = 1; off < N; off += step, step = step % 997 + 1)
        send_all(fd, b + off, off + step > N ? N - off : step);
    char buf[1024];
    read_long(fd, buf, sizeof buf, "end\n");
    check_answer(buf, N, want_hash(b, N));
    cr_assert_eq(S.terminals, 1);
    cr_assert_eq(S.after_end, 0);
    close(fd);
    free(b);
    stop();
}

Test(body_stream, chunked_with_trailers)
{
    serve(0);
    S.hash = 14695981039346656037ull;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n1;ext=1\r\n \r\n";
    send_all(fd, rq, strlen(rq));
    usleep(20000);
    const char *rest = "6\r\nworld!\r\n0\r\nX-Sum: abc\r\n\r\n";
    send_all(fd, rest, strlen(rest));
    char buf[1024];
    read_long(fd, buf, sizeof buf, "end\n");
    check_answer(buf, 12, want_hash("hello world!", 12));
    cr_assert(strstr(buf, "trailer=abc end"), "%s", buf);
    cr_assert_eq(S.terminals, 1);
    /* the connection is kept: a pipelined plain request after it */
    send_all(fd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    read_long(fd, buf, sizeof buf, "plain end\n");
    cr_assert(strstr(buf, "plain end"), "%s", buf);
    close(fd);
    stop();
}

/* The handler pauses on the first piece: the server stops reading, the socket buffers fill
 * and the client's send would block; after the resume everything arrives. */
Test(body_stream, pause_blocks_the_client)
{
    serve(TT_OFF);
    S.hash = 14695981039346656037ull;
    S.hold = 1;
    enum { N = 64 << 20 };
    char *b = malloc(N);
    fill(b, N, 0);
    int fd = connect_port(tt_server_port(srv));
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "PUT /s/x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", N);
    send_all(fd, head, (size_t)hl);
    size_t off = 0;
    int blocked = 0;
    for (int spins = 0; off < N && spins < 2000;) {
        ssize_t k = send(fd, b + off, N - off > 65536 ? 65536 : N - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            spins = 0;
            continue;
        }
        cr_assert_eq(errno, EAGAIN);
        usleep(1000);
        if (++spins == 200) { /* 200 ms without room: the server is not reading */
            blocked = 1;
            break;
        }
    }
    cr_assert(blocked, "the client's send never blocked (%zu bytes sent)", off);
    cr_assert_lt(off, (size_t)N);
    S.release = 1;
    send_all(fd, b + off, N - off);
    char buf[1024];
    read_long(fd, buf, sizeof buf, "end\n");
    check_answer(buf, N, want_hash(b, N));
    close(fd);
    free(b);
    stop();
}

/* 100 MB with a pause every 16 pieces: the read buffer never grows past what one read
 * needs (the head plus a few blocks), whatever the body's size. */
Test(body_stream, hundred_mb_bounded, .timeout = 120)
{
    serve(0);
    S.hash = 14695981039346656037ull;
    S.pause_every = 16;
    enum { CH = 1 << 20, N = 100 };
    char *b = malloc(CH);
    fill(b, CH, 0);
    int fd = connect_port(tt_server_port(srv));
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", N * CH);
    send_all(fd, head, (size_t)hl);
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < N; i++) {
        send_all(fd, b, CH);
        for (size_t k = 0; k < CH; k++)
            h = (h ^ (unsigned char)b[k]) * 1099511628211ull;
    }
    char buf[1024];
    read_long(fd, buf, sizeof buf, "end\n");
    check_answer(buf, (uint64_t)N * CH, h);
    cr_assert_gt(S.pieces, 100);
    cr_assert_leq(S.max_held, 4 * 16384, "read buffer grew to %zu", S.max_held);
    tt_server_stats st;
    tt_server_stats_get(srv, -1, &st);
    cr_assert_eq(st.body_mem_refused, 0);
    close(fd);
    free(b);
    stop();
}

Test(body_stream, peer_reset_mid_body)
{
    serve(0);
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabcdef";
    send_all(fd, rq, strlen(rq));
    for (int i = 0; i < 10000 && S.bytes < 6; i++)
        usleep(1000);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    wait_flag(&S.terminals);
    usleep(50000);
    cr_assert_eq(S.terminals, 1);
    cr_assert_eq(S.err, -ECONNRESET);
    cr_assert_eq(S.after_end, 0);
    cr_assert_eq(S.bytes, 6);
    stop();
}

Test(body_stream, peer_fin_mid_body)
{
    serve(0);
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc";
    send_all(fd, rq, strlen(rq));
    shutdown(fd, SHUT_WR);
    char buf[1024];
    read_long(fd, buf, sizeof buf, "end\n");
    cr_assert(strstr(buf, "HTTP/1.1 500"), "%s", buf);
    cr_assert(strstr(buf, "err=-104"), "%s", buf);
    cr_assert_eq(S.terminals, 1);
    close(fd);
    stop();
}

Test(body_stream, body_timeout_408)
{
    serve(300);
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    send_all(fd, rq, strlen(rq));
    char buf[1024];
    read_long(fd, buf, sizeof buf, "Timeout\n");
    cr_assert(strstr(buf, "HTTP/1.1 408"), "%s", buf);
    cr_assert(strstr(buf, "Connection: close"), "%s", buf);
    cr_assert_null(strstr(buf, "bytes="), "the handler's late answer was dropped: %s", buf);
    cr_assert_eq(S.terminals, 1);
    cr_assert_eq(S.err, -ETIMEDOUT);
    close(fd);
    cr_assert_eq(wait_closes(srv, TT_CLOSE_BODY_TIMEOUT, 1), 1);
    stop();
}

Test(body_stream, bad_chunk_400)
{
    serve(0);
    int fd = connect_port(tt_server_port(srv));
    const char *rq =
        "POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
    send_all(fd, rq, strlen(rq));
    for (int i = 0; i < 10000 && S.bytes < 3; i++)
        usleep(1000);
    send_all(fd, "zz\r\n", 4);
    char buf[1024];
    read_long(fd, buf, sizeof buf, "Request\n");
    cr_assert(strstr(buf, "HTTP/1.1 400"), "%s", buf);
    cr_assert_eq(S.terminals, 1);
    cr_assert_eq(S.err, -EPROTO);
    cr_assert_eq(S.bytes, 3);
    close(fd);
    stop();
}

/* 100 Continue goes out when the handler reads, not when the head arrives. */
Test(body_stream, expect_continue_on_read)
{
    serve(0);
    S.no_read = 2;
    S.hash = 14695981039346656037ull;
    int fd = connect_port(tt_server_port(srv));
    const char *rq =
        "POST /s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    send_all(fd, rq, strlen(rq));
    usleep(200000);
    char buf[1024];
    cr_assert_lt(recv(fd, buf, sizeof buf, 0), 0, "nothing before the handler reads");
    S.start_read = 1;
    read_long(fd, buf, sizeof buf, "\r\n\r\n");
    cr_assert(!strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25), "%s", buf);
    send_all(fd, "hello", 5);
    read_long(fd, buf, sizeof buf, "end\n");
    check_answer(buf, 5, want_hash("hello", 5));
    close(fd);
    stop();
}

/* An answer without reading: no 100 Continue, and the connection closes. */
Test(body_stream, expect_continue_unread_closes)
{
    serve(0);
    S.no_read = 1;
    int fd = connect_port(tt_server_port(srv));
    const char *rq =
        "POST /s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    send_all(fd, rq, strlen(rq));
    char buf[1024];
    size_t n = read_long(fd, buf, sizeof buf, "end\n");
    cr_assert_gt(n, 0);
    cr_assert(!strncmp(buf, "HTTP/1.1 413", 12), "%s", buf);
    cr_assert(strstr(buf, "Connection: close"), "%s", buf);
    close(fd);
    stop();
}

/* An early answer: a small rest is skipped and the connection kept (the pipelined request
 * after it is served); fn gets no call after the response ended. */
Test(body_stream, early_answer_small_rest_kept)
{
    serve(0);
    S.answer_after = 1;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\nabc";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    read_long(fd, buf, sizeof buf, "end\n");
    cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
    cr_assert_null(strstr(buf, "Connection: close"), "%s", buf);
    char rest[2997];
    memset(rest, 'z', sizeof rest);
    send_all(fd, rest, sizeof rest);
    send_all(fd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    read_long(fd, buf, sizeof buf, "plain end\n");
    cr_assert(strstr(buf, "plain end"), "%s", buf);
    cr_assert_eq(S.after_end, 0);
    cr_assert_eq(S.terminals, 0);
    close(fd);
    stop();
}

/* An early answer with a large (or chunked) rest: Connection: close. */
Test(body_stream, early_answer_large_rest_closes)
{
    serve(0);
    S.no_read = 1;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nabc";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    read_long(fd, buf, sizeof buf, "end\n");
    cr_assert(strstr(buf, "HTTP/1.1 413"), "%s", buf);
    cr_assert(strstr(buf, "Connection: close"), "%s", buf);
    close(fd);
    stop();
}

Test(body_stream, pipelined_after_streamed_body)
{
    serve(0);
    S.hash = 14695981039346656037ull;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    read_long(fd, buf, sizeof buf, "plain end\n");
    check_answer(buf, 5, want_hash("hello", 5));
    cr_assert(strstr(buf, "plain end"), "%s", buf);
    close(fd);
    stop();
}

Test(body_stream, zero_length_and_no_body)
{
    serve(0);
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    read_long(fd, buf, sizeof buf, "end\n");
    cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
    cr_assert(strstr(buf, "bytes=0 "), "%s", buf);
    cr_assert_eq(S.terminals, 1);
    send_all(fd, "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    read_long(fd, buf, sizeof buf, "end\n");
    cr_assert(strstr(buf, "bytes=0 "), "%s", buf);
    cr_assert_eq(S.terminals, 1);
    const char *ch = "POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    send_all(fd, ch, strlen(ch));
    read_long(fd, buf, sizeof buf, "end\n");
    cr_assert(strstr(buf, "bytes=0 "), "%s", buf);
    close(fd);
    stop();
}

Test(body_stream, length_and_plain_routes)
{
    serve(0);
    int fd = connect_port(tt_server_port(srv));
    /* a plain route keeps max_body: 413 */
    const char *rq = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    read_long(fd, buf, sizeof buf, "Large\n");
    cr_assert(strstr(buf, "HTTP/1.1 413"), "%s", buf);
    close(fd);
    stop();
}

/* ---- echo: the body streams back as it arrives, under flow control both ways ---- */

static size_t echo_max_pending;

static void echo_drained(tt_res *res, void *data)
{
    (void)data;
    tt_req_body_resume(tt_res_req(res));
}

static int echo_body(tt_req *req, const char *data, size_t len, int err, void *ud)
{
    tt_res *res = ud;
    if (!data) {
        S.terminals++;
        S.err = err;
        tt_res_end(res);
        return 0;
    }
    size_t held = req->rbuf.off + req->rbuf.cap;
    if (held > S.max_held) S.max_held = held;
    tt_res_write(res, data, len);
    size_t p = tt_res_pending(res);
    if (p > echo_max_pending) echo_max_pending = p;
    if (p > 256 * 1024) {
        tt_res_on_drain(res, 64 * 1024, echo_drained, NULL);
        return TT_BODY_PAUSE;
    }
    return 0;
}

static void echo_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    cr_assert_eq(tt_res_start(res, 200, tt_req_body_length(req)), 0);
    cr_assert_eq(tt_req_body_read(req, echo_body, res), 0);
}

/* 32 MB sent and read back at once on one connection (poll-driven client): the whole body
 * comes back in order, the server's buffers stay bounded on both sides. */
Test(body_stream, echo_under_flow_control, .timeout = 120)
{
    memset(&S, 0, sizeof S);
    signal(SIGPIPE, SIG_IGN);
    tt_server_config cfg;
    helper_config(&cfg);
    cr_assert_eq(tt_server_config_route_ex(&cfg, "/", echo_handler, NULL, TT_ROUTE_STREAM_BODY), 0);
    srv = helper_serve(&cfg, &th);
    enum { N = 32 << 20 };
    char *b = malloc(N);
    fill(b, N, 3);
    int fd = connect_port(tt_server_port(srv));
    char head[128];
    int hl =
        snprintf(head, sizeof head, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", N);
    send_all(fd, head, (size_t)hl);
    size_t sent = 0, got = 0, hgot = 0;
    char rh[1024], rb[65536];
    uint64_t h = 14695981039346656037ull, hw = h;
    for (int idle = 0; got < N && idle < 10000;) {
        struct pollfd pfd = {fd, (short)(POLLIN | (sent < N ? POLLOUT : 0)), 0};
        if (poll(&pfd, 1, 1) <= 0) {
            idle++;
            continue;
        }
        idle = 0;
        if ((pfd.revents & POLLOUT) && sent < N) {
            ssize_t k = send(fd, b + sent, N - sent > 65536 ? 65536 : N - sent, MSG_NOSIGNAL);
            if (k > 0) sent += (size_t)k;
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            ssize_t k;
            if (hgot < 4 || memcmp(rh + hgot - 4, "\r\n\r\n", 4)) { /* the head, byte by byte */
                k = recv(fd, rh + hgot, 1, 0);
                cr_assert_gt(k, 0);
                hgot++;
                cr_assert_lt(hgot, sizeof rh);
                continue;
            }
            k = recv(fd, rb, sizeof rb, 0);
            cr_assert_gt(k, 0);
            for (ssize_t i = 0; i < k; i++)
                h = (h ^ (unsigned char)rb[i]) * 1099511628211ull;
            got += (size_t)k;
        }
    }
    rh[hgot] = 0;
    cr_assert(strstr(rh, "HTTP/1.1 200"), "%s", rh);
    cr_assert_eq(got, (size_t)N);
    for (size_t i = 0; i < N; i++)
        hw = (hw ^ (unsigned char)b[i]) * 1099511628211ull;
    cr_assert_eq(h, hw);
    cr_assert_eq(S.terminals, 1);
    cr_assert_eq(S.err, 0);
    cr_assert_leq(S.max_held, 4 * 16384, "read buffer grew to %zu", S.max_held);
    cr_assert_leq(echo_max_pending, 256 * 1024 + 65536, "write buffer grew to %zu",
                  echo_max_pending);
    /* the connection is kept: the next request on it */
    send_all(fd, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 50);
    char buf[1024];
    read_long(fd, buf, sizeof buf, "\r\n\r\nhi");
    tt_server_stats st;
    tt_server_stats_get(srv, -1, &st);
    cr_assert(strstr(buf, "\r\n\r\nhi"), "[%s] states %llu %llu %llu %llu %llu", buf,
              (unsigned long long)st.conns[0], (unsigned long long)st.conns[1],
              (unsigned long long)st.conns[2], (unsigned long long)st.conns[3],
              (unsigned long long)st.conns[4]);
    close(fd);
    free(b);
    helper_stop(srv, th);
}

/* A reset while the handler holds delivery paused still ends the body (-ECONNRESET). */
Test(body_stream, reset_while_paused)
{
    serve(0);
    S.hold = 1;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabcdef";
    send_all(fd, rq, strlen(rq));
    for (int i = 0; i < 10000 && S.bytes < 6; i++)
        usleep(1000);
    cr_assert_eq(S.bytes, 6);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    wait_flag(&S.terminals);
    cr_assert_eq(S.terminals, 1);
    cr_assert_eq(S.err, -ECONNRESET);
    S.release = 1; /* the resume after it is harmless */
    usleep(50000);
    cr_assert_eq(S.after_end, 0);
    stop();
}

/* A chunked body, its trailers and the next request in one write: all served in order. */
Test(body_stream, chunked_trailers_then_pipelined)
{
    serve(0);
    S.hash = 14695981039346656037ull;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n0\r\nX-Sum: s1\r\n\r\n"
                     "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    read_long(fd, buf, sizeof buf, "plain end\n");
    check_answer(buf, 3, want_hash("abc", 3));
    cr_assert(strstr(buf, "trailer=s1 end"), "%s", buf);
    cr_assert(strstr(buf, "plain end"), "%s", buf);
    close(fd);
    stop();
}

/* An answer while a chunked body is still arriving: the answer is complete, then the
 * connection closes (the rest is not decoded to be dropped). */
Test(body_stream, early_answer_chunked_closes)
{
    serve(0);
    S.answer_after = 1;
    int fd = connect_port(tt_server_port(srv));
    const char *rq =
        "POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
    send_all(fd, rq, strlen(rq));
    char buf[4096];
    size_t n = read_long(fd, buf, sizeof buf, "\n\1"); /* until EOF */
    cr_assert_gt(n, 0);
    cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
    cr_assert(strstr(buf, "end\n"), "%s", buf);
    cr_assert_eq(recv(fd, buf, sizeof buf, 0), 0, "the server closed");
    cr_assert_eq(S.after_end, 0);
    close(fd);
    stop();
}

/* Held paused for longer than the body timeout: no 408 (the wait is the handler's doing); the
 * body then completes. */
Test(body_stream, pause_suspends_the_body_timeout)
{
    serve(200);
    S.hash = 14695981039346656037ull;
    S.hold = 1;
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc";
    send_all(fd, rq, strlen(rq));
    for (int i = 0; i < 10000 && S.bytes < 3; i++)
        usleep(1000);
    cr_assert_eq(S.bytes, 3);
    usleep(1000 * 1000); /* five body timeouts */
    send_all(fd, "def", 3);
    usleep(100 * 1000);
    S.release = 1;
    char buf[1024];
    read_long(fd, buf, sizeof buf, "end\n");
    check_answer(buf, 6, want_hash("abcdef", 6));
    close(fd);
    stop();
}
