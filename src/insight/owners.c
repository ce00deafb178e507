/* owners.c — which processes hold the sockets `tether conns` counted, as `ss -p` finds them:
 * the inode sock_diag reports for each socket is matched against the "socket:[INODE]" links in
 * /proc/PID/fd of every process. A socket shared by several processes (a listener inherited by
 * workers) counts for each of them; TIME_WAIT and request sockets have no inode and no owner. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "insight.h"

int tt_insight_owners_add(tt_insight_owners *o, const tt_sockinfo *s)
{
    if (!s->inode) return 0;
    if (o->nsocks == o->capsocks) {
        size_t cap = o->capsocks ? o->capsocks * 2 : 64;
        tt_insight_sock *n = realloc(o->socks, cap * sizeof *n);
        if (!n) return -ENOMEM;
        o->socks = n;
        o->capsocks = cap;
    }
    o->socks[o->nsocks++] =
        (tt_insight_sock){s->inode, (unsigned char)s->state, (unsigned char)s->side};
    return 0;
}

static int cmp_inode(const void *a, const void *b)
{
    uint32_t x = ((const tt_insight_sock *)a)->inode, y = ((const tt_insight_sock *)b)->inode;
    return x < y ? -1 : x > y;
}

/* The process entry for pid (appended, with its name from /proc/PID/comm), or NULL. */
static tt_insight_owner *owner_for(tt_insight_owners *o, int pid)
{
    if (o->nprocs && o->procs[o->nprocs - 1].pid == pid) return &o->procs[o->nprocs - 1];
    if (o->nprocs == o->capprocs) {
        size_t cap = o->capprocs ? o->capprocs * 2 : 8;
        tt_insight_owner *n = realloc(o->procs, cap * sizeof *n);
        if (!n) return NULL;
        o->procs = n;
        o->capprocs = cap;
    }
    tt_insight_owner *p = &o->procs[o->nprocs++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(p->name, sizeof p->name, f)) p->name[strcspn(p->name, "\n")] = 0;
        fclose(f);
    }
    if (!p->name[0]) snprintf(p->name, sizeof p->name, "?");
    return p;
}

/* Match the socket links of one process's descriptors; 0 or -ENOMEM. */
static int scan_process(tt_insight_owners *o, int pid, unsigned char *seen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) return 0; /* gone, or not ours to read */
    int dfd = dirfd(d), rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char link[64];
        ssize_t n = readlinkat(dfd, e->d_name, link, sizeof link - 1);
        if (n < 9 || memcmp(link, "socket:[", 8)) continue;
        link[n] = 0;
        tt_insight_sock key = {(uint32_t)strtoul(link + 8, NULL, 10), 0, 0};
        tt_insight_sock *s = bsearch(&key, o->socks, o->nsocks, sizeof key, cmp_inode);
        if (!s) continue;
        tt_insight_owner *p = owner_for(o, pid);
        if (!p) {
            rc = -ENOMEM;
            break;
        }
        tt_tcp_counts *c = s->side == TT_SIDE_CLIENT ? &p->client : &p->server;
        c->n[s->state]++;
        c->total++;
        seen[s - o->socks] = 1;
    }
    closedir(d);
    return rc;
}

int tt_insight_owners_resolve(tt_insight_owners *o)
{
    if (!o->nsocks) return 0;
    qsort(o->socks, o->nsocks, sizeof *o->socks, cmp_inode);
    unsigned char *seen = calloc(o->nsocks, 1);
    DIR *d = seen ? opendir("/proc") : NULL;
    if (!d) {
        free(seen);
        return seen ? -errno : -ENOMEM;
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;)
        if (isdigit((unsigned char)e->d_name[0])) rc = scan_process(o, atoi(e->d_name), seen);
    closedir(d);
    o->unowned = 0;
    for (size_t i = 0; i < o->nsocks; i++)
        o->unowned += !seen[i];
    free(seen);
    return rc;
}

/* The kind of the first process named name that holds a listening socket on the port. */
tt_insight_kind tt_insight_listener(const tt_insight_owners *o, const char **name)
{
    for (size_t i = 0; i < o->nprocs; i++) {
        const tt_insight_owner *p = &o->procs[i];
        if (!p->server.n[TT_TCP_LISTEN]) continue;
        if (name) *name = p->name;
        if (!strcmp(p->name, "tether")) return TT_INSIGHT_TETHER;
        if (!strcmp(p->name, "nginx")) return TT_INSIGHT_NGINX;
        return TT_INSIGHT_OTHER;
    }
    if (name) *name = NULL;
    return TT_INSIGHT_UNKNOWN;
}

void tt_insight_owners_free(tt_insight_owners *o)
{
    free(o->socks);
    free(o->procs);
    memset(o, 0, sizeof *o);
}
