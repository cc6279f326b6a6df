#include "orchestrator/worktree.h"
#include "orchestrator/worktree-int.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
tip_of(git_repository *repo, const char *branch, git_commit **out,
    char **cause)
{
	git_reference	*ref = NULL;
	int		 error;

	if (git_branch_lookup(&ref, repo, branch, GIT_BRANCH_LOCAL) < 0)
		return wt_gfail(cause, "no branch %s", branch);
	error = git_reference_peel((git_object **)out, ref, GIT_OBJECT_COMMIT);
	git_reference_free(ref);
	if (error < 0)
		return wt_gfail(cause, "branch %s is not a commit", branch);
	return 0;
}

int
worktree_tip(const char *repo_path, const char *branch, char *hex,
    char **cause)
{
	git_repository	*repo = NULL;
	git_commit	*c = NULL;
	int		 rc = -1;

	hex[0] = '\0';
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (tip_of(repo, branch, &c, cause) == 0) {
		git_oid_tostr(hex, GIT_OID_HEXSZ + 1, git_commit_id(c));
		rc = 0;
	}
	git_commit_free(c);
	git_repository_free(repo);
	return rc;
}

void
worktree_merge_free(struct worktree_merge *m)
{
	worktree_files_free(m->conflicts, m->nconflicts);
	m->conflicts = NULL;
	m->nconflicts = 0;
}

int
worktree_merge_prepare(const char *repo_path, const char *base,
    const char *branch, const char *name, const char *email,
    const char *message, struct worktree_merge *out, char **cause)
{
	git_repository		*repo = NULL;
	git_commit		*bc = NULL, *tc = NULL;
	git_index		*idx = NULL;
	git_signature		*sig = NULL;
	git_tree		*tree = NULL;
	const git_index_entry	*anc, *ours, *theirs;
	git_index_conflict_iterator *it = NULL;
	git_merge_options	 mo;
	git_oid			 tree_id, merged;
	const git_commit	*parents[2];
	size_t			 cap = 0;
	int			 rc = -1;

	memset(out, 0, sizeof *out);
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (tip_of(repo, base, &bc, cause) < 0 ||
	    tip_of(repo, branch, &tc, cause) < 0)
		goto out;
	git_oid_tostr(out->base_oid, sizeof out->base_oid, git_commit_id(bc));
	if (git_oid_equal(git_commit_id(bc), git_commit_id(tc)) ||
	    git_graph_descendant_of(repo, git_commit_id(bc),
	    git_commit_id(tc)) == 1) {
		out->up_to_date = 1;
		git_oid_tostr(out->merged_oid, sizeof out->merged_oid,
		    git_commit_id(bc));
		rc = 0;
		goto out;
	}
	if (git_graph_descendant_of(repo, git_commit_id(tc),
	    git_commit_id(bc)) == 1) {
		/* Base has not moved since the branch left it. */
		out->fast_forward = 1;
		git_oid_tostr(out->merged_oid, sizeof out->merged_oid,
		    git_commit_id(tc));
		rc = 0;
		goto out;
	}
	git_merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION);
	if (git_merge_commits(&idx, repo, bc, tc, &mo) < 0) {
		wt_gfail(cause, "cannot merge %s into %s", branch, base);
		goto out;
	}
	if (git_index_has_conflicts(idx)) {
		if (git_index_conflict_iterator_new(&it, idx) < 0) {
			wt_gfail(cause, "conflicts");
			goto out;
		}
		while (git_index_conflict_next(&anc, &ours, &theirs, it) == 0) {
			const char *p = ours != NULL ? ours->path : theirs !=
			    NULL ? theirs->path : anc->path;

			if (out->nconflicts + 1 >= cap) {
				cap = cap ? cap * 2 : 8;
				out->conflicts = xrealloc(out->conflicts,
				    cap * sizeof *out->conflicts);
			}
			out->conflicts[out->nconflicts++] = xstrdup(p);
			out->conflicts[out->nconflicts] = NULL;
		}
		rc = 0;
		goto out;
	}
	/*
	 * The merge commit goes into the object database only; no ref
	 * moves until the check has passed (worktree_fast_forward).
	 */
	if (git_index_write_tree_to(&tree_id, idx, repo) < 0 ||
	    git_tree_lookup(&tree, repo, &tree_id) < 0 ||
	    git_signature_now(&sig, name, email) < 0) {
		wt_gfail(cause, "cannot write the merged tree");
		goto out;
	}
	parents[0] = bc;
	parents[1] = tc;
	if (git_commit_create(&merged, repo, NULL, sig, sig, NULL, message,
	    tree, 2, parents) < 0) {
		wt_gfail(cause, "cannot create the merge commit");
		goto out;
	}
	git_oid_tostr(out->merged_oid, sizeof out->merged_oid, &merged);
	rc = 0;
out:
	git_index_conflict_iterator_free(it);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(idx);
	git_commit_free(tc);
	git_commit_free(bc);
	git_repository_free(repo);
	return rc;
}

