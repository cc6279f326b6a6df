#include "orchestrator/k8s.h"
#include "bot/http.h"
#include "bot/log.h"
#include "bot/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K8S_SA_DIR	"/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_MAX_LINE	(4 * 1024 * 1024)

struct k8s {
	char	*server;		/* https://host:port, no trailing '/' */
	char	*ca_file;		/* NULL = system CAs */
	char	*token, *token_file;	/* one of them, or a client cert */
	char	*client_cert, *client_key;
};

static char	*auth_header(struct k8s *);

struct k8s_op {
	k8s_cb		 cb;
	k8s_line_fn	 line;
	void		*arg;
	struct buf	 partial;	/* a streamed line not yet complete */
	char		*auth;		/* the header, scrubbed after */
	struct http_req	*req;
	int		 in_line;	/* line() is running */
	int		 dead;		/* cancelled from line() */
	void		(*free_arg)(void *);
	struct k8s_op	*prev, *next;	/* all in flight */
};

static struct k8s_op	*k8s_ops;

const char *
k8s_server(const struct k8s *k)
{
	return k->server;
}

static char *
read_small(const char *path, char **cause)
{
	FILE	*f;
	char	 b[65536];
	size_t	 n;

	if ((f = fopen(path, "r")) == NULL) {
		*cause = xasprintf("%s: cannot read", path);
		return NULL;
	}
	n = fread(b, 1, sizeof b - 1, f);
	fclose(f);
	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' ||
	    b[n - 1] == ' '))
		n--;
	return xstrndup(b, n);
}

