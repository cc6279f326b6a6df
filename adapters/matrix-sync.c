/*
 * matrix-sync — the /sync long-poll, event parsing, invites and encrypted
 * rooms.
 *
 * One batch is handled in three steps: parse it; in one transaction record
 * every new event id (store_seen_add) and the batch's next_batch; then hand
 * the new events to the core.  A crash before the commit replays the batch
 * (nothing was acted on), a redelivered event is dropped by its id.  The
 * first run has no token and starts from "now": one sync with timeout=0 and
 * a timeline limit of 0 whose token is stored, so history is never replayed.
 * A room joined later comes with its recent history too; only what follows
 * our own join event in its timeline is acted on (matrix_joined_at).
 *
 * A `limited` timeline (more events than the filter's limit since our token)
 * is not back-filled: we log which room skipped events and from which
 * prev_batch, and act on what the batch carries.  At 50 events per room per
 * batch this only happens after a long outage; old requests are better
 * dropped than acted on hours late.
 */
#include "adapters/matrix-int.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define MATRIX_SYNC_TIMEOUT_MS	30000
#define MATRIX_TIMELINE_LIMIT	50
#define MATRIX_MAX_BODY		16384	/* bytes of a message we act on */
#define MATRIX_JOIN_TRIES	5

struct matrix_join {
	struct matrix		*m;
	char			*room;
	int			 tries;
	struct loop_timer	*timer;
	struct matrix_join	*next;
};

/* One new event of a batch, kept until the batch is committed. */
struct matrix_pending {
	char			*room;
	json_t			*event;
	struct matrix_pending	*next;
};

static void	 matrix_sync_request(struct matrix *);

/* ---- parsing (pure) ------------------------------------------------------ */

static char *
matrix_localpart(const char *user_id)
{
	const char	*p = user_id, *e;

	if (*p == '@')
		p++;
	if ((e = strchr(p, ':')) == NULL)
		e = p + strlen(p);
	return xstrndup(p, (size_t)(e - p));
}

static int
matrix_word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '-' || c == '.' || c >= 0x80;
}

/* Length of name at p, case-insensitive, ending at a word boundary; or 0. */
static size_t
matrix_name_at(const char *p, const char *name)
{
	size_t	 n = strlen(name);

	if (n == 0 || strncasecmp(p, name, n) != 0)
		return 0;
	/* A name ending in a non-word character ("Bot!") ends by itself. */
	if (matrix_word_char((unsigned char)name[n - 1]) &&
	    matrix_word_char((unsigned char)p[n]))
		return 0;
	return n;
}

/*
 * Length of a mention of the bot at p, or 0: the full user id, the
 * localpart with or without '@', or one of our display names (an Element
 * pill puts the display name in the body: "Code Bot: say hi").
 */
static size_t
matrix_mention_at(const char *p, const char *user_id, const char *local,
    const char *const *names)
{
	size_t	 n;

	n = strlen(user_id);
	if (strncmp(p, user_id, n) == 0)
		return n;
	for (; names != NULL && *names != NULL; names++)
		if ((n = matrix_name_at(p, *names)) > 0)
			return n;
	n = *p == '@' ? 1 : 0;
	if (*local != '\0' && matrix_name_at(p + n, local) > 0)
		return n + strlen(local);
	return 0;
}

char *
matrix_strip_mention(const char *body, const char *user_id,
    const char *const *names, int *found)
{
	char		*local = matrix_localpart(user_id), *r;
	const char	*p = body, *q;
	size_t		 n;

	*found = 0;
	while (isspace((unsigned char)*p))
		p++;
	if ((n = matrix_mention_at(p, user_id, local, names)) > 0) {
		*found = 1;
		p += n;
		if (*p == ':' || *p == ',')
			p++;
		while (isspace((unsigned char)*p))
			p++;
		free(local);
		return xstrdup(p);
	}
	/* Anywhere else, as a word of its own. */
	for (q = body; *q != '\0'; q++) {
		if (q > body && matrix_word_char((unsigned char)q[-1]) &&
		    q[-1] != '@')
			continue;
		if (matrix_mention_at(q, user_id, local, names) > 0) {
			*found = 1;
			break;
		}
	}
	r = xstrdup(body);
	free(local);
	return r;
}

