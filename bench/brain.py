#!/usr/bin/python3
"""bench/brain — our own cost of an LLM brain turn, the model excluded, and
the memory a conversation with a long transcript costs.

The model is tests/fakes/fake-llm.py (Anthropic shape), answering at once
with a short text; the daemon is the real binary, log level info, state on
the normal filesystem (SQLite WAL, synchronous=FULL).  One thread gets N
plain messages in a row, each sent when the previous reply was printed, so
turns never overlap:
  - CPU per turn: the daemon's utime+stime over the N turns / N (this
    includes the console adapter and the outbox that print the reply);
  - our wall time per turn: switchboard_brain_own_seconds_total / turns,
    the time the turn spent in our code (prompt, transcript in and out of
    SQLite, tool calls, accounting), i.e. the turn's latency minus the
    time waiting on the model (switchboard_brain_model_seconds_total);
  - message-to-reply latency on the console (includes the fake's time).
Memory: C conversations each get E exchanges (one person message, one
reply); RSS growth / C, and the transcript's bytes in the database per
conversation.  Numbers only: nothing fails on speed."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

sb = bl.sb
FAKE = os.path.join(bl.ROOT, "tests", "fakes", "fake-llm.py")
N_TURNS = int(os.environ.get("BENCH_BRAIN_TURNS", "100"))
N_CONVS = int(os.environ.get("BENCH_BRAIN_CONVS", "5"))
N_EXCH = 50


def call(url, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, headers={
        "Content-Type": "application/json"},
        method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def main():
    tmp = tempfile.mkdtemp(prefix="sb-bench-brain-")
    fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--key", "k"],
                            stdout=subprocess.PIPE)
    url = "http://127.0.0.1:%d" % int(fake.stdout.readline())
    port = sb.free_port()
    extra = """
brains = ( { name = "main"; provider = "anthropic"; model = "bench";
             api_key = "env:LLM_KEY"; base_url = "%s"; timeout = 10;
             price_in_per_mtok = 3.0; price_out_per_mtok = 15.0; } );
""" % url
    d = sb.Daemon(tmp, [("true", ["/bin/true"], 60)], extra=extra,
                  http="127.0.0.1:%d" % port, env={"LLM_KEY": "k"})
    bl.quiet_log(d)
    with open(d.conf) as f:
        conf = f.read().replace('agent = "true"; }', 'agent = "true";'
                                ' brain = "main"; }')
    with open(d.conf, "w") as f:
        f.write(conf)
    try:
        d.start()
        reply = "Noted; nothing to start for that yet."
        call(url, "/_script", {"responses": [{"text": reply}] *
                               (N_TURNS + 1 + N_CONVS * N_EXCH)})
        d.send("new warm up the brain")
        t = d.expect(r"^\[t(\d+)\] \d+ console:me: warm").group(1)
        d.expect(r"switchboard: Noted;", timeout=30)

        def metrics():
            return urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % port, timeout=10).read() \
                .decode()

        m0 = metrics()
        c0 = bl.cpu_s(d.proc.pid)
        lat = []
        for i in range(N_TURNS):
            t0 = time.perf_counter()
            d.send("t%s message number %d, about the login page" % (t, i))
            d.expect(r"^\[t%s\] \d+ switchboard: Noted;" % t, timeout=30)
            lat.append(time.perf_counter() - t0)
        c1 = bl.cpu_s(d.proc.pid)
        m1 = metrics()
        turns = bl.metric(m1, "switchboard_brain_turns_total") - \
            bl.metric(m0, "switchboard_brain_turns_total")
        own = bl.metric(m1, "switchboard_brain_own_seconds_total") - \
            bl.metric(m0, "switchboard_brain_own_seconds_total")
        model = bl.metric(m1, "switchboard_brain_model_seconds_total") - \
            bl.metric(m0, "switchboard_brain_model_seconds_total")
        print("turns %d, daemon CPU %.3f s, own %.3f s, model %.3f s"
              % (turns, c1 - c0, own, model))
        bl.row("brain: daemon CPU per turn", "%.2f ms" % (
            (c1 - c0) * 1000 / N_TURNS), "utime+stime over %d turns,"
               " fake model answering at once" % N_TURNS)
        bl.row("brain: our wall time per turn (model excluded)",
               "%.2f ms mean" % (own * 1000 / turns),
               "own_seconds_total / turns (transcript 1..%d exchanges)"
               % N_TURNS)
        bl.row("brain: message to reply on the console",
               "p50 %.1f ms, p99 %.1f ms" % (bl.pct(lat, 50) * 1000,
                                             bl.pct(lat, 99) * 1000),
               "includes the fake model (%.2f ms per call)"
               % (model * 1000 / turns))

        # Memory per conversation with a 50-exchange transcript.
        r0 = bl.rss_kb(d.proc.pid)
        for k in range(N_CONVS):
            d.send("new conversation %d starts here" % k)
            tk = d.expect(r"^\[t(\d+)\] \d+ console:me: conversation %d "
                          % k).group(1)
            d.expect(r"^\[t%s\] \d+ switchboard: Noted;" % tk, timeout=30)
            for i in range(N_EXCH - 1):
                d.send("t%s exchange %d of a long talk about billing" % (tk,
                                                                        i))
                d.expect(r"^\[t%s\] \d+ switchboard: Noted;" % tk,
                         timeout=30)
        r1 = bl.rss_kb(d.proc.pid)
        rows = d.db("SELECT count(*), sum(length(body)) FROM"
                    " brain_transcript WHERE conversation_id != (SELECT"
                    " min(conversation_id) FROM brain_transcript)")[0]
        per = (r1 - r0) / N_CONVS
        print("RSS %d -> %d kB over %d conversations; transcript rows %d,"
              " %d bytes" % (r0, r1, N_CONVS, rows[0], rows[1]))
        bl.row("brain: memory per conversation (50 exchanges)",
               "%.0f kB RSS" % per, "RSS growth over %d conversations of %d"
               " exchanges each / %d" % (N_CONVS, N_EXCH, N_CONVS))
        bl.row("brain: transcript on disk per conversation (50 exchanges)",
               "%.1f kB" % (rows[1] / 1024.0 / N_CONVS),
               "sum(length(body)) in brain_transcript / conversations")
        d.stop()
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
        fake.kill()
        fake.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
