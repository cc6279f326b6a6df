#include "config/config.h"
#include "config/config-int.h"
#include "config/schema.h"
#include "bot/log.h"
#include "bot/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Larger than any token; a bigger "secret" file is a wrong path. */
#define SECRET_MAX	65536

config_setting_t *
cfg_find(const config_setting_t *base, const char *rel)
{
	if (base == NULL)
		return NULL;
	return config_setting_lookup((config_setting_t *)base, rel);
}

/* The table's default for prefix.rel; asking for a key not in it is a bug. */
static const char *
def(const char *prefix, const char *rel)
{
	const struct schema_key	*k;
	char			*path;

	path = *prefix == '\0' ? xstrdup(rel) : xasprintf("%s.%s", prefix, rel);
	if ((k = schema_lookup(path)) == NULL)
		fatalx("config: %s is not in the schema", path);
	free(path);
	return k->def;
}

const char *
cfg_str(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;

	if ((s = cfg_find(base, rel)) != NULL)
		return config_setting_get_string(s);
	return def(prefix, rel);
}

char *
cfg_dup_str(const config_setting_t *base, const char *prefix, const char *rel)
{
	const char	*v = cfg_str(base, prefix, rel);

	return v == NULL ? NULL : xstrdup(v);
}

long long
cfg_int(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;
	const char		*d;

	if ((s = cfg_find(base, rel)) != NULL)
		return config_setting_get_int64(s);
	d = def(prefix, rel);
	return d == NULL ? 0 : strtoll(d, NULL, 10);
}

double
cfg_float(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;
	const char		*d;

	if ((s = cfg_find(base, rel)) != NULL)
		return config_setting_type(s) == CONFIG_TYPE_FLOAT ?
		    config_setting_get_float(s) :
		    (double)config_setting_get_int64(s);
	d = def(prefix, rel);
	return d == NULL ? 0 : strtod(d, NULL);
}

int
cfg_bool(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;
	const char		*d;

	if ((s = cfg_find(base, rel)) != NULL)
		return config_setting_get_bool(s);
	d = def(prefix, rel);
	return d != NULL && strcmp(d, "true") == 0;
}

/* A NULL-terminated copy of a list of strings; *n excludes the NULL. */
char **
cfg_strings(const config_setting_t *s, size_t *n)
{
	char	**v;
	int	  i, len;

	len = s == NULL ? 0 : config_setting_length(s);
	v = xcalloc(len + 1, sizeof *v);
	for (i = 0; i < len; i++)
		v[i] = xstrdup(config_setting_get_string_elem(s, i));
	*n = len;
	return v;
}

