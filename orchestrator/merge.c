#include "orchestrator/merge.h"
#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/gitremote.h"
#include "orchestrator/outbox.h"
#include "orchestrator/results.h"
#include "orchestrator/worktree.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MERGE_TAIL	3000	/* bytes of a failed check's output shown */

/* One merge in progress (at most one per repo). */
struct mjob {
	int64_t		 id;
	int64_t		 agent_id;
	char		*repo, *repo_path, *base, *branch, *remote;
	char		*base_oid, *merged_oid;
	struct gitremote_creds creds;
	int		 push_base;
	/* threadpool */
	uv_work_t	 work;
	int		 step;		/* 1 merge, 2 scratch, 3 land, 4 push,
					 * 5 scratch removal */
	int		 rc;
	char		*cause, *warning, *scratch;
	struct worktree_merge m;
	/* the check */
	uv_process_t	*proc;
	uv_pipe_t	*out, *err;
	uv_timer_t	*timer;
	int		 handles;
	int		 timed_out;
	int64_t		 exit_status;
	int		 term_signal;
	struct buf	 tail;
	int		 check_ok;
	struct mjob	*next;
};

static struct mjob	*jobs;
static int		 stopping;

static void	kick(const char *repo);
static void	job_queue(struct mjob *, int step);

static void
set_status(int64_t id, const char *status, const char *detail)
{
	sqlite3_stmt	*st;

	st = store_stmt("UPDATE merges SET status = ?, detail = coalesce(?,"
	    " detail), updated_at = ? WHERE id = ?");
	store_bind_text(st, 1, status);
	store_bind_text(st, 2, detail);
	store_bind_int(st, 3, wall_s());
	store_bind_int(st, 4, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("merge: update of %lld failed: %s", (long long)id,
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

static void
say(int64_t agent_id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(int64_t agent_id, const char *fmt, ...)
{
	struct agent	*a;
	va_list		 ap;
	char		*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	if ((a = agent_find(agent_id)) != NULL)
		conversation_say(agent_conversation(a), "%s", s);
	else
		log_info("merge: #%lld: %s", (long long)agent_id, s);
	free(s);
}

static const char *
ordinal(long long n)
{
	static char	 buf[32];
	const char	*sfx = "th";

	if (n % 100 < 11 || n % 100 > 13)
		sfx = n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ?
		    "rd" : "th";
	snprintf(buf, sizeof buf, "%lld%s", n, sfx);
	return buf;
}

static int
repo_busy(const char *repo)
{
	struct mjob	*j;

	for (j = jobs; j != NULL; j = j->next)
		if (strcmp(j->repo, repo) == 0)
			return 1;
	return 0;
}

static void
job_free(struct mjob *j)
{
	struct mjob	**pp;

	for (pp = &jobs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	gitremote_creds_free(&j->creds);
	worktree_merge_free(&j->m);
	buf_free(&j->tail);
	free(j->repo); free(j->repo_path); free(j->base); free(j->branch);
	free(j->remote); free(j->base_oid); free(j->merged_oid);
	free(j->cause); free(j->warning); free(j->scratch);
	free(j);
}

/* The job is over (any outcome): next in its repo. */
static void
job_end(struct mjob *j)
{
	char	*repo = xstrdup(j->repo);

	job_free(j);
	if (!stopping)
		kick(repo);
	free(repo);
}

/* ---- the check ----------------------------------------------------------- */

static void
check_closed(uv_handle_t *h)
{
	struct mjob	*j = h->data;

	free(h);
	if (--j->handles > 0)
		return;
	if (stopping) {
		job_free(j);
		return;
	}
	j->check_ok = !j->timed_out && j->exit_status == 0 &&
	    j->term_signal == 0;
	/* The scratch worktree goes either way; the verdict follows. */
	job_queue(j, 5);
}

static void
check_exit(uv_process_t *p, int64_t status, int sig)
{
	struct mjob	*j = p->data;

	j->exit_status = status;
	j->term_signal = sig;
	uv_timer_stop(j->timer);
	uv_close((uv_handle_t *)p, check_closed);
	uv_close((uv_handle_t *)j->timer, check_closed);
}

static void
check_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	b->base = xmalloc(65536);
	b->len = 65536;
}

static void
check_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct mjob	*j = s->data;
	size_t		 keep;

	if (n > 0) {
		buf_add(&j->tail, b->base, (size_t)n);
		/* Keep about twice the tail; cut the front now and then. */
		if (j->tail.len > 2 * MERGE_TAIL) {
			keep = MERGE_TAIL;
			memmove(j->tail.data, j->tail.data + j->tail.len - keep,
			    keep);
			j->tail.len = keep;
			j->tail.data[keep] = '\0';
		}
	}
	free(b->base);
	if (n < 0)
		uv_close((uv_handle_t *)s, check_closed);
}

static void
check_timeout(uv_timer_t *t)
{
	struct mjob	*j = t->data;

	j->timed_out = 1;
	if (j->proc != NULL && j->proc->pid > 0)
		kill(-j->proc->pid, SIGKILL);
}

/* Only what a build needs: never the bridge's environment (secrets). */
static char **
check_env(void)
{
	static const char *const keep[] = { "PATH", "HOME", "LANG", "LC_ALL",
	    "TMPDIR", "USER", "SHELL", "TERM", NULL };
	char		**env;
	const char	*v;
	size_t		 i, k = 0;

	env = xcalloc(nitems(keep) + 2, sizeof *env);
	for (i = 0; keep[i] != NULL; i++)
		if ((v = getenv(keep[i])) != NULL)
			env[k++] = xasprintf("%s=%s", keep[i], v);
	env[k] = NULL;
	return env;
}

static void
check_start(struct mjob *j, const struct cfg_repo *cr)
{
	uv_process_options_t	 o = { 0 };
	uv_stdio_container_t	 io[3];
	char			**env;
	int			 r;

	j->proc = xcalloc(1, sizeof *j->proc);
	j->out = xcalloc(1, sizeof *j->out);
	j->err = xcalloc(1, sizeof *j->err);
	j->timer = xcalloc(1, sizeof *j->timer);
	uv_pipe_init(loop_uv(), j->out, 0);
	uv_pipe_init(loop_uv(), j->err, 0);
	uv_timer_init(loop_uv(), j->timer);
	j->proc->data = j->out->data = j->err->data = j->timer->data = j;
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)j->out;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)j->err;
	env = check_env();
	o.file = cr->check[0];
	o.args = cr->check;
	o.env = env;
	o.cwd = j->scratch;
	o.flags = UV_PROCESS_DETACHED;	/* its own group: a timeout kills all */
	o.stdio_count = 3;
	o.stdio = io;
	o.exit_cb = check_exit;
	j->handles = 4;
	r = uv_spawn(loop_uv(), j->proc, &o);
	{
		size_t i;
		for (i = 0; env[i] != NULL; i++)
			free(env[i]);
		free(env);
	}
	if (r != 0) {
		buf_printf(&j->tail, "cannot start %s: %s\n", cr->check[0],
		    uv_strerror(r));
		j->exit_status = 127;
		uv_close((uv_handle_t *)j->proc, check_closed);
		uv_close((uv_handle_t *)j->out, check_closed);
		uv_close((uv_handle_t *)j->err, check_closed);
		uv_close((uv_handle_t *)j->timer, check_closed);
		return;
	}
	log_info("merge %lld: check %s (pid %d) in %s", (long long)j->id,
	    cr->check[0], j->proc->pid, j->scratch);
	uv_read_start((uv_stream_t *)j->out, check_alloc, check_read);
	uv_read_start((uv_stream_t *)j->err, check_alloc, check_read);
	uv_timer_start(j->timer, check_timeout,
	    (uint64_t)cr->check_timeout * 1000, 0);
}

/* ---- steps on the threadpool --------------------------------------------- */

static void
job_work(uv_work_t *w)
{
	struct mjob	*j = w->data;
	char		*msg;

	switch (j->step) {
	case 1:
		msg = xasprintf("Merge branch '%s' (switchboard #%lld)",
		    j->branch, (long long)j->agent_id);
		j->rc = worktree_merge_prepare(j->repo_path, j->base, j->branch,
		    results_config()->git.name, results_config()->git.email,
		    msg, &j->m, &j->cause);
		free(msg);
		break;
	case 2:
		j->rc = worktree_scratch_add(j->repo_path,
		    results_config()->state_dir, j->id, j->merged_oid,
		    &j->scratch, &j->cause);
		break;
	case 3:
		j->rc = worktree_fast_forward(j->repo_path, j->base,
		    j->base_oid, j->merged_oid, &j->warning, &j->cause);
		break;
	case 4:
		j->rc = gitremote_push(j->repo_path, j->remote, j->base,
		    j->base, 0, &j->creds, &j->cause);
		break;
	case 5:
		j->rc = worktree_scratch_remove(j->repo_path, j->id, &j->cause);
		break;
	}
}

static void	job_after(uv_work_t *, int);

static void
job_queue(struct mjob *j, int step)
{
	j->step = step;
	free(j->cause);
	j->cause = NULL;
	uv_queue_work(loop_uv(), &j->work, job_work, job_after);
}

static void
land(struct mjob *j)
{
	set_status(j->id, "landing", NULL);
	job_queue(j, 3);
}

static void
after_merge(struct mjob *j)
{
	const struct config	*cfg = results_config();
	const struct cfg_repo	*cr = config_repo(cfg, j->repo);
	struct buf		 b = { 0 };
	sqlite3_stmt		*st;
	size_t			 i;

	if (j->rc != 0) {
		set_status(j->id, "failed", j->cause);
		say(j->agent_id, "#%lld: merge failed: %s",
		    (long long)j->agent_id, j->cause);
		job_end(j);
		return;
	}
	if (j->m.up_to_date) {
		set_status(j->id, "done", "up to date");
		say(j->agent_id, "#%lld: `%s` is already in %s; nothing to"
		    " merge.", (long long)j->agent_id, j->branch, j->base);
		job_end(j);
		return;
	}
	if (j->m.nconflicts > 0) {
		for (i = 0; i < j->m.nconflicts; i++)
			buf_printf(&b, "%s%s", i ? ", " : "", j->m.conflicts[i]);
		set_status(j->id, "conflict", b.data);
		say(j->agent_id, "⚠️ #%lld conflicts with %s in: %s\nSay"
		    " `resolve #%lld` to hand them to #%lld as a follow-up"
		    " (\"resolve the conflicts with %s in these files\"), then"
		    " `merge #%lld` again.", (long long)j->agent_id, j->base,
		    b.data, (long long)j->agent_id, (long long)j->agent_id,
		    j->base, (long long)j->agent_id);
		buf_free(&b);
		job_end(j);
		return;
	}
	free(j->base_oid);
	free(j->merged_oid);
	j->base_oid = xstrdup(j->m.base_oid);
	j->merged_oid = xstrdup(j->m.merged_oid);
	st = store_stmt("UPDATE merges SET base_oid = ?, merged_oid = ?,"
	    " updated_at = ? WHERE id = ?");
	store_bind_text(st, 1, j->base_oid);
	store_bind_text(st, 2, j->merged_oid);
	store_bind_int(st, 3, wall_s());
	store_bind_int(st, 4, j->id);
	sqlite3_step(st);
	sqlite3_reset(st);
	if (cr != NULL && cr->check != NULL) {
		set_status(j->id, "checking", NULL);
		say(j->agent_id, "#%lld: merged onto %s cleanly; running the"
		    " check (%s…).", (long long)j->agent_id, j->base,
		    cr->check[0]);
		job_queue(j, 2);
		return;
	}
	/* No check: still clear what an interrupted attempt may have left. */
	j->check_ok = 1;
	job_queue(j, 5);
}

static void
job_after(uv_work_t *w, int status)
{
	struct mjob		*j = w->data;
	const struct cfg_repo	*cr;
	char			*tail;

	if (stopping) {
		job_free(j);
		return;
	}
	switch (j->step) {
	case 1:
		after_merge(j);
		return;
	case 2:
		cr = config_repo(results_config(), j->repo);
		if (j->rc != 0 || cr == NULL || cr->check == NULL) {
			set_status(j->id, "failed", j->cause);
			say(j->agent_id, "#%lld: merge failed: no scratch"
			    " worktree for the check: %s",
			    (long long)j->agent_id, j->cause != NULL ?
			    j->cause : "the check is no longer configured");
			job_end(j);
			return;
		}
		check_start(j, cr);
		return;
	case 5:
		if (j->rc != 0)
			log_warnx("merge %lld: scratch worktree: %s",
			    (long long)j->id, j->cause);
		if (j->check_ok) {
			land(j);
			return;
		}
		tail = xstrdup(j->tail.data != NULL ? j->tail.data : "");
		if (strlen(tail) > MERGE_TAIL)
			memmove(tail, tail + strlen(tail) - MERGE_TAIL,
			    MERGE_TAIL + 1);
		utf8_truncate(tail, MERGE_TAIL);
		set_status(j->id, "failed", j->timed_out ? "check timed out" :
		    "check failed");
		say(j->agent_id, "❌ #%lld: the check %s; %s did not move.\n"
		    "check output tail:\n```\n%s\n```", (long long)j->agent_id,
		    j->timed_out ? "timed out" : j->term_signal ? "was killed" :
		    "failed", j->base, tail);
		free(tail);
		job_end(j);
		return;
	case 3:
		if (j->rc == WORKTREE_EMOVED) {
			say(j->agent_id, "#%lld: %s moved while the merge ran;"
			    " merging again.", (long long)j->agent_id, j->base);
			set_status(j->id, "merging", NULL);
			worktree_merge_free(&j->m);
			job_queue(j, 1);
			return;
		}
		if (j->rc != 0) {
			set_status(j->id, "failed", j->cause);
			say(j->agent_id, "#%lld: merge failed: %s",
			    (long long)j->agent_id, j->cause);
			job_end(j);
			return;
		}
		set_status(j->id, "done", j->merged_oid);
		say(j->agent_id, "✅ #%lld merged into %s (%.7s).%s%s",
		    (long long)j->agent_id, j->base, j->merged_oid,
		    j->warning != NULL ? "\n" : "", j->warning != NULL ?
		    j->warning : "");
		results_forget(j->agent_id);
		if (j->push_base) {
			job_queue(j, 4);
			return;
		}
		job_end(j);
		return;
	case 4:
		if (j->rc != 0)
			say(j->agent_id, "#%lld: merged, but pushing %s failed:"
			    " %s", (long long)j->agent_id, j->base, j->cause);
		else
			say(j->agent_id, "#%lld: pushed %s to %s.",
			    (long long)j->agent_id, j->base, j->remote);
		job_end(j);
		return;
	}
}

/* ---- the queue ------------------------------------------------------------- */

static void
job_start(int64_t id, int64_t agent_id, const char *repo, const char *branch,
    const char *status, const char *base_oid, const char *merged_oid)
{
	const struct config	*cfg = results_config();
	const struct cfg_repo	*cr = config_repo(cfg, repo);
	struct mjob		*j;

	if (cr == NULL) {
		set_status(id, "failed", "repo no longer configured");
		say(agent_id, "#%lld: merge dropped: repo %s is no longer"
		    " configured.", (long long)agent_id, repo);
		return;
	}
	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->id = id;
	j->agent_id = agent_id;
	j->repo = xstrdup(repo);
	j->repo_path = xstrdup(cr->path);
	j->base = xstrdup(cr->base);
	j->branch = xstrdup(branch);
	j->remote = xstrdup(cr->remote != NULL ? cr->remote : "origin");
	gitremote_creds_from(&j->creds, cr);
	j->push_base = cr->merge_push && gitremote_exists(cr->path, j->remote);
	j->next = jobs;
	jobs = j;
	if (strcmp(status, "landing") == 0 && base_oid != NULL &&
	    merged_oid != NULL) {
		j->base_oid = xstrdup(base_oid);
		j->merged_oid = xstrdup(merged_oid);
		land(j);
		return;
	}
	set_status(id, "merging", NULL);
	say(agent_id, "#%lld: merging `%s` into %s.", (long long)agent_id,
	    branch, cr->base);
	job_queue(j, 1);
}

static void
kick(const char *repo)
{
	sqlite3_stmt	*st;
	int64_t		 id, agent_id;
	char		*branch, *status, *bo, *mo;

	if (stopping || repo_busy(repo))
		return;
	st = store_stmt("SELECT id, agent_id, branch, status, base_oid,"
	    " merged_oid FROM merges WHERE repo = ? AND status IN ('queued',"
	    " 'merging', 'checking', 'landing') ORDER BY id LIMIT 1");
	store_bind_text(st, 1, repo);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return;
	}
	id = sqlite3_column_int64(st, 0);
	agent_id = sqlite3_column_int64(st, 1);
	branch = store_col_text(st, 2);
	status = store_col_text(st, 3);
	bo = store_col_text(st, 4);
	mo = store_col_text(st, 5);
	sqlite3_reset(st);
	job_start(id, agent_id, repo, branch, status, bo, mo);
	free(branch);
	free(status);
	free(bo);
	free(mo);
}

