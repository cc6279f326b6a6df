#!/usr/bin/python3
"""bench/burst — Slack bursts against the fake Slack (Socket Mode), the
real binary, state on the normal filesystem.

  commit -> ack   1,000 envelopes written back to back (plain channel
                  chatter: recorded, acked, not acted on).  The daemon's own
                  histogram switchboard_ws_send_delay_seconds (from the ack
                  being queued, right after the group commit that records its
                  event, to its frame being written) gives p50/p99 as bucket
                  bounds, and the max exactly.  Also event -> ack seen by the
                  fake.
  burst 👀        500 `status` mentions in one thread whose agent waits on a
                  question: event written -> reactions.add received, p50 /
                  p99 / max, and how many replies (paced by Slack's budgets,
                  which the lifted fake lets grow)
                  went out meanwhile.

Numbers only; nothing fails on speed."""

import os
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import sb  # noqa: E402
from test_slack import FakeSlack, connected, mention, slack_daemon  # noqa: E402
from test_slack import wait_http  # noqa: E402


def figure(name, value, method, target="", verdict=""):
    print("FIGURE\t%s\t%s\t%s\t%s\t%s" % (name, value, method, target,
                                          verdict), flush=True)


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def bucket_quantile(m, q):
    total = m.get("switchboard_ws_send_delay_seconds_count", 0)
    bs = sorted((float(k.split('"')[1]), v) for k, v in m.items()
                if k.startswith("switchboard_ws_send_delay_seconds_bucket")
                and "+Inf" not in k)
    for le, n in bs:
        if n >= q * total:
            return le
    return float("inf")


def pct(v, q):
    return v[min(len(v) - 1, int(len(v) * q))]


def run(tmp):
    ds = []
    fake = FakeSlack("--no-echo", "--redeliver-ms", "30000")
    port = sb.free_port()
    try:
        d = slack_daemon(tmp, ds, fake, http="127.0.0.1:%d" % port)
        wait_http(port)
        connected(fake)
        base = metrics(port)
        evs = [mention("1900.%06d" % i, text="chatter %d" % i,
                       etype="message") for i in range(1000)]
        ids = set(fake.post("/_test/burst", {"events": evs})["envelopes"])
        fake.wait("acks", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")
            if e["envelope_id"] in ids), timeout=120)
        m = metrics(port)
        for k, v in base.items():
            if k.startswith("switchboard_ws_send_delay_seconds") and \
                    "max" not in k:
                m[k] = m.get(k, 0) - v
        envs = [e for e in fake.get("/_test/envelopes")
                if e["envelope_id"] in ids]
        lat = sorted((e["acked_at"] - e["deliveries"][0]["at"]) * 1000
                     for e in envs)
        p50 = bucket_quantile(m, 0.5) * 1000
        p99 = bucket_quantile(m, 0.99) * 1000
        mx = m["switchboard_ws_send_delay_seconds_max"] * 1000
        print("1,000-event burst: commit -> ack p50 <= %g ms, p99 <= %g ms,"
              " max %.2f ms; event -> ack (fake) p50 %.1f ms p99 %.1f ms"
              " max %.1f ms" % (p50, p99, mx, pct(lat, .5), pct(lat, .99),
                                lat[-1]))
        figure("burst 1,000: commit -> ack p99", "<= %g ms" % p99,
               "daemon histogram, queued -> written", "<= 1 ms",
               "met" if p99 <= 1 else "missed")
        figure("burst 1,000: event -> ack p99", "%.1f ms" % pct(lat, .99),
               "fake: frame written -> ack read", "", "")

        root = "1901.000001"
        fake.event(mention(root))
        fake.wait_call("chat.postMessage", lambda c: "Which provider"
                       in c["args"].get("text", ""))
        evs = [mention("1901.%06d" % (i + 2), text="<@UBOT> status",
                       thread_ts=root) for i in range(500)]
        t0 = time.time()
        ids = set(fake.post("/_test/burst", {"events": evs})["envelopes"])
        want = {e["ts"] for e in evs}

        def eyes():
            return {c["args"]["timestamp"]: c["at"]
                    for c in fake.calls("reactions.add")
                    if c["args"]["timestamp"] in want}
        got = fake.wait("👀", lambda: len(eyes()) == 500 and eyes(),
                        timeout=300)
        sent = {e["payload"]["event"]["ts"]: e["deliveries"][0]["at"]
                for e in fake.get("/_test/envelopes")
                if e["envelope_id"] in ids}
        lat = sorted((got[ts] - sent[ts]) * 1000 for ts in got)
        t_last = max(got.values())
        posts = [c for c in fake.calls("chat.postMessage")
                 if t0 <= c["at"] <= t_last]
        print("500-mention burst: event -> 👀 p50 %.0f ms p99 %.0f ms max"
              " %.0f ms; %d replies posted meanwhile" % (
                  pct(lat, .5), pct(lat, .99), lat[-1], len(posts)))
        figure("burst 500: event -> 👀 p99", "%.0f ms" % pct(lat, .99),
               "fake: frame written -> reactions.add", "<= 1000 ms",
               "met" if pct(lat, .99) <= 1000 else "missed")
    finally:
        for d in ds:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        fake.stop()


if __name__ == "__main__":
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="sb-bench-burst-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
