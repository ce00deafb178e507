/* test_socket.c — addresses, listen/accept/connect on loopback (IPv4 and ::1), socket options,
 * keepalive parsing, RLIMIT_NOFILE. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether/socket.h"

Test(addr, parse_and_format)
{
    tt_addr a;
    char buf[64];
    cr_assert_eq(tt_addr_parse(&a, "127.0.0.1:8080"), 0);
    cr_assert_eq(a.ss.ss_family, AF_INET);
    cr_assert_eq(tt_addr_port(&a), 8080);
    cr_assert_eq(tt_addr_format(&a, buf, sizeof(buf)), strlen("127.0.0.1:8080"));
    cr_assert_str_eq(buf, "127.0.0.1:8080");

    cr_assert_eq(tt_addr_parse(&a, "[::1]:443"), 0);
    cr_assert_eq(a.ss.ss_family, AF_INET6);
    cr_assert_eq(tt_addr_port(&a), 443);
    tt_addr_format(&a, buf, sizeof(buf));
    cr_assert_str_eq(buf, "[::1]:443");

    cr_assert_eq(tt_addr_parse(&a, ":9000"), 0);
    tt_addr_format(&a, buf, sizeof(buf));
    cr_assert_str_eq(buf, "0.0.0.0:9000");

    cr_assert_eq(tt_addr_parse(&a, "[::]:0"), 0);
    cr_assert_eq(tt_addr_port(&a), 0);

    /* truncation keeps a NUL-terminated prefix */
    cr_assert_eq(tt_addr_parse(&a, "10.0.0.1:1"), 0);
    cr_assert_eq(tt_addr_format(&a, buf, 5), 4);
    cr_assert_str_eq(buf, "10.0");
}

Test(addr, parse_rejects_garbage)
{
    tt_addr a;
    static const char *bad[] = {"",           "127.0.0.1",
                                "127.0.0.1:", "127.0.0.1:65536",
                                "1.2.3:80",   "::1:80",
                                "[::1]80",    "[::1]:",
                                "[]:80",      "[1.2.3.4]:80",
                                "host:80",    "1.2.3.4:8x",
                                "1.2.3.4:-1", "[::1]:99999999999999999999",
                                "1.2.3.4: 80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(tt_addr_parse(&a, bad[i]), -EINVAL, "accepted \"%s\"", bad[i]);
    cr_assert_eq(tt_addr_parse(&a, NULL), -EINVAL);
}

Test(addr, resolve)
{
    tt_addr out[4];
    int n = tt_addr_resolve("127.0.0.1", 80, out, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(tt_addr_port(&out[0]), 80);
    n = tt_addr_resolve("::1", 81, out, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].ss.ss_family, AF_INET6);
    n = tt_addr_resolve("[::1]", 82, out, 4);
    cr_assert_eq(n, 1);
    n = tt_addr_resolve("localhost", 8080, out, 4);
    cr_assert(n >= 1, "localhost: %d", n);
    cr_assert_eq(tt_addr_port(&out[0]), 8080);
    cr_assert_eq(tt_addr_resolve("127.0.0.1", 70000, out, 4), -EINVAL);
}

