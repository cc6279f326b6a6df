#include "config/config.h"
#include "config/schema.h"
#include "bot/log.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Larger than any token; a bigger "secret" file is a wrong path. */
#define SECRET_MAX	65536

struct load {
	const char		*path;
	char			*dir;		/* absolute directory of the file */
	config_t		 cf;
	struct schema_errors	 errs;
};

static config_setting_t *
find(const config_setting_t *base, const char *rel)
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

static const char *
get_str(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;

	if ((s = find(base, rel)) != NULL)
		return config_setting_get_string(s);
	return def(prefix, rel);
}

static char *
dup_str(const config_setting_t *base, const char *prefix, const char *rel)
{
	const char	*v = get_str(base, prefix, rel);

	return v == NULL ? NULL : xstrdup(v);
}

static long long
get_int(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;
	const char		*d;

	if ((s = find(base, rel)) != NULL)
		return config_setting_get_int64(s);
	d = def(prefix, rel);
	return d == NULL ? 0 : strtoll(d, NULL, 10);
}

static double
get_float(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;
	const char		*d;

	if ((s = find(base, rel)) != NULL)
		return config_setting_type(s) == CONFIG_TYPE_FLOAT ?
		    config_setting_get_float(s) :
		    (double)config_setting_get_int64(s);
	d = def(prefix, rel);
	return d == NULL ? 0 : strtod(d, NULL);
}

static int
get_bool(const config_setting_t *base, const char *prefix, const char *rel)
{
	const config_setting_t	*s;
	const char		*d;

	if ((s = find(base, rel)) != NULL)
		return config_setting_get_bool(s);
	d = def(prefix, rel);
	return d != NULL && strcmp(d, "true") == 0;
}

/* A NULL-terminated copy of a list of strings; *n excludes the NULL. */
static char **
get_strings(const config_setting_t *s, size_t *n)
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

static void
strings_free(char **v)
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
static char *
resolve_path(const struct load *ld, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0 || *p == '\0')
		return xstrdup(ld->dir);
	return xasprintf("%s/%s", ld->dir, p);
}

static void
secret_free(char *s)
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
static char *
resolve_secret(struct load *ld, const config_setting_t *adapter,
    const char *adapter_path, const char *key)
{
	const config_setting_t	*s;
	const char		*ref, *v;
	char			*path, *why = NULL, *out;

	if ((s = find(adapter, key)) == NULL)
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
	path = resolve_path(ld, ref + 5);
	out = read_secret_file(path, &why);
	free(path);
	if (out == NULL) {
		schema_error(&ld->errs, s, "%s.%s: %s", adapter_path, key, why);
		free(why);
	}
	return out;
}

static int
repo_check(const char *path, const char *base, char **why)
{
	git_repository	*repo = NULL;
	git_object	*obj = NULL;
	struct stat	 st;
	int		 rc = -1;

	if (stat(path, &st) == -1) {
		*why = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = xasprintf("%s is not a directory", path);
		return -1;
	}
	/* libgit2's init is reference-counted, so this nests with the daemon's. */
	git_libgit2_init();
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH,
	    NULL) != 0)
		*why = xasprintf("%s is not a git repository", path);
	else if (git_revparse_single(&obj, repo, base) != 0)
		*why = xasprintf("base \"%s\" does not exist in %s", base, path);
	else
		rc = 0;
	git_object_free(obj);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

static int
list_length(const config_setting_t *s)
{
	return s == NULL ? 0 : config_setting_length(s);
}

/* push, check, forge: the keys of issue "results". */
static void
load_repo_results(struct load *ld, const config_setting_t *item, int i,
    struct cfg_repo *r)
{
	const char	*p = "repos.[]", *url;
	char		*gp;
	size_t		 len;

