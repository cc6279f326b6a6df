/* The repos list: each repo's worktree source, push, checks and forge. */

#include "config/config-int.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <errno.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>

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

/* push, check, forge: the keys of issue "results". */
static void
load_repo_results(struct load *ld, const config_setting_t *item, int i,
    struct cfg_repo *r)
{
	const char	*p = "repos.[]", *url;
	char		*gp;
	size_t		 len;

	r->remote = cfg_dup_str(item, p, "remote");
	if (cfg_find(item, "push.ssh_key") != NULL)
		r->push_ssh_key = cfg_path(ld, cfg_str(item, p,
		    "push.ssh_key"));
	r->push_ssh_agent = cfg_bool(item, p, "push.ssh_agent");
	r->push_user = cfg_dup_str(item, p, "push.user");
	r->push_token_ref = cfg_dup_str(item, p, "push.token");
	if (cfg_find(item, "check") != NULL)
		r->check = cfg_strings(cfg_find(item, "check"), &r->ncheck);
	if (r->check != NULL && r->ncheck == 0) {
		free(r->check);
		r->check = NULL;
	}
	r->check_timeout = (int)cfg_int(item, p, "check_timeout");
	r->merge_push = cfg_bool(item, p, "merge_push");
	r->warm = (int)cfg_int(item, p, "warm");
	gp = xasprintf("repos.[%d]", i);
	r->push_token = cfg_secret(ld, item, gp, "push.token");
	if (cfg_find(item, "forge") != NULL) {
		r->forge.kind = cfg_dup_str(item, p, "forge.kind");
		r->forge.repo = cfg_dup_str(item, p, "forge.repo");
		r->forge.token_ref = cfg_dup_str(item, p, "forge.token");
		url = cfg_str(item, p, "forge.api_url");
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		r->forge.api_url = xstrndup(url, len);
		if (r->forge.repo != NULL && (strchr(r->forge.repo, '/') ==
		    NULL || strchr(r->forge.repo, '/') != strrchr(r->forge.repo,
		    '/')))
			schema_error(&ld->errs, cfg_find(item, "forge.repo"),
			    "%s.forge.repo: \"%s\" is not owner/name", gp,
			    r->forge.repo);
		r->forge.token = cfg_secret(ld, item, gp, "forge.token");
	}
	free(gp);
}

void
cfg_load_repos(struct load *ld, struct config *c)
{
	const config_setting_t	*list, *item;
	struct cfg_repo		*r;
	char			*why;
	int			 i, n;
	size_t			 j;

	list = config_lookup(&ld->cf, "repos");
	n = cfg_list_length(list);
	c->repos = xcalloc(n + 1, sizeof *c->repos);
	for (i = 0; i < n; i++) {
		item = config_setting_get_elem(list, i);
		r = &c->repos[c->nrepos++];
		r->name = cfg_dup_str(item, "repos.[]", "name");
		r->path = cfg_path(ld, cfg_str(item, "repos.[]", "path"));
		r->base = cfg_dup_str(item, "repos.[]", "base");
		load_repo_results(ld, item, i, r);
		for (j = 0; j + 1 < c->nrepos; j++) {
			if (strcmp(c->repos[j].name, r->name) == 0) {
				schema_error(&ld->errs, cfg_find(item, "name"),
				    "repos.[%d].name: duplicate repo name "
				    "'%s'", i, r->name);
				break;
			}
		}
		why = NULL;
		if (repo_check(r->path, r->base, &why) != 0) {
			schema_error(&ld->errs, cfg_find(item, "path"),
			    "repos.[%d].path: %s", i, why);
			free(why);
		}
	}
}
