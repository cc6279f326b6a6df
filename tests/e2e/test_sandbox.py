"""Containment, end to end: agents that attack (tests/e2e/agents/attack-*.sh)
run in the real daemon, once with sandbox = "auto" (bubblewrap) and once with
sandbox = "off", and each test asserts what holds in that mode: with the
sandbox, every attack fails; without it, what the daemon itself still
guarantees (scrubbed environment, tokens bound to their agent's processes,
the control socket closed to agents, per-agent connection caps, orphans
killed after a restart) and, stated as assertions, what an unsandboxed agent
can do (read the database and the config, leave a setsid child behind)."""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import (AGENTS, SLOW, Daemon, agent, check, launch,  # noqa: E402
                log_text, new_thread, run_tests, wait_for_log, wait_until,
                write_script)

SECRET = "xoxb-sandbox-test-secret-4d1f"
MARKER = "config-marker-9c2e"


def daemon(tmp, mode, env=None, extra_agent="", extra="", timeout=60):
    """One agent "a": role.sh runs tests/e2e/agents/ROLE.sh from the task."""
    settings = 'sandbox = "%s"; sandbox_paths = [ "%s" ]; %s' % (
        mode, AGENTS, extra_agent)
    env = dict({"SB_TEST_SECRET": SECRET}, **(env or {}))
    d = Daemon(tmp, [("a", [agent("role.sh"), "{task}"], timeout, settings)],
               env=env,
               adapters='slack = { enabled = false; '
                        'bot_token = "env:SB_TEST_SECRET"; };',
               extra="# %s\n%s" % (MARKER, extra))
    return d


def worktree_file(d, agent_id, name, timeout=10):
    """Waits for a file an agent writes in its worktree; its text."""
    path = os.path.join(d.state, "worktrees", str(agent_id), name)
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            time.sleep(0.1)    # let the writer finish its line
            with open(path, errors="replace") as f:
                return f.read()
        time.sleep(0.05)
    raise AssertionError("%s never appeared" % path)


def procs_with_argv(argv):
    """Pids of host processes whose argv is exactly argv."""
    want = "\0".join(argv) + "\0"
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p) as f:
                if f.read() == want:
                    out.append(int(p))
        except OSError:
            pass
    return out


def with_agent_running(tmp, ds, mode):
    """A daemon whose agent #1 hangs, running, in thread t; (d, t)."""
    d = launch(ds, daemon(tmp, mode))
    t = new_thread(d, "hang")
    d.expect(r"#1 a · running")
    return d, t


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ---- the attacks, per mode -------------------------------------------------

def attack_read_secrets(tmp, ds, mode):
    d = launch(ds, daemon(tmp, mode))
    t = new_thread(d, "attack-read %s" % d.conf)
    d.expect(r"✅ #1 done")
    loot = worktree_file(d, 1, "loot.txt")
    check("== ppid" in loot, "the attack ran: %r" % loot[:200])
    # Scrubbed in place at start: not even the daemon's own
    # /proc/PID/environ holds it, sandbox or not.
    check(SECRET not in loot, "a bridge secret was read")
    check("SB_TEST_SECRET=" not in loot, "the secret's variable was read")
    if mode == "auto":
        check("SQLite format 3" not in loot, "the state database was read")
        check(MARKER not in loot, "the config file was read")
        # Only the sandbox's own processes are there to look at.
        pids = re.findall(r"^== /proc/(\d+)/environ", loot, re.M)
        check(all(int(p) < 50 for p in pids) and len(pids) < 10,
              "other processes visible: %r" % pids)
    else:
        # What an unsandboxed agent of the same user still reads.
        check("SQLite format 3" in loot, "off: database unreadable?")
        check(MARKER in loot, "off: config unreadable?")
    # A reload resolves env: again, from the daemon's copies: it works,
    # and the next agent finds the environment just as clean.
    d.proc.send_signal(signal.SIGHUP)
    check(wait_for_log(d, "reload: access, routes"), "reload failed: %s"
          % d.stderr_tail(5))
    d.send("t%s new attack-read %s" % (t, d.conf))
    d.expect(r"✅ #2 done")
    loot = worktree_file(d, 2, "loot.txt")
    check("== ppid" in loot and SECRET not in loot and
          "SB_TEST_SECRET=" not in loot, "after reload: secret readable")
    check(d.stop() == 0, "clean exit")


