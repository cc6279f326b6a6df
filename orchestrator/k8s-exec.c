/*
 * k8s-exec — a command in a running pod through the exec API, the way
 * kubectl exec does it since Kubernetes 1.30: GET
 * /api/v1/namespaces/NS/pods/POD/exec?command=…&stdin=true&stdout=true&
 * stderr=true upgraded to a WebSocket with subprotocol v5.channel.k8s.io
 * (v4.channel.k8s.io accepted).  Every binary message starts with its
 * channel: 0 stdin, 1 stdout, 2 stderr, 3 the end (a metav1.Status: Success,
 * or Failure with details.causes[] {reason: ExitCode, message: "N"}), 4
 * resize; v5 adds 255, "close this channel" (the next byte), which is how
 * stdin gets its EOF without ending the stream.
 *
 * libwebsockets directly, not bot/ws.c: this needs binary messages, an
 * Authorization header, a subprotocol and the cluster's own CA and client
 * certificate, so each cluster gets its own client vhost with those files.
 * The command stays short (it is in the URL, in audit logs, and lws builds
 * the request in a 4 KiB buffer): what is long or secret travels on stdin.
 */
#include "orchestrator/k8s.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

#define CH_STDIN	0
#define CH_STDOUT	1
#define CH_STDERR	2
#define CH_ERROR	3
#define CH_CLOSE	255

struct exec_msg {
	struct exec_msg	*next;
	size_t		 len;
	unsigned char	 data[];	/* LWS_PRE, then the channel byte */
};

struct k8s_exec {
	struct lws		*wsi;
	struct k8s_exec_cb	 cb;
	void			*arg;
	char			*auth;		/* until the handshake */
	struct buf		 rx;		/* a message being reassembled */
	struct exec_msg		*q_head, **q_tail;
	int			 v5, open, done, in_connect, close_now;
	int			 eof_pending;	/* close stdin once open */
	int			 deferred, cancelled;
	int			 have_status;
	int64_t			 status;
	char			*error;
};

static int	exec_callback(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);

