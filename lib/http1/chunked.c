/* chunked.c — strict in-place chunked decoder and the chunked encoder (RFC 9112 §7.1).
 *
 * The decoder is a byte-granular state machine (sizes and extensions are never rescanned);
 * data bytes are moved down over the framing with memmove. The trailer section is parsed
 * line by line with the head's field-line grammar (field_line.h); a partial trailer section
 * stays unconsumed (its accepted lines are remembered by offset). */
#include <string.h>

#include "common/api.h"
#include "http1/chars.h"
#include "http1/internal.h"
#include "http1/scan.h"
#include "tether/http1.h"

enum {
    C_SIZE_FIRST = 0, /* first hex digit of a chunk-size */
    C_SIZE,           /* more hex digits */
    C_EXT_NAME_START, /* after ';' */
    C_EXT_NAME,
    C_EXT_VAL_START, /* after '=' */
    C_EXT_TOKEN,
    C_EXT_QUOTED,
    C_EXT_QP,      /* after a backslash in a quoted-string */
    C_EXT_AFTER_Q, /* after the closing quote */
    C_SIZE_LF,     /* CR seen after the size line */
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
    C_TRAILER,
    C_DONE,
};

#define DEFAULT_MAX_EXT     1024u
#define DEFAULT_MAX_TRAILER 8192u

TT_API void tt_http1_chunked_init(tt_http1_chunked_decoder *d)
{
    d->remaining = 0;
    d->state = C_SIZE_FIRST;
    d->ext_len = 0;
    d->num_trailers = 0;
    d->done = 0;
    d->error = TT_HTTP1_OK;
    d->tpos = 0;
    d->tbase = 0;
}

/* Fields a trailer may not carry (RFC 9110 §6.5.1): framing, routing, connection control,
 * request modifiers, authentication, content metadata. We reject rather than drop: a sender
 * that puts them there is either broken or probing for a desync. */
