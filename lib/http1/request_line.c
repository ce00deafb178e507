/* request_line.c — request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3):
 * the method (a token), the request-target and its form (§3.2), the version. Resumable at every
 * byte; the method and target are scanned with the CPU level's scanners (scan.c). */
#include <string.h>

#include "common/api.h"
#include "http1/chars.h"
#include "http1/head.h"
#include "http1/internal.h"
#include "tether/http1.h"

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

/* S_METHOD: method = token from start, ended by SP (at pos, found by the scanner). */
static int method(tt__head *h, size_t start, size_t pos)
{
    tt_http1_parser *p = h->p;
    tt_http1_request *rq = h->rq;
    if (pos - start > TT_HTTP1_MAX_METHOD) /* longer than any method a server implements */
        return tt__head_fail(h, start + TT_HTTP1_MAX_METHOD, TT_HTTP1_E_METHOD_TOO_LONG);
    if (pos >= h->lend) return tt__head_more(h, pos, S_METHOD);
    if (h->buf[pos] != ' ' || pos == start) return tt__head_fail(h, pos, TT_HTTP1_E_METHOD);
    rq->method = h->buf + start;
    rq->method_len = pos - start;
    rq->method_id = tt_http1_method_id(rq->method, rq->method_len);
    p->tok = p->pos = pos + 1;
    p->state = S_TARGET;
    return TT__HEAD_DONE;
}

static int is_alpha(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* absolute-form: scheme "://" authority path-abempty [ "?" query ] (RFC 3986 §3, RFC 9110
 * §4.2.4: no userinfo, a valid host). 1 if t[0, tn) is one. */
static int absolute_form(const char *t, size_t tn)
{
    size_t k = 0;
    if (!is_alpha(t[0])) return 0;
    while (k < tn && (TT__IS(t[k], TT__C_DIGIT) || is_alpha(t[k]) || t[k] == '+' || t[k] == '-' ||
                      t[k] == '.'))
        k++;
    if (tn - k < 3 || memcmp(t + k, "://", 3)) return 0;
    k += 3;
    size_t as = k;
    while (k < tn && t[k] != '/' && t[k] != '?' && t[k] != '#')
        k++;
    return k != as && tt__http1_valid_host(t + as, k - as, 0);
}

/* The request-target's form, allowed by the method (RFC 9112 §3.2). */
static tt_http1_error target_form(tt_http1_request *rq, const char *t, size_t tn)
{
    /* No fragment in any request-target (RFC 9112 §3.2), and no backslash: not a URI
     * character (RFC 3986 §2), and some servers and caches read it as "/" */
    if (memchr(t, '#', tn) || memchr(t, '\\', tn)) return TT_HTTP1_E_TARGET;
    if (rq->method_id == TT_HTTP1_M_CONNECT) {
        /* RFC 9110 §9.3.6: authority-form only, host:port, no userinfo */
        if (!tt__http1_valid_host(t, tn, 1)) return TT_HTTP1_E_TARGET;
        rq->target_form = TT_HTTP1_TARGET_AUTHORITY;
    } else if (t[0] == '/') {
        rq->target_form = TT_HTTP1_TARGET_ORIGIN;
    } else if (tn == 1 && t[0] == '*') {
        if (rq->method_id != TT_HTTP1_M_OPTIONS) return TT_HTTP1_E_TARGET;
        rq->target_form = TT_HTTP1_TARGET_ASTERISK;
    } else {
        if (!absolute_form(t, tn)) return TT_HTTP1_E_TARGET;
        rq->target_form = TT_HTTP1_TARGET_ABSOLUTE;
    }
    return TT_HTTP1_OK;
}

/* S_TARGET: request-target = VCHARs from start (p->tok), ended by SP (at pos, found by the
 * scanner). */
static int target(tt__head *h, size_t start, size_t pos)
{
    tt_http1_parser *p = h->p;
    const char *buf = h->buf;
    if (pos >= h->lend) return tt__head_more(h, pos, S_TARGET);
    if (buf[pos] != ' ')
        return tt__head_fail(h, pos,
                             buf[pos] == '\r' || buf[pos] == '\n' ? TT_HTTP1_E_REQUEST_LINE
                                                                  : TT_HTTP1_E_TARGET);
    if (pos == start) return tt__head_fail(h, pos, TT_HTTP1_E_REQUEST_LINE);
    h->rq->target = buf + start;
    h->rq->target_len = pos - start;
    tt_http1_error e = target_form(h->rq, h->rq->target, h->rq->target_len);
    if (e) return tt__head_fail(h, pos, e);
    p->tok = p->pos = pos + 1;
    p->state = S_VERSION;
    return TT__HEAD_DONE;
}

/* S_VERSION: HTTP-version CR at pos (the LF is the driver's). A well-formed version other
 * than 1.0/1.1 is answered 505 as soon as its 8 bytes are there; an early byte error does not wait.
 */
static ptrdiff_t version(tt__head *h, size_t pos)
{
    tt_http1_parser *p = h->p;
    size_t n = h->lend - pos;
    const char *v = h->buf + pos;
    if (n < 9) {
        if (n == 8 && tt__http1_version(v) == -2)
            return tt__head_fail(h, pos, TT_HTTP1_E_VERSION_UNSUPPORTED);
        if (!tt__http1_version_prefix(v, n)) return tt__head_fail(h, pos, TT_HTTP1_E_VERSION);
        return tt__head_more(h, pos, S_VERSION);
    }
    int minor = tt__http1_version(v);
    if (minor == -1) return tt__head_fail(h, pos, TT_HTTP1_E_VERSION);
    if (minor == -2) return tt__head_fail(h, pos, TT_HTTP1_E_VERSION_UNSUPPORTED);
    if (v[8] != '\r')
        return tt__head_fail(h, pos, v[8] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_VERSION);
    h->rq->minor_version = minor;
    p->pos = pos + 9;
    p->state = S_LINE_LF;
    return (ptrdiff_t)pos + 9;
}

ptrdiff_t tt__http1_request_line(tt__head *h, size_t pos)
{
    tt_http1_parser *p = h->p;
    int rc;
    size_t me, te;
    switch (p->state) {
    case S_METHOD:
        te = h->scan->request_line(h->buf, pos, h->lend, &me);
        rc = method(h, p->tok, me); /* the method's start: pos, or before it when resumed */
        if (rc != TT__HEAD_DONE) return rc;
        rc = target(h, me + 1, te);
        if (rc != TT__HEAD_DONE) return rc;
        return version(h, te + 1);
    case S_TARGET:
        te = h->scan->target(h->buf, pos, h->lend);
        rc = target(h, p->tok, te);
        if (rc != TT__HEAD_DONE) return rc;
        return version(h, te + 1);
    case S_VERSION: return version(h, pos);
    }
    return (ptrdiff_t)pos;
}
