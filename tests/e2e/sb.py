"""End-to-end harness: runs the real `switchboard serve` with a private state
dir and drives it through the console adapter (stdin/stdout), the CLI and
HTTP.  Each test is a function test_*(); run_tests() prints PASS/FAIL lines
that tests/run.sh counts.  Only loopback is ever used."""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SWITCHBOARD_BIN", os.path.join(ROOT, "switchboard"))
AGENTS = os.path.join(ROOT, "tests", "e2e", "agents")
# Sanitized builds are slower; scale waits, never loosen what is checked.
SLOW = 3 if "asan" in BIN else 1


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def branch_of(repo, agent_id):
    """The agent's branch name (sb/<id>-slug), from the repository."""
    out = git("for-each-ref", "--format=%(refname:short)",
              "refs/heads/sb/%d-*" % agent_id, cwd=repo).split()
    check(len(out) == 1, "branches for agent %d: %r" % (agent_id, out))
    return out[0]


def make_repo(path):
    os.makedirs(path)
    git("init", "-q", "-b", "main", cwd=path)
    with open(os.path.join(path, "README.md"), "w") as f:
        f.write("# test repo\n")
    with open(os.path.join(path, "main.c"), "w") as f:
        f.write("int main(void) { return 0; }\n")
    git("add", ".", cwd=path)
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q",
        "-m", "initial", cwd=path)


def add_many_files(repo, n=3000):
    """Commits n files to main without writing them (git fast-import), so
    that checking out a worktree takes a while: tests that must act while
    an agent is still preparing."""
    stream = ["blob", "mark :1", "data 2", "x", "",
              "commit refs/heads/main", "committer t <t@l> 0 +0000",
              "data 5", "many", "from refs/heads/main^0"]
    stream += ["M 100644 :1 d%d/f%d" % (i // 100, i % 100) for i in range(n)]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, check=True,
                   input="\n".join(stream) + "\n", text=True)


def conf_text(state, repo, agents, extra="", allowed='"console:me"',
              http="", adapters="", limits=""):
    # An agent is (name, argv, timeout[, extra settings]).
    agent_items = ",\n".join(
        '{ name = "%s"; driver = "command"; command = [ %s ]; timeout = %d;'
        ' %s }' % (a[0], ", ".join(json.dumps(x) for x in a[1]), a[2],
                   a[3] if len(a) > 3 else "")
        for a in agents)
    first = agents[0][0]
    return f"""
state_dir = "{state}";
http = {{ listen = "{http}"; max_body = 65536; }};
log = {{ level = "debug"; }};
access = {{ allowed_users = [ {allowed} ]; }};
repos = ( {{ name = "r"; path = "{repo}"; base = "main"; }} );
agents = ( {agent_items} );
routes = ( {{ adapter = "console"; channel = "*"; repo = "r"; agent = "{first}"; }} );
adapters = {{ console = {{ enabled = true; }}; {adapters} }};
limits = {{ max_agents = 4; max_agents_per_conversation = 3; agent_timeout = 60;
           kill_grace = 1; output_tail = 4096; {limits} }};
render = {{ card_interval_ms = 200; }};
{extra}
"""


class Daemon:
    """One `switchboard serve` with the console adapter on pipes."""

    def __init__(self, tmp, agents, extra="", allowed='"console:me"',
                 http="", repo=None, env=None, adapters="", wrapper=None,
                 limits=""):
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        self.repo = repo or os.path.join(tmp, "repo")
        if not os.path.exists(self.repo):
            make_repo(self.repo)
        self.conf = os.path.join(tmp, "sb.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text(self.state, self.repo, agents, extra, allowed,
                              http, adapters, limits))
        self.env = dict(os.environ, **(env or {}))
        self.lines = []
        self.q = queue.Queue()
        self.proc = None
        self.errlog = os.path.join(tmp, "stderr.log")
        self.wrapper = wrapper or []

    def start(self):
        self.errf = open(self.errlog, "ab")
        self.proc = subprocess.Popen([*self.wrapper, BIN, "serve", "-c",
                                      self.conf],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.errf, env=self.env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self.q.put(line)
        self.q.put(None)

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=10):
        """Waits for a line matching pattern among lines not yet consumed."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout * SLOW
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise Fail("timed out waiting for /%s/; last lines:\n  %s"
                           % (pattern, "\n  ".join(self.lines[-15:])))
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise Fail("daemon exited while waiting for /%s/ (rc=%s);"
                           " stderr tail:\n%s" % (pattern, self.proc.poll(),
                                                   self.stderr_tail()))
            m = rx.search(line)
            if m:
                return m

    def quiet(self, pattern, seconds):
        """Asserts that no line matching pattern arrives for seconds."""
        rx = re.compile(pattern)
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                continue
            if line is None:
                return
            check(not rx.search(line), "unexpected line: %s" % line)

    def saw(self, pattern):
        """True if any line so far matches (order-independent checks)."""
        rx = re.compile(pattern)
        return any(rx.search(l) for l in self.lines)

    def stderr_tail(self, n=30):
        try:
            with open(self.errlog, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace")
                                 .splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Fail("daemon did not exit within %ds of %s" % (timeout, sig))
        self.reader.join(timeout=5)
        self.errf.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=5)
        self.errf.close()

    def cli(self, *args, env=None):
        return subprocess.run([BIN, *args], capture_output=True, text=True,
                              env=dict(self.env, **(env or {})), timeout=30)

    def db(self, sql):
        import sqlite3
        con = sqlite3.connect(os.path.join(self.state, "switchboard.db"),
                              timeout=5)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def agent(name):
    return os.path.join(AGENTS, name)


def run_tests(module_globals):
    names = [n for n in sorted(module_globals) if n.startswith("test_")]
    only = sys.argv[1:]
    failed = 0
    for name in names:
        if only and name not in only:
            continue
        tmp = tempfile.mkdtemp(prefix="sb-e2e-")
        daemons = []
        try:
            module_globals[name](tmp, daemons)
            print("PASS %s" % name, flush=True)
        except Exception as e:  # noqa: BLE001 — any error fails the test
            failed += 1
            detail = str(e) if isinstance(e, Fail) else traceback.format_exc()
            print("FAIL %s: %s" % (name, detail.replace("\n", "\n    ")),
                  flush=True)
            for d in daemons:
                print("    stderr of daemon:\n      " +
                      d.stderr_tail().replace("\n", "\n      "), flush=True)
        finally:
            for d in daemons:
                try:
                    if d.proc is not None and d.proc.poll() is None:
                        d.proc.kill()
                        d.proc.wait()
                except Exception:  # noqa: BLE001
                    pass
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


# ---- shared setup of the tests (helpers above are unchanged) ----------------

def launch(ds, d):
    """Starts d and hands it to run_tests, which kills it if the test fails."""
    ds.append(d.start())
    return d


def new_thread(d, task):
    """Sends `new TASK` on the console; the thread it opened, once echoed."""
    d.send("new " + task)
    return d.expect(r"^\[t(\d+)\] \d+ console:me: %s" % re.escape(task)
                    ).group(1)


def write_script(tmp, name, text):
    """An executable agent script in tmp; its path."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def wait_until(cond, timeout=10):
    """Polls cond until it holds or timeout seconds (scaled by SLOW) have
    passed; its last value."""
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def log_text(d):
    """What the daemon has written to its log (stderr) so far."""
    with open(d.errlog, errors="replace") as f:
        return f.read()


def wait_for_log(d, text, timeout=10):
    """Whether text shows in the daemon's log within timeout (scaled)."""
    return wait_until(lambda: text in log_text(d), timeout)
