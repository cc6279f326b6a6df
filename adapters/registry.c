/*
 * registry — the adapters compiled in, looked up by name (OpenSMTPD style):
 * a static table, no dlopen.  Referencing an adapter here links it (and what
 * it needs) into anything that calls adapter_lookup(); unit tests that stub
 * the store or the chat_* upcalls therefore do not call it.
 */
#include "adapters/adapter.h"
#include "adapters/console.h"
#include "adapters/matrix.h"
#include "adapters/web.h"
#include "adapters/slack.h"
#include "bot/util.h"

#include <string.h>

static const struct adapter_ops *const adapters[] = {
	&console_ops,
	&slack_ops,
	&matrix_ops,
	&web_ops,
};

const struct adapter_ops *
adapter_lookup(const char *name)
{
	size_t	 i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < nitems(adapters); i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}
