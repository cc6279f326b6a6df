"""End-to-end tests of the inbox (orchestrator/inbox.c): on the webhook
path, what is recorded before the answer and what is a replay (helpers
from test_webhooks.py); on Slack, which events are worked on in the commit
that records them and which are written as rows and acked first."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import check, run_tests  # noqa: E402
from test_webhooks import github, labeled, start  # noqa: E402
from test_slack import (FakeSlack, connected, mention, reply_in,  # noqa: E402
                        slack_daemon, text_of)
from test_store_faults import sql  # noqa: E402

# Every inbox row ever written, kept by a trigger (rows are deleted once
# worked on): real SQLite, no test hook in the daemon.
ROWS_SEEN = """
CREATE TABLE rows_seen (payload TEXT);
CREATE TRIGGER rows_seen_t AFTER INSERT ON inbox
    BEGIN INSERT INTO rows_seen VALUES (NEW.payload); END;
"""


def test_github_replay_under_a_fresh_delivery_id_is_dropped(tmp, ds):
    """X-GitHub-Delivery is not signed: the same signed body under a new
    delivery id is a replay (it used to start the work again)."""
    d = start(tmp, ds)
    body = json.dumps(labeled(21)).encode()
    st, _ = github(d, "issues", None, raw=body, delivery="orig-1")
    check(st == 202, "original: %s" % st)
    d.expect(r"GitHub issue #21 'Add login' labeled agent — starting #1")
    st, text = github(d, "issues", None, raw=body, delivery="fresh-2")
    check(st == 200 and "duplicate" in text, "replay: %s %r" % (st, text))
    d.quiet(r"starting #2", 1.5)
    check(d.db("SELECT count(*) FROM agents")[0][0] == 1, "one agent only")
    check(d.db("SELECT count(*) FROM inbox")[0][0] == 0, "inbox drained")
    check(d.stop() == 0, "clean exit")


def test_commands_skip_the_row_and_agents_start_after_the_ack(tmp, ds):
    """A mention that opens a thread is written as a row and acked before
    its agent is made; `status` in that known thread is worked on in the
    commit that records it (no row); `new TASK` there would make an agent,
    so it goes by a row too (inbox_work_later)."""
    fake = FakeSlack()
    try:
        d = slack_daemon(tmp, ds, fake)
        connected(fake)
        sql(d, ROWS_SEEN)
        root = "1810.000100"

        def rows(text):
            return [p for (p,) in d.db("SELECT payload FROM rows_seen")
                    if text in p]
        fake.event(mention(root, text="<@UBOT> login page"))
        fake.wait_call("chat.postMessage", lambda c: "Which provider"
                       in text_of(c))
        check(len(rows("login page")) == 1, "the task's row: %r"
              % d.db("SELECT * FROM rows_seen"))

        fake.event(reply_in(root, "1810.000200", "status"))
        fake.wait_call("chat.postMessage", lambda c: "#1" in text_of(c)
                       and "Which provider" not in text_of(c))
        check(rows('"status"') == [], "status went by a row")

        fake.event(reply_in(root, "1810.000300", "new fix the footer"))
        fake.wait("agent 2", lambda: "agent 2: preparing → running" in
                  open(d.errlog).read())
        check(len(rows("fix the footer")) == 1, "new TASK: %r"
              % d.db("SELECT * FROM rows_seen"))
        check(d.db("SELECT count(*) FROM agents")[0][0] == 2, "two agents")
        check("its start was not recorded" not in open(d.errlog).read(),
              "an undone start was logged")
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
