/*
 * The sandbox's bwrap argv (a pure function of its spec) and the process
 * checks behind sandbox_owns()/sandbox_kill().
 */
#include "orchestrator/sandbox.h"
#include "orchestrator/driver.h"
#include "bot/util.h"
#include "t.h"

#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static char *const cmd[] = { "/opt/agent", "--flag", "the task", NULL };
static const struct sandbox_sys sys[] = { { "/usr", NULL },
    { "/bin", "usr/bin" }, { "/etc", NULL } };

static void
spec_init(struct sandbox_spec *s)
{
	static char *const ro[] = { "/opt/agent", "/srv/sb/switchboard", NULL };
	static char *const paths[] = { "rw:/root/.claude", "ro:/opt/node",
	    "/srv/docs", NULL };
	static char *const mdirs[] = { "/etc/ssh", NULL };
	static char *const mfiles[] = { "/etc/shadow", "/srv/sb.conf", NULL };

	memset(s, 0, sizeof *s);
	s->bwrap = "/usr/bin/bwrap";
	s->argv = cmd;
	s->worktree = "/state/worktrees/3";
	s->gitdir = "/repo/.git/worktrees/3";
	s->commondir = "/repo/.git";
	s->socket = "/state/agent.sock";
	s->home = "/state/home/agent-3";
	s->home_at = "/root";
	s->network = 1;
	s->sys = sys;
	s->nsys = nitems(sys);
	s->ro = ro;
	s->paths = paths;
	s->mask_dirs = mdirs;
	s->mask_files = mfiles;
}

/* Index of the option opt with arguments x (and y), or -1. */
static int
find(char **v, const char *opt, const char *x, const char *y)
{
	int	 i;

	for (i = 0; v[i] != NULL; i++)
		if (strcmp(v[i], opt) == 0 && v[i + 1] != NULL &&
		    strcmp(v[i + 1], x) == 0 && (y == NULL ||
		    (v[i + 2] != NULL && strcmp(v[i + 2], y) == 0)))
			return i;
	return -1;
}

static int
find1(char **v, const char *opt)
{
	int	 i;

	for (i = 0; v[i] != NULL; i++)
		if (strcmp(v[i], opt) == 0)
			return i;
	return -1;
}

TEST(argv_namespaces_and_the_command_after_double_dash)
{
	struct sandbox_spec	 s;
	char			**v;
	int			 dd, n;

	spec_init(&s);
	v = sandbox_argv(&s);
	CHECK_STR(v[0], "/usr/bin/bwrap");
	CHECK(find1(v, "--unshare-user") > 0);
	CHECK(find1(v, "--unshare-pid") > 0);
	CHECK(find1(v, "--unshare-ipc") > 0);
	CHECK(find1(v, "--die-with-parent") > 0);
	CHECK(find1(v, "--new-session") > 0);
	CHECK(find(v, "--cap-drop", "ALL", NULL) > 0);
	CHECK(find1(v, "--unshare-net") < 0);	/* network on */
	CHECK(find(v, "--proc", "/proc", NULL) > 0);
	CHECK(find(v, "--chdir", "/state/worktrees/3", NULL) > 0);
	dd = find1(v, "--");
	CHECK(dd > 0);
	for (n = 0; v[n] != NULL; n++)
		;
	CHECK_INT(n, dd + 4);
	CHECK_STR(v[dd + 1], "/opt/agent");
	CHECK_STR(v[dd + 3], "the task");
	driver_argv_free(v);

	s.network = 0;
	v = sandbox_argv(&s);
	CHECK(find1(v, "--unshare-net") > 0);
	CHECK(find1(v, "--unshare-net") < find1(v, "--"));
	driver_argv_free(v);
}

