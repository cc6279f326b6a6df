#include "orchestrator/worktree.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <git2.h>

#include <ftw.h>
#include <pthread.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char	 tmp[PATH_MAX];		/* realpath of the test's temp dir */
static char	 repo_path[PATH_MAX + 16];
static char	 state_dir[PATH_MAX + 16];
static char	*cause;

static void
write_file(const char *dir, const char *rel, const char *text)
{
	char	*p = xasprintf("%s/%s", dir, rel);
	FILE	*f = fopen(p, "w");

	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	free(p);
}

static char *
read_file(const char *dir, const char *rel)
{
	char	*p = xasprintf("%s/%s", dir, rel), buf[4096];
	FILE	*f = fopen(p, "r");
	size_t	 n;

	free(p);
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(buf);
}

/* dir/rel in a static buffer: for one call's argument. */
static const char *
at(const char *dir, const char *rel)
{
	static char	 p[2 * PATH_MAX];

	snprintf(p, sizeof p, "%s/%s", dir, rel);
	return p;
}

static int
exists(const char *path)
{
	struct stat	 sb;

	return lstat(path, &sb) == 0;
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Commit the whole index of repo on HEAD (which may be unborn). */
static void
commit_all(git_repository *repo, const char *msg)
{
	git_index	*idx;
	git_oid		 tid, cid;
	git_tree	*tree;
	git_signature	*sig;
	git_reference	*head = NULL;
	git_commit	*parent = NULL;

	if (git_repository_index(&idx, repo) < 0 ||
	    git_index_add_all(idx, NULL, 0, NULL, NULL) < 0 ||
	    git_index_update_all(idx, NULL, NULL, NULL) < 0 ||
	    git_index_write(idx) < 0 || git_index_write_tree(&tid, idx) < 0 ||
	    git_tree_lookup(&tree, repo, &tid) < 0 ||
	    git_signature_now(&sig, "Fixture", "fixture@example.org") < 0)
		abort();
	if (git_repository_head(&head, repo) == 0)
		git_reference_peel((git_object **)&parent, head,
		    GIT_OBJECT_COMMIT);
	if (git_commit_create(&cid, repo, "HEAD", sig, sig, NULL, msg, tree,
	    parent ? 1 : 0, (const git_commit **)&parent) < 0)
		abort();
	git_commit_free(parent);
	git_reference_free(head);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(idx);
}

/*
 * A fresh repo on "main": a.txt (3 lines), b.txt (2 lines), c.txt, and a
 * .gitignore for *.log.
 */
static void
fixture(void)
{
	git_repository_init_options	 o;
	git_repository			*repo;
	char				 t[] = "/tmp/sb-wt-XXXXXX";

	if (mkdtemp(t) == NULL || realpath(t, tmp) == NULL)
		abort();
	snprintf(repo_path, sizeof repo_path, "%s/repo", tmp);
	snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
	mkdir(state_dir, 0700);
	git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	o.flags = GIT_REPOSITORY_INIT_MKPATH;
	o.initial_head = "main";
	if (git_repository_init_ext(&repo, repo_path, &o) < 0)
		abort();
	write_file(repo_path, "a.txt", "one\ntwo\nthree\n");
	write_file(repo_path, "b.txt", "bee\nbuzz\n");
	write_file(repo_path, "c.txt", "sea\n");
	write_file(repo_path, ".gitignore", "*.log\n");
	commit_all(repo, "initial\n");
	git_repository_free(repo);
	free(cause);
	cause = NULL;
}

static void
fixture_done(void)
{
	rm_rf(tmp);
	free(cause);
	cause = NULL;
}

static git_oid
ref_target(const char *repo, const char *refname)
{
	git_repository	*r;
	git_oid		 id;

	memset(&id, 0, sizeof id);
	if (git_repository_open(&r, repo) < 0)
		return id;
	git_reference_name_to_id(&id, r, refname);
	git_repository_free(r);
	return id;
}

static int
branch_exists(const char *name)
{
	git_repository	*r;
	git_reference	*ref;
	int		 ok;

	if (git_repository_open(&r, repo_path) < 0)
		return 0;
	ok = git_branch_lookup(&ref, r, name, GIT_BRANCH_LOCAL) == 0;
	if (ok)
		git_reference_free(ref);
	git_repository_free(r);
	return ok;
}

TEST(slug_keeps_only_lowercase_alnum_and_single_dashes)
{
	char	 s[WORKTREE_SLUG_MAX + 1];

	worktree_slug("Fix the Login page!!  (again)", s, sizeof s);
	CHECK_STR(s, "fix-the-login-page-again");
	worktree_slug("", s, sizeof s);
	CHECK_STR(s, "task");
	worktree_slug(NULL, s, sizeof s);
	CHECK_STR(s, "task");
	worktree_slug("--- ... ---", s, sizeof s);
	CHECK_STR(s, "task");
	worktree_slug("résumé ünïcode", s, sizeof s);
	CHECK_STR(s, "r-sum-n-code");
	/* Long text is cut at a word boundary, within the limit. */
	worktree_slug("implement the oauth login flow with github and google "
	    "providers", s, sizeof s);
	CHECK_STR(s, "implement-the-oauth-login-flow-with");
	worktree_slug("averyveryveryveryveryveryveryveryverylongword and more",
	    s, sizeof s);
	CHECK_INT(strlen(s), WORKTREE_SLUG_MAX);
	CHECK(s[WORKTREE_SLUG_MAX - 1] != '-');
}

TEST(add_creates_branch_and_checked_out_locked_worktree)
{
	git_repository	*wt;
	git_reference	*head;
	char		*branch = NULL, *path = NULL, *a, *want;
	int		 rc;

	fixture();
	rc = worktree_add(repo_path, "main", state_dir, 7,
	    "Fix the login page", &branch, &path, &cause);
	if (rc != 0)
		printf("cause: %s\n", cause);
	CHECK_INT(rc, 0);
	CHECK_STR(branch, "sb/7-fix-the-login-page");
	want = xasprintf("%s/worktrees/7", state_dir);
	CHECK_STR(path, want);
	free(want);
	CHECK(exists(path));
	a = read_file(path, "a.txt");
	CHECK_STR(a, "one\ntwo\nthree\n");
	free(a);
	CHECK(git_repository_open(&wt, path) == 0);
	CHECK(git_repository_head(&head, wt) == 0);
	CHECK_STR(git_reference_name(head), "refs/heads/sb/7-fix-the-login-page");
	git_reference_free(head);
	CHECK(git_repository_is_worktree(wt));
	git_repository_free(wt);
	/* Branch starts at main. */
	git_oid m = ref_target(repo_path, "refs/heads/main");
	git_oid b = ref_target(repo_path, "refs/heads/sb/7-fix-the-login-page");
	CHECK(git_oid_equal(&m, &b));
	/* Locked, so cleanup and `git worktree prune` leave it alone. */
	{
		git_repository	*r;
		git_worktree	*w;
		CHECK(git_repository_open(&r, repo_path) == 0);
		CHECK(git_worktree_lookup(&w, r, "sb-7") == 0);
		CHECK_INT(git_worktree_is_locked(NULL, w), 1);
		git_worktree_free(w);
		git_repository_free(r);
	}
	CHECK_INT(worktree_unlock(repo_path, 7, &cause), 0);
	free(branch);
	free(path);
	fixture_done();
}

TEST(commit_leftovers_stages_adds_mods_deletes_and_skips_ignored)
{
	git_repository	*r;
	git_commit	*c;
	git_oid		 id;
	git_tree	*tree;
	git_tree_entry	*e;
	git_status_list	*st;
	char		*branch, *path;
	int		 committed = -1;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 3, "edit", &branch,
	    &path, &cause) == 0);
	write_file(path, "new.txt", "fresh\n");
	write_file(path, "a.txt", "one\nTWO\nthree\n");
	CHECK(unlink(at(path, "b.txt")) == 0);
	write_file(path, "debug.log", "ignored\n");
	CHECK_INT(worktree_commit_leftovers(path, "Switch Board",
	    "sb@example.org", "agent 3: leftovers", &committed, &cause), 0);
	CHECK_INT(committed, 1);

	CHECK(git_repository_open(&r, path) == 0);
	CHECK(git_reference_name_to_id(&id, r, "refs/heads/sb/3-edit") == 0);
	CHECK(git_commit_lookup(&c, r, &id) == 0);
	CHECK_STR(git_commit_author(c)->name, "Switch Board");
	CHECK_STR(git_commit_author(c)->email, "sb@example.org");
	CHECK_STR(git_commit_message(c), "agent 3: leftovers\n");
	CHECK_INT(git_commit_parentcount(c), 1);
	CHECK(git_commit_tree(&tree, c) == 0);
	CHECK(git_tree_entry_bypath(&e, tree, "new.txt") == 0);
	git_tree_entry_free(e);
	CHECK(git_tree_entry_bypath(&e, tree, "b.txt") == GIT_ENOTFOUND);
	CHECK(git_tree_entry_bypath(&e, tree, "debug.log") == GIT_ENOTFOUND);
	git_tree_free(tree);
	git_commit_free(c);
	{
		git_status_options so;
		git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
		so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED;
		CHECK(git_status_list_new(&st, r, &so) == 0);
	}
	CHECK_INT(git_status_list_entrycount(st), 0);
	git_status_list_free(st);
	git_repository_free(r);

	committed = -1;
	CHECK_INT(worktree_commit_leftovers(path, "Switch Board",
	    "sb@example.org", NULL, &committed, &cause), 0);
	CHECK_INT(committed, 0);
	CHECK(git_oid_equal(&id, &(git_oid){ 0 }) == 0);
	{
		git_oid again = ref_target(repo_path, "refs/heads/sb/3-edit");
		CHECK(git_oid_equal(&id, &again));
	}
	free(branch);
	free(path);
	fixture_done();
}

