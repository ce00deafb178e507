/* tether/client.h — HTTP/1.1 client with a connection pool keyed by route (scheme, host, port);
 * https:// URLs run over TLS (tether/tls.h), with a per-route session cache for resumption.
 *
 * One pool, two APIs: the blocking tt_client_request (runs the client's loop until the exchange
 * completes) and the asynchronous tt_client_start (completion callback on the loop). Both lease a
 * connection (warmest idle first, FIFO queue with a timeout when at the limits), send, read the
 * response, then decide whether the connection may be reused and until when (see docs/client.md).
 * Idle connections stay registered on the loop: a FIN, RST or stray byte evicts them at once.
 *
 * Memory: a tt_exchange is owned by the caller; its response buffers (head, body, trailers) are
 * allocated by the library, grown as needed, kept across reuse of the same exchange and freed by
 * tt_exchange_cleanup. A client is single-threaded: use it from its loop's thread only. */
#ifndef TETHER_CLIENT_H
#define TETHER_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "loop.h"
#include "socket.h"
#include "timer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_client tt_client;
typedef struct tt_exchange tt_exchange;

/* Client options. tt_client_opts_default fills the defaults. Convention (tether/common.h): a
 * field left 0 takes its default, TT_OFF disables the limit or feature it names. */
typedef struct tt_client_opts {
    int max_per_route;        /* connections per route (default 8; TT_OFF: no limit) */
    int max_total;            /* connections in all (default 64; TT_OFF: no limit) */
    int max_idle_per_route;   /* idle connections kept per route (default and TT_OFF:
                                 max_per_route) */
    int lease_timeout_ms;     /* max wait in the lease queue (default 10000; TT_OFF: no limit of
                                 its own, total_timeout_ms still applies) */
    int connect_timeout_ms;   /* TCP connect (default 5000; TT_OFF: the kernel's limit) */
    int head_timeout_ms;      /* a deadline from the request's start of writing (streamed
                                 body: its last byte written) to the complete response head (a
                                 server dribbling header bytes does not extend it), then
                                 inactivity while reading the body, suspended while paused
                                 (default 30000; TT_OFF: none) */
    int total_timeout_ms;     /* whole exchange incl. retries (default and TT_OFF: none) */
    int idle_timeout_ms;      /* client-side idle limit for pooled connections (default 30000;
                                 TT_OFF: none, server hints and lifetime still apply) */
    int max_lifetime_ms;      /* connection age limit (default 300000, with jitter; TT_OFF:
                                 unlimited) */
    int lifetime_jitter_pct;  /* jitter on max_lifetime_ms in percent (default 10; TT_OFF: 0) */
    int leak_warn_ms;         /* warn when an exchange holds a lease this long (default 60000;
                                 TT_OFF: no warning) */
    int continue_timeout_ms;  /* wait for 100 Continue before sending the body (default 1000;
                                 TT_OFF: wait up to head_timeout_ms) */
    int dns_ttl_ms;           /* re-resolve a route's host after this (default 30000; TT_OFF:
                                 never, once resolved) */
    int max_retries_not_sent; /* retries of never-sent requests (default 3; TT_OFF: none) */
    int pipelining;           /* >1: up to this many GET/HEAD in flight per connection (default and
                                 TT_OFF: off) */
    int no_nodelay;           /* nonzero: leave Nagle on (TCP_NODELAY is on by default) */
    tt_keepalive tcp_keepalive; /* TCP keepalive probes (all 0: off) */
    /* Diagnostics sink (leak warnings, -v trace); NULL: leak warnings go to stderr. */
    void (*log)(void *data, const char *line);
    void *log_data;
    int verbose; /* also log connection events (open, reuse, close with reason) */
    /* State-machine trace (NULL: none): called on every transition, machine "conn" (id: the
     * connection's id, states enum tt_client_conn_state) or "exchange" (id: a per-client
     * serial number of the exchange run, phases enum tt_exchange_phase). Runs on the loop
     * thread inside the library: it must not call back into the client. */
    void (*trace)(void *data, const char *machine, unsigned id, int from, int to);
    void *trace_data;
    /* Response body budget in bytes, collected or given to on_body (default and TT_OFF: no
     * limit). A Content-Length above it fails at the head, a body growing past it as it
     * arrives; both with -EFBIG ("body too large"), the connection closed (curl's
     * --max-filesize). */
    long long max_body_size;
    /* Slow bodies (curl's --speed-limit / --speed-time): an exchange whose response body
     * arrives slower than low_speed_limit bytes/s over low_speed_time_ms fails with -ETIMEDOUT
     * ("too slow"). low_speed_limit 0/TT_OFF: off; low_speed_time_ms default 30000. */
    long long low_speed_limit;
    int low_speed_time_ms;
    /* Connect every route to this Unix-domain socket path instead of the URL's host (curl's
     * --unix-socket; Host and the pool's routes still come from the URL). NULL: TCP. The
     * string must outlive the client. */
    const char *unix_socket;
    /* TLS for https:// URLs (one context per client, created on the first https route and
     * freed with the client). Strings must outlive the client. */
    const char *ca_file;          /* PEM trust anchors instead of the system store (curl's
                                     --cacert); NULL: the system store */
    int insecure;                 /* nonzero: skip certificate and host name verification (-k) */
    int tls_min_version;          /* 12 or 13 (default 12: TLS 1.2) */
    const char *ciphers;          /* TLS 1.2 cipher list (OpenSSL syntax); NULL: OpenSSL's */
    int tls_handshake_timeout_ms; /* from TCP connected to handshake done, on top of
                                     connect_timeout_ms (default 10000; TT_OFF: none) */
} tt_client_opts;

