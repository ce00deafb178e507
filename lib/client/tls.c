/* tls.c — the client's https glue: one TLS context per client (created from its options on the
 * first https route), starting and stepping a connection's handshake, mapping handshake
 * failures to exchange errors, the per-route session pool (unused resumable sessions, one
 * taken by each new connection of the route so that it resumes) and the -v lines of a new TLS
 * connection. The TLS stream itself is lib/tls's; this file only configures and drives it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"

int tt__tls_ctx(tt_client *c)
{
    if (c->tls) return 0;
    tt_tls_opts o = {
        .ca_file = c->o.ca_file,
        .insecure = c->o.insecure,
        .min_version = c->o.tls_min_version,
        .ciphers = c->o.ciphers,
        .handshake_timeout_ms = c->o.tls_handshake_timeout_ms,
    };
    char err[160] = "";
    int r = tt_tls_ctx_new(&c->tls, &o, err, sizeof err);
    if (r < 0) {
        c->tls = NULL;
        snprintf(c->tls_err, sizeof c->tls_err, "tls setup: %s", err[0] ? err : strerror(-r));
    }
    return r;
}

int tt__tls_start(tt__conn *k)
{
    tt_client *c = k->c;
    int r = tt__tls_ctx(c);
    if (r < 0) {
        k->err = r;
        k->what = c->tls_err;
        return r;
    }
    const char *name = c->o.tls_server_name ? c->o.tls_server_name : k->rt->host;
    tt_tls_session *sess = tt__tls_take_session(k->rt); /* spent by this connection */
    r = tt_stream_tls_connect(&k->s, c->tls, name, sess);
    tt_tls_session_free(sess); /* the stream holds its own reference */
    if (r < 0) {
        k->err = r;
        k->what = "tls setup";
    }
    k->tls_saved = 0;
    return r;
}

int tt__tls_error(int reason, const char **prefix)
{
    if (reason == TT_TLS_FAIL_CERT) {
        *prefix = "certificate";
        return -EKEYREJECTED;
    }
    *prefix = "tls handshake";
    return reason == TT_TLS_FAIL_TIMEOUT ? -ETIMEDOUT : -EPROTO;
}

/* Log what the handshake of k agreed (curl's "* SSL connection using ..." lines). */
static void log_info(tt__conn *k)
{
    tt_client *c = k->c;
    tt_tls_info in;
    if (tt_stream_tls_info(&k->s, &in) < 0) return;
    tt__client_log(c, "* SSL connection using %s / %s (connection #%u)", in.version, in.cipher,
                   k->id);
    if (in.alpn[0])
        tt__client_log(c, "* ALPN: server accepted %s", in.alpn);
    else
        tt__client_log(c, "* ALPN: none agreed");
    tt__client_log(c, "* Server certificate:");
    tt__client_log(c, "*  subject: %s", in.subject[0] ? in.subject : "(none)");
    tt__client_log(c, "*  issuer: %s", in.issuer[0] ? in.issuer : "(none)");
    tt__client_log(c, "* SSL session %s", in.resumed ? "resumed" : "new (full handshake)");
}

int tt__tls_step(tt__conn *k)
{
    int r = tt_stream_handshake(&k->s);
    if (r == 0) {
        if (k->c->o.verbose) log_info(k);
        return 0;
    }
    if (r == -EAGAIN) return r;
    char msg[160] = "";
    int reason = tt_stream_tls_failure(&k->s, msg, sizeof msg);
    const char *prefix;
    int err = tt__tls_error(reason, &prefix);
    snprintf(k->rt->tls_what, sizeof k->rt->tls_what, "%s: %s", prefix,
             msg[0] ? msg : (reason ? tt_tls_fail_name(reason) : strerror(-r)));
    k->err = err;
    k->what = k->rt->tls_what;
    return err;
}

void tt__tls_keep_session(tt__route *rt, tt_tls_session *sess)
{
    if (!sess) return;
    if (rt->sesscap == 0) {
        tt_tls_session_free(sess);
        return;
    }
    if (rt->nsess == rt->sesscap) {
        tt_tls_session_free(rt->sess[0]);
        memmove(rt->sess, rt->sess + 1, (size_t)(rt->nsess - 1) * sizeof *rt->sess);
        rt->nsess--;
    }
    rt->sess[rt->nsess++] = sess;
}

tt_tls_session *tt__tls_take_session(tt__route *rt)
{
    while (rt->nsess > 0) {
        tt_tls_session *s = rt->sess[--rt->nsess]; /* the newest lives longest */
        if (tt_tls_session_usable(s)) return s;
        tt_tls_session_free(s); /* expired: older ones may still be fine (lifetimes differ) */
    }
    return NULL;
}

void tt__tls_after_response(tt__conn *k)
{
    if (k->tls_saved || !tt_stream_is_tls(&k->s)) return;
    /* TLS 1.3 tickets arrive after the handshake: asked after each response until one is. */
    tt_tls_session *s = tt_stream_tls_session(&k->s);
    if (!s) return;
    tt__tls_keep_session(k->rt, s);
    k->tls_saved = 1;
}
