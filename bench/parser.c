/* bench/parser.c — HTTP/1.1 head parser speed, tether beside picohttpparser in one run.
 *
 * The same messages go through tether's parser (at the CPU level it picks, and forced to each
 * lower level it supports) and through picohttpparser built twice by the Makefile: -O2 -msse4.2
 * (x86-64 only) and plain -O2 (its symbols renamed phr_*_plain). Messages: the 703-byte request
 * of picohttpparser's own bench.c, a browser-like request (570 B), a curl-like request and a
 * response head, and a tiny request as wrk sends (51 B). Each cell is the best of R runs of N
 * parses, the parsers interleaved run by run; the table gives ns per message, ns per byte and
 * tether's time over each picohttpparser build.
 *
 *   build/bench/parser [N [R]]      default N = 10000, R = 101 (many short runs: the best one
 *                                    is the one no other process interrupted)
 *   build/bench/parser --once N [pico|browser|curl|response]   N parses, no timing (callgrind:
 *     valgrind --tool=callgrind build/bench/parser --once 10000 pico, then divide the inclusive
 *     instruction count of tt_http1_parse_* by 10000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peers/picohttpparser/picohttpparser.h"
#include "tether/http1.h"

/* Internal knobs of lib/http1/scan.c (linked from the static library). */
int tt__http1_simd_force(int level);
int tt__http1_simd_level(void);
int tt__http1_simd_best(void);
const char *tt__http1_simd_name(int level);

/* picohttpparser -O2 -msse4.2 is only built on x86-64: weak, NULL when absent. */
#pragma weak phr_parse_request
#pragma weak phr_parse_response
int phr_parse_request_plain(const char *buf, size_t len, const char **method, size_t *method_len,
                            const char **path, size_t *path_len, int *minor_version,
                            struct phr_header *headers, size_t *num_headers, size_t last_len);
int phr_parse_response_plain(const char *buf, size_t len, int *minor_version, int *status,
                             const char **msg, size_t *msg_len, struct phr_header *headers,
                             size_t *num_headers, size_t last_len);

static const char pico[] =
    "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"
    "Host: www.kittyhell.com\r\n"
    "User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) "
    "Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n"
    "Accept-Encoding: gzip,deflate\r\n"
    "Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n"
    "Keep-Alive: 115\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; "
    "__utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; "
    "__utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/"
    "reader/|utmcmd=referral\r\n"
    "\r\n";

static const char browser[] =
    "GET /wp-content/uploads/2010/03/hello-kitty.jpg HTTP/1.1\r\n"
    "Host: www.kittyhell.com\r\n"
    "User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) "
    "Gecko/20100401 Firefox/3.6.3\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n"
    "Accept-Encoding: gzip,deflate\r\n"
    "Keep-Alive: 115\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Dest: image\r\n"
    "Referer: https://www.kittyhell.com/\r\n"
    "\r\n";

static const char curl[] = "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                           "User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

