#include "orchestrator/outbox.h"
#include "orchestrator/render.h"
#include "adapters/adapter.h"
#include "bot/log.h"
#include "bot/loop.h"
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

struct out_op;

/*
 * A lane (adapter + channel) has two queues with one op in flight each:
 * new messages, in row order and paced; and reactions and edits, which
 * must never wait behind a backlog of paced messages (a 500-mention burst
 * put the 👀 of the last one four minutes late).  What order still matters
 * holds: messages of a thread stay in order (all of the channel's
 * messages do), an edit waits for the message it edits (skipped, not
 * blocking, until that is sent), and a Retry-After on a reaction or an
 * edit holds the queue it came from.  An adapter that does not pace posts
 * (min_interval_ms 0: the console) has nothing to overtake, so its lanes
 * keep one queue in strict row order, one op in flight.
 */
enum { Q_POST, Q_QUICK, NQ };
/*
 * Reactions and edits in flight at once per lane: one at a time, a burst's
 * 500 reactions took 500 round trips.  Two edits of one message are never
 * in flight together (the later one waits), so the latest state still wins.
 */
#define QUICK_MAX	8

struct lane {
	char		*adapter;
	char		*channel;
	char		*group;		/* order group in the channel (lane_group) */
	struct out_op	*inflight[NQ];	/* posts: one; quick: a list */
	int		 nquick;	/* ops on the quick list */
	int64_t		 next_post_ms;	/* pacing: no POST before this wall time */
	uv_timer_t	*timer[NQ];
	int		 dirty;		/* rows queued in an open transaction */
	struct lane	*next;
};

struct out_op {
	struct chat_op	 op;
	struct lane	*lane;
	char		*key;		/* POST: our key for the result */
	json_t		*payload;	/* owns the strings op points into */
	char		*target;	/* resolved EDIT target */
	char		*thread;	/* resolved thread */
	const char	**choices;
	unsigned char	*data;		/* UPLOAD: the decoded bytes */
	int		 q;		/* Q_POST or Q_QUICK */
	struct out_op	*next;		/* the lane's quick list */
	int		 cancelled;	/* lane gone while the adapter held it */
	uint64_t	 sent_ms;	/* handed to the adapter (metrics) */
};

struct reg {
	char		*name;
	struct adapter	*adapter;
	struct reg	*next;
};

static struct lane	*lanes;
static struct reg	*regs;
static int		 outbox_running;
static struct metric	*m_sent, *m_failed, *m_retried;

static void	lane_kick(struct lane *);
static void	lane_kick_q(struct lane *, int);

/*
 * Per adapter: how long an op takes from the adapter taking it to its
 * answer, and why ops fail ("retry": will be tried again, "permanent").
 */
static void
outbox_metrics(const char *adapter, const struct out_op *o,
    const char *reason)
{
	char	*labels;

	if (reason == NULL) {
		labels = xasprintf("adapter=\"%s\"", adapter);
		metrics_observe(metrics_histogram(
		    "switchboard_outbox_send_seconds", labels, "Outbox op handed "
		    "to the adapter until the platform answered", NULL),
		    (double)(now_ms() - o->sent_ms) / 1000);
	} else {
		labels = xasprintf("adapter=\"%s\",reason=\"%s\"", adapter,
		    reason);
		metrics_inc(metrics_counter("switchboard_outbox_failures_total",
		    labels, "Outbox ops that failed, by adapter and reason"));
	}
	free(labels);
}

/* Replies being timed (outbox_time_reply), a small ring. */
#define TIMED_REPLIES	256
static struct {
	uint64_t	 id, arrival_ms;
} timed[TIMED_REPLIES];
static size_t		 ntimed_next;

void
outbox_time_reply(uint64_t id, uint64_t arrival_ms)
{
	timed[ntimed_next].id = id;
	timed[ntimed_next].arrival_ms = arrival_ms;
	ntimed_next = (ntimed_next + 1) % TIMED_REPLIES;
}

static void
reply_timed(uint64_t id)
{
	size_t	 i;

	for (i = 0; i < TIMED_REPLIES; i++)
		if (timed[i].id == id && id != 0) {
			metrics_observe(metrics_histogram(
			    "switchboard_event_first_reply_seconds", "",
			    "Inbound event arrived until the first reply its"
			    " work made was delivered", NULL),
			    (double)(now_ms() - timed[i].arrival_ms) / 1000);
			timed[i].id = 0;
			return;
		}
}

