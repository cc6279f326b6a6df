/*
 * config — the libconfig file, validated against one schema table.
 *
 * config/schema.c lists every key (path, type, default, help); validation walks
 * the parsed file against it, so an unknown key is an error with file:line
 * (typos must not be silent) and the example file and the docs come from the
 * same table.  Secrets are written as "env:NAME" or "file:/path" and resolved
 * here; a missing one is an error naming the key, never the value.  The
 * resolved struct config is immutable once loaded: SIGHUP loads a new one and
 * config_reload_diff() says which changes can be applied live.
 */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stddef.h>

struct cfg_repo {
	char	*name;
	char	*path;		/* an existing git repository */
	char	*base;		/* base branch, default "main" */
	/* Results: push, pull requests, the merge queue. */
	char	*remote;	/* remote pushed to, default "origin" */
	char	*push_ssh_key;	/* private key file, or NULL */
	int	 push_ssh_agent;	/* ask ssh-agent for keys */
	char	*push_user;	/* HTTPS user name for push_token */
	char	*push_token;	/* resolved secret, or NULL */
	char	*push_token_ref;
	char	**check;	/* argv run in the merged tree, or NULL */
	size_t	  ncheck;
	int	 check_timeout;	/* seconds */
	int	 merge_push;	/* push base after a merge */
	int	 warm;		/* warm worktrees kept (worktree_warm_add) */
	struct {
		char	*kind;		/* "github", or NULL = no forge */
		char	*repo;		/* "owner/name" */
		char	*token;		/* resolved secret */
		char	*token_ref;
		char	*api_url;	/* no trailing '/' */
	} forge;
};

/* agents.[].kubernetes: the pod of a kubernetes-run agent kind. */
struct cfg_kube {
	char	 *mode;			/* "pod" or "sandbox-claim" */
	int	  claim;		/* mode "sandbox-claim" */
	char	 *sandbox_template, *warm_pool;	/* claim mode */
	long long ready_timeout;	/* claim mode: seconds to Ready */
	long long claim_ttl;	/* claim mode: seconds after a turn; 0 = ∞ */
	char	 *namespace;
	char	 *image;
	char	 *service_account, *runtime_class;	/* NULL = unset */
	char	 *requests_cpu, *requests_memory, *limits_cpu, *limits_memory;
	char	**node_selector;	/* "k=v", NULL-terminated */
	size_t	  nnode_selector;
	char	**tolerations;		/* "k[=v]:Effect" */
	size_t	  ntolerations;
	char	**image_pull_secrets;
	size_t	  nimage_pull_secrets;
	char	 *kubeconfig;		/* cluster.kubeconfig; NULL = in-cluster */
	char	 *git_image;		/* clone container; NULL = image */
	char	 *git_secret;		/* git credentials Secret, or NULL */
	char	 *daemon_id;		/* cluster.daemon_id, or NULL */
	/* agent_listener.url and its CA (PEM), for the pod; NULL = unset. */
	char	 *agent_url, *agent_ca;
};

struct cfg_agent {
	char	 *name;
	char	 *driver;	/* "command", "claude", "codex" */
	char	**command;	/* argv template, NULL-terminated; for claude
				 * and codex the program, default its name */
	size_t	  ncommand;
	int	  timeout;	/* seconds; 0 = limits.agent_timeout */
	/* claude / codex */
	char	 *model;		/* NULL = the CLI's default */
	char	 *permission_mode;	/* NULL = the CLI's default */
	char	**args;			/* extra argv, NULL-terminated */
	size_t	  nargs;
	int	  approvals_chat;	/* approvals = "chat" */
	char	**auto_allow;		/* tool names, NULL-terminated */
	size_t	  nauto_allow;
	char	**auto_deny;
	size_t	  nauto_deny;
	/* Budgets per run; 0 = none. */
	int	  max_turns;
	int	  max_wall_time;	/* seconds */
	double	  max_cost_usd;
	/* codex: -s SANDBOX; NULL = "workspace-write" */
	char	 *codex_sandbox;
	/* Containment (orchestrator/sandbox.h). */
	int	  sandbox;		/* 1 = "auto", 0 = "off" */
	int	  network;		/* 0 = --unshare-net */
	char	**sandbox_paths;	/* "[ro:|rw:]PATH", NULL-terminated */
	size_t	  nsandbox_paths;
	/* Where its turns run: "local" or "kubernetes" (runner.h). */
	char	 *runner;
	struct cfg_kube	*kube;		/* runner "kubernetes": the pod template */
};

