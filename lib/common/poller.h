/* poller.h — internal: the readiness backend behind tt_loop (epoll today; one file per backend,
 * so kqueue can follow). Events use the public TT_READ/TT_WRITE/TT_RDHUP/TT_HUP/TT_ERROR bits;
 * each registration carries an opaque pointer (the tt_io) handed back by tt__poller_wait. */
#ifndef TT_COMMON_POLLER_H
#define TT_COMMON_POLLER_H

/* One ready fd: the pointer given at registration and the TT_* bits that fired. */
typedef struct tt__pevent {
    void *ptr;
    unsigned events;
} tt__pevent;

typedef struct tt__poller {
    int fd;    /* epoll fd */
    int cap;   /* capacity of buf, in events */
    void *buf; /* backend's result array */
} tt__poller;

/* Open a poller returning at most max_events per wait. 0 or -errno. */
int tt__poller_open(tt__poller *p, int max_events);
/* Close the poller and free its buffers. */
void tt__poller_close(tt__poller *p);
/* Register fd for events (TT_READ|TT_WRITE; TT_RDHUP, TT_HUP, TT_ERROR always), edge-triggered
 * when edge is nonzero, with ptr as the registration's data. 0 or -errno. */
int tt__poller_add(tt__poller *p, int fd, unsigned events, int edge, void *ptr);
/* Change a registration's events, trigger mode and pointer. 0 or -errno. */
int tt__poller_mod(tt__poller *p, int fd, unsigned events, int edge, void *ptr);
/* Remove fd. 0 or -errno. */
int tt__poller_del(tt__poller *p, int fd);
/* Wait at most timeout_ms (-1: forever) and fill out (at most p->cap entries). Returns the count
 * (0 on timeout or EINTR) or -errno. */
int tt__poller_wait(tt__poller *p, tt__pevent *out, int timeout_ms);

#endif
