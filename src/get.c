/* get.c — `tether get` (under construction: replaced by its issue's implementation). */
#include <stdio.h>

#include "cli.h"

int tt_cmd_get(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tether get: not built yet\n");
    return 2;
}
