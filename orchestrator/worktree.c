#include "orchestrator/worktree.h"
#include "orchestrator/worktree-int.h"
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

#define WT_SUFFIX_MAX	99		/* "-2" .. "-99" before giving up */

static int	git_ready;
static char	instance[WORKTREE_INSTANCE_MAX + 1];	/* "" = none */

void
worktree_git_init(void)
{
	if (git_ready)
		return;
	git_libgit2_init();
	/*
	 * libgit2 hashes every object it reads again to check its id; git
	 * does not (fsck does).  It was a quarter of a checkout's CPU
	 * (callgrind of bench/worktree -o: git_odb_hash), for a check git
	 * itself leaves to fsck and packs' own CRCs and index checksums.
	 */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
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
int
wt_gfail(char **cause, const char *fmt, ...)
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
int
wt_fail(char **cause, const char *fmt, ...)
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

int
wt_open_repo(git_repository **repo, const char *path, char **cause)
{
	worktree_git_init();
	if (git_repository_open_ext(repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH,
	    NULL) < 0)
		return wt_gfail(cause, "cannot open repository %s", path);
	return 0;
}

/*
 * The commit work starts from: local branch base, else HEAD.  One rule for
 * worktree_add and worktree_diffstat so a fallback at creation is also the
 * base the result is measured against.
 */
int
wt_resolve_base(git_repository *repo, const char *base, git_commit **out,
    char **cause)
{
	git_reference	*ref = NULL;
	int		 error;

	if (base != NULL && *base != '\0') {
		error = git_branch_lookup(&ref, repo, base, GIT_BRANCH_LOCAL);
		if (error != 0 && error != GIT_ENOTFOUND &&
		    error != GIT_EINVALIDSPEC)
			return wt_gfail(cause, "base branch %s", base);
		if (error != 0)
			log_warnx("worktree: base branch %s not found in %s, "
			    "using HEAD", base, git_repository_commondir(repo));
	}
	if (ref == NULL && git_repository_head(&ref, repo) < 0)
		return wt_gfail(cause, "no base branch and no HEAD in %s",
		    git_repository_commondir(repo));
	error = git_reference_peel((git_object **)out, ref, GIT_OBJECT_COMMIT);
	git_reference_free(ref);
	if (error < 0)
		return wt_gfail(cause, "base %s is not a commit",
		    base != NULL ? base : "HEAD");
	return 0;
}

/* Absolute state_dir/worktrees, created if needed; caller frees. */
char *
wt_worktrees_dir(const char *state_dir, int create, char **cause)
{
	char	*dir, *abs;

	dir = xasprintf("%s/worktrees", state_dir);
	if (create && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		wt_fail(cause, "mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	if ((abs = realpath(dir, NULL)) == NULL)
		wt_fail(cause, "%s: %s", dir, strerror(errno));
	free(dir);
	return abs;
}

int
wt_prune(git_worktree *wt, uint32_t flags, char **cause)
{
	git_worktree_prune_options	 opts;

	git_worktree_prune_options_init(&opts,
	    GIT_WORKTREE_PRUNE_OPTIONS_VERSION);
	opts.flags = flags;
	if (git_worktree_prune(wt, &opts) < 0)
		return wt_gfail(cause, "cannot prune worktree %s",
		    git_worktree_name(wt));
	return 0;
}

/*
 * A worktree of ours that is nobody's agent (a merge's scratch, a warm one)
 * and its branch, by name, whatever state they are in: gone, or -1.
 * git_reference_delete, not git_branch_delete: such a branch has no config
 * section, and removing one goes through libgit2 1.5's regex matching,
 * which leaks its match data on every non-match.
 */
int
wt_remove_named(const char *repo_path, const char *name, const char *branch,
    char **cause)
{
	git_repository	*repo = NULL;
	git_worktree	*wt = NULL;
	git_reference	*ref = NULL;
	int		 rc = 0;

	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (git_worktree_lookup(&wt, repo, name) == 0) {
		rc = wt_prune(wt, GIT_WORKTREE_PRUNE_VALID |
		    GIT_WORKTREE_PRUNE_LOCKED | GIT_WORKTREE_PRUNE_WORKING_TREE,
		    cause);
		git_worktree_free(wt);
	}
	if (rc == 0 && git_branch_lookup(&ref, repo, branch,
	    GIT_BRANCH_LOCAL) == 0) {
		if (git_reference_delete(ref) < 0)
			rc = wt_gfail(cause, "cannot delete %s", branch);
		git_reference_free(ref);
	}
	git_repository_free(repo);
	return rc;
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
int
wt_filters_matter(git_repository *repo, git_commit *base)
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

/*
 * Agents start on the threadpool in parallel, and two adds in one
 * repository race: both create .git/worktrees ("directory exists"), and one
 * sees the other's half-made worktree and refuses its branch ("reference is
 * already checked out").  One add at a time.
 */
static pthread_mutex_t	 add_lock = PTHREAD_MUTEX_INITIALIZER;

void
wt_add_lock(void)
{
	pthread_mutex_lock(&add_lock);
}

void
wt_add_unlock(void)
{
	pthread_mutex_unlock(&add_lock);
}

int
wt_add_precheck(git_repository *repo, const char *name, const char *path,
    const char *owner, char **cause)
{
	git_worktree	*wt = NULL;
	struct stat	 sb;
	int		 error;

	/*
	 * Metadata left from an earlier life whose directory is gone would
	 * make git_worktree_add fail on its exclusive mkdir; a live one is a
	 * real conflict (two agents with one id) and is not touched.
	 */
	if (git_worktree_lookup(&wt, repo, name) == 0) {
		if (git_worktree_validate(wt) == 0) {
			wt_fail(cause, "%s already has worktree %s at %s",
			    owner, name, git_worktree_path(wt));
			git_worktree_free(wt);
			return -1;
		}
		log_info("worktree: pruning stale %s (%s)", name,
		    git_worktree_path(wt));
		error = wt_prune(wt, GIT_WORKTREE_PRUNE_LOCKED, cause);
		git_worktree_free(wt);
		wt = NULL;
		if (error < 0)
			return -1;
	}
	/* Checked here so a failed add never leaves a half-made worktree. */
	if (lstat(path, &sb) == 0)
		return wt_fail(cause, "worktree directory %s already exists",
		    path);
	return 0;
}

int
wt_add_checkout(git_repository *repo, const char *name, const char *path,
    git_reference *ref, git_commit *tip, const char *owner, int flags,
    char **cause)
{
	git_worktree_add_options opts;
	git_worktree	*wt = NULL;
	char		*reason;
	int		 error, fast;

	if (wt_add_precheck(repo, name, path, owner, cause) < 0)
		return -1;
	git_worktree_add_options_init(&opts, GIT_WORKTREE_ADD_OPTIONS_VERSION);
	opts.ref = ref;
	/* Our own first checkout where it is exact (worktree-checkout.c). */
	if ((fast = wt_fast_checkout_ok(repo, tip)))
		opts.checkout_options.checkout_strategy = GIT_CHECKOUT_NONE;
	else
		opts.checkout_options.disable_filters =
		    !wt_filters_matter(repo, tip);
	pthread_mutex_lock(&add_lock);
	error = git_worktree_add(&wt, repo, name, path, &opts);
	pthread_mutex_unlock(&add_lock);
	if (error < 0)
		wt_gfail(cause, "cannot add worktree %s at %s", name, path);
	else if (fast && (error = wt_fast_checkout(repo, path,
	    (flags & WT_ADD_WARM) != 0, cause)) == WT_EABORTED) {
		/* Unfinished (not locked): the next start's sweep takes it. */
		git_worktree_free(wt);
		return WT_EABORTED;
	}
	if (error < 0) {
		git_worktree_free(wt);
		wt = NULL;
		/* Our precondition checks make anything named so ours. */
		if (git_worktree_lookup(&wt, repo, name) == 0) {
			wt_prune(wt, GIT_WORKTREE_PRUNE_VALID |
			    GIT_WORKTREE_PRUNE_LOCKED |
			    GIT_WORKTREE_PRUNE_WORKING_TREE, NULL);
			git_worktree_free(wt);
		}
		return -1;
	}
	reason = xasprintf("switchboard: %s", owner);
	if ((flags & WT_ADD_LOCK) && git_worktree_lock(wt, reason) < 0)
		log_warnx("worktree: cannot lock %s: %s", name,
		    git_error_last() ? git_error_last()->message : "?");
	free(reason);
	git_worktree_free(wt);
	return 0;
}

int
worktree_set_instance(const char *name)
{
	const char	*p;
	size_t		 n;

	if (name == NULL)
		name = "";
	n = strlen(name);
	/*
	 * cluster.daemon_id's rule, so one name can serve both: 1-20 of
	 * a-z, 0-9 and '-', a letter first (a digit would read as an agent
	 * id, "sb/7-..."), no '-' last.
	 */
	if (n > WORKTREE_INSTANCE_MAX || (n > 0 && (name[0] < 'a' ||
	    name[0] > 'z' || name[n - 1] == '-')))
		return -1;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-'))
			return -1;
	snprintf(instance, sizeof instance, "%s", name);
	return 0;
}

const char *
worktree_instance(void)
{
	return instance;
}

char *
worktree_branch_name(int64_t agent_id, const char *slug)
{
	if (*instance != '\0')
		return xasprintf("sb/%s-%" PRId64 "-%s", instance, agent_id,
		    slug);
	return xasprintf("sb/%" PRId64 "-%s", agent_id, slug);
}

void
wt_agent_wtname(char *buf, size_t len, int64_t agent_id)
{
	if (*instance != '\0')
		snprintf(buf, len, WT_PREFIX "%s-%" PRId64, instance, agent_id);
	else
		snprintf(buf, len, WT_PREFIX "%" PRId64, agent_id);
}

/*
 * The agent id in s, which must be prefix, then this daemon's instance and
 * '-' if it has one, then digits, then end (end_ok NUL only) or '-'; -1 if
 * it is not one of ours.
 */
static int64_t
own_id(const char *s, const char *prefix, int dash_ok)
{
	size_t	 n = strlen(prefix), m = strlen(instance);
	const char *p;

	if (strncmp(s, prefix, n) != 0)
		return -1;
	s += n;
	if (m > 0) {
		if (strncmp(s, instance, m) != 0 || s[m] != '-')
			return -1;
		s += m + 1;
	}
	for (p = s; *p >= '0' && *p <= '9'; p++)
		;
	if (p == s || (*p != '\0' && !(dash_ok && *p == '-')))
		return -1;
	return strtoll(s, NULL, 10);
}

int64_t
wt_agent_of_wtname(const char *name)
{
	return own_id(name, WT_PREFIX, 0);
}

int64_t
wt_agent_of_branch(const char *name)
{
	return own_id(name, "sb/", 1);
}

/*
 * Agent agent_id's new branch at commit: worktree_branch_name() of the task's
 * slug, or with a suffix "-2", "-3", ... when that exists (an earlier life's
 * result is never moved).
 */
int
wt_agent_branch(git_repository *repo, int64_t agent_id, const char *task_text,
    git_commit *commit, git_reference **out, char **out_name, char **cause)
{
	git_reference	*branch = NULL;
	char		 slug[WORKTREE_SLUG_MAX + 1], *first, *name = NULL;
	int		 error, valid, i;

	*out = NULL;
	*out_name = NULL;
	worktree_slug(task_text, slug, sizeof slug);
	first = worktree_branch_name(agent_id, slug);
	for (i = 1; i <= WT_SUFFIX_MAX; i++) {
		free(name);
		if (i == 1)
			name = xstrdup(first);
		else
			name = xasprintf("%s-%d", first, i);
		if (git_branch_name_is_valid(&valid, name) < 0 || !valid) {
			wt_fail(cause, "invalid branch name %s", name);
			goto fail;
		}
		error = git_branch_create(&branch, repo, name, commit, 0);
		if (error == 0)
			break;
		if (error != GIT_EEXISTS) {
			wt_gfail(cause, "cannot create branch %s", name);
			goto fail;
		}
		log_info("worktree: branch %s exists, keeping it", name);
	}
	if (branch == NULL) {
		wt_fail(cause, "branches %s-2..%d all exist", first,
		    WT_SUFFIX_MAX);
		goto fail;
	}
	free(first);
	*out = branch;
	*out_name = name;
	return 0;
fail:
	free(first);
	free(name);
	return -1;
}

int
worktree_add(const char *repo_path, const char *base_branch,
    const char *state_dir, int64_t agent_id, const char *task_text,
    char **out_branch, char **out_path, char **cause)
{
	git_repository	*repo = NULL;
	git_commit	*base = NULL;
	git_reference	*branch = NULL;
	char		 wtname[64], *owner;
	char		*name = NULL, *dir = NULL, *path = NULL;
	int		 error, rc = -1;

	*out_branch = *out_path = NULL;
	if (agent_id < 0)
		return wt_fail(cause, "bad agent id %" PRId64, agent_id);
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (wt_resolve_base(repo, base_branch, &base, cause) < 0)
		goto out;
	if ((dir = wt_worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/%" PRId64, dir, agent_id);
	wt_agent_wtname(wtname, sizeof wtname, agent_id);

	if (wt_agent_branch(repo, agent_id, task_text, base, &branch, &name,
	    cause) < 0)
		goto out;

	owner = xasprintf("agent %" PRId64, agent_id);
	error = wt_add_checkout(repo, wtname, path, branch, base, owner,
	    WT_ADD_LOCK, cause);
	free(owner);
	if (error < 0) {
		if (git_branch_delete(branch) < 0)
			log_warnx("worktree: cannot delete branch %s", name);
		goto out;
	}
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
	git_reference_free(branch);
	git_commit_free(base);
	git_repository_free(repo);
	return rc;
}

static int
lookup_agent(git_repository **repo, git_worktree **wt, const char *repo_path,
    int64_t agent_id, char **cause)
{
	char	 wtname[64];

	*wt = NULL;
	if (wt_open_repo(repo, repo_path, cause) < 0)
		return -1;
	wt_agent_wtname(wtname, sizeof wtname, agent_id);
	if (git_worktree_lookup(wt, *repo, wtname) < 0) {
		wt_gfail(cause, "no worktree %s in %s", wtname, repo_path);
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
		rc = wt_gfail(cause, "cannot unlock %s", git_worktree_name(wt));
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
	rc = wt_prune(wt, GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_LOCKED |
	    GIT_WORKTREE_PRUNE_WORKING_TREE, cause);
	/*
	 * libgit2 removes the directory only when its .git file is still
	 * there; an agent that deleted it leaves the directory behind.  We do
	 * not rm -rf a path read from metadata the agent could have edited.
	 */
	if (rc == 0 && lstat(path, &sb) == 0)
		rc = wt_fail(cause, "worktree metadata pruned but %s remains "
		    "(its .git file was gone)", path);
	if (rc == 0)
		log_info("worktree: removed %s", path);
	free(path);
	git_worktree_free(wt);
	git_repository_free(repo);
	return rc;
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

int
wt_is_agent_name(const char *name)
{
	return wt_agent_of_wtname(name) >= 0;
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
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	/* No worktrees dir: nothing of ours can be valid, nothing to match. */
	if ((dir = wt_worktrees_dir(state_dir, 0, NULL)) == NULL) {
		rc = 0;
		goto out;
	}
	prefix = xasprintf("%s/", dir);
	if (git_worktree_list(&names, repo) < 0) {
		wt_gfail(cause, "cannot list worktrees of %s", repo_path);
		goto out;
	}
	now = time(NULL);
	for (i = 0; i < names.count; i++) {
		if (!wt_is_agent_name(names.strings[i]) ||
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
			if (wt_prune(wt, GIT_WORKTREE_PRUNE_LOCKED,
			    NULL) == 0) {
				log_info("worktree: pruned stale %s",
				    names.strings[i]);
				count++;
			}
		} else if (git_worktree_is_locked(NULL, wt) == 0 &&
		    now - worktree_mtime(repo, wt) > retention_s) {
			if (wt_prune(wt, GIT_WORKTREE_PRUNE_VALID |
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

/* ---- an agent's worktree again, from its branch (h-followups) ------------- */

int
worktree_add_branch(const char *repo_path, const char *state_dir,
    int64_t agent_id, const char *branch_name, char **out_path, char **cause)
{
	git_repository	*repo = NULL;
	git_reference	*branch = NULL;
	git_commit	*tip = NULL;
	char		 wtname[64], *owner, *dir = NULL, *path = NULL;
	int		 error, rc = -1;

	*out_path = NULL;
	if (agent_id < 0)
		return wt_fail(cause, "bad agent id %" PRId64, agent_id);
	if (wt_open_repo(&repo, repo_path, cause) < 0)
		return -1;
	if (git_branch_lookup(&branch, repo, branch_name, GIT_BRANCH_LOCAL) < 0) {
		wt_gfail(cause, "branch %s is gone", branch_name);
		goto out;
	}
	if (git_reference_peel((git_object **)&tip, branch, GIT_OBJECT_COMMIT)
	    < 0) {
		wt_gfail(cause, "branch %s has no commit", branch_name);
		goto out;
	}
	if ((dir = wt_worktrees_dir(state_dir, 1, cause)) == NULL)
		goto out;
	path = xasprintf("%s/%" PRId64, dir, agent_id);
	wt_agent_wtname(wtname, sizeof wtname, agent_id);
	/* Checks the branch out, commits and all; the branch is kept. */
	owner = xasprintf("agent %" PRId64, agent_id);
	error = wt_add_checkout(repo, wtname, path, branch, tip, owner,
	    WT_ADD_LOCK, cause);
	free(owner);
	if (error < 0)
		goto out;
	log_info("worktree: agent %" PRId64 " back on %s at %s", agent_id,
	    branch_name, path);
	*out_path = path;
	path = NULL;
	rc = 0;
out:
	free(path);
	free(dir);
	git_commit_free(tip);
	git_reference_free(branch);
	git_repository_free(repo);
	return rc;
}
