#include "config/schema.h"
#include "bot/log.h"
#include "bot/util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const slack_modes[] = { "socket", "events", NULL };
static const char *const drivers[] = { "command", "claude", "codex", NULL };
static const char *const adapter_names[] = { "console", "slack", "matrix",
    "web", NULL };
static const char *const webhook_kinds[] = { "github", "generic", NULL };
static const char *const github_events[] = { "issues", "issue_comment",
    "pull_request", "workflow_run", "check_run", NULL };
static const char *const approval_modes[] = { "none", "chat", NULL };
static const char *const llm_providers[] = { "anthropic", "openai", NULL };
static const char *const forge_kinds[] = { "github", NULL };
static const char *const codex_sandboxes[] = { "read-only", "workspace-write",
    "danger-full-access", NULL };
static const char *const sandbox_modes[] = { "auto", "off", NULL };
static const char *const runner_names[] = { "local", "kubernetes", NULL };
static const char *const kube_modes[] = { "pod", "sandbox-claim", NULL };

static int
check_kube_pair(const char *v, char **why)
{
	const char	*eq = strchr(v, '=');

	if (eq == NULL || eq == v) {
		*why = xasprintf("\"%s\" is not key=value", v);
		return -1;
	}
	return 0;
}

/* A DNS label part: in branch, pod and label names alike. */
static int
check_daemon_id(const char *v, char **why)
{
	size_t	 i, n = strlen(v);

	if (n == 0 || n > 20 || v[0] < 'a' || v[0] > 'z' || v[n - 1] == '-') {
		*why = xasprintf("\"%s\" is not 1-20 of a-z, 0-9 and '-', "
		    "starting with a letter", v);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' &&
		    v[i] <= '9') || v[i] == '-')) {
			*why = xasprintf("\"%s\" is not 1-20 of a-z, 0-9 and "
			    "'-', starting with a letter", v);
			return -1;
		}
	return 0;
}

static int
check_kube_toleration(const char *v, char **why)
{
	const char	*colon = strrchr(v, ':');

	if (colon == NULL || colon == v || (strcmp(colon + 1, "NoSchedule") != 0
	    && strcmp(colon + 1, "PreferNoSchedule") != 0 &&
	    strcmp(colon + 1, "NoExecute") != 0)) {
		*why = xasprintf("\"%s\" is not key[=value]:NoSchedule|"
		    "PreferNoSchedule|NoExecute", v);
		return -1;
	}
	return 0;
}

/* "PATH", "ro:PATH" or "rw:PATH"; PATH absolute or starting with "~/". */
static int
check_sandbox_path(const char *v, char **why)
{
	if (strncmp(v, "ro:", 3) == 0 || strncmp(v, "rw:", 3) == 0)
		v += 3;
	if (*v == '/' || strcmp(v, "~") == 0 || strncmp(v, "~/", 2) == 0)
		return 0;
	*why = xstrdup("must be an absolute path or start with ~/, optionally"
	    " prefixed by ro: or rw:");
	return -1;
}

static int
check_nonempty(const char *v, char **why)
{
	if (*v != '\0')
		return 0;
	*why = xstrdup("must not be empty");
	return -1;
}

/* Repo and agent names end up in branch names and paths, so keep them plain. */
static int
check_name(const char *v, char **why)
{
	const char	*p;

	if (*v == '\0' || *v == '.' || *v == '-') {
		*why = xasprintf("\"%s\" must start with a letter, digit or "
		    "'_'", v);
		return -1;
	}
	for (p = v; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		    *p == '.')
			continue;
		*why = xasprintf("\"%s\" may only contain letters, digits, "
		    "'_', '-' and '.'", v);
		return -1;
	}
	return 0;
}

/* "" (no server), "PORT", "HOST:PORT" or "[V6]:PORT"; port 0 = any free port. */
static int
check_listen(const char *v, char **why)
{
	const char	*port;

	if (*v == '\0')
		return 0;
	port = strrchr(v, ':');
	port = port == NULL ? v : port + 1;
	if (parse_uint(port) < 0 || parse_uint(port) > 65535) {
		*why = xasprintf("\"%s\" is not HOST:PORT", v);
		return -1;
	}
	return 0;
}

/* What an agent dials: "tls://HOST:PORT". */
static int
check_agent_url(const char *v, char **why)
{
	const char	*colon;

	if (strncmp(v, "tls://", 6) == 0 && v[6] != '\0' && v[6] != ':' &&
	    (colon = strrchr(v + 6, ':')) != NULL &&
	    parse_uint(colon + 1) > 0 && parse_uint(colon + 1) <= 65535)
		return 0;
	*why = xasprintf("\"%s\" is not tls://HOST:PORT", v);
	return -1;
}

/* A route path: "/hooks/github".  No query, no spaces (httpd matches exactly). */
static int
check_http_path(const char *v, char **why)
{
	const char	*p;

	if (v[0] != '/' || v[1] == '\0') {
		*why = xasprintf("\"%s\" must start with '/' and name a path", v);
		return -1;
	}
	for (p = v; *p != '\0'; p++) {
		if (*p == '?' || *p == '#' || *p == ' ' || *p == '\t') {
			*why = xasprintf("\"%s\" may not contain '?', '#' or "
			    "spaces", v);
			return -1;
		}
	}
	return 0;
}

/* An HTTP header name (RFC 9110 token characters). */
static int
check_header(const char *v, char **why)
{
	const char	*p;

	for (p = v; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p)
		    != NULL)
			continue;
		break;
	}
	if (*v != '\0' && *p == '\0')
		return 0;
	*why = xasprintf("\"%s\" is not an HTTP header name", v);
	return -1;
}

static int
check_url(const char *v, char **why)
{
	if ((strncmp(v, "http://", 7) == 0 && v[7] != '\0') ||
	    (strncmp(v, "https://", 8) == 0 && v[8] != '\0'))
		return 0;
	*why = xasprintf("\"%s\" is not an http:// or https:// URL", v);
	return -1;
}

static int
check_user(const char *v, char **why)
{
	const char	*colon;
	size_t		 i;

	colon = strchr(v, ':');
	if (colon != NULL && colon[1] != '\0') {
		for (i = 0; adapter_names[i] != NULL; i++) {
			if (strlen(adapter_names[i]) == (size_t)(colon - v) &&
			    strncmp(v, adapter_names[i], colon - v) == 0)
				return 0;
		}
	}
	*why = xasprintf("\"%s\" is not ADAPTER:USER (console:*, slack:U0123, "
	    "matrix:@alice:example.org)", v);
	return -1;
}