TEST(commit_leftovers_refuses_detached_head_and_bad_identity)
{
	git_repository	*r;
	git_oid		 id;
	char		*branch, *path;
	int		 committed;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 4, "x", &branch,
	    &path, &cause) == 0);
	write_file(path, "new.txt", "fresh\n");
	CHECK_INT(worktree_commit_leftovers(path, "", "", NULL, &committed,
	    &cause), -1);
	CHECK(cause != NULL && strstr(cause, "identity") != NULL);
	free(cause);
	cause = NULL;
	CHECK(git_repository_open(&r, path) == 0);
	CHECK(git_reference_name_to_id(&id, r, "HEAD") == 0);
	CHECK(git_repository_set_head_detached(r, &id) == 0);
	git_repository_free(r);
	CHECK_INT(worktree_commit_leftovers(path, "A", "a@b", NULL, &committed,
	    &cause), -1);
	CHECK(cause != NULL && strstr(cause, "detached") != NULL);
	CHECK_INT(committed, 0);
	free(branch);
	free(path);
	fixture_done();
}

static void
commit_on_main(const char *rel, const char *text)
{
	git_repository	*r;

	write_file(repo_path, rel, text);
	if (git_repository_open(&r, repo_path) < 0)
		abort();
	commit_all(r, "main moves on\n");
	git_repository_free(r);
}

