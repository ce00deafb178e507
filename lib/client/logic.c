/* logic.c — the client pool's pure decisions: expiry, reuse, idempotency, URL split. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client_int.h"
#include "common/api.h"

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
             in->continue_unsent || (in->resp_minor == 0 && !in->resp_keepalive))
        r = TT_EVICT_NOT_REUSABLE;
    else if (in->peer_fin || in->leftover)
        r = TT_EVICT_PEER_CLOSED;
    else if (in->retired)
        r = TT_EVICT_DNS;
    else if (in->ka_max == 0)
        r = TT_EVICT_MAX_REQUESTS;
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

int tt__client_parse_url(const char *url, char *host, size_t hostsz, int *port, const char **path)
{
    const char *p;
    if (!strncasecmp(url, "http://", 7))
        p = url + 7;
    else if (!strncasecmp(url, "https://", 8))
        return -EPROTONOSUPPORT;
    else if (strstr(url, "://"))
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
    *port = 80;
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
