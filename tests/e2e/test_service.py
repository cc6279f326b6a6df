"""Running Switchboard as a service: the version it reports, `make install`
and `make uninstall`, the systemd unit (systemd-analyze verify and security),
and the sd_notify datagrams the daemon sends to a socket the test binds."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import BIN, ROOT, SLOW, Daemon, agent, check, git, branch_of, free_port, run_tests  # noqa: E402
from test_runtime import http_get, wait_http  # noqa: E402

UNIT = os.path.join(ROOT, "config", "switchboard.service")


def expected_version_prefix():
    r = subprocess.run(["git", "describe", "--tags", "--match", "v[0-9]*"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout.strip()[1:].split("-")[0]
    with open(os.path.join(ROOT, "VERSION")) as f:
        return f.read().strip()


def test_version_comes_from_the_build_and_healthz_reports_it(tmp, ds):
    r = subprocess.run([BIN, "version"], capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    m = re.fullmatch(r"switchboard (\S+)\n", r.stdout)
    check(m is not None, "version output %r" % r.stdout)
    v = m.group(1)
    check(v.startswith(expected_version_prefix()),
          "%s does not start with %s" % (v, expected_version_prefix()))
    r2 = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    check(r2.stdout == r.stdout, "--version %r" % r2.stdout)
    port = free_port()
    d = Daemon(tmp, [("env", [agent("env.sh")], 60)],
               http="127.0.0.1:%d" % port).start()
    ds.append(d)
    status, body = wait_http(port)
    check(json.loads(body).get("version") == v, body)
    check(d.stop() == 0, "clean exit")


def make(*args):
    return subprocess.run(["make", "-s", "-C", ROOT, *args],
                          capture_output=True, text=True, timeout=600)


def test_make_install_honours_prefix_and_destdir_and_keeps_edited_config(tmp, ds):
    dest = os.path.join(tmp, "root")
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    check(r.returncode == 0, r.stdout + r.stderr)
    for p in ["usr/bin/switchboard", "usr/share/man/man1/switchboard.1",
              "usr/share/man/man5/switchboard.conf.5",
              "usr/lib/systemd/system/switchboard.service",
              "usr/share/doc/switchboard/switchboard.conf.example",
              "usr/share/doc/switchboard/slack-app-manifest.yml",
              "usr/share/doc/switchboard/CHANGELOG.md",
              "usr/share/doc/switchboard/LICENSE",
              "etc/switchboard/switchboard.conf"]:
        check(os.path.isfile(os.path.join(dest, p)), "missing " + p)
    check(os.access(os.path.join(dest, "usr/bin/switchboard"), os.X_OK),
          "binary not executable")
    with open(os.path.join(dest, "usr/lib/systemd/system/switchboard.service")) as f:
        unit = f.read()
    check("ExecStart=/usr/bin/switchboard serve -c "
          "/etc/switchboard/switchboard.conf" in unit, unit)
    check("/usr/local" not in unit, "unit still names /usr/local")
    conf = os.path.join(dest, "etc/switchboard/switchboard.conf")
    with open(conf) as f:
        check('state_dir = "/var/lib/switchboard";' in f.read(),
              "installed config keeps a relative state_dir")
    check(os.stat(conf).st_mode & 0o077 == 0o040, "config mode %o"
          % os.stat(conf).st_mode)
    with open(conf, "a") as f:
        f.write("# edited by the admin\n")
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    check(r.returncode == 0, r.stdout + r.stderr)
    with open(conf) as f:
        check("# edited by the admin" in f.read(), "install overwrote the config")
    r = make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    check(r.returncode == 0, r.stdout + r.stderr)
    left = sorted(os.path.relpath(os.path.join(d, f), dest)
                  for d, _, fs in os.walk(dest) for f in fs)
    check(left == ["etc/switchboard/switchboard.conf"],
          "left after uninstall: %s" % left)
    # The default prefix is /usr/local.
    dest2 = os.path.join(tmp, "root2")
    r = make("install", "DESTDIR=" + dest2)
    check(r.returncode == 0, r.stdout + r.stderr)
    check(os.path.isfile(os.path.join(dest2, "usr/local/bin/switchboard")),
          "default PREFIX is not /usr/local")
    check(os.path.isfile(os.path.join(dest2, "etc/switchboard/switchboard.conf")),
          "default config not in /etc/switchboard")


def unit_for_test(tmp):
    """The unit with ExecStart pointing at the binary under test (verify
    checks that the program exists) and a MANPATH holding our man pages
    (verify runs man(1) on every Documentation= entry)."""
    with open(UNIT) as f:
        text = f.read().replace("/usr/local/bin/switchboard", BIN)
    path = os.path.join(tmp, "switchboard.service")
    with open(path, "w") as f:
        f.write(text)
    man = os.path.join(tmp, "man")
    for sec, name in (("1", "switchboard.1"), ("5", "switchboard.conf.5")):
        os.makedirs(os.path.join(man, "man" + sec), exist_ok=True)
        shutil.copy(os.path.join(ROOT, "config", "man", name),
                    os.path.join(man, "man" + sec, name))
    return path, dict(os.environ, MANPATH=man, SYSTEMD_LOG_LEVEL="notice")


def test_unit_file_passes_systemd_analyze_verify(tmp, ds):
    exe = shutil.which("systemd-analyze")
    check(exe is not None, "systemd-analyze not installed (package systemd "
          "is in DEB_PKGS; run make deps)")
    path, env = unit_for_test(tmp)
    r = subprocess.run([exe, "verify", path], capture_output=True, text=True,
                       env=env, timeout=60)
    check(r.returncode == 0 and r.stderr.strip() == "",
          "verify rc=%d: %s%s" % (r.returncode, r.stdout, r.stderr))
    # verify must be able to fail: a misspelt directive is reported.
    bad = os.path.join(tmp, "bad.service")
    with open(path) as f, open(bad, "w") as g:
        g.write(f.read().replace("ProtectSystem=strict", "ProtectSystme=strict"))
    r = subprocess.run([exe, "verify", bad], capture_output=True, text=True,
                       env=env, timeout=60)
    check("ProtectSystme" in r.stderr, "verify missed a typo: %s" % r.stderr)


def test_unit_is_hardened_per_systemd_analyze_security(tmp, ds):
    exe = shutil.which("systemd-analyze")
    check(exe is not None, "systemd-analyze not installed")
    path, env = unit_for_test(tmp)
    r = subprocess.run([exe, "security", "--offline=true", "--no-pager", path],
                       capture_output=True, text=True, env=env, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    check(m is not None, "no score: %s%s" % (r.stdout[-2000:], r.stderr))
    score = float(m.group(1))
    # The README quotes 2.6; a change that weakens the unit shows here.
    check(score <= 3.0, "exposure %.1f > 3.0:\n%s" % (score, r.stdout))
    for d in ("NoNewPrivileges=", "PrivateTmp=", "ProtectSystem=",
              "RestrictAddressFamilies=~AF_PACKET", "SystemCallFilter=~@clock"):
        line = next((l for l in r.stdout.splitlines() if d in l), "")
        check(line.strip().startswith("✓"), "%s not satisfied: %r" % (d, line))


class Notify:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, addr):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(addr if not addr.startswith("@") else "\0" + addr[1:])
        self.got = []

    def wait(self, pred, what, timeout=10):
        deadline = time.time() + timeout * SLOW
        while True:
            for i, m in enumerate(self.got):
                if pred(m):
                    del self.got[:i + 1]
                    return m
            left = deadline - time.time()
            check(left > 0, "no %s datagram; got %r" % (what, self.got[-10:]))
            self.s.settimeout(left)
            try:
                self.got.append(self.s.recv(4096).decode())
            except socket.timeout:
                pass


def test_sdnotify_ready_watchdog_reload_stopping_over_a_path_socket(tmp, ds):
    n = Notify(os.path.join(tmp, "notify.sock"))
    d = Daemon(tmp, [("env", [agent("env.sh"), "{task}"], 60)],
               env={"NOTIFY_SOCKET": os.path.join(tmp, "notify.sock"),
                    "WATCHDOG_USEC": "200000"}).start()
    ds.append(d)
    m = n.wait(lambda m: "READY=1" in m.split("\n"), "READY=1")
    check("STATUS=serving" in m, m)
    # Ready means ready: the control socket answers at once.
    r = d.cli("status", "-s", d.state)
    check(r.returncode == 0, r.stderr)
    n.wait(lambda m: m == "WATCHDOG=1", "WATCHDOG=1")
    n.wait(lambda m: m == "WATCHDOG=1", "second WATCHDOG=1")
    d.proc.send_signal(signal.SIGHUP)
    m = n.wait(lambda m: m.startswith("RELOADING=1\n"), "RELOADING=1")
    check(re.search(r"^MONOTONIC_USEC=\d+$", m, re.M), m)
    n.wait(lambda m: "READY=1" in m.split("\n"), "READY=1 after reload")
    # Agents never inherit systemd's variables.
    d.send("new dump it")
    d.expect(r"✅ #1 done")
    env = git("show", "%s:env.txt" % branch_of(d.repo, 1), cwd=d.repo)
    check("NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env, env)
    d.proc.send_signal(signal.SIGTERM)
    n.wait(lambda m: m == "STOPPING=1", "STOPPING=1")
    check(d.proc.wait(timeout=10 * SLOW) == 0, "clean exit")


def test_sdnotify_abstract_socket_name_starts_with_at(tmp, ds):
    name = "@sb-notify-test-%d-%d" % (os.getpid(), time.time_ns() % 100000)
    n = Notify(name)
    d = Daemon(tmp, [("env", [agent("env.sh")], 60)],
               env={"NOTIFY_SOCKET": name}).start()
    ds.append(d)
    n.wait(lambda m: "READY=1" in m.split("\n"), "READY=1")
    check(d.stop() == 0, "clean exit")
    n.wait(lambda m: m == "STOPPING=1", "STOPPING=1")


def test_check_config_warnings_exit_0_errors_exit_1_and_serve_refuses_too(tmp, ds):
    from sb import conf_text, make_repo
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    conf = os.path.join(tmp, "sb.conf")
    state = os.path.join(tmp, "fresh", "state")
    # The harness's config, with a log file and a route of our own.
    ok = conf_text(state, repo, [("env", [agent("env.sh")], 60)])
    ok = "\n".join(l for l in ok.splitlines()
                   if not l.startswith(("log =", "routes =")))
    ok += ('\nlog = { level = "info"; file = "%s/logs/sb.log"; };\n'
           'routes = ( { adapter = "console"; channel = "*"; repo = "r";'
           ' agent = "env"; },\n  { adapter = "slack"; channel = "C1";'
           ' repo = "r"; agent = "env"; } );\n' % state)
    with open(conf, "w") as f:
        f.write(ok)
    r = subprocess.run([BIN, "check-config", "-c", conf], capture_output=True,
                       text=True)
    check(r.returncode == 0, "rc %d: %s" % (r.returncode, r.stderr))
    check(re.search(r"sb\.conf:\d+: warning: routes\.\[1\]\.adapter: adapter "
                    r"'slack' is not enabled", r.stderr), r.stderr)
    check(": ok" in r.stdout, r.stdout)
    r = subprocess.run([BIN, "check-config", "-q", "-c", conf],
                       capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout == "", "quiet: %r" % r.stdout)
    # The log file lives in a state dir nobody made yet: serve makes both.
    p = subprocess.Popen([BIN, "serve", "-c", conf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = os.path.join(state, "logs", "sb.log")
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline and not (
            os.path.exists(log) and "serving" in open(log).read()):
        time.sleep(0.05)
    check(os.path.exists(log), "no log file in the new state dir")
    with open(log) as f:
        text = f.read()
    check("warning: routes.[1].adapter" in text, "warning not logged: " + text)
    p.send_signal(signal.SIGTERM)
    check(p.wait(timeout=10 * SLOW) == 0, "serve exit")
    p.stdout.close()
    p.stderr.close()
    # An agent program that is not there: both refuse, naming it.
    with open(conf, "w") as f:
        f.write(ok.replace(agent("env.sh"), "sb-no-such-agent"))
    r = subprocess.run([BIN, "check-config", "-c", conf], capture_output=True,
                       text=True)
    check(r.returncode == 1, "rc %d" % r.returncode)
    check(re.search(r"sb\.conf:\d+: agents\.\[0\]\.command: agent 'env': "
                    r"program \"sb-no-such-agent\" is not found in PATH",
                    r.stderr), r.stderr)
    r = subprocess.run([BIN, "serve", "-c", conf], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 1 and "sb-no-such-agent" in r.stderr, r.stderr)


def metric(text, name):
    """The value of one series (name with its labels), or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def wait_metric(port, name, pred, what, timeout=10):
    deadline = time.time() + timeout * SLOW
    while True:
        _, text = http_get(port, "/metrics")
        v = metric(text, name)
        if v is not None and pred(v):
            return text
        check(time.time() < deadline, "%s: %s is %r" % (what, name, v))
        time.sleep(0.1)


