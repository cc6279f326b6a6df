#!/bin/sh
# Attack: open 256 connections to the agent socket (the daemon's global cap)
# and hold them, to starve every other agent.  flood.txt: how many the
# daemon kept open.
exec /usr/bin/python3 - <<'PY'
import os, socket, time
held = []
for _ in range(256):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(os.environ["SWITCHBOARD_SOCKET"])
        held.append(s)
    except OSError:
        s.close()
time.sleep(0.5)
kept = 0
for s in held:
    s.setblocking(False)
    try:
        data = s.recv(4096)
        kept += 0 if data == b"" or b"too many" in data else 1
    except BlockingIOError:
        kept += 1
    except OSError:
        pass
with open("flood.txt", "w") as f:
    f.write("kept %d\n" % kept)
while True:
    time.sleep(1)
PY
