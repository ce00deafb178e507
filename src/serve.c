/* serve.c — `tether serve`: static files (or --echo) over persistent HTTP/1.1 connections. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether.h>

#include "cli.h"
#include "opt.h"

/* src/insight.c provides it; a weak reference keeps serve linkable without it. */
#pragma weak tt_insight_mount

/* A duration option's seconds (negative: not given) into a config field in ms: 0 means
 * zero_means (TT_OFF: disabled, or 1 ms), anything else rounds to at least 1 ms. */
static void set_ms(int *ms, double sec, int zero_means)
{
    if (sec < 0) return;
    *ms = sec == 0 ? zero_means : (int)(sec * 1000 + 0.5);
    if (*ms == 0) *ms = 1;
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

/* The durations of serve's options, in seconds (-1: not given). */
typedef struct serve_secs {
    double ka_timeout, ka_time, header, body, send, linger, close_wait, drain, handshake;
} serve_secs;

/* serve's TLS options as given (NULL: not given); ciphers is split into the TLS 1.2 list and
 * the TLS 1.3 suites (names starting with "TLS_"), owned here. */
typedef struct serve_tls {
    const char *min, *ciphers;
    char *c12, *c13;
} serve_tls;

/* Split an OpenSSL cipher string: TLS 1.3 suite names (TLS_*) to *c13, the rest to *c12 (NULL
 * when a part is empty). 0 or -ENOMEM. */
static int split_ciphers(const char *list, char **c12, char **c13)
{
    size_t n = strlen(list) + 1;
    char *a = calloc(1, n), *b = calloc(1, n), *copy = strdup(list), *save = NULL;
    if (!a || !b || !copy) {
        free(a);
        free(b);
        free(copy);
        return -ENOMEM;
    }
    for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
        char *dst = strncmp(t, "TLS_", 4) == 0 ? b : a;
        if (*dst) strcat(dst, ":");
        strcat(dst, t);
    }
    free(copy);
    *c12 = *a ? a : (free(a), NULL);
    *c13 = *b ? b : (free(b), NULL);
    return 0;
}

/* Apply the TLS options to cfg->tls; an https:// listener without --tls-cert/--tls-key is a
 * usage error naming them. TT_OPT_* result. */
static int serve_tls_options(const tt_opt_cmd *cmd, tt_server_config *cfg, serve_tls *tls)
{
    for (int i = 0; i < cfg->nlisten; i++)
        if (strncasecmp(cfg->listen[i], "https://", 8) == 0 &&
            (!cfg->tls.cert_file || !cfg->tls.key_file))
            return tt_opt_error(cmd, "--listen %s needs --tls-cert and --tls-key", cfg->listen[i]);
    if (tls->min) {
        if (strcmp(tls->min, "1.2") == 0)
            cfg->tls.min_version = 12;
        else if (strcmp(tls->min, "1.3") == 0)
            cfg->tls.min_version = 13;
        else
            return tt_opt_error(cmd, "--tls-min: '%s' is not 1.2 or 1.3", tls->min);
    }
    if (tls->ciphers) {
        if (split_ciphers(tls->ciphers, &tls->c12, &tls->c13) < 0) return TT_OPT_USAGE;
        cfg->tls.ciphers = tls->c12;
        cfg->tls.ciphersuites = tls->c13;
    }
    return TT_OPT_OK;
}

