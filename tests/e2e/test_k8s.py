"""The kubernetes runner against tests/fakes/fake-k8s.py, a fake API server
over HTTPS (its own CA, made here with openssl) whose kubelet runs each pod's
container as a local process: a chat task becomes a Secret and a Pod, its
output comes back through the log API, its end through a watch, and both
objects are deleted afterwards; cancel deletes the pod; an image that cannot
be pulled and a pod no node can take are reported in plain words; a watch
cut by a compaction is resumed through 410 Gone and a relist."""

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import SLOW, Daemon, agent, check, git, run_tests  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "fake-k8s.py")
GIT_HTTP = os.path.join(HERE, "..", "fakes", "git-http.py")
TOKEN = "k8s-test-token-71c2"
GIT_TOKEN = "git-remote-token-5e1d"
NS = "sbtest"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(tmp):
    d = os.path.join(tmp, "pki")
    os.makedirs(d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=fake-ca",
            cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
            "-out", "srv.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey",
            "ca.key", "-CAcreateserial", "-out", "srv.crt", "-days", "2",
            "-extfile", "ext", cwd=d)
    return d


class Cluster:
    def __init__(self, tmp, images="agent:1", node_labels="pool=agents"):
        self.pki = make_ca(tmp)
        self.git = None
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", FAKE, "--cert",
             os.path.join(self.pki, "srv.crt"), "--key",
             os.path.join(self.pki, "srv.key"), "--token", TOKEN,
             "--images", images, "--node-labels", node_labels,
             "--bookmark-ms", "300"], stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.url = "https://127.0.0.1:%d" % self.port
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(self.pki, "ca.crt"))
        self.kubeconfig = os.path.join(tmp, "kubeconfig.json")
        with open(self.kubeconfig, "w") as f:
            json.dump({
                "apiVersion": "v1", "kind": "Config",
                "current-context": "test",
                "contexts": [{"name": "test", "context": {
                    "cluster": "fake", "user": "sb"}}],
                "clusters": [{"name": "fake", "cluster": {
                    "server": self.url,
                    "certificate-authority": "pki/ca.crt"}}],
                "users": [{"name": "sb", "user": {"token": TOKEN}}]}, f)

    def api(self, path, method="GET", body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + TOKEN,
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx) as r:
            return json.loads(r.read())

    def names(self, res):
        return [i["metadata"]["name"] for i in
                self.api("/api/v1/namespaces/%s/%s" % (NS, res))["items"]]

    def wait(self, cond, what, timeout=10):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("never: " + what)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        if self.git is not None:
            self.git.terminate()
            self.git.wait()

    def remote(self, tmp):
        """The repo's remote, as a forge would serve it: git http-backend
        over loopback HTTP with a token; the pods get the token from the
        Secret "gitcred" (basic-auth keys), the daemon from its config."""
        root = os.path.join(tmp, "srv")
        os.makedirs(root)
        self.bare = os.path.join(root, "r.git")
        git("init", "-q", "--bare", self.bare)
        self.git = subprocess.Popen(["/usr/bin/python3", GIT_HTTP, root,
                                     GIT_TOKEN], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        self.git_url = "http://127.0.0.1:%d/r.git" % int(
            self.git.stdout.readline())
        self.api("/api/v1/namespaces/%s/secrets" % NS, "POST", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gitcred"},
            "type": "kubernetes.io/basic-auth",
            "stringData": {"username": "sb", "password": GIT_TOKEN}})


def daemon(tmp, ds, cl, kube="", timeout=60, image="agent:1",
           nodes='[ "pool=agents" ]', cluster="", start=True):
    settings = ('runner = "kubernetes"; kubernetes = { namespace = "%s"; '
                'image = "%s"; node_selector = %s; git_secret = "gitcred"; '
                'limits_memory = "1Gi"; %s };' % (NS, image, nodes, kube))
    d = Daemon(tmp, [("pod", [agent("pod.sh"), "{task}"], timeout,
                      settings)],
               extra='cluster = { kubeconfig = "%s"; %s };'
               % (cl.kubeconfig, cluster),
               env={"SB_GIT_TOKEN": GIT_TOKEN})
    if cl.git is None:
        cl.remote(tmp)
        git("remote", "add", "origin", cl.git_url, cwd=d.repo)
        git("-c", "credential.helper=", "-c", "credential.helper=!f() { "
            "echo username=sb; echo password=%s; }; f" % GIT_TOKEN,
            "push", "-q", "origin", "main", cwd=d.repo)
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('base = "main"; }', 'base = "main"; push = {'
                             ' token = "env:SB_GIT_TOKEN"; }; }'))
    ds.append(d)
    return d.start() if start else d


