/*
 * libFuzzer target: `switchboard mcp`'s JSON-RPC handling on arbitrary lines,
 * with a fake agent socket that answers every op.  Build: make fuzz.
 */
#include "bot/mcp.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int
fake_call(void *arg, json_t *req, json_t **reply, char **cause)
{
	(void)arg;
	(void)cause;
	/* Echo the request back: answers, decisions and junk alike. */
	*reply = json_deep_copy(req);
	json_object_set_new(*reply, "answer", json_string("ok"));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mcp	*m;
	const char		*p = (const char *)data, *nl;
	size_t			 n = size, len;
	char			*out;

	if (m == NULL)
		m = mcp_new(fake_call, NULL);
	while (n > 0) {
		nl = memchr(p, '\n', n);
		len = nl != NULL ? (size_t)(nl - p) : n;
		out = mcp_handle(m, p, len);
		if (out != NULL) {
			json_t *j = json_loads(out, 0, NULL);
			if (j == NULL)
				abort();	/* every reply must be JSON */
			json_decref(j);
			free(out);
		}
		if (nl == NULL)
			break;
		n -= len + 1;
		p = nl + 1;
	}
	return 0;
}
