#include "orchestrator/forge.h"
#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/render.h"
#include "orchestrator/results.h"
#include "orchestrator/worktree.h"
#include "config/config.h"
#include "bot/http.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pr_req {
	struct agent	*agent;
	struct http_req	*req;
	char		*api, *repo, *token, *branch;
	int		 lookup;	/* GET of the existing PR after a 422 */
	struct pr_req	*next;
};

static struct pr_req	*reqs;

char *
forge_pr_url(long long id)
{
	char	 k[64];

	snprintf(k, sizeof k, "forge:pr:%lld", id);
	return store_kv_get(k);
}

static void
pr_free(struct pr_req *p)
{
	struct pr_req	**pp;

	for (pp = &reqs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->token != NULL) {
		explicit_bzero(p->token, strlen(p->token));
		free(p->token);
	}
	free(p->api);
	free(p->repo);
	free(p->branch);
	agent_unref(p->agent);
	free(p);
}

static void	pr_send(struct pr_req *, const char *method, const char *url,
		    const char *body);

static void
pr_record(struct pr_req *p, const char *url, int existed)
{
	struct agent	*a = p->agent;
	char		 k[64], *step;

	snprintf(k, sizeof k, "forge:pr:%lld", (long long)agent_id(a));
	store_kv_set(k, url);
	conversation_say(agent_conversation(a), existed ?
	    "#%lld already has a pull request: %s" :
	    "#%lld: opened a pull request: %s", (long long)agent_id(a), url);
	step = xasprintf("PR: %s", url);
	agent_progress(a, step);	/* the card shows it */
	free(step);
}

static void
pr_done(const struct http_response *res, const char *error, void *arg)
{
	struct pr_req	*p = arg;
	struct agent	*a = p->agent;
	json_t		*j = NULL, *errs, *e;
	const char	*url = NULL, *msg = NULL;
	char		*u;
	size_t		 i;
	int		 exists = 0;

	p->req = NULL;
	if (error != NULL) {
		conversation_say(agent_conversation(a), "#%lld: no pull request:"
		    " %s (%s)", (long long)agent_id(a), error, p->api);
		goto out;
	}
	j = json_loadb(res->body, res->body_len, 0, NULL);
	msg = json_string_value(json_object_get(j, "message"));
	if (p->lookup) {
		if (res->status == 200 && json_is_array(j) &&
		    json_array_size(j) > 0)
			url = json_string_value(json_object_get(
			    json_array_get(j, 0), "html_url"));
		if (url != NULL)
			pr_record(p, url, 1);
		else
			conversation_say(agent_conversation(a), "#%lld: GitHub"
			    " says a pull request exists for `%s`, but it could"
			    " not be found (HTTP %ld).", (long long)agent_id(a),
			    p->branch, res->status);
		goto out;
	}
	if (res->status == 201 && (url = json_string_value(json_object_get(j,
	    "html_url"))) != NULL) {
		pr_record(p, url, 0);
		goto out;
	}
	if (res->status == 422) {
		errs = json_object_get(j, "errors");
		json_array_foreach(errs, i, e) {
			const char *m = json_string_value(json_object_get(e,
			    "message"));

			if (m != NULL && strstr(m, "already exists") != NULL)
				exists = 1;
			else if (m != NULL)
				msg = m;
		}
		if (exists) {
			/* Find it: open PRs whose head is owner:branch. */
			char *owner = xstrndup(p->repo, strcspn(p->repo, "/"));

			u = xasprintf("%s/repos/%s/pulls?state=open&head=%s:%s",
			    p->api, p->repo, owner, p->branch);
			free(owner);
			p->lookup = 1;
			pr_send(p, "GET", u, NULL);
			free(u);
			json_decref(j);
			return;
		}
	}
	if (res->status == 401)
		conversation_say(agent_conversation(a), "#%lld: GitHub refused"
		    " the token for %s (401%s%s); check repos.[].forge.token.",
		    (long long)agent_id(a), p->repo, msg != NULL ? ": " : "",
		    msg != NULL ? msg : "");
	else
		conversation_say(agent_conversation(a), "#%lld: GitHub did not"
		    " open the pull request (HTTP %ld%s%s).",
		    (long long)agent_id(a), res->status, msg != NULL ? ": " : "",
		    msg != NULL ? msg : "");
out:
	json_decref(j);
	pr_free(p);
}

