/* test_tls_server.c — the server's TLS configuration without a handshake: listen specs with
 * schemes, an https:// listener without a certificate refused with a reason naming what is
 * missing, the new close reasons' names, and a cleartext server's TLS calls. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/server_int.h"
#include "tether.h"

Test(tls_server, listen_specs)
{
    char buf[64];
    int tls = -1;
    cr_assert_str_eq(tt__tls_listen_spec("127.0.0.1:8080", &tls, buf, sizeof buf),
                     "127.0.0.1:8080");
    cr_assert_eq(tls, 0);
    cr_assert_str_eq(tt__tls_listen_spec("http://127.0.0.1:8080/", &tls, buf, sizeof buf),
                     "127.0.0.1:8080");
    cr_assert_eq(tls, 0);
    cr_assert_str_eq(tt__tls_listen_spec("HTTPS://[::1]:8443", &tls, buf, sizeof buf),
                     "[::1]:8443");
    cr_assert_eq(tls, 1);
    cr_assert_str_eq(tt__tls_listen_spec("unix:/tmp/x.sock", &tls, buf, sizeof buf),
                     "unix:/tmp/x.sock");
    cr_assert_eq(tls, 0);
    cr_assert_null(tt__tls_listen_spec("https://127.0.0.1:8443", &tls, buf, 8));
}

/* A one-worker configuration listening on spec. */
static tt_server_config one_listener(const char *spec)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen[0] = spec;
    cfg.nlisten = 1;
    cfg.workers = 1;
    return cfg;
}

Test(tls_server, https_without_certificate)
{
    tt_server_config cfg = one_listener("https://127.0.0.1:0");
    tt_server *srv = NULL;
    int bad = 0;
    char err[256];
    cr_assert_eq(tt_server_new_err(&srv, &cfg, &bad, err, sizeof err), -EINVAL);
    cr_assert_null(srv);
    cr_assert_eq(bad, -1);
    cr_assert(strstr(err, "cert_file") != NULL, "%s", err);
}

Test(tls_server, cleartext_server_has_no_tls)
{
    tt_server_config cfg = one_listener("http://127.0.0.1:0");
    tt_server *srv = NULL;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    tt_tls_stats st;
    cr_assert_eq(tt_server_tls_stats(srv, &st), -ENOENT);
    cr_assert_eq(st.handshakes_full, 0);
    char err[64];
    cr_assert_eq(tt_server_reload_tls(srv, err, sizeof err), -ENOENT);
    cr_assert_gt(tt_server_port(srv), 0);
    tt_server_free(srv);
}

Test(tls_server, close_reason_names)
{
    cr_assert_str_eq(tt_close_reason_name(TT_CLOSE_HANDSHAKE_TIMEOUT), "handshake_timeout");
    cr_assert_str_eq(tt_close_reason_name(TT_CLOSE_TLS_FAILED), "tls_failed");
    cr_assert_str_eq(tt_close_reason_name(TT_CLOSE_NREASONS), "?");
}
