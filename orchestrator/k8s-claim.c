/*
 * k8s-claim — mode "sandbox-claim" of the kubernetes runner: the turns of an
 * agent run in a sandbox of SIG Apps' agent-sandbox, claimed for the agent.
 *
 * One SandboxClaim (extensions.agents.x-k8s.io/v1alpha1) per agent, named
 * sb-[daemon-]N and labelled like the pods of mode "pod", from the kind's
 * SandboxTemplate (or warm pool).  A turn creates it, or finds it from an
 * earlier turn (409: a follow-up reuses the sandbox), watches it until its
 * Ready condition is True and status.sandbox.name is set, reads that
 * Sandbox (agents.x-k8s.io/v1alpha1) for its pod (the annotation
 * agents.x-k8s.io/pod-name of an adopted warm-pool pod, else the sandbox's
 * name), and runs the turn there through the exec API (k8s-exec.c).
 * The claim's lifecycle.shutdownTime (claim_ttl after the turn's start,
 * moved on by each follow-up with a merge patch) lets agent-sandbox delete
 * the sandbox of an agent nobody talks to any more.  A
 * sandbox not Ready within ready_timeout fails the turn in plain words, with
 * what the claim's condition said, and the claim is deleted.
 *
 * A sandbox's pod comes from its template, so there is no per-turn command,
 * volume or secret: everything the turn needs travels on the exec's stdin,
 * never in the URL (which audit logs keep) nor in the template — the
 * agent's token and the agent listener's CA (written to a 0700 temporary
 * directory), its SWITCHBOARD_* environment and argv (the task).  The exec's
 * command is only a loader that reads that script up to a marker line and
 * evaluates it.  The script does what the pod of mode "pod" does: clone the
 * branch, run the agent, commit its leftovers, push the branch back.
 *
 * Cancel: the exec's stdin gets its EOF (v5's close frame), which a watcher
 * in the script turns into SIGTERM for the agent; the script still pushes
 * the partial work and ends with the agent's status.  After the grace the
 * stream is dropped.  v4 cannot close stdin alone: the stream is closed,
 * which closes the command's stdin too, and the claim waits out the grace.  The claim is deleted then too, and by `cleanup #N`;
 * a later follow-up claims a new sandbox.  A daemon restart cannot take an
 * exec stream back: a running turn is interrupted (its sandbox stays).
 */
#include "orchestrator/k8s-run.h"
#include "bot/log.h"
#include "bot/util.h"
#include "config/config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLAIMS	"/apis/extensions.agents.x-k8s.io/v1alpha1/namespaces/%s/" \
		"sandboxclaims"
#define SANDBOXES "/apis/agents.x-k8s.io/v1alpha1/namespaces/%s/sandboxes"
#define END_MARK "#switchboard-end"

/* The exec's command: the script comes on stdin, up to END_MARK. */
static const char loader_sh[] =
"s=; e=; while IFS= read -r l; do "
"if [ \"$l\" = '" END_MARK "' ]; then e=1; break; fi; s=\"$s$l\n\"; done; "
"[ -n \"$e\" ] && eval \"$s\"";

/*
 * The turn, after the variables and `set -- argv`.  fd 3 is the exec's
 * stdin: its EOF (cancel) becomes SIGTERM for the agent.
 */
static const char turn_sh[] =
K8S_GIT_CREDS_SH
"g clone -q --single-branch --branch \"$SWITCHBOARD_BRANCH\" -- "
"\"$SWITCHBOARD_GIT_URL\" \"$SWITCHBOARD_WORKSPACE\" || "
"{ echo \"switchboard: cannot clone $SWITCHBOARD_BRANCH\" >&2; exit 1; }\n"
"cd \"$SWITCHBOARD_WORKSPACE\" || exit 1\n"
"exec 3<&0\n"
"\"$@\" </dev/null 3<&- &\n"
"p=$!\n"
"(while IFS= read -r _; do :; done; kill -TERM \"$p\") <&3 >/dev/null 2>&1 &\n"
"w=$!\n"
"exec 3<&-\n"
"trap 'kill -TERM \"$p\" 2>/dev/null' TERM\n"
"rc=0\n"
"wait \"$p\" || rc=$?\n"
"while kill -0 \"$p\" 2>/dev/null; do rc=0; wait \"$p\" || rc=$?; done\n"
"kill \"$w\" 2>/dev/null\n"
K8S_PUSH_BACK_SH;

