/* test_server.c — the server API in-process: counters by close reason, requests on reused
 * connections, connection info from inside a handler, graceful shutdown from another thread,
 * the idle-connection size budget. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http1/server_int.h"
#include "tether.h"

static tt_conn_info last_info;

static void info_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    tt_req_conn_info(req, &last_info);
    char body[64];
    int n = snprintf(body, sizeof body, "requests=%u", last_info.requests);
    tt_res_send(res, 200, "text/plain", body, (size_t)n);
}

static void *run_thread(void *arg)
{
    tt_server_run(arg, 0);
    return NULL;
}

static int connect_port(int port)
{
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", port);
    tt_addr addr;
    cr_assert_eq(tt_addr_parse(&addr, a), 0);
    int fd = tt_connect_timeout(&addr, 2000);
    cr_assert_geq(fd, 0);
    int fl = 0;
    (void)fl;
    return fd;
}

/* Blocking-enough read of one small response (up to its body end marker). */
static size_t read_some(int fd, char *buf, size_t size, const char *until)
{
    size_t got = 0;
    for (int i = 0; i < 2000 && got < size - 1; i++) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            buf[got] = 0;
            if (strstr(buf, until)) break;
        } else if (n == 0) {
            break;
        } else {
            usleep(1000);
        }
    }
    buf[got] = 0;
    return got;
}

static uint64_t wait_closes(tt_server *srv, int reason, uint64_t want)
{
    tt_server_stats st;
    for (int i = 0; i < 2000; i++) {
        tt_server_stats_get(srv, -1, &st);
        if (st.closes[reason] >= want) break;
        usleep(1000);
    }
    return st.closes[reason];
}

Test(server, idle_connection_is_small)
{
    cr_assert_leq(sizeof(tt__conn), 128, "an idle connection must stay within 128 bytes (%zu)",
                  sizeof(tt__conn));
}

Test(server, names)
{
    cr_assert_str_eq(tt_conn_state_name(TT_CONN_IDLE), "idle");
    cr_assert_str_eq(tt_close_reason_name(TT_CLOSE_MAX_REQUESTS), "max_requests");
    cr_assert_str_eq(tt_close_reason_name(99), "?");
}

Test(server, config_route_table_full)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int i = 0; i < TT_SERVER_MAX_ROUTES; i++)
        cr_assert_eq(tt_server_config_route(&cfg, "/", info_handler, NULL), 0);
    cr_assert_eq(tt_server_config_route(&cfg, "/", info_handler, NULL), -ENOSPC);
}

Test(server, counters_and_conn_info)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen[0] = "127.0.0.1:0";
    cfg.nlisten = 1;
    cfg.workers = 2;
    cfg.keepalive_requests = 3;
    tt_server_config_route(&cfg, "/", info_handler, NULL);
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    int port = tt_server_port(srv);
    cr_assert_gt(port, 0);
    cr_assert_eq(tt_server_workers(srv), 2);
    cr_assert_eq(tt_server_get_config(srv)->keepalive_timeout_ms, 75000);
    pthread_t th;
    pthread_create(&th, NULL, run_thread, srv);

    /* three requests on one connection: the third is the last (max requests) */
    int fd = connect_port(port);
    char buf[4096];
    for (int i = 1; i <= 3; i++) {
        const char *rq = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
        cr_assert_eq(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
        char want[32];
        snprintf(want, sizeof want, "requests=%d", i);
        read_some(fd, buf, sizeof buf, want);
        cr_assert(strstr(buf, want), "response %d: %s", i, buf);
        if (i == 3) cr_assert(strstr(buf, "Connection: close"), "%s", buf);
    }
    cr_assert_eq(last_info.requests, 3);
    cr_assert_eq(last_info.requests_left, 0);
    cr_assert_eq(last_info.idle_timeout_ms, -1);
    cr_assert_eq(tt_addr_port(&last_info.local), port);
    cr_assert_eq(read_some(fd, buf, sizeof buf, "\x01"), 0); /* closed after the last */
    close(fd);
    cr_assert_eq(wait_closes(srv, TT_CLOSE_MAX_REQUESTS, 1), 1);

    /* a client that closes an idle connection: peer_fin */
    fd = connect_port(port);
    const char *rq = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    send(fd, rq, strlen(rq), 0);
    read_some(fd, buf, sizeof buf, "requests=1");
    cr_assert_eq(last_info.requests_left, 2);
    cr_assert_eq(last_info.idle_timeout_ms, 75000);
    close(fd);
    cr_assert_eq(wait_closes(srv, TT_CLOSE_PEER_FIN, 1), 1);

    tt_server_stats st;
    cr_assert_eq(tt_server_stats_get(srv, -1, &st), 0);
    cr_assert_eq(st.accepted, 2);
    cr_assert_eq(st.requests, 4);
    cr_assert_eq(st.reused_requests, 2);
    cr_assert_eq(st.open, 0);
    uint64_t hist = 0;
    for (int i = 0; i < TT_HIST_BUCKETS; i++)
        hist += st.reqs_per_conn[i];
    cr_assert_eq(hist, 2);
    cr_assert_eq(st.reqs_per_conn[0], 1); /* one connection served 1 request */
    cr_assert_eq(st.reqs_per_conn[1], 1); /* one served 3: bucket [2, 4) */
    cr_assert_eq(tt_server_stats_get(srv, 2, &st), -EINVAL);

    tt_server_shutdown(srv);
    pthread_join(th, NULL);
    tt_server_free(srv);
}

Test(server, bad_listen_address)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen[0] = "not an address";
    cfg.nlisten = 1;
    cfg.workers = 1;
    tt_server *srv = NULL;
    cr_assert_lt(tt_server_new(&srv, &cfg), 0);
}
