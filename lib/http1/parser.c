/* parser.c — strict incremental request/response head parser with framing (RFC 9112).
 *
 * A resumable state machine: the state and a few offsets live in tt_http1_parser, so a call
 * continues exactly where the previous one stopped (no rescanning), and only offsets are kept
 * so that the caller may move its buffer between calls (stored pointers are rebased). */
#include <string.h>

#include "common/api.h"
#include "http1/chars.h"
#include "http1/internal.h"
#include "tether/http1.h"

enum {
    S_START = 0, /* before the start line (leading CRLFs skipped) */
    S_START_LF,  /* CR seen before the start line */
    S_METHOD,
    S_TARGET,
    S_VERSION,
    S_SL_VERSION, /* response: "HTTP/x.y " */
    S_SL_STATUS,
    S_SL_REASON,
    S_LINE_LF, /* CR seen at the end of the start line */
    S_FIELD,   /* at the start of a field line or the final CRLF */
    S_NAME,
    S_OWS,
    S_VALUE,
    S_VALUE_LF,
    S_END_LF,
};

/* Internal p->flags bits. */
enum {
    PF_RESPONSE = 1u << 0,
    PF_TE_CHUNKED_LAST = 1u << 1, /* last transfer coding so far is chunked */
    PF_TE_NOT_FINAL = 1u << 2,    /* chunked followed by another coding */
    PF_TE_OTHER = 1u << 3,        /* a coding other than chunked before chunked */
    PF_TE_BAD = 1u << 4,          /* malformed transfer-coding element */
    PF_HOST = 1u << 5,
    PF_UPGRADE_HDR = 1u << 6,
};

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

TT_API tt_http1_method tt_http1_method_id(const char *m, size_t n)
{
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3)) return TT_HTTP1_M_GET;
        if (!memcmp(m, "PUT", 3)) return TT_HTTP1_M_PUT;
        break;
    case 4:
        if (!memcmp(m, "HEAD", 4)) return TT_HTTP1_M_HEAD;
        if (!memcmp(m, "POST", 4)) return TT_HTTP1_M_POST;
        break;
    case 5:
        if (!memcmp(m, "PATCH", 5)) return TT_HTTP1_M_PATCH;
        if (!memcmp(m, "TRACE", 5)) return TT_HTTP1_M_TRACE;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6)) return TT_HTTP1_M_DELETE;
        break;
    case 7:
        if (!memcmp(m, "CONNECT", 7)) return TT_HTTP1_M_CONNECT;
        if (!memcmp(m, "OPTIONS", 7)) return TT_HTTP1_M_OPTIONS;
        break;
    }
    return TT_HTTP1_M_OTHER;
}

TT_API const tt_header *tt_http1_find_header(const tt_header *h, size_t n, const char *name,
                                             size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len != name_len) continue;
        size_t k = 0;
        while (k < name_len &&
               tt__http1_lower[(uint8_t)h[i].name[k]] == tt__http1_lower[(uint8_t)name[k]])
            k++;
        if (k == name_len) return &h[i];
    }
    return NULL;
}

/* Content-Length value: 1*DIGIT, or a comma list of identical 1*DIGIT (RFC 9110 §8.6).
 * Returns 0 and *out, or -1. Overflow bound: INT64_MAX (fits off_t). */
int tt__http1_parse_content_length(const char *v, size_t n, uint64_t *out)
{
    size_t i = 0;
    int have = 0;
    uint64_t first = 0;
    for (;;) {
        while (i < n && TT__IS(v[i], TT__C_OWS))
            i++;
        if (i == n || !TT__IS(v[i], TT__C_DIGIT)) return -1;
        uint64_t x = 0;
        while (i < n && TT__IS(v[i], TT__C_DIGIT)) {
            unsigned d = (unsigned)(v[i] - '0');
            if (x > (UINT64_C(0x7fffffffffffffff) - d) / 10) return -1;
            x = x * 10 + d;
            i++;
        }
        if (have && x != first) return -2;
        first = x;
        have = 1;
        while (i < n && TT__IS(v[i], TT__C_OWS))
            i++;
        if (i == n) break;
        if (v[i] != ',') return -1;
        i++;
    }
    *out = first;
    return 0;
}

