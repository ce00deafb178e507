/* fuzz_chunked.c — libFuzzer target: the in-place chunked decoder. The input is decoded whole
 * and in pieces of fuzzer-chosen sizes (the unconsumed rest carried over as a server would), the
 * trailers at the best CPU level and at the scalar level; both must agree on the verdict, the
 * decoded body and the bytes consumed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1/scan.h"
#include "tether/http1.h"

static int run(const uint8_t *data, size_t size, size_t step, char *body, size_t *blen,
               size_t *used)
{
    tt_http1_chunked_decoder d;
    tt_header tr[4];
    memset(&d, 0, sizeof(d));
    d.trailers = tr;
    d.max_trailers = 4;
    d.max_trailer = 256;
    char *pend = malloc(size + 1);
    size_t plen = 0, fed = 0;
    *blen = 0;
    *used = 0;
    int verdict = 0;
    while (fed < size) {
        size_t n = size - fed < step ? size - fed : step;
        memcpy(pend + plen, data + fed, n);
        plen += n;
        fed += n;
        char *b = malloc(plen ? plen : 1);
        memcpy(b, pend, plen);
        size_t out;
        long c = tt_http1_chunked_decode(&d, b, plen, &out);
        if (c < 0) {
            verdict = -1 - (int)d.error;
            free(b);
            break;
        }
        if ((size_t)c > plen || out > (size_t)c) abort();
        memcpy(body + *blen, b, out);
        *blen += out;
        *used += (size_t)c;
        memmove(pend, b + c, plen - (size_t)c);
        plen -= (size_t)c;
        for (size_t i = 0; d.done && i < d.num_trailers && i < 4; i++)
            if (tr[i].name < b || tr[i].name + tr[i].name_len > b + c) abort();
        free(b);
        if (d.done) {
            verdict = 1;
            break;
        }
    }
    free(pend);
    return verdict;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = 1 + data[0] % 16;
    data++;
    size--;
    char *b1 = malloc(size + 1), *b2 = malloc(size + 1);
    size_t l1, l2, u1, u2;
    tt__http1_simd_force(-1);
    int v1 = run(data, size, size ? size : 1, b1, &l1, &u1);
    tt__http1_simd_force(TT__SIMD_SCALAR);
    int v2 = run(data, size, step, b2, &l2, &u2);
    tt__http1_simd_force(-1);
    if (v1 != v2) abort();
    if (v1 >= 0 && (l1 != l2 || memcmp(b1, b2, l1))) abort();
    if (v1 == 1 && u1 != u2) abort();
    free(b1);
    free(b2);
    return 0;
}
