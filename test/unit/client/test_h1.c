/* test_h1.c — the client's HTTP/1 exchange (lib/client/h1.c) on one end of a socketpair: the
 * request head it writes (through the one serializer, caller fields replacing generated ones,
 * never two framing fields, bad input refused), and the outcomes it returns for canned
 * responses: MORE, DONE, DONE_CLOSE, FAIL, WAIT_CONTINUE / CONTINUE, pipelined responses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_int.h"
#include "tether.h"

typedef struct fx {
    tt_client *c;
    tt__conn *k;
    int peer;
    tt_exchange x;
} fx;

static void noop_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)loop;
    (void)io;
    (void)ev;
}

static void bind_x(fx *f, tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    p->client = f->c;
    p->route = f->k->rt;
    tt__list_init(&p->qlink);
    const char *m = x->method ? x->method : "GET";
    p->method_id = (int)tt_http1_method_id(m, strlen(m));
}

static void setup(fx *f)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(tt_client_new(&f->c, NULL), 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    f->peer = sv[1];
    tt__conn *k = calloc(1, sizeof *k);
    k->c = f->c;
    k->rt = tt__pool_route(f->c, "example.com", 80);
    tt__list_init(&k->idle_link);
    tt__list_init(&k->pq);
    k->ka_max = k->ka_timeout = -1;
    cr_assert_eq(tt_stream_open(&k->s, tt_client_loop(f->c), sv[0], 1, noop_io, k), 0);
    f->k = k;
    tt_exchange_init(&f->x);
    f->x.url = "http://example.com/";
}

/* Build x's request, attach it to the connection and write it; returns the outcome. */
static int send_x(fx *f, tt_exchange *x, const char *path)
{
    bind_x(f, x);
    const char *what = NULL;
    cr_assert_eq(tt__h1_build(x, f->k->rt->hosthdr, path, &what), 0, "%s", what);
    if (!f->k->x) {
        f->k->x = f->k->w = x;
        tt__h1_reset(f->k);
    } else {
        tt__list_push_back(&f->k->pq, &tt__xp(x)->qlink);
        if (!f->k->w) f->k->w = x;
    }
    tt__h1_begin(x, f->k);
    return tt__h1_write(f->k);
}

