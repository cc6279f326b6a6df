/*
 * chat-inbox — chat events through the inbox: an adapter puts an event
 * (chat_inbox_put) instead of calling chat_on_event, the inbox records it in
 * the next group commit and the adapter acks after that; the event reaches
 * chat_on_event later, from its row, inside the transaction that deletes
 * the row.
 *
 * Kept apart from chat.c so that an adapter's unit test can link this with
 * its own chat_on_event.  Rows name their adapter; the adapter is found by
 * that name among those that put events in this run, else through the
 * lookup chat_configure installs (the outbox's registry), which is how rows
 * left by an earlier run find theirs.
 */
#include "orchestrator/chat.h"
#include "orchestrator/inbox.h"
#include "adapters/adapter.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct known {
	char		*name;
	struct adapter	*ad;
	struct known	*next;
};

static struct known	*known;
static struct adapter	*(*fallback)(const char *);
static int		 registered;

static void
remember(struct adapter *ad)
{
	struct known	*k;

	for (k = known; k != NULL; k = k->next)
		if (strcmp(k->name, ad->ops->name) == 0) {
			k->ad = ad;
			return;
		}
	k = xcalloc(1, sizeof *k);
	k->name = xstrdup(ad->ops->name);
	k->ad = ad;
	k->next = known;
	known = k;
}

