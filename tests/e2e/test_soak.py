"""The short soak (tests/e2e/soak.py; make soak runs the long one): 80
messages over 8 threads through the fake Slack with 4 kill -9s at random
moments; nothing lost, nothing posted twice, every agent reported, no
worktree leaked."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import check, run_tests  # noqa: E402
import soak  # noqa: E402


def test_short_soak_with_kills_counts_zeros(tmp, ds):
    r = soak.soak(n=80, kills=4, hog=False, seed=11, rate=40.0,
                  log=lambda s: print("    " + s))
    check(soak.zero(r), "non-zero counts: %r" % r)


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
