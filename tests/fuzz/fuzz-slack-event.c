/*
 * fuzz-slack-event — libFuzzer target for the Slack adapter's inbound
 * parsers: any bytes as a Socket Mode frame (envelope, hello, disconnect),
 * as an Events API body, as a block_actions payload, and as a form body
 * carrying payload=<json>; plus Slack's markup decoder on the raw text.
 *
 * Events reach the inbox (a temporary store opened once for the run), and
 * every input's rows are then worked on: committed, read back and handed
 * to chat_on_event (the real one, which without a configuration returns at
 * once), so the whole delivery path runs.  The adapter is forgotten by the
 * inbox before it is freed.  The seed corpus
 * (tests/fuzz/corpus/fuzz-slack-event) has a frame for each kind of event
 * that reaches delivery: message, app_mention, reaction_added,
 * block_actions, member_joined_channel.
 *
 *   make fuzz && build/fuzz/fuzz-slack-event -max_total_time=60
 */
#include "adapters/slack.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "orchestrator/chat.h"
#include "orchestrator/inbox.h"

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
	int		 i;

	if (!ready)
		ready = setup();
	s = xcalloc(1, sizeof *s);
	s->hdr.ops = &slack_ops;
	s->ready = 1;
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

	/* Commit what was queued, then work the rows off (and the acks). */
	inbox_flush();
	for (i = 0; i < 64 && (inbox_backlog() > 0 || s->pending > 0); i++)
		uv_run(loop_uv(), UV_RUN_NOWAIT);
	chat_inbox_forget(&s->hdr);
	if (s->pending == 0) {
		free(s->bot_user);
		free(s->bot_id);
		free(s);
	}
	return 0;
}
