/* bench.c — `tether bench` (under construction: replaced by its issue's implementation). */
#include <stdio.h>

#include "cli.h"

int tt_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tether bench: not built yet\n");
    return 2;
}
