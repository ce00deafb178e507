/* cmd.c — the `tether bench` command: options (through the shared option table), the URL, the
 * request (serialized once by the library's request-head writer, then copied --pipeline times),
 * the TLS context of an https URL (one for the whole command), the runs (--compare: keep-alive,
 * then a new connection per request — over https once with full handshakes and once resuming
 * sessions — with the kernel's TIME_WAIT counts on the port before and after each) and the
 * report. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../cli.h"
#include "../opt.h"
#include "bench.h"

#define MAX_EXTRA 32 /* -H lines */

static const char bench_about[] = "Load-test an HTTP/1.1 server and show what keep-alive buys.";
static const char bench_footer[] =
    "Exit status: 0, 1 when --verify saw an error or no request succeeded, 2 on bad usage.\n";

/* The request as the options describe it, before serialization. */
typedef struct bench_req {
    tt_opt_list extra; /* -H lines */
    const char *body_file;
    char *body;
    size_t body_len;
    tt_header fields[MAX_EXTRA];
    size_t nfields;
    char host[256]; /* -H Host: overrides the URL's ("" when not given) */
    int close;      /* -H Connection: close */
    int expect;     /* -H Expect: 100-continue */
} bench_req;

/* TLS settings from the command line (https URLs). */
typedef struct bench_tls_opts {
    int https;          /* the URL says https:// */
    int insecure;       /* -k */
    const char *cacert; /* --cacert FILE */
    int full;           /* --full-handshake */
} bench_tls_opts;

static int parse_url(bench_cfg *cfg, const char *url, int *https)
{
    const char *p = url;
    *https = 0;
    if (!strncasecmp(p, "http://", 7)) {
        p += 7;
    } else if (!strncasecmp(p, "https://", 8)) {
        p += 8;
        *https = 1;
    } else if (strstr(p, "://")) {
        fprintf(stderr, "tether bench: only http:// and https:// URLs are supported: %s\n", url);
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    if (alen == 0 || alen >= sizeof cfg->host) {
        fprintf(stderr, "tether bench: bad URL: %s\n", url);
        return -1;
    }
    memcpy(cfg->host, p, alen);
    cfg->host[alen] = 0;
    cfg->path = slash ? slash : "/";
    cfg->port = *https ? 443 : 80;
    const char *h = cfg->host, *colon;
    size_t hlen;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (!rb) return fprintf(stderr, "tether bench: bad URL: %s\n", url), -1;
        hlen = (size_t)(rb - h - 1);
        memcpy(cfg->hostname, h + 1, hlen);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        hlen = colon ? (size_t)(colon - h) : strlen(h);
        memcpy(cfg->hostname, h, hlen);
    }
    cfg->hostname[hlen] = 0;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
            return fprintf(stderr, "tether bench: bad port in URL: %s\n", url), -1;
        cfg->port = (int)port;
    }
    int n = tt_addr_resolve(cfg->hostname, cfg->port, &cfg->addr, 1);
    if (n <= 0) {
        fprintf(stderr, "tether bench: cannot resolve %s: %s\n", cfg->hostname, strerror(-n));
        return -1;
    }
    return 0;
}

static int field_is(const tt_header *f, const char *name)
{
    return f->name_len == strlen(name) && !strncasecmp(f->name, name, f->name_len);
}

/* Split the -H lines (tt_http1_header_line) into the serializer's fields; Host, Connection and
 * Expect become its own settings. 0, or -1 after naming the bad line. */
