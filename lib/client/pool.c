/* pool.c — the client's pool, in the spirit of nginx's upstream keepalive module: routes, the
 * connections with their one state-transition function, idle lists (most recently used first)
 * and the lease queue. Two entry points carry the pooling: tt__pool_get (a cached connection)
 * and tt__pool_free (give it back: the reuse decision is made here, at free time).
 *
 * Memory: a route and a connection are malloc'd when created (never per request); a
 * connection's read buffer comes from the client's buffer pool and goes back while it idles.
 * The engine's callbacks (readiness, expiry) come from tt_client: this file never calls it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client_int.h"
#include "common/api.h"

tt__route *tt__pool_route_scheme(tt_client *c, const char *host, int port, int tls)
{
    tls = tls != 0;
    tt__list *n, *tmp;
    tt__list_each(&c->routes, n, tmp)
    {
        tt__route *rt = tt__list_entry(n, tt__route, link);
        if (rt->port == port && rt->tls == tls && !strcasecmp(rt->host, host)) return rt;
    }
    /* https: a session pool as large as the connections the route may open at once */
    int cap = c->o.max_per_route > 0 && c->o.max_per_route < TT__C_TLS_SESSIONS
                  ? c->o.max_per_route
                  : TT__C_TLS_SESSIONS;
    if (!tls) cap = 0;
    tt__route *rt = calloc(1, sizeof *rt + (size_t)cap * sizeof rt->sess[0]);
    if (!rt) return NULL;
    rt->sesscap = cap;
    snprintf(rt->host, sizeof rt->host, "%s", host);
    rt->port = port;
    rt->tls = tls;
    int v6 = strchr(host, ':') != NULL;
    if (port == (tls ? 443 : 80)) /* the scheme's default port is left out of Host */
        snprintf(rt->hosthdr, sizeof rt->hosthdr, v6 ? "[%s]" : "%s", host);
    else
        snprintf(rt->hosthdr, sizeof rt->hosthdr, v6 ? "[%s]:%d" : "%s:%d", host, port);
    tt__list_init(&rt->idle);
    tt__list_push_front(&c->routes, &rt->link);
    return rt;
}

void tt__pool_free_routes(tt_client *c)
{
    tt__list *n;
    while ((n = tt__list_pop_front(&c->routes))) {
        tt__route *rt = tt__list_entry(n, tt__route, link);
        while (rt->nsess > 0)
            tt_tls_session_free(rt->sess[--rt->nsess]);
        free(rt);
    }
}

/* The route counter of connections in state s (NULL for NEW and CLOSED). */
static int *state_count(tt__route *rt, int s)
{
    switch (s) {
    case TT_CLIENT_CONN_CONNECTING:
    case TT_CLIENT_CONN_HANDSHAKING: return &rt->nconnecting;
    case TT_CLIENT_CONN_BUSY: return &rt->nbusy;
    case TT_CLIENT_CONN_IDLE: return &rt->nidle;
    default: return NULL;
    }
}

void tt__conn_set_state(tt__conn *k, int to)
{
    int from = k->state;
    if (from == to) return;
    int *cnt = state_count(k->rt, from);
    if (cnt) (*cnt)--;
    if (from == TT_CLIENT_CONN_IDLE) tt__list_remove(&k->idle_link);
    cnt = state_count(k->rt, to);
    if (cnt) (*cnt)++;
    if (to == TT_CLIENT_CONN_IDLE) tt__list_push_front(&k->rt->idle, &k->idle_link);
    k->state = to;
    tt__trace(k->c, "conn", k->id, from, to);
}

