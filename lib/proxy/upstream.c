/* upstream.c — the proxy's upstreams: URL parsing (http://, https://), the TLS settings of the
 * workers' clients and the TLS failure reasons, balancing (least-conn, round-robin), passive
 * health (consecutive connect failures or resets put an upstream to rest, then one request
 * tries it again) and the statistics (atomics, summed over workers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/api.h"
#include "proxy/proxy_int.h"
#include "tether/json.h"

int tt__upstream_parse(tt__upstream *u, const char *url)
{
    int tls;
    if (url && !strncasecmp(url, "http://", 7))
        tls = 0;
    else if (url && !strncasecmp(url, "https://", 8))
        tls = 1;
    else
        return -EINVAL;
    const char *h = url + (tls ? 8 : 7), *end = h + strcspn(h, "/?#");
    if (*end && strcmp(end, "/")) return -EINVAL; /* a path is not supported */
    const char *colon = NULL, *hend = end;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) return -EINVAL;
        if (rb + 1 < end) {
            if (rb[1] != ':') return -EINVAL;
            colon = rb + 1;
        }
        hend = rb;
        h++;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        if (colon) hend = colon;
    }
    size_t hl = (size_t)(hend - h);
    if (!hl || hl >= sizeof u->host) return -EINVAL;
    int port = tls ? 443 : 80;
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || colon + 1 == end || v < 1 || v > 65535) return -EINVAL;
        port = (int)v;
    }
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)h[i] <= 0x20 || h[i] == 0x7f || h[i] == '@') return -EINVAL;
    memcpy(u->host, h, hl);
    u->host[hl] = 0;
    u->port = port;
    u->tls = tls;
    int ul = snprintf(u->url, sizeof u->url, "%s://%s%.*s%s:%d", tls ? "https" : "http",
                      h[-1] == '[' ? "[" : "", (int)hl, h, h[-1] == '[' ? "]" : "", port);
    return ul > 0 && (size_t)ul < sizeof u->url ? 0 : -EINVAL;
}

int tt__proxy_tls_config(tt_proxy *p, const tt_proxy_config *cfg)
{
    const char *ca = cfg->upstream_ca_file, *sni = cfg->upstream_sni;
    p->ca_file = ca && *ca ? strdup(ca) : NULL;
    p->sni = sni && *sni ? strdup(sni) : NULL;
    if ((ca && *ca && !p->ca_file) || (sni && *sni && !p->sni)) return -ENOMEM;
    /* a host name: no controls, spaces, '/' or '@' (it goes into the ClientHello) */
    if (p->sni && strlen(p->sni) >= 256) return -EINVAL;
    for (const char *c = p->sni ? p->sni : ""; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '/' || *c == '@') return -EINVAL;
    p->cfg.upstream_ca_file = p->ca_file;
    p->cfg.upstream_sni = p->sni;
    p->cfg.upstream_insecure = cfg->upstream_insecure > 0;
    return 0;
}

void tt__proxy_client_tls(const tt_proxy *p, tt_client_opts *o)
{
    o->ca_file = p->ca_file;
    o->insecure = p->cfg.upstream_insecure;
    o->tls_server_name = p->sni;
    /* the handshake belongs to connecting (nginx's proxy_connect_timeout covers it too) */
    o->tls_handshake_timeout_ms = p->cfg.connect_timeout_ms;
}

void tt__proxy_publish_tls(tt__pworker *w)
{
    tt_client_stats cs;
    tt_client_get_stats(w->client, &cs);
    const uint64_t now[3] = {cs.tls_handshakes_full, cs.tls_handshakes_resumed, cs.tls_failures};
    uint64_t *to[3] = {&w->p->tls_full, &w->p->tls_resumed, &w->p->tls_failures};
    for (int i = 0; i < 3; i++) {
        if (now[i] > w->tls_seen[i]) TT__PADD(*to[i], now[i] - w->tls_seen[i]);
        w->tls_seen[i] = now[i];
    }
}

