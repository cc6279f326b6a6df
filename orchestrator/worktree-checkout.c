/*
 * worktree-checkout — the first checkout of a new linked worktree, written
 * straight from the tree.
 *
 * libgit2's checkout (git_checkout_head in git_worktree_add) diffs the tree
 * against the empty directory and then opens and stats every file by its
 * absolute path: on a 20,000-file tree most of its time is the kernel
 * walking those paths again and again (perf: __d_lookup_rcu on top), and it
 * stayed 1.3x `git worktree add` with filters off.  Here each directory is
 * made once and its files are created relative to its descriptor (openat),
 * their stat taken from the open file (fstat), and the index is made from
 * the tree in one go, given the files' stat data, and written once.
 *
 * Only for what it can do exactly as git would: a caller checks that no
 * filter could act (wt_filters_matter) and that the repository does not set
 * core.symlinks = false; anything else goes through libgit2's checkout.
 * Submodules (gitlinks) become an empty directory and an index entry, as
 * git leaves an uninitialised one.
 */
#include "orchestrator/worktree.h"
#include "orchestrator/worktree-int.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the index needs of a written entry, in tree (= index) order. */
struct co_ent {
	char		*path;
	git_filemode_t	 mode;
	git_oid		 id;
	struct stat	 sb;
	int		 has_stat;
};

static atomic_int	 warm_abort;

void
worktree_warm_abort(void)
{
	atomic_store(&warm_abort, 1);
}

struct co {
	int		 abortable;	/* stops at worktree_warm_abort() */
	git_repository	*repo;		/* objects: the caller's handle */
	git_repository	*wt;		/* the new worktree: HEAD, index */
	git_index	*index;
	char		 path[PATH_MAX];	/* relative, at hand */
	size_t		 len;
	char		**cause;
	struct co_ent	*ents;
	size_t		  nents, cap;
};

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= w;
	}
	return 0;
}

static int
index_add(struct co *c, git_filemode_t mode, const git_oid *id,
    const struct stat *sb)
{
	struct co_ent	*e;

	if (c->nents == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->ents = xrealloc(c->ents, c->cap * sizeof *c->ents);
	}
	e = &c->ents[c->nents++];
	e->path = xstrdup(c->path);
	e->mode = mode;
	git_oid_cpy(&e->id, id);
	e->has_stat = sb != NULL;
	if (sb != NULL)
		e->sb = *sb;
	return 0;
}

static void
stat_to_entry(git_index_entry *ie, const struct stat *sb)
{
	ie->ctime.seconds = (int32_t)sb->st_ctim.tv_sec;
	ie->ctime.nanoseconds = (uint32_t)sb->st_ctim.tv_nsec;
	ie->mtime.seconds = (int32_t)sb->st_mtim.tv_sec;
	ie->mtime.nanoseconds = (uint32_t)sb->st_mtim.tv_nsec;
	ie->dev = (uint32_t)sb->st_dev;
	ie->ino = (uint32_t)sb->st_ino;
	ie->uid = (uint32_t)sb->st_uid;
	ie->gid = (uint32_t)sb->st_gid;
	ie->file_size = (uint32_t)sb->st_size;
}

/*
 * The index of what was written: git_index_read_tree makes every entry at
 * once (a third of the cost of adding them one by one, each with its
 * lookups and collision checks), then each gets its file's stat data.
 * Entries come in the same order as our walk; should they ever not, they
 * are added one by one instead.
 */
