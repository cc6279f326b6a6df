/*
 * worktree-int — what worktree.c shares with the files split from it
 * (worktree-diff.c, worktree-merge.c, worktree-reconcile.c).  Not for the
 * rest of the daemon: worktree.h is the interface.
 */
#ifndef SB_WORKTREE_INT_H
#define SB_WORKTREE_INT_H

#include <git2.h>
#include <pthread.h>
#include <stdint.h>

#define WT_PREFIX	"sb-"		/* agent worktree (metadata) name prefix */
#define WARM_PREFIX	"sbw-"		/* warm worktree name prefix */
#define WARM_BRANCH	"sb-warm/"	/* its branch */
#define WARM_DIR	"warm-"		/* its directory under worktrees/ */

/* *cause = the text plus libgit2's last error / the text alone; -1. */
int	 wt_gfail(char **cause, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 wt_fail(char **cause, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

int	 wt_open_repo(git_repository **, const char *path, char **cause);
int	 wt_resolve_base(git_repository *, const char *base, git_commit **out,
	    char **cause);
char	*wt_worktrees_dir(const char *state_dir, int create, char **cause);
int	 wt_prune(git_worktree *, uint32_t flags, char **cause);
/* A scratch or warm worktree and its branch, by name, whatever their state. */
int	 wt_remove_named(const char *repo_path, const char *name,
	    const char *branch, char **cause);
int	 wt_is_agent_name(const char *name);

/* This daemon's worktree name of agent_id: "sb-N", or "sb-INSTANCE-N". */
void	 wt_agent_wtname(char *buf, size_t len, int64_t agent_id);
/* The agent id of one of our worktree names / branches, else -1. */
int64_t	 wt_agent_of_wtname(const char *name);
int64_t	 wt_agent_of_branch(const char *name);
/* Whether a warm tag is one this daemon (instance) makes. */
int	 wt_warm_tag_ours(const char *tag);

/* Whether checkout filters could change a byte of commit's checkout. */
int	 wt_filters_matter(git_repository *, git_commit *);

/*
 * Whether wt_fast_checkout writes tip's checkout exactly as git would (no
 * filter could act, symlinks are made); then the linked worktree at path,
 * made with checkout strategy NONE, gets its files and index from its HEAD.
 */
int	 wt_fast_checkout_ok(git_repository *, git_commit *tip);
#define WT_EABORTED	(-2)	/* a warm checkout stopped for shutdown */
int	 wt_fast_checkout(git_repository *, const char *path, int abortable,
	    char **cause);

/*
 * Before a worktree name is made at path for owner: stale metadata of that
 * name whose directory is gone is pruned; a valid one, or anything at path,
 * is an error.
 */
int	 wt_add_precheck(git_repository *, const char *name, const char *path,
	    const char *owner, char **cause);

/* Agent agent_id's new branch at commit (worktree_branch_name, suffixed). */
int	 wt_agent_branch(git_repository *, int64_t agent_id,
	    const char *task_text, git_commit *commit, git_reference **out,
	    char **out_name, char **cause);

/*
 * Held around what makes or moves worktree metadata in a repository:
 * git_worktree_add reads every worktree's (is the branch checked out?) and
 * fails on one a claim is halfway through renaming.
 */
void	 wt_add_lock(void);
void	 wt_add_unlock(void);

/*
 * The one way a linked worktree is made (agents, merge scratch, an agent's
 * worktree again): worktree name at path with ref checked out (tip is its
 * commit), for owner ("agent 7": errors, and the lock reason "switchboard:
 * agent 7" with WT_ADD_LOCK).  Stale metadata of that name whose directory is gone is
 * pruned, a valid one or an existing path is an error; on failure nothing of
 * the worktree is left (ref is the caller's).
 */
int	 wt_add_checkout(git_repository *, const char *name, const char *path,
	    git_reference *ref, git_commit *tip, const char *owner, int flags,
	    char **cause);
#define WT_ADD_LOCK	0x1	/* lock it for owner */
#define WT_ADD_WARM	0x2	/* stops at worktree_warm_abort(): WT_EABORTED,
				   and what was made is left to the sweep */

/* A warm worktree whose checkout is complete (valid, locked as warm). */
int	 wt_warm_ready(git_worktree *);

/* rm -rf of a path we made (never one read from metadata); 0 or -1. */
int	 wt_rm_rf(const char *path);

#endif
