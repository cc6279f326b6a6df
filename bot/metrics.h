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

/*
 * Histograms (seconds): buckets NULL = the default latency buckets, 5 ms to
 * 10 min, else an ascending list ending with a negative number.  Rendered
 * as NAME_bucket{le=...}, NAME_sum, NAME_count.
 */
struct metric	*metrics_histogram(const char *name, const char *labels,
		    const char *help, const double *buckets);
void		 metrics_observe(struct metric *, double seconds);
uint64_t	 metrics_count(const struct metric *);	/* observations */

/*
 * Collectors run just before each render, to set gauges that are cheaper to
 * read on demand than to keep current (agents by state, outbox depth).
 */
typedef void	(*metrics_collect_fn)(void *arg);
void		 metrics_on_collect(metrics_collect_fn, void *arg);
/* The process_* collector; serve registers it (tests may not want it). */
void		 metrics_collect_process(void *);

/*
 * /healthz.  health_set(): an adapter's state ("connected", "connecting",
 * "stopped: invalid_auth"...); one that is not "connected" for longer than
 * the grace period makes /healthz fail.  health_fail(): any source (the
 * store, a brain) failing now, with a reason, until health_ok(source).
 */
void		 health_set(const char *component, const char *state);
void		 health_fail(const char *source, const char *reason);
void		 health_ok(const char *source);
void		 health_set_grace_ms(uint64_t);
/*
 * Malloc'd JSON {"status":"ok"|"failing","version":V,"uptime_s":N,
 * "components":{...},"failing":[{"source":S,"reason":R},...]}; *http is
 * 200 or 503.
 */
char		*health_render_status(int *http);
char		*health_render(void);
void		 metrics_reset(void);	/* frees everything (exit, tests) */

#endif
