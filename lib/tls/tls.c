/* tls.c — the TLS stream: tt_stream_ops over an SSL object whose BIO does recv/send with
 * MSG_NOSIGNAL on the stream's socket, the server's plaintext check (MSG_PEEK), and the
 * readiness bookkeeping of the edge-triggered contract (tether/stream.h): a read clears TT_READ
 * only when the socket is drained and OpenSSL holds nothing more; an SSL call that waits for
 * the other direction sets TT_STREAM_RD_WANTS_WR / TT_STREAM_WR_WANTS_RD. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/api.h"
#include "tls/tls_int.h"

#define TLS(s) ((tt__tls *)(s)->impl)

static const tt_stream_ops tls_ops;

/* Before an SSL call whose failure SSL_get_error classifies: an empty error queue. Peeking
 * first: ERR_clear_error walks all 16 slots every time, a measurable cost per request, while
 * the queue is almost always empty already (every failure path here clears it). */
static inline void clear_errors(void)
{
    if (ERR_peek_error()) ERR_clear_error();
}

/* --- the BIO: the socket under OpenSSL ------------------------------------------------- */

static int bio_read(BIO *b, char *buf, int len)
{
    tt__tls *t = BIO_get_data(b);
    ssize_t n;
    BIO_clear_retry_flags(b);
    do
        n = recv(t->fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        if (n < len) t->flags |= TT__TLS_F_DRAINED;
        return (int)n;
    }
    if (n == 0) {
        t->flags |= TT__TLS_F_EOF;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->flags |= TT__TLS_F_DRAINED;
        BIO_set_retry_read(b);
    } else {
        t->err = errno;
    }
    return -1;
}

static int bio_write(BIO *b, const char *buf, int len)
{
    tt__tls *t = BIO_get_data(b);
    ssize_t n;
    BIO_clear_retry_flags(b);
    do
        n = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0) return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    else
        t->err = errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    tt__tls *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1; /* nothing is buffered here */
    case BIO_CTRL_EOF: return t && (t->flags & TT__TLS_F_EOF);
    default: return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;
static void bio_method_init(void)
{
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tether socket");
    if (!bio_method) return;
    BIO_meth_set_write(bio_method, bio_write);
    BIO_meth_set_read(bio_method, bio_read);
    BIO_meth_set_ctrl(bio_method, bio_ctrl);
    BIO_meth_set_create(bio_method, bio_create);
}

/* A new impl for s with an SSL of ctx reading and writing s's socket, or NULL. */
static tt__tls *tls_new(tt_stream *s, tt_tls_ctx *ctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bio_method_init);
    if (!bio_method || s->impl) return NULL;
    tt__tls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ops = &tls_ops;
    t->ctx = ctx;
    t->fd = s->io.fd;
    BIO *b = NULL;
    if (!(t->ssl = SSL_new(ctx->ssl)) || !(b = BIO_new(bio_method))) {
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b);
    return t;
}

/* --- handshake ------------------------------------------------------------------------- */

/* End the handshake with reason (counted once); returns err. */
static int hs_fail(tt__tls *t, int reason, int err)
{
    t->state = TT__TLS_FAILED;
    t->fail = (uint8_t)reason;
    t->wants = 0;
    if (!(t->flags & TT__TLS_F_COUNTED)) {
        t->flags |= TT__TLS_F_COUNTED;
        tt_tls_ctx_count_failure(t->ctx, reason);
    }
    return err;
}

/* Server, before SSL_accept: classify the first bytes without consuming them. 1: TLS,
 * -EAGAIN: wait for more, -EPROTONOSUPPORT: cleartext HTTP (s is plain again), -errno. */
