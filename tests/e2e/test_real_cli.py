"""End-to-end tests with the REAL Claude Code and Codex CLIs (the versions
pinned in tests/package.json, installed by `make deps` into tests/node_modules)
driven by the real switchboard through the console adapter, each CLI pointed
at tests/fakes/fake-model-api.py instead of its model API.  The test scripts
what the "model" answers per request and reads the requests the CLI sent.

Nothing leaves the machine: Claude Code gets ANTHROPIC_BASE_URL and the
variables that turn off its non-essential traffic; Codex gets a private
CODEX_HOME whose config.toml names the fake as its model provider and turns
off plugin sync and analytics (both otherwise reach out at start).

If the CLIs are not installed every test FAILS (make test installs them).
SB_CLI_BIN (a node_modules/.bin directory) runs another install, for
`make compat`."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import ROOT, Daemon, Fail, check, git, run_tests  # noqa: E402

BIN_DIR = os.environ.get("SB_CLI_BIN",
                         os.path.join(ROOT, "tests", "node_modules", ".bin"))
CLAUDE = os.path.join(BIN_DIR, "claude")
CODEX = os.path.join(BIN_DIR, "codex")
FAKE_API = os.path.join(ROOT, "tests", "fakes", "fake-model-api.py")
# Known to Claude Code's price table: total_cost_usd is real arithmetic
# ($3/M in, $15/M out: 1000 in + 100 out = $0.0045 a request).
CLAUDE_MODEL = "claude-sonnet-4-5"


def need(path):
    if not os.access(path, os.X_OK):
        raise Fail("%s is not installed: run `make deps` (npm install in"
                   " tests/)" % path)


class ModelApi:
    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", FAKE_API],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path,
                                     data=json.dumps(obj).encode(),
                                     headers={"Content-Type":
                                              "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=10))

    def script(self, **apis):
        self._post("/_test/script", apis)

    def requests(self, api=None):
        with urllib.request.urlopen(self.url + "/_test/requests",
                                    timeout=10) as r:
            reqs = json.load(r)
        return [q for q in reqs if api is None or q["api"] == api]

    def turns(self, api):
        return [q for q in self.requests(api) if q["turn"] is not None or
                q["unscripted"]]

    def check_clean(self):
        reqs = self.requests()
        check(not any(q["unscripted"] for q in reqs),
              "the CLI asked the model more than the script holds")
        others = [q["path"] for q in reqs if q["api"] == "other"]
        check(not others, "requests to unknown endpoints: %r" % others)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def setup(tmp, ds, items, fake):
    """A daemon whose agents are the given libconfig groups; the first one
    serves the console.  The CLIs' environment points them at fake."""
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    # Codex refuses to set up its sandbox helper under /tmp (its
    # CODEX_HOME then breaks `-s workspace-write`), so it lives in build/.
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    codex_home = tempfile.mkdtemp(prefix="codex-home-",
                                  dir=os.path.join(ROOT, "build"))
    ds_cleanup.append(codex_home)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(f"""model = "gpt-fake"
model_provider = "fake"
check_for_update_on_startup = false
[analytics]
enabled = false
[features]
plugins = false
[model_providers.fake]
name = "fake model API"
base_url = "{fake.url}/v1"
wire_api = "responses"
env_key = "FAKE_OPENAI_API_KEY"
""")
    env = {"HOME": home, "ANTHROPIC_BASE_URL": fake.url,
           "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_ERROR_REPORTING": "1", "CODEX_HOME": codex_home,
           "FAKE_OPENAI_API_KEY": "fake-key"}
    # Inside the sandbox (the default) a CLI sees what sandbox_paths gives
    # it, as the README tells a user: its npm install (the native binaries
    # are optional dependencies beside the launcher) and, for Codex, its
    # CODEX_HOME (sessions are written there).
    modules = os.path.join(ROOT, "tests", "node_modules")
    items = [i.rstrip()[:-1] + ' sandbox_paths = [ "ro:%s"%s ]; }' % (
                 modules, ', "rw:%s"' % codex_home
                 if 'driver = "codex"' in i else "")
             for i in items]
    first = re.search(r'name = "([^"]+)"', items[0]).group(1)
    d = Daemon(tmp, [(first, ["/bin/true"], 120)], env=env)
    with open(d.conf) as f:
        text = f.read()
    text = re.sub(r"^agents = \(.*\);$",
                  lambda _: "agents = ( %s );" % ",\n".join(items), text,
                  flags=re.M)
    text = text.replace("agent_timeout = 60", "agent_timeout = 120")
    with open(d.conf, "w") as f:
        f.write(text)
    ds.append(d)
    return d.start()


