/*
 * driver-version — at start, which Claude Code / Codex is installed: each
 * configured program's `--version` is run once, asynchronously on the loop,
 * logged, and compared with the version the tests cover (the driver's
 * tested_version).  A CLI older than that is a warning, not an error: it may
 * work, but its stream or flags may differ from what the driver expects
 * (e.g. Codex before default_tools_approval_mode cannot run our tools).
 *
 * A check that does not finish within CHECK_MS is killed; a check still
 * running at shutdown is killed too, so it never holds the loop open.
 */
#include "orchestrator/driver.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CHECK_MS	15000
#define OUT_MAX		512

struct vcheck {
	uv_process_t	 proc;
	uv_pipe_t	 out;
	uv_timer_t	 timer;
	int		 open;		/* handles not yet closed */
	int		 exited;
	int64_t		 status;
	char		*agent, *program, *want;
	char		 buf[OUT_MAX];
	size_t		 len;
	struct vcheck	*next;
};

static struct vcheck	*checks;
static int		 hooked;

/* Leading "1.2.3" of the first word that starts with a digit. */
static const char *
version_in(const char *s)
{
	for (; *s != '\0'; s++)
		if (isdigit((unsigned char)*s) && (s[1] == '.' ||
		    isdigit((unsigned char)s[1])))
			return s;
	return NULL;
}

int
driver_version_cmp(const char *output, const char *want)
{
	const char	*a = version_in(output), *b = version_in(want);
	char		*ea, *eb;
	long		 x, y;

	if (a == NULL || b == NULL)
		return a == NULL ? -1 : 1;
	for (;;) {
		x = strtol(a, &ea, 10);
		y = strtol(b, &eb, 10);
		if (x != y)
			return x < y ? -1 : 1;
		if (*ea != '.' || *eb != '.')
			return (*ea == '.') - (*eb == '.');
		a = ea + 1;
		b = eb + 1;
		if (!isdigit((unsigned char)*a) || !isdigit((unsigned char)*b))
			return 0;
	}
}

static void
unlink_check(struct vcheck *c)
{
	struct vcheck	**pp;

	for (pp = &checks; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

static void
on_close(uv_handle_t *h)
{
	struct vcheck	*c = h->data;

	if (--c->open > 0)
		return;
	free(c->agent);
	free(c->program);
	free(c->want);
	free(c);
}

static void
report(struct vcheck *c)
{
	char	*nl;

	c->buf[c->len] = '\0';
	if ((nl = strchr(c->buf, '\n')) != NULL)
		*nl = '\0';
	if (c->status != 0 || c->buf[0] == '\0')
		log_warnx("agent %s: `%s --version` failed (exit %lld%s%s);"
		    " is it installed?", c->agent, c->program,
		    (long long)c->status, c->buf[0] != '\0' ? "): " : "",
		    c->buf[0] != '\0' ? c->buf : ")");
	else if (driver_version_cmp(c->buf, c->want) < 0)
		log_warnx("agent %s: %s is %s, older than %s, the oldest"
		    " version switchboard was tested with", c->agent,
		    c->program, c->buf, c->want);
	else
		log_info("agent %s: %s is %s (tested with %s)", c->agent,
		    c->program, c->buf, c->want);
}

static void
finish(struct vcheck *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->out) || !c->exited)
		return;
	report(c);
	unlink_check(c);
	uv_close((uv_handle_t *)&c->proc, on_close);
	uv_close((uv_handle_t *)&c->timer, on_close);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct vcheck	*c = h->data;

	(void)hint;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(OUT_MAX - 1 - c->len));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct vcheck	*c = s->data;

	(void)b;
	if (n > 0) {
		c->len += (size_t)n;
		if (c->len < OUT_MAX - 1)
			return;
	} else if (n == 0)
		return;
	uv_read_stop(s);
	uv_close((uv_handle_t *)s, on_close);
	finish(c);
}

static void
on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct vcheck	*c = p->data;

	c->exited = 1;
	c->status = sig != 0 ? 128 + sig : status;
	uv_timer_stop(&c->timer);
	finish(c);
}

static void
on_timeout(uv_timer_t *t)
{
	struct vcheck	*c = t->data;

	log_warnx("agent %s: `%s --version` did not answer in %d s",
	    c->agent, c->program, CHECK_MS / 1000);
	uv_process_kill(&c->proc, SIGKILL);
}

static void
on_shutdown(void *arg)
{
	struct vcheck	*c;

	(void)arg;
	hooked = 0;		/* the loop forgets its hooks when freed */
	for (c = checks; c != NULL; c = c->next)
		if (!c->exited)
			uv_process_kill(&c->proc, SIGKILL);
}

static void
start_check(const struct cfg_agent *a, const struct agent_driver *drv)
{
	uv_process_options_t	 o = { 0 };
	uv_stdio_container_t	 io[3];
	struct vcheck		*c;
	char			**argv;
	size_t			 i, n = a->ncommand > 0 ? a->ncommand : 1;
	int			 rc;

	argv = xcalloc(n + 2, sizeof *argv);
	for (i = 0; i < a->ncommand; i++)
		argv[i] = a->command[i];
	if (a->ncommand == 0)
		argv[0] = (char *)drv->name;	/* "claude", "codex" */
	argv[n] = "--version";
	c = xcalloc(1, sizeof *c);
	c->agent = xstrdup(a->name);
	c->program = xstrdup(argv[0]);
	c->want = xstrdup(drv->tested_version);
	uv_pipe_init(loop_uv(), &c->out, 0);
	uv_timer_init(loop_uv(), &c->timer);
	c->out.data = c->timer.data = c->proc.data = c;
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)&c->out;
	io[2].flags = UV_IGNORE;
	o.file = argv[0];
	o.args = argv;
	o.stdio = io;
	o.stdio_count = 3;
	o.exit_cb = on_exit_cb;
	rc = uv_spawn(loop_uv(), &c->proc, &o);
	free(argv);
	if (rc != 0) {
		log_warnx("agent %s: cannot run `%s --version`: %s", c->agent,
		    c->program, uv_strerror(rc));
		/* libuv initialised the handle anyway: close it too. */
		c->open = 3;
		uv_close((uv_handle_t *)&c->proc, on_close);
		uv_close((uv_handle_t *)&c->out, on_close);
		uv_close((uv_handle_t *)&c->timer, on_close);
		return;
	}
	c->open = 3;
	c->next = checks;
	checks = c;
	uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read);
	uv_timer_start(&c->timer, on_timeout, CHECK_MS, 0);
}

void
driver_check_versions(const struct config *cfg)
{
	const struct agent_driver	*drv;
	size_t				 i;

	if (!hooked) {
		loop_on_shutdown(on_shutdown, NULL);
		hooked = 1;
	}
	for (i = 0; i < cfg->nagents; i++) {
		drv = driver_lookup(cfg->agents[i].driver);
		if (drv != NULL && drv->tested_version != NULL)
			start_check(&cfg->agents[i], drv);
	}
}