void
cfg_strings_free(char **v)
{
	char	**p;

	if (v == NULL)
		return;
	for (p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/*
 * Relative to the config file's directory, not the working directory, so
 * "switchboard serve -c /etc/switchboard/x.conf" means the same from anywhere.
 */
char *
cfg_path(const struct load *ld, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0 || *p == '\0')
		return xstrdup(ld->dir);
	return xasprintf("%s/%s", ld->dir, p);
}

void
cfg_secret_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static char *
read_secret_file(const char *path, char **why)
{
	char		*data;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = xasprintf("cannot read secret file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	data = xmalloc(SECRET_MAX + 1);
	while (len < SECRET_MAX &&
	    (n = read(fd, data + len, SECRET_MAX - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			*why = xasprintf("cannot read secret file %s: %s",
			    path, strerror(errno));
			goto fail;
		}
		len += n;
	}
	if (len == SECRET_MAX) {
		*why = xasprintf("secret file %s is too large", path);
		goto fail;
	}
	close(fd);
	/* Editors and "echo x > file" add a newline that is not the secret. */
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	data[len] = '\0';
	if (len == 0) {
		*why = xasprintf("secret file %s is empty", path);
		free(data);
		return NULL;
	}
	return data;

fail:
	close(fd);
	explicit_bzero(data, len);
	free(data);
	return NULL;
}

static const char *(*env_lookup)(const char *);

void
config_set_env_lookup(const char *(*fn)(const char *))
{
	env_lookup = fn;
}

/* Errors name the key and the reference, never the value. */
char *
cfg_secret(struct load *ld, const config_setting_t *adapter,
    const char *adapter_path, const char *key)
{
	const config_setting_t	*s;
	const char		*ref, *v;
	char			*path, *why = NULL, *out;

	if ((s = cfg_find(adapter, key)) == NULL)
		return NULL;
	ref = config_setting_get_string(s);
	if (strncmp(ref, "env:", 4) == 0) {
		v = env_lookup != NULL ? env_lookup(ref + 4) : getenv(ref + 4);
		if (v == NULL) {
			schema_error(&ld->errs, s, "%s.%s: environment variable "
			    "%s is not set", adapter_path, key, ref + 4);
			return NULL;
		}
		if (*v == '\0') {
			schema_error(&ld->errs, s, "%s.%s: environment variable "
			    "%s is empty", adapter_path, key, ref + 4);
			return NULL;
		}
		return xstrdup(v);
	}
	path = cfg_path(ld, ref + 5);
	out = read_secret_file(path, &why);
	free(path);
	if (out == NULL) {
		schema_error(&ld->errs, s, "%s.%s: %s", adapter_path, key, why);
		free(why);
	}
	return out;
}

int
cfg_list_length(const config_setting_t *s)
{
	return s == NULL ? 0 : config_setting_length(s);
}

static struct config *
load_config(struct load *ld)
{
	const config_setting_t	*root = config_root_setting(&ld->cf);
	struct config		*c;
	const char		*v;

	c = xcalloc(1, sizeof *c);
	c->path = xstrdup(ld->path);
	c->state_dir = cfg_path(ld, cfg_str(root, "", "state_dir"));
	c->http_listen = cfg_dup_str(root, "", "http.listen");
	c->http_max_body = cfg_int(root, "", "http.max_body");
	c->http_health_grace = cfg_int(root, "", "http.health_grace");
	c->log_level = cfg_dup_str(root, "", "log.level");
	c->log_json = cfg_bool(root, "", "log.json");
	if ((v = cfg_str(root, "", "log.file")) != NULL)
		c->log_file = cfg_path(ld, v);
	c->allowed_users = cfg_strings(cfg_find(root, "access.allowed_users"),
	    &c->nallowed_users);

	cfg_load_repos(ld, c);
	cfg_load_agents(ld, c);
	cfg_load_brains(ld, c);	/* before routes and webhooks, which name them */
	cfg_load_routes(ld, c);

	c->console.enabled = cfg_bool(root, "", "adapters.console.enabled");
	cfg_load_slack(ld, c);
	cfg_load_matrix(ld, c);
	cfg_load_web(ld, c);
	cfg_load_webhooks(ld, c);
	cfg_brain_keys(ld, c);

	c->limits.max_agents = cfg_int(root, "", "limits.max_agents");
	c->limits.max_agents_per_conversation = cfg_int(root, "",
	    "limits.max_agents_per_conversation");
	c->limits.agent_timeout = cfg_int(root, "", "limits.agent_timeout");
	c->limits.kill_grace = cfg_int(root, "", "limits.kill_grace");
	c->limits.output_tail = cfg_int(root, "", "limits.output_tail");
	c->limits.keep_ended = cfg_int(root, "", "limits.keep_ended");
	c->limits.keep_conversations = cfg_int(root, "",
	    "limits.keep_conversations");
	c->limits.log_size = cfg_int(root, "", "limits.log_size");
	c->git.name = cfg_dup_str(root, "", "git.name");
	c->git.email = cfg_dup_str(root, "", "git.email");
	c->git.retention = cfg_int(root, "", "git.retention");
	c->render.card_interval_ms = cfg_int(root, "", "render.card_interval_ms");
	if ((v = cfg_str(root, "", "cluster.kubeconfig")) != NULL)
		c->cluster.kubeconfig = cfg_path(ld, v);
	c->cluster.daemon_id = cfg_dup_str(root, "", "cluster.daemon_id");
	for (size_t i = 0; i < c->nagents; i++) {
		if (c->agents[i].kube != NULL && c->cluster.kubeconfig != NULL)
			c->agents[i].kube->kubeconfig =
			    xstrdup(c->cluster.kubeconfig);
		if (c->agents[i].kube != NULL && c->cluster.daemon_id != NULL)
			c->agents[i].kube->daemon_id =
			    xstrdup(c->cluster.daemon_id);
	}
	cfg_load_agent_listener(ld, c);
	return c;
}

int
config_load(const char *path, struct config **out, char **cause)
{
	struct load	 ld = { .path = path, .errs = { .file = path } };
	struct config	*c = NULL;
	const char	*file;
	char		*copy, real[PATH_MAX];
	FILE		*f;

	*out = NULL;
	*cause = NULL;
	/* libconfig says only "file I/O error"; say which and why. */
	if ((f = fopen(path, "r")) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	copy = xstrdup(path);
	if (realpath(dirname(copy), real) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		free(copy);
		return -1;
	}
	free(copy);
	ld.dir = xstrdup(real);

	config_init(&ld.cf);
	config_set_include_dir(&ld.cf, ld.dir);
	if (config_read_file(&ld.cf, path) != CONFIG_TRUE) {
		file = config_error_file(&ld.cf) ? config_error_file(&ld.cf) :
		    path;
		if (config_error_line(&ld.cf) > 0)
			*cause = xasprintf("%s:%d: %s", file,
			    config_error_line(&ld.cf), config_error_text(&ld.cf));
		else
			*cause = xasprintf("%s: %s", file,
			    config_error_text(&ld.cf));
		goto out;
	}
	/* Relations between keys assume every key already has the right type. */
	if (schema_validate(&ld.cf, &ld.errs) == 0)
		c = load_config(&ld);
	if (ld.errs.count > 0) {
		config_free(c);
		c = NULL;
		*cause = buf_steal(&ld.errs.text);
	}

out:
	buf_free(&ld.errs.text);
	config_destroy(&ld.cf);
	free(ld.dir);
	*out = c;
	return c == NULL ? -1 : 0;
}

void
config_free(struct config *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->cluster.kubeconfig);
	free(c->cluster.daemon_id);
	free(c->agent_listener.listen);
	free(c->agent_listener.url);
	cfg_secret_free(c->agent_listener.cert);
	cfg_secret_free(c->agent_listener.key);
	free(c->agent_listener.ca);
	free(c->agent_listener.cert_ref);
	free(c->agent_listener.key_ref);
	free(c->agent_listener.ca_ref);
	free(c->state_dir);
	free(c->http_listen);
	free(c->log_level);
	free(c->log_file);
	cfg_strings_free(c->allowed_users);
	for (i = 0; i < c->nrepos; i++) {
		free(c->repos[i].name);
		free(c->repos[i].path);
		free(c->repos[i].base);
		free(c->repos[i].remote);
		free(c->repos[i].push_ssh_key);
		free(c->repos[i].push_user);
		cfg_secret_free(c->repos[i].push_token);
		free(c->repos[i].push_token_ref);
		cfg_strings_free(c->repos[i].check);
		free(c->repos[i].forge.kind);
		free(c->repos[i].forge.repo);
		cfg_secret_free(c->repos[i].forge.token);
		free(c->repos[i].forge.token_ref);
		free(c->repos[i].forge.api_url);
	}
	free(c->repos);
	for (i = 0; i < c->nagents; i++) {
		free(c->agents[i].name);
		free(c->agents[i].driver);
		cfg_strings_free(c->agents[i].command);
		free(c->agents[i].model);
		free(c->agents[i].permission_mode);
		free(c->agents[i].codex_sandbox);
		cfg_strings_free(c->agents[i].args);
		cfg_strings_free(c->agents[i].auto_allow);
		cfg_strings_free(c->agents[i].auto_deny);
		cfg_strings_free(c->agents[i].sandbox_paths);
		free(c->agents[i].runner);
		cfg_kube_free(c->agents[i].kube);
	}
	free(c->agents);
	for (i = 0; i < c->nroutes; i++) {
		free(c->routes[i].adapter);
		free(c->routes[i].channel);
		free(c->routes[i].repo);
		free(c->routes[i].agent);
		free(c->routes[i].brain);
	}
	free(c->routes);
	for (i = 0; i < c->nwebhooks; i++) {
		struct cfg_webhook *w = &c->webhooks[i];

		free(w->name);
		free(w->path);
		free(w->kind);
		cfg_secret_free(w->secret);
		free(w->secret_ref);
		free(w->target_adapter);
		free(w->target_channel);
		free(w->repo);
		free(w->agent);
		free(w->brain);
		cfg_strings_free(w->github.labels);
		free(w->github.command);
		cfg_strings_free(w->github.events);
		cfg_secret_free(w->github.token);
		free(w->github.token_ref);
		free(w->github.api_url);
		free(w->generic.task_field);
		free(w->generic.thread_field);
		free(w->generic.id_field);
		free(w->generic.timestamp_header);
		free(w->generic.signature_header);
	}
	free(c->webhooks);
	cfg_brains_free(c);
	free(c->slack.mode);
	cfg_secret_free(c->slack.app_token);
	cfg_secret_free(c->slack.bot_token);
	cfg_secret_free(c->slack.signing_secret);
	free(c->slack.api_url);
	free(c->slack.app_token_ref);
	free(c->slack.bot_token_ref);
	free(c->slack.signing_secret_ref);
	free(c->matrix.homeserver);
	free(c->matrix.user_id);
	cfg_secret_free(c->matrix.access_token);
	cfg_secret_free(c->matrix.password);
	free(c->matrix.access_token_ref);
	free(c->matrix.password_ref);
	free(c->web.user);
	free(c->git.name);
	free(c->git.email);
	free(c);
}

const struct cfg_repo *
config_repo(const struct config *c, const char *name)
{
	size_t	 i;

	/* NULL: a stored row without a repo (the column allows it). */
	for (i = 0; name != NULL && i < c->nrepos; i++) {
		if (strcmp(c->repos[i].name, name) == 0)
			return &c->repos[i];
	}
	return NULL;
}

const struct cfg_agent *
config_agent(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < c->nagents; i++) {
		if (strcmp(c->agents[i].name, name) == 0)
			return &c->agents[i];
	}
	return NULL;
}

const struct cfg_brain *
config_brain(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < c->nbrains; i++)
		if (strcmp(c->brains[i].name, name) == 0)
			return &c->brains[i];
	return NULL;
}

const struct cfg_webhook *
config_webhook(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->nwebhooks; i++) {
		if (strcmp(c->webhooks[i].name, name) == 0)
			return &c->webhooks[i];
	}
	return NULL;
}