def secrets(cl):
    """The turns' token secrets (not the git credentials)."""
    return [n for n in cl.names("secrets") if n != "gitcred"]


def agent_log(d, n):
    """What `log #N` posts: the agent's kept output, all turns."""
    d.send("t1 log #%d" % n)
    d.expect(r"#%d output \(stdout and stderr\):" % n)
    out = ""
    root = os.path.join(d.state, "logs", str(n))
    for name in sorted(os.listdir(root)):
        with open(os.path.join(root, name), errors="replace") as f:
            out += f.read()
    return out


def with_cluster(fn):
    def run(tmp, ds, **kw):
        cl = Cluster(tmp, **kw)
        try:
            fn(tmp, ds, cl)
        finally:
            cl.stop()
    run.__name__ = fn.__name__
    return run


@with_cluster
def test_task_runs_in_a_pod_and_reports_its_diff(tmp, ds, cl):
    """No shared disk: the pod clones the branch from the remote, the agent
    works in the pod's volume, the branch is pushed back and fetched, so the
    result and `diff #N` are read here as for a local agent."""
    d = daemon(tmp, ds, cl)
    d.send("new add a pod file")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: add a pod file").group(1)
    branch = d.expect(r"Started #1 pod on `(sb/[^`]+)`").group(1)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=20 * SLOW)
    d.expect(r"1 file changed, 1 insertion\(\+\)")
    check(not os.path.exists(os.path.join(d.state, "worktrees", "1")),
          "no worktree on the daemon's host")
    # The pod's work is on the remote and in the daemon's repository.
    there = git("--git-dir", cl.bare, "rev-parse", branch).strip()
    here = git("rev-parse", branch, cwd=d.repo).strip()
    check(there == here, "fetched: remote %s, local %s" % (there, here))
    check(git("show", "%s:pod.txt" % branch, cwd=d.repo) ==
          "add a pod file\n", "the agent's file is on the branch")
    d.send("t%s diff #1" % t)
    d.expect(r"#1 `%s` against main" % re.escape(branch))
    d.expect(r"^\s+diff --git a/pod.txt b/pod.txt")
    d.expect(r"^\s+\+add a pod file")
    # A follow-up: the next pod clones the branch with the first turn's
    # commit and adds its own.
    d.send("t%s #1 and once more" % t)
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=20 * SLOW)
    check(git("rev-list", "--count", "main.." + branch, cwd=d.repo).strip()
          == "2", "two turns, two commits on the branch")
    check(git("show", "%s:pod.txt" % branch, cwd=d.repo) ==
          "and once more\n", "the second turn's work")
    # Its output came through the log API.
    out = agent_log(d, 1)
    check("says hi" in out and "pod finished" in out, "log: %r" % out)
    check("token file present" in out, "the token is a mounted file")
    check("LEAK" not in out, "the token is not in the pod's environment")
    # Pod and secret are gone once the turn has ended.
    cl.wait(lambda: cl.names("pods") == [] and secrets(cl) == [],
            "pod and secret deleted")
    reqs = cl.api("/_fake/requests")
    pod_posts = [r for r in reqs if r.startswith("POST /api/v1/namespaces/"
                                                 "%s/pods" % NS)]
    check(len(pod_posts) == 2, "one pod per turn: %r" % pod_posts)
    check(any("watch=1" in r and "resourceVersion=" in r for r in reqs),
          "watched from a resourceVersion")
    check(any("/log?" in r and "follow=true" in r for r in reqs),
          "followed the log")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_cancel_deletes_the_pod(tmp, ds, cl):
    d = daemon(tmp, ds, cl)
    d.send("new slow work")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: slow work").group(1)
    name = cl.wait(lambda: cl.names("pods"), "a pod")[0]
    cl.wait(lambda: cl.api("/api/v1/namespaces/%s/pods/%s" % (NS, name))
            ["status"]["phase"] == "Running", "the pod runs")
    d.send("t%s cancel #1" % t)
    d.expect(r"⚠️ #1 cancelled", timeout=20 * SLOW)
    reqs = cl.api("/_fake/requests")
    check(any(r.startswith("DELETE /api/v1/namespaces/%s/pods/%s?"
                           "gracePeriodSeconds=1" % (NS, name))
              for r in reqs), "deleted with kill_grace: %r" % reqs[-5:])
    cl.wait(lambda: cl.names("pods") == [] and secrets(cl) == [],
            "pod and secret deleted")
    out = agent_log(d, 1)
    check("got SIGTERM" in out, "the container got SIGTERM: %r" % out)
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_image_that_cannot_be_pulled_is_reported(tmp, ds, cl):
    d = daemon(tmp, ds, cl, image="agent:missing")
    d.send("new anything")
    d.expect(r"⚠️ #1 failed", timeout=20 * SLOW)
    d.expect(r"the image agent:missing cannot be pulled \(ImagePullBackOff")
    cl.wait(lambda: cl.names("pods") == [] and secrets(cl) == [],
            "pod and secret deleted")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_a_clone_the_remote_refuses_is_reported(tmp, ds, cl):
    d = daemon(tmp, ds, cl, start=False)
    cl.api("/api/v1/namespaces/%s/secrets/gitcred" % NS, "DELETE")
    cl.api("/api/v1/namespaces/%s/secrets" % NS, "POST", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "gitcred"}, "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "sb", "password": "not-the-git-token"}})
    d.start()
    d.send("new anything")
    d.expect(r"⚠️ #1 failed", timeout=20 * SLOW)
    d.expect(r"the pod could not clone the agent's branch \(exit 128\): "
             r".*Authentication failed")
    check(not d.saw("not-the-git-token"), "the git token is not shown")
    cl.wait(lambda: cl.names("pods") == [] and secrets(cl) == [],
            "pod and secret deleted")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_a_repo_without_a_remote_is_reported(tmp, ds, cl):
    d = daemon(tmp, ds, cl, start=False)
    git("remote", "remove", "origin", cwd=d.repo)
    d.start()
    d.send("new anything")
    d.expect(r"⚠️ #1 failed", timeout=20 * SLOW)
    d.expect(r'the repository has no remote "origin" \(repos.\[\].remote\)')
    check(cl.names("pods") == [], "no pod")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_pod_no_node_can_take_is_reported(tmp, ds, cl):
    d = daemon(tmp, ds, cl, nodes='[ "gpu=h100" ]')
    d.send("new anything")
    d.expect(r"⚠️ #1 failed", timeout=20 * SLOW)
    d.expect(r"no node of the cluster can run pod sb-1-[0-9a-f]+ "
             r"\(Unschedulable: 0/1 nodes are available")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_watch_resumes_after_410_gone(tmp, ds, cl):
    d = daemon(tmp, ds, cl)
    d.send("new tick but fine")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: tick but fine").group(1)
    name = cl.wait(lambda: cl.names("pods"), "a pod")[0]
    cl.wait(lambda: cl.api("/api/v1/namespaces/%s/pods/%s" % (NS, name))
            ["status"]["phase"] == "Running", "the pod runs")
    before = len(cl.api("/_fake/requests"))
    req = urllib.request.Request(cl.url + "/_fake/compact", method="POST")
    urllib.request.urlopen(req, context=cl.ctx).read()
    # The runner re-watches, gets 410 and lists again.
    cl.wait(lambda: any(r.startswith("GET /api/v1/namespaces/%s/pods?"
                                     "labelSelector=" % NS)
                        for r in cl.api("/_fake/requests")[before:]),
            "a relist after 410")
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=60 * SLOW)
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_log_resumes_after_a_cut_without_loss_or_repeats(tmp, ds, cl):
    d = daemon(tmp, ds, cl)
    d.send("new tick along")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: tick along").group(1)
    name = cl.wait(lambda: cl.names("pods"), "a pod")[0]
    cl.wait(lambda: cl.api("/api/v1/namespaces/%s/pods/%s" % (NS, name))
            ["status"]["phase"] == "Running", "the pod runs")
    time.sleep(0.5)     # some ticks are out: the cut falls mid-output
    before = len(cl.api("/_fake/requests"))
    req = urllib.request.Request(cl.url + "/_fake/cut-logs", method="POST")
    urllib.request.urlopen(req, context=cl.ctx).read()
    d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t, timeout=30 * SLOW)
    again = [r for r in cl.api("/_fake/requests")[before:] if "/log?" in r]
    check(any("sinceTime=" in r for r in again),
          "reconnected with sinceTime: %r" % again)
    out = agent_log(d, 1)
    ticks = [l for l in out.splitlines() if "tick " in l]
    want = ["tick %d" % i for i in range(40)]
    got = [l[l.index("tick "):] for l in ticks]
    check(got == want, "each tick once, in order: %r" % got)
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_restart_reattaches_to_the_running_pod(tmp, ds, cl):
    """A restart leaves the pod running; the next daemon finds it by its
    labels (this daemon's id among them), follows its log from where the
    first left it and posts the result once."""
    d = daemon(tmp, ds, cl, cluster='daemon_id = "east";')
    d.send("new restart in the middle")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: restart in the middle"
                 ).group(1)
    branch = d.expect(r"Started #1 pod on `(sb/east-1-[^`]+)`").group(1)
    name = cl.wait(lambda: cl.names("pods"), "a pod")[0]
    check(name.startswith("sb-east-1-"), "pod name: %s" % name)
    pod = cl.api("/api/v1/namespaces/%s/pods/%s" % (NS, name))
    check(pod["metadata"]["labels"]["switchboard.dev/daemon"] == "east",
          "daemon label")
    logs = os.path.join(d.state, "logs", "1")
    cl.wait(lambda: os.path.isdir(logs) and any(
        "before the restart" in open(os.path.join(logs, f)).read()
        for f in os.listdir(logs)), "the first line read")
    check(d.stop() == 0, "clean exit")
    d.expect(r"#1 keeps running in its pod")
    check(not any(r.startswith("DELETE /api/v1/namespaces/%s/pods/" % NS)
                  for r in cl.api("/_fake/requests")), "the pod was kept")
    check(cl.names("pods") == [name], "the pod still runs")
    tok = base64.b64decode(cl.api("/api/v1/namespaces/%s/secrets/%s"
                                  % (NS, name))["data"]["token"]).decode()
    d2 = daemon(tmp, ds, cl, cluster='daemon_id = "east";')
    # The pod's agent still holds its token: the new daemon knows it (the
    # call is refused only because it does not come from the agent).
    sock = os.path.join(d2.state, "agent.sock")
    cl.wait(lambda: "belongs to another" in d2.cli(
        "agent", "progress", "hi", env={
            "SWITCHBOARD_SOCKET": sock,
            "SWITCHBOARD_AGENT_TOKEN": tok}).stderr, "the token known")
    d2.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t,
              timeout=20 * SLOW)
    d2.expect(r"1 file changed, 1 insertion\(\+\)")
    d2.quiet(r"#1 (done|failed|interrupted|was interrupted)", 1)
    check(not d.saw("was interrupted") and not d2.saw("was interrupted"),
          "not reported interrupted")
    check(git("show", "%s:pod.txt" % branch, cwd=d2.repo) ==
          "restart in the middle\n", "the pod's work was fetched")
    out = agent_log(d2, 1)
    check(out.count("before the restart") == 1 and
          out.count("after the restart") == 1 and "pod finished" in out,
          "each line once: %r" % out)
    cl.wait(lambda: cl.names("pods") == [] and secrets(cl) == [],
            "pod and secret deleted")
    check(d2.stop() == 0, "clean exit")


