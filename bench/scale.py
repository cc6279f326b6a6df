#!/usr/bin/python3
"""bench/scale — is a daemon with 100,000 agents and 100,000 conversations
behind it as cheap as a fresh one?

Two daemons in one run, console only, agent `true` (/bin/true), ended agents
unloaded after limits.keep_ended = 2 s in both:
  fresh: a new state dir; --console threads started through the console,
  each asked `status` once its agent has left memory (loaded back).
  scaled: -n conversations, each with an ended agent, an answered
  question, its messages and its sent outbox rows, written into the store
  of the stopped daemon with direct SQLite inserts (the schema its
  migrations made); then started (start time and CPU printed), --console
  threads started through the console (the real path: conversation, agent,
  worktree, process), asked `status` the same way, and --touch stored
  threads asked `status` (each loaded from the store: its cost printed).
For each, once its agents have ended and left memory: RSS; CPU per
`status` in --warm of the threads made through the console (--events of them in
a row, task-clock of the whole process from `perf stat -p`, /proc ticks
when perf is missing); CPU per `new` task (--tasks of them, each until its
agent has started); conversations in memory.  Machine load is printed:
other work on the machine shows in wall times, not in CPU time."""

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

FIRST = 100000
REPLY = re.compile(r"^\[t\d+\] \d+ switchboard: ")
KEEP_ENDED = 2


class Cpu:
    """CPU time of a process over a window: perf's task-clock (ns) when perf
    can attach, else utime + stime from /proc (10 ms ticks)."""

    def __init__(self, pid):
        self.pid = pid
        self.perf = None
        self.out = None
        if shutil.which("perf"):
            self.out = tempfile.NamedTemporaryFile(prefix="sb-perf-")
            self.perf = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-e", "task-clock", "-p",
                 str(pid)], stdout=subprocess.DEVNULL, stderr=self.out)
            time.sleep(0.3)     # attached
            if self.perf.poll() is not None:
                self.perf = None
        self.t0 = bl.cpu_s(pid)

    def stop(self):
        """CPU seconds since start."""
        ticks = bl.cpu_s(self.pid) - self.t0
        if self.perf is None:
            return ticks
        self.perf.send_signal(signal.SIGINT)
        self.perf.wait()
        with open(self.out.name) as f:
            text = f.read()
        self.out.close()
        m = re.search(r"^([\d.]+),msec,task-clock", text, re.M)
        return float(m.group(1)) / 1000.0 if m else ticks


def load():
    return "load %.2f %.2f %.2f" % os.getloadavg()


def settle(pid):
    last, same = -1, 0
    for _ in range(100):
        time.sleep(0.1)
        r = bl.rss_kb(pid)
        same = same + 1 if r == last else 0
        last = r
        if same >= 5:
            break
    return last


def count(d, rx):
    return sum(1 for l in list(d.lines) if rx.search(l))


def wait_count(d, rx, want, timeout=600):
    deadline = time.time() + timeout
    got = 0
    while time.time() < deadline:
        got = count(d, rx)
        if got >= want:
            return got
        if d.proc.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("only %d of %d /%s/; stderr:\n%s" % (
        got, want, rx.pattern, d.stderr_tail()))


def start(tmp):
    """A started daemon, the wall and CPU seconds it took to answer."""
    d = bl.sb.Daemon(tmp, [("true", ["/bin/true"], 60)],
                     limits="keep_ended = %d;" % KEEP_ENDED)
    bl.quiet_log(d)
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('driver = "command";',
                             'driver = "command"; sandbox = "off";'))
    t0 = time.time()
    d.start()
    d.send("ping?")
    d.expect(r"^! ", timeout=600)
    return d, time.time() - t0, bl.cpu_s(d.proc.pid)


def new_threads(d, n, label):
    """n threads through the console; their numbers once all started."""
    rx = re.compile(r"^\[t(\d+)\] \d+ console:me: %s \d+$" % label)
    started = re.compile(r"Started #")
    have = count(d, started)
    for i in range(n):
        d.send("new %s %d" % (label, i))
    wait_count(d, started, have + n)
    return [int(m.group(1)) for m in (rx.search(l) for l in list(d.lines))
            if m]


