/*
 * worktree — one branch and one linked git worktree per subagent, via libgit2.
 *
 * A subagent with id N works on branch "sb/N-<slug>" (slug made from its task
 * text) in STATE_DIR/worktrees/N, registered in the repository as worktree
 * "sb-N".  Only the integer id ever reaches the filesystem path, so no task
 * text can steer where a directory is created; the slug only reaches a ref
 * name and is validated with libgit2 before use.
 *
 * Decisions worth knowing:
 *  - An existing branch is never reused or moved: if "sb/N-slug" exists (state
 *    dir wiped, ids restarted) the new branch gets a suffix "-2", "-3", ...
 *    so earlier work is never clobbered; the name actually used is returned
 *    and must be stored.  A *valid* worktree "sb-N" that already exists is an
 *    error; a stale one whose directory is gone is pruned and recreated.
 *  - Worktrees are created *locked* ("switchboard: agent N") so that neither
 *    worktree_cleanup_older() nor a human's `git worktree prune` removes one
 *    an agent may still use; worktree_unlock() when the agent is finished.
 *    worktree_remove() removes locked ones too: it is an explicit request.
 *  - Branches are kept by remove and cleanup: they are the agents' results.
 *
 * Every call opens its own git_repository and shares no state but the libgit2
 * global init, so a caller may run these off the loop thread (uv_queue_work)
 * once worktree_git_init() has run on it: a checkout of 20,000 files takes
 * most of a second (bench/worktree.c).  They do log.  All return 0 on
 * success, -1 with a malloc'd *cause (when cause is not NULL) on failure.
 */
#ifndef SB_WORKTREE_H
#define SB_WORKTREE_H

#include <stddef.h>
#include <stdint.h>

#define WORKTREE_SLUG_MAX	40

/*
 * Initialise libgit2 once (idempotent; every function below calls it), and
 * shut it down (tests, daemon exit).
 */
void	 worktree_git_init(void);
void	 worktree_git_shutdown(void);

/*
 * Branch slug from free text into buf (at least WORKTREE_SLUG_MAX + 1 bytes):
 * lowercase ASCII letters, digits and single '-', never empty ("task"), never
 * starting or ending with '-'.
 */
void	 worktree_slug(const char *text, char *buf, size_t len);

#define WORKTREE_INSTANCE_MAX	20

/*
 * This daemon's instance name (config "instance"; "" = none): at most
 * WORKTREE_INSTANCE_MAX of a-z, 0-9 and '-', a letter first, no '-' last
 * (cluster.daemon_id's rule).  Set once at
 * start, before any worktree call; -1 if invalid.  With one, its agents'
 * branches are "sb/INSTANCE-N-slug" and worktrees "sb-INSTANCE-N", and the
 * reconcile and cleanup sweeps touch only those: daemons sharing a
 * repository, each with its own instance, never collide.
 */
int	 worktree_set_instance(const char *);
const char *worktree_instance(void);

/*
 * The one place an agent's branch name is made: "sb/<agent_id>-<slug>", or
 * "sb/<instance>-<agent_id>-<slug>" (slug from worktree_slug); malloc'd.
 * Local and Kubernetes runners both name branches with it, so that the
 * reconcile sweep and the daemon's other readers of them agree.
 */
char	*worktree_branch_name(int64_t agent_id, const char *slug);

/*
 * Create branch sb/<agent_id>-<slug> from local branch base_branch (or from
 * HEAD, with a log line, when that branch does not exist) and a linked,
 * locked worktree for it at state_dir/worktrees/<agent_id>.  Checkout
 * filters are skipped when no attributes or core.autocrlf could make them
 * act (a third of the time on large repositories).  On success
 * *out_branch is the short branch name ("sb/7-fix-login") and *out_path the
 * absolute worktree path; both belong to the caller.
 */
int	 worktree_add(const char *repo_path, const char *base_branch,
	    const char *state_dir, int64_t agent_id, const char *task_text,
	    char **out_branch, char **out_path, char **cause);

/* Remove the lock worktree_add() placed; the worktree becomes cleanable. */
int	 worktree_unlock(const char *repo_path, int64_t agent_id, char **cause);

/*
 * Stage everything in the worktree at path (new files unless ignored by
 * .gitignore, modifications, deletions) and commit it on the checked-out
 * branch as name <email>.  *committed is 1 if a commit was made, 0 if the
 * worktree was clean.  Refuses a detached HEAD: such a commit would be on no
 * branch and invisible to worktree_diffstat().
 */
