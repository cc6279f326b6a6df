"""End-to-end tests of the web chat in a real browser: the real binary with
adapters.web on, Debian's headless chromium driven over the DevTools
protocol (tests/e2e/cdp.py), plain WebSocket clients for the protocol and
the refusals.  Screenshots of a thread and of the dashboard go to
build/web-thread.png and build/web-dashboard.png (and, with
SB_UPDATE_SCREENSHOTS=1, to examples/web-thread.png for the README)."""

import asyncio
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import ROOT, SLOW, Daemon, agent, check, free_port, run_tests  # noqa: E402
import cdp  # noqa: E402
import websockets  # noqa: E402

FAKE_CLAUDE = os.path.join(ROOT, "tests", "fakes", "fake-claude")
SHOTS = os.path.join(ROOT, "build")
BROWSER = None
XSS = "<img src=x onerror=alert(1)>"


def browser():
    global BROWSER
    if BROWSER is None:
        BROWSER = cdp.Browser(slow=SLOW)
    return BROWSER


def web_daemon(tmp, ds, route_agent="webagent", extra_agents=""):
    port = free_port()
    d = Daemon(tmp, [("webagent", [agent("web.sh"), "{task}"], 60)],
               allowed='"console:me", "web:me"',
               http="127.0.0.1:%d" % port,
               adapters='web = { enabled = true; user = "me"; };')
    with open(d.conf) as f:
        text = f.read()
    text = re.sub(r"^routes = \(.*\);$", lambda _: (
        'routes = ( { adapter = "console"; channel = "*"; repo = "r";'
        ' agent = "webagent"; }, { adapter = "web"; channel = "*";'
        ' repo = "r"; agent = "%s"; } );' % route_agent), text, flags=re.M)
    if extra_agents:
        text = re.sub(r"^agents = \( (.*) \);$", lambda m: (
            "agents = ( %s, %s );" % (m.group(1), extra_agents)), text,
            flags=re.M)
    with open(d.conf, "w") as f:
        f.write(text)
    d.port = port
    d.base = "http://127.0.0.1:%d" % port
    ds.append(d)
    d.start()
    d.token = wait_token(d)
    return d


def wait_token(d):
    import time
    path = os.path.join(d.state, "web-token")
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline:
        if os.path.exists(path) and d.saw_stderr("web chat at"):
            return open(path).read().strip()
        time.sleep(0.05)
    raise AssertionError("no web token; stderr:\n" + d.stderr_tail())


def _saw_stderr(self, pattern):
    return re.search(pattern, self.stderr_tail(200)) is not None


Daemon.saw_stderr = _saw_stderr


