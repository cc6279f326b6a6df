/* The brains list: the LLM providers that routes and webhooks may use. */

#include "config/config-int.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

void
cfg_load_brains(struct load *ld, struct config *c)
{
	const char		*p = "brains.[]";
	const config_setting_t	*list, *item;
	struct cfg_brain	*b;
	const char		*url;
	size_t			 j, len;
	int			 i, n;

	list = config_lookup(&ld->cf, "brains");
	n = cfg_list_length(list);
	c->brains = xcalloc(n + 1, sizeof *c->brains);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		b = &c->brains[c->nbrains++];
		b->name = cfg_dup_str(item, p, "name");
		b->provider = cfg_dup_str(item, p, "provider");
		b->model = cfg_dup_str(item, p, "model");
		b->api_key_ref = cfg_dup_str(item, p, "api_key");
		url = cfg_str(item, p, "base_url");
		if (url == NULL)
			url = strcmp(b->provider, "anthropic") == 0 ?
			    "https://api.anthropic.com" :
			    "https://api.openai.com";
		/* The providers add "/v1/..."; a trailing '/' would double. */
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		b->base_url = xstrndup(url, len);
		b->max_tokens = cfg_int(item, p, "max_tokens");
		b->context_tokens = cfg_int(item, p, "context_tokens");
		b->timeout = cfg_int(item, p, "timeout");
		b->max_tool_rounds = cfg_int(item, p, "max_tool_rounds");
		b->price_in_per_mtok = cfg_float(item, p, "price_in_per_mtok");
		b->price_out_per_mtok = cfg_float(item, p,
		    "price_out_per_mtok");
		b->max_cost_usd_per_day = cfg_float(item, p,
		    "max_cost_usd_per_day");
		for (j = 0; j + 1 < c->nbrains; j++)
			if (strcmp(c->brains[j].name, b->name) == 0)
				schema_error(&ld->errs, cfg_find(item, "name"),
				    "brains.[%d].name: duplicate brain '%s'", i,
				    b->name);
		if (strcmp(b->provider, "anthropic") == 0 &&
		    b->api_key_ref == NULL)
			schema_error(&ld->errs, item, "brains.[%d].api_key: "
			    "required for provider \"anthropic\"", i);
	}
}

/*
 * A brain's key is resolved only when a route or an enabled webhook uses
 * it, like an adapter's secrets only when it is enabled: an example entry
 * must not need its environment variable.
 */
void
cfg_brain_keys(struct load *ld, struct config *c)
{
	const config_setting_t	*list;
	struct cfg_brain	*b;
	size_t			 i, j;
	int			 used;
	char			*gp;

	list = config_lookup(&ld->cf, "brains");
	for (i = 0; i < c->nbrains; i++) {
		b = &c->brains[i];
		used = 0;
		for (j = 0; j < c->nroutes; j++)
			if (c->routes[j].brain != NULL &&
			    strcmp(c->routes[j].brain, b->name) == 0)
				used = 1;
		for (j = 0; j < c->nwebhooks; j++)
			if (c->webhooks[j].enabled &&
			    c->webhooks[j].brain != NULL &&
			    strcmp(c->webhooks[j].brain, b->name) == 0)
				used = 1;
		if (!used)
			continue;
		gp = xasprintf("brains.[%zu]", i);
		b->api_key = cfg_secret(ld, config_setting_get_elem(list,
		    (unsigned)i), gp, "api_key");
		free(gp);
	}
}

void
cfg_brains_free(struct config *c)
{
	size_t	 i;

	for (i = 0; i < c->nbrains; i++) {
		free(c->brains[i].name);
		free(c->brains[i].provider);
		free(c->brains[i].model);
		cfg_secret_free(c->brains[i].api_key);
		free(c->brains[i].api_key_ref);
		free(c->brains[i].base_url);
	}
	free(c->brains);
}
