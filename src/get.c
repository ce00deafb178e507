/* get.c — `tether get`: fetch URLs over one pooled client; bodies to stdout (or -o) in order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tether.h>

#include "cli.h"
#include "opt.h"

/* curl-like exit codes (documented in --help and docs/client.md). */
enum {
    EX_OK = 0,
    EX_UNSUPPORTED = 1,
    EX_USAGE = 2,
    EX_URL = 3,
    EX_RESOLVE = 6,
    EX_CONNECT = 7,
    EX_WEIRD = 8,
    EX_PARTIAL = 18,
    EX_HTTP = 22,
    EX_WRITE = 23,
    EX_READ = 26,
    EX_TIMEOUT = 28,
    EX_EMPTY = 52,
    EX_SEND = 55,
    EX_RECV = 56,
};

static const char get_footer[] =
    "exit codes (curl-like): 0 ok, 1 unsupported scheme, 2 usage, 3 bad URL,\n"
    "  6 cannot resolve, 7 cannot connect, 8 malformed response, 18 closed mid-body,\n"
    "  22 HTTP error with -f, 23 write error, 26 cannot read -d @FILE, 28 timeout,\n"
    "  52 empty reply, 55 send failed, 56 receive failed. With several URLs: the first\n"
    "  failure's code.\n";

/* What get's options set. */
typedef struct get_opts {
    int verbose, stats, http10, noka, parallel, maxc, fail_http, pipeline;
    double interval, timeout;
    const char *method, *data, *outpath, *tcpka;
    tt_opt_list hdrs;
    tt_keepalive ka;
} get_opts;

/* Parse get's options into o; TT_OPT_* result, *first: the first URL. */
static int get_options(int argc, char **argv, get_opts *o, int *first)
{
    const tt_opt opts[] = {
        {NULL, 'v', TT_OPT_FLAG, NULL, 0, 0, &o->verbose,
         "trace each request on stderr (connection, reuse, head, close)", NULL},
        {"stats", 0, TT_OPT_FLAG, NULL, 0, 0, &o->stats,
         "end with one JSON line of pool statistics on stderr", NULL},
        {NULL, 'X', TT_OPT_STRING, "METHOD", 0, 0, &o->method, "request method",
         "GET, POST with -d"},
        {NULL, 'd', TT_OPT_STRING, "DATA|@FILE", 0, 0, &o->data, "request body (Content-Length)",
         NULL},
        {NULL, 'H', TT_OPT_LIST, "'Name: value'", 0, TT_OPT_LIST_MAX, &o->hdrs,
         "extra request header (repeatable)", NULL},
        {"http1.0", 0, TT_OPT_FLAG, NULL, 0, 0, &o->http10, "send HTTP/1.0 requests", NULL},
        {"no-keepalive", 0, TT_OPT_FLAG, NULL, 0, 0, &o->noka,
         "send Connection: close; never reuse", NULL},
        {"parallel", 0, TT_OPT_INT, "N", 1, 1e6, &o->parallel,
         "run up to N requests at once (asynchronous API)", "1"},
        {"max-connections", 0, TT_OPT_INT, "N", 1, 1e6, &o->maxc,
         "pool limit per route and in total", "8"},
        {"interval", 0, TT_OPT_DURATION, "SEC", 0, 86400, &o->interval,
         "wait between sequential requests (idle connections stay watched)", NULL},
        {"tcp-keepalive", 0, TT_OPT_STRING, "I:I:C", 0, 0, &o->tcpka,
         "TCP keepalive idle:interval:count", NULL},
        {"pipeline", 0, TT_OPT_INT, "N", 0, 1024, &o->pipeline,
         "with --parallel: pipeline up to N GET/HEAD requests per connection once the server "
         "proved persistent",
         "off"},
        {"timeout", 0, TT_OPT_DURATION, "SEC", 0, 2e6, &o->timeout, "total time limit per request",
         NULL},
        {"fail", 'f', TT_OPT_FLAG, NULL, 0, 0, &o->fail_http, "exit 22 on an HTTP status >= 400",
         NULL},
        {NULL, 'o', TT_OPT_STRING, "FILE", 0, 0, &o->outpath, "write bodies to FILE", NULL},
        TT_OPT_END,
    };
    const tt_opt_cmd cmd = {"get", "[options] URL...",
                            "Fetch URLs over one connection pool; bodies go to stdout in order.",
                            get_footer, opts};
    int r = tt_opt_parse(&cmd, argc, argv, first);
    if (r) return r;
    if (*first >= argc) return tt_opt_error(&cmd, "no URL given");
    if (o->tcpka && tt_keepalive_parse(&o->ka, o->tcpka) < 0)
        return tt_opt_error(&cmd, "bad --tcp-keepalive '%s' (IDLE:INTVL:CNT)", o->tcpka);
    return TT_OPT_OK;
}