TT_API void tt_proxy_get_tls_stats(const tt_proxy *p, tt_proxy_tls_stats *out)
{
    tt_proxy *mp = (tt_proxy *)p;
    out->handshakes_full = TT__PGET(mp->tls_full);
    out->handshakes_resumed = TT__PGET(mp->tls_resumed);
    out->failures = TT__PGET(mp->tls_failures);
}

TT_API void tt_proxy_tls_stats_write(const tt_proxy *p, tt_json *j, const char *key)
{
    tt_proxy_tls_stats ts;
    tt_proxy_get_tls_stats(p, &ts);
    tt_json_object(j, key);
    tt_json_uint(j, "handshakes_full", ts.handshakes_full);
    tt_json_uint(j, "handshakes_resumed", ts.handshakes_resumed);
    tt_json_uint(j, "failures", ts.failures);
    tt_json_end(j);
}

int tt__proxy_tls_reason(const tt_exchange *e)
{
    const char *what = e->error_what ? e->error_what : "";
    if (e->error == -EKEYREJECTED || !strncmp(what, "certificate:", 12))
        return TT_PROXY_FAIL_TLS_CERT;
    if (!strncmp(what, "tls handshake", 13)) return TT_PROXY_FAIL_TLS_HANDSHAKE;
    return -1;
}

int tt__balance(int policy, const int *inflight, const int *ok, int n, unsigned *rr)
{
    int best = -1;
    unsigned start = *rr;
    for (int k = 0; k < n; k++) {
        int i = (int)((start + (unsigned)k) % (unsigned)n);
        if (!ok[i]) continue;
        if (policy == TT_PROXY_ROUND_ROBIN) {
            best = i;
            break;
        }
        if (best < 0 || inflight[i] < inflight[best]) best = i;
    }
    if (best >= 0) *rr = (unsigned)best + 1;
    return best;
}

int tt__upstream_usable(const tt_proxy *p, tt__upstream *u, uint64_t now, int claim)
{
    if (p->cfg.fail_threshold == TT_OFF) return 1;
    uint64_t until = TT__PGET(u->rest_until);
    if (!until) return 1;
    if (now < until) return 0;
    /* rest over: one probe at a time until it answers */
    if (!claim) return !TT__PGET(u->probing);
    int zero = 0;
    return __atomic_compare_exchange_n(&u->probing, &zero, 1, 0, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED);
}

int tt__upstream_pick(tt_proxy *p, uint64_t now, uint32_t exclude)
{
    int n = p->nups, ok[TT_PROXY_MAX_UPSTREAMS], inflight[TT_PROXY_MAX_UPSTREAMS], any = 0;
    for (int pass = 0; pass < 2 && !any; pass++)
        for (int i = 0; i < n; i++) {
            ok[i] = (pass || !(exclude & (1u << i))) && tt__upstream_usable(p, &p->ups[i], now, 0);
            inflight[i] = TT__PGET(p->ups[i].inflight);
            any |= ok[i];
        }
    if (!any) return -1;
    for (;;) {
        unsigned rr = TT__PGET(p->rr);
        int i = tt__balance(p->cfg.balance, inflight, ok, n, &rr);
        if (i < 0) return -1;
        TT__PSET(p->rr, rr);
        if (tt__upstream_usable(p, &p->ups[i], now, 1)) return i;
        ok[i] = 0; /* another thread took the probe */
    }
}

void tt__upstream_unprobe(tt__upstream *u)
{
    TT__PSET(u->probing, 0);
}

int tt__upstream_result(tt_proxy *p, tt__upstream *u, int failed, uint64_t now)
{
    int th = p->cfg.fail_threshold;
    if (!failed) {
        TT__PSET(u->fails, 0);
        TT__PSET(u->rest_until, 0);
        TT__PSET(u->probing, 0);
        return 0;
    }
    int f = TT__PADD(u->fails, 1);
    int probe = TT__PGET(u->probing);
    TT__PSET(u->probing, 0);
    if (th == TT_OFF || (f < th && !probe)) return 0;
    TT__PSET(u->rest_until, now + (uint64_t)p->cfg.fail_rest_ms);
    TT__PADD(u->rests, 1);
    return 1;
}

/* ---- statistics ---- */

