/* api.c — the client's public API: creating and freeing a client, preparing an exchange (URL,
 * route, the request head) and running it blocking (tt_client_request) or asynchronously
 * (tt_client_start), and the flow-control calls (tt_exchange_resume, tt_exchange_body_ready);
 * the engine does the rest. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"
#include "common/api.h"

static int client_init(tt_client **out, tt_loop *loop, int own, const tt_client_opts *opts)
{
    tt_client *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    tt__client_opts_normalize(&c->o, opts);
    c->loop = loop;
    c->own_loop = own;
    c->bp = tt_bufpool_new(TT__C_READ_CHUNK, 64);
    if (!c->bp) {
        free(c);
        return -ENOMEM;
    }
    tt__list_init(&c->routes);
    tt__list_init(&c->all);
    tt__list_init(&c->queue);
    tt__list_init(&c->jobs);
    c->rng = (uint32_t)(uintptr_t)c ^ (uint32_t)getpid() ^ 0x9e3779b9u;
    tt__engine_init(c);
    *out = c;
    return 0;
}

TT_API int tt_client_new(tt_client **out, const tt_client_opts *opts)
{
    tt_loop *loop;
    int r = tt_loop_new(&loop);
    if (r < 0) return r;
    r = client_init(out, loop, 1, opts);
    if (r < 0) tt_loop_free(loop);
    return r;
}

TT_API int tt_client_new_on(tt_client **out, tt_loop *loop, const tt_client_opts *opts)
{
    return client_init(out, loop, 0, opts);
}

TT_API tt_loop *tt_client_loop(tt_client *c)
{
    return c->loop;
}

TT_API void tt_client_free(tt_client *c)
{
    if (!c) return;
    tt__engine_shutdown(c);
    tt__resolve_shutdown(c);
    tt__pool_free_routes(c);
    tt_tls_ctx_free(c->tls); /* after the last TLS stream closed */
    tt_bufpool_free(c->bp);
    if (c->own_loop) tt_loop_free(c->loop);
    free(c);
}

/* ---- exchanges ---- */

TT_API void tt_exchange_init(tt_exchange *x)
{
    memset(x, 0, sizeof *x);
}

TT_API void tt_exchange_reset(tt_exchange *x)
{
    tt__h1_clear_outcome(x);
    x->retries = 0;
    x->retry_reason = 0;
    x->lease_wait_ms = 0;
}

TT_API void tt_exchange_cleanup(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    free(x->head);
    free(x->resp_body);
    free(x->trailers);
    free(p->wbuf);
    free(p->sbuf);
    x->head = x->resp_body = x->trailers = NULL;
    p->wbuf = p->sbuf = NULL;
    p->head_cap = p->body_cap = p->trl_cap = 0;
    p->wcap = p->scap = 0;
}

/* Parse the URL, find the route, serialize the request: 0 or -errno with x->error_what set. */
static int x_prepare(tt_client *c, tt_exchange *x, const char *file, int line)
{
    char host[256];
    int port, tls = 0;
    const char *path, *what = "url";
    int r = x->url ? tt__client_parse_url(x->url, host, sizeof host, &port, &path, &tls) : -EINVAL;
    tt__route *rt = NULL;
    if (r == 0 && !(rt = tt__pool_route_scheme(c, host, port, tls))) {
        r = -ENOMEM;
        what = "memory";
    }
    /* The TLS context is made before the first https exchange, so a bad CA file or cipher
     * list refuses the request at once. */
    if (r == 0 && tls && (r = tt__tls_ctx(c)) < 0) what = c->tls_err;
    if (r == 0) {
        tt_exchange_reset(x);
        r = tt__h1_build(x, rt->hosthdr, path, &what);
        if (r == -ENOMEM) what = "memory";
    }
    if (r < 0) {
        x->error = r;
        x->error_what = what;
        return r;
    }
    tt__engine_prepare(c, x, rt, file, line);
    return 0;
}

TT_API int tt_client_start_at(tt_client *c, tt_exchange *x, const char *file, int line)
{
    int r = x_prepare(c, x, file, line);
    if (r < 0) return r;
    tt__engine_start(x, 1);
    return 0;
}

TT_API int tt_client_request_at(tt_client *c, tt_exchange *x, const char *file, int line)
{
    int r = x_prepare(c, x, file, line);
    if (r < 0) return r;
    /* One poll (a single epoll_wait) to reap idle connections the server closed meanwhile. */
    tt_loop_run_once(c->loop, 0);
    tt__engine_start(x, 0);
    while (!tt__xp(x)->done) {
        r = tt_loop_run_once(c->loop, -1);
        if (r < 0 && r != -EINTR) return r;
    }
    return x->error;
}

TT_API int tt_exchange_resume(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    if (!p->client || p->done || !(p->flags & (TT__XF_PAUSED | TT__XF_IN_BODY))) return -EINVAL;
    p->flags |= TT__XF_RESUME;
    tt__engine_flow(x);
    return 0;
}

TT_API int tt_exchange_body_ready(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    if (!p->client || p->done || !(p->flags & TT__XF_BODY_WAIT)) return -EINVAL;
    p->flags = (p->flags & ~TT__XF_BODY_WAIT) | TT__XF_BODY_READY;
    tt__engine_flow(x);
    return 0;
}

TT_API int tt_client_wait(tt_client *c, int ms)
{
    uint64_t start = tt_loop_update_time(c->loop);
    for (;;) {
        int left = -1;
        if (ms >= 0) {
            uint64_t now = tt_loop_update_time(c->loop);
            if (now - start >= (uint64_t)ms) return 0;
            left = (int)((uint64_t)ms - (now - start));
        } else if (c->inflight == 0) {
            return 0;
        }
        int r = tt_loop_run_once(c->loop, left);
        if (r < 0 && r != -EINTR) return r;
    }
}
