/*
 * The parsing around the agent listener: SWITCHBOARD_URL, the environment
 * of an agent's client (token or token file, URL or socket), and the
 * agent_listener config keys (required pairs, the CA given to pods).
 */
#include "bot/agentconn.h"
#include "bot/ctl-tls.h"
#include "bot/util.h"
#include "config/config.h"
#include "tests/unit/t.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char	 tmpdir[PATH_MAX];

static int
url_ok(const char *url, const char *want_host, const char *want_port)
{
	char	*host, *port, *cause = NULL;
	int	 ok;

	if (ctl_tls_parse_url(url, &host, &port, &cause) != 0) {
		printf("  %s: %s\n", url, cause);
		free(cause);
		return 0;
	}
	ok = strcmp(host, want_host) == 0 && strcmp(port, want_port) == 0;
	if (!ok)
		printf("  %s: host %s port %s\n", url, host, port);
	free(host);
	free(port);
	return ok;
}

static int
url_bad(const char *url)
{
	char	*host = NULL, *port = NULL, *cause = NULL;
	int	 ok;

	ok = ctl_tls_parse_url(url, &host, &port, &cause) == -1 &&
	    host == NULL && port == NULL && cause != NULL &&
	    strstr(cause, "is not tls://HOST:PORT") != NULL;
	free(cause);
	return ok;
}

TEST(switchboard_url_is_tls_host_port)
{
	CHECK(url_ok("tls://127.0.0.1:7443", "127.0.0.1", "7443"));
	CHECK(url_ok("tls://switchboard.sb.svc:443", "switchboard.sb.svc",
	    "443"));
	CHECK(url_ok("tls://[::1]:7443", "::1", "7443"));
	CHECK(url_ok("tls://[fd00::5]:1", "fd00::5", "1"));
	CHECK(url_bad("https://127.0.0.1:7443"));
	CHECK(url_bad("tls://127.0.0.1"));
	CHECK(url_bad("tls://:7443"));
	CHECK(url_bad("tls://host:0"));
	CHECK(url_bad("tls://host:65536"));
	CHECK(url_bad("tls://host:x"));
	CHECK(url_bad("tls://host/agent:7443"));
	CHECK(url_bad("tls://[::1]7443"));
	CHECK(url_bad("tls://[]:7443"));
	CHECK(url_bad(""));
}

static void
clear_env(void)
{
	unsetenv("SWITCHBOARD_URL");
	unsetenv("SWITCHBOARD_SOCKET");
	unsetenv("SWITCHBOARD_AGENT_TOKEN");
	unsetenv("SWITCHBOARD_AGENT_TOKEN_FILE");
	unsetenv("SWITCHBOARD_CA_FILE");
}

