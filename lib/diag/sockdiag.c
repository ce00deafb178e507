/* sockdiag.c — TCP socket states from the kernel through netlink sock_diag (NETLINK_SOCK_DIAG,
 * inet_diag_req_v2), the interface `ss` uses. One dump per address family; when a port is given
 * an inet_diag bytecode filter (sport == P || dport == P) makes the kernel skip other sockets,
 * and the same test is repeated here so an old kernel that rejects the filter still works. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/api.h"
#include "tether/sockdiag.h"

static const char *const state_names[TT_TCP_NSTATES] = {
    "UNKNOWN",   "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
    "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING",
};

TT_API const char *tt_tcp_state_name(int state)
{
    if (state <= 0 || state >= TT_TCP_NSTATES) return "UNKNOWN";
    return state_names[state];
}

TT_API int tt_tcp_state_parse(const char *name)
{
    if (!name) return -EINVAL;
    for (int i = 1; i < TT_TCP_NSTATES; i++)
        if (!strcasecmp(name, state_names[i])) return i;
    return -EINVAL;
}

#ifdef __linux__

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* The request: header, inet_diag_req_v2, then optionally one nlattr with the bytecode. */
struct diag_req {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
    struct nlattr bc_attr;
    struct inet_diag_bc_op bc[9];
};

/* Bytecode for "sport == port || dport == port" with GE/LE pairs (every kernel has them),
 * laid out as `ss` compiles an OR: the kernel audits jump targets along the chain of "yes"
 * offsets, so A's success leaves through a JMP (always taken as "no") to the end (accept), and
 * B's failures jump 4 bytes past the end (reject). Returns the length in bytes. */
static int build_port_filter(struct inet_diag_bc_op *bc, int port)
{
    const int len = 36;
    const unsigned short p = (unsigned short)port;
    bc[0] = (struct inet_diag_bc_op){INET_DIAG_BC_S_GE, 8, 20}; /* @0: sport >= p, else B */
    bc[1] = (struct inet_diag_bc_op){0, 0, p};
    bc[2] = (struct inet_diag_bc_op){INET_DIAG_BC_S_LE, 8, 12}; /* @8: sport <= p, else B */
    bc[3] = (struct inet_diag_bc_op){0, 0, p};
    bc[4] = (struct inet_diag_bc_op){INET_DIAG_BC_JMP, 4, len - 16};      /* @16: accept */
    bc[5] = (struct inet_diag_bc_op){INET_DIAG_BC_D_GE, 8, len - 20 + 4}; /* @20: B */
    bc[6] = (struct inet_diag_bc_op){0, 0, p};
    bc[7] = (struct inet_diag_bc_op){INET_DIAG_BC_D_LE, 8, len - 28 + 4}; /* @28 */
    bc[8] = (struct inet_diag_bc_op){0, 0, p};
    return len;
}

static void fill_addr(tt_addr *a, int family, const __be32 *raw, __be16 port)
{
    memset(a, 0, sizeof *a);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        sin->sin_family = AF_INET;
        sin->sin_port = port;
        memcpy(&sin->sin_addr, raw, 4);
        a->len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = port;
        memcpy(&sin6->sin6_addr, raw, 16);
        a->len = sizeof *sin6;
    }
}

/* One dump for one family. Adds visited sockets to *visited; returns 0, the callback's nonzero
 * value (> 0 stop), or -errno. With use_bc the kernel filters by port. */
