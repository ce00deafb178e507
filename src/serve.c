/* serve.c — `tether serve`: static files (or --echo) over persistent HTTP/1.1 connections. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether.h>

#include "cli.h"

/* src/insight.c provides it; a weak reference keeps serve linkable without it. */
#pragma weak tt_insight_mount

static void usage(FILE *f)
{
    fprintf(f, "usage: tether serve [options]\n"
               "  --listen ADDR:PORT        listen address, repeatable (default 127.0.0.1:8080)\n"
               "  --root DIR                static files (default $TETHER_ROOT, else the bundled "
               "site/)\n"
               "  --workers N               worker threads, one loop each (default: one per CPU)\n"
               "  --keepalive-timeout SEC   idle keep-alive deadline; 0 disables keep-alive "
               "(default 75)\n"
               "  --keepalive-requests N    requests per connection, +-10%% jitter; 1 disables "
               "keep-alive, 0 unlimited (default 1000)\n"
               "  --keepalive-time SEC      max connection age; 0 unlimited (default 3600)\n"
               "  --header-timeout SEC      deadline for a whole request head (default 20)\n"
               "  --body-timeout SEC        max gap between body reads (default 30)\n"
               "  --send-timeout SEC        max gap between successful writes (default 30)\n"
               "  --linger SEC              lingering close: max drain time (default 5)\n"
               "  --close-wait SEC          after Connection: close, wait for the client's FIN "
               "(default 2)\n"
               "  --drain-timeout SEC       graceful shutdown limit (default 10)\n"
               "  --defer-accept SEC        accept once the first bytes arrive, a silent client "
               "after about SEC; 0 off (default 1)\n"
               "  --reset-timedout          close timed-out connections with RST (no TIME_WAIT)\n"
               "  --tcp-keepalive I:N:C     TCP keepalive idle:interval:count, or off (default "
               "off)\n"
               "  --max-connections N       over all workers; accept pauses above (default "
               "10000)\n"
               "  --max-body SIZE           request body limit, k/m/g suffixes (default 1m)\n"
               "  --access-log FILE|-       Common Log Format (default off)\n"
               "  --echo                    diagnostics: GET -> Hello, World!; a body is echoed\n"
               "  --status                  mount /_tether/ (status, metrics, conn, dashboard)\n"
               "  --status-allow CIDR       who may see /_tether/ (default loopback)\n");
}

static int parse_sec(const char *s, int *ms, int zero_means)
{
    char *e;
    double v = strtod(s, &e);
    if (e == s || *e || v < 0 || v > 2e6) return -1;
    *ms = v == 0 ? zero_means : (int)(v * 1000 + 0.5);
    if (*ms == 0) *ms = 1;
    return 0;
}

static int parse_size(const char *s, long long *out)
{
    char *e;
    double v = strtod(s, &e);
    if (e == s || v < 0) return -1;
    double m = 1;
    if (*e == 'k' || *e == 'K')
        m = 1024, e++;
    else if (*e == 'm' || *e == 'M')
        m = 1024 * 1024, e++;
    else if (*e == 'g' || *e == 'G')
        m = 1024.0 * 1024 * 1024, e++;
    if (*e == 'b' || *e == 'B') e++;
    if (*e) return -1;
    *out = (long long)(v * m);
    return 0;
}

static void echo_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    size_t n;
    const char *body = tt_req_body(req, &n);
    if (body && n)
        tt_res_send(res, 200, "application/octet-stream", body, n);
    else
        tt_res_send(res, 200, "text/plain", "Hello, World!", 13);
}

