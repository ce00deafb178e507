/* serve.c — `tether serve`: static files (or --echo) over persistent HTTP/1.1 connections. */
#include <errno.h>
#include <fcntl.h>
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
#include "connopt.h"

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

/* Parse serve's options: the shared connection flags (connopt.c) and serve's own. */
static int serve_options(int argc, char **argv, tt_connopt *c, const char **root, int *echo)
{
    tt_opt opts[TT_CONNOPT_NROWS + 3];
    int n = tt_connopt_rows(c, opts);
    opts[n++] = (tt_opt){"root",
                         0,
                         TT_OPT_STRING,
                         "DIR",
                         0,
                         0,
                         root,
                         "static files",
                         "$TETHER_ROOT, else the bundled site/"};
    opts[n++] =
        (tt_opt){"echo", 0, TT_OPT_FLAG, NULL,
                 0,      0, echo,        "diagnostics: GET -> Hello, World!; a body is echoed",
                 NULL};
    opts[n] = (tt_opt)TT_OPT_END;
    const tt_opt_cmd cmd = {"serve", "[options]",
                            "Serve static files (or --echo) over persistent HTTP/1.1 connections.",
                            NULL, opts};
    int first, r = tt_opt_parse(&cmd, argc, argv, &first);
    if (r) return r;
    if (first < argc) return tt_opt_error(&cmd, "unexpected argument '%s'", argv[first]);
    return tt_connopt_apply(c, &cmd);
}

int tt_cmd_serve(int argc, char **argv)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    tt_connopt c;
    tt_connopt_init(&c, &cfg);
    const char *root = NULL;
    int echo = 0;
    int r = serve_options(argc, argv, &c, &root, &echo);
    if (r) {
        tt_connopt_done(&c);
        return r == TT_OPT_HELP ? 0 : 2;
    }
    char *root_owned = NULL;
    if (!echo) {
        root_owned = root ? strdup(root) : default_root();
        cfg.root = root_owned;
    } else {
        tt_server_config_route(&cfg, "/", echo_handler, NULL);
    }
    tt_server *srv;
    r = tt_connopt_server(&c, "serve", &srv);
    if (r) {
        tt_connopt_done(&c);
        free(root_owned);
        return r;
    }
    tt_connopt_listening("serve", srv, echo ? "echo" : tt_server_get_config(srv)->root);
    r = tt_server_run(srv, 1);
    tt_server_free(srv);
    tt_connopt_done(&c);
    free(root_owned);
    if (r < 0) {
        fprintf(stderr, "tether serve: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