/* uri-host [ ":" port ] without userinfo (RFC 9110 §7.2, RFC 3986 §3.2). Empty is valid. */
int tt__http1_valid_host(const char *v, size_t n, int need_port)
{
    size_t i = 0;
    if (n == 0) return !need_port;
    if (v[0] == '[') {
        i = 1;
        while (i < n && v[i] != ']') {
            char c = v[i];
            if (!(TT__IS(c, TT__C_HEX) || c == ':' || c == '.' || c == 'v' || c == 'V')) return 0;
            i++;
        }
        if (i == n || i == 1) return 0;
        i++;
    } else {
        while (i < n && v[i] != ':') {
            if (!TT__IS(v[i], TT__C_HOST) || v[i] == '[' || v[i] == ']') return 0;
            i++;
        }
        if (i == 0 && need_port) return 0;
    }
    if (i == n) return !need_port;
    if (v[i] != ':') return 0;
    i++;
    if (i == n) return !need_port; /* "host:" is allowed by the grammar (port = *DIGIT) */
    for (; i < n; i++)
        if (!TT__IS(v[i], TT__C_DIGIT)) return 0;
    return 1;
}

/* Iterate a comma-separated list: next element (OWS-trimmed, empty elements skipped). */
static int list_next(const char *v, size_t n, size_t *i, const char **e, size_t *en)
{
    size_t k = *i;
    for (;;) {
        while (k < n && (TT__IS(v[k], TT__C_OWS) || v[k] == ','))
            k++;
        if (k == n) {
            *i = k;
            return 0;
        }
        size_t s = k;
        while (k < n && v[k] != ',')
            k++;
        size_t t = k;
        while (t > s && TT__IS(v[t - 1], TT__C_OWS))
            t--;
        *e = v + s;
        *en = t - s;
        *i = k;
        return 1;
    }
}

static int is_token(const char *e, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!TT__IS(e[i], TT__C_TCHAR)) return 0;
    return 1;
}

static void conn_tokens(const char *v, size_t n, uint32_t *flags)
{
    size_t i = 0;
    const char *e;
    size_t en;
    while (list_next(v, n, &i, &e, &en)) {
        if (TT__IEQ(e, en, "close"))
            *flags |= TT_HTTP1_F_CONN_CLOSE;
        else if (TT__IEQ(e, en, "keep-alive"))
            *flags |= TT_HTTP1_F_CONN_KEEPALIVE;
        else if (TT__IEQ(e, en, "upgrade"))
            *flags |= TT_HTTP1_F_CONN_UPGRADE;
    }
}

static void te_codings(const char *v, size_t n, uint32_t *pf)
{
    size_t i = 0;
    const char *e;
    size_t en;
    int any = 0;
    while (list_next(v, n, &i, &e, &en)) {
        any = 1;
        if (*pf & PF_TE_CHUNKED_LAST) *pf |= PF_TE_NOT_FINAL;
        if (TT__IEQ(e, en, "chunked")) {
            *pf |= PF_TE_CHUNKED_LAST;
        } else {
            *pf &= ~(uint32_t)PF_TE_CHUNKED_LAST;
            if (!is_token(e, en)) {
                /* transfer-coding parameters ("gzip;q=1") are tokens too; anything else is bad */
                size_t k = 0;
                while (k < en && TT__IS(e[k], TT__C_TCHAR))
                    k++;
                if (k == 0 || e[k] != ';') *pf |= PF_TE_BAD;
            }
            *pf |= PF_TE_OTHER;
        }
    }
    if (!any) *pf |= PF_TE_BAD; /* an empty Transfer-Encoding is not a valid coding list */
}

