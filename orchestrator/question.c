#include "orchestrator/question.h"
#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/outbox.h"
#include "orchestrator/render.h"
#include "bot/ctl.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct question	*open_list;

#define Q_MAX_OBSERVERS	4
static struct {
	question_event_fn	 fn;
	void			*arg;
}			 observers[Q_MAX_OBSERVERS];
static int		 nobservers;

void
question_on_event(question_event_fn fn, void *arg)
{
	int	 i;

	for (i = 0; i < nobservers; i++)
		if (observers[i].fn == fn && observers[i].arg == arg)
			return;
	if (nobservers == Q_MAX_OBSERVERS)
		fatalx("question: too many observers");
	observers[nobservers].fn = fn;
	observers[nobservers++].arg = arg;
}

static void
q_notify(struct question *q, enum question_event ev)
{
	int	 i;

	for (i = 0; i < nobservers; i++)
		observers[i].fn(q, ev, observers[i].arg);
}

static const char *
state_name(enum question_state s)
{
	switch (s) {
	case Q_OPEN:
		return "open";
	case Q_ANSWERED:
		return "answered";
	case Q_CANCELLED:
		return "cancelled";
	default:
		return "expired";
	}
}

static void
q_key(int64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "q%lld", (long long)id);
}

static void
q_free(struct question *q)
{
	size_t	 i;

	for (i = 0; q->choices != NULL && q->choices[i] != NULL; i++)
		free(q->choices[i]);
	free(q->choices);
	free(q->text);
	free(q->answer);
	free(q->answered_by);
	if (q->agent != NULL)
		agent_unref(q->agent);
	free(q);
}

static void
q_unlink(struct question *q)
{
	struct question	**pp;

	for (pp = &open_list; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			return;
		}
}

/*
 * The asking agent hung up (killed, crashed) while waiting.  A question
 * settled in a transaction still open is left alone: its commit replies
 * (into the void), its rollback sees the request gone (q_unsettle).
 */
static void
q_req_gone(struct ctl_req *req, void *arg)
{
	struct question	*q = arg;

	/* ctl still wants its reply (it is discarded): settling sends it. */
	if (q->state == Q_OPEN) {
		char	 key[32];

		q_key(q->id, key, sizeof key);
		log_info("question %s: the agent hung up, cancelling", key);
		question_answer(-q->id, NULL, "agent hung up", NULL);
	}
}

/* Answers the waiting agent: the ticket's state, answer and by are set. */
static void
q_reply(struct question *q)
{
	if (q->req == NULL)
		return;
	if (q->on_settle != NULL)
		q->on_settle(q, q->req);
	else if (q->state == Q_ANSWERED)
		ctl_reply(q->req, json_pack("{s:s, s:s}", "answer", q->answer,
		    "answered_by", q->answered_by));
	else
		ctl_reply_error(q->req, "%s", state_name(q->state));
	q->req = NULL;
}

/* What others see of a settled ticket: the agent's reply, and it is gone. */
static void
q_done(struct question *q)
{
	char	 key[32];

	q_key(q->id, key, sizeof key);
	q_reply(q);
	loop_timer_cancel(q->timer);
	q->timer = NULL;
	q_unlink(q);
	log_info("question %s %s%s%s", key, state_name(q->state),
	    q->answered_by != NULL ? " by " : "",
	    q->answered_by != NULL ? q->answered_by : "");
	agent_touch(q->agent);
	q_free(q);
}

/* A ticket settled in a transaction not yet ended; NULL once freed. */
static struct question *
q_pending(int64_t id)
{
	struct question	*q;

	for (q = open_list; q != NULL; q = q->next)
		if (q->id == id && q->pending)
			return q;
	return NULL;
}

/* Hooks take the id: question_free_all may free the ticket first. */
static void
q_settled(void *arg)
{
	struct question	*q;

	if ((q = q_pending((int64_t)(intptr_t)arg)) == NULL)
		return;
	q->pending = 0;
	q_done(q);
}

static void	q_expire_later(void *);
static void	q_gone_later(void *);

/*
 * The settle was not recorded: the ticket is open again as it was (its
 * request, timer and place in the list were never touched), so the event,
 * replayed from its inbox row, can settle it.  What happened meanwhile
 * and was ignored because it was settled happens now.
 */
static void
q_unsettle(void *arg)
{
	struct question	*q;
	char		 key[32];

	if ((q = q_pending((int64_t)(intptr_t)arg)) == NULL)
		return;
	q_key(q->id, key, sizeof key);
	log_warnx("question %s: %s, but the store did not commit; open"
	    " again", key, state_name(q->state));
	q->pending = 0;
	q->state = Q_OPEN;
	free(q->answer);
	q->answer = NULL;
	free(q->answered_by);
	q->answered_by = NULL;
	if (q->expired) {
		q->expired = 0;
		loop_defer(q_expire_later, (void *)(intptr_t)q->id);
	} else if (q->req != NULL && ctl_req_gone(q->req))
		loop_defer(q_gone_later, (void *)(intptr_t)q->id);
}

