#!/usr/bin/python3
"""Fake LLM API for tests/e2e/test_brain.py and bench/brain.py: the Anthropic
Messages API (POST /v1/messages) and OpenAI Chat Completions (POST
/v1/chat/completions) on one port, scripted per test.

    fake-llm.py [--key KEY]

Binds 127.0.0.1 on a free port and prints it as the first stdout line.

Strict like the real APIs about what the tests rely on; a malformed request
gets the provider's 400 and is recorded in /_failures, so the test fails:
  Anthropic: x-api-key (401 authentication_error when wrong or missing),
    anthropic-version: 2023-06-01, model, max_tokens; messages start with
    "user" and alternate; text blocks are non-empty; every tool_use of an
    assistant message is answered by a tool_result at the start of the next
    user message, and every tool_result answers a tool_use of the assistant
    message right before it; tools have a valid name and an input_schema of
    type object whose "required" names declared properties; cache_control
    is {"type":"ephemeral"}.
  OpenAI: Authorization: Bearer (when a key is set); roles system, user,
    assistant, tool; an assistant message with tool_calls is followed by one
    tool message per call id, and a tool message answers a call id of the
    assistant message before it; function tools with valid parameters.

Control (JSON):
  POST /_script {"responses":[R...]}  appends scripted responses.  R:
      {"match": REGEX,            searched in the request's new input (the
                                  trailing user/tool messages); default any
       "text": "...", "calls": [{"name":..., "input":{...}}],
       "status": 429, "headers": {...}, "error": "...",  (an error reply)
       "hold": NAME}              wait for POST /_release/NAME first
      The first queued response whose match fits is used once.  A request
      no response fits gets 400 and a failure record.
  POST /_release/NAME   GET /_requests   GET /_failures   POST /_reset
"""
import argparse
import asyncio
import json
import re
import socket
import sys
import time

from aiohttp import web

received = []
failures = []
script = []
gates = {}
counter = [0]
KEY = None
NAME_RX = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
JSON_TYPES = {"object", "string", "integer", "number", "boolean", "array",
              "null"}