int tt__http1_trailer_forbidden(const char *n, size_t len)
{
    static const char *const names[] = {
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "keep-alive",
        "upgrade",
        "trailer",
        "te",
        "content-encoding",
        "content-type",
        "content-range",
        "authorization",
        "proxy-authorization",
        "proxy-authenticate",
        "www-authenticate",
        "cookie",
        "set-cookie",
        "expect",
        "range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "cache-control",
        "max-forwards",
        "location",
        "proxy-connection",
        "age",
        "expires",
        "date",
        "vary",
        "retry-after",
        "pragma",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (tt__ieq(n, len, names[i], strlen(names[i]))) return 1;
    return 0;
}

/* Parse trailer lines in t[tpos, tn) with the head's field-line grammar (a cut line is parsed
 * again from its start next time). Returns 1 done (*endp = section length), 0 need more, or -1
 * (d->error). */
static int parse_trailers(tt_http1_chunked_decoder *d, const char *t, size_t tn, size_t *endp)
{
    size_t maxt = d->max_trailer ? d->max_trailer : DEFAULT_MAX_TRAILER;
    size_t end = tn < maxt ? tn : maxt;
    int (*line)(const char *, size_t, size_t, tt__fline *) = tt__http1_scan_ops()->field_line;
    tt__fline fl = {.phase = TT__FL_START, .pos = d->tpos};
    for (;;) {
        int rc = line(t, end, SIZE_MAX, &fl);
        if (rc == TT__FL_END) {
            *endp = fl.pos;
            return 1;
        }
        if (rc == TT__FL_MORE) {
            if (end < maxt) return 0; /* d->tpos: the cut line's start */
            d->error = TT_HTTP1_E_TRAILER_TOO_LARGE;
            return -1;
        }
        if (rc != TT__FL_FIELD) {
            d->error = rc == TT_HTTP1_E_EOL ? TT_HTTP1_E_CHUNK_EOL : TT_HTTP1_E_TRAILER;
            return -1;
        }
        if (tt__http1_trailer_forbidden(t + fl.name, fl.name_end - fl.name)) {
            d->error = TT_HTTP1_E_TRAILER;
            return -1;
        }
        if (d->trailers) {
            if (d->num_trailers >= d->max_trailers) {
                d->error = TT_HTTP1_E_TRAILER_TOO_LARGE;
                return -1;
            }
            tt_header *h = &d->trailers[d->num_trailers];
            h->name = t + fl.name;
            h->name_len = fl.name_end - fl.name;
            h->value = t + fl.value;
            h->value_len = fl.value_end - fl.value;
        }
        d->num_trailers++;
        d->tpos = fl.pos;
    }
}

/* After an extension name or value: ";" starts the next one, CR ends the line. */
static tt_http1_error ext_end(uint32_t *state, uint8_t c)
{
    if (c == ';')
        *state = C_EXT_NAME_START;
    else if (c == '\r')
        *state = C_SIZE_LF;
    else
        return c == '\n' ? TT_HTTP1_E_CHUNK_EOL : TT_HTTP1_E_CHUNK_EXT;
    return TT_HTTP1_OK;
}

/* One byte of a chunk extension (RFC 9112 §7.1.1): chunk-ext = *( BWS ";" BWS ext-name
 * [ BWS "=" BWS ext-val ] ), ext-val = token / quoted-string (no BWS accepted). Moves *state. */
static tt_http1_error ext_byte(uint32_t *state, uint8_t c)
{
    switch (*state) {
    case C_EXT_NAME_START:
        if (!TT__IS(c, TT__C_TCHAR)) return TT_HTTP1_E_CHUNK_EXT;
        *state = C_EXT_NAME;
        return TT_HTTP1_OK;
    case C_EXT_NAME:
        if (TT__IS(c, TT__C_TCHAR)) return TT_HTTP1_OK;
        if (c != '=') return ext_end(state, c);
        *state = C_EXT_VAL_START;
        return TT_HTTP1_OK;
    case C_EXT_VAL_START:
        if (c == '"')
            *state = C_EXT_QUOTED;
        else if (TT__IS(c, TT__C_TCHAR))
            *state = C_EXT_TOKEN;
        else
            return TT_HTTP1_E_CHUNK_EXT;
        return TT_HTTP1_OK;
    case C_EXT_TOKEN:
        if (TT__IS(c, TT__C_TCHAR)) return TT_HTTP1_OK;
        return ext_end(state, c);
    case C_EXT_QUOTED:
        /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
        if (c == '"')
            *state = C_EXT_AFTER_Q;
        else if (c == '\\')
            *state = C_EXT_QP;
        else if (!TT__IS(c, TT__C_VALUE | TT__C_OWS))
            return TT_HTTP1_E_CHUNK_EXT;
        return TT_HTTP1_OK;
    case C_EXT_QP:
        if (!TT__IS(c, TT__C_VALUE | TT__C_OWS)) return TT_HTTP1_E_CHUNK_EXT;
        *state = C_EXT_QUOTED;
        return TT_HTTP1_OK;
    case C_EXT_AFTER_Q: return ext_end(state, c);
    }
    return TT_HTTP1_OK;
}

/* The trailer section from buf[r]: rebase the trailers kept from the previous call, parse on.
 * Returns the input consumed (r when the section is still partial, which stays unconsumed) or
 * -1. */
static long trailer_section(tt_http1_chunked_decoder *d, char *buf, size_t r, size_t len)
{
    const char *t = buf + r;
    if (d->tpos && d->trailers && (uintptr_t)t != d->tbase) {
        uintptr_t delta = (uintptr_t)t - d->tbase;
        for (size_t i = 0; i < d->num_trailers && i < d->max_trailers; i++) {
            d->trailers[i].name = (const char *)((uintptr_t)d->trailers[i].name + delta);
            d->trailers[i].value = (const char *)((uintptr_t)d->trailers[i].value + delta);
        }
    }
    d->tbase = (uintptr_t)t;
    size_t tend;
    int rc = parse_trailers(d, t, len - r, &tend);
    if (rc < 0) return -1;
    if (rc == 0) return (long)r;
    d->state = C_DONE;
    d->done = 1;
    return (long)(r + tend);
}

TT_API long tt_http1_chunked_decode(tt_http1_chunked_decoder *d, char *buf, size_t len,
                                    size_t *out_len)
{
    size_t r = 0, w = 0;
    uint32_t maxe = d->max_ext ? d->max_ext : DEFAULT_MAX_EXT;
    *out_len = 0;
    if (d->error) return -1;
    if (d->state == C_DONE) return 0;

    while (r < len) {
        uint8_t c = (uint8_t)buf[r];
        switch (d->state) {
        case C_SIZE_FIRST:
            if (!TT__IS(c, TT__C_HEX)) goto bad_size;
            d->remaining = 0;
            d->ext_len = 0;
            d->state = C_SIZE;
            /* fall through */
        case C_SIZE:
            if (TT__IS(c, TT__C_HEX)) {
                unsigned v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                if (d->remaining >> 60) goto bad_size; /* would overflow 64 bits */
                d->remaining = (d->remaining << 4) | v;
                if (++d->ext_len > maxe) goto bad_ext;
                r++;
                continue;
            }
            if (c == ';') {
                d->state = C_EXT_NAME_START;
                break;
            }
            if (c == '\r') {
                d->state = C_SIZE_LF;
                break;
            }
            if (c == '\n') goto bad_eol;
            goto bad_size; /* whitespace, sign, "0x", anything else */
        case C_EXT_NAME_START:
        case C_EXT_NAME:
        case C_EXT_VAL_START:
        case C_EXT_TOKEN:
        case C_EXT_QUOTED:
        case C_EXT_QP:
        case C_EXT_AFTER_Q: {
            tt_http1_error e = ext_byte(&d->state, c);
            if (e) {
                d->error = e;
                return -1;
            }
            break;
        }
        case C_SIZE_LF:
            if (c != '\n') goto bad_eol;
            r++;
            d->state = d->remaining ? C_DATA : C_TRAILER;
            if (d->state == C_TRAILER) {
                d->tpos = 0;
                d->num_trailers = 0;
                goto trailer;
            }
            continue;
        case C_DATA: {
            size_t n = len - r;
            if (n > d->remaining) n = (size_t)d->remaining;
            if (w != r) memmove(buf + w, buf + r, n);
            w += n;
            r += n;
            d->remaining -= n;
            if (!d->remaining) d->state = C_DATA_CR;
            continue;
        }
        case C_DATA_CR:
            if (c != '\r') goto bad_eol;
            d->state = C_DATA_LF;
            break;
        case C_DATA_LF:
            if (c != '\n') goto bad_eol;
            d->state = C_SIZE_FIRST;
            break;
        case C_TRAILER: goto trailer;
        default: goto done;
        }
        /* every byte of a size/extension line counts toward the line bound */
        if (d->state >= C_EXT_NAME_START && d->state <= C_EXT_AFTER_Q && ++d->ext_len > maxe)
            goto bad_ext;
        r++;
    }
    *out_len = w;
    return (long)r;

trailer:
    *out_len = w;
    return trailer_section(d, buf, r, len);
done:
    *out_len = w;
    return (long)r;
bad_size:
    d->error = TT_HTTP1_E_CHUNK_SIZE;
    return -1;
bad_ext:
    d->error = TT_HTTP1_E_CHUNK_EXT;
    return -1;
bad_eol:
    d->error = TT_HTTP1_E_CHUNK_EOL;
    return -1;
}

TT_API size_t tt_http1_chunk_header(char out[TT_HTTP1_CHUNK_HEADER_MAX], uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    size_t o = 0;
    while (k)
        out[o++] = tmp[--k];
    out[o++] = '\r';
    out[o++] = '\n';
    return o;
}

TT_API size_t tt_http1_chunk_last(char *buf, size_t size, const tt_header *trailers, size_t n)
{
    size_t need = 3 + 2;
    for (size_t i = 0; i < n; i++)
        need += trailers[i].name_len + 2 + trailers[i].value_len + 2;
    if (need > size) return need;
    char *o = buf;
    memcpy(o, "0\r\n", 3);
    o += 3;
    for (size_t i = 0; i < n; i++) {
        memcpy(o, trailers[i].name, trailers[i].name_len);
        o += trailers[i].name_len;
        *o++ = ':';
        *o++ = ' ';
        memcpy(o, trailers[i].value, trailers[i].value_len);
        o += trailers[i].value_len;
        *o++ = '\r';
        *o++ = '\n';
    }
    *o++ = '\r';
    *o++ = '\n';
    return need;
}
