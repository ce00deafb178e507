/* json.c — the JSON writer (tether/json.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "tether/json.h"

TT_API void tt_json_init(tt_json *j, int indent)
{
    memset(j, 0, sizeof *j);
    j->grow = 1;
    j->indent = indent;
}

TT_API void tt_json_init_fixed(tt_json *j, char *buf, size_t cap, int indent)
{
    memset(j, 0, sizeof *j);
    j->buf = buf;
    j->cap = cap;
    j->indent = indent;
    if (cap) buf[0] = 0;
}

TT_API void tt_json_free(tt_json *j)
{
    if (j->grow) free(j->buf);
    j->buf = NULL;
    j->len = j->cap = 0;
}

/* Room for n more bytes plus the NUL; 0 when they do not fit (fixed mode cuts, len counts). */
static int room(tt_json *j, size_t n)
{
    if (j->len + n < j->cap) return 1;
    if (!j->grow || j->err) return 0;
    size_t cap = j->cap ? j->cap : 256;
    while (cap <= j->len + n)
        cap *= 2;
    char *b = realloc(j->buf, cap);
    if (!b) {
        j->err = -ENOMEM;
        return 0;
    }
    j->buf = b;
    j->cap = cap;
    return 1;
}

static void put(tt_json *j, const char *s, size_t n)
{
    if (room(j, n)) {
        memcpy(j->buf + j->len, s, n);
        j->buf[j->len + n] = 0;
    } else if (!j->grow && j->len < j->cap) { /* fixed: keep what fits */
        size_t k = j->cap - 1 - j->len;
        memcpy(j->buf + j->len, s, k);
        j->buf[j->cap - 1] = 0;
    }
    j->len += n;
}

static void putc_(tt_json *j, char c)
{
    put(j, &c, 1);
}

static void newline(tt_json *j, int depth)
{
    if (!j->indent) return;
    putc_(j, '\n');
    for (int i = 0; i < depth * j->indent; i++)
        putc_(j, ' ');
}

static void quoted(tt_json *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    putc_(j, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(j, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"': put(j, "\\\"", 2); break;
        case '\\': put(j, "\\\\", 2); break;
        case '\n': put(j, "\\n", 2); break;
        case '\r': put(j, "\\r", 2); break;
        case '\t': put(j, "\\t", 2); break;
        default: put(j, esc, 6);
        }
    }
    put(j, s + run, n - run);
    putc_(j, '"');
}

/* Separator, indentation and key before a member. */
static void member(tt_json *j, const char *key)
{
    uint64_t bit = 1ull << j->depth;
    if (j->depth) {
        if (j->filled & bit) putc_(j, ',');
        newline(j, j->depth);
    }
    j->filled |= bit;
    if (key && !(j->arr & bit)) {
        quoted(j, key, strlen(key));
        put(j, j->indent ? ": " : ":", j->indent ? 2 : 1);
    }
}

static void open_(tt_json *j, const char *key, char c, int arr)
{
    member(j, key);
    putc_(j, c);
    if (j->depth >= 62) return; /* deeper nesting is flattened rather than overflowing */
    j->depth++;
    uint64_t bit = 1ull << j->depth;
    j->filled &= ~bit;
    if (arr)
        j->arr |= bit;
    else
        j->arr &= ~bit;
}

TT_API void tt_json_object(tt_json *j, const char *key)
{
    open_(j, key, '{', 0);
}

TT_API void tt_json_array(tt_json *j, const char *key)
{
    open_(j, key, '[', 1);
}

TT_API void tt_json_end(tt_json *j)
{
    if (!j->depth) return;
    uint64_t bit = 1ull << j->depth;
    int arr = (j->arr & bit) != 0;
    int filled = (j->filled & bit) != 0;
    j->depth--;
    if (filled) newline(j, j->depth);
    putc_(j, arr ? ']' : '}');
}

TT_API void tt_json_strn(tt_json *j, const char *key, const char *s, size_t n)
{
    member(j, key);
    if (s)
        quoted(j, s, n);
    else
        put(j, "null", 4);
}

TT_API void tt_json_str(tt_json *j, const char *key, const char *s)
{
    tt_json_strn(j, key, s, s ? strlen(s) : 0);
}

TT_API void tt_json_int(tt_json *j, const char *key, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    member(j, key);
    put(j, b, (size_t)n);
}

TT_API void tt_json_uint(tt_json *j, const char *key, unsigned long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", v);
    member(j, key);
    put(j, b, (size_t)n);
}

TT_API void tt_json_double(tt_json *j, const char *key, double v, int decimals)
{
    char b[64];
    member(j, key);
    if (!isfinite(v)) {
        put(j, "null", 4);
        return;
    }
    int n = snprintf(b, sizeof b, "%.*f", decimals < 0 ? 0 : decimals > 17 ? 17 : decimals, v);
    put(j, b, n > 0 && (size_t)n < sizeof b ? (size_t)n : 0);
}

TT_API void tt_json_bool(tt_json *j, const char *key, int v)
{
    member(j, key);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

TT_API void tt_json_null(tt_json *j, const char *key)
{
    member(j, key);
    put(j, "null", 4);
}

TT_API void tt_json_raw(tt_json *j, const char *key, const char *json)
{
    member(j, key);
    put(j, json, strlen(json));
}
