/* conns.c — `tether conns`: the kernel's view of the TCP sockets on a port (netlink sock_diag
 * through tt_sockdiag_foreach), counted by state and split into the server side (local port is
 * P) and the client side (remote port is P), the processes that hold them (owners.c), with
 * diagnoses in plain words. The remedies name tether's flags for a tether listener, nginx's
 * directives for nginx, and the general remedy for anything else. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether.h>

#include "../cli.h"
#include "../opt.h"
#include "insight.h"

typedef struct snapshot {
    tt_tcp_counts server, client;
    unsigned listen_queued, listen_backlog; /* accept queue of the listeners, summed */
    int list;                               /* --list: print each socket */
    int owners_rc;                          /* 0, or -errno from the /proc walk */
    tt_insight_owners owners;
} snapshot;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int collect_cb(const tt_sockinfo *s, void *arg)
{
    snapshot *snap = arg;
    tt_tcp_counts *t = s->side == TT_SIDE_SERVER ? &snap->server : &snap->client;
    t->n[s->state]++;
    t->total++;
    if (s->state == TT_TCP_LISTEN && s->side == TT_SIDE_SERVER) {
        snap->listen_queued += s->rqueue;
        snap->listen_backlog += s->wqueue;
    }
    if (!snap->owners_rc) snap->owners_rc = tt_insight_owners_add(&snap->owners, s);
    if (snap->list) {
        char l[64], r[64];
        tt_insight_format_addr(&s->local, l, sizeof l);
        tt_insight_format_addr(&s->remote, r, sizeof r);
        const char *peer = s->state == TT_TCP_LISTEN ? "*" : r;
        printf("  %-6s %-11s %-28s ", s->side == TT_SIDE_SERVER ? "server" : "client",
               tt_tcp_state_name(s->state), l);
        if (s->expires_ms)
            printf("%-28s timer %ums", peer, s->expires_ms);
        else
            printf("%s", peer);
        printf("\n");
    }
    return 0;
}

static void print_json(int port, const snapshot *s)
{
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    tt_json_int(&j, "port", port);
    tt_insight_json_tcp_counts(&j, "server", &s->server);
    tt_insight_json_tcp_counts(&j, "client", &s->client);
    tt_json_array(&j, "by_process");
    for (size_t i = 0; i < s->owners.nprocs; i++) {
        const tt_insight_owner *p = &s->owners.procs[i];
        tt_json_object(&j, NULL);
        tt_json_int(&j, "pid", p->pid);
        tt_json_str(&j, "name", p->name);
        tt_json_object(&j, "states");
        for (int k = 0; k < TT_INSIGHT_NTCP; k++) {
            int st = tt_insight_tcp_order[k];
            unsigned n = p->server.n[st] + p->client.n[st];
            if (n) tt_json_uint(&j, tt_tcp_state_name(st), n);
        }
        tt_json_end(&j);
        tt_json_end(&j);
    }
    tt_json_end(&j);
    tt_json_uint(&j, "unowned", s->owners.unowned);
    tt_json_end(&j);
    if (j.err || !j.buf)
        fprintf(stderr, "tether conns: out of memory\n");
    else
        printf("%s\n", j.buf);
    tt_json_free(&j);
}

/* The size of the ephemeral port range, or 0 if unknown. */
static unsigned ephemeral_ports(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned lo = 0, hi = 0;
    if (!f) return 0;
    if (fscanf(f, "%u %u", &lo, &hi) != 2) lo = hi = 0;
    fclose(f);
    return hi >= lo && hi ? hi - lo + 1 : 0;
}

/* The remedies, per kind of listener (tt_insight_kind): tether's flags for tether, nginx's
 * directives for nginx, the general remedy otherwise. */
typedef struct advice {
    const char *time_wait;  /* server-side TIME_WAIT */
    const char *close_wait; /* server-side CLOSE_WAIT */
    const char *deferred;   /* SYN_RECV: how deferred accept is named */
    const char *backlog;    /* accept queue filling */
} advice;

