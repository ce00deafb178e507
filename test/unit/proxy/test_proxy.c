/* test_proxy.c — the proxy handler end to end in one process, on loopback: a tt_server with the
 * proxy route in front of a second tt_server (the backend) or of raw sockets playing a broken
 * upstream; driven by the blocking client and by raw sockets. GET and reuse, POST with
 * Content-Length and chunked with trailers, 1 MiB both ways, chunked responses with trailers,
 * HEAD/204/304 framing, hop-by-hop removal, 502 (refused, all down), 504 (no answer), a GET
 * retried after the pooled upstream connection died, a POST not retried, a truncated
 * upstream response seen as truncated. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tether.h"

#define CERTS TT_SOURCE_DIR "/build/certs"

/* ---- the backend: a tether server ---- */

static void copy_header(tt_req *req, tt_res *res, const char *in, const char *out)
{
    size_t l;
    const char *v = tt_req_header(req, in, &l);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", v ? (int)l : 1, v ? v : "-");
    tt_res_header(res, out, buf);
}

/* Echo the body, and say what arrived. */
static void h_echo(tt_req *req, tt_res *res, void *d)
{
    (void)d;
    size_t bl = 0, l;
    const char *b = tt_req_body(req, &bl);
    copy_header(req, res, "X-Forwarded-For", "X-Seen-XFF");
    copy_header(req, res, "Via", "X-Seen-Via");
    copy_header(req, res, "Host", "X-Seen-Host");
    copy_header(req, res, "X-Forwarded-Host", "X-Seen-XFH");
    copy_header(req, res, "X-Forwarded-Proto", "X-Seen-XFP");
    copy_header(req, res, "X-Secret", "X-Seen-Secret");
    copy_header(req, res, "Keep-Alive", "X-Seen-KA");
    char t[64];
    snprintf(t, sizeof t, "%lld", tt_req_body_length(req));
    tt_res_header(res, "X-Seen-Len", t);
    const char *tr = tt_req_trailer(req, "X-Sum", &l);
    snprintf(t, sizeof t, "%.*s", tr ? (int)l : 1, tr ? tr : "-");
    tt_res_header(res, "X-Seen-Trailer", t);
    tt_res_send(res, 200, "application/octet-stream", b, bl);
}

static void h_chunked(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    tt_res_start(res, 200, -1);
    tt_res_write(res, "aaa", 3);
    tt_res_write(res, "bbb", 3);
    tt_res_write(res, "ccc", 3);
    tt_res_trailer(res, "X-Check", "ok");
    tt_res_end(res);
}

static void h_nobody(tt_req *req, tt_res *res, void *d)
{
    (void)d;
    size_t pl;
    const char *p = tt_req_path(req, &pl);
    if (pl >= 4 && !memcmp(p + pl - 3, "204", 3)) {
        tt_res_send(res, 204, NULL, NULL, 0);
        return;
    }
    tt_res_header(res, "ETag", "\"v1\"");
    tt_res_start(res, 304, -1);
    tt_res_end(res);
}

static void h_hello(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    tt_res_send(res, 200, "text/plain", "hello", 5);
}

static char *big_body(size_t n)
{
    char *b = malloc(n);
    cr_assert_not_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    return b;
}

static void h_big(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    size_t n = 1 << 20;
    char *b = big_body(n);
    tt_res_send(res, 200, "application/octet-stream", b, n);
    free(b);
}

static void h_trunc(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    tt_res_start(res, 200, -1);
    tt_res_write(res, "partial", 7);
    tt_res_abort(res);
}

static void h_early(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    tt_header f[] = {{"Link", 4, "</a.css>; rel=preload", 21}};
    cr_expect_eq(tt_res_interim(res, 103, f, 1), 0);
    cr_expect_eq(tt_res_interim(res, 100, NULL, 0), -EINVAL);
    tt_res_send(res, 200, "text/plain", "final", 5);
}

/* More fields than a response can carry through the proxy. */
static void h_many(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    tt_res_header(res, "Set-Cookie", "secret=1");
    char n[32];
    for (int i = 0; i < TT_RES_MAX_FIELDS - 1; i++) {
        snprintf(n, sizeof n, "X-F%d", i);
        tt_res_header(res, n, "v");
    }
    tt_res_send(res, 200, "text/plain", "many", 4);
}

