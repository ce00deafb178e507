/* test_server.c — the server API in-process: counters by close reason, requests on reused
 * connections, connection info from inside a handler, graceful shutdown from another thread,
 * the idle-connection size budget. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/server_int.h"
#include "tether.h"
#include "helpers.h"

static tt_conn_info last_info;

static void info_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    tt_req_conn_info(req, &last_info);
    char body[64];
    int n = snprintf(body, sizeof body, "requests=%u", last_info.requests);
    tt_res_send(res, 200, "text/plain", body, (size_t)n);
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
    pthread_create(&th, NULL, helper_run_thread, srv);

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

/* ---- flow control for streaming handlers: tt_res_pending / tt_res_on_drain ---- */

enum { STREAM_PIECE = 64 << 10, STREAM_HIGH = 256 << 10, STREAM_TOTAL = 16 << 20 };
static char stream_piece[STREAM_PIECE];
typedef struct stream_state {
    size_t sent, max_pending;
    int drains, write_failed;
    volatile int aborted, ended;
} stream_state;
static stream_state stream;

/* Write while fewer than STREAM_HIGH bytes wait, then wait for a quarter of that. */
static void stream_more(tt_res *res, void *data)
{
    stream_state *s = data;
    s->drains++;
    if (tt_res_aborted(res)) {
        s->aborted = 1;
        tt_res_end(res);
        s->ended = 1;
        return;
    }
    while (s->sent < STREAM_TOTAL && tt_res_pending(res) < STREAM_HIGH) {
        if (tt_res_write(res, stream_piece, STREAM_PIECE) < 0) { /* the peer left mid-write */
            s->write_failed = 1;
            tt_res_end(res);
            s->ended = 1;
            return;
        }
        s->sent += STREAM_PIECE;
        if (tt_res_pending(res) > s->max_pending) s->max_pending = tt_res_pending(res);
    }
    if (s->sent < STREAM_TOTAL) {
        tt_res_on_drain(res, STREAM_HIGH / 4, stream_more, s);
        return;
    }
    tt_res_end(res);
    s->ended = 1;
}

static void stream_handler(tt_req *req, tt_res *res, void *data)
{
    (void)req;
    (void)data;
    memset(&stream, 0, sizeof stream);
    tt_res_start(res, 200, STREAM_TOTAL);
    stream_more(res, &stream);
    stream.drains = 0; /* count only the callbacks from the loop */
}

/* A one-worker server on a free loopback port with fn for every path, running in *th. */
static tt_server *start_server(tt_handler_fn fn, pthread_t *th, int *port)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen[0] = "127.0.0.1:0";
    cfg.nlisten = 1;
    cfg.workers = 1;
    tt_server_config_route(&cfg, "/", fn, NULL);
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    *port = tt_server_port(srv);
    pthread_create(th, NULL, helper_run_thread, srv);
    return srv;
}