ds_cleanup = []


def claude(extra=""):
    need(CLAUDE)
    return ('{ name = "claude"; driver = "claude"; command = [ "%s" ];'
            ' model = "%s"; %s }' % (CLAUDE, CLAUDE_MODEL, extra))


def codex(extra=""):
    need(CODEX)
    # As the README shows it.
    return ('{ name = "codex"; driver = "codex"; command = [ "%s" ];'
            ' %s }' % (CODEX, extra))


def wt(d, n, name):
    return os.path.join(d.state, "worktrees", str(n), name)


def tree(d, n):
    br = git("for-each-ref", "--format=%(refname:short)",
             "refs/heads/sb/%d-*" % n, cwd=d.repo).split()[0]
    return br, git("ls-tree", "-r", "--name-only", br, cwd=d.repo).split()


def body_text(req):
    return json.dumps(req["body"])


def with_fake(fn):
    def run(tmp, ds):
        fake = ModelApi()
        try:
            fn(tmp, ds, fake)
        finally:
            fake.stop()
            while ds_cleanup:
                shutil.rmtree(ds_cleanup.pop(), ignore_errors=True)
    run.__doc__ = fn.__doc__
    return run


# ---- Claude Code ------------------------------------------------------------

@with_fake
def test_claude_steps_question_result_commit_and_resume(tmp, ds, fake):
    """Tool steps on the card, ask_user through `switchboard mcp` (no
    approvals: finding 4, the CLI used to deny it), the answer in the next
    request, the result, the commit, and a follow-up that resumes."""
    d = setup(tmp, ds, [claude('permission_mode = "acceptEdits";')], fake)
    fake.script(anthropic=[
        {"blocks": [{"text": "Writing the greeting."},
                    {"tool": "Write", "input": {
                        "file_path": wt(d, 1, "hello.txt"),
                        "content": "hello\n"}}]},
        {"blocks": [{"tool": "mcp__switchboard__ask_user", "input": {
            "question": "Which greeting?", "choices": ["Hello", "Hi"]}}]},
        {"wait_for": "Hi", "blocks": [{"text": "Greeting chosen: Hi."}]},
        {"wait_for": "Greeting chosen: Hi.",
         "blocks": [{"text": "Second turn remembers the first."}]},
    ])
    d.send("new write a greeting")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: write a greeting").group(1)
    qid = d.expect(r"❓ q(\d+) from #1: Which greeting\?", timeout=60).group(1)
    d.expect(r"\[choices q%s: Hello \| Hi\]" % qid)
    d.send("click q%s Hi" % qid)
    d.expect(r"answered by console:me: Hi")
    d.expect(r"✅ #1 done", timeout=60)
    d.expect(r"Greeting chosen: Hi\.")
    d.expect(r"#1 claude · (done|idle)")
    check(d.saw(r"• Write hello\.txt$"), "the Write step, relative path")
    check(d.saw(r"• Writing the greeting\.$"), "the model's text")
    check(not d.saw(r"May #1 use|Denied"), "own tools neither asked nor denied")
    reqs = fake.turns("anthropic")
    check(len(reqs) == 3, "three model requests: %d" % len(reqs))
    check('"Hi"' in body_text(reqs[2]) or "Hi" in body_text(reqs[2]),
          "the answer reached the model")
    _, files = tree(d, 1)
    check("hello.txt" in files, "the file is committed: %r" % files)

    d.send("t%s #1 and now?" % t)
    d.expect(r"#1: starting a new turn with your follow-up")
    d.expect(r"Second turn remembers the first\.", timeout=60)
    reqs = fake.turns("anthropic")
    check(len(reqs) == 4, "one more request: %d" % len(reqs))
    msgs = reqs[3]["body"]["messages"]
    check("Which greeting?" in json.dumps(msgs) and
          "and now?" in json.dumps(msgs[-1]),
          "the resumed request holds the earlier turns")
    check(all(q["auth"] for q in reqs), "the key was sent")
    fake.check_clean()
    check(d.stop() == 0, "clean exit")


