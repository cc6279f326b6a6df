#!/usr/bin/python3
"""bench/chat — latency and throughput of the chat path against the fake
Slack (Socket Mode) and the fake Matrix homeserver, measured on the fake's
side.

The fakes (tests/fakes/fake-slack.py, fake-matrix.py) run in this process,
subclassed only to timestamp (time.perf_counter) the moments that matter:
  Slack:  envelope written to the socket → its ack read back;
          → reactions.add (👀) received → first chat.postMessage in the thread.
  Matrix: event appended to the room (wakes the daemon's long-poll) → the
          daemon's next /sync asking past it (its "ack": the batch is
          recorded and the token moved) → the 👀 PUT → the first threaded
          reply PUT.
The daemon is the real binary, log level info, state in a temp dir on the
normal filesystem (SQLite WAL, synchronous=FULL: an event is acked only when
its record is on disk).  Setup: N threads (one channel/room each) are
opened by a mention; once settled, each gets M `status` messages, GAP
seconds apart so every message meets an idle outbox lane, the threads
staggered over GAP.  The agent is never started.  Matrix then gets pairs
of messages back to back in each thread, and a burst:
BURST `status` messages over the N threads at once, each answered in its
thread; reply latency per message and replies per second overall.

Slack throughput: `status` messages round-robin over the N threads at
rising offered rates, STEP seconds each; a step is sustained when every
event is acked within 1 s of the step's end, ack p99 stays <= 250 ms (no
growing backlog), and the daemon's
switchboard_chat_events_total grew by exactly the number sent (zero loss).
The replies those events queue are paced by the outbox (1 s per channel)
and are not waited for.  Numbers only: nothing fails on speed."""

import argparse
import asyncio
import importlib.machinery
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

from aiohttp import ClientSession, web  # noqa: E402

now = time.perf_counter
FAKES = os.path.join(bl.ROOT, "tests", "fakes")
AGENTS = [("true", ["/bin/true"], 60)]


def load(name):
    return importlib.machinery.SourceFileLoader(
        name.replace("-", "_").replace(".py", ""),
        os.path.join(FAKES, name)).load_module()


def ms(x):
    return x * 1000.0


def summary(v):
    if not v:
        return "no samples"
    return "p50 %.2f / p99 %.2f / max %.2f ms (n=%d)" % (
        ms(bl.pct(v, 50)), ms(bl.pct(v, 99)), ms(max(v)), len(v))


async def serve(app):
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def wait_for(pred, timeout, what):
    deadline = now() + timeout
    while now() < deadline:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def add_route(d, adapter):
    with open(d.conf) as f:
        conf = f.read()
    conf = conf.replace('routes = ( ', 'routes = ( { adapter = "%s";'
                        ' channel = "*"; repo = "r"; agent = "true"; }, '
                        % adapter)
    with open(d.conf, "w") as f:
        f.write(conf)
    bl.quiet_log(d)


# ---- Slack ---------------------------------------------------------------

fs = load("fake-slack.py")


class TimedRec(dict):
    """An envelope record that notes when the fake first saw its ack."""

    def __setitem__(self, k, v):
        # The fake stamps acked_at with time.time(); this benchmark's
        # clock is perf_counter, so its own stamp wins.
        if k == "acked_at":
            return
        if k == "acked" and v and "acked_at" not in self:
            dict.__setitem__(self, "acked_at", now())
        dict.__setitem__(self, k, v)


class BenchSlack(fs.Fake):
    def __init__(self, args):
        super().__init__(args)
        self.posts = []         # (t, channel, thread_ts)
        self.reacts = {}        # (channel, ts) -> t

    async def push(self, etype, payload):
        eid = str(uuid.uuid4())
        rec = TimedRec(envelope_id=eid, type=etype, payload=payload,
                       attempt=0, acked=False, acks=0, deliveries=[])
        self.envelopes[eid] = rec
        rec["sent_at"] = now()
        await self.send_envelope(rec)
        return rec              # no redelivery: a benchmark counts once

    async def m_chat_postMessage(self, a):
        self.posts.append((now(), a.get("channel"), a.get("thread_ts")))
        return await super().m_chat_postMessage(a)

    async def m_reactions_add(self, a):
        self.reacts.setdefault((a.get("channel"), a.get("timestamp")), now())
        return await super().m_reactions_add(a)