TEST(diffstat_counts_exactly_against_merge_base)
{
	struct worktree_stat	 st;
	char			*branch, *path;
	int			 committed;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 5, "stat", &branch,
	    &path, &cause) == 0);
	/* a: 1 line changed (+1 -1); b deleted (-2); new: +3. */
	write_file(path, "a.txt", "one\nTWO\nthree\n");
	CHECK(unlink(at(path, "b.txt")) == 0);
	write_file(path, "new.txt", "1\n2\n3\n");
	CHECK(worktree_commit_leftovers(path, "A", "a@b", "m", &committed,
	    &cause) == 0);
	/* main advancing after the fork must not count. */
	commit_on_main("c.txt", "sea\nmore\nlines\n");

	CHECK_INT(worktree_diffstat(repo_path, "main", branch, 10, &st,
	    &cause), 0);
	CHECK_INT(st.files, 3);
	CHECK_INT(st.insertions, 4);
	CHECK_INT(st.deletions, 3);
	CHECK(strstr(st.text, " a.txt ") != NULL);
	CHECK(strstr(st.text, "\n 3 files changed, 4 insertions(+), "
	    "3 deletions(-)") != NULL);
	CHECK(strstr(st.text, "create mode") == NULL);
	CHECK(st.text[strlen(st.text) - 1] != '\n');
	free(st.text);

	/* Bounded text; counts unchanged.  Works from the worktree too. */
	CHECK_INT(worktree_diffstat(path, "main", branch, 1, &st, &cause), 0);
	CHECK_INT(st.files, 3);
	CHECK(strstr(st.text, " a.txt ") != NULL);
	CHECK(strstr(st.text, "b.txt") == NULL);
	CHECK(strstr(st.text, "\n ... and 2 more files\n 3 files changed")
	    != NULL);
	free(st.text);

	CHECK_INT(worktree_diffstat(repo_path, "main", "main", 5, &st,
	    &cause), 0);
	CHECK_INT(st.files, 0);
	free(st.text);
	CHECK_INT(worktree_diffstat(repo_path, "main", "no-such-branch", 5,
	    &st, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "no-such-branch") != NULL);
	free(branch);
	free(path);
	fixture_done();
}

TEST(changed_files_lists_committed_and_uncommitted_bounded)
{
	char	*branch, *path, **files;
	size_t	 n, total;
	int	 committed;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 6, "files", &branch,
	    &path, &cause) == 0);
	CHECK_INT(worktree_changed_files(path, "main", 10, &files, &n, &total,
	    &cause), 0);
	CHECK_INT(total, 0);
	worktree_files_free(files, n);

	write_file(path, "a.txt", "changed\n");
	CHECK(worktree_commit_leftovers(path, "A", "a@b", "m", &committed,
	    &cause) == 0);
	CHECK(mkdir(at(path, "dir"), 0755) == 0);
	write_file(path, "dir/untracked.txt", "u\n");
	write_file(path, "c.txt", "edited, uncommitted\n");
	write_file(path, "x.log", "ignored\n");
	CHECK_INT(worktree_changed_files(path, "main", 10, &files, &n, &total,
	    &cause), 0);
	CHECK_INT(total, 3);
	CHECK_INT(n, 3);
	CHECK_STR(files[0], "a.txt");
	CHECK_STR(files[1], "c.txt");
	CHECK_STR(files[2], "dir/untracked.txt");
	worktree_files_free(files, n);
	CHECK_INT(worktree_changed_files(path, "main", 2, &files, &n, &total,
	    &cause), 0);
	CHECK_INT(total, 3);
	CHECK_INT(n, 2);
	worktree_files_free(files, n);
	free(branch);
	free(path);
	fixture_done();
}

TEST(remove_deletes_directory_and_metadata_keeps_branch)
{
	git_repository	*r;
	git_worktree	*w;
	char		*branch, *path;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 8, "gone soon",
	    &branch, &path, &cause) == 0);
	write_file(path, "scratch.txt", "x\n");
	CHECK_INT(worktree_remove(repo_path, 8, &cause), 0);
	CHECK(!exists(path));
	CHECK(branch_exists(branch));
	CHECK(git_repository_open(&r, repo_path) == 0);
	CHECK(git_worktree_lookup(&w, r, "sb-8") < 0);
	git_repository_free(r);
	CHECK_INT(worktree_remove(repo_path, 8, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "sb-8") != NULL);
	free(branch);
	free(path);
	fixture_done();
}

TEST(hostile_task_texts_stay_inside_sb_and_state_dir)
{
	static const char *texts[] = {
		"../../etc/passwd", "a..b", "@{-1}", "~^:?*[\\", "x.lock",
		"line one\nline two\r\n\t", "日本語のタスク", "-", "refs/heads/main",
		"/absolute/path", " HEAD ", NULL,
	};
	char	*big, *branch, *path, *want, *prefix;
	int	 valid, i, n;

	fixture();
	big = xmalloc(10 * 1024 + 1);
	for (i = 0; i < 10 * 1024; i++)
		big[i] = "ab./.. @{}\n"[i % 11];
	big[10 * 1024] = '\0';
	for (n = 0; n < (int)nitems(texts); n++) {
		const char *t = texts[n] != NULL ? texts[n] : big;	/* last */
		int64_t id = 100 + n;

		CHECK_INT(worktree_add(repo_path, "main", state_dir, id, t,
		    &branch, &path, &cause), 0);
		prefix = xasprintf("sb/%d-", (int)id);
		CHECK(strncmp(branch, prefix, strlen(prefix)) == 0);
		CHECK(strlen(branch) <= strlen(prefix) + WORKTREE_SLUG_MAX);
		CHECK(strstr(branch, "..") == NULL);
		CHECK(strchr(branch + 3, '/') == NULL);
		CHECK(branch[strlen(branch) - 1] != '-');
		CHECK(git_branch_name_is_valid(&valid, branch) == 0 && valid);
		want = xasprintf("%s/worktrees/%d", state_dir, (int)id);
		CHECK_STR(path, want);
		CHECK(exists(path));
		free(want);
		free(prefix);
		free(branch);
		free(path);
	}
	free(big);
	fixture_done();
}

