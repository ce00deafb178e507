/* server_int.h — internal: the server's workers, connections and exchanges.
 *
 * Memory: a connection (tt__conn, 128 bytes, slab-allocated per worker) holds no buffer while
 * idle. Everything a request needs (read and write buffers, parser, header array, response
 * state) lives in an exchange (struct tt_req), taken from a per-worker free list when bytes
 * arrive and given back when the connection goes idle. */
#ifndef TT_SERVER_SERVER_INT_H
#define TT_SERVER_SERVER_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "common/list.h"
#include "tether/buffer.h"
#include "tether/http1.h"
#include "tether/loop.h"
#include "tether/server.h"
#include "tether/stream.h"
#include "tether/timer.h"
#include "tether/tls.h"

#define TT__MAX_REQ_HEADERS 64
#define TT__MAX_RES_HEADERS 16   /* inline; a larger head moves to a tt__res_big */
#define TT__MAX_TRAILERS    16   /* request trailer fields kept for the handler; more: 431 */
#define TT__RES_STORE       1024 /* inline */
#define TT__HAND_MAX        64   /* sockets queued for a worker by the others */

/* Single-writer counters: a relaxed load and store (no lock prefix), readable from any thread. */
#define TT__INC(x)                                                                                 \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)
#define TT__DEC(x)                                                                                 \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) - 1, __ATOMIC_RELAXED)
#define TT__ADD(x, n)                                                                              \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

typedef struct tt__worker tt__worker;
typedef struct tt__conn tt__conn;

/* Connection flags: the connection's own decisions. Readiness (input pending, output blocked,
 * the peer's FIN) is the stream's bookkeeping: tt_stream_can_read / can_write / eof. */
enum {
    TT__C_IN_PROC = 1u << 0,      /* inside conn_process (re-entrancy guard) */
    TT__C_LINGER_DRAIN = 1u << 1, /* lingering: SHUT_WR done, draining input */
    TT__C_ZOMBIE = 1u << 2,       /* closed while a handler holds the exchange */
    TT__C_HEAD_STARTED = 1u << 3, /* header deadline armed for the current head */
    TT__C_PEER_CLOSE = 1u << 4,   /* the client said it sends no more requests (close) */
    TT__C_HANDSHAKE = 1u << 5,    /* a TLS handshake is in progress (tls.c drives it) */
};

/* tt__conn.closing when no close reason has been decided yet. */
#define TT__CLOSE_NONE 0xffu

/* A connection: small on purpose (<= 128 bytes, asserted by test_server.c). */
struct tt__conn {
    tt_stream s;      /* the transport: socket, watcher, readiness */
    tt_timer timer;   /* the one deadline (which one depends on the state) */
    tt__list link;    /* per-state list, or the worker's free list */
    struct tt_req *x; /* exchange while active; NULL when idle */
    tt__worker *w;
    uint32_t id;
    uint32_t born;     /* ms since the worker started */
    uint32_t nreq;     /* requests started on this connection */
    uint32_t maxreq;   /* allowed requests (0: unlimited) */
    uint32_t deadline; /* lingering: absolute end, ms since worker start */
    uint8_t state;     /* tt_conn_state */
    uint8_t flags;     /* TT__C_* */
    uint8_t closing;   /* tt_close_reason decided for this connection, or TT__CLOSE_NONE */
};

/* The response half of an exchange (public name tt_res): a distinct type from tt_req, so that
 * swapping the two does not compile. Embedded in struct tt_req as `res`. */
struct tt_res {
    int status;
    uint8_t started, finished, chunked, head_only;
    uint8_t keep_alive;  /* decision for this response */
    long long bytes_out; /* body bytes (access log) */
    const char *note;    /* tt_res_log_note ($log_note), static storage */
    size_t nhdrs;
    size_t store_used;
    int file_fd;
    off_t file_off;
    size_t file_left;
    /* flow control for streaming handlers (tt_res_on_drain) */
    tt_res_drain_fn drain_fn;
    void *drain_data;
    size_t drain_low;
    tt_defer drain_defer;
    struct tt__res_big *big; /* NULL: the inline arrays below hold the fields */
    tt_header hdrs[TT__MAX_RES_HEADERS];
    char store[TT__RES_STORE];
};

/* The fields of a response head larger than the inline arrays (a relayed upstream head):
 * allocated when the inline ones overflow, kept until the exchange is given back. */
typedef struct tt__res_big {
    tt_header hdrs[TT_RES_MAX_FIELDS + 2]; /* + Server, Keep-Alive */
    char store[TT_RES_FIELD_BYTES];
} tt__res_big;

/* The response's field array (inline or big). */
static inline tt_header *tt__res_hdrs(struct tt_res *r)
{
    return r->big ? r->big->hdrs : r->hdrs;
}