static int split_headers(bench_req *q)
{
    for (int i = 0; i < q->extra.n; i++) {
        const char *line = q->extra.v[i];
        tt_header f;
        if (tt_http1_header_line(line, strlen(line), &f) < 0) {
            fprintf(stderr, "tether bench: -H: bad header (want 'Name: value'): %s\n", line);
            return -1;
        }
        if (field_is(&f, "host")) {
            if (f.value_len >= sizeof q->host) {
                fprintf(stderr, "tether bench: -H: Host value too long: %s\n", line);
                return -1;
            }
            memcpy(q->host, f.value, f.value_len);
            q->host[f.value_len] = 0;
        } else if (field_is(&f, "connection")) {
            q->close = f.value_len == 5 && !strncasecmp(f.value, "close", 5);
        } else if (field_is(&f, "expect")) {
            if (f.value_len != 12 || strncasecmp(f.value, "100-continue", 12)) {
                fprintf(stderr, "tether bench: -H: only Expect: 100-continue is sent: %s\n", line);
                return -1;
            }
            q->expect = 1;
        } else if (field_is(&f, "content-length") || field_is(&f, "transfer-encoding")) {
            fprintf(stderr, "tether bench: -H: %s is set by --body: %s\n",
                    f.name_len == 14 ? "Content-Length" : "Transfer-Encoding", line);
            return -1;
        } else {
            q->fields[q->nfields++] = f;
        }
    }
    return 0;
}

/* Serialize the request (tt_http1_serialize_request) and the pipeline batch (pipeline copies
 * back to back) into cfg. 0, -1 when the method or the URL's path cannot be sent (named), -2
 * out of memory. */
static int build_request(bench_cfg *cfg, const bench_req *q, int keepalive)
{
    tt_http1_request_head h = {
        .method = cfg->method,
        .target = cfg->path,
        .host = q->host[0] ? q->host : cfg->host,
        .headers = q->fields,
        .num_headers = q->nfields,
        .content_length = q->body ? (int64_t)q->body_len : -1,
        .keep_alive = keepalive && !q->close,
        .expect_continue = q->expect,
    };
    size_t head = tt_http1_serialize_request(NULL, 0, &h);
    if (head == 0) {
        fprintf(stderr,
                "tether bench: cannot send %s %s (not a token, or a space or control "
                "byte in the URL's path)\n",
                cfg->method, cfg->path);
        return -1;
    }
    size_t len = head + q->body_len;
    char *batch = malloc(len * (size_t)cfg->pipeline);
    if (!batch) return -2;
    tt_http1_serialize_request(batch, head, &h);
    if (q->body) memcpy(batch + head, q->body, q->body_len);
    for (int i = 1; i < cfg->pipeline; i++)
        memcpy(batch + (size_t)i * len, batch, len);
    free(cfg->batch);
    cfg->batch = batch;
    cfg->req_len = len;
    cfg->keepalive = keepalive;
    return 0;
}

static int read_body_file(bench_req *q)
{
    FILE *f = fopen(q->body_file, "rb");
    if (!f) {
        fprintf(stderr, "tether bench: %s: %s\n", q->body_file, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) {
            fclose(f);
            return -1;
        }
        size_t n = fread(b + len, 1, cap - len, f);
        len += n;
        if (len < cap) break;
        cap *= 2;
        char *nb = realloc(b, cap);
        if (!nb) free(b);
        b = nb;
    }
    fclose(f);
    q->body = b;
    q->body_len = len;
    return 0;
}

/* TIME_WAIT sockets on the port right now, by side. */
static int tw_snapshot(int port, unsigned *server, unsigned *client)
{
    tt_tcp_counts s, c;
    int rc = tt_sockdiag_count(port, &s, &c);
    if (rc < 0) {
        *server = *client = 0;
        return rc;
    }
    *server = s.n[TT_TCP_TIME_WAIT];
    *client = c.n[TT_TCP_TIME_WAIT];
    return 0;
}

/* After an https run: name the first handshake failure on stderr (a certificate that does not
 * verify ends the run at once, with the way out). */
