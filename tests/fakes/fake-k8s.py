#!/usr/bin/python3
"""A fake Kubernetes API server (core/v1 pods and secrets, and agent-sandbox's
SandboxTemplate / SandboxClaim / Sandbox) with a "kubelet" that runs each
pod's containers as local processes, for the kubernetes runner's tests.

  fake-k8s.py --cert CRT --key KEY --token T [--forbidden-token F]
              [--images a,b] [--node-labels k=v,...] [--bookmark-ms N]

Serves HTTPS on 127.0.0.1 (a free port, printed as the first stdout line).
What it shares with the real API server, because the runner relies on it:
- Bearer tokens: none or unknown → 401 Status "Unauthorized"; the
  --forbidden-token → 403 Status reason "Forbidden" ('pods is forbidden:
  User "…" cannot create resource "pods" in API group "" in the namespace').
- Every object has metadata.resourceVersion (one cluster-wide counter, as
  etcd's revision), uid, namespace, creationTimestamp.  POST → 201, 409
  Status reason AlreadyExists for a taken name; GET/DELETE of an absent one
  → 404 reason NotFound.  Lists are {kind: PodList, metadata:
  {resourceVersion}, items} and take labelSelector (k=v, k!=v, k, !k).
  Secrets: stringData is folded into base64 data on create.
- ?watch=1 (or true): a stream of JSON lines {type, object}; without
  resourceVersion (or "0") first a synthetic ADDED per existing object;
  with one, the changes after it, or, if it is older than the kept history,
  HTTP 200 and one ERROR event whose object is a Status with code 410
  reason Expired ("too old resource version"), after which the stream ends —
  that is how the real server says 410 on a watch.  allowWatchBookmarks=true
  → BOOKMARK events ({kind, apiVersion, metadata: {resourceVersion}}) every
  --bookmark-ms; timeoutSeconds ends the stream.
- DELETE of a pod: sets deletionTimestamp and deletionGracePeriodSeconds
  (query gracePeriodSeconds or body DeleteOptions; default the pod's
  terminationGracePeriodSeconds, 30) → MODIFIED; the kubelet SIGTERMs the
  containers, SIGKILLs them after the grace period, then the object goes →
  DELETED.  A pod whose containers are not running goes at once.
- Pod status: Pending (PodScheduled False reason Unschedulable when
  spec.nodeSelector does not match --node-labels; waiting reason
  ErrImagePull then ImagePullBackOff when the image is not in --images) →
  init containers one by one → Running (containerStatuses[].state.running)
  → Succeeded / Failed (state.terminated {exitCode, reason Completed |
  Error | OOMKilled, startedAt, finishedAt}); restartPolicy is taken as
  Never.  A container killed by SIGKILL for exceeding nothing is "Error";
  exit code 137 with FAKE_OOM=1 in its env reports OOMKilled (the fake has
  no cgroups to measure memory).
- GET …/pods/NAME/log[?container=&follow=true&sinceTime=RFC3339&
  timestamps=true&tailLines=N]: the container's stdout+stderr; 400 'container "c" in
  pod "p" is waiting to start: …' before it started; follow streams until
  the container ends.

The kubelet: each pod gets a root directory; every volume (emptyDir,
secret: its keys as files) is a directory under it, and a path in a
container's command, args, env values or workingDir that starts with a
volumeMount's mountPath is rewritten to that directory, so the process sees
the mounted files without a mount namespace.  env: value and
valueFrom.secretKeyRef; PATH is the fake's own (the "image").

agent-sandbox (kubernetes-sigs/agent-sandbox, v1alpha1; its controller, the
lifecycle, PATCH and the exec API are in fake_sandbox.py): sandboxtemplates
and sandboxclaims under /apis/extensions.agents.x-k8s.io/v1alpha1, sandboxes
under /apis/agents.x-k8s.io/v1alpha1, with the same create/get/list/watch/
delete.  A claim's "controller" makes a Sandbox of the claim's name from its
spec.sandboxTemplateRef and that sandbox's Pod (same name, the template's
podTemplate); the claim gets status.conditions Ready False (reason
TemplateNotFound, or SandboxNotReady "Pod is not ready: ImagePullBackOff")
until the pod's container runs, then Ready True and status.sandbox.name.
Deleting a claim deletes its sandbox, which deletes its pod (grace 0); so
does its spec.lifecycle.shutdownTime passing with shutdownPolicy Delete.
PATCH of these takes a JSON merge patch (application/merge-patch+json;
another Content-Type gets 415, as from the real server).

GET …/pods/NAME/exec?command=…&stdin=true&stdout=true&stderr=true: a
WebSocket (subprotocol v5.channel.k8s.io or v4.channel.k8s.io, the client's
first that matches) running the command as a local process with the pod's
first container's environment and working directory; each binary message
has its channel first: 0 stdin (to the process), 1 stdout, 2 stderr, 3 the
end — {"status": "Success"} or Failure reason NonZeroExitCode with
details.causes [{reason: ExitCode, message: "N"}] — and, v5 only, 255 +
channel closes that channel (255 0: EOF on stdin).  A closed stream closes
the process's stdin; a deleted pod kills its execs.  GET /_fake/execs lists
{protocol, argv, rc} of each exec (rc null while it runs); POST
/_fake/exec-protocols {"protocols": [...]} sets what it offers.

Discovery (GET /api, /apis, /api/v1) lists v1 with pods, pods/log and
secrets, enough for `kubectl create --dry-run=client` to map a Pod.

Test controls (no auth, not part of the API): POST /_fake/compact forgets
the event history and ends the open watches (re-watching from an older
resourceVersion then gets 410);
POST /_fake/cut-logs ends the followed log streams mid-way; GET
/_fake/requests lists "METHOD path?query" of API requests received.
"""
import argparse
import asyncio
import base64
import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import uuid

