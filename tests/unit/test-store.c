#include "bot/store.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static char	 tmpdir[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

static void
tmp_cleanup(void)
{
	store_close();
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

/* A fresh directory per test; the previous one (even a failed test's) goes. */
static const char *
tmp_fresh(void)
{
	tmp_cleanup();
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sb-store.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	return tmpdir;
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *
query_str(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	char		*v = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = store_col_text(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* A second, independent connection: sees only what is committed. */
static int64_t
peek_int(const char *state, const char *sql)
{
	sqlite3	*other;
	char	*path;
	int64_t	 v;

	path = xasprintf("%s/switchboard.db", state);
	if (sqlite3_open_v2(path, &other, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		v = -3;
	else
		v = query_int(other, sql);
	sqlite3_close(other);
	free(path);
	return v;
}

TEST(store_open_creates_0700_dir_with_latest_schema_and_pragmas)
{
	char		*state, *cause = NULL, *mode;
	struct stat	 st;

	state = xasprintf("%s/a/state", tmp_fresh());
	CHECK(store_open(state, &cause) == 0);
	CHECK(cause == NULL);
	CHECK(stat(state, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_INT(st.st_mode & 07777, 0700);
	CHECK_INT(store_schema_version(), store_schema_latest());
	CHECK_INT(query_int(store_db(),
	    "SELECT version FROM schema_version"), store_schema_latest());
	CHECK_INT(query_int(store_db(), "SELECT count(*) FROM sqlite_master"
	    " WHERE name IN ('kv', 'seen_events', 'conversations', 'agents',"
	    " 'agents_status', 'questions', 'messages', 'outbox',"
	    " 'outbox_pending', 'inbox')"), 10);
	mode = query_str(store_db(), "PRAGMA journal_mode");
	CHECK_STR(mode, "wal");
	free(mode);
	/* NORMAL: store.c's WAL hook syncs each commit, as FULL would. */
	CHECK_INT(query_int(store_db(), "PRAGMA synchronous"), 1);
	CHECK_INT(query_int(store_db(), "PRAGMA foreign_keys"), 1);
	CHECK_INT(query_int(store_db(), "PRAGMA busy_timeout"), 5000);
	free(state);
	tmp_cleanup();
}

TEST(store_reopen_is_a_noop_migration_and_keeps_data)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL, *v;

	CHECK(store_open(state, &cause) == 0);
	CHECK(store_kv_set("sync", "s1") == 0);
	store_close();
	CHECK(store_db() == NULL);
	CHECK(store_open(state, &cause) == 0);
	CHECK_INT(store_schema_version(), store_schema_latest());
	CHECK_INT(query_int(store_db(), "SELECT count(*) FROM schema_version"), 1);
	v = store_kv_get("sync");
	CHECK_STR(v, "s1");
	free(v);
	tmp_cleanup();
}

TEST(store_kv_get_set_overwrite_and_missing_is_null)
{
	char	*cause = NULL, *v;

	CHECK(store_open(tmp_fresh(), &cause) == 0);
	CHECK(store_kv_get("nope") == NULL);
	CHECK(store_kv_set("k", "one") == 0);
	v = store_kv_get("k");
	CHECK_STR(v, "one");
	free(v);
	CHECK(store_kv_set("k", "two") == 0);
	v = store_kv_get("k");
	CHECK_STR(v, "two");
	free(v);
	CHECK_INT(query_int(store_db(), "SELECT count(*) FROM kv"), 1);
	/* NOT NULL: a NULL value is refused, not stored. */
	CHECK(store_kv_set("k", NULL) == -1);
	tmp_cleanup();
}

TEST(store_seen_add_is_new_once_until_it_expires)
{
	char	*cause = NULL;

	CHECK(store_open(tmp_fresh(), &cause) == 0);
	CHECK_INT(store_seen_add("slack", "Ev1", 3600), 1);
	CHECK_INT(store_seen_add("slack", "Ev1", 3600), 0);
	/* Same id from another source is a different event. */
	CHECK_INT(store_seen_add("matrix", "Ev1", 3600), 1);
	/* Force expiry: the row counts as new again and is refreshed. */
	CHECK(store_exec("UPDATE seen_events SET expires_at = 1"
	    " WHERE source = 'slack'") == 0);
	CHECK_INT(store_seen_add("slack", "Ev1", 3600), 1);
	CHECK(query_int(store_db(), "SELECT expires_at FROM seen_events"
	    " WHERE source = 'slack'") >= wall_s() + 3500);
	CHECK_INT(store_seen_add("slack", "Ev1", 3600), 0);
	/* expire deletes only expired rows. */
	CHECK_INT(store_seen_add("slack", "old", -10), 1);
	CHECK_INT(store_seen_expire(), 1);
	CHECK_INT(query_int(store_db(), "SELECT count(*) FROM seen_events"), 2);
	CHECK_INT(store_seen_expire(), 0);
	tmp_cleanup();
}

TEST(store_nested_commit_only_outermost_commits)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL;

	CHECK(store_open(state, &cause) == 0);
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("a", "1") == 0);
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("b", "2") == 0);
	CHECK(store_commit() == 0);
	/* Inner commit did not reach the database. */
	CHECK_INT(peek_int(state, "SELECT count(*) FROM kv"), 0);
	CHECK(store_commit() == 0);
	CHECK_INT(peek_int(state, "SELECT count(*) FROM kv"), 2);
	CHECK(sqlite3_get_autocommit(store_db()));
	/* Unbalanced commit is refused. */
	CHECK(store_commit() == -1);
	tmp_cleanup();
}

/*
 * Counts syncs of WAL files: the default VFS with each WAL file's xSync
 * wrapped (the file object stays the default VFS's own).
 */
static sqlite3_vfs		 count_vfs, *real_vfs;
static sqlite3_io_methods	 count_methods;
static const sqlite3_io_methods	*real_methods;
static int			 wal_syncs;

static int
count_sync(sqlite3_file *f, int flags)
{
	wal_syncs++;
	return real_methods->xSync(f, flags);
}

static int
count_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags,
    int *out)
{
	int	 rc;

	rc = real_vfs->xOpen(real_vfs, name, f, flags, out);
	if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && f->pMethods != NULL) {
		if (real_methods == NULL) {
			real_methods = f->pMethods;
			count_methods = *f->pMethods;
			count_methods.xSync = count_sync;
		}
		if (f->pMethods == real_methods)
			f->pMethods = &count_methods;
	}
	return rc;
}

/* Statements a transaction runs, by SQLite's trace. */
static int	 nstmts;

static int
count_stmts(unsigned type, void *arg, void *p, void *x)
{
	nstmts++;
	return 0;
}

TEST(store_commits_are_synced_but_a_lazy_one_without_a_pragma)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL;

	real_vfs = sqlite3_vfs_find(NULL);
	count_vfs = *real_vfs;
	count_vfs.zName = "sb-count-syncs";
	count_vfs.xOpen = count_open;
	CHECK(sqlite3_vfs_register(&count_vfs, 1) == SQLITE_OK);
	CHECK(store_open(state, &cause) == 0);
	CHECK(real_methods != NULL);	/* the WAL went through count_open */

	/* A transaction: synced before store_commit returns. */
	wal_syncs = 0;
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("a", "1") == 0);
	CHECK_INT(wal_syncs, 0);
	CHECK(store_commit() == 0);
	CHECK_INT(wal_syncs, 1);
	/* A write outside one: synced before it returns. */
	CHECK(store_kv_set("b", "1") == 0);
	CHECK_INT(wal_syncs, 2);

	/* Lazy: committed, not synced, and nothing but BEGIN/write/COMMIT. */
	sqlite3_trace_v2(store_db(), SQLITE_TRACE_STMT, count_stmts, NULL);
	nstmts = 0;
	CHECK(store_begin_lazy() == 0);
	CHECK(store_kv_set("c", "1") == 0);
	CHECK(store_commit() == 0);
	CHECK_INT(nstmts, 3);
	sqlite3_trace_v2(store_db(), 0, NULL, NULL);
	CHECK_INT(wal_syncs, 2);
	CHECK_INT(peek_int(state, "SELECT count(*) FROM kv"), 3);
	/* The next commit, whatever its kind, is synced again. */
	CHECK(store_kv_set("d", "1") == 0);
	CHECK_INT(wal_syncs, 3);
	CHECK(store_begin_lazy() == 0);
	CHECK(store_kv_set("e", "2") == 0);
	store_rollback();
	CHECK_INT(peek_int(state, "SELECT count(*) FROM kv"), 4);
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("e", "3") == 0);
	CHECK(store_commit() == 0);
	CHECK_INT(wal_syncs, 4);
	/* Nested in a full transaction it is a plain begin... */
	CHECK(store_begin() == 0);
	CHECK(store_begin_lazy() == 0);
	CHECK(store_kv_set("f", "1") == 0);
	CHECK(store_commit() == 0);
	CHECK(store_commit() == 0);
	CHECK_INT(wal_syncs, 5);
	/* ... and durable work nested in a lazy one makes the whole durable. */
	CHECK(store_begin_lazy() == 0);
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("g", "1") == 0);
	CHECK(store_commit() == 0);
	CHECK(store_commit() == 0);
	CHECK_INT(wal_syncs, 6);
	CHECK_INT(peek_int(state, "SELECT count(*) FROM kv"), 7);
	tmp_cleanup();
	sqlite3_vfs_unregister(&count_vfs);
}