def quiesce(d, quiet=1.0, timeout=120):
    """Until no line arrived for quiet seconds (cards, results settled)."""
    deadline = time.time() + timeout
    n, since = len(d.lines), time.time()
    while time.time() < deadline and time.time() - since < quiet:
        time.sleep(0.05)
        if len(d.lines) != n:
            n, since = len(d.lines), time.time()


def statuses(d, threads, n):
    """CPU ms per `status`, n of them over threads, each answered."""
    quiesce(d)
    base = count(d, REPLY)
    cpu = Cpu(d.proc.pid)
    t0 = time.time()
    for i in range(n):
        d.send("t%d status" % threads[i % len(threads)])
    wait_count(d, REPLY, base + n)
    return cpu.stop() * 1000.0 / n, time.time() - t0


NO_THREAD = re.compile(r"^! no thread ")


def strangers(d, n):
    """CPU ms per event naming a thread the daemon does not know (the
    console's `t<N>` with N an id from before this run that roots no
    thread): the lookup every platform event in an unknown thread makes
    (is it a root we posted?)."""
    quiesce(d)
    base = count(d, NO_THREAD)
    cpu = Cpu(d.proc.pid)
    for i in range(n):
        d.send("t%d hello" % (1 + i % 50))
    wait_count(d, NO_THREAD, base + n)
    return cpu.stop() * 1000.0 / n


def conversations_loaded(d):
    r = d.cli("status", "-s", d.state)
    m = re.search(r"conversations: (\d+)", r.stdout)
    return int(m.group(1)) if m else -1


def new_tasks(d, n):
    """CPU ms per `new` task, n of them, each until its agent started."""
    quiesce(d)
    started = re.compile(r"Started #")
    have = count(d, started)
    cpu = Cpu(d.proc.pid)
    for i in range(n):
        d.send("new scale task %d" % i)
    wait_count(d, started, have + n)
    return cpu.stop() * 1000.0 / n


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def start_cost(tmp, runs=3):
    """Median CPU ms from exec to exit of a daemon that starts, answers
    once and quits: perf stat around the process (task-clock), else
    the wall time."""
    out = []
    for _ in range(runs):
        f = os.path.join(tmp, "perf.out")
        wrapper = (["perf", "stat", "-x", ",", "-o", f, "-e", "task-clock",
                    "--"] if shutil.which("perf") else [])
        d = bl.sb.Daemon(tmp, [("true", ["/bin/true"], 60)],
                         limits="keep_ended = %d;" % KEEP_ENDED,
                         wrapper=wrapper)
        bl.quiet_log(d)
        t0 = time.time()
        d.start()
        d.send("ping?")
        d.expect(r"^! ", timeout=600)
        d.send("quit")
        d.proc.wait(timeout=120)
        d.stop()
        wall = (time.time() - t0) * 1000.0
        m = None
        if wrapper:
            with open(f) as fh:
                m = re.search(r"^([\d.]+),msec,task-clock", fh.read(), re.M)
        out.append(float(m.group(1)) if m else wall)
    return median(out)


