/* accesslog.c — the access log of one server. The format (nginx's log_format variables; the
 * default is the Common Log Format) is compiled once into a list of ops; workers format a line
 * with them and append it to the server's buffer under the server's lock; the server's logger
 * thread writes the buffer to the log fd. Lossless: a full buffer makes the worker wait for the
 * logger (as nginx's synchronous write would), it never drops a line. Two servers in one process
 * share nothing. The logger also reopens the log file on request (SIGHUP, logrotate). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server/server_int.h"
#include "tether/socket.h"

enum { LOG_CAP = 1 << 18, LINE_MAX_LEN = 4096 };

/* The variables a format may name (nginx's names). */
enum {
    OP_LIT,
    OP_REMOTE_ADDR,
    OP_REMOTE_PORT,
    OP_TIME_LOCAL,
    OP_MSEC,
    OP_REQUEST,
    OP_METHOD,
    OP_URI,
    OP_REQUEST_URI,
    OP_ARGS,
    OP_PROTOCOL,
    OP_STATUS,
    OP_BODY_BYTES,
    OP_REQUEST_TIME,
    OP_CONNECTION,
    OP_CONN_REQUESTS,
    OP_PID,
    OP_NOTE, /* $log_note: the handler's tt_res_log_note */
    OP_HTTP, /* $http_NAME: a request header */
};

static const struct {
    const char *name;
    uint8_t op;
} VARS[] = {
    {"remote_addr", OP_REMOTE_ADDR},
    {"remote_port", OP_REMOTE_PORT},
    {"time_local", OP_TIME_LOCAL},
    {"msec", OP_MSEC},
    {"request", OP_REQUEST},
    {"request_method", OP_METHOD},
    {"uri", OP_URI},
    {"request_uri", OP_REQUEST_URI},
    {"args", OP_ARGS},
    {"query_string", OP_ARGS},
    {"server_protocol", OP_PROTOCOL},
    {"status", OP_STATUS},
    {"body_bytes_sent", OP_BODY_BYTES},
    {"request_time", OP_REQUEST_TIME},
    {"connection", OP_CONNECTION},
    {"connection_requests", OP_CONN_REQUESTS},
    {"pid", OP_PID},
    {"log_note", OP_NOTE},
};

#define CLF "$remote_addr - - [$time_local] \"$request\" $status $body_bytes_sent"

static int var_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

static int add_op(tt__alog *lg, uint8_t op, const char *p, size_t n)
{
    if (lg->nops >= TT__ALOG_MAX_OPS) return -E2BIG;
    lg->ops[lg->nops++] = (tt__alog_op){op, (uint16_t)n, p};
    return 0;
}

/* Compile fmt (NULL: the Common Log Format) into lg->ops. Literal text and header names point
 * into fmt, which must outlive the server. 0, -EINVAL (an unknown variable) or -E2BIG. */
int tt__alog_compile(tt__alog *lg, const char *fmt)
{
    lg->nops = 0;
    lg->need_peer = 0;
    if (!fmt || !*fmt) fmt = CLF;
    for (const char *p = fmt; *p;) {
        const char *lit = p;
        while (*p && !(*p == '$' && var_char(p[1]) && p[1] != '_'))
            p++;
        if (p > lit && (p - lit > 0xffff || add_op(lg, OP_LIT, lit, (size_t)(p - lit)) < 0))
            return -E2BIG;
        if (!*p) break;
        const char *name = ++p;
        while (var_char(*p))
            p++;
        size_t n = (size_t)(p - name);
        int r = -EINVAL;
        if (n > 5 && !strncmp(name, "http_", 5)) {
            r = add_op(lg, OP_HTTP, name + 5, n - 5);
        } else {
            for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++)
                if (strlen(VARS[i].name) == n && !strncmp(VARS[i].name, name, n))
                    r = add_op(lg, VARS[i].op, NULL, 0);
        }
        if (r < 0) return r;
        uint8_t op = lg->ops[lg->nops - 1].op;
        if (op == OP_REMOTE_ADDR || op == OP_REMOTE_PORT) lg->need_peer = 1;
    }
    return 0;
}

/* A line being formatted: bytes past the end are cut. */
typedef struct line {
    char *p;
    size_t len, cap;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len) n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

/* Request bytes as nginx logs them: '"', '\' and bytes outside 0x20..0x7e as \xHH. */
static void put_esc(line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\') {
            char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
            put(l, e, 4);
        } else {
            put(l, s + i, 1);
        }
    }
}

static void putf(line *l, const char *fmt, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof b, fmt, v);
    if (n > 0) put(l, b, (size_t)n);
}

