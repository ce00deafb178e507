/* tether/sockdiag.h — the kernel's view of TCP sockets through netlink sock_diag (as `ss` does):
 * counts by TCP state for a port, split into the server side (local port is P) and the client
 * side (remote port is P), and an iterator over sockets with their 4-tuple and state.
 * Linux only; on other systems every call returns -ENOSYS. Calls are blocking and thread-safe
 * (each opens and closes its own netlink socket). Errors are negative errno values. */
#ifndef TETHER_SOCKDIAG_H
#define TETHER_SOCKDIAG_H

#include <stdint.h>

#include "tether/socket.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TCP states, numbered as the kernel numbers them (include/net/tcp_states.h). */
typedef enum tt_tcp_state {
    TT_TCP_ESTABLISHED = 1,
    TT_TCP_SYN_SENT = 2,
    TT_TCP_SYN_RECV = 3,
    TT_TCP_FIN_WAIT1 = 4,
    TT_TCP_FIN_WAIT2 = 5,
    TT_TCP_TIME_WAIT = 6,
    TT_TCP_CLOSE = 7,
    TT_TCP_CLOSE_WAIT = 8,
    TT_TCP_LAST_ACK = 9,
    TT_TCP_LISTEN = 10,
    TT_TCP_CLOSING = 11,
    TT_TCP_NSTATES = 12 /* array size for indexing by state; index 0 is unused */
} tt_tcp_state;

/* Bit for one state in a state mask (tt_sockdiag_foreach); TT_TCP_ALL selects every state. */
#define TT_TCP_BIT(st) (1u << (st))
#define TT_TCP_ALL     0xffeu

/* Socket counts indexed by tt_tcp_state (n[0] unused); total is the sum. */
typedef struct tt_tcp_counts {
    unsigned n[TT_TCP_NSTATES];
    unsigned total;
} tt_tcp_counts;

/* One TCP socket as the kernel reports it. Valid only during the callback that receives it. */
typedef struct tt_sockinfo {
    int family;            /* AF_INET or AF_INET6 */
    int state;             /* tt_tcp_state */
    tt_addr local, remote; /* the 4-tuple (remote is all-zero for LISTEN) */
    int local_port, remote_port;
    uint32_t inode;          /* socket inode (0 for TIME_WAIT and request sockets) */
    uint32_t uid;            /* owning user */
    uint32_t rqueue, wqueue; /* bytes queued to read / to send (LISTEN: backlog, max) */
    uint32_t expires_ms;     /* time left on the pending timer, 0 when none */
    int side;                /* for port-filtered walks: 1 server side, 2 client side */
} tt_sockinfo;

#define TT_SIDE_SERVER 1 /* local port is the port asked about */
#define TT_SIDE_CLIENT 2 /* remote port is the port asked about */

/* Called once per socket; return nonzero to stop the walk (that value is then returned). */
typedef int (*tt_sockdiag_cb)(const tt_sockinfo *s, void *arg);

/* Walk TCP sockets (IPv4 and IPv6) whose state is in state_mask (TT_TCP_BIT/TT_TCP_ALL) and,
 * when port > 0, whose local or remote port is port (sets s->side; port <= 0: every socket,
 * side 0). Returns the number of sockets visited, the callback's nonzero value, or -errno. */
int tt_sockdiag_foreach(int port, unsigned state_mask, tt_sockdiag_cb cb, void *arg);

/* Count TCP sockets on port by state: server gets those whose local port is port, client those
 * whose remote port is port (a socket matching both counts as server). Either may be NULL.
 * Both are zeroed first. Returns 0 or -errno (-EINVAL for a port outside 1..65535). */
int tt_sockdiag_count(int port, tt_tcp_counts *server, tt_tcp_counts *client);

/* The kernel-style name of a TCP state ("ESTABLISHED", "TIME_WAIT", ...), or "UNKNOWN".
 * The string is static. */
const char *tt_tcp_state_name(int state);

/* The state whose name is name (case-insensitive), or -EINVAL. */
int tt_tcp_state_parse(const char *name);

#ifdef __cplusplus
}
#endif

#endif
