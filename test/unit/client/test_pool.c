/* test_pool.c — the pool (lib/client/pool.c) against an in-process server on the same loop:
 * get and free (warmest-first reuse, the reuse decision at free time), idle eviction on FIN,
 * the FIFO lease queue, lease timeout, async completion. The pure decisions are in
 * test_policy.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_int.h"
#include "tether.h"

/* ---- the pool against a tiny server driven from the test (blocking accept/recv on a thread
 * would need threads; the server here uses plain sockets between client calls) ---- */

static int listener(int *port)
{
    tt_addr a;
    tt_addr_parse(&a, "127.0.0.1:0");
    int fd = tt_listen(&a, NULL);
    cr_assert_geq(fd, 0);
    tt_addr b;
    tt_sock_local(fd, &b);
    *port = tt_addr_port(&b);
    return fd;
}

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* Accept (if needed) and answer one request on *cfd, non-blocking friendly: called after the
 * client wrote its request (the client waits in tt_client_wait). */
static int serve_one(int lfd, int *cfd, tt_client *c)
{
    for (int i = 0; i < 200 && *cfd < 0; i++) {
        *cfd = tt_accept(lfd, NULL);
        if (*cfd < 0) tt_client_wait(c, 5);
    }
    char buf[4096];
    for (int i = 0; i < 200; i++) {
        ssize_t n = recv(*cfd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) return (int)send(*cfd, RESP, sizeof RESP - 1, 0);
        if (n == 0) return -1;
        tt_client_wait(c, 5);
    }
    return -1;
}

static void on_done(tt_exchange *x)
{
    *(int *)x->data += 1;
}

