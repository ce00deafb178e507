/* insight.c — `tether serve --status`: the /_tether/ routes. status (JSON),
 * metrics (Prometheus text), conn (this request's connection) and dashboard
 * (one self-contained HTML page that redraws its charts every second from the
 * status JSON). Reachable only from loopback unless
 * --status-allow names other networks. Read-only: it looks at the server's
 * counters (tt_server_stats_get), the request's connection (tt_req_conn_info)
 * and the kernel's sockets on the listening port (tt_sockdiag_count). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether.h>
#include <tether/server.h>

#include "cli.h"
#include "insight.h"

#define MAX_ALLOW 16

typedef struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} cidr;

static struct {
    struct timespec start;
    cidr allow[MAX_ALLOW];
    int nallow;
} g;

/* ---- a small growable text buffer (status pages are not a hot path) ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* ---- CIDR allow list ---- */

static int parse_cidr(const char *text, size_t len, cidr *out)
{
    char buf[80];
    if (len == 0 || len >= sizeof buf) return -EINVAL;
    memcpy(buf, text, len);
    buf[len] = 0;
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        char *end;
        *slash = 0;
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end) return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (bits < 0) bits = 32;
        if (bits > 32) return -EINVAL;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits < 0) bits = 128;
        if (bits > 128) return -EINVAL;
    } else {
        return -EINVAL;
    }
    out->bits = (int)bits;
    return 0;
}

static int prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full)) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* Is the peer address allowed? IPv4-mapped IPv6 peers are matched as IPv4. */
static int peer_allowed(const tt_addr *peer)
{
    unsigned char a4[4], a6[16];
    int fam = peer->ss.ss_family;
    if (fam == AF_INET) {
        memcpy(a4, &((const struct sockaddr_in *)&peer->ss)->sin_addr, 4);
    } else if (fam == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)&peer->ss)->sin6_addr;
        memcpy(a6, in6, 16);
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            memcpy(a4, a6 + 12, 4);
            fam = AF_INET;
        }
    } else {
        return 0;
    }
    for (int i = 0; i < g.nallow; i++) {
        const cidr *c = &g.allow[i];
        if (c->family != fam) continue;
        if (prefix_match(fam == AF_INET ? a4 : a6, c->addr, c->bits)) return 1;
    }
    return 0;
}

int tt_insight_parse_allow(const char *list)
{
    g.nallow = 0;
    if (!list) {
        cidr c;
        parse_cidr("127.0.0.0/8", 11, &c);
        g.allow[g.nallow++] = c;
        parse_cidr("::1/128", 7, &c);
        g.allow[g.nallow++] = c;
        return 0;
    }
    /* Strict: every comma-separated element must be a CIDR (no empty ones). */
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (g.nallow == MAX_ALLOW) return -EINVAL;
        if (parse_cidr(p, len, &g.allow[g.nallow])) return -EINVAL;
        g.nallow++;
        if (!comma) break;
        p = comma + 1;
    }
    return g.nallow ? 0 : -EINVAL;
}

/* ---- shared helpers ---- */

static double uptime_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - g.start.tv_sec) + (double)(now.tv_nsec - g.start.tv_nsec) / 1e9;
}

static void format_addr(const tt_addr *a, char *buf, size_t size)
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

static const int tcp_order[] = {
    TT_TCP_ESTABLISHED, TT_TCP_SYN_SENT,  TT_TCP_SYN_RECV, TT_TCP_FIN_WAIT1,
    TT_TCP_FIN_WAIT2,   TT_TCP_TIME_WAIT, TT_TCP_CLOSE,    TT_TCP_CLOSE_WAIT,
    TT_TCP_LAST_ACK,    TT_TCP_LISTEN,    TT_TCP_CLOSING,
};
#define NTCP ((int)(sizeof tcp_order / sizeof tcp_order[0]))

