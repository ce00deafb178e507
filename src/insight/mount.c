/* mount.c — `tether serve --status`: the /_tether/ routes. status (JSON), metrics (Prometheus
 * text), conn (this request's connection) and dashboard (dashboard.c). Reachable only from
 * loopback unless --status-allow names other networks, and only under a Host the server answers
 * to (localhost, a loopback address, the address the request came in on, a --listen name or the
 * machine's name), so that a page in a local browser cannot read them by DNS rebinding.
 * Read-only: the renderers (render.c)
 * look at the server's counters (tt_server_stats_get), the request's connection
 * (tt_req_conn_info) and the kernel's sockets on the listening port (tt_sockdiag_count). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <tether.h>
#include <tether/server.h>

#include "../cli.h"
#include "insight.h"

#define MAX_ALLOW    16
#define MAX_NAMES    (TT_SERVER_MAX_LISTEN + 1) /* the --listen hosts and the machine's name */
#define NAME_MAX_LEN 256

typedef struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} cidr;

static struct {
    struct timespec start;
    cidr allow[MAX_ALLOW];
    int nallow;
    char names[MAX_NAMES][NAME_MAX_LEN]; /* Host names (lower case, no brackets) we answer to */
    int nnames;
} g;

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
        if (!isdigit((unsigned char)slash[1])) return -EINVAL; /* no sign, no space */
        bits = strtol(slash + 1, &end, 10);
        if (*end || bits > 128) return -EINVAL;
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

int tt_insight_parse_allow(const char *list, size_t *bad)
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
        if (g.nallow == MAX_ALLOW || parse_cidr(p, len, &g.allow[g.nallow])) {
            if (bad) *bad = (size_t)(p - list);
            return -EINVAL;
        }
        g.nallow++;
        if (!comma) break;
        p = comma + 1;
    }
    return g.nallow ? 0 : -EINVAL;
}

/* ---- Host check (DNS rebinding) ---- */

/* Remember one name the server answers to: lower case, without brackets or a trailing dot.
 * Wildcards (empty, 0.0.0.0, ::) name no host and are skipped. */
static void add_name(const char *host, size_t len)
{
    if (len && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len && host[len - 1] == '.') len--;
    if (!len || len >= NAME_MAX_LEN || g.nnames == MAX_NAMES) return;
    char *d = g.names[g.nnames];
    for (size_t i = 0; i < len; i++)
        d[i] = (char)tolower((unsigned char)host[i]);
    d[len] = 0;
    if (!strcmp(d, "0.0.0.0") || !strcmp(d, "::") || !strcmp(d, "*")) return;
    g.nnames++;
}

/* The names in the --listen entries ("HOST:PORT", "[V6]:PORT"; "unix:PATH" has none) and the
 * machine's own name. */
static void collect_names(const struct tt_server_config *cfg)
{
    g.nnames = 0;
    for (int i = 0; i < cfg->nlisten && i < TT_SERVER_MAX_LISTEN; i++) {
        const char *l = cfg->listen[i];
        if (!l || !strncmp(l, "unix:", 5)) continue;
        const char *colon = strrchr(l, ':');
        add_name(l, colon ? (size_t)(colon - l) : strlen(l));
    }
    char host[NAME_MAX_LEN];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = 0;
        add_name(host, strlen(host));
    }
}

/* Is the address text (no brackets, NUL-terminated) a loopback address or the local address
 * the request arrived on? */
static int addr_is_ours(const char *text, const tt_addr *local)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, text, a) == 1) {
        if (a[0] == 127) return 1;
        if (local->ss.ss_family == AF_INET)
            return !memcmp(a, &((const struct sockaddr_in *)&local->ss)->sin_addr, 4);
        if (local->ss.ss_family == AF_INET6) {
            const unsigned char *l =
                (const unsigned char *)&((const struct sockaddr_in6 *)&local->ss)->sin6_addr;
            return IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)l) && !memcmp(a, l + 12, 4);
        }
        return 0;
    }
    if (inet_pton(AF_INET6, text, a) == 1) {
        if (IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a)) return 1;
        return local->ss.ss_family == AF_INET6 &&
               !memcmp(a, &((const struct sockaddr_in6 *)&local->ss)->sin6_addr, 16);
    }
    return 0;
}

/* May a request with this Host value (len bytes) see /_tether/? Yes for localhost (and
 * *.localhost, which browsers resolve to loopback themselves), a loopback address, the address
 * the request arrived on, and the names collected at mount; each with or without a port. No
 * Host (HTTP/1.0) is allowed: browsers always send one. */