TEST(store_nested_rollback_undoes_outer_and_fails_outer_commit)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL;

	CHECK(store_open(state, &cause) == 0);
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("a", "1") == 0);
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("b", "2") == 0);
	store_rollback();
	CHECK(sqlite3_get_autocommit(store_db()));
	/* No new nested work inside a doomed transaction. */
	CHECK(store_begin() == -1);
	CHECK(store_commit() == -1);
	CHECK_INT(query_int(store_db(), "SELECT count(*) FROM kv"), 0);
	/* State is clean afterwards: a new transaction works. */
	CHECK(store_begin() == 0);
	CHECK(store_kv_set("c", "3") == 0);
	CHECK(store_commit() == 0);
	CHECK_INT(peek_int(state, "SELECT count(*) FROM kv"), 1);
	/* Outer rollback after inner rollback is harmless. */
	CHECK(store_begin() == 0);
	CHECK(store_begin() == 0);
	store_rollback();
	store_rollback();
	CHECK(store_begin() == 0);
	CHECK(store_commit() == 0);
	tmp_cleanup();
}

static char	 hook_log[64];

static void
hook_c(void *arg)
{
	strcat(hook_log, "c");
	strcat(hook_log, arg);
}

static void
hook_r(void *arg)
{
	strcat(hook_log, "r");
	strcat(hook_log, arg);
}

