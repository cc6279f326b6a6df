#include "bot/cli.h"
#include "bot/agentcmd.h"
#include "bot/agentconn.h"
#include "bot/ctl-tls.h"
#include "bot/ctl-client.h"
#include "bot/log.h"
#include "bot/mcp.h"
#include "bot/serve.h"
#include "bot/util.h"
#include "bot/version.h"
#include "config/config.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONFIG	"/etc/switchboard/switchboard.conf"

struct cli_cmd {
	const char	*name;
	const char	*usage;
	const char	*help;
	int		(*fn)(int, char **);
};

static int	cmd_serve(int, char **);
static int	cmd_check_config(int, char **);
static int	cmd_status(int, char **);
static int	cmd_cancel(int, char **);
static int	cmd_agent(int, char **);
static int	cmd_version(int, char **);
static int	cmd_help(int, char **);

static const struct cli_cmd cli_cmds[] = {
	{ "serve", "serve [-c FILE]",
	    "run the daemon", cmd_serve },
	{ "check-config", "check-config [-q] [-c FILE]",
	    "validate the configuration and print a summary", cmd_check_config },
	{ "status", "status [-c FILE | -s STATE_DIR] [--json]",
	    "uptime, adapters, conversations and agents of the running daemon",
	    cmd_status },
	{ "cancel", "cancel [-c FILE | -s STATE_DIR] AGENT_ID",
	    "cancel a running agent", cmd_cancel },
	{ "agent", "agent progress TEXT | ask QUESTION [--choice X]..."
	    " [--timeout S] | done SUMMARY",
	    "talk to switchboard from inside an agent", cmd_agent },
	{ "mcp", "mcp",
	    "stdio MCP server for Claude Code / Codex agents", mcp_main },
	{ "version", "version", "print the version", cmd_version },
	{ "help", "help [COMMAND]", "show help", cmd_help },
	{ NULL, NULL, NULL, NULL }
};

const char *
cli_command_name(size_t i)
{
	return i < nitems(cli_cmds) ? cli_cmds[i].name : NULL;
}

static const struct cli_cmd *
cli_lookup(const char *name)
{
	const struct cli_cmd	*c;

	for (c = cli_cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void
usage_all(FILE *fp)
{
	const struct cli_cmd	*c;

	fprintf(fp, "usage: switchboard COMMAND [ARGS]\n\ncommands:\n");
	for (c = cli_cmds; c->name != NULL; c++)
		fprintf(fp, "  %-34s %s\n", c->name, c->help);
	fprintf(fp, "\n`switchboard help COMMAND` or `switchboard COMMAND"
	    " --help` shows its usage.\n"
	    "exit codes: 0 ok, 1 error, 2 usage, 3 cancelled or timed out,"
	    " 4 daemon not reachable (for `agent`: or it does not know this"
	    " agent, e.g. an orphan of an earlier run)\n");
}

static int
usage_of(const char *name, int rc)
{
	const struct cli_cmd	*c = cli_lookup(name);

	fprintf(rc == EXIT_OK ? stdout : stderr, "usage: switchboard %s\n  %s\n",
	    c->usage, c->help);
	return rc;
}

static int
wants_help(int argc, char **argv)
{
	int	 i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

static const char *
default_config(void)
{
	const char	*p = getenv("SWITCHBOARD_CONFIG");

	return p != NULL && *p != '\0' ? p : DEFAULT_CONFIG;
}

/*
 * Parses -c FILE / -s DIR / --json / -q; leaves positional args from optind.
 * A NULL out-pointer means the command has no such option.
 */
static int
common_opts(const char *cmd, int argc, char **argv, const char **conf,
    const char **state, int *json, int *quiet)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 }
	};
	int	 ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:s:q", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			if (quiet == NULL)
				return -1;
			*quiet = 1;
			break;
		case 'c':
			*conf = optarg;
			break;
		case 's':
			if (state == NULL)
				return -1;
			*state = optarg;
			break;
		case 'j':
			if (json == NULL)
				return -1;
			*json = 1;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int
cmd_serve(int argc, char **argv)
{
	const char	*conf = default_config();

	if (wants_help(argc, argv))
		return usage_of("serve", EXIT_OK);
	if (common_opts("serve", argc, argv, &conf, NULL, NULL, NULL) != 0 ||
	    optind != argc)
		return usage_of("serve", EXIT_USAGE);
	return serve_main(conf) == 0 ? EXIT_OK : EXIT_ERR;
}

static int
cmd_check_config(int argc, char **argv)
{
	const char	*conf = default_config();
	struct config	*cfg = NULL;
	char		*cause = NULL, *sum, *errs, *warns;
	int		 quiet = 0, nerr;

	if (wants_help(argc, argv))
		return usage_of("check-config", EXIT_OK);
	if (common_opts("check-config", argc, argv, &conf, NULL, NULL,
	    &quiet) != 0 || optind != argc)
		return usage_of("check-config", EXIT_USAGE);
	if (config_load(conf, &cfg, &cause) != 0) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return EXIT_ERR;
	}
	/* What cannot work on this machine; warnings do not fail. */
	nerr = config_check(cfg, &errs, &warns);
	if (warns != NULL)
		fprintf(stderr, "%s\n", warns);
	if (errs != NULL)
		fprintf(stderr, "%s\n", errs);
	free(warns);
	free(errs);
	if (nerr > 0) {
		config_free(cfg);
		return EXIT_ERR;
	}
	if (!quiet) {
		sum = config_summary(cfg);
		printf("%s: ok\n%s", conf, sum);
		free(sum);
	}
	config_free(cfg);
	return EXIT_OK;
}

