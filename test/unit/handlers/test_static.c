/* test_static.c — the static handler's pure parts (lib/handlers/static.h): path cleaning,
 * Range parsing (saturating positions, RFC 9110 §14.2: invalid is ignored, unsatisfiable is
 * 416) and the Location of a directory redirect (never an authority). */
#include <criterion/criterion.h>
#include <string.h>

#include "handlers/static.h"

static int range(const char *v, off_t size, off_t *from, off_t *to)
{
    *from = *to = -7;
    return tt__static_parse_range(v, strlen(v), size, from, to);
}

Test(static_range, ordinary_ranges)
{
    off_t f, t;
    cr_assert_eq(range("bytes=10-19", 100, &f, &t), 1);
    cr_assert_eq(f, 10);
    cr_assert_eq(t, 19);
    cr_assert_eq(range("bytes=90-", 100, &f, &t), 1);
    cr_assert_eq(t, 99);
    cr_assert_eq(range("bytes=-5", 100, &f, &t), 1);
    cr_assert_eq(f, 95);
    cr_assert_eq(range("BYTES=0-0", 100, &f, &t), 1);
    cr_assert_eq(t, 0);
}

Test(static_range, huge_positions_saturate)
{
    off_t f, t;
    /* a first position past any file: unsatisfiable, not a wrapped number */
    cr_assert_eq(range("bytes=99999999999999999999-", 100, &f, &t), -1);
    cr_assert_eq(range("bytes=18446744073709551617-", 100, &f, &t), -1);
    cr_assert_eq(range("bytes=9223372036854775808-9223372036854775809", 100, &f, &t), -1);
    /* a last position past the end: up to the end */
    cr_assert_eq(range("bytes=0-99999999999999999999999999", 100, &f, &t), 1);
    cr_assert_eq(f, 0);
    cr_assert_eq(t, 99);
    /* a suffix longer than the file: the whole file */
    cr_assert_eq(range("bytes=-99999999999999999999", 100, &f, &t), 1);
    cr_assert_eq(f, 0);
    cr_assert_eq(t, 99);
    /* two saturated positions compare equal: still past the file */
    cr_assert_eq(range("bytes=99999999999999999999-99999999999999999998", 100, &f, &t), -1);
}

Test(static_range, invalid_is_ignored_unsatisfiable_is_416)
{
    off_t f, t;
    cr_assert_eq(range("bytes=5-2", 100, &f, &t), 0, "last < first: invalid, ignored");
    cr_assert_eq(range("bytes=-", 100, &f, &t), 0);
    cr_assert_eq(range("bytes=a-b", 100, &f, &t), 0);
    cr_assert_eq(range("bytes=1-2-3", 100, &f, &t), 0);
    cr_assert_eq(range("bytes=1-2,4-5", 100, &f, &t), 0, "several ranges: the whole file");
    cr_assert_eq(range("items=1-2", 100, &f, &t), 0);
    cr_assert_eq(range("bytes=100-", 100, &f, &t), -1);
    cr_assert_eq(range("bytes=-0", 100, &f, &t), -1);
    cr_assert_eq(f, -7, "nothing written when not satisfiable");
}

static int clean(const char *p, char *out, size_t size)
{
    return tt__static_clean_path(p, strlen(p), out, size);
}

Test(static_path, clean)
{
    char out[64];
    cr_assert_eq(clean("//assets//x.css", out, sizeof out), 12);
    cr_assert_str_eq(out, "assets/x.css");
    cr_assert_eq(clean("/a%20b", out, sizeof out), 3);
    cr_assert_str_eq(out, "a b");
    cr_assert_eq(clean("/a/../b", out, sizeof out), -1);
    cr_assert_eq(clean("/a/%2e%2e/b", out, sizeof out), -1);
    cr_assert_eq(clean("/a%5cb", out, sizeof out), -1);
    cr_assert_eq(clean("/a%00b", out, sizeof out), -1);
    cr_assert_eq(clean("/a%4", out, sizeof out), -1);
    cr_assert_eq(clean("/abcdefgh", out, 8), -1, "does not fit");
    cr_assert_eq(clean("/abcdef", out, 8), 6);
}

Test(static_path, directory_location_stays_on_the_site)
{
    char rel[64], loc[64];
    cr_assert_geq(clean("//assets", rel, sizeof rel), 0);
    cr_assert_eq(tt__static_dir_location(rel, loc, sizeof loc), 8);
    cr_assert_str_eq(loc, "/assets/", "not //assets/ (host 'assets')");
    cr_assert_geq(clean("/%2F%2Fevil.example", rel, sizeof rel), 0);
    tt__static_dir_location(rel, loc, sizeof loc);
    cr_assert_str_eq(loc, "/evil.example/");
    tt__static_dir_location("a b/c?d#e%", loc, sizeof loc);
    cr_assert_str_eq(loc, "/a%20b/c%3Fd%23e%25/");
    tt__static_dir_location("", loc, sizeof loc);
    cr_assert_str_eq(loc, "/");
    cr_assert_eq(tt__static_dir_location("a b c", loc, 8), -1, "does not fit");
}