TEST(store_hooks_follow_the_outermost_transaction)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL;

	CHECK(store_open(state, &cause) == 0);
	/* Outside a transaction: commit at once, rollback never. */
	hook_log[0] = '\0';
	store_hook(hook_c, hook_r, "0");
	CHECK_STR(hook_log, "c0");
	/* Commit hooks in order, after the outermost commit only. */
	hook_log[0] = '\0';
	CHECK(store_begin() == 0);
	store_hook(hook_c, hook_r, "1");
	CHECK(store_begin() == 0);
	store_hook(hook_c, hook_r, "2");
	CHECK(store_commit() == 0);
	CHECK_STR(hook_log, "");
	CHECK(store_commit() == 0);
	CHECK_STR(hook_log, "c1c2");
	/* A nested rollback: rollback hooks newest first, at the end. */
	hook_log[0] = '\0';
	CHECK(store_begin() == 0);
	store_hook(hook_c, hook_r, "1");
	CHECK(store_begin() == 0);
	store_hook(NULL, hook_r, "2");
	store_rollback();
	CHECK_STR(hook_log, "");
	CHECK(store_commit() == -1);
	CHECK_STR(hook_log, "r2r1");
	/* A COMMIT that fails (a deferred foreign key): rollback hooks. */
	CHECK(store_exec("CREATE TABLE p (id INTEGER PRIMARY KEY);"
	    "CREATE TABLE ch (x INTEGER REFERENCES p(id)"
	    " DEFERRABLE INITIALLY DEFERRED)") == 0);
	hook_log[0] = '\0';
	CHECK(store_begin() == 0);
	CHECK(store_exec("INSERT INTO ch VALUES (7)") == 0);
	store_hook(hook_c, hook_r, "3");
	CHECK(store_commit() == -1);
	CHECK_STR(hook_log, "r3");
	CHECK(sqlite3_get_autocommit(store_db()));
	CHECK_INT(query_int(store_db(), "SELECT count(*) FROM ch"), 0);
	tmp_cleanup();
}