static int dump_family(int family, int port, unsigned mask, int use_bc, tt_sockdiag_cb cb,
                       void *arg, int *visited)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -errno;

    struct diag_req req;
    memset(&req, 0, sizeof req);
    size_t reqlen = NLMSG_LENGTH(sizeof req.r);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = 1;
    req.r.sdiag_family = (unsigned char)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    /* SYN_RECV also selects request sockets (the kernel maps it to NEW_SYN_RECV). */
    req.r.idiag_states = mask;
    if (use_bc && port > 0) {
        int bclen = build_port_filter(req.bc, port);
        req.bc_attr.nla_type = INET_DIAG_REQ_BYTECODE;
        req.bc_attr.nla_len = (unsigned short)(NLA_HDRLEN + bclen);
        reqlen = NLMSG_ALIGN(reqlen) + NLA_ALIGN(req.bc_attr.nla_len);
    }
    req.nlh.nlmsg_len = (unsigned)reqlen;

    struct sockaddr_nl nladdr = {.nl_family = AF_NETLINK};
    struct iovec iov = {&req, reqlen};
    struct msghdr msg = {
        .msg_name = &nladdr, .msg_namelen = sizeof nladdr, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t sent;
    do
        sent = sendmsg(fd, &msg, 0);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        int e = -errno;
        close(fd);
        return e;
    }

    /* Aligned receive buffer; 32 KiB holds a few hundred sockets per read. */
    size_t bufsize = 32768;
    long *buf = malloc(bufsize);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    int rc = 0, done = 0;
    while (!done && rc == 0) {
        ssize_t n = recv(fd, buf, bufsize, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            break;
        }
        if (n == 0) break;
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *err = NLMSG_DATA(h);
                rc = h->nlmsg_len >= NLMSG_LENGTH(sizeof *err) && err->error ? err->error : -EIO;
                break;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6) continue;
            if (m->idiag_state <= 0 || m->idiag_state >= TT_TCP_NSTATES) continue;
            if (!(mask & TT_TCP_BIT(m->idiag_state))) continue;
            int lport = ntohs(m->id.idiag_sport), rport = ntohs(m->id.idiag_dport);
            int side = 0;
            if (port > 0) {
                if (lport == port)
                    side = TT_SIDE_SERVER;
                else if (rport == port && m->idiag_state != TT_TCP_LISTEN)
                    side = TT_SIDE_CLIENT;
                else
                    continue;
            }
            tt_sockinfo s;
            memset(&s, 0, sizeof s);
            s.family = m->idiag_family;
            s.state = m->idiag_state;
            fill_addr(&s.local, s.family, m->id.idiag_src, m->id.idiag_sport);
            fill_addr(&s.remote, s.family, m->id.idiag_dst, m->id.idiag_dport);
            s.local_port = lport;
            s.remote_port = rport;
            s.inode = m->idiag_inode;
            s.uid = m->idiag_uid;
            s.rqueue = m->idiag_rqueue;
            s.wqueue = m->idiag_wqueue;
            s.expires_ms = m->idiag_timer ? m->idiag_expires : 0;
            s.side = side;
            ++*visited;
            if (cb) {
                int r = cb(&s, arg);
                if (r) {
                    rc = r; /* the callback's value goes back to the caller */
                    break;
                }
            }
        }
    }
    free(buf);
    close(fd);
    return rc;
}

TT_API int tt_sockdiag_foreach(int port, unsigned state_mask, tt_sockdiag_cb cb, void *arg)
{
    if (port > 65535) return -EINVAL;
    unsigned mask = state_mask & TT_TCP_ALL;
    if (!mask) return 0;
    static const int families[2] = {AF_INET, AF_INET6};
    int visited = 0;
    for (int i = 0; i < 2; i++) {
        int before = visited;
        int rc = dump_family(families[i], port, mask, 1, cb, arg, &visited);
        if (rc == -EINVAL && port > 0 && visited == before) /* filter refused: filter here */
            rc = dump_family(families[i], port, mask, 0, cb, arg, &visited);
        if (rc == -EAFNOSUPPORT || rc == -ENOENT) /* no IPv6 (or no diag module) for family */
            continue;
        if (rc) return rc;
    }
    return visited;
}

struct count_ctx {
    tt_tcp_counts *server, *client;
};

static int count_cb(const tt_sockinfo *s, void *arg)
{
    struct count_ctx *c = arg;
    tt_tcp_counts *t = s->side == TT_SIDE_SERVER ? c->server : c->client;
    if (t) {
        t->n[s->state]++;
        t->total++;
    }
    return 0;
}

TT_API int tt_sockdiag_count(int port, tt_tcp_counts *server, tt_tcp_counts *client)
{
    tt_tcp_counts dummy_s, dummy_c;
    if (!server) server = &dummy_s;
    if (!client) client = &dummy_c;
    memset(server, 0, sizeof *server);
    memset(client, 0, sizeof *client);
    if (port <= 0 || port > 65535) return -EINVAL;
    struct count_ctx c = {server, client};
    int rc = tt_sockdiag_foreach(port, TT_TCP_ALL, count_cb, &c);
    return rc < 0 ? rc : 0;
}

#else /* !__linux__ */

TT_API int tt_sockdiag_foreach(int port, unsigned state_mask, tt_sockdiag_cb cb, void *arg)
{
    (void)port, (void)state_mask, (void)cb, (void)arg;
    return -ENOSYS;
}

TT_API int tt_sockdiag_count(int port, tt_tcp_counts *server, tt_tcp_counts *client)
{
    if (server) memset(server, 0, sizeof *server);
    if (client) memset(client, 0, sizeof *client);
    (void)port;
    return -ENOSYS;
}

#endif
