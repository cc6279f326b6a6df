#include "orchestrator/inbox.h"
#include "orchestrator/outbox.h"
#include "orchestrator/jscan.h"
#include "adapters/adapter.h"
#include "bot/httpd.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

/*
 * One processing turn does at most this much, then yields to the loop, so
 * that frames arriving meanwhile are recorded and acked between rows: an
 * ack must never wait for a backlog of work.
 */
#define PROCESS_ROWS	32
#define PROCESS_MS	10
#define RETRY_MS	1000	/* after a failed commit */

struct kind {
	char			*name;
	inbox_process_fn	 process;
	inbox_insert_fn		 insert;
	inbox_inline_fn		 inline_ok;	/* NULL: never inline */
	void			*arg;
	const char *const	*keys;	/* what process reads, or NULL: all */
	size_t			 nkeys;
	struct kind		*next;
};

struct put {
	char		*kind;		/* NULL: an after-commit callback only */
	json_t		*payload;
	struct inbox_key *keys;		/* strings owned */
	size_t		 nkeys;
	inbox_done_fn	 done;
	void		*arg;
	int		 rc;
	uint64_t	 put_ms;	/* when the event reached us */
	struct put	*next;
};

/*
 * When each row of this run arrived (rows are processed in id order, so a
 * FIFO): the event → first reply histogram starts there.  Rows replayed
 * after a restart have no entry and are not measured.
 */
#define ARRIVALS	4096
static struct {
	int64_t		 row;
	uint64_t	 ms;
} arrivals[ARRIVALS];
static size_t		 arr_head, arr_len;

static void
arrival_add(int64_t row, uint64_t ms)
{
	if (arr_len == ARRIVALS) {	/* a backlog that large: oldest go */
		arr_head = (arr_head + 1) % ARRIVALS;
		arr_len--;
	}
	arrivals[(arr_head + arr_len) % ARRIVALS].row = row;
	arrivals[(arr_head + arr_len) % ARRIVALS].ms = ms;
	arr_len++;
}

/* The arrival time of row, or 0; entries of earlier rows are dropped. */
static uint64_t
arrival_take(int64_t row)
{
	uint64_t	 ms;

	while (arr_len > 0 && arrivals[arr_head].row < row) {
		arr_head = (arr_head + 1) % ARRIVALS;
		arr_len--;
	}
	if (arr_len == 0 || arrivals[arr_head].row != row)
		return 0;
	ms = arrivals[arr_head].ms;
	arr_head = (arr_head + 1) % ARRIVALS;
	arr_len--;
	return ms;
}

static struct kind	*kinds;
static struct put	*q_head, **q_tail = &q_head;
static size_t		 nqueued;
static int		 flush_scheduled, processing;
static int		 inline_now, inline_later;	/* work_inline() */
static struct loop_timer *kick_timer;
static int64_t		 rows = -1;	/* in the table; -1 = not counted yet */
static int		 failing;
static struct loop_timer *retry_timer;
static struct metric	*m_rows, *m_commits, *m_failed, *m_processed, *m_ack;

static void	process_some(void *);

static void
inbox_metrics(void)
{
	m_rows = metrics_counter("switchboard_inbox_rows_total", "",
	    "Inbound events written as inbox rows (not a lone one worked on"
	    " in the commit that records it)");
	m_commits = metrics_counter("switchboard_inbox_commits_total", "",
	    "Group commits of the inbox (one fsync each)");
	m_failed = metrics_counter("switchboard_inbox_commit_failures_total",
	    "", "Inbox commits the store refused");
	m_processed = metrics_counter("switchboard_inbox_processed_total", "",
	    "Inbound events whose work committed, from a row or at once");
	m_ack = metrics_histogram("switchboard_inbound_ack_seconds", "",
	    "Inbound event arrived until its ack (after the inbox commit)",
	    NULL);
}

