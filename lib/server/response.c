/* response.c — the response writer (tt_res_*): headers, the head, body bytes and files,
 * flow control for streaming handlers, and the end of the exchange. The bytes go to the
 * exchange's write buffer; conn.c sends them. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/api.h"
#include "server/server_int.h"

/* name[0,nl) is the literal lit, case-insensitively (the length first: no string call for most) */
#define NAME_IS(name, nl, lit) ((nl) == sizeof(lit) - 1 && !strncasecmp((name), "" lit, (nl)))

/* 1 if the comma-separated list v has the token tok (case-insensitive). */
static int has_token(const char *v, const char *tok, size_t tl)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ", \t");
        if (n == tl && !strncasecmp(v, tok, tl)) return 1;
        v += n;
    }
    return 0;
}

TT_API int tt_res_header(tt_res *res, const char *name, const char *value)
{
    if (!name || !value) return -EINVAL;
    if (res->started) return -EALREADY;
    size_t nl = strlen(name), vl = strlen(value);
    if (!tt_http1_token_valid(name, nl) || !tt_http1_value_valid(value, vl)) return -EINVAL;
    /* The server's own fields: the framing comes from tt_res_start, keep-alive from the
     * server; "Connection: close" is honoured as tt_res_close, never appended raw. */
    if (NAME_IS(name, nl, "Connection")) {
        if (!has_token(value, "close", 5)) return -EPERM;
        tt_res_close(res);
        return 0;
    }
    if (NAME_IS(name, nl, "Content-Length") || NAME_IS(name, nl, "Transfer-Encoding") ||
        NAME_IS(name, nl, "Keep-Alive"))
        return -EPERM;
    return tt__res_add_header_n(res, name, nl, value, vl);
}

TT_API void tt_res_close(tt_res *res)
{
    if (!res->started) {
        res->keep_alive = 0;
        tt__conn_closing(tt__x_of(res)->conn, TT_CLOSE_CONN_CLOSE);
    }
}

TT_API int tt_res_start(tt_res *res, int status, long long length)
{
    struct tt_req *x = tt__x_of(res);
    if (x->conn->state == TT_CONN_CLOSED || x->body.answered) { /* output dropped */
        res->started = 1;
        return 0;
    }
    return tt__res_begin(x, status, length);
}

TT_API int tt_res_write(tt_res *res, const void *data, size_t len)
{
    struct tt_req *x = tt__x_of(res);
    tt__conn *c = x->conn;
    tt_bufpool *pool = c->w->pool;
    if (!res->started) {
        int r = tt_res_start(res, 200, -1);
        if (r < 0) return r;
    }
    if (c->state == TT_CONN_CLOSED || res->head_only || x->body.answered || !len) return 0;
    res->bytes_out += (long long)len;
    if (res->chunked) {
        char hb[TT_HTTP1_CHUNK_HEADER_MAX];
        size_t hl = tt_http1_chunk_header(hb, len);
        if (tt_buf_append(&x->wbuf, pool, hb, hl) < 0 ||
            tt_buf_append(&x->wbuf, pool, data, len) < 0 ||
            tt_buf_append(&x->wbuf, pool, "\r\n", 2) < 0)
            return -ENOMEM;
    } else if (tt_buf_append(&x->wbuf, pool, data, len) < 0) {
        return -ENOMEM;
    }
    /* A streaming (async) handler: push bytes out now. */
    if (!(c->flags & TT__C_IN_PROC) && x->wbuf.len > 0) return tt__conn_push(c);
    return 0;
}

TT_API int tt_res_sendfile(tt_res *res, int fd, off_t offset, size_t len)
{
    if (!res->started || res->chunked || tt__x_of(res)->conn->state == TT_CONN_CLOSED ||
        res->head_only || tt__x_of(res)->body.answered || res->file_fd >= 0 || !len) {
        close(fd);
        return res->file_fd >= 0 ? -EBUSY : 0;
    }
    res->file_fd = fd;
    res->file_off = offset;
    res->file_left = len;
    res->bytes_out += (long long)len;
    return 0;
}

TT_API size_t tt_res_pending(const tt_res *res)
{
    return tt__x_of(res)->wbuf.len + res->file_left;
}

TT_API int tt_res_on_drain(tt_res *res, size_t low, tt_res_drain_fn fn, void *data)
{
    if (res->finished || !fn) return res->finished ? -EALREADY : -EINVAL;
    res->drain_fn = fn;
    res->drain_data = data;
    res->drain_low = low;
    /* Checked after this iteration's flush; never re-entrantly from here. */
    tt__conn_drain_queue(tt__x_of(res));
    return 0;
}