static int host_allowed(const char *v, size_t len, const tt_addr *local)
{
    if (!v || local->ss.ss_family == AF_UNIX) return 1;
    char host[NAME_MAX_LEN];
    const char *end = v + len, *port;
    size_t hlen;
    if (len && v[0] == '[') {
        const char *rb = memchr(v, ']', len);
        if (!rb) return 0;
        hlen = (size_t)(rb - v - 1);
        v++;
        port = rb + 1;
    } else {
        const char *colon = memchr(v, ':', len);
        port = colon ? colon : end;
        hlen = (size_t)(port - v);
    }
    if (port < end) { /* ":" then digits only */
        if (*port != ':' || port + 1 == end) return 0;
        for (const char *q = port + 1; q < end; q++)
            if (!isdigit((unsigned char)*q)) return 0;
    }
    if (hlen && v[hlen - 1] == '.') hlen--;
    if (!hlen || hlen >= sizeof host) return 0;
    for (size_t i = 0; i < hlen; i++)
        host[i] = (char)tolower((unsigned char)v[i]);
    host[hlen] = 0;
    if (!strcmp(host, "localhost")) return 1;
    if (hlen > 10 && !strcmp(host + hlen - 10, ".localhost")) return 1;
    if (addr_is_ours(host, local)) return 1;
    for (int i = 0; i < g.nnames; i++)
        if (!strcmp(host, g.names[i])) return 1;
    return 0;
}

/* ---- shared helpers ---- */

static double uptime_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - g.start.tv_sec) + (double)(now.tv_nsec - g.start.tv_nsec) / 1e9;
}

/* Send a finished JSON writer's text (with a final newline) or a 500 when it ran out of memory;
 * frees the writer. */
static void send_json(tt_res *res, tt_json *j)
{
    char *body = j->err || !j->buf ? NULL : malloc(j->len + 1);
    tt_res_header(res, "Cache-Control", "no-store");
    if (!body) {
        tt_res_send(res, 500, "text/plain", "out of memory\n", 14);
    } else {
        memcpy(body, j->buf, j->len);
        body[j->len] = '\n';
        tt_res_send(res, 200, "application/json", body, j->len + 1);
    }
    free(body);
    tt_json_free(j);
}

/* JSON indent for the request: 2 with ?pretty (or pretty=1/yes/true) in the query, else 0. */
static int json_indent(const tt_req *req)
{
    size_t qlen = 0;
    const char *q = tt_req_query(req, &qlen);
    if (!q) return 0;
    const char *end = q + qlen;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t n = amp ? (size_t)(amp - q) : (size_t)(end - q);
        if ((n == 6 || (n > 6 && q[6] == '=')) && !memcmp(q, "pretty", 6))
            return n == 6 || n == 7 || !(q[7] == '0' || q[7] == 'n' || q[7] == 'f') ? 2 : 0;
        q = amp ? amp + 1 : end;
    }
    return 0;
}

static void handle_status(tt_req *req, tt_res *res)
{
    tt_json j;
    tt_json_init(&j, json_indent(req));
    tt_insight_status_json(&j, tt_req_server(req), uptime_s());
    send_json(res, &j);
}

static void handle_metrics(tt_req *req, tt_res *res)
{
    size_t len = 0;
    char *text = tt_insight_metrics_text(tt_req_server(req), uptime_s(), &len);
    tt_res_header(res, "Cache-Control", "no-store");
    if (!text)
        tt_res_send(res, 500, "text/plain", "out of memory\n", 14);
    else
        tt_res_send(res, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void handle_conn(tt_req *req, tt_res *res, const tt_conn_info *ci)
{
    tt_json j;
    tt_json_init(&j, json_indent(req));
    tt_tls_info tls;
    tt_insight_conn_json(&j, ci, tt_req_tls_info(req, &tls) == 0 ? &tls : NULL);
    send_json(res, &j);
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
    size_t hlen = 0;
    const char *host = tt_req_header(req, "Host", &hlen);
    if (!host_allowed(host, hlen, &ci.local)) {
        static const char msg[] = "forbidden: /_tether/ answers only to localhost, a loopback "
                                  "address or a name the server listens on (Host header)\n";
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
    size_t bad = 0;
    int rc = tt_insight_parse_allow(allow_cidr, &bad);
    if (rc) {
        const char *b = allow_cidr + bad, *comma = strchr(b, ',');
        int blen = comma ? (int)(comma - b) : (int)strlen(b);
        if (blen == 0)
            fprintf(stderr, "tether serve: --status-allow: an empty element in '%s'\n", allow_cidr);
        else
            fprintf(stderr,
                    "tether serve: --status-allow: '%.*s' is not a CIDR (ADDRESS or ADDRESS/BITS, "
                    "e.g. 10.0.0.0/8 or ::1; at most %d, comma-separated)\n",
                    blen, b, MAX_ALLOW);
        return rc;
    }
    collect_names(cfg);
    clock_gettime(CLOCK_MONOTONIC, &g.start);
    return tt_server_config_route(cfg, "/_tether/", insight_handler, NULL);
}
