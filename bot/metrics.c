#include "bot/metrics.h"
#include "bot/util.h"
#include "bot/version.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct metric {
	char			*name;
	char			*labels;
	char			*help;
	enum metric_type	 type;
	double			 value;
	struct metric		*next;
};

struct component {
	char			*name;
	char			*state;
	struct component	*next;
};

/* Registration order is render order, so the output is stable. */
static struct metric	*metrics_head, **metrics_tail = &metrics_head;
static struct component	*components_head, **components_tail = &components_head;
static uint64_t		 start_ms;

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

char *
metrics_render(void)
{
	struct buf	 b = { 0 };
	struct metric	*m, *first, *s;

	metrics_touch();
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
		    m->type == METRIC_COUNTER ? "counter" : "gauge");
		for (s = m; s != NULL; s = s->next) {
			if (strcmp(s->name, m->name) != 0)
				continue;
			if (s->labels[0] != '\0')
				buf_printf(&b, "%s{%s} ", s->name, s->labels);
			else
				buf_printf(&b, "%s ", s->name);
			metrics_add_value(&b, s->value);
		}
	}
	return buf_steal(&b);
}

void
health_set(const char *component, const char *state)
{
	struct component	*c;

	metrics_touch();
	for (c = components_head; c != NULL; c = c->next) {
		if (strcmp(c->name, component) == 0) {
			free(c->state);
			c->state = xstrdup(state);
			return;
		}
	}
	c = xcalloc(1, sizeof *c);
	c->name = xstrdup(component);
	c->state = xstrdup(state);
	*components_tail = c;
	components_tail = &c->next;
}

char *
health_render(void)
{
	struct component	*c;
	json_t			*comps, *root;
	char			*out, *s;

	metrics_touch();
	comps = json_object();
	for (c = components_head; c != NULL; c = c->next)
		json_object_set_new(comps, c->name, json_string(c->state));
	root = json_pack("{s:s, s:s, s:I, s:o}", "status", "ok",
	    "version", sb_version,
	    "uptime_s", (json_int_t)((now_ms() - start_ms) / 1000),
	    "components", comps);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s == NULL)
		return xstrdup("{\"status\":\"ok\"}");
	/* jansson allocates with its own malloc; hand back ours. */
	out = xstrdup(s);
	free(s);
	return out;
}

void
metrics_reset(void)
{
	struct metric		*m;
	struct component	*c;

	while ((m = metrics_head) != NULL) {
		metrics_head = m->next;
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
	start_ms = 0;
}
