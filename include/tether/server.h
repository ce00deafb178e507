/* tether/server.h — an HTTP/1.1 server with persistent connections: keep-alive, pipelining,
 * timeouts, clean closing, N worker threads (one loop and one SO_REUSEPORT listener each).
 *
 * Configure with a plain struct (zero = defaults), register handlers by path prefix, then
 * tt_server_new + tt_server_run. A handler receives a tt_req (the request) and a tt_res (its
 * response writer). It may answer at once or later (async): keep the tt_res pointer and finish
 * it from a later callback on the SAME worker loop (tt_req_loop). Request views (method, path,
 * headers, body) are zero-copy pointers into the connection's read buffer and stay valid until
 * the response is finished (tt_res_send / tt_res_end); copy what you need longer.
 *
 * Configuration follows the library's one convention (tether/common.h): a field left 0 takes
 * its default, TT_OFF (-1) disables the limit, deadline or feature it names. Durations are
 * milliseconds. */
#ifndef TETHER_SERVER_H
#define TETHER_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "http1.h"
#include "loop.h"
#include "socket.h"
#include "tls.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_SERVER_MAX_ROUTES     16   /* handlers per server config */
#define TT_SERVER_MAX_LISTEN     8    /* listen addresses per server config */
#define TT_SERVER_MAX_EXIT_HOOKS 8    /* tt_server_on_worker_exit registrations */
#define TT_RES_MAX_FIELDS        38   /* tt_res_header fields per response (-ENOSPC above) */
#define TT_RES_FIELD_BYTES       4096 /* their names and values together (-ENOSPC above) */

typedef struct tt_server tt_server;
typedef struct tt_req tt_req; /* a request: read-only views (tt_req_*) */
typedef struct tt_res tt_res; /* its response writer (tt_res_*): a distinct type, so passing
                                 one where the other is expected does not compile */

/* A request handler: answer through res now or later (async); data is the route's pointer. */
typedef void (*tt_handler_fn)(tt_req *req, tt_res *res, void *data);

/* tt_route.flags */
enum {
    TT_ROUTE_STREAM_BODY = 1u, /* call the handler once the head is read; it takes the body as it
                                  arrives with tt_req_body_read (no max_body, no buffering) */
};

/* A handler bound to a path prefix ("/" matches everything; the longest prefix wins). */
typedef struct tt_route {
    const char *prefix; /* not copied: must outlive the server */
    tt_handler_fn fn;
    void *data;
    unsigned flags; /* TT_ROUTE_* */
} tt_route;

/* Called on every connection state transition when set (tt_server_config.trace): data is
 * trace_data, conn_id as tt_conn_info.id, from/to are tt_conn_state values (a new connection
 * comes from TT_CONN_CLOSED). Runs on the connection's worker thread, inside the state
 * machine: record and return; do not call into the server. */
typedef void (*tt_trace_fn)(void *data, uint64_t conn_id, int from_state, int to_state);

/* Server configuration: a plain struct. A field left 0 takes the default shown in brackets;
 * TT_OFF (-1) disables what the field limits (said per field; "no" where it cannot be off). */