/* What the peer received so far, NUL-terminated (static buffer). */
static const char *peer_got(fx *f)
{
    static char buf[8192];
    ssize_t n = recv(f->peer, buf, sizeof buf - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* The peer sends s; the connection reads it and h1 processes the buffer. */
static int feed(fx *f, const char *s)
{
    if (*s) cr_assert_eq(send(f->peer, s, strlen(s), 0), (ssize_t)strlen(s));
    ssize_t n = tt_stream_read_buf(&f->k->s, &f->k->rb, f->c->bp, TT__C_READ_CHUNK);
    return tt__h1_process(f->k, n == 0);
}

/* The collected body (not NUL-terminated before completion) equals s. */
static void body_is(const tt_exchange *x, const char *s)
{
    cr_assert_eq(x->resp_body_len, strlen(s));
    cr_assert_eq(memcmp(x->resp_body, s, x->resp_body_len), 0);
}

static void teardown(fx *f)
{
    tt_stream_close(&f->k->s, tt_client_loop(f->c), 0);
    tt_buf_release(&f->k->rb, f->c->bp);
    free(f->k);
    if (f->peer >= 0) close(f->peer);
    tt_exchange_cleanup(&f->x);
    tt_client_free(f->c);
}

Test(h1_request, head_through_the_serializer)
{
    fx f;
    setup(&f);
    const char *h[] = {"Accept: */*", "X-Trace:  a b  "};
    f.x.headers = h;
    f.x.nheaders = 2;
    cr_assert_eq(send_x(&f, &f.x, "/p?q=1#frag"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                                   "X-Trace: a b\r\n\r\n");
    cr_assert_eq(tt__xp(&f.x)->phase, TT_X_READING);
    teardown(&f);
}

Test(h1_request, query_without_a_path_gets_the_root)
{
    fx f;
    setup(&f);
    cr_assert_eq(send_x(&f, &f.x, "?q=1#frag"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "GET /?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    teardown(&f);
}

Test(h1_request, caller_fields_replace_generated_ones_and_framing_is_never_doubled)
{
    fx f;
    setup(&f);
    /* Host: the caller's replaces ours. Framing and Connection are the library's: the caller's
     * are dropped (a wrong Content-Length would desynchronise the connection). */
    const char *h[] = {"host: other:81", "Connection: keep-alive", "Content-Length: 7",
                       "Transfer-Encoding: chunked"};
    f.x.method = "POST";
    f.x.headers = h;
    f.x.nheaders = 4;
    f.x.body = "abc";
    f.x.body_len = 3;
    f.x.no_keepalive = 1; /* the pool's decision wins over the caller's keep-alive */
    cr_assert_eq(send_x(&f, &f.x, "/"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "POST / HTTP/1.1\r\nhost: other:81\r\nContent-Length: 3\r\n"
                                   "Connection: close\r\n\r\nabc");
    cr_assert(tt__xp(&f.x)->req_close);
    teardown(&f);
}

Test(h1_request, callers_connection_close_is_written_once_and_means_close)
{
    fx f;
    setup(&f);
    const char *h[] = {"Connection: Keep-Alive, close"};
    f.x.headers = h;
    f.x.nheaders = 1;
    cr_assert_eq(send_x(&f, &f.x, "/"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "GET / HTTP/1.1\r\nHost: example.com\r\n"
                                   "Connection: close\r\n\r\n");
    cr_assert(tt__xp(&f.x)->req_close);
    teardown(&f);
}

Test(h1_request, generated_fields)
{
    fx f;
    setup(&f);
    f.x.method = "PUT"; /* no body: Content-Length: 0 */
    f.x.no_keepalive = 1;
    cr_assert_eq(send_x(&f, &f.x, "/"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n");
    tt_exchange y;
    tt_exchange_init(&y);
    y.http10 = 1;
    f.k->x = f.k->w = NULL;
    cr_assert_eq(send_x(&f, &y, "/a"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f),
                     "GET /a HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n");
    tt_exchange_cleanup(&y);
    teardown(&f);
}

Test(h1_request, bad_header_or_request_line_is_refused_whole)
{
    fx f;
    setup(&f);
    static const struct {
        const char *method, *path, *hdr, *what;
    } rows[] = {
        {"GET", "/", "NoColon", "bad header"},
        {"GET", "/", "Bad Name: v", "bad header"},
        {"GET", "/", "X: a\r\nInjected: 1", "bad header"},
        {"G T", "/", "X: 1", "bad method"},
        {"GET\r\n", "/", "X: 1", "bad method"},
        {"GET", "/a b", "X: 1", "bad request line"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tt_exchange x;
        tt_exchange_init(&x);
        x.method = rows[i].method;
        x.headers = &rows[i].hdr;
        x.nheaders = 1;
        const char *what = NULL;
        cr_assert_eq(tt__h1_build(&x, "example.com", rows[i].path, &what), -EINVAL, "row %zu", i);
        cr_assert_str_eq(what, rows[i].what, "row %zu", i);
        tt_exchange_cleanup(&x);
    }
    /* through the public API: refused before anything starts, on_done never called */
    const char *bad[] = {"X: a\nB: c"};
    f.x.headers = bad;
    f.x.nheaders = 1;
    cr_assert_eq(tt_client_start(f.c, &f.x), -EINVAL);
    cr_assert_str_eq(f.x.error_what, "bad header");
    cr_assert_eq(tt_client_wait(f.c, -1), 0); /* nothing in flight */
    teardown(&f);
}

Test(h1_response, length_body_in_two_parts)
{
    fx f;
    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(
        feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=7\r\n\r\nab"),
        TT__H1_MORE);
    cr_assert_eq(f.x.status, 200);
    cr_assert_eq(feed(&f, "cde"), TT__H1_DONE);
    cr_assert_eq(f.x.resp_body_len, 5);
    body_is(&f.x, "abcde");
    cr_assert_eq(f.k->ka_timeout, 7);
    cr_assert_eq(f.k->rb.len, 0);
    teardown(&f);
}

Test(h1_response, pipelined_responses_in_one_read)
{
    fx f;
    setup(&f);
    tt_exchange y;
    tt_exchange_init(&y);
    cr_assert_eq(send_x(&f, &f.x, "/1"), TT__H1_MORE);
    cr_assert_eq(send_x(&f, &y, "/2"), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "GET /1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
                                   "GET /2 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    cr_assert_null(f.k->w);
    cr_assert_eq(feed(&f,
                      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
                      "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\nConnection: close\r\n\r\nB"),
                 TT__H1_DONE);
    body_is(&f.x, "A");
    cr_assert_gt(f.k->rb.len, 0); /* the second response waits in the buffer */
    tt__list_remove(&tt__xp(&y)->qlink);
    f.k->x = &y;
    tt__h1_reset(f.k);
    cr_assert_eq(tt__h1_process(f.k, 0), TT__H1_DONE);
    cr_assert_eq(y.status, 404);
    body_is(&y, "B");
    cr_assert(f.k->resp.flags & TT_HTTP1_F_CONN_CLOSE); /* the engine decides what follows */
    tt_exchange_cleanup(&y);
    teardown(&f);
}

Test(h1_response, close_delimited_body_ends_at_eof)
{
    fx f;
    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(feed(&f, "HTTP/1.0 200 OK\r\n\r\nabc"), TT__H1_MORE);
    shutdown(f.peer, SHUT_WR);
    cr_assert_eq(feed(&f, ""), TT__H1_DONE_CLOSE);
    body_is(&f.x, "abc");
    teardown(&f);
}

Test(h1_response, eof_before_or_inside_the_head_fails)
{
    fx f;
    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(feed(&f, "HTTP/1.1 200 OK\r\nContent-"), TT__H1_MORE);
    shutdown(f.peer, SHUT_WR);
    cr_assert_eq(feed(&f, ""), TT__H1_FAIL);
    cr_assert_eq(f.k->err, -EPROTO);
    cr_assert_str_eq(f.k->what, "truncated response head");
    teardown(&f);

    setup(&f);
    send_x(&f, &f.x, "/");
    shutdown(f.peer, SHUT_WR);
    cr_assert_eq(feed(&f, ""), TT__H1_FAIL);
    cr_assert_eq(f.k->err, -ECONNRESET);
    teardown(&f);
}

Test(h1_response, eof_mid_body_and_bad_input_fail)
{
    fx f;
    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab"), TT__H1_MORE);
    shutdown(f.peer, SHUT_WR);
    cr_assert_eq(feed(&f, ""), TT__H1_FAIL);
    cr_assert_str_eq(f.k->what, "connection closed mid-body");
    cr_assert(tt__xp(&f.x)->resp_bytes);
    teardown(&f);

    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(feed(&f, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"), TT__H1_FAIL);
    cr_assert_eq(f.k->err, -EPROTO);
    teardown(&f);

    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(feed(&f, "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), TT__H1_FAIL);
    teardown(&f);
}

Test(h1_response, chunked_with_trailers)
{
    fx f;
    setup(&f);
    send_x(&f, &f.x, "/");
    cr_assert_eq(feed(&f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
                 TT__H1_MORE);
    cr_assert_eq(feed(&f, "0\r\nX-Sum: 9\r\n\r\n"), TT__H1_DONE);
    body_is(&f.x, "abc");
    cr_assert_str_eq(f.x.trailers, "X-Sum: 9\r\n");
    teardown(&f);
}

Test(h1_response, expect_continue_waits_then_sends_the_body)
{
    fx f;
    setup(&f);
    f.x.method = "PUT";
    f.x.body = "abc";
    f.x.body_len = 3;
    f.x.expect_continue = 1;
    cr_assert_eq(send_x(&f, &f.x, "/"), TT__H1_WAIT_CONTINUE);
    cr_assert_str_eq(peer_got(&f), "PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n"
                                   "Expect: 100-continue\r\n\r\n");
    cr_assert_eq(feed(&f, "HTTP/1.1 100 Continue\r\n\r\n"), TT__H1_CONTINUE);
    tt__x_set_phase(&f.x, TT_X_SENDING); /* what the engine does on CONTINUE */
    cr_assert_eq(tt__h1_write(f.k), TT__H1_MORE);
    cr_assert_str_eq(peer_got(&f), "abc");
    cr_assert_eq(feed(&f, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), TT__H1_DONE);
    cr_assert_eq(f.x.status, 201);
    cr_assert_eq(f.x.informational, 1);
    teardown(&f);
}
