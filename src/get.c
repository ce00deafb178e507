/* get.c — `tether get`: fetch URLs over one pooled client; bodies to stdout (or -o) in order. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tether.h>

#include "cli.h"

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

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tether get [options] URL...\n"
            "Fetch URLs over one connection pool; bodies go to stdout in order.\n\n"
            "  -v                   trace each request on stderr (connection, reuse, head, close)\n"
            "  --stats              end with one JSON line of pool statistics on stderr\n"
            "  -X METHOD            request method (default GET, POST with -d)\n"
            "  -d DATA|@FILE        request body (Content-Length)\n"
            "  -H 'Name: value'     extra request header (repeatable)\n"
            "  --http1.0            send HTTP/1.0 requests\n"
            "  --no-keepalive       send Connection: close; never reuse\n"
            "  --parallel N         run up to N requests at once (asynchronous API)\n"
            "  --max-connections N  pool limit per route and in total (default 8)\n"
            "  --interval SEC       wait between sequential requests (idle connections stay "
            "watched)\n"
            "  --tcp-keepalive I:I:C  TCP keepalive idle:interval:count\n"
            "  --pipeline N         with --parallel: pipeline up to N GET/HEAD requests per\n"
            "                       connection once the server proved persistent (default off)\n"
            "  --timeout SEC        total time limit per request\n"
            "  -f, --fail           exit 22 on an HTTP status >= 400\n"
            "  -o FILE              write bodies to FILE\n\n"
            "exit codes (curl-like): 0 ok, 1 unsupported scheme, 2 usage, 3 bad URL,\n"
            "  6 cannot resolve, 7 cannot connect, 8 malformed response, 18 closed mid-body,\n"
            "  22 HTTP error with -f, 23 write error, 26 cannot read -d @FILE, 28 timeout,\n"
            "  52 empty reply, 55 send failed, 56 receive failed. With several URLs: the first\n"
            "  failure's code.\n");
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
    enum { O_STATS = 256, O_H10, O_NOKA, O_PAR, O_MAXC, O_INT, O_TCPKA, O_TIMEOUT, O_HELP, O_PIPE };
    static const struct option lo[] = {
        {"stats", no_argument, 0, O_STATS},
        {"http1.0", no_argument, 0, O_H10},
        {"no-keepalive", no_argument, 0, O_NOKA},
        {"parallel", required_argument, 0, O_PAR},
        {"max-connections", required_argument, 0, O_MAXC},
        {"interval", required_argument, 0, O_INT},
        {"tcp-keepalive", required_argument, 0, O_TCPKA},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"pipeline", required_argument, 0, O_PIPE},
        {"fail", no_argument, 0, 'f'},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int pipeline = 0;
    int verbose = 0, stats = 0, http10 = 0, noka = 0, parallel = 1, maxc = 8, fail_http = 0;
    double interval = 0, timeout = 0;
    const char *method = NULL, *data = NULL, *outpath = NULL;
    const char **hdrs = calloc((size_t)argc + 1, sizeof *hdrs);
    int nh = 0;
    tt_keepalive ka = {0, 0, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vX:d:H:o:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'v': verbose = 1; break;
        case 'X': method = optarg; break;
        case 'd': data = optarg; break;
        case 'H': hdrs[nh++] = optarg; break;
        case 'o': outpath = optarg; break;
        case 'f': fail_http = 1; break;
        case O_STATS: stats = 1; break;
        case O_H10: http10 = 1; break;
        case O_NOKA: noka = 1; break;
        case O_PAR: parallel = atoi(optarg); break;
        case O_MAXC: maxc = atoi(optarg); break;
        case O_INT: interval = atof(optarg); break;
        case O_TIMEOUT: timeout = atof(optarg); break;
        case O_PIPE: pipeline = atoi(optarg); break;
        case O_TCPKA:
            if (tt_keepalive_parse(&ka, optarg) < 0) {
                fprintf(stderr, "tether get: bad --tcp-keepalive '%s' (IDLE:INTVL:CNT)\n", optarg);
                free(hdrs);
                return EX_USAGE;
            }
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            free(hdrs);
            return 0;
        default:
            usage(stderr);
            free(hdrs);
            return EX_USAGE;
        }
    }
    if (optind >= argc || parallel < 1 || maxc < 1 || interval < 0 || timeout < 0) {
        usage(stderr);
        free(hdrs);
        return EX_USAGE;
    }
    char *body = NULL;
    size_t body_len = 0;
    if (data) {
        if (data[0] == '@') {
            body = read_file(data + 1, &body_len);
            if (!body) {
                fprintf(stderr, "tether get: cannot read %s: %s\n", data + 1, strerror(errno));
                free(hdrs);
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
        free(hdrs);
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
    g.n = argc - optind;
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
        x->url = argv[optind + i];
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
    free(hdrs);
    free(body);
    return g.rc;
}
