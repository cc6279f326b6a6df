/*
 * fuzz-slack-event — libFuzzer target for the Slack adapter's inbound
 * parsers: any bytes as a Socket Mode frame (envelope, hello, disconnect),
 * as an Events API body, as a block_actions payload, and as a form body
 * carrying payload=<json>; plus Slack's markup decoder on the raw text.
 *
 * The parsers record dedup keys, so one temporary store is opened for the
 * whole run.  The adapter is marked destroyed, which makes the deliveries
 * the parsers schedule drop their event instead of calling into a core
 * this binary never starts; the loop is turned once per input to free them.
 *
 *   make fuzz && build/fuzz/fuzz-slack-event -max_total_time=60
 */
#include "adapters/slack.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
setup(void)
{
	static char	 dir[] = "/tmp/sb-fuzz-slack.XXXXXX";
	char		*cause = NULL;

	/* Every skipped input logs a line: keep the run fast and quiet. */
	log_init("error", 0, NULL);
	if (mkdtemp(dir) == NULL || loop_init() != 0 ||
	    store_open(dir, &cause) != 0) {
		fprintf(stderr, "fuzz-slack-event: setup: %s\n",
		    cause != NULL ? cause : "mkdtemp");
		abort();
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 ready;
	struct slack	*s;
	json_error_t	 err;
	json_t		*j;
	char		*arg, *form, *text;

	if (!ready)
		ready = setup();
	s = xcalloc(1, sizeof *s);
	s->hdr.ops = &slack_ops;
	s->ready = 1;
	s->destroyed = 1;
	s->bot_user = xstrdup("UBOT");
	s->bot_id = xstrdup("BBOT");

	slack_inbound_frame(s, (const char *)data, size, 0, &arg);
	free(arg);
	if ((j = json_loadb((const char *)data, size, 0, &err)) != NULL) {
		slack_inbound_event(s, j);
		slack_inbound_interactive(s, j);
		json_decref(j);
	}
	if ((form = slack_form_value((const char *)data, size, "payload")) !=
	    NULL) {
		if ((j = json_loads(form, 0, &err)) != NULL) {
			slack_inbound_interactive(s, j);
			json_decref(j);
		}
		free(form);
	}
	text = xstrndup((const char *)data, size);
	free(slack_text_decode(text, "UBOT"));
	free(text);

	/* Scheduled deliveries free the struct with the last of them. */
	if (s->pending > 0)
		uv_run(loop_uv(), UV_RUN_NOWAIT);
	else {
		free(s->bot_user);
		free(s->bot_id);
		free(s);
	}
	return 0;
}
