/*
 * agent-restart — agents across restarts: configuration, agents of an
 * earlier run loaded on demand, recovery of the ones a dead daemon left
 * live, shutdown, and the retention sweep of idle worktrees.
 */
#include "orchestrator/agent-int.h"
#include "orchestrator/agentlog.h"
#include "orchestrator/conversation.h"
#include "orchestrator/driver.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/render.h"
#include "orchestrator/warm.h"
#include "orchestrator/worktree.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The output ring of an agent of an earlier run, from its last turn's log
 * (agentlog.c keeps every turn on disk), so its output tail outlives a
 * restart; the ring keeps the newest limits.output_tail bytes of it.
 */
static void
load_tail(struct agent *a)
{
	char	*log, *p, *q;
	size_t	 len;

	if ((log = agentlog_read(a->id, &len)) == NULL)
		return;
	/* Each turn starts with a "=== turn N ===" line: the last one's. */
	for (p = log; (q = strstr(p, "\n=== turn ")) != NULL; p = q + 1)
		;
	if (strncmp(p, "=== turn ", 9) == 0 && (q = strchr(p, '\n')) != NULL)
		p = q + 1;
	agent_ring_add(a, p, len - (size_t)(p - log));
	free(log);
}

/*
 * An agent of an earlier run, which has ended (a restart reports live ones
 * interrupted first): loaded on demand, so that `#N TEXT` (a new turn in
 * the same worktree, resuming the driver's session), `diff #N` and
 * `cleanup #N` keep working across restarts.  NULL if there is none or its
 * repo or driver is no longer configured.
 */
struct agent *
agent_load(int64_t id)
{
	const struct cfg_repo		*cr;
	const struct agent_driver	*drv;
	struct conversation		*c;
	struct agent			*a = NULL;
	sqlite3_stmt			*st;
	unsigned char			 rnd[32];
	const char			*status;
	int				 i;

	if (agent_cfg == NULL || id <= 0 || uv_random(NULL, NULL, rnd, sizeof rnd,
	    0, NULL) != 0)
		return NULL;
	st = store_stmt("SELECT conversation_id, agent_name, driver, task,"
	    " repo, branch, worktree, session_id, status, summary, exit_code,"
	    " started_at, ended_at, term_signal, cost_usd, card_key"
	    " FROM agents WHERE id = ?");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return NULL;
	}
	status = (const char *)sqlite3_column_text(st, 8);
	if ((c = conversation_by_id(sqlite3_column_int64(st, 0))) == NULL ||
	    (cr = config_repo(agent_cfg, (const char *)sqlite3_column_text(st, 4)))
	    == NULL || (drv = driver_lookup((const char *)
	    sqlite3_column_text(st, 2))) == NULL) {
		sqlite3_reset(st);
		return NULL;
	}
	a = agent_alloc(id, c, (const char *)sqlite3_column_text(st, 1), drv,
	    (const char *)sqlite3_column_text(st, 3), cr, rnd);
	a->state = AGENT_INTERRUPTED;
	for (i = AGENT_DONE; i <= AGENT_INTERRUPTED; i++)
		if (status != NULL && strcmp(status, agent_state_name(i)) == 0)
			a->state = i;
	a->branch = store_col_text(st, 5);
	a->worktree = store_col_text(st, 6);
	a->session = store_col_text(st, 7);
	a->summary = store_col_text(st, 9);
	a->exit_code = sqlite3_column_int64(st, 10);
	a->started_wall = sqlite3_column_int64(st, 11) * 1000;
	a->ended_wall = sqlite3_column_int64(st, 12) * 1000;
	a->term_signal = sqlite3_column_int(st, 13);
	if (sqlite3_column_type(st, 14) != SQLITE_NULL)
		a->cost_usd = sqlite3_column_double(st, 14);
	a->card_posted = sqlite3_column_type(st, 15) != SQLITE_NULL;
	a->turn = 1;	/* the next turn is a follow-up (resume) */
	a->ended_ms = now_ms();	/* unloaded again once idle that long */
	sqlite3_reset(st);
	load_tail(a);
	if (a->worktree != NULL && !a->runner->remote_workspace &&
	    access(a->worktree, F_OK) == -1) {
		free(a->worktree);
		a->worktree = NULL;
		a->cleaned = 1;
	}
	log_info("agent %lld: loaded from the store (%s)", (long long)id,
	    agent_state_name(a->state));
	return a;
}