static int
build_index(struct co *c, git_tree *tree)
{
	git_index_entry		 ie, *e;
	size_t			 i;

	if (git_index_read_tree(c->index, tree) < 0)
		return wt_gfail(c->cause, "cannot index the tree");
	if (git_index_entrycount(c->index) == c->nents) {
		for (i = 0; i < c->nents; i++) {
			e = (git_index_entry *)git_index_get_byindex(c->index,
			    i);
			if (e == NULL ||
			    strcmp(e->path, c->ents[i].path) != 0 ||
			    !git_oid_equal(&e->id, &c->ents[i].id))
				break;
		}
		if (i == c->nents) {
			/* Same entries: only their stat data is missing. */
			for (i = 0; i < c->nents; i++) {
				e = (git_index_entry *)
				    git_index_get_byindex(c->index, i);
				if (c->ents[i].has_stat)
					stat_to_entry(e, &c->ents[i].sb);
			}
			return 0;
		}
	}
	log_debug("worktree: index order differs; adding entries one by one");
	if (git_index_clear(c->index) < 0)
		return wt_gfail(c->cause, "cannot clear the index");
	for (i = 0; i < c->nents; i++) {
		memset(&ie, 0, sizeof ie);
		if (c->ents[i].has_stat)
			stat_to_entry(&ie, &c->ents[i].sb);
		ie.mode = c->ents[i].mode;
		git_oid_cpy(&ie.id, &c->ents[i].id);
		ie.path = c->ents[i].path;
		if (git_index_add(c->index, &ie) < 0)
			return wt_gfail(c->cause, "cannot index %s",
			    c->ents[i].path);
	}
	return 0;
}

static int
write_blob(struct co *c, int dirfd, const char *name, git_filemode_t mode,
    const git_oid *id)
{
	git_blob	*blob;
	struct stat	 sb;
	const char	*data;
	char		*target;
	size_t		 size;
	int		 fd, rc = -1;

	if (git_blob_lookup(&blob, c->repo, id) < 0)
		return wt_gfail(c->cause, "blob of %s", c->path);
	data = git_blob_rawcontent(blob);
	size = (size_t)git_blob_rawsize(blob);
	if (mode == GIT_FILEMODE_LINK) {
		target = xmalloc(size + 1);
		memcpy(target, data, size);
		target[size] = '\0';
		if (symlinkat(target, dirfd, name) == -1 ||
		    fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
			wt_fail(c->cause, "symlink %s: %s", c->path,
			    strerror(errno));
		else
			rc = 0;
		free(target);
	} else {
		/* 0666/0777 less the umask, as git creates them. */
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0777 :
		    0666);
		if (fd == -1 || write_all(fd, data, size) == -1 ||
		    fstat(fd, &sb) == -1)
			wt_fail(c->cause, "write %s: %s", c->path,
			    strerror(errno));
		else
			rc = 0;
		if (fd != -1 && close(fd) == -1 && rc == 0)
			rc = wt_fail(c->cause, "close %s: %s", c->path,
			    strerror(errno));
	}
	git_blob_free(blob);
	if (rc == 0)
		rc = index_add(c, mode, id, &sb);
	return rc;
}

/* Names git itself would refuse to check out, in any directory. */
static int
name_ok(const char *name)
{
	return *name != '\0' && strcmp(name, ".") != 0 &&
	    strcmp(name, "..") != 0 && strcasecmp(name, ".git") != 0 &&
	    strchr(name, '/') == NULL;
}