class Bad(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Bad(msg)


def check_schema(s, where):
    need(isinstance(s, dict), "%s: schema must be an object" % where)
    t = s.get("type")
    need(t in JSON_TYPES, "%s: invalid type %r" % (where, t))
    if t == "object":
        props = s.get("properties", {})
        need(isinstance(props, dict), "%s: properties must be an object"
             % where)
        for k, v in props.items():
            check_schema(v, "%s.%s" % (where, k))
        req = s.get("required", [])
        need(isinstance(req, list) and all(r in props for r in req),
             "%s: required names undeclared properties" % where)
        if "additionalProperties" in s:
            need(isinstance(s["additionalProperties"], (bool, dict)),
                 "%s: additionalProperties" % where)
    if t == "array" and "items" in s:
        check_schema(s["items"], where + "[]")


def check_cache(b, where):
    if "cache_control" in b:
        need(b["cache_control"] == {"type": "ephemeral"},
             "%s: cache_control must be {type: ephemeral}" % where)


def validate_anthropic(headers, body):
    need(headers.get("anthropic-version") == "2023-06-01",
         "anthropic-version header: 2023-06-01 required")
    need("application/json" in headers.get("content-type", ""),
         "content-type must be application/json")
    need(isinstance(body.get("model"), str) and body["model"], "model")
    need(isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 0,
         "max_tokens: positive integer required")
    system = body.get("system")
    if isinstance(system, list):
        for i, b in enumerate(system):
            need(b.get("type") == "text" and isinstance(b.get("text"), str)
                 and b["text"], "system.%d: non-empty text block" % i)
            check_cache(b, "system.%d" % i)
    else:
        need(system is None or isinstance(system, str), "system")
    for i, t in enumerate(body.get("tools", [])):
        need(NAME_RX.match(t.get("name", "")), "tools.%d.name" % i)
        need(isinstance(t.get("description", ""), str), "tools.%d.desc" % i)
        sch = t.get("input_schema")
        need(isinstance(sch, dict) and sch.get("type") == "object",
             "tools.%d.input_schema: type must be object" % i)
        check_schema(sch, "tools.%d.input_schema" % i)
        check_cache(t, "tools.%d" % i)
        need(set(t) <= {"name", "description", "input_schema",
                        "cache_control"}, "tools.%d: unknown fields" % i)
    msgs = body.get("messages")
    need(isinstance(msgs, list) and msgs, "messages: non-empty list")
    need(msgs[0].get("role") == "user", "messages.0: first role must be user")
    prev_uses = set()
    for i, m in enumerate(msgs):
        role = m.get("role")
        need(role in ("user", "assistant"), "messages.%d.role" % i)
        if i > 0:
            need(role != msgs[i - 1]["role"],
                 "messages.%d: roles must alternate" % i)
        content = m.get("content")
        if isinstance(content, str):
            need(content, "messages.%d: empty content" % i)
            blocks = [{"type": "text", "text": content}]
        else:
            need(isinstance(content, list) and content,
                 "messages.%d: content must be a non-empty list" % i)
            blocks = content
        uses = set()
        answered = set()
        seen_other = False
        for j, b in enumerate(blocks):
            t = b.get("type")
            where = "messages.%d.content.%d" % (i, j)
            if t == "text":
                need(isinstance(b.get("text"), str) and b["text"].strip(),
                     where + ": text content blocks must be non-empty")
                seen_other = True
            elif t == "tool_use":
                need(role == "assistant", where + ": tool_use in user turn")
                need(isinstance(b.get("id"), str) and b["id"], where + ".id")
                need(NAME_RX.match(b.get("name", "")), where + ".name")
                need(isinstance(b.get("input"), dict), where + ".input")
                uses.add(b["id"])
            elif t == "tool_result":
                need(role == "user", where + ": tool_result in assistant")
                need(not seen_other, where + ": tool_result blocks must"
                     " come first in the user message")
                tid = b.get("tool_use_id")
                need(tid in prev_uses, where + ": tool_use_id %r does not"
                     " answer a tool_use of the previous assistant message"
                     % tid)
                answered.add(tid)
                need(isinstance(b.get("content"), (str, list)),
                     where + ".content")
            else:
                raise Bad(where + ": unknown block type %r" % t)
        if role == "user" and prev_uses:
            missing = prev_uses - answered
            need(not missing, "messages.%d: tool_use ids %s were found"
                 " without tool_result blocks immediately after"
                 % (i, sorted(missing)))
        prev_uses = uses if role == "assistant" else set()


def validate_openai(headers, body):
    need("application/json" in headers.get("content-type", ""),
         "content-type must be application/json")
    need(isinstance(body.get("model"), str) and body["model"], "model")
    for i, t in enumerate(body.get("tools", [])):
        need(t.get("type") == "function", "tools.%d.type" % i)
        f = t.get("function", {})
        need(NAME_RX.match(f.get("name", "")), "tools.%d.function.name" % i)
        p = f.get("parameters")
        need(isinstance(p, dict) and p.get("type") == "object",
             "tools.%d.function.parameters" % i)
        check_schema(p, "tools.%d.function.parameters" % i)
    msgs = body.get("messages")
    need(isinstance(msgs, list) and msgs, "messages: non-empty list")
    pending = set()     # call ids still to answer
    calls = set()       # call ids of the last assistant message
    for i, m in enumerate(msgs):
        role = m.get("role")
        where = "messages[%d]" % i
        need(role in ("system", "user", "assistant", "tool"), where + ".role")
        if role != "tool":
            need(not pending, "%s: an assistant message with 'tool_calls'"
                 " must be followed by tool messages responding to each"
                 " 'tool_call_id' (missing %s)" % (where, sorted(pending)))
        if role in ("system", "user"):
            need(isinstance(m.get("content"), str), where + ".content")
            calls = set()
        elif role == "assistant":
            tc = m.get("tool_calls")
            need(isinstance(m.get("content"), str) or
                 (m.get("content") is None and tc), where + ".content")
            calls = set()
            for j, c in enumerate(tc or []):
                need(c.get("type") == "function" and
                     isinstance(c.get("id"), str) and c["id"],
                     "%s.tool_calls[%d]" % (where, j))
                json.loads(c["function"]["arguments"])
                calls.add(c["id"])
            pending = set(calls)
        else:
            tid = m.get("tool_call_id")
            need(tid in calls, "%s: messages with role 'tool' must be a"
                 " response to a preceeding message with 'tool_calls'"
                 " (id %r)" % (where, tid))
            need(isinstance(m.get("content"), str), where + ".content")
            pending.discard(tid)


def new_input(kind, body):
    """The request's trailing non-assistant input, as text."""
    out = []
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "assistant":
            break
        c = m.get("content")
        parts = []
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            for b in c:
                v = b.get("text") or b.get("content") or ""
                parts.append(v if isinstance(v, str) else json.dumps(v))
        out = parts + out
    return "\n".join(out)


def pick(text):
    for i, r in enumerate(script):
        if re.search(r.get("match", ""), text, re.S):
            return script.pop(i)
    return None


def anthropic_reply(r, body):
    counter[0] += 1
    content = []
    if r.get("text"):
        content.append({"type": "text", "text": r["text"]})
    for k, c in enumerate(r.get("calls", [])):
        content.append({"type": "tool_use",
                        "id": "toolu_%03d_%d" % (counter[0], k),
                        "name": c["name"], "input": c.get("input", {})})
    return {"id": "msg_%d" % counter[0], "type": "message",
            "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": "tool_use" if r.get("calls") else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": len(json.dumps(body)) // 4,
                      "output_tokens": 20 + len(r.get("text", "")) // 4,
                      "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}}


def openai_reply(r, body):
    counter[0] += 1
    msg = {"role": "assistant", "content": r.get("text") or None}
    if r.get("calls"):
        msg["tool_calls"] = [
            {"id": "call_%03d_%d" % (counter[0], k), "type": "function",
             "function": {"name": c["name"],
                          "arguments": json.dumps(c.get("input", {}))}}
            for k, c in enumerate(r["calls"])]
    return {"id": "chatcmpl-%d" % counter[0], "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": msg,
                         "finish_reason": "tool_calls" if r.get("calls")
                         else "stop"}],
            "usage": {"prompt_tokens": len(json.dumps(body)) // 4,
                      "completion_tokens": 20 + len(r.get("text", "")) // 4,
                      "total_tokens": 0}}


