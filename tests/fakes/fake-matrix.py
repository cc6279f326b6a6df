#!/usr/bin/python3
"""Fake Matrix homeserver for the end-to-end tests (Client-Server API subset).

Binds 127.0.0.1 on a free port and prints the port as its first stdout line.
Behaves like the spec (and PROTOCOLS.md) where the adapter depends on it:
  - POST /_matrix/client/v3/login (m.login.password; device_id reused when
    given), GET /v3/account/whoami, Bearer tokens, 401 M_UNKNOWN_TOKEN;
  - GET /v3/sync with since tokens, long-poll (wakes on a new event), an
    inline JSON filter (timeline types and limit), rooms.join with summary,
    a newly joined room with its recent history (before the join too),
    state, timeline {events, limited, prev_batch}, rooms.invite with
    invite_state; own events carry unsigned.transaction_id;
  - POST /v3/join/{room} (only when invited or already joined);
  - GET /v3/profile/{user}/displayname (the bot is "Code Bot");
  - PUT /v3/rooms/{room}/send/{type}/{txnId}, idempotent per (user, device,
    txnId): the same txnId returns the same event_id and stores nothing new;
    m.reaction duplicates → 400 M_DUPLICATE_ANNOTATION; a thread cannot be
    started on an event that itself has a relation; events over 65,536 bytes
    → 413 M_TOO_LARGE;
  - GET /v1/rooms/{room}/relations/{event}/{rel_type};
  - errors as {"errcode", "error"}; 429 M_LIMIT_EXCEEDED with retry_after_ms;
  - POST /_matrix/media/v3/upload (raw bytes, ?filename=) → content_uri.
Test control API (no auth):
  POST /_test/room      {"members": [...], "encrypted": bool} → {"room_id"}
  POST /_test/invite    {"room", "sender", "user"}
  POST /_test/event     {"room", "sender", "type", "content"} → {"event_id"}
  POST /_test/mode      {"sync_429": n, "send_429": n, "retry_after_ms": ms,
                         "expire_tokens": true, "send_delay_ms": ms,
                         "rate_hz": r, "rate_burst": n}  (a limiter on
                         sends per user, like Synapse's rc_message)
  GET  /_test/sent      → {"events": [...our bot's events...], "puts": n,
                           "logins": n, "joins": [...], "syncs": [...]}
  GET  /_test/media     → {media id: {"data" (base64), "content_type",
                           "filename"}}
"""
import asyncio
import base64
import json
import socket
import sys
import time

from aiohttp import web

SERVER = "localhost"
USERS = {"@bot:localhost": "hunter2"}
DISPLAY_NAMES = {"@bot:localhost": "Code Bot", "@alice:localhost": "Alice"}


def err(status, code, msg, **extra):
    body = {"errcode": code, "error": msg}
    body.update(extra)
    return web.json_response(body, status=status)


