#!/usr/bin/env python3
"""ternd(8) over real sockets on 127.0.0.1, driven by curl and by this
stdlib-only client.

    ternd_test.py TERND [TCP_RECEIVER]

Starts ternd on free ports (--listen 127.0.0.1:0; it prints the port) and
checks the HTTP API of ternd(8): publish (202, duplicate 200, 429 with
Retry-After, 400, 401), SSE, NDJSON, long and short polls, acks, topics,
stats, metrics, tokens, bad requests answered with the right status and
nothing else changed, and a SIGKILL in the middle of a stream: restarted on
the same data directory, a receiver resuming with Last-Event-ID gets every
SYNC-confirmed message it did not ack, and none it acked.

TAP output.  Skips ("1..0 # SKIP") when curl is missing.
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from wsclient import (WS_ACCEPT, ws_next_text, ws_open, ws_recv,
                      ws_send)

TERND = sys.argv[1]
TCP_RECEIVER = sys.argv[2] if len(sys.argv) > 2 else None
CURL = shutil.which("curl")
if not CURL:
    # A TAP skip: meson's TAP protocol counts exit status 77 as an error,
    # and the plan "1..0 # SKIP" as a skipped test.
    print("1..0 # SKIP curl is missing")
    sys.exit(0)

n_tests = 0
failed = 0


def ok(cond, name):
    global n_tests, failed
    n_tests += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n_tests, name))
    if not cond:
        failed += 1
    sys.stdout.flush()
    return cond


def websocket_checks(t):
    s, st, hd, rest = ws_open(t.port, "/ws?session=wsj",
                              protocol="tern.json")
    ok(st == 101 and hd.get("sec-websocket-accept") == WS_ACCEPT and
       hd.get("sec-websocket-protocol") == "tern.json" and
       hd.get("upgrade", "").lower() == "websocket",
       "GET /ws: 101 with RFC 6455's accept value and tern.json")
    st2, _, body = t.publish("session=wsj&id=w1", b"over websocket")
    op, data, rest = ws_next_text(s, rest)
    env = json.loads(data) if op == 1 else {}
    ok(st2 == 202 and env.get("id") == "w1" and
       env.get("data") == "over websocket" and env.get("seq", 0) >= 1,
       "tern.json: the message arrives as a text message %r" % data[:80])
    acked = t.stats()["hub"]["acked"]
    ws_send(s, 1, json.dumps({"ack": env.get("seq", 0)}).encode())
    for _ in range(50):
        if t.stats()["hub"]["acked"] > acked:
            break
        time.sleep(0.05)
    ok(t.stats()["hub"]["acked"] == acked + 1, "tern.json: {\"ack\":N} acks it")
    ws_send(s, 8, (1000).to_bytes(2, "big"))
    try:
        op, data, _ = ws_recv(s, rest)
    except (EOFError, OSError):
        op, data = None, b""
    ok(op == 8 and data[:2] == (1000).to_bytes(2, "big"),
       "tern.json: a CLOSE is echoed with its code")
    s.close()
    # tern.bin: the binary framing's HELLO goes in-band; WELCOME comes back
    s, st, hd, rest = ws_open(t.port, "/ws?session=wsb", protocol="tern.bin")
    ok(st == 101 and hd.get("sec-websocket-protocol") == "tern.bin",
       "GET /ws: tern.bin chosen when offered")
    s.close()
    s, st, hd, _ = ws_open(t.port, "/ws?session=wsj", version="8")
    ok(st == 426 and hd.get("sec-websocket-version") == "13",
       "GET /ws with version 8: 426 naming version 13")
    s.close()
    s, st, _, _ = ws_open(t.port, "/ws?session=wsj", protocol="mqtt")
    ok(st == 400, "GET /ws offering only another subprotocol: 400")
    s.close()



# ---- the binary framing in Python (tern-protocol(7)), for HELLO checks ------

def varint(v):
    if v < 64:
        return bytes([v])
    if v < 16384:
        return (0x4000 | v).to_bytes(2, "big")
    if v < (1 << 30):
        return (0x80000000 | v).to_bytes(4, "big")
    return ((3 << 62) | v).to_bytes(8, "big")


def blob(b):
    return varint(len(b)) + b


def frame(ftype, body):
    return bytes([ftype]) + varint(len(body)) + body


def hello(key, token):
    return frame(1, varint(1) + varint(0) + bytes(8) + varint(0) +
                 blob(key.encode()) + blob(token.encode()))


def read_varint(b, off):
    n = 1 << (b[off] >> 6)
    v = b[off] & 0x3f
    for x in b[off + 1:off + n]:
        v = (v << 8) | x
    return v, off + n


def bin_hello(t, key, token, then=None, bport=None):
    """Sends HELLO over /ws tern.bin (or plain TCP to --bin-listen's
    |bport|), and |then| once WELCOME came; returns the server's frames as
    (type, body) until it closes or 2 s pass."""
    if bport:
        s, rest = socket.create_connection(("127.0.0.1", bport), timeout=5), b""
        send = s.sendall
    else:
        s, st, _, rest = ws_open(t.port, "/ws?session=" + key, protocol="tern.bin")
        if st != 101:
            s.close()
            return []
        send = lambda b: ws_send(s, 2, b)

    def recv():
        nonlocal rest
        if bport:
            return s.recv(65536) or None
        op, payload, rest = ws_recv(s, rest)
        return None if op == 8 else payload if op == 2 else b""
    send(hello(key, token))
    frames, data, off = [], b"", 0
    s.settimeout(2)
    try:
        while True:
            chunk = recv()
            if chunk is None:
                break
            data += chunk
            while off + 2 <= len(data):
                n, body = read_varint(data, off + 1)
                if body + n > len(data):
                    break
                frames.append((data[off], data[body:body + n]))
                off = body + n
                if frames[-1][0] == 2 and then:
                    send(then)
    except (EOFError, OSError):
        pass
    s.close()
    return frames


def goaway_reason(frames):
    for ftype, body in frames:
        if ftype == 8:
            return read_varint(body, 0)[0]
    return None


def puback_status(frames):
    for ftype, body in frames:
        if ftype == 10:
            _, off = read_varint(body, 0)
            return read_varint(body, off)[0]
    return None


class Ternd:
    """One ternd process; its port comes from its first line."""

    def __init__(self, *flags, data=None):
        self.data = data
        argv = [TERND, "--listen", "127.0.0.1:0"]
        argv += ["--data", data] if data else ["--no-store"]
        argv += list(flags)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        line = self.p.stdout.readline()
        self.first = line
        if "listening on http://127.0.0.1:" not in line:
            raise RuntimeError("ternd did not start: " + line)
        self.port = int(line.split("127.0.0.1:")[1].split()[0].rstrip(","))
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def req(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def publish(self, query, body=b"x", headers=None):
        st, hd, data = self.req("POST", "/publish?" + query, body, headers)
        return st, hd, (json.loads(data) if data else None)

    def stats(self):
        return json.loads(self.req("GET", "/stats")[2])

    def raw(self, data, read_all=True):
        """Sends raw bytes; returns what came back until the server closed
        (or 3 s passed)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=3)
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if not read_all:
                    break
        except socket.timeout:
            pass
        s.close()
        return out

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


