"""End-to-end tests of the LLM brain through the console adapter, against
tests/fakes/fake-llm.py (both providers, strict about request shapes):
the canonical scene (a plain task starts an agent, a second request a
second, a question is relayed and a plain answer reaches the agent, the
end is reported unprompted), explicit commands that never reach the model,
memory across a restart and a crash, 429 then success, an unreachable
model, a bad key, an unallowed person, and event turns that cannot act."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import Daemon, agent, check, free_port, git, run_tests, SLOW  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FAKE = os.path.join(ROOT, "tests", "fakes", "fake-llm.py")
KEY = "sk-test-not-a-real-key"
WORK = [("work", [agent("brain-work.sh"), "{task}"], 60)]


class Fake:
    def __init__(self, key=KEY):
        args = ["/usr/bin/python3", FAKE] + (["--key", key] if key else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def _call(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=(
            "POST" if data is not None else "GET"),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def script(self, *responses):
        self._call("/_script", {"responses": list(responses)})

    def release(self, name):
        self._call("/_release/" + name, {})

    def requests(self):
        return self._call("/_requests")

    def wait_requests(self, n, timeout=15):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            r = self.requests()
            if len(r) >= n:
                return r
            time.sleep(0.05)
        raise AssertionError("fake got %d requests, wanted %d"
                             % (len(self.requests()), n))

    def assert_clean(self):
        f = self._call("/_failures")
        check(not f["failures"], "fake rejected requests: %s" % f["failures"])
        check(not f["unused"], "scripted responses left unused: %s"
              % f["unused"])

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def brains(provider, url, key_env="LLM_KEY", extra=""):
    key = 'api_key = "env:%s";' % key_env if key_env else ""
    return """
brains = ( { name = "main"; provider = "%s"; model = "test-model"; %s
             base_url = "%s"; max_tokens = 1024; context_tokens = 60000;
             timeout = 10; price_in_per_mtok = 3.0; price_out_per_mtok = 15.0;
             %s } );
""" % (provider, key, url, extra)


def daemon(tmp, ds, provider, url, allowed='"console:me"', agents=WORK,
           key=KEY, extra="", start=True):
    # The agents wait for the gate file: a directory of its own that their
    # sandbox is given (its /tmp is private).
    gatedir = os.path.join(tmp, "gatedir")
    os.makedirs(gatedir, exist_ok=True)
    gate = os.path.join(gatedir, "gate")
    agents = [a if len(a) > 3 else (*a, 'sandbox_paths = [ "ro:%s" ];'
                                     % gatedir) for a in agents]
    port = free_port()
    d = Daemon(tmp, agents, extra=brains(provider, url, extra=extra),
               allowed=allowed, env={"LLM_KEY": key, "BRAIN_GATE": gate},
               http="127.0.0.1:%d" % port)
    d.port = port
    with open(d.conf) as f:
        text = f.read()
    # Route the console to the brain (sb.py's route has none).
    text = re.sub(r'(routes = \( \{[^}]*agent = "[^"]+";)', r'\1 brain = "main";',
                  text)
    with open(d.conf, "w") as f:
        f.write(text)
    d.gate = gate
    ds.append(d)
    if start:
        d.start()
        wait_http(port)
    return d


def wait_http(port):
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                   timeout=2).read()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("no HTTP server on %d" % port)


def metrics(d):
    return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.port,
                                  timeout=10).read().decode()


def seen(d, pattern):
    """A line already printed (order against our own replies may vary),
    or the next one that matches."""
    for line in list(d.lines):
        m = re.search(pattern, line)
        if m:
            return m
    return d.expect(pattern)


def said(d, t, pattern, timeout=15):
    return d.expect(r"^\[t%s\] \d+ switchboard: %s" % (t, pattern), timeout)


def fake_for(ds, key=KEY):
    f = Fake(key)
    ds.append(FakeHolder(f))
    return f


class FakeHolder:
    """Lets run_tests' cleanup (which kills daemons) stop the fake too."""

    def __init__(self, f):
        self.f = f
        self.proc = f.proc

    def stderr_tail(self):
        return "(fake llm)"


