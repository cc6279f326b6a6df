#!/usr/bin/python3
"""bench/acks — what one Slack event costs the daemon, and how fast it is
acknowledged, against the fake Slack (Socket Mode) run inside this process.

  fsync p99     the state dir's disk, same run: N × (write 64 bytes to a
                file in the state dir + fdatasync).  The reference of the
                sequential ack: an event is acked only once recorded.
  CPU / event   N `status` messages in threads (ack + 👀 + reply each),
                one at a time, each waiting for its reply; the daemon's CPU
                from /proc/PID/task/*/schedstat (ns) over the run, minus its
                idle rate measured just before.  With --callgrind the daemon
                runs under valgrind and the same events are counted in
                instructions (callgrind_control, zeroed before and dumped
                after), which other processes' load cannot move.
  ack p99       sequential: the same N events, envelope written → ack read.
  task ack      mentions that start a task (a new thread each), one at a
                time: must ack as fast as a command.
  burst         500 mentions in threads at once: ack p99 beside 67 ms
                (10× Bolt's 672 ms on the same emulator); then bursts of
                growing size until the slowest ack passes Slack's 3 s
                deadline (or the largest size tried, then extrapolated
                linearly from it, and said so).

All timestamps are the fake's (perf_counter, taken as a frame is written
and as its ack is read).  The fake shares this process's
single thread: writing a burst's frames delays reading its acks, which
counts against the daemon, as it did for Bolt on the same emulator.
Numbers only; nothing fails on speed."""

import argparse
import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import chat  # noqa: E402

from aiohttp import web  # noqa: E402

now = chat.now
fs = chat.fs
SLACK_DEADLINE_S = 3.0


def ms(x):
    return x * 1000.0


def fsync_p99(d, n, out):
    """n x (write + fdatasync) in the state dir: latencies, and the CPU
    (this process's user + system) each costs: on a virtual disk an fsync
    is CPU too, and the daemon pays it per commit."""
    import resource
    path = os.path.join(d, "bench-fsync")
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        for i in range(n):
            t = time.perf_counter()
            os.pwrite(fd, b"%063d\n" % i, 0)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        os.close(fd)
        os.unlink(path)
    out["fsync cpu"] = (r1.ru_utime - r0.ru_utime + r1.ru_stime -
                        r0.ru_stime) / n
    return lat


def cpu_ns(pid):
    """On-CPU time of every thread of pid, in ns (schedstat: exact, unlike
    utime+stime's clock ticks)."""
    total = 0
    for f in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(f) as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def ctxsw(pid):
    """Context switches of every thread of pid (voluntary, involuntary):
    each wake-up of the loop is one, and on a virtual machine a costly
    one."""
    v = n = 0
    for f in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            with open(f) as fh:
                for line in fh:
                    if line.startswith("voluntary_ctxt_switches"):
                        v += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        n += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return v, n


