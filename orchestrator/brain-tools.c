#include "orchestrator/brain-tools.h"
#include "orchestrator/agent.h"
#include "orchestrator/brain.h"
#include "orchestrator/conversation.h"
#include "orchestrator/question.h"
#include "orchestrator/render.h"
#include "orchestrator/worktree.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST	64

/* ---- schemas ---------------------------------------------------------- */

static json_t *
agent_param(void)
{
	return json_pack("{s:s, s:s, s:i}", "type", "integer", "description",
	    "The agent's number, as in #3.", "minimum", 1);
}

json_t *
brain_tools(void)
{
	json_t	*t = json_array();

	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{"
	    "s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}}",
	    "name", "start_agent",
	    "description", "Start a coding agent on a task, in its own git"
	    " worktree and branch.  The task must be self-contained: the agent"
	    " sees nothing of this conversation.  Returns its number and"
	    " branch.",
	    "schema", "type", "object", "properties",
	    "task", "type", "string", "description", "The complete task.",
	    "agent", "type", "string", "description", "Agent kind; default:"
	    " this conversation's.",
	    "repo", "type", "string", "description", "Repository; default:"
	    " this conversation's.",
	    "required", "task", "additionalProperties", 0));
	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{s:o,"
	    " s:{s:s, s:s}}, s:[s, s], s:b}}",
	    "name", "follow_up",
	    "description", "Send a follow-up message to an agent of this"
	    " conversation (passed on while it runs, or a new turn after it"
	    " ended).",
	    "schema", "type", "object", "properties",
	    "agent", agent_param(),
	    "text", "type", "string", "description", "The message.",
	    "required", "agent", "text", "additionalProperties", 0));
	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{s:o},"
	    " s:[s], s:b}}",
	    "name", "cancel_agent",
	    "description", "Stop an agent of this conversation.  Its branch"
	    " keeps the partial work.",
	    "schema", "type", "object", "properties", "agent", agent_param(),
	    "required", "agent", "additionalProperties", 0));
	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{"
	    "s:{s:s, s:s}, s:{s:s, s:s}}, s:[s, s], s:b}}",
	    "name", "answer_question",
	    "description", "Answer an agent's open question with what the"
	    " person said.  Only when the person gave the answer.",
	    "schema", "type", "object", "properties",
	    "question", "type", "string", "description", "The question's id,"
	    " e.g. \"q5\".",
	    "answer", "type", "string", "description", "The answer (one of"
	    " its choices, when it has them and the person chose one).",
	    "required", "question", "answer", "additionalProperties", 0));
	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{}, s:b}}",
	    "name", "list_agents",
	    "description", "The agents of this conversation: state, branch,"
	    " elapsed time, last steps and open questions.",
	    "schema", "type", "object", "properties",
	    "additionalProperties", 0));
	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{s:o},"
	    " s:[s], s:b}}",
	    "name", "agent_result",
	    "description", "An agent's result: summary, exit status, diff"
	    " stat and output tail.",
	    "schema", "type", "object", "properties", "agent", agent_param(),
	    "required", "agent", "additionalProperties", 0));
	json_array_append_new(t, json_pack("{s:s, s:s, s:{s:s, s:{s:o,"
	    " s:{s:s, s:s}}, s:[s], s:b}}",
	    "name", "agent_diff",
	    "description", "The unified diff of an agent's branch against its"
	    " base (bounded).",
	    "schema", "type", "object", "properties",
	    "agent", agent_param(),
	    "path", "type", "string", "description", "Only this file or"
	    " directory.",
	    "required", "agent", "additionalProperties", 0));
	return t;
}

/* ---- helpers ---------------------------------------------------------- */