int	 worktree_commit_leftovers(const char *path, const char *name,
	    const char *email, const char *message, int *committed,
	    char **cause);

struct worktree_stat {
	size_t	 files;
	size_t	 insertions;
	size_t	 deletions;
	char	*text;		/* git --stat style; caller frees */
};

/*
 * Diff stat of branch's tip (NULL: HEAD) against its merge base with base
 * (resolved like worktree_add: local branch, else HEAD).  repo_path may be
 * the main repository or any of its worktrees.  text holds at most max_files
 * per-file lines, then "... and N more files" if cut, then the summary line
 * " 3 files changed, 10 insertions(+), 2 deletions(-)".  Renames are
 * detected, as git does by default.
 */
int	 worktree_diffstat(const char *repo_path, const char *base,
	    const char *branch, size_t max_files, struct worktree_stat *out,
	    char **cause);

/*
 * Paths that differ between the merge base of base and HEAD and the
 * worktree's files, committed or not, untracked included (ignored files
 * excluded): what an agent has touched so far, for status cards.  At most
 * max paths are returned in *out (caller frees with worktree_files_free);
 * *total is the full count.  It reads every file's stat, so call it at a
 * coalesced rate, not per event.
 */
int	 worktree_changed_files(const char *worktree_path, const char *base,
	    size_t max, char ***out, size_t *n, size_t *total, char **cause);
void	 worktree_files_free(char **, size_t);

/*
 * Delete worktree sb-<agent_id>: its directory and its metadata in the
 * repository (even if locked).  The branch stays.
 */
int	 worktree_remove(const char *repo_path, int64_t agent_id,
	    char **cause);

/*
 * Remove this repository's unlocked agent worktrees under
 * state_dir/worktrees whose directory and index were last modified more than
 * retention_s seconds ago, and prune agent worktree metadata whose directory
 * is gone.  *removed (may be NULL) counts both.  Branches stay.
 */
int	 worktree_cleanup_older(const char *repo_path, const char *state_dir,
	    int64_t retention_s, int *removed, char **cause);

/* ---- results: full diffs, merges ------------------------------------------ */

/*
 * Unified diff (git diff format) of branch's tip against its merge base with
 * base, committed changes only; path (NULL or "") limits it to one file or
 * directory, taken literally.  *out (malloc'd, NUL-terminated) holds *len
 * bytes; *nfiles is the number of files in it.
 */
int	 worktree_diff(const char *repo_path, const char *base,
	    const char *branch, const char *path, char **out, size_t *len,
	    size_t *nfiles, char **cause);

/*
 * Paths changed (committed) on branch since its merge base with base,
 * NULL-terminated; free with worktree_files_free(*out, *n).
 */
int	 worktree_branch_files(const char *repo_path, const char *base,
	    const char *branch, char ***out, size_t *n, char **cause);

/* The commit id (40 hex + NUL into hex) local branch points at. */
int	 worktree_tip(const char *repo_path, const char *branch, char *hex,
	    char **cause);

struct worktree_merge {
	char	 base_oid[41];		/* base's tip the merge was made on */
	char	 merged_oid[41];	/* the commit base would move to */
	int	 up_to_date;		/* branch is in base already */
	int	 fast_forward;		/* merged_oid is the branch's tip */
	char	**conflicts;		/* NULL-terminated, or NULL */
	size_t	  nconflicts;
};

/*
 * Merges branch onto base's current tip in memory (git_merge_commits): on
 * conflicts lists the paths; otherwise writes the merge commit (two
 * parents, message) into the object database without moving any ref.  A
 * base that is an ancestor of branch needs no merge commit (fast_forward).
 */
int	 worktree_merge_prepare(const char *repo_path, const char *base,
	    const char *branch, const char *name, const char *email,
	    const char *message, struct worktree_merge *, char **cause);
void	 worktree_merge_free(struct worktree_merge *);

/*
 * A scratch worktree "sbm-<merge_id>" on a throw-away branch
 * "sb-merge/<merge_id>" at commit_hex, in state_dir/worktrees/merge-<id>,
 * for the merge check.  Whatever an interrupted attempt left is removed
 * first.  remove is idempotent.
 */
