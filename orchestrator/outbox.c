#include "orchestrator/outbox.h"
#include "orchestrator/outbox-int.h"
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

static struct reg	*regs;
struct lane		*lanes;
int			 outbox_running;
struct metric		*m_sent, *m_failed, *m_retried;

/*
 * Per adapter: how long an op takes from the adapter taking it to its
 * answer, and why ops fail ("retry": will be tried again, "permanent").
 */
void
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

void
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

struct adapter *
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
outbox_on_post(const char *name, void (*fn)(void *, uint64_t), void *arg)
{
	struct reg	*r;

	for (r = regs; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0) {
			r->on_post = fn;
			r->on_post_arg = arg;
		}
}

/*
 * Post row id of lane l goes out as soon as its transaction commits: no op
 * in flight in its queue, none counted ahead of it, no pacing gap to wait
 * for.  Its adapter's outbox_on_post runs now, in that transaction, if the
 * commit is synced (outside a transaction the insert was, and so is what
 * the hook writes).
 */
static void
on_post(struct lane *l, uint64_t id)
{
	struct reg	*r;

	if (l->inflight[Q_POST] != NULL || l->npend[Q_POST] != 0 ||
	    l->next_post_ms > wall_ms() || store_tx_lazy())
		return;
	for (r = regs; r != NULL; r = r->next)
		if (strcmp(r->name, l->adapter) == 0 && r->on_post != NULL)
			r->on_post(r->on_post_arg, id);
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
	if (strcmp(op, "post") == 0)
		on_post(l, id);
	lane_mark(l, op);
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
	outbox_done_flush();	/* answered ops: record them sent */
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
	outbox_pace_free();
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
