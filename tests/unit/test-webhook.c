/*
 * Webhook signatures, the GitHub event → task rules, and the webhook keys of
 * the configuration.  No loop: the pure parts of orchestrator/webhook*.c.
 */
#include "orchestrator/webhook.h"
#include "config/config.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DOC_SECRET	"It's a Secret to Everybody"
#define DOC_BODY	"Hello, World!"
#define DOC_HEX		"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#define NOW		1700000000LL

static char	 tmpdir[PATH_MAX];

TEST(github_signature_matches_the_docs_test_vector)
{
	char	 hex[65];

	webhook_hmac_hex(DOC_SECRET, DOC_BODY, strlen(DOC_BODY), hex);
	CHECK_STR(hex, DOC_HEX);
	CHECK_INT(webhook_github_verify(DOC_SECRET, "sha256=" DOC_HEX, DOC_BODY,
	    strlen(DOC_BODY)), 1);
}

TEST(github_signature_refuses_forged_missing_and_malformed)
{
	const char	*body = DOC_BODY;
	size_t		 len = strlen(body);

	/* One byte of the body, the secret, or the MAC changed. */
	CHECK_INT(webhook_github_verify(DOC_SECRET, "sha256=" DOC_HEX,
	    "Hello, World?", len), 0);
	CHECK_INT(webhook_github_verify("It's a secret to everybody",
	    "sha256=" DOC_HEX, body, len), 0);
	CHECK_INT(webhook_github_verify(DOC_SECRET, "sha256=" DOC_HEX "00",
	    body, len), 0);
	CHECK_INT(webhook_github_verify(DOC_SECRET, DOC_HEX, body, len), 0);
	CHECK_INT(webhook_github_verify(DOC_SECRET, "sha1=" DOC_HEX, body,
	    len), 0);
	CHECK_INT(webhook_github_verify(DOC_SECRET, "", body, len), 0);
	CHECK_INT(webhook_github_verify(DOC_SECRET, NULL, body, len), 0);
	/* The raw body: a trailing newline is a different body. */
	CHECK_INT(webhook_github_verify(DOC_SECRET, "sha256=" DOC_HEX,
	    DOC_BODY "\n", len + 1), 0);
}

static char *
generic_sig(const char *secret, const char *ts, const char *body)
{
	char	*data, hex[65];

	data = xasprintf("%s.%s", ts, body);
	webhook_hmac_hex(secret, data, strlen(data), hex);
	free(data);
	return xasprintf("sha256=%s", hex);
}

TEST(generic_signature_accepts_only_inside_the_five_minute_window)
{
	const char	*body = "{\"task\":\"x\"}", *reason = NULL;
	char		 ts[32], *sig;
	long long	 offs[] = { 0, -299, 299, -300, 300 };
	size_t		 i;

	for (i = 0; i < nitems(offs); i++) {
		snprintf(ts, sizeof ts, "%lld", NOW + offs[i]);
		sig = generic_sig("s3cret", ts, body);
		CHECK_INT(webhook_generic_verify("s3cret", ts, sig, body,
		    strlen(body), NOW, &reason), 0);
		free(sig);
	}
	snprintf(ts, sizeof ts, "%lld", NOW - 301);
	sig = generic_sig("s3cret", ts, body);
	CHECK_INT(webhook_generic_verify("s3cret", ts, sig, body, strlen(body),
	    NOW, &reason), -1);
	CHECK_STR(reason, "stale");
	free(sig);
	snprintf(ts, sizeof ts, "%lld", NOW + 301);
	sig = generic_sig("s3cret", ts, body);
	CHECK_INT(webhook_generic_verify("s3cret", ts, sig, body, strlen(body),
	    NOW, &reason), -1);
	CHECK_STR(reason, "stale");
	free(sig);
	CHECK_INT(webhook_generic_verify("s3cret", "soon", "sha256=00", body,
	    strlen(body), NOW, &reason), -1);
	CHECK_STR(reason, "stale");
}

