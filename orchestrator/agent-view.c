/*
 * agent-view — what an agent shows: its status card (coalesced edits), the
 * tail of its output, and the lines of `status` and `diff #N`.
 */
#include "orchestrator/agent-int.h"
#include "orchestrator/conversation.h"
#include "orchestrator/driver.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/render.h"
#include "orchestrator/worktree.h"
#include "config/config.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the status card --------------------------------------------------- */

void
agent_card_key(const struct agent *a, char *buf, size_t len)
{
	snprintf(buf, len, "a%lld.card", (long long)a->id);
}

char *
agent_card_text(struct agent *a)
{
	struct render_card	 c = { 0 };
	const char		*steps[AGENT_STEPS + 1] = { 0 };
	struct question		*qs[8];
	char			 qbuf[32];
	int			 i, nq, k;

	c.id = a->id;
	c.name = a->name;
	c.state = agent_state_name(a->state);
	c.branch = a->branch;
	c.elapsed_s = agent_elapsed_s(a);
	for (i = 0; i < a->nsteps; i++)
		steps[i] = a->steps[i];
	c.steps = steps;
	c.files = (const char *const *)a->files;
	nq = question_open_in(a->conv, qs, (int)nitems(qs));
	for (k = 0; k < nq && k < (int)nitems(qs); k++)
		if (qs[k]->agent == a) {
			snprintf(qbuf, sizeof qbuf, "q%lld",
			    (long long)qs[k]->id);
			c.waiting = qbuf;
			break;
		}
	return render_card(&c);
}

/*
 * The card is posted when the turn's process is about to start, right
 * after "Started #N …", so the thread reads in that order; a queued agent
 * is announced by the queue notice instead.  Edits before the post would
 * wait in the outbox for a message that never comes: agent_card_flush()
 * does nothing until then.
 */
void
agent_card_post(struct agent *a)
{
	sqlite3_stmt	*st;
	char		 key[32], *text;

	if (a->card_posted)
		return;
	agent_card_key(a, key, sizeof key);
	st = store_stmt("UPDATE agents SET card_key = ? WHERE id = ?");
	store_bind_text(st, 1, key);
	store_bind_int(st, 2, a->id);
	sqlite3_step(st);
	sqlite3_reset(st);
	text = agent_card_text(a);
	outbox_post(a->conv->adapter, a->conv->channel, a->conv->thread, NULL,
	    key, text, NULL, NULL);
	free(text);
	a->card_posted = 1;
	a->card_last_ms = now_ms();
}

void
agent_card_flush(struct agent *a)
{
	char	 key[32], *text;

	if (!a->card_posted)
		return;
	agent_card_key(a, key, sizeof key);
	text = agent_card_text(a);
	outbox_edit(a->conv->adapter, a->conv->channel, a->conv->thread, key,
	    text, NULL, NULL, 0);
	free(text);
	a->card_last_ms = now_ms();
}

/*
 * A live agent's card between two states: its edit row is a lazy commit
 * (no fsync of its own; the next full commit carries it).  A power cut may
 * lose such an edit, never the last one: an ended agent's card is flushed
 * at once with a full commit (agent_touch), and a restart reports the
 * agents that were running on their cards.
 */
static void
card_timer_fired(uv_timer_t *t)
{
	if (store_begin_lazy() == -1) {
		agent_card_flush(t->data);
		return;
	}
	agent_card_flush(t->data);
	store_commit();
}

/*
 * Coalesces card edits to one per render.card_interval_ms; the final state
 * of an agent is always flushed at once, so the card never ends stale.
 */
void
agent_touch(struct agent *a)
{
	uint64_t	 now = now_ms(), interval, due;

	if (a->card_timer == NULL)
		return;
	interval = (uint64_t)agent_cfg->render.card_interval_ms;
	if (!agent_is_live(a)) {
		uv_timer_stop(a->card_timer);
		agent_card_flush(a);
		return;
	}
	if (uv_is_active((uv_handle_t *)a->card_timer))
		return;		/* an edit is already due; it will read the latest */
	due = a->card_last_ms + interval;
	uv_timer_start(a->card_timer, card_timer_fired,
	    due > now ? due - now : 0, 0);
}

