/*
 * registry — the adapters compiled in, looked up by name (OpenSMTPD style):
 * a static table, no dlopen.  Matrix joins here.
 *
 * Adapters other than the console are referenced weakly: the daemon links
 * every object, so they are always there, while a unit test linking the
 * archive gets only what it uses (test-console stubs the store, which the
 * Slack adapter needs, and must not drag it in through this table).
 */
#include "adapters/adapter.h"
#include "adapters/console.h"
#include "adapters/slack.h"

#include "bot/util.h"

#include <string.h>

extern const struct adapter_ops slack_ops __attribute__((weak));

static const struct adapter_ops *const adapters[] = {
	&console_ops,
	&slack_ops,
};

const struct adapter_ops *
adapter_lookup(const char *name)
{
	size_t	 i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < nitems(adapters); i++)
		if (adapters[i] != NULL && strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}
