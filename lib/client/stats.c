/* stats.c — the client's statistics (snapshot, per route, JSON through the one JSON writer),
 * the printable names of its enums and the log sink. Reads the pool's structures; calls no
 * other file of the client. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "common/api.h"
#include "tether/json.h"

static const char *const evict_names[TT_EVICT_NREASONS] = {
    "idle",  "server_hint",  "max_requests", "lifetime",  "peer_closed",
    "error", "not_reusable", "dns",          "pool_full", "shutdown"};

TT_API const char *tt_evict_reason_name(int r)
{
    return r >= 0 && r < TT_EVICT_NREASONS ? evict_names[r] : "?";
}

TT_API const char *tt_retry_reason_name(int r)
{
    return r == TT_RETRY_NOT_SENT          ? "not_sent"
           : r == TT_RETRY_MAYBE_PROCESSED ? "maybe_processed"
                                           : "?";
}

TT_API const char *tt_client_state_name(const char *machine, int state)
{
    static const char *const conn[] = {"new",  "connecting", "busy",
                                       "idle", "closed",     "handshaking"};
    static const char *const xch[] = {"none",          "queued",  "connecting", "sending",
                                      "wait_continue", "reading", "done"};
    if (machine && !strcmp(machine, "conn"))
        return state >= 0 && state < (int)(sizeof conn / sizeof conn[0]) ? conn[state] : "?";
    return state >= 0 && state < (int)(sizeof xch / sizeof xch[0]) ? xch[state] : "?";
}

void tt__client_log(tt_client *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->o.log)
        c->o.log(c->o.log_data, line);
    else
        fprintf(stderr, "%s\n", line);
}

void tt__client_log_lines(tt_client *c, const char *prefix, const char *text, size_t len)
{
    const char *p = text, *e = text + len;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t ll = (size_t)((nl ? nl : e) - p);
        if (ll && p[ll - 1] == '\r') ll--;
        if (ll) tt__client_log(c, "%s%.*s", prefix, (int)ll, p);
        p = nl ? nl + 1 : e;
    }
}

/* The TLS counters of the client's context into s (zeros without one). */
static void tls_stats(tt_client *c, tt_client_stats *s)
{
    if (!c->tls) return;
    tt_tls_stats t;
    tt_tls_ctx_stats(c->tls, &t);
    s->tls_handshakes_full = t.handshakes_full;
    s->tls_handshakes_resumed = t.handshakes_resumed;
    s->tls_handshake_us_p50 = tt_tls_stats_handshake_p50_us(&t);
    s->tls_failures = 0;
    for (int i = 1; i < TT_TLS_FAIL_NREASONS; i++)
        s->tls_failures += t.failures[i];
}

TT_API void tt_client_get_stats(tt_client *c, tt_client_stats *s)
{
    *s = c->st;
    tls_stats(c, s);
    s->open = c->total;
    s->leased = s->idle = s->pending = 0;
    tt__list *n, *tmp;
    tt__list_each(&c->routes, n, tmp)
    {
        tt__route *rt = tt__list_entry(n, tt__route, link);
        s->leased += rt->nbusy + rt->nconnecting;
        s->idle += rt->nidle;
        s->pending += rt->npending;
    }
}

TT_API int tt_client_route_stats(tt_client *c, tt_route_stats *out, int max)
{
    int k = 0;
    tt__list *n, *tmp;
    tt__list_each(&c->routes, n, tmp)
    {
        tt__route *rt = tt__list_entry(n, tt__route, link);
        if (k < max) {
            tt_route_stats *r = &out[k];
            snprintf(r->host, sizeof r->host, "%s", rt->host);
            r->port = rt->port;
            r->tls = rt->tls;
            r->leased = rt->nbusy;
            r->connecting = rt->nconnecting;
            r->idle = rt->nidle;
            r->pending = rt->npending;
            r->opened = rt->opened;
            r->requests = rt->requests;
            r->reused = rt->reused;
            r->learned_idle_ms = rt->learned_idle_ms;
        }
        k++;
    }
    return k;
}

/* One route's object in the JSON. */
static void route_json(tt_json *j, const tt__route *rt)
{
    tt_json_object(j, NULL);
    tt_json_str(j, "scheme", rt->tls ? "https" : "http");
    tt_json_str(j, "host", rt->host);
    tt_json_int(j, "port", rt->port);
    tt_json_int(j, "leased", rt->nbusy + rt->nconnecting);
    tt_json_int(j, "idle", rt->nidle);
    tt_json_int(j, "pending", rt->npending);
    tt_json_uint(j, "opened", rt->opened);
    tt_json_uint(j, "requests", rt->requests);
    tt_json_uint(j, "reused", rt->reused);
    tt_json_uint(j, "learned_idle_ms", rt->learned_idle_ms);
    tt_json_end(j);
}

TT_API size_t tt_client_stats_json(tt_client *c, char *buf, size_t size)
{
    tt_client_stats s;
    tt_client_get_stats(c, &s);
    char dummy[1];
    tt_json j;
    tt_json_init_fixed(&j, size ? buf : dummy, size ? size : sizeof dummy, 0);
    tt_json_object(&j, NULL);
    tt_json_uint(&j, "requests", s.requests);
    tt_json_uint(&j, "errors", s.errors);
    tt_json_uint(&j, "connections_opened", s.connections_opened);
    tt_json_uint(&j, "connections_reused", s.connections_reused);
    tt_json_uint(&j, "retries", s.retries);
    tt_json_object(&j, "retries_by");
    for (int i = 0; i < TT_RETRY_NREASONS; i++)
        tt_json_uint(&j, tt_retry_reason_name(i), s.retries_by[i]);
    tt_json_end(&j);
    tt_json_object(&j, "evictions");
    for (int i = 0; i < TT_EVICT_NREASONS; i++)
        tt_json_uint(&j, tt_evict_reason_name(i), s.evictions[i]);
    tt_json_end(&j);
    tt_json_array(&j, "lease_wait_ms_log2");
    for (int i = 0; i < TT_CLIENT_WAIT_BUCKETS; i++)
        tt_json_uint(&j, NULL, s.lease_wait[i]);
    tt_json_end(&j);
    tt_json_int(&j, "open", s.open);
    tt_json_int(&j, "leased", s.leased);
    tt_json_int(&j, "idle", s.idle);
    tt_json_int(&j, "pending", s.pending);
    tt_json_object(&j, "tls");
    tt_json_uint(&j, "handshakes_full", s.tls_handshakes_full);
    tt_json_uint(&j, "handshakes_resumed", s.tls_handshakes_resumed);
    tt_json_uint(&j, "handshake_us_p50", s.tls_handshake_us_p50);
    tt_json_uint(&j, "failures", s.tls_failures);
    tt_json_end(&j);
    tt_json_array(&j, "routes");
    int nr = 0;
    tt__list *n, *tmp;
    tt__list_each(&c->routes, n, tmp)
    {
        if (nr++ >= 16) break;
        route_json(&j, tt__list_entry(n, tt__route, link));
    }
    tt_json_end(&j);
    tt_json_end(&j);
    return j.len;
}
