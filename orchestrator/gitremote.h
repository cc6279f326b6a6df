/*
 * gitremote — pushing branches with libgit2 (git_remote_push), never a
 * shell-out to git.
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

#endif
