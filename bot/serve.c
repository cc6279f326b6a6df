#include "bot/serve.h"
#include "bot/ctl.h"
#include "bot/http.h"
#include "bot/httpd.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/metrics.h"
#include "bot/sdnotify.h"
#include "bot/store.h"
#include "bot/util.h"
#include "adapters/adapter.h"
#include "config/config.h"
#include "orchestrator/agent.h"
#include "orchestrator/driver.h"
#include "orchestrator/agentnet.h"
#include "orchestrator/agentsock.h"
#include "orchestrator/brain.h"
#include "orchestrator/chat.h"
#include "orchestrator/conversation.h"
#include "orchestrator/merge.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/results.h"
#include "orchestrator/sandbox.h"
#include "orchestrator/webhook.h"
#include "orchestrator/worktree.h"

#include <sys/prctl.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define SERVE_FLUSH_MS	2000	/* of the shutdown grace, for the outbox */

static const char *const adapter_names[] = { "console", "slack", "matrix",
    "web" };

struct serve {
	struct config		*cfg;
	struct config		*retired[16];	/* old configs after SIGHUP */
	int			 nretired;
	struct ctl_server	*ctl;
	struct ctl_server	*agents;
	struct adapter		*adapters[nitems(adapter_names)];
	uv_timer_t		 flush_timer;
	uint64_t		 flush_start;
	uint64_t		 started_ms;
	int64_t			 started_s;
};

static struct serve	 sv;

/* ---- hardening ------------------------------------------------------------ */

/*
 * Secrets the config reads from env: references, kept here after they are
 * wiped from the process environment, so that a SIGHUP reload (which
 * resolves env: again, through secrets_lookup) still finds them.  No
 * setenv() on reload: libuv's threadpool may be in getenv() meanwhile.
 */
static struct {
	char	*name;
	char	*value;
} stash[32];
static size_t	nstash;
static uintptr_t env_lo, env_hi;	/* the initial environment block */

static void
stash_ref(const char *ref)
{
	const char	*name, *v;
	size_t		 i;

	if (ref == NULL || strncmp(ref, "env:", 4) != 0)
		return;
	name = ref + 4;
	for (i = 0; i < nstash; i++)
		if (strcmp(stash[i].name, name) == 0)
			return;
	if ((v = getenv(name)) == NULL || nstash == nitems(stash))
		return;
	stash[nstash].name = xstrdup(name);
	stash[nstash++].value = xstrdup(v);
}

/*
 * Copies every env: secret, then wipes it from the environment: the value
 * in place first, because /proc/PID/environ shows the environment block the
 * process started with, which unsetenv() alone leaves untouched.
 */
static void
secrets_scrub(const struct config *c)
{
	char	*v;
	size_t	 i;

	stash_ref(c->slack.app_token_ref);
	stash_ref(c->slack.bot_token_ref);
	stash_ref(c->slack.signing_secret_ref);
	stash_ref(c->matrix.access_token_ref);
	stash_ref(c->matrix.password_ref);
	for (i = 0; i < c->nwebhooks; i++) {
		stash_ref(c->webhooks[i].secret_ref);
		stash_ref(c->webhooks[i].github.token_ref);
	}
	/* The block the kernel shows, as it was before any setenv(). */
	if (env_lo == 0)
		for (i = 0; environ[i] != NULL; i++) {
			uintptr_t a = (uintptr_t)environ[i];

			if (env_lo == 0 || a < env_lo)
				env_lo = a;
			if (a + strlen(environ[i]) + 1 > env_hi)
				env_hi = a + strlen(environ[i]) + 1;
		}
	for (i = 0; i < nstash; i++) {
		if ((v = getenv(stash[i].name)) == NULL)
			continue;
		v -= strlen(stash[i].name) + 1;		/* "NAME=value" */
		unsetenv(stash[i].name);
		/*
		 * Only there: a string setenv() made is glibc's, which may
		 * still compare it, and the kernel never shows it.
		 */
		if ((uintptr_t)v >= env_lo && (uintptr_t)v < env_hi)
			explicit_bzero(v, strlen(v));
	}
}

/* config_load's env: lookup after the scrub: our copies, then getenv. */
static const char *
secrets_lookup(const char *name)
{
	size_t	 i;

	for (i = 0; i < nstash; i++)
		if (strcmp(stash[i].name, name) == 0)
			return stash[i].value;
	return getenv(name);
}