/* A streaming request body (routes with TT_ROUTE_STREAM_BODY; body.c): delivered from the
 * read buffer as it arrives, each piece cut out once the handler had it. Zeroed per message. */
struct tt__body {
    tt_req_body_fn fn; /* set by tt_req_body_read */
    void *ud;
    tt_defer defer;     /* delivery runs from the loop (its cb: body.c's pump) */
    uint64_t left;      /* Content-Length bytes not yet delivered */
    uint64_t t0;        /* loop ms the min-rate deadline counts from (moved on by pauses) */
    uint64_t paused_at; /* loop ms of the last pause */
    uint64_t last;      /* loop ms of the last progress (a read, the start, a resume) */
    uint8_t on;         /* the request's route streams its body */
    uint8_t paused;     /* fn returned TT_BODY_PAUSE: the socket is not read */
    uint8_t ended;      /* the whole body was delivered (the end call may still be due) */
    uint8_t done;       /* the terminal call was made or the response ended: no more calls */
    uint8_t expired;    /* the body deadline passed (conn.c's timer) */
    uint8_t answered;   /* the server answered (408/400) in the handler's place: its output is
                           dropped */
};

/* An exchange: one request and its response (public names tt_req and, for res, tt_res). */
struct tt_req {
    tt__conn *conn;
    tt_buf rbuf, wbuf;
    tt_http1_parser parser;
    tt_http1_request req;
    tt_http1_chunked_decoder dec;
    size_t head_len;  /* parsed head length (0 while reading the head) */
    size_t body_len;  /* body bytes available at rbuf.data + head_len (decoded) */
    size_t raw_len;   /* bytes of rbuf this message occupies once complete */
    size_t tlen;      /* packed trailer bytes right after the decoded body */
    uint64_t discard; /* body bytes still to discard after the response */
    const char *path, *query;
    size_t path_len, query_len;
    const tt_route *route; /* the route of path (conn_head_done), NULL: none */
    uint8_t sent_continue; /* "100 Continue" queued */
    uint8_t handling;      /* a handler owns the exchange (until tt_res_end) */
    uint8_t log_minor;     /* conn_error: the request's own minor version + 1 (the log's) */
    uint64_t t_start;      /* loop ms when this message began ($request_time, min rates) */
    uint64_t rx;           /* bytes read for this message (progress, for eviction) */
    size_t charged;        /* rbuf bytes charged to the server's body budget */
    struct tt__body body;  /* streaming request body */
    struct tt_res res;
    tt_header hdrs[TT__MAX_REQ_HEADERS];
    tt_header trailers[TT__MAX_TRAILERS]; /* views after the body in rbuf (dec.num_trailers) */
    tt__list free_link;                   /* on the worker's free list while unused */
};

/* The exchange of a response writer. */
static inline struct tt_req *tt__x_of(const tt_res *res)
{
    return tt_container_of(res, struct tt_req, res);
}

typedef struct tt__listener {
    tt_io io;
    int fd;
    int tls; /* an https:// listener: connections start with a TLS handshake */
} tt__listener;

/* Per-worker statistics (single writer: the worker thread). */
typedef tt_server_stats tt__stats;

struct tt__worker {
    tt_server *srv;
    int index;
    pthread_t thread;
    tt_loop *loop;
    tt_bufpool *pool;
    tt__listener ls[TT_SERVER_MAX_LISTEN];
    int nls;
    int accepting; /* listeners registered */
    int shutting;
    tt_async wake;   /* shutdown requests */
    tt_timer drain;  /* drain deadline */
    tt_timer resume; /* resume accepting after EMFILE */
    uint64_t t0;     /* loop time at start */
    uint32_t next_id;
    uint32_t nconns;
    uint32_t max_conns;
    /* sockets other workers accepted for this one (accept.c: when they were full) */
    pthread_mutex_t hand_mu;
    tt_async hand;
    int hand_fds[TT__HAND_MAX];
    unsigned char hand_tls[TT__HAND_MAX]; /* hand_fds[i] came from an https:// listener */
    int nhand;
    uint64_t rng;
    void (*conn_gone)(tt__worker *w); /* accept.c: a connection closed (resume accepting) */
    tt__list lists[TT_CONN_NSTATES];  /* per-state connections, oldest first */
    tt__list free_conns;
    void **slabs;
    size_t nslabs, cap_slabs;
    tt__list free_x; /* unused exchanges, most recent first */
    uint32_t nfree_x;
    tt__stats stats;
};

/* One step of a compiled access log format: literal text or a variable. */
typedef struct tt__alog_op {
    uint8_t op;
    uint16_t len;     /* literal or header-name length */
    const char *text; /* literal text or $http_ header name (points into the format) */
} tt__alog_op;

#define TT__ALOG_MAX_OPS 64
#define TT__ALOG_ADDR    64 /* an address as logged */

