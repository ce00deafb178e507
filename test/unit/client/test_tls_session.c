/* test_tls_session.c — the client over https against an in-process TLS server on the client's
 * own loop (the test CA and server certificate of scripts/mkcerts.sh): the handshake state, the
 * route's session pool (filled after a response, one session taken by each new connection, which
 * resumes, so that connections opened at once all resume; bounded, expired sessions dropped; freed
 * with the route: run under SANITIZE=address to see a
 * leak or double free), an idle TLS connection staying healthy, certificate failures mapped
 * to -EKEYREJECTED and never retried. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <time.h>

#include "client/client_int.h"
#include "tether.h"

#define CERTS TT_SOURCE_DIR "/build/certs"

/* ---- a tiny TLS server on the client's loop: one response per request, keep-alive ---- */

enum { MAX_SRV = 24 };

typedef struct srv_conn {
    tt_stream s;
    int hs_done, resumed;
    char buf[4096];
    size_t len;
} srv_conn;

typedef struct srv {
    tt_io lio;
    tt_loop *loop;
    tt_tls_ctx *ctx;
    srv_conn conns[MAX_SRV];
    int nconns, resumed, handshakes, failed;
    int port;
} srv;

static srv S;

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static void srv_conn_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)ev;
    srv_conn *k = io->data;
    if (!k->hs_done) {
        int r = tt_stream_handshake(&k->s);
        if (r == -EAGAIN) return;
        if (r < 0) {
            S.failed++;
            tt_stream_close(&k->s, loop, 0);
            return;
        }
        tt_tls_info in;
        cr_assert_eq(tt_stream_tls_info(&k->s, &in), 0);
        k->hs_done = 1;
        k->resumed = in.resumed;
        S.resumed += in.resumed;
        S.handshakes++;
    }
    for (;;) {
        ssize_t n = tt_stream_read(&k->s, k->buf + k->len, sizeof k->buf - k->len - 1);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            tt_stream_close(&k->s, loop, 0);
            return;
        }
        k->len += (size_t)n;
        k->buf[k->len] = 0;
        char *end = strstr(k->buf, "\r\n\r\n");
        if (!end) continue;
        int close = strstr(k->buf, "Connection: close") != NULL;
        cr_assert_eq(tt_stream_write(&k->s, RESP, sizeof RESP - 1), (ssize_t)(sizeof RESP - 1));
        k->len = 0;
        if (close) {
            tt_stream_shutdown(&k->s);
            tt_stream_close(&k->s, loop, 0);
            return;
        }
    }
}

static void srv_accept(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)ev;
    (void)io;
    int fd;
    while ((fd = tt_accept(S.lio.fd, NULL)) >= 0) {
        cr_assert_lt(S.nconns, MAX_SRV);
        srv_conn *k = &S.conns[S.nconns++];
        cr_assert_eq(tt_stream_open(&k->s, loop, fd, 1, srv_conn_io, k), 0);
        cr_assert_eq(tt_stream_tls_accept(&k->s, S.ctx), 0);
    }
}

/* Start the server on loop with certificate NAME (server, expired, ...). */
static void srv_start(tt_loop *loop, const char *name)
{
    struct stat st;
    if (stat(CERTS "/.done", &st) != 0)
        cr_assert_eq(system("sh " TT_SOURCE_DIR "/scripts/mkcerts.sh " CERTS), 0);
    memset(&S, 0, sizeof S);
    S.loop = loop;
    char cert[512], key[512], err[256];
    snprintf(cert, sizeof cert, "%s/%s.pem", CERTS, name);
    snprintf(key, sizeof key, "%s/%s.key", CERTS, name);
    tt_tls_opts o = {.server = 1, .cert_file = cert, .key_file = key};
    cr_assert_eq(tt_tls_ctx_new(&S.ctx, &o, err, sizeof err), 0, "%s", err);
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    int lfd = tt_listen(&a, NULL);
    cr_assert_geq(lfd, 0);
    tt_addr b;
    tt_sock_local(lfd, &b);
    S.port = tt_addr_port(&b);
    cr_assert_eq(tt_io_start(loop, &S.lio, lfd, TT_READ, 0, srv_accept, &S), 0);
}

static void srv_stop(void)
{
    for (int i = 0; i < S.nconns; i++)
        tt_stream_close(&S.conns[i].s, S.loop, 0);
    tt_io_close(S.loop, &S.lio);
    tt_tls_ctx_free(S.ctx);
}

/* One test's client, server and exchange. */
typedef struct fx {
    tt_client *c;
    tt_exchange x;
    char url[64];
} fx;

/* A client (trusting the test CA; insecure: -k; trace: its hook) and a server with certificate
 * cert on its loop; url points to the server by host. */
static void fx_start(fx *f, const char *cert, int insecure, const char *host,
                     void (*trace)(void *, const char *, unsigned, int, int))
{
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.ca_file = CERTS "/ca.pem";
    o.insecure = insecure;
    o.trace = trace;
    o.max_per_route = 8;
    cr_assert_eq(tt_client_new(&f->c, &o), 0);
    srv_start(tt_client_loop(f->c), cert);
    snprintf(f->url, sizeof f->url, "https://%s:%d/", host, S.port);
    tt_exchange_init(&f->x);
}