/* Listen on host:0, connect (with timeout), accept, exchange bytes both ways. */
static void roundtrip(const char *listen_text)
{
    tt_addr la, bound;
    cr_assert_eq(tt_addr_parse(&la, listen_text), 0);
    int lfd = tt_listen(&la, NULL);
    cr_assert(lfd >= 0, "listen %s: %s", listen_text, strerror(-lfd));
    cr_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    int on = 0;
    socklen_t ol = sizeof(on);
    cr_assert_eq(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, &ol), 0);
    cr_assert(on);
    cr_assert_eq(tt_sock_local(lfd, &bound), 0);
    cr_assert(tt_addr_port(&bound) > 0);

    cr_assert_eq(tt_accept(lfd, NULL), -EAGAIN);
    int cfd = tt_connect_timeout(&bound, 2000);
    cr_assert(cfd >= 0, "connect: %s", strerror(-cfd));
    cr_assert(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    cr_assert_eq(tt_connect_result(cfd), 0);

    tt_addr peer;
    int sfd = -EAGAIN;
    for (int i = 0; i < 1000 && sfd == -EAGAIN; i++) {
        sfd = tt_accept(lfd, &peer);
        if (sfd == -EAGAIN) usleep(1000);
    }
    cr_assert(sfd >= 0, "accept: %s", strerror(-sfd));
    cr_assert(fcntl(sfd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(sfd, F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(peer.ss.ss_family, bound.ss.ss_family);

    tt_addr cl, sp;
    cr_assert_eq(tt_sock_local(cfd, &cl), 0);
    cr_assert_eq(tt_sock_peer(sfd, &sp), 0);
    cr_assert_eq(tt_addr_port(&cl), tt_addr_port(&sp));
    cr_assert_eq(tt_addr_port(&peer), tt_addr_port(&cl));

    cr_assert_eq(write(cfd, "ping", 4), 4);
    char buf[8];
    ssize_t n = -1;
    for (int i = 0; i < 1000 && n < 0; i++) {
        n = read(sfd, buf, sizeof(buf));
        if (n < 0) usleep(1000);
    }
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    close(sfd);
    close(cfd);
    close(lfd);
}

Test(sock, roundtrip_ipv4)
{
    roundtrip("127.0.0.1:0");
}
Test(sock, roundtrip_ipv6)
{
    roundtrip("[::1]:0");
}

Test(sock, connect_start_then_result)
{
    tt_addr la, bound;
    tt_addr_parse(&la, "127.0.0.1:0");
    int lfd = tt_listen(&la, &(tt_listen_opts){.backlog = 16});
    cr_assert(lfd >= 0);
    tt_sock_local(lfd, &bound);
    int cfd = tt_connect_start(&bound);
    cr_assert(cfd >= 0);
    int r = -EINPROGRESS;
    for (int i = 0; i < 1000 && r == -EINPROGRESS; i++) {
        r = tt_connect_result(cfd);
        if (r == -EINPROGRESS) usleep(1000);
    }
    cr_assert_eq(r, 0);
    close(cfd);
    close(lfd);
}

Test(sock, connect_refused)
{
    /* a port that was just free: bind, learn it, close, connect */
    tt_addr la, bound;
    tt_addr_parse(&la, "127.0.0.1:0");
    int lfd = tt_listen(&la, NULL);
    tt_sock_local(lfd, &bound);
    close(lfd);
    int cfd = tt_connect_timeout(&bound, 2000);
    cr_assert_eq(cfd, -ECONNREFUSED, "got %d", cfd);
}

Test(sock, listen_errors_and_reuseport)
{
    tt_addr la, bound;
    tt_addr_parse(&la, "127.0.0.1:0");
    tt_listen_opts o = {.reuseport = 1};
    int a = tt_listen(&la, &o);
    cr_assert(a >= 0);
    tt_sock_local(a, &bound);
    int on = 0;
    socklen_t ol = sizeof(on);
    getsockopt(a, SOL_SOCKET, SO_REUSEPORT, &on, &ol);
    cr_assert(on);
    int b = tt_listen(&bound, &o); /* a second listener shares the port */
    cr_assert(b >= 0, "reuseport: %s", strerror(-b));
    int c = tt_listen(&bound, NULL); /* without reuseport: taken */
    cr_assert_eq(c, -EADDRINUSE);
    close(a);
    close(b);
    tt_addr v6only;
    tt_addr_parse(&v6only, "[::]:0");
    int d = tt_listen(&v6only, &(tt_listen_opts){.v6only = 1, .defer_accept = 1});
    cr_assert(d >= 0);
    getsockopt(d, IPPROTO_IPV6, IPV6_V6ONLY, &on, &ol);
    cr_assert(on);
    close(d);
}

Test(sock, options)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int v;
    socklen_t l = sizeof(v);
    cr_assert_eq(tt_sock_nodelay(fd, 1), 0);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l);
    cr_assert(v);
    cr_assert_eq(tt_sock_nodelay(fd, 0), 0);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l);
    cr_assert(!v);

    tt_keepalive ka = {.idle_s = 7, .intvl_s = 3, .cnt = 4};
    cr_assert_eq(tt_sock_keepalive(fd, &ka), 0);
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l);
    cr_assert(v);
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &l);
    cr_assert_eq(v, 7);
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &l);
    cr_assert_eq(v, 3);
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &l);
    cr_assert_eq(v, 4);
    cr_assert_eq(tt_sock_keepalive(fd, NULL), 0);
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l);
    cr_assert(!v);

    cr_assert_eq(tt_sock_linger_reset(fd), 0);
    struct linger lg;
    socklen_t ll = sizeof(lg);
    getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &ll);
    cr_assert_eq(lg.l_onoff, 1);
    cr_assert_eq(lg.l_linger, 0);
    close(fd);
    cr_assert_eq(tt_sock_nodelay(fd, 1), -EBADF);
}