def slack_msg(ch, ts, text, thread=None, mention=False):
    ev = {"type": "app_mention" if mention else "message", "channel": ch,
          "user": "U1", "text": text, "ts": ts, "event_ts": ts,
          "team": fs.TEAM}
    if not mention:
        ev["channel_type"] = "channel"
    if thread:
        ev["thread_ts"] = thread
    return ev


async def slack_bench(a, tmp, out):
    fake = BenchSlack(argparse.Namespace(
        bot_token="xoxb-bench", app_token="xapp-bench",
        redeliver_ms=600000, close_after_ms=10000, echo=False,
        limits="lifted"))
    app = web.Application()
    app.router.add_post("/api/{method}", fake.api)
    app.router.add_get("/socket", fake.socket)
    runner, fake.port = await serve(app)
    hp = bl.sb.free_port()
    conf = ('slack = { enabled = true; mode = "socket"; '
            'bot_token = "env:SB_SLACK_BOT"; app_token = "env:SB_SLACK_APP";'
            ' signing_secret = "env:SB_SLACK_SECRET";'
            ' api_url = "http://127.0.0.1:%d/api/"; };' % fake.port)
    d = bl.sb.Daemon(tmp, AGENTS, adapters=conf, http="127.0.0.1:%d" % hp,
                     allowed='"console:me", "slack:U1"',
                     env={"SB_SLACK_BOT": "xoxb-bench",
                          "SB_SLACK_APP": "xapp-bench",
                          "SB_SLACK_SECRET": "x" * 32})
    add_route(d, "slack")
    d.start()
    seq = [0]

    def ts():
        seq[0] += 1
        return "1800000000.%06d" % seq[0]

    try:
        await wait_for(lambda: fake.live_sockets(), 15, "a Slack socket")
        await asyncio.sleep(0.5)
        roots = {}
        for i in range(a.threads):
            ch = "C%04d" % i
            roots[ch] = ts()
            await fake.push("events_api", fake.event_callback(
                slack_msg(ch, roots[ch], "<@%s>" % fs.BOT_USER,
                          mention=True)))
        await wait_for(lambda: len({p[1] for p in fake.posts
                                    if p[2] == roots.get(p[1])})
                       == a.threads, 30, "the threads' first replies")
        await asyncio.sleep(a.gap)

        samples = []

        async def thread(i):
            ch = "C%04d" % i
            await asyncio.sleep(i * a.gap / a.threads)
            for _ in range(a.messages):
                t = ts()
                rec = await fake.push("events_api", fake.event_callback(
                    slack_msg(ch, t, "status", thread=roots[ch])))
                samples.append((ch, t, rec))
                await asyncio.sleep(a.gap)

        await asyncio.gather(*(thread(i) for i in range(a.threads)))

        def first_post(ch, after):
            return next((p[0] for p in fake.posts if p[1] == ch and
                         p[2] == roots[ch] and p[0] > after), None)
        await wait_for(lambda: all(first_post(ch, r["sent_at"]) and
                                   r.get("acked_at")
                                   for ch, t, r in samples), 10,
                       "every reply")
        ack = [r["acked_at"] - r["sent_at"] for _, _, r in samples]
        react = [fake.reacts[(ch, t)] - r["sent_at"]
                 for ch, t, r in samples if (ch, t) in fake.reacts]
        reply = [first_post(ch, r["sent_at"]) - r["sent_at"]
                 for ch, t, r in samples]
        print("slack %d threads x %d messages:" % (a.threads, a.messages))
        print("  event -> ack          " + summary(ack))
        print("  event -> 👀 reaction  " + summary(react))
        print("  event -> first reply  " + summary(reply))
        out["slack ack"] = ack
        out["slack react"] = react
        out["slack reply"] = reply

        # Throughput.
        async with ClientSession() as http:
            async def handled():
                async with http.get("http://127.0.0.1:%d/metrics" % hp) as r:
                    return bl.metric(await r.text(),
                                     "switchboard_chat_events_total")
            best = None
            chans = sorted(roots)
            for rate in a.rates:
                before = await handled()
                n = int(rate * a.step)
                recs = []
                t0 = now()
                for k in range(n):
                    due = t0 + k / rate
                    if due > now():
                        await asyncio.sleep(due - now())
                    ch = chans[k % len(chans)]
                    recs.append(await fake.push("events_api",
                                                fake.event_callback(slack_msg(
                                                    ch, ts(), "status",
                                                    thread=roots[ch]))))
                t1 = now()
                try:
                    await wait_for(lambda: all(r["acked"] for r in recs),
                                   1.0, "acks")
                    in_time = True
                except RuntimeError:
                    in_time = False
                await wait_for(lambda: all(r["acked"] for r in recs), 30,
                               "late acks")
                await asyncio.sleep(0.2)
                got = await handled() - before
                offered = n / (t1 - t0)
                lat = [r["acked_at"] - r["sent_at"] for r in recs]
                ok = in_time and got == n and bl.pct(lat, 99) <= 0.25
                print("  offered %6.0f/s (asked %d): %d sent, %d handled, "
                      "ack %s%s" % (offered, rate, n, got, summary(lat),
                                    "" if ok else "  <- not sustained"))
                if ok:
                    best = (offered, lat)
                elif not in_time:
                    break       # a backlog: higher rates only grow it
            out["slack rate"] = best
    finally:
        d.kill9()
        await runner.cleanup()


