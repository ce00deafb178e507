/* test_drain.c — the drain deadline holds even when a handler misbehaves (lib/server/server.c,
 * issue #16): a handler stuck in a blocking call keeps its worker from ever returning to its
 * loop, and tt_server_run still returns (-ETIMEDOUT) after drain_timeout_ms instead of joining
 * that worker forever. */
#include <errno.h>
#include <poll.h>

#include "helpers.h"

static int stuck_pipe[2];
static volatile int in_handler, left_handler;

/* Blocks in read() until the test writes to the pipe (it never does): a stuck handler. */
static void stuck(tt_req *req, tt_res *res, void *data)
{
    char c;
    __atomic_store_n(&in_handler, 1, __ATOMIC_SEQ_CST);
    while (read(stuck_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    __atomic_store_n(&left_handler, 1, __ATOMIC_SEQ_CST);
    tt_res_send(res, 200, "text/plain", "late\n", 5);
}

typedef struct {
    tt_server *srv;
    int rc;
    volatile int done;
} run_arg;

static void *run(void *p)
{
    run_arg *a = p;
    a->rc = tt_server_run(a->srv, 0);
    __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

Test(drain, deadline_holds_with_a_stuck_handler, .timeout = 20)
{
    cr_assert_eq(pipe(stuck_pipe), 0);
    tt_server_config cfg;
    helper_config(&cfg);
    cfg.drain_timeout_ms = 300;
    tt_server_config_route(&cfg, "/", stuck, NULL);
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    run_arg a = {.srv = srv};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run, &a), 0);
    int fd = connect_port(tt_server_port(srv));
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    for (int i = 0; i < 5000 && !__atomic_load_n(&in_handler, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    cr_assert(in_handler, "the handler was called");
    tt_server_shutdown(srv);
    /* Before the fix tt_server_run joined the stuck worker forever (the test timed out). */
    pthread_join(th, NULL);
    cr_assert(a.done);
    cr_assert_eq(a.rc, -ETIMEDOUT, "past the drain deadline with a worker still stuck");
    cr_assert_not(left_handler, "the handler is still stuck: run returned without it");
    tt_server_free(srv); /* kept (the stuck worker may use it): no crash, no free under it */
    close(fd);
}

Test(drain, ordinary_drain_still_returns_zero, .timeout = 20)
{
    tt_server_config cfg;
    helper_config(&cfg);
    cfg.drain_timeout_ms = 300;
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, &cfg), 0);
    run_arg a = {.srv = srv};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run, &a), 0);
    int fd = connect_port(tt_server_port(srv));
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    char buf[512];
    read_some(fd, buf, sizeof buf, "\r\n\r\n");
    tt_server_shutdown(srv);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, 0);
    tt_server_free(srv);
    close(fd);
}
