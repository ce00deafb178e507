/* hdr.c — log-linear latency histogram (see hdr.h). Index math follows HdrHistogram with a
 * unit of 1 µs: bucket b holds values [2^(b+10), 2^(b+11)) in 1024 steps of 2^b (bucket 0
 * holds 0..2047 exactly), so every value is kept within 1/1024 of itself. */
#include "hdr.h"

#include <stdlib.h>
#include <string.h>

tt_hdr *tt_hdr_new(void)
{
    tt_hdr *h = malloc(sizeof *h);
    if (h) tt_hdr_reset(h);
    return h;
}

void tt_hdr_reset(tt_hdr *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t tt_hdr_index(uint64_t v)
{
    if (v > TT_HDR_MAX_US) v = TT_HDR_MAX_US;
    /* position of the highest bit of (v | 2047), minus the sub-bucket magnitude */
    int bucket = 63 - __builtin_clzll(v | (2 * TT_HDR_SUB_HALF - 1)) - TT_HDR_SUB_MAG;
    uint64_t sub = v >> bucket; /* in [1024, 2048) for bucket > 0, [0, 2048) for bucket 0 */
    return ((size_t)bucket << TT_HDR_SUB_MAG) + (size_t)sub;
}

uint64_t tt_hdr_lowest(size_t index)
{
    size_t bucket = index >> TT_HDR_SUB_MAG;
    uint64_t sub = index & (TT_HDR_SUB_HALF - 1);
    if (bucket == 0) return sub;
    if (bucket == 1 && index < 2 * TT_HDR_SUB_HALF)
        return index; /* 1024..2047 of bucket 0's upper half */
    bucket -= 1;
    return (sub + TT_HDR_SUB_HALF) << bucket;
}

uint64_t tt_hdr_highest(size_t index)
{
    size_t bucket = index >> TT_HDR_SUB_MAG;
    if (bucket <= 1) return tt_hdr_lowest(index);
    return tt_hdr_lowest(index) + (1ull << (bucket - 1)) - 1;
}

void tt_hdr_record_n(tt_hdr *h, uint64_t us, uint64_t count)
{
    if (!count) return;
    if (us > TT_HDR_MAX_US) us = TT_HDR_MAX_US;
    h->counts[tt_hdr_index(us)] += count;
    h->total += count;
    h->sum += (double)us * (double)count;
    if (us < h->min) h->min = us;
    if (us > h->max) h->max = us;
}

void tt_hdr_record(tt_hdr *h, uint64_t us)
{
    tt_hdr_record_n(h, us, 1);
}

void tt_hdr_merge(tt_hdr *dst, const tt_hdr *src)
{
    if (!src->total) return;
    for (size_t i = 0; i < TT_HDR_COUNTS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t tt_hdr_percentile(const tt_hdr *h, double p)
{
    if (!h->total) return 0;
    if (p >= 100.0) return h->max;
    if (p < 0) p = 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < TT_HDR_COUNTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = tt_hdr_highest(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double tt_hdr_mean(const tt_hdr *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}