TEST(existing_branch_gets_suffix_existing_worktree_is_refused)
{
	char	*b1, *p1, *b2, *p2, *b3, *p3;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 9, "again", &b1, &p1,
	    &cause) == 0);
	CHECK_STR(b1, "sb/9-again");
	/* Same id while its worktree is alive: refused, nothing created. */
	CHECK_INT(worktree_add(repo_path, "main", state_dir, 9, "again", &b2,
	    &p2, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "already has worktree") != NULL);
	CHECK(b2 == NULL && p2 == NULL);
	CHECK(!branch_exists("sb/9-again-2"));
	free(cause);
	cause = NULL;
	/* Its directory vanished (state dir wiped): stale metadata pruned,
	 * the old branch kept and a suffixed one made. */
	rm_rf(p1);
	CHECK_INT(worktree_add(repo_path, "main", state_dir, 9, "again", &b2,
	    &p2, &cause), 0);
	CHECK_STR(b2, "sb/9-again-2");
	CHECK(branch_exists("sb/9-again"));
	CHECK(exists(p2));
	/* A foreign directory in the way is refused and the branch undone. */
	CHECK_INT(worktree_remove(repo_path, 9, &cause), 0);
	mkdir(p2, 0700);
	CHECK_INT(worktree_add(repo_path, "main", state_dir, 9, "again", &b3,
	    &p3, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "already exists") != NULL);
	CHECK(!branch_exists("sb/9-again-3"));
	free(b1);
	free(p1);
	free(b2);
	free(p2);
	fixture_done();
}

TEST(missing_base_branch_falls_back_to_head)
{
	git_repository	*r;
	git_oid		 dev, tip;
	char		*branch, *path;

	fixture();
	/* HEAD on "dev", one commit ahead of main, so the fallback shows. */
	CHECK(git_repository_open(&r, repo_path) == 0);
	{
		git_reference	*h, *nb;
		git_commit	*c;
		CHECK(git_repository_head(&h, r) == 0);
		CHECK(git_reference_peel((git_object **)&c, h,
		    GIT_OBJECT_COMMIT) == 0);
		CHECK(git_branch_create(&nb, r, "dev", c, 0) == 0);
		git_reference_free(nb);
		git_commit_free(c);
		git_reference_free(h);
	}
	CHECK(git_repository_set_head(r, "refs/heads/dev") == 0);
	write_file(repo_path, "dev.txt", "dev\n");
	commit_all(r, "dev work\n");
	git_repository_free(r);
	dev = ref_target(repo_path, "refs/heads/dev");

	CHECK_INT(worktree_add(repo_path, "no-such-base", state_dir, 11,
	    "fallback", &branch, &path, &cause), 0);
	tip = ref_target(repo_path, "refs/heads/sb/11-fallback");
	CHECK(git_oid_equal(&dev, &tip));
	CHECK(exists(at(path, "dev.txt")));
	free(branch);
	free(path);
	fixture_done();
}

/*
 * worktree_add skips checkout filters when nothing could make them act; a
 * .gitattributes asking for CRLF must still get CRLF, as git would.
 */
TEST(add_applies_eol_attributes_when_repo_has_them)
{
	git_repository	*r;
	char		*branch, *path, *text;

	fixture();
	write_file(repo_path, ".gitattributes", "*.crlf text eol=crlf\n");
	write_file(repo_path, "x.crlf", "a\nb\n");
	CHECK(git_repository_open(&r, repo_path) == 0);
	commit_all(r, "attributes\n");
	git_repository_free(r);
	CHECK_INT(worktree_add(repo_path, "main", state_dir, 12, "eol",
	    &branch, &path, &cause), 0);
	text = read_file(path, "x.crlf");
	CHECK_STR(text, "a\r\nb\r\n");
	free(text);
	text = read_file(path, "a.txt");
	CHECK_STR(text, "one\ntwo\nthree\n");
	free(text);
	free(branch);
	free(path);
	fixture_done();
}

static void
age(const char *path, time_t secs_ago)
{
	struct timeval	 tv[2];

	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - secs_ago;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	utimes(path, tv);
}

TEST(cleanup_removes_old_unlocked_keeps_locked_fresh_and_branches)
{
	char	*b[4], *p[4], *idx;
	int	 i, removed = -1;

	fixture();
	for (i = 0; i < 4; i++)
		CHECK(worktree_add(repo_path, "main", state_dir, 20 + i,
		    "old", &b[i], &p[i], &cause) == 0);
	/* 20: old, unlocked → removed.  21: old but locked → kept.
	 * 22: unlocked but fresh → kept.  23: directory gone → pruned. */
	CHECK_INT(worktree_unlock(repo_path, 20, &cause), 0);
	CHECK_INT(worktree_unlock(repo_path, 22, &cause), 0);
	CHECK_INT(worktree_unlock(repo_path, 23, &cause), 0);
	for (i = 20; i <= 21; i++) {
		age(p[i - 20], 7200);
		idx = xasprintf("%s/.git/worktrees/sb-%d/index", repo_path, i);
		age(idx, 7200);
		free(idx);
	}
	rm_rf(p[3]);
	CHECK_INT(worktree_cleanup_older(repo_path, state_dir, 3600, &removed,
	    &cause), 0);
	CHECK_INT(removed, 2);
	CHECK(!exists(p[0]));
	CHECK(exists(p[1]));
	CHECK(exists(p[2]));
	for (i = 0; i < 4; i++)
		CHECK(branch_exists(b[i]));
	/* Nothing left to do: idempotent. */
	CHECK_INT(worktree_cleanup_older(repo_path, state_dir, 3600, &removed,
	    &cause), 0);
	CHECK_INT(removed, 0);
	for (i = 0; i < 4; i++) {
		free(b[i]);
		free(p[i]);
	}
	fixture_done();
}

