"""agent-sandbox and the exec API for tests/fakes/fake-k8s.py (which see
for what they do): the claim "controller", the claims' lifecycle, merge
patches, and GET …/pods/NAME/exec over a WebSocket.  K is the fake's main
module (its objects, pods, bump, add, drop…), set by it before serving."""
import asyncio
import json

from aiohttp import web

K = None
execs = []              # {protocol, argv, rc} of each exec
exec_protocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]


def set_ready(res, ns, name, ready, reason, message, sandbox=None):
    obj = K.objects.get((res, ns, name))
    if obj is None:
        return
    st = obj.setdefault("status", {})
    st["conditions"] = [{"type": "Ready",
                         "status": "True" if ready else "False",
                         "reason": reason, "message": message,
                         "lastTransitionTime": K.ts()}]
    if sandbox is not None:
        st["sandbox"] = {"name": sandbox}
    K.bump(res, "MODIFIED", obj)


async def claim_controller(ns, name):
    """agent-sandbox's claim and sandbox controllers in one: the claim's
    template → a Sandbox of the same name → its Pod (same name); the
    Sandbox and the claim are Ready once the pod's container runs."""
    await asyncio.sleep(0.05)
    claim = K.objects.get(("sandboxclaims", ns, name))
    if claim is None:
        return
    tname = (claim.get("spec", {}).get("sandboxTemplateRef") or {}) \
        .get("name", "")
    tmpl = K.objects.get(("sandboxtemplates", ns, tname))
    if tmpl is None:
        set_ready("sandboxclaims", ns, name, False, "TemplateNotFound",
                  'SandboxTemplate "%s" not found' % tname)
        return
    pt = json.loads(json.dumps(tmpl["spec"]["podTemplate"]))
    K.add("sandboxes", ns, {"metadata": {
        "name": name, "ownerReferences": [{
            "apiVersion": K.API_VERSION["sandboxclaims"],
            "kind": "SandboxClaim", "name": name,
            "uid": claim["metadata"]["uid"], "controller": True}]},
        "spec": {"podTemplate": pt}})
    set_ready("sandboxclaims", ns, name, False, "SandboxNotReady",
              "Sandbox is not ready")
    md = dict(pt.get("metadata") or {})
    md["name"] = name
    K.add("pods", ns, {"metadata": md, "spec": pt["spec"]})
    k = K.pods[(ns, name)]
    while ("sandboxclaims", ns, name) in K.objects:
        c = k.main[0]
        if c.started is not None and c.finished is None:
            set_ready("sandboxes", ns, name, True, "DependenciesReady",
                      "Pod is Ready; Service Exists")
            set_ready("sandboxclaims", ns, name, True, "SandboxReady",
                      "Sandbox is ready", sandbox=name)
            return
        if c.waiting in ("ErrImagePull", "ImagePullBackOff"):
            msg = "Pod is not ready: %s" % c.waiting
            cl = K.objects[("sandboxclaims", ns, name)]
            if cl["status"]["conditions"][0]["message"] != msg:
                set_ready("sandboxclaims", ns, name, False,
                          "SandboxNotReady", msg)
        await asyncio.sleep(0.05)


def merge(dst, patch):
    """RFC 7386 JSON merge patch."""
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v


async def patch_one(req):
    res, ns = K.check_res(req)
    name = req.match_info["name"]
    if req.content_type != "application/merge-patch+json":
        return K.status(415, "UnsupportedMediaType", "the body of the request "
                        "was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/"
                        "merge-patch+json, application/apply-patch+yaml")
    obj = K.objects.get((res, ns, name))
    if obj is None:
        return K.status(404, "NotFound", '%s "%s" not found' % (res, name),
                        {"name": name, "kind": res})
    merge(obj, json.loads(await req.text()))
    K.bump(res, "MODIFIED", obj)
    return web.json_response(obj)