/* The few entities an anchor text can carry; anything else stays as is. */
static char *
matrix_html_text(const char *p, size_t n)
{
	static const struct {
		const char	*ent;
		char		 c;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
	    { "&quot;", '"' }, { "&#39;", '\'' }, { "&#x27;", '\'' } };
	struct buf	 b = { 0 };
	size_t		 i, k;

	buf_adds(&b, "");
	for (i = 0; i < n; i++) {
		for (k = 0; k < nitems(ents); k++)
			if (strncmp(p + i, ents[k].ent, strlen(ents[k].ent)) ==
			    0 && i + strlen(ents[k].ent) <= n)
				break;
		if (k < nitems(ents)) {
			buf_add(&b, &ents[k].c, 1);
			i += strlen(ents[k].ent) - 1;
		} else
			buf_add(&b, p + i, 1);
	}
	return buf_steal(&b);
}

char *
matrix_pill_name(const char *html, const char *user_id)
{
	const char	*p, *gt, *end;
	char		*forms[2], *r = NULL;
	size_t		 i;

	if (html == NULL)
		return NULL;
	/* Spec (mentions): <a href="https://matrix.to/#/@user:server">Name</a>. */
	forms[0] = xasprintf("matrix.to/#/%s", user_id);
	forms[1] = matrix_path_escape(user_id);
	for (i = 0; i < nitems(forms) && r == NULL; i++) {
		for (p = html; (p = strstr(p, forms[i])) != NULL; p++) {
			if (i == 1 && (p - html < 12 ||
			    strncmp(p - 12, "matrix.to/#/", 12) != 0))
				continue;
			p += strlen(forms[i]);
			if (*p != '"' && *p != '\'')
				continue;
			if ((gt = strchr(p, '>')) == NULL ||
			    (end = strstr(gt, "</a>")) == NULL)
				break;
			if (end - gt - 1 > 0 && end - gt - 1 < 256 &&
			    memchr(gt + 1, '<', (size_t)(end - gt - 1)) == NULL)
				r = matrix_html_text(gt + 1, (size_t)(end - gt - 1));
			break;
		}
	}
	free(forms[0]);
	free(forms[1]);
	return r;
}

/* Keycap keys without U+FE0F ("2⃣") as the core spells them ("2️⃣"). */
static char *
matrix_norm_key(const char *key)
{
	if (((key[0] >= '0' && key[0] <= '9') || key[0] == '#' ||
	    key[0] == '*') && strcmp(key + 1, "\xe2\x83\xa3") == 0)
		return xasprintf("%c\xef\xb8\x8f\xe2\x83\xa3", key[0]);
	return xstrdup(key);
}

/* A reply's body may start with the quoted original ("> <@u> ...\n\n"). */
static const char *
matrix_skip_fallback(const char *body)
{
	const char	*p = body, *nl;

	if (strncmp(p, "> ", 2) != 0)
		return body;
	while (*p == '>') {
		if ((nl = strchr(p, '\n')) == NULL)
			return body;
		p = nl + 1;
	}
	if (*p == '\n')
		p++;
	return p;
}

