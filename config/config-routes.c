/*
 * Where a task comes from and where it goes: chat routes (adapter and
 * channel) and webhooks (an HTTP path), each to a repo, an agent, a brain.
 */

#include "config/config-int.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

void
cfg_load_routes(struct load *ld, struct config *c)
{
	const config_setting_t	*list, *item;
	struct cfg_route	*r;
	int			 i, n;
	size_t			 j;

	list = config_lookup(&ld->cf, "routes");
	n = cfg_list_length(list);
	c->routes = xcalloc(n + 1, sizeof *c->routes);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		r = &c->routes[c->nroutes++];
		r->adapter = cfg_dup_str(item, "routes.[]", "adapter");
		r->channel = cfg_dup_str(item, "routes.[]", "channel");
		r->repo = cfg_dup_str(item, "routes.[]", "repo");
		r->agent = cfg_dup_str(item, "routes.[]", "agent");
		r->brain = cfg_dup_str(item, "routes.[]", "brain");
		if (r->brain != NULL && config_brain(c, r->brain) == NULL)
			schema_error(&ld->errs, cfg_find(item, "brain"),
			    "routes.[%d].brain: no brain named '%s'", i,
			    r->brain);
		if (config_repo(c, r->repo) == NULL)
			schema_error(&ld->errs, cfg_find(item, "repo"),
			    "routes.[%d].repo: no repo named '%s'", i, r->repo);
		if (config_agent(c, r->agent) == NULL)
			schema_error(&ld->errs, cfg_find(item, "agent"),
			    "routes.[%d].agent: no agent named '%s'", i,
			    r->agent);
		for (j = 0; j + 1 < c->nroutes; j++) {
			if (strcmp(c->routes[j].adapter, r->adapter) == 0 &&
			    strcmp(c->routes[j].channel, r->channel) == 0) {
				schema_error(&ld->errs, item, "routes.[%d]: "
				    "duplicate route for %s channel '%s'", i,
				    r->adapter, r->channel);
				break;
			}
		}
	}
}

static int
adapter_on(const struct config *c, const char *name)
{
	if (strcmp(name, "console") == 0)
		return c->console.enabled;
	if (strcmp(name, "slack") == 0)
		return c->slack.enabled;
	if (strcmp(name, "web") == 0)
		return c->web.enabled;
	return c->matrix.enabled;
}

/* A list of strings, or def (NULL-terminated) when the key is absent. */
static char **
strings_or(const config_setting_t *s, const char *const *def, size_t *n)
{
	char	**v;
	size_t	  i;

	if (s != NULL)
		return cfg_strings(s, n);
	for (i = 0; def[i] != NULL; i++)
		;
	v = xcalloc(i + 1, sizeof *v);
	for (*n = 0; *n < i; (*n)++)
		v[*n] = xstrdup(def[*n]);
	return v;
}

/*
 * The list defaults are here, not in the schema table, because the table's
 * defaults are single values; the help text there says the same.
 */
static const char *const webhook_labels_def[] = { "agent", NULL };
static const char *const webhook_events_def[] = { "issues", "issue_comment",
    "pull_request", "workflow_run", "check_run", NULL };

