/*
 * test-agentlog — a turn larger than half the cap keeps its newest output,
 * and rotating it reuses the two files' inodes instead of making new ones
 * (a new inode per rotation was most of the daemon's kernel time with many
 * streaming agents), keeping both open.
 */
#include "tests/unit/t.h"
#include "orchestrator/agentlog.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static char	 dir[] = "/tmp/sb-test-agentlog-XXXXXX";

static ino_t
ino(const char *name)
{
	struct stat	 st;
	char		*p = xasprintf("%s/logs/7/%s", dir, name);
	ino_t		 r = stat(p, &st) == 0 ? st.st_ino : 0;

	free(p);
	return r;
}

/* The file's whole text (NUL-terminated), or NULL. */
static char *
slurp(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "r");
	char	*p;

	if (f == NULL)
		return NULL;
	p = xcalloc(1, 4096);
	*len = fread(p, 1, 4095, f);
	fclose(f);
	return p;
}

TEST(agentlog_rotation_keeps_newest_and_reuses_inodes)
{
	struct stat	 st;
	char		 chunk[41], *text, *pa, *pb;
	size_t		 len;
	ino_t		 a, b;
	int		 i, fa, fb;

	CHECK(mkdtemp(dir) != NULL);
	agentlog_configure(dir, 200);
	for (i = 0; i < 6; i++) {	/* 240 bytes: one rotation */
		snprintf(chunk, sizeof chunk, "%039d\n", i);
		agentlog_add(7, 0, chunk, 40);
	}
	a = ino("0.log");
	b = ino("0.old");
	CHECK(a != 0 && b != 0);
	/* Held open, the two files must never be unlinked by a rotation. */
	pa = xasprintf("%s/logs/7/0.log", dir);
	pb = xasprintf("%s/logs/7/0.old", dir);
	fa = open(pa, O_RDONLY);
	fb = open(pb, O_RDONLY);
	CHECK(fa != -1 && fb != -1);
	for (; i < 30; i++) {		/* several more rotations */
		snprintf(chunk, sizeof chunk, "%039d\n", i);
		agentlog_add(7, 0, chunk, 40);
	}
	CHECK(ino("0.log") != 0 && ino("0.old") != 0);
	CHECK(fstat(fa, &st) == 0 && st.st_nlink == 1);
	CHECK(fstat(fb, &st) == 0 && st.st_nlink == 1);
	close(fa);
	close(fb);
	free(pa);
	free(pb);
	CHECK((ino("0.log") == a && ino("0.old") == b) ||
	    (ino("0.log") == b && ino("0.old") == a));
	text = agentlog_read(7, &len);
	CHECK(text != NULL);
	/* The newest line is there, the oldest dropped, nothing twice. */
	snprintf(chunk, sizeof chunk, "%039d\n", 29);
	CHECK(strstr(text, chunk) != NULL);
	snprintf(chunk, sizeof chunk, "%039d\n", 0);
	CHECK(strstr(text, chunk) == NULL);
	snprintf(chunk, sizeof chunk, "%039d\n", 28);
	CHECK(strstr(text, chunk) != NULL);
	CHECK(strstr(strstr(text, chunk) + 1, chunk) == NULL);
	CHECK(strstr(text, "earlier output dropped") != NULL);
	free(text);
	agentlog_free_all();
}

/* This process's descriptor open on the file, or -1. */
static int
fd_on(const char *name)
{
	struct stat	 st, fst;
	char		*p = xasprintf("%s/logs/6/%s", dir, name);
	int		 fd, r = -1;

	if (stat(p, &st) == 0)
		for (fd = 0; fd < 1024 && r == -1; fd++)
			if (fstat(fd, &fst) == 0 && fst.st_ino == st.st_ino &&
			    fst.st_dev == st.st_dev)
				r = fd;
	free(p);
	return r;
}

