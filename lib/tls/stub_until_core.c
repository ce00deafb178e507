/* stub_until_core.c — TEMPORARY (branch w-tls-client only): stand-ins for tether/tls.h so the
 * client's https code builds before w-tls-core is merged; deleted by that merge. Every call
 * fails with -EPROTONOSUPPORT. */
#include <errno.h>
#include <stdio.h>

#include "common/api.h"
#include "tether/tls.h"

TT_API const char *tt_tls_fail_name(int reason)
{
    (void)reason;
    return "?";
}
TT_API int tt_tls_ctx_new(tt_tls_ctx **out, const tt_tls_opts *o, char *err, size_t errlen)
{
    (void)o;
    *out = NULL;
    snprintf(err, errlen, "TLS not built in yet");
    return -EPROTONOSUPPORT;
}
TT_API void tt_tls_ctx_free(tt_tls_ctx *ctx)
{
    (void)ctx;
}
TT_API void tt_tls_ctx_stats(const tt_tls_ctx *ctx, tt_tls_stats *out)
{
    (void)ctx;
    *out = (tt_tls_stats){0};
}
TT_API void tt_tls_ctx_count_failure(tt_tls_ctx *ctx, int reason)
{
    (void)ctx;
    (void)reason;
}
TT_API int tt_stream_tls_connect(tt_stream *s, tt_tls_ctx *ctx, const char *sni,
                                 const tt_tls_session *resume)
{
    (void)s;
    (void)ctx;
    (void)sni;
    (void)resume;
    return -EPROTONOSUPPORT;
}
TT_API int tt_stream_is_tls(const tt_stream *s)
{
    return s->impl != NULL;
}
TT_API int tt_stream_tls_failure(const tt_stream *s, char *msg, size_t msglen)
{
    (void)s;
    snprintf(msg, msglen, "TLS not built in yet");
    return TT_TLS_FAIL_PROTOCOL;
}
TT_API int tt_stream_tls_truncated(const tt_stream *s)
{
    (void)s;
    return 0;
}
TT_API int tt_stream_tls_info(const tt_stream *s, tt_tls_info *out)
{
    (void)s;
    (void)out;
    return -EINVAL;
}
TT_API tt_tls_session *tt_stream_tls_session(const tt_stream *s)
{
    (void)s;
    return NULL;
}
TT_API void tt_tls_session_free(tt_tls_session *sess)
{
    (void)sess;
}
TT_API int tt_tls_ctx_reload(tt_tls_ctx *ctx, char *err, size_t errlen)
{
    (void)ctx;
    snprintf(err, errlen, "TLS not built in yet");
    return -EPROTONOSUPPORT;
}
TT_API const tt_tls_opts *tt_tls_ctx_opts(const tt_tls_ctx *ctx)
{
    (void)ctx;
    return NULL;
}
TT_API int tt_stream_tls_accept(tt_stream *s, tt_tls_ctx *ctx)
{
    (void)s;
    (void)ctx;
    return -EPROTONOSUPPORT;
}
TT_API uint64_t tt_stream_tls_started_us(const tt_stream *s)
{
    (void)s;
    return 0;
}