def test_metrics_histograms_gauges_and_process_metrics_move(tmp, ds):
    port = free_port()
    d = Daemon(tmp, [("env", [agent("env.sh"), "{task}"], 60)],
               http="127.0.0.1:%d" % port).start()
    ds.append(d)
    wait_http(port)
    _, before = http_get(port, "/metrics")
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds",
                 'switchboard_agents_by_state{state="running"}',
                 'switchboard_outbox_depth{adapter="console"}',
                 "switchboard_questions_open", "switchboard_worktrees",
                 "switchboard_worktrees_bytes"):
        check(metric(before, name) is not None, "no %s in:\n%s" % (name, before))
    check(metric(before, "process_resident_memory_bytes") > 1e6, "rss")
    check(metric(before, "switchboard_agent_run_seconds_count") in (None, 0),
          "runs before any agent")
    sent0 = metric(before, 'switchboard_outbox_send_seconds_count{adapter="console"}') or 0
    d.send("new first")
    d.expect(r"✅ #1 done")
    d.send("new second")
    d.expect(r"✅ #2 done")
    text = wait_metric(port, "switchboard_agent_run_seconds_count",
                       lambda v: v == 2, "two agent runs")
    check(metric(text, 'switchboard_agent_run_seconds_bucket{le="+Inf"}') == 2,
          "+Inf bucket")
    text = wait_metric(port, 'switchboard_outbox_send_seconds_count{adapter="console"}',
                       lambda v: v >= sent0 + 6, "outbox sends (👀, started, cards, results)")
    # Worktree gauges come from a walk the previous scrape started.
    text = wait_metric(port, "switchboard_worktrees", lambda v: v == 2,
                       "two worktrees")
    check(metric(text, "switchboard_worktrees_bytes") > 0, "worktree bytes")
    check(d.stop() == 0, "clean exit")


