/* client_int.h — internal: the client pool's pure decision logic (reuse, expiry, retry),
 * kept free of I/O so unit tests can drive it directly. */
#ifndef TT_CLIENT_INT_H
#define TT_CLIENT_INT_H

#include <stdint.h>

#include "tether/client.h"

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

/* Absolute expiry time of an idle connection and why (enum tt_evict_reason) into *reason. */
uint64_t tt__client_expiry(const tt__expiry_in *in, int *reason);

/* What the response and request said about reuse. */
typedef struct tt__reuse_in {
    int error;           /* the exchange failed */
    int req_close;       /* request sent Connection: close (or HTTP/1.0 without keep-alive) */
    int resp_close;      /* response said Connection: close */
    int resp_minor;      /* response HTTP minor version */
    int resp_keepalive;  /* response said Connection: keep-alive */
    int close_delimited; /* body ran until close */
    int body_complete;   /* body fully read */
    int leftover;        /* unsolicited bytes after the response */
    int peer_fin;        /* FIN/RST seen */
    long ka_max;         /* Keep-Alive: max= (-1 absent) */
    int retired;         /* address left DNS, or client shutting down */
    int continue_unsent; /* a final response arrived before the request body was sent */
} tt__reuse_in;

/* 0 when the connection may go back to the pool, else the enum tt_evict_reason to close it. */
int tt__client_reuse(const tt__reuse_in *in, int *reason);

/* Nonzero if a request with this method (and headers) may be replayed after it was maybe
 * processed: GET, HEAD, PUT, DELETE, OPTIONS, TRACE, or an Idempotency-Key header. */
int tt__client_idempotent(const char *method, const char *const *headers, int nheaders);

/* Learned idle-close update: the server closed an idle connection after idle_ms. */
uint64_t tt__client_learn(uint64_t learned, uint64_t idle_ms);

/* Split an http:// URL into host (NUL-terminated, brackets stripped), port and path (points into
 * url; "/" if empty). 0, -EINVAL or -EPROTONOSUPPORT (https). */
int tt__client_parse_url(const char *url, char *host, size_t hostsz, int *port, const char **path);

/* Lease-wait histogram bucket for ms. */
int tt__client_wait_bucket(uint64_t ms);

#endif
