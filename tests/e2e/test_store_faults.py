"""The store refuses to commit: nothing is acked that is not recorded, and
nothing exists that the store does not know of.

A full disk, for real: the state dir on a small tmpfs mounted in the
daemon's own mount namespace (unshare; with a user namespace when not
root), filled up while Slack sends messages.

In the middle of the work: an inbound event's work  An inbound event's work (conversation, agent,
its worktree and process, replies) runs in the transaction that deletes
the event's inbox row; when that COMMIT fails, the agent and conversation
made in memory are undone and no worktree or process is started, and the
row, replayed when the store commits again, starts exactly one agent with
the id the store gives it.  An answer to an agent's question reaches the
agent only once it is recorded, and the question stays open until then.

The failure is real SQLite behaviour, injected from outside: a deferred
foreign key (checked at COMMIT) that a trigger on `agents` violates, so
every statement of the work succeeds and only its COMMIT fails."""

import errno
import glob
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import SLOW, Daemon, check, free_port, run_tests  # noqa: E402
from test_brain import Fake as FakeLLM, brains  # noqa: E402
from test_slack import (APP, ASK, BOT, SECRET, FakeSlack,  # noqa: E402
                        answered, click, connected, mention, no_post_twice,
                        ok_posts, reacted_once, reply_in, slack_daemon,
                        text_of)

INJECT = """
CREATE TABLE inject_parent (id INTEGER PRIMARY KEY);
CREATE TABLE inject_child (p INTEGER
    REFERENCES inject_parent(id) DEFERRABLE INITIALLY DEFERRED);
CREATE TRIGGER inject_fail AFTER INSERT ON agents
    BEGIN INSERT INTO inject_child VALUES (-1); END;
"""


def sql(d, script):
    con = sqlite3.connect(os.path.join(d.state, "switchboard.db"),
                          timeout=10)
    try:
        con.executescript(script)
        con.commit()
    finally:
        con.close()


def log(d):
    with open(d.errlog, errors="replace") as f:
        return f.read()


def fail_commits(d, when):
    """From now on a commit whose transaction fires the trigger `when`
    (e.g. "AFTER INSERT ON agents") fails at COMMIT (a deferred foreign
    key), as a full or broken disk would: real SQLite, no test hook."""
    sql(d, INJECT.replace("AFTER INSERT ON agents", when))


def fail_work_of(d, text, msg_id):
    """From now on the work of the chat event `msg_id` (its text has
    `text`) fails at COMMIT wherever it runs, while its record alone still
    commits: from its inbox row (the row's DELETE), and in the transaction
    that records a lone event (inbox.c), which fails when the message's
    👀 key is written with no inbox row of it (a row is written before its
    👀 when the event is only recorded).  heal() undoes it."""
    fail_commits(d, "AFTER DELETE ON inbox WHEN OLD.payload LIKE '%%%s%%'"
                 % text)
    sql(d, "CREATE TRIGGER inject_fail_inline AFTER INSERT ON seen_events"
        " WHEN NEW.source = 'chat.taken' AND NEW.event_id LIKE '%%%s'"
        " AND NOT EXISTS (SELECT 1 FROM inbox WHERE payload LIKE '%%%s%%')"
        " BEGIN INSERT INTO inject_child VALUES (-1); END;" % (msg_id, text))


def heal(d):
    sql(d, "DROP TRIGGER inject_fail; DROP TRIGGER IF EXISTS"
        " inject_fail_inline;")


def asked(fake, root):
    """A mention in a new thread whose agent asks "Which provider?": the
    question's post."""
    fake.event(mention(root, text="<@UBOT> login page"))
    return fake.wait_call("chat.postMessage", lambda c: "blocks" in
                          c["args"] and "Which provider" in text_of(c))


