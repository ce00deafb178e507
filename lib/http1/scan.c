/* scan.c — the HTTP/1.1 parser's byte-class scanners at three CPU levels, chosen once at run time.
 *
 * A scanner returns the first byte of b[pos, end) outside its class. The scalar level walks the
 * 256-entry class table; the SSE4.2 and AVX2 levels test 16 or 32 bytes at a time and take the
 * first outside byte from the mask (no per-byte branch). They never read past end: the last
 * partial block is the one that ends at end, its bytes before pos masked off. The library is
 * built for baseline x86-64: the vector code is compiled per function with target attributes
 * and only called when __builtin_cpu_supports says so; elsewhere only the scalar level exists.
 * Every level decides the same thing (the class tables are exact; test_simd checks every byte
 * value at every lane at every level). */
#include <stdlib.h>
#include <string.h>

#include "http1/chars.h"
#include "http1/scan.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define TT_SIMD_X86 1
#include <immintrin.h>
#define TT_SSE42 __attribute__((target("sse4.2")))
#define TT_AVX2  __attribute__((target("avx2")))
#else
#define TT_SIMD_X86 0
#endif

/* ---- scalar ---- */

static inline size_t scan_class(const char *b, size_t pos, size_t end, uint8_t cls)
{
    const uint8_t *u = (const uint8_t *)b;
    while (pos + 4 <= end && (tt__http1_cls[u[pos]] & cls) && (tt__http1_cls[u[pos + 1]] & cls) &&
           (tt__http1_cls[u[pos + 2]] & cls) && (tt__http1_cls[u[pos + 3]] & cls))
        pos += 4;
    while (pos < end && (tt__http1_cls[u[pos]] & cls))
        pos++;
    return pos;
}
static inline size_t tchar_scalar(const char *b, size_t pos, size_t end)
{
    return scan_class(b, pos, end, TT__C_TCHAR);
}
static inline size_t target_scalar(const char *b, size_t pos, size_t end)
{
    return scan_class(b, pos, end, TT__C_TARGET);
}
static inline size_t value_scalar(const char *b, size_t pos, size_t end)
{
    return scan_class(b, pos, end, TT__C_VALUE | TT__C_OWS);
}

#define TT_FL_FN          field_line_scalar
#define TT_FL_SECTION     section_scalar
#define TT_FL_REQUEST     request_line_scalar
#define TT_FL_TARGET(...) target_scalar(__VA_ARGS__)
#define TT_FL_ATTR        /* portable */
#define TT_FL_TCHAR(...)  tchar_scalar(__VA_ARGS__)
#define TT_FL_VALUE(...)  value_scalar(__VA_ARGS__)
#include "http1/field_line.h"

static const tt__http1_scan ops_scalar = {TT__SIMD_SCALAR, tchar_scalar,      target_scalar,
                                          value_scalar,    field_line_scalar, request_line_scalar,
                                          section_scalar};

#if TT_SIMD_X86
/* tchar as a nibble lookup: a byte x is a tchar iff lo[x & 15] & hi[x >> 4] (each bit of the two
 * tables stands for one high nibble's set of allowed low nibbles). */
static const uint8_t tchar_lo[16] = {0x3a, 0x3f, 0x3e, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
                                     0x3e, 0x3e, 0x3d, 0x15, 0x34, 0x15, 0x3d, 0x1c};
static const uint8_t tchar_hi[16] = {0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20,
                                     0, 0, 0,    0,    0,    0,    0,    0};

/* ---- SSE4.2 (16 bytes; pshufb is SSSE3) ---- */

/* Bit i set: byte i is not a tchar / not VCHAR / not a value byte (field-vchar, SP, HTAB). */
TT_SSE42 static inline unsigned out_tchar_16(const char *p)
{
    const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)tchar_lo);
    const __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)tchar_hi);
    const __m128i nib = _mm_set1_epi8(0x0f);
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i a = _mm_shuffle_epi8(lo, _mm_and_si128(x, nib));
    __m128i c = _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi16(x, 4), nib));
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(a, c), _mm_setzero_si128()));
}
TT_SSE42 static inline unsigned out_target_16(const char *p)
{
    /* signed: x < 0x21 is 0x00-0x20 and 0x80-0xff; then DEL */
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i bad = _mm_or_si128(_mm_cmpgt_epi8(_mm_set1_epi8(0x21), x),
                               _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
    return (unsigned)_mm_movemask_epi8(bad);
}
TT_SSE42 static inline unsigned out_value_16(const char *p)
{
    /* CTLs (x <= 0x1f unsigned) but HTAB, and DEL */
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    ctl = _mm_andnot_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x09)), ctl);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f))));
}