/* Connects to the daemon's control socket; the fd, or -1 after a message. */
static int
control_connect(const char *conf, const char *state)
{
	struct config	*cfg = NULL;
	char		*cause = NULL, *path;
	int		 fd;

	if (state != NULL)
		path = serve_ctl_path(state);
	else {
		if (config_load(conf, &cfg, &cause) != 0) {
			fprintf(stderr, "switchboard: %s\n", cause);
			free(cause);
			return -1;
		}
		path = serve_ctl_path(cfg->state_dir);
		config_free(cfg);
	}
	if ((fd = ctl_connect(path, &cause)) < 0) {
		fprintf(stderr, "switchboard: %s\n", cause);
		free(cause);
	}
	free(path);
	return fd;
}

static int
control_call(int fd, json_t *req, json_t **reply)
{
	char	*cause = NULL;
	int	 rc;

	rc = ctl_call(fd, req, reply, 10000, &cause);
	json_decref(req);
	if (rc != 0) {
		fprintf(stderr, "switchboard: %s\n", cause);
		free(cause);
		return rc == CTL_REFUSED ? EXIT_ERR : EXIT_NODAEMON;
	}
	return EXIT_OK;
}

static int
cmd_status(int argc, char **argv)
{
	const char	*conf = default_config(), *state = NULL, *k;
	json_t		*reply = NULL, *v, *a;
	int		 json = 0, fd, rc;
	size_t		 i;

	if (wants_help(argc, argv))
		return usage_of("status", EXIT_OK);
	if (common_opts("status", argc, argv, &conf, &state, &json, NULL) != 0 ||
	    optind != argc)
		return usage_of("status", EXIT_USAGE);
	if ((fd = control_connect(conf, state)) < 0)
		return EXIT_NODAEMON;
	rc = control_call(fd, json_pack("{s:s}", "op", "status"), &reply);
	ctl_disconnect(fd);
	if (rc != EXIT_OK)
		return rc;
	if (json) {
		char *s = json_dumps(reply, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else {
		printf("uptime: %llds\n", (long long)json_integer_value(
		    json_object_get(reply, "uptime_s")));
		printf("adapters:");
		json_object_foreach(json_object_get(reply, "adapters"), k, v)
			printf(" %s=%s", k, json_string_value(v));
		printf("\nconversations: %lld\n", (long long)json_integer_value(
		    json_object_get(reply, "conversations")));
		printf("outbox pending: %lld\n", (long long)json_integer_value(
		    json_object_get(reply, "outbox_pending")));
		v = json_object_get(reply, "agents");
		printf("agents: %zu running or queued\n", json_array_size(v));
		json_array_foreach(v, i, a) {
			const char *br = json_string_value(json_object_get(a,
			    "branch"));
			printf("  #%lld %s %s %s (%s %s/%s)\n",
			    (long long)json_integer_value(json_object_get(a,
			    "id")), json_string_value(json_object_get(a, "name")),
			    json_string_value(json_object_get(a, "state")),
			    br != NULL ? br : "-",
			    json_string_value(json_object_get(a, "adapter")),
			    json_string_value(json_object_get(a, "channel")),
			    json_string_value(json_object_get(a, "thread")));
		}
	}
	json_decref(reply);
	return EXIT_OK;
}

static int
cmd_cancel(int argc, char **argv)
{
	const char	*conf = default_config(), *state = NULL;
	json_t		*reply = NULL;
	long long	 id;
	int		 fd, rc;

	if (wants_help(argc, argv))
		return usage_of("cancel", EXIT_OK);
	if (common_opts("cancel", argc, argv, &conf, &state, NULL, NULL) != 0 ||
	    optind != argc - 1)
		return usage_of("cancel", EXIT_USAGE);
	if ((id = parse_uint(argv[optind][0] == '#' ? argv[optind] + 1 :
	    argv[optind])) <= 0)
		return usage_of("cancel", EXIT_USAGE);
	if ((fd = control_connect(conf, state)) < 0)
		return EXIT_NODAEMON;
	rc = control_call(fd, json_pack("{s:s, s:I}", "op", "cancel", "agent",
	    (json_int_t)id), &reply);
	ctl_disconnect(fd);
	if (rc == EXIT_OK)
		printf("cancelling #%lld\n", id);
	json_decref(reply);
	return rc;
}

/* switchboard agent …: the client side of the agent socket (agentcmd.c). */
static int
cmd_agent(int argc, char **argv)
{
	int	 rc;

	if (wants_help(argc, argv))
		return usage_of("agent", EXIT_OK);
	if ((rc = agentcmd_main(argc, argv, &ctl_tls_net)) == AGENTCMD_USAGE)
		return usage_of("agent", EXIT_USAGE);
	return rc;
}

static int
cmd_version(int argc, char **argv)
{
	printf("switchboard %s\n", sb_version);
	return EXIT_OK;
}

static int
cmd_help(int argc, char **argv)
{
	if (argc > 1 && cli_lookup(argv[1]) != NULL)
		return usage_of(argv[1], EXIT_OK);
	if (argc > 1) {
		fprintf(stderr, "switchboard: unknown command '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	usage_all(stdout);
	return EXIT_OK;
}

int
cli_main(int argc, char **argv)
{
	const struct cli_cmd	*c;

	/*
	 * An orphaned agent's stdout and stderr are pipes nobody reads any
	 * more: writing there must fail with EPIPE, not kill us with SIGPIPE
	 * (exit 141) before we can exit with a code that says what happened.
	 */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	if ((c = cli_lookup(argv[1])) == NULL) {
		fprintf(stderr, "switchboard: unknown command '%s'\n", argv[1]);
		usage_all(stderr);
		return EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}
