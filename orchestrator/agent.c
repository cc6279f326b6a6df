#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/driver.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/render.h"
#include "orchestrator/worktree.h"
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

extern char **environ;

/* Seconds to wait for output after the process exited. */
#define AGENT_DRAIN_S	2

struct followup {
	char		*text;
	struct followup	*next;
};

struct agent {
	int			 refs;
	int64_t			 id;
	struct conversation	*conv;
	char			*name;
	const struct agent_driver *drv;
	char			*task;
	char			*prompt;	/* of the current turn */
	int			 turn;		/* 0 first, then follow-ups */
	char			*repo_path;
	char			*base;
	char			*branch;
	char			*worktree;
	char			 token[65];
	enum agent_state	 state;
	const char		*end_reason;	/* forced end: "timeout", "cancel",
						 * "budget" */
	char			*cancelled_by;
	char			*why;		/* agent_fail/agent_stop reason */
	int			 wall_budget;	/* timeout_timer is max_wall_time */
	void			*drv_data;
	void			(*drv_data_free)(void *);

	uv_process_t		*proc;
	uv_pipe_t		*in, *out, *err;
	int			 pid;
	int			 open_handles;	/* process + pipes not yet closed */
	int64_t			 exit_code;
	int			 term_signal;
	int			 cleaned;	/* worktree removed; no more turns */
	int			 kill_stage;	/* 0: stop signal sent, 1: SIGTERM */

	char			*ring;		/* output tail, circular */
	size_t			 ring_cap, ring_len, ring_pos;
	struct buf		 line;		/* partial stdout line for the driver */

	char			*steps[AGENT_STEPS];
	int			 nsteps;
	char			*summary;
	char			*session;
	char			*diffstat;
	char			**files;

	int64_t			 created_s;
	uint64_t		 started_ms;
	uint64_t		 ended_ms;
	uv_timer_t		*timeout_timer;
	uv_timer_t		*kill_timer;
	uv_timer_t		*card_timer;
	uint64_t		 card_last_ms;
	struct followup		*followups;

	struct agent		*next;		/* all agents */
	struct agent		*qnext;		/* run queue */
};

static const struct config	*cfg;
static char			*sock_path;
static char			*self_exe;
static struct agent		*agents;
static struct agent		*queue_head;
static struct metric		*m_started, *m_live;

#define AGENT_MAX_OBSERVERS	4
static struct {
	agent_end_fn	 fn;
	void		*arg;
} end_observers[AGENT_MAX_OBSERVERS];
static int			 n_end_observers;

static void	schedule(void);
static struct agent *agent_load(int64_t);
static void	turn_start(struct agent *);
static void	turn_finished(struct agent *);
static void	card_flush(struct agent *);

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
const char *agent_summary(const struct agent *a) { return a->summary; }

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
const char *agent_socket_path(void) { return sock_path; }
const char *agent_state_dir(void) { return cfg->state_dir; }

const struct cfg_agent *
agent_config(const struct agent *a)
{
	return config_agent(cfg, a->name);
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
	free(a);
}

void
agent_unref(struct agent *a)
{
	/* Freed on the next turn: callers up the stack may still hold it. */
	if (--a->refs == 0)
		loop_defer(agent_free, a);
}