from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_sandbox  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--token", required=True)
ap.add_argument("--forbidden-token")
ap.add_argument("--images")
ap.add_argument("--node-labels", default="")
ap.add_argument("--bookmark-ms", type=int, default=1000)
ARGS = ap.parse_args()
IMAGES = None if ARGS.images is None else set(ARGS.images.split(","))
NODE_LABELS = dict(kv.split("=", 1) for kv in ARGS.node_labels.split(",")
                   if kv)

KINDS = {"pods": ("Pod", "PodList"), "secrets": ("Secret", "SecretList"),
         "sandboxes": ("Sandbox", "SandboxList"),
         "sandboxtemplates": ("SandboxTemplate", "SandboxTemplateList"),
         "sandboxclaims": ("SandboxClaim", "SandboxClaimList")}
API_VERSION = {"sandboxes": "agents.x-k8s.io/v1alpha1",
               "sandboxtemplates": "extensions.agents.x-k8s.io/v1alpha1",
               "sandboxclaims": "extensions.agents.x-k8s.io/v1alpha1"}
GROUP_OF = {"sandboxes": "agents.x-k8s.io",
            "sandboxtemplates": "extensions.agents.x-k8s.io",
            "sandboxclaims": "extensions.agents.x-k8s.io"}
rv = 0
objects = {}            # (resource, ns, name) -> object
history = []            # (rv, resource, type, object copy)
history_floor = 0       # watches from below this get 410
watchers = set()        # asyncio.Queue per open watch
requests = []
pods = {}               # (ns, name) -> Kubelet
cut_gen = 0             # bumped by /_fake/cut-logs


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def ts(t=None):
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_nano(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "code": code}
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


def bump(resource, etype, obj):
    """Records a change: new resourceVersion, history, watchers."""
    global rv
    rv += 1
    obj["metadata"]["resourceVersion"] = str(rv)
    snap = json.loads(json.dumps(obj))
    history.append((rv, resource, etype, snap))
    del history[:-1000]
    for q in list(watchers):
        q.put_nowait((rv, resource, etype, snap))


