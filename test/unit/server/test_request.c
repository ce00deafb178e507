/* test_request.c — the request accessors (lib/server/request.c) and the response writer's
 * link to them (lib/server/response.c): tt_req_method_id, tt_res_req, tt_res_aborted.
 *
 * tt_req and tt_res are distinct types: passing one where the other is expected does not
 * compile (-Werror=incompatible-pointer-types). That is checked at compile time here. */
#include <criterion/criterion.h>

#include "helpers.h"

_Static_assert(!__builtin_types_compatible_p(tt_req, tt_res),
               "tt_req and tt_res must be distinct types");
_Static_assert(!__builtin_types_compatible_p(tt_req *, tt_res *),
               "a tt_req * must not convert to a tt_res * silently");

static void method_echo(tt_req *req, tt_res *res, void *data)
{
    (void)data;
    char out[64];
    /* tt_req_aborted(res): the source-compatibility macro sends a response to tt_res_aborted */
    int n = snprintf(out, sizeof out, "id=%d same=%d aborted=%d", (int)tt_req_method_id(req),
                     tt_res_req(res) == req,
                     tt_res_aborted(res) + tt_req_aborted(res) + tt_req_aborted(req));
    tt_res_send(res, 200, "text/plain", out, (size_t)n);
}

Test(request, method_id_and_response_link)
{
    tt_server_config cfg;
    helper_config(&cfg);
    tt_server_config_route(&cfg, "/", method_echo, NULL);
    pthread_t th;
    tt_server *srv = helper_serve(&cfg, &th);
    int fd = connect_port(tt_server_port(srv));
    static const struct {
        const char *method;
        int id;
    } cases[] = {{"GET", TT_HTTP1_M_GET},
                 {"POST", TT_HTTP1_M_POST},
                 {"DELETE", TT_HTTP1_M_DELETE},
                 {"BREW", TT_HTTP1_M_OTHER}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rq[128], buf[1024], want[64];
        int n = snprintf(rq, sizeof rq, "%s / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
                         cases[i].method);
        cr_assert_eq(send(fd, rq, (size_t)n, 0), n);
        snprintf(want, sizeof want, "id=%d same=1 aborted=0", cases[i].id);
        read_some(fd, buf, sizeof buf, want);
        cr_assert(strstr(buf, want), "%s: %s", cases[i].method, buf);
    }
    close(fd);
    helper_stop(srv, th);
}
