#!/usr/bin/env python3
"""Real clients' requests through the HTTP parser (lib/http).

    http_clients_test.py HTTP_DUMP

There is no server yet, so the requests are caught: Python's http.client
writes into a stand-in socket, and urllib and curl (when installed) talk
to a listening socket on 127.0.0.1 that records the bytes, answers 100
Continue when asked and then 204.  Each recording goes through http_dump
(tests/http_dump.c) in one read and byte by byte; the two must agree and
show the request the client meant: method, decoded path and parameters,
headers, body, keep-alive.  Recordings are then sent pipelined, all in one
buffer.  TAP output; curl's checks are skipped when curl is missing.
"""
import http.client
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request

DUMP = sys.argv[1]
count = 0
failed = 0


def ok(cond, what, detail=""):
    global count, failed
    count += 1
    if not cond:
        failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (count, what))
    if not cond and detail:
        for line in str(detail).splitlines():
            print("#   " + line)


def dump(data, chunk=0):
    args = [DUMP] + ([str(chunk)] if chunk else [])
    return subprocess.run(args, input=data, stdout=subprocess.PIPE,
                          check=True).stdout.decode()


def pct(s):
    """The escaping of tests/http_util.h's hu_bytes."""
    out = []
    for c in s.encode() if isinstance(s, str) else s:
        ch = chr(c)
        if ch.isascii() and (ch.isalnum() or ch in "._/-"):
            out.append(ch)
        else:
            out.append("%%%02X" % c)
    return "'" + "".join(out) + "'"


def check(name, data, method, path, params=(), body=b"", keep=1,
          fields=()):
    """Parses |data| (one request) and checks the result."""
    whole = dump(data)
    bytewise = dump(data, 1)
    ok(whole == bytewise, name + ": byte by byte equals one read",
       whole + "\n" + bytewise)
    lines = whole.splitlines()
    ok(len(lines) == 1 and lines[0].startswith("REQ %s 1.1 keep=%d "
                                                % (method, keep)),
       name + ": accepted, %s, keep-alive %d" % (method, keep), whole)
    line = lines[0] if lines else ""
    want = " path=%s" % pct(path) + "".join(
        " ?%s=%s" % (pct(k), pct(v)) for k, v in params) + " host="
    ok(want in line, name + ": path and parameters decoded", line + "\n" + want)
    ok(("body=" + (pct(body) if body else "-")) in line, name + ": body", line)
    for f in fields:
        ok(f in line, name + ": " + f, line)
    return whole


class Capture:
    """A socket stand-in for http.client: keeps what it sends."""

    def __init__(self):
        self.data = b""

    def sendall(self, b):
        self.data += bytes(b)

    def close(self):
        pass