static void tls_report_failures(const bench_cfg *cfg, const bench_result *r)
{
    if (!cfg->tls || !r->tls.failures_total) return;
    fprintf(stderr, "tether bench: %llu TLS handshake%s with %s failed; first: %s\n",
            (unsigned long long)r->tls.failures_total, r->tls.failures_total == 1 ? "" : "s",
            cfg->host, r->tls.first_error[0] ? r->tls.first_error : "?");
    if (r->tls.failures[TT_TLS_FAIL_CERT])
        fprintf(stderr, "tether bench: the server's certificate did not verify: use --cacert "
                        "FILE to trust its CA, or -k to skip verification\n");
}

/* Make the run's TLS client context from the options. 0, or -1 after saying why. */
static int tls_setup(bench_cfg *cfg, const bench_tls_opts *t)
{
    tt_tls_opts o;
    memset(&o, 0, sizeof o);
    o.insecure = t->insecure;
    o.ca_file = t->cacert;
    o.handshake_timeout_ms = cfg->timeout_ms;
    char err[256] = "";
    int rc = tt_tls_ctx_new(&cfg->tls, &o, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "tether bench: TLS setup: %s\n", err[0] ? err : strerror(-rc));
        return -1;
    }
    cfg->tls_sessions = t->full ? BENCH_TLS_FULL : BENCH_TLS_RESUME;
    return 0;
}

static int run_with_tw(const bench_cfg *cfg, bench_result *r)
{
    unsigned s0 = 0, c0 = 0, s1 = 0, c1 = 0;
    int diag = tw_snapshot(cfg->port, &s0, &c0);
    int rc = bench_run(cfg, r);
    tls_report_failures(cfg, r);
    if (rc < 0) return -1;
    if (diag == 0) {
        /* closes finish their FIN exchange within a few round trips on loopback */
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        tw_snapshot(cfg->port, &s1, &c1);
        r->tw_server = s1 > s0 ? s1 - s0 : 0;
        r->tw_client = c1 > c0 ? c1 - c0 : 0;
    } else {
        fprintf(stderr, "tether bench: sock_diag unavailable (%s): TIME_WAIT not counted\n",
                strerror(-diag));
    }
    return 0;
}

