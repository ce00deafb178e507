/* proxy.c — `tether proxy`: a keep-alive reverse proxy (the library's tt_proxy route handler)
 * with every connection flag of serve (connopt.c) and the upstream flags; --status adds the
 * upstreams to the status pages (insight/upstreams.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tether.h>
#include <tether/proxy.h>
#include <tether/tls.h>

#include "cli.h"
#include "connopt.h"
#include "insight/insight.h"

/* src/insight provides it; a weak reference keeps the command linkable without it. */
#pragma weak tt_insight_set_proxy

#define PROXY_NROWS 20 /* room for the rows proxy_rows writes */

/* The upstream flags before they go into the proxy config (-1: not given). */
typedef struct proxy_flags {
    tt_opt_list upstreams;
    int keepalive, max_conns, fail_threshold, max_retries, no_forwarded, insecure;
    double idle, connect, timeout, rest;
    long long buffer;
    const char *balance, *host, *via, *cacert, *sni;
} proxy_flags;

/* An int flag (-1: not given) into a config field; 0 becomes TT_OFF. */
static void set_int(int *field, int v)
{
    if (v >= 0) *field = v == 0 ? TT_OFF : v;
}

/* The upstream rows of the option table into rows (room for PROXY_NROWS); returns how many. */
static int proxy_rows(proxy_flags *f, tt_opt *rows)
{
    const double H = 2e6; /* the longest duration, in seconds (about 23 days) */
    const tt_opt r[] = {
        {"upstream", 0, TT_OPT_LIST, "URL", 0, TT_PROXY_MAX_UPSTREAMS, &f->upstreams,
         "http://HOST[:PORT] or https://HOST[:PORT] to proxy to, repeatable (required)", NULL},
        {"upstream-keepalive", 0, TT_OPT_INT, "N", 0, 1e6, &f->keepalive,
         "idle connections kept per upstream and worker; 0 none", "32"},
        {"upstream-max-conns", 0, TT_OPT_INT, "N", 0, 1e6, &f->max_conns,
         "connections per upstream and worker, requests queue above; 0 unlimited", "0"},
        {"upstream-idle-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &f->idle,
         "idle upstream connection limit; 0 none", "learned from the upstream, else 30"},
        {"upstream-connect-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &f->connect,
         "TCP connect to an upstream; 0 the kernel's", "5"},
        {"upstream-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &f->timeout,
         "time to the response head (504 after it), then max gap in its body; 0 none", "60"},
        {"balance", 0, TT_OPT_STRING, "least-conn|round-robin", 0, 0, &f->balance,
         "how an upstream is chosen", "least-conn"},
        {"upstream-host", 0, TT_OPT_STRING, "NAME", 0, 0, &f->host, "Host sent upstream",
         "the client's Host"},
        {"fail-threshold", 0, TT_OPT_INT, "N", 0, 1e6, &f->fail_threshold,
         "consecutive connect failures or resets before an upstream rests; 0 never", "3"},
        {"fail-rest", 0, TT_OPT_DURATION, "SEC", 0.001, H, &f->rest,
         "how long it rests, then one request tries it again", "10"},
        {"max-retries", 0, TT_OPT_INT, "N", 0, 100, &f->max_retries,
         "retries of a failed idempotent request on another connection or upstream", "1"},
        {"via", 0, TT_OPT_STRING, "NAME", 0, 0, &f->via, "pseudonym in Via: 1.1 NAME", "tether"},
        {"no-forwarded", 0, TT_OPT_FLAG, NULL, 0, 0, &f->no_forwarded,
         "do not add X-Forwarded-For, -Proto and -Host", NULL},
        {"upstream-buffer", 0, TT_OPT_SIZE, "SIZE", 0, 0, &f->buffer,
         "bytes buffered per exchange and direction before the sender is paused", "64k"},
        {"upstream-cacert", 0, TT_OPT_STRING, "FILE", 0, 0, &f->cacert,
         "PEM trust anchors for https upstreams' certificates", "the system store"},
        {"upstream-insecure", 0, TT_OPT_FLAG, NULL, 0, 0, &f->insecure,
         "do not verify https upstreams' certificates (verified by default)", NULL},
        {"upstream-sni", 0, TT_OPT_STRING, "NAME", 0, 0, &f->sni,
         "name sent as SNI and verified in https upstreams' certificates", "the URL's host"},
    };
    _Static_assert(sizeof r / sizeof r[0] <= PROXY_NROWS, "raise PROXY_NROWS");
    memcpy(rows, r, sizeof r);
    return (int)(sizeof r / sizeof r[0]);
}

/* The upstream flags into pc. TT_OPT_OK or TT_OPT_USAGE after a message naming the flag. */
static int proxy_apply(proxy_flags *f, tt_proxy_config *pc, const tt_opt_cmd *cmd)
{
    if (!f->upstreams.n) return tt_opt_error(cmd, "--upstream URL is required");
    for (int i = 0; i < f->upstreams.n; i++)
        pc->upstreams[pc->nupstreams++] = f->upstreams.v[i];
    if (f->balance && !strcmp(f->balance, "round-robin"))
        pc->balance = TT_PROXY_ROUND_ROBIN;
    else if (f->balance && strcmp(f->balance, "least-conn"))
        return tt_opt_error(cmd, "--balance: '%s' is not least-conn or round-robin", f->balance);
    if (f->buffer == 0 || f->buffer > (1 << 30))
        return tt_opt_error(cmd, "--upstream-buffer: '%lld' is out of range (1..1g)", f->buffer);
    if (f->buffer > 0) pc->buffer = (int)f->buffer;
    set_int(&pc->keepalive, f->keepalive);
    set_int(&pc->max_conns, f->max_conns);
    set_int(&pc->fail_threshold, f->fail_threshold);
    set_int(&pc->max_retries, f->max_retries);
    tt_connopt_ms(&pc->idle_timeout_ms, f->idle, TT_OFF);
    tt_connopt_ms(&pc->connect_timeout_ms, f->connect, TT_OFF);
    tt_connopt_ms(&pc->timeout_ms, f->timeout, TT_OFF);
    tt_connopt_ms(&pc->fail_rest_ms, f->rest, TT_OFF);
    pc->upstream_host = f->host;
    pc->via = f->via;
    pc->no_forwarded = f->no_forwarded;
    pc->upstream_ca_file = f->cacert;
    pc->upstream_insecure = f->insecure;
    pc->upstream_sni = f->sni;
    return TT_OPT_OK;
}

