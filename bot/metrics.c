#include "bot/metrics.h"
#include "bot/util.h"
#include "bot/version.h"

#include <sys/resource.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric {
	char			*name;
	char			*labels;
	char			*help;
	enum metric_type	 type;
	double			 value;		/* histogram: the sum */
	double			*bounds;	/* histogram upper bounds */
	uint64_t		*counts;	/* per bound, not cumulative */
	size_t			 nbounds;
	uint64_t		 count;
	struct metric		*next;
};

struct component {
	char			*name;
	char			*state;
	uint64_t		 bad_since;	/* 0 = connected */
	int			 failing;	/* health_fail() source */
	struct component	*next;
};

struct collector {
	metrics_collect_fn	 fn;
	void			*arg;
	struct collector	*next;
};

/* Registration order is render order, so the output is stable. */
static struct metric	*metrics_head, **metrics_tail = &metrics_head;
static struct component	*components_head, **components_tail = &components_head;
static struct collector	*collectors;
static uint64_t		 start_ms;
static uint64_t		 grace_ms = 60000;

/* Prometheus client defaults stretched to agent runs (10 min). */
static const double default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, -1 };

/* Uptime counts from the first use, which main makes at startup. */
static void
metrics_touch(void)
{
	if (start_ms == 0)
		start_ms = now_ms();
}

static struct metric *
metrics_register(const char *name, const char *labels, const char *help,
    enum metric_type type)
{
	struct metric	*m;

	metrics_touch();
	if (labels == NULL)
		labels = "";
	for (m = metrics_head; m != NULL; m = m->next) {
		if (strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0)
			return m;
	}
	m = xcalloc(1, sizeof *m);
	m->name = xstrdup(name);
	m->labels = xstrdup(labels);
	m->help = xstrdup(help != NULL ? help : "");
	m->type = type;
	*metrics_tail = m;
	metrics_tail = &m->next;
	return m;
}

struct metric *
metrics_counter(const char *name, const char *labels, const char *help)
{
	return metrics_register(name, labels, help, METRIC_COUNTER);
}

struct metric *
metrics_gauge(const char *name, const char *labels, const char *help)
{
	return metrics_register(name, labels, help, METRIC_GAUGE);
}

struct metric *
metrics_histogram(const char *name, const char *labels, const char *help,
    const double *buckets)
{
	struct metric	*m;
	size_t		 n;

	m = metrics_register(name, labels, help, METRIC_HISTOGRAM);
	if (m->bounds != NULL)
		return m;
	if (buckets == NULL)
		buckets = default_buckets;
	for (n = 0; buckets[n] >= 0; n++)
		;
	m->bounds = xcalloc(n, sizeof *m->bounds);
	memcpy(m->bounds, buckets, n * sizeof *m->bounds);
	m->counts = xcalloc(n, sizeof *m->counts);
	m->nbounds = n;
	return m;
}

void
metrics_observe(struct metric *m, double v)
{
	size_t	 i;

	for (i = 0; i < m->nbounds; i++) {
		if (v <= m->bounds[i]) {
			m->counts[i]++;
			break;
		}
	}
	m->count++;
	m->value += v;
}

uint64_t
metrics_count(const struct metric *m)
{
	return m->count;
}

void
metrics_on_collect(metrics_collect_fn fn, void *arg)
{
	struct collector	*c;

	for (c = collectors; c != NULL; c = c->next)
		if (c->fn == fn && c->arg == arg)
			return;
	c = xcalloc(1, sizeof *c);
	c->fn = fn;
	c->arg = arg;
	c->next = collectors;
	collectors = c;
}

void
metrics_inc(struct metric *m)
{
	m->value += 1;
}

void
metrics_add(struct metric *m, double v)
{
	m->value += v;
}

void
metrics_set(struct metric *m, double v)
{
	m->value = v;
}

double
metrics_value(const struct metric *m)
{
	return m->value;
}

/* HELP text escapes only backslash and newline (exposition format 0.0.4). */
static void
metrics_add_help(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_adds(b, "\\\\");
		else if (*s == '\n')
			buf_adds(b, "\\n");
		else
			buf_add(b, s, 1);
	}
}

