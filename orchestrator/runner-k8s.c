/*
 * runner-k8s — the `kubernetes` runner: one Pod per agent turn.
 *
 * A turn is a Secret (the agent's token, mounted as a file: never in the pod
 * spec) and a Pod from the agent kind's template (config agents.[].kubernetes),
 * both named sb-<agent>-<random> and labelled with the agent id.  The pod is
 * followed by a watch on its label (resourceVersion kept, bookmarks asked
 * for, 410 Gone → relist), its container's output by the log API (follow,
 * timestamps; sinceTime on reconnect, lines at or before the last seen
 * timestamp dropped), so nothing polls.  The turn ends when the pod has
 * ended (or is gone) and its log has been read to the end; then the pod and
 * the secret are deleted.
 *
 * What does not start — an image that cannot be pulled, no node that fits —
 * is reported in plain words as the turn's start error, and the pod deleted.
 * stop() deletes the pod with gracePeriodSeconds = the grace: the kubelet
 * sends SIGTERM, then SIGKILL, as the local runner does.
 *
 * The workspace needs no shared disk (k8s-ws.c): the pod clones the agent's
 * branch from the repo's remote into a volume of its own, pushes it back
 * when the agent is done, and the daemon fetches it.  With cluster.daemon_id
 * set, pod names and branches carry it and pods the label
 * switchboard.dev/daemon, so daemons sharing a remote or a namespace never
 * take each other's.
 *
 * Mode "sandbox-claim" (k8s-claim.c) runs the turn in a sandbox of
 * agent-sandbox claimed for the agent instead, through the exec API.
 */
#include "orchestrator/runner.h"
#include "orchestrator/k8s.h"
#include "orchestrator/k8s-run.h"
#include "orchestrator/gitremote.h"
#include "bot/http.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"
#include "config/config.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#define K8S_WATCH_S	"290"		/* below common proxy idle cuts */



/*
 * Clusters by kubeconfig ("" = in-cluster).  A reload may name another one
 * while runs still use the old: each stays open until shutdown.
 */
static struct cluster {
	char		*key;
	struct k8s	*k;
	struct cluster	*next;
} *clusters;

struct k8s *
krun_cluster_get(const char *kubeconfig, char **cause)
{
	const char	*key = kubeconfig != NULL ? kubeconfig : "";
	struct cluster	*c;
	struct k8s	*k;

	for (c = clusters; c != NULL; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c->k;
	if ((k = k8s_open(kubeconfig, cause)) == NULL)
		return NULL;
	c = xcalloc(1, sizeof *c);
	c->key = xstrdup(key);
	c->k = k;
	c->next = clusters;
	clusters = c;
	return k;
}

/* ---- garbage: what outlives the run --------------------------------------- */

int	 krun_n_deleting;	/* deletions not yet answered */

static void
gc_done(long status, json_t *obj, const char *error, void *arg)
{
	char	*what = arg, *why;

	krun_n_deleting--;
	if (error != NULL || (status >= 300 && status != 404)) {
		why = k8s_error(status, obj, error);
		log_warnx("kubernetes: deleting %s: %s", what, why);
		free(why);
	}
	free(what);
}

static void
gc_delete(struct k8s *k, const char *ns, const char *res, const char *name,
    int grace)
{
	char	*path;

	path = grace >= 0 ? xasprintf("/api/v1/namespaces/%s/%s/%s?"
	    "gracePeriodSeconds=%d", ns, res, name, grace) :
	    xasprintf("/api/v1/namespaces/%s/%s/%s", ns, res, name);
	krun_n_deleting++;
	k8s_on_cancel(k8s_call(k, "DELETE", path, NULL, gc_done,
	    xasprintf("%s %s/%s", res, ns, name)), free);
	free(path);
}

/* ---- the run's end ---------------------------------------------------------- */

static void
timer_closed(uv_handle_t *h)
{
	free(h);
}

void
krun_free(struct run *r)
{
	k8s_cancel(r->call);
	k8s_cancel(r->watch);
	k8s_cancel(r->log);
	k8s_cancel(r->secret_get);
	uv_close((uv_handle_t *)r->timer, timer_closed);
	uv_close((uv_handle_t *)r->log_timer, timer_closed);
	free(r->ns);
	free(r->name);
	free(r->error);
	free(r->clone_out);
	free(r->state_dir);
	json_decref(r->pod_json);
	krun_claim_free(r);
	free(r);
}

void
krun_settle(struct run *r)
{
	struct run_hooks	 h = r->hooks;

	if (r->settled)
		return;
	r->settled = 1;
	/* A claim outlives its turns, but for a cancel or one never Ready. */
	if (r->claim && r->deleting)
		krun_claim_delete(r->k, r->ns, r->name);
	if (r->created) {
		gc_delete(r->k, r->ns, "pods", r->name, r->pod_done ? 0 : -1);
		gc_delete(r->k, r->ns, "secrets", r->name, -1);
	}
	h.exited(h.arg, r->status, r->term_signal, r->error);
	krun_free(r);
}

static void
settle_soon_fired(uv_timer_t *t)
{
	krun_settle(t->data);
}

/* Never started: report why, from the loop (never inside start()). */
void
krun_fail(struct run *r, char *why)
{
	if (r->error == NULL)
		r->error = why;
	else
		free(why);
	r->pod_done = 1;
	uv_timer_start(r->timer, settle_soon_fired, 0, 0);
}

void
krun_maybe_settle(struct run *r)
{
	if (r->pod_done && (!r->log_started || r->log_done))
		krun_settle(r);
}

/* ---- the pod's status ------------------------------------------------------- */

static json_t *
container_status(json_t *pod)
{
	json_t	*c;
	size_t	 i;

	json_array_foreach(json_object_get(json_object_get(pod, "status"),
	    "containerStatuses"), i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));
		if (n != NULL && strcmp(n, K8S_CONTAINER) == 0)
			return c;
	}
	return NULL;
}