const struct cfg_route *
config_route(const struct config *c, const char *adapter, const char *channel)
{
	const struct cfg_route	*any = NULL;
	size_t			 i;

	for (i = 0; i < c->nroutes; i++) {
		if (strcmp(c->routes[i].adapter, adapter) != 0)
			continue;
		if (strcmp(c->routes[i].channel, channel) == 0)
			return &c->routes[i];
		if (any == NULL && strcmp(c->routes[i].channel, "*") == 0)
			any = &c->routes[i];
	}
	return any;
}

int
config_user_allowed(const struct config *c, const char *adapter,
    const char *user)
{
	const char	*entry, *who;
	size_t		 i, alen = strlen(adapter);

	for (i = 0; i < c->nallowed_users; i++) {
		entry = c->allowed_users[i];
		if (strncmp(entry, adapter, alen) != 0 || entry[alen] != ':')
			continue;
		who = entry + alen + 1;
		if (strcmp(who, "*") == 0 || strcmp(who, user) == 0)
			return 1;
	}
	return 0;
}

char *
config_schema_doc(void)
{
	return schema_doc();
}

int
config_adapter_enabled(const struct config *c, const char *name)
{
	if (strcmp(name, "console") == 0)
		return c->console.enabled;
	if (strcmp(name, "slack") == 0)
		return c->slack.enabled;
	if (strcmp(name, "matrix") == 0)
		return c->matrix.enabled;
	if (strcmp(name, "web") == 0)
		return c->web.enabled;
	return 0;
}
