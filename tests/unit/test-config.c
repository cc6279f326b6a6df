#include "config/config.h"
#include "config/schema.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <sys/stat.h>

#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * Fixtures live in tests/unit/config/ and are copied into a scratch directory
 * that holds a git repository "repo" (branch main, one commit), because
 * relative paths resolve against the config file's directory.
 */
#define FIXTURES	"tests/unit/config"
#define SECRET		"xoxb-RECOGNIZABLE-SECRET-7731"
#define FILE_SECRET	"xoxb-FILE-SECRET-4410"

static char	 tmpdir[PATH_MAX];

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

static void
make_repo(const char *dir)
{
	sh("mkdir -p '%s' && cd '%s' && git init -q && "
	    "git symbolic-ref HEAD refs/heads/main && "
	    "git -c user.name=t -c user.email=t@t commit -q --allow-empty -m init",
	    dir, dir);
}

/* Copies a fixture next to the scratch repo and loads it. */
static int
load(const char *name, struct config **c, char **cause)
{
	char	*path;
	int	 rc;

	sh("cp '%s/%s' '%s/%s'", FIXTURES, name, tmpdir, name);
	path = xasprintf("%s/%s", tmpdir, name);
	rc = config_load(path, c, cause);
	free(path);
	return rc;
}

/* The load fails and the first error starts with "TMPDIR/want". */
static int
fails_with(const char *name, const char *want)
{
	struct config	*c = NULL;
	char		*cause = NULL, *prefix;
	int		 ok;

	if (load(name, &c, &cause) != -1 || c != NULL || cause == NULL) {
		printf("  %s: loaded\n", name);
		config_free(c);
		return 0;
	}
	prefix = xasprintf("%s/%s", tmpdir, want);
	ok = strncmp(cause, prefix, strlen(prefix)) == 0 &&
	    strstr(cause, SECRET) == NULL && strstr(cause, FILE_SECRET) == NULL;
	if (!ok)
		printf("  %s: got \"%s\"\n  want prefix \"%s\"\n", name, cause,
		    prefix);
	free(prefix);
	free(cause);
	return ok;
}

TEST(minimal_config_loads_with_schema_defaults)
{
	struct config	*c;
	char		*cause = NULL, *want;

	CHECK(load("minimal.conf", &c, &cause) == 0);
	CHECK(cause == NULL);
	want = xasprintf("%s/state", tmpdir);
	CHECK_STR(c->state_dir, want);
	free(want);
	CHECK_STR(c->http_listen, "");
	CHECK_INT(c->http_max_body, 1048576);
	CHECK_STR(c->log_level, "info");
	CHECK_INT(c->log_json, 0);
	CHECK(c->log_file == NULL);
	CHECK_INT(c->nallowed_users, 0);
	CHECK_INT(c->nrepos, 0);
	CHECK_INT(c->nagents, 0);
	CHECK_INT(c->nroutes, 0);
	CHECK_INT(c->console.enabled, 0);
	CHECK_INT(c->slack.enabled, 0);
	CHECK_STR(c->slack.mode, "socket");
	CHECK_STR(c->slack.api_url, "https://slack.com/api/");
	CHECK(c->slack.bot_token == NULL);
	CHECK_INT(c->matrix.enabled, 0);
	CHECK_INT(c->matrix.autojoin, 1);
	CHECK_INT(c->limits.max_agents, 8);
	CHECK_INT(c->limits.max_agents_per_conversation, 4);
	CHECK_INT(c->limits.agent_timeout, 3600);
	CHECK_INT(c->limits.kill_grace, 5);
	CHECK_INT(c->limits.output_tail, 8192);
	CHECK_STR(c->git.name, "Switchboard");
	CHECK_STR(c->git.email, "switchboard@localhost");
	CHECK_INT(c->git.retention, 604800);
	CHECK_INT(c->render.card_interval_ms, 2000);
	config_free(c);
}

TEST(missing_file_names_the_file_and_errno)
{
	struct config	*c;
	char		*cause = NULL, *path;

	path = xasprintf("%s/absent.conf", tmpdir);
	CHECK(config_load(path, &c, &cause) == -1);
	CHECK(c == NULL);
	CHECK(strstr(cause, "absent.conf: No such file") != NULL);
	free(cause);
	free(path);
}

TEST(syntax_error_has_libconfig_file_line)
{
	CHECK(fails_with("syntax.conf", "syntax.conf:4: syntax error"));
}

