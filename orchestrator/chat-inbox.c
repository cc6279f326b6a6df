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
#include "bot/util.h"

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

static void
ensure_kind(void)
{
	if (!registered) {
		registered = 1;
		inbox_kind("chat", process, NULL, NULL);
	}
}

void
chat_inbox_setup(struct adapter *(*lookup)(const char *),
    inbox_insert_fn on_insert)
{
	fallback = lookup;
	registered = 1;
	inbox_kind("chat", process, on_insert, NULL);
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