/*
 * Rotating closes neither file: closing one a truncate emptied makes ext4
 * allocate and write out its blocks at once (auto_da_alloc), most of the
 * daemon's system time with many streaming agents.  The same two
 * descriptors stay open on them, whichever name each has now.
 */
TEST(agentlog_rotation_keeps_both_files_open)
{
	char	 chunk[41];
	int	 i, a, b, rot;

	agentlog_configure(dir, 200);
	for (i = 0; i < 6; i++) {	/* 240 bytes: one rotation */
		snprintf(chunk, sizeof chunk, "%039d\n", i);
		agentlog_add(6, 0, chunk, 40);
	}
	agentlog_flush(6);
	a = fd_on("0.log");
	b = fd_on("0.old");
	CHECK(a != -1 && b != -1 && a != b);
	for (rot = 0; rot < 4; rot++) {
		for (; i < 6 + 3 * (rot + 1); i++) {	/* 120 bytes each */
			snprintf(chunk, sizeof chunk, "%039d\n", i);
			agentlog_add(6, 0, chunk, 40);
		}
		agentlog_flush(6);
		CHECK((fd_on("0.log") == a && fd_on("0.old") == b) ||
		    (fd_on("0.log") == b && fd_on("0.old") == a));
	}
	agentlog_free_all();
}

/*
 * A small read, then one larger than half the cap: the big read's end is
 * kept and nothing from before it (a gap: the first line, then the end).
 */
TEST(agentlog_a_huge_read_after_a_small_one_leaves_no_gap)
{
	char	 big[301], *text;
	size_t	 len;

	agentlog_configure(dir, 200);
	agentlog_add(9, 0, "older turn\n", 11);
	agentlog_add(9, 1, "first line\n", 11);
	memset(big, 'x', sizeof big - 1);
	memcpy(big + sizeof big - 5, "end\n", 4);
	agentlog_add(9, 1, big, sizeof big - 1);
	text = agentlog_read(9, &len);
	CHECK(text != NULL);
	CHECK(strstr(text, "first line") == NULL);
	CHECK(strstr(text, "older turn") == NULL);	/* older still */
	CHECK(strstr(text, "(earlier output dropped)") != NULL);
	CHECK(strstr(text, "xxxend\n") != NULL);
	free(text);
	agentlog_free_all();
}

/* An agent gone quiet: its last line reaches the disk without another. */
TEST(agentlog_writes_a_quiet_agents_last_line_within_the_flush_time)
{
	char		*path, *text;
	uint64_t	 t0;
	size_t		 len;

	agentlog_configure(dir, 1 << 20);
	agentlog_add(8, 0, "first\n", 6);
	agentlog_add(8, 0, "waiting\n", 8);	/* within FLUSH_MS: kept */
	path = xasprintf("%s/logs/8/0.log", dir);
	t0 = now_ms();
	text = NULL;
	while (now_ms() - t0 < 2000) {
		uv_run(loop_uv(), UV_RUN_ONCE);
		free(text);
		if ((text = slurp(path, &len)) != NULL &&
		    strstr(text, "waiting") != NULL)
			break;
	}
	CHECK(text != NULL && strstr(text, "first\nwaiting\n") != NULL);
	CHECK(now_ms() - t0 < 1000);
	free(text);
	free(path);
	agentlog_free_all();
}

int
main(void)
{
	char	*cmd;
	int	 rc;

	if (loop_init() < 0)
		return 1;
	RUN(agentlog_rotation_keeps_newest_and_reuses_inodes);
	RUN(agentlog_rotation_keeps_both_files_open);
	RUN(agentlog_a_huge_read_after_a_small_one_leaves_no_gap);
	RUN(agentlog_writes_a_quiet_agents_last_line_within_the_flush_time);
	loop_free();
	cmd = xasprintf("rm -rf %s", dir);
	rc = system(cmd);
	free(cmd);
	return rc == 0 ? t_done() : 1;
}
