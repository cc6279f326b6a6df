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
	/*
	 * Optional.  First signal on cancel/timeout (0 = SIGTERM); SIGTERM
	 * and SIGKILL follow, limits.kill_grace apart, if the agent lingers.
	 */
	int		 stop_signal;
	/*
	 * 1: the child's stdin is a pipe we keep open (the command driver
	 * passes follow-ups as lines on it).  0: stdin is /dev/null, because
	 * the real CLIs wait on an open stdin: `codex exec` reads it until EOF
	 * before starting, Claude Code waits 3 s for it.
	 */
	int		 stdin_pipe;
};

extern const struct agent_driver driver_command, driver_claude, driver_codex;

const struct agent_driver *driver_lookup(const char *name);
void		 driver_argv_free(char **);

/* The command driver's substitution: {task} {worktree} {branch} {agent_id}. */
char		*driver_subst(const char *tmpl, const struct agent *, const char *prompt);

/*
 * The stream parsers of the claude and codex drivers, callable without an
 * agent (unit tests, fuzzers): one line of JSON in, events out through emit,
 * counters in the struct.  Garbage lines return -1 and change nothing.
 */
enum drv_event {
	DRV_PROGRESS,	/* a short line for the card */
	DRV_SESSION,	/* session (claude) or thread (codex) id */
	DRV_SUMMARY,	/* the result text, with cost/turns/usage */
	DRV_FAIL,	/* the run failed; text is the reason */
};

/* An emit callback that forwards to agent_progress/_set_session/... (arg: the agent). */
void		 driver_emit_to_agent(void *arg, enum drv_event, const char *text);


struct drv_stream {
	void		(*emit)(void *arg, enum drv_event, const char *text);
	void		*arg;
	int		 turns;		/* assistant turns (claude: messages;
					 * codex: completed model steps) */
	double		 cost_usd;	/* claude's total_cost_usd, this run */
	long long	 input_tokens, output_tokens;
	int		 ended;		/* a result / turn.completed was seen */
	char		*cwd;		/* from claude's init: paths shown
					 * relative to it */
	char		*last_msg_id;	/* claude: turns are counted by it */
	char		*last_text;	/* codex: the last agent message */
};

int		 claude_stream_line(struct drv_stream *, const char *, size_t);
int		 codex_stream_line(struct drv_stream *, const char *, size_t);
void		 drv_stream_free(struct drv_stream *);	/* contents only */

/*
 * A one-line step for a tool use: "Edit src/login.c", "Run: make test".
 * Truncated, with env-var-looking assignments and token-looking words
 * masked, so a command line never carries a secret into the chat.
 * input may be NULL; cwd (may be NULL) is stripped from paths.
 */
struct json_t;
char		*driver_tool_step(const char *tool, const struct json_t *input,
		    const char *cwd);
/* This executable's path, for the MCP server entry (`switchboard mcp`). */
const char	*driver_self_exe(void);
/* Masks NAME=value and token-like words in place of copying (malloc'd). */
char		*driver_redact(const char *text);

#endif
