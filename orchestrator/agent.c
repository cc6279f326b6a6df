/*
 * agent — the subagent lifecycle: start, turns, scheduling under the
 * limits, cancel, follow-ups.  See agent.h for the states, agent-int.h for
 * how the module is split, runner.h for where a turn runs.
 */
#include "orchestrator/agent-int.h"
#include "orchestrator/agentlog.h"
#include "orchestrator/conversation.h"
#include "orchestrator/driver.h"
#include "orchestrator/inbox.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/render.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct config	*agent_cfg;
char			*agent_sock;
char			*agent_client_exe;
struct agent		*agent_all;
struct agent		*agent_queue;
static struct metric	*m_started, *m_live;
static int		 scheduled_soon;

#define AGENT_MAX_OBSERVERS	4
static struct {
	agent_end_fn	 fn;
	void		*arg;
} end_observers[AGENT_MAX_OBSERVERS];
static int			 n_end_observers;

static void	schedule(void);
static void	turn_start(struct agent *);
static void	turn_finished(struct agent *);

/* ---- bookkeeping ------------------------------------------------------- */

const char *
agent_state_name(enum agent_state s)
{
	static const char *const names[] = { "queued", "preparing", "running",
	    "finishing", "idle", "done", "failed", "cancelled", "timeout",
	    "interrupted" };

	return (size_t)s < nitems(names) ? names[s] : "?";
}

int
agent_is_live(const struct agent *a)
{
	return a->state <= AGENT_FINISHING;
}

static int
agent_is_busy(const struct agent *a)
{
	return a->state == AGENT_PREPARING || a->state == AGENT_RUNNING ||
	    a->state == AGENT_FINISHING;
}

int64_t agent_id(const struct agent *a) { return a->id; }
const char *agent_name(const struct agent *a) { return a->name; }
const char *agent_branch(const struct agent *a) { return a->branch; }
const char *agent_worktree(const struct agent *a) { return a->worktree; }
const char *agent_task(const struct agent *a) { return a->task; }
const char *agent_token(const struct agent *a) { return a->token; }
int agent_pid(const struct agent *a) { return a->pid; }
const char *agent_summary(const struct agent *a) { return a->summary; }
const char *agent_diffstat(const struct agent *a) { return a->diffstat; }
double agent_cost_usd(const struct agent *a) { return a->cost_usd; }
int64_t agent_started_s(const struct agent *a) { return a->started_wall / 1000; }