/* Shortest of %.15g / %.17g that reads back exactly: "3", "0.1". */
static void
metrics_add_value(struct buf *b, double v)
{
	char	 tmp[64];

	snprintf(tmp, sizeof tmp, "%.15g", v);
	if (strtod(tmp, NULL) != v)
		snprintf(tmp, sizeof tmp, "%.17g", v);
	buf_printf(b, "%s\n", tmp);
}

static void
render_histogram(struct buf *b, const struct metric *m)
{
	const char	*sep = m->labels[0] != '\0' ? "," : "";
	uint64_t	 cum = 0;
	size_t		 i;

	for (i = 0; i < m->nbounds; i++) {
		cum += m->counts[i];
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->name,
		    m->labels, sep, m->bounds[i], (unsigned long long)cum);
	}
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->name, m->labels,
	    sep, (unsigned long long)m->count);
	if (m->labels[0] != '\0')
		buf_printf(b, "%s_sum{%s} ", m->name, m->labels);
	else
		buf_printf(b, "%s_sum ", m->name);
	metrics_add_value(b, m->value);
	if (m->labels[0] != '\0')
		buf_printf(b, "%s_count{%s} %llu\n", m->name, m->labels,
		    (unsigned long long)m->count);
	else
		buf_printf(b, "%s_count %llu\n", m->name,
		    (unsigned long long)m->count);
}

/*
 * The standard process_* metrics from /proc/self, as the Prometheus client
 * libraries export them.
 */
void
metrics_collect_process(void *arg)
{
	static long	 ticks, page;
	static double	 btime;
	unsigned long	 utime = 0, stime = 0;
	unsigned long long start = 0;
	unsigned long	 vsz = 0;
	long		 rss = 0;
	char		 buf[4096], *p;
	FILE		*f;
	DIR		*d;
	struct dirent	*de;
	int		 nfd = 0;
	struct rlimit	 rl;

	if (ticks == 0) {
		ticks = sysconf(_SC_CLK_TCK);
		page = sysconf(_SC_PAGESIZE);
		if ((f = fopen("/proc/stat", "r")) != NULL) {
			while (fgets(buf, sizeof buf, f) != NULL)
				if (sscanf(buf, "btime %lf", &btime) == 1)
					break;
			fclose(f);
		}
	}
	if ((f = fopen("/proc/self/stat", "r")) != NULL) {
		/* Fields after the command name, which may hold spaces. */
		if (fgets(buf, sizeof buf, f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			    "%*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld",
			    &utime, &stime, &start, &vsz, &rss);
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL)
			nfd += de->d_name[0] != '.';
		closedir(d);
		nfd--;	/* the one opendir holds */
	}
	metrics_set(metrics_counter("process_cpu_seconds_total", "",
	    "Total user and system CPU time spent in seconds."),
	    (double)(utime + stime) / ticks);
	metrics_set(metrics_gauge("process_resident_memory_bytes", "",
	    "Resident memory size in bytes."), (double)rss * page);
	metrics_set(metrics_gauge("process_virtual_memory_bytes", "",
	    "Virtual memory size in bytes."), (double)vsz);
	metrics_set(metrics_gauge("process_open_fds", "",
	    "Number of open file descriptors."), nfd);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_set(metrics_gauge("process_max_fds", "",
		    "Maximum number of open file descriptors."),
		    (double)rl.rlim_cur);
	metrics_set(metrics_gauge("process_start_time_seconds", "",
	    "Start time of the process since unix epoch in seconds."),
	    btime + (double)start / ticks);
}

char *
metrics_render(void)
{
	struct buf		 b = { 0 };
	struct metric		*m, *first, *s;
	struct collector	*c;

	metrics_touch();
	for (c = collectors; c != NULL; c = c->next)
		c->fn(c->arg);
	/*
	 * Prometheus wants all series of one name together under a single
	 * HELP/TYPE pair, whatever order modules registered them in.
	 */
	for (m = metrics_head; m != NULL; m = m->next) {
		for (first = metrics_head; first != m; first = first->next) {
			if (strcmp(first->name, m->name) == 0)
				break;
		}
		if (first != m)
			continue;	/* already written with its group */
		buf_printf(&b, "# HELP %s ", m->name);
		metrics_add_help(&b, m->help);
		buf_printf(&b, "\n# TYPE %s %s\n", m->name,
		    m->type == METRIC_COUNTER ? "counter" :
		    m->type == METRIC_GAUGE ? "gauge" : "histogram");
		for (s = m; s != NULL; s = s->next) {
			if (strcmp(s->name, m->name) != 0)
				continue;
			if (s->type == METRIC_HISTOGRAM) {
				render_histogram(&b, s);
				continue;
			}
			if (s->labels[0] != '\0')
				buf_printf(&b, "%s{%s} ", s->name, s->labels);
			else
				buf_printf(&b, "%s ", s->name);
			metrics_add_value(&b, s->value);
		}
	}
	return buf_steal(&b);
}