TEST(generic_signature_covers_timestamp_and_body)
{
	const char	*body = "{\"task\":\"x\"}", *reason = NULL;
	char		 ts[32], ts2[32], *sig;

	snprintf(ts, sizeof ts, "%lld", NOW);
	snprintf(ts2, sizeof ts2, "%lld", NOW + 1);
	sig = generic_sig("s3cret", ts, body);
	/* Freshening the timestamp of a captured request breaks the MAC. */
	CHECK_INT(webhook_generic_verify("s3cret", ts2, sig, body, strlen(body),
	    NOW, &reason), -1);
	CHECK_STR(reason, "bad_signature");
	CHECK_INT(webhook_generic_verify("s3cret", ts, sig, "{\"task\":\"y\"}",
	    strlen(body), NOW, &reason), -1);
	CHECK_STR(reason, "bad_signature");
	CHECK_INT(webhook_generic_verify("other", ts, sig, body, strlen(body),
	    NOW, &reason), -1);
	CHECK_INT(webhook_generic_verify("s3cret", NULL, sig, body,
	    strlen(body), NOW, &reason), -1);
	CHECK_STR(reason, "missing_signature");
	CHECK_INT(webhook_generic_verify("s3cret", ts, NULL, body,
	    strlen(body), NOW, &reason), -1);
	CHECK_STR(reason, "missing_signature");
	free(sig);
}

/* ---- GitHub event mapping ------------------------------------------------ */

static char		*labels[] = { "agent", "ai", NULL };
static char		*events[] = { "issues", "issue_comment", "pull_request",
			    "workflow_run", "check_run", NULL };
static struct cfg_webhook hook = {
	.name = "gh", .enabled = 1, .path = "/hooks/github", .kind = "github",
	.github = { .labels = labels, .nlabels = 2, .command = "/agent",
	    .events = events, .nevents = 5 },
};

/* Maps JSON text; returns the rc, event in *ev, reason freed. */
static int
map(const char *event, const char *json, struct webhook_event *ev)
{
	json_error_t	 err;
	json_t		*p;
	char		*why = NULL;
	int		 rc;

	p = json_loads(json, 0, &err);
	if (p == NULL) {
		printf("  bad fixture: %s\n", err.text);
		return -99;
	}
	rc = webhook_github_map(&hook, event, p, ev, &why);
	json_decref(p);
	if (rc == 1)
		CHECK(why == NULL);
	else
		CHECK(why != NULL);
	free(why);
	return rc;
}

#define REPO_JSON "\"repository\":{\"full_name\":\"octo/webapp\"}," \
	"\"sender\":{\"login\":\"alice\"}"
#define ISSUE_JSON(labels) "\"issue\":{\"number\":12,\"title\":\"Add login\"," \
	"\"body\":\"We need it.\",\"html_url\":" \
	"\"https://github.com/octo/webapp/issues/12\",\"labels\":[" labels "]}"

TEST(github_issue_labeled_with_a_trigger_label_is_a_task)
{
	struct webhook_event	 ev;

	CHECK_INT(map("issues", "{\"action\":\"labeled\",\"label\":{\"name\":"
	    "\"ai\"}," ISSUE_JSON("{\"name\":\"ai\"}") "," REPO_JSON "}", &ev),
	    1);
	CHECK_STR(ev.key, "octo/webapp#12");
	CHECK_STR(ev.headline, "GitHub issue #12 'Add login' labeled ai");
	CHECK_STR(ev.url, "https://github.com/octo/webapp/issues/12");
	CHECK_STR(ev.by, "github:alice");
	CHECK_STR(ev.gh_repo, "octo/webapp");
	CHECK_INT(ev.gh_number, 12);
	CHECK(strstr(ev.task, "Add login") != NULL);
	CHECK(strstr(ev.task, "We need it.") != NULL);
	CHECK(strstr(ev.task, "https://github.com/octo/webapp/issues/12") !=
	    NULL);
	webhook_event_free(&ev);
}