def attack_borrow_token(tmp, ds, mode):
    d, t = with_agent_running(tmp, ds, mode)
    d.send("t%s new attack-borrow" % t)
    d.expect(r"#2 a · running")
    pid = d.db("SELECT pid FROM agents WHERE id = 1")[0][0]
    with open("/proc/%d/environ" % pid) as f:
        env = dict(l.split("=", 1) for l in f.read().split("\0") if "=" in l)
    victim = env["SWITCHBOARD_AGENT_TOKEN"]
    with open(os.path.join(d.state, "worktrees", "2", "stolen"), "w") as f:
        f.write(victim)
    d.expect(r"✅ #2 done", timeout=20)
    out = worktree_file(d, 2, "borrow.txt")
    check("progress 1" in out and "done 1" in out, "borrowed token: %r" % out)
    check("belongs to another agent's processes" in out, out)
    check(not d.saw("pwned"), "the attacker spoke as #1")
    found = int(re.search(r"found (\d+)", out).group(1))
    if mode == "auto":
        check(found == 0, "tokens visible in the sandbox: %d" % found)
    else:
        check(found >= 1, "off: other agents' tokens are readable (%d)" % found)
    check(d.stop() == 0, "clean exit")


def attack_control_socket(tmp, ds, mode):
    d, t = with_agent_running(tmp, ds, mode)
    d.send("t%s new attack-ctl 1" % t)
    d.expect(r"✅ #2 done", timeout=20)
    out = worktree_file(d, 2, "ctl.txt")
    if mode == "auto":
        # Not even there: the sandbox holds no switchboard.sock.
        check("status 4" in out and "cancel 4" in out, out)
        check("no daemon" in out, out)
    else:
        check("status 1" in out and "cancel 1" in out, out)
        check("permission denied" in out, out)
    check(not d.saw(r"#1 .*cancelled"), "the attacker cancelled #1")
    check(d.db("SELECT status FROM agents WHERE id = 1")[0][0] == "running",
          "#1 no longer running")
    check(d.stop() == 0, "clean exit")


def attack_write_outside(tmp, ds, mode):
    tag = "%d" % random.randrange(10 ** 9)
    d = daemon(tmp, mode)
    home = os.environ.get("HOME", "/root")
    targets = {
        "repo": os.path.join(d.repo, "README.md"),
        "hook": os.path.join(d.repo, ".git", "hooks", "pre-commit"),
        "state": os.path.join(d.state, "evil-" + tag),
        "home": os.path.join(home, ".sb-sandbox-test-" + tag),
        "tmp": "/tmp/sb-sandbox-test-" + tag,
    }
    if mode == "auto":
        # Never attempted unsandboxed: as root that would really write.
        targets["gitconfig"] = os.path.join(d.repo, ".git", "config")
        targets["etc"] = "/etc/sb-sandbox-test-" + tag
        targets["usr"] = "/usr/sb-sandbox-test-" + tag
    launch(ds, d)
    try:
        d.send("new attack-write %s" % " ".join(targets.values()))
        d.expect(r"✅ #1 done")
        out = worktree_file(d, 1, "writes.txt")
        res = {k: ("OK %s" % p) in out for k, p in targets.items()}
        if mode == "auto":
            # Read-only inside: the repository's .git, the system.
            for k in ("hook", "gitconfig", "etc", "usr"):
                check(not res[k], "wrote %s: %s" % (k, targets[k]))
            # Nothing reached the real files (the repo's checkout and the
            # state dir are simply not there: a write lands in the
            # sandbox's private /tmp at most).
            for k in ("repo", "hook", "state", "gitconfig", "etc", "usr"):
                p = targets[k]
                check(not os.path.exists(p) or
                      "written by an agent" not in open(p, errors="replace")
                      .read(), "%s changed on the host: %s" % (k, p))
            # Private tmp and HOME: writable inside, invisible outside.
            check(res["tmp"] and res["home"], out)
            check(not os.path.exists(targets["tmp"]), "/tmp is not private")
            check(not os.path.exists(targets["home"]), "HOME is not private")
            check(os.path.exists(os.path.join(
                d.state, "home", "agent-1", ".sb-sandbox-test-" + tag)),
                "private HOME not kept in the state dir")
        else:
            for k in ("repo", "hook", "state", "tmp", "home"):
                check(res[k], "off: %s not writable?" % k)
        check(d.stop() == 0, "clean exit")
    finally:
        for k in ("home", "tmp"):
            if os.path.exists(targets[k]):
                os.unlink(targets[k])