async def claim_expiry(app):
    """agent-sandbox's lifecycle: a claim whose spec.lifecycle.shutdownTime
    has passed, with shutdownPolicy Delete, is deleted (and its sandbox)."""
    async def sweep():
        while True:
            await asyncio.sleep(0.1)
            for (r, ns, name), o in list(K.objects.items()):
                lc = o.get("spec", {}).get("lifecycle") or {} \
                    if r == "sandboxclaims" else {}
                if lc.get("shutdownTime") and \
                        lc.get("shutdownPolicy") == "Delete" and \
                        K.parse_ts(lc["shutdownTime"]) <= K.now():
                    K.drop(r, ns, name)
    app["expiry"] = asyncio.ensure_future(sweep())


async def pod_exec(req):
    """The exec API over a WebSocket (v5.channel.k8s.io / v4): the command
    runs as a local process with the container's environment and mounts;
    messages carry the channel in their first byte (0 stdin, 1 stdout, 2
    stderr, 3 the final Status; v5: 255 + channel closes it)."""
    ns, name = req.match_info["ns"], req.match_info["name"]
    k = K.pods.get((ns, name))
    if k is None or ("pods", ns, name) not in K.objects:
        return K.status(404, "NotFound", 'pods "%s" not found' % name,
                        {"name": name, "kind": "pods"})
    c = k.main[0]
    if c.started is None or c.finished is not None:
        return K.status(400, "BadRequest", "container %s is not running"
                        % c.spec["name"])
    argv = req.query.getall("command", [])
    ws = web.WebSocketResponse(protocols=exec_protocols)
    await ws.prepare(req)
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    rec = {"protocol": ws.ws_protocol, "argv": argv, "rc": None}
    execs.append(rec)
    proc = await asyncio.create_subprocess_exec(
        *argv, env=c.env, cwd=c.cwd, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    k.execs.add(proc)

    async def pump(stream, ch):
        while True:
            data = await stream.read(65536)
            if not data:
                break
            try:
                await ws.send_bytes(bytes([ch]) + data)
            except (ConnectionResetError, RuntimeError):
                pass

    def close_stdin():
        if not proc.stdin.is_closing():
            proc.stdin.close()

    async def reader():
        async for msg in ws:
            if msg.type != web.WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            if ch == 0:
                try:
                    proc.stdin.write(data)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif ch == 255 and v5 and data[:1] == b"\0":
                close_stdin()
        close_stdin()           # the stream is gone: so is its stdin

    rd = asyncio.ensure_future(reader())
    await asyncio.gather(pump(proc.stdout, 1), pump(proc.stderr, 2))
    rc = await proc.wait()
    k.execs.discard(proc)
    rc = rc if rc >= 0 else 128 - rc
    rec["rc"] = rc
    if rc == 0:
        st = {"metadata": {}, "status": "Success"}
    else:
        st = {"metadata": {}, "status": "Failure",
              "message": "command terminated with non-zero exit code: "
              "error executing command %s, exit code %d" % (argv, rc),
              "reason": "NonZeroExitCode",
              "details": {"causes": [{"reason": "ExitCode",
                                      "message": str(rc)}]}}
    if not ws.closed:
        try:
            await ws.send_bytes(b"\x03" + json.dumps(st).encode())
            await ws.close()
        except (ConnectionResetError, RuntimeError):
            pass
    rd.cancel()
    return ws


async def set_exec_protocols(req):
    """What the exec endpoint speaks, e.g. only v4 (servers before 1.30)."""
    exec_protocols[:] = (await req.json())["protocols"]
    return web.json_response(exec_protocols)


async def get_execs(req):
    return web.json_response(execs)


def routes(app, crd):
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec",
                       pod_exec)
    app.router.add_patch(crd + "/{name}", patch_one)
    app.on_startup.append(claim_expiry)
    app.router.add_get("/_fake/execs", get_execs)
    app.router.add_post("/_fake/exec-protocols", set_exec_protocols)