def fill(state, n):
    """n conversations, each with what an ended agent leaves in the store:
    the agent, its answered question, its card and question messages and
    four sent outbox rows (Started, card, edit, result)."""
    con = sqlite3.connect(os.path.join(state, "switchboard.db"))
    now = int(time.time())
    ids = range(FIRST, FIRST + n)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO conversations (id, adapter, channel, thread, starter,"
        " repo, agent, created_at) VALUES (?, 'console', 'console', ?,"
        " 'console:me', 'r', 'true', ?)", ((i, str(i), now) for i in ids))
    con.executemany(
        "INSERT INTO agents (id, conversation_id, seq, agent_name, driver,"
        " task, repo, branch, status, exit_code, summary, card_key,"
        " created_at, started_at, ended_at) VALUES (?, ?, 1, 'true',"
        " 'command', 'a stored task', 'r', ?, 'done', 0, 'done', ?, ?, ?,"
        " ?)", ((i, i, "sb/%d-stored" % i, "a%d.card" % i, now, now, now)
                for i in ids))
    con.executemany(
        "INSERT INTO questions (id, agent_id, text, choices, msg_key, status,"
        " answer, answered_by, created_at, answered_at) VALUES (?, ?,"
        " 'Which one?', '[\"a\",\"b\"]', ?, 'answered', 'a', 'console:me',"
        " ?, ?)", ((i, i, "q%d" % i, now, now) for i in ids))
    con.executemany(
        "INSERT INTO messages (key, adapter, channel, thread, platform_ref)"
        " VALUES (?, 'console', 'console', ?, ?)",
        (r for i in ids for r in (("a%d.card" % i, str(i), "m%d" % i),
                                  ("q%d" % i, str(i), "n%d" % i))))
    con.executemany(
        "INSERT INTO outbox (adapter, channel, thread, op, msg_key, payload,"
        " status, attempts, created_at, sent_at) VALUES ('console',"
        " 'console', ?, ?, ?, '{\"text\":\"stored\"}', 'sent', 1, ?, ?)",
        (r for i in ids for r in (
            (str(i), "post", None, now, now),
            (str(i), "post", "a%d.card" % i, now, now),
            (str(i), "edit", "a%d.card" % i, now, now),
            (str(i), "post", None, now, now))))
    con.execute("INSERT OR REPLACE INTO kv (key, value) VALUES"
                " ('console.next_id', ?)", (str(FIRST + n + 1),))
    con.commit()
    rows = {t: con.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
            for t in ("conversations", "agents", "questions", "messages",
                      "outbox")}
    con.close()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--console", type=int, default=300,
                    help="threads the scaled daemon starts via the console")
    ap.add_argument("--touch", type=int, default=300,
                    help="stored threads asked `status` (loaded)")
    ap.add_argument("--warm", type=int, default=50)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=20)
    a = ap.parse_args()
    print("scale: start, %s" % load())
    base = tempfile.mkdtemp(prefix="sb-bench-scale-")
    ds = []
    try:
        fresh_tmp = os.path.join(base, "fresh")
        big_tmp = os.path.join(base, "big")
        os.mkdir(fresh_tmp)
        os.mkdir(big_tmp)
        fresh_up = start_cost(fresh_tmp)
        # Console ids below FIRST are from "before" in both daemons.
        con = sqlite3.connect(os.path.join(fresh_tmp, "state",
                                           "switchboard.db"))
        con.execute("INSERT OR REPLACE INTO kv (key, value) VALUES"
                    " ('console.next_id', ?)", (str(FIRST),))
        con.commit()
        con.close()
        d, _, _ = start(big_tmp)
        d.send("quit")
        d.stop()
        t0 = time.time()
        rows = fill(d.state, a.n)
        print("scale: stored in %.1f s: %s" % (time.time() - t0, ", ".join(
            "%d %s" % (v, k) for k, v in rows.items())))
        big_up = start_cost(big_tmp)
        print("scale: exec to exit of start, one answer, quit: fresh %.1f ms"
              " CPU, %d stored %.1f ms CPU (median of 3); %s" % (
                  fresh_up, a.n, big_up, load()))

        # The same console work in both: new-task cost grows with the
        # worktrees on disk (see README), which is not history in the store.
        fresh, _, _ = start(fresh_tmp)
        ds.append(fresh)
        fmade = new_threads(fresh, a.console, "console")
        fwarm = fmade[:a.warm]
        big, big_wall, _ = start(big_tmp)
        ds.append(big)
        print("scale: %d stored: start to first answer %.0f ms" % (
            a.n, big_wall * 1000))
        t0 = time.time()
        made = new_threads(big, a.console, "console")
        print("scale: %d threads started through the console in %.1f s"
              % (len(made), time.time() - t0))
        # Both load each thread's agent back from the store once it has
        # left memory (the same burst, so the same heap high-water).
        time.sleep(KEEP_ENDED * 2 + 1.5)
        reload = (statuses(fresh, fmade, len(fmade))[0],
                  statuses(big, made, len(made))[0])
        print("scale: `status` in a thread whose agent left memory (loaded"
              " back): fresh %.3f ms CPU, %d stored %.3f ms CPU each" % (
                  reload[0], a.n, reload[1]))
        # One burst of loaded agents at a time, as in the fresh daemon.
        time.sleep(KEEP_ENDED * 2 + 1.5)
        step = max(1, a.n // max(1, a.touch))
        stored = [FIRST + i * step for i in range(a.touch)]
        cold, wall = statuses(big, stored, len(stored))
        print("scale: `status` in a stored thread (conversation and agent"
              " loaded from the store): %.3f ms CPU each (%d in %.2f s)"
              % (cold, len(stored), wall))
        if not big.saw(r"#%d true · done" % FIRST):
            raise RuntimeError("stored agent #%d not listed" % FIRST)
        bwarm = made[:a.warm]

        # Ended agents leave memory (keep_ended, swept every second).
        time.sleep(KEEP_ENDED * 2 + 1.5)
        rss = (settle(fresh.proc.pid), settle(big.proc.pid))
        split = (bl.rss_split_kb(fresh.proc.pid),
                 bl.rss_split_kb(big.proc.pid))
        # Interleaved rounds: drift on a shared machine hits both alike.
        st = ([], [])
        per = max(1, a.events // a.rounds)
        for r in range(a.rounds):
            st[0].append(statuses(fresh, fwarm, per)[0])
            st[1].append(statuses(big, bwarm, per)[0])
        un = ([], [])
        for r in range(2):
            un[0].append(strangers(fresh, per))
            un[1].append(strangers(big, per))
        nt = ([], [])
        for r in range(2):
            nt[0].append(new_tasks(fresh, a.tasks // 2 or 1))
            nt[1].append(new_tasks(big, a.tasks // 2 or 1))
        convs = (conversations_loaded(fresh), conversations_loaded(big))
        res = []
        for k, label in enumerate(("fresh", "%d stored" % a.n)):
            res.append((rss[k], median(st[k]), median(nt[k]), convs[k],
                        median(un[k])))
            print("scale: %s: RSS %.1f MB (anonymous %.1f, file %.1f), status"
                  " %.3f ms CPU each (rounds: %s), event in an unknown"
                  " thread %.3f ms CPU, new %.2f ms CPU each, %d"
                  " conversations in memory" % (
                      label, rss[k] / 1024.0, split[k][0] / 1024.0,
                      split[k][1] / 1024.0, median(st[k]),
                      " ".join("%.3f" % x for x in st[k]), median(un[k]),
                      median(nt[k]),
                      convs[k]))
        print("scale: end, %s" % load())
    except Exception:
        for d in ds:
            print("scale: daemon exit %s; stderr tail:\n%s" % (
                d.proc.poll(), d.stderr_tail()))
        raise
    finally:
        for d in ds:
            if d.proc.poll() is None:
                d.kill9()
        shutil.rmtree(base, ignore_errors=True)
    fresh, big = res
    how = ("console daemon; %d conversations + %d ended agents (with"
           " questions, messages, outbox rows) inserted into its store, %d"
           " threads via the console, %d stored ones loaded; %s" % (
               a.n, a.n, a.console, a.touch, load()))
    names = ("RSS", "CPU per status", "CPU per new task", None,
             "CPU per event in an unknown thread")
    units = ("%.1f MB", "%.3f ms", "%.2f ms", None, "%.3f ms")
    for k in (0, 1, 2, 4):
        f, b = fresh[k], big[k]
        if k == 0:
            f, b = f / 1024.0, b / 1024.0
        r = b / f if f else float("inf")
        bl.row("%s after %d agents" % (names[k], a.n),
               (units[k] % b) + (" (fresh: " + units[k] % f + ", %.2fx)" % r),
               how, "within 10% of fresh",
               "met" if r <= 1.10 else "MISSED: %.2fx fresh" % r)
    r = big_up / fresh_up if fresh_up else float("inf")
    bl.row("Start after %d agents" % a.n,
           "%.1f ms CPU (fresh: %.1f ms, %.2fx)" % (big_up, fresh_up, r),
           "perf task-clock from exec to exit of start, one answer, quit",
           "within 10% of fresh",
           "met" if r <= 1.10 else "MISSED: %.2fx fresh" % r)
    bl.row("Conversations in memory after %d" % a.n,
           "%d (fresh: %d)" % (big[3], fresh[3]),
           "`switchboard status`: held by an agent in memory, plus up to"
           " limits.keep_conversations", "bounded", "")


if __name__ == "__main__":
    main()
