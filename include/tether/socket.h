/* tether/socket.h — non-blocking TCP (and Unix-domain stream) sockets: listen, accept,
 * connect, options.
 * Every function returns a new fd or 0 on success and a negative errno on failure. */
#ifndef TETHER_SOCKET_H
#define TETHER_SOCKET_H

#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A resolved socket address (IPv4, IPv6 or a Unix-domain path). */
typedef struct tt_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} tt_addr;

/* Parse a numeric "HOST:PORT", "[V6]:PORT", ":PORT" (any address) or "unix:PATH" into a.
 * 0 or -EINVAL. */
int tt_addr_parse(tt_addr *a, const char *text);
/* Set a to the Unix-domain socket at path (copied into a; at most 107 bytes). 0, -EINVAL for
 * an empty path or -ENAMETOOLONG. */
int tt_addr_unix(tt_addr *a, const char *path);
/* Format a as "1.2.3.4:80", "[::1]:80" or "unix:PATH" into buf (NUL-terminated). Returns the
 * length. */
size_t tt_addr_format(const tt_addr *a, char *buf, size_t size);
/* The port of a in host order (0 for a Unix-domain address). */
int tt_addr_port(const tt_addr *a);
/* Resolve host and port (blocking getaddrinfo, numeric or name) to up to max addresses in
 * preference order. Returns the count (>0) or a negative errno (-ENOENT: no address). */
int tt_addr_resolve(const char *host, int port, tt_addr *out, int max);

/* TCP keepalive probes: idle seconds before the first, seconds between, count before reset. */
typedef struct tt_keepalive {
    int idle_s, intvl_s, cnt; /* all 0: keepalive off */
} tt_keepalive;

/* Options for tt_listen. Zero means the default. */
typedef struct tt_listen_opts {
    int backlog;      /* default 4096 (the kernel caps it at somaxconn) */
    int reuseport;    /* set SO_REUSEPORT so several processes/threads share the port */
    int v6only;       /* for [::] listeners: IPV6_V6ONLY */
    int defer_accept; /* TCP_DEFER_ACCEPT seconds (0: off) */
} tt_listen_opts;

/* Create a non-blocking, close-on-exec listening socket bound to a (SO_REUSEADDR always; for
 * a Unix-domain path, a stale socket file nobody listens on is removed first).
 * opts may be NULL. Returns the fd or -errno; the caller owns the fd. */
int tt_listen(const tt_addr *a, const tt_listen_opts *opts);
/* 0 when nobody listens on a's port: a probe bind without SO_REUSEPORT, closed at once (so a
 * server that shares ports by SO_REUSEPORT is still detected). -EADDRINUSE or -errno else.
 * Unix-domain addresses and port 0 always return 0 (tt_listen checks them). */
int tt_port_free(const tt_addr *a);
/* accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; peer may be NULL. Returns the fd or -errno
 * (-EAGAIN when none is pending). The caller owns the fd. */
int tt_accept(int lfd, tt_addr *peer);
/* Start a non-blocking connect to a. Returns the fd (connected or in progress: wait for
 * writability, then tt_connect_result) or -errno. The caller owns the fd. */
int tt_connect_start(const tt_addr *a);
/* After a non-blocking connect became writable: 0 if connected, else -errno (SO_ERROR). */
int tt_connect_result(int fd);
/* Blocking-style connect with a timeout in ms (poll inside); the fd stays non-blocking.
 * Returns the connected fd or -errno (-ETIMEDOUT on timeout). */
int tt_connect_timeout(const tt_addr *a, int timeout_ms);

/* TCP_NODELAY on or off. */
int tt_sock_nodelay(int fd, int on);
/* SO_KEEPALIVE with TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT; ka NULL or all zero turns it off. */
int tt_sock_keepalive(int fd, const tt_keepalive *ka);
/* SO_LINGER {1, 0}: the next close sends RST instead of FIN and leaves no TIME_WAIT. */
int tt_sock_linger_reset(int fd);
/* The socket's pending error (SO_ERROR, cleared by reading it) as -errno, or 0. */
int tt_sock_error(int fd);
/* Local or peer address of a connected socket. */
int tt_sock_local(int fd, tt_addr *a);
int tt_sock_peer(int fd, tt_addr *a);
/* Parse "IDLE:INTVL:CNT" (seconds, seconds, count; "0" or "off" turns keepalive off). */
int tt_keepalive_parse(tt_keepalive *ka, const char *text);

/* Raise the soft RLIMIT_NOFILE to the hard limit. Returns the new soft limit or -errno. */
long tt_raise_nofile(void);

#ifdef __cplusplus
}
#endif
#endif