class Stream:
    """A GET of a streaming route read line by line over a raw socket."""

    def __init__(self, port, path, headers=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" %
                        (path, h)).encode())
        self.f = self.s.makefile("rb")
        self.status = int(self.f.readline().split()[1])
        self.headers = {}
        while True:
            line = self.f.readline().decode().rstrip("\r\n")
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.lower()] = v.strip()

    def line(self):
        try:
            return self.f.readline().decode()
        except (socket.timeout, OSError):
            return ""

    def sse_event(self):
        """The next SSE event: (fields dict), comments skipped."""
        ev = {}
        while True:
            line = self.line()
            if line == "":
                return None
            line = line.rstrip("\n").rstrip("\r")
            if line == "":
                if ev:
                    return ev
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            ev[k] = v[1:] if v.startswith(" ") else v

    def msgs(self, n):
        out = []
        while len(out) < n:
            ev = self.sse_event()
            if ev is None:
                break
            if ev.get("event") == "msg":
                env = json.loads(ev["data"])
                env["_id"] = ev["id"]
                out.append(env)
        return out

    def close(self):
        self.s.close()


def curl(*args):
    r = subprocess.run([CURL, "-s", "-S"] + list(args), capture_output=True,
                       timeout=20)
    return r.returncode, r.stdout