static const char *
jstr(json_t *o, const char *k)
{
	const char	*s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

/* Plain words for why a container cannot start; NULL while it may still. */
static char *
cannot_start_container(json_t *c)
{
	json_t		*w = json_object_get(json_object_get(c, "state"),
	    "waiting");
	const char	*reason = jstr(w, "reason");

	if (strcmp(reason, "ImagePullBackOff") == 0 ||
	    strcmp(reason, "InvalidImageName") == 0)
		return xasprintf("the image %s cannot be pulled (%s%s%s)",
		    jstr(c, "image"), reason, *jstr(w, "message") ? ": " : "",
		    jstr(w, "message"));
	if (strcmp(reason, "CreateContainerConfigError") == 0 ||
	    strcmp(reason, "CreateContainerError") == 0 ||
	    strcmp(reason, "RunContainerError") == 0)
		return xasprintf("the container cannot be created (%s%s%s)",
		    reason, *jstr(w, "message") ? ": " : "", jstr(w, "message"));
	return NULL;
}

/* Plain words for why a pod cannot start; NULL while it may still. */
static char *
cannot_start(struct run *r, json_t *pod)
{
	json_t		*st = json_object_get(pod, "status"), *c;
	char		*why;
	size_t		 i;

	json_array_foreach(json_object_get(st, "conditions"), i, c) {
		if (strcmp(jstr(c, "type"), "PodScheduled") == 0 &&
		    strcmp(jstr(c, "status"), "False") == 0 &&
		    strcmp(jstr(c, "reason"), "Unschedulable") == 0)
			return xasprintf("no node of the cluster can run pod %s"
			    " (Unschedulable: %s)", r->name, jstr(c, "message"));
	}
	/* The clone container (the workspace) comes first. */
	json_array_foreach(json_object_get(st, "initContainerStatuses"), i, c)
		if ((why = cannot_start_container(c)) != NULL)
			return why;
	return cannot_start_container(container_status(pod));
}

/* The clone container's exit status if it failed, else -1. */
static int
clone_failed(json_t *pod)
{
	json_t	*c, *t;
	size_t	 i;

	json_array_foreach(json_object_get(json_object_get(pod, "status"),
	    "initContainerStatuses"), i, c) {
		t = json_object_get(json_object_get(c, "state"), "terminated");
		if (t != NULL && json_integer_value(json_object_get(t,
		    "exitCode")) != 0)
			return (int)json_integer_value(json_object_get(t,
			    "exitCode"));
	}
	return -1;
}

static void
note(struct run *r, const char *text)
{
	r->hooks.output(r->hooks.arg, 2, text, strlen(text));
}

void
krun_pod_update(struct run *r, json_t *pod)
{
	json_t		*st = json_object_get(pod, "status"), *c, *state, *t;
	const char	*phase = jstr(st, "phase");
	char		*why, *line;
	int		 rc;

	if (r->settled || r->pod_done)
		return;
	c = container_status(pod);
	state = json_object_get(c, "state");
	if (!r->started && !r->deleting && (why = cannot_start(r, pod)) != NULL) {
		log_warnx("agent %lld: %s", (long long)r->id, why);
		r->error = why;
		r->pod_done = 1;
		krun_maybe_settle(r);
		return;
	}
	if (!r->started && !r->deleting && (rc = clone_failed(pod)) >= 0) {
		r->pod_done = 1;
		krun_clone_log(r, rc);
		return;
	}
	if (json_object_get(state, "running") != NULL ||
	    json_object_get(state, "terminated") != NULL) {
		r->started = 1;
		if (!r->log_started)
			krun_log_start(r);
	}
	if ((t = json_object_get(state, "terminated")) != NULL &&
	    !r->terminated) {
		r->terminated = 1;
		r->status = json_integer_value(json_object_get(t, "exitCode"));
		if (strcmp(jstr(t, "reason"), "OOMKilled") == 0) {
			line = xasprintf("\n[pod %s: killed for running out of "
			    "memory (OOMKilled)]\n", r->name);
			note(r, line);
			free(line);
		}
	}
	if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0) {
		if (strcmp(jstr(st, "reason"), "Evicted") == 0) {
			line = xasprintf("\n[pod %s: evicted by its node: %s]\n",
			    r->name, jstr(st, "message"));
			note(r, line);
			free(line);
			if (!r->terminated)
				r->term_signal = SIGKILL;
		}
		if (!r->terminated && r->status == 0 && r->term_signal == 0)
			r->status = 1;
		r->pod_done = 1;
		krun_maybe_settle(r);
	}
}