/* 'v' for sh, newlines as "$N" so that no line of the script is a value's. */
static void
quote(struct buf *b, const char *v)
{
	buf_add(b, "'", 1);
	for (; *v != '\0'; v++) {
		if (*v == '\'')
			buf_add(b, "'\\''", 4);
		else if (*v == '\n')
			buf_add(b, "'\"$N\"'", 6);
		else
			buf_add(b, v, 1);
	}
	buf_add(b, "'", 1);
}

static void
export(struct buf *b, const char *k, const char *v)
{
	if (v == NULL)
		return;
	buf_printf(b, "export %s=", k);
	quote(b, v);
	buf_add(b, "\n", 1);
}

/* The script on the exec's stdin; it holds the token: bzero it after. */
static char *
script(const struct run_spec *spec, const struct cfg_kube *kc,
    const char *git_url)
{
	const struct ws_req	*ws = spec->ws;
	struct buf		 b = { 0 };
	const char		*tok, *eq;
	char			*const *e, *k;

	/* printf is a builtin: the token is on no process's argv. */
	buf_printf(&b, "N='\n'\numask 077\nd=$(mktemp -d) || exit 1\n"
	    "trap 'cd / && rm -rf \"$d\"' EXIT\nprintf '%%s' ");
	tok = krun_env(spec->env, "SWITCHBOARD_AGENT_TOKEN");
	quote(&b, tok != NULL ? tok : "");
	buf_printf(&b, " >\"$d/token\"\n"
	    "export SWITCHBOARD_AGENT_TOKEN_FILE=\"$d/token\"\n");
	if (kc->agent_ca != NULL) {
		buf_printf(&b, "printf '%%s' ");
		quote(&b, kc->agent_ca);
		buf_printf(&b, " >\"$d/ca.crt\"\n"
		    "export SWITCHBOARD_CA_FILE=\"$d/ca.crt\"\n");
	}
	for (e = spec->env; e != NULL && *e != NULL; e++) {
		if ((eq = strchr(*e, '=')) == NULL ||
		    strncmp(*e, "SWITCHBOARD_", 12) != 0 ||
		    strspn(*e, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
		    (size_t)(eq - *e) ||
		    strncmp(*e, "SWITCHBOARD_AGENT_TOKEN=", 24) == 0 ||
		    strncmp(*e, "SWITCHBOARD_SOCKET=", 19) == 0 ||
		    strncmp(*e, "SWITCHBOARD_BIN=", 16) == 0)
			continue;
		k = xstrndup(*e, (size_t)(eq - *e));
		export(&b, k, eq + 1);
		free(k);
	}
	export(&b, "SWITCHBOARD_URL", kc->agent_url);
	export(&b, "SWITCHBOARD_GIT_URL", git_url);
	export(&b, "SWITCHBOARD_BRANCH", ws->branch);
	export(&b, "SWITCHBOARD_COMMIT_MESSAGE", ws->message);
	/* The template mounts the secret; it may say where (its env). */
	if (kc->git_secret != NULL)
		buf_printf(&b, "export SWITCHBOARD_GIT_CREDENTIALS="
		    "\"${SWITCHBOARD_GIT_CREDENTIALS:-" K8S_GIT_DIR "}\"\n");
	export(&b, "GIT_AUTHOR_NAME", ws->git_name);
	export(&b, "GIT_COMMITTER_NAME", ws->git_name);
	export(&b, "GIT_AUTHOR_EMAIL", ws->git_email);
	export(&b, "GIT_COMMITTER_EMAIL", ws->git_email);
	buf_printf(&b, "export SWITCHBOARD_WORKSPACE=\"$d/ws\"\nset --");
	for (e = spec->argv; *e != NULL; e++) {
		buf_add(&b, " ", 1);
		quote(&b, *e);
	}
	buf_printf(&b, "\n%s" END_MARK "\n", turn_sh);
	return buf_steal(&b);
}

char *
krun_claim_name(const struct cfg_kube *kc, int64_t id)
{
	if (kc->daemon_id != NULL)
		return xasprintf("sb-%s-%lld", kc->daemon_id, (long long)id);
	return xasprintf("sb-%lld", (long long)id);
}

/*
 * Its lifecycle: agent-sandbox deletes it claim_ttl after this turn's
 * start, unless a later turn pushes that back.  NULL with claim_ttl 0.
 */
static json_t *
lifecycle(const struct cfg_kube *kc)
{
	char		 when[32];
	time_t		 t = time(NULL) + (time_t)kc->claim_ttl;
	struct tm	 tm;

	if (kc->claim_ttl <= 0)
		return NULL;
	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s, s:s}", "shutdownTime", when, "shutdownPolicy",
	    "Delete");
}

