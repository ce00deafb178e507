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

/* SIMD skips (SSE2, always present on x86-64): return the offset of the first byte in
 * b[pos, end) that may not be a plain value / target byte, scanning whole 16-byte blocks only
 * (never reading past end); the scalar table loop finishes the job. */
#if defined(__SSE2__)
#include <emmintrin.h>
/* Field-value bytes 0x20-0x7E and 0x80-0xFF (HTAB, CTLs and DEL stop the block scan). */
static inline size_t tt__skip_value(const char *b, size_t pos, size_t end)
{
    const __m128i lim = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    while (pos + 16 <= end) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + pos));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, lim), x);
        int m = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del)));
        if (m) return pos + (size_t)__builtin_ctz((unsigned)m);
        pos += 16;
    }
    return pos;
}
/* Request-target bytes 0x21-0x7E. */
static inline size_t tt__skip_target(const char *b, size_t pos, size_t end)
{
    const __m128i lim = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (pos + 16 <= end) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + pos));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, lim), x);
        int m = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del))) | _mm_movemask_epi8(x);
        if (m) return pos + (size_t)__builtin_ctz((unsigned)m);
        pos += 16;
    }
    return pos;
}
#else
static inline size_t tt__skip_value(const char *b, size_t pos, size_t end)
{
    (void)b;
    (void)end;
    return pos;
}
static inline size_t tt__skip_target(const char *b, size_t pos, size_t end)
{
    (void)b;
    (void)end;
    return pos;
}
#endif

#endif