/* States of a pooled connection (trace hook, machine "conn"). */
enum tt_client_conn_state {
    TT_CLIENT_CONN_NEW = 0,    /* not yet opened */
    TT_CLIENT_CONN_CONNECTING, /* TCP connect in progress */
    TT_CLIENT_CONN_BUSY,       /* leased: carrying one exchange (or a pipeline) */
    TT_CLIENT_CONN_IDLE,       /* in the pool, watched for FIN/RST/stray bytes */
    TT_CLIENT_CONN_CLOSED,     /* closed and freed right after */
    TT_CLIENT_CONN_HANDSHAKING /* TCP connected, TLS handshake in progress (https) */
};

/* Phases of an exchange (trace hook, machine "exchange"). */
enum tt_exchange_phase {
    TT_X_NONE = 0,      /* prepared, not yet started */
    TT_X_QUEUED,        /* waiting in the lease queue */
    TT_X_CONNECTING,    /* its connection is being opened */
    TT_X_SENDING,       /* writing the request */
    TT_X_WAIT_CONTINUE, /* head written, waiting for 100 Continue before the body */
    TT_X_READING,       /* request written, reading the response */
    TT_X_DONE           /* completed (x->error tells how) */
};

/* Printable name of a state of machine "conn" or "exchange" ("busy", "reading", ...); static. */
const char *tt_client_state_name(const char *machine, int state);

/* Why a pooled connection was closed. */
enum tt_evict_reason {
    TT_EVICT_IDLE,         /* client idle timeout */
    TT_EVICT_SERVER_HINT,  /* server's Keep-Alive: timeout (minus margin) or learned idle close */
    TT_EVICT_MAX_REQUESTS, /* server's max= budget or Connection: close after N requests */
    TT_EVICT_LIFETIME,     /* max lifetime reached */
    TT_EVICT_PEER_CLOSED,  /* FIN/RST/stray bytes seen while idle */
    TT_EVICT_ERROR,        /* I/O or protocol error */
    TT_EVICT_NOT_REUSABLE, /* Connection: close, HTTP/1.0, close-delimited, body unread */
    TT_EVICT_DNS,          /* its address left the DNS answer */
    TT_EVICT_POOL_FULL,    /* too many idle, or room needed for another route */
    TT_EVICT_SHUTDOWN,     /* client freed */
    TT_EVICT_NREASONS
};

/* Why a request was retried. */
enum tt_retry_reason {
    TT_RETRY_NOT_SENT,        /* nothing written, or connection seen closed before writing */
    TT_RETRY_MAYBE_PROCESSED, /* idempotent request, sent, connection failed before a response */
    TT_RETRY_NREASONS
};

