/*
 * warm — warm worktree pools (see warm.h).  A pool makes one warm worktree
 * at a time, so the threadpool (four threads) stays free for agents' own
 * jobs; a failed one is not retried until the next take, so a broken
 * repository costs one attempt per agent, not a loop.
 */
#include "orchestrator/warm.h"
#include "orchestrator/worktree.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct warm_pool {
	struct warm_pool *next;
	char		*repo_path, *base, *state_dir;
	int		 want;
	char		**ready;	/* tags, oldest first */
	size_t		  nready;
	int		 busy;		/* a job of this pool is out */
	int		 failed;	/* last make failed: wait for a take */
	int		 gone;		/* freed while a job was out */
};

enum warm_kind { WARM_LIST, WARM_MAKE };

struct warm_job {
	uv_work_t	 work;
	enum warm_kind	 kind;
	struct warm_pool *pool;
	/* inputs: copies, the job never reads the pool off the loop */
	char		*repo_path, *base, *state_dir, *tag;
	int		 want;
	/* outputs */
	int		 rc;
	char		*cause;
	char		**tags;
	size_t		  ntags;
};

static struct warm_pool	*pools;
static unsigned		 seq;

static struct warm_pool *
pool_find(const char *repo_path, const char *base, const char *state_dir)
{
	struct warm_pool	*p;

	for (p = pools; p != NULL; p = p->next)
		if (strcmp(p->repo_path, repo_path) == 0 &&
		    strcmp(p->base, base) == 0 &&
		    strcmp(p->state_dir, state_dir) == 0)
			return p;
	return NULL;
}

static void
pool_free(struct warm_pool *p)
{
	worktree_files_free(p->ready, p->nready);
	free(p->repo_path);
	free(p->base);
	free(p->state_dir);
	free(p);
}

/* Off the loop: list (and trim to want), or make one. */
static void
warm_work(uv_work_t *w)
{
	struct warm_job	*j = w->data;
	char		*cause = NULL;
	size_t		 i;

	if (j->kind == WARM_MAKE) {
		j->rc = worktree_warm_add(j->repo_path, j->base, j->state_dir,
		    j->tag, &j->cause);
		return;
	}
	j->rc = worktree_warm_list(j->repo_path, j->state_dir, &j->tags,
	    &j->ntags, &j->cause);
	for (i = j->want < 0 ? 0 : (size_t)j->want; i < j->ntags; i++) {
		if (worktree_warm_remove(j->repo_path, j->tags[i],
		    &cause) < 0) {
			log_warnx("worktree: warm %s: %s", j->tags[i], cause);
			free(cause);
			cause = NULL;
		}
		free(j->tags[i]);
		j->tags[i] = NULL;
	}
	if (j->ntags > (size_t)j->want)
		j->ntags = j->want;
}

static void	top_up(struct warm_pool *);

static void
warm_after(uv_work_t *w, int status)
{
	struct warm_job		*j = w->data;
	struct warm_pool	*p = j->pool;
	size_t			 i;

	p->busy = 0;
	if (p->gone || loop_stopping()) {
		if (p->gone)
			pool_free(p);
	} else if (j->rc != 0) {
		log_warnx("worktree: warm worktree of %s: %s", j->repo_path,
		    j->cause);
		p->failed = 1;
	} else if (j->kind == WARM_MAKE) {
		p->ready = xrealloc(p->ready, (p->nready + 2) *
		    sizeof *p->ready);
		p->ready[p->nready++] = j->tag;
		p->ready[p->nready] = NULL;
		j->tag = NULL;
		top_up(p);
	} else {
		for (i = 0; i < j->ntags; i++) {
			p->ready = xrealloc(p->ready, (p->nready + 2) *
			    sizeof *p->ready);
			p->ready[p->nready++] = j->tags[i];
			p->ready[p->nready] = NULL;
			j->tags[i] = NULL;
			log_info("worktree: warm %s of %s taken up",
			    p->ready[p->nready - 1], p->repo_path);
		}
		top_up(p);
	}
	worktree_files_free(j->tags, j->ntags);
	free(j->repo_path);
	free(j->base);
	free(j->state_dir);
	free(j->tag);
	free(j->cause);
	free(j);
}

static void
queue(struct warm_pool *p, enum warm_kind kind, char *tag)
{
	struct warm_job	*j;

	j = xcalloc(1, sizeof *j);
	j->work.data = j;
	j->kind = kind;
	j->pool = p;
	j->repo_path = xstrdup(p->repo_path);
	j->base = xstrdup(p->base);
	j->state_dir = xstrdup(p->state_dir);
	j->tag = tag;
	j->want = p->want;
	p->busy = 1;
	uv_queue_work(loop_uv(), &j->work, warm_work, warm_after);
}

static int
tag_in_use(struct warm_pool *p, const char *tag)
{
	size_t	 i;

	for (i = 0; i < p->nready; i++)
		if (strcmp(p->ready[i], tag) == 0)
			return 1;
	return 0;
}

/* One more in the making, if the pool is short and idle. */
static void
top_up(struct warm_pool *p)
{
	char	*tag;

	if (p->busy || p->failed || p->nready >= (size_t)p->want ||
	    loop_stopping())
		return;
	/*
	 * Unique in the repository: our instance and pid (earlier runs'
	 * tags stay; the sweep knows ours by the instance).
	 */
	do {
		if (*worktree_instance() != '\0')
			tag = xasprintf("%s-%ld-%u", worktree_instance(),
			    (long)getpid(), ++seq);
		else
			tag = xasprintf("%ld-%u", (long)getpid(), ++seq);
		if (!tag_in_use(p, tag))
			break;
		free(tag);
	} while (1);
	queue(p, WARM_MAKE, tag);
}

void
warm_start(const char *repo_path, const char *base, const char *state_dir,
    int want)
{
	struct warm_pool	*p;

	if ((p = pool_find(repo_path, base, state_dir)) != NULL) {
		p->want = want;
		top_up(p);
		return;
	}
	p = xcalloc(1, sizeof *p);
	p->repo_path = xstrdup(repo_path);
	p->base = xstrdup(base);
	p->state_dir = xstrdup(state_dir);
	p->want = want < 0 ? 0 : want;
	p->next = pools;
	pools = p;
	queue(p, WARM_LIST, NULL);
}

char *
warm_take(const char *repo_path, const char *base, const char *state_dir)
{
	struct warm_pool	*p;
	char			*tag = NULL;

	if ((p = pool_find(repo_path, base, state_dir)) == NULL)
		return NULL;
	if (p->nready > 0) {
		tag = p->ready[0];
		memmove(p->ready, p->ready + 1, p->nready * sizeof *p->ready);
		p->nready--;
	}
	p->failed = 0;
	top_up(p);
	return tag;
}

void
warm_free_all(void)
{
	struct warm_pool	*p;

	/* A checkout in progress would hold the daemon's exit for seconds. */
	if (pools != NULL)
		worktree_warm_abort();
	while ((p = pools) != NULL) {
		pools = p->next;
		if (p->busy)
			p->gone = 1;	/* its job's callback frees it */
		else
			pool_free(p);
	}
}