static struct adapter *
adapter_named(const char *name)
{
	struct known	*k;

	for (k = known; k != NULL; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k->ad;
	return fallback != NULL ? fallback(name) : NULL;
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

json_t *
chat_event_json(const char *adapter, const struct chat_event *ev)
{
	return json_pack("{s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?,"
	    " s:s?, s:b, s:s?, s:s?, s:s?, s:s?}",
	    "adapter", adapter, "kind", (int)ev->kind,
	    "channel", ev->channel, "thread", ev->thread,
	    "msg_id", ev->msg_id, "sender", ev->sender,
	    "sender_name", ev->sender_name, "text", ev->text,
	    "reply_to", ev->reply_to, "mentioned", ev->mentioned,
	    "question", ev->question, "choice", ev->choice,
	    "target", ev->target, "emoji", ev->emoji);
}

void
chat_event_of_json(json_t *p, struct chat_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = (enum chat_event_kind)json_integer_value(
	    json_object_get(p, "kind"));
	ev->channel = str(p, "channel");
	ev->thread = str(p, "thread");
	ev->msg_id = str(p, "msg_id");
	ev->sender = str(p, "sender");
	ev->sender_name = str(p, "sender_name");
	ev->text = str(p, "text");
	ev->reply_to = str(p, "reply_to");
	ev->mentioned = json_is_true(json_object_get(p, "mentioned"));
	ev->question = str(p, "question");
	ev->choice = str(p, "choice");
	ev->target = str(p, "target");
	ev->emoji = str(p, "emoji");
}

static int
process(json_t *p, void *arg)
{
	struct chat_event	 ev;
	struct adapter		*ad;
	const char		*name = str(p, "adapter");

	if (name == NULL || (ad = adapter_named(name)) == NULL) {
		log_warnx("chat: inbox event for adapter %s, which is not"
		    " running; dropped", name != NULL ? name : "?");
		return 0;
	}
	chat_event_of_json(p, &ev);
	if (ev.channel == NULL) {
		log_warnx("chat: inbox event without a channel; dropped");
		return 0;
	}
	chat_on_event(ad, &ev);
	return 0;
}

/* What process reads of a row: chat_event_of_json's members. */
static const char *const chat_keys[] = { "adapter", "kind", "channel",
    "thread", "msg_id", "sender", "sender_name", "text", "reply_to",
    "mentioned", "question", "choice", "target", "emoji" };

static void
ensure_kind(void)
{
	if (!registered) {
		registered = 1;
		inbox_kind("chat", process, NULL, NULL);
		inbox_kind_reads("chat", chat_keys, nitems(chat_keys));
	}
}

/* ---- events parked until their thread is checked ---------------------- */

/*
 * A message that would start a conversation in a thread never seen, on a
 * platform that can say whether the thread exists (a Slack thread_ts can
 * point nowhere), waits for that answer without holding up the inbox: it
 * is parked — durably, as a kv row, in the transaction that deletes its
 * inbox row — and put back into the inbox when the adapter knows.  Later
 * events of that thread are parked behind it, so the thread's order holds.
 * Keys sort in parking order: PARK_PREFIX + a zero-padded counter.
 */
#define PARK_PREFIX	"chat.parked."
#define PARK_END	"chat.parked/"		/* '/' follows '.' */
#define PARK_RETRY_MS	1000

struct parked {
	char		*adapter, *channel, *thread;
	struct parked	*next;
};

static struct parked	*parked;
static uint64_t		 park_seq;
static struct loop_timer *unpark_timer;

static struct parked **
parked_find(const char *adapter, const char *channel, const char *thread)
{
	struct parked	**pp;

	for (pp = &parked; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->thread, thread) == 0 &&
		    strcmp((*pp)->channel, channel) == 0 &&
		    strcmp((*pp)->adapter, adapter) == 0)
			return pp;
	return NULL;
}

int
chat_thread_parked(const char *adapter, const char *channel,
    const char *thread)
{
	return parked_find(adapter, channel, thread) != NULL;
}

static void
parked_add(const char *adapter, const char *channel, const char *thread)
{
	struct parked	*p;

	if (parked_find(adapter, channel, thread) != NULL)
		return;
	p = xcalloc(1, sizeof *p);
	p->adapter = xstrdup(adapter);
	p->channel = xstrdup(channel);
	p->thread = xstrdup(thread);
	p->next = parked;
	parked = p;
}

static void
parked_free(struct parked *p)
{
	free(p->adapter);
	free(p->channel);
	free(p->thread);
	free(p);
}

int
chat_park(const char *adapter, const struct chat_event *ev)
{
	json_t	*p;
	char	*s, key[64];
	int	 rc;

	if (park_seq == 0)
		park_seq = (uint64_t)wall_ms() * 1000;
	snprintf(key, sizeof key, PARK_PREFIX "%020" PRIu64, park_seq++);
	p = chat_event_json(adapter, ev);
	s = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	rc = store_kv_set(key, s);
	free(s);
	if (rc == 0 && ev->thread != NULL)
		parked_add(adapter, ev->channel, ev->thread);
	return rc;
}

/*
 * Moves parked events back into the inbox, in parking order, in one
 * transaction: all of them (thread NULL: at start), or those of one thread.
 * -1 if the store refused.
 */
static int
unpark(const char *adapter, const char *channel, const char *thread)
{
	sqlite3_stmt	*st, *del;
	json_t		*p;
	char		*key;
	const char	*text;
	int		 rc = 0, n = 0;

	if (store_db() == NULL || store_begin() == -1)
		return -1;
	st = store_stmt("SELECT key, value FROM kv WHERE key >= ? AND key < ?"
	    " ORDER BY key");
	store_bind_text(st, 1, PARK_PREFIX);
	store_bind_text(st, 2, PARK_END);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		text = (const char *)sqlite3_column_text(st, 1);
		if ((p = text != NULL ? json_loads(text, 0, NULL) : NULL) ==
		    NULL)
			continue;	/* not ours to read: left alone */
		if (thread == NULL || (str(p, "thread") != NULL &&
		    strcmp(str(p, "thread"), thread) == 0 &&
		    str(p, "channel") != NULL &&
		    strcmp(str(p, "channel"), channel) == 0 &&
		    str(p, "adapter") != NULL &&
		    strcmp(str(p, "adapter"), adapter) == 0)) {
			key = store_col_text(st, 0);
			rc = inbox_add("chat", p);
			del = store_stmt("DELETE FROM kv WHERE key = ?");
			store_bind_text(del, 1, key);
			if (rc == 0 && sqlite3_step(del) != SQLITE_DONE)
				rc = -1;
			sqlite3_reset(del);
			free(key);
			n++;
		}
		json_decref(p);
	}
	sqlite3_reset(st);
	if (rc == -1) {
		store_rollback();
		return -1;
	}
	if (store_commit() == -1)
		return -1;
	if (n > 0)
		log_info("chat: %d parked event%s back in the inbox%s%s", n,
		    n == 1 ? "" : "s", thread != NULL ? ", thread " : "",
		    thread != NULL ? thread : "");
	return 0;
}

