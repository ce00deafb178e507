/* chars.h — internal: character classes for the HTTP/1.1 engine (RFC 9110 §5.6.2, §5.5,
 * RFC 3986). One 256-entry table, one bit per class. */
#ifndef TT_HTTP1_CHARS_H
#define TT_HTTP1_CHARS_H

#include <stddef.h>
#include <stdint.h>

enum {
    TT__C_TCHAR = 1,  /* tchar: field names, methods, tokens */
    TT__C_VALUE = 2,  /* field-vchar: VCHAR / obs-text (no SP, HTAB, CTL, DEL) */
    TT__C_TARGET = 4, /* VCHAR: allowed in the request-target */
    TT__C_HEX = 8,    /* HEXDIG */
    TT__C_DIGIT = 16, /* DIGIT */
    TT__C_OWS = 32,   /* SP / HTAB */
    TT__C_HOST = 64,  /* uri-host[:port] characters (reg-name, IP-literal brackets, ':') */
};

extern const uint8_t tt__http1_cls[256];
extern const uint8_t tt__http1_lower[256];

#define TT__IS(c, cls) (tt__http1_cls[(uint8_t)(c)] & (cls))

/* Case-insensitive compare of a (len n) with the lower-case literal b. */
static inline int tt__ieq(const char *a, size_t n, const char *b, size_t bn)
{
    if (n != bn) return 0;
    for (size_t i = 0; i < n; i++)
        if (tt__http1_lower[(uint8_t)a[i]] != (uint8_t)b[i]) return 0;
    return 1;
}
#define TT__IEQ(a, n, lit) tt__ieq((a), (n), lit, sizeof(lit) - 1)

#endif
