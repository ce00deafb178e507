/* test_hostile.c — the client against hostile servers (issue #16): a server dribbling header
 * bytes cannot extend the response-head deadline; max_body_size bounds a body (-EFBIG) whether
 * collected or given to on_body; a URL with a space or control byte is refused before anything
 * is sent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"
#include "tether.h"

/* Accept one connection, read one request head, send each part after gap_ms. */
typedef struct srv {
    int lfd, gap_ms, accepted;
    const char *const *parts;
    pthread_t th;
} srv;

static void *serve(void *arg)
{
    srv *s = arg;
    fcntl(s->lfd, F_SETFL, fcntl(s->lfd, F_GETFL) & ~O_NONBLOCK);
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    s->accepted++;
    char buf[4096];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0) break;
        have += (size_t)r;
        buf[have] = 0;
        if (strstr(buf, "\r\n\r\n")) break;
    }
    for (const char *const *p = s->parts; *p; p++) {
        if (p != s->parts) {
            struct timespec ts = {0, (long)s->gap_ms * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (send(fd, *p, strlen(*p), MSG_NOSIGNAL) < 0) break;
    }
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
    return NULL;
}

static void start(srv *s, const char *const *parts, int gap_ms, char *url, size_t usz)
{
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    memset(s, 0, sizeof *s);
    s->lfd = tt_listen(&a, NULL);
    cr_assert_geq(s->lfd, 0);
    tt_sock_local(s->lfd, &a);
    s->parts = parts;
    s->gap_ms = gap_ms;
    pthread_create(&s->th, NULL, serve, s);
    snprintf(url, usz, "http://127.0.0.1:%d/", tt_addr_port(&a));
}

static void stop(srv *s, tt_client *c)
{
    tt_client_free(c);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

Test(hostile, dribbled_head_cannot_extend_the_head_deadline)
{
    /* 40 header bytes, one every 50 ms: 2 s in all, a 400 ms head deadline. Before the fix
     * every byte re-armed the timer and the request succeeded. */
    static const char *parts[64];
    static char bytes[48][2];
    int n = 0;
    parts[n++] = "HTTP/1.1 200 OK\r\n";
    const char *field = "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    for (size_t i = 0; field[i] && n < 47; i++) {
        bytes[i][0] = field[i];
        parts[n++] = bytes[i];
    }
    parts[n++] = "Content-Length: 2\r\n\r\nok";
    parts[n] = NULL;
    srv s;
    char url[64];
    start(&s, parts, 50, url, sizeof url);
    tt_client_opts o;
    memset(&o, 0, sizeof o);
    o.head_timeout_ms = 400;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    cr_assert_eq(tt_client_request(c, &x), -ETIMEDOUT);
    cr_assert_str_eq(x.error_what, "response timeout");
    stop(&s, c);
    tt_exchange_cleanup(&x);
}

static int count_body(tt_exchange *x, const char *d, size_t n)
{
    (void)d;
    *(size_t *)x->data += n;
    return 0;
}

Test(hostile, max_body_size_bounds_collected_and_streamed_bodies)
{
    static const char *by_length[] = {"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", NULL};
    static const char *chunked[] = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                    "400\r\n", NULL};
    static char chunk[1024 + 3];
    memset(chunk, 'x', 1024);
    memcpy(chunk + 1024, "\r\n", 3);
    chunked[1] = NULL;
    const char *stream[] = {chunked[0], "400\r\n", chunk,       "400\r\n", chunk,
                            "400\r\n",  chunk,     "0\r\n\r\n", NULL};
    for (int round = 0; round < 3; round++) {
        srv s;
        char url[64];
        start(&s, round == 0 ? by_length : stream, 1, url, sizeof url);
        tt_client_opts o;
        memset(&o, 0, sizeof o);
        o.max_body_size = 2000;
        tt_client *c;
        cr_assert_eq(tt_client_new(&c, &o), 0);
        tt_exchange x;
        tt_exchange_init(&x);
        x.url = url;
        size_t got = 0;
        if (round == 2) {
            x.on_body = count_body;
            x.data = &got;
        }
        cr_assert_eq(tt_client_request(c, &x), -EFBIG, "round %d", round);
        cr_assert_str_eq(x.error_what, "body too large");
        cr_assert_leq(x.resp_body_len + got, 2000);
        cr_assert_eq(x.retries, 0);
        tt_client_stats st;
        tt_client_get_stats(c, &st);
        cr_assert_eq(st.open, 0); /* the connection was closed, not pooled */
        stop(&s, c);
        tt_exchange_cleanup(&x);
    }
}

Test(hostile, url_with_space_or_control_byte_is_refused)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    const char *bad[] = {"http://127.0.0.1:1/a b", "http://127.0.0.1:1/a\r\nX: y",
                         "http://127.0.0.1:1/\x7f", "http://127.0.0.1:1/a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tt_exchange x;
        tt_exchange_init(&x);
        x.url = bad[i];
        cr_assert_eq(tt_client_start(c, &x), -EINVAL, "%zu", i);
        cr_assert_str_eq(x.error_what, "url");
        tt_exchange_cleanup(&x);
    }
    cr_assert_eq(tt_client_wait(c, -1), 0);
    tt_client_free(c);
}

Test(hostile, refused_connect_tries_the_next_address_once_each)
{
    static const char *ok[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL};
    srv s;
    char url[64];
    start(&s, ok, 1, url, sizeof url);
    tt_addr live, dead;
    tt_sock_local(s.lfd, &live);
    tt_addr_parse(&dead, "127.0.0.1:0");
    int tmp = tt_listen(&dead, NULL);
    tt_sock_local(tmp, &dead);
    close(tmp); /* nothing listens there now: connect is refused */
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    tt__route *rt = tt__pool_route(c, "127.0.0.1", tt_addr_port(&live));
    rt->addrs[0] = dead; /* the route's lookup answered a dead address first */
    rt->addrs[1] = live;
    rt->naddr = 2;
    rt->resolved_at = tt_loop_update_time(tt_client_loop(c));
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    cr_assert_eq(tt_client_request(c, &x), 0);
    cr_assert_eq(x.retries, 1); /* the second address, once */
    cr_assert_str_eq(x.resp_body, "ok");
    /* both dead: one try per address, not three at once on one */
    rt->addrs[1] = dead;
    tt_exchange y;
    tt_exchange_init(&y);
    y.url = url;
    tt__pool_close(tt__list_entry(tt__list_first(&c->all), tt__conn, all_link), TT_EVICT_IDLE);
    cr_assert_eq(tt_client_request(c, &y), -ECONNREFUSED);
    cr_assert_eq(y.retries, 1);
    stop(&s, c);
    tt_exchange_cleanup(&x);
    tt_exchange_cleanup(&y);
}