static const struct lws_protocols exec_protocols[] = {
	{ "k8s-exec", exec_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* A client vhost per cluster: its CA and client certificate. */
static struct exec_vhost {
	const struct k8s	*k;
	struct lws_vhost	*vh;
	struct exec_vhost	*next;
} *vhosts;

static struct lws_vhost *
vhost_for(struct k8s *k)
{
	struct lws_context_creation_info	 info;
	struct exec_vhost			*v;
	const char				*cert, *key;
	char					 name[32];
	static int				 n;

	for (v = vhosts; v != NULL; v = v->next)
		if (v->k == k)
			return v->vh;
	memset(&info, 0, sizeof info);
	snprintf(name, sizeof name, "k8s-exec-%d", n++);
	info.vhost_name = name;
	info.protocols = exec_protocols;
	info.client_ssl_ca_filepath = k8s_ca_file(k);
	k8s_client_cert(k, &cert, &key);
	info.client_ssl_cert_filepath = cert;
	info.client_ssl_private_key_filepath = key;
	v = xcalloc(1, sizeof *v);
	if ((v->vh = lws_client_vhost_info(&info)) == NULL) {
		free(v);
		return NULL;
	}
	v->k = k;
	v->next = vhosts;
	vhosts = v;
	return v->vh;
}

int64_t
k8s_exec_status(const char *p, size_t n, char **why)
{
	json_t		*st, *c;
	const char	*s, *m;
	size_t		 i;
	long long	 code;
	char		*end;

	*why = NULL;
	if ((st = json_loadb(p, n, 0, NULL)) == NULL) {
		*why = xstrdup("the exec's status is not JSON");
		return -1;
	}
	s = json_string_value(json_object_get(st, "status"));
	if (s != NULL && strcmp(s, "Success") == 0) {
		json_decref(st);
		return 0;
	}
	json_array_foreach(json_object_get(json_object_get(st, "details"),
	    "causes"), i, c) {
		s = json_string_value(json_object_get(c, "reason"));
		m = json_string_value(json_object_get(c, "message"));
		if (s == NULL || m == NULL || strcmp(s, "ExitCode") != 0)
			continue;
		code = strtoll(m, &end, 10);
		if (*m != '\0' && *end == '\0' && code >= 0 && code < 256) {
			json_decref(st);
			return code;
		}
	}
	m = json_string_value(json_object_get(st, "message"));
	*why = xstrdup(m != NULL ? m : "the exec failed");
	json_decref(st);
	return -1;
}

/* Stdin carries the agent's token: wiped, not just freed. */
static void
msg_free(struct exec_msg *m)
{
	explicit_bzero(m->data + LWS_PRE, m->len);
	free(m);
}

static void
exec_free(struct k8s_exec *e)
{
	struct exec_msg	*m;

	while ((m = e->q_head) != NULL) {
		e->q_head = m->next;
		msg_free(m);
	}
	if (e->auth != NULL)
		explicit_bzero(e->auth, strlen(e->auth));
	free(e->auth);
	buf_free(&e->rx);
	free(e->error);
	free(e);
}

static void
exec_report(void *arg)
{
	struct k8s_exec	*e = arg;

	if (!e->cancelled)
		e->cb.done(e->status, e->error, e->arg);
	exec_free(e);
}

/*
 * The one way out: detach from the wsi (lws is closing it, or our -1
 * return makes it), report once.
 */
static void
exec_finish(struct k8s_exec *e, const char *error)
{
	if (e->done)
		return;
	e->done = 1;
	if (e->wsi != NULL) {
		lws_set_opaque_user_data(e->wsi, NULL);
		e->wsi = NULL;
	}
	if (!e->have_status && e->error == NULL)
		e->error = xstrdup(error != NULL ? error :
		    "the exec stream ended without the command's status");
	if (e->in_connect) {
		e->deferred = 1;
		loop_defer(exec_report, e);	/* the caller is below us */
	} else
		exec_report(e);
}

static void
queue(struct k8s_exec *e, int ch, const void *p, size_t n)
{
	struct exec_msg	*m = xmalloc(sizeof *m + LWS_PRE + 1 + n);

	m->next = NULL;
	m->len = 1 + n;
	m->data[LWS_PRE] = (unsigned char)ch;
	if (n > 0)
		memcpy(m->data + LWS_PRE + 1, p, n);
	*e->q_tail = m;
	e->q_tail = &m->next;
	if (e->wsi != NULL && e->open)
		lws_callback_on_writable(e->wsi);
}

static int
on_writeable(struct k8s_exec *e, struct lws *wsi)
{
	struct exec_msg	*m;

	if (e->close_now && e->q_head == NULL) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		exec_finish(e, "the exec was closed");
		return -1;
	}
	while ((m = e->q_head) != NULL && !lws_send_pipe_choked(wsi)) {
		e->q_head = m->next;
		if (e->q_head == NULL)
			e->q_tail = &e->q_head;
		if (lws_write(wsi, m->data + LWS_PRE, m->len,
		    LWS_WRITE_BINARY) < (int)m->len) {
			msg_free(m);
			exec_finish(e, "cannot write to the exec stream");
			return -1;
		}
		msg_free(m);
	}
	if (e->q_head != NULL || e->close_now)
		lws_callback_on_writable(wsi);
	return 0;
}

int
k8s_exec_frame(const unsigned char *p, size_t n, const unsigned char **data,
    size_t *len)
{
	if (n < 2)
		return -1;	/* nothing, or v1's empty hello per channel */
	*data = p + 1;
	*len = n - 1;
	switch (p[0]) {
	case CH_STDOUT:
	case CH_STDERR:
	case CH_ERROR:
		return p[0];
	default:
		return -1;	/* stdin and resize are ours to send */
	}
}

static void
on_message(struct k8s_exec *e, const unsigned char *p, size_t n)
{
	const unsigned char	*d;
	size_t			 len;
	char			*why;

	switch (k8s_exec_frame(p, n, &d, &len)) {
	case CH_STDOUT:
	case CH_STDERR:
		e->cb.out(p[0], (const char *)d, len, e->arg);
		break;
	case CH_ERROR:
		e->status = k8s_exec_status((const char *)d, len, &why);
		if (e->status < 0) {
			free(e->error);
			e->error = why;
		} else
			e->have_status = 1;
		break;
	default:
		break;
	}
}

static int
exec_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct k8s_exec	*e = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
	unsigned char	**pp, *end;
	char		 proto[32];

	if (e == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (e->auth == NULL)
			return 0;
		pp = in;
		end = *pp + len;
		/* "Authorization: " is the token's name; lws adds it back. */
		if (lws_add_http_header_by_token(wsi,
		    WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)e->auth + 15,
		    (int)strlen(e->auth + 15), pp, end) != 0)
			return -1;
		explicit_bzero(e->auth, strlen(e->auth));
		free(e->auth);
		e->auth = NULL;
		return 0;
	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
		/* The server's choice; the headers are gone once established. */
		if (lws_hdr_copy(wsi, proto, sizeof proto, WSI_TOKEN_PROTOCOL) > 0)
			e->v5 = strcmp(proto, "v5.channel.k8s.io") == 0;
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		e->open = 1;
		if (e->eof_pending)
			k8s_exec_close_stdin(e);
		if (e->q_head != NULL || e->close_now)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		buf_add(&e->rx, in, len);
		if (lws_is_final_fragment(wsi) &&
		    lws_remaining_packet_payload(wsi) == 0) {
			on_message(e, (unsigned char *)e->rx.data, e->rx.len);
			buf_reset(&e->rx);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(e, wsi);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		exec_finish(e, in != NULL ? (const char *)in :
		    "cannot connect to the API server");
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		exec_finish(e, e->open ? NULL : "the exec stream closed before "
		    "it opened");
		return 0;
	default:
		return 0;
	}
}

