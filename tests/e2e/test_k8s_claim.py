"""Mode "sandbox-claim" of the kubernetes runner against tests/fakes/
fake-k8s.py, whose agent-sandbox "controller" turns a SandboxClaim into a
Sandbox and its pod from a SandboxTemplate, and whose exec API runs a
command in that pod over a WebSocket (v5.channel.k8s.io framing, the exit
code in the status channel): a task runs in the claimed sandbox (clone,
agent, push, result with diff stat), a follow-up reuses the claim, a failing
agent's exit code is reported, cancel stops it, a sandbox never Ready is
reported in plain words, and the claim goes with `cleanup #N`."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import SLOW, check, git, run_tests  # noqa: E402
from test_k8s import NS, agent_log, daemon, with_cluster  # noqa: E402

CLAIMS = "/apis/extensions.agents.x-k8s.io/v1alpha1/namespaces/%s/" \
    "sandboxclaims" % NS


def template(cl, name="agent-box", image="agent:1"):
    """A SandboxTemplate whose pod idles (the turns come through exec),
    with the git credentials mounted where the turn looks for them."""
    cl.api("/apis/extensions.agents.x-k8s.io/v1alpha1/namespaces/%s/"
           "sandboxtemplates" % NS, "POST", {
               "metadata": {"name": name},
               "spec": {"podTemplate": {
                   "metadata": {"labels": {"app": "agent-box"}},
                   "spec": {"containers": [{
                       "name": "box", "image": image,
                       "command": ["sleep", "600"],
                       "env": [{"name": "SWITCHBOARD_GIT_CREDENTIALS",
                                "value": "/var/run/switchboard-git"}],
                       "volumeMounts": [{
                           "name": "git", "readOnly": True,
                           "mountPath": "/var/run/switchboard-git"}]}],
                       "volumes": [{"name": "git", "secret": {
                           "secretName": "gitcred"}}]}}}})


def claim_daemon(tmp, ds, cl, tmpl="agent-box", extra=""):
    d = daemon(tmp, ds, cl, kube='mode = "sandbox-claim"; '
               'sandbox_template = "%s"; %s' % (tmpl, extra), start=False)
    return d.start()


def claims(cl):
    return [i["metadata"]["name"] for i in cl.api(CLAIMS)["items"]]


def kept(d, n):
    """The agent's output kept so far (state/logs/N), without asking."""
    root = os.path.join(d.state, "logs", str(n))
    out = ""
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        with open(os.path.join(root, name), errors="replace") as f:
            out += f.read()
    return out


def execs(cl):
    return cl.api("/_fake/execs")


