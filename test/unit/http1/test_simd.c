/* test_simd.c — the parser's vectorised paths against its scalar path: every CPU level this
 * machine supports (forced one by one; the scalar level always) must decide every byte exactly as
 * the class table does. Scanners are checked for every byte value at every position of a 16-,
 * 32- and 64-byte block (and in the tail block that ends at the buffer's end, before a PROT_NONE
 * page); whole heads are checked with a bad byte at every position of long names, values,
 * targets and reason phrases, shifted across every lane of a 64-byte window. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "http1/chars.h"
#include "http1/scan.h"

static guard g;

static void setup(void)
{
    guard_init(&g, 1 << 16);
}
static void teardown(void)
{
    guard_free(&g);
    tt__http1_simd_force(-1);
}

TestSuite(simd, .init = setup, .fini = teardown);

/* The scanners' classes, as the table says. */
static int in_tchar(int c)
{
    return TT__IS(c, TT__C_TCHAR) != 0;
}
static int in_target(int c)
{
    return TT__IS(c, TT__C_TARGET) != 0;
}
static int in_value(int c)
{
    return TT__IS(c, TT__C_VALUE | TT__C_OWS) != 0;
}

Test(simd, levels)
{
    int best = tt__http1_simd_best();
    cr_assert(best >= TT__SIMD_SCALAR && best <= TT__SIMD_AVX2);
    for (int l = 0; l <= best; l++) {
        cr_assert_eq(tt__http1_simd_force(l), l);
        cr_assert_eq(tt__http1_simd_level(), l);
        cr_assert_eq(tt__http1_scan_ops()->level, l);
    }
    cr_assert_eq(tt__http1_simd_force(TT__SIMD_AVX2 + 1), best); /* capped */
    cr_assert_str_eq(tt__http1_simd_name(TT__SIMD_SCALAR), "scalar");
    cr_assert_str_eq(tt__http1_simd_name(TT__SIMD_SSE42), "sse4.2");
    cr_assert_str_eq(tt__http1_simd_name(TT__SIMD_AVX2), "avx2");
}

/* One scanner over n filler bytes with byte c at k (the buffer ends at a PROT_NONE page), from
 * every start up to k: the first outside byte is k when c is outside the class, else n. */
static void scan_case(tt__scan_fn fn, int (*in)(int), const char *name, int level, int c, size_t k,
                      size_t n)
{
    char tmp[200];
    memset(tmp, 'a', n);
    tmp[k] = (char)c;
    const char *b = guard_put(&g, tmp, n);
    for (size_t from = 0; from <= k; from += (k > 40 ? 7 : 1)) {
        size_t want = in(c) ? n : k;
        size_t got = fn(b, from, n);
        cr_assert_eq(got, want, "%s level %d: byte 0x%02x at %zu of %zu from %zu: %zu, want %zu",
                     name, level, c, k, n, from, got, want);
    }
}

Test(simd, scanners_every_byte_every_lane)
{
    static const size_t lens[] = {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 130};
    for (int l = 0; l <= tt__http1_simd_best(); l++) {
        tt__http1_simd_force(l);
        const tt__http1_scan *s = tt__http1_scan_ops();
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            size_t n = lens[li];
            for (size_t k = 0; k < n; k++)
                for (int c = 0; c < 256; c++) {
                    scan_case(s->tchar, in_tchar, "tchar", l, c, k, n);
                    scan_case(s->target, in_target, "target", l, c, k, n);
                    scan_case(s->value, in_value, "value", l, c, k, n);
                }
        }
    }
}

/* Parse buf[0, n) at the level in effect, whole and split at `split` (fresh copies ending at the
 * guard page). Returns the result; *err the error; the request in *r (hdr: its fields). */
static int parse(const char *buf, size_t n, size_t split, int response, tt_http1_error *err,
                 tt_header *hdr, size_t *nh)
{
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    tt_http1_request rq = {.headers = hdr, .max_headers = 32};
    tt_http1_response rs = {.headers = hdr, .max_headers = 32};
    int rc = -2;
    if (split && split < n) {
        const char *b = guard_put(&g, buf, split);
        rc = response ? tt_http1_parse_response(&p, b, split, TT_HTTP1_M_GET, &rs)
                      : tt_http1_parse_request(&p, b, split, &rq);
    }
    if (rc == -2) {
        const char *b = guard_put(&g, buf, n);
        rc = response ? tt_http1_parse_response(&p, b, n, TT_HTTP1_M_GET, &rs)
                      : tt_http1_parse_request(&p, b, n, &rq);
    }
    *err = p.error;
    *nh = response ? rs.num_headers : rq.num_headers;
    return rc;
}

