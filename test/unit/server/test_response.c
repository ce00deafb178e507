/* test_response.c — the response writer's guarantees (issue #15): fields the server manages are
 * never appended raw, a field that would split the head is refused and never written, and a
 * handler's "Connection: close" closes the connection before the next pipelined request. */
#include <errno.h>

#include "helpers.h"

/* What the handler got back from each tt_res_header call, in order. */
static int rc[16];
static int nrc;

static void headers_handler(tt_req *req, tt_res *res, void *data)
{
    (void)req;
    (void)data;
    nrc = 0;
    rc[nrc++] = tt_res_header(res, "X-Split", "a\r\nSet-Cookie: evil=1");
    rc[nrc++] = tt_res_header(res, "X-Lf", "a\nb");
    rc[nrc++] = tt_res_header(res, "X-Ctl", "a\x01z");
    rc[nrc++] = tt_res_header(res, "X Bad", "v");
    rc[nrc++] = tt_res_header(res, "Bad\r\nName", "v");
    rc[nrc++] = tt_res_header(res, "Content-Length", "5");
    rc[nrc++] = tt_res_header(res, "transfer-encoding", "chunked");
    rc[nrc++] = tt_res_header(res, "Keep-Alive", "timeout=9999");
    rc[nrc++] = tt_res_header(res, "Connection", "keep-alive");
    rc[nrc++] = tt_res_header(res, "X-Ok", "fine");
    tt_res_send(res, 200, "text/plain", "hello", 5);
}

static void close_handler(tt_req *req, tt_res *res, void *data)
{
    (void)req;
    (void)data;
    rc[0] = tt_res_header(res, "connection", "Close");
    tt_res_send(res, 200, "text/plain", "bye", 3);
}

/* Serve fn, send rq on one connection, read what comes until `until` or EOF; the bytes. */
static size_t exchange(tt_handler_fn fn, const char *rq, char *buf, size_t size, const char *until)
{
    tt_server_config cfg;
    helper_config(&cfg);
    tt_server_config_route(&cfg, "/", fn, NULL);
    pthread_t th;
    tt_server *srv = helper_serve(&cfg, &th);
    int fd = connect_port(tt_server_port(srv));
    cr_assert_eq(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    size_t got = read_some(fd, buf, size, until);
    close(fd);
    helper_stop(srv, th);
    return got;
}

Test(response, fields_that_would_split_or_reframe_are_refused)
{
    char buf[4096];
    exchange(headers_handler, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", buf, sizeof buf, "hello");
    static const int want[] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL,
                               -EPERM,  -EPERM,  -EPERM,  -EPERM,  0};
    cr_assert_eq(nrc, 10);
    for (int i = 0; i < nrc; i++)
        cr_assert_eq(rc[i], want[i], "call %d: %d, want %d", i, rc[i], want[i]);
    cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
    cr_assert(strstr(buf, "X-Ok: fine\r\n"), "%s", buf);
    cr_assert_null(strstr(buf, "evil"), "%s", buf);
    cr_assert_null(strstr(buf, "9999"), "%s", buf);
    cr_assert_null(strstr(buf, "chunked"), "%s", buf);
    cr_assert_null(strstr(buf, "Content-Length: 5\r\nContent-Length"), "%s", buf);
    const char *cl = strstr(buf, "Content-Length:");
    cr_assert(cl && !strstr(cl + 1, "Content-Length:"), "one Content-Length: %s", buf);
}

Test(response, handler_connection_close_closes_before_the_next_request)
{
    char buf[4096];
    size_t got = exchange(close_handler,
                          "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n",
                          buf, sizeof buf, "\r\n\r\nbye\x7f"); /* never there: read to EOF */
    cr_assert_eq(rc[0], 0);
    cr_assert(got > 0 && strstr(buf, "Connection: close\r\n"), "%s", buf);
    cr_assert_null(strstr(buf, "Keep-Alive"), "%s", buf);
    const char *first = strstr(buf, "HTTP/1.1 200");
    cr_assert(first && !strstr(first + 1, "HTTP/1.1"), "one response only: %s", buf);
    /* the field is the server's, written once */
    const char *c = strstr(buf, "onnection:");
    cr_assert(c && !strstr(c + 1, "onnection:"), "%s", buf);
}

Test(response, serializer_refuses_invalid_fields)
{
    tt_header bad[] = {{"X-A", 3, "a\r\nb", 4}};
    tt_http1_response_head h = {.status = 200,
                                .headers = bad,
                                .num_headers = 1,
                                .content_length = 0,
                                .request_minor = 1,
                                .keep_alive = 1};
    char buf[512];
    cr_assert_eq(tt_http1_serialize_response(buf, sizeof buf, &h), 0);
    struct iovec iov[32];
    char scratch[256];
    cr_assert_eq(tt_http1_response_iov(iov, 32, scratch, sizeof scratch, &h), -1);
    tt_header name[] = {{"X A", 3, "b", 1}};
    h.headers = name;
    cr_assert_eq(tt_http1_serialize_response(buf, sizeof buf, &h), 0);
    tt_header ok[] = {{"X-A", 3, "b", 1}};
    h.headers = ok;
    cr_assert_gt(tt_http1_serialize_response(buf, sizeof buf, &h), 0);
    h.reason = "OK\r\nX: y";
    cr_assert_eq(tt_http1_serialize_response(buf, sizeof buf, &h), 0);
}
