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

/* ---- the workspace: cloned in the pod, pushed back ------------------------ */

/* The init container: the agent's branch (the daemon pushed it) into the volume. */
static const char clone_sh[] =
"set -e\n"
K8S_GIT_CREDS_SH
"g clone -q --single-branch --branch \"$SWITCHBOARD_BRANCH\" -- "
"\"$SWITCHBOARD_GIT_URL\" \"$SWITCHBOARD_WORKSPACE\"\n";

/*
 * The agent container: the agent ("$@") as a child, so that SIGTERM from the
 * kubelet (to PID 1, this shell) reaches it; then what it left uncommitted
 * is committed, as the local runner's collect does, and the branch pushed
 * back, after a cancel too (the branch keeps the partial work).  Kubernetes
 * has no step after a pod's main container, so this is the place; the exit
 * status is the agent's, or 1 if it succeeded but its work could not be
 * pushed.
 */
static const char turn_sh[] =
K8S_GIT_CREDS_SH
"\"$@\" &\n"
"p=$!\n"
"trap 'kill -TERM \"$p\" 2>/dev/null' TERM\n"
"trap 'kill -INT \"$p\" 2>/dev/null' INT\n"
"rc=0\n"
"wait \"$p\" || rc=$?\n"
"while kill -0 \"$p\" 2>/dev/null; do rc=0; wait \"$p\" || rc=$?; done\n"
"cd \"$SWITCHBOARD_WORKSPACE\" || exit 1\n"
K8S_PUSH_BACK_SH;

static void
env_add(json_t *env, const char *k, const char *v)
{
	if (v != NULL)
		json_array_append_new(env, json_pack("{s:s, s:s}", "name", k,
		    "value", v));
}

static json_t *
mount(const char *vol, const char *path, int ro)
{
	return json_pack("{s:s, s:s, s:b}", "name", vol, "mountPath", path,
	    "readOnly", ro);
}

static json_t *
array_of(json_t *o, const char *k)
{
	json_t	*a = json_object_get(o, k);

	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(o, k, a);
	}
	return a;
}

void
runner_k8s_workspace(json_t *pod, const struct cfg_kube *kc,
    const struct run_spec *spec, const char *git_url)
{
	const struct ws_req	*ws = spec->ws;
	json_t			*ps = json_object_get(pod, "spec"), *c, *cmd;
	json_t			*init, *ienv, *env, *vols;
	char			*const *e;

	c = json_array_get(json_object_get(ps, "containers"), 0);
	vols = array_of(ps, "volumes");
	json_array_append_new(vols, json_pack("{s:s, s:{}}", "name",
	    "workspace", "emptyDir"));
	if (kc->git_secret != NULL)
		json_array_append_new(vols, json_pack("{s:s, s:{s:s, s:i}}",
		    "name", "git", "secret", "secretName", kc->git_secret,
		    "defaultMode", 0400));

	ienv = json_array();
	env_add(ienv, "SWITCHBOARD_GIT_URL", git_url);
	env_add(ienv, "SWITCHBOARD_BRANCH", ws->branch);
	env_add(ienv, "SWITCHBOARD_WORKSPACE", K8S_WORKSPACE);
	if (kc->git_secret != NULL)
		env_add(ienv, "SWITCHBOARD_GIT_CREDENTIALS", K8S_GIT_DIR);
	init = json_pack("{s:s, s:s, s:[s, s, s], s:o, s:[o]}", "name",
	    "clone", "image", kc->git_image != NULL ? kc->git_image : kc->image,
	    "command", "sh", "-c", clone_sh, "env", ienv, "volumeMounts",
	    mount("workspace", K8S_WORKSPACE, 0));
	if (kc->git_secret != NULL)
		json_array_append_new(json_object_get(init, "volumeMounts"),
		    mount("git", K8S_GIT_DIR, 1));
	json_object_set_new(ps, "initContainers", json_pack("[o]", init));

	env = array_of(c, "env");
	env_add(env, "SWITCHBOARD_BRANCH", ws->branch);
	env_add(env, "SWITCHBOARD_WORKSPACE", K8S_WORKSPACE);
	env_add(env, "SWITCHBOARD_COMMIT_MESSAGE", ws->message);
	if (kc->git_secret != NULL)
		env_add(env, "SWITCHBOARD_GIT_CREDENTIALS", K8S_GIT_DIR);
	env_add(env, "GIT_AUTHOR_NAME", ws->git_name);
	env_add(env, "GIT_COMMITTER_NAME", ws->git_name);
	env_add(env, "GIT_AUTHOR_EMAIL", ws->git_email);
	env_add(env, "GIT_COMMITTER_EMAIL", ws->git_email);
	json_array_append_new(array_of(c, "volumeMounts"),
	    mount("workspace", K8S_WORKSPACE, 0));
	if (kc->git_secret != NULL)
		json_array_append_new(array_of(c, "volumeMounts"),
		    mount("git", K8S_GIT_DIR, 1));
	json_object_set_new(c, "workingDir", json_string(K8S_WORKSPACE));
	cmd = json_pack("[s, s, s, s]", "sh", "-c", turn_sh,
	    "switchboard-turn");
	for (e = spec->argv; *e != NULL; e++)
		json_array_append_new(cmd, json_string(*e));
	json_object_set_new(c, "command", cmd);
}
