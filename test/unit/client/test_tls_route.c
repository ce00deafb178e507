/* test_tls_route.c — the client's https plumbing that needs no handshake: routes keyed by
 * scheme (http://h:443 and https://h:443 never share), the Host field's default port per
 * scheme, the TLS options' defaults, the mapping of handshake failures to exchange errors,
 * the "tls" block of the stats JSON, and the new connection state's name. Sessions and
 * handshakes against a real TLS peer: test_tls_session.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "client/client_int.h"
#include "tether.h"

Test(tls_route, keyed_by_scheme)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    tt__route *plain = tt__pool_route(c, "example.com", 443);
    tt__route *tls = tt__pool_route_scheme(c, "example.com", 443, 1);
    cr_assert_not_null(plain);
    cr_assert_not_null(tls);
    cr_assert_neq(plain, tls);
    cr_assert_eq(plain->tls, 0);
    cr_assert_eq(tls->tls, 1);
    /* the same key finds the same route again (host case-insensitive, any nonzero tls) */
    cr_assert_eq(tt__pool_route_scheme(c, "EXAMPLE.com", 443, 7), tls);
    cr_assert_eq(tt__pool_route_scheme(c, "example.com", 443, 0), plain);
    cr_assert_neq(tt__pool_route_scheme(c, "example.com", 8443, 1), tls);
    tt_route_stats rs[8];
    int n = tt_client_route_stats(c, rs, 8);
    cr_assert_eq(n, 3);
    int ntls = 0;
    for (int i = 0; i < n; i++)
        ntls += rs[i].tls;
    cr_assert_eq(ntls, 2);
    tt_client_free(c);
}

Test(tls_route, host_field_default_port_per_scheme)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    cr_assert_str_eq(tt__pool_route_scheme(c, "a.test", 443, 1)->hosthdr, "a.test");
    cr_assert_str_eq(tt__pool_route_scheme(c, "a.test", 80, 1)->hosthdr, "a.test:80");
    cr_assert_str_eq(tt__pool_route_scheme(c, "a.test", 443, 0)->hosthdr, "a.test:443");
    cr_assert_str_eq(tt__pool_route_scheme(c, "::1", 443, 1)->hosthdr, "[::1]");
    cr_assert_str_eq(tt__pool_route_scheme(c, "::1", 8443, 1)->hosthdr, "[::1]:8443");
    tt_client_free(c);
}

Test(tls_route, option_defaults)
{
    tt_client_opts d, o;
    tt_client_opts_default(&d);
    cr_assert_eq(d.tls_handshake_timeout_ms, 10000);
    cr_assert_eq(d.tls_min_version, 12);
    memset(&d, 0, sizeof d);
    tt__client_opts_normalize(&o, &d); /* 0 = default */
    cr_assert_eq(o.tls_handshake_timeout_ms, 10000);
    cr_assert_eq(o.tls_min_version, 12);
    d.tls_handshake_timeout_ms = TT_OFF;
    d.tls_min_version = 13;
    tt__client_opts_normalize(&o, &d);
    cr_assert_eq(o.tls_handshake_timeout_ms, TT_OFF);
    cr_assert_eq(o.tls_min_version, 13);
    d.tls_min_version = 11; /* below 1.2: the default */
    tt__client_opts_normalize(&o, &d);
    cr_assert_eq(o.tls_min_version, 12);
}

Test(tls_route, error_mapping)
{
    const char *prefix = NULL;
    cr_assert_eq(tt__tls_error(TT_TLS_FAIL_CERT, &prefix), -EKEYREJECTED);
    cr_assert_str_eq(prefix, "certificate");
    cr_assert_eq(tt__tls_error(TT_TLS_FAIL_TIMEOUT, &prefix), -ETIMEDOUT);
    cr_assert_str_eq(prefix, "tls handshake");
    static const int proto[] = {TT_TLS_FAIL_NONE, TT_TLS_FAIL_PLAINTEXT, TT_TLS_FAIL_NOT_TLS,
                                TT_TLS_FAIL_PROTOCOL, TT_TLS_FAIL_PEER_CLOSED};
    for (size_t i = 0; i < sizeof proto / sizeof proto[0]; i++) {
        prefix = NULL;
        cr_assert_eq(tt__tls_error(proto[i], &prefix), -EPROTO, "reason %d", proto[i]);
        cr_assert_str_eq(prefix, "tls handshake");
    }
}

Test(tls_route, stats_json_has_tls_block)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    tt__pool_route_scheme(c, "a.test", 443, 1);
    char buf[4096];
    size_t n = tt_client_stats_json(c, buf, sizeof buf);
    cr_assert_lt(n, sizeof buf);
    cr_assert_not_null(strstr(buf, "\"tls\":{\"handshakes_full\":0,\"handshakes_resumed\":0,"
                                   "\"handshake_us_p50\":0"),
                       "%s", buf);
    cr_assert_not_null(strstr(buf, "\"scheme\":\"https\""), "%s", buf);
    tt_client_free(c);
}

Test(tls_route, state_name)
{
    cr_assert_str_eq(tt_client_state_name("conn", TT_CLIENT_CONN_HANDSHAKING), "handshaking");
    cr_assert_str_eq(tt_client_state_name("conn", TT_CLIENT_CONN_CLOSED), "closed");
}

Test(tls_route, keep_session_null_keeps_the_old_one)
{
    tt__route rt;
    memset(&rt, 0, sizeof rt);
    tt__tls_keep_session(&rt, NULL);
    cr_assert_eq(rt.nsess, 0);
    cr_assert_null(tt__tls_take_session(&rt));
}