tt__conn *tt__pool_connect(tt_client *c, tt__route *rt, const tt_addr *a, int *err)
{
    tt__conn *k = calloc(1, sizeof *k);
    if (!k) {
        *err = -ENOMEM;
        return NULL;
    }
    int fd = tt_connect_start(a);
    if (fd < 0) {
        free(k);
        *err = fd;
        return NULL;
    }
    if (!c->o.no_nodelay) tt_sock_nodelay(fd, 1);
    if (c->o.tcp_keepalive.idle_s || c->o.tcp_keepalive.intvl_s || c->o.tcp_keepalive.cnt)
        tt_sock_keepalive(fd, &c->o.tcp_keepalive);
    int r = tt_stream_open(&k->s, c->loop, fd, 0, c->conn_cb, k);
    if (r < 0) {
        k->s.io.fd = fd; /* not registered: the stream only closes it */
        tt_stream_close(&k->s, c->loop, 0);
        free(k);
        *err = r;
        return NULL;
    }
    k->c = c;
    k->rt = rt;
    k->addr = *a;
    k->id = ++c->next_id;
    k->ka_max = -1;
    k->ka_timeout = -1;
    k->created = tt_loop_now(c->loop);
    k->lifetime_at = tt__client_lifetime(&c->o, k->created, &c->rng);
    tt__list_init(&k->idle_link);
    tt__list_init(&k->pq);
    tt_timer_init(&k->timer, c->expire_cb);
    tt__list_push_front(&c->all, &k->all_link);
    c->total++;
    tt__conn_set_state(k, TT_CLIENT_CONN_CONNECTING);
    return k;
}

void tt__pool_close(tt__conn *k, int reason)
{
    tt_client *c = k->c;
    /* A TLS connection that carried requests ends with close_notify, unless it failed. */
    if ((k->state == TT_CLIENT_CONN_BUSY || k->state == TT_CLIENT_CONN_IDLE) &&
        reason != TT_EVICT_ERROR && reason != TT_EVICT_PEER_CLOSED && tt_stream_is_tls(&k->s))
        tt_stream_shutdown(&k->s);
    tt__conn_set_state(k, TT_CLIENT_CONN_CLOSED);
    c->st.evictions[reason]++;
    TT__VLOG(c, "* Closing connection #%u (%s, %u request%s)", k->id, tt_evict_reason_name(reason),
             k->requests, k->requests == 1 ? "" : "s");
    tt_timer_stop(c->loop, &k->timer);
    tt_stream_close(&k->s, c->loop, 0);
    tt_buf_release(&k->rb, c->bp);
    tt__list_remove(&k->all_link);
    c->total--;
    free(k);
}

tt__conn *tt__pool_get(tt_client *c, tt__route *rt)
{
    uint64_t now = tt_loop_now(c->loop);
    tt__list *n;
    while ((n = tt__list_first(&rt->idle))) {
        tt__conn *k = tt__list_entry(n, tt__conn, idle_link);
        if (tt_timer_armed(&k->timer) && now >= k->timer.at) {
            tt__pool_close(k, k->expire_reason);
            continue;
        }
        if (k->retired) { /* its address left the answer of an inline lookup */
            tt__pool_close(k, TT_EVICT_DNS);
            continue;
        }
        tt_timer_stop(c->loop, &k->timer);
        tt__conn_set_state(k, TT_CLIENT_CONN_BUSY);
        return k;
    }
    return NULL;
}

int tt__pool_free(tt__conn *k, tt__reuse_in *in, int *reason)
{
    tt_client *c = k->c;
    tt__route *rt = k->rt;
    uint64_t now = tt_loop_now(c->loop);
    in->idle_full = rt->nidle >= c->o.max_idle_per_route;
    int closeit = tt__client_reuse(in, reason);
    if (!closeit) {
        tt__expiry_in e = {now, c->o.idle_timeout_ms > 0 ? (uint64_t)c->o.idle_timeout_ms : 0,
                           k->ka_timeout, k->lifetime_at, rt->learned_idle_ms};
        int why;
        uint64_t at = tt__client_expiry(&e, &why);
        if (at <= now) {
            closeit = 1;
            *reason = why;
        } else {
            k->expire_reason = why;
            if (at != UINT64_MAX) tt_timer_start_at(c->loop, &k->timer, at);
        }
    }
    if (closeit) {
        tt__pool_close(k, *reason);
        return 0;
    }
    k->proven = 1;
    tt__conn_set_state(k, TT_CLIENT_CONN_IDLE);
    tt_buf_release_if_empty(&k->rb, c->bp);
    /* The socket may hold more bytes: look once (a stray byte or FIN evicts it). */
    if (tt_stream_can_read(&k->s)) tt__pool_idle_check(k);
    return 1;
}