#define SCRATCH_PREFIX	"sbm-"
#define SCRATCH_BRANCH	"sb-merge/"

int
worktree_scratch_remove(const char *repo_path, int64_t merge_id, char **cause)
{
	char	 name[64], bname[64];

	snprintf(name, sizeof name, SCRATCH_PREFIX "%" PRId64, merge_id);
	snprintf(bname, sizeof bname, SCRATCH_BRANCH "%" PRId64, merge_id);
	return wt_remove_named(repo_path, name, bname, cause);
}

int
worktree_scratch_add(const char *repo_path, const char *state_dir,
    int64_t merge_id, const char *commit_hex, char **out_path, char **cause)
{
	git_repository	*repo = NULL;
	git_commit	*c = NULL;
	git_reference	*ref = NULL;
	git_oid		 oid;
	char		 name[64], bname[64], *dir = NULL, *path = NULL;
	int		 rc = -1;

	*out_path = NULL;
	/* What an interrupted attempt left goes first. */
	if (worktree_scratch_remove(repo_path, merge_id, cause) < 0)
		return -1;
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	snprintf(name, sizeof name, SCRATCH_PREFIX "%" PRId64, merge_id);
	snprintf(bname, sizeof bname, SCRATCH_BRANCH "%" PRId64, merge_id);
	if (git_oid_fromstr(&oid, commit_hex) < 0 ||
	    git_commit_lookup(&c, repo, &oid) < 0) {
		wt_gfail(cause, "no commit %s", commit_hex);
		goto out;
	}
	if ((dir = wt_worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/merge-%" PRId64, dir, merge_id);
	if (git_branch_create(&ref, repo, bname, c, 1) < 0) {
		wt_gfail(cause, "cannot create %s", bname);
		goto out;
	}
	if (wt_add_checkout(repo, name, path, ref, c, name, 0, cause) < 0)
		goto out;
	*out_path = path;
	path = NULL;
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
worktree_fast_forward(const char *repo_path, const char *base,
    const char *expect_hex, const char *new_hex, char **warning,
    char **cause)
{
	git_checkout_options co;
	git_repository	*repo = NULL;
	git_reference	*ref = NULL, *nref = NULL, *head = NULL;
	git_oid		 expect, want;
	git_commit	*oldc = NULL, *newc = NULL;
	char		*refname = NULL;
	int		 rc = -1, attached = 0;

	memset(&co, 0, sizeof co);
	*warning = NULL;
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (git_oid_fromstr(&expect, expect_hex) < 0 ||
	    git_oid_fromstr(&want, new_hex) < 0) {
		wt_fail(cause, "bad object id");
		goto out;
	}
	refname = xasprintf("refs/heads/%s", base);
	if (git_reference_lookup(&ref, repo, refname) < 0) {
		wt_gfail(cause, "no branch %s", base);
		goto out;
	}
	if (git_reference_target(ref) != NULL &&
	    git_oid_equal(git_reference_target(ref), &want)) {
		rc = 0;		/* done before (a resumed merge) */
		goto checkout;
	}
	if (git_reference_target(ref) == NULL ||
	    !git_oid_equal(git_reference_target(ref), &expect)) {
		rc = WORKTREE_EMOVED;
		goto out;
	}
	/*
	 * Compare-and-swap under libgit2's ref lock: if anyone moved the
	 * base since the merge was made, nothing is written.
	 */
	if (git_reference_create_matching(&nref, repo, refname, &want, 1,
	    &expect, "switchboard: merge queue fast-forward") < 0) {
		if (git_error_last() != NULL && git_error_last()->klass ==
		    GIT_ERROR_REFERENCE) {
			rc = WORKTREE_EMOVED;
			goto out;
		}
		wt_gfail(cause, "cannot move %s", base);
		goto out;
	}
	rc = 0;
checkout:
	/*
	 * A non-bare repository with the base checked out: bring its files
	 * along, but never over a person's uncommitted changes (SAFE).
	 */
	if (!git_repository_is_bare(repo) && git_repository_head(&head,
	    repo) == 0 && strcmp(git_reference_name(head), refname) == 0)
		attached = 1;
	if (attached) {
		/*
		 * The ref has moved already, so the baseline (what the files
		 * are expected to be) is the old base's tree, not HEAD's.
		 */
		git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
		co.checkout_strategy = GIT_CHECKOUT_SAFE;
		if (git_commit_lookup(&oldc, repo, &expect) == 0)
			git_commit_tree(&co.baseline, oldc);
		if (git_commit_lookup(&newc, repo, &want) < 0 ||
		    git_checkout_tree(repo, (git_object *)newc, &co) < 0)
			wt_gfail(warning, "%s moved, but the checkout in %s "
			    "was not updated (local changes?)", base,
			    repo_path);
	}
out:
	git_tree_free(co.baseline);
	git_commit_free(oldc);
	git_commit_free(newc);
	free(refname);
	git_reference_free(head);
	git_reference_free(nref);
	git_reference_free(ref);
	git_repository_free(repo);
	return rc;
}