/* Parse proxy's options: the shared connection flags and the upstream ones. */
static int proxy_options(int argc, char **argv, tt_connopt *c, proxy_flags *f, tt_proxy_config *pc)
{
    tt_opt opts[TT_CONNOPT_NROWS + PROXY_NROWS + 1];
    int n = tt_connopt_rows(c, opts);
    n += proxy_rows(f, opts + n);
    opts[n] = (tt_opt)TT_OPT_END;
    const tt_opt_cmd cmd = {
        "proxy", "--upstream URL [--upstream URL ...] [options]",
        "A keep-alive reverse proxy: requests stream to the upstreams over pooled, reused\n"
        "connections (no TIME_WAIT per request on the upstream leg).",
        "A failure before the upstream's response head answers 502 (504 after\n"
        "--upstream-timeout); --status adds the upstreams to /_tether/status.\n",
        opts};
    int first, r = tt_opt_parse(&cmd, argc, argv, &first);
    if (r) return r;
    if (first < argc) return tt_opt_error(&cmd, "unexpected argument '%s'", argv[first]);
    r = proxy_apply(f, pc, &cmd);
    return r ? r : tt_connopt_apply(c, &cmd);
}

/* X-Forwarded-Proto: "https" when every listener is TLS (one config serves every listener). */
static const char *forwarded_proto(const tt_server_config *cfg)
{
    for (int i = 0; i < cfg->nlisten; i++)
        if (strncasecmp(cfg->listen[i], "https://", 8)) return NULL;
    return cfg->nlisten ? "https" : NULL;
}

/* --upstream-cacert: load it once at startup (as the workers' clients will) so a bad file is
 * a usage error now, not a 502 on each request. 0 or -1 after a message. */
static int check_cacert(const tt_proxy_config *pc)
{
    if (!pc->upstream_ca_file) return 0;
    tt_tls_opts o = {.ca_file = pc->upstream_ca_file};
    tt_tls_ctx *ctx;
    char err[200] = "";
    if (tt_tls_ctx_new(&ctx, &o, err, sizeof err) < 0) {
        fprintf(stderr, "tether proxy: --upstream-cacert %s: %s\n", pc->upstream_ca_file,
                err[0] ? err : "cannot be loaded");
        return -1;
    }
    tt_tls_ctx_free(ctx);
    return 0;
}

/* Make the proxy and the server of the parsed flags and run them; the exit status. */
static int proxy_run(tt_connopt *c, tt_proxy_config *pc)
{
    tt_proxy *p;
    int bad = -1;
    pc->proto = forwarded_proto(c->cfg);
    int r = tt_proxy_new(&p, pc, &bad);
    if (r < 0) {
        if (bad >= 0)
            fprintf(stderr, "tether proxy: --upstream %s: not http[s]://HOST[:PORT]\n",
                    pc->upstreams[bad]);
        else if (r == -EINVAL && pc->upstream_sni)
            fprintf(stderr, "tether proxy: --upstream-sni '%s' is not a host name\n",
                    pc->upstream_sni);
        else
            fprintf(stderr, "tether proxy: %s\n", strerror(-r));
        return r == -EINVAL ? 2 : 1;
    }
    if (check_cacert(pc) < 0) {
        tt_proxy_free(p);
        return 2;
    }
    if (tt_proxy_mount(c->cfg, "/", p) < 0) {
        fprintf(stderr, "tether proxy: too many routes\n");
        tt_proxy_free(p);
        return 1;
    }
    if (c->status && tt_insight_set_proxy) tt_insight_set_proxy(p);
    tt_server *srv;
    r = tt_connopt_server(c, "proxy", &srv);
    if (r == 0) {
        char what[300];
        snprintf(what, sizeof what, "proxying to %s%s", pc->upstreams[0],
                 pc->nupstreams > 1 ? " and more" : "");
        tt_proxy_attach(p, srv);
        tt_connopt_listening("proxy", srv, what);
        r = tt_server_run(srv, 1);
        tt_server_free(srv);
        if (r < 0) fprintf(stderr, "tether proxy: %s\n", strerror(-r));
        r = r < 0 ? 1 : 0;
    }
    if (tt_insight_set_proxy) tt_insight_set_proxy(NULL);
    tt_proxy_free(p);
    return r;
}

int tt_cmd_proxy(int argc, char **argv)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    tt_connopt c;
    tt_connopt_init(&c, &cfg);
    proxy_flags f = {.keepalive = -1,
                     .max_conns = -1,
                     .fail_threshold = -1,
                     .max_retries = -1,
                     .idle = -1,
                     .connect = -1,
                     .timeout = -1,
                     .rest = -1,
                     .buffer = -1};
    tt_proxy_config pc;
    memset(&pc, 0, sizeof pc);
    int r = proxy_options(argc, argv, &c, &f, &pc);
    if (r == TT_OPT_OK)
        r = proxy_run(&c, &pc);
    else
        r = r == TT_OPT_HELP ? 0 : 2;
    tt_connopt_done(&c);
    return r;
}
