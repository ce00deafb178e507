/* stream.c — a streaming handler with flow control: GET /bytes/N sends N bytes (chunked, as if
 * the length were unknown) without ever queueing more than 256 KiB, however slowly the client
 * reads; it stops early if the client goes away.
 * Build: make examples; run: build/examples/stream 127.0.0.1:8082; curl -o /dev/null
 * http://127.0.0.1:8082/bytes/1000000000 */
#include <stdlib.h>
#include <string.h>
#include <tether.h>

enum { PIECE = 64 << 10, HIGH = 256 << 10 };
static char piece[PIECE];

typedef struct stream {
    long long left; /* bytes still to send */
} stream;

/* Write while less than HIGH bytes wait in the connection, then let the loop call back. */
static void more(tt_res *res, void *data)
{
    stream *s = data;
    while (s->left > 0 && !tt_res_aborted(res) && tt_res_pending(res) < HIGH) {
        size_t n = s->left < PIECE ? (size_t)s->left : PIECE;
        if (tt_res_write(res, piece, n) < 0) break; /* the peer left */
        s->left -= (long long)n;
    }
    if (s->left > 0 && !tt_res_aborted(res) && tt_res_on_drain(res, HIGH / 4, more, s) == 0) return;
    tt_res_end(res); /* done, or the peer is gone: end frees the exchange */
    free(s);
}

static void bytes(tt_req *req, tt_res *res, void *data)
{
    size_t plen;
    const char *p = tt_req_path(req, &plen);
    stream *s = malloc(sizeof *s);
    if (!s) {
        tt_res_send(res, 503, "text/plain", "busy\n", 5);
        return;
    }
    s->left = plen > 7 ? atoll(p + 7) : 0; /* "/bytes/N" */
    tt_res_header(res, "Content-Type", "application/octet-stream");
    tt_res_start(res, 200, -1); /* -1: chunked */
    more(res, s);
}

int main(int argc, char **argv)
{
    memset(piece, 'x', sizeof piece);
    tt_server_config cfg = {
        .nlisten = 1, .listen = {argc > 1 ? argv[1] : "127.0.0.1:8082"}, .workers = 1};
    tt_server_config_route(&cfg, "/bytes/", bytes, NULL);
    tt_server *srv;
    if (tt_server_new(&srv, &cfg) < 0) return 1;
    int r = tt_server_run(srv, 1);
    tt_server_free(srv);
    return r < 0;
}