/* The block loop of one scanner of width W with mask function OUT; below W bytes in all: SMALL. */
#define SCAN_BLOCKS(W, OUT, SMALL)                                                                 \
    do {                                                                                           \
        while (pos + (W) <= end) {                                                                 \
            unsigned m_ = OUT(b + pos);                                                            \
            if (m_) return pos + (size_t)__builtin_ctz(m_);                                        \
            pos += (W);                                                                            \
        }                                                                                          \
        if (pos >= end) return end;                                                                \
        if (end < (W)) return SMALL(b, pos, end);                                                  \
        unsigned t_ = OUT(b + end - (W)) >> ((W) - (end - pos));                                   \
        return t_ ? pos + (size_t)__builtin_ctz(t_) : end;                                         \
    } while (0)

/* A level's three scanners (ATTR, name suffix L, block width W; below W bytes: level SMALL). */
#define SCANNERS(ATTR, L, W, SMALL)                                                                \
    ATTR static inline size_t tchar_##L(const char *b, size_t pos, size_t end)                     \
    {                                                                                              \
        SCAN_BLOCKS(W, out_tchar_##W, tchar_##SMALL);                                              \
    }                                                                                              \
    ATTR static inline size_t target_##L(const char *b, size_t pos, size_t end)                    \
    {                                                                                              \
        SCAN_BLOCKS(W, out_target_##W, target_##SMALL);                                            \
    }                                                                                              \
    ATTR static inline size_t value_##L(const char *b, size_t pos, size_t end)                     \
    {                                                                                              \
        SCAN_BLOCKS(W, out_value_##W, value_##SMALL);                                              \
    }

SCANNERS(TT_SSE42, sse42, 16, scalar)

/* A window's stops: every non-value byte, and HTAB (a value with a HTAB is left to the line
 * parser): x < 0x20 is x + 0x60 (unsigned, saturated) without its top bit; then DEL. */
TT_SSE42 static inline unsigned stop_16(const char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    unsigned ge20 = (unsigned)_mm_movemask_epi8(_mm_adds_epu8(x, _mm_set1_epi8(0x60)));
    return (~ge20 & 0xffffu) | (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
}
/* A request line's first w (32 or 64) bytes: not-tchar and not-VCHAR masks. */
TT_SSE42 static inline void line_masks_sse42(const char *p, size_t w, uint64_t *nt, uint64_t *ng)
{
    *nt = *ng = 0;
    for (size_t i = 0; i < w; i += 16) {
        *nt |= (uint64_t)out_tchar_16(p + i) << i;
        *ng |= (uint64_t)out_target_16(p + i) << i;
    }
}
TT_SSE42 static inline uint64_t window_mask_sse42(const char *p)
{
    return (uint64_t)stop_16(p) | (uint64_t)stop_16(p + 16) << 16 |
           (uint64_t)stop_16(p + 32) << 32 | (uint64_t)stop_16(p + 48) << 48;
}

#define TT_FL_FN          field_line_sse42
#define TT_FL_SECTION     section_sse42
#define TT_FL_REQUEST     request_line_sse42
#define TT_FL_LINE_MASKS  line_masks_sse42
#define TT_FL_TARGET(...) target_sse42(__VA_ARGS__)
#define TT_FL_WINDOW      window_sse42
#define TT_FL_ATTR        TT_SSE42
#define TT_FL_TCHAR(...)  tchar_sse42(__VA_ARGS__)
#define TT_FL_VALUE(...)  value_sse42(__VA_ARGS__)
#define TT_FL_MASKS(...)  window_mask_sse42(__VA_ARGS__)
#include "http1/field_line.h"

static const tt__http1_scan ops_sse42 = {TT__SIMD_SSE42, tchar_sse42,      target_sse42,
                                         value_sse42,    field_line_sse42, request_line_sse42,
                                         section_sse42};

/* ---- AVX2 (32 bytes) ---- */

TT_AVX2 static inline unsigned out_tchar_32(const char *p)
{
    const __m256i lo =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)tchar_lo));
    const __m256i hi =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)tchar_hi));
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i a = _mm256_shuffle_epi8(lo, _mm256_and_si256(x, nib));
    __m256i c = _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
    return (unsigned)_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_and_si256(a, c), _mm256_setzero_si256()));
}
TT_AVX2 static inline unsigned out_target_32(const char *p)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(0x21), x),
                                  _mm256_cmpeq_epi8(x, _mm256_set1_epi8(0x7f)));
    return (unsigned)_mm256_movemask_epi8(bad);
}
TT_AVX2 static inline unsigned out_value_32(const char *p)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i ctl = _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(0x1f)), x);
    ctl = _mm256_andnot_si256(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(0x09)), ctl);
    return (unsigned)_mm256_movemask_epi8(
        _mm256_or_si256(ctl, _mm256_cmpeq_epi8(x, _mm256_set1_epi8(0x7f))));
}