static json_t *
tool_error(int *is_error, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_t *
tool_error(int *is_error, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	json_t	*j;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	*is_error = 1;
	j = json_pack("{s:s}", "error", s);
	free(s);
	return j;
}

/* "agent" as an integer (models sometimes send "3" or "#3"). */
static long long
agent_arg(json_t *input)
{
	json_t		*v = json_object_get(input, "agent");
	const char	*s;

	if (json_is_integer(v))
		return json_integer_value(v);
	if ((s = json_string_value(v)) != NULL) {
		if (*s == '#')
			s++;
		return parse_uint(s);
	}
	return -1;
}

static const char *
str_arg(json_t *input, const char *key)
{
	return json_string_value(json_object_get(input, key));
}

static int
agent_db(int64_t id, char **repo, long long *exit_code)
{
	sqlite3_stmt	*s;
	int		 rc = -1;

	*repo = NULL;
	*exit_code = 0;
	s = store_stmt("SELECT repo, exit_code FROM agents WHERE id = ?");
	store_bind_int(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*repo = store_col_text(s, 0);
		*exit_code = sqlite3_column_int64(s, 1);
		rc = 0;
	}
	sqlite3_reset(s);
	return rc;
}

static json_t *
questions_of(struct conversation *c, const struct agent *a)
{
	struct question	*qs[MAX_LIST];
	json_t		*out = json_array(), *ch;
	char		 id[32];
	int		 n, i, k;

	n = question_open_in(c, qs, MAX_LIST);
	for (i = 0; i < n && i < MAX_LIST; i++) {
		if (a != NULL && qs[i]->agent != a)
			continue;
		ch = json_array();
		for (k = 0; qs[i]->choices[k] != NULL; k++)
			json_array_append_new(ch, json_string(
			    qs[i]->choices[k]));
		snprintf(id, sizeof id, "q%lld", (long long)qs[i]->id);
		json_array_append_new(out, json_pack("{s:s, s:I, s:s, s:o}",
		    "id", id, "agent", (json_int_t)agent_id(qs[i]->agent),
		    "text", qs[i]->text, "choices", ch));
	}
	return out;
}

/* ---- the tools -------------------------------------------------------- */

static json_t *
t_start(struct conversation *c, const char *by, json_t *in, int *err)
{
	const char	*task = str_arg(in, "task"), *kind = str_arg(in, "agent");
	const char	*repo = str_arg(in, "repo");
	struct agent	*a;
	char		*cause = NULL, slug[64], *branch;
	json_t		*j;

	if (task == NULL)
		return tool_error(err, "task (a string) is required");
	a = brain_act_start(c, kind != NULL ? kind : c->agent, repo, task, by,
	    &cause);
	if (a == NULL) {
		j = tool_error(err, "could not start an agent: %s", cause);
		free(cause);
		return j;
	}
	/* The branch is made on the threadpool; its name is known now. */
	if (agent_branch(a) != NULL)
		branch = xstrdup(agent_branch(a));
	else {
		worktree_slug(task, slug, sizeof slug);
		branch = worktree_branch_name(agent_id(a), slug);
	}
	j = json_pack("{s:I, s:s, s:s, s:s}", "agent",
	    (json_int_t)agent_id(a), "branch", branch, "kind", agent_name(a),
	    "state", agent_state_name(agent_state(a)));
	free(branch);
	return j;
}

static json_t *
t_followup(struct conversation *c, const char *by, json_t *in, int *err)
{
	const char	*text = str_arg(in, "text");
	long long	 n = agent_arg(in);
	char		*cause = NULL;
	json_t		*j;

	if (text == NULL || n <= 0)
		return tool_error(err, "agent (an integer) and text are"
		    " required");
	if (brain_act_followup(c, n, text, by, &cause) != 0) {
		j = tool_error(err, "%s", cause);
		free(cause);
		return j;
	}
	return json_pack("{s:b, s:I}", "sent", 1, "agent", (json_int_t)n);
}

static json_t *
t_cancel(struct conversation *c, const char *by, json_t *in, int *err)
{
	long long	 n = agent_arg(in);
	char		*cause = NULL;
	json_t		*j;

	if (n <= 0)
		return tool_error(err, "agent (an integer) is required");
	if (brain_act_cancel(c, n, by, &cause) != 0) {
		j = tool_error(err, "%s", cause);
		free(cause);
		return j;
	}
	return json_pack("{s:b, s:I}", "cancelling", 1, "agent",
	    (json_int_t)n);
}

static json_t *
t_answer(struct conversation *c, const char *by, json_t *in, int *err)
{
	const char	*qs = str_arg(in, "question"), *ans = str_arg(in,
			    "answer");
	int64_t		 qid;
	char		*cause = NULL;
	json_t		*j;

	if (qs == NULL || ans == NULL || (qid = question_parse_id(qs)) <= 0)
		return tool_error(err, "question (\"q5\") and answer are"
		    " required");
	if (brain_act_answer(c, qid, ans, by, &cause) != 0) {
		j = tool_error(err, "%s", cause);
		free(cause);
		return j;
	}
	return json_pack("{s:b, s:s, s:s}", "answered", 1, "question", qs,
	    "answer", ans);
}

static json_t *
t_list(struct conversation *c)
{
	struct agent	*v[MAX_LIST];
	json_t		*out = json_array(), *steps;
	const char	*sv[AGENT_STEPS];
	char		*elapsed;
	int		 n, i, k, ns;

	n = agent_list(c, v, MAX_LIST);
	for (i = 0; i < n && i < MAX_LIST; i++) {
		elapsed = render_elapsed(agent_elapsed_s(v[i]));
		steps = json_array();
		ns = agent_steps(v[i], sv, AGENT_STEPS);
		for (k = 0; k < ns; k++)
			json_array_append_new(steps, json_string(sv[k]));
		json_array_append_new(out, json_pack("{s:I, s:s, s:s, s:s?,"
		    " s:s, s:s, s:o, s:o}",
		    "id", (json_int_t)agent_id(v[i]), "name", agent_name(v[i]),
		    "state", agent_state_name(agent_state(v[i])),
		    "branch", agent_branch(v[i]), "task", agent_task(v[i]),
		    "elapsed", elapsed, "last_steps", steps,
		    "open_questions", questions_of(c, v[i])));
		free(elapsed);
	}
	return json_pack("{s:o}", "agents", out);
}

static json_t *
t_result(struct conversation *c, json_t *in, int *err)
{
	const struct cfg_repo	*cr;
	struct worktree_stat	 ws = { 0 };
	struct agent		*a;
	long long		 n = agent_arg(in), exit_code;
	char			*repo = NULL, *cause = NULL, *t;
	int			 code, sig;
	double			 usd;
	json_t			*j;

	if ((a = brain_act_find(c, n, &cause)) == NULL) {
		j = tool_error(err, "%s", cause);
		free(cause);
		return j;
	}
	agent_db(agent_id(a), &repo, &exit_code);
	j = json_pack("{s:I, s:s, s:s?, s:s?, s:b}", "agent", (json_int_t)n,
	    "state", agent_state_name(agent_state(a)), "branch",
	    agent_branch(a), "summary", agent_summary(a), "running",
	    agent_is_live(a));
	if (agent_exit_status(a, &code, &sig) == 0) {
		json_object_set_new(j, "exit_code", json_integer(code));
		if (sig != 0)
			json_object_set_new(j, "signal", json_integer(sig));
	}
	if ((usd = agent_cost_usd(a)) >= 0)
		json_object_set_new(j, "cost_usd", json_real(usd));
	cr = config_repo(brain_config(), repo != NULL ? repo : c->repo);
	if (agent_branch(a) != NULL && cr != NULL) {
		if (worktree_diffstat(cr->path, cr->base, agent_branch(a), 30,
		    &ws, &cause) == 0) {
			json_object_set_new(j, "diff_stat", json_string(ws.text));
			free(ws.text);
		} else {
			json_object_set_new(j, "diff_stat_error",
			    json_string(cause));
			free(cause);
		}
	}
	/* The ring, or after a restart the last turn's log (agent_load). */
	t = agent_output_tail(a, BRAIN_TAIL_MAX);
	if (*t != '\0')
		json_object_set_new(j, "output_tail", json_string(t));
	free(t);
	free(repo);
	return j;
}

static json_t *
t_diff(struct conversation *c, json_t *in, int *err)
{
	const struct cfg_repo	*cr;
	struct agent		*a;
	long long		 n = agent_arg(in);
	char			*repo = NULL, *cause = NULL, *patch = NULL;
	long long		 exit_code;
	int			 truncated = 0;
	size_t			 len = 0, nfiles = 0;
	json_t			*j;

	if ((a = brain_act_find(c, n, &cause)) == NULL) {
		j = tool_error(err, "%s", cause);
		free(cause);
		return j;
	}
	if (agent_branch(a) == NULL)
		return tool_error(err, "#%lld has no branch yet", n);
	agent_db(agent_id(a), &repo, &exit_code);
	cr = config_repo(brain_config(), repo != NULL ? repo : c->repo);
	free(repo);
	if (cr == NULL)
		return tool_error(err, "the repo of #%lld is no longer"
		    " configured", n);
	/*
	 * On the loop, like `diff #N`: a tree-to-tree diff reads only what
	 * changed, and the output is bounded.  Committed changes only; the
	 * agent's leftovers are committed when its turn ends.
	 */
	if (worktree_diff(cr->path, cr->base, agent_branch(a),
	    str_arg(in, "path"), &patch, &len, &nfiles, &cause) != 0) {
		j = tool_error(err, "no diff: %s", cause);
		free(cause);
		return j;
	}
	/* Bounded for the prompt, cut at a line end. */
	if ((truncated = len > BRAIN_DIFF_MAX)) {
		char *nl;

		patch[BRAIN_DIFF_MAX] = '\0';
		if ((nl = strrchr(patch, '\n')) != NULL)
			nl[1] = '\0';
	}
	j = json_pack("{s:I, s:s, s:s, s:s, s:b}", "agent", (json_int_t)n,
	    "branch", agent_branch(a), "base", cr->base, "diff", patch,
	    "truncated", truncated);
	free(patch);
	return j;
}

json_t *
brain_tools_run(struct conversation *c, const char *by, const char *name,
    json_t *input, int *is_error)
{
	char	*cause = NULL;
	json_t	*j;
	int	 acts;

	*is_error = 0;
	acts = strcmp(name, "start_agent") == 0 ||
	    strcmp(name, "follow_up") == 0 ||
	    strcmp(name, "cancel_agent") == 0 ||
	    strcmp(name, "answer_question") == 0;
	if (!json_is_object(input) ||
	    json_object_get(input, "__invalid_json__") != NULL)
		return tool_error(is_error, "the arguments are not a JSON"
		    " object");
	if (acts && by == NULL)
		return tool_error(is_error, "no person asked for this: this"
		    " turn was started by an agent event, so it may only read"
		    " and speak.  Tell the person and let them decide.");
	/* Every call acts for the person, as their command would. */
	if (by != NULL && brain_act_allowed(by, &cause) != 0) {
		j = tool_error(is_error, "%s", cause);
		free(cause);
		return j;
	}
	if (strcmp(name, "start_agent") == 0)
		return t_start(c, by, input, is_error);
	if (strcmp(name, "follow_up") == 0)
		return t_followup(c, by, input, is_error);
	if (strcmp(name, "cancel_agent") == 0)
		return t_cancel(c, by, input, is_error);
	if (strcmp(name, "answer_question") == 0)
		return t_answer(c, by, input, is_error);
	if (strcmp(name, "list_agents") == 0)
		return t_list(c);
	if (strcmp(name, "agent_result") == 0)
		return t_result(c, input, is_error);
	if (strcmp(name, "agent_diff") == 0)
		return t_diff(c, input, is_error);
	return tool_error(is_error, "there is no tool named %s", name);
}
