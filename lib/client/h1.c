/* h1.c — the client's HTTP/1 exchange on one connection: serialize the request head (through
 * the one request-head writer, tt_http1_serialize_request), write it and the body through the
 * transport, parse the response (head, then one body reader per framing). It never decides
 * what happens to the connection or the exchange: every step returns an outcome (MORE, DONE,
 * DONE_CLOSE, FAIL, ...) for the engine to act on.
 *
 * Memory: the head, collected body, trailers, write buffer and streamed-body staging buffer
 * are the exchange's, grown as needed and kept across its runs (freed by tt_exchange_cleanup). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client_int.h"
#include "common/api.h"
#include "http1/internal.h"

/* ---- buffers ---- */

/* Grow *p (capacity *cap) to hold need bytes. 0 or -ENOMEM. */
static int grow32(char **p, uint32_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    if (n > UINT32_MAX) return -ENOMEM;
    char *q = realloc(*p, n);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = (uint32_t)n;
    return 0;
}

static int wgrow(tt__xpriv *p, size_t need)
{
    if (need <= p->wcap) return 0;
    size_t n = p->wcap ? p->wcap : 512;
    while (n < need)
        n *= 2;
    char *q = realloc(p->wbuf, n);
    if (!q) return -ENOMEM;
    p->wbuf = q;
    p->wcap = n;
    return 0;
}

void tt__h1_clear_outcome(tt_exchange *x)
{
    x->error = 0;
    x->error_what = NULL;
    x->sent_state = TT_NOT_SENT;
    x->status = 0;
    x->resp_framing = TT_FRAMING_NONE;
    x->version_minor = 0;
    x->head_len = 0;
    x->nhdrs = 0;
    x->resp_body_len = 0;
    x->trailers_len = 0;
    x->informational = 0;
    x->reused = 0;
    x->conn_id = 0;
    x->conn_kept = 0;
    x->close_reason = 0;
    if (x->head) x->head[0] = 0;
    if (x->resp_body) x->resp_body[0] = 0;
    if (x->trailers) x->trailers[0] = 0;
}

TT_API const char *tt_exchange_header(const tt_exchange *x, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (int i = 0; i < x->nhdrs; i++) {
        const tt_hdr_span *h = &x->hdrs[i];
        if (h->name_len == nl && !strncasecmp(x->head + h->name, name, nl)) {
            if (len) *len = h->value_len;
            return x->head + h->value;
        }
    }
    return NULL;
}

/* ---- the request head ---- */

/* Which of the fields the library writes did the caller give? Bits: 1 Host, 2 Connection,
 * 4 Expect, 8 Content-Length or Transfer-Encoding. */
static int field_kind(const tt_header *h)
{
    const char *nm = h->name;
    size_t l = h->name_len;
    if (l == 4 && !strncasecmp(nm, "Host", 4)) return 1;
    if (l == 10 && !strncasecmp(nm, "Connection", 10)) return 2;
    if (l == 6 && !strncasecmp(nm, "Expect", 6)) return 4;
    if ((l == 14 && !strncasecmp(nm, "Content-Length", 14)) ||
        (l == 17 && !strncasecmp(nm, "Transfer-Encoding", 17)))
        return 8;
    return 0;
}

/* Nonzero when the comma-separated list v[0, n) holds the token tok (case-insensitive). */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == tl && !strncasecmp(v + s, tok, tl)) return 1;
        while (i < n && v[i] != ',')
            i++;
    }
    return 0;
}

/* Fill the serializer's description of x's request. hdr holds the caller's fields minus the
 * ones the library manages (framing, Connection); g says which of those the caller gave and
 * close whether its Connection field asked to close. */
