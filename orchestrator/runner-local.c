/*
 * runner-local — an agent's turn as a child process of ours, in a libgit2
 * worktree on this host.
 *
 * The child leads its own session (UV_PROCESS_DETACHED), so signals go to
 * its whole process group; in a bubblewrap sandbox (sandbox.h, on by
 * default) its own PID namespace takes the whole tree down with it.  Its end is reported once both its exit status
 * is known and its stdout/stderr are closed; when a detached grandchild
 * keeps them open after the child exited, they are closed after
 * RUN_DRAIN_S so the turn can settle.
 */
#include "orchestrator/runner.h"
#include "orchestrator/driver.h"
#include "orchestrator/sandbox.h"
#include "orchestrator/warm.h"
#include "orchestrator/worktree.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* Seconds to wait for output after the process exited. */
#define RUN_DRAIN_S	2

struct run {
	int64_t			 id;		/* agent id, for logs */
	struct run_hooks	 hooks;
	uv_process_t		 proc;
	uv_pipe_t		 in, out, err;
	uv_timer_t		 kill_timer, drain_timer;
	int			 has_in, in_open, out_open, err_open;
	int			 proc_open;
	int			 open;		/* handles not yet closed */
	int			 pid;		/* 0 once it exited */
	int			 sandboxed;	/* pid is the sandbox's outer bwrap */
	int			 exited;	/* exit_cb ran (or never will) */
	int64_t			 status;
	int			 term_signal;
	char			*error;		/* could not start */
	int			 kill_stage;	/* 0: first signal sent, 1: SIGTERM */
	int			 first_signal, grace_s;
	int			 abandoned;	/* hooks never called again */
	int			 timers_closing;
};

/* Process groups sent SIGTERM at shutdown, for runner_kill_survivors(). */
static int	 survivors[256];
static size_t	 nsurvivors;

static void	run_maybe_settle(struct run *);

static void
kill_group(struct run *r, int sig)
{
	if (r->pid > 0 && sandbox_kill(r->pid, r->sandboxed, sig) == -1 &&
	    errno != ESRCH)
		log_warn("agent %lld: kill(-%d, %d)", (long long)r->id, r->pid,
		    sig);
}

/*
 * Every handle of a run closes through here.  The last one settles the run
 * (its end reported once, unless abandoned) and frees it.
 */
static void
closed_cb(uv_handle_t *h)
{
	struct run	*r = h->data;

	if (--r->open > 0) {
		run_maybe_settle(r);
		return;
	}
	if (!r->abandoned)
		r->hooks.exited(r->hooks.arg, r->status, r->term_signal,
		    r->error);
	free(r->error);
	free(r);
}

static void
close_one(struct run *r, uv_handle_t *h, int *flag)
{
	if (*flag) {
		*flag = 0;
		uv_close(h, closed_cb);
	}
}

static void
close_timers(struct run *r)
{
	if (r->timers_closing)
		return;
	r->timers_closing = 1;
	uv_timer_stop(&r->kill_timer);
	uv_timer_stop(&r->drain_timer);
	uv_close((uv_handle_t *)&r->kill_timer, closed_cb);
	uv_close((uv_handle_t *)&r->drain_timer, closed_cb);
}

/* Process gone and both output pipes closed: the timers go last. */
static void
run_maybe_settle(struct run *r)
{
	if (!r->exited || r->out_open || r->err_open || r->proc_open)
		return;
	close_one(r, (uv_handle_t *)&r->in, &r->in_open);
	close_timers(r);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char	 slab[65536];

	(void)h; (void)hint;
	buf->base = slab;
	buf->len = sizeof slab;
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct run	*r = s->data;
	int		 stream = (uv_pipe_t *)s == &r->out ? 1 : 2;

	if (nread < 0) {
		if (nread != UV_EOF)
			log_warnx("agent %lld: read: %s", (long long)r->id,
			    uv_strerror((int)nread));
		close_one(r, (uv_handle_t *)(uv_pipe_t *)s, stream == 1 ? &r->out_open :
		    &r->err_open);
		return;
	}
	if (nread > 0 && !r->abandoned)
		r->hooks.output(r->hooks.arg, stream, buf->base, (size_t)nread);
}

/*
 * The child is gone but its stdout/stderr are still open: a grandchild in
 * a session of its own holds them.  Its output is not ours to wait for.
 */