struct cfg_route {
	char	*adapter;	/* "console", "slack", "matrix", "web" */
	char	*channel;	/* channel/room id or "*" */
	char	*repo;		/* name of a cfg_repo */
	char	*agent;		/* name of a cfg_agent */
	char	*brain;		/* name of a cfg_brain; NULL = the rules brain */
};

/*
 * An LLM brain: the model the orchestrator converses with (see
 * orchestrator/brain-llm.c).  provider is "anthropic" (Messages API) or
 * "openai" (Chat Completions, and every server that speaks it).
 */
struct cfg_brain {
	char	*name;
	char	*provider;
	char	*model;
	char	*api_key;	/* resolved; NULL when none (local servers) */
	char	*api_key_ref;
	char	*base_url;	/* no trailing '/' */
	int	 max_tokens;	/* per model reply */
	int	 context_tokens; /* bound of one request's input */
	int	 timeout;	/* seconds per model call */
	int	 max_tool_rounds;
	double	 price_in_per_mtok;
	double	 price_out_per_mtok;
	double	 max_cost_usd_per_day;	/* 0 = no limit */
};

/*
 * A signed inbound HTTP POST that opens (or continues) a thread in
 * target_adapter/target_channel and starts agent in repo.  Secrets are
 * resolved only when enabled.
 */
struct cfg_webhook {
	char	 *name;
	int	  enabled;
	char	 *path;		/* "/hooks/github" */
	char	 *kind;		/* "github" | "generic" */
	char	 *secret;	/* resolved; NULL when disabled */
	char	 *secret_ref;	/* as written */
	char	 *target_adapter;
	char	 *target_channel;
	char	 *repo;
	char	 *agent;
	char	 *brain;	/* NULL = the rules brain */
	struct {
		char	**labels;	/* NULL-terminated */
		size_t	  nlabels;
		char	 *command;	/* "/agent" */
		char	**events;	/* NULL-terminated */
		size_t	  nevents;
		char	 *token;	/* resolved; NULL = no write-back */
		char	 *token_ref;
		char	 *api_url;	/* no trailing '/' */
	} github;
	struct {
		char	*task_field;
		char	*thread_field;
		char	*id_field;
		char	*timestamp_header;
		char	*signature_header;
	} generic;
};

struct config {
	char			*path;
	char			*state_dir;

	char			*http_listen;	/* "" = no HTTP server */
	size_t			 http_max_body;
	int			 http_health_grace;	/* seconds */

	/* Agents elsewhere talk back over TLS (orchestrator/agentnet.h). */
	struct {
		char		*listen;	/* "" = no listener */
		char		*cert, *key;	/* PEM, resolved with listen */
		char		*ca;		/* PEM agents trust: ca or cert */
		char		*url;		/* tls://HOST:PORT, or NULL */
		char		*cert_ref, *key_ref, *ca_ref;	/* as written */
	} agent_listener;

	char			*log_level;
	int			 log_json;
	char			*log_file;	/* NULL = stderr */

	char			**allowed_users;	/* "console:*", "slack:U123" */
	size_t			 nallowed_users;

	struct cfg_repo		*repos;
	size_t			 nrepos;
	struct cfg_agent	*agents;
	size_t			 nagents;
	struct cfg_route	*routes;
	size_t			 nroutes;
	struct cfg_webhook	*webhooks;
	size_t			 nwebhooks;
	struct cfg_brain	*brains;
	size_t			 nbrains;

