/*
 * outbox lanes — which ops wait for which, and when each may go: a lane
 * per channel (per thread with caps.order_per_thread), its two queues, one
 * op in flight per queue (a few for the quick one), and the timers that
 * wake a lane when its head is due.
 */
#include "orchestrator/outbox.h"
#include "orchestrator/outbox-int.h"
#include "adapters/adapter.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A count no run reaches: until a lookup finds the queue empty. */
#define NPEND_UNKNOWN	(INT_MAX / 2)

static void	lane_kick_q(struct lane *, int);

static void
lane_timer_fired(uv_timer_t *t)
{
	struct lane	*l = t->data;

	lane_kick_q(l, t == l->timer[Q_POST] ? Q_POST : Q_QUICK);
}

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
char *
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

struct lane *
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
		l->npend[q] = NPEND_UNKNOWN;	/* rows of a past run */
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

/*
 * Row id is in flight (1), or is an edit of a message whose edit is (2: a
 * row that waits, not one that went).
 */
int
quick_busy(const struct lane *l, int64_t id, const char *op, const char *key)
{
	const struct out_op	*o;
	int			 busy = 0;

	for (o = l->inflight[Q_QUICK]; o != NULL; o = o->next) {
		if ((int64_t)o->op.id == id)
			return 1;
		if (strcmp(op, "edit") == 0 && o->op.kind == CHAT_OP_EDIT &&
		    key != NULL && o->key != NULL && strcmp(o->key, key) == 0)
			busy = 2;
	}
	return busy;
}

/* A row of queue q may now be pending and not in flight. */
void
lane_more(struct lane *l, int q)
{
	if (l->npend[q] < NPEND_UNKNOWN)
		l->npend[q]++;
}

/*
 * A new row of op in l.  Without per-method limits every op goes through
 * Q_POST (lane_kick_q); an adapter not registered yet may have them, or
 * not: both then.
 */
void
lane_mark(struct lane *l, const char *op)
{
	struct adapter	*a;

	if (strcmp(op, "post") == 0 || strcmp(op, "upload") == 0) {
		lane_more(l, Q_POST);
		return;
	}
	lane_more(l, Q_QUICK);
	if ((a = reg_find(l->adapter)) == NULL ||
	    !a->ops->caps(a)->per_method_limits)
		lane_more(l, Q_POST);
}

void
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
void
lane_kick(struct lane *l)
{
	lane_kick_q(l, Q_QUICK);
	lane_kick_q(l, Q_POST);
}

static void
lane_kick_q(struct lane *l, int q)
{
	const struct adapter_caps	*caps;
	struct adapter	*a;
	struct out_op	*o;
	const char	*skip = NULL;
	int64_t		 wait, now, held = 0;
	int		 single;

	if (!outbox_running || (q == Q_POST ? l->inflight[q] != NULL :
	    l->nquick >= QUICK_MAX))
		return;
	if ((a = reg_find(l->adapter)) == NULL)
		return;		/* adapter disabled: rows wait for it */
	single = !a->ops->caps(a)->per_method_limits;
	if (single && q == Q_QUICK)
		return;		/* everything goes through Q_POST */
again:
	if (lane_head(l, q, single, skip, &o, &wait) == 0) {
		if (held > 0 && (wait == 0 || held < wait))
			wait = held;	/* the kind passed over */
		if (wait > 0)
			uv_timer_start(l->timer[q], lane_timer_fired,
			    (uint64_t)wait, 0);
		else if (l->group[0] != '\0' && l->inflight[Q_POST] == NULL &&
		    l->nquick == 0)
			lane_free(l);	/* nobody holds l after a kick */
		return;
	}
	/*
	 * A fixed gap (min_interval_ms) is for new messages only.  Reactions
	 * and edits have their own per-method limits; pacing them too would
	 * hold the first reply of every thread behind its 👀 for a whole
	 * interval.
	 */
	now = wall_ms();
	if ((o->op.kind == CHAT_OP_POST || o->op.kind == CHAT_OP_UPLOAD) &&
	    l->next_post_ms > now) {
		op_free(o);
		uv_timer_start(l->timer[q], lane_timer_fired,
		    (uint64_t)(l->next_post_ms - now), 0);
		return;
	}
	/* The platform's budgets for this kind of op, each its own bucket. */
	caps = a->ops->caps(a);
	if ((wait = outbox_pace_wait(caps, l->adapter, l->channel,
	    o->op.kind)) > 0) {
		/*
		 * Reactions and edits have budgets of their own: 👀 waiting
		 * for reactions.add does not hold a card's chat.update, nor
		 * the other way round.
		 */
		if (q == Q_QUICK && skip == NULL) {
			skip = ops_name(o->op.kind);
			held = wait;
			op_free(o);
			goto again;
		}
		op_free(o);
		if (held > 0 && held < wait)
			wait = held;
		uv_timer_start(l->timer[q], lane_timer_fired, (uint64_t)wait,
		    0);
		return;
	}
	outbox_pace_take(caps, l->adapter, l->channel, o);
	o->sent_ms = now_ms();
	if (l->npend[q] > 0)
		l->npend[q]--;
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
		lane_more(l, q);
		outbox_pace_settle(o, PACE_FAILED, -1);
		op_free(o);
		uv_timer_start(l->timer[q], lane_timer_fired, 1000, 0);
		return;
	}
	/* The quick queue fills its slots; send() may have settled o. */
	if (q == Q_QUICK)
		lane_kick_q(l, q);
}

/* After an op of queue q settled; a sent post may unblock edits too. */
void
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