def error_body(kind, etype, msg):
    if kind == "anthropic":
        return {"type": "error", "error": {"type": etype, "message": msg}}
    return {"error": {"message": msg, "type": etype, "code": None}}


async def handle(req, kind):
    raw = await req.read()
    headers = {k.lower(): v for k, v in req.headers.items()}
    entry = {"kind": kind, "path": req.path, "t": time.time(),
             "headers": {k: v for k, v in headers.items()
                         if k in ("anthropic-version", "content-type")},
             "has_key": bool(headers.get("x-api-key") or
                             headers.get("authorization"))}
    received.append(entry)
    try:
        body = json.loads(raw)
    except ValueError:
        failures.append("request body is not JSON")
        return web.json_response(error_body(kind, "invalid_request_error",
                                            "body is not JSON"), status=400)
    entry["body"] = body
    if KEY is not None:
        got = headers.get("x-api-key") if kind == "anthropic" else \
            headers.get("authorization", "")[len("Bearer "):]
        if got != KEY:
            entry["status"] = 401
            return web.json_response(error_body(
                kind, "authentication_error", "invalid x-api-key"
                if kind == "anthropic" else "Incorrect API key provided"),
                status=401)
    try:
        (validate_anthropic if kind == "anthropic" else validate_openai)(
            headers, body)
    except (Bad, KeyError, TypeError, ValueError, AttributeError) as e:
        failures.append("%s: %s" % (kind, e))
        entry["status"] = 400
        return web.json_response(error_body(kind, "invalid_request_error",
                                            str(e)), status=400)
    text = new_input(kind, body)
    entry["input"] = text
    r = pick(text)
    if r is None:
        failures.append("unscripted request; input: %s" % text[-400:])
        entry["status"] = 400
        return web.json_response(error_body(
            kind, "invalid_request_error", "fake: nothing scripted"),
            status=400)
    if r.get("hold"):
        ev = gates.setdefault(r["hold"], asyncio.Event())
        await ev.wait()
    status = r.get("status", 200)
    entry["status"] = status
    if status != 200:
        return web.json_response(error_body(kind, "rate_limit_error"
                                            if status == 429 else
                                            "api_error", r.get("error",
                                                               "error")),
                                 status=status,
                                 headers=r.get("headers", {}))
    reply = anthropic_reply(r, body) if kind == "anthropic" else \
        openai_reply(r, body)
    entry["reply"] = reply
    return web.json_response(reply)


async def messages(req):
    return await handle(req, "anthropic")


async def chat(req):
    return await handle(req, "openai")


async def add_script(req):
    script.extend((await req.json())["responses"])
    return web.json_response({"queued": len(script)})


async def release(req):
    gates.setdefault(req.match_info["name"], asyncio.Event()).set()
    return web.json_response({})


async def requests(req):
    return web.json_response(received)


async def get_failures(req):
    return web.json_response({"failures": failures, "unused": script})


async def reset(req):
    received.clear()
    failures.clear()
    script.clear()
    return web.json_response({})


async def main():
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/_script", add_script)
    app.router.add_post("/_release/{name}", release)
    app.router.add_get("/_requests", requests)
    app.router.add_get("/_failures", get_failures)
    app.router.add_post("/_reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--key")
    KEY = ap.parse_args().key
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
