/* tether/proxy.h — a keep-alive reverse proxy as a route handler: requests arriving at a
 * tt_server route are sent to one of a set of upstreams over a pooled tt_client (one per
 * worker thread), streamed both ways under flow control, with hop-by-hop fields removed, Via
 * and X-Forwarded-* added, passive health checks, retries by the client pool's contract and
 * per-upstream statistics (docs/proxy.md).
 *
 * Use: fill a tt_proxy_config, tt_proxy_new, mount tt_proxy_handler with the proxy as route
 * data and the TT_ROUTE_STREAM_BODY flag (tt_proxy_mount does that), tt_server_new, then
 * tt_proxy_attach (per-worker clients are freed as each worker stops), tt_server_run,
 * tt_server_free, and tt_proxy_free last.
 *
 * Configuration follows the library's one convention (tether/common.h): a field left 0 takes
 * its default, TT_OFF (-1) disables the limit or feature it names. Durations are ms. */
#ifndef TETHER_PROXY_H
#define TETHER_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "json.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_PROXY_MAX_UPSTREAMS 32 /* upstreams per proxy */

typedef struct tt_proxy tt_proxy;

/* tt_proxy_config.balance */
enum tt_proxy_balance {
    TT_PROXY_LEAST_CONN = 0,  /* fewest exchanges in flight (ties: round-robin) [default] */
    TT_PROXY_ROUND_ROBIN = 1, /* each upstream in turn */
};

/* Proxy configuration: a plain struct; 0 = the default in brackets, TT_OFF as said per field. */
typedef struct tt_proxy_config {
    const char *upstreams[TT_PROXY_MAX_UPSTREAMS]; /* "http://HOST[:PORT]" or
                                                      "https://HOST[:PORT]" (ports 80, 443; no
                                                      path: the request's target is sent as it
                                                      came, prefix kept); copied by tt_proxy_new */
    int nupstreams;                                /* entries in upstreams (at least 1) */
    int keepalive;             /* idle connections kept per upstream and worker, as nginx's
                                  keepalive N [32]; TT_OFF: none (a connection per request) */
    int max_conns;             /* connections per upstream and worker, requests queue above it
                                  [TT_OFF: unlimited, the default] */
    int idle_timeout_ms;       /* idle upstream connection limit [30000, shortened by what the
                                  client learns: Keep-Alive hints and idle closes]; TT_OFF: none */
    int connect_timeout_ms;    /* TCP connect to an upstream [5000]; TT_OFF: the kernel's */
    int timeout_ms;            /* from sending the request to the complete response head, then
                                  the longest gap in the response body; 504 when it passes before
                                  the head [60000]; TT_OFF: none */
    int balance;               /* enum tt_proxy_balance [TT_PROXY_LEAST_CONN] */
    int fail_threshold;        /* consecutive connect failures / resets before an upstream rests
                                  [3]; TT_OFF: no passive health (always tried) */
    int fail_rest_ms;          /* how long it rests; then one request tries it again [10000] */
    int max_retries;           /* attempts on another upstream (one not tried yet) after a connect
                                  failure, or after a reset before a response head for an
                                  idempotent request with a replayable body [1]; TT_OFF: none.
                                  The client pool itself resends never-sent requests and retries
                                  an idempotent one once on a fresh connection */
    const char *upstream_host; /* Host sent upstream [none: the client's Host]; copied */
    const char *via;           /* Via pseudonym: "Via: 1.1 <via>" ["tether"]; copied */
    int no_forwarded;          /* > 0: do not add X-Forwarded-For/-Proto/-Host [add them] */
    const char *proto;         /* X-Forwarded-Proto value [per connection: "https" on a TLS
                                  connection, else "http"]; copied */
    int buffer;                /* bytes buffered per exchange and direction before the sender is
                                  paused (request body: the client's socket is not read;
                                  response: the upstream's) [65536] */
    /* https:// upstreams (unused without one): certificates are verified by default */
    const char *upstream_ca_file; /* PEM trust anchors for upstream certificates [the system
                                     store]; copied */
    int upstream_insecure;        /* > 0: skip certificate and name verification [verify] */
    const char *upstream_sni;     /* name sent as SNI and verified against each upstream's
                                     certificate [the upstream URL's host; upstream_host does
                                     not change it]; copied */
} tt_proxy_config;

/* Create a proxy from cfg (copied, strings included). 0, -EINVAL (no upstream, a bad URL or
 * value: *bad_upstream gets the index of a bad URL, else -1; may be NULL) or -ENOMEM. *out is
 * owned by the caller: free with tt_proxy_free after the server using it was freed. */
int tt_proxy_new(tt_proxy **out, const tt_proxy_config *cfg, int *bad_upstream);
/* Free a proxy (after tt_server_run returned and every worker's client was freed by the
 * attach hook). NULL is a no-op. */
void tt_proxy_free(tt_proxy *p);
/* The effective configuration (defaults filled in); valid while p lives. */
const tt_proxy_config *tt_proxy_get_config(const tt_proxy *p);

/* The route handler: route data is the tt_proxy; mount it with TT_ROUTE_STREAM_BODY (without
 * it the body is read whole first, up to max_body, and then sent). Thread-safe: each worker
 * thread gets its own upstream client, created on its first request. */
