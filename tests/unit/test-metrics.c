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

TEST(histogram_renders_cumulative_buckets_sum_and_count)
{
	static const double b[] = { 0.1, 1, -1 };
	struct metric	*h;
	char		*out;

	h = metrics_histogram("sb_lat_seconds", "adapter=\"x\"", "Latency.", b);
	metrics_observe(h, 0.05);
	metrics_observe(h, 0.5);
	metrics_observe(h, 7);
	CHECK_INT(metrics_count(h), 3);
	out = metrics_render();
	CHECK(strstr(out, "# TYPE sb_lat_seconds histogram\n"
	    "sb_lat_seconds_bucket{adapter=\"x\",le=\"0.1\"} 1\n"
	    "sb_lat_seconds_bucket{adapter=\"x\",le=\"1\"} 2\n"
	    "sb_lat_seconds_bucket{adapter=\"x\",le=\"+Inf\"} 3\n"
	    "sb_lat_seconds_sum{adapter=\"x\"} 7.55\n"
	    "sb_lat_seconds_count{adapter=\"x\"} 3\n") != NULL);
	free(out);
	metrics_reset();
}

static void
count_calls(void *arg)
{
	(*(int *)arg)++;
}

TEST(render_includes_process_metrics_and_runs_collectors)
{
	static int	 calls;
	char		*out;
	double		 rss = 0, start = 0, fds = 0;
	const char	*p;

	metrics_on_collect(count_calls, &calls);
	metrics_on_collect(metrics_collect_process, NULL);
	out = metrics_render();
	CHECK_INT(calls, 1);
	CHECK((p = strstr(out, "\nprocess_resident_memory_bytes ")) != NULL);
	rss = strtod(p + strlen("\nprocess_resident_memory_bytes "), NULL);
	CHECK(rss > 1e5);
	CHECK((p = strstr(out, "\nprocess_start_time_seconds ")) != NULL);
	start = strtod(p + strlen("\nprocess_start_time_seconds "), NULL);
	/* /proc/stat's btime is whole seconds: allow that much. */
	CHECK(start > (double)wall_s() - 3600 && start <= (double)wall_s() + 2);
	CHECK((p = strstr(out, "\nprocess_open_fds ")) != NULL);
	fds = strtod(p + strlen("\nprocess_open_fds "), NULL);
	CHECK(fds >= 3);
	CHECK(strstr(out, "# TYPE process_cpu_seconds_total counter") != NULL);
	free(out);
	metrics_reset();
}

TEST(healthz_fails_after_grace_and_on_health_fail_until_ok)
{
	json_t		*root;
	char		*out;
	int		 http;

	health_set_grace_ms(0);
	health_set("console", "connected");
	out = health_render_status(&http);
	CHECK_INT(http, 200);
	free(out);
	health_set("slack", "connecting");
	out = health_render_status(&http);
	CHECK_INT(http, 503);
	root = json_loads(out, 0, NULL);
	free(out);
	CHECK_STR(json_string_value(json_object_get(root, "status")), "failing");
	CHECK_STR(json_string_value(json_object_get(json_array_get(
	    json_object_get(root, "failing"), 0), "source")), "slack");
	json_decref(root);
	health_set("slack", "connected");
	out = health_render_status(&http);
	CHECK_INT(http, 200);
	free(out);
	/* Within the grace a reconnect is no failure. */
	health_set_grace_ms(60000);
	health_set("slack", "connecting");
	out = health_render_status(&http);
	CHECK_INT(http, 200);
	free(out);
	health_fail("store", "cannot commit: disk I/O error");
	out = health_render_status(&http);
	CHECK_INT(http, 503);
	CHECK(strstr(out, "\"source\":\"store\",\"reason\":\"cannot commit: "
	    "disk I/O error\"") != NULL);
	free(out);
	health_ok("store");
	out = health_render_status(&http);
	CHECK_INT(http, 200);
	CHECK(strstr(out, "\"failing\":[]") != NULL);
	free(out);
	metrics_reset();
}

int
main(void)
{
	RUN(metrics_groups_series_under_one_help_and_type);
	RUN(metrics_registration_is_idempotent_per_name_and_labels);
	RUN(metrics_escapes_help_and_prints_exact_values);
	RUN(health_render_is_json_with_uptime_and_latest_states);
	RUN(histogram_renders_cumulative_buckets_sum_and_count);
	RUN(render_includes_process_metrics_and_runs_collectors);
	RUN(healthz_fails_after_grace_and_on_health_fail_until_ok);
	return t_done();
}
