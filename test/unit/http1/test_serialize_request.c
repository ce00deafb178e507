/* test_serialize_request.c — the one request-head writer: versions, framing fields, Expect,
 * Connection, and refusal of anything that would split the request line or the head. */
#include <criterion/criterion.h>
#include <string.h>

#include "tether/http1.h"

static const char *ser(tt_http1_request_head *h)
{
    static char buf[1024];
    size_t n = tt_http1_serialize_request(buf, sizeof buf - 1, h);
    if (n == 0 || n >= sizeof buf) return NULL;
    buf[n] = 0;
    return buf;
}

Test(serialize_request, versions_framing_expect_connection)
{
    tt_header f = {"Accept", 6, "*/*", 3};
    tt_http1_request_head h = {.method = "POST",
                               .target = "/a?b",
                               .host = "h:1",
                               .headers = &f,
                               .num_headers = 1,
                               .content_length = 5,
                               .keep_alive = 1,
                               .expect_continue = 1};
    cr_assert_str_eq(ser(&h), "POST /a?b HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\n"
                              "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    h.content_length = -2;
    h.keep_alive = 0;
    h.expect_continue = 0;
    cr_assert_str_eq(ser(&h), "POST /a?b HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\n"
                              "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    tt_http1_request_head g = {.method = "GET",
                               .target = "/",
                               .host = "h",
                               .content_length = -1,
                               .keep_alive = 1,
                               .http10 = 1,
                               .expect_continue = 1};
    cr_assert_str_eq(ser(&g), "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
    g.keep_alive = 0;
    cr_assert_str_eq(ser(&g), "GET / HTTP/1.0\r\nHost: h\r\n\r\n");
}

Test(serialize_request, never_splits_a_head)
{
    tt_http1_request_head h = {
        .method = "GET", .target = "/", .host = "h", .content_length = -1, .keep_alive = 1};
    cr_assert_not_null(ser(&h));
    const char *bad_targets[] = {"", "/a b", "/a\r\nX: y", "/\x01", "/\x7f"};
    for (size_t i = 0; i < sizeof bad_targets / sizeof *bad_targets; i++) {
        h.target = bad_targets[i];
        cr_assert_null(ser(&h), "target %zu", i);
    }
    h.target = "/";
    const char *bad_methods[] = {"", "GE T", "GET\r\n", "G(ET"};
    for (size_t i = 0; i < sizeof bad_methods / sizeof *bad_methods; i++) {
        h.method = bad_methods[i];
        cr_assert_null(ser(&h), "method %zu", i);
    }
    h.method = "GET";
    h.host = "h\r\nX: y";
    cr_assert_null(ser(&h));
    h.host = "h";
    tt_header f[] = {
        {"X-A", 3, "v\r\nX-B: w", 10}, {"X A", 3, "v", 1}, {"X-A", 3, "v\0w", 3}, {"", 0, "v", 1}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        h.headers = &f[i];
        h.num_headers = 1;
        cr_assert_null(ser(&h), "field %zu", i);
    }
}

Test(serialize_request, header_line_split_and_checks)
{
    tt_header f;
    const char *l = "X-Name: \t some value \t";
    cr_assert_eq(tt_http1_header_line(l, strlen(l), &f), 0);
    cr_assert_eq(f.name_len, 6);
    cr_assert_eq(memcmp(f.name, "X-Name", 6), 0);
    cr_assert_eq(f.value_len, 10);
    cr_assert_eq(memcmp(f.value, "some value", 10), 0);
    cr_assert_eq(tt_http1_header_line("Empty:", 6, &f), 0);
    cr_assert_eq(f.value_len, 0);
    const char *bad[] = {"no colon", ": v", "Sp ace: v", "X: a\rb", "X: a\nb", "X: a\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(tt_http1_header_line(bad[i], strlen(bad[i]), &f), -1, "%zu", i);
    cr_assert(tt_http1_token_valid("GET", 3));
    cr_assert(!tt_http1_token_valid("", 0));
    cr_assert(tt_http1_value_valid("a b\tc\x80", 6));
    cr_assert(!tt_http1_value_valid(" a", 2));
}

/* The validators decide byte by byte as RFC 9110 says, whatever the length and the byte's
 * position (the value check takes 8 bytes a step, the token check 4): every byte value at
 * every position of strings of 1..24 bytes. */
static int value_byte_ok(unsigned c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int tchar_ok(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", (int)c));
}

Test(serialize_request, validators_every_byte_every_position)
{
    char s[24];
    for (size_t n = 1; n <= sizeof s; n++)
        for (size_t at = 0; at < n; at++)
            for (unsigned c = 0; c < 256; c++) {
                memset(s, 'a', n);
                s[at] = (char)c;
                int edge = (at == 0 || at == n - 1) && (c == ' ' || c == '\t');
                cr_assert_eq(tt_http1_value_valid(s, n), value_byte_ok(c) && !edge,
                             "value n=%zu at=%zu c=0x%02x", n, at, c);
                cr_assert_eq(tt_http1_token_valid(s, n), tchar_ok(c), "token n=%zu at=%zu c=0x%02x",
                             n, at, c);
            }
}
