#include "orchestrator/agentsock.h"
#include "orchestrator/agent.h"
#include "orchestrator/driver.h"
#include "orchestrator/question.h"
#include "orchestrator/sandbox.h"
#include "config/config.h"
#include "bot/ctl.h"
#include "bot/log.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ASK_MAX_CHOICES	10
#define TEXT_MAX	4000
/*
 * Open connections per agent (its MCP server holds one; a few CLI calls at
 * once), and for every process that belongs to no agent, together.
 */
#define AGENTSOCK_PER_AGENT	8

/* The agent a request speaks for, or NULL after refusing it. */
static struct agent *
authorize(struct ctl_req *req, const json_t *msg)
{
	const char	*token = json_string_value(json_object_get(msg, "token"));
	struct agent	*a;

	if ((a = agent_by_token(token)) == NULL) {
		log_warnx("agent socket: %s refused: unknown token (pid %d)",
		    ctl_req_op(req), (int)ctl_req_pid(req));
		ctl_reply_error(req, "unknown or expired agent token");
		return NULL;
	}
	/*
	 * Over the network the connection proved its agent with the token of
	 * its first line (agentsock_hello); it speaks for that agent only.
	 */
	if (ctl_req_remote(req)) {
		if (agent_id(a) == ctl_req_key(req))
			return a;
		log_warnx("agent listener: %s refused: agent %lld's token on"
		    " agent %lld's connection", ctl_req_op(req),
		    (long long)agent_id(a), (long long)ctl_req_key(req));
		ctl_reply_error(req, "this agent token belongs to another"
		    " connection");
		return NULL;
	}
	/*
	 * A token alone can be read from an unsandboxed agent's
	 * /proc/PID/environ; the connection must also come from that agent's
	 * own processes.  admit() found which agent's the connection is when
	 * it opened; only a token of another agent needs the walk again.
	 */
	if (ctl_req_key(req) != agent_id(a) &&
	    !sandbox_owns(agent_pid(a), ctl_req_pid(req))) {
		log_warnx("agent socket: %s refused: agent %lld's token from"
		    " pid %d, which is not one of its processes",
		    ctl_req_op(req), (long long)agent_id(a),
		    (int)ctl_req_pid(req));
		ctl_reply_error(req, "this agent token belongs to another"
		    " agent's processes");
		return NULL;
	}
	return a;
}

static const char *
text_field(struct ctl_req *req, const json_t *msg, const char *name)
{
	const char	*s = json_string_value(json_object_get(msg, name));

	if (s == NULL || *s == '\0') {
		ctl_reply_error(req, "missing '%s'", name);
		return NULL;
	}
	if (strlen(s) > TEXT_MAX) {
		ctl_reply_error(req, "'%s' is longer than %d bytes", name,
		    TEXT_MAX);
		return NULL;
	}
	return s;
}

static void
op_progress(struct ctl_req *req, const json_t *msg, void *arg)
{
	struct agent	*a;
	const char	*text;

	if ((a = authorize(req, msg)) == NULL ||
	    (text = text_field(req, msg, "text")) == NULL)
		return;
	agent_progress(a, text);
	ctl_reply(req, NULL);
}

static void
op_done(struct ctl_req *req, const json_t *msg, void *arg)
{
	struct agent	*a;
	const char	*text;

	if ((a = authorize(req, msg)) == NULL ||
	    (text = text_field(req, msg, "summary")) == NULL)
		return;
	agent_set_summary(a, text);
	agent_progress(a, "reported done");
	ctl_reply(req, NULL);
}

static void
op_ask(struct ctl_req *req, const json_t *msg, void *arg)
{
	const char	*choices[ASK_MAX_CHOICES + 1] = { 0 };
	struct agent	*a;
	const char	*text;
	json_t		*jc, *v;
	json_int_t	 timeout = 0;
	size_t		 i, n = 0;

	if ((a = authorize(req, msg)) == NULL ||
	    (text = text_field(req, msg, "question")) == NULL)
		return;
	jc = json_object_get(msg, "choices");
	if (jc != NULL && !json_is_null(jc)) {
		if (!json_is_array(jc) || json_array_size(jc) > ASK_MAX_CHOICES) {
			ctl_reply_error(req, "'choices' must be an array of at"
			    " most %d strings", ASK_MAX_CHOICES);
			return;
		}
		json_array_foreach(jc, i, v) {
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > 75) {
				ctl_reply_error(req, "each choice must be a"
				    " string of 1 to 75 bytes");
				return;
			}
			choices[n++] = json_string_value(v);
		}
	}
	v = json_object_get(msg, "timeout");
	if (v != NULL && (!json_is_integer(v) ||
	    (timeout = json_integer_value(v)) < 0 || timeout > 7 * 86400)) {
		ctl_reply_error(req, "'timeout' must be seconds (0 to 604800)");
		return;
	}
	if (question_open(a, text, choices, (int)timeout, req) == NULL)
		ctl_reply_error(req, "cannot record the question");
	/* The reply comes when the ticket settles. */
}

