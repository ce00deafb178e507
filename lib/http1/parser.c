/* parser.c — the HTTP/1.1 head parser's entry points and its driver (RFC 9112).
 *
 * A head is parsed in parts, each in its own file and each resumable: the start line
 * (request_line.c, status_line.c), the field section (fields.c, one field-line grammar shared
 * with chunked trailers: field_line.h) and the framing decision (framing.c). The driver here
 * resets or rebases the results, skips empty lines before the start line, runs the parts from
 * the state the previous call stopped in, and applies the limits. Only offsets are kept in
 * tt_http1_parser, so the caller may move its buffer between calls (stored pointers are
 * rebased) and bytes already accepted are never scanned again. */
#include <string.h>

#include "common/api.h"
#include "http1/head.h"
#include "tether/http1.h"

static const struct {
    const char *name;
    int status;
} errinfo[TT_HTTP1_E__COUNT] = {
    [TT_HTTP1_OK] = {"ok", 200},
    [TT_HTTP1_E_METHOD] = {"bad_method", 400},
    [TT_HTTP1_E_TARGET] = {"bad_target", 400},
    [TT_HTTP1_E_VERSION] = {"bad_version", 400},
    [TT_HTTP1_E_VERSION_UNSUPPORTED] = {"version_not_supported", 505},
    [TT_HTTP1_E_REQUEST_LINE] = {"bad_request_line", 400},
    [TT_HTTP1_E_STATUS_LINE] = {"bad_status_line", 400},
    [TT_HTTP1_E_EOL] = {"bare_cr_or_lf", 400},
    [TT_HTTP1_E_HEADER_NAME] = {"bad_header_name", 400},
    [TT_HTTP1_E_SPACE_BEFORE_COLON] = {"space_before_colon", 400},
    [TT_HTTP1_E_OBS_FOLD] = {"obs_fold", 400},
    [TT_HTTP1_E_HEADER_VALUE] = {"bad_header_value", 400},
    [TT_HTTP1_E_URI_TOO_LONG] = {"uri_too_long", 414},
    [TT_HTTP1_E_HEAD_TOO_LARGE] = {"head_too_large", 431},
    [TT_HTTP1_E_TOO_MANY_HEADERS] = {"too_many_headers", 431},
    [TT_HTTP1_E_HOST_MISSING] = {"host_missing", 400},
    [TT_HTTP1_E_HOST_DUPLICATE] = {"host_duplicate", 400},
    [TT_HTTP1_E_HOST_INVALID] = {"host_invalid", 400},
    [TT_HTTP1_E_CONTENT_LENGTH] = {"bad_content_length", 400},
    [TT_HTTP1_E_CONTENT_LENGTH_CONFLICT] = {"content_length_conflict", 400},
    [TT_HTTP1_E_TE_WITH_CL] = {"te_with_content_length", 400},
    [TT_HTTP1_E_TE_HTTP10] = {"te_in_http10", 400},
    [TT_HTTP1_E_TE_NOT_CHUNKED] = {"te_not_chunked", 400},
    [TT_HTTP1_E_TE_UNKNOWN] = {"te_unknown_coding", 501},
    [TT_HTTP1_E_BODY_TOO_LARGE] = {"body_too_large", 413},
    [TT_HTTP1_E_CHUNK_SIZE] = {"bad_chunk_size", 400},
    [TT_HTTP1_E_CHUNK_EXT] = {"bad_chunk_extension", 400},
    [TT_HTTP1_E_CHUNK_EOL] = {"bad_chunk_eol", 400},
    [TT_HTTP1_E_TRAILER] = {"bad_trailer", 400},
    [TT_HTTP1_E_TRAILER_TOO_LARGE] = {"trailer_too_large", 431},
    [TT_HTTP1_E_UPGRADE] = {"bad_upgrade", 400},
    [TT_HTTP1_E_METHOD_TOO_LONG] = {"method_not_implemented", 501},
};

TT_API const char *tt_http1_error_name(tt_http1_error e)
{
    if ((unsigned)e >= TT_HTTP1_E__COUNT) return "unknown";
    return errinfo[e].name;
}

