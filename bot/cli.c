#include "bot/cli.h"
#include "bot/log.h"
#include "bot/util.h"

#include <stdio.h>
#include <string.h>

#define SB_VERSION "0.1.0"

struct cli_cmd {
	const char	*name;
	const char	*usage;
	const char	*help;
	int		(*fn)(int, char **);
};

static int	cmd_version(int, char **);
static int	cmd_help(int, char **);

static const struct cli_cmd cli_cmds[] = {
	{ "version", "version", "print the version", cmd_version },
	{ "help", "help [COMMAND]", "show help", cmd_help },
	{ NULL, NULL, NULL, NULL }
};

static const struct cli_cmd *
cli_lookup(const char *name)
{
	const struct cli_cmd	*c;

	for (c = cli_cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void
usage_all(FILE *fp)
{
	const struct cli_cmd	*c;

	fprintf(fp, "usage: switchboard COMMAND [ARGS]\n\ncommands:\n");
	for (c = cli_cmds; c->name != NULL; c++)
		fprintf(fp, "  %-34s %s\n", c->usage, c->help);
	fprintf(fp, "\nexit codes: 0 ok, 1 error, 2 usage, 3 cancelled/timed out,"
	    " 4 daemon not reachable\n");
}

static int
cmd_version(int argc, char **argv)
{
	printf("switchboard %s\n", SB_VERSION);
	return EXIT_OK;
}

static int
cmd_help(int argc, char **argv)
{
	const struct cli_cmd	*c;

	if (argc > 1 && (c = cli_lookup(argv[1])) != NULL) {
		printf("usage: switchboard %s\n  %s\n", c->usage, c->help);
		return EXIT_OK;
	}
	usage_all(stdout);
	return EXIT_OK;
}

int
cli_main(int argc, char **argv)
{
	const struct cli_cmd	*c;

	if (argc < 2) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(argc - 1, argv + 1);
	if ((c = cli_lookup(argv[1])) == NULL) {
		fprintf(stderr, "switchboard: unknown command '%s'\n", argv[1]);
		usage_all(stderr);
		return EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}
