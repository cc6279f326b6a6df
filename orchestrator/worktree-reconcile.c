#include "orchestrator/worktree.h"
#include "orchestrator/worktree-int.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The branch a worktree has checked out ("sb/7-fix"), read from its HEAD
 * file (a linked worktree's HEAD lives in the common dir's
 * worktrees/<name>/HEAD).  Malloc'd, or NULL.
 */
static char *
worktree_head_branch(git_repository *repo, git_worktree *wt)
{
	git_repository	*wr = NULL;
	git_reference	*head = NULL;
	char		*out = NULL;

	if (git_repository_open_from_worktree(&wr, wt) < 0)
		return NULL;
	if (git_repository_head(&head, wr) == 0 &&
	    git_reference_is_branch(head))
		out = xstrdup(git_reference_shorthand(head));
	git_reference_free(head);
	git_repository_free(wr);
	return out;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
wt_rm_rf(const char *path)
{
	struct stat	 sb;

	if (lstat(path, &sb) == -1)
		return 0;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A warm worktree that is not complete (a crash during its checkout, or in
 * the middle of a claim) goes with its branch; a complete one stays for the
 * warm pool to take up again.
 */
static void
reconcile_warm(git_repository *repo, git_worktree *wt, const char *name)
{
	git_reference	*ref;
	char		*bname;

	if (wt_warm_ready(wt))
		return;
	if (wt_prune(wt, GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_LOCKED |
	    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL) != 0) {
		log_warnx("worktree: cannot remove unfinished warm %s: %s",
		    name, git_error_last() ? git_error_last()->message : "?");
		return;
	}
	log_info("worktree: removed unfinished warm %s", name);
	bname = xasprintf(WARM_BRANCH "%s", name + strlen(WARM_PREFIX));
	if (git_branch_lookup(&ref, repo, bname, GIT_BRANCH_LOCAL) == 0) {
		git_reference_delete(ref);
		git_reference_free(ref);
	}
	free(bname);
}

/*
 * Directory worktrees/warm-T without a complete warm worktree "sbw-T" in
 * it: left by a crash (before git knew it, or halfway through a claim).
 */
static void
reconcile_warm_dir(git_repository *repo, const char *dir, const char *ent)
{
	git_worktree	*wt = NULL;
	char		*name, *path;
	int		 keep = 0;

	name = xasprintf(WARM_PREFIX "%s", ent + strlen(WARM_DIR));
	path = xasprintf("%s/%s", dir, ent);
	if (git_worktree_lookup(&wt, repo, name) == 0)
		keep = strcmp(git_worktree_path(wt), path) == 0 &&
		    wt_warm_ready(wt);
	git_error_clear();
	if (!keep) {
		if (wt_rm_rf(path) == 0)
			log_info("worktree: removed %s, half made before a "
			    "crash", path);
		else
			log_warn("worktree: cannot remove %s", path);
	}
	git_worktree_free(wt);
	free(path);
	free(name);
}

/*
 * Directories state_dir/worktrees/N that the store does not know, after the
 * worktrees git lists were dealt with: half made (a crash in the middle of
 * worktree_add, with or without its .git file), so removed.  The path is
 * ours (state dir + an integer), never read from metadata.
 */
static void
reconcile_dirs(git_repository *repo, const char *dir, worktree_known_fn known,
    void *arg)
{
	DIR		*d;
	struct dirent	*e;
	char		*path;
	const char	*p;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, WARM_DIR, strlen(WARM_DIR)) == 0) {
			reconcile_warm_dir(repo, dir, e->d_name);
			continue;
		}
		for (p = e->d_name; *p >= '0' && *p <= '9'; p++)
			;
		if (*p != '\0' || p == e->d_name)
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (known(strtoll(e->d_name, NULL, 10), path, NULL, arg) ==
		    WORKTREE_UNKNOWN) {
			if (wt_rm_rf(path) == 0)
				log_info("worktree: removed %s, half made "
				    "before a crash", path);
			else
				log_warn("worktree: cannot remove %s", path);
		}
		free(path);
	}
	closedir(d);
}

/*
 * Branches "sb/N-..." the store does not know, checked out nowhere, with
 * nothing on them that base does not have (made by worktree_add, then a
 * crash before any agent ran): deleted.  A branch with commits of its own
 * is a result (or another store's) and is kept whatever the store says.
 */
