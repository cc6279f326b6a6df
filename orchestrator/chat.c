#include "orchestrator/chat.h"
#include "orchestrator/agent.h"
#include "orchestrator/brain.h"
#include "orchestrator/conversation.h"
#include "orchestrator/inbox.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/results.h"
#include "adapters/adapter.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A refusal is said once per user per thread, for as long as we keep state. */
#define REFUSAL_TTL	(10LL * 365 * 24 * 3600)

static const struct config	*cfg;
static struct metric		*m_in, *m_refused;

/* Reaction keys for choices, as adapters without buttons show them. */
static const char *const choice_keys[] = {
	"1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟"
};

static void	inbox_on_insert(json_t *, size_t, void *);
static int	inbox_inline_ok(json_t *, void *);

void
chat_configure(const struct config *c)
{
	cfg = c;
	chat_inbox_setup(outbox_adapter, inbox_on_insert, inbox_inline_ok);
	if (m_in == NULL) {
		m_in = metrics_counter("switchboard_chat_events_total", "",
		    "Chat events received from adapters");
		m_refused = metrics_counter("switchboard_chat_refused_total", "",
		    "Events from users who are not allowed");
	}
}

void
chat_on_state(struct adapter *a, const char *state)
{
	a->state = state;
	health_set(a->ops->name, state);
	log_info("adapter %s: %s", a->ops->name, state);
}

int
chat_thread_known(struct adapter *a, const char *channel, const char *thread)
{
	return conversation_find(a->ops->name, channel, thread) != NULL;
}

/* True (and says so once per thread) when user may not act here. */
static int
refuse(struct conversation *c, const char *adapter, const char *user)
{
	char	 id[256];

	if (config_user_allowed(cfg, adapter, user))
		return 0;
	metrics_inc(m_refused);
	log_info("chat: %s:%s is not allowed (conversation %lld)", adapter,
	    user, (long long)c->id);
	snprintf(id, sizeof id, "%lld:%s", (long long)c->id, user);
	if (store_seen_add("refusal", id, REFUSAL_TTL) == 1)
		conversation_say(c, "Sorry, %s:%s is not allowed to start agents"
		    " or answer questions here.", adapter, user);
	return 1;
}

/* ---- the inbox: 👀 and "busy" when an event is recorded ------------------- */

/* Seen keys live this long: past any redelivery and any backlog. */
#define TAKEN_TTL	(7LL * 24 * 3600)
#define BUSY_TTL	600
/* Rows ahead of an event before its thread hears "busy". */
#define BUSY_AHEAD	100

/*
 * The taken keys this run committed lately, newest last: a message taken
 * when its event was recorded is taken again when it is processed, and
 * that statement could only answer "seen" (a store lookup per event).
 */
#define TAKEN_RECENT	64
static struct {
	char		*key;
	int64_t		 until;		/* wall_s: its seen entry's expiry */
} taken_recent[TAKEN_RECENT];
static unsigned		 ntaken_recent;

static int
taken_known(const char *k)
{
	int64_t		 now = wall_s();
	unsigned	 i, n, slot;

	n = ntaken_recent < TAKEN_RECENT ? ntaken_recent : TAKEN_RECENT;
	for (i = 1; i <= n; i++) {
		slot = (ntaken_recent - i) % TAKEN_RECENT;
		if (taken_recent[slot].until > now &&
		    strcmp(taken_recent[slot].key, k) == 0)
			return 1;
	}
	return 0;
}

/* Runs once the key's transaction committed (store_hook). */
static void
taken_committed(void *arg)
{
	unsigned	 slot = ntaken_recent++ % TAKEN_RECENT;

	free(taken_recent[slot].key);
	taken_recent[slot].key = arg;
	taken_recent[slot].until = wall_s() + TAKEN_TTL;
}

/*
 * 👀 says "taken": at most once per message, whether it goes out when the
 * event is recorded or when it is processed.
 */