TEST(add_branch_checks_out_the_existing_branch_with_its_commits)
{
	git_repository	*r;
	git_worktree	*w;
	char		*branch, *path, *again, *text;
	int		 committed = 0;

	fixture();
	CHECK(worktree_add(repo_path, "main", state_dir, 30, "keep",
	    &branch, &path, &cause) == 0);
	write_file(path, "work.txt", "earlier turn\n");
	CHECK_INT(worktree_commit_leftovers(path, "T", "t@example.org", "w",
	    &committed, &cause), 0);
	CHECK_INT(committed, 1);
	CHECK_INT(worktree_remove(repo_path, 30, &cause), 0);
	CHECK(!exists(path));
	CHECK_INT(worktree_add_branch(repo_path, state_dir, 30, branch, &again,
	    &cause), 0);
	CHECK(strcmp(again, path) == 0);
	text = read_file(again, "work.txt");
	CHECK(text != NULL && strcmp(text, "earlier turn\n") == 0);
	free(text);
	/* Locked like a new one: an agent is about to run in it. */
	CHECK(git_repository_open(&r, repo_path) == 0);
	CHECK(git_worktree_lookup(&w, r, "sb-30") == 0);
	CHECK(git_worktree_is_locked(NULL, w) > 0);
	git_worktree_free(w);
	git_repository_free(r);
	/* A live one is not replaced; a branch that is gone is an error. */
	CHECK_INT(worktree_add_branch(repo_path, state_dir, 30, branch, &text,
	    &cause), -1);
	CHECK(cause != NULL && strstr(cause, "already has") != NULL);
	free(cause);
	cause = NULL;
	CHECK_INT(worktree_add_branch(repo_path, state_dir, 31, "sb/31-nope",
	    &text, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "is gone") != NULL);
	free(cause);
	cause = NULL;
	CHECK(!exists(at(state_dir, "worktrees/31")));
	free(branch);
	free(path);
	free(again);
	fixture_done();
}

struct par_add {
	pthread_barrier_t	*go;
	int64_t			 id;
	int			 rc;
	char			*branch, *path, *cause;
};

static void *
par_add_run(void *arg)
{
	struct par_add	*p = arg;

	pthread_barrier_wait(p->go);
	p->rc = worktree_add(repo_path, "main", state_dir, p->id, "task",
	    &p->branch, &p->path, &p->cause);
	return NULL;
}

/* Agents start on the threadpool: the first worktrees of a repo in parallel. */
TEST(parallel_first_adds_in_a_fresh_repo_all_succeed)
{
	pthread_barrier_t	 go;
	pthread_t		 th[4];
	struct par_add		 p[4];
	int			 round, i, failed = 0;

	for (round = 0; round < 8; round++) {
		fixture();
		pthread_barrier_init(&go, NULL, 4);
		memset(p, 0, sizeof p);
		for (i = 0; i < 4; i++) {
			p[i].go = &go;
			p[i].id = i + 1;
			pthread_create(&th[i], NULL, par_add_run, &p[i]);
		}
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			if (p[i].rc != 0) {
				printf("# round %d agent %d: %s\n", round, i + 1,
				    p[i].cause);
				failed++;
			}
			free(p[i].branch);
			free(p[i].path);
			free(p[i].cause);
		}
		pthread_barrier_destroy(&go);
		fixture_done();
	}
	CHECK_INT(failed, 0);
}

/* Entries git status would print for the worktree at path (-1: error). */
static int
status_count(const char *path)
{
	git_repository	*r;
	git_status_list	*st;
	git_status_options o;
	int		 n;

	if (git_repository_open(&r, path) < 0)
		return -1;
	git_status_options_init(&o, GIT_STATUS_OPTIONS_VERSION);
	o.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED;
	if (git_status_list_new(&st, r, &o) < 0) {
		git_repository_free(r);
		return -1;
	}
	n = (int)git_status_list_entrycount(st);
	git_status_list_free(st);
	git_repository_free(r);
	return n;
}

static int
worktree_lock_is(const char *name, const char *want)
{
	git_repository	*r;
	git_worktree	*w;
	git_buf		 reason = GIT_BUF_INIT;
	int		 ok = 0;

	if (git_repository_open(&r, repo_path) < 0)
		return 0;
	if (git_worktree_lookup(&w, r, name) == 0) {
		ok = git_worktree_validate(w) == 0 &&
		    git_worktree_is_locked(&reason, w) > 0 &&
		    strcmp(reason.ptr, want) == 0;
		git_worktree_free(w);
	}
	git_buf_dispose(&reason);
	git_repository_free(r);
	return ok;
}

static int
worktree_known_to_git(const char *name)
{
	git_repository	*r;
	git_worktree	*w;
	int		 ok;

	if (git_repository_open(&r, repo_path) < 0)
		return 0;
	ok = git_worktree_lookup(&w, r, name) == 0;
	if (ok)
		git_worktree_free(w);
	git_repository_free(r);
	return ok;
}

/* `git status --porcelain` of path, by the git CLI (the reference). */
static char *
cli_status(const char *path)
{
	char	*cmd = xasprintf("git -C '%s' status --porcelain 2>&1", path);
	char	 buf[4096];
	FILE	*f = popen(cmd, "r");
	size_t	 n = 0;

	free(cmd);
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	if (pclose(f) != 0)
		return NULL;
	return xstrdup(buf);
}

