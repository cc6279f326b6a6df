#include "orchestrator/gitremote.h"
#include "orchestrator/worktree.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/util.h"

#include <git2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
gitremote_creds_from(struct gitremote_creds *c, const struct cfg_repo *r)
{
	memset(c, 0, sizeof *c);
	c->ssh_key = r->push_ssh_key != NULL ? xstrdup(r->push_ssh_key) : NULL;
	c->ssh_agent = r->push_ssh_agent;
	c->user = xstrdup(r->push_user != NULL ? r->push_user :
	    "x-access-token");
	c->token = r->push_token != NULL ? xstrdup(r->push_token) : NULL;
}

void
gitremote_creds_free(struct gitremote_creds *c)
{
	free(c->ssh_key);
	free(c->user);
	if (c->token != NULL) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	memset(c, 0, sizeof *c);
}

struct push_ctx {
	const struct gitremote_creds *creds;
	unsigned	 tried;		/* credential kinds already offered */
	int		 asked;		/* the remote wanted credentials */
	char		*rejected;	/* first per-ref refusal */
};

#define TRIED_TOKEN	1u
#define TRIED_KEY	2u
#define TRIED_AGENT	4u

static int
cred_cb(git_credential **out, const char *url, const char *user_from_url,
    unsigned int allowed, void *payload)
{
	struct push_ctx			*p = payload;
	const struct gitremote_creds	*c = p->creds;
	const char			*user;
	char				*pub;
	int				 r;

	p->asked = 1;
	user = user_from_url != NULL && *user_from_url != '\0' ?
	    user_from_url : "git";
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && c->token != NULL &&
	    !(p->tried & TRIED_TOKEN)) {
		p->tried |= TRIED_TOKEN;
		return git_credential_userpass_plaintext_new(out, c->user,
		    c->token);
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && c->ssh_key != NULL &&
	    !(p->tried & TRIED_KEY)) {
		p->tried |= TRIED_KEY;
		pub = xasprintf("%s.pub", c->ssh_key);
		r = git_credential_ssh_key_new(out, user,
		    access(pub, R_OK) == 0 ? pub : NULL, c->ssh_key, NULL);
		free(pub);
		return r;
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && c->ssh_agent &&
	    !(p->tried & TRIED_AGENT)) {
		p->tried |= TRIED_AGENT;
		return git_credential_ssh_key_from_agent(out, user);
	}
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	/* Nothing (more) to offer: libgit2 reports an auth error. */
	git_error_set_str(GIT_ERROR_NET, "authentication failed");
	return GIT_EAUTH;
}

static int
update_cb(const char *refname, const char *status, void *payload)
{
	struct push_ctx	*p = payload;

	if (status != NULL && p->rejected == NULL)
		p->rejected = xasprintf("%s: %s", refname, status);
	return 0;
}

