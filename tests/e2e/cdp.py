"""A small Chrome DevTools Protocol client for the browser tests: starts
Debian's headless `chromium` with a fresh profile, opens tabs, evaluates
JavaScript, waits for conditions, takes screenshots.  Uses Debian's
python3-websockets (asyncio) on a private event loop thread, so tests stay
plain synchronous code.  Only loopback is used."""

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import websockets

CHROMIUM = os.environ.get("SB_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps",
         "--mute-audio", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0"]


class CDPError(Exception):
    pass


def available():
    return shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM)


class Browser:
    def __init__(self, slow=1):
        self.slow = slow
        self.profile = tempfile.mkdtemp(prefix="sb-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, "--user-data-dir=" + self.profile,
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 20 * slow
        while not os.path.exists(port_file) or \
                os.path.getsize(port_file) == 0:
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise CDPError("chromium did not start (rc=%s)" %
                               self.proc.poll())
            time.sleep(0.05)
        port = open(port_file).read().split()[0]
        with urllib.request.urlopen("http://127.0.0.1:%s/json/version"
                                    % port, timeout=10) as r:
            url = json.load(r)["webSocketDebuggerUrl"]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.thread.start()
        self.ids = itertools.count(1)
        self.waiting = {}
        self.events = []            # (session, method, params)
        async def connect():
            return await websockets.connect(url, max_size=64 << 20,
                                            ping_interval=None)
        self.ws = self._run(connect())
        self.reader = asyncio.run_coroutine_threadsafe(self._read(),
                                                       self.loop)

    def _run(self, coro, timeout=60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(
            timeout * self.slow)

    async def _read(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if "id" in m and m["id"] in self.waiting:
                    self.waiting.pop(m["id"]).set_result(m)
                elif "method" in m:
                    self.events.append((m.get("sessionId"), m["method"],
                                        m.get("params", {})))
        except websockets.ConnectionClosed:
            pass

    async def _call(self, method, params, session):
        i = next(self.ids)
        fut = self.loop.create_future()
        self.waiting[i] = fut
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        return await fut

    def call(self, method, params=None, session=None, timeout=30):
        m = self._run(self._call(method, params, session), timeout)
        if "error" in m:
            raise CDPError("%s: %s" % (method, m["error"]))
        return m.get("result", {})

    def tab(self, url="about:blank", isolated=False, width=1100,
            height=800):
        """A new tab; isolated = its own cookie jar (a fresh visitor)."""
        params = {"url": "about:blank"}
        if isolated:
            ctx = self.call("Target.createBrowserContext")
            params["browserContextId"] = ctx["browserContextId"]
        t = self.call("Target.createTarget", params)["targetId"]
        s = self.call("Target.attachToTarget", {"targetId": t,
                                                "flatten": True})["sessionId"]
        tab = Tab(self, t, s)
        tab.call("Page.enable")
        tab.call("Runtime.enable")
        tab.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 600})
        if url != "about:blank":
            tab.navigate(url)
        return tab

    def close(self):
        try:
            if getattr(self, "ws", None) is not None:
                self._run(self.ws.close(), 5)
        except Exception:  # noqa: BLE001 — best effort at teardown
            pass
        if getattr(self, "loop", None) is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    def __init__(self, browser, target, session):
        self.b = browser
        self.target = target
        self.session = session

    def call(self, method, params=None, timeout=30):
        return self.b.call(method, params, self.session, timeout)

    def events(self, method):
        return [p for s, m, p in list(self.b.events)
                if s == self.session and m == method]

    def navigate(self, url, wait=True):
        before = len(self.events("Page.loadEventFired"))
        r = self.call("Page.navigate", {"url": url})
        if "errorText" in r:
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        if wait:
            self.wait_event("Page.loadEventFired", before)

    def reload(self):
        before = len(self.events("Page.loadEventFired"))
        self.call("Page.reload", {"ignoreCache": True})
        self.wait_event("Page.loadEventFired", before)

    def wait_event(self, method, before, timeout=15):
        deadline = time.time() + timeout * self.b.slow
        while len(self.events(method)) <= before:
            if time.time() > deadline:
                raise CDPError("no %s within %ss" % (method, timeout))
            time.sleep(0.02)

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr,
                                           "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CDPError("js %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, timeout=15, what=None):
        """Waits until expr (JavaScript) is truthy; returns its value."""
        deadline = time.time() + timeout * self.b.slow
        while True:
            try:
                v = self.js(expr)
            except CDPError:
                v = None
            # JavaScript's truthiness: an element comes back as {}.
            if v or isinstance(v, (dict, list)):
                return v
            if time.time() > deadline:
                raise CDPError("timed out waiting for %s" % (what or expr))
            time.sleep(0.05)

    def screenshot(self, path):
        # Only the tab in front paints.
        self.call("Page.bringToFront")
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        self.b.call("Target.closeTarget", {"targetId": self.target})
