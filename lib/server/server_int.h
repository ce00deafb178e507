/* server_int.h — internal: the server's workers, connections and exchanges.
 *
 * Memory: a connection (tt__conn, ~112 bytes, slab-allocated per worker) holds no buffer while
 * idle. Everything a request needs (read and write buffers, parser, header array, response
 * state) lives in an exchange (struct tt_req), taken from a per-worker free list when bytes
 * arrive and given back when the connection goes idle. */
#ifndef TT_SERVER_SERVER_INT_H
#define TT_SERVER_SERVER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "tether/buffer.h"
#include "tether/http1.h"
#include "tether/loop.h"
#include "tether/server.h"
#include "tether/timer.h"

#define TT__MAX_REQ_HEADERS 64
#define TT__MAX_RES_HEADERS 16
#define TT__MAX_TRAILERS    16 /* request trailer fields kept for the handler; more: 431 */
#define TT__RES_STORE       1024

/* Single-writer counters: a relaxed load and store (no lock prefix), readable from any thread. */
#define TT__INC(x)                                                                                 \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)
#define TT__DEC(x)                                                                                 \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) - 1, __ATOMIC_RELAXED)
#define TT__ADD(x, n)                                                                              \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

typedef struct tt__worker tt__worker;
typedef struct tt__conn tt__conn;

/* Connection flags. */
enum {
    TT__C_PEER_FIN = 1u << 0,     /* the peer sent FIN: no more input */
    TT__C_WANT_WRITE = 1u << 1,   /* output blocked: waiting for EPOLLOUT */
    TT__C_READABLE = 1u << 2,     /* input may be pending (we stopped reading early) */
    TT__C_IN_PROC = 1u << 3,      /* inside conn_process (re-entrancy guard) */
    TT__C_LINGER_DRAIN = 1u << 4, /* lingering: SHUT_WR done, draining input */
    TT__C_ZOMBIE = 1u << 5,       /* closed while a handler holds the exchange */
    TT__C_HEAD_STARTED = 1u << 6, /* header deadline armed for the current head */
    TT__C_RDHUP = 1u << 7,        /* EPOLLRDHUP seen: read on until EOF (no short-read shortcut) */
};

/* A connection: small on purpose (see docs/bench-server.md). */
struct tt__conn {
    tt_io io;
    tt_timer timer;
    tt__conn *prev, *next; /* per-state list (or free list) */
    struct tt_req *x;      /* exchange while active; NULL when idle */
    tt__worker *w;
    uint32_t id;
    uint32_t born;     /* ms since the worker started */
    uint32_t nreq;     /* requests started on this connection */
    uint32_t maxreq;   /* allowed requests (0: unlimited) */
    uint32_t deadline; /* lingering: absolute end, ms since worker start */
    uint8_t state;     /* tt_conn_state */
    uint8_t flags;     /* TT__C_* */
    uint8_t closing;   /* tt_close_reason decided for this connection (+1; 0 = none) */
    uint8_t pad;
};

/* An exchange: one request and its response (public name tt_req / tt_res). */
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
    /* response */
    int status;
    int started, finished, chunked, head_only, close_req, sent_continue, handling;
    int keep_alive; /* decision for this response */
    long long res_len;
    size_t nres;
    size_t store_used;
    tt_header res_hdrs[TT__MAX_RES_HEADERS];
    char store[TT__RES_STORE];
    int file_fd;
    off_t file_off;
    size_t file_left;
    /* flow control for streaming handlers (tt_res_on_drain) */
    tt_res_drain_fn drain_fn;
    void *drain_data;
    size_t drain_low;
    tt_defer drain_defer;
    /* access log */
    long long bytes_out;
    tt_header hdrs[TT__MAX_REQ_HEADERS];
    tt_header trailers[TT__MAX_TRAILERS]; /* views after the body in rbuf (dec.num_trailers) */
    struct tt_req *next_free;
};

typedef struct tt__listener {
    tt_io io;
    int fd;
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
    uint64_t rng;
    tt__conn *lists[TT_CONN_NSTATES]; /* heads (oldest first), circular via prev of head */
    tt__conn *free_conns;
    void **slabs;
    size_t nslabs, cap_slabs;
    struct tt_req *free_x;
    uint32_t nfree_x;
    tt__stats stats;
    /* access log */
    char *log;
    size_t log_len;
    struct tt__fcache *fcache; /* static.c: open files, NULL until the first static request */
};

struct tt_server {
    tt_server_config cfg;
    tt_addr addrs[TT_SERVER_MAX_LISTEN];
    int nworkers;
    tt__worker *workers;
    int port;
    volatile int shutdown_count;
    int kill_now;
    tt_loop *ctl;      /* the calling thread's control loop: signals, waits for workers */
    tt_async ctl_done; /* a worker finished */
    int running;       /* workers still running (atomic) */
};

/* conn.c */
void tt__conn_accepted(tt__worker *w, int fd);
void tt__conn_close(tt__conn *c, int reason);
void tt__worker_close_idle(tt__worker *w, int reason, int max);
void tt__worker_free_all(tt__worker *w);
uint32_t tt__worker_now(tt__worker *w);
/* server.c */
void tt__worker_conn_gone(tt__worker *w);
/* static.c: close the worker's cached files */
void tt__fcache_free(tt__worker *w);
/* access log (server.c) */
void tt__access_log(struct tt_req *x);

#endif
