/* test_balance.c — the proxy's upstream choice as pure functions: URL parsing, least-conn and
 * round-robin, passive health (rest after N consecutive failures, one probe after the rest). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "proxy/proxy_int.h"

Test(balance, url_parse)
{
    tt__upstream u;
    cr_assert_eq(tt__upstream_parse(&u, "http://127.0.0.1:8081"), 0);
    cr_expect_str_eq(u.host, "127.0.0.1");
    cr_expect_eq(u.port, 8081);
    cr_expect_str_eq(u.url, "http://127.0.0.1:8081");
    cr_assert_eq(tt__upstream_parse(&u, "http://backend/"), 0);
    cr_expect_eq(u.port, 80);
    cr_assert_eq(tt__upstream_parse(&u, "http://[::1]:9000"), 0);
    cr_expect_str_eq(u.host, "::1");
    cr_expect_str_eq(u.url, "http://[::1]:9000");
    cr_expect_eq(u.tls, 0);
    const char *bad[] = {"httpx://x",   "ftp://x",        "http://",
                         "http://x:0",  "http://x:70000", "http://x/path",
                         "http://x:8a", "http://u@x",     "http://[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_lt(tt__upstream_parse(&u, bad[i]), 0, "%s", bad[i]);
}

Test(balance, url_parse_https)
{
    tt__upstream u;
    cr_assert_eq(tt__upstream_parse(&u, "https://backend"), 0);
    cr_expect_str_eq(u.host, "backend");
    cr_expect_eq(u.port, 443, "https defaults to 443");
    cr_expect_eq(u.tls, 1);
    cr_expect_str_eq(u.url, "https://backend:443");
    cr_assert_eq(tt__upstream_parse(&u, "HTTPS://127.0.0.1:8443/"), 0);
    cr_expect_eq(u.port, 8443);
    cr_expect_str_eq(u.url, "https://127.0.0.1:8443");
    cr_assert_eq(tt__upstream_parse(&u, "https://[::1]:9443"), 0);
    cr_expect_str_eq(u.host, "::1");
    cr_expect_str_eq(u.url, "https://[::1]:9443");
    const char *bad[] = {"https://",    "https:/x",        "https//x",       "https://x:0",
                         "https://x/p", "https://u@x:443", "https://x:443x", "https://[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_lt(tt__upstream_parse(&u, bad[i]), 0, "%s", bad[i]);
}

Test(balance, tls_config_copied_and_checked)
{
    tt_proxy_config c;
    memset(&c, 0, sizeof c);
    c.upstreams[0] = "http://127.0.0.1:1";
    c.upstreams[1] = "https://127.0.0.1:2";
    c.nupstreams = 2;
    char ca[] = "/tmp/ca.pem", sni[] = "backend.internal";
    c.upstream_ca_file = ca;
    c.upstream_sni = sni;
    c.upstream_insecure = 7;
    tt_proxy *p;
    cr_assert_eq(tt_proxy_new(&p, &c, NULL), 0);
    ca[0] = sni[0] = 'X'; /* copied: the caller's strings may change */
    const tt_proxy_config *e = tt_proxy_get_config(p);
    cr_expect_str_eq(e->upstream_ca_file, "/tmp/ca.pem");
    cr_expect_str_eq(e->upstream_sni, "backend.internal");
    cr_expect_eq(e->upstream_insecure, 1);
    tt_proxy_upstream_stats st;
    cr_assert_eq(tt_proxy_stats(p, 1, &st), 0);
    cr_expect_eq(st.tls, 1);
    cr_assert_eq(tt_proxy_stats(p, 0, &st), 0);
    cr_expect_eq(st.tls, 0);
    char js[2048];
    tt_proxy_stats_json(p, js, sizeof js);
    cr_expect(strstr(js, "\"scheme\":\"https\"") != NULL, "%s", js);
    cr_expect(strstr(js, "\"tls_cert\":0") != NULL, "%s", js);
    cr_expect(strstr(js, "\"tls\":{\"handshakes_full\":0,\"handshakes_resumed\":0") != NULL, "%s",
              js);
    tt_client_opts o;
    tt_client_opts_default(&o);
    tt__proxy_client_tls(p, &o);
    cr_expect_str_eq(o.ca_file, "/tmp/ca.pem");
    cr_expect_str_eq(o.tls_server_name, "backend.internal");
    cr_expect_eq(o.insecure, 1);
    tt_proxy_free(p);
    const char *badsni[] = {"a b", "x\r\nHost: y", "a/b", "u@h"};
    for (size_t i = 0; i < sizeof badsni / sizeof badsni[0]; i++) {
        c.upstream_sni = badsni[i];
        cr_expect_eq(tt_proxy_new(&p, &c, NULL), -EINVAL, "%s", badsni[i]);
    }
    c.upstream_sni = NULL;
    c.upstream_ca_file = NULL;
    c.upstream_insecure = 0;
    cr_assert_eq(tt_proxy_new(&p, &c, NULL), 0);
    e = tt_proxy_get_config(p);
    cr_expect_null(e->upstream_ca_file);
    cr_expect_null(e->upstream_sni);
    cr_expect_eq(e->upstream_insecure, 0, "verification on by default");
    tt_proxy_free(p);
}

