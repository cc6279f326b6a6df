/*
 * agent-env — the environment an agent's process gets: ours without the
 * bridge's secrets (see env_is_secret), plus its socket, token, id and
 * client.
 */
#include "orchestrator/agent-int.h"
#include "config/config.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Does entry (n = length of its name) name or hold this secret? */
static int
env_holds(const char *entry, size_t n, const char *ref, const char *value)
{
	if (ref != NULL && strncmp(ref, "env:", 4) == 0 &&
	    strlen(ref + 4) == n && strncmp(ref + 4, entry, n) == 0)
		return 1;
	return value != NULL && *value != '\0' && strcmp(entry + n + 1,
	    value) == 0;
}

/*
 * The bridge's secrets are never handed to a child: variables the config
 * names in an env: reference (enabled adapter or not), any variable holding
 * a resolved secret's value, and our own SWITCHBOARD_* settings.
 */
static int
env_is_secret(const char *entry)
{
	const char	*eq = strchr(entry, '=');
	const char	*secrets[5], *refs[5];
	size_t		 i, n;

	if (eq == NULL)
		return 1;
	if (strncmp(entry, "SWITCHBOARD_", 12) == 0)
		return 1;
	refs[0] = agent_cfg->slack.app_token_ref;
	refs[1] = agent_cfg->slack.bot_token_ref;
	refs[2] = agent_cfg->slack.signing_secret_ref;
	refs[3] = agent_cfg->matrix.access_token_ref;
	refs[4] = agent_cfg->matrix.password_ref;
	n = (size_t)(eq - entry);
	for (i = 0; i < nitems(refs); i++)
		if (refs[i] != NULL && strncmp(refs[i], "env:", 4) == 0 &&
		    strlen(refs[i] + 4) == n && strncmp(refs[i] + 4, entry, n) == 0)
			return 1;
	secrets[0] = agent_cfg->slack.app_token;
	secrets[1] = agent_cfg->slack.bot_token;
	secrets[2] = agent_cfg->slack.signing_secret;
	secrets[3] = agent_cfg->matrix.access_token;
	secrets[4] = agent_cfg->matrix.password;
	for (i = 0; i < nitems(secrets); i++)
		if (secrets[i] != NULL && *secrets[i] != '\0' &&
		    strcmp(eq + 1, secrets[i]) == 0)
			return 1;
	/* Webhook signing secrets and forge tokens are secrets too. */
	for (i = 0; i < agent_cfg->nwebhooks; i++)
		if (env_holds(entry, n, agent_cfg->webhooks[i].secret_ref,
		    agent_cfg->webhooks[i].secret) || env_holds(entry, n,
		    agent_cfg->webhooks[i].github.token_ref,
		    agent_cfg->webhooks[i].github.token))
			return 1;
	/* Push and pull-request tokens of the repos (results). */
	for (i = 0; i < agent_cfg->nrepos; i++)
		if (env_holds(entry, n, agent_cfg->repos[i].push_token_ref,
		    agent_cfg->repos[i].push_token) || env_holds(entry, n,
		    agent_cfg->repos[i].forge.token_ref,
		    agent_cfg->repos[i].forge.token))
			return 1;
	return 0;
}

char **
agent_child_env(struct agent *a)
{
	char	**env;
	size_t	  n = 0, k = 0, i;

	while (environ[n] != NULL)
		n++;
	env = xcalloc(n + 5, sizeof *env);
	for (i = 0; i < n; i++)
		if (!env_is_secret(environ[i]))
			env[k++] = xstrdup(environ[i]);
	env[k++] = xasprintf("SWITCHBOARD_SOCKET=%s", agent_sock);
	env[k++] = xasprintf("SWITCHBOARD_AGENT_TOKEN=%s", a->token);
	env[k++] = xasprintf("SWITCHBOARD_AGENT_ID=%lld", (long long)a->id);
	env[k++] = xasprintf("SWITCHBOARD_BIN=%s", agent_client_exe);
	env[k] = NULL;
	return env;
}
