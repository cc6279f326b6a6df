/*
 * agent — the subagent runtime: one child process per turn, in its own libgit2
 * worktree on its own branch, scheduled under limits.max_agents and
 * max_agents_per_conversation (a FIFO queue beyond them).
 *
 * Lifecycle: queued → preparing (worktree, on the libuv threadpool: a
 * checkout of a large repo must not stall the loop) → running → finishing
 * (leftover commit + diff stat, threadpool again) → done | failed | cancelled
 * | timeout | interrupted.  stdout/stderr go into a bounded ring so a flood
 * costs at most limits.output_tail bytes; the tail is shown on failure.
 * Cancel and timeout send SIGTERM to the child's process group, then SIGKILL
 * after limits.kill_grace.  The child's environment holds none of the
 * bridge's secrets; it gets SWITCHBOARD_SOCKET/AGENT_TOKEN/AGENT_ID.
 *
 * Agents are reference-counted: the socket, the question tickets and the
 * process callbacks share them; the last unref frees on the next loop turn.
 */
#ifndef SB_AGENT_H
#define SB_AGENT_H

#include <stdint.h>
#include <uv.h>

struct conversation;
struct config;
struct cfg_agent;

enum agent_state {
	AGENT_QUEUED, AGENT_PREPARING, AGENT_RUNNING, AGENT_FINISHING,
	AGENT_IDLE,		/* turn ended well; a follow-up may start another */
	AGENT_DONE, AGENT_FAILED, AGENT_CANCELLED, AGENT_TIMEOUT,
	AGENT_INTERRUPTED
};

#define AGENT_STEPS	5	/* last steps shown on the card */

struct agent;

/* Starts (or queues) a subagent for task in conv.  NULL + *cause on error. */
struct agent	*agent_start(struct conversation *, const char *agent_name,
		    const char *task, const char *by, char **cause);
struct agent	*agent_find(int64_t id);
struct agent	*agent_by_token(const char *token);
/* 0 if it was cancelled or dequeued; -1 if it had already ended. */
int		 agent_cancel(struct agent *, const char *by);
/* Removes an ended agent's worktree (the branch stays); -1 if live. */
int		 agent_cleanup(struct agent *);
/* A follow-up message from the thread. */
void		 agent_followup(struct agent *, const char *text, const char *by);

/* Driver and socket → agent events. */
void		 agent_progress(struct agent *, const char *text);
void		 agent_set_summary(struct agent *, const char *text);
void		 agent_set_session(struct agent *, const char *session);
/* Card must be re-rendered (coalesced by render.card_interval_ms). */
void		 agent_touch(struct agent *);
/*
 * The stream said the turn failed (Claude Code's error_max_turns, Codex's
 * turn.failed): the turn ends failed with reason shown, even if the process
 * exits 0.  The first reason of a turn is kept.
 */
void		 agent_fail(struct agent *, const char *reason);
/*
 * Stops a running turn like cancel (SIGTERM, then SIGKILL), for reason
 * ("budget: max_turns 20 reached").  The agent ends cancelled; the leftover
 * work is committed on its branch as always, and the result says why.
 */
void		 agent_stop(struct agent *, const char *reason);
/*
 * Per-agent state a driver keeps between lines (parser counters); freed
 * with free_fn when the agent is freed or another is set.
 */
void		*agent_driver_data(const struct agent *);
void		 agent_set_driver_data(struct agent *, void *,
		    void (*free_fn)(void *));

/*
 * Observers of the end of every turn (done, failed, cancelled, timeout),
 * called after the result is posted; webhooks report back to GitHub from
 * here.  Register at start; at most a handful.
 */
typedef void	(*agent_end_fn)(struct agent *, void *arg);
void		 agent_on_end(agent_end_fn, void *arg);
/*
 * The id the next agent_start will get (the agents table's next rowid), so
 * a message posted before the start can name it.  Only exact if nothing
 * else starts an agent in between (same loop turn).
 */
int64_t		 agent_next_id(void);

/* Accessors (borrowed). */
int64_t		 agent_id(const struct agent *);
const char	*agent_name(const struct agent *);
const char	*agent_branch(const struct agent *);
const char	*agent_worktree(const struct agent *);
const char	*agent_task(const struct agent *);
const char	*agent_token(const struct agent *);
/* The pid of its running turn (the sandbox's outer bwrap), 0 between turns. */
int		 agent_pid(const struct agent *);
const char	*agent_summary(const struct agent *);	/* may be NULL */
/* The last turn's diff stat ("3 files changed, …"); NULL if none yet. */
const char	*agent_diffstat(const struct agent *);
/*
 * The last min(n, AGENT_STEPS) steps shown on its card, oldest first, into
 * out (borrowed); returns how many.  None for an agent loaded from the store.
 */
int		 agent_steps(const struct agent *, const char **out, int n);
/* Unix time of its first start, 0 if it never started. */
int64_t		 agent_started_s(const struct agent *);
/* From its first start to its last end (or now while live), restarts too. */
int64_t		 agent_elapsed_s(const struct agent *);
/*
 * The exit status of its last turn: 0 with *code (the exit code) and *sig
 * (the signal that killed it, or 0), -1 while a turn runs or before any.
 */
int		 agent_exit_status(const struct agent *, int *code, int *sig);
/* USD its driver reported so far, all turns; -1 if none (unknown). */
double		 agent_cost_usd(const struct agent *);
/* A driver reports the cost of part of a run (added up, stored). */
void		 agent_add_cost(struct agent *, double usd);
const char	*agent_session(const struct agent *);	/* NULL until known */
/* Its entry in the current config; NULL if it is no longer configured. */
const struct cfg_agent *agent_config(const struct agent *);
/* Where drivers keep per-agent files, and the agent socket's path. */
const char	*agent_state_dir(void);
const char	*agent_socket_path(void);
struct conversation *agent_conversation(const struct agent *);
enum agent_state agent_state(const struct agent *);
const char	*agent_state_name(enum agent_state);
int		 agent_is_live(const struct agent *);	/* not ended */
/*
 * The agents of a conversation, ended ones included (loaded from the store
 * on demand): fills out with the newest n in id order, returns how many.
 */
int		 agent_list(const struct conversation *, struct agent **, int n);
/* Agents in memory (live, or ended less than limits.keep_ended ago). */
size_t		 agent_loaded_count(void);
/* Every live agent, for `switchboard status`. */
int		 agent_list_all(struct agent **, int n);
/*
 * The last max bytes of its output as a person reads them (a JSON stream
 * made readable by its driver), from a line start (malloc'd).
 */
char		*agent_output_tail(const struct agent *, size_t max);
/* The human line for `status` (malloc'd). */
char		*agent_status_line(const struct agent *);

void		 agent_ref(struct agent *);
void		 agent_unref(struct agent *);

/* Config and paths; must be set before agent_start. */
void		 agent_configure(const struct config *, const char *socket_path);
/* On start: agents recorded as live are reported interrupted. */
void		 agent_recover(void);
/* Shutdown: terminate children, record them interrupted. */
void		 agent_shutdown(void);
/* 1 while a process group sent SIGTERM at shutdown still exists. */
int		 agent_survivors_alive(void);
/* Last step of shutdown: SIGKILL the groups that outlived SIGTERM. */
void		 agent_kill_survivors(void);
size_t		 agent_live_count(void);

#endif
