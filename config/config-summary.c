/* What a config says, for people, and what a reload cannot change. */

#include "config/config.h"
#include "bot/util.h"

#include <string.h>

static const char *
or_unset(const char *s)
{
	return s == NULL ? "(unset)" : s;
}

char *
config_summary(const struct config *c)
{
	struct buf	 b = { 0 };
	size_t		 i, j;

	buf_printf(&b, "config:     %s\n", c->path);
	buf_printf(&b, "state dir:  %s\n", c->state_dir);
	buf_printf(&b, "http:       %s\n", *c->http_listen == '\0' ?
	    "off" : c->http_listen);
	buf_printf(&b, "log:        %s%s to %s\n", c->log_level,
	    c->log_json ? " json" : "", c->log_file ? c->log_file : "stderr");
	buf_adds(&b, "adapters:  ");
	if (!c->console.enabled && !c->slack.enabled && !c->matrix.enabled &&
	    !c->web.enabled)
		buf_adds(&b, " none");
	if (c->console.enabled)
		buf_adds(&b, " console");
	if (c->slack.enabled)
		buf_printf(&b, " slack (%s mode, %s, bot_token %s, "
		    "app_token %s, signing_secret %s)", c->slack.mode,
		    c->slack.api_url, or_unset(c->slack.bot_token_ref),
		    or_unset(c->slack.app_token_ref),
		    or_unset(c->slack.signing_secret_ref));
	if (c->matrix.enabled)
		buf_printf(&b, " matrix (%s on %s, access_token %s, "
		    "password %s)", c->matrix.user_id, c->matrix.homeserver,
		    or_unset(c->matrix.access_token_ref),
		    or_unset(c->matrix.password_ref));
	if (c->web.enabled)
		buf_printf(&b, " web (http://%s/ as web:%s)", c->http_listen,
		    c->web.user);
	buf_adds(&b, "\naccess:    ");
	if (c->nallowed_users == 0)
		buf_adds(&b, " nobody");
	for (i = 0; i < c->nallowed_users; i++)
		buf_printf(&b, " %s", c->allowed_users[i]);
	buf_printf(&b, "\nrepos:      %zu\n", c->nrepos);
	for (i = 0; i < c->nrepos; i++)
		buf_printf(&b, "  %s: %s (base %s)\n", c->repos[i].name,
		    c->repos[i].path, c->repos[i].base);
	buf_printf(&b, "agents:     %zu\n", c->nagents);
	for (i = 0; i < c->nagents; i++) {
		buf_printf(&b, "  %s: %s", c->agents[i].name,
		    c->agents[i].driver);
		for (j = 0; j < c->agents[i].ncommand; j++)
			buf_printf(&b, " %s", c->agents[i].command[j]);
		if (c->agents[i].timeout > 0)
			buf_printf(&b, " (timeout %ds)", c->agents[i].timeout);
		if (c->agents[i].approvals_chat)
			buf_adds(&b, " (approvals in chat)");
		buf_adds(&b, "\n");
	}
	buf_printf(&b, "routes:     %zu\n", c->nroutes);
	for (i = 0; i < c->nroutes; i++)
		buf_printf(&b, "  %s %s -> %s with %s%s%s\n",
		    c->routes[i].adapter, c->routes[i].channel,
		    c->routes[i].repo, c->routes[i].agent,
		    c->routes[i].brain != NULL ? ", brain " : "",
		    c->routes[i].brain != NULL ? c->routes[i].brain : "");
	buf_printf(&b, "brains:     %zu\n", c->nbrains);
	for (i = 0; i < c->nbrains; i++)
		buf_printf(&b, "  %s: %s %s at %s, key %s\n", c->brains[i].name,
		    c->brains[i].provider, c->brains[i].model,
		    c->brains[i].base_url, c->brains[i].api_key_ref != NULL ?
		    c->brains[i].api_key_ref : "(none)");
	buf_printf(&b, "webhooks:   %zu\n", c->nwebhooks);
	for (i = 0; i < c->nwebhooks; i++) {
		const struct cfg_webhook *w = &c->webhooks[i];

		buf_printf(&b, "  %s: %s POST %s -> %s %s, %s with %s, secret "
		    "%s%s%s%s\n", w->name, w->kind, w->path, w->target_adapter,
		    w->target_channel, w->repo, w->agent, w->secret_ref,
		    w->github.token_ref != NULL ? ", token " : "",
		    w->github.token_ref != NULL ? w->github.token_ref : "",
		    w->enabled ? "" : " (disabled)");
	}
	buf_printf(&b, "limits:     %d agents, %d per conversation, timeout "
	    "%ds, kill grace %ds\n", c->limits.max_agents,
	    c->limits.max_agents_per_conversation, c->limits.agent_timeout,
	    c->limits.kill_grace);
	return buf_steal(&b);
}