static int peek_first(tt_stream *s, tt__tls *t)
{
    unsigned char p[16];
    ssize_t n;
    do
        n = recv(t->fd, p, sizeof p, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        s->io.ready &= (uint16_t)~TT_READ;
        t->wants = TT_READ;
        return -EAGAIN;
    }
    if (n <= 0) {
        t->err = n < 0 ? errno : 0;
        return hs_fail(t, TT_TLS_FAIL_PEER_CLOSED, n < 0 ? -errno : -ECONNRESET);
    }
    if (p[0] == 0x16) /* handshake record; a bad version fails in SSL_accept as PROTOCOL */
        return n < 2 || p[1] == 0x03 ? 1 : hs_fail(t, TT_TLS_FAIL_NOT_TLS, -EPROTO);
    ssize_t i = 0;
    while (i < n && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    if (i == n && n < (ssize_t)sizeof p && !(s->io.ready & (TT_RDHUP | TT_HUP))) {
        s->io.ready &= (uint16_t)~TT_READ; /* a method token so far: wait for the rest */
        t->wants = TT_READ;
        return -EAGAIN;
    }
    if (i == 0 || i == n || p[i] != ' ') return hs_fail(t, TT_TLS_FAIL_NOT_TLS, -EPROTO);
    tt_tls_ctx_count_failure(t->ctx, TT_TLS_FAIL_PLAINTEXT);
    SSL_free(t->ssl);
    free(t);
    s->impl = NULL; /* a plain stream again: the owner reads the request and answers 400 */
    return -EPROTONOSUPPORT;
}

/* Map a failed SSL_do_handshake to a reason and an errno. */
static int hs_error(tt__tls *t)
{
    long v = SSL_get_verify_result(t->ssl);
    t->ossl_err = ERR_peek_last_error();
    ERR_clear_error();
    if (!SSL_is_server(t->ssl) && (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) &&
        v != X509_V_OK) /* insecure clients record a result too: it is not the reason */
        return hs_fail(t, TT_TLS_FAIL_CERT, -EPROTO);
    if (t->err) return hs_fail(t, TT_TLS_FAIL_PEER_CLOSED, -t->err);
    /* An alert or a bad message is the reason even when the peer closed right after it. */
    if (t->ossl_err && ERR_GET_REASON(t->ossl_err) != SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return hs_fail(t, TT_TLS_FAIL_PROTOCOL, -EPROTO);
    if (t->flags & TT__TLS_F_EOF) return hs_fail(t, TT_TLS_FAIL_PEER_CLOSED, -ECONNRESET);
    return hs_fail(t, TT_TLS_FAIL_PROTOCOL, -EPROTO);
}

static int tls_handshake(tt_stream *s)
{
    tt__tls *t = TLS(s);
    if (t->state == TT__TLS_OPEN) return 0;
    if (t->state == TT__TLS_FAILED)
        return t->fail == TT_TLS_FAIL_PEER_CLOSED ? -ECONNRESET : -EPROTO;
    if (!t->started_us) t->started_us = tt__tls_now_us();
    if (t->state == TT__TLS_PEEK) {
        int r = peek_first(s, t);
        if (r <= 0) return r;
        t->state = TT__TLS_HANDSHAKE;
    }
    clear_errors();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->state = TT__TLS_OPEN;
        t->wants = 0;
        t->flags |= TT__TLS_F_COUNTED;
        uint64_t now = tt__tls_now_us();
        tt__tls_ctx_count_done(t->ctx, SSL_session_reused(t->ssl),
                               now > t->started_us ? now - t->started_us : 0);
        /* Data read ahead with the last flight (a TLS 1.3 client's first request) */
        if (SSL_has_pending(t->ssl)) s->io.ready |= TT_READ;
        return 0;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->io.ready &= (uint16_t)~TT_READ;
        t->wants = TT_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->io.ready &= (uint16_t)~TT_WRITE;
        t->wants = TT_WRITE;
        return -EAGAIN;
    default: return hs_error(t);
    }
}

/* --- data ------------------------------------------------------------------------------ */

static ssize_t tls_read(tt_stream *s, void *buf, size_t len)
{
    tt__tls *t = TLS(s);
    if (t->state != TT__TLS_OPEN) {
        int h = tls_handshake(s);
        if (h < 0) return h;
    }
    clear_errors();
    t->flags &= (uint8_t)~TT__TLS_F_DRAINED;
    s->io.ready &= (uint16_t)~TT_STREAM_RD_WANTS_WR;
    int r = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (r > 0) {
        /* Drained socket and nothing decrypted or read ahead: the next read would block.
         * Otherwise input may remain: keep (or, after a read that waited for a write edge,
         * restore) TT_READ so that the owner reads on. */
        if ((t->flags & TT__TLS_F_DRAINED) && !SSL_has_pending(t->ssl) &&
            !(s->io.ready & (TT_RDHUP | TT_HUP))) {
            s->io.ready &= (uint16_t)~TT_READ;
            SSL_free_buffers(t->ssl); /* see below */
        } else {
            s->io.ready |= TT_READ;
        }
        return r;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->io.ready &= (uint16_t) ~(TT_READ | TT_RDHUP);
        /* RELEASE_BUFFERS misses the read buffer after a post-handshake message (a TLS 1.3
         * ticket): 16 KiB an idle client connection would keep. A no-op when in use. */
        SSL_free_buffers(t->ssl);
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->io.ready =
            (uint16_t)((s->io.ready & ~(TT_READ | TT_RDHUP | TT_WRITE)) | TT_STREAM_RD_WANTS_WR);
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify */
    default:
        ERR_clear_error();
        if (t->err) return -t->err;
        if (t->flags & TT__TLS_F_EOF) {
            t->flags |= TT__TLS_F_TRUNCATED; /* FIN without close_notify */
            return 0;
        }
        return -EPROTO;
    }
}

static ssize_t tls_writev(tt_stream *s, const struct iovec *iov, int iovcnt)
{
    tt__tls *t = TLS(s);
    if (iovcnt <= 0) return 0;
    if (t->state != TT__TLS_OPEN) {
        int h = tls_handshake(s);
        if (h < 0) return h;
    }
    /* Small pieces (head + body) go out as one record; a retry after WANT_WRITE passes the
     * same bytes again, so it builds the same first record. */
    char tmp[16384];
    const void *p = iov[0].iov_base;
    size_t n = iov[0].iov_len;
    if (iovcnt > 1 && n < sizeof tmp) {
        n = 0;
        for (int i = 0; i < iovcnt && n < sizeof tmp; i++) {
            size_t k = iov[i].iov_len < sizeof tmp - n ? iov[i].iov_len : sizeof tmp - n;
            memcpy(tmp + n, iov[i].iov_base, k);
            n += k;
        }
        p = tmp;
    }
    if (n == 0) return 0;
    clear_errors();
    s->io.ready &= (uint16_t)~TT_STREAM_WR_WANTS_RD;
    int r = SSL_write(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0) {
        s->io.ready |= TT_WRITE; /* after a write that waited for a read edge */
        return r;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_WRITE: return -EAGAIN; /* the stream clears TT_WRITE */
    case SSL_ERROR_WANT_READ:
        s->io.ready = (uint16_t)((s->io.ready & ~TT_READ) | TT_STREAM_WR_WANTS_RD);
        return -EAGAIN;
    default: ERR_clear_error(); return t->err ? -t->err : -EPIPE;
    }
}

/* close_notify (once, after a completed handshake); the stream then sends the FIN. */
static int tls_shutdown(tt_stream *s)
{
    tt__tls *t = TLS(s);
    if (t->state != TT__TLS_OPEN || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) return 0;
    ERR_clear_error();
    int r = SSL_shutdown(t->ssl);
    if (r >= 0) return 0;
    int e = SSL_get_error(t->ssl, r);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_WRITE ? -EAGAIN : -EPIPE;
}

static void tls_free(tt_stream *s)
{
    tt__tls *t = TLS(s);
    /* A connection closed without close_notify keeps its session resumable (as nginx does):
     * OpenSSL would otherwise mark it not resumable in SSL_free. */
    if (t->state == TT__TLS_OPEN)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl);
    free(t);
    s->impl = NULL;
}