static void
reconcile_branches(git_repository *repo, const char *base,
    worktree_known_fn known, void *arg)
{
	git_branch_iterator	*it = NULL;
	git_reference		*ref, *b = NULL;
	git_branch_t		 type;
	const char		*name;
	const git_oid		*tip, *btip;
	int64_t			 id;

	if (git_branch_lookup(&b, repo, base, GIT_BRANCH_LOCAL) < 0 ||
	    (btip = git_reference_target(b)) == NULL ||
	    git_branch_iterator_new(&it, repo, GIT_BRANCH_LOCAL) < 0) {
		git_reference_free(b);
		return;
	}
	while (git_branch_next(&ref, &type, it) == 0) {
		name = git_reference_shorthand(ref);
		tip = git_reference_target(ref);
		/* A warm branch only lives checked out in its worktree. */
		if (strncmp(name, WARM_BRANCH, strlen(WARM_BRANCH)) == 0 &&
		    wt_warm_tag_ours(name + strlen(WARM_BRANCH)) &&
		    git_branch_is_checked_out(ref) == 0) {
			log_info("worktree: deleted unused warm branch %s",
			    name);
			git_reference_delete(ref);
			git_reference_free(ref);
			continue;
		}
		if ((id = wt_agent_of_branch(name)) >= 0 && tip != NULL &&
		    git_branch_is_checked_out(ref) == 0 &&
		    (git_oid_equal(tip, btip) ||
		    git_graph_descendant_of(repo, btip, tip) == 1) &&
		    known(id, NULL, name, arg) ==
		    WORKTREE_UNKNOWN) {
			log_info("worktree: deleted branch %s, made before a "
			    "crash and never used", name);
			git_branch_delete(ref);
		}
		git_reference_free(ref);
	}
	git_branch_iterator_free(it);
	git_reference_free(b);
}

int
worktree_reconcile(const char *repo_path, const char *base,
    const char *state_dir, worktree_known_fn known, void *arg, char **cause)
{
	git_repository	*repo = NULL;
	git_worktree	*wt;
	git_reference	*ref;
	git_strarray	 names = { 0 };
	char		*dir = NULL, *prefix = NULL, *branch;
	const char	*path;
	int64_t		 id;
	size_t		 i;
	int		 rc = -1, k;

	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if ((dir = wt_worktrees_dir(state_dir, 0, NULL)) == NULL) {
		rc = 0;
		goto out;
	}
	prefix = xasprintf("%s/", dir);
	if (git_worktree_list(&names, repo) < 0) {
		wt_gfail(cause, "cannot list worktrees of %s", repo_path);
		goto out;
	}
	for (i = 0; i < names.count; i++) {
		if (strncmp(names.strings[i], WARM_PREFIX,
		    strlen(WARM_PREFIX)) == 0 &&
		    git_worktree_lookup(&wt, repo, names.strings[i]) == 0) {
			/* Another daemon's state dir may share the repo. */
			if (strncmp(git_worktree_path(wt), prefix,
			    strlen(prefix)) == 0)
				reconcile_warm(repo, wt, names.strings[i]);
			git_worktree_free(wt);
			continue;
		}
		if (!wt_is_agent_name(names.strings[i]) ||
		    git_worktree_lookup(&wt, repo, names.strings[i]) < 0)
			continue;
		path = git_worktree_path(wt);
		/* Another daemon's state dir may share this repository. */
		if (strncmp(path, prefix, strlen(prefix)) != 0 ||
		    git_worktree_validate(wt) != 0) {
			git_worktree_free(wt);
			continue;
		}
		id = wt_agent_of_wtname(names.strings[i]);
		branch = worktree_head_branch(repo, wt);
		k = known(id, path, branch, arg);
		if (k == WORKTREE_UNLOCK) {
			if (git_worktree_unlock(wt) == 0)
				log_info("worktree: unlocked %s (its agent "
				    "ended)", names.strings[i]);
		} else if (k == WORKTREE_UNKNOWN) {
			/*
			 * Made, but a crash came before it was recorded: no
			 * agent ever ran in it.  Remove it and its branch, so
			 * the store's "no worktree" is the truth again.
			 */
			if (wt_prune(wt, GIT_WORKTREE_PRUNE_VALID |
			    GIT_WORKTREE_PRUNE_LOCKED |
			    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL) != 0)
				log_warnx("worktree: cannot remove unrecorded "
				    "%s: %s", path, git_error_last() ?
				    git_error_last()->message : "?");
			else {
				log_info("worktree: removed %s, made before a "
				    "crash and never recorded", path);
				if (branch != NULL && git_branch_lookup(&ref,
				    repo, branch, GIT_BRANCH_LOCAL) == 0) {
					if (git_branch_delete(ref) == 0)
						log_info("worktree: deleted its"
						    " branch %s", branch);
					git_reference_free(ref);
				}
			}
		}
		free(branch);
		git_worktree_free(wt);
	}
	reconcile_dirs(repo, dir, known, arg);
	reconcile_branches(repo, base, known, arg);
	rc = 0;
out:
	git_strarray_dispose(&names);
	free(prefix);
	free(dir);
	git_repository_free(repo);
	return rc;
}
