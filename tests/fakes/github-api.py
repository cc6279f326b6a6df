#!/usr/bin/python3
"""Fake GitHub REST API for tests/e2e/test_webhooks.py.

Binds 127.0.0.1 on a free port and prints it as the first stdout line.
POST /repos/{owner}/{repo}/issues/{n}/comments answers 201 with a comment
object, like GitHub, and refuses requests without a bearer token (401) or a
User-Agent (403, as GitHub does).  GET /_requests lists what was received.

Pull requests (docs "Create a pull request", "List pull requests"):
POST /repos/{owner}/{repo}/pulls {title, head, base, body} → 201 with
number and html_url; 422 "Validation Failed" with errors[].message "A pull
request already exists for owner:head." when an open PR has that head;
GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=open lists them.
With --token T, any other bearer token gets 401 "Bad credentials".
POST /_pulls {"head", "base"} creates one as if someone else had.
"""
import asyncio
import json
import socket
import sys

from aiohttp import web

received = []
pulls = []      # {"number", "head", "base", "title", "body", "html_url", "repo"}
TOKEN = sys.argv[sys.argv.index("--token") + 1] if "--token" in sys.argv \
    else None


def denied(req):
    auth = req.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or (TOKEN and auth[7:] != TOKEN):
        return web.json_response({"message": "Bad credentials",
                                  "documentation_url": "https://docs.github"
                                  ".com/rest"}, status=401)
    if not req.headers.get("User-Agent"):
        return web.json_response({"message": "User-Agent required"},
                                 status=403)
    return None


def new_pull(repo, head, base, title="", body=""):
    n = len(pulls) + 1
    pr = {"number": n, "head": head, "base": base, "title": title,
          "body": body, "repo": repo, "state": "open",
          "html_url": "https://github.com/%s/pull/%d" % (repo, n)}
    pulls.append(pr)
    return pr


async def create_pull(req):
    repo = "%s/%s" % (req.match_info["owner"], req.match_info["repo"])
    body = await req.text()
    received.append({"path": req.path, "method": "POST", "body": body,
                     "auth": req.headers.get("Authorization", "")})
    d = denied(req)
    if d is not None:
        return d
    try:
        a = json.loads(body)
        head, base, title = a["head"], a["base"], a["title"]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"message": "Problems parsing JSON"},
                                 status=400)
    for p in pulls:
        if p["repo"] == repo and p["head"] == head and p["state"] == "open":
            return web.json_response({
                "message": "Validation Failed",
                "errors": [{"resource": "PullRequest", "code": "custom",
                            "message": "A pull request already exists for "
                            "%s:%s." % (req.match_info["owner"], head)}],
                "documentation_url": "https://docs.github.com/rest"},
                status=422)
    pr = new_pull(repo, head, base, title, a.get("body") or "")
    return web.json_response(pr, status=201)


async def list_pulls(req):
    repo = "%s/%s" % (req.match_info["owner"], req.match_info["repo"])
    received.append({"path": req.path_qs, "method": "GET"})
    d = denied(req)
    if d is not None:
        return d
    head = req.query.get("head", "")
    owner, _, branch = head.partition(":")
    out = [p for p in pulls if p["repo"] == repo and p["state"] == "open"
           and (not head or (owner == req.match_info["owner"] and
                             p["head"] == branch))]
    return web.json_response(out)


async def t_pulls(req):
    a = await req.json()
    return web.json_response(new_pull(a.get("repo", "octo/webapp"),
                                      a["head"], a.get("base", "main")))


async def t_list(req):
    return web.json_response(pulls)


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
    app.router.add_post("/repos/{owner}/{repo}/pulls", create_pull)
    app.router.add_get("/repos/{owner}/{repo}/pulls", list_pulls)
    app.router.add_post("/_pulls", t_pulls)
    app.router.add_get("/_pulls", t_list)
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