/* Apply one accepted field to the framing state. Returns 0 or an error. */
static tt_http1_error field_semantics(tt_http1_parser *p, const tt_header *h, uint32_t *flags,
                                      uint64_t *cl, const char **host, size_t *host_len)
{
    const char *nm = h->name;
    switch (h->name_len) {
    case 4:
        if (!(p->flags & PF_RESPONSE) && TT__IEQ(nm, 4, "host")) {
            if (p->flags & PF_HOST) return TT_HTTP1_E_HOST_DUPLICATE;
            p->flags |= PF_HOST;
            if (!tt__http1_valid_host(h->value, h->value_len, 0)) return TT_HTTP1_E_HOST_INVALID;
            *host = h->value;
            *host_len = h->value_len;
        }
        break;
    case 6:
        if (TT__IEQ(nm, 6, "expect")) {
            if (TT__IEQ(h->value, h->value_len, "100-continue"))
                *flags |= TT_HTTP1_F_EXPECT_CONTINUE;
            else
                *flags |= TT_HTTP1_F_EXPECT_OTHER;
        }
        break;
    case 7:
        if (TT__IEQ(nm, 7, "upgrade") && h->value_len) p->flags |= PF_UPGRADE_HDR;
        break;
    case 10:
        if (TT__IEQ(nm, 10, "connection"))
            conn_tokens(h->value, h->value_len, flags);
        else if (TT__IEQ(nm, 10, "keep-alive"))
            *flags |= TT_HTTP1_F_KEEPALIVE_HDR;
        break;
    case 14:
        if (TT__IEQ(nm, 14, "content-length")) {
            uint64_t x;
            int rc = tt__http1_parse_content_length(h->value, h->value_len, &x);
            if (rc == -2) return TT_HTTP1_E_CONTENT_LENGTH_CONFLICT;
            if (rc) return TT_HTTP1_E_CONTENT_LENGTH;
            if ((*flags & TT_HTTP1_F_HAS_CL) && x != *cl) return TT_HTTP1_E_CONTENT_LENGTH_CONFLICT;
            *flags |= TT_HTTP1_F_HAS_CL;
            *cl = x;
        }
        break;
    case 17:
        if (TT__IEQ(nm, 17, "transfer-encoding")) {
            *flags |= TT_HTTP1_F_HAS_TE;
            te_codings(h->value, h->value_len, &p->flags);
        }
        break;
    }
    return TT_HTTP1_OK;
}

static inline const char *rebase(const char *ptr, uintptr_t delta)
{
    return ptr ? (const char *)((uintptr_t)ptr + delta) : ptr;
}