int64_t
agent_wall_ms(void)
{
	uv_timeval64_t	 tv;

	if (uv_gettimeofday(&tv) != 0)
		return wall_s() * 1000;
	return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t
agent_elapsed_s(const struct agent *a)
{
	int64_t	 end;

	if (a->started_wall == 0)
		return 0;
	end = !agent_is_live(a) && a->ended_wall != 0 ? a->ended_wall :
	    agent_wall_ms();
	return end > a->started_wall ? (end - a->started_wall) / 1000 : 0;
}

int
agent_exit_status(const struct agent *a, int *code, int *sig)
{
	*code = (int)a->exit_code;
	*sig = a->term_signal;
	/* Live: the last turn's status is being replaced by this one's. */
	return agent_is_live(a) || a->started_wall == 0 ? -1 : 0;
}

int
agent_steps(const struct agent *a, const char **out, int n)
{
	int	 i, k = a->nsteps < n ? a->nsteps : n;

	for (i = 0; i < k; i++)
		out[i] = a->steps[a->nsteps - k + i];
	return k;
}

void
agent_add_cost(struct agent *a, double usd)
{
	if (usd <= 0)
		return;
	a->cost_usd = (a->cost_usd > 0 ? a->cost_usd : 0) + usd;
	agent_db_update(a);
	agent_touch(a);
}

void
agent_on_end(agent_end_fn fn, void *arg)
{
	int	 i;

	for (i = 0; i < n_end_observers; i++)
		if (end_observers[i].fn == fn && end_observers[i].arg == arg)
			return;
	if (n_end_observers == AGENT_MAX_OBSERVERS)
		fatalx("agent: too many end observers");
	end_observers[n_end_observers].fn = fn;
	end_observers[n_end_observers++].arg = arg;
}

int64_t
agent_next_id(void)
{
	sqlite3_stmt	*st;
	int64_t		 id = 1;

	/* A rowid table without AUTOINCREMENT takes max(rowid) + 1. */
	st = store_stmt("SELECT COALESCE(max(id), 0) + 1 FROM agents");
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return id;
}
struct conversation *agent_conversation(const struct agent *a) { return a->conv; }
const char *agent_session(const struct agent *a) { return a->session; }
void *agent_driver_data(const struct agent *a) { return a->drv_data; }
const char *agent_socket_path(void) { return agent_sock; }
const char *agent_state_dir(void) { return agent_cfg->state_dir; }

const struct cfg_agent *
agent_config(const struct agent *a)
{
	return config_agent(agent_cfg, a->name);
}

void
agent_set_driver_data(struct agent *a, void *data, void (*free_fn)(void *))
{
	if (a->drv_data_free != NULL && a->drv_data != data)
		a->drv_data_free(a->drv_data);
	a->drv_data = data;
	a->drv_data_free = free_fn;
}
enum agent_state agent_state(const struct agent *a) { return a->state; }

void
agent_ref(struct agent *a)
{
	a->refs++;
}

static void
agent_free(void *arg)
{
	struct agent	*a = arg;
	struct followup	*f;
	int		 i;

	free(a->name); free(a->task); free(a->prompt); free(a->repo_path);
	free(a->base); free(a->branch); free(a->worktree);
	free(a->cancelled_by); free(a->ring); buf_free(&a->line);
	free(a->why);
	if (a->drv_data_free != NULL)
		a->drv_data_free(a->drv_data);
	for (i = 0; i < a->nsteps; i++)
		free(a->steps[i]);
	free(a->summary); free(a->session); free(a->diffstat);
	for (i = 0; a->files != NULL && a->files[i] != NULL; i++)
		free(a->files[i]);
	free(a->files);
	while ((f = a->followups) != NULL) {
		a->followups = f->next;
		free(f->text);
		free(f);
	}
	conversation_release(a->conv);
	free(a);
}

void
agent_unref(struct agent *a)
{
	/* Freed on the next turn: callers up the stack may still hold it. */
	if (--a->refs == 0)
		loop_defer(agent_free, a);
}

void
agent_db_update(struct agent *a)
{
	sqlite3_stmt	*st;

	st = store_stmt("UPDATE agents SET status = ?, branch = ?,"
	    " worktree = ?, pid = ?, session_id = ?, exit_code = ?,"
	    " summary = ?, started_at = ?, ended_at = ?, term_signal = ?,"
	    " cost_usd = ? WHERE id = ?");
	store_bind_text(st, 1, agent_state_name(a->state));
	store_bind_text(st, 2, a->branch);
	store_bind_text(st, 3, a->worktree);
	store_bind_int(st, 4, a->pid);
	store_bind_text(st, 5, a->session);
	store_bind_int(st, 6, a->exit_code);
	store_bind_text(st, 7, a->summary);
	/* The first start and the last end, not the time of this update. */
	store_bind_int(st, 8, a->started_wall / 1000);
	store_bind_int(st, 9, agent_is_live(a) ? 0 : a->ended_wall / 1000);
	store_bind_int(st, 10, a->term_signal);
	if (a->cost_usd >= 0)
		sqlite3_bind_double(st, 11, a->cost_usd);
	else
		sqlite3_bind_null(st, 11);
	store_bind_int(st, 12, a->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("agent %lld: update failed: %s", (long long)a->id,
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

void
agent_set_state(struct agent *a, enum agent_state s)
{
	if (a->state == s)
		return;
	log_info("agent %lld: %s → %s", (long long)a->id,
	    agent_state_name(a->state), agent_state_name(s));
	/* h-service: agent run duration, one observation per run. */
	if (s == AGENT_RUNNING)
		a->turn_ms = now_ms();
	else if (a->turn_ms != 0 && s > AGENT_FINISHING) {
		metrics_observe(metrics_histogram(
		    "switchboard_agent_run_seconds", "", "Agent runs, from "
		    "start to end", NULL), (double)(now_ms() - a->turn_ms) / 1000);
		a->turn_ms = 0;
	}
	a->state = s;
	agent_db_update(a);
	metrics_set(m_live, (double)agent_live_count());
	agent_touch(a);
}

/* ---- the turn's process --------------------------------------------------- */

/* Hooks of the turn's run: output feeds the ring and the driver. */
static void
feed_lines(struct agent *a, const char *p, size_t n)
{
	const char	*nl;

	while (n > 0) {
		if ((nl = memchr(p, '\n', n)) == NULL) {
			/* Bound a line without newline: 1 MiB, then cut. */
			if (a->line.len + n > (1 << 20)) {
				a->drv->on_line(a, a->line.data, a->line.len);
				buf_reset(&a->line);
			}
			buf_add(&a->line, p, n);
			return;
		}
		if (a->line.len == 0)	/* whole in this read: no copy */
			a->drv->on_line(a, p, (size_t)(nl - p));
		else {
			buf_add(&a->line, p, (size_t)(nl - p));
			a->drv->on_line(a, a->line.data, a->line.len);
			buf_reset(&a->line);
		}
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
}

static void
run_output(void *arg, int stream, const char *p, size_t n)
{
	struct agent	*a = arg;

	agentlog_add(a->id, a->turn, p, n);	/* `log #N` keeps it all */
	agent_ring_add(a, p, n);
	if (stream == 1 && a->drv->on_line != NULL)
		feed_lines(a, p, n);
}

static void
run_exited(void *arg, int64_t status, int sig, const char *error)
{
	struct agent	*a = arg;

	a->run = NULL;
	a->pid = 0;
	agentlog_flush(a->id);
	a->exit_code = status;
	a->term_signal = sig;
	if (error != NULL) {
		agent_ring_add(a, error, strlen(error));
		a->end_reason = "spawn";
	}
	uv_timer_stop(a->timeout_timer);
	turn_finished(a);
	agent_unref(a);		/* the run's */
}

static void
terminate(struct agent *a, const char *reason)
{
	if (a->end_reason == NULL)
		a->end_reason = reason;
	if (a->run == NULL)
		return;
	a->runner->stop(a->run, a->drv->stop_signal,
	    agent_cfg->limits.kill_grace);
}

static void
timeout_fired(uv_timer_t *t)
{
	struct agent	*a = t->data;

	if (a->wall_budget) {
		char	*why = xasprintf("budget: max_wall_time %ds reached",
		    a->wall_budget);

		agent_stop(a, why);
		free(why);
		return;
	}
	log_warnx("agent %lld: timed out", (long long)a->id);
	terminate(a, "timeout");
}

void
agent_fail(struct agent *a, const char *reason)
{
	if (a->why != NULL)
		return;
	log_info("agent %lld: failed: %s", (long long)a->id, reason);
	a->why = xstrdup(reason);
	utf8_truncate(a->why, 500);
}

void
agent_stop(struct agent *a, const char *reason)
{
	if (a->state != AGENT_RUNNING || a->end_reason != NULL)
		return;
	log_info("agent %lld: stopping: %s", (long long)a->id, reason);
	free(a->why);
	a->why = xstrdup(reason);
	utf8_truncate(a->why, 500);
	terminate(a, "budget");
}

static void	ws_req_fill(struct agent *, struct ws_req *, char **);

static void
spawn(struct agent *a)
{
	const struct cfg_agent	*ca = config_agent(agent_cfg, a->name);
	struct run_spec		 spec = { 0 };
	struct run_hooks	 hooks = { run_output, run_exited, a, NULL };
	struct ws_req		 ws = { 0 };
	char			**argv = NULL, **env = NULL, *cause = NULL;
	char			*message;
	int			 timeout;

	agent_card_post(a);
	if (ca == NULL) {
		cause = xasprintf("agent '%s' is no longer configured", a->name);
		goto fail;
	}
	if ((argv = a->drv->argv(a, ca, a->prompt, a->turn > 0, &cause)) == NULL)
		goto fail;
	env = agent_child_env(a);
	spec.argv = argv;
	spec.env = env;
	spec.cwd = a->worktree;
	spec.stdin_pipe = a->drv->stdin_pipe;
	spec.agent_id = a->id;
	spec.agent = ca;
	spec.conversation_id = a->conv->id;
	ws_req_fill(a, &ws, &message);
	spec.ws = &ws;
	agent_ref(a);		/* the run's, dropped in run_exited */
	a->run = a->runner->start(&spec, &hooks);
	a->pid = a->runner->pid(a->run);
	free(message);
	driver_argv_free(argv);
	driver_argv_free(env);
	timeout = ca->timeout > 0 ? ca->timeout : agent_cfg->limits.agent_timeout;
	a->wall_budget = 0;
	if (ca->max_wall_time > 0 && (timeout <= 0 ||
	    ca->max_wall_time < timeout))
		timeout = a->wall_budget = ca->max_wall_time;
	/* A pod has no host pid, but a run it is (exited() will follow). */
	if (timeout > 0 && (a->pid > 0 || a->runner != &runner_local))
		uv_timer_start(a->timeout_timer, timeout_fired,
		    (uint64_t)timeout * 1000, 0);
	if (a->started_ms == 0)
		a->started_ms = now_ms();
	if (a->started_wall == 0)
		a->started_wall = agent_wall_ms();
	agent_set_state(a, AGENT_RUNNING);
	return;
fail:
	log_warnx("agent %lld: %s", (long long)a->id, cause);
	agent_ring_add(a, cause, strlen(cause));
	free(cause);
	driver_argv_free(argv);
	a->exit_code = 127;
	a->end_reason = "spawn";
	turn_finished(a);
}

/* ---- the workspace --------------------------------------------------------- */

static void
ws_req_fill(struct agent *a, struct ws_req *q, char **message)
{
	char	*m = render_oneline(a->prompt, 60);

	*message = xasprintf("switchboard #%lld: %s", (long long)a->id, m);
	free(m);
	q->agent_id = a->id;
	q->repo_path = a->repo_path;
	q->base = a->base;
	q->state_dir = agent_cfg->state_dir;
	q->task = a->task;
	q->worktree = a->worktree;
	q->branch = a->branch;
	q->git_name = agent_cfg->git.name;
	q->git_email = agent_cfg->git.email;
	q->message = *message;
	q->repo = config_repo(agent_cfg, a->conv->repo);
	q->agent = config_agent(agent_cfg, a->name);
}

/* Takes the worktree the runner made (it exists now, whatever happens). */
static void
take_workspace(struct agent *a, struct ws_result *res)
{
	free(a->branch);
	free(a->worktree);
	a->branch = res->branch;
	a->worktree = res->path;
	res->branch = res->path = NULL;
	agent_db_update(a);
}

static void
prepared(void *arg, struct ws_result *res)
{
	struct agent	*a = arg;
	char		*text;

	if (loop_stopping()) {
		/*
		 * agent_shutdown settled the agent (interrupted) and closed its
		 * timers while this ran on the threadpool: starting the child
		 * now would use them.  Keep the record.
		 */
		if (res->rc == 0)
			take_workspace(a, res);
	} else if (res->rc != 0) {
		log_warnx("agent %lld: worktree: %s", (long long)a->id,
		    res->cause);
		agent_ring_add(a, res->cause, strlen(res->cause));
		a->exit_code = 1;
		a->end_reason = "worktree";
		turn_finished(a);
	} else if (a->end_reason != NULL) {
		/* Cancelled while it was made: a later turn could not make it again. */
		take_workspace(a, res);
		turn_finished(a);
	} else {
		take_workspace(a, res);
		if (a->cleaned)
			text = xasprintf("#%lld: its worktree was removed; made"
			    " it again from its branch `%s`", (long long)a->id,
			    a->branch);
		else
			text = xasprintf("Started #%lld %s on `%s` in repo %s",
			    (long long)a->id, a->name, a->branch,
			    a->conv->repo);
		a->cleaned = 0;
		outbox_post(a->conv->adapter, a->conv->channel,
		    a->conv->thread, NULL, NULL, text, NULL, NULL);
		free(text);
		spawn(a);	/* posts the card after "Started" */
	}
	agent_unref(a);		/* the job's */
}

static void
collected(void *arg, struct ws_result *res)
{
	struct agent	*a = arg;
	size_t		 i;

	if (!loop_stopping()) {
		if (res->rc != 0)
			log_warnx("agent %lld: committing leftovers: %s",
			    (long long)a->id, res->cause);
		else if (res->cause != NULL)
			log_warnx("agent %lld: diff stat: %s",
			    (long long)a->id, res->cause);
		free(a->diffstat);
		a->diffstat = res->diffstat;
		res->diffstat = NULL;
		if (res->files != NULL) {
			for (i = 0; a->files != NULL && a->files[i] != NULL; i++)
				free(a->files[i]);
			free(a->files);
			a->files = res->files;
			res->files = NULL;
		}
		turn_finished(a);
	}
	agent_unref(a);		/* the job's */
}

static void
cleaned(void *arg, struct ws_result *res)
{
	struct agent	*a = arg;

	if (res->rc != 0)
		conversation_say(a->conv, "Could not remove the worktree of"
		    " #%lld: %s", (long long)a->id, res->cause);
	else {
		conversation_say(a->conv, "Removed the worktree of #%lld; its"
		    " branch `%s` stays.", (long long)a->id, a->branch);
		free(a->worktree);
		a->worktree = NULL;
		a->cleaned = 1;
		agent_db_update(a);
	}
	agent_unref(a);		/* the job's */
}

/* Re-attached: the token its turn holds (a restart made a new one). */
static void
run_token(void *arg, const char *token)
{
	struct agent	*a = arg;

	if (strlen(token) == sizeof a->token - 1)
		memcpy(a->token, token, sizeof a->token);
}

/* For agent-restart.c: a run of a's that a restart re-attaches to. */
void
agent_run_hooks(struct agent *a, struct run_hooks *h)
{
	h->output = run_output;
	h->exited = run_exited;
	h->arg = a;
	h->token = run_token;
}

void
agent_ws_req(struct agent *a, struct ws_req *q, char **message)
{
	ws_req_fill(a, q, message);
}

void
agent_arm_timeout(struct agent *a, int seconds)
{
	uv_timer_start(a->timeout_timer, timeout_fired,
	    (uint64_t)(seconds > 0 ? seconds : 1) * 1000, 0);
}

/* Runs one workspace job for a (which it holds a ref on). */
static void
ws_job(struct agent *a, void (*op)(const struct ws_req *, ws_done_fn, void *),
    ws_done_fn done)
{
	struct ws_req	 q = { 0 };
	char		*message;

	ws_req_fill(a, &q, &message);
	agent_ref(a);
	op(&q, done, a);
	free(message);
}

/* ---- turns ------------------------------------------------------------- */

/*
 * The turn's work (worktree, process) once what started it is committed:
 * a turn started by an event whose transaction then fails to commit never
 * runs (turn_undo), so nothing exists that the store does not know of.
 */
static void
turn_go(void *arg)
{
	struct agent	*a = arg;

	if (a->state != AGENT_PREPARING || loop_stopping())
		;	/* discarded, or shutting down: nothing to start */
	else if (a->end_reason != NULL)
		turn_finished(a);	/* cancelled before it began */
	else if (a->worktree == NULL) {
		/* A branch without a worktree: `cleanup` removed it. */
		if (a->branch != NULL)
			a->cleaned = 1;
		ws_job(a, a->runner->prepare, prepared);
	} else if (!a->runner->remote_workspace &&
	    access(a->worktree, F_OK) == -1) {
		/*
		 * The retention sweep removed it while the agent was idle:
		 * prepare makes it again from the agent's branch.
		 */
		free(a->worktree);
		a->worktree = NULL;
		a->cleaned = 1;
		ws_job(a, a->runner->prepare, prepared);
	} else
		spawn(a);
	agent_unref(a);		/* the hook's */
}

/* Its start was not committed: back to the head of the queue. */
static void
turn_undo(void *arg)
{
	struct agent	*a = arg;

	if (a->state == AGENT_PREPARING) {
		a->state = AGENT_QUEUED;
		a->qnext = agent_queue;
		agent_queue = a;
		agent_schedule_soon();
	}
	agent_unref(a);		/* the hook's */
}

static void
turn_start(struct agent *a)
{
	a->end_reason = NULL;
	free(a->why);
	a->why = NULL;
	a->exit_code = 0;
	a->term_signal = 0;
	a->ended_ms = 0;
	a->ended_wall = 0;
	agent_set_state(a, AGENT_PREPARING);
	agent_ref(a);
	store_hook(turn_go, turn_undo, a);
}

/* Process gone and pipes drained (or never started): settle the turn. */
static void
turn_finished(struct agent *a)
{
	struct render_result	 r = { 0 };
	enum agent_state	 end;
	char			*text, *tail = NULL;
	struct followup		*f;

	if (a->state != AGENT_FINISHING && a->worktree != NULL &&
	    a->branch != NULL) {
		/* First the leftover commit and the diff stat, off the loop. */
		agent_set_state(a, AGENT_FINISHING);
		ws_job(a, a->runner->collect, collected);
		return;
	}
	if (a->line.len > 0 && a->drv->on_line != NULL) {
		a->drv->on_line(a, a->line.data, a->line.len);
		buf_reset(&a->line);
	}
	a->ended_ms = now_ms();
	a->ended_wall = agent_wall_ms();
	if (a->end_reason != NULL && strcmp(a->end_reason, "timeout") == 0)
		end = AGENT_TIMEOUT;
	else if (a->end_reason != NULL && (strcmp(a->end_reason, "cancel") == 0 ||
	    strcmp(a->end_reason, "budget") == 0))
		end = AGENT_CANCELLED;
	else if (a->end_reason != NULL && strcmp(a->end_reason, "shutdown") == 0)
		end = AGENT_INTERRUPTED;
	else if (a->exit_code == 0 && a->term_signal == 0 &&
	    a->end_reason == NULL && a->why == NULL)
		end = AGENT_DONE;
	else
		end = AGENT_FAILED;

	question_cancel_agent(a, end == AGENT_DONE ? "agent finished" :
	    agent_state_name(end));
	if (end != AGENT_DONE)
		tail = agent_output_tail(a, 1500);
	r.id = a->id;
	r.state = agent_state_name(end);
	r.branch = a->branch;
	r.summary = a->summary;
	r.diffstat = a->diffstat;
	r.exit_code = (int)a->exit_code;
	r.term_signal = a->term_signal;
	r.tail = tail;
	text = render_result(&r);
	if (a->end_reason != NULL && strcmp(a->end_reason, "budget") == 0) {
		char *t = xasprintf("%s\nstopped: %s; the branch keeps the"
		    " partial work", text, a->why);
		free(text);
		text = t;
	} else if (end == AGENT_CANCELLED && a->cancelled_by != NULL) {
		char *t = xasprintf("%s\ncancelled by %s", text, a->cancelled_by);
		free(text);
		text = t;
	} else if (end == AGENT_FAILED && a->why != NULL) {
		char *t = xasprintf("%s\nreason: %s", text, a->why);
		free(text);
		text = t;
	}
	outbox_post(a->conv->adapter, a->conv->channel, a->conv->thread, NULL,
	    NULL, text, NULL, NULL);
	free(text);
	free(tail);
	agent_set_state(a, end);
	{
		int i;

		agent_ref(a);	/* an observer may do anything */
		for (i = 0; i < n_end_observers; i++)
			end_observers[i].fn(a, end_observers[i].arg);
		agent_unref(a);
	}

	/* Follow-ups that came in while it ran start the next turn. */
	if ((f = a->followups) != NULL && end == AGENT_DONE) {
		a->followups = f->next;
		free(a->prompt);
		a->prompt = f->text;
		free(f);
		a->turn++;
		agent_set_state(a, AGENT_QUEUED);
		a->qnext = NULL;
		{
			struct agent **pp = &agent_queue;
			while (*pp != NULL)
				pp = &(*pp)->qnext;
			*pp = a;
		}
	}
	schedule();
}

/* ---- scheduling -------------------------------------------------------- */

static int
busy_in(const struct conversation *c)
{
	struct agent	*a;
	int		 n = 0;

	for (a = agent_all; a != NULL; a = a->next)
		if (agent_is_busy(a) && (c == NULL || a->conv == c))
			n++;
	return n;
}

static void
schedule(void)
{
	struct agent	**pp, *a;

	if (loop_stopping())
		return;
	for (pp = &agent_queue; (a = *pp) != NULL;) {
		if (busy_in(NULL) >= agent_cfg->limits.max_agents)
			return;
		if (busy_in(a->conv) >= agent_cfg->limits.max_agents_per_conversation) {
			pp = &a->qnext;
			continue;
		}
		*pp = a->qnext;
		a->qnext = NULL;
		turn_start(a);
	}
}

static void
schedule_fired(void *arg)
{
	scheduled_soon = 0;
	schedule();
}

void
agent_schedule_soon(void)
{
	if (!scheduled_soon) {
		scheduled_soon = 1;
		loop_defer(schedule_fired, NULL);
	}
}

static int
queue_position(const struct agent *a)
{
	const struct agent	*q;
	int			 n = 0;

	for (q = agent_queue; q != NULL && q != a; q = q->qnext)
		n++;
	return n;
}

/* A new in-memory agent on the agents list (one ref: the list's). */
struct agent *
agent_alloc(int64_t id, struct conversation *c, const char *agent_name,
    const struct agent_driver *drv, const char *task,
    const struct cfg_repo *cr, const unsigned char rnd[32])
{
	struct agent	*a;

	a = xcalloc(1, sizeof *a);
	a->refs = 1;	/* the agent_all list */
	a->id = id;
	a->conv = c;
	conversation_hold(c);	/* in memory while the agent is */
	a->name = xstrdup(agent_name);
	a->drv = drv;
	a->runner = &runner_local;
	{
		/* Where its kind's turns run (config agents.[].runner). */
		const struct cfg_agent	*ca = config_agent(agent_cfg, agent_name);
		const struct runner_ops	*ro;

		if (ca != NULL && ca->runner != NULL &&
		    (ro = runner_lookup(ca->runner)) != NULL)
			a->runner = ro;
	}
	a->task = xstrdup(task);
	a->prompt = xstrdup(task);
	a->repo_path = xstrdup(cr->path);
	a->base = xstrdup(cr->base);
	hex_encode(rnd, 32, a->token);
	a->created_s = wall_s();
	a->cost_usd = -1;
	a->ring_cap = (size_t)agent_cfg->limits.output_tail;
	a->ring = xmalloc(a->ring_cap ? a->ring_cap : 1);
	a->timeout_timer = xcalloc(1, sizeof *a->timeout_timer);
	a->card_timer = xcalloc(1, sizeof *a->card_timer);
	uv_timer_init(loop_uv(), a->timeout_timer);
	uv_timer_init(loop_uv(), a->card_timer);
	a->timeout_timer->data = a->card_timer->data = a;
	a->next = agent_all;
	agent_all = a;
	agent_table_insert(a);
	return a;
}

struct agent *
agent_start(struct conversation *c, const char *agent_name, const char *task,
    const char *by, char **cause)
{
	const struct cfg_agent	*ca;
	const struct cfg_repo	*cr;
	const struct agent_driver *drv;
	struct agent		*a, **pp;
	sqlite3_stmt		*st;
	unsigned char		 rnd[32];

	/* Not on an ack's path: the event is recorded, acked, then redone. */
	if (inbox_work_later()) {
		*cause = xstrdup("started once its event is recorded");
		return NULL;
	}
	if ((ca = config_agent(agent_cfg, agent_name)) == NULL) {
		*cause = xasprintf("no agent named '%s' is configured",
		    agent_name);
		return NULL;
	}
	if ((drv = driver_lookup(ca->driver)) == NULL) {
		*cause = xasprintf("agent '%s': driver '%s' is not available",
		    agent_name, ca->driver);
		return NULL;
	}
	if (drv->task_ok != NULL && drv->task_ok(ca, task, cause) != 0)
		return NULL;
	if ((cr = config_repo(agent_cfg, c->repo)) == NULL) {
		*cause = xasprintf("no repo named '%s' is configured",
		    c->repo != NULL ? c->repo : "(none)");
		return NULL;
	}
	if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
		*cause = xstrdup("no randomness for the agent token");
		return NULL;
	}

	st = store_stmt("INSERT INTO agents (conversation_id, seq, agent_name,"
	    " driver, task, repo, status, card_key, created_at) VALUES"
	    " (?, 0, ?, ?, ?, ?, 'queued', NULL, ?)");
	store_bind_int(st, 1, c->id);
	store_bind_text(st, 2, agent_name);
	store_bind_text(st, 3, ca->driver);
	store_bind_text(st, 4, task);
	store_bind_text(st, 5, c->repo);
	store_bind_int(st, 6, wall_s());
	if (sqlite3_step(st) != SQLITE_DONE) {
		*cause = xasprintf("cannot record the agent: %s",
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		return NULL;
	}
	sqlite3_reset(st);

	a = agent_alloc(sqlite3_last_insert_rowid(store_db()), c, agent_name,
	    drv, task, cr, rnd);
	a->state = AGENT_QUEUED;
	metrics_inc(m_started);
	agent_tx_started(a);

	log_info("agent %lld: %s for conversation %lld by %s", (long long)a->id,
	    agent_name, (long long)c->id, by);

	for (pp = &agent_queue; *pp != NULL; pp = &(*pp)->qnext)
		;
	*pp = a;
	schedule();
	if (a->state == AGENT_QUEUED) {
		conversation_say(c, "#%lld is queued, %d ahead (limits: %d"
		    " agents, %d per thread)", (long long)a->id,
		    queue_position(a), agent_cfg->limits.max_agents,
		    agent_cfg->limits.max_agents_per_conversation);
	}
	return a;
}

void
agent_unref_hook(void *arg)
{
	agent_unref(arg);
}

static void
cancel_queued(struct agent *a)
{
	struct agent	**pp;

	for (pp = &agent_queue; *pp != NULL; pp = &(*pp)->qnext)
		if (*pp == a) {
			*pp = a->qnext;
			break;
		}
	a->end_reason = "cancel";
	a->state = AGENT_FINISHING;	/* no leftover work to commit */
	turn_finished(a);
}

static void
cancel_go(void *arg)
{
	struct agent	*a = arg;

	if (a->state == AGENT_QUEUED)
		cancel_queued(a);
	else if (a->state == AGENT_PREPARING || a->state == AGENT_RUNNING)
		terminate(a, "cancel");
	agent_unref(a);
}

int
agent_cancel(struct agent *a, const char *by)
{
	free(a->cancelled_by);
	a->cancelled_by = xstrdup(by);
	switch (a->state) {
	case AGENT_QUEUED:
	case AGENT_PREPARING:
	case AGENT_RUNNING:
		/*
		 * Only once the cancel is recorded: the signal cannot be taken
		 * back, nor a dequeued agent's end (at once outside a
		 * transaction).
		 */
		agent_ref(a);
		store_hook(cancel_go, agent_unref_hook, a);
		return 0;
	case AGENT_FINISHING:
		return 0;
	default:
		return -1;
	}
}

void
agent_followup(struct agent *a, const char *text, const char *by)
{
	struct followup	*f, **pp;

	log_info("agent %lld: follow-up from %s", (long long)a->id, by);
	/* A removed worktree is made again from the branch (turn_start). */
	if (a->state == AGENT_RUNNING) {
		if (a->drv->followup_running != NULL &&
		    a->drv->followup_running(a, text) == 0)
			return;
		/* command driver: one line on its stdin, once committed */
		if (a->drv->followup_running == NULL && a->run != NULL &&
		    a->drv->stdin_pipe) {
			agent_tx_write(a, text);
			conversation_say(a->conv, "#%lld: passed on to the"
			    " running agent", (long long)a->id);
			return;
		}
	}
	f = xcalloc(1, sizeof *f);
	f->text = xstrdup(text);
	for (pp = &a->followups; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = f;
	agent_tx_followup(a);
	if (agent_is_live(a)) {
		conversation_say(a->conv, "#%lld: queued for its next turn",
		    (long long)a->id);
		return;
	}
	/* Ended: a new turn in the same worktree. */
	if (!agent_is_live(a)) {
		/*
		 * Oldest first: follow-ups queued while a turn that then
		 * failed or was cancelled ran are still waiting their turn.
		 */
		f = a->followups;
		a->followups = f->next;
		free(a->prompt);
		a->prompt = f->text;
		free(f);
		a->turn++;
		a->state = AGENT_QUEUED;
		agent_db_update(a);
		for (pp = NULL, a->qnext = NULL; ; ) {
			struct agent **qq = &agent_queue;
			while (*qq != NULL)
				qq = &(*qq)->qnext;
			*qq = a;
			break;
		}
		conversation_say(a->conv, "#%lld: starting a new turn with"
		    " your follow-up", (long long)a->id);
		schedule();
	}
}

int
agent_cleanup(struct agent *a)
{
	if (agent_is_live(a) || a->worktree == NULL)
		return -1;
	ws_job(a, a->runner->cleanup, cleaned);
	return 0;
}

void
agent_free_timers(struct agent *a)
{
	if (a->timeout_timer != NULL) {
		loop_close_free((uv_handle_t *)a->timeout_timer);
		a->timeout_timer = NULL;
	}
	if (a->card_timer != NULL) {
		loop_close_free((uv_handle_t *)a->card_timer);
		a->card_timer = NULL;
	}
}

void
agent_metrics_init(void)
{
	if (m_started != NULL)
		return;
	m_started = metrics_counter("switchboard_agents_started_total", "",
	    "Subagents started");
	m_live = metrics_gauge("switchboard_agents_live", "",
	    "Subagents queued or running");
}