TEST(github_issue_other_label_or_action_is_ignored)
{
	struct webhook_event	 ev;

	CHECK_INT(map("issues", "{\"action\":\"labeled\",\"label\":{\"name\":"
	    "\"bug\"}," ISSUE_JSON("") "," REPO_JSON "}", &ev), 0);
	CHECK_INT(map("issues", "{\"action\":\"closed\"," ISSUE_JSON(
	    "{\"name\":\"agent\"}") "," REPO_JSON "}", &ev), 0);
	/* Opened: only when it already carries a trigger label. */
	CHECK_INT(map("issues", "{\"action\":\"opened\"," ISSUE_JSON(
	    "{\"name\":\"bug\"}") "," REPO_JSON "}", &ev), 0);
	CHECK_INT(map("issues", "{\"action\":\"opened\"," ISSUE_JSON(
	    "{\"name\":\"bug\"},{\"name\":\"agent\"}") "," REPO_JSON "}", &ev),
	    1);
	CHECK_STR(ev.headline, "GitHub issue #12 'Add login' opened by alice");
	webhook_event_free(&ev);
}

TEST(github_comment_needs_the_command_and_its_rest_is_the_task)
{
	struct webhook_event	 ev;

#define COMMENT(body, extra) "{\"action\":\"created\",\"comment\":{\"body\":" \
	body ",\"user\":{\"login\":\"bob\",\"type\":\"" extra "\"}}," \
	ISSUE_JSON("") "," REPO_JSON "}"
	CHECK_INT(map("issue_comment", COMMENT("\"/agent add logout too\"",
	    "User"), &ev), 1);
	CHECK_STR(ev.key, "octo/webapp#12");
	CHECK_STR(ev.headline, "GitHub comment by bob on issue #12 'Add login'");
	CHECK(strncmp(ev.task, "add logout too\n", 15) == 0);
	CHECK(strstr(ev.task, "We need it.") != NULL);
	webhook_event_free(&ev);

	CHECK_INT(map("issue_comment", COMMENT("\"please /agent do it\"",
	    "User"), &ev), 0);
	CHECK_INT(map("issue_comment", COMMENT("\"/agents list\"", "User"),
	    &ev), 0);
	CHECK_INT(map("issue_comment", COMMENT("\"/agent loop\"", "Bot"),
	    &ev), 0);
	CHECK_INT(map("issue_comment", COMMENT("\"  /agent\"", "User"), &ev),
	    1);
	CHECK(strncmp(ev.task, "Work on this issue", 18) == 0);
	webhook_event_free(&ev);
}

TEST(github_comment_on_a_pull_request_says_pr)
{
	struct webhook_event	 ev;

	CHECK_INT(map("issue_comment", "{\"action\":\"created\",\"comment\":"
	    "{\"body\":\"/agent rebase\",\"user\":{\"login\":\"bob\"}},"
	    "\"issue\":{\"number\":40,\"title\":\"Speed\",\"pull_request\":{}},"
	    REPO_JSON "}", &ev), 1);
	CHECK_STR(ev.headline, "GitHub comment by bob on PR #40 'Speed'");
	CHECK(strstr(ev.task, "pull request") != NULL);
	webhook_event_free(&ev);
}