struct k8s_exec *
k8s_exec_start(struct k8s *k, const char *ns, const char *pod,
    char *const *argv, const char *stdin_data, size_t len,
    const struct k8s_exec_cb *cb, void *arg)
{
	struct lws_client_connect_info	 i;
	struct k8s_exec			*e = xcalloc(1, sizeof *e);
	struct lws_vhost		*vh;
	struct buf			 path = { 0 };
	const char			*prot, *ads, *upath;
	char				*copy, *q, *host;
	int				 port;
	struct lws			*wsi;

	e->cb = *cb;
	e->arg = arg;
	e->q_tail = &e->q_head;
	e->in_connect = 1;
	copy = xstrdup(k8s_server(k));
	if (lws_parse_uri(copy, &prot, &ads, &port, &upath) != 0 ||
	    (vh = vhost_for(k)) == NULL) {
		free(copy);
		exec_finish(e, "libwebsockets cannot reach the API server");
		e->in_connect = 0;
		return e;
	}
	while (*upath == '/')
		upath++;
	buf_printf(&path, "/%s%sapi/v1/namespaces/%s/pods/%s/exec?stdin=true&"
	    "stdout=true&stderr=true", upath, *upath != '\0' ? "/" : "", ns,
	    pod);
	for (; *argv != NULL; argv++) {
		q = k8s_qs(*argv);
		buf_printf(&path, "&command=%s", q);
		free(q);
	}
	if (len > 0)
		queue(e, CH_STDIN, stdin_data, len);
	e->auth = k8s_auth_header(k);
	host = xasprintf("%s:%d", ads, port);

	memset(&i, 0, sizeof i);
	i.context = lws_the_context();
	i.vhost = vh;
	i.address = ads;
	i.port = port;
	i.path = path.data;
	i.host = host;
	i.origin = host;
	i.protocol = "v5.channel.k8s.io,v4.channel.k8s.io";
	i.local_protocol_name = exec_protocols[0].name;
	i.ietf_version_or_minus_one = -1;
	i.opaque_user_data = e;
	if (strcmp(prot, "https") == 0)
		i.ssl_connection = LCCSCF_USE_SSL;
	wsi = lws_client_connect_via_info(&i);
	if (!e->done) {
		if (wsi == NULL)
			exec_finish(e, "cannot start the exec stream");
		else
			e->wsi = wsi;
	}
	e->in_connect = 0;
	free(host);
	buf_free(&path);
	free(copy);
	return e;
}

void
k8s_exec_close_stdin(struct k8s_exec *e)
{
	unsigned char	 ch = CH_STDIN;

	if (e == NULL || e->done)
		return;
	if (!e->open) {
		e->eof_pending = 1;
		return;
	}
	e->eof_pending = 0;
	if (e->v5)
		queue(e, CH_CLOSE, &ch, 1);
	else {
		/* v4 has no half-close: ending the stream closes stdin. */
		e->close_now = 1;
		if (e->wsi != NULL && e->open)
			lws_callback_on_writable(e->wsi);
	}
}

int
k8s_exec_v5(const struct k8s_exec *e)
{
	return e != NULL && e->open && e->v5;
}

void
k8s_exec_cancel(struct k8s_exec *e)
{
	if (e == NULL)
		return;
	if (e->done) {
		if (e->deferred)
			e->cancelled = 1;	/* exec_report frees it */
		return;
	}
	e->done = 1;
	if (e->wsi != NULL) {
		lws_set_opaque_user_data(e->wsi, NULL);
		lws_set_timeout(e->wsi, PENDING_TIMEOUT_USER_OK,
		    LWS_TO_KILL_ASYNC);
	}
	exec_free(e);
}
