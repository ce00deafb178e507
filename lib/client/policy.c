/* policy.c — the client's pure decisions, free of I/O so unit tests drive them with tables:
 * options and their defaults, expiry, the reuse decision, retry classification, idempotency,
 * pipelining eligibility, lifetime jitter, URL split. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client_int.h"
#include "common/api.h"

TT_API void tt_client_opts_default(tt_client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_per_route = 8;
    o->max_total = 64;
    o->lease_timeout_ms = 10000;
    o->connect_timeout_ms = 5000;
    o->head_timeout_ms = 30000;
    o->idle_timeout_ms = 30000;
    o->max_lifetime_ms = 300000;
    o->lifetime_jitter_pct = 10;
    o->leak_warn_ms = 60000;
    o->continue_timeout_ms = 1000;
    o->dns_ttl_ms = 30000;
    o->max_retries_not_sent = 3;
    o->tls_handshake_timeout_ms = 10000;
    o->tls_min_version = 12;
}

void tt__client_opts_normalize(tt_client_opts *o, const tt_client_opts *in)
{
    tt_client_opts d;
    tt_client_opts_default(&d);
    *o = in ? *in : d;
    /* 0 (or any negative other than TT_OFF, as before) takes the default; TT_OFF stays. */
#define DEF(f)                                                                                     \
    if (o->f == 0 || (o->f < 0 && o->f != TT_OFF)) o->f = d.f
    DEF(max_per_route);
    DEF(max_total);
    DEF(lease_timeout_ms);
    DEF(connect_timeout_ms);
    DEF(head_timeout_ms);
    DEF(idle_timeout_ms);
    DEF(max_lifetime_ms);
    DEF(lifetime_jitter_pct);
    DEF(leak_warn_ms);
    DEF(continue_timeout_ms);
    DEF(dns_ttl_ms);
    DEF(max_retries_not_sent);
    DEF(tls_handshake_timeout_ms);
#undef DEF
    if (o->max_per_route == TT_OFF) o->max_per_route = INT_MAX;
    if (o->max_total == TT_OFF) o->max_total = INT_MAX;
    if (o->total_timeout_ms <= 0) o->total_timeout_ms = TT_OFF;
    if (o->lifetime_jitter_pct == TT_OFF) o->lifetime_jitter_pct = 0;
    if (o->lifetime_jitter_pct > 100) o->lifetime_jitter_pct = 100;
    if (o->max_retries_not_sent == TT_OFF) o->max_retries_not_sent = 0;
    if (o->pipelining < 2) o->pipelining = 0;
    if (o->max_body_size < 0) o->max_body_size = 0; /* TT_OFF: no limit, as the default */
    if (o->low_speed_limit < 0) o->low_speed_limit = 0;
    if (o->low_speed_time_ms <= 0) o->low_speed_time_ms = 30000;
    if (o->tls_min_version != 13) o->tls_min_version = 12;
    if (o->max_idle_per_route <= 0) o->max_idle_per_route = o->max_per_route;
    if (o->max_total < o->max_per_route) o->max_per_route = o->max_total;
}

uint64_t tt__client_lifetime(const tt_client_opts *o, uint64_t now, uint32_t *rng)
{
    if (o->max_lifetime_ms <= 0) return 0;
    uint64_t life = (uint64_t)o->max_lifetime_ms;
    if (o->lifetime_jitter_pct > 0) {
        *rng = *rng * 1664525u + 1013904223u;
        uint64_t span = life * (uint64_t)o->lifetime_jitter_pct / 100;
        if (span) life = life - span + (*rng >> 8) % (2 * span + 1);
    }
    return now + life;
}

int tt__client_retry(const tt__retry_in *in)
{
    if (!in->time_left || in->err == -ETIMEDOUT) return -1;
    if (in->sent == TT_NOT_SENT) return in->attempts_ns < in->max_ns ? TT_RETRY_NOT_SENT : -1;
    if (!in->resp_bytes && !in->attempt_maybe && in->rewindable && in->idempotent)
        return TT_RETRY_MAYBE_PROCESSED;
    return -1;
}

int tt__client_pipelinable(const tt_client_opts *o, const tt_exchange *x)
{
    if (o->pipelining < 2 || x->body || x->body_read || x->no_keepalive || x->http10 ||
        x->expect_continue)
        return 0;
    const char *m = x->method ? x->method : "GET";
    return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}