@with_fake
def test_claude_approvals_allow_session_and_deny_with_reason(tmp, ds, fake):
    """approvals = "chat": Allow for this session covers the next Bash, a
    Deny's reason reaches the model, and no question is about switchboard's
    own tools (finding 4)."""
    d = setup(tmp, ds, [claude('approvals = "chat";')], fake)
    fake.script(anthropic=[
        {"blocks": [{"tool": "Bash", "input": {
            "command": "echo one > one.txt", "description": "one"}}]},
        {"blocks": [{"tool": "mcp__switchboard__report_progress",
                     "input": {"text": "half way"}}]},
        {"blocks": [{"tool": "Bash", "input": {
            "command": "echo two > two.txt", "description": "two"}}]},
        {"blocks": [{"tool": "Write", "input": {
            "file_path": wt(d, 1, "x.txt"), "content": "x\n"}}]},
        {"wait_for": "not in this PR",
         "blocks": [{"text": "Skipped x.txt as asked."}]},
    ])
    d.send("new make two files")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: make two files").group(1)
    q1 = d.expect(r"❓ q(\d+) from #1: May #1 use Bash\?", timeout=60).group(1)
    d.expect(r"\[choices q%s: Allow \| Deny \| Allow for this session\]" % q1)
    d.send("click q%s Allow for this session" % q1)
    q2 = d.expect(r"❓ q(\d+) from #1: May #1 use (\w+)\?", timeout=60)
    check(q2.group(2) == "Write", "next question is about Write, not %s"
          % q2.group(2))
    d.send("t%s q%s Deny: not in this PR" % (t, q2.group(1)))
    d.expect(r"✅ #1 done", timeout=60)
    d.expect(r"Skipped x\.txt as asked\.")
    check(not d.saw(r"May #1 use mcp__"), "no question about own tools")
    _, files = tree(d, 1)
    check("one.txt" in files and "two.txt" in files and "x.txt" not in files,
          "allowed writes only: %r" % files)
    log = open(d.errlog, encoding="utf-8", errors="replace").read()
    check(re.search(r"connection \d+: progress id", log), "report_progress ran")
    fake.check_clean()
    check(d.stop() == 0, "clean exit")


@with_fake
def test_claude_max_cost_counts_a_resumed_session_once(tmp, ds, fake):
    """Finding 5: a resumed run's total_cost_usd is the session's total
    ($0.0045, then $0.009, then $0.0135).  With max_cost_usd 0.012 the third
    run starts ($0.009 spent) and is stopped at $0.0135; counting totals
    as increments would stop the second run already."""
    d = setup(tmp, ds, [claude("max_cost_usd = 0.012;")], fake)
    fake.script(anthropic=[{"blocks": [{"text": "run %d" % i}]}
                           for i in (1, 2, 3)])
    d.send("new cost me")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: cost me").group(1)
    d.expect(r"✅ #1 done", timeout=60)
    d.expect(r"— 1 turn · \$0\.0045 · 1000 tokens in / 100 out")
    d.send("t%s #1 again" % t)
    d.expect(r"✅ #1 done", timeout=60)
    d.expect(r"run 2")
    # This run's part ($0.0045), not the session's total ($0.009).
    d.expect(r"— 1 turn · \$0\.0045 · 1000 tokens in / 100 out")
    d.send("t%s #1 once more" % t)
    d.expect(r"stopped: budget: max_cost_usd \$0\.012 reached \(\$0\.0135\)",
             timeout=60)
    check(len(fake.turns("anthropic")) == 3, "three runs reached the model")
    fake.check_clean()
    check(d.stop() == 0, "clean exit")


@with_fake
def test_claude_cancel_during_a_pending_question(tmp, ds, fake):
    d = setup(tmp, ds, [claude()], fake)
    fake.script(anthropic=[
        {"blocks": [{"tool": "mcp__switchboard__ask_user", "input": {
            "question": "Proceed?", "choices": ["Yes", "No"]}}]}])
    d.send("new ask me")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: ask me").group(1)
    qid = d.expect(r"❓ q(\d+) from #1: Proceed\?", timeout=60).group(1)
    d.send("t%s cancel #1" % t)
    d.expect(r"✖ q%s from #1: Proceed\?" % qid, timeout=30)
    d.expect(r"\(cancelled\)")
    d.expect(r"⚠️ #1 cancelled", timeout=30)
    d.expect(r"#1 claude · cancelled")
    check(len(fake.turns("anthropic")) == 1, "the model got no answer")
    check(d.stop() == 0, "clean exit")


# ---- Codex ------------------------------------------------------------------

