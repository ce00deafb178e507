/* upstreams.c — the upstreams of `tether proxy --status`: "upstreams" and "upstream_tls" in the
 * status JSON and tether_upstream_* metrics, from the proxy's per-upstream counters
 * (tt_proxy_stats, tt_proxy_get_tls_stats) and the kernel's TIME_WAIT sockets on the upstream leg
 * (sock_diag: sockets whose remote port is the upstream's). Without a proxy (serve) both write
 * nothing. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/proxy.h>

#include "insight.h"

static _Atomic(tt_proxy *) g_proxy;

void tt_insight_set_proxy(tt_proxy *p)
{
    atomic_store(&g_proxy, p);
}

/* The port of "http://HOST[:PORT]" or "https://..." (80 or 443 when it has none); 0 if none
 * can be read. */
static int url_port(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h) return 0;
    int dflt = h - url == 5 && !strncmp(url, "https", 5) ? 443 : 80;
    h += 3;
    if (*h == '[') h = strchr(h, ']');
    if (!h) return 0;
    const char *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (!colon || (slash && colon > slash)) return dflt;
    int port = atoi(colon + 1);
    return port > 0 && port < 65536 ? port : 0;
}

/* TIME_WAIT sockets on the upstream leg: those whose remote port is the upstream's (the
 * proxy closed first) plus, for an upstream on this host, those whose local port is (it closed
 * first); -1 when sock_diag fails or the port is unknown. Like `ss`, this counts every local
 * client of that port, not only the proxy. */
static long upstream_time_wait(const char *url)
{
    int port = url_port(url);
    tt_tcp_counts sv, cl;
    if (!port || tt_sockdiag_count(port, &sv, &cl) < 0) return -1;
    return (long)sv.n[TT_TCP_TIME_WAIT] + cl.n[TT_TCP_TIME_WAIT];
}

void tt_insight_upstreams_json(tt_json *j)
{
    tt_proxy *p = atomic_load(&g_proxy);
    if (!p) return;
    tt_json_array(j, "upstreams");
    for (int i = 0; i < tt_proxy_upstreams(p); i++) {
        tt_proxy_upstream_stats st;
        if (tt_proxy_stats(p, i, &st)) continue;
        tt_json_object(j, NULL);
        tt_proxy_upstream_fields_write(&st, j);
        long tw = upstream_time_wait(st.url);
        if (tw >= 0)
            tt_json_int(j, "time_wait", tw);
        else
            tt_json_null(j, "time_wait");
        tt_json_end(j);
    }
    tt_json_end(j);
    tt_proxy_tls_stats_write(p, j, "upstream_tls"); /* the upstream leg's TLS handshakes */
}

/* The per-upstream metrics with one value each, in the order values() fills them. */
static const struct {
    const char *name, *type, *help;
} METRICS[] = {
    {"tether_upstream_connections_open", "gauge", "Upstream connections open (proxy)."},
    {"tether_upstream_connections_idle", "gauge", "Upstream connections idle in the pools."},
    {"tether_upstream_leased", "gauge", "Exchanges in flight per upstream."},
    {"tether_upstream_requests_total", "counter",
     "Exchanges sent to the upstream (retries included)."},
    {"tether_upstream_reused_total", "counter",
     "Exchanges carried by a reused upstream connection."},
    {"tether_upstream_connections_opened_total", "counter", "Upstream connections opened."},
    {"tether_upstream_healthy", "gauge",
     "1 when the upstream is in use, 0 while it rests (passive health)."},
    {"tether_upstream_retries_total", "counter", "Attempts that retried a failed exchange."},
};
#define NMETRICS (sizeof METRICS / sizeof METRICS[0])

static void values(const tt_proxy_upstream_stats *st, unsigned long long *v)
{
    const unsigned long long all[NMETRICS] = {(unsigned long long)st->open,
                                              (unsigned long long)st->idle,
                                              (unsigned long long)st->leased,
                                              st->requests,
                                              st->reused,
                                              st->opened,
                                              (unsigned long long)st->healthy,
                                              st->retries};
    memcpy(v, all, sizeof all);
}

void tt_insight_upstreams_metrics(FILE *f)
{
    tt_proxy *p = atomic_load(&g_proxy);
    if (!p) return;
    int n = tt_proxy_upstreams(p);
    if (n > TT_PROXY_MAX_UPSTREAMS) n = TT_PROXY_MAX_UPSTREAMS;
    tt_proxy_upstream_stats *st = calloc((size_t)n, sizeof *st);
    if (!st) return;
    for (int i = 0; i < n; i++)
        tt_proxy_stats(p, i, &st[i]);
    for (size_t m = 0; m < NMETRICS; m++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", METRICS[m].name, METRICS[m].help,
                METRICS[m].name, METRICS[m].type);
        for (int i = 0; i < n; i++) {
            unsigned long long v[NMETRICS];
            values(&st[i], v);
            fprintf(f, "%s{upstream=\"%s\"} %llu\n", METRICS[m].name, st[i].url, v[m]);
        }
    }
    fprintf(f, "# HELP tether_upstream_failures_total Failed exchanges by reason.\n"
               "# TYPE tether_upstream_failures_total counter\n");
    for (int i = 0; i < n; i++)
        for (int r = 0; r < TT_PROXY_FAIL_NREASONS; r++)
            fprintf(f, "tether_upstream_failures_total{upstream=\"%s\",reason=\"%s\"} %llu\n",
                    st[i].url, tt_proxy_fail_name(r), (unsigned long long)st[i].failures[r]);
    tt_proxy_tls_stats ts;
    tt_proxy_get_tls_stats(p, &ts);
    fprintf(f,
            "# HELP tether_upstream_tls_handshakes_total Upstream TLS handshakes by kind.\n"
            "# TYPE tether_upstream_tls_handshakes_total counter\n"
            "tether_upstream_tls_handshakes_total{kind=\"full\"} %llu\n"
            "tether_upstream_tls_handshakes_total{kind=\"resumed\"} %llu\n"
            "tether_upstream_tls_handshakes_total{kind=\"failed\"} %llu\n",
            (unsigned long long)ts.handshakes_full, (unsigned long long)ts.handshakes_resumed,
            (unsigned long long)ts.failures);
    fprintf(f, "# HELP tether_upstream_time_wait TIME_WAIT sockets on the upstream leg "
               "(sock_diag, remote port).\n# TYPE tether_upstream_time_wait gauge\n");
    for (int i = 0; i < n; i++) {
        long tw = upstream_time_wait(st[i].url);
        if (tw >= 0) fprintf(f, "tether_upstream_time_wait{upstream=\"%s\"} %ld\n", st[i].url, tw);
    }
    free(st);
}