TEST(store_stmt_cache_returns_same_statement_reset)
{
	sqlite3_stmt	*st, *st2;
	char		*cause = NULL, *v;
	const char	*sql = "SELECT key FROM kv WHERE key >= ?1 ORDER BY key";

	CHECK(store_open(tmp_fresh(), &cause) == 0);
	CHECK(store_kv_set("a", "1") == 0);
	CHECK(store_kv_set("b", "2") == 0);
	st = store_stmt(sql);
	store_bind_text(st, 1, "a");
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);	/* left mid-rows */
	st2 = store_stmt(sql);
	CHECK(st2 == st);
	store_bind_text(st2, 1, "b");
	CHECK_INT(sqlite3_step(st2), SQLITE_ROW);	/* starts over */
	v = store_col_text(st2, 0);
	CHECK_STR(v, "b");
	free(v);
	st2 = store_stmt(sql);
	store_bind_text(st2, 1, "a");
	CHECK_INT(sqlite3_step(st2), SQLITE_ROW);	/* starts over */
	v = store_col_text(st2, 0);
	CHECK_STR(v, "a");
	free(v);
	sqlite3_reset(st2);
	CHECK(store_stmt("SELECT 1") != st);
	tmp_cleanup();
}

TEST(store_refuses_database_newer_than_binary)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL;

	CHECK(store_open(state, &cause) == 0);
	CHECK(store_exec("UPDATE schema_version SET version = 1000") == 0);
	store_close();
	CHECK(store_open(state, &cause) == -1);
	CHECK(cause != NULL);
	CHECK(strstr(cause, "1000") != NULL);
	CHECK(strstr(cause, "newer") != NULL);
	CHECK(strstr(cause, state) != NULL);
	CHECK(store_db() == NULL);
	CHECK_INT(store_schema_version(), -1);
	free(cause);
	/* Refusing did not touch it. */
	CHECK_INT(peek_int(state, "SELECT version FROM schema_version"), 1000);
	tmp_cleanup();
}

TEST(store_failed_migration_leaves_old_version_and_no_partial_schema)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL, *path;
	sqlite3		*db;

	/* A version-0 database where migration 1 breaks half-way (outbox). */
	path = xasprintf("%s/switchboard.db", state);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE schema_version"
	    " (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);"
	    "CREATE TABLE outbox (x)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	free(path);
	CHECK(store_open(state, &cause) == -1);
	CHECK(cause != NULL);
	CHECK(strstr(cause, "outbox") != NULL);
	free(cause);
	CHECK_INT(peek_int(state, "SELECT version FROM schema_version"), 0);
	/* kv was created earlier in the same migration; it must be gone. */
	CHECK_INT(peek_int(state, "SELECT count(*) FROM sqlite_master"
	    " WHERE name = 'kv'"), 0);
	tmp_cleanup();
}

TEST(store_unusable_state_dir_fails_naming_the_path)
{
	char	*file, *state, *cause = NULL;
	int	 fd;

	file = xasprintf("%s/plain-file", tmp_fresh());
	CHECK((fd = open(file, O_CREAT | O_WRONLY, 0600)) != -1);
	close(fd);
	state = xasprintf("%s/state", file);
	CHECK(store_open(state, &cause) == -1);
	CHECK(cause != NULL);
	CHECK(strstr(cause, state) != NULL);
	free(cause);
	cause = NULL;
	CHECK(store_db() == NULL);
	/* The state dir itself being a regular file. */
	CHECK(store_open(file, &cause) == -1);
	CHECK(cause != NULL);
	CHECK(strstr(cause, file) != NULL);
	CHECK(strstr(cause, "not a directory") != NULL);
	free(cause);
	free(state);
	free(file);
	tmp_cleanup();
}

#define CRASH_RUNS	5
#define BATCH_ROWS	50
#define MAX_BATCHES	100000

/*
 * The child writes batches until killed, reporting each batch number on fd
 * once its commit returned.  It must leave through _exit (never return into
 * the harness), and the parent has the store closed before fork because an
 * SQLite connection must not cross a fork.
 */
