"""End-to-end tests of the Slack adapter: the real binary against
tests/fakes/fake-slack.py (Web API + Socket Mode on loopback), and signed
Events API requests posted to the daemon's own HTTP server."""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import (ROOT, SLOW, Daemon, agent, check, free_port,  # noqa: E402
                run_tests)

FAKE = os.path.join(ROOT, "tests", "fakes", "fake-slack.py")
ASK = [("ask", [agent("ask.sh"), "{task}"], 60)]
BOT = "xoxb-test-bot"
APP = "xapp-test-app"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class FakeSlack:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", FAKE, "--redeliver-ms", "1500",
             "--close-after-ms", "4000", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.port = int(self.proc.stdout.readline())
        self.base = "http://127.0.0.1:%d" % self.port

    def post(self, path, obj):
        req = urllib.request.Request(self.base + path,
                                     data=json.dumps(obj).encode(),
                                     headers={"Content-Type":
                                              "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.loads(r.read())

    def calls(self, method=None):
        return [c for c in self.get("/_test/calls")
                if method is None or c["method"] == method]

    def event(self, ev, event_id=None):
        body = {"event": ev}
        if event_id:
            body["event_id"] = event_id
        return self.post("/_test/event", body)

    def wait(self, what, fn, timeout=15):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            r = fn()
            if r:
                return r
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; calls:\n  %s" % (
            what, "\n  ".join(json.dumps(c)[:300] for c in self.calls())))

    def wait_call(self, method, pred=lambda c: True, timeout=15):
        return self.wait("%s call" % method, lambda: next(
            (c for c in self.calls(method) if c.get("status") == 200 and
             c.get("reply", {}).get("ok") and pred(c)), None), timeout)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def slack_daemon(tmp, ds, fake, mode="socket", bot=BOT, extra_slack="",
                 http="", wrapper=None):
    slack = ('slack = { enabled = true; mode = "%s"; '
             'bot_token = "env:SB_SLACK_BOT"; app_token = "env:SB_SLACK_APP";'
             ' signing_secret = "env:SB_SLACK_SECRET"; api_url = "%s"; %s };'
             % (mode, fake.base + "/api/" if fake else "http://127.0.0.1:9/",
                extra_slack))
    d = Daemon(tmp, ASK, adapters=slack, http=http,
               allowed='"console:me", "slack:U1"',
               env={"SB_SLACK_BOT": bot, "SB_SLACK_APP": APP,
                    "SB_SLACK_SECRET": SECRET}, wrapper=wrapper)
    with open(d.conf) as f:
        conf = f.read()
    conf = re.sub(r'routes = \( (\{[^}]*\}) \);',
                  r'routes = ( \1, { adapter = "slack"; channel = "*"; '
                  r'repo = "r"; agent = "ask"; } );', conf)
    with open(d.conf, "w") as f:
        f.write(conf)
    ds.append(d)
    return d.start()


def mention(ts, text="<@UBOT> login page", channel="C1", user="U1",
            etype="app_mention", **kw):
    ev = {"type": etype, "channel": channel, "user": user, "text": text,
          "ts": ts, "event_ts": ts, "team": "T0TEST"}
    if etype == "message":
        ev["channel_type"] = "channel"
    ev.update(kw)
    return ev


def text_of(c):
    return c["args"].get("text", "")


def connected(fake):
    fake.wait("a socket", lambda: any(s["hello_at"] and not s["closed"]
                                      for s in fake.get("/_test/sockets")))


def click(question_msg, user="U1", choice_index=1):
    """A block_actions payload as Slack sends it for our button."""
    blocks = question_msg["args"]["blocks"]
    btn = [b for b in blocks if b["type"] == "actions"][0]["elements"][
        choice_index]
    return {"type": "block_actions", "user": {"id": user, "username": "u"},
            "api_app_id": "A0TEST", "team": {"id": "T0TEST"},
            "container": {"type": "message", "message_ts":
                          question_msg["reply"]["ts"],
                          "channel_id": question_msg["args"]["channel"],
                          "is_ephemeral": False},
            "channel": {"id": question_msg["args"]["channel"]},
            "message": {"ts": question_msg["reply"]["ts"],
                        "thread_ts": question_msg["args"].get("thread_ts"),
                        "text": question_msg["args"]["text"]},
            "trigger_id": "1.2.3", "response_url": "http://127.0.0.1:9/x",
            "actions": [{"action_id": btn["action_id"], "block_id": "b",
                         "value": btn["value"], "type": "button",
                         "action_ts": "%.6f" % time.time()}]}