Test(pool, async_reuse_and_idle_fin_eviction)
{
    int port, cfd = -1;
    int lfd = listener(&port);
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    int done = 0;
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    x.on_done = on_done;
    x.data = &done;
    cr_assert_eq(tt_client_start(c, &x), 0);
    cr_assert_eq(done, 0); /* never completes inside start */
    cr_assert_gt(serve_one(lfd, &cfd, c), 0);
    for (int i = 0; i < 200 && !done; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(done, 1);
    cr_assert_eq(x.error, 0);
    cr_assert_eq(x.status, 200);
    cr_assert_eq(x.resp_body_len, 2);
    cr_assert(x.conn_kept, "closed: %s", tt_evict_reason_name(x.close_reason));
    cr_assert_not(x.reused);

    /* second request reuses the warm connection */
    cr_assert_eq(tt_client_start(c, &x), 0);
    cr_assert_gt(serve_one(lfd, &cfd, c), 0);
    for (int i = 0; i < 200 && done < 2; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(done, 2);
    cr_assert(x.reused);

    tt_client_stats st;
    tt_client_get_stats(c, &st);
    cr_assert_eq(st.idle, 1);
    /* the server closes the idle connection: the loop evicts it without any request */
    close(cfd);
    for (int i = 0; i < 100 && st.idle; i++) {
        tt_client_wait(c, 5);
        tt_client_get_stats(c, &st);
    }
    cr_assert_eq(st.idle, 0);
    cr_assert_eq(st.evictions[TT_EVICT_PEER_CLOSED], 1);
    tt_route_stats rs;
    cr_assert_eq(tt_client_route_stats(c, &rs, 1), 1);
    cr_assert_gt(rs.learned_idle_ms + 1, 0);
    cr_assert_eq(rs.reused, 1);
    tt_exchange_cleanup(&x);
    tt_client_free(c);
    close(lfd);
}

Test(pool, lease_timeout_when_pool_is_full)
{
    int port;
    int lfd = listener(&port); /* accepts in the kernel backlog; never answers */
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.max_per_route = 1;
    o.max_total = 1;
    o.lease_timeout_ms = 50;
    o.head_timeout_ms = 300;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    int done = 0;
    tt_exchange a, b;
    tt_exchange_init(&a);
    tt_exchange_init(&b);
    a.url = b.url = url;
    a.on_done = b.on_done = on_done;
    a.data = b.data = &done;
    cr_assert_eq(tt_client_start(c, &a), 0);
    cr_assert_eq(tt_client_start(c, &b), 0);
    for (int i = 0; i < 200 && done < 2; i++)
        tt_client_wait(c, 10);
    cr_assert_eq(done, 2);
    cr_assert_eq(b.error, -ETIMEDOUT);
    cr_assert_str_eq(b.error_what, "lease timeout");
    cr_assert_eq(b.sent_state, TT_NOT_SENT);
    cr_assert_eq(a.error, -ETIMEDOUT);
    cr_assert_str_eq(a.error_what, "response timeout");
    cr_assert_eq(a.sent_state, TT_MAYBE_PROCESSED);
    tt_exchange_cleanup(&a);
    tt_exchange_cleanup(&b);
    tt_client_free(c);
    close(lfd);
}

Test(pool, stats_json_has_the_cli_fields)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    char buf[4096];
    size_t n = tt_client_stats_json(c, buf, sizeof buf);
    cr_assert_lt(n, sizeof buf);
    const char *keys[] = {
        "\"requests\":0", "\"connections_opened\":0", "\"connections_reused\":0", "\"retries\":0",
        "\"errors\":0",   "\"peer_closed\":0"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(buf, keys[i]), "%s missing in %s", keys[i], buf);
    tt_client_free(c);
}

static char leak_line[512];
static void capture(void *data, const char *line)
{
    if (strstr(line, "leased for")) snprintf(leak_line, sizeof leak_line, "%s", line);
}

Test(pool, leak_warning_names_where_the_lease_was_taken)
{
    int port;
    int lfd = listener(&port); /* never answers */
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.leak_warn_ms = 30;
    o.head_timeout_ms = 200;
    o.log = capture;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    int line = __LINE__ + 1;
    int r = tt_client_request(c, &x);
    cr_assert_eq(r, -ETIMEDOUT);
    char where[64];
    snprintf(where, sizeof where, "test_pool.c:%d", line);
    cr_assert(strstr(leak_line, where), "leak warning '%s' lacks %s", leak_line, where);
    cr_assert(strstr(leak_line, "/slow"));
    tt_exchange_cleanup(&x);
    tt_client_free(c);
    close(lfd);
}

Test(pool, async_client_on_caller_loop_resolves_names_off_loop)
{
    int port, cfd = -1;
    int lfd = listener(&port);
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    tt_client *c;
    cr_assert_eq(tt_client_new_on(&c, loop, NULL), 0);
    cr_assert_eq(tt_client_loop(c), loop);
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d/", port);
    int done = 0;
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    x.on_done = on_done;
    x.data = &done;
    cr_assert_eq(tt_client_start(c, &x), 0);
    /* the name is resolved in a helper thread; the loop keeps running meanwhile */
    for (int i = 0; i < 400 && cfd < 0; i++) {
        tt_loop_run_once(loop, 5);
        cfd = tt_accept(lfd, NULL);
    }
    if (cfd < 0) { /* localhost may resolve to ::1 first: fall through on error */
        for (int i = 0; i < 400 && !done; i++)
            tt_loop_run_once(loop, 5);
        cr_assert(done);
    } else {
        char buf[1024];
        for (int i = 0; i < 200; i++) {
            if (recv(cfd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
                send(cfd, RESP, sizeof RESP - 1, 0);
                break;
            }
            tt_loop_run_once(loop, 5);
        }
        for (int i = 0; i < 400 && !done; i++)
            tt_loop_run_once(loop, 5);
        cr_assert_eq(done, 1);
        cr_assert_eq(x.error, 0);
        cr_assert_eq(x.status, 200);
        close(cfd);
    }
    tt_exchange_cleanup(&x);
    tt_client_free(c);
    tt_loop_free(loop);
    close(lfd);
}

Test(pool, unresolvable_host_fails_with_resolve)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = "http://nonexistent.invalid/";
    cr_assert_lt(tt_client_request(c, &x), 0);
    cr_assert_str_eq(x.error_what, "resolve");
    cr_assert_eq(x.sent_state, TT_NOT_SENT);
    tt_exchange_cleanup(&x);
    tt_client_free(c);
}

static int stop_body(tt_exchange *x, const char *p, size_t n)
{
    return -1; /* abort (1 is TT_BODY_PAUSE) */
}

Test(pool, aborted_body_is_drained_and_connection_kept)
{
    int port, cfd = -1;
    int lfd = listener(&port);
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    int done = 0;
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = url;
    x.on_done = on_done;
    x.data = &done;
    x.on_body = stop_body;
    cr_assert_eq(tt_client_start(c, &x), 0);
    for (int i = 0; i < 200 && cfd < 0; i++) {
        tt_client_wait(c, 5);
        cfd = tt_accept(lfd, NULL);
    }
    cr_assert_geq(cfd, 0);
    char buf[4096];
    for (int i = 0; i < 200 && recv(cfd, buf, sizeof buf, MSG_DONTWAIT) <= 0; i++)
        tt_client_wait(c, 5);
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    send(cfd, head, sizeof head - 1, 0);
    memset(buf, 'b', 1000);
    send(cfd, buf, 1000, 0);
    for (int i = 0; i < 200 && !done; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(done, 1);
    cr_assert_eq(x.error, -ECANCELED);
    cr_assert(x.conn_kept, "closed: %s", tt_evict_reason_name(x.close_reason));
    close(cfd);
    tt_exchange_cleanup(&x);
    tt_client_free(c);
    close(lfd);
}

static int order[8], norder;
static void on_done_order(tt_exchange *x)
{
    order[norder++] = *(int *)x->data;
}

/* Answer one request on lfd (accepting a new connection when *cfd < 0), running c's loop. */
static int answer(int lfd, int *cfd, tt_client *c)
{
    return serve_one(lfd, cfd, c);
}

Test(pool, fair_fifo_across_routes)
{
    int p1, p2, c1 = -1, c2 = -1;
    int l1 = listener(&p1), l2 = listener(&p2);
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.max_per_route = 1;
    o.max_total = 1;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    char u1[64], u2[64];
    snprintf(u1, sizeof u1, "http://127.0.0.1:%d/a", p1);
    snprintf(u2, sizeof u2, "http://127.0.0.1:%d/b", p2);
    tt_exchange a, b, a2;
    int ida = 1, idb = 2, ida2 = 3;
    tt_exchange *xs[] = {&a, &b, &a2};
    int *ids[] = {&ida, &idb, &ida2};
    const char *urls[] = {u1, u2, u1};
    norder = 0;
    for (int i = 0; i < 3; i++) {
        tt_exchange_init(xs[i]);
        xs[i]->url = urls[i];
        xs[i]->on_done = on_done_order;
        xs[i]->data = ids[i];
        cr_assert_eq(tt_client_start(c, xs[i]), 0);
    }
    cr_assert_gt(answer(l1, &c1, c), 0); /* a */
    for (int i = 0; i < 100 && norder < 1; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(norder, 1);
    cr_assert_eq(order[0], 1);
    /* b was queued before a2: it gets the single slot although a2 could reuse a's connection */
    cr_assert_gt(answer(l2, &c2, c), 0);
    for (int i = 0; i < 100 && norder < 2; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(norder, 2);
    cr_assert_eq(order[1], 2);
    tt_client_stats st;
    tt_client_get_stats(c, &st);
    cr_assert_geq(st.evictions[TT_EVICT_POOL_FULL], 1);
    /* then a2, on a new connection to route 1 (a's was closed to make room) */
    close(c1);
    c1 = -1;
    cr_assert_gt(answer(l1, &c1, c), 0);
    for (int i = 0; i < 100 && norder < 3; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(norder, 3);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(a2.error, 0);
    cr_assert_not(a2.reused);
    for (int i = 0; i < 3; i++)
        tt_exchange_cleanup(xs[i]);
    tt_client_free(c);
    close(c1);
    close(c2);
    close(l1);
    close(l2);
}

/* ---- DNS: a connection whose address left the answer is retired ---- */

static char hosts_path[64];

/* Give this test process its own /etc/hosts (a private mount namespace: needs root, as the
 * netns tests do). */
static void private_hosts(const char *content)
{
    if (!hosts_path[0]) {
        cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare(CLONE_NEWNS): %s (run as root)",
                     strerror(errno));
        cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
        snprintf(hosts_path, sizeof hosts_path, "/tmp/tether-hosts-%d", (int)getpid());
        FILE *f = fopen(hosts_path, "w");
        cr_assert_not_null(f);
        fclose(f);
        cr_assert_eq(mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL), 0, "%s",
                     strerror(errno));
    }
    FILE *f = fopen(hosts_path, "w"); /* rewritten in place: the bind mount follows the inode */
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
}

/* Answer one request on whichever of the listeners gets it; returns the listener index. */
static int serve_any(int *lfd, int *cfd, int n, tt_client *c)
{
    char buf[4096];
    for (int i = 0; i < 400; i++) {
        for (int j = 0; j < n; j++) {
            if (cfd[j] < 0) cfd[j] = tt_accept(lfd[j], NULL);
            if (cfd[j] < 0) continue;
            if (recv(cfd[j], buf, sizeof buf, MSG_DONTWAIT) > 0) {
                send(cfd[j], RESP, sizeof RESP - 1, 0);
                return j;
            }
        }
        tt_client_wait(c, 5);
    }
    return -1;
}

Test(pool, connection_to_an_address_that_left_dns_is_retired)
{
    int lfd[2], cfd[2] = {-1, -1}, port;
    lfd[0] = listener(&port);
    char a2[32];
    snprintf(a2, sizeof a2, "127.0.0.2:%d", port);
    tt_addr addr2;
    tt_addr_parse(&addr2, a2);
    lfd[1] = tt_listen(&addr2, NULL);
    cr_assert_geq(lfd[1], 0);
    private_hosts("127.0.0.1 tether-dns.test\n");

    tt_client_opts o;
    tt_client_opts_default(&o);
    o.dns_ttl_ms = 1;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    char url[64];
    snprintf(url, sizeof url, "http://tether-dns.test:%d/", port);
    int done = 0;
    tt_exchange x[4];
    for (int i = 0; i < 4; i++) {
        tt_exchange_init(&x[i]);
        x[i].url = url;
        x[i].on_done = on_done;
        x[i].data = &done;
    }
    /* 1: resolved to 127.0.0.1; the connection goes back to the pool */
    cr_assert_eq(tt_client_start(c, &x[0]), 0);
    cr_assert_eq(serve_any(lfd, cfd, 2, c), 0);
    for (int i = 0; i < 200 && done < 1; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(x[0].status, 200);
    cr_assert(x[0].conn_kept);

    /* the name moves to 127.0.0.2 */
    private_hosts("127.0.0.2 tether-dns.test\n");
    usleep(20 * 1000); /* past dns_ttl_ms */
    /* 2 takes the pooled connection; 3 needs a new one: the lookup retires the old one */
    cr_assert_eq(tt_client_start(c, &x[1]), 0);
    cr_assert_eq(tt_client_start(c, &x[2]), 0);
    int got[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int j = serve_any(lfd, cfd, 2, c);
        cr_assert_geq(j, 0);
        got[j]++;
    }
    cr_assert_eq(got[0], 1, "one request still on the old address");
    cr_assert_eq(got[1], 1, "one request on the new address");
    for (int i = 0; i < 200 && done < 3; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(x[1].status, 200);
    cr_assert_eq(x[2].status, 200);
    cr_assert_not(x[1].conn_kept, "the old connection is retired after its current use");
    cr_assert_eq(x[1].close_reason, TT_EVICT_DNS);
    cr_assert(x[2].conn_kept);

    /* 4: the pool now only has the connection to the new address */
    cr_assert_eq(tt_client_start(c, &x[3]), 0);
    cr_assert_eq(serve_any(lfd, cfd, 2, c), 1);
    for (int i = 0; i < 200 && done < 4; i++)
        tt_client_wait(c, 5);
    cr_assert_eq(x[3].status, 200);
    cr_assert(x[3].reused);
    tt_client_stats st;
    tt_client_get_stats(c, &st);
    cr_assert_eq(st.evictions[TT_EVICT_DNS], 1);
    for (int i = 0; i < 4; i++)
        tt_exchange_cleanup(&x[i]);
    tt_client_free(c);
    for (int j = 0; j < 2; j++) {
        if (cfd[j] >= 0) close(cfd[j]);
        close(lfd[j]);
    }
    unlink(hosts_path);
}

/* ---- get / free, idle eviction and the queue, on pool.c directly ---- */

static void noop_io(tt_loop *loop, tt_io *io, unsigned ev)
{
    (void)loop;
    (void)io;
    (void)ev;
}

/* Open n connections of rt to the listener, accepted into peers[], and mark them busy (as if
 * leased), without the engine: readiness goes to noop_io. */
static void open_busy(tt_client *c, tt__route *rt, int lfd, int port, tt__conn **k, int *peers,
                      int n)
{
    tt_addr a;
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%d", port);
    tt_addr_parse(&a, s);
    c->conn_cb = noop_io;
    for (int i = 0; i < n; i++) {
        int err = 0;
        k[i] = tt__pool_connect(c, rt, &a, &err);
        cr_assert_not_null(k[i], "connect: %d", err);
        peers[i] = -1;
        for (int t = 0; t < 200 && peers[i] < 0; t++) {
            peers[i] = tt_accept(lfd, NULL);
            if (peers[i] < 0) usleep(1000);
        }
        cr_assert_geq(peers[i], 0);
        tt__conn_set_state(k[i], TT_CLIENT_CONN_BUSY);
    }
}

Test(pool, free_decides_reuse_and_get_hands_out_the_warmest)
{
    int port;
    int lfd = listener(&port);
    tt_client_opts o;
    memset(&o, 0, sizeof o);
    o.max_idle_per_route = 2;
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, &o), 0);
    tt__route *rt = tt__pool_route(c, "127.0.0.1", port);
    tt__conn *k[4];
    int peers[4];
    open_busy(c, rt, lfd, port, k, peers, 4);
    cr_assert_eq(rt->nbusy, 4);
    tt__reuse_in ok = {.resp_minor = 1, .body_complete = 1, .ka_max = -1};
    int why = -1;
    tt__reuse_in in = ok;
    cr_assert_eq(tt__pool_free(k[0], &in, &why), 1);
    in = ok;
    cr_assert_eq(tt__pool_free(k[1], &in, &why), 1);
    cr_assert_eq(rt->nidle, 2);
    in = ok; /* a third idle one is over max_idle_per_route */
    cr_assert_eq(tt__pool_free(k[2], &in, &why), 0);
    cr_assert_eq(why, TT_EVICT_POOL_FULL);
    in = ok;
    in.resp_close = 1;
    cr_assert_eq(tt__pool_free(k[3], &in, &why), 0);
    cr_assert_eq(why, TT_EVICT_NOT_REUSABLE);
    cr_assert_eq(c->total, 2);
    cr_assert_eq(tt__pool_get(c, rt), k[1]); /* most recently used first */
    cr_assert_eq(tt__pool_get(c, rt), k[0]);
    cr_assert_null(tt__pool_get(c, rt));
    cr_assert_eq(rt->nbusy, 2);
    cr_assert_eq(rt->nidle, 0);
    /* a retired idle connection is never handed out */
    in = ok;
    cr_assert_eq(tt__pool_free(k[0], &in, &why), 1);
    k[0]->retired = 1;
    cr_assert_null(tt__pool_get(c, rt));
    cr_assert_eq(c->st.evictions[TT_EVICT_DNS], 1);
    for (int i = 0; i < 4; i++)
        close(peers[i]);
    tt_client_free(c);
    close(lfd);
}

Test(pool, idle_check_evicts_on_fin_and_keeps_healthy_ones)
{
    int port;
    int lfd = listener(&port);
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    tt__route *rt = tt__pool_route(c, "127.0.0.1", port);
    tt__conn *k[2];
    int peers[2];
    open_busy(c, rt, lfd, port, k, peers, 2);
    tt__reuse_in ok = {.resp_minor = 1, .body_complete = 1, .ka_max = -1};
    int why;
    for (int i = 0; i < 2; i++) {
        tt__reuse_in in = ok;
        cr_assert_eq(tt__pool_free(k[i], &in, &why), 1);
    }
    cr_assert_eq(tt__pool_idle_check(k[1]), 0); /* nothing there: healthy */
    close(peers[0]);
    for (int i = 0; i < 50 && !tt_stream_can_read(&k[0]->s); i++)
        tt_loop_run_once(tt_client_loop(c), 10);
    cr_assert(tt_stream_can_read(&k[0]->s));
    cr_assert_eq(tt__pool_idle_check(k[0]), 1);
    cr_assert_eq(c->st.evictions[TT_EVICT_PEER_CLOSED], 1);
    cr_assert_eq(rt->nidle, 1);
    close(peers[1]);
    tt_client_free(c);
    close(lfd);
}

Test(pool, lease_queue_is_fifo)
{
    tt_client *c;
    cr_assert_eq(tt_client_new(&c, NULL), 0);
    tt__route *rt = tt__pool_route(c, "example.com", 80);
    tt_exchange x[4];
    for (int i = 0; i < 4; i++) {
        tt_exchange_init(&x[i]);
        tt__xp(&x[i])->route = rt;
        tt__list_init(&tt__xp(&x[i])->qlink);
    }
    tt__queue_push(c, &x[0]);
    tt__queue_push(c, &x[2]);
    tt__queue_insert_before(c, &x[1], &x[2]);
    tt__queue_insert_before(c, &x[3], NULL);
    cr_assert_eq(rt->npending, 4);
    int i = 0;
    for (tt_exchange *q = tt__queue_first(c); q; q = tt__queue_next(c, q), i++)
        cr_assert_eq(q, &x[i]);
    cr_assert_eq(i, 4);
    tt__queue_remove(c, &x[1]);
    tt__queue_remove(c, &x[1]); /* twice: harmless */
    cr_assert_eq(rt->npending, 3);
    cr_assert_eq(tt__queue_next(c, &x[0]), &x[2]);
    for (i = 0; i < 4; i++)
        tt__queue_remove(c, &x[i]);
    cr_assert_null(tt__queue_first(c));
    cr_assert_eq(rt->npending, 0);
    tt_client_free(c);
}