static struct kind *
kind_find(const char *name)
{
	struct kind	*k;

	for (k = kinds; k != NULL; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

void
inbox_kind(const char *name, inbox_process_fn process, inbox_insert_fn insert,
    void *arg)
{
	struct kind	*k;

	if ((k = kind_find(name)) == NULL) {
		k = xcalloc(1, sizeof *k);
		k->name = xstrdup(name);
		k->next = kinds;
		kinds = k;
	}
	k->process = process;
	k->insert = insert;
	k->arg = arg;
}

void
inbox_kind_inline(const char *name, inbox_inline_fn inline_ok)
{
	struct kind	*k;

	if ((k = kind_find(name)) != NULL)
		k->inline_ok = inline_ok;
}

int
inbox_work_later(void)
{
	if (!inline_now)
		return 0;
	inline_later = 1;
	return 1;
}

void
inbox_kind_reads(const char *name, const char *const *keys, size_t nkeys)
{
	struct kind	*k;

	if ((k = kind_find(name)) != NULL) {
		k->keys = keys;
		k->nkeys = nkeys;
	}
}

/*
 * A row's payload for its kind's process: with the members it reads
 * named, only those are built (the text still checked whole); what jscan
 * refuses, and a kind that reads anything, jansson decodes whole.
 */
static json_t *
payload_decode(const struct kind *k, const char *text)
{
	json_error_t	 jerr;
	json_t		*p;

	if (text == NULL)
		return NULL;
	if (k != NULL && k->keys != NULL && (p = jscan_object(text,
	    strlen(text), k->keys, k->nkeys)) != NULL)
		return p;
	return json_loads(text, 0, &jerr);
}

static void
put_free(struct put *p)
{
	size_t	 i;

	for (i = 0; i < p->nkeys; i++) {
		free((char *)p->keys[i].source);
		free((char *)p->keys[i].id);
	}
	free(p->keys);
	free(p->kind);
	json_decref(p->payload);
	free(p);
}

static void
flush_fire(void *arg)
{
	flush_scheduled = 0;
	(void)inbox_flush();
}

static void
enqueue(struct put *p)
{
	*q_tail = p;
	q_tail = &p->next;
	nqueued++;
	if (!flush_scheduled) {
		flush_scheduled = 1;
		loop_defer(flush_fire, NULL);
	}
}

void
inbox_put(const char *kind, json_t *payload, const struct inbox_key *keys,
    size_t nkeys, inbox_done_fn done, void *arg)
{
	struct put	*p;
	size_t		 i;

	p = xcalloc(1, sizeof *p);
	p->kind = xstrdup(kind);
	p->payload = payload;
	p->put_ms = now_ms();
	if (nkeys > 0) {
		p->keys = xcalloc(nkeys, sizeof *p->keys);
		for (i = 0; i < nkeys; i++) {
			p->keys[i].source = xstrdup(keys[i].source);
			p->keys[i].id = xstrdup(keys[i].id);
			p->keys[i].ttl_s = keys[i].ttl_s;
		}
	}
	p->nkeys = nkeys;
	p->done = done;
	p->arg = arg;
	enqueue(p);
}

void
inbox_after_commit(inbox_done_fn done, void *arg)
{
	struct put	*p;

	p = xcalloc(1, sizeof *p);
	p->done = done;
	p->arg = arg;
	enqueue(p);
}

static int64_t
count_rows(void)
{
	sqlite3_stmt	*st;

	if (rows < 0) {
		st = store_stmt("SELECT count(*) FROM inbox");
		rows = sqlite3_step(st) == SQLITE_ROW ?
		    sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
	}
	return rows;
}

static int
insert_row(const char *kind, json_t *payload)
{
	sqlite3_stmt	*st;
	char		*s;
	int		 rc = 0;

	s = json_dumps(payload, JSON_COMPACT);
	st = store_stmt("INSERT INTO inbox (kind, payload, created_at)"
	    " VALUES (?, ?, ?)");
	store_bind_text(st, 1, kind);
	store_bind_text(st, 2, s);
	store_bind_int(st, 3, wall_s());
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_warnx("inbox: insert failed: %s",
		    sqlite3_errmsg(store_db()));
		rc = -1;
	}
	sqlite3_reset(st);
	free(s);
	return rc;
}

/* The store refused a commit: say so loudly, once per episode. */
static void
store_failed(const char *what)
{
	metrics_inc(m_failed);
	if (!failing)
		log_warnx("STORE CANNOT COMMIT (%s): %s; events are not acked"
		    " and not acted on until it can", what, store_tx_error());
	failing = 1;
	health_set("store", "cannot commit");
	health_fail("store", "the state database cannot commit");
}

static void
store_ok(void)
{
	if (failing) {
		log_info("store: commits work again");
		health_set("store", "ok");
		health_ok("store");
	}
	failing = 0;
}

/* Keys of p: 1 all new, 0 one was seen, -1 store error. */
static int
record_keys(const struct put *p)
{
	size_t	 i;
	int	 r, fresh = 1;

	for (i = 0; i < p->nkeys; i++) {
		if ((r = store_seen_add(p->keys[i].source, p->keys[i].id,
		    p->keys[i].ttl_s)) == -1)
			return -1;
		if (r == 0)
			fresh = 0;
	}
	return fresh;
}

/* What one record() did. */
struct tally {
	int			 inserted;	/* rows written */
	int			 worked;	/* events worked on inline */
	int			 later;		/* inbox_work_later() said so */
	struct store_held	*held;		/* the commit's hooks */
};

/*
 * The lone event of a flush, worked on in the transaction that records it
 * (inbox_flush): its 👀 as at any insert, then its work.  -1 the work
 * failed or is for later (t->later).
 */
static int
work_inline(struct kind *k, struct put *p, struct tally *t)
{
	uint64_t	 first;
	int		 rc;

	if (k->insert != NULL)
		k->insert(p->payload, 0, k->arg);
	first = chat_op_last_id();	/* the 👀 is not the reply */
	processing = inline_now = 1;
	inline_later = 0;
	rc = k->process(p->payload, k->arg);
	processing = inline_now = 0;
	if (inline_later)
		t->later = 1;
	if (rc == -1 || t->later)
		return -1;
	if (chat_op_last_id() > first)
		outbox_time_reply(first + 1, p->put_ms);
	t->worked++;
	return 0;
}

/*
 * One transaction for everything queued: each put's keys, and its row, or
 * with work set its work instead (inbox_flush: one put at most).  -1 not
 * committed (rolled back).
 */
static int
record(struct put *list, int work, struct tally *t)
{
	struct put	*p;
	struct kind	*k;
	int64_t		 ahead = count_rows();
	int		 r, rc = 0;

	memset(t, 0, sizeof *t);
	if (store_begin() == -1)
		return -1;
	for (p = list; rc == 0 && p != NULL; p = p->next) {
		if (p->kind == NULL) {
			p->rc = 1;
			continue;
		}
		if ((r = record_keys(p)) == -1) {
			rc = -1;
			break;
		}
		if ((p->rc = r) == 0)
			continue;
		k = kind_find(p->kind);
		if (work && k != NULL && k->process != NULL) {
			rc = work_inline(k, p, t);
			continue;
		}
		if (insert_row(p->kind, p->payload) == -1) {
			rc = -1;
			break;
		}
		arrival_add(sqlite3_last_insert_rowid(store_db()), p->put_ms);
		if (k != NULL && k->insert != NULL)
			k->insert(p->payload, (size_t)ahead + t->inserted,
			    k->arg);
		t->inserted++;
	}
	if (rc == 0)
		return store_commit_held(&t->held);
	if (store_in_transaction())
		store_rollback();
	return -1;
}

static void
held_fire(void *arg)
{
	store_held_run(arg);
}

/*
 * A lone event is worked on in the transaction that records it, when its
 * kind says the work is quick (inbox_kind_inline), no row waits (nothing
 * may overtake one) and no batch is being processed: one commit, one
 * fsync and one loop turn per event instead of two, and no row written
 * only to be read back and deleted.  Its ack then waits for its work,
 * which for a command costs less than the commit it saves; what the work
 * starts (a turn, a post: commit hooks) waits for the ack, from a 0 ms
 * timer, i.e. after the loop turn that writes the acks.  Should that
 * commit fail, or the work be for later (inbox_work_later), the event is
 * recorded again without its work, which then runs from its row.
 */
int
inbox_flush(void)
{
	struct put	*list, *p;
	struct kind	*k = NULL;
	struct tally	 t;
	int		 rc, nput = 0, work;

	if (q_head == NULL)
		return 0;
	if (m_rows == NULL)
		inbox_metrics();
	if (store_db() == NULL || !sqlite3_get_autocommit(store_db())) {
		/* Inside someone's transaction: its commit is not ours. */
		if (!flush_scheduled) {
			flush_scheduled = 1;
			loop_defer(flush_fire, NULL);
		}
		return store_db() == NULL ? -1 : 0;
	}
	list = q_head;
	q_head = NULL;
	q_tail = &q_head;
	nqueued = 0;

	for (p = list; p != NULL; p = p->next)
		if (p->kind != NULL) {
			k = kind_find(p->kind);
			nput++;
		}
	work = nput == 1 && k != NULL && k->inline_ok != NULL &&
	    count_rows() == 0 && !processing && !failing &&
	    retry_timer == NULL && !loop_stopping();
	for (p = list; work && p != NULL; p = p->next)
		if (p->kind != NULL)
			work = k->inline_ok(p->payload, k->arg);
	rc = record(list, work, &t);
	if (rc == -1 && work) {
		if (!t.later)
			log_warnx("inbox: an event's work did not commit (%s);"
			    " the event is recorded alone, its work runs from"
			    " its row", store_tx_error());
		rc = record(list, 0, &t);
	}
	if (rc == 0) {
		store_ok();
		metrics_inc(m_commits);
		metrics_add(m_rows, t.inserted);
		metrics_add(m_processed, t.worked);
		if (rows >= 0)
			rows += t.inserted;
	} else
		store_failed("inbox");
	while ((p = list) != NULL) {
		list = p->next;
		if (p->done != NULL)
			p->done(rc == 0 ? p->rc : -1, p->arg);
		/* The done callback sent the ack (Socket Mode, Events API). */
		if (rc == 0 && p->kind != NULL)
			metrics_observe(m_ack, (double)(now_ms() - p->put_ms) /
			    1000);
		put_free(p);
	}
	if (t.held != NULL && loop_stopping())
		store_held_run(t.held);	/* no later turn to wait for */
	else if (t.held != NULL)
		loop_timer_once(0, held_fire, t.held);
	if (rc == 0 && t.inserted > 0)
		inbox_kick();
	return rc;
}

int
inbox_add(const char *kind, json_t *payload)
{
	if (insert_row(kind, payload) == -1)
		return -1;
	if (rows >= 0)
		rows++;
	inbox_kick();
	return 0;
}

static void
retry_fire(void *arg)
{
	retry_timer = NULL;
	inbox_kick();
}

/*
 * Events read in the last poll are recorded (and acked) in this turn's idle
 * phase, which runs after the timers: a processing turn now would hold
 * their acks behind up to PROCESS_MS of work.  So while a burst is coming
 * in, processing waits for a quiet turn, for at most PROCESS_MS, which
 * keeps half of a saturated loop for the work.  A lone event finds nothing
 * queued and is processed at once.
 */
static void
process_fire(void *arg)
{
	static uint64_t	 held_since;
	uint64_t	 now = now_ms();

	kick_timer = NULL;
	if (q_head != NULL) {
		if (held_since == 0)
			held_since = now;
		if (now - held_since < PROCESS_MS) {
			kick_timer = loop_timer_once(1, process_fire, NULL);
			return;
		}
	}
	held_since = 0;
	process_some(NULL);
}

/*
 * Processing runs from a 0 ms timer, i.e. at the start of the next loop
 * iteration, and group commits from loop_defer (its idle phase), before
 * that iteration polls: so the acks a commit queues are written in the
 * same iteration, never after a turn of processing.
 */
void
inbox_kick(void)
{
	if (kick_timer != NULL || retry_timer != NULL)
		return;
	kick_timer = loop_timer_once(0, process_fire, NULL);
}

static void
row_delete(int64_t id)
{
	sqlite3_stmt	*st;

	st = store_stmt("DELETE FROM inbox WHERE id = ?");
	store_bind_int(st, 1, id);
	(void)sqlite3_step(st);
	sqlite3_reset(st);
}

/*
 * The next row after id `after`: its work runs, and the row is deleted, in
 * the caller's transaction.  1 done, 0 nothing left, -1 the work failed.
 */
static int
process_one(int64_t *after)
{
	sqlite3_stmt	*st;
	struct kind	*k;
	json_t		*payload;
	char		*kind;
	const char	*text;
	int64_t		 id;
	uint64_t	 arrived, first;
	int		 rc;

	st = store_stmt("SELECT id, kind, payload FROM inbox WHERE id > ?"
	    " ORDER BY id LIMIT 1");
	store_bind_int(st, 1, *after);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return 0;
	}
	id = sqlite3_column_int64(st, 0);
	kind = store_col_text(st, 1);
	k = kind_find(kind);
	text = (const char *)sqlite3_column_text(st, 2);
	payload = payload_decode(k, text);
	sqlite3_reset(st);
	*after = id;

	arrived = arrival_take(id);
	if (k == NULL || payload == NULL) {
		log_warnx("inbox: row %lld (%s) %s, dropped", (long long)id,
		    kind, payload == NULL ? "is corrupt" : "has no handler");
		rc = 0;
	} else {
		first = chat_op_last_id();
		rc = k->process(payload, k->arg);
		/* Its first reply: the first outbox row its work made. */
		if (rc != -1 && arrived != 0 && chat_op_last_id() > first)
			outbox_time_reply(first + 1, arrived);
	}
	free(kind);
	json_decref(payload);
	if (rc == -1)
		return -1;
	row_delete(id);
	return 1;
}