/* ---- approvals ---------------------------------------------------------- */

#define CHOICE_ALLOW	"Allow"
#define CHOICE_DENY	"Deny"
#define CHOICE_SESSION	"Allow for this session"

/* "Allow for this session" answers, per agent and tool. */
struct session_allow {
	int64_t			 agent;
	char			*tool;
	struct session_allow	*next;
};
static struct session_allow	*allowed;

struct approval {
	int64_t	 agent;
	char	*tool;
	json_t	*input;
};

static int
session_allowed(int64_t agent, const char *tool)
{
	struct session_allow	*s;

	for (s = allowed; s != NULL; s = s->next)
		if (s->agent == agent && strcmp(s->tool, tool) == 0)
			return 1;
	return 0;
}

static void
session_allow(int64_t agent, const char *tool)
{
	struct session_allow	*s, **pp;

	/* Forget agents that are gone, so the list stays small. */
	for (pp = &allowed; (s = *pp) != NULL;) {
		if (agent_find(s->agent) == NULL) {
			*pp = s->next;
			free(s->tool);
			free(s);
		} else
			pp = &s->next;
	}
	if (session_allowed(agent, tool))
		return;
	s = xcalloc(1, sizeof *s);
	s->agent = agent;
	s->tool = xstrdup(tool);
	s->next = allowed;
	allowed = s;
}

static int
listed(char *const *list, const char *tool)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, tool) == 0)
			return 1;
	return 0;
}

static void
reply_allow(struct ctl_req *req, const json_t *input)
{
	ctl_reply(req, json_pack("{s:s, s:O}", "behavior", "allow",
	    "updatedInput", input));
}

static void
reply_deny(struct ctl_req *req, const char *message)
{
	ctl_reply(req, json_pack("{s:s, s:s}", "behavior", "deny", "message",
	    message));
}

/* The ticket settled: the person's answer becomes Claude Code's decision. */
static void
approval_settled(struct question *q, struct ctl_req *req)
{
	struct approval	*ap = q->settle_arg;
	const char	*ans = q->answer, *by = q->answered_by, *reason;
	char		*msg;

	if (by == NULL)
		by = "nobody";
	if (q->state != Q_ANSWERED || ans == NULL) {
		log_info("agent %lld: %s denied: question %s (%s)",
		    (long long)ap->agent, ap->tool, q->state == Q_EXPIRED ?
		    "expired" : "cancelled", by);
		reply_deny(req, "the permission question was cancelled"
		    " without an answer");
	} else if (strcasecmp(ans, CHOICE_SESSION) == 0) {
		session_allow(ap->agent, ap->tool);
		log_info("agent %lld: %s allowed for this session by %s",
		    (long long)ap->agent, ap->tool, by);
		reply_allow(req, ap->input);
	} else if (strcasecmp(ans, CHOICE_ALLOW) == 0) {
		log_info("agent %lld: %s allowed by %s", (long long)ap->agent,
		    ap->tool, by);
		reply_allow(req, ap->input);
	} else {
		/* "Deny", "Deny: reason", or any other text as the reason. */
		reason = ans;
		if (strncasecmp(reason, CHOICE_DENY, 4) == 0) {
			reason += 4;
			while (*reason == ':' || *reason == ' ')
				reason++;
		}
		if (*reason != '\0')
			msg = xasprintf("%s denied this: %s", by, reason);
		else
			msg = xasprintf("%s denied this tool use", by);
		log_info("agent %lld: %s denied by %s%s%s", (long long)ap->agent,
		    ap->tool, by, *reason != '\0' ? ": " : "", reason);
		reply_deny(req, msg);
		free(msg);
	}
	q->settle_arg = NULL;
	free(ap->tool);
	json_decref(ap->input);
	free(ap);
}

