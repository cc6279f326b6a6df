"""End-to-end tests of results leaving the machine: diff and log in the
thread (inline or as a file), push (local bare repo, HTTP remote with a
token behind git http-backend), pull requests (fake GitHub API), the merge
queue (clean, conflict, failing check, kill -9 mid-merge) and overlap
warnings; Slack and Matrix uploads checked byte for byte."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sb import (ROOT, SLOW, Daemon, agent, check, free_port, git,  # noqa: E402
                make_repo, run_tests)

W = [("w", [agent("write.sh"), "{task}"], 60)]
FAKES = os.path.join(ROOT, "tests", "fakes")


def start(tmp, ds, extra="", repo_extra="", env=None, agents=W):
    d = Daemon(tmp, agents, extra=extra, env=env)
    if repo_extra:
        with open(d.conf) as f:
            conf = f.read()
        conf = conf.replace('base = "main"; }', 'base = "main"; %s }'
                            % repo_extra)
        with open(d.conf, "w") as f:
            f.write(conf)
    ds.append(d)
    return d.start()


def task(d, text):
    """Starts an agent with text in a new thread; returns (thread, id)."""
    d.send("new " + text)
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: " + re.escape(text)).group(1)
    n = d.expect(r"^\[t%s\] \d+ switchboard: #(\d+) " % t).group(1)
    d.expect(r"✅ #%s done" % n, timeout=20)
    d.expect(r"Next for #%s: `diff #%s`" % (n, n))
    return t, n


def file_after(d, header_rx, timeout=10):
    """The content of the file the console printed after a 📎 line."""
    d.expect(header_rx, timeout=timeout)
    lines = []
    while True:
        line = d.expect(r"^    \|", timeout=timeout).string
        if line == "    |--":
            return "\n".join(lines) + "\n"
        lines.append(line[6:])


def test_diff_inline_and_as_a_file_and_log_of_a_successful_run(tmp, ds):
    d = start(tmp, ds)
    t, n = task(d, "hello.txt hello world")
    d.send("t%s diff #%s" % (t, n))
    d.expect(r"#%s `sb/%s-hello-txt-hello-world` against main, |"
             r"#%s `sb/\d+-[a-z0-9-]+` against main \(1 file\):" % (n, n, n))
    d.expect(r"^\s+```")
    d.expect(r"^\s+diff --git a/hello.txt b/hello.txt")
    d.expect(r"^\s+\+hello world")
    # A path that the branch did not touch: said so, no diff.
    d.send("t%s diff #%s main.c" % (t, n))
    d.expect(r"against main, main.c: no committed changes")
    # A long change comes as a file, whose bytes are the whole diff.
    t2, n2 = task(d, "big long.txt 300")
    d.send("t%s diff #%s" % (t2, n2))
    body = file_after(d, r"📎 agent-%s.diff \(\d+ bytes\): #%s " % (n2, n2))
    check(body.startswith("diff --git a/long.txt b/long.txt\n"), body[:200])
    check("+line 300 of a long file\n" in body and
          body.count("\n+line ") == 300, "diff lines: %d" %
          body.count("\n+line "))
    check(not d.saw(r"^\s+\+line 1 of"), "long diff was inlined")
    # log: stdout and stderr of a run that succeeded.
    d.send("t%s log #%s" % (t, n))
    d.expect(r"#%s output \(stdout and stderr\):" % n)
    d.expect(r"=== turn 1 ===")
    d.expect(r"stdout: wrote hello.txt|stderr: done with hello.txt")
    check(os.path.isdir(os.path.join(d.state, "logs", n)), "no log dir")
    check(d.stop() == 0, "clean exit")


def bare(tmp, name="remote.git"):
    path = os.path.join(tmp, name)
    git("init", "-q", "--bare", path)
    return path


def test_push_to_a_local_bare_repo_and_a_rejected_push(tmp, ds):
    d = Daemon(tmp, W)
    remote = bare(tmp)
    git("remote", "add", "origin", remote, cwd=d.repo)
    ds.append(d)
    d.start()
    t, n = task(d, "a.txt pushed work")
    branch = git("for-each-ref", "--format=%(refname:short)",
                 "refs/heads/sb/%s-*" % n, cwd=d.repo).strip()
    d.send("t%s push #%s" % (t, n))
    d.expect(r"#%s: pushed `%s` to origin" % (n, re.escape(branch)))
    local = git("rev-parse", branch, cwd=d.repo).strip()
    there = git("--git-dir", remote, "rev-parse", branch).strip()
    check(local == there, "remote has %s, local %s" % (there, local))
    # Someone else moved the branch on the remote: not a fast-forward.
    other = os.path.join(tmp, "other")
    git("clone", "-q", "-b", branch, remote, other)
    with open(os.path.join(other, "x"), "w") as f:
        f.write("x\n")
    git("add", "x", cwd=other)
    git("-c", "user.name=o", "-c", "user.email=o@l", "commit", "-qm", "x",
        cwd=other)
    git("push", "-q", "origin", branch, cwd=other)
    d.send("t%s #%s more work" % (t, n))
    d.expect(r"✅ #%s done" % n, timeout=20)
    d.send("t%s push #%s" % (t, n))
    d.expect(r"#%s: push failed: rejected" % n)
    check(d.stop() == 0, "clean exit")


def git_http(tmp, token):
    root = os.path.join(tmp, "srv")
    os.makedirs(root)
    git("init", "-q", "--bare", os.path.join(root, "r.git"))
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(FAKES,
                          "git-http.py"), root, token],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(p.stdout.readline())
    return p, "http://127.0.0.1:%d/r.git" % port, os.path.join(root, "r.git")


def test_push_over_http_with_the_token_and_a_wrong_token_is_reported(tmp, ds):
    srv, url, remote = git_http(tmp, "s3cret-token")
    try:
        d = Daemon(tmp, W, env={"SB_PUSH_TOKEN": "s3cret-token"})
        git("remote", "add", "origin", url, cwd=d.repo)
        with open(d.conf) as f:
            conf = f.read()
        conf = conf.replace('base = "main"; }', 'base = "main"; push = {'
                            ' token = "env:SB_PUSH_TOKEN"; }; }')
        with open(d.conf, "w") as f:
            f.write(conf)
        ds.append(d)
        d.start()
        t, n = task(d, "b.txt over http")
        branch = git("for-each-ref", "--format=%(refname:short)",
                     "refs/heads/sb/%s-*" % n, cwd=d.repo).strip()
        d.send("t%s push #%s" % (t, n))
        d.expect(r"#%s: pushed `%s` to origin" % (n, re.escape(branch)),
                 timeout=20)
        check(git("--git-dir", remote, "rev-parse", branch).strip() ==
              git("rev-parse", branch, cwd=d.repo).strip(), "not pushed")
        check(d.stop() == 0, "clean exit")
        # The same with a wrong token: reported, nothing pushed, and the
        # token appears nowhere in what the daemon printed or logged.
        git("--git-dir", remote, "branch", "-D", branch)
        d2 = Daemon(tmp, W, env={"SB_PUSH_TOKEN": "wrong-token-xyz"})
        ds.append(d2)
        d2.start()
        d2.send("t%s push #%s" % (t, n))
        d2.expect(r"#%s: push failed: authentication failed" % n,
                  timeout=20)
        out = subprocess.run(["git", "--git-dir", remote, "branch"],
                             capture_output=True, text=True).stdout
        check(branch not in out, "pushed with a wrong token")
        check(d2.stop() == 0, "clean exit")
        for text in ["\n".join(d.lines + d2.lines),
                     open(d.errlog, errors="replace").read()]:
            check("wrong-token-xyz" not in text and "s3cret-token" not in
                  text, "a token leaked into the output")
    finally:
        srv.kill()
        srv.wait()


def github(token):
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(FAKES,
                          "github-api.py"), "--token", token],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return p, "http://127.0.0.1:%d" % int(p.stdout.readline())


def get_json(url, data=None):
    req = urllib.request.Request(url, data=json.dumps(data).encode()
                                 if data is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def pr_daemon(tmp, ds, api, token_env):
    d = Daemon(tmp, W, env={"SB_GH": token_env})
    if not os.path.exists(os.path.join(tmp, "remote.git")):
        git("remote", "add", "origin", bare(tmp), cwd=d.repo)
    with open(d.conf) as f:
        conf = f.read()
    conf = conf.replace('base = "main"; }', 'base = "main"; forge = {'
                        ' kind = "github"; repo = "octo/webapp"; token ='
                        ' "env:SB_GH"; api_url = "%s"; }; }' % api)
    with open(d.conf, "w") as f:
        f.write(conf)
    ds.append(d)
    return d.start()


def test_pr_opens_once_reports_an_existing_one_and_a_refused_token(tmp, ds):
    gh, api = github("ghp-good")
    try:
        d = pr_daemon(tmp, ds, api, "ghp-good")
        t, n = task(d, "c.txt a change worth a pr")
        d.send("t%s pr #%s" % (t, n))
        url = d.expect(r"#%s: opened a pull request: "
                       r"(https://github.com/octo/webapp/pull/\d+)" % n,
                       timeout=20).group(1)
        d.expect(r"~\d+ #%s w · done .*\n?" % n)   # the card, edited
        check(d.saw(r"PR: " + re.escape(url)), "PR link not on the card")
        pr = get_json(api + "/_pulls")[0]
        branch = git("for-each-ref", "--format=%(refname:short)",
                     "refs/heads/sb/%s-*" % n, cwd=d.repo).strip()
        check(pr["head"] == branch and pr["base"] == "main", pr)
        check(pr["title"] == "c.txt a change worth a pr", pr["title"])
        check("c.txt" in pr["body"] and "1 file changed" in pr["body"],
              pr["body"])
        check("Closes #" not in pr["body"], pr["body"])
        # The branch went to the remote first (GitHub needs the head).
        check(git("--git-dir", os.path.join(tmp, "remote.git"),
                  "rev-parse", branch).strip() ==
              git("rev-parse", branch, cwd=d.repo).strip(), "not pushed")
        d.send("t%s pr #%s" % (t, n))
        d.expect(r"#%s already has a pull request: %s" % (n, re.escape(url)))
        posts = [r for r in get_json(api + "/_requests")
                 if r.get("method") == "POST"]
        check(len(posts) == 1, "second pr #N called GitHub: %r" % posts)
        # A PR someone opened for the branch already: GitHub's 422.
        t2, n2 = task(d, "d.txt second change")
        b2 = git("for-each-ref", "--format=%(refname:short)",
                 "refs/heads/sb/%s-*" % n2, cwd=d.repo).strip()
        other = get_json(api + "/_pulls", {"head": b2})
        d.send("t%s pr #%s" % (t2, n2))
        d.expect(r"#%s already has a pull request: %s" %
                 (n2, re.escape(other["html_url"])), timeout=20)
        check(d.stop() == 0, "clean exit")
        # A token GitHub refuses: 401 said in the thread.
        d2 = pr_daemon(tmp, ds, api, "ghp-revoked")
        t3, n3 = task(d2, "e.txt third change")
        d2.send("t%s pr #%s" % (t3, n3))
        d2.expect(r"#%s: GitHub refused the token for octo/webapp \(401: "
                  r"Bad credentials\)" % n3, timeout=20)
        check(d2.stop() == 0, "clean exit")
    finally:
        gh.kill()
        gh.wait()


def tip(repo, ref="main"):
    return git("rev-parse", ref, cwd=repo).strip()


def check_conf(script, timeout=30):
    return 'check = [ "sh", "-c", %s ]; check_timeout = %d;' % (
        json.dumps(script), timeout)


def test_merge_queue_clean_merge_with_passing_check_moves_base(tmp, ds):
    # The check sees the merged tree: both agents' files must be there.
    d = start(tmp, ds, repo_extra=check_conf(
        "sleep 1; test -f a.txt && echo check-ok"))
    t1, n1 = task(d, "a.txt first")
    t2, n2 = task(d, "b.txt second")
    before = tip(d.repo)
    d.send("t%s merge #%s" % (t1, n1))
    d.expect(r"#%s: merging `sb/%s-a-txt-first` into main" % (n1, n1))
    d.send("t%s merge #%s" % (t2, n2))
    d.expect(r"#%s is 2nd in the merge queue of repo r" % n2)
    d.expect(r"✅ #%s merged into main \(([0-9a-f]{7})\)" % n1, timeout=20)
    d.expect(r"✅ #%s merged into main" % n2, timeout=20)
    after = tip(d.repo)
    check(after != before, "main did not move")
    files = git("ls-tree", "--name-only", "main", cwd=d.repo).split()
    check("a.txt" in files and "b.txt" in files, files)
    # main was checked out in the repository: its files came along.
    check(os.path.exists(os.path.join(d.repo, "b.txt")), "checkout stale")
    check(git("status", "--porcelain", cwd=d.repo).strip() == "",
          git("status", "--porcelain", cwd=d.repo))
    # No scratch worktree or branch is left.
    check("merge-" not in git("worktree", "list", cwd=d.repo) and
          "sb-merge/" not in git("branch", cwd=d.repo), "scratch left")
    check(d.stop() == 0, "clean exit")


def test_merge_conflict_lists_files_and_offers_a_followup(tmp, ds):
    d = start(tmp, ds)
    t1, n1 = task(d, "main.c int main(void) { return 1; }")
    t2, n2 = task(d, "main.c int main(void) { return 2; }")
    # Both touched main.c: each thread hears it once.
    d.expect(r"⚠️ #%s and #%s both changed main.c in repo r" % (n2, n1))
    d.expect(r"^\[t%s\] .*⚠️ #%s and #%s both changed main.c" %
             (t1, n1, n2))
    d.send("t%s merge #%s" % (t1, n1))
    d.expect(r"✅ #%s merged into main" % n1, timeout=20)
    before = tip(d.repo)
    d.send("t%s merge #%s" % (t2, n2))
    d.expect(r"⚠️ #%s conflicts with main in: main.c" % n2, timeout=20)
    d.expect(r"Say `resolve #%s` to hand them to #%s" % (n2, n2))
    check(tip(d.repo) == before, "main moved on a conflict")
    check(git("status", "--porcelain", cwd=d.repo).strip() == "",
          "repository left dirty: " + git("status", "--porcelain", cwd=d.repo))
    d.send("t%s resolve #%s" % (t2, n2))
    d.expect(r"#%s: starting a new turn with your follow-up" % n2)
    check(d.db("SELECT status, detail FROM merges ORDER BY id") ==
          [("done", d.db("SELECT merged_oid FROM merges WHERE id = 1")[0][0]),
           ("conflict", "main.c")], d.db("SELECT * FROM merges"))
    d.quiet(r"both changed main.c", 1)
    check(d.stop() == 0, "clean exit")


def test_merge_whose_check_fails_leaves_base_alone(tmp, ds):
    d = start(tmp, ds, repo_extra=check_conf(
        "echo check-broke-on-purpose; exit 3"))
    t, n = task(d, "a.txt something")
    before = tip(d.repo)
    d.send("t%s merge #%s" % (t, n))
    d.expect(r"❌ #%s: the check failed; main did not move" % n, timeout=20)
    d.expect(r"check-broke-on-purpose")
    check(tip(d.repo) == before, "main moved although the check failed")
    check("merge-" not in git("worktree", "list", cwd=d.repo), "scratch left")
    check(d.stop() == 0, "clean exit")


def test_kill_9_during_a_merge_leaves_nothing_half_applied(tmp, ds):
    flag = os.path.join(tmp, "slow")
    started = os.path.join(tmp, "started")
    script = ("if [ -f %s ]; then echo $$ > %s.tmp; mv %s.tmp %s; sleep 60;"
              " fi; test -f a.txt" % (flag, started, started, started))
    d = start(tmp, ds, repo_extra=check_conf(script, 120))
    t, n = task(d, "a.txt work to land")
    before = tip(d.repo)
    open(flag, "w").close()
    d.send("t%s merge #%s" % (t, n))
    d.expect(r"running the check", timeout=20)
    deadline = time.time() + 20 * SLOW
    while not os.path.exists(started) and time.time() < deadline:
        time.sleep(0.05)
    check(os.path.exists(started), "the check did not start")
    d.kill9()
    pid = int(open(started).read())
    try:
        os.killpg(pid, signal.SIGKILL)     # the orphaned check (its group)
    except ProcessLookupError:
        pass
    check(tip(d.repo) == before, "main moved before the check passed")
    check(d.db("SELECT status FROM merges") == [("checking",)],
          d.db("SELECT * FROM merges"))
    os.unlink(flag)
    with open(d.conf) as f:
        conf = f.read()
    d2 = Daemon(tmp, W)
    with open(d2.conf, "w") as f:
        f.write(conf)
    ds.append(d2)
    d2.start()
    d2.expect(r"#%s: the merge was interrupted by a restart while checking;"
              r" the base did not move. Starting it again" % n, timeout=20)
    d2.expect(r"#%s: merged onto main cleanly; running the check" % n,
              timeout=20)
    d2.expect(r"✅ #%s merged into main" % n, timeout=30)
    check(tip(d2.repo) != before, "main did not move after the restart")
    check("a.txt" in git("ls-tree", "--name-only", "main", cwd=d2.repo),
          "merged tree lacks the agent's file")
    check("merge-" not in git("worktree", "list", cwd=d2.repo) and
          "sb-merge/" not in git("branch", cwd=d2.repo), "scratch left: " +
          git("worktree", "list", cwd=d2.repo) + git("branch", cwd=d2.repo)
          + "\n".join(d2.lines))
    check(d2.stop() == 0, "clean exit")


def long_diff_ok(data):
    text = data.decode()
    return (text.startswith("diff --git a/long.txt b/long.txt\n") and
            text.count("\n+line ") == 300 and
            "+line 300 of a long file\n" in text)


def test_slack_upload_from_the_show_diff_button_bytes_checked(tmp, ds):
    import test_slack as ts
    ts.ASK = [("ask", [agent("write.sh"), "{task}"], 60)]
    fake = ts.FakeSlack()
    try:
        ts.slack_daemon(tmp, ds, fake)
        ts.connected(fake)
        fake.event(ts.mention("1699.000100", text="<@UBOT> big long.txt 300"))
        nxt = fake.wait_call("chat.postMessage", lambda c: "Next for #1" in
                             ts.text_of(c) and "blocks" in c["args"],
                             timeout=30)
        labels = [e["text"]["text"] for b in nxt["args"]["blocks"]
                  if b["type"] == "actions" for e in b["elements"]]
        check(labels == ["Show diff", "Open PR", "Merge"], labels)
        fake.post("/_test/event", {"interactive": ts.click(nxt,
                                                           choice_index=0)})
        files = fake.wait("an uploaded file", lambda: fake.get(
            "/_test/files"), timeout=20)
        f = files[0]
        check(f["filename"] == "agent-1.diff" and f["channel_id"] == "C1"
              and f["thread_ts"] == "1699.000100", f)
        check(f["title"].startswith("#1 `sb/1-big-long-txt-300` against "
                                    "main"), f["title"])
        check(long_diff_ok(base64.b64decode(f["data"])), "uploaded bytes")
        # The URL request was a form, as the method requires.
        up = fake.calls("files.getUploadURLExternal")[0]
        check(up["args"]["filename"] == "agent-1.diff" and
              int(up["args"]["length"]) == len(base64.b64decode(f["data"])),
              up["args"])
        check(ds[0].stop() == 0, "clean exit")
    finally:
        fake.stop()


def test_matrix_upload_media_and_m_file_in_the_thread_bytes_checked(tmp, ds):
    import test_matrix as tm
    tm.ASK = [("ask", [agent("write.sh"), "{task}"], 60)]
    fake = tm.Fake()
    try:
        room = fake.room()
        d = tm.start(tmp, ds, fake)
        tm.synced(fake)
        fake.invite(room)
        tm.joined(fake, room)
        tm.synced(fake, 2)
        root = fake.say(room, "bot: big long.txt 300")
        nxt = fake.wait(lambda e: tm.find(e, "m.room.message", "m.thread",
                                          root, body="Next for #1"),
                        "next steps", timeout=30)[0]
        # No buttons on Matrix: the commands are in the text, no keys.
        check("`diff #1`" in nxt["content"]["body"] and "1️⃣" not in
              nxt["content"]["body"], nxt["content"]["body"])
        fake.say(room, "diff #1", thread=root)
        ev = fake.wait(lambda e: [x for x in tm.find(e, "m.room.message",
                                                     "m.thread", root)
                                  if x["content"].get("msgtype") ==
                                  "m.file"], "an m.file event", timeout=20)[0]
        c = ev["content"]
        check(c["filename"] == "agent-1.diff" and
              c["url"].startswith("mxc://localhost/"), c)
        media = fake.call("GET", "/_test/media")[c["url"].rsplit("/", 1)[1]]
        data = base64.b64decode(media["data"])
        check(long_diff_ok(data), "uploaded bytes")
        check(c["info"]["size"] == len(data) and media["filename"] ==
              "agent-1.diff" and media["content_type"] == "text/plain", c)
        check(d.stop() == 0, "clean exit")
    finally:
        fake.stop()


# ---- issue 13's untested parts: log capping, Closes #N, merge_push ---------

def lines_agent(tmp):
    """An agent printing N 30-byte lines "T line 0001 ……" for task "T N"."""
    path = os.path.join(tmp, "lines.sh")
    with open(path, "w") as f:
        f.write('#!/bin/sh\nset -- $1\ni=1\nwhile [ "$i" -le "$2" ]; do\n'
                '  printf "%s line %04d .................\\n" "$1" "$i"\n'
                '  i=$((i + 1))\ndone\n')
    os.chmod(path, 0o755)
    return [("lines", [path, "{task}"], 60)]


def log_of(d, t, n):
    d.send("t%s log #%s" % (t, n))
    return file_after(d, r"📎 agent-%s\.log \(\d+ bytes\)" % n)


def test_log_is_capped_older_turns_first_and_a_huge_turn_keeps_its_end(
        tmp, ds):
    d = Daemon(tmp, lines_agent(tmp), limits="log_size = 4000;")
    ds.append(d)
    d.start()
    d.send("new A 40")                       # 1,200 bytes
    t = d.expect(r"^\[t(\d+)\] \d+ console:me: A 40").group(1)
    d.expect(r"✅ #1 done", timeout=20)
    for task in ("B 40", "C 60"):            # 1,200 and 1,800 bytes
        d.send("t%s #1 %s" % (t, task))
        d.expect(r"#1: starting a new turn")
        d.expect(r"✅ #1 done", timeout=20)
    # 4,200 bytes > 4,000: the oldest turn goes, whole; the others stay.
    body = log_of(d, t, 1)
    check("A line" not in body, "turn 1 kept: %r" % body[:200])
    check("B line 0001" in body and "B line 0040" in body and
          "C line 0001" in body and "C line 0060" in body, "turns 2, 3 lost")
    check(sorted(os.listdir(os.path.join(d.state, "logs", "1"))) ==
          ["1.log", "2.log"], "log files %r" %
          os.listdir(os.path.join(d.state, "logs", "1")))
    # One turn of 12,000 bytes: it alone outgrows the cap; what is kept is
    # its end, and at most the cap.
    d.send("t%s #1 D 400" % t)
    d.expect(r"✅ #1 done", timeout=20)
    body = log_of(d, t, 1)
    check(body.startswith("=== turn 4 (earlier output dropped) ===\n"),
          body[:100])
    check("B line" not in body and "C line" not in body, "older turns kept")
    check(body.rstrip().endswith("D line 0400 ................."),
          "the newest output is kept: %r" % body[-100:])
    check("D line 0001 " not in body, "the oldest output of the turn kept")
    kept = sum(os.path.getsize(os.path.join(d.state, "logs", "1", f))
               for f in os.listdir(os.path.join(d.state, "logs", "1")))
    check(1000 <= kept <= 4000, "%d bytes kept for a 4,000 cap" % kept)
    check(d.stop() == 0, "clean exit")


def test_pr_of_a_webhook_started_agent_says_closes_the_issue(tmp, ds):
    import test_webhooks as wh
    gh, api = github("ghp-good")
    try:
        port = free_port()
        # The webhook reports back to the issue (github.token): only then
        # does it record which issue started the agent (webhook.c).
        d = Daemon(tmp, wh.AGENTS, extra=wh.hooks(
                   'token = "env:SB_GH"; api_url = "%s";' % api),
                   http="127.0.0.1:%d" % port,
                   env={"GH_SECRET": wh.SECRET, "SB_GH": "ghp-good",
                        "CI_SECRET": wh.GENERIC_SECRET})
        d.port = port
        git("remote", "add", "origin", bare(tmp), cwd=d.repo)
        with open(d.conf) as f:
            conf = f.read()
        conf = conf.replace('base = "main"; }', 'base = "main"; forge = {'
                            ' kind = "github"; repo = "octo/webapp"; token ='
                            ' "env:SB_GH"; api_url = "%s"; }; }' % api)
        with open(d.conf, "w") as f:
            f.write(conf)
        ds.append(d)
        d.start()
        wh.wait_http(port)
        st, _ = wh.github(d, "issues", wh.labeled(12))
        check(st == 202, "webhook status %s" % st)
        t = d.expect(r"^\[t(\d+)\] \d+ switchboard: GitHub issue #12").group(1)
        d.expect(r"✅ #1 done", timeout=20)
        d.send("t%s pr #1" % t)
        d.expect(r"#1: opened a pull request: https://github.com/octo/webapp"
                 r"/pull/\d+", timeout=20)
        posts = [r for r in get_json(api + "/_requests")
                 if r.get("method") == "POST" and
                 r.get("path", "").endswith("/pulls")]
        check(len(posts) == 1, "requests %r" % posts)
        body = posts[0]["body"]
        body = body if isinstance(body, dict) else json.loads(body)
        check(re.search(r"(?m)^Closes #12$", body["body"]),
              "PR body: %r" % body["body"])
        check(d.stop() == 0, "clean exit")
    finally:
        gh.kill()
        gh.wait()


def test_merge_push_pushes_the_base_to_the_remote_after_a_merge(tmp, ds):
    d = Daemon(tmp, W)
    remote = bare(tmp)
    git("remote", "add", "origin", remote, cwd=d.repo)
    git("push", "-q", "origin", "main", cwd=d.repo)
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('base = "main"; }',
                             'base = "main"; merge_push = true; }'))
    ds.append(d)
    d.start()
    before = git("--git-dir", remote, "rev-parse", "main").strip()
    t, n = task(d, "m.txt merged and pushed")
    d.send("t%s merge #%s" % (t, n))
    d.expect(r"✅ #%s merged into main" % n, timeout=20)
    d.expect(r"#%s: pushed main to origin\." % n, timeout=20)
    there = git("--git-dir", remote, "rev-parse", "main").strip()
    check(there == tip(d.repo) and there != before,
          "remote main %s, local %s, before %s" % (there, tip(d.repo), before))
    check(git("--git-dir", remote, "show", "main:m.txt").strip() ==
          "merged and pushed", "the merged file is on the remote's main")
    check(d.stop() == 0, "clean exit")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