/* A string member of obj, or NULL. */
static const char *
jstr(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* The "name": x entry of a kubeconfig list, its member `inner`. */
static json_t *
named(json_t *root, const char *list, const char *name, const char *inner)
{
	json_t	*e;
	size_t	 i;

	if (name == NULL)
		return NULL;
	json_array_foreach(json_object_get(root, list), i, e)
		if (jstr(e, "name") != NULL && strcmp(jstr(e, "name"), name) == 0)
			return json_object_get(e, inner);
	return NULL;
}

/* A path in a kubeconfig is relative to the file's directory. */
static char *
kc_path(const char *kubeconfig, const char *p)
{
	const char	*slash;

	if (p == NULL)
		return NULL;
	if (*p == '/' || (slash = strrchr(kubeconfig, '/')) == NULL)
		return xstrdup(p);
	return xasprintf("%.*s/%s", (int)(slash - kubeconfig), kubeconfig, p);
}

static int
load_kubeconfig(struct k8s *k, const char *path, char **cause)
{
	json_t		*root, *ctx, *cl, *user;
	json_error_t	 je;
	const char	*server;

	if ((root = json_load_file(path, 0, &je)) == NULL) {
		*cause = xasprintf("%s: line %d: %s (the daemon reads kubeconfig"
		    " files in JSON: kubectl config view --raw -o json)", path,
		    je.line, je.text);
		return -1;
	}
	ctx = named(root, "contexts", jstr(root, "current-context"), "context");
	cl = named(root, "clusters", jstr(ctx, "cluster"), "cluster");
	user = named(root, "users", jstr(ctx, "user"), "user");
	if (ctx == NULL || cl == NULL || (server = jstr(cl, "server")) == NULL) {
		*cause = xasprintf("%s: no current-context with a cluster "
		    "server", path);
		json_decref(root);
		return -1;
	}
	if (json_object_get(user, "exec") != NULL ||
	    json_object_get(user, "auth-provider") != NULL ||
	    jstr(cl, "certificate-authority-data") != NULL ||
	    jstr(user, "client-certificate-data") != NULL) {
		*cause = xasprintf("%s: exec/auth-provider credentials and "
		    "inline *-data are not supported; use a token or files",
		    path);
		json_decref(root);
		return -1;
	}
	k->server = xstrdup(server);
	k->ca_file = kc_path(path, jstr(cl, "certificate-authority"));
	if (jstr(user, "token") != NULL)
		k->token = xstrdup(jstr(user, "token"));
	k->token_file = kc_path(path, jstr(user, "tokenFile"));
	k->client_cert = kc_path(path, jstr(user, "client-certificate"));
	k->client_key = kc_path(path, jstr(user, "client-key"));
	json_decref(root);
	return 0;
}

struct k8s *
k8s_open(const char *kubeconfig, char **cause)
{
	struct k8s	*k = xcalloc(1, sizeof *k);
	const char	*host, *port;
	size_t		 n;

	if (kubeconfig != NULL) {
		if (load_kubeconfig(k, kubeconfig, cause) == -1) {
			k8s_close(k);
			return NULL;
		}
	} else {
		host = getenv("KUBERNETES_SERVICE_HOST");
		port = getenv("KUBERNETES_SERVICE_PORT");
		if (host == NULL || port == NULL) {
			*cause = xstrdup("not in a cluster (no "
			    "KUBERNETES_SERVICE_HOST) and no cluster.kubeconfig");
			k8s_close(k);
			return NULL;
		}
		k->server = strchr(host, ':') != NULL ?
		    xasprintf("https://[%s]:%s", host, port) :
		    xasprintf("https://%s:%s", host, port);
		k->ca_file = xstrdup(K8S_SA_DIR "/ca.crt");
		k->token_file = xstrdup(K8S_SA_DIR "/token");
	}
	n = strlen(k->server);
	while (n > 0 && k->server[n - 1] == '/')
		k->server[--n] = '\0';
	return k;
}

void
k8s_close(struct k8s *k)
{
	if (k == NULL)
		return;
	free(k->server);
	free(k->ca_file);
	if (k->token != NULL)
		explicit_bzero(k->token, strlen(k->token));
	free(k->token);
	free(k->token_file);
	free(k->client_cert);
	free(k->client_key);
	free(k);
}

const char *
k8s_ca_file(const struct k8s *k)
{
	return k->ca_file;
}

void
k8s_client_cert(const struct k8s *k, const char **cert, const char **key)
{
	*cert = k->client_cert;
	*key = k->client_key;
}

char *
k8s_auth_header(struct k8s *k)
{
	return auth_header(k);
}

static char *
auth_header(struct k8s *k)
{
	char	*tok, *cause = NULL, *h;

	if (k->token_file != NULL) {
		if ((tok = read_small(k->token_file, &cause)) == NULL) {
			log_warnx("kubernetes: %s", cause);
			free(cause);
			return NULL;
		}
		h = xasprintf("Authorization: Bearer %s", tok);
		explicit_bzero(tok, strlen(tok));
		free(tok);
		return h;
	}
	if (k->token != NULL)
		return xasprintf("Authorization: Bearer %s", k->token);
	return NULL;
}

static void
op_free(struct k8s_op *op)
{
	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (k8s_ops == op)
		k8s_ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	if (op->auth != NULL)
		explicit_bzero(op->auth, strlen(op->auth));
	free(op->auth);
	buf_free(&op->partial);
	free(op);
}

/* One line to the stream's owner; 0 if it cancelled the op meanwhile. */
static int
op_line(struct k8s_op *op, const char *p, size_t n)
{
	op->in_line = 1;
	op->line(p, n, op->arg);
	op->in_line = 0;
	if (op->dead) {
		op_free(op);
		return 0;
	}
	return 1;
}

void
k8s_cancel(struct k8s_op *op)
{
	if (op == NULL)
		return;
	http_cancel(op->req);	/* deferred by http.c inside its callbacks */
	op->req = NULL;
	if (op->free_arg != NULL) {
		op->free_arg(op->arg);
		op->free_arg = NULL;
	}
	if (op->in_line)
		op->dead = 1;
	else
		op_free(op);
}

void
k8s_on_cancel(struct k8s_op *op, void (*free_arg)(void *))
{
	op->free_arg = free_arg;
}

void
k8s_cancel_all(void)
{
	struct k8s_op	*op;

	for (op = k8s_ops; op != NULL; op = op->next)
		if (!op->dead)
			break;
	while (op != NULL) {
		k8s_cancel(op);
		for (op = k8s_ops; op != NULL; op = op->next)
			if (!op->dead)
				break;
	}
}

static void
op_done(const struct http_response *res, const char *error, void *arg)
{
	struct k8s_op	*op = arg;
	json_t		*obj = NULL;

	op->req = NULL;
	if (op->line != NULL && op->partial.len > 0) {
		struct buf	 last = op->partial;

		memset(&op->partial, 0, sizeof op->partial);
		if (!op_line(op, last.data, last.len)) {
			buf_free(&last);
			return;
		}
		buf_free(&last);
	}
	if (res != NULL && res->body_len > 0)
		obj = json_loadb(res->body, res->body_len, 0, NULL);
	op->cb(res != NULL ? res->status : 0, obj, error, op->arg);
	json_decref(obj);
	op_free(op);
}

static void
op_data(const char *p, size_t n, void *arg)
{
	struct k8s_op	*op = arg;
	const char	*nl;

	while (n > 0) {
		if ((nl = memchr(p, '\n', n)) == NULL) {
			if (op->partial.len + n > K8S_MAX_LINE) {
				if (!op_line(op, op->partial.data,
				    op->partial.len))
					return;
				buf_reset(&op->partial);
			}
			buf_add(&op->partial, p, n);
			return;
		}
		buf_add(&op->partial, p, (size_t)(nl - p));
		if (!op_line(op, op->partial.data, op->partial.len))
			return;
		buf_reset(&op->partial);
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
}

static struct k8s_op *
request(struct k8s *k, const char *method, const char *path, json_t *body,
    k8s_line_fn line, k8s_cb cb, void *arg)
{
	struct http_request_opts o = { 0 };
	struct k8s_op		*op = xcalloc(1, sizeof *op);
	const char		*hdrs[4];
	char			*url, *data = NULL;
	int			 nh = 0;

	op->cb = cb;
	op->line = line;
	op->arg = arg;
	url = xasprintf("%s%s", k->server, path);
	hdrs[nh++] = "Accept: application/json";
	if (body != NULL) {
		/* A JSON merge patch: only the fields given change. */
		hdrs[nh++] = strcmp(method, "PATCH") == 0 ?
		    "Content-Type: application/merge-patch+json" :
		    "Content-Type: application/json";
		data = json_dumps(body, JSON_COMPACT);
	}
	if ((op->auth = auth_header(k)) != NULL)
		hdrs[nh++] = op->auth;
	hdrs[nh] = NULL;
	o.method = method;
	o.url = url;
	o.headers = hdrs;
	o.body = data;
	o.body_len = data != NULL ? strlen(data) : 0;
	o.ca_file = k->ca_file;
	o.client_cert = k->client_cert;
	o.client_key = k->client_key;
	if (line != NULL) {
		o.on_data = op_data;
		/* A watch ends itself (timeoutSeconds); a log ends with its pod. */
		o.timeout_ms = 24L * 3600 * 1000;
	}
	op->req = http_request(&o, op_done, op);
	op->next = k8s_ops;
	if (k8s_ops != NULL)
		k8s_ops->prev = op;
	k8s_ops = op;
	/* curl copied the headers; the token need not wait for the reply. */
	if (op->auth != NULL) {
		explicit_bzero(op->auth, strlen(op->auth));
		free(op->auth);
		op->auth = NULL;
	}
	free(url);
	free(data);
	return op;
}

struct k8s_op *
k8s_call(struct k8s *k, const char *method, const char *path, json_t *body,
    k8s_cb cb, void *arg)
{
	return request(k, method, path, body, NULL, cb, arg);
}

struct k8s_op *
k8s_stream(struct k8s *k, const char *path, k8s_line_fn line, k8s_cb done,
    void *arg)
{
	return request(k, "GET", path, NULL, line, done, arg);
}

char *
k8s_error(long status, json_t *obj, const char *error)
{
	if (error != NULL)
		return xstrdup(error);
	if (jstr(obj, "message") != NULL)
		return xasprintf("%s (HTTP %ld)", jstr(obj, "message"), status);
	return xasprintf("HTTP %ld", status);
}

char *
k8s_qs(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf	 b = { 0 };
	unsigned char	 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~')
			buf_add(&b, s, 1);
		else
			buf_printf(&b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	if (b.data == NULL)
		buf_add(&b, "", 0);
	return buf_steal(&b);
}