static unsigned tls_wants(const tt_stream *s)
{
    const tt__tls *t = TLS(s);
    if (t->state != TT__TLS_OPEN) return t->wants;
    return (s->io.ready & TT_STREAM_RD_WANTS_WR ? TT_WRITE : 0u) |
           (s->io.ready & TT_STREAM_WR_WANTS_RD ? TT_READ : 0u);
}

static const tt_stream_ops tls_ops = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = NULL, /* the caller falls back to pread + write */
    .shutdown = tls_shutdown,
    .free = tls_free,
    .wants = tls_wants,
};

/* --- public ---------------------------------------------------------------------------- */

TT_API int tt_stream_tls_accept(tt_stream *s, tt_tls_ctx *ctx)
{
    if (!ctx->opts.server) return -EINVAL;
    tt__tls *t = tls_new(s, ctx);
    if (!t) return -ENOMEM;
    SSL_set_accept_state(t->ssl);
    t->state = TT__TLS_PEEK;
    s->impl = t;
    return 0;
}

/* Nonzero when name is an IP literal; the address text (no brackets) goes to ip. */
static int ip_literal(const char *name, char *ip, size_t iplen)
{
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') name++, n -= 2;
    if (n >= iplen) return 0;
    memcpy(ip, name, n);
    ip[n] = 0;
    unsigned char a[16];
    return inet_pton(AF_INET, ip, a) == 1 || inet_pton(AF_INET6, ip, a) == 1;
}