static int
check_matrix_user(const char *v, char **why)
{
	if (v[0] == '@' && strchr(v, ':') != NULL)
		return 0;
	*why = xasprintf("\"%s\" is not a Matrix user id (@name:server)", v);
	return -1;
}

/*
 * The order here is the order of the generated documentation; a group's row
 * comes before its members.
 */
const struct schema_key schema_keys[] = {
	{ .path = "state_dir", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
	  .check = check_nonempty,
	  .help = "Directory for the database, worktrees and sockets; created "
	  "if missing.  Relative to the config file's directory." },

	{ .path = "http", .type = SCHEMA_GROUP,
	  .help = "The HTTP server (Slack events mode, health, metrics)." },
	{ .path = "http.listen", .type = SCHEMA_STRING, .def = "",
	  .check = check_listen,
	  .help = "HOST:PORT to listen on; \"\" = no HTTP server." },
	{ .path = "http.max_body", .type = SCHEMA_INT, .def = "1048576",
	  .min = 1024, .max = 1073741824,
	  .help = "Largest request body accepted, in bytes." },
	{ .path = "http.health_grace", .type = SCHEMA_INT, .def = "60",
	  .min = 0, .max = 86400,
	  .help = "Seconds an enabled adapter may be disconnected (reconnecting, "
	  "stopped) before GET /healthz answers 503." },

	{ .path = "agent_listener", .type = SCHEMA_GROUP,
	  .help = "The agent protocol over TLS, for agents that do not run on "
	  "this host (kubernetes pods)." },
	{ .path = "agent_listener.listen", .type = SCHEMA_STRING, .def = "",
	  .check = check_listen,
	  .help = "HOST:PORT to listen on; \"\" = no listener." },
	{ .path = "agent_listener.cert", .type = SCHEMA_SECRET,
	  .help = "The listener's certificate chain, PEM, leaf first; required "
	  "with listen." },
	{ .path = "agent_listener.key", .type = SCHEMA_SECRET,
	  .help = "The certificate's private key, PEM; required with listen." },
	{ .path = "agent_listener.ca", .type = SCHEMA_SECRET,
	  .help = "PEM certificate(s) agents verify the listener with, given to "
	  "each pod in its secret; unset = cert itself." },
	{ .path = "agent_listener.url", .type = SCHEMA_STRING,
	  .check = check_agent_url,
	  .help = "tls://HOST:PORT at which pods reach the listener (e.g. a "
	  "Service's DNS name); given to them as SWITCHBOARD_URL.  Unset = "
	  "pods cannot talk back." },

	{ .path = "log", .type = SCHEMA_GROUP, .help = "Logging." },
	{ .path = "log.level", .type = SCHEMA_STRING, .def = "info",
	  .values = levels, .help = "Least severe level written." },
	{ .path = "log.json", .type = SCHEMA_BOOL, .def = "false",
	  .help = "One JSON object per line instead of plain text." },
	{ .path = "log.file", .type = SCHEMA_STRING, .check = check_nonempty,
	  .help = "Log file; unset = stderr.  Relative to the config file's "
	  "directory." },

	{ .path = "access", .type = SCHEMA_GROUP, .help = "Who may talk to the bot." },
	{ .path = "access.allowed_users", .type = SCHEMA_STRINGS,
	  .check = check_user,
	  .help = "ADAPTER:USER entries (\"console:*\", \"slack:U0123\", "
	  "\"matrix:@alice:example.org\"); \"ADAPTER:*\" allows every user of "
	  "that adapter.  Empty = nobody." },

	{ .path = "repos", .type = SCHEMA_LIST,
	  .help = "Git repositories agents work in, one worktree per agent." },
	{ .path = "repos.[].name", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
	  .check = check_name, .help = "Name used by routes; unique." },
	{ .path = "repos.[].path", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
	  .check = check_nonempty,
	  .help = "An existing git repository.  Relative to the config file's "
	  "directory." },
	{ .path = "repos.[].base", .type = SCHEMA_STRING, .def = "main",
	  .check = check_nonempty, .help = "Branch new worktrees start from." },
	{ .path = "repos.[].remote", .type = SCHEMA_STRING, .def = "origin",
	  .check = check_nonempty,
	  .help = "Remote that `push #N`, `pr #N` and merge_push push to." },
	{ .path = "repos.[].push", .type = SCHEMA_GROUP,
	  .help = "Credentials for pushing (libgit2; never a shell-out).  "
	  "Unset = the remote needs none (a local path)." },
	{ .path = "repos.[].push.ssh_key", .type = SCHEMA_STRING,
	  .check = check_nonempty,
	  .help = "SSH private key file for ssh:// or user@host: remotes "
	  "(the .pub next to it is used when present).  Relative to the "
	  "config file's directory." },
	{ .path = "repos.[].push.ssh_agent", .type = SCHEMA_BOOL,
	  .def = "false", .help = "Ask ssh-agent (SSH_AUTH_SOCK) for SSH keys." },
	{ .path = "repos.[].push.user", .type = SCHEMA_STRING,
	  .def = "x-access-token", .check = check_nonempty,
	  .help = "User name sent with push.token over HTTPS." },
	{ .path = "repos.[].push.token", .type = SCHEMA_SECRET,
	  .help = "HTTPS token (basic auth password) for https:// remotes." },
	{ .path = "repos.[].check", .type = SCHEMA_STRINGS,
	  .help = "argv run in the merged tree before `merge #N` moves the "
	  "base (e.g. [ \"make\", \"test\" ]); unset = no check." },
	{ .path = "repos.[].check_timeout", .type = SCHEMA_INT, .def = "600",
	  .min = 1, .max = 86400,
	  .help = "Seconds the check may take; over it the merge fails." },
	{ .path = "repos.[].merge_push", .type = SCHEMA_BOOL, .def = "false",
	  .help = "After a merge, push the base branch to the remote." },
	{ .path = "repos.[].warm", .type = SCHEMA_INT, .def = "1",
	  .min = 0, .max = 16,
	  .help = "Worktrees of the base kept checked out ahead of need, so a "
	  "new agent starts without waiting for a checkout; 0 = none." },
	{ .path = "repos.[].forge", .type = SCHEMA_GROUP,
	  .help = "Where `pr #N` opens pull requests." },
	{ .path = "repos.[].forge.kind", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .values = forge_kinds,
	  .help = "Only \"github\" (GitHub or GitHub Enterprise)." },
	{ .path = "repos.[].forge.repo", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_nonempty,
	  .help = "\"owner/name\" on the forge." },
	{ .path = "repos.[].forge.token", .type = SCHEMA_SECRET,
	  .flags = SCHEMA_REQUIRED,
	  .help = "Token allowed to open pull requests." },
	{ .path = "repos.[].forge.api_url", .type = SCHEMA_STRING,
	  .def = "https://api.github.com", .check = check_url,
	  .help = "REST API base URL (GitHub Enterprise: https://HOST/api/v3)." },

	{ .path = "agents", .type = SCHEMA_LIST, .help = "Coding agents." },
	{ .path = "agents.[].name", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
	  .check = check_name, .help = "Name used by routes; unique." },
	{ .path = "agents.[].driver", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .values = drivers,
	  .help = "How the agent is run and its output read." },
	{ .path = "agents.[].command", .type = SCHEMA_STRINGS,
	  .help = "argv of the agent; required (non-empty) for driver "
	  "\"command\".  For \"claude\" and \"codex\" the program (and any "
	  "leading arguments) to run; default [ \"claude\" ] or "
	  "[ \"codex\" ]." },
	{ .path = "agents.[].timeout", .type = SCHEMA_INT, .def = "0",
	  .min = 0, .max = 2592000,
	  .help = "Seconds before the agent is stopped; 0 = limits.agent_timeout." },
	{ .path = "agents.[].model", .type = SCHEMA_STRING,
	  .check = check_nonempty,
	  .help = "claude/codex: the model (--model); unset = the CLI's "
	  "default." },
	{ .path = "agents.[].permission_mode", .type = SCHEMA_STRING,
	  .check = check_nonempty,
	  .help = "claude: --permission-mode (default, acceptEdits, plan, "
	  "bypassPermissions); unset = the CLI's default." },
	{ .path = "agents.[].args", .type = SCHEMA_STRINGS,
	  .help = "claude/codex: extra arguments added to every run, before "
	  "the prompt." },
	{ .path = "agents.[].approvals", .type = SCHEMA_STRING, .def = "none",
	  .values = approval_modes,
	  .help = "claude: \"chat\" asks in the thread (Allow / Deny / Allow "
	  "for this session) when a tool needs permission; \"none\" leaves "
	  "it to permission_mode." },
	{ .path = "agents.[].auto_allow", .type = SCHEMA_STRINGS,
	  .check = check_nonempty,
	  .help = "Tool names (\"Read\", \"Bash\", \"mcp__x__y\") allowed "
	  "without asking when approvals = \"chat\"." },
	{ .path = "agents.[].auto_deny", .type = SCHEMA_STRINGS,
	  .check = check_nonempty,
	  .help = "Tool names denied without asking; wins over auto_allow." },
	{ .path = "agents.[].max_turns", .type = SCHEMA_INT, .def = "0",
	  .min = 0, .max = 100000,
	  .help = "claude/codex budget: assistant turns per run; 0 = no "
	  "limit.  Over it the agent is stopped and its partial work kept." },
	{ .path = "agents.[].max_wall_time", .type = SCHEMA_INT, .def = "0",
	  .min = 0, .max = 2592000,
	  .help = "Budget: seconds per run; 0 = no limit.  Like timeout, but "
	  "reported as a budget stop." },
	{ .path = "agents.[].max_cost_usd", .type = SCHEMA_FLOAT, .def = "0",
	  .min = 0, .max = 1000000,
	  .help = "claude/codex budget: US dollars per run, from the stream's "
	  "total_cost_usd; 0 = no limit." },
	{ .path = "agents.[].sandbox", .type = SCHEMA_STRING, .def = "auto",
	  .values = sandbox_modes,
	  .help = "\"auto\": each run in a bubblewrap sandbox (own user, PID, "
	  "IPC and mount namespaces; sees its worktree, the repository's git "
	  "objects, the system read-only, a private /tmp and HOME and its "
	  "agent socket); without a usable bwrap it runs unsandboxed with a "
	  "warning.  \"off\": run as a plain child process." },
	{ .path = "agents.[].network", .type = SCHEMA_BOOL, .def = "true",
	  .help = "Sandboxed runs may use the network (the CLIs call their "
	  "APIs); false gives them a network namespace of their own with "
	  "loopback only." },
	{ .path = "agents.[].sandbox_paths", .type = SCHEMA_STRINGS,
	  .check = check_sandbox_path,
	  .help = "More paths a sandboxed run sees, at the same place: "
	  "\"PATH\" or \"ro:PATH\" read-only, \"rw:PATH\" writable; \"~/\" is "
	  "the daemon's HOME (e.g. \"rw:~/.claude\", \"ro:/opt/node\").  "
	  "Missing paths are skipped." },

	{ .path = "agents.[].codex_sandbox", .type = SCHEMA_STRING,
	  .values = codex_sandboxes,
	  .help = "codex: Codex's own sandbox of its commands (-s), inside "
	  "ours; unset = "
	  "\"workspace-write\" (the worktree is writable, as the agent "
	  "needs; exec's own default is read-only)." },

	{ .path = "routes", .type = SCHEMA_LIST,
	  .help = "Which repo and agent serve a channel.  An exact channel wins "
	  "over \"*\"." },
	{ .path = "routes.[].adapter", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .values = adapter_names,
	  .help = "Adapter the channel belongs to." },
	{ .path = "routes.[].channel", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_nonempty,
	  .help = "Channel or room id, or \"*\" for any channel of the adapter." },
	{ .path = "routes.[].repo", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
	  .help = "Name of a repos entry." },
	{ .path = "routes.[].agent", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
	  .help = "Name of an agents entry." },
	{ .path = "routes.[].brain", .type = SCHEMA_STRING,
	  .help = "Name of a brains entry: the person talks to that model in "
	  "plain language.  Unset = the rules brain (commands only)." },

	{ .path = "webhooks", .type = SCHEMA_LIST,
	  .help = "Signed HTTP POSTs (GitHub, or any sender that signs like "
	  "Slack) that open a thread in a chat channel and start an agent.  "
	  "Need http.listen." },
	{ .path = "webhooks.[].name", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_name,
	  .help = "Unique; names the webhook in logs, metrics and the keys "
	  "that map events to threads." },
	{ .path = "webhooks.[].enabled", .type = SCHEMA_BOOL, .def = "true",
	  .help = "Serve this webhook; its secrets are only resolved when "
	  "true." },
	{ .path = "webhooks.[].path", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_http_path,
	  .help = "URL path it is served on (POST), e.g. \"/hooks/github\"; "
	  "unique." },
	{ .path = "webhooks.[].kind", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .values = webhook_kinds,
	  .help = "\"github\" (X-Hub-Signature-256, X-GitHub-Event) or "
	  "\"generic\" (HMAC-SHA256 over timestamp.body, see generic)." },
	{ .path = "webhooks.[].secret", .type = SCHEMA_SECRET,
	  .flags = SCHEMA_REQUIRED,
	  .help = "The shared secret the sender signs with." },
	{ .path = "webhooks.[].target", .type = SCHEMA_GROUP,
	  .flags = SCHEMA_REQUIRED,
	  .help = "Where the thread is opened." },
	{ .path = "webhooks.[].target.adapter", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .values = adapter_names,
	  .help = "An enabled adapter." },
	{ .path = "webhooks.[].target.channel", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_nonempty,
	  .help = "Channel or room id (\"console\" for the console)." },
	{ .path = "webhooks.[].repo", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .help = "Name of a repos entry." },
	{ .path = "webhooks.[].agent", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .help = "Name of an agents entry." },
	{ .path = "webhooks.[].brain", .type = SCHEMA_STRING,
	  .help = "Name of a brains entry for the threads this webhook opens; "
	  "unset = the rules brain." },
	{ .path = "webhooks.[].github", .type = SCHEMA_GROUP,
	  .help = "Trigger rules and write-back for kind \"github\"." },
	{ .path = "webhooks.[].github.labels", .type = SCHEMA_STRINGS,
	  .check = check_nonempty,
	  .help = "An issue starts work when it is labeled with one of these, "
	  "or opened carrying one.  Unset = [ \"agent\" ]; [] = every "
	  "opened issue." },
	{ .path = "webhooks.[].github.command", .type = SCHEMA_STRING,
	  .def = "/agent", .check = check_nonempty,
	  .help = "An issue or PR comment starting with this starts work (or "
	  "is a follow-up); the rest of the comment is the task." },
	{ .path = "webhooks.[].github.events", .type = SCHEMA_STRINGS,
	  .values = github_events,
	  .help = "Events acted on (unset = all five): issues "
	  "(opened/labeled), issue_comment (created, with the command), "
	  "pull_request (opened), workflow_run and check_run (completed with "
	  "a failure).  Others get 200 and no action." },
	{ .path = "webhooks.[].github.token", .type = SCHEMA_SECRET,
	  .help = "GitHub token; when set, the bot comments on the issue or PR "
	  "where the work happens and, at the end, the branch and result." },
	{ .path = "webhooks.[].github.api_url", .type = SCHEMA_STRING,
	  .def = "https://api.github.com", .check = check_url,
	  .help = "REST API base URL (GitHub Enterprise: https://HOST/api/v3; "
	  "tests point it at a fake)." },
	{ .path = "webhooks.[].generic", .type = SCHEMA_GROUP,
	  .help = "Fields and headers for kind \"generic\".  The sender signs "
	  "\"TIMESTAMP.BODY\" with HMAC-SHA256 and sends sha256=HEX; "
	  "requests more than 5 minutes old are refused." },
	{ .path = "webhooks.[].generic.task_field", .type = SCHEMA_STRING,
	  .def = "task", .check = check_nonempty,
	  .help = "JSON field (a.b for nested) holding the task text; "
	  "required in every request." },
	{ .path = "webhooks.[].generic.thread_field", .type = SCHEMA_STRING,
	  .def = "thread", .check = check_nonempty,
	  .help = "Optional JSON field: requests with the same value continue "
	  "the same thread (a follow-up for its agent)." },
	{ .path = "webhooks.[].generic.id_field", .type = SCHEMA_STRING,
	  .def = "id", .check = check_nonempty,
	  .help = "JSON field with a unique request id for deduplication; "
	  "without one, the signature is the id." },
	{ .path = "webhooks.[].generic.timestamp_header", .type = SCHEMA_STRING,
	  .def = "X-Switchboard-Timestamp", .check = check_header,
	  .help = "Header with the unix time (seconds) the request was "
	  "signed." },
	{ .path = "webhooks.[].generic.signature_header", .type = SCHEMA_STRING,
	  .def = "X-Switchboard-Signature", .check = check_header,
	  .help = "Header with sha256=HEX." },

	{ .path = "brains", .type = SCHEMA_LIST,
	  .help = "LLM brains: a model the person talks to in plain language, "
	  "which starts agents, relays their questions and reports their "
	  "results through the same actions as the commands.  Named by "
	  "routes and webhooks." },
	{ .path = "brains.[].name", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_name,
	  .help = "Name used by routes and webhooks; unique." },
	{ .path = "brains.[].provider", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .values = llm_providers,
	  .help = "\"anthropic\" (Messages API) or \"openai\" (Chat "
	  "Completions: OpenAI, Ollama, llama.cpp server, vLLM, OpenRouter)." },
	{ .path = "brains.[].model", .type = SCHEMA_STRING,
	  .flags = SCHEMA_REQUIRED, .check = check_nonempty,
	  .help = "Model name as the provider spells it." },
	{ .path = "brains.[].api_key", .type = SCHEMA_SECRET,
	  .help = "API key; required for anthropic, optional for openai "
	  "(local servers need none)." },
	{ .path = "brains.[].base_url", .type = SCHEMA_STRING,
	  .check = check_url,
	  .help = "API base URL without /v1; unset = https://api.anthropic.com "
	  "or https://api.openai.com.  Local: http://127.0.0.1:11434 "
	  "(Ollama)." },
	{ .path = "brains.[].max_tokens", .type = SCHEMA_INT, .def = "2048",
	  .min = 16, .max = 200000, .help = "Most tokens per model reply." },
	{ .path = "brains.[].context_tokens", .type = SCHEMA_INT, .def = "60000",
	  .min = 1000, .max = 10000000,
	  .help = "Bound of one request's input (system prompt, tools and "
	  "transcript, estimated); the oldest exchanges are dropped first." },
	{ .path = "brains.[].timeout", .type = SCHEMA_INT, .def = "120",
	  .min = 1, .max = 3600, .help = "Seconds per model call." },
	{ .path = "brains.[].max_tool_rounds", .type = SCHEMA_INT, .def = "8",
	  .min = 1, .max = 100, .help = "Model calls per turn at most." },
	{ .path = "brains.[].price_in_per_mtok", .type = SCHEMA_FLOAT,
	  .def = "0", .min = 0, .max = 100000,
	  .help = "US dollars per million input tokens, for cost accounting." },
	{ .path = "brains.[].price_out_per_mtok", .type = SCHEMA_FLOAT,
	  .def = "0", .min = 0, .max = 100000,
	  .help = "US dollars per million output tokens." },
	{ .path = "brains.[].max_cost_usd_per_day", .type = SCHEMA_FLOAT,
	  .def = "0", .min = 0, .max = 1000000,
	  .help = "Spending cap per UTC day; over it only commands work until "
	  "the next day.  0 = no cap." },

	{ .path = "adapters", .type = SCHEMA_GROUP, .help = "Chat adapters." },
	{ .path = "adapters.console", .type = SCHEMA_GROUP,
	  .help = "Local console (stdin/stdout), for trying things out." },
	{ .path = "adapters.console.enabled", .type = SCHEMA_BOOL, .def = "false",
	  .help = "Run the console adapter." },
	{ .path = "adapters.slack", .type = SCHEMA_GROUP, .help = "Slack." },
	{ .path = "adapters.slack.enabled", .type = SCHEMA_BOOL, .def = "false",
	  .help = "Run the Slack adapter; its secrets are only resolved when "
	  "true." },
	{ .path = "adapters.slack.mode", .type = SCHEMA_STRING, .def = "socket",
	  .values = slack_modes,
	  .help = "\"socket\" (Socket Mode, needs app_token) or \"events\" "
	  "(HTTP Events API, needs signing_secret and http.listen)." },
	{ .path = "adapters.slack.app_token", .type = SCHEMA_SECRET,
	  .help = "App-level token (xapp-...) for Socket Mode." },
	{ .path = "adapters.slack.bot_token", .type = SCHEMA_SECRET,
	  .help = "Bot token (xoxb-...); required when enabled." },
	{ .path = "adapters.slack.signing_secret", .type = SCHEMA_SECRET,
	  .help = "Signing secret for events mode." },
	{ .path = "adapters.slack.api_url", .type = SCHEMA_STRING,
	  .def = "https://slack.com/api/", .check = check_url,
	  .help = "Web API base URL (tests point it at a fake); a missing "
	  "trailing '/' is added." },
	{ .path = "adapters.slack.socket_timeout_ms", .type = SCHEMA_INT,
	  .def = "30000", .min = 1000, .max = 300000,
	  .help = "Socket Mode: a socket silent (no frame, no pong) this long "
	  "is dead and replaced; pings go out at a third of it." },
	{ .path = "adapters.matrix", .type = SCHEMA_GROUP, .help = "Matrix." },
	{ .path = "adapters.matrix.enabled", .type = SCHEMA_BOOL, .def = "false",
	  .help = "Run the Matrix adapter; its secrets are only resolved when "
	  "true." },
	{ .path = "adapters.matrix.homeserver", .type = SCHEMA_STRING,
	  .check = check_url,
	  .help = "Homeserver base URL; required when enabled." },
	{ .path = "adapters.matrix.user_id", .type = SCHEMA_STRING,
	  .check = check_matrix_user,
	  .help = "The bot's user id (@bot:example.org); required when enabled." },
	{ .path = "adapters.matrix.access_token", .type = SCHEMA_SECRET,
	  .help = "Access token; this or password is required when enabled." },
	{ .path = "adapters.matrix.password", .type = SCHEMA_SECRET,
	  .help = "Password to log in with when there is no access_token." },
	{ .path = "adapters.matrix.autojoin", .type = SCHEMA_BOOL, .def = "true",
	  .help = "Accept room invitations." },
	{ .path = "adapters.web", .type = SCHEMA_GROUP,
	  .help = "Web chat and dashboard in a browser, served on http.listen." },
	{ .path = "adapters.web.enabled", .type = SCHEMA_BOOL, .def = "false",
	  .help = "Serve the web chat at http://LISTEN/ (needs http.listen). "
	  "An access token is made at first start (state_dir/web-token, "
	  "0600) and printed with the URL." },
	{ .path = "adapters.web.user", .type = SCHEMA_STRING, .def = "me",
	  .check = check_name,
	  .help = "Who the browser speaks as: web:USER in access.allowed_users "
	  "and in \"answered by\"." },
	{ .path = "adapters.web.allow_remote", .type = SCHEMA_BOOL,
	  .def = "false",
	  .help = "Allow http.listen beyond loopback with the web chat on (put "
	  "TLS in front of it: the token and cookie travel in clear)." },

	{ .path = "limits", .type = SCHEMA_GROUP, .help = "Resource limits." },
	{ .path = "limits.max_agents", .type = SCHEMA_INT, .def = "8",
	  .min = 1, .max = 1000, .help = "Agents running at once, in total." },
	{ .path = "limits.max_agents_per_conversation", .type = SCHEMA_INT,
	  .def = "4", .min = 1, .max = 1000,
	  .help = "Agents running at once in one thread." },
	{ .path = "limits.agent_timeout", .type = SCHEMA_INT, .def = "3600",
	  .min = 1, .max = 2592000,
	  .help = "Seconds an agent may run before it is stopped." },
	{ .path = "limits.kill_grace", .type = SCHEMA_INT, .def = "5",
	  .min = 0, .max = 3600,
	  .help = "Seconds between SIGTERM and SIGKILL." },
	{ .path = "limits.log_size", .type = SCHEMA_INT, .def = "1048576",
	  .min = 0, .max = 1073741824,
	  .help = "Bytes of stdout/stderr kept per agent in state_dir/logs "
	  "for `log #N` (oldest turns dropped first); 0 = none." },
	{ .path = "limits.output_tail", .type = SCHEMA_INT, .def = "8192",
	  .min = 256, .max = 16777216,
	  .help = "Bytes of each agent's output kept for status and errors." },
	{ .path = "limits.keep_ended", .type = SCHEMA_INT, .def = "300",
	  .min = 0, .max = 86400,
	  .help = "Seconds an ended agent stays in memory; after that it is"
	  " loaded from the state database when a command names it." },
	{ .path = "limits.keep_conversations", .type = SCHEMA_INT, .def = "1000",
	  .min = 0, .max = 10000000,
	  .help = "Conversations kept in memory beyond those with an agent in"
	  " memory (least recently used leave first); the others are loaded"
	  " from the state database when their thread speaks." },

	{ .path = "git", .type = SCHEMA_GROUP, .help = "Commits and worktrees." },
	{ .path = "git.name", .type = SCHEMA_STRING, .def = "Switchboard",
	  .check = check_nonempty, .help = "Commit author name." },
	{ .path = "git.email", .type = SCHEMA_STRING,
	  .def = "switchboard@localhost", .check = check_nonempty,
	  .help = "Commit author email." },
	{ .path = "git.retention", .type = SCHEMA_INT, .def = "604800",
	  .min = 0, .max = INT_MAX,
	  .help = "Seconds an ended agent's worktree is kept after its last "
	  "change (default 7 days), then removed by a sweep; its branch stays "
	  "and a follow-up makes the worktree again from it.  0 = forever." },

	{ .path = "render", .type = SCHEMA_GROUP, .help = "Chat rendering." },
	{ .path = "render.card_interval_ms", .type = SCHEMA_INT, .def = "2000",
	  .min = 0, .max = 3600000,
	  .help = "Least time between two edits of a status card, so platform "
	  "rate limits are never hit." },

	/* Where an agent kind's turns run (issue 19, orchestrator/runner.h). */
	{ .path = "agents.[].runner", .type = SCHEMA_STRING, .def = "local",
	  .values = runner_names,
	  .help = "\"local\": a worktree and a child process on this host.  "
	  "\"kubernetes\": one Pod per turn in the cluster of `cluster`, from "
	  "the template in `kubernetes`." },
	{ .path = "agents.[].kubernetes", .type = SCHEMA_GROUP,
	  .help = "The pod template of a kubernetes-run agent kind." },
	{ .path = "agents.[].kubernetes.mode", .type = SCHEMA_STRING,
	  .def = "pod", .values = kube_modes,
	  .help = "\"pod\": a bare Pod per turn (restartPolicy Never).  "
	  "\"sandbox-claim\": a SandboxClaim of agent-sandbox "
	  "(extensions.agents.x-k8s.io) per agent, from `sandbox_template`, "
	  "reused by its follow-ups; each turn runs in the sandbox's pod "
	  "through the exec API." },
	{ .path = "agents.[].kubernetes.sandbox_template", .type = SCHEMA_STRING,
	  .help = "mode \"sandbox-claim\": the SandboxTemplate the claims name "
	  "(required).  Its pod needs sh and git, and the git credentials "
	  "Secret mounted at /var/run/switchboard-git when `git_secret` is "
	  "set." },
	{ .path = "agents.[].kubernetes.warm_pool", .type = SCHEMA_STRING,
	  .help = "mode \"sandbox-claim\": the claims' spec.warmpool: "
	  "\"none\", \"default\" or a SandboxWarmPool's name; unset = the "
	  "controller's default." },
	{ .path = "agents.[].kubernetes.ready_timeout", .type = SCHEMA_INT,
	  .def = "300", .min = 1, .max = 86400,
	  .help = "mode \"sandbox-claim\": seconds a claimed sandbox may take "
	  "to become Ready before the turn fails." },
	{ .path = "agents.[].kubernetes.claim_ttl", .type = SCHEMA_INT,
	  .def = "86400", .min = 0, .max = 31536000,
	  .help = "mode \"sandbox-claim\": seconds an agent's claimed sandbox "
	  "lives after its last turn started (the claim's lifecycle."
	  "shutdownTime, renewed by each turn; agent-sandbox deletes it "
	  "then); longer than the kind's timeout.  0 = until `cleanup #N`." },
	{ .path = "agents.[].kubernetes.namespace", .type = SCHEMA_STRING,
	  .def = "switchboard", .check = check_nonempty,
	  .help = "Namespace of the pods and their token secrets." },
	{ .path = "agents.[].kubernetes.image", .type = SCHEMA_STRING,
	  .check = check_nonempty,
	  .help = "The agent image: the agent's program, git and "
	  "switchboard-agent." },
	{ .path = "agents.[].kubernetes.service_account", .type = SCHEMA_STRING,
	  .help = "serviceAccountName of the pods; unset = the namespace's "
	  "default.  The agent needs no Kubernetes API access." },
	{ .path = "agents.[].kubernetes.runtime_class", .type = SCHEMA_STRING,
	  .help = "runtimeClassName, e.g. \"gvisor\" or \"kata\"." },
	{ .path = "agents.[].kubernetes.requests_cpu", .type = SCHEMA_STRING,
	  .help = "resources.requests.cpu, e.g. \"500m\"." },
	{ .path = "agents.[].kubernetes.requests_memory", .type = SCHEMA_STRING,
	  .help = "resources.requests.memory, e.g. \"1Gi\"." },
	{ .path = "agents.[].kubernetes.limits_cpu", .type = SCHEMA_STRING,
	  .help = "resources.limits.cpu." },
	{ .path = "agents.[].kubernetes.limits_memory", .type = SCHEMA_STRING,
	  .help = "resources.limits.memory; going over it is reported as "
	  "\"out of memory\"." },
	{ .path = "agents.[].kubernetes.node_selector", .type = SCHEMA_STRINGS,
	  .check = check_kube_pair,
	  .help = "nodeSelector as \"key=value\" strings." },
	{ .path = "agents.[].kubernetes.tolerations", .type = SCHEMA_STRINGS,
	  .check = check_kube_toleration,
	  .help = "Tolerations as \"key=value:Effect\" (operator Equal) or "
	  "\"key:Effect\" (operator Exists)." },
	{ .path = "agents.[].kubernetes.image_pull_secrets", .type =
	  SCHEMA_STRINGS, .help = "Names of image pull secrets." },
	{ .path = "agents.[].kubernetes.git_image", .type = SCHEMA_STRING,
	  .help = "Image of the pod's init container that clones the agent's "
	  "branch from the repo's remote (it needs sh and git); unset = the "
	  "agent image." },
	{ .path = "agents.[].kubernetes.git_secret", .type = SCHEMA_STRING,
	  .help = "Name of a Secret in the namespace with the git credentials "
	  "the pod clones and pushes with: keys username and password "
	  "(kubernetes.io/basic-auth, HTTPS) or ssh-privatekey and optionally "
	  "known_hosts (kubernetes.io/ssh-auth).  Mounted as files, never in "
	  "the pod spec; unset = an open remote." },

	{ .path = "cluster", .type = SCHEMA_GROUP,
	  .help = "The Kubernetes cluster of kubernetes-run agents." },
	{ .path = "cluster.kubeconfig", .type = SCHEMA_STRING,
	  .help = "A kubeconfig file (its current context; token or client "
	  "certificate, no exec plugins); unset = in-cluster (the service "
	  "account's token and CA, KUBERNETES_SERVICE_HOST/PORT)." },
	{ .path = "cluster.daemon_id", .type = SCHEMA_STRING,
	  .check = check_daemon_id,
	  .help = "This daemon's name among daemons sharing a repository, its "
	  "remote or a namespace (agent ids restart at 1 per state dir): in "
	  "its agents' branches (sb/ID-N-slug), local worktrees (sb-ID-N), "
	  "pod names and the label switchboard.dev/daemon; the start-up "
	  "sweeps touch only its own.  1-20 of a-z, 0-9 and '-'." },
};