static void
secrets_free(void)
{
	size_t	 i;

	for (i = 0; i < nstash; i++) {
		explicit_bzero(stash[i].value, strlen(stash[i].value));
		free(stash[i].value);
		free(stash[i].name);
	}
	nstash = 0;
}

static int
mkdir_parents(const char *path)
{
	char	*p = xstrdup(path), *s;
	int	 rc = 0;

	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (mkdir(p, 0700) == -1 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* Group/other bits off every entry of dir (not recursively); how many. */
static int
tighten_entries(const char *dir, int depth)
{
	struct dirent	*e;
	struct stat	 st;
	DIR		*d;
	char		*p;
	int		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && !S_ISLNK(st.st_mode)) {
			if ((st.st_mode & 077) != 0 &&
			    chmod(p, st.st_mode & 07700) == 0)
				n++;
			/* mcp/ holds tokens; worktrees/ holds repo files. */
			if (S_ISDIR(st.st_mode) && depth == 0 &&
			    strcmp(e->d_name, "mcp") == 0)
				n += tighten_entries(p, 1);
		}
		free(p);
	}
	closedir(d);
	return n;
}

/*
 * The state dir holds the database (tokens, transcripts), the sockets and
 * the agents' MCP configs: it must be ours and closed to everyone else.
 * Another user's directory is refused, not taken over: whoever owns it can
 * read or swap what we would write there.
 */
static int
state_dir_secure(const char *dir, int *tightened, char **cause)
{
	struct stat	 st;

	*tightened = 0;
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir_parents(dir) == -1 ||
		    stat(dir, &st) == -1) {
			*cause = xasprintf("state dir %s: %s", dir,
			    strerror(errno));
			return -1;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		*cause = xasprintf("state dir %s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		*cause = xasprintf("state dir %s belongs to uid %u, not to this"
		    " user (uid %u): refusing to start, since its owner could"
		    " read or replace the database and sockets", dir,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		if (chmod(dir, 0700) == -1) {
			*cause = xasprintf("chmod 0700 %s: %s", dir,
			    strerror(errno));
			return -1;
		}
		(*tightened)++;
	}
	*tightened += tighten_entries(dir, 0);
	return 0;
}

/* Agents may not use the control socket (with sandboxes they cannot reach it). */
static int64_t
ctl_admit(pid_t pid, uid_t uid, void *arg)
{
	struct agent	*v[256];
	int		 n, i;

	n = agent_list_all(v, (int)nitems(v));
	for (i = 0; i < n && i < (int)nitems(v); i++)
		if (agent_pid(v[i]) > 0 && sandbox_owns(agent_pid(v[i]), pid)) {
			log_warnx("control socket: pid %d belongs to agent"
			    " %lld; refused", (int)pid,
			    (long long)agent_id(v[i]));
			return -1;
		}
	return 0;
}

char *
serve_ctl_path(const char *state_dir)
{
	return xasprintf("%s/switchboard.sock", state_dir);
}

char *
serve_agent_path(const char *state_dir)
{
	return xasprintf("%s/agent.sock", state_dir);
}

/* ---- control socket ---------------------------------------------------- */

static json_t *
agent_json(const struct agent *a)
{
	struct conversation	*c = agent_conversation(a);

	return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s, s:s}",
	    "id", (json_int_t)agent_id(a), "name", agent_name(a),
	    "state", agent_state_name(agent_state(a)),
	    "branch", agent_branch(a), "adapter", c->adapter,
	    "channel", c->channel, "thread", c->thread);
}

static void
ctl_status(struct ctl_req *req, const json_t *msg, void *arg)
{
	struct agent	*v[256];
	json_t		*ads, *ags;
	size_t		 i;
	int		 n, k;

	ads = json_object();
	for (i = 0; i < nitems(adapter_names); i++)
		if (sv.adapters[i] != NULL)
			json_object_set_new(ads, adapter_names[i],
			    json_string(sv.adapters[i]->state));
	ags = json_array();
	n = agent_list_all(v, (int)nitems(v));
	for (k = 0; k < n && k < (int)nitems(v); k++)
		json_array_append_new(ags, agent_json(v[k]));
	ctl_reply(req, json_pack("{s:I, s:o, s:I, s:o, s:I}",
	    "uptime_s", (json_int_t)((now_ms() - sv.started_ms) / 1000),
	    "adapters", ads,
	    "conversations", (json_int_t)conversation_count(),
	    "agents", ags,
	    "outbox_pending", (json_int_t)outbox_pending()));
}