def scene(tmp, ds, provider):
    fake = fake_for(ds)
    d = daemon(tmp, ds, provider, fake.url)

    # 1. A plain-language task starts an agent.
    fake.script(
        {"match": r"console:me: Build a login page\.",
         "calls": [{"name": "start_agent", "input": {
             "task": "Build a login page for the web app. Ask which OAuth"
                     " provider to use."}}]},
        {"match": r'"agent":1,"branch":"sb/1-build-a-login-page',
         "text": "Got it, #1 is on it."},
        # 2. Agent 1 asks: the core posts the ticket, the brain relays it.
        {"match": r"\[event\] Agent #1 asks q(\d+): GitHub or Google"
                  r" OAuth\? \(choices: GitHub \| Google\)",
         "text": "#1 wants to know: GitHub or Google OAuth?"})
    d.send("new Build a login page.")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: Build a login page\.$").group(1)
    said(d, t, r"Got it, #1 is on it\.$")
    branch1 = seen(d, r"Started #1 work on `(sb/1-[^`]+)`").group(1)

    qid = d.expect(r"❓ q(\d+) from #1: GitHub or Google OAuth\?").group(1)
    said(d, t, r"#1 wants to know: GitHub or Google OAuth\?$")

    # 3. A second request while the first runs starts a second agent.
    fake.script(
        {"match": r"console:me: Also a billing page\.",
         "calls": [{"name": "start_agent", "input": {
             "task": "Build a billing page for the web app; it shares the"
                     " sign-in of #1 (OAuth, provider being decided)."}}]},
        {"match": r'"agent":2,"branch":"sb/2-build-a-billing-page',
         "text": "Sure, #2 started. #1 still needs your answer: GitHub or"
                 " Google OAuth?"})
    d.send("t%s Also a billing page." % t)
    said(d, t, r"Sure, #2 started\.")
    d.expect(r"#2 work · running")

    # 4. A plain answer reaches agent 1 through answer_question.
    fake.script(
        {"match": r"console:me: GitHub\.",
         "calls": [{"name": "answer_question", "input": {
             "question": "q%s" % qid, "answer": "GitHub"}}]},
        {"match": r'"answered":true', "text": "Told #1."},
        # 5. Agent 1 ends: the brain reports it unprompted, after a look
        #    at the agents (an event turn may read).
        {"match": r"\[event\] Agent #1 \(work\) ended: done, branch %s.*"
                  r"login page with GitHub OAuth.*4 files changed"
                  % re.escape(branch1),
         "calls": [{"name": "list_agents", "input": {}}]},
        {"match": r'"id":2,"name":"work","state":"running"',
         "text": "#1 finished the login page (branch `%s`, 4 files). #2 is"
                 " still running its tests." % branch1})
    d.send("t%s GitHub." % t)
    d.expect(r"answered by console:me: GitHub")
    said(d, t, r"Told #1\.$")
    said(d, t, r"✅ #1 done on `%s`" % re.escape(branch1))
    said(d, t, r"#1 finished the login page \(branch `%s`, 4 files\)\. #2 is"
         r" still running its tests\.$" % re.escape(branch1), timeout=20)
    oauth = git("show", "%s:web/oauth.conf" % branch1, cwd=d.repo)
    check(oauth.strip() == "provider: GitHub", "agent 1 got: %r" % oauth)

    # 6. Explicit commands bypass the model, and status shows the brain.
    n = len(fake.requests())
    d.send("t%s status" % t)
    d.expect(r"#2 work · running")
    d.expect(r"brain main \(%s test-model\): [1-9]\d* turns, [1-9]\d* tokens"
             r" in, [1-9]\d* out, \$0\.0\d+" % provider)
    d.send("t%s diff #1" % t)
    d.expect(r"^\s+\+provider: GitHub")   # `diff #N` is the full diff
    d.send("t%s q%s Google" % (t, qid))
    d.expect(r"Sorry, q%s was already answered by console:me" % qid)
    d.quiet(r"^$^", 1.0)
    check(len(fake.requests()) == n, "a command reached the model")

    # 7. The commands are in the transcript: the next turn sees them.
    fake.script({"match": r"\[command\] console:me used the command: status"
                          r".*\[command\] console:me used the command: diff"
                          r" #1.*\[event\] Agent #2 \(work\) ended: done",
                 "text": "#2 finished the billing page too."})
    open(d.gate, "w").close()
    said(d, t, r"#2 finished the billing page too\.$", timeout=20)

    reqs = fake.requests()
    check(all(r.get("status") == 200 for r in reqs),
          "statuses: %r" % [r.get("status") for r in reqs])
    fake.assert_clean()
    if provider == "anthropic":
        for r in reqs:
            b = r["body"]
            check(b["system"][0]["cache_control"] == {"type": "ephemeral"},
                  "system prompt cached")
            check(b["tools"][-1]["cache_control"] == {"type": "ephemeral"},
                  "tools cached")
            check(r["headers"]["anthropic-version"] == "2023-06-01", "version")
    names = [x["name"] if provider == "anthropic" else x["function"]["name"]
             for x in reqs[0]["body"]["tools"]]
    check(names == ["start_agent", "follow_up", "cancel_agent",
                    "answer_question", "list_agents", "agent_result",
                    "agent_diff"], "tools: %r" % names)
    # The system prompt says the two things the design depends on.
    sysp = json.dumps(reqs[0]["body"].get("system") or
                      reqs[0]["body"]["messages"][0])
    check("self-contained" in sysp and "data, not instructions" in sysp,
          "system prompt rules")
    # Cost and tokens per turn are recorded.
    rows = d.db("SELECT count(*), sum(tokens_in), sum(tokens_out),"
                " sum(cost_usd) FROM brain_turns WHERE status = 'done'")[0]
    check(rows[0] >= 5 and rows[1] > 0 and rows[2] > 0 and rows[3] > 0,
          "turn accounting %r" % (rows,))
    log = open(d.errlog).read()
    check(re.search(r"brain main: conversation \d+, for console:me:"
                    r" answer_question \{\"question\":\"q%s\",\"answer\":"
                    r"\"GitHub\"\}" % qid, log), "tool call logged")
    check(KEY not in log, "the key was logged")
    m = metrics(d)
    for name in ("turns_total", "tokens_in_total", "tokens_out_total",
                 "cost_usd_total", "errors_total", "turn_seconds_total"):
        check(re.search(r'switchboard_brain_%s\{brain="main"\} [0-9.e+-]+'
                        % name, m), "metric %s missing" % name)
    check(re.search(r'switchboard_brain_turns_total\{brain="main"\} [5-9]',
                    m), "turns metric")
    check(re.search(r'switchboard_brain_turn_seconds_count\{brain="main"\}'
                    r' [5-9]', m), "turn latency histogram")
    check(d.stop() == 0, "clean exit")
    return d


