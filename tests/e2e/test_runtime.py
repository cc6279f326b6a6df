"""End-to-end tests of the runtime foundation: serve, /healthz, /metrics, the
control socket, signals, config errors and CLI exit codes — the real binary."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import BIN, SLOW, Daemon, add_many_files, agent, check, free_port, make_repo, run_tests  # noqa: E402

ENV = [("env", [agent("env.sh")], 60)]


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_http(port, timeout=10):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        try:
            return http_get(port, "/healthz")
        except OSError:
            time.sleep(0.05)
    raise AssertionError("HTTP server never came up on %d" % port)


def run(*args, env=None, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def test_serve_answers_healthz_metrics_status_and_exits_0_on_sigterm(tmp, ds):
    port = free_port()
    d = Daemon(tmp, ENV, http="127.0.0.1:%d" % port).start()
    ds.append(d)
    status, body = wait_http(port)
    check(status == 200, "healthz %d" % status)
    h = json.loads(body)
    check(h["status"] == "ok" and "uptime_s" in h, body)
    check(h["components"].get("console") == "connected", body)
    status, text = http_get(port, "/metrics")
    check(status == 200, "metrics %d" % status)
    check("# TYPE switchboard_outbox_sent_total counter" in text, text[:500])
    status, _ = http_get(port, "/nope")
    check(status == 404, "unknown path %d" % status)
    r = d.cli("status", "-c", d.conf)
    check(r.returncode == 0, r.stderr)
    check("uptime:" in r.stdout and "console=connected" in r.stdout, r.stdout)
    r = d.cli("status", "-s", d.state, "--json")
    check(json.loads(r.stdout)["adapters"]["console"] == "connected", r.stdout)
    t0 = time.time()
    rc = d.stop(signal.SIGTERM)
    check(rc == 0, "exit status %s" % rc)
    check(time.time() - t0 < 5 * SLOW, "took %.1fs" % (time.time() - t0))
    check(not os.path.exists(os.path.join(d.state, "switchboard.sock")),
          "control socket left behind")


def test_sigterm_with_running_agent_exits_promptly_and_reports_it(tmp, ds):
    d = Daemon(tmp, [("hang", [agent("hang.sh")], 600)]).start()
    ds.append(d)
    d.send("new hang around")
    d.expect(r"#1 hang · running")
    t0 = time.time()
    rc = d.stop(signal.SIGTERM)
    check(rc == 0, "exit status %s" % rc)
    check(time.time() - t0 < 5 * SLOW, "took %.1fs" % (time.time() - t0))
    check(d.saw(r"#1 was interrupted: switchboard is shutting down"),
          "interruption said in the thread")
    st, pid = d.db("SELECT status, pid FROM agents WHERE id = 1")[0]
    check(st == "interrupted", "agent status %s" % st)
    # hang.sh ignores SIGTERM: it got SIGKILL before the daemon exited.
    time.sleep(0.2)
    check(not os.path.exists("/proc/%d" % pid) or
          open("/proc/%d/stat" % pid).read().split()[2] == "Z",
          "agent %d outlived the daemon" % pid)


def test_sigterm_while_worktree_is_prepared_starts_nothing_and_exits_0(tmp, ds):
    # Enough files that the checkout still runs when SIGTERM arrives.
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    add_many_files(repo)
    d = Daemon(tmp, [("hang", [agent("hang.sh")], 600)], repo=repo).start()
    ds.append(d)
    d.send("new hang around")
    # The card comes only once it runs: wait for the worktree job instead.
    deadline = time.time() + 20
    d.expect(r"\+👀")		# taken: the agent row exists
    while d.db("SELECT status FROM agents WHERE id = 1") != [("preparing",)]:
        check(time.time() < deadline, "agent 1 never started preparing")
        time.sleep(0.02)
    rc = d.stop(signal.SIGTERM, timeout=20)
    check(rc == 0, "exit status %s; stderr:\n%s" % (rc, d.stderr_tail()))
    check(not d.saw(r"Started #1"), "agent started during shutdown")
    st, pid = d.db("SELECT status, pid FROM agents WHERE id = 1")[0]
    check(st == "interrupted", "agent status %s" % st)
    # hang.sh ignores SIGTERM: it got SIGKILL before the daemon exited.
    time.sleep(0.2)
    check(not os.path.exists("/proc/%d" % pid) or
          open("/proc/%d/stat" % pid).read().split()[2] == "Z",
          "agent %d outlived the daemon" % pid)


def test_port_in_use_fails_with_one_line_and_nothing_half_started(tmp, ds):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    d = Daemon(tmp, ENV, http="127.0.0.1:%d" % port)
    r = run("serve", "-c", d.conf)
    s.close()
    check(r.returncode == 1, "exit %d" % r.returncode)
    check("address already in use" in r.stderr.lower() or "in use" in r.stderr,
          r.stderr)
    check(not os.path.exists(os.path.join(d.state, "switchboard.sock")),
          "control socket left behind")
    check(r.stdout == "", "console started anyway: %r" % r.stdout)


def test_second_daemon_on_same_state_dir_is_refused(tmp, ds):
    d = Daemon(tmp, ENV).start()
    ds.append(d)
    time.sleep(0.3)
    r = run("serve", "-c", d.conf)
    check(r.returncode == 1, "exit %d" % r.returncode)
    check("already running" in r.stderr, r.stderr)
    check(d.proc.poll() is None, "first daemon died")
    check(d.stop() == 0, "clean exit")


def test_unusable_state_dir_is_a_clear_error(tmp, ds):
    blocker = os.path.join(tmp, "file")
    open(blocker, "w").close()
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write('state_dir = "%s/sub";\nrepos = ( { name = "r"; path = "%s"; } );\n'
                'adapters = { console = { enabled = true; }; };\n'
                'access = { allowed_users = [ "console:*" ]; };\n'
                % (blocker, repo))
    r = run("serve", "-c", conf)
    check(r.returncode == 1, "exit %d" % r.returncode)
    check(blocker in r.stderr, r.stderr)
    check(len(r.stderr.strip().splitlines()) == 1, "one line: %r" % r.stderr)


def test_check_config_exit_codes_and_file_line_errors(tmp, ds):
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    good = os.path.join(tmp, "good.conf")
    with open(good, "w") as f:
        f.write('state_dir = "s";\nrepos = ( { name = "r"; path = "%s"; } );\n'
                'adapters = { slack = { enabled = true; bot_token = '
                '"env:SB_T_BOT"; app_token = "env:SB_T_APP"; }; };\n'
                'access = { allowed_users = [ "slack:U1" ]; };\n' % repo)
    r = run("check-config", "-c", good,
            env={"SB_T_BOT": "xoxb-secret-123", "SB_T_APP": "xapp-secret-456"})
    check(r.returncode == 0, r.stderr)
    check("ok" in r.stdout and "env:SB_T_BOT" in r.stdout, r.stdout)
    check("secret-123" not in r.stdout + r.stderr, "secret value printed")
    r = run("check-config", "-c", good, env={"SB_T_APP": "xapp-secret-456"})
    check(r.returncode == 1, "missing env secret exit %d" % r.returncode)
    check("good.conf:3" in r.stderr and "SB_T_BOT" in r.stderr, r.stderr)
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write('state_dir = "s";\nhttp = { lisen = ":1"; };\n')
    r = run("check-config", "-c", bad)
    check(r.returncode == 1, "exit %d" % r.returncode)
    check("bad.conf:2" in r.stderr and "lisen" in r.stderr, r.stderr)
    with open(bad, "w") as f:
        f.write('state_dir = "s"\nhttp = ;\n')
    r = run("check-config", "-c", bad)
    check(r.returncode == 1 and "bad.conf:2" in r.stderr, r.stderr)


def test_cli_exit_codes(tmp, ds):
    check(run().returncode == 2, "no command")
    check(run("frobnicate").returncode == 2, "unknown command")
    r = run("version")
    check(r.returncode == 0 and r.stdout.startswith("switchboard "), r.stdout)
    check(run("help", "serve").returncode == 0, "help serve")
    check(run("serve", "--help").returncode == 0, "serve --help")
    check(run("status", "--bogus").returncode == 2, "bad option")
    r = run("status", "-s", os.path.join(tmp, "nothing-here"))
    check(r.returncode == 4 and "no daemon" in r.stderr, r.stderr)
    r = run("agent", "progress", "x", env={"SWITCHBOARD_SOCKET": "",
                                         "SWITCHBOARD_AGENT_TOKEN": ""})
    check(r.returncode in (2, 4), "agent outside an agent: %d" % r.returncode)
    r = run("cancel", "-s", tmp, "abc")
    check(r.returncode == 2, "cancel abc %d" % r.returncode)


def test_sighup_reloads_safe_keys_and_survives_a_broken_file(tmp, ds):
    d = Daemon(tmp, ENV).start()
    ds.append(d)
    time.sleep(0.3)
    orig = open(d.conf).read()
    with open(d.conf, "w") as f:
        f.write(orig.replace('allowed_users = [ "console:me" ]',
                             'allowed_users = [ "console:me", "console:bob" ]')
                .replace('state_dir = "', 'state_dir = "/elsewhere'))
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5 * SLOW)
    log = open(d.errlog).read()
    check("need a restart: state_dir" in log, log[-2000:])
    d.send("as bob new from bob")           # bob became allowed live
    d.expect(r"Started #1 env")
    with open(d.conf, "w") as f:
        f.write("this is not { a config")
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5 * SLOW)
    check("keeping the running configuration" in open(d.errlog).read(),
          "broken reload not reported")
    check(d.proc.poll() is None, "daemon died on a bad reload")
    check(d.stop() == 0, "clean exit")


def test_json_logs_are_one_object_per_line(tmp, ds):
    d = Daemon(tmp, ENV, extra="").start()
    ds.append(d)
    d.stop()
    repo = d.repo
    conf = os.path.join(tmp, "j.conf")
    with open(conf, "w") as f:
        f.write('state_dir = "%s/s2";\nlog = { json = true; };\n'
                'repos = ( { name = "r"; path = "%s"; } );\n'
                'adapters = { console = { enabled = true; }; };\n'
                'access = { allowed_users = [ "console:*" ]; };\n'
                % (tmp, repo))
    p = subprocess.Popen([BIN, "serve", "-c", conf], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    time.sleep(0.5 * SLOW)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=10)
    lines = [l for l in err.decode().splitlines() if l.strip()]
    check(lines, "no log lines")
    for l in lines:
        o = json.loads(l)
        check({"ts", "level", "msg"} <= set(o), l)
    check(p.returncode == 0, "exit %d" % p.returncode)


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
