/* client_int.h — internal: the client's structures and the interfaces between its files.
 *
 * Files and who calls whom (no cycle: each arrow goes one way only):
 *   api.c     public API                -> engine, pool, h1, policy, resolve, tls
 *   engine.c  lease, attach, events, completion, retries, timeouts
 *                                       -> pool, h1, resolve, policy, stats, tls
 *   h1.c      write the request, parse the response; returns outcomes -> stats
 *   pool.c    routes, idle lists, lease queue, connection open/close; get / free -> policy, stats
 *   resolve.c the DNS thread; reports through the client's resolved hook (set by the engine)
 *   policy.c  pure decisions (reuse, expiry, retry, options, URL), unit-tested with tables
 *   stats.c   counters (the TLS context's too), JSON, names, the log sink
 *   tls.c     https: the client's TLS context, handshake step, session cache per route,
 *             error mapping, -v lines                               -> stats
 * pool.c and resolve.c never call the engine: the engine hands them its callbacks
 * (tt_client.conn_cb, expire_cb, resolved). */
#ifndef TT_CLIENT_INT_H
#define TT_CLIENT_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "tether/buffer.h"
#include "tether/client.h"
#include "tether/http1.h"
#include "tether/stream.h"
#include "tether/tls.h"

enum {
    TT__C_MAX_ADDRS = 8,
    TT__C_TLS_SESSIONS = 64, /* cap of a route's TLS session pool (max_per_route TT_OFF) */
    TT__C_READ_CHUNK = 16384,
    TT__C_DRAIN_MAX = 16384, /* body bytes drained after on_body stops, to keep the connection */
    TT__C_MAX_PIPELINE = 64,
    TT__C_MAX_TRAILERS = 32,
};

/* Exchange flags (tt__xpriv.flags). */
enum {
    TT__XF_HEAD_DONE = 1,
    TT__XF_BODY_SENT = 2,
    TT__XF_STREAM_EOF = 4,
    TT__XF_DISCARD = 16,
    TT__XF_PAUSED = 32,      /* on_body returned TT_BODY_PAUSE: the socket is not read */
    TT__XF_RESUME = 64,      /* tt_exchange_resume asked: the flow step resumes delivery */
    TT__XF_BODY_WAIT = 128,  /* body_read returned -EAGAIN: wait for tt_exchange_body_ready */
    TT__XF_BODY_READY = 256, /* tt_exchange_body_ready asked: the flow step writes again */
    TT__XF_IN_BODY = 512,    /* inside on_body (tt_exchange_resume is allowed there) */
    TT__XF_BODY_ERR = 1024,  /* the request body failed (producer, length, trailers): no retry */
    /* The streamed-body state, kept across attempts of one run (staged bytes survive a
     * not-sent retry): reset by tt__h1_stream_reset only. */
    TT__XF_STREAM_MASK = TT__XF_STREAM_EOF | TT__XF_BODY_WAIT | TT__XF_BODY_READY,
};

typedef struct tt__route tt__route;
typedef struct tt__conn tt__conn;
typedef struct tt__resolve_job tt__resolve_job;

/* A pooled connection: allocated when opened, freed when closed. */
struct tt__conn {
    tt_stream s;    /* the transport (fd, loop registration, readiness) */
    tt_timer timer; /* idle expiry */
    int state;      /* enum tt_client_conn_state: only through tt__conn_set_state */
    unsigned id;
    tt__route *rt;
    tt_client *c;
    tt__list idle_link; /* route idle list, most recently used first */
    tt__list all_link;  /* every connection of the client */
    tt_buf rb;          /* read buffer: a pool block while busy, none while idle */
    uint64_t created, last_used, lifetime_at;
    int expire_reason;
    int retired, proven, pn; /* proven: kept alive once; pn: pipelined exchanges behind x */
    int tls_saved;           /* TLS: this connection's session went to the route's cache */
    uint32_t requests;
    tt_addr addr;
    tt_exchange *x; /* exchange whose response is being read */
    tt_exchange *w; /* exchange being written (== x unless pipelining) */
    tt__list pq;    /* pipelined exchanges after x, in order */
    tt_http1_parser parser;
    tt_http1_response resp;
    tt_header hdr[TT_CLIENT_MAX_HEADERS];
    tt_http1_chunked_decoder cd;
    tt_header trl[TT__C_MAX_TRAILERS];
    long ka_timeout, ka_max; /* the last response's Keep-Alive parameters (-1: absent) */
    int err;                 /* why h1 returned TT__H1_FAIL: -errno and a short text */
    const char *what;
};

