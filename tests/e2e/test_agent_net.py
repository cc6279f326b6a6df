"""Talking back over the network: the daemon's agent listener (TLS, config
agent_listener) serves the agent socket's protocol to agents that run
elsewhere.  A pod of the fake cluster (tests/fakes/fake-k8s.py, whose kubelet
runs it as a local process without the agent socket) reports progress, asks
a question answered in chat, gets a tool approved through `switchboard mcp`
and says done, all over TLS with the token of its mounted secret; a wrong
token, a certificate from another CA or name and a local agent's token are
refused with messages that say so; a connection speaks for the agent of its
hello only; shutdown with a waiting pod is clean."""

import base64
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import (BIN, SLOW, Daemon, agent, check, free_port, git,  # noqa: E402
                run_tests)
from test_k8s import NS, Cluster, make_ca, openssl  # noqa: E402


def listener(pki, port, ca=True):
    return ('agent_listener = { listen = "127.0.0.1:%d"; cert = "file:%s";'
            ' key = "file:%s"; %s url = "tls://127.0.0.1:%d"; };'
            % (port, os.path.join(pki, "srv.crt"),
               os.path.join(pki, "srv.key"),
               'ca = "file:%s";' % os.path.join(pki, "ca.crt") if ca else "",
               port))


@contextlib.contextmanager
def image_path(tmp):
    """The fake kubelet's PATH is its own: give it the client binaries,
    as an agent image would have them."""
    d = os.path.join(tmp, "image-bin")
    os.makedirs(d)
    os.symlink(BIN, os.path.join(d, "switchboard"))
    os.symlink(os.path.join(os.path.dirname(BIN), "switchboard-agent"),
               os.path.join(d, "switchboard-agent"))
    old = os.environ["PATH"]
    os.environ["PATH"] = d + ":" + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def pod_daemon(tmp, ds, cl, port):
    settings = ('runner = "kubernetes"; kubernetes = { namespace = "%s"; '
                'image = "agent:1"; node_selector = [ "pool=agents" ]; };'
                % NS)
    d = Daemon(tmp, [("pod", [agent("netask.sh"), "{task}"], 60,
                      settings)],
               extra='cluster = { kubeconfig = "%s"; };\n%s'
               % (cl.kubeconfig, listener(cl.pki, port)))
    # The pod clones the agent's branch from the repo's remote (a bare
    # repository here, open) and pushes it back.
    bare = os.path.join(tmp, "remote.git")
    if not os.path.exists(bare):
        git("init", "-q", "--bare", bare)
        git("remote", "add", "origin", bare, cwd=d.repo)
        git("push", "-q", "origin", "main", cwd=d.repo)
    ds.append(d)
    return d.start()


def errlog(d):
    with open(d.errlog, errors="replace") as f:
        return f.read()


def wait_listening(d):
    deadline = time.time() + 10 * SLOW
    while "agent listener: TLS on" not in errlog(d):
        check(time.time() < deadline and d.proc.poll() is None,
              "the listener never came: %s" % d.stderr_tail())
        time.sleep(0.02)


def test_pod_asks_and_is_answered_over_tls(tmp, ds):
    with image_path(tmp):
        cl = Cluster(tmp)
    try:
        port = free_port()
        d = pod_daemon(tmp, ds, cl, port)
        d.send("new pick a region")
        t = d.expect(r"^\[t(\d+)\] \d+ console:me: pick a region").group(1)
        q = d.expect(r"❓ q(\d+) from #1: Which region for pick a region\?",
                     timeout=20)
        d.expect(r"^\s+\[choices q%s: eu-west \| us-east\]" % q.group(1))
        # A person takes their time: the waiting connection outlives the
        # listener's timeouts (lws closes idle TLS sockets after 5 s).
        time.sleep(6)
        d.send("t%s us-east" % t)
        d.expect(r"answered by console:me: us-east")
        d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t,
                 timeout=20 * SLOW)
        d.expect(r"chose us-east")
        check(d.saw(r"^\s+• first step in the pod"), "progress on the card")
        log = errlog(d)
        check("agent listener: 127.0.0.1 is agent 1" in log,
              "the pod said hello as agent 1")
        sec = cl.api("/_fake/requests")
        check(any(r.startswith("POST /api/v1/namespaces/%s/secrets" % NS)
                  for r in sec), "a secret was made")
        d.send("t%s log #1" % t)
        d.expect(r"#1 output")
        out = ""
        root = os.path.join(d.state, "logs", "1")
        for name in sorted(os.listdir(root)):
            with open(os.path.join(root, name), errors="replace") as f:
                out += f.read()
        check("socket=none url=tls://127.0.0.1:%d" % port in out,
              "the pod had no agent socket: %r" % out)
        check("answer: us-east (rc=0)" in out, "the pod got it: %r" % out)
        check("failed" not in out, "no call failed: %r" % out)
        check(d.stop() == 0, "clean exit")
    finally:
        cl.stop()


