/*
 * bench/worktree — how long a subagent waits for its checkout.
 *
 *	build/default/bench/worktree [-f files] [-n runs] [-x] [-o] [-d dir]
 *
 * Builds a repository of `files` files (default 20000, ~1 KB each, 100 per
 * directory; with the git CLI: this is the fixture, not the code under test),
 * then times `runs` creations (default 5) with worktree_add(), with
 * `git worktree add -b`, and with `cp -a` of the checkout, interleaved so the
 * page cache treats them alike, and prints the median of each and its ratio
 * to git.  -x also times libgit2 checkout variants (strategy, filters, hash
 * verification) through git_worktree_add() directly, to see what costs.
 * Nothing is deleted until the end: ext4 scans for inodes it may reuse
 * ("recently_deleted"), and deleting 20,000 files between runs made every
 * method spend most of its time in that kernel scan.
 * -o times worktree_add() alone (for perf/callgrind).  -d puts the fixture
 * elsewhere than /tmp (e.g. /dev/shm, to take the disk out).  Numbers
 * only; it never fails on speed.
 */
#include "orchestrator/worktree.h"
#include "bot/util.h"

#include <git2.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RUNS	64

static char	 root[PATH_MAX];

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

/* argv, no shell: paths come from mkdtemp but habits matter. */
static void
run(char *const argv[])
{
	pid_t	 pid;
	int	 status;

	if ((pid = fork()) == -1)
		exit(2);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench: %s %s failed\n", argv[0], argv[1]);
		exit(2);
	}
}

static void
make_fixture(const char *repo, int nfiles)
{
	char	 path[PATH_MAX + 64];
	FILE	*f;
	int	 i, j;

	mkdir(repo, 0755);
	for (i = 0; i < nfiles; i++) {
		if (i % 100 == 0) {
			snprintf(path, sizeof path, "%s/d%03d", repo, i / 100);
			mkdir(path, 0755);
		}
		snprintf(path, sizeof path, "%s/d%03d/f%05d.c", repo, i / 100,
		    i);
		if ((f = fopen(path, "w")) == NULL)
			exit(2);
		for (j = 0; j < 16; j++)
			fprintf(f, "int f%d_%d(int x) { return x * %d + %d; }"
			    "   /* line %02d */\n", i, j, j, i, j);
		fclose(f);
	}
	run((char *[]){ "git", "-C", (char *)repo, "init", "-q", "-b", "main",
	    NULL });
	run((char *[]){ "git", "-C", (char *)repo, "add", "-A", NULL });
	run((char *[]){ "git", "-C", (char *)repo, "config", "gc.auto", "0",
	    NULL });
	run((char *[]){ "git", "-C", (char *)repo, "-c", "user.name=bench",
	    "-c", "user.email=bench@example.org", "commit", "-q", "-m",
	    "fixture", NULL });
	/* Packed, like a clone; also no background auto-gc racing cp -a. */
	run((char *[]){ "git", "-C", (char *)repo, "repack", "-adq", NULL });
	run((char *[]){ "git", "-C", (char *)repo, "prune-packed", NULL });
}

static int
cmp_ms(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_ms);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct variant {
	const char	*name;
	unsigned	 strategy;
	int		 disable_filters;
	int		 no_hash_verify;
};

/* git_worktree_add() with explicit checkout options; -1 on error. */
static double
time_variant(const char *repo_path, const char *dir, int i, int k,
    const struct variant *v)
{
	git_worktree_add_options opts;
	git_repository	*repo;
	git_reference	*ref;
	git_commit	*c;
	git_worktree	*wt;
	git_object	*o;
	char		 name[64], path[PATH_MAX + 64];
	uint64_t	 t0;
	double		 ms;

	snprintf(name, sizeof name, "x-%d-%d", k, i);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION,
	    !v->no_hash_verify);	/* libgit2's default: on */
	t0 = now_ms();
	if (git_repository_open(&repo, repo_path) < 0 ||
	    git_revparse_single(&o, repo, "main") < 0)
		return -1;
	c = (git_commit *)o;
	if (git_branch_create(&ref, repo, name, c, 1) < 0)
		return -1;
	git_worktree_add_options_init(&opts, GIT_WORKTREE_ADD_OPTIONS_VERSION);
	opts.ref = ref;
	opts.checkout_options.checkout_strategy = v->strategy;
	opts.checkout_options.disable_filters = v->disable_filters;
	if (git_worktree_add(&wt, repo, name, path, &opts) < 0) {
		fprintf(stderr, "bench: %s\n", git_error_last()->message);
		return -1;
	}
	ms = (double)(now_ms() - t0);
	git_worktree_free(wt);
	git_reference_free(ref);
	git_commit_free(c);
	git_repository_free(repo);
	/* Back to the daemon's setting (worktree_git_init: off). */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	return ms;
}