TEST(add_checks_out_modes_symlinks_dirs_and_gitlinks_as_git_does)
{
	git_repository	*r;
	git_index	*idx;
	git_index_entry	 e;
	struct stat	 sb;
	char		*branch = NULL, *path = NULL, *st, link[64];
	ssize_t		 n;

	fixture();
	CHECK(git_repository_open(&r, repo_path) == 0);
	mkdir(at(repo_path, "src"), 0755);
	mkdir(at(repo_path, "src/deep"), 0755);
	write_file(repo_path, "src/deep/x.c", "int x;\n");
	write_file(repo_path, "run.sh", "#!/bin/sh\n");
	chmod(at(repo_path, "run.sh"), 0755);
	CHECK(symlink("src/deep/x.c", at(repo_path, "link")) == 0);
	commit_all(r, "more\n");
	/* A submodule's entry (gitlink), never initialised. */
	CHECK(git_repository_index(&idx, r) == 0);
	memset(&e, 0, sizeof e);
	e.mode = GIT_FILEMODE_COMMIT;
	e.path = "sub";
	git_oid_fromstr(&e.id, "0123456789012345678901234567890123456789");
	CHECK(git_index_add(idx, &e) == 0);
	CHECK(git_index_write(idx) == 0);
	{
		git_oid		 tid, cid;
		git_tree	*tree;
		git_signature	*sig;
		git_object	*head;

		CHECK(git_index_write_tree(&tid, idx) == 0);
		CHECK(git_tree_lookup(&tree, r, &tid) == 0);
		CHECK(git_signature_now(&sig, "F", "f@example.org") == 0);
		CHECK(git_revparse_single(&head, r, "HEAD") == 0);
		CHECK(git_commit_create(&cid, r, "HEAD", sig, sig, NULL,
		    "submodule\n", tree, 1, (const git_commit **)&head) == 0);
		git_object_free(head);
		git_signature_free(sig);
		git_tree_free(tree);
	}
	git_index_free(idx);
	git_repository_free(r);

	CHECK_INT(worktree_add(repo_path, "main", state_dir, 11, "modes",
	    &branch, &path, &cause), 0);
	CHECK(stat(at(path, "run.sh"), &sb) == 0);
	CHECK((sb.st_mode & 0100) != 0);
	CHECK(stat(at(path, "a.txt"), &sb) == 0);
	CHECK((sb.st_mode & 0111) == 0);
	n = readlink(at(path, "link"), link, sizeof link - 1);
	CHECK(n > 0);
	link[n] = '\0';
	CHECK_STR(link, "src/deep/x.c");
	CHECK(stat(at(path, "src/deep/x.c"), &sb) == 0);
	CHECK(stat(at(path, "sub"), &sb) == 0 && S_ISDIR(sb.st_mode));
	/* git agrees that nothing differs: index, files and stat data. */
	st = cli_status(path);
	CHECK_STR(st, "");
	free(st);
	CHECK_INT(status_count(path), 0);
	free(branch);
	free(path);
	fixture_done();
}

TEST(warm_claim_is_what_add_makes_without_the_checkout)
{
	char	*branch = NULL, *path = NULL, *a, *want;
	char	**tags = NULL;
	size_t	 n = 0;
	git_oid	 m, b;

	fixture();
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "1-1",
	    &cause), 0);
	CHECK(exists(at(state_dir, "worktrees/warm-1-1/a.txt")));
	CHECK(worktree_lock_is("sbw-1-1", "switchboard: warm"));
	CHECK_INT(worktree_warm_list(repo_path, state_dir, &tags, &n, &cause),
	    0);
	CHECK_INT(n, 1);
	CHECK_STR(tags[0], "1-1");
	worktree_files_free(tags, n);

	CHECK_INT(worktree_warm_claim(repo_path, "main", state_dir, "1-1", 7,
	    "Fix the login page", &branch, &path, &cause), 0);
	CHECK_STR(branch, "sb/7-fix-the-login-page");
	want = xasprintf("%s/worktrees/7", state_dir);
	CHECK_STR(path, want);
	free(want);
	a = read_file(path, "a.txt");
	CHECK_STR(a, "one\ntwo\nthree\n");
	free(a);
	m = ref_target(repo_path, "refs/heads/main");
	b = ref_target(repo_path, "refs/heads/sb/7-fix-the-login-page");
	CHECK(git_oid_equal(&m, &b));
	b = ref_target(path, "HEAD");
	CHECK(git_oid_equal(&m, &b));
	CHECK_INT(status_count(path), 0);
	/* Named and locked as worktree_add's; the warm one is gone. */
	CHECK(worktree_lock_is("sb-7", "switchboard: agent 7"));
	CHECK(!worktree_known_to_git("sbw-1-1"));
	CHECK(!exists(at(state_dir, "worktrees/warm-1-1")));
	CHECK(!branch_exists("sb-warm/1-1"));
	/* The rest of the daemon's calls work on it as on any. */
	CHECK_INT(worktree_unlock(repo_path, 7, &cause), 0);
	CHECK_INT(worktree_remove(repo_path, 7, &cause), 0);
	CHECK(!exists(path));
	CHECK(branch_exists("sb/7-fix-the-login-page"));
	free(branch);
	free(path);
	fixture_done();
}

TEST(warm_claim_after_the_base_moved_checks_out_the_new_tip)
{
	char	*branch = NULL, *path = NULL, *a;
	git_oid	 m, b;

	fixture();
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "2-1",
	    &cause), 0);
	commit_on_main("a.txt", "one\nTWO\nthree\n");
	commit_on_main("d.txt", "new\n");
	CHECK_INT(worktree_warm_claim(repo_path, "main", state_dir, "2-1", 8,
	    "moved", &branch, &path, &cause), 0);
	m = ref_target(repo_path, "refs/heads/main");
	b = ref_target(repo_path, "refs/heads/sb/8-moved");
	CHECK(git_oid_equal(&m, &b));
	a = read_file(path, "a.txt");
	CHECK_STR(a, "one\nTWO\nthree\n");
	free(a);
	a = read_file(path, "d.txt");
	CHECK_STR(a, "new\n");
	free(a);
	CHECK_INT(status_count(path), 0);
	free(branch);
	free(path);
	fixture_done();
}

static int
known_none(int64_t id, const char *path, const char *branch, void *arg)
{
	return WORKTREE_UNKNOWN;
}