const size_t schema_nkeys = nitems(schema_keys);

void
schema_error(struct schema_errors *e, const config_setting_t *s,
    const char *fmt, ...)
{
	va_list		 ap;
	const char	*file = NULL;
	char		*msg;
	unsigned	 line = 0;

	if (e->count > SCHEMA_MAX_ERRORS)
		return;
	if (e->text.len > 0)
		buf_adds(&e->text, "\n");
	if (e->count++ == SCHEMA_MAX_ERRORS) {
		buf_printf(&e->text, "%s: too many errors", e->file);
		return;
	}
	if (s != NULL) {
		file = config_setting_source_file(s);
		line = config_setting_source_line(s);
	}
	if (file == NULL)
		file = e->file;
	if (line > 0)
		buf_printf(&e->text, "%s:%u: ", file, line);
	else
		buf_printf(&e->text, "%s: ", file);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	buf_adds(&e->text, msg);
	free(msg);
}

const struct schema_key *
schema_lookup(const char *path)
{
	size_t	 i;

	for (i = 0; i < schema_nkeys; i++) {
		if (strcmp(schema_keys[i].path, path) == 0)
			return &schema_keys[i];
	}
	return NULL;
}

static size_t
distance(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b), i, j, prev, tmp, *row;

	row = xcalloc(lb + 1, sizeof *row);
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j] > row[j - 1] + 1)
				row[j] = row[j - 1] + 1;
			if (row[j] > tmp + 1)
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	tmp = row[lb];
	free(row);
	return tmp;
}