static void json_tcp_counts(sbuf *b, const tt_tcp_counts *c)
{
    sb_printf(b, "{");
    for (int i = 0; i < NTCP; i++)
        sb_printf(b, "%s\"%s\": %u", i ? ", " : "", tt_tcp_state_name(tcp_order[i]),
                  c->n[tcp_order[i]]);
    sb_printf(b, "}");
}

/* Histogram bucket i covers [2^i, 2^(i+1)) (bucket 0: 0..1); JSON lists the
 * nonempty ones. */
static void json_hist(sbuf *b, const uint64_t *h, const char *unit)
{
    sb_printf(b, "{\"unit\": \"%s\", \"buckets\": [", unit);
    int first = 1;
    for (int i = 0; i < TT_HIST_BUCKETS; i++) {
        if (!h[i]) continue;
        unsigned long long lo = i ? 1ull << i : 0, hi = (1ull << (i + 1)) - 1;
        sb_printf(b, "%s{\"min\": %llu, \"max\": %llu, \"count\": %llu}", first ? "" : ", ", lo, hi,
                  (unsigned long long)h[i]);
        first = 0;
    }
    sb_printf(b, "]}");
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void send_buf(tt_res *res, int status, const char *type, sbuf *b)
{
    tt_res_header(res, "Cache-Control", "no-store");
    if (b->oom)
        tt_res_send(res, 500, "text/plain", "out of memory\n", 14);
    else
        tt_res_send(res, status, type, b->p ? b->p : "", b->len);
    free(b->p);
}

/* ---- /_tether/status ---- */

static void stats_json(sbuf *b, const tt_server_stats *st)
{
    uint64_t idle = st->conns[TT_CONN_IDLE];
    sb_printf(b, "{\"open\": %llu, \"active\": %llu, \"idle\": %llu, \"accepted\": %llu, ",
              (unsigned long long)st->open,
              (unsigned long long)(st->open > idle ? st->open - idle : 0), (unsigned long long)idle,
              (unsigned long long)st->accepted);
    sb_printf(b, "\"by_state\": {");
    for (int s = 0; s < TT_CONN_NSTATES; s++) {
        if (s == TT_CONN_CLOSED) continue;
        sb_printf(b, "%s\"%s\": %llu", s ? ", " : "", tt_conn_state_name(s),
                  (unsigned long long)st->conns[s]);
    }
    sb_printf(b, "}}");
}

static void closes_json(sbuf *b, const tt_server_stats *st)
{
    sb_printf(b, "{");
    for (int r = 0; r < TT_CLOSE_NREASONS; r++)
        sb_printf(b, "%s\"%s\": %llu", r ? ", " : "", tt_close_reason_name(r),
                  (unsigned long long)st->closes[r]);
    sb_printf(b, "}");
}

static void handle_status(tt_req *req, tt_res *res)
{
    tt_server *srv = tt_req_server(req);
    tt_server_stats all;
    tt_server_stats_get(srv, -1, &all);
    int port = tt_server_port(srv);
    sbuf b = {0};
    sb_printf(&b, "{\"uptime_s\": %.3f, \"port\": %d, \"workers\": %d,\n", uptime_s(), port,
              tt_server_workers(srv));
    sb_printf(&b, " \"connections\": ");
    stats_json(&b, &all);
    sb_printf(&b,
              ",\n \"requests\": {\"total\": %llu, \"reused\": %llu, "
              "\"reuse_ratio\": %.4f},\n",
              (unsigned long long)all.requests, (unsigned long long)all.reused_requests,
              ratio(all.reused_requests, all.requests));
    sb_printf(&b, " \"reuse_ratio\": %.4f,\n", ratio(all.reused_requests, all.requests));
    sb_printf(&b, " \"accept_paused\": %llu,\n", (unsigned long long)all.accept_paused);
    sb_printf(&b, " \"histograms\": {\"requests_per_connection\": ");
    json_hist(&b, all.reqs_per_conn, "requests");
    sb_printf(&b, ", \"connection_lifetime_ms\": ");
    json_hist(&b, all.lifetime_ms, "ms");
    sb_printf(&b, "},\n \"closes\": ");
    closes_json(&b, &all);

    tt_tcp_counts sv, cl;
    int rc = tt_sockdiag_count(port, &sv, &cl);
    sb_printf(&b, ",\n \"tcp_states\": {\"port\": %d", port);
    if (rc < 0) {
        sb_printf(&b, ", \"error\": \"%s\"}", strerror(-rc));
    } else {
        sb_printf(&b, ", \"server\": ");
        json_tcp_counts(&b, &sv);
        sb_printf(&b, ", \"client\": ");
        json_tcp_counts(&b, &cl);
        /* Which side closed first, read from the server side's sockets: FIN_WAIT*,
         * CLOSING and TIME_WAIT mean the server sent the first FIN; CLOSE_WAIT and
         * LAST_ACK mean the peer did. */
        unsigned srv_first = sv.n[TT_TCP_FIN_WAIT1] + sv.n[TT_TCP_FIN_WAIT2] +
                             sv.n[TT_TCP_CLOSING] + sv.n[TT_TCP_TIME_WAIT];
        unsigned peer_first = sv.n[TT_TCP_CLOSE_WAIT] + sv.n[TT_TCP_LAST_ACK];
        sb_printf(&b,
                  ", \"server_closed_first\": {\"total\": %u, \"FIN_WAIT1\": %u, "
                  "\"FIN_WAIT2\": %u, "
                  "\"CLOSING\": %u, \"TIME_WAIT\": %u}",
                  srv_first, sv.n[TT_TCP_FIN_WAIT1], sv.n[TT_TCP_FIN_WAIT2], sv.n[TT_TCP_CLOSING],
                  sv.n[TT_TCP_TIME_WAIT]);
        sb_printf(&b,
                  ", \"peer_closed_first\": {\"total\": %u, \"CLOSE_WAIT\": %u, "
                  "\"LAST_ACK\": %u}",
                  peer_first, sv.n[TT_TCP_CLOSE_WAIT], sv.n[TT_TCP_LAST_ACK]);
        sb_printf(&b, ", \"time_wait\": %u, \"close_wait\": %u}",
                  sv.n[TT_TCP_TIME_WAIT] + cl.n[TT_TCP_TIME_WAIT],
                  sv.n[TT_TCP_CLOSE_WAIT] + cl.n[TT_TCP_CLOSE_WAIT]);
    }

    sb_printf(&b, ",\n \"per_worker\": [");
    int nw = tt_server_workers(srv);
    for (int w = 0; w < nw; w++) {
        tt_server_stats st;
        if (tt_server_stats_get(srv, w, &st)) continue;
        sb_printf(&b, "%s\n  {\"worker\": %d, \"requests\": %llu, \"reused\": %llu, ", w ? "," : "",
                  w, (unsigned long long)st.requests, (unsigned long long)st.reused_requests);
        sb_printf(&b, "\"connections\": ");
        stats_json(&b, &st);
        sb_printf(&b, ", \"closes\": ");
        closes_json(&b, &st);
        sb_printf(&b, "}");
    }
    sb_printf(&b, "]}\n");
    send_buf(res, 200, "application/json", &b);
}

/* ---- /_tether/metrics ---- */

static void metric_head(sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_hist(sbuf *b, const char *name, const char *help, const uint64_t *h, double scale)
{
    metric_head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < TT_HIST_BUCKETS; i++) {
        cum += h[i];
        /* Bucket i holds the integers [2^i, 2^(i+1)-1] (bucket 0: 0..1), so its inclusive upper
         * bound is 2^(i+1)-1, in seconds for the millisecond lifetimes. */
        unsigned long long top = 1ull << (i + 1);
        if (scale == 1.0)
            sb_printf(b, "%s_bucket{le=\"%llu\"} %llu\n", name, top - 1, (unsigned long long)cum);
        else
            sb_printf(b, "%s_bucket{le=\"%.3f\"} %llu\n", name, (double)(top - 1) * scale,
                      (unsigned long long)cum);
    }
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_count %llu\n", name, (unsigned long long)cum,
              name, (unsigned long long)cum);
}

