"""End-to-end tests of Slack under hostile input, bursts and faults: the
real binary against tests/fakes/fake-slack.py.  Helpers come from
test_slack.py."""

import json
import os
import sqlite3
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import SLOW, check, free_port, run_tests  # noqa: E402
from test_slack import (FakeSlack, connected, mention,  # noqa: E402
                        slack_daemon, wait_http)


def metrics(port):
    """{series: value} from /metrics, labels included in the key."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def delay_quantile(m, q):
    """Upper bound of the bucket holding quantile q of the ws send delay."""
    total = m.get("switchboard_ws_send_delay_seconds_count", 0)
    buckets = sorted((float(k.split('"')[1]), v) for k, v in m.items()
                     if k.startswith("switchboard_ws_send_delay_seconds_"
                                     "bucket") and "+Inf" not in k)
    for le, n in buckets:
        if n >= q * total:
            return le
    return float("inf")


def test_oversized_fragmented_frame_closes_1009_and_reconnects(tmp, ds):
    """A peer that sends one 5 MB text message (over our 4 MiB limit), in
    fragments and in one frame, is drained and closed (1009); the daemon
    lives on (it used to abort inside libwebsockets), reconnects and
    handles the next mention.  (libwebsockets 4.1.6 ends the TCP
    connection without putting our close frame on the wire, so the code
    is read from our log, not from the peer.)"""
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        for i, frags in enumerate((40, 1)):
            first = fake.get("/_test/sockets")[-1]["id"]
            r = fake.post("/_test/bigframe", {"size": 5 * 1024 * 1024,
                                              "fragments": frags})
            check(r["ok"], "bigframe sent")
            fake.wait("the oversized socket closed", lambda: [
                s for s in fake.get("/_test/sockets")
                if s["id"] == first and s["closed"]], timeout=20)
            rec = [s for s in fake.get("/_test/sockets")
                   if s["id"] == first][0]
            check(rec["closed_by"] == "client", "closed by us: %r" % rec)
            with open(d.errlog, "rb") as f:
                log = f.read().decode("utf-8", "replace")
            check(log.count("closed (1009 message of 5242") == i + 1,
                  "1009 close logged")
            check(d.proc.poll() is None, "daemon alive")
            fake.wait("a new socket", lambda: any(
                s["id"] > first and s["hello_at"] and not s["closed"]
                for s in fake.get("/_test/sockets")), timeout=20)
            ts = "1720.00000%d" % (i + 1)
            fake.event(mention(ts))
            fake.wait_call("reactions.add",
                           lambda c: c["args"]["timestamp"] == ts)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_burst_of_1000_events_acks_leave_right_after_their_commit(tmp, ds):
    """1,000 envelopes written back to back: every one is acked, and no
    ack waits long between its event's commit (when it is queued) and its
    frame leaving.  Writing one queued frame per writable callback made
    the last of a burst wait for hundreds of loop turns."""
    fake = FakeSlack("--no-echo", "--redeliver-ms", "30000")
    port = free_port()
    try:
        d = slack_daemon(tmp, ds, fake, http="127.0.0.1:%d" % port)
        wait_http(port)
        connected(fake)
        evs = [mention("1730.%06d" % i, text="chatter %d" % i,
                       etype="message") for i in range(1000)]
        ids = set(fake.post("/_test/burst", {"events": evs})["envelopes"])
        fake.wait("every envelope acked", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")
            if e["envelope_id"] in ids), timeout=60)
        m = metrics(port)
        check(m["switchboard_ws_send_delay_seconds_count"] >= 1000,
              "acks counted: %r" % m.get(
                  "switchboard_ws_send_delay_seconds_count"))
        p99 = delay_quantile(m, 0.99)
        mx = m["switchboard_ws_send_delay_seconds_max"]
        print("commit->ack p99 <= %gs, max %.4fs" % (p99, mx))
        # Generous for a loaded 2-core machine; bench has the real figure.
        check(p99 <= 0.5 * SLOW, "commit->ack p99 %g s" % p99)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_burst_of_500_mentions_gets_every_eyes_and_replies_as_fast_as_allowed(
        tmp, ds):
    """500 mentions in one busy thread, the fake's limits lifted: each gets
    its 👀 right away (reactions once waited their turn among the queued
    replies: the last one four minutes late), and the replies are not held
    to the documented one a second either: the platform takes more, so
    they all go within seconds (it took 500 s)."""
    fake = FakeSlack("--no-echo", "--redeliver-ms", "30000")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1740.000001"
        fake.event(mention(root))
        fake.wait_call("chat.postMessage", lambda c: "Which provider"
                       in c["args"].get("text", ""))
        evs = [mention("1740.%06d" % (i + 2), text="<@UBOT> status",
                       thread_ts=root) for i in range(500)]
        t0 = time.time()
        ids = set(fake.post("/_test/burst", {"events": evs})["envelopes"])
        want = {e["ts"] for e in evs}

        def eyes():
            return {c["args"]["timestamp"]: c["at"]
                    for c in fake.calls("reactions.add")
                    if c["args"]["timestamp"] in want}
        got = fake.wait("👀 on all 500", lambda: len(eyes()) == 500 and
                        eyes(), timeout=20)
        sent = {e["envelope_id"]: e["deliveries"][0]["at"]
                for e in fake.get("/_test/envelopes")
                if e["envelope_id"] in ids}
        by_ts = {}
        for e in fake.get("/_test/envelopes"):
            if e["envelope_id"] in ids:
                by_ts[e["payload"]["event"]["ts"]] = sent[e["envelope_id"]]
        lat = sorted(got[ts] - by_ts[ts] for ts in got)
        posts = fake.wait("500 replies", lambda: len(
            [c for c in fake.calls("chat.postMessage") if c["at"] >= t0])
            >= 500 and [c for c in fake.calls("chat.postMessage")
                        if c["at"] >= t0], timeout=60)
        drain = max(c["at"] for c in posts) - t0
        print("👀 latency p50 %.3fs max %.3fs; 500 replies out in %.1fs"
              % (lat[len(lat) // 2], lat[-1], drain))
        check(lat[-1] <= 10 * SLOW, "slowest 👀 %.2fs" % lat[-1])
        check(drain <= 60 * SLOW, "replies drained in %.1fs" % drain)
        d.kill9()
    finally:
        fake.stop()


def start_busy_thread(fake, root):
    """A thread whose agent waits on a question (so `status` has a reply
    that names it)."""
    fake.event(mention(root))
    fake.wait_call("chat.postMessage", lambda c: "Which provider"
                   in c["args"].get("text", ""))


def test_kill9_with_a_backlog_replays_every_event_exactly_once(tmp, ds):
    """Events recorded in the inbox but not yet worked on when the daemon
    is killed (processing keeps up with a burst on a quiet machine, so the
    test writes such rows the way the daemon does) are worked on exactly
    once after the restart: one reply each, none twice, none lost; and
    events acked by the first run are not taken again when Slack
    redelivers them."""
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1750.000001"
        start_busy_thread(fake, root)
        r = fake.event(mention("1750.000002", text="<@UBOT> status",
                               thread_ts=root))
        fake.wait("the ack", lambda: [e for e in fake.get("/_test/envelopes")
                                      if e["envelope_id"] == r["envelope_id"]
                                      and e["acked"]])
        d.kill9()
        n = 300
        rows = [("chat", json.dumps({
            "adapter": "slack", "kind": 0, "channel": "C1", "thread": root,
            "msg_id": "1751.%06d" % i, "sender": "U1", "text": " status",
            "mentioned": True}), 1) for i in range(n)]
        con = sqlite3.connect(os.path.join(d.state, "switchboard.db"))
        con.executemany("INSERT INTO inbox (kind, payload, created_at)"
                        " VALUES (?, ?, ?)", rows)
        con.commit()
        con.close()

        d2 = slack_daemon(tmp, ds, fake)
        connected(fake)
        # The acked event, delivered again: a duplicate, not new work.
        fake.post("/_test/redeliver", {"envelope_id": r["envelope_id"]})

        def replies():
            # `status` answers with the agent's line ("#1 ask · ..."; the
            # card says the same but has a key: it is edited in place), or,
            # after the restart, which leaves only running agents listed,
            # with "No agents in this thread yet."
            return d2.db("SELECT count(*) FROM outbox WHERE op = 'post'"
                         " AND msg_key IS NULL AND (payload LIKE"
                         " '{\"text\":\"#1 ask %' OR payload LIKE"
                         " '{\"text\":\"No agents in this thread%')")[0][0]
        fake.wait("every row worked on", lambda: replies() >= n + 1 and
                  d2.db("SELECT count(*) FROM inbox")[0][0] == 0,
                  timeout=60)
        time.sleep(1)
        check(replies() == n + 1, "%d replies for %d mentions" %
              (replies(), n + 1))
        eyes = [json.loads(p)["target"] for (p,) in
                d2.db("SELECT payload FROM outbox WHERE op = 'react'")]
        check(len(eyes) == len(set(eyes)), "a 👀 queued twice")
        check({"1751.%06d" % i for i in range(n)} <= set(eyes),
              "👀 on every replayed mention")
        d2.kill9()
    finally:
        fake.stop()

def test_post_with_lost_reply_in_a_150_message_thread_is_not_posted_twice(
        tmp, ds):
    """After an answer that never came (Slack applied the post, the client
    heard 503), the retry reads the thread back page by page: in a thread
    longer than one page (100), the post is on a later page.  Reading only
    the first page posted it a second time."""
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1760.000001"
        start_busy_thread(fake, root)
        fake.post("/_test/seed", {"channel": "C1", "thread_ts": root,
                                  "count": 150})
        fake.post("/_test/lose", {"method": "chat.postMessage", "count": 1})
        fake.event(mention("1760.000002", text="<@UBOT> status",
                           thread_ts=root))
        fake.wait("the lost post", lambda: [
            c for c in fake.calls("chat.postMessage")
            if c.get("done_but_lost")])
        looks = fake.wait("a read-back past the first page", lambda: [
            c for c in fake.calls("conversations.replies")
            if c["args"].get("cursor")])
        check(looks[0]["args"]["ts"] == root, "read back the thread")
        time.sleep(2)
        status = [c for c in fake.calls("chat.postMessage")
                  if "is waiting" in c["args"].get("text", "")]
        check(len(status) == 1, "status posted %d times" % len(status))
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_a_1mb_task_is_refused_with_a_clear_reply_and_nothing_starts(tmp,
                                                                    ds):
    """A 1 MB mention used to start an agent that failed with "argument
    list too long"; now the thread is told the limit and nothing runs."""
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        fake.event(mention("1770.000001", text="<@UBOT> " + "x" * (1 << 20)))
        r = fake.wait_call("chat.postMessage", lambda c: "limited to" in
                           c["args"].get("text", ""))
        check(r["args"]["thread_ts"] == "1770.000001", "in the thread")
        check("1024 KB" in r["args"]["text"], r["args"]["text"])
        time.sleep(1)
        check(d.db("SELECT count(*) FROM agents")[0][0] == 0, "no agent")
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_replies_burst_past_one_a_second_then_settle_and_a_429_holds_them(
        tmp, ds):
    """Under Slack's documented limits (the fake's token buckets:
    chat.postMessage 1/s per channel, burst 4), 12 replies in a thread:
    the first go out together (a short burst, faster than 1/s), the one
    past the burst is refused with a 429, nothing more goes to the channel
    before its Retry-After ends, and then the rest come at the documented
    rate, about one a second.  The old pacing sent one a second from the
    start; pacing without the 429 would send on into the Retry-After."""
    fake = FakeSlack("--no-echo", "--limits", "real")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1780.000001"
        start_busy_thread(fake, root)
        time.sleep(4)           # the question's post: its token is back
        evs = [mention("1780.%06d" % (i + 2), text="<@UBOT> status",
                       thread_ts=root) for i in range(12)]
        t0 = time.time()
        fake.post("/_test/burst", {"events": evs})

        def replies():
            return [c for c in fake.calls("chat.postMessage")
                    if c["at"] >= t0 and c.get("status") == 200]
        got = fake.wait("12 replies", lambda: len(replies()) >= 12 and
                        replies(), timeout=40)
        at = [c["at"] for c in got]
        limited = [c for c in fake.calls("chat.postMessage")
                   if c["at"] >= t0 and c.get("status") == 429]
        rl = fake.get("/_test/ratelimits")
        print("replies at %s; 429s %d, early %d" % (
            ["%.2f" % (t - t0) for t in at], len(limited), rl["early"]))
        check(at[3] - at[0] < 1.0, "a burst: 4 replies in %.2fs" %
              (at[3] - at[0]))
        check(len(limited) >= 1, "the post past the burst got a 429")
        check(rl["early"] == 0, "calls inside a Retry-After: %r" %
              rl["early_calls"])
        ra = limited[0]["retry_after"]
        after = [t for t in at if t > limited[0]["at"]]
        check(after and after[0] - limited[0]["at"] >= ra,
              "next post %.2fs after a %ds Retry-After" % (
                  after[0] - limited[0]["at"], ra))
        # Settled: the documented rate, not faster (nor much slower).
        gaps = [b - a for a, b in zip(after, after[1:])]
        rate = len(gaps) / sum(gaps)
        check(0.7 <= rate <= 1.1, "%.2f posts/s after the burst" % rate)
        d.kill9()
    finally:
        fake.stop()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