/* The per-server access log (accesslog.c): workers append lines to a shared buffer under the
 * server's own lock (waiting when it is full: nothing is dropped), a logger thread writes them
 * to the file and reopens it on request. Nothing is process-global. */
typedef struct tt__alog {
    int fd;     /* > 0 while logging (set before the workers start, then constant) */
    int wfd;    /* the fd written to (the logger thread's: changes on reopen) */
    int own_fd; /* wfd was opened here (access_log_path): closed on reopen and stop */
    const char *path;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* lines or a request for the logger */
    pthread_cond_t space; /* the buffer was emptied (workers waiting for room) */
    char *buf, *mine;     /* the shared buffer, the logger's copy being written */
    size_t len;
    int stop, reopen;
    pthread_t thread;
    tt__alog_op ops[TT__ALOG_MAX_OPS]; /* the compiled format */
    int nops;
    int need_peer; /* the format logs the peer's address or port (getpeername per line) */
} tt__alog;

struct tt_server {
    tt_server_config cfg;
    tt_addr addrs[TT_SERVER_MAX_LISTEN];
    unsigned tls_listen; /* bit a: listen[a] is https:// */
    tt_tls_ctx *tls;     /* the one TLS context of all workers (NULL without https://) */
    tt_route routes[TT_SERVER_MAX_ROUTES + 1]; /* cfg's routes, the root mount first */
    int nroutes;
    int nworkers;
    tt__worker *workers;
    int port;
    unsigned long long body_mem; /* read-buffer bytes charged by bodies, all workers (atomic) */
    unsigned unix_owned; /* bit a: listen[a] is a Unix-domain socket file this server made */
    volatile int shutdown_count;
    int kill_now;
    int no_sendfile;   /* testing knob: serve files with pread + write (the TLS path) */
    tt_loop *ctl;      /* the calling thread's control loop: signals, waits for workers */
    tt_async ctl_done; /* a worker finished */
    int running;       /* workers still running (atomic) */
    int abandoned;     /* workers left stuck past the drain deadline: their memory is kept */
    tt__alog log;
    struct {
        void (*fn)(void *data);
        void *data;
    } exit_hooks[TT_SERVER_MAX_EXIT_HOOKS]; /* tt_server_on_worker_exit */
    int nexit_hooks;
};

/* Response bytes queued and not yet taken by the kernel. */
static inline int tt__out_pending(const struct tt_req *x)
{
    return x->wbuf.len || x->res.file_left;
}

/* Output waits for the peer: queued, and the socket said EAGAIN since the last write edge. */
static inline int tt__out_blocked(const tt__conn *c)
{
    return c->x && tt__out_pending(c->x) && !tt_stream_can_write(&c->s);
}

/* The close reason for a failed socket (err: -errno, 0 unknown): a peer that stopped answering
 * (TCP keepalive or retransmissions timed out) is not a peer that reset. */
static inline int tt__io_error_reason(int err)
{
    return err == -ETIMEDOUT ? TT_CLOSE_PEER_DEAD : TT_CLOSE_PEER_RST;
}

/* A streaming body may make progress (input, the peer gone): run its delivery from the loop. */
static inline void tt__body_kick(struct tt_req *x)
{
    if (x->body.defer.cb && !x->body.done)
        tt_defer_queue(x->conn->w->loop, &x->body.defer, x->body.defer.cb);
}

/* The connection's timer fired while a handler streams a body in: the body deadline passed,
 * unless delivery is paused (the handler's doing) or over. */
static inline void tt__body_timer(struct tt_req *x)
{
    if (!x->body.fn || x->body.done || x->body.paused || x->body.ended) return;
    x->body.expired = 1;
    tt__body_kick(x);
}

/* Decide to close c after this exchange for reason, unless a reason was decided already. */
static inline void tt__conn_closing(tt__conn *c, int reason)
{
    if (c->closing == TT__CLOSE_NONE) c->closing = (uint8_t)reason;
}

/* ms since the worker started (loop time). */
static inline uint32_t tt__worker_now(tt__worker *w)
{
    return (uint32_t)(tt_loop_now(w->loop) - w->t0);
}

/* The id of a connection, unique per server (worker index in the high half). */
static inline uint64_t tt__conn_id(const tt__conn *c)
{
    return ((uint64_t)c->w->index << 32) | c->id;
}

/* conn.c: the state machine */
void tt__conn_accepted(tt__worker *w, int fd, int tls);
void tt__conn_close(tt__conn *c, int reason);
void tt__worker_close_idle(tt__worker *w, int reason, int max);
void tt__worker_free_all(tt__worker *w);
/* A streaming handler wrote outside the loop's processing: send now. 0, or -EPIPE when the
 * connection failed (it is then closed). */
