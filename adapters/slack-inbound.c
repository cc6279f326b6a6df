/*
 * slack-inbound — Slack events to chat events: the filters (our own
 * messages, edits, joins), the two-level dedup (event_id, then channel+ts),
 * threads, mentions and Slack's markup, button clicks, and Socket Mode's
 * frames around them.  Events go to the inbox (orchestrator/inbox.h): the
 * transport acks once they are recorded, the core gets them from there.
 */
#include "adapters/slack.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "orchestrator/chat.h"
#include "orchestrator/inbox.h"
#include "orchestrator/jscan.h"

#include <stdlib.h>
#include <string.h>

/* An inbound event on its way to the inbox. */
struct slack_in {
	enum chat_event_kind	 kind;
	char			*channel, *thread, *msg_id, *sender, *text;
	char			*question, *choice, *target, *emoji;
	int			 mentioned;
};

/* ---- inbound ------------------------------------------------------------------ */

static void
slack_in_free(struct slack_in *in)
{
	free(in->channel);
	free(in->thread);
	free(in->msg_id);
	free(in->sender);
	free(in->text);
	free(in->question);
	free(in->choice);
	free(in->target);
	free(in->emoji);
	free(in);
}

/*
 * Into the inbox with its dedup keys: recorded in the next group commit
 * (the Socket Mode ack follows that commit, the Events API answer too),
 * and handed to the core from its row afterwards.  A duplicate key drops
 * it there, in order, so the message and app_mention of one message in
 * the same batch still make one event.
 */
static void
slack_in_schedule(struct slack *s, struct slack_in *in,
    const struct inbox_key *keys, size_t nkeys)
{
	struct chat_event	 ev;

	memset(&ev, 0, sizeof ev);
	ev.kind = in->kind;
	ev.channel = in->channel;
	ev.thread = in->thread;
	ev.msg_id = in->msg_id;
	ev.sender = in->sender;
	ev.text = in->text;
	ev.mentioned = in->mentioned;
	ev.question = in->question;
	ev.choice = in->choice;
	ev.target = in->target;
	ev.emoji = in->emoji;
	/* Slack threads have no per-message reply-to. */
	ev.reply_to = NULL;
	chat_inbox_put(&s->hdr, &ev, keys, nkeys);
	slack_in_free(in);
}

static char *
dupj(json_t *o, const char *key)
{
	const char	*v = json_string_value(json_object_get(o, key));

	return v != NULL ? xstrdup(v) : NULL;
}

