#!/usr/bin/python3
"""bench/k8s — what 100 watched pods cost the daemon: CPU share and memory.

100 console threads each start a kubernetes-run agent in the fake cluster of
tests/fakes/fake-k8s.py (HTTPS, bookmarks every second); each pod's
container (after its init container cloned the agent's branch from a bare
repository) sleeps, so the daemon holds, per pod, one watch stream and one
followed log stream, and receives a BOOKMARK per watch per second.  Once all
pods run, CPU share = (utime + stime) delta from /proc/PID/stat over
--seconds of wall time; memory = VmRSS (and its anonymous part) then, minus
the same before the first task.  The figures include the agents' records
and cards, not only the streams."""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
sys.path.insert(0, os.path.join(bl.ROOT, "tests", "e2e"))
import test_k8s as tk  # noqa: E402


def run(a, tmp):
    cl = tk.Cluster(tmp)
    try:
        settings = ('runner = "kubernetes"; kubernetes = { namespace = '
                    '"%s"; image = "agent:1"; node_selector = '
                    '[ "pool=agents" ]; };' % tk.NS)
        d = bl.sb.Daemon(tmp, [("pod", ["/bin/sleep", str(a.seconds + 60)],
                                600, settings)],
                         extra='cluster = { kubeconfig = "%s"; };'
                         % cl.kubeconfig)
        # The pods clone the branch from the repo's remote (a bare repo
        # here, no credentials) and push it back when their agent ends.
        bare = os.path.join(tmp, "remote.git")
        bl.sb.git("init", "-q", "--bare", bare)
        bl.sb.git("remote", "add", "origin", bare, cwd=d.repo)
        bl.sb.git("push", "-q", "origin", "main", cwd=d.repo)
        with open(d.conf) as f:
            conf = f.read()
        conf = re.sub(r"max_agents = 4;", "max_agents = %d;" % (a.pods + 4),
                      conf)
        conf = re.sub(r"max_agents_per_conversation = 3;",
                      "max_agents_per_conversation = %d;" % (a.pods + 4),
                      conf)
        with open(d.conf, "w") as f:
            f.write(conf)
        bl.quiet_log(d)
        d.start()
        pid = d.proc.pid
        try:
            time.sleep(2.0)     # started and idle
            rss0 = bl.rss_kb(pid)
            anon0, _ = bl.rss_split_kb(pid)
            for i in range(a.pods):
                d.send("new pod %d" % i)
            deadline = time.time() + 180
            running = 0
            while time.time() < deadline:
                items = cl.api("/api/v1/namespaces/%s/pods" % tk.NS)["items"]
                running = sum(1 for p in items
                              if p["status"].get("phase") == "Running")
                if running >= a.pods:
                    break
                time.sleep(0.5)
            time.sleep(2.0)     # the log streams are open
            c0, w0 = bl.cpu_s(pid), time.time()
            time.sleep(a.seconds)
            c1, w1 = bl.cpu_s(pid), time.time()
            rss1 = bl.rss_kb(pid)
            anon1, _ = bl.rss_split_kb(pid)
            return running, (c1 - c0) / (w1 - w0), rss1 - rss0, anon1 - anon0
        finally:
            d.kill9()
    finally:
        cl.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sb-bench-k8s-")
    try:
        running, share, drss, danon = run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("k8s: %d pods running; daemon CPU %.2f%% of a core; RSS +%.1f MB "
          "(anonymous +%.1f MB) over the idle daemon"
          % (running, share * 100, drss / 1024.0, danon / 1024.0))
    scale = 100.0 / max(running, 1)
    how = ("%d running pods of the fake API server, a watch (bookmark/s) "
           "and a followed log each, for %.0f s" % (running, a.seconds))
    bl.row("k8s: daemon CPU per 100 watched pods",
           "%.2f%% of one core" % (share * 100 * scale),
           how + "; /proc utime+stime over wall", "< 5%",
           bl.verdict(share * 100 * scale, 5))
    bl.row("k8s: daemon memory per 100 watched pods",
           "%.1f MB RSS (%.1f MB anonymous)" % (drss / 1024.0 * scale,
                                                danon / 1024.0 * scale),
           how + "; VmRSS after minus before the first task")


if __name__ == "__main__":
    main()