/* A head over the response writer's inline room (16 fields, 1 KiB) but within its limits. */
static void h_twenty(tt_req *req, tt_res *res, void *d)
{
    (void)req;
    (void)d;
    char n[32], v[128];
    memset(v, 'v', 100);
    v[100] = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(n, sizeof n, "X-Big%d", i);
        cr_expect_eq(tt_res_header(res, n, v), 0);
    }
    tt_res_send(res, 200, "text/plain", "twenty", 6);
}

static void *run_thread(void *arg)
{
    tt_server_run(arg, 0);
    return NULL;
}

typedef struct env {
    tt_server *backend, *front;
    pthread_t tb, tf;
    tt_proxy *proxy;
    tt_client *client;
    int fport, bport;
    int logfd;    /* > 0: the front's access log ("$status $log_note") */
    int drain_ms; /* the front's drain_timeout_ms */
    int buffered; /* mount without TT_ROUTE_STREAM_BODY: bodies read whole first */
    int tls;      /* the front listens on https:// (the test CA's server certificate) */
} env;

static void start_backend(env *e)
{
    tt_server_config c;
    memset(&c, 0, sizeof c);
    c.listen[0] = "127.0.0.1:0";
    c.nlisten = 1;
    c.workers = 1;
    c.max_body = 4 << 20;
    tt_server_config_route(&c, "/echo", h_echo, NULL);
    tt_server_config_route(&c, "/chunked", h_chunked, NULL);
    tt_server_config_route(&c, "/nobody", h_nobody, NULL);
    tt_server_config_route(&c, "/hello", h_hello, NULL);
    tt_server_config_route(&c, "/big", h_big, NULL);
    tt_server_config_route(&c, "/trunc", h_trunc, NULL);
    tt_server_config_route(&c, "/early", h_early, NULL);
    tt_server_config_route(&c, "/many", h_many, NULL);
    tt_server_config_route(&c, "/twenty", h_twenty, NULL);
    cr_assert_eq(tt_server_new(&e->backend, &c), 0);
    e->bport = tt_server_port(e->backend);
    cr_assert_eq(pthread_create(&e->tb, NULL, run_thread, e->backend), 0);
}

/* The proxy in front of upstream URLs (the backend's when urls is NULL). */
static void start_front(env *e, tt_proxy_config *pc)
{
    char url[64];
    if (!pc->nupstreams) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d", e->bport);
        pc->upstreams[0] = url;
        pc->nupstreams = 1;
    }
    cr_assert_eq(tt_proxy_new(&e->proxy, pc, NULL), 0);
    tt_server_config c;
    memset(&c, 0, sizeof c);
    c.listen[0] = "127.0.0.1:0";
    c.nlisten = 1;
    c.workers = 2;
    c.drain_timeout_ms = e->drain_ms;
    if (e->tls) {
        struct stat st;
        if (stat(CERTS "/.done", &st) != 0)
            cr_assert_eq(system("sh " TT_SOURCE_DIR "/scripts/mkcerts.sh " CERTS), 0);
        c.listen[0] = "https://127.0.0.1:0";
        c.tls.cert_file = CERTS "/server.pem";
        c.tls.key_file = CERTS "/server.key";
    }
    if (e->logfd > 0) {
        c.access_log_fd = e->logfd;
        c.access_log_format = "$status $log_note";
    }
    if (e->buffered) {
        c.max_body = 4 << 20;
        cr_assert_eq(tt_server_config_route(&c, "/", tt_proxy_handler, e->proxy), 0);
    } else {
        cr_assert_eq(tt_proxy_mount(&c, "/", e->proxy), 0);
    }
    cr_assert_eq(tt_server_new(&e->front, &c), 0);
    cr_assert_eq(tt_proxy_attach(e->proxy, e->front), 0);
    e->fport = tt_server_port(e->front);
    cr_assert_eq(pthread_create(&e->tf, NULL, run_thread, e->front), 0);
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.head_timeout_ms = 20000;
    o.ca_file = CERTS "/ca.pem";
    cr_assert_eq(tt_client_new(&e->client, &o), 0);
}

