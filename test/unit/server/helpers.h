/* helpers.h — shared by the server's unit tests: a server on a free loopback port in a thread,
 * a client socket, bounded reads. Header-only (static functions); not a test binary. */
#ifndef TT_TEST_SERVER_HELPERS_H
#define TT_TEST_SERVER_HELPERS_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether.h"

static inline void *helper_run_thread(void *arg)
{
    tt_server_run(arg, 0);
    return NULL;
}

/* A config listening on a free loopback port with one worker. */
static inline void helper_config(tt_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen[0] = "127.0.0.1:0";
    cfg->nlisten = 1;
    cfg->workers = 1;
}

/* Run srv in *th. */
static inline void helper_start(tt_server *srv, pthread_t *th)
{
    cr_assert_eq(pthread_create(th, NULL, helper_run_thread, srv), 0);
}

/* tt_server_new(cfg) and run it in *th; the server. */
static inline tt_server *helper_serve(const tt_server_config *cfg, pthread_t *th)
{
    tt_server *srv;
    cr_assert_eq(tt_server_new(&srv, cfg), 0);
    helper_start(srv, th);
    return srv;
}

/* Shut srv down, wait for its thread, free it. */
static inline void helper_stop(tt_server *srv, pthread_t th)
{
    tt_server_shutdown(srv);
    pthread_join(th, NULL);
    tt_server_free(srv);
}

/* A non-blocking client connected to 127.0.0.1:port. */
static inline int connect_port(int port)
{
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", port);
    tt_addr addr;
    cr_assert_eq(tt_addr_parse(&addr, a), 0);
    int fd = tt_connect_timeout(&addr, 2000);
    cr_assert_geq(fd, 0);
    return fd;
}

/* Read into buf (NUL-terminated) until `until` appears, EOF, or about 2 s. Returns bytes. */
static inline size_t read_some(int fd, char *buf, size_t size, const char *until)
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

/* Wait (about 2 s at most) until srv counted want closes for reason; returns the count. */
static inline uint64_t wait_closes(tt_server *srv, int reason, uint64_t want)
{
    tt_server_stats st;
    for (int i = 0; i < 2000; i++) {
        tt_server_stats_get(srv, -1, &st);
        if (st.closes[reason] >= want) break;
        usleep(1000);
    }
    return st.closes[reason];
}

#endif