	r->remote = dup_str(item, p, "remote");
	if (find(item, "push.ssh_key") != NULL)
		r->push_ssh_key = resolve_path(ld, get_str(item, p,
		    "push.ssh_key"));
	r->push_ssh_agent = get_bool(item, p, "push.ssh_agent");
	r->push_user = dup_str(item, p, "push.user");
	r->push_token_ref = dup_str(item, p, "push.token");
	if (find(item, "check") != NULL)
		r->check = get_strings(find(item, "check"), &r->ncheck);
	if (r->check != NULL && r->ncheck == 0) {
		free(r->check);
		r->check = NULL;
	}
	r->check_timeout = (int)get_int(item, p, "check_timeout");
	r->merge_push = get_bool(item, p, "merge_push");
	r->warm = (int)get_int(item, p, "warm");
	gp = xasprintf("repos.[%d]", i);
	r->push_token = resolve_secret(ld, item, gp, "push.token");
	if (find(item, "forge") != NULL) {
		r->forge.kind = dup_str(item, p, "forge.kind");
		r->forge.repo = dup_str(item, p, "forge.repo");
		r->forge.token_ref = dup_str(item, p, "forge.token");
		url = get_str(item, p, "forge.api_url");
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		r->forge.api_url = xstrndup(url, len);
		if (r->forge.repo != NULL && (strchr(r->forge.repo, '/') ==
		    NULL || strchr(r->forge.repo, '/') != strrchr(r->forge.repo,
		    '/')))
			schema_error(&ld->errs, find(item, "forge.repo"),
			    "%s.forge.repo: \"%s\" is not owner/name", gp,
			    r->forge.repo);
		r->forge.token = resolve_secret(ld, item, gp, "forge.token");
	}
	free(gp);
}

static void
load_repos(struct load *ld, struct config *c)
{
	const config_setting_t	*list, *item;
	struct cfg_repo		*r;
	char			*why;
	int			 i, n;
	size_t			 j;

	list = config_lookup(&ld->cf, "repos");
	n = list_length(list);
	c->repos = xcalloc(n + 1, sizeof *c->repos);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		r = &c->repos[c->nrepos++];
		r->name = dup_str(item, "repos.[]", "name");
		r->path = resolve_path(ld, get_str(item, "repos.[]", "path"));
		r->base = dup_str(item, "repos.[]", "base");
		load_repo_results(ld, item, i, r);
		for (j = 0; j + 1 < c->nrepos; j++) {
			if (strcmp(c->repos[j].name, r->name) == 0) {
				schema_error(&ld->errs, find(item, "name"),
				    "repos.[%d].name: duplicate repo name "
				    "'%s'", i, r->name);
				break;
			}
		}
		why = NULL;
		if (repo_check(r->path, r->base, &why) != 0) {
			schema_error(&ld->errs, find(item, "path"),
			    "repos.[%d].path: %s", i, why);
			free(why);
		}
	}
}

/* runner and kubernetes: issue 19. */
static void
load_agent_runner(struct load *ld, const config_setting_t *item, int i,
    struct cfg_agent *a)
{
	const char	*p = "agents.[]";
	struct cfg_kube	*k;