/* The server first (it lives on the client's loop), then the client (which frees the route's
 * cached session: ASan sees a leak or a double free). */
static void fx_end(fx *f)
{
    tt_exchange_cleanup(&f->x);
    srv_stop();
    tt_client_free(f->c);
}

/* One request on f's URL (close: Connection: close). x->error. */
static int fetch(fx *f, int close)
{
    tt_exchange_reset(&f->x);
    f->x.url = f->url;
    f->x.no_keepalive = close;
    return tt_client_request(f->c, &f->x);
}

static tt__route *https_route(tt_client *c)
{
    tt__list *n = tt__list_first(&c->routes);
    cr_assert_not_null(n);
    tt__route *rt = tt__list_entry(n, tt__route, link);
    cr_assert(rt->tls);
    return rt;
}

static tt_client_stats stats(fx *f)
{
    tt_client_stats st;
    tt_client_get_stats(f->c, &st);
    return st;
}

Test(tls_session, cached_replaced_offered_resumed)
{
    fx f;
    fx_start(&f, "server", 0, "127.0.0.1", NULL);
    cr_assert_eq(fetch(&f, 1), 0, "%s", f.x.error_what);
    cr_assert_eq(f.x.status, 200);
    cr_assert_str_eq(f.x.resp_body, "ok");
    tt__route *rt = https_route(f.c);
    cr_assert_eq(rt->nsess, 1, "no session cached after the first response");
    cr_assert_eq(S.resumed, 0);
    /* the next connection offers it and resumes */
    cr_assert_eq(fetch(&f, 1), 0, "%s", f.x.error_what);
    cr_assert_eq(S.handshakes, 2);
    cr_assert_eq(S.resumed, 1);
    cr_assert_eq(rt->nsess, 1); /* the offered one was taken, the fresh one put back */
    /* OpenSSL's client uses a TLS 1.3 ticket once: the next connection resumes with the fresh
     * ticket the resumed one received, which replaced the spent session in the route */
    cr_assert_eq(fetch(&f, 1), 0, "%s", f.x.error_what);
    cr_assert_eq(fetch(&f, 1), 0, "%s", f.x.error_what);
    cr_assert_eq(S.handshakes, 4);
    cr_assert_eq(S.resumed, 3);
    cr_assert_eq(rt->nsess, 1);
    tt_client_stats st = stats(&f);
    cr_assert_eq(st.tls_handshakes_full, 1);
    cr_assert_eq(st.tls_handshakes_resumed, 3);
    cr_assert_gt(st.tls_handshake_us_p50, 0);
    fx_end(&f);
}

/* Start n exchanges on f's client at once (close: Connection: close) and run them all. */
static int ndone;
static void on_done(tt_exchange *x)
{
    (void)x;
    ndone++;
}
static void fetch_at_once(fx *f, tt_exchange *xs, int n, int close)
{
    ndone = 0;
    for (int i = 0; i < n; i++) {
        tt_exchange_init(&xs[i]);
        xs[i].url = f->url;
        xs[i].no_keepalive = close;
        xs[i].on_done = on_done;
        cr_assert_eq(tt_client_start(f->c, &xs[i]), 0, "%s", xs[i].error_what);
    }
    for (int t = 0; t < 100 && ndone < n; t++) /* bounded: 100 x 200 ms */
        tt_client_wait(f->c, 200);
    cr_assert_eq(ndone, n);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(xs[i].error, 0, "%s", xs[i].error_what);
        cr_assert_eq(xs[i].status, 200);
        tt_exchange_cleanup(&xs[i]);
    }
}

/* A TLS 1.3 session resumes once, so the route keeps a pool of them: after a warm-up of N
 * connections at once, the next N opened at once each take their own session and all resume
 * (one cached session would resume one of them). More than the pool's bound would not. */
Test(tls_session, connections_opened_at_once_all_resume)
{
    enum { N = 8 }; /* the default max_per_route, so the pool's size */
    fx f;
    fx_start(&f, "server", 0, "127.0.0.1", NULL);
    tt_exchange xs[N];
    fetch_at_once(&f, xs, N, 1);
    cr_assert_eq(S.handshakes, N);
    cr_assert_eq(S.resumed, 0);
    tt__route *rt = https_route(f.c);
    cr_assert_eq(rt->nsess, N, "each connection gives its session after its first response");
    fetch_at_once(&f, xs, N, 1);
    cr_assert_eq(S.handshakes, 2 * N);
    cr_assert_eq(S.resumed, N, "connections opened at once resumed %d of %d", S.resumed, N);
    cr_assert_eq(rt->nsess, N);
    tt_client_stats st = stats(&f);
    cr_assert_eq(st.tls_handshakes_full, N);
    cr_assert_eq(st.tls_handshakes_resumed, N);
    fx_end(&f);
}

