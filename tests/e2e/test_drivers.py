"""End-to-end tests of the claude and codex drivers: the real binary, the
console adapter, fake `claude`/`codex` executables (tests/fakes) that replay
their documented streams and call `switchboard mcp` like the real CLIs."""

import json
import os
import re
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import ROOT, Daemon, check, git, run_tests  # noqa: E402

FAKE_CLAUDE = os.path.join(ROOT, "tests", "fakes", "fake-claude")
FAKE_CODEX = os.path.join(ROOT, "tests", "fakes", "fake-codex")
FAKES = os.path.dirname(FAKE_CLAUDE)


def daemon(tmp, ds, items):
    """items: libconfig agent groups; the first one serves the console."""
    first = re.search(r'name = "([^"]+)"', items[0]).group(1)
    # The fakes record what they saw in files beside the argv log (.stdin,
    # claude-costs.json): a directory of their own.
    logdir = os.path.join(tmp, "fake")
    os.makedirs(logdir, exist_ok=True)
    argv_log = os.path.join(logdir, "argv.log")
    open(argv_log, "w").close()
    # In the sandbox (the default) the fakes see their own directory (their
    # mcpclient module) and their log directory, as sandbox_paths would give
    # a real CLI its install and config dirs.
    items = [i if "sandbox_paths" in i else i.rstrip()[:-1] +
             ' sandbox_paths = [ "%s", "rw:%s" ]; }' % (FAKES, logdir)
             for i in items]
    d = Daemon(tmp, [(first, ["/bin/true"], 60)],
               env={"FAKE_ARGV_LOG": argv_log})
    with open(d.conf) as f:
        text = f.read()
    text = re.sub(r"^agents = \(.*\);$",
                  lambda _: "agents = ( %s );" % ",\n".join(items), text,
                  flags=re.M)
    with open(d.conf, "w") as f:
        f.write(text)
    d.argv_log = argv_log
    ds.append(d)
    return d.start()


def runs(d):
    with open(d.argv_log) as f:
        return [json.loads(l) for l in f]


def claude(extra=""):
    return ('{ name = "claude"; driver = "claude"; command = [ "%s" ];'
            ' model = "sonnet"; permission_mode = "acceptEdits";'
            ' args = [ "--add-dir", "/tmp" ]; %s }' % (FAKE_CLAUDE, extra))


def codex(extra="", args='"--skip-git-repo-check"'):
    return ('{ name = "codex"; driver = "codex"; command = [ "%s" ];'
            ' args = [ %s ]; %s }' % (FAKE_CODEX, args, extra))


