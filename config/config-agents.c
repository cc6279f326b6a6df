/* The agents list, with each agent's runner (local or kubernetes). */

#include "config/config-int.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

/* runner and kubernetes: issue 19. */
static void
load_agent_runner(struct load *ld, const config_setting_t *item, int i,
    struct cfg_agent *a)
{
	const char	*p = "agents.[]";
	struct cfg_kube	*k;

	a->runner = cfg_dup_str(item, p, "runner");
	if (strcmp(a->runner, "kubernetes") != 0) {
		if (cfg_find(item, "kubernetes") != NULL)
			schema_error(&ld->errs, cfg_find(item, "kubernetes"),
			    "agents.[%d].kubernetes: needs runner = "
			    "\"kubernetes\"", i);
		return;
	}
	a->kube = k = xcalloc(1, sizeof *k);
	k->mode = cfg_dup_str(item, p, "kubernetes.mode");
	k->claim = strcmp(k->mode, "sandbox-claim") == 0;
	k->sandbox_template = cfg_dup_str(item, p,
	    "kubernetes.sandbox_template");
	k->warm_pool = cfg_dup_str(item, p, "kubernetes.warm_pool");
	k->ready_timeout = cfg_int(item, p, "kubernetes.ready_timeout");
	k->claim_ttl = cfg_int(item, p, "kubernetes.claim_ttl");
	if (k->claim && k->sandbox_template == NULL)
		schema_error(&ld->errs, item, "agents.[%d].kubernetes: mode "
		    "\"sandbox-claim\" needs sandbox_template", i);
	k->namespace = cfg_dup_str(item, p, "kubernetes.namespace");
	k->image = cfg_dup_str(item, p, "kubernetes.image");
	k->service_account = cfg_dup_str(item, p, "kubernetes.service_account");
	k->runtime_class = cfg_dup_str(item, p, "kubernetes.runtime_class");
	k->requests_cpu = cfg_dup_str(item, p, "kubernetes.requests_cpu");
	k->requests_memory = cfg_dup_str(item, p, "kubernetes.requests_memory");
	k->limits_cpu = cfg_dup_str(item, p, "kubernetes.limits_cpu");
	k->limits_memory = cfg_dup_str(item, p, "kubernetes.limits_memory");
	k->node_selector = cfg_strings(cfg_find(item,
	    "kubernetes.node_selector"), &k->nnode_selector);
	k->tolerations = cfg_strings(cfg_find(item, "kubernetes.tolerations"),
	    &k->ntolerations);
	k->image_pull_secrets = cfg_strings(cfg_find(item,
	    "kubernetes.image_pull_secrets"), &k->nimage_pull_secrets);
	k->git_image = cfg_dup_str(item, p, "kubernetes.git_image");
	k->git_secret = cfg_dup_str(item, p, "kubernetes.git_secret");
	if (k->image == NULL && !k->claim)
		schema_error(&ld->errs, item, "agents.[%d].kubernetes.image: "
		    "runner \"kubernetes\" needs an image", i);
}

void
cfg_kube_free(struct cfg_kube *k)
{
	if (k == NULL)
		return;
	free(k->mode);
	free(k->namespace);
	free(k->image);
	free(k->service_account);
	free(k->runtime_class);
	free(k->requests_cpu);
	free(k->requests_memory);
	free(k->limits_cpu);
	free(k->limits_memory);
	cfg_strings_free(k->node_selector);
	cfg_strings_free(k->tolerations);
	cfg_strings_free(k->image_pull_secrets);
	free(k->kubeconfig);
	free(k->git_image);
	free(k->git_secret);
	free(k->daemon_id);
	free(k->agent_url);
	free(k->sandbox_template);
	free(k->warm_pool);
	free(k->agent_ca);
	free(k);
}

void
cfg_load_agents(struct load *ld, struct config *c)
{
	const config_setting_t	*list, *item;
	struct cfg_agent	*a;
	int			 i, n;
	size_t			 j;

	list = config_lookup(&ld->cf, "agents");
	n = cfg_list_length(list);
	c->agents = xcalloc(n + 1, sizeof *c->agents);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		a = &c->agents[c->nagents++];
		a->name = cfg_dup_str(item, "agents.[]", "name");
		a->driver = cfg_dup_str(item, "agents.[]", "driver");
		a->command = cfg_strings(cfg_find(item, "command"),
		    &a->ncommand);
		a->timeout = cfg_int(item, "agents.[]", "timeout");
		a->model = cfg_dup_str(item, "agents.[]", "model");
		a->permission_mode = cfg_dup_str(item, "agents.[]",
		    "permission_mode");
		a->args = cfg_strings(cfg_find(item, "args"), &a->nargs);
		a->approvals_chat = strcmp(cfg_str(item, "agents.[]",
		    "approvals"), "chat") == 0;
		a->auto_allow = cfg_strings(cfg_find(item, "auto_allow"),
		    &a->nauto_allow);
		a->auto_deny = cfg_strings(cfg_find(item, "auto_deny"),
		    &a->nauto_deny);
		a->max_turns = cfg_int(item, "agents.[]", "max_turns");
		a->max_wall_time = cfg_int(item, "agents.[]", "max_wall_time");
		a->max_cost_usd = cfg_float(item, "agents.[]", "max_cost_usd");
		a->codex_sandbox = cfg_dup_str(item, "agents.[]",
		    "codex_sandbox");
		if (a->codex_sandbox != NULL && strcmp(a->driver, "codex") != 0)
			schema_error(&ld->errs, cfg_find(item, "codex_sandbox"),
			    "agents.[%d].codex_sandbox: needs driver \"codex\"",
			    i);
		a->sandbox = strcmp(cfg_str(item, "agents.[]", "sandbox"),
		    "off") != 0;
		a->network = cfg_bool(item, "agents.[]", "network");
		a->sandbox_paths = cfg_strings(cfg_find(item, "sandbox_paths"),
		    &a->nsandbox_paths);
		load_agent_runner(ld, item, i, a);
		if (a->approvals_chat && strcmp(a->driver, "claude") != 0)
			schema_error(&ld->errs, cfg_find(item, "approvals"),
			    "agents.[%d].approvals: \"chat\" needs driver "
			    "\"claude\"", i);
		for (j = 0; j + 1 < c->nagents; j++) {
			if (strcmp(c->agents[j].name, a->name) == 0) {
				schema_error(&ld->errs, cfg_find(item, "name"),
				    "agents.[%d].name: duplicate agent name "
				    "'%s'", i, a->name);
				break;
			}
		}
		if (strcmp(a->driver, "command") == 0 &&
		    (a->ncommand == 0 || *a->command[0] == '\0'))
			schema_error(&ld->errs, item, "agents.[%d].command: "
			    "driver \"command\" needs a non-empty command list",
			    i);
		/*
		 * A relative program path ("examples/x.sh") means the config's
		 * directory, like every other path here; the child runs in
		 * its worktree, where such a path would not resolve.  A bare
		 * name ("claude") is looked up in PATH as usual.
		 */
		if (a->ncommand > 0 && a->command[0][0] != '/' &&
		    strchr(a->command[0], '/') != NULL) {
			char *abs = cfg_path(ld, a->command[0]);

			free(a->command[0]);
			a->command[0] = abs;
		}
	}
}
