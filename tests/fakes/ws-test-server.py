#!/usr/bin/python3
"""WebSocket test peer for tests/unit/test-ws.c (Debian python3-websockets 10.x).

Binds 127.0.0.1:0 and prints the port on the first stdout line.  Paths:
  /echo   echoes every text message
  /drop   closes the TCP connection abruptly after the first message
  /close  sends close code 4001 with reason "bye"
  /deaf   never pongs and never sends anything
With --tls CERT KEY it serves wss:// instead.
Runs until killed.
"""
import asyncio
import ssl
import sys

import websockets
from websockets.legacy.server import WebSocketServerProtocol


class Protocol(WebSocketServerProtocol):
    async def pong(self, data=b""):
        # The library answers pings through this method; /deaf must not.
        if self.path == "/deaf":
            return
        await super().pong(data)


async def handler(ws, path):
    if path == "/echo":
        async for msg in ws:
            await ws.send(msg)
    elif path == "/drop":
        await ws.recv()
        ws.transport.abort()
    elif path == "/close":
        await ws.close(code=4001, reason="bye")
    elif path == "/deaf":
        await ws.wait_closed()
    else:
        await ws.close(code=4004, reason="no such path")


async def main():
    ctx = None
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    server = await websockets.serve(handler, "127.0.0.1", 0, ssl=ctx,
                                    create_protocol=Protocol,
                                    ping_interval=None, max_size=None)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
