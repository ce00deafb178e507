/* test_tls.c — the TLS stream (lib/tls) over loopback TCP on one loop, both ends non-blocking
 * tether streams: handshakes (1.2, 1.3), ALPN, SNI, data both ways with short writes, the
 * close_notify / truncation distinction, resumption (tickets, the 1.2 cache, key rotation),
 * reload, plaintext and garbage detection, verification failures, renegotiation refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether/common.h"
#include "tether/loop.h"
#include "tether/socket.h"
#include "tether/stream.h"
#include "tether/tls.h"
#include "tls/tls_int.h"

#define CERTS TT_SOURCE_DIR "/build/certs"

static void certs_once(void)
{
    static int done;
    if (done) return;
    cr_assert_eq(system("sh " TT_SOURCE_DIR "/scripts/mkcerts.sh " CERTS), 0, "mkcerts.sh");
    done = 1;
}

static void nop_cb(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)loop;
    (void)io;
    (void)ev;
}

/* A connected loopback TCP pair, both non-blocking: *c the client end, *s the server end. */
static void tcp_pair(int *c, int *s)
{
    tt_addr addr;
    cr_assert_eq(tt_addr_parse(&addr, "127.0.0.1:0"), 0);
    int l = tt_listen(&addr, NULL);
    cr_assert_geq(l, 0);
    cr_assert_eq(tt_sock_local(l, &addr), 0);
    *c = tt_connect_timeout(&addr, 5000);
    cr_assert_geq(*c, 0);
    fcntl(*c, F_SETFL, fcntl(*c, F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < 1000 && (*s = tt_accept(l, NULL)) == -EAGAIN; i++)
        usleep(5000);
    cr_assert_geq(*s, 0);
    close(l);
}

typedef struct pair {
    tt_loop *loop;
    tt_stream c, s;
    int hc, hs; /* last handshake results */
} pair;

static tt_tls_ctx *server_ctx_with(const char *cert, const char *key, int minv, int tickets,
                                   int cache)
{
    certs_once();
    char path_c[512], path_k[512], err[256];
    snprintf(path_c, sizeof path_c, CERTS "/%s", cert);
    snprintf(path_k, sizeof path_k, CERTS "/%s", key);
    tt_tls_opts o = {.server = 1,
                     .cert_file = path_c,
                     .key_file = path_k,
                     .min_version = minv,
                     .tickets = tickets,
                     .session_cache = cache};
    tt_tls_ctx *ctx;
    int r = tt_tls_ctx_new(&ctx, &o, err, sizeof err);
    cr_assert_eq(r, 0, "server ctx: %s", err);
    return ctx;
}

static tt_tls_ctx *server_ctx(void)
{
    return server_ctx_with("server.pem", "server.key", 0, 0, 0);
}

/* A client context trusting the test CA; max_version 0 = any. */
static tt_tls_ctx *client_ctx_ex(int insecure, int max_version)
{
    certs_once();
    char err[256];
    tt_tls_opts o = {.ca_file = CERTS "/ca.pem", .insecure = insecure};
    tt_tls_ctx *ctx;
    cr_assert_eq(tt_tls_ctx_new(&ctx, &o, err, sizeof err), 0, "client ctx: %s", err);
    if (max_version) SSL_CTX_set_max_proto_version(ctx->ssl, max_version);
    return ctx;
}

static tt_tls_ctx *client_ctx(void)
{
    return client_ctx_ex(0, 0);
}

static void pair_open(pair *p, tt_loop *loop)
{
    int c, s;
    tcp_pair(&c, &s);
    memset(p, 0, sizeof *p);
    p->loop = loop;
    cr_assert_eq(tt_stream_open(&p->c, loop, c, 1, nop_cb, NULL), 0);
    cr_assert_eq(tt_stream_open(&p->s, loop, s, 1, nop_cb, NULL), 0);
}

/* Ready for what the handshake waits for (both directions when it did not say). */
static int hs_ready(const tt_stream *s)
{
    unsigned w = tt_stream_wants(s);
    if (!w) return 1;
    return ((w & TT_READ) && tt_stream_can_read(s)) || ((w & TT_WRITE) && tt_stream_can_write(s));
}

/* Drive both handshakes the way an owner does: call when ready, else wait for an edge. */
static void drive(pair *p)
{
    p->hc = p->hs = -EAGAIN;
    for (int i = 0; i < 2000 && (p->hc == -EAGAIN || p->hs == -EAGAIN); i++) {
        int progressed = 0;
        if (p->hs == -EAGAIN && hs_ready(&p->s)) {
            p->hs = tt_stream_handshake(&p->s);
            progressed = 1;
        }
        if (p->hc == -EAGAIN && hs_ready(&p->c)) {
            p->hc = tt_stream_handshake(&p->c);
            progressed = 1;
        }
        if (!progressed || p->hc == -EAGAIN || p->hs == -EAGAIN) tt_loop_run_once(p->loop, 50);
    }
}

static void pair_close(pair *p)
{
    tt_stream_close(&p->c, p->loop, 0);
    tt_stream_close(&p->s, p->loop, 0);
}

/* Read from s until n bytes arrived into buf (or EOF/error), driving the loop. */
static ssize_t read_n(pair *p, tt_stream *s, char *buf, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < 100000 && got < n; i++) {
        if (!tt_stream_can_read(s)) {
            tt_loop_run_once(p->loop, 50);
            continue;
        }
        ssize_t r = tt_stream_read(s, buf + got, n - got);
        if (r == 0) break;
        if (r < 0 && r != -EAGAIN) return r;
        if (r > 0) got += (size_t)r;
    }
    return (ssize_t)got;
}