static void head_of(const tt_exchange *x, tt_http1_request_head *h, const char *hosthdr,
                    const char *target, const tt_header *hdr, size_t nh, int g, int close)
{
    const char *m = x->method ? x->method : "GET";
    memset(h, 0, sizeof *h);
    h->method = m;
    h->target = target;
    h->host = (g & 1) ? NULL : hosthdr; /* a caller's Host replaces ours */
    h->headers = hdr;
    h->num_headers = nh;
    h->http10 = x->http10;
    h->keep_alive = !x->no_keepalive && !close;
    /* The body's framing is always the library's (a caller's framing fields were dropped). */
    if (x->body)
        h->content_length = (int64_t)x->body_len;
    else if (x->body_read)
        h->content_length = x->body_stream_len > 0 ? (int64_t)x->body_stream_len : -2;
    else if (!strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH"))
        h->content_length = 0;
    else
        h->content_length = -1;
    h->expect_continue = x->expect_continue && !(g & 4) && (x->body || x->body_read);
}

/* Split the caller's header lines into hdr, dropping the fields the library manages
 * (Content-Length, Transfer-Encoding: the body's framing; Connection: the pool's, a close token
 * in it noted in *close). *nh gets the kept count, *g the kinds given (field_kind bits).
 * 0, or -EINVAL for a line that is not a valid "Name: value". */
static int split_headers(const tt_exchange *x, tt_header *hdr, size_t *nh, int *g, int *close)
{
    size_t n = 0;
    *g = *close = 0;
    for (int i = 0; i < x->nheaders; i++) {
        /* the kept fields' bytes are checked once, by the serializer */
        if (!x->headers[i] ||
            tt__http1_header_split(x->headers[i], strlen(x->headers[i]), &hdr[n]) < 0)
            return -EINVAL;
        int kind = field_kind(&hdr[n]);
        *g |= kind;
        if (kind == 2 || kind == 8) { /* never sent twice: ours is written instead */
            if (!tt__http1_fields_valid(&hdr[n], 1)) return -EINVAL;
            if (kind == 2 && has_token(hdr[n].value, hdr[n].value_len, "close")) *close = 1;
            continue;
        }
        n++;
    }
    *nh = n;
    return 0;
}

/* Check the streamed body's trailer lines into th (up to TT__C_MAX_TRAILERS): 0, or -EINVAL
 * with *what: a bad line, a field a trailer may not carry (the decoder's list), or too many.
 * The trailers are only sent with a chunked body. */
static int trailers_of(const tt_exchange *x, tt_header *th, const char **what)
{
    int n = x->body_stream_len > 0 ? 0 : x->nbody_trailers;
    if (n > TT__C_MAX_TRAILERS) goto bad;
    for (int i = 0; i < n; i++) {
        const char *l = x->body_trailers ? x->body_trailers[i] : NULL;
        if (!l || tt_http1_header_line(l, strlen(l), &th[i]) < 0 ||
            tt__http1_trailer_forbidden(th[i].name, th[i].name_len))
            goto bad;
    }
    return n;
bad:
    *what = "bad trailer";
    return -EINVAL;
}

int tt__h1_build(tt_exchange *x, const char *hosthdr, const char *path, const char **what)
{
    tt__xpriv *p = tt__xp(x);
    tt_header stack_hdr[32], *hdr = stack_hdr;
    char stack_target[1024], *target = (char *)path;
    int r = 0;
    size_t nh = x->nheaders > 0 ? (size_t)x->nheaders : 0;
    if (wgrow(p, 512) < 0) return -ENOMEM;
    if (nh > sizeof stack_hdr / sizeof stack_hdr[0] && !(hdr = malloc(nh * sizeof *hdr)))
        return -ENOMEM;
    int g, close;
    if (split_headers(x, hdr, &nh, &g, &close) < 0) {
        *what = "bad header";
        r = -EINVAL;
        goto out;
    }
    const char *m = x->method ? x->method : "GET";
    if (!tt_http1_token_valid(m, strlen(m))) {
        *what = "bad method";
        r = -EINVAL;
        goto out;
    }
    tt_header th[TT__C_MAX_TRAILERS];
    int nt = x->body_read && !x->body ? trailers_of(x, th, what) : 0;
    if (nt < 0) {
        r = nt;
        goto out;
    }
    p->req_close = close || x->no_keepalive;
    size_t plen = strcspn(path, "#");
    size_t slash = path[0] != '/'; /* "http://h?q" asks for "/?q" (RFC 9112 §3.2.1) */
    if (path[plen] || slash) {     /* a fragment is never sent */
        size_t tl = slash + plen;
        target = tl < sizeof stack_target ? stack_target : malloc(tl + 1);
        if (!target) {
            r = -ENOMEM;
            goto out;
        }
        target[0] = '/';
        memcpy(target + slash, path, plen);
        target[tl] = 0;
    }
    tt_http1_request_head h;
    head_of(x, &h, hosthdr, target, hdr, nh, g, close);
    size_t need = tt_http1_serialize_request(p->wbuf, p->wcap, &h);
    if (need > p->wcap) {
        if (wgrow(p, need) < 0) {
            r = -ENOMEM;
            goto out;
        }
        need = tt_http1_serialize_request(p->wbuf, p->wcap, &h);
    }
    if (need == 0) { /* the serializer refused: a field (split unchecked above) or the line */
        *what = tt__http1_fields_valid(hdr, nh) ? "bad request line" : "bad header";
        r = -EINVAL;
    }
    p->wlen = need;
out:
    if (hdr != stack_hdr) free(hdr);
    if (target != path && target != stack_target) free(target);
    return r;
}

/* ---- writing ---- */

void tt__h1_reset(tt__conn *k)
{
    tt_http1_parser_init(&k->parser, NULL);
    memset(&k->resp, 0, sizeof k->resp);
    k->resp.headers = k->hdr;
    k->resp.max_headers = TT_CLIENT_MAX_HEADERS;
}

void tt__h1_begin(tt_exchange *x, tt__conn *k)
{
    tt__xpriv *p = tt__xp(x);
    k->requests++;
    k->rt->requests++;
    tt__x_set_phase(x, TT_X_SENDING);
    p->woff = 0;
    p->wrote = 0;
    p->body_off = 0;
    p->flags &= TT__XF_STREAM_MASK;
    p->resp_bytes = 0;
    tt__h1_clear_outcome(x);
}

void tt__h1_stream_reset(tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    p->slen = p->soff = 0;
    p->flags &= ~TT__XF_STREAM_MASK;
    p->sremain = x->body_stream_len > 0 ? x->body_stream_len : 0;
    p->body_pulled = 0;
}

tt_exchange *tt__h1_next(tt__conn *k, tt_exchange *x)
{
    tt__list *n = x == k->x ? tt__list_first(&k->pq) : tt__xp(x)->qlink.next;
    return n && n != &k->pq ? TT__X_OF(n, qlink) : NULL;
}

/* The streamed body ended (chunked): stage the last chunk with the trailers. 0 or -errno. */
static int stream_last(tt_exchange *x, const char **what)
{
    tt__xpriv *p = tt__xp(x);
    tt_header th[TT__C_MAX_TRAILERS];
    int n = trailers_of(x, th, what);
    if (n < 0) return n;
    size_t need = tt_http1_chunk_last(p->sbuf, p->scap, th, (size_t)n);
    if (need > p->scap) { /* rare: trailers beyond a chunk's staging room */
        char *q = realloc(p->sbuf, need);
        if (!q) return -ENOMEM;
        p->sbuf = q;
        p->scap = need;
        tt_http1_chunk_last(p->sbuf, p->scap, th, (size_t)n);
    }
    p->soff = 0;
    p->slen = need;
    p->flags |= TT__XF_STREAM_EOF;
    return 0;
}

/* Fill the streamed-body staging buffer with the next piece: a chunk (chunked), or raw bytes
 * counted against body_stream_len. 0, -EAGAIN (TT__XF_BODY_WAIT set), or -errno with *what. */
static int stream_fill(tt_exchange *x, const char **what)
{
    tt__xpriv *p = tt__xp(x);
    int cl = x->body_stream_len > 0;
    if (!p->sbuf) {
        p->sbuf = malloc(TT__C_READ_CHUNK + 32);
        if (!p->sbuf) return -ENOMEM;
        p->scap = TT__C_READ_CHUNK + 32;
    }
    size_t cap = TT__C_READ_CHUNK;
    if (cl && (unsigned long long)p->sremain < cap)
        cap = p->sremain ? (size_t)p->sremain : 1; /* 1: only its end (0) is expected now */
    *what = "request body";
    ssize_t n = x->body_read(x->body_data, p->sbuf + 20, cap);
    if (n == -EAGAIN) {
        p->flags |= TT__XF_BODY_WAIT;
        return -EAGAIN;
    }
    if (n < 0) return (int)n;
    p->body_pulled = 1;
    if ((size_t)n > cap || (cl && n > 0 && p->sremain == 0)) {
        *what = "request body longer than announced";
        return -EPROTO;
    }
    if (n == 0 && !cl) return stream_last(x, what);
    if (n == 0) {
        if (p->sremain) {
            *what = "request body shorter than announced";
            return -EPROTO;
        }
        p->soff = p->slen = 0;
        p->flags |= TT__XF_STREAM_EOF;
        return 0;
    }
    if (cl) {
        p->sremain -= n;
        p->soff = 20;
        p->slen = 20 + (size_t)n;
        return 0;
    }
    char h[TT_HTTP1_CHUNK_HEADER_MAX];
    size_t hl = tt_http1_chunk_header(h, (uint64_t)n);
    p->soff = 20 - hl;
    memcpy(p->sbuf + p->soff, h, hl);
    memcpy(p->sbuf + 20 + n, "\r\n", 2);
    p->slen = 20 + (size_t)n + 2;
    return 0;
}

/* The writer finished its request: the next pipelined exchange (if any) writes next. */
static void sent_all(tt__conn *k)
{
    tt_exchange *x = k->w;
    tt__xp(x)->flags |= TT__XF_BODY_SENT;
    if (tt__xp(x)->phase == TT_X_SENDING) tt__x_set_phase(x, TT_X_READING);
    k->w = tt__h1_next(k, x);
}

/* The iovec of what x has left to write now (head, then body); n 0 when nothing. Returns
 * TT__H1_MORE, or WAIT_CONTINUE / FAIL, or -1 to go on (a new writer or a finished body). */
static int next_iov(tt__conn *k, tt_exchange *x, int expect, struct iovec *iov, int *n)
{
    tt__xpriv *p = tt__xp(x);
    int head_left = p->woff < p->wlen;
    *n = 0;
    if (head_left) {
        iov[*n].iov_base = p->wbuf + p->woff;
        iov[(*n)++].iov_len = p->wlen - p->woff;
    }
    int body_phase = !head_left && p->phase == TT_X_SENDING;
    if (!head_left && !(p->flags & TT__XF_HEAD_DONE)) {
        p->flags |= TT__XF_HEAD_DONE;
        if (expect && p->phase == TT_X_SENDING) {
            tt__x_set_phase(x, TT_X_WAIT_CONTINUE);
            return TT__H1_WAIT_CONTINUE;
        }
    }
    if (x->body && p->body_off < x->body_len && ((head_left && !expect) || body_phase)) {
        iov[*n].iov_base = (char *)x->body + p->body_off;
        iov[(*n)++].iov_len = x->body_len - p->body_off;
    } else if (x->body_read && !x->body && ((head_left && !expect) || body_phase)) {
        /* Streamed: the first piece goes out with the head when the producer has one at
         * once; when it has none the head goes out alone (the server sees the request). */
        if (p->soff == p->slen && !(p->flags & (TT__XF_STREAM_EOF | TT__XF_BODY_WAIT))) {
            const char *what = "request body";
            int r = stream_fill(x, &what);
            if (r < 0 && r != -EAGAIN) {
                p->flags |= TT__XF_BODY_ERR;
                k->err = r;
                k->what = what;
                return TT__H1_FAIL;
            }
        }
        if (p->soff < p->slen) {
            iov[*n].iov_base = p->sbuf + p->soff;
            iov[(*n)++].iov_len = p->slen - p->soff;
        } else if (!head_left && (p->flags & TT__XF_STREAM_EOF)) {
            sent_all(k);
            return -1;
        } else if (!head_left) {
            return TT__H1_MORE; /* waiting for tt_exchange_body_ready */
        }
    }
    if (*n == 0) {
        if (p->phase != TT_X_SENDING) return TT__H1_MORE;
        sent_all(k);
        return -1;
    }
    return 0;
}

int tt__h1_write(tt__conn *k)
{
    tt_exchange *x = k->w;
    if (!x) return TT__H1_MORE;
    int expect = x->expect_continue && (x->body || x->body_read) && !x->http10;
    for (;;) {
        if (x != k->w) { /* pipelining: the next request is written right behind */
            x = k->w;
            if (!x) return TT__H1_MORE;
            expect = 0;
        }
        struct iovec iov[2];
        int n;
        int r = next_iov(k, x, expect, iov, &n);
        if (r < 0) continue;
        if (r > 0 || n == 0) return r;
        ssize_t w = tt_stream_writev(&k->s, iov, n);
        if (w == -EAGAIN) return TT__H1_MORE; /* the next write edge resumes */
        if (w < 0) {
            k->err = (int)w;
            k->what = "send";
            return TT__H1_FAIL;
        }
        tt__xpriv *p = tt__xp(x);
        p->wrote += (size_t)w;
        size_t left = (size_t)w;
        if (p->woff < p->wlen) {
            size_t h = p->wlen - p->woff;
            size_t t = left < h ? left : h;
            p->woff += t;
            left -= t;
        }
        if (left) {
            if (x->body)
                p->body_off += left;
            else
                p->soff += left;
        }
    }
}

/* ---- reading ---- */

/* Deliver body bytes (-EFBIG past max_body_size). After on_body asked to stop, up to
 * TT__C_DRAIN_MAX more bytes are read and dropped so the connection can still be reused;
 * beyond that the exchange fails (-ECANCELED). TT_BODY_PAUSE from on_body sets
 * TT__XF_PAUSED: the readers stop after these bytes. */
static int deliver(tt_exchange *x, const char *b, size_t n)
{
    tt__xpriv *p = tt__xp(x);
    if (!n) return 0;
    long long max = p->client->o.max_body_size;
    p->body_seen += n;
    p->spd_bytes += n;
    if (max > 0 && p->body_seen > (uint64_t)max) return -EFBIG;
    if (p->flags & TT__XF_DISCARD) {
        p->drained += n;
        return p->drained > TT__C_DRAIN_MAX ? -ECANCELED : 0;
    }
    if (x->on_body) {
        p->flags |= TT__XF_IN_BODY;
        int r = x->on_body(x, b, n);
        p->flags &= ~TT__XF_IN_BODY;
        if (!r) return 0;
        if (r == TT_BODY_PAUSE) {
            p->flags |= TT__XF_PAUSED;
            return 0;
        }
        p->flags |= TT__XF_DISCARD;
        p->drained = 0;
        return 0;
    }
    if (grow32(&x->resp_body, &p->body_cap, x->resp_body_len + n + 1) < 0) return -ENOMEM;
    memcpy(x->resp_body + x->resp_body_len, b, n);
    x->resp_body_len += n;
    return 0;
}

/* Copy the final head into x->head with header spans. */
static int store_head(tt_exchange *x, tt__conn *k, const char *buf, size_t hl)
{
    if (grow32(&x->head, &tt__xp(x)->head_cap, hl + 1) < 0) return -ENOMEM;
    memcpy(x->head, buf, hl);
    x->head[hl] = 0;
    x->head_len = hl;
    x->status = k->resp.status;
    x->version_minor = k->resp.minor_version;
    x->nhdrs = (int)k->resp.num_headers;
    for (int i = 0; i < x->nhdrs; i++) {
        x->hdrs[i].name = (uint32_t)(k->hdr[i].name - buf);
        x->hdrs[i].name_len = (uint32_t)k->hdr[i].name_len;
        x->hdrs[i].value = (uint32_t)(k->hdr[i].value - buf);
        x->hdrs[i].value_len = (uint32_t)k->hdr[i].value_len;
    }
    return 0;
}

static int store_trailers(tt_exchange *x, tt__conn *k)
{
    size_t need = 1;
    for (size_t i = 0; i < k->cd.num_trailers; i++)
        need += k->trl[i].name_len + k->trl[i].value_len + 4;
    if (grow32(&x->trailers, &tt__xp(x)->trl_cap, need) < 0) return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < k->cd.num_trailers; i++) {
        memcpy(x->trailers + o, k->trl[i].name, k->trl[i].name_len);
        o += k->trl[i].name_len;
        memcpy(x->trailers + o, ": ", 2);
        o += 2;
        memcpy(x->trailers + o, k->trl[i].value, k->trl[i].value_len);
        o += k->trl[i].value_len;
        memcpy(x->trailers + o, "\r\n", 2);
        o += 2;
    }
    x->trailers[o] = 0;
    x->trailers_len = o;
    return 0;
}

