#include "orchestrator/agentsock.h"
#include "orchestrator/agent.h"
#include "orchestrator/question.h"
#include "bot/ctl.h"
#include "bot/log.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ASK_MAX_CHOICES	10
#define TEXT_MAX	4000

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

void
agentsock_init(struct ctl_server *srv)
{
	ctl_on(srv, "progress", op_progress, NULL);
	ctl_on(srv, "ask", op_ask, NULL);
	ctl_on(srv, "done", op_done, NULL);
}