static const char *
strj(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Unicode for a Slack reaction name, for the few the core understands. */
static const char *
slack_emoji_unicode(const char *name)
{
	static const char *const emo[] = { "👀", "1️⃣", "2️⃣", "3️⃣", "4️⃣",
	    "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟", "✅", "👍", "👎" };
	const char	*n;
	size_t		 i;

	for (i = 0; i < nitems(emo); i++)
		if ((n = slack_emoji_name(emo[i])) != NULL &&
		    strcmp(n, name) == 0)
			return emo[i];
	return NULL;
}

static int
slack_on_reaction(struct slack *s, json_t *ev, const struct inbox_key *key)
{
	struct slack_in	*in;
	json_t		*item = json_object_get(ev, "item");
	const char	*user = strj(ev, "user"), *name = strj(ev, "reaction");
	const char	*uni;

	if (user == NULL || name == NULL || !json_is_object(item) ||
	    strj(item, "channel") == NULL || strj(item, "ts") == NULL ||
	    strcmp(user, s->bot_user) == 0)
		return 0;
	if ((uni = slack_emoji_unicode(name)) == NULL)
		return 0;
	in = xcalloc(1, sizeof *in);
	in->kind = CHAT_EV_REACTION;
	in->channel = dupj(item, "channel");
	in->target = dupj(item, "ts");
	in->sender = xstrdup(user);
	in->emoji = xstrdup(uni);
	slack_in_schedule(s, in, key, 1);
	return 0;
}

static int
slack_on_message(struct slack *s, json_t *ev, int app_mention,
    const struct inbox_key *event_key)
{
	struct slack_in	*in;
	struct inbox_key keys[2];
	const char	*subtype = strj(ev, "subtype"), *user, *bot_id;
	const char	*channel, *ts, *thread_ts, *text, *ctype;
	char		*key;

	/* Plain messages, replies broadcast to the channel, file shares. */
	if (subtype != NULL && strcmp(subtype, "thread_broadcast") != 0 &&
	    strcmp(subtype, "file_share") != 0) {
		log_debug("slack: message subtype %s ignored", subtype);
		return 0;
	}
	user = strj(ev, "user");
	if (user == NULL && json_is_object(json_object_get(ev, "root")))
		/* thread_broadcast: read the author from its root (reply-loop bug). */
		user = strj(json_object_get(ev, "root"), "user");
	bot_id = strj(ev, "bot_id");
	channel = strj(ev, "channel");
	ts = strj(ev, "ts");
	if (user == NULL || channel == NULL || ts == NULL) {
		log_debug("slack: message without user, channel or ts ignored");
		return 0;
	}
	if (strcmp(user, s->bot_user) == 0 || (bot_id != NULL &&
	    s->bot_id != NULL && strcmp(bot_id, s->bot_id) == 0)) {
		log_debug("slack: our own message %s ignored", ts);
		return 0;
	}
	text = strj(ev, "text");
	thread_ts = strj(ev, "thread_ts");
	ctype = strj(ev, "channel_type");
	in = xcalloc(1, sizeof *in);
	in->kind = CHAT_EV_MESSAGE;
	in->channel = xstrdup(channel);
	in->msg_id = xstrdup(ts);
	/* A thread parent carries thread_ts == ts: it is top-level. */
	if (thread_ts != NULL && strcmp(thread_ts, ts) != 0)
		in->thread = xstrdup(thread_ts);
	in->sender = xstrdup(user);
	in->mentioned = app_mention || slack_text_mentions(text, s->bot_user) ||
	    (ctype != NULL && strcmp(ctype, "im") == 0) ||
	    (ctype == NULL && channel[0] == 'D');
	in->text = slack_text_decode(text != NULL ? text : "", s->bot_user);
	/* message and app_mention of the same message: act on the first. */
	key = xasprintf("%s:%s", channel, ts);
	keys[0] = *event_key;
	keys[1] = (struct inbox_key){ "slack.msg", key, SLACK_SEEN_TTL_S };
	slack_in_schedule(s, in, keys, 2);
	free(key);
	return 0;
}

static int	inbound_event(struct slack *, json_t *);
static int	inbound_interactive(struct slack *, json_t *);

/*
 * For the Events API, which answers synchronously: queued, then committed
 * now (with whatever else was queued), so the 200 means "recorded".
 */
int
slack_inbound_event(struct slack *s, json_t *payload)
{
	inbound_event(s, payload);
	return inbox_flush();
}

int
slack_inbound_interactive(struct slack *s, json_t *payload)
{
	inbound_interactive(s, payload);
	return inbox_flush();
}

static int
inbound_event(struct slack *s, json_t *payload)
{
	json_t		*ev;
	struct inbox_key key;
	const char	*type, *event_id;

	if (!json_is_object(payload) ||
	    (type = strj(payload, "type")) == NULL) {
		log_warnx("slack: event payload without a type, skipped");
		return 0;
	}
	if (strcmp(type, "event_callback") != 0) {
		log_info("slack: %s payload ignored", type);
		return 0;
	}
	ev = json_object_get(payload, "event");
	if ((event_id = strj(payload, "event_id")) == NULL ||
	    !json_is_object(ev) || (type = strj(ev, "type")) == NULL) {
		log_warnx("slack: event_callback without event_id or event,"
		    " skipped");
		return 0;
	}
	/* Redeliveries keep the event_id (even with retry_attempt 0). */
	key = (struct inbox_key){ "slack.event", event_id, SLACK_SEEN_TTL_S };
	if (!s->ready)
		return 0;
	if (strcmp(type, "message") == 0)
		return slack_on_message(s, ev, 0, &key);
	if (strcmp(type, "app_mention") == 0)
		return slack_on_message(s, ev, 1, &key);
	if (strcmp(type, "reaction_added") == 0)
		return slack_on_reaction(s, ev, &key);
	log_debug("slack: %s event ignored", type);
	return 0;
}

static int
inbound_interactive(struct slack *s, json_t *payload)
{
	struct slack_in	*in;
	json_t		*actions, *a, *msg, *container;
	struct inbox_key key;
	const char	*type, *user, *channel, *thread, *ats;
	char		*id, *question;
	size_t		 i;

	if (!json_is_object(payload) || (type = strj(payload, "type")) == NULL) {
		log_warnx("slack: interactive payload without a type, skipped");
		return 0;
	}
	if (strcmp(type, "block_actions") != 0) {
		log_info("slack: interactive %s ignored", type);
		return 0;
	}
	user = strj(json_object_get(payload, "user"), "id");
	container = json_object_get(payload, "container");
	msg = json_object_get(payload, "message");
	channel = strj(json_object_get(payload, "channel"), "id");
	if (channel == NULL)
		channel = strj(container, "channel_id");
	thread = strj(msg, "thread_ts");
	if (thread == NULL)
		thread = strj(container, "thread_ts");
	actions = json_object_get(payload, "actions");
	if (user == NULL || channel == NULL || !json_is_array(actions)) {
		log_warnx("slack: block_actions without user, channel or "
		    "actions, skipped");
		return 0;
	}
	json_array_foreach(actions, i, a) {
		if (slack_action_parse(strj(a, "action_id"), &question) != 0)
			continue;
		if (strj(a, "value") == NULL) {
			free(question);
			continue;
		}
		/* No event_id here: the click's own time and author are stable. */
		ats = strj(a, "action_ts");
		id = xasprintf("%s:%s:%s", user, ats != NULL ? ats : "?",
		    strj(a, "action_id"));
		key = (struct inbox_key){ "slack.action", id, SLACK_SEEN_TTL_S };
		in = xcalloc(1, sizeof *in);
		in->kind = CHAT_EV_CLICK;
		in->channel = xstrdup(channel);
		in->thread = thread != NULL ? xstrdup(thread) : NULL;
		in->sender = xstrdup(user);
		in->question = question;
		in->choice = dupj(a, "value");
		slack_in_schedule(s, in, &key, 1);
		free(id);
	}
	return 0;
}

/*
 * A copy of data with every byte that does not start a well-formed UTF-8
 * sequence (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF) replaced by
 * U+FFFD.  Returns NULL when data was valid (nothing to copy).
 */
static char *
utf8_sanitized(const char *data, size_t len, size_t *outlen)
{
	const unsigned char	*p = (const unsigned char *)data;
	struct buf		 b = { 0 };
	size_t			 i = 0, n, k;
	unsigned		 c, min;
	int			 bad = 0;

	while (i < len) {
		c = p[i];
		if (c < 0x80) {
			n = 1;
			min = 0;
		} else if ((c & 0xe0) == 0xc0) {
			n = 2;
			c &= 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			c &= 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			c &= 0x07;
			min = 0x10000;
		} else
			n = 0;
		for (k = 1; n > 1 && k < n; k++) {
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80) {
				n = 0;
				break;
			}
			c = c << 6 | (p[i + k] & 0x3f);
		}
		if (n == 0 || c < min || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff)) {
			buf_add(&b, "\xef\xbf\xbd", 3);
			bad = 1;
			i++;
			continue;
		}
		buf_add(&b, data + i, n);
		i += n;
	}
	if (!bad) {
		buf_free(&b);
		return NULL;
	}
	*outlen = b.len;
	return buf_steal(&b);
}