TEST(unknown_top_level_key_is_error_with_line)
{
	CHECK(fails_with("unknown-top.conf",
	    "unknown-top.conf:2: unknown key 'verbose'"));
}

TEST(unknown_nested_key_suggests_closest)
{
	CHECK(fails_with("unknown-nested.conf", "unknown-nested.conf:3: "
	    "unknown key 'http.lisen' (did you mean 'http.listen'?)"));
}

TEST(unknown_key_in_list_item_names_item_index)
{
	CHECK(fails_with("unknown-list.conf",
	    "unknown-list.conf:5: unknown key 'repos.[0].paht' "
	    "(did you mean 'repos.[0].path'?)"));
}

TEST(wrong_type_names_key_and_expected_type)
{
	CHECK(fails_with("wrong-type.conf", "wrong-type.conf:3: http.max_body: "
	    "expected an integer, got a string"));
}

TEST(missing_required_top_level_key_is_named)
{
	CHECK(fails_with("missing-required.conf",
	    "missing-required.conf: missing required key 'state_dir'"));
}

TEST(missing_required_key_in_list_item_has_item_line)
{
	CHECK(fails_with("missing-in-list.conf", "missing-in-list.conf:3: "
	    "missing required key 'agents.[0].driver'"));
}

TEST(bad_enum_lists_allowed_values)
{
	CHECK(fails_with("bad-enum.conf", "bad-enum.conf:3: log.level: "
	    "\"verbose\" is not one of debug, info, warn, error"));
}

TEST(out_of_range_int_shows_range)
{
	CHECK(fails_with("out-of-range.conf", "out-of-range.conf:3: "
	    "limits.max_agents: 0 is out of range 1..1000"));
}

TEST(route_to_unknown_repo_is_error)
{
	CHECK(fails_with("route-repo.conf", "route-repo.conf:5: "
	    "routes.[0].repo: no repo named 'nope'"));
}

TEST(route_to_unknown_brain_is_error_with_line)
{
	CHECK(fails_with("brain-route.conf", "brain-route.conf:6: "
	    "routes.[0].brain: no brain named 'mian'"));
}

TEST(anthropic_brain_needs_an_api_key)
{
	CHECK(fails_with("brain-key.conf", "brain-key.conf:4: "
	    "brains.[1].api_key: required for provider \"anthropic\""));
}

TEST(openai_brain_without_key_loads_with_defaults)
{
	struct config		*c;
	const struct cfg_brain	*b;
	char			*cause = NULL;

	CHECK(load("brain-ok.conf", &c, &cause) == 0);
	CHECK((b = config_brain(c, "local")) != NULL);
	CHECK(b->api_key == NULL);
	CHECK_STR(b->base_url, "http://127.0.0.1:11434");
	CHECK_INT(b->max_tokens, 2048);
	CHECK_INT(b->context_tokens, 60000);
	CHECK_INT(b->max_tool_rounds, 8);
	CHECK_INT(b->timeout, 120);
	CHECK(config_brain(c, "nope") == NULL);
	config_free(c);
}

TEST(duplicate_agent_name_is_error_at_second)
{
	CHECK(fails_with("dup-agent.conf", "dup-agent.conf:4: "
	    "agents.[1].name: duplicate agent name 'sh'"));
}

TEST(command_driver_needs_nonempty_command)
{
	CHECK(fails_with("command-empty.conf", "command-empty.conf:3: "
	    "agents.[0].command: driver \"command\" needs"));
}

TEST(repo_path_must_exist)
{
	CHECK(fails_with("repo-missing.conf", "repo-missing.conf:3: "
	    "repos.[0].path: "));
}

TEST(unset_env_secret_names_variable_not_value)
{
	CHECK(fails_with("secret-env.conf", "secret-env.conf:6: "
	    "adapters.slack.bot_token: environment variable SB_TEST_UNSET "
	    "is not set"));
}

TEST(unreadable_file_secret_is_error)
{
	CHECK(fails_with("secret-file.conf", "secret-file.conf:6: "
	    "adapters.slack.bot_token: cannot read secret file "));
}

TEST(inline_secret_is_error_without_echoing_it)
{
	struct config	*c;
	char		*cause = NULL;

	CHECK(fails_with("secret-inline.conf", "secret-inline.conf:5: "
	    "adapters.slack.bot_token: secrets must be env: or file: "
	    "references"));
	CHECK(load("secret-inline.conf", &c, &cause) == -1);
	CHECK(strstr(cause, "INLINE-SECRET") == NULL);
	free(cause);
}