@with_cluster
def test_shutdown_while_cancelling_deletes_the_pod(tmp, ds, cl):
    """A pod being deleted (cancel) is not left behind by a shutdown."""
    d = daemon(tmp, ds, cl)
    d.send("new slow at shutdown")
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: slow at shutdown").group(1)
    name = cl.wait(lambda: cl.names("pods"), "a pod")[0]
    cl.wait(lambda: cl.api("/api/v1/namespaces/%s/pods/%s" % (NS, name))
            ["status"]["phase"] == "Running", "the pod runs")
    d.send("t%s cancel #1" % t)
    cl.wait(lambda: any(r.startswith("DELETE /api/v1/namespaces/%s/pods/%s"
                                     % (NS, name))
                        for r in cl.api("/_fake/requests")), "deleting")
    check(d.stop() == 0, "clean exit")
    cl.wait(lambda: cl.names("pods") == [] and secrets(cl) == [],
            "pod and secret gone")


@with_cluster
def test_bad_cluster_credentials_are_reported(tmp, ds, cl):
    with open(cl.kubeconfig) as f:
        kc = json.load(f)
    kc["users"][0]["user"]["token"] = "not-the-token"
    with open(cl.kubeconfig, "w") as f:
        json.dump(kc, f)
    d = daemon(tmp, ds, cl)
    d.send("new anything")
    d.expect(r"⚠️ #1 failed", timeout=20 * SLOW)
    d.expect(r"creating secret sb-1-[0-9a-f]+: Unauthorized \(HTTP 401\)")
    check(not d.saw("not-the-token"), "the token is not shown")
    check("not-the-token" not in open(d.errlog, errors="replace").read(),
          "the token is not logged")
    check(cl.names("pods") == [], "no pod")
    check(d.stop() == 0, "clean exit")