static struct adapter *
reg_find(const char *name)
{
	struct reg	*r;

	for (r = regs; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r->adapter;
	return NULL;
}

struct adapter *
outbox_adapter(const char *name)
{
	return reg_find(name);
}

void
outbox_register(const char *name, struct adapter *a)
{
	struct reg	*r;

	r = xcalloc(1, sizeof *r);
	r->name = xstrdup(name);
	r->adapter = a;
	r->next = regs;
	regs = r;
}

void
outbox_unregister(const char *name)
{
	struct reg	**pp, *r;

	for (pp = &regs; (r = *pp) != NULL; pp = &r->next) {
		if (strcmp(r->name, name) == 0) {
			*pp = r->next;
			free(r->name);
			free(r);
			return;
		}
	}
}

static void
lane_timer_fired(uv_timer_t *t)
{
	struct lane	*l = t->data;

	lane_kick_q(l, t == l->timer[Q_POST] ? Q_POST : Q_QUICK);
}

static int	is_root_key(const char *);

/*
 * Which ops of a channel keep their order among themselves.  By default all
 * of them: one lane per channel (group "").  An adapter with
 * caps.order_per_thread needs only the order of one thread: every thread is
 * its own lane ("t:" + root id or root key; a new thread's root post,
 * thread NULL and key "c7.root", shares the lane of the thread it opens), and
 * every reaction is a lane of its own ("r:" + row id), so a reaction never
 * waits for a message of another thread, nor a thread for another thread.
 * (caps.per_method_limits splits a lane into a paced queue for posts and a
 * quick one for the rest instead; the two are not meant to be combined.)
 */
static char *
lane_group(const char *adapter, uint64_t id, const char *op,
    const char *thread, const char *key)
{
	struct adapter	*a;

	if ((a = reg_find(adapter)) == NULL || !a->ops->caps(a)->order_per_thread)
		return xstrdup("");
	if (strcmp(op, "react") == 0)
		return xasprintf("r:%llu", (unsigned long long)id);
	if (thread == NULL && key != NULL && is_root_key(key))
		return xasprintf("t:%s", key);
	return xasprintf("t:%s", thread != NULL ? thread : "");
}

static struct lane *
lane_get(const char *adapter, const char *channel, const char *group)
{
	struct lane	*l;
	int		 q;

	for (l = lanes; l != NULL; l = l->next)
		if (strcmp(l->adapter, adapter) == 0 &&
		    strcmp(l->channel, channel) == 0 &&
		    strcmp(l->group, group) == 0)
			return l;
	l = xcalloc(1, sizeof *l);
	l->adapter = xstrdup(adapter);
	l->channel = xstrdup(channel);
	l->group = xstrdup(group);
	for (q = 0; q < NQ; q++) {
		l->timer[q] = xcalloc(1, sizeof *l->timer[q]);
		uv_timer_init(loop_uv(), l->timer[q]);
		l->timer[q]->data = l;
	}
	l->next = lanes;
	lanes = l;
	return l;
}

/* A per-thread or per-reaction lane with nothing left goes away. */
static void
lane_free(struct lane *l)
{
	struct lane	**pp;
	int		 q;

	for (pp = &lanes; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	for (q = 0; q < NQ; q++)
		loop_close_free((uv_handle_t *)l->timer[q]);
	free(l->adapter);
	free(l->channel);
	free(l->group);
	free(l);
}

static void
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
	free(o);
}

static int	 kick_deferred;

static void
kick_all(void *arg)
{
	struct lane	*l, *next;

	kick_deferred = 0;
	if (!outbox_running)
		return;
	/*
	 * Only the lanes that got rows: a kick looks for its head in SQL,
	 * and every channel ever written to has a lane.
	 */
	for (l = lanes; l != NULL; l = next) {
		next = l->next;		/* a kick may free l */
		if (!l->dirty)
			continue;
		l->dirty = 0;
		lane_kick(l);
	}
}

static uint64_t
enqueue(const char *adapter, const char *channel, const char *thread,
    const char *op, const char *key, json_t *payload)
{
	sqlite3_stmt	*st;
	struct lane	*l;
	char		*s, *group;
	uint64_t	 id = 0;

	s = json_dumps(payload, JSON_COMPACT);
	json_decref(payload);
	st = store_stmt("INSERT INTO outbox (adapter, channel, thread, op,"
	    " msg_key, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, channel);
	store_bind_text(st, 3, thread);
	store_bind_text(st, 4, op);
	store_bind_text(st, 5, key);
	store_bind_text(st, 6, s);
	store_bind_int(st, 7, wall_s());
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("outbox: insert failed: %s",
		    sqlite3_errmsg(store_db()));
	else
		id = (uint64_t)sqlite3_last_insert_rowid(store_db());
	sqlite3_reset(st);
	free(s);
	if (id == 0 || !outbox_running)
		return id;
	group = lane_group(adapter, id, op, thread, key);
	l = lane_get(adapter, channel, group);
	free(group);
	/*
	 * Never send a row before it is committed: inside a transaction
	 * (the work of an inbound event), a kill -9 before the commit would
	 * leave a message out there that the store never had, and the replay
	 * would send it again.  Transactions end within a loop turn.
	 */
	if (!sqlite3_get_autocommit(store_db())) {
		l->dirty = 1;
		if (!kick_deferred) {
			kick_deferred = 1;
			loop_defer(kick_all, NULL);
		}
	} else
		lane_kick(l);
	return id;
}

static json_t *
choices_json(const char *const *choices)
{
	json_t	*a;

	if (choices == NULL)
		return json_null();
	a = json_array();
	for (; *choices != NULL; choices++)
		json_array_append_new(a, json_string(*choices));
	return a;
}

/* The adapter's text limit, or 0 when it is not registered (disabled). */
static size_t
max_text(const char *adapter)
{
	struct adapter	*a;

	if ((a = reg_find(adapter)) == NULL)
		return 0;
	return a->ops->caps(a)->max_text;
}

const struct adapter_caps *
outbox_caps(const char *adapter)
{
	struct adapter	*a;

	if ((a = reg_find(adapter)) == NULL)
		return NULL;
	return a->ops->caps(a);
}

/* A copy of text cut to max bytes (UTF-8 safe) with a marker, or NULL. */
static char *
truncated(const char *text, size_t max)
{
	static const char	 mark[] = "\n… (cut)";
	char			*s;

	if (max == 0 || strlen(text) <= max || max < sizeof mark)
		return NULL;
	s = xstrdup(text);
	utf8_truncate(s, max - sizeof mark);
	s = xrealloc(s, strlen(s) + sizeof mark);
	strcat(s, mark);
	return s;
}

uint64_t
outbox_post(const char *adapter, const char *channel, const char *thread,
    const char *thread_key, const char *key, const char *text,
    const char *const *choices, const char *question)
{
	json_t		*p;
	size_t		 max = max_text(adapter), n, i;
	char		**parts, *cut;
	uint64_t	 id = 0;

	/*
	 * Long plain text is split into several messages in order; a keyed
	 * message (a card, a question) is one message we edit later, so it
	 * is cut instead.
	 */
	if (key == NULL && choices == NULL && max > 0 && strlen(text) > max) {
		n = render_split(text, max, &parts);
		for (i = 0; i < n; i++) {
			p = json_pack("{s:s, s:o, s:s?}", "text", parts[i],
			    "choices", json_null(), "thread_key", thread_key);
			if ((id = enqueue(adapter, channel, thread, "post",
			    NULL, p)) == 0)
				break;
		}
		for (i = 0; i < n; i++)
			free(parts[i]);
		free(parts);
		return id;
	}
	cut = truncated(text, max);
	p = json_pack("{s:s, s:o, s:s?, s:s?}", "text", cut != NULL ? cut : text,
	    "choices", choices_json(choices), "question", question,
	    "thread_key", thread_key);
	free(cut);
	return enqueue(adapter, channel, thread, "post", key, p);
}

uint64_t
outbox_edit(const char *adapter, const char *channel, const char *thread,
    const char *key, const char *text, const char *const *choices,
    const char *question, int closed)
{
	sqlite3_stmt	*st;
	json_t		*p;
	char		*s, *cut;
	int64_t		 busy = -1;
	struct lane	*l;
	struct out_op	*o;
	int		 q;

	cut = truncated(text, max_text(adapter));
	p = json_pack("{s:s, s:o, s:s?, s:b}", "text", cut != NULL ? cut : text,
	    "choices", choices_json(choices), "question", question,
	    "closed", closed);
	free(cut);

	/*
	 * Latest state wins: rewrite a pending edit of the same message in
	 * place, unless the adapter holds it right now.
	 */
	for (l = lanes; l != NULL; l = l->next)
		if (strcmp(l->adapter, adapter) == 0 &&
		    strcmp(l->channel, channel) == 0)
			for (q = 0; q < NQ; q++)
				for (o = l->inflight[q]; o != NULL;
				    o = q == Q_QUICK ? o->next : NULL)
					if (o->op.kind == CHAT_OP_EDIT &&
					    o->key != NULL &&
					    strcmp(o->key, key) == 0)
						busy = (int64_t)o->op.id;
	s = json_dumps(p, JSON_COMPACT);
	st = store_stmt("UPDATE outbox SET payload = ? WHERE id = (SELECT"
	    " max(id) FROM outbox WHERE status = 'pending' AND op = 'edit'"
	    " AND adapter = ? AND channel = ? AND msg_key = ? AND id != ?)");
	store_bind_text(st, 1, s);
	store_bind_text(st, 2, adapter);
	store_bind_text(st, 3, channel);
	store_bind_text(st, 4, key);
	store_bind_int(st, 5, busy);
	free(s);
	if (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(store_db()) > 0) {
		sqlite3_reset(st);
		json_decref(p);
		return 1;
	}
	sqlite3_reset(st);
	return enqueue(adapter, channel, thread, "edit", key, p);
}

uint64_t
outbox_react(const char *adapter, const char *channel, const char *thread,
    const char *target, const char *emoji)
{
	json_t	*p;

	p = json_pack("{s:s, s:s}", "target", target, "emoji", emoji);
	return enqueue(adapter, channel, thread, "react", NULL, p);
}

/*
 * The bytes of an upload travel base64-encoded in the row's JSON payload
 * (jansson strings must be UTF-8; a diff or a log need not be).
 */
uint64_t
outbox_upload(const char *adapter, const char *channel, const char *thread,
    const char *filename, const char *title, const void *data, size_t len)
{
	json_t	*p;
	char	*b64;

	b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	p = json_pack("{s:s, s:s?, s:s, s:I}", "filename", filename, "title",
	    title, "data_b64", b64, "size", (json_int_t)len);
	free(b64);
	return enqueue(adapter, channel, thread, "upload", NULL, p);
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

char *
outbox_ref_of(const char *key)
{
	sqlite3_stmt	*st;
	char		*ref = NULL;

	st = store_stmt("SELECT platform_ref FROM messages WHERE key = ?");
	store_bind_text(st, 1, key);
	if (sqlite3_step(st) == SQLITE_ROW)
		ref = store_col_text(st, 0);
	sqlite3_reset(st);
	return ref;
}

char *
outbox_key_of(const char *adapter, const char *channel, const char *ref)
{
	sqlite3_stmt	*st;
	char		*key = NULL;

	st = store_stmt("SELECT key FROM messages WHERE adapter = ? AND"
	    " channel = ? AND platform_ref = ?");
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, channel);
	store_bind_text(st, 3, ref);
	if (sqlite3_step(st) == SQLITE_ROW)
		key = store_col_text(st, 0);
	sqlite3_reset(st);
	return key;
}

static int
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
static int
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

static void
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

static const char *
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

/* Row id is in flight, or is an edit of a message whose edit is. */
static int
quick_busy(const struct lane *l, int64_t id, const char *op, const char *key)
{
	const struct out_op	*o;

	for (o = l->inflight[Q_QUICK]; o != NULL; o = o->next)
		if ((int64_t)o->op.id == id || (strcmp(op, "edit") == 0 &&
		    o->op.kind == CHAT_OP_EDIT && key != NULL &&
		    o->key != NULL && strcmp(o->key, key) == 0))
			return 1;
	return 0;
}

/*
 * Loads the head row of queue q into an op.  Returns 1 with *out set, 0 when
 * the queue is empty, or a positive wait in ms via *wait_ms (head not due
 * yet).  In the quick queue an edit whose message is not sent yet is passed
 * over (the post's completion kicks the queue again); the first other row
 * is the head.
 */
static int
lane_head(struct lane *l, int q, int single, struct out_op **out,
    int64_t *wait_ms)
{
	sqlite3_stmt	*st;
	struct out_op	*o;
	const char	*op, *payload, *tk, *s;
	char		*ref;
	json_error_t	 jerr;
	json_t		*choices;
	int64_t		 nb, now = wall_ms(), after;
	size_t		 i, n;
	char		*g;
	int		 found;

	*out = NULL;
	*wait_ms = 0;
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
			return 0;
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
	    " ORDER BY id LIMIT 1");
	store_bind_text(st, 1, l->adapter);
	store_bind_text(st, 2, l->channel);
	store_bind_int(st, 3, after);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return 0;
	}
row:
	nb = sqlite3_column_int64(st, 5);
	if (nb > now) {
		*wait_ms = nb - now;
		sqlite3_reset(st);
		return 0;
	}
	if (q == Q_QUICK && quick_busy(l, sqlite3_column_int64(st, 0),
	    (const char *)sqlite3_column_text(st, 2),
	    (const char *)sqlite3_column_text(st, 3))) {
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
	o->payload = json_loads(payload, 0, &jerr);
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
}

static void
lane_unlink(struct lane *l, struct out_op *o)
{
	struct out_op	**pp;

	if (o->q == Q_POST) {
		l->inflight[Q_POST] = NULL;
		return;
	}
	for (pp = &l->inflight[Q_QUICK]; *pp != NULL; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			l->nquick--;
			return;
		}
}

/* Reactions first: of a message's 👀 and its reply, 👀 is the urgent one. */
static void
lane_kick(struct lane *l)
{
	lane_kick_q(l, Q_QUICK);
	lane_kick_q(l, Q_POST);
}

static void
lane_kick_q(struct lane *l, int q)
{
	struct adapter	*a;
	struct out_op	*o;
	int64_t		 wait, now;
	int		 single;

	if (!outbox_running || (q == Q_POST ? l->inflight[q] != NULL :
	    l->nquick >= QUICK_MAX))
		return;
	if ((a = reg_find(l->adapter)) == NULL)
		return;		/* adapter disabled: rows wait for it */
	single = !a->ops->caps(a)->per_method_limits;
	if (single && q == Q_QUICK)
		return;		/* everything goes through Q_POST */
	if (lane_head(l, q, single, &o, &wait) == 0) {
		if (wait > 0)
			uv_timer_start(l->timer[q], lane_timer_fired,
			    (uint64_t)wait, 0);
		else if (l->group[0] != '\0' && l->inflight[Q_POST] == NULL &&
		    l->nquick == 0)
			lane_free(l);	/* nobody holds l after a kick */
		return;
	}
	/*
	 * Pacing is for new messages (Slack: about one per second per
	 * channel).  Reactions and edits have their own per-method limits,
	 * which a 429 enforces; pacing them too would hold the first reply
	 * of every thread behind its 👀 for a whole interval.
	 */
	now = wall_ms();
	if ((o->op.kind == CHAT_OP_POST || o->op.kind == CHAT_OP_UPLOAD) &&
	    l->next_post_ms > now) {
		op_free(o);
		uv_timer_start(l->timer[q], lane_timer_fired,
		    (uint64_t)(l->next_post_ms - now), 0);
		return;
	}
	o->sent_ms = now_ms();
	if (q == Q_POST)
		l->inflight[q] = o;
	else {
		o->next = l->inflight[q];
		l->inflight[q] = o;
		l->nquick++;
	}
	log_debug("outbox: %s row %llu to %s/%s", ops_name(o->op.kind),
	    (unsigned long long)o->op.id, l->adapter, l->channel);
	if (a->ops->send(a, &o->op) != 0) {
		/* Not connected: keep the row, look again shortly. */
		lane_unlink(l, o);
		op_free(o);
		uv_timer_start(l->timer[q], lane_timer_fired, 1000, 0);
		return;
	}
	/* The quick queue fills its slots; send() may have settled o. */
	if (q == Q_QUICK)
		lane_kick_q(l, q);
}

/* After an op of queue q settled; a sent post may unblock edits too. */
static void
lane_next(struct lane *l, int q, enum chat_op_kind done)
{
	struct adapter			*a;
	const struct adapter_caps	*caps;

	if ((done == CHAT_OP_POST || done == CHAT_OP_UPLOAD) &&
	    (a = reg_find(l->adapter)) != NULL) {
		caps = a->ops->caps(a);
		l->next_post_ms = wall_ms() + caps->min_interval_ms;
	}
	if (done == CHAT_OP_POST)
		lane_kick(l);
	else
		lane_kick_q(l, q);
}

void
chat_op_done(struct chat_op *op, const char *ref)
{
	struct out_op	*o = op->priv;
	struct lane	*l = o->lane;
	enum chat_op_kind kind;
	sqlite3_stmt	*st;
	int		 q;

	if (o->cancelled) {
		op_free(o);
		return;
	}
	/*
	 * Not fsynced by itself (the next full commit carries it): a "sent"
	 * lost to a power cut leaves the row pending, and its resend finds
	 * the message by the row's idempotency key (Slack reads the thread
	 * back, Matrix reuses the txnId; a 👀 again is already_reacted),
	 * exactly as after a kill -9 between the reply and this commit.
	 */
	store_begin_lazy();
	row_finish(op->id, "sent", NULL, 0, 0);
	if (op->kind == CHAT_OP_POST && o->key != NULL && ref != NULL) {
		st = store_stmt("INSERT OR REPLACE INTO messages (key, adapter,"
		    " channel, thread, platform_ref) VALUES (?, ?, ?, ?, ?)");
		store_bind_text(st, 1, o->key);
		store_bind_text(st, 2, l->adapter);
		store_bind_text(st, 3, l->channel);
		store_bind_text(st, 4, op->thread != NULL ? op->thread : ref);
		store_bind_text(st, 5, ref);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warnx("outbox: recording message %s failed: %s",
			    o->key, sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
	}
	store_commit();
	metrics_inc(m_sent);
	outbox_metrics(l->adapter, o, NULL);
	reply_timed(op->id);
	kind = op->kind;
	q = o->q;
	lane_unlink(l, o);
	op_free(o);
	lane_next(l, q, kind);
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
		metrics_inc(m_retried);
		outbox_metrics(l->adapter, o, "retry");
	}
	kind = op->kind;
	q = o->q;
	lane_unlink(l, o);
	op_free(o);
	lane_next(l, q, kind);
}

uint64_t
chat_op_last_id(void)
{
	sqlite3_stmt	*st;
	uint64_t	 id = 0;

	st = store_stmt("SELECT max(id) FROM outbox");
	if (sqlite3_step(st) == SQLITE_ROW)
		id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return id;
}

int
outbox_init(void)
{
	sqlite3_stmt	*st;
	struct lane	*l, *next;
	char		*g;

	m_sent = metrics_counter("switchboard_outbox_sent_total", "",
	    "Chat operations delivered");
	m_failed = metrics_counter("switchboard_outbox_failed_total", "",
	    "Chat operations given up on");
	m_retried = metrics_counter("switchboard_outbox_retries_total", "",
	    "Chat operations retried after a failure");
	outbox_running = 1;
	st = store_stmt("SELECT adapter, channel, id, op, thread, msg_key FROM"
	    " outbox WHERE status = 'pending'");
	while (sqlite3_step(st) == SQLITE_ROW) {
		g = lane_group((const char *)sqlite3_column_text(st, 0),
		    (uint64_t)sqlite3_column_int64(st, 2),
		    (const char *)sqlite3_column_text(st, 3),
		    (const char *)sqlite3_column_text(st, 4),
		    (const char *)sqlite3_column_text(st, 5));
		lane_get((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1), g);
		free(g);
	}
	sqlite3_reset(st);
	for (l = lanes; l != NULL; l = next) {
		next = l->next;		/* a kick may free l */
		lane_kick(l);
	}
	return 0;
}

void
outbox_shutdown(void)
{
	struct lane	*l;
	struct reg	*r;
	struct out_op	*o;
	int		 q;

	outbox_running = 0;
	while ((l = lanes) != NULL) {
		lanes = l->next;
		/* The adapter may still hold the op; it reports into a tombstone. */
		for (q = 0; q < NQ; q++) {
			for (o = l->inflight[q]; o != NULL; o = o->next)
				o->cancelled = 1;
			loop_close_free((uv_handle_t *)l->timer[q]);
		}
		free(l->adapter);
		free(l->channel);
		free(l->group);
		free(l);
	}
	while ((r = regs) != NULL) {
		regs = r->next;
		free(r->name);
		free(r);
	}
}

size_t
outbox_pending(void)
{
	sqlite3_stmt	*st;
	size_t		 n = 0;

	st = store_stmt("SELECT count(*) FROM outbox WHERE status = 'pending'");
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

size_t
outbox_inflight(void)
{
	struct lane	*l;
	size_t		 n = 0;

	for (l = lanes; l != NULL; l = l->next)
		n += (l->inflight[Q_POST] != NULL) + (size_t)l->nquick;
	return n;
}