static void
pr_send(struct pr_req *p, const char *method, const char *url,
    const char *body)
{
	struct http_request_opts	 o = { 0 };
	const char			*hdrs[6];
	char				*auth;

	auth = xasprintf("Authorization: Bearer %s", p->token);
	hdrs[0] = auth;
	hdrs[1] = "Accept: application/vnd.github+json";
	hdrs[2] = "X-GitHub-Api-Version: 2022-11-28";
	hdrs[3] = "User-Agent: switchboard";
	hdrs[4] = body != NULL ? "Content-Type: application/json" : NULL;
	hdrs[5] = NULL;
	o.method = method;
	o.url = url;
	o.headers = hdrs;
	o.body = body;
	o.body_len = body != NULL ? strlen(body) : 0;
	o.timeout_ms = 30000;
	p->req = http_request(&o, pr_done, p);
	explicit_bzero(auth, strlen(auth));
	free(auth);
}

/* A link back to the thread where the platform has one. */
static char *
thread_link(const struct conversation *c)
{
	if (strcmp(c->adapter, "matrix") == 0 && c->thread[0] == '$')
		return xasprintf("https://matrix.to/#/%s/%s", c->channel,
		    c->thread);
	return NULL;
}

/* "Closes #N" when a GitHub issue of this forge repo started the work. */
static char *
closes(const struct agent *a, const char *forge_repo)
{
	json_t		*v;
	const char	*repo;
	json_int_t	 n;
	char		 k[64], *s, *out = NULL;

	snprintf(k, sizeof k, "webhook:agent:%lld", (long long)agent_id(a));
	if ((s = store_kv_get(k)) == NULL)
		return NULL;
	v = json_loads(s, 0, NULL);
	free(s);
	if (json_unpack(v, "{s:s, s:I}", "repo", &repo, "number", &n) == 0)
		out = strcmp(repo, forge_repo) == 0 ?
		    xasprintf("Closes #%lld", (long long)n) :
		    xasprintf("Closes %s#%lld", repo, (long long)n);
	json_decref(v);
	return out;
}

static void
pr_pushed(struct agent *a, int ok, const char *why, void *arg)
{
	const struct cfg_repo	*cr = results_repo(a);
	struct worktree_stat	 ws = { 0 };
	struct conversation	*c = agent_conversation(a);
	struct pr_req		*p;
	struct buf		 body = { 0 };
	json_t			*j;
	char			*title, *link, *cl, *url, *data, *cause = NULL;

	if (!ok) {
		conversation_say(c, "#%lld: no pull request: the push failed:"
		    " %s", (long long)agent_id(a), why);
		return;
	}
	if (cr == NULL || cr->forge.kind == NULL)
		return;
	if (agent_summary(a) != NULL)
		buf_printf(&body, "%s\n\n", agent_summary(a));
	/* One small diff of a branch, as `diff #N` has always done. */
	if (worktree_diffstat(cr->path, cr->base, agent_branch(a), 30, &ws,
	    &cause) == 0)
		buf_printf(&body, "```\n%s\n```\n", ws.text);
	free(ws.text);
	free(cause);
	if ((link = thread_link(c)) != NULL)
		buf_printf(&body, "\nDiscussed in %s\n", link);
	free(link);
	if ((cl = closes(a, cr->forge.repo)) != NULL)
		buf_printf(&body, "\n%s\n", cl);
	free(cl);
	buf_printf(&body, "\nOpened by Switchboard for agent #%lld.",
	    (long long)agent_id(a));
	title = render_oneline(agent_task(a), 72);
	j = json_pack("{s:s, s:s, s:s, s:s}", "title", title, "head",
	    agent_branch(a), "base", cr->base, "body", body.data);
	data = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(title);
	buf_free(&body);

	p = xcalloc(1, sizeof *p);
	p->agent = a;
	agent_ref(a);
	p->api = xstrdup(cr->forge.api_url);
	p->repo = xstrdup(cr->forge.repo);
	p->token = xstrdup(cr->forge.token);
	p->branch = xstrdup(agent_branch(a));
	p->next = reqs;
	reqs = p;
	url = xasprintf("%s/repos/%s/pulls", p->api, p->repo);
	pr_send(p, "POST", url, data);
	free(url);
	free(data);
}

void
forge_pr(struct agent *a)
{
	const struct cfg_repo	*cr = results_repo(a);
	char			*url;

	if ((url = forge_pr_url(agent_id(a))) != NULL) {
		conversation_say(agent_conversation(a), "#%lld already has a"
		    " pull request: %s", (long long)agent_id(a), url);
		free(url);
		return;
	}
	if (cr == NULL || cr->forge.kind == NULL || cr->forge.token == NULL) {
		conversation_say(agent_conversation(a), "No forge is configured"
		    " for this repo (repos.[].forge), so no pull request.");
		return;
	}
	results_push(a, pr_pushed, NULL);
}

void
forge_shutdown(void)
{
	while (reqs != NULL) {
		if (reqs->req != NULL)
			http_cancel(reqs->req);
		pr_free(reqs);
	}
}
