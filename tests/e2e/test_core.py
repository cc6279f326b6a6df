"""End-to-end tests of the orchestrator core through the console adapter:
the real binary, real worktrees, real child processes."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sb  # noqa: E402
from sb import (Daemon, add_many_files, agent, branch_of, check,  # noqa: E402
                free_port, git, launch, log_text, make_repo, new_thread,
                run_tests, wait_for_log, wait_until, write_script)

ASK = [("ask", [agent("ask.sh"), "{task}"], 60)]
ENV_AGENT = [("env", [agent("env.sh"), "{task}"], 60)]
SLOW_AGENT = [("slow", [agent("slow.sh")], 60)]


def test_task_runs_with_card_edits_and_answer_by_plain_reply(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    d.send("new login page")
    m = d.expect(r"^\[t(\d+)\] (\d+) console:me: login page$")
    t, root = m.group(1), m.group(2)
    d.expect(r"^\[t%s\] \+👀 %s$" % (t, root))
    # "Started" comes first, then the card that is edited in place.
    m = d.expect(r"^\[t%s\] (\d+) switchboard: Started #1 ask on "
                 r"`(sb/[^`]+)`" % t)
    smsg, branch = int(m.group(1)), m.group(2)
    card = d.expect(r"^\[t%s\] (\d+) switchboard: #1 ask · "
                    r"(preparing|running)" % t).group(1)
    check(int(card) > smsg, "the card after Started: %s, %s" % (smsg, card))
    check(not d.saw(r"#1 ask · queued"), "no card before Started")
    check(branch == "sb/1-login-page", "branch is %s" % branch)
    q = d.expect(r"^\[t%s\] (\d+) switchboard: ❓ q(\d+) from #1: Which provider"
                 " for login page\?" % t)
    qmsg, qid = q.group(1), q.group(2)
    d.expect(r"^\s+\[choices q%s: GitHub \| Google\]" % qid)
    d.send("t%s google" % t)     # plain reply, any case, matches the choice
    d.expect(r"^\[t%s\] ~%s ✅ q%s" % (t, qmsg, qid))
    d.expect(r"answered by console:me: Google")
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done on `%s`" % (t, branch))
    d.expect(r"chose Google")
    d.expect(r"1 file changed, 1 insertion\(\+\)")
    d.expect(r"^\[t%s\] ~%s #1 ask · done" % (t, card))
    # The card was edited in place while it ran (order vs. posts may vary).
    check(d.saw(r"^\[t%s\] ~%s #1 ask · running" % (t, card)), "running card")
    check(d.saw(r"^\s+• step one: login page"), "progress step on the card")
    check(d.saw(r"^\s+waiting for an answer to q%s" % qid), "waiting shown")
    # The leftover file was committed on the agent's branch, not on main.
    show = git("show", "%s:answer.txt" % branch, cwd=d.repo)
    check(show.strip() == "Google", "answer.txt on branch: %r" % show)
    log = git("log", "-1", "--format=%an <%ae>", branch, cwd=d.repo)
    check("Switchboard" in log, "commit author: %r" % log)
    check(git("rev-parse", "main", cwd=d.repo) ==
          git("rev-parse", "main~0", cwd=d.repo), "main untouched")
    rc = d.stop()
    check(rc == 0, "exit status %s" % rc)


def test_answer_by_click_and_second_answer_is_refused(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    t = new_thread(d, "oauth")
    qid = d.expect(r"❓ q(\d+) from #1").group(1)
    d.send("click q%s GitHub" % qid)
    d.expect(r"answered by console:me: GitHub")
    d.expect(r"✅ #1 done")
    d.send("t%s q%s Google" % (t, qid))
    d.expect(r"Sorry, q%s was already answered by console:me" % qid)
    check(d.stop() == 0, "clean exit")


def test_two_agents_two_questions_routed_by_id(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    t = new_thread(d, "alpha")
    qa = d.expect(r"❓ q(\d+) from #1: Which provider for alpha").group(1)
    d.send("t%s new beta" % t)
    qb = d.expect(r"❓ q(\d+) from #2: Which provider for beta").group(1)
    d.send("t%s GitHub" % t)        # ambiguous: two are open
    d.expect(r"2 questions are open; which one")
    d.expect(r"^\s+q%s \(#1\)" % qa)
    d.send("t%s q%s Google" % (t, qb))
    d.expect(r"q%s from #2.*" % qb)
    d.expect(r"answered by console:me: Google")
    d.expect(r"✅ #2 done")
    d.send("t%s GitHub" % t)        # now only one is open: plain reply works
    d.expect(r"answered by console:me: GitHub")
    d.expect(r"✅ #1 done")
    br1 = branch_of(d.repo, 1)
    br2 = branch_of(d.repo, 2)
    check(git("show", "%s:answer.txt" % br1, cwd=d.repo).strip() == "GitHub",
          "agent 1 got its own answer")
    check(git("show", "%s:answer.txt" % br2, cwd=d.repo).strip() == "Google",
          "agent 2 got its own answer")
    check(d.stop() == 0, "clean exit")


def test_cancel_stops_agent_and_cancels_its_question(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    t = new_thread(d, "cancel me")
    qmsg, qid = d.expect(r"^\[t\d+\] (\d+) switchboard: ❓ q(\d+)").groups()
    d.send("t%s cancel #1" % t)
    d.expect(r"Cancelling #1")
    d.expect(r"^\[t%s\] ~%s ✖ q%s" % (t, qmsg, qid))
    d.expect(r"⚠️ #1 cancelled")
    d.expect(r"cancelled by console:me")
    # The cancelled question can no longer be answered.
    d.send("t%s q%s GitHub" % (t, qid))
    d.expect(r"Sorry, q%s is cancelled and can no longer be answered" % qid)
    d.send("t%s cancel #1" % t)
    d.expect(r"#1 has already ended \(cancelled\)")
    check(d.stop() == 0, "clean exit")


def test_crashing_agent_reports_failure_with_output_tail(tmp, ds):
    d = launch(ds, Daemon(tmp, [("crash", [agent("crash.sh")], 60)]))
    d.send("new break it")
    d.expect(r"⚠️ #1 failed \(exit 7\)")
    d.expect(r"output tail:")
    d.expect(r"error: the thing is broken at line 42")
    d.expect(r"#1 crash · failed")
    check(d.stop() == 0, "clean exit")


def test_hanging_agent_is_killed_at_timeout(tmp, ds):
    d = launch(ds, Daemon(tmp, [("hang", [agent("hang.sh")], 2)]))
    d.send("new hang forever")
    d.expect(r"#1 hang · running")
    # SIGTERM is ignored by the script; SIGKILL after kill_grace ends it.
    d.expect(r"⚠️ #1 timeout \(killed by signal 9\)", timeout=15)
    log = log_text(d)
    check("timed out" in log and "SIGKILL" in log, "timeout and SIGKILL logged")
    check(d.stop() == 0, "clean exit")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_flooding_agent_keeps_memory_bounded(tmp, ds):
    d = launch(ds, Daemon(tmp, [("flood", [agent("flood.sh")], 60)]))
    time.sleep(0.3)
    before = rss_kb(d.proc.pid)
    d.send("new flood")
    peak = before
    deadline = time.time() + 60
    while time.time() < deadline:
        peak = max(peak, rss_kb(d.proc.pid))
        if any("⚠️ #1 failed" in line for line in d.lines):
            break
        time.sleep(0.05)
    d.expect(r"⚠️ #1 failed \(exit 1\)")
    d.expect(r"LAST LINE OF THE FLOOD")
    # 64 MB went through; the daemon keeps only the configured tail.
    check(peak - before < 20 * 1024,
          "RSS grew by %d kB for 64 MB of output" % (peak - before))
    check(d.stop() == 0, "clean exit")


def test_not_allowed_user_gets_one_refusal_and_nothing_runs(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    d.send("as mallory new rm -rf everything")
    t = d.expect(r"^\[t(\d+)\] \d+ console:mallory: rm -rf").group(1)
    d.expect(r"Sorry, console:mallory is not allowed")
    d.send("as mallory t%s please" % t)
    d.send("t%s status" % t)        # an allowed user in the same thread
    d.expect(r"No agents in this thread yet")
    refusals = [l for l in d.lines if "is not allowed" in l]
    check(len(refusals) == 1, "refusals: %r" % refusals)
    check(d.db("SELECT count(*) FROM agents")[0][0] == 0, "no agent recorded")
    check(d.stop() == 0, "clean exit")


def test_kill9_then_restart_reports_interrupted_and_loses_nothing(tmp, ds):
    d = launch(ds, Daemon(tmp, SLOW_AGENT))
    t = new_thread(d, "slow job")
    d.expect(r"#1 slow · running")
    d.expect(r"working 2")
    # Queue a burst of outgoing messages, then die mid-run.
    for _ in range(5):
        d.send("t%s status" % t)
    time.sleep(0.05)
    d.kill9()
    first_run = list(d.lines)

    d2 = launch(ds, Daemon(tmp, SLOW_AGENT))
    d2.expect(r"^\[t%s\] \d+ switchboard: ⚠️ #1 was interrupted" % t)
    time.sleep(0.5)
    check(d2.saw(r"^\[t%s\] ~\d+ #1 · interrupted" % t), "card shows interrupted")
    time.sleep(1)
    check(d2.db("SELECT count(*) FROM outbox WHERE status != 'sent'")[0][0]
          == 0, "outbox drained")
    # Nothing lost: every row was printed, each with an id of its own.  The
    # README's contract: the message being printed when the kill came may be
    # printed again (a terminal cannot be asked what it showed) -- the
    # first run's last post, and only it.
    def posts_of(lines):
        return [l for l in lines
                if re.match(r"^\[t\d+\] \d+ switchboard:", l)]

    def text(line):     # "[t1] 7 switchboard: x" without its message id
        return re.sub(r"^(\[t\d+\]) \d+ ", r"\1 ", line)
    before, after = posts_of(first_run), posts_of(d2.lines)
    posts = before + after
    ids = [l.split()[1] for l in posts]
    check(len(ids) == len(set(ids)), "a message id printed twice")
    rows = d2.db("SELECT count(*) FROM outbox WHERE op = 'post'")[0][0]
    again = len(posts) - rows
    check(again in (0, 1), "%d post rows, %d printed" % (rows, len(posts)))
    if again == 1:
        check(before and text(before[-1]) in [text(l) for l in after],
              "printed once more, but not the message in flight at the kill:"
              " %r" % (before[-1:],))
    # The orphaned agent process was terminated, not left running.
    pid = d2.db("SELECT pid FROM agents WHERE id = 1")[0][0]
    time.sleep(0.5)
    alive = pid and os.path.exists("/proc/%d" % pid) and \
        "SWITCHBOARD_AGENT_ID=1" in open("/proc/%d/environ" % pid).read()
    check(not alive, "orphaned agent still running")
    # What the interruption notice promises holds after the restart: the
    # agent is found again and a follow-up is a new turn on its branch.
    d2.send("t%s diff #1" % t)
    d2.expect(r"#1 `sb/1-slow-job` against main")
    d2.send("t%s #1 finish it" % t)
    d2.expect(r"#1: starting a new turn with your follow-up")
    d2.expect(r"✅ #1 done on `sb/1-slow-job`", timeout=30)
    check(d2.stop() == 0, "clean exit")


def test_agent_environment_has_no_secrets_and_argv_is_literal(tmp, ds):
    hostile = "x; touch /tmp/sb-pwned-$$ `id` $(id) ../../etc"
    d = Daemon(tmp, [("env", [agent("env.sh"), "{task}", "--id={agent_id}",
                              "{branch}"], 60)],
               env={"SB_TEST_SECRET": "xoxb-very-secret-value",
                    "SB_HOOK_SECRET": "hook-signing-secret",
                    "SB_FORGE_TOKEN": "ghp_forge-token-value",
                    "SWITCHBOARD_CONFIG": "/nope"},
               adapters='slack = { enabled = false; '
                        'bot_token = "env:SB_TEST_SECRET"; };',
               extra='webhooks = ( { name = "gh"; path = "/hooks/gh";'
                     ' kind = "github"; secret = "env:SB_HOOK_SECRET";'
                     ' target = { adapter = "console"; channel = "console"; };'
                     ' repo = "r"; agent = "env";'
                     ' github = { token = "env:SB_FORGE_TOKEN"; }; } );',
               http="127.0.0.1:%d" % free_port())
    launch(ds, d)
    d.send("new " + hostile)
    d.expect(r"✅ #1 done")
    wt = os.path.join(d.state, "worktrees", "1")
    br = branch_of(d.repo, 1)
    args = git("show", "%s:args.txt" % br, cwd=d.repo).splitlines()
    check(args[0] == hostile, "argv[1] is the literal task: %r" % args[0])
    check(args[1] == "--id=1", "agent id substituted: %r" % args[1])
    check(args[2] == br, "branch substituted: %r" % args[2])
    check(not any(os.path.exists(p) for p in
                  [f for f in os.listdir("/tmp") if f.startswith("sb-pwned")]),
          "a shell ran the task text")
    env = git("show", "%s:env.txt" % br, cwd=d.repo)
    check("SWITCHBOARD_AGENT_TOKEN=" in env and "SWITCHBOARD_SOCKET=" in env,
          "agent variables present")
    check("SWITCHBOARD_CONFIG=" not in env, "bridge variables stripped")
    check("SB_TEST_SECRET" not in env and "very-secret" not in env,
          "a variable the config names as a secret reached the agent")
    check("SB_HOOK_SECRET" not in env and "hook-signing" not in env and
          "SB_FORGE_TOKEN" not in env and "forge-token" not in env,
          "a webhook secret or forge token reached the agent")
    pwd = git("show", "%s:pwd.txt" % br, cwd=d.repo).strip()
    check(os.path.realpath(pwd) == os.path.realpath(wt), "cwd is the worktree")
    check(re.match(r"^sb/1-[a-z0-9-]+$", br), "sanitized branch %r" % br)
    check(d.stop() == 0, "clean exit")


def test_agents_call_the_small_client_which_links_only_libc_and_jansson(tmp, ds):
    small = os.path.join(os.path.dirname(os.path.abspath(sb.BIN)),
                         "switchboard-agent")
    check(os.access(small, os.X_OK), "%s is built beside the daemon" % small)
    libs = subprocess.run(["ldd", small], capture_output=True, text=True).stdout
    heavy = [l for l in ("libuv", "libwebsockets", "libcurl", "libgit2",
                         "libsqlite3", "libconfig", "libcrypto") if l in libs]
    check(not heavy, "switchboard-agent links %s" % heavy)
    # Not an agent op: handed to the full binary beside it.
    r = subprocess.run([small, "version"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.startswith("switchboard "),
          "version via the full binary: %r" % (r.stdout + r.stderr))
    r = subprocess.run([small, "agent", "progress"], capture_output=True,
                       text=True, env={"PATH": "/usr/bin:/bin"})
    check(r.returncode == 2, "usage error exits 2, got %d" % r.returncode)
    d = launch(ds, Daemon(tmp, ENV_AGENT))
    d.send("new look at the environment")
    d.expect(r"✅ #1 done")
    env = git("show", "%s:env.txt" % branch_of(d.repo, 1), cwd=d.repo)
    check(("SWITCHBOARD_BIN=%s\n" % os.path.realpath(small)) in env,
          "agents' SWITCHBOARD_BIN is the small client: %r" %
          [l for l in env.splitlines() if l.startswith("SWITCHBOARD_BIN=")])
    check(d.stop() == 0, "clean exit")


def test_wrong_agent_token_is_refused(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    time.sleep(0.3)
    sock = os.path.join(d.state, "agent.sock")
    r = d.cli("agent", "progress", "hi", env={"SWITCHBOARD_SOCKET": sock,
                                             "SWITCHBOARD_AGENT_TOKEN": "f" * 64})
    # 4: no daemon knows this token (what an orphan of an earlier run sees).
    check(r.returncode == 4, "exit %d" % r.returncode)
    check("unknown or expired agent token" in r.stderr, r.stderr)
    check(oct(os.stat(sock).st_mode & 0o777) == "0o600", "agent socket 0600")
    check(d.stop() == 0, "clean exit")


def test_ask_timeout_exits_3_and_marks_question_expired(tmp, ds):
    script = write_script(tmp, "asktimeout.sh",
                          '#!/bin/sh\n'
                          '"$SWITCHBOARD_BIN" agent ask "Quick?" --timeout 1\n'
                          'echo "ask exit $?" > rc.txt\n'
                          '"$SWITCHBOARD_BIN" agent done "asked"\n')
    d = launch(ds, Daemon(tmp, [("t", [script], 60)]))
    d.send("new quick question")
    qmsg, qid = d.expect(r"^\[t\d+\] (\d+) switchboard: ❓ q(\d+)").groups()
    d.expect(r"^\[t\d+\] ~%s ✖ q%s.*" % (qmsg, qid))
    d.expect(r"✅ #1 done")
    br = branch_of(d.repo, 1)
    check(git("show", "%s:rc.txt" % br, cwd=d.repo).strip() == "ask exit 3",
          "ask exits 3 on expiry")
    st = d.db("SELECT status FROM questions WHERE id = %s" % qid)[0][0]
    check(st == "expired", "question status %s" % st)
    check(d.stop() == 0, "clean exit")


def test_queue_beyond_per_conversation_limit(tmp, ds):
    d = launch(ds, Daemon(tmp, SLOW_AGENT))
    t = new_thread(d, "one")
    d.send("t%s new two" % t)
    d.send("t%s new three" % t)
    d.send("t%s new four" % t)      # limit is 3 per conversation
    d.expect(r"#4 is queued, 0 ahead")
    d.expect(r"Started #4 slow", timeout=30)
    # #4 started only after one of the first three had ended.
    lines = list(d.lines)
    start4 = next(i for i, l in enumerate(lines) if "Started #4 slow" in l)
    ended = [i for i, l in enumerate(lines)
             if re.search(r"switchboard: (✅|⚠️) #[123] ", l)]
    check(ended and ended[0] < start4,
          "#4 started before any of #1-#3 ended:\n" + "\n".join(lines))
    for n in (1, 2, 3, 4):
        if not d.saw(r"switchboard: (✅|⚠️) #%d " % n):
            d.expect(r"switchboard: (✅|⚠️) #%d " % n, timeout=30)
    check(all(d.saw(r"switchboard: ✅ #%d done" % n) for n in (1, 2, 3, 4)),
          "an agent did not finish well:\n" + "\n".join(d.lines))
    check(d.stop() == 0, "clean exit")


def test_commands_status_diff_help_and_unknown(tmp, ds):
    d = launch(ds, Daemon(tmp, ASK))
    t = new_thread(d, "status check")
    qid = d.expect(r"❓ q(\d+) from #1").group(1)
    d.send("t%s status" % t)
    d.expect(r"#1 ask · running")
    d.expect(r"^\s+q%s \(#1\) is waiting: Which provider" % qid)
    d.send("t%s help" % t)
    d.expect(r"I run coding agents for this thread")
    d.send("t%s click q%s Google" % (t, qid))
    d.expect(r"✅ #1 done")
    d.send("t%s diff #1" % t)
    d.expect(r"#1 `sb/1-status-check` against main")
    d.expect(r"answer.txt")
    d.send("t%s what is going on" % t)
    d.expect(r"No question is open here. Say `help`")
    d.send("t%s cancel #99" % t)
    d.expect(r"There is no agent #99 in this thread")
    r = d.cli("status", "-s", d.state)
    check(r.returncode == 0 and "conversations: 1" in r.stdout, r.stdout + r.stderr)
    check(d.stop() == 0, "clean exit")


def test_ended_agents_leave_memory_and_come_back_when_named(tmp, ds):
    d = launch(ds, Daemon(tmp, ENV_AGENT, limits="keep_ended = 1;"))
    t = new_thread(d, "first")
    d.expect(r"✅ #1 done")
    check(wait_for_log(d, "agent 1: unloaded", timeout=20),
          "an ended agent was never unloaded from memory")
    d.send("t%s status" % t)
    d.expect(r"#1 env · done")
    d.send("t%s diff #1" % t)
    d.expect(r"#1 `sb/1-first` against main")
    d.send("t%s #1 second round" % t)
    d.expect(r"#1: starting a new turn with your follow-up")
    d.expect(r"✅ #1 done")
    check("agent 1: loaded from the store" in log_text(d),
          "#1 was loaded back from the store")
    check(d.stop() == 0, "clean exit")


def test_a_stored_agent_without_a_repo_does_not_crash_status(tmp, ds):
    # Found by bench/scale, whose rows leave the nullable repo column empty:
    # loading such an agent compared NULL with the configured repo names.
    d = launch(ds, Daemon(tmp, ENV_AGENT))
    t = new_thread(d, "first")
    d.expect(r"✅ #1 done")
    check(d.stop() == 0, "clean exit")
    import sqlite3
    con = sqlite3.connect(os.path.join(d.state, "switchboard.db"))
    con.execute("UPDATE agents SET repo = NULL")
    con.commit()
    con.close()
    d2 = launch(ds, Daemon(tmp, ENV_AGENT))
    d2.send("t%s status" % t)
    d2.expect(r"No agents in this thread yet|#1 ")
    check(d2.proc.poll() is None, "the daemon died")
    check(d2.stop() == 0, "clean exit")


def test_followup_to_finished_agent_starts_new_turn_in_same_worktree(tmp, ds):
    d = launch(ds, Daemon(tmp, ENV_AGENT))
    t = new_thread(d, "first")
    d.expect(r"✅ #1 done")
    d.send("t%s #1 second round" % t)
    d.expect(r"#1: starting a new turn with your follow-up")
    d.expect(r"✅ #1 done")
    br = branch_of(d.repo, 1)
    args = git("show", "%s:args.txt" % br, cwd=d.repo).strip()
    check(args == "second round", "second turn argv %r" % args)
    n = int(git("rev-list", "--count", "main..%s" % br, cwd=d.repo))
    check(n == 2, "two commits on the branch, got %d" % n)
    check(d.stop() == 0, "clean exit")


def test_followups_queued_before_a_cancel_are_run_in_order_not_lost(tmp, ds):
    script = write_script(tmp, "hang-or-done.sh",
                          '#!/bin/sh\ncase "$1" in hang*) trap "" TERM;'
                          ' while :; do sleep 1; done;; esac\n'
                          '"$SWITCHBOARD_BIN" agent done "ran $1"\n')
    d = launch(ds, Daemon(tmp, [("hd", [script, "{task}"], 60)]))
    t = new_thread(d, "hang one")
    d.send("t%s new hang two" % t)
    d.send("t%s new hang three" % t)
    d.send("t%s new four" % t)      # limit is 3 per conversation
    d.expect(r"#4 is queued")
    d.send("t%s #4 first follow-up" % t)
    d.expect(r"#4: queued for its next turn")
    d.send("t%s cancel #4" % t)
    d.expect(r"#4 cancelled")
    d.send("t%s #4 second follow-up" % t)
    d.expect(r"#4: starting a new turn")
    d.send("t%s cancel #1" % t)
    d.expect(r"ran first follow-up", timeout=20)
    d.expect(r"ran second follow-up", timeout=20)
    check(d.stop() == 0, "clean exit")


def test_cancel_while_preparing_keeps_worktree_for_a_followup(tmp, ds):
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    add_many_files(repo)        # the checkout takes a while
    d = launch(ds, Daemon(tmp, ENV_AGENT, repo=repo))
    t = new_thread(d, "first")
    d.send("t%s cancel #1" % t)
    d.expect(r"#1 cancelled", timeout=20)
    d.send("t%s #1 second round" % t)
    d.expect(r"#1: starting a new turn with your follow-up")
    d.expect(r"✅ #1 done", timeout=20)
    args = git("show", "%s:args.txt" % branch_of(repo, 1), cwd=repo).strip()
    check(args == "second round", "second turn argv %r" % args)
    check(d.stop() == 0, "clean exit")


def test_cleanup_removes_worktree_keeps_branch_and_retention_sweeps(tmp, ds):
    d = launch(ds, Daemon(tmp, ENV_AGENT,
                          extra="git = { retention = 2; };"))
    t = new_thread(d, "keep me")
    d.expect(r"✅ #1 done")
    d.send("t%s new sweep me" % t)
    d.expect(r"✅ #2 done")
    wt1 = os.path.join(d.state, "worktrees", "1")
    wt2 = os.path.join(d.state, "worktrees", "2")
    d.send("t%s cleanup #1" % t)
    d.expect(r"Removed the worktree of #1; its branch `sb/1-keep-me` stays")
    check(not os.path.exists(wt1), "worktree 1 still there")
    check(branch_of(d.repo, 1) == "sb/1-keep-me", "branch 1 kept")
    # The retention sweep (2 s) takes #2's idle worktree; its branch stays.
    check(wait_until(lambda: not os.path.exists(wt2), timeout=15),
          "retention did not remove worktree 2")
    check(branch_of(d.repo, 2) == "sb/2-sweep-me", "branch 2 kept")
    # A follow-up makes each worktree again from its branch, earlier
    # commits and all, whether cleanup or the sweep removed it.
    for n, task in ((1, "keep me"), (2, "sweep me")):
        d.send("t%s #%d more please" % (t, n))
        d.expect(r"#%d: its worktree was removed; made it again from its"
                 r" branch `sb/%d-%s`" % (n, n, task.replace(" ", "-")))
        d.expect(r"✅ #%d done" % n, timeout=20)
        br = branch_of(d.repo, n)
        log = git("log", "--format=%s", "main.." + br, cwd=d.repo)
        check(len(log.splitlines()) == 2, "#%d: two commits: %r" % (n, log))
        args = git("show", "%s:args.txt" % br, cwd=d.repo).strip()
        check(args == "more please", "#%d second turn argv %r" % (n, args))
    check(d.stop() == 0, "clean exit")


def test_followup_after_restart_remakes_a_cleaned_worktree(tmp, ds):
    d = launch(ds, Daemon(tmp, ENV_AGENT))
    t = new_thread(d, "first round")
    d.expect(r"✅ #1 done")
    first = git("rev-parse", branch_of(d.repo, 1), cwd=d.repo).strip()
    d.send("t%s cleanup #1" % t)
    d.expect(r"Removed the worktree of #1")
    check(d.stop() == 0, "clean exit")

    d2 = launch(ds, Daemon(tmp, ENV_AGENT))
    d2.send("t%s #1 second round" % t)
    d2.expect(r"#1: its worktree was removed; made it again from its branch"
              r" `sb/1-first-round`")
    d2.expect(r"✅ #1 done on `sb/1-first-round`", timeout=20)
    br = branch_of(d2.repo, 1)
    parent = git("rev-parse", br + "~1", cwd=d2.repo).strip()
    check(parent == first, "the new turn's commit is on top of the first")
    check(os.path.isdir(os.path.join(d2.state, "worktrees", "1")),
          "worktree made again")
    check(d2.stop() == 0, "clean exit")


def test_interrupted_agents_worktree_is_unlocked_and_swept(tmp, ds):
    """A worktree is locked while its agent runs; one a crash interrupted
    is unlocked at the next start, so the retention sweep can take it."""
    d = launch(ds, Daemon(tmp, SLOW_AGENT))
    d.send("new slow job")
    d.expect(r"working 2")
    wt = os.path.join(d.state, "worktrees", "1")
    check("locked" in git("worktree", "list", "--porcelain", cwd=d.repo),
          "a running agent's worktree is locked")
    d.kill9()

    d2 = launch(ds, Daemon(tmp, SLOW_AGENT,
                           extra="git = { retention = 2; };"))
    d2.expect(r"⚠️ #1 was interrupted")
    check(wait_until(lambda: not os.path.exists(wt), timeout=20),
          "the interrupted agent's worktree stayed")
    check(branch_of(d2.repo, 1) == "sb/1-slow-job", "its branch stays")
    check(d2.stop() == 0, "clean exit")


def test_turn_settles_when_a_detached_grandchild_holds_stdout(tmp, ds):
    # Unsandboxed: in a sandbox the child dies with the agent's PID
    # namespace, so nothing holds the output (test_sandbox.py checks that).
    d = launch(ds, Daemon(tmp, [("detach", [agent("detach.sh")], 60,
                                 'sandbox = "off";')]))
    d.send("new leave a child")
    d.expect(r"✅ #1 done", timeout=15)
    check("output still open" in log_text(d), "drain not logged")
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
