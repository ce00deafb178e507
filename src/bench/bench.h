/* bench.h — `tether bench`, shared between its three parts: the command (cmd.c: options, URL,
 * the request built once by the library's serializer), the load generator (loadgen.c: threads,
 * one loop each, connections on the transport) and the report (report.c: text, --compare table
 * and --json through tt_json). cmd.c calls the other two; they never call back. */
#ifndef TT_SRC_BENCH_H
#define TT_SRC_BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <tether.h>
#include <tether/tls.h>

#include "../hdr.h"

enum { E_CONNECT, E_TLS, E_READ, E_WRITE, E_TIMEOUT, E_STATUS, E_PARSE, E_VERIFY, E_N };

/* How a new https connection handshakes: offer the last session a connection of the same worker
 * got (resumed), or never offer one (full). */
enum { BENCH_TLS_RESUME, BENCH_TLS_FULL };

#define BENCH_MAX_THREAD 256

/* One run's settings: options plus the request, serialized once (cmd.c owns the buffers). */
typedef struct bench_cfg {
    const char *url;
    char host[256];     /* host as written in the URL (for Host:) */
    char hostname[256]; /* host to resolve (no brackets) */
    int port;
    const char *path;
    tt_addr addr;
    const char *method;
    tt_http1_method method_id;
    int conns, threads, pipeline, keepalive, json, verify, compare, progress;
    double duration_s;       /* -d (0 with -n) */
    long long nreq;          /* -n (0: duration-bound) */
    double rate;             /* --rate requests/s over all connections (0: closed loop) */
    int timeout_ms;          /* per request */
    long long verify_length; /* -1: learn from the first response */
    char *batch;             /* pipeline copies of the request, back to back */
    size_t req_len;          /* bytes of one request (head and body) */
    tt_tls_ctx *tls;         /* https: the run's client context (cmd.c owns it); NULL: http */
    int tls_sessions;        /* BENCH_TLS_RESUME or BENCH_TLS_FULL */
} bench_cfg;

/* TLS handshakes of one run (https): the context's counters over the run. */
typedef struct bench_tls_result {
    uint64_t full, resumed, failures[TT_TLS_FAIL_NREASONS], failures_total;
    uint64_t hs_p50_us;    /* median handshake time (tt_tls_stats_handshake_p50_us) */
    int sessions;          /* BENCH_TLS_* of the run */
    char first_error[200]; /* the first failed handshake's reason and message, "" when none */
} bench_tls_result;

/* What one run measured, merged over the threads. */
typedef struct bench_result {
    uint64_t requests, bytes, non2xx, conns_opened, errors, err[E_N];
    uint64_t resent;          /* requests sent again on a new connection after a close */
    uint64_t status_class[6]; /* 1xx..5xx, [0] other */
    double duration_s;
    tt_hdr *hist; /* owned: free() it */
    int keepalive;
    uint64_t closed_server_first;  /* connections whose FIN (or reset) bench read before closing */
    uint64_t closed_client_first;  /* connections bench closed before the server did */
    unsigned tw_server, tw_client; /* --compare: TIME_WAIT on the port 0.2 s after the run, net
                                      of those before it (a snapshot, not all the run made) */
    bench_tls_result tls;          /* https only */
} bench_result;

/* Set once Ctrl-C (or SIGTERM) stopped a run early. */
extern volatile sig_atomic_t bench_interrupted;

/* Run the load once with cfg (loadgen.c); fills res (res->hist allocated). 0, or -1 on a setup
 * error (message printed). The caller blocks SIGINT/SIGTERM in every thread first. */
int bench_run(const bench_cfg *cfg, bench_result *res);

/* The error kinds' names as the report and the JSON show them ("connect", ...). */
extern const char *const bench_err_names[E_N];

/* report.c: the text report of one run, the --compare table, and the JSON of either (one
 * line on stdout). */
void bench_print_text(const bench_cfg *cfg, const bench_result *r);
/* --compare: the runs side by side: keep-alive, new connection (full handshakes over https)
 * and, over https only, new connection with resumed sessions (n = 3). */
void bench_print_compare(const bench_cfg *cfg, const bench_result *const *runs, int n);
void bench_print_json(const bench_cfg *cfg, const bench_result *r);
void bench_print_compare_json(const bench_cfg *cfg, const bench_result *const *runs, int n);
/* "1.23M"-style count for the progress line. */
void bench_fmt_count(char *out, size_t size, double v);

#endif