typedef struct tt_server_config {
    const char *listen[TT_SERVER_MAX_LISTEN]; /* "HOST:PORT", "http://HOST:PORT" or "unix:PATH"
                                                 (cleartext), "https://HOST:PORT" (TLS, needs
                                                 tls.cert_file and tls.key_file)
                                                 [127.0.0.1:8080] */
    int nlisten;                              /* entries in listen [1]; TT_OFF: no */
    int workers;                /* worker threads [one per online CPU]; TT_OFF: no (default) */
    int keepalive_timeout_ms;   /* idle keep-alive deadline [75000]; TT_OFF: keep-alive disabled */
    int keepalive_requests;     /* requests per connection, ±10% jitter [1000]; 1: no keep-alive;
                                   TT_OFF: unlimited */
    int keepalive_time_ms;      /* max connection age, checked between requests [3600000];
                                   TT_OFF: unlimited */
    int header_timeout_ms;      /* absolute deadline for a whole request head [20000]; TT_OFF:
                                   never */
    int body_timeout_ms;        /* max gap between two reads of a request body [30000]; TT_OFF:
                                   never */
    int send_timeout_ms;        /* max gap between two successful writes [30000]; TT_OFF: never */
    int lingering_time_ms;      /* max total drain time of a lingering close [5000]; TT_OFF:
                                   never */
    int lingering_timeout_ms;   /* max wait for more input while lingering [2000]; TT_OFF: never */
    int close_wait_ms;          /* opt-in: after a "Connection: close" response, wait this long
                                   for the client's FIN before closing (deviates from RFC 9112
                                   §9.6; no server-side TIME_WAIT) [0: off, close at once];
                                   TT_OFF: off */
    int drain_timeout_ms;       /* graceful shutdown: max wait for in-flight requests [10000];
                                   TT_OFF: never */
    int reset_timedout;         /* > 0: idle, header and body timeouts close with RST (SO_LINGER
                                   0) [off]; TT_OFF: off */
    tt_keepalive tcp_keepalive; /* TCP keepalive probes on accepted sockets [off: idle_s 0] */
    int defer_accept_s;         /* TCP_DEFER_ACCEPT: accept once the first bytes arrive, a
                                   silent client after about this many seconds [1]; TT_OFF: off */
    int max_connections;        /* over all workers [10000]; accept pauses above it; TT_OFF:
                                   unlimited (the fd limit still applies) */
    long long max_body;         /* request body limit in bytes, 413 above [1 MiB]; TT_OFF:
                                   unlimited */
    long long discard_limit;    /* unread body bytes discarded to keep the connection [64 KiB];
                                   TT_OFF: never discard (close instead) */
    int max_header;             /* whole request head (request line and fields), 431 above
                                   [32768, nginx's large_client_header_buffers 4 8k]; TT_OFF:
                                   unlimited */
    int max_uri;                /* request-target limit, 414 above [8192]; TT_OFF: unlimited */
    int max_request_line;       /* request line with its CRLF, 414 above [8192, as nginx's and
                                   Apache's LimitRequestLine; RFC 9112 §3 asks >= 8000];
                                   TT_OFF: unlimited */
    int max_pipeline;           /* unsent response bytes above which pipelined requests wait
                                   for the peer to read [256 KiB]; TT_OFF: unlimited */
    const char *root;           /* static files, mounted as a "/" route (any other route wins)
                                   [none: 404] */
    int access_log_fd;          /* Common Log Format sink of this server [off]; TT_OFF: off.
                                   Use a dup'ed fd > 0; it is not closed */
    const char *server_name;    /* Server header ["tether"]; "" omits it */
    tt_route routes[TT_SERVER_MAX_ROUTES];
    int nroutes;
    tt_trace_fn trace;             /* connection state transitions [none] */
    void *trace_data;              /* passed to trace */
    const char *access_log_path;   /* access log file, opened (append) by the server and reopened
                                      by tt_server_reopen_log / SIGHUP; wins over access_log_fd
                                      [none] */
    const char *access_log_format; /* nginx log_format variables ($remote_addr, $request,
                                      $status, $http_NAME, ...; docs/server.md) [Common Log
                                      Format]; must outlive the server */
    int body_min_rate;             /* bytes/s: a body must arrive within body_timeout_ms plus 1 s
                                      per this many bytes (Apache mod_reqtimeout MinRate) [500];
                                      TT_OFF: only the gap between reads is limited */
    long long max_body_memory;     /* bytes all request bodies may hold in read buffers, per
                                      server; a body over it gets 503 [256 MiB]; TT_OFF:
                                      unlimited */
    int share_port;                /* > 0: share ports another process listens on by SO_REUSEPORT (a
                                      graceful handover); else such a port is EADDRINUSE [off] */
    tt_tls_opts tls; /* the https:// listeners' TLS: cert_file and key_file required, min_version,
                        ciphers, session cache, tickets, handshake_timeout_ms [10 s; TT_OFF:
                        the header timeout applies]; `server` is set by the server. One context
                        is shared by every worker (session cache, ticket keys). Unused without an
                        https:// listener */
} tt_server_config;

/* Append a route to cfg (prefix not copied). 0, or -ENOSPC when the table is full. */
int tt_server_config_route(tt_server_config *cfg, const char *prefix, tt_handler_fn fn, void *data);
/* tt_server_config_route with TT_ROUTE_* flags (TT_ROUTE_STREAM_BODY). 0 or -ENOSPC. */
int tt_server_config_route_ex(tt_server_config *cfg, const char *prefix, tt_handler_fn fn,
                              void *data, unsigned flags);

/* Create a server: resolve defaults, open one SO_REUSEPORT listener per worker and address.
 * cfg is copied (its strings are not). Returns 0 or -errno; *out is owned by the caller. */