/* A route (scheme, host, port): its addresses, idle list, counters and, for https, a pool of
 * unused resumable TLS sessions. Lives as long as the client. */
struct tt__route {
    tt__list link;
    char host[256];
    char hosthdr[272]; /* Host field value */
    int port;
    int tls;            /* https: connections run a TLS handshake first */
    char tls_what[200]; /* error_what of the last TLS failure ("certificate: ...") */
    tt_addr addrs[TT__C_MAX_ADDRS];
    int naddr;
    uint64_t resolved_at;
    int resolving, resolve_err;
    tt__list idle; /* idle connections, most recently used first */
    int nidle, nbusy, nconnecting, npending;
    uint64_t opened, requests, reused, learned_idle_ms;
    int nsess, sesscap;     /* https: sessions in sess[], its size (max_per_route, capped) */
    tt_tls_session *sess[]; /* unused resumable sessions (references), oldest first; each
                               new connection takes one (allocated with the route) */
};

struct tt_client {
    tt_loop *loop;
    int own_loop;
    tt_client_opts o; /* normalized: limits > 0 or TT_OFF */
    tt_bufpool *bp;
    tt__list routes; /* newest first */
    tt__list all;    /* connections, newest first */
    tt__list queue;  /* lease queue (FIFO across routes) */
    int total, inflight;
    int dispatching, redispatch;
    unsigned next_id, next_xid;
    uint32_t rng;
    tt_client_stats st;
    tt__list jobs;     /* lookups running in helper threads */
    tt_tls_ctx *tls;   /* created on the first https route, freed with the client */
    char tls_err[200]; /* error_what when the context cannot be created ("tls setup: ...") */
    /* The engine's callbacks, so that pool.c and resolve.c never call engine.c. */
    tt_io_cb conn_cb;                              /* connection readiness */
    tt_timer_cb expire_cb;                         /* idle connection expired */
    void (*resolved)(tt_client *c, tt__route *rt); /* a lookup in the DNS thread finished */
};

/* The private part of a tt_exchange (inside its opaque priv block). */
typedef struct tt__xpriv {
    tt_client *client;
    tt__route *route;
    tt__conn *conn;
    tt__list qlink; /* lease queue, or its connection's pipeline */
    tt_timer timer, leak;
    tt_defer defer;
    uint64_t started, queued_at, deadline;
    const char *file;
    int line;
    unsigned id;
    char *wbuf; /* serialized request head, kept across runs */
    size_t wlen, wcap, woff;
    size_t body_off, wrote;
    char *sbuf; /* streamed-body staging */
    size_t slen, soff, scap;
    long long remain;           /* Content-Length body bytes left */
    long long sremain;          /* streamed request body with body_stream_len: bytes left */
    tt_defer fdefer;            /* the flow step: resume delivery, or pull the request body */
    uint64_t drained;           /* bytes dropped after on_body asked to stop */
    uint64_t body_seen;         /* response body bytes delivered (max_body_size) */
    uint64_t spd_at, spd_bytes; /* low-speed window: its start (ms) and body bytes since */
    uint64_t rd_deadline;       /* body inactivity deadline (ms) */
    uint32_t head_cap, body_cap, trl_cap;
    int phase; /* enum tt_exchange_phase: only through tt__x_set_phase */
    int flags, attempts_ns, attempt_maybe;
    int fresh_only, method_id, resp_bytes, body_pulled, done;
    int req_close; /* the request asked to close (no_keepalive or a Connection: close) */
} tt__xpriv;

_Static_assert(sizeof(tt__xpriv) <= sizeof(((tt_exchange *)0)->priv),
               "TT_EXCHANGE_PRIV_SIZE too small for tt__xpriv");
_Static_assert(_Alignof(tt__xpriv) <= 8, "tt__xpriv alignment above the opaque block's");

/* The private part of x. */
static inline tt__xpriv *tt__xp(tt_exchange *x)
{
    return (tt__xpriv *)(void *)x->priv.opaque;
}
/* The exchange whose private member (a field of tt__xpriv) ptr points to. */
#define TT__X_OF(ptr, member)                                                                      \
    ((tt_exchange *)(void *)((char *)(ptr)-offsetof(tt__xpriv, member) -                           \
                             offsetof(tt_exchange, priv)))

