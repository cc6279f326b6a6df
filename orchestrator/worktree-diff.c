#include "orchestrator/worktree.h"
#include "orchestrator/worktree-int.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <string.h>

#define WT_STAT_WIDTH	72		/* chat bubbles are narrower than a tty */

int
worktree_commit_leftovers(const char *path, const char *name,
    const char *email, const char *message, int *committed, char **cause)
{
	git_repository	*repo = NULL;
	git_reference	*head = NULL;
	git_commit	*parent = NULL;
	git_index	*index = NULL;
	git_tree	*tree = NULL;
	git_signature	*sig = NULL;
	git_buf		 msg = GIT_BUF_INIT;
	git_oid		 tree_id, id;
	int		 error, rc = -1;

	*committed = 0;
	if (wt_open_repo(&repo, path, cause) < 0)
		return -1;
	error = git_repository_head(&head, repo);
	if (error == GIT_EUNBORNBRANCH)
		head = NULL;
	else if (error < 0) {
		wt_gfail(cause, "no HEAD in %s", path);
		goto out;
	} else if (!git_reference_is_branch(head)) {
		wt_fail(cause, "HEAD is detached in %s; not committing", path);
		goto out;
	} else if (git_reference_peel((git_object **)&parent, head,
	    GIT_OBJECT_COMMIT) < 0) {
		wt_gfail(cause, "HEAD of %s", path);
		goto out;
	}

	/* add_all: new and modified, ignored files skipped; update_all: deletions. */
	if (git_repository_index(&index, repo) < 0 ||
	    git_index_add_all(index, NULL, GIT_INDEX_ADD_DEFAULT, NULL,
	    NULL) < 0 ||
	    git_index_update_all(index, NULL, NULL, NULL) < 0 ||
	    git_index_write(index) < 0 ||
	    git_index_write_tree(&tree_id, index) < 0) {
		wt_gfail(cause, "cannot stage changes in %s", path);
		goto out;
	}
	if (parent != NULL && git_oid_equal(&tree_id,
	    git_commit_tree_id(parent))) {
		rc = 0;
		goto out;
	}

	if (git_signature_now(&sig, name, email) < 0) {
		wt_gfail(cause, "bad commit identity");
		goto out;
	}
	if (message == NULL || *message == '\0')
		message = "switchboard: changes left uncommitted by the agent";
	if (git_message_prettify(&msg, message, 0, 0) < 0 ||
	    git_tree_lookup(&tree, repo, &tree_id) < 0 ||
	    git_commit_create(&id, repo, "HEAD", sig, sig, NULL, msg.ptr, tree,
	    parent != NULL ? 1 : 0, (const git_commit **)&parent) < 0) {
		wt_gfail(cause, "cannot commit in %s", path);
		goto out;
	}
	*committed = 1;
	rc = 0;
out:
	git_buf_dispose(&msg);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(index);
	git_commit_free(parent);
	git_reference_free(head);
	git_repository_free(repo);
	return rc;
}

/* Tree of the merge base of base and tip; tip NULL means HEAD. */
static int
merge_base_tree(git_repository *repo, const char *base, const char *tip,
    git_tree **base_tree, git_tree **tip_tree, char **cause)
{
	git_commit	*bc = NULL, *mbc = NULL;
	git_object	*tc = NULL;
	git_oid		 mb;
	int		 rc = -1;

	if (wt_resolve_base(repo, base, &bc, cause) < 0)
		return -1;
	if (git_revparse_single(&tc, repo, tip != NULL ? tip : "HEAD") < 0 ||
	    git_object_peel((git_object **)&mbc, tc, GIT_OBJECT_COMMIT) < 0) {
		wt_gfail(cause, "cannot resolve %s",
		    tip != NULL ? tip : "HEAD");
		goto out;
	}
	if (tip_tree != NULL && git_commit_tree(tip_tree, mbc) < 0) {
		wt_gfail(cause, "tree of %s", tip);
		goto out;
	}
	git_commit_free(mbc);
	mbc = NULL;
	if (git_merge_base(&mb, repo, git_commit_id(bc),
	    git_object_id(tc)) < 0) {
		wt_gfail(cause, "no merge base of %s and %s", base,
		    tip != NULL ? tip : "HEAD");
		goto out;
	}
	if (git_commit_lookup(&mbc, repo, &mb) < 0 ||
	    git_commit_tree(base_tree, mbc) < 0) {
		wt_gfail(cause, "tree of merge base");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && tip_tree != NULL) {
		git_tree_free(*tip_tree);
		*tip_tree = NULL;
	}
	git_commit_free(mbc);
	git_object_free(tc);
	git_commit_free(bc);
	return rc;
}