static int fail(tt__conn *k, int err, const char *what)
{
    k->err = err;
    k->what = what;
    return TT__H1_FAIL;
}

/* A failure of deliver(). */
static int body_fail(tt__conn *k, int err)
{
    tt__xp(k->x)->resp_bytes = 1;
    return fail(k, err, err == -EFBIG ? "body too large" : "body aborted");
}

/* The final head of hl bytes is in k->rb: keep it, learn Keep-Alive, pick the body reader. */
static int final_head(tt__conn *k, tt_exchange *x, size_t hl)
{
    tt__xpriv *p = tt__xp(x);
    if (store_head(x, k, k->rb.data, hl) < 0) return fail(k, -ENOMEM, "memory");
    tt_buf_consume(&k->rb, hl);
    p->remain = 0;
    tt_http1_keepalive ka = {-1, -1};
    if (k->resp.flags & TT_HTTP1_F_KEEPALIVE_HDR) {
        size_t vl;
        const char *v = tt_exchange_header(x, "Keep-Alive", &vl);
        if (v) tt_http1_keepalive_parse(v, vl, &ka);
    }
    k->ka_timeout = ka.timeout;
    k->ka_max = ka.max;
    /* A final answer before the body was sent: the body is never sent. */
    if (p->phase == TT_X_WAIT_CONTINUE) tt__x_set_phase(x, TT_X_READING);
    if (k->c->o.verbose)
        tt__client_log_lines(k->c, "< ", x->head, x->head_len > 2 ? x->head_len - 2 : x->head_len);
    if (k->resp.body == TT_HTTP1_BODY_CHUNKED) {
        memset(&k->cd, 0, sizeof k->cd);
        k->cd.trailers = k->trl;
        k->cd.max_trailers = TT__C_MAX_TRAILERS;
        tt_http1_chunked_init(&k->cd);
    } else if (k->resp.body == TT_HTTP1_BODY_LENGTH) {
        p->remain = (long long)k->resp.content_length;
        long long max = k->c->o.max_body_size;
        if (max > 0 && k->resp.content_length > (uint64_t)max) {
            p->resp_bytes = 1;
            return fail(k, -EFBIG, "body too large");
        }
    }
    p->body_seen = 0;
    p->spd_bytes = 0;
    p->spd_at = tt_loop_now(k->c->loop);
    p->resp_bytes = 1;
    static const int framing[] = {
        [TT_HTTP1_BODY_NONE] = TT_FRAMING_NONE,
        [TT_HTTP1_BODY_LENGTH] = TT_FRAMING_LENGTH,
        [TT_HTTP1_BODY_CHUNKED] = TT_FRAMING_CHUNKED,
        [TT_HTTP1_BODY_CLOSE] = TT_FRAMING_CLOSE,
    };
    x->resp_framing = framing[k->resp.body];
    if (x->on_head && x->on_head(x)) return fail(k, -ECANCELED, "aborted by on_head");
    return TT__H1_MORE;
}