def cookie_of(d):
    """Signs in like a browser: GET /?token=T, keep the Set-Cookie value."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    op = urllib.request.build_opener(NoRedirect)
    try:
        op.open(d.base + "/?token=" + d.token, timeout=10)
        raise AssertionError("no redirect after the token")
    except urllib.error.HTTPError as e:
        check(e.code == 303, "303 after the token, got %d" % e.code)
        c = e.headers["Set-Cookie"]
    check("HttpOnly" in c and "SameSite=Strict" in c, "cookie flags: %s" % c)
    check(d.token not in c, "the cookie is not the token")
    return c.split(";")[0]


def ws_session(d, cookie, origin, script):
    """Runs script(ws) on a plain WebSocket to /ws; returns its result."""
    async def go():
        hdrs = [("Origin", origin)] if origin else []
        if cookie:
            hdrs.append(("Cookie", cookie))
        async with websockets.connect(
                "ws://127.0.0.1:%d/ws" % d.port, extra_headers=hdrs,
                open_timeout=10 * SLOW, ping_interval=None) as ws:
            return await script(ws)
    return asyncio.run(go())


async def recv_json(ws, want, timeout=10):
    """Next message of type want (others are skipped)."""
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout * SLOW))
        if m["type"] == want:
            return m


def signed_in_tab(d, **kw):
    t = browser().tab(**kw)
    t.navigate(d.base + "/?token=" + d.token)
    t.wait("document.body.dataset.conn === 'live'", what="live socket")
    return t


def thread_items(t):
    return t.js("[...document.querySelectorAll('#messages li.msg')].map("
                "e => e.dataset.id + '|' + e.querySelector('.text')"
                ".textContent)")


def no_dialogs(t):
    return not t.events("Page.javascriptDialogOpening")


# ---- scenarios --------------------------------------------------------------

def test_web_thread_card_question_reload_second_tab_diff_dashboard(tmp, ds):
    d = web_daemon(tmp, ds)
    # An agent in another adapter's thread, for the dashboard.
    d.send("new from the console")
    d.expect(r"Started #1 webagent")
    a = signed_in_tab(d)
    check(a.js("location.pathname + location.search") == "/",
          "the token left the address bar")
    check(not a.js("document.cookie.includes('sb_web')"),
          "the cookie is HttpOnly")
    # Start a task from the new-thread box.
    a.js("document.getElementById('new-text').value = 'polish the README';"
         "document.getElementById('new-thread').requestSubmit()")
    thread = a.wait("(/^#\\/t\\/(\\d+)$/.exec(location.hash) || [])[1]",
                    what="the new thread opens")
    a.wait("document.querySelectorAll('#messages li.card').length === 1",
           what="a status card")
    card_id = a.js("document.querySelector('#messages li.card').dataset.id")
    # The card changes in place as the agent reports: the element we mark
    # now is the one that shows later steps.
    a.js("document.querySelector('#messages li.card').sbMark = 1")
    a.wait("document.querySelector('#messages li.card .text').textContent"
           ".includes('%s')" % XSS.replace("'", "\\'"),
           what="the HTML step on the card, as text")
    check(a.js("document.querySelectorAll('#messages li.card').length")
          == 1, "one card, edited in place")
    check(a.js("document.querySelector('#messages li.card').dataset.id")
          == card_id, "the same card element")
    check(a.js("document.querySelectorAll('#messages img, script:not("
               "[src])').length") == 0, "no element from agent text")
    # A second tab on the same thread sees the same question.
    b = browser().tab()
    b.navigate(d.base + "/#/t/" + thread)
    b.wait("document.body.dataset.conn === 'live'", what="tab b live")
    for name, t in (("a", a), ("b", b)):
        t.wait("document.querySelector('button[data-choice=\"Casual\"]')",
               what="the question's buttons in tab " + name)
    # Click a choice; the agent continues, both tabs see it.
    a.js("document.querySelector('button[data-choice=\"Casual\"]').click()")
    for t in (a, b):
        t.wait("[...document.querySelectorAll('#messages .text')].some("
               "e => /answered by web:me: Casual/.test(e.textContent))",
               what="the answer shown")
        t.wait("document.querySelector('#messages li.card .text')"
               ".textContent.includes('after Casual')",
               what="the agent continues")
    check(a.js("document.querySelector('#messages li.card').sbMark === 1"),
          "the card was updated in place, not replaced")
    # Mid-run: tab a reloads, tab b loses its socket and resumes.
    a.reload()
    a.wait("document.body.dataset.conn === 'live'", what="a live again")
    b.js("window.sbReconnect()")
    b.wait("window.sbStats.connects === 2 && document.body.dataset.conn"
           " === 'live'", what="b reconnected")
    for t in (a, b):
        t.wait("[...document.querySelectorAll('#messages .text')].some("
               "e => /✅ #2 done/.test(e.textContent))", timeout=30,
               what="the result")
    # Same messages everywhere, nothing missed, nothing doubled.
    c = browser().tab()
    c.navigate(d.base + "/#/t/" + thread)
    c.wait("document.body.dataset.conn === 'live'")
    c.wait("document.body.dataset.seq === '%s'" % a.js(
        "document.body.dataset.seq"), what="tab c caught up")
    check(thread_items(a) == thread_items(c), "reloaded tab = fresh tab:\n"
          "%r\n%r" % (thread_items(a), thread_items(c)))
    check(thread_items(b) == thread_items(c), "resumed tab = fresh tab:\n"
          "%r\n%r" % (thread_items(b), thread_items(c)))
    st = b.js("window.sbStats")
    check(st["resets"] == 0 and st["dupes"] == 0,
          "resume without reset or duplicates: %r" % st)
    check(any("<script>alert(2)</script>" in x for x in thread_items(a)),
          "the HTML summary is text")
    for t in (a, b, c):
        check(no_dialogs(t), "no alert() ran")
    a.screenshot(os.path.join(SHOTS, "web-thread.png"))
    if os.environ.get("SB_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(os.path.join(SHOTS, "web-thread.png"),
                    os.path.join(ROOT, "examples", "web-thread.png"))
    # The agent view: steps and the rendered diff of its branch.
    a.js("document.querySelector('#messages li.card .links a').click()")
    a.wait("location.hash === '#/agent/2'")
    a.wait("[...document.querySelectorAll('#agent-steps li')].some("
           "e => e.textContent === 'after Casual 8')", what="all steps")
    check(a.js("[...document.querySelectorAll('#agent-steps li')].map(e =>"
               " e.textContent).filter(s => s.startsWith('after ')).length")
          == 8, "every step, not just the card's last five")
    # Its log is its output (agent_output_tail), not the card's steps.
    a.wait("document.getElementById('agent-log').textContent.includes("
           "'wrote style.txt (Casual)')", what="the agent's output")
    a.js("document.getElementById('agent-diff-load').click()")
    a.wait("document.getElementById('agent-diff').dataset.loaded === 'yes'",
           what="the diff")
    check(a.js("[...document.querySelectorAll('#agent-diff span.add')]"
               ".some(e => e.textContent === '+style: Casual')"),
          "the branch's change, rendered")
    # The dashboard lists the agent; also on a phone-sized screen.
    a.js("location.hash = '#/agents'")
    a.wait("document.querySelector('#agents tr[data-agent=\"2\"] .state')"
           "?.textContent === 'done'", what="dashboard row")
    row = a.js("[...document.querySelectorAll('#agents tr[data-agent=\"2\"]"
               " td')].map(e => e.textContent)")
    check(row[1] == "webagent" and row[3] == "r" and
          row[4].startswith("sb/2-") and row[8] == "thread " + thread,
          "dashboard row: %r" % row)
    other = a.js("[...document.querySelectorAll('#agents tr[data-agent=\"1\"]"
                 " td')].map(e => e.textContent)")
    check(other[2] == "running" and other[7] == "1 open" and
          other[8].startswith("console console "),
          "the console's agent is listed too: %r" % other)
    a.screenshot(os.path.join(SHOTS, "web-dashboard.png"))
    p = browser().tab(width=390, height=800)
    p.navigate(d.base + "/#/t/" + thread)
    p.wait("document.body.dataset.conn === 'live' && document.querySelector"
           "('#messages li.card')", what="phone thread")
    check(p.js("document.documentElement.scrollWidth <= 390"),
          "no horizontal scrolling on a phone")
    check(p.js("getComputedStyle(document.getElementById('threads-pane'))"
               ".display") == "none", "the thread fills a phone screen")
    for t in (a, b, c, p):
        t.close()
    check(d.stop() == 0, "clean exit")


def test_web_approvals_allow_for_session_and_deny_with_reason(tmp, ds):
    # In the sandbox (the default) the fake needs its own directory (its
    # mcpclient module), as in test_drivers.py.
    claude = ('{ name = "claude"; driver = "claude"; command = [ "%s" ];'
              ' approvals = "chat"; auto_allow = [ "Read" ];'
              # in its sandbox the fake needs its own directory (mcpclient)
              ' sandbox_paths = [ "%s" ]; }' % (FAKE_CLAUDE,
                                                os.path.dirname(FAKE_CLAUDE)))
    d = web_daemon(tmp, ds, route_agent="claude", extra_agents=claude)
    t = signed_in_tab(d)
    t.js("document.getElementById('new-text').value = 'scenario=approve x';"
         "document.getElementById('new-thread').requestSubmit()")
    t.wait("location.hash.startsWith('#/t/')")
    q = "[...document.querySelectorAll('#messages li.msg')].find(e => " \
        "/May #1 use %s\\?/.test(e.textContent) && e.querySelector(" \
        "'button[data-choice]'))"
    t.wait(q % "Bash", what="the Bash approval")
    labels = t.js("[...(%s).querySelectorAll('button')].map(e => "
                  "e.textContent)" % (q % "Bash"))
    check(labels == ["Allow", "Deny", "Allow for this session",
                     "Deny with reason"], "approval buttons: %r" % labels)
    t.js("(%s).querySelector('button[data-choice=\"Allow for this "
         "session\"]').click()" % (q % "Bash"))
    t.wait(q % "Write", what="the Write approval (second Bash allowed)")
    t.js("const m = %s; m.querySelector('input.reason').value = "
         "'not in this PR'; m.querySelector('button.deny.secondary')"
         ".click()" % (q % "Write"))
    t.wait(q % "WebFetch", what="the WebFetch approval")
    t.js("(%s).querySelector('button[data-choice=\"Allow\"]').click()"
         % (q % "WebFetch"))
    t.wait("[...document.querySelectorAll('#messages .text')].some(e => "
           "/ran Read; ran Bash; ran Bash; denied: web:me denied this: not"
           " in this PR; ran WebFetch/.test(e.textContent))", timeout=20,
           what="the decisions in the result")
    check(t.js("[...document.querySelectorAll('#messages .text')].some(e =>"
               " /answered by web:me: Allow for this session/.test("
               "e.textContent))"), "who allowed, shown")
    t.close()
    check(d.stop() == 0, "clean exit")


def test_web_refuses_without_token_wrong_token_and_cross_origin(tmp, ds):
    d = web_daemon(tmp, ds)
    # A browser without the cookie gets the sign-in hint, not the page.
    t = browser().tab(isolated=True)
    t.navigate(d.base + "/")
    check("printed at start" in t.js("document.body.textContent"),
          "no page without the token")
    check(not t.js("!!document.getElementById('messages')"), "no app")
    t.close()
    for path, code in (("/", 401), ("/?token=nope", 403)):
        try:
            urllib.request.urlopen(d.base + path, timeout=10)
            raise AssertionError("%s was served" % path)
        except urllib.error.HTTPError as e:
            check(e.code == code, "%s: %d" % (path, e.code))
    cookie = cookie_of(d)
    origin = d.base

    async def hello(ws):
        await ws.send(json.dumps({"type": "hello", "last": 0}))
        return (await recv_json(ws, "welcome"))["user"]

    def refused(cookie, origin):
        try:
            ws_session(d, cookie, origin, hello)
        except (websockets.InvalidStatusCode, websockets.InvalidHandshake,
                websockets.ConnectionClosed, ConnectionError, OSError):
            return True
        return False
    check(refused(None, origin), "no cookie: WebSocket refused")
    check(refused(cookie, "http://evil.example"), "cross-origin refused")
    check(refused(cookie, None), "no Origin refused")
    check(refused("sb_web=" + "0" * 64, origin), "forged cookie refused")
    check(ws_session(d, cookie, origin, hello) == "web:me",
          "the right cookie and origin are let in")
    check(re.search(r"origin http://evil\.example is not this page's",
                    d.stderr_tail(100)), "the refusal is logged")
    check(d.token not in open(d.errlog).read().split("web chat at")[0],
          "the token is not logged")
    check(oct(os.stat(os.path.join(d.state, "web-token")).st_mode & 0o777)
          == "0o600", "token file is 0600")
    check(d.stop() == 0, "clean exit")


def test_web_resume_sends_exactly_what_was_missed(tmp, ds):
    # An agent that ends at once, so the thread is quiet once it is done.
    d = web_daemon(tmp, ds, route_agent="quick", extra_agents=(
        '{ name = "quick"; driver = "command"; command = [ "/bin/true" ]; }'))
    cookie = cookie_of(d)

    async def post(ws, text, thread=None):
        await ws.send(json.dumps({"type": "post", "text": text,
                                  "thread": thread}))
        return (await recv_json(ws, "posted"))["thread"]

    async def collect(ws, until):
        got = []
        while not any(until(i) for i in got):
            got += (await recv_json(ws, "msgs"))["items"]
        return got

    async def first(ws):
        await ws.send(json.dumps({"type": "hello", "last": 0}))
        w = await recv_json(ws, "welcome")
        th = await post(ws, "a quick task")
        items = []
        # Quiet once the result, the final card and the next-step offer
        # are all in.
        while not (any(i["text"].startswith("✅ #1") for i in items) and
                   any(i["text"].startswith("#1 quick · done")
                       for i in items) and
                   any(i["text"].startswith("Next for #1") for i in items)):
            items += (await recv_json(ws, "msgs"))["items"]
        return w["epoch"], th, max(i["seq"] for i in items), items
    epoch, th, last, seen = ws_session(d, cookie, d.base, first)

    async def meanwhile(ws):
        await ws.send(json.dumps({"type": "hello", "last": last,
                                  "epoch": epoch}))
        await recv_json(ws, "welcome")
        await post(ws, "help", th)
        return await collect(ws, lambda i: i["text"].startswith(
            "I run coding agents"))
    missed = ws_session(d, cookie, d.base, meanwhile)

    async def resume(ws):
        await ws.send(json.dumps({"type": "hello", "last": last,
                                  "epoch": epoch}))
        w = await recv_json(ws, "welcome")
        items = await collect(ws, lambda i: i["text"].startswith(
            "I run coding agents"))
        return w["reset"], items
    reset, items = ws_session(d, cookie, d.base, resume)
    check(not reset, "resumed, not reset")
    seqs = [i["seq"] for i in items]
    check(seqs == sorted(set(seqs)) and min(seqs) > last,
          "only later changes, each once, in order: %r" % seqs)
    check({i["id"] for i in items} == {i["id"] for i in missed},
          "exactly the messages changed meanwhile: %r vs %r" % (
              [(i["seq"], i["text"][:40]) for i in items],
              [(i["seq"], i["text"][:40]) for i in missed]))

    async def stale(ws):
        await ws.send(json.dumps({"type": "hello", "last": last,
                                  "epoch": "0000000000000000"}))
        w = await recv_json(ws, "welcome")
        items = (await recv_json(ws, "msgs"))["items"]
        return w["reset"], items
    reset, items = ws_session(d, cookie, d.base, stale)
    check(reset and th in {i["id"] for i in items} and
          min(i["seq"] for i in items) <= last,
          "another epoch starts over from the beginning")
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    if not cdp.available():
        print("FAIL test_web: chromium is not installed (make deps)")
        sys.exit(1)
    try:
        run_tests(globals())
    finally:
        if BROWSER is not None:
            BROWSER.close()
