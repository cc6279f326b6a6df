#include "orchestrator/agentlog.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Output is kept in memory and written in blocks (FLUSH_BYTES, or at most
 * FLUSH_MS after it came — a timer, so that the last line of an agent gone
 * quiet is on disk too; at the process's exit, at a rotation, before a
 * read): an agent streaming 1 MB/s used to cost an open, a write and a
 * close per pipe read.  cur and total count what is pending too.
 */
#define FLUSH_BYTES	(64 * 1024)
#define FLUSH_MS	250

struct alog {
	int64_t		 id;
	int		 turn;
	size_t		 cur;		/* bytes in the current turn's file */
	size_t		 total;		/* bytes in all its files */
	char		*dir;		/* logs/<id> */
	char		*path;		/* logs/<id>/<turn>.log */
	int		 fd;		/* path, open for appending; or -1 */
	int		 old_fd;	/* the turn's .old, kept open; or -1 */
	struct buf	 pend;		/* not written yet */
	uint64_t	 flushed_ms;
	struct alog	*next;
};

static char		*logs_dir;
static size_t		 log_cap;
static struct alog	*alogs;
static struct loop_timer *flush_timer;	/* armed while something is pending */

void
agentlog_configure(const char *state_dir, size_t cap)
{
	free(logs_dir);
	logs_dir = xasprintf("%s/logs", state_dir);
	log_cap = cap;
	if (mkdir(logs_dir, 0700) == -1 && errno != EEXIST)
		log_warn("agentlog: %s", logs_dir);
}

/* A file of an agent's log directory: turn number and whether ".old". */
struct afile {
	char	*name;
	int	 turn;
	int	 old;
	size_t	 size;
};

static int
afile_cmp(const void *a, const void *b)
{
	const struct afile *x = a, *y = b;

	if (x->turn != y->turn)
		return x->turn < y->turn ? -1 : 1;
	return y->old - x->old;		/* .old before the current */
}

/* The agent's files, oldest first; *n of them.  NULL if none. */
static struct afile *
afiles(const char *dir, size_t *n)
{
	struct afile	*v = NULL;
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		*path, *end;
	long		 t;

	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		t = strtol(de->d_name, &end, 10);
		if (end == de->d_name || t < 0 || (strcmp(end, ".log") != 0 &&
		    strcmp(end, ".old") != 0))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0) {
			v = xrealloc(v, (*n + 1) * sizeof *v);
			v[*n].name = xstrdup(de->d_name);
			v[*n].turn = (int)t;
			v[*n].old = strcmp(end, ".old") == 0;
			v[*n].size = (size_t)st.st_size;
			(*n)++;
		}
		free(path);
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof *v, afile_cmp);
	return v;
}

