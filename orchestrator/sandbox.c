#include "orchestrator/sandbox.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/util.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

extern char **environ;

static const struct config	*cfg;
static char			*sock_path;
static char			*self_exe;
static char			*client_exe;	/* switchboard-agent beside it */
static char			*bwrap;		/* NULL: unavailable */
static char			*why_not;	/* why unavailable */
static int			 probed;

/* Top-level system paths every program needs, read-only. */
static const char *const sys_paths[] = { "/usr", "/bin", "/sbin", "/lib",
    "/lib32", "/lib64", "/libx32", "/etc" };

/* Secrets of the system that the daemon's user may be able to read. */
static const char *const masked_files[] = { "/etc/shadow", "/etc/gshadow",
    "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers" };
static const char *const masked_dirs[] = { "/etc/ssh", "/etc/sudoers.d",
    "/etc/switchboard" };

/* ---- the argv (pure) ---------------------------------------------------- */

struct args {
	char	**v;
	size_t	  n, cap;
};

static void
add(struct args *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = s != NULL ? xstrdup(s) : NULL;
	a->v[a->n] = NULL;
}

static void
add3(struct args *a, const char *opt, const char *x, const char *y)
{
	add(a, opt);
	add(a, x);
	if (y != NULL)
		add(a, y);
}

char **
sandbox_argv(const struct sandbox_spec *s)
{
	struct args	 a = { NULL, 0, 0 };
	char		*p;
	size_t		 i;

	add(&a, s->bwrap);
	/*
	 * --die-with-parent: the sandbox dies with the daemon, even on
	 * SIGKILL.  --new-session: the agent cannot push keystrokes into a
	 * terminal (TIOCSTI), and its group is the target of polite signals.
	 */
	add(&a, "--die-with-parent");
	add(&a, "--new-session");
	add(&a, "--unshare-user");
	add(&a, "--unshare-pid");
	add(&a, "--unshare-ipc");
	add(&a, "--unshare-uts");
	add(&a, "--unshare-cgroup-try");
	if (!s->network)
		add(&a, "--unshare-net");
	add3(&a, "--cap-drop", "ALL", NULL);

	for (i = 0; i < s->nsys; i++) {
		if (s->sys[i].link != NULL)
			add3(&a, "--symlink", s->sys[i].link, s->sys[i].path);
		else
			add3(&a, "--ro-bind", s->sys[i].path, s->sys[i].path);
	}
	add3(&a, "--proc", "/proc", NULL);
	add3(&a, "--dev", "/dev", NULL);
	/* Before the binds below, which may lie under /tmp or HOME. */
	add3(&a, "--tmpfs", "/tmp", NULL);
	if (s->home != NULL && s->home_at != NULL) {
		add3(&a, "--bind", s->home, s->home_at);
		add3(&a, "--setenv", "HOME", s->home_at);
	}
	add3(&a, "--setenv", "TMPDIR", "/tmp");

	/*
	 * git in a linked worktree reads the repository's .git (config,
	 * HEAD, packed-refs) and writes objects, refs, reflogs and its own
	 * worktrees/NAME (index, HEAD).  The rest stays read-only: hooks and
	 * config are code that runs outside the sandbox when a person next
	 * uses git there.
	 */
	if (s->commondir != NULL) {
		add3(&a, "--ro-bind", s->commondir, s->commondir);
		p = xasprintf("%s/objects", s->commondir);
		add3(&a, "--bind-try", p, p);
		free(p);
		p = xasprintf("%s/refs", s->commondir);
		add3(&a, "--bind-try", p, p);
		free(p);
		p = xasprintf("%s/logs", s->commondir);
		add3(&a, "--bind-try", p, p);
		free(p);
	}
	if (s->gitdir != NULL)
		add3(&a, "--bind", s->gitdir, s->gitdir);
	add3(&a, "--bind", s->worktree, s->worktree);
	if (s->socket != NULL)
		add3(&a, "--ro-bind", s->socket, s->socket);
	for (i = 0; s->ro != NULL && s->ro[i] != NULL; i++)
		add3(&a, "--ro-bind-try", s->ro[i], s->ro[i]);
	for (i = 0; s->paths != NULL && s->paths[i] != NULL; i++) {
		const char *path = s->paths[i];

		if (strncmp(path, "rw:", 3) == 0)
			add3(&a, "--bind-try", path + 3, path + 3);
		else {
			if (strncmp(path, "ro:", 3) == 0)
				path += 3;
			add3(&a, "--ro-bind-try", path, path);
		}
	}
	/* Last, so no bind above (sandbox_paths included) uncovers them. */
	for (i = 0; s->mask_dirs != NULL && s->mask_dirs[i] != NULL; i++)
		add3(&a, "--tmpfs", s->mask_dirs[i], NULL);
	for (i = 0; s->mask_files != NULL && s->mask_files[i] != NULL; i++)
		add3(&a, "--ro-bind", "/dev/null", s->mask_files[i]);
	add3(&a, "--chdir", s->worktree, NULL);
	add(&a, "--");
	for (i = 0; s->argv[i] != NULL; i++)
		add(&a, s->argv[i]);
	return a.v;
}

