/* tether/json.h — the one JSON writer: the client's statistics, the status pages, bench and
 * conns reports all write through it. Keys and strings are escaped (", \, control bytes, and
 * invalid UTF-8 passes through as bytes); numbers are written exactly (integers) or with the
 * given decimals (NaN and infinities become null). Nesting up to 63 levels.
 *
 * Two modes: growable (tt_json_init; the writer owns a malloc'ed buffer, tt_json_free frees
 * it) and fixed (tt_json_init_fixed over a caller's buffer: output is cut to fit, always
 * NUL-terminated, and len counts what the whole document needed, as snprintf does). */
#ifndef TETHER_JSON_H
#define TETHER_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_json {
    char *buf;       /* the text so far, NUL-terminated (NULL before the first byte, growable) */
    size_t len;      /* bytes written (fixed mode: bytes needed) */
    size_t cap;      /* size of buf */
    int grow;        /* 1: buf is the writer's and grows */
    int err;         /* 0, or -ENOMEM once a growth failed (the text is then incomplete) */
    int indent;      /* spaces per level; 0: compact on one line */
    int depth;       /* open containers */
    uint64_t arr;    /* bit d: the container at depth d is an array */
    uint64_t filled; /* bit d: the container at depth d has a member already */
} tt_json;

/* A growable writer; indent 0 writes one line. Free with tt_json_free. */
void tt_json_init(tt_json *j, int indent);
/* A writer over buf[cap] owned by the caller (cap > 0). */
void tt_json_init_fixed(tt_json *j, char *buf, size_t cap, int indent);
/* Free a growable writer's buffer (no-op for fixed ones). */
void tt_json_free(tt_json *j);

/* Containers: key names the member inside an object; pass NULL inside arrays and at the top. */
void tt_json_object(tt_json *j, const char *key);
void tt_json_array(tt_json *j, const char *key);
/* Close the innermost open container. */
void tt_json_end(tt_json *j);

/* Members and array elements (key NULL in arrays). */
void tt_json_str(tt_json *j, const char *key, const char *s);
void tt_json_strn(tt_json *j, const char *key, const char *s, size_t n);
void tt_json_int(tt_json *j, const char *key, long long v);
void tt_json_uint(tt_json *j, const char *key, unsigned long long v);
void tt_json_double(tt_json *j, const char *key, double v, int decimals);
void tt_json_bool(tt_json *j, const char *key, int v);
void tt_json_null(tt_json *j, const char *key);
/* A value that is already JSON text (not checked). */
void tt_json_raw(tt_json *j, const char *key, const char *json);

#ifdef __cplusplus
}
#endif
#endif
