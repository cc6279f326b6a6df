/*
 * worktree-warm — worktrees checked out before an agent needs one, so that
 * an agent's start costs a few renames instead of a 20,000-file checkout.
 *
 * A warm worktree with tag T is "sbw-T" at state_dir/worktrees/warm-T on
 * branch "sb-warm/T".  Its "locked" file reads WARM_LOCK only once its
 * checkout is complete: anything else named so is half made and goes at the
 * next start (worktree_reconcile).  Claiming moves it, with plain renames of
 * the directory and of its metadata, to what worktree_add would have made
 * ("sb-N" at state_dir/worktrees/N on a new branch sb/N-slug), and checks out
 * the base's current tip over it when the base moved since.  libgit2 has no
 * "worktree move", so the two files that link the worktree and its metadata
 * (<metadata>/gitdir and <worktree>/.git) are rewritten here as git writes
 * them.  At every step of a claim a crash leaves something the startup sweep
 * removes: an unrecorded "sb-N", a directory N the store does not know, a
 * stale "sbw-T" whose directory is gone, an unused branch.
 */
#include "orchestrator/worktree.h"
#include "orchestrator/worktree-int.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WARM_LOCK_OWNER	"warm"		/* lock reason "switchboard: warm" */

static int
tag_ok(const char *tag)
{
	const char	*p;

	if (*tag == '\0' || strlen(tag) > 64)
		return 0;
	for (p = tag; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-'))
			return 0;
	return 1;
}

int
wt_warm_tag_ours(const char *tag)
{
	const char	*inst = worktree_instance();
	size_t		 n = strlen(inst);

	if (n == 0)
		return *tag >= '0' && *tag <= '9';
	return strncmp(tag, inst, n) == 0 && tag[n] == '-';
}

int
worktree_warm_add(const char *repo_path, const char *base,
    const char *state_dir, const char *tag, char **cause)
{
	git_repository	*repo = NULL;
	git_commit	*c = NULL;
	git_reference	*ref = NULL;
	char		 name[80], bname[80], *dir = NULL, *path = NULL;
	int		 rc = -1;

	if (!tag_ok(tag))
		return wt_fail(cause, "bad warm worktree tag %s", tag);
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	snprintf(name, sizeof name, WARM_PREFIX "%s", tag);
	snprintf(bname, sizeof bname, WARM_BRANCH "%s", tag);
	if (wt_resolve_base(repo, base, &c, cause) < 0)
		goto out;
	if ((dir = wt_worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/" WARM_DIR "%s", dir, tag);
	/* Forced: a branch of that name can only be an earlier warm one's. */
	if (git_branch_create(&ref, repo, bname, c, 1) < 0) {
		wt_gfail(cause, "cannot create %s", bname);
		goto out;
	}
	if ((rc = wt_add_checkout(repo, name, path, ref, c, WARM_LOCK_OWNER,
	    WT_ADD_LOCK | WT_ADD_WARM, cause)) < 0) {
		if (rc != WT_EABORTED)
			git_reference_delete(ref);
		rc = -1;
		goto out;
	}
	log_info("worktree: warm %s ready at %s", name, path);
	rc = 0;
out:
	free(path);
	free(dir);
	git_reference_free(ref);
	git_commit_free(c);
	git_repository_free(repo);
	return rc;
}

int
wt_warm_ready(git_worktree *wt)
{
	git_buf	 reason = GIT_BUF_INIT;
	int	 ok;

	ok = git_worktree_validate(wt) == 0 &&
	    git_worktree_is_locked(&reason, wt) > 0 && reason.ptr != NULL &&
	    strcmp(reason.ptr, "switchboard: " WARM_LOCK_OWNER) == 0;
	git_buf_dispose(&reason);
	git_error_clear();
	return ok;
}

/* commondir/worktrees/name, without libgit2's trailing '/' doubled. */
static char *
admin_path(git_repository *repo, const char *name)
{
	const char	*c = git_repository_commondir(repo);
	size_t		 len = strlen(c);

	while (len > 1 && c[len - 1] == '/')
		len--;
	return xasprintf("%.*s/worktrees/%s", (int)len, c, name);
}

/* Writes text to path through a temporary file and a rename. */
static int
write_file(const char *path, const char *text, char **cause)
{
	char	*tmp;
	size_t	 len = strlen(text);
	int	 fd, rc = 0;

	tmp = xasprintf("%s.sb-tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || write(fd, text, len) != (ssize_t)len ||
	    close(fd) == -1 || rename(tmp, path) == -1) {
		rc = wt_fail(cause, "cannot write %s: %s", path,
		    strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

/*
 * Moves warm worktree (metadata admin_w, directory dir_w) to admin_n and
 * dir_n, and relinks the two: the directory first, so that until the links
 * are rewritten both names are stale (metadata pointing at nothing), which
 * the startup sweep removes.
 */
static int
move_worktree(const char *admin_w, const char *dir_w, const char *admin_n,
    const char *dir_n, char **cause)
{
	char	*p, *text;
	int	 rc;

	if (rename(dir_w, dir_n) == -1)
		return wt_fail(cause, "rename %s: %s", dir_w, strerror(errno));
	if (rename(admin_w, admin_n) == -1)
		return wt_fail(cause, "rename %s: %s", admin_w,
		    strerror(errno));
	p = xasprintf("%s/gitdir", admin_n);
	text = xasprintf("%s/.git\n", dir_n);
	rc = write_file(p, text, cause);
	free(text);
	free(p);
	if (rc < 0)
		return -1;
	p = xasprintf("%s/.git", dir_n);
	text = xasprintf("gitdir: %s\n", admin_n);
	rc = write_file(p, text, cause);
	free(text);
	free(p);
	return rc;
}

/*
 * In the claimed worktree: HEAD on the agent's branch (which points at the
 * base's current tip), files and index to match it when the warm checkout
 * was made from an older tip.  Called with wt_add_lock() held; releases it
 * once HEAD is switched.
 */
static int
switch_head(const char *path, const char *refname, git_commit *tip,
    const git_oid *warm_oid, char **cause)
{
	git_checkout_options co;
	git_repository	*wr = NULL;
	git_commit	*c = NULL;
	int		 rc = -1;

	if (git_repository_open_ext(&wr, path, GIT_REPOSITORY_OPEN_NO_SEARCH,
	    NULL) < 0) {
		wt_gfail(cause, "cannot open %s", path);
		wt_add_unlock();
		return -1;
	}
	rc = git_repository_set_head(wr, refname);
	/* Moved and consistent: other adds may look at it now. */
	wt_add_unlock();
	if (rc < 0) {
		wt_gfail(cause, "cannot set HEAD of %s", path);
		goto out;
	}
	rc = -1;
	if (!git_oid_equal(warm_oid, git_commit_id(tip))) {
		/*
		 * The index and files are the warm commit's, untouched:
		 * FORCE writes only what differs from the new tip.
		 */
		git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
		co.checkout_strategy = GIT_CHECKOUT_FORCE;
		/* The same commit, as an object of this repository handle. */
		if (git_commit_lookup(&c, wr, git_commit_id(tip)) < 0) {
			wt_gfail(cause, "base tip in %s", path);
			goto out;
		}
		co.disable_filters = !wt_filters_matter(wr, c);
		if (git_checkout_tree(wr, (git_object *)c, &co) < 0) {
			wt_gfail(cause, "cannot check out the base in %s",
			    path);
			goto out;
		}
	}
	rc = 0;
out:
	git_commit_free(c);
	git_repository_free(wr);
	return rc;
}

int
worktree_warm_claim(const char *repo_path, const char *base,
    const char *state_dir, const char *tag, int64_t agent_id,
    const char *task_text, char **out_branch, char **out_path, char **cause)
{
	git_repository	*repo = NULL;
	git_worktree	*ww = NULL, *wt = NULL;
	git_reference	*wref = NULL, *branch = NULL;
	git_commit	*tip = NULL;
	git_oid		 warm_oid;
	char		 wname[80], bname[80], nname[64], *owner = NULL;
	char		*dir = NULL, *path = NULL, *wpath = NULL;
	char		*admin_w = NULL, *admin_n = NULL, *name = NULL;
	char		*refname = NULL;
	int		 moved = 0, rc = -1;

	*out_branch = *out_path = NULL;
	if (agent_id < 0 || !tag_ok(tag))
		return wt_fail(cause, "bad claim of %s by %" PRId64, tag,
		    agent_id);
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	snprintf(wname, sizeof wname, WARM_PREFIX "%s", tag);
	snprintf(bname, sizeof bname, WARM_BRANCH "%s", tag);
	wt_agent_wtname(nname, sizeof nname, agent_id);
	owner = xasprintf("agent %" PRId64, agent_id);
	if ((dir = wt_worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/%" PRId64, dir, agent_id);
	wpath = xasprintf("%s/" WARM_DIR "%s", dir, tag);
	if (git_worktree_lookup(&ww, repo, wname) < 0 || !wt_warm_ready(ww) ||
	    strcmp(git_worktree_path(ww), wpath) != 0) {
		wt_fail(cause, "warm worktree %s is not ready", wname);
		goto out;
	}
	if (git_branch_lookup(&wref, repo, bname, GIT_BRANCH_LOCAL) < 0 ||
	    git_reference_target(wref) == NULL) {
		wt_gfail(cause, "no branch %s", bname);
		goto out;
	}
	git_oid_cpy(&warm_oid, git_reference_target(wref));
	if (wt_add_precheck(repo, nname, path, owner, cause) < 0 ||
	    wt_resolve_base(repo, base, &tip, cause) < 0 ||
	    wt_agent_branch(repo, agent_id, task_text, tip, &branch, &name,
	    cause) < 0)
		goto out;

	admin_w = admin_path(repo, wname);
	admin_n = admin_path(repo, nname);
	moved = 1;
	/* Until HEAD is switched, an add elsewhere would trip over it. */
	wt_add_lock();
	refname = xasprintf("refs/heads/%s", name);
	if (move_worktree(admin_w, wpath, admin_n, path, cause) < 0) {
		wt_add_unlock();
		goto out;
	}
	if (switch_head(path, refname, tip, &warm_oid, cause) < 0)
		goto out;
	/* The warm branch is checked out nowhere now. */
	if (git_reference_delete(wref) < 0)
		log_warnx("worktree: cannot delete %s", bname);
	if (git_worktree_lookup(&wt, repo, nname) < 0 ||
	    git_worktree_unlock(wt) < 0) {
		wt_gfail(cause, "claimed worktree %s", nname);
		goto out;
	}
	free(owner);
	owner = xasprintf("switchboard: agent %" PRId64, agent_id);
	if (git_worktree_lock(wt, owner) < 0)
		log_warnx("worktree: cannot lock %s: %s", nname,
		    git_error_last() ? git_error_last()->message : "?");
	log_info("worktree: agent %" PRId64 " on %s at %s (warm %s)",
	    agent_id, name, path, tag);
	*out_branch = name;
	*out_path = path;
	name = path = NULL;
	rc = 0;
out:
	if (rc < 0 && branch != NULL) {
		/* Whatever was moved goes; the caller makes a cold one. */
		if (moved) {
			git_worktree_free(wt);
			wt = NULL;
			if (git_worktree_lookup(&wt, repo, nname) == 0)
				wt_prune(wt, GIT_WORKTREE_PRUNE_VALID |
				    GIT_WORKTREE_PRUNE_LOCKED |
				    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL);
			worktree_warm_remove(repo_path, tag, NULL);
			/* Ours: state dir and an integer, not from metadata. */
			wt_rm_rf(path);
		}
		git_reference_delete(branch);
	}
	free(refname);
	free(name);
	free(admin_n);
	free(admin_w);
	free(wpath);
	free(path);
	free(dir);
	free(owner);
	git_commit_free(tip);
	git_reference_free(branch);
	git_reference_free(wref);
	git_worktree_free(wt);
	git_worktree_free(ww);
	git_repository_free(repo);
	return rc;
}

int
worktree_warm_remove(const char *repo_path, const char *tag, char **cause)
{
	char	 name[80], bname[80];

	if (!tag_ok(tag))
		return wt_fail(cause, "bad warm worktree tag %s", tag);
	snprintf(name, sizeof name, WARM_PREFIX "%s", tag);
	snprintf(bname, sizeof bname, WARM_BRANCH "%s", tag);
	return wt_remove_named(repo_path, name, bname, cause);
}

int
worktree_warm_list(const char *repo_path, const char *state_dir,
    char ***out, size_t *n, char **cause)
{
	git_repository	*repo = NULL;
	git_worktree	*wt;
	git_strarray	 names = { 0 };
	char		*dir = NULL, *want;
	const char	*tag;
	size_t		 i;
	int		 rc = -1;

	*out = xcalloc(1, sizeof **out);
	*n = 0;
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if ((dir = wt_worktrees_dir(state_dir, 0, NULL)) == NULL) {
		rc = 0;
		goto out;
	}
	if (git_worktree_list(&names, repo) < 0) {
		wt_gfail(cause, "cannot list worktrees of %s", repo_path);
		goto out;
	}
	for (i = 0; i < names.count; i++) {
		if (strncmp(names.strings[i], WARM_PREFIX,
		    strlen(WARM_PREFIX)) != 0)
			continue;
		tag = names.strings[i] + strlen(WARM_PREFIX);
		if (!tag_ok(tag) ||
		    git_worktree_lookup(&wt, repo, names.strings[i]) < 0)
			continue;
		/* Another daemon's state dir may share this repository. */
		want = xasprintf("%s/" WARM_DIR "%s", dir, tag);
		if (strcmp(git_worktree_path(wt), want) == 0 &&
		    wt_warm_ready(wt)) {
			*out = xrealloc(*out, (*n + 2) * sizeof **out);
			(*out)[(*n)++] = xstrdup(tag);
			(*out)[*n] = NULL;
		}
		free(want);
		git_worktree_free(wt);
	}
	rc = 0;
out:
	git_strarray_dispose(&names);
	free(dir);
	git_repository_free(repo);
	return rc;
}
