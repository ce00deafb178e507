/* test_sockdiag.c — tt_sockdiag_count / tt_sockdiag_foreach against sockets this test puts into
 * known TCP states on loopback (LISTEN, ESTABLISHED, TIME_WAIT, CLOSE_WAIT, FIN_WAIT2). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <tether.h>

/* A loopback listener on an ephemeral port (family AF_INET or AF_INET6); returns fd, sets *port. */
static int listener(int family, int *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    cr_assert(bind(fd, (struct sockaddr *)&ss, len) == 0, "bind: %s", strerror(errno));
    cr_assert(listen(fd, 16) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* Connect a client to the listener and accept it: *cfd client, *sfd server side. */
static void pair(int lfd, int *cfd, int *sfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    cr_assert(getsockname(lfd, (struct sockaddr *)&ss, &len) == 0);
    *cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(*cfd >= 0);
    cr_assert(connect(*cfd, (struct sockaddr *)&ss, len) == 0, "connect: %s", strerror(errno));
    *sfd = accept(lfd, NULL, NULL);
    cr_assert(*sfd >= 0);
}

/* Poll (bounded: up to ~5 s) until side's count of state reaches want; returns the last count. */
static unsigned wait_count(int port, int server_side, int state, unsigned want)
{
    tt_tcp_counts s, c;
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(tt_sockdiag_count(port, &s, &c), 0);
        unsigned got = server_side ? s.n[state] : c.n[state];
        if (got == want) return got;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return server_side ? s.n[state] : c.n[state];
}

Test(sockdiag, state_names_round_trip)
{
    for (int st = 1; st < TT_TCP_NSTATES; st++)
        cr_assert_eq(tt_tcp_state_parse(tt_tcp_state_name(st)), st);
    cr_assert_str_eq(tt_tcp_state_name(TT_TCP_TIME_WAIT), "TIME_WAIT");
    cr_assert_str_eq(tt_tcp_state_name(TT_TCP_CLOSE_WAIT), "CLOSE_WAIT");
    cr_assert_str_eq(tt_tcp_state_name(0), "UNKNOWN");
    cr_assert_str_eq(tt_tcp_state_name(99), "UNKNOWN");
    cr_assert_eq(tt_tcp_state_parse("close_wait"), TT_TCP_CLOSE_WAIT);
    cr_assert_eq(tt_tcp_state_parse("nope"), -EINVAL);
    cr_assert_eq(tt_tcp_state_parse(NULL), -EINVAL);
}

Test(sockdiag, bad_port)
{
    tt_tcp_counts s, c;
    cr_assert_eq(tt_sockdiag_count(0, &s, &c), -EINVAL);
    cr_assert_eq(tt_sockdiag_count(70000, &s, &c), -EINVAL);
    cr_assert_eq(tt_sockdiag_foreach(70000, TT_TCP_ALL, NULL, NULL), -EINVAL);
}

static void listen_and_established(int family)
{
    int port, cfd, sfd;
    int lfd = listener(family, &port);
    tt_tcp_counts s, c;
    cr_assert_eq(tt_sockdiag_count(port, &s, &c), 0);
    cr_assert_eq(s.n[TT_TCP_LISTEN], 1);
    cr_assert_eq(s.total, 1);
    cr_assert_eq(c.total, 0);
    pair(lfd, &cfd, &sfd);
    cr_assert_eq(tt_sockdiag_count(port, &s, &c), 0);
    cr_assert_eq(s.n[TT_TCP_ESTABLISHED], 1);
    cr_assert_eq(c.n[TT_TCP_ESTABLISHED], 1);
    cr_assert_eq(s.total, 2);
    cr_assert_eq(c.total, 1);
    /* NULL sides are allowed. */
    cr_assert_eq(tt_sockdiag_count(port, NULL, &c), 0);
    cr_assert_eq(c.n[TT_TCP_ESTABLISHED], 1);
    close(cfd);
    close(sfd);
    close(lfd);
}

Test(sockdiag, listen_and_established_v4)
{
    listen_and_established(AF_INET);
}

Test(sockdiag, listen_and_established_v6)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    cr_assert(fd >= 0, "IPv6 sockets are required for this test");
    close(fd);
    listen_and_established(AF_INET6);
}

Test(sockdiag, server_closes_first_time_wait_on_server)
{
    int port, cfd, sfd;
    int lfd = listener(AF_INET, &port);
    pair(lfd, &cfd, &sfd);
    close(sfd);                                                 /* server FIN first */
    cr_assert_eq(wait_count(port, 0, TT_TCP_CLOSE_WAIT, 1), 1); /* client got the FIN */
    cr_assert_eq(wait_count(port, 1, TT_TCP_FIN_WAIT2, 1), 1);  /* server waits for its */
    close(cfd);                                                 /* client closes too */
    cr_assert_eq(wait_count(port, 1, TT_TCP_TIME_WAIT, 1), 1);  /* server holds TIME_WAIT */
    cr_assert_eq(wait_count(port, 0, TT_TCP_TIME_WAIT, 0), 0);
    close(lfd);
}

Test(sockdiag, client_closes_first_time_wait_on_client)
{
    int port, cfd, sfd;
    int lfd = listener(AF_INET, &port);
    pair(lfd, &cfd, &sfd);
    close(cfd);
    cr_assert_eq(wait_count(port, 1, TT_TCP_CLOSE_WAIT, 1), 1); /* server has not closed yet */
    close(sfd);
    cr_assert_eq(wait_count(port, 0, TT_TCP_TIME_WAIT, 1), 1);
    cr_assert_eq(wait_count(port, 1, TT_TCP_TIME_WAIT, 0), 0);
    cr_assert_eq(wait_count(port, 1, TT_TCP_CLOSE_WAIT, 0), 0);
    close(lfd);
}

struct find_ctx {
    int port, client_port, found, server_seen, client_seen;
    uint32_t inode;
};

static int find_cb(const tt_sockinfo *si, void *arg)
{
    struct find_ctx *f = arg;
    cr_assert(si->side == TT_SIDE_SERVER || si->side == TT_SIDE_CLIENT);
    if (si->side == TT_SIDE_SERVER) {
        cr_assert_eq(si->local_port, f->port);
        f->server_seen++;
    } else {
        cr_assert_eq(si->remote_port, f->port);
        f->client_seen++;
    }
    if (si->side == TT_SIDE_SERVER && si->state == TT_TCP_ESTABLISHED &&
        si->remote_port == f->client_port) {
        const struct sockaddr_in *l = (const struct sockaddr_in *)&si->local.ss;
        const struct sockaddr_in *r = (const struct sockaddr_in *)&si->remote.ss;
        cr_assert_eq(si->family, AF_INET);
        cr_assert_eq(l->sin_family, AF_INET);
        cr_assert_eq(ntohs(l->sin_port), f->port);
        cr_assert_eq(ntohs(r->sin_port), f->client_port);
        cr_assert_eq(ntohl(l->sin_addr.s_addr), INADDR_LOOPBACK);
        cr_assert_eq(ntohl(r->sin_addr.s_addr), INADDR_LOOPBACK);
        f->inode = si->inode;
        f->found++;
    }
    return 0;
}

static int stop_cb(const tt_sockinfo *si, void *arg)
{
    (void)si;
    ++*(int *)arg;
    return 42;
}

Test(sockdiag, foreach_reports_the_four_tuple)
{
    int port, cfd, sfd;
    int lfd = listener(AF_INET, &port);
    pair(lfd, &cfd, &sfd);
    struct sockaddr_in ca;
    socklen_t len = sizeof ca;
    cr_assert(getsockname(cfd, (struct sockaddr *)&ca, &len) == 0);
    struct find_ctx f = {.port = port, .client_port = ntohs(ca.sin_port)};
    int n = tt_sockdiag_foreach(port, TT_TCP_ALL, find_cb, &f);
    cr_assert_eq(n, 3, "listener + accepted + client, got %d", n);
    cr_assert_eq(f.found, 1);
    cr_assert_eq(f.server_seen, 2);
    cr_assert_eq(f.client_seen, 1);
    cr_assert_neq(f.inode, 0);

    /* A state mask selects: only LISTEN. */
    cr_assert_eq(tt_sockdiag_foreach(port, TT_TCP_BIT(TT_TCP_LISTEN), NULL, NULL), 1);
    /* Nonzero from the callback stops the walk and is returned. */
    int calls = 0;
    cr_assert_eq(tt_sockdiag_foreach(port, TT_TCP_ALL, stop_cb, &calls), 42);
    cr_assert_eq(calls, 1);
    /* Port 0: every socket, which includes ours. */
    cr_assert_geq(tt_sockdiag_foreach(0, TT_TCP_ALL, NULL, NULL), 3);
    close(cfd);
    close(sfd);
    close(lfd);
}