void
cfg_load_webhooks(struct load *ld, struct config *c)
{
	const char		*p = "webhooks.[]";
	const config_setting_t	*list, *item;
	struct cfg_webhook	*w;
	const char		*url;
	char			*gp;
	size_t			 j, len;
	int			 i, n;

	list = config_lookup(&ld->cf, "webhooks");
	n = cfg_list_length(list);
	c->webhooks = xcalloc(n + 1, sizeof *c->webhooks);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		w = &c->webhooks[c->nwebhooks++];
		w->name = cfg_dup_str(item, p, "name");
		w->enabled = cfg_bool(item, p, "enabled");
		w->path = cfg_dup_str(item, p, "path");
		w->kind = cfg_dup_str(item, p, "kind");
		w->secret_ref = cfg_dup_str(item, p, "secret");
		w->target_adapter = cfg_dup_str(item, p, "target.adapter");
		w->target_channel = cfg_dup_str(item, p, "target.channel");
		w->repo = cfg_dup_str(item, p, "repo");
		w->agent = cfg_dup_str(item, p, "agent");
		w->github.labels = strings_or(cfg_find(item, "github.labels"),
		    webhook_labels_def, &w->github.nlabels);
		w->github.command = cfg_dup_str(item, p, "github.command");
		w->github.events = strings_or(cfg_find(item, "github.events"),
		    webhook_events_def, &w->github.nevents);
		w->github.token_ref = cfg_dup_str(item, p, "github.token");
		url = cfg_str(item, p, "github.api_url");
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		/* Callers append "/repos/...". */
		w->github.api_url = xstrndup(url, len);
		w->generic.task_field = cfg_dup_str(item, p,
		    "generic.task_field");
		w->generic.thread_field = cfg_dup_str(item, p,
		    "generic.thread_field");
		w->generic.id_field = cfg_dup_str(item, p, "generic.id_field");
		w->generic.timestamp_header = cfg_dup_str(item, p,
		    "generic.timestamp_header");
		w->generic.signature_header = cfg_dup_str(item, p,
		    "generic.signature_header");

		for (j = 0; j + 1 < c->nwebhooks; j++) {
			if (strcmp(c->webhooks[j].name, w->name) == 0)
				schema_error(&ld->errs, cfg_find(item, "name"),
				    "webhooks.[%d].name: duplicate webhook "
				    "name '%s'", i, w->name);
			if (strcmp(c->webhooks[j].path, w->path) == 0)
				schema_error(&ld->errs, cfg_find(item, "path"),
				    "webhooks.[%d].path: '%s' is already "
				    "webhook '%s'", i, w->path,
				    c->webhooks[j].name);
		}
		if (strcmp(w->path, "/healthz") == 0 ||
		    strcmp(w->path, "/metrics") == 0)
			schema_error(&ld->errs, cfg_find(item, "path"),
			    "webhooks.[%d].path: '%s' is built in", i, w->path);
		if (config_repo(c, w->repo) == NULL)
			schema_error(&ld->errs, cfg_find(item, "repo"),
			    "webhooks.[%d].repo: no repo named '%s'", i,
			    w->repo);
		if (config_agent(c, w->agent) == NULL)
			schema_error(&ld->errs, cfg_find(item, "agent"),
			    "webhooks.[%d].agent: no agent named '%s'", i,
			    w->agent);
		w->brain = cfg_dup_str(item, p, "brain");
		if (w->brain != NULL && config_brain(c, w->brain) == NULL)
			schema_error(&ld->errs, cfg_find(item, "brain"),
			    "webhooks.[%d].brain: no brain named '%s'", i,
			    w->brain);
		if (strcmp(w->kind, "github") != 0 &&
		    cfg_find(item, "github") != NULL)
			schema_error(&ld->errs, cfg_find(item, "github"),
			    "webhooks.[%d].github: only for kind \"github\"",
			    i);
		if (strcmp(w->kind, "generic") != 0 &&
		    cfg_find(item, "generic") != NULL)
			schema_error(&ld->errs, cfg_find(item, "generic"),
			    "webhooks.[%d].generic: only for kind \"generic\"",
			    i);
		if (!w->enabled)
			continue;
		if (*c->http_listen == '\0')
			schema_error(&ld->errs, item, "webhooks.[%d]: an "
			    "enabled webhook needs http.listen", i);
		/* Its threads would wait in the outbox for ever. */
		if (!adapter_on(c, w->target_adapter))
			schema_error(&ld->errs,
			    cfg_find(item, "target.adapter"),
			    "webhooks.[%d].target.adapter: adapter '%s' is "
			    "not enabled", i, w->target_adapter);
		gp = xasprintf("webhooks.[%d]", i);
		w->secret = cfg_secret(ld, item, gp, "secret");
		w->github.token = cfg_secret(ld, item, gp, "github.token");
		free(gp);
	}
}