void tt_proxy_handler(tt_req *req, tt_res *res, void *proxy);
/* Append the proxy route on prefix to cfg (TT_ROUTE_STREAM_BODY; prefix not copied). 0 or
 * -ENOSPC. */
int tt_proxy_mount(tt_server_config *cfg, const char *prefix, tt_proxy *p);
/* Register tt_proxy_worker_exit on srv (before tt_server_run). 0 or -ENOSPC. */
int tt_proxy_attach(tt_proxy *p, tt_server *srv);
/* A tt_server_on_worker_exit hook (data: the tt_proxy): frees the calling worker thread's
 * upstream client and its exchange contexts. */
void tt_proxy_worker_exit(void *proxy);

/* Why an exchange failed (tt_proxy_upstream_stats.failures). */
enum tt_proxy_fail {
    TT_PROXY_FAIL_CONNECT,       /* refused / unreachable / connect timeout: 502 */
    TT_PROXY_FAIL_RESET,         /* reset or closed before a response head: 502 */
    TT_PROXY_FAIL_MALFORMED,     /* a response the client's parser refused: 502 */
    TT_PROXY_FAIL_TIMEOUT,       /* no response head within timeout_ms: 504 */
    TT_PROXY_FAIL_DOWN,          /* every upstream resting (passive health): 502 at once */
    TT_PROXY_FAIL_BODY,          /* failed in the middle of the response body: connection closed */
    TT_PROXY_FAIL_REQ_BODY,      /* the client's request body failed (reset, timeout, framing) */
    TT_PROXY_FAIL_OTHER,         /* anything else (no memory, too large...): 502 */
    TT_PROXY_FAIL_TLS_CERT,      /* https upstream: its certificate did not verify: 502 */
    TT_PROXY_FAIL_TLS_HANDSHAKE, /* https upstream: the TLS handshake failed or timed out: 502 */
    TT_PROXY_FAIL_NREASONS
};

/* Short name of a failure reason ("connect", "reset", "timeout"…); static storage. */
const char *tt_proxy_fail_name(int reason);

/* Statistics of one upstream, summed over the workers. Counters are exact; gauges are
 * published by each worker after exchanges (at most every 100 ms) and once a second while it
 * has upstream connections, so they may lag by a second. */
typedef struct tt_proxy_upstream_stats {
    char url[256];      /* as configured */
    int healthy;        /* 0 while resting (passive health) */
    int tls;            /* an https upstream */
    int open, idle;     /* upstream connections open, and idle in the pools (gauges) */
    int leased;         /* exchanges in flight to it (gauge) */
    uint64_t requests;  /* exchanges sent to it (attempts, retries included) */
    uint64_t responses; /* exchanges that got a response head */
    uint64_t opened;    /* connections opened */
    uint64_t reused;    /* exchanges carried by a reused connection */
    uint64_t retries;   /* retries: the pool's (not sent, fresh connection) and the proxy's (another
                           upstream) */
    uint64_t rests;     /* times it was put to rest */
    uint64_t failures[TT_PROXY_FAIL_NREASONS];
} tt_proxy_upstream_stats;

/* TLS handshakes of the upstream connections (https upstreams), summed over every worker and
 * upstream. Published by each worker with the gauges, so they may lag by a second. */
typedef struct tt_proxy_tls_stats {
    uint64_t handshakes_full;    /* completed without resumption */
    uint64_t handshakes_resumed; /* completed by resuming a session (the client's cache) */
    uint64_t failures;           /* failed: certificate, protocol, timeout */
} tt_proxy_tls_stats;
/* Copy the upstream TLS handshake counters into *out. Thread-safe. */
void tt_proxy_get_tls_stats(const tt_proxy *p, tt_proxy_tls_stats *out);
/* The same as a JSON object {"handshakes_full":..,"handshakes_resumed":..,"failures":..}
 * under key (NULL inside an array) of an open JSON object. */
void tt_proxy_tls_stats_write(const tt_proxy *p, tt_json *j, const char *key);

/* Number of upstreams. */
int tt_proxy_upstreams(const tt_proxy *p);
/* Copy upstream i's statistics into *out. Thread-safe. 0 or -ERANGE. */
int tt_proxy_stats(const tt_proxy *p, int i, tt_proxy_upstream_stats *out);
/* All upstreams' statistics as one compact JSON object into buf (tether/json.h, cut to fit and
 * NUL-terminated): {"upstreams":[{"url":..,"scheme":..,"healthy":..,"open":..,"idle":..,
 * "leased":..,"requests":..,"responses":..,"opened":..,"reused":..,"reuse_ratio":..,
 * "retries":..,"rests":..,"failures":{"connect":..,...}},...],"tls":{"handshakes_full":..,
 * "handshakes_resumed":..,"failures":..}}. Returns the length it needed. */
size_t tt_proxy_stats_json(const tt_proxy *p, char *buf, size_t size);
/* The same object as a member key of an open JSON object (key NULL inside an array or at the
 * top), for a status page that embeds it. */
void tt_proxy_stats_write(const tt_proxy *p, tt_json *j, const char *key);
/* One upstream's members ("url" ... "failures", as in tt_proxy_stats_json) into the JSON object
 * open in j, so that a status page adding members of its own writes the same layout. */
void tt_proxy_upstream_fields_write(const tt_proxy_upstream_stats *s, tt_json *j);

#ifdef __cplusplus
}
#endif
#endif
