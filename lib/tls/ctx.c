/* ctx.c — the TLS context: one SSL_CTX with tether's settings shared by every worker, the
 * ticket keys it rotates, the certificate a reload swaps in, and the counters. The streams that
 * use it are in tls.c. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/api.h"
#include "tether/common.h"
#include "tls/tls_int.h"

static const char *const FAIL_NAMES[TT_TLS_FAIL_NREASONS] = {
    "none", "timeout", "plaintext", "not_tls", "protocol", "cert", "peer_closed",
};

TT_API const char *tt_tls_fail_name(int reason)
{
    if (reason < 0 || reason >= TT_TLS_FAIL_NREASONS) return "unknown";
    return FAIL_NAMES[reason];
}

uint64_t tt__tls_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Write "what: OpenSSL's reason" into err and clear the error queue; returns -EINVAL. */
static int fail(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char ossl[160] = "";
    if (e) ERR_error_string_n(e, ossl, sizeof ossl);
    ERR_clear_error();
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "",
                 ossl[0] ? ": " : "", ossl);
    return -EINVAL;
}

static void bundle_unref(tt_tls_ctx *c, tt__tls_bundle *b)
{
    if (!b) return;
    pthread_mutex_lock(&c->lock);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last) return;
    X509_free(b->leaf);
    sk_X509_pop_free(b->chain, X509_free);
    EVP_PKEY_free(b->key);
    free(b);
}

/* Read a PEM chain (leaf first) and its key into a new bundle (refs 1), or NULL with err set. */
static tt__tls_bundle *bundle_load(const char *cert, const char *key, char *err, size_t errlen)
{
    tt__tls_bundle *b = calloc(1, sizeof *b);
    BIO *in = NULL;
    if (!b) return NULL;
    b->refs = 1;
    ERR_clear_error();
    if (!(in = BIO_new_file(cert, "r")) || !(b->leaf = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
        fail(err, errlen, "cannot read certificate", cert);
        goto bad;
    }
    if (!(b->chain = sk_X509_new_null())) goto bad;
    X509 *x;
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)))
        if (!sk_X509_push(b->chain, x)) {
            X509_free(x);
            goto bad;
        }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(in);
    if (!(in = BIO_new_file(key, "r")) ||
        !(b->key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL))) {
        fail(err, errlen, "cannot read private key", key);
        goto bad;
    }
    if (X509_check_private_key(b->leaf, b->key) != 1) {
        fail(err, errlen, "private key does not match the certificate", cert);
        goto bad;
    }
    BIO_free(in);
    return b;
bad:
    BIO_free(in);
    X509_free(b->leaf);
    sk_X509_pop_free(b->chain, X509_free);
    EVP_PKEY_free(b->key);
    free(b);
    return NULL;
}

/* SSL_CTX_set_cert_cb: after a reload, install the current bundle on this handshake's SSL. */
static int cert_cb(SSL *ssl, void *arg)
{
    tt_tls_ctx *c = arg;
    if (!__atomic_load_n(&c->bundle, __ATOMIC_ACQUIRE)) return 1; /* never reloaded */
    pthread_mutex_lock(&c->lock);
    tt__tls_bundle *b = c->bundle;
    b->refs++;
    pthread_mutex_unlock(&c->lock);
    int r = SSL_use_cert_and_key(ssl, b->leaf, b->key, b->chain, 1);
    bundle_unref(c, b);
    return r == 1;
}

TT_API int tt_tls_ctx_reload(tt_tls_ctx *c, char *err, size_t errlen)
{
    if (!c->opts.server) {
        if (err && errlen) snprintf(err, errlen, "not a server context");
        return -EINVAL;
    }
    tt__tls_bundle *b = bundle_load(c->cert_file, c->key_file, err, errlen);
    if (!b) return -EINVAL;
    pthread_mutex_lock(&c->lock);
    tt__tls_bundle *old = c->bundle;
    __atomic_store_n(&c->bundle, b, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->lock);
    bundle_unref(c, old);
    return 0;
}

static void new_key(tt__tls_tkey *k)
{
    if (RAND_bytes((unsigned char *)k, (int)sizeof *k) != 1) abort(); /* no entropy: unsafe */
}

