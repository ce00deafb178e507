/* connopt.c — the connection flags serve and proxy share, and their start-up (see connopt.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "connopt.h"

/* src/insight provides it; a weak reference keeps the commands linkable without it. */
#pragma weak tt_insight_mount

void tt_connopt_ms(int *ms, double sec, int zero_means)
{
    if (sec < 0) return;
    *ms = sec == 0 ? zero_means : (int)(sec * 1000 + 0.5);
    if (*ms == 0) *ms = 1;
}

void tt_connopt_init(tt_connopt *c, tt_server_config *cfg)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->ka_timeout = c->ka_time = c->header = c->body = c->send = c->linger = c->close_wait =
        c->drain = c->handshake = -1;
    c->ka_req = c->defer = c->maxconn = c->min_rate = -1;
    c->max_body = c->body_mem = c->max_line = c->max_head = -1;
}

int tt_connopt_rows(tt_connopt *c, tt_opt *rows)
{
    tt_server_config *cfg = c->cfg;
    const double H = 2e6; /* the longest duration, in seconds (about 23 days) */
    const tt_opt r[] = {
        {"listen", 0, TT_OPT_LIST, "ADDR:PORT", 0, TT_SERVER_MAX_LISTEN, &c->listen,
         "listen address (http://ADDR:PORT too), https://ADDR:PORT (TLS) or unix:PATH; "
         "repeatable",
         "127.0.0.1:8080"},
        {"tls-cert", 0, TT_OPT_STRING, "FILE", 0, 0, &cfg->tls.cert_file,
         "certificate chain (PEM, leaf first) of the https:// listeners; reloaded on SIGHUP", NULL},
        {"tls-key", 0, TT_OPT_STRING, "FILE", 0, 0, &cfg->tls.key_file,
         "its private key (PEM); reloaded on SIGHUP", NULL},
        {"tls-min", 0, TT_OPT_STRING, "1.2|1.3", 0, 0, &c->tls_min, "lowest TLS version accepted",
         "1.2"},
        {"tls-ciphers", 0, TT_OPT_STRING, "LIST", 0, 0, &c->tls_ciphers,
         "OpenSSL cipher list; TLS_* names are TLS 1.3 suites", "OpenSSL's"},
        {"tls-handshake-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &c->handshake,
         "deadline for a TLS handshake; 0 leaves it to --header-timeout", "10"},
        {"reuseport", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->share_port,
         "share a port another process listens on (graceful handover)", NULL},
        {"workers", 0, TT_OPT_INT, "N", 1, 4096, &cfg->workers, "worker threads, one loop each",
         "one per CPU"},
        {"keepalive-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &c->ka_timeout,
         "idle keep-alive deadline; 0 disables keep-alive", "75"},
        {"keepalive-requests", 0, TT_OPT_INT, "N", 0, 1e9, &c->ka_req,
         "requests per connection, +-10% jitter; 1 disables keep-alive, 0 unlimited", "1000"},
        {"keepalive-time", 0, TT_OPT_DURATION, "SEC", 0, H, &c->ka_time,
         "max connection age; 0 unlimited", "3600"},
        {"header-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &c->header,
         "deadline for a whole request head", "20"},
        {"body-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &c->body, "max gap between body reads",
         "30"},
        {"send-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &c->send,
         "max gap between successful writes", "30"},
        {"linger", 0, TT_OPT_DURATION, "SEC", 0, H, &c->linger, "lingering close: max drain time",
         "5"},
        {"close-wait", 0, TT_OPT_DURATION, "SEC", 0, H, &c->close_wait,
         "opt-in: after Connection: close, wait for the client's FIN", "0 (off)"},
        {"drain-timeout", 0, TT_OPT_DURATION, "SEC", 0, H, &c->drain, "graceful shutdown limit",
         "10"},
        {"defer-accept", 0, TT_OPT_INT, "SEC", 0, 3600, &c->defer,
         "accept on first bytes, a silent client after ~SEC; 0 off", "1"},
        {"reset-timedout", 0, TT_OPT_FLAG, NULL, 0, 0, &cfg->reset_timedout,
         "close timed-out connections with RST (no TIME_WAIT)", NULL},
        {"tcp-keepalive", 0, TT_OPT_STRING, "I:N:C", 0, 0, &c->tcpka,
         "TCP keepalive idle:interval:count, or off", "off"},
        {"max-connections", 0, TT_OPT_INT, "N", 1, 1e9, &c->maxconn,
         "over all workers; accept pauses above", "10000"},
        {"max-body", 0, TT_OPT_SIZE, "SIZE", 0, 0, &c->max_body,
         "limit of a request body read whole, k/m/g suffixes", "1m"},
        {"max-request-line", 0, TT_OPT_SIZE, "SIZE", 0, 0, &c->max_line,
         "request line limit, 414 above (Apache's LimitRequestLine)", "8k"},
        {"max-header-size", 0, TT_OPT_SIZE, "SIZE", 0, 0, &c->max_head,
         "request head limit, 431 above (nginx: large_client_header_buffers 4 8k)", "32k"},
        {"body-min-rate", 0, TT_OPT_INT, "BYTES", 0, 1e9, &c->min_rate,
         "a body gets --body-timeout plus 1 s per BYTES received (Apache MinRate); 0 off", "500"},
        {"max-body-memory", 0, TT_OPT_SIZE, "SIZE", 0, 0, &c->body_mem,
         "memory all request bodies may hold; over it 503; 0 unlimited", "256m"},
        {"access-log", 0, TT_OPT_STRING, "FILE|-", 0, 0, &c->log, "access log (reopened on SIGHUP)",
         "off"},
        {"log-format", 0, TT_OPT_STRING, "FORMAT", 0, 0, &cfg->access_log_format,
         "nginx variables: $remote_addr $request $status $http_NAME ...", "Common Log Format"},
        {"status", 0, TT_OPT_FLAG, NULL, 0, 0, &c->status,
         "mount /_tether/ (status, metrics, conn, dashboard)", NULL},
        {"status-allow", 0, TT_OPT_STRING, "CIDR", 0, 0, &c->allow, "who may see /_tether/",
         "loopback"},
    };
    int n = (int)(sizeof r / sizeof r[0]);
    _Static_assert(sizeof r / sizeof r[0] <= TT_CONNOPT_NROWS, "raise TT_CONNOPT_NROWS");
    memcpy(rows, r, sizeof r);
    return n;
}

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
static int tls_options(const tt_opt_cmd *cmd, tt_server_config *cfg, tt_connopt *tls)
{
    for (int i = 0; i < cfg->nlisten; i++)
        if (strncasecmp(cfg->listen[i], "https://", 8) == 0 &&
            (!cfg->tls.cert_file || !cfg->tls.key_file))
            return tt_opt_error(cmd, "--listen %s needs --tls-cert and --tls-key", cfg->listen[i]);
    if (tls->tls_min) {
        if (strcmp(tls->tls_min, "1.2") == 0)
            cfg->tls.min_version = 12;
        else if (strcmp(tls->tls_min, "1.3") == 0)
            cfg->tls.min_version = 13;
        else
            return tt_opt_error(cmd, "--tls-min: '%s' is not 1.2 or 1.3", tls->tls_min);
    }
    if (tls->tls_ciphers) {
        if (split_ciphers(tls->tls_ciphers, &tls->c12, &tls->c13) < 0) return TT_OPT_USAGE;
        cfg->tls.ciphers = tls->c12;
        cfg->tls.ciphersuites = tls->c13;
    }
    return TT_OPT_OK;
}

