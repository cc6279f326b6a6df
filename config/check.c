/*
 * check — what a config that loaded still needs from this machine.
 *
 * config_load() checks the file against itself (types, names, references
 * between keys, the repositories); this file checks it against the world the
 * daemon will run in, the things that make a started daemon useless or make
 * it fail an hour later: an agent program missing from PATH, no adapter, no
 * user, a log directory that will not exist.  It reads the file again only
 * for line numbers, so every message carries FILE:LINE like load errors do.
 */
#include "config/config.h"
#include "config/schema.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What execvp() uses when PATH is unset. */
#define DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"

static int
executable(const char *path, char **why)
{
	struct stat	 st;

	if (stat(path, &st) == -1) {
		*why = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = xasprintf("%s is not a file", path);
		return -1;
	}
	if (access(path, X_OK) == -1) {
		*why = xasprintf("%s is not executable", path);
		return -1;
	}
	return 0;
}

/* Like execvp(): a name with a slash is a path, else each PATH entry. */
static int
program_found(const char *prog, char **why)
{
	const char	*path = getenv("PATH"), *p, *end;
	char		*cand, *ignored;
	size_t		 len;

	if (strchr(prog, '/') != NULL)
		return executable(prog, why);
	if (path == NULL)
		path = DEFAULT_PATH;
	for (p = path; ; p = end + 1) {
		end = strchr(p, ':');
		len = end == NULL ? strlen(p) : (size_t)(end - p);
		cand = len == 0 ? xasprintf("./%s", prog) :
		    xasprintf("%.*s/%s", (int)len, p, prog);
		ignored = NULL;
		if (executable(cand, &ignored) == 0) {
			free(cand);
			return 0;
		}
		free(ignored);
		free(cand);
		if (end == NULL)
			break;
	}
	*why = xasprintf("program \"%s\" is not found in PATH (%s)", prog, path);
	return -1;
}

static const config_setting_t *
elem_member(const config_t *cf, const char *list, size_t i, const char *key)
{
	const config_setting_t	*l, *e, *m;

	if ((l = config_lookup(cf, list)) == NULL ||
	    (e = config_setting_get_elem(l, i)) == NULL)
		return NULL;
	return (m = config_setting_get_member(e, key)) != NULL ? m : e;
}

/* 1 if dir is the state dir or inside it (serve creates those first). */
static int
in_state_dir(const struct config *c, const char *dir)
{
	size_t	 n = strlen(c->state_dir);

	return strncmp(dir, c->state_dir, n) == 0 &&
	    (dir[n] == '\0' || dir[n] == '/');
}

static void
check_log_dir(const struct config *c, struct schema_errors *errs,
    const config_setting_t *s)
{
	struct stat	 st;
	char		*copy, *dir;

	if (c->log_file == NULL)
		return;
	copy = xstrdup(c->log_file);
	dir = dirname(copy);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || !in_state_dir(c, dir))
			schema_error(errs, s, "log.file: directory %s: %s", dir,
			    strerror(errno));
	} else if (!S_ISDIR(st.st_mode))
		schema_error(errs, s, "log.file: %s is not a directory", dir);
	else if (access(c->log_file, F_OK) == 0) {
		if (access(c->log_file, W_OK) == -1)
			schema_error(errs, s, "log.file: cannot write %s: %s",
			    c->log_file, strerror(errno));
	} else if (access(dir, W_OK | X_OK) == -1)
		schema_error(errs, s, "log.file: cannot create files in %s: %s",
		    dir, strerror(errno));
	free(copy);
}

/*
 * The command driver refuses a task that starts with '-' where it would
 * begin an argument not after "--" (orchestrator/driver-command.c): say so
 * before someone's task is refused.
 */
static void
task_option_warning(config_t *cf, struct schema_errors *warns, size_t i,
    const struct cfg_agent *a)
{
	size_t	 k;

	if (strcmp(a->driver, "command") != 0)
		return;
	for (k = 0; k < a->ncommand; k++) {
		if (strcmp(a->command[k], "--") == 0)
			return;
		if (strncmp(a->command[k], "{task}", 6) == 0)
			break;
	}
	if (k == a->ncommand)
		return;
	schema_error(warns, elem_member(cf, "agents", i, "command"),
	    "warning: agents.[%zu].command: agent '%s': \"%s\" can start with"
	    " '-', where the program would read it as an option, so tasks"
	    " that start with '-' are refused; put \"--\" before it if the"
	    " program accepts that", i, a->name, a->command[k]);
}

