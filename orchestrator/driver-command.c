/*
 * driver-command — any executable as an agent.  argv elements are templates:
 * {task}, {worktree}, {branch}, {agent_id} are substituted inside each element
 * and the result is passed to execve as it is: chat text can never become
 * shell syntax, because there is no shell.  A follow-up to a running command
 * is written to its stdin as one line; to a finished one it starts the
 * command again in the same worktree with the follow-up as {task}.
 *
 * A task is data, never an option: see task_as_option().
 */
#include "orchestrator/driver.h"
#include "orchestrator/agent.h"
#include "config/config.h"
#include "bot/util.h"

#include <sys/types.h>

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

/*
 * An element that starts with {task} starts with '-' for a task such as
 * "-rf" or "--upload-pack=evil", and the program would parse it as an
 * option.  The configured argv is never altered (a script that reads $1
 * must get the task, not an inserted "--"), so such a task passes only
 * where the admin has ended the options: after a "--" element.  Inside an
 * element ("--message={task}") or after "--" it is always an operand.
 * Returns the index of the unsafe element, or -1.
 */
static ssize_t
task_as_option(const struct cfg_agent *cfg, const char *prompt)
{
	size_t	 i;

	if (prompt == NULL || prompt[0] != '-')
		return -1;
	for (i = 0; i < cfg->ncommand; i++) {
		if (strcmp(cfg->command[i], "--") == 0)
			return -1;
		if (strncmp(cfg->command[i], "{task}", 6) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static int
command_task_check(const struct cfg_agent *cfg, const char *prompt,
    const char *what, char **cause)
{
	if (task_as_option(cfg, prompt) == -1)
		return 0;
	*cause = xasprintf("the %s starts with '-', and agent '%s' passes it"
	    " where its program would read it as an option. Reword it so it"
	    " does not start with '-' (or the admin puts \"--\" before"
	    " \"{task}\" in the agent's command, if the program accepts it)",
	    what, cfg->name);
	return -1;
}

static int
command_task_ok(const struct cfg_agent *cfg, const char *task, char **cause)
{
	return command_task_check(cfg, task, "task", cause);
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
	/* A follow-up's new turn, or a task older than this rule. */
	if (command_task_check(cfg, prompt, followup ? "follow-up" : "task",
	    cause) == -1)
		return NULL;
	argv = xcalloc(cfg->ncommand + 1, sizeof *argv);
	for (i = 0; i < cfg->ncommand; i++)
		argv[i] = driver_subst(cfg->command[i], a, prompt);
	return argv;
}

const struct agent_driver driver_command = {
	.name = "command",
	.argv = command_argv,
	.task_ok = command_task_ok,
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