def selector_match(sel, labels):
    for term in filter(None, (t.strip() for t in (sel or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@web.middleware
async def auth(req, handler):
    if req.path.startswith("/_fake/"):
        return await handler(req)
    requests.append("%s %s" % (req.method, req.path_qs))
    h = req.headers.get("Authorization", "")
    tok = h[7:] if h.startswith("Bearer ") else None
    if tok is not None and tok == ARGS.forbidden_token:
        res = req.match_info.get("res", "pods")
        verb = {"GET": "get", "POST": "create",
                "DELETE": "delete"}.get(req.method, "get")
        return status(403, "Forbidden", 'pods is forbidden: User "system:'
                      'serviceaccount:default:nobody" cannot %s resource '
                      '"%s" in API group "" in the namespace "%s"'
                      % (verb, res, req.match_info.get("ns", "")))
    if tok != ARGS.token:
        return status(401, "Unauthorized", "Unauthorized")
    return await handler(req)


def check_res(req):
    res = req.match_info["res"]
    if res not in KINDS or req.match_info.get("group") != GROUP_OF.get(res):
        raise web.HTTPNotFound()
    return res, req.match_info["ns"]


async def create(req):
    res, ns = check_res(req)
    try:
        obj = json.loads(await req.text())
    except ValueError as e:
        return status(400, "BadRequest", "invalid JSON: %s" % e)
    return add(res, ns, obj)


def add(res, ns, obj):
    md = obj.setdefault("metadata", {})
    if not md.get("name") and md.get("generateName"):
        md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
    name = md.get("name")
    if not name:
        return status(422, "Invalid", "%s \"\" is invalid: metadata.name: "
                      "Required value: name or generateName is required"
                      % KINDS[res][0])
    if (res, ns, name) in objects:
        return status(409, "AlreadyExists", '%s "%s" already exists'
                      % (res, name), {"name": name, "kind": res})
    obj["kind"] = KINDS[res][0]
    obj["apiVersion"] = API_VERSION.get(res, "v1")
    md.update(namespace=ns, uid=str(uuid.uuid4()),
              creationTimestamp=ts())
    if res == "secrets":
        data = obj.setdefault("data", {})
        for k, v in (obj.pop("stringData", None) or {}).items():
            data[k] = base64.b64encode(v.encode()).decode()
        obj.setdefault("type", "Opaque")
    elif res == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    else:
        obj.setdefault("status", {})
    objects[(res, ns, name)] = obj
    bump(res, "ADDED", obj)
    if res == "pods":
        k = Kubelet(ns, name)
        pods[(ns, name)] = k
        k.task = asyncio.ensure_future(k.run())
    elif res == "sandboxclaims":
        asyncio.ensure_future(fake_sandbox.claim_controller(ns, name))
    return web.json_response(obj, status=201)


async def get_one(req):
    res, ns = check_res(req)
    obj = objects.get((res, ns, req.match_info["name"]))
    if obj is None:
        return status(404, "NotFound", '%s "%s" not found'
                      % (res, req.match_info["name"]),
                      {"name": req.match_info["name"], "kind": res})
    return web.json_response(obj)


def visible(res, ns, sel, obj):
    return (obj["metadata"]["namespace"] == ns and
            selector_match(sel, obj["metadata"].get("labels") or {}))


async def list_or_watch(req):
    res, ns = check_res(req)
    sel = req.query.get("labelSelector")
    if req.query.get("watch") in ("1", "true"):
        return await watch(req, res, ns, sel)
    items = [o for (r, n, _), o in sorted(objects.items())
             if r == res and visible(res, ns, sel, o)]
    return web.json_response({"kind": KINDS[res][1],
                              "apiVersion": API_VERSION.get(res, "v1"),
                              "metadata": {"resourceVersion": str(rv)},
                              "items": items})


async def watch(req, res, ns, sel):
    since = req.query.get("resourceVersion")
    bookmarks = req.query.get("allowWatchBookmarks") == "true"
    timeout = float(req.query.get("timeoutSeconds") or 1800)
    resp = web.StreamResponse()
    resp.content_type = "application/json"
    await resp.prepare(req)

    async def send(etype, obj):
        await resp.write((json.dumps({"type": etype, "object": obj})
                          + "\n").encode())

    q = asyncio.Queue()
    watchers.add(q)
    try:
        if since in (None, "", "0"):
            for (r, n, _), o in sorted(objects.items()):
                if r == res and visible(res, ns, sel, o):
                    await send("ADDED", o)
        else:
            since = int(since)
            if since < history_floor:
                await send("ERROR", {
                    "kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "reason": "Expired", "code": 410,
                    "message": "too old resource version: %d (%d)"
                    % (since, history_floor)})
                return resp
            for ev in history:
                if ev[0] > since:
                    q.put_nowait(ev)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        last_bm = loop.time()
        while loop.time() < end:
            wait = min(end - loop.time(), ARGS.bookmark_ms / 1000)
            try:
                ev = await asyncio.wait_for(q.get(), wait)
            except asyncio.TimeoutError:
                ev = (None, None, None, None)
            if ev is None:
                break
            erv, r, etype, o = ev
            if erv is not None and r == res and (
                    o["metadata"]["namespace"] == ns and
                    selector_match(sel, o["metadata"].get("labels") or {})):
                await send(etype, o)
            if bookmarks and loop.time() - last_bm >= ARGS.bookmark_ms / 1000:
                last_bm = loop.time()
                await send("BOOKMARK", {"kind": KINDS[res][0],
                                        "apiVersion": "v1", "metadata":
                                        {"resourceVersion": str(rv)}})
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watchers.discard(q)
    return resp


async def delete(req):
    res, ns = check_res(req)
    name = req.match_info["name"]
    obj = objects.get((res, ns, name))
    if obj is None:
        return status(404, "NotFound", '%s "%s" not found' % (res, name),
                      {"name": name, "kind": res})
    grace = req.query.get("gracePeriodSeconds")
    body = await req.text()
    if grace is None and body:
        try:
            grace = json.loads(body).get("gracePeriodSeconds")
        except ValueError:
            pass
    if res != "pods":
        drop(res, ns, name)
        return web.json_response({"kind": "Status", "apiVersion": "v1",
                                  "metadata": {}, "status": "Success",
                                  "details": {"name": name, "kind": res,
                                              "uid": obj["metadata"]["uid"]}})
    if grace is None:
        grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
    grace = int(grace)
    md = obj["metadata"]
    if "deletionTimestamp" not in md:
        md["deletionTimestamp"] = ts()
        md["deletionGracePeriodSeconds"] = grace
        bump(res, "MODIFIED", obj)
        pods[(ns, name)].kill(grace)
    return web.json_response(obj)


def drop(res, ns, name):
    """Deletes a non-pod object now, and what it owns: a claim its
    sandbox, a sandbox its pod (the agent-sandbox controllers do it
    through ownerReferences and finalizers)."""
    obj = objects.pop((res, ns, name), None)
    if obj is None:
        return
    bump(res, "DELETED", obj)
    if res == "sandboxclaims":
        drop("sandboxes", ns, name)
    elif res == "sandboxes":
        pod = objects.get(("pods", ns, name))
        if pod is not None and "deletionTimestamp" not in pod["metadata"]:
            pod["metadata"]["deletionTimestamp"] = ts()
            pod["metadata"]["deletionGracePeriodSeconds"] = 0
            bump("pods", "MODIFIED", pod)
            pods[(ns, name)].kill(0)


async def logs(req):
    ns, name = req.match_info["ns"], req.match_info["name"]
    k = pods.get((ns, name))
    if k is None or ("pods", ns, name) not in objects:
        return status(404, "NotFound", 'pods "%s" not found' % name,
                      {"name": name, "kind": "pods"})
    spec = objects[("pods", ns, name)]["spec"]
    cname = req.query.get("container")
    if cname is None:
        if len(spec["containers"]) > 1:
            return status(400, "BadRequest", "a container name must be "
                          "specified for pod %s, choose one of: %s"
                          % (name, [c["name"] for c in spec["containers"]]))
        cname = spec["containers"][0]["name"]
    c = k.containers.get(cname)
    if c is None:
        return status(400, "BadRequest", 'container %s is not valid for '
                      'pod %s' % (cname, name))
    if c.started is None:
        return status(400, "BadRequest", 'container "%s" in pod "%s" is '
                      'waiting to start: %s' % (cname, name, c.waiting))
    since = req.query.get("sinceTime")
    since = parse_ts(since) if since else None
    stamps = req.query.get("timestamps") == "true"
    follow = req.query.get("follow") == "true"
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    await resp.prepare(req)
    i = 0
    if req.query.get("tailLines"):
        i = max(0, len(c.lines) - int(req.query["tailLines"]))
    gen = cut_gen
    try:
        while True:
            while i < len(c.lines):
                t, line = c.lines[i]
                i += 1
                if since is None or t >= since:
                    await resp.write((ts_nano(t) + " ").encode() + line
                                     if stamps else line)
            if not follow or c.finished is not None or gen != cut_gen:
                break
            async with c.cond:
                await c.cond.wait()
    except ConnectionResetError:
        pass
    return resp


class Container:
    def __init__(self, spec):
        self.spec = spec
        self.lines = []         # (time, bytes with its newline)
        self.started = self.finished = None
        self.waiting = "PodInitializing"
        self.proc = None
        self.exit = None
        self.reason = None
        self.cond = asyncio.Condition()
        self.env = None
        self.cwd = None

    async def note(self):
        async with self.cond:
            self.cond.notify_all()


class Kubelet:
    def __init__(self, ns, name):
        self.ns, self.name = ns, name
        self.killed = False
        self.task = None
        self.mounts = []
        self.execs = set()      # exec'd processes
        self.root = tempfile.mkdtemp(prefix="fake-k8s-pod-")
        spec = self.obj["spec"]
        self.init = [Container(c) for c in spec.get("initContainers", [])]
        self.main = [Container(c) for c in spec["containers"]]
        self.containers = {c.spec["name"]: c for c in self.init + self.main}

    @property
    def obj(self):
        return objects.get(("pods", self.ns, self.name))

    def update(self):
        o = self.obj
        if o is not None:
            bump("pods", "MODIFIED", o)

    def cstatus(self, c):
        st = {"name": c.spec["name"], "image": c.spec.get("image", ""),
              "ready": c.started is not None and c.finished is None,
              "restartCount": 0}
        if c.finished is not None:
            st["state"] = {"terminated": {
                "exitCode": c.exit, "reason": c.reason,
                "startedAt": ts(c.started), "finishedAt": ts(c.finished)}}
        elif c.started is not None:
            st["state"] = {"running": {"startedAt": ts(c.started)}}
        else:
            st["state"] = {"waiting": {"reason": c.waiting}}
            if c.waiting == "ImagePullBackOff":
                st["state"]["waiting"]["message"] = \
                    'Back-off pulling image "%s"' % c.spec.get("image")
        return st

    def set_status(self, phase=None, conditions=None):
        o = self.obj
        if o is None:
            return
        s = o["status"]
        if phase:
            s["phase"] = phase
        if conditions is not None:
            s["conditions"] = conditions
        if self.init:
            s["initContainerStatuses"] = [self.cstatus(c) for c in self.init]
        s["containerStatuses"] = [self.cstatus(c) for c in self.main]
        self.update()

    def path(self, s):
        """Rewrites mountPath prefixes of a string to the volume's dir."""
        for m in sorted(self.mounts, key=lambda m: -len(m[0])):
            mp = m[0].rstrip("/")
            if s == mp or s.startswith(mp + "/"):
                return m[1] + s[len(mp):]
        return s

    def secret_value(self, name, key):
        sec = objects.get(("secrets", self.ns, name))
        if sec is None or key not in sec.get("data", {}):
            return None
        return base64.b64decode(sec["data"][key]).decode()

    async def run(self):
        await asyncio.sleep(0.05)
        spec = self.obj["spec"]
        sel = spec.get("nodeSelector") or {}
        if any(NODE_LABELS.get(k) != v for k, v in sel.items()):
            self.set_status(conditions=[{
                "type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "lastTransitionTime": ts(),
                "message": "0/1 nodes are available: 1 node(s) didn't match"
                " Pod's node affinity/selector. preemption: 0/1 nodes are "
                "available: 1 Preemption is not helpful for scheduling."}])
            return
        spec["nodeName"] = "fake-node"
        conds = [{"type": "PodScheduled", "status": "True",
                  "lastTransitionTime": ts()}]
        for c in self.init + self.main:
            if IMAGES is not None and c.spec.get("image") not in IMAGES:
                c.waiting = "ErrImagePull"
                self.set_status(conditions=conds)
                await asyncio.sleep(0.2)
                c.waiting = "ImagePullBackOff"
                self.set_status(conditions=conds)
                return
        vols = {}
        for v in spec.get("volumes", []):
            d = os.path.join(self.root, "vol", v["name"])
            os.makedirs(d)
            vols[v["name"]] = d
            if "secret" in v:
                sec = objects.get(("secrets", self.ns,
                                   v["secret"]["secretName"]))
                if sec is None:
                    self.main[0].waiting = "ContainerCreating"
                    self.set_status(conditions=conds)
                    return
                for k, val in sec.get("data", {}).items():
                    with open(os.path.join(d, k), "wb") as f:
                        f.write(base64.b64decode(val))
        for c in self.init:
            if not await self.start(c, vols):
                self.set_status("Failed", conds)
                return
        ok = True
        for c in self.main:
            ok = await self.start(c, vols) and ok
        self.set_status("Succeeded" if ok else "Failed", conds)

    async def start(self, c, vols):
        """Runs one container to its end; False if it failed."""
        if self.killed:
            return False
        self.mounts = [(m["mountPath"], vols[m["name"]])
                       for m in c.spec.get("volumeMounts", [])]
        env = {"PATH": os.environ["PATH"], "HOME": self.root,
               "HOSTNAME": self.name}
        for e in c.spec.get("env", []):
            if "value" in e:
                env[e["name"]] = self.path(e["value"])
            elif "secretKeyRef" in e.get("valueFrom", {}):
                r = e["valueFrom"]["secretKeyRef"]
                val = self.secret_value(r["name"], r["key"])
                if val is None:
                    c.waiting = "CreateContainerConfigError"
                    self.set_status()
                    return False
                env[e["name"]] = val
        argv = [self.path(a) for a in
                c.spec.get("command", []) + c.spec.get("args", [])]
        cwd = self.path(c.spec.get("workingDir") or self.root)
        os.makedirs(cwd, exist_ok=True)
        c.env, c.cwd = env, cwd
        try:
            c.proc = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            c.waiting = "RunContainerError"
            c.lines.append((now(), ("exec: %s\n" % e).encode()))
            self.set_status()
            return False
        c.started = now()
        self.set_status("Running" if c in self.main else "Pending")
        await c.note()
        while True:
            line = await c.proc.stdout.readline()
            if not line:
                break
            c.lines.append((now(), line))
            await c.note()
        rc = await c.proc.wait()
        c.exit = rc if rc >= 0 else 128 - rc
        c.reason = "Completed" if c.exit == 0 else "Error"
        if c.exit == 137 and env.get("FAKE_OOM") == "1":
            c.reason = "OOMKilled"
        c.finished = now()
        await c.note()
        return c.exit == 0

    def kill(self, grace):
        asyncio.ensure_future(self._kill(grace))

    async def _kill(self, grace):
        self.killed = True
        live = [c for c in self.containers.values()
                if c.proc is not None and c.finished is None]
        for p in list(self.execs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for c in live:
            try:
                os.killpg(c.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = asyncio.get_running_loop().time() + grace
        while any(c.finished is None for c in live) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for c in live:
            if c.finished is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        while any(c.finished is None for c in live):
            await asyncio.sleep(0.05)
        if self.task is not None and not self.task.done():
            self.task.cancel()
        o = objects.pop(("pods", self.ns, self.name), None)
        if o is not None:
            bump("pods", "DELETED", o)
        shutil.rmtree(self.root, ignore_errors=True)


async def on_shutdown(app):
    for k in pods.values():
        for c in k.containers.values():
            if c.proc is not None and c.finished is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(k.root, ignore_errors=True)


async def discovery_api(req):
    return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": [{
                                  "clientCIDR": "0.0.0.0/0",
                                  "serverAddress": req.host}]})


async def discovery_apis(req):
    return web.json_response({"kind": "APIGroupList", "apiVersion": "v1",
                              "groups": []})


async def discovery_v1(req):
    verbs = ["create", "delete", "get", "list", "watch"]
    return web.json_response({
        "kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True,
             "kind": "Pod", "verbs": verbs, "shortNames": ["po"]},
            {"name": "pods/log", "singularName": "", "namespaced": True,
             "kind": "Pod", "verbs": ["get"]},
            {"name": "secrets", "singularName": "secret", "namespaced": True,
             "kind": "Secret", "verbs": verbs}]})