/* ---- retention ------------------------------------------------------------ */

struct sweep_job {
	uv_work_t	 work;
	char		**repos;
	size_t		 nrepos;
	char		*state_dir;
	int64_t		 retention;
	int		 removed;
};

static uv_timer_t	*sweep_timer;
static uv_timer_t	*unload_timer;
static struct metric	*m_loaded;

static void
sweep_work(uv_work_t *w)
{
	struct sweep_job	*j = w->data;
	char			*cause = NULL;
	size_t			 i;
	int			 n;

	for (i = 0; i < j->nrepos; i++) {
		n = 0;
		if (worktree_cleanup_older(j->repos[i], j->state_dir,
		    j->retention, &n, &cause) != 0) {
			log_warnx("worktree sweep of %s: %s", j->repos[i], cause);
			free(cause);
			cause = NULL;
		}
		j->removed += n;
	}
}

static void
sweep_after(uv_work_t *w, int status)
{
	struct sweep_job	*j = w->data;
	size_t			 i;

	if (j->removed > 0)
		log_info("worktree sweep: removed %d worktree(s) idle for more"
		    " than %llds", j->removed, (long long)j->retention);
	for (i = 0; i < j->nrepos; i++)
		free(j->repos[i]);
	free(j->repos);
	free(j->state_dir);
	free(j);
}

static void
sweep_fired(uv_timer_t *t)
{
	struct sweep_job	*j;
	size_t			 i;

	if (agent_cfg->git.retention <= 0 || agent_cfg->nrepos == 0)
		return;
	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->repos = xcalloc(agent_cfg->nrepos, sizeof *j->repos);
	for (i = 0; i < agent_cfg->nrepos; i++)
		j->repos[j->nrepos++] = xstrdup(agent_cfg->repos[i].path);
	j->state_dir = xstrdup(agent_cfg->state_dir);
	j->retention = agent_cfg->git.retention;
	uv_queue_work(loop_uv(), &j->work, sweep_work, sweep_after);
}

/* ---- ended agents leave memory --------------------------------------------- */

/*
 * An agent that ended limits.keep_ended ago and that nothing holds (its
 * card flushed, no run, no follow-up waiting, no question or observer with
 * a ref) is dropped from memory; agent_find() loads it again from the
 * store when a command names it.  So memory and every walk over the
 * in-memory agents stay proportional to what is live, not to history.
 */
static void
unload_fired(uv_timer_t *t)
{
	struct agent	*a, *next;
	uint64_t	 now = now_ms(), keep;

	keep = (uint64_t)agent_cfg->limits.keep_ended * 1000;
	for (a = agent_all; a != NULL; a = next) {
		next = a->next;
		if (agent_is_live(a) || a->refs != 1 || a->run != NULL ||
		    a->followups != NULL || a->ended_ms == 0 ||
		    now - a->ended_ms < keep ||
		    (a->card_timer != NULL &&
		    uv_is_active((uv_handle_t *)a->card_timer)))
			continue;
		log_debug("agent %lld: unloaded (ended, idle)", (long long)a->id);
		agent_unlink(a);
		agent_free_timers(a);
		agent_unref(a);
	}
	metrics_set(m_loaded, (double)agent_loaded_count());
}

static void
unload_start(const struct config *c)
{
	uint64_t	 every = (uint64_t)c->limits.keep_ended * 1000 / 2;

	if (every < 1000)
		every = 1000;
	if (every > 60 * 1000)
		every = 60 * 1000;
	if (unload_timer == NULL) {
		unload_timer = xcalloc(1, sizeof *unload_timer);
		uv_timer_init(loop_uv(), unload_timer);
		uv_unref((uv_handle_t *)unload_timer);
	}
	uv_timer_start(unload_timer, unload_fired, every, every);
	if (m_loaded == NULL)
		m_loaded = metrics_gauge("switchboard_agents_loaded", "",
		    "Subagents in memory: live, or ended recently");
}

/* ---- start, recovery, shutdown ------------------------------------------- */