def test_claude_success_steps_summary_cost_and_no_secret(tmp, ds):
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=garbage fix login")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=garbage").group(1)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done on `(sb/[^`]+)`" % t)
    d.expect(r"Updated the login page; tests pass\.")
    d.expect(r"3 turns · \$0\.0123 · 1234 tokens in / 340 out")
    d.expect(r"src/login\.c")
    d.expect(r"#1 claude · done")
    check(d.saw(r"• I'll update the login page\.$"), "assistant text step")
    check(d.saw(r"• Edit src/login\.c"), "edit step, relative path")
    check(d.saw(r"• Run: API_TOKEN=\*\*\* make test"), "run step, masked")
    check(not d.saw(r"sekrit123"), "the secret never reached the chat")
    check(not d.saw(r"not json|truncated|no_type"), "garbage not shown")
    argv = runs(d)[0]
    check(argv[:6] == ["-p", "--output-format", "stream-json", "--verbose",
                       "--mcp-config", argv[5]], "argv %r" % argv)
    for flag, val in (("--model", "sonnet"),
                      ("--permission-mode", "acceptEdits"),
                      ("--add-dir", "/tmp")):
        check(argv[argv.index(flag) + 1] == val, "%s in %r" % (flag, argv))
    check(argv[-2:] == ["--", "scenario=garbage fix login"], "prompt last")
    check("--permission-prompt-tool" not in argv, "no approvals by default")
    # The MCP config is private, outside the worktree, and names the socket.
    mcp = argv[5]
    check(mcp.startswith(d.state + "/mcp/"), "mcp config in state_dir")
    check(stat.S_IMODE(os.stat(mcp).st_mode) == 0o600, "mode 0600")
    conf = json.load(open(mcp))["mcpServers"]["switchboard"]
    check(conf["args"] == ["mcp"], "runs `switchboard mcp`")
    check(conf["env"]["SWITCHBOARD_SOCKET"].endswith("/agent.sock"), "socket")
    br = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb/1-*",
             cwd=d.repo).split()[0]
    tree = git("ls-tree", "-r", "--name-only", br, cwd=d.repo)
    check(tree.split() == ["README.md", "main.c", "src/login.c"],
          "only the agent's work is committed: %r" % tree)
    check(d.stop() == 0, "clean exit")


def test_claude_asks_through_mcp_and_gets_the_answer(tmp, ds):
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=ask pick one")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=ask").group(1)
    qid = d.expect(r"❓ q(\d+) from #1: Which provider\?").group(1)
    d.expect(r"\[choices q%s: GitHub \| Google\]" % qid)
    d.send("t%s 2" % t)
    d.expect(r"answered by console:me: Google")
    d.expect(r"✅ #1 done")
    d.expect(r"chose Google")
    check(d.stop() == 0, "clean exit")
    log = open(d.errlog, encoding="utf-8", errors="replace").read()
    check(re.search(r"connection \d+: progress id", log), "report_progress")
    check(re.search(r"connection \d+: done id", log), "finish")
    br = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb/1-*",
             cwd=d.repo).split()[0]
    check(git("show", "%s:answer.txt" % br, cwd=d.repo).strip() == "Google",
          "the agent got the answer")
    tree = git("ls-tree", "-r", "--name-only", br, cwd=d.repo)
    check("agent-1.json" not in tree and ".json" not in tree,
          "MCP config not committed: %r" % tree)


def test_claude_approvals_allow_session_deny_reason_and_config(tmp, ds):
    d = daemon(tmp, ds, [claude('approvals = "chat"; auto_allow = [ "Read" ];'
                                ' auto_deny = [ "WebFetch" ];')])
    d.send("new scenario=approve build it")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=approve").group(1)
    # Read is auto-allowed: the first question is about Bash.
    q1 = d.expect(r"❓ q(\d+) from #1: May #1 use Bash\?").group(1)
    d.expect(r"Run: make build")
    d.expect(r"\[choices q%s: Allow \| Deny \| Allow for this session\]" % q1)
    d.send("click q%s Allow for this session" % q1)
    d.expect(r"answered by console:me: Allow for this session")
    # The second Bash is allowed without asking; Write asks.
    q2 = d.expect(r"❓ q(\d+) from #1: May #1 use Write\?").group(1)
    check(int(q2) == int(q1) + 1, "no question for the second Bash")
    d.send("t%s q%s Deny: not in this PR" % (t, q2))
    d.expect(r"✅ #1 done")
    d.expect(r"ran Read; ran Bash; ran Bash; denied: console:me denied this:"
             r" not in this PR; denied: denied by switchboard's configuration"
             r" \(auto_deny\)")
    argv = runs(d)[0]
    check(argv[argv.index("--permission-prompt-tool") + 1] ==
          "mcp__switchboard__approve", "prompt tool on argv")
    check(d.stop() == 0, "clean exit")
    log = open(d.errlog, encoding="utf-8", errors="replace").read()
    for pat in (r"Read allowed by config \(auto_allow\)",
                r"Bash allowed for this session by console:me",
                r"Bash allowed \(allowed for this session earlier\)",
                r"Write denied by console:me: not in this PR",
                r"WebFetch denied by config \(auto_deny\)"):
        check(re.search(pat, log), "decision logged: %s" % pat)


def test_claude_approval_plain_deny(tmp, ds):
    d = daemon(tmp, ds, [claude('approvals = "chat"; auto_allow = [ "Read",'
                                ' "Write" ];')])
    d.send("new scenario=approve x")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=approve").group(1)
    d.expect(r"❓ q(\d+) from #1: May #1 use Bash\?")
    d.send("t%s deny" % t)
    d.expect(r"❓ q(\d+) from #1: May #1 use Bash\?")
    d.send("t%s Allow" % t)
    d.expect(r"❓ q(\d+) from #1: May #1 use WebFetch\?")
    d.send("t%s Allow" % t)
    d.expect(r"ran Read; denied: console:me denied this tool use; ran Bash;"
             r" ran Write; ran WebFetch")
    check(d.stop() == 0, "clean exit")


def test_claude_error_max_turns_fails_with_reason(tmp, ds):
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=maxturns big job")
    d.expect(r"⚠️ #1 failed on `sb/")
    d.expect(r"reason: error_max_turns: Claude Code reached its turn limit"
             r" after 2 turns")
    d.expect(r"#1 claude · failed")
    check(d.stop() == 0, "clean exit")


