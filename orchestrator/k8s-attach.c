/*
 * k8s-attach — a daemon restart with turns running in pods.
 *
 * A pod does not die with the daemon, so a shutdown leaves it running
 * (detach) instead of deleting it: the pod goes on, pushes its branch, and
 * ends; the next daemon finds it by its labels (managed-by, agent id, and
 * the daemon's id, cluster.daemon_id) and follows it to its end as if it
 * had started it (re-attach): watch, log, collect, result — posted once.
 *
 * Where the log was: a detach writes the pod's name and the timestamp of
 * the last line it had to STATE_DIR/k8s-N.since; re-attaching follows the
 * log from there (sinceTime, lines at or before it dropped).  Without that
 * mark (the daemon was killed) the log is read again from its start, so the
 * agent's kept output may show some lines twice; the result is the same.
 */
#include "orchestrator/k8s-run.h"
#include "bot/log.h"
#include "bot/util.h"
#include "config/config.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
mark_path(const char *state_dir, int64_t id)
{
	return xasprintf("%s/k8s-%lld.since", state_dir, (long long)id);
}

int
krun_detach(struct run *r)
{
	FILE	*fp;
	char	*p;

	/* Not a pod yet, or one being deleted (cancel): nothing to go on. */
	if (!r->created || r->deleting || r->settled) {
		krun_abandon(r);
		return 0;
	}
	if (r->state_dir != NULL && r->last_ts[0] != '\0') {
		p = mark_path(r->state_dir, r->id);
		if ((fp = fopen(p, "w")) == NULL)
			log_warn("agent %lld: %s", (long long)r->id, p);
		else {
			fprintf(fp, "%s %s\n", r->name, r->last_ts);
			if (fclose(fp) != 0)
				log_warn("agent %lld: %s", (long long)r->id, p);
		}
		free(p);
	}
	log_info("agent %lld: pod %s/%s left running for the next start",
	    (long long)r->id, r->ns, r->name);
	r->settled = 1;		/* its hooks are never called now */
	krun_free(r);
	return 1;
}

/* The log position a detach left for this pod, taken (the mark goes). */
static void
take_mark(struct run *r)
{
	char	*p, line[256], *sp;
	FILE	*fp;

	if (r->state_dir == NULL)
		return;
	p = mark_path(r->state_dir, r->id);
	if ((fp = fopen(p, "r")) != NULL) {
		if (fgets(line, sizeof line, fp) != NULL &&
		    (sp = strchr(line, ' ')) != NULL) {
			*sp++ = '\0';
			sp[strcspn(sp, "\n")] = '\0';
			if (strcmp(line, r->name) == 0 &&
			    strlen(sp) < sizeof r->last_ts)
				strcpy(r->last_ts, sp);
		}
		fclose(fp);
		unlink(p);
	}
	free(p);
}

/*
 * The agent token of the running turn, from its pod's secret (base64, as
 * the API returns data): the restarted daemon made the agent a new one,
 * and the pod's agent still holds this.
 */
static void
secret_got(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	const char	*b64;
	unsigned char	 tok[128];
	size_t		 n;
	int		 len;

	r->secret_get = NULL;
	b64 = json_string_value(json_object_get(json_object_get(obj, "data"),
	    "token"));
	if (error != NULL || status != 200 || b64 == NULL ||
	    (n = strlen(b64)) == 0 || n > 4 * (sizeof tok / 3) - 4 ||
	    (len = EVP_DecodeBlock(tok, (const unsigned char *)b64,
	    (int)n)) < 0) {
		log_warnx("agent %lld: the token of pod %s cannot be read; "
		    "its calls to switchboard will be refused", (long long)r->id,
		    r->name);
		return;
	}
	/* DecodeBlock counts the padding's zero bytes. */
	while (len > 0 && b64[n - 1] == '=') {
		len--;
		n--;
	}
	tok[len] = '\0';
	if (r->hooks.token != NULL && !r->settled)
		r->hooks.token(r->hooks.arg, (const char *)tok);
	explicit_bzero(tok, sizeof tok);
}

static const char *
created_at(json_t *pod)
{
	const char	*s = json_string_value(json_object_get(json_object_get(
	    pod, "metadata"), "creationTimestamp"));

	return s != NULL ? s : "";
}

static void
listed(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	json_t		*pod = NULL, *it;
	const char	*name;
	size_t		 i;
	char		*why, *path;

	r->call = NULL;
	if (error != NULL || status != 200) {
		why = k8s_error(status, obj, error);
		krun_fail(r, xasprintf("after the restart, its pod cannot be "
		    "listed: %s", why));
		free(why);
		return;
	}
	/* One pod per turn; should an earlier one linger, the newest. */
	json_array_foreach(json_object_get(obj, "items"), i, it)
		if (pod == NULL || strcmp(created_at(it), created_at(pod)) >= 0)
			pod = it;
	name = json_string_value(json_object_get(json_object_get(pod,
	    "metadata"), "name"));
	if (name == NULL) {
		krun_fail(r, xstrdup("its pod was gone when switchboard came "
		    "back"));
		return;
	}
	free(r->name);
	r->name = xstrdup(name);
	r->created = 1;
	take_mark(r);
	log_info("agent %lld: re-attached to pod %s/%s%s%s", (long long)r->id,
	    r->ns, r->name, r->last_ts[0] ? ", its log from " : "",
	    r->last_ts);
	krun_remember_rv(r, obj);
	path = xasprintf("/api/v1/namespaces/%s/secrets/%s", r->ns, r->name);
	r->secret_get = k8s_call(r->k, "GET", path, NULL, secret_got, r);
	free(path);
	/* The watch first: the update may settle (and free) the run. */
	krun_watch_start(r);
	krun_pod_update(r, pod);
}

struct run *
krun_reattach(const struct run_spec *spec, const struct run_hooks *hooks)
{
	struct run		*r = krun_new(spec, hooks);
	const struct cfg_kube	*kc = spec->agent != NULL ?
	    spec->agent->kube : NULL;
	char			*cause = NULL, *sel, *q, *path;

	r->name = xasprintf("of agent %lld", (long long)r->id);
	if (kc == NULL) {
		r->ns = xstrdup("");
		krun_fail(r, xstrdup("the agent kind has no kubernetes "
		    "settings"));
		return r;
	}
	r->ns = xstrdup(kc->namespace);
	if ((r->k = krun_cluster_get(kc->kubeconfig, &cause)) == NULL) {
		krun_fail(r, xasprintf("kubernetes: %s", cause));
		free(cause);
		return r;
	}
	if (kc->claim) {
		/* Its exec stream ended with the daemon (k8s-claim.c). */
		krun_fail(r, xstrdup("a turn in a sandbox cannot be followed "
		    "across a restart: its exec stream ended with switchboard "
		    "(the sandbox stays for the next turn)"));
		return r;
	}
	/* Never another daemon's pod for the same agent id. */
	if (kc->daemon_id != NULL)
		sel = xasprintf("app.kubernetes.io/managed-by=switchboard,"
		    "switchboard.dev/agent=%lld,switchboard.dev/daemon=%s",
		    (long long)r->id, kc->daemon_id);
	else
		sel = xasprintf("app.kubernetes.io/managed-by=switchboard,"
		    "switchboard.dev/agent=%lld,!switchboard.dev/daemon",
		    (long long)r->id);
	q = k8s_qs(sel);
	path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=%s", r->ns,
	    q);
	r->call = k8s_call(r->k, "GET", path, NULL, listed, r);
	free(path);
	free(q);
	free(sel);
	return r;
}
