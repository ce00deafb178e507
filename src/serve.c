/* serve.c — `tether serve` (under construction: replaced by its issue's implementation). */
#include <stdio.h>

#include "cli.h"

int tt_cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tether serve: not built yet\n");
    return 2;
}
