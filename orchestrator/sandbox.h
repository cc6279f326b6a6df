/*
 * sandbox — contains each agent run: a bubblewrap (bwrap) sandbox per run,
 * so a program a language model chose reaches its worktree, the
 * repository's git objects, the system read-only, a private /tmp and HOME
 * and its own agent socket, and nothing of the bridge or of other agents.
 *
 * The decision worth knowing: bwrap, not Landlock/seccomp done by hand.
 * bwrap gives user, PID, IPC and mount namespaces with one Debian package
 * and no privileges, and a PID namespace is what makes "the whole tree dies
 * with the agent" true without cgroup v2 (our kernels have cgroup v1 and no
 * Landlock): when the agent's first process exits, or the outer bwrap is
 * killed (--die-with-parent: also when the daemon dies), the kernel kills
 * every process left in the namespace, setsid or not.
 *
 * Process shape of one sandboxed run, pids as the daemon sees them:
 *	daemon ─ P (outer bwrap, our uv child, session leader)
 *		   └ I (namespace pid 1, bwrap's init, leads a new session)
 *		       └ the agent (namespace pid 2) ─ its children …
 * The outer bwrap dies at once on SIGTERM/SIGINT without passing it on,
 * so polite signals go to I's process group (the agent and its group) and
 * only SIGKILL goes to P; sandbox_kill() hides this.
 *
 * sandbox_argv() is pure (every fact about the filesystem is in the spec)
 * so its output is unit-tested; sandbox_wrap() gathers the facts.
 */
#ifndef SB_SANDBOX_H
#define SB_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct config;
struct cfg_agent;

/* A top-level system path: bound read-only, or a symlink re-created. */
struct sandbox_sys {
	const char	*path;		/* "/usr", "/bin", … */
	const char	*link;		/* symlink target, or NULL: a directory */
};

struct sandbox_spec {
	const char		*bwrap;		/* absolute path of bwrap */
	char *const		*argv;		/* the agent's command */
	const char		*worktree;	/* read-write; the cwd */
	const char		*gitdir;	/* .git/worktrees/NAME (rw), or NULL */
	const char		*commondir;	/* the repository's .git, or NULL */
	const char		*socket;	/* the agent socket, bound alone */
	const char		*home;		/* host dir bound rw at home_at */
	const char		*home_at;	/* HOME inside */
	int			 network;	/* 0: --unshare-net */
	const struct sandbox_sys *sys;
	size_t			 nsys;
	char *const		*ro;		/* files/dirs read-only (NULL-term.) */
	char *const		*paths;		/* sandbox_paths, "~" expanded */
	char *const		*mask_dirs;	/* hidden under an empty tmpfs */
	char *const		*mask_files;	/* hidden under /dev/null */
};

/*
 * The full argv (bwrap, its options, "--", the agent's argv), each string
 * malloc'd, NULL-terminated: driver_argv_free() frees it.
 */
char	**sandbox_argv(const struct sandbox_spec *);

/*
 * Keeps cfg (borrowed) and the agent socket's path.  The first call probes
 * bwrap once (run synchronously at start: a few milliseconds) and logs
 * which features work; $SWITCHBOARD_BWRAP names bwrap ("" = unavailable)
 * instead of a search of $PATH.
 */
void	 sandbox_configure(const struct config *, const char *agent_socket);
/* 1 when bwrap works here; else 0 and *why (borrowed) says why. */
int	 sandbox_available(const char **why);

/*
 * Wraps *argv (replaced; the old one freed) in a sandbox for agent id's run
 * in worktree, as ca says.  *wrapped = 1 when it did; 0 when ca says "off"
 * or bwrap is unavailable (then logged loudly, and the run goes on
 * unsandboxed).  -1 + cause when the sandbox cannot be prepared (the
 * worktree's git files are unreadable, the private HOME cannot be made).
 */
int	 sandbox_wrap(char ***argv, const struct cfg_agent *ca, int64_t id,
	    const char *worktree, int *wrapped, char **cause);

/*
 * Signals a run started as pid (our child).  Unwrapped: pid's process
 * group.  Wrapped: SIGKILL kills the outer bwrap and the namespace's init
 * (so everything inside); other signals go to the agent's process group
 * inside, since the outer bwrap would die of them without passing them on.
 * -1 with errno like kill(2).
 */
int	 sandbox_kill(pid_t pid, int wrapped, int sig);

/*
 * Does pid belong to the run started as root: root itself, a descendant
 * (parent chain, which a sandbox's orphans never leave: they are re-parented
 * to its init), or a process of root's session (an unwrapped run is a
 * session leader; a double fork keeps the session)?
 */
int	 sandbox_owns(pid_t root, pid_t pid);
/* What sandbox_owns reads: pid's parent and session; -1 if gone. */
pid_t	 sandbox_parent(pid_t pid);
pid_t	 sandbox_session(pid_t pid);

#endif