static const advice advices[] = {
    [TT_INSIGHT_TETHER] =
        {"see --keepalive-timeout and --keepalive-requests (connections that live longer close "
         "less often), or --close-wait SEC (wait for the client's FIN: TIME_WAIT moves to the "
         "client)",
         "tether closes as soon as it reads the peer's FIN, so these are responses still in "
         "progress: --send-timeout bounds a stalled write, and /_tether/status (serve --status) "
         "shows the connections still handling",
         "with --defer-accept (tether's default) also clients that connected but sent nothing "
         "yet",
         "more --workers; --max-connections pauses accepting when it is reached"},
    [TT_INSIGHT_NGINX] =
        {"see nginx's keepalive_timeout and keepalive_requests (connections that live longer "
         "close less often); reset_timedout_connection on closes timed-out ones without "
         "TIME_WAIT",
         "nginx closes on the client's FIN unless a request is still in progress: see "
         "send_timeout, proxy_read_timeout and proxy_ignore_client_abort",
         "with `listen ... deferred` also clients that connected but sent nothing yet",
         "worker_processes and worker_connections; the queue length is `listen ... backlog=`"},
    [TT_INSIGHT_OTHER] =
        {"keeping connections alive longer (the server's keep-alive idle timeout and "
         "requests-per-connection limit), or letting clients close first, moves or removes "
         "them",
         "the application must close a socket once a read returns 0 (end of file), and bound "
         "every read and write with a timeout so a stuck handler cannot hold one",
         "with deferred accept (TCP_DEFER_ACCEPT) also clients that connected but sent nothing "
         "yet",
         "accept faster (more accepting threads or processes); the queue length is the listen "
         "backlog"},
};

static const char *plural(unsigned n)
{
    return n == 1 ? "" : "s";
}

/* " — held by NAME (pid P, n), ..." for the processes holding sockets of this side and state. */
static void print_holders(const snapshot *s, int side, int state)
{
    const char *sep = " — held by ";
    for (size_t i = 0; i < s->owners.nprocs; i++) {
        const tt_insight_owner *p = &s->owners.procs[i];
        unsigned n = (side == TT_SIDE_SERVER ? &p->server : &p->client)->n[state];
        if (!n) continue;
        printf("%s%s (pid %d: %u)", sep, p->name, p->pid, n);
        sep = ", ";
    }
}

/* The CLOSE_WAIT findings on both sides, with the processes that hold them. */
static void diagnose_close_wait(int port, const snapshot *s, const advice *adv)
{
    const unsigned *sv = s->server.n, *cl = s->client.n;
    if (sv[TT_TCP_CLOSE_WAIT]) {
        printf("  - %u socket%s in CLOSE_WAIT on :%d", sv[TT_TCP_CLOSE_WAIT],
               plural(sv[TT_TCP_CLOSE_WAIT]), port);
        print_holders(s, TT_SIDE_SERVER, TT_TCP_CLOSE_WAIT);
        printf(" — the application is not closing connections its peers closed (a descriptor "
               "leak or a stuck handler; each one holds a file descriptor until the process "
               "closes it): %s.\n",
               adv->close_wait);
    }
    if (cl[TT_TCP_CLOSE_WAIT]) {
        printf("  - %u client socket%s to :%d in CLOSE_WAIT", cl[TT_TCP_CLOSE_WAIT],
               plural(cl[TT_TCP_CLOSE_WAIT]), port);
        print_holders(s, TT_SIDE_CLIENT, TT_TCP_CLOSE_WAIT);
        printf(" — the server closed them and the client still holds them (an idle pool that "
               "has not noticed; it must check before reuse and close them).\n");
    }
}

/* TIME_WAIT and FIN_WAIT2 findings. */
static void diagnose_closing(int port, const snapshot *s, const advice *adv)
{
    const unsigned *sv = s->server.n, *cl = s->client.n;
    if (sv[TT_TCP_TIME_WAIT])
        printf("  - TIME_WAIT is on the server side — the server closes first (%u socket%s on "
               ":%d); %s.\n",
               sv[TT_TCP_TIME_WAIT], plural(sv[TT_TCP_TIME_WAIT]), port, adv->time_wait);
    if (cl[TT_TCP_TIME_WAIT]) {
        unsigned range = ephemeral_ports();
        printf("  - %u client-side socket%s in TIME_WAIT — the clients closed first, which is "
               "where TIME_WAIT belongs",
               cl[TT_TCP_TIME_WAIT], plural(cl[TT_TCP_TIME_WAIT]));
        if (range && cl[TT_TCP_TIME_WAIT] * 4 >= range)
            printf("; but that is %u%% of the %u ephemeral ports: the clients open a new "
                   "connection per request instead of reusing one (keep-alive, a pool)",
                   cl[TT_TCP_TIME_WAIT] * 100 / range, range);
        printf(".\n");
    }
    if (sv[TT_TCP_FIN_WAIT2])
        printf("  - %u server-side socket%s in FIN_WAIT2 — the server closed and waits for the "
               "peer to close its half%s.\n",
               sv[TT_TCP_FIN_WAIT2], plural(sv[TT_TCP_FIN_WAIT2]),
               cl[TT_TCP_CLOSE_WAIT] ? " (the other ends of the client CLOSE_WAIT sockets above)"
                                     : "; many of them mean clients that never close");
    if (cl[TT_TCP_FIN_WAIT2])
        printf("  - %u client-side socket%s in FIN_WAIT2 — the client closed and waits for the "
               "server to close its half%s.\n",
               cl[TT_TCP_FIN_WAIT2], plural(cl[TT_TCP_FIN_WAIT2]),
               sv[TT_TCP_CLOSE_WAIT] ? " (the other ends of the CLOSE_WAIT sockets above)"
                                     : "; many of them mean a server that does not close");
    if (sv[TT_TCP_LAST_ACK] + cl[TT_TCP_LAST_ACK] + sv[TT_TCP_CLOSING] + cl[TT_TCP_CLOSING] +
        sv[TT_TCP_FIN_WAIT1] + cl[TT_TCP_FIN_WAIT1])
        printf("  - Some sockets are mid-close (FIN_WAIT1, LAST_ACK, CLOSING): a FIN waits for "
               "its acknowledgement; harmless unless they pile up (a peer that vanished).\n");
}