	a->runner = dup_str(item, p, "runner");
	if (strcmp(a->runner, "kubernetes") != 0) {
		if (find(item, "kubernetes") != NULL)
			schema_error(&ld->errs, find(item, "kubernetes"),
			    "agents.[%d].kubernetes: needs runner = "
			    "\"kubernetes\"", i);
		return;
	}
	a->kube = k = xcalloc(1, sizeof *k);
	k->mode = dup_str(item, p, "kubernetes.mode");
	k->claim = strcmp(k->mode, "sandbox-claim") == 0;
	k->sandbox_template = dup_str(item, p, "kubernetes.sandbox_template");
	k->warm_pool = dup_str(item, p, "kubernetes.warm_pool");
	k->ready_timeout = get_int(item, p, "kubernetes.ready_timeout");
	k->claim_ttl = get_int(item, p, "kubernetes.claim_ttl");
	if (k->claim && k->sandbox_template == NULL)
		schema_error(&ld->errs, item, "agents.[%d].kubernetes: mode "
		    "\"sandbox-claim\" needs sandbox_template", i);
	k->namespace = dup_str(item, p, "kubernetes.namespace");
	k->image = dup_str(item, p, "kubernetes.image");
	k->service_account = dup_str(item, p, "kubernetes.service_account");
	k->runtime_class = dup_str(item, p, "kubernetes.runtime_class");
	k->requests_cpu = dup_str(item, p, "kubernetes.requests_cpu");
	k->requests_memory = dup_str(item, p, "kubernetes.requests_memory");
	k->limits_cpu = dup_str(item, p, "kubernetes.limits_cpu");
	k->limits_memory = dup_str(item, p, "kubernetes.limits_memory");
	k->node_selector = get_strings(find(item, "kubernetes.node_selector"),
	    &k->nnode_selector);
	k->tolerations = get_strings(find(item, "kubernetes.tolerations"),
	    &k->ntolerations);
	k->image_pull_secrets = get_strings(find(item,
	    "kubernetes.image_pull_secrets"), &k->nimage_pull_secrets);
	k->git_image = dup_str(item, p, "kubernetes.git_image");
	k->git_secret = dup_str(item, p, "kubernetes.git_secret");
	if (k->image == NULL && !k->claim)
		schema_error(&ld->errs, item, "agents.[%d].kubernetes.image: "
		    "runner \"kubernetes\" needs an image", i);
}

static void
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
	strings_free(k->node_selector);
	strings_free(k->tolerations);
	strings_free(k->image_pull_secrets);
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

