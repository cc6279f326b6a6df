"""End-to-end tests of the conversation cache: conversations leave memory
when nothing holds them (limits.keep_conversations) and come back from the
store when their thread speaks; one held by a live agent with an open
question stays, so answering it later touches no freed memory (run under
the ASan build too)."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import Daemon, agent, check, run_tests, SLOW  # noqa: E402

ASK = [("ask", [agent("ask.sh"), "{task}"], 60)]


def new_thread(d, text):
    return d.expect(r"^\[t(\d+)\] \d+ console:me: %s$" % re.escape(text)
                    ).group(1)


def answer(d, t, n):
    d.expect(r"^\[t%s\] \d+ switchboard: ❓ q\d+ from #%d: Which provider"
             % (t, n))
    d.send("t%s GitHub" % t)


def loaded(d):
    r = d.cli("status", "-s", d.state)
    m = re.search(r"conversations: (\d+)", r.stdout)
    check(m is not None, r.stdout + r.stderr)
    return int(m.group(1))


def wait_log(d, text, timeout=20):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        with open(d.errlog, errors="replace") as f:
            if text in f.read():
                return
        time.sleep(0.1)
    check(False, "never logged %r; stderr tail:\n%s" % (text,
                                                         d.stderr_tail()))


def test_old_threads_answer_after_their_conversation_left_memory(tmp, ds):
    d = Daemon(tmp, ASK,
               limits="keep_ended = 1; keep_conversations = 1;").start()
    ds.append(d)
    d.send("new first")
    ta = new_thread(d, "first")
    answer(d, ta, 1)
    d.expect(r"✅ #1 done")
    # #2 waits on its question while the others come and go.
    d.send("new pending")
    tq = new_thread(d, "pending")
    d.expect(r"^\[t%s\] \d+ switchboard: ❓ q\d+ from #2" % tq)
    for i in range(3, 6):
        d.send("new other %d" % i)
        t = new_thread(d, "other %d" % i)
        answer(d, t, i)
        d.expect(r"✅ #%d done" % i)
    # Ended agents unload after 1 s and let go of their conversations;
    # then all but one unreferenced conversation leave memory.
    wait_log(d, "conversation 1: left memory")
    deadline = time.time() + 20 * SLOW
    while loaded(d) > 2 and time.time() < deadline:
        time.sleep(0.2)
    n = loaded(d)
    check(n <= 2, "%d conversations in memory: the held one and at most"
          " keep_conversations = 1 more" % n)
    # The old thread is loaded again: its agent listed, a follow-up runs.
    d.send("t%s status" % ta)
    d.expect(r"^\[t%s\] \d+ switchboard: #1 ask · done" % ta)
    d.send("t%s #1 again" % ta)
    d.expect(r"^\[t%s\] \d+ switchboard: #1: starting a new turn" % ta)
    answer(d, ta, 1)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % ta)
    # The held conversation never left: its question is answered in place.
    with open(d.errlog, errors="replace") as f:
        check("conversation 2: left memory" not in f.read(),
              "a conversation with a live agent left memory")
    d.send("t%s GitHub" % tq)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #2 done" % tq)
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