static void __attribute__((noreturn))
crash_child(const char *state, int run, int fd)
{
	sqlite3_stmt	*st;
	char		*cause = NULL, payload[32];
	int		 b, j;

	if (store_open(state, &cause) == -1)
		_exit(2);
	for (b = 0; b < MAX_BATCHES; b++) {
		snprintf(payload, sizeof payload, "%d.%d", run, b);
		if (store_begin() == -1)
			_exit(3);
		for (j = 0; j < BATCH_ROWS; j++) {
			st = store_stmt("INSERT INTO outbox (adapter, channel,"
			    " op, payload, created_at) VALUES ('console', 'c',"
			    " 'post', ?1, ?2)");
			store_bind_text(st, 1, payload);
			store_bind_int(st, 2, j);
			if (sqlite3_step(st) != SQLITE_DONE)
				_exit(4);
		}
		if (store_commit() == -1)
			_exit(5);
		if (write(fd, &b, sizeof b) != sizeof b)
			_exit(6);
	}
	_exit(7);
}

TEST(store_kill9_mid_batch_leaves_every_batch_whole_or_absent)
{
	const char	*state = tmp_fresh();
	char		*cause = NULL, *ok;
	int		 last[CRASH_RUNS], fds[2], run, b, status, r, n;
	unsigned char	*present[CRASH_RUNS];
	sqlite3_stmt	*st;
	pid_t		 pid;
	ssize_t		 got;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	/* Create the schema first so children race only on batches. */
	CHECK(store_open(state, &cause) == 0);
	store_close();
	for (run = 0; run < CRASH_RUNS; run++) {
		CHECK(pipe(fds) == 0);
		fflush(stdout);
		CHECK((pid = fork()) != -1);
		if (pid == 0) {
			close(fds[0]);
			crash_child(state, run, fds[1]);
		}
		close(fds[1]);
		/* Wait for one commit so the kill lands in steady writing. */
		got = read(fds[0], &b, sizeof b);
		last[run] = b;
		if (got == sizeof b)
			usleep(10000 + (useconds_t)(rand() % 50000));
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(got == sizeof b);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		while (read(fds[0], &b, sizeof b) == sizeof b)
			last[run] = b;
		close(fds[0]);
	}

	CHECK(store_open(state, &cause) == 0);
	st = store_stmt("PRAGMA integrity_check");
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	ok = store_col_text(st, 0);
	sqlite3_reset(st);
	CHECK_STR(ok, "ok");
	free(ok);

	for (run = 0; run < CRASH_RUNS; run++)
		present[run] = xcalloc((size_t)last[run] + 2, 1);
	st = store_stmt("SELECT payload, count(*) FROM outbox GROUP BY payload");
	n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		if (sscanf(p, "%d.%d", &r, &b) != 2 || r < 0 ||
		    r >= CRASH_RUNS || b < 0 || b > last[r] + 1) {
			printf("unexpected batch %s\n", p);
			n = -1;
			break;
		}
		if (sqlite3_column_int(st, 1) != BATCH_ROWS) {
			printf("partial batch %s: %d rows\n", p,
			    sqlite3_column_int(st, 1));
			n = -1;
			break;
		}
		present[r][b] = 1;
		n++;
	}
	sqlite3_reset(st);
	/* Every batch the child saw committed survived the kill. */
	for (run = 0; run < CRASH_RUNS && n >= 0; run++) {
		for (b = 0; b <= last[run]; b++) {
			if (!present[run][b]) {
				printf("committed batch %d.%d lost\n", run, b);
				n = -1;
				break;
			}
		}
	}
	for (run = 0; run < CRASH_RUNS; run++)
		free(present[run]);
	CHECK(n >= CRASH_RUNS);
	tmp_cleanup();
}

/*
 * Lookups whose table grows with history (bench/scale: 100,000 agents)
 * must not scan it: each, as its caller words it, has an index.
 */