TT_API const char *tt_proxy_fail_name(int reason)
{
    static const char *const names[TT_PROXY_FAIL_NREASONS] = {
        "connect", "reset",        "malformed", "timeout",  "down",
        "body",    "request_body", "other",     "tls_cert", "tls_handshake"};
    return reason >= 0 && reason < TT_PROXY_FAIL_NREASONS ? names[reason] : "?";
}

TT_API int tt_proxy_upstreams(const tt_proxy *p)
{
    return p->nups;
}

TT_API int tt_proxy_stats(const tt_proxy *p, int i, tt_proxy_upstream_stats *out)
{
    if (i < 0 || i >= p->nups) return -ERANGE;
    tt_proxy *mp = (tt_proxy *)p;
    tt__upstream *u = &mp->ups[i];
    memset(out, 0, sizeof *out);
    snprintf(out->url, sizeof out->url, "%s", u->url);
    out->tls = u->tls;
    /* a rest that ended counts as healthy: the next request tries it */
    uint64_t until = TT__PGET(u->rest_until);
    out->healthy = !until || TT__PGET(u->fails) == 0;
    if (until) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        out->healthy = now >= until;
    }
    out->leased = TT__PGET(u->inflight);
    out->requests = TT__PGET(u->requests);
    out->responses = TT__PGET(u->responses);
    out->opened = TT__PGET(u->opened);
    out->reused = TT__PGET(u->reused);
    out->retries = TT__PGET(u->retries);
    out->rests = TT__PGET(u->rests);
    for (int k = 0; k < TT_PROXY_FAIL_NREASONS; k++)
        out->failures[k] = TT__PGET(u->failures[k]);
    pthread_mutex_lock(&mp->mu);
    for (tt__list *n = mp->workers.next; n != &mp->workers; n = n->next) {
        tt__pworker *w = tt__list_entry(n, tt__pworker, link);
        out->open += TT__PGET(w->open[i]);
        out->idle += TT__PGET(w->idle[i]);
    }
    pthread_mutex_unlock(&mp->mu);
    return 0;
}

TT_API void tt_proxy_upstream_fields_write(const tt_proxy_upstream_stats *s, tt_json *j)
{
    tt_json_str(j, "url", s->url);
    tt_json_str(j, "scheme", s->tls ? "https" : "http");
    tt_json_bool(j, "healthy", s->healthy);
    tt_json_int(j, "open", s->open);
    tt_json_int(j, "idle", s->idle);
    tt_json_int(j, "leased", s->leased);
    tt_json_uint(j, "requests", s->requests);
    tt_json_uint(j, "responses", s->responses);
    tt_json_uint(j, "opened", s->opened);
    tt_json_uint(j, "reused", s->reused);
    tt_json_double(j, "reuse_ratio", s->requests ? (double)s->reused / (double)s->requests : 0, 4);
    tt_json_uint(j, "retries", s->retries);
    tt_json_uint(j, "rests", s->rests);
    tt_json_object(j, "failures");
    for (int k = 0; k < TT_PROXY_FAIL_NREASONS; k++)
        tt_json_uint(j, tt_proxy_fail_name(k), s->failures[k]);
    tt_json_end(j);
}

TT_API void tt_proxy_stats_write(const tt_proxy *p, tt_json *j, const char *key)
{
    tt_json_object(j, key);
    tt_json_array(j, "upstreams");
    for (int i = 0; i < p->nups; i++) {
        tt_proxy_upstream_stats s;
        tt_proxy_stats(p, i, &s);
        tt_json_object(j, NULL);
        tt_proxy_upstream_fields_write(&s, j);
        tt_json_end(j);
    }
    tt_json_end(j);
    tt_proxy_tls_stats_write(p, j, "tls");
    tt_json_end(j);
}

TT_API size_t tt_proxy_stats_json(const tt_proxy *p, char *buf, size_t size)
{
    tt_json j;
    char dummy[1];
    tt_json_init_fixed(&j, size ? buf : dummy, size ? size : 1, 0);
    tt_proxy_stats_write(p, &j, NULL);
    return j.len;
}