/* What inbound_event and its handlers read of an event. */
static const char *const event_keys[] = { "type", "subtype", "user", "root",
    "bot_id", "channel", "ts", "text", "thread_ts", "channel_type", "item",
    "reaction" };

/* Sets key to the span built by jansson; -1 when jansson refuses it. */
static int
set_span(json_t *o, const char *key, const struct jscan_field *f)
{
	json_t	*v;

	if (f->val == NULL)
		return 0;
	if ((v = jscan_value(f->val, f->len)) == NULL)
		return -1;
	json_object_set_new(o, key, v);
	return 0;
}

/*
 * The frame as the handlers read it, scanned rather than built: an event's
 * envelope is mostly what we never read (its blocks, authorizations, the
 * envelope's retry fields), and building it whole with jansson was the
 * biggest single cost of an event (callgrind).  jscan checks the whole
 * text as jansson would; jansson builds the members read.  NULL for
 * anything jscan refuses (invalid UTF-8, an escaped NUL, a duplicate of
 * a member read): the caller then builds the frame whole as before.
 */
static json_t *
frame_scan(const char *data, size_t len)
{
	struct jscan_field	 f[] = { { "type", NULL, 0 },
	    { "envelope_id", NULL, 0 }, { "reason", NULL, 0 },
	    { "payload", NULL, 0 } };
	struct jscan_field	 pf[] = { { "type", NULL, 0 },
	    { "event_id", NULL, 0 }, { "event", NULL, 0 } };
	json_t			*msg, *payload, *ev;
	const char		*type;

	if (jscan(data, len, f, nitems(f)) != '{')
		return NULL;
	msg = json_object();
	if (set_span(msg, "type", &f[0]) == -1 ||
	    set_span(msg, "envelope_id", &f[1]) == -1 ||
	    set_span(msg, "reason", &f[2]) == -1)
		goto fail;
	if (f[3].val == NULL)
		return msg;
	type = strj(msg, "type");
	if (type == NULL || strcmp(type, "events_api") != 0 ||
	    *f[3].val != '{') {
		if (set_span(msg, "payload", &f[3]) == -1)
			goto fail;
		return msg;
	}
	if (jscan_known(f[3].val, f[3].len, pf, nitems(pf)) != '{')
		goto fail;
	payload = json_object();
	json_object_set_new(msg, "payload", payload);
	if (set_span(payload, "type", &pf[0]) == -1 ||
	    set_span(payload, "event_id", &pf[1]) == -1)
		goto fail;
	if (pf[2].val == NULL)
		return msg;
	if (*pf[2].val != '{') {
		if (set_span(payload, "event", &pf[2]) == -1)
			goto fail;
		return msg;
	}
	if ((ev = jscan_pick(pf[2].val, pf[2].len, event_keys,
	    nitems(event_keys))) == NULL)
		goto fail;
	json_object_set_new(payload, "event", ev);
	return msg;
fail:
	json_decref(msg);
	return NULL;
}

