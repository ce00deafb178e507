/* fuzz_static_path.c — libFuzzer target: the static handler's path cleaning and the Location
 * of its directory redirect (lib/handlers/static.h). Checks the invariants the handler relies
 * on: the clean path fits, is relative, has no NUL, backslash, empty, "." or ".." segment; it
 * is idempotent (cleaning "/" + it gives it back); the Location starts with one '/', never
 * "//", and holds only URI path characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cap = 1 + data[0] % 128; /* small buffers too: the bounds are part of the contract */
    char out[256], again[260], loc[800];
    int n = tt__static_clean_path((const char *)data + 1, size - 1, out, cap);
    if (n < 0) return 0;
    if ((size_t)n >= cap || strlen(out) != (size_t)n) abort();
    if (out[0] == '/' || strstr(out, "//") || strchr(out, '\\')) abort();
    for (char *s = out; *s;) {
        size_t l = strcspn(s, "/");
        if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.')) abort();
        s += l;
        if (*s == '/') s++;
    }
    /* idempotent, on the literal bytes ('%' in the output would decode again: skip those) */
    if (!strchr(out, '%')) {
        again[0] = '/';
        memcpy(again + 1, out, (size_t)n);
        int m = tt__static_clean_path(again, (size_t)n + 1, again + 0, 0);
        if (m != -1) abort(); /* size 0: nothing fits */
        char back[256];
        m = tt__static_clean_path(again, (size_t)n + 1, back, sizeof back);
        if (m != n || memcmp(back, out, (size_t)n)) abort();
    }
    int l = tt__static_dir_location(out, loc, 1 + data[0] % sizeof loc);
    if (l < 0) return 0;
    if (loc[0] != '/' || (l > 1 && loc[1] == '/') || strlen(loc) != (size_t)l) abort();
    for (int i = 0; i < l; i++) {
        unsigned char c = (unsigned char)loc[i];
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '\\' || c == '"') abort();
    }
    return 0;
}