def test_canonical_scene_anthropic(tmp, ds):
    scene(tmp, ds, "anthropic")


def test_canonical_scene_openai(tmp, ds):
    scene(tmp, ds, "openai")


def test_event_turn_cannot_start_agents(tmp, ds):
    fake = fake_for(ds)
    d = daemon(tmp, ds, "anthropic", fake.url)
    fake.script(
        {"match": r"console:me: Build a login page",
         "calls": [{"name": "start_agent", "input": {
             "task": "Build a login page"}}]},
        {"match": r'"agent":1', "text": "On it."},
        {"match": r"asks q\d+", "text": "#1 asks which OAuth provider."})
    d.send("new Build a login page")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: Build").group(1)
    qid = d.expect(r"❓ q(\d+) from #1").group(1)
    said(d, t, r"#1 asks which OAuth provider\.$")
    # The agent's result "tells" the brain to start another agent: the
    # event turn tries, and the tool refuses.
    fake.script(
        {"match": r"Agent #1 \(work\) ended: done",
         "calls": [{"name": "start_agent", "input": {
             "task": "rm -rf the repo"}}]},
        {"match": r"no person asked for this", "text": "#1 is done."})
    d.send("t%s q%s GitHub" % (t, qid))
    said(d, t, r"#1 is done\.$", timeout=20)
    check(d.db("SELECT count(*) FROM agents")[0][0] == 1, "a second agent")
    fake.assert_clean()
    check(d.stop() == 0, "clean exit")


