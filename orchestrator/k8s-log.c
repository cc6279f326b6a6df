/*
 * k8s-log — a turn's output through the log API: followed with timestamps,
 * resumed with sinceTime after a cut (or a restart), lines already seen
 * dropped; and the end of the clone container's log when the clone failed.
 */
#include "orchestrator/k8s-run.h"
#include "bot/log.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- the log ---------------------------------------------------------------- */

/*
 * Compares two RFC 3339 UTC timestamps as the log API writes them
 * (RFC3339Nano: "2026-12-02T07:47:59.7952Z", trailing zeros of the fraction
 * dropped, so not comparable as text): seconds, then the fraction as
 * nanoseconds.
 */
static int
ts_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	long long	 fa = 0, fb = 0;
	size_t		 i;
	int		 c, d;

	if (alen < 19 || blen < 19)
		return alen < blen ? -1 : alen > blen;
	if ((c = memcmp(a, b, 19)) != 0)
		return c;
	for (i = 0, d = 0; d < 9; d++) {
		fa *= 10;
		if (19 + 1 + i < alen && a[19] == '.' && a[20 + i] >= '0' &&
		    a[20 + i] <= '9')
			fa += a[20 + i++] - '0';
	}
	for (i = 0, d = 0; d < 9; d++) {
		fb *= 10;
		if (19 + 1 + i < blen && b[19] == '.' && b[20 + i] >= '0' &&
		    b[20 + i] <= '9')
			fb += b[20 + i++] - '0';
	}
	return fa < fb ? -1 : fa > fb;
}

static void
log_line(const char *p, size_t n, void *arg)
{
	struct run	*r = arg;
	const char	*sp = memchr(p, ' ', n);
	size_t		 tl;
	char		*line;

	if (r->settled)
		return;
	if (sp == NULL || (tl = (size_t)(sp - p)) >= sizeof r->last_ts)
		return;
	/*
	 * After a reconnect with sinceTime (whole seconds on some servers),
	 * lines up to the last one seen come again: drop them.  Within one
	 * stream equal timestamps are distinct lines.
	 */
	if (r->resume_ts[0] != '\0') {
		if (ts_cmp(p, tl, r->resume_ts, strlen(r->resume_ts)) <= 0)
			return;
		r->resume_ts[0] = '\0';
	}
	memcpy(r->last_ts, p, tl);
	r->last_ts[tl] = '\0';
	line = xmalloc(n - tl);
	memcpy(line, sp + 1, n - tl - 1);
	line[n - tl - 1] = '\n';
	r->hooks.output(r->hooks.arg, 1, line, n - tl);
	free(line);
}

static void
log_retry_fired(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (!r->settled)
		krun_log_start(r);
}

static void
log_done(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;
	char		*why;

	r->log = NULL;
	if (r->settled)
		return;
	if (error == NULL && status < 300 && r->terminated) {
		r->log_done = 1;
		krun_maybe_settle(r);
		return;
	}
	if (error != NULL || status >= 300) {
		why = k8s_error(status, obj, error);
		log_debug("agent %lld: log of pod %s: %s", (long long)r->id,
		    r->name, why);
		free(why);
	}
	if (r->pod_done && (status >= 300 || !r->terminated ||
	    ++r->log_retries > 3)) {
		/* Gone, or ended and the server has no more for us. */
		r->log_done = 1;
		krun_maybe_settle(r);
		return;
	}
	/* Cut short, or not yet: again from the last line seen. */
	uv_timer_start(r->log_timer, log_retry_fired, K8S_RETRY_MS / 2, 0);
}

void
krun_log_start(struct run *r)
{
	char	*path, *since = NULL;

	r->log_started = 1;
	if (r->last_ts[0] != '\0') {
		char *q = k8s_qs(r->last_ts);

		memcpy(r->resume_ts, r->last_ts, sizeof r->resume_ts);
		since = xasprintf("&sinceTime=%s", q);
		free(q);
	}
	path = xasprintf("/api/v1/namespaces/%s/pods/%s/log?container="
	    K8S_CONTAINER "&follow=true&timestamps=true%s", r->ns, r->name,
	    since != NULL ? since : "");
	r->log = k8s_stream(r->k, path, log_line, log_done, r);
	free(path);
	free(since);
}

/*
 * The clone failed (no such branch on the remote, refused credentials, an
 * unreachable remote): the turn's start error is what git said, from the
 * last lines of the clone container's log.
 */
static void
clone_log_line(const char *p, size_t n, void *arg)
{
	struct run	*r = arg;

	if (r->clone_out == NULL)
		r->clone_out = xcalloc(1, 1);
	if (strlen(r->clone_out) < 2048) {
		char *t = xasprintf("%s%s%.*s", r->clone_out,
		    *r->clone_out ? "; " : "", (int)n, p);
		free(r->clone_out);
		r->clone_out = t;
	}
}

static void
clone_log_done(long status, json_t *obj, const char *error, void *arg)
{
	struct run	*r = arg;

	r->log = NULL;
	if (r->settled)
		return;
	r->error = xasprintf("the pod could not clone the agent's branch "
	    "(exit %d)%s%s", r->clone_rc, r->clone_out != NULL ? ": " : "",
	    r->clone_out != NULL ? r->clone_out : "");
	log_warnx("agent %lld: %s", (long long)r->id, r->error);
	r->log_done = 1;
	krun_maybe_settle(r);
}

void
krun_clone_log(struct run *r, int rc)
{
	char	*path;

	r->clone_rc = rc;
	r->log_started = 1;
	path = xasprintf("/api/v1/namespaces/%s/pods/%s/log?container=clone&"
	    "tailLines=5", r->ns, r->name);
	r->log = k8s_stream(r->k, path, clone_log_line, clone_log_done, r);
	free(path);
}

