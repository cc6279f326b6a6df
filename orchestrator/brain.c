/*
 * brain — the registry of brains, the choice of a conversation's brain, the
 * agent-event observers, and the actions every brain takes (brain.h).
 */
#include "orchestrator/brain.h"
#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/question.h"
#include "orchestrator/transcript.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static const struct config	*cfg;

static const struct brain_ops *const brains[] = {
	&brain_rules,
	&brain_llm,
	NULL
};

const struct brain_ops *
brain_lookup(const char *name)
{
	size_t	 i;

	for (i = 0; brains[i] != NULL; i++)
		if (strcmp(brains[i]->name, name) == 0)
			return brains[i];
	return NULL;
}

const struct config *
brain_config(void)
{
	return cfg;
}

/*
 * The brain a conversation was opened with: from its route, or from the
 * webhook that opened it (starter "webhook:NAME", or a GitHub sender in a
 * github webhook's target channel).
 */
static const char *
brain_from_config(const struct conversation *c)
{
	const struct cfg_route	*r;
	const struct cfg_webhook *w;
	size_t			 i;

	if (c->starter != NULL && strncmp(c->starter, "webhook:", 8) == 0 &&
	    (w = config_webhook(cfg, c->starter + 8)) != NULL)
		return w->brain;
	if (c->starter != NULL && strncmp(c->starter, "github:", 7) == 0) {
		for (i = 0; i < cfg->nwebhooks; i++) {
			w = &cfg->webhooks[i];
			if (strcmp(w->kind, "github") == 0 &&
			    strcmp(w->target_adapter, c->adapter) == 0 &&
			    strcmp(w->target_channel, c->channel) == 0)
				return w->brain;
		}
	}
	if ((r = config_route(cfg, c->adapter, c->channel)) != NULL)
		return r->brain;
	return NULL;
}

const char *
brain_name_of(struct conversation *c)
{
	const struct cfg_brain	*b;
	const char		*name;
	char			*rec;

	if (cfg == NULL)
		return NULL;
	/* Recorded on first sight, so a route change moves nothing. */
	if ((rec = transcript_brain(c->id)) == NULL) {
		name = brain_from_config(c);
		transcript_set_brain(c->id, name != NULL ? name : "rules");
		return config_brain(cfg, name) != NULL ? name : NULL;
	}
	b = config_brain(cfg, rec);
	free(rec);
	return b != NULL ? b->name : NULL;
}

const struct brain_ops *
brain_of(struct conversation *c)
{
	return brain_name_of(c) != NULL ? &brain_llm : &brain_rules;
}

/* ---- observers ------------------------------------------------------------ */

static void
on_question(struct question *q, enum question_event ev, void *arg)
{
	struct conversation	*c = agent_conversation(q->agent);
	const struct brain_ops	*b = brain_of(c);

	if (ev == QUESTION_OPENED && b->on_question != NULL)
		b->on_question(c, q);
	else if (ev == QUESTION_SETTLED && b->on_settled != NULL)
		b->on_settled(c, q);
}

static void
on_agent_end(struct agent *a, void *arg)
{
	struct conversation	*c = agent_conversation(a);
	const struct brain_ops	*b = brain_of(c);

	if (b->on_agent_end != NULL)
		b->on_agent_end(c, a);
}

/* Defined in brain-llm.c: config, restart recovery, shutdown. */
void	 brain_llm_configure(const struct config *, int first);
void	 brain_llm_shutdown(void);

void
brain_configure(const struct config *c)
{
	int	 first = cfg == NULL;

	cfg = c;
	if (first) {
		question_on_event(on_question, NULL);
		agent_on_end(on_agent_end, NULL);
	}
	brain_llm_configure(c, first);
}

void
brain_shutdown(void)
{
	brain_llm_shutdown();
}

/* ---- actions ------------------------------------------------------------- */

int
brain_act_allowed(const char *by, char **cause)
{
	const char	*colon;
	char		*adapter;
	int		 ok;

	if (by == NULL || (colon = strchr(by, ':')) == NULL) {
		*cause = xstrdup("no person is acting here");
		return -1;
	}
	adapter = xstrndup(by, (size_t)(colon - by));
	ok = cfg != NULL && config_user_allowed(cfg, adapter, colon + 1);
	free(adapter);
	if (!ok) {
		*cause = xasprintf("%s is not allowed to start agents or answer"
		    " questions here", by);
		return -1;
	}
	return 0;
}

struct agent *
brain_act_find(struct conversation *c, long long n, char **cause)
{
	struct agent	*a;

	if (n <= 0 || (a = agent_find(n)) == NULL ||
	    agent_conversation(a) != c) {
		*cause = xasprintf("There is no agent #%lld in this thread.", n);
		return NULL;
	}
	return a;
}

struct agent *
brain_act_start(struct conversation *c, const char *agent_name,
    const char *repo, const char *task, const char *by, char **cause)
{
	struct agent	*a;
	char		*saved;

	if (brain_act_allowed(by, cause) != 0)
		return NULL;
	if (*task == '\0') {
		*cause = xstrdup("the task is empty");
		return NULL;
	}
	if (repo == NULL || (c->repo != NULL && strcmp(repo, c->repo) == 0))
		return agent_start(c, agent_name, task, by, cause);
	if (config_repo(cfg, repo) == NULL) {
		*cause = xasprintf("no repo named '%s' is configured", repo);
		return NULL;
	}
	/*
	 * agent_start takes the repo from the conversation and records it
	 * with the agent, so lend it the other repo for the call only.
	 */
	saved = c->repo;
	c->repo = xstrdup(repo);
	a = agent_start(c, agent_name, task, by, cause);
	free(c->repo);
	c->repo = saved;
	return a;
}

int
brain_act_followup(struct conversation *c, long long n, const char *text,
    const char *by, char **cause)
{
	struct agent	*a;

	if ((a = brain_act_find(c, n, cause)) == NULL)
		return -1;
	if (brain_act_allowed(by, cause) != 0)
		return -1;
	if (*text == '\0') {
		*cause = xasprintf("What should #%lld do? Say `#%lld TEXT`.", n,
		    n);
		return -1;
	}
	agent_followup(a, text, by);
	return 0;
}

int
brain_act_cancel(struct conversation *c, long long n, const char *by,
    char **cause)
{
	struct agent	*a;

	if ((a = brain_act_find(c, n, cause)) == NULL)
		return -1;
	if (brain_act_allowed(by, cause) != 0)
		return -1;
	if (agent_cancel(a, by) != 0) {
		*cause = xasprintf("#%lld has already ended (%s).", n,
		    agent_state_name(agent_state(a)));
		return -1;
	}
	return 0;
}

int
brain_act_answer(struct conversation *c, int64_t qid, const char *text,
    const char *by, char **cause)
{
	struct question	*q;
	char		*why = NULL;

	if (brain_act_allowed(by, cause) != 0)
		return -1;
	if ((q = question_find(qid)) != NULL &&
	    agent_conversation(q->agent) != c) {
		*cause = xasprintf("q%lld belongs to another thread.",
		    (long long)qid);
		return -1;
	}
	if (question_answer(qid, text, by, &why) != 0) {
		*cause = xasprintf("Sorry, %s.", why);
		free(why);
		return -1;
	}
	return 0;
}