/* Call the trace hook, if any. */
static inline void tt__trace(tt_client *c, const char *machine, unsigned id, int from, int to)
{
    if (c->o.trace) c->o.trace(c->o.trace_data, machine, id, from, to);
}
/* The one transition function of an exchange's phase (traced). */
static inline void tt__x_set_phase(tt_exchange *x, int to)
{
    tt__xpriv *p = tt__xp(x);
    if (p->phase == to) return;
    tt__trace(p->client, "exchange", p->id, p->phase, to);
    p->phase = to;
}

/* ---- policy.c: pure decisions ---- */

/* Options with defaults applied: every limit > 0 or TT_OFF (see tt_client_opts). */
void tt__client_opts_normalize(tt_client_opts *o, const tt_client_opts *in);

/* Safety margin subtracted from a server-announced (or learned) idle timeout of t_ms: grows with
 * the value (200 ms + 10%), never more than half of it. */
uint64_t tt__client_margin(uint64_t t_ms);

/* Inputs of the expiry decision for one connection about to go idle. */
typedef struct tt__expiry_in {
    uint64_t now;             /* loop clock, ms: the connection becomes idle now */
    uint64_t idle_timeout_ms; /* client idle timeout (0: none) */
    long ka_timeout_s;        /* server Keep-Alive: timeout=, -1 when absent */
    uint64_t lifetime_at;     /* absolute end of life (0: none) */
    uint64_t learned_idle_ms; /* idle-close time learned from the route (0: unknown) */
} tt__expiry_in;

/* Absolute expiry time of an idle connection and why (enum tt_evict_reason) into *reason;
 * UINT64_MAX when nothing limits it. */
uint64_t tt__client_expiry(const tt__expiry_in *in, int *reason);

/* What the response and request said about reuse. */
typedef struct tt__reuse_in {
    int error;           /* the exchange failed */
    int req_close;       /* request sent Connection: close (or HTTP/1.0 without keep-alive) */
    int resp_close;      /* response said Connection: close */
    int resp_minor;      /* response HTTP minor version */
    int resp_keepalive;  /* response said Connection: keep-alive */
    int resp_no_reuse;   /* the parser's verdict is no reuse (no TT_HTTP1_F_KEEP_ALIVE: e.g. TE
                            with CL), or the framing contradicts the status (204 with CL/TE) */
    int close_delimited; /* body ran until close */
    int body_complete;   /* body fully read */
    int leftover;        /* unsolicited bytes after the response */
    int peer_fin;        /* FIN/RST seen */
    long ka_max;         /* Keep-Alive: max= (-1 absent) */
    int retired;         /* address left DNS, or client shutting down */
    int continue_unsent; /* a final response arrived before the request body was sent */
    int idle_full;       /* the route already keeps max_idle_per_route idle connections */
} tt__reuse_in;

/* 0 when the connection may go back to the pool, else 1 and the enum tt_evict_reason to close
 * it with into *reason. */
int tt__client_reuse(const tt__reuse_in *in, int *reason);

/* Nonzero if a request with this method (and headers) may be replayed after it was maybe
 * processed: GET, HEAD, PUT, DELETE, OPTIONS, TRACE, or an Idempotency-Key header. */
int tt__client_idempotent(const char *method, const char *const *headers, int nheaders);

/* Inputs of the retry decision after an attempt failed. */
typedef struct tt__retry_in {
    int err;           /* the failure (-errno) */
    int sent;          /* TT_NOT_SENT or TT_MAYBE_PROCESSED */
    int time_left;     /* the total deadline has not passed */
    int attempts_ns;   /* not-sent retries made */
    int max_ns;        /* max_retries_not_sent (TT_OFF: none) */
    int resp_bytes;    /* response bytes were seen */
    int attempt_maybe; /* a maybe-processed retry was made already */
    int rewindable;    /* the body can be sent again */
    int idempotent;    /* the request may be replayed */
} tt__retry_in;

/* enum tt_retry_reason to retry with, or -1: fail the exchange. */
int tt__client_retry(const tt__retry_in *in);

/* May x be pipelined behind other requests under o? Only GET/HEAD without a body. */
int tt__client_pipelinable(const tt_client_opts *o, const tt_exchange *x);

/* Absolute end of life of a connection created at now (0: unlimited); *rng is the client's
 * generator for the jitter. */