def attack_escape_cancel(tmp, ds, mode):
    n = random.randrange(40000, 49999)
    d = launch(ds, daemon(tmp, mode))
    try:
        t = new_thread(d, "attack-escape %d" % n)
        d.expect(r"children left")
        setsid = procs_with_argv(["sleep", str(n)])
        forked = procs_with_argv(["sleep", str(n + 1)])
        check(len(setsid) == 1 and len(forked) == 1,
              "the attack did not start: %r %r" % (setsid, forked))
        d.send("t%s cancel #1" % t)
        d.expect(r"⚠️ #1 cancelled", timeout=15)
        gone = wait_until(lambda: not pid_alive(forked[0]), 5)
        check(gone, "a double-forked child outlived the cancel")
        if mode == "auto":
            check(wait_until(lambda: not pid_alive(setsid[0]), 5),
                  "a setsid child outlived the cancel")
        else:
            # Unsandboxed, a new session escapes the process-group kill.
            check(pid_alive(setsid[0]), "off: setsid child was killed?")
        check(d.stop() == 0, "clean exit")
    finally:
        for p in procs_with_argv(["sleep", str(n)]) + \
                procs_with_argv(["sleep", str(n + 1)]):
            os.kill(p, signal.SIGKILL)


def attack_flood_socket(tmp, ds, mode):
    d = launch(ds, daemon(tmp, mode))
    t = new_thread(d, "attack-flood")
    out = worktree_file(d, 1, "flood.txt", timeout=20)
    check(out.strip() == "kept 8", "flooder kept: %r" % out)
    d.send("t%s new talk" % t)
    d.expect(r"✅ #2 done", timeout=20)
    d.expect(r"talked fine")
    check(d.saw(r"#1 a · running"), "the flooder is still running")
    check(d.stop() == 0, "clean exit")


def orphan_killed_after_restart(tmp, ds, mode):
    d = launch(ds, daemon(tmp, mode))
    d.send("new orphan")
    d.expect(r"tick")
    pid = d.db("SELECT pid FROM agents WHERE id = 1")[0][0]
    d.kill9()
    rcfile = os.path.join(d.state, "worktrees", "1", "rc.txt")
    if mode == "auto":
        # The sandbox dies with the daemon (--die-with-parent).
        check(wait_until(lambda: not pid_alive(pid), 5),
              "sandbox outlived the daemon")
    else:
        # It ignores SIGTERM and keeps calling a dead daemon.
        check(pid_alive(pid), "off: orphan died by itself?")
        n = len(open(rcfile).read().split())
        check(wait_until(lambda: len(open(rcfile).read().split()) > n + 2),
              "orphan stopped calling")
    d2 = launch(ds, daemon(tmp, mode))
    d2.expect(r"#1 was interrupted")
    try:
        check(wait_until(lambda: not pid_alive(pid), 10),
              "orphan that ignores SIGTERM still runs after the restart")
    finally:
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    codes = open(rcfile).read().split()
    check("141" not in codes, "switchboard agent died of SIGPIPE: %r" % codes)
    check(set(codes) <= {"0", "4"}, "exit codes %r" % sorted(set(codes)))
    if mode == "off":
        check("4" in codes, "no daemon: exit 4 expected: %r" % codes)
    check(d2.stop() == 0, "clean exit")


for _mode in ("auto", "off"):
    for _name, _fn in [
            ("agent_cannot_read_bridge_secrets", attack_read_secrets),
            ("agent_cannot_use_another_agents_token", attack_borrow_token),
            ("agent_cannot_use_the_control_socket", attack_control_socket),
            ("agent_cannot_write_outside_its_worktree", attack_write_outside),
            ("cancel_kills_setsid_and_double_forked_children",
             attack_escape_cancel),
            ("flood_of_256_connections_does_not_block_another_agent",
             attack_flood_socket),
            ("orphan_ignoring_sigterm_is_gone_after_restart",
             orphan_killed_after_restart)]:
        globals()["test_%s_%s" % (_name, _mode)] = (
            lambda tmp, ds, fn=_fn, m=_mode: fn(tmp, ds, m))