/* Parse bench's options into cfg and q; TT_OPT_* result. */
static int bench_options(int argc, char **argv, bench_cfg *cfg, bench_req *q, int *keepalive,
                         bench_tls_opts *tls)
{
    int no_keepalive = 0;
    long long rate = 0, verify_length = -1;
    double timeout = -1;
    const double BIG = 9e15;
    const tt_opt opts[] = {
        {"connections", 'c', TT_OPT_INT, "N", 1, 1000000, &cfg->conns, "concurrent connections",
         "10"},
        {"duration", 'd', TT_OPT_DURATION, "T", 0.001, 1e7, &cfg->duration_s,
         "run for T (seconds, or 500ms, 2m)", "10s unless -n"},
        {"requests", 'n', TT_OPT_LONG, "N", 1, 1e15, &cfg->nreq,
         "run exactly N requests (k/m suffixes) instead of -d", NULL},
        {"threads", 't', TT_OPT_INT, "N", 1, BENCH_MAX_THREAD, &cfg->threads,
         "threads, each with its own event loop", "one per core"},
        {"rate", 0, TT_OPT_LONG, "R", 1, 1e12, &rate,
         "open loop: R requests/s in total, latency measured from the intended send time "
         "(coordinated-omission correction)",
         NULL},
        {"no-keepalive", 0, TT_OPT_FLAG, NULL, 0, 0, &no_keepalive,
         "a new connection per request (Connection: close; the client closes after reading, so "
         "TIME_WAIT lands on the client)",
         NULL},
        {"pipeline", 0, TT_OPT_INT, "N", 1, 1024, &cfg->pipeline,
         "N requests in flight per connection, written in one send; requests left unanswered "
         "when a response closes the connection are sent again on a new one (counted as resent)",
         "1"},
        {"method", 'm', TT_OPT_STRING, "M", 0, 0, &cfg->method, "request method", "GET"},
        {"header", 'H', TT_OPT_LIST, "'N: v'", 0, MAX_EXTRA, &q->extra,
         "add a request header (repeatable; Host overrides the URL's)", NULL},
        {"body", 0, TT_OPT_STRING, "FILE", 0, 0, &q->body_file,
         "send FILE as the request body (Content-Length)", NULL},
        {"timeout", 0, TT_OPT_DURATION, "T", 0.001, 1e6, &timeout, "per-request timeout", "2s"},
        {"verify", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->verify,
         "check every response's status and body length against the first response (or "
         "--verify-length); mismatches are errors",
         NULL},
        {"verify-length", 0, TT_OPT_LONG, "N", 0, BIG, &verify_length,
         "expected body length for --verify", NULL},
        {"compare", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->compare,
         "run the load twice, keep-alive then a new connection per request, side by side with "
         "ratios, who closed each connection first, and the TIME_WAIT left after each run (https: "
         "three times, the new connections once with full handshakes, once resuming sessions)",
         NULL},
        {"insecure", 'k', TT_OPT_FLAG, NULL, 0, 0, &tls->insecure,
         "https: do not verify the server's certificate or host name", NULL},
        {"cacert", 0, TT_OPT_STRING, "FILE", 0, 0, &tls->cacert,
         "https: trust the CA certificates in FILE (PEM) instead of the system's", NULL},
        {"full-handshake", 0, TT_OPT_FLAG, NULL, 0, 0, &tls->full,
         "https: never offer a session, so every new connection makes a full handshake (by "
         "default a new connection resumes a session an earlier connection of its thread got)",
         NULL},
        {"json", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->json, "print one JSON object instead of text",
         NULL},
        TT_OPT_END,
    };
    const tt_opt_cmd cmd = {"bench", "[options] URL", bench_about, bench_footer, opts};
    int first, r = tt_opt_parse(&cmd, argc, argv, &first);
    if (r) return r;
    if (first >= argc) return tt_opt_error(&cmd, "no URL given");
    if (first + 1 < argc) return tt_opt_error(&cmd, "more than one URL: %s", argv[first + 1]);
    cfg->url = argv[first];
    if (!*cfg->method || !tt_http1_token_valid(cfg->method, strlen(cfg->method)))
        return tt_opt_error(&cmd, "--method: '%s' is not a method (a token)", cfg->method);
    if (timeout > 0) cfg->timeout_ms = (int)(timeout * 1000.0 + 0.5);
    if (verify_length >= 0) cfg->verify_length = verify_length, cfg->verify = 1;
    cfg->rate = (double)rate;
    *keepalive = !no_keepalive;
    if (cfg->nreq > 0 && cfg->duration_s > 0)
        return tt_opt_error(&cmd, "-d and -n exclude each other");
    if (cfg->compare && no_keepalive)
        return tt_opt_error(&cmd, "--compare runs both modes; drop --no-keepalive");
    if (no_keepalive && cfg->pipeline > 1) return tt_opt_error(&cmd, "--pipeline needs keep-alive");
    if (cfg->compare && tls->full)
        return tt_opt_error(&cmd, "--compare runs both handshake kinds; drop --full-handshake");
    return TT_OPT_OK;
}

/* Defaults that depend on other options: duration, threads, progress. */
static void bench_settle(bench_cfg *cfg)
{
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    if (cfg->nreq == 0 && cfg->duration_s < 0) cfg->duration_s = 10;
    if (cfg->nreq > 0) cfg->duration_s = 0;
    if (cfg->threads == 0) cfg->threads = nproc > 0 ? (int)nproc : 1;
    if (cfg->threads > cfg->conns) cfg->threads = cfg->conns;
    if (cfg->nreq > 0 && cfg->nreq < cfg->threads) cfg->threads = (int)cfg->nreq;
    cfg->method_id = tt_http1_method_id(cfg->method, strlen(cfg->method));
    cfg->progress = isatty(STDERR_FILENO) && !cfg->json;
}

