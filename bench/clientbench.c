/* clientbench — tether's asynchronous client pool vs libcurl's multi interface (connection
 * reuse), same server, same run: requests/s and client CPU µs per request (getrusage).
 *
 *   clientbench URL [-c CONNS] [-n REQUESTS] [-r ROUNDS] [-k]
 * e.g. build/floor 18099 & build/bench/clientbench http://127.0.0.1:18099/ -c 50 -n 200000
 * Rounds alternate tether and libcurl; the medians are printed. Results: docs/bench-client.md.
 * https:// URLs: both clients over TLS (-k: neither verifies the certificate), and after the
 * rounds one tether pass with a new connection per request (Connection: close) that reports
 * its TLS handshakes, full and resumed (the client's per-route session pool). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <tether.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct result {
    double rps, cpu_us;
    long errors;
} result;

/* ---- tether ---- */
static long t_left, t_done, t_err;
static tt_client *t_client;
static int insecure;  /* -k */
static int t_noreuse; /* the new-connection pass: Connection: close on every request */

static int t_body(tt_exchange *x, const char *p, size_t n)
{
    return 0;
}

static void t_on_done(tt_exchange *x)
{
    t_done++;
    if (x->error || x->status != 200) t_err++;
    if (t_left > 0) {
        t_left--;
        if (tt_client_start(t_client, x) < 0) t_err++;
    }
}

static result run_tether(const char *url, int conns, long n)
{
    tt_client_opts o;
    tt_client_opts_default(&o);
    o.max_per_route = conns;
    o.max_total = conns;
    o.insecure = insecure;
    tt_client_new(&t_client, &o);
    tt_exchange *xs = calloc((size_t)conns, sizeof *xs);
    t_left = n;
    t_done = t_err = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < conns && t_left > 0; i++, t_left--) {
        tt_exchange_init(&xs[i]);
        xs[i].url = url;
        xs[i].on_body = t_body;
        xs[i].on_done = t_on_done;
        xs[i].no_keepalive = t_noreuse;
        tt_client_start(t_client, &xs[i]);
    }
    tt_client_wait(t_client, -1);
    double t1 = now_s(), c1 = cpu_s();
    tt_client_stats st;
    tt_client_get_stats(t_client, &st);
    if (t_noreuse)
        printf("new connections: %llu opened, TLS handshakes %llu full, %llu resumed, %llu "
               "failed\n",
               (unsigned long long)st.connections_opened,
               (unsigned long long)st.tls_handshakes_full,
               (unsigned long long)st.tls_handshakes_resumed, (unsigned long long)st.tls_failures);
    else if (st.tls_handshakes_full + st.tls_handshakes_resumed)
        printf("tether: TLS handshakes %llu full, %llu resumed\n",
               (unsigned long long)st.tls_handshakes_full,
               (unsigned long long)st.tls_handshakes_resumed);
    if (st.connections_opened > (uint64_t)conns && !t_noreuse)
        fprintf(stderr, "tether: %llu connections opened\n",
                (unsigned long long)st.connections_opened);
    for (int i = 0; i < conns; i++)
        tt_exchange_cleanup(&xs[i]);
    free(xs);
    tt_client_free(t_client);
    result r = {(double)t_done / (t1 - t0), (c1 - c0) * 1e6 / (double)t_done, t_err};
    return r;
}

/* ---- libcurl multi ---- */
static size_t c_body(char *p, size_t sz, size_t nm, void *u)
{
    return sz * nm;
}

static result run_curl(const char *url, int conns, long n)
{
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
    CURL **hs = calloc((size_t)conns, sizeof *hs);
    long left = n, done = 0, err = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < conns && left > 0; i++, left--) {
        hs[i] = curl_easy_init();
        curl_easy_setopt(hs[i], CURLOPT_URL, url);
        curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, c_body);
        curl_easy_setopt(hs[i], CURLOPT_TCP_NODELAY, 1L);
        if (insecure) {
            curl_easy_setopt(hs[i], CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(hs[i], CURLOPT_SSL_VERIFYHOST, 0L);
        }
        curl_multi_add_handle(m, hs[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *h = msg->easy_handle;
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            done++;
            if (msg->data.result != CURLE_OK || code != 200) err++;
            curl_multi_remove_handle(m, h);
            if (left > 0) {
                left--;
                curl_multi_add_handle(m, h);
                running = 1;
            }
        }
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double t1 = now_s(), c1 = cpu_s();
    for (int i = 0; i < conns; i++)
        if (hs[i]) curl_easy_cleanup(hs[i]);
    free(hs);
    curl_multi_cleanup(m);
    result r = {(double)done / (t1 - t0), (c1 - c0) * 1e6 / (double)done, err};
    return r;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    int conns = 50, rounds = 3;
    long n = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-k"))
            insecure = 1;
        else
            url = argv[i];
    }
    if (!url || conns < 1 || n < 1 || rounds < 1 || rounds > 15) {
        fprintf(stderr, "usage: clientbench URL [-c CONNS] [-n REQUESTS] [-r ROUNDS<=15] [-k]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double trps[15], tcpu[15], crps[15], ccpu[15];
    long errs = 0;
    for (int r = 0; r < rounds; r++) {
        result t = run_tether(url, conns, n);
        result c = run_curl(url, conns, n);
        trps[r] = t.rps;
        tcpu[r] = t.cpu_us;
        crps[r] = c.rps;
        ccpu[r] = c.cpu_us;
        errs += t.errors + c.errors;
        printf("round %d: tether %.0f req/s %.2f us/req | libcurl %.0f req/s %.2f us/req\n", r + 1,
               t.rps, t.cpu_us, c.rps, c.cpu_us);
    }
    double a = median(trps, rounds), b = median(tcpu, rounds), c = median(crps, rounds),
           d = median(ccpu, rounds);
    printf("median: tether %.0f req/s %.2f us/req | libcurl %.0f req/s %.2f us/req | "
           "throughput x%.2f, cpu/req x%.2f better | errors %ld\n",
           a, b, c, d, a / c, d / b, errs);
    if (!strncmp(url, "https://", 8)) { /* do new connections resume? */
        t_noreuse = 1;
        result t = run_tether(url, conns < 10 ? conns : 10, n < 500 ? n : 500);
        errs += t.errors;
    }
    curl_global_cleanup();
    return errs ? 1 : 0;
}