void
agent_configure(const struct config *c, const char *socket_path)
{
	char	 buf[4096];
	size_t	 len = sizeof buf;

	agent_cfg = c;
	/*
	 * Once, before any worktree job: the names already made keep their
	 * prefix, so a reload keeps the old one for local worktrees.
	 */
	if (c->cluster.daemon_id != NULL &&
	    strcmp(worktree_instance(), c->cluster.daemon_id) != 0 &&
	    worktree_set_instance(c->cluster.daemon_id) < 0)
		log_warnx("cluster.daemon_id \"%s\" is not valid; ignored",
		    c->cluster.daemon_id);
	free(agent_sock);
	agent_sock = xstrdup(socket_path);
	/*
	 * What agents run as $SWITCHBOARD_BIN: the small switchboard-agent
	 * beside us when it is there (a call costs ~1 ms instead of ~16 ms),
	 * else this binary, which understands `agent …` too.
	 */
	free(agent_client_exe);
	agent_client_exe = NULL;
	if (uv_exepath(buf, &len) == 0) {
		char	*slash = strrchr(buf, '/'), *small;

		if (slash != NULL) {
			small = xasprintf("%.*s/switchboard-agent",
			    (int)(slash - buf), buf);
			if (access(small, X_OK) == 0)
				agent_client_exe = small;
			else
				free(small);
		}
		if (agent_client_exe == NULL)
			agent_client_exe = xstrdup(buf);
	} else
		agent_client_exe = xstrdup("switchboard");
	if (sweep_timer == NULL && c->git.retention > 0) {
		uint64_t every = (uint64_t)c->git.retention * 1000 / 4;

		/* Sweep a few times per retention period, at most hourly. */
		if (every > 3600 * 1000)
			every = 3600 * 1000;
		if (every < 1000)
			every = 1000;
		sweep_timer = xcalloc(1, sizeof *sweep_timer);
		uv_timer_init(loop_uv(), sweep_timer);
		uv_timer_start(sweep_timer, sweep_fired, 0, every);
		uv_unref((uv_handle_t *)sweep_timer);
	}
	agent_metrics_init();
	unload_start(c);
	conversation_set_keep(c->limits.keep_conversations);
}

static void	reconcile_worktrees(void);
static void	start_warm_pools(void);

/* Does a turn of this agent kind outlive its daemon (runner reattach)? */
static int
can_reattach(const char *agent_name)
{
	const struct cfg_agent	*ca = config_agent(agent_cfg, agent_name);
	const struct runner_ops	*ro;

	return ca != NULL && ca->runner != NULL &&
	    (ro = runner_lookup(ca->runner)) != NULL && ro->reattach != NULL;
}

/*
 * After a restart: agent id's turn, left running by the daemon before, is
 * followed to its end by its runner as if this daemon had started it; its
 * result comes as usual.  -1: it cannot be (its conversation, repo or kind
 * is gone), and it is reported interrupted instead.
 */
static int
reattach(int64_t id)
{
	const struct cfg_agent	*ca;
	struct agent		*a;
	struct run_spec		 spec = { 0 };
	struct run_hooks	 hooks;
	struct ws_req		 ws = { 0 };
	char			*message;
	int64_t			 ran_s;
	int			 timeout;

	/* Loaded as ended (agent_load knows no live state): it is not yet. */
	if ((a = agent_load(id)) == NULL || a->runner->reattach == NULL ||
	    (ca = config_agent(agent_cfg, a->name)) == NULL)
		return -1;
	a->state = AGENT_RUNNING;
	a->ended_ms = 0;
	a->ended_wall = 0;
	agent_run_hooks(a, &hooks);
	agent_ws_req(a, &ws, &message);
	spec.agent_id = a->id;
	spec.agent = ca;
	spec.conversation_id = a->conv->id;
	spec.ws = &ws;
	agent_ref(a);		/* the run's, dropped when it ends */
	a->run = a->runner->reattach(&spec, &hooks);
	free(message);
	a->started_ms = a->turn_ms = now_ms();
	/* Its timeout counts from its start, not from the restart. */
	timeout = ca->timeout > 0 ? ca->timeout : agent_cfg->limits.agent_timeout;
	a->wall_budget = 0;
	if (ca->max_wall_time > 0 && (timeout <= 0 ||
	    ca->max_wall_time < timeout))
		timeout = a->wall_budget = ca->max_wall_time;
	ran_s = a->started_wall > 0 ? (agent_wall_ms() - a->started_wall) /
	    1000 : 0;
	if (timeout > 0)
		agent_arm_timeout(a, timeout - (int)(ran_s < timeout ? ran_s :
		    timeout));
	log_info("agent %lld: re-attaching to its running turn",
	    (long long)id);
	return 0;
}

