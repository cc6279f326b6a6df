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
	/*
	 * Optional.  0 if task can be run at all, else -1 with *cause: asked
	 * before an agent is made, so a task the driver would refuse at
	 * spawn leaves no agent, worktree or branch behind.
	 */
	int		 (*task_ok)(const struct cfg_agent *, const char *task,
			    char **cause);
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
	/*
	 * Optional.  The output tail shown when a turn does not end well, made
	 * readable: the raw tail of a JSON stream is noise to a person.  Takes
	 * the raw tail, returns a malloc'd text (or NULL to keep the raw one).
	 */
	char		*(*human_tail)(const char *raw);
	/*
	 * Optional.  The oldest CLI version the tests cover ("2.1.332"); the
	 * daemon warns at start when the configured program is older.
	 */
	const char	*tested_version;
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
	double		 cost_usd;	/* claude's total_cost_usd as reported:
					 * for a resumed session, cumulative */
	double		 cost_base;	/* claude: the session's cost before
					 * this run, so cost_usd - cost_base is
					 * what this run spent */
	int		 denials;	/* claude: tool uses the CLI denied */
	long long	 input_tokens, output_tokens;
	int		 ended;		/* a result / turn.completed was seen */
	char		*cwd;		/* from claude's init: paths shown
					 * relative to it */
	char		*last_msg_id;	/* claude: turns are counted by it */
	char		*last_text;	/* codex: the last agent message */
	char		*own_failure;	/* codex: a switchboard tool call
					 * failed; the run fails with it */
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
/*
 * The same in two steps, for a stream parser that builds no input object:
 * the tool's kind and the input member its step shows (*key, else *key2
 * when absent; both NULL when it shows none), then the step from that
 * member's string (NULL when absent or not a string).  DRV_TOOL_TODO's
 * step reads more than a string: driver_tool_step only.
 */
enum drv_tool {
	DRV_TOOL_FILE, DRV_TOOL_RUN, DRV_TOOL_GREP, DRV_TOOL_GLOB,
	DRV_TOOL_FETCH, DRV_TOOL_WEB, DRV_TOOL_TASK, DRV_TOOL_TODO,
	DRV_TOOL_OTHER
};
enum drv_tool	 driver_tool_kind(const char *tool, const char **key,
		    const char **key2);
char		*driver_tool_step_of(const char *tool, enum drv_tool kind,
		    const char *arg, const char *cwd);
/*
 * Dollars for a person: 2 decimals from $1 up, else 3 significant digits
 * ("$0.008", "$0.00432", "$0.0135"), so a small budget does not print as
 * "$0.01".
 */
void		 driver_fmt_usd(char *buf, size_t len, double usd);
/*
 * A tail of JSON lines made readable: each line that parses is replaced by
 * its human text (line_text returns malloc'd text or NULL to drop it); other
 * lines are kept.  For the drivers' human_tail.
 */
char		*driver_tail_lines(const char *raw,
		    char *(*line_text)(const struct json_t *));
/*
 * At start: runs each configured claude/codex program's `--version` once
 * (asynchronously on the loop), logs it and warns when it is older than the
 * version the tests cover.  Needs the libuv loop running.
 */
struct config;
void		 driver_check_versions(const struct config *);
/* "2.1.332 (Claude Code)" / "codex-cli 0.171.0" vs "2.1.332": <0, 0, >0. */
int		 driver_version_cmp(const char *output, const char *want);

/* path relative to cwd when under it, else path (borrowed). */
const char	*driver_relative(const char *path, const char *cwd);
/* This executable's path, for the MCP server entry (`switchboard mcp`). */
const char	*driver_self_exe(void);
/* Masks NAME=value and token-like words in place of copying (malloc'd). */
char		*driver_redact(const char *text);

#endif