static int
matrix_in_list(json_t *a, const char *s)
{
	size_t	 i;
	json_t	*v;

	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

void
matrix_ev_clear(struct matrix_ev *e)
{
	free(e->text);
	free(e->key);
	memset(e, 0, sizeof *e);
}

static void
matrix_ignore(struct matrix_ev *out, const char *why)
{
	free(out->text);
	out->text = NULL;
	out->kind = MATRIX_EV_IGNORE;
	out->why = why;
}

void
matrix_ev_parse(json_t *ev, const char *self, const char *self_name,
    struct matrix_ev *out)
{
	const char	*type, *mt, *body, *rel = NULL, *fb, *html;
	const char	*names[3];
	json_t		*content, *rt, *irt, *men;
	char		*text, *pill;
	size_t		 nn = 0;
	int		 found = 0;

	memset(out, 0, sizeof *out);
	out->kind = MATRIX_EV_IGNORE;
	if (!json_is_object(ev) ||
	    (type = json_string_value(json_object_get(ev, "type"))) == NULL ||
	    (out->event_id = json_string_value(json_object_get(ev,
	    "event_id"))) == NULL ||
	    (out->sender = json_string_value(json_object_get(ev,
	    "sender"))) == NULL) {
		out->why = "malformed event (type, event_id or sender missing)";
		return;
	}
	if (strcmp(type, "m.room.encryption") == 0 ||
	    strcmp(type, "m.room.encrypted") == 0) {
		out->kind = MATRIX_EV_ENCRYPTION;
		return;
	}
	if (strcmp(out->sender, self) == 0) {
		out->why = "our own event";
		return;
	}
	if (!json_is_object(content = json_object_get(ev, "content"))) {
		out->why = "no content";
		return;
	}
	rt = json_object_get(content, "m.relates_to");
	if (json_is_object(rt))
		rel = json_string_value(json_object_get(rt, "rel_type"));
	else
		rt = NULL;

	if (strcmp(type, "m.reaction") == 0) {
		if (rel == NULL || strcmp(rel, "m.annotation") != 0 ||
		    (out->target = json_string_value(json_object_get(rt,
		    "event_id"))) == NULL ||
		    (fb = json_string_value(json_object_get(rt, "key"))) ==
		    NULL || strlen(fb) > 64) {
			out->why = "malformed reaction";
			return;
		}
		out->key = matrix_norm_key(fb);
		out->kind = MATRIX_EV_REACTION;
		return;
	}
	if (strcmp(type, "m.room.message") != 0) {
		out->why = "not a message";
		return;
	}
	if ((mt = json_string_value(json_object_get(content, "msgtype"))) ==
	    NULL || strcmp(mt, "m.text") != 0) {
		out->why = "not m.text (notices, media and redactions are not "
		    "requests)";
		return;
	}
	if ((body = json_string_value(json_object_get(content, "body"))) ==
	    NULL) {
		out->why = "no body";
		return;
	}
	if (rel != NULL && strcmp(rel, "m.replace") == 0) {
		out->why = "an edit, not a new message";
		return;
	}
	irt = rt != NULL ? json_object_get(rt, "m.in_reply_to") : NULL;
	if (rel != NULL && strcmp(rel, "m.thread") == 0) {
		if ((out->thread = json_string_value(json_object_get(rt,
		    "event_id"))) == NULL) {
			out->why = "thread relation without event_id";
			return;
		}
		/* is_falling_back: the reply is only there for old clients. */
		if (!json_is_true(json_object_get(rt, "is_falling_back")))
			out->reply_to = json_string_value(json_object_get(irt,
			    "event_id"));
	} else
		out->reply_to = json_string_value(json_object_get(irt,
		    "event_id"));
	if (out->reply_to != NULL)
		body = matrix_skip_fallback(body);

	/*
	 * A pill: <a href="https://matrix.to/#/@bot:server">Code Bot</a>, and
	 * its text in the body.  The name the sender's client showed may be a
	 * per-room one, so it is read from the pill itself.
	 */
	html = json_string_value(json_object_get(content, "formatted_body"));
	if ((pill = matrix_pill_name(html, self)) != NULL)
		names[nn++] = pill;
	if (self_name != NULL && *self_name != '\0')
		names[nn++] = self_name;
	names[nn] = NULL;
	text = xstrdup(body);
	utf8_truncate(text, MATRIX_MAX_BODY);
	out->text = matrix_strip_mention(text, self, names, &found);
	free(text);
	out->mentioned = found || pill != NULL;
	free(pill);
	men = json_object_get(content, "m.mentions");
	if (json_is_object(men) &&
	    matrix_in_list(json_object_get(men, "user_ids"), self))
		out->mentioned = 1;
	out->kind = MATRIX_EV_MESSAGE;
	if (out->text[0] == '\0' && out->mentioned && out->thread == NULL)
		matrix_ignore(out, "a bare mention");
}

/* ---- rooms ----------------------------------------------------------------- */

static char *
matrix_room_key(const char *what, const char *room)
{
	return xasprintf("matrix.%s.%s", what, room);
}

static int
matrix_room_flag(const char *what, const char *room)
{
	char	*k = matrix_room_key(what, room), *v;
	int	 r;

	v = store_kv_get(k);
	r = v != NULL && strcmp(v, "1") == 0;
	free(v);
	free(k);
	return r;
}

static void
matrix_room_set(const char *what, const char *room, const char *val)
{
	char	*k = matrix_room_key(what, room);

	store_kv_set(k, val);
	free(k);
}

/* Said once per room, remembered in the store before it is sent. */
static void
matrix_encrypted(struct matrix *m, const char *room)
{
	char	*txn;

	if (matrix_room_flag("encrypted", room))
		return;
	matrix_room_set("encrypted", room, "1");
	log_info("matrix: room %s is encrypted; not supported, saying so once",
	    room);
	txn = xasprintf("sb-%s-e2ee-%lld", m->txn_prefix, (long long)wall_ms());
	matrix_send_notice(m, room, txn, "This room is end-to-end encrypted. "
	    "Switchboard does not support encrypted rooms yet and will not act "
	    "on messages here; please use an unencrypted room.");
	free(txn);
}

static void
matrix_starter_set(const char *event_id, const char *sender)
{
	char	*k = xasprintf("matrix.starter.%s", event_id);

	store_kv_set(k, sender);
	free(k);
}

/* Display names from the member events of a batch (state and timeline). */
static void
matrix_names(struct matrix *m, json_t *body)
{
	json_t		*rooms, *r, *evs, *e;
	const char	*room, *type, *user, *name, *mem;
	const char	*parts[] = { "state", "timeline" };
	size_t		 i, k;

	rooms = json_object_get(json_object_get(body, "rooms"), "join");
	json_object_foreach(rooms, room, r) {
		for (k = 0; k < nitems(parts); k++) {
			evs = json_object_get(json_object_get(r, parts[k]),
			    "events");
			json_array_foreach(evs, i, e) {
				type = json_string_value(json_object_get(e,
				    "type"));
				user = json_string_value(json_object_get(e,
				    "state_key"));
				name = json_string_value(json_object_get(
				    json_object_get(e, "content"),
				    "displayname"));
				mem = json_string_value(json_object_get(
				    json_object_get(e, "content"),
				    "membership"));
				if (type == NULL || user == NULL || mem == NULL ||
				    strcmp(type, "m.room.member") != 0 ||
				    strcmp(mem, "join") != 0 || *user != '@')
					continue;
				matrix_name_note(m, user, name);
			}
		}
	}
}

static int
matrix_is_dm(const char *room)
{
	char	*k = matrix_room_key("members", room), *v;
	int	 r;

	v = store_kv_get(k);
	r = v != NULL && strcmp(v, "2") == 0;
	free(v);
	free(k);
	return r;
}

/* ---- invites ----------------------------------------------------------------- */

static void	 matrix_join_send(struct matrix_join *);

static void
matrix_join_free(struct matrix_join *j)
{
	struct matrix_join	**pp;

	for (pp = &j->m->joins; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->timer != NULL)
		loop_timer_cancel(j->timer);
	free(j->room);
	free(j);
}

static void
matrix_join_again(void *arg)
{
	struct matrix_join	*j = arg;
	struct matrix		*m = j->m;

	j->timer = NULL;
	m->busy++;
	matrix_join_send(j);
	m->busy--;
}

static void
matrix_join_drop(void *arg)
{
	matrix_join_free(arg);
}

static void
matrix_on_join(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	struct matrix_join	*j = arg;
	long long		 ms;

	if (r->status == 200) {
		log_info("matrix: joined %s", j->room);
		matrix_join_free(j);
		return;
	}
	if (++j->tries >= MATRIX_JOIN_TRIES || m->stopping ||
	    (r->status == 403 && j->tries >= 2)) {
		log_warnx("matrix: cannot join %s: %s (gave up after %d "
		    "tries)", j->room, r->error, j->tries);
		matrix_join_free(j);
		return;
	}
	/* A join can race the invite on federated rooms: retry a little. */
	ms = r->retry_ms >= 0 ? r->retry_ms : 500LL << j->tries;
	log_info("matrix: join %s failed (%s), retrying in %lld ms", j->room,
	    r->error, ms);
	j->timer = loop_timer_once((uint64_t)ms, matrix_join_again, j);
}

static void
matrix_join_send(struct matrix_join *j)
{
	char	*room = matrix_path_escape(j->room), *path;

	path = xasprintf("/_matrix/client/v3/join/%s", room);
	matrix_call(j->m, "POST", path, json_object(), 0, matrix_on_join,
	    matrix_join_drop, j);
	free(path);
	free(room);
}

static void
matrix_invite(struct matrix *m, const char *room, json_t *inv)
{
	json_t			*evs, *e;
	struct matrix_join	*j;
	const char		*inviter = NULL, *type, *sk, *mem;
	size_t			 i;

	evs = json_object_get(json_object_get(inv, "invite_state"), "events");
	json_array_foreach(evs, i, e) {
		if (json_unpack(e, "{s:s, s:s, s:{s:s}}", "type", &type,
		    "state_key", &sk, "content", "membership", &mem) != 0)
			continue;
		if (strcmp(type, "m.room.member") == 0 &&
		    strcmp(sk, m->user_id) == 0 &&
		    strcmp(mem, "invite") == 0)
			inviter = json_string_value(json_object_get(e, "sender"));
	}
	if (inviter == NULL) {
		log_info("matrix: invite to %s without our invite event; "
		    "ignored", room);
		return;
	}
	if (!m->cfg->matrix.autojoin) {
		log_info("matrix: invited to %s by %s; autojoin is off", room,
		    inviter);
		return;
	}
	if (!config_user_allowed(m->cfg, "matrix", inviter)) {
		log_info("matrix: invited to %s by %s, who is not allowed; not "
		    "joining", room, inviter);
		return;
	}
	for (j = m->joins; j != NULL; j = j->next)
		if (strcmp(j->room, room) == 0)
			return;
	log_info("matrix: invited to %s by %s; joining", room, inviter);
	j = xcalloc(1, sizeof *j);
	j->m = m;
	j->room = xstrdup(room);
	j->next = m->joins;
	m->joins = j;
	matrix_join_send(j);
}

/* ---- batches ------------------------------------------------------------------ */

static void
matrix_dispatch(struct matrix *m, const char *room, json_t *event)
{
	struct matrix_ev	 e;
	struct chat_event	 ev;
	char			*root = NULL;
	struct matrix_quote	*q;

	matrix_ev_parse(event, m->user_id, m->display_name, &e);
	memset(&ev, 0, sizeof ev);
	ev.channel = room;
	switch (e.kind) {
	case MATRIX_EV_IGNORE:
		log_debug("matrix: %s %s: %s", room,
		    e.event_id != NULL ? e.event_id : "?", e.why);
		break;
	case MATRIX_EV_ENCRYPTION:
		matrix_encrypted(m, room);
		break;
	case MATRIX_EV_MESSAGE:
		if (matrix_room_flag("encrypted", room)) {
			log_info("matrix: %s: message in an encrypted room, "
			    "no action", room);
			break;
		}
		/*
		 * A rich reply without m.thread (spec, Rich replies; clients
		 * without threads, Element's "Reply") to one of our messages
		 * belongs to that message's thread: it answers there, and never
		 * starts a new conversation with the answer as its task.
		 */
		if (e.thread == NULL && e.reply_to != NULL &&
		    (root = matrix_root_of(m, room, e.reply_to)) != NULL)
			e.thread = root;
		if (e.thread != NULL)
			matrix_thread_note(m, room, e.thread, e.event_id);
		ev.kind = CHAT_EV_MESSAGE;
		ev.thread = e.thread;
		ev.msg_id = e.event_id;
		ev.sender = e.sender;
		ev.text = e.text;
		ev.reply_to = e.reply_to;
		ev.mentioned = e.mentioned ||
		    (e.thread == NULL && matrix_is_dm(room));
		/* Who opened a thread is whom its questions are for. */
		if (ev.thread == NULL && ev.mentioned)
			matrix_starter_set(e.event_id, e.sender);
		/*
		 * What the core writes while it handles the message answers
		 * it.  The outbox may hand us those ops from inside the call,
		 * so the range is open until it returns.
		 */
		q = ev.thread == NULL ? NULL : matrix_quote_note(m, room,
		    ev.thread, e.event_id, chat_op_last_id(), UINT64_MAX);
		chat_on_event(&m->hdr, &ev);
		if (q != NULL)
			q->hi = chat_op_last_id();
		free(root);
		break;
	case MATRIX_EV_REACTION:
		if (matrix_room_flag("encrypted", room))
			break;
		ev.kind = CHAT_EV_REACTION;
		ev.sender = e.sender;
		ev.target = e.target;
		ev.emoji = e.key;
		chat_on_event(&m->hdr, &ev);
		break;
	}
	matrix_ev_clear(&e);
}

static void
matrix_pending_free(struct matrix_pending *p)
{
	struct matrix_pending	*n;

	for (; p != NULL; p = n) {
		n = p->next;
		free(p->room);
		json_decref(p->event);
		free(p);
	}
}

/*
 * Index in a timeline of our own latest join, or -1.  After a join the
 * homeserver hands us the room's recent timeline, history written before we
 * were there included (Synapse: up to the filter's limit), and acting on it
 * would turn an old mention, or a whole DM, into tasks.  The timeline is in
 * stream order (spec: /sync "timeline.events ... in chronological order"),
 * so what comes before our join event was written before we joined; the
 * origin_server_ts of an event is set by its sender's server and proves
 * nothing.  A join that is not in the batch (a limited timeline) is older
 * than everything in it, so nothing is skipped.  A member event of ours whose
 * prev_content was already a join is a profile change, not a join.
 */
static ssize_t
matrix_joined_at(json_t *evs, const char *self)
{
	const char	*type, *sk, *mem, *prev;
	ssize_t		 at = -1;
	size_t		 i;
	json_t		*e;

	json_array_foreach(evs, i, e) {
		type = json_string_value(json_object_get(e, "type"));
		sk = json_string_value(json_object_get(e, "state_key"));
		mem = json_string_value(json_object_get(json_object_get(e,
		    "content"), "membership"));
		prev = json_string_value(json_object_get(json_object_get(
		    json_object_get(e, "unsigned"), "prev_content"),
		    "membership"));
		if (type != NULL && strcmp(type, "m.room.member") == 0 &&
		    sk != NULL && strcmp(sk, self) == 0 && mem != NULL &&
		    strcmp(mem, "join") == 0 && (prev == NULL ||
		    strcmp(prev, "join") != 0))
			at = (ssize_t)i;
	}
	return at;
}

/*
 * Records the batch: room facts, new event ids and the token, in one
 * transaction.  *out gets the new events in order.  -1 if it did not commit.
 */
static int
matrix_record(struct matrix *m, json_t *body, const char *next, int initial,
    struct matrix_pending **out)
{
	struct matrix_pending	*head = NULL, **tail = &head, *p;
	json_t			*rooms, *r, *tl, *evs, *e, *cnt;
	const char		*room, *id;
	size_t			 i;
	ssize_t			 skip;
	char			 buf[32];
	int			 rc;

	*out = NULL;
	rooms = json_object_get(json_object_get(body, "rooms"), "join");
	if (store_begin() == -1)
		return -1;
	json_object_foreach(rooms, room, r) {
		cnt = json_object_get(json_object_get(r, "summary"),
		    "m.joined_member_count");
		if (json_is_integer(cnt)) {
			snprintf(buf, sizeof buf, "%lld",
			    (long long)json_integer_value(cnt));
			matrix_room_set("members", room, buf);
		}
		/* Room state first: an encrypted room is known before its events. */
		evs = json_object_get(json_object_get(r, "state"), "events");
		json_array_foreach(evs, i, e) {
			if (json_is_object(e) && json_is_string(json_object_get(
			    e, "type")) && strcmp(json_string_value(
			    json_object_get(e, "type")), "m.room.encryption") ==
			    0) {
				p = xcalloc(1, sizeof *p);
				p->room = xstrdup(room);
				p->event = json_incref(e);
				*tail = p;
				tail = &p->next;
			}
		}
		tl = json_object_get(r, "timeline");
		if (json_is_true(json_object_get(tl, "limited")) && !initial)
			log_warnx("matrix: %s: more events than one batch holds "
			    "since our last sync; older ones (before prev_batch "
			    "%s) are skipped, not fetched", room,
			    json_string_value(json_object_get(tl,
			    "prev_batch")) != NULL ? json_string_value(
			    json_object_get(tl, "prev_batch")) : "?");
		if (initial)
			continue;	/* starting from now: history is not ours */
		evs = json_object_get(tl, "events");
		skip = matrix_joined_at(evs, m->user_id);
		json_array_foreach(evs, i, e) {
			if (skip >= 0 && (ssize_t)i <= skip)
				continue;	/* before our join: history */
			if ((id = json_string_value(json_object_get(e,
			    "event_id"))) == NULL) {
				log_warnx("matrix: %s: event without event_id "
				    "skipped", room);
				continue;
			}
			if ((rc = store_seen_add("matrix", id,
			    MATRIX_SEEN_TTL)) == 0) {
				log_debug("matrix: %s already seen", id);
				continue;
			}
			if (rc == -1) {
				/* Not recorded: the token must not move past it. */
				store_rollback();
				matrix_pending_free(head);
				return -1;
			}
			p = xcalloc(1, sizeof *p);
			p->room = xstrdup(room);
			p->event = json_incref(e);
			*tail = p;
			tail = &p->next;
		}
	}
	store_kv_set(MATRIX_KV_SINCE, next);
	if (store_commit() == -1) {
		matrix_pending_free(head);
		return -1;
	}
	*out = head;
	return 0;
}

static void
matrix_sync_later(struct matrix *m, long long ms);

static void
matrix_on_sync(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	struct matrix_pending	*evs, *p;
	json_t			*inv, *v;
	const char		*next, *room;
	int			 initial = m->since == NULL;

	/* A sync started before a stop (re-login) is stale: drop it. */
	if ((uintptr_t)arg != m->sync_gen)
		return;
	m->syncing = 0;
	if (m->stopping || !m->sync_on)
		return;
	if (r->status == 401 && (r->errcode == NULL ||
	    strcmp(r->errcode, "M_UNKNOWN_TOKEN") == 0 ||
	    strcmp(r->errcode, "M_MISSING_TOKEN") == 0)) {
		matrix_auth_lost(m, "sync: the access token is no longer "
		    "valid (M_UNKNOWN_TOKEN)");
		return;
	}
	if (r->status == 429) {
		log_info("matrix: sync rate-limited, waiting %lld ms",
		    r->retry_ms);
		matrix_sync_later(m, r->retry_ms);
		return;
	}
	if (r->status != 200 || r->body == NULL || (next = json_string_value(
	    json_object_get(r->body, "next_batch"))) == NULL) {
		matrix_set_state(m, "reconnecting");
		log_warnx("matrix: sync failed: %s", r->status == 200 ?
		    "malformed body (no next_batch)" : r->error);
		matrix_sync_later(m, matrix_backoff_next(m));
		return;
	}
	/*
	 * The batch's ids, the new token and what the core does with the
	 * events commit together: a crash anywhere before the commit repeats
	 * the whole batch (same since token), after it nothing is lost.
	 * matrix_record's own transaction nests inside this one.
	 */
	if (store_begin() == -1) {
		log_warnx("matrix: cannot open a transaction; retrying");
		matrix_sync_later(m, matrix_backoff_next(m));
		return;
	}
	if (matrix_record(m, r->body, next, initial, &evs) == -1) {
		store_rollback();
		log_warnx("matrix: could not record the sync batch; retrying");
		matrix_sync_later(m, matrix_backoff_next(m));
		return;
	}
	matrix_names(m, r->body);
	for (p = evs; p != NULL && !m->stopping; p = p->next)
		matrix_dispatch(m, p->room, p->event);
	matrix_pending_free(evs);
	if (store_commit() == -1) {
		/* Acted on but not recorded: the retry may repeat the batch. */
		log_warnx("matrix: could not commit the sync batch; retrying");
		matrix_sync_later(m, matrix_backoff_next(m));
		return;
	}
	free(m->since);
	m->since = xstrdup(next);
	m->backoff_ms = 0;
	m->connected = 1;
	matrix_set_state(m, "connected");
	if (initial)
		log_info("matrix: first run: starting from now (token stored)");
	inv = json_object_get(json_object_get(r->body, "rooms"), "invite");
	json_object_foreach(inv, room, v)
		if (!m->stopping)
			matrix_invite(m, room, v);
	if (!m->stopping && m->sync_on)
		matrix_sync_request(m);
}

static void
matrix_sync_fire(void *arg)
{
	struct matrix	*m = arg;

	m->sync_timer = NULL;
	m->busy++;
	if (m->sync_on && !m->stopping)
		matrix_sync_request(m);
	m->busy--;
}

static void
matrix_sync_later(struct matrix *m, long long ms)
{
	if (m->sync_timer != NULL)
		loop_timer_cancel(m->sync_timer);
	m->sync_timer = loop_timer_once((uint64_t)ms, matrix_sync_fire, m);
}

static char *
matrix_filter(int initial)
{
	json_t	*f;
	char	*s;

	/* m.room.member in the timeline: our own join marks where history ends. */
	f = json_pack("{s:{s:[]}, s:{s:[]}, s:{s:{s:[sssss], s:i}, "
	    "s:{s:[ss], s:b}, s:{s:[]}, s:{s:[]}}}",
	    "presence", "types",
	    "account_data", "types",
	    "room",
	    "timeline", "types", "m.room.message", "m.reaction",
	    "m.room.encryption", "m.room.encrypted", "m.room.member",
	    "limit", initial ? 0 : MATRIX_TIMELINE_LIMIT,
	    "state", "types", "m.room.encryption", "m.room.member",
	    "lazy_load_members", 1,
	    "ephemeral", "types",
	    "account_data", "types");
	if (f == NULL)
		fatalx("matrix: filter does not pack");
	s = json_dumps(f, JSON_COMPACT);
	json_decref(f);
	return s;
}

static void
matrix_sync_request(struct matrix *m)
{
	char	*filter, *ef, *since = NULL, *path;

	if (m->syncing)
		return;
	filter = matrix_filter(m->since == NULL);
	ef = matrix_path_escape(filter);
	if (m->since != NULL) {
		since = matrix_path_escape(m->since);
		path = xasprintf("/_matrix/client/v3/sync?timeout=%d&filter=%s"
		    "&since=%s", MATRIX_SYNC_TIMEOUT_MS, ef, since);
	} else
		path = xasprintf("/_matrix/client/v3/sync?timeout=0&filter=%s",
		    ef);
	m->syncing = 1;
	matrix_call(m, "GET", path, NULL,
	    m->since != NULL ? MATRIX_SYNC_TIMEOUT_MS + 20000 : 0,
	    matrix_on_sync, NULL, (void *)m->sync_gen);
	free(path);
	free(since);
	free(ef);
	free(filter);
}

void
matrix_sync_start(struct matrix *m)
{
	char	*v;

	if (m->since == NULL && (v = store_kv_get(MATRIX_KV_SINCE)) != NULL) {
		if (*v != '\0')
			m->since = v;
		else
			free(v);
	}
	if (m->since != NULL)
		log_info("matrix: resuming sync from the stored token");
	m->sync_on = 1;
	matrix_sync_request(m);
}

void
matrix_sync_stop(struct matrix *m)
{
	/* A sync in flight is ignored when it lands (or cancelled by destroy). */
	m->sync_on = 0;
	m->syncing = 0;
	m->sync_gen++;
	if (m->sync_timer != NULL) {
		loop_timer_cancel(m->sync_timer);
		m->sync_timer = NULL;
	}
}

void
matrix_sync_free(struct matrix *m)
{
	while (m->joins != NULL)
		matrix_join_free(m->joins);
}