void
agent_recover(void)
{
	sqlite3_stmt	*st;
	struct {
		int64_t	 id, conv;
		int	 pid, card, attach;
		char	*branch;
	} *v = NULL;
	size_t		 n = 0, i;
	struct conversation *c;
	char		 key[32], *text;

	st = store_stmt("SELECT id, conversation_id, pid, branch, card_key IS"
	    " NOT NULL, status, agent_name FROM agents WHERE status IN"
	    " ('queued', 'preparing', 'running', 'finishing')");
	while (sqlite3_step(st) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n].id = sqlite3_column_int64(st, 0);
		v[n].conv = sqlite3_column_int64(st, 1);
		v[n].pid = sqlite3_column_int(st, 2);
		v[n].branch = store_col_text(st, 3);
		v[n].card = sqlite3_column_int(st, 4);
		v[n].attach = strcmp((const char *)sqlite3_column_text(st, 5),
		    "running") == 0 && can_reattach((const char *)
		    sqlite3_column_text(st, 6));
		n++;
	}
	sqlite3_reset(st);

	/* Questions of those agents: their messages say they are over. */
	st = store_stmt("SELECT q.id, q.text, q.agent_id, c.adapter, c.channel,"
	    " c.thread FROM questions q JOIN agents a ON a.id = q.agent_id"
	    " JOIN conversations c ON c.id = a.conversation_id WHERE"
	    " q.status = 'open'");
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(key, sizeof key, "q%lld",
		    (long long)sqlite3_column_int64(st, 0));
		text = render_question_settled(sqlite3_column_int64(st, 0),
		    sqlite3_column_int64(st, 2),
		    (const char *)sqlite3_column_text(st, 1),
		    "cancelled: switchboard restarted", NULL, NULL);
		outbox_edit((const char *)sqlite3_column_text(st, 3),
		    (const char *)sqlite3_column_text(st, 4),
		    (const char *)sqlite3_column_text(st, 5), key, text, NULL,
		    key, 1);
		free(text);
	}
	sqlite3_reset(st);
	question_cancel_stale();

	for (i = 0; i < n; i++) {
		/* A turn still running in a pod goes on (k8s-attach.c). */
		if (v[i].attach && reattach(v[i].id) == 0) {
			free(v[i].branch);
			continue;
		}
		/*
		 * The status and its report commit together: a kill between
		 * them left an agent "interrupted" that no thread ever heard
		 * of (found by the soak harness).
		 */
		store_begin();
		/* Only the local runner leaves host processes behind. */
		runner_local.reap_orphan(v[i].pid, v[i].id,
		    agent_cfg->limits.kill_grace);
		st = store_stmt("UPDATE agents SET status = 'interrupted',"
		    " ended_at = ? WHERE id = ?");
		store_bind_int(st, 1, wall_s());
		store_bind_int(st, 2, v[i].id);
		sqlite3_step(st);
		sqlite3_reset(st);
		if ((c = conversation_by_id(v[i].conv)) != NULL) {
			/* No card yet (it was queued): nothing to edit. */
			if (v[i].card) {
				snprintf(key, sizeof key, "a%lld.card",
				    (long long)v[i].id);
				text = xasprintf("#%lld · interrupted · `%s`",
				    (long long)v[i].id,
				    v[i].branch != NULL ? v[i].branch : "-");
				outbox_edit(c->adapter, c->channel, c->thread,
				    key, text, NULL, NULL, 0);
				free(text);
			}
			conversation_say(c, "⚠️ #%lld was interrupted: switchboard"
			    " restarted while it ran. Its branch `%s` keeps what"
			    " it committed; `#%lld TEXT` starts a new turn.",
			    (long long)v[i].id,
			    v[i].branch != NULL ? v[i].branch : "-",
			    (long long)v[i].id);
		}
		if (store_commit() != 0)
			log_warnx("agent %lld: interruption not recorded",
			    (long long)v[i].id);
		log_info("agent %lld: reported interrupted", (long long)v[i].id);
		free(v[i].branch);
	}
	free(v);
	reconcile_worktrees();
	start_warm_pools();
}

