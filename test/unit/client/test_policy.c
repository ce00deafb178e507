/* test_policy.c — the client's pure decisions (lib/client/policy.c), driven by tables: the
 * reuse decision, expiry from Keep-Alive hints, retry classification, options and the TT_OFF
 * convention, idempotency, pipelining eligibility, URLs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "client/client_int.h"
#include "tether.h"

Test(expiry, client_idle_timeout_without_hints)
{
    tt__expiry_in in = {.now = 1000, .idle_timeout_ms = 30000, .ka_timeout_s = -1};
    int why = -1;
    cr_assert_eq(tt__client_expiry(&in, &why), 31000);
    cr_assert_eq(why, TT_EVICT_IDLE);
}

Test(expiry, server_keepalive_timeout_minus_growing_margin)
{
    tt__expiry_in in = {.now = 0, .idle_timeout_ms = 30000, .ka_timeout_s = 5};
    int why = -1;
    cr_assert_eq(tt__client_expiry(&in, &why), 5000 - 700);
    cr_assert_eq(why, TT_EVICT_SERVER_HINT);
    in.ka_timeout_s = 1;
    cr_assert_eq(tt__client_expiry(&in, &why), 1000 - 300);
    in.ka_timeout_s = 60;
    in.idle_timeout_ms = 120000;
    cr_assert_eq(tt__client_expiry(&in, &why), 60000 - 6200);
    cr_assert(tt__client_margin(60000) > tt__client_margin(5000));
    cr_assert(tt__client_margin(100) <= 50);
}

Test(expiry, zero_timeout_hint_expires_now)
{
    tt__expiry_in in = {.now = 500, .idle_timeout_ms = 30000, .ka_timeout_s = 0};
    cr_assert_leq(tt__client_expiry(&in, NULL), 500);
}

Test(expiry, learned_idle_close_used_without_hint)
{
    tt__expiry_in in = {
        .now = 0, .idle_timeout_ms = 30000, .ka_timeout_s = -1, .learned_idle_ms = 1000};
    int why;
    cr_assert_eq(tt__client_expiry(&in, &why), 700);
    cr_assert_eq(why, TT_EVICT_SERVER_HINT);
    in.ka_timeout_s = 10; /* an explicit hint wins over the learned value */
    cr_assert_eq(tt__client_expiry(&in, &why), 10000 - 1200);
}

Test(expiry, lifetime_is_earliest)
{
    tt__expiry_in in = {.now = 0, .idle_timeout_ms = 30000, .ka_timeout_s = 5, .lifetime_at = 200};
    int why;
    cr_assert_eq(tt__client_expiry(&in, &why), 200);
    cr_assert_eq(why, TT_EVICT_LIFETIME);
}

Test(learn, keeps_the_shortest)
{
    cr_assert_eq(tt__client_learn(0, 1200), 1200);
    cr_assert_eq(tt__client_learn(1200, 1000), 1000);
    cr_assert_eq(tt__client_learn(1000, 5000), 1000);
    cr_assert_eq(tt__client_learn(1000, 0), 1000);
}

Test(reuse, decisions)
{
    tt__reuse_in ok = {.resp_minor = 1, .body_complete = 1, .ka_max = -1};
    int why;
    cr_assert_eq(tt__client_reuse(&ok, &why), 0);
    tt__reuse_in in = ok;
    in.resp_close = 1;
    cr_assert(tt__client_reuse(&in, &why));
    cr_assert_eq(why, TT_EVICT_NOT_REUSABLE);
    in = ok;
    in.req_close = 1;
    cr_assert(tt__client_reuse(&in, &why));
    in = ok;
    in.resp_minor = 0;
    cr_assert(tt__client_reuse(&in, &why));
    in.resp_keepalive = 1;
    cr_assert_eq(tt__client_reuse(&in, &why), 0);
    in = ok;
    in.close_delimited = 1;
    cr_assert(tt__client_reuse(&in, &why));
    in = ok;
    in.body_complete = 0;
    cr_assert(tt__client_reuse(&in, &why));
    in = ok;
    in.error = 1;
    cr_assert(tt__client_reuse(&in, &why));
    cr_assert_eq(why, TT_EVICT_ERROR);
    in = ok;
    in.ka_max = 0;
    cr_assert(tt__client_reuse(&in, &why));
    cr_assert_eq(why, TT_EVICT_MAX_REQUESTS);
    in = ok;
    in.peer_fin = 1;
    cr_assert(tt__client_reuse(&in, &why));
    cr_assert_eq(why, TT_EVICT_PEER_CLOSED);
    in = ok;
    in.retired = 1;
    cr_assert(tt__client_reuse(&in, &why));
    cr_assert_eq(why, TT_EVICT_DNS);
    in = ok;
    in.continue_unsent = 1;
    cr_assert(tt__client_reuse(&in, &why));
}

