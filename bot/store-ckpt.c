/*
 * store-ckpt — WAL checkpoints off the loop thread.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses 1,000
 * WAL pages: that commit (often an inbox commit an ack waits for) then also
 * copies the pages into the database and fsyncs it, milliseconds on a
 * virtual disk — the tail of the ack latency.  Here the commit hook only
 * notes the WAL's size and a threadpool job checkpoints through a
 * connection of its own (PASSIVE: it never blocks the loop's writers, and
 * pages a reader still needs wait for the next one).  Should the loop not
 * run jobs (no loop, or a stuck pool), a far larger WAL is checkpointed
 * inline as before.
 *
 * A PASSIVE checkpoint copies only what was committed when it began, and
 * the WAL starts over only after one that copied everything, so under
 * steady traffic the WAL stayed past the threshold and a job ran after
 * nearly every commit (one per two events in bench/acks, each opening a
 * connection, reading the schema and syncing the database: a tenth of
 * the daemon's CPU).  Now the job's connection stays open, and a new job
 * starts only once the WAL has grown by CKPT_STEP pages since the last
 * one started, or has started over since.
 */
#include "bot/store.h"
#include "bot/log.h"
#include "bot/util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <uv.h>

#define CKPT_PAGES	1000	/* SQLite's own default */
#define CKPT_STEP	128	/* pages committed between two jobs */
#define CKPT_INLINE	20000	/* the job has not kept up: inline */

static struct {
	uv_work_t	 work;
	uv_loop_t	*loop;
	char		*path;
	sqlite3		*conn;		/* the jobs', used by one at a time */
	int		 running;
	int		 started_at;	/* WAL pages when the last job began */
	int		 rc;
	int		 log, done;	/* frames in the WAL, copied */
} ck;

static void
ckpt_work(uv_work_t *w)
{
	ck.rc = SQLITE_OK;
	if (ck.conn == NULL) {
		ck.rc = sqlite3_open_v2(ck.path, &ck.conn,
		    SQLITE_OPEN_READWRITE, NULL);
		if (ck.rc == SQLITE_OK) {
			sqlite3_busy_timeout(ck.conn, 1000);
			/*
			 * A connection that has read nothing yet has not seen
			 * that the database is in WAL mode: its checkpoint is
			 * a no-op that returns SQLITE_OK with -1 frames.  One
			 * read first.
			 */
			ck.rc = sqlite3_exec(ck.conn, "PRAGMA schema_version",
			    NULL, NULL, NULL);
		}
		if (ck.rc != SQLITE_OK) {
			sqlite3_close_v2(ck.conn);
			ck.conn = NULL;
			return;
		}
	}
	ck.rc = sqlite3_wal_checkpoint_v2(ck.conn, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &ck.log, &ck.done);
	if (ck.rc == SQLITE_OK && ck.log < 0)
		ck.rc = SQLITE_NOTADB;	/* still not WAL: say so */
}

static void
ckpt_after(uv_work_t *w, int status)
{
	ck.running = 0;
	if (ck.rc != SQLITE_OK && ck.rc != SQLITE_BUSY)
		log_warnx("store: checkpoint: %s", sqlite3_errstr(ck.rc));
	else if (ck.rc == SQLITE_OK)
		log_debug("store: checkpoint: %d of %d WAL frames copied",
		    ck.done, ck.log);
}

static int
wal_hook(sqlite3 *db, const char *name, int pages)
{
	if (pages >= CKPT_INLINE) {
		(void)sqlite3_wal_checkpoint_v2(db, name,
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	if (pages < ck.started_at)	/* the WAL started over */
		ck.started_at = 0;
	if (pages < CKPT_PAGES || ck.running || ck.path == NULL ||
	    (ck.started_at > 0 && pages < ck.started_at + CKPT_STEP))
		return SQLITE_OK;
	ck.running = 1;
	ck.started_at = pages;
	if (uv_queue_work(ck.loop, &ck.work, ckpt_work, ckpt_after) != 0)
		ck.running = 0;
	return SQLITE_OK;
}

void
store_checkpoints_off(void)
{
	if (ck.running)		/* its loop still owes the job's end */
		log_warnx("store: closing during a checkpoint");
	else if (ck.conn != NULL)
		sqlite3_close_v2(ck.conn);
	ck.conn = NULL;
	free(ck.path);
	ck.path = NULL;
	ck.started_at = 0;
}

void
store_checkpoints_on(struct uv_loop_s *loop, const char *state_dir)
{
	if (store_db() == NULL)
		return;
	store_checkpoints_off();	/* a connection to an earlier path */
	ck.path = xasprintf("%s/switchboard.db", state_dir);
	ck.loop = loop;
	/* Instead of SQLite's automatic checkpoint (store.c's WAL hook). */
	store_wal_checkpoint_hook(wal_hook);
}