/*
 * Settles q: records it, edits its message and tells the observers, in the
 * caller's transaction if there is one.  The agent hears of it, and the
 * ticket leaves the open list, only once that commits: an answer the store
 * does not have must not reach the agent, and a rollback leaves the ticket
 * open for the replayed event.  Meanwhile it is no longer Q_OPEN, so
 * nothing finds or settles it again (the store says by whom it was).
 */
static void
q_settle(struct question *q, enum question_state st, const char *answer,
    const char *by)
{
	struct conversation	*c = agent_conversation(q->agent);
	sqlite3_stmt		*s;
	char			 key[32], *text;

	q->state = st;
	q->answer = answer != NULL ? xstrdup(answer) : NULL;
	q->answered_by = by != NULL ? xstrdup(by) : NULL;
	q_key(q->id, key, sizeof key);

	s = store_stmt("UPDATE questions SET status = ?, answer = ?,"
	    " answered_by = ?, answered_at = ? WHERE id = ?");
	store_bind_text(s, 1, state_name(st));
	store_bind_text(s, 2, answer);
	store_bind_text(s, 3, by);
	store_bind_int(s, 4, wall_s());
	store_bind_int(s, 5, q->id);
	if (sqlite3_step(s) != SQLITE_DONE)
		log_warnx("question %s: update failed: %s", key,
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(s);

	text = render_question_settled(q->id, agent_id(q->agent), q->text,
	    state_name(st), st == Q_ANSWERED ? answer : NULL, by);
	outbox_edit(c->adapter, c->channel, c->thread, key, text, NULL, key, 1);
	free(text);
	/* Observers record in the store: their rows follow ours. */
	q_notify(q, QUESTION_SETTLED);

	if (store_in_transaction()) {
		q->pending = 1;
		store_hook(q_settled, q_unsettle, (void *)(intptr_t)q->id);
	} else
		q_done(q);
}

static void
q_gone_later(void *arg)
{
	int64_t	 id = (int64_t)(intptr_t)arg;

	if (question_find(id) != NULL) {
		log_info("question q%lld: the agent hung up, cancelling",
		    (long long)id);
		question_answer(-id, NULL, "agent hung up", NULL);
	}
}

static void
q_expire(void *arg)
{
	struct question	*q = arg;

	q->timer = NULL;	/* the timer frees itself */
	if (q->pending)
		q->expired = 1;	/* settled unless that is rolled back */
	else
		q_settle(q, Q_EXPIRED, NULL, NULL);
}

static void
q_expire_later(void *arg)
{
	struct question	*q;

	if ((q = question_find((int64_t)(intptr_t)arg)) != NULL)
		q_settle(q, Q_EXPIRED, NULL, NULL);
}

struct question *
question_open(struct agent *a, const char *text, const char *const *choices,
    int timeout_s, struct ctl_req *req)
{
	struct conversation	*c = agent_conversation(a);
	struct question		*q;
	sqlite3_stmt		*s;
	json_t			*cj;
	char			*cs, key[32], *msg;
	size_t			 n = 0, i;

	while (choices != NULL && choices[n] != NULL)
		n++;
	cj = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(cj, json_string(choices[i]));
	cs = json_dumps(cj, JSON_COMPACT);
	json_decref(cj);

	s = store_stmt("INSERT INTO questions (agent_id, text, choices,"
	    " status, created_at) VALUES (?, ?, ?, 'open', ?)");
	store_bind_int(s, 1, agent_id(a));
	store_bind_text(s, 2, text);
	store_bind_text(s, 3, cs);
	store_bind_int(s, 4, wall_s());
	free(cs);
	if (sqlite3_step(s) != SQLITE_DONE) {
		log_warnx("question: insert failed: %s",
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(s);
		return NULL;
	}
	sqlite3_reset(s);

	q = xcalloc(1, sizeof *q);
	q->id = sqlite3_last_insert_rowid(store_db());
	q->agent = a;
	agent_ref(a);
	q->text = xstrdup(text);
	q->choices = xcalloc(n + 1, sizeof *q->choices);
	for (i = 0; i < n; i++)
		q->choices[i] = xstrdup(choices[i]);
	q->req = req;
	q_key(q->id, key, sizeof key);

	s = store_stmt("UPDATE questions SET msg_key = ? WHERE id = ?");
	store_bind_text(s, 1, key);
	store_bind_int(s, 2, q->id);
	sqlite3_step(s);
	sqlite3_reset(s);

	/* Appended so "the open questions" list in the order they came. */
	{
		struct question	**pp = &open_list;

		while (*pp != NULL)
			pp = &(*pp)->next;
		*pp = q;
	}
	/*
	 * ctl calls on_gone at once when the peer has already hung up; that
	 * would settle and free q under our feet (and before a caller sets
	 * on_settle).  Settle such a question on the next turn instead.
	 */
	if (req != NULL && ctl_req_gone(req))
		loop_defer(q_gone_later, (void *)(intptr_t)q->id);
	else if (req != NULL)
		ctl_req_on_gone(req, q_req_gone, q);
	if (timeout_s > 0)
		q->timer = loop_timer_once((uint64_t)timeout_s * 1000,
		    q_expire, q);

	msg = render_question(q->id, agent_id(a), text,
	    (const char *const *)q->choices);
	outbox_post(c->adapter, c->channel, c->thread, NULL, key, msg,
	    (const char *const *)q->choices, key);
	free(msg);
	log_info("question %s from agent %lld", key, (long long)agent_id(a));
	agent_touch(a);
	q_notify(q, QUESTION_OPENED);
	return q;
}

struct question *
question_find(int64_t id)
{
	struct question	*q;

	for (q = open_list; q != NULL; q = q->next)
		if (q->id == id && q->state == Q_OPEN)
			return q;
	return NULL;
}

int64_t
question_parse_id(const char *s)
{
	long long	 v;

	if (s == NULL)
		return -1;
	if (*s == 'q' || *s == 'Q')
		s++;
	v = parse_uint(s);
	return v > 0 ? v : -1;
}

int
question_open_in(const struct conversation *c, struct question **out, int n)
{
	struct question	*q;
	int		 count = 0;

	for (q = open_list; q != NULL; q = q->next) {
		if (q->state != Q_OPEN || agent_conversation(q->agent) != c)
			continue;
		if (count < n)
			out[count] = q;
		count++;
	}
	return count;
}

/* The choice a reply names: its text (any case) or its number. */
static const char *
q_match_choice(const struct question *q, const char *answer)
{
	long long	 n;
	size_t		 i, count = 0;

	while (q->choices[count] != NULL)
		count++;
	if (count == 0)
		return answer;
	for (i = 0; i < count; i++)
		if (strcasecmp(q->choices[i], answer) == 0)
			return q->choices[i];
	n = parse_uint(answer);
	if (n >= 1 && (size_t)n <= count)
		return q->choices[n - 1];
	/* Free text is allowed: a person may answer outside the choices. */
	return answer;
}

int
question_answer(int64_t id, const char *answer, const char *by, char **why)
{
	struct question	*q;
	sqlite3_stmt	*s;
	int		 cancel = id < 0;
	char		*st = NULL, *who = NULL;

	if (cancel)
		id = -id;
	if ((q = question_find(id)) == NULL) {
		if (why == NULL)
			return -1;
		s = store_stmt("SELECT status, answered_by FROM questions"
		    " WHERE id = ?");
		store_bind_int(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			st = store_col_text(s, 0);
			who = store_col_text(s, 1);
		}
		sqlite3_reset(s);
		if (st == NULL)
			*why = xasprintf("there is no question q%lld",
			    (long long)id);
		else if (strcmp(st, "answered") == 0)
			*why = xasprintf("q%lld was already answered by %s",
			    (long long)id, who != NULL ? who : "someone");
		else
			*why = xasprintf("q%lld is %s and can no longer be"
			    " answered", (long long)id, st);
		free(st);
		free(who);
		return -1;
	}
	if (cancel)
		q_settle(q, Q_CANCELLED, NULL, by);
	else
		q_settle(q, Q_ANSWERED, q_match_choice(q, answer), by);
	return 0;
}

void
question_cancel_agent(struct agent *a, const char *why)
{
	struct question	*q, *next;

	for (q = open_list; q != NULL; q = next) {
		next = q->next;
		if (q->agent == a && q->state == Q_OPEN)
			q_settle(q, Q_CANCELLED, NULL, why);
	}
}

void
question_cancel_stale(void)
{
	int	 n;

	/* No process is waiting on these any more (we restarted). */
	n = store_exec("UPDATE questions SET status = 'cancelled',"
	    " answered_by = 'restart' WHERE status = 'open'");
	if (n < 0)
		log_warnx("question: cancelling stale questions failed");
}

void
question_free_all(void)
{
	struct question	*q;

	while ((q = open_list) != NULL) {
		open_list = q->next;
		loop_timer_cancel(q->timer);
		/*
		 * Settled in a transaction still open (its hook will find
		 * nothing), it ignored its agent hanging up: that transaction
		 * never commits, so the agent is told "cancelled", not the
		 * answer, and its request is released.
		 */
		if (q->pending && q->req != NULL) {
			free(q->answer);
			q->answer = NULL;
			q->state = Q_CANCELLED;
			q_reply(q);
		}
		q_free(q);
	}
}
