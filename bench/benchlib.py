"""Shared helpers of the Python benchmarks: start the real daemon through
the end-to-end harness (tests/e2e/sb.py), read its RSS and CPU time from
/proc, percentiles, and the one output format run.sh collects:

    FIGURE<TAB>figure<TAB>value<TAB>method<TAB>target<TAB>verdict

Benchmarks print numbers; nothing here fails on speed."""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BENCH_BUILD", os.path.join(ROOT, "build", "default"))
os.environ.setdefault("SWITCHBOARD_BIN", os.path.join(BUILD, "switchboard"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import sb  # noqa: E402,F401  (re-exported for the benchmarks)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def quiet_log(d):
    """The harness logs at debug for tests; a benchmark runs at info, as a
    deployment would (debug lines cost a write per event)."""
    with open(d.conf) as f:
        conf = f.read()
    conf = conf.replace('log = { level = "debug"; };',
                        'log = { level = "info"; };')
    with open(d.conf, "w") as f:
        f.write(conf)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_split_kb(pid):
    """(anonymous, file-backed) parts of the RSS: the libraries' mapped
    code is file-backed and shared with every process using them."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("RssAnon", 0), out.get("RssFile", 0) + \
        out.get("RssShmem", 0)


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def verdict(value, limit, unit=""):
    """'met (0.31 of target)' or 'missed: 3.1x target' for lower-is-better."""
    if value is None:
        return "not measured"
    r = value / limit if limit else float("inf")
    if r <= 1.0:
        return "met (%.2fx of target)" % r
    return "MISSED: %.1fx target" % r


def row(figure, value, method, target="", verdict_=""):
    for s in (figure, value, method, target, verdict_):
        assert "\t" not in s and "\n" not in s, s
    print("FIGURE\t%s\t%s\t%s\t%s\t%s" % (figure, value, method, target,
                                          verdict_), flush=True)


def metric(text, name):
    """A counter's value from a /metrics body (sum over label sets)."""
    total = 0.0
    for m in re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text,
                         re.M):
        total += float(m.group(1))
    return total
