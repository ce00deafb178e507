/* field_line.h — internal template: the field-line grammar (RFC 9112 §5, RFC 9110 §5.5), shared by
 * request heads, response heads and chunked trailer sections. Written once; scan.c includes it
 * once per CPU level with these defined, so that level's scanners are inlined:
 *   TT_FL_FN        the line function's name     TT_FL_ATTR   its attributes (target)
 *   TT_FL_SECTION   the run function's name      TT_FL_WINDOW the window function's name
 *   TT_FL_REQUEST   the request-line function's name
 *   TT_FL_TCHAR(b, pos, end)  first non-tchar    TT_FL_VALUE(b, pos, end)  first non-value byte
 *   TT_FL_TARGET(b, pos, end) first non-VCHAR   TT_FL_LINE_MASKS(p, w, &nt, &ng) see TT_FL_REQUEST
 *   TT_FL_MASKS(p)            bit i set if p[i] (i < 64) is not a value byte (may also be set
 *                             for HTAB: such a line is left to TT_FL_FN); absent: no windows
 * field-line = field-name ":" OWS field-value OWS CRLF; a line that starts with SP/HTAB is
 * obs-fold (rejected), CR and LF are only valid as CRLF, a value holds no CTL but HTAB. */
#include "http1/chars.h"
#include "http1/scan.h"
#include "tether/http1.h"

TT_FL_ATTR static int TT_FL_FN(const char *b, size_t end, size_t room, tt__fline *fl)
{
    size_t pos = fl->pos;
    switch (fl->phase) {
    case TT__FL_START:
        if (pos >= end) goto more;
        if (b[pos] == '\r') {
            pos++;
            fl->phase = TT__FL_END_LF;
            goto end_lf;
        }
        fl->pos = pos;
        if (TT__IS(b[pos], TT__C_OWS)) return TT_HTTP1_E_OBS_FOLD;
        if (b[pos] == '\n') return TT_HTTP1_E_EOL;
        if (!TT__IS(b[pos], TT__C_TCHAR)) return TT_HTTP1_E_HEADER_NAME;
        if (!room) return TT_HTTP1_E_TOO_MANY_HEADERS;
        fl->name = pos++;
        fl->phase = TT__FL_NAME;
        /* fall through */
    case TT__FL_NAME:
        pos = TT_FL_TCHAR(b, pos, end);
        if (pos >= end) goto more;
        if (b[pos] != ':') {
            fl->pos = pos;
            return TT__IS(b[pos], TT__C_OWS) ? TT_HTTP1_E_SPACE_BEFORE_COLON
                                             : TT_HTTP1_E_HEADER_NAME;
        }
        fl->name_end = pos++;
        fl->phase = TT__FL_OWS;
        /* fall through */
    case TT__FL_OWS:
        while (pos < end && TT__IS(b[pos], TT__C_OWS))
            pos++;
        if (pos >= end) goto more;
        fl->value = pos;
        fl->phase = TT__FL_VALUE;
        /* fall through */
    case TT__FL_VALUE:
        pos = TT_FL_VALUE(b, pos, end);
        if (pos >= end) goto more;
        if (b[pos] != '\r') {
            fl->pos = pos;
            return b[pos] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_HEADER_VALUE;
        }
        fl->value_end = pos++;
        fl->phase = TT__FL_VALUE_LF;
        /* fall through */
    case TT__FL_VALUE_LF:
        if (pos >= end) goto more;
        fl->pos = pos;
        if (b[pos] != '\n') return TT_HTTP1_E_EOL;
        while (fl->value_end > fl->value && TT__IS(b[fl->value_end - 1], TT__C_OWS))
            fl->value_end--;
        fl->pos = pos + 1;
        fl->phase = TT__FL_START;
        return TT__FL_FIELD;
    case TT__FL_END_LF:
    end_lf:
        if (pos >= end) goto more;
        fl->pos = pos;
        if (b[pos] != '\n') return TT_HTTP1_E_EOL;
        fl->pos = pos + 1;
        fl->phase = TT__FL_START;
        return TT__FL_END;
    }
more:
    fl->pos = pos;
    return TT__FL_MORE;
}

#ifdef TT_FL_MASKS
/* The first window stop (a non-value byte, or HTAB) in [from, end), or end. The window (64 bytes,
 * never past end; end >= 64) only moves forward, so its mask does not depend on where lines start
 * and the CPU computes it ahead. */
