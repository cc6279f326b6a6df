/*
 * agent-int — what the agent module's files share, and nobody else.
 *
 *   agent.c          lifecycle: start, turns, scheduling, cancel, follow-ups
 *   agent-view.c     what an agent shows: status card, output tail, status
 *                    and diff lines
 *   agent-restart.c  across restarts: configure, load on demand, recover,
 *                    shutdown, the retention sweep
 *   agent-tx.c       undoing an agent's in-memory changes when the
 *                    transaction that made them does not commit
 *   agent-table.c    the agents in memory: by id, by token, the lists
 *   agent-env.c      the environment of an agent's process (no secrets)
 *
 * Where a turn runs (worktree, process) is the runner's (runner.h).
 */
#ifndef SB_AGENT_INT_H
#define SB_AGENT_INT_H

#include "orchestrator/agent.h"
#include "orchestrator/runner.h"
#include "bot/util.h"

#include <stdint.h>
#include <uv.h>

struct agent_driver;
struct cfg_repo;

struct followup {
	char		*text;
	struct followup	*next;
};

struct agent {
	int			 refs;
	int64_t			 id;
	struct conversation	*conv;
	char			*name;
	const struct agent_driver *drv;
	const struct runner_ops	*runner;
	char			*task;
	char			*prompt;	/* of the current turn */
	int			 turn;		/* 0 first, then follow-ups */
	char			*repo_path;
	char			*base;
	char			*branch;
	char			*worktree;
	char			 token[65];
	enum agent_state	 state;
	const char		*end_reason;	/* forced end: "timeout", "cancel",
						 * "budget", "spawn", "worktree" */
	char			*cancelled_by;
	char			*why;		/* agent_fail/agent_stop reason */
	int			 wall_budget;	/* timeout_timer is max_wall_time */
	void			*drv_data;
	void			(*drv_data_free)(void *);

	struct run		*run;		/* the turn's process, or NULL */
	int			 pid;		/* recorded for recovery */
	int64_t			 exit_code;
	int			 term_signal;
	int			 cleaned;	/* worktree removed; no more turns */

	char			*ring;		/* output tail, circular */
	size_t			 ring_cap, ring_len, ring_pos;
	struct buf		 line;		/* partial stdout line for the driver */

	char			*steps[AGENT_STEPS];
	int			 nsteps;
	char			*summary;
	char			*session;
	char			*diffstat;
	char			**files;

	int64_t			 created_s;
	/*
	 * Wall clock (ms) of the first start and of the last end: what
	 * elapsed and the store's started_at/ended_at are of, so an agent
	 * loaded after a restart shows its real times.  0: not yet.
	 */
	int64_t			 started_wall;
	int64_t			 ended_wall;
	double			 cost_usd;	/* drivers' reports; -1 none */
	uint64_t		 started_ms;
	uint64_t		 turn_ms;	/* this run's start (metrics) */
	uint64_t		 ended_ms;
	uv_timer_t		*timeout_timer;
	uv_timer_t		*card_timer;
	uint64_t		 card_last_ms;
	int			 card_posted;	/* the card message exists */
	struct followup		*followups;

	struct agent		*next;		/* all agents in memory */
	struct agent		*hnext;		/* id hash chain */
	struct agent		*qnext;		/* run queue */
};

/* Shared state of the module (agent.c owns it). */
extern const struct config	*agent_cfg;
extern char			*agent_sock;
extern char			*agent_client_exe;	/* agents' SWITCHBOARD_BIN */
extern struct agent		*agent_all;
extern struct agent		*agent_queue;

/* agent.c */
void		 agent_db_update(struct agent *);
void		 agent_set_state(struct agent *, enum agent_state);
struct agent	*agent_alloc(int64_t id, struct conversation *,
		    const char *agent_name, const struct agent_driver *,
		    const char *task, const struct cfg_repo *,
		    const unsigned char rnd[32]);
void		 agent_free_timers(struct agent *);
void		 agent_metrics_init(void);
/* Takes it out of the id table and the list (the caller drops the list's ref). */
void		 agent_unlink(struct agent *);
/* agent-table.c: into the id table (the caller links it into agent_all). */
void		 agent_table_insert(struct agent *);
/* agent-env.c: the environment of a's process (NULL-terminated, malloc'd). */
char		**agent_child_env(struct agent *);

/* What a re-attached run needs: its hooks, the workspace request. */
void		 agent_run_hooks(struct agent *, struct run_hooks *);
void		 agent_ws_req(struct agent *, struct ws_req *, char **message);
/* Its turn's timeout (or wall budget) fires in seconds. */
void		 agent_arm_timeout(struct agent *, int seconds);

/* schedule() on the next loop turn (after a rollback's hooks, say). */
void		 agent_schedule_soon(void);
/* store_hook() rollback/commit that only drops the hook's reference. */
void		 agent_unref_hook(void *);

/*
 * agent-tx.c: what an agent does in memory inside a transaction (the work
 * of an inbound event) is undone when that transaction does not commit,
 * and what it does outside (a line on a child's stdin) waits for the
 * commit.  Outside a transaction they do what they say at once.
 */
/* a was just made (agent_start): dropped entirely on rollback. */
void		 agent_tx_started(struct agent *);
/* A follow-up was just appended to a->followups: removed on rollback (and
 * if it started a new turn of an ended agent, that turn is undone too). */
void		 agent_tx_followup(struct agent *);
/* text goes to the running child's stdin after the commit. */
void		 agent_tx_write(struct agent *, const char *text);

/* Wall clock in ms (elapsed across restarts; now_ms() is monotonic). */
int64_t		 agent_wall_ms(void);

/* agent-view.c */
void		 agent_card_key(const struct agent *, char *, size_t);
char		*agent_card_text(struct agent *);
void		 agent_card_post(struct agent *);
void		 agent_card_flush(struct agent *);
void		 agent_ring_add(struct agent *, const char *, size_t);
char		*agent_ring_tail(struct agent *, size_t max);

/* agent-restart.c */
struct agent	*agent_load(int64_t id);

#endif