/* Parse the head. MORE with x->status set when the final head is in; MORE with status 0 when
 * more input is needed; CONTINUE, FAIL. */
static int read_head(tt__conn *k, tt_exchange *x, int eof)
{
    for (;;) {
        int r = tt_http1_parse_response(&k->parser, k->rb.data, k->rb.len,
                                        (tt_http1_method)tt__xp(x)->method_id, &k->resp);
        if (r == -2) {
            if (!eof) return TT__H1_MORE;
            return k->rb.len ? fail(k, -EPROTO, "truncated response head")
                             : fail(k, -ECONNRESET, "connection closed");
        }
        if (r < 0) return fail(k, -EPROTO, tt_http1_error_name(k->parser.error));
        if (k->resp.status >= 200) return final_head(k, x, (size_t)r);
        x->informational++;
        int st = k->resp.status;
        if (st == 101) return fail(k, -EPROTO, "unexpected 101 Switching Protocols");
        tt__xp(x)->resp_bytes = 1; /* the server is at work: never replayed from here */
        if (x->on_info && x->on_info(x, st, k->rb.data, (size_t)r))
            return fail(k, -ECANCELED, "aborted by on_info");
        tt_buf_consume(&k->rb, (size_t)r);
        tt__h1_reset(k);
        if (st == 100 && tt__xp(x)->phase == TT_X_WAIT_CONTINUE) return TT__H1_CONTINUE;
    }
}

