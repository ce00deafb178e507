/* connopt.h — the connection flags every server command shares (serve, proxy): one table of
 * rows (listen, workers, keep-alive, timeouts, limits, access log, --status) and one start-up
 * path (access log, status pages, signals, the server with its error messages), so a flag
 * added here applies to both commands. Each command adds its own rows to the table. */
#ifndef TT_SRC_CONNOPT_H
#define TT_SRC_CONNOPT_H

#include <tether.h>

#include "opt.h"

#define TT_CONNOPT_NROWS 33 /* room for the rows tt_connopt_rows writes */

/* The values of the shared flags before they are applied to the config (-1: not given). */
typedef struct tt_connopt {
    tt_server_config *cfg;
    double ka_timeout, ka_time, header, body, send, linger, close_wait, drain, handshake;
    tt_opt_list listen;
    int ka_req, defer, maxconn, min_rate;
    long long max_body, body_mem, max_line, max_head;
    const char *tcpka, *log, *allow;
    int status;
    const char *tls_min, *tls_ciphers; /* --tls-min, --tls-ciphers as given */
    char *c12, *c13; /* --tls-ciphers split: the TLS 1.2 list and the TLS 1.3 suites (owned) */
} tt_connopt;

/* Start with nothing given; the flags will be applied to cfg (which the caller zeroed and owns). */
void tt_connopt_init(tt_connopt *c, tt_server_config *cfg);
/* Write the shared rows (pointing into c) to rows, which has room for TT_CONNOPT_NROWS; returns
 * how many were written (no TT_OPT_END). */
int tt_connopt_rows(tt_connopt *c, tt_opt *rows);
/* After tt_opt_parse: check the values and move them into c->cfg. TT_OPT_OK or TT_OPT_USAGE
 * (after a message naming the flag, through cmd). */
int tt_connopt_apply(tt_connopt *c, const tt_opt_cmd *cmd);
/* Open the access log and mount the status pages as the flags say, block the shutdown signals
 * and create the server into *out. 0, or the exit status (1 or 2) after a message that starts
 * "tether NAME:". The caller frees the server (tt_server_free) and then tt_connopt_done. */
int tt_connopt_server(tt_connopt *c, const char *name, tt_server **out);
/* A duration flag's seconds (negative: not given) into a config field in ms: 0 means
 * zero_means (TT_OFF: disabled, or 1 ms), anything else rounds to at least 1 ms. */
void tt_connopt_ms(int *ms, double sec, int zero_means);
/* Print "tether NAME: listening on URL (N workers, what)" for each listener of srv. */
void tt_connopt_listening(const char *name, tt_server *srv, const char *what);
/* Release what the options and tt_connopt_server hold outside the server (the split cipher
 * lists, the access log descriptor); safe after any of them failed. */
void tt_connopt_done(tt_connopt *c);

#endif