enum slack_frame
slack_inbound_frame(struct slack *s, const char *data, size_t len,
    int refuse, char **arg)
{
	json_t			*msg, *payload;
	json_error_t		 jerr;
	const char		*type, *eid;
	enum slack_frame	 f = SLACK_FRAME_SKIP;
	char			*clean;
	size_t			 cleanlen = 0;
	int			 rc = 0;

	*arg = NULL;
	if ((msg = frame_scan(data, len)) != NULL)
		goto scanned;
	/*
	 * jansson refuses invalid UTF-8 and an escaped NUL.  Skipping such a
	 * frame whole lost the message: without its envelope_id nothing is
	 * acked, Slack redelivers a few times and gives up, silently.  So
	 * the bad bytes become U+FFFD and a NUL is let through (C strings
	 * end there), the frame is logged, acked and handled.
	 */
	if ((clean = utf8_sanitized(data, len, &cleanlen)) != NULL) {
		log_warnx("slack: frame of %zu bytes had invalid UTF-8, "
		    "replaced", len);
		data = clean;
		len = cleanlen;
	}
	msg = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
	free(clean);
	if (msg == NULL || !json_is_object(msg)) {
		log_warnx("slack: malformed frame of %zu bytes skipped (%s)",
		    len, msg == NULL ? jerr.text : "not an object");
		json_decref(msg);
		return SLACK_FRAME_SKIP;
	}
scanned:
	type = strj(msg, "type");
	eid = strj(msg, "envelope_id");
	payload = json_object_get(msg, "payload");
	if (type != NULL && strcmp(type, "hello") == 0)
		f = SLACK_FRAME_HELLO;
	else if (type != NULL && strcmp(type, "disconnect") == 0) {
		f = SLACK_FRAME_DISCONNECT;
		*arg = dupj(msg, "reason");
	} else if (eid != NULL) {
		if (refuse)
			rc = -1;
		else if (type != NULL && strcmp(type, "events_api") == 0)
			rc = inbound_event(s, payload);
		else if (type != NULL && strcmp(type, "interactive") == 0)
			rc = inbound_interactive(s, payload);
		else
			/* slash_commands and whatever comes next. */
			log_info("slack: %s envelope acked and ignored",
			    type != NULL ? type : "untyped");
		/*
		 * Acked once recorded (the caller sends the ack after the
		 * next group commit); otherwise Slack redelivers.
		 */
		if (rc == 0) {
			f = SLACK_FRAME_ACK;
			*arg = xstrdup(eid);
		} else {
			f = SLACK_FRAME_NOACK;
			log_warnx("slack: envelope %s not recorded, not acked",
			    eid);
		}
	} else
		log_info("slack: %s frame without an envelope_id ignored",
		    type != NULL ? type : "untyped");
	json_decref(msg);
	return f;
}
