#include "bot/metrics.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <jansson.h>
#include <stdlib.h>

TEST(metrics_groups_series_under_one_help_and_type)
{
	struct metric	*a, *b, *g;
	char		*out;

	a = metrics_counter("sb_msgs_total", "adapter=\"slack\"", "Messages.");
	g = metrics_gauge("sb_agents", "", "Running agents.");
	b = metrics_counter("sb_msgs_total", "adapter=\"matrix\"", "Messages.");
	metrics_inc(a);
	metrics_add(b, 2);
	metrics_set(g, 4);
	metrics_add(g, -1);
	out = metrics_render();
	CHECK_STR(out,
	    "# HELP sb_msgs_total Messages.\n"
	    "# TYPE sb_msgs_total counter\n"
	    "sb_msgs_total{adapter=\"slack\"} 1\n"
	    "sb_msgs_total{adapter=\"matrix\"} 2\n"
	    "# HELP sb_agents Running agents.\n"
	    "# TYPE sb_agents gauge\n"
	    "sb_agents 3\n");
	free(out);
	metrics_reset();
}

TEST(metrics_registration_is_idempotent_per_name_and_labels)
{
	struct metric	*a, *b, *c;

	a = metrics_counter("sb_x_total", "", "X.");
	b = metrics_counter("sb_x_total", "", "X.");
	c = metrics_counter("sb_x_total", "k=\"v\"", "X.");
	CHECK(a == b);
	CHECK(a != c);
	metrics_inc(a);
	metrics_inc(b);
	CHECK(metrics_value(a) == 2);
	CHECK(metrics_value(c) == 0);
	metrics_reset();
	/* After a reset the registry starts empty. */
	char *out = metrics_render();
	CHECK_STR(out, "");
	free(out);
}

TEST(metrics_escapes_help_and_prints_exact_values)
{
	struct metric	*m;
	char		*out;

	m = metrics_gauge("sb_ratio", "", "back\\slash\nnewline");
	metrics_set(m, 0.1);
	out = metrics_render();
	CHECK_STR(out, "# HELP sb_ratio back\\\\slash\\nnewline\n"
	    "# TYPE sb_ratio gauge\nsb_ratio 0.1\n");
	free(out);
	metrics_set(m, 1e20);
	out = metrics_render();
	CHECK(strstr(out, "sb_ratio 1e+20\n") != NULL);
	free(out);
	metrics_reset();
}

TEST(health_render_is_json_with_uptime_and_latest_states)
{
	json_t		*root, *comps;
	json_error_t	 err;
	const char	*status;
	json_int_t	 uptime = -1;
	char		*out;

	health_set("slack", "connecting");
	health_set("console", "ready");
	health_set("slack", "connected");
	out = health_render();
	root = json_loads(out, 0, &err);
	free(out);
	CHECK(root != NULL);
	CHECK(json_unpack(root, "{s:s, s:I, s:o}", "status", &status,
	    "uptime_s", &uptime, "components", &comps) == 0);
	CHECK_STR(status, "ok");
	CHECK(uptime >= 0 && uptime < 5);
	CHECK_INT(json_object_size(comps), 2);
	CHECK_STR(json_string_value(json_object_get(comps, "slack")),
	    "connected");
	CHECK_STR(json_string_value(json_object_get(comps, "console")),
	    "ready");
	json_decref(root);
	metrics_reset();
}

int
main(void)
{
	RUN(metrics_groups_series_under_one_help_and_type);
	RUN(metrics_registration_is_idempotent_per_name_and_labels);
	RUN(metrics_escapes_help_and_prints_exact_values);
	RUN(health_render_is_json_with_uptime_and_latest_states);
	return t_done();
}
