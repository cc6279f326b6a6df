/*
 * outbox pacing — token buckets (see outbox-pace.h) and the outbox's use of
 * them: the buckets an op passes through, by its adapter's budgets for its
 * kind, taken when it goes and settled by the platform's answer.
 */
#include "orchestrator/outbox-pace.h"
#include "orchestrator/outbox-int.h"
#include "adapters/adapter.h"
#include "bot/log.h"
#include "bot/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the arithmetic ---------------------------------------------------- */

static void
refill(struct pace_bucket *b, uint64_t now)
{
	double	 dt;

	if (now <= b->last_ms)
		return;
	dt = (double)(now - b->last_ms);
	b->last_ms = now;
	b->scale += dt / PACE_RECOVER_MS;
	if (b->scale > 1)
		b->scale = 1;
	b->tokens += dt * b->rate * b->scale;
	if (b->tokens > b->cap)
		b->tokens = b->cap;
}

void
pace_init(struct pace_bucket *b, unsigned per_minute, unsigned burst,
    uint64_t now)
{
	memset(b, 0, sizeof *b);
	b->rate = (per_minute > 0 ? per_minute : 1) / 60000.0;
	b->burst = burst > 0 ? burst : 1;
	b->cap = b->burst;
	b->tokens = b->burst;
	b->scale = 1;
	b->last_ms = now;
}

int64_t
pace_wait(struct pace_bucket *b, uint64_t now)
{
	double	 need;
	int64_t	 ms;

	if (now < b->hold_until)
		return (int64_t)(b->hold_until - now);
	refill(b, now);
	if (b->tokens >= 1)
		return 0;
	/* One probe at a time: its answer says whether there is more room. */
	if (now >= b->calm_until && b->inflight == 0)
		return 0;
	need = (1 - b->tokens) / (b->rate * b->scale);
	ms = (int64_t)ceil(need);
	if (ms < 1)
		ms = 1;
	/* Or, if sooner, the end of the calm after a 429: then a probe. */
	if (b->inflight == 0 && b->calm_until > now &&
	    b->calm_until - now < (uint64_t)ms)
		ms = (int64_t)(b->calm_until - now);
	return ms;
}

int
pace_take(struct pace_bucket *b, uint64_t now)
{
	refill(b, now);
	b->inflight++;
	if (b->tokens >= b->cap && b->full_at == 0)
		b->full_at = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	return 1;
}

void
pace_ok(struct pace_bucket *b, int probe, uint64_t now)
{
	double	 old = b->cap;

	b->inflight--;
	if (b->full_at != 0) {
		/* The platform may have started refilling only now. */
		refill(b, now);
		b->tokens -= (double)(now - b->full_at) * b->rate * b->scale;
		b->full_at = 0;
	}
	if (!probe)
		return;
	/* The platform took an op past our budget: there is room; find it. */
	refill(b, now);
	b->cap = old * 2 > PACE_CAP_MAX ? PACE_CAP_MAX : old * 2;
	if (b->cap < old)
		b->cap = old;
	b->tokens += b->cap - old;
	if (b->tokens > b->cap)
		b->tokens = b->cap;
}

void
pace_limited(struct pace_bucket *b, int probe, long long retry_ms,
    uint64_t now)
{
	uint64_t	 until;

	b->inflight--;
	refill(b, now);
	if (retry_ms < 0)
		retry_ms = 0;
	until = now + (uint64_t)retry_ms;
	if (until > b->hold_until)
		b->hold_until = until;
	/*
	 * The platform's bucket is empty too: both refill from here, ours
	 * at the documented rate, during the Retry-After.
	 */
	b->tokens = 0;
	b->full_at = 0;
	b->cap = b->burst;
	b->calm_until = until + PACE_CALM_MS;
	if (!probe) {
		b->scale /= 2;
		if (b->scale < PACE_SCALE_MIN)
			b->scale = PACE_SCALE_MIN;
	}
}

void
pace_failed(struct pace_bucket *b)
{
	b->inflight--;
}

/* ---- the outbox's buckets ---------------------------------------------- */

struct pacer {
	char				*adapter;
	char				*channel;	/* NULL: workspace-wide */
	const struct adapter_budget	*budget;
	struct pace_bucket		 b;
	struct pacer			*next;
};

static struct pacer	*pacers;

/*
 * A bucket that is full at its documented burst, with nothing in flight
 * and nothing learned or held, is what a new one would be: it goes, so a
 * workspace with thousands of channels does not keep a bucket for each.
 */