TEST(store_history_lookups_do_not_scan_their_table)
{
	static const char *const sql[] = {
		/* outbox.c outbox_key_of: every event in an unknown thread */
		"SELECT key FROM messages WHERE adapter = ? AND channel = ? AND"
		" platform_ref = ?",
		/* question.c, web-api.c: an agent's questions */
		"SELECT id, text, status, answer, answered_by FROM questions"
		" WHERE agent_id = ? ORDER BY id",
		/* agent-restart.c, serve.c: open questions at start, /metrics */
		"SELECT count(*) FROM questions WHERE status = 'open'",
		"UPDATE questions SET status = 'cancelled', answered_by ="
		" 'restart' WHERE status = 'open'",
		/* merge.c: `merge #N`, `resolve #N`, and recovery at start */
		"SELECT status, detail, base FROM merges WHERE agent_id = ?"
		" ORDER BY id DESC LIMIT 1",
		"SELECT id, agent_id, repo, status FROM merges WHERE status IN"
		" ('merging', 'checking', 'landing') ORDER BY id",
		/* conversation.c, agent.c */
		"SELECT id FROM conversations WHERE adapter = ? AND channel = ?"
		" AND thread = ?",
		"SELECT id FROM agents WHERE conversation_id = ? ORDER BY id",
		"SELECT id FROM agents WHERE status IN ('queued', 'preparing',"
		" 'running', 'finishing')",
	};
	sqlite3_stmt	*st;
	char		*cause = NULL, *q;
	const char	*detail;
	size_t		 i;

	CHECK(store_open(tmp_fresh(), &cause) == 0);
	for (i = 0; i < nitems(sql); i++) {
		q = xasprintf("EXPLAIN QUERY PLAN %s", sql[i]);
		CHECK(sqlite3_prepare_v2(store_db(), q, -1, &st, NULL) ==
		    SQLITE_OK);
		free(q);
		while (sqlite3_step(st) == SQLITE_ROW) {
			detail = (const char *)sqlite3_column_text(st, 3);
			if (strncmp(detail, "SCAN", 4) == 0 &&
			    strstr(detail, " USING ") == NULL)
				printf("# %s: %s\n", detail, sql[i]);
			CHECK(strncmp(detail, "SCAN", 4) != 0 ||
			    strstr(detail, " USING ") != NULL);
		}
		sqlite3_finalize(st);
	}
	tmp_cleanup();
}

/*
 * The threadpool's checkpoint copies the WAL into the database.  Its
 * connection used to checkpoint before it had read anything, which SQLite
 * answers with SQLITE_OK and nothing done (it has not seen that the file
 * is in WAL mode): the database stayed one page, the WAL grew without end.
 */
TEST(store_checkpoint_job_copies_the_wal_into_the_database)
{
	const char	*dir = tmp_fresh();
	char		*cause = NULL, *db, key[32], val[3001];
	struct stat	 sb;
	uv_loop_t	 loop;
	int		 i;

	CHECK(uv_loop_init(&loop) == 0);
	CHECK(store_open(dir, &cause) == 0);
	store_checkpoints_on(&loop, dir);
	memset(val, 'x', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	/* One page or more per commit: past the 1,000 pages that start it. */
	for (i = 0; i < 1300; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK(store_begin() == 0);
		CHECK(store_kv_set(key, val) == 0);
		CHECK(store_commit() == 0);
	}
	CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);	/* the job and its end */
	db = xasprintf("%s/switchboard.db", dir);
	CHECK(stat(db, &sb) == 0);
	if (sb.st_size < 64 * 4096)
		fprintf(stderr, "database: %lld bytes\n", (long long)sb.st_size);
	CHECK(sb.st_size >= 64 * 4096);	/* was one page */
	free(db);
	store_close();
	CHECK(uv_loop_close(&loop) == 0);
	tmp_cleanup();
}

int
main(void)
{
	RUN(store_open_creates_0700_dir_with_latest_schema_and_pragmas);
	RUN(store_reopen_is_a_noop_migration_and_keeps_data);
	RUN(store_kv_get_set_overwrite_and_missing_is_null);
	RUN(store_seen_add_is_new_once_until_it_expires);
	RUN(store_nested_commit_only_outermost_commits);
	RUN(store_commits_are_synced_but_a_lazy_one_without_a_pragma);
	RUN(store_nested_rollback_undoes_outer_and_fails_outer_commit);
	RUN(store_hooks_follow_the_outermost_transaction);
	RUN(store_stmt_cache_returns_same_statement_reset);
	RUN(store_refuses_database_newer_than_binary);
	RUN(store_failed_migration_leaves_old_version_and_no_partial_schema);
	RUN(store_unusable_state_dir_fails_naming_the_path);
	RUN(store_kill9_mid_batch_leaves_every_batch_whole_or_absent);
	RUN(store_history_lookups_do_not_scan_their_table);
	RUN(store_checkpoint_job_copies_the_wal_into_the_database);
	tmp_cleanup();
	return t_done();
}
