#!/usr/bin/python3
"""bench/web — WebSocket fan-out of the web chat: P open pages (plain
WebSocket clients, signed in with the cookie like a browser, resumed with
hello), N agents updating their status cards: the daemon's CPU share and the
latency from an agent's `progress` to the card change in every page.

Setup: the real daemon with adapters.web, render.card_interval_ms = 0 (so
the figure is the pipeline's own latency, not the deliberate coalescing of
card edits that protects Slack's rate limits); N web threads each start one
agent, a small Python script that keeps one connection to the agent socket
(the protocol `switchboard agent` speaks) and, once a start file appears,
sends RATE progress steps a second for --seconds, each carrying its wall
clock send time.  The P pages (one asyncio process) record when each step
first shows in a card.  Latency = page receive time − step send time (same
machine, same clock); "every page" = per step, the time until the last of
the P pages had it.  CPU share = utime+stime delta of the daemon over the
streaming window / wall time.  Numbers only: nothing fails on speed."""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

import websockets  # noqa: E402

AGENT = r'''#!/usr/bin/python3
import json, os, socket, sys, time
go, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["SWITCHBOARD_SOCKET"])
f = s.makefile("rw")
tok, me = os.environ["SWITCHBOARD_AGENT_TOKEN"], os.environ["SWITCHBOARD_AGENT_ID"]
n = 0
def call(op, **kw):
    global n
    n += 1
    f.write(json.dumps(dict(v=1, id=n, op=op, token=tok, **kw)) + "\n")
    f.flush()
    return json.loads(f.readline())
call("progress", text="ready")
while not os.path.exists(go):
    time.sleep(0.05)
end = time.time() + secs
i = 0
while time.time() < end:
    i += 1
    call("progress", text="tick %s %d %.6f" % (me, i, time.time()))
    time.sleep(1.0 / rate)
call("done", summary="ticked %d" % i)
'''

TICK = re.compile(r"tick (\d+) (\d+) (\d+\.\d+)")


def sign_in(base, token):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    try:
        urllib.request.build_opener(NoRedirect).open(
            base + "/?token=" + token, timeout=10)
    except urllib.error.HTTPError as e:
        return e.headers["Set-Cookie"].split(";")[0]
    raise RuntimeError("no cookie")


async def pages(ks, port, cookie, go, stop_at, out):
    """Pages ks in this process; each records when a step first shows."""
    hdrs = [("Origin", "http://127.0.0.1:%d" % port), ("Cookie", cookie)]
    seen = {}

    async def page(k):
        async with websockets.connect(
                "ws://127.0.0.1:%d/ws" % port, extra_headers=hdrs,
                ping_interval=None, max_size=None) as ws:
            await ws.send(json.dumps({"type": "hello", "last": 0}))
            while time.time() < stop_at.value or stop_at.value == 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                t = time.time()
                # The regex on the raw frame: parsing JSON for every one
                # of 50,000 deliveries would make this client the bottleneck.
                for ag, i, sent in TICK.findall(raw):
                    key = (ag, int(i), k)
                    if key not in seen:
                        seen[key] = t - float(sent)
    go.release()
    await asyncio.gather(*(page(k) for k in ks))
    out.put(seen)


def pages_proc(ks, port, cookie, go, stop_at, out):
    asyncio.run(pages(ks, port, cookie, go, stop_at, out))