def test_healthz_503_with_reason_when_an_adapter_stays_disconnected(tmp, ds):
    port, dead = free_port(), free_port()
    d = Daemon(tmp, [("env", [agent("env.sh")], 60)],
               http="127.0.0.1:%d" % port,
               env={"SB_BOT": "xoxb-test", "SB_APP": "xapp-test"},
               adapters='slack = { enabled = true; bot_token = "env:SB_BOT";'
               ' app_token = "env:SB_APP"; api_url = "http://127.0.0.1:%d/api/"; };'
               % dead,
               extra="http = { listen = \"127.0.0.1:%d\"; health_grace = 1; };"
               % port)
    # conf_text writes its own http group; ours replaces it.
    with open(d.conf) as f:
        text = f.read()
    text = "\n".join(l for l in text.splitlines()
                     if not l.startswith("http = { listen = \"127.0.0.1:%d\"; max_body" % port))
    with open(d.conf, "w") as f:
        f.write(text)
    d.start()
    ds.append(d)
    deadline = time.time() + 15 * SLOW
    while True:
        try:
            status, body = http_get(port, "/healthz")
            if status == 503:
                break
        except OSError:
            pass
        check(time.time() < deadline, "healthz never 503")
        time.sleep(0.1)
    h = json.loads(body)
    check(h["status"] == "failing", body)
    check(any(f["source"] == "slack" and "grace 1 s" in f["reason"]
              for f in h["failing"]), body)
    check(h["components"]["console"] == "connected", body)
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