static void handle_metrics(tt_req *req, tt_res *res)
{
    tt_server *srv = tt_req_server(req);
    tt_server_stats all;
    tt_server_stats_get(srv, -1, &all);
    sbuf b = {0};
    metric_head(&b, "tether_uptime_seconds", "gauge", "Seconds since the server started.");
    sb_printf(&b, "tether_uptime_seconds %.3f\n", uptime_s());
    metric_head(&b, "tether_requests_total", "counter", "Requests whose handling started.");
    sb_printf(&b, "tether_requests_total %llu\n", (unsigned long long)all.requests);
    metric_head(&b, "tether_requests_reused_total", "counter",
                "Requests that were not the first on their connection "
                "(keep-alive reuse).");
    sb_printf(&b, "tether_requests_reused_total %llu\n", (unsigned long long)all.reused_requests);
    metric_head(&b, "tether_connections_accepted_total", "counter", "Connections accepted.");
    sb_printf(&b, "tether_connections_accepted_total %llu\n", (unsigned long long)all.accepted);
    metric_head(&b, "tether_accept_paused_total", "counter",
                "Times accepting paused (connection limit or out of descriptors).");
    sb_printf(&b, "tether_accept_paused_total %llu\n", (unsigned long long)all.accept_paused);
    metric_head(&b, "tether_connections", "gauge", "Open connections by state.");
    for (int s = 0; s < TT_CONN_NSTATES; s++) {
        if (s == TT_CONN_CLOSED) continue;
        sb_printf(&b, "tether_connections{state=\"%s\"} %llu\n", tt_conn_state_name(s),
                  (unsigned long long)all.conns[s]);
    }
    metric_head(&b, "tether_connections_open", "gauge", "Open connections.");
    sb_printf(&b, "tether_connections_open %llu\n", (unsigned long long)all.open);
    metric_head(&b, "tether_closes_total", "counter", "Connections closed, by reason.");
    for (int r = 0; r < TT_CLOSE_NREASONS; r++)
        sb_printf(&b, "tether_closes_total{reason=\"%s\"} %llu\n", tt_close_reason_name(r),
                  (unsigned long long)all.closes[r]);
    prom_hist(&b, "tether_requests_per_connection", "Requests served per closed connection.",
              all.reqs_per_conn, 1.0);
    prom_hist(&b, "tether_connection_lifetime_seconds", "Lifetime of closed connections.",
              all.lifetime_ms, 0.001);
    tt_tcp_counts sv, cl;
    if (tt_sockdiag_count(tt_server_port(srv), &sv, &cl) == 0) {
        metric_head(&b, "tether_tcp_sockets", "gauge",
                    "Kernel TCP sockets on the listening port (sock_diag), by side "
                    "and state.");
        for (int i = 0; i < NTCP; i++) {
            int st = tcp_order[i];
            sb_printf(&b, "tether_tcp_sockets{side=\"server\",state=\"%s\"} %u\n",
                      tt_tcp_state_name(st), sv.n[st]);
            sb_printf(&b, "tether_tcp_sockets{side=\"client\",state=\"%s\"} %u\n",
                      tt_tcp_state_name(st), cl.n[st]);
        }
    }
    int nw = tt_server_workers(srv);
    metric_head(&b, "tether_worker_requests_total", "counter", "Requests per worker.");
    for (int w = 0; w < nw; w++) {
        tt_server_stats st;
        if (tt_server_stats_get(srv, w, &st) == 0)
            sb_printf(&b, "tether_worker_requests_total{worker=\"%d\"} %llu\n", w,
                      (unsigned long long)st.requests);
    }
    metric_head(&b, "tether_worker_connections_open", "gauge", "Open connections per worker.");
    for (int w = 0; w < nw; w++) {
        tt_server_stats st;
        if (tt_server_stats_get(srv, w, &st) == 0)
            sb_printf(&b, "tether_worker_connections_open{worker=\"%d\"} %llu\n", w,
                      (unsigned long long)st.open);
    }
    send_buf(res, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

/* ---- /_tether/conn ---- */

static void handle_conn(tt_req *req, tt_res *res, const tt_conn_info *ci)
{
    char peer[80], local[80];
    format_addr(&ci->peer, peer, sizeof peer);
    format_addr(&ci->local, local, sizeof local);
    sbuf b = {0};
    sb_printf(&b,
              "{\"id\": %llu, \"worker\": %d, \"peer\": \"%s\", \"local\": \"%s\", "
              "\"requests\": %u, \"requests_left\": %d, \"age_ms\": %llu, "
              "\"idle_timeout_ms\": %lld, \"state\": \"%s\"}\n",
              (unsigned long long)ci->id, ci->worker, peer, local, ci->requests,
              (int)ci->requests_left, (unsigned long long)ci->age_ms,
              (long long)ci->idle_timeout_ms, tt_conn_state_name(ci->state));
    send_buf(res, 200, "application/json", &b);
}

/* ---- dispatch ---- */

static int path_is(const char *p, size_t n, const char *want)
{
    return strlen(want) == n && !memcmp(p, want, n);
}

static void insight_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    tt_conn_info ci;
    memset(&ci, 0, sizeof ci);
    if (tt_req_conn_info(req, &ci) != 0 || !peer_allowed(&ci.peer)) {
        static const char msg[] = "forbidden: /_tether/ is not open to this address "
                                  "(see tether serve --status-allow)\n";
        tt_res_send(res, 403, "text/plain; charset=utf-8", msg, sizeof msg - 1);
        return;
    }
    size_t mlen, plen;
    const char *m = tt_req_method(req, &mlen);
    const char *p = tt_req_path(req, &plen);
    if (!path_is(m, mlen, "GET") && !path_is(m, mlen, "HEAD")) {
        tt_res_header(res, "Allow", "GET, HEAD");
        tt_res_send(res, 405, "text/plain", "method not allowed\n", 19);
        return;
    }
    if (path_is(p, plen, "/_tether/status"))
        handle_status(req, res);
    else if (path_is(p, plen, "/_tether/metrics"))
        handle_metrics(req, res);
    else if (path_is(p, plen, "/_tether/conn"))
        handle_conn(req, res, &ci);
    else if (path_is(p, plen, "/_tether/dashboard") || path_is(p, plen, "/_tether/")) {
        tt_res_header(res, "Cache-Control", "no-store");
        tt_res_send(res, 200, "text/html; charset=utf-8", tt_insight_dashboard_html,
                    strlen(tt_insight_dashboard_html));
    } else {
        static const char msg[] = "not found; try /_tether/status, /_tether/metrics, "
                                  "/_tether/conn or /_tether/dashboard\n";
        tt_res_send(res, 404, "text/plain; charset=utf-8", msg, sizeof msg - 1);
    }
}

int tt_insight_mount(struct tt_server_config *cfg, const char *allow_cidr)
{
    int rc = tt_insight_parse_allow(allow_cidr);
    if (rc) return rc;
    clock_gettime(CLOCK_MONOTONIC, &g.start);
    return tt_server_config_route(cfg, "/_tether/", insight_handler, NULL);
}

/* ---- the dashboard ---- */

/* The dashboard page (one self-contained HTML document: inline CSS and JS, no CDN). */
const char tt_insight_dashboard_html[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tether dashboard</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:16px;background:#f6f7f9;color:#1d2330}\n"
    "h1{font-size:20px;margin:0 0 4px} h2{font-size:14px;margin:0 0 6px;color:#444}\n"
    "#summary{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}\n"
    ".kpi{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:6px "
    "12px;min-width:110px}\n"
    ".kpi b{display:block;font-size:22px} .kpi span{color:#666;font-size:12px}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}\n"
    ".card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:10px}\n"
    "canvas{width:100%;height:200px;display:block}\n"
    ".legend{font-size:12px;color:#555;margin-top:4px} .legend "
    "i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;border-radius:2px}\n"
    "#err{color:#b00020} a{color:#0b5cad}\n"
    "</style></head>\n"
    "<body data-charts=\"pending\">\n"
    "<h1>tether &mdash; live connections</h1>\n"
    "<div>Refreshes every second from <a href=\"/_tether/status\">/_tether/status</a>\n"
    "(also <a href=\"/_tether/metrics\">/_tether/metrics</a>, <a "
    "href=\"/_tether/conn\">/_tether/conn</a>,\n"
    "<a href=\"/keepalive.html\">what keep-alive is</a>). <span id=\"err\"></span></div>\n"
    "<div id=\"summary\"></div>\n"
    "<div class=\"grid\">\n"
    "<div class=\"card\"><h2>Connections by state</h2><canvas id=\"c-states\"></canvas><div "
    "class=\"legend\" id=\"l-states\"></div></div>\n"
    "<div class=\"card\"><h2>Requests per second</h2><canvas id=\"c-rps\"></canvas><div "
    "class=\"legend\" id=\"l-rps\"></div></div>\n"
    "<div class=\"card\"><h2>Reuse ratio (requests that rode an existing connection)</h2><canvas "
    "id=\"c-reuse\"></canvas><div class=\"legend\" id=\"l-reuse\"></div></div>\n"
    "<div class=\"card\"><h2>Closes by reason</h2><canvas id=\"c-closes\"></canvas></div>\n"
    "<div class=\"card\"><h2>TIME_WAIT and CLOSE_WAIT (kernel, listening port)</h2><canvas "
    "id=\"c-waits\"></canvas><div class=\"legend\" id=\"l-waits\"></div></div>\n"
    "<div class=\"card\"><h2>Requests per connection (closed connections)</h2><canvas "
    "id=\"c-hist\"></canvas></div>\n"
    "</div>\n"
    "<script>\n"
    "\"use strict\";\n"
    "var MAXN = 120, samples = [], draws = 0;\n"
    "var COLORS = "
    "[\"#1f77b4\",\"#ff7f0e\",\"#2ca02c\",\"#d62728\",\"#9467bd\",\"#8c564b\",\"#e377c2\",\"#"
    "7f7f7f\",\"#bcbd22\",\"#17becf\",\"#393b79\",\"#637939\"];\n"
    "function setup(id) {\n"
    "  var c = document.getElementById(id), r = window.devicePixelRatio || 1;\n"
    "  var w = c.clientWidth || 360, h = c.clientHeight || 200;\n"
    "  c.width = Math.round(w * r); c.height = Math.round(h * r);\n"
    "  var g = c.getContext(\"2d\"); g.setTransform(r, 0, 0, r, 0, 0);\n"
    "  g.clearRect(0, 0, w, h); g.font = \"11px system-ui,sans-serif\";\n"
    "  return {g: g, w: w, h: h};\n"
    "}\n"
    "function nice(v) { if (v <= 1) return 1; var p = Math.pow(10, Math.floor(Math.log10(v))); var "
    "m = v / p; return (m <= 2 ? 2 : m <= 5 ? 5 : 10) * p; }\n"
    "function fmt(v) { return v >= 1e6 ? (v / 1e6).toFixed(1) + \"M\" : v >= 1e4 ? (v / "
    "1e3).toFixed(0) + \"k\" : v >= 100 ? v.toFixed(0) : (Math.round(v * 100) / 100).toString(); "
    "}\n"
    "function legend(id, series) {\n"
    "  var el = document.getElementById(id); if (!el) return;\n"
    "  el.innerHTML = series.map(function (s) { var last = s.values.length ? "
    "s.values[s.values.length - 1] : 0;\n"
    "    return '<i style=\"background:' + s.color + '\"></i>' + s.name + \" \" + fmt(last); "
    "}).join(\"\");\n"
    "}\n"
    "function lineChart(id, series, maxFixed) {\n"
    "  var c = setup(id), g = c.g, L = 40, R = 8, T = 8, B = 18, W = c.w - L - R, H = c.h - T - "
    "B;\n"
    "  var max = maxFixed || 0;\n"
    "  if (!maxFixed) series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) "
    "max = v; }); });\n"
    "  max = maxFixed || nice(max);\n"
    "  g.strokeStyle = \"#e3e6ea\"; g.fillStyle = \"#666\"; g.lineWidth = 1;\n"
    "  for (var i = 0; i <= 4; i++) { var y = T + H - H * i / 4; g.beginPath(); g.moveTo(L, y); "
    "g.lineTo(L + W, y); g.stroke(); g.fillText(fmt(max * i / 4), 2, y + 4); }\n"
    "  var span = Math.max(30, samples.length);\n"
    "  g.fillText(\"last \" + span + \" s\", L + W - 60, c.h - 4);\n"
    "  series.forEach(function (s) {\n"
    "    var n = s.values.length; if (!n) return;\n"
    "    g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();\n"
    "    s.values.forEach(function (v, k) { var x = L + W * (span - n + k) / (span - 1), y = T + H "
    "- H * Math.min(v, max) / max; k ? g.lineTo(x, y) : g.moveTo(x, y); });\n"
    "    g.stroke();\n"
    "  });\n"
    "}\n"
    "function barChart(id, labels, values) {\n"
    "  var c = setup(id), g = c.g, n = labels.length, L = 110, R = 40, rowH = Math.min(24, "
    "Math.max(10, (c.h - 4) / Math.max(n, 1)));\n"
    "  var max = 1; values.forEach(function (v) { if (v > max) max = v; });\n"
    "  labels.forEach(function (lab, i) {\n"
    "    var y = 2 + i * rowH, w = (c.w - L - R) * values[i] / max;\n"
    "    g.fillStyle = \"#444\"; g.fillText(lab, 2, y + rowH * 0.7);\n"
    "    g.fillStyle = COLORS[i % COLORS.length]; g.fillRect(L, y + 2, Math.max(values[i] ? 2 : 0, "
    "w), rowH - 4);\n"
    "    g.fillStyle = \"#222\"; g.fillText(fmt(values[i]), L + w + 4, y + rowH * 0.7);\n"
    "  });\n"
    "}\n"
    "function col(key) { return samples.map(key); }\n"
    "function draw() {\n"
    "  var s = samples[samples.length - 1];\n"
    "  var byState = s.connections.by_state, names = Object.keys(byState);\n"
    "  var st = names.map(function (n, i) { return {name: n, color: COLORS[i % COLORS.length], "
    "values: col(function (x) { return x.connections.by_state[n] || 0; })}; });\n"
    "  st.unshift({name: \"open\", color: \"#111\", values: col(function (x) { return "
    "x.connections.open; })});\n"
    "  lineChart(\"c-states\", st); legend(\"l-states\", st);\n"
    "  var rps = [], rr = [];\n"
    "  for (var i = 0; i < samples.length; i++) {\n"
    "    if (!i) { rps.push(0); rr.push(samples[0].reuse_ratio); continue; }\n"
    "    var a = samples[i - 1], b = samples[i], dt = Math.max(0.001, b.uptime_s - a.uptime_s);\n"
    "    var dr = b.requests.total - a.requests.total, du = b.requests.reused - "
    "a.requests.reused;\n"
    "    rps.push(Math.max(0, dr / dt)); rr.push(dr > 0 ? du / dr : rr[rr.length - 1]);\n"
    "  }\n"
    "  var rs = [{name: \"requests/s\", color: COLORS[0], values: rps}];\n"
    "  lineChart(\"c-rps\", rs); legend(\"l-rps\", rs);\n"
    "  var ru = [{name: \"overall\", color: COLORS[2], values: col(function (x) { return "
    "x.reuse_ratio; })}, {name: \"this second\", color: COLORS[1], values: rr}];\n"
    "  lineChart(\"c-reuse\", ru, 1); legend(\"l-reuse\", ru);\n"
    "  var reasons = Object.keys(s.closes);\n"
    "  barChart(\"c-closes\", reasons, reasons.map(function (k) { return s.closes[k]; }));\n"
    "  var tw = function (x, side, state) { return x.tcp_states && x.tcp_states[side] ? "
    "x.tcp_states[side][state] : 0; };\n"
    "  var ws = [{name: \"TIME_WAIT server\", color: COLORS[3], values: col(function (x) { return "
    "tw(x, \"server\", \"TIME_WAIT\"); })},\n"
    "            {name: \"TIME_WAIT client\", color: COLORS[1], values: col(function (x) { return "
    "tw(x, \"client\", \"TIME_WAIT\"); })},\n"
    "            {name: \"CLOSE_WAIT\", color: COLORS[4], values: col(function (x) { return tw(x, "
    "\"server\", \"CLOSE_WAIT\") + tw(x, \"client\", \"CLOSE_WAIT\"); })},\n"
    "            {name: \"ESTABLISHED\", color: COLORS[2], values: col(function (x) { return tw(x, "
    "\"server\", \"ESTABLISHED\"); })}];\n"
    "  lineChart(\"c-waits\", ws); legend(\"l-waits\", ws);\n"
    "  var hb = s.histograms.requests_per_connection.buckets;\n"
    "  barChart(\"c-hist\", hb.map(function (b) { return b.min === b.max ? String(b.min) : b.min + "
    "\"\\u2013\" + b.max; }), hb.map(function (b) { return b.count; }));\n"
    "  var k = [[\"uptime\", fmt(s.uptime_s) + \" s\"], [\"open connections\", "
    "s.connections.open], [\"idle (keep-alive)\", s.connections.idle],\n"
    "           [\"accepted\", s.connections.accepted], [\"requests\", s.requests.total], [\"reuse "
    "ratio\", (100 * s.reuse_ratio).toFixed(1) + \"%\"],\n"
    "           [\"TIME_WAIT (server)\", tw(s, \"server\", \"TIME_WAIT\")], [\"CLOSE_WAIT\", tw(s, "
    "\"server\", \"CLOSE_WAIT\")], [\"workers\", s.workers]];\n"
    "  document.getElementById(\"summary\").innerHTML = k.map(function (p) { return '<div "
    "class=\"kpi\"><b>' + p[1] + \"</b><span>\" + p[0] + \"</span></div>\"; }).join(\"\");\n"
    "  draws++;\n"
    "  document.body.setAttribute(\"data-charts\", \"drawn\");\n"
    "  document.body.setAttribute(\"data-draws\", String(draws));\n"
    "}\n"
    "function tick() {\n"
    "  fetch(\"/_tether/status\", {cache: \"no-store\"}).then(function (r) {\n"
    "    if (!r.ok) throw new Error(\"HTTP \" + r.status); return r.json();\n"
    "  }).then(function (s) {\n"
    "    samples.push(s); if (samples.length > MAXN) samples.shift();\n"
    "    document.getElementById(\"err\").textContent = \"\"; draw();\n"
    "  }).catch(function (e) { document.getElementById(\"err\").textContent = \"status "
    "unavailable: \" + e.message; });\n"
    "}\n"
    "tick(); setInterval(tick, 1000);\n"
    "</script>\n"
    "</body></html>\n";
