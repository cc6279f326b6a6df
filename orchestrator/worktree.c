#include "orchestrator/worktree.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define WT_PREFIX	"sb-"		/* worktree (metadata) name prefix */
#define WT_SUFFIX_MAX	99		/* "-2" .. "-99" before giving up */
#define WT_STAT_WIDTH	72		/* chat bubbles are narrower than a tty */

static int	git_ready;

void
worktree_git_init(void)
{
	if (git_ready)
		return;
	git_libgit2_init();
	git_ready = 1;
}

void
worktree_git_shutdown(void)
{
	if (!git_ready)
		return;
	git_libgit2_shutdown();
	git_ready = 0;
}

/* Set *cause to the formatted text plus libgit2's last error, if any. */
static int
gfail(char **cause, const char *fmt, ...)
{
	const git_error	*e = git_error_last();
	va_list		 ap;
	char		*msg;

	if (cause == NULL)
		return -1;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (e != NULL && e->message != NULL && *e->message != '\0') {
		*cause = xasprintf("%s: %s", msg, e->message);
		free(msg);
	} else
		*cause = msg;
	return -1;
}

/* Same, for failures that are ours: a stale libgit2 error would mislead. */
static int
fail(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	if (cause == NULL)
		return -1;
	va_start(ap, fmt);
	*cause = xvasprintf(fmt, ap);
	va_end(ap);
	return -1;
}

static int
slug_char(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 'a';
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return c;
	return 0;
}

/*
 * Only [a-z0-9] and a '-' *between* two of them are ever written, so no '.',
 * '/', '@', '{', control or non-ASCII byte reaches a ref name, and "..",
 * ".lock", a leading or trailing '-' cannot form.
 */
void
worktree_slug(const char *text, char *buf, size_t len)
{
	const unsigned char	*p;
	size_t			 max, n = 0;
	char			*dash;
	int			 c, sep = 0, cut = 0;

	max = len - 1 < WORKTREE_SLUG_MAX ? len - 1 : WORKTREE_SLUG_MAX;
	for (p = (const unsigned char *)(text ? text : ""); *p != '\0'; p++) {
		if ((c = slug_char(*p)) == 0) {
			sep = 1;
			continue;
		}
		if (sep && n > 0) {
			if (n + 2 > max) {
				cut = 1;
				break;
			}
			buf[n++] = '-';
		} else if (n + 1 > max) {
			cut = 1;
			break;
		}
		buf[n++] = c;
		sep = 0;
	}
	buf[n] = '\0';

	/* Cut in a word only when keeping whole words leaves too little. */
	if (cut && !sep && (dash = strrchr(buf, '-')) != NULL &&
	    (size_t)(dash - buf) >= max / 2)
		*dash = '\0';
	if (buf[0] == '\0')
		snprintf(buf, len, "task");
}

static int
open_repo(git_repository **repo, const char *path, char **cause)
{
	worktree_git_init();
	if (git_repository_open_ext(repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH,
	    NULL) < 0)
		return gfail(cause, "cannot open repository %s", path);
	return 0;
}

/*
 * The commit work starts from: local branch base, else HEAD.  One rule for
 * worktree_add and worktree_diffstat so a fallback at creation is also the
 * base the result is measured against.
 */
static int
resolve_base(git_repository *repo, const char *base, git_commit **out,
    char **cause)
{
	git_reference	*ref = NULL;
	int		 error;

	if (base != NULL && *base != '\0') {
		error = git_branch_lookup(&ref, repo, base, GIT_BRANCH_LOCAL);
		if (error != 0 && error != GIT_ENOTFOUND &&
		    error != GIT_EINVALIDSPEC)
			return gfail(cause, "base branch %s", base);
		if (error != 0)
			log_warnx("worktree: base branch %s not found in %s, "
			    "using HEAD", base, git_repository_commondir(repo));
	}
	if (ref == NULL && git_repository_head(&ref, repo) < 0)
		return gfail(cause, "no base branch and no HEAD in %s",
		    git_repository_commondir(repo));
	error = git_reference_peel((git_object **)out, ref, GIT_OBJECT_COMMIT);
	git_reference_free(ref);
	if (error < 0)
		return gfail(cause, "base %s is not a commit",
		    base != NULL ? base : "HEAD");
	return 0;
}

