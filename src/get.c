/* get.c — `tether get`: fetch URLs over one pooled client; bodies to stdout (or -o) in order. */
#include <errno.h>
#include <stdint.h>
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
    EX_REDIRS = 47,
    EX_FILESIZE = 63,
    EX_TLS_CONNECT = 35, /* TLS handshake failed */
    EX_TLS_CERT = 60,    /* the server's certificate did not verify */
    EX_TLS_SETUP = 77,   /* the TLS context could not be made (--cacert file, cipher list) */
};

static const char get_footer[] =
    "exit codes (curl-like): 0 ok, 1 unsupported scheme, 2 usage, 3 bad URL,\n"
    "  6 cannot resolve, 7 cannot connect, 8 malformed response, 18 closed mid-body,\n"
    "  22 HTTP error with -f, 23 write error, 26 cannot read -d @FILE, 28 timeout,\n"
    "  35 TLS handshake failed, 47 too many redirects, 52 empty reply, 55 send failed,\n"
    "  56 receive failed, 60 certificate did not verify, 63 body over --max-filesize,\n"
    "  77 cannot use --cacert/--ciphers. With several URLs: the first failure's code.\n";

/* What get's options set. */
typedef struct get_opts {
    int verbose, stats, http10, noka, parallel, maxc, fail_http, pipeline, follow, max_redirs;
    int insecure, tls_min;
    double interval, timeout, speed_time, tls_timeout;
    long long max_filesize, speed_limit;
    const char *method, *data, *outpath, *tcpka, *unix_socket, *cacert, *ciphers, *tls_min_s;
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
        {NULL, 'o', TT_OPT_STRING, "FILE", 0, 0, &o->outpath,
         "write bodies to FILE (as they arrive)", NULL},
        {"location", 'L', TT_OPT_FLAG, NULL, 0, 0, &o->follow,
         "follow redirects (301/302 POST->GET, 303 ->GET, 307/308 keep method and body)", NULL},
        {"max-redirs", 0, TT_OPT_INT, "N", 0, 1e6, &o->max_redirs, "redirects followed with -L",
         "50"},
        {"max-filesize", 0, TT_OPT_SIZE, "BYTES", 0, 0, &o->max_filesize,
         "fail (exit 63) when a body is larger", "no limit"},
        {"speed-limit", 0, TT_OPT_LONG, "BYTES", 0, 9e15, &o->speed_limit,
         "fail (exit 28) when a body arrives slower than this many bytes/s for --speed-time",
         "off"},
        {"speed-time", 0, TT_OPT_DURATION, "SEC", 0.001, 86400, &o->speed_time,
         "window of --speed-limit", "30"},
        {"unix-socket", 0, TT_OPT_STRING, "PATH", 0, 0, &o->unix_socket,
         "connect to this Unix-domain socket instead of the URL's host", NULL},
        {"cacert", 0, TT_OPT_STRING, "FILE", 0, 0, &o->cacert,
         "https: trust the CA certificates in FILE (PEM) instead of the system store", NULL},
        {"insecure", 'k', TT_OPT_FLAG, NULL, 0, 0, &o->insecure,
         "https: do not verify the server's certificate or host name", NULL},
        {"tls-min", 0, TT_OPT_STRING, "1.2|1.3", 0, 0, &o->tls_min_s,
         "https: lowest TLS version offered", "1.2"},
        {"ciphers", 0, TT_OPT_STRING, "LIST", 0, 0, &o->ciphers,
         "https: TLS 1.2 cipher list (OpenSSL syntax)", NULL},
        {"tls-timeout", 0, TT_OPT_DURATION, "SEC", 0.001, 86400, &o->tls_timeout,
         "https: TLS handshake time limit (after the TCP connect)", "10"},
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
    if (o->tls_min_s) {
        if (strcmp(o->tls_min_s, "1.2") && strcmp(o->tls_min_s, "1.3"))
            return tt_opt_error(&cmd, "bad --tls-min '%s' (1.2 or 1.3)", o->tls_min_s);
        o->tls_min = o->tls_min_s[2] == '3' ? 13 : 12;
    }
    return TT_OPT_OK;
}

/* Per URL: where its body goes while it is not yet its turn to print, and its redirects. */
typedef struct getx {
    char *buf; /* body bytes held until the exchanges before it are printed */
    size_t len, cap;
    uint64_t total; /* body bytes of the final response */
    char *url;      /* the current URL after a redirect (owned) */
    int redirs;
} getx;

typedef struct getctx {
    tt_client *client;
    tt_exchange *xs;
    getx *gx;
    int n, next, printed, running, parallel;
    char *done;
    FILE *out;
    int verbose, fail_http, rc, write_err, follow, max_redirs;
} getctx;