/*
 * Hook for worktree_reconcile(): what the store says of agent id's
 * worktree at path.  Runs after the recovery above, so no agent of this
 * store is running.
 */
static int
worktree_known(int64_t id, const char *path, const char *branch, void *arg)
{
	sqlite3_stmt	*st;
	const char	*w;
	int		 k = WORKTREE_UNKNOWN;

	st = store_stmt("SELECT worktree, branch FROM agents WHERE id = ?");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		w = (const char *)sqlite3_column_text(st, path != NULL ? 0 : 1);
		if (w != NULL && strcmp(w, path != NULL ? path : branch) == 0)
			k = WORKTREE_UNLOCK;
	}
	sqlite3_reset(st);
	return k;
}

/*
 * Warm worktrees for agents run by the local runner (a pod checks out its
 * own): only if some agent kind runs locally.
 */
static void
start_warm_pools(void)
{
	const char	*r;
	size_t		 i;
	int		 local = 0;

	for (i = 0; i < agent_cfg->nagents; i++) {
		r = agent_cfg->agents[i].runner;
		if (r == NULL || strcmp(r, "local") == 0)
			local = 1;
	}
	for (i = 0; local && i < agent_cfg->nrepos; i++)
		warm_start(agent_cfg->repos[i].path, agent_cfg->repos[i].base,
		    agent_cfg->state_dir, agent_cfg->repos[i].warm);
}

/* Startup: worktrees made but never recorded go, interrupted ones unlock. */
static void
reconcile_worktrees(void)
{
	char	*cause = NULL;
	size_t	 i;

	for (i = 0; i < agent_cfg->nrepos; i++)
		if (worktree_reconcile(agent_cfg->repos[i].path,
		    agent_cfg->repos[i].base, agent_cfg->state_dir,
		    worktree_known, NULL, &cause) != 0) {
			log_warnx("worktree: reconcile %s: %s",
			    agent_cfg->repos[i].path, cause);
			free(cause);
			cause = NULL;
		}
}

int
agent_survivors_alive(void)
{
	return runner_survivors_alive();
}

void
agent_kill_survivors(void)
{
	runner_kill_survivors();
}

void
agent_shutdown(void)
{
	struct agent	*a;
	int		 detached = 0;

	agent_queue = NULL;
	warm_free_all();
	if (sweep_timer != NULL) {
		loop_close_free((uv_handle_t *)sweep_timer);
		sweep_timer = NULL;
	}
	if (unload_timer != NULL) {
		loop_close_free((uv_handle_t *)unload_timer);
		unload_timer = NULL;
	}
	while ((a = agent_all) != NULL) {
		agent_unlink(a);
		if (a->run != NULL && a->state == AGENT_RUNNING &&
		    a->end_reason == NULL && a->runner->detach != NULL) {
			detached = a->runner->detach(a->run);
			a->run = NULL;
			agent_unref(a);		/* its hooks' */
		}
		if (detached) {
			/*
			 * It goes on where it runs (a pod) and the next start
			 * re-attaches to it: still "running" in the store.
			 */
			detached = 0;
			agent_card_flush(a);
			conversation_say(a->conv, "#%lld keeps running in its "
			    "pod while switchboard restarts; its result comes "
			    "when it is back.", (long long)a->id);
			agent_free_timers(a);
			agent_unref(a);
			continue;
		}
		if (a->run != NULL) {
			log_info("agent %lld: terminating for shutdown",
			    (long long)a->id);
			/* Its hooks are never called now: drop their ref. */
			a->runner->abandon(a->run);
			a->run = NULL;
			agent_unref(a);
		}
		if (agent_is_live(a)) {
			a->state = AGENT_INTERRUPTED;
			a->ended_ms = now_ms();
			a->ended_wall = agent_wall_ms();
			agent_db_update(a);
			agent_card_flush(a);
			conversation_say(a->conv, "⚠️ #%lld was interrupted:"
			    " switchboard is shutting down. Its branch `%s` keeps"
			    " what it committed.", (long long)a->id,
			    a->branch != NULL ? a->branch : "-");
		}
		agent_free_timers(a);
		agent_unref(a);
	}
	free(agent_sock);
	agent_sock = NULL;
	free(agent_client_exe);
	agent_client_exe = NULL;
}
