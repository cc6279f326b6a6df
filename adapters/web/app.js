// Switchboard web chat.  Plain JS, no build step, no CDN.  Everything that
// came from chat or agents goes into the page as text (textContent), never
// as HTML; the server's Content-Security-Policy forbids inline script.
//
// The server sends message states in sequence order over /ws.  We keep the
// last sequence number applied and say it in "hello" after a reconnect, so
// the server sends exactly the changes we have not seen; a state with
// seq <= last is a duplicate and is dropped.
"use strict";

const S = {
  ws: null, epoch: null, last: 0, user: null, self: "switchboard",
  msgs: new Map(),          // id -> message state
  els: new Map(),           // id -> <li> of the open thread
  route: { view: "home" },
  retry: 500, pollTimer: null, nonce: 0, pendingNew: null,
  stats: { applied: 0, dupes: 0, resets: 0, connects: 0 },
};
window.sbStats = S.stats;

const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function num(id) { return parseInt(id, 10) || 0; }
function fmtTime(ms) {
  const d = new Date(ms);
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toDateString() === now.toDateString() ? hm : d.toLocaleDateString() + " " + hm;
}
// `code` spans as <code>, the rest as text nodes.
function richText(node, text) {
  const parts = String(text).split("`");
  parts.forEach((p, i) => {
    if (i % 2 === 1 && i < parts.length - 1) node.appendChild(el("code", null, p));
    else node.appendChild(document.createTextNode(i % 2 === 1 ? "`" + p : p));
  });
}
function toast(text) {
  const t = el("div", "error-toast", text);
  document.body.appendChild(t);
  setTimeout(() => t.remove(), 4000);
}

// ---- connection ----------------------------------------------------------

function send(obj) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) { S.ws.send(JSON.stringify(obj)); return true; }
  toast("not connected; retrying…");
  return false;
}

function setConn(live, text) {
  const c = $("conn");
  c.textContent = text;
  c.classList.toggle("live", live);
  document.body.dataset.conn = live ? "live" : "down";
}

function connect() {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/ws");
  S.ws = ws;
  ws.onopen = () => {
    S.retry = 500;
    S.stats.connects++;
    ws.send(JSON.stringify({ type: "hello", last: S.last, epoch: S.epoch }));
  };
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    onServer(m);
  };
  ws.onclose = () => {
    if (S.ws !== ws) return;
    setConn(false, "reconnecting…");
    setTimeout(connect, S.retry);
    S.retry = Math.min(S.retry * 2, 5000);
  };
}
// For tests and for flaky networks: drop the socket; it comes back and resumes.
window.sbReconnect = () => { if (S.ws) S.ws.close(); };

function onServer(m) {
  switch (m.type) {
  case "welcome":
    S.user = m.user; S.self = m.self || S.self;
    if (m.reset || S.epoch !== m.epoch) {
      if (S.last !== 0) S.stats.resets++;
      S.msgs.clear(); S.last = 0; S.els.clear();
      $("messages").textContent = "";
    }
    S.epoch = m.epoch;
    setConn(true, "live");
    render();
    break;
  case "msgs": applyMsgs(m.items || []); break;
  case "posted":
    if (S.pendingNew === m.nonce) { S.pendingNew = null; location.hash = "#/t/" + m.thread; }
    break;
  case "agents": renderAgents(m.items || []); break;
  case "agent": renderAgent(m); break;
  case "diff": renderDiff(m); break;
  case "error": toast(m.text); break;
  }
}

function applyMsgs(items) {
  let threadsChanged = false;
  for (const it of items) {
    if (typeof it.seq !== "number" || it.seq <= S.last) { S.stats.dupes++; continue; }
    S.last = it.seq;
    S.stats.applied++;
    const before = S.msgs.get(it.id);
    S.msgs.set(it.id, it);
    if (!before || it.thread === it.id) threadsChanged = true;
    if (S.route.view === "thread" && it.thread === S.route.id) renderMsg(it);
  }
  document.body.dataset.seq = String(S.last);
  if (threadsChanged || items.length) renderThreadList();
  if (S.route.view === "thread") renderThreadTitle();
}

// ---- threads ---------------------------------------------------------------

