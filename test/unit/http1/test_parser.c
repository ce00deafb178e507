/* test_parser.c — the HTTP/1.1 engine's API: parsed fields, framing and connection flags,
 * limits, buffer moves between calls, the chunked decoder and encoder, serializers, Date and
 * Keep-Alive. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tether/http1.h"

#define LIT(s) s, sizeof(s) - 1

static tt_header hdrs[128];

static int preq(const char *s, size_t n, tt_http1_request *r, tt_http1_parser *p,
                const tt_http1_limits *lim)
{
    tt_http1_parser_init(p, lim);
    memset(r, 0, sizeof(*r));
    r->headers = hdrs;
    r->max_headers = 128;
    return tt_http1_parse_request(p, s, n, r);
}

static int streq(const char *a, size_t n, const char *b)
{
    return n == strlen(b) && !memcmp(a, b, n);
}

Test(parser, fields)
{
    static const char s[] = "POST /a?b=c HTTP/1.1\r\nHost: ex.com:80\r\nX-A:  v a l  \r\n"
                            "Content-Length: 3\r\n\r\nabc";
    tt_http1_parser p;
    tt_http1_request r;
    int n = preq(LIT(s), &r, &p, NULL);
    cr_assert_eq(n, (int)sizeof(s) - 1 - 3);
    cr_assert(streq(r.method, r.method_len, "POST"));
    cr_assert_eq(r.method_id, TT_HTTP1_M_POST);
    cr_assert(streq(r.target, r.target_len, "/a?b=c"));
    cr_assert_eq(r.target_form, TT_HTTP1_TARGET_ORIGIN);
    cr_assert_eq(r.minor_version, 1);
    cr_assert_eq(r.num_headers, 3);
    cr_assert(streq(r.headers[1].name, r.headers[1].name_len, "X-A"));
    cr_assert(streq(r.headers[1].value, r.headers[1].value_len, "v a l"));
    cr_assert(streq(r.host, r.host_len, "ex.com:80"));
    cr_assert_eq(r.body, TT_HTTP1_BODY_LENGTH);
    cr_assert_eq(r.content_length, 3);
    cr_assert(r.flags & TT_HTTP1_F_KEEP_ALIVE);
    cr_assert(r.flags & TT_HTTP1_F_HAS_CL);
    const tt_header *h = tt_http1_find_header(r.headers, r.num_headers, LIT("x-a"));
    cr_assert_not_null(h);
    cr_assert_null(tt_http1_find_header(r.headers, r.num_headers, LIT("x-b")));
}

Test(parser, connection_semantics)
{
    struct {
        const char *s;
        uint32_t set, clear;
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", TT_HTTP1_F_KEEP_ALIVE, TT_HTTP1_F_CONN_CLOSE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", TT_HTTP1_F_CONN_CLOSE,
         TT_HTTP1_F_KEEP_ALIVE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n", TT_HTTP1_F_CONN_CLOSE,
         TT_HTTP1_F_KEEP_ALIVE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: ,close,\r\n\r\n",
         TT_HTTP1_F_CONN_CLOSE, TT_HTTP1_F_KEEP_ALIVE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", TT_HTTP1_F_KEEP_ALIVE,
         TT_HTTP1_F_CONN_CLOSE},
        {"GET / HTTP/1.0\r\n\r\n", 0, TT_HTTP1_F_KEEP_ALIVE},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
         TT_HTTP1_F_KEEP_ALIVE | TT_HTTP1_F_CONN_KEEPALIVE, 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", TT_HTTP1_F_CONN_CLOSE,
         TT_HTTP1_F_KEEP_ALIVE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
         TT_HTTP1_F_UPGRADE | TT_HTTP1_F_CONN_UPGRADE, 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 0, TT_HTTP1_F_UPGRADE},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", TT_HTTP1_F_CONN_UPGRADE,
         TT_HTTP1_F_UPGRADE},
        {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
         TT_HTTP1_F_EXPECT_CONTINUE, TT_HTTP1_F_EXPECT_OTHER},
        {"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", 0,
         TT_HTTP1_F_EXPECT_CONTINUE},
        {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n", TT_HTTP1_F_EXPECT_OTHER,
         TT_HTTP1_F_EXPECT_CONTINUE},
        {"GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n", TT_HTTP1_F_KEEPALIVE_HDR, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        tt_http1_parser p;
        tt_http1_request r;
        int n = preq(t[i].s, strlen(t[i].s), &r, &p, NULL);
        cr_assert_eq(n, (int)strlen(t[i].s), "%s: %d %s", t[i].s, n, tt_http1_error_name(p.error));
        cr_assert_eq(r.flags & t[i].set, t[i].set, "%s: flags %x", t[i].s, r.flags);
        cr_assert_eq(r.flags & t[i].clear, 0, "%s: flags %x", t[i].s, r.flags);
    }
}

Test(parser, target_forms)
{
    tt_http1_parser p;
    tt_http1_request r;
    cr_assert_gt(preq(LIT("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), &r, &p, NULL), 0);
    cr_assert_eq(r.target_form, TT_HTTP1_TARGET_ASTERISK);
    cr_assert_gt(preq(LIT("CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n"), &r, &p, NULL), 0);
    cr_assert_eq(r.target_form, TT_HTTP1_TARGET_AUTHORITY);
    cr_assert_eq(r.method_id, TT_HTTP1_M_CONNECT);
    cr_assert_gt(preq(LIT("GET https://a.b/x HTTP/1.1\r\nHost: a.b\r\n\r\n"), &r, &p, NULL), 0);
    cr_assert_eq(r.target_form, TT_HTTP1_TARGET_ABSOLUTE);
}

Test(parser, minor_versions_and_long_methods)
{
    tt_http1_parser p;
    tt_http1_request r;
    /* RFC 9110 §2.5: a higher minor version is served as the highest we implement */
    cr_assert_gt(preq(LIT("GET / HTTP/1.9\r\nHost: a\r\n\r\n"), &r, &p, NULL), 0);
    cr_assert_eq(r.minor_version, 1);
    cr_assert(r.flags & TT_HTTP1_F_KEEP_ALIVE);
    /* a method of TT_HTTP1_MAX_METHOD octets is a method; one more is 501 */
    cr_assert_gt(
        preq(LIT("MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM / HTTP/1.1\r\nHost: a\r\n\r\n"), &r, &p, NULL),
        0);
    cr_assert_eq(r.method_len, TT_HTTP1_MAX_METHOD);
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_METHOD_TOO_LONG), 501);
}

