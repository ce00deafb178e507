/* report.c — what `tether bench` prints: the text report of one run, the --compare table of
 * two runs side by side, and the JSON of either through the library's writer (tt_json). */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>

#include "bench.h"

const char *const bench_err_names[E_N] = {"connect", "tls",    "read",  "write",
                                          "timeout", "status", "parse", "verify"};

void bench_fmt_count(char *out, size_t size, double v)
{
    if (v >= 1e9)
        snprintf(out, size, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, size, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, size, "%.1fk", v / 1e3);
    else
        snprintf(out, size, "%.0f", v);
}

static void fmt_us(char *out, size_t size, uint64_t us)
{
    if (us < 1000)
        snprintf(out, size, "%lluus", (unsigned long long)us);
    else if (us < 1000000)
        snprintf(out, size, "%.2fms", (double)us / 1e3);
    else
        snprintf(out, size, "%.2fs", (double)us / 1e6);
}

static void fmt_bytes(char *out, size_t size, double v)
{
    if (v >= 1024.0 * 1024 * 1024)
        snprintf(out, size, "%.2f GiB", v / (1024.0 * 1024 * 1024));
    else if (v >= 1024.0 * 1024)
        snprintf(out, size, "%.2f MiB", v / (1024.0 * 1024));
    else if (v >= 1024.0)
        snprintf(out, size, "%.2f KiB", v / 1024.0);
    else
        snprintf(out, size, "%.0f B", v);
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static double rps(const bench_result *r)
{
    return r->requests ? (double)r->requests / r->duration_s : 0;
}

/* "  latency       p50 1.2ms p90 ... max 9ms (mean 2ms)" */
static void print_latency(const tt_hdr *h)
{
    static const double pcts[] = {50, 90, 99, 99.9};
    static const char *const pnames[] = {"p50", "p90", "p99", "p99.9"};
    char a[32], b[32];
    printf("  latency      ");
    for (int i = 0; i < 4; i++) {
        fmt_us(a, sizeof a, tt_hdr_percentile(h, pcts[i]));
        printf(" %s %s", pnames[i], a);
    }
    fmt_us(a, sizeof a, h->max);
    fmt_us(b, sizeof b, (uint64_t)tt_hdr_mean(h));
    printf(" max %s (mean %s)\n", a, b);
}

void bench_print_text(const bench_cfg *cfg, const bench_result *r)
{
    char a[32];
    printf("tether bench %s\n", cfg->url);
    printf("  %d connection%s, %d thread%s, %s", cfg->conns, cfg->conns == 1 ? "" : "s",
           cfg->threads, cfg->threads == 1 ? "" : "s",
           r->keepalive ? "keep-alive" : "new connection per request");
    if (cfg->pipeline > 1) printf(", pipeline %d", cfg->pipeline);
    if (cfg->rate > 0) printf(", open loop at %.0f req/s", cfg->rate);
    printf("\n");
    fmt_bytes(a, sizeof a, (double)r->bytes);
    printf("  requests      %llu in %.2fs, %s read\n", (unsigned long long)r->requests,
           r->duration_s, a);
    printf("  requests/s    %.1f\n", (double)r->requests / r->duration_s);
    fmt_bytes(a, sizeof a, (double)r->bytes / r->duration_s);
    printf("  transfer/s    %s\n", a);
    print_latency(r->hist);
    printf("  connections   %llu opened; closed first by the server %llu, by the client %llu\n",
           (unsigned long long)r->conns_opened, (unsigned long long)r->closed_server_first,
           (unsigned long long)r->closed_client_first);
    if (r->resent)
        printf("  resent        %llu (unanswered when a response closed the connection; sent "
               "again on a new one)\n",
               (unsigned long long)r->resent);
    printf("  errors        %llu", (unsigned long long)r->errors);
    if (r->errors) {
        printf(" (");
        int first = 1;
        for (int k = 0; k < E_N; k++)
            if (r->err[k]) {
                printf("%s%s %llu", first ? "" : ", ", bench_err_names[k],
                       (unsigned long long)r->err[k]);
                first = 0;
            }
        printf(")");
    }
    printf("\n  non-2xx       %llu\n", (unsigned long long)r->non2xx);
    if (cfg->tls) {
        const bench_tls_result *t = &r->tls;
        fmt_us(a, sizeof a, t->hs_p50_us);
        printf("  tls           %llu handshakes: %llu full, %llu resumed, %llu failed; p50 ~%s%s\n",
               (unsigned long long)(t->full + t->resumed), (unsigned long long)t->full,
               (unsigned long long)t->resumed, (unsigned long long)t->failures_total, a,
               t->sessions == BENCH_TLS_FULL ? " (--full-handshake)" : "");
    }
}

/* "tls": the handshakes of one run by kind (full, resumed, failures by reason). */
static void json_tls(tt_json *j, const bench_tls_result *t)
{
    tt_json_object(j, "tls");
    tt_json_str(j, "sessions", t->sessions == BENCH_TLS_FULL ? "full" : "resume");
    tt_json_uint(j, "handshakes_full", t->full);
    tt_json_uint(j, "handshakes_resumed", t->resumed);
    tt_json_uint(j, "handshakes_failed", t->failures_total);
    tt_json_object(j, "handshake_failures");
    for (int k = 1; k < TT_TLS_FAIL_NREASONS; k++)
        tt_json_uint(j, tt_tls_fail_name(k), t->failures[k]);
    tt_json_end(j);
    tt_json_uint(j, "handshake_us_p50", t->hs_p50_us);
    tt_json_end(j);
}

/* The members of one run's JSON object (inside an open object). */
static void json_run(tt_json *j, const bench_cfg *cfg, const bench_result *r)
{
    const tt_hdr *h = r->hist;
    tt_json_str(j, "url", cfg->url);
    tt_json_bool(j, "keepalive", r->keepalive);
    tt_json_int(j, "connections", cfg->conns);
    tt_json_int(j, "threads", cfg->threads);
    tt_json_int(j, "pipeline", cfg->pipeline);
    tt_json_uint(j, "requests", r->requests);
    tt_json_double(j, "duration_s", r->duration_s, 6);
    tt_json_double(j, "rps", (double)r->requests / r->duration_s, 2);
    tt_json_uint(j, "bytes", r->bytes);
    tt_json_double(j, "transfer_bps", (double)r->bytes / r->duration_s, 1);
    tt_json_object(j, "latency_us");
    tt_json_uint(j, "min", h->total ? h->min : 0);
    tt_json_double(j, "mean", tt_hdr_mean(h), 1);
    tt_json_uint(j, "p50", tt_hdr_percentile(h, 50));
    tt_json_uint(j, "p90", tt_hdr_percentile(h, 90));
    tt_json_uint(j, "p99", tt_hdr_percentile(h, 99));
    tt_json_uint(j, "p999", tt_hdr_percentile(h, 99.9));
    tt_json_uint(j, "max", h->max);
    tt_json_end(j);
    tt_json_uint(j, "connections_opened", r->conns_opened);
    tt_json_object(j, "closed_first");
    tt_json_uint(j, "server", r->closed_server_first);
    tt_json_uint(j, "client", r->closed_client_first);
    tt_json_end(j);
    tt_json_uint(j, "resent", r->resent);
    tt_json_uint(j, "errors", r->errors);
    tt_json_object(j, "errors_by_kind");
    for (int k = 0; k < E_N; k++)
        tt_json_uint(j, bench_err_names[k], r->err[k]);
    tt_json_end(j);
    tt_json_uint(j, "non2xx", r->non2xx);
    if (cfg->tls) json_tls(j, &r->tls);
    tt_json_object(j, "status");
    static const char *const classes[] = {NULL, "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int k = 1; k < 6; k++)
        tt_json_uint(j, classes[k], r->status_class[k]);
    tt_json_end(j);
    if (cfg->compare) {
        tt_json_object(j, "time_wait");
        tt_json_uint(j, "server", r->tw_server);
        tt_json_uint(j, "client", r->tw_client);
        tt_json_str(j, "snapshot", "after_run"); /* not every TIME_WAIT the run made */
        tt_json_end(j);
    }
}

/* Print a finished writer's text as one line (or say it ran out of memory). */
static void json_print(tt_json *j)
{
    if (j->err || !j->buf)
        fprintf(stderr, "tether bench: out of memory writing JSON\n");
    else
        printf("%s\n", j->buf);
    tt_json_free(j);
}

void bench_print_json(const bench_cfg *cfg, const bench_result *r)
{
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    json_run(&j, cfg, r);
    tt_json_end(&j);
    json_print(&j);
}

/* The --compare runs' JSON keys, in run order. */
static const char *const run_keys[3] = {"keepalive", "close", "close_resumed"};

void bench_print_compare_json(const bench_cfg *cfg, const bench_result *const *runs, int n)
{
    tt_json j;
    const bench_result *ka = runs[0], *nc = runs[n > 1 ? 1 : 0];
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    tt_json_bool(&j, "compare", 1);
    for (int i = 0; i < n; i++) {
        tt_json_object(&j, run_keys[i]);
        json_run(&j, cfg, runs[i]);
        tt_json_end(&j);
    }
    tt_json_object(&j, "ratios");
    tt_json_double(&j, "rps", ratio(rps(ka), rps(nc)), 3);
    tt_json_double(
        &j, "p50",
        ratio((double)tt_hdr_percentile(nc->hist, 50), (double)tt_hdr_percentile(ka->hist, 50)), 3);
    tt_json_double(
        &j, "p99",
        ratio((double)tt_hdr_percentile(nc->hist, 99), (double)tt_hdr_percentile(ka->hist, 99)), 3);
    tt_json_double(&j, "connections_opened",
                   ratio((double)nc->conns_opened, (double)ka->conns_opened), 3);
    if (n > 2) tt_json_double(&j, "rps_resumed", ratio(rps(ka), rps(runs[2])), 3);
    tt_json_end(&j);
    tt_json_end(&j);
    json_print(&j);
}

/* Does the kernel recycle TIME_WAIT ports for connections to addr (tcp_tw_reuse 1, or 2 and a
 * loopback address)? */
static int tw_recycled(const tt_addr *addr)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_tw_reuse", "r");
    int v = 0;
    if (!f) return 0;
    if (fscanf(f, "%d", &v) != 1) v = 0;
    fclose(f);
    if (v == 1) return 1;
    if (v != 2) return 0;
    if (addr->ss.ss_family == AF_INET) {
        const unsigned char *a =
            (const unsigned char *)&((const struct sockaddr_in *)&addr->ss)->sin_addr;
        return a[0] == 127;
    }
    if (addr->ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&addr->ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
    return 0;
}

/* One --compare row: the label, one cell per run, and with ratio_of (rps or not) the ratio of
 * each later run against keep-alive (requests/s: keep-alive / run; else run / keep-alive). */
enum { NO_RATIO, RATIO_KA_OVER, RATIO_OVER_KA };

static void compare_row(const char *label, char cells[][32], const double *v, int n, int how)
{
    printf("  %-30s", label);
    for (int i = 0; i < n; i++)
        printf(" %16s", cells[i]);
    for (int i = 1; i < n && how != NO_RATIO; i++)
        printf(" %*.2fx", n > 2 ? 12 : 9,
               how == RATIO_KA_OVER ? ratio(v[0], v[i]) : ratio(v[i], v[0]));
    printf("\n");
}

/* A row of counts (u64 read from each run at offset off). */
static void compare_counts(const char *label, const bench_result *const *runs, int n, size_t off,
                           int how)
{
    char cells[3][32];
    double v[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        uint64_t x = *(const uint64_t *)((const char *)runs[i] + off);
        snprintf(cells[i], sizeof cells[i], "%llu", (unsigned long long)x);
        v[i] = (double)x;
    }
    compare_row(label, cells, v, n, how);
}

/* A latency percentile row. */
static void compare_latency(const char *label, const bench_result *const *runs, int n, double pct)
{
    char cells[3][32];
    double v[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        uint64_t us = tt_hdr_percentile(runs[i]->hist, pct);
        fmt_us(cells[i], sizeof cells[i], us);
        v[i] = (double)us;
    }
    compare_row(label, cells, v, n, RATIO_OVER_KA);
}

/* The TLS rows (https): handshakes by kind per run. */
static void compare_tls(const bench_result *const *runs, int n)
{
    char cells[3][32];
    double v[3] = {0, 0, 0};
    compare_counts("TLS handshakes, full", runs, n, offsetof(bench_result, tls.full), NO_RATIO);
    compare_counts("TLS handshakes, resumed", runs, n, offsetof(bench_result, tls.resumed),
                   NO_RATIO);
    compare_counts("TLS handshakes, failed", runs, n, offsetof(bench_result, tls.failures_total),
                   NO_RATIO);
    for (int i = 0; i < n; i++) {
        fmt_us(cells[i], sizeof cells[i], runs[i]->tls.hs_p50_us);
        v[i] = (double)runs[i]->tls.hs_p50_us;
    }
    compare_row("TLS handshake p50 (~)", cells, v, n, NO_RATIO);
}

void bench_print_compare(const bench_cfg *cfg, const bench_result *const *runs, int n)
{
    static const char *const heads[2][3] = {{"keep-alive", "new connection", ""},
                                            {"keep-alive", "new, full hs", "new, resumed"}};
    char cells[3][32];
    double v[3] = {0, 0, 0};
    printf("tether bench --compare %s\n", cfg->url);
    printf("  %d connection%s, %d thread%s, ", cfg->conns, cfg->conns == 1 ? "" : "s", cfg->threads,
           cfg->threads == 1 ? "" : "s");
    if (cfg->nreq > 0)
        printf("%lld requests per run\n\n", cfg->nreq);
    else
        printf("%.1fs per run\n\n", cfg->duration_s);
    printf("  %-30s", "");
    for (int i = 0; i < n; i++)
        printf(" %16s", heads[cfg->tls != NULL][i]);
    if (n == 2) printf(" %10s", "ratio");
    if (n == 3) printf(" %13s %13s", "ratio full", "ratio resumed");
    printf("\n");
    compare_counts("requests", runs, n, offsetof(bench_result, requests), NO_RATIO);
    for (int i = 0; i < n; i++) {
        v[i] = rps(runs[i]);
        snprintf(cells[i], sizeof cells[i], "%.1f", v[i]);
    }
    compare_row("requests/s", cells, v, n, RATIO_KA_OVER);
    compare_latency("latency p50", runs, n, 50);
    compare_latency("latency p99", runs, n, 99);
    compare_counts("connections opened", runs, n, offsetof(bench_result, conns_opened),
                   RATIO_OVER_KA);
    if (cfg->tls) compare_tls(runs, n);
    compare_counts("requests resent", runs, n, offsetof(bench_result, resent), NO_RATIO);
    compare_counts("closed first by the client", runs, n,
                   offsetof(bench_result, closed_client_first), NO_RATIO);
    compare_counts("closed first by the server", runs, n,
                   offsetof(bench_result, closed_server_first), NO_RATIO);
    for (int i = 0; i < n; i++)
        snprintf(cells[i], sizeof cells[i], "%u", runs[i]->tw_client);
    compare_row("TIME_WAIT after run, client *", cells, v, n, NO_RATIO);
    for (int i = 0; i < n; i++)
        snprintf(cells[i], sizeof cells[i], "%u", runs[i]->tw_server);
    compare_row("TIME_WAIT after run, server *", cells, v, n, NO_RATIO);
    compare_counts("errors", runs, n, offsetof(bench_result, errors), NO_RATIO);
    compare_counts("non-2xx", runs, n, offsetof(bench_result, non2xx), NO_RATIO);
    printf("\n  ratio: requests/s keep-alive / new; latency and connections new / keep-alive.\n"
           "  closed first: per connection, as bench saw it when it closed: by the server when "
           "its\n"
           "  FIN (or a reset) had arrived, else by the client. The side that closes first is "
           "the\n"
           "  side whose socket goes to TIME_WAIT.\n"
           "  * TIME_WAIT after run: a snapshot (sock_diag) 0.2 s after the run, net of the "
           "sockets\n"
           "  in TIME_WAIT before it; server side = local port %d, client side = remote port "
           "%d.\n",
           cfg->port, cfg->port);
    if (tw_recycled(&cfg->addr))
        printf("  It undercounts: on loopback the kernel reuses client ports still in TIME_WAIT "
               "for\n"
               "  new connections (net.ipv4.tcp_tw_reuse), so read the closed-first rows for "
               "who\n"
               "  closed first.\n");
    if (cfg->tls)
        printf("  https: \"new, full hs\" offers no session, so every connection makes a full "
               "handshake;\n"
               "  \"new, resumed\" offers an unused session an earlier connection of the same "
               "thread got\n"
               "  (a TLS 1.3 ticket resumes once). TLS handshake p50: from a log2 histogram, "
               "interpolated.\n");
}
