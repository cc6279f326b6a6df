#!/usr/bin/python3
"""bench/agentstart — task → agent process running, on a repository of
--files files (default 20,000, ~1 KB each), with warm worktrees
(repos.[].warm = 1, the default) and without (warm = 0), beside
`git worktree add` of the same repository on the same disk in the same run.

A task is a console `new` line; its time runs from just before the line is
written to the daemon's stdin to the timestamp of the daemon's log line
"agent N: preparing → running" (the agent's process was spawned; in its
sandbox, as agents run).  Tasks come one at a time, each after the previous
agent ended and, with warm worktrees, after the replacement is ready
("warm ... ready" in the log): agents arriving faster than one checkout
each would find the pool empty and wait as a cold start does.  Median (p50)
of --runs tasks each."""

import argparse
import calendar
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z")


def make_repo(path, n):
    """n files of ~1 KB (distinct blobs), 100 per directory, via fast-import
    (the fixture, not the code under test)."""
    bl.sb.make_repo(path)
    out = ["commit refs/heads/main", "committer t <t@l> 0 +0000", "data 5",
           "many", "from refs/heads/main^0"]
    for i in range(n):
        body = "".join("int f%d_%d(int x) { return x * %d + %d; } /* %02d */\n"
                       % (i, j, j, i, j) for j in range(16))
        out += ["M 100644 inline d%03d/f%05d.c" % (i // 100, i),
                "data %d" % len(body.encode()), body]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, check=True,
                   input="\n".join(out) + "\n", text=True)
    subprocess.run(["git", "repack", "-adq"], cwd=path, check=True)
    subprocess.run(["git", "config", "gc.auto", "0"], cwd=path, check=True)


def log_time(line):
    m = TS.match(line)
    if m is None:
        return None
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) \
        + int(m.group(2)) / 1000.0


def wait_log(d, rx, start, timeout=60):
    """The first log line at or after byte offset start matching rx:
    (its timestamp, the offset after it)."""
    deadline = time.time() + timeout
    pat = re.compile(rx)
    while time.time() < deadline:
        with open(d.errlog, "rb") as f:
            f.seek(start)
            data = f.read()
        off = start
        for raw in data.splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                break
            off += len(raw)
            line = raw.decode("utf-8", "replace")
            if pat.search(line):
                return log_time(line), off
        time.sleep(0.005)
    with open(d.errlog, encoding="utf-8", errors="replace") as f:
        sys.stderr.write("".join(l for l in f if "warm" in l or "worktree"
                                 in l)[-3000:])
    raise bl.sb.Fail("timed out waiting for /%s/ in the log" % rx)


def wait_count(d, rx, n, timeout=60):
    """Until the log has n lines matching rx (in any order with others)."""
    pat = re.compile(rx)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(d.errlog, encoding="utf-8", errors="replace") as f:
            if sum(1 for l in f if pat.search(l)) >= n:
                return
        time.sleep(0.01)
    raise bl.sb.Fail("fewer than %d /%s/ in the log" % (n, rx))


def run(tmp, repo, warm, runs):
    state = os.path.join(tmp, "state-%d" % warm)
    # One daemon per mode, with its own state dir, config and log.
    d = bl.sb.Daemon(tmp, [("quick", ["true"], 60)], repo=repo)
    d.state = state
    d.conf = os.path.join(tmp, "sb-%d.conf" % warm)
    d.errlog = os.path.join(tmp, "stderr-%d.log" % warm)
    with open(d.conf, "w") as f:
        f.write(bl.sb.conf_text(state, repo, [("quick", ["true"], 60)]).replace(
            'base = "main"; }', 'base = "main"; warm = %d; }' % warm))
    bl.quiet_log(d)
    d.start()
    times = []
    try:
        off = 0
        if warm:
            _, off = wait_log(d, r"warm sbw-\S+ ready", off)
        for i in range(runs):
            aid = i + 1
            t0 = time.time()
            d.send("new task %d" % i)
            t, off2 = wait_log(d, r"agent %d: preparing → running" % aid, off)
            times.append((t - t0) * 1000.0)
            _, off = wait_log(d, r"agent %d: finishing → (idle|done|failed)" % aid,
                              off2)
            if warm:
                wait_count(d, r"warm sbw-\S+ ready", i + 2)
        claimed = sum(1 for l in open(d.errlog, encoding="utf-8",
                                      errors="replace")
                      if "(warm " in l and " on sb/" in l)
    finally:
        d.kill9()
    return times, claimed


def git_add_ms(tmp, repo, runs):
    out = []
    for i in range(runs):
        wt = os.path.join(tmp, "git-wt-%d" % i)
        t0 = time.time()
        subprocess.run(["git", "worktree", "add", "-q", "-b", "bench/%d" % i,
                        wt, "main"], cwd=repo, check=True)
        out.append((time.time() - t0) * 1000.0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sb-bench-start-")
    try:
        repo = os.path.join(tmp, "repo")
        make_repo(repo, a.files)
        cold, _ = run(tmp, repo, 0, a.runs)
        # Agent ids restart with the next state dir: its worktrees go.
        shutil.rmtree(os.path.join(tmp, "state-0"))
        subprocess.run(["git", "worktree", "prune"], cwd=repo, check=True)
        warm, claimed = run(tmp, repo, 1, a.runs)
        gitms = git_add_ms(tmp, repo, 3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pw, pc, pg = (statistics.median(warm), statistics.median(cold),
                  statistics.median(gitms))
    print("task -> agent running, %d files: warm p50 %.0f ms (%s), cold p50 "
          "%.0f ms (%s); git worktree add %.0f ms; %d of %d warm claimed"
          % (a.files, pw, " ".join("%.0f" % x for x in sorted(warm)), pc,
             " ".join("%.0f" % x for x in sorted(cold)), pg, claimed,
             a.runs))
    how = ("console `new` → log 'preparing → running', p50 of %d; cold "
           "(warm = 0) %.0f ms, git worktree add %.0f ms, same run"
           % (a.runs, pc, pg))
    bl.row("task → agent running, %d files (warm worktree)" % a.files,
           "%.0f ms" % pw, how, "<= 50 ms", bl.verdict(pw, 50))


if __name__ == "__main__":
    main()
