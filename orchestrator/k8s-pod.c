/*
 * k8s-pod — the Pod of one turn of the kubernetes runner, from the agent
 * kind's template (config agents.[].kubernetes).  Its own file so that the
 * manifest can be read in one place: what goes in (the template, the agent's
 * SWITCHBOARD_* variables but its token, the argv, the workspace path) and
 * what never does (the token: a file of the mounted secret; the daemon's
 * environment; a service account token).
 */
#include "orchestrator/k8s.h"
#include "orchestrator/runner.h"
#include "bot/util.h"
#include "config/config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* "k=v" → obj[k] = v */
static json_t *
pairs(char **v)
{
	json_t	*o = json_object();
	char	*eq;

	for (; v != NULL && *v != NULL; v++)
		if ((eq = strchr(*v, '=')) != NULL) {
			char *k = xstrndup(*v, (size_t)(eq - *v));

			json_object_set_new(o, k, json_string(eq + 1));
			free(k);
		}
	return o;
}

/* "key=value:Effect" (Equal) or "key:Effect" (Exists). */
static json_t *
tolerations(char **v)
{
	json_t	*a = json_array(), *t;
	char	*colon, *eq, *key;

	for (; v != NULL && *v != NULL; v++) {
		if ((colon = strrchr(*v, ':')) == NULL)
			continue;
		key = xstrndup(*v, (size_t)(colon - *v));
		t = json_object();
		if ((eq = strchr(key, '=')) != NULL) {
			*eq = '\0';
			json_object_set_new(t, "operator", json_string("Equal"));
			json_object_set_new(t, "value", json_string(eq + 1));
		} else
			json_object_set_new(t, "operator", json_string("Exists"));
		json_object_set_new(t, "key", json_string(key));
		json_object_set_new(t, "effect", json_string(colon + 1));
		json_array_append_new(a, t);
		free(key);
	}
	return a;
}

static void
set_if(json_t *o, const char *k, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, k, json_string(v));
}

/*
 * The pod of a turn.  Its environment is the agent's SWITCHBOARD_* entries
 * but the token, which is a file of the mounted secret; nothing of the
 * daemon's own environment goes in (the image brings PATH and the rest).
 */
json_t *
runner_k8s_pod(const char *name, const char *ns, int64_t agent_id,
    const struct cfg_kube *kc, const struct run_spec *spec)
{
	json_t	*pod, *c, *env, *cmd, *res, *req, *lim, *spec_o, *ps, *md;
	char	*id = xasprintf("%lld", (long long)agent_id), *conv;
	char	*const *e;
	char	**s;

	env = json_array();
	for (e = spec->env; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');

		if (eq == NULL || strncmp(*e, "SWITCHBOARD_", 12) != 0 ||
		    strncmp(*e, "SWITCHBOARD_AGENT_TOKEN=", 24) == 0 ||
		    strncmp(*e, "SWITCHBOARD_SOCKET=", 19) == 0 ||
		    strncmp(*e, "SWITCHBOARD_BIN=", 16) == 0)
			continue;
		{
			char *k = xstrndup(*e, (size_t)(eq - *e));

			json_array_append_new(env, json_pack("{s:s, s:s}",
			    "name", k, "value", eq + 1));
			free(k);
		}
	}
	json_array_append_new(env, json_pack("{s:s, s:s}", "name",
	    "SWITCHBOARD_AGENT_TOKEN_FILE", "value", K8S_TOKEN_DIR "/token"));
	/* Talking back: the daemon's agent listener, verified with its CA. */
	if (kc->agent_url != NULL)
		json_array_append_new(env, json_pack("{s:s, s:s}", "name",
		    "SWITCHBOARD_URL", "value", kc->agent_url));
	if (kc->agent_ca != NULL)
		json_array_append_new(env, json_pack("{s:s, s:s}", "name",
		    "SWITCHBOARD_CA_FILE", "value", K8S_TOKEN_DIR "/ca.crt"));
	cmd = json_array();
	for (e = spec->argv; *e != NULL; e++)
		json_array_append_new(cmd, json_string(*e));
	c = json_pack("{s:s, s:s, s:o, s:o, s:[{s:s, s:s, s:b}]}",
	    "name", K8S_CONTAINER, "image", kc->image, "command", cmd,
	    "env", env, "volumeMounts", "name", "switchboard", "mountPath",
	    K8S_TOKEN_DIR, "readOnly", 1);
	set_if(c, "workingDir", spec->cwd);
	req = json_object();
	lim = json_object();
	set_if(req, "cpu", kc->requests_cpu);
	set_if(req, "memory", kc->requests_memory);
	set_if(lim, "cpu", kc->limits_cpu);
	set_if(lim, "memory", kc->limits_memory);
	res = json_object();
	if (json_object_size(req) > 0)
		json_object_set(res, "requests", req);
	if (json_object_size(lim) > 0)
		json_object_set(res, "limits", lim);
	json_decref(req);
	json_decref(lim);
	if (json_object_size(res) > 0)
		json_object_set(c, "resources", res);
	json_decref(res);

	spec_o = json_pack("{s:s, s:b, s:[o], s:[{s:s, s:{s:s, s:i}}]}",
	    "restartPolicy", "Never", "automountServiceAccountToken", 0,
	    "containers", c, "volumes", "name", "switchboard", "secret",
	    "secretName", name, "defaultMode", 0400);
	set_if(spec_o, "serviceAccountName", kc->service_account);
	set_if(spec_o, "runtimeClassName", kc->runtime_class);
	if (kc->nnode_selector > 0)
		json_object_set_new(spec_o, "nodeSelector",
		    pairs(kc->node_selector));
	if (kc->ntolerations > 0)
		json_object_set_new(spec_o, "tolerations",
		    tolerations(kc->tolerations));
	if (kc->nimage_pull_secrets > 0) {
		ps = json_array();
		for (s = kc->image_pull_secrets; *s != NULL; s++)
			json_array_append_new(ps, json_pack("{s:s}", "name",
			    *s));
		json_object_set_new(spec_o, "imagePullSecrets", ps);
	}
	conv = xasprintf("%lld", (long long)spec->conversation_id);
	md = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "name", name,
	    "namespace", ns, "labels", "app.kubernetes.io/managed-by",
	    "switchboard", "switchboard.dev/run", name,
	    "switchboard.dev/agent", id, "switchboard.dev/conversation", conv);
	free(conv);
	pod = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind",
	    "Pod", "metadata", md, "spec", spec_o);
	free(id);
	return pod;
}