void tt__tls_ctx_rotate_tickets(tt_tls_ctx *c)
{
    pthread_mutex_lock(&c->lock);
    c->keys[1] = c->keys[0];
    new_key(&c->keys[0]);
    c->nkeys = 2;
    pthread_mutex_unlock(&c->lock);
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: encrypt new tickets with the current key, decrypt with
 * the current or the previous one (then 2: issue a fresh ticket). Keys rotate lazily here. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    tt_tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    tt__tls_tkey k;
    int r = 1;
    pthread_mutex_lock(&c->lock);
    if (c->opts.ticket_rotate_s > 0) {
        uint64_t now = tt__tls_now_us() / 1000000u;
        if (now >= c->key_next_s) {
            c->keys[1] = c->keys[0];
            new_key(&c->keys[0]);
            c->nkeys = 2;
            c->key_next_s = now + (uint64_t)c->opts.ticket_rotate_s;
        }
    }
    if (enc) {
        k = c->keys[0];
    } else if (!memcmp(name, c->keys[0].name, 16)) {
        k = c->keys[0];
    } else if (c->nkeys > 1 && !memcmp(name, c->keys[1].name, 16)) {
        k = c->keys[1];
        r = 2;
    } else {
        r = 0;
    }
    pthread_mutex_unlock(&c->lock);
    if (!r) return 0; /* unknown key: a full handshake */
    /* TLS 1.3 clients use a session once (OpenSSL's does): a resumption earns a new ticket. */
    if (!enc && SSL_version(ssl) >= TLS1_3_VERSION) r = 2;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_octet_string("key", k.hmac, sizeof k.hmac),
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, 16) != 1) return -1;
        if (EVP_EncryptInit_ex(cctx, c->aes, NULL, k.aes, iv) != 1) return -1;
    } else if (EVP_DecryptInit_ex(cctx, c->aes, NULL, k.aes, iv) != 1) {
        return -1;
    }
    if (EVP_MAC_CTX_set_params(hctx, p) != 1) return -1;
    OPENSSL_cleanse(&k, sizeof k);
    return r;
}

/* ALPN (server): select http/1.1 when the client offers it, else agree on nothing. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    for (unsigned i = 0; i < inlen; i += 1u + in[i])
        if (in[i] == 8 && i + 9 <= inlen && !memcmp(in + i + 1, "http/1.1", 8)) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copy o into c with defaults filled in and strings owned. 0 or -ENOMEM. */
static int set_opts(tt_tls_ctx *c, const tt_tls_opts *o)
{
    c->opts = *o;
    tt_tls_opts *d = &c->opts;
    if (!d->min_version) d->min_version = 12;
    if (!d->session_cache) d->session_cache = 20480;
    if (!d->ticket_rotate_s) d->ticket_rotate_s = 3600;
    if (!d->handshake_timeout_ms) d->handshake_timeout_ms = 10000;
    d->cert_file = c->cert_file = dup_opt(o->cert_file);
    d->key_file = c->key_file = dup_opt(o->key_file);
    d->ca_file = c->ca_file = dup_opt(o->ca_file);
    d->ciphers = c->ciphers = dup_opt(o->ciphers);
    d->ciphersuites = c->ciphersuites = dup_opt(o->ciphersuites);
    if ((o->cert_file && !c->cert_file) || (o->key_file && !c->key_file) ||
        (o->ca_file && !c->ca_file) || (o->ciphers && !c->ciphers) ||
        (o->ciphersuites && !c->ciphersuites))
        return -ENOMEM;
    return 0;
}

/* Settings common to both sides: versions, ciphers, modes, renegotiation off. */
static int setup_common(tt_tls_ctx *c, char *err, size_t errlen)
{
    SSL_CTX *s = c->ssl;
    const tt_tls_opts *o = &c->opts;
    if (o->min_version != 12 && o->min_version != 13) {
        if (err && errlen) snprintf(err, errlen, "TLS minimum version must be 1.2 or 1.3");
        return -EINVAL;
    }
    SSL_CTX_set_min_proto_version(s, o->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (o->ciphers && SSL_CTX_set_cipher_list(s, o->ciphers) != 1)
        return fail(err, errlen, "bad TLS 1.2 cipher list", o->ciphers);
    if (o->ciphersuites && SSL_CTX_set_ciphersuites(s, o->ciphersuites) != 1)
        return fail(err, errlen, "bad TLS 1.3 cipher suites", o->ciphersuites);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(s, 1); /* one recv per burst of records, not two per record */
    SSL_CTX_set_app_data(s, c);
    if (o->cert_file || o->key_file) {
        if (!o->cert_file || !o->key_file) {
            if (err && errlen) snprintf(err, errlen, "cert_file and key_file go together");
            return -EINVAL;
        }
        tt__tls_bundle *b = bundle_load(o->cert_file, o->key_file, err, errlen);
        if (!b) return -EINVAL;
        int r = SSL_CTX_use_cert_and_key(s, b->leaf, b->key, b->chain, 1);
        bundle_unref(c, b);
        if (r != 1) return fail(err, errlen, "cannot use certificate", o->cert_file);
    }
    return 0;
}

static int setup_server(tt_tls_ctx *c, char *err, size_t errlen)
{
    SSL_CTX *s = c->ssl;
    const tt_tls_opts *o = &c->opts;
    if (!o->cert_file) {
        if (err && errlen) snprintf(err, errlen, "a TLS server needs a certificate and a key");
        return -EINVAL;
    }
    SSL_CTX_set_cert_cb(s, cert_cb, c);
    SSL_CTX_set_alpn_select_cb(s, alpn_cb, c);
    SSL_CTX_set_session_id_context(s, (const unsigned char *)"tether", 6);
    if (o->session_cache == TT_OFF) {
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    } else {
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(s, o->session_cache);
    }
    if (o->tickets == TT_OFF) {
        SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
        if (o->session_cache == TT_OFF) SSL_CTX_set_num_tickets(s, 0);
    } else {
        /* Fetched once: EVP_aes_256_cbc() would look the provider's cipher up per ticket. */
        if (!(c->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)))
            return fail(err, errlen, "cannot fetch AES-256-CBC for tickets", NULL);
        new_key(&c->keys[0]);
        c->nkeys = 1;
        c->key_next_s = tt__tls_now_us() / 1000000u + (uint64_t)o->ticket_rotate_s;
        SSL_CTX_set_num_tickets(s, 1);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(s, ticket_cb);
    }
    return 0;
}