/* Whether a failed request may have reached the server. */
enum tt_sent_state {
    TT_NOT_SENT = 0,       /* no byte written: the server cannot have processed it */
    TT_MAYBE_PROCESSED = 1 /* bytes written: the server may have acted on it */
};

enum { TT_CLIENT_WAIT_BUCKETS = 16 }; /* lease-wait histogram: <1ms, <2ms, <4ms, ... ≥16s */

/* Pool-wide counters. */
typedef struct tt_client_stats {
    uint64_t requests;           /* exchanges completed (success or failure) */
    uint64_t errors;             /* exchanges that failed */
    uint64_t connections_opened; /* TCP connections established */
    uint64_t connections_reused; /* requests sent on a connection that carried one before */
    uint64_t retries;            /* total retries */
    uint64_t retries_by[TT_RETRY_NREASONS];
    uint64_t evictions[TT_EVICT_NREASONS];
    uint64_t lease_wait[TT_CLIENT_WAIT_BUCKETS]; /* lease waits by log2(ms) bucket */
    int open, leased, idle, pending;             /* current gauges */
    /* TLS (https routes; all 0 without one) */
    uint64_t tls_handshakes_full;    /* completed handshakes without resumption */
    uint64_t tls_handshakes_resumed; /* completed handshakes that resumed a route's session */
    uint64_t tls_handshake_us_p50;   /* median handshake time, microseconds (from a log2
                                        histogram, interpolated within the bucket) */
    uint64_t tls_failures;           /* handshakes that failed (certificate, protocol, timeout) */
} tt_client_stats;

/* Per-route view. */
typedef struct tt_route_stats {
    char host[256];
    int port;
    int leased, idle, pending, connecting;
    uint64_t opened, requests, reused;
    uint64_t learned_idle_ms; /* idle-close time learned from the server (0: unknown) */
    int tls;                  /* an https route (the route key includes the scheme) */
} tt_route_stats;

/* Called when an asynchronous exchange completes (x->error tells how). x may be reused or
 * cleaned up inside the callback. */
typedef void (*tt_exchange_cb)(tt_exchange *x);
/* Receives response body bytes (valid during the call only). Return 0, TT_BODY_PAUSE to stop
 * delivery until tt_exchange_resume (the socket is not read, nothing is buffered beyond the
 * connection's read buffer, the head/inactivity timeout is suspended: only total_timeout_ms
 * runs), or another nonzero value to abort the exchange (the connection is then not reused).
 * When the bytes paused on were the body's last, the exchange completes anyway (on_done). */
typedef int (*tt_body_cb)(tt_exchange *x, const char *data, size_t len);
/* Called once with the final response head (x->status, x->hdrs, x->head, x->resp_framing,
 * tt_exchange_header valid), before any body byte; also for responses without a body (HEAD,
 * 204, 304). Return 0, or nonzero to abort the exchange (-ECANCELED, connection not reused). */
typedef int (*tt_head_cb)(tt_exchange *x);
/* Called for each 1xx interim response except 101, also the 100 Continue an expect_continue
 * request waits for (head: its raw bytes, status line to the blank line's CRLF, valid during
 * the call only). Return 0, or nonzero to abort (-ECANCELED, connection not reused). */
typedef int (*tt_info_cb)(tt_exchange *x, int status, const char *head, size_t len);
/* Produces request body bytes: returns bytes written to buf (at most cap; 0 at the end),
 * -EAGAIN when none are available yet (the request head is written meanwhile; call
 * tt_exchange_body_ready when there are), or -errno (the exchange fails with it, the connection
 * is closed, no retry). */
typedef ssize_t (*tt_body_read_cb)(void *data, char *buf, size_t cap);
/* Rewinds a streamed request body to its start for a replay: 0, or -errno if impossible. */
typedef int (*tt_body_rewind_cb)(void *data);

enum { TT_CLIENT_MAX_HEADERS = 64 };
/* Bytes reserved for the library's private part of a tt_exchange. */
#define TT_EXCHANGE_PRIV_SIZE 448

/* How the final response's body is delimited (tt_exchange.resp_framing). */
enum tt_resp_framing {
    TT_FRAMING_NONE = 0, /* no body: HEAD, 1xx, 204, 304, or Content-Length absent on such */
    TT_FRAMING_LENGTH,   /* Content-Length (tt_exchange_header "Content-Length" gives it) */
    TT_FRAMING_CHUNKED,  /* Transfer-Encoding: chunked (trailers in x->trailers at on_done) */
    TT_FRAMING_CLOSE     /* delimited by the connection's close (never reused) */
};