/* Parse serve's options into cfg and the command's own settings; TT_OPT_* result. */
static int serve_options(int argc, char **argv, tt_server_config *cfg, const char **root,
                         const char **log, const char **allow, int *echo, int *status,
                         serve_tls *tls)
{
    serve_secs t = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
    tt_opt_list listen = {{0}, 0};
    int ka_req = -1, defer = -1, maxconn = -1;
    long long max_body = -1, body_mem = -1, max_line = -1, max_head = -1;
    int min_rate = -1;
    const char *tcpka = NULL;
    const double H = 2e6; /* the longest duration, in seconds (about 23 days) */
    const tt_opt opts[] = {
        {"listen", 0, TT_OPT_LIST, "ADDR:PORT", 0, TT_SERVER_MAX_LISTEN, &listen,
         "listen address (http://ADDR:PORT too), https://ADDR:PORT (TLS) or unix:PATH; "
         "repeatable",
         "127.0.0.1:8080"},
        {"tls-cert", 0, TT_OPT_STRING, "FILE", 0, 0, &cfg->tls.cert_file,
         "certificate chain (PEM, leaf first) of the https:// listeners; reloaded on SIGHUP", NULL},
        {"tls-key", 0, TT_OPT_STRING, "FILE", 0, 0, &cfg->tls.key_file,
         "its private key (PEM); reloaded on SIGHUP", NULL},
        {"tls-min", 0, TT_OPT_STRING, "1.2|1.3", 0, 0, &tls->min, "lowest TLS version accepted",
         "1.2"},
        {"tls-ciphers", 0, TT_OPT_STRING, "LIST", 0, 0, &tls->ciphers,
         "OpenSSL cipher list; TLS_* names are TLS 1.3 suites", "OpenSSL's"},
        {"tls-handshake-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &t.handshake,
         "deadline for a TLS handshake; 0 leaves it to --header-timeout", "10"},
        {"reuseport", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->share_port,
         "share a port another process listens on (graceful handover)", NULL},
        {"root", 0, TT_OPT_STRING, "DIR", 0, 0, root, "static files",
         "$TETHER_ROOT, else the bundled site/"},
        {"workers", 0, TT_OPT_INT, "N", 1, 4096, &cfg->workers, "worker threads, one loop each",
         "one per CPU"},
        {"keepalive-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &t.ka_timeout,
         "idle keep-alive deadline; 0 disables keep-alive", "75"},
        {"keepalive-requests", 0, TT_OPT_INT, "N", 0, 1e9, &ka_req,
         "requests per connection, +-10% jitter; 1 disables keep-alive, 0 unlimited", "1000"},
        {"keepalive-time", 0, TT_OPT_DURATION, "SEC", 0, H, &t.ka_time,
         "max connection age; 0 unlimited", "3600"},
        {"header-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &t.header,
         "deadline for a whole request head", "20"},
        {"body-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &t.body, "max gap between body reads",
         "30"},
        {"send-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &t.send,
         "max gap between successful writes", "30"},
        {"linger", 0, TT_OPT_DURATION, "SEC", 0, H, &t.linger, "lingering close: max drain time",
         "5"},
        {"close-wait", 0, TT_OPT_DURATION, "SEC", 0, H, &t.close_wait,
         "opt-in: after Connection: close, wait for the client's FIN", "0 (off)"},
        {"drain-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &t.drain, "graceful shutdown limit",
         "10"},
        {"defer-accept", 0, TT_OPT_INT, "SEC", 0, 3600, &defer,
         "accept on first bytes, a silent client after ~SEC; 0 off", "1"},
        {"reset-timedout", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->reset_timedout,
         "close timed-out connections with RST (no TIME_WAIT)", NULL},
        {"tcp-keepalive", 0, TT_OPT_STRING, "I:N:C", 0, 0, &tcpka,
         "TCP keepalive idle:interval:count, or off", "off"},
        {"max-connections", 0, TT_OPT_INT, "N", 1, 1e9, &maxconn,
         "over all workers; accept pauses above", "10000"},
        {"max-body", 0, TT_OPT_SIZE, "SIZE", 0, 0, &max_body, "request body limit, k/m/g suffixes",
         "1m"},
        {"max-request-line", 0, TT_OPT_SIZE, "SIZE", 0, 0, &max_line,
         "request line limit, 414 above (Apache's LimitRequestLine)", "8k"},
        {"max-header-size", 0, TT_OPT_SIZE, "SIZE", 0, 0, &max_head,
         "request head limit, 431 above (nginx: large_client_header_buffers 4 8k)", "32k"},
        {"body-min-rate", 0, TT_OPT_INT, "BYTES", 0, 1e9, &min_rate,
         "a body gets --body-timeout plus 1 s per BYTES received (Apache MinRate); 0 off", "500"},
        {"max-body-memory", 0, TT_OPT_SIZE, "SIZE", 0, 0, &body_mem,
         "memory all request bodies may hold; over it 503; 0 unlimited", "256m"},
        {"access-log", 0, TT_OPT_STRING, "FILE|-", 0, 0, log, "access log (reopened on SIGHUP)",
         "off"},
        {"log-format", 0, TT_OPT_STRING, "FORMAT", 0, 0, &cfg->access_log_format,
         "nginx variables: $remote_addr $request $status $http_NAME ...", "Common Log Format"},
        {"echo", 0, TT_OPT_FLAG, NULL, 0, 0, echo,
         "diagnostics: GET -> Hello, World!; a body is echoed", NULL},
        {"status", 0, TT_OPT_FLAG, NULL, 0, 0, status,
         "mount /_tether/ (status, metrics, conn, dashboard)", NULL},
        {"status-allow", 0, TT_OPT_STRING, "CIDR", 0, 0, allow, "who may see /_tether/",
         "loopback"},
        TT_OPT_END,
    };
    const tt_opt_cmd cmd = {"serve", "[options]",
                            "Serve static files (or --echo) over persistent HTTP/1.1 connections.",
                            NULL, opts};
    int first, r = tt_opt_parse(&cmd, argc, argv, &first);
    if (r) return r;
    if (first < argc) return tt_opt_error(&cmd, "unexpected argument '%s'", argv[first]);
    if (tcpka && tt_keepalive_parse(&cfg->tcp_keepalive, tcpka) < 0)
        return tt_opt_error(&cmd, "--tcp-keepalive: '%s' is not IDLE:INTVL:CNT or off", tcpka);
    for (int i = 0; i < listen.n; i++)
        cfg->listen[cfg->nlisten++] = listen.v[i];
    if (ka_req >= 0) cfg->keepalive_requests = ka_req == 0 ? TT_OFF : ka_req;
    if (defer >= 0) cfg->defer_accept_s = defer == 0 ? TT_OFF : defer;
    if (maxconn > 0) cfg->max_connections = maxconn;
    if (max_body >= 0) cfg->max_body = max_body;
    if (min_rate >= 0) cfg->body_min_rate = min_rate == 0 ? TT_OFF : min_rate;
    if (body_mem >= 0) cfg->max_body_memory = body_mem == 0 ? TT_OFF : body_mem;
    if (max_line > 0) cfg->max_request_line = max_line > 0x7fffffff ? TT_OFF : (int)max_line;
    if (max_head > 0) cfg->max_header = max_head > 0x7fffffff ? TT_OFF : (int)max_head;
    set_ms(&cfg->keepalive_timeout_ms, t.ka_timeout, TT_OFF);
    set_ms(&cfg->keepalive_time_ms, t.ka_time, TT_OFF);
    set_ms(&cfg->header_timeout_ms, t.header, TT_OFF);
    set_ms(&cfg->body_timeout_ms, t.body, TT_OFF);
    set_ms(&cfg->send_timeout_ms, t.send, TT_OFF);
    set_ms(&cfg->lingering_time_ms, t.linger, TT_OFF);
    set_ms(&cfg->close_wait_ms, t.close_wait, TT_OFF);
    set_ms(&cfg->drain_timeout_ms, t.drain, 1);
    set_ms(&cfg->tls.handshake_timeout_ms, t.handshake, TT_OFF);
    if (*allow) *status = 1;
    return serve_tls_options(&cmd, cfg, tls);
}