int
config_check(const struct config *c, char **errors, char **warnings)
{
	struct schema_errors	 errs = { .file = c->path };
	struct schema_errors	 warns = { .file = c->path };
	const config_setting_t	*s;
	const char		*prog;
	config_t		 cf;
	char			*copy, real[PATH_MAX], *why;
	size_t			 i, nhooks = 0;
	int			 n;

	config_init(&cf);
	copy = xstrdup(c->path);
	if (realpath(dirname(copy), real) != NULL)
		config_set_include_dir(&cf, real);
	free(copy);
	/* It loaded a moment ago; if it changed since, lines are missing. */
	if (config_read_file(&cf, c->path) != CONFIG_TRUE) {
		config_destroy(&cf);
		config_init(&cf);
	}

	for (i = 0; i < c->nagents; i++) {
		const struct cfg_agent *a = &c->agents[i];

		if (a->ncommand > 0)
			prog = a->command[0];
		else if (strcmp(a->driver, "claude") == 0 ||
		    strcmp(a->driver, "codex") == 0)
			prog = a->driver;	/* the driver's default */
		else
			continue;	/* load already refused it */
		task_option_warning(&cf, &warns, i, a);
		why = NULL;
		if (program_found(prog, &why) != 0) {
			schema_error(&errs, elem_member(&cf, "agents", i,
			    "command"), "agents.[%zu].command: agent '%s': %s",
			    i, a->name, why);
			free(why);
		}
	}

	for (i = 0; i < c->nwebhooks; i++)
		nhooks += c->webhooks[i].enabled != 0;
	if (!c->console.enabled && !c->slack.enabled && !c->matrix.enabled)
		schema_error(&errs, config_lookup(&cf, "adapters"), "no adapter "
		    "is enabled (adapters.console, adapters.slack or "
		    "adapters.matrix: enabled = true): nobody can reach the bot");

	s = config_lookup(&cf, "access.allowed_users");
	if (c->nallowed_users == 0 && nhooks == 0)
		schema_error(&errs, s, "access.allowed_users is empty: nobody "
		    "may start or steer agents");
	else if (c->nallowed_users == 0)
		schema_error(&warns, s, "warning: access.allowed_users is "
		    "empty: webhooks can start agents, but nobody may answer "
		    "their questions or steer them");

	for (i = 0; i < c->nroutes; i++) {
		if (config_adapter_enabled(c, c->routes[i].adapter))
			continue;
		schema_error(&warns, elem_member(&cf, "routes", i, "adapter"),
		    "warning: routes.[%zu].adapter: adapter '%s' is not "
		    "enabled; this route is never used", i,
		    c->routes[i].adapter);
	}

	/* A pod talks back only through the agent listener. */
	for (i = 0; i < c->nagents; i++)
		if (c->agents[i].kube != NULL &&
		    c->agents[i].kube->agent_url == NULL)
			schema_error(&warns, config_setting_get_elem(
			    config_lookup(&cf, "agents"), (unsigned)i),
			    "warning: agents.[%zu]: runner \"kubernetes\" but"
			    " no agent_listener.url: its pods cannot ask,"
			    " report progress or get approvals", i);

	check_log_dir(c, &errs, config_lookup(&cf, "log.file"));

	config_destroy(&cf);
	n = errs.count;
	*errors = errs.count > 0 ? buf_steal(&errs.text) : NULL;
	*warnings = warns.count > 0 ? buf_steal(&warns.text) : NULL;
	buf_free(&errs.text);
	buf_free(&warns.text);
	return n;
}

static int
mkdirs(const char *path, char **cause)
{
	char	*p, *s, c;

	p = xstrdup(path);
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			*cause = xasprintf("cannot create %s: %s", p,
			    strerror(errno));
			free(p);
			return -1;
		}
		if ((*s = c) == '\0')
			break;
	}
	free(p);
	return 0;
}

int
config_prepare_dirs(const struct config *c, char **cause)
{
	char	*copy, *dir;
	int	 rc = 0;

	if (mkdirs(c->state_dir, cause) != 0)
		return -1;
	if (c->log_file != NULL) {
		copy = xstrdup(c->log_file);
		dir = dirname(copy);
		if (in_state_dir(c, dir))
			rc = mkdirs(dir, cause);
		free(copy);
	}
	return rc;
}