static void
take(const char *adapter, const char *channel, const char *thread,
    const char *msg_id)
{
	char	*k;
	int	 r;

	k = xasprintf("%s:%s:%s", adapter, channel, msg_id);
	if (taken_known(k)) {
		free(k);
		return;
	}
	if ((r = store_seen_add("chat.taken", k, TAKEN_TTL)) == 1)
		outbox_react(adapter, channel, thread, msg_id, "👀");
	if (r == 1)	/* its expiry is ours: now + TAKEN_TTL */
		store_hook(taken_committed, free, k);
	else
		free(k);
}

/*
 * Runs in the inbox's group commit, right after a chat event's row: a
 * message that on_message will take (a known thread, or addressed to us in
 * a routed channel, from an allowed user) gets its 👀 now, in the same
 * commit as its ack, however long the work queue is; and when that queue
 * is long, its thread hears once that it has to wait.
 */
static void
inbox_on_insert(json_t *p, size_t ahead, void *arg)
{
	struct chat_event	 ev;
	struct conversation	*c = NULL;
	const char		*name;
	const char		*root;
	char			*k, *text;

	chat_event_of_json(p, &ev);
	name = json_string_value(json_object_get(p, "adapter"));
	if (cfg == NULL || name == NULL || ev.kind != CHAT_EV_MESSAGE ||
	    ev.msg_id == NULL || ev.channel == NULL || ev.sender == NULL)
		return;
	if (ev.thread != NULL)
		c = conversation_find(name, ev.channel, ev.thread);
	if (c == NULL && (!ev.mentioned ||
	    config_route(cfg, name, ev.channel) == NULL))
		return;
	if (!config_user_allowed(cfg, name, ev.sender))
		return;
	root = c != NULL ? c->thread : ev.thread != NULL ? ev.thread :
	    ev.msg_id;
	take(name, ev.channel, root, ev.msg_id);
	if (ahead < BUSY_AHEAD)
		return;
	k = xasprintf("%s:%s:%s", name, ev.channel, root);
	if (store_seen_add("chat.busy", k, BUSY_TTL) == 1) {
		log_info("chat: %s busy notice (%zu ahead)", k, ahead);
		text = xasprintf("Busy right now: %zu requests are ahead of"
		    " yours. It is recorded and will be handled in turn.",
		    ahead);
		outbox_post(name, ev.channel, root, NULL, NULL, text, NULL,
		    NULL);
		free(text);
	}
	free(k);
}

/*
 * A lone event may be worked on before its ack (inbox.c) when it is for a
 * conversation we have in memory: a command, an answer, a follow-up.  One
 * that would open a conversation (a task, mostly) is recorded and acked
 * first, so no conversation or agent is made on an ack's path; an agent
 * started in a known thread (`new TASK`) is sent there by agent_start.
 */
static int
inbox_inline_ok(json_t *p, void *arg)
{
	const char	*name, *channel, *thread;

	name = json_string_value(json_object_get(p, "adapter"));
	channel = json_string_value(json_object_get(p, "channel"));
	thread = json_string_value(json_object_get(p, "thread"));
	return cfg != NULL && name != NULL && channel != NULL &&
	    thread != NULL && conversation_find(name, channel, thread) != NULL;
}

/*
 * A message longer than this is not taken as a task or a reply: a 1 MB task
 * failed much later with "argument list too long" when its agent was
 * spawned.  Slack's own limit is 40,000 characters.
 */
#define CHAT_TEXT_MAX	(100 * 1024)

static int
too_long(struct conversation *c, const char *adapter,
    const struct chat_event *ev)
{
	size_t	 n = ev->text != NULL ? strlen(ev->text) : 0;

	if (n <= CHAT_TEXT_MAX)
		return 0;
	log_warnx("chat: %s:%s sent %zu bytes in conversation %lld; over the"
	    " %d-byte limit, not taken", adapter, ev->sender, n,
	    (long long)c->id, CHAT_TEXT_MAX);
	conversation_say(c, "That message is %zu KB; tasks and replies are"
	    " limited to %d KB. Put long material in a file in the repository"
	    " and point to it.", n / 1024, CHAT_TEXT_MAX / 1024);
	return 1;
}

static char *
trimmed(const char *s)
{
	const char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	return xstrndup(s, (size_t)(e - s));
}

