/*
 * k8s-run — what the kubernetes runner's files share, and nobody else:
 *
 *   runner-k8s.c  a turn's run: create, watch the pod, settle, stop
 *   k8s-log.c     the container's output through the log API
 *   k8s-attach.c  restarts: detach at shutdown, re-attach by label
 *   k8s-claim.c   mode "sandbox-claim": a claimed sandbox, the turn exec'd
 */
#ifndef SB_K8S_RUN_H
#define SB_K8S_RUN_H

#include "orchestrator/runner.h"
#include "orchestrator/k8s.h"

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define K8S_RETRY_MS	1000

struct run {
	int64_t			 id;
	struct run_hooks	 hooks;
	struct k8s		*k;		/* shared */
	char			*ns, *name;
	char			 rv[32];	/* last resourceVersion seen */
	char			 last_ts[48];	/* of the last log line */
	char			 resume_ts[48];	/* skip up to it (reconnect) */
	struct k8s_op		*call, *watch, *log;
	uv_timer_t		*timer, *log_timer;	/* retries */
	int			 created;	/* the pod exists */
	int			 relist;	/* the watch got 410 */
	int			 log_started, log_done, log_retries;
	int			 started;	/* its container ran */
	int			 terminated;	/* container state seen */
	int			 pod_done;	/* phase final, or deleted */
	int			 deleting, stop_pending, grace_s;
	int			 settled;
	int64_t			 status;
	int			 term_signal;
	char			*error;		/* never started: why */
	json_t			*pod_json;	/* until it is posted */
	int			 clone_rc;	/* the clone failed: its status */
	char			*clone_out;	/* and the end of its log */
	char			*state_dir;	/* where a detach leaves its mark */
	struct k8s_op		*secret_get;	/* re-attach: its token */
	/* mode "sandbox-claim" (k8s-claim.c); name is the claim's. */
	int			 claim;
	int			 claim_posted;	/* its POST answered */
	int			 stream_closed;	/* a v4 stop: no status to come */
	json_t			*renew;		/* its lifecycle, if it exists */
	char			*pod;		/* the sandbox's, once Ready */
	char			*script;	/* the turn, for the exec's stdin */
	char			*not_ready;	/* the claim's last word on it */
	int			 ready_s, exec_output;
	struct k8s_exec		*exec;
};

/* runner-k8s.c */
extern int	 krun_n_deleting;	/* deletions not yet answered */
struct k8s	*krun_cluster_get(const char *kubeconfig, char **cause);
struct run	*krun_new(const struct run_spec *, const struct run_hooks *);
/* The value of name in a "k=v" environment, or NULL. */
const char	*krun_env(char *const *env, const char *name);
void		 krun_free(struct run *);
/* Never started: report why (malloc'd, taken), from the loop. */
void		 krun_fail(struct run *, char *why);
void		 krun_maybe_settle(struct run *);
void		 krun_settle(struct run *);
void		 krun_pod_update(struct run *, json_t *pod);
void		 krun_remember_rv(struct run *, json_t *obj);
void		 krun_watch_start(struct run *);
void		 krun_abandon(struct run *);

/* k8s-log.c */
void		 krun_log_start(struct run *);
/* The clone container failed with rc: its log's end becomes the error. */
void		 krun_clone_log(struct run *, int rc);

/* k8s-claim.c */
void		 krun_claim_start(struct run *, const struct run_spec *,
		    const char *git_url);
void		 krun_claim_stop(struct run *);
void		 krun_claim_free(struct run *);
/* The agent's claim name, malloc'd. */
char		*krun_claim_name(const struct cfg_kube *, int64_t agent_id);
void		 krun_claim_delete(struct k8s *, const char *ns,
		    const char *name);

/* k8s-attach.c */
int		 krun_detach(struct run *);
struct run	*krun_reattach(const struct run_spec *, const struct run_hooks *);

#endif
