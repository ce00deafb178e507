/* report.c — what `tether bench` prints: the text report of one run, the --compare table of
 * two runs side by side, and the JSON of either through the library's writer (tt_json). */
#include <netinet/in.h>
#include <stdio.h>

#include "bench.h"

const char *const bench_err_names[E_N] = {"connect", "read",  "write", "timeout",
                                          "status",  "parse", "verify"};

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

void bench_print_compare_json(const bench_cfg *cfg, const bench_result *ka, const bench_result *nc)
{
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    tt_json_bool(&j, "compare", 1);
    tt_json_object(&j, "keepalive");
    json_run(&j, cfg, ka);
    tt_json_end(&j);
    tt_json_object(&j, "close");
    json_run(&j, cfg, nc);
    tt_json_end(&j);
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

void bench_print_compare(const bench_cfg *cfg, const bench_result *ka, const bench_result *nc)
{
    char a[32], b[32];
    double rps_ka = (double)ka->requests / ka->duration_s;
    double rps_nc = (double)nc->requests / nc->duration_s;
    printf("tether bench --compare %s\n", cfg->url);
    printf("  %d connection%s, %d thread%s, ", cfg->conns, cfg->conns == 1 ? "" : "s", cfg->threads,
           cfg->threads == 1 ? "" : "s");
    if (cfg->nreq > 0)
        printf("%lld requests per run\n\n", cfg->nreq);
    else
        printf("%.1fs per run\n\n", cfg->duration_s);
    printf("  %-30s %16s %16s %10s\n", "", "keep-alive", "new connection", "ratio");
    printf("  %-30s %16llu %16llu\n", "requests", (unsigned long long)ka->requests,
           (unsigned long long)nc->requests);
    printf("  %-30s %16.1f %16.1f %9.2fx\n", "requests/s", rps_ka, rps_nc, ratio(rps_ka, rps_nc));
    uint64_t p50k = tt_hdr_percentile(ka->hist, 50), p50n = tt_hdr_percentile(nc->hist, 50);
    uint64_t p99k = tt_hdr_percentile(ka->hist, 99), p99n = tt_hdr_percentile(nc->hist, 99);
    fmt_us(a, sizeof a, p50k);
    fmt_us(b, sizeof b, p50n);
    printf("  %-30s %16s %16s %9.2fx\n", "latency p50", a, b, ratio((double)p50n, (double)p50k));
    fmt_us(a, sizeof a, p99k);
    fmt_us(b, sizeof b, p99n);
    printf("  %-30s %16s %16s %9.2fx\n", "latency p99", a, b, ratio((double)p99n, (double)p99k));
    printf("  %-30s %16llu %16llu %9.2fx\n", "connections opened",
           (unsigned long long)ka->conns_opened, (unsigned long long)nc->conns_opened,
           ratio((double)nc->conns_opened, (double)ka->conns_opened));
    printf("  %-30s %16llu %16llu\n", "requests resent", (unsigned long long)ka->resent,
           (unsigned long long)nc->resent);
    printf("  %-30s %16llu %16llu\n", "closed first by the client",
           (unsigned long long)ka->closed_client_first,
           (unsigned long long)nc->closed_client_first);
    printf("  %-30s %16llu %16llu\n", "closed first by the server",
           (unsigned long long)ka->closed_server_first,
           (unsigned long long)nc->closed_server_first);
    printf("  %-30s %16u %16u\n", "TIME_WAIT after run, client *", ka->tw_client, nc->tw_client);
    printf("  %-30s %16u %16u\n", "TIME_WAIT after run, server *", ka->tw_server, nc->tw_server);
    printf("  %-30s %16llu %16llu\n", "errors", (unsigned long long)ka->errors,
           (unsigned long long)nc->errors);
    printf("  %-30s %16llu %16llu\n", "non-2xx", (unsigned long long)ka->non2xx,
           (unsigned long long)nc->non2xx);
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
}