def run(a, tmp):
    agent = bl.sb.write_script(tmp, "agent.py", AGENT)
    go = os.path.join(tmp, "go")
    port = bl.sb.free_port()
    # Sandboxed as agents are by default: the go file is outside it.
    d = bl.sb.Daemon(tmp, [("tick", [agent, go, str(a.rate),
                                     str(a.seconds)], 600,
                            'sandbox_paths = [ "ro:%s" ];' % tmp)],
                     allowed='"web:me"', http="127.0.0.1:%d" % port,
                     adapters='web = { enabled = true; };')
    bl.quiet_log(d)
    with open(d.conf) as f:
        conf = f.read()
    conf = conf.replace('adapter = "console"', 'adapter = "web"')
    conf = re.sub(r"max_agents = \d+; max_agents_per_conversation = \d+;",
                  "max_agents = %d; max_agents_per_conversation = 2;"
                  % (a.agents + 5), conf)
    conf = conf.replace("card_interval_ms = 200", "card_interval_ms = 0")
    with open(d.conf, "w") as f:
        f.write(conf)
    d.start()
    tokf = os.path.join(d.state, "web-token")
    for _ in range(200):
        if os.path.exists(tokf):
            break
        time.sleep(0.05)
    time.sleep(0.2)
    cookie = sign_in("http://127.0.0.1:%d" % port, open(tokf).read().strip())

    async def main():
        hdrs = [("Origin", "http://127.0.0.1:%d" % port), ("Cookie", cookie)]
        # N threads, one agent each, started from one page.
        async with websockets.connect("ws://127.0.0.1:%d/ws" % port,
                                      extra_headers=hdrs,
                                      ping_interval=None,
                                      max_size=None) as ws:
            await ws.send(json.dumps({"type": "hello", "last": 0}))
            for i in range(a.agents):
                await ws.send(json.dumps({"type": "post",
                                          "text": "bench thread %d" % i}))
            readyc = set()
            deadline = time.time() + 120
            while len(readyc) < a.agents and time.time() < deadline:
                try:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                except asyncio.TimeoutError:
                    continue
                for it in m.get("items", []):
                    if "• ready" in it.get("text", ""):
                        readyc.add(it["id"])
        return len(readyc)
    started = asyncio.run(main())
    # The pages in a few processes, so the clients keep up.
    ctx = mp.get_context("fork")
    out, stop_at, sem = ctx.Queue(), ctx.Value("d", 0.0), ctx.Semaphore(0)
    procs = [ctx.Process(target=pages_proc, args=(
        list(range(k, a.pages, a.procs)), port, cookie, sem, stop_at, out))
        for k in range(a.procs)]
    for p in procs:
        p.start()
    for p in procs:
        sem.acquire()
    time.sleep(2.0)      # every page connected and replayed
    c0, t0 = bl.cpu_s(d.proc.pid), time.time()
    open(go, "w").close()
    time.sleep(a.seconds)
    c1, t1 = bl.cpu_s(d.proc.pid), time.time()
    stop_at.value = time.time() + 2.0     # the last steps reach every page
    seen = {}
    for p in procs:
        seen.update(out.get())
    for p in procs:
        p.join()
    cpu = (c1 - c0) / (t1 - t0)
    d.stop(timeout=30)
    return seen, cpu, started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1.0,
                    help="progress steps per second per agent")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=2,
                    help="client processes the pages are spread over")
    ap.add_argument("--tmpfs", action="store_true",
                    help="state dir in /dev/shm: without the disk's fsync "
                    "cost of the outbox's durable writes")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sb-bench-web-",
                           dir="/dev/shm" if a.tmpfs else None)
    try:
        seen, cpu, started = run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lat = [v * 1000 for v in seen.values()]
    steps = {}
    for (ag, i, k), v in seen.items():
        steps.setdefault((ag, i), []).append(v * 1000)
    full = [max(v) for v in steps.values() if len(v) == a.pages]
    partial = sum(1 for v in steps.values() if len(v) != a.pages)
    print("agents started %d/%d; steps seen %d (%d not in every page); "
          "page deliveries %d" % (started, a.agents, len(steps), partial,
                                  len(lat)))
    if not lat:
        print("no measurements")
        return
    print("progress → card in a page: p50 %.1f ms  p99 %.1f ms  max %.1f ms"
          % (bl.pct(lat, 50), bl.pct(lat, 99), max(lat)))
    if full:
        print("progress → card in every page: p50 %.1f ms  p99 %.1f ms"
              % (bl.pct(full, 50), bl.pct(full, 99)))
    print("daemon CPU while streaming: %.1f%% of one core" % (cpu * 100))
    method = ("bench/web: %d pages, %d agents x %.0f steps/s, %.0fs, "
              "card_interval_ms=0%s" % (a.pages, a.agents, a.rate, a.seconds,
                                        ", state on tmpfs" if a.tmpfs
                                        else ""))
    tag = " (tmpfs)" if a.tmpfs else ""
    bl.row("web fan-out: progress → card, every page, p99" + tag,
           "%.1f ms" % bl.pct(full or lat, 99), method, "< 250 ms",
           bl.verdict(bl.pct(full or lat, 99), 250))
    bl.row("web fan-out: progress → card, one page, p50" + tag,
           "%.1f ms" % bl.pct(lat, 50), method)
    bl.row("web fan-out: daemon CPU" + tag, "%.1f%% of a core" % (cpu * 100),
           method, "< 50%", bl.verdict(cpu * 100, 50))


if __name__ == "__main__":
    main()