static struct component *
component_get(const char *name, int failing)
{
	struct component	*c;

	metrics_touch();
	for (c = components_head; c != NULL; c = c->next)
		if (c->failing == failing && strcmp(c->name, name) == 0)
			return c;
	c = xcalloc(1, sizeof *c);
	c->name = xstrdup(name);
	c->failing = failing;
	*components_tail = c;
	components_tail = &c->next;
	return c;
}

void
health_set(const char *component, const char *state)
{
	struct component	*c = component_get(component, 0);

	free(c->state);
	c->state = xstrdup(state);
	/* The grace runs from the first moment it stopped being connected. */
	if (strcmp(state, "connected") == 0)
		c->bad_since = 0;
	else if (c->bad_since == 0)
		c->bad_since = now_ms();
}

void
health_fail(const char *source, const char *reason)
{
	struct component	*c = component_get(source, 1);

	free(c->state);
	c->state = xstrdup(reason);
}

void
health_ok(const char *source)
{
	struct component	*c = component_get(source, 1);

	free(c->state);
	c->state = NULL;
}

void
health_set_grace_ms(uint64_t ms)
{
	grace_ms = ms;
}

char *
health_render_status(int *http)
{
	struct component	*c;
	json_t			*comps, *fails, *root;
	char			*out, *s, *why;
	uint64_t		 now = now_ms();

	metrics_touch();
	comps = json_object();
	fails = json_array();
	for (c = components_head; c != NULL; c = c->next) {
		if (c->failing) {
			if (c->state != NULL)
				json_array_append_new(fails, json_pack(
				    "{s:s, s:s}", "source", c->name, "reason",
				    c->state));
			continue;
		}
		json_object_set_new(comps, c->name, json_string(c->state));
		if (c->bad_since == 0 || now - c->bad_since < grace_ms)
			continue;
		why = xasprintf("%s for %llu s (grace %llu s)", c->state,
		    (unsigned long long)(now - c->bad_since) / 1000,
		    (unsigned long long)grace_ms / 1000);
		json_array_append_new(fails, json_pack("{s:s, s:s}", "source",
		    c->name, "reason", why));
		free(why);
	}
	*http = json_array_size(fails) > 0 ? 503 : 200;
	root = json_pack("{s:s, s:s, s:I, s:o, s:o}",
	    "status", *http == 200 ? "ok" : "failing",
	    "version", sb_version,
	    "uptime_s", (json_int_t)((now - start_ms) / 1000),
	    "components", comps, "failing", fails);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s == NULL)
		return xstrdup(*http == 200 ? "{\"status\":\"ok\"}" :
		    "{\"status\":\"failing\"}");
	/* jansson allocates with its own malloc; hand back ours. */
	out = xstrdup(s);
	free(s);
	return out;
}

char *
health_render(void)
{
	int	 http;

	return health_render_status(&http);
}

void
metrics_reset(void)
{
	struct metric		*m;
	struct component	*c;

	while ((m = metrics_head) != NULL) {
		metrics_head = m->next;
		free(m->bounds);
		free(m->counts);
		free(m->name);
		free(m->labels);
		free(m->help);
		free(m);
	}
	metrics_tail = &metrics_head;
	while ((c = components_head) != NULL) {
		components_head = c->next;
		free(c->name);
		free(c->state);
		free(c);
	}
	components_tail = &components_head;
	while (collectors != NULL) {
		struct collector *n = collectors->next;

		free(collectors);
		collectors = n;
	}
	start_ms = 0;
	grace_ms = 60000;
}
