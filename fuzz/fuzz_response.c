/* fuzz_response.c — libFuzzer target: the response parser for each request method kind,
 * whole (at the best CPU level) versus split (buffer moved between calls, at the scalar level)
 * must agree; framing must be consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1/scan.h"
#include "tether/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t split = data[0] % (size - 1);
    tt_http1_method m = data[1] % 3 == 0   ? TT_HTTP1_M_GET
                        : data[1] % 3 == 1 ? TT_HTTP1_M_HEAD
                                           : TT_HTTP1_M_CONNECT;
    data += 2;
    size -= 2;
    tt_header h1[32], h2[32];
    tt_http1_response r1 = {.headers = h1, .max_headers = 32};
    tt_http1_response r2 = {.headers = h2, .max_headers = 32};
    tt_http1_parser p1, p2;
    tt_http1_parser_init(&p1, NULL);
    tt_http1_parser_init(&p2, NULL);
    char *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    tt__http1_simd_force(-1);
    int a = tt_http1_parse_response(&p1, b, size, m, &r1);
    tt__http1_simd_force(TT__SIMD_SCALAR);
    int c = -2;
    char *s = NULL;
    const char *b2 = b; /* where r2's pointers point */
    if (split) {
        s = malloc(split);
        memcpy(s, data, split);
        c = tt_http1_parse_response(&p2, s, split, m, &r2);
        b2 = s;
    }
    if (c == -2) {
        c = tt_http1_parse_response(&p2, b, size, m, &r2);
        b2 = b;
    }
    tt__http1_simd_force(-1);
    if (a != c || (a == -1 && p1.error != p2.error)) abort();
    if (a > 0) {
        if ((size_t)a > size) abort();
        if (r1.status < 100 || r1.status > 999) abort();
        if (r1.body != r2.body || r1.flags != r2.flags || r1.content_length != r2.content_length)
            abort();
        if (m == TT_HTTP1_M_HEAD && r1.body != TT_HTTP1_BODY_NONE) abort();
        if (r1.body == TT_HTTP1_BODY_CLOSE && (r1.flags & TT_HTTP1_F_KEEP_ALIVE)) abort();
        if (r1.num_headers != r2.num_headers) abort();
        for (size_t i = 0; i < r1.num_headers; i++) {
            if (h1[i].value < b || h1[i].value + h1[i].value_len > b + size) abort();
            if (h1[i].value - b != h2[i].value - b2 || h1[i].value_len != h2[i].value_len ||
                h1[i].name - b != h2[i].name - b2 || h1[i].name_len != h2[i].name_len)
                abort();
        }
    }
    free(s);
    free(b);
    return 0;
}