	struct {
		int		 enabled;
	} console;
	struct {
		int		 enabled;
		char		*mode;		/* "socket" | "events" */
		char		*app_token;	/* resolved secret */
		char		*bot_token;	/* resolved secret */
		char		*signing_secret; /* resolved secret */
		char		*api_url;	/* ends with '/' */
		int		 socket_timeout_ms; /* dead-socket limit */
		/* The references as written ("env:NAME", "file:/path"), for
		 * summaries and reload diffs; NULL when unset.  Secrets are
		 * only resolved when the adapter is enabled. */
		char		*app_token_ref;
		char		*bot_token_ref;
		char		*signing_secret_ref;
	} slack;
	struct {
		int		 enabled;
		char		*homeserver;	/* no trailing '/' */
		char		*user_id;
		char		*access_token;	/* resolved secret */
		char		*password;	/* resolved secret */
		int		 autojoin;
		char		*access_token_ref;	/* as slack's *_ref */
		char		*password_ref;
	} matrix;
	/* The local web chat, served by the HTTP server (adapters/web.h). */
	struct {
		int		 enabled;
		char		*user;		/* the browser's person: web:USER */
		int		 allow_remote;	/* http.listen may leave loopback */
	} web;

	struct {
		int		 max_agents;
		int		 max_agents_per_conversation;
		int		 agent_timeout;		/* seconds */
		int		 kill_grace;		/* seconds SIGTERM → SIGKILL */
		int		 output_tail;		/* bytes of output kept per agent */
		int		 keep_ended;		/* seconds an ended agent stays loaded */
		int		 keep_conversations;	/* unreferenced ones cached */
		int		 log_size;		/* bytes of logs kept per agent */
	} limits;
	struct {
		char		*name;		/* commit identity */
		char		*email;
		int		 retention;	/* seconds to keep worktrees, 0 = forever */
	} git;
	struct {
		int		 card_interval_ms;	/* status card edit coalescing */
	} render;
	/* The cluster of kubernetes-run agents (orchestrator/k8s.h). */
	struct {
		char		*kubeconfig;	/* NULL = in-cluster */
		char		*daemon_id;	/* NULL = none */
	} cluster;
};

/* 0 ok; -1 with *cause = "FILE:LINE: message" (malloc'd). */
int	 config_load(const char *path, struct config **out, char **cause);
/*
 * Where env: references are looked up; NULL (the default) = getenv().  The
 * daemon wipes its secrets from the environment after the first load and
 * answers later loads (SIGHUP) from its copies, without setenv().
 */
void	 config_set_env_lookup(const char *(*)(const char *name));
void	 config_free(struct config *);

/* Human summary for check-config; secrets shown as their reference only. */
char	*config_summary(const struct config *);

const struct cfg_repo	*config_repo(const struct config *, const char *name);
const struct cfg_agent	*config_agent(const struct config *, const char *name);
/* Route for (adapter, channel): exact channel first, then "*". NULL if none. */
/* Is the adapter of that name enabled?  0 for a name we do not know. */
int		 config_adapter_enabled(const struct config *, const char *name);
const struct cfg_route	*config_route(const struct config *, const char *adapter,
			    const char *channel);
/* Brain by name, or NULL. */
const struct cfg_brain	*config_brain(const struct config *, const char *name);
/* Webhook by name, or NULL. */
const struct cfg_webhook *config_webhook(const struct config *, const char *name);
/* 1 if "adapter:user" is allowed ("adapter:*" matches any user of it). */
int	 config_user_allowed(const struct config *, const char *adapter,
	    const char *user);

/*
 * Compares old and new for SIGHUP: returns a malloc'd, comma-separated list
 * of keys that changed but need a restart (state_dir, http.listen, adapter
 * credentials...), or NULL if everything can be applied live.
 */
char	*config_reload_diff(const struct config *old, const struct config *new);

/*
 * For a live reload: new takes old's values of every key that needs a
 * restart (the running daemon goes on with what it started with).
 */
void	 config_keep_restart_keys(struct config *old, struct config *new);

/* Writes the documented example (every key) generated from the schema. */
char	*config_schema_doc(void);

/*
 * config/check.c — what a loaded config needs from this machine, for
 * check-config and for serve at start: agent programs that exist and are
 * executable, an enabled adapter, someone allowed, routes to enabled
 * adapters, a log directory that will exist.  *errors and *warnings get one
 * "FILE:LINE: message" per line (warnings say "warning:"), or NULL when
 * there are none; caller frees.  Returns the number of errors.
 */
int	 config_check(const struct config *, char **errors, char **warnings);

/*
 * Creates the state dir, and the log file's directory when it lies inside
 * the state dir, so a log there works on the first start.  0, or -1 with
 * *cause (malloc'd).
 */
int	 config_prepare_dirs(const struct config *, char **cause);

#endif