static int
pacer_idle(struct pacer *p, uint64_t now)
{
	struct pace_bucket	*b = &p->b;

	refill(b, now);
	return b->inflight == 0 && b->tokens >= b->cap && b->cap <= b->burst &&
	    b->scale >= 1 && b->hold_until <= now && b->calm_until <= now &&
	    b->full_at == 0;
}

static void
pacer_free(struct pacer *p)
{
	free(p->adapter);
	free(p->channel);
	free(p);
}

static struct pacer *
pacer_get(const char *adapter, const char *channel,
    const struct adapter_budget *budget)
{
	struct pacer	*p, **pp;
	uint64_t	 now = now_ms();

	if (budget->scope == BUDGET_WORKSPACE)
		channel = NULL;
	for (pp = &pacers; (p = *pp) != NULL; ) {
		if (p->budget == budget && strcmp(p->adapter, adapter) == 0 &&
		    (channel == NULL ? p->channel == NULL : p->channel != NULL &&
		    strcmp(p->channel, channel) == 0))
			return p;
		if (p->channel != NULL && pacer_idle(p, now)) {
			*pp = p->next;
			pacer_free(p);
		} else
			pp = &p->next;
	}
	p = xcalloc(1, sizeof *p);
	p->adapter = xstrdup(adapter);
	p->channel = channel != NULL ? xstrdup(channel) : NULL;
	p->budget = budget;
	pace_init(&p->b, budget->per_minute, budget->burst, now);
	p->next = pacers;
	pacers = p;
	return p;
}

int64_t
outbox_pace_wait(const struct adapter_caps *caps, const char *adapter,
    const char *channel, enum chat_op_kind kind)
{
	const struct adapter_budget	*bu;
	uint64_t			 now = now_ms();
	int64_t				 w, wait = 0;
	size_t				 i;

	for (i = 0; i < caps->nbudgets; i++) {
		bu = &caps->budgets[i];
		if (bu->kind != kind)
			continue;
		w = pace_wait(&pacer_get(adapter, channel, bu)->b, now);
		if (w > wait)
			wait = w;
	}
	return wait;
}

void
outbox_pace_take(const struct adapter_caps *caps, const char *adapter,
    const char *channel, struct out_op *o)
{
	const struct adapter_budget	*bu;
	struct pacer			*p;
	uint64_t			 now = now_ms();
	size_t				 i;

	o->npacers = 0;
	for (i = 0; i < caps->nbudgets && o->npacers < OP_PACERS; i++) {
		bu = &caps->budgets[i];
		if (bu->kind != o->op.kind)
			continue;
		p = pacer_get(adapter, channel, bu);
		o->pacers[o->npacers] = p;
		o->probes[o->npacers] = (unsigned char)pace_take(&p->b, now);
		if (o->probes[o->npacers])
			log_debug("outbox: %s probes past its budget (%s)",
			    bu->method, bu->scope == BUDGET_CHANNEL ?
			    channel : "workspace");
		o->npacers++;
	}
}

/*
 * A 429 names no scope.  If the op went past the budget of some of its
 * buckets, those were the ones over (the others had room by the platform's
 * own numbers): they wait out the Retry-After.  If it was within every
 * budget, the platform is stricter than documented: all of them wait.
 */
void
outbox_pace_settle(struct out_op *o, enum pace_outcome how, long long retry_ms)
{
	struct pace_bucket	*b;
	uint64_t		 now = now_ms();
	int			 i, probed = 0;

	for (i = 0; i < o->npacers; i++)
		probed |= o->probes[i];
	for (i = 0; i < o->npacers; i++) {
		b = &o->pacers[i]->b;
		if (how == PACE_OK)
			pace_ok(b, o->probes[i], now);
		else if (how == PACE_LIMITED && (o->probes[i] || !probed)) {
			log_info("outbox: %s over its budget (%s): holding for"
			    " %lld ms%s", o->pacers[i]->budget->method,
			    o->pacers[i]->channel != NULL ?
			    o->pacers[i]->channel : "workspace", retry_ms,
			    o->probes[i] ? "" : "; within the documented"
			    " budget: rate halved");
			pace_limited(b, o->probes[i], retry_ms, now);
		} else
			pace_failed(b);
	}
	o->npacers = 0;
}

void
outbox_pace_free(void)
{
	struct pacer	*p;

	while ((p = pacers) != NULL) {
		pacers = p->next;
		pacer_free(p);
	}
}