Test(balance, tls_failure_reasons)
{
    tt_exchange e;
    tt_exchange_init(&e);
    e.error = -EKEYREJECTED;
    e.error_what = "certificate: unable to get local issuer certificate";
    cr_expect_eq(tt__proxy_tls_reason(&e), TT_PROXY_FAIL_TLS_CERT);
    e.error = -EPROTO;
    e.error_what = "tls handshake: protocol version";
    cr_expect_eq(tt__proxy_tls_reason(&e), TT_PROXY_FAIL_TLS_HANDSHAKE);
    e.error = -ECONNABORTED;
    e.error_what = "tls handshake: timeout";
    cr_expect_eq(tt__proxy_tls_reason(&e), TT_PROXY_FAIL_TLS_HANDSHAKE);
    e.error = -ECONNREFUSED;
    e.error_what = "connect";
    cr_expect_eq(tt__proxy_tls_reason(&e), -1);
    e.error = -EPROTO;
    e.error_what = "bad status line";
    cr_expect_eq(tt__proxy_tls_reason(&e), -1);
    cr_expect_str_eq(tt_proxy_fail_name(TT_PROXY_FAIL_TLS_CERT), "tls_cert");
    cr_expect_str_eq(tt_proxy_fail_name(TT_PROXY_FAIL_TLS_HANDSHAKE), "tls_handshake");
    cr_expect(TT__PROXY_CONNECT_PHASE(TT_PROXY_FAIL_TLS_CERT));
    cr_expect(!TT__PROXY_CONNECT_PHASE(TT_PROXY_FAIL_RESET));
}

Test(balance, least_conn_picks_fewest_ties_rotate)
{
    int inflight[3] = {2, 0, 1}, ok[3] = {1, 1, 1};
    unsigned rr = 0;
    cr_expect_eq(tt__balance(TT_PROXY_LEAST_CONN, inflight, ok, 3, &rr), 1);
    inflight[1] = 5;
    cr_expect_eq(tt__balance(TT_PROXY_LEAST_CONN, inflight, ok, 3, &rr), 2);
    int even[3] = {0, 0, 0}, seen[3] = {0};
    for (int i = 0; i < 6; i++)
        seen[tt__balance(TT_PROXY_LEAST_CONN, even, ok, 3, &rr)]++;
    cr_expect(seen[0] == 2 && seen[1] == 2 && seen[2] == 2, "ties rotate: %d %d %d", seen[0],
              seen[1], seen[2]);
    ok[2] = 0;
    inflight[0] = 9;
    inflight[1] = 9;
    inflight[2] = 0;
    cr_expect_neq(tt__balance(TT_PROXY_LEAST_CONN, inflight, ok, 3, &rr), 2, "unusable skipped");
}

Test(balance, round_robin_in_turn)
{
    int inflight[3] = {5, 0, 0}, ok[3] = {1, 1, 1};
    unsigned rr = 0;
    int seq[6];
    for (int i = 0; i < 6; i++)
        seq[i] = tt__balance(TT_PROXY_ROUND_ROBIN, inflight, ok, 3, &rr);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(seq[i], i % 3);
    ok[0] = ok[1] = ok[2] = 0;
    cr_expect_eq(tt__balance(TT_PROXY_ROUND_ROBIN, inflight, ok, 3, &rr), -1);
}

static tt_proxy *two_upstreams(int threshold)
{
    tt_proxy_config c;
    memset(&c, 0, sizeof c);
    c.upstreams[0] = "http://127.0.0.1:1";
    c.upstreams[1] = "http://127.0.0.1:2";
    c.nupstreams = 2;
    c.fail_threshold = threshold;
    c.fail_rest_ms = 1000;
    c.balance = TT_PROXY_ROUND_ROBIN;
    tt_proxy *p;
    cr_assert_eq(tt_proxy_new(&p, &c, NULL), 0);
    return p;
}