static void
pod_gone(struct run *r)
{
	if (r->settled || r->pod_done)
		return;
	r->pod_done = 1;
	if (!r->terminated) {
		if (r->deleting)
			r->term_signal = SIGTERM;
		else if (r->error == NULL && !r->started)
			r->error = xasprintf("pod %s was deleted before it "
			    "started", r->name);
		else
			r->term_signal = SIGKILL;
	}
	krun_maybe_settle(r);
}

/* ---- the watch -------------------------------------------------------------- */

void
krun_remember_rv(struct run *r, json_t *obj)
{
	const char	*v = json_string_value(json_object_get(
	    json_object_get(obj, "metadata"), "resourceVersion"));

	if (v != NULL && strlen(v) < sizeof r->rv)
		strcpy(r->rv, v);
}

static void
watch_line(const char *p, size_t n, void *arg)
{
	struct run	*r = arg;
	json_t		*ev, *obj;
	const char	*type;

	if (r->settled || (ev = json_loadb(p, n, 0, NULL)) == NULL)
		return;
	type = jstr(ev, "type");
	obj = json_object_get(ev, "object");
	if (strcmp(type, "ERROR") == 0) {
		/* 410 Gone: our resourceVersion was compacted away. */
		if (json_integer_value(json_object_get(obj, "code")) == 410)
			r->relist = 1;
	} else {
		krun_remember_rv(r, obj);
		if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
			krun_pod_update(r, obj);
		else if (strcmp(type, "DELETED") == 0)
			pod_gone(r);
	}
	json_decref(ev);
}

static void
retry_fired(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (!r->settled)
		krun_watch_start(r);
}

static void
watch_done(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	char		*why;

	r->watch = NULL;
	if (r->settled)
		return;
	if (error != NULL || status >= 300) {
		why = k8s_error(status, obj, error);
		log_warnx("agent %lld: watching pod %s: %s", (long long)r->id,
		    r->name, why);
		free(why);
		if (status == 410)
			r->relist = 1;
		uv_timer_start(r->timer, retry_fired, K8S_RETRY_MS, 0);
		return;
	}
	if (!r->pod_done)
		krun_watch_start(r);		/* timeoutSeconds ended it: go on */
}

static void
list_done(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	json_t		*items;
	char		*why;

	r->call = NULL;
	if (error != NULL || status != 200) {
		why = k8s_error(status, obj, error);
		log_warnx("agent %lld: listing pod %s: %s", (long long)r->id,
		    r->name, why);
		free(why);
		uv_timer_start(r->timer, retry_fired, K8S_RETRY_MS, 0);
		return;
	}
	r->relist = 0;
	krun_remember_rv(r, obj);
	items = json_object_get(obj, "items");
	/* The watch first: what follows may settle (and free) the run. */
	krun_watch_start(r);
	if (json_array_size(items) == 0)
		pod_gone(r);
	else
		krun_pod_update(r, json_array_get(items, 0));
}

