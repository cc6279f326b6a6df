/*
 * registry — the adapters compiled in, looked up by name (OpenSMTPD style):
 * a static NULL-terminated table, no dlopen.  Slack and Matrix join here.
 */
#include "adapters/adapter.h"
#include "adapters/console.h"

#include <string.h>

static const struct adapter_ops *const adapters[] = {
	&console_ops,
	NULL,
};

const struct adapter_ops *
adapter_lookup(const char *name)
{
	const struct adapter_ops *const	*a;

	if (name == NULL)
		return NULL;
	for (a = adapters; *a != NULL; a++)
		if (strcmp((*a)->name, name) == 0)
			return *a;
	return NULL;
}