function threads() {
  const t = new Map();
  for (const m of S.msgs.values()) {
    let e = t.get(m.thread);
    if (!e) { e = { id: m.thread, root: null, last: 0, n: 0 }; t.set(m.thread, e); }
    if (m.id === m.thread) e.root = m;
    e.n++;
    e.last = Math.max(e.last, m.edited || m.ts || 0);
  }
  return [...t.values()].sort((a, b) => b.last - a.last);
}

function renderThreadList() {
  const ul = $("thread-list");
  ul.textContent = "";
  for (const t of threads()) {
    const li = el("li");
    const a = el("a");
    a.href = "#/t/" + encodeURIComponent(t.id);
    a.dataset.thread = t.id;
    if (S.route.view === "thread" && S.route.id === t.id) a.classList.add("active");
    const title = t.root ? t.root.text : "(older thread " + t.id + ")";
    a.appendChild(el("span", "title", title.length > 80 ? title.slice(0, 80) + "…" : title));
    a.appendChild(el("span", "meta", t.n + " message" + (t.n === 1 ? "" : "s") + " · " + fmtTime(t.last)));
    li.appendChild(a);
    ul.appendChild(li);
  }
}

function renderThreadTitle() {
  const root = S.msgs.get(S.route.id);
  $("thread-title").textContent = root ? root.text.split("\n")[0].slice(0, 100) : "thread " + S.route.id;
}

function agentRef(m) {
  if (m.author !== S.self) return null;
  const r = /(?:^|\s)#(\d+)\b/.exec(m.text);
  return r ? r[1] : null;
}

function isApproval(m) {
  return Array.isArray(m.choices) && m.choices.includes("Allow") && m.choices.includes("Deny");
}

