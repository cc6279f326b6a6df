#!/usr/bin/python3
"""Local HTTP(S) server for tests/unit/test-http.c.

Binds 127.0.0.1 on two free ports (plain HTTP and HTTPS with a throwaway
self-signed certificate made with the openssl CLI) and prints
"<http-port> <https-port>" as its first stdout line, then serves until killed.
No signal handlers: SIGTERM ends it at once even with /slow requests open.
"""
import asyncio
import os
import socket
import ssl
import subprocess
import sys
import tempfile

from aiohttp import web


async def ok(req):
    return web.Response(body=b"hello", headers={"X-Test": "yes"})


async def echo(req):
    body = await req.read()
    return web.Response(body=body, headers={
        "X-Method": req.method,
        "X-Echo": req.headers.get("X-Echo", ""),
        "X-User-Agent": req.headers.get("User-Agent", ""),
        "X-Body-Len": str(len(body)),
    })


async def too_many(req):
    return web.Response(status=429, body=b"slow down",
                        headers={"Retry-After": "7"})


async def boom(req):
    return web.Response(status=500, body=b"boom")


async def slow(req):
    await asyncio.sleep(3)
    return web.Response(body=b"late")


BIG = bytes(range(256)) * 4096  # 1 MiB


async def big(req):
    return web.Response(body=BIG)  # with Content-Length


async def big_chunked(req):
    # No Content-Length: only the client's running count can stop it.
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(req)
    try:
        for i in range(0, len(BIG), 65536):
            await resp.write(BIG[i:i + 65536])
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client gave up at its cap, as it should
    return resp


async def drip(req):
    # A body that trickles for 3 s: a transfer caught mid-body.
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(req)
    try:
        for _ in range(30):
            await resp.write(b"x" * 1000)
            await asyncio.sleep(0.1)
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client went away mid-body, as the test wants
    return resp


async def redirect(req):
    return web.Response(status=302, body=b"moved",
                        headers={"Location": "/ok", "X-Redirect": "1"})


async def interim_expect(req):
    # A 100 Continue that carries a header of its own, which must not show
    # up among the final response's headers.
    await req.writer.write(b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n")


async def after_continue(req):
    body = await req.read()
    return web.Response(body=body, headers={"X-Final": "1"})


def make_cert(d):
    crt, key = os.path.join(d, "crt.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    return ctx


def bound():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


async def main():
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/ok", ok)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/429", too_many)
    app.router.add_get("/500", boom)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/drip", drip)
    app.router.add_get("/redirect", redirect)
    app.router.add_post("/continue", after_continue,
                        expect_handler=interim_expect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()

    plain = bound()
    await web.SockSite(runner, plain).start()
    tls_port = 0
    with tempfile.TemporaryDirectory() as d:
        try:
            ctx = make_cert(d)
        except (OSError, subprocess.CalledProcessError) as e:
            print("http-test-server: no TLS (%s)" % e, file=sys.stderr)
            ctx = None
    if ctx is not None:
        tls = bound()
        await web.SockSite(runner, tls, ssl_context=ctx).start()
        tls_port = tls.getsockname()[1]
    print(plain.getsockname()[1], tls_port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
