/* field_line.h — internal template: the field-line grammar (RFC 9112 §5, RFC 9110 §5.5), shared by
 * request heads, response heads and chunked trailer sections. Written once; scan.c includes it
 * once per CPU level with these defined, so that level's scanners are inlined:
 *   TT_FL_FN        the function's name          TT_FL_ATTR   its attributes (target)
 *   TT_FL_TCHAR(b, pos, end)  first non-tchar    TT_FL_VALUE(b, pos, end)  first non-value byte
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

#undef TT_FL_FN
#undef TT_FL_ATTR
#undef TT_FL_TCHAR
#undef TT_FL_VALUE