Test(parser, errors_and_statuses)
{
    struct {
        const char *s;
        tt_http1_error e;
    } t[] = {
        {"GET / HTTP/1.1\r\n\r\n", TT_HTTP1_E_HOST_MISSING},
        {"GET / HTTP/2.0\r\n", TT_HTTP1_E_VERSION_UNSUPPORTED},
        {"GET / HTTP/1.1\r\nHost: \r\n", TT_HTTP1_E_HOST_INVALID},
        {"GET /a#b HTTP/1.1\r\n", TT_HTTP1_E_TARGET},
        {"GET /a\\b HTTP/1.1\r\n", TT_HTTP1_E_TARGET},
        {"GET http://a/b#c HTTP/1.1\r\n", TT_HTTP1_E_TARGET},
        {"MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM", TT_HTTP1_E_METHOD_TOO_LONG},
        {"GET / HTTP/3.0", TT_HTTP1_E_VERSION_UNSUPPORTED},
        {"GET / HTTX", TT_HTTP1_E_VERSION},
        {"GET / HTTP/1.1\r\nHost: a\n", TT_HTTP1_E_EOL},
        {"GET / HTTP/1.1\r\nHost : a\r\n", TT_HTTP1_E_SPACE_BEFORE_COLON},
        {"GET / HTTP/1.1\r\nHost: a\r\n b\r\n", TT_HTTP1_E_OBS_FOLD},
        {"GET / HTTP/1.1\r\nX: \x01\r\n", TT_HTTP1_E_HEADER_VALUE},
        {"GET / HTTP/1.1\r\nX\x01: a\r\n", TT_HTTP1_E_HEADER_NAME},
        {"G@T / HTTP/1.1\r\n", TT_HTTP1_E_METHOD},
        {"GET * HTTP/1.1\r\n", TT_HTTP1_E_TARGET},
        {"GET  / HTTP/1.1\r\n", TT_HTTP1_E_REQUEST_LINE},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
         TT_HTTP1_E_CONTENT_LENGTH_CONFLICT},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n", TT_HTTP1_E_CONTENT_LENGTH},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         TT_HTTP1_E_TE_WITH_CL},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TT_HTTP1_E_TE_HTTP10},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
         TT_HTTP1_E_TE_NOT_CHUNKED},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         TT_HTTP1_E_TE_UNKNOWN},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", TT_HTTP1_E_HOST_DUPLICATE},
        {"GET / HTTP/1.1\r\nHost: u@a\r\n", TT_HTTP1_E_HOST_INVALID},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        tt_http1_parser p;
        tt_http1_request r;
        int n = preq(t[i].s, strlen(t[i].s), &r, &p, NULL);
        cr_assert_eq(n, -1, "%s -> %d", t[i].s, n);
        cr_assert_eq(p.error, t[i].e, "%s: %s", t[i].s, tt_http1_error_name(p.error));
        /* the error is sticky */
        cr_assert_eq(tt_http1_parse_request(&p, t[i].s, strlen(t[i].s), &r), -1);
    }
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_URI_TOO_LONG), 414);
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_HEAD_TOO_LARGE), 431);
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_TOO_MANY_HEADERS), 431);
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_BODY_TOO_LARGE), 413);
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_TE_UNKNOWN), 501);
    cr_assert_eq(tt_http1_error_status(TT_HTTP1_E_VERSION_UNSUPPORTED), 505);
    /* names are unique and not "unknown" */
    for (int a = 0; a < TT_HTTP1_E__COUNT; a++) {
        cr_assert_str_neq(tt_http1_error_name((tt_http1_error)a), "unknown");
        for (int b = a + 1; b < TT_HTTP1_E__COUNT; b++)
            cr_assert_str_neq(tt_http1_error_name((tt_http1_error)a),
                              tt_http1_error_name((tt_http1_error)b));
    }
    cr_assert_str_eq(tt_http1_error_name(TT_HTTP1_E__COUNT), "unknown");
}