static const char tiny[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

static const char response[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n"
                               "Date: Sun, 22 Nov 2026 04:00:00 GMT\r\n"
                               "Content-Type: text/html\r\nContent-Length: 612\r\n"
                               "Last-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n"
                               "Connection: keep-alive\r\nETag: \"6434bbbe-264\"\r\n"
                               "Accept-Ranges: bytes\r\n\r\n";

static const struct msg {
    const char *name;
    const char *m;
    size_t n;
    int is_resp;
} msgs[] = {
    {"pico", pico, sizeof(pico) - 1, 0},
    {"browser", browser, sizeof(browser) - 1, 0},
    {"curl", curl, sizeof(curl) - 1, 0},
    {"tiny", tiny, sizeof(tiny) - 1, 0},
    {"response", response, sizeof(response) - 1, 1},
};
#define NMSGS (sizeof(msgs) / sizeof(msgs[0]))

static volatile int sink;

static int tether_one(const struct msg *g)
{
    tt_header h[32];
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    if (g->is_resp) {
        tt_http1_response r = {.headers = h, .max_headers = 32};
        return tt_http1_parse_response(&p, g->m, g->n, TT_HTTP1_M_GET, &r);
    }
    tt_http1_request r = {.headers = h, .max_headers = 32};
    return tt_http1_parse_request(&p, g->m, g->n, &r);
}

typedef int (*pico_req_fn)(const char *, size_t, const char **, size_t *, const char **, size_t *,
                           int *, struct phr_header *, size_t *, size_t);
typedef int (*pico_res_fn)(const char *, size_t, int *, int *, const char **, size_t *,
                           struct phr_header *, size_t *, size_t);

static int pico_one(const struct msg *g, pico_req_fn rq, pico_res_fn rs)
{
    struct phr_header h[32];
    size_t nh = 32;
    int minor;
    if (g->is_resp) {
        int status;
        const char *msg;
        size_t msg_len;
        return rs(g->m, g->n, &minor, &status, &msg, &msg_len, h, &nh, 0);
    }
    const char *method, *path;
    size_t method_len, path_len;
    return rq(g->m, g->n, &method, &method_len, &path, &path_len, &minor, h, &nh, 0);
}

/* One column of the table: a parser (tether at a SIMD level, or a picohttpparser build). */
typedef struct column {
    char name[24];
    int level;      /* tether: SIMD level; -1: picohttpparser */
    pico_req_fn rq; /* picohttpparser builds */
    pico_res_fn rs;
    double best[NMSGS];
} column;

static int run_one(const column *c, const struct msg *g)
{
    return c->level >= 0 ? tether_one(g) : pico_one(g, c->rq, c->rs);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Time n parses of g by c; returns ns per parse. */
static double time_cell(const column *c, const struct msg *g, long n)
{
    if (c->level >= 0) tt__http1_simd_force(c->level);
    double t0 = now_ns();
    int acc = 0;
    for (long i = 0; i < n; i++)
        acc += run_one(c, g);
    sink = acc;
    return (now_ns() - t0) / (double)n;
}

static int add_columns(column *cols)
{
    int nc = 0, top = tt__http1_simd_best();
    for (int l = top; l >= 0; l--) {
        column *c = &cols[nc++];
        memset(c, 0, sizeof(*c));
        snprintf(c->name, sizeof(c->name), "tether-%s", tt__http1_simd_name(l));
        c->level = l;
    }
    if (phr_parse_request && phr_parse_response)
        cols[nc++] = (column){"pico-sse4.2", -1, phr_parse_request, phr_parse_response, {0}};
    cols[nc++] = (column){"pico-O2", -1, phr_parse_request_plain, phr_parse_response_plain, {0}};
    return nc;
}

static void print_table(const column *cols, int nc)
{
    const column *sse = NULL, *plain = NULL;
    for (int k = 0; k < nc; k++) {
        if (!strcmp(cols[k].name, "pico-sse4.2")) sse = &cols[k];
        if (!strcmp(cols[k].name, "pico-O2")) plain = &cols[k];
    }
    printf("%-9s %5s  %-15s %9s %7s %10s %8s\n", "message", "bytes", "parser", "ns/msg", "ns/B",
           "/pico-sse", "/pico-O2");
    for (size_t m = 0; m < NMSGS; m++) {
        for (int k = 0; k < nc; k++) {
            const column *c = &cols[k];
            double t = c->best[m];
            printf("%-9s %5zu  %-15s %9.1f %7.3f", msgs[m].name, msgs[m].n, c->name, t,
                   t / (double)msgs[m].n);
            if (c->level >= 0 && sse) printf(" %9.2fx", t / sse->best[m]);
            if (c->level >= 0 && !sse) printf(" %10s", "-");
            if (c->level >= 0) printf(" %7.2fx", t / plain->best[m]);
            printf("\n");
        }
    }
}

static int once(long k, const char *only)
{
    column c = {.level = tt__http1_simd_level()};
    int acc = 0;
    for (size_t m = 0; m < NMSGS; m++)
        if (!*only || !strcmp(only, msgs[m].name))
            for (long i = 0; i < k; i++)
                acc += run_one(&c, &msgs[m]);
    sink = acc;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--once"))
        return once(atol(argv[2]), argc > 3 ? argv[3] : "");
    long n = argc > 1 ? atol(argv[1]) : 10000;
    int runs = argc > 2 ? atoi(argv[2]) : 101;
    if (n <= 0 || runs <= 0) {
        fprintf(stderr, "usage: %s [N [RUNS]] | --once N [message]\n", argv[0]);
        return 2;
    }
    column cols[8];
    int nc = add_columns(cols);
    for (int k = 0; k < nc; k++)
        for (size_t m = 0; m < NMSGS; m++) {
            if (cols[k].level >= 0) tt__http1_simd_force(cols[k].level);
            if (run_one(&cols[k], &msgs[m]) != (int)msgs[m].n) {
                fprintf(stderr, "%s: %s: parse failed\n", cols[k].name, msgs[m].name);
                return 1;
            }
            cols[k].best[m] = 1e30;
        }
    for (int r = 0; r < runs; r++)
        for (size_t m = 0; m < NMSGS; m++)
            for (int k = 0; k < nc; k++) {
                double t = time_cell(&cols[k], &msgs[m], n);
                if (t < cols[k].best[m]) cols[k].best[m] = t;
            }
    tt__http1_simd_force(-1);
    printf("best of %d runs x %ld parses; tether's own choice: %s\n", runs, n,
           tt__http1_simd_name(tt__http1_simd_level()));
    print_table(cols, nc);
    return 0;
}
