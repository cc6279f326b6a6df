"""End-to-end tests of warm worktrees (repos.[].warm): a new agent takes the
one prepared ahead, a replacement follows, the agent's work lands on its own
branch, and a kill -9 followed by a restart leaves no worktree behind that
neither the store nor the pool owns."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import SLOW, Daemon, add_many_files, agent, check, git, make_repo, run_tests  # noqa: E402

WRITE = [("write", [agent("write.sh"), "{task}"], 60)]


def log_count(d, text):
    with open(d.errlog, encoding="utf-8", errors="replace") as f:
        return sum(1 for l in f if text in l)


def wait_log(d, text, n=1, timeout=20):
    deadline = time.time() + timeout * SLOW
    while log_count(d, text) < n:
        check(time.time() < deadline, "never %d× %r in the log:\n%s"
              % (n, text, d.stderr_tail()))
        time.sleep(0.02)


def worktree_dirs(d):
    return sorted(os.listdir(os.path.join(d.state, "worktrees")))


def test_new_agent_takes_the_warm_worktree_and_a_replacement_follows(tmp, ds):
    d = Daemon(tmp, WRITE).start()
    ds.append(d)
    wait_log(d, "ready at")
    warm = [w for w in worktree_dirs(d) if w.startswith("warm-")]
    check(len(warm) == 1, "warm worktrees %r" % warm)
    d.send("new out.txt hello")
    d.expect(r"✅ #1 done")
    # The agent ran in what was the warm worktree, renamed to its own.
    check(log_count(d, "(warm %s)" % warm[0][len("warm-"):]) == 1,
          "agent 1 did not take %s:\n%s" % (warm[0], d.stderr_tail()))
    wt = os.path.join(d.state, "worktrees", "1")
    check(d.db("SELECT worktree FROM agents WHERE id = 1") == [(wt,)],
          "recorded worktree %r" % d.db("SELECT worktree FROM agents"))
    branch = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb/",
                 cwd=d.repo).split()
    check(branch == ["sb/1-out-txt-hello"], "branches %r" % branch)
    # Its commit is on its branch, on top of main.
    check(git("show", "sb/1-out-txt-hello:out.txt", cwd=d.repo) == "hello\n",
          "out.txt on the branch")
    check(git("merge-base", "--is-ancestor", "main", "sb/1-out-txt-hello",
              cwd=d.repo) == "", "branch starts at main")
    wait_log(d, "ready at", 2)
    warm2 = [w for w in worktree_dirs(d) if w.startswith("warm-")]
    check(len(warm2) == 1 and warm2 != warm, "replacement %r" % warm2)
    check(not git("branch", "--list", "sb-warm/" + warm[0][5:],
                  cwd=d.repo).strip(), "the taken warm branch is gone")


def test_kill9_then_restart_leaves_only_recorded_and_complete_ones(tmp, ds):
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    add_many_files(repo)	# a checkout long enough to be killed in
    d = Daemon(tmp, WRITE, repo=repo).start()
    ds.append(d)
    wait_log(d, "ready at")
    d.send("new a.txt one")
    # Killed as the replacement's checkout begins (the take starts it).
    wait_log(d, "(warm ")
    d.kill9()
    # Both daemons append to one log: count what the second one adds.
    before = log_count(d, "ready at") + log_count(d, "taken up")
    d2 = Daemon(tmp, WRITE, repo=repo).start()
    ds.append(d2)
    deadline = time.time() + 20 * SLOW
    while log_count(d2, "ready at") + log_count(d2, "taken up") <= before:
        check(time.time() < deadline, "no warm worktree after the restart:"
              "\n%s" % d2.stderr_tail())
        time.sleep(0.02)
    dirs = worktree_dirs(d2)
    warm = [w for w in dirs if w.startswith("warm-")]
    check(len(warm) == 1, "warm worktrees after the restart %r" % warm)
    recorded = {os.path.basename(w) for (w,) in
                d2.db("SELECT worktree FROM agents") if w}
    check(set(dirs) - set(warm) <= recorded,
          "worktrees %r, recorded %r" % (dirs, recorded))
    lock = os.path.join(repo, ".git", "worktrees",
                        "sbw-" + warm[0][len("warm-"):], "locked")
    with open(lock) as f:
        check(f.read() == "switchboard: warm", "warm one not complete")
    listed = [l.split()[1] for l in git("worktree", "list", "--porcelain",
                                        cwd=repo).splitlines()
              if l.startswith("worktree ")]
    check(sorted(os.path.basename(p) for p in listed if p != repo) ==
          sorted(dirs), "git lists %r, on disk %r" % (listed, dirs))
    wb = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb-warm/",
             cwd=repo).split()
    check(wb == ["sb-warm/" + warm[0][len("warm-"):]],
          "warm branches %r" % wb)


def test_warm_zero_keeps_none(tmp, ds):
    d = Daemon(tmp, WRITE)
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('base = "main"; }', 'base = "main"; warm = 0; }'))
    d.start()
    ds.append(d)
    d.send("new b.txt two")
    d.expect(r"✅ #1 done")
    check(worktree_dirs(d) == ["1"], "worktrees %r" % worktree_dirs(d))
    check(log_count(d, "(warm ") == 0, "a warm worktree was used")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