/*
 * The request's row is in the event's transaction: its job starts only once
 * that commits.  The job runs outside it (libgit2 on the threadpool, the
 * base moved, replies from its steps), so a job started before a COMMIT that
 * failed would merge for a request the store never kept, and again on each
 * try of the event's row.  Rolled back, nothing in memory knew of it: only
 * the repo's name, freed.  Outside a transaction this runs at once.
 */
static void
kick_committed(void *arg)
{
	char	*repo = arg;

	kick(repo);
	free(repo);
}

void
merge_enqueue(struct agent *a, const char *by)
{
	struct conversation	*c = agent_conversation(a);
	const struct cfg_repo	*cr = results_repo(a);
	sqlite3_stmt		*st;
	long long		 ahead = 0, id = (long long)agent_id(a);

	if (cr == NULL || agent_branch(a) == NULL) {
		conversation_say(c, "#%lld has no branch to merge.", id);
		return;
	}
	if (agent_is_live(a)) {
		conversation_say(c, "#%lld is still %s; say `merge #%lld` when"
		    " it is done.", id, agent_state_name(agent_state(a)), id);
		return;
	}
	st = store_stmt("SELECT count(*) FROM merges WHERE agent_id = ? AND"
	    " status IN ('queued', 'merging', 'checking', 'landing')");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
		sqlite3_reset(st);
		conversation_say(c, "#%lld is in the merge queue already.", id);
		return;
	}
	sqlite3_reset(st);
	st = store_stmt("SELECT count(*) FROM merges WHERE repo = ? AND"
	    " status IN ('queued', 'merging', 'checking', 'landing')");
	store_bind_text(st, 1, cr->name);
	if (sqlite3_step(st) == SQLITE_ROW)
		ahead = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	st = store_stmt("INSERT INTO merges (agent_id, repo, branch, base,"
	    " status, requested_by, created_at, updated_at) VALUES (?, ?, ?,"
	    " ?, 'queued', ?, ?, ?)");
	store_bind_int(st, 1, id);
	store_bind_text(st, 2, cr->name);
	store_bind_text(st, 3, agent_branch(a));
	store_bind_text(st, 4, cr->base);
	store_bind_text(st, 5, by);
	store_bind_int(st, 6, wall_s());
	store_bind_int(st, 7, wall_s());
	if (sqlite3_step(st) != SQLITE_DONE) {
		conversation_say(c, "Could not queue #%lld: %s", id,
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		return;
	}
	sqlite3_reset(st);
	if (ahead > 0)
		conversation_say(c, "#%lld is %s in the merge queue of repo %s.",
		    id, ordinal(ahead + 1), cr->name);
	store_hook(kick_committed, free, xstrdup(cr->name));
}

