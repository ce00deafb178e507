/* proxy_int.h — internal: the reverse proxy's shared types. The proxy sits above the server
 * and the client and uses only their public APIs (tether/server.h, tether/client.h).
 *
 * Memory: a tt_proxy owns its copied config and upstream table; each worker thread owns one
 * tt__pworker (its tt_client, a free list of exchange contexts), created on the thread's first
 * request and freed by tt_proxy_worker_exit; each exchange context (tt__pctx) keeps its
 * buffers across reuse, so a warm worker does not allocate per request. */
#ifndef TT_PROXY_INT_H
#define TT_PROXY_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "tether/client.h"
#include "tether/proxy.h"
#include "tether/server.h"
#include "tether/timer.h"
#include "tether/tls.h"

#define TT__PROXY_VIA_MAX 200 /* bytes of the Via pseudonym */
#define TT__PROXY_IPC     64  /* per-worker cache of client addresses by connection id */

/* One upstream: its URL parts, passive health and counters (atomics: every worker writes). */
typedef struct tt__upstream {
    char url[256];  /* "http://host:port" as configured (no trailing slash) */
    char host[256]; /* host as in the URL (brackets removed) */
    int port;
    /* passive health (relaxed atomics) */
    int fails;           /* consecutive connect failures / resets */
    uint64_t rest_until; /* loop-clock ms (CLOCK_MONOTONIC) until which it rests; 0: healthy */
    int probing;         /* a request is trying it again after a rest */
    int inflight;        /* exchanges in flight (least-conn and the "leased" gauge) */
    uint64_t requests, responses, opened, reused, retries, rests;
    uint64_t failures[TT_PROXY_FAIL_NREASONS];
} tt__upstream;

struct tt_proxy {
    tt_proxy_config cfg; /* effective config; strings point into the copies below */
    char *host, *via, *proto;
    tt__upstream ups[TT_PROXY_MAX_UPSTREAMS];
    int nups;
    unsigned rr; /* round-robin cursor (atomic) */
    pthread_mutex_t mu;
    tt__list workers; /* tt__pworker.link, under mu */
};

/* Per worker thread and proxy. */
typedef struct tt__pworker {
    tt_proxy *p;
    tt_loop *loop;
    tt_client *client;
    tt__list link;             /* in p->workers (under p->mu) */
    struct tt__pworker *tnext; /* this thread's workers (thread-local list) */
    tt__list free;             /* idle tt__pctx */
    tt__list busy;             /* tt__pctx in use */
    tt_timer tick;             /* publishes the pool gauges once a second */
    int open[TT_PROXY_MAX_UPSTREAMS], idle[TT_PROXY_MAX_UPSTREAMS]; /* gauges (atomic) */
    uint64_t opened[TT_PROXY_MAX_UPSTREAMS]; /* client's per-route opened, last seen */
    uint64_t published;                      /* loop ms of the last publish */
    struct {
        uint64_t key; /* connection id + 1; 0: empty */
        char ip[48];
        int tls;          /* the connection is TLS (X-Forwarded-Proto https) */
    } ipc[TT__PROXY_IPC]; /* X-Forwarded-For without two system calls per request */
} tt__pworker;

/* A growable byte arena (kept across reuse). */
typedef struct tt__parena {
    char *buf;
    size_t len, cap;
} tt__parena;

/* One proxied exchange (pooled per worker). */
typedef struct tt__pctx {
    tt__pworker *w;
    tt__list link;
    tt_req *req;
    tt_res *res;
    tt_exchange x;
    int up;            /* upstream index of the current attempt */
    int attempts;      /* attempts made (proxy-level) */
    uint32_t tried;    /* bit i: upstream i tried */
    uint8_t started;   /* response head written downstream */
    uint8_t in_flight; /* the client exchange is running */
    uint8_t has_body, body_started, body_end, body_err, body_paused, body_waiting;
    uint8_t res_paused, aborted, discarded, expect;
    uint8_t too_big;    /* the upstream's head does not fit the response writer */
    uint8_t dead;       /* the worker is stopping: the server's request is gone, touch nothing */
    long long body_len; /* announced request body length (-1 chunked) */
    /* request head: lines and URL in one arena; header pointers into it */
    tt__parena hd;
    long *offs;         /* field line offsets in hd */
    const char **lines; /* the same as pointers (rebuilt when hd moves) */
    int nlines, cap_lines;
    long url_off, method_off;
    const char **tlines; /* request trailers (lines in hd) */
    int ntlines, cap_tlines;
    /* request body buffer: [roff, body.len) unread */
    tt__parena body;
    size_t roff;
    /* response: a scratch arena for NUL-terminated names and values */
    tt__parena rs;
} tt__pctx;

/* ---- fields.c: hop-by-hop filtering, Via and X-Forwarded-* ---- */