/* The pool is bounded (the oldest goes) and drops an expired session instead of offering it. */
Test(tls_session, pool_bounded_and_expired_dropped)
{
    fx f;
    fx_start(&f, "server", 0, "127.0.0.1", NULL);
    cr_assert_eq(fetch(&f, 1), 0, "%s", f.x.error_what);
    tt__route *rt = https_route(f.c);
    cr_assert_eq(rt->nsess, 1);
    tt_tls_session *s = rt->sess[0];
    cr_assert(tt_tls_session_usable(s));
    for (int i = 0; i < rt->sesscap + 2; i++) {
        SSL_SESSION_up_ref((SSL_SESSION *)s);
        tt__tls_keep_session(rt, s);
    }
    cr_assert_eq(rt->sesscap, 8, "the pool is max_per_route large");
    cr_assert_eq(rt->nsess, 8);
    /* expire them all: the next connection offers none and makes a full handshake */
    SSL_SESSION_set_time((SSL_SESSION *)s,
                         (long)time(NULL) - 3 * SSL_SESSION_get_timeout((SSL_SESSION *)s));
    cr_assert(!tt_tls_session_usable(s));
    cr_assert_null(tt__tls_take_session(rt));
    cr_assert_eq(rt->nsess, 0);
    cr_assert_eq(fetch(&f, 1), 0, "%s", f.x.error_what);
    cr_assert_eq(S.resumed, 0);
    cr_assert_eq(stats(&f).tls_handshakes_full, 2);
    fx_end(&f);
}

Test(tls_session, idle_tls_connection_is_reused)
{
    fx f;
    fx_start(&f, "server", 0, "127.0.0.1", NULL);
    cr_assert_eq(fetch(&f, 0), 0, "%s", f.x.error_what);
    unsigned id = f.x.conn_id;
    /* idle for a while on the loop: late tickets are not stray bytes */
    tt_client_wait(f.c, 100);
    cr_assert_eq(stats(&f).idle, 1);
    cr_assert_eq(fetch(&f, 0), 0, "%s", f.x.error_what);
    cr_assert(f.x.reused);
    cr_assert_eq(f.x.conn_id, id);
    cr_assert_eq(S.handshakes, 1);
    fx_end(&f);
}

Test(tls_session, expired_certificate_is_rejected_not_retried)
{
    fx f;
    fx_start(&f, "expired", 0, "127.0.0.1", NULL);
    cr_assert_eq(fetch(&f, 0), -EKEYREJECTED);
    cr_assert_eq(strncmp(f.x.error_what, "certificate: ", 13), 0, "%s", f.x.error_what);
    cr_assert_eq(f.x.retries, 0);
    cr_assert_eq(f.x.sent_state, TT_NOT_SENT);
    cr_assert_eq(stats(&f).tls_failures, 1);
    cr_assert_eq(stats(&f).open, 0);
    fx_end(&f);
}

Test(tls_session, insecure_accepts_a_self_signed_certificate)
{
    fx f;
    fx_start(&f, "self", 1, "localhost", NULL);
    cr_assert_eq(fetch(&f, 0), 0, "%s", f.x.error_what);
    cr_assert_eq(f.x.status, 200);
    fx_end(&f);
}

/* The trace hook sees connecting → handshaking → busy for a new https connection. */
static int saw_hs;
static void trace(void *d, const char *m, unsigned id, int from, int to)
{
    (void)d;
    (void)id;
    if (!strcmp(m, "conn") && from == TT_CLIENT_CONN_CONNECTING && to == TT_CLIENT_CONN_HANDSHAKING)
        saw_hs |= 1;
    if (!strcmp(m, "conn") && from == TT_CLIENT_CONN_HANDSHAKING && to == TT_CLIENT_CONN_BUSY)
        saw_hs |= 2;
}

Test(tls_session, handshaking_state_traced)
{
    fx f;
    saw_hs = 0;
    fx_start(&f, "server", 0, "127.0.0.1", trace);
    cr_assert_eq(fetch(&f, 0), 0, "%s", f.x.error_what);
    cr_assert_eq(saw_hs, 3);
    fx_end(&f);
}

/* tls_server_name replaces the URL's host as SNI and as the name verified (the proxy's
 * --upstream-sni): the test certificate names localhost and 127.0.0.1, not wrong.example. */
Test(tls_session, server_name_is_the_name_verified)
{
    const char *names[] = {"localhost", "wrong.example"};
    for (int k = 0; k < 2; k++) {
        tt_client_opts o;
        tt_client_opts_default(&o);
        o.ca_file = CERTS "/ca.pem";
        o.tls_server_name = names[k];
        fx f;
        cr_assert_eq(tt_client_new(&f.c, &o), 0);
        srv_start(tt_client_loop(f.c), "server");
        snprintf(f.url, sizeof f.url, "https://127.0.0.1:%d/", S.port);
        tt_exchange_init(&f.x);
        int r = fetch(&f, 1);
        if (k == 0) {
            cr_expect_eq(r, 0, "%s", f.x.error_what);
            cr_expect_eq(f.x.status, 200);
        } else {
            cr_expect_eq(r, -EKEYREJECTED, "%d %s", r, f.x.error_what);
        }
        fx_end(&f);
    }
}