TT_FL_ATTR static inline size_t TT_FL_WINDOW(const char *b, size_t end, tt__fwin *w, size_t from)
{
    for (;;) {
        size_t off = from - w->base;
        if (off < 64) {
            uint64_t m = w->nv >> off;
            if (m) return from + (size_t)__builtin_ctzll(m);
            from = w->base + 64;
        }
        if (from >= end) return end;
        w->base = from + 64 <= end ? from : end - 64;
        w->nv = TT_FL_MASKS(b + w->base);
    }
}
#endif

/* A run of plain field lines (name ":" OWS value CRLF, all of it before end) from b[pos],
 * stored in out[0, room) with OWS removed. Returns how many; *next is the first line not taken
 * (the empty line, a cut line, anything unusual or erroneous: TT_FL_FN decides it). */
TT_FL_ATTR static size_t TT_FL_SECTION(const char *b, size_t pos, size_t end, tt_header *out,
                                       size_t room, size_t *next)
{
    size_t n = 0;
#ifdef TT_FL_MASKS
    tt__fwin w = {0, 0};
    int win = end >= 64 && pos < end; /* else too short for a window: direct scans */
    if (win) {
        w.base = pos + 64 <= end ? pos : end - 64;
        w.nv = TT_FL_MASKS(b + w.base);
    }
#endif
    while (n < room && pos < end && TT__IS(b[pos], TT__C_TCHAR)) {
        /* The value's end is searched from the line's start in the window (tchars, ':' and OWS
         * are value bytes; every non-value byte is a non-tchar), so that the next line's start
         * depends on this one's only through that search; the name's end is a search of its
         * own, off that chain. */
        size_t ne = TT_FL_TCHAR(b, pos + 1, end);
        size_t ve;
#ifdef TT_FL_MASKS
        if (win)
            ve = TT_FL_WINDOW(b, end, &w, pos);
        else
#endif
            ve = ne < end ? TT_FL_VALUE(b, ne, end) : end; /* from the colon on */
        if (ve + 1 >= end || b[ne] != ':') break; /* ne <= ve: a non-value byte is no tchar */
        uint16_t crlf, want;
        memcpy(&crlf, b + ve, 2);
        memcpy(&want, "\r\n", 2);
        if (crlf != want) break;
        size_t v = ne + 1;
        if (b[v] == ' ') v++; /* the usual single SP (a predicted branch, not a data dependency) */
        while (b[v] == ' ' || b[v] == '\t')
            v++;
        size_t vt = ve;
        while (vt > v && (b[vt - 1] == ' ' || b[vt - 1] == '\t'))
            vt--;
        out[n].name = b + pos;
        out[n].name_len = ne - pos;
        out[n].value = b + v;
        out[n].value_len = vt - v;
        n++;
        pos = ve + 2;
    }
    *next = pos;
    return n;
}

/* The start of a request line at b[pos]: *method_end = the first non-tchar; when it is a SP,
 * returns the first non-VCHAR after it (the end of the target), else *method_end. With
 * TT_FL_LINE_MASKS(p, w, &nt, &ng) (bit i: p[i] is not a tchar / not VCHAR, i < w, w 32 or 64),
 * both ends come from one window when they are in it: neither search waits for the other's load. */
TT_FL_ATTR static size_t TT_FL_REQUEST(const char *b, size_t pos, size_t lend, size_t *method_end)
{
#ifdef TT_FL_LINE_MASKS
    size_t w = pos + 64 <= lend ? 64 : pos + 32 <= lend ? 32 : 0; /* the window's size */
    if (w) {
        uint64_t nt, ng;
        TT_FL_LINE_MASKS(b + pos, w, &nt, &ng);
        size_t k = (size_t)__builtin_ctzll(nt | UINT64_C(1) << (w - 1)); /* the method's end */
        if (k < w - 1) {
            *method_end = pos + k;
            if (b[pos + k] != ' ') return pos + k;
            uint64_t m = ng >> (k + 1);
            return m ? pos + k + 1 + (size_t)__builtin_ctzll(m) : TT_FL_TARGET(b, pos + w, lend);
        }
    }
#endif
    size_t me = TT_FL_TCHAR(b, pos, lend);
    *method_end = me;
    if (me >= lend || b[me] != ' ') return me;
    return TT_FL_TARGET(b, me + 1, lend);
}

#undef TT_FL_FN
#undef TT_FL_REQUEST
#undef TT_FL_TARGET
#undef TT_FL_LINE_MASKS
#undef TT_FL_SECTION
#undef TT_FL_WINDOW
#undef TT_FL_ATTR
#undef TT_FL_TCHAR
#undef TT_FL_VALUE
#undef TT_FL_MASKS
