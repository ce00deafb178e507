/* test_flow.c — the client's flow control against a real loopback server driven from the test
 * between turns of the client's loop: on_head before the body (also HEAD and 204), on_info for
 * 103 and 100, on_body pausing a 10 MB response (the server cannot finish while paused, the
 * body intact after resume), streamed request bodies that wait for tt_exchange_body_ready
 * (chunked with trailers, Content-Length exact, too short, too long), 100-continue with a
 * streamed body, trailers kept with on_body, bad trailers refused, aborts from on_head/on_info. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether.h"

/* ---- a loopback server driven from the test ---- */

static int listener(int *port)
{
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    int fd = tt_listen(&a, NULL);
    cr_assert_geq(fd, 0);
    tt_addr b;
    tt_sock_local(fd, &b);
    *port = tt_addr_port(&b);
    return fd;
}

/* Accept one connection, turning the client's loop meanwhile. */
static int accept_one(int lfd, tt_client *c)
{
    for (int i = 0; i < 2000; i++) {
        int fd = tt_accept(lfd, NULL);
        if (fd >= 0) return fd;
        tt_client_wait(c, 5);
    }
    cr_assert_fail("no connection");
    return -1;
}

/* Read into buf (appending at *len) until it holds until (NUL-terminated), turning the loop. */
static void read_until(int fd, tt_client *c, char *buf, size_t cap, size_t *len, const char *until)
{
    for (int i = 0; i < 2000; i++) {
        buf[*len] = 0;
        if (strstr(buf, until)) return;
        ssize_t n = recv(fd, buf + *len, cap - 1 - *len, MSG_DONTWAIT);
        if (n > 0)
            *len += (size_t)n;
        else if (n == 0)
            break;
        else
            tt_client_wait(c, 5);
    }
    buf[*len] = 0;
    cr_assert(strstr(buf, until), "server never got \"%s\" in \"%s\"", until, buf);
}

/* Bytes readable now without waiting (0 when none). */
static size_t read_now(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
    return n > 0 ? (size_t)n : 0;
}

