/*
 * outbox rows — a row of the outbox table becomes a chat_op (its payload
 * decoded, our keys resolved to platform ids), and the adapter's answer
 * settles it: sent, failed for good, or pending again after Retry-After
 * or our back-off.
 */
#include "orchestrator/outbox.h"
#include "orchestrator/outbox-int.h"
#include "orchestrator/jscan.h"
#include "adapters/adapter.h"
#include "bot/log.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Give up on a transient failure after this many attempts (~45 min of back-off). */
#define OUTBOX_MAX_ATTEMPTS	50
#define OUTBOX_BACKOFF_MIN_MS	500
#define OUTBOX_BACKOFF_MAX_MS	60000

void
op_free(struct out_op *o)
{
	if (o == NULL)
		return;
	json_decref(o->payload);
	free(o->key);
	free(o->target);
	free(o->thread);
	free(o->choices);
	free(o->data);
	free(o->done_ref);
	free(o);
}

/* Decodes an upload row's bytes into o; -1 if the payload is corrupt. */
static int
upload_decode(struct out_op *o)
{
	const char	*b64;
	json_int_t	 size;
	size_t		 n;
	int		 r;

	if (json_unpack(o->payload, "{s:s, s:I}", "data_b64", &b64, "size",
	    &size) != 0 || size < 0)
		return -1;
	n = strlen(b64);
	o->data = xmalloc(3 * (n / 4) + 1);
	if (n % 4 != 0 || (r = EVP_DecodeBlock(o->data,
	    (const unsigned char *)b64, (int)n)) < 0 || (size_t)r < (size_t)size)
		return -1;
	o->op.data = (const char *)o->data;
	o->op.data_len = (size_t)size;	/* EVP_DecodeBlock counts the padding */
	o->op.filename = json_string_value(json_object_get(o->payload,
	    "filename"));
	o->op.title = json_string_value(json_object_get(o->payload, "title"));
	return 0;
}

int
is_root_key(const char *s)
{
	size_t	 n = strlen(s), sn = strlen(OUTBOX_ROOT_SUFFIX);

	return n > sn && strcmp(s + n - sn, OUTBOX_ROOT_SUFFIX) == 0;
}

/* Root key → platform id, in this lane only; NULL if not (yet) sent. */
static char *
lane_root_ref(const struct lane *l, const char *key)
{
	sqlite3_stmt	*st;
	char		*ref = NULL;

	st = store_stmt("SELECT platform_ref FROM messages WHERE key = ? AND"
	    " adapter = ? AND channel = ?");
	store_bind_text(st, 1, key);
	store_bind_text(st, 2, l->adapter);
	store_bind_text(st, 3, l->channel);
	if (sqlite3_step(st) == SQLITE_ROW)
		ref = store_col_text(st, 0);
	sqlite3_reset(st);
	return ref;
}

/* Is the POST that creates key failed for good?  Then dependants fail too. */
int
key_failed(const char *key)
{
	sqlite3_stmt	*st;
	int		 failed = 0;

	st = store_stmt("SELECT 1 FROM outbox WHERE op = 'post' AND"
	    " msg_key = ? AND status = 'failed'");
	store_bind_text(st, 1, key);
	failed = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return failed;
}