Test(parser, limits)
{
    static char big[80000];
    tt_http1_parser p;
    tt_http1_request r;
    /* request line: 8192 bytes incl. CRLF pass, 8193 fail */
    size_t n = 0;
    n += (size_t)sprintf(big, "GET /");
    memset(big + n, 'a', 8192 - 5 - 11);
    n = 8192 - 11;
    n += (size_t)sprintf(big + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(preq(big, n, &r, &p, NULL), (int)n, "%s", tt_http1_error_name(p.error));
    cr_assert_eq(r.target_len, 8192 - 4 - 11);
    memmove(big + 1, big, n);
    big[0] = 'X'; /* method "XGET": one byte longer */
    cr_assert_eq(preq(big, n + 1, &r, &p, NULL), -1);
    cr_assert_eq(p.error, TT_HTTP1_E_URI_TOO_LONG);
    /* head: 64 KiB */
    n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + n, 'v', 70000);
    n += 70000;
    n += (size_t)sprintf(big + n, "\r\n\r\n");
    cr_assert_eq(preq(big, n, &r, &p, NULL), -1);
    cr_assert_eq(p.error, TT_HTTP1_E_HEAD_TOO_LARGE);
    cr_assert_eq(preq(big, 65536, &r, &p, NULL), -1); /* limit reached, no end: 431 */
    cr_assert_eq(preq(big, 65535, &r, &p, NULL), -2);
    cr_assert_eq(preq(big, 8192, &r, &p, NULL), -2);
    tt_http1_limits lim = {.max_head = 100000};
    cr_assert_eq(preq(big, n, &r, &p, &lim), (int)n);
    /* fields: 100 */
    n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 99; i++)
        n += (size_t)sprintf(big + n, "X%d: y\r\n", i);
    n += (size_t)sprintf(big + n, "\r\n");
    cr_assert_eq(preq(big, n, &r, &p, NULL), (int)n);
    cr_assert_eq(r.num_headers, 100);
    n -= 2;
    n += (size_t)sprintf(big + n, "Z: z\r\n\r\n");
    cr_assert_eq(preq(big, n, &r, &p, NULL), -1);
    cr_assert_eq(p.error, TT_HTTP1_E_TOO_MANY_HEADERS);
    /* the caller's array capacity is a limit too */
    tt_http1_parser_init(&p, NULL);
    tt_header two[2];
    memset(&r, 0, sizeof(r));
    r.headers = two;
    r.max_headers = 2;
    cr_assert_eq(
        tt_http1_parse_request(&p, LIT("GET / HTTP/1.1\r\nHost: a\r\nA: b\r\nC: d\r\n\r\n"), &r),
        -1);
    cr_assert_eq(p.error, TT_HTTP1_E_TOO_MANY_HEADERS);
    /* max_body -> 413 */
    tt_http1_limits lb = {.max_body = 10};
    cr_assert_eq(preq(LIT("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"), &r, &p, &lb),
                 -1);
    cr_assert_eq(tt_http1_error_status(p.error), 413);
}