async def compact(req):
    """Forgets the history and ends every open watch, as an API server
    restart with a compacted etcd would: clients re-watch from their
    resourceVersion and get 410."""
    global history_floor
    history_floor = rv + 1
    history.clear()
    for q in list(watchers):
        q.put_nowait(None)
    return web.json_response({"floor": history_floor})


async def cut_logs(req):
    """Ends every followed log stream mid-way, as a dropped connection
    would; clients reconnect with sinceTime."""
    global cut_gen
    cut_gen += 1
    for k in pods.values():
        for c in k.containers.values():
            await c.note()
    return web.json_response({"cut": cut_gen})


async def get_requests(req):
    return web.json_response(requests)


def main():
    fake_sandbox.K = sys.modules[__name__]
    app = web.Application(middlewares=[auth])
    base = "/api/v1/namespaces/{ns}/{res}"
    app.router.add_get("/api", discovery_api)
    app.router.add_get("/apis", discovery_apis)
    app.router.add_get("/api/v1", discovery_v1)
    app.router.add_post(base, create)
    app.router.add_get(base, list_or_watch)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", logs)
    app.router.add_get(base + "/{name}", get_one)
    app.router.add_delete(base + "/{name}", delete)
    crd = "/apis/{group}/v1alpha1/namespaces/{ns}/{res}"
    app.router.add_post(crd, create)
    app.router.add_get(crd, list_or_watch)
    app.router.add_get(crd + "/{name}", get_one)
    app.router.add_delete(crd + "/{name}", delete)
    fake_sandbox.routes(app, crd)
    app.on_shutdown.append(on_shutdown)
    app.router.add_post("/_fake/compact", compact)
    app.router.add_get("/_fake/requests", get_requests)
    app.router.add_post("/_fake/cut-logs", cut_logs)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)            # connectable once the port is printed
    print(sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, ssl_context=ctx, print=None,
                handle_signals=True)


if __name__ == "__main__":
    main()
