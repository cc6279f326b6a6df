#!/usr/bin/python3
"""bench/agents — 50 agents each streaming 1 MB/s of Claude Code
stream-json through the claude driver: the daemon's CPU share and RSS.

The agents are bench/stream-claude (a `claude` that replays a realistic
turn — assistant text, tool_use Read/Edit/Bash, tool_result with file
contents, ~3 KB per step — at BENCH_RATE bytes/s), started the normal way:
50 console threads, each `new` starts one through the claude driver in its
own worktree.  They wait for a start file, then stream together for
--seconds; the daemon parses every line, turns tool_use into progress steps
and coalesces the status cards (card_interval_ms 200; card edits go to the
console).  CPU share = (utime + stime) delta from /proc/PID/stat over the
wall time of the middle of the run (first and last second left out); RSS is
the peak VmRSS sampled every 0.25 s.  The streams' own achieved rate is
reported too: if the daemon cannot keep up, the pipes fill and the writers
slow down."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

STREAM = os.path.join(bl.ROOT, "bench", "stream-claude")


def cpu_us(pid):
    """(utime, stime) of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) / bl.CLK_TCK, int(fields[12]) / bl.CLK_TCK


def run(a, tmp):
    go = os.path.join(tmp, "go")
    report = os.path.join(tmp, "report")
    wrapper = None
    if a.callgrind:
        wrapper = ["valgrind", "--tool=callgrind",
                   "--callgrind-out-file=" + a.callgrind]
    d = bl.sb.Daemon(tmp, [("claude", [STREAM], 120)], wrapper=wrapper,
                     env={"BENCH_GO": go, "BENCH_REPORT": report,
                          "BENCH_RATE": str(a.rate),
                          "BENCH_SECONDS": str(a.seconds)})
    with open(d.conf) as f:
        conf = f.read()
    # The replayer writes its report outside its worktree, which the
    # sandbox (bwrap) would not let it: the bench measures parsing, not
    # the sandbox.
    conf = conf.replace('driver = "command";',
                        'driver = "claude"; sandbox = "off";')
    conf = re.sub(r"max_agents = 4;", "max_agents = %d;" % (a.agents + 4),
                  conf)
    with open(d.conf, "w") as f:
        f.write(conf)
    bl.quiet_log(d)
    d.start()
    pid = d.proc.pid
    try:
        for i in range(a.agents):
            d.send("new stream %d" % i)
        # Every agent is running once its init line is in (system/init).
        deadline = time.time() + (600 if a.callgrind else 60)
        while time.time() < deadline:
            if sum(1 for l in d.lines if "Started #" in l) >= a.agents:
                break
            time.sleep(0.1)
        started = sum(1 for l in d.lines if "Started #" in l)
        time.sleep(1.0)
        if a.callgrind:
            subprocess.run(["callgrind_control", "-z", str(pid)],
                           stdout=subprocess.DEVNULL, check=False)
        idle_cpu = bl.cpu_s(pid)
        open(go, "w").close()
        t_go = time.time()
        prof = None
        if a.perf:
            # The profile of the middle of the run (see the README).
            prof = subprocess.Popen(["perf", "record", "-g", "-p",
                                        str(pid), "-o", a.perf, "--",
                                        "sleep", str(max(1, a.seconds - 2))])
        peak = 0
        c0 = w0 = c1 = w1 = None
        while time.time() - t_go < a.seconds + 0.5:
            el = time.time() - t_go
            peak = max(peak, bl.rss_kb(pid))
            if c0 is None and el >= 1.0:
                c0, w0 = cpu_us(pid), time.time()
            if c0 is not None and el <= a.seconds - 1.0:
                c1, w1 = cpu_us(pid), time.time()
            time.sleep(0.25)
        if prof is not None:
            prof.wait()
        deadline = time.time() + (600 if a.callgrind else 30)
        while time.time() < deadline:
            try:
                with open(report) as f:
                    if len(f.readlines()) >= started:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        if a.callgrind:
            subprocess.run(["callgrind_control", "-d", str(pid)],
                           stdout=subprocess.DEVNULL, check=False)
            time.sleep(2.0)
        tot_b = tot_s = 0
        n = 0
        with open(report) as f:
            for l in f:
                b, s = l.split()
                tot_b += int(b)
                tot_s = max(tot_s, float(s))
                n += 1
        user = (c1[0] - c0[0]) / (w1 - w0)
        share = user + (c1[1] - c0[1]) / (w1 - w0)
        return started, share, user, peak, tot_b, tot_s, n, idle_cpu
    finally:
        d.kill9()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--rate", type=int, default=1 << 20)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--perf", help="perf record the daemon into this file")
    ap.add_argument("--callgrind", metavar="OUT",
                    help="run the daemon under callgrind (dumps OUT.N: the"
                    " streaming only); instructions per MB streamed")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sb-bench-agents-")
    try:
        started, share, user, peak, tot_b, tot_s, n, _ = run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.callgrind:
        import glob
        ir = None
        for f in sorted(glob.glob(a.callgrind + ".*"),
                        key=os.path.getmtime):
            with open(f) as fh:
                for ln in fh:
                    if ln.startswith(("summary:", "totals:")):
                        ir = int(ln.split()[1])
        if ir:
            print("callgrind: %.1f M instructions per MB streamed (%d MB)"
                  % (ir / 1e6 / (tot_b / 1048576.0), tot_b >> 20))
    agg = tot_b / tot_s / (1 << 20) if tot_s else 0
    print("agents: %d started, %d finished; streams delivered %.1f MB/s in "
          "all (%.2f MB/s each); daemon CPU %.1f%% of a core (user %.1f%%, "
          "system %.1f%%); peak RSS %.1f MB"
          % (started, n, agg, agg / max(n, 1), share * 100, user * 100,
             (share - user) * 100, peak / 1024.0))
    how = ("%d claude-driver agents x %.1f MB/s stream-json for %.0f s "
           "(delivered %.1f MB/s total)" % (started, a.rate / 1048576.0,
                                            a.seconds, agg))
    bl.row("agent output: daemon CPU", "%.1f%% of one core" % (share * 100),
           how + "; /proc utime+stime over wall", "< 15%",
           bl.verdict(share * 100, 15))
    bl.row("agent output: daemon peak RSS", "%.1f MB" % (peak / 1024.0), how)


if __name__ == "__main__":
    main()
