/* tether/tls.h — TLS (OpenSSL 3) as one more tt_stream: a context holds the configuration and
 * the state shared by every connection that uses it (certificate, session cache, ticket keys,
 * counters); tt_stream_tls_accept / tt_stream_tls_connect turn an open plain stream into a TLS
 * stream. The owner then drives tt_stream_handshake until 0 and reads and writes through the
 * ordinary tt_stream calls (lib/transport/stream.c dispatches to lib/tls through impl).
 *
 * Threads: a context may be shared by all workers (that is how the server shares its session
 * cache and ticket keys); a stream belongs to one loop thread. Counters are atomics.
 *
 * Errors: negative errno, as the rest of the transport. Handshake failures also leave a reason
 * (enum tt_tls_fail) readable with tt_stream_tls_failure, and are counted per context. */
#ifndef TETHER_TLS_H
#define TETHER_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_tls_ctx tt_tls_ctx;         /* an SSL_CTX with tether's settings and counters */
typedef struct tt_tls_session tt_tls_session; /* a resumable client session (refcounted) */

/* Why a handshake failed (tt_tls_stats.failures, "handshake_failures" in the status JSON). */
enum tt_tls_fail {
    TT_TLS_FAIL_NONE = 0,
    TT_TLS_FAIL_TIMEOUT,     /* the handshake did not finish in time (set by the owner) */
    TT_TLS_FAIL_PLAINTEXT,   /* cleartext HTTP sent to a TLS port (server answers 400) */
    TT_TLS_FAIL_NOT_TLS,     /* bytes that are neither a ClientHello nor HTTP */
    TT_TLS_FAIL_PROTOCOL,    /* version, cipher, ALPN or other protocol alert */
    TT_TLS_FAIL_CERT,        /* the peer's certificate did not verify (client side: curl 60) */
    TT_TLS_FAIL_PEER_CLOSED, /* EOF or RST in the middle of the handshake */
    TT_TLS_FAIL_NREASONS
};
/* Printable name of a failure reason ("timeout", "plaintext", ...); static storage. */
const char *tt_tls_fail_name(int reason);

/* Context options. Zero = default; TT_OFF (tether/common.h) disables what a field names. */
typedef struct tt_tls_opts {
    int server;               /* nonzero: a server context (cert_file and key_file required) */
    const char *cert_file;    /* PEM certificate chain, leaf first (server; client: optional
                                 client certificate) */
    const char *key_file;     /* PEM private key matching cert_file */
    const char *ca_file;      /* client: trust anchors (PEM) instead of the system store */
    int insecure;             /* client: nonzero skips certificate and host name verification */
    int min_version;          /* 12 or 13 (TLS 1.2 / 1.3) [12] */
    const char *ciphers;      /* TLS 1.2 cipher list (OpenSSL syntax) [OpenSSL's default] */
    const char *ciphersuites; /* TLS 1.3 suites [OpenSSL's default] */
    int session_cache;        /* server: TLS 1.2 session cache entries [20480]; client: unused.
                                 TT_OFF: no cache */
    int tickets;              /* server: TLS 1.3 (and 1.2) session tickets [on]; TT_OFF: off */
    int ticket_rotate_s;      /* server: a new ticket key every this many seconds; the previous
                                 one still decrypts for one more period [3600] */
    int handshake_timeout_ms; /* the owner's handshake deadline, kept here so server, client and
                                 bench read one setting [10000]; TT_OFF: none */
} tt_tls_opts;

/* Create a context from o (strings are copied). On failure returns -errno and writes a
 * one-line reason (OpenSSL's error, the file name) into err. *out is owned by the caller. */
int tt_tls_ctx_new(tt_tls_ctx **out, const tt_tls_opts *o, char *err, size_t errlen);
/* Re-read cert_file and key_file (SIGHUP): new handshakes use the new pair, connections open
 * before keep theirs. Any thread. 0, or -errno with err set and the old pair still in use
 * (-EINVAL also for a client context). */
int tt_tls_ctx_reload(tt_tls_ctx *ctx, char *err, size_t errlen);
/* Free a context (after every stream using it is closed). NULL is fine. */
void tt_tls_ctx_free(tt_tls_ctx *ctx);
/* The options the context was created with (defaults filled in); valid while ctx lives. */
const tt_tls_opts *tt_tls_ctx_opts(const tt_tls_ctx *ctx);

