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
# Refused ones get an error line and EOF; wait until that settles (no new
# refusal for 2 s) so a slow daemon is not mistaken for a generous one.
refused = set()
last, start = time.time(), time.time()
while time.time() - last < 2 and time.time() - start < 30:
    for i, s in enumerate(held):
        if i in refused:
            continue
        s.setblocking(False)
        try:
            data = s.recv(4096)
            if data == b"" or b"too many" in data:
                refused.add(i)
                last = time.time()
        except BlockingIOError:
            pass
        except OSError:
            refused.add(i)
            last = time.time()
    time.sleep(0.05)
kept = len(held) - len(refused)
with open("flood.txt", "w") as f:
    f.write("kept %d\n" % kept)
while True:
    time.sleep(1)
PY