# ---- Matrix --------------------------------------------------------------

fm = load("fake-matrix.py")
BOT, ALICE = "@bot:localhost", "@alice:localhost"


class BenchMatrix(fm.Server):
    def __init__(self):
        super().__init__()
        self.sent_at = {}       # event_id -> (t, pos)
        self.sync_at = []       # (t, since pos)
        self.puts_at = []       # (t, room, type, content)

    async def append(self, room, ev):
        eid = await super().append(room, ev)
        if ev.get("sender") == ALICE and ev.get("type") == "m.room.message":
            self.sent_at[eid] = (now(), len(self.stream))
        return eid

    async def sync(self, req):
        since = req.query.get("since")
        if since and since[1:].isdigit():
            self.sync_at.append((now(), int(since[1:])))
        return await super().sync(req)

    async def send(self, req):
        t = now()
        raw = await req.read()
        try:
            content = json.loads(raw)
        except ValueError:
            content = {}
        self.puts_at.append((t, req.match_info["room"],
                             req.match_info["type"], content))
        return await super().send(req)


async def matrix_bench(a, tmp, out):
    s = BenchMatrix()
    app = web.Application(client_max_size=1 << 20)
    c = "/_matrix/client"
    app.router.add_post(c + "/v3/login", s.login)
    app.router.add_get(c + "/v3/account/whoami", s.whoami)
    app.router.add_get(c + "/v3/sync", s.sync)
    app.router.add_post(c + "/v3/join/{room}", s.join)
    app.router.add_put(c + "/v3/rooms/{room}/send/{type}/{txn}", s.send)
    app.router.add_route("*", "/{tail:.*}", s.unknown)
    runner, port = await serve(app)
    rooms = []
    for i in range(a.threads):
        room = "!bench%d:localhost" % i
        s.rooms[room] = {"members": {ALICE: "join", BOT: "join"},
                         "encrypted": False}
        rooms.append(room)
    conf = ('matrix = { enabled = true; homeserver = "http://127.0.0.1:%d";'
            ' user_id = "%s"; password = "env:MX_PW"; autojoin = true; };'
            % (port, BOT))
    d = bl.sb.Daemon(tmp, AGENTS, adapters=conf,
                     allowed='"console:me", "matrix:%s"' % ALICE,
                     env={"MX_PW": "hunter2"})
    add_route(d, "matrix")
    d.start()
    try:
        await wait_for(lambda: len(s.sync_at) > 0, 15,
                       "a long-poll /sync")

        def say(room, text, thread=None, mention=False):
            content = {"msgtype": "m.text", "body": text}
            if mention:
                content["m.mentions"] = {"user_ids": [BOT]}
            if thread:
                content["m.relates_to"] = {
                    "rel_type": "m.thread", "event_id": thread,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": thread}}
            return s.append(room, {"type": "m.room.message", "sender": ALICE,
                                   "content": content})

        def replies(room, root):
            return [p for p in s.puts_at if p[1] == room and
                    p[2] == "m.room.message" and
                    (p[3].get("m.relates_to") or {}).get("event_id") == root]

        roots = {}
        for room in rooms:
            roots[room] = await say(room, "bot: hello", mention=True)
        await wait_for(lambda: all(replies(r, roots[r]) for r in rooms), 30,
                       "the threads' first replies")
        await asyncio.sleep(max(a.gap, 3.0))   # the agent's own posts
        samples = []

        async def thread(i):
            room = rooms[i]
            await asyncio.sleep(i * a.gap / a.threads)
            for _ in range(a.messages):
                eid = await say(room, "status", thread=roots[room])
                samples.append((room, eid))
                await asyncio.sleep(a.gap)

        await asyncio.gather(*(thread(i) for i in range(a.threads)))

        def first(pred, after):
            return next((p[0] for p in s.puts_at if p[0] > after and
                         pred(p)), None)

        def reply_t(room, eid):
            t = s.sent_at[eid][0]
            return first(lambda p: p[1] == room and
                         p[2] == "m.room.message" and
                         (p[3].get("m.relates_to") or {}).get("event_id")
                         == roots[room], t)

        def react_t(room, eid):
            return first(lambda p: p[2] == "m.reaction" and
                         (p[3].get("m.relates_to") or {}).get("event_id")
                         == eid, s.sent_at[eid][0])

        def ack_t(eid):
            t, pos = s.sent_at[eid]
            return next((x for x, p in s.sync_at if x > t and p >= pos),
                        None)
        await wait_for(lambda: all(reply_t(r, e) and ack_t(e)
                                   for r, e in samples), 10, "every reply")
        ack = [ack_t(e) - s.sent_at[e][0] for _, e in samples]
        react = [react_t(r, e) - s.sent_at[e][0] for r, e in samples
                 if react_t(r, e)]
        reply = [reply_t(r, e) - s.sent_at[e][0] for r, e in samples]
        print("matrix %d threads x %d messages:" % (a.threads, a.messages))
        print("  event -> next /sync   " + summary(ack))
        print("  event -> 👀 reaction  " + summary(react))
        print("  event -> first reply  " + summary(reply))
        out["matrix ack"] = ack
        out["matrix react"] = react
        out["matrix reply"] = reply

        # Back-to-back: two `status` messages in a thread, one right after
        # the other; the second reply waits only for the first (same
        # thread, order kept), not for a pacing timer.
        b2b = []
        for room in rooms:
            t1 = now()
            e1 = await say(room, "status", thread=roots[room])
            e2 = await say(room, "status", thread=roots[room])
            await wait_for(lambda: len([p for p in replies(room, roots[room])
                                        if p[0] > t1]) >= 2, 10,
                           "back-to-back replies")
            got = [p[0] for p in replies(room, roots[room]) if p[0] > t1]
            b2b += [got[0] - s.sent_at[e1][0], got[1] - s.sent_at[e2][0]]
            await asyncio.sleep(0.2)
        print("  back-to-back pairs     " + summary(b2b))
        out["matrix b2b"] = b2b

        # Burst: B `status` messages over the N threads at once.  A
        # thread's replies keep the order of its messages, so the k-th
        # reply in a thread after the burst answers its k-th message.
        await asyncio.sleep(1.0)
        per = max(1, a.burst // a.threads)
        t0 = now()
        sent = {room: [] for room in rooms}
        for k in range(per):
            for room in rooms:
                eid = await say(room, "status", thread=roots[room])
                sent[room].append(s.sent_at[eid][0])
        total = per * len(rooms)

        def burst_replies(room):
            return [p[0] for p in replies(room, roots[room]) if p[0] > t0]
        await wait_for(lambda: sum(min(len(burst_replies(r)), per)
                                   for r in rooms) >= total, 120,
                       "every burst reply")
        lat, last = [], 0.0
        for room in rooms:
            got = burst_replies(room)[:per]
            lat += [t - e for t, e in zip(got, sent[room])]
            last = max(last, got[-1])
        rate = total / (last - t0)
        print("  burst of %d over %d threads: %s, %.1f replies/s"
              % (total, len(rooms), summary(lat), rate))
        out["matrix burst"] = (lat, rate, total)
    finally:
        d.kill9()
        await runner.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=20)
    ap.add_argument("--messages", type=int, default=5)
    ap.add_argument("--gap", type=float, default=2.2)
    ap.add_argument("--burst", type=int, default=200,
                    help="Matrix: messages released at once over the threads")
    ap.add_argument("--step", type=float, default=3.0)
    ap.add_argument("--rates", default="100,200,400,800,1600,3200")
    ap.add_argument("--only", choices=("slack", "matrix"))
    a = ap.parse_args()
    a.rates = [int(x) for x in a.rates.split(",")]
    out = {}
    for name, fn in (("slack", slack_bench), ("matrix", matrix_bench)):
        if a.only and a.only != name:
            continue
        tmp = tempfile.mkdtemp(prefix="sb-bench-chat-")
        try:
            asyncio.run(fn(a, tmp, out))
        except Exception as e:  # noqa: BLE001 — report, keep the others
            print("%s: %s" % (name, e))
            try:
                print(open(os.path.join(tmp, "stderr.log")).read()[-2000:])
            except OSError:
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    how = "%d threads x %d msgs, fake's clock" % (a.threads, a.messages)
    for plat, ackname in (("slack", "ack"), ("matrix", "next /sync")):
        if plat + " ack" not in out:
            continue
        ack, react, reply = (out[plat + k] for k in (" ack", " react",
                                                     " reply"))
        bl.row("%s event -> %s p50/p99/max" % (plat, ackname),
               "%.2f / %.2f / %.2f ms" % (ms(bl.pct(ack, 50)),
                                          ms(bl.pct(ack, 99)), ms(max(ack))),
               how, "p99 < 1 ms" if plat == "slack" else "-",
               bl.verdict(ms(bl.pct(ack, 99)), 1.0) if plat == "slack"
               else "")
        bl.row("%s event -> 👀 p50/p99/max" % plat,
               "%.2f / %.2f / %.2f ms" % (ms(bl.pct(react, 50)),
                                          ms(bl.pct(react, 99)),
                                          ms(max(react))),
               how + "; first outbound call, idle lane", "", "")
        bl.row("%s event -> first reply p50/p99/max" % plat,
               "%.2f / %.2f / %.2f ms" % (ms(bl.pct(reply, 50)),
                                          ms(bl.pct(reply, 99)),
                                          ms(max(reply))),
               how + ("; reply follows the 👀 in the channel's lane (one op"
                      " in flight)" if plat == "slack" else "; the reply"
                      " and the 👀 are in flight together"),
               "p99 < 5 ms", bl.verdict(ms(bl.pct(reply, 99)), 5.0))
    if "matrix b2b" in out:
        v = out["matrix b2b"]
        bl.row("matrix back-to-back reply p50/p99/max",
               "%.2f / %.2f / %.2f ms" % (ms(bl.pct(v, 50)), ms(bl.pct(v, 99)),
                                          ms(max(v))),
               "two status messages at once in each of %d threads, fake's"
               " clock" % a.threads, "", "")
    if "matrix burst" in out:
        lat, rate, total = out["matrix burst"]
        bl.row("matrix burst reply p50/p99, replies/s",
               "%.1f / %.1f ms, %.1f/s" % (ms(bl.pct(lat, 50)),
                                           ms(bl.pct(lat, 99)), rate),
               "%d status messages over %d threads at once, fake's clock;"
               " pacing from the homeserver (no limit on the fake)"
               % (total, a.threads), "", "")
    if "slack rate" in out:
        best = out["slack rate"]
        if best is None:
            bl.row("slack sustained events/s", "below lowest step",
                   "offered-rate steps of %.0f s" % a.step, "", "")
        else:
            bl.row("slack sustained events/s, zero loss",
                   "%.0f/s (ack p99 %.2f ms)" % (best[0],
                                                  ms(bl.pct(best[1], 99))),
                   "highest step of %s/s for %.0f s: ack p99 <= 250 ms,"
                   " chat_events_total = sent" % (
                       ",".join(map(str, a.rates)), a.step), "", "")


if __name__ == "__main__":
    main()