uint64_t tt__client_margin(uint64_t t_ms)
{
    uint64_t m = 200 + t_ms / 10;
    return m > t_ms / 2 ? t_ms / 2 : m;
}

uint64_t tt__client_expiry(const tt__expiry_in *in, int *reason)
{
    uint64_t at = UINT64_MAX;
    int why = TT_EVICT_IDLE;
    if (in->idle_timeout_ms) at = in->now + in->idle_timeout_ms;
    if (in->ka_timeout_s >= 0) {
        uint64_t t = (uint64_t)in->ka_timeout_s * 1000;
        uint64_t e = in->now + t - tt__client_margin(t);
        if (e < at) {
            at = e;
            why = TT_EVICT_SERVER_HINT;
        }
    } else if (in->learned_idle_ms) {
        uint64_t t = in->learned_idle_ms;
        uint64_t e = in->now + t - tt__client_margin(t);
        if (e < at) {
            at = e;
            why = TT_EVICT_SERVER_HINT;
        }
    }
    if (in->lifetime_at && in->lifetime_at < at) {
        at = in->lifetime_at;
        why = TT_EVICT_LIFETIME;
    }
    if (reason) *reason = why;
    return at;
}

int tt__client_reuse(const tt__reuse_in *in, int *reason)
{
    int r = -1;
    if (in->error)
        r = TT_EVICT_ERROR;
    else if (in->req_close || in->resp_close || in->close_delimited || !in->body_complete ||
             in->continue_unsent || (in->resp_minor == 0 && !in->resp_keepalive) ||
             in->resp_no_reuse)
        r = TT_EVICT_NOT_REUSABLE;
    else if (in->peer_fin || in->leftover)
        r = TT_EVICT_PEER_CLOSED;
    else if (in->retired)
        r = TT_EVICT_DNS;
    else if (in->ka_max == 0)
        r = TT_EVICT_MAX_REQUESTS;
    else if (in->idle_full)
        r = TT_EVICT_POOL_FULL;
    if (reason) *reason = r < 0 ? 0 : r;
    return r < 0 ? 0 : 1;
}

int tt__client_idempotent(const char *method, const char *const *headers, int nheaders)
{
    static const char *const idem[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof idem / sizeof idem[0]; i++)
        if (!strcmp(method, idem[i])) return 1;
    for (int i = 0; i < nheaders; i++)
        if (!strncasecmp(headers[i], "Idempotency-Key:", 16)) return 1;
    return 0;
}

uint64_t tt__client_learn(uint64_t learned, uint64_t idle_ms)
{
    if (idle_ms == 0) return learned;
    return (learned == 0 || idle_ms < learned) ? idle_ms : learned;
}

int tt__client_parse_url(const char *url, char *host, size_t hostsz, int *port, const char **path,
                         int *tls)
{
    const char *p;
    *tls = 0;
    /* A space or control byte would split the request line: refused, never written raw. */
    for (p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return -EINVAL;
    if (!strncasecmp(url, "http://", 7)) {
        p = url + 7;
    } else if (!strncasecmp(url, "https://", 8)) {
        p = url + 8;
        *tls = 1;
    } else if (strstr(url, "://"))
        return -EPROTONOSUPPORT;
    else
        p = url; /* host[:port]/path without a scheme: http */
    const char *end = p + strcspn(p, "/?#");
    const char *h = p, *hend, *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) return -EINVAL;
        h++;
        hend = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':') return -EINVAL;
            colon = rb + 1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hend = colon ? colon : end;
    }
    if (hend == h || (size_t)(hend - h) >= hostsz || memchr(h, '@', (size_t)(end - h)))
        return -EINVAL;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = 0;
    *port = *tls ? 443 : 80;
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || colon + 1 == end || v <= 0 || v > 65535) return -EINVAL;
        *port = (int)v;
    }
    *path = *end == '/' ? end : (*end == '?' ? end : "/");
    return 0;
}

int tt__client_wait_bucket(uint64_t ms)
{
    int b = 0;
    while (ms && b < TT_CLIENT_WAIT_BUCKETS - 1) {
        ms >>= 1;
        b++;
    }
    return b;
}