/* A client with a small receive buffer that reads slowly. */
static int stream_client(int port)
{
    int fd = connect_port(port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int rcv = 32 << 10;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    const char *rq = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    return fd;
}

Test(server, streaming_handler_is_flow_controlled)
{
    pthread_t th;
    int port;
    tt_server *srv = start_server(stream_handler, &th, &port);
    int fd = stream_client(port);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    usleep(300 * 1000); /* not reading yet: the socket fills up and the handler has to wait */
    static char buf[16 << 10];
    size_t got = 0, head = 0;
    for (int i = 0; got < head + STREAM_TOTAL || !head; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        cr_assert_gt(n, 0, "stream stopped after %zu bytes", got);
        if (!head) {
            char *e = memmem(buf, (size_t)n, "\r\n\r\n", 4);
            cr_assert_not_null(e);
            cr_assert(memmem(buf, (size_t)n, "Content-Length: 16777216", 24));
            head = (size_t)(e + 4 - buf);
        }
        got += (size_t)n;
        if (i % 64 == 0) usleep(2000); /* a slow reader: the server has to wait */
    }
    cr_assert_eq(got, head + STREAM_TOTAL);
    cr_assert_not(stream.write_failed);
    for (int i = 0; i < 2000 && !stream.ended; i++)
        usleep(1000);
    cr_assert(stream.ended);
    cr_assert_not(stream.aborted);
    cr_assert_geq(stream.drains, 2, "the loop called back %d times", stream.drains);
    cr_assert_geq(stream.max_pending, STREAM_HIGH, "%zu", stream.max_pending);
    /* never more than the high mark plus one piece (and the response head) queued */
    cr_assert_leq(stream.max_pending, STREAM_HIGH + STREAM_PIECE + 512, "%zu", stream.max_pending);
    close(fd);
    tt_server_shutdown(srv);
    pthread_join(th, NULL);
    tt_server_free(srv);
}

Test(server, streaming_handler_learns_the_peer_left)
{
    pthread_t th;
    int port;
    tt_server *srv = start_server(stream_handler, &th, &port);
    int fd = stream_client(port);
    static char buf[16 << 10];
    size_t got = 0;
    while (got < (1u << 20)) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    /* Stop reading: the server fills the socket and waits for a drain that never comes. */
    usleep(300 * 1000);
    struct linger lg = {1, 0}; /* then vanish with an RST */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    for (int i = 0; i < 5000 && !stream.ended; i++)
        usleep(1000);
    /* The handler learns it either way: the drain callback sees tt_res_aborted, or (when the
     * reset lands between the drain edge and the handler's next write) tt_res_write fails. */
    cr_assert(stream.aborted || stream.write_failed, "the handler never learned the peer left");
    cr_assert(stream.ended);
    cr_assert_lt(stream.sent, STREAM_TOTAL);
    cr_assert_eq(wait_closes(srv, TT_CLOSE_PEER_RST, 1), 1);
    tt_server_shutdown(srv);
    pthread_join(th, NULL);
    tt_server_free(srv);
}

/* ---- request trailers ---- */

/* Answers "body|n|name=value;..." for every request. */
static void trailer_handler(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    char out[1024];
    size_t bl = 0, vl = 0;
    const char *body = tt_req_body(req, &bl);
    int n = tt_req_trailer_count(req);
    int o = snprintf(out, sizeof out, "%.*s|%d|", (int)bl, body ? body : "", n);
    for (int i = 0; i < n; i++) {
        const char *name, *value;
        size_t nl;
        cr_assert_eq(tt_req_trailer_at(req, i, &name, &nl, &value, &vl), 0);
        o += snprintf(out + o, sizeof out - (size_t)o, "%.*s=%.*s;", (int)nl, name, (int)vl, value);
    }
    const char *sum = tt_req_trailer(req, "x-checksum", &vl);
    o += snprintf(out + o, sizeof out - (size_t)o, "sum=%.*s", sum ? (int)vl : 1, sum ? sum : "-");
    cr_assert_eq(tt_req_trailer_at(req, n, &body, &bl, &body, &bl), -ERANGE);
    tt_res_send(res, 200, "text/plain", out, (size_t)o);
}

Test(server, request_trailers_reach_the_handler)
{
    pthread_t th;
    int port;
    tt_server *srv = start_server(trailer_handler, &th, &port);
    int fd = connect_port(port);
    /* a chunked body with two trailer fields, and a pipelined GET right behind it */
    const char *rq = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum:  abc123 \r\n"
                     "Server-Timing: db;dur=53\r\n\r\n"
                     "GET /next HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    char buf[4096];
    read_some(fd, buf, sizeof buf, "|0|sum=-");
    cr_assert(strstr(buf, "hello world|2|X-Checksum=abc123;Server-Timing=db;dur=53;sum=abc123"),
              "%s", buf);
    cr_assert(strstr(buf, "\r\n\r\n|0|sum=-"), "the pipelined GET after the trailers: %s", buf);

    /* the same body delivered a byte at a time (the trailer section arrives in pieces) */
    const char *rq2 = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\nX-Checksum: 9f\r\nX-Two: 2\r\n\r\n";
    for (size_t i = 0; rq2[i]; i++) {
        cr_assert_eq(send(fd, rq2 + i, 1, 0), 1);
        usleep(200);
    }
    read_some(fd, buf, sizeof buf, "sum=9f");
    cr_assert(strstr(buf, "abc|2|X-Checksum=9f;X-Two=2;sum=9f"), "%s", buf);
    close(fd);

    /* more trailer fields than kept (16): 431 and close */
    fd = connect_port(port);
    char big[2048];
    int o = snprintf(big, sizeof big,
                     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
                     "\r\n\r\n1\r\nx\r\n0\r\n");
    for (int i = 0; i < 17; i++)
        o += snprintf(big + o, sizeof big - (size_t)o, "X-T%d: v\r\n", i);
    o += snprintf(big + o, sizeof big - (size_t)o, "\r\n");
    cr_assert_eq(send(fd, big, (size_t)o, 0), o);
    read_some(fd, buf, sizeof buf, "\r\n\r\n");
    cr_assert(!strncmp(buf, "HTTP/1.1 431 ", 13), "%s", buf);
    cr_assert(strstr(buf, "Connection: close"), "%s", buf);
    close(fd);
    tt_server_shutdown(srv);
    pthread_join(th, NULL);
    tt_server_free(srv);
}

/* ---- worker-exit hooks, the static-file mount ---- */

static void count_exit(void *data)
{
    __atomic_add_fetch((int *)data, 1, __ATOMIC_SEQ_CST);
}

Test(server, worker_exit_hooks_run_once_per_worker)
{
    static int exits;
    tt_server_config cfg;
    helper_config(&cfg);
    cfg.workers = 2;
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    cr_assert_eq(tt_server_on_worker_exit(srv, count_exit, &exits), 0);
    for (int i = 1; i < TT_SERVER_MAX_EXIT_HOOKS; i++)
        cr_assert_eq(tt_server_on_worker_exit(srv, count_exit, &exits), 0);
    cr_assert_eq(tt_server_on_worker_exit(srv, count_exit, &exits), -ENOSPC);
    pthread_t th;
    helper_start(srv, &th);
    usleep(50 * 1000);
    cr_assert_eq(__atomic_load_n(&exits, __ATOMIC_SEQ_CST), 0);
    helper_stop(srv, th);
    cr_assert_eq(exits, 2 * TT_SERVER_MAX_EXIT_HOOKS);
}

static void user_root(tt_req *req, tt_res *res, void *data)
{
    (void)req;
    (void)data;
    tt_res_send(res, 200, "text/plain", "user route", 10);
}

static void get(int port, const char *path, char *buf, size_t size, const char *until)
{
    int fd = connect_port(port);
    char rq[256];
    int n = snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    cr_assert_eq(send(fd, rq, (size_t)n, 0), n);
    read_some(fd, buf, size, until);
    close(fd);
}

/* cfg.root is mounted as an ordinary "/" route: longer prefixes win, and so does a "/" route
 * of the application. */
Test(server, root_is_an_ordinary_route)
{
    char dir[] = "/tmp/tt-root-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("file a", f);
    fclose(f);
    char buf[4096];
    for (int with_user_root = 0; with_user_root < 2; with_user_root++) {
        tt_server_config cfg;
        helper_config(&cfg);
        cfg.root = dir;
        tt_server_config_route(&cfg, "/api", info_handler, NULL);
        if (with_user_root) tt_server_config_route(&cfg, "/", user_root, NULL);
        tt_server *srv;
        cr_assert_eq(tt_server_new(&srv, &cfg), 0);
        cr_assert_eq(tt_server_get_config(srv)->nroutes, 1 + with_user_root, "cfg is the caller's");
        pthread_t th;
        helper_start(srv, &th);
        int port = tt_server_port(srv);
        get(port, "/api/x", buf, sizeof buf, "requests=");
        cr_assert(strstr(buf, "requests=1"), "%s", buf);
        get(port, "/a.txt", buf, sizeof buf, with_user_root ? "user route" : "file a");
        cr_assert(strstr(buf, with_user_root ? "user route" : "file a"), "%s", buf);
        if (!with_user_root) {
            cr_assert(strstr(buf, "ETag: "), "%s", buf);
            get(port, "/missing", buf, sizeof buf, "\r\n\r\n");
            cr_assert(!strncmp(buf, "HTTP/1.1 404 ", 13), "%s", buf);
        }
        helper_stop(srv, th);
    }
    unlink(path);
    rmdir(dir);
}