int tt_connopt_apply(tt_connopt *c, const tt_opt_cmd *cmd)
{
    tt_server_config *cfg = c->cfg;
    if (c->tcpka && tt_keepalive_parse(&cfg->tcp_keepalive, c->tcpka) < 0)
        return tt_opt_error(cmd, "--tcp-keepalive: '%s' is not IDLE:INTVL:CNT or off", c->tcpka);
    for (int i = 0; i < c->listen.n; i++)
        cfg->listen[cfg->nlisten++] = c->listen.v[i];
    if (c->ka_req >= 0) cfg->keepalive_requests = c->ka_req == 0 ? TT_OFF : c->ka_req;
    if (c->defer >= 0) cfg->defer_accept_s = c->defer == 0 ? TT_OFF : c->defer;
    if (c->maxconn > 0) cfg->max_connections = c->maxconn;
    if (c->max_body >= 0) cfg->max_body = c->max_body;
    if (c->min_rate >= 0) cfg->body_min_rate = c->min_rate == 0 ? TT_OFF : c->min_rate;
    if (c->body_mem >= 0) cfg->max_body_memory = c->body_mem == 0 ? TT_OFF : c->body_mem;
    if (c->max_line > 0)
        cfg->max_request_line = c->max_line > 0x7fffffff ? TT_OFF : (int)c->max_line;
    if (c->max_head > 0) cfg->max_header = c->max_head > 0x7fffffff ? TT_OFF : (int)c->max_head;
    tt_connopt_ms(&cfg->keepalive_timeout_ms, c->ka_timeout, TT_OFF);
    tt_connopt_ms(&cfg->keepalive_time_ms, c->ka_time, TT_OFF);
    tt_connopt_ms(&cfg->header_timeout_ms, c->header, TT_OFF);
    tt_connopt_ms(&cfg->body_timeout_ms, c->body, TT_OFF);
    tt_connopt_ms(&cfg->send_timeout_ms, c->send, TT_OFF);
    tt_connopt_ms(&cfg->lingering_time_ms, c->linger, TT_OFF);
    tt_connopt_ms(&cfg->close_wait_ms, c->close_wait, TT_OFF);
    tt_connopt_ms(&cfg->drain_timeout_ms, c->drain, 1);
    tt_connopt_ms(&cfg->tls.handshake_timeout_ms, c->handshake, TT_OFF);
    if (c->allow) c->status = 1;
    return tls_options(cmd, cfg, c);
}

