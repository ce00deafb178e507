/* server.c — a tether server embedded in 30 lines: /hello answers at once, /later answers
 * from a timer 100 ms later (async), everything else is a static file from ./site.
 * Build: make examples; run: build/examples/server 127.0.0.1:8081 */
#include <stdlib.h>
#include <tether.h>

typedef struct later {
    tt_timer timer;
    tt_res *res;
} later;

static void hello(tt_req *req, tt_res *res, void *data)
{
    tt_res_send(res, 200, "text/plain", "hello\n", 6);
}

static void later_fire(tt_loop *loop, tt_timer *t)
{
    later *l = tt_container_of(t, later, timer);
    tt_res_send(l->res, 200, "text/plain", "later\n", 6); /* the request stays valid until here */
    free(l);
}

static void later_start(tt_req *req, tt_res *res, void *data)
{
    later *l = calloc(1, sizeof *l);
    if (!l) {
        tt_res_send(res, 503, "text/plain", "busy\n", 5);
        return;
    }
    l->res = res;
    tt_timer_init(&l->timer, later_fire);
    tt_timer_start(tt_req_loop(req), &l->timer, 100);
}

int main(int argc, char **argv)
{
    tt_server_config cfg = {.nlisten = 1,
                            .listen = {argc > 1 ? argv[1] : "127.0.0.1:8081"},
                            .root = "site",
                            .workers = 1};
    tt_server_config_route(&cfg, "/hello", hello, NULL);
    tt_server_config_route(&cfg, "/later", later_start, NULL);
    tt_server *srv;
    if (tt_server_new(&srv, &cfg) < 0) return 1;
    int r = tt_server_run(srv, 1); /* until SIGTERM/SIGINT: graceful shutdown */
    tt_server_free(srv);
    return r < 0;
}