int tt__conn_push(tt__conn *c);
/* The handler finished the exchange (tt_res_end): log it, drop the request, carry on. */
void tt__conn_exchange_end(struct tt_req *x);
/* A drain callback was asked for (tt_res_on_drain): check it from the loop. */
void tt__conn_drain_queue(struct tt_req *x);
/* Carry on after a callback ran outside conn.c's processing (body.c): flush, go on with the
 * next request if the exchange ended, free a connection closed meanwhile. */
void tt__conn_resume(tt__conn *c);

/* exchange.c: exchanges and the response head (below conn.c and response.c) */
/* A free connection from the worker's slabs (256 per slab), or NULL. */
tt__conn *tt__conn_alloc(tt__worker *w);
/* Requests allowed on a new connection: keepalive_requests +-10% (0: unlimited). */
uint32_t tt__conn_maxreq(tt__worker *w);
/* The log2 histogram bucket of v (TT_HIST_BUCKETS). */
unsigned tt__log2_bucket(uint64_t v);
struct tt_req *tt__x_get(tt__conn *c);
void tt__x_put(tt__conn *c);
/* Make room for want more input bytes in x->rbuf, moving the request views along. */
int tt__x_reserve(struct tt_req *x, tt__worker *w, size_t want);
/* Room for the next part of a Content-Length body (left bytes still to come). */
int tt__x_reserve_body(struct tt_req *x, tt__worker *w, size_t left);
/* The next message on x starts now (its clock and progress). */
void tt__x_next(struct tt_req *x);
void tt__x_split_target(struct tt_req *x);
/* Pack the decoded trailer fields at dst (the views follow); the bytes used. */
size_t tt__x_trailers_pack(struct tt_req *x, char *dst);
/* Store a header for the head (tt_res_header checked it; the head writer checks it again). */
int tt__res_add_header(struct tt_res *r, const char *name, const char *value);
/* tt__res_add_header with the lengths known (name[0,nl), value[0,vl)); same checks. */
int tt__res_add_header_n(struct tt_res *r, const char *name, size_t nl, const char *value,
                         size_t vl);
/* Serialize head h into x's write buffer (grown to fit). 0, -EINVAL (an invalid field:
 * nothing written) or -ENOMEM. */
int tt__res_write_head(struct tt_req *x, tt_http1_response_head *h);
int tt__res_begin(struct tt_req *x, int status, long long length);
/* (Re)arm c's body deadline: body_timeout after last (loop ms of the last progress), and no
 * later than the min-rate allowance counted from t0. The ms it is away (0: passed). */
uint64_t tt__x_body_deadline(tt__conn *c, uint64_t t0, uint64_t last);
/* A streaming body the handler stops taking (it answers first): with apply, skip the rest
 * (raw_len and discard) or mark the connection closing. 1 when the connection can be kept. */
int tt__x_body_abandon(struct tt_req *x, int apply);

/* body.c: streaming request bodies (tt_req_body_*) */
/* The response ends (tt_res_end): no more calls; the rest of an unread body is skipped. */
void tt__body_end(struct tt_req *x);

/* tls.c: TLS listeners and handshakes (below conn.c and server.c: it calls neither) */
/* The address part of a listen spec and whether it is https:// ("http://" and a trailing "/"
 * are dropped); buf holds the copy. NULL when it does not fit. */
const char *tt__tls_listen_spec(const char *spec, int *tls, char *buf, size_t size);
/* Make the server's TLS context when an https:// listener needs one. 0 or -errno (err set). */
int tt__tls_setup(tt_server *s, char *err, size_t errlen);
/* Make c's stream a TLS server stream; the first deadline (ms) to arm, 0 when out of memory. */
uint64_t tt__tls_conn_accept(tt__conn *c);
/* Drive c's handshake: 0 done (the header deadline is armed), 1 in progress, 2 cleartext HTTP
 * (the stream is plain again: answer 400), -errno failed (counted by the context). */
int tt__tls_conn_handshake(tt__conn *c);
/* c closes for reason: count a handshake it interrupts; on a clean close of an established TLS
 * connection send close_notify (reset: an abort, nothing sent). */
void tt__tls_conn_closing(tt__conn *c, int reason, int reset);

/* accept.c */
int tt__accept_init(tt__worker *w);  /* the resume timer, handover, w->conn_gone; 0/-errno */
void tt__accept_fini(tt__worker *w); /* closes sockets still handed over */
void tt__accept_resume(tt__worker *w);
void tt__accept_pause(tt__worker *w);

/* accesslog.c */
int tt__alog_compile(tt__alog *lg, const char *fmt);
int tt__alog_start(tt_server *s);
int tt__alog_reopen(tt_server *s); /* any thread: the logger reopens access_log_path */
void tt__alog_stop(tt_server *s);
void tt__access_log(struct tt_req *x);

#endif