def reply_in(thread, ts, text, channel="C1", user="U1"):
    """A plain thread reply (no mention): arrives only as `message`."""
    return mention(ts, text=text, channel=channel, user=user,
                   etype="message", thread_ts=thread)


def ok_posts(fake):
    return [c for c in fake.calls("chat.postMessage")
            if c.get("status") == 200 and c.get("reply", {}).get("ok")]


def question_in(fake, what):
    return fake.wait_call("chat.postMessage", lambda c: "blocks" in
                          c["args"] and "Which provider for %s" % what
                          in text_of(c))


def answered(fake, q, who_what):
    """The question message's edit that says who answered."""
    upd = fake.wait_call("chat.update", lambda c: c["args"]["ts"] ==
                         q["reply"]["ts"] and "answered by" in text_of(c))
    check("answered by %s" % who_what in text_of(upd),
          "question update %r" % text_of(upd))
    check(not any(b["type"] == "actions"
                  for b in upd["args"].get("blocks", [])), "buttons removed")
    return upd


def no_post_twice(fake):
    """Every successful post is unique within its thread: an event handled
    twice, or a post retried after it went through, shows up here."""
    seen = [(c["args"].get("thread_ts"), text_of(c)) for c in ok_posts(fake)]
    dups = sorted({x for x in seen if seen.count(x) > 1})
    check(not dups, "posted twice: %r" % dups)


def reacted_once(fake, *targets):
    """👀 once on each message that started a conversation, and no
    reaction sent twice (the core also marks answers it took)."""
    r = [(c["args"]["timestamp"], c["args"]["name"])
         for c in fake.calls("reactions.add")]
    check(len(r) == len(set(r)), "a reaction sent twice: %r" % r)
    for t in targets:
        check(r.count((t, "eyes")) == 1, "👀 on %s: %r" % (t, r))


def count(d, sql):
    return d.db(sql)[0][0]


# ---- Socket Mode ------------------------------------------------------------