/* Plain-words reading of the counts; prints one "  - " line per finding. */
static void diagnose(int port, const snapshot *s)
{
    const unsigned *sv = s->server.n, *cl = s->client.n;
    const char *lname;
    tt_insight_kind kind = tt_insight_listener(&s->owners, &lname);
    const advice *adv = &advices[kind == TT_INSIGHT_UNKNOWN ? TT_INSIGHT_OTHER : kind];
    printf("\nWhat this means:\n");
    if (s->server.total == 0 && s->client.total == 0) {
        printf("  - No TCP sockets use port %d: nothing listens on :%d and no connection to it "
               "is open or closing.\n",
               port, port);
        return;
    }
    if (lname)
        printf("  - %s listens on :%d%s.\n", lname, port,
               kind == TT_INSIGHT_OTHER ? " (not tether or nginx: the general remedies apply)"
                                        : "");
    if (sv[TT_TCP_LISTEN] == 0 && s->server.total > 0)
        printf("  - Nothing listens on :%d any more; the %u server-side socket%s left are "
               "connections of a server that stopped listening.\n",
               port, s->server.total, plural(s->server.total));
    diagnose_close_wait(port, s, adv);
    diagnose_closing(port, s, adv);
    if (sv[TT_TCP_SYN_RECV])
        printf("  - %u handshake%s half done (SYN_RECV) on :%d — %s; many mean a SYN flood, "
               "silent clients or a server too slow to accept.\n",
               sv[TT_TCP_SYN_RECV], plural(sv[TT_TCP_SYN_RECV]), port, adv->deferred);
    if (sv[TT_TCP_LISTEN] && s->listen_queued)
        printf("  - %u connection%s wait in the accept queue (backlog %u) — the server is "
               "not accepting fast enough: %s.\n",
               s->listen_queued, plural(s->listen_queued), s->listen_backlog, adv->backlog);
    if (!sv[TT_TCP_CLOSE_WAIT] && !cl[TT_TCP_CLOSE_WAIT] && !sv[TT_TCP_TIME_WAIT]) {
        unsigned said = s->server.total - sv[TT_TCP_LISTEN] - sv[TT_TCP_ESTABLISHED] +
                        s->client.total - cl[TT_TCP_ESTABLISHED];
        if (sv[TT_TCP_LISTEN])
            printf("  - Healthy: listening on :%d with %u established connection%s, no "
                   "CLOSE_WAIT and no server-side TIME_WAIT.\n",
                   port, sv[TT_TCP_ESTABLISHED], plural(sv[TT_TCP_ESTABLISHED]));
        else if (!said && s->server.total == 0)
            printf("  - Healthy: %u established connection%s to :%d, no CLOSE_WAIT.\n",
                   cl[TT_TCP_ESTABLISHED], plural(cl[TT_TCP_ESTABLISHED]), port);
        if (sv[TT_TCP_ESTABLISHED] > 1)
            printf("  - Established connections that stay open between requests are keep-alive "
                   "working: each one saves a handshake per request.\n");
    }
}