/* Counters of a context (all connections, all threads). */
typedef struct tt_tls_stats {
    uint64_t handshakes_full;    /* completed handshakes without resumption */
    uint64_t handshakes_resumed; /* completed handshakes that resumed a session */
    uint64_t failures[TT_TLS_FAIL_NREASONS];
    uint64_t handshake_us_hist[24]; /* completed handshakes by log2(microseconds) */
} tt_tls_stats;
/* Snapshot of ctx's counters into *out. */
void tt_tls_ctx_stats(const tt_tls_ctx *ctx, tt_tls_stats *out);
/* Median handshake time in microseconds of st->handshake_us_hist (interpolated within its
 * log2 bucket; 0 when empty): the one place that reads the histogram (client stats, bench). */
uint64_t tt_tls_stats_handshake_p50_us(const tt_tls_stats *st);
/* Count a failure the owner detected itself (TT_TLS_FAIL_TIMEOUT). */
void tt_tls_ctx_count_failure(tt_tls_ctx *ctx, int reason);

/* Server side: make the open plain stream s a TLS server stream of ctx (no I/O yet). The first
 * tt_stream_handshake peeks at the first bytes: cleartext HTTP turns s back into a plain stream
 * and the handshake returns -EPROTONOSUPPORT (reason TT_TLS_FAIL_PLAINTEXT: the owner answers
 * 400 in cleartext and closes; the request is still unread, and tt_stream_tls_failure of the
 * now plain stream says TT_TLS_FAIL_NONE); other non-TLS bytes return -EPROTO
 * (TT_TLS_FAIL_NOT_TLS). 0, -EINVAL (not a server context) or -ENOMEM. */
int tt_stream_tls_accept(tt_stream *s, tt_tls_ctx *ctx);
/* Client side: make the open (connected or connecting) plain stream s a TLS client stream of
 * ctx. sni: the host name sent as SNI and verified against the certificate (an IP literal is
 * verified against IP subjectAltNames and not sent as SNI); copied; NULL: no name is sent or
 * checked. resume: a session to offer (NULL: none; not consumed). 0 or -errno. */
int tt_stream_tls_connect(tt_stream *s, tt_tls_ctx *ctx, const char *sni,
                          const tt_tls_session *resume);
/* Nonzero when s is a TLS stream. */
int tt_stream_is_tls(const tt_stream *s);
/* Start of the handshake in CLOCK_MONOTONIC microseconds (0 before the first
 * tt_stream_handshake): for the handshake-time histogram and the owner's deadline. */
uint64_t tt_stream_tls_started_us(const tt_stream *s);
/* The reason of the last handshake failure of s (enum tt_tls_fail), with a one-line message
 * (OpenSSL's alert or the verification error, e.g. "certificate has expired") into msg. */
int tt_stream_tls_failure(const tt_stream *s, char *msg, size_t msglen);

/* Nonzero when the stream's input ended without the peer's close_notify (a TCP FIN or RST
 * only): reads then return 0 like a clean end, and a client whose body is delimited by the
 * close must treat it as a truncation (RFC 8446 §6.1). */
int tt_stream_tls_truncated(const tt_stream *s);

/* What a handshake agreed. Strings are static or owned by the stream (valid while it is). */
typedef struct tt_tls_info {
    const char *version; /* "TLSv1.3" */
    const char *cipher;  /* "TLS_AES_128_GCM_SHA256" */
    const char *alpn;    /* "http/1.1", or "" when none was agreed */
    int resumed;         /* the session was resumed */
    char subject[256];   /* the peer certificate's subject (one line), "" when none */
    char issuer[256];    /* its issuer, "" when none */
} tt_tls_info;
/* Fill *out for a TLS stream whose handshake completed. 0, or -EINVAL. */
int tt_stream_tls_info(const tt_stream *s, tt_tls_info *out);

/* Client session for resumption: take a reference to the session s negotiated (NULL when
 * none is resumable yet; with TLS 1.3 tickets arrive after the handshake, so ask after the
 * first response). A TLS 1.3 session resumes once: OpenSSL's client marks a session it resumed
 * as spent, and the server sends a fresh ticket on each resumption, so a cache replaces its
 * entry with the session of every new connection. Release with tt_tls_session_free. */
tt_tls_session *tt_stream_tls_session(const tt_stream *s);
/* Drop a reference (NULL is fine). */
void tt_tls_session_free(tt_tls_session *sess);
/* Nonzero when sess (not consumed) can still be offered: resumable and within its lifetime
 * (SSL_SESSION timeout: the server's ticket lifetime hint for TLS 1.3). */
int tt_tls_session_usable(const tt_tls_session *sess);

#ifdef __cplusplus
}
#endif
#endif
