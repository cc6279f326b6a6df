/*
 * k8s — a small Kubernetes API client on bot/http.c (libcurl) and jansson:
 * what the kubernetes runner needs and nothing more (JSON calls, watch
 * streams and followed logs).  No kubectl, no exec credential plugins.
 *
 * Where the cluster is: a kubeconfig file (its current context; a bearer
 * token, a token file or a client certificate; the CA by path) — in JSON,
 * which kubectl also reads, since the daemon links no YAML parser — or,
 * without one, in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service
 * account's token and CA under /var/run/secrets/kubernetes.io/serviceaccount.
 * The token is re-read from its file for each request, since kubelets
 * rotate projected tokens.
 */
#ifndef SB_K8S_H
#define SB_K8S_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct k8s;
struct k8s_op;		/* a call or stream in flight */

/* NULL with *cause (malloc'd) when the config is unusable. */
struct k8s	*k8s_open(const char *kubeconfig, char **cause);
void		 k8s_close(struct k8s *);
/* The server URL, for messages. */
const char	*k8s_server(const struct k8s *);
/* For the exec stream (k8s-exec.c): its TLS files, NULL = unset. */
const char	*k8s_ca_file(const struct k8s *);
void		 k8s_client_cert(const struct k8s *, const char **cert,
		    const char **key);
/* "Authorization: Bearer …" (malloc'd; bzero it after), or NULL. */
char		*k8s_auth_header(struct k8s *);

/*
 * One call: status is the HTTP status (0 with error on a transport
 * failure); obj the parsed body or NULL; both borrowed for the callback.
 * A PATCH's body is a JSON merge patch.
 */
typedef void	(*k8s_cb)(long status, json_t *obj, const char *error,
		    void *arg);
struct k8s_op	*k8s_call(struct k8s *, const char *method, const char *path,
		    json_t *body, k8s_cb, void *arg);

/*
 * A stream (watch or followed log): line() gets each complete line as it
 * comes; done() once at the end, with the status (a non-2xx body parsed in
 * obj).
 */
typedef void	(*k8s_line_fn)(const char *line, size_t len, void *arg);
struct k8s_op	*k8s_stream(struct k8s *, const char *path, k8s_line_fn,
		    k8s_cb done, void *arg);
/*
 * Nothing more is called for it.  NULL is fine; so is its own line()
 * (not its done(): it is over by then).
 */
void		 k8s_cancel(struct k8s_op *);
/* What frees its arg if it is cancelled (its callbacks never run then). */
void		 k8s_on_cancel(struct k8s_op *, void (*free_arg)(void *));
/* Shutdown: cancels every call and stream in flight. */
void		 k8s_cancel_all(void);

/* A Status object's message, or a plain "HTTP n". Malloc'd. */
char		*k8s_error(long status, json_t *obj, const char *error);

/* Percent-encodes a query value (labelSelector). Malloc'd. */
char		*k8s_qs(const char *);

/*
 * A command in a running pod through the exec API, over a WebSocket
 * (k8s-exec.c; subprotocol v5.channel.k8s.io or v4): stdin_data is written
 * to its stdin first, which then stays open until k8s_exec_close_stdin();
 * out() gets stdout (1) and stderr (2) as they come; done() once, with the
 * exit code from the status channel, or error (malloc'd by nobody:
 * borrowed) when it never ran or the stream broke.  The exec is freed
 * after done(); k8s_exec_cancel() before it drops it with no more calls.
 */
struct k8s_exec;
struct k8s_exec_cb {
	void	(*out)(int stream, const char *, size_t, void *arg);
	void	(*done)(int64_t status, const char *error, void *arg);
};
struct k8s_exec	*k8s_exec_start(struct k8s *, const char *ns, const char *pod,
		    char *const *argv, const char *stdin_data, size_t len,
		    const struct k8s_exec_cb *, void *arg);
/* EOF on its stdin (v5; with v4 the stream is closed instead). */
void		 k8s_exec_close_stdin(struct k8s_exec *);
void		 k8s_exec_cancel(struct k8s_exec *);
/* 1 once open with v5 (its stdin can be closed alone). */
int		 k8s_exec_v5(const struct k8s_exec *);
/*
 * The exit code a status channel message says (0 for Success); -1 with
 * *why (malloc'd) for a failure that is not an exit code.  For tests too.
 */