Test(idempotent, methods_and_key)
{
    cr_assert(tt__client_idempotent("GET", NULL, 0));
    cr_assert(tt__client_idempotent("PUT", NULL, 0));
    cr_assert(tt__client_idempotent("DELETE", NULL, 0));
    cr_assert_not(tt__client_idempotent("POST", NULL, 0));
    cr_assert_not(tt__client_idempotent("PATCH", NULL, 0));
    const char *h[] = {"X-A: b", "idempotency-key: 7"};
    cr_assert(tt__client_idempotent("POST", h, 2));
}

Test(url, parse)
{
    char host[256];
    int port, tls;
    const char *path;
    cr_assert_eq(
        tt__client_parse_url("http://example.com/a?b", host, sizeof host, &port, &path, &tls), 0);
    cr_assert_str_eq(host, "example.com");
    cr_assert_eq(port, 80);
    cr_assert_str_eq(path, "/a?b");
    cr_assert_eq(tt__client_parse_url("http://[::1]:8080", host, sizeof host, &port, &path, &tls),
                 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 8080);
    cr_assert_str_eq(path, "/");
    cr_assert_eq(tls, 0);
    cr_assert_eq(tt__client_parse_url("https://x/", host, sizeof host, &port, &path, &tls), 0);
    cr_assert_eq(tls, 1);
    cr_assert_eq(port, 443); /* the https default */
    cr_assert_eq(tt__client_parse_url("HTTPS://x:8443/p", host, sizeof host, &port, &path, &tls),
                 0);
    cr_assert(tls && port == 8443 && !strcmp(path, "/p"));
    cr_assert_eq(tt__client_parse_url("ftp://x/", host, sizeof host, &port, &path, &tls),
                 -EPROTONOSUPPORT);
    cr_assert_eq(tt__client_parse_url("http://x:0/", host, sizeof host, &port, &path, &tls),
                 -EINVAL);
    cr_assert_eq(tt__client_parse_url("http://u@x/", host, sizeof host, &port, &path, &tls),
                 -EINVAL);
    cr_assert_eq(tt__client_parse_url("http:///", host, sizeof host, &port, &path, &tls), -EINVAL);
}

Test(histogram, buckets)
{
    cr_assert_eq(tt__client_wait_bucket(0), 0);
    cr_assert_eq(tt__client_wait_bucket(1), 1);
    cr_assert_eq(tt__client_wait_bucket(3), 2);
    cr_assert_eq(tt__client_wait_bucket(1u << 30), TT_CLIENT_WAIT_BUCKETS - 1);
}

/* ---- tables ---- */