/* ---- probing ------------------------------------------------------------- */

/* Runs argv with output to a pipe; its exit status, first output in out. */
static int
run_quiet(char *const *argv, char *out, size_t outlen)
{
	posix_spawn_file_actions_t	 fa;
	pid_t				 pid;
	ssize_t				 n;
	size_t				 got = 0;
	int				 fds[2], status = -1;

	out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(fds[0]);
		close(fds[1]);
		snprintf(out, outlen, "cannot run %s: %s", argv[0],
		    strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while (got + 1 < outlen &&
	    (n = read(fds[0], out + got, outlen - got - 1)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	out[strcspn(out, "\n")] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *
find_in_path(const char *name)
{
	const char	*path = getenv("PATH"), *p, *e;
	char		*full;

	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchrnul(p, ':');
		if (e == p)
			continue;
		full = xasprintf("%.*s/%s", (int)(e - p), p, name);
		if (access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

static size_t
sys_entries(struct sandbox_sys *out, char links[][PATH_MAX])
{
	struct stat	 st;
	size_t		 i, n = 0;
	ssize_t		 len;

	for (i = 0; i < nitems(sys_paths); i++) {
		if (lstat(sys_paths[i], &st) == -1)
			continue;
		out[n].path = sys_paths[i];
		out[n].link = NULL;
		if (S_ISLNK(st.st_mode)) {
			len = readlink(sys_paths[i], links[n], PATH_MAX - 1);
			if (len <= 0)
				continue;
			links[n][len] = '\0';
			out[n].link = links[n];
		} else if (!S_ISDIR(st.st_mode))
			continue;
		n++;
	}
	return n;
}

/* The kernel's answer about Landlock, for the log only. */
static const char *
landlock_state(void)
{
#ifdef SYS_landlock_create_ruleset
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, 1UL);

	if (v >= 1)
		return "available (unused: the namespaces cover it)";
	return errno == EOPNOTSUPP ? "not enabled in this kernel" :
	    "not supported by this kernel";
#else
	return "unknown to this build";
#endif
}

/* bwrap with the namespaces agents get, running true; its exit status. */
static int
probe_run(const struct sandbox_sys *sys, size_t n, int unshare_net,
    char *out, size_t outlen)
{
	struct args	 a = { NULL, 0, 0 };
	size_t		 i;
	int		 rc;

	add(&a, bwrap);
	add(&a, "--die-with-parent");
	add(&a, "--new-session");
	add(&a, "--unshare-user");
	add(&a, "--unshare-pid");
	add(&a, "--unshare-ipc");
	add(&a, "--unshare-uts");
	add(&a, "--unshare-cgroup-try");
	if (unshare_net)
		add(&a, "--unshare-net");
	add3(&a, "--cap-drop", "ALL", NULL);
	for (i = 0; i < n; i++) {
		if (sys[i].link != NULL)
			add3(&a, "--symlink", sys[i].link, sys[i].path);
		else
			add3(&a, "--ro-bind", sys[i].path, sys[i].path);
	}
	add3(&a, "--proc", "/proc", NULL);
	add3(&a, "--dev", "/dev", NULL);
	add3(&a, "--tmpfs", "/tmp", NULL);
	add(&a, "--");
	add(&a, "true");
	rc = run_quiet(a.v, out, outlen);
	for (i = 0; i < a.n; i++)
		free(a.v[i]);
	free(a.v);
	return rc;
}

static void
probe(void)
{
	struct sandbox_sys	 sys[nitems(sys_paths)];
	static char		 links[nitems(sys_paths)][PATH_MAX];
	const char		*env = getenv("SWITCHBOARD_BWRAP");
	char			 out[512], ver[128];
	char			*vargv[3];
	size_t			 n;
	int			 rc, net;
	struct stat		 st;

	probed = 1;
	if (env != NULL)
		bwrap = *env != '\0' && access(env, X_OK) == 0 ? xstrdup(env) :
		    NULL;
	else
		bwrap = find_in_path("bwrap");
	if (bwrap == NULL) {
		why_not = xstrdup(env != NULL ? "$SWITCHBOARD_BWRAP names no"
		    " program" : "bwrap (Debian package bubblewrap) is not"
		    " installed");
		goto unavailable;
	}
	vargv[0] = bwrap;
	vargv[1] = (char *)"--version";
	vargv[2] = NULL;
	if (run_quiet(vargv, ver, sizeof ver) != 0)
		snprintf(ver, sizeof ver, "bwrap (version unknown)");

	n = sys_entries(sys, links);
	if ((rc = probe_run(sys, n, 0, out, sizeof out)) != 0) {
		why_not = xasprintf("%s cannot make user, PID, IPC and mount"
		    " namespaces here (exit %d: %s)", bwrap, rc, out);
		free(bwrap);
		bwrap = NULL;
		goto unavailable;
	}
	net = probe_run(sys, n, 1, out, sizeof out) == 0;

	log_info("sandbox: %s at %s: user, PID, IPC and mount namespaces"
	    " work; network namespace (network = false) %s; Landlock %s;"
	    " cgroup %s.  Each sandboxed agent runs in a PID namespace of its"
	    " own, so its whole process tree ends with it", ver, bwrap,
	    net ? "works" : "does NOT work: agents with network = false will"
	    " fail to start", landlock_state(),
	    stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0 ? "v2" :
	    "v1 (no cgroup.kill; not needed)");
	return;
unavailable:
	log_warnx("sandbox: UNAVAILABLE: %s.  Agents with sandbox = \"auto\""
	    " will run WITHOUT a sandbox: they can read and write everything"
	    " this user can (the state database, the config, other agents)",
	    why_not);
}

void
sandbox_configure(const struct config *c, const char *agent_socket)
{
	char	 buf[PATH_MAX];
	size_t	 len = sizeof buf;

	cfg = c;
	free(sock_path);
	sock_path = xstrdup(agent_socket);
	if (self_exe == NULL)
		self_exe = uv_exepath(buf, &len) == 0 ? xstrdup(buf) : NULL;
	if (client_exe == NULL && self_exe != NULL) {
		char	*slash = strrchr(self_exe, '/');

		client_exe = xasprintf("%.*s/switchboard-agent",
		    (int)(slash != NULL ? slash - self_exe : 0), self_exe);
		if (access(client_exe, X_OK) != 0) {
			free(client_exe);
			client_exe = NULL;
		}
	}
	if (!probed)
		probe();
}

int
sandbox_available(const char **why)
{
	if (bwrap != NULL)
		return 1;
	if (why != NULL)
		*why = why_not != NULL ? why_not : "not probed";
	return 0;
}

/* ---- wrapping ----------------------------------------------------------- */

/* Reads a one-line file ("gitdir: X", "../..") into buf; -1 on error. */
static int
read_line(const char *path, char *buf, size_t len)
{
	FILE	*fp;

	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(buf, (int)len, fp) == NULL) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* rel against base's directory (or absolute), canonical; NULL if missing. */
static char *
resolve_from(const char *dir, const char *rel)
{
	char	*joined, *r;

	joined = rel[0] == '/' ? xstrdup(rel) : xasprintf("%s/%s", dir, rel);
	r = realpath(joined, NULL);
	free(joined);
	return r;
}

/*
 * The worktree's admin dir (from its .git file) and the repository's .git
 * (from the admin dir's commondir file).  A worktree with a .git directory
 * of its own needs nothing more.
 */
static int
git_dirs(const char *worktree, char **gitdir, char **commondir, char **cause)
{
	struct stat	 st;
	char		 line[PATH_MAX + 16], *p;

	*gitdir = *commondir = NULL;
	p = xasprintf("%s/.git", worktree);
	if (lstat(p, &st) == -1 || S_ISDIR(st.st_mode)) {
		free(p);
		return 0;
	}
	if (read_line(p, line, sizeof line) == -1 ||
	    strncmp(line, "gitdir: ", 8) != 0) {
		*cause = xasprintf("sandbox: cannot read %s", p);
		free(p);
		return -1;
	}
	free(p);
	if ((*gitdir = resolve_from(worktree, line + 8)) == NULL) {
		*cause = xasprintf("sandbox: %s: %s", line + 8,
		    strerror(errno));
		return -1;
	}
	p = xasprintf("%s/commondir", *gitdir);
	if (read_line(p, line, sizeof line) == 0)
		*commondir = resolve_from(*gitdir, line);
	free(p);
	if (*commondir == NULL) {
		*cause = xasprintf("sandbox: no repository found for %s",
		    *gitdir);
		free(*gitdir);
		*gitdir = NULL;
		return -1;
	}
	return 0;
}

static int
mkdir_0700(const char *path, char **cause)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		*cause = xasprintf("sandbox: mkdir %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
list_add(struct args *l, char *s)	/* takes s */
{
	add(l, NULL);
	l->n--;
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
}

static void
list_free(struct args *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* A file: secret reference's path (relative to the config's directory). */
static void
mask_secret_ref(struct args *files, const char *ref)
{
	char	*dir, *p, *r;

	if (ref == NULL || strncmp(ref, "file:", 5) != 0)
		return;
	dir = xstrdup(cfg->path);
	if ((p = strrchr(dir, '/')) != NULL)
		*p = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	if ((r = resolve_from(dir, ref + 5)) != NULL)
		list_add(files, r);
	free(dir);
}

static char *
home_of_daemon(void)
{
	const char	*h = getenv("HOME");

	return h != NULL && h[0] == '/' && h[1] != '\0' ? xstrdup(h) : NULL;
}

int
sandbox_wrap(char ***argvp, const struct cfg_agent *ca, int64_t id,
    const char *worktree, int *wrapped, char **cause)
{
	struct sandbox_spec	 s;
	struct sandbox_sys	 sys[nitems(sys_paths)];
	static char		 links[nitems(sys_paths)][PATH_MAX];
	struct args		 ro = { NULL, 0, 0 }, paths = { NULL, 0, 0 };
	struct args		 mdirs = { NULL, 0, 0 }, mfiles = { NULL, 0, 0 };
	struct stat		 st;
	char			*gitdir = NULL, *commondir = NULL, *home = NULL;
	char			*home_at = NULL, *dhome = NULL, *p, *r;
	char			**out;
	const char		*why;
	size_t			 i;
	int			 rc = -1;

	*wrapped = 0;
	if (!ca->sandbox) {
		log_info("agent %lld: sandbox = \"off\": running unsandboxed",
		    (long long)id);
		return 0;
	}
	if (!sandbox_available(&why)) {
		log_warnx("agent %lld: running WITHOUT a sandbox (%s)",
		    (long long)id, why);
		return 0;
	}
	memset(&s, 0, sizeof s);
	if (git_dirs(worktree, &gitdir, &commondir, cause) != 0)
		goto out;

	/*
	 * A private HOME that lasts as long as the agent (its CLI keeps
	 * sessions there for --resume), at the path HOME has outside so
	 * tools that wrote absolute paths still find them.
	 */
	p = xasprintf("%s/home", cfg->state_dir);
	if (mkdir_0700(p, cause) != 0) {
		free(p);
		goto out;
	}
	free(p);
	home = xasprintf("%s/home/agent-%lld", cfg->state_dir, (long long)id);
	if (mkdir_0700(home, cause) != 0)
		goto out;
	dhome = home_of_daemon();
	home_at = xstrdup(dhome != NULL ? dhome : "/home/agent");

	/* The program itself and our binary, wherever they live. */
	if ((p = find_in_path((*argvp)[0])) != NULL) {
		if ((r = realpath(p, NULL)) != NULL && strcmp(r, p) != 0)
			list_add(&ro, r);
		else
			free(r);
		list_add(&ro, p);
	}
	if (self_exe != NULL)
		list_add(&ro, xstrdup(self_exe));
	/* What agents call as $SWITCHBOARD_BIN (agent-restart.c). */
	if (client_exe != NULL)
		list_add(&ro, xstrdup(client_exe));
	/* Claude Code's --mcp-config file (orchestrator/driver-claude.c). */
	p = xasprintf("%s/mcp/agent-%lld.json", cfg->state_dir, (long long)id);
	if (stat(p, &st) == 0)
		list_add(&ro, p);
	else
		free(p);

	for (i = 0; ca->sandbox_paths != NULL && ca->sandbox_paths[i] != NULL;
	    i++) {
		const char *v = ca->sandbox_paths[i], *pre = "";

		if (strncmp(v, "ro:", 3) == 0 || strncmp(v, "rw:", 3) == 0) {
			pre = strncmp(v, "rw:", 3) == 0 ? "rw:" : "ro:";
			v += 3;
		}
		if (v[0] == '~') {
			if (dhome == NULL) {
				log_warnx("agent %lld: sandbox_paths %s: HOME"
				    " is not set; skipped", (long long)id, v);
				continue;
			}
			list_add(&paths, xasprintf("%s%s%s", pre, dhome,
			    v + 1));
		} else
			list_add(&paths, xasprintf("%s%s", pre, v));
	}

	/* The bridge's own files, wherever a bind above might show them. */
	for (i = 0; i < nitems(masked_dirs); i++)
		if (lstat(masked_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
			list_add(&mdirs, xstrdup(masked_dirs[i]));
	for (i = 0; i < nitems(masked_files); i++)
		if (lstat(masked_files[i], &st) == 0 && S_ISREG(st.st_mode))
			list_add(&mfiles, xstrdup(masked_files[i]));
	if ((p = realpath(cfg->path, NULL)) != NULL)
		list_add(&mfiles, p);
	mask_secret_ref(&mfiles, cfg->slack.app_token_ref);
	mask_secret_ref(&mfiles, cfg->slack.bot_token_ref);
	mask_secret_ref(&mfiles, cfg->slack.signing_secret_ref);
	mask_secret_ref(&mfiles, cfg->matrix.access_token_ref);
	mask_secret_ref(&mfiles, cfg->matrix.password_ref);
	for (i = 0; i < cfg->nwebhooks; i++) {
		mask_secret_ref(&mfiles, cfg->webhooks[i].secret_ref);
		mask_secret_ref(&mfiles, cfg->webhooks[i].github.token_ref);
	}

	s.bwrap = bwrap;
	s.argv = *argvp;
	s.worktree = worktree;
	s.gitdir = gitdir;
	s.commondir = commondir;
	s.socket = sock_path;
	s.home = home;
	s.home_at = home_at;
	s.network = ca->network;
	s.nsys = sys_entries(sys, links);
	s.sys = sys;
	s.ro = ro.v;
	s.paths = paths.v;
	s.mask_dirs = mdirs.v;
	s.mask_files = mfiles.v;
	out = sandbox_argv(&s);
	for (i = 0; (*argvp)[i] != NULL; i++)
		free((*argvp)[i]);
	free(*argvp);
	*argvp = out;
	*wrapped = 1;
	log_info("agent %lld: sandboxed (bwrap: own PID/user/IPC/mount"
	    " namespaces, network %s, private HOME %s)", (long long)id,
	    ca->network ? "on" : "off", home);
	rc = 0;
out:
	free(gitdir);
	free(commondir);
	free(home);
	free(home_at);
	free(dhome);
	list_free(&ro);
	list_free(&paths);
	list_free(&mdirs);
	list_free(&mfiles);
	return rc;
}

/* ---- processes ------------------------------------------------------------ */

/* Field 4 (ppid) or 6 (session) of /proc/pid/stat; -1 if gone. */
static pid_t
stat_field(pid_t pid, int field)
{
	char	 path[64], buf[512], *p;
	long	 v[4];
	ssize_t	 n;
	int	 fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: skip to the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* state ppid pgrp session */
	if (sscanf(p + 1, " %*c %ld %ld %ld %ld", &v[0], &v[1], &v[2],
	    &v[3]) != 4)
		return -1;
	return (pid_t)(field == 4 ? v[0] : v[2]);
}

pid_t
sandbox_parent(pid_t pid)
{
	return stat_field(pid, 4);
}

pid_t
sandbox_session(pid_t pid)
{
	return stat_field(pid, 6);
}

int
sandbox_owns(pid_t root, pid_t pid)
{
	pid_t	 p = pid;
	int	 depth;

	if (root <= 1 || pid <= 1)
		return 0;
	for (depth = 0; depth < 128 && p > 1; depth++) {
		if (p == root)
			return 1;
		p = stat_field(p, 4);
	}
	return stat_field(pid, 6) == root;
}

/* The namespace's init: the outer bwrap's one child. */
static pid_t
sandbox_init(pid_t outer)
{
	char	 path[64], buf[64];
	FILE	*fp;
	long	 v;

	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)outer,
	    (int)outer);
	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(buf, sizeof buf, fp) == NULL || sscanf(buf, "%ld", &v) != 1)
		v = -1;
	fclose(fp);
	return (pid_t)v;
}

int
sandbox_kill(pid_t pid, int wrapped, int sig)
{
	pid_t	 init;
	int	 rc;

	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	if (!wrapped)
		return kill(-pid, sig);
	init = sandbox_init(pid);
	if (sig == SIGKILL || sig == 0) {
		rc = kill(-pid, sig);
		/* SIGKILL reaches a namespace's init even from outside. */
		if (init > 0 && sig == SIGKILL)
			kill(-init, SIGKILL);
		return rc;
	}
	if (init <= 0) {
		/* Not set up yet, or already ending: nothing polite to do. */
		return kill(-pid, 0);
	}
	return kill(-init, sig);
}