/*
 * A message in a thread we have no conversation for, about to start one
 * there: 1 the thread exists (or the platform cannot tell), 0 it does not
 * (a Slack thread_ts can point nowhere; replies there are invisible), -1
 * not known yet: the event is parked until the adapter knows
 * (chat_thread_checked puts it back into the inbox), so the inbox never
 * waits for the platform.
 */
static int
thread_state(struct adapter *ad, const struct chat_event *ev)
{
	int	 r;

	if (ev->thread == NULL || ad->ops->thread_exists == NULL ||
	    (ev->msg_id != NULL && strcmp(ev->thread, ev->msg_id) == 0))
		return 1;
	if ((r = ad->ops->thread_exists(ad, ev->channel, ev->thread)) != -1)
		return r;
	if (chat_park(ad->ops->name, ev) == -1)
		log_warnx("chat: %s/%s: cannot park a message of thread %s;"
		    " dropped", ad->ops->name, ev->channel, ev->thread);
	else
		log_info("chat: %s/%s: checking that thread %s exists before"
		    " starting work there", ad->ops->name, ev->channel,
		    ev->thread);
	return -1;
}

/*
 * The thread does not exist: the work is not started where nobody could
 * see its replies.  It gets a new thread at the top of the channel, whose
 * root says why; later messages in the missing thread do the same.
 */
static struct conversation *
open_elsewhere(struct adapter *ad, const struct chat_event *ev,
    const struct cfg_route *route)
{
	const char		*name = ad->ops->name;
	struct conversation	*c;
	char			*by, *root;

	by = xasprintf("%s:%s", name, ev->sender);
	root = xasprintf("%s wrote to me in a thread that does not exist"
	    " (its first message %s is not there), where nobody could see my"
	    " answers; I answer in this thread instead.", by, ev->thread);
	c = conversation_open(name, ev->channel, root, by, route->repo,
	    route->agent);
	if (c != NULL)
		log_warnx("chat: %s/%s: thread %s does not exist; conversation"
		    " %lld answers %s at the top of the channel instead", name,
		    ev->channel, ev->thread, (long long)c->id, by);
	free(root);
	free(by);
	return c;
}

static void
on_message(struct adapter *ad, const struct chat_event *ev)
{
	const char		*name = ad->ops->name;
	const struct cfg_route	*route;
	struct conversation	*c = NULL;
	struct brain_msg	 m = { 0 };
	char			*by, *text, *key = NULL;
	int			 first = 0;

	if (ev->thread != NULL)
		c = conversation_find(name, ev->channel, ev->thread);
	if (c == NULL && ev->thread != NULL &&
	    chat_thread_parked(name, ev->channel, ev->thread)) {
		/* Its thread is being checked: it waits behind, in order. */
		(void)chat_park(name, ev);
		return;
	}
	if (c == NULL) {
		/*
		 * Not a known thread: a new conversation if the bot was
		 * addressed in a routed channel; rooted at the thread the
		 * message is in, or at the message itself.
		 */
		if (!ev->mentioned) {
			log_debug("chat: %s/%s: not addressed to us, ignored",
			    name, ev->channel);
			return;
		}
		if ((route = config_route(cfg, name, ev->channel)) == NULL) {
			log_info("chat: %s/%s is not routed; message ignored",
			    name, ev->channel);
			return;
		}
		switch (thread_state(ad, ev)) {
		case -1:
			return;
		case 0:
			c = open_elsewhere(ad, ev, route);
			break;
		default:
			by = xasprintf("%s:%s", name, ev->sender);
			c = conversation_create(name, ev->channel,
			    ev->thread != NULL ? ev->thread : ev->msg_id, by,
			    route->repo, route->agent,
			    !config_user_allowed(cfg, name, ev->sender));
			free(by);
			break;
		}
		if (c == NULL)
			return;
		first = 1;
	}
	if (refuse(c, name, ev->sender))
		return;
	if (too_long(c, name, ev))
		return;

	text = trimmed(ev->text != NULL ? ev->text : "");
	by = xasprintf("%s:%s", name, ev->sender);
	if (ev->reply_to != NULL)
		key = outbox_key_of(name, ev->channel, ev->reply_to);
	if (ev->msg_id != NULL)
		take(name, ev->channel, c->thread, ev->msg_id);
	m.text = text;
	m.by = by;
	m.reply_to_key = key;
	m.first = first;
	brain_of(c)->on_message(c, &m);
	free(text);
	free(by);
	free(key);
}