typedef struct getctx {
    tt_client *client;
    tt_exchange *xs;
    int n, next, printed, running, parallel;
    char *done;
    FILE *out;
    int verbose, fail_http, rc, write_err;
} getctx;

static int exit_code(const tt_exchange *x)
{
    int e = x->error;
    const char *w = x->error_what ? x->error_what : "";
    if (!e) return 0;
    if (e == -EPROTONOSUPPORT) return EX_UNSUPPORTED;
    if (!strcmp(w, "url")) return EX_URL;
    if (!strncmp(w, "bad ", 4)) return EX_USAGE; /* "bad header", "bad request line" */
    if (e == -ETIMEDOUT) return EX_TIMEOUT;
    if (!strcmp(w, "resolve") || e == -ENOENT) return EX_RESOLVE;
    if (!strcmp(w, "connect")) return EX_CONNECT;
    if (strstr(w, "mid-body")) return EX_PARTIAL;
    if (e == -EPROTO) return EX_WEIRD;
    if (!strcmp(w, "connection closed")) return EX_EMPTY;
    if (!strcmp(w, "send")) return EX_SEND;
    return EX_RECV;
}

static void log_line(void *data, const char *line)
{
    (void)data;
    fprintf(stderr, "%s\n", line);
}

static void report(getctx *g, int i)
{
    tt_exchange *x = &g->xs[i];
    if (g->verbose) {
        if (x->error)
            fprintf(stderr, "* [%d] %s %s: failed: %s (%s, %s, %d retr%s)\n", i + 1,
                    x->method ? x->method : "GET", x->url, x->error_what, strerror(-x->error),
                    x->sent_state ? "maybe processed" : "not sent", x->retries,
                    x->retries == 1 ? "y" : "ies");
        else
            fprintf(stderr, "* [%d] %s %s: %d on connection #%u (%s)%s%s%s; %zu body bytes%s\n",
                    i + 1, x->method ? x->method : "GET", x->url, x->status, x->conn_id,
                    x->reused ? "reused" : "new", x->conn_kept ? ", kept alive" : ", closed: ",
                    x->conn_kept ? "" : tt_evict_reason_name(x->close_reason),
                    x->retries ? " after a retry" : "", x->resp_body_len,
                    x->trailers_len ? " + trailers" : "");
    }
    if (!x->error && x->resp_body_len) {
        if (fwrite(x->resp_body, 1, x->resp_body_len, g->out) != x->resp_body_len) g->write_err = 1;
    }
    int rc = exit_code(x);
    if (!rc && g->fail_http && x->status >= 400) rc = EX_HTTP;
    if (rc && !g->rc) g->rc = rc;
    if (x->error && !g->verbose)
        fprintf(stderr, "tether get: %s: %s: %s\n", x->url, x->error_what, strerror(-x->error));
}

static void flush_done(getctx *g)
{
    while (g->printed < g->n && g->done[g->printed]) {
        report(g, g->printed);
        tt_exchange_cleanup(&g->xs[g->printed]);
        g->printed++;
    }
}

static void start_next(getctx *g);

static void on_done(tt_exchange *x)
{
    getctx *g = x->data;
    g->done[x - g->xs] = 1;
    g->running--;
    flush_done(g);
    start_next(g);
}

static void start_next(getctx *g)
{
    while (g->running < g->parallel && g->next < g->n) {
        tt_exchange *x = &g->xs[g->next++];
        int r = tt_client_start(g->client, x);
        if (r < 0) {
            x->error = r;
            x->error_what = r == -EPROTONOSUPPORT ? "scheme"
                            : x->error_what       ? x->error_what
                                                  : "url";
            g->done[x - g->xs] = 1;
            flush_done(g);
            continue;
        }
        g->running++;
    }
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            } else {
                b = nb;
            }
        }
    }
    if (f != stdin) fclose(f);
    *len = n;
    return b;
}

