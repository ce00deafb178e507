/* socket.c — non-blocking TCP sockets over IPv4 and IPv6 (see tether/socket.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/api.h"
#include "tether/socket.h"

TT_API int tt_addr_unix(tt_addr *a, const char *path)
{
    struct sockaddr_un *su = (struct sockaddr_un *)&a->ss;
    size_t n = strlen(path);
    if (n == 0) return -EINVAL;
    if (n >= sizeof su->sun_path) return -ENAMETOOLONG;
    memset(a, 0, sizeof(*a));
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, path, n);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

TT_API int tt_addr_parse(tt_addr *a, const char *text)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *port_s;
    size_t hlen;
    if (!text) return -EINVAL;
    if (!strncmp(text, "unix:", 5)) return tt_addr_unix(a, text + 5) < 0 ? -EINVAL : 0;
    if (text[0] == '[') {
        const char *close_b = strchr(text, ']');
        if (!close_b || close_b[1] != ':') return -EINVAL;
        hlen = (size_t)(close_b - text - 1);
        if (hlen == 0 || hlen >= sizeof(host)) return -EINVAL;
        memcpy(host, text + 1, hlen);
        port_s = close_b + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return -EINVAL; /* bare IPv6 needs brackets */
        hlen = (size_t)(colon - text);
        if (hlen >= sizeof(host)) return -EINVAL;
        memcpy(host, text, hlen);
        port_s = colon + 1;
    }
    host[hlen] = '\0';
    if (*port_s < '0' || *port_s > '9') return -EINVAL;
    char *end;
    errno = 0;
    unsigned long port = strtoul(port_s, &end, 10);
    if (*end || errno || port > 65535) return -EINVAL;
    memset(a, 0, sizeof(*a));
    if (text[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) return -EINVAL;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a->len = sizeof(*s6);
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    if (hlen == 0)
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -EINVAL;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    a->len = sizeof(*s4);
    return 0;
}

TT_API size_t tt_addr_format(const tt_addr *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    int n;
    if (!size) return 0;
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        n = snprintf(buf, size, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        n = snprintf(buf, size, "%s:%u", host, ntohs(s4->sin_port));
    } else if (a->ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *su = (const struct sockaddr_un *)&a->ss;
        size_t max = a->len > offsetof(struct sockaddr_un, sun_path)
                         ? a->len - offsetof(struct sockaddr_un, sun_path)
                         : 0;
        n = snprintf(buf, size, "unix:%.*s", (int)strnlen(su->sun_path, max), su->sun_path);
    } else {
        n = snprintf(buf, size, "?");
    }
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < size ? (size_t)n : size - 1;
}

TT_API int tt_addr_port(const tt_addr *a)
{
    if (a->ss.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    if (a->ss.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return a->ss.ss_family == AF_UNIX ? 0 : -EAFNOSUPPORT;
}

TT_API int tt_addr_resolve(const char *host, int port, tt_addr *out, int max)
{
    if (!host || port < 0 || port > 65535 || max <= 0) return -EINVAL;
    char hbuf[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* accept "[::1]" too */
        if (hl - 2 >= sizeof(hbuf)) return -EINVAL;
        memcpy(hbuf, host + 1, hl - 2);
        hbuf[hl - 2] = '\0';
        host = hbuf;
    }
    char pbuf[8];
    snprintf(pbuf, sizeof(pbuf), "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    int r = getaddrinfo(host, pbuf, &hints, &res);
    if (r != 0) {
        switch (r) {
        case EAI_NONAME:
#ifdef EAI_NODATA
        case EAI_NODATA:
#endif
        case EAI_FAIL: return -ENOENT;
        case EAI_AGAIN: return -EAGAIN;
        case EAI_MEMORY: return -ENOMEM;
        case EAI_SYSTEM: return errno ? -errno : -EIO;
        default: return -EINVAL;
        }
    }
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(out[n].ss))
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = (socklen_t)ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    return n > 0 ? n : -ENOENT;
}

static int setopt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

/* A Unix-domain path: a socket file nobody listens on any more (a previous run's) is removed;
 * anything else there stays and the bind reports EADDRINUSE. */
static void unix_stale_unlink(const tt_addr *a)
{
    const struct sockaddr_un *su = (const struct sockaddr_un *)&a->ss;
    struct stat st;
    if (stat(su->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode)) return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno == ECONNREFUSED)
        unlink(su->sun_path);
    close(fd);
}

static int listen_unix(const tt_addr *a, const tt_listen_opts *opts)
{
    unix_stale_unlink(a);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int r = 0;
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) r = -errno;
    if (!r && listen(fd, opts->backlog > 0 ? opts->backlog : 4096) < 0) r = -errno;
    if (r) {
        close(fd);
        return r;
    }
    return fd;
}