TT_API int tt_stream_tls_connect(tt_stream *s, tt_tls_ctx *ctx, const char *sni,
                                 const tt_tls_session *resume)
{
    if (ctx->opts.server) return -EINVAL;
    tt__tls *t = tls_new(s, ctx);
    if (!t) return -ENOMEM;
    SSL_set_connect_state(t->ssl);
    t->state = TT__TLS_HANDSHAKE;
    int ok = 1;
    char ip[64];
    if (sni && *sni) {
        if (ip_literal(sni, ip, sizeof ip)) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip) == 1;
        } else {
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set_tlsext_host_name(t->ssl, sni) == 1 && SSL_set1_host(t->ssl, sni) == 1;
        }
    }
    if (ok && resume) ok = SSL_set_session(t->ssl, (SSL_SESSION *)resume) == 1;
    if (!ok) {
        ERR_clear_error();
        SSL_free(t->ssl);
        free(t);
        return -EINVAL;
    }
    s->impl = t;
    return 0;
}

TT_API int tt_stream_is_tls(const tt_stream *s)
{
    return s->impl && *(const tt_stream_ops *const *)s->impl == &tls_ops;
}

TT_API uint64_t tt_stream_tls_started_us(const tt_stream *s)
{
    return tt_stream_is_tls(s) ? TLS(s)->started_us : 0;
}

TT_API int tt_stream_tls_failure(const tt_stream *s, char *msg, size_t msglen)
{
    if (msg && msglen) msg[0] = 0;
    if (!tt_stream_is_tls(s)) return TT_TLS_FAIL_NONE;
    const tt__tls *t = TLS(s);
    if (!msg || !msglen) return t->fail;
    const char *m = NULL;
    switch (t->fail) {
    case TT_TLS_FAIL_CERT: m = X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)); break;
    case TT_TLS_FAIL_NOT_TLS: m = "not a TLS handshake"; break;
    case TT_TLS_FAIL_PEER_CLOSED:
        m = t->err ? strerror(t->err) : "connection closed during the TLS handshake";
        break;
    case TT_TLS_FAIL_PROTOCOL:
        m = t->ossl_err ? ERR_reason_error_string(t->ossl_err) : NULL;
        if (!m) m = "TLS protocol error";
        break;
    default: break;
    }
    if (m) snprintf(msg, msglen, "%s", m);
    return t->fail;
}

TT_API int tt_stream_tls_truncated(const tt_stream *s)
{
    return tt_stream_is_tls(s) && (TLS(s)->flags & TT__TLS_F_TRUNCATED);
}

/* One line "CN=a,O=b" of name into out. */
static void name_line(const X509_NAME *name, char *out, size_t outlen)
{
    out[0] = 0;
    BIO *m = BIO_new(BIO_s_mem());
    if (!m) return;
    if (X509_NAME_print_ex(m, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int n = BIO_read(m, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = 0;
    }
    BIO_free(m);
}

TT_API int tt_stream_tls_info(const tt_stream *s, tt_tls_info *out)
{
    memset(out, 0, sizeof *out);
    if (!tt_stream_is_tls(s) || TLS(s)->state != TT__TLS_OPEN) return -EINVAL;
    SSL *ssl = TLS(s)->ssl;
    out->version = SSL_get_version(ssl);
    out->cipher = SSL_get_cipher_name(ssl);
    const unsigned char *a;
    unsigned alen;
    SSL_get0_alpn_selected(ssl, &a, &alen);
    out->alpn = alen == 8 && !memcmp(a, "http/1.1", 8) ? "http/1.1" : "";
    out->resumed = SSL_session_reused(ssl);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer) {
        name_line(X509_get_subject_name(peer), out->subject, sizeof out->subject);
        name_line(X509_get_issuer_name(peer), out->issuer, sizeof out->issuer);
    }
    return 0;
}

TT_API tt_tls_session *tt_stream_tls_session(const tt_stream *s)
{
    if (!tt_stream_is_tls(s) || TLS(s)->state != TT__TLS_OPEN) return NULL;
    SSL_SESSION *sess = SSL_get1_session(TLS(s)->ssl);
    if (sess && !SSL_SESSION_is_resumable(sess)) {
        SSL_SESSION_free(sess);
        sess = NULL;
    }
    return (tt_tls_session *)sess;
}

TT_API void tt_tls_session_free(tt_tls_session *sess)
{
    SSL_SESSION_free((SSL_SESSION *)sess);
}

TT_API int tt_tls_session_usable(const tt_tls_session *sess)
{
    const SSL_SESSION *ss = (const SSL_SESSION *)sess;
    if (!ss || !SSL_SESSION_is_resumable(ss)) return 0;
    long t = SSL_SESSION_get_time(ss), life = SSL_SESSION_get_timeout(ss);
    return time(NULL) < t + life;
}