def status_of(raw):
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def main():
    tmp = tempfile.mkdtemp(prefix="ternd_test.")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n_tests)
    return 1 if failed else 0


def run(tmp):
    t = Ternd(data=os.path.join(tmp, "d1"))

    # ---- publish ---------------------------------------------------------
    rc, out = curl("-i", "-H", "Content-Type: text/plain", "--data-binary",
                   "first", t.url("/publish?session=alice&id=m1&prio=high"))
    ok(rc == 0 and out.startswith(b"HTTP/1.1 202") and
       out.endswith(b'{"id":"m1"}'), "curl: publish answers 202 {\"id\"}")
    st, _, body = t.publish("session=alice&id=m1", b"again")
    ok(st == 200 and body == {"id": "m1", "duplicate": True},
       "a duplicate id answers 200 with duplicate:true")
    st, _, body = t.publish("session=alice&id=m2&durable=sync", b"second")
    ok(st == 202 and body == {"id": "m2"}, "durable=sync answers 202 once stored")
    st, _, body = t.publish("session=alice", b"third")
    ok(st == 202 and len(body["id"]) > 0, "a publish without id gets one")

    # ---- SSE with curl, then with acks -------------------------------------
    rc, out = curl("-N", "-m", "1", t.url("/stream?session=alice"))
    text = out.decode()
    ok("event: msg" in text and '"id":"m1"' in text and
       text.index('"id":"m1"') < text.index('"id":"m2"'),
       "curl: SSE stream carries the messages, high priority first")
    s = Stream(t.port, "/stream?session=alice")
    ok(s.status == 200 and s.headers.get("content-type") ==
       "text/event-stream", "SSE: 200 text/event-stream")
    got = s.msgs(3)
    ok([m["data"] for m in got] == ["first", "second", "third"],
       "SSE: the three messages again (the curl stream did not ack)")
    epoch, seq = got[1]["_id"].split(".")
    ok(int(seq) == got[1]["seq"] and int(epoch) == t.stats()["epoch"],
       "SSE: the event id is <epoch>.<seq>")
    st, _, _ = t.req("POST", "/ack?session=alice&seq=%d" % got[1]["seq"])
    ok(st == 204, "POST /ack answers 204")
    s.close()
    time.sleep(0.1)
    s = Stream(t.port, "/stream?session=alice")
    again = s.msgs(1)
    ok([m["data"] for m in again] == ["third"],
       "acked messages do not come back; the unacked one does")
    s.close()
    st, _, _ = t.req("POST", "/ack?session=nobody&seq=1")
    ok(st == 404, "an ack for no session is 404")

    # ---- NDJSON -----------------------------------------------------------------
    t.publish("session=bob&id=b1", b"nd1")
    t.publish("session=bob&id=b2", b"\xff\xfe")
    s = Stream(t.port, "/ndjson?session=bob")
    l1 = json.loads(s.line())
    l2 = json.loads(s.line())
    ok(s.headers.get("content-type") == "application/x-ndjson" and
       l1["data"] == "nd1" and l2.get("enc") == "base64" and
       l2["data"] == "//4=", "NDJSON: one envelope per line, base64 for bytes")
    s.close()

    # ---- polls ------------------------------------------------------------------------
    t0 = time.monotonic()
    st, _, _ = t.req("GET", "/poll?session=carol&timeout=0")
    ok(st == 204 and time.monotonic() - t0 < 0.5,
       "short poll (timeout=0) on nothing answers 204 at once")
    t0 = time.monotonic()
    st, _, _ = t.req("GET", "/poll?session=carol&timeout=1")
    dt = time.monotonic() - t0
    ok(st == 204 and 0.8 < dt < 3, "long poll holds, then 204 (%.2fs)" % dt)
    result = {}

    def poll():
        result["r"] = t.req("GET", "/poll?session=carol&timeout=10")
    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.3)
    t.publish("session=carol&id=c1", b"wake")
    th.join(10)
    st, hd, data = result.get("r", (None, {}, b"[]"))
    arr = json.loads(data) if st == 200 else []
    ok(st == 200 and [m["data"] for m in arr] == ["wake"],
       "long poll answers as soon as a message comes")
    st, _, _ = t.req("GET", "/poll?session=carol&timeout=0&seq=%d" %
                     arr[0]["seq"] if arr else "/poll?session=carol")
    ok(st == 204, "the next poll's seq acks the last answer")

    # ---- topics ----------------------------------------------------------------
    st, _, data = t.req("POST", "/subscribe?session=dave&topic=news")
    ok(st == 200 and json.loads(data) == {"topics": 1}, "subscribe: 200")
    st, _, body = t.publish("topic=news", b"headline")
    ok(st == 202 and body.get("id"), "topic publish: 202 with an id")
    st, _, data = t.req("GET", "/poll?session=dave&timeout=2")
    ok(st == 200 and json.loads(data)[0]["data"] == "headline",
       "the subscriber gets the topic message")
    st, _, data = t.req("POST", "/unsubscribe?session=dave&topic=news")
    ok(st == 200 and json.loads(data) == {"removed": 1}, "unsubscribe: 200")
    st, _, _ = t.req("POST", "/unsubscribe?session=dave&topic=news")
    ok(st == 404, "unsubscribing again: 404")
    st, _, _ = t.req("POST", "/subscribe?session=dave&topic=a.%2A&filter=((")
    ok(st == 400, "a bad filter: 400")

    # ---- stats and metrics ----------------------------------------------------
    s1 = t.stats()
    ok(s1["hub"]["published"] >= 6 and s1["hub"]["acked"] >= 2 and
       s1["durable"] is True, "GET /stats: JSON counters %s" % s1["hub"])
    st, hd, data = t.req("GET", "/metrics")
    text = data.decode()
    ok(st == 200 and hd["content-type"].startswith("text/plain") and
       "# TYPE ternd_hub_published_total counter" in text and
       "\nternd_hub_published_total %d\n" % s1["hub"]["published"] in text,
       "GET /metrics: Prometheus text")
    st, hd, data = t.req("GET", "/")
    ok(st == 200 and b"EventSource" in data and b"tern.json" in data,
       "GET /: the live page")
    st, _, data = t.req("GET", "/ws?session=alice")
    ok(st == 400 and b"error" in data, "GET /ws without an upgrade: 400")
    websocket_checks(t)

    # ---- bad requests: the right status, nothing else changed -----------------
    before = t.stats()["hub"]
    bad = [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
         431, "huge headers"),
        (b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501, "unknown method"),
        (b"POST /publish?session=z HTTP/1.1\r\nHost: t\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "chunked body"),
        (b"POST /publish?session=z HTTP/1.1\r\nHost: t\r\n"
         b"Content-Length: 9999999\r\n\r\n", 413, "body over the limit"),
        (b"GET /stats HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
    ]
    for data, want, what in bad:
        got = status_of(t.raw(data))
        ok(got == want, "%s: %s (got %s)" % (what, want, got))
    for method, path, want, what in [
        ("GET", "/publish?session=z", 405, "GET /publish"),
        ("POST", "/stream?session=z", 405, "POST /stream"),
        ("PUT", "/", 501, "PUT /"),
        ("POST", "/publish?session=z&prio=urgent", 400, "prio=urgent"),
        ("POST", "/publish?session=z&ttl=-1", 400, "ttl=-1"),
        ("POST", "/publish?session=z&colour=red", 400, "unknown parameter"),
        ("POST", "/publish?session=z&id=1&id=2", 400, "repeated id"),
        ("POST", "/publish?session=z&topic=t", 400, "session and topic"),
        ("POST", "/publish", 400, "neither session nor topic"),
        ("POST", "/publish?session=" + "k" * 129, 400, "key too long"),
        ("POST", "/publish?session=z&durable=maybe", 400, "durable=maybe"),
        ("GET", "/stream", 400, "stream without session"),
        ("GET", "/poll?session=z&timeout=9999", 400, "poll timeout too long"),
        ("GET", "/stream?session=z&seq=x", 400, "seq=x"),
        ("POST", "/ack?session=z", 400, "ack without seq"),
        ("GET", "/nowhere", 404, "unknown path"),
    ]:
        st, hd, data = t.req(method, path)
        ok(st == want and (st == 501 or json.loads(data).get("error")),
           "%s: %d with a JSON error (got %d)" % (what, want, st))
    st, hd, _ = t.req("GET", "/publish?session=z")
    ok(hd.get("allow") == "POST", "405 names the allowed method")
    st, _, _ = t.req("GET", "/stream?session=z",
                     headers={"Last-Event-ID": "1.2.3"})
    ok(st == 400, "a malformed Last-Event-ID: 400")
    after = t.stats()["hub"]
    ok(after["published"] == before["published"] and
       after["sessions"] == before["sessions"] and
       after["messages"] == before["messages"],
       "bad requests changed nothing in the hub")
    # A keep-alive connection serves pipelined requests in order.
    out = t.raw(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n"
                b"POST /publish?session=pipe HTTP/1.1\r\nHost: t\r\n"
                b"Content-Length: 2\r\n\r\nhi"
                b"GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    codes = [int(c) for c in re.findall(rb"HTTP/1\.1 (\d\d\d) ", out)]
    ok(codes == [200, 202, 404],
       "pipelined requests answered in order on one connection")
    t.stop()

    # ---- 429 ------------------------------------------------------------------------
    t = Ternd("--max-pending", "2")
    codes = [t.publish("session=full")[0] for _ in range(3)]
    st, hd, body = t.publish("session=full")
    ok(codes == [202, 202, 429] and st == 429 and
       int(hd.get("retry-after", "0")) >= 1 and "error" in body,
       "a full session: 429 with Retry-After")
    # SIGTERM: a goodbye to every receiver
    s = Stream(t.port, "/stream?session=bye")
    time.sleep(0.2)  # the stream is open in the server
    code = t.stop()
    rest = b""
    try:
        while True:
            chunk = s.f.read1(65536)
            if not chunk:
                break
            rest += chunk
    except (socket.timeout, OSError):
        pass
    s.close()
    ok(code == 0 and b"event: goaway" in rest and b'"reason":"restart"' in rest,
       "SIGTERM: the SSE receiver gets a goaway event, exit status 0")

    # ---- the binary framing (--bin-listen) with tcp_receiver -----------------
    if TCP_RECEIVER:
        t = Ternd("--bin-listen", "127.0.0.1:0")
        bport = int(re.search(r"tcp://127.0.0.1:(\d+)", t.first).group(1))
        for i in range(1, 6):
            t.publish("session=bin&id=m%d" % i, b"m%d for bin" % i)
        r = subprocess.run([TCP_RECEIVER, "--key", "bin", "--port",
                            str(bport), "--expect", "5"],
                           capture_output=True, text=True, timeout=30)
        ok(r.returncode == 0 and r.stdout.count("got m") == 5,
           "--bin-listen: a binary receiver gets what HTTP published")
        st = t.stats()
        ok(st["hub"]["acked"] == 5, "and acks it in-band (%d)" %
           st["hub"]["acked"])
        t.stop()

    # ---- secrets and tokens ------------------------------------------------------------
    t = Ternd("--publish-secret", "pubsecret", "--token-secret", "toksecret",
              "--bin-listen", "127.0.0.1:0")
    bport = int(re.search(r"tcp://127.0.0.1:(\d+)", t.first).group(1))
    st, hd, _ = t.publish("session=eve", b"x")
    ok(st == 401 and "bearer" in hd.get("www-authenticate", "").lower(),
       "publish without the secret: 401")
    st, _, _ = t.publish("session=eve", b"x", {"Authorization": "Bearer nope"})
    ok(st == 401, "publish with a wrong secret: 401")
    st, _, _ = t.publish("session=eve&id=e1", b"x",
                         {"Authorization": "Bearer pubsecret"})
    ok(st == 202, "publish with the secret: 202")
    st, _, _ = t.req("POST", "/subscribe?session=eve&topic=x")
    ok(st == 401, "subscribe without the secret: 401")
    tok = subprocess.run([TERND, "token", "--secret", "toksecret", "--session",
                          "eve", "--ttl", "60"], capture_output=True,
                         text=True).stdout.strip()
    exp, mac = tok.split(".")
    want = hmac.new(b"toksecret", ("eve." + exp).encode(),
                    hashlib.sha256).hexdigest()
    ok(mac == want and int(exp) > time.time(),
       "ternd token: E.H with H = HMAC-SHA256(secret, KEY.E)")
    old = str(int(time.time()) - 10)
    expired = old + "." + hmac.new(b"toksecret", ("eve." + old).encode(),
                                   hashlib.sha256).hexdigest()
    for q, what in [("", "no token"), ("&token=" + expired, "expired token"),
                    ("&token=" + exp + "." + "0" * 64, "wrong token"),
                    ("&token=junk", "malformed token")]:
        st, _, _ = t.req("GET", "/poll?session=eve&timeout=0" + q)
        ok(st == 401, "poll with %s: 401" % what)
    st, _, _ = t.req("GET", "/poll?session=mallory&timeout=0&token=" + tok)
    ok(st == 401, "a token of another session: 401")
    st, _, data = t.req("GET", "/poll?session=eve&timeout=0&token=" + tok)
    ok(st == 200 and json.loads(data)[0]["id"] == "e1",
       "poll with a valid token: 200")
    st, _, _ = t.req("POST", "/ack?session=eve&seq=1")
    ok(st == 401, "ack without a token: 401")
    # the binary framing's HELLO carries the token (or the publisher secret)
    f = bin_hello(t, "eve", "junk")
    ok(goaway_reason(f) == 4 and not any(ft == 2 for ft, _ in f),
       "tern.bin HELLO with a bad token: GOAWAY REJECTED, no WELCOME")
    f = bin_hello(t, "eve", expired)
    ok(goaway_reason(f) == 4, "tern.bin HELLO with an expired token: REJECTED")
    f = bin_hello(t, "mallory", tok)
    ok(goaway_reason(f) == 4,
       "tern.bin HELLO with another session's token: REJECTED")
    f = bin_hello(t, "eve", tok)
    ok(f and f[0][0] == 2, "tern.bin HELLO with a valid token: WELCOME")
    pub = frame(9, varint(1) + varint(1) + blob(b"eve") + varint(0) +
                blob(b"b1") + varint(0) + b"from a producer")
    f = bin_hello(t, "eve", "junk", bport=bport)
    ok(goaway_reason(f) == 4 and not any(ft == 2 for ft, _ in f),
       "--bin-listen HELLO with a bad token: GOAWAY REJECTED, no WELCOME")
    f = bin_hello(t, "prod", "pubsecret", then=pub, bport=bport)
    ok(f and f[0][0] == 2 and puback_status(f) == 0,
       "a producer presenting the publisher secret publishes (PUBACK 0)")
    f = bin_hello(t, "prod", "nope", then=pub, bport=bport)
    ok(goaway_reason(f) == 4 and puback_status(f) is None,
       "a wrong publisher secret is a bad token: REJECTED, nothing published")
    f = bin_hello(t, "prod", "pubsecret", then=pub)
    ok(goaway_reason(f) == 4 and not any(ft == 2 for ft, _ in f),
       "the publisher secret over WebSocket tern.bin: REJECTED (producers "
       "use --bin-listen)")
    t.stop()
    t = Ternd("--publish-secret", "pubsecret", "--bin-listen", "127.0.0.1:0")
    bport = int(re.search(r"tcp://127.0.0.1:(\d+)", t.first).group(1))
    f = bin_hello(t, "rx", "nope", then=pub, bport=bport)
    ok(f and f[0][0] == 2 and goaway_reason(f) == 4 and
       puback_status(f) is None,
       "without --token-secret a wrong secret makes a receiver; "
       "its PUBLISH: GOAWAY REJECTED")
    st, _, _ = t.req("GET", "/poll?session=eve&timeout=0")
    ok(st == 204, "and nothing reached its target")
    t.stop()

    # ---- --threads 3: sessions sharded, requests forwarded --------------------
    data_dir = os.path.join(tmp, "threads")
    t = Ternd("--threads", "3", data=data_dir)
    keys = ["user%02d" % i for i in range(12)]
    codes = [t.publish("session=%s&id=i-%s&durable=sync" % (k, k),
                       k.encode())[0] for k in keys]
    ok(codes == [202] * 12, "--threads 3: SYNC publishes to 12 sessions")
    for k in keys[:6]:
        t.req("POST", "/subscribe?session=%s&topic=all" % k)
    st, _, body = t.publish("topic=all&id=bc1", b"broadcast")
    ok(st == 202 and body == {"id": "bc1"}, "--threads 3: topic publish")
    good = 0
    for k in keys:
        st, _, data = t.req("GET", "/poll?session=%s&timeout=2" % k)
        arr = json.loads(data) if st == 200 else []
        want = [k] + (["broadcast"] if k in keys[:6] else [])
        good += sorted(m["data"] for m in arr) == sorted(want)
    ok(good == 12, "--threads 3: every session polled its own messages and "
       "the topic's (%d/12)" % good)
    s1 = t.stats()
    ok(s1["threads"] == 3 and len(s1["epochs"]) == 3 and
       s1["hub"]["published"] == 12 and s1["hub"]["topics"] >= 3 and
       s1["http"]["forwarded"] > 0,
       "--threads 3: /stats sums the three hubs (forwarded %d)" %
       s1["http"]["forwarded"])
    t.stop(signal.SIGKILL)
    t = Ternd("--threads", "3", data=data_dir)
    good = 0
    for k in keys:
        st, _, data = t.req("GET", "/poll?session=%s&timeout=0" % k)
        arr = json.loads(data) if st == 200 else []
        good += k in [m["data"] for m in arr]
    ok(good == 12, "--threads 3: after SIGKILL every SYNC message is there")
    ok(t.stop() == 0, "--threads 3: SIGTERM, exit 0")

    # ---- SIGKILL in the middle of a stream ------------------------------------------
    data_dir = os.path.join(tmp, "crash")
    t = Ternd(data=data_dir)
    ids = ["k%03d" % i for i in range(1, 41)]
    confirmed = []
    for i in ids:
        st, _, body = t.publish("session=crash&durable=sync&id=" + i,
                                i.encode())
        if st == 202:
            confirmed.append(i)
    ok(confirmed == ids, "40 SYNC publishes confirmed")
    s = Stream(t.port, "/stream?session=crash")
    got = s.msgs(25)
    ok(len(got) == 25, "25 of them received before the kill")
    acked = [m["id"] for m in got[:10]]
    st, _, _ = t.req("POST", "/ack?session=crash&seq=%d" % got[9]["seq"])
    ok(st == 204, "the first 10 acked")
    last_event_id = got[4]["_id"]  # older than the ack: acks nothing more
    t.stop(signal.SIGKILL)
    s.close()
    t = Ternd(data=data_dir)
    s = Stream(t.port, "/stream?session=crash",
               {"Last-Event-ID": last_event_id})
    rest = s.msgs(30)
    s.close()
    got_ids = [m["id"] for m in rest]
    ok(sorted(got_ids) == sorted(set(confirmed) - set(acked)),
       "after SIGKILL and restart, resuming with Last-Event-ID: every "
       "confirmed, unacked message arrives (%d) and no acked one" %
       len(got_ids))
    ok(t.stop() == 0, "SIGTERM after the restart: exit status 0")


if __name__ == "__main__":
    sys.exit(main())