@with_cluster
def test_task_runs_in_a_claimed_sandbox(tmp, ds, cl):
    template(cl)
    d = claim_daemon(tmp, ds, cl)
    d.send("new add a claim file")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: add a claim file").group(1)
    branch = d.expect(r"Started #1 pod on `(sb/[^`]+)`").group(1)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=20 * SLOW)
    d.expect(r"1 file changed, 1 insertion\(\+\)")
    check(claims(cl) == ["sb-1"], "one claim for the agent")
    claim = cl.api(CLAIMS + "/sb-1")
    check(claim["spec"]["sandboxTemplateRef"]["name"] == "agent-box",
          "claimed from the template")
    check(claim["metadata"]["labels"]["switchboard.dev/agent"] == "1",
          "labelled with the agent")
    check(git("show", "%s:pod.txt" % branch, cwd=d.repo) ==
          "add a claim file\n", "the agent's file is on the branch")
    # A follow-up runs in the same sandbox: no second claim.
    d.send("t%s #1 and once more" % t)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=20 * SLOW)
    check(git("rev-list", "--count", "main.." + branch, cwd=d.repo).strip()
          == "2", "two turns, two commits on the branch")
    check(claims(cl) == ["sb-1"], "the claim was reused")
    ex = execs(cl)
    check(len(ex) == 2 and all(e["protocol"] == "v5.channel.k8s.io"
                               for e in ex),
          "two execs over v5: %r" % [e["protocol"] for e in ex])
    # What the exec's URL says: a loader, never the token or the task.
    check(all(e["argv"][:2] == ["sh", "-c"] and len(e["argv"]) == 3
              for e in ex), "the command is the loader only")
    check(not any("once more" in x for e in ex for x in e["argv"]),
          "the task is not in the exec's URL")
    reqs = cl.api("/_fake/requests")
    check(sum(r.startswith("POST " + CLAIMS) for r in reqs) == 2,
          "the follow-up asked for the claim again (409, reused)")
    check(reqs.count("PATCH %s/sb-1" % CLAIMS) == 1,
          "the follow-up renewed the claim's lifecycle")
    claim = cl.api(CLAIMS + "/sb-1")
    check(claim["spec"]["lifecycle"]["shutdownPolicy"] == "Delete",
          "agent-sandbox deletes it when it expires")
    check(any("watch=1" in r and "sandboxclaims" in r for r in reqs) or
          any("sandboxclaims?labelSelector" in r for r in reqs),
          "the claim was watched")
    out = agent_log(d, 1)
    check("says hi" in out and "pod finished" in out, "log: %r" % out)
    check("token file present" in out, "the token reached the sandbox")
    check("LEAK" not in out, "the token is not in the environment")
    check(cl.names("secrets") == ["gitcred"], "no token secret")
    # The claim goes with the agent's cleanup, and its sandbox and pod.
    d.send("t%s cleanup #1" % t)
    cl.wait(lambda: claims(cl) == [], "the claim deleted")
    cl.wait(lambda: cl.names("pods") == [], "the sandbox's pod deleted")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_exit_code_is_reported(tmp, ds, cl):
    template(cl)
    d = claim_daemon(tmp, ds, cl)
    d.send("new fail now")
    d.expect(r"⚠️ #1 failed \(exit 3\)", timeout=20 * SLOW)
    out = agent_log(d, 1)
    check("giving up" in out, "its stderr came through: %r" % out)
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_cancel_stops_the_turn_and_drops_the_claim(tmp, ds, cl):
    template(cl)
    d = claim_daemon(tmp, ds, cl)
    d.send("new slow work")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: slow work").group(1)
    cl.wait(lambda: "waiting" in kept(d, 1), "the agent runs", timeout=20)
    d.send("t%s cancel #1" % t)
    d.expect(r"⚠️ #1 cancelled", timeout=20 * SLOW)
    cl.wait(lambda: claims(cl) == [], "the claim deleted")
    out = agent_log(d, 1)
    check("got SIGTERM" in out, "the agent got SIGTERM: %r" % out)
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_sandbox_never_ready_is_reported(tmp, ds, cl):
    template(cl, image="agent:missing")
    d = claim_daemon(tmp, ds, cl, extra="ready_timeout = 2;")
    d.send("new anything")
    d.expect(r"⚠️ #1 failed", timeout=20 * SLOW)
    d.expect(r"the sandbox of claim sb-1 was not ready after 2 s "
             r"\(ready_timeout\): SandboxNotReady: Pod is not ready: "
             r"(ErrImagePull|ImagePullBackOff)")
    cl.wait(lambda: claims(cl) == [], "the claim deleted")
    check(execs(cl) == [], "nothing exec'd")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_a_v4_only_server_runs_and_cancels_the_turn(tmp, ds, cl):
    """Before v5 there is no closing stdin alone: the exit code still comes
    from the status channel, and a cancel closes the whole stream (which
    closes the command's stdin all the same)."""
    cl.api("/_fake/exec-protocols", "POST",
           {"protocols": ["v4.channel.k8s.io"]})
    template(cl)
    d = claim_daemon(tmp, ds, cl)
    d.send("new fail in v4")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: fail in v4").group(1)
    d.expect(r"⚠️ #1 failed \(exit 3\)", timeout=20 * SLOW)
    d.send("t%s #1 slow now" % t)
    cl.wait(lambda: "waiting" in kept(d, 1), "the agent runs", timeout=20)
    d.send("t%s cancel #1" % t)
    d.expect(r"⚠️ #1 cancelled", timeout=20 * SLOW)
    cl.wait(lambda: execs(cl)[-1]["rc"] is not None, "the turn ended")
    check(execs(cl)[-1]["rc"] == 143, "SIGTERM'd: %r" % execs(cl)[-1])
    check([e["protocol"] for e in execs(cl)] == ["v4.channel.k8s.io"] * 2,
          "spoken v4")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_claim_of_an_idle_agent_expires(tmp, ds, cl):
    """claim_ttl after its last turn began, agent-sandbox deletes the claim
    (lifecycle.shutdownTime, policy Delete); a later follow-up claims a new
    sandbox."""
    template(cl)
    d = claim_daemon(tmp, ds, cl, extra="claim_ttl = 2;")
    d.send("new quick one")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: quick one").group(1)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=20 * SLOW)
    cl.wait(lambda: claims(cl) == [], "the claim expired")
    cl.wait(lambda: cl.names("pods") == [], "its sandbox's pod deleted")
    d.send("t%s #1 and again" % t)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=20 * SLOW)
    check(len(execs(cl)) == 2, "two turns")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_restart_interrupts_the_turn_and_keeps_the_sandbox(tmp, ds, cl):
    """An exec stream does not survive its daemon: the turn is reported
    interrupted (not kept running, as a pod's is), and after the restart
    the next turn reuses the claim."""
    template(cl)
    d = claim_daemon(tmp, ds, cl)
    d.send("new slow and interrupted")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: slow and interrupted").group(1)
    cl.wait(lambda: "waiting" in kept(d, 1), "the agent runs", timeout=20)
    check(d.stop() == 0, "clean exit")
    d.expect(r"#1 was interrupted: switchboard is shutting down")
    # The closed stream was the agent's stdin EOF: it was stopped.
    cl.wait(lambda: execs(cl)[0]["rc"] is not None, "the turn ended")
    check(execs(cl)[0]["rc"] == 143, "SIGTERM'd: %r" % execs(cl))
    check(claims(cl) == ["sb-1"], "the claim stays")
    d2 = claim_daemon(tmp, ds, cl)
    d2.send("t%s #1 now quickly" % t)
    d2.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t,
              timeout=20 * SLOW)
    check(claims(cl) == ["sb-1"], "the same claim")
    check(d2.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