static void
ctl_cancel(struct ctl_req *req, const json_t *msg, void *arg)
{
	json_t		*id = json_object_get(msg, "agent");
	struct agent	*a;

	if (!json_is_integer(id) ||
	    (a = agent_find(json_integer_value(id))) == NULL) {
		ctl_reply_error(req, "no such agent");
		return;
	}
	if (agent_cancel(a, "the command line") != 0) {
		ctl_reply_error(req, "#%lld has already ended",
		    (long long)agent_id(a));
		return;
	}
	ctl_reply(req, NULL);
}

/* ---- metrics gathered on demand ------------------------------------------ */

/*
 * Worktree disk use is a walk of every file, too slow for a scrape and for
 * the loop: a scrape starts a threadpool walk (at most one every
 * WT_SCAN_MS) and shows what the previous one found.
 */
#define WT_SCAN_MS	5000

static struct {
	uv_work_t	 work;
	int		 busy;
	uint64_t	 last_ms;
	char		*dir;
	double		 bytes;
	long		 count;
	double		 new_bytes;
	long		 new_count;
} wt_scan;

static int
wt_scan_file(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	/* Agents' worktrees; a warm one (warm-TAG) is nobody's yet. */
	if (flag == FTW_D && ftw->level == 1 &&
	    strncmp(path + ftw->base, "warm-", 5) != 0)
		wt_scan.new_count++;
	if (flag != FTW_NS)
		wt_scan.new_bytes += (double)st->st_blocks * 512;
	return 0;
}

static void
wt_scan_run(uv_work_t *w)
{
	wt_scan.new_bytes = 0;
	wt_scan.new_count = 0;
	nftw(wt_scan.dir, wt_scan_file, 16, FTW_PHYS);
}

static void
wt_scan_done(uv_work_t *w, int status)
{
	wt_scan.busy = 0;
	if (status != 0)
		return;
	wt_scan.bytes = wt_scan.new_bytes;
	wt_scan.count = wt_scan.new_count;
}

static void
wt_scan_start(void)
{
	if (wt_scan.busy || loop_stopping() ||
	    (wt_scan.last_ms != 0 && now_ms() - wt_scan.last_ms < WT_SCAN_MS))
		return;
	wt_scan.busy = 1;
	wt_scan.last_ms = now_ms();
	uv_queue_work(loop_uv(), &wt_scan.work, wt_scan_run, wt_scan_done);
}

static void
serve_collect(void *arg)
{
	struct agent	*v[1024];
	sqlite3_stmt	*st;
	char		*labels;
	int		 n, i, byst[AGENT_INTERRUPTED + 1] = { 0 };
	size_t		 k;

	n = agent_list_all(v, (int)nitems(v));
	for (i = 0; i < n && i < (int)nitems(v); i++)
		if (agent_state(v[i]) <= AGENT_INTERRUPTED)
			byst[agent_state(v[i])]++;
	for (i = AGENT_QUEUED; i <= AGENT_FINISHING; i++) {
		labels = xasprintf("state=\"%s\"", agent_state_name(i));
		metrics_set(metrics_gauge("switchboard_agents_by_state", labels,
		    "Live agents by state"), byst[i]);
		free(labels);
	}
	/* Every enabled adapter has a series, so an empty one reads 0. */
	for (k = 0; k < nitems(adapter_names); k++) {
		if (sv.adapters[k] == NULL)
			continue;
		labels = xasprintf("adapter=\"%s\"", adapter_names[k]);
		metrics_set(metrics_gauge("switchboard_outbox_depth", labels,
		    "Outgoing chat operations not yet sent"), 0);
		free(labels);
	}
	st = store_stmt("SELECT adapter, count(*) FROM outbox WHERE status ="
	    " 'pending' GROUP BY adapter");
	while (sqlite3_step(st) == SQLITE_ROW) {
		labels = xasprintf("adapter=\"%s\"",
		    (const char *)sqlite3_column_text(st, 0));
		metrics_set(metrics_gauge("switchboard_outbox_depth", labels,
		    "Outgoing chat operations not yet sent"),
		    sqlite3_column_int(st, 1));
		free(labels);
	}
	sqlite3_reset(st);
	st = store_stmt("SELECT count(*) FROM questions WHERE status = 'open'");
	metrics_set(metrics_gauge("switchboard_questions_open", "",
	    "Questions waiting for an answer"),
	    sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0);
	sqlite3_reset(st);
	metrics_set(metrics_gauge("switchboard_worktrees", "",
	    "Agent worktrees on disk, as of the previous scrape"),
	    wt_scan.count);
	metrics_set(metrics_gauge("switchboard_worktrees_bytes", "",
	    "Disk space used by worktrees, warm ones included, as of the"
	    " previous scrape"),
	    wt_scan.bytes);
	wt_scan_start();
}