def tried(fake, d, n=3):
    """The failing row was tried n times (a second apart)."""
    fake.wait("%d tries" % n, lambda: len(re.findall(
        r"store: \"COMMIT\": FOREIGN KEY", log(d))) >= n, timeout=20)


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                    timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def worktrees(d):
    """Agents' worktrees: a warm one (repos.[].warm) belongs to nobody."""
    return sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(d.state, "worktrees", "*"))
                  if not os.path.basename(p).startswith("warm-"))


def branches(d):
    return subprocess.run(["git", "-C", d.repo, "for-each-ref",
                           "--format=%(refname:short)", "refs/heads/sb/"],
                          capture_output=True, text=True).stdout.split()


def slack_with(tmp, ds, fake, agents, extra="", route="", env=None):
    """slack_daemon with other agents, config and Slack route keys."""
    slack = ('slack = { enabled = true; mode = "socket"; '
             'bot_token = "env:SB_SLACK_BOT"; app_token = "env:SB_SLACK_APP";'
             ' signing_secret = "env:SB_SLACK_SECRET"; api_url = "%s"; };'
             % (fake.base + "/api/"))
    d = Daemon(tmp, agents, adapters=slack, extra=extra,
               allowed='"console:me", "slack:U1"',
               env=dict({"SB_SLACK_BOT": BOT, "SB_SLACK_APP": APP,
                         "SB_SLACK_SECRET": SECRET}, **(env or {})))
    with open(d.conf) as f:
        conf = f.read()
    conf = re.sub(r'routes = \( (\{[^}]*\}) \);',
                  r'routes = ( \1, { adapter = "slack"; channel = "*"; '
                  r'repo = "r"; agent = "%s"; %s } );' % (agents[0][0], route),
                  conf)
    with open(d.conf, "w") as f:
        f.write(conf)
    ds.append(d)
    return d.start()