TT_API int tt_listen(const tt_addr *a, const tt_listen_opts *opts)
{
    tt_listen_opts def = {0};
    if (!opts) opts = &def;
    if (a->ss.ss_family == AF_UNIX) return listen_unix(a, opts);
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) return -errno;
    int r = setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (!r && opts->reuseport) r = setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (!r && a->ss.ss_family == AF_INET6)
        r = setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, opts->v6only ? 1 : 0);
    if (!r && opts->defer_accept > 0)
        r = setopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, opts->defer_accept);
    if (!r && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) r = -errno;
    if (!r && listen(fd, opts->backlog > 0 ? opts->backlog : 4096) < 0) r = -errno;
    if (r) {
        close(fd);
        return r;
    }
    return fd;
}

TT_API int tt_port_free(const tt_addr *a)
{
    if (a->ss.ss_family == AF_UNIX || tt_addr_port(a) == 0) return 0;
    int fd = tt_listen(a, NULL); /* no SO_REUSEPORT: fails while anyone listens there */
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

TT_API int tt_accept(int lfd, tt_addr *peer)
{
    tt_addr tmp;
    tt_addr *p = peer ? peer : &tmp;
    p->len = sizeof(p->ss);
    int fd = accept4(lfd, (struct sockaddr *)&p->ss, &p->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return fd;
}

TT_API int tt_connect_start(const tt_addr *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    a->ss.ss_family == AF_UNIX ? 0 : IPPROTO_TCP);
    if (fd < 0) return -errno;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

TT_API int tt_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    if (err) return -err;
    /* SO_ERROR is 0 both when connected and while still in progress: ask for the peer. */
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return errno == ENOTCONN ? -EINPROGRESS : -errno;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

TT_API int tt_connect_timeout(const tt_addr *a, int timeout_ms)
{
    int fd = tt_connect_start(a);
    if (fd < 0) return fd;
    int64_t deadline = timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;
    for (;;) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - mono_ms();
            if (left < 0) left = 0;
            wait = (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, wait);
        if (n < 0 && errno == EINTR) continue;
        int r;
        if (n < 0)
            r = -errno;
        else if (n == 0)
            r = -ETIMEDOUT;
        else
            r = tt_connect_result(fd);
        if (r == -EINPROGRESS) continue;
        if (r < 0) {
            close(fd);
            return r;
        }
        return fd;
    }
}

TT_API int tt_sock_nodelay(int fd, int on)
{
    return setopt(fd, IPPROTO_TCP, TCP_NODELAY, !!on);
}

TT_API int tt_sock_keepalive(int fd, const tt_keepalive *ka)
{
    if (!ka || (ka->idle_s <= 0 && ka->intvl_s <= 0 && ka->cnt <= 0))
        return setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
    int r = 0;
    if (ka->idle_s > 0) r = setopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, ka->idle_s);
    if (!r && ka->intvl_s > 0) r = setopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, ka->intvl_s);
    if (!r && ka->cnt > 0) r = setopt(fd, IPPROTO_TCP, TCP_KEEPCNT, ka->cnt);
    if (!r) r = setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    return r;
}

TT_API int tt_sock_linger_reset(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0 ? -errno : 0;
}

TT_API int tt_sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    return -err;
}

TT_API int tt_sock_local(int fd, tt_addr *a)
{
    a->len = sizeof(a->ss);
    return getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ? -errno : 0;
}

TT_API int tt_sock_peer(int fd, tt_addr *a)
{
    a->len = sizeof(a->ss);
    return getpeername(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ? -errno : 0;
}

/* A decimal int in [lo, hi] ending at end or ':'; advances *p. */
static int parse_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9') return -EINVAL;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > hi) return -EINVAL;
        s++;
    }
    if (v < lo) return -EINVAL;
    *out = (int)v;
    *p = s;
    return 0;
}

TT_API int tt_keepalive_parse(tt_keepalive *ka, const char *text)
{
    if (!text) return -EINVAL;
    if (!strcmp(text, "off") || !strcmp(text, "0")) {
        ka->idle_s = ka->intvl_s = ka->cnt = 0;
        return 0;
    }
    tt_keepalive k;
    const char *p = text;
    /* Linux limits: TCP_KEEPIDLE/INTVL <= 32767 s, TCP_KEEPCNT <= 127. */
    if (parse_num(&p, 1, 32767, &k.idle_s) || *p++ != ':' || parse_num(&p, 1, 32767, &k.intvl_s) ||
        *p++ != ':' || parse_num(&p, 1, 127, &k.cnt) || *p)
        return -EINVAL;
    *ka = k;
    return 0;
}

TT_API long tt_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
            /* an unlimited hard limit still cannot exceed fs.nr_open */
            if (rl.rlim_max != RLIM_INFINITY) return -errno;
            want.rlim_cur = 1048576;
            if (setrlimit(RLIMIT_NOFILE, &want) < 0) return -errno;
        }
        rl = want;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)0x7fffffff) return 0x7fffffff;
    return (long)rl.rlim_cur;
}
