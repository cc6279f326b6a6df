/*
 * cli — subcommands of the switchboard binary and their exit codes.
 *
 * Exit codes (documented in README and `switchboard help`):
 *   0 ok, 1 runtime error, 2 usage error, 3 ask cancelled/timed out,
 *   4 cannot reach the daemon (control/agent socket).
 */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <stddef.h>

#define EXIT_OK		0
#define EXIT_ERR	1
#define EXIT_USAGE	2
#define EXIT_CANCELLED	3
#define EXIT_NODAEMON	4

int	cli_main(int argc, char **argv);
/* The i-th command name ("serve", ...), NULL past the last (man page test). */
const char	*cli_command_name(size_t i);

#endif
