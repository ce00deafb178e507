/* test_fields.c — the proxy's field rewriting as pure functions: hop-by-hop filtering
 * (Connection naming fields, case-insensitivity, repeated Connection fields), Via and
 * X-Forwarded-* on requests, the response field filter. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "proxy/proxy_int.h"

/* Build the upstream lines for the request fields in "Name: value" form; returns the count
 * and puts them in out[] (pointers into a). */
static int build(const char *const *fields, int n, tt__preq_in *in, tt__parena *a, const char **out,
                 int *expect)
{
    static const char *names[32], *values[32];
    static size_t nl[32], vl[32];
    for (int i = 0; i < n; i++) {
        const char *c = strchr(fields[i], ':');
        names[i] = fields[i];
        nl[i] = (size_t)(c - fields[i]);
        values[i] = c + 2;
        vl[i] = strlen(c + 2);
    }
    in->names = names;
    in->values = values;
    in->nlens = nl;
    in->vlens = vl;
    in->n = n;
    long offs[64];
    int k = tt__proxy_req_fields(in, a, offs, 64, expect);
    cr_assert_geq(k, 0);
    for (int i = 0; i < k; i++)
        out[i] = a->buf + offs[i];
    return k;
}

static const char *find(const char **lines, int n, const char *prefix)
{
    for (int i = 0; i < n; i++)
        if (!strncasecmp(lines[i], prefix, strlen(prefix))) return lines[i];
    return NULL;
}

static tt__preq_in base(void)
{
    tt__preq_in in = {.peer_ip = "10.0.0.7",
                      .host = "example.test",
                      .host_len = 12,
                      .via = "tether",
                      .minor = 1,
                      .proto = "http",
                      .forwarded = 1};
    return in;
}