TEST(enabled_slack_events_mode_needs_signing_secret_and_listen)
{
	struct config	*c;
	char		*cause = NULL;

	CHECK(fails_with("slack-events.conf", "slack-events.conf:4: "
	    "adapters.slack.signing_secret is required in events mode"));
	CHECK(load("slack-events.conf", &c, &cause) == -1);
	CHECK(strstr(cause, "events mode needs http.listen") != NULL);
	free(cause);
}

TEST(disabled_adapter_secrets_are_not_resolved)
{
	struct config	*c;
	char		*cause = NULL;

	CHECK(load("secret-disabled.conf", &c, &cause) == 0);
	CHECK(c->slack.app_token == NULL);
	CHECK_STR(c->slack.app_token_ref, "env:SB_TEST_UNSET");
	config_free(c);
}

TEST(secrets_resolve_and_never_appear_in_summary)
{
	struct config	*c;
	char		*cause = NULL, *sum;

	CHECK(load("secret-ok.conf", &c, &cause) == 0);
	CHECK_STR(c->slack.app_token, SECRET);
	CHECK_STR(c->slack.bot_token, FILE_SECRET);	/* newline stripped */
	CHECK_STR(c->slack.api_url, "http://127.0.0.1:1/api/");
	CHECK_STR(c->matrix.password, SECRET);
	CHECK_STR(c->matrix.homeserver, "http://127.0.0.1:1");
	sum = config_summary(c);
	CHECK(strstr(sum, "env:SB_TEST_SECRET") != NULL);
	CHECK(strstr(sum, "file:bot-token") != NULL);
	CHECK(strstr(sum, SECRET) == NULL);
	CHECK(strstr(sum, FILE_SECRET) == NULL);
	free(sum);
	config_free(c);
}

TEST(route_prefers_exact_channel_over_wildcard)
{
	struct config		*c;
	const struct cfg_route	*r;
	char			*cause = NULL;

	CHECK(load("routes.conf", &c, &cause) == 0);
	CHECK_STR(c->state_dir, "/var/lib/switchboard");
	CHECK((r = config_route(c, "slack", "C1")) != NULL);
	CHECK_STR(r->repo, "api");
	CHECK((r = config_route(c, "slack", "C2")) != NULL);
	CHECK_STR(r->repo, "web");
	CHECK((r = config_route(c, "matrix", "!r:example.org")) != NULL);
	CHECK_STR(r->repo, "api");
	CHECK(config_route(c, "matrix", "!other:example.org") == NULL);
	CHECK(config_route(c, "console", "x") == NULL);
	CHECK(config_repo(c, "web") != NULL);
	CHECK(config_repo(c, "nope") == NULL);
	CHECK(config_agent(c, "sh") != NULL);
	CHECK_INT(config_agent(c, "sh")->ncommand, 3);
	CHECK(config_agent(c, "sh")->command[3] == NULL);
	CHECK_INT(config_agent(c, "sh")->timeout, 60);
	CHECK_STR(config_repo(c, "api")->base, "main");
	config_free(c);
}

TEST(user_allowed_matches_exact_and_adapter_wildcard)
{
	struct config	*c;
	char		*cause = NULL;

	CHECK(load("routes.conf", &c, &cause) == 0);
	CHECK_INT(config_user_allowed(c, "console", "anyone"), 1);
	CHECK_INT(config_user_allowed(c, "slack", "U1"), 1);
	CHECK_INT(config_user_allowed(c, "slack", "U2"), 0);
	CHECK_INT(config_user_allowed(c, "slack", "U"), 0);
	CHECK_INT(config_user_allowed(c, "matrix", "@alice:example.org"), 1);
	CHECK_INT(config_user_allowed(c, "matrix", "@bob:example.org"), 0);
	/* "console:*" is not a wildcard for a prefix of the adapter name. */
	CHECK_INT(config_user_allowed(c, "cons", "anyone"), 0);
	config_free(c);

	CHECK(load("minimal.conf", &c, &cause) == 0);
	CHECK_INT(config_user_allowed(c, "console", "anyone"), 0);
	config_free(c);
}

