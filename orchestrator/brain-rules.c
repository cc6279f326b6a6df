/*
 * brain-rules — the command brain.  The first message of a thread is a task
 * (unless it is `help` or `status`: those are answered, `status` for the
 * whole channel); later messages are commands, answers or follow-ups:
 *
 *	status | agents		one line per agent in this thread
 *	new TASK		another agent in the same conversation
 *	#N TEXT			follow-up for agent N
 *	cancel #N		stop agent N
 *	diff #N [PATH]		agent N's full diff (inline or a file)
 *	log #N			agent N's output (inline or a file)
 *	push #N			push agent N's branch
 *	pr #N			open a pull request for it
 *	merge #N		queue it for merging into the base
 *	resolve #N		hand the merge conflicts to agent N
 *	cleanup #N		remove agent N's worktree (the branch stays)
 *	qN TEXT			answer question N
 *	help
 *	anything else		the answer when exactly one question is open
 *				(or when it replies to a question's message);
 *				with several open, the bot lists them.
 *
 * The LLM brain sends explicit commands here too (brain_rules_command), so
 * they stay instant, free and deterministic; everything acts through the
 * shared brain_act_* functions (brain.c).
 */
#include "orchestrator/brain.h"
#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/forge.h"
#include "orchestrator/merge.h"
#include "orchestrator/results.h"
#include "orchestrator/question.h"
#include "orchestrator/render.h"
#include "bot/store.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LIST	64

static void
start(struct conversation *c, const char *task, const char *by)
{
	char	*cause = NULL;

	if (*task == '\0') {
		conversation_say(c, "What should the agent do? Say `new TASK`.");
		return;
	}
	if (brain_act_start(c, c->agent, NULL, task, by, &cause) == NULL) {
		conversation_say(c, "Could not start an agent: %s", cause);
		free(cause);
	}
}

