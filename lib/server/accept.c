/* accept.c — accepting connections on the worker's listeners under limits and pressure: at
 * max_connections an idle keep-alive connection is given up first, else accepting pauses until
 * a connection closes; out of descriptors, idle connections are closed or accepting pauses
 * briefly. New sockets go to conn.c. */
#include <errno.h>

#include "server/server_int.h"
#include "tether/socket.h"

static void on_accept(tt_loop *loop, tt_io *io, unsigned ev);

void tt__accept_pause(tt__worker *w)
{
    if (!w->accepting) return;
    for (int a = 0; a < w->nls; a++)
        tt_io_stop(w->loop, &w->ls[a].io);
    w->accepting = 0;
    TT__INC(w->stats.accept_paused);
}

void tt__accept_resume(tt__worker *w)
{
    if (w->accepting || w->shutting) return;
    for (int a = 0; a < w->nls; a++)
        tt_io_start(w->loop, &w->ls[a].io, w->ls[a].fd, TT_READ, TT_IO_LEVEL, on_accept, w);
    w->accepting = 1;
}

static void on_resume(tt_loop *loop, tt_timer *t)
{
    (void)loop;
    tt__accept_resume(tt_container_of(t, tt__worker, resume));
}

static void on_accept(tt_loop *loop, tt_io *io, unsigned ev)
{
    tt__worker *w = io->data;
    (void)ev;
    for (int i = 0; i < 64; i++) {
        if (w->nconns >= w->max_conns) {
            /* At the limit: an idle keep-alive connection is the cheapest to give up. */
            if (!tt__list_empty(&w->lists[TT_CONN_IDLE])) {
                tt__worker_close_idle(w, TT_CLOSE_PRESSURE, 1);
            } else {
                tt__accept_pause(w); /* resumes when a connection closes */
                return;
            }
        }
        int fd = tt_accept(io->fd, NULL);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                /* Out of fds: free the oldest idle connections, else pause briefly
                 * (a level-triggered listener would otherwise spin). */
                if (!tt__list_empty(&w->lists[TT_CONN_IDLE])) {
                    tt__worker_close_idle(w, TT_CLOSE_PRESSURE, 16);
                    continue;
                }
                tt__accept_pause(w);
                tt_timer_start(loop, &w->resume, 100);
            }
            return;
        }
        tt__conn_accepted(w, fd);
        if (w->shutting) return;
    }
}

/* A connection closed (conn.c calls this through w->conn_gone): room to accept again, or the
 * last one of a draining worker. */
static void conn_gone(tt__worker *w)
{
    if (!w->accepting && !w->shutting && w->nconns < w->max_conns && !tt_timer_armed(&w->resume))
        tt__accept_resume(w);
    if (w->shutting && w->nconns == 0) tt_loop_stop(w->loop);
}

void tt__accept_init(tt__worker *w)
{
    tt_timer_init(&w->resume, on_resume);
    w->conn_gone = conn_gone;
}
