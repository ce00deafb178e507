/* main.c — `tether`: dispatch to serve, get, bench, proxy and conns. */
#include <stdio.h>
#include <string.h>

#include <tether.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"serve", tt_cmd_serve, "serve HTTP/1.1 with keep-alive, pipelining and timeouts"},
    {"get", tt_cmd_get, "fetch URLs over a pooled, reused connection"},
    {"bench", tt_cmd_bench, "load-test a server and show what keep-alive buys"},
    {"proxy", tt_cmd_proxy, "reverse-proxy to upstreams over pooled keep-alive connections"},
    {"conns", tt_cmd_conns, "show the kernel's TCP sockets on a port, by state and side"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tether <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  tether <command> --help   options of one command\n"
               "  tether --version          print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("tether %s\n", tt_version());
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tether: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
