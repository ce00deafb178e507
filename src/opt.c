/* opt.c — the table-driven option parser shared by serve, get, bench and conns (see opt.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

#define HELP_COL   28  /* help text starts in this column */
#define HELP_WIDTH 100 /* and lines are at most this long */
#define MAX_OPTS   64

/* strtod reads more than decimals (hex, exponents, inf, leading blanks): allow only a sign,
 * digits and a point before end. */
static int decimal(const char *s, const char *end)
{
    return end > s && strspn(s, "+-0123456789.") >= (size_t)(end - s) && !strchr(" \t", *s);
}

int tt_opt_parse_int(const char *s, double lo, double hi, long long *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || !decimal(s, end) || !isfinite(v)) return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1e6, end++;
    if (*end || v != floor(v) || fabs(v) > 9e15) return -1;
    if (v < lo || v > hi) return -2;
    *out = (long long)v;
    return 0;
}

int tt_opt_parse_duration(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || !decimal(s, end) || !isfinite(v)) return -1;
    if (!strcmp(end, "ms"))
        v /= 1000.0;
    else if (!strcmp(end, "m"))
        v *= 60.0;
    else if (!strcmp(end, "h"))
        v *= 3600.0;
    else if (*end && strcmp(end, "s"))
        return -1;
    if (v < lo || v > hi) return -2;
    *out = v;
    return 0;
}

int tt_opt_parse_size(const char *s, long long *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || !decimal(s, end) || !isfinite(v) || v < 0) return -1;
    double m = 1;
    if (*end == 'k' || *end == 'K')
        m = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        m = 1024.0 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        m = 1024.0 * 1024 * 1024, end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end || v * m > 9e18) return -1;
    *out = (long long)(v * m);
    return 0;
}

int tt_opt_error(const tt_opt_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tether %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(tether %s --help lists the options)\n", cmd->name);
    return TT_OPT_USAGE;
}

/* "--name" or "-x": how messages name the option. */
static const char *flag_name(const tt_opt *o, char *buf, size_t size)
{
    if (o->name)
        snprintf(buf, size, "--%s", o->name);
    else
        snprintf(buf, size, "-%c", o->letter);
    return buf;
}

/* The range as a message shows it: "1..65535", "0.001..", ">= 0". */
static void range_text(const tt_opt *o, char *buf, size_t size)
{
    if (o->hi >= 9e15)
        snprintf(buf, size, "at least %.15g", o->lo);
    else
        snprintf(buf, size, "%.15g..%.15g", o->lo, o->hi);
}

/* Store one value for o. TT_OPT_OK or TT_OPT_USAGE (after the message). */
static int store(const tt_opt_cmd *cmd, const tt_opt *o, const char *v)
{
    char name[64], range[64];
    flag_name(o, name, sizeof name);
    range_text(o, range, sizeof range);
    long long n;
    int r;
    switch (o->kind) {
    case TT_OPT_FLAG: *(int *)o->dst = 1; return TT_OPT_OK;
    case TT_OPT_STRING: *(const char **)o->dst = v; return TT_OPT_OK;
    case TT_OPT_LIST: {
        tt_opt_list *l = o->dst;
        if (l->n >= TT_OPT_LIST_MAX || l->n >= (int)o->hi)
            return tt_opt_error(cmd, "%s: at most %d values", name, (int)o->hi);
        l->v[l->n++] = v;
        return TT_OPT_OK;
    }
    case TT_OPT_INT:
    case TT_OPT_LONG:
        r = tt_opt_parse_int(v, o->lo, o->hi, &n);
        if (r == -1) return tt_opt_error(cmd, "%s: '%s' is not a whole number", name, v);
        if (r == -2) return tt_opt_error(cmd, "%s: '%s' is out of range (%s)", name, v, range);
        if (o->kind == TT_OPT_INT)
            *(int *)o->dst = (int)n;
        else
            *(long long *)o->dst = n;
        return TT_OPT_OK;
    case TT_OPT_DURATION:
        r = tt_opt_parse_duration(v, o->lo, o->hi, o->dst);
        if (r == -1)
            return tt_opt_error(cmd, "%s: '%s' is not a duration (seconds, or 500ms, 2m, 1h)", name,
                                v);
        if (r == -2)
            return tt_opt_error(cmd, "%s: '%s' is out of range (%s seconds)", name, v, range);
        return TT_OPT_OK;
    case TT_OPT_SIZE:
        if (tt_opt_parse_size(v, o->dst) < 0)
            return tt_opt_error(cmd, "%s: '%s' is not a size (bytes, or 64k, 1m, 2g)", name, v);
        return TT_OPT_OK;
    }
    return TT_OPT_USAGE;
}

