/*
 * metrics — counters and gauges for GET /metrics (Prometheus text format) and
 * component states for GET /healthz.
 *
 * Modules register once at start and keep the returned pointer; updating is a
 * plain add.  Names follow Prometheus rules (switchboard_..._total for counters).
 * Labels are baked into the registration (one series per registration).
 */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include <stdint.h>

struct metric;

/* labels: "" or e.g. "adapter=\"slack\"" (already formatted). Idempotent per name+labels. */
struct metric	*metrics_counter(const char *name, const char *labels, const char *help);
struct metric	*metrics_gauge(const char *name, const char *labels, const char *help);
void		 metrics_inc(struct metric *);
void		 metrics_add(struct metric *, double);
void		 metrics_set(struct metric *, double);
double		 metrics_value(const struct metric *);
/* Malloc'd Prometheus exposition text. */
char		*metrics_render(void);

/* /healthz: component ("slack", "console", ...) → state ("connected", ...). */
void		 health_set(const char *component, const char *state);
/* Malloc'd JSON: {"status":"ok","uptime_s":N,"components":{...}} */
char		*health_render(void);
void		 metrics_reset(void);	/* frees everything (exit, tests) */

#endif