/* The shared head machine. Request fields go to rq, response fields to rs (one is NULL). */
static int parse_head(tt_http1_parser *p, const char *buf, size_t len, tt_http1_request *rq,
                      tt_http1_response *rs, tt_http1_method req_method)
{
    tt_header *hdr;
    size_t cap;
    uint32_t *flags;
    uint64_t *cl;
    tt_http1_error err = TT_HTTP1_OK;
    const char *dummy_host = NULL;
    size_t dummy_host_len = 0;
    const char **host = &dummy_host;
    size_t *host_len = &dummy_host_len;

    if (rq) {
        hdr = rq->headers;
        cap = rq->max_headers;
        flags = &rq->flags;
        cl = &rq->content_length;
        host = &rq->host;
        host_len = &rq->host_len;
    } else {
        hdr = rs->headers;
        cap = rs->max_headers;
        flags = &rs->flags;
        cl = &rs->content_length;
    }
    if (p->error) return -1;

    size_t max_head = p->limits.max_head ? p->limits.max_head : TT_HTTP1_DEFAULT_MAX_HEAD;
    size_t max_line =
        p->limits.max_request_line ? p->limits.max_request_line : TT_HTTP1_DEFAULT_MAX_REQUEST_LINE;
    size_t max_fields =
        p->limits.max_headers ? p->limits.max_headers : TT_HTTP1_DEFAULT_MAX_HEADERS;
    if (cap < max_fields) max_fields = cap;

    if (p->state == S_START && p->pos == 0) {
        /* fresh message: reset the outputs */
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
        *flags = 0;
        *cl = 0;
        p->nhdr = 0;
    } else if ((uintptr_t)buf != p->base) {
        uintptr_t d = (uintptr_t)buf - p->base;
        for (uint32_t i = 0; i < p->nhdr; i++) {
            hdr[i].name = rebase(hdr[i].name, d);
            hdr[i].value = rebase(hdr[i].value, d);
        }
        if (p->state == S_OWS || p->state == S_VALUE || p->state == S_VALUE_LF)
            hdr[p->nhdr].name = rebase(hdr[p->nhdr].name, d);
        *host = rebase(*host, d);
        if (rq) {
            rq->method = rebase(rq->method, d);
            rq->target = rebase(rq->target, d);
        } else {
            rs->reason = rebase(rs->reason, d);
        }
    }
    p->base = (uintptr_t)buf;

    size_t pos = p->pos;
    /* Never look past the limits: the verdict must not depend on how input was split. */
    size_t end = len < max_head ? len : max_head;
    size_t lend = end < max_line ? end : max_line; /* bound while in the start line */

#define NEED_MORE()                                                                                \
    do {                                                                                           \
        goto incomplete;                                                                           \
    } while (0)
#define FAIL(e)                                                                                    \
    do {                                                                                           \
        err = (e);                                                                                 \
        goto fail;                                                                                 \
    } while (0)

    switch (p->state) {
    case S_START:
    start:
        if (pos >= lend) NEED_MORE();
        if (buf[pos] == '\r') {
            /* RFC 9112 §2.2: empty lines before the start line are ignored */
            pos++;
            p->state = S_START_LF;
            goto start_lf;
        }
        if (buf[pos] == '\n') FAIL(TT_HTTP1_E_EOL);
        p->tok = pos;
        if (rs) {
            p->state = S_SL_VERSION;
            goto sl_version;
        }
        p->state = S_METHOD;
        goto method;
    case S_START_LF:
    start_lf:
        if (pos >= lend) NEED_MORE();
        if (buf[pos] != '\n') FAIL(TT_HTTP1_E_EOL);
        pos++;
        p->state = S_START;
        goto start;

    case S_METHOD:
    method:
        while (pos < lend && TT__IS(buf[pos], TT__C_TCHAR))
            pos++;
        if (pos >= lend) NEED_MORE();
        if (buf[pos] != ' ' || pos == p->tok) FAIL(TT_HTTP1_E_METHOD);
        rq->method = buf + p->tok;
        rq->method_len = pos - p->tok;
        rq->method_id = tt_http1_method_id(rq->method, rq->method_len);
        pos++;
        p->tok = pos;
        p->state = S_TARGET;
        /* fall through */
    case S_TARGET:
        pos = tt__skip_target(buf, pos, lend);
        while (pos < lend && TT__IS(buf[pos], TT__C_TARGET))
            pos++;
        if (pos >= lend) NEED_MORE();
        if (buf[pos] != ' ')
            FAIL(buf[pos] == '\r' || buf[pos] == '\n' ? TT_HTTP1_E_REQUEST_LINE
                                                      : TT_HTTP1_E_TARGET);
        if (pos == p->tok) FAIL(TT_HTTP1_E_REQUEST_LINE);
        {
            const char *t = buf + p->tok;
            size_t tn = pos - p->tok;
            rq->target = t;
            rq->target_len = tn;
            if (rq->method_id == TT_HTTP1_M_CONNECT) {
                /* RFC 9110 §9.3.6: authority-form only, host:port, no userinfo */
                if (!tt__http1_valid_host(t, tn, 1)) FAIL(TT_HTTP1_E_TARGET);
                rq->target_form = TT_HTTP1_TARGET_AUTHORITY;
            } else if (t[0] == '/') {
                rq->target_form = TT_HTTP1_TARGET_ORIGIN;
            } else if (tn == 1 && t[0] == '*') {
                if (rq->method_id != TT_HTTP1_M_OPTIONS) FAIL(TT_HTTP1_E_TARGET);
                rq->target_form = TT_HTTP1_TARGET_ASTERISK;
            } else {
                /* absolute-form: scheme ":" hier-part (RFC 3986 §3.1) */
                size_t k = 0;
                if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z')) FAIL(TT_HTTP1_E_TARGET);
                while (k < tn && (TT__IS(t[k], TT__C_DIGIT) ||
                                  ((t[k] | 0x20) >= 'a' && (t[k] | 0x20) <= 'z') || t[k] == '+' ||
                                  t[k] == '-' || t[k] == '.'))
                    k++;
                /* an HTTP request's absolute-form is scheme "://" authority path-abempty */
                if (tn - k < 3 || memcmp(t + k, "://", 3)) FAIL(TT_HTTP1_E_TARGET);
                k += 3;
                size_t as = k;
                while (k < tn && t[k] != '/' && t[k] != '?' && t[k] != '#')
                    k++;
                /* RFC 9110 §4.2.4: userinfo is an error; the authority must be a valid host */
                if (!tt__http1_valid_host(t + as, k - as, 0) || k == as) FAIL(TT_HTTP1_E_TARGET);
                rq->target_form = TT_HTTP1_TARGET_ABSOLUTE;
            }
        }
        pos++;
        p->tok = pos;
        p->state = S_VERSION;
        /* fall through */
    case S_VERSION:
        /* "HTTP/" DIGIT "." DIGIT CR (the LF is checked in S_LINE_LF); a well-formed version
         * other than 1.0/1.1 is answered 505 as soon as its 8 bytes are there */
        if (lend - pos >= 8 && lend - pos < 9) {
            const char *v = buf + pos;
            if (!memcmp(v, "HTTP/", 5) && TT__IS(v[5], TT__C_DIGIT) && v[6] == '.' &&
                TT__IS(v[7], TT__C_DIGIT) && (v[5] != '1' || (v[7] != '0' && v[7] != '1')))
                FAIL(TT_HTTP1_E_VERSION_UNSUPPORTED);
        }
        if (lend - pos < 9) {
            /* validate what is there so an early byte error does not wait for more input */
            static const char pre[] = "HTTP/";
            for (size_t k = pos; k < lend && k - pos < 5; k++)
                if (buf[k] != pre[k - pos]) FAIL(TT_HTTP1_E_VERSION);
            if (lend == max_line) goto line_too_long;
            NEED_MORE();
        }
        {
            const char *v = buf + pos;
            if (memcmp(v, "HTTP/", 5) || !TT__IS(v[5], TT__C_DIGIT) || v[6] != '.' ||
                !TT__IS(v[7], TT__C_DIGIT))
                FAIL(TT_HTTP1_E_VERSION);
            if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) FAIL(TT_HTTP1_E_VERSION_UNSUPPORTED);
            if (v[8] != '\r') FAIL(v[8] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_VERSION);
            rq->minor_version = v[7] - '0';
            pos += 9;
        }
        p->state = S_LINE_LF;
        goto line_lf;

    case S_SL_VERSION:
    sl_version:
        if (lend - pos < 9) {
            static const char pre[] = "HTTP/";
            for (size_t k = pos; k < lend && k - pos < 5; k++)
                if (buf[k] != pre[k - pos]) FAIL(TT_HTTP1_E_VERSION);
            if (lend == max_line) goto line_too_long;
            NEED_MORE();
        }
        {
            const char *v = buf + pos;
            if (memcmp(v, "HTTP/", 5) || !TT__IS(v[5], TT__C_DIGIT) || v[6] != '.' ||
                !TT__IS(v[7], TT__C_DIGIT))
                FAIL(TT_HTTP1_E_VERSION);
            if (v[8] != ' ') FAIL(TT_HTTP1_E_STATUS_LINE);
            if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) FAIL(TT_HTTP1_E_VERSION_UNSUPPORTED);
            rs->minor_version = v[7] - '0';
            pos += 9;
        }
        p->state = S_SL_STATUS;
        /* fall through */
    case S_SL_STATUS:
        if (lend - pos < 4) {
            for (size_t k = pos; k < lend && k - pos < 3; k++)
                if (!TT__IS(buf[k], TT__C_DIGIT)) FAIL(TT_HTTP1_E_STATUS_LINE);
            if (lend == max_line) goto line_too_long;
            NEED_MORE();
        }
        {
            const char *v = buf + pos;
            if (!TT__IS(v[0], TT__C_DIGIT) || !TT__IS(v[1], TT__C_DIGIT) ||
                !TT__IS(v[2], TT__C_DIGIT) || v[0] == '0')
                FAIL(TT_HTTP1_E_STATUS_LINE);
            rs->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
            if (rs->status < 100) FAIL(TT_HTTP1_E_STATUS_LINE);
            if (v[3] == '\r') {
                /* tolerated: no SP and no reason ("HTTP/1.1 200\r\n") */
                pos += 4;
                rs->reason = buf + pos - 1;
                rs->reason_len = 0;
                p->state = S_LINE_LF;
                goto line_lf;
            }
            if (v[3] != ' ') FAIL(v[3] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_STATUS_LINE);
            pos += 4;
            p->tok = pos;
        }
        p->state = S_SL_REASON;
        /* fall through */
    case S_SL_REASON:
        /* reason-phrase = *( HTAB / SP / VCHAR / obs-text ) */
        while (pos < lend && TT__IS(buf[pos], TT__C_VALUE | TT__C_OWS))
            pos++;
        if (pos >= lend) NEED_MORE();
        if (buf[pos] != '\r') FAIL(buf[pos] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_STATUS_LINE);
        rs->reason = buf + p->tok;
        rs->reason_len = pos - p->tok;
        pos++;
        p->state = S_LINE_LF;
        /* fall through */
    case S_LINE_LF:
    line_lf:
        if (pos >= lend) NEED_MORE();
        if (buf[pos] != '\n') FAIL(TT_HTTP1_E_EOL);
        pos++;
        p->state = S_FIELD;
        /* fall through */
    case S_FIELD:
    field:
        if (pos >= end) NEED_MORE();
        {
            char c = buf[pos];
            if (c == '\r') {
                pos++;
                p->state = S_END_LF;
                goto end_lf;
            }
            if (TT__IS(c, TT__C_OWS)) FAIL(TT_HTTP1_E_OBS_FOLD);
            if (c == '\n') FAIL(TT_HTTP1_E_EOL);
            if (!TT__IS(c, TT__C_TCHAR)) FAIL(TT_HTTP1_E_HEADER_NAME);
            if (p->nhdr >= max_fields) FAIL(TT_HTTP1_E_TOO_MANY_HEADERS);
        }
        p->tok = pos;
        p->state = S_NAME;
        /* fall through */
    case S_NAME:
        while (pos < end && TT__IS(buf[pos], TT__C_TCHAR))
            pos++;
        if (pos >= end) NEED_MORE();
        if (buf[pos] != ':') {
            if (TT__IS(buf[pos], TT__C_OWS)) FAIL(TT_HTTP1_E_SPACE_BEFORE_COLON);
            if (buf[pos] == '\r' || buf[pos] == '\n') FAIL(TT_HTTP1_E_HEADER_NAME);
            FAIL(TT_HTTP1_E_HEADER_NAME);
        }
        hdr[p->nhdr].name = buf + p->tok;
        hdr[p->nhdr].name_len = pos - p->tok;
        pos++;
        p->state = S_OWS;
        /* fall through */
    case S_OWS:
        while (pos < end && TT__IS(buf[pos], TT__C_OWS))
            pos++;
        if (pos >= end) NEED_MORE();
        p->tok = pos;
        p->state = S_VALUE;
        /* fall through */
    case S_VALUE:
        /* the hot loop: field-vchar, SP and HTAB */
        {
            const uint8_t *b = (const uint8_t *)buf;
            pos = tt__skip_value(buf, pos, end);
            while (pos + 4 <= end && TT__IS(b[pos], TT__C_VALUE | TT__C_OWS) &&
                   TT__IS(b[pos + 1], TT__C_VALUE | TT__C_OWS) &&
                   TT__IS(b[pos + 2], TT__C_VALUE | TT__C_OWS) &&
                   TT__IS(b[pos + 3], TT__C_VALUE | TT__C_OWS))
                pos += 4;
            while (pos < end && TT__IS(b[pos], TT__C_VALUE | TT__C_OWS))
                pos++;
        }
        if (pos >= end) NEED_MORE();
        if (buf[pos] != '\r') FAIL(buf[pos] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_HEADER_VALUE);
        p->tok2 = pos;
        pos++;
        p->state = S_VALUE_LF;
        /* fall through */
    case S_VALUE_LF:
        if (pos >= end) NEED_MORE();
        if (buf[pos] != '\n') FAIL(TT_HTTP1_E_EOL);
        pos++;
        {
            size_t vs = p->tok, ve = p->tok2;
            while (ve > vs && TT__IS(buf[ve - 1], TT__C_OWS))
                ve--;
            tt_header *h = &hdr[p->nhdr];
            h->value = buf + vs;
            h->value_len = ve - vs;
            p->nhdr++;
            err = field_semantics(p, h, flags, cl, host, host_len);
            if (err) goto fail;
        }
        p->state = S_FIELD;
        goto field;
    case S_END_LF:
    end_lf:
        if (pos >= end) NEED_MORE();
        if (buf[pos] != '\n') FAIL(TT_HTTP1_E_EOL);
        pos++;
        break;
    }

    /* The head is complete: decide framing (RFC 9112 §6.3) and persistence (§9.3). */
    p->pos = pos;
    {
        uint32_t f = *flags;
        int minor = rq ? rq->minor_version : rs->minor_version;
        int keep = minor >= 1 ? !(f & TT_HTTP1_F_CONN_CLOSE)
                              : (f & TT_HTTP1_F_CONN_KEEPALIVE) && !(f & TT_HTTP1_F_CONN_CLOSE);
        if ((f & TT_HTTP1_F_CONN_UPGRADE) && (p->flags & PF_UPGRADE_HDR)) f |= TT_HTTP1_F_UPGRADE;
        if (rq) {
            if (minor >= 1 && !(p->flags & PF_HOST) &&
                !(p->limits.flags & TT_HTTP1_LIMIT_ALLOW_NO_HOST))
                FAIL(TT_HTTP1_E_HOST_MISSING);
            if (minor == 0) f &= ~(uint32_t)TT_HTTP1_F_EXPECT_CONTINUE; /* RFC 9110 §10.1.1 */
            if (f & TT_HTTP1_F_HAS_TE) {
                if (minor == 0) FAIL(TT_HTTP1_E_TE_HTTP10);
                if (f & TT_HTTP1_F_HAS_CL) FAIL(TT_HTTP1_E_TE_WITH_CL);
                if ((p->flags & (PF_TE_BAD | PF_TE_NOT_FINAL)) || !(p->flags & PF_TE_CHUNKED_LAST))
                    FAIL(TT_HTTP1_E_TE_NOT_CHUNKED);
                if (p->flags & PF_TE_OTHER) FAIL(TT_HTTP1_E_TE_UNKNOWN);
                rq->body = TT_HTTP1_BODY_CHUNKED;
            } else if (f & TT_HTTP1_F_HAS_CL) {
                if (p->limits.max_body && *cl > p->limits.max_body) FAIL(TT_HTTP1_E_BODY_TOO_LARGE);
                rq->body = TT_HTTP1_BODY_LENGTH;
            } else {
                rq->body = TT_HTTP1_BODY_NONE;
            }
            rq->num_headers = p->nhdr;
        } else {
            int st = rs->status;
            if (st == 101 && !(p->flags & PF_UPGRADE_HDR)) FAIL(TT_HTTP1_E_UPGRADE);
            if ((f & TT_HTTP1_F_HAS_TE) && minor == 0) FAIL(TT_HTTP1_E_TE_HTTP10);
            if ((f & TT_HTTP1_F_HAS_TE) && (p->flags & PF_TE_BAD)) FAIL(TT_HTTP1_E_TE_NOT_CHUNKED);
            if (req_method == TT_HTTP1_M_HEAD || (st >= 100 && st < 200) || st == 204 ||
                st == 304) {
                rs->body = TT_HTTP1_BODY_NONE;
                if (st == 101) {
                    f |= TT_HTTP1_F_UPGRADE;
                    keep = 0;
                }
            } else if (req_method == TT_HTTP1_M_CONNECT && st >= 200 && st < 300) {
                rs->body = TT_HTTP1_BODY_NONE; /* the connection becomes a tunnel */
                keep = 0;
            } else if (f & TT_HTTP1_F_HAS_TE) {
                if ((p->flags & PF_TE_CHUNKED_LAST) && !(p->flags & PF_TE_NOT_FINAL)) {
                    rs->body = TT_HTTP1_BODY_CHUNKED;
                } else {
                    rs->body = TT_HTTP1_BODY_CLOSE; /* RFC 9112 §6.3 item 4 */
                    keep = 0;
                }
                if (f & TT_HTTP1_F_HAS_CL) keep = 0; /* TE overrides CL; do not reuse (§6.1) */
            } else if (f & TT_HTTP1_F_HAS_CL) {
                if (p->limits.max_body && *cl > p->limits.max_body) FAIL(TT_HTTP1_E_BODY_TOO_LARGE);
                rs->body = TT_HTTP1_BODY_LENGTH;
            } else {
                rs->body = TT_HTTP1_BODY_CLOSE;
                keep = 0;
            }
            rs->num_headers = p->nhdr;
        }
        if (keep) f |= TT_HTTP1_F_KEEP_ALIVE;
        *flags = f;
    }
    p->state = S_START;
    p->pos = 0;
    p->nhdr = 0;
    p->flags = 0;
    return (int)pos;

incomplete:
    p->pos = pos;
    /* the limit is reached and the line/head is not complete: it can only get longer */
    if (p->state <= S_LINE_LF && lend == max_line) goto line_too_long;
    if (end == max_head) FAIL(TT_HTTP1_E_HEAD_TOO_LARGE);
    if (rq)
        rq->num_headers = p->nhdr;
    else
        rs->num_headers = p->nhdr;
    return -2;
line_too_long:
    FAIL(rq ? TT_HTTP1_E_URI_TOO_LONG : TT_HTTP1_E_HEAD_TOO_LARGE);
fail:
    p->pos = pos;
    p->error = err;
    if (rq)
        rq->num_headers = p->nhdr;
    else
        rs->num_headers = p->nhdr;
    return -1;
#undef NEED_MORE
#undef FAIL
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