static void
db_update(struct agent *a)
{
	sqlite3_stmt	*st;

	st = store_stmt("UPDATE agents SET status = ?, branch = ?,"
	    " worktree = ?, pid = ?, session_id = ?, exit_code = ?,"
	    " summary = ?, started_at = ?, ended_at = ? WHERE id = ?");
	store_bind_text(st, 1, agent_state_name(a->state));
	store_bind_text(st, 2, a->branch);
	store_bind_text(st, 3, a->worktree);
	store_bind_int(st, 4, a->pid);
	store_bind_text(st, 5, a->session);
	store_bind_int(st, 6, a->exit_code);
	store_bind_text(st, 7, a->summary);
	store_bind_int(st, 8, a->started_ms != 0 ? wall_s() : 0);
	store_bind_int(st, 9, agent_is_live(a) ? 0 : wall_s());
	store_bind_int(st, 10, a->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("agent %lld: update failed: %s", (long long)a->id,
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

static void
set_state(struct agent *a, enum agent_state s)
{
	if (a->state == s)
		return;
	log_info("agent %lld: %s → %s", (long long)a->id,
	    agent_state_name(a->state), agent_state_name(s));
	a->state = s;
	db_update(a);
	metrics_set(m_live, (double)agent_live_count());
	agent_touch(a);
}

struct agent *
agent_find(int64_t id)
{
	struct agent	*a;

	for (a = agents; a != NULL; a = a->next)
		if (a->id == id)
			return a;
	return agent_load(id);
}

struct agent *
agent_by_token(const char *token)
{
	struct agent	*a;

	if (token == NULL)
		return NULL;
	for (a = agents; a != NULL; a = a->next)
		if (agent_is_live(a) && ct_equal(a->token, strlen(a->token),
		    token, strlen(token)))
			return a;
	return NULL;
}

int
agent_list(const struct conversation *c, struct agent **out, int n)
{
	struct agent	*a;
	int		 count = 0, i, j;

	for (a = agents; a != NULL; a = a->next) {
		if (a->conv != c)
			continue;
		if (count < n)
			out[count] = a;
		count++;
	}
	/* Newest first in the list; callers want id order. */
	for (i = 0, j = (count < n ? count : n) - 1; i < j; i++, j--) {
		struct agent *t = out[i];
		out[i] = out[j];
		out[j] = t;
	}
	return count;
}

int
agent_list_all(struct agent **out, int n)
{
	struct agent	*a;
	int		 count = 0;

	for (a = agents; a != NULL; a = a->next) {
		if (!agent_is_live(a))
			continue;
		if (count < n)
			out[count] = a;
		count++;
	}
	return count;
}

size_t
agent_live_count(void)
{
	struct agent	*a;
	size_t		 n = 0;

	for (a = agents; a != NULL; a = a->next)
		n += agent_is_live(a);
	return n;
}

/* ---- the status card --------------------------------------------------- */

static void
card_key(const struct agent *a, char *buf, size_t len)
{
	snprintf(buf, len, "a%lld.card", (long long)a->id);
}

static char *
card_text(struct agent *a)
{
	struct render_card	 c = { 0 };
	const char		*steps[AGENT_STEPS + 1] = { 0 };
	struct question		*qs[8];
	char			 qbuf[32];
	uint64_t		 end;
	int			 i, nq, k;

	c.id = a->id;
	c.name = a->name;
	c.state = agent_state_name(a->state);
	c.branch = a->branch;
	end = a->ended_ms != 0 ? a->ended_ms : now_ms();
	c.elapsed_s = a->started_ms != 0 ?
	    (int64_t)((end - a->started_ms) / 1000) : 0;
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

static void
card_flush(struct agent *a)
{
	char	 key[32], *text;

	card_key(a, key, sizeof key);
	text = card_text(a);
	outbox_edit(a->conv->adapter, a->conv->channel, a->conv->thread, key,
	    text, NULL, NULL, 0);
	free(text);
	a->card_last_ms = now_ms();
}

static void
card_timer_fired(uv_timer_t *t)
{
	card_flush(t->data);
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
	interval = (uint64_t)cfg->render.card_interval_ms;
	if (!agent_is_live(a)) {
		uv_timer_stop(a->card_timer);
		card_flush(a);
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
		db_update(a);
	}
}

/* ---- output ring --------------------------------------------------------- */

static void
ring_add(struct agent *a, const char *p, size_t n)
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
static char *
ring_tail(struct agent *a, size_t max)
{
	char	*s, *p;
	size_t	 start, n = a->ring_len, i;

	s = xmalloc(n + 1);
	start = (a->ring_pos + a->ring_cap - n) % (a->ring_cap ? a->ring_cap : 1);
	for (i = 0; i < n; i++)
		s[i] = a->ring[(start + i) % a->ring_cap];
	s[n] = '\0';
	p = s;
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

/* ---- process ----------------------------------------------------------- */

static void
handle_closed(uv_handle_t *h)
{
	struct agent	*a = h->data;

	free(h);
	if (--a->open_handles == 0)
		turn_finished(a);
	agent_unref(a);
}

static void
close_handle(struct agent *a, uv_handle_t *h)
{
	if (h != NULL && !uv_is_closing(h))
		uv_close(h, handle_closed);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char	 slab[65536];

	(void)h; (void)hint;
	buf->base = slab;
	buf->len = sizeof slab;
}

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
		buf_add(&a->line, p, (size_t)(nl - p));
		a->drv->on_line(a, a->line.data, a->line.len);
		buf_reset(&a->line);
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct agent	*a = s->data;

	if (nread < 0) {
		if (nread != UV_EOF)
			log_warnx("agent %lld: read: %s", (long long)a->id,
			    uv_strerror((int)nread));
		close_handle(a, (uv_handle_t *)s);
		if ((uv_pipe_t *)s == a->out)
			a->out = NULL;
		else
			a->err = NULL;
		return;
	}
	ring_add(a, buf->base, (size_t)nread);
	if ((uv_pipe_t *)s == a->out && a->drv->on_line != NULL)
		feed_lines(a, buf->base, (size_t)nread);
}

static void
kill_group(struct agent *a, int sig)
{
	/* The child leads its own session (UV_PROCESS_DETACHED). */
	if (a->pid > 0 && kill(-a->pid, sig) == -1 && errno != ESRCH)
		log_warn("agent %lld: kill(-%d, %d)", (long long)a->id, a->pid,
		    sig);
}

/*
 * The escalation after a driver's polite stop signal: SIGTERM (if the first
 * signal was something gentler, e.g. SIGINT for Claude Code, which then
 * ends its turn cleanly), then SIGKILL, one kill_grace apart.
 */
static void
kill_timer_fired(uv_timer_t *t)
{
	struct agent	*a = t->data;

	if (a->kill_stage == 0 && a->drv->stop_signal != 0 &&
	    a->drv->stop_signal != SIGTERM) {
		a->kill_stage = 1;
		log_warnx("agent %lld: still alive after signal %d, sending"
		    " SIGTERM", (long long)a->id, a->drv->stop_signal);
		kill_group(a, SIGTERM);
		uv_timer_start(a->kill_timer, kill_timer_fired,
		    (uint64_t)cfg->limits.kill_grace * 1000, 0);
		return;
	}
	log_warnx("agent %lld: still alive after SIGTERM, sending SIGKILL",
	    (long long)a->id);
	kill_group(a, SIGKILL);
}

static void
terminate(struct agent *a, const char *reason)
{
	if (a->end_reason == NULL)
		a->end_reason = reason;
	if (a->proc == NULL)
		return;
	a->kill_stage = 0;
	kill_group(a, a->drv->stop_signal != 0 ? a->drv->stop_signal :
	    SIGTERM);
	uv_timer_start(a->kill_timer, kill_timer_fired,
	    (uint64_t)cfg->limits.kill_grace * 1000, 0);
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

/*
 * The child is gone but its stdout/stderr are still open: a grandchild in
 * a session of its own holds them.  Its output is not ours to wait for;
 * close the pipes so the turn can settle.
 */
static void
drain_timer_fired(uv_timer_t *t)
{
	struct agent	*a = t->data;

	if (a->out == NULL && a->err == NULL)
		return;
	log_warnx("agent %lld: output still open %d s after the process"
	    " exited (a detached child holds it); closing", (long long)a->id,
	    AGENT_DRAIN_S);
	if (a->out != NULL) {
		close_handle(a, (uv_handle_t *)a->out);
		a->out = NULL;
	}
	if (a->err != NULL) {
		close_handle(a, (uv_handle_t *)a->err);
		a->err = NULL;
	}
}

static void
exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct agent	*a = p->data;

	a->exit_code = status;
	a->term_signal = sig;
	log_info("agent %lld: process %d exited (status %lld, signal %d)",
	    (long long)a->id, a->pid, (long long)status, sig);
	/* Stragglers in its group (background jobs) end with the agent. */
	kill_group(a, SIGTERM);
	a->pid = 0;
	uv_timer_stop(a->timeout_timer);
	uv_timer_stop(a->kill_timer);
	close_handle(a, (uv_handle_t *)p);
	a->proc = NULL;
	if (a->in != NULL) {
		close_handle(a, (uv_handle_t *)a->in);
		a->in = NULL;
	}
	if (a->out != NULL || a->err != NULL)
		uv_timer_start(a->kill_timer, drain_timer_fired,
		    AGENT_DRAIN_S * 1000, 0);
}

/* Does entry (n = length of its name) name or hold this secret? */
static int
env_holds(const char *entry, size_t n, const char *ref, const char *value)
{
	if (ref != NULL && strncmp(ref, "env:", 4) == 0 &&
	    strlen(ref + 4) == n && strncmp(ref + 4, entry, n) == 0)
		return 1;
	return value != NULL && *value != '\0' && strcmp(entry + n + 1,
	    value) == 0;
}

/*
 * The bridge's secrets are never handed to a child: variables the config
 * names in an env: reference (enabled adapter or not), any variable holding
 * a resolved secret's value, and our own SWITCHBOARD_* settings.
 */
static int
env_is_secret(const char *entry)
{
	const char	*eq = strchr(entry, '=');
	const char	*secrets[5], *refs[5];
	size_t		 i, n;

	if (eq == NULL)
		return 1;
	if (strncmp(entry, "SWITCHBOARD_", 12) == 0)
		return 1;
	refs[0] = cfg->slack.app_token_ref;
	refs[1] = cfg->slack.bot_token_ref;
	refs[2] = cfg->slack.signing_secret_ref;
	refs[3] = cfg->matrix.access_token_ref;
	refs[4] = cfg->matrix.password_ref;
	n = (size_t)(eq - entry);
	for (i = 0; i < nitems(refs); i++)
		if (refs[i] != NULL && strncmp(refs[i], "env:", 4) == 0 &&
		    strlen(refs[i] + 4) == n && strncmp(refs[i] + 4, entry, n) == 0)
			return 1;
	secrets[0] = cfg->slack.app_token;
	secrets[1] = cfg->slack.bot_token;
	secrets[2] = cfg->slack.signing_secret;
	secrets[3] = cfg->matrix.access_token;
	secrets[4] = cfg->matrix.password;
	for (i = 0; i < nitems(secrets); i++)
		if (secrets[i] != NULL && *secrets[i] != '\0' &&
		    strcmp(eq + 1, secrets[i]) == 0)
			return 1;
	/* Webhook signing secrets and forge tokens are secrets too. */
	for (i = 0; i < cfg->nwebhooks; i++)
		if (env_holds(entry, n, cfg->webhooks[i].secret_ref,
		    cfg->webhooks[i].secret) || env_holds(entry, n,
		    cfg->webhooks[i].github.token_ref,
		    cfg->webhooks[i].github.token))
			return 1;
	return 0;
}

static char **
child_env(struct agent *a)
{
	char	**env;
	size_t	  n = 0, k = 0, i;

	while (environ[n] != NULL)
		n++;
	env = xcalloc(n + 5, sizeof *env);
	for (i = 0; i < n; i++)
		if (!env_is_secret(environ[i]))
			env[k++] = xstrdup(environ[i]);
	env[k++] = xasprintf("SWITCHBOARD_SOCKET=%s", sock_path);
	env[k++] = xasprintf("SWITCHBOARD_AGENT_TOKEN=%s", a->token);
	env[k++] = xasprintf("SWITCHBOARD_AGENT_ID=%lld", (long long)a->id);
	env[k++] = xasprintf("SWITCHBOARD_BIN=%s", self_exe);
	env[k] = NULL;
	return env;
}

static void
spawn(struct agent *a)
{
	const struct cfg_agent	*ca = config_agent(cfg, a->name);
	uv_process_options_t	 opts = { 0 };
	uv_stdio_container_t	 stdio[3];
	char			**argv = NULL, **env = NULL, *cause = NULL;
	int			 r, timeout;

	if (ca == NULL) {
		cause = xasprintf("agent '%s' is no longer configured", a->name);
		goto fail;
	}
	if ((argv = a->drv->argv(a, ca, a->prompt, a->turn > 0, &cause)) == NULL)
		goto fail;
	env = child_env(a);
	uv_timer_stop(a->kill_timer);	/* a previous turn's drain timer */

	a->proc = xcalloc(1, sizeof *a->proc);
	a->out = xcalloc(1, sizeof *a->out);
	a->err = xcalloc(1, sizeof *a->err);
	uv_pipe_init(loop_uv(), a->out, 0);
	uv_pipe_init(loop_uv(), a->err, 0);
	a->proc->data = a->out->data = a->err->data = a;
	if (a->drv->stdin_pipe) {
		a->in = xcalloc(1, sizeof *a->in);
		uv_pipe_init(loop_uv(), a->in, 0);
		a->in->data = a;
		stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
		stdio[0].data.stream = (uv_stream_t *)a->in;
	} else
		stdio[0].flags = UV_IGNORE;	/* libuv opens /dev/null */
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)a->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)a->err;
	opts.file = argv[0];
	opts.args = argv;
	opts.env = env;
	opts.cwd = a->worktree;
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio_count = 3;
	opts.stdio = stdio;
	opts.exit_cb = exit_cb;

	/* Handles to close (process + pipes), each holds a ref. */
	a->open_handles = a->in != NULL ? 4 : 3;
	a->refs += a->open_handles;
	if ((r = uv_spawn(loop_uv(), a->proc, &opts)) != 0) {
		cause = xasprintf("cannot start %s: %s", argv[0],
		    uv_strerror(r));
		a->exit_code = 127;
		a->end_reason = "spawn";
		ring_add(a, cause, strlen(cause));
		close_handle(a, (uv_handle_t *)a->proc);
		if (a->in != NULL)
			close_handle(a, (uv_handle_t *)a->in);
		close_handle(a, (uv_handle_t *)a->out);
		close_handle(a, (uv_handle_t *)a->err);
		a->proc = NULL;
		a->in = a->out = a->err = NULL;
		log_warnx("agent %lld: %s", (long long)a->id, cause);
		free(cause);
		driver_argv_free(argv);
		driver_argv_free(env);
		set_state(a, AGENT_RUNNING);
		return;		/* turn_finished runs when the handles close */
	}
	a->pid = a->proc->pid;
	uv_read_start((uv_stream_t *)a->out, alloc_cb, read_cb);
	uv_read_start((uv_stream_t *)a->err, alloc_cb, read_cb);
	timeout = ca->timeout > 0 ? ca->timeout : cfg->limits.agent_timeout;
	a->wall_budget = 0;
	if (ca->max_wall_time > 0 && (timeout <= 0 ||
	    ca->max_wall_time < timeout))
		timeout = a->wall_budget = ca->max_wall_time;
	if (timeout > 0)
		uv_timer_start(a->timeout_timer, timeout_fired,
		    (uint64_t)timeout * 1000, 0);
	if (a->started_ms == 0)
		a->started_ms = now_ms();
	log_info("agent %lld: started %s (pid %d) in %s", (long long)a->id,
	    argv[0], a->pid, a->worktree);
	driver_argv_free(argv);
	driver_argv_free(env);
	set_state(a, AGENT_RUNNING);
	return;
fail:
	log_warnx("agent %lld: %s", (long long)a->id, cause);
	ring_add(a, cause, strlen(cause));
	free(cause);
	driver_argv_free(argv);
	a->exit_code = 127;
	a->end_reason = "spawn";
	a->open_handles = 0;
	turn_finished(a);
}

/* ---- worktree work on the threadpool --------------------------------------- */

struct wt_job {
	uv_work_t	 work;
	struct agent	*agent;
	int		 finishing;	/* 0 = add, 1 = commit + diffstat */
	/* inputs: copies, the agent is not touched off the loop */
	char		*repo_path, *base, *state_dir, *task, *worktree, *branch;
	char		*git_name, *git_email, *message;
	int64_t		 id;
	/* outputs */
	int		 rc;
	char		*out_branch, *out_path, *cause, *diffstat;
	char		**files;
};

static void
wt_job_free(struct wt_job *j)
{
	free(j->repo_path); free(j->base); free(j->state_dir); free(j->task);
	free(j->worktree); free(j->branch); free(j->git_name);
	free(j->git_email); free(j->message); free(j->out_branch);
	free(j->out_path); free(j->cause); free(j->diffstat);
	if (j->files != NULL) {
		size_t i;
		for (i = 0; j->files[i] != NULL; i++)
			free(j->files[i]);
		free(j->files);
	}
	free(j);
}

static void
wt_work(uv_work_t *w)
{
	struct wt_job	*j = w->data;
	int		 committed = 0;
	char		*cause = NULL;

	if (!j->finishing) {
		j->rc = worktree_add(j->repo_path, j->base, j->state_dir,
		    j->id, j->task, &j->out_branch, &j->out_path, &j->cause);
		return;
	}
	if (j->finishing == 2) {
		/* cleanup #n: the directory goes, the branch stays */
		j->rc = worktree_remove(j->repo_path, j->id, &j->cause);
		return;
	}
	/*
	 * Between turns the worktree is unlocked: the retention sweep may
	 * take it once the agent has been idle that long.
	 */
	if (worktree_unlock(j->repo_path, j->id, &cause) != 0) {
		log_debug("agent %lld: unlock: %s", (long long)j->id, cause);
		free(cause);
		cause = NULL;
	}
	if (worktree_commit_leftovers(j->worktree, j->git_name, j->git_email,
	    j->message, &committed, &cause) != 0) {
		j->rc = -1;
		j->cause = cause;
		return;
	}
	{
		struct worktree_stat	 ws = { 0 };
		size_t			 n = 0, total = 0;

		if (worktree_diffstat(j->repo_path, j->base, j->branch, 10, &ws,
		    &cause) != 0) {
			j->cause = cause;	/* a missing stat is not fatal */
			return;
		}
		j->diffstat = ws.text;
		if (worktree_changed_files(j->worktree, j->base, 20, &j->files,
		    &n, &total, &cause) != 0) {
			j->cause = cause;
			j->files = NULL;
			return;
		}
		/* NULL-terminated for the card renderer. */
		j->files = xrealloc(j->files, (n + 1) * sizeof *j->files);
		j->files[n] = NULL;
	}
}

static void
wt_after(uv_work_t *w, int status)
{
	struct wt_job	*j = w->data;
	struct agent	*a = j->agent;
	char		 key[32], *text;

	if (j->finishing != 2 && loop_stopping()) {
		/*
		 * agent_shutdown settled the agent (interrupted) and closed its
		 * timers while this ran on the threadpool: starting the child
		 * or settling the turn now would use them.  Keep the record.
		 */
		if (!j->finishing && j->rc == 0) {
			free(a->branch);
			free(a->worktree);
			a->branch = j->out_branch;
			a->worktree = j->out_path;
			j->out_branch = j->out_path = NULL;
			db_update(a);
		}
		wt_job_free(j);
		agent_unref(a);
		return;
	}
	if (j->finishing == 2) {
		if (j->rc != 0)
			conversation_say(a->conv, "Could not remove the worktree"
			    " of #%lld: %s", (long long)a->id, j->cause);
		else {
			conversation_say(a->conv, "Removed the worktree of #%lld;"
			    " its branch `%s` stays.", (long long)a->id,
			    a->branch);
			free(a->worktree);
			a->worktree = NULL;
			a->cleaned = 1;
			db_update(a);
		}
	} else if (!j->finishing) {
		if (j->rc != 0 || a->end_reason != NULL) {
			if (j->rc != 0) {
				log_warnx("agent %lld: worktree: %s",
				    (long long)a->id, j->cause);
				ring_add(a, j->cause, strlen(j->cause));
				a->exit_code = 1;
				a->end_reason = "worktree";
			} else {
				/*
				 * Cancelled while it was made: it exists now,
				 * and a later turn could not make it again.
				 */
				a->branch = j->out_branch;
				a->worktree = j->out_path;
				j->out_branch = j->out_path = NULL;
				db_update(a);
			}
			a->open_handles = 0;
			turn_finished(a);
		} else {
			a->branch = j->out_branch;
			a->worktree = j->out_path;
			j->out_branch = j->out_path = NULL;
			db_update(a);
			card_key(a, key, sizeof key);
			text = xasprintf("Started #%lld %s on `%s` in repo %s",
			    (long long)a->id, a->name, a->branch,
			    a->conv->repo);
			outbox_post(a->conv->adapter, a->conv->channel,
			    a->conv->thread, NULL, NULL, text, NULL, NULL);
			free(text);
			spawn(a);
		}
	} else {
		if (j->rc != 0)
			log_warnx("agent %lld: committing leftovers: %s",
			    (long long)a->id, j->cause);
		else if (j->cause != NULL)
			log_warnx("agent %lld: diff stat: %s",
			    (long long)a->id, j->cause);
		free(a->diffstat);
		a->diffstat = j->diffstat;
		j->diffstat = NULL;
		if (j->files != NULL) {
			size_t i;
			for (i = 0; a->files != NULL && a->files[i] != NULL; i++)
				free(a->files[i]);
			free(a->files);
			a->files = j->files;
			j->files = NULL;
		}
		turn_finished(a);
	}
	wt_job_free(j);
	agent_unref(a);
}

static void
wt_queue(struct agent *a, int finishing)
{
	struct wt_job	*j;

	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->agent = a;
	agent_ref(a);
	j->finishing = finishing;
	j->id = a->id;
	j->repo_path = xstrdup(a->repo_path);
	j->base = xstrdup(a->base);
	j->state_dir = xstrdup(cfg->state_dir);
	j->task = xstrdup(a->task);
	j->worktree = a->worktree != NULL ? xstrdup(a->worktree) : NULL;
	j->branch = a->branch != NULL ? xstrdup(a->branch) : NULL;
	j->git_name = xstrdup(cfg->git.name);
	j->git_email = xstrdup(cfg->git.email);
	j->message = render_oneline(a->prompt, 60);
	{
		char *m = xasprintf("switchboard #%lld: %s", (long long)a->id,
		    j->message);
		free(j->message);
		j->message = m;
	}
	uv_queue_work(loop_uv(), &j->work, wt_work, wt_after);
}

/* ---- turns ------------------------------------------------------------- */

static void
turn_start(struct agent *a)
{
	a->end_reason = NULL;
	free(a->why);
	a->why = NULL;
	a->exit_code = 0;
	a->term_signal = 0;
	a->ended_ms = 0;
	if (a->worktree == NULL) {
		set_state(a, AGENT_PREPARING);
		wt_queue(a, 0);
	} else if (access(a->worktree, F_OK) == -1) {
		/* The retention sweep removed it while the agent was idle. */
		a->cleaned = 1;
		a->end_reason = "worktree";
		ring_add(a, "its worktree was cleaned up; start a new agent",
		    46);
		free(a->worktree);
		a->worktree = NULL;
		a->state = AGENT_FINISHING;
		a->open_handles = 0;
		turn_finished(a);
	} else {
		set_state(a, AGENT_PREPARING);
		spawn(a);
	}
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
		set_state(a, AGENT_FINISHING);
		wt_queue(a, 1);
		return;
	}
	if (a->line.len > 0 && a->drv->on_line != NULL) {
		a->drv->on_line(a, a->line.data, a->line.len);
		buf_reset(&a->line);
	}
	a->ended_ms = now_ms();
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
		tail = ring_tail(a, 1500);
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
	set_state(a, end);
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
		set_state(a, AGENT_QUEUED);
		a->qnext = NULL;
		{
			struct agent **pp = &queue_head;
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

	for (a = agents; a != NULL; a = a->next)
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
	for (pp = &queue_head; (a = *pp) != NULL;) {
		if (busy_in(NULL) >= cfg->limits.max_agents)
			return;
		if (busy_in(a->conv) >= cfg->limits.max_agents_per_conversation) {
			pp = &a->qnext;
			continue;
		}
		*pp = a->qnext;
		a->qnext = NULL;
		turn_start(a);
	}
}

static int
queue_position(const struct agent *a)
{
	const struct agent	*q;
	int			 n = 0;

	for (q = queue_head; q != NULL && q != a; q = q->qnext)
		n++;
	return n;
}

/* A new in-memory agent on the agents list (one ref: the list's). */
static struct agent *
agent_alloc(int64_t id, struct conversation *c, const char *agent_name,
    const struct agent_driver *drv, const char *task,
    const struct cfg_repo *cr, const unsigned char rnd[32])
{
	struct agent	*a;

	a = xcalloc(1, sizeof *a);
	a->refs = 1;	/* the agents list */
	a->id = id;
	a->conv = c;
	a->name = xstrdup(agent_name);
	a->drv = drv;
	a->task = xstrdup(task);
	a->prompt = xstrdup(task);
	a->repo_path = xstrdup(cr->path);
	a->base = xstrdup(cr->base);
	hex_encode(rnd, 32, a->token);
	a->created_s = wall_s();
	a->ring_cap = (size_t)cfg->limits.output_tail;
	a->ring = xmalloc(a->ring_cap ? a->ring_cap : 1);
	a->timeout_timer = xcalloc(1, sizeof *a->timeout_timer);
	a->kill_timer = xcalloc(1, sizeof *a->kill_timer);
	a->card_timer = xcalloc(1, sizeof *a->card_timer);
	uv_timer_init(loop_uv(), a->timeout_timer);
	uv_timer_init(loop_uv(), a->kill_timer);
	uv_timer_init(loop_uv(), a->card_timer);
	a->timeout_timer->data = a->kill_timer->data = a->card_timer->data = a;
	a->next = agents;
	agents = a;
	return a;
}

/*
 * An agent of an earlier run, which has ended (a restart reports live ones
 * interrupted first): loaded on demand, so that `#N TEXT` (a new turn in
 * the same worktree, resuming the driver's session), `diff #N` and
 * `cleanup #N` keep working across restarts.  NULL if there is none or its
 * repo or driver is no longer configured.
 */
static struct agent *
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

	if (cfg == NULL || id <= 0 || uv_random(NULL, NULL, rnd, sizeof rnd,
	    0, NULL) != 0)
		return NULL;
	st = store_stmt("SELECT conversation_id, agent_name, driver, task,"
	    " repo, branch, worktree, session_id, status, summary, exit_code"
	    " FROM agents WHERE id = ?");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return NULL;
	}
	status = (const char *)sqlite3_column_text(st, 8);
	if ((c = conversation_by_id(sqlite3_column_int64(st, 0))) == NULL ||
	    (cr = config_repo(cfg, (const char *)sqlite3_column_text(st, 4)))
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
	a->turn = 1;	/* the next turn is a follow-up (resume) */
	sqlite3_reset(st);
	if (a->worktree != NULL && access(a->worktree, F_OK) == -1) {
		free(a->worktree);
		a->worktree = NULL;
		a->cleaned = 1;
	}
	log_info("agent %lld: loaded from the store (%s)", (long long)id,
	    agent_state_name(a->state));
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
	char			 key[32], *text;

	if ((ca = config_agent(cfg, agent_name)) == NULL) {
		*cause = xasprintf("no agent named '%s' is configured",
		    agent_name);
		return NULL;
	}
	if ((drv = driver_lookup(ca->driver)) == NULL) {
		*cause = xasprintf("agent '%s': driver '%s' is not available",
		    agent_name, ca->driver);
		return NULL;
	}
	if ((cr = config_repo(cfg, c->repo)) == NULL) {
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

	card_key(a, key, sizeof key);
	st = store_stmt("UPDATE agents SET card_key = ? WHERE id = ?");
	store_bind_text(st, 1, key);
	store_bind_int(st, 2, a->id);
	sqlite3_step(st);
	sqlite3_reset(st);
	text = card_text(a);
	outbox_post(c->adapter, c->channel, c->thread, NULL, key, text, NULL,
	    NULL);
	free(text);
	a->card_last_ms = now_ms();
	log_info("agent %lld: %s for conversation %lld by %s", (long long)a->id,
	    agent_name, (long long)c->id, by);

	for (pp = &queue_head; *pp != NULL; pp = &(*pp)->qnext)
		;
	*pp = a;
	schedule();
	if (a->state == AGENT_QUEUED) {
		conversation_say(c, "#%lld is queued, %d ahead (limits: %d"
		    " agents, %d per thread)", (long long)a->id,
		    queue_position(a), cfg->limits.max_agents,
		    cfg->limits.max_agents_per_conversation);
	}
	return a;
}

int
agent_cancel(struct agent *a, const char *by)
{
	struct agent	**pp;

	free(a->cancelled_by);
	a->cancelled_by = xstrdup(by);
	switch (a->state) {
	case AGENT_QUEUED:
		for (pp = &queue_head; *pp != NULL; pp = &(*pp)->qnext)
			if (*pp == a) {
				*pp = a->qnext;
				break;
			}
		a->end_reason = "cancel";
		a->open_handles = 0;
		a->state = AGENT_FINISHING;	/* no leftover work to commit */
		turn_finished(a);
		return 0;
	case AGENT_PREPARING:
	case AGENT_RUNNING:
		terminate(a, "cancel");
		return 0;
	case AGENT_FINISHING:
		return 0;
	default:
		return -1;
	}
}

static void
write_done(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

void
agent_followup(struct agent *a, const char *text, const char *by)
{
	struct followup	*f, **pp;
	uv_write_t	*w;
	uv_buf_t	 b;
	char		*line;

	log_info("agent %lld: follow-up from %s", (long long)a->id, by);
	if (a->cleaned) {
		conversation_say(a->conv, "#%lld's worktree was removed; its"
		    " branch `%s` keeps the work. Start a new agent with `new"
		    " TASK`.", (long long)a->id, a->branch != NULL ? a->branch :
		    "-");
		return;
	}
	if (a->state == AGENT_RUNNING) {
		if (a->drv->followup_running != NULL &&
		    a->drv->followup_running(a, text) == 0)
			return;
		if (a->drv->followup_running == NULL && a->in != NULL) {
			/* command driver: one line on its stdin */
			line = xasprintf("%s\n", text);
			w = xcalloc(1, sizeof *w);
			w->data = line;
			b = uv_buf_init(line, (unsigned)strlen(line));
			if (uv_write(w, (uv_stream_t *)a->in, &b, 1,
			    write_done) == 0) {
				conversation_say(a->conv, "#%lld: passed on to"
				    " the running agent", (long long)a->id);
				return;
			}
			free(line);
			free(w);
		}
	}
	f = xcalloc(1, sizeof *f);
	f->text = xstrdup(text);
	for (pp = &a->followups; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = f;
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
		db_update(a);
		for (pp = NULL, a->qnext = NULL; ; ) {
			struct agent **qq = &queue_head;
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
	wt_queue(a, 2);
	return 0;
}

char *
agent_status_line(const struct agent *a)
{
	char	*el, *s;
	uint64_t end;

	end = a->ended_ms != 0 ? a->ended_ms : now_ms();
	el = render_elapsed(a->started_ms != 0 ?
	    (int64_t)((end - a->started_ms) / 1000) : 0);
	s = xasprintf("#%lld %s · %s · %s · `%s`%s%s", (long long)a->id,
	    a->name, agent_state_name(a->state), el,
	    a->branch != NULL ? a->branch : "-",
	    a->nsteps > 0 ? " · " : "",
	    a->nsteps > 0 ? a->steps[a->nsteps - 1] : "");
	free(el);
	return s;
}

char *
agent_diff_text(const struct agent *a)
{
	struct worktree_stat	 ws = { 0 };
	char			*text, *cause = NULL;

	if (a->branch == NULL)
		return xasprintf("#%lld has no branch yet", (long long)a->id);
	/* Cheap enough for a command: one diff of a branch against base. */
	if (worktree_diffstat(a->repo_path, a->base, a->branch, 30, &ws,
	    &cause) != 0) {
		char *s = xasprintf("#%lld: no diff stat: %s", (long long)a->id,
		    cause);
		free(cause);
		return s;
	}
	text = ws.text;
	{
		char *s = xasprintf("#%lld `%s` against %s (committed"
		    " changes):\n%s", (long long)a->id, a->branch, a->base,
		    text != NULL && *text != '\0' ? text : "no changes");
		free(text);
		return s;
	}
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

	if (cfg->git.retention <= 0 || cfg->nrepos == 0)
		return;
	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->repos = xcalloc(cfg->nrepos, sizeof *j->repos);
	for (i = 0; i < cfg->nrepos; i++)
		j->repos[j->nrepos++] = xstrdup(cfg->repos[i].path);
	j->state_dir = xstrdup(cfg->state_dir);
	j->retention = cfg->git.retention;
	uv_queue_work(loop_uv(), &j->work, sweep_work, sweep_after);
}

/* ---- start, recovery, shutdown ------------------------------------------- */

void
agent_configure(const struct config *c, const char *socket_path)
{
	char	 buf[4096];
	size_t	 len = sizeof buf;

	cfg = c;
	free(sock_path);
	sock_path = xstrdup(socket_path);
	free(self_exe);
	self_exe = uv_exepath(buf, &len) == 0 ? xstrdup(buf) :
	    xstrdup("switchboard");
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
	if (m_started == NULL) {
		m_started = metrics_counter("switchboard_agents_started_total",
		    "", "Subagents started");
		m_live = metrics_gauge("switchboard_agents_live", "",
		    "Subagents queued or running");
	}
}

/* Is pid still one of our agents?  Its environment says so. */
static int
pid_is_agent(int pid, int64_t id)
{
	char	 path[64], want[64], *buf = NULL;
	FILE	*fp;
	size_t	 n, cap = 0, len = 0;
	int	 found = 0;

	if (pid <= 0 || kill(pid, 0) == -1)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	snprintf(want, sizeof want, "SWITCHBOARD_AGENT_ID=%lld", (long long)id);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	do {
		cap += 4096;
		buf = xrealloc(buf, cap + 1);
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0 && len < (1 << 20));
	fclose(fp);
	for (n = 0; n < len; n += strnlen(buf + n, len - n) + 1)
		if (strncmp(buf + n, want, strlen(want) + 1) == 0 ||
		    (strlen(buf + n) == strlen(want) &&
		    strcmp(buf + n, want) == 0))
			found = 1;
	free(buf);
	return found;
}

static void	agent_reconcile_worktrees(void);

void
agent_recover(void)
{
	sqlite3_stmt	*st;
	struct {
		int64_t	 id, conv;
		int	 pid;
		char	*branch;
	} *v = NULL;
	size_t		 n = 0, i;
	struct conversation *c;
	char		 key[32], *text;

	st = store_stmt("SELECT id, conversation_id, pid, branch FROM agents"
	    " WHERE status IN ('queued', 'preparing', 'running', 'finishing')");
	while (sqlite3_step(st) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n].id = sqlite3_column_int64(st, 0);
		v[n].conv = sqlite3_column_int64(st, 1);
		v[n].pid = sqlite3_column_int(st, 2);
		v[n].branch = store_col_text(st, 3);
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
		/*
		 * The status and its report commit together: a kill between
		 * them left an agent "interrupted" that no thread ever heard
		 * of (found by tests/e2e/soak.py).
		 */
		store_begin();
		if (pid_is_agent(v[i].pid, v[i].id)) {
			log_info("agent %lld: orphaned process %d, terminating",
			    (long long)v[i].id, v[i].pid);
			kill(-v[i].pid, SIGTERM);
		}
		st = store_stmt("UPDATE agents SET status = 'interrupted',"
		    " ended_at = ? WHERE id = ?");
		store_bind_int(st, 1, wall_s());
		store_bind_int(st, 2, v[i].id);
		sqlite3_step(st);
		sqlite3_reset(st);
		if ((c = conversation_by_id(v[i].conv)) != NULL) {
			snprintf(key, sizeof key, "a%lld.card",
			    (long long)v[i].id);
			text = xasprintf("#%lld · interrupted · `%s`",
			    (long long)v[i].id,
			    v[i].branch != NULL ? v[i].branch : "-");
			outbox_edit(c->adapter, c->channel, c->thread, key,
			    text, NULL, NULL, 0);
			free(text);
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
	agent_reconcile_worktrees();
}

/*
 * Hook for worktree_reconcile() (issue "nothing lost", item 6): what the
 * store says of agent id's worktree at path.  Runs after the recovery
 * above, so no agent of this store is running.
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

/* Startup: worktrees made but never recorded go, interrupted ones unlock. */
static void
agent_reconcile_worktrees(void)
{
	char	*cause = NULL;
	size_t	 i;

	for (i = 0; i < cfg->nrepos; i++)
		if (worktree_reconcile(cfg->repos[i].path, cfg->repos[i].base,
		    cfg->state_dir, worktree_known, NULL, &cause) != 0) {
			log_warnx("worktree: reconcile %s: %s",
			    cfg->repos[i].path, cause);
			free(cause);
			cause = NULL;
		}
}

static void
close_timer(uv_timer_t **t)
{
	if (*t != NULL) {
		loop_close_free((uv_handle_t *)*t);
		*t = NULL;
	}
}

/* Process groups sent SIGTERM at shutdown, for agent_kill_survivors(). */
static int	 survivors[256];
static size_t	 nsurvivors;

int
agent_survivors_alive(void)
{
	size_t	 i;

	for (i = 0; i < nsurvivors; i++)
		if (survivors[i] > 0 && kill(-survivors[i], 0) == 0)
			return 1;
	return 0;
}

void
agent_kill_survivors(void)
{
	size_t	 i;

	for (i = 0; i < nsurvivors; i++) {
		if (survivors[i] > 0 && kill(-survivors[i], 0) == 0) {
			log_warnx("agent process group %d ignored SIGTERM;"
			    " sending SIGKILL", survivors[i]);
			kill(-survivors[i], SIGKILL);
		}
	}
	nsurvivors = 0;
}

void
agent_shutdown(void)
{
	struct agent	*a;

	queue_head = NULL;
	if (sweep_timer != NULL) {
		loop_close_free((uv_handle_t *)sweep_timer);
		sweep_timer = NULL;
	}
	while ((a = agents) != NULL) {
		agents = a->next;
		if (a->proc != NULL) {
			log_info("agent %lld: terminating for shutdown",
			    (long long)a->id);
			kill_group(a, SIGTERM);
			if (nsurvivors < nitems(survivors))
				survivors[nsurvivors++] = a->pid;
		}
		if (agent_is_live(a)) {
			a->state = AGENT_INTERRUPTED;
			a->ended_ms = now_ms();
			db_update(a);
			card_flush(a);
			conversation_say(a->conv, "⚠️ #%lld was interrupted:"
			    " switchboard is shutting down. Its branch `%s` keeps"
			    " what it committed.", (long long)a->id,
			    a->branch != NULL ? a->branch : "-");
		}
		/* Process handles close with the loop; their refs free a. */
		if (a->proc != NULL) {
			a->proc->data = a;
			close_handle(a, (uv_handle_t *)a->proc);
			a->proc = NULL;
		}
		if (a->in != NULL)
			close_handle(a, (uv_handle_t *)a->in);
		if (a->out != NULL)
			close_handle(a, (uv_handle_t *)a->out);
		if (a->err != NULL)
			close_handle(a, (uv_handle_t *)a->err);
		a->in = a->out = a->err = NULL;
		a->open_handles = -1000;	/* never finish a turn now */
		close_timer(&a->timeout_timer);
		close_timer(&a->kill_timer);
		close_timer(&a->card_timer);
		agent_unref(a);
	}
	free(sock_path);
	sock_path = NULL;
	free(self_exe);
	self_exe = NULL;
}
