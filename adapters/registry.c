/*
 * registry — the adapters compiled in, looked up by name (OpenSMTPD style):
 * a static table, no dlopen.
 *
 * Adapters other than the console are referenced weakly: the daemon links
 * every object and gets them all, while a unit test linked from the archive
 * pulls in only the adapters it uses — so a test may still stub store_* or
 * chat_* without the linker dragging in an adapter (and the real store.o
 * with it) through this table.  A weak reference left undefined is NULL and
 * skipped.
 */
#include "adapters/adapter.h"
#include "adapters/console.h"
#include "adapters/matrix.h"
#include "bot/util.h"

#include <string.h>

extern const struct adapter_ops matrix_ops __attribute__((weak));

static const struct adapter_ops *const adapters[] = {
	&console_ops,
	&matrix_ops,
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