TEST(reload_diff_reports_state_dir_not_log_level)
{
	struct config	*a, *b;
	char		*cause = NULL, *diff;

	CHECK(load("reload-old.conf", &a, &cause) == 0);
	CHECK(load("reload-new.conf", &b, &cause) == 0);
	diff = config_reload_diff(a, b);
	CHECK(diff != NULL);
	CHECK_STR(diff, "state_dir");
	free(diff);
	CHECK(config_reload_diff(a, a) == NULL);
	config_free(a);
	config_free(b);
}

TEST(reload_diff_notices_rotated_secret_by_name_only)
{
	struct config	*a, *b;
	char		*cause = NULL, *diff;

	CHECK(load("secret-ok.conf", &a, &cause) == 0);
	sh("printf 'rotated\\n' > '%s/bot-token'", tmpdir);
	CHECK(load("secret-ok.conf", &b, &cause) == 0);
	diff = config_reload_diff(a, b);
	CHECK(diff != NULL);
	CHECK_STR(diff, "adapters.slack.bot_token");
	free(diff);
	config_free(a);
	config_free(b);
	sh("printf '%s\\n' > '%s/bot-token'", FILE_SECRET, tmpdir);
}

TEST(example_file_loads_and_mentions_every_key)
{
	struct config	*c;
	char		*dir, *path, *cause = NULL, *text, *needle, *repo;
	const char	*name;
	size_t		 i;
	long		 len;
	FILE		*f;

	dir = xasprintf("%s/example", tmpdir);
	repo = xasprintf("%s/repos/webapp", dir);
	make_repo(repo);
	sh("cp config/switchboard.conf.example '%s/switchboard.conf'", dir);
	path = xasprintf("%s/switchboard.conf", dir);
	if (config_load(path, &c, &cause) != 0)
		printf("  %s\n", cause);
	CHECK(cause == NULL);
	CHECK_INT(c->console.enabled, 1);
	CHECK_STR(config_route(c, "console", "whatever")->repo, "webapp");
	CHECK_STR(c->repos[0].path, repo);
	config_free(c);

	CHECK((f = fopen(path, "r")) != NULL);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = xcalloc(1, len + 1);
	CHECK(fread(text, 1, len, f) == (size_t)len);
	fclose(f);
	for (i = 0; i < schema_nkeys; i++) {
		name = strrchr(schema_keys[i].path, '.');
		name = name == NULL ? schema_keys[i].path : name + 1;
		needle = xasprintf("%s = ", name);
		if (strstr(text, needle) == NULL)
			printf("  example lacks %s\n", schema_keys[i].path);
		CHECK(strstr(text, needle) != NULL);
		free(needle);
	}
	free(text);
	free(path);
	free(repo);
	free(dir);
}

TEST(schema_doc_lists_every_key_with_default)
{
	char	*doc;
	size_t	 i;

	doc = config_schema_doc();
	for (i = 0; i < schema_nkeys; i++)
		CHECK(strstr(doc, schema_keys[i].path) != NULL);
	CHECK(strstr(doc, "limits.max_agents\tan integer, 1..1000, "
	    "default 8") != NULL);
	CHECK(strstr(doc, "state_dir\ta string, required") != NULL);
	free(doc);
}

/* Every default in the table must itself pass the table's checks. */
TEST(schema_defaults_pass_their_own_checks)
{
	const struct schema_key	*k;
	char			*why;
	size_t			 i, j;
	int			 found;

	for (i = 0; i < schema_nkeys; i++) {
		k = &schema_keys[i];
		if (k->def == NULL)
			continue;
		if (k->type == SCHEMA_INT) {
			CHECK(strtoll(k->def, NULL, 10) >= k->min);
			CHECK(strtoll(k->def, NULL, 10) <= k->max);
		}
		if (k->type == SCHEMA_BOOL)
			CHECK(strcmp(k->def, "true") == 0 ||
			    strcmp(k->def, "false") == 0);
		if (k->values != NULL) {
			for (found = 0, j = 0; k->values[j] != NULL; j++)
				found |= strcmp(k->values[j], k->def) == 0;
			CHECK(found);
		}
		why = NULL;
		if (k->check != NULL && k->check(k->def, &why) != 0)
			printf("  %s: %s\n", k->path, why);
		CHECK(why == NULL);
	}
}

/*
 * config_check() on a fixture, with PATH = TMPDIR/bin (only "true" in it), so
 * what is found does not depend on the machine.  Returns the error count.
 */
