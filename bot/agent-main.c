/*
 * switchboard-agent — the small executable agents call to talk back:
 *
 *	switchboard-agent agent progress TEXT
 *	switchboard-agent agent ask QUESTION [--choice X]... [--timeout S]
 *	switchboard-agent agent done SUMMARY
 *
 * (the word "agent" may be left out).  It links libc and jansson only, so a
 * call costs a process start, not the loading of the daemon's libraries.
 * Anything else is handed to the full `switchboard` beside it, so an agent
 * whose SWITCHBOARD_BIN is this program can still run `$SWITCHBOARD_BIN mcp`.
 * So are calls over the network (SWITCHBOARD_URL, agents in pods): TLS
 * would cost every local call ~0.5 ms of loading libssl, and an agent image
 * that runs `switchboard mcp` carries the full binary anyway.
 */
#include "bot/agentcmd.h"
#include "bot/cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
usage(void)
{
	fprintf(stderr, "usage: switchboard-agent agent progress TEXT\n"
	    "       switchboard-agent agent ask QUESTION [--choice X]..."
	    " [--timeout SECONDS]\n"
	    "       switchboard-agent agent done SUMMARY\n");
	return EXIT_USAGE;
}

/* Runs the full binary (same directory, named switchboard) with argv. */
static int
run_full(char **argv)
{
	char	 self[PATH_MAX], *slash;
	ssize_t	 n;

	if ((n = readlink("/proc/self/exe", self, sizeof self - 16)) <= 0)
		return EXIT_ERR;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return EXIT_ERR;
	strcpy(slash + 1, "switchboard");
	argv[0] = self;
	execv(self, argv);
	fprintf(stderr, "switchboard-agent: cannot run %s: %s\n", self,
	    strerror(errno));
	return EXIT_ERR;
}

/* `switchboard agent OP ...` for argv = { any, OP, ... }. */
static int
run_agent_full(int argc, char **argv)
{
	char	**v;
	int	  i, n = 0;

	v = calloc((size_t)argc + 2, sizeof *v);
	if (v == NULL)
		return EXIT_ERR;
	v[n++] = argv[0];
	v[n++] = "agent";
	for (i = 1; i < argc; i++)
		v[n++] = argv[i];
	return run_full(v);
}

int
main(int argc, char **argv)
{
	int	 rc;

	/*
	 * An orphaned agent's stdout and stderr are pipes nobody reads any
	 * more: writing there must fail with EPIPE, not kill us with SIGPIPE
	 * (exit 141) before we can exit with a code that says what happened.
	 */
	signal(SIGPIPE, SIG_IGN);

	if (argc >= 2 && strcmp(argv[1], "agent") == 0) {
		argc--;
		argv++;
	} else if (argc < 2 || (strcmp(argv[1], "progress") != 0 &&
	    strcmp(argv[1], "ask") != 0 && strcmp(argv[1], "done") != 0))
		return run_full(argv);
	if (getenv("SWITCHBOARD_URL") != NULL &&
	    *getenv("SWITCHBOARD_URL") != '\0')
		return run_agent_full(argc, argv);
	if ((rc = agentcmd_main(argc, argv, NULL)) == AGENTCMD_USAGE)
		return usage();
	return rc;
}