static void
load_agents(struct load *ld, struct config *c)
{
	const config_setting_t	*list, *item;
	struct cfg_agent	*a;
	int			 i, n;
	size_t			 j;

	list = config_lookup(&ld->cf, "agents");
	n = list_length(list);
	c->agents = xcalloc(n + 1, sizeof *c->agents);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		a = &c->agents[c->nagents++];
		a->name = dup_str(item, "agents.[]", "name");
		a->driver = dup_str(item, "agents.[]", "driver");
		a->command = get_strings(find(item, "command"), &a->ncommand);
		a->timeout = get_int(item, "agents.[]", "timeout");
		a->model = dup_str(item, "agents.[]", "model");
		a->permission_mode = dup_str(item, "agents.[]",
		    "permission_mode");
		a->args = get_strings(find(item, "args"), &a->nargs);
		a->approvals_chat = strcmp(get_str(item, "agents.[]",
		    "approvals"), "chat") == 0;
		a->auto_allow = get_strings(find(item, "auto_allow"),
		    &a->nauto_allow);
		a->auto_deny = get_strings(find(item, "auto_deny"),
		    &a->nauto_deny);
		a->max_turns = get_int(item, "agents.[]", "max_turns");
		a->max_wall_time = get_int(item, "agents.[]", "max_wall_time");
		a->max_cost_usd = get_float(item, "agents.[]", "max_cost_usd");
		a->codex_sandbox = dup_str(item, "agents.[]", "codex_sandbox");
		if (a->codex_sandbox != NULL && strcmp(a->driver, "codex") != 0)
			schema_error(&ld->errs, find(item, "codex_sandbox"),
			    "agents.[%d].codex_sandbox: needs driver \"codex\"",
			    i);
		a->sandbox = strcmp(get_str(item, "agents.[]", "sandbox"),
		    "off") != 0;
		a->network = get_bool(item, "agents.[]", "network");
		a->sandbox_paths = get_strings(find(item, "sandbox_paths"),
		    &a->nsandbox_paths);
		load_agent_runner(ld, item, i, a);
		if (a->approvals_chat && strcmp(a->driver, "claude") != 0)
			schema_error(&ld->errs, find(item, "approvals"),
			    "agents.[%d].approvals: \"chat\" needs driver "
			    "\"claude\"", i);
		for (j = 0; j + 1 < c->nagents; j++) {
			if (strcmp(c->agents[j].name, a->name) == 0) {
				schema_error(&ld->errs, find(item, "name"),
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
			char *abs = resolve_path(ld, a->command[0]);

			free(a->command[0]);
			a->command[0] = abs;
		}
	}
}

/* ---- brains (LLM) --------------------------------------------------------- */

static void
load_brains(struct load *ld, struct config *c)
{
	const char		*p = "brains.[]";
	const config_setting_t	*list, *item;
	struct cfg_brain	*b;
	const char		*url;
	size_t			 j, len;
	int			 i, n;

	list = config_lookup(&ld->cf, "brains");
	n = list_length(list);
	c->brains = xcalloc(n + 1, sizeof *c->brains);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		b = &c->brains[c->nbrains++];
		b->name = dup_str(item, p, "name");
		b->provider = dup_str(item, p, "provider");
		b->model = dup_str(item, p, "model");
		b->api_key_ref = dup_str(item, p, "api_key");
		url = get_str(item, p, "base_url");
		if (url == NULL)
			url = strcmp(b->provider, "anthropic") == 0 ?
			    "https://api.anthropic.com" :
			    "https://api.openai.com";
		/* The providers add "/v1/..."; a trailing '/' would double. */
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		b->base_url = xstrndup(url, len);
		b->max_tokens = get_int(item, p, "max_tokens");
		b->context_tokens = get_int(item, p, "context_tokens");
		b->timeout = get_int(item, p, "timeout");
		b->max_tool_rounds = get_int(item, p, "max_tool_rounds");
		b->price_in_per_mtok = get_float(item, p, "price_in_per_mtok");
		b->price_out_per_mtok = get_float(item, p,
		    "price_out_per_mtok");
		b->max_cost_usd_per_day = get_float(item, p,
		    "max_cost_usd_per_day");
		for (j = 0; j + 1 < c->nbrains; j++)
			if (strcmp(c->brains[j].name, b->name) == 0)
				schema_error(&ld->errs, find(item, "name"),
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
static void
resolve_brain_keys(struct load *ld, struct config *c)
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
		b->api_key = resolve_secret(ld, config_setting_get_elem(list,
		    (unsigned)i), gp, "api_key");
		free(gp);
	}
}

static void
brains_free(struct config *c)
{
	size_t	 i;

	for (i = 0; i < c->nbrains; i++) {
		free(c->brains[i].name);
		free(c->brains[i].provider);
		free(c->brains[i].model);
		secret_free(c->brains[i].api_key);
		free(c->brains[i].api_key_ref);
		free(c->brains[i].base_url);
	}
	free(c->brains);
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

static void
load_routes(struct load *ld, struct config *c)
{
	const config_setting_t	*list, *item;
	struct cfg_route	*r;
	int			 i, n;
	size_t			 j;

	list = config_lookup(&ld->cf, "routes");
	n = list_length(list);
	c->routes = xcalloc(n + 1, sizeof *c->routes);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		r = &c->routes[c->nroutes++];
		r->adapter = dup_str(item, "routes.[]", "adapter");
		r->channel = dup_str(item, "routes.[]", "channel");
		r->repo = dup_str(item, "routes.[]", "repo");
		r->agent = dup_str(item, "routes.[]", "agent");
		r->brain = dup_str(item, "routes.[]", "brain");
		if (r->brain != NULL && config_brain(c, r->brain) == NULL)
			schema_error(&ld->errs, find(item, "brain"),
			    "routes.[%d].brain: no brain named '%s'", i,
			    r->brain);
		if (config_repo(c, r->repo) == NULL)
			schema_error(&ld->errs, find(item, "repo"),
			    "routes.[%d].repo: no repo named '%s'", i, r->repo);
		if (config_agent(c, r->agent) == NULL)
			schema_error(&ld->errs, find(item, "agent"),
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
		return get_strings(s, n);
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

static void
load_webhooks(struct load *ld, struct config *c)
{
	const char		*p = "webhooks.[]";
	const config_setting_t	*list, *item;
	struct cfg_webhook	*w;
	const char		*url;
	char			*gp;
	size_t			 j, len;
	int			 i, n;

	list = config_lookup(&ld->cf, "webhooks");
	n = list_length(list);
	c->webhooks = xcalloc(n + 1, sizeof *c->webhooks);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		w = &c->webhooks[c->nwebhooks++];
		w->name = dup_str(item, p, "name");
		w->enabled = get_bool(item, p, "enabled");
		w->path = dup_str(item, p, "path");
		w->kind = dup_str(item, p, "kind");
		w->secret_ref = dup_str(item, p, "secret");
		w->target_adapter = dup_str(item, p, "target.adapter");
		w->target_channel = dup_str(item, p, "target.channel");
		w->repo = dup_str(item, p, "repo");
		w->agent = dup_str(item, p, "agent");
		w->github.labels = strings_or(find(item, "github.labels"),
		    webhook_labels_def, &w->github.nlabels);
		w->github.command = dup_str(item, p, "github.command");
		w->github.events = strings_or(find(item, "github.events"),
		    webhook_events_def, &w->github.nevents);
		w->github.token_ref = dup_str(item, p, "github.token");
		url = get_str(item, p, "github.api_url");
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		/* Callers append "/repos/...". */
		w->github.api_url = xstrndup(url, len);
		w->generic.task_field = dup_str(item, p, "generic.task_field");
		w->generic.thread_field = dup_str(item, p,
		    "generic.thread_field");
		w->generic.id_field = dup_str(item, p, "generic.id_field");
		w->generic.timestamp_header = dup_str(item, p,
		    "generic.timestamp_header");
		w->generic.signature_header = dup_str(item, p,
		    "generic.signature_header");

		for (j = 0; j + 1 < c->nwebhooks; j++) {
			if (strcmp(c->webhooks[j].name, w->name) == 0)
				schema_error(&ld->errs, find(item, "name"),
				    "webhooks.[%d].name: duplicate webhook "
				    "name '%s'", i, w->name);
			if (strcmp(c->webhooks[j].path, w->path) == 0)
				schema_error(&ld->errs, find(item, "path"),
				    "webhooks.[%d].path: '%s' is already "
				    "webhook '%s'", i, w->path,
				    c->webhooks[j].name);
		}
		if (strcmp(w->path, "/healthz") == 0 ||
		    strcmp(w->path, "/metrics") == 0)
			schema_error(&ld->errs, find(item, "path"),
			    "webhooks.[%d].path: '%s' is built in", i, w->path);
		if (config_repo(c, w->repo) == NULL)
			schema_error(&ld->errs, find(item, "repo"),
			    "webhooks.[%d].repo: no repo named '%s'", i,
			    w->repo);
		if (config_agent(c, w->agent) == NULL)
			schema_error(&ld->errs, find(item, "agent"),
			    "webhooks.[%d].agent: no agent named '%s'", i,
			    w->agent);
		w->brain = dup_str(item, p, "brain");
		if (w->brain != NULL && config_brain(c, w->brain) == NULL)
			schema_error(&ld->errs, find(item, "brain"),
			    "webhooks.[%d].brain: no brain named '%s'", i,
			    w->brain);
		if (strcmp(w->kind, "github") != 0 &&
		    find(item, "github") != NULL)
			schema_error(&ld->errs, find(item, "github"),
			    "webhooks.[%d].github: only for kind \"github\"",
			    i);
		if (strcmp(w->kind, "generic") != 0 &&
		    find(item, "generic") != NULL)
			schema_error(&ld->errs, find(item, "generic"),
			    "webhooks.[%d].generic: only for kind \"generic\"",
			    i);
		if (!w->enabled)
			continue;
		if (*c->http_listen == '\0')
			schema_error(&ld->errs, item, "webhooks.[%d]: an "
			    "enabled webhook needs http.listen", i);
		/* Its threads would wait in the outbox for ever. */
		if (!adapter_on(c, w->target_adapter))
			schema_error(&ld->errs, find(item, "target.adapter"),
			    "webhooks.[%d].target.adapter: adapter '%s' is "
			    "not enabled", i, w->target_adapter);
		gp = xasprintf("webhooks.[%d]", i);
		w->secret = resolve_secret(ld, item, gp, "secret");
		w->github.token = resolve_secret(ld, item, gp, "github.token");
		free(gp);
	}
}

static void
require(struct load *ld, const config_setting_t *group, const char *gpath,
    const char *key, const char *why)
{
	if (find(group, key) == NULL)
		schema_error(&ld->errs, group, "%s.%s is required %s", gpath,
		    key, why);
}

static void
load_slack(struct load *ld, struct config *c)
{
	const char		*p = "adapters.slack";
	const config_setting_t	*g = config_lookup(&ld->cf, p);
	const char		*url;

	c->slack.enabled = get_bool(g, p, "enabled");
	c->slack.mode = dup_str(g, p, "mode");
	url = get_str(g, p, "api_url");
	/* Callers append method names ("chat.postMessage") to it. */
	if (url[strlen(url) - 1] == '/')
		c->slack.api_url = xstrdup(url);
	else
		c->slack.api_url = xasprintf("%s/", url);
	c->slack.socket_timeout_ms = (int)get_int(g, p, "socket_timeout_ms");
	c->slack.app_token_ref = dup_str(g, p, "app_token");
	c->slack.bot_token_ref = dup_str(g, p, "bot_token");
	c->slack.signing_secret_ref = dup_str(g, p, "signing_secret");
	if (!c->slack.enabled)
		return;

	require(ld, g, p, "bot_token", "when the adapter is enabled");
	if (strcmp(c->slack.mode, "socket") == 0)
		require(ld, g, p, "app_token", "in socket mode");
	else {
		require(ld, g, p, "signing_secret", "in events mode");
		if (*c->http_listen == '\0')
			schema_error(&ld->errs, find(g, "mode"), "%s.mode: "
			    "events mode needs http.listen", p);
	}
	c->slack.app_token = resolve_secret(ld, g, p, "app_token");
	c->slack.bot_token = resolve_secret(ld, g, p, "bot_token");
	c->slack.signing_secret = resolve_secret(ld, g, p, "signing_secret");
}

static void
load_matrix(struct load *ld, struct config *c)
{
	const char		*p = "adapters.matrix";
	const config_setting_t	*g = config_lookup(&ld->cf, p);
	size_t			 len;

	c->matrix.enabled = get_bool(g, p, "enabled");
	c->matrix.homeserver = dup_str(g, p, "homeserver");
	/* Callers append "/_matrix/client/..." to it. */
	if (c->matrix.homeserver != NULL) {
		len = strlen(c->matrix.homeserver);
		while (len > 0 && c->matrix.homeserver[len - 1] == '/')
			c->matrix.homeserver[--len] = '\0';
	}
	c->matrix.user_id = dup_str(g, p, "user_id");
	c->matrix.autojoin = get_bool(g, p, "autojoin");
	c->matrix.access_token_ref = dup_str(g, p, "access_token");
	c->matrix.password_ref = dup_str(g, p, "password");
	if (!c->matrix.enabled)
		return;

	require(ld, g, p, "homeserver", "when the adapter is enabled");
	require(ld, g, p, "user_id", "when the adapter is enabled");
	if (find(g, "access_token") == NULL && find(g, "password") == NULL)
		schema_error(&ld->errs, g, "%s.access_token or %s.password is "
		    "required when the adapter is enabled", p, p);
	c->matrix.access_token = resolve_secret(ld, g, p, "access_token");
	c->matrix.password = resolve_secret(ld, g, p, "password");
}

/* "127.0.0.1:8080", "localhost:80", "[::1]:8080"; ":8080" listens on all. */
static int
listen_is_loopback(const char *listen)
{
	return strncmp(listen, "127.", 4) == 0 ||
	    strncmp(listen, "localhost:", 10) == 0 ||
	    strncmp(listen, "[::1]:", 6) == 0;
}

static void
load_web(struct load *ld, struct config *c)
{
	const char		*p = "adapters.web";
	const config_setting_t	*g = config_lookup(&ld->cf, p);

	c->web.enabled = get_bool(g, p, "enabled");
	c->web.user = dup_str(g, p, "user");
	c->web.allow_remote = get_bool(g, p, "allow_remote");
	if (!c->web.enabled)
		return;
	if (*c->http_listen == '\0')
		schema_error(&ld->errs, find(g, "enabled"), "%s.enabled: the "
		    "web chat needs http.listen", p);
	else if (!listen_is_loopback(c->http_listen) && !c->web.allow_remote)
		schema_error(&ld->errs, find(g, "enabled"), "%s.enabled: "
		    "http.listen \"%s\" is not loopback; set %s.allow_remote "
		    "= true to serve the web chat beyond this machine", p,
		    c->http_listen, p);
}

static void
load_agent_listener(struct load *ld, struct config *c)
{
	const char		*p = "agent_listener";
	const config_setting_t	*g = config_lookup(&ld->cf, p);
	struct cfg_kube		*k;
	size_t			 i;

	c->agent_listener.listen = dup_str(g, p, "listen");
	c->agent_listener.url = dup_str(g, p, "url");
	c->agent_listener.cert_ref = dup_str(g, p, "cert");
	c->agent_listener.key_ref = dup_str(g, p, "key");
	c->agent_listener.ca_ref = dup_str(g, p, "ca");
	if (*c->agent_listener.listen != '\0') {
		require(ld, g, p, "cert", "with listen");
		require(ld, g, p, "key", "with listen");
		c->agent_listener.cert = resolve_secret(ld, g, p, "cert");
		c->agent_listener.key = resolve_secret(ld, g, p, "key");
	}
	c->agent_listener.ca = resolve_secret(ld, g, p, "ca");
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

static struct config *
load_config(struct load *ld)
{
	const config_setting_t	*root = config_root_setting(&ld->cf);
	struct config		*c;
	const char		*v;

	c = xcalloc(1, sizeof *c);
	c->path = xstrdup(ld->path);
	c->state_dir = resolve_path(ld, get_str(root, "", "state_dir"));
	c->http_listen = dup_str(root, "", "http.listen");
	c->http_max_body = get_int(root, "", "http.max_body");
	c->http_health_grace = get_int(root, "", "http.health_grace");
	c->log_level = dup_str(root, "", "log.level");
	c->log_json = get_bool(root, "", "log.json");
	if ((v = get_str(root, "", "log.file")) != NULL)
		c->log_file = resolve_path(ld, v);
	c->allowed_users = get_strings(find(root, "access.allowed_users"),
	    &c->nallowed_users);

	load_repos(ld, c);
	load_agents(ld, c);
	load_brains(ld, c);	/* before routes and webhooks, which name them */
	load_routes(ld, c);

	c->console.enabled = get_bool(root, "", "adapters.console.enabled");
	load_slack(ld, c);
	load_matrix(ld, c);
	load_web(ld, c);
	load_webhooks(ld, c);
	resolve_brain_keys(ld, c);

	c->limits.max_agents = get_int(root, "", "limits.max_agents");
	c->limits.max_agents_per_conversation = get_int(root, "",
	    "limits.max_agents_per_conversation");
	c->limits.agent_timeout = get_int(root, "", "limits.agent_timeout");
	c->limits.kill_grace = get_int(root, "", "limits.kill_grace");
	c->limits.output_tail = get_int(root, "", "limits.output_tail");
	c->limits.keep_ended = get_int(root, "", "limits.keep_ended");
	c->limits.keep_conversations = get_int(root, "",
	    "limits.keep_conversations");
	c->limits.log_size = get_int(root, "", "limits.log_size");
	c->git.name = dup_str(root, "", "git.name");
	c->git.email = dup_str(root, "", "git.email");
	c->git.retention = get_int(root, "", "git.retention");
	c->render.card_interval_ms = get_int(root, "", "render.card_interval_ms");
	if ((v = get_str(root, "", "cluster.kubeconfig")) != NULL)
		c->cluster.kubeconfig = resolve_path(ld, v);
	c->cluster.daemon_id = dup_str(root, "", "cluster.daemon_id");
	for (size_t i = 0; i < c->nagents; i++) {
		if (c->agents[i].kube != NULL && c->cluster.kubeconfig != NULL)
			c->agents[i].kube->kubeconfig =
			    xstrdup(c->cluster.kubeconfig);
		if (c->agents[i].kube != NULL && c->cluster.daemon_id != NULL)
			c->agents[i].kube->daemon_id =
			    xstrdup(c->cluster.daemon_id);
	}
	load_agent_listener(ld, c);
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
	secret_free(c->agent_listener.cert);
	secret_free(c->agent_listener.key);
	free(c->agent_listener.ca);
	free(c->agent_listener.cert_ref);
	free(c->agent_listener.key_ref);
	free(c->agent_listener.ca_ref);
	free(c->state_dir);
	free(c->http_listen);
	free(c->log_level);
	free(c->log_file);
	strings_free(c->allowed_users);
	for (i = 0; i < c->nrepos; i++) {
		free(c->repos[i].name);
		free(c->repos[i].path);
		free(c->repos[i].base);
		free(c->repos[i].remote);
		free(c->repos[i].push_ssh_key);
		free(c->repos[i].push_user);
		secret_free(c->repos[i].push_token);
		free(c->repos[i].push_token_ref);
		strings_free(c->repos[i].check);
		free(c->repos[i].forge.kind);
		free(c->repos[i].forge.repo);
		secret_free(c->repos[i].forge.token);
		free(c->repos[i].forge.token_ref);
		free(c->repos[i].forge.api_url);
	}
	free(c->repos);
	for (i = 0; i < c->nagents; i++) {
		free(c->agents[i].name);
		free(c->agents[i].driver);
		strings_free(c->agents[i].command);
		free(c->agents[i].model);
		free(c->agents[i].permission_mode);
		free(c->agents[i].codex_sandbox);
		strings_free(c->agents[i].args);
		strings_free(c->agents[i].auto_allow);
		strings_free(c->agents[i].auto_deny);
		strings_free(c->agents[i].sandbox_paths);
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
		secret_free(w->secret);
		free(w->secret_ref);
		free(w->target_adapter);
		free(w->target_channel);
		free(w->repo);
		free(w->agent);
		free(w->brain);
		strings_free(w->github.labels);
		free(w->github.command);
		strings_free(w->github.events);
		secret_free(w->github.token);
		free(w->github.token_ref);
		free(w->github.api_url);
		free(w->generic.task_field);
		free(w->generic.thread_field);
		free(w->generic.id_field);
		free(w->generic.timestamp_header);
		free(w->generic.signature_header);
	}
	free(c->webhooks);
	brains_free(c);
	free(c->slack.mode);
	secret_free(c->slack.app_token);
	secret_free(c->slack.bot_token);
	secret_free(c->slack.signing_secret);
	free(c->slack.api_url);
	free(c->slack.app_token_ref);
	free(c->slack.bot_token_ref);
	free(c->slack.signing_secret_ref);
	free(c->matrix.homeserver);
	free(c->matrix.user_id);
	secret_free(c->matrix.access_token);
	secret_free(c->matrix.password);
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
