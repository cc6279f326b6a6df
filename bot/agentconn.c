#include "bot/agentconn.h"
#include "bot/ctl-client.h"
#include "bot/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN_MAX	4096
#define CONNECT_MS	30000	/* TCP, TLS and hello */

struct agentconn {
	const struct agentconn_net *net;
	const char	*sock, *url, *cafile;
	char		*token;
	int		 fd;		/* the agent socket, or -1 */
	struct ctl_io	*io;		/* TLS, or NULL */
};

static const char *
env(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* The token file's first line; NULL with *cause. */
static char *
read_token(const char *path, char **cause)
{
	char	 buf[TOKEN_MAX + 1];
	ssize_t	 n;
	size_t	 len = 0;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("cannot read SWITCHBOARD_AGENT_TOKEN_FILE"
		    " %s: %s", path, strerror(errno));
		return NULL;
	}
	while (len < TOKEN_MAX && (n = read(fd, buf + len, TOKEN_MAX -
	    len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*cause = xasprintf("cannot read"
			    " SWITCHBOARD_AGENT_TOKEN_FILE %s: %s", path,
			    strerror(errno));
			close(fd);
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	len = strcspn(buf, "\r\n");
	if (len == 0 || len >= TOKEN_MAX) {
		*cause = xasprintf("SWITCHBOARD_AGENT_TOKEN_FILE %s holds no"
		    " token", path);
		return NULL;
	}
	return xstrndup(buf, len);
}

struct agentconn *
agentconn_env(const struct agentconn_net *net, char **cause)
{
	struct agentconn	*ac;
	const char		*tok = env("SWITCHBOARD_AGENT_TOKEN");
	const char		*file = env("SWITCHBOARD_AGENT_TOKEN_FILE");

	if ((env("SWITCHBOARD_URL") == NULL &&
	    env("SWITCHBOARD_SOCKET") == NULL) || (tok == NULL &&
	    file == NULL)) {
		*cause = xstrdup("SWITCHBOARD_SOCKET (or SWITCHBOARD_URL) and"
		    " SWITCHBOARD_AGENT_TOKEN (or SWITCHBOARD_AGENT_TOKEN_FILE)"
		    " are not set (run me from an agent that switchboard"
		    " started)");
		return NULL;
	}
	if (env("SWITCHBOARD_URL") != NULL && net == NULL) {
		*cause = xstrdup("SWITCHBOARD_URL needs the full switchboard"
		    " binary");
		return NULL;
	}
	ac = xcalloc(1, sizeof *ac);
	ac->fd = -1;
	ac->net = net;
	ac->url = env("SWITCHBOARD_URL");
	ac->sock = env("SWITCHBOARD_SOCKET");
	ac->cafile = env("SWITCHBOARD_CA_FILE");
	if (tok != NULL)
		ac->token = xstrdup(tok);
	else if ((ac->token = read_token(file, cause)) == NULL) {
		free(ac);
		return NULL;
	}
	return ac;
}

int
agentconn_remote(const struct agentconn *ac)
{
	return ac->url != NULL;
}

static void
drop(struct agentconn *ac)
{
	if (ac->io != NULL)
		ac->net->close(ac->io);
	ac->io = NULL;
	ctl_disconnect(ac->fd);
	ac->fd = -1;
}

int
agentconn_call(struct agentconn *ac, json_t *req, json_t **reply,
    int timeout_ms, char **cause)
{
	int	 rc;

	*reply = NULL;
	if (ac->url != NULL && ac->io == NULL &&
	    (rc = ac->net->connect(ac->url, ac->cafile, ac->token, CONNECT_MS,
	    &ac->io, cause)) != 0)
		return rc;
	if (ac->url == NULL && ac->fd == -1 &&
	    (ac->fd = ctl_connect(ac->sock, cause)) == -1)
		return -1;
	json_object_set_new(req, "token", json_string(ac->token));
	if (ac->io != NULL)
		rc = ctl_call_io(ac->io, req, reply, timeout_ms, cause);
	else
		rc = ctl_call(ac->fd, req, reply, timeout_ms, cause);
	if (rc == -1)
		drop(ac);	/* unknown state: start afresh */
	return rc;
}

void
agentconn_free(struct agentconn *ac)
{
	if (ac == NULL)
		return;
	drop(ac);
	if (ac->token != NULL) {
		explicit_bzero(ac->token, strlen(ac->token));
		free(ac->token);
	}
	free(ac);
}