/* "#12 rest" → 12, *rest = "rest"; -1 if s does not start with #N. */
static long long
parse_ref(const char *s, const char **rest)
{
	char		*end;
	long long	 v;

	if (*s != '#' || !isdigit((unsigned char)s[1]))
		return -1;
	v = strtoll(s + 1, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (rest != NULL)
		*rest = end;
	return v;
}

/* The agent #N if it belongs to this conversation. */
static struct agent *
find_here(struct conversation *c, long long n)
{
	struct agent	*a;
	char		*cause = NULL;

	if ((a = brain_act_find(c, n, &cause)) == NULL) {
		conversation_say(c, "%s", cause);
		free(cause);
	}
	return a;
}

static void
status(struct conversation *c)
{
	struct agent	*v[MAX_LIST];
	struct question	*qs[MAX_LIST];
	const struct brain_ops *b = brain_of(c);
	struct buf	 buf = { 0 };
	char		*line;
	int		 n, i, nq;

	n = agent_list(c, v, MAX_LIST);
	if (n == 0)
		buf_adds(&buf, "No agents in this thread yet.");
	for (i = 0; i < n && i < MAX_LIST; i++) {
		line = agent_status_line(v[i]);
		buf_printf(&buf, "%s%s", i ? "\n" : "", line);
		free(line);
	}
	nq = question_open_in(c, qs, MAX_LIST);
	for (i = 0; i < nq && i < MAX_LIST; i++)
		buf_printf(&buf, "\nq%lld (#%lld) is waiting: %s",
		    (long long)qs[i]->id, (long long)agent_id(qs[i]->agent),
		    qs[i]->text);
	if (b->status != NULL && (line = b->status(c)) != NULL) {
		buf_printf(&buf, "\n%s", line);
		free(line);
	}
	conversation_say(c, "%s", buf.data);
	buf_free(&buf);
}

static void
answer(struct conversation *c, int64_t qid, const char *text, const char *by)
{
	char	*why = NULL;

	if (brain_act_answer(c, qid, text, by, &why) != 0) {
		conversation_say(c, "%s", why);
		free(why);
	}
}

/*
 * What diff, push, pr and cleanup start cannot be taken back (a push, a pull
 * request, a worktree removed) or speaks from a job after the event's
 * transaction (the diff): it starts only once that commits.  Otherwise a
 * transaction that fails to commit — retried every second while the store
 * cannot — pushed, or posted the diff, on every try.  At once outside a
 * transaction.  (log posts in the transaction; merge and resolve record
 * their own rows there.)
 */
enum rules_job_kind { JOB_DIFF, JOB_PUSH, JOB_PR, JOB_CLEANUP };

struct rules_job {
	enum rules_job_kind	 kind;
	struct agent		*a;
	char			*path;		/* diff's, or NULL */
};

static void
job_free(void *arg)
{
	struct rules_job	*j = arg;

	agent_unref(j->a);
	free(j->path);
	free(j);
}

static void
job_go(void *arg)
{
	struct rules_job	*j = arg;

	switch (j->kind) {
	case JOB_DIFF:
		results_diff(j->a, j->path);
		break;
	case JOB_PUSH:
		results_push(j->a, NULL, NULL);
		break;
	case JOB_PR:
		forge_pr(j->a);
		break;
	case JOB_CLEANUP:
		if (agent_cleanup(j->a) != 0)
			conversation_say(agent_conversation(j->a), "#%lld is"
			    " still running or has no worktree.",
			    (long long)agent_id(j->a));
		break;
	}
	job_free(j);
}

static void
job_after_commit(enum rules_job_kind kind, struct agent *a, const char *path)
{
	struct rules_job	*j;

	j = xcalloc(1, sizeof *j);
	j->kind = kind;
	j->a = a;
	agent_ref(a);
	j->path = path != NULL ? xstrdup(path) : NULL;
	store_hook(job_go, job_free, j);
}

/*
 * Results commands: diff, log, push, pr, merge, resolve — each "VERB #N"
 * (or "VERB N"); diff takes an optional path after the number.  1 if t
 * was one of them.
 */
static int
results_command(struct conversation *c, const char *t, const char *by)
{
	static const char *const verbs[] = { "diff", "log", "push", "pr",
	    "merge", "resolve", NULL };
	const char	*rest, *p;
	struct agent	*a;
	long long	 n;
	size_t		 i, len;

	for (i = 0; verbs[i] != NULL; i++) {
		len = strlen(verbs[i]);
		if (strncasecmp(t, verbs[i], len) == 0 && (t[len] == ' ' ||
		    t[len] == '\0'))
			break;
	}
	if (verbs[i] == NULL)
		return 0;
	p = t + len;
	while (*p == ' ')
		p++;
	if ((n = parse_ref(p, &rest)) < 0) {
		n = strtoll(p, (char **)&rest, 10);
		if (rest == p || n <= 0 || (*rest != ' ' && *rest != '\0')) {
			conversation_say(c, "Which one? Say `%s #N`.", verbs[i]);
			return 1;
		}
		while (*rest == ' ')
			rest++;
	}
	if ((a = find_here(c, n)) == NULL)
		return 1;
	switch (i) {
	case 0:
		job_after_commit(JOB_DIFF, a, rest);
		break;
	case 1:
		results_log(a);
		break;
	case 2:
		job_after_commit(JOB_PUSH, a, NULL);
		break;
	case 3:
		job_after_commit(JOB_PR, a, NULL);
		break;
	case 4:
		merge_enqueue(a, by);
		break;
	default:
		merge_resolve(a, by);
		break;
	}
	return 1;
}

/*
 * `status` where no thread is yet (a top-level mention): the live agents of
 * every conversation in the same channel, since that is what the person
 * can see from there.
 */
static void
status_channel(struct conversation *c)
{
	struct agent		*v[MAX_LIST];
	struct conversation	*ac;
	struct buf		 b = { 0 };
	char			*line;
	int			 n, i, k = 0;

	n = agent_list_all(v, MAX_LIST);
	for (i = 0; i < n && i < MAX_LIST; i++) {
		ac = agent_conversation(v[i]);
		if (strcmp(ac->adapter, c->adapter) != 0 ||
		    strcmp(ac->channel, c->channel) != 0)
			continue;
		line = agent_status_line(v[i]);
		buf_printf(&b, "%s%s", k++ ? "\n" : "", line);
		free(line);
	}
	if (k == 0)
		conversation_say(c, "No agents are running here.");
	else
		conversation_say(c, "%s", b.data);
	buf_free(&b);
}

int
brain_rules_command(struct conversation *c, const struct brain_msg *m)
{
	struct agent	*a;
	const char	*t = m->text, *rest;
	long long	 n;
	char		*s, *cause = NULL;

	if (strcasecmp(t, "status") == 0 || strcasecmp(t, "agents") == 0) {
		if (m->first)
			status_channel(c);
		else
			status(c);
		return 1;
	}
	if (strcasecmp(t, "help") == 0) {
		s = render_help();
		conversation_say(c, "%s", s);
		free(s);
		return 1;
	}
	if (strncasecmp(t, "new ", 4) == 0 || strcasecmp(t, "new") == 0) {
		start(c, t + (t[3] == '\0' ? 3 : 4), m->by);
		return 1;
	}
	if (strncasecmp(t, "cleanup ", 8) == 0) {
		rest = t + 8;
		while (*rest == ' ')
			rest++;
		if ((n = parse_ref(rest, NULL)) < 0 &&
		    (n = parse_uint(rest)) < 0) {
			conversation_say(c, "Which one? Say `cleanup #N`.");
			return 1;
		}
		if ((a = find_here(c, n)) != NULL)
			job_after_commit(JOB_CLEANUP, a, NULL);
		return 1;
	}
	if (results_command(c, t, m->by))
		return 1;
	if (strncasecmp(t, "cancel ", 7) == 0) {
		rest = t + 7;
		while (*rest == ' ')
			rest++;
		if ((n = parse_ref(rest, NULL)) < 0 &&
		    (n = parse_uint(rest)) < 0) {
			conversation_say(c, "Which one? Say `cancel #N`.");
			return 1;
		}
		if (brain_act_cancel(c, n, m->by, &cause) != 0) {
			conversation_say(c, "%s", cause);
			free(cause);
		} else
			conversation_say(c, "Cancelling #%lld.", n);
		return 1;
	}
	if ((n = parse_ref(t, &rest)) >= 0) {
		if (*rest == '\0') {
			if (find_here(c, n) != NULL)
				conversation_say(c, "What should #%lld do? Say"
				    " `#%lld TEXT`.", n, n);
			return 1;
		}
		if (brain_act_followup(c, n, rest, m->by, &cause) != 0) {
			conversation_say(c, "%s", cause);
			free(cause);
		}
		return 1;
	}
	/* qN TEXT: an explicit answer. */
	if ((t[0] == 'q' || t[0] == 'Q') && isdigit((unsigned char)t[1])) {
		n = strtoll(t + 1, &s, 10);
		if (*s == ' ' || *s == '\0') {
			while (*s == ' ')
				s++;
			if (*s == '\0') {
				conversation_say(c, "What is the answer to"
				    " q%lld? Say `q%lld ANSWER`.", n, n);
				return 1;
			}
			answer(c, n, s, m->by);
			return 1;
		}
	}
	/* A reply to a question's own message answers that one. */
	if (m->reply_to_key != NULL &&
	    (n = question_parse_id(m->reply_to_key)) > 0 &&
	    m->reply_to_key[0] == 'q') {
		answer(c, n, t, m->by);
		return 1;
	}
	return 0;
}

static void
rules_on_message(struct conversation *c, const struct brain_msg *m)
{
	struct question	*qs[MAX_LIST];
	int		 nq, i;

	/* "@bot help" and "@bot status" opening a thread are commands. */
	if (m->first && strcasecmp(m->text, "help") != 0 &&
	    strcasecmp(m->text, "status") != 0 &&
	    strcasecmp(m->text, "agents") != 0) {
		start(c, m->text, m->by);
		return;
	}
	if (brain_rules_command(c, m))
		return;
	nq = question_open_in(c, qs, MAX_LIST);
	if (nq == 1) {
		answer(c, qs[0]->id, m->text, m->by);
		return;
	}
	if (nq > 1) {
		struct buf b = { 0 };

		buf_printf(&b, "%d questions are open; which one do you answer?"
		    " Reply `qN ANSWER`:", nq);
		for (i = 0; i < nq && i < MAX_LIST; i++)
			buf_printf(&b, "\nq%lld (#%lld): %s",
			    (long long)qs[i]->id,
			    (long long)agent_id(qs[i]->agent), qs[i]->text);
		conversation_say(c, "%s", b.data);
		buf_free(&b);
		return;
	}
	conversation_say(c, "No question is open here. Say `help` for what I"
	    " understand, or `new TASK` to start another agent.");
}

const struct brain_ops brain_rules = {
	.name = "rules",
	.on_message = rules_on_message,
};
