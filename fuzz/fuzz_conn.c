/* fuzz_conn.c — libFuzzer target: one server connection's state machine (lib/server/conn.c and
 * everything under it) driven by a byte stream split at fuzzer-chosen points. A server with one
 * worker is set up once, in process, without threads: its loop runs here. Each input is a
 * connection on a socketpair; the input (after a 4-byte seed) goes in pieces of 1..256 bytes,
 * each followed by loop turns and a read of whatever the server answered; then the peer
 * half-closes, then closes. Routes: echo the body ("/"), a chunked streaming response ("/s"),
 * close after the response ("/c"), a slow reader's flow control ("/d"). Checks: no crash, no
 * sanitizer report, no leak, and the connection ends (every conn closed, no open fd left). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server_int.h"
#include "tether.h"

static tt_server *srv;
static tt__worker *w;
static size_t answered; /* bytes the server wrote (FUZZ_CONN_DEBUG=1 prints it per input) */

static void on_drain(tt_res *res, void *data)
{
    (void)data;
    tt_res_end(res);
}

static void route(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    size_t pl, bl;
    const char *p = tt_req_path(req, &pl);
    const char *body = tt_req_body(req, &bl);
    if (pl == 2 && p[1] == 's') { /* chunked: no length */
        tt_res_header(res, "X-Mode", "stream");
        tt_res_start(res, 200, -1);
        tt_res_write(res, "abc", 3);
        tt_res_write(res, body, bl);
        tt_res_end(res);
    } else if (pl == 2 && p[1] == 'c') {
        tt_res_close(res);
        tt_res_send(res, 200, "text/plain", body, bl);
    } else if (pl == 2 && p[1] == 'd') { /* flow control: end from the drain callback */
        static char big[65536];
        tt_res_start(res, 200, (long long)sizeof big);
        tt_res_write(res, big, sizeof big);
        tt_res_on_drain(res, 1024, on_drain, NULL);
    } else {
        tt_res_send(res, 200, "application/octet-stream", body, bl);
    }
}

static void setup(void)
{
    tt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen[0] = "127.0.0.1:0";
    cfg.nlisten = 1;
    cfg.workers = 1;
    cfg.max_body = 4096;
    cfg.max_header = 2048;
    cfg.max_uri = 512;
    cfg.max_pipeline = 8192;
    cfg.discard_limit = 2048;
    cfg.keepalive_requests = 8;
    tt_server_config_route(&cfg, "/", route, NULL);
    if (tt_server_new(&srv, &cfg) < 0) abort();
    /* The worker as worker_setup (server.c) leaves it, without accepting: connections come
     * from here. */
    w = &srv->workers[0];
    if (tt_loop_new(&w->loop) < 0) abort();
    w->pool = tt_bufpool_new(0, 64);
    if (!w->pool) abort();
    w->t0 = tt_loop_now(w->loop);
    tt__accept_init(w);
}

/* Turn the loop and read (and drop) what the server wrote, a few times. */
static void pump(int fd, int turns)
{
    char buf[65536];
    for (int i = 0; i < turns; i++) {
        tt_loop_run_once(w->loop, 0);
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            answered += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv) setup();
    if (size < 4) return 0;
    uint32_t rng = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                   (uint32_t)data[3] << 24;
    data += 4;
    size -= 4;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) abort();
    tt__conn_accepted(w, sv[0], 0);
    for (size_t off = 0; off < size;) {
        rng = rng * 1103515245u + 12345u;
        size_t n = 1 + (rng >> 16) % 256;
        if (n > size - off) n = size - off;
        ssize_t k = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k <= 0) { /* the server closed (k < 0: EPIPE) or is not reading (EAGAIN) */
            pump(sv[1], 2);
            if (k < 0 && w->nconns == 0) break;
            if (++rng % 64 == 0) break; /* bounded: a server that stopped reading */
            continue;
        }
        off += (size_t)k;
        pump(sv[1], 1 + (rng >> 8) % 3);
    }
    shutdown(sv[1], SHUT_WR);
    pump(sv[1], 3);
    close(sv[1]);
    tt_loop_run_once(w->loop, 0); /* the server sees the close */
    tt__worker_free_all(w);       /* what lingers (timers, half-closed) ends now */
    tt_loop_run_once(w->loop, 0);
    if (w->nconns != 0) abort();
    if (getenv("FUZZ_CONN_DEBUG")) fprintf(stderr, "fuzz_conn: %zu bytes answered\n", answered);
    answered = 0;
    return 0;
}