/* Offsets of one response header field inside tt_exchange.head. */
typedef struct tt_hdr_span {
    uint32_t name, name_len, value, value_len;
} tt_hdr_span;

/* One request/response exchange. Zero it (tt_exchange_init), set the request fields, start it.
 * Request strings and body must stay valid until completion. */
struct tt_exchange {
    /* ---- request (caller) ---- */
    const char *method;         /* "GET" when NULL */
    const char *url;            /* http[s]://host[:port]/path?query */
    const char *const *headers; /* "Name: value" lines, without CRLF (checked: CR, LF, NUL or
                                   a bad name refuse the request; Content-Length,
                                   Transfer-Encoding and Connection are the library's and are
                                   dropped, a "close" token in Connection is honoured) */
    int nheaders;
    const void *body;              /* in-memory body (Content-Length), or NULL */
    size_t body_len;               /* length of body */
    tt_body_read_cb body_read;     /* streamed body (chunked) when body is NULL */
    tt_body_rewind_cb body_rewind; /* NULL: a streamed body is never replayed */
    void *body_data;
    int http10;             /* send HTTP/1.0 (no keep-alive unless keep_alive10) */
    int no_keepalive;       /* send Connection: close and do not pool the connection */
    int expect_continue;    /* send Expect: 100-continue and wait before the body */
    int idempotent;         /* 1: treat as idempotent even if the method is not (Idempotency-Key is
                               detected automatically) */
    tt_body_cb on_body;     /* NULL: the body is collected in resp_body/resp_body_len (bound it
                               with opts.max_body_size) */
    tt_exchange_cb on_done; /* async completion */
    void *data;             /* caller's pointer */
    tt_head_cb on_head;     /* final response head, before the body (NULL: none) */
    tt_info_cb on_info;     /* 1xx interim responses (NULL: counted in informational only) */
    long long body_stream_len;        /* body_read: > 0 frames the streamed body with this
                                         Content-Length (it must produce exactly that many bytes,
                                         then 0; fewer or more fail the exchange with -EPROTO and
                                         close the connection); 0: chunked */
    const char *const *body_trailers; /* body_read, chunked: "Name: value" trailer lines sent
                                         after the last chunk (read when body_read returns 0;
                                         checked like headers, and framing, routing, auth and
                                         content fields refused: -EINVAL "bad trailer") */
    int nbody_trailers;

    /* ---- outcome (library) ---- */
    int error;              /* 0 or a negative errno (-ETIMEDOUT, -ECONNRESET, -EPROTO, ...).
                               TLS: -EKEYREJECTED the certificate did not verify (error_what
                               "certificate: <reason>"), -EPROTO the handshake failed ("tls
                               handshake: <reason>"), -EPIPE a close-delimited body ended
                               without close_notify ("truncated: no close_notify"); neither
                               handshake failure is retried. A "certificate: "/"tls handshake: "
                               text lives in the route: valid until the client is freed. */
    const char *error_what; /* short text for error ("connect", "lease timeout", ...) */
    int sent_state;         /* on error: TT_NOT_SENT or TT_MAYBE_PROCESSED */
    int status;             /* final status code */
    int resp_framing;       /* enum tt_resp_framing of the final response (set before on_head) */
    int version_minor;      /* 0 or 1 */
    char *head;             /* raw final response head, NUL-terminated (status line + fields) */
    size_t head_len;
    tt_hdr_span hdrs[TT_CLIENT_MAX_HEADERS];
    int nhdrs;
    char *resp_body; /* collected body (when on_body is NULL), NUL-terminated */
    size_t resp_body_len;
    char *trailers; /* raw trailer fields of a chunked response ("" when none) */
    size_t trailers_len;
    int informational;      /* 1xx responses received before the final one */
    int reused;             /* the final attempt ran on a connection reused from the pool */
    unsigned conn_id;       /* id of the connection that carried the final attempt */
    int retries;            /* retries made */
    int retry_reason;       /* reason of the last retry (enum tt_retry_reason) */
    int conn_kept;          /* the connection went back to the pool */
    int close_reason;       /* when not kept: enum tt_evict_reason */
    uint64_t lease_wait_ms; /* time spent waiting for a connection */