static char *
selector(const struct run *r)
{
	char	*sel = xasprintf("switchboard.dev/run=%s", r->name);
	char	*q = k8s_qs(sel);

	free(sel);
	return q;
}

void
krun_watch_start(struct run *r)
{
	char	*path, *sel = selector(r);

	if (r->relist || r->rv[0] == '\0') {
		path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=%s",
		    r->ns, sel);
		r->call = k8s_call(r->k, "GET", path, NULL, list_done, r);
	} else {
		path = xasprintf("/api/v1/namespaces/%s/pods?watch=1&"
		    "allowWatchBookmarks=true&timeoutSeconds=" K8S_WATCH_S
		    "&labelSelector=%s&resourceVersion=%s", r->ns, sel, r->rv);
		r->watch = k8s_stream(r->k, path, watch_line, watch_done, r);
	}
	free(path);
	free(sel);
}

/* ---- start ------------------------------------------------------------------ */

static void
delete_pod(struct run *r)
{
	char	*path;

	r->deleting = 1;
	path = xasprintf("/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=%d",
	    r->ns, r->name, r->grace_s);
	krun_n_deleting++;
	k8s_on_cancel(k8s_call(r->k, "DELETE", path, NULL, gc_done,
	    xasprintf("pods %s/%s", r->ns, r->name)), free);
	free(path);
}

static void
pod_created(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;

	r->call = NULL;
	if (error != NULL || status != 201) {
		char *why = k8s_error(status, obj, error);

		krun_fail(r, xasprintf("creating pod %s: %s", r->name, why));
		free(why);
		gc_delete(r->k, r->ns, "secrets", r->name, -1);
		return;
	}
	r->created = 1;
	krun_remember_rv(r, obj);
	log_info("agent %lld: pod %s/%s created", (long long)r->id, r->ns,
	    r->name);
	if (r->stop_pending)
		delete_pod(r);
	krun_watch_start(r);
}

static void
secret_created(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	char		*path;

	r->call = NULL;
	if (error != NULL || status != 201) {
		char *why = k8s_error(status, obj, error);

		krun_fail(r, xasprintf("creating secret %s: %s", r->name, why));
		free(why);
		return;
	}
	if (r->stop_pending) {
		gc_delete(r->k, r->ns, "secrets", r->name, -1);
		r->term_signal = SIGTERM;
		r->pod_done = 1;
		krun_maybe_settle(r);
		return;
	}
	path = xasprintf("/api/v1/namespaces/%s/pods", r->ns);
	r->call = k8s_call(r->k, "POST", path, r->pod_json, pod_created, r);
	free(path);
}

