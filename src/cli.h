/* cli.h — the tether command's subcommands. Each parses its own argv (argv[0] is the
 * subcommand name) and returns the process exit status. Uses only the public API. */
#ifndef TT_CLI_H
#define TT_CLI_H

int tt_cmd_serve(int argc, char **argv);
int tt_cmd_get(int argc, char **argv);
int tt_cmd_bench(int argc, char **argv);
int tt_cmd_conns(int argc, char **argv);
int tt_cmd_proxy(int argc, char **argv);

struct tt_server_config;
/* `serve --status` (src/insight.c): add the /_tether/ routes (status, metrics, conn,
 * dashboard) to cfg, reachable from allow_cidr (comma-separated CIDRs; NULL: loopback only).
 * Call once before tt_server_new. 0, -EINVAL (bad CIDR) or -ENOSPC (route table full). */
int tt_insight_mount(struct tt_server_config *cfg, const char *allow_cidr);

#endif