static const char *
last_part(const char *path)
{
	const char	*dot = strrchr(path, '.');

	return dot == NULL ? path : dot + 1;
}

/* A typo (edit distance 2 or less), else the same key name in another group. */
const char *
schema_suggest(const char *path)
{
	const char	*best = NULL;
	size_t		 i, d, bestd = 3;

	for (i = 0; i < schema_nkeys; i++) {
		d = distance(path, schema_keys[i].path);
		if (d < bestd) {
			bestd = d;
			best = schema_keys[i].path;
		}
	}
	if (best != NULL)
		return best;
	for (i = 0; i < schema_nkeys; i++) {
		if (strcmp(last_part(path), last_part(schema_keys[i].path)) == 0)
			return schema_keys[i].path;
	}
	return NULL;
}

static const char *
type_name(enum schema_type t)
{
	switch (t) {
	case SCHEMA_STRING:	return "a string";
	case SCHEMA_INT:	return "an integer";
	case SCHEMA_FLOAT:	return "a number";
	case SCHEMA_BOOL:	return "true or false";
	case SCHEMA_SECRET:	return "a string \"env:NAME\" or \"file:/path\"";
	case SCHEMA_STRINGS:	return "a list of strings [ \"...\", ... ]";
	case SCHEMA_GROUP:	return "a group { ... }";
	case SCHEMA_LIST:	return "a list of groups ( { ... }, ... )";
	}
	return "?";
}