@with_cluster
def test_manifest_is_a_valid_pod_for_kubectl(tmp, ds, cl):
    d = daemon(tmp, ds, cl, kube='tolerations = [ "dedicated=agents:NoSchedule"'
               ', "spot:NoExecute" ]; runtime_class = "gvisor"; '
               'service_account = "sb-agent"; requests_cpu = "500m";'
               ' image_pull_secrets = [ "regcred" ];')
    d.send("new slow manifest")
    name = cl.wait(lambda: cl.names("pods"), "a pod")[0]
    pod = cl.api("/api/v1/namespaces/%s/pods/%s" % (NS, name))
    spec = pod["spec"]
    check(spec["runtimeClassName"] == "gvisor", "runtimeClassName")
    check(spec["tolerations"][0] == {"key": "dedicated", "operator": "Equal",
                                     "value": "agents",
                                     "effect": "NoSchedule"}, "toleration")
    check(spec["automountServiceAccountToken"] is False, "no API token")
    check(TOKEN not in json.dumps(pod), "no cluster token in the pod")
    sec = cl.api("/api/v1/namespaces/%s/secrets/%s" % (NS, name))
    tok = base64.b64decode(sec["data"]["token"]).decode()
    check(len(tok) == 64 and tok not in json.dumps(pod),
          "the agent token is in the secret, not in the pod")
    check(sec["metadata"]["labels"]["switchboard.dev/agent"] == "1", "label")
    # The workspace: cloned by an init container into an emptyDir, the git
    # credentials a mounted secret, no token of the remote in the spec.
    init = spec["initContainers"][0]
    check(init["name"] == "clone" and init["image"] == "agent:1", "init")
    vols = {v["name"]: v for v in spec["volumes"]}
    check(vols["workspace"] == {"name": "workspace", "emptyDir": {}},
          "workspace volume: %r" % vols)
    check(vols["git"]["secret"]["secretName"] == "gitcred", "git secret")
    main = spec["containers"][0]
    check(main["workingDir"] == "/workspace", "works in the clone")
    check({"name": "workspace", "mountPath": "/workspace", "readOnly": False}
          in main["volumeMounts"], "main mounts the workspace")
    env = {e["name"]: e.get("value") for e in main["env"]}
    check(env["SWITCHBOARD_BRANCH"].startswith("sb/1-"), "branch: %r" % env)
    check(GIT_TOKEN not in json.dumps(pod), "no git token in the pod")
    check(pod["metadata"]["labels"]["switchboard.dev/conversation"] == "1",
          "conversation label: %r" % pod["metadata"]["labels"])
    # kubectl (when installed) accepts it as a Pod, offline.
    man = {k: pod[k] for k in ("apiVersion", "kind", "spec")}
    man["metadata"] = {"name": name, "labels": pod["metadata"]["labels"]}
    path = os.path.join(tmp, "pod.json")
    with open(path, "w") as f:
        json.dump(man, f)
    try:
        r = subprocess.run(["kubectl", "create", "--dry-run=client",
                            "--validate=false", "-o", "json", "-f", path],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, KUBECONFIG=cl.kubeconfig))
        check(r.returncode == 0 and json.loads(r.stdout)["kind"] == "Pod",
              "kubectl: %s %s" % (r.stdout[-300:], r.stderr[-300:]))
    except FileNotFoundError:
        print("    (kubectl not installed: manifest check skipped)")
    d.send("t1 cancel #1")
    d.expect(r"#1 cancelled", timeout=20 * SLOW)
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
