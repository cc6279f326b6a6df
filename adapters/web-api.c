/*
 * web-api — what the dashboard and the agent view show: every agent of every
 * conversation and adapter, read from the store (read-only) and, for live
 * agents, from the agent runtime; and an agent's patch, made with libgit2 on
 * the threadpool so a big diff never stalls the loop.
 *
 * The store rows are the one place that knows every agent, ended ones and
 * other adapters' too; the runtime (agent.h, which loads an ended agent
 * from the store on demand) knows its times, cost, steps and output.
 */
#include "adapters/web-int.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "config/config.h"
#include "orchestrator/agent.h"
#include "orchestrator/render.h"

#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define WEB_DIFF_MAX	(1024 * 1024)	/* bytes of patch sent to a page */
#define WEB_LOG_MAX	(64 * 1024)	/* bytes of output sent to a page */

#define AGENT_SQL							\
	"SELECT a.id, a.agent_name, a.status, a.repo, a.branch, a.task,"	\
	" a.summary, a.created_at, a.ended_at, c.adapter, c.channel,"	\
	" c.thread, (SELECT platform_ref FROM messages m"		\
	"   WHERE m.key = a.card_key),"					\
	" (SELECT count(*) FROM questions q WHERE q.agent_id = a.id"	\
	"   AND q.status = 'open'), a.worktree"				\
	" FROM agents a JOIN conversations c ON c.id = a.conversation_id"

static json_t *
web_row(sqlite3_stmt *st)
{
	struct agent	*a;
	json_t		*j;
	char		*s[15], *el;
	int64_t		 id, created, ended, now = wall_s();
	double		 cost;
	int		 i;

	for (i = 0; i < 15; i++)
		s[i] = store_col_text(st, i);
	id = sqlite3_column_int64(st, 0);
	created = sqlite3_column_int64(st, 7);
	ended = sqlite3_column_int64(st, 8);
	a = agent_find(id);
	if (a != NULL && agent_started_s(a) != 0)
		el = render_elapsed(agent_elapsed_s(a));
	else	/* never started, or no longer loadable (repo unconfigured) */
		el = render_elapsed((ended > 0 ? ended : now) - created);
	j = json_pack("{s:I, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?,"
	    " s:s?, s:s?, s:I, s:s?, s:b, s:I}",
	    "id", (json_int_t)id, "name", s[1],
	    "state", a != NULL ? agent_state_name(agent_state(a)) : s[2],
	    "repo", s[3], "branch", a != NULL && agent_branch(a) != NULL ?
	    agent_branch(a) : s[4], "task", s[5], "summary", s[6],
	    "adapter", s[9], "channel", s[10], "thread", s[11],
	    "card", s[12], "questions", (json_int_t)sqlite3_column_int64(st, 13),
	    "elapsed", el, "live", a != NULL && agent_is_live(a),
	    "created", (json_int_t)created);
	if (a != NULL && (cost = agent_cost_usd(a)) >= 0)
		json_object_set_new(j, "cost_usd", json_real(cost));
	free(el);
	for (i = 0; i < 15; i++)
		free(s[i]);
	return j;
}

json_t *
web_api_agents(const struct config *cfg, int max)
{
	sqlite3_stmt	*st;
	json_t		*items = json_array();

	st = store_stmt(AGENT_SQL " ORDER BY a.id DESC LIMIT ?");
	store_bind_int(st, 1, max);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(items, web_row(st));
	sqlite3_reset(st);
	return items;
}