int tt_cmd_get(int argc, char **argv)
{
    get_opts go = {.parallel = 1, .maxc = 8};
    int optind_first;
    int pr = get_options(argc, argv, &go, &optind_first);
    if (pr) return pr == TT_OPT_HELP ? 0 : EX_USAGE;
    int verbose = go.verbose, stats = go.stats, http10 = go.http10, noka = go.noka;
    int parallel = go.parallel, maxc = go.maxc, fail_http = go.fail_http, pipeline = go.pipeline;
    double interval = go.interval, timeout = go.timeout;
    const char *method = go.method, *data = go.data, *outpath = go.outpath;
    const char **hdrs = go.hdrs.v;
    int nh = go.hdrs.n;
    tt_keepalive ka = go.ka;
    char *body = NULL;
    size_t body_len = 0;
    if (data) {
        if (data[0] == '@') {
            body = read_file(data + 1, &body_len);
            if (!body) {
                fprintf(stderr, "tether get: cannot read %s: %s\n", data + 1, strerror(errno));
                return EX_READ;
            }
        } else {
            body_len = strlen(data);
            body = malloc(body_len + 1);
            if (body) memcpy(body, data, body_len + 1);
        }
        if (!method) method = "POST";
    }
    FILE *out = stdout;
    if (outpath && !(out = fopen(outpath, "wb"))) {
        fprintf(stderr, "tether get: cannot open %s: %s\n", outpath, strerror(errno));
        free(body);
        return EX_WRITE;
    }

    tt_client_opts o;
    tt_client_opts_default(&o);
    o.max_per_route = maxc;
    o.max_total = maxc;
    o.tcp_keepalive = ka;
    o.pipelining = pipeline;
    o.verbose = verbose;
    o.log = log_line;
    if (timeout > 0) o.total_timeout_ms = (int)(timeout * 1000);
    getctx g = {0};
    g.n = argc - optind_first;
    g.parallel = parallel;
    g.out = out;
    g.verbose = verbose;
    g.fail_http = fail_http;
    g.xs = calloc((size_t)g.n, sizeof *g.xs);
    g.done = calloc((size_t)g.n, 1);
    int r = g.xs && g.done ? tt_client_new(&g.client, &o) : -ENOMEM;
    if (r < 0) {
        fprintf(stderr, "tether get: %s\n", strerror(-r));
        return EX_USAGE;
    }
    for (int i = 0; i < g.n; i++) {
        tt_exchange *x = &g.xs[i];
        tt_exchange_init(x);
        x->url = argv[optind_first + i];
        x->method = method;
        x->headers = hdrs;
        x->nheaders = nh;
        x->body = body;
        x->body_len = body_len;
        x->http10 = http10;
        x->no_keepalive = noka;
        for (int j = 0; j < nh; j++)
            if (!strncasecmp(hdrs[j], "Expect:", 7) && strcasestr(hdrs[j], "100-continue"))
                x->expect_continue = 1;
        x->on_done = on_done;
        x->data = &g;
    }
    if (parallel == 1) {
        for (int i = 0; i < g.n; i++) {
            if (i && interval > 0) tt_client_wait(g.client, (int)(interval * 1000));
            tt_exchange *x = &g.xs[i];
            x->on_done = NULL;
            if (verbose) fprintf(stderr, "* [%d] %s %s\n", i + 1, method ? method : "GET", x->url);
            tt_client_request(g.client, x);
            g.done[i] = 1;
            flush_done(&g);
        }
    } else {
        start_next(&g);
        tt_client_wait(g.client, -1);
        flush_done(&g);
    }
    if (fflush(out) != 0 || g.write_err) {
        if (!g.rc) g.rc = EX_WRITE;
    }
    if (out != stdout) fclose(out);
    if (stats) {
        char js[8192];
        tt_client_stats_json(g.client, js, sizeof js);
        fprintf(stderr, "%s\n", js);
    }
    tt_client_free(g.client);
    free(g.xs);
    free(g.done);
    free(body);
    return g.rc;
}