/* Did a run end on a certificate that will not verify (no point running on)? */
static int tls_fatal(const bench_cfg *cfg, const bench_result *r)
{
    return cfg->tls && r->tls.failures[TT_TLS_FAIL_CERT] && !r->requests;
}

/* --compare: the runs (keep-alive; new connection, over https with full handshakes then with
 * resumed sessions) and the table (or JSON). Exit status. */
static int run_compare(bench_cfg *cfg, const bench_req *q, bench_result *rs)
{
    int n = cfg->tls ? 3 : 2, done = 0;
    for (int i = 0; i < n && !bench_interrupted; i++) {
        if (i == 1 && build_request(cfg, q, 0) < 0) return 1;
        if (cfg->tls) cfg->tls_sessions = i == 1 ? BENCH_TLS_FULL : BENCH_TLS_RESUME;
        if (run_with_tw(cfg, &rs[i]) < 0) return 1;
        done++;
        if (tls_fatal(cfg, &rs[i])) return 1;
    }
    if (done < n) n = done > 0 ? done : 1; /* interrupted: the runs that happened */
    const bench_result *runs[3] = {&rs[0], &rs[1], &rs[2]};
    if (cfg->json)
        bench_print_compare_json(cfg, runs, n);
    else
        bench_print_compare(cfg, runs, n);
    int err = 0;
    for (int i = 0; i < n; i++)
        err |= rs[i].errors != 0;
    return (cfg->verify && err) || (!rs[0].requests && rs[0].errors);
}

int tt_cmd_bench(int argc, char **argv)
{
    bench_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.conns = 10;
    cfg.pipeline = 1;
    cfg.method = "GET";
    cfg.timeout_ms = 2000;
    cfg.verify_length = -1;
    cfg.duration_s = -1;
    bench_req q;
    memset(&q, 0, sizeof q);
    int keepalive = 1;
    bench_tls_opts tls;
    memset(&tls, 0, sizeof tls);
    int r = bench_options(argc, argv, &cfg, &q, &keepalive, &tls);
    if (r) return r == TT_OPT_HELP ? 0 : 2;
    bench_settle(&cfg);
    if (split_headers(&q) < 0 || parse_url(&cfg, cfg.url, &tls.https) < 0) return 2;
    if (!tls.https && (tls.insecure || tls.cacert || tls.full)) {
        fprintf(stderr, "tether bench: -k, --cacert and --full-handshake need an https:// URL\n");
        return 2;
    }
    if (q.body_file && read_body_file(&q) < 0) return 2;
    if (tls.https && tls_setup(&cfg, &tls) < 0) {
        free(q.body);
        return 2;
    }
    r = build_request(&cfg, &q, cfg.compare ? 1 : keepalive);
    if (r < 0) {
        if (r == -2) fprintf(stderr, "tether bench: out of memory\n");
        free(q.body);
        tt_tls_ctx_free(cfg.tls);
        return r == -2 ? 1 : 2;
    }
    tt_raise_nofile();
    /* workers inherit a mask with SIGINT/SIGTERM blocked: the main thread takes them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 0;
    bench_result rs[3];
    memset(rs, 0, sizeof rs);
    bench_result *r1 = &rs[0];
    if (cfg.compare) {
        status = run_compare(&cfg, &q, rs);
    } else if (bench_run(&cfg, r1) < 0) {
        tls_report_failures(&cfg, r1);
        status = 1;
    } else {
        tls_report_failures(&cfg, r1);
        if (cfg.json)
            bench_print_json(&cfg, r1);
        else
            bench_print_text(&cfg, r1);
        if ((cfg.verify && r1->errors) || (!r1->requests && r1->errors)) status = 1;
    }
    fflush(stdout);
    for (int i = 0; i < 3; i++)
        free(rs[i].hist);
    free(cfg.batch);
    free(q.body);
    tt_tls_ctx_free(cfg.tls);
    return status;
}