/*
 * libgit2 prints every file and then the summary line; keep max_files
 * lines, say how many were left out, keep the summary.
 */
static char *
stat_text(const char *full, size_t nfiles, size_t max_files)
{
	struct buf	 b = { 0 };
	const char	*p, *nl, *last;
	size_t		 len, i;

	len = strlen(full);
	while (len > 0 && full[len - 1] == '\n')
		len--;
	for (last = full + len; last > full && last[-1] != '\n'; last--)
		;
	for (p = full, i = 0; p < last && i < max_files; p = nl + 1, i++) {
		nl = memchr(p, '\n', last - p);
		buf_add(&b, p, nl - p + 1);
	}
	if (nfiles > max_files)
		buf_printf(&b, " ... and %zu more file%s\n", nfiles - max_files,
		    nfiles - max_files == 1 ? "" : "s");
	buf_add(&b, last, full + len - last);
	return buf_steal(&b);
}

/* The paths a diff touches, at most max, NULL-terminated; how many. */
static size_t
delta_paths(git_diff *diff, size_t max, char ***out)
{
	const git_diff_delta	*d;
	size_t			 i, count = git_diff_num_deltas(diff);

	if (count > max)
		count = max;
	*out = xcalloc(count + 1, sizeof **out);
	for (i = 0; i < count; i++) {
		d = git_diff_get_delta(diff, i);
		(*out)[i] = xstrdup(d->new_file.path != NULL ?
		    d->new_file.path : d->old_file.path);
	}
	return count;
}

int
worktree_diffstat(const char *repo_path, const char *base, const char *branch,
    size_t max_files, struct worktree_stat *out, char **cause)
{
	git_repository	*repo = NULL;
	git_tree	*old = NULL, *new = NULL;
	git_diff	*diff = NULL;
	git_diff_stats	*stats = NULL;
	git_buf		 full = GIT_BUF_INIT;
	int		 rc = -1;

	memset(out, 0, sizeof *out);
	if (branch == NULL)
		branch = "HEAD";
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, branch, &old, &new, cause) < 0)
		goto out;
	/* find_similar with NULL options follows diff.renames, default on, as git. */
	if (git_diff_tree_to_tree(&diff, repo, old, new, NULL) < 0 ||
	    git_diff_find_similar(diff, NULL) < 0 ||
	    git_diff_get_stats(&stats, diff) < 0 ||
	    git_diff_stats_to_buf(&full, stats, GIT_DIFF_STATS_FULL,
	    WT_STAT_WIDTH) < 0) {
		wt_gfail(cause, "cannot diff %s against %s", branch, base);
		goto out;
	}
	out->files = git_diff_stats_files_changed(stats);
	out->insertions = git_diff_stats_insertions(stats);
	out->deletions = git_diff_stats_deletions(stats);
	if (out->files == 0)
		out->text = xstrdup(" 0 files changed");
	else
		out->text = stat_text(full.ptr, out->files, max_files);
	rc = 0;
out:
	git_buf_dispose(&full);
	git_diff_stats_free(stats);
	git_diff_free(diff);
	git_tree_free(new);
	git_tree_free(old);
	git_repository_free(repo);
	return rc;
}

int
worktree_changed_files(const char *worktree_path, const char *base,
    size_t max, char ***out, size_t *n, size_t *total, char **cause)
{
	git_diff_options opts;
	git_repository	*repo = NULL;
	git_tree	*old = NULL;
	git_diff	*diff = NULL;
	int		 rc = -1;

	*out = NULL;
	*n = *total = 0;
	if (wt_open_repo(&repo, worktree_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, NULL, &old, NULL, cause) < 0)
		goto out;
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	opts.flags = GIT_DIFF_INCLUDE_UNTRACKED |
	    GIT_DIFF_RECURSE_UNTRACKED_DIRS;
	if (git_diff_tree_to_workdir_with_index(&diff, repo, old, &opts) < 0) {
		wt_gfail(cause, "cannot diff %s against %s", worktree_path,
		    base);
		goto out;
	}
	*total = git_diff_num_deltas(diff);
	*n = delta_paths(diff, max, out);
	rc = 0;
out:
	git_diff_free(diff);
	git_tree_free(old);
	git_repository_free(repo);
	return rc;
}