TT_API int tt_http1_error_status(tt_http1_error e)
{
    if ((unsigned)e >= TT_HTTP1_E__COUNT) return 400;
    return errinfo[e].status;
}

TT_API void tt_http1_parser_init(tt_http1_parser *p, const tt_http1_limits *limits)
{
    memset(p, 0, sizeof(*p));
    if (limits) p->limits = *limits;
}

static inline const char *rebase(const char *ptr, uintptr_t delta)
{
    return ptr ? (const char *)((uintptr_t)ptr + delta) : ptr;
}

/* Reset the results for a fresh message, or rebase the pointers already stored in them when
 * the buffer moved since the previous call. */
static void begin(tt__head *h)
{
    tt_http1_parser *p = h->p;
    tt_http1_request *rq = h->rq;
    tt_http1_response *rs = h->rs;
    if (p->state == S_START && p->pos == 0) {
        if (rq) {
            rq->method = rq->target = rq->host = NULL;
            rq->method_len = rq->target_len = rq->host_len = 0;
            rq->minor_version = 0;
            rq->method_id = TT_HTTP1_M_OTHER;
            rq->target_form = TT_HTTP1_TARGET_ORIGIN;
            rq->body = TT_HTTP1_BODY_NONE;
        } else {
            rs->minor_version = rs->status = 0;
            rs->reason = NULL;
            rs->reason_len = 0;
            rs->body = TT_HTTP1_BODY_NONE;
            p->flags |= PF_RESPONSE;
        }
        *h->flags = 0;
        *h->cl = 0;
        p->nhdr = 0;
    } else if ((uintptr_t)h->buf != p->base) {
        uintptr_t d = (uintptr_t)h->buf - p->base;
        for (uint32_t i = 0; i < p->nhdr; i++) {
            h->hdr[i].name = rebase(h->hdr[i].name, d);
            h->hdr[i].value = rebase(h->hdr[i].value, d);
        }
        if (p->state == S_OWS || p->state == S_VALUE || p->state == S_VALUE_LF)
            h->hdr[p->nhdr].name = rebase(h->hdr[p->nhdr].name, d);
        *h->host = rebase(*h->host, d);
        if (rq) {
            rq->method = rebase(rq->method, d);
            rq->target = rebase(rq->target, d);
        } else {
            rs->reason = rebase(rs->reason, d);
        }
    }
    p->base = (uintptr_t)h->buf;
}

/* One call's view of the message: limits, bounds, where the results go. */
static void setup(tt__head *h, tt_http1_parser *p, const char *buf, size_t len,
                  tt_http1_request *rq, tt_http1_response *rs)
{
    h->p = p;
    h->buf = buf;
    h->rq = rq;
    h->rs = rs;
    h->hdr = rq ? rq->headers : rs->headers;
    h->flags = rq ? &rq->flags : &rs->flags;
    h->cl = rq ? &rq->content_length : &rs->content_length;
    h->host = rq ? &rq->host : &h->no_host;
    h->host_len = rq ? &rq->host_len : &h->no_host_len;
    h->no_host = NULL;
    h->no_host_len = 0;
    h->err = TT_HTTP1_OK;
    const tt_http1_limits *l = &p->limits;
    h->max_head = l->max_head ? l->max_head : TT_HTTP1_DEFAULT_MAX_HEAD;
    h->max_line = l->max_request_line ? l->max_request_line : TT_HTTP1_DEFAULT_MAX_REQUEST_LINE;
    h->max_fields = l->max_headers ? l->max_headers : TT_HTTP1_DEFAULT_MAX_HEADERS;
    size_t cap = rq ? rq->max_headers : rs->max_headers;
    if (cap < h->max_fields) h->max_fields = cap;
    /* Never look past the limits: the verdict must not depend on how input was split. */
    h->end = len < h->max_head ? len : h->max_head;
    h->lend = h->end < h->max_line ? h->end : h->max_line;
    h->scan = tt__http1_scan_ops();
}

