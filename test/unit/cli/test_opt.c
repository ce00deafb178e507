/* test_opt.c — the option parser of the tether command (src/opt.c, compiled in here: it is CLI
 * code, not part of the library): whole numbers, durations and sizes are parsed strictly, and a
 * command's table rejects bad values, unknown options and missing values as usage errors. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>

#include "../../../src/opt.c"

Test(opt_int, whole_numbers_and_suffixes)
{
    long long v = -7;
    cr_assert_eq(tt_opt_parse_int("0", 0, 10, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(tt_opt_parse_int("42", 0, 100, &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(tt_opt_parse_int("10k", 0, 1e9, &v), 0);
    cr_assert_eq(v, 10000);
    cr_assert_eq(tt_opt_parse_int("1.5k", 0, 1e9, &v), 0);
    cr_assert_eq(v, 1500);
    cr_assert_eq(tt_opt_parse_int("2M", 0, 1e9, &v), 0);
    cr_assert_eq(v, 2000000);
}

Test(opt_int, rejects_what_is_not_a_whole_number)
{
    long long v = 99;
    const char *bad[] = {"abc", "",   " 5",  "5 ",  "1.5",  "5x",
                         "k",   "1e", "nan", "inf", "0x10", "5kk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(tt_opt_parse_int(bad[i], 0, 1e9, &v), -1, "'%s'", bad[i]);
    cr_assert_eq(v, 99, "a failed parse leaves the value alone");
}

Test(opt_int, range_is_checked)
{
    long long v = 0;
    cr_assert_eq(tt_opt_parse_int("-5", 0, 100, &v), -2);
    cr_assert_eq(tt_opt_parse_int("0", 1, 100, &v), -2);
    cr_assert_eq(tt_opt_parse_int("101", 1, 100, &v), -2);
    cr_assert_eq(tt_opt_parse_int("-5", -10, 100, &v), 0);
    cr_assert_eq(v, -5);
}

Test(opt_duration, seconds_fractions_and_units)
{
    double d = 0;
    cr_assert_eq(tt_opt_parse_duration("2", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 2.0, 1e-9);
    cr_assert_eq(tt_opt_parse_duration("0.25", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 0.25, 1e-9);
    cr_assert_eq(tt_opt_parse_duration("500ms", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 0.5, 1e-9);
    cr_assert_eq(tt_opt_parse_duration("3s", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 3.0, 1e-9);
    cr_assert_eq(tt_opt_parse_duration("2m", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 120.0, 1e-9);
    cr_assert_eq(tt_opt_parse_duration("1h", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 3600.0, 1e-9);
    cr_assert_eq(tt_opt_parse_duration("0", 0, 1e6, &d), 0);
    cr_assert_float_eq(d, 0.0, 1e-9);
}

Test(opt_duration, rejects_garbage_and_out_of_range)
{
    double d = 7;
    const char *bad[] = {"x", "", "soon", "5 s", "5sec", "ms", "1d", "nan", "-inf", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(tt_opt_parse_duration(bad[i], 0, 1e6, &d), -1, "'%s'", bad[i]);
    cr_assert_eq(tt_opt_parse_duration("-1", 0, 1e6, &d), -2);
    cr_assert_eq(tt_opt_parse_duration("0", 0.001, 1e6, &d), -2);
    cr_assert_eq(tt_opt_parse_duration("3h", 0, 3600, &d), -2);
    cr_assert_float_eq(d, 7.0, 1e-9, "a failed parse leaves the value alone");
}

Test(opt_size, units_of_1024)
{
    long long v = 0;
    cr_assert_eq(tt_opt_parse_size("100", &v), 0);
    cr_assert_eq(v, 100);
    cr_assert_eq(tt_opt_parse_size("64k", &v), 0);
    cr_assert_eq(v, 65536);
    cr_assert_eq(tt_opt_parse_size("1m", &v), 0);
    cr_assert_eq(v, 1048576);
    cr_assert_eq(tt_opt_parse_size("2GB", &v), 0);
    cr_assert_eq(v, 2147483648LL);
    cr_assert_eq(tt_opt_parse_size("1.5k", &v), 0);
    cr_assert_eq(v, 1536);
    const char *bad[] = {"", "k", "1q", "-1", "1kk", "abc", "1e99"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(tt_opt_parse_size(bad[i], &v), -1, "'%s'", bad[i]);
}

/* A small command table as the subcommands write theirs. */
typedef struct vals {
    int flag, n;
    long long big;
    double secs;
    long long size;
    const char *name;
    tt_opt_list list;
} vals;

