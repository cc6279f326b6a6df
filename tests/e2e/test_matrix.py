"""End-to-end tests of the Matrix adapter: the real binary against
tests/fakes/fake-matrix.py (a separate process on loopback)."""

import calendar
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import (SLOW, Daemon, agent, check, launch, log_text,  # noqa: E402
                run_tests, wait_for_log)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE = os.path.join(ROOT, "tests", "fakes", "fake-matrix.py")
BOT = "@bot:localhost"
ALICE = "@alice:localhost"
CAROL = "@carol:localhost"
ASK = [("ask", [agent("ask.sh"), "{task}"], 60)]
KEY1, KEY2 = "1\ufe0f\u20e3", "2\ufe0f\u20e3"


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", FAKE],
                                     stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data,
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def room(self, members=(ALICE,), encrypted=False):
        return self.call("POST", "/_test/room", {"members": list(members),
                                                 "encrypted": encrypted})["room_id"]

    def invite(self, room, sender=ALICE):
        self.call("POST", "/_test/invite", {"room": room, "sender": sender,
                                            "user": BOT})

    def event(self, room, content, sender=ALICE, type="m.room.message"):
        return self.call("POST", "/_test/event", {
            "room": room, "sender": sender, "type": type,
            "content": content})["event_id"]

    def say(self, room, text, thread=None, reply_to=None, mention=False):
        c = {"msgtype": "m.text", "body": text}
        if mention:
            c["m.mentions"] = {"user_ids": [BOT]}
        if thread:
            c["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread,
                                 "is_falling_back": reply_to is None,
                                 "m.in_reply_to": {"event_id":
                                                   reply_to or thread}}
        elif reply_to:
            c["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return self.event(room, c)

    def react(self, room, target, key, sender=ALICE):
        return self.event(room, {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": target, "key": key}},
            sender=sender, type="m.reaction")

    def mode(self, **kw):
        return self.call("POST", "/_test/mode", kw)

    def sent(self):
        return self.call("GET", "/_test/sent")

    def wait(self, pred, what, timeout=15):
        """Polls the bot's events until pred(events) returns a truthy value."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            s = self.sent()
            r = pred(s["events"])
            if r:
                return r
            time.sleep(0.05)
        evs = self.sent()["events"]
        raise AssertionError("timed out waiting for %s; bot events:\n  %s" % (
            what, "\n  ".join(json.dumps(e, ensure_ascii=False)[:300]
                              for e in evs[-12:])))

    def wait_state(self, pred, what, timeout=15):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            s = self.sent()
            if pred(s):
                return s
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s" % what)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def find(evs, type=None, rel=None, target=None, key=None, body=None):
    out = []
    for e in evs:
        c = e.get("content", {})
        r = c.get("m.relates_to", {})
        if type and e["type"] != type:
            continue
        if rel and r.get("rel_type") != rel:
            continue
        if target and r.get("event_id") != target:
            continue
        if key and r.get("key") != key:
            continue
        if body and body not in c.get("body", ""):
            continue
        out.append(e)
    return out


def daemon(tmp, fake, extra_allowed="", token=None, password=True):
    creds = 'password = "env:MX_PW";' if password else ""
    if token:
        creds += ' access_token = "env:MX_TOKEN";'
    adapters = ('matrix = { enabled = true; homeserver = "%s"; user_id = "%s";'
                ' %s autojoin = true; };' % (fake.url, BOT, creds))
    d = Daemon(tmp, ASK, adapters=adapters,
               allowed='"console:me", "matrix:%s"%s' % (ALICE, extra_allowed),
               env={"MX_PW": "hunter2", "MX_TOKEN": token or ""})
    with open(d.conf) as f:
        conf = f.read()
    conf = conf.replace('routes = ( ', 'routes = ( { adapter = "matrix";'
                        ' channel = "*"; repo = "r"; agent = "ask"; }, ')
    with open(d.conf, "w") as f:
        f.write(conf)
    return d


def synced(fake, n=1):
    """Waits until the bot is in its long-poll (a sync with a since token)."""
    fake.wait_state(lambda s: sum(1 for x in s["syncs"]
                                  if x.get("since") and "status" not in x)
                    >= n, "a long-poll sync")


def joined(fake, room):
    fake.wait_state(lambda s: any(j["room"] == room for j in s["joins"]),
                    "join of %s" % room)
    time.sleep(0.2)


def join(fake, *rooms):
    """Invites the bot to each room, then waits until it has joined all."""
    for room in rooms:
        fake.invite(room)
    for room in rooms:
        joined(fake, room)


def start(tmp, ds, fake, *rooms, **kw):
    """Starts a daemon, waits for its first long-poll, then has it join
    rooms."""
    d = launch(ds, daemon(tmp, fake, **kw))
    synced(fake)
    join(fake, *rooms)
    return d


def bot_in_a_room(tmp, ds, fake, members=(ALICE,), **kw):
    """A daemon whose bot has joined a new room and is long-polling again;
    (d, room)."""
    room = fake.room(members=members)
    d = start(tmp, ds, fake, room, **kw)
    synced(fake, 2)
    return d, room


def with_fake(test):
    """Runs test(tmp, ds, fake) with a fake homeserver of its own, stopped
    after the test whatever its outcome."""
    @functools.wraps(test)
    def run(tmp, ds):
        fake = Fake()
        try:
            test(tmp, ds, fake)
        finally:
            fake.stop()
    return run


def in_thread(fake, root, body, what, **kw):
    """Waits for the bot's messages in root's thread that contain body."""
    return fake.wait(lambda e: find(e, "m.room.message", "m.thread", root,
                                    body=body), what, **kw)


def question(fake, root):
    """Waits for the agent's question in root's thread; its event."""
    return in_thread(fake, root, "❓ q", "question")[0]


def eyes_on(fake, target, what, **kw):
    """Waits for the bot's 👀 on the event target."""
    return fake.wait(lambda e: find(e, "m.reaction", target=target,
                                    key="👀"), what, **kw)


@with_fake
def test_invite_mention_thread_question_by_reaction_result(tmp, ds, fake):
    d, room = bot_in_a_room(tmp, ds, fake)
    root = fake.say(room, "bot: login page")
    # 👀 on the message that started it.
    fake.wait(lambda e: find(e, "m.reaction", "m.annotation", root,
                             "👀"), "👀 on the request")
    card = in_thread(fake, root, "#1 ask ·", "status card")[0]
    rel = card["content"]["m.relates_to"]
    check(rel["is_falling_back"] is True and
          rel["m.in_reply_to"]["event_id"], "thread reply shape %r" % rel)
    check(card["content"]["format"] == "org.matrix.custom.html" and
          "formatted_body" in card["content"], "html body")
    q = question(fake, root)
    check("%s GitHub  %s Google" % (KEY1, KEY2) in q["content"]["body"],
          "choices as keys: %r" % q["content"]["body"])
    for k in (KEY1, KEY2):
        fake.wait(lambda e: find(e, "m.reaction", "m.annotation",
                                 q["event_id"], k), "pre-reaction %s" % k)
    fake.react(room, q["event_id"], KEY2)
    fake.wait(lambda e: [x for x in find(e, "m.room.message", "m.replace",
                                         q["event_id"])
                         if "answered by Alice: Google" in
                         x["content"]["m.new_content"]["body"]],
              "question settled by the reaction")
    res = in_thread(fake, root, "✅ #1 done", "result")[0]
    check("chose Google" in res["content"]["body"], "result text")
    edits = find(fake.sent()["events"], "m.room.message", "m.replace",
                 card["event_id"])
    check(edits, "status card edited in place")
    e = edits[-1]["content"]
    check(e["body"].startswith("* ") and "m.relates_to" not in
          e["m.new_content"], "edit shape %r" % e)
    evs = fake.sent()["events"]
    txns = [x["txn_id"] for x in evs if x["type"] != "m.room.member"]
    check(len(txns) == len(set(txns)), "txnIds unique")
    check(all(t.startswith("sb-") for t in txns), "txnIds from rows")
    check(not find(evs, "m.reaction", key="👀", target=q["event_id"]),
          "own question not taken as a request")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_answer_by_thread_reply_and_own_events_ignored(tmp, ds, fake):
    room = fake.room()
    d = start(tmp, ds, fake, room)
    # Our own account mentioning us (another device) is not a request.
    own = fake.event(room, {"msgtype": "m.text", "body": "@bot:localhost x",
                            "m.mentions": {"user_ids": [BOT]}}, sender=BOT)
    root = fake.say(room, "please oauth", mention=True)
    q = question(fake, root)
    fake.say(room, "GitHub", thread=root, reply_to=q["event_id"])
    in_thread(fake, root, "✅ #1 done", "result")
    check("chose GitHub" in find(fake.sent()["events"], body="✅ #1 done")[0]
          ["content"]["body"], "answer reached the agent")
    check(not find(fake.sent()["events"], "m.reaction", target=own),
          "own event ignored")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_kill9_between_send_and_record_resends_same_txn_no_replay(tmp, ds, fake):
    d, room = bot_in_a_room(tmp, ds, fake)
    # The homeserver stores the 👀 but answers late: the daemon dies
    # before it records the send.
    fake.mode(send_delay_ms=4000 * SLOW)
    root = fake.say(room, "bot: status")
    fake.wait_state(lambda s: any(p["type"] == "m.reaction"
                                  for p in s["put_log"]), "the 👀 PUT")
    time.sleep(0.2)
    d.kill9()
    before = fake.sent()
    fake.mode(send_delay_ms=0)
    nsync = before["nsyncs"]
    d2 = launch(ds, daemon(tmp, fake))
    fake.wait_state(lambda s: sum(1 for p in s["put_log"]
                                  if p["type"] == "m.reaction") >= 2,
                    "the 👀 PUT again after restart")
    synced(fake, 3)
    time.sleep(0.5)
    s = fake.sent()
    eyes = find(s["events"], "m.reaction", target=root, key="👀")
    check(len(eyes) == 1, "one 👀, got %d" % len(eyes))
    txn = eyes[0]["txn_id"]
    check(sum(1 for p in s["put_log"] if p["txn"] == txn) >= 2,
          "same txnId re-sent")
    check(s["login_log"][-1] == s["login_log"][0] or
          len(s["login_log"]) == 1, "device reused: %r" % s["login_log"])
    after = s["syncs"][-(s["nsyncs"] - nsync):]
    check(after and all(x.get("since") for x in after),
          "resumed from the stored token: %r" % after[:1])
    # Nothing replayed: still one card/answer-worthy reaction per message.
    check(len([e for e in s["events"] if e["type"] == "m.room.message"])
          == len({e["txn_id"] for e in s["events"]
                  if e["type"] == "m.room.message"}), "no duplicates")
    fake.say(room, "bot: help")
    fake.wait(lambda e: len(find(e, "m.reaction", key="👀")) >= 2,
              "the new message is acted on")
    check(d2.stop() == 0, "clean exit")


@with_fake
def test_429_on_sync_and_send_is_honoured(tmp, ds, fake):
    d, room = bot_in_a_room(tmp, ds, fake)
    fake.mode(sync_429=1, send_429=1, retry_after_ms=1500)
    # Wake the long-poll so the next sync meets the 429.
    root = fake.say(room, "bot: status")
    eyes_on(fake, root, "👀 after the 429", timeout=20)
    # The 👀 and the status reply go in parallel lanes, both before
    # the 429 is known: whichever met it is retried with its txnId,
    # no earlier than the Retry-After.
    def retried(st):
        p = st["put_log"]
        return p and any(x["txn"] == p[0]["txn"] for x in p[1:])
    fake.wait_state(retried, "the limited send retried")
    puts = fake.sent()["put_log"]
    check(puts[0]["status"] == 429, "first PUT was limited")
    retry = next(p for p in puts[1:] if p["txn"] == puts[0]["txn"])
    check(retry["t"] - puts[0]["t"] >= 1.4, "send retry waited %.2fs"
          % (retry["t"] - puts[0]["t"]))
    s = fake.sent()
    syncs = s["syncs"]
    i = next(i for i, x in enumerate(syncs) if x.get("status") == 429)
    check(syncs[i + 1]["t"] - syncs[i]["t"] >= 1.4, "sync retry waited")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_expired_token_relogs_in_with_password_same_device(tmp, ds, fake):
    room = fake.room()
    d = start(tmp, ds, fake, room)
    fake.mode(expire_tokens=True)
    fake.wait_state(lambda s: len(s["login_log"]) >= 2, "re-login")
    s = fake.sent()
    check(s["login_log"][1] is not None, "device asked for")
    root = fake.say(room, "bot: status")
    eyes_on(fake, root, "works after re-login")
    check(d.stop() == 0, "clean exit")
    log = log_text(d)
    check("hunter2" not in log and "tok1" not in log, "no secret logged")


@with_fake
def test_expired_configured_token_without_password_stops(tmp, ds, fake):
    fake.call("POST", "/_test/token", {"token": "cfgtok", "user": BOT})
    d = start(tmp, ds, fake, token="cfgtok", password=False)
    fake.mode(expire_tokens=True)
    check(wait_for_log(d, "no password is configured"), "clear log line")
    check(fake.sent()["logins"] == 0, "no login attempted")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_encrypted_room_one_notice_no_action(tmp, ds, fake):
    room = fake.room(encrypted=True)
    d = start(tmp, ds, fake, room)
    fake.wait(lambda e: find(e, "m.room.message"), "the notice")
    fake.say(room, "bot: do something", mention=True)
    fake.say(room, "bot: again", mention=True)
    time.sleep(1.0 * SLOW)
    evs = fake.sent()["events"]
    msgs = find(evs, "m.room.message")
    check(len(msgs) == 1 and msgs[0]["content"]["msgtype"] == "m.notice"
          and "encrypted" in msgs[0]["content"]["body"],
          "one notice: %r" % msgs)
    check(not find(evs, "m.reaction"), "no action")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_dm_room_needs_no_mention_group_room_does(tmp, ds, fake):
    dm = fake.room()
    group = fake.room(members=(ALICE, CAROL))
    d = start(tmp, ds, fake, dm, group)
    synced(fake, 3)
    quiet = fake.say(group, "just chatting")
    ev = fake.say(dm, "status")
    eyes_on(fake, ev, "👀 in the DM without a mention")
    time.sleep(0.5)
    check(not find(fake.sent()["events"], target=quiet),
          "group chatter without a mention ignored")
    # An edit of a user's message is not a new request.
    fake.event(dm, {"msgtype": "m.text", "body": "* status",
                    "m.new_content": {"msgtype": "m.text",
                                      "body": "status"},
                    "m.relates_to": {"rel_type": "m.replace",
                                     "event_id": ev}})
    time.sleep(0.5)
    check(len(find(fake.sent()["events"], "m.reaction", key="👀")) == 1,
          "edit not taken")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_invite_from_not_allowed_user_is_not_joined(tmp, ds, fake):
    room = fake.room(members=("@mallory:localhost",))
    d = start(tmp, ds, fake)
    fake.invite(room, sender="@mallory:localhost")
    check(wait_for_log(d, "who is not allowed"), "logged")
    check(not fake.sent()["joins"], "not joined")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_history_from_before_the_join_is_not_acted_on(tmp, ds, fake):
    # After a join the homeserver returns the room's recent timeline,
    # written before we were there.  A mention in a group room and a plain
    # request in a DM from before the invite must not become tasks; what is
    # written after the join must.
    group = fake.room(members=(ALICE, CAROL))
    dm = fake.room()
    d = start(tmp, ds, fake)
    old_g = fake.say(group, "bot: delete the database", mention=True)
    old_dm = fake.say(dm, "rewrite everything in rust")
    join(fake, group, dm)
    synced(fake, 3)
    new_g = fake.say(group, "bot: status", mention=True)
    new_dm = fake.say(dm, "status")
    fake.wait(lambda e: find(e, "m.reaction", target=new_g, key="👀") and
              find(e, "m.reaction", target=new_dm, key="👀"),
              "👀 on the messages after the join")
    evs = fake.sent()["events"]
    check(not find(evs, target=old_g) and not find(evs, target=old_dm),
          "history acted on: %r" % [e["content"] for e in evs
                                    if e["type"] != "m.room.member"])
    check(not find(evs, "m.room.message", body="database") and
          not find(evs, "m.room.message", body="rust"),
          "no agent started from history")
    check(d.stop() == 0, "clean exit")


def pill(text_after, name="Code Bot"):
    """An Element mention pill of the bot, then text (spec: User and room
    mentions; the anchor text is the display name and leads the body)."""
    return {"msgtype": "m.text", "body": "%s: %s" % (name, text_after),
            "format": "org.matrix.custom.html",
            "formatted_body": '<a href="https://matrix.to/#/%s">%s</a>: %s'
                              % (BOT, name, text_after),
            "m.mentions": {"user_ids": [BOT]}}


@with_fake
def test_reply_without_thread_answers_the_question_it_replies_to(tmp, ds, fake):
    # Element's "Reply" in the main timeline (and clients without threads)
    # sends m.in_reply_to without m.thread, with the bot in m.mentions: it
    # answers that question and starts no agent of its own.
    d, room = bot_in_a_room(tmp, ds, fake)
    root = fake.say(room, "bot: oauth", mention=True)
    q = question(fake, root)
    fake.event(room, {
        "msgtype": "m.text",
        "body": "> <%s> %s\n\nGitHub" % (BOT, q["content"]["body"]
                                           .split("\n")[0]),
        "m.mentions": {"user_ids": [BOT]},
        "m.relates_to": {"m.in_reply_to": {"event_id": q["event_id"]}}})
    res = in_thread(fake, root, "#1 done", "result")[0]
    check("chose GitHub" in res["content"]["body"], "answer reached #1")
    time.sleep(0.3)
    check(not find(fake.sent()["events"], body="#2"), "no second agent")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_display_name_pill_in_a_thread_is_a_command_not_an_answer(tmp, ds, fake):
    # "Code Bot: status" (an Element pill) with a question open is the
    # status command; it must not be taken as the answer.
    d, room = bot_in_a_room(tmp, ds, fake)
    root = fake.event(room, pill("oauth"))
    q = question(fake, root)
    c = pill("status")
    c["m.relates_to"] = {"rel_type": "m.thread", "event_id": root,
                         "is_falling_back": True,
                         "m.in_reply_to": {"event_id": q["event_id"]}}
    fake.event(room, c)
    in_thread(fake, root, "is waiting", "the status answer")
    check(not find(fake.sent()["events"], "m.room.message", "m.replace",
                   q["event_id"]), "the question is still open")
    fake.say(room, "Google", thread=root)
    res = in_thread(fake, root, "#1 done", "result")[0]
    check("chose Google" in res["content"]["body"], "answered later")
    check(d.stop() == 0, "clean exit")


def log_time(stamp):
    """A daemon log line's UTC timestamp (2026-12-02T11:44:15.911Z) in s."""
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) \
        + int(stamp[20:23]) / 1000.0


def early_puts(put_log, daemon_log, tol=0.002):
    """PUTs sent before the retry time of a 429 their sender had read.

    The homeserver's side proves it for the retry of the refused PUT itself
    (same txnId: it is only resent after its 429 was read).  For the others,
    only the daemon knows when it read a 429: curl may put a PUT the daemon
    had started before that on the very connection the 429 came on, so the
    daemon's log says when each 429 was read and each PUT started, and a
    PUT started after a 429 was read and before its retry time is early."""
    out = []
    for i, lim in enumerate(put_log):
        if lim["status"] != 429 or "retry_ms" not in lim:
            continue
        until = lim["t"] + lim["retry_ms"] / 1000.0 - tol
        out += [p for p in put_log[i + 1:] if p not in out and
                p["t"] < until and p["txn"] == lim["txn"]]
    limited = [(log_time(m.group(1)), int(m.group(2)) / 1000.0) for m in
               re.finditer(r"^(\S+Z) info +matrix: rate limited \([^)]*\),"
                           r" sending nothing for (\d+) ms$", daemon_log,
                           re.M)]
    for m in re.finditer(r"^(\S+Z) debug +matrix: PUT (\S+)$", daemon_log,
                         re.M):
        t = log_time(m.group(1))
        if any(t0 < t < t0 + r - tol for t0, r in limited):
            out.append({"started": m.group(1), "put": m.group(2)})
    return out


@with_fake
def test_rate_limit_is_honoured_for_the_account_nothing_sent_early(tmp, ds, fake):
    # The fake limits sends per sender over all rooms, as Synapse's
    # rc_message does.  Two rooms start agents at once; every message
    # still arrives, in order within its thread, and not one PUT reaches
    # the homeserver before the retry time it was given.
    rooms = [fake.room(members=(ALICE, CAROL))
             for _ in range(2)]
    d = start(tmp, ds, fake, *rooms)
    synced(fake, 3)
    fake.mode(rate_hz=2, rate_burst=2)
    roots = [fake.say(r, "bot: job %d" % i, mention=True)
             for i, r in enumerate(rooms)]
    for root in roots:
        in_thread(fake, root, "❓ q", "question in %s" % root, timeout=40)
        fake.wait(lambda e: len(find(e, "m.reaction", "m.annotation",
                                     [q for q in find(
                                         e, "m.room.message", "m.thread",
                                         root, body="❓ q")][0]
                                     ["event_id"])) == 2,
                  "pre-reactions", timeout=40)
    s = fake.sent()
    log = s["put_log"]
    check(any(p["status"] == 429 for p in log), "the limiter was hit")
    early = early_puts(log, log_text(d))
    check(not early, "%d PUTs early: %r" % (len(early), early[:3]))
    for root in roots:
        th = [e["content"]["body"] for e in s["events"]
              if e["type"] == "m.room.message" and
              e["content"].get("m.relates_to", {}).get("event_id")
              == root and e["content"]["m.relates_to"].get("rel_type")
              == "m.thread"]
        check(len(th) >= 3 and th[0].startswith("Started #") and
              th[1].startswith("#") and "❓ q" in th[-1],
              "thread order: %r" % th)
    check(d.stop() == 0, "clean exit")


@with_fake
def test_messages_behave_like_a_bots(tmp, ds, fake):
    # Our messages are m.notice (other bots do not answer them); a question
    # is m.text and mentions the person who started the work (pill and
    # m.mentions), lists its choices once; people are shown by display name;
    # an answer in a thread quotes what it answers.
    d, room = bot_in_a_room(tmp, ds, fake, members=(ALICE, CAROL))
    root = fake.say(room, "bot: oauth", mention=True)
    q = question(fake, root)
    c = q["content"]
    check(c["msgtype"] == "m.text", "a question notifies: %r" % c)
    check(c.get("m.mentions", {}).get("user_ids") == [ALICE],
          "the asker in m.mentions: %r" % c.get("m.mentions"))
    check('<a href="https://matrix.to/#/%s">Alice</a>' % ALICE in
          c["formatted_body"] and c["body"].startswith("Alice: "),
          "the asker as a pill: %r" % c["body"])
    check(c["body"].count("GitHub") == 1 and "choices:" not in c["body"],
          "choices listed once: %r" % c["body"])
    card = find(fake.sent()["events"], "m.room.message", "m.thread", root,
                body="#1 ask ·")[0]["content"]
    started = in_thread(fake, root, "Started #1", "Started")[0]["content"]
    check(card["msgtype"] == "m.notice" and
          started["msgtype"] == "m.notice" and
          card.get("m.mentions") == {}, "notices: %r" % card)
    ask = fake.say(room, "status", thread=root)
    st = in_thread(fake, root, "is waiting", "status")[0]
    rel = st["content"]["m.relates_to"]
    check(rel["m.in_reply_to"]["event_id"] == ask and
          rel["is_falling_back"] is False,
          "the answer quotes the question it answers: %r" % rel)
    fake.react(room, q["event_id"], KEY1)
    ed = fake.wait(lambda e: [x for x in find(e, "m.room.message",
                                               "m.replace", q["event_id"])
                              if "answered by" in
                              x["content"]["m.new_content"]["body"]],
                   "settled")[-1]["content"]
    check("answered by Alice: GitHub" in ed["m.new_content"]["body"] and
          "matrix:@" not in ed["m.new_content"]["body"] and
          ed.get("m.mentions") == {},
          "display name, nobody pinged: %r" % ed)
    check(d.stop() == 0, "clean exit")


@with_fake
def test_help_and_status_at_top_level_are_commands(tmp, ds, fake):
    # "@bot help" and "@bot status" opening a thread are answered as
    # commands; they used to start an agent whose task was "help".
    d, room = bot_in_a_room(tmp, ds, fake, members=(ALICE, CAROL))
    h = fake.event(room, pill("help"))
    in_thread(fake, h, "Commands:", "the help text")
    st = fake.say(room, "bot: status", mention=True)
    in_thread(fake, st, "No agents are running here",
              "status with nothing running")
    root = fake.say(room, "bot: oauth", mention=True)
    question(fake, root)
    st2 = fake.say(room, "bot: status", mention=True)
    in_thread(fake, st2, "#1 ask", "status lists #1")
    evs = fake.sent()["events"]
    check(not find(evs, "m.room.message", body="#2"),
          "no agent started by a command")
    check(find(evs, "m.room.message", body="sb/1-oauth"),
          "#1 is the oauth task")
    check(d.stop() == 0, "clean exit")


@with_fake
def test_state_dir_reset_with_same_token_does_not_replay_txn_ids(tmp, ds, fake):
    # The fake answers a txnId it has seen from the same device with the old
    # event (spec: a txnId is scoped to the device and endpoint).  A
    # configured token keeps the device across a state-dir reset, and the
    # outbox's row ids restart at 1: without a per-state-dir prefix the new
    # run's 👀 would come back as the old run's event and never show.
    fake.call("POST", "/_test/token", {"token": "cfgtok", "user": BOT})
    d, room = bot_in_a_room(tmp, ds, fake, token="cfgtok", password=False)
    first = fake.say(room, "bot: status")
    eyes_on(fake, first, "👀 in the first run")
    check(d.stop() == 0, "clean exit")
    shutil.rmtree(d.state)
    n = fake.sent()["nsyncs"]
    d2 = launch(ds, daemon(tmp, fake, token="cfgtok", password=False))
    fake.wait_state(lambda s: s["nsyncs"] - n >= 2 and
                    s["syncs"][-1].get("since"), "the new run's long-poll")
    second = fake.say(room, "bot: status")
    eyes_on(fake, second, "👀 in the run after the reset")
    s = fake.sent()
    txns = [e["txn_id"] for e in s["events"] if e["type"] == "m.reaction"]
    check(len(txns) == len(set(txns)), "txnIds differ: %r" % txns)
    check(d2.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