void
merge_resolve(struct agent *a, const char *by)
{
	sqlite3_stmt	*st;
	char		*files = NULL, *base = NULL, *text;
	long long	 id = (long long)agent_id(a);

	st = store_stmt("SELECT status, detail, base FROM merges WHERE"
	    " agent_id = ? ORDER BY id DESC LIMIT 1");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) !=
	    NULL && strcmp((const char *)sqlite3_column_text(st, 0),
	    "conflict") == 0) {
		files = store_col_text(st, 1);
		base = store_col_text(st, 2);
	}
	sqlite3_reset(st);
	if (files == NULL) {
		conversation_say(agent_conversation(a), "#%lld has no merge"
		    " conflicts on record; say `merge #%lld` first.", id, id);
		return;
	}
	text = xasprintf("Merge the branch %s into your branch and resolve the"
	    " conflicts with %s in these files: %s. Keep both sides' intent,"
	    " then commit the result.", base, base, files);
	agent_followup(a, text, by);
	free(text);
	free(files);
	free(base);
}

void
merge_recover(void)
{
	sqlite3_stmt	*st;
	struct {
		int64_t	 id, agent_id;
		char	*repo, *status;
	} v[64];
	size_t		 n = 0, i;

	st = store_stmt("SELECT id, agent_id, repo, status FROM merges WHERE"
	    " status IN ('merging', 'checking', 'landing') ORDER BY id");
	while (n < nitems(v) && sqlite3_step(st) == SQLITE_ROW) {
		v[n].id = sqlite3_column_int64(st, 0);
		v[n].agent_id = sqlite3_column_int64(st, 1);
		v[n].repo = store_col_text(st, 2);
		v[n].status = store_col_text(st, 3);
		n++;
	}
	sqlite3_reset(st);
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].status, "landing") != 0) {
			/* Nothing of it reached the base: start it over. */
			set_status(v[i].id, "queued", NULL);
			say(v[i].agent_id, "#%lld: the merge was interrupted by a"
			    " restart while %s; %s did not move. Starting it"
			    " again.", (long long)v[i].agent_id, v[i].status,
			    "the base");
		}
	}
	for (i = 0; i < n; i++) {
		kick(v[i].repo);
		free(v[i].repo);
		free(v[i].status);
	}
	/* And queues that were waiting behind them. */
	st = store_stmt("SELECT DISTINCT repo FROM merges WHERE status ="
	    " 'queued'");
	n = 0;
	while (n < nitems(v) && sqlite3_step(st) == SQLITE_ROW)
		v[n++].repo = store_col_text(st, 0);
	sqlite3_reset(st);
	for (i = 0; i < n; i++) {
		kick(v[i].repo);
		free(v[i].repo);
	}
}

void
merge_shutdown(void)
{
	struct mjob	*j, *next;

	stopping = 1;
	/*
	 * Jobs on the threadpool free themselves when they report; a check
	 * still running is killed (its merge starts over on the next run).
	 */
	for (j = jobs; j != NULL; j = next) {
		next = j->next;
		if (j->proc != NULL && j->handles > 0 && j->proc->pid > 0)
			kill(-j->proc->pid, SIGKILL);
	}
}
