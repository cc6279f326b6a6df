/*
 * agent-tx — an agent's in-memory changes made inside a transaction (the
 * work of an inbound event, which runs in the transaction that deletes the
 * event's inbox row) follow that transaction: when it does not commit (a
 * full disk, an I/O error), they are undone, and the event, replayed from
 * its row later, makes them again exactly once.  Without this, every retry
 * of a row made another agent in memory — and ran it — while the store
 * knew none of them, and a later real agent with the same id found "its"
 * worktree taken.  Turns themselves start only after the commit
 * (agent.c, turn_go); these are the rest.
 */
#include "orchestrator/agent-int.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- a new agent ---------------------------------------------------------- */

static void
start_undo(void *arg)
{
	struct agent	*a = arg, **pp;

	log_warnx("agent %lld: its start was not recorded (the store did not"
	    " commit); dropped, the event will make it again",
	    (long long)a->id);
	for (pp = &agent_queue; *pp != NULL; pp = &(*pp)->qnext)
		if (*pp == a) {
			*pp = a->qnext;
			break;
		}
	a->qnext = NULL;
	a->state = AGENT_CANCELLED;	/* not live: nothing counts it */
	agent_unlink(a);
	agent_free_timers(a);
	agent_unref(a);		/* the list's */
	agent_unref(a);		/* the hook's */
	agent_schedule_soon();	/* a slot it held may start another */
}

void
agent_tx_started(struct agent *a)
{
	if (!store_in_transaction())
		return;
	agent_ref(a);
	store_hook(agent_unref_hook, start_undo, a);
}

/* ---- a follow-up ---------------------------------------------------------- */

struct fu_undo {
	struct agent		*a;
	char			*prompt;	/* before: the turn's prompt */
	int			 turn;
	enum agent_state	 state;
};

static void
fu_free(struct fu_undo *u)
{
	agent_unref(u->a);
	free(u->prompt);
	free(u);
}

static void
fu_commit(void *arg)
{
	fu_free(arg);
}

static void
fu_rollback(void *arg)
{
	struct fu_undo	*u = arg;
	struct agent	*a = u->a, **qq;
	struct followup	*f, **pp;

	if (a->turn != u->turn) {
		/*
		 * It started a new turn of an ended agent: the prompt it took
		 * from the head of the follow-ups goes back there, and the
		 * agent is as it was (turn_undo already ran: not preparing).
		 */
		for (qq = &agent_queue; *qq != NULL; qq = &(*qq)->qnext)
			if (*qq == a) {
				*qq = a->qnext;
				break;
			}
		a->qnext = NULL;
		f = xcalloc(1, sizeof *f);
		f->text = a->prompt;
		f->next = a->followups;
		a->followups = f;
		a->prompt = u->prompt;
		u->prompt = NULL;
		a->turn = u->turn;
		a->state = u->state;
	}
	/* The follow-up itself, last in the list: the replay brings it. */
	for (pp = &a->followups; *pp != NULL && (*pp)->next != NULL;
	    pp = &(*pp)->next)
		;
	if ((f = *pp) != NULL) {
		*pp = NULL;
		free(f->text);
		free(f);
	}
	log_info("agent %lld: a follow-up was not recorded; undone",
	    (long long)a->id);
	fu_free(u);
}

void
agent_tx_followup(struct agent *a)
{
	struct fu_undo	*u;

	if (!store_in_transaction())
		return;
	u = xcalloc(1, sizeof *u);
	agent_ref(a);
	u->a = a;
	u->prompt = a->prompt != NULL ? xstrdup(a->prompt) : NULL;
	u->turn = a->turn;
	u->state = a->state;
	store_hook(fu_commit, fu_rollback, u);
}

/* ---- a line for a running child ------------------------------------------- */

struct tx_write {
	struct agent	*a;
	char		*text;
};

static void
write_free(void *arg)
{
	struct tx_write	*w = arg;

	agent_unref(w->a);
	free(w->text);
	free(w);
}

static void
write_go(void *arg)
{
	struct tx_write	*w = arg;
	struct agent	*a = w->a;
	struct followup	*f, **pp;

	if (a->state == AGENT_RUNNING && a->run != NULL &&
	    a->runner->write(a->run, w->text) == 0) {
		write_free(w);
		return;
	}
	/* It ended meanwhile: the next turn gets it. */
	log_info("agent %lld: ended before its follow-up was written; kept"
	    " for its next turn", (long long)a->id);
	f = xcalloc(1, sizeof *f);
	f->text = w->text;
	w->text = NULL;
	for (pp = &a->followups; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = f;
	write_free(w);
}

void
agent_tx_write(struct agent *a, const char *text)
{
	struct tx_write	*w;

	w = xcalloc(1, sizeof *w);
	agent_ref(a);
	w->a = a;
	w->text = xstrdup(text);
	store_hook(write_go, write_free, w);
}