static void
renewed(long status, json_t *obj, const char *error, void *arg)
{
	char	*name = arg, *why;

	if (error != NULL || status != 200) {
		why = k8s_error(status, obj, error);
		log_warnx("kubernetes: renewing sandboxclaim %s: %s", name, why);
		free(why);
	}
	free(name);
}

/* A follow-up: the claim lives claim_ttl from now (lc, taken). */
static void
renew_with(struct run *r, json_t *lc)
{
	json_t	*patch;
	char	*path;

	patch = json_pack("{s:{s:o}}", "spec", "lifecycle", lc);
	path = xasprintf(CLAIMS "/%s", r->ns, r->name);
	k8s_on_cancel(k8s_call(r->k, "PATCH", path, patch, renewed,
	    xstrdup(r->name)), free);
	free(path);
	json_decref(patch);
}

/* ---- deleting it ------------------------------------------------------------ */

static void
deleted(long status, json_t *obj, const char *error, void *arg)
{
	char	*name = arg, *why;

	krun_n_deleting--;
	if (error != NULL || (status >= 300 && status != 404)) {
		why = k8s_error(status, obj, error);
		log_warnx("kubernetes: deleting sandboxclaim %s: %s", name, why);
		free(why);
	} else
		log_info("kubernetes: sandboxclaim %s deleted", name);
	free(name);
}

void
krun_claim_delete(struct k8s *k, const char *ns, const char *name)
{
	char	*path = xasprintf(CLAIMS "/%s", ns, name);

	krun_n_deleting++;
	k8s_on_cancel(k8s_call(k, "DELETE", path, NULL, deleted,
	    xstrdup(name)), free);
	free(path);
}

/* ---- the turn's exec -------------------------------------------------------- */

static void
exec_out(int stream, const char *p, size_t n, void *arg)
{
	struct run	*r = arg;

	r->exec_output = 1;
	r->hooks.output(r->hooks.arg, stream, p, n);
}

static void
linger_over(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (!r->settled)
		krun_settle(r);
}

static void
exec_done(int64_t status, const char *error, void *arg)
{
	struct run	*r = arg;

	r->exec = NULL;
	uv_timer_stop(r->log_timer);
	log_debug("agent %lld: exec in pod %s ended: %lld %s", (long long)r->id,
	    r->pod, (long long)status, error != NULL ? error : "");
	if (error == NULL)
		r->status = status;
	else if (r->deleting && r->stream_closed) {
		/*
		 * v4: the closed stream was the stop, and no status comes.
		 * The command is finishing (its stdin's EOF): give it the
		 * grace before the claim, and its sandbox, go.
		 */
		r->term_signal = SIGTERM;
		r->pod_done = 1;
		uv_timer_start(r->log_timer, linger_over,
		    (uint64_t)r->grace_s * 1000, 0);
		return;
	} else if (r->deleting)
		r->term_signal = SIGTERM;
	else if (!r->exec_output)
		r->error = xasprintf("the turn could not run in pod %s of "
		    "sandbox claim %s: %s%s", r->pod, r->name, error,
		    strncmp(error, "HS:", 3) == 0 ? " (the API server refused "
		    "the exec: may the daemon create pods/exec?)" : "");
	else {
		log_warnx("agent %lld: exec in pod %s: %s", (long long)r->id,
		    r->pod, error);
		r->term_signal = SIGKILL;
	}
	r->pod_done = 1;
	krun_settle(r);
}

static void
exec_start(struct run *r)
{
	static const struct k8s_exec_cb cb = { exec_out, exec_done };
	char	*argv[] = { "sh", "-c", (char *)loader_sh, NULL };

	log_info("agent %lld: running in pod %s/%s of sandbox claim %s",
	    (long long)r->id, r->ns, r->pod, r->name);
	r->started = 1;
	r->exec = k8s_exec_start(r->k, r->ns, r->pod, argv, r->script,
	    strlen(r->script), &cb, r);
	explicit_bzero(r->script, strlen(r->script));
	free(r->script);
	r->script = NULL;
	if (r->stop_pending)
		krun_claim_stop(r);
}

/* ---- the claim until Ready -------------------------------------------------- */

static void	claim_watch(struct run *);