SCANNERS(TT_AVX2, avx2, 32, sse42)

TT_AVX2 static inline uint32_t stop_32(const char *p)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
    uint32_t ge20 = (uint32_t)_mm256_movemask_epi8(_mm256_adds_epu8(x, _mm256_set1_epi8(0x60)));
    return ~ge20 | (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(0x7f)));
}
TT_AVX2 static inline void line_masks_avx2(const char *p, size_t w, uint64_t *nt, uint64_t *ng)
{
    *nt = out_tchar_32(p);
    *ng = out_target_32(p);
    if (w == 64) {
        *nt |= (uint64_t)out_tchar_32(p + 32) << 32;
        *ng |= (uint64_t)out_target_32(p + 32) << 32;
    }
}
TT_AVX2 static inline uint64_t window_mask_avx2(const char *p)
{
    return (uint64_t)stop_32(p) | (uint64_t)stop_32(p + 32) << 32;
}

#define TT_FL_FN          field_line_avx2
#define TT_FL_SECTION     section_avx2
#define TT_FL_REQUEST     request_line_avx2
#define TT_FL_LINE_MASKS  line_masks_avx2
#define TT_FL_TARGET(...) target_avx2(__VA_ARGS__)
#define TT_FL_WINDOW      window_avx2
#define TT_FL_ATTR        TT_AVX2
#define TT_FL_TCHAR(...)  tchar_avx2(__VA_ARGS__)
#define TT_FL_VALUE(...)  value_avx2(__VA_ARGS__)
#define TT_FL_MASKS(...)  window_mask_avx2(__VA_ARGS__)
#include "http1/field_line.h"

static const tt__http1_scan ops_avx2 = {TT__SIMD_AVX2,   tchar_avx2,        target_avx2, value_avx2,
                                        field_line_avx2, request_line_avx2, section_avx2};
#endif /* TT_SIMD_X86 */

/* ---- the level in effect ---- */

static const tt__http1_scan *const levels[] = {
    &ops_scalar,
#if TT_SIMD_X86
    &ops_sse42,
    &ops_avx2,
#endif
};
static const char *const level_names[] = {"scalar", "sse4.2", "avx2"};

/* Set on first use (racing first uses store the same) or by tt__http1_simd_force. */
const tt__http1_scan *tt__http1_scan_current;

int tt__http1_simd_best(void)
{
    static int best = -1;
    int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (b >= 0) return b;
    b = TT__SIMD_SCALAR;
#if TT_SIMD_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        b = TT__SIMD_AVX2;
    else if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3"))
        b = TT__SIMD_SSE42;
#endif
    __atomic_store_n(&best, b, __ATOMIC_RELAXED);
    return b;
}

/* TETHER_HTTP1_SIMD=scalar|sse4.2|avx2 caps the automatic choice (read when choosing). */
static int env_cap(void)
{
    const char *e = getenv("TETHER_HTTP1_SIMD");
    for (int l = 0; e && l < (int)(sizeof(level_names) / sizeof(level_names[0])); l++)
        if (!strcmp(e, level_names[l])) return l;
    return TT__SIMD_AVX2;
}

static const tt__http1_scan *choose(int level)
{
    int best = tt__http1_simd_best();
    if (level < 0 || level > best) level = best;
    const tt__http1_scan *s = levels[level];
    __atomic_store_n(&tt__http1_scan_current, s, __ATOMIC_RELEASE);
    return s;
}

const tt__http1_scan *tt__http1_scan_choose(void)
{
    return choose(env_cap());
}

int tt__http1_simd_force(int level)
{
    return choose(level < 0 ? env_cap() : level)->level;
}

int tt__http1_simd_level(void)
{
    return tt__http1_scan_ops()->level;
}

const char *tt__http1_simd_name(int level)
{
    return level >= 0 && level <= TT__SIMD_AVX2 ? level_names[level] : "unknown";
}