static void
serve_metrics_start(void)
{
	free(wt_scan.dir);
	wt_scan.dir = xasprintf("%s/worktrees", sv.cfg->state_dir);
	metrics_on_collect(metrics_collect_process, NULL);
	metrics_on_collect(serve_collect, NULL);
	wt_scan_start();
}

/* ---- shutdown and reload ------------------------------------------------- */

static void
close_all(void)
{
	size_t	 i;

	outbox_shutdown();
	for (i = 0; i < nitems(sv.adapters); i++) {
		if (sv.adapters[i] != NULL) {
			sv.adapters[i]->ops->destroy(sv.adapters[i]);
			sv.adapters[i] = NULL;
		}
	}
	if (sv.ctl != NULL)
		ctl_close(sv.ctl);
	if (sv.agents != NULL)
		ctl_close(sv.agents);	/* its TLS connections too */
	agentnet_stop();
	sv.ctl = sv.agents = NULL;
	agent_kill_survivors();
	brain_shutdown();	/* cancels model calls before http goes */
	httpd_stop();
	http_shutdown();
	lws_shutdown();
}

static void
flush_tick(uv_timer_t *t)
{
	size_t	 pending = outbox_pending();

	/*
	 * Wait for what the adapters hold, and a little for what is queued
	 * and for agents to end on SIGTERM (the rest get SIGKILL).
	 */
	if (outbox_inflight() == 0 && ((pending == 0 &&
	    !agent_survivors_alive()) ||
	    now_ms() - sv.flush_start >= SERVE_FLUSH_MS)) {
		if (pending > 0)
			log_info("shutdown: %zu outgoing message(s) stay in the"
			    " outbox for the next start", pending);
		uv_timer_stop(t);
		uv_close((uv_handle_t *)t, NULL);
		close_all();
	}
}

static void
on_shutdown(void *arg)
{
	size_t	 i;

	sdnotify("STOPPING=1");
	sdnotify_watchdog_stop();
	/* Intake first: no new work while we wind down. */
	for (i = 0; i < nitems(sv.adapters); i++)
		if (sv.adapters[i] != NULL)
			sv.adapters[i]->ops->stop(sv.adapters[i]);
	if (sv.ctl != NULL)
		ctl_close(sv.ctl);
	sv.ctl = NULL;
	agent_shutdown();
	sv.flush_start = now_ms();
	uv_timer_init(loop_uv(), &sv.flush_timer);
	uv_timer_start(&sv.flush_timer, flush_tick, 0, 50);
}

/* Logs each line of a config_check() report. */
static void
serve_log_lines(char *text)
{
	char	*line, *next;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		log_warnx("config: %s", line);
	}
}