static const char *
found_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:	return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:	return "an integer";
	case CONFIG_TYPE_FLOAT:	return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:	return "a boolean";
	case CONFIG_TYPE_ARRAY:	return "an array";
	case CONFIG_TYPE_LIST:	return "a list";
	}
	return "nothing";
}

static char *
join(const char *parent, const char *name)
{
	if (*parent == '\0')
		return xstrdup(name);
	return xasprintf("%s.%s", parent, name);
}

static void	walk_group(struct schema_errors *, const config_setting_t *,
		    const char *, const char *);

static void
check_string(struct schema_errors *e, const struct schema_key *k,
    const config_setting_t *s, const char *dpath)
{
	const char	*v = config_setting_get_string(s);
	char		*why = NULL;
	struct buf	 b = { 0 };
	size_t		 i;

	if (k->values != NULL) {
		for (i = 0; k->values[i] != NULL; i++) {
			if (strcmp(v, k->values[i]) == 0)
				return;
		}
		for (i = 0; k->values[i] != NULL; i++)
			buf_printf(&b, "%s%s", i > 0 ? ", " : "", k->values[i]);
		schema_error(e, s, "%s: \"%s\" is not one of %s", dpath, v,
		    b.data);
		buf_free(&b);
		return;
	}
	if (k->check != NULL && k->check(v, &why) != 0) {
		schema_error(e, s, "%s: %s", dpath, why);
		free(why);
	}
}