int tt_server_new(tt_server **out, const tt_server_config *cfg);
/* tt_server_new that also says which listen address failed: *bad_listen gets its index in
 * cfg->listen on an address or listen error, else -1 (bad_listen may be NULL). */
int tt_server_new_at(tt_server **out, const tt_server_config *cfg, int *bad_listen);
/* tt_server_new_at that also writes a one-line reason into err (errlen bytes, may be 0) when
 * the TLS context cannot be made: an https:// listener without tls.cert_file / tls.key_file
 * (-EINVAL), an unreadable or mismatched pair, a bad cipher list (OpenSSL's reason). */
int tt_server_new_err(tt_server **out, const tt_server_config *cfg, int *bad_listen, char *err,
                      size_t errlen);
/* Run the workers (one thread each) until shutdown completes; this thread waits. When
 * handle_signals is nonzero SIGTERM/SIGINT start a graceful shutdown and a second one exits
 * at once, SIGHUP reopens the access log (call before creating other threads). Returns 0 or -errno.
 */
int tt_server_run(tt_server *srv, int handle_signals);
/* Start a graceful shutdown from any thread: stop accepting, close idle connections, finish
 * in-flight requests with Connection: close, stop after drain_timeout. Async-signal-safe. */
void tt_server_shutdown(tt_server *srv);
/* Call fn(data) on each worker thread as it stops (its loop has returned, before the thread
 * ends), for per-worker state a handler keeps in thread-local storage (caches). Register
 * before tt_server_run; hooks run in the order registered. 0, or -ENOSPC past
 * TT_SERVER_MAX_EXIT_HOOKS. */
int tt_server_on_worker_exit(tt_server *srv, void (*fn)(void *data), void *data);
/* Reopen the access log file (access_log_path) from any thread, e.g. after logrotate moved it:
 * lines logged before go to the old file, later ones to the new. 0, -EBADF (no log) or -EINVAL
 * (the log is an fd, not a path). tt_server_run(srv, 1) does this on SIGHUP. */
int tt_server_reopen_log(tt_server *srv);
/* Re-read the TLS certificate and key files (tls.cert_file, tls.key_file) from any thread: new
 * handshakes use the new pair, open connections keep theirs and stay open. 0; -ENOENT without
 * TLS; else -errno with a one-line reason in err and the old pair still in use.
 * tt_server_run(srv, 1) does this on SIGHUP (and prints a failure to stderr). */
int tt_server_reload_tls(tt_server *srv, char *err, size_t errlen);
/* The TLS counters of srv (handshakes, failures by reason; all workers). 0, or -ENOENT when
 * srv has no https:// listener (*out zeroed). */
int tt_server_tls_stats(const tt_server *srv, tt_tls_stats *out);
/* Free a server after tt_server_run returned (closes listeners). */
void tt_server_free(tt_server *srv);
/* The effective configuration (defaults filled in); valid while srv lives. */
const tt_server_config *tt_server_get_config(const tt_server *srv);
/* Number of worker threads. */
int tt_server_workers(const tt_server *srv);
/* Bound port of the first listener (useful with port 0). */
int tt_server_port(const tt_server *srv);

/* Why a connection was closed (index into tt_server_stats.closes). */
typedef enum tt_close_reason {
    TT_CLOSE_PEER_FIN,     /* the client closed (FIN) */
    TT_CLOSE_PEER_RST,     /* the client reset the connection / I/O error */
    TT_CLOSE_CONN_CLOSE,   /* a "Connection: close" exchange (either side asked) */
    TT_CLOSE_MAX_REQUESTS, /* keepalive_requests reached */
    TT_CLOSE_MAX_AGE,      /* keepalive_time reached */
    TT_CLOSE_IDLE_TIMEOUT, /* keepalive_timeout expired */
    TT_CLOSE_HEADER_TIMEOUT,
    TT_CLOSE_BODY_TIMEOUT,
    TT_CLOSE_SEND_TIMEOUT,
    TT_CLOSE_BAD_REQUEST,       /* a 4xx/5xx protocol error answered and closed */
    TT_CLOSE_SHUTDOWN,          /* graceful shutdown */
    TT_CLOSE_PRESSURE,          /* closed to make room (fd or connection limit: an idle connection,
                                   else the slowest reading one) or a body over max_body_memory */
    TT_CLOSE_PEER_DEAD,         /* the peer stopped answering: TCP keepalive probes (or retransmits)
                                   timed out (ETIMEDOUT), not a reset */
    TT_CLOSE_HANDSHAKE_TIMEOUT, /* a TLS handshake did not finish in tls.handshake_timeout_ms */
    TT_CLOSE_TLS_FAILED, /* a TLS handshake failed (alert, not TLS, cleartext HTTP answered 400) */
    TT_CLOSE_NREASONS
} tt_close_reason;