json_t *
web_api_agent(struct web *w, const struct config *cfg, int64_t id)
{
	sqlite3_stmt	*st;
	struct agent	*a;
	json_t		*j = NULL, *log, *qs;
	const char	*card, *text;
	char		*line;

	st = store_stmt(AGENT_SQL " WHERE a.id = ?");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = web_row(st);
	sqlite3_reset(st);
	if (j == NULL)
		return NULL;
	json_object_set_new(j, "type", json_string("agent"));

	card = json_string_value(json_object_get(j, "card"));
	if (strcmp(json_string_value(json_object_get(j, "adapter")), "web")
	    == 0 && card != NULL) {
		if ((log = web_card_log(w, card)) != NULL)
			json_object_set(j, "steps", log);
		if ((text = web_card_text(w, card)) != NULL)
			json_object_set_new(j, "card_text", json_string(text));
	}
	if ((a = agent_find(id)) != NULL) {
		if (agent_is_live(a)) {
			line = agent_status_line(a);
			json_object_set_new(j, "status_line",
			    json_string(line));
			free(line);
		}
		if (json_object_get(j, "steps") == NULL) {
			const char	*sv[AGENT_STEPS];
			json_t		*steps = json_array();
			int		 k, ns = agent_steps(a, sv, AGENT_STEPS);

			for (k = 0; k < ns; k++)
				json_array_append_new(steps,
				    json_string(sv[k]));
			json_object_set_new(j, "steps", steps);
		}
		/* Its output as a person reads it, restarts included. */
		line = agent_output_tail(a, WEB_LOG_MAX);
		json_object_set_new(j, "log", json_string(line));
		free(line);
	}

	qs = json_array();
	st = store_stmt("SELECT id, text, status, answer, answered_by FROM"
	    " questions WHERE agent_id = ? ORDER BY id");
	store_bind_int(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char *t = store_col_text(st, 1), *s = store_col_text(st, 2);
		char *an = store_col_text(st, 3), *by = store_col_text(st, 4);

		json_array_append_new(qs, json_pack("{s:I, s:s?, s:s?, s:s?,"
		    " s:s?}", "id", (json_int_t)sqlite3_column_int64(st, 0),
		    "text", t, "status", s, "answer", an, "answered_by", by));
		free(t);
		free(s);
		free(an);
		free(by);
	}
	sqlite3_reset(st);
	json_object_set_new(j, "question_list", qs);
	return j;
}

/* ---- diff on the threadpool ------------------------------------------------ */

struct web_diff_job {
	uv_work_t	 work;
	int64_t		 id;
	char		*repo_path;	/* copies: the loop may change its own */
	char		*base;
	char		*branch;
	char		*worktree;	/* NULL: diff the branch */
	char		*patch;
	char		*error;
	int		 truncated;
	void		(*done)(json_t *, void *);
	void		*arg;
};

static int
web_diff_fail(struct web_diff_job *j, const char *what)
{
	const git_error	*e = git_error_last();

	j->error = xasprintf("%s: %s", what, e != NULL && e->message != NULL ?
	    e->message : "unknown error");
	return -1;
}

/* The tree of merge-base(base, tip): what the agent started from. */
static int
web_base_tree(struct web_diff_job *j, git_repository *repo, const char *tip,
    git_tree **out)
{
	git_object	*b = NULL, *t = NULL;
	git_commit	*c = NULL;
	git_oid		 mb;
	int		 rc = -1;

	if (git_revparse_single(&b, repo, j->base) < 0 ||
	    git_revparse_single(&t, repo, tip) < 0) {
		web_diff_fail(j, "cannot resolve the branches");
		goto out;
	}
	if (git_merge_base(&mb, repo, git_object_id(b), git_object_id(t)) < 0)
		mb = *git_object_id(b);
	if (git_commit_lookup(&c, repo, &mb) < 0 ||
	    git_commit_tree(out, c) < 0) {
		web_diff_fail(j, "cannot read the base");
		goto out;
	}
	rc = 0;
out:
	git_commit_free(c);
	git_object_free(t);
	git_object_free(b);
	return rc;
}

