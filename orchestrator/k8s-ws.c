/*
 * k8s-ws — the workspace of the kubernetes runner, without a shared disk.
 *
 * The agent's branch lives in the daemon's repository, as a local agent's
 * does, so `diff #N`, merges and pull requests read it unchanged; the turn's
 * work travels through the repo's remote (repos.[].remote):
 *
 *   prepare  makes the branch sb/[daemon-]N-slug at base's tip here (no
 *            worktree) and pushes it to the remote, so the pod can clone it
 *            whatever of base the remote lacks; the workspace "path" is the
 *            pod's volume (K8S_WORKSPACE), never looked at on this host.
 *   (pod)    clones the branch, runs the agent, commits its leftovers and
 *            pushes the branch back (k8s-pod.c).
 *   collect  fetches the branch back into the local one (forced: the pod's
 *            push is the agent's work) and reads the diff stat and the
 *            files touched from it.
 *   cleanup  has no directory to remove; the branch stays, as always.
 *
 * Every job runs on the threadpool (network I/O) with copies of its inputs.
 */
#include "orchestrator/runner.h"
#include "orchestrator/gitremote.h"
#include "orchestrator/k8s.h"
#include "orchestrator/k8s-run.h"
#include "orchestrator/worktree.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"
#include "config/config.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define FILES_MAX	20

enum kws_kind { KWS_PREPARE, KWS_COLLECT };

struct kws_job {
	uv_work_t		 work;
	enum kws_kind		 kind;
	ws_done_fn		 done;
	void			*arg;
	int64_t			 id;
	char			*repo_path, *base, *task, *branch, *remote;
	struct gitremote_creds	 creds;
	struct ws_result	 res;
};

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
kws_prepare(struct kws_job *j)
{
	char	*cause = NULL;
	int	 rc, made = 0;

	if (!gitremote_exists(j->repo_path, j->remote)) {
		j->res.rc = -1;
		j->res.cause = xasprintf("the repository has no remote \"%s\" "
		    "(repos.[].remote): a pod clones the agent's branch from it",
		    j->remote);
		return;
	}
	if (j->branch == NULL) {
		if (gitremote_branch_new(j->repo_path, j->base, j->id,
		    j->task, &j->branch, &j->res.cause) != 0) {
			j->res.rc = -1;
			return;
		}
		made = 1;
	}
	rc = gitremote_push(j->repo_path, j->remote, j->branch, j->branch, 0,
	    &j->creds, &cause);
	if (rc == GITREMOTE_EREJECTED && !made) {
		/* The remote's is ahead (an earlier pod's push): the pod takes it. */
		log_info("agent %lld: %s on %s is ahead: %s", (long long)j->id,
		    j->branch, j->remote, cause);
		free(cause);
	} else if (rc != 0) {
		j->res.rc = -1;
		j->res.cause = xasprintf("pushing %s to %s for the pod: %s",
		    j->branch, j->remote, cause);
		free(cause);
		return;
	}
	j->res.branch = xstrdup(j->branch);
	j->res.path = xstrdup(K8S_WORKSPACE);
}

static void
kws_collect(struct kws_job *j)
{
	struct worktree_stat	 st = { 0 };
	char			*cause = NULL, **files = NULL;
	size_t			 n = 0, i;

	if (j->branch == NULL)
		return;
	if (gitremote_fetch(j->repo_path, j->remote, j->branch, j->branch,
	    &j->creds, &cause) != 0) {
		/* Not fatal: the branch has what was fetched before. */
		j->res.cause = xasprintf("fetching %s from %s: %s", j->branch,
		    j->remote, cause);
		free(cause);
		cause = NULL;
	}
	if (worktree_diffstat(j->repo_path, j->base, j->branch, 10, &st,
	    &cause) != 0) {
		free(j->res.cause);
		j->res.cause = cause;
		return;
	}
	j->res.diffstat = st.text;
	if (worktree_branch_files(j->repo_path, j->base, j->branch, &files, &n,
	    &cause) != 0) {
		free(j->res.cause);
		j->res.cause = cause;
		return;
	}
	/* At most FILES_MAX, NULL-terminated, for the card. */
	j->res.files = xcalloc(n < FILES_MAX ? n + 1 : FILES_MAX + 1,
	    sizeof *j->res.files);
	for (i = 0; i < n && i < FILES_MAX; i++) {
		j->res.files[i] = files[i];
		files[i] = NULL;
	}
	worktree_files_free(files, n);
}

static void
kws_work(uv_work_t *w)
{
	struct kws_job	*j = w->data;

	if (j->kind == KWS_PREPARE)
		kws_prepare(j);
	else
		kws_collect(j);
}

static void
kws_after(uv_work_t *w, int status)
{
	struct kws_job	*j = w->data;
	size_t		 i;

	j->done(j->arg, &j->res);
	free(j->repo_path); free(j->base); free(j->task); free(j->branch);
	free(j->remote);
	gitremote_creds_free(&j->creds);
	free(j->res.branch); free(j->res.path); free(j->res.cause);
	free(j->res.diffstat);
	for (i = 0; j->res.files != NULL && j->res.files[i] != NULL; i++)
		free(j->res.files[i]);
	free(j->res.files);
	free(j);
}

static void
kws_queue(enum kws_kind kind, const struct ws_req *q, ws_done_fn done,
    void *arg)
{
	struct kws_job	*j = xcalloc(1, sizeof *j);

	j->work.data = j;
	j->kind = kind;
	j->done = done;
	j->arg = arg;
	j->id = q->agent_id;
	j->repo_path = dup_or_null(q->repo_path);
	j->base = dup_or_null(q->base);
	j->task = dup_or_null(q->task);
	j->branch = dup_or_null(q->branch);
	if (q->repo != NULL) {
		j->remote = xstrdup(q->repo->remote != NULL ? q->repo->remote :
		    "origin");
		gitremote_creds_from(&j->creds, q->repo);
	} else {
		j->remote = xstrdup("origin");
		j->creds.user = xstrdup("x-access-token");
	}
	if (q->agent != NULL && q->agent->kube != NULL)
	uv_queue_work(loop_uv(), &j->work, kws_work, kws_after);
}

void
k8s_ws_prepare(const struct ws_req *q, ws_done_fn done, void *arg)
{
	kws_queue(KWS_PREPARE, q, done, arg);
}

void
k8s_ws_collect(const struct ws_req *q, ws_done_fn done, void *arg)
{
	kws_queue(KWS_COLLECT, q, done, arg);
}

/*
 * The pod's volume went with the pod: nothing here to remove.  A claimed
 * sandbox (k8s-claim.c) is the agent's until now: it goes.
 */
void
k8s_ws_cleanup(const struct ws_req *q, ws_done_fn done, void *arg)
{
	struct ws_result	 res = { 0 };
	const struct cfg_kube	*kc = q->agent != NULL ? q->agent->kube : NULL;
	struct k8s		*k;
	char			*cause = NULL, *name;

	if (kc != NULL && kc->claim) {
		if ((k = krun_cluster_get(kc->kubeconfig, &cause)) == NULL) {
			log_warnx("agent %lld: kubernetes: %s",
			    (long long)q->agent_id, cause);
			free(cause);
		} else {
			name = krun_claim_name(kc, q->agent_id);
			krun_claim_delete(k, kc->namespace, name);
			free(name);
		}
	}
	done(arg, &res);
}