TEST(github_runs_act_only_on_failure_and_key_by_pr_or_branch)
{
	struct webhook_event	 ev;

	CHECK_INT(map("workflow_run", "{\"action\":\"completed\","
	    "\"workflow_run\":{\"name\":\"CI\",\"conclusion\":\"success\","
	    "\"head_branch\":\"main\"}," REPO_JSON "}", &ev), 0);
	CHECK_INT(map("workflow_run", "{\"action\":\"requested\","
	    "\"workflow_run\":{\"name\":\"CI\"}," REPO_JSON "}", &ev), 0);
	CHECK_INT(map("workflow_run", "{\"action\":\"completed\","
	    "\"workflow_run\":{\"name\":\"CI\",\"conclusion\":\"failure\","
	    "\"head_branch\":\"fix\",\"head_sha\":\"0123456789\","
	    "\"pull_requests\":[{\"number\":41}]}," REPO_JSON "}", &ev), 1);
	CHECK_STR(ev.key, "octo/webapp#41");
	CHECK_STR(ev.headline, "GitHub workflow 'CI' failed on fix (0123456)");
	CHECK_INT(ev.gh_number, 41);
	webhook_event_free(&ev);
	CHECK_INT(map("check_run", "{\"action\":\"completed\",\"check_run\":"
	    "{\"name\":\"lint\",\"conclusion\":\"failure\",\"head_sha\":\"ab\","
	    "\"check_suite\":{\"head_branch\":\"main\"},\"output\":{\"title\":"
	    "\"3 errors\",\"summary\":\"x.c:1: bad\"},\"pull_requests\":[]},"
	    REPO_JSON "}", &ev), 1);
	CHECK_STR(ev.key, "octo/webapp@main");
	CHECK_INT(ev.gh_number, 0);
	CHECK(ev.gh_repo == NULL);
	CHECK(strstr(ev.task, "x.c:1: bad") != NULL);
	webhook_event_free(&ev);
}

TEST(github_pull_request_opened_is_a_task_and_others_are_not)
{
	struct webhook_event	 ev;

	CHECK_INT(map("pull_request", "{\"action\":\"opened\",\"number\":7,"
	    "\"pull_request\":{\"number\":7,\"title\":\"New\\nline\","
	    "\"head\":{\"ref\":\"feat\"}}," REPO_JSON "}", &ev), 1);
	/* Titles are one line in chat. */
	CHECK(strchr(ev.headline, '\n') == NULL);
	CHECK(strstr(ev.task, "Branch: feat") != NULL);
	webhook_event_free(&ev);
	CHECK_INT(map("pull_request", "{\"action\":\"closed\",\"number\":7,"
	    "\"pull_request\":{\"number\":7}," REPO_JSON "}", &ev), 0);
}

TEST(github_unlisted_event_ignored_and_broken_payload_refused)
{
	struct webhook_event	 ev;
	char			*saved = events[1];

	CHECK_INT(map("star", "{\"action\":\"created\"," REPO_JSON "}", &ev),
	    0);
	events[1] = NULL;	/* issue_comment not configured */
	CHECK_INT(map("issue_comment", COMMENT("\"/agent x\"", "User"), &ev),
	    0);
	events[1] = saved;
	CHECK_INT(map("issues", "{\"action\":\"labeled\"}", &ev), -1);
	CHECK_INT(map("issues", "{\"action\":\"labeled\",\"repository\":"
	    "{\"full_name\":\"../../x\"}}", &ev), -1);
	CHECK_INT(map("issues", "{\"action\":\"labeled\",\"label\":{\"name\":"
	    "\"agent\"}," REPO_JSON "}", &ev), -1);
}

TEST(github_task_is_bounded_without_splitting_utf8)
{
	struct webhook_event	 ev;
	struct buf		 b = { 0 };
	int			 i;

	buf_adds(&b, "{\"action\":\"labeled\",\"label\":{\"name\":\"agent\"},"
	    "\"issue\":{\"number\":3,\"title\":\"t\",\"body\":\"");
	for (i = 0; i < 3000; i++)
		buf_adds(&b, "é");	/* 2 bytes each: 6000 bytes */
	buf_adds(&b, "\"}," REPO_JSON "}");
	CHECK_INT(map("issues", b.data, &ev), 1);
	CHECK(strlen(ev.task) <= WEBHOOK_TASK_MAX);
	CHECK(strlen(ev.task) > WEBHOOK_TASK_MAX - 8);
	/* Ends on a whole character: jansson refuses invalid UTF-8. */
	{
		json_t *s = json_string(ev.task);
		CHECK(s != NULL);
		json_decref(s);
	}
	webhook_event_free(&ev);
	buf_free(&b);
}