# ---- the daemon itself ------------------------------------------------------

def test_state_dir_and_files_are_0700_and_0600(tmp, ds):
    state = os.path.join(tmp, "state")
    os.makedirs(os.path.join(state, "mcp"))
    os.chmod(state, 0o755)
    old = os.path.join(state, "old.txt")
    open(old, "w").close()
    os.chmod(old, 0o644)
    cfg = os.path.join(state, "mcp", "agent-9.json")
    open(cfg, "w").close()
    os.chmod(cfg, 0o644)
    d = launch(ds, daemon(tmp, "auto"))
    d.send("new talk")
    d.expect(r"✅ #1 done")
    check(os.stat(state).st_mode & 0o777 == 0o700,
          "state dir %o" % (os.stat(state).st_mode & 0o777))
    seen = []
    for base in (state, os.path.join(state, "mcp")):
        for name in os.listdir(base):
            p = os.path.join(base, name)
            mode = os.lstat(p).st_mode & 0o777
            seen.append(name)
            check(mode & 0o077 == 0, "%s is %o" % (p, mode))
    for name in ("switchboard.db", "switchboard.db-wal", "switchboard.db-shm",
                 "switchboard.sock", "agent.sock", "old.txt"):
        check(name in seen, "%s missing from %r" % (name, seen))
    check(d.stop() == 0, "clean exit")


def test_state_dir_of_another_user_is_refused(tmp, ds):
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    os.chown(state, 65534, 65534)
    d = launch(ds, daemon(tmp, "auto"))
    rc = d.proc.wait(timeout=10 * SLOW)
    check(rc == 1, "exit %d" % rc)
    err = log_text(d)
    check("belongs to uid 65534" in err and "refusing to start" in err, err)
    check(not os.path.exists(os.path.join(state, "switchboard.db")),
          "it wrote into the directory anyway")


def test_network_false_gives_the_agent_no_network(tmp, ds):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        for net, want in (("true", "OK"), ("false", "FAIL")):
            sub = os.path.join(tmp, net)
            os.makedirs(sub)
            d = launch(ds, daemon(sub, "auto",
                                  extra_agent="network = %s;" % net))
            d.send("new net %d" % port)
            d.expect(r"✅ #1 done")
            got = worktree_file(d, 1, "net.txt").strip()
            check(got == want, "network = %s: %s" % (net, got))
            check(d.stop() == 0, "clean exit")
    finally:
        srv.close()


def test_without_bwrap_agents_run_unsandboxed_with_a_loud_warning(tmp, ds):
    d = launch(ds, daemon(tmp, "auto", env={"SWITCHBOARD_BWRAP": ""}))
    d.send("new attack-read %s" % os.path.join(tmp, "sb.conf"))
    d.expect(r"✅ #1 done")
    err = log_text(d)
    check("sandbox: UNAVAILABLE" in err, "no warning at start")
    check("agent 1: running WITHOUT a sandbox" in err, "no warning per agent")
    check(MARKER in worktree_file(d, 1, "loot.txt"), "it was sandboxed?")
    check(d.stop() == 0, "clean exit")


def test_git_commit_works_inside_the_sandbox(tmp, ds):
    script = write_script(
        tmp, "commit.sh",
        '#!/bin/sh\nset -e\necho hi > by-agent.txt\ngit add by-agent.txt\n'
        'git -c user.name=a -c user.email=a@l commit -q -m "by the agent"\n'
        '"$SWITCHBOARD_BIN" agent done "committed"\n')
    d = launch(ds, Daemon(tmp, [("c", [script], 60,
                                 'sandbox_paths = [ "%s" ];' % script)]))
    d.send("new commit")
    d.expect(r"✅ #1 done")
    log = subprocess.run(["git", "log", "--format=%s", "-3",
                          "refs/heads/" + d.db(
                              "SELECT branch FROM agents WHERE id = 1")[0][0]],
                         cwd=d.repo, capture_output=True, text=True).stdout
    check("by the agent" in log, "commit missing: %r" % log)
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
