/*
 * libFuzzer target: the codex stream parser on arbitrary input, split into
 * lines as the agent runtime splits the child's stdout.  Build: make fuzz.
 */
#include "orchestrator/driver.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static void
sink(void *arg, enum drv_event ev, const char *text)
{
	/* Touch every byte so ASan sees a bad string. */
	(void)arg;
	(void)ev;
	(void)strlen(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drv_stream	 st = { .emit = sink };
	const char		*p = (const char *)data, *nl;
	size_t			 n = size;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		size_t len = nl != NULL ? (size_t)(nl - p) : n;
		codex_stream_line(&st, p, len);
		if (nl == NULL)
			break;
		n -= len + 1;
		p = nl + 1;
	}
	drv_stream_free(&st);
	return 0;
}