static int
differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static void
note(struct buf *b, int changed, const char *key)
{
	if (changed)
		buf_printf(b, "%s%s", b->len > 0 ? ", " : "", key);
}

/*
 * Only what is bound at start-up: the state dir (database, sockets), the
 * listening socket, the log sink, and the adapters' connections.  Secrets are
 * compared by value too, so rotating a token file is noticed.
 */
char *
config_reload_diff(const struct config *o, const struct config *n)
{
	struct buf	 b = { 0 };

	note(&b, differ(o->state_dir, n->state_dir), "state_dir");
	note(&b, differ(o->http_listen, n->http_listen), "http.listen");
	note(&b, o->http_max_body != n->http_max_body, "http.max_body");
	note(&b, differ(o->agent_listener.listen, n->agent_listener.listen),
	    "agent_listener.listen");
	note(&b, differ(o->agent_listener.cert, n->agent_listener.cert) ||
	    differ(o->agent_listener.key, n->agent_listener.key),
	    "agent_listener.cert/key");
	note(&b, o->log_json != n->log_json, "log.json");
	note(&b, differ(o->log_file, n->log_file), "log.file");
	note(&b, o->console.enabled != n->console.enabled,
	    "adapters.console.enabled");
	note(&b, o->slack.enabled != n->slack.enabled,
	    "adapters.slack.enabled");
	note(&b, differ(o->slack.mode, n->slack.mode), "adapters.slack.mode");
	note(&b, differ(o->slack.api_url, n->slack.api_url),
	    "adapters.slack.api_url");
	note(&b, differ(o->slack.app_token_ref, n->slack.app_token_ref) ||
	    differ(o->slack.app_token, n->slack.app_token),
	    "adapters.slack.app_token");
	note(&b, differ(o->slack.bot_token_ref, n->slack.bot_token_ref) ||
	    differ(o->slack.bot_token, n->slack.bot_token),
	    "adapters.slack.bot_token");
	note(&b, differ(o->slack.signing_secret_ref,
	    n->slack.signing_secret_ref) ||
	    differ(o->slack.signing_secret, n->slack.signing_secret),
	    "adapters.slack.signing_secret");
	note(&b, o->matrix.enabled != n->matrix.enabled,
	    "adapters.matrix.enabled");
	note(&b, differ(o->matrix.homeserver, n->matrix.homeserver),
	    "adapters.matrix.homeserver");
	note(&b, differ(o->matrix.user_id, n->matrix.user_id),
	    "adapters.matrix.user_id");
	note(&b, differ(o->matrix.access_token_ref, n->matrix.access_token_ref) ||
	    differ(o->matrix.access_token, n->matrix.access_token),
	    "adapters.matrix.access_token");
	note(&b, differ(o->matrix.password_ref, n->matrix.password_ref) ||
	    differ(o->matrix.password, n->matrix.password),
	    "adapters.matrix.password");
	note(&b, o->web.enabled != n->web.enabled, "adapters.web.enabled");
	note(&b, differ(o->web.user, n->web.user), "adapters.web.user");
	note(&b, o->web.allow_remote != n->web.allow_remote,
	    "adapters.web.allow_remote");
	if (b.len == 0)
		return NULL;
	return buf_steal(&b);
}

#define SWAP(a, b) do {					\
	__typeof__(a) swap_tmp_ = (a);				\
	(a) = (b);						\
	(b) = swap_tmp_;					\
} while (0)

void
config_keep_restart_keys(struct config *o, struct config *n)
{
	/*
	 * Swapped, not copied: each config still frees exactly what it
	 * holds, and the retired one keeps the values nobody uses any more.
	 * Keep this list in step with config_reload_diff().
	 */
	SWAP(o->state_dir, n->state_dir);
	SWAP(o->http_listen, n->http_listen);
	SWAP(o->http_max_body, n->http_max_body);
	SWAP(o->agent_listener.listen, n->agent_listener.listen);
	SWAP(o->agent_listener.cert, n->agent_listener.cert);
	SWAP(o->agent_listener.key, n->agent_listener.key);
	SWAP(o->log_json, n->log_json);
	SWAP(o->log_file, n->log_file);
	SWAP(o->console, n->console);
	SWAP(o->slack, n->slack);
	SWAP(o->matrix, n->matrix);
	SWAP(o->web, n->web);
}