/* A request header named like nginx's $http_NAME: '_' matches '-', any case. */
static const tt_header *find_header(const struct tt_req *x, const char *name, size_t n)
{
    for (size_t i = 0; i < x->req.num_headers; i++) {
        const tt_header *h = &x->req.headers[i];
        if (h->name_len != n) continue;
        size_t k = 0;
        for (; k < n; k++) {
            char a = h->name[k], b = name[k] == '_' ? '-' : name[k];
            if ((a | 0x20) != (b | 0x20)) break;
        }
        if (k == n) return h;
    }
    return NULL;
}

/* The peer of the connection ("-" when unknown): address without the port, and the port. */
static void peer_of(tt__conn *c, char *addr, size_t size, int *port)
{
    tt_addr a;
    snprintf(addr, size, "-");
    *port = -1;
    if (tt_stream_fd(&c->s) < 0 || tt_sock_peer(tt_stream_fd(&c->s), &a) < 0) return;
    if (a.ss.ss_family == AF_UNIX) {
        snprintf(addr, size, "unix:");
        return;
    }
    tt_addr_format(&a, addr, size);
    *port = tt_addr_port(&a);
    char *colon = strrchr(addr, ':');
    if (colon) *colon = 0;
    if (addr[0] == '[') { /* nginx logs IPv6 without brackets */
        size_t n = strlen(addr);
        memmove(addr, addr + 1, n);
        if (n >= 2 && addr[n - 2] == ']') addr[n - 2] = 0;
    }
}

static void put_time_local(line *l)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char ts[48];
    size_t n = strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S %z", &tm);
    put(l, ts, n);
}

/* The request's parts; all NULL/0 when no head was parsed (a timeout or an error before the
 * head was complete: the views would point at bytes that are not a request). */
static void put_request_part(line *l, const struct tt_req *x, int op)
{
    int minor = x->log_minor ? x->log_minor - 1 : x->req.minor_version;
    if (!x->head_len) {
        if (op != OP_REQUEST) put(l, "-", 1);
        return;
    }
    switch (op) {
    case OP_METHOD: put_esc(l, x->req.method, x->req.method_len); return;
    case OP_REQUEST_URI: put_esc(l, x->req.target, x->req.target_len); return;
    case OP_URI: put_esc(l, x->path ? x->path : x->req.target, x->path_len); return;
    case OP_ARGS:
        if (x->query) put_esc(l, x->query, x->query_len);
        return;
    case OP_PROTOCOL: putf(l, "HTTP/1.%lld", minor); return;
    default:
        put_esc(l, x->req.method, x->req.method_len);
        put(l, " ", 1);
        put_esc(l, x->req.target, x->req.target_len);
        putf(l, " HTTP/1.%lld", minor);
    }
}

static void put_op(line *l, const tt__alog_op *op, struct tt_req *x, const char *addr, int port)
{
    tt__conn *c = x->conn;
    switch (op->op) {
    case OP_LIT: put(l, op->text, op->len); return;
    case OP_REMOTE_ADDR: put(l, addr, strlen(addr)); return;
    case OP_REMOTE_PORT:
        if (port >= 0) putf(l, "%lld", port);
        return;
    case OP_TIME_LOCAL: put_time_local(l); return;
    case OP_MSEC: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char b[40];
        int n = snprintf(b, sizeof b, "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
        put(l, b, (size_t)n);
        return;
    }
    case OP_STATUS: putf(l, "%lld", x->res.status); return;
    case OP_BODY_BYTES: putf(l, "%lld", x->res.bytes_out); return;
    case OP_REQUEST_TIME: {
        uint64_t ms = tt_loop_now(c->w->loop) - x->t_start;
        char b[40];
        int n = snprintf(b, sizeof b, "%llu.%03llu", (unsigned long long)(ms / 1000),
                         (unsigned long long)(ms % 1000));
        put(l, b, (size_t)n);
        return;
    }
    case OP_CONNECTION: putf(l, "%lld", (long long)tt__conn_id(c)); return;
    case OP_CONN_REQUESTS: putf(l, "%lld", c->nreq); return;
    case OP_PID: putf(l, "%lld", getpid()); return;
    case OP_NOTE:
        if (x->res.note)
            put_esc(l, x->res.note, strlen(x->res.note));
        else
            put(l, "-", 1);
        return;
    case OP_HTTP: {
        const tt_header *h = x->head_len ? find_header(x, op->text, op->len) : NULL;
        if (h)
            put_esc(l, h->value, h->value_len);
        else
            put(l, "-", 1);
        return;
    }
    default: put_request_part(l, x, op->op);
    }
}