static void send_str(int fd, const char *s)
{
    cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Turn the loop until *flag is set. */
static void run_until(tt_client *c, const int *flag)
{
    for (int i = 0; i < 4000 && !*flag; i++)
        tt_client_wait(c, 5);
    cr_assert(*flag, "exchange did not complete");
}

/* ---- recording callbacks ---- */

typedef struct rec {
    int done, heads, infos, info_status[4], head_status, head_framing, abort_head, abort_info;
    size_t body_at_head, body;
    char info_head[4][256];
    char xa[32];
    uint64_t hash;
    size_t pause_at; /* pause once the body passes this many bytes (0: never) */
    int paused, depth;
} rec;

static void on_done(tt_exchange *x)
{
    ((rec *)x->data)->done = 1;
}

static int on_head(tt_exchange *x)
{
    rec *r = x->data;
    r->heads++;
    r->head_status = x->status;
    r->head_framing = x->resp_framing;
    r->body_at_head = r->body;
    size_t n;
    const char *v = tt_exchange_header(x, "X-A", &n);
    if (v) snprintf(r->xa, sizeof r->xa, "%.*s", (int)n, v);
    return r->abort_head;
}

static int on_info(tt_exchange *x, int status, const char *head, size_t len)
{
    rec *r = x->data;
    if (r->infos < 4) {
        r->info_status[r->infos] = status;
        snprintf(r->info_head[r->infos], sizeof r->info_head[0], "%.*s", (int)len, head);
    }
    r->infos++;
    return r->abort_info;
}

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static int on_body(tt_exchange *x, const char *data, size_t len)
{
    rec *r = x->data;
    r->body += len;
    r->hash = fnv(r->hash, data, len);
    if (r->pause_at && !r->paused && r->body >= r->pause_at) {
        r->paused = 1;
        return TT_BODY_PAUSE;
    }
    return 0;
}

typedef struct fx {
    int lfd, port, sfd;
    tt_client *c;
    char url[64];
    tt_exchange x;
    rec r;
} fx;

static void setup(fx *f, const tt_client_opts *o)
{
    memset(f, 0, sizeof *f);
    f->lfd = listener(&f->port);
    f->sfd = -1;
    cr_assert_eq(tt_client_new(&f->c, o), 0);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/p", f->port);
    tt_exchange_init(&f->x);
    f->x.url = f->url;
    f->x.data = &f->r;
    f->x.on_done = on_done;
    f->x.on_head = on_head;
    f->x.on_info = on_info;
    f->r.hash = 1469598103934665603ull;
}

static void teardown(fx *f)
{
    tt_exchange_cleanup(&f->x);
    tt_client_free(f->c);
    if (f->sfd >= 0) close(f->sfd);
    close(f->lfd);
}

/* Start f's exchange, accept its connection and read its head (into buf). */
static void start_and_read_head(fx *f, char *buf, size_t cap, size_t *len)
{
    cr_assert_eq(tt_client_start(f->c, &f->x), 0, "%s", f->x.error_what);
    f->sfd = accept_one(f->lfd, f->c);
    *len = 0;
    read_until(f->sfd, f->c, buf, cap, len, "\r\n\r\n");
}

/* The server answers 200 with no body; the exchange completes without error. */
static void answer_ok(fx *f)
{
    send_str(f->sfd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    run_until(f->c, &f->r.done);
    cr_assert_eq(f->x.error, 0, "%s", f->x.error_what);
}

/* ---- on_head, on_info ---- */

Test(flow, on_head_comes_before_the_body_with_status_and_fields)
{
    fx f;
    setup(&f, NULL);
    f.x.on_body = on_body;
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    send_str(f.sfd, "HTTP/1.1 201 Created\r\nX-A: yes\r\nContent-Length: 5\r\n\r\nhello");
    run_until(f.c, &f.r.done);
    cr_assert_eq(f.x.error, 0, "%s", f.x.error_what);
    cr_assert_eq(f.r.heads, 1);
    cr_assert_eq(f.r.head_status, 201);
    cr_assert_str_eq(f.r.xa, "yes");
    cr_assert_eq(f.r.head_framing, TT_FRAMING_LENGTH);
    cr_assert_eq(f.r.body_at_head, 0);
    cr_assert_eq(f.r.body, 5);
    cr_assert(f.x.conn_kept);

    /* HEAD and 204: on_head too, no body */
    const char *resp[] = {"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
                          "HTTP/1.1 204 No Content\r\n\r\n"};
    const char *meth[] = {"HEAD", "DELETE"};
    for (int i = 0; i < 2; i++) {
        memset(&f.r, 0, sizeof f.r);
        f.x.method = meth[i];
        cr_assert_eq(tt_client_start(f.c, &f.x), 0);
        len = 0;
        read_until(f.sfd, f.c, buf, sizeof buf, &len, "\r\n\r\n");
        send_str(f.sfd, resp[i]);
        run_until(f.c, &f.r.done);
        cr_assert_eq(f.x.error, 0, "%s", f.x.error_what);
        cr_assert_eq(f.r.heads, 1);
        cr_assert_eq(f.r.head_framing, TT_FRAMING_NONE);
        cr_assert_eq(f.r.body, 0);
        cr_assert(f.x.reused);
    }
    teardown(&f);
}

Test(flow, on_info_gets_each_interim_head_raw)
{
    fx f;
    setup(&f, NULL);
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    send_str(f.sfd, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                    "HTTP/1.1 102 Processing\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    run_until(f.c, &f.r.done);
    cr_assert_eq(f.x.error, 0, "%s", f.x.error_what);
    cr_assert_eq(f.r.infos, 2);
    cr_assert_eq(f.x.informational, 2);
    cr_assert_eq(f.r.info_status[0], 103);
    cr_assert_str_eq(f.r.info_head[0],
                     "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
    cr_assert_eq(f.r.info_status[1], 102);
    cr_assert_str_eq(f.r.info_head[1], "HTTP/1.1 102 Processing\r\n\r\n");
    cr_assert_eq(f.r.heads, 1);
    cr_assert_str_eq(f.x.resp_body, "ok");
    teardown(&f);
}

Test(flow, aborts_from_on_head_and_on_info_close_the_connection)
{
    for (int which = 0; which < 2; which++) {
        fx f;
        setup(&f, NULL);
        f.r.abort_head = which == 0;
        f.r.abort_info = which == 1;
        char buf[4096];
        size_t len;
        start_and_read_head(&f, buf, sizeof buf, &len);
        send_str(f.sfd,
                 "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        run_until(f.c, &f.r.done);
        cr_assert_eq(f.x.error, -ECANCELED);
        cr_assert_str_eq(f.x.error_what, which ? "aborted by on_info" : "aborted by on_head");
        cr_assert_not(f.x.conn_kept);
        cr_assert_eq(f.x.retries, 0);
        teardown(&f);
    }
}

/* ---- pausing a response ---- */

enum { BIG = 10 * 1024 * 1024 };

/* Byte i of the big body. */
static char big_byte(size_t i)
{
    return (char)((i * 31u + (i >> 9)) & 0xff);
}

/* Send the big body from *off as far as the socket takes it now; returns 1 when all is sent. */
static int big_send(int fd, size_t *off)
{
    static char blk[65536];
    while (*off < BIG) {
        size_t n = BIG - *off < sizeof blk ? BIG - *off : sizeof blk;
        for (size_t i = 0; i < n; i++)
            blk[i] = big_byte(*off + i);
        ssize_t w = send(fd, blk, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0) return 0; /* full (or closed by the client: its outcome says why) */
        *off += (size_t)w;
    }
    return 1;
}

Test(flow, pause_stops_reading_and_resume_delivers_the_rest_intact, .timeout = 120)
{
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.head_timeout_ms = 400; /* the pause lasts longer: it must not time out while paused */
    fx f;
    setup(&f, &o);
    f.x.on_body = on_body;
    f.r.pause_at = 256 * 1024; /* early: the receive buffer has not grown much (autotuning) */
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    int small = 65536;
    setsockopt(f.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    char head[128];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG);
    send_str(f.sfd, head);
    size_t off = 0;
    for (int i = 0; i < 20000 && !f.r.paused; i++) {
        big_send(f.sfd, &off);
        tt_client_wait(f.c, 1);
    }
    cr_assert(f.r.paused, "not paused: done %d %s, %zu bytes", f.r.done, f.x.error_what, f.r.body);
    cr_assert_eq(tt_exchange_resume(&f.x), 0);
    cr_assert_eq(tt_exchange_resume(&f.x), 0); /* asked twice: one resume */
    /* resume was asked from outside on_body: undo by pausing again at the next delivery */
    size_t at = f.r.body;
    f.r.paused = 0;
    f.r.pause_at = at + 1;
    for (int i = 0; i < 20000 && !f.r.paused; i++) {
        big_send(f.sfd, &off);
        tt_client_wait(f.c, 1);
    }
    cr_assert(f.r.paused, "not paused: done %d %s, %zu bytes", f.r.done, f.x.error_what, f.r.body);
    /* Paused: the server fills the socket buffers and then cannot send any more; the client
     * receives nothing more; the head timeout (400 ms) does not fire over ~1.5 s. */
    at = f.r.body;
    int finished = 0;
    for (int i = 0; i < 300; i++) {
        finished |= big_send(f.sfd, &off);
        tt_client_wait(f.c, 5);
    }
    cr_assert_not(finished, "the server sent the whole body while the client was paused");
    cr_assert_lt(off, BIG);
    cr_assert_eq(f.r.body, at, "bytes delivered while paused");
    cr_assert_eq(f.r.done, 0, "failed while paused: %s", f.x.error_what);
    cr_assert_eq(tt_exchange_body_ready(&f.x), -EINVAL);
    /* resume: the rest flows, and the body is intact */
    f.r.pause_at = 0;
    cr_assert_eq(tt_exchange_resume(&f.x), 0);
    cr_assert_eq(f.r.body, at, "resume delivered inside the call");
    for (int i = 0; i < 40000 && !f.r.done; i++) {
        big_send(f.sfd, &off);
        tt_client_wait(f.c, 1);
    }
    cr_assert(f.r.done);
    cr_assert_eq(f.x.error, 0, "%s", f.x.error_what);
    cr_assert_eq(f.r.body, BIG);
    uint64_t want = 1469598103934665603ull;
    for (size_t i = 0; i < BIG; i++) {
        char ch = big_byte(i);
        want = fnv(want, &ch, 1);
    }
    cr_assert_eq(f.r.hash, want, "body corrupted");
    cr_assert(f.x.conn_kept);
    cr_assert_eq(tt_exchange_resume(&f.x), -EINVAL);
    teardown(&f);
}

/* Pauses at every delivery; with r->pause_at set (used as a switch here) it asks to resume at
 * once, from inside the call, as a proxy whose client socket drained meanwhile does. */
static int pause_always(tt_exchange *x, const char *data, size_t len)
{
    rec *r = x->data;
    cr_assert_eq(r->depth, 0, "on_body re-entered");
    r->depth++;
    r->body += len;
    r->paused++;
    if (r->pause_at) cr_assert_eq(tt_exchange_resume(x), 0);
    r->depth--;
    return TT_BODY_PAUSE;
}

Test(flow, paused_chunked_body_resumes_from_outside_or_inside_on_body_trailers_kept)
{
    for (int inside = 0; inside < 2; inside++) {
        fx f;
        setup(&f, NULL);
        f.x.on_body = pause_always;
        f.r.pause_at = (size_t)inside;
        char buf[4096];
        size_t len;
        start_and_read_head(&f, buf, sizeof buf, &len);
        send_str(f.sfd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
        for (int i = 0; i < 2000 && !f.r.paused; i++)
            tt_client_wait(f.c, 5);
        cr_assert_eq(f.r.paused, 1);
        send_str(f.sfd, "2\r\nde\r\n0\r\nX-T: 1\r\n\r\n");
        if (!inside) {
            for (int i = 0; i < 40; i++)
                tt_client_wait(f.c, 5);
            cr_assert_eq(f.r.body, 3, "delivered while paused");
            cr_assert_eq(tt_exchange_resume(&f.x), 0);
            cr_assert_eq(f.r.body, 3, "delivered inside tt_exchange_resume");
        }
        run_until(f.c, &f.r.done);
        cr_assert_eq(f.x.error, 0, "%s", f.x.error_what);
        cr_assert_eq(f.r.body, 5);
        cr_assert_eq(f.r.head_framing, TT_FRAMING_CHUNKED);
        cr_assert_str_eq(f.x.trailers, "X-T: 1\r\n");
        cr_assert(f.x.conn_kept);
        teardown(&f);
    }
}

/* ---- streamed request bodies ---- */

typedef struct prod {
    const char *pieces[8];
    int n, next, avail, calls, eagain, rewinds;
    int over; /* keep producing past the end */
} prod;

/* Produce the next available piece, -EAGAIN when the test has not made one available. */
static ssize_t prod_read(void *data, char *buf, size_t cap)
{
    prod *p = data;
    p->calls++;
    if (p->over) {
        memset(buf, 'z', cap);
        return (ssize_t)cap;
    }
    if (p->next >= p->avail) {
        p->eagain++;
        return -EAGAIN;
    }
    if (p->next == p->n) return 0;
    const char *s = p->pieces[p->next++];
    size_t l = strlen(s);
    cr_assert_leq(l, cap);
    memcpy(buf, s, l);
    return (ssize_t)l;
}

/* f's request: method with a body streamed from p. */
static void streamed(fx *f, prod *p, const char *method)
{
    f->x.method = method;
    f->x.body_read = prod_read;
    f->x.body_data = p;
}

/* Make one more piece (or the end) available and tell the exchange. */
static void prod_more(fx *f, prod *p)
{
    p->avail++;
    cr_assert_eq(tt_exchange_body_ready(&f->x), 0);
    cr_assert_eq(tt_exchange_body_ready(&f->x), -EINVAL); /* not waiting any more */
}

Test(flow, streamed_chunked_body_waits_for_body_ready_and_sends_trailers)
{
    fx f;
    setup(&f, NULL);
    prod p = {.pieces = {"hello ", "world"}, .n = 2};
    const char *trl[] = {"X-Sum: 123", "X-Other: a b"};
    streamed(&f, &p, "POST");
    f.x.body_trailers = trl;
    f.x.nbody_trailers = 2;
    char buf[4096];
    size_t len;
    /* the head goes out at once although the producer has nothing yet */
    start_and_read_head(&f, buf, sizeof buf, &len);
    cr_assert(strstr(buf, "Transfer-Encoding: chunked\r\n"), "%s", buf);
    cr_assert_eq(p.eagain, 1);
    for (int i = 0; i < 20; i++)
        tt_client_wait(f.c, 5);
    cr_assert_eq(p.calls, 1, "body_read called again without body_ready");
    char *body = strstr(buf, "\r\n\r\n") + 4;
    cr_assert_str_eq(body, "");
    prod_more(&f, &p);
    cr_assert_eq(p.calls, 1, "body_read called inside tt_exchange_body_ready");
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "6\r\nhello \r\n");
    prod_more(&f, &p);
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "5\r\nworld\r\n");
    prod_more(&f, &p); /* the end */
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "0\r\nX-Sum: 123\r\nX-Other: a b\r\n\r\n");
    body = strstr(buf, "\r\n\r\n") + 4;
    cr_assert_str_eq(body, "6\r\nhello \r\n5\r\nworld\r\n0\r\nX-Sum: 123\r\nX-Other: a b\r\n\r\n");
    answer_ok(&f);
    cr_assert(f.x.conn_kept);
    teardown(&f);
}

Test(flow, streamed_content_length_body_is_sent_exactly)
{
    fx f;
    setup(&f, NULL);
    prod p = {.pieces = {"hello ", "world"}, .n = 2, .avail = 1};
    streamed(&f, &p, "PUT");
    f.x.body_stream_len = 11;
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    cr_assert(strstr(buf, "Content-Length: 11\r\n"), "%s", buf);
    cr_assert_null(strstr(buf, "Transfer-Encoding"));
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "hello ");
    prod_more(&f, &p);
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "world");
    prod_more(&f, &p);
    for (int i = 0; i < 20; i++)
        tt_client_wait(f.c, 5);
    len += read_now(f.sfd, buf + len, sizeof buf - 1 - len);
    buf[len] = 0;
    cr_assert_str_eq(strstr(buf, "\r\n\r\n") + 4, "hello world");
    answer_ok(&f);
    cr_assert(f.x.conn_kept);
    teardown(&f);
}

Test(flow, streamed_content_length_too_short_or_too_long_fails_with_eproto)
{
    for (int which = 0; which < 2; which++) {
        fx f;
        setup(&f, NULL);
        prod p = {.pieces = {"hello"}, .n = 1, .avail = 2, .over = which};
        streamed(&f, &p, "POST");
        f.x.body_stream_len = which ? 3 : 11;
        cr_assert_eq(tt_client_start(f.c, &f.x), 0);
        f.sfd = accept_one(f.lfd, f.c);
        run_until(f.c, &f.r.done);
        cr_assert_eq(f.x.error, -EPROTO);
        cr_assert_str_eq(f.x.error_what, which ? "request body longer than announced"
                                               : "request body shorter than announced");
        cr_assert_not(f.x.conn_kept);
        cr_assert_eq(f.x.retries, 0);
        /* the server saw at most the announced bytes, then the close */
        char buf[4096];
        size_t len = 0;
        read_until(f.sfd, f.c, buf, sizeof buf, &len, "\r\n\r\n");
        for (int i = 0; i < 50; i++) {
            ssize_t n = recv(f.sfd, buf + len, sizeof buf - 1 - len, MSG_DONTWAIT);
            if (n == 0) break;
            if (n > 0) len += (size_t)n;
            tt_client_wait(f.c, 5);
        }
        buf[len] = 0;
        cr_assert_str_eq(strstr(buf, "\r\n\r\n") + 4, which ? "zzz" : "hello");
        teardown(&f);
    }
}

Test(flow, expect_continue_with_a_streamed_body)
{
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.continue_timeout_ms = TT_OFF; /* wait for the 100 (up to the head timeout) */
    fx f;
    setup(&f, &o);
    prod p = {.pieces = {"abc"}, .n = 1, .avail = 2};
    streamed(&f, &p, "POST");
    f.x.expect_continue = 1;
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    cr_assert(strstr(buf, "Expect: 100-continue\r\n"), "%s", buf);
    for (int i = 0; i < 20; i++)
        tt_client_wait(f.c, 5);
    cr_assert_eq(read_now(f.sfd, buf + len, sizeof buf - 1 - len), 0, "body before 100");
    cr_assert_eq(p.calls, 0);
    send_str(f.sfd, "HTTP/1.1 100 Continue\r\n\r\n");
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "0\r\n\r\n");
    cr_assert_str_eq(strstr(buf, "\r\n\r\n") + 4, "3\r\nabc\r\n0\r\n\r\n");
    answer_ok(&f);
    cr_assert_eq(f.r.infos, 1);
    cr_assert_eq(f.r.info_status[0], 100);
    cr_assert_str_eq(f.r.info_head[0], "HTTP/1.1 100 Continue\r\n\r\n");
    teardown(&f);
}