static int
env_name_ok(const char *p)
{
	if (*p == '\0' || (*p >= '0' && *p <= '9'))
		return 0;
	for (; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	}
	return 1;
}

/* Never echo the value: if it is not a reference it may be the secret itself. */
static void
check_secret(struct schema_errors *e, const config_setting_t *s,
    const char *dpath)
{
	const char	*v = config_setting_get_string(s);

	if (strncmp(v, "env:", 4) == 0) {
		if (!env_name_ok(v + 4))
			schema_error(e, s, "%s: \"env:\" needs an environment "
			    "variable name", dpath);
	} else if (strncmp(v, "file:", 5) == 0) {
		if (v[5] == '\0')
			schema_error(e, s, "%s: \"file:\" needs a path", dpath);
	} else
		schema_error(e, s, "%s: secrets must be env: or file: references "
		    "(\"env:NAME\" or \"file:/path\"), never inline", dpath);
}

static void
check_value(struct schema_errors *e, const struct schema_key *k,
    const config_setting_t *s, const char *spath, const char *dpath)
{
	const config_setting_t	*elem;
	long long		 n;
	int			 type = config_setting_type(s), i, len;
	char			*sp, *dp;

	switch (k->type) {
	case SCHEMA_STRING:
	case SCHEMA_SECRET:
		if (type != CONFIG_TYPE_STRING)
			break;
		if (k->type == SCHEMA_SECRET)
			check_secret(e, s, dpath);
		else
			check_string(e, k, s, dpath);
		return;
	case SCHEMA_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			break;
		n = config_setting_get_int64(s);
		if (n < k->min || n > k->max)
			schema_error(e, s, "%s: %lld is out of range %lld..%lld",
			    dpath, n, k->min, k->max);
		return;
	case SCHEMA_FLOAT: {
		double	 f;

		if (type == CONFIG_TYPE_FLOAT)
			f = config_setting_get_float(s);
		else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
			f = (double)config_setting_get_int64(s);
		else
			break;
		if (!(f >= (double)k->min && f <= (double)k->max))
			schema_error(e, s, "%s: %g is out of range %lld..%lld",
			    dpath, f, k->min, k->max);
		return;
	}
	case SCHEMA_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			break;
		return;
	case SCHEMA_STRINGS:
		if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
			break;
		len = config_setting_length(s);
		for (i = 0; i < len; i++) {
			elem = config_setting_get_elem(s, i);
			dp = xasprintf("%s.[%d]", dpath, i);
			if (config_setting_type(elem) != CONFIG_TYPE_STRING)
				schema_error(e, elem, "%s: expected a string, "
				    "got %s", dp, found_name(elem));
			else
				check_string(e, k, elem, dp);
			free(dp);
		}
		return;
	case SCHEMA_GROUP:
		if (type != CONFIG_TYPE_GROUP)
			break;
		walk_group(e, s, spath, dpath);
		return;
	case SCHEMA_LIST:
		/* "[]" parses as an empty array; accept it as an empty list. */
		if (type == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)
			return;
		if (type != CONFIG_TYPE_LIST)
			break;
		sp = xasprintf("%s.[]", spath);
		len = config_setting_length(s);
		for (i = 0; i < len; i++) {
			elem = config_setting_get_elem(s, i);
			dp = xasprintf("%s.[%d]", dpath, i);
			if (config_setting_type(elem) != CONFIG_TYPE_GROUP)
				schema_error(e, elem, "%s: expected a group "
				    "{ ... }, got %s", dp, found_name(elem));
			else
				walk_group(e, elem, sp, dp);
			free(dp);
		}
		free(sp);
		return;
	}
	schema_error(e, s, "%s: expected %s, got %s", dpath, type_name(k->type),
	    found_name(s));
}