function msgNode(m) {
  const li = el("li", "msg");
  li.dataset.id = m.id;
  li.dataset.seq = String(m.seq);
  if (m.author === S.self) li.classList.add("bot");
  if (m.author === S.self && /^#\d+ \S+ · /.test(m.text)) li.classList.add("card");
  const head = el("div", "head");
  head.appendChild(el("span", "author", m.author));
  head.appendChild(el("time", null, fmtTime(m.ts)));
  if (m.edited) head.appendChild(el("span", "edited", "edited " + fmtTime(m.edited)));
  if (m.question) head.appendChild(el("span", "qid", m.question));
  li.appendChild(head);
  const body = el("div", "text");
  richText(body, m.text);
  li.appendChild(body);
  if (m.file && typeof m.file === "object") {
    li.appendChild(el("div", "file-name", "📎 " + m.file.name + " (" + m.file.size + " bytes)"));
    const pre = el("pre", "file diff");
    for (const l of String(m.file.content || "").split("\n")) {
      let cls = null;
      if (l.startsWith("diff --git") || l.startsWith("+++") || l.startsWith("---")) cls = "file";
      else if (l.startsWith("@@")) cls = "hunk";
      else if (l.startsWith("+")) cls = "add";
      else if (l.startsWith("-")) cls = "del";
      pre.appendChild(el("span", cls, l));
    }
    li.appendChild(pre);
  }

  if (Array.isArray(m.choices) && m.choices.length && !m.closed) {
    const box = el("div", "choices");
    for (const c of m.choices) {
      const b = el("button", c === "Deny" ? "choice deny" : "choice", c);
      b.type = "button";
      b.dataset.choice = c;
      b.addEventListener("click", () => {
        if (send({ type: "click", msg: m.id, choice: c }))
          box.querySelectorAll("button").forEach((x) => { x.disabled = true; });
      });
      box.appendChild(b);
    }
    if (isApproval(m)) {
      const reason = el("input", "reason");
      reason.placeholder = "reason (for Deny)";
      reason.maxLength = 500;
      const b = el("button", "deny secondary", "Deny with reason");
      b.type = "button";
      b.addEventListener("click", () => {
        const r = reason.value.trim();
        if (!r) { reason.focus(); return; }
        if (send({ type: "post", thread: m.thread, reply_to: m.id, text: "Deny: " + r }))
          box.querySelectorAll("button").forEach((x) => { x.disabled = true; });
      });
      box.appendChild(reason);
      box.appendChild(b);
    }
    li.appendChild(box);
  }
  const rx = m.reactions || {};
  const keys = Object.keys(rx);
  if (keys.length) {
    const r = el("div", "reactions");
    for (const k of keys) {
      const who = rx[k] || [];
      const chip = el("span", "reaction", k + " " + who.length);
      chip.title = who.join(", ");
      r.appendChild(chip);
    }
    li.appendChild(r);
  }
  const ref = agentRef(m);
  if (ref) {
    const links = el("div", "links");
    const a = el("a", null, "agent #" + ref + " — steps, diff");
    a.href = "#/agent/" + ref;
    links.appendChild(a);
    li.appendChild(links);
  }
  return li;
}

// Updates in place: a card's element stays where it is and changes content.
function renderMsg(m) {
  const ol = $("messages");
  const old = S.els.get(m.id);
  const node = msgNode(m);
  if (old) {
    old.replaceChildren(...node.childNodes);
    old.className = node.className;
    old.dataset.seq = node.dataset.seq;
    return;
  }
  S.els.set(m.id, node);
  let next = null;
  for (const c of ol.children) if (num(c.dataset.id) > num(m.id)) { next = c; break; }
  ol.insertBefore(node, next);
  const pane = $("thread-pane");
  if (!next) pane.scrollTop = pane.scrollHeight;
}

function renderThread() {
  $("messages").textContent = "";
  S.els.clear();
  const list = [...S.msgs.values()].filter((m) => m.thread === S.route.id).sort((a, b) => num(a.id) - num(b.id));
  for (const m of list) renderMsg(m);
  renderThreadTitle();
}

// ---- dashboard and agent view ---------------------------------------------

function threadLink(a) {
  if (a.adapter === "web") {
    const l = el("a", null, "thread " + a.thread);
    l.href = "#/t/" + encodeURIComponent(a.thread);
    return l;
  }
  if (a.adapter === "matrix" && /^!/.test(a.channel || "") && /^\$/.test(a.thread || "")) {
    const l = el("a", null, "matrix");
    l.href = "https://matrix.to/#/" + encodeURIComponent(a.channel) + "/" + encodeURIComponent(a.thread);
    l.target = "_blank"; l.rel = "noopener noreferrer";
    return l;
  }
  return el("span", null, a.adapter + " " + (a.channel || "") + (a.thread ? " " + a.thread : ""));
}

function renderAgents(items) {
  const tb = document.querySelector("#agents tbody");
  tb.textContent = "";
  for (const a of items) {
    const tr = el("tr");
    tr.dataset.agent = String(a.id);
    const idc = el("td");
    const link = el("a", null, "#" + a.id);
    link.href = "#/agent/" + a.id;
    idc.appendChild(link);
    tr.appendChild(idc);
    tr.appendChild(el("td", null, a.name));
    tr.appendChild(el("td", "state state-" + a.state, a.state));
    tr.appendChild(el("td", null, a.repo || "-"));
    tr.appendChild(el("td", null, a.branch || "-"));
    tr.appendChild(el("td", null, a.elapsed || "-"));
    tr.appendChild(el("td", null, typeof a.cost_usd === "number" ? "$" + a.cost_usd.toFixed(4) : "-"));
    tr.appendChild(el("td", null, a.questions ? String(a.questions) + " open" : "-"));
    const tc = el("td");
    tc.appendChild(threadLink(a));
    tr.appendChild(tc);
    tb.appendChild(tr);
  }
  document.body.dataset.agents = String(items.length);
}

function fact(dl, k, v, node) {
  dl.appendChild(el("dt", null, k));
  const dd = el("dd", null, node ? null : v);
  if (node) dd.appendChild(node);
  dl.appendChild(dd);
}

function renderAgent(a) {
  if (S.route.view !== "agent" || String(a.id) !== S.route.id) return;
  $("agent-title").textContent = "#" + a.id + " " + (a.name || "") + " · " + a.state;
  const dl = $("agent-facts");
  dl.textContent = "";
  fact(dl, "state", a.state);
  fact(dl, "task", a.task || "");
  fact(dl, "repo", a.repo || "-");
  fact(dl, "branch", a.branch || "-");
  fact(dl, "elapsed", a.elapsed || "-");
  fact(dl, "cost", typeof a.cost_usd === "number" ? "$" + a.cost_usd.toFixed(4) : "-");
  fact(dl, "thread", null, threadLink(a));
  if (a.status_line) fact(dl, "now", a.status_line);
  if (a.summary) fact(dl, "summary", a.summary);
  const ol = $("agent-steps");
  ol.textContent = "";
  for (const s of a.steps || []) ol.appendChild(el("li", null, s));
  if (!(a.steps || []).length) ol.appendChild(el("li", "muted", a.adapter === "web" ? "no steps yet" : "steps are shown in its " + a.adapter + " thread"));
  $("agent-log").textContent = a.log || "no output yet";
  const ql = $("agent-questions");
  ql.textContent = "";
  for (const q of a.question_list || []) {
    ql.appendChild(el("li", null, "q" + q.id + " (" + q.status + "): " + q.text +
      (q.answer ? " → " + q.answer + " by " + (q.answered_by || "?") : "")));
  }
  if (!(a.question_list || []).length) ql.appendChild(el("li", "muted", "none"));
}

function renderDiff(d) {
  if (S.route.view !== "agent" || String(d.id) !== S.route.id) return;
  const pre = $("agent-diff");
  pre.textContent = "";
  if (d.error) { pre.appendChild(el("span", null, d.error)); pre.dataset.loaded = "error"; return; }
  const lines = (d.patch || "").split("\n");
  for (const l of lines) {
    let cls = null;
    if (l.startsWith("diff --git") || l.startsWith("+++") || l.startsWith("---")) cls = "file";
    else if (l.startsWith("@@")) cls = "hunk";
    else if (l.startsWith("+")) cls = "add";
    else if (l.startsWith("-")) cls = "del";
    pre.appendChild(el("span", cls, l));
  }
  if (!d.patch) pre.appendChild(el("span", null, "no changes"));
  if (d.truncated) pre.appendChild(el("span", null, "(diff truncated)"));
  pre.dataset.loaded = "yes";
}

// ---- routing ----------------------------------------------------------------

function parseRoute() {
  const h = location.hash.replace(/^#/, "");
  let m;
  if ((m = /^\/t\/(.+)$/.exec(h))) return { view: "thread", id: decodeURIComponent(m[1]) };
  if (h === "/agents") return { view: "agents" };
  if ((m = /^\/agent\/(\d+)$/.exec(h))) return { view: "agent", id: m[1] };
  return { view: "home" };
}

function poll() {
  clearInterval(S.pollTimer);
  S.pollTimer = null;
  const ask = () => {
    if (S.route.view === "agents") send({ type: "agents" });
    else if (S.route.view === "agent") send({ type: "agent", id: num(S.route.id) });
  };
  if (S.route.view === "agents" || S.route.view === "agent") {
    if (S.ws && S.ws.readyState === WebSocket.OPEN) ask();
    S.pollTimer = setInterval(() => { if (S.ws && S.ws.readyState === WebSocket.OPEN) ask(); }, 2000);
  }
}

function render() {
  const r = S.route;
  $("thread-pane").hidden = r.view !== "thread";
  $("dashboard-pane").hidden = r.view !== "agents";
  $("agent-pane").hidden = r.view !== "agent";
  $("welcome-pane").hidden = r.view !== "home";
  document.body.classList.toggle("in-thread", r.view === "thread");
  document.body.classList.toggle("in-other", r.view === "agents" || r.view === "agent");
  $("nav-threads").classList.toggle("active", r.view === "home" || r.view === "thread");
  $("nav-dashboard").classList.toggle("active", r.view === "agents" || r.view === "agent");
  if (r.view === "thread") renderThread();
  renderThreadList();
  poll();
}

window.addEventListener("hashchange", () => {
  const before = S.route;
  S.route = parseRoute();
  if (S.route.view === "agent" && (before.view !== "agent" || before.id !== S.route.id)) {
    $("agent-diff").textContent = "";
    delete $("agent-diff").dataset.loaded;
    $("agent-steps").textContent = "";
  }
  render();
});

function submitOnEnter(ta, form) {
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  S.route = parseRoute();
  $("new-thread").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("new-text").value.trim();
    if (!text) return;
    const nonce = "n" + (++S.nonce) + "-" + Date.now();
    if (send({ type: "post", text, nonce })) { S.pendingNew = nonce; $("new-text").value = ""; }
  });
  $("reply").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text || S.route.view !== "thread") return;
    if (send({ type: "post", thread: S.route.id, text })) $("reply-text").value = "";
  });
  submitOnEnter($("new-text"), $("new-thread"));
  submitOnEnter($("reply-text"), $("reply"));
  $("agent-diff-load").addEventListener("click", () => {
    $("agent-diff").textContent = "loading…";
    send({ type: "diff", id: num(S.route.id) });
  });
  setConn(false, "connecting…");
  render();
  connect();
});
