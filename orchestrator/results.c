#include "orchestrator/results.h"
#include "orchestrator/agent.h"
#include "orchestrator/agentlog.h"
#include "orchestrator/conversation.h"
#include "orchestrator/forge.h"
#include "orchestrator/merge.h"
#include "orchestrator/gitremote.h"
#include "orchestrator/outbox.h"
#include "orchestrator/render.h"
#include "orchestrator/worktree.h"
#include "adapters/adapter.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct config	*cfg;
static int			 hooked;

/* Files each agent's branch touched, as of its last turn (overlap). */
struct touched {
	long long	 id;
	char		*repo;
	char		**files;
	size_t		 nfiles;
	struct touched	*next;
};
static struct touched	*touched;

static void	on_turn_end(struct agent *, void *);

static void
touched_free(struct touched *t)
{
	worktree_files_free(t->files, t->nfiles);
	free(t->repo);
	free(t);
}

static void
on_shutdown(void *arg)
{
	struct touched	*t;

	while ((t = touched) != NULL) {
		touched = t->next;
		touched_free(t);
	}
	agentlog_free_all();
	forge_shutdown();
	merge_shutdown();
}

void
results_configure(const struct config *c)
{
	cfg = c;
	agentlog_configure(c->state_dir, (size_t)c->limits.log_size);
	if (!hooked) {
		hooked = 1;
		agent_on_end(on_turn_end, NULL);
		loop_on_shutdown(on_shutdown, NULL);
	}
}

const struct config *
results_config(void)
{
	return cfg;
}

const struct cfg_repo *
results_repo(const struct agent *a)
{
	struct conversation	*c = agent_conversation(a);

	if (cfg == NULL || c == NULL || c->repo == NULL)
		return NULL;
	return config_repo(cfg, c->repo);
}

/* ---- posting text or a file ------------------------------------------------- */

/* Well-formed UTF-8 (no overlong forms checked: this only picks a format). */
static int
utf8_ok(const unsigned char *p, size_t n)
{
	size_t	 i = 0, k, j;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		k = (p[i] & 0xe0) == 0xc0 ? 1 : (p[i] & 0xf0) == 0xe0 ? 2 :
		    (p[i] & 0xf8) == 0xf0 ? 3 : 0;
		if (k == 0)
			return 0;
		for (j = 1; j <= k; j++)
			if (i + j >= n || (p[i + j] & 0xc0) != 0x80)
				return 0;
		i += k + 1;
	}
	return 1;
}

static int
inline_ok(const char *data, size_t len)
{
	size_t	 i, lines = 0;

	if (len > RESULTS_INLINE_BYTES || memchr(data, '\0', len) != NULL ||
	    memmem(data, len, "```", 3) != NULL)
		return 0;
	for (i = 0; i < len; i++)
		if (data[i] == '\n' && ++lines > RESULTS_INLINE_LINES)
			return 0;
	return utf8_ok((const unsigned char *)data, len);
}

void
results_post(struct conversation *c, const char *data, size_t len,
    const char *filename, const char *title, const char *empty)
{
	if (len == 0) {
		conversation_say(c, "%s", empty);
		return;
	}
	if (inline_ok(data, len)) {
		conversation_say(c, "%s\n```\n%.*s%s```", title, (int)len, data,
		    data[len - 1] == '\n' ? "" : "\n");
		return;
	}
	outbox_upload(c->adapter, c->channel, c->thread, filename, title, data,
	    len);
}

/* ---- diff #N [PATH] --------------------------------------------------------- */

struct diff_job {
	uv_work_t	 work;
	struct agent	*agent;
	char		*repo_path, *base, *branch, *path;
	int		 rc;
	char		*out, *cause;
	size_t		 len, nfiles;
};

static void
diff_work(uv_work_t *w)
{
	struct diff_job	*j = w->data;

	j->rc = worktree_diff(j->repo_path, j->base, j->branch, j->path,
	    &j->out, &j->len, &j->nfiles, &j->cause);
}

static void
diff_after(uv_work_t *w, int status)
{
	struct diff_job		*j = w->data;
	struct agent		*a = j->agent;
	struct conversation	*c = agent_conversation(a);
	char			*title, *name, *empty;

	if (loop_stopping())
		;
	else if (j->rc != 0)
		conversation_say(c, "#%lld: no diff: %s",
		    (long long)agent_id(a), j->cause);
	else {
		title = xasprintf("#%lld `%s` against %s%s%s (%zu file%s):",
		    (long long)agent_id(a), j->branch, j->base,
		    j->path != NULL ? ", " : "", j->path != NULL ? j->path : "",
		    j->nfiles, j->nfiles == 1 ? "" : "s");
		name = xasprintf("agent-%lld.diff", (long long)agent_id(a));
		empty = xasprintf("#%lld `%s` against %s%s%s: no committed"
		    " changes.", (long long)agent_id(a), j->branch, j->base,
		    j->path != NULL ? ", " : "", j->path != NULL ? j->path :
		    "");
		results_post(c, j->out, j->len, name, title, empty);
		free(title);
		free(name);
		free(empty);
	}
	free(j->repo_path);
	free(j->base);
	free(j->branch);
	free(j->path);
	free(j->out);
	free(j->cause);
	agent_unref(a);
	free(j);
}