static void stop_env(env *e)
{
    if (e->client) tt_client_free(e->client);
    if (e->front) {
        tt_server_shutdown(e->front);
        pthread_join(e->tf, NULL);
        tt_server_free(e->front);
    }
    tt_proxy_free(e->proxy);
    if (e->backend) {
        tt_server_shutdown(e->backend);
        pthread_join(e->tb, NULL);
        tt_server_free(e->backend);
    }
}

/* A blocking request through the proxy; x is initialised here, cleaned by the caller. */
static int request(env *e, tt_exchange *x, const char *method, const char *path)
{
    char url[128];
    static char urlbuf[128];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", e->tls ? "https" : "http", e->fport, path);
    memcpy(urlbuf, url, sizeof url);
    x->method = method;
    x->url = urlbuf;
    return tt_client_request(e->client, x);
}

static char hv[512];
static const char *hdr(tt_exchange *x, const char *name)
{
    size_t l;
    const char *v = tt_exchange_header(x, name, &l);
    if (!v) return NULL;
    snprintf(hv, sizeof hv, "%.*s", (int)l, v);
    return hv;
}

static int raw_connect(int port)
{
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", port);
    tt_addr addr;
    cr_assert_eq(tt_addr_parse(&addr, a), 0);
    int fd = tt_connect_timeout(&addr, 5000);
    cr_assert_geq(fd, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Read until `until` is seen, EOF or the receive timeout; NUL-terminated; bytes read. */
static size_t raw_read(int fd, char *buf, size_t size, const char *until)
{
    size_t got = 0;
    while (got < size - 1) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        buf[got] = 0;
        if (until && strstr(buf, until)) break;
    }
    buf[got] = 0;
    return got;
}

static void raw_send(int fd, const char *s)
{
    cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Wait (bounded) until upstream i's stats satisfy ok. */
static void stats_wait(tt_proxy *p, int i, tt_proxy_upstream_stats *s,
                       int (*ok)(const tt_proxy_upstream_stats *))
{
    for (int k = 0; k < 500; k++) {
        tt_proxy_stats(p, i, s);
        if (ok(s)) return;
        usleep(10000);
    }
}

/* ---- tests ---- */

static int opened_known(const tt_proxy_upstream_stats *s)
{
    return s->opened >= 1 && s->leased == 0;
}

Test(proxy, get_reuses_upstream_connections)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    for (int i = 0; i < 6; i++) {
        tt_exchange x;
        tt_exchange_init(&x);
        cr_assert_eq(request(&e, &x, "GET", "/echo?a=1"), 0, "%s", x.error_what);
        cr_expect_eq(x.status, 200);
        cr_expect_str_eq(hdr(&x, "X-Seen-XFF"), "127.0.0.1");
        cr_expect_str_eq(hdr(&x, "X-Seen-Via"), "1.1 tether");
        cr_expect_str_eq(hdr(&x, "X-Seen-XFP"), "http");
        char host[64];
        snprintf(host, sizeof host, "127.0.0.1:%d", e.fport);
        cr_expect_str_eq(hdr(&x, "X-Seen-Host"), host);
        cr_expect_str_eq(hdr(&x, "X-Seen-XFH"), host);
        cr_expect_str_eq(hdr(&x, "Via"), "1.1 tether");
        cr_expect_str_eq(hdr(&x, "X-Seen-Len"), "0");
        tt_exchange_cleanup(&x);
    }
    tt_proxy_upstream_stats s;
    stats_wait(e.proxy, 0, &s, opened_known);
    cr_expect_eq(s.requests, 6);
    cr_expect_eq(s.responses, 6);
    /* two workers: at most one upstream connection each for sequential requests */
    cr_expect_leq(s.opened, 2, "opened %llu", (unsigned long long)s.opened);
    cr_expect_geq(s.reused, 4);
    char json[4096];
    tt_proxy_stats_json(e.proxy, json, sizeof json);
    cr_expect(strstr(json, "\"requests\":6") != NULL, "%s", json);
    stop_env(&e);
}

Test(proxy, post_content_length_and_chunked_with_trailers)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    size_t n = 100000;
    char *b = big_body(n);
    tt_exchange x;
    tt_exchange_init(&x);
    x.body = b;
    x.body_len = n;
    cr_assert_eq(request(&e, &x, "POST", "/echo"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_expect_str_eq(hdr(&x, "X-Seen-Len"), "100000", "Content-Length kept");
    cr_assert_eq(x.resp_body_len, n);
    cr_expect_eq(memcmp(x.resp_body, b, n), 0);
    tt_exchange_cleanup(&x);
    free(b);
    stop_env(&e);
}

typedef struct src {
    const char *data;
    size_t len, off;
} src;

static ssize_t src_read(void *d, char *buf, size_t cap)
{
    src *s = d;
    size_t n = s->len - s->off;
    if (n > cap) n = cap;
    if (n > 7000) n = 7000; /* several chunks */
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

Test(proxy, chunked_request_with_trailers)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    size_t n = 50000;
    char *b = big_body(n);
    src s = {b, n, 0};
    static const char *const tr[] = {"X-Sum: abc123"};
    tt_exchange x;
    tt_exchange_init(&x);
    x.body_read = src_read;
    x.body_data = &s;
    x.body_trailers = tr;
    x.nbody_trailers = 1;
    cr_assert_eq(request(&e, &x, "POST", "/echo"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_expect_str_eq(hdr(&x, "X-Seen-Len"), "-1", "chunked upstream too");
    cr_expect_str_eq(hdr(&x, "X-Seen-Trailer"), "abc123", "trailer forwarded");
    cr_assert_eq(x.resp_body_len, n);
    cr_expect_eq(memcmp(x.resp_body, b, n), 0);
    tt_exchange_cleanup(&x);
    free(b);
    stop_env(&e);
}

Test(proxy, one_mib_both_ways)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    pc.buffer = 16384; /* small buffers: flow control on both legs */
    start_front(&e, &pc);
    size_t n = 1 << 20;
    char *b = big_body(n);
    tt_exchange x;
    tt_exchange_init(&x);
    x.body = b;
    x.body_len = n;
    cr_assert_eq(request(&e, &x, "PUT", "/echo"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_assert_eq(x.resp_body_len, n);
    cr_expect_eq(memcmp(x.resp_body, b, n), 0);
    tt_exchange_cleanup(&x);
    tt_exchange_init(&x);
    cr_assert_eq(request(&e, &x, "GET", "/big"), 0, "%s", x.error_what);
    cr_assert_eq(x.resp_body_len, n);
    cr_expect_eq(memcmp(x.resp_body, b, n), 0);
    cr_expect_str_eq(hdr(&x, "Content-Length"), "1048576", "upstream length kept");
    tt_exchange_cleanup(&x);
    free(b);
    stop_env(&e);
}

Test(proxy, chunked_response_trailers)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    raw_send(fd, "GET /chunked HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n");
    char buf[4096];
    raw_read(fd, buf, sizeof buf, "\r\n0\r\nX-Check: ok\r\n\r\n");
    cr_expect(strstr(buf, "Transfer-Encoding: chunked") != NULL, "%s", buf);
    cr_expect(strstr(buf, "aaa") && strstr(buf, "bbb") && strstr(buf, "ccc"), "%s", buf);
    cr_expect(strstr(buf, "\r\n0\r\nX-Check: ok\r\n\r\n") != NULL, "%s", buf);
    close(fd);
    stop_env(&e);
}

Test(proxy, head_204_304_framed)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    char buf[4096];
    raw_send(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "\r\n\r\n");
    cr_expect(strstr(buf, "HTTP/1.1 200") == buf, "%s", buf);
    cr_expect(strstr(buf, "Content-Length: 5\r\n") != NULL, "HEAD keeps the length: %s", buf);
    raw_send(fd, "GET /nobody/204 HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "\r\n\r\n");
    cr_expect(strstr(buf, "HTTP/1.1 204") == buf, "no body after HEAD: %s", buf);
    cr_expect_null(strstr(buf, "Content-Length"), "%s", buf);
    cr_expect_null(strstr(buf, "Transfer-Encoding"), "%s", buf);
    raw_send(fd, "GET /nobody/304 HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "\r\n\r\n");
    cr_expect(strstr(buf, "HTTP/1.1 304") == buf, "%s", buf);
    cr_expect(strstr(buf, "ETag: \"v1\"") != NULL, "%s", buf);
    cr_expect_null(strstr(buf, "Transfer-Encoding"), "%s", buf);
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "hello");
    cr_expect(strstr(buf, "HTTP/1.1 200") == buf, "the connection is still in sync: %s", buf);
    cr_expect(strstr(buf, "\r\n\r\nhello") != NULL, "%s", buf);
    close(fd);
    stop_env(&e);
}

Test(proxy, hop_by_hop_removed)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    char buf[4096];
    raw_send(fd, "GET /echo HTTP/1.1\r\nHost: front.test\r\nConnection: keep-alive, X-Secret\r\n"
                 "X-Secret: s3cr3t\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 192.0.2.1\r\n"
                 "Via: 1.0 edge\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "\r\n\r\n");
    cr_expect(strstr(buf, "HTTP/1.1 200") == buf, "%s", buf);
    cr_expect(strstr(buf, "X-Seen-Secret: -\r\n") != NULL, "Connection-named field: %s", buf);
    cr_expect(strstr(buf, "X-Seen-KA: -\r\n") != NULL, "Keep-Alive: %s", buf);
    cr_expect(strstr(buf, "X-Seen-XFF: 192.0.2.1, 127.0.0.1\r\n") != NULL, "%s", buf);
    cr_expect(strstr(buf, "X-Seen-Via: 1.0 edge, 1.1 tether\r\n") != NULL, "%s", buf);
    cr_expect(strstr(buf, "X-Seen-Host: front.test\r\n") != NULL, "%s", buf);
    close(fd);
    stop_env(&e);
}

static int free_port(void)
{
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    int fd = tt_listen(&a, NULL);
    cr_assert_geq(fd, 0);
    tt_addr l;
    tt_sock_local(fd, &l);
    int port = tt_addr_port(&l);
    close(fd);
    return port;
}

static int fail_seen(const tt_proxy_upstream_stats *s)
{
    return s->leased == 0;
}

/* Wait (bounded) until the file at fd holds want; its text in buf. */
static int log_has(int fd, char *buf, size_t size, const char *want)
{
    for (int k = 0; k < 500; k++) {
        ssize_t n = pread(fd, buf, size - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        if (strstr(buf, want)) return 1;
        usleep(10000);
    }
    return 0;
}

Test(proxy, refused_is_502_then_down)
{
    env e = {0};
    char logpath[] = "/tmp/tt-proxy-log-XXXXXX";
    e.logfd = mkstemp(logpath);
    cr_assert_gt(e.logfd, 0);
    unlink(logpath);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    tt_proxy_config pc = {0};
    pc.upstreams[0] = url;
    pc.nupstreams = 1;
    pc.fail_threshold = 1;
    pc.fail_rest_ms = 60000;
    start_front(&e, &pc);
    tt_exchange x;
    tt_exchange_init(&x);
    cr_assert_eq(request(&e, &x, "GET", "/x"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 502);
    cr_expect(x.resp_body && strstr(x.resp_body, "connect"), "%s", x.resp_body);
    tt_exchange_reset(&x);
    cr_assert_eq(request(&e, &x, "GET", "/x"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 502);
    cr_expect(x.resp_body && strstr(x.resp_body, "down"), "all resting: %s", x.resp_body);
    tt_exchange_cleanup(&x);
    tt_proxy_upstream_stats s;
    stats_wait(e.proxy, 0, &s, fail_seen);
    cr_expect_eq(s.failures[TT_PROXY_FAIL_CONNECT], 1);
    cr_expect_eq(s.failures[TT_PROXY_FAIL_DOWN], 1);
    cr_expect_eq(s.healthy, 0);
    cr_expect_eq(s.rests, 1);
    stop_env(&e);
    char log[4096];
    cr_expect(log_has(e.logfd, log, sizeof log, "502 connect\n502 down\n"), "%s", log);
    close(e.logfd);
}

Test(proxy, refused_goes_to_the_other_upstream)
{
    env e = {0};
    start_backend(&e);
    char dead[64], live[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", free_port());
    snprintf(live, sizeof live, "http://127.0.0.1:%d", e.bport);
    tt_proxy_config pc = {0};
    pc.upstreams[0] = dead;
    pc.upstreams[1] = live;
    pc.nupstreams = 2;
    pc.balance = TT_PROXY_ROUND_ROBIN;
    start_front(&e, &pc);
    for (int i = 0; i < 4; i++) {
        tt_exchange x;
        tt_exchange_init(&x);
        x.body = "abc";
        x.body_len = 3;
        /* a POST too: a refused connect means the request was never sent */
        cr_assert_eq(request(&e, &x, i % 2 ? "POST" : "GET", "/echo"), 0);
        cr_expect_eq(x.status, 200, "request %d", i);
        tt_exchange_cleanup(&x);
    }
    stop_env(&e);
}

/* A listener that never accepts: connects complete in the kernel, nothing answers. */
Test(proxy, no_answer_is_504)
{
    env e = {0};
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    int lfd = tt_listen(&a, NULL);
    cr_assert_geq(lfd, 0);
    tt_addr l;
    tt_sock_local(lfd, &l);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tt_addr_port(&l));
    tt_proxy_config pc = {0};
    pc.upstreams[0] = url;
    pc.nupstreams = 1;
    pc.timeout_ms = 300;
    start_front(&e, &pc);
    tt_exchange x;
    tt_exchange_init(&x);
    cr_assert_eq(request(&e, &x, "GET", "/slow"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 504);
    tt_exchange_cleanup(&x);
    tt_proxy_upstream_stats s;
    stats_wait(e.proxy, 0, &s, fail_seen);
    cr_expect_eq(s.failures[TT_PROXY_FAIL_TIMEOUT], 1);
    cr_expect_eq(s.healthy, 1, "a timeout does not rest the upstream");
    stop_env(&e);
    close(lfd);
}

/* A raw upstream: answers the first request of each connection, then closes the connection
 * when the next request arrives (as a server closing an idle connection in the race). */
typedef struct rawup {
    int lfd, conns;
    pthread_t th;
} rawup;

static void *rawup_run(void *arg)
{
    rawup *r = arg;
    for (int k = 0; k < 4; k++) {
        int fd = accept4(r->lfd, NULL, NULL, 0);
        if (fd < 0) break;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        r->conns++;
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[8192];
        raw_read(fd, buf, sizeof buf, "\r\n\r\n");
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        send(fd, ok, strlen(ok), MSG_NOSIGNAL);
        raw_read(fd, buf, sizeof buf, "\r\n\r\n"); /* the next request: dropped */
        close(fd);
    }
    return NULL;
}

Test(proxy, get_retried_post_not)
{
    env e = {0};
    rawup r = {0};
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    r.lfd = tt_listen(&a, NULL);
    cr_assert_geq(r.lfd, 0);
    fcntl(r.lfd, F_SETFL, fcntl(r.lfd, F_GETFL) & ~O_NONBLOCK);
    tt_addr l;
    tt_sock_local(r.lfd, &l);
    cr_assert_eq(pthread_create(&r.th, NULL, rawup_run, &r), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tt_addr_port(&l));
    tt_proxy_config pc = {0};
    pc.upstreams[0] = url;
    pc.nupstreams = 1;
    start_front(&e, &pc);
    /* one front connection: its requests stay on one worker, one upstream connection */
    tt_exchange x;
    tt_exchange_init(&x);
    cr_assert_eq(request(&e, &x, "GET", "/1"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    tt_exchange_reset(&x);
    /* the pooled connection dies under the GET: retried on a new one, invisibly */
    cr_assert_eq(request(&e, &x, "GET", "/2"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_expect_str_eq(x.resp_body, "ok");
    tt_exchange_reset(&x);
    /* the same for a POST: it may have been processed, so 502 */
    x.body = "data";
    x.body_len = 4;
    cr_assert_eq(request(&e, &x, "POST", "/3"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 502);
    tt_exchange_cleanup(&x);
    tt_proxy_upstream_stats s;
    stats_wait(e.proxy, 0, &s, fail_seen);
    cr_expect_eq(s.retries, 1, "the GET's retry on a fresh connection");
    cr_expect_eq(s.failures[TT_PROXY_FAIL_RESET], 1, "the POST");
    cr_expect_eq(s.responses, 2);
    stop_env(&e);
    shutdown(r.lfd, SHUT_RDWR);
    close(r.lfd);
    pthread_join(r.th, NULL);
    cr_expect_eq(r.conns, 2, "the POST was not sent again on a new connection");
}

Test(proxy, truncated_upstream_body_is_seen)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    raw_send(fd, "GET /trunc HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[4096];
    size_t n = raw_read(fd, buf, sizeof buf, NULL); /* to EOF */
    cr_expect(n > 0);
    cr_expect(strstr(buf, "HTTP/1.1 200") == buf, "%s", buf);
    cr_expect(strstr(buf, "partial") != NULL, "%s", buf);
    cr_expect_null(strstr(buf, "\r\n0\r\n\r\n"), "no last chunk: %s", buf);
    close(fd);
    tt_proxy_upstream_stats s;
    stats_wait(e.proxy, 0, &s, fail_seen);
    cr_expect_eq(s.failures[TT_PROXY_FAIL_BODY], 1);
    stop_env(&e);
}

Test(proxy, expect_continue_follows_the_upstream)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    char buf[4096];
    raw_send(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "\r\n\r\n");
    cr_expect(strstr(buf, "HTTP/1.1 100 Continue\r\n") == buf, "%s", buf);
    raw_send(fd, "hello");
    raw_read(fd, buf, sizeof buf, "hello");
    cr_expect(strstr(buf, "HTTP/1.1 200") != NULL, "%s", buf);
    cr_expect(strstr(buf, "\r\n\r\nhello") != NULL, "%s", buf);
    close(fd);
    /* the upstream refuses the body at once (over its max_body): no 100 reaches the client */
    fd = raw_connect(e.fport);
    raw_send(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
                 "Expect: 100-continue\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "\r\n\r\n");
    cr_expect(strstr(buf, "HTTP/1.1 413") == buf, "%s", buf);
    close(fd);
    stop_env(&e);
}

Test(proxy, interim_103_relayed)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    char buf[4096];
    raw_send(fd, "GET /early HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(fd, buf, sizeof buf, "final");
    cr_expect(strstr(buf, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                          "HTTP/1.1 200") == buf,
              "%s", buf);
    cr_expect(strstr(buf, "\r\n\r\nfinal") != NULL, "%s", buf);
    close(fd);
    /* an HTTP/1.0 client gets no 1xx */
    fd = raw_connect(e.fport);
    raw_send(fd, "GET /early HTTP/1.0\r\nHost: x\r\n\r\n");
    raw_read(fd, buf, sizeof buf, NULL);
    cr_expect(strstr(buf, "HTTP/1.1 200") == buf, "%s", buf);
    close(fd);
    stop_env(&e);
}

Test(proxy, client_leaving_mid_body_is_not_an_upstream_failure)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    pc.buffer = 16384;
    start_front(&e, &pc);
    for (int i = 0; i < 3; i++) {
        int fd = raw_connect(e.fport);
        char buf[2048];
        raw_send(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        cr_expect_gt(raw_read(fd, buf, sizeof buf, "\r\n\r\n"), 0);
        close(fd); /* ~1 MiB unread */
    }
    tt_exchange x;
    tt_exchange_init(&x);
    cr_assert_eq(request(&e, &x, "GET", "/hello"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_expect_str_eq(x.resp_body, "hello");
    tt_exchange_cleanup(&x);
    tt_proxy_upstream_stats s;
    stats_wait(e.proxy, 0, &s, fail_seen);
    cr_expect_eq(s.leased, 0, "every exchange ended");
    cr_expect_eq(s.failures[TT_PROXY_FAIL_BODY], 0);
    cr_expect_eq(s.failures[TT_PROXY_FAIL_OTHER], 0);
    stop_env(&e);
}

/* The front stops while an exchange waits for an upstream that never answers: the drain
 * deadline passes, the worker's client is freed with the exchange in flight, nothing of the
 * server's is touched after (ASan builds check it). */
Test(proxy, shutdown_with_an_exchange_in_flight)
{
    env e = {0};
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    int lfd = tt_listen(&a, NULL);
    cr_assert_geq(lfd, 0);
    tt_addr l;
    tt_sock_local(lfd, &l);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tt_addr_port(&l));
    tt_proxy_config pc = {0};
    pc.upstreams[0] = url;
    pc.nupstreams = 1;
    e.drain_ms = 300;
    start_front(&e, &pc);
    int fd = raw_connect(e.fport);
    raw_send(fd, "GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n");
    tt_proxy_upstream_stats s;
    for (int k = 0; k < 500; k++) { /* bounded: until the exchange is in flight */
        tt_proxy_stats(e.proxy, 0, &s);
        if (s.leased == 1) break;
        usleep(10000);
    }
    cr_expect_eq(s.leased, 1);
    stop_env(&e); /* returns after the drain deadline; the proxy is freed last */
    char buf[512];
    raw_read(fd, buf, sizeof buf, NULL);
    close(fd);
    close(lfd);
}

Test(proxy, large_head_relayed)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    for (int k = 0; k < 3; k++) { /* the exchange's large-head block comes and goes */
        tt_exchange x;
        tt_exchange_init(&x);
        cr_assert_eq(request(&e, &x, "GET", "/twenty"), 0, "%s", x.error_what);
        cr_expect_eq(x.status, 200);
        char n[32];
        for (int i = 0; i < 20; i++) {
            snprintf(n, sizeof n, "X-Big%d", i);
            const char *v = hdr(&x, n);
            cr_expect(v && strlen(v) == 100, "%s", n);
        }
        cr_expect_str_eq(x.resp_body, "twenty");
        tt_exchange_cleanup(&x);
    }
    stop_env(&e);
}

Test(proxy, head_too_large_is_502_without_its_fields)
{
    env e = {0};
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    tt_exchange x;
    tt_exchange_init(&x);
    cr_assert_eq(request(&e, &x, "GET", "/many"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 502);
    cr_expect_null(hdr(&x, "Set-Cookie"), "no upstream field on the 502");
    cr_expect(x.resp_body && strstr(x.resp_body, "malformed"), "%s", x.resp_body);
    tt_exchange_cleanup(&x);
    stop_env(&e);
}

Test(proxy, buffered_route_bodies)
{
    env e = {0};
    e.buffered = 1;
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    size_t n = 200000;
    char *b = big_body(n);
    tt_exchange x;
    tt_exchange_init(&x);
    x.body = b;
    x.body_len = n;
    cr_assert_eq(request(&e, &x, "POST", "/echo"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_expect_str_eq(hdr(&x, "X-Seen-Len"), "200000");
    cr_assert_eq(x.resp_body_len, n);
    cr_expect_eq(memcmp(x.resp_body, b, n), 0);
    tt_exchange_cleanup(&x);
    src s = {b, n, 0};
    tt_exchange_init(&x);
    x.body_read = src_read;
    x.body_data = &s;
    cr_assert_eq(request(&e, &x, "POST", "/echo"), 0, "%s", x.error_what);
    cr_expect_eq(x.status, 200);
    cr_expect_str_eq(hdr(&x, "X-Seen-Len"), "200000", "a read body goes with its length");
    cr_assert_eq(x.resp_body_len, n);
    tt_exchange_cleanup(&x);
    free(b);
    stop_env(&e);
}

Test(proxy, tls_front_forwards_proto_https)
{
    env e = {0};
    e.tls = 1;
    start_backend(&e);
    tt_proxy_config pc = {0};
    start_front(&e, &pc);
    for (int i = 0; i < 2; i++) {
        tt_exchange x;
        tt_exchange_init(&x);
        cr_assert_eq(request(&e, &x, "GET", "/echo"), 0, "%s", x.error_what);
        cr_expect_eq(x.status, 200);
        cr_expect_str_eq(hdr(&x, "X-Seen-XFP"), "https");
        cr_expect_str_eq(hdr(&x, "X-Seen-XFF"), "127.0.0.1");
        tt_exchange_cleanup(&x);
    }
    stop_env(&e);
}
