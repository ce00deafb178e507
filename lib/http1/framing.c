/* framing.c — what the fields mean for the connection (RFC 9112 §6, §9; RFC 9110 §7.2, §7.6,
 * §7.8, §8.6, §10.1.1): Host, Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade
 * and Expect as each field is accepted, then, once the head is complete, the framing decision
 * (how the body is delimited) and persistence (whether the connection may be reused), with the
 * request policy and the response policy side by side. */
#include "http1/chars.h"
#include "http1/head.h"
#include "http1/internal.h"
#include "tether/http1.h"

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
        while (i + 4 <= n && TT__IS(v[i], TT__C_REGNAME) && TT__IS(v[i + 1], TT__C_REGNAME) &&
               TT__IS(v[i + 2], TT__C_REGNAME) && TT__IS(v[i + 3], TT__C_REGNAME))
            i += 4;
        while (i < n && TT__IS(v[i], TT__C_REGNAME))
            i++;
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
    if (TT__IEQ_FAST(v, n, "keep-alive")) { /* the usual values, without the list walk */
        *flags |= TT_HTTP1_F_CONN_KEEPALIVE;
        return;
    }
    if (TT__IEQ_FAST(v, n, "close")) {
        *flags |= TT_HTTP1_F_CONN_CLOSE;
        return;
    }
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