static void
drain_timer_fired(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (!r->out_open && !r->err_open)
		return;
	log_warnx("agent %lld: output still open %d s after the process"
	    " exited (a detached child holds it); closing", (long long)r->id,
	    RUN_DRAIN_S);
	close_one(r, (uv_handle_t *)&r->out, &r->out_open);
	close_one(r, (uv_handle_t *)&r->err, &r->err_open);
}

static void
exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct run	*r = p->data;

	r->status = status;
	r->term_signal = sig;
	log_info("agent %lld: process %d exited (status %lld, signal %d)",
	    (long long)r->id, r->pid, (long long)status, sig);
	/* Stragglers in its group (background jobs) end with the agent. */
	kill_group(r, SIGTERM);
	r->pid = 0;
	r->exited = 1;
	uv_timer_stop(&r->kill_timer);
	if (r->has_in)
		close_one(r, (uv_handle_t *)&r->in, &r->in_open);
	if (r->proc_open) {
		r->proc_open = 0;
		uv_close((uv_handle_t *)&r->proc, closed_cb);
	}
	if (r->out_open || r->err_open)
		uv_timer_start(&r->drain_timer, drain_timer_fired,
		    RUN_DRAIN_S * 1000, 0);
}

static struct run *
local_start(const struct run_spec *spec, const struct run_hooks *hooks)
{
	uv_process_options_t	 opts = { 0 };
	uv_stdio_container_t	 stdio[3];
	struct run		*r;
	char			**argv, *cause = NULL;
	size_t			 n;
	int			 rc;

	r = xcalloc(1, sizeof *r);
	r->id = spec->agent_id;
	r->hooks = *hooks;
	r->proc.data = r->in.data = r->out.data = r->err.data = r;
	r->kill_timer.data = r->drain_timer.data = r;
	uv_timer_init(loop_uv(), &r->kill_timer);
	uv_timer_init(loop_uv(), &r->drain_timer);
	uv_pipe_init(loop_uv(), &r->out, 0);
	uv_pipe_init(loop_uv(), &r->err, 0);
	r->open = 4;	/* 2 timers + 2 output pipes */
	r->out_open = r->err_open = 1;
	if (spec->stdin_pipe) {
		uv_pipe_init(loop_uv(), &r->in, 0);
		r->has_in = r->in_open = 1;
		r->open++;
		stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
		stdio[0].data.stream = (uv_stream_t *)&r->in;
	} else
		stdio[0].flags = UV_IGNORE;	/* libuv opens /dev/null */
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&r->err;

	/* Our own copy: the sandbox wraps it in bwrap's argv. */
	for (n = 0; spec->argv[n] != NULL; n++)
		;
	argv = xcalloc(n + 1, sizeof *argv);
	while (n-- > 0)
		argv[n] = xstrdup(spec->argv[n]);
	rc = spec->agent != NULL ? sandbox_wrap(&argv, spec->agent, r->id,
	    spec->cwd, &r->sandboxed, &cause) : 0;

	opts.file = argv[0];
	opts.args = argv;
	opts.env = (char **)spec->env;
	opts.cwd = spec->cwd;
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio_count = 3;
	opts.stdio = stdio;
	opts.exit_cb = exit_cb;

	if (rc == 0) {
		r->open++;	/* the process handle, closed on exit or failure */
		r->proc_open = 1;
		rc = uv_spawn(loop_uv(), &r->proc, &opts);
		if (rc != 0) {
			/* uv_spawn initialised it: it is closed all the same. */
			r->proc_open = 0;
			uv_close((uv_handle_t *)&r->proc, closed_cb);
			r->error = xasprintf("cannot start %s: %s",
			    spec->argv[0], uv_strerror(rc));
		}
	} else
		r->error = xasprintf("cannot sandbox %s: %s", spec->argv[0],
		    cause);
	free(cause);
	if (rc != 0) {
		driver_argv_free(argv);
		r->status = 127;
		r->exited = 1;
		log_warnx("agent %lld: %s", (long long)r->id, r->error);
		/* Settles from the close callbacks, on a later loop turn. */
		if (r->has_in)
			close_one(r, (uv_handle_t *)&r->in, &r->in_open);
		close_one(r, (uv_handle_t *)&r->out, &r->out_open);
		close_one(r, (uv_handle_t *)&r->err, &r->err_open);
		return r;
	}
	driver_argv_free(argv);
	r->pid = r->proc.pid;
	uv_read_start((uv_stream_t *)&r->out, alloc_cb, read_cb);
	uv_read_start((uv_stream_t *)&r->err, alloc_cb, read_cb);
	log_info("agent %lld: started %s (pid %d) in %s", (long long)r->id,
	    spec->argv[0], r->pid, spec->cwd);
	return r;
}

