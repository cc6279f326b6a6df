#!/usr/bin/python3
"""Fake Slack for end-to-end tests: the Web API and Socket Mode on one
127.0.0.1 port (printed as the first stdout line), behaving as
/work/shared/PROTOCOLS.md describes, plus a control API for the test.

Web API (POST /api/<method>, JSON body, Authorization: Bearer):
  auth.test, apps.connections.open (xapp- token; returns a single-use
  ws://127.0.0.1:PORT/socket?ticket=… URL), chat.postMessage, chat.update,
  reactions.add (already_reacted on a repeat), conversations.replies
  (thread_not_found for a ts that is no message of the channel; people's
  messages sent as events count as messages from then on),
  conversations.history (metadata only with include_all_metadata; `limit`
  and `cursor` pagination with has_more / response_metadata.next_cursor;
  replies oldest first, history newest first, as Slack orders them).
  Every call is recorded.  Bad or missing tokens: invalid_auth / not_authed.
  Non-JSON content type: invalid_arguments (real Slack would accept a form;
  our client must send JSON), except files.getUploadURLExternal, whose docs
  list only application/x-www-form-urlencoded, and which therefore must
  come as a form.
  Files: files.getUploadURLExternal (filename, length) → upload_url +
  file_id; POST the bytes to upload_url (200 "OK - n"; a byte count other
  than length is refused, as Slack refuses it at completion);
  files.completeUploadExternal (files=[{id,title}], channel_id, thread_ts)
  shares it.  GET /_test/files lists completed files with their bytes
  (base64).

Socket Mode: hello on connect; envelopes not acked within --redeliver-ms are
sent again (retry_attempt+1, retry_reason "timeout"), up to 3 times, on the
newest socket; a new connection also gets every unacked envelope whose last
delivery went nowhere or to a socket that is gone (like Slack after a client
restart).  Bot posts are echoed back as message events (like Slack).

Control (test only, no auth):
  POST /_test/event        {"event": {...}} or {"interactive": {...}}
                           → {"envelope_id", "event_id"}
  POST /_test/burst        {"events": [...]}: each as /_test/event, all
                           written to the socket back to back
                           → {"envelopes": [ids]}
  POST /_test/redeliver    {"envelope_id"}: send it again, retry_attempt 0
  POST /_test/disconnect   {"reason"}: disconnect frame on the newest socket;
                           refresh_requested/warning close it after
                           --close-after-ms if the client has not
  POST /_test/drop         abort the newest socket's TCP connection
  POST /_test/deaf         newest socket stops answering pings and sending
  POST /_test/ratelimit    {"method", "count", "retry_after"}
  POST /_test/limits       {"mode": "real"|"lifted"}: Slack's documented
                           rate limits (REAL_LIMITS, token buckets), or none
                           (the default; --limits sets it at start)
  GET  /_test/ratelimits   {"mode", "limits", "limited": 429s sent,
                           "early": calls that arrived in a scope while a
                           Retry-After given for it was in force}
  POST /_test/bigframe     {"size", "fragments"}: a hostile peer (not
                           Slack): one text message of size bytes, split
                           into that many WebSocket fragments, on the
                           newest socket
  POST /_test/seed         {"channel", "thread_ts", "count"}: that many
                           messages from other people in the thread (not
                           delivered as events: a long thread's history)
  POST /_test/hold_acks    {"on": bool}: while on, acks are counted
                           ("held") but envelopes stay unacked, as if the
                           ack never reached Slack
  POST /_test/fail         {"method", "error", "count"}: ok:false replies
  POST /_test/lose         {"method", "count"[, "match"]}: perform the call
                           (one whose text contains match), then answer 503
                           (the client cannot know it worked)
  GET  /_test/calls        recorded Web API calls
  GET  /_test/sockets      socket records (opened/hello/closed/closed_by)
  GET  /_test/envelopes    envelopes and whether they were acked
  GET  /_test/files        completed uploads
"""
import argparse
import asyncio
import base64
import json
import urllib.parse
import sys
import time
import uuid