static void
op_approve(struct ctl_req *req, const json_t *msg, void *arg)
{
	static const char *const choices[] = { CHOICE_ALLOW, CHOICE_DENY,
	    CHOICE_SESSION, NULL };
	const struct cfg_agent	*ca;
	struct agent		*a;
	struct question		*q;
	struct approval		*ap;
	const json_t		*input;
	const char		*tool;
	char			*step, *text;

	if ((a = authorize(req, msg)) == NULL ||
	    (tool = text_field(req, msg, "tool_name")) == NULL)
		return;
	input = json_object_get(msg, "input");
	if (input != NULL && !json_is_object(input)) {
		ctl_reply_error(req, "'input' must be an object");
		return;
	}
	if (input == NULL)
		input = json_object();
	else
		json_incref((json_t *)input);
	ca = agent_config(a);
	if (ca != NULL && listed(ca->auto_deny, tool)) {
		log_info("agent %lld: %s denied by config (auto_deny)",
		    (long long)agent_id(a), tool);
		reply_deny(req, "denied by switchboard's configuration"
		    " (auto_deny)");
	} else if (ca != NULL && listed(ca->auto_allow, tool)) {
		log_info("agent %lld: %s allowed by config (auto_allow)",
		    (long long)agent_id(a), tool);
		reply_allow(req, input);
	} else if (session_allowed(agent_id(a), tool)) {
		log_info("agent %lld: %s allowed (allowed for this session"
		    " earlier)", (long long)agent_id(a), tool);
		reply_allow(req, input);
	} else {
		step = driver_tool_step(tool, input, agent_worktree(a));
		text = xasprintf("May #%lld use %s?\n%s\n(Allow, Deny, or"
		    " \"Deny: reason\")", (long long)agent_id(a), tool, step);
		free(step);
		ap = xcalloc(1, sizeof *ap);
		ap->agent = agent_id(a);
		ap->tool = xstrdup(tool);
		ap->input = json_incref((json_t *)input);
		if ((q = question_open(a, text, choices, 0, req)) == NULL) {
			free(ap->tool);
			json_decref(ap->input);
			free(ap);
			ctl_reply_error(req, "cannot record the question");
		} else {
			q->on_settle = approval_settled;
			q->settle_arg = ap;
		}
		free(text);
	}
	json_decref((json_t *)input);
}

/* The agent a connecting process belongs to is its group; strangers 0. */
static int64_t
admit(pid_t pid, uid_t uid, void *arg)
{
	struct agent	*v[256];
	pid_t		 roots[256], p, sid;
	int		 n, i, depth;

	/*
	 * The caller's parent chain read once, nearest ancestor first, until
	 * an agent's process (sandbox_owns per agent read it again for each:
	 * with 100 agents, 80 % of the daemon's CPU was /proc/PID/stat reads
	 * at 240 agent calls a second).
	 */
	n = agent_list_all(v, (int)nitems(v));
	if (n > (int)nitems(v))
		n = (int)nitems(v);
	for (i = 0; i < n; i++)
		roots[i] = agent_pid(v[i]);
	for (p = pid, depth = 0; depth < 128 && p > 1; depth++) {
		for (i = 0; i < n; i++)
			if (roots[i] > 1 && roots[i] == p)
				return agent_id(v[i]);
		p = sandbox_parent(p);
	}
	sid = sandbox_session(pid);
	for (i = 0; i < n; i++)
		if (roots[i] > 1 && roots[i] == sid)
			return agent_id(v[i]);
	return 0;
}

static char *
hello_refusal(const char *error)
{
	json_t	*j = json_pack("{s:i, s:n, s:b, s:s}", "v", CTL_VERSION, "id",
	    "ok", 0, "error", error);
	char	*line = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return line;
}

int64_t
agentsock_hello(const char *line, size_t len, const char *peer,
    char **reply)
{
	const struct cfg_agent	*ca;
	struct agent		*a;
	json_t			*msg, *id, *j;
	const char		*op, *token;
	int64_t			 agent = -1;

	msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	op = json_string_value(json_object_get(msg, "op"));
	token = json_string_value(json_object_get(msg, "token"));
	id = json_object_get(msg, "id");
	if (op == NULL || strcmp(op, "hello") != 0 || token == NULL ||
	    !json_is_integer(id)) {
		log_warnx("agent listener: %s refused: its first line is not a"
		    " hello with an agent token", peer);
		*reply = hello_refusal("the first line must be {\"v\":1,"
		    "\"id\":N,\"op\":\"hello\",\"token\":T}");
	} else if ((a = agent_by_token(token)) == NULL) {
		log_warnx("agent listener: %s refused: unknown agent token",
		    peer);
		*reply = hello_refusal("unknown or expired agent token");
	} else if ((ca = agent_config(a)) == NULL || ca->runner == NULL ||
	    strcmp(ca->runner, "local") == 0) {
		/*
		 * A local agent's token could be read from its environment by
		 * another process of this host; on the agent socket the pid
		 * check stops that, here nothing would.
		 */
		log_warnx("agent listener: %s refused: agent %lld runs on this"
		    " host (it talks over the agent socket)", peer,
		    (long long)agent_id(a));
		*reply = hello_refusal("this agent runs on the daemon's host:"
		    " it talks over the agent socket, not the network");
	} else {
		agent = agent_id(a);
		log_info("agent listener: %s is agent %lld", peer,
		    (long long)agent);
		j = json_pack("{s:i, s:O, s:b, s:I}", "v", CTL_VERSION, "id",
		    id, "ok", 1, "agent", (json_int_t)agent);
		*reply = json_dumps(j, JSON_COMPACT);
		json_decref(j);
	}
	json_decref(msg);
	return agent;
}

void
agentsock_init(struct ctl_server *srv)
{
	ctl_set_admit(srv, admit, NULL, AGENTSOCK_PER_AGENT);
	ctl_on(srv, "approve", op_approve, NULL);
	ctl_on(srv, "progress", op_progress, NULL);
	ctl_on(srv, "ask", op_ask, NULL);
	ctl_on(srv, "done", op_done, NULL);
}