void
agent_progress(struct agent *a, const char *text)
{
	int	 i;

	if (a->nsteps == AGENT_STEPS) {
		free(a->steps[0]);
		for (i = 1; i < AGENT_STEPS; i++)
			a->steps[i - 1] = a->steps[i];
		a->nsteps--;
	}
	a->steps[a->nsteps++] = render_oneline(text, 200);
	agent_touch(a);
}

void
agent_set_summary(struct agent *a, const char *text)
{
	free(a->summary);
	a->summary = xstrdup(text);
	utf8_truncate(a->summary, 3000);
}

void
agent_set_session(struct agent *a, const char *session)
{
	/* Keep the first: a resumed turn may report a new one (PROTOCOLS.md). */
	if (a->session == NULL) {
		a->session = xstrdup(session);
		agent_db_update(a);
	}
}

/* ---- output ring --------------------------------------------------------- */

void
agent_ring_add(struct agent *a, const char *p, size_t n)
{
	size_t	 k;

	if (a->ring_cap == 0)
		return;
	if (n >= a->ring_cap) {
		memcpy(a->ring, p + n - a->ring_cap, a->ring_cap);
		a->ring_pos = 0;
		a->ring_len = a->ring_cap;
		return;
	}
	while (n > 0) {
		k = a->ring_cap - a->ring_pos;
		if (k > n)
			k = n;
		memcpy(a->ring + a->ring_pos, p, k);
		a->ring_pos = (a->ring_pos + k) % a->ring_cap;
		p += k;
		n -= k;
		a->ring_len = a->ring_len + k > a->ring_cap ? a->ring_cap :
		    a->ring_len + k;
	}
}

/* The last max bytes of output, from a line start, valid UTF-8. */
/* The last max bytes of s, from a line start, valid UTF-8, in place. */
static char *
tail_cut(char *s, size_t max)
{
	size_t	 n = strlen(s);
	char	*p = s;

	if (n > max) {
		p = s + n - max;
		if ((p = strchr(p, '\n')) == NULL)
			p = s + n - max;
		else
			p++;
	}
	while (((unsigned char)*p & 0xc0) == 0x80)
		p++;
	memmove(s, p, strlen(p) + 1);
	/* Drop control bytes other than newline and tab. */
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t')
			*p = ' ';
	return s;
}

char *
agent_ring_tail(struct agent *a, size_t max)
{
	char	*s;
	size_t	 start, n = a->ring_len, i;

	s = xmalloc(n + 1);
	start = (a->ring_pos + a->ring_cap - n) % (a->ring_cap ? a->ring_cap : 1);
	for (i = 0; i < n; i++)
		s[i] = a->ring[(start + i) % a->ring_cap];
	s[n] = '\0';
	/* NUL bytes in the output would end the text early. */
	for (i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = ' ';
	return tail_cut(s, max);
}

/*
 * What a person reads of the output: the driver makes a JSON stream's tail
 * readable (a raw stream-json tail is noise), from the whole ring, then it
 * is cut to max.
 */
char *
agent_output_tail(const struct agent *ca, size_t max)
{
	struct agent	*a = (struct agent *)ca;	/* the ring is not changed */
	char		*raw, *human;

	if (a->drv->human_tail == NULL)
		return agent_ring_tail(a, max);
	raw = agent_ring_tail(a, a->ring_cap);
	if ((human = a->drv->human_tail(raw)) == NULL)
		return tail_cut(raw, max);
	free(raw);
	return tail_cut(human, max);
}

/* ---- status and diff lines ------------------------------------------------ */

char *
agent_status_line(const struct agent *a)
{
	char	*el, *s;

	el = render_elapsed(agent_elapsed_s(a));
	s = xasprintf("#%lld %s · %s · %s · `%s`%s%s", (long long)a->id,
	    a->name, agent_state_name(a->state), el,
	    a->branch != NULL ? a->branch : "-",
	    a->nsteps > 0 ? " · " : "",
	    a->nsteps > 0 ? a->steps[a->nsteps - 1] : "");
	free(el);
	return s;
}