/* What every level must say about a message: rc, error, and (when complete) the last field. */
typedef struct verdict {
    int rc;
    tt_http1_error err;
    size_t nh;
    char last[160];
} verdict;

static void judge(const char *buf, size_t n, size_t split, int response, verdict *v)
{
    tt_header hdr[32];
    memset(v, 0, sizeof(*v));
    v->rc = parse(buf, n, split, response, &v->err, hdr, &v->nh);
    if (v->rc > 0 && v->nh)
        snprintf(v->last, sizeof(v->last), "%.*s=%.*s", (int)hdr[v->nh - 1].name_len,
                 hdr[v->nh - 1].name, (int)hdr[v->nh - 1].value_len, hdr[v->nh - 1].value);
}

/* Every level gives the scalar level's verdict, and that verdict is `want` (-1 with want_err,
 * or > 0). */
static void all_levels(const char *buf, size_t n, int response, int want, tt_http1_error want_err,
                       const char *what)
{
    verdict ref, v;
    tt__http1_simd_force(TT__SIMD_SCALAR);
    judge(buf, n, 0, response, &ref);
    cr_assert_eq(ref.rc > 0 ? 1 : ref.rc, want, "%s: scalar rc %d (%s), want %d", what, ref.rc,
                 tt_http1_error_name(ref.err), want);
    if (want < 0)
        cr_assert_eq(ref.err, want_err, "%s: scalar error %s, want %s", what,
                     tt_http1_error_name(ref.err), tt_http1_error_name(want_err));
    for (int l = 0; l <= tt__http1_simd_best(); l++) {
        tt__http1_simd_force(l);
        for (size_t split = 0; split < n; split += n / 3 + 1) {
            judge(buf, n, split, response, &v);
            cr_assert(
                v.rc == ref.rc && v.err == ref.err && v.nh == ref.nh && !strcmp(v.last, ref.last),
                "%s: level %d split %zu: rc %d %s [%s], scalar rc %d %s [%s]", what, l, split, v.rc,
                tt_http1_error_name(v.err), v.last, ref.rc, tt_http1_error_name(ref.err), ref.last);
        }
    }
}

/* A request whose field section starts at a shifted position (pad bytes of a first field) so
 * that the line under test falls on every lane of a 64-byte window. */
static size_t request_with(char *buf, size_t pad, const char *line, size_t line_len)
{
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nP: ");
    memset(buf + n, 'p', pad);
    n += pad;
    n += (size_t)sprintf(buf + n, "\r\n");
    memcpy(buf + n, line, line_len);
    n += line_len;
    n += (size_t)sprintf(buf + n, "\r\nZ: z\r\n\r\n");
    return n;
}

static const unsigned char bad_value[] = {0x00, 0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1f, 0x7f, '\n'};
static const unsigned char good_value[] = {'\t', ' ', 0x80, 0xff, ':', '"', 0x7e, 0x21};

/* "X-Value: " + len 'v's with byte c at k, after a pad-byte first field: want 1 or -1 (err). */
static void value_case(size_t len, size_t k, unsigned char c, size_t pad, int want,
                       tt_http1_error err)
{
    char line[200], buf[400], what[64];
    size_t ln = (size_t)sprintf(line, "X-Value: ");
    memset(line + ln, 'v', len);
    line[ln + k] = (char)c;
    size_t n = request_with(buf, pad, line, ln + len);
    snprintf(what, sizeof(what), "value len %zu byte 0x%02x at %zu pad %zu", len, c, k, pad);
    all_levels(buf, n, 0, want, err, what);
}

Test(simd, bad_byte_at_every_position_of_a_value)
{
    for (size_t len = 1; len <= 130; len += (len < 70 ? 1 : 13))
        for (size_t pad = 0; pad < 64; pad += (len < 70 ? 21 : 3))
            for (size_t k = 0; k < len; k++) {
                for (size_t bi = 0; bi < sizeof(bad_value); bi++)
                    value_case(len, k, bad_value[bi], pad, -1,
                               bad_value[bi] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_HEADER_VALUE);
                for (size_t gi = 0; pad % 7 == 0 && gi < sizeof(good_value); gi++)
                    value_case(len, k, good_value[gi], pad, 1, TT_HTTP1_OK);
            }
}

Test(simd, bad_byte_at_every_position_of_a_name)
{
    static const unsigned char bad[] = {'(', '"', '@', 0x7f, 0x80, 0x00, 0x01, ',', '{'};
    char line[200], buf[400], what[64];
    for (size_t len = 1; len <= 100; len += (len < 70 ? 1 : 10))
        for (size_t pad = 0; pad < 64; pad += (len < 70 ? 17 : 3))
            for (size_t k = 0; k < len; k++)
                for (size_t bi = 0; bi < sizeof(bad); bi++) {
                    memset(line, 'n', len);
                    line[k] = (char)bad[bi];
                    size_t ln = len + (size_t)sprintf(line + len, ": value");
                    size_t n = request_with(buf, pad, line, ln);
                    snprintf(what, sizeof(what), "name len %zu byte 0x%02x at %zu pad %zu", len,
                             bad[bi], k, pad);
                    all_levels(buf, n, 0, -1, TT_HTTP1_E_HEADER_NAME, what);
                }
}