static void
afiles_free(struct afile *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Appends p[0..n) to the current file, opened if need be. */
static void
alog_write(struct alog *l, const char *p, size_t n)
{
	ssize_t		 w;

	if (n == 0)
		return;
	if (l->fd == -1 && (l->fd = open(l->path, O_WRONLY | O_CREAT |
	    O_APPEND | O_CLOEXEC, 0600)) == -1) {
		log_warn("agentlog: %s", l->path);
		return;
	}
	while (n > 0) {
		if ((w = write(l->fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("agentlog: write %s", l->path);
			break;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Writes what is pending; the file stays open. */
static void
alog_flush(struct alog *l)
{
	l->flushed_ms = now_ms();
	alog_write(l, l->pend.data, l->pend.len);
	buf_reset(&l->pend);
}

static void
flush_due(void *arg)
{
	struct alog	*l;

	flush_timer = NULL;
	for (l = alogs; l != NULL; l = l->next)
		if (l->pend.len > 0)
			alog_flush(l);
}

static void
alog_close(struct alog *l)
{
	alog_flush(l);
	if (l->fd != -1)
		close(l->fd);
	if (l->old_fd != -1)
		close(l->old_fd);
	l->fd = l->old_fd = -1;
}

static void
alog_free(struct alog *l)
{
	alog_close(l);
	buf_free(&l->pend);
	free(l->dir);
	free(l->path);
	free(l);
}

static struct alog *
alog_find(int64_t id)
{
	struct alog	*l;

	for (l = alogs; l != NULL; l = l->next)
		if (l->id == id)
			return l;
	return NULL;
}

static struct alog *
alog_get(int64_t id, int turn)
{
	struct alog	*l;
	struct afile	*v;
	size_t		 n, i;

	if ((l = alog_find(id)) == NULL) {
		l = xcalloc(1, sizeof *l);
		l->id = id;
		l->turn = -1;
		l->fd = l->old_fd = -1;
		l->dir = xasprintf("%s/%" PRId64, logs_dir, id);
		l->next = alogs;
		alogs = l;
		if (mkdir(l->dir, 0700) == -1 && errno != EEXIST)
			log_warn("agentlog: %s", l->dir);
		/* A restart: count what earlier runs left. */
		v = afiles(l->dir, &n);
		for (i = 0; i < n; i++) {
			l->total += v[i].size;
			if (v[i].turn == turn && !v[i].old)
				l->cur = v[i].size;
		}
		afiles_free(v, n);
		l->turn = turn;
		l->path = xasprintf("%s/%d.log", l->dir, turn);
	}
	if (l->turn != turn) {
		alog_close(l);
		l->turn = turn;
		l->cur = 0;
		free(l->path);
		l->path = xasprintf("%s/%d.log", l->dir, turn);
	}
	return l;
}

/* Drops whole files, oldest first, until the total fits the cap. */
static void
trim(struct alog *l, const char *dir)
{
	struct afile	*v;
	size_t		 n, i;
	char		*path;

	if (l->total <= log_cap)
		return;
	v = afiles(dir, &n);
	for (i = 0; i < n && l->total > log_cap; i++) {
		if (v[i].turn == l->turn && !v[i].old)
			break;		/* never the file being written */
		path = xasprintf("%s/%s", dir, v[i].name);
		if (unlink(path) == 0)
			l->total -= v[i].size < l->total ? v[i].size : l->total;
		free(path);
	}
	afiles_free(v, n);
}

/* Earlier turns' files: older than output this turn has dropped. */
static void
drop_earlier_turns(struct alog *l)
{
	struct afile	*v;
	size_t		 n, i;
	char		*path;

	v = afiles(l->dir, &n);
	for (i = 0; i < n; i++) {
		if (v[i].turn >= l->turn)
			continue;
		path = xasprintf("%s/%s", l->dir, v[i].name);
		if (unlink(path) == 0)
			l->total -= v[i].size < l->total ? v[i].size : l->total;
		free(path);
	}
	afiles_free(v, n);
}

/*
 * This turn alone is large: keep its newer half only.  The two files swap
 * names and the new current one is emptied, rather than renamed over .old:
 * a streaming agent rotates every half cap (twice a second at 1 MB/s), and
 * each new inode cost ext4 a scan of the recently deleted ones — 18 % of
 * the daemon's CPU with 50 such agents (perf, bench/agents).  Both stay
 * open until the turn ends: closing a file that a truncate emptied makes
 * ext4 allocate and write out its blocks at once (auto_da_alloc), a
 * quarter of the daemon's system time for data a later rotation drops.
 */
static void
rotate(struct alog *l)
{
	struct stat	 st, fst;
	char		*old;
	int		 fd, had_old;

	alog_flush(l);
	old = xasprintf("%s/%d.old", l->dir, l->turn);
	if ((had_old = stat(old, &st) == 0))
		l->total -= (size_t)st.st_size < l->total ?
		    (size_t)st.st_size : l->total;
	if (had_old && renameat2(AT_FDCWD, l->path, AT_FDCWD, old,
	    RENAME_EXCHANGE) == 0) {
		/* old_fd is the file now current, unless .old was replaced. */
		if (l->old_fd != -1 && (fstat(l->old_fd, &fst) == -1 ||
		    fst.st_ino != st.st_ino || fst.st_dev != st.st_dev)) {
			close(l->old_fd);
			l->old_fd = -1;
		}
		if (l->old_fd == -1)
			l->old_fd = open(l->path, O_WRONLY | O_APPEND |
			    O_CLOEXEC);
		fd = l->fd;
		l->fd = l->old_fd;
		l->old_fd = fd;
		if (l->fd == -1 || ftruncate(l->fd, 0) == -1)
			log_warn("agentlog: truncate %s", l->path);
	} else {
		if (rename(l->path, old) == -1)
			log_warn("agentlog: rename %s", l->path);
		if (l->old_fd != -1)
			close(l->old_fd);
		l->old_fd = l->fd;
		/* The current file exists from the rotation on. */
		if ((l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0600)) == -1)
			log_warn("agentlog: %s", l->path);
	}
	free(old);
	l->cur = 0;
}

void
agentlog_add(int64_t id, int turn, const char *p, size_t n)
{
	struct alog	*l;
	struct stat	 st;
	char		*old;

	if (logs_dir == NULL || log_cap == 0 || n == 0)
		return;
	l = alog_get(id, turn);
	if (l->cur + n > log_cap / 2 && l->cur > 0)
		rotate(l);
	if (n > log_cap / 2) {
		/*
		 * One read larger than half the cap: its end is what counts,
		 * and what this turn wrote before it is older than what it
		 * drops: kept beside it, the log would have a gap (its first
		 * line, then the read's end).  The .old stays, empty, to say
		 * that earlier output was dropped.
		 */
		p += n - log_cap / 2;
		n = log_cap / 2;
		old = xasprintf("%s/%d.old", l->dir, turn);
		if (stat(old, &st) == 0)
			l->total -= (size_t)st.st_size < l->total ?
			    (size_t)st.st_size : l->total;
		if (truncate(old, 0) == -1 && errno == ENOENT) {
			int fd = open(old, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

			if (fd != -1)
				close(fd);
		}
		free(old);
		drop_earlier_turns(l);
	}
	l->cur += n;
	l->total += n;
	if (l->pend.len + n >= FLUSH_BYTES) {
		/* A large read goes out as it is, after what is pending. */
		alog_flush(l);
		alog_write(l, p, n);
	} else {
		buf_add(&l->pend, p, n);
		if (now_ms() - l->flushed_ms >= FLUSH_MS)
			alog_flush(l);
		else if (flush_timer == NULL)
			flush_timer = loop_timer_once(FLUSH_MS, flush_due, NULL);
	}
	trim(l, l->dir);
}

void
agentlog_flush(int64_t id)
{
	struct alog	*l;

	if ((l = alog_find(id)) != NULL)
		alog_flush(l);
}

char *
agentlog_read(int64_t id, size_t *len)
{
	struct afile	*v;
	struct buf	 b = { 0 };
	char		*dir, *path, chunk[65536];
	size_t		 n, i;
	ssize_t		 r;
	int		 fd, last = -1;

	*len = 0;
	if (logs_dir == NULL)
		return NULL;
	agentlog_flush(id);
	dir = xasprintf("%s/%" PRId64, logs_dir, id);
	v = afiles(dir, &n);
	for (i = 0; i < n; i++) {
		if (v[i].turn != last) {
			buf_printf(&b, "%s=== turn %d%s ===\n", b.len ? "\n" : "",
			    v[i].turn + 1, i == 0 && v[i].old ?
			    " (earlier output dropped)" : "");
			last = v[i].turn;
		}
		path = xasprintf("%s/%s", dir, v[i].name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
			while ((r = read(fd, chunk, sizeof chunk)) > 0)
				buf_add(&b, chunk, (size_t)r);
			close(fd);
		}
		free(path);
	}
	afiles_free(v, n);
	free(dir);
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return buf_steal(&b);
}

void
agentlog_forget(int64_t id)
{
	struct alog	**pp, *l;

	for (pp = &alogs; (l = *pp) != NULL; pp = &l->next)
		if (l->id == id) {
			*pp = l->next;
			alog_free(l);
			return;
		}
}

void
agentlog_free_all(void)
{
	struct alog	*l;

	loop_timer_cancel(flush_timer);
	flush_timer = NULL;
	while ((l = alogs) != NULL) {
		alogs = l->next;
		alog_free(l);
	}
	free(logs_dir);
	logs_dir = NULL;
}
