#!/usr/bin/python3
"""Fake GitHub REST API for tests/e2e/test_webhooks.py.

Binds 127.0.0.1 on a free port and prints it as the first stdout line.
POST /repos/{owner}/{repo}/issues/{n}/comments answers 201 with a comment
object, like GitHub, and refuses requests without a bearer token (401) or a
User-Agent (403, as GitHub does).  GET /_requests lists what was received.
"""
import asyncio
import json
import socket
import sys

from aiohttp import web

received = []


async def comment(req):
    body = await req.text()
    entry = {
        "path": req.path,
        "auth": req.headers.get("Authorization", ""),
        "accept": req.headers.get("Accept", ""),
        "user_agent": req.headers.get("User-Agent", ""),
        "content_type": req.headers.get("Content-Type", ""),
        "body": body,
    }
    received.append(entry)
    if not entry["auth"].startswith("Bearer "):
        return web.json_response({"message": "Requires authentication"},
                                 status=401)
    if not entry["user_agent"]:
        return web.json_response({"message": "User-Agent required"},
                                 status=403)
    try:
        text = json.loads(body)["body"]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"message": "Problems parsing JSON"},
                                 status=400)
    return web.json_response({"id": len(received), "body": text,
                              "html_url": "https://github.com" + req.path},
                             status=201)


async def requests(req):
    return web.json_response(received)


async def main():
    app = web.Application()
    app.router.add_post("/repos/{owner}/{repo}/issues/{n}/comments", comment)
    app.router.add_get("/_requests", requests)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
