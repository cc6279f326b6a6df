/*
 * test-agentlog — a turn larger than half the cap keeps its newest output,
 * and rotating it reuses the two files' inodes instead of making new ones
 * (a new inode per rotation was most of the daemon's kernel time with many
 * streaming agents).
 */
#include "tests/unit/t.h"
#include "orchestrator/agentlog.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

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

int
main(void)
{
	char	*cmd;
	int	 rc;

	RUN(agentlog_rotation_keeps_newest_and_reuses_inodes);
	cmd = xasprintf("rm -rf %s", dir);
	rc = system(cmd);
	free(cmd);
	return rc == 0 ? t_done() : 1;
}
