#!/usr/bin/python3
"""Crash-and-overload soak: N messages over many threads through the fake
Slack, the daemon killed with SIGKILL at random moments and restarted,
optionally with every core kept busy by a CPU hog.  At the end it counts
what must be zero:

  lost       messages never taken (no 👀 queued for them)
  lost_work  `status` mentions whose reply never got queued, or got two
  dup_posts  posts that reached Slack more than once (same outbox row)
  unreported agents whose thread never heard how they ended
  leaked     worktrees (or branches) the store does not know, or still
             registered with git after the agent ended without one

  tests/e2e/soak.py [-n 1000] [--kills 20] [--hog] [--seed S]

Also the ack latency (envelope written by the fake -> ack received), p50
and p99, across the run.  Exit status 1 if any count is not zero.  The
short version runs in make test (test_soak.py); make soak runs this.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import Daemon, agent, git  # noqa: E402
from test_slack import APP, BOT, SECRET, FakeSlack, mention  # noqa: E402

AGENTS = [("quick", [agent("env.sh"), "{task}"], 60)]


def daemon(tmp, fake, ds):
    slack = ('slack = { enabled = true; mode = "socket"; '
             'bot_token = "env:SB_SLACK_BOT"; app_token = "env:SB_SLACK_APP";'
             ' signing_secret = "env:SB_SLACK_SECRET"; api_url = "%s"; };'
             % (fake.base + "/api/"))
    d = Daemon(tmp, AGENTS, adapters=slack,
               allowed='"console:me", "slack:U1"',
               env={"SB_SLACK_BOT": BOT, "SB_SLACK_APP": APP,
                    "SB_SLACK_SECRET": SECRET})
    with open(d.conf) as f:
        conf = f.read()
    conf = re.sub(r'routes = \( (\{[^}]*\}) \);',
                  r'routes = ( \1, { adapter = "slack"; channel = "*"; '
                  r'repo = "r"; agent = "quick"; } );', conf)
    conf = conf.replace("max_agents = 4;", "max_agents = 8;")
    with open(d.conf, "w") as f:
        f.write(conf)
    ds.append(d)
    return d.start()


def hog_start():
    n = os.cpu_count() or 2
    return [subprocess.Popen(["/usr/bin/python3", "-c", "while True: pass"])
            for _ in range(n)]


def plan(n, per_thread):
    """[(channel, ts, thread_ts or None, text)]: a task first in each
    thread, then `status` mentions in it."""
    msgs = []
    nthreads = max(1, n // per_thread)
    for t in range(nthreads):
        ch = "C%03d" % t
        root = "1800%03d.000001" % t
        msgs.append((ch, root, None, "<@UBOT> soak task %d" % t))
        for i in range(1, per_thread):
            if len(msgs) >= n:
                break
            msgs.append((ch, "1800%03d.%06d" % (t, i + 1), root,
                         "<@UBOT> status"))
    return msgs[:n]


def soak(n=1000, kills=20, hog=False, seed=None, per_thread=10,
         rate=100.0, log=print):
    rnd = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="sb-soak-")
    fake = FakeSlack("--no-echo")
    ds, hogs = [], []
    try:
        d = daemon(tmp, fake, ds)
        fake.wait("a socket", lambda: any(
            s["hello_at"] and not s["closed"]
            for s in fake.get("/_test/sockets")), timeout=30)
        if hog:
            hogs = hog_start()
        msgs = plan(n, per_thread)
        # Tasks first, so each thread exists before its mentions arrive.
        order = [m for m in msgs if m[2] is None] + \
            [m for m in msgs if m[2] is not None]
        sent = []
        done_sending = threading.Event()

        def sender():
            for ch, ts, thread, text in order:
                ev = mention(ts, text=text, channel=ch)
                if thread:
                    ev["thread_ts"] = thread
                for _ in range(50):
                    try:
                        fake.event(ev)
                        break
                    except OSError:
                        time.sleep(0.1)
                sent.append(ts)
                time.sleep(1.0 / rate)
            done_sending.set()
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        span = n / rate
        moments = sorted(rnd.uniform(0.5, span + 2.0) for _ in range(kills))
        t0 = time.time()
        for k, at in enumerate(moments):
            time.sleep(max(0.0, t0 + at - time.time()))
            d.kill9()
            d = daemon(tmp, fake, ds)
        done_sending.wait()
        # Settle: every envelope acked, inbox and outbox drained, agents
        # ended, on the last daemon.
        deadline = time.time() + 600

        def settled():
            envs = fake.get("/_test/envelopes")
            if not all(e["acked"] for e in envs):
                return False
            q = d.db("SELECT (SELECT count(*) FROM inbox),"
                     " (SELECT count(*) FROM outbox WHERE status ="
                     " 'pending'), (SELECT count(*) FROM agents WHERE"
                     " status IN ('queued', 'preparing', 'running'))")[0]
            return q == (0, 0, 0)
        while time.time() < deadline and not settled():
            time.sleep(0.5)
        for h in hogs:
            h.kill()
            h.wait()
        hogs = []
        return count(d, fake, msgs, kills, hog, t0, log)
    finally:
        for h in hogs:
            h.kill()
        for x in ds:
            try:
                if x.proc is not None and x.proc.poll() is None:
                    x.proc.kill()
                    x.proc.wait()
            except Exception:  # noqa: BLE001
                pass
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def count(d, fake, msgs, kills, hog, t0, log):
    calls = fake.calls()
    react_rows = [json.loads(p)["target"] for (p,) in
                  d.db("SELECT payload FROM outbox WHERE op = 'react'")]
    lost = sum(1 for m in msgs if m[1] not in set(react_rows))
    # `status` replies: one per status mention (the agent's line, or
    # "No agents in this thread yet." once it ended or after a restart).
    replies = d.db("SELECT count(*) FROM outbox WHERE op = 'post' AND"
                   " msg_key IS NULL AND (payload LIKE '{\"text\":\"#%' AND"
                   " payload NOT LIKE '{\"text\":\"#% is queued, %' OR"
                   " payload LIKE '{\"text\":\"No agents in this thread%')"
                   )[0][0]
    want = sum(1 for m in msgs if m[2] is not None)
    lost_work = abs(want - replies)
    if lost_work and os.environ.get("SOAK_DEBUG"):
        for row in d.db("SELECT c.thread, count(a.id), group_concat("
                        "substr(a.task, 1, 20), '|') FROM conversations c"
                        " LEFT JOIN agents a ON a.conversation_id = c.id"
                        " GROUP BY c.id HAVING count(a.id) != 1"):
            log("  thread %s: %d agents: %s" % row)
        log("  want %d replies, %d queued" % (want, replies))
        for row in d.db("SELECT substr(payload, 1, 70), count(*) FROM outbox"
                        " WHERE op = 'post' AND msg_key IS NULL GROUP BY"
                        " substr(payload, 1, 22)"):
            log("  %s x%d" % row)
    ids = [c["args"]["metadata"]["event_payload"]["outbox_id"]
           for c in calls if c["method"] == "chat.postMessage" and
           c.get("status") == 200 and (c.get("reply") or {}).get("ok") and
           c["args"].get("metadata")]
    dup_posts = len(ids) - len(set(ids))
    texts = [c["args"].get("text", "") for c in calls
             if c["method"] in ("chat.postMessage", "chat.update")]
    agents = d.db("SELECT id, status, worktree, branch FROM agents")
    unreported = 0
    for aid, status, _, _ in agents:
        rx = re.compile(r"#%d\b.*(done|failed|interrupted|cancelled|"
                        r"timed out)|(✅|❌|⚠️) #%d\b" % (aid, aid))
        if status in ("queued", "preparing", "running") or \
                not any(rx.search(t) for t in texts):
            unreported += 1
            if os.environ.get("SOAK_DEBUG"):
                log("  agent %d (%s) unreported: %r" % (aid, status, [
                    t[:80] for t in texts if "#%d " % aid in t]))
    known = {w for (_, _, w, _) in agents if w}
    wt_root = os.path.join(d.state, "worktrees")
    # Warm worktrees (repos.[].warm) belong to no agent.
    on_disk = {os.path.join(wt_root, x) for x in os.listdir(wt_root)
               if not x.startswith("warm-")} \
        if os.path.isdir(wt_root) else set()
    listed = {w for w in re.findall(r"^worktree (.*)$", git(
        "worktree", "list", "--porcelain", cwd=d.repo), re.M)
        if not os.path.basename(w).startswith("warm-")} - {d.repo}
    leaked = len((on_disk | listed) - known)
    branches = set(git("for-each-ref", "--format=%(refname:short)",
                       "refs/heads/sb/", cwd=d.repo).split())
    leaked += len(branches - {b for (_, _, _, b) in agents if b})
    if leaked and os.environ.get("SOAK_DEBUG"):
        log("  leaked worktrees %r branches %r" % (
            sorted((on_disk | listed) - known),
            sorted(branches - {b for (_, _, _, b) in agents if b})))
        for w in sorted((on_disk | listed) - known):
            aid = int(os.path.basename(w))
            log("  agent %d: %r" % (aid, d.db("SELECT status, worktree,"
                                              " branch FROM agents WHERE"
                                              " id = %d" % aid)))
            os.system("grep -h 'agent %d\\b\\|worktrees/%d\\b' %s | tail -8"
                      % (aid, aid, d.errlog))
    lat = sorted(e["acked_at"] - e["deliveries"][-1]["at"]
                 for e in fake.get("/_test/envelopes")
                 if e.get("acked_at") and e["deliveries"])
    p50 = lat[len(lat) // 2] * 1000 if lat else 0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0
    r = {"messages": len(msgs), "kills": kills, "hog": hog, "lost": lost,
         "lost_work": lost_work, "dup_posts": dup_posts,
         "unreported": unreported, "leaked": leaked,
         "ack_p50_ms": round(p50, 2), "ack_p99_ms": round(p99, 2),
         "seconds": round(time.time() - t0, 1)}
    log("soak: %(messages)d messages, %(kills)d kills, hog %(hog)s: "
        "lost %(lost)d, lost work %(lost_work)d, duplicate posts "
        "%(dup_posts)d, agents never reported %(unreported)d, leaked "
        "worktrees %(leaked)d; ack p50 %(ack_p50_ms).1f ms p99 "
        "%(ack_p99_ms).1f ms; %(seconds).0f s" % r)
    return r


def zero(r):
    return all(r[k] == 0 for k in ("lost", "lost_work", "dup_posts",
                                   "unreported", "leaked"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--hog", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--rate", type=float, default=100.0)
    a = ap.parse_args()
    sys.exit(0 if zero(soak(a.n, a.kills, a.hog, a.seed,
                            rate=a.rate)) else 1)
