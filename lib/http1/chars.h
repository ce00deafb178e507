/* chars.h — internal: character classes for the HTTP/1.1 engine (RFC 9110 §5.6.2, §5.5,
 * RFC 3986). One 256-entry table, one bit per class. */
#ifndef TT_HTTP1_CHARS_H
#define TT_HTTP1_CHARS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    TT__C_TCHAR = 1,     /* tchar: field names, methods, tokens */
    TT__C_VALUE = 2,     /* field-vchar: VCHAR / obs-text (no SP, HTAB, CTL, DEL) */
    TT__C_TARGET = 4,    /* VCHAR: allowed in the request-target */
    TT__C_HEX = 8,       /* HEXDIG */
    TT__C_DIGIT = 16,    /* DIGIT */
    TT__C_OWS = 32,      /* SP / HTAB */
    TT__C_HOST = 64,     /* uri-host[:port] characters (reg-name, IP-literal brackets, ':') */
    TT__C_REGNAME = 128, /* reg-name / IPv4 characters: TT__C_HOST without '[', ']', ':' */
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

/* Case-insensitive compare of n bytes of a validated name or value (no CTL but HTAB) with the
 * lower-case literal b made of letters, digits and '-': a byte OR 0x20 equals such a literal
 * byte only if it is that byte or its upper case (the other candidates are CTLs), so eight
 * bytes are compared at a time. */
static inline int tt__ieq_fast(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if ((x | UINT64_C(0x2020202020202020)) != y) return 0;
        }
        memcpy(&x, a + n - 8, 8); /* the last 8 bytes (overlapping the loop's) */
        memcpy(&y, b + n - 8, 8);
        return (x | UINT64_C(0x2020202020202020)) == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if ((u | 0x20202020u) != v) return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return (u | 0x20202020u) == v;
    }
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)(a[i] | 0x20) != (uint8_t)b[i]) return 0;
    return 1;
}
#define TT__IEQ_FAST(a, n, lit) ((n) == sizeof(lit) - 1 && tt__ieq_fast((a), lit, sizeof(lit) - 1))

#endif
