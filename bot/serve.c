#include "bot/serve.h"
#include "bot/ctl.h"
#include "bot/http.h"
#include "bot/httpd.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"
#include "adapters/adapter.h"
#include "config/config.h"
#include "orchestrator/agent.h"
#include "orchestrator/agentsock.h"
#include "orchestrator/chat.h"
#include "orchestrator/conversation.h"
#include "orchestrator/outbox.h"
#include "orchestrator/question.h"
#include "orchestrator/sandbox.h"
#include "orchestrator/webhook.h"
#include "orchestrator/worktree.h"

#include <sys/prctl.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define SERVE_FLUSH_MS	2000	/* of the shutdown grace, for the outbox */

static const char *const adapter_names[] = { "console", "slack", "matrix" };

struct serve {
	struct config		*cfg;
	struct config		*retired[16];	/* old configs after SIGHUP */
	int			 nretired;
	struct ctl_server	*ctl;
	struct ctl_server	*agents;
	struct adapter		*adapters[3];
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

static int
adapter_enabled(const struct config *c, const char *name)
{
	if (strcmp(name, "console") == 0)
		return c->console.enabled;
	if (strcmp(name, "slack") == 0)
		return c->slack.enabled;
	return c->matrix.enabled;
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
		ctl_close(sv.agents);
	sv.ctl = sv.agents = NULL;
	agent_kill_survivors();
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

static void
on_reload(void *arg)
{
	struct config	*nc = NULL;
	char		*cause = NULL, *diff;
	int		 rc;

	rc = config_load(sv.cfg->path, &nc, &cause);
	secrets_scrub(rc == 0 ? nc : sv.cfg);
	if (rc != 0) {
		log_warnx("reload: %s; keeping the running configuration",
		    cause);
		free(cause);
		return;
	}
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
	webhook_configure(sv.cfg);
	{
		char *p = serve_agent_path(sv.cfg->state_dir);
		agent_configure(sv.cfg, p);
		sandbox_configure(sv.cfg, p);
		free(p);
	}
	log_info("reload: access, routes, webhooks, repos, agents, limits and"
	    " log level applied");
}

/* ---- start --------------------------------------------------------------- */

static int
start_adapters(char **cause)
{
	const struct adapter_ops	*ops;
	size_t				 i;

	for (i = 0; i < nitems(adapter_names); i++) {
		if (!adapter_enabled(sv.cfg, adapter_names[i]))
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
	char	*cause = NULL, *path = NULL;
	int	 rc = 1, i, tightened;

	memset(&sv, 0, sizeof sv);
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
	if (state_dir_secure(sv.cfg->state_dir, &tightened, &cause) != 0) {
		fprintf(stderr, "switchboard: %s\n", cause);
		free(cause);
		config_free(sv.cfg);
		secrets_free();
		return 1;
	}
	if (log_init(sv.cfg->log_level, sv.cfg->log_json, sv.cfg->log_file)
	    != 0) {
		fprintf(stderr, "switchboard: cannot open log file %s\n",
		    sv.cfg->log_file);
		config_free(sv.cfg);
		return 1;
	}
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

	if (*sv.cfg->http_listen != '\0' &&
	    httpd_start(sv.cfg->http_listen, sv.cfg->http_max_body,
	    &cause) != 0)
		goto fail;

	chat_configure(sv.cfg);
	agent_configure(sv.cfg, path);
	sandbox_configure(sv.cfg, path);
	webhook_configure(sv.cfg);
	free(path);
	path = NULL;
	if (start_adapters(&cause) != 0)
		goto fail;
	agent_recover();
	outbox_init();
	store_seen_expire();

	loop_on_shutdown(on_shutdown, NULL);
	loop_on_reload(on_reload, NULL);
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
	for (i = 0; i < sv.nretired; i++)
		config_free(sv.retired[i]);
	config_free(sv.cfg);
	config_set_env_lookup(NULL);
	secrets_free();
	log_close();
	return rc;
}
