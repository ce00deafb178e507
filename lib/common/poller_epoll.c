/* poller_epoll.c — the epoll backend of poller.h (Linux). */
#include "common/poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tether/loop.h"

int tt__poller_open(tt__poller *p, int max_events)
{
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0) return -errno;
    p->cap = max_events > 0 ? max_events : 256;
    p->buf = calloc((size_t)p->cap, sizeof(struct epoll_event));
    if (!p->buf) {
        close(p->fd);
        p->fd = -1;
        return -ENOMEM;
    }
    return 0;
}

void tt__poller_close(tt__poller *p)
{
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    free(p->buf);
    p->buf = NULL;
}

static int ctl(tt__poller *p, int op, int fd, unsigned events, int edge, void *ptr)
{
    struct epoll_event ev;
    ev.events = EPOLLRDHUP;
    if (events & TT_READ) ev.events |= EPOLLIN;
    if (events & TT_WRITE) ev.events |= EPOLLOUT;
    if (edge) ev.events |= EPOLLET;
    ev.data.ptr = ptr;
    return epoll_ctl(p->fd, op, fd, &ev) < 0 ? -errno : 0;
}

int tt__poller_add(tt__poller *p, int fd, unsigned events, int edge, void *ptr)
{
    return ctl(p, EPOLL_CTL_ADD, fd, events, edge, ptr);
}

int tt__poller_mod(tt__poller *p, int fd, unsigned events, int edge, void *ptr)
{
    return ctl(p, EPOLL_CTL_MOD, fd, events, edge, ptr);
}

int tt__poller_del(tt__poller *p, int fd)
{
    struct epoll_event ev = {0}; /* non-NULL for kernels before 2.6.9 */
    return epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int tt__poller_wait(tt__poller *p, tt__pevent *out, int timeout_ms)
{
    struct epoll_event *ev = p->buf;
    int n = epoll_wait(p->fd, ev, p->cap, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        unsigned t = 0;
        if (e & EPOLLIN) t |= TT_READ;
        if (e & EPOLLOUT) t |= TT_WRITE;
        if (e & EPOLLRDHUP) t |= TT_RDHUP;
        if (e & EPOLLHUP) t |= TT_HUP;
        if (e & EPOLLERR) t |= TT_ERROR;
        out[i].ptr = ev[i].data.ptr;
        out[i].events = t;
    }
    return n;
}