def test_claude_followup_resumes_the_first_session(tmp, ds):
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=resume first")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=resume").group(1)
    d.expect(r"✅ #1 done")
    d.expect(r"turn with resume=None")
    d.send("t%s #1 scenario=resume second" % t)
    d.expect(r"#1: starting a new turn with your follow-up")
    d.expect(r"✅ #1 done")
    m = d.expect(r"turn with resume=([0-9a-f-]{36})")
    d.send("t%s #1 scenario=resume third" % t)
    d.expect(r"✅ #1 done")
    m2 = d.expect(r"turn with resume=([0-9a-f-]{36})")
    r = runs(d)
    check(len(r) == 3, "three runs: %d" % len(r))
    check("--resume" not in r[0], "first run is fresh")
    first_sid = d.db("SELECT session_id FROM agents WHERE id = 1")[0][0]
    check(r[1][r[1].index("--resume") + 1] == first_sid, "resumes session")
    # The resumed run reported a new id; the first one is kept.
    check(m.group(1) == first_sid and m2.group(1) == first_sid,
          "kept the first session id")
    check(r[1][-1] == "scenario=resume second", "follow-up is the prompt")
    check(d.stop() == 0, "clean exit")


def test_claude_budget_max_turns_stops_and_keeps_work(tmp, ds):
    d = daemon(tmp, ds, [claude("max_turns = 3;")])
    d.send("new scenario=slow long job")
    d.expect(r"⚠️ #1 cancelled")
    d.expect(r"stopped: budget: max_turns 3 reached; the branch keeps the"
             r" partial work")
    br = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb/1-*",
             cwd=d.repo).split()[0]
    n = int(git("show", "%s:slow.txt" % br, cwd=d.repo).strip())
    check(2 <= n < 10, "partial work committed: %d" % n)
    check(d.stop() == 0, "clean exit")


def test_claude_budget_wall_time(tmp, ds):
    d = daemon(tmp, ds, [claude("max_wall_time = 1;")])
    d.send("new scenario=slow long job")
    d.expect(r"stopped: budget: max_wall_time 1s reached", timeout=15)
    check(d.stop() == 0, "clean exit")


def test_claude_cancel_escalates_sigint_sigterm_sigkill(tmp, ds):
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=stubborn do not stop")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=stubborn").group(1)
    d.expect(r"ignoring you")
    d.send("t%s cancel #1" % t)
    d.expect(r"⚠️ #1 cancelled \(killed by signal 9\)", timeout=15)
    sigs = open(os.path.join(d.state, "worktrees", "1", "signals.txt")).read()
    check(sigs.split() == ["2", "15"], "signals seen: %r" % sigs)
    log = open(d.errlog).read()
    check("sending SIGTERM" in log and "sending SIGKILL" in log, "escalation logged")
    check(d.stop() == 0, "clean exit")


