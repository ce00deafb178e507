/* exchange.c — exchanges (one request and its response, struct tt_req) taken from and given
 * back to the worker's free list, and the response head: headers, the keep-alive decision and
 * the serialized head in the write buffer. Below both conn.c (which answers protocol errors
 * with it) and response.c (the public tt_res_* writer); it calls neither. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"

struct tt_req *tt__x_get(tt__conn *c)
{
    tt__worker *w = c->w;
    tt__list *n = tt__list_pop_front(&w->free_x);
    struct tt_req *x;
    if (n) {
        x = tt__list_entry(n, struct tt_req, free_link);
        w->nfree_x--;
    } else {
        x = malloc(sizeof *x);
        if (!x) return NULL;
    }
    memset(x, 0, offsetof(struct tt_req, hdrs));
    x->conn = c;
    x->res.file_fd = -1;
    x->req.headers = x->hdrs;
    x->req.max_headers = TT__MAX_REQ_HEADERS;
    c->x = x;
    return x;
}

void tt__x_put(tt__conn *c)
{
    struct tt_req *x = c->x;
    tt__worker *w = c->w;
    if (!x) return;
    if (x->res.drain_defer.queued) tt_defer_cancel(w->loop, &x->res.drain_defer);
    tt_buf_release(&x->rbuf, w->pool);
    tt_buf_release(&x->wbuf, w->pool);
    if (x->res.file_fd >= 0) close(x->res.file_fd);
    c->x = NULL;
    if (w->nfree_x < 256) {
        tt__list_push_front(&w->free_x, &x->free_link);
        w->nfree_x++;
    } else {
        free(x);
    }
}

void tt__x_reset_message(struct tt_req *x, const tt_server_config *cfg)
{
    tt_http1_limits lim = {.max_request_line = (uint32_t)cfg->max_uri,
                           .max_head = (uint32_t)cfg->max_header};
    tt_http1_parser_init(&x->parser, &lim);
    x->head_len = x->body_len = x->raw_len = x->tlen = 0;
    x->path = x->query = NULL;
    x->path_len = x->query_len = 0;
    x->sent_continue = x->handling = 0;
    struct tt_res *r = &x->res;
    r->status = 0;
    r->started = r->finished = r->chunked = r->head_only = 0;
    r->len = 0;
    r->nhdrs = r->store_used = 0;
    r->bytes_out = 0;
    memset(&x->dec, 0, sizeof x->dec);
    x->dec.trailers = x->trailers;
    x->dec.max_trailers = TT__MAX_TRAILERS;
    x->req.num_headers = 0;
    x->req.flags = 0;
    x->req.body = TT_HTTP1_BODY_NONE;
    x->req.method = NULL;
    x->req.method_len = 0;
}

void tt__conn_closing(tt__conn *c, int reason)
{
    if (c->closing == TT__CLOSE_NONE) c->closing = (uint8_t)reason;
}

int tt__res_add_header(struct tt_res *r, const char *name, const char *value)
{
    if (r->started) return -EALREADY;
    size_t nl = strlen(name), vl = strlen(value);
    if (r->nhdrs >= TT__MAX_RES_HEADERS - 2 || r->store_used + nl + vl > TT__RES_STORE)
        return -ENOSPC;
    char *p = r->store + r->store_used;
    memcpy(p, name, nl);
    memcpy(p + nl, value, vl);
    r->hdrs[r->nhdrs++] = (tt_header){p, nl, p + nl, vl};
    r->store_used += nl + vl;
    return 0;
}

/* Serialize the response head into the write buffer (Server, Keep-Alive, Date and framing
 * added here) and settle keep-alive: a response that cannot keep the connection marks it
 * closing. 0, -EALREADY or -ENOMEM. */
int tt__res_begin(struct tt_req *x, int status, long long length)
{
    struct tt_res *r = &x->res;
    tt__conn *c = x->conn;
    tt__worker *w = c->w;
    const tt_server_config *cfg = &w->srv->cfg;
    if (r->started) return -EALREADY;
    r->started = 1;
    r->status = status;
    r->len = length;
    if (length < 0 && x->req.minor_version == 0) r->keep_alive = 0; /* close-delimited */
    size_t n = r->nhdrs;
    if (cfg->server_name[0])
        r->hdrs[n++] = (tt_header){"Server", 6, cfg->server_name, strlen(cfg->server_name)};
    char ka[48];
    if (r->keep_alive && status >= 200) {
        int t = cfg->keepalive_timeout_ms / 1000;
        if (t >= 2) t -= 1; /* a little below the real deadline */
        long max = c->maxreq ? (long)(c->maxreq - c->nreq) : -1;
        size_t kl = tt_http1_keepalive_format(ka, sizeof ka, t, max);
        r->hdrs[n++] = (tt_header){"Keep-Alive", 10, ka, kl};
    }
    tt_http1_response_head h = {.status = status,
                                .headers = r->hdrs,
                                .num_headers = n,
                                .content_length = length,
                                .request_minor = x->req.minor_version,
                                .head_request = r->head_only,
                                .keep_alive = r->keep_alive,
                                .date = 1};
    size_t want = 512;
    for (;;) {
        char *p = tt_buf_reserve(&x->wbuf, w->pool, want);
        if (!p) return -ENOMEM;
        size_t space = tt_buf_space(&x->wbuf);
        size_t need = tt_http1_serialize_response(p, space, &h);
        if (need <= space) {
            tt_buf_commit(&x->wbuf, need);
            break;
        }
        want = need;
        h.keep_alive = r->keep_alive;
    }
    r->chunked = h.body == TT_HTTP1_BODY_CHUNKED;
    if (!h.keep_alive) r->keep_alive = 0;
    if (!r->keep_alive) tt__conn_closing(c, TT_CLOSE_CONN_CLOSE);
    return 0;
}