Test(tls, handshake_13_alpn_sni_and_data)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    tt_tls_ctx *sc = server_ctx(), *cc = client_ctx();
    pair p;
    pair_open(&p, loop);
    cr_assert_eq(tt_stream_tls_accept(&p.s, sc), 0);
    cr_assert_eq(tt_stream_tls_connect(&p.c, cc, "localhost", NULL), 0);
    cr_assert(tt_stream_is_tls(&p.s) && tt_stream_is_tls(&p.c));
    drive(&p);
    cr_assert_eq(p.hs, 0);
    cr_assert_eq(p.hc, 0);
    tt_tls_info ic, is;
    cr_assert_eq(tt_stream_tls_info(&p.c, &ic), 0);
    cr_assert_eq(tt_stream_tls_info(&p.s, &is), 0);
    cr_assert_str_eq(ic.version, "TLSv1.3");
    cr_assert_str_eq(ic.alpn, "http/1.1");
    cr_assert_str_eq(is.alpn, "http/1.1");
    cr_assert(!ic.resumed);
    cr_assert(strstr(ic.subject, "CN=server"), "subject %s", ic.subject);
    cr_assert(strstr(ic.issuer, "tether test CA"), "issuer %s", ic.issuer);
    const char *sni = SSL_get_servername(((tt__tls *)p.s.impl)->ssl, TLSEXT_NAMETYPE_host_name);
    cr_assert(sni && !strcmp(sni, "localhost"), "SNI seen by the server");

    cr_assert_eq(tt_stream_write(&p.c, "GET / HTTP/1.1\r\n\r\n", 18), 18);
    char buf[64];
    cr_assert_eq(read_n(&p, &p.s, buf, 18), 18);
    cr_assert(!memcmp(buf, "GET / HTTP/1.1\r\n\r\n", 18));
    struct iovec v[2] = {{(void *)"HTTP/1.1 200 OK\r\n", 17}, {(void *)"\r\n", 2}};
    cr_assert_eq(tt_stream_writev(&p.s, v, 2), 19);
    cr_assert_eq(read_n(&p, &p.c, buf, 19), 19);
    cr_assert(!memcmp(buf, "HTTP/1.1 200 OK\r\n\r\n", 19));

    tt_tls_stats st;
    tt_tls_ctx_stats(sc, &st);
    cr_assert_eq(st.handshakes_full, 1);
    cr_assert_eq(st.handshakes_resumed, 0);
    uint64_t h = 0;
    for (int i = 0; i < 24; i++)
        h += st.handshake_us_hist[i];
    cr_assert_eq(h, 1);
    cr_assert_gt(tt_stream_tls_started_us(&p.s), 0);
    pair_close(&p);
    tt_tls_ctx_free(sc);
    tt_tls_ctx_free(cc);
    tt_loop_free(loop);
}

Test(tls, handshake_12)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    tt_tls_ctx *sc = server_ctx(), *cc = client_ctx_ex(0, TLS1_2_VERSION);
    pair p;
    pair_open(&p, loop);
    cr_assert_eq(tt_stream_tls_accept(&p.s, sc), 0);
    cr_assert_eq(tt_stream_tls_connect(&p.c, cc, "localhost", NULL), 0);
    drive(&p);
    cr_assert_eq(p.hs, 0);
    cr_assert_eq(p.hc, 0);
    tt_tls_info ic;
    cr_assert_eq(tt_stream_tls_info(&p.c, &ic), 0);
    cr_assert_str_eq(ic.version, "TLSv1.2");
    cr_assert_str_eq(ic.alpn, "http/1.1");
    pair_close(&p);
    tt_tls_ctx_free(sc);
    tt_tls_ctx_free(cc);
    tt_loop_free(loop);
}

Test(tls, close_notify_vs_truncation)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    tt_tls_ctx *sc = server_ctx(), *cc = client_ctx();
    for (int trunc = 0; trunc < 2; trunc++) {
        pair p;
        pair_open(&p, loop);
        cr_assert_eq(tt_stream_tls_accept(&p.s, sc), 0);
        cr_assert_eq(tt_stream_tls_connect(&p.c, cc, "localhost", NULL), 0);
        drive(&p);
        cr_assert_eq(p.hs, 0);
        cr_assert_eq(tt_stream_write(&p.s, "body", 4), 4);
        if (trunc)
            shutdown(tt_stream_fd(&p.s), SHUT_WR); /* a FIN with no close_notify */
        else
            cr_assert_eq(tt_stream_shutdown(&p.s), 0);
        char buf[16];
        cr_assert_eq(read_n(&p, &p.c, buf, 4), 4);
        ssize_t r = -EAGAIN;
        for (int i = 0; i < 200 && r == -EAGAIN; i++) {
            if (!tt_stream_can_read(&p.c)) tt_loop_run_once(loop, 50);
            r = tt_stream_read(&p.c, buf, sizeof buf);
        }
        cr_assert_eq(r, 0, "end of stream");
        cr_assert(tt_stream_eof(&p.c));
        cr_assert_eq(tt_stream_tls_truncated(&p.c), trunc, "truncated %d", trunc);
        pair_close(&p);
    }
    tt_tls_ctx_free(sc);
    tt_tls_ctx_free(cc);
    tt_loop_free(loop);
}