static void
walk_group(struct schema_errors *e, const config_setting_t *g,
    const char *spath, const char *dpath)
{
	const struct schema_key	*k;
	const config_setting_t	*s;
	const char		*name, *suggest;
	char			*sp, *dp;
	size_t			 plen = strlen(spath), i;
	int			 n, j;

	n = config_setting_length(g);
	for (j = 0; j < n; j++) {
		s = config_setting_get_elem(g, j);
		name = config_setting_name(s);
		sp = join(spath, name);
		dp = join(dpath, name);
		if ((k = schema_lookup(sp)) != NULL)
			check_value(e, k, s, sp, dp);
		else if ((suggest = schema_suggest(sp)) != NULL) {
			/* In the same group, say it as the user would write it. */
			free(sp);
			if (strncmp(suggest, spath, plen) == 0 &&
			    strchr(suggest + plen + (plen > 0), '.') == NULL)
				sp = join(dpath, last_part(suggest));
			else
				sp = xstrdup(suggest);
			schema_error(e, s, "unknown key '%s' (did you mean "
			    "'%s'?)", dp, sp);
		} else
			schema_error(e, s, "unknown key '%s'", dp);
		free(sp);
		free(dp);
	}

	for (i = 0; i < schema_nkeys; i++) {
		k = &schema_keys[i];
		if (!(k->flags & SCHEMA_REQUIRED))
			continue;
		if (plen == 0) {
			if (strchr(k->path, '.') != NULL)
				continue;
		} else if (strncmp(k->path, spath, plen) != 0 ||
		    k->path[plen] != '.' || strchr(k->path + plen + 1, '.') != NULL)
			continue;
		name = last_part(k->path);
		if (config_setting_get_member(g, name) == NULL) {
			dp = join(dpath, name);
			schema_error(e, g, "missing required key '%s'", dp);
			free(dp);
		}
	}
}

