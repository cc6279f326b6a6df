/* The chat adapters (slack, matrix, web) and the agents' TLS listener. */

#include "config/config-int.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static void
require(struct load *ld, const config_setting_t *group, const char *gpath,
    const char *key, const char *why)
{
	if (cfg_find(group, key) == NULL)
		schema_error(&ld->errs, group, "%s.%s is required %s", gpath,
		    key, why);
}

void
cfg_load_slack(struct load *ld, struct config *c)
{
	const char		*p = "adapters.slack";
	const config_setting_t	*g = config_lookup(&ld->cf, p);
	const char		*url;

	c->slack.enabled = cfg_bool(g, p, "enabled");
	c->slack.mode = cfg_dup_str(g, p, "mode");
	url = cfg_str(g, p, "api_url");
	/* Callers append method names ("chat.postMessage") to it. */
	if (url[strlen(url) - 1] == '/')
		c->slack.api_url = xstrdup(url);
	else
		c->slack.api_url = xasprintf("%s/", url);
	c->slack.socket_timeout_ms = (int)cfg_int(g, p, "socket_timeout_ms");
	c->slack.app_token_ref = cfg_dup_str(g, p, "app_token");
	c->slack.bot_token_ref = cfg_dup_str(g, p, "bot_token");
	c->slack.signing_secret_ref = cfg_dup_str(g, p, "signing_secret");
	if (!c->slack.enabled)
		return;

	require(ld, g, p, "bot_token", "when the adapter is enabled");
	if (strcmp(c->slack.mode, "socket") == 0)
		require(ld, g, p, "app_token", "in socket mode");
	else {
		require(ld, g, p, "signing_secret", "in events mode");
		if (*c->http_listen == '\0')
			schema_error(&ld->errs, cfg_find(g, "mode"), "%s.mode: "
			    "events mode needs http.listen", p);
	}
	c->slack.app_token = cfg_secret(ld, g, p, "app_token");
	c->slack.bot_token = cfg_secret(ld, g, p, "bot_token");
	c->slack.signing_secret = cfg_secret(ld, g, p, "signing_secret");
}

void
cfg_load_matrix(struct load *ld, struct config *c)
{
	const char		*p = "adapters.matrix";
	const config_setting_t	*g = config_lookup(&ld->cf, p);
	size_t			 len;

	c->matrix.enabled = cfg_bool(g, p, "enabled");
	c->matrix.homeserver = cfg_dup_str(g, p, "homeserver");
	/* Callers append "/_matrix/client/..." to it. */
	if (c->matrix.homeserver != NULL) {
		len = strlen(c->matrix.homeserver);
		while (len > 0 && c->matrix.homeserver[len - 1] == '/')
			c->matrix.homeserver[--len] = '\0';
	}
	c->matrix.user_id = cfg_dup_str(g, p, "user_id");
	c->matrix.autojoin = cfg_bool(g, p, "autojoin");
	c->matrix.access_token_ref = cfg_dup_str(g, p, "access_token");
	c->matrix.password_ref = cfg_dup_str(g, p, "password");
	if (!c->matrix.enabled)
		return;

	require(ld, g, p, "homeserver", "when the adapter is enabled");
	require(ld, g, p, "user_id", "when the adapter is enabled");
	if (cfg_find(g, "access_token") == NULL &&
	    cfg_find(g, "password") == NULL)
		schema_error(&ld->errs, g, "%s.access_token or %s.password is "
		    "required when the adapter is enabled", p, p);
	c->matrix.access_token = cfg_secret(ld, g, p, "access_token");
	c->matrix.password = cfg_secret(ld, g, p, "password");
}

/* "127.0.0.1:8080", "localhost:80", "[::1]:8080"; ":8080" listens on all. */
static int
listen_is_loopback(const char *listen)
{
	return strncmp(listen, "127.", 4) == 0 ||
	    strncmp(listen, "localhost:", 10) == 0 ||
	    strncmp(listen, "[::1]:", 6) == 0;
}

void
cfg_load_web(struct load *ld, struct config *c)
{
	const char		*p = "adapters.web";
	const config_setting_t	*g = config_lookup(&ld->cf, p);

	c->web.enabled = cfg_bool(g, p, "enabled");
	c->web.user = cfg_dup_str(g, p, "user");
	c->web.allow_remote = cfg_bool(g, p, "allow_remote");
	if (!c->web.enabled)
		return;
	if (*c->http_listen == '\0')
		schema_error(&ld->errs, cfg_find(g, "enabled"),
		    "%s.enabled: the web chat needs http.listen", p);
	else if (!listen_is_loopback(c->http_listen) && !c->web.allow_remote)
		schema_error(&ld->errs, cfg_find(g, "enabled"), "%s.enabled: "
		    "http.listen \"%s\" is not loopback; set %s.allow_remote "
		    "= true to serve the web chat beyond this machine", p,
		    c->http_listen, p);
}

void
cfg_load_agent_listener(struct load *ld, struct config *c)
{
	const char		*p = "agent_listener";
	const config_setting_t	*g = config_lookup(&ld->cf, p);
	struct cfg_kube		*k;
	size_t			 i;

	c->agent_listener.listen = cfg_dup_str(g, p, "listen");
	c->agent_listener.url = cfg_dup_str(g, p, "url");
	c->agent_listener.cert_ref = cfg_dup_str(g, p, "cert");
	c->agent_listener.key_ref = cfg_dup_str(g, p, "key");
	c->agent_listener.ca_ref = cfg_dup_str(g, p, "ca");
	if (*c->agent_listener.listen != '\0') {
		require(ld, g, p, "cert", "with listen");
		require(ld, g, p, "key", "with listen");
		c->agent_listener.cert = cfg_secret(ld, g, p, "cert");
		c->agent_listener.key = cfg_secret(ld, g, p, "key");
	}
	c->agent_listener.ca = cfg_secret(ld, g, p, "ca");
	if (c->agent_listener.ca == NULL && c->agent_listener.cert != NULL)
		c->agent_listener.ca = xstrdup(c->agent_listener.cert);
	for (i = 0; i < c->nagents; i++) {
		if ((k = c->agents[i].kube) == NULL)
			continue;
		if (c->agent_listener.url != NULL)
			k->agent_url = xstrdup(c->agent_listener.url);
		if (c->agent_listener.ca != NULL)
			k->agent_ca = xstrdup(c->agent_listener.ca);
	}
}
