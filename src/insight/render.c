/* render.c — the renderers of insight (see insight.h): the status JSON and one connection's
 * JSON through the library's writer (tt_json), the Prometheus text through a memory stream,
 * and the helpers `tether conns` shares (TCP-state order, addresses, per-state counts). Status
 * pages are not a hot path: everything here may allocate. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insight.h"

const int tt_insight_tcp_order[TT_INSIGHT_NTCP] = {
    TT_TCP_ESTABLISHED, TT_TCP_SYN_SENT,  TT_TCP_SYN_RECV, TT_TCP_FIN_WAIT1,
    TT_TCP_FIN_WAIT2,   TT_TCP_TIME_WAIT, TT_TCP_CLOSE,    TT_TCP_CLOSE_WAIT,
    TT_TCP_LAST_ACK,    TT_TCP_LISTEN,    TT_TCP_CLOSING,
};

void tt_insight_format_addr(const tt_addr *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%d", host, ntohs(sin->sin_port));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%d", host, ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
}

void tt_insight_json_tcp_counts(tt_json *j, const char *key, const tt_tcp_counts *c)
{
    tt_json_object(j, key);
    for (int i = 0; i < TT_INSIGHT_NTCP; i++)
        tt_json_uint(j, tt_tcp_state_name(tt_insight_tcp_order[i]), c->n[tt_insight_tcp_order[i]]);
    tt_json_end(j);
}

/* Histogram bucket i covers [2^i, 2^(i+1)) (bucket 0: 0..1); the JSON lists the nonempty ones. */
static void json_hist(tt_json *j, const char *key, const uint64_t *h, const char *unit)
{
    tt_json_object(j, key);
    tt_json_str(j, "unit", unit);
    tt_json_array(j, "buckets");
    for (int i = 0; i < TT_HIST_BUCKETS; i++) {
        if (!h[i]) continue;
        tt_json_object(j, NULL);
        tt_json_uint(j, "min", i ? 1ull << i : 0);
        tt_json_uint(j, "max", (1ull << (i + 1)) - 1);
        tt_json_uint(j, "count", h[i]);
        tt_json_end(j);
    }
    tt_json_end(j);
    tt_insight_upstreams_json(j); /* tether proxy only */
    tt_json_end(j);
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

/* {"open", "active", "idle", "accepted", "by_state": {...}} of one stats block. */
static void json_conns(tt_json *j, const char *key, const tt_server_stats *st)
{
    uint64_t idle = st->conns[TT_CONN_IDLE];
    tt_json_object(j, key);
    tt_json_uint(j, "open", st->open);
    tt_json_uint(j, "active", st->open > idle ? st->open - idle : 0);
    tt_json_uint(j, "idle", idle);
    tt_json_uint(j, "accepted", st->accepted);
    tt_json_object(j, "by_state");
    for (int s = 0; s < TT_CONN_NSTATES; s++)
        if (s != TT_CONN_CLOSED) tt_json_uint(j, tt_conn_state_name(s), st->conns[s]);
    tt_json_end(j);
    tt_json_end(j);
}

static void json_closes(tt_json *j, const tt_server_stats *st)
{
    tt_json_object(j, "closes");
    for (int r = 0; r < TT_CLOSE_NREASONS; r++)
        tt_json_uint(j, tt_close_reason_name(r), st->closes[r]);
    tt_json_end(j);
}

/* "tcp_states": the kernel's sockets on the port, and which side closed first. */
static void json_tcp_states(tt_json *j, int port)
{
    tt_tcp_counts sv, cl;
    int rc = tt_sockdiag_count(port, &sv, &cl);
    tt_json_object(j, "tcp_states");
    tt_json_int(j, "port", port);
    if (rc < 0) {
        tt_json_str(j, "error", strerror(-rc));
        tt_json_end(j);
        return;
    }
    tt_insight_json_tcp_counts(j, "server", &sv);
    tt_insight_json_tcp_counts(j, "client", &cl);
    /* Which side closed first, read from the server side's sockets: FIN_WAIT*, CLOSING and
     * TIME_WAIT mean the server sent the first FIN; CLOSE_WAIT and LAST_ACK mean the peer did. */
    const unsigned *n = sv.n;
    tt_json_object(j, "server_closed_first");
    tt_json_uint(j, "total",
                 n[TT_TCP_FIN_WAIT1] + n[TT_TCP_FIN_WAIT2] + n[TT_TCP_CLOSING] +
                     n[TT_TCP_TIME_WAIT]);
    tt_json_uint(j, "FIN_WAIT1", n[TT_TCP_FIN_WAIT1]);
    tt_json_uint(j, "FIN_WAIT2", n[TT_TCP_FIN_WAIT2]);
    tt_json_uint(j, "CLOSING", n[TT_TCP_CLOSING]);
    tt_json_uint(j, "TIME_WAIT", n[TT_TCP_TIME_WAIT]);
    tt_json_end(j);
    tt_json_object(j, "peer_closed_first");
    tt_json_uint(j, "total", n[TT_TCP_CLOSE_WAIT] + n[TT_TCP_LAST_ACK]);
    tt_json_uint(j, "CLOSE_WAIT", n[TT_TCP_CLOSE_WAIT]);
    tt_json_uint(j, "LAST_ACK", n[TT_TCP_LAST_ACK]);
    tt_json_end(j);
    tt_json_uint(j, "time_wait", n[TT_TCP_TIME_WAIT] + cl.n[TT_TCP_TIME_WAIT]);
    tt_json_uint(j, "close_wait", n[TT_TCP_CLOSE_WAIT] + cl.n[TT_TCP_CLOSE_WAIT]);
    tt_json_end(j);
}

/* "tls": handshakes by kind, failures by reason, handshake times ("enabled": false without an
 * https:// listener, the counters then zero). */
static void json_tls(tt_json *j, tt_server *srv)
{
    tt_tls_stats ts;
    int on = tt_server_tls_stats(srv, &ts) == 0;
    tt_json_object(j, "tls");
    tt_json_bool(j, "enabled", on);
    tt_json_uint(j, "handshakes_full", ts.handshakes_full);
    tt_json_uint(j, "handshakes_resumed", ts.handshakes_resumed);
    tt_json_object(j, "handshake_failures");
    for (int r = 1; r < TT_TLS_FAIL_NREASONS; r++)
        tt_json_uint(j, tt_tls_fail_name(r), ts.failures[r]);
    tt_json_end(j);
    json_hist(j, "handshake_us", ts.handshake_us_hist, "us");
    tt_json_end(j);
}

void tt_insight_status_json(tt_json *j, tt_server *srv, double uptime_s)
{
    tt_server_stats all;
    tt_server_stats_get(srv, -1, &all);
    int port = tt_server_port(srv), nw = tt_server_workers(srv);
    double reuse = ratio(all.reused_requests, all.requests);
    tt_json_object(j, NULL);
    tt_json_double(j, "uptime_s", uptime_s, 3);
    tt_json_int(j, "port", port);
    tt_json_int(j, "workers", nw);
    json_conns(j, "connections", &all);
    tt_json_object(j, "requests");
    tt_json_uint(j, "total", all.requests);
    tt_json_uint(j, "reused", all.reused_requests);
    tt_json_double(j, "reuse_ratio", reuse, 4);
    tt_json_end(j);
    tt_json_double(j, "reuse_ratio", reuse, 4);
    tt_json_uint(j, "accept_paused", all.accept_paused);
    tt_json_object(j, "limits");
    tt_json_uint(j, "evicted", all.evicted);
    tt_json_uint(j, "handed_in", all.handed_in);
    tt_json_uint(j, "body_mem_refused", all.body_mem_refused);
    tt_json_uint(j, "log_waits", all.log_waits);
    tt_json_end(j);
    tt_json_object(j, "histograms");
    json_hist(j, "requests_per_connection", all.reqs_per_conn, "requests");
    json_hist(j, "connection_lifetime_ms", all.lifetime_ms, "ms");
    tt_json_end(j);
    json_closes(j, &all);
    json_tls(j, srv);
    json_tcp_states(j, port);
    tt_json_array(j, "per_worker");
    for (int w = 0; w < nw; w++) {
        tt_server_stats st;
        if (tt_server_stats_get(srv, w, &st)) continue;
        tt_json_object(j, NULL);
        tt_json_int(j, "worker", w);
        tt_json_uint(j, "requests", st.requests);
        tt_json_uint(j, "reused", st.reused_requests);
        json_conns(j, "connections", &st);
        json_closes(j, &st);
        tt_json_end(j);
    }
    tt_json_end(j);
    tt_insight_upstreams_json(j); /* tether proxy only */
    tt_json_end(j);
}

void tt_insight_conn_json(tt_json *j, const tt_conn_info *ci, const tt_tls_info *tls)
{
    char peer[80], local[80];
    tt_insight_format_addr(&ci->peer, peer, sizeof peer);
    tt_insight_format_addr(&ci->local, local, sizeof local);
    tt_json_object(j, NULL);
    tt_json_uint(j, "id", ci->id);
    tt_json_int(j, "worker", ci->worker);
    tt_json_str(j, "peer", peer);
    tt_json_str(j, "local", local);
    tt_json_uint(j, "requests", ci->requests);
    tt_json_int(j, "requests_left", ci->requests_left);
    tt_json_uint(j, "age_ms", ci->age_ms);
    tt_json_int(j, "idle_timeout_ms", ci->idle_timeout_ms);
    tt_json_str(j, "state", tt_conn_state_name(ci->state));
    tt_json_str(j, "scheme", tls ? "https" : "http");
    if (tls) {
        tt_json_object(j, "tls");
        tt_json_str(j, "version", tls->version);
        tt_json_str(j, "cipher", tls->cipher);
        tt_json_str(j, "alpn", tls->alpn);
        tt_json_bool(j, "resumed", tls->resumed);
        tt_json_end(j);
    } else {
        tt_json_null(j, "tls");
    }
    tt_json_end(j);
}

/* ---- /_tether/metrics: Prometheus text ---- */

static void metric_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_hist(FILE *f, const char *name, const char *help, const uint64_t *h, double scale)
{
    metric_head(f, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < TT_HIST_BUCKETS; i++) {
        cum += h[i];
        /* Bucket i holds the integers [2^i, 2^(i+1)-1] (bucket 0: 0..1), so its inclusive upper
         * bound is 2^(i+1)-1, in seconds for the millisecond lifetimes. */
        unsigned long long top = 1ull << (i + 1);
        if (scale == 1.0)
            fprintf(f, "%s_bucket{le=\"%llu\"} %llu\n", name, top - 1, (unsigned long long)cum);
        else
            fprintf(f, "%s_bucket{le=\"%.*f\"} %llu\n", name, scale < 0.001 ? 6 : 3,
                    (double)(top - 1) * scale, (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_count %llu\n", name, (unsigned long long)cum, name,
            (unsigned long long)cum);
}

/* One counter or gauge without labels. */
static void metric(FILE *f, const char *name, const char *type, const char *help,
                   unsigned long long v)
{
    metric_head(f, name, type, help);
    fprintf(f, "%s %llu\n", name, v);
}

static void prom_tcp(FILE *f, int port)
{
    tt_tcp_counts sv, cl;
    if (tt_sockdiag_count(port, &sv, &cl) != 0) return;
    metric_head(f, "tether_tcp_sockets", "gauge",
                "Kernel TCP sockets on the listening port (sock_diag), by side and state.");
    for (int i = 0; i < TT_INSIGHT_NTCP; i++) {
        int st = tt_insight_tcp_order[i];
        fprintf(f, "tether_tcp_sockets{side=\"server\",state=\"%s\"} %u\n", tt_tcp_state_name(st),
                sv.n[st]);
        fprintf(f, "tether_tcp_sockets{side=\"client\",state=\"%s\"} %u\n", tt_tcp_state_name(st),
                cl.n[st]);
    }
}

/* The TLS counters (nothing without an https:// listener). */
static void prom_tls(FILE *f, tt_server *srv)
{
    tt_tls_stats ts;
    if (tt_server_tls_stats(srv, &ts) != 0) return;
    metric_head(f, "tether_tls_handshakes_total", "counter",
                "Completed TLS handshakes, full or resumed.");
    fprintf(f, "tether_tls_handshakes_total{kind=\"full\"} %llu\n",
            (unsigned long long)ts.handshakes_full);
    fprintf(f, "tether_tls_handshakes_total{kind=\"resumed\"} %llu\n",
            (unsigned long long)ts.handshakes_resumed);
    metric_head(f, "tether_tls_handshake_failures_total", "counter",
                "TLS handshakes that failed, by reason.");
    for (int r = 1; r < TT_TLS_FAIL_NREASONS; r++)
        fprintf(f, "tether_tls_handshake_failures_total{reason=\"%s\"} %llu\n", tt_tls_fail_name(r),
                (unsigned long long)ts.failures[r]);
    prom_hist(f, "tether_tls_handshake_seconds", "Time of completed TLS handshakes.",
              ts.handshake_us_hist, 0.000001);
}

static void prom_workers(FILE *f, tt_server *srv)
{
    int nw = tt_server_workers(srv);
    tt_server_stats st;
    metric_head(f, "tether_worker_requests_total", "counter", "Requests per worker.");
    for (int w = 0; w < nw; w++)
        if (tt_server_stats_get(srv, w, &st) == 0)
            fprintf(f, "tether_worker_requests_total{worker=\"%d\"} %llu\n", w,
                    (unsigned long long)st.requests);
    metric_head(f, "tether_worker_connections_open", "gauge", "Open connections per worker.");
    for (int w = 0; w < nw; w++)
        if (tt_server_stats_get(srv, w, &st) == 0)
            fprintf(f, "tether_worker_connections_open{worker=\"%d\"} %llu\n", w,
                    (unsigned long long)st.open);
}

char *tt_insight_metrics_text(tt_server *srv, double uptime_s, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f) return NULL;
    tt_server_stats all;
    tt_server_stats_get(srv, -1, &all);
    metric_head(f, "tether_uptime_seconds", "gauge", "Seconds since the server started.");
    fprintf(f, "tether_uptime_seconds %.3f\n", uptime_s);
    metric(f, "tether_requests_total", "counter", "Requests whose handling started.", all.requests);
    metric(f, "tether_requests_reused_total", "counter",
           "Requests that were not the first on their connection (keep-alive reuse).",
           all.reused_requests);
    metric(f, "tether_connections_accepted_total", "counter", "Connections accepted.",
           all.accepted);
    metric(f, "tether_accept_paused_total", "counter",
           "Times accepting paused (connection limit or out of descriptors).", all.accept_paused);
    metric(f, "tether_connections_evicted_total", "counter",
           "Slow reading connections closed to make room at the connection limit.", all.evicted);
    metric(f, "tether_connections_handed_in_total", "counter",
           "Connections a full worker accepted and handed to this server's other workers.",
           all.handed_in);
    metric(f, "tether_bodies_refused_memory_total", "counter",
           "Request bodies answered 503 because max_body_memory was reached.",
           all.body_mem_refused);
    metric(f, "tether_access_log_waits_total", "counter",
           "Times a worker waited for the access log writer (lossless log, full buffer).",
           all.log_waits);
    metric_head(f, "tether_connections", "gauge", "Open connections by state.");
    for (int s = 0; s < TT_CONN_NSTATES; s++)
        if (s != TT_CONN_CLOSED)
            fprintf(f, "tether_connections{state=\"%s\"} %llu\n", tt_conn_state_name(s),
                    (unsigned long long)all.conns[s]);
    metric(f, "tether_connections_open", "gauge", "Open connections.", all.open);
    metric_head(f, "tether_closes_total", "counter", "Connections closed, by reason.");
    for (int r = 0; r < TT_CLOSE_NREASONS; r++)
        fprintf(f, "tether_closes_total{reason=\"%s\"} %llu\n", tt_close_reason_name(r),
                (unsigned long long)all.closes[r]);
    prom_hist(f, "tether_requests_per_connection", "Requests served per closed connection.",
              all.reqs_per_conn, 1.0);
    prom_hist(f, "tether_connection_lifetime_seconds", "Lifetime of closed connections.",
              all.lifetime_ms, 0.001);
    prom_tls(f, srv);
    prom_tcp(f, tt_server_port(srv));
    prom_workers(f, srv);
    tt_insight_upstreams_metrics(f); /* tether proxy only */
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