def test_codex_success_ask_resume_and_failure(tmp, ds):
    d = daemon(tmp, ds, [codex()])
    d.send("new scenario=success add feature")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=success").group(1)
    d.expect(r"✅ #1 done")
    d.expect(r"Added feature\.py; tests pass\.")
    d.expect(r"2400 tokens in / 120 out")
    check(d.saw(r"• Run: bash -lc .GH_TOKEN=\*\*\* make test."), "run step")
    check(not d.saw(r"ghsecret99"), "secret masked")
    # Codex reports absolute paths; the card shows them in the worktree.
    check(d.saw(r"• Add feature\.py$"), "file change step, relative path")
    check(d.saw(r"• Plan: 1/2 done · next: write tests"), "todo step")
    thread = d.db("SELECT session_id FROM agents WHERE id = 1")[0][0]
    check(thread, "thread id stored")
    d.send("t%s #1 scenario=resume again" % t)
    d.expect(r"✅ #1 done")
    d.expect(r"resumed thread %s" % thread)
    d.send("t%s new scenario=ask style" % t)
    qid = d.expect(r"❓ q(\d+) from #2: Tabs or spaces\?").group(1)
    d.send("click q%s Spaces" % qid)
    d.expect(r"✅ #2 done")
    d.expect(r"Using Spaces\.")
    d.send("t%s new scenario=fail x" % t)
    d.expect(r"⚠️ #3 failed \(exit 1\)")
    d.expect(r"reason: turn\.failed: stream disconnected before completion")
    r = runs(d)
    check(r[0][:2] == ["exec", "--json"] and r[0][-2:] ==
          ["--", "scenario=success add feature"], "argv %r" % r[0])
    check("--skip-git-repo-check" in r[0], "configured args")
    # exec's default sandbox is read-only; inside ours (the default here)
    # Codex's own cannot start, so the driver asks for none of its own.
    check(r[0][r[0].index("-s") + 1] == "danger-full-access",
          "sandbox %r" % r[0])
    check(any(a == 'mcp_servers.switchboard.default_tools_approval_mode='
              '"approve"' for a in r[0]), "own tools approved: %r" % r[0])
    br = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb/1-*",
             cwd=d.repo).split()[0]
    check("feature.py" in git("ls-tree", "--name-only", br, cwd=d.repo),
          "the agent's write reached the branch")
    check(r[1][r[1].index("resume") + 1] == thread, "resume THREAD_ID")
    check(all("SWITCHBOARD_AGENT_TOKEN=" not in a for a in sum(r, [])),
          "token never on argv")
    check(d.stop() == 0, "clean exit")


def test_claude_gets_no_open_stdin(tmp, ds):
    """Finding 1: Claude Code waits 3 s for an open stdin (the fake records
    what it found).  Codex's case, a hang, is test_codex_success_*."""
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=resume first")
    d.expect(r"✅ #1 done")
    states = open(d.argv_log + ".stdin").read().split()
    check(states == ["eof"], "claude's stdin: %r" % states)
    check(d.stop() == 0, "clean exit")


def test_claude_own_tools_are_pre_allowed_without_approvals(tmp, ds):
    """Finding 4: without --allowedTools Claude Code denies switchboard's own
    tools (no approvals) — the question never reaches the thread."""
    d = daemon(tmp, ds, [claude()])
    d.send("new scenario=ask pick one")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=ask").group(1)
    d.expect(r"❓ q(\d+) from #1: Which provider\?")
    d.send("t%s 1" % t)
    d.expect(r"✅ #1 done")
    d.expect(r"chose GitHub")
    argv = runs(d)[0]
    allowed = argv[argv.index("--allowedTools") + 1].split(",")
    check(sorted(allowed) == ["mcp__switchboard__ask_user",
                              "mcp__switchboard__finish",
                              "mcp__switchboard__report_progress"],
          "allowed: %r" % allowed)
    check(not d.saw(r"Denied"), "nothing denied")
    conf = json.load(open(argv[argv.index("--mcp-config") + 1]))
    srv = conf["mcpServers"]["switchboard"]
    check(srv["timeout"] >= 3600 * 1000, "per-server timeout: %r" % srv)
    check(srv["env"]["SWITCHBOARD_MCP_APPROVE"] == "0", "no approve tool")
    check(d.stop() == 0, "clean exit")