def test_socket_mention_starts_thread_with_card_question_and_click(tmp, ds):
    fake = FakeSlack()
    try:
        slack_daemon(tmp, ds, fake)
        connected(fake)
        fake.event(mention("1699.000100"))
        r = fake.wait_call("reactions.add",
                           lambda c: c["args"]["timestamp"] == "1699.000100")
        check(r["args"]["name"] == "eyes", "reaction %r" % r["args"])
        card = fake.wait_call("chat.postMessage", lambda c: "#1 ask ·"
                              in text_of(c))
        check(card["args"]["thread_ts"] == "1699.000100", "card in thread")
        check(card["args"]["metadata"]["event_payload"]["outbox_id"] > 0,
              "outbox id in metadata")
        q = fake.wait_call("chat.postMessage", lambda c: "blocks" in
                           c["args"] and "Which provider" in text_of(c))
        check(q["args"]["thread_ts"] == "1699.000100", "question in thread")
        btns = [b for b in q["args"]["blocks"] if b["type"] == "actions"][0]
        check([e["value"] for e in btns["elements"]] == ["GitHub", "Google"],
              "buttons %r" % btns)
        check(re.match(r"sbq:q\d+:1$", btns["elements"][1]["action_id"]),
              "action id %s" % btns["elements"][1]["action_id"])
        fake.wait_call("chat.update", lambda c: c["args"]["ts"] ==
                       card["reply"]["ts"])
        # A click naming this question from another channel is ignored.
        stray = click(q, choice_index=0)
        stray["channel"] = {"id": "C9"}
        stray["container"]["channel_id"] = "C9"
        fake.post("/_test/event", {"interactive": stray})
        time.sleep(0.5)
        check(not any(c["args"]["ts"] == q["reply"]["ts"]
                      for c in fake.calls("chat.update")),
              "a click from another channel answered the question")
        fake.post("/_test/event", {"interactive": click(q)})
        upd = fake.wait_call("chat.update", lambda c: c["args"]["ts"] ==
                             q["reply"]["ts"])
        check("answered by slack:U1: Google" in text_of(upd),
              "question update %r" % text_of(upd))
        check(not any(b["type"] == "actions"
                      for b in upd["args"].get("blocks", [])),
              "buttons removed")
        fake.wait_call("chat.postMessage", lambda c: "done" in text_of(c)
                       and "chose Google" in text_of(c))
        # Our own posts came back as message events and were ignored: one
        # reaction only, on the user's message.
        time.sleep(0.5)
        check(len(fake.calls("reactions.add")) == 1,
              "reactions: %r" % fake.calls("reactions.add"))
        # Every envelope was acked.
        envs = fake.get("/_test/envelopes")
        check(all(e["acked"] for e in envs), "unacked envelopes")
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_message_and_app_mention_of_one_message_start_one_agent(tmp,
                                                                      ds):
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        fake.event(mention("1700.000001", etype="message"))
        fake.event(mention("1700.000001"))
        fake.wait_call("chat.postMessage", lambda c: "#1 ask ·" in text_of(c))
        time.sleep(1.0)
        cards = [c for c in fake.calls("chat.postMessage")
                 if re.search(r"#\d+ ask", text_of(c))
                 and "Started" not in text_of(c)]
        check(all("#2" not in text_of(c) for c in cards),
              "a second agent: %r" % [text_of(c) for c in cards])
        check(len(fake.calls("reactions.add")) == 1, "one 👀")
        n = d.db("SELECT count(*) FROM conversations")[0][0]
        check(n == 1, "%d conversations" % n)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_redelivered_envelope_and_own_messages_are_ignored(tmp, ds):
    fake = FakeSlack("--no-echo")
    try:
        slack_daemon(tmp, ds, fake)
        connected(fake)
        r = fake.event(mention("1701.000001"))
        fake.wait_call("reactions.add")
        fake.post("/_test/redeliver", {"envelope_id": r["envelope_id"]})
        # The bot's own message and an edit: never a conversation.
        fake.event(mention("1701.000002", user="UBOT"))
        fake.event(mention("1701.000003", etype="message", user="U1",
                           bot_id="BBOT"))
        fake.event({"type": "message", "subtype": "message_changed",
                    "channel": "C1", "ts": "1701.000004",
                    "message": {"user": "U1", "text": "<@UBOT> x",
                                "ts": "1701.000001"}})
        time.sleep(1)
        check(len(fake.calls("reactions.add")) == 1,
              "reactions %r" % fake.calls("reactions.add"))
        env = [e for e in fake.get("/_test/envelopes")
               if e["envelope_id"] == r["envelope_id"]][0]
        check(env["acks"] >= 2, "redelivery acked too: %r" % env)
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_post_whose_reply_was_lost_is_not_posted_twice(tmp, ds):
    fake = FakeSlack("--no-echo")
    try:
        slack_daemon(tmp, ds, fake)
        connected(fake)
        # The card's post (a keyed message, edited later) is the one lost.
        fake.post("/_test/lose", {"method": "chat.postMessage", "count": 1,
                                  "match": "#1 ask ·"})
        fake.event(mention("1705.000001"))
        # The retry reads the thread back, finds row N's metadata, and the
        # card's edit then goes to the message that was really posted.
        look = fake.wait_call("conversations.replies")
        check(look["args"]["ts"] == "1705.000001", "looked in the thread")
        check([c for c in fake.calls("chat.postMessage")
               if c.get("done_but_lost")], "a reply was lost")
        upd = fake.wait_call("chat.update",
                             lambda c: text_of(c).startswith("#1 ask ·"))
        posted = fake.get("/_test/calls")
        lost = [c for c in posted if c.get("done_but_lost")][0]
        check(upd["args"]["ts"] == lost["lost_result"]["ts"],
              "edit targets the post whose reply was lost: %r" % upd["args"])
        cards = [c for c in posted if c["method"] == "chat.postMessage"
                 and text_of(c).startswith("#1 ask ·")]
        check(len(cards) == 1, "card posted %d times" % len(cards))
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_reply_in_a_quiet_thread_whose_answer_was_lost_once(tmp, ds):
    """A reply that goes out as soon as its work commits has its attempt
    marker written in that commit; an attempt whose answer was lost
    leaves it unknown whether it posted, so the retry reads the thread
    back instead of posting blind."""
    fake = FakeSlack("--no-echo")
    try:
        slack_daemon(tmp, ds, fake)
        connected(fake)
        fake.event(mention("1705.000001"))
        question_in(fake, "login page")     # the agent waits: a quiet lane
        fake.post("/_test/lose", {"method": "chat.postMessage", "count": 1})
        fake.event(mention("1705.000002", text="status", etype="message",
                           thread_ts="1705.000001"))
        look = fake.wait_call("conversations.replies")
        check(look["args"]["ts"] == "1705.000001", "looked in the thread")
        lost = [c for c in fake.calls("chat.postMessage")
                if c.get("done_but_lost")]
        check(len(lost) == 1, "a reply was lost")
        fake.wait("the reply recorded as sent", lambda: count(
            ds[0], "SELECT count(*) FROM outbox WHERE status = 'pending'")
            == 0)
        no_post_twice(fake)
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_deaf_and_dropped_sockets_are_replaced(tmp, ds):
    fake = FakeSlack("--no-echo")
    try:
        slack_daemon(tmp, ds, fake, extra_slack="socket_timeout_ms = 1000;")
        connected(fake)
        fake.post("/_test/deaf", {})
        fake.wait("a replacement socket", lambda: len(
            [s for s in fake.get("/_test/sockets")
             if s["hello_at"] and not s["closed"] and not s["deaf"]]) == 1
            and len(fake.get("/_test/sockets")) >= 2)
        fake.event(mention("1704.000001"))
        fake.wait_call("reactions.add")
        fake.post("/_test/drop", {})
        fake.wait("a third socket", lambda: len(
            [s for s in fake.get("/_test/sockets") if s["hello_at"]
             and not s["closed"]]) == 1 and
            len(fake.get("/_test/sockets")) >= 3)
        fake.event(mention("1704.000002"))
        fake.wait_call("reactions.add", lambda c: c["args"]["timestamp"] ==
                       "1704.000002")
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_link_disabled_stops_the_adapter(tmp, ds):
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        fake.post("/_test/disconnect", {"reason": "link_disabled"})
        fake.wait("log line", lambda: "stopped: link_disabled"
                  in d.stderr_tail(200))
        time.sleep(1.5)
        check(len(fake.calls("apps.connections.open")) == 1,
              "no reconnect after link_disabled")
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_invalid_auth_stops_with_one_clear_line_and_no_retry(tmp, ds):
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake, bot="xoxb-wrong")
        fake.wait("auth.test", lambda: fake.calls("auth.test"))
        fake.wait("log line", lambda: "stopped: invalid_auth"
                  in d.stderr_tail(200))
        time.sleep(1.5)
        check(len(fake.calls("auth.test")) == 1, "auth.test retried")
        check(not fake.calls("apps.connections.open"), "no socket")
        lines = [l for l in d.stderr_tail(200).splitlines()
                 if "invalid_auth" in l and "bot token" in l]
        check(len(lines) == 1, "one clear line: %r" % lines)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_two_threads_in_parallel_answered_by_plain_thread_replies(
        tmp, ds):
    # Echo on: our own posts come back as message events and are ignored.
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        t1, t2 = "1720.000001", "1720.000002"
        fake.event(mention(t1, text="<@UBOT> alpha"))
        fake.event(mention(t2, text="<@UBOT> beta"))
        q1 = question_in(fake, "alpha")
        q2 = question_in(fake, "beta")
        check(q1["args"]["thread_ts"] == t1, "alpha asks in its thread")
        check(q2["args"]["thread_ts"] == t2, "beta asks in its thread")
        # Plain replies (no button, no qN): each answers its thread's
        # question, in the other order than asked.
        fake.event(reply_in(t2, "1720.000003", "github"))
        fake.event(reply_in(t1, "1720.000004", "google"))
        answered(fake, q2, "slack:U1: GitHub")
        answered(fake, q1, "slack:U1: Google")
        done1 = fake.wait_call("chat.postMessage", lambda c:
                               "chose Google" in text_of(c))
        done2 = fake.wait_call("chat.postMessage", lambda c:
                               "chose GitHub" in text_of(c))
        check(done1["args"]["thread_ts"] == t1, "alpha's result in t1")
        check(done2["args"]["thread_ts"] == t2, "beta's result in t2")
        for c in ok_posts(fake):
            check(c["args"].get("thread_ts") in (t1, t2),
                  "post outside the threads: %r" % c["args"])
            for word, t in (("alpha", t1), ("beta", t2)):
                if word in text_of(c):
                    check(c["args"]["thread_ts"] == t,
                          "%s in the wrong thread: %r" % (word, c["args"]))
        check(count(d, "SELECT count(*) FROM conversations") == 2,
              "two conversations")
        check(d.db("SELECT a.task, q.answer, c.thread FROM questions q "
                   "JOIN agents a ON a.id = q.agent_id JOIN conversations c "
                   "ON c.id = a.conversation_id ORDER BY c.thread") ==
              [("alpha", "Google", t1), ("beta", "GitHub", t2)],
              "answers routed: %r" % d.db("SELECT * FROM questions"))
        # The last post's echo may be on its way still (posts are no
        # longer held to one a second): wait for its ack.
        fake.wait("echoes acked", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")
            if e["payload"].get("event", {}).get("user") == "UBOT") and any(
            e["payload"].get("event", {}).get("user") == "UBOT"
            for e in fake.get("/_test/envelopes")))
        reacted_once(fake, t1, t2)
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_refresh_and_drop_mid_task_lose_and_repeat_nothing(tmp, ds):
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        t1, t2 = "1730.000001", "1730.000002"
        fake.event(mention(t1, text="<@UBOT> alpha"))
        q1 = question_in(fake, "alpha")          # agent 1 is asking
        # Refresh: a new mention arrives while the sockets change over (in
        # another channel, so that its posts do not queue behind alpha's).
        fake.post("/_test/disconnect", {"reason": "refresh_requested"})
        fake.event(mention(t2, text="<@UBOT> beta", channel="C2"))
        socks = fake.wait("second socket and first closed", lambda: (
            lambda s: s if len(s) >= 2 and s[0]["closed"] else None)(
            fake.get("/_test/sockets")))
        check(socks[1]["hello_at"] < socks[0]["closed"],
              "new hello before old close: %r" % socks)
        check(socks[0]["closed_by"] == "client", "old closed by us")
        check(len(fake.calls("apps.connections.open")) == 2, "one new URL")
        question_in(fake, "beta")                # agent 2 is asking
        # Abrupt drop; the answer is sent while no socket is up.
        fake.post("/_test/drop", {})
        fake.event(reply_in(t1, "1730.000003", "github"))
        fake.wait("a third socket", lambda: len(
            [s for s in fake.get("/_test/sockets") if s["hello_at"]
             and not s["closed"]]) == 1 and
            len(fake.get("/_test/sockets")) >= 3)
        answered(fake, q1, "slack:U1: GitHub")
        fake.wait("every envelope acked", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")))
        check(count(d, "SELECT count(*) FROM conversations") == 2,
              "two conversations")
        check(count(d, "SELECT count(*) FROM agents") == 2, "two agents")
        check(count(d, "SELECT count(*) FROM questions WHERE answer IS NOT "
                    "NULL") == 1, "one answer")
        reacted_once(fake, t1, t2)
        check(not [c for c in ok_posts(fake) if "already answered"
                   in text_of(c)], "the answer was handled twice")
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_socket_429_storm_never_retries_early_and_keeps_thread_order(tmp,
                                                                     ds):
    fake = FakeSlack("--no-echo")
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        for m, n in (("chat.postMessage", 3), ("chat.update", 2)):
            fake.post("/_test/ratelimit", {"method": m, "count": n,
                                           "retry_after": 1})
        t = "1740.000001"
        fake.event(mention(t))
        # The agent asks while the card is still being refused: the
        # question queues behind it.
        fake.wait_call("chat.postMessage", lambda c: "Which provider"
                       in text_of(c), timeout=30)
        fake.wait("the card's throttled edits", lambda: len(
            [c for c in fake.calls("chat.update") if c["status"] == 429])
            == 2 and fake.calls("chat.update")[-1]["status"] == 200)
        calls = [c for c in fake.calls() if c["method"] in
                 ("chat.postMessage", "chat.update")]
        limited = [c for c in calls if c["status"] == 429]
        check(len(limited) == 5, "429s: %d" % len(limited))
        for c in limited:
            # Slack's limits are per method: nothing of that method goes
            # out before Retry-After (edits may pass paced posts, and
            # posts edits, so other methods are not held).
            later = [x for x in calls if x["at"] > c["at"] and
                     x["method"] == c["method"]]
            check(later and later[0]["at"] - c["at"] >= 1.0,
                  "%s retried after %.3f s" % (c["method"],
                                               later[0]["at"] - c["at"]))
            check(text_of(later[0]) == text_of(c),
                  "the limited call goes first: %r" % later[0]["args"])
        texts = [text_of(c) for c in ok_posts(fake)]
        order = [next(i for i, x in enumerate(texts) if k in x)
                 for k in ("Started #1", "#1 ask ·", "Which provider")]
        check(order == sorted(order), "thread order: %r" % texts)
        check(all(c["args"].get("thread_ts") == t for c in ok_posts(fake)),
              "all in the thread")
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_restart_with_pending_events_handles_each_exactly_once(tmp, ds):
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        t1, t2 = "1750.000001", "1750.000002"
        # The ack of the first event never reaches Slack: it stays pending.
        fake.post("/_test/hold_acks", {"on": True})
        e1 = fake.event(mention(t1, text="<@UBOT> alpha"))
        fake.wait_call("reactions.add", lambda c: c["args"]["timestamp"]
                       == t1)
        d.kill9()
        fake.post("/_test/hold_acks", {"on": False})
        e2 = fake.event(mention(t2, text="<@UBOT> beta"))  # nobody there
        d.start()
        fake.wait_call("reactions.add", lambda c: c["args"]["timestamp"]
                       == t2)
        fake.wait("every envelope acked", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")))
        envs = {e["envelope_id"]: e for e in fake.get("/_test/envelopes")}
        check(len({x["socket"] for x in envs[e1["envelope_id"]]
                   ["deliveries"]}) >= 2,
              "e1 went to both daemons: %r" % envs[e1["envelope_id"]])
        check(envs[e2["envelope_id"]]["deliveries"], "e2 delivered")
        time.sleep(0.5)
        reacts = [c["args"]["timestamp"] for c in fake.calls("reactions.add")]
        check(sorted(reacts) == [t1, t2], "reactions %r" % reacts)
        check(d.db("SELECT thread, count(a.id) FROM conversations c JOIN "
                   "agents a ON a.conversation_id = c.id GROUP BY thread "
                   "ORDER BY thread") == [(t1, 1), (t2, 1)],
              "one agent per thread: %r" % d.db("SELECT * FROM agents"))
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


# ---- Events API -----------------------------------------------------------------

def signed(port, path, body, ctype="application/json", ts=None, secret=SECRET,
           retry=None):
    ts = str(int(time.time()) if ts is None else ts)
    sig = "v0=" + hmac.new(secret.encode(), ("v0:%s:" % ts).encode() + body,
                           hashlib.sha256).hexdigest()
    h = {"Content-Type": ctype, "X-Slack-Request-Timestamp": ts,
         "X-Slack-Signature": sig}
    if retry is not None:
        h["X-Slack-Retry-Num"] = str(retry)
        h["X-Slack-Retry-Reason"] = "http_timeout"
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=body, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.split()[-1])
    return 0.0


def wait_http(port):
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                   timeout=2)
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    raise AssertionError("httpd did not come up")