Test(flow, bad_trailers_are_refused)
{
    fx f;
    setup(&f, NULL);
    prod p = {.n = 0, .avail = 1};
    streamed(&f, &p, "POST");
    const char *bad[][1] = {{"Content-Length: 5"},
                            {"X-A: a\r\nX-B: b"},
                            {"Bad Name: v"},
                            {"Transfer-Encoding: gzip"},
                            {"Host: evil"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f.x.body_trailers = bad[i];
        f.x.nbody_trailers = 1;
        cr_assert_eq(tt_client_start(f.c, &f.x), -EINVAL, "%s", bad[i][0]);
        cr_assert_str_eq(f.x.error_what, "bad trailer");
    }
    /* set after the start (read at the end of the body): the exchange fails, nothing sent */
    const char *good[] = {"X-Ok: 1"};
    f.x.body_trailers = good;
    cr_assert_eq(tt_client_start(f.c, &f.x), 0);
    good[0] = "Content-Length: 5";
    f.sfd = accept_one(f.lfd, f.c);
    run_until(f.c, &f.r.done);
    cr_assert_eq(f.x.error, -EINVAL);
    cr_assert_str_eq(f.x.error_what, "bad trailer");
    cr_assert_not(f.x.conn_kept);
    teardown(&f);
}

Test(flow, an_early_answer_ends_a_waiting_streamed_body)
{
    fx f;
    setup(&f, NULL);
    prod p = {.pieces = {"x"}, .n = 1};
    streamed(&f, &p, "PUT");
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    cr_assert_eq(p.eagain, 1);
    send_str(f.sfd, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
    run_until(f.c, &f.r.done);
    cr_assert_eq(f.x.error, 0, "%s", f.x.error_what);
    cr_assert_eq(f.x.status, 413);
    cr_assert_not(f.x.conn_kept, "kept with the request body unsent");
    cr_assert_eq(tt_exchange_body_ready(&f.x), -EINVAL);
    teardown(&f);
}

static ssize_t prod_fail(void *data, char *buf, size_t cap)
{
    return -EIO;
}

Test(flow, a_producer_error_fails_the_exchange_without_retry)
{
    fx f;
    setup(&f, NULL);
    f.x.method = "PUT"; /* idempotent: still not retried, the body itself failed */
    f.x.body_read = prod_fail;
    cr_assert_eq(tt_client_start(f.c, &f.x), 0);
    f.sfd = accept_one(f.lfd, f.c);
    run_until(f.c, &f.r.done);
    cr_assert_eq(f.x.error, -EIO);
    cr_assert_str_eq(f.x.error_what, "request body");
    cr_assert_eq(f.x.retries, 0);
    cr_assert_not(f.x.conn_kept);
    teardown(&f);
}

static int prod_rewind(void *data)
{
    prod *p = data;
    p->rewinds++;
    p->next = 0;
    return 0;
}

Test(flow, a_streamed_body_is_replayed_only_with_body_rewind)
{
    for (int rewind = 1; rewind >= 0; rewind--) {
        fx f;
        setup(&f, NULL);
        prod p = {.pieces = {"hello ", "world"}, .n = 2, .avail = 3};
        streamed(&f, &p, "PUT"); /* idempotent */
        if (rewind) f.x.body_rewind = prod_rewind;
        const char *want = "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
        char buf[4096];
        size_t len;
        start_and_read_head(&f, buf, sizeof buf, &len);
        read_until(f.sfd, f.c, buf, sizeof buf, &len, "0\r\n\r\n");
        cr_assert_str_eq(strstr(buf, "\r\n\r\n") + 4, want);
        close(f.sfd); /* no response: the request was maybe processed */
        f.sfd = -1;
        if (!rewind) {
            run_until(f.c, &f.r.done);
            cr_assert_eq(f.x.error, -ECONNRESET, "%d %s", f.x.error, f.x.error_what);
            cr_assert_eq(f.x.sent_state, TT_MAYBE_PROCESSED);
            cr_assert_eq(f.x.retries, 0);
            teardown(&f);
            continue;
        }
        f.sfd = accept_one(f.lfd, f.c); /* the replay, on a fresh connection */
        len = 0;
        read_until(f.sfd, f.c, buf, sizeof buf, &len, "0\r\n\r\n");
        cr_assert_str_eq(strstr(buf, "\r\n\r\n") + 4, want);
        answer_ok(&f);
        cr_assert_eq(f.x.retries, 1);
        cr_assert_eq(f.x.retry_reason, TT_RETRY_MAYBE_PROCESSED);
        cr_assert_eq(p.rewinds, 1);
        teardown(&f);
    }
}

Test(flow, the_head_deadline_runs_from_the_last_streamed_body_byte, .timeout = 60)
{
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.head_timeout_ms = 1000;
    fx f;
    setup(&f, &o);
    prod p = {.pieces = {"a", "b", "c", "d", "e", "f", "g", "h"}, .n = 8, .avail = 1};
    streamed(&f, &p, "POST");
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len);
    /* a piece every ~150 ms: the body takes longer than the head timeout, never a gap */
    for (int piece = 1; piece <= 8; piece++) {
        for (int i = 0; i < 30; i++)
            tt_client_wait(f.c, 5);
        cr_assert_eq(f.r.done, 0, "failed while streaming: %s", f.x.error_what);
        prod_more(&f, &p);
    }
    read_until(f.sfd, f.c, buf, sizeof buf, &len, "0\r\n\r\n");
    answer_ok(&f);
    teardown(&f);
}

/* Count occurrences of s in buf. */
static int count_of(const char *buf, const char *s)
{
    int n = 0;
    for (const char *p = buf; (p = strstr(p, s)); p += strlen(s))
        n++;
    return n;
}

Test(flow, pausing_a_pipelined_exchange_pauses_the_connection)
{
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.pipelining = 4;
    o.max_per_route = 1;
    fx f;
    setup(&f, &o);
    char buf[4096];
    size_t len;
    start_and_read_head(&f, buf, sizeof buf, &len); /* a first exchange proves the connection */
    send_str(f.sfd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    run_until(f.c, &f.r.done);
    cr_assert(f.x.conn_kept);

    tt_exchange b, c;
    rec rb = {.hash = 1469598103934665603ull, .pause_at = 1};
    rec rc = {.hash = 1469598103934665603ull};
    tt_exchange *xs[] = {&b, &c};
    rec *rs[] = {&rb, &rc};
    for (int i = 0; i < 2; i++) {
        tt_exchange_init(xs[i]);
        xs[i]->url = f.url;
        xs[i]->data = rs[i];
        xs[i]->on_done = on_done;
        xs[i]->on_body = on_body;
        cr_assert_eq(tt_client_start(f.c, xs[i]), 0);
    }
    len = 0;
    buf[0] = 0;
    for (int i = 0; i < 2000 && count_of(buf, "\r\n\r\n") < 2; i++) {
        len += read_now(f.sfd, buf + len, sizeof buf - 1 - len);
        buf[len] = 0;
        tt_client_wait(f.c, 5);
    }
    cr_assert_eq(count_of(buf, "\r\n\r\n"), 2, "not pipelined: %s", buf);
    send_str(f.sfd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbb");
    for (int i = 0; i < 2000 && !rb.paused; i++)
        tt_client_wait(f.c, 5);
    cr_assert(rb.paused);
    send_str(f.sfd, "bbHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ncc");
    for (int i = 0; i < 40; i++)
        tt_client_wait(f.c, 5);
    cr_assert_eq(rb.body, 2);
    cr_assert_eq(rb.done + rc.done, 0, "completed while the connection was paused");
    cr_assert_eq(tt_exchange_resume(&b), 0);
    run_until(f.c, &rc.done);
    cr_assert(rb.done);
    cr_assert_eq(b.error, 0, "%s", b.error_what);
    cr_assert_eq(c.error, 0, "%s", c.error_what);
    cr_assert_eq(rb.body, 4);
    cr_assert_eq(rc.body, 2);
    cr_assert_eq(b.conn_id, c.conn_id);
    tt_exchange_cleanup(&b);
    tt_exchange_cleanup(&c);
    teardown(&f);
}
