#!/usr/bin/python3
"""A git smart-HTTP remote for tests: `git http-backend` (CGI) behind a small
HTTP/1.1 server on 127.0.0.1, with a token check like a forge's.

  git-http.py ROOT TOKEN     serves the bare repositories under ROOT;
                             prints the port as the first stdout line.

Every request needs HTTP basic auth whose password is TOKEN (any user);
otherwise 401 with WWW-Authenticate: Basic, as GitHub and GitLab answer,
so a client retries with credentials and a wrong token ends in an error.
Request bodies may be chunked (libgit2 streams packs that way)."""
import base64
import http.server
import os
import subprocess
import sys

ROOT, TOKEN = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, headers, data):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if pw == TOKEN else None

    def handle_any(self):
        data = self.body()
        user = self.authorized()
        if user is None:
            self.reply(401, [("WWW-Authenticate", 'Basic realm="git"'),
                             ("Content-Type", "text/plain")],
                       b"Authentication required\n")
            return
        path, _, query = self.path.partition("?")
        env = {"GIT_PROJECT_ROOT": ROOT, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "REMOTE_USER": user,
               "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(data)),
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        r = subprocess.run(["git", "http-backend"], input=data, env=env,
                           capture_output=True)
        head, _, out = r.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, out = r.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.reply(status, headers, out)

    do_GET = do_POST = handle_any


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