def test_claude_approvals_never_ask_about_own_tools(tmp, ds):
    """Finding 4: with approvals = "chat" the first question used to be
    "May #1 use mcp__switchboard__ask_user?"."""
    d = daemon(tmp, ds, [claude('approvals = "chat";')])
    d.send("new scenario=ask pick one")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=ask").group(1)
    d.expect(r"❓ q(\d+) from #1: (.*)")
    check(d.saw(r"❓ q\d+ from #1: Which provider\?"),
          "the first question is the model's: %r" % d.lines[-3:])
    d.send("t%s 2" % t)
    d.expect(r"chose Google")
    check(not d.saw(r"May #1 use mcp__"), "no question about own tools")
    argv = runs(d)[0]
    conf = json.load(open(argv[argv.index("--mcp-config") + 1]))
    check(conf["mcpServers"]["switchboard"]["env"]
          ["SWITCHBOARD_MCP_APPROVE"] == "1", "approve tool for the CLI")
    check(d.stop() == 0, "clean exit")


def test_claude_denials_show_on_the_card(tmp, ds):
    """Finding 6: permission_denied events were ignored; a tool use the CLI
    refused must show on the card."""
    d = daemon(tmp, ds, [claude().replace('permission_mode = "acceptEdits";',
                                          '')])
    d.send("new scenario=denied deploy")
    d.expect(r"✅ #1 done")
    d.expect(r"could not deploy")
    d.expect(r"#1 claude · done")
    check(d.saw(r"• Denied: Bash$"), "denial on the card")
    check(d.stop() == 0, "clean exit")


def test_claude_budget_counts_a_resumed_sessions_cost_once(tmp, ds):
    """Finding 5: a resumed run's total_cost_usd is the session's total; the
    fake reports $0.0123 per run cumulatively (0.0123, 0.0246, 0.0369).
    With max_cost_usd 0.03 the third run may start (0.0246 spent) and is
    stopped when it reports 0.0369; counted twice it would stop at the
    second run already."""
    d = daemon(tmp, ds, [claude("max_cost_usd = 0.03;")])
    d.send("new scenario=resume first")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: scenario=resume").group(1)
    d.expect(r"✅ #1 done")
    d.expect(r"1 turn · \$0\.0123 · ")
    d.send("t%s #1 scenario=resume second" % t)
    d.expect(r"✅ #1 done")
    # This run's part, not the session's total.
    d.expect(r"1 turn · \$0\.0123 · ")
    d.send("t%s #1 scenario=resume third" % t)
    d.expect(r"stopped: budget: max_cost_usd \$0\.03 reached \(\$0\.0369\)")
    d.send("t%s #1 scenario=resume fourth" % t)
    d.expect(r"budget: max_cost_usd \$0\.03 already spent \(\$0\.0369\)")
    check(len(runs(d)) == 3, "no fourth run")
    # The agent's cost (agent_add_cost) is every run's part once, stored.
    cost = d.db("SELECT cost_usd FROM agents WHERE id = 1")[0][0]
    check(cost is not None and abs(cost - 0.0369) < 1e-9, "cost %r" % cost)
    check(d.stop() == 0, "clean exit")


def test_codex_failed_own_tool_call_fails_the_run(tmp, ds):
    """Finding 2: a switchboard tool call Codex refuses (approval policy
    never) shows on the card and fails the run instead of passing its
    error text off as the answer.  The user's -c comes after ours and wins,
    like Codex's own -c handling."""
    d = daemon(tmp, ds, [codex(args='"-c", "mcp_servers.switchboard.'
                               'default_tools_approval_mode=\\"prompt\\""')])
    d.send("new scenario=ask style")
    d.expect(r"⚠️ #1 failed", timeout=20)
    d.expect(r"reason: switchboard: ask_user failed: MCP tool call requires"
             r" approval, but approval policy is never")
    check(d.saw(r"• switchboard: ask_user failed: MCP tool call requires"
                r" approval"), "failure on the card")
    check(d.stop() == 0, "clean exit")