from aiohttp import WSMsgType, web

# Slack's documented limits (docs "Rate limits" and each method's tier),
# per app per workspace, as token buckets: (scope, per minute, burst).
# chat.postMessage: ~1/s per channel with short bursts, several hundred a
# minute per workspace; chat.update and reactions.add Tier 3 (50+);
# conversations.* Tier 3; the upload methods Tier 4 (100+).  The docs
# give no burst sizes: these are the emulator's choice, and the daemon's
# budgets (adapters/slack.c) start from the same numbers.
REAL_LIMITS = {
    "chat.postMessage": [("channel", 60, 4), ("workspace", 300, 30)],
    "chat.update": [("workspace", 50, 10)],
    "reactions.add": [("workspace", 50, 10)],
    "conversations.replies": [("workspace", 50, 10)],
    "conversations.history": [("workspace", 50, 10)],
    "files.getUploadURLExternal": [("workspace", 100, 10)],
    "files.completeUploadExternal": [("workspace", 100, 10)],
}

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0TEST"
APP = "A0TEST"


class Fake:
    def __init__(self, args):
        self.args = args
        self.calls = []
        self.sockets = []       # dicts, with "ws" while open
        self.tickets = set()
        self.envelopes = {}     # envelope_id -> record
        self.messages = {}      # (channel, ts) -> message dict
        self.reactions = set()
        self.ratelimits = {}    # method -> [count, retry_after]
        self.failures = {}      # method -> [count, error]
        self.lost = {}          # method -> [count]: done, then 503
        self.ts_counter = 0
        self.port = 0
        self.event_seq = 0
        self.hold_acks = False
        self.uploads = {}       # file_id -> {filename, length, data}
        self.files = []         # completed uploads
        self.limits_mode = args.limits
        self.buckets = {}       # (method, channel or None) -> [tokens, t]
        self.retry_until = {}   # same key -> time a Retry-After ends
        self.n_limited = 0
        self.early = []         # calls made while their Retry-After held

    # ---- helpers -------------------------------------------------------
    def next_ts(self):
        self.ts_counter += 1
        return "1700000000.%06d" % self.ts_counter

    def live_sockets(self):
        return [s for s in self.sockets if s.get("ws") is not None and
                not s["ws"].closed and s.get("hello_at")]

    async def send_envelope(self, rec):
        socks = self.live_sockets()
        if not socks:
            return False
        env = {"envelope_id": rec["envelope_id"], "type": rec["type"],
               "payload": rec["payload"], "accepts_response_payload": False,
               "retry_attempt": rec["attempt"],
               "retry_reason": "timeout" if rec["attempt"] else ""}
        sock = socks[-1]
        if sock.get("deaf"):
            return False
        try:
            await sock["ws"].send_str(json.dumps(env))
        except Exception:  # noqa: BLE001
            return False
        rec["deliveries"].append({"socket": sock["id"], "at": time.time(),
                                  "attempt": rec["attempt"]})
        return True

    async def redeliver_stranded(self):
        """Unacked envelopes whose last delivery reached no live socket go
        to the new connection, whatever their attempt count."""
        live = {s["id"] for s in self.live_sockets()}
        for rec in list(self.envelopes.values()):
            if rec["acked"]:
                continue
            last = rec["deliveries"][-1]["socket"] if rec["deliveries"] \
                else None
            if last is None or last not in live:
                await self.send_envelope(rec)

    async def redeliver_loop(self, rec):
        """Like Slack: resend an unacked envelope after a delay, 3 times."""
        while rec["attempt"] < 3:
            await asyncio.sleep(self.args.redeliver_ms / 1000.0)
            if rec["acked"]:
                return
            rec["attempt"] += 1
            await self.send_envelope(rec)

    async def push(self, etype, payload):
        eid = str(uuid.uuid4())
        rec = {"envelope_id": eid, "type": etype, "payload": payload,
               "attempt": 0, "acked": False, "acks": 0, "held": 0,
               "deliveries": []}
        self.envelopes[eid] = rec
        await self.send_envelope(rec)
        asyncio.get_event_loop().create_task(self.redeliver_loop(rec))
        return rec

    def event_callback(self, event):
        self.event_seq += 1
        # A person's message is in the channel from now on, as in Slack:
        # conversations.replies/history list it, and a thread can be
        # rooted at it.
        if event.get("type") in ("message", "app_mention") and \
                event.get("channel") and event.get("ts") and \
                (event["channel"], event["ts"]) not in self.messages:
            m = {k: v for k, v in event.items()
                 if k not in ("channel", "channel_type")}
            m["type"] = "message"
            self.messages[(event["channel"], event["ts"])] = m
        return {"token": "verification-token", "team_id": TEAM,
                "api_app_id": APP, "event": event, "type": "event_callback",
                "event_id": "Ev%08d" % self.event_seq,
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER,
                                    "is_bot": True}]}

    # ---- rate limits ---------------------------------------------------
    def rate_limit(self, method, args, now):
        """None if the call is within the limits, else the Retry-After
        (whole seconds, as Slack sends it).  Counts calls that arrive
        while a Retry-After given for their scope is in force."""
        if self.limits_mode != "real" or method not in REAL_LIMITS:
            return None
        chan = (args or {}).get("channel") or (args or {}).get("channel_id")
        keys = []
        for scope, per_min, burst in REAL_LIMITS[method]:
            key = (method, chan if scope == "channel" else None)
            keys.append((key, per_min / 60.0, burst))
            if now < self.retry_until.get(key, 0):
                self.early.append({"method": method, "channel": chan,
                                   "at": now, "until":
                                   self.retry_until[key]})
        for key, rate, burst in keys:
            b = self.buckets.setdefault(key, [float(burst), now])
            b[0] = min(float(burst), b[0] + (now - b[1]) * rate)
            b[1] = now
        for key, rate, burst in keys:
            tokens = self.buckets[key][0]
            if tokens < 1:
                ra = max(1, int(-(-(1 - tokens) // rate)))
                self.retry_until[key] = now + ra
                self.n_limited += 1
                return ra
        for key, _, _ in keys:
            self.buckets[key][0] -= 1
        return None

    # ---- Web API -------------------------------------------------------
    async def api(self, request):
        method = request.match_info["method"]
        auth = request.headers.get("Authorization", "")
        ctype = request.headers.get("Content-Type", "")
        raw = await request.read()
        form = ctype.startswith("application/x-www-form-urlencoded")
        try:
            args = dict(urllib.parse.parse_qsl(raw.decode())) if form \
                else json.loads(raw) if raw else {}
        except ValueError:
            args = None
        call = {"method": method, "args": args, "at": time.time(),
                "token": auth[7:13] if auth.startswith("Bearer ") else ""}
        self.calls.append(call)

        def reply(obj, status=200, headers=None):
            call["reply"] = obj
            call["status"] = status
            return web.json_response(obj, status=status, headers=headers)

        rl = self.ratelimits.get(method)
        if rl and rl[0] > 0:
            rl[0] -= 1
            return reply({"ok": False, "error": "ratelimited"}, 429,
                         {"Retry-After": str(rl[1])})
        ra = self.rate_limit(method, args if isinstance(args, dict)
                             else None, call["at"])
        if ra is not None:
            call["retry_after"] = ra
            return reply({"ok": False, "error": "ratelimited"}, 429,
                         {"Retry-After": str(ra)})
        if not auth.startswith("Bearer "):
            return reply({"ok": False, "error": "not_authed"})
        token = auth[7:]
        want = self.args.app_token if method == "apps.connections.open" \
            else self.args.bot_token
        if token != want:
            return reply({"ok": False, "error": "invalid_auth"})
        if method == "files.getUploadURLExternal":
            if not form:
                return reply({"ok": False, "error": "invalid_arguments"})
        elif raw and not ctype.startswith("application/json"):
            return reply({"ok": False, "error": "invalid_arguments"})
        if args is None or not isinstance(args, dict):
            return reply({"ok": False, "error": "invalid_json"})
        fl = self.failures.get(method)
        if fl and fl[0] > 0:
            fl[0] -= 1
            return reply({"ok": False, "error": fl[1]})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return reply({"ok": False, "error": "unknown_method"})
        result = await handler(args)
        lost = self.lost.get(method)
        if lost and lost[0] > 0 and (lost[1] is None or
                                      lost[1] in str(args.get("text", ""))):
            # Done, but the client never hears so (a 5xx from a proxy).
            lost[0] -= 1
            call["done_but_lost"] = True
            call["lost_result"] = result
            return reply({"ok": False, "error": "internal_error"}, 503)
        return reply(result)

    # ---- files (external upload) ----------------------------------------
    async def m_files_getUploadURLExternal(self, a):
        try:
            length = int(a.get("length", "0"))
        except ValueError:
            length = 0
        if not a.get("filename") or length <= 0:
            return {"ok": False, "error": "missing_argument"}
        fid = "F%06d" % (len(self.uploads) + 1)
        self.uploads[fid] = {"filename": a["filename"], "length": length,
                             "data": None}
        return {"ok": True, "file_id": fid,
                "upload_url": "http://127.0.0.1:%d/upload/v1/%s"
                % (self.port, fid)}

    async def upload(self, request):
        fid = request.match_info["fid"]
        up = self.uploads.get(fid)
        data = await request.read()
        if up is None:
            return web.Response(status=404, text="not found")
        up["data"] = data
        return web.Response(text="OK - %d" % len(data))

    async def m_files_completeUploadExternal(self, a):
        files = a.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        out = []
        for f in files:
            up = self.uploads.get(f.get("id"))
            if up is None or up["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            if len(up["data"]) != up["length"]:
                return {"ok": False, "error": "file_upload_size_mismatch"}
            rec = {"id": f["id"], "title": f.get("title"),
                   "filename": up["filename"],
                   "channel_id": a.get("channel_id"),
                   "thread_ts": a.get("thread_ts"),
                   "data": base64.b64encode(up["data"]).decode()}
            self.files.append(rec)
            out.append({"id": f["id"], "title": f.get("title"),
                        "name": up["filename"]})
        return {"ok": True, "files": out}

    async def t_files(self, request):
        return web.json_response(self.files)

    async def m_auth_test(self, a):
        return {"ok": True, "url": "https://test.slack.com/", "team": "Test",
                "user": "switchboard", "team_id": TEAM, "user_id": BOT_USER,
                "bot_id": BOT_ID, "app_id": APP}

    async def m_apps_connections_open(self, a):
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return {"ok": True, "url": "ws://127.0.0.1:%d/socket?ticket=%s"
                "&app_id=%s" % (self.port, ticket, APP)}

    def check_text(self, a):
        if "channel" not in a:
            return "channel_not_found"
        if a["channel"].startswith("CNOTFOUND"):
            return "channel_not_found"
        if not a.get("text") and not a.get("blocks"):
            return "no_text"
        if len(a.get("text") or "") > 40000:
            return "msg_too_long"
        blocks = a.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > 50:
                return "invalid_blocks"
            for b in blocks:
                if b.get("type") == "section" and \
                        len(b["text"]["text"]) > 3000:
                    return "invalid_blocks"
                for el in b.get("elements", []):
                    if len(el["text"]["text"]) > 75 or \
                            len(el.get("action_id", "")) > 255:
                        return "invalid_blocks"
        return None

    async def m_chat_postMessage(self, a):
        err = self.check_text(a)
        if err:
            return {"ok": False, "error": err}
        ts = self.next_ts()
        msg = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID,
               "text": a.get("text", ""), "ts": ts, "app_id": APP,
               "team": TEAM}
        if a.get("thread_ts"):
            msg["thread_ts"] = a["thread_ts"]
        if a.get("blocks") is not None:
            msg["blocks"] = a["blocks"]
        if a.get("metadata") is not None:
            msg["metadata"] = a["metadata"]
        self.messages[(a["channel"], ts)] = msg
        if self.args.echo:
            ev = dict(msg, channel=a["channel"], channel_type="channel")
            ev.pop("metadata", None)
            await self.push("events_api", self.event_callback(ev))
        return {"ok": True, "channel": a["channel"], "ts": ts,
                "message": msg}

    async def m_chat_update(self, a):
        key = (a.get("channel"), a.get("ts"))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        err = self.check_text(a)
        if err:
            return {"ok": False, "error": err}
        msg = self.messages[key]
        msg["text"] = a.get("text", "")
        if "blocks" in a:
            msg["blocks"] = a["blocks"]
        return {"ok": True, "channel": a["channel"], "ts": a["ts"],
                "text": msg["text"]}

    async def m_reactions_add(self, a):
        if not a.get("name") or not a.get("timestamp") or \
                not a.get("channel"):
            return {"ok": False, "error": "invalid_arguments"}
        if ":" in a["name"]:
            return {"ok": False, "error": "invalid_name"}
        key = (a["channel"], a["timestamp"], a["name"])
        if key in self.reactions:
            return {"ok": False, "error": "already_reacted"}
        self.reactions.add(key)
        return {"ok": True}

    def listing(self, a, pred):
        out = []
        for (ch, ts), m in sorted(self.messages.items(),
                                  key=lambda kv: kv[0][1]):
            if ch != a.get("channel") or not pred(m):
                continue
            m = dict(m)
            if not a.get("include_all_metadata"):
                m.pop("metadata", None)
            out.append(m)
        return out

    def page(self, a, msgs, default_limit):
        """Slack's cursor pagination: at most `limit` items, then
        has_more and response_metadata.next_cursor (opaque) for the rest."""
        try:
            limit = max(1, min(int(a.get("limit") or default_limit), 1000))
        except (TypeError, ValueError):
            limit = default_limit
        cur = a.get("cursor") or ""
        start = int(base64.b64decode(cur).decode()[5:]) if cur else 0
        out = {"ok": True, "messages": msgs[start:start + limit],
               "has_more": start + limit < len(msgs)}
        if out["has_more"]:
            out["response_metadata"] = {"next_cursor": base64.b64encode(
                ("next:%d" % (start + limit)).encode()).decode()}
        return out

    async def m_conversations_replies(self, a):
        root = a.get("ts")
        # Slack: a ts that is no message of the channel has no thread.
        if (a.get("channel"), root) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        return self.page(a, self.listing(
            a, lambda m: m["ts"] == root or m.get("thread_ts") == root),
            1000)

    async def m_conversations_history(self, a):
        return self.page(a, self.listing(
            a, lambda m: "thread_ts" not in m)[::-1], 100)

    # ---- Socket Mode ---------------------------------------------------
    async def socket(self, request):
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        self.tickets.discard(ticket)    # single use
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        rec = {"id": len(self.sockets) + 1, "ws": ws, "opened": time.time(),
               "hello_at": None, "closed": None, "closed_by": None,
               "deaf": False}
        self.sockets.append(rec)
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self.live_sockets()) + 1,
            "debug_info": {"host": "fake-slack", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP}}))
        rec["hello_at"] = time.time()
        await self.redeliver_stranded()
        try:
            while True:
                # Not `async for`: it hides the CLOSE frame and its code.
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING,
                                WSMsgType.CLOSED, WSMsgType.ERROR):
                    if msg.type == WSMsgType.CLOSE:
                        rec["close_code"] = msg.data
                    if rec["closed_by"] is None:
                        rec["closed_by"] = "client"
                    break
                if msg.type == WSMsgType.PING:
                    if not rec["deaf"]:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    if rec["deaf"]:
                        continue
                    try:
                        d = json.loads(msg.data)
                    except ValueError:
                        continue
                    env = self.envelopes.get(d.get("envelope_id"))
                    if env is not None and self.hold_acks:
                        env["held"] += 1
                    elif env is not None:
                        if not env["acked"]:
                            env["acked_at"] = time.time()
                        env["acked"] = True
                        env["acks"] += 1
        finally:
            if rec["closed_by"] is None:
                rec["closed_by"] = "client"
            rec["closed"] = time.time()
            rec["ws"] = None
        return ws

    async def close_later(self, rec, delay):
        await asyncio.sleep(delay)
        ws = rec.get("ws")
        if ws is not None and not ws.closed:
            rec["closed_by"] = "server"
            await ws.close()

    # ---- control -------------------------------------------------------
    async def t_event(self, request):
        body = await request.json()
        if "interactive" in body:
            rec = await self.push("interactive", body["interactive"])
            return web.json_response({"envelope_id": rec["envelope_id"]})
        payload = self.event_callback(body["event"])
        if body.get("event_id"):
            payload["event_id"] = body["event_id"]
        rec = await self.push("events_api", payload)
        return web.json_response({"envelope_id": rec["envelope_id"],
                                  "event_id": payload["event_id"]})

    async def t_burst(self, request):
        body = await request.json()
        ids = []
        for ev in body["events"]:
            rec = await self.push("events_api", self.event_callback(ev))
            ids.append(rec["envelope_id"])
        return web.json_response({"envelopes": ids})

    async def t_redeliver(self, request):
        body = await request.json()
        rec = self.envelopes[body["envelope_id"]]
        saved = rec["attempt"]
        rec["attempt"] = 0      # observed: duplicates with retry_attempt 0
        ok = await self.send_envelope(rec)
        rec["attempt"] = saved
        return web.json_response({"ok": ok})

    async def t_disconnect(self, request):
        body = await request.json()
        socks = self.live_sockets()
        if not socks:
            return web.json_response({"ok": False})
        rec = socks[-1]
        reason = body.get("reason", "refresh_requested")
        await rec["ws"].send_str(json.dumps({
            "type": "disconnect", "reason": reason,
            "debug_info": {"host": "fake-slack"}}))
        if reason in ("refresh_requested", "warning", "link_disabled"):
            asyncio.get_event_loop().create_task(
                self.close_later(rec, self.args.close_after_ms / 1000.0))
        return web.json_response({"ok": True, "socket": rec["id"]})

    async def t_drop(self, request):
        socks = self.live_sockets()
        if not socks:
            return web.json_response({"ok": False})
        rec = socks[-1]
        rec["closed_by"] = "server-abort"
        request.app["drop"] = rec
        rec["ws"]._req.transport.abort()
        return web.json_response({"ok": True, "socket": rec["id"]})

    async def t_bigframe(self, request):
        """Raw frames, so that a message can be fragmented (aiohttp only
        sends whole messages).  Server frames are unmasked (RFC 6455 5.1)."""
        b = await request.json()
        socks = self.live_sockets()
        if not socks:
            return web.json_response({"ok": False})
        size, nfrag = int(b["size"]), max(1, int(b.get("fragments", 1)))
        body = b'{"type":"events_api","envelope_id":"big","payload":"' + \
            b"x" * max(0, size - 60) + b'"}'
        step = (len(body) + nfrag - 1) // nfrag
        transport = socks[-1]["ws"]._req.transport
        for i in range(nfrag):
            chunk = body[i * step:(i + 1) * step]
            b0 = (0x80 if i == nfrag - 1 else 0) | (0x1 if i == 0 else 0x0)
            n = len(chunk)
            if n < 126:
                hdr = bytes([b0, n])
            elif n < 65536:
                hdr = bytes([b0, 126]) + n.to_bytes(2, "big")
            else:
                hdr = bytes([b0, 127]) + n.to_bytes(8, "big")
            transport.write(hdr + chunk)
            await asyncio.sleep(0)
        return web.json_response({"ok": True, "socket": socks[-1]["id"],
                                  "bytes": len(body)})

    async def t_seed(self, request):
        b = await request.json()
        for i in range(int(b["count"])):
            ts = self.next_ts()
            self.messages[(b["channel"], ts)] = {
                "type": "message", "user": "U9", "text": "chatter %d" % i,
                "ts": ts, "thread_ts": b["thread_ts"], "team": TEAM}
        return web.json_response({"ok": True})

    async def t_deaf(self, request):
        socks = self.live_sockets()
        if not socks:
            return web.json_response({"ok": False})
        socks[-1]["deaf"] = True
        return web.json_response({"ok": True, "socket": socks[-1]["id"]})

    async def t_ratelimit(self, request):
        b = await request.json()
        self.ratelimits[b["method"]] = [b.get("count", 1),
                                        b.get("retry_after", 1)]
        return web.json_response({"ok": True})

    async def t_limits(self, request):
        b = await request.json()
        self.limits_mode = b.get("mode", "lifted")
        self.buckets.clear()
        return web.json_response({"ok": True})

    async def t_ratelimits(self, request):
        return web.json_response({
            "mode": self.limits_mode, "limits": REAL_LIMITS,
            "limited": self.n_limited, "early": len(self.early),
            "early_calls": self.early[:20]})

    async def t_fail(self, request):
        b = await request.json()
        self.failures[b["method"]] = [b.get("count", 1), b["error"]]
        return web.json_response({"ok": True})

    async def t_lose(self, request):
        b = await request.json()
        self.lost[b["method"]] = [b.get("count", 1), b.get("match")]
        return web.json_response({"ok": True})

    async def t_hold_acks(self, request):
        b = await request.json()
        self.hold_acks = bool(b.get("on"))
        return web.json_response({"ok": True})

    async def t_calls(self, request):
        return web.json_response(self.calls)

    async def t_sockets(self, request):
        return web.json_response([{k: v for k, v in s.items() if k != "ws"}
                                  for s in self.sockets])

    async def t_envelopes(self, request):
        return web.json_response(list(self.envelopes.values()))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bot-token", default="xoxb-test-bot")
    ap.add_argument("--app-token", default="xapp-test-app")
    ap.add_argument("--redeliver-ms", type=int, default=3000)
    ap.add_argument("--close-after-ms", type=int, default=10000)
    ap.add_argument("--no-echo", dest="echo", action="store_false")
    ap.add_argument("--limits", choices=("lifted", "real"), default="lifted")
    args = ap.parse_args()
    fake = Fake(args)
    # Control requests may carry a hostile-size event (tests of limits).
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/api/{method}", fake.api)
    app.router.add_get("/socket", fake.socket)
    app.router.add_post("/_test/event", fake.t_event)
    app.router.add_post("/_test/burst", fake.t_burst)
    app.router.add_post("/_test/redeliver", fake.t_redeliver)
    app.router.add_post("/_test/disconnect", fake.t_disconnect)
    app.router.add_post("/_test/drop", fake.t_drop)
    app.router.add_post("/_test/deaf", fake.t_deaf)
    app.router.add_post("/_test/bigframe", fake.t_bigframe)
    app.router.add_post("/_test/seed", fake.t_seed)
    app.router.add_post("/_test/ratelimit", fake.t_ratelimit)
    app.router.add_post("/_test/fail", fake.t_fail)
    app.router.add_post("/_test/limits", fake.t_limits)
    app.router.add_get("/_test/ratelimits", fake.t_ratelimits)
    app.router.add_post("/_test/lose", fake.t_lose)
    app.router.add_post("/_test/hold_acks", fake.t_hold_acks)
    app.router.add_get("/_test/calls", fake.t_calls)
    app.router.add_get("/_test/sockets", fake.t_sockets)
    app.router.add_get("/_test/envelopes", fake.t_envelopes)
    app.router.add_get("/_test/files", fake.t_files)
    app.router.add_post("/upload/v1/{fid}", fake.upload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]
    print(fake.port, flush=True)
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