/* The row of the option getopt_long returned (code: a letter, or 256 + row index). */
static const tt_opt *find(const tt_opt *opts, int code)
{
    if (code >= 256) return &opts[code - 256];
    for (const tt_opt *o = opts; o->name || o->letter; o++)
        if (o->letter == code) return o;
    return NULL;
}

/* The option argv[optind - 1] named, for messages about an unknown or incomplete option. */
static const char *last_arg(int argc, char **argv)
{
    int i = optind - 1;
    if (i < 1) i = 1;
    return i < argc ? argv[i] : "";
}

int tt_opt_parse(const tt_opt_cmd *cmd, int argc, char **argv, int *first)
{
    struct option lo[MAX_OPTS + 2];
    char so[MAX_OPTS * 2 + 4];
    size_t nl = 0, ns = 0;
    so[ns++] = ':'; /* report a missing value as ':' */
    so[ns++] = 'h';
    for (int i = 0; cmd->opts[i].name || cmd->opts[i].letter; i++) {
        const tt_opt *o = &cmd->opts[i];
        int has_arg = o->kind == TT_OPT_FLAG ? no_argument : required_argument;
        if (o->name && nl < MAX_OPTS)
            lo[nl++] = (struct option){o->name, has_arg, NULL, o->letter ? o->letter : 256 + i};
        if (o->letter && ns + 3 < sizeof so) {
            so[ns++] = o->letter;
            if (has_arg == required_argument) so[ns++] = ':';
        }
    }
    lo[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nl] = (struct option){NULL, 0, NULL, 0};
    so[ns] = 0;
    optind = 0; /* full reinitialisation (GNU): the parser may run more than once */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        if (c == 'h') {
            tt_opt_help(cmd, stdout);
            return TT_OPT_HELP;
        }
        if (c == ':') return tt_opt_error(cmd, "%s needs a value", last_arg(argc, argv));
        const tt_opt *o = c == '?' ? NULL : find(cmd->opts, c);
        if (!o) {
            if (optopt && optopt < 256 && optopt != '?')
                return tt_opt_error(cmd, "unknown option '-%c'", optopt);
            return tt_opt_error(cmd, "unknown option '%s'", last_arg(argc, argv));
        }
        int r = store(cmd, o, optarg);
        if (r) return r;
    }
    *first = optind;
    return TT_OPT_OK;
}

/* Write text from column col, wrapping at HELP_WIDTH with continuation lines at HELP_COL. */
static void wrap(FILE *f, const char *text, int col)
{
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p, ' ');
        int wl = sp ? (int)(sp - p) : (int)strlen(p);
        if (col > HELP_COL && col + 1 + wl > HELP_WIDTH) {
            fprintf(f, "\n%*s", HELP_COL, "");
            col = HELP_COL;
        } else if (col > HELP_COL) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, (size_t)wl, f);
        col += wl;
        p += wl;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

void tt_opt_help(const tt_opt_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: tether %s %s\n", cmd->name, cmd->usage);
    if (cmd->about) fprintf(f, "\n%s\n", cmd->about);
    fprintf(f, "\n");
    for (const tt_opt *o = cmd->opts; o->name || o->letter; o++) {
        char left[96];
        char flags[64];
        if (o->letter && o->name)
            snprintf(flags, sizeof flags, "-%c, --%s", o->letter, o->name);
        else if (o->name)
            snprintf(flags, sizeof flags, "    --%s", o->name);
        else
            snprintf(flags, sizeof flags, "-%c", o->letter);
        int n =
            snprintf(left, sizeof left, "  %s%s%s", flags, o->arg ? " " : "", o->arg ? o->arg : "");
        if (n >= HELP_COL - 1) {
            fprintf(f, "%s\n%*s", left, HELP_COL, "");
        } else {
            fprintf(f, "%-*s", HELP_COL, left);
        }
        char text[512];
        snprintf(text, sizeof text, "%s%s%s%s", o->help, o->def ? " (default " : "",
                 o->def ? o->def : "", o->def ? ")" : "");
        wrap(f, text, HELP_COL);
    }
    fprintf(f, "  -h, --help                this help\n");
    if (cmd->footer) fprintf(f, "\n%s", cmd->footer);
}
