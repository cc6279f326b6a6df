#include "bot/store.h"
#include "bot/log.h"
#include "bot/util.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/*
 * Migrations, oldest first.  Entry i takes the database from version i to
 * version i + 1.  Never edit a shipped entry: a database in the field has
 * already run it; append a new one instead.
 */
static const char *const migrations[] = {
	/* 1: the initial schema. */
	"CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE seen_events (source TEXT NOT NULL, event_id TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL, PRIMARY KEY (source, event_id));"
	"CREATE TABLE conversations (id INTEGER PRIMARY KEY,"
	"  adapter TEXT NOT NULL, channel TEXT NOT NULL, thread TEXT NOT NULL,"
	"  starter TEXT, repo TEXT, agent TEXT, brain_state TEXT,"
	"  refused INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
	"  UNIQUE (adapter, channel, thread));"
	"CREATE TABLE agents (id INTEGER PRIMARY KEY,"
	"  conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
	"  seq INTEGER NOT NULL, agent_name TEXT NOT NULL, driver TEXT NOT NULL,"
	"  task TEXT NOT NULL, repo TEXT, branch TEXT, worktree TEXT,"
	"  pid INTEGER, session_id TEXT, status TEXT NOT NULL,"
	"  exit_code INTEGER, summary TEXT, card_key TEXT,"
	"  created_at INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER);"
	"CREATE INDEX agents_status ON agents(status);"
	"CREATE TABLE questions (id INTEGER PRIMARY KEY,"
	"  agent_id INTEGER NOT NULL REFERENCES agents(id),"
	"  text TEXT NOT NULL, choices TEXT, msg_key TEXT, status TEXT NOT NULL,"
	"  answer TEXT, answered_by TEXT, created_at INTEGER NOT NULL,"
	"  answered_at INTEGER);"
	/* Our message key -> platform message id once sent. */
	"CREATE TABLE messages (key TEXT PRIMARY KEY, adapter TEXT NOT NULL,"
	"  channel TEXT NOT NULL, thread TEXT, platform_ref TEXT);"
	"CREATE TABLE outbox (id INTEGER PRIMARY KEY, adapter TEXT NOT NULL,"
	"  channel TEXT NOT NULL, thread TEXT, op TEXT NOT NULL, msg_key TEXT,"
	"  payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  not_before INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	"  created_at INTEGER NOT NULL, sent_at INTEGER);"
	"CREATE INDEX outbox_pending ON outbox(status, adapter, channel, id);",
	/* 2: a thread's agents are listed from the store, not from memory. */
	"CREATE INDEX agents_conversation ON agents(conversation_id, id);",
	/*
	 * 3: LLM brains (orchestrator/transcript.c): which brain a conversation
	 * talks to, its transcript, what waits for the next turn, and each
	 * turn's accounting (a turn still 'running' at start was cut by a
	 * crash).
	 */
	"CREATE TABLE brain_conversations (conversation_id INTEGER PRIMARY KEY,"
	"  brain TEXT NOT NULL);"
	"CREATE TABLE brain_transcript (id INTEGER PRIMARY KEY,"
	"  conversation_id INTEGER NOT NULL, kind TEXT NOT NULL,"
	"  body TEXT NOT NULL, tokens INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX brain_transcript_conv ON brain_transcript(conversation_id, id);"
	"CREATE TABLE brain_inbox (id INTEGER PRIMARY KEY,"
	"  conversation_id INTEGER NOT NULL, kind TEXT NOT NULL,"
	"  body TEXT NOT NULL, by TEXT, wakes INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE brain_turns (id INTEGER PRIMARY KEY,"
	"  conversation_id INTEGER NOT NULL, brain TEXT NOT NULL, by TEXT,"
	"  acts INTEGER NOT NULL, status TEXT NOT NULL,"
	"  rounds INTEGER NOT NULL DEFAULT 0,"
	"  tokens_in INTEGER NOT NULL DEFAULT 0,"
	"  tokens_out INTEGER NOT NULL DEFAULT 0,"
	"  cost_usd REAL NOT NULL DEFAULT 0, model_ms REAL NOT NULL DEFAULT 0,"
	"  own_ms REAL NOT NULL DEFAULT 0, error TEXT,"
	"  started_at INTEGER NOT NULL, ended_at INTEGER);"
	"CREATE INDEX brain_turns_day ON brain_turns(brain, started_at);"
	"CREATE INDEX brain_turns_status ON brain_turns(status);",
	/* 4: the merge queue (orchestrator/merge.c), one row per `merge #N`. */
	"CREATE TABLE merges (id INTEGER PRIMARY KEY,"
	"  agent_id INTEGER NOT NULL, repo TEXT NOT NULL, branch TEXT NOT NULL,"
	"  base TEXT NOT NULL, status TEXT NOT NULL, base_oid TEXT,"
	"  merged_oid TEXT, detail TEXT, requested_by TEXT,"
	"  created_at INTEGER NOT NULL, updated_at INTEGER);"
	"CREATE INDEX merges_queue ON merges(repo, status, id);",
	/*
	 * 5: the inbox (orchestrator/inbox.c): inbound events recorded before
	 * they are acked, deleted in the transaction that does their work.
	 */
	"CREATE TABLE inbox (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
	"  payload TEXT NOT NULL, created_at INTEGER NOT NULL);",
	/*
	 * 6: what an agent loaded after a restart still knows:
	 * the signal that ended its last turn and what its driver reported
	 * it cost (NULL: unknown).
	 */
	"ALTER TABLE agents ADD COLUMN term_signal INTEGER;"
	"ALTER TABLE agents ADD COLUMN cost_usd REAL;",
	/*
	 * 7: flat at scale (bench/scale, 100,000 agents): lookups that
	 * scanned a table growing with history.  A message by its platform id
	 * (every event in a thread we do not know yet: is it a root we
	 * posted?), an agent's questions (web pages), the open questions
	 * (start, /metrics), an agent's merges (`merge #N`) and the unfinished
	 * ones (start).
	 */
	"CREATE INDEX messages_ref ON messages(platform_ref);"
	"CREATE INDEX questions_agent ON questions(agent_id, id);"
	"CREATE INDEX questions_status ON questions(status);"
	"CREATE INDEX merges_agent ON merges(agent_id, id);"
	"CREATE INDEX merges_status ON merges(status);",
};

