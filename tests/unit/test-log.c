/* JSON log lines carry structured fields, not only a message string. */
#include "bot/log.h"
#include "tests/unit/t.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static json_t *
line_n(const char *path, int n)
{
	char	 buf[8192];
	FILE	*f = fopen(path, "r");
	json_t	*o = NULL;

	while (f != NULL && fgets(buf, sizeof buf, f) != NULL)
		if (n-- == 0) {
			o = json_loads(buf, 0, NULL);
			break;
		}
	if (f != NULL)
		fclose(f);
	return o;
}

TEST(json_lines_carry_agent_conversation_adapter_and_event_fields)
{
	char	 path[] = "/tmp/sb-test-log-XXXXXX";
	json_t	*o;
	int	 fd;

	CHECK((fd = mkstemp(path)) != -1);
	close(fd);
	CHECK(log_init("debug", 1, path) == 0);
	log_info("agent %d: running → done", 3);
	log_ctx_set("event", "Ev0123");
	log_ctx_set("conversation", "12");
	log_info("adapter %s: connected", "slack");
	log_ctx_clear();
	log_info("switchboard serving");
	log_close();

	CHECK((o = line_n(path, 0)) != NULL);
	CHECK_INT(json_integer_value(json_object_get(o, "agent")), 3);
	CHECK_STR(json_string_value(json_object_get(o, "msg")),
	    "agent 3: running → done");
	json_decref(o);
	CHECK((o = line_n(path, 1)) != NULL);
	CHECK_STR(json_string_value(json_object_get(o, "adapter")), "slack");
	CHECK_STR(json_string_value(json_object_get(o, "event")), "Ev0123");
	CHECK_STR(json_string_value(json_object_get(o, "conversation")), "12");
	json_decref(o);
	CHECK((o = line_n(path, 2)) != NULL);
	CHECK(json_object_get(o, "event") == NULL);
	CHECK(json_object_get(o, "agent") == NULL);
	json_decref(o);
	unlink(path);
}

int
main(void)
{
	RUN(json_lines_carry_agent_conversation_adapter_and_event_fields);
	return t_done();
}