int	 worktree_scratch_add(const char *repo_path, const char *state_dir,
	    int64_t merge_id, const char *commit_hex, char **out_path,
	    char **cause);
int	 worktree_scratch_remove(const char *repo_path, int64_t merge_id,
	    char **cause);

#define WORKTREE_EMOVED	(-2)	/* base is no longer where the merge began */

/*
 * Moves local branch base from expect_hex to new_hex atomically (ref lock,
 * compare-and-swap): WORKTREE_EMOVED if base is elsewhere; 0 also when it
 * is at new_hex already (a resumed merge).  Where the repository has base
 * checked out, its files follow (safe checkout: local changes are kept and
 * *warning says so).
 */
int	 worktree_fast_forward(const char *repo_path, const char *base,
	    const char *expect_hex, const char *new_hex, char **warning,
	    char **cause);

/*
 * Startup reconciliation with the store, for worktrees "sb-N" of repo_path
 * under state_dir/worktrees: known(N, path, branch) answers
 * WORKTREE_UNKNOWN for one the store never recorded (made, then a crash
 * before the record): it is removed with its branch; WORKTREE_UNLOCK for one
 * whose agent is over (an interrupted agent left it locked, so retention
 * could never remove it); WORKTREE_KEEP otherwise.  Also removed: a
 * half-made directory state_dir/worktrees/N that git does not list and the
 * store does not know (branch NULL in that call), and a branch "sb/N-..."
 * the store does not know (path NULL in that call) that is checked out
 * nowhere and holds nothing base does not: one with commits of its own is a
 * result, or another store's, and is kept.  Warm worktrees (below) of this
 * state dir stay when complete; unfinished ones, "warm-*" directories
 * without one, and "sb-warm/..." branches checked out nowhere are removed.
 */
enum { WORKTREE_KEEP, WORKTREE_UNLOCK, WORKTREE_UNKNOWN };
typedef int	(*worktree_known_fn)(int64_t agent_id, const char *path,
		    const char *branch, void *arg);
int	 worktree_reconcile(const char *repo_path, const char *base,
	    const char *state_dir, worktree_known_fn known, void *arg,
	    char **cause);

/*
 * The linked, locked worktree of agent_id at state_dir/worktrees/<agent_id>
 * again, on its existing branch branch_name (its earlier commits and all),
 * after cleanup or the retention sweep removed it.  Fails if the branch is
 * gone; the branch is never created or moved.
 */
int	 worktree_add_branch(const char *repo_path, const char *state_dir,
	    int64_t agent_id, const char *branch_name, char **out_path,
	    char **cause);

/* ---- warm worktrees (worktree-warm.c) ------------------------------------- */

/*
 * Warm worktree tag ([a-z0-9-]): "sbw-<tag>" at state_dir/worktrees/
 * warm-<tag> on branch "sb-warm/<tag>" at base's tip (resolved like
 * worktree_add), locked "switchboard: warm" once complete.  Takes the
 * full checkout's time; meant for the threadpool ahead of need.
 */
int	 worktree_warm_add(const char *repo_path, const char *base,
	    const char *state_dir, const char *tag, char **cause);

/*
 * What worktree_add(repo_path, base, state_dir, agent_id, task_text) makes
 * (same names, branch at base's current tip, locked), made by renaming warm
 * worktree tag and checking out only what base changed since it was
 * prepared.  On failure the warm worktree is gone too (the caller makes a
 * cold one).  A crash at any point leaves what worktree_reconcile removes.
 */
int	 worktree_warm_claim(const char *repo_path, const char *base,
	    const char *state_dir, const char *tag, int64_t agent_id,
	    const char *task_text, char **out_branch, char **out_path,
	    char **cause);

/*
 * Shutdown: a worktree_warm_add running on another thread stops between
 * two files and leaves its unfinished worktree to the next start's sweep.
 */
void	 worktree_warm_abort(void);

/* Delete warm worktree tag and its branch; idempotent. */
int	 worktree_warm_remove(const char *repo_path, const char *tag,
	    char **cause);

/*
 * Tags of this state dir's complete warm worktrees of repo_path (kept by
 * worktree_reconcile), NULL-terminated; free with worktree_files_free.
 */
int	 worktree_warm_list(const char *repo_path, const char *state_dir,
	    char ***out, size_t *n, char **cause);

#endif