int
schema_validate(const config_t *cf, struct schema_errors *e)
{
	int	 before = e->count;

	walk_group(e, config_root_setting(cf), "", "");
	return e->count - before;
}

/* Help text indented by a tab and wrapped at about 72 columns. */
static void
wrap(struct buf *b, const char *text)
{
	const char	*p = text, *word;
	size_t		 col = 0, len;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		word = p;
		while (*p != '\0' && *p != ' ')
			p++;
		len = p - word;
		if (len == 0)
			break;
		if (col > 0 && col + 1 + len > 64) {
			buf_adds(b, "\n");
			col = 0;
		}
		buf_adds(b, col == 0 ? "\t" : " ");
		buf_add(b, word, len);
		col += len + 1;
	}
	buf_adds(b, "\n");
}

char *
schema_doc(void)
{
	const struct schema_key	*k;
	struct buf		 b = { 0 };
	size_t			 i, j;

	buf_adds(&b,
	    "# Switchboard configuration keys (generated from config/schema.c).\n"
	    "#\n"
	    "# The file is libconfig syntax.  \"repos.[].name\" is the key name\n"
	    "# in every item of the list repos = ( { ... }, ... ).  Unknown keys\n"
	    "# are errors.  Secrets are written \"env:NAME\" or \"file:/path\",\n"
	    "# never inline.  Relative paths are resolved against the config\n"
	    "# file's directory.\n\n");
	for (i = 0; i < schema_nkeys; i++) {
		k = &schema_keys[i];
		buf_printf(&b, "%s\t%s", k->path, type_name(k->type));
		if (k->values != NULL) {
			buf_adds(&b, ": ");
			for (j = 0; k->values[j] != NULL; j++)
				buf_printf(&b, "%s\"%s\"", j > 0 ? " | " : "",
				    k->values[j]);
		}
		if (k->type == SCHEMA_INT || k->type == SCHEMA_FLOAT)
			buf_printf(&b, ", %lld..%lld", k->min, k->max);
		if (k->flags & SCHEMA_REQUIRED)
			buf_adds(&b, ", required");
		if (k->def != NULL)
			buf_printf(&b, k->type == SCHEMA_STRING ?
			    ", default \"%s\"" : ", default %s", k->def);
		buf_adds(&b, "\n");
		wrap(&b, k->help);
	}
	return buf_steal(&b);
}
