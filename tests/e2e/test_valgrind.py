"""The daemon under valgrind for one whole conversation: no invalid access,
no definite or indirect leak.  Runs only against the plain build (ASan and
valgrind do not mix)."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import BIN, Daemon, agent, check, run_tests  # noqa: E402

VALGRIND = ["valgrind", "--leak-check=full", "--error-exitcode=9",
            "--errors-for-leak-kinds=definite,indirect", "-q",
            "--trace-children=no"]


def test_full_conversation_under_valgrind_has_no_errors_or_leaks(tmp, ds):
    d = Daemon(tmp, [("ask", [agent("ask.sh"), "{task}"], 120)],
               wrapper=VALGRIND).start()
    ds.append(d)
    d.send("new valgrind me")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: valgrind me", timeout=30).group(1)
    qid = d.expect(r"❓ q(\d+) from #1", timeout=30).group(1)
    d.send("t%s status" % t)
    d.send("click q%s GitHub" % qid)
    d.expect(r"✅ #1 done", timeout=30)
    d.send("t%s diff #1" % t)
    d.expect(r"against main", timeout=30)
    rc = d.stop(timeout=30)
    check(rc == 0, "valgrind/daemon exit %s:\n%s" % (rc, d.stderr_tail(40)))


if __name__ == "__main__":
    if "asan" in BIN:
        sys.exit(0)     # the sanitizer build has its own leak checker
    check(shutil.which("valgrind") is not None, "valgrind is missing")
    sys.exit(run_tests(globals()))