/* Connection states (every transition lives in lib/server/conn.c). */
typedef enum tt_conn_state {
    TT_CONN_READING_HEAD, /* waiting for / reading a request head */
    TT_CONN_READING_BODY, /* reading a request body */
    TT_CONN_HANDLING,     /* a handler owns the request (async or streaming) */
    TT_CONN_WRITING,      /* output queued that the peer has not taken yet */
    TT_CONN_IDLE,         /* keep-alive, between requests: holds no buffers */
    TT_CONN_LINGERING,    /* closing: our side shut down, draining the peer's input */
    TT_CONN_CLOSED,
    TT_CONN_NSTATES
} tt_conn_state;

/* Short names of states and close reasons ("idle", "peer_fin"…); static storage. */
const char *tt_conn_state_name(int state);
const char *tt_close_reason_name(int reason);

#define TT_HIST_BUCKETS 24 /* log2 buckets: [0] = 0..1, [i] = [2^i, 2^(i+1)) */

/* Counters of one worker (or all, summed). Read with tt_server_stats from any thread. */
typedef struct tt_server_stats {
    uint64_t accepted;        /* connections accepted */
    uint64_t requests;        /* requests whose handling started */
    uint64_t reused_requests; /* requests that were not the first on their connection */
    uint64_t closes[TT_CLOSE_NREASONS];
    uint64_t accept_paused;                  /* times accepting paused (max connections, EMFILE) */
    uint64_t conns[TT_CONN_NSTATES];         /* open connections by current state */
    uint64_t open;                           /* open connections */
    uint64_t reqs_per_conn[TT_HIST_BUCKETS]; /* closed connections by log2(requests served) */
    uint64_t lifetime_ms[TT_HIST_BUCKETS];   /* closed connections by log2(lifetime ms) */
    uint64_t log_waits;        /* times a worker waited for the access log writer (full buffer) */
    uint64_t body_mem_refused; /* bodies answered 503: max_body_memory reached */
    uint64_t evicted;          /* slow reading connections closed to make room (pressure) */
    uint64_t handed_in;        /* connections another (full) worker accepted for this one */
} tt_server_stats;

/* Copy worker's counters (worker -1: the sum over all workers) into *out. Thread-safe
 * (relaxed atomic reads: each counter is exact, the set is not one instant). 0 or -EINVAL. */
int tt_server_stats_get(const tt_server *srv, int worker, tt_server_stats *out);

/* Information about the connection carrying a request. */
typedef struct tt_conn_info {
    uint64_t id;             /* unique per server */
    int worker;              /* worker index */
    tt_addr peer, local;     /* addresses */
    uint32_t requests;       /* requests on this connection, including this one */
    int32_t requests_left;   /* requests still allowed after this one (-1: unlimited) */
    uint64_t age_ms;         /* since accept */
    int64_t idle_timeout_ms; /* idle deadline after this response (-1: none) */
    int state;               /* tt_conn_state */
} tt_conn_info;

/* Request accessors: pointers into the read buffer, valid until the response is finished. */
/* The method ("GET") and its length. */
const char *tt_req_method(const tt_req *req, size_t *len);
/* The request-target path without the query ("/a/b"), and its length. */
const char *tt_req_path(const tt_req *req, size_t *len);
/* The query string after '?' (NULL if none), and its length. */
const char *tt_req_query(const tt_req *req, size_t *len);
/* The full request-target as sent. */
const char *tt_req_target(const tt_req *req, size_t *len);
/* HTTP minor version (0 or 1). */
int tt_req_minor(const tt_req *req);
/* The first header named name (case-insensitive), or NULL; *len gets its value length. */
const char *tt_req_header(const tt_req *req, const char *name, size_t *len);
/* Number of header fields and the i-th one (name and value); 0 or -ERANGE. */
int tt_req_header_count(const tt_req *req);
int tt_req_header_at(const tt_req *req, int i, const char **name, size_t *nlen, const char **value,
                     size_t *vlen);
