/* resolve.c — resolving a route's host: numeric addresses and clients with their own loop at
 * once (blocking getaddrinfo is fine there), else in a helper thread whose answer comes back
 * through a tt_async and the engine's c->resolved callback. A connection whose address left
 * the answer is marked retired (closed after its current use). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

struct tt__resolve_job {
    tt_async a;
    pthread_t th;
    tt_client *c;
    tt__route *rt;
    char host[256];
    int port, n;
    tt_addr out[TT__C_MAX_ADDRS];
    tt__list link; /* the client's running lookups */
};

/* Store the answer (n addresses, or n <= 0 an error) and retire connections it dropped. */
static void route_apply(tt_client *c, tt__route *rt, const tt_addr *a, int n)
{
    rt->resolved_at = tt_loop_now(c->loop);
    if (n <= 0) {
        rt->resolve_err = n ? n : -ENOENT;
        rt->naddr = 0;
        return;
    }
    rt->resolve_err = 0;
    rt->naddr = n > TT__C_MAX_ADDRS ? TT__C_MAX_ADDRS : n;
    memcpy(rt->addrs, a, sizeof(tt_addr) * (size_t)rt->naddr);
    tt__list *node, *tmp;
    tt__list_each(&c->all, node, tmp)
    {
        tt__conn *k = tt__list_entry(node, tt__conn, all_link);
        if (k->rt != rt) continue;
        int found = 0;
        for (int i = 0; i < rt->naddr; i++)
            if (rt->addrs[i].len == k->addr.len &&
                !memcmp(&rt->addrs[i].ss, &k->addr.ss, k->addr.len))
                found = 1;
        if (!found) k->retired = 1;
    }
}

static void *resolve_thread(void *arg)
{
    tt__resolve_job *j = arg;
    j->n = tt_addr_resolve(j->host, j->port, j->out, TT__C_MAX_ADDRS);
    tt_async_send(&j->a);
    return NULL;
}

static void resolve_done(tt_loop *loop, tt_async *a)
{
    (void)loop;
    tt__resolve_job *j = a->data;
    tt_client *c = j->c;
    pthread_join(j->th, NULL);
    tt__list_remove(&j->link);
    tt__route *rt = j->rt;
    rt->resolving = 0;
    route_apply(c, rt, j->out, j->n);
    tt_async_close(&j->a);
    free(j);
    if (c->resolved) c->resolved(c, rt);
}

void tt__resolve(tt_client *c, tt__route *rt)
{
    if (rt->resolving) return;
    tt_addr tmp;
    char numeric[300];
    if (strchr(rt->host, ':'))
        snprintf(numeric, sizeof numeric, "[%s]:%d", rt->host, rt->port);
    else
        snprintf(numeric, sizeof numeric, "%s:%d", rt->host, rt->port);
    if (tt_addr_parse(&tmp, numeric) == 0) {
        route_apply(c, rt, &tmp, 1);
        return;
    }
    if (c->own_loop) {
        tt_addr out[TT__C_MAX_ADDRS];
        int n = tt_addr_resolve(rt->host, rt->port, out, TT__C_MAX_ADDRS);
        route_apply(c, rt, out, n);
        return;
    }
    tt__resolve_job *j = calloc(1, sizeof *j);
    if (!j) {
        rt->resolve_err = -ENOMEM;
        return;
    }
    j->c = c;
    j->rt = rt;
    snprintf(j->host, sizeof j->host, "%s", rt->host);
    j->port = rt->port;
    if (tt_async_init(c->loop, &j->a, resolve_done, j) < 0) {
        free(j);
        rt->resolve_err = -ENOMEM;
        return;
    }
    rt->resolving = 1;
    if (pthread_create(&j->th, NULL, resolve_thread, j) != 0) {
        tt_async_close(&j->a);
        free(j);
        rt->resolving = 0;
        rt->resolve_err = -EAGAIN;
        return;
    }
    tt__list_push_front(&c->jobs, &j->link);
}

void tt__resolve_shutdown(tt_client *c)
{
    tt__list *n;
    while ((n = tt__list_pop_front(&c->jobs))) {
        tt__resolve_job *j = tt__list_entry(n, tt__resolve_job, link);
        pthread_join(j->th, NULL);
        tt_async_close(&j->a);
        free(j);
    }
}
