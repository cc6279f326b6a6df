#include "orchestrator/gitremote.h"
#include "orchestrator/worktree.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <git2.h>

#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char	 tmp[PATH_MAX];
static char	 repo_path[PATH_MAX + 16];
static char	 bare_path[PATH_MAX + 16];
static char	*cause;
static struct gitremote_creds creds;

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

/*
 * A commit on ref: with the tree of ref's tip (or, for a repo's first, of
 * its index); root: without a parent (a rewritten history).
 */
static void
commit_on(git_repository *repo, const char *ref, const char *msg, int root)
{
	git_index	*idx;
	git_oid		 tid, cid, pid;
	git_tree	*tree = NULL;
	git_signature	*sig;
	git_commit	*parent = NULL, *tip = NULL;
	git_reference	*r;

	if (git_reference_name_to_id(&pid, repo, ref) == 0 &&
	    git_commit_lookup(&tip, repo, &pid) == 0) {
		if (git_commit_tree(&tree, tip) < 0)
			abort();
		if (!root)
			parent = tip;
	} else {
		if (git_repository_index(&idx, repo) < 0 ||
		    git_index_write_tree(&tid, idx) < 0 ||
		    git_tree_lookup(&tree, repo, &tid) < 0)
			abort();
		git_index_free(idx);
	}
	if (git_signature_now(&sig, "Fixture", "fixture@example.org") < 0 ||
	    git_commit_create(&cid, repo, NULL, sig, sig, NULL, msg, tree,
	    parent ? 1 : 0, (const git_commit **)&parent) < 0 ||
	    git_reference_create(&r, repo, ref, &cid, 1, msg) < 0)
		abort();
	git_reference_free(r);
	git_commit_free(tip);
	git_signature_free(sig);
	git_tree_free(tree);
}

/* A repo on "main" with one commit, its remote "origin" a bare repo. */
static void
fixture(void)
{
	git_repository_init_options	 o;
	git_repository			*repo, *bare;
	git_remote			*rem;
	git_index			*idx;
	char				 t[] = "/tmp/sb-gr-XXXXXX";
	FILE				*f;

	if (mkdtemp(t) == NULL || realpath(t, tmp) == NULL)
		abort();
	snprintf(repo_path, sizeof repo_path, "%s/repo", tmp);
	snprintf(bare_path, sizeof bare_path, "%s/remote.git", tmp);
	git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	o.flags = GIT_REPOSITORY_INIT_MKPATH;
	o.initial_head = "main";
	if (git_repository_init_ext(&repo, repo_path, &o) < 0 ||
	    git_repository_init(&bare, bare_path, 1) < 0)
		abort();
	{
		char *p = xasprintf("%s/README.md", repo_path);

		if ((f = fopen(p, "w")) == NULL)
			abort();
		fputs("# r\n", f);
		fclose(f);
		free(p);
	}
	if (git_repository_index(&idx, repo) < 0 ||
	    git_index_add_bypath(idx, "README.md") < 0 ||
	    git_index_write(idx) < 0)
		abort();
	git_index_free(idx);
	commit_on(repo, "refs/heads/main", "initial\n", 1);
	if (git_remote_create(&rem, repo, "origin", bare_path) < 0)
		abort();
	git_remote_free(rem);
	git_repository_free(bare);
	git_repository_free(repo);
	memset(&creds, 0, sizeof creds);
	free(cause);
	cause = NULL;
}

static void
fixture_done(void)
{
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(cause);
	cause = NULL;
}

static int
same_tip(const char *a_repo, const char *a_ref, const char *b_repo,
    const char *b_ref)
{
	git_repository	*a, *b;
	git_oid		 x, y;
	int		 ok;

	if (git_repository_open(&a, a_repo) < 0 ||
	    git_repository_open(&b, b_repo) < 0)
		abort();
	ok = git_reference_name_to_id(&x, a, a_ref) == 0 &&
	    git_reference_name_to_id(&y, b, b_ref) == 0 && git_oid_equal(&x, &y);
	git_repository_free(a);
	git_repository_free(b);
	return ok;
}

TEST(branch_new_takes_the_next_free_name_at_base_without_a_worktree)
{
	char	*b1 = NULL, *b2 = NULL, wt[PATH_MAX + 32];
	struct stat sb;

	fixture();
	/* cluster.daemon_id, as agent_configure sets it: also for pods. */
	CHECK(worktree_set_instance("east") == 0);
	CHECK(gitremote_branch_new(repo_path, "main", 3, "Fix the login!",
	    &b1, &cause) == 0);
	CHECK_STR(b1, "sb/east-3-fix-the-login");
	CHECK(gitremote_branch_new(repo_path, "main", 3, "Fix the login!",
	    &b2, &cause) == 0);
	CHECK_STR(b2, "sb/east-3-fix-the-login-2");
	{
		char *r = xasprintf("refs/heads/%s", b2);

		CHECK(same_tip(repo_path, r, repo_path, "refs/heads/main"));
		free(r);
	}
	snprintf(wt, sizeof wt, "%s/.git/worktrees", repo_path);
	CHECK(stat(wt, &sb) == -1);
	free(b1);
	free(b2);
	fixture_done();
}

TEST(fetch_follows_the_remote_branch_forced_and_says_when_it_is_missing)
{
	git_repository	*bare;
	char		*b = NULL, *r;

	fixture();
	CHECK(gitremote_branch_new(repo_path, "main", 1, "work", &b,
	    &cause) == 0);
	CHECK(gitremote_push(repo_path, "origin", b, b, 0, &creds, &cause) == 0);
	r = xasprintf("refs/heads/%s", b);
	/* A pod's push: one more commit on the remote's branch. */
	if (git_repository_open(&bare, bare_path) < 0)
		abort();
	commit_on(bare, r, "the agent's work\n", 0);
	CHECK(!same_tip(repo_path, r, bare_path, r));
	CHECK(gitremote_fetch(repo_path, "origin", b, b, &creds, &cause) == 0);
	CHECK(same_tip(repo_path, r, bare_path, r));
	/* The agent rewrote its history: the local branch follows all the same. */
	commit_on(bare, r, "rewritten\n", 1);
	CHECK(gitremote_fetch(repo_path, "origin", b, b, &creds, &cause) == 0);
	CHECK(same_tip(repo_path, r, bare_path, r));
	git_repository_free(bare);
	CHECK_INT(gitremote_fetch(repo_path, "origin", "sb/9-none", "sb/9-none",
	    &creds, &cause), GITREMOTE_ENOREF);
	CHECK(strstr(cause, "has no branch sb/9-none") != NULL);
	free(r);
	free(b);
	fixture_done();
}

TEST(url_is_the_configured_remotes)
{
	char	*u;

	fixture();
	u = gitremote_url(repo_path, "origin", &cause);
	CHECK_STR(u, bare_path);
	free(u);
	fixture_done();
}

int
main(void)
{
	worktree_git_init();
	RUN(branch_new_takes_the_next_free_name_at_base_without_a_worktree);
	RUN(fetch_follows_the_remote_branch_forced_and_says_when_it_is_missing);
	RUN(url_is_the_configured_remotes);
	worktree_git_shutdown();
	return t_done();
}