static int
check_cfg(const char *name, char **errs, char **warns)
{
	struct config	*c = NULL;
	char		*cause = NULL, *path, *old;
	int		 n;

	*errs = *warns = NULL;
	if (load(name, &c, &cause) != 0) {
		printf("  %s: %s\n", name, cause);
		free(cause);
		return -1;
	}
	old = xstrdup(getenv("PATH"));
	path = xasprintf("%s/bin", tmpdir);
	setenv("PATH", path, 1);
	n = config_check(c, errs, warns);
	setenv("PATH", old, 1);
	free(old);
	free(path);
	config_free(c);
	return n;
}

/* s has a line starting with "TMPDIR/want". */
static int
has_line(const char *s, const char *want)
{
	char		*prefix;
	const char	*p;
	int		 ok = 0;

	if (s == NULL)
		return 0;
	prefix = xasprintf("%s/%s", tmpdir, want);
	for (p = s; p != NULL; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			ok = 1;
			break;
		}
	}
	if (!ok)
		printf("  want a line \"%s...\" in:\n%s\n", prefix, s);
	free(prefix);
	return ok;
}

TEST(check_passes_a_config_that_can_work)
{
	char	*errs, *warns;

	CHECK_INT(check_cfg("check-ok.conf", &errs, &warns), 0);
	CHECK(errs == NULL);
	CHECK(warns == NULL);
}

TEST(check_no_adapter_enabled_is_an_error)
{
	char	*errs, *warns;

	CHECK_INT(check_cfg("check-no-adapter.conf", &errs, &warns), 1);
	CHECK(has_line(errs, "check-no-adapter.conf:3: no adapter is enabled"));
	free(errs);
	free(warns);
}

TEST(check_agent_program_not_on_path_is_an_error_per_agent)
{
	char	*errs, *warns;

	CHECK_INT(check_cfg("check-agent-path.conf", &errs, &warns), 2);
	CHECK(has_line(errs, "check-agent-path.conf:6: agents.[1].command: "
	    "agent 'gone': program \"sb-no-such-agent-program\" is not found "
	    "in PATH"));
	/* claude's default program is "claude". */
	CHECK(has_line(errs, "check-agent-path.conf:7: agents.[2].command: "
	    "agent 'claude': program \"claude\" is not found"));
	CHECK(strstr(errs, "'ok'") == NULL);
	free(errs);
	free(warns);
}

TEST(check_agent_program_not_executable_is_an_error)
{
	char	*errs, *warns, *want;

	sh("printf '#!/bin/sh\\n' > '%s/not-executable.sh' && "
	    "chmod 644 '%s/not-executable.sh'", tmpdir, tmpdir);
	CHECK_INT(check_cfg("check-agent-noexec.conf", &errs, &warns), 1);
	want = xasprintf("check-agent-noexec.conf:4: agents.[0].command: agent "
	    "'script': %s/not-executable.sh is not executable", tmpdir);
	CHECK(has_line(errs, want));
	free(want);
	free(errs);
	free(warns);
}

TEST(check_route_to_disabled_adapter_is_a_warning)
{
	char	*errs, *warns;

	CHECK_INT(check_cfg("check-route-disabled.conf", &errs, &warns), 0);
	CHECK(errs == NULL);
	CHECK(has_line(warns, "check-route-disabled.conf:7: warning: "
	    "routes.[1].adapter: adapter 'slack' is not enabled"));
	free(warns);
}

TEST(check_nobody_allowed_is_an_error)
{
	char	*errs, *warns;

	CHECK_INT(check_cfg("check-nobody.conf", &errs, &warns), 1);
	CHECK(has_line(errs, "check-nobody.conf:3: access.allowed_users is "
	    "empty"));
	free(errs);
	free(warns);
}

TEST(check_log_file_in_missing_directory_is_an_error)
{
	char	*errs, *warns, *want;

	CHECK_INT(check_cfg("check-log-dir.conf", &errs, &warns), 1);
	want = xasprintf("check-log-dir.conf:4: log.file: directory "
	    "%s/no-such-dir: No such file or directory", tmpdir);
	CHECK(has_line(errs, want));
	free(want);
	free(errs);
	free(warns);
}