Test(simd, bad_byte_at_every_position_of_a_target_and_reason)
{
    static const unsigned char bad_target[] = {0x7f, 0x80, 0xff, 0x01, 0x00, '\t'};
    char buf[400], what[64];
    for (size_t len = 1; len <= 140; len++)
        for (size_t k = 1; k < len; k++) {
            for (size_t bi = 0; bi < sizeof(bad_target); bi++) {
                buf[0] = '/';
                memset(buf + 1, 't', len - 1);
                buf[k] = (char)bad_target[bi];
                size_t n = len + (size_t)sprintf(buf + len, " HTTP/1.1\r\nHost: a\r\n\r\n");
                char req[420];
                size_t m = (size_t)sprintf(req, "GET ");
                memcpy(req + m, buf, n);
                snprintf(what, sizeof(what), "target len %zu byte 0x%02x at %zu", len,
                         bad_target[bi], k);
                all_levels(req, m + n, 0, -1, TT_HTTP1_E_TARGET, what);
            }
            for (size_t bi = 0; bi < sizeof(bad_value); bi++) {
                size_t n = (size_t)sprintf(buf, "HTTP/1.1 200 ");
                memset(buf + n, 'r', len);
                buf[n + k] = (char)bad_value[bi];
                n += len + (size_t)sprintf(buf + n + len, "\r\nContent-Length: 0\r\n\r\n");
                snprintf(what, sizeof(what), "reason len %zu byte 0x%02x at %zu", len,
                         bad_value[bi], k);
                all_levels(buf, n, 1, -1,
                           bad_value[bi] == '\n' ? TT_HTTP1_E_EOL : TT_HTTP1_E_STATUS_LINE, what);
            }
        }
}

/* Plain and unusual field sections (OWS and HTAB around values, empty values, lines cut at every
 * byte) give the same fields at every level; many fields cross window boundaries. */
Test(simd, field_sections_agree)
{
    static const char *const lines[] = {
        "A: b",        "A:b",          "A:\tb\t",     "A: \t b \t ",       "A:",
        "A: ",         "A:\t",         "A: a\tb",     "Accept: */*",       "Cookie: x=1; y=2",
        "Host2: h:80", "X:  spaced  ", "X: \x80\xff", "Connection: close",
    };
    char buf[2048], what[64];
    for (size_t pad = 0; pad < 64; pad++)
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            char many[1200];
            size_t m = 0;
            for (size_t r = 0; r < 12; r++)
                m += (size_t)sprintf(many + m, "%s%s", r ? "\r\n" : "", lines[(i + r) % 14]);
            size_t n = request_with(buf, pad, many, m);
            snprintf(what, sizeof(what), "section %zu pad %zu", i, pad);
            all_levels(buf, n, 0, 1, TT_HTTP1_OK, what);
        }
}

Test(simd, bad_byte_at_every_position_of_a_method)
{
    static const unsigned char bad[] = {'(', '"', 0x7f, 0x80, 0x00, '\r', '\n', '\t', '/'};
    char buf[300], what[64];
    for (size_t len = 1; len <= 90; len++)
        for (size_t k = 0; k < len; k++)
            for (size_t bi = 0; bi < sizeof(bad); bi++) {
                memset(buf, 'M', len);
                buf[k] = (char)bad[bi];
                size_t n = len + (size_t)sprintf(buf + len, " /%.*s HTTP/1.1\r\nHost: a\r\n\r\n",
                                                 (int)(k % 70),
                                                 "tttttttttttttttttttttttttttttt"
                                                 "tttttttttttttttttttttttttttttt"
                                                 "tttttttttt");
                snprintf(what, sizeof(what), "method len %zu byte 0x%02x at %zu", len, bad[bi], k);
                int eol = k == 0 && (bad[bi] == '\r' || bad[bi] == '\n'); /* before the line */
                /* a bad byte after TT_HTTP1_MAX_METHOD octets: the method is already too long */
                tt_http1_error want = eol                       ? TT_HTTP1_E_EOL
                                      : k > TT_HTTP1_MAX_METHOD ? TT_HTTP1_E_METHOD_TOO_LONG
                                                                : TT_HTTP1_E_METHOD;
                all_levels(buf, n, 0, -1, want, what);
            }
}
