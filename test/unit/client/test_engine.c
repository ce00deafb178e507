/* test_engine.c — the engine's state machines seen through the trace hook: a request on a
 * fresh connection then one on the reused connection give the expected transitions, and the
 * TT_OFF convention reaches the pool (no idle expiry armed). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_int.h"
#include "tether.h"

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* Accept one connection, answer n requests, wait for the client's close. */
typedef struct srv {
    int lfd, n;
    pthread_t th;
} srv;

static void *serve(void *arg)
{
    srv *s = arg;
    fcntl(s->lfd, F_SETFL, fcntl(s->lfd, F_GETFL) & ~O_NONBLOCK);
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    char buf[4096];
    size_t have = 0;
    for (int i = 0; i < s->n;) {
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0) break;
        have += (size_t)r;
        buf[have] = 0;
        char *e;
        while (i < s->n && (e = strstr(buf, "\r\n\r\n"))) {
            size_t used = (size_t)(e + 4 - buf);
            memmove(buf, buf + used, have - used + 1);
            have -= used;
            send(fd, RESP, sizeof RESP - 1, 0);
            i++;
        }
    }
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
    return NULL;
}

static char trace_buf[4096];

static void trace(void *data, const char *machine, unsigned id, int from, int to)
{
    (void)data;
    size_t n = strlen(trace_buf);
    snprintf(trace_buf + n, sizeof trace_buf - n, "%s %u %s>%s;", machine, id,
             tt_client_state_name(machine, from), tt_client_state_name(machine, to));
}

Test(trace, fresh_connection_then_reuse)
{
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    srv s = {.lfd = tt_listen(&a, NULL), .n = 2};
    cr_assert_geq(s.lfd, 0);
    tt_sock_local(s.lfd, &a);
    pthread_create(&s.th, NULL, serve, &s);
    tt_client_opts o;
    memset(&o, 0, sizeof o);
    o.trace = trace;
    o.idle_timeout_ms = TT_OFF;
    o.max_lifetime_ms = TT_OFF;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", tt_addr_port(&a));
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    trace_buf[0] = 0;
    cr_assert_eq(tt_client_request(c, &x), 0);
    cr_assert_str_eq(trace_buf, "conn 1 new>connecting;exchange 1 none>connecting;"
                                "conn 1 connecting>busy;exchange 1 connecting>sending;"
                                "exchange 1 sending>reading;conn 1 busy>idle;"
                                "exchange 1 reading>done;");
    /* TT_OFF for both idle limits: nothing will expire the idle connection */
    tt__conn *k = tt__list_entry(tt__list_first(&c->all), tt__conn, all_link);
    cr_assert_not(tt_timer_armed(&k->timer));
    trace_buf[0] = 0;
    cr_assert_eq(tt_client_request(c, &x), 0);
    cr_assert(x.reused);
    cr_assert_str_eq(trace_buf, "conn 1 idle>busy;exchange 2 none>sending;"
                                "exchange 2 sending>reading;conn 1 busy>idle;"
                                "exchange 2 reading>done;");
    trace_buf[0] = 0;
    tt_client_free(c);
    cr_assert_str_eq(trace_buf, "conn 1 idle>closed;");
    pthread_join(s.th, NULL);
    close(s.lfd);
    tt_exchange_cleanup(&x);
}

Test(trace, state_names)
{
    cr_assert_str_eq(tt_client_state_name("conn", TT_CLIENT_CONN_IDLE), "idle");
    cr_assert_str_eq(tt_client_state_name("exchange", TT_X_WAIT_CONTINUE), "wait_continue");
    cr_assert_str_eq(tt_client_state_name("conn", 99), "?");
}