/* The processes holding the sockets, one line each. */
static void print_owners(const snapshot *s)
{
    if (s->owners_rc) {
        printf("\n(processes not read: %s)\n", strerror(-s->owners_rc));
        return;
    }
    if (!s->owners.nprocs && !s->owners.unowned) return;
    printf("\n  %-16s %8s  %s\n", "PROCESS", "PID", "SOCKETS");
    for (size_t i = 0; i < s->owners.nprocs; i++) {
        const tt_insight_owner *p = &s->owners.procs[i];
        printf("  %-16s %8d  ", p->name, p->pid);
        const char *sep = "";
        for (int k = 0; k < TT_INSIGHT_NTCP; k++) {
            int st = tt_insight_tcp_order[k];
            unsigned n = p->server.n[st] + p->client.n[st];
            if (!n) continue;
            printf("%s%s %u", sep, tt_tcp_state_name(st), n);
            sep = ", ";
        }
        printf("\n");
    }
    if (s->owners.unowned)
        printf("  (%u socket%s held by processes this user cannot read; run as root)\n",
               s->owners.unowned, plural(s->owners.unowned));
}

static void print_plain(int port, const snapshot *s)
{
    printf("TCP sockets on port %d (kernel, via sock_diag): server side %u, client side %u\n\n",
           port, s->server.total, s->client.total);
    printf("  %-12s %8s %8s\n", "STATE", "SERVER", "CLIENT");
    int rows = 0;
    for (int i = 0; i < TT_INSIGHT_NTCP; i++) {
        int st = tt_insight_tcp_order[i];
        if (!s->server.n[st] && !s->client.n[st]) continue;
        printf("  %-12s %8u %8u\n", tt_tcp_state_name(st), s->server.n[st], s->client.n[st]);
        rows++;
    }
    if (!rows) printf("  (none)\n");
    print_owners(s);
    diagnose(port, s);
}

int tt_cmd_conns(int argc, char **argv)
{
    long long port = 8080, count = 0;
    int watch = 0, json = 0, list = 0;
    const tt_opt opts[] = {
        {"port", 'p', TT_OPT_LONG, "P", 1, 65535, &port, "the port to look at", "8080"},
        {"json", 0, TT_OPT_FLAG, NULL, 0, 0, &json,
         "one JSON object: {\"port\": P, \"server\": {STATE: n, ...}, \"client\": {...}, "
         "\"by_process\": [{\"pid\": P, \"name\": \"comm\", \"states\": {STATE: n}}], "
         "\"unowned\": n}; server and client list every state, zeros included",
         NULL},
        {"list", 0, TT_OPT_FLAG, NULL, 0, 0, &list,
         "also print every socket: side, state, local and peer address", NULL},
        {"watch", 0, TT_OPT_INT, "SEC", 1, 86400, &watch,
         "repeat every SEC seconds until interrupted (Ctrl-C)", NULL},
        {"count", 0, TT_OPT_LONG, "N", 1, 1e9, &count, "with --watch: stop after N reports", NULL},
        TT_OPT_END,
    };
    const tt_opt_cmd cmd = {
        "conns", "[--port P] [--json] [--list] [--watch SEC [--count N]]",
        "Counts the kernel's TCP sockets on port P by state, through netlink sock_diag (what `ss`\n"
        "uses), split into the server side (local port is P) and the client side (remote port\n"
        "is P), names the processes that hold them (as `ss -p`: /proc/PID/fd), and says in\n"
        "plain words what the numbers mean.",
        NULL, opts};
    int first, r = tt_opt_parse(&cmd, argc, argv, &first);
    if (r) return r == TT_OPT_HELP ? 0 : 2;
    if (first < argc) return tt_opt_error(&cmd, "unexpected argument '%s'", argv[first]);
    if (count && !watch) count = 1;
    if (watch) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    for (long n = 0; !interrupted; n++) {
        snapshot s;
        memset(&s, 0, sizeof s);
        s.list = list && !json;
        if (watch && !json) {
            time_t now = time(NULL);
            struct tm tm;
            char ts[32];
            strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
            printf("%s── %s\n", n ? "\n" : "", ts);
        }
        if (s.list) printf("Sockets on port %lld:\n", port);
        int rc = tt_sockdiag_foreach((int)port, TT_TCP_ALL, collect_cb, &s);
        if (rc < 0) {
            fprintf(stderr, "tether conns: sock_diag: %s\n", strerror(-rc));
            tt_insight_owners_free(&s.owners);
            return 1;
        }
        if (s.list) printf("\n");
        if (!s.owners_rc) s.owners_rc = tt_insight_owners_resolve(&s.owners);
        if (json)
            print_json((int)port, &s);
        else
            print_plain((int)port, &s);
        tt_insight_owners_free(&s.owners);
        fflush(stdout);
        if (!watch || (count && n + 1 >= count)) break;
        struct timespec ts = {watch, 0};
        while (!interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
    return 0;
}