def test_pod_gets_a_tool_approved_through_mcp_over_tls(tmp, ds):
    with image_path(tmp):
        cl = Cluster(tmp)
    try:
        d = pod_daemon(tmp, ds, cl, free_port())
        d.send("new approve a deploy")
        t = d.expect(r"^\[t(\d+)\] \d+ console:me: approve a deploy").group(1)
        q = d.expect(r"❓ q(\d+) from #1: May #1 use Bash\?", timeout=20)
        d.send("t%s q%s Allow" % (t, q.group(1)))
        d.expect(r"answered by console:me: Allow")
        q = d.expect(r"❓ q(\d+) from #1: Which region", timeout=20)
        d.send("t%s q%s eu-west" % (t, q.group(1)))
        d.expect(r"^\[t%s\] \d+ switchboard: ✅ #1 done" % t,
                 timeout=20 * SLOW)
        check("Bash allowed by console:me" in errlog(d),
              "the decision is logged")
        d.send("t%s log #1" % t)
        d.expect(r"#1 output")
        out = ""
        root = os.path.join(d.state, "logs", "1")
        for name in sorted(os.listdir(root)):
            with open(os.path.join(root, name), errors="replace") as f:
                out += f.read()
        check('"behavior\\":\\"allow' in out or '"behavior":"allow' in out,
              "mcp returned allow: %r" % out)
        check(d.stop() == 0, "clean exit")
    finally:
        cl.stop()


def test_shutdown_while_a_pod_waits_for_its_answer(tmp, ds):
    """The waiting TLS connection is closed with the daemon's other
    connections: a clean exit (no leak, no use after free under ASan)."""
    with image_path(tmp):
        cl = Cluster(tmp)
    try:
        d = pod_daemon(tmp, ds, cl, free_port())
        d.send("new pick a region")
        d.expect(r"❓ q(\d+) from #1: Which region", timeout=20)
        check(d.stop() == 0, "clean exit")
        log = errlog(d)
        opened = log.count("agent listener: connection from ")
        check(opened >= 2 and
              log.count("agent listener: 127.0.0.1 closed") == opened,
              "every connection, the waiting one too, was closed")
    finally:
        cl.stop()


def test_a_connection_speaks_for_the_agent_of_its_hello_only(tmp, ds):
    """The wire format, from a plain TLS client: a hello first, then the
    agent socket's lines; another live agent's token on that connection is
    refused (on the unix socket the pid check does this)."""
    with image_path(tmp):
        cl = Cluster(tmp)
    try:
        port = free_port()
        d = pod_daemon(tmp, ds, cl, port)
        d.send("new pick a region")
        d.expect(r"❓ q(\d+) from #1: Which region", timeout=20)
        d.send("new pick another region")
        d.expect(r"❓ q(\d+) from #2: Which region", timeout=20)
        tok = {}
        for sec in cl.api("/api/v1/namespaces/%s/secrets" % NS)["items"]:
            tok[sec["metadata"]["labels"]["switchboard.dev/agent"]] = \
                base64.b64decode(sec["data"]["token"]).decode()
        ctx = ssl.create_default_context(
            cafile=os.path.join(cl.pki, "ca.crt"))
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as c:
            f = c.makefile("rwb")

            def call(req):
                f.write(json.dumps(req).encode() + b"\n")
                f.flush()
                return json.loads(f.readline())

            r = call({"v": 1, "id": 1, "op": "hello", "token": tok["1"]})
            check(r == {"v": 1, "id": 1, "ok": True, "agent": 1}, r)
            r = call({"v": 1, "id": 2, "op": "progress", "token": tok["1"],
                      "text": "from a raw client"})
            check(r["ok"] is True, r)
            r = call({"v": 1, "id": 3, "op": "progress", "token": tok["2"],
                      "text": "not mine"})
            check(r["ok"] is False and r["error"] == "this agent token "
                  "belongs to another connection", r)
        check("agent 2's token on agent 1's connection" in errlog(d),
              "refusal logged")
        check(d.stop() == 0, "clean exit")
    finally:
        cl.stop()