static void
web_diff_work(uv_work_t *w)
{
	struct web_diff_job	*j = w->data;
	git_repository		*repo = NULL;
	git_tree		*old = NULL, *new = NULL;
	git_object		*tip = NULL;
	git_diff		*diff = NULL;
	git_diff_options	 opts;
	git_buf			 buf = GIT_BUF_INIT;

	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	if (j->worktree != NULL) {
		/* A running agent's work in progress, uncommitted included. */
		if (git_repository_open_ext(&repo, j->worktree,
		    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
			web_diff_fail(j, "cannot open the worktree");
			goto out;
		}
		if (web_base_tree(j, repo, "HEAD", &old) < 0)
			goto out;
		opts.flags = GIT_DIFF_INCLUDE_UNTRACKED |
		    GIT_DIFF_RECURSE_UNTRACKED_DIRS | GIT_DIFF_SHOW_UNTRACKED_CONTENT;
		if (git_diff_tree_to_workdir_with_index(&diff, repo, old,
		    &opts) < 0) {
			web_diff_fail(j, "cannot diff the worktree");
			goto out;
		}
	} else {
		if (git_repository_open_ext(&repo, j->repo_path,
		    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
			web_diff_fail(j, "cannot open the repository");
			goto out;
		}
		if (web_base_tree(j, repo, j->branch, &old) < 0)
			goto out;
		if (git_revparse_single(&tip, repo, j->branch) < 0 ||
		    git_object_peel((git_object **)&new, tip,
		    GIT_OBJECT_TREE) < 0 ||
		    git_diff_tree_to_tree(&diff, repo, old, new, &opts) < 0) {
			web_diff_fail(j, "cannot diff the branch");
			goto out;
		}
	}
	if (git_diff_to_buf(&buf, diff, GIT_DIFF_FORMAT_PATCH) < 0) {
		web_diff_fail(j, "cannot format the diff");
		goto out;
	}
	if (buf.size > WEB_DIFF_MAX) {
		j->truncated = 1;
		j->patch = xstrndup(buf.ptr, WEB_DIFF_MAX);
		utf8_truncate(j->patch, WEB_DIFF_MAX);
	} else
		j->patch = xstrdup(buf.ptr != NULL ? buf.ptr : "");
out:
	git_buf_dispose(&buf);
	git_diff_free(diff);
	git_tree_free(new);
	git_tree_free(old);
	git_object_free(tip);
	git_repository_free(repo);
}

static void
web_diff_after(uv_work_t *w, int status)
{
	struct web_diff_job	*j = w->data;
	json_t			*r;

	r = json_pack("{s:s, s:I, s:s?, s:s?, s:b, s:s?}", "type", "diff",
	    "id", (json_int_t)j->id, "patch", j->patch, "error",
	    status != 0 ? uv_strerror(status) : j->error, "truncated",
	    j->truncated, "branch", j->branch);
	j->done(r, j->arg);
	free(j->repo_path);
	free(j->base);
	free(j->branch);
	free(j->worktree);
	free(j->patch);
	free(j->error);
	free(j);
}

static void
web_diff_now(void *arg)
{
	web_diff_after(arg, 0);
}

void
web_api_diff(const struct config *cfg, int64_t id,
    void (*done)(json_t *, void *), void *arg)
{
	struct web_diff_job	*j;
	const struct cfg_repo	*repo;
	sqlite3_stmt		*st;
	struct agent		*a;
	struct stat		 sb;
	char			*name = NULL;

	j = xcalloc(1, sizeof *j);
	j->id = id;
	j->done = done;
	j->arg = arg;
	j->work.data = j;
	st = store_stmt("SELECT repo, branch, worktree FROM agents"
	    " WHERE id = ?");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		name = store_col_text(st, 0);
		j->branch = store_col_text(st, 1);
		j->worktree = store_col_text(st, 2);
	}
	sqlite3_reset(st);
	if ((a = agent_find(id)) != NULL && agent_branch(a) != NULL) {
		free(j->branch);
		j->branch = xstrdup(agent_branch(a));
	}
	/* Work in progress while it runs; the branch once it has ended. */
	if (j->worktree != NULL && (a == NULL || !agent_is_live(a) ||
	    stat(j->worktree, &sb) != 0)) {
		free(j->worktree);
		j->worktree = NULL;
	}
	repo = name != NULL ? config_repo(cfg, name) : NULL;
	free(name);
	if (repo == NULL || j->branch == NULL) {
		j->error = xstrdup(repo == NULL ? "no such agent or repository"
		    : "no branch yet");
		loop_defer(web_diff_now, j);
		return;
	}
	j->repo_path = xstrdup(repo->path);
	j->base = xstrdup(repo->base);
	if (uv_queue_work(loop_uv(), &j->work, web_diff_work,
	    web_diff_after) != 0) {
		j->error = xstrdup("cannot queue the diff");
		loop_defer(web_diff_now, j);
	}
}