/* Nonzero when field name[0,n) is hop-by-hop by itself (RFC 9110 §7.6.1 and the legacy
 * Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization) or one the proxy
 * re-frames or writes itself (Content-Length, Transfer-Encoding, Expect, Host). */
int tt__proxy_hop_static(const char *name, size_t n);
/* Nonzero when name[0,n) is a token of any of the Connection values vals[0..nvals). */
int tt__proxy_conn_named(const char *name, size_t n, const char *const *vals, const size_t *vlens,
                         int nvals);
/* Nonzero when field name[0,n) must not be forwarded (static or named by Connection). */
int tt__proxy_hop(const char *name, size_t n, const char *const *vals, const size_t *vlens,
                  int nvals);

/* Room for n more bytes in the arena (grown by doubling; kept). 0 or -ENOMEM. */
int tt__parena_reserve(tt__parena *a, size_t n);
/* Append s[0,n) to the arena; returns its offset or -1 (no memory). NUL-terminated. */
long tt__parena_put(tt__parena *a, const char *s, size_t n);
/* A string piece (not NUL-terminated). */
typedef struct tt__pstr {
    const char *s;
    size_t n;
} tt__pstr;
/* Append the pieces back to back as one NUL-terminated string: its offset or -1 (no memory). */
long tt__parena_join(tt__parena *a, const tt__pstr *parts, int n);
/* Append the field line "name: value" (NUL-terminated): its offset or -1. */
long tt__parena_line(tt__parena *a, const char *name, size_t nl, const char *value, size_t vl);
void tt__parena_free(tt__parena *a);

/* Inputs of the upstream request head: the client's address and fields and the proxy's
 * settings. Output: lines "Name: value" in arena a, offsets in offs (count returned). */
typedef struct tt__preq_in {
    const char *const *names, *const *values; /* the request fields */
    const size_t *nlens, *vlens;
    int n;
    const char *peer_ip; /* client address for X-Forwarded-For (NULL: "unknown") */
    const char *host;    /* the request's Host value (NULL: none) */
    size_t host_len;
    const char *up_host; /* upstream_host rewrite (NULL: keep Host) */
    const char *via;     /* pseudonym */
    int minor;           /* the request's HTTP minor version (for Via) */
    const char *proto;   /* X-Forwarded-Proto */
    int forwarded;       /* add X-Forwarded-* */
} tt__preq_in;

/* Build the upstream request's field lines from in into a (offsets into a->buf in offs, at
 * most maxoffs). Returns the count, or -ENOMEM / -ENOSPC. *expect gets 1 when the request
 * carried "Expect: 100-continue" (dropped from the lines: the client writes it). */
int tt__proxy_req_fields(const tt__preq_in *in, tt__parena *a, long *offs, int maxoffs,
                         int *expect);

/* Calls add(ud, name, value) for each response field of x that is forwarded (NUL-terminated
 * copies in scratch), then Via. Returns 0, -E2BIG (more than the response writer holds:
 * TT_RES_MAX_FIELDS / TT_RES_FIELD_BYTES; nothing added), -ENOMEM, or the first negative
 * value add returned. */
int tt__proxy_res_fields(const tt_exchange *x, const char *via, tt__parena *scratch,
                         int (*add)(void *ud, const char *name, const char *value), void *ud);

/* The peer address of info as text without the port (NUL-terminated in buf). */
void tt__proxy_peer_ip(const tt_addr *a, char *buf, size_t size);

/* ---- upstream.c: balancing, passive health, stats ---- */

/* Parse an upstream URL into u. 0 or -EINVAL. */
int tt__upstream_parse(tt__upstream *u, const char *url);
/* Pick an upstream for a new attempt at loop time now (ms), skipping those in the mask
 * 'exclude' when another one is available. Returns the index, or -1 when every upstream is
 * resting. */
int tt__upstream_pick(tt_proxy *p, uint64_t now, uint32_t exclude);
/* Pure balancer core: among n candidates (ok[i] nonzero: usable), choose by policy (least
 * inflight[i], ties broken round-robin from *rr). -1 when none is usable. */
int tt__balance(int policy, const int *inflight, const int *ok, int n, unsigned *rr);
/* Passive health: rest decision after an attempt on u: failed (connect failure or reset) or
 * not. Returns 1 when u was just put to rest. */
int tt__upstream_result(tt_proxy *p, tt__upstream *u, int failed, uint64_t now);
/* An attempt that claimed u's probe ended without a verdict on u's health (the client left,
 * the start failed): the next request probes again. */
void tt__upstream_unprobe(tt__upstream *u);
/* Whether u may be tried at now: healthy, or its rest is over and no other probe runs (this
 * call then claims the probe). */
int tt__upstream_usable(const tt_proxy *p, tt__upstream *u, uint64_t now, int claim);

#define TT__PADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)
#define TT__PGET(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define TT__PSET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#endif