TEST(log_file_inside_a_state_dir_not_yet_made_works)
{
	struct config	*c = NULL;
	char		*errs, *warns, *cause = NULL;
	FILE		*f;

	sh("rm -rf '%s/fresh-state'", tmpdir);
	CHECK_INT(check_cfg("check-log-in-state.conf", &errs, &warns), 0);
	CHECK(load("check-log-in-state.conf", &c, &cause) == 0);
	CHECK(fopen(c->log_file, "a") == NULL);	/* not yet */
	CHECK(config_prepare_dirs(c, &cause) == 0);
	CHECK((f = fopen(c->log_file, "a")) != NULL);
	fclose(f);
	config_free(c);
}

TEST(repo_that_is_not_a_git_repository_is_error)
{
	sh("mkdir -p '%s/plain-dir'", tmpdir);
	CHECK(fails_with("repo-not-git.conf", "repo-not-git.conf:3: "
	    "repos.[0].path: "));
	/* The message says why, not only where. */
	{
		struct config	*c;
		char		*cause = NULL;

		CHECK(load("repo-not-git.conf", &c, &cause) == -1);
		CHECK(strstr(cause, "is not a git repository") != NULL);
		free(cause);
	}
}

TEST(repo_base_branch_that_does_not_exist_is_error)
{
	struct config	*c;
	char		*cause = NULL;

	CHECK(fails_with("repo-base-missing.conf", "repo-base-missing.conf:3: "
	    "repos.[0].path: base \"develop\" does not exist"));
	CHECK(load("repo-base-missing.conf", &c, &cause) == -1);
	free(cause);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/sb-test-config.XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	{
		char	*repo = xasprintf("%s/repo", tmpdir);

		make_repo(repo);
		free(repo);
	}
	sh("printf '%s\\n' > '%s/bot-token'", FILE_SECRET, tmpdir);
	sh("mkdir -p '%s/bin' && ln -s /bin/true '%s/bin/true'", tmpdir,
	    tmpdir);
	setenv("SB_TEST_SECRET", SECRET, 1);
	unsetenv("SB_TEST_UNSET");

	RUN(minimal_config_loads_with_schema_defaults);
	RUN(route_to_unknown_brain_is_error_with_line);
	RUN(anthropic_brain_needs_an_api_key);
	RUN(openai_brain_without_key_loads_with_defaults);
	RUN(missing_file_names_the_file_and_errno);
	RUN(syntax_error_has_libconfig_file_line);
	RUN(unknown_top_level_key_is_error_with_line);
	RUN(unknown_nested_key_suggests_closest);
	RUN(unknown_key_in_list_item_names_item_index);
	RUN(wrong_type_names_key_and_expected_type);
	RUN(missing_required_top_level_key_is_named);
	RUN(missing_required_key_in_list_item_has_item_line);
	RUN(bad_enum_lists_allowed_values);
	RUN(out_of_range_int_shows_range);
	RUN(route_to_unknown_repo_is_error);
	RUN(duplicate_agent_name_is_error_at_second);
	RUN(command_driver_needs_nonempty_command);
	RUN(repo_path_must_exist);
	RUN(unset_env_secret_names_variable_not_value);
	RUN(unreadable_file_secret_is_error);
	RUN(inline_secret_is_error_without_echoing_it);
	RUN(enabled_slack_events_mode_needs_signing_secret_and_listen);
	RUN(disabled_adapter_secrets_are_not_resolved);
	RUN(secrets_resolve_and_never_appear_in_summary);
	RUN(route_prefers_exact_channel_over_wildcard);
	RUN(user_allowed_matches_exact_and_adapter_wildcard);
	RUN(reload_diff_reports_state_dir_not_log_level);
	RUN(reload_diff_notices_rotated_secret_by_name_only);
	RUN(example_file_loads_and_mentions_every_key);
	RUN(schema_doc_lists_every_key_with_default);
	RUN(schema_defaults_pass_their_own_checks);
	RUN(check_passes_a_config_that_can_work);
	RUN(check_no_adapter_enabled_is_an_error);
	RUN(check_agent_program_not_on_path_is_an_error_per_agent);
	RUN(check_agent_program_not_executable_is_an_error);
	RUN(check_route_to_disabled_adapter_is_a_warning);
	RUN(check_nobody_allowed_is_an_error);
	RUN(check_log_file_in_missing_directory_is_an_error);
	RUN(log_file_inside_a_state_dir_not_yet_made_works);
	RUN(repo_that_is_not_a_git_repository_is_error);
	RUN(repo_base_branch_that_does_not_exist_is_error);

	sh("rm -rf '%s'", tmpdir);
	return t_done();
}
