/* test_hdr.c — the latency histogram of `tether bench` (src/hdr.c, compiled in here: it is
 * CLI code, not part of the library): bucket bounds, 3 significant digits, percentiles, merge. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../../../src/hdr.c"

Test(hdr, every_value_lies_in_its_bucket_within_a_thousandth)
{
    for (uint64_t v = 0; v <= TT_HDR_MAX_US; v += (v < 5000 ? 1 : v / 2000 + 1)) {
        size_t i = tt_hdr_index(v);
        cr_assert_lt(i, (size_t)TT_HDR_COUNTS);
        uint64_t lo = tt_hdr_lowest(i), hi = tt_hdr_highest(i);
        cr_assert(lo <= v && v <= hi, "v=%llu lo=%llu hi=%llu", (unsigned long long)v,
                  (unsigned long long)lo, (unsigned long long)hi);
        if (v > 0)
            cr_assert_leq((double)(hi - lo) / (double)v, 0.001, "v=%llu", (unsigned long long)v);
    }
}

Test(hdr, exact_below_2048_us)
{
    for (uint64_t v = 0; v < 2048; v++) {
        size_t i = tt_hdr_index(v);
        cr_assert_eq(tt_hdr_lowest(i), v);
        cr_assert_eq(tt_hdr_highest(i), v);
    }
}

Test(hdr, percentiles_of_1_to_1000)
{
    tt_hdr *h = tt_hdr_new();
    cr_assert_not_null(h);
    cr_assert_eq(tt_hdr_percentile(h, 50), 0); /* empty */
    for (uint64_t v = 1; v <= 1000; v++)
        tt_hdr_record(h, v);
    cr_assert_eq(h->total, 1000);
    cr_assert_eq(tt_hdr_percentile(h, 50), 500);
    cr_assert_eq(tt_hdr_percentile(h, 90), 900);
    cr_assert_eq(tt_hdr_percentile(h, 99), 990);
    cr_assert_eq(tt_hdr_percentile(h, 99.9), 999);
    cr_assert_eq(tt_hdr_percentile(h, 100), 1000);
    cr_assert_float_eq(tt_hdr_mean(h), 500.5, 1e-9);
    cr_assert_eq(h->min, 1);
    free(h);
}

Test(hdr, large_values_clamp_to_60s_and_max_is_exact)
{
    tt_hdr *h = tt_hdr_new();
    tt_hdr_record(h, 123456);
    tt_hdr_record(h, 99999999999ull);
    cr_assert_eq(h->max, TT_HDR_MAX_US);
    uint64_t p = tt_hdr_percentile(h, 10);
    cr_assert(p >= 123456 && p <= 123456 + 123, "p=%llu", (unsigned long long)p);
    cr_assert_eq(tt_hdr_percentile(h, 100), TT_HDR_MAX_US);
    free(h);
}

Test(hdr, merge_adds_counts_min_max)
{
    tt_hdr *a = tt_hdr_new(), *b = tt_hdr_new();
    tt_hdr_record_n(a, 10, 3);
    tt_hdr_record_n(b, 5000, 1);
    tt_hdr_merge(a, b);
    cr_assert_eq(a->total, 4);
    cr_assert_eq(a->min, 10);
    cr_assert_eq(a->max, 5000);
    cr_assert_eq(tt_hdr_percentile(a, 75), 10);
    cr_assert(tt_hdr_percentile(a, 100) == 5000);
    free(a);
    free(b);
}
