#!/usr/bin/python3
"""Fake model APIs for the real Claude Code and Codex CLIs, on one 127.0.0.1
port (printed as the first stdout line).  The "model" says what the test
scripted; every request is recorded so a test can read what the CLI sent.

Anthropic Messages API, as Claude Code 2.1 calls it (ANTHROPIC_BASE_URL):
  POST /v1/messages?beta=true, body {"model", "messages", "system", "tools",
  "stream": true, ...}; the reply is SSE: message_start, then per content
  block content_block_start / content_block_delta (text_delta or
  input_json_delta) / content_block_stop, then message_delta (stop_reason
  "tool_use" or "end_turn", usage) and message_stop.  A request without
  "stream" gets the same message as one JSON object.
  POST /v1/messages/count_tokens → {"input_tokens": N}.

OpenAI Responses API, as Codex 0.171 calls it (a model_providers entry with
base_url http://127.0.0.1:PORT/v1 and wire_api = "responses"):
  POST /v1/responses, body {"model", "instructions", "input", "tools",
  "stream": true, ...}; SSE: response.created, response.output_item.added /
  .done per output item (message with output_text, or function_call with
  call_id/name/arguments), response.completed with usage.
  GET /v1/models → a list with the scripted model.

Which requests are the agent's turns: Claude Code also sends small side
requests (e.g. a title or a quota probe, without tools); those get a short
plain answer and do not consume the script.  The agent's turns take the
scripted replies in order; when the script is used up the reply says so and
the request is marked "unscripted" (tests check there is none).

Control (test only):
  POST /_test/script   {"anthropic": [REPLY...], "openai": [REPLY...]}
                       REPLY = {"blocks": [BLOCK...], "usage": {...}?,
                                "wait_for": "text"?}
                       BLOCK = {"text": "..."} | {"tool": NAME, "input": {}}
                       ("input" for openai is the function's arguments)
                       wait_for: hold the reply until a request's body holds
                       this text (used to assert the next request carries
                       a tool result) — if it does not, the reply becomes
                       an error text the test will see.
  GET  /_test/requests every request: {"api", "path", "headers", "body",
                       "turn" (index into the script or null), "unscripted"}
  POST /_test/reset    forget the script and the requests
Anything else is recorded too and answered 404, so a probe shows new
endpoints a CLI starts to call.
"""
import argparse
import asyncio
import json
import sys
import uuid

from aiohttp import web