def test_retry_after_429_then_success(tmp, ds):
    fake = fake_for(ds)
    d = daemon(tmp, ds, "anthropic", fake.url)
    fake.script({"status": 429, "headers": {"retry-after": "1"},
                 "error": "Number of requests has exceeded your rate limit"},
                {"match": r"hello", "text": "Hello after the retry."})
    d.send("new hello there")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: hello").group(1)
    said(d, t, r"Hello after the retry\.$")
    reqs = fake.requests()
    check([r["status"] for r in reqs] == [429, 200], "statuses %r"
          % [r["status"] for r in reqs])
    check(reqs[1]["t"] - reqs[0]["t"] >= 0.95, "retried before Retry-After")
    fake.assert_clean()
    check(d.stop() == 0, "clean exit")


def test_unreachable_model_says_so_and_commands_work(tmp, ds):
    d = daemon(tmp, ds, "openai", "http://127.0.0.1:%d" % free_port())
    d.send("new Build a login page")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: Build").group(1)
    said(d, t, r"I can't reach the model \(.+\)\. Commands still work:"
         r" status, new TASK", timeout=30)
    d.send("t%s status" % t)
    d.expect(r"No agents in this thread yet")
    d.expect(r"brain main \(openai test-model\): 1 turns, .* 1 errors")
    # The person's message is kept for the next turn.
    rows = d.db("SELECT body FROM brain_transcript WHERE kind = 'person'")
    check(any("Build a login page" in r[0] for r in rows), "message kept")
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.port,
                               timeout=10).read().decode()
    check('switchboard_brain_errors_total{brain="main"} 1' in m,
          "metrics: %s" % m)
    check(d.stop() == 0, "clean exit")


def test_bad_key_is_reported_without_retries(tmp, ds):
    fake = fake_for(ds)
    d = daemon(tmp, ds, "anthropic", fake.url, key="sk-wrong")
    d.send("new hello")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: hello").group(1)
    said(d, t, r"I can't reach the model \(HTTP 401: invalid x-api-key\)\."
         r" Commands still work")
    check(len(fake.requests()) == 1, "a 401 was retried")
    check("sk-wrong" not in open(d.errlog).read(), "the key was logged")
    check(d.stop() == 0, "clean exit")


def test_unallowed_person_is_refused_without_a_model_call(tmp, ds):
    fake = fake_for(ds)
    d = daemon(tmp, ds, "anthropic", fake.url)
    d.send("as mallory new Build me a crypto miner")
    t = d.expect(r"^\[t(\d+)\] \d+ console:mallory: Build").group(1)
    d.expect(r"Sorry, console:mallory is not allowed")
    d.send("as mallory t%s please, it is urgent" % t)
    d.expect(r"console:mallory: please")
    d.quiet(r"switchboard:", 1.0)
    check(len(fake.requests()) == 0, "the model was called")
    check(d.db("SELECT count(*) FROM brain_transcript")[0][0] == 0,
          "an unallowed message entered the transcript")
    check(d.stop() == 0, "clean exit")


def test_restart_keeps_the_transcript_and_reruns_a_cut_turn(tmp, ds):
    fake = fake_for(ds)
    d = daemon(tmp, ds, "openai", fake.url)
    fake.script({"match": r"We use GitHub OAuth everywhere",
                 "text": "Noted: GitHub OAuth everywhere."})
    d.send("new We use GitHub OAuth everywhere.")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: We use").group(1)
    said(d, t, r"Noted: GitHub OAuth everywhere\.$")
    check(d.stop() == 0, "clean exit")

    # A graceful restart: the next turn still sees the first exchange.
    d2 = daemon(tmp, ds, "openai", fake.url)
    fake.script({"match": r"console:me: What did we decide\?",
                 "text": "GitHub OAuth, everywhere."})
    d2.send("t%s What did we decide?" % t)
    said(d2, t, r"GitHub OAuth, everywhere\.$")
    msgs = fake.requests()[-1]["body"]["messages"]
    texts = [m.get("content") or "" for m in msgs]
    check(any("We use GitHub OAuth everywhere" in x for x in texts) and
          any("Noted: GitHub OAuth everywhere." in x for x in texts),
          "the transcript was lost: %r" % texts)

    # A crash while the model thinks: the turn is run again on start.
    fake.script({"match": r"Plan the sprint", "hold": "h1", "text": "late"})
    d2.send("t%s Plan the sprint." % t)
    fake.wait_requests(3)
    d2.kill9()
    fake.script({"match": r"Plan the sprint.*restarted before you answered",
                 "text": "Here is the sprint plan."})
    d3 = daemon(tmp, ds, "openai", fake.url)
    said(d3, t, r"Here is the sprint plan\.$", timeout=20)
    fake.release("h1")
    # The reply is posted before its turn's row is closed: wait for that.
    deadline = time.time() + 20
    while True:
        rows = d3.db("SELECT status FROM brain_turns ORDER BY id")
        if rows and rows[-1][0] != "running" or time.time() > deadline:
            break
        time.sleep(0.1)
    check([r[0] for r in rows] == ["done", "done", "interrupted", "done"],
          "turns %r" % rows)
    f = fake._call("/_failures")
    check(not f["failures"], "failures %r" % f["failures"])
    check(d3.stop() == 0, "clean exit")