/* The whole request body (de-chunked, up to max_body), or NULL when empty. */
const char *tt_req_body(const tt_req *req, size_t *len);
/* A trailer field of a chunked request body (case-insensitive), or NULL; *len gets its value
 * length. Valid like the body. At most 16 trailer fields are accepted (more: 431). */
const char *tt_req_trailer(const tt_req *req, const char *name, size_t *len);
/* Number of trailer fields and the i-th one; 0 or -ERANGE. */
int tt_req_trailer_count(const tt_req *req);
int tt_req_trailer_at(const tt_req *req, int i, const char **name, size_t *nlen, const char **value,
                      size_t *vlen);
/* Streaming request bodies (routes with TT_ROUTE_STREAM_BODY). fn gets each piece of the body
 * as it arrives, de-chunked (data points into the read buffer, valid during the call only),
 * then exactly once with data NULL and len 0: err 0 at the end (trailers are then readable with
 * tt_req_trailer*), or err < 0 when the body cannot complete (-ECONNRESET peer reset or FIN,
 * even while paused; -ETIMEDOUT body timeout: the server answers 408 if no response was
 * started; -EPROTO bad framing: 400; -ENOBUFS max_body_memory: 503; after an error the
 * connection closes and output the handler writes after the server's own answer is dropped).
 * It returns 0 for more, or TT_BODY_PAUSE to stop delivery (the socket is not read: TCP pushes
 * back on the client; the body timeout is suspended) until tt_req_body_resume. Once the
 * response is finished (tt_res_end), fn is not called again, not even for the end: the rest
 * of the body is skipped (Content-Length within discard_limit) or the connection closes. */
typedef int (*tt_req_body_fn)(tt_req *req, const char *data, size_t len, int err, void *ud);
/* Start taking the body of a streaming route's request (once; sends 100 Continue when the
 * client asked for it and no response has started). fn runs from the loop, never inside this
 * call; a request without a body gets the end at once. ud is passed to fn, not owned. 0,
 * -EALREADY (second call) or -EINVAL (not a streaming route, or fn NULL). */
int tt_req_body_read(tt_req *req, tt_req_body_fn fn, void *ud);
/* Resume delivery after fn returned TT_BODY_PAUSE (from the loop thread; pieces follow from
 * the loop, never inside this call; a no-op when not paused). 0 or -EINVAL (not reading). */
int tt_req_body_resume(tt_req *req);
/* The announced body length: Content-Length, 0 without a body, -1 for chunked. */
long long tt_req_body_length(const tt_req *req);

/* Connection information for this request (two system calls for the addresses). 0 or -errno. */
int tt_req_conn_info(const tt_req *req, tt_conn_info *out);
/* The id of the connection carrying req (tt_conn_info.id: unique per server, never reused),
 * without a system call: a key for per-connection caches. */
uint64_t tt_req_conn_id(const tt_req *req);
/* What the TLS handshake of the request's connection agreed (version, cipher, ALPN, resumed;
 * strings valid until the response is finished). 0, or -ENOTCONN on a cleartext connection. */
int tt_req_tls_info(const tt_req *req, tt_tls_info *out);
/* The worker's loop (for async handlers: finish the response from a callback on it). */
tt_loop *tt_req_loop(const tt_req *req);
/* The server the request arrived at. */
tt_server *tt_req_server(const tt_req *req);
/* Nonzero when the peer went away: the response will be discarded (finish it anyway). */
int tt_req_aborted(const tt_req *req);
/* The request method as a well-known id (TT_HTTP1_M_GET...; TT_HTTP1_M_OTHER otherwise). */
tt_http1_method tt_req_method_id(const tt_req *req);

/* Response: a complete answer in one call (copies body). Finishes the exchange. 0 or -errno. */
int tt_res_send(tt_res *res, int status, const char *content_type, const void *body, size_t len);
/* Add a response header before the head is written (copied). 0; -EINVAL for a name that is not
 * a token or a value with CR, LF, NUL or another CTL (nothing is written); -EPERM for
 * "Content-Length", "Transfer-Encoding", "Keep-Alive" and "Connection" (the server frames the
 * message and manages the connection), except that a Connection value with the "close" token
 * is taken as tt_res_close (the connection closes after this response; pipelined requests
 * behind it are not answered); -EALREADY after the head; -ENOSPC when the store is full. The
 * server adds "Date" and "Server" itself. */