def via_httpclient(method, url, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", 8080)
    c.sock = Capture()
    c.request(method, url, body=body, headers=headers or {})
    return c.sock.data


class Recorder:
    """A one-shot listener that records one request per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    b = conn.recv(65536)
                    if not b:
                        break
                    data += b
                head = data.split(b"\r\n\r\n", 1)[0].lower()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip() == b"content-length":
                        length = int(value.strip())
                if b"expect: 100-continue" in head:
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                while len(data) < len(head) + 4 + length:
                    b = conn.recv(65536)
                    if not b:
                        break
                    data += b
                self.got.append(data)
                conn.sendall(b"HTTP/1.1 204 No Content\r\n"
                             b"Connection: close\r\n\r\n")

    def take(self):
        d = self.got[-1] if self.got else b""
        self.got = []
        return d

    def close(self):
        self.sock.close()


def main():
    recorded = []

    # http.client, into a stand-in socket
    r = via_httpclient("GET", "/stream?session=py%2F1&seq=5",
                       headers={"Accept": "text/event-stream",
                                "Last-Event-ID": "3.4"})
    check("http.client GET", r, "GET", "/stream",
          [("session", "py/1"), ("seq", "5")],
          fields=["accept='text/event-stream'", "leid='3.4'"])
    recorded.append(r)
    r = via_httpclient("POST", "/publish?session=py&id=a+b&prio=high",
                       body=b"{\"x\":1}",
                       headers={"Content-Type": "application/json",
                                "Authorization": "Bearer s3cret"})
    check("http.client POST", r, "POST", "/publish",
          [("session", "py"), ("id", "a b"), ("prio", "high")],
          body=b"{\"x\":1}",
          fields=["auth='Bearer%20s3cret'", "ctype='application/json'",
                  "cl=1/7"])
    recorded.append(r)
    r = via_httpclient("HEAD", "/stats")
    check("http.client HEAD", r, "HEAD", "/stats")
    recorded.append(r)
    r = via_httpclient("OPTIONS", "/publish")
    check("http.client OPTIONS", r, "OPTIONS", "/publish")
    recorded.append(r)
    r = via_httpclient("POST", "/ack?session=py&seq=9")
    check("http.client POST without body", r, "POST", "/ack",
          [("session", "py"), ("seq", "9")], fields=["cl=1/0"])
    recorded.append(r)

    # urllib over a real socket
    rec = Recorder()
    base = "http://127.0.0.1:%d" % rec.port
    try:
        urllib.request.urlopen(urllib.request.Request(
            base + "/publish?topic=news&ttl=30", data=b"hello",
            headers={"Content-Type": "text/plain"}), timeout=10).read()
    except Exception as e:  # the 204 is fine; anything else is reported
        ok(False, "urllib: request", e)
    r = rec.take()
    check("urllib POST", r, "POST", "/publish",
          [("topic", "news"), ("ttl", "30")], body=b"hello", keep=0,
          fields=["ctype='text/plain'"])

    # curl over a real socket
    curl = shutil.which("curl")
    if curl is None:
        print("ok %d # SKIP curl not installed" % (count + 1))
    else:
        def run_curl(*args, data=None):
            subprocess.run([curl, "-s", "-o", "/dev/null",
                            "--max-time", "10"] + list(args),
                           input=data, check=False)
            return rec.take()

        r = run_curl(base + "/stream?session=c%20url&seq=0",
                     "-H", "Last-Event-ID: 17.42",
                     "-H", "Accept: text/event-stream")
        check("curl GET", r, "GET", "/stream",
              [("session", "c url"), ("seq", "0")],
              fields=["leid='17.42'", "accept='text/event-stream'"])
        recorded.append(r)
        r = run_curl("--data-binary", "@-", "-H",
                     "Content-Type: application/octet-stream",
                     base + "/publish?session=c&id=%E2%9C%93", data=b"\x00\x01\xff")
        check("curl POST binary", r, "POST", "/publish",
              [("session", "c"), ("id", "\u2713")], body=b"\x00\x01\xff")
        recorded.append(r)
        big = b"x" * 3000
        r = run_curl("--data-binary", "@-", "-H", "Expect: 100-continue",
                     base + "/publish?session=c", data=big)
        check("curl POST with Expect: 100-continue", r, "POST", "/publish",
              [("session", "c")], body=big, fields=["cont=1"])
        recorded.append(r)
        r = run_curl("--http1.0", base + "/stats")
        whole = dump(r)
        ok(whole.startswith("REQ GET 1.0 keep=0 ") and whole == dump(r, 1),
           "curl --http1.0: no keep-alive", whole)
        r = run_curl("-X", "POST", base + "/unsubscribe?session=c&topic=t")
        check("curl -X POST without body", r, "POST", "/unsubscribe",
              [("session", "c"), ("topic", "t")])
        recorded.append(r)
        r = run_curl("-I", base + "/")
        check("curl -I", r, "HEAD", "/")
        recorded.append(r)
    rec.close()

    # everything recorded, pipelined in one buffer
    stream = b"".join(recorded)
    whole = dump(stream)
    ok(whole == dump(stream, 1) and whole == dump(stream, 7),
       "pipelined: byte by byte and 7-byte reads equal one read")
    lines = whole.splitlines()
    ok(len(lines) == len(recorded) and all(l.startswith("REQ ")
                                           for l in lines),
       "pipelined: %d requests, in order" % len(recorded), whole)
    ok([l.split()[1] for l in lines] ==
       [dump(r).split()[1] for r in recorded], "pipelined: same methods")

    print("1..%d" % count)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
