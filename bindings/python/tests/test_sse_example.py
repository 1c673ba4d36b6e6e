"""examples/python/sse_server.py end to end, over 127.0.0.1, with real
HTTP clients: urllib.request for requests and one event stream, a raw
socket for streams that resume with Last-Event-ID."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

EXAMPLES = os.environ.get("TERN_EXAMPLES") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "examples")
SERVER = os.path.join(EXAMPLES, "python", "sse_server.py")


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError("server did not start: " + line + self.proc.stderr.read())
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        """SIGTERM: the server stores what waits and exits."""
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err

    def request(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


class SseStream:
    """A raw-socket EventSource: sends the request, parses events."""

    def __init__(self, port, key, last_event_id=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = f"GET /events/{key} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
        if last_event_id:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        self.status_line, _, self.buf = self.buf.partition(b"\r\n\r\n")

    def next_event(self):
        """The next event with data, as a dict of its fields."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            while b"\n\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise EOFError
                self.buf += chunk
            block, _, self.buf = self.buf.partition(b"\n\n")
            fields = {}
            for line in block.decode().split("\n"):
                name, _, value = line.partition(": ")
                if name and not name.startswith(":"):
                    fields[name] = value
            if "data" in fields:
                return fields
        raise AssertionError("no event within 20 s")

    def close(self):
        self.sock.close()


class SseExampleTest(unittest.TestCase):
    def test_size(self):
        with open(SERVER) as f:
            self.assertLess(len(f.readlines()), 200)

    def test_push_ack_resume(self):
        srv = Server()
        try:
            stream = SseStream(srv.port, "alice")
            self.assertIn(b"200 OK", stream.status_line)
            self.assertIn(b"text/event-stream", stream.status_line)
            self.assertEqual(srv.request("POST", "/publish/alice?id=m1", b"hello"),
                             (202, {"id": "m1"}))
            ev = stream.next_event()
            env = json.loads(ev["data"])
            self.assertEqual((ev["event"], env["id"], env["data"]), ("msg", "m1", "hello"))
            epoch, seq = ev["id"].split(".")
            self.assertEqual(int(seq), env["seq"])
            self.assertEqual(srv.request("POST", f"/ack/alice?seq={seq}"), (200, {"acked": 1}))
            # m2 is sent on this stream but not acked before it drops
            srv.request("POST", "/publish/alice?id=m2", b"world")
            ev2 = stream.next_event()
            self.assertEqual(json.loads(ev2["data"])["id"], "m2")
            stream.close()
            # resuming from m1 gets m2 again (unacked), not m1 (acked)
            again = SseStream(srv.port, "alice", last_event_id=ev["id"])
            ev3 = again.next_event()
            self.assertEqual(json.loads(ev3["data"])["id"], "m2")
            again.close()
            # urllib as an event-stream client
            srv.request("POST", "/publish/bob", "für bob".encode())
            with urllib.request.urlopen(srv.url + "/events/bob", timeout=10) as resp:
                self.assertEqual(resp.headers["Content-Type"], "text/event-stream")
                data = None
                while data is None:
                    line = resp.readline().decode()
                    if line.startswith("data: "):
                        data = json.loads(line[6:])
                self.assertEqual(data["data"], "für bob")
            status, st = srv.request("GET", "/stats")
            self.assertEqual((status, st["published"], st["acked"]), (200, 3, 1))
        finally:
            err = srv.stop()
        self.assertNotIn("Traceback", err)

    def test_bad_requests(self):
        srv = Server()
        try:
            self.assertEqual(srv.request("GET", "/nope")[0], 404)
            self.assertEqual(srv.request("POST", "/ack/nobody?seq=1")[0], 404)
            self.assertEqual(srv.request("POST", "/ack/alice")[0], 400)
            self.assertEqual(srv.request("POST", "/ack/alice?seq=x")[0], 400)
            self.assertEqual(srv.request("POST", "/publish/" + "k" * 200, b"x")[0], 400)
            self.assertEqual(srv.request("POST", "/publish/k?id=" + "i" * 70, b"x")[0], 400)
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(b"GET /events/a HTTP/1.1\r\nLast-Event-ID: junk\r\n\r\n")
            self.assertIn(b"400 Bad Request", s.recv(4096))
            s.close()
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(b"garbage\r\n\r\n")
            self.assertIn(b"400", s.recv(4096))
            s.close()
            self.assertEqual(srv.request("GET", "/stats")[0], 200)  # still up
        finally:
            err = srv.stop()
        self.assertNotIn("Traceback", err)

    def test_store_restart(self):
        with tempfile.TemporaryDirectory() as d:
            srv = Server("--store", d)
            try:
                srv.request("POST", "/publish/carol?id=c1", b"durable")
            finally:
                srv.stop()
            srv = Server("--store", d)
            try:
                stream = SseStream(srv.port, "carol")
                self.assertEqual(json.loads(stream.next_event()["data"])["id"], "c1")
                stream.close()
            finally:
                err = srv.stop()
            self.assertNotIn("Traceback", err)


if __name__ == "__main__":
    unittest.main()
