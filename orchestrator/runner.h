/*
 * runner — where a subagent's turns run: its workspace and its process.
 *
 * The agent module owns the lifecycle (queue, turns, cards, questions,
 * results); a runner owns the place: it prepares the workspace (a worktree
 * on the branch sb/N-slug), starts the turn's process, streams its output
 * back, signals it, reports its end once, collects the result (leftover
 * commit, diff stat, files touched) and cleans up.  Drivers never see the
 * runner; they turn config into argv and output lines into events.
 *
 * `local` (runner-local.c) is a child process in a libgit2 worktree on this
 * host.  One decision worth knowing: a run reports its end exactly once,
 * always from the loop and never from inside start(), even when the process
 * could not be started at all — so the agent has one path that settles a
 * turn, and nothing settles re-entrantly under the scheduler.
 *
 * Workspace jobs run off the loop (a 20k-file checkout takes ~0.5 s) on
 * copies of their inputs; their done callback runs on the loop.
 */
#ifndef SB_RUNNER_H
#define SB_RUNNER_H

#include <stddef.h>
#include <stdint.h>

/* One started turn process (or pod); owned by its runner. */
struct run;
struct cfg_agent;
struct cfg_repo;

/* What a workspace job needs; copied by the runner, borrowed for the call. */
struct ws_req {
	int64_t		 agent_id;
	const char	*repo_path, *base, *state_dir, *task;
	/*
	 * NULL before the first prepare; a prepare with branch set makes
	 * the agent's removed worktree again from that branch.
	 */
	const char	*worktree, *branch;
	const char	*git_name, *git_email;
	const char	*message;		/* commit message for leftovers */
	/* Its repo and kind: remote, push credentials, cluster settings. */
	const struct cfg_repo	*repo;
	const struct cfg_agent	*agent;
};

/* What it produced.  The done callback may steal the strings (set NULL). */
struct ws_result {
	int		 rc;		/* 0 ok, -1 failed with cause */
	char		*branch, *path;	/* prepare */
	char		*cause;		/* failure, or a non-fatal note */
	char		*diffstat;	/* collect: may be NULL */
	char		**files;	/* collect: NULL-terminated, may be NULL */
};

typedef void	(*ws_done_fn)(void *arg, struct ws_result *);

/* A turn's process. */
struct run_spec {
	char *const	*argv;
	char *const	*env;
	const char	*cwd;
	int		 stdin_pipe;	/* keep stdin open for run_write */
	int64_t		 agent_id;
	const struct cfg_agent *agent;	/* its kind: sandbox settings */
	int64_t		 conversation_id;	/* labels of a pod */
	/*
	 * The workspace, for a runner whose turn takes it along (a pod
	 * clones the branch and pushes it back); borrowed for the call.
	 */
	const struct ws_req *ws;
};

struct run_hooks {
	/* Output as it comes; stream 1 = stdout, 2 = stderr. */
	void	(*output)(void *arg, int stream, const char *, size_t);
	/*
	 * The process is gone and its output drained (or abandoned after a
	 * grace period when a detached grandchild holds it).  error: why it
	 * never started, else NULL.  Called exactly once, from the loop; the
	 * run is freed by the runner right after.
	 */
	void	(*exited)(void *arg, int64_t status, int term_signal,
		    const char *error);
	void	*arg;
	/*
	 * Re-attach only (may be NULL): the agent token the running turn
	 * holds, which the restarted daemon takes again so the agent's
	 * calls keep working.
	 */
	void	(*token)(void *arg, const char *token);
};

struct runner_ops {
	const char	*name;
	/*
	 * 1: the workspace path is where the turn runs (a pod's volume),
	 * not on this host, so the agent never checks it here.
	 */
	int		 remote_workspace;
	/* Workspace: make, collect (commit leftovers + diff), remove. */
	void		 (*prepare)(const struct ws_req *, ws_done_fn, void *);
	void		 (*collect)(const struct ws_req *, ws_done_fn, void *);
	void		 (*cleanup)(const struct ws_req *, ws_done_fn, void *);
	/* Starts a turn; exited() follows exactly once (see above). */
	struct run	*(*start)(const struct run_spec *, const struct run_hooks *);
	/* One line to stdin (spec.stdin_pipe); -1 if it cannot. */
	int		 (*write)(struct run *, const char *text);
	/*
	 * Stop it: first_signal now (0 = SIGTERM), then SIGTERM and SIGKILL,
	 * grace_s apart, while any of it lingers.
	 */
	void		 (*stop)(struct run *, int first_signal, int grace_s);
	/* The host pid recorded for recovery, or 0. */
	int		 (*pid)(const struct run *);
	/*
	 * Shutdown: SIGTERM its whole tree and forget it; hooks are never
	 * called again.  runner_kill_survivors() finishes the job.
	 */
	void		 (*abandon)(struct run *);
	/* After a restart: end what a previous daemon left running. */
	void		 (*reap_orphan)(int pid, int64_t agent_id, int grace_s);
	/*
	 * Shutdown with a restart to come, instead of abandon(): leave the
	 * turn running where it is and forget it (hooks never called
	 * again); 1 if it does go on, 0 if it was abandoned after all.
	 * NULL: the runner cannot (a local child dies with its daemon).
	 */
	int		 (*detach)(struct run *);
	/*
	 * After a restart: the turn an earlier daemon left running for
	 * spec's agent, followed to its end as if start() had made it
	 * (exited() follows exactly once; with an error if it is gone).
	 * NULL: nothing survives a restart (local).
	 */
	struct run	*(*reattach)(const struct run_spec *,
			    const struct run_hooks *);
};

extern const struct runner_ops runner_local;
extern const struct runner_ops runner_kubernetes;	/* runner-k8s.c */

/* NULL if no runner has that name. */
const struct runner_ops *runner_lookup(const char *name);
/* Deletions of abandoned pods not yet answered (runner-k8s.c). */
int		 runner_k8s_deleting(void);
/* Last thing before http goes: cancels the cluster calls, closes it. */
void		 runner_k8s_shutdown(void);
/* 1 while something abandoned at shutdown still lives. */
int		 runner_survivors_alive(void);
/* SIGKILL what outlived the shutdown's SIGTERM. */
void		 runner_kill_survivors(void);

#endif