/* S_START / S_START_LF: empty lines before the start line are ignored (RFC 9112 §2.2). */
static ptrdiff_t start(tt__head *h, size_t pos)
{
    tt_http1_parser *p = h->p;
    const char *buf = h->buf;
    for (;;) {
        if (p->state == S_START_LF) {
            if (pos >= h->lend) return tt__head_more(h, pos, S_START_LF);
            if (buf[pos] != '\n') return tt__head_fail(h, pos, TT_HTTP1_E_EOL);
            pos++;
            p->state = S_START;
        }
        if (pos >= h->lend) return tt__head_more(h, pos, S_START);
        if (buf[pos] != '\r') break;
        pos++;
        p->state = S_START_LF;
    }
    if (buf[pos] == '\n') return tt__head_fail(h, pos, TT_HTTP1_E_EOL);
    p->tok = p->pos = pos;
    p->state = h->rq ? S_METHOD : S_SL_VERSION;
    return (ptrdiff_t)pos;
}

/* S_LINE_LF: the LF ending the start line. */
static ptrdiff_t line_lf(tt__head *h, size_t pos)
{
    if (pos >= h->lend) return tt__head_more(h, pos, S_LINE_LF);
    if (h->buf[pos] != '\n') return tt__head_fail(h, pos, TT_HTTP1_E_EOL);
    h->p->pos = pos + 1;
    h->p->state = S_FIELD;
    return (ptrdiff_t)pos + 1;
}

/* Run the parts from where the previous call stopped; each hands the next its position. The
 * head's length, or TT__HEAD_MORE / TT__HEAD_FAIL. */
static ptrdiff_t run(tt__head *h, tt_http1_method req_method)
{
    tt_http1_parser *p = h->p;
    ptrdiff_t r = (ptrdiff_t)p->pos;
    if (p->state <= S_START_LF) r = start(h, (size_t)r);
    if (r >= 0 && p->state < S_LINE_LF)
        r = h->rq ? tt__http1_request_line(h, (size_t)r) : tt__http1_status_line(h, (size_t)r);
    if (r >= 0 && p->state == S_LINE_LF) r = line_lf(h, (size_t)r);
    if (r >= 0) r = tt__http1_fields(h, (size_t)r);
    if (r < 0) return r;
    tt_http1_error e =
        h->rq ? tt__http1_request_framing(h) : tt__http1_response_framing(h, req_method);
    return e ? tt__head_fail(h, (size_t)r, e) : r;
}

/* The shared head parse. Request results go to rq, response results to rs (one is NULL). */
static int parse_head(tt_http1_parser *p, const char *buf, size_t len, tt_http1_request *rq,
                      tt_http1_response *rs, tt_http1_method req_method)
{
    if (p->error) return -1;
    tt__head h;
    setup(&h, p, buf, len, rq, rs);
    begin(&h);
    ptrdiff_t r = run(&h, req_method);
    size_t *num = rq ? &rq->num_headers : &rs->num_headers;
    *num = p->nhdr;
    if (r >= 0) {
        p->state = S_START;
        p->pos = 0;
        p->nhdr = 0;
        p->flags = 0;
        return (int)r;
    }
    if (r == TT__HEAD_MORE) {
        /* the limit is reached and the line/head is not complete: it can only get longer */
        if (p->state <= S_LINE_LF && h.lend == h.max_line)
            h.err = rq ? TT_HTTP1_E_URI_TOO_LONG : TT_HTTP1_E_HEAD_TOO_LARGE;
        else if (h.end == h.max_head)
            h.err = TT_HTTP1_E_HEAD_TOO_LARGE;
        else
            return -2;
    }
    p->error = h.err;
    return -1;
}

TT_API int tt_http1_parse_request(tt_http1_parser *p, const char *buf, size_t len,
                                  tt_http1_request *r)
{
    return parse_head(p, buf, len, r, NULL, TT_HTTP1_M_OTHER);
}

TT_API int tt_http1_parse_response(tt_http1_parser *p, const char *buf, size_t len,
                                   tt_http1_method request_method, tt_http1_response *r)
{
    return parse_head(p, buf, len, NULL, r, request_method);
}