void
worktree_files_free(char **files, size_t n)
{
	size_t	 i;

	if (files == NULL)
		return;
	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
}


/* ---- results: full diffs, changed paths, merges (issue "results") ------- */

struct diff_buf {
	struct buf	 b;
	size_t		 files;
};

static int
diff_line_cb(const git_diff_delta *d, const git_diff_hunk *h,
    const git_diff_line *l, void *arg)
{
	struct diff_buf	*db = arg;

	/* Context, additions and deletions carry their marker; headers not. */
	if (l->origin == GIT_DIFF_LINE_CONTEXT ||
	    l->origin == GIT_DIFF_LINE_ADDITION ||
	    l->origin == GIT_DIFF_LINE_DELETION)
		buf_add(&db->b, &l->origin, 1);
	else if (l->origin == GIT_DIFF_LINE_FILE_HDR)
		db->files++;
	buf_add(&db->b, l->content, l->content_len);
	return 0;
}

int
worktree_diff(const char *repo_path, const char *base, const char *branch,
    const char *path, char **out, size_t *len, size_t *nfiles, char **cause)
{
	git_diff_options opts;
	git_repository	*repo = NULL;
	git_tree	*old = NULL, *new = NULL;
	git_diff	*diff = NULL;
	struct diff_buf	 db = { { 0 }, 0 };
	char		*spec[1];
	int		 rc = -1;

	*out = NULL;
	*len = *nfiles = 0;
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, branch != NULL ? branch : "HEAD", &old,
	    &new, cause) < 0)
		goto out;
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	if (path != NULL && *path != '\0') {
		/* A literal path or directory, not a glob from chat text. */
		spec[0] = (char *)path;
		opts.pathspec.strings = spec;
		opts.pathspec.count = 1;
		opts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
	}
	if (git_diff_tree_to_tree(&diff, repo, old, new, &opts) < 0 ||
	    git_diff_find_similar(diff, NULL) < 0 ||
	    git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, diff_line_cb, &db) < 0) {
		wt_gfail(cause, "cannot diff %s against %s", branch, base);
		buf_free(&db.b);
		goto out;
	}
	/* A directory given as path matches its files by prefix. */
	if (db.b.len == 0 && path != NULL && *path != '\0' &&
	    path[strlen(path) - 1] != '/') {
		char *dir = xasprintf("%s/", path);

		git_diff_free(diff);
		diff = NULL;
		opts.flags &= ~GIT_DIFF_DISABLE_PATHSPEC_MATCH;
		spec[0] = dir;
		if (git_diff_tree_to_tree(&diff, repo, old, new, &opts) == 0)
			git_diff_print(diff, GIT_DIFF_FORMAT_PATCH,
			    diff_line_cb, &db);
		free(dir);
	}
	*len = db.b.len;
	*nfiles = db.files;
	*out = buf_steal(&db.b);
	rc = 0;
out:
	git_diff_free(diff);
	git_tree_free(new);
	git_tree_free(old);
	git_repository_free(repo);
	return rc;
}

int
worktree_branch_files(const char *repo_path, const char *base,
    const char *branch, char ***out, size_t *n, char **cause)
{
	git_repository	*repo = NULL;
	git_tree	*old = NULL, *new = NULL;
	git_diff	*diff = NULL;
	int		 rc = -1;

	*out = NULL;
	*n = 0;
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, branch, &old, &new, cause) < 0)
		goto out;
	if (git_diff_tree_to_tree(&diff, repo, old, new, NULL) < 0) {
		wt_gfail(cause, "cannot diff %s against %s", branch, base);
		goto out;
	}
	*n = delta_paths(diff, SIZE_MAX, out);
	rc = 0;
out:
	git_diff_free(diff);
	git_tree_free(new);
	git_tree_free(old);
	git_repository_free(repo);
	return rc;
}