    /* ---- internal (do not touch): the library's state, opaque ---- */
    struct {
        _Alignas(8) unsigned char opaque[TT_EXCHANGE_PRIV_SIZE];
    } priv;
};

/* Defaults into o. */
void tt_client_opts_default(tt_client_opts *o);
/* Create a client with its own loop (blocking use). opts may be NULL. *out owned by caller. */
int tt_client_new(tt_client **out, const tt_client_opts *opts);
/* Create a client on an existing loop (asynchronous use); the loop must outlive the client. */
int tt_client_new_on(tt_client **out, tt_loop *loop, const tt_client_opts *opts);
/* Close every connection, fail pending exchanges with -ECANCELED, free the client (and its own
 * loop). */
void tt_client_free(tt_client *c);
/* The loop the client runs on (owned by the client for tt_client_new). */
tt_loop *tt_client_loop(tt_client *c);

/* Zero x (call once before the first use; reuse keeps the response buffers). */
void tt_exchange_init(tt_exchange *x);
/* Forget the outcome of a previous run but keep buffers, so x can be started again. */
void tt_exchange_reset(tt_exchange *x);
/* Free x's response buffers (x itself belongs to the caller). */
void tt_exchange_cleanup(tt_exchange *x);
/* A response header value by case-insensitive name (first match); *len gets its length. Points
 * into x->head; NULL when absent. */
const char *tt_exchange_header(const tt_exchange *x, const char *name, size_t *len);

/* Blocking: run the exchange to completion on the client's loop. Returns x->error (also for a
 * request refused before it starts, as tt_client_start). Records file:line for leak warnings
 * (use the macro). Not from inside a loop callback. */
int tt_client_request_at(tt_client *c, tt_exchange *x, const char *file, int line);
#define tt_client_request(c, x) tt_client_request_at((c), (x), __FILE__, __LINE__)
/* Asynchronous: start the exchange; x->on_done runs on the loop when it completes (never
 * inside this call). Returns 0, or a negative errno without calling on_done (x->error_what
 * says why): a bad URL, -EINVAL for an invalid header line ("bad header") or method/target
 * ("bad request line"). */
int tt_client_start_at(tt_client *c, tt_exchange *x, const char *file, int line);
#define tt_client_start(c, x) tt_client_start_at((c), (x), __FILE__, __LINE__)
/* Resume body delivery after on_body returned TT_BODY_PAUSE (loop thread; also allowed inside
 * that on_body call). The bytes already buffered follow from the loop, then the socket, never
 * inside this call. 0, or -EINVAL when x is not paused (or completed meanwhile). */
int tt_exchange_resume(tt_exchange *x);
/* A streamed request body (body_read) that returned -EAGAIN has bytes (or its end) again:
 * body_read is called from the loop, never inside this call (loop thread). While it waits, the
 * exchange has no timeout of its own: head_timeout_ms runs from the last body byte written
 * (and total_timeout_ms). 0, or -EINVAL when x is not waiting for body bytes. */
int tt_exchange_body_ready(tt_exchange *x);
/* Run the client's loop for up to ms milliseconds (watching idle connections), or until
 * nothing is in flight when ms < 0. Returns 0 or a negative errno. */
int tt_client_wait(tt_client *c, int ms);

/* Snapshot of the pool-wide counters. */
void tt_client_get_stats(tt_client *c, tt_client_stats *s);
/* Per-route stats into out (up to max). Returns the number of routes. */
int tt_client_route_stats(tt_client *c, tt_route_stats *out, int max);
/* The stats as one JSON object (no newline) into buf. Returns the length it needed. */
size_t tt_client_stats_json(tt_client *c, char *buf, size_t size);
/* Printable name of an eviction reason ("idle", "server_hint", ...); static storage. */
const char *tt_evict_reason_name(int reason);
/* Printable name of a retry reason ("not_sent", "maybe_processed"); static storage. */
const char *tt_retry_reason_name(int reason);

#ifdef __cplusplus
}
#endif
#endif