Test(fields, hop_static_table)
{
    const char *hop[] = {"Connection",
                         "keep-alive",
                         "TE",
                         "transfer-encoding",
                         "UPGRADE",
                         "Proxy-Connection",
                         "proxy-authenticate",
                         "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        cr_expect(tt__proxy_hop_static(hop[i], strlen(hop[i])), "%s", hop[i]);
    const char *keep[] = {"Content-Type", "Cookie", "Authorization", "Trailer", "Accept",
                          "Connectionx",  "TEx"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        cr_expect_not(tt__proxy_hop_static(keep[i], strlen(keep[i])), "%s", keep[i]);
}

Test(fields, connection_named_tokens)
{
    const char *vals[] = {"close, X-Foo", " x-bar ,,\tx-baz"};
    size_t lens[] = {strlen(vals[0]), strlen(vals[1])};
    cr_expect(tt__proxy_hop("x-foo", 5, vals, lens, 2));
    cr_expect(tt__proxy_hop("X-BAR", 5, vals, lens, 2)); /* second Connection field */
    cr_expect(tt__proxy_hop("X-Baz", 5, vals, lens, 2));
    cr_expect_not(tt__proxy_hop("X-Fo", 4, vals, lens, 2));
    cr_expect_not(tt__proxy_hop("X-Other", 7, vals, lens, 2));
}

Test(fields, request_removes_hop_by_hop)
{
    const char *f[] = {"Host: example.test",
                       "Connection: keep-alive, X-Secret",
                       "X-Secret: 1",
                       "connection: X-Other",
                       "x-other: 2",
                       "Keep-Alive: timeout=5",
                       "TE: trailers",
                       "Transfer-Encoding: chunked",
                       "Upgrade: websocket",
                       "Proxy-Connection: keep-alive",
                       "Proxy-Authorization: b",
                       "Content-Length: 5",
                       "Accept: */*",
                       "X-Keep: yes"};
    tt__preq_in in = base();
    tt__parena a = {0};
    const char *out[64];
    int expect;
    int k = build(f, 14, &in, &a, out, &expect);
    cr_expect_eq(expect, 0);
    const char *gone[] = {"Connection",        "X-Secret", "X-Other", "Keep-Alive",    "TE:",
                          "Transfer-Encoding", "Upgrade",  "Proxy-",  "Content-Length"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        cr_expect_null(find(out, k, gone[i]), "%s forwarded", gone[i]);
    cr_expect_str_eq(find(out, k, "Accept:"), "Accept: */*");
    cr_expect_str_eq(find(out, k, "X-Keep:"), "X-Keep: yes");
    cr_expect_str_eq(find(out, k, "Host:"), "Host: example.test");
    tt__parena_free(&a);
}

Test(fields, via_and_forwarded_appended)
{
    const char *f[] = {"Host: example.test",       "X-Forwarded-For: 1.2.3.4",
                       "x-forwarded-for: 5.6.7.8", "Via: 1.0 edge",
                       "X-Forwarded-Proto: https", "X-Forwarded-Host: spoofed"};
    tt__preq_in in = base();
    tt__parena a = {0};
    const char *out[64];
    int expect;
    int k = build(f, 6, &in, &a, out, &expect);
    cr_expect_str_eq(find(out, k, "X-Forwarded-For:"),
                     "X-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.0.0.7");
    cr_expect_str_eq(find(out, k, "Via:"), "Via: 1.0 edge, 1.1 tether");
    cr_expect_str_eq(find(out, k, "X-Forwarded-Proto:"), "X-Forwarded-Proto: http");
    cr_expect_str_eq(find(out, k, "X-Forwarded-Host:"), "X-Forwarded-Host: example.test");
    int n = 0;
    for (int i = 0; i < k; i++)
        n += !strncasecmp(out[i], "X-Forwarded-For", 15);
    cr_expect_eq(n, 1, "one combined X-Forwarded-For line");
    tt__parena_free(&a);
}

Test(fields, host_rewrite_expect_and_http10_via)
{
    const char *f[] = {"Host: example.test", "Expect: 100-continue"};
    tt__preq_in in = base();
    in.up_host = "backend.internal";
    in.minor = 0;
    in.forwarded = 0;
    tt__parena a = {0};
    const char *out[64];
    int expect;
    int k = build(f, 2, &in, &a, out, &expect);
    cr_expect_eq(expect, 1);
    cr_expect_null(find(out, k, "Expect"));
    cr_expect_str_eq(find(out, k, "Host:"), "Host: backend.internal");
    cr_expect_str_eq(find(out, k, "Via:"), "Via: 1.0 tether");
    cr_expect_null(find(out, k, "X-Forwarded-Proto"));
    cr_expect_str_eq(find(out, k, "X-Forwarded-For:"), "X-Forwarded-For: 10.0.0.7");
    tt__parena_free(&a);
}

/* ---- response fields ---- */

typedef struct {
    char names[32][64], values[32][256];
    int n;
} collected;

static int collect(void *ud, const char *name, const char *value)
{
    collected *c = ud;
    snprintf(c->names[c->n], 64, "%s", name);
    snprintf(c->values[c->n], 256, "%s", value);
    c->n++;
    return 0;
}

static const char *got(const collected *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcasecmp(c->names[i], name)) return c->values[i];
    return NULL;
}

Test(fields, response_filtered)
{
    static char head[] = "HTTP/1.1 200 OK\r\n"
                         "Connection: X-Hop\r\n"
                         "X-Hop: 1\r\n"
                         "Keep-Alive: timeout=5\r\n"
                         "Transfer-Encoding: chunked\r\n"
                         "Content-Length: 3\r\n"
                         "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                         "Server: upstream\r\n"
                         "Via: 1.1 inner\r\n"
                         "Set-Cookie: a=1\r\n"
                         "Set-Cookie: b=2\r\n"
                         "Content-Type: text/plain\r\n\r\n";
    tt_exchange x;
    memset(&x, 0, sizeof x);
    x.head = head;
    x.version_minor = 1;
    /* spans over head */
    char *p = strstr(head, "\r\n") + 2;
    while (p[0] != '\r') {
        char *colon = strchr(p, ':'), *eol = strstr(p, "\r\n");
        tt_hdr_span *s = &x.hdrs[x.nhdrs++];
        s->name = (uint32_t)(p - head);
        s->name_len = (uint32_t)(colon - p);
        s->value = (uint32_t)(colon + 2 - head);
        s->value_len = (uint32_t)(eol - colon - 2);
        p = eol + 2;
    }
    collected c = {0};
    tt__parena scratch = {0};
    cr_assert_eq(tt__proxy_res_fields(&x, "tether", &scratch, collect, &c), 0);
    const char *gone[] = {"Connection",     "X-Hop", "Keep-Alive", "Transfer-Encoding",
                          "Content-Length", "Date",  "Server"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        cr_expect_null(got(&c, gone[i]), "%s forwarded", gone[i]);
    cr_expect_str_eq(got(&c, "Content-Type"), "text/plain");
    cr_expect_str_eq(got(&c, "Via"), "1.1 inner, 1.1 tether");
    int cookies = 0;
    for (int i = 0; i < c.n; i++)
        cookies += !strcmp(c.names[i], "Set-Cookie");
    cr_expect_eq(cookies, 2, "repeated fields kept apart");
    tt__parena_free(&scratch);
}

Test(fields, peer_ip_without_port)
{
    tt_addr a;
    char buf[64];
    cr_assert_eq(tt_addr_parse(&a, "127.0.0.1:4567"), 0);
    tt__proxy_peer_ip(&a, buf, sizeof buf);
    cr_expect_str_eq(buf, "127.0.0.1");
    cr_assert_eq(tt_addr_parse(&a, "[::1]:80"), 0);
    tt__proxy_peer_ip(&a, buf, sizeof buf);
    cr_expect_str_eq(buf, "::1");
}

Test(fields, unknown_peer_keeps_earlier_hops)
{
    const char *f[] = {"Host: example.test", "X-Forwarded-For: 1.2.3.4"};
    tt__preq_in in = base();
    in.peer_ip = NULL;
    tt__parena a = {0};
    const char *out[64];
    int expect;
    int k = build(f, 2, &in, &a, out, &expect);
    cr_expect_str_eq(find(out, k, "X-Forwarded-For:"), "X-Forwarded-For: 1.2.3.4, unknown");
    tt__parena_free(&a);
}