/* The buffer moves and grows between calls: stored pointers follow it. */
Test(parser, buffer_moves_between_calls)
{
    static const char s[] = "GET /path HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nX-Long: "
                            "0123456789abcdef\r\n\r\n";
    size_t n = sizeof(s) - 1;
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    tt_http1_request r;
    memset(&r, 0, sizeof(r));
    r.headers = hdrs;
    r.max_headers = 128;
    char *prev = NULL;
    int rc = -2;
    for (size_t have = 7; rc == -2; have += 7) {
        if (have > n) have = n;
        char *b = malloc(have + 64);
        memset(b, '#', have + 64);
        memcpy(b + 32, s, have);
        rc = tt_http1_parse_request(&p, b + 32, have, &r);
        if (prev) {
            memset(prev, 'Z', have + 57); /* poison the old copy */
            free(prev);
        }
        prev = b;
        if (rc != -2) break;
    }
    cr_assert_eq(rc, (int)n);
    cr_assert(streq(r.method, r.method_len, "GET"));
    cr_assert(streq(r.target, r.target_len, "/path"));
    cr_assert(streq(r.host, r.host_len, "example"));
    cr_assert_eq(r.num_headers, 3);
    cr_assert(streq(r.headers[1].value, r.headers[1].value_len, "*/*"));
    cr_assert(streq(r.headers[2].value, r.headers[2].value_len, "0123456789abcdef"));
    free(prev);
}

/* A resumed parse does not rescan: the accepted offset only grows, and one call per byte
 * over a 60 KB head is linear (pos advances by exactly one each time). */
Test(parser, resume_does_not_rescan)
{
    static char big[62000];
    size_t n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + n, 'v', 60000);
    n += 60000;
    n += (size_t)sprintf(big + n, "\r\n\r\n");
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    tt_http1_request r;
    memset(&r, 0, sizeof(r));
    r.headers = hdrs;
    r.max_headers = 128;
    size_t last = 0;
    int rc = -2;
    for (size_t have = 1; have <= n && rc == -2; have++) {
        rc = tt_http1_parse_request(&p, big, have, &r);
        if (rc == -2) {
            cr_assert_geq(p.pos, last);
            cr_assert_geq(p.pos + 10, have); /* at most a version or a CRLF pending */
            last = p.pos;
        }
    }
    cr_assert_eq(rc, (int)n);
    cr_assert_eq(r.headers[1].value_len, 60000);
}