int
gitremote_exists(const char *repo_path, const char *remote)
{
	git_repository	*repo = NULL;
	git_remote	*r = NULL;
	int		 ok = 0;

	worktree_git_init();
	if (git_repository_open_ext(&repo, repo_path,
	    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
	    git_remote_lookup(&r, repo, remote) == 0)
		ok = 1;
	git_remote_free(r);
	git_repository_free(repo);
	return ok;
}

int
gitremote_push(const char *repo_path, const char *remote, const char *src,
    const char *dst, int force, const struct gitremote_creds *creds,
    char **cause)
{
	git_push_options	 po;
	git_repository		*repo = NULL;
	git_remote		*r = NULL;
	struct push_ctx		 ctx = { 0 };
	git_strarray		 specs;
	char			*spec;
	const git_error		*e;
	int			 err, rc = -1;

	*cause = NULL;
	worktree_git_init();
	if (git_repository_open_ext(&repo, repo_path,
	    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		*cause = xasprintf("cannot open repository %s", repo_path);
		return -1;
	}
	if (git_remote_lookup(&r, repo, remote) < 0 &&
	    git_remote_create_anonymous(&r, repo, remote) < 0) {
		*cause = xasprintf("no remote \"%s\" in %s", remote, repo_path);
		goto out;
	}
	spec = xasprintf("%srefs/heads/%s:refs/heads/%s", force ? "+" : "",
	    src, dst);
	specs.strings = &spec;
	specs.count = 1;
	ctx.creds = creds;
	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	po.callbacks.credentials = cred_cb;
	po.callbacks.push_update_reference = update_cb;
	po.callbacks.payload = &ctx;
	err = git_remote_push(r, &specs, &po);
	free(spec);
	if (err < 0) {
		e = git_error_last();
		/*
		 * libgit2's text names the URL at most (no credentials: we
		 * never put them in URLs).
		 */
		if (err == GIT_EAUTH || (ctx.asked && e != NULL &&
		    e->message != NULL && (strstr(e->message, "auth") != NULL ||
		    strstr(e->message, "401") != NULL ||
		    strstr(e->message, "403") != NULL))) {
			*cause = xasprintf("authentication failed at %s (%s)",
			    git_remote_url(r), e != NULL && e->message != NULL ?
			    e->message : "refused");
			rc = GITREMOTE_EAUTH;
		} else if (e != NULL && e->message != NULL &&
		    (strstr(e->message, "rejected") != NULL ||
		    strstr(e->message, "fast-forward") != NULL ||
		    strstr(e->message, "not present locally") != NULL)) {
			/* libgit2 checks fast-forwards itself, before sending. */
			*cause = xasprintf("rejected by %s: %s",
			    git_remote_url(r), e->message);
			rc = GITREMOTE_EREJECTED;
		} else
			*cause = xasprintf("cannot push to %s: %s",
			    git_remote_url(r), e != NULL && e->message != NULL ?
			    e->message : "unknown error");
		goto out;
	}
	if (ctx.rejected != NULL) {
		*cause = xasprintf("rejected by %s: %s", git_remote_url(r),
		    ctx.rejected);
		rc = GITREMOTE_EREJECTED;
		goto out;
	}
	rc = 0;
out:
	free(ctx.rejected);
	git_remote_free(r);
	git_repository_free(repo);
	return rc;
}

/* ---- fetching: a pod's work back ------------------------------------------ */

static int
open_remote(git_repository **repo, git_remote **r, const char *repo_path,
    const char *remote, char **cause)
{
	*repo = NULL;
	*r = NULL;
	worktree_git_init();
	if (git_repository_open_ext(repo, repo_path,
	    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		*cause = xasprintf("cannot open repository %s", repo_path);
		return -1;
	}
	if (git_remote_lookup(r, *repo, remote) < 0 &&
	    git_remote_create_anonymous(r, *repo, remote) < 0) {
		*cause = xasprintf("no remote \"%s\" in %s", remote, repo_path);
		git_repository_free(*repo);
		*repo = NULL;
		return -1;
	}
	return 0;
}

char *
gitremote_url(const char *repo_path, const char *remote, char **cause)
{
	git_repository	*repo;
	git_remote	*r;
	char		*url = NULL;

	if (open_remote(&repo, &r, repo_path, remote, cause) < 0)
		return NULL;
	if (git_remote_url(r) != NULL)
		url = xstrdup(git_remote_url(r));
	else
		*cause = xasprintf("remote \"%s\" has no URL", remote);
	git_remote_free(r);
	git_repository_free(repo);
	return url;
}

int
gitremote_fetch(const char *repo_path, const char *remote, const char *src,
    const char *dst, const struct gitremote_creds *creds, char **cause)
{
	git_fetch_options	 fo;
	git_repository		*repo;
	git_remote		*r;
	git_reference		*ref = NULL;
	const git_remote_head	**heads;
	struct push_ctx		 ctx = { 0 };
	git_strarray		 specs;
	char			*spec, *want;
	const git_error		*e;
	size_t			 n, i;
	int			 err, rc = -1, found = 0;

	*cause = NULL;
	if (open_remote(&repo, &r, repo_path, remote, cause) < 0)
		return -1;
	/* libgit2 would move a checked-out branch under its worktree's files. */
	if (git_branch_lookup(&ref, repo, dst, GIT_BRANCH_LOCAL) == 0 &&
	    git_branch_is_checked_out(ref) == 1) {
		*cause = xasprintf("branch %s is checked out in a worktree", dst);
		goto out;
	}
	spec = xasprintf("+refs/heads/%s:refs/heads/%s", src, dst);
	specs.strings = &spec;
	specs.count = 1;
	ctx.creds = creds;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.callbacks.credentials = cred_cb;
	fo.callbacks.payload = &ctx;
	fo.update_fetchhead = 0;
	err = git_remote_fetch(r, &specs, &fo, "switchboard: fetch agent work");
	free(spec);
	if (err < 0) {
		e = git_error_last();
		if (err == GIT_EAUTH || (ctx.asked && e != NULL &&
		    e->message != NULL && (strstr(e->message, "auth") != NULL ||
		    strstr(e->message, "401") != NULL ||
		    strstr(e->message, "403") != NULL))) {
			*cause = xasprintf("authentication failed at %s",
			    git_remote_url(r));
			rc = GITREMOTE_EAUTH;
		} else
			*cause = xasprintf("cannot fetch from %s: %s",
			    git_remote_url(r), e != NULL && e->message != NULL ?
			    e->message : "unknown error");
		goto out;
	}
	/* A refspec that matches nothing is no error to libgit2. */
	want = xasprintf("refs/heads/%s", src);
	if (git_remote_ls(&heads, &n, r) == 0)
		for (i = 0; i < n; i++)
			if (strcmp(heads[i]->name, want) == 0)
				found = 1;
	free(want);
	if (!found) {
		*cause = xasprintf("%s has no branch %s", git_remote_url(r), src);
		rc = GITREMOTE_ENOREF;
		goto out;
	}
	rc = 0;
out:
	git_reference_free(ref);
	git_remote_free(r);
	git_repository_free(repo);
	return rc;
}

/* ---- agent branches without a worktree ------------------------------------ */

#define BRANCH_ATTEMPTS	99

int
gitremote_branch_new(const char *repo_path, const char *base,
    int64_t agent_id, const char *task, char **out_branch,
    char **cause)
{
	git_repository	*repo = NULL;
	git_reference	*ref = NULL, *b = NULL;
	git_commit	*tip = NULL;
	char		 slug[WORKTREE_SLUG_MAX + 1], *first = NULL, *name = NULL;
	int		 i, err, valid, rc = -1;

	*out_branch = NULL;
	*cause = NULL;
	worktree_git_init();
	if (git_repository_open_ext(&repo, repo_path,
	    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		*cause = xasprintf("cannot open repository %s", repo_path);
		return -1;
	}
	/* As worktree_add: local branch base, else HEAD. */
	if ((base == NULL || git_branch_lookup(&ref, repo, base,
	    GIT_BRANCH_LOCAL) < 0) && git_repository_head(&ref, repo) < 0) {
		*cause = xasprintf("no base branch and no HEAD in %s", repo_path);
		goto out;
	}
	if (git_reference_peel((git_object **)&tip, ref, GIT_OBJECT_COMMIT) < 0) {
		*cause = xasprintf("base %s is not a commit", base);
		goto out;
	}
	worktree_slug(task, slug, sizeof slug);
	first = worktree_branch_name(agent_id, slug);
	for (i = 1; i <= BRANCH_ATTEMPTS && b == NULL; i++) {
		free(name);
		name = i == 1 ? xstrdup(first) : xasprintf("%s-%d", first, i);
		if (git_branch_name_is_valid(&valid, name) < 0 || !valid) {
			*cause = xasprintf("invalid branch name %s", name);
			goto out;
		}
		err = git_branch_create(&b, repo, name, tip, 0);
		if (err < 0 && err != GIT_EEXISTS) {
			*cause = xasprintf("cannot create branch %s: %s", name,
			    git_error_last() != NULL ?
			    git_error_last()->message : "?");
			goto out;
		}
	}
	if (b == NULL) {
		*cause = xasprintf("branches %s-2..%d all exist", first,
		    BRANCH_ATTEMPTS);
		goto out;
	}
	log_info("gitremote: agent %lld on branch %s", (long long)agent_id, name);
	*out_branch = name;
	name = NULL;
	rc = 0;
out:
	free(first);
	free(name);
	git_reference_free(b);
	git_commit_free(tip);
	git_reference_free(ref);
	git_repository_free(repo);
	return rc;
}