int tt__pool_idle_check(tt__conn *k)
{
    tt_client *c = k->c;
    int fin = tt_stream_peer_fin(&k->s);
    char b;
    /* Any byte evicts an idle connection, so reading it (not peeking) loses nothing. */
    ssize_t n = tt_stream_read(&k->s, &b, 1);
    if (n == -EAGAIN && !fin) return 0; /* spurious wake-up: still healthy */
    uint64_t now = tt_loop_now(c->loop);
    if (n <= 0 && k->ka_timeout < 0) {
        /* The server closed an idle connection on its own: learn its idle-close time. */
        k->rt->learned_idle_ms = tt__client_learn(k->rt->learned_idle_ms, now - k->last_used);
    }
    TT__VLOG(c, "* Connection #%u %s while idle after %llu ms", k->id,
             n > 0 ? "got unsolicited bytes" : "closed by the server",
             (unsigned long long)(now - k->last_used));
    tt__pool_close(k, TT_EVICT_PEER_CLOSED);
    return 1;
}

int tt__pool_make_room(tt_client *c)
{
    tt__conn *victim = NULL;
    tt__list *n, *tmp;
    tt__list_each(&c->routes, n, tmp)
    {
        tt__route *rt = tt__list_entry(n, tt__route, link);
        tt__list *l = tt__list_last(&rt->idle);
        if (!l) continue;
        tt__conn *k = tt__list_entry(l, tt__conn, idle_link);
        if (!victim || k->last_used < victim->last_used) victim = k;
    }
    if (!victim) return 0;
    tt__pool_close(victim, TT_EVICT_POOL_FULL);
    return 1;
}

/* A busy connection of x's route that x can be pipelined on: the server kept a connection
 * alive before (HTTP/1.1 persistent), nothing wrong seen, depth below the limit. */
tt__conn *tt__pool_pipe_conn(tt_client *c, tt_exchange *x)
{
    if (!tt__client_pipelinable(&c->o, x) || tt__xp(x)->fresh_only) return NULL;
    tt__conn *best = NULL;
    tt__list *n, *tmp;
    tt__list_each(&c->all, n, tmp)
    {
        tt__conn *k = tt__list_entry(n, tt__conn, all_link);
        if (k->rt != tt__xp(x)->route || k->state != TT_CLIENT_CONN_BUSY || !k->proven ||
            tt_stream_peer_fin(&k->s) || k->retired || !k->x ||
            !tt__client_pipelinable(&c->o, k->x) || k->pn + 2 > c->o.pipelining ||
            k->pn >= TT__C_MAX_PIPELINE || k->ka_max == 0 ||
            (k->resp.flags & TT_HTTP1_F_CONN_CLOSE))
            continue;
        if (!best || k->pn < best->pn) best = k;
    }
    return best;
}

int tt__pool_can_go(tt_client *c, tt_exchange *x)
{
    tt__xpriv *p = tt__xp(x);
    tt__route *rt = p->route;
    if (rt->resolving) return 0;
    if (rt->nidle && !p->fresh_only) return 1;
    int rcount = rt->nbusy + rt->nconnecting + rt->nidle;
    if (rcount >= c->o.max_per_route && !(p->fresh_only && rt->nidle))
        return tt__pool_pipe_conn(c, x) != NULL;
    if (c->total < c->o.max_total) return 1;
    tt__list *n, *tmp;
    tt__list_each(&c->routes, n, tmp)
    {
        if (tt__list_entry(n, tt__route, link)->nidle) return 1;
    }
    return 0;
}

void tt__queue_push(tt_client *c, tt_exchange *x)
{
    tt__queue_insert_before(c, x, NULL);
}

void tt__queue_insert_before(tt_client *c, tt_exchange *x, tt_exchange *nx)
{
    /* Appending to the list "headed" by nx's node inserts just before nx. */
    tt__list_push_back(nx ? &tt__xp(nx)->qlink : &c->queue, &tt__xp(x)->qlink);
    tt__xp(x)->route->npending++;
}

void tt__queue_remove(tt_client *c, tt_exchange *x)
{
    (void)c;
    tt__xpriv *p = tt__xp(x);
    if (!tt__list_linked(&p->qlink)) return;
    tt__list_remove(&p->qlink);
    p->route->npending--;
}

tt_exchange *tt__queue_first(tt_client *c)
{
    tt__list *n = tt__list_first(&c->queue);
    return n ? TT__X_OF(n, qlink) : NULL;
}

tt_exchange *tt__queue_next(tt_client *c, tt_exchange *x)
{
    tt__list *n = tt__xp(x)->qlink.next;
    return n == &c->queue ? NULL : TT__X_OF(n, qlink);
}
