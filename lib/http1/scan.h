/* scan.h — internal: the HTTP/1.1 parser's byte-class scanners and the shared field-line
 * grammar, compiled once per CPU level (scalar, SSE4.2, AVX2) by scan.c; the best level the CPU
 * supports is chosen once at run time (see docs/http1.md, "Vectorised scanning"). */
#ifndef TT_HTTP1_SCAN_H
#define TT_HTTP1_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "tether/http1.h"

/* CPU levels, lowest first. */
enum { TT__SIMD_SCALAR = 0, TT__SIMD_SSE42 = 1, TT__SIMD_AVX2 = 2 };

/* Where a field line stands (RFC 9112 §5): the phase to continue from and the offsets (into the
 * message buffer) found so far. A field line's parse is resumable: only offsets are kept. */
typedef enum tt__fl_phase {
    TT__FL_START =
        0,           /* at the first byte of a field line or of the empty line ending the section */
    TT__FL_END_LF,   /* CR of the empty line seen */
    TT__FL_NAME,     /* in the name (name is set) */
    TT__FL_OWS,      /* after the colon (name, name_end set) */
    TT__FL_VALUE,    /* in the value (value set) */
    TT__FL_VALUE_LF, /* CR after the value seen (value_end set) */
} tt__fl_phase;

typedef struct tt__fline {
    tt__fl_phase phase;
    size_t pos;              /* next byte to examine */
    size_t name, name_end;   /* field name [name, name_end) */
    size_t value, value_end; /* field value [value, value_end), OWS removed when complete */
} tt__fline;

/* A 64-byte window of a field section: bit i of nv set: byte base + i is not a value byte (not
 * field-vchar, SP or HTAB), or is a HTAB (the SIMD levels stop there too). */
typedef struct tt__fwin {
    size_t base;
    uint64_t nv;
} tt__fwin;

/* tt__http1_scan.field_line results (a positive result is a tt_http1_error). */
enum {
    TT__FL_FIELD = 0, /* a field line is complete: fl holds it, fl->pos is after its LF */
    TT__FL_END = -1,  /* the empty line ending the section is complete; fl->pos after its LF */
    TT__FL_MORE = -2, /* b[fl->pos] is past end: more input needed; fl says where to resume */
};

/* Offset of the first byte of b[pos, end) outside the scanner's class, or end. Reads only
 * b[0, end) (which must be readable), never past end. */
typedef size_t (*tt__scan_fn)(const char *b, size_t pos, size_t end);

/* One CPU level's scanners. */
typedef struct tt__http1_scan {
    int level;          /* TT__SIMD_* */
    tt__scan_fn tchar;  /* tchar: methods, field names, tokens */
    tt__scan_fn target; /* VCHAR (0x21-0x7E): request-target */
    tt__scan_fn value;  /* field-vchar, SP, HTAB: field values, reason phrase */
    /* Continue the field line fl in b[0, end): the head's and the trailers' one grammar. room
     * is how many more fields may be stored (0: a new field line is TOO_MANY_HEADERS, checked
     * after its first byte). Returns TT__FL_FIELD, TT__FL_END, TT__FL_MORE or the error, with
     * fl->pos at the offending byte. */
    int (*field_line)(const char *b, size_t end, size_t room, tt__fline *fl);
    /* Take a run of plain, complete field lines from b[pos] (the fast path of a field section):
     * stored in out[0, room), OWS removed; returns how many, *next = the first line not taken,
     * which field_line then decides. Bytes are validated exactly as field_line does. */
    /* The start of a request line at b[pos]: *method_end = the method's end (first non-tchar);
     * when that is a SP, returns the target's end (first non-VCHAR after it). */
    size_t (*request_line)(const char *b, size_t pos, size_t lend, size_t *method_end);
    size_t (*section)(const char *b, size_t pos, size_t end, tt_header *out, size_t room,
                      size_t *next);
} tt__http1_scan;

/* The scanners of the level in effect (chosen on first use: the best the CPU supports, capped
 * by the environment variable TETHER_HTTP1_SIMD=scalar|sse4.2|avx2, or tt__http1_simd_force). */
extern const tt__http1_scan *tt__http1_scan_current;
const tt__http1_scan *tt__http1_scan_choose(void);
static inline const tt__http1_scan *tt__http1_scan_ops(void)
{
    const tt__http1_scan *s = __atomic_load_n(&tt__http1_scan_current, __ATOMIC_ACQUIRE);
    return s ? s : tt__http1_scan_choose();
}

/* Force a level for tests and benchmarks (-1: automatic); capped at what the CPU supports.
 * Process-wide; not meant to race with parsing. Returns the level now in effect. */
int tt__http1_simd_force(int level);
/* The level in effect. */
int tt__http1_simd_level(void);
/* The best level this CPU supports. */
int tt__http1_simd_best(void);
/* "scalar", "sse4.2" or "avx2"; static storage. */
const char *tt__http1_simd_name(int level);

#endif