/*
 * A batch of rows in one transaction (one fsync for all their work), within
 * a time budget; then the loop gets its turn (acks, sends) before the next
 * batch.  A failed commit undoes the batch's rows, which run again later.
 */
static void
process_some(void *arg)
{
	uint64_t	 start = now_ms();
	int64_t		 after = 0;
	int		 n = 0, r = 1;

	if (processing || store_db() == NULL || loop_stopping())
		return;
	if (m_rows == NULL)
		inbox_metrics();
	processing = 1;
	if (store_begin() == -1)
		r = -1;
	while (r == 1 && n < PROCESS_ROWS && now_ms() - start < PROCESS_MS)
		if ((r = process_one(&after)) == 1)
			n++;
	if (r == -1) {
		if (!sqlite3_get_autocommit(store_db()))
			store_rollback();
		n = 0;
	} else if (store_commit() == -1) {
		r = -1;
		n = 0;
	}
	processing = 0;
	if (r == -1) {
		store_failed("inbox processing");
		if (retry_timer == NULL)
			retry_timer = loop_timer_once(RETRY_MS, retry_fire,
			    NULL);
		return;
	}
	store_ok();
	metrics_add(m_processed, n);
	if (r == 0)
		rows = 0;		/* the table is empty */
	else {
		if (rows >= n)
			rows -= n;
		inbox_kick();		/* more, after the loop had its turn */
	}
}

size_t
inbox_backlog(void)
{
	return store_db() != NULL ? (size_t)count_rows() + nqueued : nqueued;
}

int
inbox_store_failing(void)
{
	return failing;
}

void
inbox_reset(void)
{
	struct put	*p;
	struct kind	*k;

	while ((p = q_head) != NULL) {
		q_head = p->next;
		if (p->done != NULL)
			p->done(-1, p->arg);
		put_free(p);
	}
	q_tail = &q_head;
	nqueued = 0;
	while ((k = kinds) != NULL) {
		kinds = k->next;
		free(k->name);
		free(k);
	}
	loop_timer_cancel(retry_timer);
	retry_timer = NULL;
	loop_timer_cancel(kick_timer);
	kick_timer = NULL;
	rows = -1;
	failing = 0;
	health_ok("store");
	flush_scheduled = processing = 0;
	m_rows = NULL;
}
