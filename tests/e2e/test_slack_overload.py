"""End-to-end tests of Slack under hostile input, bursts and faults: the
real binary against tests/fakes/fake-slack.py.  Helpers come from
test_slack.py."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import SLOW, check, run_tests  # noqa: E402
from test_slack import (FakeSlack, connected, mention,  # noqa: E402
                        slack_daemon)


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


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
