#!/usr/bin/python3
"""bench/scale — is a daemon with 100,000 agents and 100,000 conversations
behind it as cheap as a fresh one?

Two daemons in one run, console only, agent `true` (/bin/true):
  fresh: a new state dir;
  scaled: 100,000 conversations and 100,000 ended agents (one per
  conversation, status done) written into the store of the stopped daemon
  with direct SQLite inserts (the schema of bot/store.c), then a few
  hundred conversations touched through the console (`t<N> status`: loaded
  and answered).
For each: RSS once idle, CPU per `status` (a command round trip, --events of
them in a row, utime+stime / count) and CPU per `new` task (--tasks of
them, each until its agent has started).  Numbers only."""

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

FIRST = 100000
REPLY = "No agents in this thread yet"


def settle(pid):
    last, same = -1, 0
    for _ in range(60):
        time.sleep(0.1)
        r = bl.rss_kb(pid)
        same = same + 1 if r == last else 0
        last = r
        if same >= 5:
            break
    return last


def wait_count(d, text, want, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = sum(1 for l in d.lines if text in l)
        if got >= want:
            return got
        time.sleep(0.02)
    raise RuntimeError("only %d of %d %r" % (got, want, text))


def start(tmp):
    d = bl.sb.Daemon(tmp, [("true", ["/bin/true"], 60)])
    bl.quiet_log(d)
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('driver = "command";',
                             'driver = "command"; sandbox = "off";'))
    d.start()
    d.send("ping?")
    d.expect(r"^! ", timeout=30)
    return d


def measure(d, a, base_thread, label):
    """RSS, CPU ms per status, CPU ms per new task."""
    pid = d.proc.pid
    time.sleep(0.5)
    rss = settle(pid)
    have = sum(1 for l in d.lines if "Started #" in l)
    # The threads used for status: ones the console has handed out.
    replies0 = sum(1 for l in d.lines if "status" in l or REPLY in l)
    c0, w0 = bl.cpu_s(pid), time.time()
    for i in range(a.events):
        d.send("t%d status" % (base_thread + i % 50))
    deadline = time.time() + 120
    n0 = len(d.lines)
    while time.time() < deadline and len(d.lines) - n0 < a.events:
        time.sleep(0.01)
    c1, w1 = bl.cpu_s(pid), time.time()
    per_status = (c1 - c0) * 1000.0 / a.events
    c0 = bl.cpu_s(pid)
    t0 = time.time()
    for i in range(a.tasks):
        d.send("new scale task %d" % i)
    wait_count(d, "Started #", have + a.tasks)
    c1 = bl.cpu_s(pid)
    per_new = (c1 - c0) * 1000.0 / a.tasks
    print("scale: %s: RSS %.1f MB, status %.2f ms CPU each (%d in %.2f s), "
          "new %.2f ms CPU each (%d in %.2f s)" % (
              label, rss / 1024.0, per_status, a.events, w1 - w0, per_new,
              a.tasks, time.time() - t0))
    del replies0
    return rss, per_status, per_new


def fill(state, n):
    con = sqlite3.connect(os.path.join(state, "switchboard.db"))
    now = int(time.time())
    con.executemany(
        "INSERT INTO conversations (id, adapter, channel, thread, starter,"
        " repo, agent, created_at) VALUES (?, 'console', 'console', ?,"
        " 'console:me', 'r', 'true', ?)",
        ((FIRST + i, str(FIRST + i), now) for i in range(n)))
    con.executemany(
        "INSERT INTO agents (id, conversation_id, seq, agent_name, driver,"
        " task, status, exit_code, summary, created_at, started_at,"
        " ended_at) VALUES (?, ?, 1, 'true', 'command', 'a stored task',"
        " 'done', 0, 'done', ?, ?, ?)",
        ((FIRST + i, FIRST + i, now, now, now) for i in range(n)))
    con.execute("INSERT OR REPLACE INTO kv (key, value) VALUES"
                " ('console.next_id', ?)", (str(FIRST + n + 1),))
    con.commit()
    con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--touch", type=int, default=300)
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--tasks", type=int, default=20)
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sb-bench-scale-")
    try:
        fresh_tmp = os.path.join(base, "fresh")
        os.mkdir(fresh_tmp)
        d = start(fresh_tmp)
        try:
            # Threads t1..t50 exist once the console has handed them out.
            for i in range(50):
                d.send("new warm %d" % i)
            wait_count(d, "Started #", 50)
            fresh = measure(d, a, 1, "fresh")
        finally:
            d.kill9()
        big_tmp = os.path.join(base, "big")
        os.mkdir(big_tmp)
        d = start(big_tmp)
        d.send("quit")
        d.stop()
        t0 = time.time()
        fill(d.state, a.n)
        print("scale: %d conversations + %d agents inserted in %.1f s" % (
            a.n, a.n, time.time() - t0))
        d = start(big_tmp)
        try:
            for i in range(a.touch):
                d.send("t%d status" % (FIRST + i * (a.n // a.touch)))
            deadline = time.time() + 300
            while time.time() < deadline and sum(
                    1 for l in d.lines if "#1" in l or REPLY in l) < a.touch:
                time.sleep(0.05)
            big = measure(d, a, FIRST, "%d agents" % a.n)
        except Exception:
            print("scale: daemon exit %s; stderr tail:\n%s" % (
                d.proc.poll(), d.stderr_tail()))
            raise
        finally:
            d.kill9()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    how = ("console daemon; %d conversations + %d ended agents inserted "
           "into the stopped daemon's store, %d touched via console" % (
               a.n, a.n, a.touch))
    names = ("RSS", "CPU per status", "CPU per new task")
    units = ("%.1f MB", "%.2f ms", "%.2f ms")
    for k in range(3):
        f, b = fresh[k], big[k]
        if k == 0:
            f, b = f / 1024.0, b / 1024.0
        r = b / f if f else float("inf")
        bl.row("%s after %d agents" % (names[k], a.n),
               (units[k] % b) + (" (fresh: " + units[k] % f + ", %.2fx)" % r),
               how, "within 10% of fresh",
               "met" if r <= 1.10 else "MISSED: %.2fx fresh" % r)


if __name__ == "__main__":
    main()
