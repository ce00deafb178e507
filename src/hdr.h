/* hdr.h — an HDR-style latency histogram for `tether bench`: log-linear buckets covering
 * 1 µs to 60 s at 3 significant digits (2048 sub-buckets per power of two). One fixed array,
 * allocated once; recording is a few instructions and never allocates. Not thread-safe: one
 * histogram per thread, merged at the end. */
#ifndef TT_SRC_HDR_H
#define TT_SRC_HDR_H

#include <stddef.h>
#include <stdint.h>

#define TT_HDR_MAX_US   60000000ull /* values are clamped to 60 s */
#define TT_HDR_SUB_MAG  10          /* half the sub-bucket count is 2^10 */
#define TT_HDR_SUB_HALF (1u << TT_HDR_SUB_MAG)
#define TT_HDR_BUCKETS  16 /* 2048 * 2^15 > 60e6 */
#define TT_HDR_COUNTS   ((TT_HDR_BUCKETS + 1) * TT_HDR_SUB_HALF)

typedef struct tt_hdr {
    uint64_t total; /* values recorded */
    uint64_t min, max;
    double sum; /* for the mean */
    uint64_t counts[TT_HDR_COUNTS];
} tt_hdr;

/* Allocate an empty histogram (NULL on ENOMEM); free with free(). */
tt_hdr *tt_hdr_new(void);
/* Empty h. */
void tt_hdr_reset(tt_hdr *h);
/* Record one value in microseconds (0 counts as the lowest bucket; above 60 s clamps). */
void tt_hdr_record(tt_hdr *h, uint64_t us);
/* Record value count times. */
void tt_hdr_record_n(tt_hdr *h, uint64_t us, uint64_t count);
/* Add every count of src into dst. */
void tt_hdr_merge(tt_hdr *dst, const tt_hdr *src);
/* The value at percentile p (0..100): the highest value equivalent to the recorded one at that
 * rank (HdrHistogram convention), never above the exact max. 0 when empty. */
uint64_t tt_hdr_percentile(const tt_hdr *h, double p);
/* Mean of the recorded values (0 when empty). */
double tt_hdr_mean(const tt_hdr *h);
/* Index of the bucket holding us, and the lowest/highest values sharing that bucket. */
size_t tt_hdr_index(uint64_t us);
uint64_t tt_hdr_lowest(size_t index);
uint64_t tt_hdr_highest(size_t index);

#endif