#define STMT_BUCKETS	64
#define AUTOCHECKPOINT_PAGES	1000	/* SQLite's wal_autocheckpoint default */

struct cached_stmt {
	char			*sql;
	sqlite3_stmt		*stmt;
	struct cached_stmt	*next;
};

static sqlite3			*db;
static int			 schema_version = -1;
static struct cached_stmt	*stmt_cache[STMT_BUCKETS];
static int			 tx_depth;
/* A nested rollback already rolled back the outermost transaction. */
static int			 tx_doomed;

/* store_hook(): what the outermost transaction's end runs. */
struct tx_hook {
	void		(*commit)(void *);
	void		(*rollback)(void *);
	void		*arg;
};
static struct tx_hook		*hooks;
static size_t			 nhooks, hooks_cap;

static void	run_hooks(int);

static int
mkdir_p(const char *path, char **cause)
{
	char		*p, *s;
	struct stat	 st;
	int		 rc = -1;

	if (*path == '\0') {
		*cause = xstrdup("state dir: empty path");
		return -1;
	}
	p = xstrdup(path);
	/* Walk every prefix so "a/b/c" works when only "a" exists. */
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			*cause = xasprintf("state dir %s: cannot create %s: %s",
			    path, p, strerror(errno));
			goto out;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(path, &st) == -1) {
		*cause = xasprintf("state dir %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		*cause = xasprintf("state dir %s: not a directory", path);
		goto out;
	}
	/* SQLite needs to create -wal and -shm next to the database. */
	if (access(path, R_OK | W_OK | X_OK) == -1) {
		*cause = xasprintf("state dir %s: not readable and writable: %s",
		    path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* One-row result of a PRAGMA or query as text (malloc'd), or NULL. */
static char *
query_text(const char *sql)
{
	sqlite3_stmt	*st;
	char		*out = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		out = store_col_text(st, 0);
	sqlite3_finalize(st);
	return out;
}

static int
exec_cause(const char *sql, const char *dbpath, char **cause)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
		return 0;
	*cause = xasprintf("%s: %s", dbpath,
	    err != NULL ? err : sqlite3_errmsg(db));
	sqlite3_free(err);
	return -1;
}

/*
 * Each step runs under BEGIN IMMEDIATE and re-reads the version inside the
 * transaction, so a second process opening the same database at the same
 * time waits (busy_timeout) and then sees the migration as done rather than
 * running it twice.  The version bump commits with the migration's DDL, so
 * a crash part-way leaves the database exactly at the old version.
 */
static int
migrate(const char *dbpath, char **cause)
{
	char	*v;
	int	 version, latest = (int)nitems(migrations);

	for (;;) {
		if (exec_cause("BEGIN IMMEDIATE;"
		    "CREATE TABLE IF NOT EXISTS schema_version"
		    " (version INTEGER NOT NULL);"
		    "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS"
		    " (SELECT 1 FROM schema_version);", dbpath, cause) == -1)
			goto fail;
		if ((v = query_text("SELECT max(version) FROM schema_version"))
		    == NULL) {
			*cause = xasprintf("%s: cannot read schema_version: %s",
			    dbpath, sqlite3_errmsg(db));
			goto fail;
		}
		version = atoi(v);
		free(v);
		if (version > latest) {
			*cause = xasprintf("%s: schema version %d is newer than "
			    "this binary supports (%d); refusing to open it "
			    "(was a newer switchboard run here?)", dbpath,
			    version, latest);
			goto fail;
		}
		if (version == latest)
			break;
		log_info("store: migrating %s to schema version %d", dbpath,
		    version + 1);
		if (exec_cause(migrations[version], dbpath, cause) == -1)
			goto fail;
		char *bump = xasprintf("UPDATE schema_version SET version = %d",
		    version + 1);
		int rc = exec_cause(bump, dbpath, cause);
		free(bump);
		if (rc == -1 || exec_cause("COMMIT", dbpath, cause) == -1)
			goto fail;
	}
	if (exec_cause("COMMIT", dbpath, cause) == -1)
		goto fail;
	schema_version = version;
	return 0;
fail:
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Durability without toggling PRAGMA synchronous per transaction (two
 * statements around every lazy commit, each parsed again: 3 % of a command
 * event).  SQLite's docs: in WAL mode, FULL is NORMAL plus a sync of the
 * log after each commit.  The connection stays at NORMAL and this WAL hook,
 * which SQLite calls after every commit that wrote to the log (a COMMIT
 * and an autocommit statement alike, before sqlite3_step returns), does
 * that sync itself, for every commit but a lazy one (store_begin_lazy).
 * So store_commit() and a write outside a transaction return only once
 * they are on disk, as under FULL.  A sync that fails leaves a commit that
 * happened but may not survive a power cut: neither "committed" (it may
 * vanish) nor "rolled back" (it is visible) is true, so we stop, and the
 * restart reads what the disk has.
 */
static int	 tx_lazy;	/* the open transaction is store_begin_lazy's */
static int	 (*ckpt_hook)(sqlite3 *, const char *, int);

static int
wal_commit(void *arg, sqlite3 *h, const char *name, int pages)
{
	sqlite3_file	*f = NULL;
	int		 rc;

	if (!tx_lazy) {
		rc = sqlite3_file_control(h, name, SQLITE_FCNTL_JOURNAL_POINTER,
		    &f);
		if (rc == SQLITE_OK && (f == NULL || f->pMethods == NULL))
			rc = SQLITE_IOERR_FSYNC;
		if (rc == SQLITE_OK)
			rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
		if (rc != SQLITE_OK)
			fatalx("store: cannot sync the WAL after a commit: %s",
			    sqlite3_errstr(rc));
	}
	if (ckpt_hook != NULL)
		return ckpt_hook(h, name, pages);
	/* SQLite's own automatic checkpoint, which this hook replaces. */
	if (pages >= AUTOCHECKPOINT_PAGES)
		(void)sqlite3_wal_checkpoint(h, name);
	return SQLITE_OK;
}

void
store_wal_checkpoint_hook(int (*hook)(sqlite3 *, const char *, int))
{
	ckpt_hook = hook;
}

int
store_open(const char *state_dir, char **cause)
{
	char	*dbpath = NULL, *mode = NULL;
	int	 rc;

	*cause = NULL;
	if (db != NULL) {
		*cause = xstrdup("store is already open");
		return -1;
	}
	if (mkdir_p(state_dir, cause) == -1)
		return -1;
	dbpath = xasprintf("%s/switchboard.db", state_dir);
	rc = sqlite3_open_v2(dbpath, &db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("%s: %s", dbpath, db != NULL ?
		    sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	/*
	 * busy_timeout first so that switching to WAL waits for another
	 * process instead of failing.  NORMAL, and wal_commit() syncs the
	 * log after every commit but a lazy one: a commit is on disk before
	 * we act on it (the outbox and seen rules depend on it), as FULL
	 * would have it.
	 */
	if (exec_cause("PRAGMA busy_timeout = 5000", dbpath, cause) == -1)
		goto fail;
	mode = query_text("PRAGMA journal_mode = WAL");
	if (mode == NULL || strcasecmp(mode, "wal") != 0) {
		*cause = xasprintf("%s: cannot enable WAL journal: %s", dbpath,
		    mode != NULL ? mode : sqlite3_errmsg(db));
		goto fail;
	}
	if (exec_cause("PRAGMA synchronous = NORMAL;"
	    "PRAGMA foreign_keys = ON", dbpath, cause) == -1)
		goto fail;
	sqlite3_wal_hook(db, wal_commit, NULL);
	if (migrate(dbpath, cause) == -1)
		goto fail;
	log_debug("store: %s open at schema version %d", dbpath,
	    schema_version);
	free(mode);
	free(dbpath);
	return 0;
fail:
	free(mode);
	free(dbpath);
	sqlite3_close_v2(db);
	db = NULL;
	schema_version = -1;
	return -1;
}

void
store_close(void)
{
	struct cached_stmt	*c;
	size_t			 i;

	if (db == NULL)
		return;
	if (tx_depth > 0) {
		log_warnx("store: closing inside a transaction (depth %d), "
		    "rolling back", tx_depth);
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	tx_depth = 0;
	tx_doomed = 0;
	tx_lazy = 0;
	ckpt_hook = NULL;
	store_checkpoints_off();
	run_hooks(0);
	for (i = 0; i < nitems(stmt_cache); i++) {
		while ((c = stmt_cache[i]) != NULL) {
			stmt_cache[i] = c->next;
			sqlite3_finalize(c->stmt);
			free(c->sql);
			free(c);
		}
	}
	/* _v2: a statement prepared outside the cache must not keep us open. */
	if (sqlite3_close_v2(db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(db));
	db = NULL;
	schema_version = -1;
}

sqlite3 *
store_db(void)
{
	return db;
}

int
store_schema_version(void)
{
	return schema_version;
}

int
store_schema_latest(void)
{
	return (int)nitems(migrations);
}

static unsigned
sql_hash(const char *s)
{
	unsigned	h = 2166136261u;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % STMT_BUCKETS;
}

/*
 * The cache hands out the same statement for the same text, so a caller
 * must finish with it (step to DONE or sqlite3_reset) before anything it
 * calls asks for that SQL again.  A statement left mid-rows also keeps a
 * read snapshot open, which stops WAL checkpoints.  Bindings are not
 * cleared (sqlite3_clear_bindings on every fetch was ~2 % of a command
 * event): every caller binds every parameter, as a new bind replaces the
 * old value anyway.
 */
sqlite3_stmt *
store_stmt(const char *sql)
{
	struct cached_stmt	*c;
	const char		*tail;
	unsigned		 h;

	if (db == NULL)
		fatalx("store: statement before store_open: %s", sql);
	h = sql_hash(sql);
	for (c = stmt_cache[h]; c != NULL; c = c->next) {
		if (strcmp(c->sql, sql) == 0) {
			sqlite3_reset(c->stmt);
			return c->stmt;
		}
	}
	c = xcalloc(1, sizeof *c);
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &c->stmt, &tail) != SQLITE_OK || c->stmt == NULL)
		fatalx("store: cannot prepare \"%s\": %s", sql,
		    sqlite3_errmsg(db));
	while (isspace((unsigned char)*tail) || *tail == ';')
		tail++;
	if (*tail != '\0')
		fatalx("store: more than one statement in \"%s\"", sql);
	c->sql = xstrdup(sql);
	c->next = stmt_cache[h];
	stmt_cache[h] = c;
	return c->stmt;
}

int
store_exec(const char *sql)
{
	char	*err = NULL;

	if (db == NULL)
		fatalx("store: exec before store_open: %s", sql);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("store: \"%s\": %s", sql,
		    err != NULL ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

void
store_hook(void (*commit)(void *), void (*rollback)(void *), void *arg)
{
	if (tx_depth == 0) {
		if (commit != NULL)
			commit(arg);
		return;
	}
	if (nhooks == hooks_cap) {
		hooks_cap = hooks_cap ? hooks_cap * 2 : 16;
		hooks = xrealloc(hooks, hooks_cap * sizeof *hooks);
	}
	hooks[nhooks].commit = commit;
	hooks[nhooks].rollback = rollback;
	hooks[nhooks].arg = arg;
	nhooks++;
}

int
store_in_transaction(void)
{
	return tx_depth > 0;
}

int
store_tx_lazy(void)
{
	return tx_depth > 0 && tx_lazy;
}

/*
 * The outermost transaction ended (tx_depth is 0 again): commit hooks in
 * order, or rollback hooks newest first.  Taken off the list before they
 * run, since a hook may start transactions (and hooks) of its own.
 */
static void
hooks_run(struct tx_hook *list, size_t n, int committed)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (committed && list[i].commit != NULL)
			list[i].commit(list[i].arg);
		else if (!committed && list[n - 1 - i].rollback != NULL)
			list[n - 1 - i].rollback(list[n - 1 - i].arg);
	}
	free(list);
}

static void
run_hooks(int committed)
{
	struct tx_hook	*list = hooks;
	size_t		 n = nhooks;

	hooks = NULL;
	nhooks = hooks_cap = 0;
	hooks_run(list, n, committed);
}

/* The commit hooks of a store_commit_held(), not run yet. */
struct store_held {
	struct tx_hook	*list;
	size_t		 n;
};

void
store_held_run(struct store_held *h)
{
	if (h == NULL)
		return;
	hooks_run(h->list, h->n, 1);
	free(h);
}

/*
 * BEGIN, COMMIT and ROLLBACK run per event, several times: as cached
 * statements they are not parsed again each time (sqlite3_exec was ~5 % of
 * a chat event's instructions).
 */
static void	 tx_end(void);

/* Why the last BEGIN/COMMIT failed: a ROLLBACK after it clears SQLite's. */
static char	 tx_error[200] = "no error";

static int
tx_exec(const char *sql)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = store_stmt(sql);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		snprintf(tx_error, sizeof tx_error, "%s", sqlite3_errmsg(db));
		log_warnx("store: \"%s\": %s", sql, tx_error);
		return -1;
	}
	return 0;
}

const char *
store_tx_error(void)
{
	return tx_error;
}

/*
 * IMMEDIATE takes the write lock up front: a deferred transaction that reads
 * and then writes can fail with SQLITE_BUSY at the write with no retry.
 */
int
store_begin(void)
{
	if (tx_depth > 0) {
		/* Work inside a doomed transaction would silently autocommit. */
		if (tx_doomed)
			return -1;
		tx_depth++;
		tx_lazy = 0;	/* durable work inside: the whole is durable */
		return 0;
	}
	if (tx_exec("BEGIN IMMEDIATE") == -1)
		return -1;
	tx_depth = 1;
	tx_doomed = 0;
	return 0;
}

/*
 * A transaction whose commit need not be on disk by itself: its WAL frames
 * are written without an fsync (wal_commit) and made durable by the next
 * full commit's fsync of the log (frames are checksummed in a chain, so a
 * synced later commit carries the earlier ones).  Safe against kill -9 (the
 * OS has the frames); a power loss can lose it, so it is only for what a
 * replay repeats harmlessly, like "this outbox row was sent" (the row's
 * idempotency key finds the message).  Nested in another transaction this
 * is a plain begin; a plain begin nested in it makes the whole durable.
 */
int
store_begin_lazy(void)
{
	if (tx_depth > 0) {
		if (tx_doomed)
			return -1;
		tx_depth++;
		return 0;
	}
	if (store_begin() == -1)
		return -1;
	tx_lazy = 1;
	return 0;
}

/* The outermost transaction ended: the next commit is fsynced again. */
static void
tx_end(void)
{
	tx_lazy = 0;
}

/*
 * held: NULL, or where the commit hooks of a successful outermost commit
 * go instead of running (store_commit_held).
 */
static int
commit(struct store_held **held)
{
	if (tx_depth == 0) {
		log_warnx("store: commit without a transaction");
		return -1;
	}
	if (--tx_depth > 0)
		return tx_doomed ? -1 : 0;
	if (tx_doomed) {
		tx_doomed = 0;
		snprintf(tx_error, sizeof tx_error, "a statement of the"
		    " transaction failed; it was rolled back");
		tx_end();
		run_hooks(0);
		return -1;
	}
	if (tx_exec("COMMIT") == -1) {
		/* Still open if COMMIT itself failed (e.g. I/O error). */
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		tx_end();
		run_hooks(0);
		return -1;
	}
	tx_end();
	if (held != NULL && nhooks > 0) {
		*held = xcalloc(1, sizeof **held);
		(*held)->list = hooks;
		(*held)->n = nhooks;
		hooks = NULL;
		nhooks = hooks_cap = 0;
	} else
		run_hooks(1);
	return 0;
}

int
store_commit(void)
{
	return commit(NULL);
}

int
store_commit_held(struct store_held **held)
{
	*held = NULL;
	return commit(held);
}

/*
 * SQLite has no cheap nested rollback that matches our counting, so any
 * rollback abandons the outermost transaction; the outer levels learn it
 * from their store_commit() returning -1.
 */
void
store_rollback(void)
{
	if (tx_depth == 0) {
		log_warnx("store: rollback without a transaction");
		return;
	}
	if (!tx_doomed) {
		/* SQLite may already have rolled back after an error. */
		if (!sqlite3_get_autocommit(db))
			(void)tx_exec("ROLLBACK");
		tx_doomed = 1;
	}
	if (--tx_depth == 0) {
		tx_doomed = 0;
		tx_end();
		run_hooks(0);
	}
}

char *
store_kv_get(const char *key)
{
	sqlite3_stmt	*st;
	char		*value = NULL;
	int		 rc;

	st = store_stmt("SELECT value FROM kv WHERE key = ?1");
	store_bind_text(st, 1, key);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		value = store_col_text(st, 0);
	else if (rc != SQLITE_DONE)
		log_warnx("store: kv get %s: %s", key, sqlite3_errmsg(db));
	sqlite3_reset(st);
	return value;
}

int
store_kv_set(const char *key, const char *value)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = store_stmt("INSERT INTO kv (key, value) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO UPDATE SET value = excluded.value");
	store_bind_text(st, 1, key);
	store_bind_text(st, 2, value);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("store: kv set %s: %s", key, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/*
 * One statement decides and records: the upsert only touches an existing
 * row when it has expired, so changes() is 1 exactly when the event is new
 * (or new again) and 0 when it is a live duplicate.
 */
int
store_seen_add(const char *source, const char *id, int64_t ttl_s)
{
	sqlite3_stmt	*st;
	int64_t		 now = wall_s();
	int		 rc;

	st = store_stmt("INSERT INTO seen_events (source, event_id, expires_at)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (source, event_id)"
	    " DO UPDATE SET expires_at = excluded.expires_at"
	    " WHERE seen_events.expires_at <= ?4");
	store_bind_text(st, 1, source);
	store_bind_text(st, 2, id);
	store_bind_int(st, 3, now + ttl_s);
	store_bind_int(st, 4, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("store: seen %s/%s: %s", source, id,
		    sqlite3_errmsg(db));
		return -1;
	}
	return sqlite3_changes(db) > 0 ? 1 : 0;
}

int
store_seen_expire(void)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = store_stmt("DELETE FROM seen_events WHERE expires_at <= ?1");
	store_bind_int(st, 1, wall_s());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("store: seen expire: %s", sqlite3_errmsg(db));
		return -1;
	}
	return sqlite3_changes(db);
}

/* A failed bind is a wrong index or a finalized statement: a bug. */
void
store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	int	rc;

	if (s == NULL)
		rc = sqlite3_bind_null(st, i);
	else
		rc = sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	if (rc != SQLITE_OK)
		fatalx("store: bind %d: %s", i, sqlite3_errstr(rc));
}

void
store_bind_int(sqlite3_stmt *st, int i, int64_t v)
{
	int	rc;

	if ((rc = sqlite3_bind_int64(st, i, v)) != SQLITE_OK)
		fatalx("store: bind %d: %s", i, sqlite3_errstr(rc));
}

char *
store_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char	*t;
	char			*out;
	int			 n;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(st, i);
	n = sqlite3_column_bytes(st, i);
	if (t == NULL)		/* out of memory inside SQLite */
		fatalx("store: column %d: out of memory", i);
	out = xmalloc((size_t)n + 1);
	memcpy(out, t, (size_t)n);
	out[n] = '\0';
	return out;
}