def user_sys(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    v = s[s.rindex(")") + 2:].split()
    return int(v[11]) / bl.CLK_TCK, int(v[12]) / bl.CLK_TCK


class Fake(chat.BenchSlack):
    hold = None         # an asyncio.Event: Web API replies wait for it

    async def api(self, request):
        if self.hold is not None:
            await self.hold.wait()
        return await super().api(request)

    async def push_many(self, payloads):
        """Every frame written back to back, then the acks are read."""
        recs = []
        for p in payloads:
            recs.append(await self.push("events_api", p))
        return recs


def metrics(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        t = r.read().decode()
    return (bl.metric(t, "switchboard_inbox_commits_total"),
            bl.metric(t, "switchboard_inbox_processed_total"),
            bl.metric(t, "switchboard_inbound_ack_seconds_sum"),
            bl.metric(t, "switchboard_inbound_ack_seconds_count"))


def cg_total(out):
    """The Ir total of the newest callgrind dump named out.*"""
    files = sorted(glob.glob(out + "*"), key=os.path.getmtime)
    for f in reversed(files):
        with open(f) as fh:
            for line in fh:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    return None


async def run(a, tmp, out):
    fake = Fake(argparse.Namespace(
        bot_token="xoxb-bench", app_token="xapp-bench",
        redeliver_ms=600000, close_after_ms=600000, echo=False,
        limits="lifted"))
    fake.posts_by = {}

    orig_post = fake.m_chat_postMessage

    async def post(args):
        fake.posts_by.setdefault(args.get("channel"), []).append(now())
        return await orig_post(args)
    fake.m_chat_postMessage = post
    app = web.Application()
    app.router.add_post("/api/{method}", fake.api)
    app.router.add_get("/socket", fake.socket)
    runner, fake.port = await chat.serve(app)
    conf = ('slack = { enabled = true; mode = "socket"; '
            'bot_token = "env:SB_SLACK_BOT"; app_token = "env:SB_SLACK_APP";'
            ' signing_secret = "env:SB_SLACK_SECRET";'
            ' api_url = "http://127.0.0.1:%d/api/"; };' % fake.port)
    cgout = os.path.join(tmp, "callgrind.out")
    wrapper = None
    if a.callgrind:
        wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" +
                   cgout + ".%p"]
    hp = bl.sb.free_port()
    d = bl.sb.Daemon(tmp, chat.AGENTS, adapters=conf, wrapper=wrapper,
                     http="127.0.0.1:%d" % hp,
                     allowed='"console:me", "slack:U1"',
                     env={"SB_SLACK_BOT": "xoxb-bench",
                          "SB_SLACK_APP": "xapp-bench",
                          "SB_SLACK_SECRET": "x" * 32})
    chat.add_route(d, "slack")
    d.start()
    seq = [0]

    def ts():
        seq[0] += 1
        return "1800000000.%06d" % seq[0]

    def replies(ch, after):
        return [t for t in fake.posts_by.get(ch, []) if t > after]

    slow = 20 if a.callgrind else 1
    try:
        out["fsync"] = fsync_p99(d.state if os.path.isdir(d.state) else tmp,
                                 a.fsyncs, out)
        await chat.wait_for(lambda: fake.live_sockets(), 15 * slow,
                            "a Slack socket")
        await asyncio.sleep(0.5)
        roots = {}
        for i in range(a.threads):
            ch = "C%04d" % i
            roots[ch] = ts()
            await fake.push("events_api", fake.event_callback(
                chat.slack_msg(ch, roots[ch], "<@%s>" % fs.BOT_USER,
                               mention=True)))
        await chat.wait_for(lambda: all(fake.posts_by.get(ch)
                                        for ch in roots), 30 * slow,
                            "the threads' first replies")
        await asyncio.sleep(3.0)
        pid = d.proc.pid
        if a.callgrind:
            subprocess.run(["callgrind_control", "-z", str(pid)],
                           stdout=subprocess.DEVNULL, check=False)
        # Idle rate: what the daemon costs doing nothing (timers, pings).
        c0, t0 = cpu_ns(pid), now()
        await asyncio.sleep(2.0)
        idle_rate = (cpu_ns(pid) - c0) / (now() - t0)

        # Sequential status messages, each waiting for its reply.
        chans = sorted(roots)
        last = {ch: 0.0 for ch in chans}
        recs = []
        tracer = None
        if a.perf:
            tracer = subprocess.Popen(["perf", "record", "-e", "cpu-clock",
                                       "-F", "4000", "-g", "-o", a.perf,
                                       "-p", str(pid)],
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        elif a.strace:
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", a.strace,
                                       "-p", str(pid)],
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        if tracer:
            await asyncio.sleep(1.0)
        c0, t0 = cpu_ns(pid), now()
        us0 = user_sys(pid)
        cs0 = ctxsw(pid)
        m0 = metrics(hp)
        for k in range(a.events):
            ch = chans[k % len(chans)]
            wait = last[ch] + a.gap - now()
            if wait > 0:
                await asyncio.sleep(wait)
            sent = now()
            r = await fake.push("events_api", fake.event_callback(
                chat.slack_msg(ch, ts(), "status", thread=roots[ch])))
            await chat.wait_for(lambda: r.get("acked") and replies(ch, sent),
                                10 * slow, "a reply")
            last[ch] = now()
            recs.append(r)
        await asyncio.sleep(0.3)        # the reply's own bookkeeping
        c1, t1 = cpu_ns(pid), now()
        us1 = user_sys(pid)
        cs1 = ctxsw(pid)
        out["ctxsw"] = ((cs1[0] - cs0[0]) / a.events,
                        (cs1[1] - cs0[1]) / a.events)
        m1 = metrics(hp)
        if m1[3] > m0[3]:
            out["daemon ack"] = (m1[2] - m0[2]) / (m1[3] - m0[3])
        if tracer:
            tracer.send_signal(2)
            tracer.wait()
        out["user sys"] = ((us1[0] - us0[0]) / a.events,
                           (us1[1] - us0[1]) / a.events)
        if a.callgrind:
            subprocess.run(["callgrind_control", "-d", str(pid)],
                           stdout=subprocess.DEVNULL, check=False)
            await asyncio.sleep(1.0)
            out["instr"] = cg_total(cgout)
            if a.keep:
                for f in glob.glob(cgout + "*"):
                    shutil.copy(f, a.keep)
        out["cpu raw"] = (c1 - c0) / 1e9 / a.events
        out["cpu"] = ((c1 - c0) - idle_rate * (t1 - t0)) / 1e9 / a.events
        out["idle"] = idle_rate / 1e9
        out["seq ack"] = [r["acked_at"] - r["sent_at"] for r in recs]
        if a.callgrind:
            return

        # Task mentions: each a new thread whose agent starts.
        task = []
        for k in range(a.tasks):
            ch = "T%04d" % k
            r = await fake.push("events_api", fake.event_callback(
                chat.slack_msg(ch, ts(), "<@%s> fix the login page %d"
                               % (fs.BOT_USER, k), mention=True)))
            await chat.wait_for(lambda: r.get("acked"), 10, "an ack")
            task.append(r["acked_at"] - r["sent_at"])
            # As the commands were: each alone (its agent starting meanwhile
            # is the work after the ack, not the ack's).
            await asyncio.sleep(a.task_gap)
        out["task ack"] = task
        print("  task acks in order (ms): " + " ".join("%.1f" % ms(x) for x in task[:10]))
        await asyncio.sleep(2.0)

        # Bursts of mentions in the threads: 500, then growing.
        sizes = [500] + [s for s in a.sizes if s > 500]
        out["bursts"] = []
        for n in sizes:
            pays = [fake.event_callback(chat.slack_msg(
                chans[k % len(chans)], ts(), "<@%s> status" % fs.BOT_USER,
                thread=roots[chans[k % len(chans)]], mention=True))
                for k in range(n)]
            m0 = metrics(hp)
            if a.hold:
                fake.hold = asyncio.Event()
            rs = await fake.push_many(pays)
            await chat.wait_for(lambda: all(r.get("acked") for r in rs),
                                120, "the burst's acks")
            m1 = metrics(hp)
            if fake.hold is not None:
                fake.hold.set()
                fake.hold = None
            print("  (during the acks: %d inbox commits, %d rows processed)"
                  % (m1[0] - m0[0], m1[1] - m0[1]))
            lat = [r["acked_at"] - r["sent_at"] for r in rs]
            write = rs[-1]["sent_at"] - rs[0]["sent_at"]
            out["bursts"].append((n, lat, write))
            print("  burst %5d: ack p50 %.1f / p99 %.1f / max %.1f ms"
                  " (the fake took %.0f ms to write the frames)" % (
                      n, ms(bl.pct(lat, 50)), ms(bl.pct(lat, 99)),
                      ms(max(lat)), ms(write)), flush=True)
            if max(lat) > SLACK_DEADLINE_S:
                break
            # Let the daemon drain what the burst queued (replies are
            # paced) before the next: wait until it is idle again.
            await asyncio.sleep(1.0)
            prev = cpu_ns(pid)
            for _ in range(600):
                await asyncio.sleep(0.5)
                cur = cpu_ns(pid)
                if cur - prev < 0.02 * 0.5e9:
                    break
                prev = cur
    finally:
        d.kill9()
        await runner.cleanup()


def report(a, out):
    f = out.get("fsync")
    if f:
        print("state dir fdatasync: p50 %.2f / p99 %.2f / max %.2f ms (n=%d),"
              " %.3f ms of CPU each" % (ms(bl.pct(f, 50)), ms(bl.pct(f, 99)),
                                        ms(max(f)), len(f),
                                        ms(out["fsync cpu"])))
    if "cpu" in out:
        print("CPU per status event: %.3f ms (raw %.3f ms; idle %.2f %% of a"
              " core subtracted), n=%d" % (ms(out["cpu"]), ms(out["cpu raw"]),
                                          100 * out["idle"], a.events))
        print("  of which user %.3f ms, system %.3f ms (utime/stime)" % (
            ms(out["user sys"][0]), ms(out["user sys"][1])))
        if "ctxsw" in out:
            print("  context switches per event: %.1f voluntary, %.1f"
                  " involuntary (all threads)" % out["ctxsw"])
        bl.row("CPU per command event (ack + 👀 + reply)",
               "%.3f ms" % ms(out["cpu"]),
               "%d sequential `status` in threads, daemon schedstat minus"
               " idle rate (%.2f %% of a core); 1 fsync per event (the"
               " record, its work and the reply's post marker in one commit)"
               " at %.3f ms CPU on this disk" % (
                   a.events, 100 * out["idle"],
                   ms(out.get("fsync cpu", 0))),
               "<= 0.3 ms", bl.verdict(ms(out["cpu"]), 0.3))
    if out.get("instr"):
        per = out["instr"] / a.events
        print("instructions per status event: %.0f (callgrind)" % per)
        bl.row("instructions per command event", "%.2f M" % (per / 1e6),
               "callgrind over %d sequential `status`, idle included" %
               a.events, "", "")
    if "seq ack" in out and f:
        s = out["seq ack"]
        ref = ms(bl.pct(f, 99)) + 0.3
        print("sequential ack: p50 %.2f / p99 %.2f / max %.2f ms" % (
            ms(bl.pct(s, 50)), ms(bl.pct(s, 99)), ms(max(s))))
        if "daemon ack" in out:
            print("  of which in the daemon, frame parsed -> ack queued:"
                  " mean %.2f ms (switchboard_inbound_ack_seconds)" %
                  ms(out["daemon ack"]))
        slow = sorted(range(len(s)), key=lambda i: -s[i])[:6]
        print("  slowest (event #: ms): " + ", ".join(
            "#%d: %.2f" % (i, ms(s[i])) for i in sorted(slow)))
        bl.row("sequential ack p50 / p99",
               "%.2f / %.2f ms" % (ms(bl.pct(s, 50)), ms(bl.pct(s, 99))),
               "%d `status`, one at a time, fake's clock; fdatasync p99 of"
               " the state dir %.2f ms, same run" % (len(s),
                                                    ms(bl.pct(f, 99))),
               "p99 <= fsync p99 + 0.3 = %.2f ms" % ref,
               bl.verdict(ms(bl.pct(s, 99)), ref))
    if "task ack" in out:
        t = out["task ack"]
        s = out["seq ack"]
        print("task mention ack: p50 %.2f / p99 %.2f / max %.2f ms" % (
            ms(bl.pct(t, 50)), ms(bl.pct(t, 99)), ms(max(t))))
        bl.row("task mention ack p50 / p99",
               "%.2f / %.2f ms" % (ms(bl.pct(t, 50)), ms(bl.pct(t, 99))),
               "%d mentions that start an agent, one at a time" % len(t),
               "as a command: %.2f / %.2f ms" % (ms(bl.pct(s, 50)),
                                                 ms(bl.pct(s, 99))),
               "met" if bl.pct(t, 99) <= max(bl.pct(s, 99), bl.pct(f, 99)) *
               1.2 + 0.0005 else "MISSED")
    bursts = out.get("bursts") or []
    if bursts:
        n, lat, _ = bursts[0]
        bl.row("burst %d mentions: ack p99" % n,
               "%.1f ms" % ms(bl.pct(lat, 99)),
               "all frames written at once by the fake, frame written ->"
               " ack read", "<= 67 ms (Bolt 672 ms / 10)",
               bl.verdict(ms(bl.pct(lat, 99)), 67.0))
        n, lat, _ = bursts[-1]
        mx = max(lat)
        if mx > SLACK_DEADLINE_S:
            val = "%d (slowest ack %.2f s)" % (n, mx)
            how = "bursts of %s: the first whose slowest ack passed 3 s" % (
                ", ".join(str(b[0]) for b in bursts))
        else:
            val = "~%d extrapolated (%d: slowest ack %.0f ms)" % (
                n * SLACK_DEADLINE_S / mx, n, ms(mx))
            how = ("largest burst tried %d, slowest ack %.0f ms; linear"
                   " extrapolation to 3 s" % (n, ms(mx)))
        bl.row("burst size before an ack passes 3 s", val, how,
               "Bolt: 1,400-1,800", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=20)
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--gap", type=float, default=1.1,
                    help="seconds between two events of one thread")
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--task-gap", type=float, default=0.3,
                    help="seconds between two task mentions")
    ap.add_argument("--fsyncs", type=int, default=300)
    ap.add_argument("--sizes", default="2000,4000,8000,12000,16000")
    ap.add_argument("--perf", help="perf record (cpu-clock) the daemon"
                    " over the sequential events into this file")
    ap.add_argument("--strace", help="strace -c the daemon over the"
                    " sequential events into this file")
    ap.add_argument("--hold", action="store_true",
                    help="bursts: the fake answers no Web API call until"
                    " every ack of the burst is in (its own CPU then delays"
                    " no ack)")
    ap.add_argument("--keep", help="copy the callgrind dumps to this dir")
    ap.add_argument("--callgrind", action="store_true",
                    help="the daemon under callgrind: instructions per"
                    " event (slow; no ack or burst figures)")
    a = ap.parse_args()
    a.sizes = [int(x) for x in a.sizes.split(",")]
    if a.callgrind:
        a.events = min(a.events, 60)
        a.gap = 3.0
    tmp = tempfile.mkdtemp(prefix="sb-bench-acks-")
    out = {}
    try:
        asyncio.run(run(a, tmp, out))
    except Exception as e:  # noqa: BLE001 — report what was measured
        print("acks: %s" % e)
        try:
            print(open(os.path.join(tmp, "stderr.log")).read()[-2000:])
        except OSError:
            pass
    finally:
        report(a, out)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
