"""End-to-end tests of the inbox (orchestrator/inbox.c) on the webhook
path: what is recorded before the answer, and what is a replay.  Helpers
come from test_webhooks.py."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import check, run_tests  # noqa: E402
from test_webhooks import github, labeled, start  # noqa: E402


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


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