static const char *
jstr(json_t *o, const char *k)
{
	const char	*s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

static void
sandbox_got(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	const char	*pod;
	char		*why;

	r->call = NULL;
	if (error != NULL || status != 200) {
		why = k8s_error(status, obj, error);
		krun_fail(r, xasprintf("the sandbox of claim %s cannot be read: "
		    "%s", r->name, why));
		free(why);
		return;
	}
	pod = jstr(json_object_get(json_object_get(obj, "metadata"),
	    "annotations"), "agents.x-k8s.io/pod-name");
	if (*pod == '\0')
		pod = jstr(json_object_get(obj, "metadata"), "name");
	r->pod = xstrdup(pod);
	exec_start(r);
}

/* 1 when the claim's sandbox is Ready (its GET asked for), else 0. */
static int
claim_update(struct run *r, json_t *claim)
{
	json_t		*st = json_object_get(claim, "status"), *c;
	const char	*sb;
	char		*path;
	size_t		 i;

	if (r->pod != NULL || r->call != NULL)
		return 1;
	json_array_foreach(json_object_get(st, "conditions"), i, c) {
		if (strcmp(jstr(c, "type"), "Ready") != 0)
			continue;
		sb = jstr(json_object_get(st, "sandbox"), "name");
		if (strcmp(jstr(c, "status"), "True") == 0 && *sb != '\0') {
			k8s_cancel(r->watch);
			r->watch = NULL;
			uv_timer_stop(r->log_timer);
			path = xasprintf(SANDBOXES "/%s", r->ns, sb);
			r->call = k8s_call(r->k, "GET", path, NULL, sandbox_got,
			    r);
			free(path);
			return 1;
		}
		free(r->not_ready);
		r->not_ready = xasprintf("%s%s%s", jstr(c, "reason"),
		    *jstr(c, "message") ? ": " : "", jstr(c, "message"));
	}
	return 0;
}

static void
claim_line(const char *p, size_t n, void *arg)
{
	struct run	*r = arg;
	json_t		*ev;
	const char	*type;

	if (r->settled || r->pod_done ||
	    (ev = json_loadb(p, n, 0, NULL)) == NULL)
		return;
	type = jstr(ev, "type");
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
		krun_remember_rv(r, json_object_get(ev, "object"));
		claim_update(r, json_object_get(ev, "object"));
	} else if (strcmp(type, "DELETED") == 0)
		krun_fail(r, xasprintf("sandbox claim %s was deleted before "
		    "its sandbox was ready", r->name));
	else if (strcmp(type, "ERROR") == 0)
		r->rv[0] = '\0';	/* 410: list again */
	else
		krun_remember_rv(r, json_object_get(ev, "object"));
	json_decref(ev);
}

static void
claim_watch_done(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;

	r->watch = NULL;
	if (r->settled || r->pod_done || r->pod != NULL || r->call != NULL)
		return;
	if (error != NULL || status >= 300)
		r->rv[0] = '\0';
	claim_watch(r);
}

static void
claim_listed(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	json_t		*items = json_object_get(obj, "items");
	char		*why;

	r->call = NULL;
	if (error != NULL || status != 200) {
		why = k8s_error(status, obj, error);
		krun_fail(r, xasprintf("sandbox claim %s cannot be listed: %s",
		    r->name, why));
		free(why);
		return;
	}
	krun_remember_rv(r, obj);
	if (json_array_size(items) == 0) {
		krun_fail(r, xasprintf("sandbox claim %s is gone", r->name));
		return;
	}
	if (!claim_update(r, json_array_get(items, 0)))
		claim_watch(r);
}

static void
claim_watch(struct run *r)
{
	char	*sel = xasprintf("switchboard.dev/run=%s", r->name);
	char	*q = k8s_qs(sel), *path;

	if (r->rv[0] == '\0') {
		path = xasprintf(CLAIMS "?labelSelector=%s", r->ns, q);
		r->call = k8s_call(r->k, "GET", path, NULL, claim_listed, r);
	} else {
		path = xasprintf(CLAIMS "?watch=1&allowWatchBookmarks=true&"
		    "timeoutSeconds=290&labelSelector=%s&resourceVersion=%s",
		    r->ns, q, r->rv);
		r->watch = k8s_stream(r->k, path, claim_line, claim_watch_done,
		    r);
	}
	free(path);
	free(q);
	free(sel);
}

static void
ready_timeout(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (r->settled || r->pod != NULL)
		return;
	k8s_cancel(r->watch);
	r->watch = NULL;
	k8s_cancel(r->call);
	r->call = NULL;
	r->deleting = 1;	/* the claim goes with the turn */
	krun_fail(r, xasprintf("the sandbox of claim %s was not ready after "
	    "%d s (ready_timeout)%s%s", r->name, r->ready_s,
	    r->not_ready != NULL ? ": " : "",
	    r->not_ready != NULL ? r->not_ready : ""));
}