def test_codex_sandbox_is_configurable(tmp, ds):
    """Finding 3: exec's default sandbox is read-only; sandbox = "read-only"
    passes it on (and the fake's write then fails, like the real one)."""
    d = daemon(tmp, ds, [codex('codex_sandbox = "read-only";')])
    d.send("new scenario=success x")
    d.expect(r"✅ #1 done", timeout=20)
    argv = runs(d)[0]
    check(argv[argv.index("-s") + 1] == "read-only", "argv %r" % argv)
    br = git("for-each-ref", "--format=%(refname:short)", "refs/heads/sb/1-*",
             cwd=d.repo).split()[0]
    check("feature.py" not in git("ls-tree", "--name-only", br, cwd=d.repo),
          "read-only: nothing written")
    check(d.stop() == 0, "clean exit")


def test_mcp_server_over_pipes_protocol_errors(tmp, ds):
    import subprocess
    from sb import BIN
    p = subprocess.Popen([BIN, "mcp"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, SWITCHBOARD_SOCKET=os.path.join(
                             tmp, "none.sock"), SWITCHBOARD_AGENT_TOKEN="t"))
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        "this is not json",
        {"jsonrpc": "2.0", "id": 2, "method": "no/such/method"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "report_progress", "arguments": {"text": "hi"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "report_progress", "arguments": {}}},
    ]
    data = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n"
                   for l in lines)
    out, err = p.communicate(data.encode(), timeout=20)
    check(p.returncode == 0, "exit %s: %s" % (p.returncode, err))
    r = [json.loads(l) for l in out.decode().splitlines()]
    check(len(r) == 5, "one reply per request, none for notifications: %r" % r)
    check(r[0]["id"] == 1 and "tools" in r[0]["result"]["capabilities"],
          "initialize")
    check(r[1]["id"] is None and r[1]["error"]["code"] == -32700, "parse")
    check(r[2]["id"] == 2 and r[2]["error"]["code"] == -32601, "method")
    check(r[3]["result"]["isError"] is True and "no daemon" in
          r[3]["result"]["content"][0]["text"], "unreachable daemon")
    check(r[4]["error"]["code"] == -32602, "missing argument")


def test_command_task_starting_with_dash_is_never_an_option(tmp, ds):
    """`-rf` or `--upload-pack=…` as the task must not reach the program
    where it would parse it as an option: refused with the reason, before
    any agent, worktree or branch exists.  After a "--" element it is an
    operand, passed as it is; nothing is ever inserted."""
    from sb import agent, branch_of
    d = Daemon(tmp, [("bare", [agent("env.sh"), "{task}"], 60)])
    ds.append(d)
    d.start()
    d.send("new --upload-pack=touch /tmp/x")
    d.expect(r"Could not start an agent: the task starts with '-', and "
             r"agent 'bare' passes it where its program would read it as"
             r" an option")
    check(d.db("SELECT count(*) FROM agents") == [(0,)], "an agent row")
    check(not git("branch", "--list", "sb/*", cwd=d.repo).strip(),
          "a branch was made")
    d.send("new fix -rf handling")
    d.expect(r"✅ #1 done")
    args = git("show", "%s:args.txt" % branch_of(d.repo, 1),
               cwd=d.repo).splitlines()
    check(args == ["fix -rf handling"], "argv %r" % args)
    check(d.stop() == 0, "clean exit")
    tmp2 = os.path.join(tmp, "ended")
    os.makedirs(tmp2)
    d = Daemon(tmp2, [("ended", [agent("env.sh"), "--", "{task}"], 60)])
    ds.append(d)
    d.start()
    d.send("new -rf now")
    d.expect(r"✅ #1 done")
    args = git("show", "%s:args.txt" % branch_of(d.repo, 1),
               cwd=d.repo).splitlines()
    check(args == ["--", "-rf now"], "after --: %r" % args)
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
