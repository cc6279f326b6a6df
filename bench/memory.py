#!/usr/bin/python3
"""bench/memory — resident memory of the daemon: idle (console adapter only,
after start) and with 1,000 and 10,000 conversations, and the cost of one.

Conversations: a first message always starts an agent, so the rows are
written into the conversations table while the daemon is stopped (as a
previous run would have left them: console threads, no agents), then each is
touched through the daemon: `t<N> status` on the console, which loads the
conversation into the core's cache (where it stays for the life of the
process) and sends the reply "No agents in this thread yet." through the
outbox.
RSS is VmRSS from /proc after the replies are out and the loop is idle; it
includes SQLite's page cache (bounded by its cache_size) and malloc's free
lists, which is what an operator would see."""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

idle_split = (0, 0)
REPLY = "No agents in this thread yet"
FIRST = 100000


def settle(d, pid):
    """RSS once it stops moving (the loop is idle)."""
    last, same = -1, 0
    for _ in range(40):
        time.sleep(0.1)
        r = bl.rss_kb(pid)
        same = same + 1 if r == last else 0
        last = r
        if same >= 5:
            break
    return last


def make(d, n, have):
    for i in range(have, have + n):
        d.send("t%d status" % (FIRST + i))
    want = have + n
    deadline = time.time() + 120
    while time.time() < deadline:
        got = sum(1 for l in d.lines if REPLY in l)
        if got >= want:
            return got
        time.sleep(0.05)
    raise RuntimeError("only %d of %d replies" % (got, want))


def one_run(tmp):
    d = bl.sb.Daemon(tmp, [("true", ["/bin/true"], 60)])
    bl.quiet_log(d)
    d.start()
    pid = d.proc.pid
    d.send("ping?")     # not a command: the console answers "! ..."
    d.expect(r"^! ", timeout=10)
    time.sleep(1.0)
    idle = settle(d, pid)
    global idle_split
    idle_split = bl.rss_split_kb(pid)
    d.send("quit")
    d.stop()
    d.db("SELECT 1")
    import sqlite3
    con = sqlite3.connect(os.path.join(d.state, "switchboard.db"))
    con.executemany(
        "INSERT INTO conversations (adapter, channel, thread, starter, repo,"
        " agent, created_at) VALUES ('console', 'console', ?, 'console:me',"
        " 'r', 'true', strftime('%s','now'))",
        [(str(FIRST + i),) for i in range(10000)])
    # The console only accepts thread ids it could have handed out.
    con.execute("INSERT OR REPLACE INTO kv (key, value) VALUES"
                " ('console.next_id', ?)", (str(FIRST + 10001),))
    con.commit()
    con.close()
    d = bl.sb.Daemon(tmp, [("true", ["/bin/true"], 60)])
    bl.quiet_log(d)
    d.start()
    pid = d.proc.pid
    d.send("ping?")
    d.expect(r"^! ", timeout=10)
    time.sleep(1.0)
    cold = settle(d, pid)
    t0 = time.time()
    make(d, 1000, 0)
    r1k = settle(d, pid)
    t1 = time.time()
    make(d, 9000, 1000)
    r10k = settle(d, pid)
    t2 = time.time()
    loaded = d.db("SELECT count(*) FROM conversations")[0][0]
    d.send("quit")
    d.stop()
    print("memory: after restart with 10,000 rows, none loaded: %d KB" % cold)
    return idle, r1k, r10k, loaded, (t1 - t0), (t2 - t1)


def main():
    base = tempfile.mkdtemp(prefix="sb-bench-mem-")
    try:
        idle, r1k, r10k, n, s1, s2 = one_run(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    per = (r10k - r1k) * 1024.0 / 9000
    print("memory: idle %d KB, 1k conv %d KB (%.1f s), 10k conv %d KB "
          "(%.1f s), %d rows" % (idle, r1k, s1, r10k, s2, n))
    m = "VmRSS, console only, after start (anon %.1f MB + file %.1f MB)" % (
        idle_split[0] / 1024.0, idle_split[1] / 1024.0)
    bl.row("RSS idle", "%.1f MB" % (idle / 1024.0), m, "<= 8 MB",
           bl.verdict(idle / 1024.0, 8))
    m = "VmRSS after `t<N> status` on N stored conversations (load + reply)"
    bl.row("RSS 1,000 conversations", "%.1f MB" % (r1k / 1024.0), m)
    bl.row("RSS 10,000 conversations", "%.1f MB" % (r10k / 1024.0), m)
    bl.row("memory per conversation", "%.1f KB" % (per / 1024.0),
           "(RSS 10k - RSS 1k) / 9,000", "<= 32 KB",
           bl.verdict(per / 1024.0, 32))


if __name__ == "__main__":
    main()
