/* bench/parser.c — HTTP/1.1 head parser speed: a browser-like request (~560 B, 12 fields),
 * a curl-like request and a response head. Prints ns per message and ns per byte (best of 5
 * runs), or, with --once N, parses each message N times without timing (for callgrind:
 *   valgrind --tool=callgrind build/bench/parser --once 10000 browser|curl|response
 * then divide the inclusive instruction count of tt_http1_parse_* by 10000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tether/http1.h"

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

static const char response[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n"
                               "Date: Sun, 22 Nov 2026 04:00:00 GMT\r\n"
                               "Content-Type: text/html\r\nContent-Length: 612\r\n"
                               "Last-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n"
                               "Connection: keep-alive\r\nETag: \"6434bbbe-264\"\r\n"
                               "Accept-Ranges: bytes\r\n\r\n";

static volatile int sink;

static int parse_one(const char *m, size_t n, int is_resp)
{
    tt_header h[32];
    tt_http1_parser p;
    tt_http1_parser_init(&p, NULL);
    if (is_resp) {
        tt_http1_response r = {.headers = h, .max_headers = 32};
        return tt_http1_parse_response(&p, m, n, TT_HTTP1_M_GET, &r);
    }
    tt_http1_request r = {.headers = h, .max_headers = 32};
    return tt_http1_parse_request(&p, m, n, &r);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench(const char *name, const char *m, size_t n, int is_resp, long iters)
{
    if (parse_one(m, n, is_resp) != (int)n) {
        fprintf(stderr, "%s: parse failed\n", name);
        exit(1);
    }
    double best = 1e30;
    for (int run = 0; run < 5; run++) {
        double t0 = now_ns();
        int acc = 0;
        for (long i = 0; i < iters; i++)
            acc += parse_one(m, n, is_resp);
        sink = acc;
        double per = (now_ns() - t0) / (double)iters;
        if (per < best) best = per;
    }
    printf("%-10s %4zu B  %7.1f ns/msg  %5.3f ns/B  %6.0f MB/s\n", name, n, best, best / (double)n,
           (double)n / best * 1e3);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--once")) {
        long k = atol(argv[2]);
        const char *only = argc > 3 ? argv[3] : "";
        int acc = 0;
        if (!*only || !strcmp(only, "browser"))
            for (long i = 0; i < k; i++)
                acc += parse_one(browser, sizeof(browser) - 1, 0);
        if (!*only || !strcmp(only, "curl"))
            for (long i = 0; i < k; i++)
                acc += parse_one(curl, sizeof(curl) - 1, 0);
        if (!*only || !strcmp(only, "response"))
            for (long i = 0; i < k; i++)
                acc += parse_one(response, sizeof(response) - 1, 1);
        sink = acc;
        return 0;
    }
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    bench("browser", browser, sizeof(browser) - 1, 0, iters);
    bench("curl", curl, sizeof(curl) - 1, 0, iters);
    bench("response", response, sizeof(response) - 1, 1, iters);
    return 0;
}