void
row_finish(uint64_t id, const char *status, const char *error, int attempts,
    int64_t not_before)
{
	sqlite3_stmt	*st;

	st = store_stmt("UPDATE outbox SET status = ?, last_error = ?,"
	    " attempts = ?, not_before = ?, sent_at = CASE WHEN ? = 'sent'"
	    " THEN ? ELSE sent_at END WHERE id = ?");
	store_bind_text(st, 1, status);
	store_bind_text(st, 2, error);
	store_bind_int(st, 3, attempts);
	store_bind_int(st, 4, not_before);
	store_bind_text(st, 5, status);
	store_bind_int(st, 6, wall_s());
	store_bind_int(st, 7, (int64_t)id);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("outbox: update of row %llu failed: %s",
		    (unsigned long long)id, sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

const char *
ops_name(enum chat_op_kind k)
{
	switch (k) {
	case CHAT_OP_POST:
		return "post";
	case CHAT_OP_EDIT:
		return "edit";
	case CHAT_OP_UPLOAD:
		return "upload";
	default:
		return "react";
	}
}

/* What an op reads of its row's payload. */
static const char *const payload_keys[] = { "text", "emoji", "question",
    "closed", "choices", "thread_key", "target", "data_b64", "size",
    "filename", "title" };

/*
 * A row's payload as the op reads it: the text checked whole, only those
 * members built (a jansson decode per op was ~4 % of an event, callgrind).
 * What jscan refuses jansson decodes, as before.
 */
static json_t *
payload_decode(const char *text)
{
	json_error_t	 jerr;
	json_t		*p;

	if (text == NULL)
		return NULL;
	if ((p = jscan_object(text, strlen(text), payload_keys,
	    nitems(payload_keys))) != NULL)
		return p;
	return json_loads(text, 0, &jerr);
}

/*
 * Loads the head row of queue q into an op.  Returns 1 with *out set, 0 when
 * the queue is empty, or a positive wait in ms via *wait_ms (head not due
 * yet).  In the quick queue an edit whose message is not sent yet is passed
 * over (the post's completion kicks the queue again); the first other row
 * is the head.  skip_op ("react", "edit" or NULL): in the quick queue, rows
 * of that op are passed over too (out of budget for now).  A lookup that
 * finds nothing to send, and passed over nothing but ops in flight, learns
 * that the queue is empty (l->npend); one outside a transaction only, as
 * a rollback could bring back a row the transaction had finished.
 */
int
lane_head(struct lane *l, int q, int single, const char *skip_op,
    struct out_op **out, int64_t *wait_ms)
{
	sqlite3_stmt	*st;
	struct out_op	*o;
	const char	*op, *payload, *tk, *s;
	char		*ref;
	json_t		*choices;
	int64_t		 nb, now = wall_ms(), after;
	size_t		 i, n;
	char		*g;
	int		 found, clean = 1, busy;

	*out = NULL;
	*wait_ms = 0;
	if (l->npend[q] == 0)
		return 0;
	after = 0;
again:
	if (l->group[0] != '\0') {
		/*
		 * A lane of one thread or one reaction (order_per_thread):
		 * its oldest row.  SQL narrows to the lane's rows where it
		 * can; lane_group() decides, so the two cannot disagree.
		 */
		if (strncmp(l->group, "r:", 2) == 0) {
			st = store_stmt("SELECT id, thread, op, msg_key,"
			    " payload, not_before, attempts FROM outbox WHERE"
			    " status = 'pending' AND adapter = ? AND channel = ?"
			    " AND id = ?");
			store_bind_int(st, 3, strtoll(l->group + 2, NULL, 10));
		} else if (l->group[2] != '\0') {
			st = store_stmt("SELECT id, thread, op, msg_key,"
			    " payload, not_before, attempts FROM outbox WHERE"
			    " status = 'pending' AND adapter = ? AND channel = ?"
			    " AND op != 'react' AND (thread = ?3 OR (thread IS"
			    " NULL AND msg_key = ?3)) ORDER BY id");
			store_bind_text(st, 3, l->group + 2);
		} else
			st = store_stmt("SELECT id, thread, op, msg_key,"
			    " payload, not_before, attempts FROM outbox WHERE"
			    " status = 'pending' AND adapter = ? AND channel = ?"
			    " ORDER BY id");
		store_bind_text(st, 1, l->adapter);
		store_bind_text(st, 2, l->channel);
		found = 0;
		while (!found && sqlite3_step(st) == SQLITE_ROW) {
			g = lane_group(l->adapter,
			    (uint64_t)sqlite3_column_int64(st, 0),
			    (const char *)sqlite3_column_text(st, 2),
			    (const char *)sqlite3_column_text(st, 1),
			    (const char *)sqlite3_column_text(st, 3));
			found = strcmp(g, l->group) == 0;
			free(g);
		}
		if (!found) {
			sqlite3_reset(st);
			goto empty;
		}
		goto row;
	}
	st = store_stmt(single ?
	    "SELECT id, thread, op, msg_key, payload, not_before,"
	    " attempts FROM outbox WHERE status = 'pending' AND adapter = ?"
	    " AND channel = ? AND id > ? ORDER BY id LIMIT 1" : q == Q_POST ?
	    "SELECT id, thread, op, msg_key, payload, not_before,"
	    " attempts FROM outbox WHERE status = 'pending' AND adapter = ?"
	    " AND channel = ? AND op IN ('post', 'upload') AND id > ?"
	    " ORDER BY id LIMIT 1" :
	    "SELECT id, thread, op, msg_key, payload, not_before,"
	    " attempts FROM outbox WHERE status = 'pending' AND adapter = ?"
	    " AND channel = ? AND op NOT IN ('post', 'upload') AND id > ?"
	    " AND op != ? ORDER BY id LIMIT 1");
	store_bind_text(st, 1, l->adapter);
	store_bind_text(st, 2, l->channel);
	store_bind_int(st, 3, after);
	if (!single && q == Q_QUICK)
		store_bind_text(st, 4, skip_op != NULL ? skip_op : "");
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		goto empty;
	}
row:
	nb = sqlite3_column_int64(st, 5);
	if (nb > now) {
		*wait_ms = nb - now;
		sqlite3_reset(st);
		return 0;
	}
	if (q == Q_QUICK && (busy = quick_busy(l, sqlite3_column_int64(st, 0),
	    (const char *)sqlite3_column_text(st, 2),
	    (const char *)sqlite3_column_text(st, 3))) != 0) {
		if (busy != 1)
			clean = 0;	/* an edit waits for another */
		after = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		goto again;
	}
	o = xcalloc(1, sizeof *o);
	o->lane = l;
	o->q = q;
	o->op.id = (uint64_t)sqlite3_column_int64(st, 0);
	o->thread = store_col_text(st, 1);
	op = (const char *)sqlite3_column_text(st, 2);
	o->key = store_col_text(st, 3);
	payload = (const char *)sqlite3_column_text(st, 4);
	o->op.kind = strcmp(op, "post") == 0 ? CHAT_OP_POST :
	    strcmp(op, "edit") == 0 ? CHAT_OP_EDIT :
	    strcmp(op, "upload") == 0 ? CHAT_OP_UPLOAD : CHAT_OP_REACT;
	o->payload = payload_decode(payload);
	sqlite3_reset(st);
	if (o->payload == NULL || (o->op.kind == CHAT_OP_UPLOAD &&
	    upload_decode(o) != 0)) {
		log_warnx("outbox: row %llu has a corrupt payload, dropped",
		    (unsigned long long)o->op.id);
		row_finish(o->op.id, "failed", "corrupt payload", 0, 0);
		op_free(o);
		goto again;
	}

	/* Resolve our keys to platform ids; the POST may still be queued. */
	if (o->op.kind == CHAT_OP_EDIT) {
		if ((o->target = outbox_ref_of(o->key)) == NULL) {
			if (key_failed(o->key)) {
				row_finish(o->op.id, "failed",
				    "target message was never sent", 0, 0);
				op_free(o);
				goto again;
			}
			after = (int64_t)o->op.id;
			clean = 0;
			op_free(o);
			if (single) {
				/* Strict order: its post is ahead anyway. */
				*wait_ms = 1000;
				return 0;
			}
			/* Not sent yet: the next row may go meanwhile. */
			goto again;
		}
	} else if (o->op.kind == CHAT_OP_REACT) {
		s = json_string_value(json_object_get(o->payload, "target"));
		o->target = xstrdup(s != NULL ? s : "");
	}
	tk = json_string_value(json_object_get(o->payload, "thread_key"));
	if (o->thread != NULL && tk == NULL && is_root_key(o->thread)) {
		/* Lane order: the root's POST has been settled by now. */
		if ((ref = lane_root_ref(l, o->thread)) != NULL) {
			free(o->thread);
			o->thread = ref;
		} else if (key_failed(o->thread)) {
			row_finish(o->op.id, "failed",
			    "thread root was never sent", 0, 0);
			op_free(o);
			goto again;
		}
	}
	if (o->thread == NULL && tk != NULL &&
	    (o->thread = outbox_ref_of(tk)) == NULL) {
		if (key_failed(tk)) {
			row_finish(o->op.id, "failed",
			    "thread root was never sent", 0, 0);
			op_free(o);
			goto again;
		}
		*wait_ms = 1000;
		op_free(o);
		return 0;
	}

	o->op.channel = l->channel;
	o->op.thread = o->thread;
	o->op.target = o->target;
	o->op.text = json_string_value(json_object_get(o->payload, "text"));
	o->op.emoji = json_string_value(json_object_get(o->payload, "emoji"));
	o->op.question = json_string_value(json_object_get(o->payload,
	    "question"));
	o->op.closed = json_is_true(json_object_get(o->payload, "closed"));
	choices = json_object_get(o->payload, "choices");
	if (json_is_array(choices)) {
		n = json_array_size(choices);
		o->choices = xcalloc(n + 1, sizeof *o->choices);
		for (i = 0; i < n; i++)
			o->choices[i] = json_string_value(
			    json_array_get(choices, i));
		o->op.choices = o->choices;
	}
	o->op.priv = o;
	*out = o;
	return 1;
empty:
	if (clean && skip_op == NULL && sqlite3_get_autocommit(store_db()))
		l->npend[q] = 0;
	return 0;
}

/*
 * What answered ops did to the store is written in one transaction per
 * loop turn: eight reactions answered together cost one fsync, not eight
 * (every fsync is on the loop, and one per op held a burst's 500 👀 and
 * replies to about a millisecond each).  An op stays in its lane's
 * in-flight list until then, so nothing overtakes it and it is not sent
 * twice.  A crash before the commit leaves its row pending, to be sent
 * again as any op whose answer was lost is (Slack looks for it first,
 * Matrix reuses its txnId, a reaction is already there).
 */
static struct out_op	*done_head, **done_tail = &done_head;
static int		 done_deferred;

static void
done_flush_cb(void *arg)
{
	done_deferred = 0;
	outbox_done_flush();
}

void
chat_op_done(struct chat_op *op, const char *ref)
{
	struct out_op	*o = op->priv;

	if (o->cancelled) {
		op_free(o);
		return;
	}
	outbox_pace_settle(o, PACE_OK, -1);
	metrics_inc(m_sent);
	outbox_metrics(o->lane->adapter, o, NULL);
	reply_timed(op->id);
	o->done_ref = ref != NULL ? xstrdup(ref) : NULL;
	o->done_next = NULL;
	*done_tail = o;
	done_tail = &o->done_next;
	if (!done_deferred) {
		done_deferred = 1;
		loop_defer(done_flush_cb, NULL);
	}
}

void
outbox_done_flush(void)
{
	struct out_op	*list, *o, *next;
	struct lane	*l;
	enum chat_op_kind kind;
	sqlite3_stmt	*st;
	int		 q, failed;

	if ((list = done_head) == NULL)
		return;
	done_head = NULL;
	done_tail = &done_head;
	/*
	 * Not fsynced by itself (the next full commit carries it): a "sent"
	 * lost to a power cut leaves the row pending, and its resend finds
	 * the message by the row's idempotency key (Slack reads the thread
	 * back, Matrix reuses the txnId; a 👀 again is already_reacted),
	 * exactly as after a kill -9 between the reply and this commit.
	 */
	store_begin_lazy();
	for (o = list; o != NULL; o = o->done_next) {
		l = o->lane;
		row_finish(o->op.id, "sent", NULL, 0, 0);
		if (o->op.kind != CHAT_OP_POST || o->key == NULL ||
		    o->done_ref == NULL)
			continue;
		st = store_stmt("INSERT OR REPLACE INTO messages (key, adapter,"
		    " channel, thread, platform_ref) VALUES (?, ?, ?, ?, ?)");
		store_bind_text(st, 1, o->key);
		store_bind_text(st, 2, l->adapter);
		store_bind_text(st, 3, l->channel);
		store_bind_text(st, 4, o->op.thread != NULL ? o->op.thread :
		    o->done_ref);
		store_bind_text(st, 5, o->done_ref);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warnx("outbox: recording message %s failed: %s",
			    o->key, sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
	}
	failed = store_commit() == -1;
	for (o = list; o != NULL; o = next) {
		next = o->done_next;
		l = o->lane;
		kind = o->op.kind;
		q = o->q;
		lane_unlink(l, o);
		/* Not recorded sent: pending again, sent again (see above). */
		if (failed)
			lane_more(l, q);
		op_free(o);
		/* A kick may free a lane, but not one an op on the list holds. */
		if (outbox_running)
			lane_next(l, q, kind);
	}
}

void
chat_op_failed(struct chat_op *op, long long retry_ms, int permanent,
    const char *error)
{
	struct out_op	*o = op->priv;
	struct lane	*l = o->lane;
	enum chat_op_kind kind;
	sqlite3_stmt	*st;
	int		 attempts = 0, q;
	long long	 backoff;

	if (o->cancelled) {
		op_free(o);
		return;
	}
	st = store_stmt("SELECT attempts FROM outbox WHERE id = ?");
	store_bind_int(st, 1, (int64_t)op->id);
	if (sqlite3_step(st) == SQLITE_ROW)
		attempts = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	attempts++;

	if (permanent || attempts >= OUTBOX_MAX_ATTEMPTS) {
		log_warnx("outbox: %s to %s/%s failed for good after %d"
		    " attempt(s): %s", ops_name(op->kind), l->adapter,
		    l->channel, attempts, error != NULL ? error : "?");
		row_finish(op->id, "failed", error, attempts, 0);
		metrics_inc(m_failed);
		outbox_metrics(l->adapter, o, "permanent");
	} else {
		backoff = OUTBOX_BACKOFF_MIN_MS << (attempts < 8 ? attempts : 8);
		if (backoff > OUTBOX_BACKOFF_MAX_MS)
			backoff = OUTBOX_BACKOFF_MAX_MS;
		backoff = backoff / 2 + (long long)(random() % (backoff / 2 + 1));
		/* Retry-After is a floor: never earlier than the platform said. */
		if (retry_ms >= 0)
			backoff = retry_ms;
		log_info("outbox: %s to %s/%s failed (%s), retry %d in %lld ms",
		    ops_name(op->kind), l->adapter, l->channel,
		    error != NULL ? error : "?", attempts, backoff);
		row_finish(op->id, "pending", error, attempts,
		    wall_ms() + backoff);
		lane_more(l, o->q);
		metrics_inc(m_retried);
		outbox_metrics(l->adapter, o, "retry");
	}
	/* A Retry-After is the platform's rate limit speaking. */
	outbox_pace_settle(o, retry_ms >= 0 && !permanent ? PACE_LIMITED :
	    PACE_FAILED, retry_ms);
	kind = op->kind;
	q = o->q;
	lane_unlink(l, o);
	op_free(o);
	lane_next(l, q, kind);
}