static void
claim_created(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	char		*why;

	r->call = NULL;
	r->claim_posted = 1;
	if (error != NULL || (status != 201 && status != 409)) {
		why = k8s_error(status, obj, error);
		krun_fail(r, xasprintf("creating sandbox claim %s: %s", r->name,
		    why));
		free(why);
		return;
	}
	log_info("agent %lld: sandbox claim %s/%s %s", (long long)r->id,
	    r->ns, r->name, status == 201 ? "created" : "reused");
	if (status == 409 && r->renew != NULL) {
		json_t *lc = r->renew;

		r->renew = NULL;
		renew_with(r, lc);
	}
	if (r->stop_pending) {
		r->term_signal = SIGTERM;
		r->deleting = 1;
		r->pod_done = 1;
		krun_settle(r);
		return;
	}
	uv_timer_start(r->log_timer, ready_timeout, (uint64_t)r->ready_s *
	    1000, 0);
	claim_watch(r);
}

void
krun_claim_start(struct run *r, const struct run_spec *spec,
    const char *git_url)
{
	const struct cfg_kube	*kc = spec->agent->kube;
	json_t			*claim, *labels;
	char			*path, *id, *conv;

	free(r->name);
	r->name = krun_claim_name(kc, r->id);
	r->claim = 1;
	r->ready_s = (int)kc->ready_timeout;
	r->script = script(spec, kc, git_url);
	id = xasprintf("%lld", (long long)r->id);
	conv = xasprintf("%lld", (long long)spec->conversation_id);
	labels = json_pack("{s:s, s:s, s:s, s:s}",
	    "app.kubernetes.io/managed-by", "switchboard",
	    "switchboard.dev/run", r->name, "switchboard.dev/agent", id,
	    "switchboard.dev/conversation", conv);
	if (kc->daemon_id != NULL)
		json_object_set_new(labels, "switchboard.dev/daemon",
		    json_string(kc->daemon_id));
	claim = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:{s:s}}}",
	    "apiVersion", "extensions.agents.x-k8s.io/v1alpha1",
	    "kind", "SandboxClaim", "metadata", "name", r->name,
	    "namespace", r->ns, "labels", labels,
	    "spec", "sandboxTemplateRef", "name", kc->sandbox_template);
	if (kc->warm_pool != NULL)
		json_object_set_new(json_object_get(claim, "spec"), "warmpool",
		    json_string(kc->warm_pool));
	if ((r->renew = lifecycle(kc)) != NULL)
		json_object_set(json_object_get(claim, "spec"), "lifecycle",
		    r->renew);
	path = xasprintf(CLAIMS, r->ns);
	r->call = k8s_call(r->k, "POST", path, claim, claim_created, r);
	free(path);
	free(id);
	free(conv);
	json_decref(claim);
}

/* ---- stop and the end ------------------------------------------------------- */

static void
grace_over(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (r->settled || r->exec == NULL)
		return;
	k8s_exec_cancel(r->exec);
	r->exec = NULL;
	r->term_signal = SIGKILL;
	r->pod_done = 1;
	krun_settle(r);
}

void
krun_claim_stop(struct run *r)
{
	r->deleting = 1;
	if (!r->claim_posted) {
		r->stop_pending = 1;	/* claim_created() takes it */
		return;
	}
	if (r->exec == NULL) {
		/* Still waiting for Ready: nothing runs yet. */
		k8s_cancel(r->watch);
		r->watch = NULL;
		k8s_cancel(r->call);
		r->call = NULL;
		uv_timer_stop(r->log_timer);
		r->term_signal = SIGTERM;
		krun_fail(r, NULL);
		return;
	}
	/* EOF on its stdin: the script's watcher sends the agent SIGTERM. */
	r->stream_closed = !k8s_exec_v5(r->exec);
	k8s_exec_close_stdin(r->exec);
	uv_timer_start(r->log_timer, grace_over, (uint64_t)r->grace_s * 1000,
	    0);
}

void
krun_claim_free(struct run *r)
{
	k8s_exec_cancel(r->exec);
	r->exec = NULL;
	if (r->script != NULL)
		explicit_bzero(r->script, strlen(r->script));
	free(r->script);
	free(r->pod);
	free(r->not_ready);
	json_decref(r->renew);
}