int
main(int argc, char **argv)
{
	static const struct variant variants[] = {
		{ "libgit2 SAFE (default)", GIT_CHECKOUT_SAFE, 0, 0 },
		{ "libgit2 FORCE", GIT_CHECKOUT_FORCE, 0, 0 },
		{ "libgit2 SAFE no-filters", GIT_CHECKOUT_SAFE, 1, 0 },
		{ "libgit2 SAFE no-hash-verify", GIT_CHECKOUT_SAFE, 0, 1 },
		{ "libgit2 FORCE no-filters no-verify", GIT_CHECKOUT_FORCE, 1,
		    1 },
	};
	double	 ours[MAX_RUNS], git[MAX_RUNS], cp[MAX_RUNS];
	double	 var[nitems(variants)][MAX_RUNS], mgit, m;
	char	 repo[PATH_MAX + 8], state[PATH_MAX + 8], dest[PATH_MAX + 32];
	char	 gitwt[PATH_MAX + 32], br[64], *branch, *path, *cause = NULL;
	int	 nfiles = 20000, runs = 5, extra = 0, only = 0, ch, i, j;
	size_t	 k;
	uint64_t t0;
	const char *base = "/tmp";

	while ((ch = getopt(argc, argv, "f:n:xod:")) != -1) {
		switch (ch) {
		case 'f': nfiles = atoi(optarg); break;
		case 'n': runs = atoi(optarg); break;
		case 'x': extra = 1; break;
		case 'o': only = 1; break;	/* worktree_add only: profiling */
		case 'd': base = optarg; break;
		default:
			fprintf(stderr, "usage: worktree [-f files] [-n runs] "
			    "[-x] [-o] [-d dir]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS || nfiles < 1)
		return 2;
	snprintf(root, sizeof root, "%s/sb-bench-wt-XXXXXX", base);
	if (mkdtemp(root) == NULL)
		return 2;
	snprintf(repo, sizeof repo, "%s/repo", root);
	snprintf(state, sizeof state, "%s/state", root);
	mkdir(state, 0700);
	t0 = now_ms();
	make_fixture(repo, nfiles);
	printf("fixture: %d files in %s (%.1f s)\n", nfiles, repo,
	    (now_ms() - t0) / 1000.0);

	worktree_git_init();
	for (i = 0; i < runs; i++) {
		fprintf(stderr, "round %d/%d\n", i + 1, runs);
		/* Rotate the order: whoever follows a big write pays for it. */
		for (j = 0; j < 3; j++) {
			switch ((i + j) % 3) {
			case 0:
				t0 = now_ms();
				if (worktree_add(repo, "main", state, i + 1,
				    "bench task", &branch, &path, &cause) < 0) {
					fprintf(stderr, "bench: %s\n", cause);
					return 1;
				}
				ours[i] = (double)(now_ms() - t0);
				free(branch);
				free(path);
				break;
			case 1:
				if (only)
					break;
				snprintf(gitwt, sizeof gitwt, "%s/git-%d", root,
				    i);
				snprintf(br, sizeof br, "bench/git-%d", i);
				t0 = now_ms();
				run((char *[]){ "git", "-C", repo, "worktree",
				    "add", "-q", "-b", br, gitwt, "main",
				    NULL });
				git[i] = (double)(now_ms() - t0);
				break;
			case 2:
				if (only)
					break;
				snprintf(dest, sizeof dest, "%s/cp-%d", root,
				    i);
				t0 = now_ms();
				run((char *[]){ "cp", "-a", repo, dest, NULL });
				cp[i] = (double)(now_ms() - t0);
				break;
			}
		}
		if (only)
			git[i] = cp[i] = ours[i];

		for (k = 0; extra && k < nitems(variants); k++)
			if ((var[k][i] = time_variant(repo, root, i, k,
			    &variants[k])) < 0)
				return 1;
	}

	mgit = median(git, runs);
	printf("\n%-36s %10s %8s   (%d files, median of %d)\n", "method",
	    "median ms", "vs git", nfiles, runs);
	m = median(ours, runs);
	printf("%-36s %10.1f %7.2fx\n", "worktree_add (libgit2)", m, m / mgit);
	printf("%-36s %10.1f %7.2fx\n", "git worktree add -b (CLI)", mgit, 1.0);
	m = median(cp, runs);
	printf("%-36s %10.1f %7.2fx\n", "cp -a checkout", m, m / mgit);
	for (k = 0; extra && k < nitems(variants); k++) {
		m = median(var[k], runs);
		printf("%-36s %10.1f %7.2fx\n", variants[k].name, m, m / mgit);
	}

	/* For bench/run.sh's table. */
	m = median(ours, runs);
	printf("FIGURE\tworktree_add, %d files\t%.0f ms (%.2fx git, %.2fx cp -a)"
	    "\tmedian of %d; git worktree add -b %.0f ms, cp -a %.0f ms"
	    "\t<= 1.0x git worktree add\t%s %.2fx\n", nfiles, m, m / mgit,
	    m / median(cp, runs), runs, mgit, median(cp, runs),
	    m / mgit <= 1.0 ? "met:" : "MISSED:", m / mgit);
	fflush(stdout);		/* removing a million files takes a while */
	worktree_git_shutdown();
	rm_rf(root);
	return 0;
}