static int run(vals *v, int argc, char **argv, int *first)
{
    const tt_opt opts[] = {
        {"flag", 'f', TT_OPT_FLAG, NULL, 0, 0, &v->flag, "a flag", NULL},
        {"num", 'n', TT_OPT_INT, "N", 1, 100, &v->n, "a number", "5"},
        {"big", 0, TT_OPT_LONG, "N", 0, 1e12, &v->big, "a big one", NULL},
        {"secs", 's', TT_OPT_DURATION, "SEC", 0, 60, &v->secs, "a duration", NULL},
        {"size", 0, TT_OPT_SIZE, "SIZE", 0, 0, &v->size, "a size", NULL},
        {"name", 0, TT_OPT_STRING, "S", 0, 0, &v->name, "a string", NULL},
        {NULL, 'H', TT_OPT_LIST, "L", 0, 2, &v->list, "repeatable", NULL},
        TT_OPT_END,
    };
    const tt_opt_cmd cmd = {"test", "[options] ARG", NULL, NULL, opts};
    return tt_opt_parse(&cmd, argc, argv, first);
}

#define ARGV(...)          ((char *[]){"test", __VA_ARGS__, NULL})
#define ARGC(...)          ((int)(sizeof((char *[]){"test", __VA_ARGS__}) / sizeof(char *)))
#define RUN(v, first, ...) run(v, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), first)

Test(opt_table, values_land_in_their_fields)
{
    vals v = {.n = 5};
    int first = -1;
    cr_assert_eq(RUN(&v, &first, "-f", "--num=7", "--big", "3k", "-s", "250ms", "--size", "4k",
                     "--name", "x", "-Ha", "-H", "b", "pos"),
                 TT_OPT_OK);
    cr_assert_eq(v.flag, 1);
    cr_assert_eq(v.n, 7);
    cr_assert_eq(v.big, 3000);
    cr_assert_float_eq(v.secs, 0.25, 1e-9);
    cr_assert_eq(v.size, 4096);
    cr_assert_str_eq(v.name, "x");
    cr_assert_eq(v.list.n, 2);
    cr_assert_str_eq(v.list.v[0], "a");
    cr_assert_str_eq(v.list.v[1], "b");
    cr_assert_eq(first, 14);
}

Test(opt_table, positionals_may_come_first)
{
    vals v = {.n = 5};
    int first = -1;
    char **argv = ARGV("pos", "-n", "9");
    cr_assert_eq(run(&v, 4, argv, &first), TT_OPT_OK);
    cr_assert_eq(v.n, 9);
    cr_assert_eq(first, 3);
    cr_assert_str_eq(argv[first], "pos");
}

Test(opt_table, bad_values_are_usage_errors, .init = cr_redirect_stderr)
{
    vals v = {.n = 5};
    int first;
    cr_assert_eq(RUN(&v, &first, "--num", "abc"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "-n", "-5"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "-n", "0"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "-n", "2.5"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "-s", "x"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "--size", "lots"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "-H", "a", "-H", "b", "-H", "c"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "--bogus"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "-5"), TT_OPT_USAGE);
    cr_assert_eq(RUN(&v, &first, "--num"), TT_OPT_USAGE);
    cr_assert_eq(v.n, 5, "no bad value was stored");
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "tether test: --num: 'abc' is not a whole number\n(tether test --help lists the options)\n"
        "tether test: --num: '-5' is out of range (1..100)\n(tether test --help lists the "
        "options)\n"
        "tether test: --num: '0' is out of range (1..100)\n(tether test --help lists the options)\n"
        "tether test: --num: '2.5' is not a whole number\n(tether test --help lists the options)\n"
        "tether test: --secs: 'x' is not a duration (seconds, or 500ms, 2m, 1h)\n"
        "(tether test --help lists the options)\n"
        "tether test: --size: 'lots' is not a size (bytes, or 64k, 1m, 2g)\n"
        "(tether test --help lists the options)\n"
        "tether test: -H: at most 2 values\n(tether test --help lists the options)\n"
        "tether test: unknown option '--bogus'\n(tether test --help lists the options)\n"
        "tether test: unknown option '-5'\n(tether test --help lists the options)\n"
        "tether test: --num needs a value\n(tether test --help lists the options)\n");
}

Test(opt_table, help_lists_every_option_with_its_default, .init = cr_redirect_stdout)
{
    vals v = {.n = 5};
    int first;
    cr_assert_eq(RUN(&v, &first, "--help"), TT_OPT_HELP);
    fflush(stdout);
    char buf[4096] = {0};
    FILE *f = cr_get_redirected_stdout();
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    cr_assert(strstr(buf, "usage: tether test [options] ARG\n"), "%s", buf);
    cr_assert(strstr(buf, "  -n, --num N               a number (default 5)\n"), "%s", buf);
    cr_assert(strstr(buf, "  -f, --flag                a flag\n"), "%s", buf);
    cr_assert(strstr(buf, "      --big N               a big one\n"), "%s", buf);
    cr_assert(strstr(buf, "  -H L                      repeatable\n"), "%s", buf);
    cr_assert(strstr(buf, "  -h, --help"), "%s", buf);
}
