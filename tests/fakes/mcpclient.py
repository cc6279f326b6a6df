"""A minimal stdio MCP client, as Claude Code and Codex speak it: spawns the
server, initializes, calls tools.  Shared by fake-claude and fake-codex."""

import json
import os
import subprocess


class McpClient:
    def __init__(self, command, args, env):
        self.proc = subprocess.Popen([command, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     env=dict(os.environ, **env))
        self.next_id = 0
        init = self.request("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "fake", "version": "0"}})
        assert init["result"]["capabilities"]["tools"] is not None, init
        self.notify("notifications/initialized")
        tools = self.request("tools/list", {})["result"]["tools"]
        self.tools = {t["name"] for t in tools}

    def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                   "params": params})
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("MCP server closed its stdout")
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                return msg

    def call(self, name, arguments):
        """(text, is_error) of a tools/call."""
        r = self.request("tools/call", {"name": name, "arguments": arguments})
        res = r["result"]
        return res["content"][0]["text"], res["isError"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