void
results_diff(struct agent *a, const char *path)
{
	const struct cfg_repo	*cr = results_repo(a);
	struct diff_job		*j;

	if (agent_branch(a) == NULL || cr == NULL) {
		conversation_say(agent_conversation(a), "#%lld has no branch"
		    " yet.", (long long)agent_id(a));
		return;
	}
	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->agent = a;
	agent_ref(a);
	j->repo_path = xstrdup(cr->path);
	j->base = xstrdup(cr->base);
	j->branch = xstrdup(agent_branch(a));
	j->path = path != NULL && *path != '\0' ? xstrdup(path) : NULL;
	uv_queue_work(loop_uv(), &j->work, diff_work, diff_after);
}

/* ---- log #N ---------------------------------------------------------------- */

void
results_log(struct agent *a)
{
	char	*data, *name, *title, *empty;
	size_t	 len;

	data = agentlog_read(agent_id(a), &len);
	name = xasprintf("agent-%lld.log", (long long)agent_id(a));
	title = xasprintf("#%lld output (stdout and stderr):",
	    (long long)agent_id(a));
	empty = xasprintf("#%lld has no output kept.", (long long)agent_id(a));
	results_post(agent_conversation(a), data != NULL ? data : "", len,
	    name, title, empty);
	free(data);
	free(name);
	free(title);
	free(empty);
}

/* ---- push #N -------------------------------------------------------------- */

struct push_job {
	uv_work_t		 work;
	struct agent		*agent;
	char			*repo_path, *remote, *branch;
	struct gitremote_creds	 creds;
	results_pushed_fn	 then;
	void			*arg;
	int			 rc;
	char			*cause;
};

static void
push_work(uv_work_t *w)
{
	struct push_job	*j = w->data;

	j->rc = gitremote_push(j->repo_path, j->remote, j->branch, j->branch,
	    0, &j->creds, &j->cause);
}

static void
push_after(uv_work_t *w, int status)
{
	struct push_job	*j = w->data;
	struct agent	*a = j->agent;

	if (!loop_stopping()) {
		if (j->rc != 0)
			log_warnx("results: push of agent %lld: %s",
			    (long long)agent_id(a), j->cause);
		if (j->then != NULL)
			j->then(a, j->rc == 0, j->cause, j->arg);
		else if (j->rc == 0)
			conversation_say(agent_conversation(a), "#%lld: pushed"
			    " `%s` to %s.", (long long)agent_id(a), j->branch,
			    j->remote);
		else
			conversation_say(agent_conversation(a), "#%lld: push"
			    " failed: %s", (long long)agent_id(a), j->cause);
	}
	gitremote_creds_free(&j->creds);
	free(j->repo_path);
	free(j->remote);
	free(j->branch);
	free(j->cause);
	agent_unref(a);
	free(j);
}

void
results_push(struct agent *a, results_pushed_fn then, void *arg)
{
	const struct cfg_repo	*cr = results_repo(a);
	struct push_job		*j;

	if (agent_branch(a) == NULL || cr == NULL) {
		if (then != NULL)
			then(a, 0, "it has no branch yet", arg);
		else
			conversation_say(agent_conversation(a), "#%lld has no"
			    " branch yet.", (long long)agent_id(a));
		return;
	}
	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->agent = a;
	agent_ref(a);
	j->repo_path = xstrdup(cr->path);
	j->remote = xstrdup(cr->remote != NULL ? cr->remote : "origin");
	j->branch = xstrdup(agent_branch(a));
	gitremote_creds_from(&j->creds, cr);
	j->then = then;
	j->arg = arg;
	uv_queue_work(loop_uv(), &j->work, push_work, push_after);
}

/* ---- next steps and overlap, after every turn ---------------------------------- */

static const char *const next_choices[] = { "Show diff", "Open PR", "Merge",
    NULL };

char *
results_click_command(const char *question, const char *choice)
{
	long long	 id;

	if (question == NULL || question[0] != 'r' ||
	    (id = parse_uint(question + 1)) <= 0 || choice == NULL)
		return NULL;
	if (strcasecmp(choice, "Show diff") == 0)
		return xasprintf("diff #%lld", id);
	if (strcasecmp(choice, "Open PR") == 0)
		return xasprintf("pr #%lld", id);
	if (strcasecmp(choice, "Merge") == 0)
		return xasprintf("merge #%lld", id);
	return NULL;
}

