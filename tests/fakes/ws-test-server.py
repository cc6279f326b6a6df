#!/usr/bin/python3
"""WebSocket test peer for tests/unit/test-ws.c (Debian python3-aiohttp).

Binds 127.0.0.1:0 and prints the port on the first stdout line.  Paths:
  /echo   echoes every text message (and answers pings)
  /drop   closes the TCP connection abruptly after the first message
  /close  sends close code 4001 with reason "bye"
  /deaf   never pongs and never sends anything
With --tls CERT KEY it serves wss:// instead.  Runs until killed.
"""
import asyncio
import ssl
import sys

from aiohttp import WSMsgType, web


async def handler(request):
    path = request.path
    # autoping=False: pings reach us as messages and get no automatic pong.
    ws = web.WebSocketResponse(autoping=(path != "/deaf"), max_msg_size=0)
    await ws.prepare(request)
    if path == "/echo":
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
    elif path == "/drop":
        await ws.receive()
        request.transport.abort()
    elif path == "/close":
        await ws.close(code=4001, message=b"bye")
    elif path == "/deaf":
        async for msg in ws:
            pass
    else:
        await ws.close(code=4004, message=b"no such path")
    return ws


async def main():
    ctx = None
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