TEST(argv_binds_worktree_git_socket_home_and_nothing_else_of_the_state)
{
	struct sandbox_spec	 s;
	char			**v;
	int			 i, tmp, home;

	spec_init(&s);
	v = sandbox_argv(&s);
	CHECK(find(v, "--ro-bind", "/usr", "/usr") > 0);
	CHECK(find(v, "--symlink", "usr/bin", "/bin") > 0);
	CHECK(find(v, "--ro-bind", "/etc", "/etc") > 0);
	CHECK(find(v, "--bind", "/state/worktrees/3", "/state/worktrees/3") > 0);
	CHECK(find(v, "--bind", "/repo/.git/worktrees/3",
	    "/repo/.git/worktrees/3") > 0);
	/* The repository read-only, but objects and refs writable after. */
	CHECK(find(v, "--ro-bind", "/repo/.git", "/repo/.git") > 0);
	CHECK(find(v, "--bind-try", "/repo/.git/objects", "/repo/.git/objects")
	    > find(v, "--ro-bind", "/repo/.git", "/repo/.git"));
	CHECK(find(v, "--bind-try", "/repo/.git/refs", "/repo/.git/refs") > 0);
	CHECK(find(v, "--ro-bind", "/state/agent.sock", "/state/agent.sock")
	    > 0);
	/* Private /tmp and HOME come before the binds that may lie in them. */
	tmp = find(v, "--tmpfs", "/tmp", NULL);
	home = find(v, "--bind", "/state/home/agent-3", "/root");
	CHECK(tmp > 0 && home > tmp);
	CHECK(home < find(v, "--bind", "/state/worktrees/3",
	    "/state/worktrees/3"));
	CHECK(find(v, "--setenv", "HOME", "/root") > 0);
	/* No other path under /state is bound. */
	for (i = 0; v[i] != NULL; i++)
		if (strncmp(v[i], "/state", 6) == 0)
			CHECK(strcmp(v[i], "/state/worktrees/3") == 0 ||
			    strcmp(v[i], "/state/home/agent-3") == 0 ||
			    strcmp(v[i], "/state/agent.sock") == 0);
	driver_argv_free(v);

	/* A worktree with its own .git directory needs no repository. */
	s.gitdir = s.commondir = NULL;
	v = sandbox_argv(&s);
	for (i = 0; v[i] != NULL; i++)
		CHECK(strncmp(v[i], "/repo", 5) != 0);
	driver_argv_free(v);
}

TEST(argv_sandbox_paths_modes_and_masks_come_last)
{
	struct sandbox_spec	 s;
	char			**v;
	int			 last_bind, i;

	spec_init(&s);
	v = sandbox_argv(&s);
	CHECK(find(v, "--bind-try", "/root/.claude", "/root/.claude") > 0);
	CHECK(find(v, "--ro-bind-try", "/opt/node", "/opt/node") > 0);
	CHECK(find(v, "--ro-bind-try", "/srv/docs", "/srv/docs") > 0);
	CHECK(find(v, "--ro-bind-try", "/opt/agent", "/opt/agent") > 0);
	last_bind = 0;
	for (i = 0; v[i] != NULL; i++)
		if (strstr(v[i], "bind") != NULL && strcmp(v[i + 1],
		    "/dev/null") != 0)
			last_bind = i;
	/* No bind after a mask can uncover it, sandbox_paths included. */
	CHECK(find(v, "--tmpfs", "/etc/ssh", NULL) > last_bind);
	CHECK(find(v, "--ro-bind", "/dev/null", "/etc/shadow") > last_bind);
	CHECK(find(v, "--ro-bind", "/dev/null", "/srv/sb.conf") > last_bind);
	driver_argv_free(v);
}

TEST(owns_its_children_and_session_not_strangers)
{
	pid_t	 child, grand;
	int	 fds[2], st;
	char	 c;

	CHECK(sandbox_owns(getpid(), getpid()));
	CHECK(!sandbox_owns(getpid(), 1));
	CHECK(!sandbox_owns(0, getpid()));
	CHECK(pipe(fds) == 0);
	if ((child = fork()) == 0) {
		/* A grandchild, then wait to be killed. */
		if (fork() == 0) {
			close(fds[0]);
			if (write(fds[1], "x", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		pause();
		_exit(0);
	}
	close(fds[1]);
	CHECK(read(fds[0], &c, 1) == 1);
	close(fds[0]);
	/* The grandchild is ours through the parent chain. */
	grand = -1;
	{
		char	 path[64];
		FILE	*fp;
		long	 g;

		snprintf(path, sizeof path, "/proc/%d/task/%d/children",
		    (int)child, (int)child);
		if ((fp = fopen(path, "r")) != NULL) {
			if (fscanf(fp, "%ld", &g) == 1)
				grand = (pid_t)g;
			fclose(fp);
		}
	}
	CHECK(grand > 0);
	CHECK(sandbox_owns(getpid(), grand));
	CHECK(sandbox_owns(child, grand));
	CHECK(!sandbox_owns(grand, child));
	kill(grand, SIGKILL);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
}

int
main(void)
{
	RUN(argv_namespaces_and_the_command_after_double_dash);
	RUN(argv_binds_worktree_git_socket_home_and_nothing_else_of_the_state);
	RUN(argv_sandbox_paths_modes_and_masks_come_last);
	RUN(owns_its_children_and_session_not_strangers);
	return t_done();
}