def test_failed_commit_mid_work_leaves_no_ghost_agent(tmp, ds):
    fake = FakeSlack()
    port = free_port()
    try:
        d = slack_daemon(tmp, ds, fake, http="127.0.0.1:%d" % port)
        connected(fake)
        sql(d, INJECT)
        root = "1720.000100"
        e = fake.event(mention(root, text="<@UBOT> login page"))
        # Recorded and acked (the inbox commit has no agent row) ...
        fake.wait("the ack", lambda: [x for x in fake.get("/_test/envelopes")
                                      if x["envelope_id"] == e["envelope_id"]
                                      and x["acked"]])
        # ... but its work cannot commit: retried every second, loudly.
        fake.wait("three tries", lambda: len(re.findall(
            r"agent \d+: ask for conversation", log(d))) >= 3, timeout=20)
        check("STORE CANNOT COMMIT (inbox processing): FOREIGN KEY "
              "constraint failed;" in log(d),
              "loud line, with SQLite's reason: " + d.stderr_tail())
        check(healthz(port) == 503, "healthz while failing")
        time.sleep(1)   # a ghost's worktree job would have ended by now
        text = log(d)
        check("→ running" not in text, "an agent ran: " + d.stderr_tail())
        check(worktrees(d) == [], "worktrees: %r" % worktrees(d))
        check(branches(d) == [], "branches: %r" % branches(d))
        check(d.db("SELECT count(*) FROM agents") == [(0,)], "no agent row")
        check(not [c for c in fake.calls("chat.postMessage")
                   if c["args"].get("thread_ts") == root],
              "nothing said in the thread")

        sql(d, "DROP TRIGGER inject_fail;")
        q = fake.wait_call("chat.postMessage", lambda c: "Which provider"
                           in text_of(c))
        check(q["args"]["thread_ts"] == root, "question in the thread")
        fake.wait("healthz 200", lambda: healthz(port) == 200)
        time.sleep(1)
        text = log(d)
        check(len(re.findall(r"agent \d+: preparing → running", text)) == 1,
              "one run: " + d.stderr_tail())
        check("agent 1: preparing → running" in text, "it is agent 1")
        check("already has worktree" not in text, "worktree clash")
        check(d.db("SELECT id, conversation_id FROM agents") == [(1, 1)],
              "agents %r" % d.db("SELECT * FROM agents"))
        check(d.db("SELECT id, thread FROM conversations") == [(1, root)],
              "conversations %r" % d.db("SELECT * FROM conversations"))
        check(len(worktrees(d)) == 1 and len(branches(d)) == 1,
              "one worktree %r, one branch %r" % (worktrees(d), branches(d)))
        check(len([c for c in fake.calls("chat.postMessage") if
                   "Which provider" in text_of(c)]) == 1, "asked once")
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_cancel_whose_commit_fails_sends_no_signal_until_recorded(tmp, ds):
    """`cancel #1` is worked on in a transaction that cannot commit: the
    agent is not stopped (a signal cannot be taken back, and the store
    would not know of it); once the store commits again, the replayed
    command stops it, once."""
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1740.000100"
        fake.event(mention(root, text="<@UBOT> login page"))
        fake.wait_call("chat.postMessage", lambda c: "Which provider"
                       in text_of(c))
        # The transaction that answers "Cancelling" now fails at COMMIT
        # (the one that records the event, with its 👀, does not).
        fail_commits(d, "AFTER INSERT ON outbox WHEN NEW.payload"
                        " LIKE '%Cancelling%'")
        fake.event(reply_in(root, "1740.000200", "cancel #1"))
        fake.wait("the failed commit", lambda:
                  "STORE CANNOT COMMIT (inbox processing)" in log(d))
        n = len(log(d))
        time.sleep(2.5)     # two more tries of the row, a second apart
        check("agent 1: running →" not in log(d),
              "stopped before the cancel was recorded: " + log(d)[n:])
        sql(d, "DROP TRIGGER inject_fail;")
        fake.wait_call("chat.postMessage", lambda c: "cancelled by slack:U1"
                       in text_of(c))
        time.sleep(0.5)
        posts = [text_of(c) for c in fake.calls("chat.postMessage")
                 if c.get("status") == 200]
        check(posts.count("Cancelling #1.") == 1, "posts %r" % posts)
        check(len(re.findall(r"agent 1: running → finishing", log(d))) == 1,
              "stopped once")
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_answer_whose_commit_fails_reaches_the_agent_once_recorded(tmp, ds):
    """A click answers q1 in a transaction that cannot commit: the agent
    does not get the answer (the store would not know it was given, and
    the replay would find the question settled in memory only); once the
    store commits again, the replayed click answers it, once."""
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1750.000100"
        q = asked(fake, root)
        # Recording the answer fails at COMMIT; the click's own inbox
        # row commits.
        fail_commits(d, "AFTER UPDATE OF status ON questions WHEN"
                        " NEW.status = 'answered'")
        wt = os.path.join(d.state, "worktrees", worktrees(d)[0])
        fake.post("/_test/event", {"interactive": click(q)})
        fake.wait("the failed commit", lambda:
                  "STORE CANNOT COMMIT (inbox processing)" in log(d))
        # Three tries of the row, a second apart, unless the agent went on.
        fake.wait("three tries", lambda: len(re.findall(
            r"store: \"COMMIT\": FOREIGN KEY", log(d))) >= 3 or
            os.path.exists(os.path.join(wt, "answer.txt")), timeout=20)
        check(not os.path.exists(os.path.join(wt, "answer.txt")),
              "the agent got an answer that was not recorded")
        check(not [c for c in fake.calls("chat.postMessage")
                   if "chose" in text_of(c)], "the agent went on")
        check(d.db("SELECT status FROM questions") == [("open",)],
              "question row %r" % d.db("SELECT * FROM questions"))
        check("question q1: answered, but the store did not commit; open"
              " again" in log(d), "rollback logged: " + d.stderr_tail())

        sql(d, "DROP TRIGGER inject_fail;")
        fake.wait_call("chat.postMessage", lambda c: "chose Google"
                       in text_of(c))
        answered(fake, q, "slack:U1: Google")
        time.sleep(0.5)
        with open(os.path.join(wt, "answer.txt")) as f:
            check(f.read() == "Google\n", "answer file")
        posts = [text_of(c) for c in ok_posts(fake)]
        check(len([p for p in posts if "chose Google" in p]) == 1,
              "posts %r" % posts)
        check(not [p for p in posts if "no longer be answered" in p or
                   "already answered" in p or "Sorry" in p],
              "posts %r" % posts)
        check(d.db("SELECT status, answer, answered_by FROM questions") ==
              [("answered", "Google", "slack:U1")],
              "question row %r" % d.db("SELECT * FROM questions"))
        check(len(re.findall(r"question q1 answered", log(d))) == 1,
              "settled once: " + d.stderr_tail())
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_answer_whose_commit_fails_leaves_the_question_to_expire(tmp, ds):
    """While the answer's commit fails the question stays open as it was,
    with its ask timeout: it expires on time, the agent hears "expired"
    (not the unrecorded answer), and the replayed click is told so."""
    script = os.path.join(tmp, "askshort.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\na=$("$SWITCHBOARD_BIN" agent ask "Which'
                ' provider?" --choice GitHub --choice Google --timeout'
                ' %d)\n"$SWITCHBOARD_BIN" agent done "ask exit $? [$a]"\n'
                % (4 * SLOW))
    os.chmod(script, 0o755)
    fake = FakeSlack()
    try:
        d = slack_with(tmp, ds, fake, [("ask", [script], 60)])
        connected(fake)
        root = "1760.000100"
        q = asked(fake, root)
        fail_commits(d, "AFTER UPDATE OF status ON questions WHEN"
                        " NEW.status = 'answered'")
        fake.post("/_test/event", {"interactive": click(q)})
        fake.wait("the failed commit", lambda:
                  "STORE CANNOT COMMIT (inbox processing)" in log(d))
        done = fake.wait_call("chat.postMessage", lambda c: "ask exit" in
                              text_of(c), timeout=10)
        check("ask exit 3 []" in text_of(done), "agent heard %r" %
              text_of(done))
        fake.wait_call("chat.update", lambda c: c["args"]["ts"] ==
                       q["reply"]["ts"] and "(expired)" in text_of(c))
        check(d.db("SELECT status FROM questions") == [("expired",)],
              "question row %r" % d.db("SELECT * FROM questions"))

        sql(d, "DROP TRIGGER inject_fail;")
        fake.wait("healthy", lambda: "store: commits work again" in log(d))
        time.sleep(0.5)
        check(d.db("SELECT count(*) FROM inbox") == [(0,)], "row replayed")
        check(d.db("SELECT status FROM questions") == [("expired",)],
              "question row %r" % d.db("SELECT * FROM questions"))
        check(not [c for c in fake.calls("chat.update")
                   if "answered by" in text_of(c)], "shown answered")
        check(len(re.findall(r"question q1 expired", log(d))) == 1,
              "settled once: " + d.stderr_tail())
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_diff_whose_commit_fails_is_posted_once_recorded(tmp, ds):
    """`diff #1` in a transaction that cannot commit starts no diff job (it
    would post from the job, outside the transaction, once per try of the
    row): the diff is posted once, after the store commits again."""
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1780.000100"
        q = asked(fake, root)
        fake.post("/_test/event", {"interactive": click(q)})
        fake.wait_call("chat.postMessage", lambda c: "chose Google"
                       in text_of(c))
        fail_work_of(d, "diff #1", "1780.000200")
        fake.event(reply_in(root, "1780.000200", "diff #1"))
        tried(fake, d)
        time.sleep(0.5)     # a job started by a try would have posted

        def diffs():
            return [text_of(c) for c in ok_posts(fake)
                    if "against" in text_of(c)]
        check(diffs() == [], "diff posted before it was recorded: %r"
              % diffs())

        heal(d)
        fake.wait("the diff", diffs)
        time.sleep(0.5)     # and no second one
        check(len(diffs()) == 1 and "answer.txt" in diffs()[0],
              "diffs %r" % diffs())
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_merge_whose_commit_fails_lands_once_recorded(tmp, ds):
    """`merge #1` in a transaction that cannot commit starts no merge job:
    the job runs outside the transaction, so one started by a try landed
    the branch (and told the thread) for a request the store never kept,
    and again on every try of the row.  main moves once, after the store
    commits again, and the thread hears of it once."""
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        root = "1790.000100"
        q = asked(fake, root)
        fake.post("/_test/event", {"interactive": click(q)})
        fake.wait_call("chat.postMessage", lambda c: "Next for #1"
                       in text_of(c))

        def main():
            return subprocess.run(["git", "-C", d.repo, "rev-parse", "main"],
                                  capture_output=True, text=True).stdout

        def merges():
            return [text_of(c) for c in ok_posts(fake)
                    if re.search(r"merg|nothing to", text_of(c)) and
                    "Next for" not in text_of(c)]
        before = main()
        fail_work_of(d, "merge #1", "1790.000200")
        fake.event(reply_in(root, "1790.000200", "merge #1"))
        tried(fake, d)
        time.sleep(0.5)     # a job started by a try would have landed
        check(main() == before, "main moved before the merge was recorded")
        check(merges() == [], "said before recorded: %r" % merges())
        check(d.db("SELECT count(*) FROM merges") == [(0,)], "merge rows")

        heal(d)
        fake.wait("the merge", lambda: [t for t in merges()
                                        if "merged into main" in t])
        time.sleep(0.5)     # and no second one
        check(main() != before, "main did not move")
        check(len(merges()) == 2 and "merging" in merges()[0],
              "merge posts %r" % merges())
        check(d.db("SELECT status FROM merges") == [("done",)],
              "merges %r" % d.db("SELECT * FROM merges"))
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_brain_hears_a_message_whose_commit_fails_once_recorded(tmp, ds):
    """The LLM brain keeps nothing of a message whose work is rolled back:
    it records the message as a row and starts its turn on the next loop
    turn from the rows, so no model call is made for a message the store
    does not have, and the replay makes exactly one."""
    llm = FakeLLM()
    fake = FakeSlack()
    try:
        d = slack_with(tmp, ds, fake, ASK, route='brain = "main";',
                       extra=brains("anthropic", llm.url),
                       env={"LLM_KEY": "sk-test-not-a-real-key"})
        connected(fake)
        fail_commits(d, "AFTER INSERT ON brain_inbox")
        root = "1770.000100"
        llm.script({"match": r"slack:U1: what can you do\?",
                    "text": "I run coding agents."})
        fake.event(mention(root, text="<@UBOT> what can you do?"))
        tried(fake, d)
        time.sleep(0.5)     # a kick deferred by the failed try has run
        check(llm.requests() == [], "a model call for an unrecorded"
              " message: %r" % llm.requests())
        check(d.db("SELECT count(*) FROM brain_transcript") == [(0,)] and
              d.db("SELECT count(*) FROM brain_turns") == [(0,)],
              "recorded a turn")

        sql(d, "DROP TRIGGER inject_fail;")
        fake.wait_call("chat.postMessage", lambda c: "I run coding agents"
                       in text_of(c))
        time.sleep(0.5)
        reqs = llm.requests()
        check(len(reqs) == 1, "model calls: %d" % len(reqs))
        check(json.dumps(reqs[0]["body"]["messages"]).count(
            "what can you do?") == 1, "the message once")
        llm.assert_clean()
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()
        llm.stop()


