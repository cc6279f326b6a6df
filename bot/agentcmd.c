#include "bot/agentcmd.h"
#include "bot/agentconn.h"
#include "bot/cli.h"
#include "bot/ctl-client.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The request for argv, or NULL for a usage error (*bad_text: not UTF-8). */
static json_t *
agentcmd_request(int argc, char **argv, int *bad_text)
{
	json_t		*req, *choices;
	long long	 timeout = 0;
	const char	*op = argv[1];
	int		 i;

	*bad_text = 0;
	if (strcmp(op, "progress") == 0 && argc == 3)
		req = json_pack("{s:s, s:s}", "op", "progress", "text",
		    argv[2]);
	else if (strcmp(op, "done") == 0 && argc == 3)
		req = json_pack("{s:s, s:s}", "op", "done", "summary",
		    argv[2]);
	else if (strcmp(op, "ask") == 0) {
		choices = json_array();
		for (i = 3; i < argc; i++) {
			if (strcmp(argv[i], "--choice") == 0 && i + 1 < argc)
				json_array_append_new(choices,
				    json_string(argv[++i]));
			else if (strcmp(argv[i], "--timeout") == 0 &&
			    i + 1 < argc &&
			    (timeout = parse_uint(argv[i + 1])) >= 0)
				i++;
			else {
				json_decref(choices);
				return NULL;
			}
		}
		req = json_pack("{s:s, s:s, s:o, s:I}", "op", "ask",
		    "question", argv[2], "choices", choices, "timeout",
		    (json_int_t)timeout);
	} else
		return NULL;
	if (req == NULL)
		*bad_text = 1;
	return req;
}

int
agentcmd_main(int argc, char **argv, const struct agentconn_net *net)
{
	struct agentconn	*ac;
	json_t			*req, *reply = NULL;
	char			*cause = NULL;
	int			 rc, bad_text;

	if (argc < 3)
		return AGENTCMD_USAGE;
	if ((ac = agentconn_env(net, &cause)) == NULL) {
		fprintf(stderr, "switchboard agent: %s\n", cause);
		free(cause);
		return EXIT_USAGE;
	}
	if ((req = agentcmd_request(argc, argv, &bad_text)) == NULL) {
		agentconn_free(ac);
		if (!bad_text)
			return AGENTCMD_USAGE;
		fprintf(stderr, "switchboard agent: text must be UTF-8\n");
		return EXIT_USAGE;
	}
	rc = agentconn_call(ac, req, &reply, -1, &cause);
	json_decref(req);
	agentconn_free(ac);
	if (rc == CTL_REFUSED) {
		/*
		 * The daemon said no: a settled question, a token it does not
		 * know (the daemon that started us is gone: we are an orphan,
		 * as good as no daemon at all), another agent's token...
		 */
		fprintf(stderr, "switchboard agent: %s\n", cause);
		rc = strcmp(cause, "cancelled") == 0 ||
		    strcmp(cause, "expired") == 0 ? EXIT_CANCELLED :
		    strcmp(cause, "unknown or expired agent token") == 0 ?
		    EXIT_NODAEMON : EXIT_ERR;
		free(cause);
		return rc;
	}
	if (rc != 0) {
		fprintf(stderr, "switchboard agent: %s\n", cause);
		free(cause);
		return EXIT_NODAEMON;
	}
	if (strcmp(argv[1], "ask") == 0)
		printf("%s\n", json_string_value(json_object_get(reply,
		    "answer")));
	json_decref(reply);
	return EXIT_OK;
}
