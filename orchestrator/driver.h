/*
 * driver — how a kind of agent is run: its argv and how to read its output.
 *
 * One const struct per driver, found by name in a static table.  The agent
 * module owns the process, pipes, timers and worktree; a driver only turns
 * config + prompt into argv and the child's stdout lines into agent events
 * (agent_progress, agent_set_summary, agent_set_session).
 */
#ifndef SB_DRIVER_H
#define SB_DRIVER_H

#include <stddef.h>

struct agent;
struct cfg_agent;

struct agent_driver {
	const char	*name;
	/*
	 * Mandatory.  argv for a turn: the first (followup 0, prompt = task)
	 * or a later one (followup 1).  Returns a malloc'd NULL-terminated
	 * vector of malloc'd strings, or NULL with *cause.
	 */
	char		**(*argv)(const struct agent *, const struct cfg_agent *,
			    const char *prompt, int followup, char **cause);
	/* Optional.  One line of stdout, without the newline. */
	void		 (*on_line)(struct agent *, const char *line, size_t len);
	/*
	 * Optional.  A follow-up for a running agent: 0 if delivered now,
	 * -1 to queue it for the next turn.
	 */
	int		 (*followup_running)(struct agent *, const char *text);
};

const struct agent_driver *driver_lookup(const char *name);
void		 driver_argv_free(char **);

/* The command driver's substitution: {task} {worktree} {branch} {agent_id}. */
char		*driver_subst(const char *tmpl, const struct agent *, const char *prompt);

#endif