class Fake:
    def __init__(self):
        self.script = {"anthropic": [], "openai": []}
        self.used = {"anthropic": 0, "openai": 0}
        self.requests = []

    def record(self, api, req, body, turn=None, unscripted=False):
        rec = {"api": api, "method": req.method, "path": req.path_qs,
               "headers": {k: v for k, v in req.headers.items()
                           if k.lower() not in ("authorization",
                                                "x-api-key")},
               "auth": bool(req.headers.get("authorization") or
                            req.headers.get("x-api-key")),
               "body": body, "turn": turn, "unscripted": unscripted}
        self.requests.append(rec)
        return rec

    def next_reply(self, api):
        i = self.used[api]
        if i >= len(self.script[api]):
            return None, None
        self.used[api] += 1
        return i, self.script[api][i]

    # ---- control -------------------------------------------------------

    async def t_script(self, req):
        s = await req.json()
        for api in ("anthropic", "openai"):
            if api in s:
                self.script[api] = s[api]
                self.used[api] = 0
        return web.json_response({"ok": True})

    async def t_requests(self, req):
        return web.json_response(self.requests)

    async def t_reset(self, req):
        self.__init__()
        return web.json_response({"ok": True})

    # ---- Anthropic -----------------------------------------------------

    @staticmethod
    def is_agent_turn(body):
        """Claude Code's agent loop sends its tools; side requests (title,
        quota, summaries) send none."""
        return bool(body.get("tools"))

    async def messages(self, req):
        body = await req.json()
        model = body.get("model", "claude-sonnet-4-5")
        if not self.is_agent_turn(body):
            self.record("anthropic", req, body)
            blocks, usage = [{"text": "ok"}], {}
        else:
            i, reply = self.next_reply("anthropic")
            self.record("anthropic", req, body, turn=i,
                        unscripted=reply is None)
            if reply is None:
                reply = {"blocks": [{"text": "(the fake model has no more"
                                     " scripted replies)"}]}
            blocks, usage = reply["blocks"], reply.get("usage", {})
            want = reply.get("wait_for")
            if want is not None and want not in json.dumps(body):
                blocks = [{"text": "fake model: expected %r in the request"
                           % want}]
        content = []
        for b in blocks:
            if "tool" in b:
                content.append({"type": "tool_use",
                                "id": "toolu_%s" % uuid.uuid4().hex[:20],
                                "name": b["tool"], "input": b["input"]})
            else:
                content.append({"type": "text", "text": b["text"]})
        stop = "tool_use" if any(c["type"] == "tool_use" for c in content) \
            else "end_turn"
        u = {"input_tokens": usage.get("input_tokens", 1000),
             "output_tokens": usage.get("output_tokens", 100),
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        msg = {"id": "msg_%s" % uuid.uuid4().hex[:24], "type": "message",
               "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": dict(u, output_tokens=1)}
        if not body.get("stream"):
            msg.update(content=content, stop_reason=stop, usage=u)
            return web.json_response(msg)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "request-id": "req_%s" % uuid.uuid4().hex[:20]})
        await resp.prepare(req)

        async def ev(name, data):
            await resp.write(("event: %s\ndata: %s\n\n"
                              % (name, json.dumps(data))).encode())

        await ev("message_start", {"type": "message_start", "message": msg})
        await ev("ping", {"type": "ping"})
        for n, c in enumerate(content):
            if c["type"] == "text":
                await ev("content_block_start", {
                    "type": "content_block_start", "index": n,
                    "content_block": {"type": "text", "text": ""}})
                await ev("content_block_delta", {
                    "type": "content_block_delta", "index": n,
                    "delta": {"type": "text_delta", "text": c["text"]}})
            else:
                await ev("content_block_start", {
                    "type": "content_block_start", "index": n,
                    "content_block": {"type": "tool_use", "id": c["id"],
                                      "name": c["name"], "input": {}}})
                await ev("content_block_delta", {
                    "type": "content_block_delta", "index": n,
                    "delta": {"type": "input_json_delta",
                              "partial_json": json.dumps(c["input"])}})
            await ev("content_block_stop", {"type": "content_block_stop",
                                            "index": n})
        await ev("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": u["output_tokens"]}})
        await ev("message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp

    async def count_tokens(self, req):
        body = await req.json()
        self.record("anthropic", req, body)
        return web.json_response({"input_tokens": len(json.dumps(body)) // 4})

    # ---- OpenAI Responses ----------------------------------------------

    async def models(self, req):
        self.record("openai", req, None)
        return web.json_response({"object": "list", "data": [
            {"id": "gpt-fake", "object": "model", "created": 0,
             "owned_by": "fake"}]})

    async def responses(self, req):
        body = await req.json()
        i, reply = self.next_reply("openai")
        self.record("openai", req, body, turn=i, unscripted=reply is None)
        if reply is None:
            reply = {"blocks": [{"text": "(the fake model has no more"
                                 " scripted replies)"}]}
        blocks, usage = reply["blocks"], reply.get("usage", {})
        want = reply.get("wait_for")
        if want is not None and want not in json.dumps(body):
            blocks = [{"text": "fake model: expected %r in the request"
                       % want}]
        rid = "resp_%s" % uuid.uuid4().hex[:24]
        items = []
        for b in blocks:
            if "custom" in b:
                items.append({"type": "custom_tool_call",
                              "id": "ctc_%s" % uuid.uuid4().hex[:20],
                              "call_id": "call_%s" % uuid.uuid4().hex[:20],
                              "name": b["custom"], "status": "completed",
                              "input": b["input"]})
            elif "tool" in b:
                items.append({"type": "function_call",
                              "id": "fc_%s" % uuid.uuid4().hex[:20],
                              "call_id": "call_%s" % uuid.uuid4().hex[:20],
                              "name": b["tool"], "status": "completed",
                              "arguments": json.dumps(b["input"])})
                if "namespace" in b:
                    items[-1]["namespace"] = b["namespace"]
            else:
                items.append({"type": "message", "role": "assistant",
                              "id": "msg_%s" % uuid.uuid4().hex[:20],
                              "status": "completed",
                              "content": [{"type": "output_text",
                                           "text": b["text"],
                                           "annotations": []}]})
        u = {"input_tokens": usage.get("input_tokens", 1000),
             "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": usage.get("output_tokens", 100),
             "output_tokens_details": {"reasoning_tokens": 0}}
        u["total_tokens"] = u["input_tokens"] + u["output_tokens"]
        base = {"id": rid, "object": "response", "created_at": 0,
                "model": body.get("model"), "status": "in_progress",
                "output": []}
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(req)
        seq = 0

        async def ev(data):
            nonlocal seq
            data = dict(data, sequence_number=seq)
            seq += 1
            await resp.write(("event: %s\ndata: %s\n\n"
                              % (data["type"], json.dumps(data))).encode())

        await ev({"type": "response.created", "response": base})
        await ev({"type": "response.in_progress", "response": base})
        for n, it in enumerate(items):
            await ev({"type": "response.output_item.added",
                      "output_index": n, "item": it})
            await ev({"type": "response.output_item.done",
                      "output_index": n, "item": it})
        await ev({"type": "response.completed", "response": dict(
            base, status="completed", output=items, usage=u)})
        await resp.write_eof()
        return resp

    async def other(self, req):
        raw = await req.read()
        self.record("other", req, raw.decode("utf-8", "replace")[:2000])
        return web.json_response({"error": {"type": "not_found_error",
                                            "message": "fake: no such"
                                            " endpoint"}}, status=404)


async def main(args):
    fake = Fake()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/_test/script", fake.t_script)
    app.router.add_get("/_test/requests", fake.t_requests)
    app.router.add_post("/_test/reset", fake.t_reset)
    app.router.add_post("/v1/messages", fake.messages)
    app.router.add_post("/v1/messages/count_tokens", fake.count_tokens)
    app.router.add_get("/v1/models", fake.models)
    app.router.add_post("/v1/responses", fake.responses)
    app.router.add_route("*", "/{tail:.*}", fake.other)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    try:
        asyncio.run(main(p.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