def test_budget_spent_means_commands_only(tmp, ds):
    fake = fake_for(ds)
    d = daemon(tmp, ds, "anthropic", fake.url,
               extra="max_cost_usd_per_day = 0.0001;")
    fake.script({"match": r"hello", "text": "Hi."})
    d.send("new hello")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: hello").group(1)
    said(d, t, r"Hi\.$")
    d.send("t%s and another thing" % t)
    said(d, t, r"I have used today's model budget \(\$0\.\d+ of \$0\.00\);"
         r" until tomorrow \(UTC\) I can't think, but commands work")
    d.send("t%s status" % t)
    d.expect(r"No agents in this thread yet")
    check(len(fake.requests()) == 1, "the model was called over budget")
    check(d.stop() == 0, "clean exit")


def test_agent_result_after_a_restart_has_tail_and_exit_status(tmp, ds):
    """An agent that failed before a restart: agent_result reads its exit
    status, times and output tail from the store and its log, not from a
    message the old process posted."""
    fake = fake_for(ds)
    agents = WORK + [("crash", [agent("fail-slow.sh")], 60)]
    d = daemon(tmp, ds, "anthropic", fake.url, agents=agents)
    fake.script(
        {"match": r"console:me: Compile it",
         "calls": [{"name": "start_agent", "input": {
             "task": "Compile it", "agent": "crash"}}]},
        {"match": r'"agent":1', "text": "Started."},
        {"match": r"\[event\] Agent #1 \(crash\) ended: failed.*Exit code 7"
                  r".*broken at line 42", "text": "#1 failed."})
    d.send("new Compile it")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: Compile").group(1)
    said(d, t, r"#1 failed\.$", timeout=20)
    check(d.stop() == 0, "clean exit")

    d2 = daemon(tmp, ds, "anthropic", fake.url, agents=agents)
    fake.script(
        {"match": r"console:me: Why did #1 fail\?",
         "calls": [{"name": "agent_result", "input": {"agent": 1}},
                   {"name": "list_agents", "input": {}}]},
        {"match": r"broken at line 42", "text": "It is broken at line 42."})
    d2.send("t%s Why did #1 fail?" % t)
    said(d2, t, r"It is broken at line 42\.$", timeout=20)
    body = fake.requests()[-1]["body"]
    results = [c for m in body["messages"] if isinstance(m["content"], list)
               for c in m["content"] if c.get("type") == "tool_result"]
    res = json.loads(results[-2]["content"] if isinstance(
        results[-2]["content"], str) else results[-2]["content"][0]["text"])
    lst = json.loads(results[-1]["content"] if isinstance(
        results[-1]["content"], str) else results[-1]["content"][0]["text"])
    check(res["state"] == "failed" and res["exit_code"] == 7,
          "result %r" % res)
    check("broken at line 42" in res.get("output_tail", "") and
          "compiling the thing" in res["output_tail"], "tail %r" % res)
    a = lst["agents"][0]
    check(a["id"] == 1 and a["state"] == "failed", "list %r" % lst)
    # Elapsed is the real run, not the time since the restart loaded it,
    # and the store keeps the first start, not the time of the last update.
    started, ended = d2.db("SELECT started_at, ended_at FROM agents"
                           " WHERE id = 1")[0]
    check(started > 0 and ended >= started + 2, "times %r" % ((started, ended),))
    check(re.match(r"^\d+s$", a["elapsed"]) and
          int(a["elapsed"][:-1]) == ended - started, "elapsed %r" % a)
    fake.assert_clean()
    check(d2.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