static void
on_reload(void *arg)
{
	struct config	*nc = NULL;
	char		*cause = NULL, *diff;
	int		 rc;

	/*
	 * MONOTONIC_USEC lets systemd tell this reload from an older one;
	 * uv_hrtime() is CLOCK_MONOTONIC on Linux.
	 */
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)(uv_hrtime() / 1000));
	rc = config_load(sv.cfg->path, &nc, &cause);
	secrets_scrub(rc == 0 ? nc : sv.cfg);
	if (rc != 0) {
		log_warnx("reload: %s; keeping the running configuration",
		    cause);
		sdnotify("READY=1\nSTATUS=reload failed: %.200s", cause);
		free(cause);
		return;
	}
	if (config_check(nc, &cause, &diff) > 0) {
		serve_log_lines(cause);
		log_warnx("reload: keeping the running configuration");
		sdnotify("READY=1\nSTATUS=reload failed");
		free(cause);
		free(diff);
		config_free(nc);
		return;
	}
	serve_log_lines(diff);
	free(diff);
	if ((diff = config_reload_diff(sv.cfg, nc)) != NULL) {
		log_warnx("reload: changed but need a restart: %s", diff);
		free(diff);
	}
	config_keep_restart_keys(sv.cfg, nc);
	if (log_set_level(nc->log_level) == -1)
		log_warnx("reload: bad log level %s", nc->log_level);
	/*
	 * Modules hold the config by pointer (borrowed); the old one stays
	 * allocated until exit so nothing dangles.  Reloads are rare.
	 */
	if (sv.nretired == (int)nitems(sv.retired)) {
		log_warnx("reload: too many reloads without a restart");
		config_free(nc);
		return;
	}
	sv.retired[sv.nretired++] = sv.cfg;
	sv.cfg = nc;
	chat_configure(sv.cfg);
	brain_configure(sv.cfg);
	webhook_configure(sv.cfg);
	health_set_grace_ms((uint64_t)sv.cfg->http_health_grace * 1000);
	results_configure(sv.cfg);
	{
		char *p = serve_agent_path(sv.cfg->state_dir);
		agent_configure(sv.cfg, p);
		sandbox_configure(sv.cfg, p);
		free(p);
	}
	log_info("reload: access, routes, webhooks, repos, agents, limits and"
	    " log level applied");
	sdnotify("READY=1\nSTATUS=serving (reloaded)");
}

/* ---- start --------------------------------------------------------------- */

static int
start_adapters(char **cause)
{
	const struct adapter_ops	*ops;
	size_t				 i;

	for (i = 0; i < nitems(adapter_names); i++) {
		if (!config_adapter_enabled(sv.cfg, adapter_names[i]))
			continue;
		if ((ops = adapter_lookup(adapter_names[i])) == NULL) {
			*cause = xasprintf("adapter %s is not built in yet",
			    adapter_names[i]);
			return -1;
		}
		if ((sv.adapters[i] = ops->create(sv.cfg, cause)) == NULL)
			return -1;
		sv.adapters[i]->ops = ops;
		if (sv.adapters[i]->state == NULL)
			sv.adapters[i]->state = "starting";
		health_set(ops->name, sv.adapters[i]->state);
		outbox_register(ops->name, sv.adapters[i]);
	}
	for (i = 0; i < nitems(adapter_names); i++)
		if (sv.adapters[i] != NULL &&
		    sv.adapters[i]->ops->start(sv.adapters[i], cause) != 0)
			return -1;
	return 0;
}

