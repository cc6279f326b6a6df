/*
 * warm — the pool of warm worktrees (worktree_warm_*) per (repository,
 * base): kept at repos.[].warm complete ones, each made on the threadpool,
 * taken by the local runner's next new agent and replaced at once.
 * Loop thread only.
 */
#ifndef SB_WARM_H
#define SB_WARM_H

/*
 * Start keeping want warm worktrees of repo_path at base under state_dir:
 * takes up the complete ones an earlier run left (worktree_reconcile kept
 * them; beyond want they are removed), then makes the missing ones.  After
 * worktree_reconcile.  want 0 removes what is left.
 */
void	 warm_start(const char *repo_path, const char *base,
	    const char *state_dir, int want);

/*
 * A ready warm worktree's tag for a new agent (malloc'd), or NULL: none
 * ready, or no pool for these.  A replacement is started.
 */
char	*warm_take(const char *repo_path, const char *base,
	    const char *state_dir);

/* Forget the pools (daemon exit): what is on disk stays for the next run. */
void	 warm_free_all(void);

#endif
