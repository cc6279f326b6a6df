/*
 * store — the durable state: one SQLite database (WAL) in state_dir.
 *
 * The schema lives here as an ordered list of migrations recorded in a
 * schema_version table; each runs in its own transaction, so a crash mid-way
 * leaves the previous version intact.  Modules own their SQL (conversation.c
 * queries conversations, outbox.c the outbox) through store_stmt(), which keeps
 * one prepared statement per SQL text for the life of the database.
 *
 * Durability rules the rest of the code relies on: an inbound event is recorded
 * (store_seen_add) before it is acted on; an outgoing message is in the outbox
 * before it is sent; every commit (store_commit, or a write outside a
 * transaction) is synced to disk before it returns, as synchronous=FULL in
 * WAL mode does, so it survives kill -9 and power loss; only a lazy one
 * (store_begin_lazy) waits for the next.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <sqlite3.h>
#include <stdint.h>

/* Opens (creating) state_dir/switchboard.db and migrates.  -1 with *cause. */
int		 store_open(const char *state_dir, char **cause);
void		 store_close(void);
/* WAL checkpoints on loop's threadpool instead of inside a commit. */
struct uv_loop_s;
void		 store_checkpoints_on(struct uv_loop_s *, const char *state_dir);
/* Closes the checkpoint jobs' connection (store_close does). */
void		 store_checkpoints_off(void);
/*
 * store-ckpt.c's: called after each commit (once synced) with the WAL's
 * size in pages, instead of SQLite's automatic checkpoint.  NULL: that.
 */
void		 store_wal_checkpoint_hook(int (*)(sqlite3 *, const char *,
		    int));
sqlite3		*store_db(void);
int		 store_schema_version(void);
/* The version the migrations of this build lead to. */
int		 store_schema_latest(void);

/*
 * Prepared statement for sql, cached; reset before it is returned, its
 * bindings those of its last use: bind every parameter, a NULL too
 * (store_bind_text with NULL).  Fatal on a SQL error (a programming error,
 * not bad input).
 * The same text yields the same statement, so finish with it (step to DONE
 * or sqlite3_reset) before code you call can ask for that SQL again.
 */
sqlite3_stmt	*store_stmt(const char *sql);
/* Executes sql without results (DDL, simple updates).  -1 on error, logged. */
int		 store_exec(const char *sql);

/*
 * Nested calls are counted; only the outermost BEGIN/COMMIT touches SQLite.
 * A rollback at any depth abandons the whole transaction: every enclosing
 * store_commit() then returns -1 and store_begin() refuses until it unwinds.
 */
int		 store_begin(void);
int		 store_commit(void);
/* Its commit is made durable by the next one (store.c: only for what a
 * replay repeats harmlessly). */
int		 store_begin_lazy(void);
void		 store_rollback(void);

/*
 * What must not outlive its transaction: in-memory state and side effects
 * (a process spawned, a timer started, a signal sent) of work whose rows
 * may yet be rolled back.  commit(arg) runs after the outermost transaction
 * commits; rollback(arg) instead, newest first, when it is abandoned (a
 * failed COMMIT too).  Each at most once; either may be NULL.  Outside a
 * transaction commit runs at once.
 */
void		 store_hook(void (*commit)(void *), void (*rollback)(void *),
		    void *arg);
/*
 * store_commit(), for a caller with something to do between the commit and
 * its commit hooks (the inbox sends the acks of what it committed before
 * what the work started, a turn's spawn or a post, goes): the outermost
 * commit's hooks are not run but returned in *held (NULL if none), for
 * store_held_run(), which runs them in order and frees *held.  A failed
 * commit runs the rollback hooks as store_commit() does.
 */
struct store_held;
int		 store_commit_held(struct store_held **held);
void		 store_held_run(struct store_held *);
int		 store_in_transaction(void);
/* 1 in a transaction whose commit will not be synced (store_begin_lazy). */
int		 store_tx_lazy(void);
/* Why the last transaction failed to begin or commit (SQLite's words). */
const char	*store_tx_error(void);

/* Key/value (sync tokens, device ids).  get returns malloc'd or NULL. */
char		*store_kv_get(const char *key);
int		 store_kv_set(const char *key, const char *value);

/*
 * Seen inbound events: 1 if (source, id) is new and now recorded, 0 if it
 * was seen already, -1 on error.  Entries expire after ttl_s seconds.
 */
int		 store_seen_add(const char *source, const char *id, int64_t ttl_s);
int		 store_seen_expire(void);	/* deletes expired; count or -1 */

/* Bind helpers: a NULL string binds SQL NULL.  Index is 1-based. */
void		 store_bind_text(sqlite3_stmt *, int, const char *);
void		 store_bind_int(sqlite3_stmt *, int, int64_t);
/* Column text as malloc'd string, or NULL for SQL NULL. */
char		*store_col_text(sqlite3_stmt *, int);

#endif