def cli_env(port, ca, token="not-a-token"):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SWITCHBOARD_")}
    env.update(SWITCHBOARD_URL="tls://127.0.0.1:%d" % port,
               SWITCHBOARD_CA_FILE=ca, SWITCHBOARD_AGENT_TOKEN=token)
    return env


def agent_bin():
    return os.path.join(os.path.dirname(BIN), "switchboard-agent")


def test_wrong_token_and_wrong_ca_are_refused_clearly(tmp, ds):
    pki = make_ca(tmp)
    port = free_port()
    d = Daemon(tmp, [("a", [agent("talk.sh"), "{task}"], 30)],
               extra=listener(pki, port)).start()
    ds.append(d)
    wait_listening(d)
    ca = os.path.join(pki, "ca.crt")
    # A wrong token: refused, logged (without the token), hung up on.  Both
    # clients: the small one hands the call to the full binary.
    for exe in (BIN, agent_bin()):
        r = subprocess.run([exe, "agent", "progress", "hi"],
                           capture_output=True, text=True, timeout=30,
                           env=cli_env(port, ca))
        check(r.returncode == 4 and "unknown or expired agent token" in
              r.stderr, "%s: %d %r" % (exe, r.returncode, r.stderr))
    log = errlog(d)
    check("refused: unknown agent token" in log, "refusal logged")
    check("not-a-token" not in log, "the token is not logged")
    # The token from a file, as in a pod: the same refusal.
    tf = os.path.join(tmp, "token")
    with open(tf, "w") as f:
        f.write("another-bad-token\n")
    env = cli_env(port, ca)
    del env["SWITCHBOARD_AGENT_TOKEN"]
    env["SWITCHBOARD_AGENT_TOKEN_FILE"] = tf
    r = subprocess.run([BIN, "agent", "done", "x"], capture_output=True,
                       text=True, timeout=30, env=env)
    check(r.returncode == 4 and "unknown or expired agent token" in r.stderr,
          "token file: %d %r" % (r.returncode, r.stderr))
    # A CA that did not sign the daemon's certificate.
    other = os.path.join(tmp, "other")
    os.makedirs(other)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
            "/CN=other-ca", cwd=other)
    r = subprocess.run([BIN, "agent", "progress", "hi"], capture_output=True,
                       text=True, timeout=30,
                       env=cli_env(port, os.path.join(other, "ca.crt")))
    check(r.returncode == 4 and "certificate verification failed for "
          "127.0.0.1:%d: unable to get local issuer certificate" % port
          in r.stderr, "wrong CA: %d %r" % (r.returncode, r.stderr))
    # A listener's name must match: "localhost" is not in the certificate.
    env = cli_env(port, ca)
    env["SWITCHBOARD_URL"] = "tls://localhost:%d" % port
    r = subprocess.run([BIN, "agent", "progress", "hi"], capture_output=True,
                       text=True, timeout=30, env=env)
    check(r.returncode == 4 and "certificate verification failed" in
          r.stderr and "mismatch" in r.stderr,
          "wrong name: %d %r" % (r.returncode, r.stderr))
    # Not a URL of ours.
    env["SWITCHBOARD_URL"] = "https://127.0.0.1:%d" % port
    r = subprocess.run([BIN, "agent", "progress", "hi"], capture_output=True,
                       text=True, timeout=30, env=env)
    check(r.returncode != 0 and "is not tls://HOST:PORT" in r.stderr,
          "bad URL: %r" % r.stderr)
    check(d.stop() == 0, "clean exit")


def test_local_agent_token_is_refused_over_the_network(tmp, ds):
    """A local agent's token could be read from its environment by another
    process of the host; over the network no pid check would stop that."""
    pki = make_ca(tmp)
    port = free_port()
    d = Daemon(tmp, [("a", [agent("netlocal.sh"), "{task}"], 30,
                      'sandbox = "off";')],
               extra=listener(pki, port)).start()
    ds.append(d)
    d.send("new tls://127.0.0.1:%d %s" % (port, os.path.join(pki, "ca.crt")))
    d.expect(r"✅ #1 done", timeout=20)
    d.expect(r"socket still works")
    log = errlog(d)
    check("refused: agent 1 runs on this host" in log, "refusal logged")
    with open(os.path.join(d.state, "logs", "1", os.listdir(
            os.path.join(d.state, "logs", "1"))[0]), errors="replace") as f:
        out = f.read()
    check("talks over the agent socket, not the network" in out,
          "the agent was told why: %r" % out)
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