Test(balance, health_rest_then_probe)
{
    tt_proxy *p = two_upstreams(3);
    uint64_t now = 100000;
    tt__upstream *u = &p->ups[0];
    cr_expect_eq(tt__upstream_result(p, u, 1, now), 0);
    cr_expect_eq(tt__upstream_result(p, u, 1, now), 0);
    cr_expect_eq(tt__upstream_result(p, u, 1, now), 1, "third consecutive failure: rest");
    for (int i = 0; i < 4; i++)
        cr_expect_eq(tt__upstream_pick(p, now + 10, 0), 1, "resting upstream skipped");
    /* rest over: exactly one probe goes to it */
    int probes = 0;
    for (int i = 0; i < 4; i++)
        probes += tt__upstream_pick(p, now + 1001, 0) == 0;
    cr_expect_eq(probes, 1);
    /* the probe fails: it rests again at once */
    cr_expect_eq(tt__upstream_result(p, u, 1, now + 1002), 1);
    cr_expect_eq(tt__upstream_pick(p, now + 1003, 0), 1);
    /* a later probe succeeds: healthy again, picked in turn */
    cr_expect_eq(tt__upstream_pick(p, now + 2100, 2), 0, "probe (other excluded)");
    tt__upstream_result(p, u, 0, now + 2101);
    int seen0 = 0;
    for (int i = 0; i < 4; i++)
        seen0 += tt__upstream_pick(p, now + 2102, 0) == 0;
    cr_expect_eq(seen0, 2);
    tt_proxy_upstream_stats s;
    cr_assert_eq(tt_proxy_stats(p, 0, &s), 0);
    cr_expect_eq(s.rests, 2);
    /* a probe that ends without a verdict (the client left) frees the probe for the next */
    cr_expect_eq(tt__upstream_result(p, u, 1, now + 3000), 0);
    cr_expect_eq(tt__upstream_result(p, u, 1, now + 3000), 0);
    cr_expect_eq(tt__upstream_result(p, u, 1, now + 3000), 1);
    cr_expect_eq(tt__upstream_pick(p, now + 4001, 2), 0, "probe");
    cr_expect_eq(tt__upstream_pick(p, now + 4001, 2), 1, "one probe at a time");
    tt__upstream_unprobe(u);
    cr_expect_eq(tt__upstream_pick(p, now + 4002, 2), 0, "probed again");
    tt_proxy_free(p);
}

Test(balance, success_resets_count_and_all_down)
{
    tt_proxy *p = two_upstreams(2);
    uint64_t now = 5000;
    tt__upstream_result(p, &p->ups[0], 1, now);
    tt__upstream_result(p, &p->ups[0], 0, now);
    cr_expect_eq(tt__upstream_result(p, &p->ups[0], 1, now), 0, "count restarted");
    cr_expect_eq(tt__upstream_result(p, &p->ups[0], 1, now), 1);
    tt__upstream_result(p, &p->ups[1], 1, now);
    cr_expect_eq(tt__upstream_result(p, &p->ups[1], 1, now), 1);
    cr_expect_eq(tt__upstream_pick(p, now + 1, 0), -1, "all resting");
    /* exclusion falls back to an excluded upstream when it is the only usable one */
    tt__upstream_result(p, &p->ups[1], 0, now);
    cr_expect_eq(tt__upstream_pick(p, now + 1, 2), 1);
    tt_proxy_free(p);
}

Test(balance, health_off_always_tried)
{
    tt_proxy *p = two_upstreams(TT_OFF);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(tt__upstream_result(p, &p->ups[0], 1, 1000), 0);
    cr_expect_geq(tt__upstream_pick(p, 1001, 2), 0);
    tt_proxy_free(p);
}

Test(balance, config_and_json)
{
    tt_proxy_config c;
    memset(&c, 0, sizeof c);
    c.upstreams[0] = "http://127.0.0.1:8081";
    c.nupstreams = 1;
    c.via = "edge\r\nX: y";
    tt_proxy *p;
    cr_expect_eq(tt_proxy_new(&p, &c, NULL), -EINVAL, "CR/LF in via refused");
    c.via = NULL;
    c.upstreams[1] = "http://x/y";
    c.nupstreams = 2;
    int bad = -2;
    cr_expect_eq(tt_proxy_new(&p, &c, &bad), -EINVAL);
    cr_expect_eq(bad, 1);
    c.nupstreams = 1;
    cr_assert_eq(tt_proxy_new(&p, &c, NULL), 0);
    const tt_proxy_config *e = tt_proxy_get_config(p);
    cr_expect_eq(e->keepalive, 32);
    cr_expect_eq(e->balance, TT_PROXY_LEAST_CONN);
    cr_expect_str_eq(e->via, "tether");
    char buf[2048];
    size_t n = tt_proxy_stats_json(p, buf, sizeof buf);
    cr_expect_lt(n, sizeof buf);
    cr_expect(strstr(buf, "\"url\":\"http://127.0.0.1:8081\"") != NULL, "%s", buf);
    cr_expect(strstr(buf, "\"failures\":{\"connect\":0") != NULL, "%s", buf);
    /* embedded in a status object */
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    tt_json_int(&j, "pid", 1);
    tt_proxy_stats_write(p, &j, "proxy");
    tt_json_end(&j);
    const char *want = "{\"pid\":1,\"proxy\":{\"upstreams\":[{\"url\":";
    cr_expect(j.buf && !strncmp(j.buf, want, strlen(want)), "%s", j.buf);
    cr_expect(j.len > 0 && j.buf[j.len - 1] == '}' && j.buf[j.len - 2] == '}', "%s", j.buf);
    tt_json_free(&j);
    tt_proxy_free(p);
}