uint64_t tt__client_lifetime(const tt_client_opts *o, uint64_t now, uint32_t *rng);

/* The learned idle-close time of a route after a connection idled idle_ms before the server
 * closed it: the shortest seen (0 = unknown). */
uint64_t tt__client_learn(uint64_t learned, uint64_t idle_ms);

/* Split url (http[s]://host[:port]/path) into host, port (80, https 443), path (points into
 * url) and *tls (https). 0 or -EINVAL (also for a space or control byte anywhere) /
 * -EPROTONOSUPPORT (another scheme). */
int tt__client_parse_url(const char *url, char *host, size_t hostsz, int *port, const char **path,
                         int *tls);

/* Lease-wait histogram bucket of a wait of ms milliseconds. */
int tt__client_wait_bucket(uint64_t ms);

/* ---- stats.c: diagnostics ---- */

/* Write one line to the client's log sink (stderr without one). */
void tt__client_log(tt_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log each line of text[0, len) with prefix ("> " / "< "). */
void tt__client_log_lines(tt_client *c, const char *prefix, const char *text, size_t len);
#define TT__VLOG(c, ...)                                                                           \
    do {                                                                                           \
        if ((c)->o.verbose) tt__client_log((c), __VA_ARGS__);                                      \
    } while (0)

/* ---- pool.c: routes, connections, idle lists, lease queue ---- */

/* The route for (scheme, host, port), created on first use: http://h:443 and https://h:443 are
 * two routes. NULL when out of memory. */
tt__route *tt__pool_route_scheme(tt_client *c, const char *host, int port, int tls);
/* The plain http route for (host, port). */
static inline tt__route *tt__pool_route(tt_client *c, const char *host, int port)
{
    return tt__pool_route_scheme(c, host, port, 0);
}
/* Free every route (client shutdown; connections already closed). */
void tt__pool_free_routes(tt_client *c);
/* The one transition function of a connection's state: keeps the route's counters and idle
 * list and calls the trace hook. */
void tt__conn_set_state(tt__conn *k, int to);
/* Start connecting to a for rt (state CONNECTING). NULL and *err on failure. */
tt__conn *tt__pool_connect(tt_client *c, tt__route *rt, const tt_addr *a, int *err);
/* Close k and free it, counting the eviction reason. */
void tt__pool_close(tt__conn *k, int reason);
/* Get a cached connection of rt (the warmest idle one that is neither expired nor retired),
 * now BUSY; NULL when none. */
tt__conn *tt__pool_get(tt_client *c, tt__route *rt);
/* Give a busy connection back after its last exchange: the reuse decision is made here. 1 when
 * it went idle (watched, expiry armed), 0 when it was closed; *reason says why (when closed). */
int tt__pool_free(tt__conn *k, tt__reuse_in *in, int *reason);
/* An idle connection's socket signalled input: read it (a FIN, RST or stray byte evicts k).
 * Returns 1 when k was closed, 0 when it is still healthy. */
int tt__pool_idle_check(tt__conn *k);
/* Close the least recently used idle connection of any route (1), or 0 when none is idle. */
int tt__pool_make_room(tt_client *c);
/* A busy connection of x's route that x can be pipelined on, or NULL. */
tt__conn *tt__pool_pipe_conn(tt_client *c, tt_exchange *x);
/* Could queued x make progress now? */
int tt__pool_can_go(tt_client *c, tt_exchange *x);
/* Lease queue: append x, insert x before queued nx (NULL: append), remove x if queued. */
void tt__queue_push(tt_client *c, tt_exchange *x);
void tt__queue_insert_before(tt_client *c, tt_exchange *x, tt_exchange *nx);
void tt__queue_remove(tt_client *c, tt_exchange *x);
/* The first queued exchange, NULL when none; the one after x, NULL at the end. */
tt_exchange *tt__queue_first(tt_client *c);
tt_exchange *tt__queue_next(tt_client *c, tt_exchange *x);

/* ---- resolve.c: the DNS thread ---- */

/* Resolve rt: numeric hosts and own-loop clients at once, else in a helper thread whose result
 * comes back through c->resolved on the loop (rt->resolving meanwhile). */
void tt__resolve(tt_client *c, tt__route *rt);
/* Wait for every helper thread and free its job (client shutdown). */
void tt__resolve_shutdown(tt_client *c);

/* ---- engine.c: lease, attach, events, completion, retries, timeouts ---- */

/* Set the engine's callbacks on a new client. */
void tt__engine_init(tt_client *c);
/* Reset x's private state for a new run on c (route already set); counts it in flight. */
void tt__engine_prepare(tt_client *c, tt_exchange *x, tt__route *rt, const char *file, int line);
/* Start x's first attempt now, or (deferred) from the loop's next deferred step. */
void tt__engine_start(tt_exchange *x, int deferred);
/* Fail every queued and running exchange with -ECANCELED and close every connection. */
void tt__engine_shutdown(tt_client *c);
/* Queue x's flow step (loop, deferred): act on TT__XF_RESUME / TT__XF_BODY_READY. */
void tt__engine_flow(tt_exchange *x);

/* ---- tls.c: https ---- */

/* The client's TLS context, created from its options on first use. 0, or -errno with the
 * reason in c->tls_err ("tls setup: ..."). */
int tt__tls_ctx(tt_client *c);
/* Turn k's connected stream into a TLS client stream (SNI and verification: tls_server_name
 * or the route's host; the route's session offered). 0, or -errno with k->err / k->what set. */
int tt__tls_start(tt__conn *k);
/* Drive k's handshake: 0 done (the -v lines logged), -EAGAIN in progress, or a mapped error
 * (tt__tls_error) with k->err / k->what set (what: the route's tls_what). */
int tt__tls_step(tt__conn *k);
/* The exchange error for a handshake failure of reason (enum tt_tls_fail): -EKEYREJECTED for a
 * certificate, -ETIMEDOUT for a timeout, else -EPROTO; *prefix gets "certificate" or "tls
 * handshake". */
int tt__tls_error(int reason, const char **prefix);
/* Put sess (a reference, now the route's) in the route's session pool; a full pool drops its
 * oldest (a route without one drops sess). NULL: nothing. */
void tt__tls_keep_session(tt__route *rt, tt_tls_session *sess);
/* Take the route's newest unexpired session out of its pool (expired ones are dropped): a
 * reference the caller frees, or NULL when the pool is empty. */
tt_tls_session *tt__tls_take_session(tt__route *rt);
/* After a successful response on k: cache its session in the route once it is resumable. */
void tt__tls_after_response(tt__conn *k);

/* ---- h1.c: the HTTP/1 exchange ---- */

/* Outcomes of writing and reading. */
enum {
    TT__H1_MORE = 0,      /* wait for readiness (more input, or room to write) */
    TT__H1_DONE,          /* the response is complete; the connection's framing is intact */
    TT__H1_DONE_CLOSE,    /* complete, delimited by the connection's close */
    TT__H1_FAIL,          /* failed: k->err and k->what say why */
    TT__H1_CONTINUE,      /* 100 Continue arrived while waiting for it: send the body */
    TT__H1_WAIT_CONTINUE, /* the head went out: wait for 100 Continue (arm its timer) */
    TT__H1_PAUSED,        /* on_body paused delivery: stop reading until tt_exchange_resume */
};

/* Serialize x's request head into its write buffer (the one request-head writer). 0, -ENOMEM,
 * or -EINVAL with *what = "bad header" / "bad request line". */
int tt__h1_build(tt_exchange *x, const char *hosthdr, const char *path, const char **what);
/* Start reading a response on k (parser and head reset). */
void tt__h1_reset(tt__conn *k);
/* Count one more request on k for x and reset x's per-attempt state (phase SENDING). */
void tt__h1_begin(tt_exchange *x, tt__conn *k);
/* Write what can be written for k->w and the pipelined exchanges behind it: MORE,
 * WAIT_CONTINUE or FAIL. */
int tt__h1_write(tt__conn *k);
/* Process the bytes buffered in k->rb for k->x (eof: nothing more will come): MORE, DONE,
 * DONE_CLOSE, FAIL or CONTINUE. */
int tt__h1_process(tt__conn *k, int eof);
/* The exchange written after x on k (pipelining), NULL when none. */
tt_exchange *tt__h1_next(tt__conn *k, tt_exchange *x);
/* Clear x's outcome fields (keeping its buffers). */
void tt__h1_clear_outcome(tt_exchange *x);
/* Start x's streamed request body over (a new run, or after body_rewind): nothing staged. */
void tt__h1_stream_reset(tt_exchange *x);

#endif
