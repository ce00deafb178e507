/* tls_int.h — internal: the TLS context (ctx.c) as the stream code (tls.c) and the unit tests
 * see it. One tt_tls_ctx wraps one SSL_CTX shared by every worker; its mutable parts (ticket
 * keys, the reloaded certificate) sit behind one mutex, its counters are relaxed atomics. */
#ifndef TT_TLS_INT_H
#define TT_TLS_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>

#include "tether/tls.h"

/* One ticket key: name (matched against incoming tickets), HMAC and AES-256 keys. */
typedef struct tt__tls_tkey {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
} tt__tls_tkey;

/* A certificate chain and key loaded by tt_tls_ctx_reload, refcounted under ctx->lock. */
typedef struct tt__tls_bundle {
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    int refs;
} tt__tls_bundle;

struct tt_tls_ctx {
    SSL_CTX *ssl;
    tt_tls_opts opts; /* defaults filled in; strings owned (below) */
    char *cert_file, *key_file, *ca_file, *ciphers, *ciphersuites;
    pthread_mutex_t lock;   /* guards keys, key_next_s, bundle */
    tt__tls_tkey keys[2];   /* [0] current (encrypts), [1] previous (still decrypts) */
    int nkeys;              /* keys in use: 1, then 2 after the first rotation */
    uint64_t key_next_s;    /* CLOCK_MONOTONIC second of the next rotation */
    tt__tls_bundle *bundle; /* NULL until the first reload: the SSL_CTX's own pair is used */
    EVP_CIPHER *aes;        /* AES-256-CBC for tickets (a server with tickets), fetched once */
    uint64_t full, resumed; /* counters (atomics) */
    uint64_t failures[TT_TLS_FAIL_NREASONS];
    uint64_t hist[24];
};

/* A TLS stream's impl (tt_stream.impl), one malloc per connection. */
typedef struct tt__tls {
    const tt_stream_ops *ops; /* first: the stream dispatches through it */
    SSL *ssl;
    tt_tls_ctx *ctx;
    uint64_t started_us;    /* first tt_stream_handshake, CLOCK_MONOTONIC */
    unsigned long ossl_err; /* OpenSSL's error of a failed handshake (for the message) */
    int fd;                 /* the socket (the BIO's) */
    int err;                /* errno of the BIO's last failed recv/send */
    uint8_t state;          /* TT__TLS_PEEK, _HANDSHAKE, _OPEN, _FAILED */
    uint8_t wants;          /* TT_READ / TT_WRITE the handshake waits for */
    uint8_t fail;           /* enum tt_tls_fail */
    uint8_t flags;          /* TT__TLS_F_* */
} tt__tls;

enum { TT__TLS_PEEK, TT__TLS_HANDSHAKE, TT__TLS_OPEN, TT__TLS_FAILED };
enum {
    TT__TLS_F_DRAINED = 1,   /* a recv came back short or EAGAIN since the last SSL call */
    TT__TLS_F_EOF = 2,       /* a recv returned 0 */
    TT__TLS_F_TRUNCATED = 4, /* input ended without close_notify */
    TT__TLS_F_COUNTED = 8,   /* the handshake's outcome was counted */
};

/* Count a completed handshake of us microseconds. */
void tt__tls_ctx_count_done(tt_tls_ctx *ctx, int resumed, uint64_t us);
/* Rotate the ticket keys now (tests; the context rotates by itself every ticket_rotate_s). */
void tt__tls_ctx_rotate_tickets(tt_tls_ctx *ctx);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t tt__tls_now_us(void);

#endif