static int setup_client(tt_tls_ctx *c, char *err, size_t errlen)
{
    SSL_CTX *s = c->ssl;
    const tt_tls_opts *o = &c->opts;
    static const unsigned char alpn[] = "\x08http/1.1";
    if (SSL_CTX_set_alpn_protos(s, alpn, sizeof alpn - 1) != 0)
        return fail(err, errlen, "cannot set ALPN", NULL);
    /* Sessions are handed to the owner (tt_stream_tls_session), not kept in the SSL_CTX. */
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    if (o->insecure) {
        SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(s, o->ca_file, NULL) != 1)
            return fail(err, errlen, "cannot load CA file", o->ca_file);
    } else if (SSL_CTX_set_default_verify_paths(s) != 1) {
        return fail(err, errlen, "cannot load the system trust store", NULL);
    }
    return 0;
}

TT_API int tt_tls_ctx_new(tt_tls_ctx **out, const tt_tls_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen) err[0] = 0;
    tt_tls_ctx *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    int r = set_opts(c, o);
    if (r < 0) goto bad;
    ERR_clear_error();
    c->ssl = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (!c->ssl) {
        r = fail(err, errlen, "cannot create an SSL_CTX", NULL);
        goto bad;
    }
    r = setup_common(c, err, errlen);
    if (r == 0) r = o->server ? setup_server(c, err, errlen) : setup_client(c, err, errlen);
    if (r < 0) goto bad;
    *out = c;
    return 0;
bad:
    tt_tls_ctx_free(c);
    return r;
}

TT_API void tt_tls_ctx_free(tt_tls_ctx *c)
{
    if (!c) return;
    SSL_CTX_free(c->ssl);
    EVP_CIPHER_free(c->aes);
    tt__tls_bundle *b = c->bundle;
    c->bundle = NULL;
    bundle_unref(c, b);
    OPENSSL_cleanse(c->keys, sizeof c->keys);
    pthread_mutex_destroy(&c->lock);
    free(c->cert_file);
    free(c->key_file);
    free(c->ca_file);
    free(c->ciphers);
    free(c->ciphersuites);
    free(c);
}

TT_API const tt_tls_opts *tt_tls_ctx_opts(const tt_tls_ctx *c)
{
    return &c->opts;
}

TT_API void tt_tls_ctx_stats(const tt_tls_ctx *c, tt_tls_stats *out)
{
    out->handshakes_full = __atomic_load_n(&c->full, __ATOMIC_RELAXED);
    out->handshakes_resumed = __atomic_load_n(&c->resumed, __ATOMIC_RELAXED);
    for (int i = 0; i < TT_TLS_FAIL_NREASONS; i++)
        out->failures[i] = __atomic_load_n(&c->failures[i], __ATOMIC_RELAXED);
    for (int i = 0; i < 24; i++)
        out->handshake_us_hist[i] = __atomic_load_n(&c->hist[i], __ATOMIC_RELAXED);
}

TT_API uint64_t tt_tls_stats_handshake_p50_us(const tt_tls_stats *st)
{
    enum { N = sizeof st->handshake_us_hist / sizeof st->handshake_us_hist[0] };
    const uint64_t *h = st->handshake_us_hist; /* bucket i: [2^i, 2^(i+1)), bucket 0 also 0 */
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < N; i++)
        total += h[i];
    if (!total) return 0;
    uint64_t want = (total + 1) / 2;
    for (int i = 0; i < N; i++) {
        if (seen + h[i] >= want) {
            uint64_t lo = i ? (uint64_t)1 << i : 0, hi = (uint64_t)1 << (i + 1);
            return lo + (hi - lo) * (2 * (want - seen) - 1) / (2 * h[i]); /* 1 sample: middle */
        }
        seen += h[i];
    }
    return 0;
}

TT_API void tt_tls_ctx_count_failure(tt_tls_ctx *c, int reason)
{
    if (reason <= 0 || reason >= TT_TLS_FAIL_NREASONS) return;
    __atomic_fetch_add(&c->failures[reason], 1, __ATOMIC_RELAXED);
}

void tt__tls_ctx_count_done(tt_tls_ctx *c, int resumed, uint64_t us)
{
    __atomic_fetch_add(resumed ? &c->resumed : &c->full, 1, __ATOMIC_RELAXED);
    int b = 0;
    while (us > 1 && b < 23) {
        us >>= 1;
        b++;
    }
    __atomic_fetch_add(&c->hist[b], 1, __ATOMIC_RELAXED);
}