/* The access log and the status pages as the flags say. 0 or an exit status. */
static int connopt_extras(tt_connopt *c, const char *name)
{
    tt_server_config *cfg = c->cfg;
    if (c->log && strcmp(c->log, "-") == 0) {
        cfg->access_log_fd = dup(1);
    } else if (c->log) {
        int fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); /* fail early */
        if (fd < 0) {
            fprintf(stderr, "tether %s: %s: %s\n", name, c->log, strerror(errno));
            return 1;
        }
        close(fd);
        cfg->access_log_path = c->log; /* the server opens it, and again on SIGHUP */
    }
    if (!c->status) return 0;
    if (!tt_insight_mount) {
        fprintf(stderr, "tether %s: --status is not available in this build\n", name);
        return 0;
    }
    int mr = tt_insight_mount(cfg, c->allow);
    if (mr < 0) {
        if (mr != -EINVAL) /* a bad --status-allow was already named by the mount */
            fprintf(stderr, "tether %s: --status: %s\n", name, strerror(-mr));
        return 2;
    }
    return 0;
}

int tt_connopt_server(tt_connopt *c, const char *name, tt_server **out)
{
    tt_server_config *cfg = c->cfg;
    int r = connopt_extras(c, name);
    if (r) return r;
    tt_raise_nofile();
    /* Block the shutdown signals before the port opens: one that arrives before the server's
     * signalfd exists then waits for it instead of killing us mid-start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int bad = -1;
    char err[256];
    r = tt_server_new_err(out, cfg, &bad, err, sizeof err);
    if (r < 0 && err[0]) { /* the TLS context: OpenSSL's reason, the file */
        fprintf(stderr, "tether %s: TLS: %s\n", name, err);
        return 1;
    }
    if (r == -EINVAL && bad < 0 && cfg->access_log_format) {
        fprintf(stderr, "tether %s: --log-format: unknown variable in '%s'\n", name,
                cfg->access_log_format);
        return 2;
    }
    if (r < 0) {
        const char *what = bad < 0 ? NULL : cfg->nlisten ? cfg->listen[bad] : "127.0.0.1:8080";
        if (r == -EINVAL && what)
            fprintf(stderr, "tether %s: --listen %s: not HOST:PORT, [V6]:PORT or unix:PATH\n", name,
                    what);
        else if (what)
            fprintf(stderr, "tether %s: --listen %s: %s%s\n", name, what, strerror(-r),
                    r == -EADDRINUSE ? " (another process listens there; --reuseport shares it)"
                                     : "");
        else
            fprintf(stderr, "tether %s: %s\n", name, strerror(-r));
        return 1;
    }
    return 0;
}

void tt_connopt_listening(const char *name, tt_server *srv, const char *what)
{
    const tt_server_config *eff = tt_server_get_config(srv);
    for (int i = 0; i < eff->nlisten; i++)
        fprintf(stderr, "tether %s: listening on %s%s/ (%d workers, %s)\n", name,
                strstr(eff->listen[i], "://") ? "" : "http://", eff->listen[i],
                tt_server_workers(srv), what);
}

void tt_connopt_done(tt_connopt *c)
{
    free(c->c12);
    free(c->c13);
    c->c12 = c->c13 = NULL;
    if (c->cfg->access_log_fd > 0) close(c->cfg->access_log_fd);
    c->cfg->access_log_fd = 0;
}
