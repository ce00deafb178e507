/* client.c — fetch a URL three times over one pooled connection and print what the pool did.
 *   build/examples/client http://127.0.0.1:8080/ */
#include <stdio.h>

#include <tether.h>

int main(int argc, char **argv)
{
    tt_client *c;
    if (argc < 2 || tt_client_new(&c, NULL) < 0) return 2;
    tt_exchange x;
    tt_exchange_init(&x);
    x.url = argv[1];
    for (int i = 0; i < 3; i++) {
        if (tt_client_request(c, &x) < 0) {
            fprintf(stderr, "%s: %s\n", x.error_what,
                    x.sent_state ? "maybe processed" : "not sent");
            break;
        }
        printf("%d, %zu bytes, connection #%u %s\n", x.status, x.resp_body_len, x.conn_id,
               x.reused ? "reused" : "new");
    }
    char js[2048];
    tt_client_stats_json(c, js, sizeof js);
    printf("%s\n", js);
    tt_exchange_cleanup(&x);
    tt_client_free(c);
    return x.error ? 1 : 0;
}
