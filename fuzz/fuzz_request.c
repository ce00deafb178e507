/* fuzz_request.c — libFuzzer target: the request parser and the chunked decoder behind it.
 * Checks invariants: same verdict whole (at the best CPU level) and split at a fuzzer-chosen
 * point (with the buffer moved between calls, at the scalar level), consumed <= input, pointers
 * inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1/scan.h"
#include "tether/http1.h"

static void check_inside(const char *base, size_t n, const char *p, size_t l)
{
    if (l && (p < base || p + l > base + n)) abort();
}

static size_t kept_len;

static int parse(const uint8_t *data, size_t size, size_t split, tt_http1_request *r,
                 tt_http1_parser *p, char **keep)
{
    tt_http1_parser_init(p, NULL);
    int rc = -2;
    if (split && split < size) {
        char *a = malloc(split);
        memcpy(a, data, split);
        rc = tt_http1_parse_request(p, a, split, r);
        if (rc != -2) {
            *keep = a; /* r points into it */
            kept_len = split;
            return rc;
        }
        free(a);
    }
    char *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    rc = tt_http1_parse_request(p, b, size, r);
    *keep = b;
    kept_len = size;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t split = data[0] % (size + 1);
    data++;
    size--;
    tt_header h1[32], h2[32];
    tt_http1_request r1 = {.headers = h1, .max_headers = 32};
    tt_http1_request r2 = {.headers = h2, .max_headers = 32};
    tt_http1_parser p1, p2;
    char *b1 = NULL, *b2 = NULL;
    tt__http1_simd_force(-1);
    int a = parse(data, size, 0, &r1, &p1, &b1);
    tt__http1_simd_force(TT__SIMD_SCALAR);
    int b = parse(data, size, split, &r2, &p2, &b2);
    tt__http1_simd_force(-1);
    size_t n2 = kept_len;
    if (a != b) abort();
    if (a == -1 && p1.error != p2.error) abort();
    if (a > 0) {
        if ((size_t)a > size) abort();
        if (r1.num_headers != r2.num_headers || r1.flags != r2.flags || r1.body != r2.body) abort();
        check_inside(b1, size, r1.method, r1.method_len);
        check_inside(b1, size, r1.target, r1.target_len);
        check_inside(b2, n2, r2.target, r2.target_len);
        for (size_t i = 0; i < r1.num_headers; i++) {
            check_inside(b1, size, h1[i].name, h1[i].name_len);
            check_inside(b1, size, h1[i].value, h1[i].value_len);
            check_inside(b2, n2, h2[i].value, h2[i].value_len);
            if (h1[i].value_len != h2[i].value_len || h1[i].name_len != h2[i].name_len ||
                memcmp(h1[i].value, h2[i].value, h1[i].value_len) ||
                memcmp(h1[i].name, h2[i].name, h1[i].name_len))
                abort();
        }
        if (r1.body == TT_HTTP1_BODY_CHUNKED) {
            tt_http1_chunked_decoder d;
            tt_header tr[4];
            memset(&d, 0, sizeof(d));
            d.trailers = tr;
            d.max_trailers = 4;
            size_t out;
            long c = tt_http1_chunked_decode(&d, b1 + a, size - (size_t)a, &out);
            if (c > (long)(size - (size_t)a) || out > size - (size_t)a) abort();
        }
    }
    free(b1);
    free(b2);
    return 0;
}
