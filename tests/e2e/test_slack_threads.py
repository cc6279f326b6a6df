"""Slack threads the daemon has never seen: with the `*` route, a mention in
a thread starts work there only if the thread exists.  A thread_ts that
points at no message (Slack takes such a post from any app; the replies
live in a thread nobody can open) gets its work in a new thread at the top
of the channel.  The check (conversations.replies, ts = thread, limit 1)
runs off the ack path, and the event waits for it durably: across a
kill -9, and without holding up other events."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import check, run_tests  # noqa: E402
from test_slack import (FakeSlack, connected, mention, no_post_twice,  # noqa: E402
                        ok_posts, slack_daemon, text_of)


def replies_checks(fake, thread):
    return [c for c in fake.calls("conversations.replies")
            if c["args"].get("ts") == thread and c["args"].get("limit") == 1]


def test_mention_in_an_existing_thread_works_there(tmp, ds):
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1700.000100"
        # Someone's message (no mention: ignored), then a reply under it
        # that mentions the bot.
        fake.event(mention(root, text="the login page is slow",
                           etype="message"))
        fake.event(mention("1700.000200", text="<@UBOT> login page",
                           thread_ts=root))
        card = fake.wait_call("chat.postMessage", lambda c: "#1 ask ·" in
                              text_of(c))
        check(card["args"].get("thread_ts") == root, "work in the thread: %r"
              % card["args"])
        c = replies_checks(fake, root)
        check(len(c) == 1 and c[0]["reply"]["ok"], "one check: %r" % c)
        check(d.db("SELECT thread FROM conversations") == [(root,)],
              "conversation rooted at the thread")
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_thread_pointing_nowhere_answers_at_the_top_of_the_channel(tmp, ds):
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        ghost = "1800.000100"           # no such message in C1
        fake.event(mention("1800.000200", text="<@UBOT> login page",
                           thread_ts=ghost))
        root = fake.wait_call("chat.postMessage", lambda c: "does not exist"
                              in text_of(c))
        check("thread_ts" not in root["args"], "root at the top: %r"
              % root["args"])
        card = fake.wait_call("chat.postMessage", lambda c: "#1 ask ·" in
                              text_of(c))
        check(card["args"].get("thread_ts") == root["reply"]["ts"],
              "work in the new thread: %r" % card["args"])
        c = replies_checks(fake, ghost)
        check(len(c) == 1 and c[0]["reply"].get("error") ==
              "thread_not_found", "checked once: %r" % c)
        check(not any(p["args"].get("thread_ts") == ghost
                      for p in fake.calls("chat.postMessage")),
              "nothing posted into the invisible thread")
        check(re.search(r"thread 1800\.000100 does not exist; conversation"
                        r" 1 answers slack:U1 at the top of the channel",
                        open(d.errlog).read()), "log line: " + d.stderr_tail())
        check(d.db("SELECT count(*) FROM agents") == [(1,)], "one agent")
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_waiting_event_survives_kill9_and_holds_nothing_else_up(tmp, ds):
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        # Slack limits the check for a long while: the event waits.
        fake.post("/_test/ratelimit", {"method": "conversations.replies",
                                       "count": 5, "retry_after": 25})
        root, reply = "1900.000100", "1900.000200"
        fake.event(mention(root, text="deploy is broken", etype="message"))
        e1 = fake.event(mention(reply, text="<@UBOT> deploy fix",
                                thread_ts=root))
        fake.wait("the check to be limited", lambda: any(
            c.get("status") == 429 for c in fake.calls(
                "conversations.replies")))
        # An event behind it is acked and worked on meanwhile.
        fake.event(mention("1901.000100", text="<@UBOT> other task",
                           channel="C2"))
        other = fake.wait_call("chat.postMessage", lambda c: "#1 ask ·" in
                               text_of(c))
        check(other["args"]["channel"] == "C2", "C2 first: %r"
              % other["args"])
        fake.wait("every envelope acked", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")))
        check(d.db("SELECT count(*) FROM kv WHERE key LIKE"
                   " 'chat.parked.%'") == [(1,)], "parked durably")
        d.kill9()
        fake.post("/_test/ratelimit", {"method": "conversations.replies",
                                       "count": 0})
        d.start()
        card = fake.wait_call("chat.postMessage", lambda c: "#2 ask ·" in
                              text_of(c))
        check(card["args"].get("thread_ts") == root, "work in its thread: %r"
              % card["args"])
        time.sleep(0.5)
        check(d.db("SELECT count(*) FROM kv WHERE key LIKE"
                   " 'chat.parked.%'") == [(0,)], "nothing left parked")
        check(d.db("SELECT thread, count(a.id) FROM conversations c JOIN"
                   " agents a ON a.conversation_id = c.id GROUP BY thread"
                   " ORDER BY thread") == [(root, 1), ("1901.000100", 1)],
              "one agent per thread: %r" % d.db("SELECT * FROM agents"))
        check(len([e for e in fake.get("/_test/envelopes")
                   if e["envelope_id"] == e1["envelope_id"]]) == 1, "e1")
        no_post_twice(fake)
        check(not any(p["args"].get("thread_ts") is None and "#" in
                      text_of(p) for p in ok_posts(fake)), "no top-level work")
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
