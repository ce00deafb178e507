/* status_line.c — status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112
 * §4), with "HTTP/1.1 200\r\n" (no SP, no reason) tolerated. Resumable at every byte; the
 * reason phrase is scanned with the CPU level's value scanner (scan.c). */
#include "http1/chars.h"
#include "http1/head.h"
#include "tether/http1.h"

/* S_SL_VERSION: HTTP-version SP. */
static ptrdiff_t version(tt__head *h, size_t pos)
{
    tt_http1_parser *p = h->p;
    size_t n = h->lend - pos;
    const char *v = h->buf + pos;
    if (n < 9) {
        if (!tt__http1_version_prefix(v, n)) return tt__head_fail(h, pos, TT_HTTP1_E_VERSION);
        return tt__head_more(h, pos, S_SL_VERSION);
    }
    int minor = tt__http1_version(v);
    if (minor == -1) return tt__head_fail(h, pos, TT_HTTP1_E_VERSION);
    if (v[8] != ' ') return tt__head_fail(h, pos, TT_HTTP1_E_STATUS_LINE);
    if (minor == -2) return tt__head_fail(h, pos, TT_HTTP1_E_VERSION_UNSUPPORTED);
    h->rs->minor_version = minor;
    p->pos = pos + 9;
    p->state = S_SL_STATUS;
    return (ptrdiff_t)pos + 9;
}

/* S_SL_STATUS: 3DIGIT (100-999), then SP, or CR for an empty reason. */
static ptrdiff_t status(tt__head *h, size_t pos)
{
    tt_http1_parser *p = h->p;
    tt_http1_response *rs = h->rs;
    size_t n = h->lend - pos;
    const char *v = h->buf + pos;
    if (n < 4) {
        for (size_t k = 0; k < n && k < 3; k++)
            if (!TT__IS(v[k], TT__C_DIGIT)) return tt__head_fail(h, pos, TT_HTTP1_E_STATUS_LINE);
        return tt__head_more(h, pos, S_SL_STATUS);
    }
    if (!TT__IS(v[0], TT__C_DIGIT) || !TT__IS(v[1], TT__C_DIGIT) || !TT__IS(v[2], TT__C_DIGIT) ||
        v[0] == '0')
        return tt__head_fail(h, pos, TT_HTTP1_E_STATUS_LINE);
    rs->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    if (v[3] == '\r') {
        /* tolerated: no SP and no reason ("HTTP/1.1 200\r\n") */
        rs->reason = v + 3;
        rs->reason_len = 0;
        p->pos = pos + 4;
        p->state = S_LINE_LF;
        return (ptrdiff_t)pos + 4;
    }
    if (v[3] != ' ')
        return tt__head_fail(h, pos, v[3] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_STATUS_LINE);
    p->tok = p->pos = pos + 4;
    p->state = S_SL_REASON;
    return (ptrdiff_t)pos + 4;
}

/* S_SL_REASON: reason-phrase = *( HTAB / SP / VCHAR / obs-text ) from start, scanned on from
 * `from`, then CR. */
static ptrdiff_t reason(tt__head *h, size_t start, size_t from)
{
    tt_http1_parser *p = h->p;
    const char *buf = h->buf;
    size_t pos = h->scan->value(buf, from, h->lend);
    if (pos >= h->lend) return tt__head_more(h, pos, S_SL_REASON);
    if (buf[pos] != '\r')
        return tt__head_fail(h, pos, buf[pos] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_STATUS_LINE);
    h->rs->reason = buf + start;
    h->rs->reason_len = pos - start;
    p->pos = pos + 1;
    p->state = S_LINE_LF;
    return (ptrdiff_t)pos + 1;
}

ptrdiff_t tt__http1_status_line(tt__head *h, size_t pos)
{
    ptrdiff_t r = (ptrdiff_t)pos;
    switch (h->p->state) {
    case S_SL_VERSION:
        r = version(h, pos);
        if (r < 0) return r;
        /* fall through */
    case S_SL_STATUS:
        r = status(h, (size_t)r);
        if (r < 0 || h->p->state == S_LINE_LF) return r;
        return reason(h, (size_t)r, (size_t)r);
    case S_SL_REASON: return reason(h, h->p->tok, pos);
    }
    return r;
}
