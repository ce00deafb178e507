/* test_conn.c — the connection state machine (lib/server/conn.c): the trace hook sees every
 * transition of a keep-alive request followed by an idle close; a file response served through
 * the sendfile fallback (pread + stream write, the path a TLS stream takes) arrives byte-exact,
 * also when the peer reads slowly. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "helpers.h"
#include "server/server_int.h"

/* ---- trace hook ---- */

enum { MAX_EVENTS = 64 };
typedef struct trace_log {
    int n; /* written by the worker, read after a release store */
    struct {
        uint64_t id;
        int from, to;
    } ev[MAX_EVENTS];
} trace_log;

static void on_trace(void *data, uint64_t id, int from, int to)
{
    trace_log *t = data;
    int n = __atomic_load_n(&t->n, __ATOMIC_RELAXED);
    if (n == MAX_EVENTS) return;
    t->ev[n].id = id;
    t->ev[n].from = from;
    t->ev[n].to = to;
    __atomic_store_n(&t->n, n + 1, __ATOMIC_RELEASE);
}

static void hello(tt_req *req, tt_res *res, void *data)
{
    (void)req;
    (void)data;
    tt_res_send(res, 200, "text/plain", "hello", 5);
}

Test(conn, trace_keepalive_request_then_idle_close)
{
    static trace_log log;
    tt_server_config cfg;
    helper_config(&cfg);
    cfg.keepalive_timeout_ms = 150;
    cfg.trace = on_trace;
    cfg.trace_data = &log;
    tt_server_config_route(&cfg, "/", hello, NULL);
    pthread_t th;
    tt_server *srv = helper_serve(&cfg, &th);
    int fd = connect_port(tt_server_port(srv));
    const char *rq = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    char buf[1024];
    read_some(fd, buf, sizeof buf, "hello");
    cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
    cr_assert_eq(wait_closes(srv, TT_CLOSE_IDLE_TIMEOUT, 1), 1);
    close(fd);
    helper_stop(srv, th);

    static const int want[][2] = {{TT_CONN_CLOSED, TT_CONN_READING_HEAD},
                                  {TT_CONN_READING_HEAD, TT_CONN_HANDLING},
                                  {TT_CONN_HANDLING, TT_CONN_IDLE},
                                  {TT_CONN_IDLE, TT_CONN_CLOSED}};
    int n = __atomic_load_n(&log.n, __ATOMIC_ACQUIRE);
    cr_assert_eq(n, 4, "%d transitions traced", n);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(log.ev[i].from, want[i][0], "transition %d from %s", i,
                     tt_conn_state_name(log.ev[i].from));
        cr_assert_eq(log.ev[i].to, want[i][1], "transition %d to %s", i,
                     tt_conn_state_name(log.ev[i].to));
        cr_assert_eq(log.ev[i].id, log.ev[0].id, "one connection");
    }
}

/* ---- sendfile fallback ---- */

enum { FILE_SIZE = 300 * 1000 + 7 }; /* well over the static handler's 16 KiB copy limit */

static char *make_root(char *dir, size_t size, unsigned char **content)
{
    snprintf(dir, size, "/tmp/tt-conn-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    unsigned char *c = malloc(FILE_SIZE);
    uint32_t x = 12345;
    for (size_t i = 0; i < FILE_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        c[i] = (unsigned char)(x >> 16);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, c, FILE_SIZE), FILE_SIZE);
    close(fd);
    *content = c;
    return dir;
}

/* GET path with a small receive buffer, reading slowly at first; the whole response. */
static size_t fetch(int port, const char *req, char *buf, size_t size)
{
    int fd = connect_port(port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int rcv = 16 << 10;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    usleep(100 * 1000); /* the socket fills: the server meets EAGAIN mid-file */
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, size - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    return got;
}

static void check_file_response(const char *buf, size_t got, const unsigned char *content,
                                size_t from, size_t len)
{
    const char *e = memmem(buf, got, "\r\n\r\n", 4);
    cr_assert_not_null(e, "no head");
    size_t head = (size_t)(e + 4 - buf);
    cr_assert_eq(got - head, len, "body of %zu bytes, want %zu", got - head, len);
    cr_assert_eq(memcmp(buf + head, content + from, len), 0, "body differs");
}

static void serve_file(int no_sendfile)
{
    char dir[64];
    unsigned char *content;
    make_root(dir, sizeof dir, &content);
    tt_server_config cfg;
    helper_config(&cfg);
    cfg.root = dir;
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    srv->no_sendfile = no_sendfile; /* the internal knob: as if the stream could not */
    pthread_t th;
    helper_start(srv, &th);
    static char buf[FILE_SIZE + 4096];
    size_t got =
        fetch(tt_server_port(srv), "GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
              buf, sizeof buf);
    cr_assert(!strncmp(buf, "HTTP/1.1 200 ", 13));
    check_file_response(buf, got, content, 0, FILE_SIZE);
    /* a range from the middle: the fallback reads from the offset */
    got = fetch(tt_server_port(srv),
                "GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-200999\r\n"
                "Connection: close\r\n\r\n",
                buf, sizeof buf);
    cr_assert(!strncmp(buf, "HTTP/1.1 206 ", 13), "%.40s", buf);
    check_file_response(buf, got, content, 1000, 200000);
    helper_stop(srv, th);
    char path[256];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    unlink(path);
    rmdir(dir);
    free(content);
}

Test(conn, sendfile_fallback_serves_files_byte_exact)
{
    serve_file(1);
}

Test(conn, sendfile_serves_files_byte_exact)
{
    serve_file(0);
}