/* The value of name in a "k=v" list, or NULL. */
const char *
krun_env(char *const *env, const char *name)
{
	size_t	 n = strlen(name);

	for (; env != NULL && *env != NULL; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

/* A run's common parts, for start() and re-attach. */
struct run *
krun_new(const struct run_spec *spec, const struct run_hooks *hooks)
{
	struct run	*r = xcalloc(1, sizeof *r);

	r->id = spec->agent_id;
	r->hooks = *hooks;
	r->timer = xcalloc(1, sizeof *r->timer);
	r->log_timer = xcalloc(1, sizeof *r->log_timer);
	uv_timer_init(loop_uv(), r->timer);
	uv_timer_init(loop_uv(), r->log_timer);
	r->timer->data = r->log_timer->data = r;
	r->grace_s = 30;	/* stop() says the configured kill_grace */
	if (spec->ws != NULL && spec->ws->state_dir != NULL)
		r->state_dir = xstrdup(spec->ws->state_dir);
	return r;
}

static struct run *
k8s_start(const struct run_spec *spec, const struct run_hooks *hooks)
{
	struct run		*r = krun_new(spec, hooks);
	const struct cfg_kube	*kc = spec->agent != NULL ?
	    spec->agent->kube : NULL;
	unsigned char		 rnd[4];
	char			 hex[9], *cause = NULL, *path, *url;
	const char		*token;
	json_t			*secret;

	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		fatal("getrandom");
	hex_encode(rnd, sizeof rnd, hex);
	if (kc != NULL && kc->daemon_id != NULL)
		r->name = xasprintf("sb-%s-%lld-%s", kc->daemon_id,
		    (long long)r->id, hex);
	else
		r->name = xasprintf("sb-%lld-%s", (long long)r->id, hex);
	if (kc == NULL) {
		r->ns = xstrdup("");
		krun_fail(r, xstrdup("the agent kind has no kubernetes settings"));
		return r;
	}
	r->ns = xstrdup(kc->namespace);
	if ((r->k = krun_cluster_get(kc->kubeconfig, &cause)) == NULL) {
		krun_fail(r, xasprintf("kubernetes: %s", cause));
		free(cause);
		return r;
	}
	if ((token = krun_env(spec->env, "SWITCHBOARD_AGENT_TOKEN")) == NULL)
		token = "";
	if (spec->ws == NULL || spec->ws->branch == NULL ||
	    (url = gitremote_url(spec->ws->repo_path, spec->ws->repo != NULL ?
	    spec->ws->repo->remote : "origin", &cause)) == NULL) {
		krun_fail(r, xasprintf("no remote for the pod to clone from: %s",
		    cause != NULL ? cause : "no branch"));
		free(cause);
		return r;
	}
	if (kc->claim) {
		krun_claim_start(r, spec, url);
		free(url);
		return r;
	}
	r->pod_json = runner_k8s_pod(r->name, r->ns, r->id, kc, spec);
	runner_k8s_workspace(r->pod_json, kc, spec, url);
	free(url);
	if (kc->daemon_id != NULL)
		json_object_set_new(json_object_get(json_object_get(r->pod_json,
		    "metadata"), "labels"), "switchboard.dev/daemon",
		    json_string(kc->daemon_id));
	secret = json_pack("{s:s, s:s, s:{s:s, s:s, s:O}, s:s, s:{s:s}}",
	    "apiVersion", "v1", "kind", "Secret", "metadata", "name", r->name,
	    "namespace", r->ns, "labels", json_object_get(json_object_get(
	    r->pod_json, "metadata"), "labels"), "type", "Opaque",
	    "stringData", "token", token);
	/* The CA the pod verifies the agent listener with (k8s-pod.c). */
	if (kc->agent_ca != NULL)
		json_object_set_new(json_object_get(secret, "stringData"),
		    "ca.crt", json_string(kc->agent_ca));
	path = xasprintf("/api/v1/namespaces/%s/secrets", r->ns);
	r->call = k8s_call(r->k, "POST", path, secret, secret_created, r);
	free(path);
	json_decref(secret);
	return r;
}

static int
k8s_write(struct run *r, const char *text)
{
	return -1;	/* a pod has no stdin of ours */
}

static void
k8s_stop(struct run *r, int first_signal, int grace_s)
{
	if (r->settled || r->deleting)
		return;
	r->grace_s = grace_s;
	if (r->claim) {
		krun_claim_stop(r);
		return;
	}
	if (!r->created) {
		r->stop_pending = 1;
		return;
	}
	delete_pod(r);
}

static int
k8s_pid(const struct run *r)
{
	return 0;
}

int
runner_k8s_deleting(void)
{
	return krun_n_deleting;
}

void
runner_k8s_shutdown(void)
{
	struct cluster	*c;

	k8s_cancel_all();
	while ((c = clusters) != NULL) {
		clusters = c->next;
		k8s_close(c->k);
		free(c->key);
		free(c);
	}
}

/*
 * Shutdown of a turn that cannot be detached (k8s-attach.c: its pod not made
 * yet, or being deleted): it is interrupted, as a local child would be — its
 * pod is deleted (the kubelet sends SIGTERM, then SIGKILL after the grace)
 * and its secret with it; the daemon waits for the API's answers like it
 * waits for local survivors.
 */
void
krun_abandon(struct run *r)
{
	r->settled = 1;
	if (!r->claim && (r->created || r->call != NULL)) {
		gc_delete(r->k, r->ns, "pods", r->name, r->grace_s);
		gc_delete(r->k, r->ns, "secrets", r->name, -1);
	}
	krun_free(r);
}

static void
k8s_reap_orphan(int pid, int64_t agent_id, int grace_s)
{
}

const struct runner_ops runner_kubernetes = {
	.name = "kubernetes",
	.remote_workspace = 1,
	.prepare = k8s_ws_prepare,
	.collect = k8s_ws_collect,
	.cleanup = k8s_ws_cleanup,
	.start = k8s_start,
	.write = k8s_write,
	.stop = k8s_stop,
	.pid = k8s_pid,
	.abandon = krun_abandon,
	.reap_orphan = k8s_reap_orphan,
	.detach = krun_detach,
	.reattach = krun_reattach,
};
