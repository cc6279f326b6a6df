/*
 * webhook-github — GitHub events → tasks.  Pure: a payload in, a struct
 * webhook_event out, so every rule is unit-tested without a loop.
 *
 *	issues		opened carrying a configured label, or labeled with one
 *	issue_comment	created, body starts with the command (rest = task);
 *			issue.pull_request present = a PR
 *	pull_request	opened
 *	workflow_run,	completed with conclusion "failure"
 *	check_run
 *
 * Events about one issue or PR share the thread key "owner/repo#N"; a run
 * that belongs to no PR is keyed by its branch ("owner/repo@main"), so
 * repeated failures on a branch are follow-ups in one thread.
 */
#include "orchestrator/webhook.h"
#include "orchestrator/render.h"
#include "config/config.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define TITLE_MAX	120

static const char *
str(const json_t *o, const char *path)
{
	const json_t	*v = o;
	const char	*p = path, *dot;
	char		 name[64];
	size_t		 n;

	while (v != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof name)
			return NULL;
		memcpy(name, p, n);
		name[n] = '\0';
		v = json_object_get(v, name);
		p += n + (dot != NULL);
	}
	return json_string_value(v);
}

static json_int_t
num(const json_t *o, const char *key)
{
	const json_t	*v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* "owner/repo" with plain characters only: it goes into API URLs. */
static int
repo_ok(const char *r)
{
	const char	*p;
	int		 slashes = 0;

	if (r == NULL || *r == '\0' || *r == '/')
		return 0;
	for (p = r; *p != '\0'; p++) {
		if (*p == '/')
			slashes++;
		else if (!isalnum((unsigned char)*p) && *p != '-' &&
		    *p != '_' && *p != '.')
			return 0;
	}
	return slashes == 1 && p[-1] != '/';
}

static int
listed(char *const *v, const char *s)
{
	for (; v != NULL && *v != NULL; v++)
		if (strcmp(*v, s) == 0)
			return 1;
	return 0;
}

static char *
title_of(const char *t)
{
	return render_oneline(t != NULL ? t : "", TITLE_MAX);
}

static char *
bounded(struct buf *b)
{
	char	*s = buf_steal(b);

	if (s == NULL)
		s = xstrdup("");
	utf8_truncate(s, WEBHOOK_TASK_MAX);
	return s;
}

static void
issue_context(struct buf *b, const char *what, json_int_t n,
    const char *repo, const json_t *issue)
{
	const char	*body = str(issue, "body");

	buf_printf(b, "GitHub %s #%lld in %s: %s\n%s\n", what, (long long)n,
	    repo, str(issue, "title") != NULL ? str(issue, "title") : "",
	    str(issue, "html_url") != NULL ? str(issue, "html_url") : "");
	if (body != NULL && *body != '\0')
		buf_printf(b, "\n%s\n", body);
}

static int
map_issues(const struct cfg_webhook *w, const json_t *p, const char *repo,
    const char *sender, struct webhook_event *out, char **why)
{
	const json_t	*issue = json_object_get(p, "issue"), *labels, *l;
	const char	*action = str(p, "action"), *label = NULL;
	struct buf	 b = { 0 };
	json_int_t	 n = num(issue, "number");
	char		*title;
	size_t		 i;

	if (n <= 0) {
		*why = xstrdup("issue.number missing");
		return -1;
	}
	if (strcmp(action, "labeled") == 0) {
		label = str(p, "label.name");
		if (label == NULL || !listed(w->github.labels, label)) {
			*why = xasprintf("label %s is not a trigger",
			    label != NULL ? label : "(none)");
			return 0;
		}
	} else if (strcmp(action, "opened") == 0) {
		labels = json_object_get(issue, "labels");
		if (w->github.nlabels > 0) {
			json_array_foreach(labels, i, l) {
				if (listed(w->github.labels,
				    str(l, "name") != NULL ? str(l, "name") : ""))
					label = str(l, "name");
			}
			if (label == NULL) {
				*why = xstrdup("opened without a trigger label");
				return 0;
			}
		}
	} else {
		*why = xasprintf("issues action %s", action);
		return 0;
	}
	title = title_of(str(issue, "title"));
	out->key = xasprintf("%s#%lld", repo, (long long)n);
	if (strcmp(action, "labeled") == 0)
		out->headline = xasprintf("GitHub issue #%lld '%s' labeled %s",
		    (long long)n, title, label);
	else
		out->headline = xasprintf("GitHub issue #%lld '%s' opened by %s",
		    (long long)n, title, sender);
	free(title);
	issue_context(&b, "issue", n, repo, issue);
	out->task = bounded(&b);
	out->gh_number = n;
	if (str(issue, "html_url") != NULL)
		out->url = xstrdup(str(issue, "html_url"));
	return 1;
}

static int
map_comment(const struct cfg_webhook *w, const json_t *p, const char *repo,
    struct webhook_event *out, char **why)
{
	const json_t	*issue = json_object_get(p, "issue");
	const char	*body = str(p, "comment.body"), *who, *rest, *what;
	const char	*utype = str(p, "comment.user.type");
	size_t		 clen = strlen(w->github.command);
	struct buf	 b = { 0 };
	json_int_t	 n = num(issue, "number");
	char		*title;

	if (strcmp(str(p, "action"), "created") != 0) {
		*why = xasprintf("issue_comment action %s", str(p, "action"));
		return 0;
	}
	if (n <= 0 || body == NULL) {
		*why = xstrdup("issue.number or comment.body missing");
		return -1;
	}
	/* Never act on bots (our own write-back comments included). */
	if (utype != NULL && strcmp(utype, "Bot") == 0) {
		*why = xstrdup("comment by a bot");
		return 0;
	}
	while (isspace((unsigned char)*body))
		body++;
	if (strncmp(body, w->github.command, clen) != 0 ||
	    (body[clen] != '\0' && !isspace((unsigned char)body[clen]))) {
		*why = xasprintf("comment does not start with %s",
		    w->github.command);
		return 0;
	}
	for (rest = body + clen; isspace((unsigned char)*rest); rest++)
		;
	who = str(p, "comment.user.login") != NULL ?
	    str(p, "comment.user.login") : "someone";
	what = json_object_get(issue, "pull_request") != NULL ?
	    "pull request" : "issue";
	title = title_of(str(issue, "title"));
	out->key = xasprintf("%s#%lld", repo, (long long)n);
	out->headline = xasprintf("GitHub comment by %s on %s #%lld '%s'", who,
	    *what == 'p' ? "PR" : "issue", (long long)n, title);
	free(title);
	if (*rest != '\0')
		buf_printf(&b, "%s\n\n(asked by %s in a comment on the %s "
		    "below)\n\n", rest, who, what);
	else
		buf_printf(&b, "Work on this %s (asked by %s).\n\n", what, who);
	issue_context(&b, what, n, repo, issue);
	out->task = bounded(&b);
	out->gh_number = n;
	if (str(p, "comment.html_url") != NULL)
		out->url = xstrdup(str(p, "comment.html_url"));
	return 1;
}

static int
map_pull(const json_t *p, const char *repo, const char *sender,
    struct webhook_event *out, char **why)
{
	const json_t	*pr = json_object_get(p, "pull_request");
	struct buf	 b = { 0 };
	json_int_t	 n = num(pr, "number");
	char		*title;

	if (strcmp(str(p, "action"), "opened") != 0) {
		*why = xasprintf("pull_request action %s", str(p, "action"));
		return 0;
	}
	if (n <= 0) {
		*why = xstrdup("pull_request.number missing");
		return -1;
	}
	title = title_of(str(pr, "title"));
	out->key = xasprintf("%s#%lld", repo, (long long)n);
	out->headline = xasprintf("GitHub PR #%lld '%s' opened by %s",
	    (long long)n, title, sender);
	free(title);
	issue_context(&b, "pull request", n, repo, pr);
	if (str(pr, "head.ref") != NULL)
		buf_printf(&b, "\nBranch: %s\n", str(pr, "head.ref"));
	out->task = bounded(&b);
	out->gh_number = n;
	if (str(pr, "html_url") != NULL)
		out->url = xstrdup(str(pr, "html_url"));
	return 1;
}

/* workflow_run and check_run: the same shape where it matters. */
static int
map_run(const char *event, const json_t *p, const char *repo,
    struct webhook_event *out, char **why)
{
	const json_t	*run = json_object_get(p, event), *prs;
	const char	*conclusion, *name, *branch, *sha, *url;
	const char	*what = strcmp(event, "check_run") == 0 ? "check" :
			    "workflow";
	struct buf	 b = { 0 };
	json_int_t	 n = 0;
	char		 shortsha[8] = "";
	char		*title;

	if (strcmp(str(p, "action"), "completed") != 0) {
		*why = xasprintf("%s action %s", event, str(p, "action"));
		return 0;
	}
	if (run == NULL) {
		*why = xasprintf("%s missing", event);
		return -1;
	}
	conclusion = str(run, "conclusion");
	if (conclusion == NULL || strcmp(conclusion, "failure") != 0) {
		*why = xasprintf("%s concluded %s", event,
		    conclusion != NULL ? conclusion : "(none)");
		return 0;
	}
	name = str(run, "name") != NULL ? str(run, "name") : "?";
	branch = str(run, "head_branch") != NULL ? str(run, "head_branch") :
	    str(run, "check_suite.head_branch");
	sha = str(run, "head_sha");
	url = str(run, "html_url") != NULL ? str(run, "html_url") :
	    str(run, "details_url");
	if (sha != NULL)
		snprintf(shortsha, sizeof shortsha, "%.7s", sha);
	prs = json_object_get(run, "pull_requests");
	if (json_array_size(prs) > 0)
		n = num(json_array_get(prs, 0), "number");
	if (n > 0)
		out->key = xasprintf("%s#%lld", repo, (long long)n);
	else if (branch != NULL)
		out->key = xasprintf("%s@%s", repo, branch);
	title = title_of(name);
	out->headline = xasprintf("GitHub %s '%s' failed on %s%s%s%s", what,
	    title, branch != NULL ? branch : "?", *shortsha ? " (" : "",
	    shortsha, *shortsha ? ")" : "");
	free(title);
	buf_printf(&b, "The GitHub %s '%s' failed in %s on branch %s (commit "
	    "%s).\n", what, name, repo, branch != NULL ? branch : "?",
	    sha != NULL ? sha : "?");
	if (url != NULL)
		buf_printf(&b, "%s\n", url);
	if (str(run, "output.title") != NULL)
		buf_printf(&b, "\n%s\n", str(run, "output.title"));
	if (str(run, "output.summary") != NULL)
		buf_printf(&b, "%s\n", str(run, "output.summary"));
	buf_adds(&b, "\nFind the cause of the failure and fix it.\n");
	out->task = bounded(&b);
	out->gh_number = n;
	if (url != NULL)
		out->url = xstrdup(url);
	return 1;
}

int
webhook_github_map(const struct cfg_webhook *w, const char *event,
    const json_t *p, struct webhook_event *out, char **why)
{
	const char	*repo = str(p, "repository.full_name");
	const char	*sender = str(p, "sender.login");
	int		 rc;

	memset(out, 0, sizeof *out);
	*why = NULL;
	if (!listed(w->github.events, event)) {
		*why = xasprintf("event %s is not acted on", event);
		return 0;
	}
	if (!json_is_object(p) || str(p, "action") == NULL) {
		*why = xstrdup("no action in the payload");
		return -1;
	}
	if (!repo_ok(repo)) {
		*why = xstrdup("repository.full_name missing or odd");
		return -1;
	}
	if (sender == NULL)
		sender = "someone";
	if (strcmp(event, "issues") == 0)
		rc = map_issues(w, p, repo, sender, out, why);
	else if (strcmp(event, "issue_comment") == 0)
		rc = map_comment(w, p, repo, out, why);
	else if (strcmp(event, "pull_request") == 0)
		rc = map_pull(p, repo, sender, out, why);
	else
		rc = map_run(event, p, repo, out, why);
	if (rc != 1) {
		webhook_event_free(out);
		return rc;
	}
	out->by = xasprintf("github:%s", sender);
	if (out->gh_number > 0)
		out->gh_repo = xstrdup(repo);
	return 1;
}