/* Body delimited by Content-Length. */
static int body_length(tt__conn *k, tt_exchange *x, int eof)
{
    tt__xpriv *p = tt__xp(x);
    size_t n = k->rb.len < (unsigned long long)p->remain ? k->rb.len : (size_t)p->remain;
    int e = deliver(x, k->rb.data, n);
    if (e < 0) return body_fail(k, e);
    tt_buf_consume(&k->rb, n);
    p->remain -= (long long)n;
    if (p->remain == 0) return TT__H1_DONE;
    if (eof) {
        p->resp_bytes = 1;
        return fail(k, -EPROTO, "connection closed mid-body");
    }
    return (p->flags & TT__XF_PAUSED) ? TT__H1_PAUSED : TT__H1_MORE;
}

/* Chunked body, decoded in place. */
static int body_chunked(tt__conn *k, tt_exchange *x, int eof)
{
    size_t out = 0;
    long r = tt_http1_chunked_decode(&k->cd, k->rb.data, k->rb.len, &out);
    if (r < 0) {
        tt__xp(x)->resp_bytes = 1;
        return fail(k, -EPROTO, tt_http1_error_name(k->cd.error));
    }
    int e = deliver(x, k->rb.data, out);
    if (e < 0) return body_fail(k, e);
    if (k->cd.done && store_trailers(x, k) < 0) return fail(k, -ENOMEM, "memory");
    tt_buf_consume(&k->rb, (size_t)r);
    if (k->cd.done) return TT__H1_DONE;
    if (eof) {
        tt__xp(x)->resp_bytes = 1;
        return fail(k, -EPROTO, "connection closed mid-body");
    }
    return (tt__xp(x)->flags & TT__XF_PAUSED) ? TT__H1_PAUSED : TT__H1_MORE;
}

int tt__h1_process(tt__conn *k, int eof)
{
    tt_exchange *x = k->x;
    if (tt__xp(x)->flags & TT__XF_PAUSED) return TT__H1_PAUSED;
    if (x->status == 0) {
        int r = read_head(k, x, eof);
        if (r != TT__H1_MORE || x->status == 0) return r;
    }
    switch (k->resp.body) {
    case TT_HTTP1_BODY_NONE: return TT__H1_DONE;
    case TT_HTTP1_BODY_LENGTH: return body_length(k, x, eof);
    case TT_HTTP1_BODY_CHUNKED: return body_chunked(k, x, eof);
    case TT_HTTP1_BODY_CLOSE: {
        int e = deliver(x, k->rb.data, k->rb.len);
        if (e < 0) return body_fail(k, e);
        tt_buf_consume(&k->rb, k->rb.len);
        if (eof) return TT__H1_DONE_CLOSE;
        return (tt__xp(x)->flags & TT__XF_PAUSED) ? TT__H1_PAUSED : TT__H1_MORE;
    }
    }
    return TT__H1_MORE;
}