Test(parser, pipelined_and_leading_crlf)
{
    static const char s[] =
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    tt_http1_parser p;
    tt_http1_request r;
    int n = preq(LIT(s), &r, &p, NULL);
    cr_assert_gt(n, 0);
    int m = preq(s + n, sizeof(s) - 1 - (size_t)n, &r, &p, NULL);
    cr_assert_eq((size_t)(n + m), sizeof(s) - 1);
    cr_assert(streq(r.target, r.target_len, "/2"));
}

Test(parser, response)
{
    static const char s[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nServer: x\r\n\r\n";
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    tt_http1_response r;
    memset(&r, 0, sizeof(r));
    r.headers = hdrs;
    r.max_headers = 128;
    cr_assert_eq(tt_http1_parse_response(&p, LIT(s), TT_HTTP1_M_GET, &r), (int)sizeof(s) - 1);
    cr_assert_eq(r.status, 404);
    cr_assert(streq(r.reason, r.reason_len, "Not Found"));
    cr_assert_eq(r.body, TT_HTTP1_BODY_LENGTH);
    cr_assert_eq(r.content_length, 0);
    cr_assert(r.flags & TT_HTTP1_F_KEEP_ALIVE);
    static const char c[] = "HTTP/1.1 200 OK\r\n\r\n";
    tt_http1_parser_init(&p, NULL);
    cr_assert_gt(tt_http1_parse_response(&p, LIT(c), TT_HTTP1_M_GET, &r), 0);
    cr_assert_eq(r.body, TT_HTTP1_BODY_CLOSE);
    cr_assert_eq(r.flags & TT_HTTP1_F_KEEP_ALIVE, 0);
    static const char te[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    tt_http1_parser_init(&p, NULL);
    cr_assert_gt(tt_http1_parse_response(&p, LIT(te), TT_HTTP1_M_GET, &r), 0);
    cr_assert_eq(r.body, TT_HTTP1_BODY_CHUNKED);
    cr_assert_eq(r.flags & TT_HTTP1_F_KEEP_ALIVE, 0); /* TE+CL: do not reuse */
}

Test(chunked, decode_in_place_with_trailers_and_next_message)
{
    char buf[] = "4;x=\"y\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
                 "X-Sum: 12\r\nX-B:  z \r\n\r\nGET /next";
    tt_http1_chunked_decoder d;
    tt_header tr[4];
    memset(&d, 0, sizeof(d));
    d.trailers = tr;
    d.max_trailers = 4;
    tt_http1_chunked_init(&d);
    size_t out;
    long c = tt_http1_chunked_decode(&d, buf, sizeof(buf) - 1, &out);
    cr_assert_gt(c, 0);
    cr_assert(d.done);
    cr_assert_eq(out, 23);
    cr_assert(!memcmp(buf, "Wikipedia in\r\n\r\nchunks.", 23));
    cr_assert_str_eq(buf + c, "GET /next");
    cr_assert_eq(d.num_trailers, 2);
    cr_assert(streq(tr[0].name, tr[0].name_len, "X-Sum"));
    cr_assert(streq(tr[0].value, tr[0].value_len, "12"));
    cr_assert(streq(tr[1].value, tr[1].value_len, "z"));
    /* after done, nothing more is consumed */
    cr_assert_eq(tt_http1_chunked_decode(&d, buf + c, 9, &out), 0);
    cr_assert_eq(out, 0);
}

Test(chunked, partial_trailer_stays_unconsumed)
{
    char buf[] = "3\r\nabc\r\n0\r\nX-A: 1\r\nX-B";
    tt_http1_chunked_decoder d;
    tt_header tr[4];
    memset(&d, 0, sizeof(d));
    d.trailers = tr;
    d.max_trailers = 4;
    size_t out;
    long c = tt_http1_chunked_decode(&d, buf, sizeof(buf) - 1, &out);
    cr_assert_eq(c, 11); /* up to the start of the trailer section */
    cr_assert_eq(out, 3);
    cr_assert(!d.done);
    char more[] = "X-A: 1\r\nX-B: 2\r\n\r\n";
    c = tt_http1_chunked_decode(&d, more, sizeof(more) - 1, &out);
    cr_assert_eq(c, (long)sizeof(more) - 1);
    cr_assert(d.done);
    cr_assert_eq(d.num_trailers, 2);
    cr_assert(streq(tr[0].name, tr[0].name_len, "X-A"));
    cr_assert(streq(tr[1].value, tr[1].value_len, "2"));
}

Test(chunked, limits_and_errors)
{
    tt_http1_chunked_decoder d;
    size_t out;
    char ext[3000];
    memset(ext, 'a', sizeof(ext));
    memcpy(ext, "1;", 2);
    memset(&d, 0, sizeof(d));
    cr_assert_eq(tt_http1_chunked_decode(&d, ext, sizeof(ext), &out), -1);
    cr_assert_eq(d.error, TT_HTTP1_E_CHUNK_EXT);
    char ok[] = "1;aaaa\r\nx\r\n0\r\n\r\n";
    memset(&d, 0, sizeof(d));
    d.max_ext = 5;
    cr_assert_eq(tt_http1_chunked_decode(&d, ok, sizeof(ok) - 1, &out), -1);
    memset(&d, 0, sizeof(d));
    d.max_ext = 6;
    cr_assert_eq(tt_http1_chunked_decode(&d, ok, sizeof(ok) - 1, &out), (long)sizeof(ok) - 1);
    char tr[] = "0\r\nX: 1\r\nY: 2\r\n\r\n";
    memset(&d, 0, sizeof(d));
    d.max_trailer = 8;
    cr_assert_eq(tt_http1_chunked_decode(&d, tr, sizeof(tr) - 1, &out), -1);
    cr_assert_eq(tt_http1_error_status(d.error), 431);
    char tr2[] = "0\r\nX: 1\r\nY: 2\r\n\r\n";
    memset(&d, 0, sizeof(d)); /* no trailer array: validated, counted, dropped */
    cr_assert_eq(tt_http1_chunked_decode(&d, tr2, sizeof(tr2) - 1, &out), (long)sizeof(tr2) - 1);
    cr_assert_eq(d.num_trailers, 2);
}

Test(chunked, encoder_roundtrip)
{
    char wire[512];
    size_t n = 0;
    const char *parts[] = {"hello", " ", "world, this is a longer chunk of text"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        n += tt_http1_chunk_header(wire + n, l);
        memcpy(wire + n, parts[i], l);
        n += l;
        memcpy(wire + n, TT_HTTP1_CRLF, 2);
        n += 2;
    }
    tt_header t = {"X-T", 3, "v", 1};
    cr_assert_gt(tt_http1_chunk_last(wire + n, 4, &t, 1), 4);
    n += tt_http1_chunk_last(wire + n, sizeof(wire) - n, &t, 1);
    char hb[TT_HTTP1_CHUNK_HEADER_MAX];
    cr_assert_eq(tt_http1_chunk_header(hb, 0xffffffffffffffffULL), 18);
    cr_assert(!memcmp(hb, "ffffffffffffffff\r\n", 18));
    tt_http1_chunked_decoder d;
    tt_header tr[2];
    memset(&d, 0, sizeof(d));
    d.trailers = tr;
    d.max_trailers = 2;
    size_t out;
    cr_assert_eq(tt_http1_chunked_decode(&d, wire, n, &out), (long)n);
    cr_assert(d.done);
    cr_assert_eq(out, strlen("hello world, this is a longer chunk of text"));
    cr_assert(!memcmp(wire, "hello world, this is a longer chunk of text", out));
    cr_assert_eq(d.num_trailers, 1);
}

Test(serialize, response_heads)
{
    char buf[512];
    tt_header x = {"Content-Type", 12, "text/plain", 10};
    tt_http1_response_head h = {.status = 200,
                                .headers = &x,
                                .num_headers = 1,
                                .content_length = 5,
                                .request_minor = 1,
                                .keep_alive = 1};
    size_t n = tt_http1_serialize_response(buf, sizeof(buf), &h);
    buf[n] = 0;
    cr_assert_str_eq(buf,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
    cr_assert_eq(h.body, TT_HTTP1_BODY_LENGTH);
    cr_assert(h.keep_alive);
    /* unknown length: chunked for 1.1, close-delimited for 1.0 */
    tt_http1_response_head c = {
        .status = 200, .content_length = -1, .request_minor = 1, .keep_alive = 1};
    n = tt_http1_serialize_response(buf, sizeof(buf), &c);
    buf[n] = 0;
    cr_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    cr_assert_eq(c.body, TT_HTTP1_BODY_CHUNKED);
    tt_http1_response_head z = {
        .status = 200, .content_length = -1, .request_minor = 0, .keep_alive = 1};
    n = tt_http1_serialize_response(buf, sizeof(buf), &z);
    buf[n] = 0;
    cr_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    cr_assert_eq(z.body, TT_HTTP1_BODY_CLOSE);
    cr_assert_eq(z.keep_alive, 0);
    tt_http1_response_head k = {
        .status = 204, .content_length = 0, .request_minor = 0, .keep_alive = 1};
    n = tt_http1_serialize_response(buf, sizeof(buf), &k);
    buf[n] = 0;
    cr_assert_str_eq(buf, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
    tt_http1_response_head hd = {.status = 200,
                                 .content_length = 42,
                                 .request_minor = 1,
                                 .head_request = 1,
                                 .keep_alive = 0};
    n = tt_http1_serialize_response(buf, sizeof(buf), &hd);
    buf[n] = 0;
    cr_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\nConnection: close\r\n\r\n");
    cr_assert_eq(hd.body, TT_HTTP1_BODY_NONE);
    /* too small: the needed length is returned */
    cr_assert_eq(tt_http1_serialize_response(buf, 10, &h), 64);
    /* the output parses back */
    tt_http1_response_head d = {.status = 431, .content_length = 0, .request_minor = 1, .date = 1};
    n = tt_http1_serialize_response(buf, sizeof(buf), &d);
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    tt_http1_response r;
    memset(&r, 0, sizeof(r));
    r.headers = hdrs;
    r.max_headers = 128;
    cr_assert_eq(tt_http1_parse_response(&p, buf, n, TT_HTTP1_M_GET, &r), (int)n);
    cr_assert_eq(r.status, 431);
    cr_assert(streq(r.reason, r.reason_len, "Request Header Fields Too Large"));
    cr_assert(streq(r.headers[0].name, r.headers[0].name_len, "Date"));
    cr_assert_eq(r.headers[0].value_len, TT_HTTP1_DATE_LEN);
    cr_assert_eq(r.flags & TT_HTTP1_F_KEEP_ALIVE, 0);
}

Test(serialize, iov_matches_buffer)
{
    tt_header x[2] = {{"A", 1, "b", 1}, {"Server", 6, "tether", 6}};
    tt_http1_response_head h = {.status = 404,
                                .headers = x,
                                .num_headers = 2,
                                .content_length = 123456,
                                .request_minor = 1,
                                .keep_alive = 1};
    tt_http1_response_head h2 = h;
    char buf[512], scratch[128], joined[512];
    size_t n = tt_http1_serialize_response(buf, sizeof(buf), &h);
    struct iovec iov[32];
    int k = tt_http1_response_iov(iov, 32, scratch, sizeof(scratch), &h2);
    cr_assert_gt(k, 0);
    size_t m = 0;
    for (int i = 0; i < k; i++) {
        memcpy(joined + m, iov[i].iov_base, iov[i].iov_len);
        m += iov[i].iov_len;
    }
    cr_assert_eq(m, n);
    cr_assert(!memcmp(joined, buf, n));
    cr_assert_eq(tt_http1_response_iov(iov, 3, scratch, sizeof(scratch), &h2), -1);
}

Test(serialize, request_head)
{
    char buf[256];
    tt_header ua = {"User-Agent", 10, "tether", 6};
    tt_http1_request_head h = {.method = "GET",
                               .target = "/x",
                               .host = "a:1",
                               .headers = &ua,
                               .num_headers = 1,
                               .content_length = -1,
                               .keep_alive = 1};
    size_t n = tt_http1_serialize_request(buf, sizeof(buf), &h);
    buf[n] = 0;
    cr_assert_str_eq(buf, "GET /x HTTP/1.1\r\nHost: a:1\r\nUser-Agent: tether\r\n\r\n");
    h.content_length = -2;
    h.keep_alive = 0;
    n = tt_http1_serialize_request(buf, sizeof(buf), &h);
    buf[n] = 0;
    cr_assert_str_eq(buf, "GET /x HTTP/1.1\r\nHost: a:1\r\nUser-Agent: tether\r\n"
                          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}

Test(serialize, date_and_reason)
{
    cr_assert_str_eq(tt_http1_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_assert_str_eq(tt_http1_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_assert_str_eq(tt_http1_date(0) + 25, " GMT");
    cr_assert_eq(strlen(tt_http1_date(0)), TT_HTTP1_DATE_LEN);
    cr_assert_str_eq(tt_http1_reason(200), "OK");
    cr_assert_str_eq(tt_http1_reason(505), "HTTP Version Not Supported");
    cr_assert_str_eq(tt_http1_reason(799), "");
}

Test(keepalive, parse_and_format)
{
    tt_http1_keepalive k;
    cr_assert_eq(tt_http1_keepalive_parse(LIT("timeout=5, max=100"), &k), 0);
    cr_assert_eq(k.timeout, 5);
    cr_assert_eq(k.max, 100);
    cr_assert_eq(tt_http1_keepalive_parse(LIT("MAX=3,foo=\"bar\""), &k), 0);
    cr_assert_eq(k.timeout, -1);
    cr_assert_eq(k.max, 3);
    cr_assert_eq(tt_http1_keepalive_parse(LIT("timeout=x"), &k), 0);
    cr_assert_eq(k.timeout, -1);
    cr_assert_eq(tt_http1_keepalive_parse(LIT("timeout==5"), &k), -1);
    cr_assert_eq(tt_http1_keepalive_parse(LIT("timeout=\"5"), &k), -1);
    char b[64];
    cr_assert_eq(tt_http1_keepalive_format(b, sizeof(b), 5, 100), 18);
    cr_assert_str_eq(b, "timeout=5, max=100");
    tt_http1_keepalive_format(b, sizeof(b), 7, -1);
    cr_assert_str_eq(b, "timeout=7");
    cr_assert_eq(tt_http1_keepalive_parse(b, strlen(b), &k), 0);
    cr_assert_eq(k.timeout, 7);
}

/* After a complete head the same parser takes the next pipelined message without re-init. */
Test(parser, reuse_without_reinit)
{
    static const char s[] = "GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                            "POST /2 HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi";
    tt_http1_parser p;
    tt_http1_request r;
    int n = preq(LIT(s), &r, &p, NULL);
    cr_assert_gt(n, 0);
    cr_assert(r.flags & TT_HTTP1_F_CONN_CLOSE);
    int m = tt_http1_parse_request(&p, s + n, sizeof(s) - 1 - (size_t)n, &r);
    cr_assert_gt(m, 0, "%s", tt_http1_error_name(p.error));
    cr_assert(streq(r.target, r.target_len, "/2"));
    cr_assert_eq(r.minor_version, 0);
    cr_assert_eq(r.num_headers, 1);
    cr_assert_eq(r.body, TT_HTTP1_BODY_LENGTH);
    cr_assert_eq(r.flags & (TT_HTTP1_F_CONN_CLOSE | TT_HTTP1_F_KEEP_ALIVE), 0);
    cr_assert_null(r.host);
}