struct overlap_job {
	uv_work_t	 work;
	long long	 id;
	char		*repo_name, *repo_path, *base, *branch;
	char		**files;
	size_t		 nfiles;
	int		 rc;
	char		*cause;
};

static void
overlap_work(uv_work_t *w)
{
	struct overlap_job	*j = w->data;

	j->rc = worktree_branch_files(j->repo_path, j->base, j->branch,
	    &j->files, &j->nfiles, &j->cause);
}

static int
has_file(char **v, size_t n, const char *f)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], f) == 0)
			return 1;
	return 0;
}

static void
overlap_after(uv_work_t *w, int status)
{
	struct overlap_job	*j = w->data;
	struct touched		*t, **pp, *mine = NULL;
	struct agent		*a, *b;
	struct buf		 both = { 0 };
	char			 key[64];
	size_t			 i, n;

	if (loop_stopping() || j->rc != 0) {
		if (j->rc != 0)
			log_debug("results: overlap of %lld: %s", j->id,
			    j->cause);
		goto out;
	}
	/* Replace this agent's record with the new file set. */
	for (pp = &touched; (t = *pp) != NULL; pp = &t->next)
		if (t->id == j->id) {
			*pp = t->next;
			touched_free(t);
			break;
		}
	mine = xcalloc(1, sizeof *mine);
	mine->id = j->id;
	mine->repo = xstrdup(j->repo_name);
	mine->files = j->files;
	mine->nfiles = j->nfiles;
	j->files = NULL;
	mine->next = touched;
	touched = mine;
	if ((a = agent_find(j->id)) == NULL)
		goto out;
	for (t = touched; t != NULL; t = t->next) {
		if (t == mine || strcmp(t->repo, mine->repo) != 0 ||
		    (b = agent_find(t->id)) == NULL)
			continue;
		buf_reset(&both);
		for (i = n = 0; i < mine->nfiles; i++)
			if (has_file(t->files, t->nfiles, mine->files[i])) {
				if (n++ < 8)
					buf_printf(&both, "%s%s", n > 1 ? ", " :
					    "", mine->files[i]);
			}
		if (n == 0)
			continue;
		if (n > 8)
			buf_printf(&both, " (+%zu more)", n - 8);
		/* One warning per pair, for as long as we keep state. */
		snprintf(key, sizeof key, "%lld:%lld", t->id < j->id ? t->id :
		    j->id, t->id < j->id ? j->id : t->id);
		if (store_seen_add("overlap", key, 10LL * 365 * 24 * 3600) != 1)
			continue;
		conversation_say(agent_conversation(a), "⚠️ #%lld and #%lld"
		    " both changed %s in repo %s; merging one will conflict"
		    " with the other.", j->id, t->id, both.data, mine->repo);
		if (agent_conversation(b) != agent_conversation(a))
			conversation_say(agent_conversation(b), "⚠️ #%lld and"
			    " #%lld both changed %s in repo %s; merging one"
			    " will conflict with the other.", t->id, j->id,
			    both.data, mine->repo);
	}
out:
	buf_free(&both);
	if (j->files != NULL)
		worktree_files_free(j->files, j->nfiles);
	free(j->repo_name);
	free(j->repo_path);
	free(j->base);
	free(j->branch);
	free(j->cause);
	free(j);
}

void
results_forget(long long id)
{
	struct touched	**pp, *t;

	for (pp = &touched; (t = *pp) != NULL; pp = &t->next)
		if (t->id == id) {
			*pp = t->next;
			touched_free(t);
			return;
		}
}

static void
on_turn_end(struct agent *a, void *arg)
{
	const struct cfg_repo	*cr = results_repo(a);
	struct conversation	*c = agent_conversation(a);
	const struct adapter_caps *caps;
	struct overlap_job	*j;
	char			 q[32], *text;
	long long		 id = (long long)agent_id(a);

	agentlog_forget(id);
	if (cr == NULL || agent_branch(a) == NULL)
		return;
	/* The next steps, under the result. */
	snprintf(q, sizeof q, "r%lld", id);
	text = xasprintf("Next for #%lld: `diff #%lld` · `log #%lld` · "
	    "`push #%lld` · `pr #%lld` · `merge #%lld`", id, id, id, id, id,
	    id);
	caps = outbox_caps(c->adapter);
	outbox_post(c->adapter, c->channel, c->thread, NULL, NULL, text,
	    caps != NULL && caps->buttons ? next_choices : NULL, q);
	free(text);

	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->id = id;
	j->repo_name = xstrdup(cr->name);
	j->repo_path = xstrdup(cr->path);
	j->base = xstrdup(cr->base);
	j->branch = xstrdup(agent_branch(a));
	uv_queue_work(loop_uv(), &j->work, overlap_work, overlap_after);
}
