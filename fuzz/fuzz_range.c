/* fuzz_range.c — libFuzzer target: the static handler's Range parsing (lib/handlers/static.h)
 * against a fuzzer-chosen file size (up to 2^62). Checks: no overflow (UBSan), a satisfiable
 * range lies inside the file with from <= to, nothing is written otherwise, and the result
 * does not depend on the bytes after the value (it is parsed by length, not by NUL). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    uint64_t u = 0;
    memcpy(&u, data, 8);
    off_t fsize = (off_t)(u >> 2);    /* 0 .. 2^62 - 1 */
    if (data[0] & 1) fsize %= 100000; /* often a realistic size */
    data += 8;
    size -= 8;
    char *v = malloc(size + 1);
    memcpy(v, data, size);
    v[size] = '9'; /* a digit past the end must not be read */
    off_t from = -7, to = -7;
    int r = tt__static_parse_range(v, size, fsize, &from, &to);
    if (r == 1) {
        if (from < 0 || to < from || to >= fsize) abort();
    } else if (r == 0 || r == -1) {
        if (from != -7 || to != -7) abort();
        if (r == -1 && fsize > 0 && size >= 6 && memchr(v, ',', size)) abort();
    } else {
        abort();
    }
    off_t f2 = -7, t2 = -7;
    v[size] = 0;
    if (tt__static_parse_range(v, size, fsize, &f2, &t2) != r ||
        (r == 1 && (f2 != from || t2 != to)))
        abort();
    free(v);
    return 0;
}