/* ---- configuration ------------------------------------------------------- */

static void
sh(const char *fmt, ...)
{
	va_list	 ap;
	char	*cmd;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "failed: %s\n", cmd);
		exit(1);
	}
	free(cmd);
}

/* Loads a config made of the base plus webhooks text; cause returned. */
static int
load(const char *listen, const char *webhooks, struct config **c,
    char **cause)
{
	char	*path;
	FILE	*f;
	int	 rc;

	path = xasprintf("%s/t.conf", tmpdir);
	f = fopen(path, "w");
	fprintf(f, "state_dir = \"state\";\nhttp = { listen = \"%s\"; };\n"
	    "repos = ( { name = \"r\"; path = \"repo\"; } );\n"
	    "agents = ( { name = \"a\"; driver = \"command\"; command = "
	    "[ \"/bin/true\" ]; } );\n"
	    "adapters = { console = { enabled = true; }; };\n"
	    "webhooks = (\n%s\n);\n", listen, webhooks);
	fclose(f);
	rc = config_load(path, c, cause);
	free(path);
	return rc;
}

#define HOOK(name, path, more) "{ name = \"" name "\"; path = \"" path "\"; " \
	"kind = \"github\"; secret = \"env:T_WH_SECRET\"; target = { adapter =" \
	" \"console\"; channel = \"console\"; }; repo = \"r\"; agent = \"a\"; " \
	more " }"

TEST(config_webhook_loads_with_defaults_and_resolved_secret)
{
	struct config			*c = NULL;
	const struct cfg_webhook	*w;
	char				*cause = NULL;

	setenv("T_WH_SECRET", "wh-SECRET-value", 1);
	if (load("127.0.0.1:0", HOOK("gh", "/hooks/github", "github = { "
	    "api_url = \"http://127.0.0.1:9/x/\"; };"), &c, &cause) != 0)
		printf("  %s\n", cause);
	CHECK(cause == NULL);
	CHECK_INT(c->nwebhooks, 1);
	CHECK((w = config_webhook(c, "gh")) != NULL);
	CHECK(config_webhook(c, "nope") == NULL);
	CHECK_INT(w->enabled, 1);
	CHECK_STR(w->secret, "wh-SECRET-value");
	CHECK_STR(w->secret_ref, "env:T_WH_SECRET");
	CHECK_STR(w->github.command, "/agent");
	CHECK_INT(w->github.nlabels, 1);
	CHECK_STR(w->github.labels[0], "agent");
	CHECK_INT(w->github.nevents, 5);
	CHECK(w->github.token == NULL);
	CHECK_STR(w->github.api_url, "http://127.0.0.1:9/x");
	CHECK_STR(w->generic.timestamp_header, "X-Switchboard-Timestamp");
	{
		char *sum = config_summary(c);
		CHECK(strstr(sum, "/hooks/github") != NULL);
		CHECK(strstr(sum, "wh-SECRET-value") == NULL);
		free(sum);
	}
	config_free(c);
}

static void
expect_error(const char *listen, const char *hooks, const char *needle)
{
	struct config	*c = NULL;
	char		*cause = NULL;

	CHECK_INT(load(listen, hooks, &c, &cause), -1);
	CHECK(c == NULL);
	if (strstr(cause, needle) == NULL)
		printf("  wanted \"%s\" in: %s\n", needle, cause);
	CHECK(strstr(cause, needle) != NULL);
	/* Errors carry file:line. */
	CHECK(strstr(cause, "t.conf:") != NULL);
	CHECK(strstr(cause, "wh-SECRET-value") == NULL);
	free(cause);
}