/* Build and run the server of cfg (the parsed options); the command's exit status. */
static int serve_run(tt_server_config *cfg_in, const char *root, const char *log, const char *allow,
                     int echo, int status)
{
    tt_server_config cfg = *cfg_in;
    int r;
    char *root_owned = NULL;
    if (!echo) {
        root_owned = root ? strdup(root) : default_root();
        cfg.root = root_owned;
    } else {
        tt_server_config_route(&cfg, "/", echo_handler, NULL);
    }
    if (log && strcmp(log, "-") == 0) {
        cfg.access_log_fd = dup(1);
    } else if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); /* fail early */
        if (fd < 0) {
            fprintf(stderr, "tether serve: %s: %s\n", log, strerror(errno));
            free(root_owned);
            return 1;
        }
        close(fd);
        cfg.access_log_path = log; /* the server opens it, and again on SIGHUP */
    }
    if (status) {
        if (!tt_insight_mount) {
            fprintf(stderr, "tether serve: --status is not available in this build\n");
        } else {
            int mr = tt_insight_mount(&cfg, allow);
            if (mr < 0) {
                if (mr != -EINVAL) /* a bad --status-allow was already named by the mount */
                    fprintf(stderr, "tether serve: --status: %s\n", strerror(-mr));
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
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    tt_server *srv;
    int bad = -1;
    char err[256];
    r = tt_server_new_err(&srv, &cfg, &bad, err, sizeof err);
    if (r < 0 && err[0]) { /* the TLS context: OpenSSL's reason, the file */
        fprintf(stderr, "tether serve: TLS: %s\n", err);
        free(root_owned);
        return 1;
    }
    if (r == -EINVAL && bad < 0 && cfg.access_log_format) {
        fprintf(stderr, "tether serve: --log-format: unknown variable in '%s'\n",
                cfg.access_log_format);
        free(root_owned);
        return 2;
    }
    if (r < 0) {
        const char *what = bad < 0 ? NULL : cfg.nlisten ? cfg.listen[bad] : "127.0.0.1:8080";
        if (r == -EINVAL && what)
            fprintf(stderr, "tether serve: --listen %s: not HOST:PORT, [V6]:PORT or unix:PATH\n",
                    what);
        else if (what)
            fprintf(stderr, "tether serve: --listen %s: %s%s\n", what, strerror(-r),
                    r == -EADDRINUSE ? " (another process listens there; --reuseport shares it)"
                                     : "");
        else
            fprintf(stderr, "tether serve: %s\n", strerror(-r));
        free(root_owned);
        return 1;
    }
    const tt_server_config *eff = tt_server_get_config(srv);
    for (int i = 0; i < eff->nlisten; i++)
        fprintf(stderr, "tether serve: listening on %s%s/ (%d workers, %s)\n",
                strstr(eff->listen[i], "://") ? "" : "http://", eff->listen[i],
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

int tt_cmd_serve(int argc, char **argv)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    const char *root = NULL, *log = NULL, *allow = NULL;
    int echo = 0, status = 0;
    serve_tls tls = {0};
    int r = serve_options(argc, argv, &cfg, &root, &log, &allow, &echo, &status, &tls);
    if (r) {
        free(tls.c12);
        free(tls.c13);
        return r == TT_OPT_HELP ? 0 : 2;
    }
    r = serve_run(&cfg, root, log, allow, echo, status);
    free(tls.c12);
    free(tls.c13);
    return r;
}