Test(sock, keepalive_parse)
{
    tt_keepalive ka = {1, 1, 1};
    cr_assert_eq(tt_keepalive_parse(&ka, "60:10:5"), 0);
    cr_assert_eq(ka.idle_s, 60);
    cr_assert_eq(ka.intvl_s, 10);
    cr_assert_eq(ka.cnt, 5);
    cr_assert_eq(tt_keepalive_parse(&ka, "off"), 0);
    cr_assert_eq(ka.idle_s + ka.intvl_s + ka.cnt, 0);
    ka.idle_s = 9;
    cr_assert_eq(tt_keepalive_parse(&ka, "0"), 0);
    cr_assert_eq(ka.idle_s, 0);
    static const char *bad[] = {"",       "60",       "60:10",           "60:10:5:1",
                                "a:b:c",  "0:10:5",   "60:10:128",       "60::5",
                                "-1:1:1", "60:10:5x", "99999999999:1:1", NULL};
    for (int i = 0; bad[i]; i++) {
        ka.idle_s = 42;
        cr_assert_eq(tt_keepalive_parse(&ka, bad[i]), -EINVAL, "accepted \"%s\"", bad[i]);
        cr_assert_eq(ka.idle_s, 42, "modified on error");
    }
    cr_assert_eq(tt_keepalive_parse(&ka, NULL), -EINVAL);
}

Test(sock, raise_nofile)
{
    struct rlimit before;
    getrlimit(RLIMIT_NOFILE, &before);
    long n = tt_raise_nofile();
    cr_assert(n > 0, "%ld", n);
    struct rlimit after;
    getrlimit(RLIMIT_NOFILE, &after);
    cr_assert(after.rlim_cur >= before.rlim_cur);
    cr_assert_eq((long)after.rlim_cur, n);
    if (after.rlim_max != RLIM_INFINITY) cr_assert_eq(after.rlim_cur, after.rlim_max);
}

/* unix:PATH addresses: parse, format, listen (a stale socket file is replaced, a live one is
 * EADDRINUSE) and connect. */
Test(sock, unix_domain)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tt-sock-%d.sock", (int)getpid());
    char text[80], out[96];
    snprintf(text, sizeof text, "unix:%s", path);
    tt_addr a;
    cr_assert_eq(tt_addr_parse(&a, text), 0);
    cr_assert_eq(a.ss.ss_family, AF_UNIX);
    tt_addr_format(&a, out, sizeof out);
    cr_assert_str_eq(out, text);
    cr_assert_eq(tt_addr_port(&a), 0);
    cr_assert_eq(tt_addr_parse(&a, "unix:"), -EINVAL);
    cr_assert_eq(tt_addr_parse(&a, text), 0);
    int l1 = tt_listen(&a, NULL);
    cr_assert_geq(l1, 0, "%s", strerror(-l1));
    cr_assert_eq(tt_listen(&a, NULL), -EADDRINUSE); /* someone listens there */
    int c = tt_connect_timeout(&a, 1000);
    cr_assert_geq(c, 0, "%s", strerror(-c));
    close(c);
    close(l1); /* the file stays, nobody listens: the next listen replaces it */
    int l2 = tt_listen(&a, NULL);
    cr_assert_geq(l2, 0, "%s", strerror(-l2));
    close(l2);
    unlink(path);
}

/* tt_port_free sees a listener even when it shares its port by SO_REUSEPORT. */
Test(sock, port_free_probe)
{
    tt_addr a;
    cr_assert_eq(tt_addr_parse(&a, "127.0.0.1:0"), 0);
    tt_listen_opts lo = {.reuseport = 1};
    int l = tt_listen(&a, &lo);
    cr_assert_geq(l, 0);
    tt_addr bound;
    cr_assert_eq(tt_sock_local(l, &bound), 0);
    cr_assert_eq(tt_port_free(&bound), -EADDRINUSE);
    int l2 = tt_listen(&bound, &lo); /* what tether serve used to do silently */
    cr_assert_geq(l2, 0);
    close(l2);
    close(l);
    cr_assert_eq(tt_port_free(&bound), 0);
}