def tmpfs_wrapper(state, size):
    """serve with state on a fresh tmpfs of that size, seen only by it."""
    ns = ["unshare", "--mount"] if os.geteuid() == 0 else \
        ["unshare", "--user", "--map-root-user", "--mount"]
    return ns + ["sh", "-c", 'mkdir -p "$0" && mount -t tmpfs -o size=%s'
                 ' tmpfs "$0" && exec "$@"' % size, state]


NSDB = """
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10)
rows = con.execute(sys.argv[2]).fetchall()
con.commit()
print(json.dumps(rows))
"""


def ns_db(pid, path):
    """d.db for a daemon in its own mount namespace.  Not through
    /proc/PID/root: SQLite resolves that link to the host's path."""
    ns = ["nsenter", "-t", str(pid), "-m"]
    if os.geteuid() != 0:
        ns.insert(3, "-U")

    def db(q):
        r = subprocess.run(ns + ["/usr/bin/python3", "-c", NSDB, path, q],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "query %r: %s" % (q, r.stderr))
        return [tuple(x) for x in json.loads(r.stdout)]
    return db


def fill(path):
    """Writes until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                check(e.errno == errno.ENOSPC, "filling: %s" % e)
                break
        while True:
            try:
                f.write(b"\0" * 512)
            except OSError:
                break


def test_disk_full_on_a_small_tmpfs_acks_nothing_it_did_not_record(tmp, ds):
    fake = FakeSlack()
    port = free_port()
    try:
        state = os.path.join(tmp, "state")
        d = slack_daemon(tmp, ds, fake, http="127.0.0.1:%d" % port,
                         wrapper=tmpfs_wrapper(state, "6m"))
        connected(fake)
        # The daemon's view of its state dir (its own mount namespace).
        d.db = ns_db(d.proc.pid, os.path.join(state, "switchboard.db"))
        d.state = "/proc/%d/root%s" % (d.proc.pid, state)
        vfs = os.statvfs(d.state)
        check(vfs.f_blocks * vfs.f_frsize <= 6 << 20, "not the tmpfs")
        # Every commit from now on must grow the WAL: none has room.
        check(d.db("PRAGMA wal_checkpoint(TRUNCATE)")[0][0] == 0,
              "checkpoint")
        check(os.path.getsize(os.path.join(d.state, "switchboard.db-wal"))
              == 0, "WAL truncated")
        fill(os.path.join(d.state, "filler"))
        threads = ["1730.000100", "1730.000200", "1730.000300"]
        envs = [fake.event(mention(t, text="<@UBOT> task %d" % i))
                for i, t in enumerate(threads)]
        fake.wait("the loud line", lambda: "STORE CANNOT COMMIT (inbox)"
                  in log(d))
        check(healthz(port) == 503, "healthz while the disk is full")
        time.sleep(0.5)
        ids = {e["envelope_id"] for e in envs}
        check(not [e for e in fake.get("/_test/envelopes")
                   if e["envelope_id"] in ids and e["acked"]],
              "acked what was not recorded")
        check("→ running" not in log(d) and "→ preparing" not in log(d),
              "an agent started: " + d.stderr_tail())
        check(d.db("SELECT count(*) FROM inbox") == [(0,)] and
              d.db("SELECT count(*) FROM agents") == [(0,)], "recorded?")
        check(not fake.calls("reactions.add") and
              not fake.calls("chat.postMessage"), "said something")

        # Space again: Slack's next delivery is recorded, acked, done once.
        os.remove(os.path.join(d.state, "filler"))
        fake.wait("every envelope acked", lambda: all(
            e["acked"] for e in fake.get("/_test/envelopes")
            if e["envelope_id"] in ids))
        fake.wait("three questions", lambda: len(
            [c for c in fake.calls("chat.postMessage") if c.get("status")
             == 200 and "Which provider" in text_of(c)]) == 3)
        fake.wait("healthz 200", lambda: healthz(port) == 200)
        check("store: commits work again" in log(d), "recovery logged")
        time.sleep(0.5)
        check(d.db("SELECT c.thread, count(a.id) FROM conversations c JOIN"
                   " agents a ON a.conversation_id = c.id GROUP BY c.thread"
                   " ORDER BY c.thread") == [(t, 1) for t in threads],
              "one agent per message: %r" % d.db("SELECT * FROM agents"))
        check(len(re.findall(r"→ running", log(d))) == 3, "three runs")
        reacted_once(fake, *threads)
        no_post_twice(fake)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