void tt__access_log(struct tt_req *x)
{
    tt__conn *c = x->conn;
    tt__alog *lg = &c->w->srv->log;
    char buf[LINE_MAX_LEN];
    line l = {buf, 0, sizeof buf - 1};
    char addr[TT__ALOG_ADDR] = "-";
    int port = -1;
    if (lg->need_peer) peer_of(c, addr, sizeof addr, &port); /* a syscall: only when logged */
    for (int i = 0; i < lg->nops; i++)
        put_op(&l, &lg->ops[i], x, addr, port);
    buf[l.len++] = '\n';
    x->log_minor = 0;
    pthread_mutex_lock(&lg->mu);
    while (lg->len + l.len > LOG_CAP && !lg->stop) {
        TT__INC(c->w->stats.log_waits);
        pthread_cond_wait(&lg->space, &lg->mu); /* lossless: wait for the logger */
    }
    if (lg->len + l.len <= LOG_CAP) {
        memcpy(lg->buf + lg->len, buf, l.len);
        lg->len += l.len;
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

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* On the logger thread, after what was buffered went to the old file: open the path again;
 * on failure the old file stays. */
static void reopen(tt__alog *lg)
{
    if (!lg->path) return;
    int fd = open_log(lg->path);
    if (fd < 0) return;
    if (lg->own_fd) close(lg->wfd);
    lg->wfd = fd;
    lg->own_fd = 1;
}

static void *log_thread(void *arg)
{
    tt__alog *lg = arg;
    pthread_mutex_lock(&lg->mu);
    for (;;) {
        while (!lg->len && !lg->stop && !lg->reopen)
            pthread_cond_wait(&lg->cv, &lg->mu);
        if (!lg->len && lg->stop) break;
        size_t n = lg->len;
        int again = lg->reopen;
        lg->reopen = 0;
        memcpy(lg->mine, lg->buf, n);
        lg->len = 0;
        pthread_cond_broadcast(&lg->space);
        pthread_mutex_unlock(&lg->mu);
        write_all(lg->wfd, lg->mine, n);
        if (again) reopen(lg);
        pthread_mutex_lock(&lg->mu);
    }
    pthread_mutex_unlock(&lg->mu);
    return NULL;
}

/* Free the log's buffers and synchronisation and close the fd it owns: the one teardown of a
 * start that failed half-way (sync 0: no thread and no mutex yet) and of tt__alog_stop. */
static void alog_release(tt__alog *lg, int fd, int own, int sync)
{
    if (sync) {
        pthread_cond_destroy(&lg->space);
        pthread_cond_destroy(&lg->cv);
        pthread_mutex_destroy(&lg->mu);
    }
    free(lg->buf);
    free(lg->mine);
    lg->buf = lg->mine = NULL;
    if (own) close(fd);
    lg->fd = lg->wfd = 0;
}

/* Start s's logger thread when a log is configured (call with the signals the workers must
 * not get already blocked: the thread inherits the mask). 0 or -errno; lg->fd stays 0 (no
 * logging) on failure. */
int tt__alog_start(tt_server *s)
{
    tt__alog *lg = &s->log;
    int fd = s->cfg.access_log_fd, own = 0;
    if (s->cfg.access_log_path) {
        fd = open_log(s->cfg.access_log_path);
        if (fd < 0) return -errno;
        own = 1;
    }
    if (fd <= 0) return 0;
    lg->buf = malloc(LOG_CAP);
    lg->mine = malloc(LOG_CAP);
    if (!lg->buf || !lg->mine) {
        alog_release(lg, fd, own, 0);
        return -ENOMEM;
    }
    lg->len = 0;
    lg->stop = lg->reopen = 0;
    lg->fd = lg->wfd = fd;
    lg->own_fd = own;
    lg->path = s->cfg.access_log_path;
    pthread_mutex_init(&lg->mu, NULL);
    pthread_cond_init(&lg->cv, NULL);
    pthread_cond_init(&lg->space, NULL);
    if (pthread_create(&lg->thread, NULL, log_thread, lg) != 0) {
        alog_release(lg, fd, own, 1);
        return -EAGAIN;
    }
    return 0;
}

int tt__alog_reopen(tt_server *s)
{
    tt__alog *lg = &s->log;
    if (lg->fd <= 0) return -EBADF;
    if (!lg->path) return -EINVAL;
    pthread_mutex_lock(&lg->mu);
    lg->reopen = 1;
    pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mu);
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
    pthread_cond_broadcast(&lg->space);
    pthread_mutex_unlock(&lg->mu);
    pthread_join(lg->thread, NULL);
    alog_release(lg, lg->wfd, lg->own_fd, 1);
}
