/*
 * driver-command — any executable as an agent.  argv elements are templates:
 * {task}, {worktree}, {branch}, {agent_id} are substituted inside each element
 * and the result is passed to execve as it is: chat text can never become
 * shell syntax, because there is no shell.  A follow-up to a running command
 * is written to its stdin as one line; to a finished one it starts the
 * command again in the same worktree with the follow-up as {task}.
 */
#include "orchestrator/driver.h"
#include "orchestrator/agent.h"
#include "config/config.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

char *
driver_subst(const char *tmpl, const struct agent *a, const char *prompt)
{
	static const char *const names[] = { "{task}", "{worktree}",
	    "{branch}", "{agent_id}" };
	struct buf	 b = { 0 };
	const char	*p = tmpl, *val;
	char		 idbuf[32];
	size_t		 i, n;

	while (*p != '\0') {
		for (i = 0; i < nitems(names); i++) {
			n = strlen(names[i]);
			if (strncmp(p, names[i], n) == 0)
				break;
		}
		if (i == nitems(names)) {
			buf_add(&b, p, 1);
			p++;
			continue;
		}
		switch (i) {
		case 0:
			val = prompt;
			break;
		case 1:
			val = agent_worktree(a);
			break;
		case 2:
			val = agent_branch(a);
			break;
		default:
			snprintf(idbuf, sizeof idbuf, "%lld",
			    (long long)agent_id(a));
			val = idbuf;
			break;
		}
		buf_adds(&b, val != NULL ? val : "");
		p += strlen(names[i]);
	}
	return buf_steal(&b);
}

void
driver_argv_free(char **argv)
{
	size_t	 i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

static char **
command_argv(const struct agent *a, const struct cfg_agent *cfg,
    const char *prompt, int followup, char **cause)
{
	char	**argv;
	size_t	  i;

	if (cfg->ncommand == 0 || cfg->command == NULL) {
		*cause = xasprintf("agent %s has no command", cfg->name);
		return NULL;
	}
	argv = xcalloc(cfg->ncommand + 1, sizeof *argv);
	for (i = 0; i < cfg->ncommand; i++)
		argv[i] = driver_subst(cfg->command[i], a, prompt);
	return argv;
}

const struct agent_driver driver_command = {
	.name = "command",
	.argv = command_argv,
	.on_line = NULL,		/* output only feeds the ring */
	.followup_running = NULL,	/* agent.c writes it to stdin */
	.stdin_pipe = 1,
};

static const struct agent_driver *const drivers[] = {
	&driver_command,
	&driver_claude,
	&driver_codex,
	NULL
};

const struct agent_driver *
driver_lookup(const char *name)
{
	size_t	 i;

	for (i = 0; drivers[i] != NULL; i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}
