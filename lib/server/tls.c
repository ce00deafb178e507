/* tls.c — the server's TLS: https:// listen specs, the one context every worker shares
 * (session cache, ticket keys, counters), driving a connection's handshake before its first
 * request, close_notify on clean closes, and the public TLS calls (reload, counters, a
 * request's TLS info). The TLS state lives in the stream (stream.impl, lib/tls), so a
 * connection stays 128 bytes; the handshake is a sub-state of reading_head (TT__C_HANDSHAKE).
 * This file calls neither conn.c nor server.c: conn.c acts on what it returns. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/api.h"
#include "server/server_int.h"

#define HANDSHAKE_TIMEOUT_MS 10000

const char *tt__tls_listen_spec(const char *spec, int *tls, char *buf, size_t size)
{
    *tls = 0;
    if (strncasecmp(spec, "https://", 8) == 0) {
        *tls = 1;
        spec += 8;
    } else if (strncasecmp(spec, "http://", 7) == 0) {
        spec += 7;
    } else {
        return spec;
    }
    size_t n = strlen(spec);
    if (n && spec[n - 1] == '/') n--;
    if (n >= size) return NULL;
    memcpy(buf, spec, n);
    buf[n] = 0;
    return buf;
}

int tt__tls_setup(tt_server *s, char *err, size_t errlen)
{
    if (!s->tls_listen) return 0;
    tt_tls_opts o = s->cfg.tls;
    o.server = 1;
    if (!o.cert_file || !o.key_file || !*o.cert_file || !*o.key_file) {
        if (errlen)
            snprintf(err, errlen, "an https:// listener needs tls.cert_file and tls.key_file");
        return -EINVAL;
    }
    if (o.handshake_timeout_ms == 0) o.handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
    char dummy[1];
    int r = tt_tls_ctx_new(&s->tls, &o, errlen ? err : dummy, errlen ? errlen : sizeof dummy);
    if (r < 0) {
        s->tls = NULL;
        return r;
    }
    /* The effective settings (the context's copies, defaults filled in). */
    s->cfg.tls = *tt_tls_ctx_opts(s->tls);
    s->cfg.tls.handshake_timeout_ms = o.handshake_timeout_ms;
    return 0;
}

uint64_t tt__tls_conn_accept(tt__conn *c)
{
    const tt_server_config *cfg = &c->w->srv->cfg;
    if (tt_stream_tls_accept(&c->s, c->w->srv->tls) < 0) return 0;
    c->flags |= TT__C_HANDSHAKE;
    /* The handshake has its own deadline; TT_OFF leaves the header deadline in charge. */
    int ms =
        cfg->tls.handshake_timeout_ms > 0 ? cfg->tls.handshake_timeout_ms : cfg->header_timeout_ms;
    return ms > 0 ? (uint64_t)ms : 1;
}

int tt__tls_conn_handshake(tt__conn *c)
{
    int r = tt_stream_handshake(&c->s);
    if (r == -EAGAIN) return 1;
    c->flags &= (uint8_t)~TT__C_HANDSHAKE;
    if (r == 0) {
        /* Application data that came with the client's Finished may sit decrypted in the
         * TLS layer, with no edge to announce it: look once. */
        c->s.io.ready |= TT_READ;
        tt_timer_start(c->w->loop, &c->timer, (uint64_t)c->w->srv->cfg.header_timeout_ms);
        return 0;
    }
    if (r == -EPROTONOSUPPORT) { /* cleartext HTTP, only peeked at: still there to read */
        c->s.io.ready |= TT_READ;
        return 2;
    }
    return r;
}

void tt__tls_conn_closing(tt__conn *c, int reason, int reset)
{
    tt_tls_ctx *ctx = c->w->srv->tls;
    if (!ctx || !tt_stream_is_tls(&c->s)) return;
    if (c->flags & TT__C_HANDSHAKE) { /* interrupted: the context did not see it fail */
        if (reason == TT_CLOSE_HANDSHAKE_TIMEOUT)
            tt_tls_ctx_count_failure(ctx, TT_TLS_FAIL_TIMEOUT);
        else if (reason == TT_CLOSE_PEER_RST || reason == TT_CLOSE_PEER_FIN ||
                 reason == TT_CLOSE_PEER_DEAD)
            tt_tls_ctx_count_failure(ctx, TT_TLS_FAIL_PEER_CLOSED);
        return;
    }
    /* Resets stay resets; a failed socket or handshake has nobody to tell; a lingering close
     * sent its close_notify already (tt_stream_shutdown in conn_begin_close). */
    if (reset || reason == TT_CLOSE_PEER_RST || reason == TT_CLOSE_PEER_DEAD ||
        reason == TT_CLOSE_TLS_FAILED || (c->flags & TT__C_LINGER_DRAIN))
        return;
    tt_stream_shutdown(&c->s); /* close_notify, then FIN; the close follows at once */
}

TT_API int tt_server_reload_tls(tt_server *s, char *err, size_t errlen)
{
    if (!s->tls) {
        if (errlen) snprintf(err, errlen, "no https:// listener");
        return -ENOENT;
    }
    char dummy[1];
    return tt_tls_ctx_reload(s->tls, errlen ? err : dummy, errlen ? errlen : sizeof dummy);
}

TT_API int tt_server_tls_stats(const tt_server *s, tt_tls_stats *out)
{
    if (!s->tls) {
        memset(out, 0, sizeof *out);
        return -ENOENT;
    }
    tt_tls_ctx_stats(s->tls, out);
    return 0;
}

TT_API int tt_req_tls_info(const tt_req *req, tt_tls_info *out)
{
    const tt_stream *st = &req->conn->s;
    if (!tt_stream_is_tls(st)) return -ENOTCONN;
    return tt_stream_tls_info(st, out);
}