int64_t		 k8s_exec_status(const char *json, size_t len, char **why);
/*
 * One message from the server: its channel (1 stdout, 2 stderr, 3 the
 * status) and payload in *data, *len; -1 for what carries nothing for us.
 */
int		 k8s_exec_frame(const unsigned char *, size_t,
		    const unsigned char **data, size_t *len);

/* The turn's container, and where the token secret is mounted in it. */
#define K8S_CONTAINER	"agent"
#define K8S_TOKEN_DIR	"/var/run/switchboard"
/* The pod's workspace volume (the agent's clone), and its git credentials. */
#define K8S_WORKSPACE	"/workspace"
#define K8S_GIT_DIR	"/var/run/switchboard-git"

/*
 * The Pod of one turn (k8s-pod.c), for the runner and for the manifest
 * check of the tests.
 */
struct cfg_kube;
struct run_spec;
json_t		*runner_k8s_pod(const char *name, const char *ns,
		    int64_t agent_id, const struct cfg_kube *,
		    const struct run_spec *);

/*
 * The workspace parts of a turn's pod (k8s-pod.c): an init container that
 * clones spec->ws's branch from git_url into an emptyDir, the agent's
 * container working there and pushing the branch back when the agent is
 * done, the git credentials (config git_secret) mounted into both.
 */
void		 runner_k8s_workspace(json_t *pod, const struct cfg_kube *,
		    const struct run_spec *, const char *git_url);

/* The runner's workspace jobs (k8s-ws.c). */
struct ws_req;
struct ws_result;
void		 k8s_ws_prepare(const struct ws_req *,
		    void (*)(void *, struct ws_result *), void *);
void		 k8s_ws_collect(const struct ws_req *,
		    void (*)(void *, struct ws_result *), void *);
void		 k8s_ws_cleanup(const struct ws_req *,
		    void (*)(void *, struct ws_result *), void *);

/*
 * Git credentials from the mounted secret (config kubernetes.git_secret), for
 * the turn's scripts: basic-auth keys through an inline credential helper, an
 * ssh-auth key through GIT_SSH_COMMAND.  Nothing of them is in the pod spec
 * or on a command line.  `g` is git with them.
 */
#define K8S_GIT_CREDS_SH \
"export GIT_TERMINAL_PROMPT=0\n" \
"c=${SWITCHBOARD_GIT_CREDENTIALS:-}\n" \
"h=\n" \
"if [ -n \"$c\" ] && [ -r \"$c/password\" ]; then\n" \
"  h='!f() { [ \"$1\" = get ] || exit 0;" \
" echo \"username=$(cat \"$SWITCHBOARD_GIT_CREDENTIALS/username\"" \
" 2>/dev/null || echo x-access-token)\";" \
" echo \"password=$(cat \"$SWITCHBOARD_GIT_CREDENTIALS/password\")\"; }; f'\n" \
"fi\n" \
"if [ -n \"$c\" ] && [ -r \"$c/ssh-privatekey\" ]; then\n" \
"  k='-o StrictHostKeyChecking=accept-new'\n" \
"  [ -r \"$c/known_hosts\" ] && k=\"-o UserKnownHostsFile=$c/known_hosts" \
" -o StrictHostKeyChecking=yes\"\n" \
"  export GIT_SSH_COMMAND=\"ssh -i $c/ssh-privatekey -o IdentitiesOnly=yes $k\"\n" \
"fi\n" \
"g() { git -c safe.directory='*' -c credential.helper= " \
"-c credential.helper=\"$h\" \"$@\"; }\n"

/*
 * The end of a turn's script, in the workspace, with the agent's exit
 * status in $rc: what the agent left uncommitted is committed, the branch
 * pushed back to the remote; a failure of either fails the turn (with a
 * line saying which) unless the agent had already failed.
 */
#define K8S_PUSH_BACK_SH \
"g add -A\n" \
"if ! g diff --cached --quiet; then\n" \
"  g commit -q -m \"$SWITCHBOARD_COMMIT_MESSAGE\" ||" \
" { echo 'switchboard: cannot commit what the agent left' >&2;" \
" [ \"$rc\" -ne 0 ] || rc=1; }\n" \
"fi\n" \
"if ! g push -q origin \"HEAD:refs/heads/$SWITCHBOARD_BRANCH\"; then\n" \
"  echo \"switchboard: cannot push $SWITCHBOARD_BRANCH\" >&2\n" \
"  [ \"$rc\" -ne 0 ] || rc=1\n" \
"fi\n" \
"exit \"$rc\"\n"

#endif