/* Absolute state_dir/worktrees, created if needed; caller frees. */
static char *
worktrees_dir(const char *state_dir, int create, char **cause)
{
	char	*dir, *abs;

	dir = xasprintf("%s/worktrees", state_dir);
	if (create && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fail(cause, "mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	if ((abs = realpath(dir, NULL)) == NULL)
		fail(cause, "%s: %s", dir, strerror(errno));
	free(dir);
	return abs;
}

static int
prune(git_worktree *wt, uint32_t flags, char **cause)
{
	git_worktree_prune_options	 opts;

	git_worktree_prune_options_init(&opts,
	    GIT_WORKTREE_PRUNE_OPTIONS_VERSION);
	opts.flags = flags;
	if (git_worktree_prune(wt, &opts) < 0)
		return gfail(cause, "cannot prune worktree %s",
		    git_worktree_name(wt));
	return 0;
}

static int
find_gitattributes(const char *root, const git_tree_entry *e, void *arg)
{
	if (strcmp(git_tree_entry_name(e), ".gitattributes") == 0) {
		*(int *)arg = 1;
		return -1;	/* stop the walk */
	}
	return 0;
}

static int
file_exists(const char *dir, const char *rel)
{
	struct stat	 sb;
	char		*p;
	int		 ok;

	if (dir == NULL)
		return 0;
	p = xasprintf("%s/%s", dir, rel);
	ok = stat(p, &sb) == 0;
	free(p);
	return ok;
}

/*
 * Whether checkout filters (CRLF conversion, ident) could change a byte of
 * this checkout.  They cost a third of a 20,000-file checkout in libgit2 1.5
 * (per-file attribute lookups that realpath the target twice; see
 * bench/worktree.c), and do nothing unless core.autocrlf is on or some
 * attributes file exists: the tree's .gitattributes, info/attributes,
 * core.attributesFile or its XDG default, /etc/gitattributes.  libgit2 runs
 * no external filter drivers (LFS) either way.  When unsure: they matter.
 */
static int
filters_matter(git_repository *repo, git_commit *base)
{
	git_config	*cfg = NULL;
	git_tree	*tree = NULL;
	const char	*home, *xdg;
	int		 autocrlf = 0, found = 0, error;
	git_buf		 b = GIT_BUF_INIT;

	if (git_repository_config_snapshot(&cfg, repo) < 0)
		return 1;
	error = git_config_get_bool(&autocrlf, cfg, "core.autocrlf");
	if ((error < 0 && error != GIT_ENOTFOUND) || autocrlf)
		found = 1;	/* "input" is not a bool, and it converts */
	if (!found && git_config_get_string_buf(&b, cfg,
	    "core.attributesfile") != GIT_ENOTFOUND)
		found = 1;
	git_buf_dispose(&b);
	git_config_free(cfg);
	git_error_clear();

	xdg = getenv("XDG_CONFIG_HOME");
	home = getenv("HOME");
	if (found || file_exists(git_repository_commondir(repo),
	    "info/attributes") || file_exists("/etc", "gitattributes") ||
	    (xdg != NULL && *xdg != '\0' ? file_exists(xdg, "git/attributes") :
	    file_exists(home, ".config/git/attributes")))
		return 1;
	if (git_commit_tree(&tree, base) < 0 ||
	    (git_tree_walk(tree, GIT_TREEWALK_PRE, find_gitattributes,
	    &found) < 0 && !found))
		found = 1;
	git_tree_free(tree);
	git_error_clear();
	return found;
}

static pthread_mutex_t	 add_lock = PTHREAD_MUTEX_INITIALIZER;

int
worktree_add(const char *repo_path, const char *base_branch,
    const char *state_dir, int64_t agent_id, const char *task_text,
    char **out_branch, char **out_path, char **cause)
{
	git_worktree_add_options opts;
	git_repository	*repo = NULL;
	git_commit	*base = NULL;
	git_reference	*branch = NULL;
	git_worktree	*wt = NULL;
	char		 slug[WORKTREE_SLUG_MAX + 1], wtname[32], *reason;
	char		*name = NULL, *dir = NULL, *path = NULL;
	int		 error, valid, i, rc = -1;
	struct stat	 sb;

	*out_branch = *out_path = NULL;
	if (agent_id < 0)
		return fail(cause, "bad agent id %" PRId64, agent_id);
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (resolve_base(repo, base_branch, &base, cause) < 0)
		goto out;
	if ((dir = worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/%" PRId64, dir, agent_id);
	snprintf(wtname, sizeof wtname, WT_PREFIX "%" PRId64, agent_id);

	/*
	 * Metadata left from an earlier life whose directory is gone would
	 * make git_worktree_add fail on its exclusive mkdir; a live one is a
	 * real conflict (two agents with one id) and is not touched.
	 */
	if (git_worktree_lookup(&wt, repo, wtname) == 0) {
		if (git_worktree_validate(wt) == 0) {
			fail(cause, "agent %" PRId64 " already has worktree "
			    "%s at %s", agent_id, wtname, git_worktree_path(wt));
			goto out;
		}
		log_info("worktree: pruning stale %s (%s)", wtname,
		    git_worktree_path(wt));
		if (prune(wt, GIT_WORKTREE_PRUNE_LOCKED, cause) < 0)
			goto out;
		git_worktree_free(wt);
		wt = NULL;
	}
	/* Checked here so a failed add never leaves a half-made worktree. */
	if (lstat(path, &sb) == 0) {
		fail(cause, "worktree directory %s already exists", path);
		goto out;
	}

	worktree_slug(task_text, slug, sizeof slug);
	for (i = 1; i <= WT_SUFFIX_MAX; i++) {
		free(name);
		if (i == 1)
			name = xasprintf("sb/%" PRId64 "-%s", agent_id, slug);
		else
			name = xasprintf("sb/%" PRId64 "-%s-%d", agent_id, slug,
			    i);
		if (git_branch_name_is_valid(&valid, name) < 0 || !valid) {
			fail(cause, "invalid branch name %s", name);
			goto out;
		}
		error = git_branch_create(&branch, repo, name, base, 0);
		if (error == 0)
			break;
		if (error != GIT_EEXISTS) {
			gfail(cause, "cannot create branch %s", name);
			goto out;
		}
		log_info("worktree: branch %s exists, keeping it", name);
	}
	if (branch == NULL) {
		fail(cause, "branches sb/%" PRId64 "-%s-2..%d all exist",
		    agent_id, slug, WT_SUFFIX_MAX);
		goto out;
	}

	git_worktree_add_options_init(&opts, GIT_WORKTREE_ADD_OPTIONS_VERSION);
	opts.ref = branch;
	opts.checkout_options.disable_filters = !filters_matter(repo, base);
	/*
	 * Agents start on the threadpool in parallel, and two adds in one
	 * repository race: both create .git/worktrees ("directory exists"),
	 * and one sees the other's half-made worktree and refuses its branch
	 * ("reference is already checked out").  One add at a time.
	 */
	pthread_mutex_lock(&add_lock);
	error = git_worktree_add(&wt, repo, wtname, path, &opts);
	pthread_mutex_unlock(&add_lock);
	if (error < 0) {
		gfail(cause, "cannot add worktree %s at %s", wtname, path);
		/* Our precondition checks make anything named wtname ours. */
		if (git_worktree_lookup(&wt, repo, wtname) == 0)
			prune(wt, GIT_WORKTREE_PRUNE_VALID |
			    GIT_WORKTREE_PRUNE_LOCKED |
			    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL);
		if (git_branch_delete(branch) < 0)
			log_warnx("worktree: cannot delete branch %s", name);
		goto out;
	}
	reason = xasprintf("switchboard: agent %" PRId64, agent_id);
	if (git_worktree_lock(wt, reason) < 0)
		log_warnx("worktree: cannot lock %s: %s", wtname,
		    git_error_last() ? git_error_last()->message : "?");
	free(reason);

	log_info("worktree: agent %" PRId64 " on %s at %s", agent_id, name,
	    path);
	*out_branch = name;
	*out_path = path;
	name = path = NULL;
	rc = 0;
out:
	free(name);
	free(path);
	free(dir);
	git_worktree_free(wt);
	git_reference_free(branch);
	git_commit_free(base);
	git_repository_free(repo);
	return rc;
}

static int
lookup_agent(git_repository **repo, git_worktree **wt, const char *repo_path,
    int64_t agent_id, char **cause)
{
	char	 wtname[32];

	*wt = NULL;
	if (open_repo(repo, repo_path, cause) < 0)
		return -1;
	snprintf(wtname, sizeof wtname, WT_PREFIX "%" PRId64, agent_id);
	if (git_worktree_lookup(wt, *repo, wtname) < 0) {
		gfail(cause, "no worktree %s in %s", wtname, repo_path);
		git_repository_free(*repo);
		*repo = NULL;
		return -1;
	}
	return 0;
}

int
worktree_unlock(const char *repo_path, int64_t agent_id, char **cause)
{
	git_repository	*repo;
	git_worktree	*wt;
	int		 rc = 0;

	if (lookup_agent(&repo, &wt, repo_path, agent_id, cause) < 0)
		return -1;
	/* 1 = was not locked: already unlocked is what the caller wants. */
	if (git_worktree_unlock(wt) < 0)
		rc = gfail(cause, "cannot unlock %s", git_worktree_name(wt));
	git_worktree_free(wt);
	git_repository_free(repo);
	return rc;
}

int
worktree_remove(const char *repo_path, int64_t agent_id, char **cause)
{
	git_repository	*repo;
	git_worktree	*wt;
	char		*path;
	struct stat	 sb;
	int		 rc;

	if (lookup_agent(&repo, &wt, repo_path, agent_id, cause) < 0)
		return -1;
	path = xstrdup(git_worktree_path(wt));
	rc = prune(wt, GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_LOCKED |
	    GIT_WORKTREE_PRUNE_WORKING_TREE, cause);
	/*
	 * libgit2 removes the directory only when its .git file is still
	 * there; an agent that deleted it leaves the directory behind.  We do
	 * not rm -rf a path read from metadata the agent could have edited.
	 */
	if (rc == 0 && lstat(path, &sb) == 0)
		rc = fail(cause, "worktree metadata pruned but %s remains "
		    "(its .git file was gone)", path);
	if (rc == 0)
		log_info("worktree: removed %s", path);
	free(path);
	git_worktree_free(wt);
	git_repository_free(repo);
	return rc;
}

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
	if (open_repo(&repo, path, cause) < 0)
		return -1;
	error = git_repository_head(&head, repo);
	if (error == GIT_EUNBORNBRANCH)
		head = NULL;
	else if (error < 0) {
		gfail(cause, "no HEAD in %s", path);
		goto out;
	} else if (!git_reference_is_branch(head)) {
		fail(cause, "HEAD is detached in %s; not committing", path);
		goto out;
	} else if (git_reference_peel((git_object **)&parent, head,
	    GIT_OBJECT_COMMIT) < 0) {
		gfail(cause, "HEAD of %s", path);
		goto out;
	}

	/* add_all: new and modified, ignored files skipped; update_all: deletions. */
	if (git_repository_index(&index, repo) < 0 ||
	    git_index_add_all(index, NULL, GIT_INDEX_ADD_DEFAULT, NULL,
	    NULL) < 0 ||
	    git_index_update_all(index, NULL, NULL, NULL) < 0 ||
	    git_index_write(index) < 0 ||
	    git_index_write_tree(&tree_id, index) < 0) {
		gfail(cause, "cannot stage changes in %s", path);
		goto out;
	}
	if (parent != NULL && git_oid_equal(&tree_id,
	    git_commit_tree_id(parent))) {
		rc = 0;
		goto out;
	}

	if (git_signature_now(&sig, name, email) < 0) {
		gfail(cause, "bad commit identity");
		goto out;
	}
	if (message == NULL || *message == '\0')
		message = "switchboard: changes left uncommitted by the agent";
	if (git_message_prettify(&msg, message, 0, 0) < 0 ||
	    git_tree_lookup(&tree, repo, &tree_id) < 0 ||
	    git_commit_create(&id, repo, "HEAD", sig, sig, NULL, msg.ptr, tree,
	    parent != NULL ? 1 : 0, (const git_commit **)&parent) < 0) {
		gfail(cause, "cannot commit in %s", path);
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

	if (resolve_base(repo, base, &bc, cause) < 0)
		return -1;
	if (git_revparse_single(&tc, repo, tip != NULL ? tip : "HEAD") < 0 ||
	    git_object_peel((git_object **)&mbc, tc, GIT_OBJECT_COMMIT) < 0) {
		gfail(cause, "cannot resolve %s", tip != NULL ? tip : "HEAD");
		goto out;
	}
	if (tip_tree != NULL && git_commit_tree(tip_tree, mbc) < 0) {
		gfail(cause, "tree of %s", tip);
		goto out;
	}
	git_commit_free(mbc);
	mbc = NULL;
	if (git_merge_base(&mb, repo, git_commit_id(bc),
	    git_object_id(tc)) < 0) {
		gfail(cause, "no merge base of %s and %s", base,
		    tip != NULL ? tip : "HEAD");
		goto out;
	}
	if (git_commit_lookup(&mbc, repo, &mb) < 0 ||
	    git_commit_tree(base_tree, mbc) < 0) {
		gfail(cause, "tree of merge base");
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
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, branch, &old, &new, cause) < 0)
		goto out;
	/* find_similar with NULL options follows diff.renames, default on, as git. */
	if (git_diff_tree_to_tree(&diff, repo, old, new, NULL) < 0 ||
	    git_diff_find_similar(diff, NULL) < 0 ||
	    git_diff_get_stats(&stats, diff) < 0 ||
	    git_diff_stats_to_buf(&full, stats, GIT_DIFF_STATS_FULL,
	    WT_STAT_WIDTH) < 0) {
		gfail(cause, "cannot diff %s against %s", branch, base);
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
	if (open_repo(&repo, worktree_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, NULL, &old, NULL, cause) < 0)
		goto out;
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	opts.flags = GIT_DIFF_INCLUDE_UNTRACKED |
	    GIT_DIFF_RECURSE_UNTRACKED_DIRS;
	if (git_diff_tree_to_workdir_with_index(&diff, repo, old, &opts) < 0) {
		gfail(cause, "cannot diff %s against %s", worktree_path, base);
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

/* Newest mtime of the worktree directory and its index (commits touch it). */
static time_t
worktree_mtime(git_repository *repo, git_worktree *wt)
{
	struct stat	 sb;
	time_t		 t = 0;
	char		*index;

	if (stat(git_worktree_path(wt), &sb) == 0)
		t = sb.st_mtime;
	index = xasprintf("%s/worktrees/%s/index",
	    git_repository_commondir(repo), git_worktree_name(wt));
	if (stat(index, &sb) == 0 && sb.st_mtime > t)
		t = sb.st_mtime;
	free(index);
	return t;
}

static int
is_agent_name(const char *name)
{
	const char	*p;

	if (strncmp(name, WT_PREFIX, strlen(WT_PREFIX)) != 0)
		return 0;
	p = name + strlen(WT_PREFIX);
	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

int
worktree_cleanup_older(const char *repo_path, const char *state_dir,
    int64_t retention_s, int *removed, char **cause)
{
	git_repository	*repo = NULL;
	git_worktree	*wt;
	git_strarray	 names = { 0 };
	char		*dir = NULL, *prefix = NULL;
	const char	*path;
	time_t		 now;
	size_t		 i;
	int		 count = 0, rc = -1;

	if (removed != NULL)
		*removed = 0;
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	/* No worktrees dir: nothing of ours can be valid, nothing to match. */
	if ((dir = worktrees_dir(state_dir, 0, NULL)) == NULL) {
		rc = 0;
		goto out;
	}
	prefix = xasprintf("%s/", dir);
	if (git_worktree_list(&names, repo) < 0) {
		gfail(cause, "cannot list worktrees of %s", repo_path);
		goto out;
	}
	now = time(NULL);
	for (i = 0; i < names.count; i++) {
		if (!is_agent_name(names.strings[i]) ||
		    git_worktree_lookup(&wt, repo, names.strings[i]) < 0)
			continue;
		/* Another daemon's state dir may share this repository. */
		path = git_worktree_path(wt);
		if (strncmp(path, prefix, strlen(prefix)) != 0) {
			git_worktree_free(wt);
			continue;
		}
		if (git_worktree_validate(wt) != 0) {
			/* Directory gone: only metadata is left to drop. */
			if (prune(wt, GIT_WORKTREE_PRUNE_LOCKED, NULL) == 0) {
				log_info("worktree: pruned stale %s",
				    names.strings[i]);
				count++;
			}
		} else if (git_worktree_is_locked(NULL, wt) == 0 &&
		    now - worktree_mtime(repo, wt) > retention_s) {
			if (prune(wt, GIT_WORKTREE_PRUNE_VALID |
			    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL) == 0) {
				log_info("worktree: removed old %s (%s)",
				    names.strings[i], path);
				count++;
			} else
				log_warnx("worktree: cannot remove %s: %s",
				    path, git_error_last() ?
				    git_error_last()->message : "?");
		}
		git_worktree_free(wt);
	}
	rc = 0;
out:
	if (removed != NULL)
		*removed = count;
	git_strarray_dispose(&names);
	free(prefix);
	free(dir);
	git_repository_free(repo);
	return rc;
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
	if (open_repo(&repo, repo_path, cause) < 0)
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
		gfail(cause, "cannot diff %s against %s", branch, base);
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
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (merge_base_tree(repo, base, branch, &old, &new, cause) < 0)
		goto out;
	if (git_diff_tree_to_tree(&diff, repo, old, new, NULL) < 0) {
		gfail(cause, "cannot diff %s against %s", branch, base);
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

static int
tip_of(git_repository *repo, const char *branch, git_commit **out,
    char **cause)
{
	git_reference	*ref = NULL;
	int		 error;

	if (git_branch_lookup(&ref, repo, branch, GIT_BRANCH_LOCAL) < 0)
		return gfail(cause, "no branch %s", branch);
	error = git_reference_peel((git_object **)out, ref, GIT_OBJECT_COMMIT);
	git_reference_free(ref);
	if (error < 0)
		return gfail(cause, "branch %s is not a commit", branch);
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
	if (open_repo(&repo, repo_path, cause) < 0)
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
	if (open_repo(&repo, repo_path, cause) < 0)
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
		gfail(cause, "cannot merge %s into %s", branch, base);
		goto out;
	}
	if (git_index_has_conflicts(idx)) {
		if (git_index_conflict_iterator_new(&it, idx) < 0) {
			gfail(cause, "conflicts");
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
		gfail(cause, "cannot write the merged tree");
		goto out;
	}
	parents[0] = bc;
	parents[1] = tc;
	if (git_commit_create(&merged, repo, NULL, sig, sig, NULL, message,
	    tree, 2, parents) < 0) {
		gfail(cause, "cannot create the merge commit");
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
	git_repository	*repo = NULL;
	git_worktree	*wt = NULL;
	git_reference	*ref = NULL;
	char		 name[64], bname[64];
	int		 rc = 0;

	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	snprintf(name, sizeof name, SCRATCH_PREFIX "%" PRId64, merge_id);
	snprintf(bname, sizeof bname, SCRATCH_BRANCH "%" PRId64, merge_id);
	if (git_worktree_lookup(&wt, repo, name) == 0) {
		rc = prune(wt, GIT_WORKTREE_PRUNE_VALID |
		    GIT_WORKTREE_PRUNE_LOCKED | GIT_WORKTREE_PRUNE_WORKING_TREE,
		    cause);
		git_worktree_free(wt);
	}
	/*
	 * git_reference_delete, not git_branch_delete: a scratch branch has
	 * no config section, and removing one goes through libgit2 1.5's
	 * regex matching, which leaks its match data on every non-match.
	 */
	if (rc == 0 && git_branch_lookup(&ref, repo, bname,
	    GIT_BRANCH_LOCAL) == 0) {
		if (git_reference_delete(ref) < 0)
			rc = gfail(cause, "cannot delete %s", bname);
		git_reference_free(ref);
	}
	git_repository_free(repo);
	return rc;
}

int
worktree_scratch_add(const char *repo_path, const char *state_dir,
    int64_t merge_id, const char *commit_hex, char **out_path, char **cause)
{
	git_worktree_add_options opts;
	git_repository	*repo = NULL;
	git_commit	*c = NULL;
	git_reference	*ref = NULL;
	git_worktree	*wt = NULL;
	git_oid		 oid;
	char		 name[64], bname[64], *dir = NULL, *path = NULL;
	int		 error, rc = -1;

	*out_path = NULL;
	/* What an interrupted attempt left goes first. */
	if (worktree_scratch_remove(repo_path, merge_id, cause) < 0)
		return -1;
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	snprintf(name, sizeof name, SCRATCH_PREFIX "%" PRId64, merge_id);
	snprintf(bname, sizeof bname, SCRATCH_BRANCH "%" PRId64, merge_id);
	if (git_oid_fromstr(&oid, commit_hex) < 0 ||
	    git_commit_lookup(&c, repo, &oid) < 0) {
		gfail(cause, "no commit %s", commit_hex);
		goto out;
	}
	if ((dir = worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/merge-%" PRId64, dir, merge_id);
	if (git_branch_create(&ref, repo, bname, c, 1) < 0) {
		gfail(cause, "cannot create %s", bname);
		goto out;
	}
	git_worktree_add_options_init(&opts, GIT_WORKTREE_ADD_OPTIONS_VERSION);
	opts.ref = ref;
	pthread_mutex_lock(&add_lock);
	error = git_worktree_add(&wt, repo, name, path, &opts);
	pthread_mutex_unlock(&add_lock);
	if (error < 0) {
		gfail(cause, "cannot add scratch worktree at %s", path);
		goto out;
	}
	*out_path = path;
	path = NULL;
	rc = 0;
out:
	free(path);
	free(dir);
	git_worktree_free(wt);
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
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (git_oid_fromstr(&expect, expect_hex) < 0 ||
	    git_oid_fromstr(&want, new_hex) < 0) {
		fail(cause, "bad object id");
		goto out;
	}
	refname = xasprintf("refs/heads/%s", base);
	if (git_reference_lookup(&ref, repo, refname) < 0) {
		gfail(cause, "no branch %s", base);
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
		gfail(cause, "cannot move %s", base);
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
			gfail(warning, "%s moved, but the checkout in %s was not"
			    " updated (local changes?)", base, repo_path);
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

/*
 * Directories state_dir/worktrees/N that the store does not know, after the
 * worktrees git lists were dealt with: half made (a crash in the middle of
 * worktree_add, with or without its .git file), so removed.  The path is
 * ours (state dir + an integer), never read from metadata.
 */
static void
reconcile_dirs(const char *dir, worktree_known_fn known, void *arg)
{
	DIR		*d;
	struct dirent	*e;
	char		*path;
	const char	*p;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		for (p = e->d_name; *p >= '0' && *p <= '9'; p++)
			;
		if (*p != '\0' || p == e->d_name)
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (known(strtoll(e->d_name, NULL, 10), path, NULL, arg) ==
		    WORKTREE_UNKNOWN) {
			if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
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

	if (git_branch_lookup(&b, repo, base, GIT_BRANCH_LOCAL) < 0 ||
	    (btip = git_reference_target(b)) == NULL ||
	    git_branch_iterator_new(&it, repo, GIT_BRANCH_LOCAL) < 0) {
		git_reference_free(b);
		return;
	}
	while (git_branch_next(&ref, &type, it) == 0) {
		name = git_reference_shorthand(ref);
		tip = git_reference_target(ref);
		if (strncmp(name, "sb/", 3) == 0 && name[3] >= '0' &&
		    name[3] <= '9' && tip != NULL &&
		    git_branch_is_checked_out(ref) == 0 &&
		    (git_oid_equal(tip, btip) ||
		    git_graph_descendant_of(repo, btip, tip) == 1) &&
		    known(strtoll(name + 3, NULL, 10), NULL, name, arg) ==
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

	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if ((dir = worktrees_dir(state_dir, 0, NULL)) == NULL) {
		rc = 0;
		goto out;
	}
	prefix = xasprintf("%s/", dir);
	if (git_worktree_list(&names, repo) < 0) {
		gfail(cause, "cannot list worktrees of %s", repo_path);
		goto out;
	}
	for (i = 0; i < names.count; i++) {
		if (!is_agent_name(names.strings[i]) ||
		    git_worktree_lookup(&wt, repo, names.strings[i]) < 0)
			continue;
		path = git_worktree_path(wt);
		/* Another daemon's state dir may share this repository. */
		if (strncmp(path, prefix, strlen(prefix)) != 0 ||
		    git_worktree_validate(wt) != 0) {
			git_worktree_free(wt);
			continue;
		}
		id = strtoll(names.strings[i] + strlen(WT_PREFIX), NULL, 10);
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
			if (prune(wt, GIT_WORKTREE_PRUNE_VALID |
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
	reconcile_dirs(dir, known, arg);
	reconcile_branches(repo, base, known, arg);
	rc = 0;
out:
	git_strarray_dispose(&names);
	free(prefix);
	free(dir);
	git_repository_free(repo);
	return rc;
}

/* ---- an agent's worktree again, from its branch (h-followups) ------------- */

int
worktree_add_branch(const char *repo_path, const char *state_dir,
    int64_t agent_id, const char *branch_name, char **out_path, char **cause)
{
	git_worktree_add_options opts;
	git_repository	*repo = NULL;
	git_reference	*branch = NULL;
	git_commit	*tip = NULL;
	git_worktree	*wt = NULL;
	char		 wtname[32], *reason, *dir = NULL, *path = NULL;
	int		 error, rc = -1;
	struct stat	 sb;

	*out_path = NULL;
	if (agent_id < 0)
		return fail(cause, "bad agent id %" PRId64, agent_id);
	if (open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (git_branch_lookup(&branch, repo, branch_name, GIT_BRANCH_LOCAL) < 0) {
		gfail(cause, "branch %s is gone", branch_name);
		goto out;
	}
	if (git_reference_peel((git_object **)&tip, branch, GIT_OBJECT_COMMIT)
	    < 0) {
		gfail(cause, "branch %s has no commit", branch_name);
		goto out;
	}
	if ((dir = worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/%" PRId64, dir, agent_id);
	snprintf(wtname, sizeof wtname, WT_PREFIX "%" PRId64, agent_id);
	/* As in worktree_add: stale metadata goes, a live worktree stays. */
	if (git_worktree_lookup(&wt, repo, wtname) == 0) {
		if (git_worktree_validate(wt) == 0) {
			fail(cause, "agent %" PRId64 " already has worktree "
			    "%s at %s", agent_id, wtname, git_worktree_path(wt));
			goto out;
		}
		if (prune(wt, GIT_WORKTREE_PRUNE_LOCKED, cause) < 0)
			goto out;
		git_worktree_free(wt);
		wt = NULL;
	}
	if (lstat(path, &sb) == 0) {
		fail(cause, "worktree directory %s already exists", path);
		goto out;
	}
	git_worktree_add_options_init(&opts, GIT_WORKTREE_ADD_OPTIONS_VERSION);
	opts.ref = branch;	/* checks the branch out, commits and all */
	opts.checkout_options.disable_filters = !filters_matter(repo, tip);
	pthread_mutex_lock(&add_lock);
	error = git_worktree_add(&wt, repo, wtname, path, &opts);
	pthread_mutex_unlock(&add_lock);
	if (error < 0) {
		gfail(cause, "cannot add worktree %s at %s", wtname, path);
		if (git_worktree_lookup(&wt, repo, wtname) == 0)
			prune(wt, GIT_WORKTREE_PRUNE_VALID |
			    GIT_WORKTREE_PRUNE_LOCKED |
			    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL);
		goto out;	/* the branch is the agent's work: kept */
	}
	reason = xasprintf("switchboard: agent %" PRId64, agent_id);
	if (git_worktree_lock(wt, reason) < 0)
		log_warnx("worktree: cannot lock %s: %s", wtname,
		    git_error_last() ? git_error_last()->message : "?");
	free(reason);
	log_info("worktree: agent %" PRId64 " back on %s at %s", agent_id,
	    branch_name, path);
	*out_path = path;
	path = NULL;
	rc = 0;
out:
	free(path);
	free(dir);
	git_worktree_free(wt);
	git_commit_free(tip);
	git_reference_free(branch);
	git_repository_free(repo);
	return rc;
}
