/* insight.h — what the kernel and the server say about connections, shown by `serve --status`
 * (mount.c: the /_tether/ routes and who may see them; dashboard.c: the HTML page) and by
 * `tether conns` (conns.c). render.c holds the renderers both use: the status JSON, the
 * Prometheus metrics, one connection's JSON, the TCP-state counts, all JSON through tt_json.
 * mount.c and conns.c call render.c; render.c calls neither. */
#ifndef TT_SRC_INSIGHT_H
#define TT_SRC_INSIGHT_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <tether.h>

/* The /_tether/dashboard page: a NUL-terminated, self-contained HTML document (static). */
extern const char tt_insight_dashboard_html[];

/* Replace the allow list with comma-separated CIDRs ("10.0.0.0/8,::1"); NULL: loopback only
 * (127.0.0.0/8 and ::1). 0 or -EINVAL; then *bad (if not NULL) gets the offset in list of the
 * element refused. */
int tt_insight_parse_allow(const char *list, size_t *bad);

/* TCP states in the order the JSON and the tables list them (the kernel's numbering). */
extern const int tt_insight_tcp_order[];
#define TT_INSIGHT_NTCP 11

/* "127.0.0.1:8080" or "[::1]:8080" ("?" for other families) into buf. */
void tt_insight_format_addr(const tt_addr *a, char *buf, size_t size);
/* A member key (NULL in arrays) whose value is {STATE: n, ...} with every state, zeros
 * included, in tt_insight_tcp_order. */
void tt_insight_json_tcp_counts(tt_json *j, const char *key, const tt_tcp_counts *c);
/* The /_tether/status document of srv (uptime_s: since --status was mounted) into j. */
void tt_insight_status_json(tt_json *j, tt_server *srv, double uptime_s);
/* The /_tether/metrics text (Prometheus 0.0.4) of srv: a malloc'ed string (the caller frees
 * it) of *len bytes, or NULL when out of memory. */
char *tt_insight_metrics_text(tt_server *srv, double uptime_s, size_t *len);
/* One connection's /_tether/conn document into j; tls: what its handshake agreed, NULL for a
 * cleartext connection. */
void tt_insight_conn_json(tt_json *j, const tt_conn_info *ci, const tt_tls_info *tls);

/* upstreams.c: the upstreams of `tether proxy --status`. */
struct tt_proxy;
/* Show p's upstreams in the status pages from now on (NULL: none, as for serve). */
void tt_insight_set_proxy(struct tt_proxy *p);
/* "upstreams": [...] (per upstream: connections open/idle/leased, requests, reuse ratio,
 * failures by reason, TIME_WAIT on the upstream leg) into the open object j; nothing without
 * a proxy. */
void tt_insight_upstreams_json(tt_json *j);
/* The tether_upstream_* metrics into f; nothing without a proxy. */
void tt_insight_upstreams_metrics(FILE *f);

/* owners.c: who holds the sockets (inode -> /proc/PID/fd, as `ss -p`). */
typedef struct tt_insight_sock {
    uint32_t inode;
    unsigned char state, side;
} tt_insight_sock;

typedef struct tt_insight_owner {
    int pid;
    char name[17];                /* /proc/PID/comm */
    tt_tcp_counts server, client; /* its sockets on the port, by side and state */
} tt_insight_owner;

/* Sockets added, then the processes holding them (after resolve). Zero it to start; free with
 * tt_insight_owners_free. */
typedef struct tt_insight_owners {
    tt_insight_sock *socks;
    size_t nsocks, capsocks;
    tt_insight_owner *procs; /* in /proc order (ascending pid) */
    size_t nprocs, capprocs;
    unsigned unowned; /* sockets with an inode no readable process holds */
} tt_insight_owners;

typedef enum {
    TT_INSIGHT_UNKNOWN,
    TT_INSIGHT_TETHER,
    TT_INSIGHT_NGINX,
    TT_INSIGHT_OTHER
} tt_insight_kind;

/* Remember one socket (ignored when it has no inode). 0 or -ENOMEM. */
int tt_insight_owners_add(tt_insight_owners *o, const tt_sockinfo *s);
/* Find the processes holding the added sockets. 0 or -errno. */
int tt_insight_owners_resolve(tt_insight_owners *o);
/* What listens on the port (by process name); *name (if not NULL) gets it or NULL. */
tt_insight_kind tt_insight_listener(const tt_insight_owners *o, const char **name);
void tt_insight_owners_free(tt_insight_owners *o);

#endif