int
serve_main(const char *config_path)
{
	char	*cause = NULL, *path = NULL, *errs = NULL, *warns = NULL;
	int	 rc = 1, i, tightened;

	memset(&sv, 0, sizeof sv);
	sdnotify_init();
	/*
	 * Everything we create (database, WAL, log, sockets, MCP configs,
	 * worktrees) is ours alone; and no process of our user that is not
	 * root can read our memory or /proc/PID/environ.
	 */
	umask(077);
#ifndef __SANITIZE_ADDRESS__
	/* (LeakSanitizer's tracer could not attach to a non-root daemon.) */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fprintf(stderr, "switchboard: prctl(PR_SET_DUMPABLE): %s\n",
		    strerror(errno));
#endif
	if (config_load(config_path, &sv.cfg, &cause) != 0) {
		fprintf(stderr, "switchboard: %s\n", cause);
		free(cause);
		return 1;
	}
	secrets_scrub(sv.cfg);
	config_set_env_lookup(secrets_lookup);
	/* What cannot work on this machine stops us here, not an hour later. */
	if (config_check(sv.cfg, &errs, &warns) > 0) {
		fprintf(stderr, "switchboard: %s\n", errs);
		free(errs);
		free(warns);
		config_free(sv.cfg);
		secrets_free();
		return 1;
	}
	/* Ours alone (0700), or refused when another user owns it. */
	if (state_dir_secure(sv.cfg->state_dir, &tightened, &cause) != 0 ||
	    config_prepare_dirs(sv.cfg, &cause) != 0) {
		/* (A log file inside a state dir not made yet works.) */
		fprintf(stderr, "switchboard: %s\n", cause);
		free(cause);
		free(warns);
		config_free(sv.cfg);
		secrets_free();
		return 1;
	}
	if (log_init(sv.cfg->log_level, sv.cfg->log_json, sv.cfg->log_file)
	    != 0) {
		fprintf(stderr, "switchboard: cannot open log file %s: %s\n",
		    sv.cfg->log_file, strerror(errno));
		free(warns);
		config_free(sv.cfg);
		secrets_free();
		return 1;
	}
	serve_log_lines(warns);
	free(warns);
	if (tightened > 0)
		log_info("state dir %s: closed %d file(s) or director(ies) to"
		    " group and others (mode 0700/0600)", sv.cfg->state_dir,
		    tightened);
	sv.started_ms = now_ms();
	sv.started_s = wall_s();
	if (loop_init() != 0) {
		cause = xstrdup("cannot initialise the event loop");
		goto fail;
	}
	if (store_open(sv.cfg->state_dir, &cause) != 0)
		goto fail;
	store_checkpoints_on(loop_uv(), sv.cfg->state_dir);
	worktree_git_init();
	if (http_init(loop_uv()) != 0) {
		cause = xstrdup("cannot initialise the HTTP client");
		goto fail;
	}

	/* Sockets before adapters: a second daemon must fail here, not later. */
	path = serve_ctl_path(sv.cfg->state_dir);
	if ((sv.ctl = ctl_listen(path, &cause)) == NULL)
		goto fail;
	free(path);
	path = serve_agent_path(sv.cfg->state_dir);
	if ((sv.agents = ctl_listen(path, &cause)) == NULL)
		goto fail;
	ctl_set_admit(sv.ctl, ctl_admit, NULL, CTL_MAX_CONNS);
	ctl_on(sv.ctl, "status", ctl_status, NULL);
	ctl_on(sv.ctl, "cancel", ctl_cancel, NULL);
	agentsock_init(sv.agents);
	if (*sv.cfg->agent_listener.listen != '\0' &&
	    agentnet_start(sv.agents, sv.cfg->agent_listener.listen,
	    sv.cfg->agent_listener.cert, sv.cfg->agent_listener.key,
	    &cause) != 0)
		goto fail;

	if (*sv.cfg->http_listen != '\0' &&
	    httpd_start(sv.cfg->http_listen, sv.cfg->http_max_body,
	    &cause) != 0)
		goto fail;

	chat_configure(sv.cfg);
	health_set_grace_ms((uint64_t)sv.cfg->http_health_grace * 1000);
	agent_configure(sv.cfg, path);
	sandbox_configure(sv.cfg, path);
	webhook_configure(sv.cfg);
	results_configure(sv.cfg);
	free(path);
	path = NULL;
	if (start_adapters(&cause) != 0)
		goto fail;
	agent_recover();
	brain_configure(sv.cfg);	/* after agents: it may re-run turns */
	driver_check_versions(sv.cfg);
	outbox_init();
	merge_recover();
	store_seen_expire();

	loop_on_shutdown(on_shutdown, NULL);
	loop_on_reload(on_reload, NULL);
	serve_metrics_start();
	sdnotify_watchdog_start(loop_uv());
	sdnotify("READY=1\nSTATUS=serving");
	log_info("switchboard serving (state %s%s%s)", sv.cfg->state_dir,
	    *sv.cfg->http_listen != '\0' ? ", http " : "",
	    sv.cfg->http_listen);
	rc = loop_run() == 0 ? 0 : 0;	/* a forced stop still exits cleanly */
	log_info("switchboard stopped");
	goto out;
fail:
	fprintf(stderr, "switchboard: %s\n", cause);
	if (sv.cfg->log_file != NULL)	/* stderr has it already */
		log_warnx("start failed: %s", cause);
	free(cause);
	rc = 1;
	if (loop_uv() != NULL)
		close_all();
out:
	free(path);
	question_free_all();
	conversation_free_all();
	loop_free();
	store_close();
	/*
	 * No git_libgit2_shutdown: it deletes libgit2's thread-local key while
	 * the libuv threadpool threads that ran worktree jobs still hold
	 * their error state, which then shows up as lost memory.  The process
	 * is exiting; the OS takes it all.
	 */
	metrics_reset();
	free(wt_scan.dir);
	wt_scan.dir = NULL;
	for (i = 0; i < sv.nretired; i++)
		config_free(sv.retired[i]);
	config_free(sv.cfg);
	config_set_env_lookup(NULL);
	secrets_free();
	log_close();
	return rc;
}
