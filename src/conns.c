/* conns.c — `tether conns` (under construction: replaced by its issue's implementation). */
#include <stdio.h>

#include "cli.h"

int tt_cmd_conns(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tether conns: not built yet\n");
    return 2;
}