class Server:
    def __init__(self):
        self.tokens = {}        # token -> (user, device)
        self.ndev = 0
        self.ntok = 0
        self.nev = 0
        self.nroom = 0
        self.rooms = {}         # room -> {"members": {user: membership}, "encrypted"}
        self.stream = []        # [(room, event)] ; pos = index + 1
        self.invites = []       # [(pos, user, room, inviter)]
        self.events = {}        # event_id -> (room, event)
        self.txns = {}          # (user, device, txn) -> event_id
        self.annotations = set()
        self.cond = asyncio.Condition()
        self.mode = {}
        self.puts = 0
        self.logins = 0
        self.joins = []
        self.syncs = []
        self.put_log = []       # {"txn", "type", "t", "status", "retry_ms"}
        self.buckets = {}       # user -> (tokens, at): the rate limiter
        self.login_log = []     # device_id asked for (or None)
        self.media = {}         # media id -> {"data", "content_type", "filename"}

    # ---- helpers ---------------------------------------------------------
    def auth(self, req):
        h = req.headers.get("Authorization", "")
        if not h.startswith("Bearer "):
            return None, err(401, "M_MISSING_TOKEN", "Missing access token")
        who = self.tokens.get(h[7:])
        if who is None:
            return None, err(401, "M_UNKNOWN_TOKEN", "Unknown access token",
                             soft_logout=False)
        return who, None

    def limiter(self, user, t):
        """Synapse's rc_message: a token bucket per sender (all rooms),
        rate_hz tokens a second up to rate_burst; a refused request takes
        no token and is told how long until the next one.  None: allowed."""
        hz = self.mode.get("rate_hz")
        if not hz:
            return None
        burst = self.mode.get("rate_burst", 1)
        level, last = self.buckets.get(user, (burst, t))
        level = min(burst, level + (t - last) * hz)
        if level >= 1:
            self.buckets[user] = (level - 1, t)
            return None
        self.buckets[user] = (level, t)
        return max(1, int((1 - level) / hz * 1000 + 0.999))

    def new_event_id(self):
        self.nev += 1
        return "$ev%d-%s" % (self.nev, "x" * 4)

    async def append(self, room, ev):
        ev.setdefault("origin_server_ts", int(time.time() * 1000))
        ev.setdefault("event_id", self.new_event_id())
        ev["room_id"] = room
        self.stream.append((room, ev))
        self.events[ev["event_id"]] = (room, ev)
        async with self.cond:
            self.cond.notify_all()
        return ev["event_id"]

    def joined(self, user):
        return [r for r, st in self.rooms.items()
                if st["members"].get(user) == "join"]

    def summary(self, room):
        n = sum(1 for m in self.rooms[room]["members"].values() if m == "join")
        return {"m.joined_member_count": n}

    def room_state(self, room):
        out = []
        if self.rooms[room]["encrypted"]:
            out.append({"type": "m.room.encryption", "state_key": "",
                        "sender": "@admin:localhost", "event_id": "$enc-" + room,
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"}})
        return out

    def batch(self, user, device, since, flt, full):
        """Response for events after position since (full = initial)."""
        tl = (flt.get("room") or {}).get("timeline") or {}
        types = tl.get("types")
        limit = tl.get("limit", 10)
        rooms_join, rooms_invite = {}, {}
        pos = len(self.stream)
        for room in self.joined(user):
            joined_at = self.rooms[room].get("joined_at", {}).get(user, 0)
            new = full or joined_at > since
            # Like Synapse: a room joined since the token comes with its
            # recent timeline, history from before the join included
            # (history_visibility "shared", the default).
            evs = [e for i, (r, e) in enumerate(self.stream)
                   if r == room and (i >= since or new)]
            if types is not None:
                evs = [e for e in evs if e["type"] in types]
            if not evs and not new:
                continue
            limited = len(evs) > limit
            evs = evs[len(evs) - limit:] if limit > 0 else []
            out = []
            for e in evs:
                e = json.loads(json.dumps(e))
                key = e.pop("_txn", None)
                if key and key[0] == user and key[1] == device:
                    e.setdefault("unsigned", {})["transaction_id"] = key[2]
                e.pop("room_id", None)
                out.append(e)
            state = self.room_state(room) if new else []
            # lazy_load_members: the member events of the timeline's
            # senders come in state (spec: Lazy-loading room members).
            st = (flt.get("room") or {}).get("state") or {}
            if st.get("lazy_load_members") and "m.room.member" in \
                    (st.get("types") or ["m.room.member"]):
                for sender in {e["sender"] for e in out}:
                    mem = [e for r, e in self.stream if r == room and
                           e["type"] == "m.room.member" and
                           e.get("state_key") == sender]
                    if mem:
                        m = {k: v for k, v in mem[-1].items()
                             if k not in ("_txn", "room_id")}
                        state.append(m)
            rooms_join[room] = {
                "summary": self.summary(room),
                "state": {"events": state},
                "timeline": {"events": out, "limited": limited,
                             "prev_batch": "p%d" % since},
                "ephemeral": {"events": []}, "account_data": {"events": []},
            }
        for (p, u, room, inviter) in self.invites:
            if u != user or (p <= since and not full):
                continue
            if self.rooms[room]["members"].get(user) != "invite":
                continue
            rooms_invite[room] = {"invite_state": {"events": [
                {"type": "m.room.create", "state_key": "", "sender": inviter,
                 "content": {"creator": inviter}},
                {"type": "m.room.member", "state_key": user, "sender": inviter,
                 "content": {"membership": "invite"}}]}}
        return {"next_batch": "s%d" % pos,
                "rooms": {"join": rooms_join, "invite": rooms_invite,
                          "leave": {}},
                "presence": {"events": []}, "account_data": {"events": []}}

    def has_news(self, user, since):
        joined = set(self.joined(user))
        for i in range(since, len(self.stream)):
            if self.stream[i][0] in joined:
                return True
        return any(p > since and u == user for (p, u, _, _) in self.invites)

    # ---- client API --------------------------------------------------------
    async def login(self, req):
        self.logins += 1
        try:
            body = await req.json()
        except Exception:
            return err(400, "M_NOT_JSON", "Content not JSON.")
        if body.get("type") != "m.login.password":
            return err(400, "M_UNKNOWN", "Unknown login type")
        self.login_log.append(body.get("device_id"))
        ident = body.get("identifier") or {}
        user = ident.get("user") or body.get("user")
        if user and not user.startswith("@"):
            user = "@%s:%s" % (user, SERVER)
        if USERS.get(user) != body.get("password"):
            return err(403, "M_FORBIDDEN", "Invalid username or password")
        dev = body.get("device_id")
        if not dev:
            self.ndev += 1
            dev = "DEV%d" % self.ndev
        self.ntok += 1
        tok = "tok%d-%s" % (self.ntok, dev)
        self.tokens[tok] = (user, dev)
        return web.json_response({"user_id": user, "access_token": tok,
                                  "device_id": dev, "home_server": SERVER})

    async def whoami(self, req):
        who, e = self.auth(req)
        if e:
            return e
        return web.json_response({"user_id": who[0], "device_id": who[1],
                                  "is_guest": False})

    async def displayname(self, req):
        # Spec: GET /v3/profile/{userId}/displayname; 404 M_NOT_FOUND when
        # the user has none.
        user = req.match_info["user"]
        if user not in DISPLAY_NAMES:
            return err(404, "M_NOT_FOUND", "Profile was not found")
        return web.json_response({"displayname": DISPLAY_NAMES[user]})

    async def sync(self, req):
        who, e = self.auth(req)
        if e:
            return e
        if self.mode.get("sync_429", 0) > 0:
            self.mode["sync_429"] -= 1
            self.syncs.append({"since": req.query.get("since"), "t":
                               time.time(), "status": 429})
            ms = self.mode.get("retry_after_ms", 1000)
            return err(429, "M_LIMIT_EXCEEDED", "Too many requests",
                       retry_after_ms=ms)
        q = req.query
        f = q.get("filter", "{}")
        try:
            flt = json.loads(f) if f.startswith("{") else {}
        except ValueError:
            return err(400, "M_INVALID_PARAM", "bad filter")
        since = q.get("since")
        timeout = int(q.get("timeout", "0"))
        self.syncs.append({"since": since, "timeout": timeout, "filter": flt,
                           "t": time.time()})
        if since is None:
            return web.json_response(self.batch(who[0], who[1], 0, flt, True))
        if not since.startswith("s") or not since[1:].isdigit():
            return err(400, "M_INVALID_PARAM", "bad since token")
        pos = int(since[1:])
        deadline = time.time() + timeout / 1000.0
        tok = req.headers.get("Authorization", "")[7:]
        async with self.cond:
            while not self.has_news(who[0], pos) and tok in self.tokens:
                left = deadline - time.time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self.cond.wait(), left)
                except asyncio.TimeoutError:
                    break
        # The token might have been revoked while we waited.
        if self.tokens.get(tok) is None:
            return err(401, "M_UNKNOWN_TOKEN", "Unknown access token")
        return web.json_response(self.batch(who[0], who[1], pos, flt, False))

    async def join(self, req):
        who, e = self.auth(req)
        if e:
            return e
        room = req.match_info["room"]
        self.joins.append({"room": room, "user": who[0]})
        st = self.rooms.get(room)
        if st is None:
            return err(404, "M_NOT_FOUND", "No such room")
        if st["members"].get(who[0]) not in ("invite", "join"):
            return err(403, "M_FORBIDDEN", "You are not invited to this room.")
        if st["members"].get(who[0]) != "join":
            st["members"][who[0]] = "join"
            st.setdefault("joined_at", {})[who[0]] = len(self.stream) + 1
            await self.append(room, {"type": "m.room.member",
                                     "state_key": who[0], "sender": who[0],
                                     "content": {"membership": "join"}})
        return web.json_response({"room_id": room})

    async def send(self, req):
        who, e = self.auth(req)
        if e:
            return e
        self.puts += 1
        room = req.match_info["room"]
        etype = req.match_info["type"]
        txn = req.match_info["txn"]
        raw = await req.read()
        # conn: which TCP connection carried it.  A request that follows a
        # response on the same keep-alive connection was sent after its
        # client had read that response.
        entry = {"txn": txn, "type": etype, "t": time.time(), "status": 200,
                 "room": room, "conn": "%s/%x" % (
                     req.transport.get_extra_info("peername"),
                     id(req.transport))}
        self.put_log.append(entry)
        if self.mode.get("send_429", 0) > 0:
            self.mode["send_429"] -= 1
            entry["status"] = 429
            return err(429, "M_LIMIT_EXCEEDED", "Too many requests",
                       retry_after_ms=self.mode.get("retry_after_ms", 1000))
        st = self.rooms.get(room)
        if st is None or st["members"].get(who[0]) != "join":
            return err(403, "M_FORBIDDEN", "User not in room")
        key = (who[0], who[1], txn)
        if key in self.txns:
            return web.json_response({"event_id": self.txns[key]})
        # Synapse answers a retransmission from its transaction cache
        # before the rate limiter sees it.
        wait = self.limiter(who[0], entry["t"])
        if wait is not None:
            entry["status"] = 429
            entry["retry_ms"] = wait
            r = err(429, "M_LIMIT_EXCEEDED", "Too many requests",
                    retry_after_ms=wait)
            # Spec v1.10: Retry-After in seconds; Synapse rounds up.
            r.headers["Retry-After"] = str(-(-wait // 1000))
            return r
        if len(raw) > 65536:
            return err(413, "M_TOO_LARGE", "event too large")
        try:
            content = json.loads(raw)
        except ValueError:
            return err(400, "M_NOT_JSON", "Content not JSON.")
        rel = content.get("m.relates_to") or {}
        if etype == "m.reaction":
            k = (room, who[0], rel.get("event_id"), rel.get("key"))
            if k in self.annotations:
                return err(400, "M_DUPLICATE_ANNOTATION",
                           "Can't send same reaction twice")
            self.annotations.add(k)
        if rel.get("rel_type") == "m.thread":
            root = self.events.get(rel.get("event_id"))
            if root is None:
                return err(400, "M_UNKNOWN", "thread root not found")
            if (root[1].get("content") or {}).get("m.relates_to"):
                return err(400, "M_UNKNOWN",
                           "Cannot start threads from an event with a relation")
        ev = {"type": etype, "sender": who[0], "content": content,
              "_txn": key}
        eid = await self.append(room, ev)
        self.txns[key] = eid
        delay = self.mode.get("send_delay_ms", 0)
        if delay:
            await asyncio.sleep(delay / 1000.0)
        return web.json_response({"event_id": eid})

    async def relations(self, req):
        who, e = self.auth(req)
        if e:
            return e
        room, target = req.match_info["room"], req.match_info["event"]
        rt = req.match_info.get("rel_type")
        chunk = [ev for r, ev in self.stream if r == room and
                 (ev.get("content") or {}).get("m.relates_to", {})
                 .get("event_id") == target and
                 (rt is None or ev["content"]["m.relates_to"]
                  .get("rel_type") == rt)]
        return web.json_response({"chunk": [
            {k: v for k, v in ev.items() if k != "_txn"} for ev in chunk]})

    async def upload(self, req):
        # Content repository (spec: POST /_matrix/media/v3/upload): the raw
        # bytes, Content-Type, optional ?filename= → {"content_uri": mxc}.
        who, e = self.auth(req)
        if e:
            return e
        data = await req.read()
        mid = "m%d" % (len(self.media) + 1)
        self.media[mid] = {"data": data,
                           "content_type": req.headers.get("Content-Type"),
                           "filename": req.query.get("filename")}
        return web.json_response({"content_uri": "mxc://localhost/" + mid})

    async def t_media(self, req):
        return web.json_response({k: dict(v, data=base64.b64encode(
            v["data"]).decode()) for k, v in self.media.items()})

    async def unknown(self, req):
        return err(404, "M_UNRECOGNIZED", "Unrecognized request")

    # ---- test control ------------------------------------------------------
    async def t_room(self, req):
        body = await req.json()
        self.nroom += 1
        room = "!room%d:%s" % (self.nroom, SERVER)
        self.rooms[room] = {"members": {}, "encrypted":
                            bool(body.get("encrypted"))}
        for m in body.get("members", []):
            self.rooms[room]["members"][m] = "join"
            content = {"membership": "join"}
            if m in DISPLAY_NAMES:
                content["displayname"] = DISPLAY_NAMES[m]
            await self.append(room, {"type": "m.room.member", "state_key": m,
                                     "sender": m, "content": content})
        if body.get("encrypted"):
            await self.append(room, {"type": "m.room.encryption",
                                     "state_key": "", "sender":
                                     body.get("members", ["@admin:x"])[0],
                                     "content": {"algorithm":
                                                 "m.megolm.v1.aes-sha2"}})
        return web.json_response({"room_id": room})

    async def t_invite(self, req):
        b = await req.json()
        room, user = b["room"], b.get("user", "@bot:localhost")
        self.rooms[room]["members"][user] = "invite"
        await self.append(room, {"type": "m.room.member", "state_key": user,
                                 "sender": b["sender"],
                                 "content": {"membership": "invite"}})
        self.invites.append((len(self.stream), user, room, b["sender"]))
        async with self.cond:
            self.cond.notify_all()
        return web.json_response({})

    async def t_event(self, req):
        b = await req.json()
        eid = await self.append(b["room"], {
            "type": b.get("type", "m.room.message"), "sender": b["sender"],
            "content": b["content"]})
        return web.json_response({"event_id": eid})

    async def t_mode(self, req):
        b = await req.json()
        if b.pop("expire_tokens", False):
            self.tokens.clear()
            async with self.cond:
                self.cond.notify_all()
        self.mode.update(b)
        return web.json_response(self.mode)

    async def t_sent(self, req):
        evs = []
        for r, ev in self.stream:
            if ev["sender"] == "@bot:localhost":
                e = {k: v for k, v in ev.items() if k != "_txn"}
                e["txn_id"] = ev["_txn"][2] if ev.get("_txn") else None
                evs.append(e)
        return web.json_response({"events": evs, "puts": self.puts,
                                  "logins": self.logins, "joins": self.joins,
                                  "syncs": self.syncs[-50:],
                                  "nsyncs": len(self.syncs),
                                  "put_log": self.put_log,
                                  "login_log": self.login_log})

    async def t_add_token(self, req):
        b = await req.json()
        self.tokens[b["token"]] = (b["user"], b.get("device", "CFGDEV"))
        return web.json_response({})


async def main():
    s = Server()
    app = web.Application(client_max_size=1 << 20)
    c = "/_matrix/client"
    app.router.add_post(c + "/v3/login", s.login)
    app.router.add_get(c + "/v3/account/whoami", s.whoami)
    app.router.add_get(c + "/v3/sync", s.sync)
    app.router.add_get(c + "/v3/profile/{user}/displayname", s.displayname)
    app.router.add_post(c + "/v3/join/{room}", s.join)
    app.router.add_put(c + "/v3/rooms/{room}/send/{type}/{txn}", s.send)
    app.router.add_get(c + "/v1/rooms/{room}/relations/{event}", s.relations)
    app.router.add_get(c + "/v1/rooms/{room}/relations/{event}/{rel_type}",
                       s.relations)
    app.router.add_post("/_matrix/media/v3/upload", s.upload)
    app.router.add_get("/_test/media", s.t_media)
    app.router.add_post("/_test/room", s.t_room)
    app.router.add_post("/_test/invite", s.t_invite)
    app.router.add_post("/_test/event", s.t_event)
    app.router.add_post("/_test/mode", s.t_mode)
    app.router.add_get("/_test/sent", s.t_sent)
    app.router.add_post("/_test/token", s.t_add_token)
    app.router.add_route("*", "/{tail:.*}", s.unknown)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(sock.getsockname()[1], flush=True)
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