TEST(warm_reconcile_keeps_ready_and_removes_what_a_crash_left)
{
	git_repository	*r;
	git_worktree	*w;
	char		*from, *to;
	char		**tags = NULL;
	size_t		 n = 0;

	fixture();
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "3-1",
	    &cause), 0);
	/* Unfinished: killed during its checkout, before the lock. */
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "3-2",
	    &cause), 0);
	CHECK(git_repository_open(&r, repo_path) == 0);
	CHECK(git_worktree_lookup(&w, r, "sbw-3-2") == 0);
	CHECK_INT(git_worktree_unlock(w), 0);
	git_worktree_free(w);
	git_repository_free(r);
	/* Killed in a claim, after the directory's rename. */
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "3-3",
	    &cause), 0);
	from = xasprintf("%s/worktrees/warm-3-3", state_dir);
	to = xasprintf("%s/worktrees/9", state_dir);
	CHECK(rename(from, to) == 0);
	/* Killed before git knew of it. */
	mkdir(at(state_dir, "worktrees/warm-3-4"), 0700);

	CHECK_INT(worktree_reconcile(repo_path, "main", state_dir, known_none,
	    NULL, &cause), 0);
	CHECK(worktree_lock_is("sbw-3-1", "switchboard: warm"));
	CHECK(branch_exists("sb-warm/3-1"));
	CHECK(!worktree_known_to_git("sbw-3-2"));
	CHECK(!exists(at(state_dir, "worktrees/warm-3-2")));
	CHECK(!branch_exists("sb-warm/3-2"));
	CHECK(!worktree_known_to_git("sbw-3-3"));
	CHECK(!exists(to));
	CHECK(!branch_exists("sb-warm/3-3"));
	CHECK(!exists(at(state_dir, "worktrees/warm-3-4")));
	CHECK_INT(worktree_warm_list(repo_path, state_dir, &tags, &n, &cause),
	    0);
	CHECK_INT(n, 1);
	CHECK_STR(tags[0], "3-1");
	worktree_files_free(tags, n);
	free(from);
	free(to);
	fixture_done();
}

TEST(warm_claim_of_a_broken_one_fails_and_leaves_nothing)
{
	char	*branch = NULL, *path = NULL;

	fixture();
	CHECK_INT(worktree_warm_claim(repo_path, "main", state_dir, "4-1", 10,
	    "none", &branch, &path, &cause), -1);
	free(cause);
	cause = NULL;
	CHECK(!branch_exists("sb/10-none"));
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "4-2",
	    &cause), 0);
	/* Agent 10's directory is in the way: refused before any move. */
	mkdir(at(state_dir, "worktrees/10"), 0700);
	CHECK_INT(worktree_warm_claim(repo_path, "main", state_dir, "4-2", 10,
	    "none", &branch, &path, &cause), -1);
	CHECK(!branch_exists("sb/10-none"));
	CHECK(worktree_lock_is("sbw-4-2", "switchboard: warm"));
	fixture_done();
}

TEST(instance_prefixes_branches_and_worktrees_and_limits_the_sweep)
{
	char	*b1 = NULL, *p1 = NULL, *b2 = NULL, *p2 = NULL, *st2;
	char	*st1, *name;

	fixture();
	CHECK_INT(worktree_set_instance("7x"), -1);	/* reads as an id */
	CHECK_INT(worktree_set_instance("A"), -1);
	CHECK_INT(worktree_set_instance("toolongtoolongtoolong"), -1);
	CHECK_INT(worktree_set_instance("a-"), -1);
	CHECK_INT(worktree_set_instance("d-1"), 0);	/* as cluster.daemon_id */
	name = worktree_branch_name(5, "x");
	CHECK_STR(name, "sb/d-1-5-x");
	free(name);
	/* Daemon "a" and a daemon without instance, one repository. */
	st1 = xasprintf("%s/state-a", tmp);
	st2 = xasprintf("%s/state-none", tmp);
	mkdir(st1, 0700);
	mkdir(st2, 0700);
	CHECK_INT(worktree_set_instance("a"), 0);
	name = worktree_branch_name(5, "fix");
	CHECK_STR(name, "sb/a-5-fix");
	free(name);
	CHECK_INT(worktree_add(repo_path, "main", st1, 5, "fix", &b1, &p1,
	    &cause), 0);
	CHECK_STR(b1, "sb/a-5-fix");
	CHECK(worktree_known_to_git("sb-a-5"));
	CHECK_INT(worktree_set_instance(""), 0);
	/* Same id, no collision. */
	CHECK_INT(worktree_add(repo_path, "main", st2, 5, "fix", &b2, &p2,
	    &cause), 0);
	CHECK_STR(b2, "sb/5-fix");
	CHECK(worktree_known_to_git("sb-5"));
	/* The daemon without instance's sweep leaves "a"'s alone... */
	CHECK_INT(worktree_reconcile(repo_path, "main", st2, known_none, NULL,
	    &cause), 0);
	CHECK(!worktree_known_to_git("sb-5"));
	CHECK(!branch_exists("sb/5-fix"));
	CHECK(worktree_known_to_git("sb-a-5"));
	CHECK(branch_exists("sb/a-5-fix"));
	/* ...and "a"'s removes its own only. */
	free(b2);
	free(p2);
	CHECK_INT(worktree_add(repo_path, "main", st2, 6, "keep", &b2, &p2,
	    &cause), 0);
	/* Another daemon's branch, at main, checked out nowhere. */
	{
		git_repository	*r;
		git_reference	*ref;
		git_object	*o;

		CHECK(git_repository_open(&r, repo_path) == 0);
		CHECK(git_revparse_single(&o, r, "main") == 0);
		CHECK(git_branch_create(&ref, r, "sb/9-orphan",
		    (git_commit *)o, 0) == 0);
		git_reference_free(ref);
		git_object_free(o);
		git_repository_free(r);
	}
	CHECK_INT(worktree_set_instance("a"), 0);
	CHECK_INT(worktree_reconcile(repo_path, "main", st1, known_none, NULL,
	    &cause), 0);
	CHECK(branch_exists("sb/9-orphan"));
	CHECK(!worktree_known_to_git("sb-a-5"));
	CHECK(!branch_exists("sb/a-5-fix"));
	CHECK(worktree_known_to_git("sb-6"));
	CHECK(branch_exists("sb/6-keep"));
	CHECK_INT(worktree_set_instance(""), 0);
	free(b1);
	free(p1);
	free(b2);
	free(p2);
	free(st1);
	free(st2);
	fixture_done();
}