Test(reuse, table)
{
    static const struct {
        const char *what;
        tt__reuse_in in;
        int close, reason;
    } rows[] = {
        {"keep-alive 1.1", {.resp_minor = 1, .body_complete = 1, .ka_max = -1}, 0, 0},
        {"1.0 with keep-alive",
         {.resp_minor = 0, .resp_keepalive = 1, .body_complete = 1, .ka_max = -1},
         0,
         0},
        {"1.0 without keep-alive",
         {.resp_minor = 0, .body_complete = 1, .ka_max = -1},
         1,
         TT_EVICT_NOT_REUSABLE},
        {"error first",
         {.error = 1, .resp_close = 1, .peer_fin = 1, .resp_minor = 1, .ka_max = 0},
         1,
         TT_EVICT_ERROR},
        {"close before fin",
         {.resp_close = 1, .peer_fin = 1, .resp_minor = 1, .body_complete = 1, .ka_max = -1},
         1,
         TT_EVICT_NOT_REUSABLE},
        {"leftover bytes",
         {.leftover = 1, .resp_minor = 1, .body_complete = 1, .ka_max = -1},
         1,
         TT_EVICT_PEER_CLOSED},
        {"retired before max",
         {.retired = 1, .resp_minor = 1, .body_complete = 1, .ka_max = 0},
         1,
         TT_EVICT_DNS},
        {"max=0", {.resp_minor = 1, .body_complete = 1, .ka_max = 0}, 1, TT_EVICT_MAX_REQUESTS},
        {"max=1 still kept", {.resp_minor = 1, .body_complete = 1, .ka_max = 1}, 0, 0},
        {"idle list full",
         {.idle_full = 1, .resp_minor = 1, .body_complete = 1, .ka_max = -1},
         1,
         TT_EVICT_POOL_FULL},
        {"continue unsent",
         {.continue_unsent = 1, .resp_minor = 1, .body_complete = 1, .ka_max = -1},
         1,
         TT_EVICT_NOT_REUSABLE},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int why = -1;
        int r = tt__client_reuse(&rows[i].in, &why);
        cr_assert_eq(r, rows[i].close, "%s", rows[i].what);
        if (r) cr_assert_eq(why, rows[i].reason, "%s: %s", rows[i].what, tt_evict_reason_name(why));
    }
}

Test(expiry, table_from_keepalive_hint)
{
    static const struct {
        uint64_t now, idle;
        long ka_s;
        uint64_t life, learned, at;
        int reason;
    } rows[] = {
        {0, 30000, -1, 0, 0, 30000, TT_EVICT_IDLE},
        {0, 30000, 2, 0, 0, 2000 - 400, TT_EVICT_SERVER_HINT},
        {100, 120000, 75, 0, 0, 100 + 75000 - 7700, TT_EVICT_SERVER_HINT},
        {0, 1000, 75, 0, 0, 1000, TT_EVICT_IDLE},                  /* ours is shorter */
        {0, 0, -1, 0, 0, UINT64_MAX, TT_EVICT_IDLE},               /* TT_OFF, no hint: never */
        {0, 0, 5, 0, 0, 5000 - 700, TT_EVICT_SERVER_HINT},         /* TT_OFF, hint still applies */
        {0, 0, -1, 9000, 0, 9000, TT_EVICT_LIFETIME},              /* only the lifetime */
        {0, 30000, -1, 0, 4000, 4000 - 600, TT_EVICT_SERVER_HINT}, /* learned */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tt__expiry_in in = {rows[i].now, rows[i].idle, rows[i].ka_s, rows[i].life, rows[i].learned};
        int why = -1;
        cr_assert_eq(tt__client_expiry(&in, &why), rows[i].at, "row %zu", i);
        cr_assert_eq(why, rows[i].reason, "row %zu", i);
    }
}

