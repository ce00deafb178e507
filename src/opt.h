/* opt.h — the one option parser of the tether command, on getopt_long. Each subcommand describes
 * its options in a table (long name, short letter, kind, bounds, help, default text, where the
 * value goes); tt_opt_parse generates --help from it and parses strictly: a value that is not
 * a number, a duration or a size, or lies outside the option's bounds, is a usage error that
 * names the flag ("tether serve: --workers: 'abc' is not a whole number"), never a silent
 * default. Adding a flag is one table row (docs/bench-cli.md, "Adding a flag"). */
#ifndef TT_SRC_OPT_H
#define TT_SRC_OPT_H

#include <stdio.h>

#define TT_OPT_LIST_MAX 64 /* values of one repeatable option */

/* What an option takes, and what its dst points to. */
typedef enum tt_opt_kind {
    TT_OPT_FLAG,     /* no value; int *dst set to 1 */
    TT_OPT_INT,      /* whole number (k/m suffixes: x1000), lo..hi; int *dst */
    TT_OPT_LONG,     /* as TT_OPT_INT into long long *dst */
    TT_OPT_DURATION, /* seconds, fractional, or with ms/s/m/h, lo..hi seconds; double *dst */
    TT_OPT_SIZE,     /* bytes, k/m/g suffixes (x1024), optional b; long long *dst */
    TT_OPT_STRING,   /* const char **dst (points into argv) */
    TT_OPT_LIST,     /* repeatable string, up to hi values (<= TT_OPT_LIST_MAX); tt_opt_list *dst */
} tt_opt_kind;

/* The values of a repeatable option, in order; pointers into argv. */
typedef struct tt_opt_list {
    const char *v[TT_OPT_LIST_MAX];
    int n;
} tt_opt_list;

/* One row of a command's option table. The table ends with a row whose kind is TT_OPT_FLAG
 * and whose name and letter are both 0 (TT_OPT_END). */
typedef struct tt_opt {
    const char *name; /* long name without "--", or NULL (short only) */
    char letter;      /* short letter, or 0 (long only) */
    tt_opt_kind kind;
    const char *arg;  /* the value's name in --help ("N", "SEC"); NULL for flags */
    double lo, hi;    /* bounds (INT, LONG, DURATION); hi: the list limit for LIST */
    void *dst;        /* where the value goes (see tt_opt_kind) */
    const char *help; /* one sentence */
    const char *def;  /* the default as shown in --help ("75", "one per CPU"), or NULL */
} tt_opt;

#define TT_OPT_END                                                                                 \
    {                                                                                              \
        NULL, 0, TT_OPT_FLAG, NULL, 0, 0, NULL, NULL, NULL                                         \
    }

/* A subcommand's description: its name, options and the text around the option list. */
typedef struct tt_opt_cmd {
    const char *name;   /* "bench": messages say "tether bench: ..." */
    const char *usage;  /* "[options] URL" */
    const char *about;  /* paragraph after the usage line, or NULL */
    const char *footer; /* text after the options (exit codes), or NULL */
    const tt_opt *opts;
} tt_opt_cmd;

enum { TT_OPT_OK = 0, TT_OPT_HELP = 1, TT_OPT_USAGE = 2 };

/* Parse argv (argv[0] is the subcommand) against cmd: values land in each row's dst (rows not
 * given are left as they were: initialise dst to the default first). -h/--help prints the help
 * to stdout and returns TT_OPT_HELP; a bad option or value prints one line naming it to stderr
 * and returns TT_OPT_USAGE (the caller exits 2). On TT_OPT_OK, *first is the index of the first
 * positional argument (argv is permuted: positionals last). */
int tt_opt_parse(const tt_opt_cmd *cmd, int argc, char **argv, int *first);
/* Write cmd's help (usage, about, one entry per option with its default, footer) to f. */
void tt_opt_help(const tt_opt_cmd *cmd, FILE *f);
/* Print "tether CMD: " and the formatted message to stderr, then a hint for --help; returns
 * TT_OPT_USAGE so a caller can write `return tt_opt_error(...)`. */
int tt_opt_error(const tt_opt_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a whole number with an optional k/K (x1e3) or m/M (x1e6) suffix ("1.5k" is 1500) in
 * lo..hi. 0, -1 when not a whole number, -2 when out of range. */
int tt_opt_parse_int(const char *s, double lo, double hi, long long *out);
/* Parse a duration: plain seconds ("2", "0.25") or a number with ms, s, m or h, in lo..hi
 * seconds. 0, -1 when not a duration, -2 when out of range. */
int tt_opt_parse_duration(const char *s, double lo, double hi, double *out);
/* Parse a size in bytes: a number with an optional k, m or g (x1024) and an optional b. 0 or -1.
 */
int tt_opt_parse_size(const char *s, long long *out);

#endif