tt_http1_error tt__http1_field_semantics(tt__head *hd, const tt_header *h)
{
    tt_http1_parser *p = hd->p;
    uint32_t *flags = hd->flags;
    uint64_t *cl = hd->cl;
    const char *nm = h->name;
    switch (h->name_len) {
    case 4:
        if (!(p->flags & PF_RESPONSE) && tt__ieq_fast(nm, "host", 4)) {
            if (p->flags & PF_HOST) return TT_HTTP1_E_HOST_DUPLICATE;
            p->flags |= PF_HOST;
            /* RFC 9112 §3.2: an http(s) target always has an authority, so Host is not empty */
            if (!h->value_len || !tt__http1_valid_host(h->value, h->value_len, 0))
                return TT_HTTP1_E_HOST_INVALID;
            *hd->host = h->value;
            *hd->host_len = h->value_len;
        }
        break;
    case 6:
        if (tt__ieq_fast(nm, "expect", 6)) {
            if (TT__IEQ_FAST(h->value, h->value_len, "100-continue"))
                *flags |= TT_HTTP1_F_EXPECT_CONTINUE;
            else
                *flags |= TT_HTTP1_F_EXPECT_OTHER;
        }
        break;
    case 7:
        if (tt__ieq_fast(nm, "upgrade", 7) && h->value_len) p->flags |= PF_UPGRADE_HDR;
        break;
    case 10:
        if (tt__ieq_fast(nm, "connection", 10))
            conn_tokens(h->value, h->value_len, flags);
        else if (tt__ieq_fast(nm, "keep-alive", 10))
            *flags |= TT_HTTP1_F_KEEPALIVE_HDR;
        break;
    case 14:
        if (tt__ieq_fast(nm, "content-length", 14)) {
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
        if (tt__ieq_fast(nm, "transfer-encoding", 17)) {
            *flags |= TT_HTTP1_F_HAS_TE;
            te_codings(h->value, h->value_len, &p->flags);
        }
        break;
    }
    return TT_HTTP1_OK;
}

/* Persistence before the body decision (RFC 9112 §9.3): HTTP/1.1 unless "close"; HTTP/1.0
 * only with "keep-alive" (and no "close"). */
static int keep_alive(int minor, uint32_t f)
{
    if (f & TT_HTTP1_F_CONN_CLOSE) return 0;
    return minor >= 1 || (f & TT_HTTP1_F_CONN_KEEPALIVE);
}

/* The flags every message gets: upgrade requested (Connection: upgrade + Upgrade). */
static uint32_t upgrade_flag(const tt_http1_parser *p, uint32_t f)
{
    if ((f & TT_HTTP1_F_CONN_UPGRADE) && (p->flags & PF_UPGRADE_HDR)) f |= TT_HTTP1_F_UPGRADE;
    return f;
}

tt_http1_error tt__http1_request_framing(tt__head *h)
{
    tt_http1_parser *p = h->p;
    tt_http1_request *rq = h->rq;
    int minor = rq->minor_version;
    uint32_t f = upgrade_flag(p, *h->flags);
    int keep = keep_alive(minor, f);
    if (minor >= 1 && !(p->flags & PF_HOST) && !(p->limits.flags & TT_HTTP1_LIMIT_ALLOW_NO_HOST))
        return TT_HTTP1_E_HOST_MISSING;
    if (minor == 0) f &= ~(uint32_t)TT_HTTP1_F_EXPECT_CONTINUE; /* RFC 9110 §10.1.1 */
    if (f & TT_HTTP1_F_HAS_TE) {
        /* RFC 9112 §6.1: a request's final coding must be chunked; TE with CL is smuggling */
        if (minor == 0) return TT_HTTP1_E_TE_HTTP10;
        if (f & TT_HTTP1_F_HAS_CL) return TT_HTTP1_E_TE_WITH_CL;
        if ((p->flags & (PF_TE_BAD | PF_TE_NOT_FINAL)) || !(p->flags & PF_TE_CHUNKED_LAST))
            return TT_HTTP1_E_TE_NOT_CHUNKED;
        if (p->flags & PF_TE_OTHER) return TT_HTTP1_E_TE_UNKNOWN;
        rq->body = TT_HTTP1_BODY_CHUNKED;
    } else if (f & TT_HTTP1_F_HAS_CL) {
        if (p->limits.max_body && *h->cl > p->limits.max_body) return TT_HTTP1_E_BODY_TOO_LARGE;
        rq->body = TT_HTTP1_BODY_LENGTH;
    } else {
        rq->body = TT_HTTP1_BODY_NONE;
    }
    if (keep) f |= TT_HTTP1_F_KEEP_ALIVE;
    *h->flags = f;
    return TT_HTTP1_OK;
}

/* A response's body (RFC 9112 §6.3, in its order); clears *keep where the body or the status
 * ends the connection. */
static tt_http1_error response_body(tt__head *h, tt_http1_method req_method, uint32_t *f, int *keep)
{
    const tt_http1_parser *p = h->p;
    tt_http1_response *rs = h->rs;
    int st = rs->status;
    if (req_method == TT_HTTP1_M_HEAD || (st >= 100 && st < 200) || st == 204 || st == 304) {
        rs->body = TT_HTTP1_BODY_NONE;
        if (st == 101) {
            *f |= TT_HTTP1_F_UPGRADE;
            *keep = 0;
        }
    } else if (req_method == TT_HTTP1_M_CONNECT && st >= 200 && st < 300) {
        rs->body = TT_HTTP1_BODY_NONE; /* the connection becomes a tunnel */
        *keep = 0;
    } else if (*f & TT_HTTP1_F_HAS_TE) {
        if ((p->flags & PF_TE_CHUNKED_LAST) && !(p->flags & PF_TE_NOT_FINAL)) {
            rs->body = TT_HTTP1_BODY_CHUNKED;
        } else {
            rs->body = TT_HTTP1_BODY_CLOSE; /* RFC 9112 §6.3 item 4 */
            *keep = 0;
        }
        if (*f & TT_HTTP1_F_HAS_CL) *keep = 0; /* TE overrides CL; do not reuse (§6.1) */
    } else if (*f & TT_HTTP1_F_HAS_CL) {
        if (p->limits.max_body && *h->cl > p->limits.max_body) return TT_HTTP1_E_BODY_TOO_LARGE;
        rs->body = TT_HTTP1_BODY_LENGTH;
    } else {
        rs->body = TT_HTTP1_BODY_CLOSE;
        *keep = 0;
    }
    return TT_HTTP1_OK;
}

tt_http1_error tt__http1_response_framing(tt__head *h, tt_http1_method req_method)
{
    tt_http1_parser *p = h->p;
    int minor = h->rs->minor_version;
    uint32_t f = upgrade_flag(p, *h->flags);
    int keep = keep_alive(minor, f);
    if (h->rs->status == 101 && !(p->flags & PF_UPGRADE_HDR)) return TT_HTTP1_E_UPGRADE;
    if ((f & TT_HTTP1_F_HAS_TE) && minor == 0) return TT_HTTP1_E_TE_HTTP10;
    if ((f & TT_HTTP1_F_HAS_TE) && (p->flags & PF_TE_BAD)) return TT_HTTP1_E_TE_NOT_CHUNKED;
    tt_http1_error e = response_body(h, req_method, &f, &keep);
    if (e) return e;
    if (keep) f |= TT_HTTP1_F_KEEP_ALIVE;
    *h->flags = f;
    return TT_HTTP1_OK;
}