TEST(config_webhook_relations_are_checked)
{
	setenv("T_WH_SECRET", "wh-SECRET-value", 1);
	expect_error("127.0.0.1:0", HOOK("gh", "hooks", ""),
	    "must start with '/'");
	expect_error("127.0.0.1:0", HOOK("gh", "/a", "") "," HOOK("gh", "/b",
	    ""), "duplicate webhook name 'gh'");
	expect_error("127.0.0.1:0", HOOK("a", "/x", "") "," HOOK("b", "/x",
	    ""), "'/x' is already webhook 'a'");
	expect_error("127.0.0.1:0", HOOK("gh", "/metrics", ""), "built in");
	expect_error("", HOOK("gh", "/x", ""), "needs http.listen");
	expect_error("127.0.0.1:0", "{ name = \"gh\"; path = \"/x\"; kind = "
	    "\"github\"; secret = \"env:T_WH_SECRET\"; target = { adapter = "
	    "\"slack\"; channel = \"C1\"; }; repo = \"nope\"; agent = \"a\"; }",
	    "no repo named 'nope'");
	expect_error("127.0.0.1:0", "{ name = \"gh\"; path = \"/x\"; kind = "
	    "\"github\"; secret = \"env:T_WH_SECRET\"; target = { adapter = "
	    "\"slack\"; channel = \"C1\"; }; repo = \"r\"; agent = \"a\"; }",
	    "adapter 'slack' is not enabled");
	expect_error("127.0.0.1:0", HOOK("gh", "/x", "github = { events = "
	    "[ \"push\" ]; };"), "\"push\" is not one of");
	expect_error("127.0.0.1:0", HOOK("gh", "/x", "generic = { };"),
	    "only for kind \"generic\"");
	expect_error("127.0.0.1:0", "{ name = \"gh\"; path = \"/x\"; kind = "
	    "\"github\"; secret = \"sekrit\"; target = { adapter = "
	    "\"console\"; channel = \"console\"; }; repo = \"r\"; agent = "
	    "\"a\"; }", "never inline");
	unsetenv("T_WH_SECRET");
	expect_error("127.0.0.1:0", HOOK("gh", "/x", ""),
	    "T_WH_SECRET is not set");
}

TEST(config_disabled_webhook_needs_no_secret_or_listener)
{
	struct config	*c = NULL;
	char		*cause = NULL;

	unsetenv("T_WH_SECRET");
	if (load("", HOOK("gh", "/x", "enabled = false;"), &c, &cause) != 0)
		printf("  %s\n", cause);
	CHECK(cause == NULL);
	CHECK_INT(c->webhooks[0].enabled, 0);
	CHECK(c->webhooks[0].secret == NULL);
	config_free(c);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/sb-test-webhook.XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	sh("mkdir -p '%s/repo' && cd '%s/repo' && git init -q && "
	    "git symbolic-ref HEAD refs/heads/main && "
	    "git -c user.name=t -c user.email=t@t commit -q --allow-empty "
	    "-m init", tmpdir, tmpdir);

	RUN(github_signature_matches_the_docs_test_vector);
	RUN(github_signature_refuses_forged_missing_and_malformed);
	RUN(generic_signature_accepts_only_inside_the_five_minute_window);
	RUN(generic_signature_covers_timestamp_and_body);
	RUN(github_issue_labeled_with_a_trigger_label_is_a_task);
	RUN(github_issue_other_label_or_action_is_ignored);
	RUN(github_comment_needs_the_command_and_its_rest_is_the_task);
	RUN(github_comment_on_a_pull_request_says_pr);
	RUN(github_runs_act_only_on_failure_and_key_by_pr_or_branch);
	RUN(github_pull_request_opened_is_a_task_and_others_are_not);
	RUN(github_unlisted_event_ignored_and_broken_payload_refused);
	RUN(github_task_is_bounded_without_splitting_utf8);
	RUN(config_webhook_loads_with_defaults_and_resolved_secret);
	RUN(config_webhook_relations_are_checked);
	RUN(config_disabled_webhook_needs_no_secret_or_listener);
	sh("rm -rf '%s'", tmpdir);
	return t_done();
}