static void	unpark_retry(void *);

/* Every thread whose answer is in: back into the inbox (or retried). */
static void
unpark_known(void)
{
	struct parked	**pp, *p;
	struct adapter	*ad;
	int		 again = 0;

	for (pp = &parked; (p = *pp) != NULL; ) {
		/* No adapter (a reload replaces it): asked again later. */
		if ((ad = adapter_named(p->adapter)) == NULL)
			again = 1;
		if (ad == NULL || (ad->ops->thread_exists != NULL &&
		    ad->ops->thread_exists(ad, p->channel, p->thread) == -1)) {
			pp = &p->next;
			continue;
		}
		if (unpark(p->adapter, p->channel, p->thread) == -1) {
			again = 1;
			break;
		}
		*pp = p->next;
		parked_free(p);
	}
	if (again && unpark_timer == NULL)
		unpark_timer = loop_timer_once(PARK_RETRY_MS, unpark_retry,
		    NULL);
}

static void
unpark_retry(void *arg)
{
	unpark_timer = NULL;
	unpark_known();
}

void
chat_thread_checked(struct adapter *ad, const char *channel,
    const char *thread)
{
	struct parked	**pp, *p;

	if ((pp = parked_find(ad->ops->name, channel, thread)) == NULL)
		return;
	/* Never inside someone's transaction: its commit is not ours. */
	if (store_db() != NULL && sqlite3_get_autocommit(store_db()) &&
	    unpark(ad->ops->name, channel, thread) == 0) {
		p = *pp;
		*pp = p->next;
		parked_free(p);
		return;
	}
	if (unpark_timer == NULL)
		unpark_timer = loop_timer_once(PARK_RETRY_MS, unpark_retry,
		    NULL);
}

void
chat_inbox_setup(struct adapter *(*lookup)(const char *),
    inbox_insert_fn on_insert, inbox_inline_fn inline_ok)
{
	fallback = lookup;
	registered = 1;
	inbox_kind("chat", process, on_insert, NULL);
	inbox_kind_reads("chat", chat_keys, nitems(chat_keys));
	inbox_kind_inline("chat", inline_ok);
	/*
	 * What an earlier run parked is checked again from its row; on a
	 * reload, what this run parked is asked about again (the adapter
	 * that was asking may be gone).
	 */
	if (parked != NULL) {
		if (unpark_timer == NULL)
			unpark_timer = loop_timer_once(PARK_RETRY_MS,
			    unpark_retry, NULL);
	} else if (store_db() != NULL && unpark(NULL, NULL, NULL) == -1)
		log_warnx("chat: parked events stay parked until the next"
		    " start: the store refused");
	inbox_kick();
}

void
chat_inbox_put(struct adapter *ad, const struct chat_event *ev,
    const struct inbox_key *keys, size_t nkeys)
{
	ensure_kind();
	remember(ad);
	inbox_put("chat", chat_event_json(ad->ops->name, ev), keys, nkeys,
	    NULL, NULL);
}

int
chat_inbox_add(struct adapter *ad, const struct chat_event *ev)
{
	json_t	*p;
	int	 rc;

	ensure_kind();
	remember(ad);
	p = chat_event_json(ad->ops->name, ev);
	rc = inbox_add("chat", p);
	json_decref(p);
	return rc;
}

void
chat_inbox_forget(struct adapter *ad)
{
	struct known	**pp, *k;

	for (pp = &known; (k = *pp) != NULL; )
		if (k->ad == ad) {
			*pp = k->next;
			free(k->name);
			free(k);
		} else
			pp = &k->next;
}