static char *default_root(void)
{
    const char *env = getenv("TETHER_ROOT");
    if (env && *env) return strdup(env);
    /* The repo's site/ next to the build directory: build/tether, build/<variant>/tether. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 1; up <= 3; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            char cand[PATH_MAX + 32], real[PATH_MAX];
            snprintf(cand, sizeof cand, "%s/site", exe);
            struct stat st;
            if (realpath(cand, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode))
                return strdup(real);
        }
    }
    return strdup("site");
}

int tt_cmd_serve(int argc, char **argv)
{
    enum {
        O_LISTEN = 256,
        O_ROOT,
        O_WORKERS,
        O_KA_TIMEOUT,
        O_KA_REQ,
        O_KA_TIME,
        O_HDR,
        O_BODY,
        O_SEND,
        O_LINGER,
        O_CLOSE_WAIT,
        O_DRAIN,
        O_DEFER,
        O_RESET,
        O_TCPKA,
        O_MAXCONN,
        O_MAXBODY,
        O_LOG,
        O_ECHO,
        O_STATUS,
        O_STATUS_ALLOW,
        O_HELP
    };
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"root", required_argument, 0, O_ROOT},
        {"workers", required_argument, 0, O_WORKERS},
        {"keepalive-timeout", required_argument, 0, O_KA_TIMEOUT},
        {"keepalive-requests", required_argument, 0, O_KA_REQ},
        {"keepalive-time", required_argument, 0, O_KA_TIME},
        {"header-timeout", required_argument, 0, O_HDR},
        {"body-timeout", required_argument, 0, O_BODY},
        {"send-timeout", required_argument, 0, O_SEND},
        {"linger", required_argument, 0, O_LINGER},
        {"close-wait", required_argument, 0, O_CLOSE_WAIT},
        {"drain-timeout", required_argument, 0, O_DRAIN},
        {"defer-accept", required_argument, 0, O_DEFER},
        {"reset-timedout", no_argument, 0, O_RESET},
        {"tcp-keepalive", required_argument, 0, O_TCPKA},
        {"max-connections", required_argument, 0, O_MAXCONN},
        {"max-body", required_argument, 0, O_MAXBODY},
        {"access-log", required_argument, 0, O_LOG},
        {"echo", no_argument, 0, O_ECHO},
        {"status", no_argument, 0, O_STATUS},
        {"status-allow", required_argument, 0, O_STATUS_ALLOW},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    const char *root = NULL, *log = NULL, *allow = NULL;
    int echo = 0, status = 0, bad = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN:
            if (cfg.nlisten < TT_SERVER_MAX_LISTEN) cfg.listen[cfg.nlisten++] = optarg;
            break;
        case O_ROOT: root = optarg; break;
        case O_WORKERS: cfg.workers = atoi(optarg); break;
        case O_KA_TIMEOUT: bad |= parse_sec(optarg, &cfg.keepalive_timeout_ms, TT_OFF); break;
        case O_KA_REQ: {
            int n = atoi(optarg);
            cfg.keepalive_requests = n == 0 ? TT_OFF : n;
            break;
        }
        case O_KA_TIME: bad |= parse_sec(optarg, &cfg.keepalive_time_ms, TT_OFF); break;
        case O_HDR: bad |= parse_sec(optarg, &cfg.header_timeout_ms, TT_OFF); break;
        case O_BODY: bad |= parse_sec(optarg, &cfg.body_timeout_ms, TT_OFF); break;
        case O_SEND: bad |= parse_sec(optarg, &cfg.send_timeout_ms, TT_OFF); break;
        case O_LINGER: bad |= parse_sec(optarg, &cfg.lingering_time_ms, TT_OFF); break;
        case O_CLOSE_WAIT: bad |= parse_sec(optarg, &cfg.close_wait_ms, 1); break;
        case O_DRAIN: bad |= parse_sec(optarg, &cfg.drain_timeout_ms, 1); break;
        case O_DEFER: {
            char *e;
            long v = strtol(optarg, &e, 10);
            if (e == optarg || *e || v < 0 || v > 3600) bad = 1;
            cfg.defer_accept_s = v == 0 ? TT_OFF : (int)v;
            break;
        }
        case O_RESET: cfg.reset_timedout = 1; break;
        case O_TCPKA:
            if (tt_keepalive_parse(&cfg.tcp_keepalive, optarg) < 0) bad = 1;
            break;
        case O_MAXCONN: cfg.max_connections = atoi(optarg); break;
        case O_MAXBODY: bad |= parse_size(optarg, &cfg.max_body); break;
        case O_LOG: log = optarg; break;
        case O_ECHO: echo = 1; break;
        case O_STATUS: status = 1; break;
        case O_STATUS_ALLOW:
            status = 1;
            allow = optarg;
            break;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (bad || optind < argc) {
        fprintf(stderr, "tether serve: bad option value\n");
        usage(stderr);
        return 2;
    }
    char *root_owned = NULL;
    if (!echo) {
        root_owned = root ? strdup(root) : default_root();
        cfg.root = root_owned;
    } else {
        tt_server_config_route(&cfg, "/", echo_handler, NULL);
    }
    if (log) {
        cfg.access_log_fd = strcmp(log, "-") == 0
                                ? dup(1)
                                : open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (cfg.access_log_fd < 0) {
            fprintf(stderr, "tether serve: %s: %s\n", log, strerror(errno));
            free(root_owned);
            return 1;
        }
    }
    if (status) {
        if (!tt_insight_mount) {
            fprintf(stderr, "tether serve: --status is not available in this build\n");
        } else {
            int r = tt_insight_mount(&cfg, allow);
            if (r < 0) {
                fprintf(stderr, "tether serve: --status: %s\n", strerror(-r));
                free(root_owned);
                return 2;
            }
        }
    }
    tt_raise_nofile();
    /* Block the shutdown signals before the port opens: one that arrives before the server's
     * signalfd exists then waits for it instead of killing us mid-start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    tt_server *srv;
    int r = tt_server_new(&srv, &cfg);
    if (r < 0) {
        fprintf(stderr, "tether serve: %s: %s\n", cfg.nlisten ? cfg.listen[0] : "127.0.0.1:8080",
                strerror(-r));
        free(root_owned);
        return 1;
    }
    const tt_server_config *eff = tt_server_get_config(srv);
    for (int i = 0; i < eff->nlisten; i++)
        fprintf(stderr, "tether serve: listening on http://%s/ (%d workers, %s)\n", eff->listen[i],
                tt_server_workers(srv), echo ? "echo" : eff->root);
    r = tt_server_run(srv, 1);
    tt_server_free(srv);
    if (cfg.access_log_fd > 0) close(cfg.access_log_fd);
    free(root_owned);
    if (r < 0) {
        fprintf(stderr, "tether serve: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