static char *
write_tmp(const char *name, const char *text)
{
	char	*path = xasprintf("%s/%s", tmpdir, name);
	FILE	*f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

TEST(agent_env_takes_the_token_or_its_file_and_the_url_first)
{
	struct agentconn	*ac;
	char			*cause = NULL, *tf;

	clear_env();
	CHECK((ac = agentconn_env(&ctl_tls_net, &cause)) == NULL);
	CHECK(strstr(cause, "are not set") != NULL);
	free(cause);
	cause = NULL;

	/* A pod: the URL, the token as the first line of a file. */
	tf = write_tmp("token", "f00d\nsecond line\n");
	setenv("SWITCHBOARD_URL", "tls://127.0.0.1:7443", 1);
	setenv("SWITCHBOARD_AGENT_TOKEN_FILE", tf, 1);
	CHECK((ac = agentconn_env(&ctl_tls_net, &cause)) != NULL);
	CHECK(agentconn_remote(ac));
	agentconn_free(ac);

	/* switchboard-agent has no TLS: it must hand such calls over. */
	CHECK((ac = agentconn_env(NULL, &cause)) == NULL);
	CHECK(strstr(cause, "needs the full switchboard binary") != NULL);
	free(cause);
	cause = NULL;

	/* The socket when there is no URL (an empty one is none). */
	setenv("SWITCHBOARD_URL", "", 1);
	setenv("SWITCHBOARD_SOCKET", "/nonexistent/agent.sock", 1);
	CHECK((ac = agentconn_env(NULL, &cause)) != NULL);
	CHECK(!agentconn_remote(ac));
	agentconn_free(ac);

	/* A token file that cannot be read or holds nothing. */
	setenv("SWITCHBOARD_AGENT_TOKEN_FILE", "/nonexistent/token", 1);
	CHECK((ac = agentconn_env(NULL, &cause)) == NULL);
	CHECK(strstr(cause, "cannot read SWITCHBOARD_AGENT_TOKEN_FILE"
	    " /nonexistent/token") != NULL);
	free(cause);
	cause = NULL;
	free(tf);
	tf = write_tmp("empty", "\n");
	setenv("SWITCHBOARD_AGENT_TOKEN_FILE", tf, 1);
	CHECK((ac = agentconn_env(NULL, &cause)) == NULL);
	CHECK(strstr(cause, "holds no token") != NULL);
	free(cause);
	cause = NULL;

	/* The variable wins over the file. */
	setenv("SWITCHBOARD_AGENT_TOKEN", "abc", 1);
	CHECK((ac = agentconn_env(NULL, &cause)) != NULL);
	agentconn_free(ac);
	free(tf);
	clear_env();
}

static const char *base_conf =
    "state_dir = \"state\";\n"
    "access = { allowed_users = [ \"console:me\" ]; };\n"
    "repos = ( { name = \"r\"; path = \"repo\"; } );\n"
    "agents = ( { name = \"k\"; driver = \"command\";"
    " command = [ \"/bin/true\" ]; runner = \"kubernetes\";"
    " kubernetes = { image = \"agent:1\"; }; } );\n"
    "routes = ( { adapter = \"console\"; channel = \"*\"; repo = \"r\";"
    " agent = \"k\"; } );\n"
    "adapters = { console = { enabled = true; }; };\n";

static int
load_with(const char *listener, struct config **c, char **cause)
{
	char	*text = xasprintf("%s%s\n", base_conf, listener);
	char	*path = write_tmp("sb.conf", text);
	int	 rc;

	*c = NULL;
	*cause = NULL;
	rc = config_load(path, c, cause);
	free(text);
	free(path);
	return rc;
}

TEST(agent_listener_keys_are_checked_and_reach_the_pod_template)
{
	struct config	*c;
	char		*cause, *p, *errs = NULL, *warns = NULL;

	/* Unset: no listener, nothing for pods, and check-config says so. */
	CHECK(load_with("", &c, &cause) == 0);
	CHECK_STR(c->agent_listener.listen, "");
	CHECK(c->agents[0].kube->agent_url == NULL);
	CHECK(c->agents[0].kube->agent_ca == NULL);
	config_check(c, &errs, &warns);
	CHECK(warns != NULL && strstr(warns, "agents.[0]: runner \"kubernetes\""
	    " but no agent_listener.url") != NULL);
	free(errs);
	free(warns);
	config_free(c);

	/* listen needs cert and key. */
	CHECK(load_with("agent_listener = { listen = \"0.0.0.0:7443\"; };",
	    &c, &cause) == -1);
	CHECK(strstr(cause, "agent_listener.cert is required with listen") !=
	    NULL);
	free(cause);

	/* A URL must be tls://HOST:PORT. */
	CHECK(load_with("agent_listener = { url = \"https://x:1\"; };", &c,
	    &cause) == -1);
	CHECK(strstr(cause, "is not tls://HOST:PORT") != NULL);
	free(cause);

	/* Secrets by reference only; the CA is the cert unless given. */
	CHECK(load_with("agent_listener = { listen = \"0.0.0.0:7443\";"
	    " cert = \"-----BEGIN\"; key = \"file:key.pem\"; };", &c,
	    &cause) == -1);
	CHECK(strstr(cause, "never inline") != NULL);
	free(cause);
	p = write_tmp("cert.pem", "CERT PEM\n");
	free(p);
	p = write_tmp("key.pem", "KEY PEM\n");
	free(p);
	CHECK(load_with("agent_listener = { listen = \"0.0.0.0:7443\";"
	    " cert = \"file:cert.pem\"; key = \"file:key.pem\";"
	    " url = \"tls://sb.sb.svc:7443\"; };", &c, &cause) == 0);
	CHECK_STR(c->agent_listener.cert, "CERT PEM");
	CHECK_STR(c->agent_listener.key, "KEY PEM");
	CHECK_STR(c->agents[0].kube->agent_url, "tls://sb.sb.svc:7443");
	CHECK_STR(c->agents[0].kube->agent_ca, "CERT PEM");
	config_check(c, &errs, &warns);
	CHECK(warns == NULL || strstr(warns, "agent_listener.url") == NULL);
	free(errs);
	free(warns);
	config_free(c);
	setenv("SB_TEST_CA", "CA PEM", 1);
	CHECK(load_with("agent_listener = { listen = \"0.0.0.0:7443\";"
	    " cert = \"file:cert.pem\"; key = \"file:key.pem\";"
	    " ca = \"env:SB_TEST_CA\"; url = \"tls://sb:7443\"; };", &c,
	    &cause) == 0);
	CHECK_STR(c->agents[0].kube->agent_ca, "CA PEM");
	config_free(c);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/sb-test-agentnet.XXXXXX";
	char	*cmd;

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	cmd = xasprintf("cd '%s' && git init -q repo && cd repo && git"
	    " symbolic-ref HEAD refs/heads/main && git -c user.name=t -c"
	    " user.email=t@t commit -q --allow-empty -m init", tmpdir);
	if (system(cmd) != 0)
		return 1;
	free(cmd);
	RUN(switchboard_url_is_tls_host_port);
	RUN(agent_env_takes_the_token_or_its_file_and_the_url_first);
	RUN(agent_listener_keys_are_checked_and_reach_the_pod_template);
	cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return 1;
	free(cmd);
	return t_done();
}
