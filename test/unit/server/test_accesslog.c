/* test_accesslog.c — the access log belongs to its server (lib/server/accesslog.c): two servers
 * in one process, each with its own log fd, running at the same time; each log holds exactly
 * its own requests' lines. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "helpers.h"

static void ok(tt_req *req, tt_res *res, void *data)
{
    (void)req;
    (void)data;
    tt_res_send(res, 200, "text/plain", "ok", 2);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static char *slurp(int fd)
{
    static char buf[2][65536];
    static int which;
    char *b = buf[which++ & 1];
    ssize_t n = pread(fd, b, sizeof buf[0] - 1, 0);
    b[n > 0 ? n : 0] = 0;
    return b;
}

Test(accesslog, two_servers_share_nothing)
{
    enum { N = 20 };
    char path[2][64];
    int logfd[2];
    tt_server *srv[2];
    pthread_t th[2];
    for (int s = 0; s < 2; s++) {
        snprintf(path[s], sizeof path[s], "/tmp/tt-alog-%d-XXXXXX", s);
        logfd[s] = mkstemp(path[s]);
        cr_assert_geq(logfd[s], 0);
        tt_server_config cfg;
        helper_config(&cfg);
        cfg.access_log_fd = logfd[s];
        tt_server_config_route(&cfg, "/", ok, NULL);
        srv[s] = helper_serve(&cfg, &th[s]);
    }
    /* interleaved requests: /from-0/i to the first server, /from-1/i to the second */
    int fd[2] = {connect_port(tt_server_port(srv[0])), connect_port(tt_server_port(srv[1]))};
    for (int i = 0; i < N; i++)
        for (int s = 0; s < 2; s++) {
            char rq[128], buf[1024];
            int n = snprintf(rq, sizeof rq, "GET /from-%d/%d HTTP/1.1\r\nHost: t\r\n\r\n", s, i);
            cr_assert_eq(send(fd[s], rq, (size_t)n, 0), n);
            read_some(fd[s], buf, sizeof buf, "\r\n\r\nok");
            cr_assert(strstr(buf, "200 OK"), "%s", buf);
        }
    close(fd[0]);
    close(fd[1]);
    for (int s = 0; s < 2; s++) /* stopping a server writes out what its log holds */
        helper_stop(srv[s], th[s]);
    for (int s = 0; s < 2; s++) {
        const char *log = slurp(logfd[s]);
        char mine[32], theirs[32];
        snprintf(mine, sizeof mine, "\"GET /from-%d/", s);
        snprintf(theirs, sizeof theirs, "\"GET /from-%d/", 1 - s);
        cr_assert_eq(count(log, mine), N, "server %d logged %d of its lines:\n%s", s,
                     count(log, mine), log);
        cr_assert_eq(count(log, theirs), 0, "server %d logged the other's lines:\n%s", s, log);
        cr_assert_eq(count(log, "\n"), N, "one line per request:\n%s", log);
        cr_assert(strstr(log, "127.0.0.1 - - ["), "%s", log);
        close(logfd[s]);
        unlink(path[s]);
    }
}

static int get_ok(int fd, const char *path)
{
    char rq[128], buf[1024];
    int n = snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    if (send(fd, rq, (size_t)n, 0) != n) return 0;
    read_some(fd, buf, sizeof buf, "\r\n\r\nok");
    return strstr(buf, "200 OK") != NULL;
}

static char *slurp_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return (char *)"";
    char *s = slurp(fd);
    close(fd);
    return s;
}

/* tt_server_reopen_log: lines before go to the renamed file, lines after to the new one; a
 * format is compiled (its variables) and an unknown variable refuses the config. */
Test(accesslog, reopen_and_format)
{
    char dir[] = "/tmp/tt-alog-dir-XXXXXX", path[128], moved[160];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.log", dir);
    snprintf(moved, sizeof moved, "%s.1", path);
    tt_server_config cfg;
    helper_config(&cfg);
    tt_server_config_route(&cfg, "/", ok, NULL);
    tt_server *bad;
    cfg.access_log_format = "$status $no_such_variable";
    cr_assert_eq(tt_server_new(&bad, &cfg), -EINVAL);
    cfg.access_log_format = "$request_method $uri $status n=$connection_requests";
    cfg.access_log_path = path;
    pthread_t th;
    tt_server *srv = helper_serve(&cfg, &th);
    int fd = connect_port(tt_server_port(srv));
    cr_assert(get_ok(fd, "/one"));
    for (int i = 0; i < 200 && !strstr(slurp_path(path), "/one"); i++)
        usleep(10000);
    cr_assert_eq(rename(path, moved), 0);
    cr_assert_eq(tt_server_reopen_log(srv), 0);
    for (int i = 0; i < 200 && access(path, F_OK) != 0; i++)
        usleep(10000);
    cr_assert(get_ok(fd, "/two"));
    close(fd);
    helper_stop(srv, th);
    cr_assert_str_eq(slurp_path(moved), "GET /one 200 n=1\n");
    cr_assert_str_eq(slurp_path(path), "GET /two 200 n=2\n");
    unlink(path);
    unlink(moved);
    rmdir(dir);
}
