/*
 * main — the switchboard command line: a table of subcommands.
 */
#include "bot/cli.h"

int
main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
