/* cli.h — the tether command's subcommands. Each parses its own argv (argv[0] is the
 * subcommand name) and returns the process exit status. Uses only the public API. */
#ifndef TT_CLI_H
#define TT_CLI_H

int tt_cmd_serve(int argc, char **argv);
int tt_cmd_get(int argc, char **argv);
int tt_cmd_bench(int argc, char **argv);
int tt_cmd_conns(int argc, char **argv);

#endif
