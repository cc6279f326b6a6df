/*
 * gitremote — pushing and fetching branches with libgit2, never a
 * shell-out to git; and the agent branches of runners whose workspace is
 * not on this host (a pod clones the branch, pushes it back, and the
 * daemon fetches it, so diff, merge and pull requests read it locally).
 *
 * Credentials come from the repo's config (push.ssh_key, push.ssh_agent,
 * push.token) and are handed to libgit2's credential callback only; they
 * are never logged, never in an error text and never in any child's
 * environment.  libgit2 asks again after a refusal, so the callback answers
 * each kind once per push and then gives up: a wrong token is an error,
 * not a loop.  Runs on the threadpool (a push is network I/O): the struct
 * is a copy the caller owns.
 */
#ifndef SB_GITREMOTE_H
#define SB_GITREMOTE_H

#include <stdint.h>

struct cfg_repo;

struct gitremote_creds {
	char	*ssh_key;	/* private key path, or NULL */
	int	 ssh_agent;
	char	*user;		/* HTTPS user for token */
	char	*token;		/* wiped by gitremote_creds_free */
};

void	 gitremote_creds_from(struct gitremote_creds *, const struct cfg_repo *);
void	 gitremote_creds_free(struct gitremote_creds *);

/* Ways a push fails, for the message in the thread. */
#define GITREMOTE_EREJECTED	(-2)	/* the remote refused the update */
#define GITREMOTE_EAUTH		(-3)	/* credentials missing or refused */

/*
 * Pushes local ref src (a branch name) to dst (a branch name) on remote
 * (a configured remote's name, or a URL/path).  force: "+" refspec.
 * 0 ok; -1 (network, no such remote...), GITREMOTE_EREJECTED or
 * GITREMOTE_EAUTH with *cause saying why.
 */
int	 gitremote_push(const char *repo_path, const char *remote,
	    const char *src, const char *dst, int force,
	    const struct gitremote_creds *, char **cause);
/* 1 if the repository has that remote configured. */
int	 gitremote_exists(const char *repo_path, const char *remote);

/*
 * Fetches branch src of remote (name or URL) into local branch dst, forced:
 * the remote's branch is the agent's work (a pod pushed it), so the local
 * ref follows it even if the agent rewrote its history.  Refuses a dst
 * checked out in a worktree.  0 ok; -1 or GITREMOTE_EAUTH with *cause.
 * GITREMOTE_ENOREF: the remote has no such branch.
 */
#define GITREMOTE_ENOREF	(-4)
int	 gitremote_fetch(const char *repo_path, const char *remote,
	    const char *src, const char *dst, const struct gitremote_creds *,
	    char **cause);

/* The URL of a configured remote (malloc'd), or NULL with *cause. */
char	*gitremote_url(const char *repo_path, const char *remote,
	    char **cause);

/*
 * A new agent branch (worktree_branch_name(), with "-2", "-3", ... when
 * that is taken, as for local agents) at local
 * branch base's tip (HEAD when there is no such branch), without a
 * worktree: for runners whose workspace is elsewhere.  *out_branch is
 * malloc'd.
 */
int	 gitremote_branch_new(const char *repo_path, const char *base,
	    int64_t agent_id, const char *task,
	    char **out_branch, char **cause);

#endif