static void
on_answer(struct adapter *ad, int64_t qid, const char *choice,
    const char *sender, const char *channel, const char *thread)
{
	const char		*name = ad->ops->name;
	struct question		*q;
	struct conversation	*c;
	char			*by, *why = NULL;

	if ((q = question_find(qid)) != NULL) {
		c = agent_conversation(q->agent);
		/*
		 * A click or reaction names its question; it must come from
		 * where the question was asked, as typed answers must.
		 */
		if (strcmp(c->adapter, name) != 0 ||
		    (channel != NULL && strcmp(c->channel, channel) != 0)) {
			log_warnx("chat: %s:%s answered q%lld from %s/%s, not"
			    " from its thread; ignored", name, sender,
			    (long long)qid, name, channel != NULL ? channel :
			    "?");
			return;
		}
	} else
		c = thread != NULL ? conversation_find(name, channel, thread) :
		    NULL;
	if (c == NULL) {
		log_info("chat: answer to unknown or settled q%lld from %s:%s",
		    (long long)qid, name, sender);
		return;
	}
	if (refuse(c, name, sender))
		return;
	by = xasprintf("%s:%s", name, sender);
	if (question_answer(qid, choice, by, &why) != 0) {
		conversation_say(c, "Sorry, %s.", why);
		free(why);
	}
	free(by);
}

/*
 * A click on a result's next-step button ("r12" + "Merge") is the command a
 * person would type in that thread, under the same access policy.
 */
static int
on_result_click(struct adapter *ad, const struct chat_event *ev)
{
	struct brain_msg	 m = { 0 };
	struct agent		*a;
	struct conversation	*c;
	char			*text, *by;

	if ((text = results_click_command(ev->question, ev->choice)) == NULL)
		return 0;
	if ((a = agent_find(parse_uint(ev->question + 1))) == NULL ||
	    (c = agent_conversation(a)) == NULL ||
	    strcmp(c->adapter, ad->ops->name) != 0 ||
	    (ev->channel != NULL && strcmp(c->channel, ev->channel) != 0) ||
	    refuse(c, ad->ops->name, ev->sender)) {
		free(text);
		return 1;
	}
	by = xasprintf("%s:%s", ad->ops->name, ev->sender);
	m.text = text;
	m.by = by;
	brain_lookup("rules")->on_message(c, &m);
	free(by);
	free(text);
	return 1;
}

void
chat_on_event(struct adapter *ad, const struct chat_event *ev)
{
	char	*key;
	size_t	 i;

	if (cfg == NULL)
		return;
	metrics_inc(m_in);
	switch (ev->kind) {
	case CHAT_EV_MESSAGE:
		on_message(ad, ev);
		break;
	case CHAT_EV_CLICK:
		if (on_result_click(ad, ev))
			break;
		on_answer(ad, question_parse_id(ev->question), ev->choice,
		    ev->sender, ev->channel, ev->thread);
		break;
	case CHAT_EV_REACTION:
		/* A choice key on a question's message answers it. */
		key = ev->target != NULL ? outbox_key_of(ad->ops->name,
		    ev->channel, ev->target) : NULL;
		if (key == NULL || key[0] != 'q') {
			free(key);
			return;
		}
		for (i = 0; i < nitems(choice_keys); i++) {
			if (strcmp(ev->emoji, choice_keys[i]) == 0) {
				struct question *q;
				int64_t qid = question_parse_id(key);

				if ((q = question_find(qid)) != NULL) {
					size_t n = 0;
					while (q->choices[n] != NULL)
						n++;
					if (i < n)
						on_answer(ad, qid, q->choices[i],
						    ev->sender, ev->channel,
						    ev->thread);
				}
				break;
			}
		}
		free(key);
		break;
	}
}