Test(retry, classification_table)
{
    static const struct {
        tt__retry_in in;
        int want;
    } rows[] = {
        /* not sent: any method, up to the budget */
        {{.sent = TT_NOT_SENT, .time_left = 1, .attempts_ns = 0, .max_ns = 3}, TT_RETRY_NOT_SENT},
        {{.sent = TT_NOT_SENT, .time_left = 1, .attempts_ns = 3, .max_ns = 3}, -1},
        {{.sent = TT_NOT_SENT, .time_left = 1, .max_ns = 0}, -1}, /* TT_OFF */
        {{.sent = TT_NOT_SENT, .time_left = 0, .max_ns = 3}, -1},
        {{.err = -ETIMEDOUT, .sent = TT_NOT_SENT, .time_left = 1, .max_ns = 3}, -1},
        /* maybe processed: idempotent, rewindable, no response byte, once */
        {{.sent = TT_MAYBE_PROCESSED, .time_left = 1, .rewindable = 1, .idempotent = 1},
         TT_RETRY_MAYBE_PROCESSED},
        {{.sent = TT_MAYBE_PROCESSED, .time_left = 1, .rewindable = 1, .idempotent = 0}, -1},
        {{.sent = TT_MAYBE_PROCESSED, .time_left = 1, .rewindable = 0, .idempotent = 1}, -1},
        {{.sent = TT_MAYBE_PROCESSED,
          .time_left = 1,
          .rewindable = 1,
          .idempotent = 1,
          .resp_bytes = 1},
         -1},
        {{.sent = TT_MAYBE_PROCESSED,
          .time_left = 1,
          .rewindable = 1,
          .idempotent = 1,
          .attempt_maybe = 1},
         -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_assert_eq(tt__client_retry(&rows[i].in), rows[i].want, "row %zu", i);
}

Test(opts, zero_is_default_and_tt_off_disables)
{
    tt_client_opts in, o, d;
    tt_client_opts_default(&d);
    memset(&in, 0, sizeof in);
    tt__client_opts_normalize(&o, &in);
    cr_assert_eq(o.max_per_route, d.max_per_route);
    cr_assert_eq(o.idle_timeout_ms, d.idle_timeout_ms);
    cr_assert_eq(o.lifetime_jitter_pct, 10);
    cr_assert_eq(o.max_retries_not_sent, 3);
    cr_assert_eq(o.total_timeout_ms, TT_OFF);
    cr_assert_eq(o.max_idle_per_route, o.max_per_route);
    in.idle_timeout_ms = TT_OFF;
    in.max_lifetime_ms = TT_OFF;
    in.leak_warn_ms = TT_OFF;
    in.lease_timeout_ms = TT_OFF;
    in.lifetime_jitter_pct = TT_OFF;
    in.max_retries_not_sent = TT_OFF;
    in.dns_ttl_ms = TT_OFF;
    in.max_per_route = TT_OFF;
    in.max_total = TT_OFF;
    in.total_timeout_ms = TT_OFF;
    tt__client_opts_normalize(&o, &in);
    cr_assert_eq(o.idle_timeout_ms, TT_OFF);
    cr_assert_eq(o.max_lifetime_ms, TT_OFF);
    cr_assert_eq(o.leak_warn_ms, TT_OFF);
    cr_assert_eq(o.lease_timeout_ms, TT_OFF);
    cr_assert_eq(o.dns_ttl_ms, TT_OFF);
    cr_assert_eq(o.lifetime_jitter_pct, 0);
    cr_assert_eq(o.max_retries_not_sent, 0);
    cr_assert_eq(o.max_per_route, INT_MAX);
    cr_assert_eq(o.max_total, INT_MAX);
    cr_assert_eq(o.total_timeout_ms, TT_OFF);
    in.max_total = 4; /* the route limit never exceeds the total */
    in.max_per_route = 8;
    tt__client_opts_normalize(&o, &in);
    cr_assert_eq(o.max_per_route, 4);
    tt__client_opts_normalize(&o, NULL);
    cr_assert_eq(o.max_total, d.max_total);
}

Test(opts, lifetime_with_and_without_jitter)
{
    tt_client_opts o;
    tt__client_opts_normalize(&o, NULL);
    uint32_t rng = 1;
    for (int i = 0; i < 100; i++) {
        uint64_t at = tt__client_lifetime(&o, 1000, &rng);
        cr_assert_geq(at, 1000 + 270000);
        cr_assert_leq(at, 1000 + 330000);
    }
    o.lifetime_jitter_pct = 0;
    cr_assert_eq(tt__client_lifetime(&o, 1000, &rng), 1000 + 300000);
    o.max_lifetime_ms = TT_OFF;
    cr_assert_eq(tt__client_lifetime(&o, 1000, &rng), 0);
}

Test(pipelining, only_bodyless_get_and_head_when_enabled)
{
    tt_client_opts o;
    tt__client_opts_normalize(&o, NULL);
    tt_exchange x;
    tt_exchange_init(&x);
    cr_assert_not(tt__client_pipelinable(&o, &x)); /* off by default */
    o.pipelining = 4;
    cr_assert(tt__client_pipelinable(&o, &x));
    x.method = "HEAD";
    cr_assert(tt__client_pipelinable(&o, &x));
    x.method = "POST";
    cr_assert_not(tt__client_pipelinable(&o, &x));
    x.method = "GET";
    x.body = "a";
    x.body_len = 1;
    cr_assert_not(tt__client_pipelinable(&o, &x));
    x.body = NULL;
    x.no_keepalive = 1;
    cr_assert_not(tt__client_pipelinable(&o, &x));
}