@with_fake
def test_codex_steps_question_result_commit_and_resume(tmp, ds, fake):
    """Findings 1-3 with the real codex: it starts (stdin is /dev/null; an
    open pipe hangs it), switchboard's tools run (approval policy never
    refused them), and its command can write the worktree (exec's default
    sandbox is read-only)."""
    d = setup(tmp, ds, [codex()], fake)
    ns = "mcp__switchboard"
    fake.script(openai=[
        {"blocks": [{"tool": "exec_command", "input": {
            "cmd": "echo hello > hello.txt"}}]},
        {"blocks": [{"tool": "ask_user", "namespace": ns, "input": {
            "question": "Tabs or spaces?", "choices": ["Tabs", "Spaces"]}}]},
        {"wait_for": "Spaces", "blocks": [{"text": "Using Spaces."}]},
        {"wait_for": "Using Spaces.",
         "blocks": [{"text": "Resumed with the earlier turns."}]},
    ])
    d.send("new style it")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: style it").group(1)
    qid = d.expect(r"❓ q(\d+) from #1: Tabs or spaces\?", timeout=60).group(1)
    d.expect(r"\[choices q%s: Tabs \| Spaces\]" % qid)
    d.send("click q%s Spaces" % qid)
    d.expect(r"✅ #1 done", timeout=60)
    d.expect(r"Using Spaces\.")
    d.expect(r"#1 codex · (done|idle)")
    check(d.saw(r"• Run: /bin/bash -lc 'echo hello > hello\.txt'"),
          "the command step")
    check(not d.saw(r"failed: MCP tool call"), "own tools ran")
    _, files = tree(d, 1)
    check("hello.txt" in files, "the sandbox let it write: %r" % files)
    reqs = fake.turns("openai")
    check(len(reqs) == 3, "three model requests: %d" % len(reqs))

    d.send("t%s #1 go on" % t)
    d.expect(r"Resumed with the earlier turns\.", timeout=60)
    reqs = fake.turns("openai")
    check("Tabs or spaces?" in body_text(reqs[3]) and
          "go on" in body_text(reqs[3]), "the resumed request holds the"
          " earlier turns")
    fake.check_clean()
    check(d.stop() == 0, "clean exit")


@with_fake
def test_codex_file_change_paths_are_relative(tmp, ds, fake):
    """Finding 6: Codex reports apply_patch changes with absolute paths.
    (gpt-5.5 is a model Codex knows to give apply_patch.)"""
    d = setup(tmp, ds, [codex('model = "gpt-5.5";')], fake)
    fake.script(openai=[
        {"blocks": [{"custom": "apply_patch", "input":
                     "*** Begin Patch\n*** Add File: docs/notes.md\n+notes\n"
                     "*** End Patch\n"}]},
        {"blocks": [{"text": "Added the notes."}]}])
    d.send("new notes")
    d.expect(r"✅ #1 done", timeout=60)
    d.expect(r"#1 codex · (done|idle)")
    check(d.saw(r"• Add docs/notes\.md$"), "relative path on the card")
    check(not d.saw(r"• Add /"), "no absolute path")
    _, files = tree(d, 1)
    check("docs/notes.md" in files, "committed: %r" % files)
    fake.check_clean()
    check(d.stop() == 0, "clean exit")


@with_fake
def test_codex_cancel_during_a_pending_question(tmp, ds, fake):
    d = setup(tmp, ds, [codex()], fake)
    fake.script(openai=[
        {"blocks": [{"tool": "ask_user", "namespace": "mcp__switchboard",
                     "input": {"question": "Proceed?"}}]}])
    d.send("new ask me")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: ask me").group(1)
    d.expect(r"❓ q(\d+) from #1: Proceed\?", timeout=60)
    d.send("t%s cancel #1" % t)
    d.expect(r"✖ q\d+ from #1: Proceed\?", timeout=30)
    d.expect(r"⚠️ #1 cancelled", timeout=30)
    d.expect(r"#1 codex · cancelled")
    check(len(fake.turns("openai")) == 1, "the model got no answer")
    # The output tail in the thread is the human part, not the JSON stream.
    raw = [l for l in d.lines if '{"type":' in l or '"item.' in l]
    check(not raw, "raw JSON in the thread: %r" % raw[:3])
    check(d.stop() == 0, "clean exit")


def test_version_check_logs_the_installed_clis(tmp, ds):
    need(CLAUDE)
    need(CODEX)
    fake = ModelApi()
    try:
        d = setup(tmp, ds, [claude(), codex()], fake)
        pats = [r"agent claude: \S+/claude is \d+\.\d+\.\d+ \(Claude"
                r" Code\) \(tested with 2\.1\.332\)",
                r"agent codex: \S+/codex is codex-cli \d+\.\d+\.\d+"
                r" \(tested with 0\.171\.0\)"]
        deadline = time.time() + 30
        while True:
            log = open(d.errlog, encoding="utf-8", errors="replace").read()
            if all(re.search(p, log) for p in pats):
                break
            check(time.time() < deadline, "versions not logged:\n%s"
                  % d.stderr_tail())
            time.sleep(0.1)
        check("older than" not in log, "no warning for the tested versions")
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()
        while ds_cleanup:
            shutil.rmtree(ds_cleanup.pop(), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
