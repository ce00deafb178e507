/* accesslog.c — the access log of one server (Common Log Format): workers format a line and
 * append it to the server's buffer under the server's lock; the server's logger thread writes
 * the buffer to access_log_fd. Two servers in one process share nothing. A full buffer drops
 * lines (counted) rather than block a loop on a slow sink. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/server_int.h"
#include "tether/socket.h"

enum { LOG_CAP = 1 << 18 };

void tt__access_log(struct tt_req *x)
{
    tt__conn *c = x->conn;
    tt__alog *lg = &c->w->srv->log;
    char line[512];
    char peer[64] = "-";
    tt_addr a;
    if (tt_stream_fd(&c->s) >= 0 && tt_sock_peer(tt_stream_fd(&c->s), &a) == 0) {
        tt_addr_format(&a, peer, sizeof peer);
        char *colon = strrchr(peer, ':');
        if (colon) *colon = 0;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    int n = snprintf(
        line, sizeof line, "%s - - [%s] \"%.*s %.*s HTTP/1.%d\" %d %lld\n", peer, ts,
        (int)(x->req.method_len > 16 ? 16 : x->req.method_len), x->req.method ? x->req.method : "-",
        (int)(x->req.target_len > 256 ? 256 : x->req.target_len),
        x->req.target ? x->req.target : "-", x->req.minor_version, x->res.status, x->res.bytes_out);
    if (n <= 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    pthread_mutex_lock(&lg->mu);
    if (lg->len + (size_t)n <= LOG_CAP) {
        memcpy(lg->buf + lg->len, line, (size_t)n);
        lg->len += (size_t)n;
    } else {
        lg->dropped++; /* never block the loop on a slow log sink */
    }
    pthread_mutex_unlock(&lg->mu);
    pthread_cond_signal(&lg->cv);
}

static void write_all(int fd, const char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        off += (size_t)w;
    }
}

static void *log_thread(void *arg)
{
    tt__alog *lg = arg;
    char *mine = malloc(LOG_CAP);
    pthread_mutex_lock(&lg->mu);
    for (;;) {
        while (!lg->len && !lg->stop)
            pthread_cond_wait(&lg->cv, &lg->mu);
        if (!lg->len && lg->stop) break;
        size_t n = lg->len;
        if (mine) memcpy(mine, lg->buf, n);
        lg->len = 0;
        pthread_mutex_unlock(&lg->mu);
        if (mine) write_all(lg->fd, mine, n);
        pthread_mutex_lock(&lg->mu);
    }
    pthread_mutex_unlock(&lg->mu);
    free(mine);
    return NULL;
}

/* Start s's logger thread when access_log_fd is set (call with the signals the workers must
 * not get already blocked: the thread inherits the mask). 0 or -errno; lg->fd stays 0 (no
 * logging) on failure. */
int tt__alog_start(tt_server *s)
{
    tt__alog *lg = &s->log;
    if (s->cfg.access_log_fd <= 0) return 0;
    lg->buf = malloc(LOG_CAP);
    if (!lg->buf) return -ENOMEM;
    lg->len = 0;
    lg->stop = 0;
    lg->fd = s->cfg.access_log_fd;
    pthread_mutex_init(&lg->mu, NULL);
    pthread_cond_init(&lg->cv, NULL);
    if (pthread_create(&lg->thread, NULL, log_thread, lg) != 0) {
        pthread_cond_destroy(&lg->cv);
        pthread_mutex_destroy(&lg->mu);
        free(lg->buf);
        lg->buf = NULL;
        lg->fd = 0;
        return -EAGAIN;
    }
    return 0;
}

/* Write what is buffered and stop the logger thread (after the workers stopped). */
void tt__alog_stop(tt_server *s)
{
    tt__alog *lg = &s->log;
    if (lg->fd <= 0) return;
    pthread_mutex_lock(&lg->mu);
    lg->stop = 1;
    pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mu);
    pthread_join(lg->thread, NULL);
    pthread_cond_destroy(&lg->cv);
    pthread_mutex_destroy(&lg->mu);
    free(lg->buf);
    lg->buf = NULL;
    lg->fd = 0;
}