static int exit_code(const tt_exchange *x)
{
    int e = x->error;
    const char *w = x->error_what ? x->error_what : "";
    if (!e) return 0;
    if (!strncmp(w, "certificate: ", 13)) return EX_TLS_CERT;
    if (!strncmp(w, "tls setup", 9)) return EX_TLS_SETUP;
    if (!strncmp(w, "tls handshake: ", 15) && e != -ETIMEDOUT) return EX_TLS_CONNECT;
    if (e == -EPROTONOSUPPORT) return EX_UNSUPPORTED;
    if (!strcmp(w, "url")) return EX_URL;
    if (!strncmp(w, "bad ", 4)) return EX_USAGE; /* "bad header", "bad method", ... */
    if (!strcmp(w, "too many redirects")) return EX_REDIRS;
    if (e == -EFBIG) return EX_FILESIZE;
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

static void out_write(getctx *g, const void *b, size_t n)
{
    if (n && fwrite(b, 1, n, g->out) != n) g->write_err = 1;
}

/* A redirect -L follows: a 3xx with a Location. */
static int is_redirect(const getctx *g, const tt_exchange *x)
{
    int s = x->status;
    return g->follow && (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) &&
           tt_exchange_header(x, "Location", NULL);
}

/* Body bytes as they arrive: to the output when it is this URL's turn, else held in order. A
 * redirect's body is dropped. */
static int on_body(tt_exchange *x, const char *data, size_t len)
{
    getctx *g = x->data;
    int i = (int)(x - g->xs);
    getx *e = &g->gx[i];
    if (is_redirect(g, x)) return 0;
    e->total += len;
    if (i == g->printed && !e->len) { /* streamed: out (and through a pipe) at once */
        out_write(g, data, len);
        if (fflush(g->out) != 0) g->write_err = 1;
        return g->write_err ? -1 : 0; /* -1 aborts (1 would be TT_BODY_PAUSE) */
    }
    if (e->len + len > e->cap) {
        size_t cap = e->cap ? e->cap : 16384;
        while (cap < e->len + len)
            cap *= 2;
        char *nb = realloc(e->buf, cap);
        if (!nb) return -1;
        e->buf = nb;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
    return 0;
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
            fprintf(stderr, "* [%d] %s %s: %d on connection #%u (%s)%s%s%s; %llu body bytes%s\n",
                    i + 1, x->method ? x->method : "GET", x->url, x->status, x->conn_id,
                    x->reused ? "reused" : "new", x->conn_kept ? ", kept alive" : ", closed: ",
                    x->conn_kept ? "" : tt_evict_reason_name(x->close_reason),
                    x->retries ? " after a retry" : "", (unsigned long long)g->gx[i].total,
                    x->trailers_len ? " + trailers" : "");
        if (!x->error && x->trailers_len) {
            /* the trailer fields, as the head's are shown */
            for (const char *l = x->trailers; *l;) {
                size_t n = strcspn(l, "\r\n");
                fprintf(stderr, "< %.*s\n", (int)n, l);
                l += n;
                l += strspn(l, "\r\n");
            }
        }
    }
    int rc = exit_code(x);
    if (!rc && g->fail_http && x->status >= 400) rc = EX_HTTP;
    if (rc && !g->rc) g->rc = rc;
    if (x->error && !g->verbose) {
        const char *w = x->error_what ? x->error_what : "";
        if (!strncmp(w, "certificate: ", 13)) /* curl's wording */
            fprintf(stderr, "tether get: %s: SSL certificate problem: %s\n", x->url, w + 13);
        else if (!strncmp(w, "tls handshake: ", 15))
            fprintf(stderr, "tether get: %s: TLS connect error: %s\n", x->url, w + 15);
        else if (!strncmp(w, "truncated: ", 11) || !strncmp(w, "tls setup: ", 11))
            fprintf(stderr, "tether get: %s: %s\n", x->url, w);
        else
            fprintf(stderr, "tether get: %s: %s: %s\n", x->url, w,
                    x->error == -ELOOP ? "stopped" : strerror(-x->error));
    }
}

static void flush_done(getctx *g)
{
    while (g->printed < g->n && g->done[g->printed]) {
        getx *e = &g->gx[g->printed];
        out_write(g, e->buf, e->len);
        report(g, g->printed);
        tt_exchange_cleanup(&g->xs[g->printed]);
        free(e->buf);
        free(e->url);
        e->buf = e->url = NULL;
        g->printed++;
    }
    if (g->printed < g->n) { /* its turn now: what it held goes out, the rest streams */
        getx *e = &g->gx[g->printed];
        out_write(g, e->buf, e->len);
        e->len = 0;
    }
}

/* Resolve Location ref against base (RFC 3986 §5.2, without dot-segment removal) into a new
 * string; NULL when out of memory. */
static char *resolve_url(const char *base, const char *ref, size_t rl)
{
    const char *sch = strstr(base, "://");
    size_t pre = sch ? (size_t)(sch + 3 - base) : 0; /* "http://" */
    size_t auth = pre + strcspn(base + pre, "/?#");  /* end of the authority */
    size_t keep;
    const char *glue = "";
    if (memchr(ref, ':', rl) && strcspn(ref, ":") < strcspn(ref, "/?#")) /* absolute */
        keep = 0;
    else if (rl >= 2 && ref[0] == '/' && ref[1] == '/') /* network-path */
        keep = pre ? pre - 2 : 0;
    else if (rl && ref[0] == '/')
        keep = auth;
    else if (rl && ref[0] == '?')
        keep = auth + strcspn(base + auth, "?#");
    else { /* relative path: beside the base's last segment */
        size_t pend = auth + strcspn(base + auth, "?#");
        keep = pend;
        while (keep > auth && base[keep - 1] != '/')
            keep--;
        if (keep == auth) glue = "/";
    }
    size_t gl = strlen(glue);
    char *u = malloc(keep + gl + rl + 1);
    if (!u) return NULL;
    memcpy(u, base, keep);
    memcpy(u + keep, glue, gl);
    memcpy(u + keep + gl, ref, rl);
    u[keep + gl + rl] = 0;
    return u;
}

/* After x completed: set it up for its next hop when -L follows a redirect (1), else 0. The
 * method rules of RFC 9110 §15.4 as curl -L applies them: 303 turns every method but HEAD
 * into GET, 301/302 turn POST into GET, 307/308 keep method and body. */
static int next_hop(getctx *g, tt_exchange *x)
{
    if (x->error || !is_redirect(g, x)) return 0;
    getx *e = &g->gx[x - g->xs];
    if (e->redirs >= g->max_redirs) {
        x->error = -ELOOP;
        x->error_what = "too many redirects";
        return 0;
    }
    size_t ll;
    const char *loc = tt_exchange_header(x, "Location", &ll);
    char *u = resolve_url(x->url, loc, ll);
    if (!u) return 0;
    const char *m = x->method ? x->method : "GET";
    if ((x->status == 303 && strcmp(m, "HEAD")) ||
        ((x->status == 301 || x->status == 302) && !strcmp(m, "POST"))) {
        x->method = "GET";
        x->body = NULL;
        x->body_len = 0;
    }
    if (g->verbose)
        fprintf(stderr, "* [%d] %d: following Location to %s\n", (int)(x - g->xs) + 1, x->status,
                u);
    free(e->url);
    e->url = u;
    x->url = u;
    e->redirs++;
    e->total = 0;
    return 1;
}

static void start_next(getctx *g);

/* Start x (again after a redirect); a refusal completes it at once. 1 started, 0 refused. */
static int start_one(getctx *g, tt_exchange *x)
{
    int r = tt_client_start(g->client, x);
    if (r >= 0) return 1;
    x->error = r;
    if (!x->error_what || strncmp(x->error_what, "tls setup", 9))
        x->error_what = r == -EPROTONOSUPPORT ? "scheme" : x->error_what ? x->error_what : "url";
    g->done[x - g->xs] = 1;
    return 0;
}

static void on_done(tt_exchange *x)
{
    getctx *g = x->data;
    if (next_hop(g, x)) {
        if (start_one(g, x)) return;
    } else {
        g->done[x - g->xs] = 1;
    }
    g->running--;
    flush_done(g);
    start_next(g);
}

static void start_next(getctx *g)
{
    while (g->running < g->parallel && g->next < g->n) {
        tt_exchange *x = &g->xs[g->next++];
        if (start_one(g, x))
            g->running++;
        else
            flush_done(g);
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

/* Has the user given a field of this name with -H? 1 with a value, 2 empty ("Name:" asks
 * curl-like to send none), 0 not given. */
static int user_field(const tt_opt_list *h, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < h->n; i++)
        if (!strncasecmp(h->v[i], name, nl) && h->v[i][nl] == ':')
            return h->v[i][nl + 1 + strspn(h->v[i] + nl + 1, " \t")] ? 1 : 2;
    return 0;
}

/* The request fields: the defaults curl sends (User-Agent, Accept) unless -H gave them, then
 * the -H lines (an empty "Name:" only removes a default). */
static int build_headers(const tt_opt_list *h, const char **out, char *ua, size_t uasz)
{
    int n = 0;
    snprintf(ua, uasz, "User-Agent: tether/%s", tt_version());
    if (!user_field(h, "User-Agent")) out[n++] = ua;
    if (!user_field(h, "Accept")) out[n++] = "Accept: */*";
    for (int i = 0; i < h->n; i++) {
        const char *c = strchr(h->v[i], ':');
        if (c && !c[1 + strspn(c + 1, " \t")] &&
            (!strncasecmp(h->v[i], "User-Agent:", 11) || !strncasecmp(h->v[i], "Accept:", 7)))
            continue;
        out[n++] = h->v[i];
    }
    return n;
}

/* Client options from get's flags. */
static void client_options(const get_opts *go, tt_client_opts *o)
{
    tt_client_opts_default(o);
    o->max_per_route = go->maxc;
    o->max_total = go->maxc;
    o->tcp_keepalive = go->ka;
    o->pipelining = go->pipeline;
    o->verbose = go->verbose;
    o->log = log_line;
    if (go->timeout > 0) o->total_timeout_ms = (int)(go->timeout * 1000);
    o->max_body_size = go->max_filesize;
    o->low_speed_limit = go->speed_limit;
    if (go->speed_time > 0) o->low_speed_time_ms = (int)(go->speed_time * 1000);
    o->unix_socket = go->unix_socket;
    o->ca_file = go->cacert;
    o->insecure = go->insecure;
    o->tls_min_version = go->tls_min;
    o->ciphers = go->ciphers;
    if (go->tls_timeout > 0) o->tls_handshake_timeout_ms = (int)(go->tls_timeout * 1000);
}

/* Run every URL: one after the other (with --interval), or --parallel at once. */
static void run_all(getctx *g, double interval)
{
    if (g->parallel > 1) {
        start_next(g);
        tt_client_wait(g->client, -1);
        flush_done(g);
        return;
    }
    for (int i = 0; i < g->n; i++) {
        if (i && interval > 0) tt_client_wait(g->client, (int)(interval * 1000));
        tt_exchange *x = &g->xs[i];
        x->on_done = NULL;
        do {
            if (g->verbose)
                fprintf(stderr, "* [%d] %s %s\n", i + 1, x->method ? x->method : "GET", x->url);
            tt_client_request(g->client, x);
        } while (next_hop(g, x));
        g->done[i] = 1;
        flush_done(g);
    }
}

int tt_cmd_get(int argc, char **argv)
{
    get_opts go = {.parallel = 1, .maxc = 8, .max_redirs = 50};
    int optind_first;
    int pr = get_options(argc, argv, &go, &optind_first);
    if (pr) return pr == TT_OPT_HELP ? 0 : EX_USAGE;
    const char *method = go.method, *data = go.data;
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
    if (go.outpath && !(out = fopen(go.outpath, "wb"))) {
        fprintf(stderr, "tether get: cannot open %s: %s\n", go.outpath, strerror(errno));
        free(body);
        return EX_WRITE;
    }
    static const char *hdrs[TT_OPT_LIST_MAX + 2];
    char ua[64];
    int nh = build_headers(&go.hdrs, hdrs, ua, sizeof ua);
    tt_client_opts o;
    client_options(&go, &o);
    getctx g = {.parallel = go.parallel,
                .out = out,
                .verbose = go.verbose,
                .fail_http = go.fail_http,
                .follow = go.follow,
                .max_redirs = go.max_redirs};
    g.n = argc - optind_first;
    g.xs = calloc((size_t)g.n, sizeof *g.xs);
    g.gx = calloc((size_t)g.n, sizeof *g.gx);
    g.done = calloc((size_t)g.n, 1);
    int r = g.xs && g.gx && g.done ? tt_client_new(&g.client, &o) : -ENOMEM;
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
        x->http10 = go.http10;
        x->no_keepalive = go.noka;
        for (int j = 0; j < nh; j++)
            if (!strncasecmp(hdrs[j], "Expect:", 7) && strcasestr(hdrs[j], "100-continue"))
                x->expect_continue = 1;
        x->on_body = on_body;
        x->on_done = on_done;
        x->data = &g;
    }
    run_all(&g, go.interval);
    if (fflush(out) != 0 || g.write_err) {
        if (!g.rc) g.rc = EX_WRITE;
    }
    if (out != stdout) fclose(out);
    if (go.stats) {
        char js[8192];
        tt_client_stats_json(g.client, js, sizeof js);
        fprintf(stderr, "%s\n", js);
    }
    tt_client_free(g.client);
    free(g.xs);
    free(g.gx);
    free(g.done);
    free(body);
    return g.rc;
}