/* The entries of tree into directory dirfd, c->path being its path. */
static int
write_tree(struct co *c, git_tree *tree, int dirfd)
{
	const git_tree_entry	*e;
	git_tree		*sub;
	git_filemode_t		 mode;
	const char		*name;
	size_t			 i, n, len, nlen;
	int			 fd, rc = 0;

	len = c->len;
	n = git_tree_entrycount(tree);
	for (i = 0; i < n && rc == 0; i++) {
		if (c->abortable && atomic_load(&warm_abort))
			return WT_EABORTED;
		e = git_tree_entry_byindex(tree, i);
		name = git_tree_entry_name(e);
		mode = git_tree_entry_filemode(e);
		nlen = strlen(name);
		if (!name_ok(name))
			return wt_fail(c->cause, "refusing entry \"%s\" in %s",
			    name, c->path);
		if (len + nlen + 2 > sizeof c->path)
			return wt_fail(c->cause, "path too long in %s",
			    c->path);
		memcpy(c->path + len, name, nlen + 1);
		c->len = len + nlen;
		switch (mode) {
		case GIT_FILEMODE_TREE:
			if (git_tree_lookup(&sub, c->repo,
			    git_tree_entry_id(e)) < 0) {
				rc = wt_gfail(c->cause, "tree %s", c->path);
				break;
			}
			if (mkdirat(dirfd, name, 0777) == -1 ||
			    (fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC)) == -1)
				rc = wt_fail(c->cause, "mkdir %s: %s", c->path,
				    strerror(errno));
			else {
				c->path[c->len++] = '/';
				c->path[c->len] = '\0';
				rc = write_tree(c, sub, fd);
				close(fd);
			}
			git_tree_free(sub);
			break;
		case GIT_FILEMODE_COMMIT:
			if (mkdirat(dirfd, name, 0777) == -1)
				rc = wt_fail(c->cause, "mkdir %s: %s", c->path,
				    strerror(errno));
			else
				rc = index_add(c, mode, git_tree_entry_id(e),
				    NULL);
			break;
		case GIT_FILEMODE_BLOB:
		case GIT_FILEMODE_BLOB_EXECUTABLE:
		case GIT_FILEMODE_LINK:
			rc = write_blob(c, dirfd, name, mode,
			    git_tree_entry_id(e));
			break;
		default:
			rc = wt_fail(c->cause, "%s: unknown mode %o", c->path,
			    (unsigned)mode);
			break;
		}
		c->len = len;
		c->path[len] = '\0';
	}
	return rc;
}

int
wt_fast_checkout_ok(git_repository *repo, git_commit *tip)
{
	git_config	*cfg = NULL;
	int		 symlinks = 1, error;

	if (wt_filters_matter(repo, tip))
		return 0;
	if (git_repository_config_snapshot(&cfg, repo) < 0) {
		git_error_clear();
		return 0;
	}
	error = git_config_get_bool(&symlinks, cfg, "core.symlinks");
	git_config_free(cfg);
	git_error_clear();
	return error == GIT_ENOTFOUND || (error == 0 && symlinks);
}

int
wt_fast_checkout(git_repository *repo, const char *path, int abortable,
    char **cause)
{
	struct co	 c;
	git_reference	*head = NULL;
	git_commit	*commit = NULL;
	git_tree	*tree = NULL;
	int		 dirfd = -1, rc = -1;

	memset(&c, 0, sizeof c);
	c.cause = cause;
	c.abortable = abortable;
	/*
	 * Objects through the caller's handle: its cache holds the trees
	 * wt_filters_matter has just read.
	 */
	c.repo = repo;
	if (git_repository_open_ext(&c.wt, path,
	    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		wt_gfail(cause, "cannot open %s", path);
		return -1;
	}
	if (git_repository_head(&head, c.wt) < 0 ||
	    git_reference_peel((git_object **)&commit, head,
	    GIT_OBJECT_COMMIT) < 0 || git_commit_tree(&tree, commit) < 0 ||
	    git_repository_index(&c.index, c.wt) < 0) {
		wt_gfail(cause, "HEAD of %s", path);
		goto out;
	}
	if ((dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		wt_fail(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = write_tree(&c, tree, dirfd)) != 0) {
		if (rc == WT_EABORTED)
			wt_fail(cause, "checkout of %s stopped for shutdown",
			    path);
		goto out;
	}
	rc = -1;
	if (build_index(&c, tree) < 0)
		goto out;
	if (git_index_write(c.index) < 0) {
		wt_gfail(cause, "cannot write the index of %s", path);
		goto out;
	}
	rc = 0;
out:
	if (dirfd != -1)
		close(dirfd);
	for (size_t i = 0; i < c.nents; i++)
		free(c.ents[i].path);
	free(c.ents);
	git_index_free(c.index);
	git_tree_free(tree);
	git_commit_free(commit);
	git_reference_free(head);
	git_repository_free(c.wt);
	return rc;
}