TT_API int tt_res_end(tt_res *res)
{
    struct tt_req *x = tt__x_of(res);
    tt__conn *c = x->conn;
    tt__worker *w = c->w;
    if (!res->started) {
        int r = tt_res_start(res, res->status ? res->status : 200, 0);
        if (r < 0) return r;
    }
    if (res->chunked && c->state != TT_CONN_CLOSED && !res->head_only) {
        /* the last chunk, with the trailer section tt_res_trailer stored */
        tt_buf_append(&x->wbuf, w->pool, "0\r\n", 3);
        for (size_t i = 0; i < res->nhdrs; i++) {
            const tt_header *h = &tt__res_hdrs(res)[i];
            tt_buf_append(&x->wbuf, w->pool, h->name, h->name_len);
            tt_buf_append(&x->wbuf, w->pool, ": ", 2);
            tt_buf_append(&x->wbuf, w->pool, h->value, h->value_len);
            tt_buf_append(&x->wbuf, w->pool, "\r\n", 2);
        }
        tt_buf_append(&x->wbuf, w->pool, "\r\n", 2);
    }
    res->drain_fn = NULL;
    if (res->drain_defer.queued) tt_defer_cancel(w->loop, &res->drain_defer);
    tt__body_end(x); /* a streamed body: no more calls, its rest skipped or the connection closes */
    x->handling = 0;
    res->finished = 1;
    tt__conn_exchange_end(x);
    return 0;
}

TT_API int tt_res_interim(tt_res *res, int status, const tt_header *fields, size_t n)
{
    struct tt_req *x = tt__x_of(res);
    tt__conn *c = x->conn;
    if (res->started || res->finished) return -EALREADY;
    if (status < 102 || status > 199) return -EINVAL; /* 100: the server's; 101: no upgrades */
    /* never to an HTTP/1.0 client (RFC 9110 §15.2), nor on a closed connection */
    if (x->req.minor_version == 0 || c->state == TT_CONN_CLOSED) return 0;
    tt_http1_response_head h = {.status = status,
                                .headers = fields,
                                .num_headers = n,
                                .content_length = -1,
                                .request_minor = 1,
                                .keep_alive = 1};
    int rc = tt__res_write_head(x, &h);
    if (rc < 0) return rc;
    if (!(c->flags & TT__C_IN_PROC)) return tt__conn_push(c);
    return 0;
}

/* Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing, controls. */
static int trailer_forbidden(const char *name)
{
    static const char *const no[] = {"Content-Length",
                                     "Transfer-Encoding",
                                     "Connection",
                                     "Keep-Alive",
                                     "Host",
                                     "Trailer",
                                     "TE",
                                     "Content-Encoding",
                                     "Content-Type",
                                     "Content-Range",
                                     "Expect",
                                     "Upgrade",
                                     NULL};
    for (int i = 0; no[i]; i++)
        if (!strcasecmp(name, no[i])) return 1;
    return 0;
}

TT_API int tt_res_trailer(tt_res *res, const char *name, const char *value)
{
    if (!name || !value) return -EINVAL;
    if (!res->started || res->finished) return -EINVAL;
    if (!res->chunked) return -ENOTSUP; /* only a chunked body has a trailer section */
    if (!tt_http1_token_valid(name, strlen(name)) || !tt_http1_value_valid(value, strlen(value)))
        return -EINVAL;
    if (trailer_forbidden(name)) return -EPERM;
    return tt__res_add_header(res, name, value);
}

TT_API void tt_res_log_note(tt_res *res, const char *note)
{
    res->note = note;
}

TT_API int tt_res_abort(tt_res *res)
{
    if (res->finished) return -EALREADY;
    struct tt_req *x = tt__x_of(res);
    res->keep_alive = 0;
    tt__conn_closing(x->conn, TT_CLOSE_CONN_CLOSE);
    res->started = 1; /* before the head: nothing is written, the connection just closes */
    res->chunked = 0; /* no last chunk: the client sees the truncation */
    res->nhdrs = 0;
    return tt_res_end(res);
}

TT_API int tt_res_send(tt_res *res, int status, const char *content_type, const void *body,
                       size_t len)
{
    if (content_type && !res->started) tt_res_header(res, "Content-Type", content_type);
    /* A whole answer to a streamed body nobody read: say Connection: close when the rest of
     * the body cannot be skipped (tt_res_end skips it or closes). */
    struct tt_req *x = tt__x_of(res);
    if (x->body.on && !x->body.fn && !res->started && !tt__x_body_abandon(x, 0)) tt_res_close(res);
    int r = tt_res_start(res, status, (long long)len);
    if (r < 0) return r;
    if (len) {
        r = tt_res_write(res, body, len);
        if (r < 0) return r;
    }
    return tt_res_end(res);
}

TT_API tt_req *tt_res_req(tt_res *res)
{
    return tt__x_of(res);
}

TT_API int tt_res_aborted(const tt_res *res)
{
    return tt__x_of(res)->conn->state == TT_CONN_CLOSED;
}
