/* The static adapter table: every built-in adapter is found by its name. */
#include "adapters/adapter.h"
#include "adapters/console.h"
#include "adapters/matrix.h"
#include "adapters/slack.h"
#include "tests/unit/t.h"

TEST(registry_finds_each_adapter_by_name_and_nothing_else)
{
	CHECK(adapter_lookup("console") == &console_ops);
	CHECK(adapter_lookup("matrix") == &matrix_ops);
	CHECK(adapter_lookup("slack") == &slack_ops);
	CHECK_STR(adapter_lookup("matrix")->name, "matrix");
	CHECK(adapter_lookup("nope") == NULL);
	CHECK(adapter_lookup("") == NULL);
	CHECK(adapter_lookup(NULL) == NULL);
}

int
main(void)
{
	RUN(registry_finds_each_adapter_by_name_and_nothing_else);
	return t_done();
}