int tt_res_header(tt_res *res, const char *name, const char *value);
/* Send an interim (1xx) response before the final one, e.g. 103 Early Hints (fields copied
 * out at once; a proxy relays the upstream's). 0 (also when nothing is sent: an HTTP/1.0
 * client must not get 1xx, RFC 9110 §15.2); -EINVAL for 100 (the server's, answering
 * Expect: see tt_req_body_read), 101 or a status outside 1xx, or a bad field; -EALREADY after
 * the final head. */
int tt_res_interim(tt_res *res, int status, const tt_header *fields, size_t n);
/* Start a response head: length >= 0 frames with Content-Length, -1 streams chunked (or
 * close-delimited for HTTP/1.0). 0 or -errno. */
int tt_res_start(tt_res *res, int status, long long length);
/* Write body bytes (copied into the connection's write buffer). 0 or -errno. */
int tt_res_write(tt_res *res, const void *data, size_t len);
/* Send len bytes of fd from offset by sendfile after what is queued; takes ownership of fd
 * (closed when done). Only after tt_res_start with a length. 0 or -errno. */
int tt_res_sendfile(tt_res *res, int fd, off_t offset, size_t len);
/* Bytes of this response written by the handler and not yet taken by the kernel (a pending
 * sendfile included). */
size_t tt_res_pending(const tt_res *res);
/* Called once by tt_res_on_drain: write more, wait again or end; tt_res_aborted() tells whether
 * the peer went away (then finish with tt_res_end). */
typedef void (*tt_res_drain_fn)(tt_res *res, void *data);
/* Flow control for a streaming handler: write while tt_res_pending() is under a high mark, then
 * ask for fn once it is at most low (or the peer is gone). fn runs from the loop, never inside
 * this call; a second call replaces the first. 0, or -EALREADY after tt_res_end. */
int tt_res_on_drain(tt_res *res, size_t low, tt_res_drain_fn fn, void *data);
/* Finish the response (the last chunk for chunked). res is invalid afterwards. 0 or -errno. */
int tt_res_end(tt_res *res);
/* Add a trailer field to a chunked response (after tt_res_start, before tt_res_end; copied,
 * written with the last chunk). 0; -ENOTSUP when the response is not chunked (Content-Length,
 * HEAD, 204/304: trailers cannot be sent); -EINVAL for a bad name or value, or outside that
 * window; -EPERM for a field a trailer must not carry (framing, Host, Content-Type...);
 * -ENOSPC when the store is full. */
int tt_res_trailer(tt_res *res, const char *name, const char *value);
/* Give up on a response that cannot be completed (an upstream failed mid-body): the
 * connection closes once what is queued is sent, without the last chunk (chunked) or with a
 * short body (Content-Length), so the client sees the truncation; before the head it acts as
 * tt_res_close + tt_res_end. res is invalid afterwards. 0 or -EALREADY. */
int tt_res_abort(tt_res *res);
/* Attach a short note to this exchange's access log line ($log_note; "-" without one), e.g.
 * why a proxy answered 502. note is not copied: static storage (or valid until the exchange
 * ends). A later call replaces it. */
void tt_res_log_note(tt_res *res, const char *note);
/* Ask for "Connection: close" on this response (before the head is written). */
void tt_res_close(tt_res *res);
/* Nonzero when the peer went away (tt_req_aborted for the response's request). */
int tt_res_aborted(const tt_res *res);
/* The request this response answers (valid as long as res). */
tt_req *tt_res_req(tt_res *res);
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
/* Source compatibility: tt_res was once the same type as tt_req, and code that asked
 * tt_req_aborted(res) keeps compiling (and means tt_res_aborted). */
#define tt_req_aborted(x)                                                                          \
    _Generic((x), tt_res *: tt_res_aborted, const tt_res *: tt_res_aborted, default: tt_req_aborted)(x)
#endif

/* Static files under root for req (GET/HEAD, 304, 206, 404, 405): the built-in file handler
 * (route data: a const char * root directory that outlives the server). It keeps a per-worker
 * open-file cache: when you mount it yourself, also register
 * tt_server_on_worker_exit(srv, tt_static_worker_exit, NULL) (cfg.root does both). */
void tt_static_handler(tt_req *req, tt_res *res, void *root);
/* Free the calling worker thread's open-file cache (a worker-exit hook; data unused). */
void tt_static_worker_exit(void *unused);

#ifdef __cplusplus
}
#endif
#endif