def callback(ev, event_id):
    return json.dumps({"token": "x", "team_id": "T0TEST",
                       "api_app_id": "A0TEST", "event": ev,
                       "type": "event_callback", "event_id": event_id,
                       "event_time": int(time.time())}).encode()


def test_events_signatures_url_verification_retries_and_form_click(tmp, ds):
    fake = FakeSlack("--no-echo")
    port = free_port()
    try:
        slack_daemon(tmp, ds, fake, mode="events",
                     http="127.0.0.1:%d" % port)
        wait_http(port)
        fake.wait("auth.test", lambda: fake.calls("auth.test"))
        st, body = signed(port, "/slack/events", json.dumps(
            {"type": "url_verification", "token": "x",
             "challenge": "3eZbrw1aB"}).encode())
        check(st == 200 and body == "3eZbrw1aB", "challenge: %s %r"
              % (st, body))

        ev = callback(mention("1710.000001"), "EvHTTP1")
        st, _ = signed(port, "/slack/events", ev, secret="forged")
        check(st == 401, "forged → %s" % st)
        st, _ = signed(port, "/slack/events", ev,
                       ts=int(time.time()) - 600)
        check(st == 401, "stale → %s" % st)
        check(metric(port, "switchboard_slack_bad_signature_total") == 2,
              "counted in /metrics")
        time.sleep(0.5)
        check(not fake.calls("reactions.add"), "forged did nothing")

        deadline = time.time() + 10 * SLOW
        while True:
            st, _ = signed(port, "/slack/events", ev)
            if st != 503 or time.time() > deadline:
                break
            time.sleep(0.2)
        check(st == 200, "signed event → %s" % st)
        st, _ = signed(port, "/slack/events", ev, retry=1)
        check(st == 200, "retry → %s" % st)
        fake.wait_call("reactions.add")
        q = fake.wait_call("chat.postMessage", lambda c: "blocks" in
                           c["args"] and "Which provider" in text_of(c))
        time.sleep(0.5)
        check(len(fake.calls("reactions.add")) == 1, "retry deduped")
        # The two latencies of an inbound event are measured: to its ack,
        # and to the first reply its work made (a command answers at once;
        # a task's first reply waits for its worktree).
        check(metric(port, "switchboard_inbound_ack_seconds_count") >= 1,
              "inbound event → ack histogram moved")
        st, _ = signed(port, "/slack/events", callback(
            mention("1710.000009", text="<@UBOT> help"), "EvHTTP9"))
        check(st == 200, "help → %s" % st)
        fake.wait_call("chat.postMessage", lambda c: "I run coding agents"
                       in text_of(c))
        deadline = time.time() + 10 * SLOW
        while metric(port, "switchboard_event_first_reply_seconds_count") < 1:
            check(time.time() < deadline,
                  "event → first reply histogram never moved")
            time.sleep(0.1)

        form = urllib.parse.urlencode(
            {"payload": json.dumps(click(q, choice_index=0))}).encode()
        st, _ = signed(port, "/slack/interactive", form,
                       ctype="application/x-www-form-urlencoded",
                       secret="forged")
        check(st == 401, "forged click → %s" % st)
        st, _ = signed(port, "/slack/interactive", form,
                       ctype="application/x-www-form-urlencoded")
        check(st == 200, "click → %s" % st)
        upd = fake.wait_call("chat.update", lambda c: c["args"]["ts"] ==
                             q["reply"]["ts"])
        check("answered by slack:U1: GitHub" in text_of(upd),
              "question update %r" % text_of(upd))
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