struct race {
	const char	*tag;
	int64_t		 id;
	int		 rc;
	char		*cause;
};

static void *
race_claim(void *arg)
{
	struct race	*r = arg;
	char		*b = NULL, *p = NULL;

	r->rc = worktree_warm_claim(repo_path, "main", state_dir, r->tag,
	    r->id, "claim", &b, &p, &r->cause);
	free(b);
	free(p);
	return NULL;
}

static void *
race_add(void *arg)
{
	struct race	*r = arg;
	char		*b = NULL, *p = NULL;

	r->rc = worktree_add(repo_path, "main", state_dir, r->id, "add", &b,
	    &p, &r->cause);
	free(b);
	free(p);
	return NULL;
}

TEST(warm_claims_and_adds_in_parallel_all_succeed)
{
	struct race	 c, a;
	pthread_t	 t1, t2;
	char		 tag[16];
	int		 i;

	fixture();
	for (i = 0; i < 20; i++) {
		snprintf(tag, sizeof tag, "r-%d", i);
		CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, tag,
		    &cause), 0);
		memset(&c, 0, sizeof c);
		memset(&a, 0, sizeof a);
		c.tag = tag;
		c.id = 100 + i;
		a.id = 200 + i;
		pthread_create(&t1, NULL, race_claim, &c);
		pthread_create(&t2, NULL, race_add, &a);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		if (c.rc != 0 || a.rc != 0)
			printf("round %d: claim %s / add %s\n", i,
			    c.cause ? c.cause : "ok", a.cause ? a.cause : "ok");
		free(c.cause);
		free(a.cause);
		CHECK_INT(c.rc, 0);
		CHECK_INT(a.rc, 0);
	}
	fixture_done();
}

/* Last: worktree_warm_abort() is for good (the daemon is exiting). */
TEST(warm_add_stops_at_shutdown_and_the_sweep_removes_the_rest)
{
	char	**tags = NULL;
	size_t	 n = 0;

	fixture();
	worktree_warm_abort();
	CHECK_INT(worktree_warm_add(repo_path, "main", state_dir, "9-1",
	    &cause), -1);
	CHECK(cause != NULL && strstr(cause, "stopped for shutdown") != NULL);
	free(cause);
	cause = NULL;
	/* Left as it was, unfinished: not offered, removed at start. */
	CHECK(worktree_known_to_git("sbw-9-1"));
	CHECK(!worktree_lock_is("sbw-9-1", "switchboard: warm"));
	CHECK_INT(worktree_warm_list(repo_path, state_dir, &tags, &n, &cause),
	    0);
	CHECK_INT(n, 0);
	worktree_files_free(tags, n);
	CHECK_INT(worktree_reconcile(repo_path, "main", state_dir, known_none,
	    NULL, &cause), 0);
	CHECK(!worktree_known_to_git("sbw-9-1"));
	CHECK(!exists(at(state_dir, "worktrees/warm-9-1")));
	CHECK(!branch_exists("sb-warm/9-1"));
	/* An agent's own checkout is not stopped by it. */
	{
		char	*b = NULL, *p = NULL;

		CHECK_INT(worktree_add(repo_path, "main", state_dir, 3, "go",
		    &b, &p, &cause), 0);
		free(b);
		free(p);
	}
	fixture_done();
}

int
main(void)
{
	worktree_git_init();
	RUN(slug_keeps_only_lowercase_alnum_and_single_dashes);
	RUN(add_creates_branch_and_checked_out_locked_worktree);
	RUN(commit_leftovers_stages_adds_mods_deletes_and_skips_ignored);
	RUN(commit_leftovers_refuses_detached_head_and_bad_identity);
	RUN(diffstat_counts_exactly_against_merge_base);
	RUN(changed_files_lists_committed_and_uncommitted_bounded);
	RUN(remove_deletes_directory_and_metadata_keeps_branch);
	RUN(hostile_task_texts_stay_inside_sb_and_state_dir);
	RUN(existing_branch_gets_suffix_existing_worktree_is_refused);
	RUN(missing_base_branch_falls_back_to_head);
	RUN(add_applies_eol_attributes_when_repo_has_them);
	RUN(cleanup_removes_old_unlocked_keeps_locked_fresh_and_branches);
	RUN(parallel_first_adds_in_a_fresh_repo_all_succeed);
	RUN(add_branch_checks_out_the_existing_branch_with_its_commits);
	RUN(add_checks_out_modes_symlinks_dirs_and_gitlinks_as_git_does);
	RUN(warm_claim_is_what_add_makes_without_the_checkout);
	RUN(warm_claim_after_the_base_moved_checks_out_the_new_tip);
	RUN(warm_reconcile_keeps_ready_and_removes_what_a_crash_left);
	RUN(warm_claim_of_a_broken_one_fails_and_leaves_nothing);
	RUN(instance_prefixes_branches_and_worktrees_and_limits_the_sweep);
	RUN(warm_claims_and_adds_in_parallel_all_succeed);
	RUN(warm_add_stops_at_shutdown_and_the_sweep_removes_the_rest);
	worktree_git_shutdown();
	return t_done();
}