static void
write_done(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

static int
local_write(struct run *r, const char *text)
{
	uv_write_t	*w;
	uv_buf_t	 b;
	char		*line;

	if (!r->in_open || r->abandoned)
		return -1;
	line = xasprintf("%s\n", text);
	w = xcalloc(1, sizeof *w);
	w->data = line;
	b = uv_buf_init(line, (unsigned)strlen(line));
	if (uv_write(w, (uv_stream_t *)&r->in, &b, 1, write_done) != 0) {
		free(line);
		free(w);
		return -1;
	}
	return 0;
}

/*
 * The escalation after a driver's polite stop signal: SIGTERM (if the first
 * signal was something gentler, e.g. SIGINT for Claude Code, which then
 * ends its turn cleanly), then SIGKILL, one grace period apart.
 */
static void
kill_timer_fired(uv_timer_t *t)
{
	struct run	*r = t->data;

	if (r->kill_stage == 0 && r->first_signal != SIGTERM) {
		r->kill_stage = 1;
		log_warnx("agent %lld: still alive after signal %d, sending"
		    " SIGTERM", (long long)r->id, r->first_signal);
		kill_group(r, SIGTERM);
		uv_timer_start(&r->kill_timer, kill_timer_fired,
		    (uint64_t)r->grace_s * 1000, 0);
		return;
	}
	log_warnx("agent %lld: still alive after SIGTERM, sending SIGKILL",
	    (long long)r->id);
	kill_group(r, SIGKILL);
}

static void
local_stop(struct run *r, int first_signal, int grace_s)
{
	if (r->pid <= 0 || r->abandoned)
		return;
	r->kill_stage = 0;
	r->first_signal = first_signal != 0 ? first_signal : SIGTERM;
	r->grace_s = grace_s;
	kill_group(r, r->first_signal);
	uv_timer_start(&r->kill_timer, kill_timer_fired,
	    (uint64_t)grace_s * 1000, 0);
}

static int
local_pid(const struct run *r)
{
	return r->pid;
}

static void
local_abandon(struct run *r)
{
	if (r->pid > 0) {
		kill_group(r, SIGTERM);
		if (nsurvivors < nitems(survivors))
			survivors[nsurvivors++] = r->pid;
	}
	r->abandoned = 1;
	/* Handles close with the loop; the last close frees r. */
	if (r->proc_open) {
		r->proc_open = 0;
		uv_close((uv_handle_t *)&r->proc, closed_cb);
	}
	close_one(r, (uv_handle_t *)&r->in, &r->in_open);
	close_one(r, (uv_handle_t *)&r->out, &r->out_open);
	close_one(r, (uv_handle_t *)&r->err, &r->err_open);
	close_timers(r);
}

int
runner_survivors_alive(void)
{
	size_t	 i;

	for (i = 0; i < nsurvivors; i++)
		if (survivors[i] > 0 && kill(-survivors[i], 0) == 0)
			return 1;
	/* Pods being deleted at shutdown: wait for the API's answer. */
	return runner_k8s_deleting() > 0;
}

void
runner_kill_survivors(void)
{
	size_t	 i;

	for (i = 0; i < nsurvivors; i++) {
		if (survivors[i] > 0 && kill(-survivors[i], 0) == 0) {
			log_warnx("agent process group %d ignored SIGTERM;"
			    " sending SIGKILL", survivors[i]);
			kill(-survivors[i], SIGKILL);
		}
	}
	nsurvivors = 0;
	runner_k8s_shutdown();
}

/* ---- orphans of an earlier daemon ---------------------------------------- */

/* Is pid still agent id?  Its environment says so (pids are reused). */
static int
pid_is_agent(int pid, int64_t id)
{
	char	 path[64], want[64], *buf = NULL;
	FILE	*fp;
	size_t	 n, cap = 0, len = 0, wl;
	int	 found = 0;

	if (pid <= 0 || kill(pid, 0) == -1)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	wl = (size_t)snprintf(want, sizeof want, "SWITCHBOARD_AGENT_ID=%lld",
	    (long long)id);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	do {
		cap += 4096;
		buf = xrealloc(buf, cap + 1);
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0 && len < (1 << 20));
	fclose(fp);
	for (n = 0; n < len; n += strnlen(buf + n, len - n) + 1)
		if (strnlen(buf + n, len - n) == wl &&
		    memcmp(buf + n, want, wl) == 0)
			found = 1;
	free(buf);
	return found;
}

struct orphan {
	uv_timer_t	 timer;
	int		 pid;
	int64_t		 id;
};

static void
orphan_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
orphan_timer_fired(uv_timer_t *t)
{
	struct orphan	*o = t->data;

	/* Checked again: after the grace period the pid may be another's. */
	if (pid_is_agent(o->pid, o->id) || kill(-o->pid, 0) == 0) {
		log_warnx("agent %lld: orphaned process group %d ignored"
		    " SIGTERM; sending SIGKILL", (long long)o->id, o->pid);
		kill(-o->pid, SIGKILL);
		kill(o->pid, SIGKILL);
	}
	uv_close((uv_handle_t *)t, orphan_closed);
}

/*
 * An earlier daemon's agent still running: SIGTERM its group now, SIGKILL
 * after grace_s if it lingers.  The group id is the pid we recorded (the
 * child led its own session), so the group check stays valid even when the
 * leader is gone and a straggler holds it.
 */
static void
local_reap_orphan(int pid, int64_t id, int grace_s)
{
	struct orphan	*o;

	if (!pid_is_agent(pid, id))
		return;
	log_info("agent %lld: orphaned process %d, terminating", (long long)id,
	    pid);
	kill(-pid, SIGTERM);
	o = xcalloc(1, sizeof *o);
	o->pid = pid;
	o->id = id;
	o->timer.data = o;
	uv_timer_init(loop_uv(), &o->timer);
	uv_timer_start(&o->timer, orphan_timer_fired,
	    (uint64_t)(grace_s > 0 ? grace_s : 1) * 1000, 0);
	uv_unref((uv_handle_t *)&o->timer);
}

/* ---- the workspace, on the threadpool -------------------------------------- */

enum ws_kind { WS_PREPARE, WS_COLLECT, WS_CLEANUP };

struct ws_job {
	uv_work_t	 work;
	enum ws_kind	 kind;
	ws_done_fn	 done;
	void		*arg;
	/* inputs: copies, nothing of the caller is touched off the loop */
	int64_t		 id;
	char		*repo_path, *base, *state_dir, *task, *worktree, *branch;
	char		*git_name, *git_email, *message;
	char		*warm;		/* prepare: a warm worktree's tag */
	struct ws_result res;
};

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
ws_collect(struct ws_job *j)
{
	struct worktree_stat	 ws = { 0 };
	size_t			 n = 0, total = 0;
	int			 committed = 0;
	char			*cause = NULL;

	/*
	 * Between turns the worktree is unlocked: the retention sweep may
	 * take it once the agent has been idle that long.
	 */
	if (worktree_unlock(j->repo_path, j->id, &cause) != 0) {
		log_debug("agent %lld: unlock: %s", (long long)j->id, cause);
		free(cause);
		cause = NULL;
	}
	if (worktree_commit_leftovers(j->worktree, j->git_name, j->git_email,
	    j->message, &committed, &cause) != 0) {
		j->res.rc = -1;
		j->res.cause = cause;
		return;
	}
	if (worktree_diffstat(j->repo_path, j->base, j->branch, 10, &ws,
	    &cause) != 0) {
		j->res.cause = cause;	/* a missing stat is not fatal */
		return;
	}
	j->res.diffstat = ws.text;
	if (worktree_changed_files(j->worktree, j->base, 20, &j->res.files,
	    &n, &total, &cause) != 0) {
		j->res.cause = cause;
		j->res.files = NULL;
		return;
	}
	/* NULL-terminated for the card renderer. */
	j->res.files = xrealloc(j->res.files, (n + 1) * sizeof *j->res.files);
	j->res.files[n] = NULL;
}

static void
ws_work(uv_work_t *w)
{
	struct ws_job	*j = w->data;

	switch (j->kind) {
	case WS_PREPARE:
		if (j->branch != NULL) {
			/* Its worktree was removed: again, from its branch. */
			j->res.rc = worktree_add_branch(j->repo_path,
			    j->state_dir, j->id, j->branch, &j->res.path,
			    &j->res.cause);
			if (j->res.rc == 0)
				j->res.branch = xstrdup(j->branch);
			break;
		}
		if (j->warm != NULL) {
			j->res.rc = worktree_warm_claim(j->repo_path, j->base,
			    j->state_dir, j->warm, j->id, j->task,
			    &j->res.branch, &j->res.path, &j->res.cause);
			if (j->res.rc == 0)
				break;
			/* It is gone: a checkout of our own, as without. */
			log_warnx("agent %lld: warm worktree %s: %s",
			    (long long)j->id, j->warm, j->res.cause);
			free(j->res.cause);
			j->res.cause = NULL;
		}
		j->res.rc = worktree_add(j->repo_path, j->base, j->state_dir,
		    j->id, j->task, &j->res.branch, &j->res.path,
		    &j->res.cause);
		break;
	case WS_COLLECT:
		ws_collect(j);
		break;
	case WS_CLEANUP:
		/* cleanup #n: the directory goes, the branch stays */
		j->res.rc = worktree_remove(j->repo_path, j->id, &j->res.cause);
		break;
	}
}

static void
ws_after(uv_work_t *w, int status)
{
	struct ws_job	*j = w->data;
	size_t		 i;

	j->done(j->arg, &j->res);
	free(j->repo_path); free(j->base); free(j->state_dir); free(j->task);
	free(j->worktree); free(j->branch); free(j->git_name);
	free(j->git_email); free(j->message); free(j->warm);
	free(j->res.branch); free(j->res.path); free(j->res.cause);
	free(j->res.diffstat);
	for (i = 0; j->res.files != NULL && j->res.files[i] != NULL; i++)
		free(j->res.files[i]);
	free(j->res.files);
	free(j);
}

/* A job from q, not queued yet. */
static struct ws_job *
ws_job_new(enum ws_kind kind, const struct ws_req *q, ws_done_fn done,
    void *arg)
{
	struct ws_job	*j;

	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->kind = kind;
	j->done = done;
	j->arg = arg;
	j->id = q->agent_id;
	j->repo_path = dup_or_null(q->repo_path);
	j->base = dup_or_null(q->base);
	j->state_dir = dup_or_null(q->state_dir);
	j->task = dup_or_null(q->task);
	j->worktree = dup_or_null(q->worktree);
	j->branch = dup_or_null(q->branch);
	j->git_name = dup_or_null(q->git_name);
	j->git_email = dup_or_null(q->git_email);
	j->message = dup_or_null(q->message);
	return j;
}

static void
local_prepare(const struct ws_req *q, ws_done_fn done, void *arg)
{
	struct ws_job	*j;

	j = ws_job_new(WS_PREPARE, q, done, arg);
	/* A new agent (no branch yet) takes a warm worktree if one is ready. */
	if (q->branch == NULL && q->repo_path != NULL && q->base != NULL &&
	    q->state_dir != NULL)
		j->warm = warm_take(q->repo_path, q->base, q->state_dir);
	uv_queue_work(loop_uv(), &j->work, ws_work, ws_after);
}

static void
local_collect(const struct ws_req *q, ws_done_fn done, void *arg)
{
	struct ws_job	*j = ws_job_new(WS_COLLECT, q, done, arg);

	uv_queue_work(loop_uv(), &j->work, ws_work, ws_after);
}

static void
local_cleanup(const struct ws_req *q, ws_done_fn done, void *arg)
{
	struct ws_job	*j = ws_job_new(WS_CLEANUP, q, done, arg);

	uv_queue_work(loop_uv(), &j->work, ws_work, ws_after);
}

const struct runner_ops runner_local = {
	.name = "local",
	.prepare = local_prepare,
	.collect = local_collect,
	.cleanup = local_cleanup,
	.start = local_start,
	.write = local_write,
	.stop = local_stop,
	.pid = local_pid,
	.abandon = local_abandon,
	.reap_orphan = local_reap_orphan,
};

static const struct runner_ops *const runners[] = {
	&runner_local,
	&runner_kubernetes,
	NULL
};

const struct runner_ops *
runner_lookup(const char *name)
{
	size_t	 i;

	for (i = 0; runners[i] != NULL; i++)
		if (strcmp(runners[i]->name, name) == 0)
			return runners[i];
	return NULL;
}
