#!/usr/bin/env python3
"""ternd(8)'s web hooks against a real receiving HTTP server.

    ternd_hooks_test.py TERND

Runs a stdlib HTTP server on a free port that answers each hook's path
with a scripted sequence (statuses, Retry-After, an answer slower than
ternd's --hook-timeout, a connection reset), starts ternd with
--publish-secret and a short --hook-timeout, registers hooks with short
retry bases through POST /webhooks, and checks: batching by max_items and
by max_delay, the signature (HMAC-SHA256 computed here), retries keeping
their delivery id, backoff within its bounds, 429's Retry-After, a timeout
and a reset retried, a 400 given up at once, disable after N lost batches
and re-enable, the challenge, DELETE, 401 without the secret, and a
SIGKILL with entries queued: restarted on the same --data, every entry
arrives.

TAP output.
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import tap
from tap import ok

TERND = sys.argv[1]
SECRET = "pub-secret"
HOOK_TIMEOUT_MS = 500

def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


# ---- the receiver -------------------------------------------------------------

class Receiver:
    """Answers POSTs to /h/NAME with the next action of NAME's script
    (then 200 when the script is used up), and challenges by echoing
    hub.challenge.  Records every request it saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.scripts = {}
        self.default = {}
        self.seen = []
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                c = q.get("hub.challenge", [""])[0].encode()
                with rx.lock:
                    rx.seen.append({"kind": "challenge", "path": self.path,
                                    "t": time.monotonic(), "query": q})
                self.send_response(200)
                self.send_header("Content-Length", str(len(c)))
                self.end_headers()
                self.wfile.write(c)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                name = self.path.split("/")[2] if self.path.startswith("/h/") else ""
                with rx.lock:
                    script = rx.scripts.setdefault(name, [])
                    action = script.pop(0) if script else rx.default.get(name, 200)
                    rec = {"kind": "post", "name": name, "t": time.monotonic(),
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": body, "action": action}
                    rx.seen.append(rec)
                if action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                status, extra = 200, {}
                if isinstance(action, tuple) and action[0] == "slow":
                    time.sleep(action[1])
                elif isinstance(action, tuple):
                    status, extra = action
                else:
                    status = action
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # ternd gave up waiting (the slow answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, name, actions, default=200):
        with self.lock:
            self.scripts[name] = list(actions)
            self.default[name] = default

    def posts(self, name):
        with self.lock:
            return [r for r in self.seen
                    if r["kind"] == "post" and r["name"] == name]

    def url(self, name):
        return "http://127.0.0.1:%d/h/%s" % (self.port, name)


def entries_of(rec):
    return [e["id"] for e in json.loads(rec["body"])["entry"]]


def delivered_keys(rx, name):
    """Keys in batches the receiver answered 2xx."""
    keys = []
    for r in rx.posts(name):
        a = r["action"]
        if a == 200 or (isinstance(a, tuple) and a[0] == 200):
            keys += entries_of(r)
    return keys


# ---- ternd --------------------------------------------------------------------

class Ternd:
    def __init__(self, data, *flags):
        argv = [TERND, "--listen", "127.0.0.1:0", "--data", data,
                "--publish-secret", SECRET,
                "--hook-timeout", str(HOOK_TIMEOUT_MS)] + list(flags)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        line = self.p.stdout.readline()
        if "listening on http://127.0.0.1:" not in line:
            raise RuntimeError("ternd did not start: " + line)
        self.port = int(line.split("127.0.0.1:")[1].split()[0].rstrip(","))
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def call(self, method, path, body=None, auth=True, ctype=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        h = {}
        if auth:
            h["Authorization"] = "Bearer " + SECRET
        if ctype:
            h["Content-Type"] = ctype
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return r.status, doc

    def add(self, **params):
        st, doc = self.call("POST", "/webhooks", params)
        if st != 201:
            raise RuntimeError("POST /webhooks: %d %r" % (st, doc))
        return doc["id"]

    def entry(self, hook, key, fields=None, data=None):
        q = {"key": key}
        if fields:
            q["fields"] = ",".join(fields)
        path = "/webhooks/%d/entries?%s" % (hook, urllib.parse.urlencode(q))
        return self.call("POST", path,
                         json.dumps(data) if data is not None else "")[0]

    def info(self, hook):
        st, doc = self.call("GET", "/webhooks/%d" % hook)
        return doc if st == 200 else None

    def kill(self):
        self.p.kill()
        self.p.wait()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def signature_ok(rec, secret):
    h = rec["headers"]
    ts = h.get("x-tern-timestamp", "")
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + rec["body"],
                                hashlib.sha256).hexdigest()
    return (hmac.compare_digest(h.get("x-tern-signature", ""), want) and
            ts.isdigit() and abs(int(ts) - time.time()) < 60)


# ---- the checks ----------------------------------------------------------------

def check_api(t, rx):
    st, _ = t.call("GET", "/webhooks", auth=False)
    ok(st == 401, "GET /webhooks without the publisher secret: 401")
    st, _ = t.call("POST", "/webhooks", {"url": rx.url("x"), "secret": "s"},
                   auth=False)
    ok(st == 401, "POST /webhooks without the publisher secret: 401")
    st, _ = t.call("POST", "/webhooks", {"secret": "s"})
    ok(st == 400, "POST /webhooks without url: 400")
    st, _ = t.call("POST", "/webhooks", {"url": "https://127.0.0.1/",
                                         "secret": "s"})
    ok(st == 400, "an https url (the sender speaks plain HTTP): 400")
    st, _ = t.call("POST", "/webhooks?url=%s&secret=s&max_items=0" %
                   urllib.parse.quote(rx.url("x"), safe=""))
    ok(st == 400, "max_items 0: 400")
    st, _ = t.call("POST", "/webhooks", {"url": rx.url("x"), "secret": "s",
                                         "colour": "blue"})
    ok(st == 400, "an unknown parameter: 400")
    # The body is JSON (ternd_json_fuzz found these taken as text): a bare
    # word is no value, no parameter takes null, and 01 is no number.
    for value in ("abc", "null", "truex", "01"):
        st, _ = t.call("POST", "/webhooks",
                       '{"url": "%s", "secret": %s}' % (rx.url("x"), value),
                       ctype="application/json")
        ok(st == 400, "a body with secret %s: 400" % value)
    st, _ = t.call("POST", "/webhooks",
                   '{"url": "%s", "secret": "s", "coalesce": true}'
                   % rx.url("x"), ctype="application/json")
    ok(st == 201, "a body with true and a string: 201")
    # Query parameters register too.
    st, doc = t.call("POST", "/webhooks?url=%s&secret=s" %
                     urllib.parse.quote(rx.url("q"), safe=""))
    ok(st == 201 and isinstance(doc.get("id"), int), "register by query: 201")
    hid = doc["id"]
    st, lst = t.call("GET", "/webhooks")
    ok(st == 200 and any(h["id"] == hid and h["url"] == rx.url("q") and
                         h["state"] == "active" for h in lst),
       "GET /webhooks lists it, active")
    st, _ = t.call("DELETE", "/webhooks/%d" % hid, auth=False)
    ok(st == 401, "DELETE without the publisher secret: 401")
    st, _ = t.call("DELETE", "/webhooks/%d" % hid)
    ok(st == 204, "DELETE /webhooks/ID: 204")
    st, _ = t.call("GET", "/webhooks/%d" % hid)
    ok(st == 404, "then GET /webhooks/ID: 404")
    st, _ = t.call("DELETE", "/webhooks/%d" % hid)
    ok(st == 404, "DELETE again: 404")
    ok(t.entry(hid, "k") == 404, "an entry for a deleted hook: 404")


def check_challenge(t, rx):
    hid = t.add(url=rx.url("chal"), secret="s", verify_token="vt-1",
                max_delay=0)
    ok(wait_for(lambda: (t.info(hid) or {}).get("state") == "active", 5),
       "a hook with verify_token is verified by its challenge")
    with rx.lock:
        ch = [r for r in rx.seen if r["kind"] == "challenge" and "/h/chal" in r["path"]]
    ok(len(ch) == 1 and ch[0]["query"].get("hub.verify_token") == ["vt-1"] and
       ch[0]["query"].get("hub.mode") == ["subscribe"],
       "the challenge carries hub.mode and hub.verify_token")
    ok(t.entry(hid, "c1") == 202 and
       wait_for(lambda: delivered_keys(rx, "chal") == ["c1"], 5),
       "and then gets deliveries")


def check_batching(t, rx):
    secret = "batch-secret"
    hid = t.add(url=rx.url("items"), secret=secret, max_items=3,
                max_delay=20000)
    codes = [t.entry(hid, "i%d" % i, fields=["a", "b"], data={"n": i})
             for i in range(7)]
    ok(codes == [202] * 7, "POST /webhooks/ID/entries: 202 each")
    ok(wait_for(lambda: len(rx.posts("items")) >= 2, 5),
       "max_items 3: two batches go at once")
    time.sleep(0.3)
    posts = rx.posts("items")
    ok(len(posts) == 2 and [entries_of(p) for p in posts] ==
       [["i0", "i1", "i2"], ["i3", "i4", "i5"]],
       "of three entries each, in order; the seventh waits")
    ok(all(signature_ok(p, secret) for p in posts),
       "X-Tern-Signature is HMAC-SHA256(secret, timestamp.body)")
    b = json.loads(posts[0]["body"])["entry"][0]
    ok(b["changed_fields"] == ["a", "b"] and b["data"] == {"n": 0},
       "an entry carries its fields and its JSON data")
    ok(all(p["headers"].get("x-tern-attempt") == "1" for p in posts) and
       posts[0]["headers"].get("x-tern-delivery") !=
       posts[1]["headers"].get("x-tern-delivery"),
       "first attempts, each batch its own delivery id")
    info = t.info(hid)
    ok(info and info["queued"] == 1 and info["delivered"] == 6,
       "GET /webhooks/ID: 1 queued, 6 delivered")
    t.call("DELETE", "/webhooks/%d" % hid)

    hid = t.add(url=rx.url("delay"), secret=secret, max_items=100,
                max_delay=400)
    t0 = time.monotonic()
    t.entry(hid, "d0")
    t.entry(hid, "d1")
    ok(wait_for(lambda: rx.posts("delay"), 5), "max_delay: the batch goes")
    p = rx.posts("delay")
    dt = p[0]["t"] - t0
    ok(len(p) == 1 and entries_of(p[0]) == ["d0", "d1"] and 0.38 <= dt < 1.5,
       "max_delay 400 ms: both entries in one batch after %.3f s" % dt)


def check_retry(t, rx):
    # 500 then 200: the same delivery again, attempt 2, within the backoff.
    rx.script("r500", [500, 503, 200])
    hid = t.add(url=rx.url("r500"), secret="s", max_delay=0, retry_base=150,
                retry_cap=250)
    t.entry(hid, "x")
    ok(wait_for(lambda: len(rx.posts("r500")) >= 3, 5),
       "500, 503, then 200: three attempts")
    p = rx.posts("r500")
    ok([r["headers"].get("x-tern-attempt") for r in p] == ["1", "2", "3"] and
       len({r["headers"].get("x-tern-delivery") for r in p}) == 1,
       "the retries keep the delivery id and count attempts")
    gaps = [p[i + 1]["t"] - p[i]["t"] for i in range(2)]
    ok(gaps[0] <= 0.15 + 0.5 and gaps[1] <= 0.25 + 0.5,
       "backoff within [0, min(cap, base*2^(n-1))] (+slack): %.3f, %.3f s" %
       tuple(gaps))
    ok(all(signature_ok(r, "s") for r in p), "every attempt is signed")
    ok(wait_for(lambda: (t.info(hid) or {}).get("delivered") == 1, 3),
       "delivered: 1")

    # 429 with Retry-After: 1 waits that second, whatever the base.
    rx.script("r429", [(429, {"Retry-After": "1"}), 200])
    hid = t.add(url=rx.url("r429"), secret="s", max_delay=0, retry_base=10,
                retry_cap=20)
    t.entry(hid, "x")
    ok(wait_for(lambda: len(rx.posts("r429")) >= 2, 5), "429 then 200")
    p = rx.posts("r429")
    gap = p[1]["t"] - p[0]["t"]
    ok(0.9 <= gap < 2.5, "429 honours Retry-After: 1 (%.3f s)" % gap)

    # An answer slower than --hook-timeout is no answer: retried.
    rx.script("slow", [("slow", 1.5), 200])
    hid = t.add(url=rx.url("slow"), secret="s", max_delay=0, retry_base=50,
                retry_cap=50)
    t.entry(hid, "x")
    ok(wait_for(lambda: len(rx.posts("slow")) >= 2, 5),
       "an answer slower than the timeout: tried again")
    p = rx.posts("slow")
    gap = p[1]["t"] - p[0]["t"]
    ok(HOOK_TIMEOUT_MS / 1000 - 0.05 <= gap < HOOK_TIMEOUT_MS / 1000 + 0.6,
       "after the %d ms timeout (%.3f s)" % (HOOK_TIMEOUT_MS, gap))
    ok(wait_for(lambda: (t.info(hid) or {}).get("delivered") == 1, 3),
       "and delivered by the second attempt")

    # A reset is no answer: retried.
    rx.script("reset", ["reset", 200])
    hid = t.add(url=rx.url("reset"), secret="s", max_delay=0, retry_base=50,
                retry_cap=50)
    t.entry(hid, "x")
    ok(wait_for(lambda: (t.info(hid) or {}).get("delivered") == 1, 5) and
       len(rx.posts("reset")) == 2,
       "a connection reset: tried again, delivered")

    # Nobody listening: retried until max_attempts, then dropped.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = "http://127.0.0.1:%d/" % s.getsockname()[1]
    s.close()
    hid = t.add(url=dead, secret="s", max_delay=0, retry_base=20,
                retry_cap=40, max_attempts=3)
    t.entry(hid, "x")
    ok(wait_for(lambda: (t.info(hid) or {}).get("dropped") == 1, 5) and
       t.info(hid)["attempts"] == 3,
       "connection refused: 3 attempts, then dropped")
    st, stats = t.call("GET", "/stats")
    hk = stats.get("hooks", {}) if st == 200 else {}
    ok(hk.get("no_answer", 0) >= 5 and hk.get("answered", 0) >= 10 and
       hk.get("requests") == hk.get("answered") + hk.get("no_answer") +
       hk.get("outstanding"),
       "GET /stats counts the hooks' requests: %r" % hk)

    # 400 gives the batch up at once; the next batch is sent.
    rx.script("r400", [400, 200])
    hid = t.add(url=rx.url("r400"), secret="s", max_delay=0, retry_base=20)
    t.entry(hid, "lost")
    ok(wait_for(lambda: (t.info(hid) or {}).get("dropped") == 1, 5),
       "400: the batch is given up")
    t.entry(hid, "next")
    ok(wait_for(lambda: (t.info(hid) or {}).get("delivered") == 1, 5) and
       [entries_of(r) for r in rx.posts("r400")] == [["lost"], ["next"]],
       "without a retry; the next batch is delivered")


def check_disable(t, rx):
    rx.script("dis", [], default=500)
    hid = t.add(url=rx.url("dis"), secret="s", max_delay=0, max_attempts=2,
                retry_base=20, retry_cap=20, disable_after=2)
    t.entry(hid, "a")
    ok(wait_for(lambda: (t.info(hid) or {}).get("dropped") == 1, 5),
       "two failed attempts lose the first batch")
    t.entry(hid, "b")
    ok(wait_for(lambda: (t.info(hid) or {}).get("state") == "disabled", 5),
       "the second lost batch disables the hook (disable_after 2)")
    n = len(rx.posts("dis"))
    rx.script("dis", [], default=200)
    t.entry(hid, "c")
    t.entry(hid, "d")
    time.sleep(0.4)
    info = t.info(hid)
    ok(len(rx.posts("dis")) == n and info["queued"] == 2,
       "a disabled hook sends nothing and keeps its queue")
    st, _ = t.call("POST", "/webhooks/%d/enable" % hid)
    ok(st == 200, "POST /webhooks/ID/enable: 200")
    ok(wait_for(lambda: sorted(delivered_keys(rx, "dis")) == ["c", "d"], 5),
       "re-enabled: the waiting entries are delivered")
    info = t.info(hid)
    ok(info["state"] == "active" and info["failures"] == 0,
       "and the hook is active with no failures")


def check_restart(data, rx):
    rx.script("rs", [], default=503)
    t = Ternd(data)
    hid = t.add(url=rx.url("rs"), secret="rs-secret", max_items=4,
                max_delay=50, retry_base=100, retry_cap=200, max_attempts=0)
    keys = ["k%02d" % i for i in range(12)]
    for k in keys:
        t.entry(hid, k, data={"k": k})
    ok(wait_for(lambda: len(rx.posts("rs")) >= 3, 5),
       "restart: batches are being refused (503)")
    info = t.info(hid)
    ok(info["queued"] == 8 and info["outstanding"] == 1 and
       info["delivered"] == 0 and info["dropped"] == 0,
       "before the kill: one batch of 4 retrying, 8 entries queued")
    t.kill()
    rx.script("rs", [], default=200)
    t2 = Ternd(data)
    try:
        st, lst = t2.call("GET", "/webhooks")
        ok(st == 200 and [h["id"] for h in lst] == [hid] and
           lst[0]["url"] == rx.url("rs"),
           "after SIGKILL and restart the hook is there, same id")
        ok(wait_for(lambda: set(delivered_keys(rx, "rs")) == set(keys), 10),
           "every entry queued before the SIGKILL is delivered after it")
        ok(all(signature_ok(r, "rs-secret") for r in rx.posts("rs")),
           "signed with the restored secret")
        ok(wait_for(lambda: (t2.info(hid) or {}).get("queued") == 0 and
                    t2.info(hid)["outstanding"] == 0, 5),
           "and the queue is empty")
    finally:
        t2.stop()


def check_threads(data, rx):
    """With --threads 3 every /webhooks request, on whichever thread it
    lands, reaches the hooks on thread 0."""
    t = Ternd(data, "--threads", "3")
    try:
        hid = t.add(url=rx.url("thr"), secret="s", max_items=5, max_delay=100)
        codes = [t.entry(hid, "t%d" % i) for i in range(10)]
        ok(codes == [202] * 10, "--threads 3: entries queued from any thread")
        ok(wait_for(lambda: sorted(delivered_keys(rx, "thr")) ==
                    sorted("t%d" % i for i in range(10)), 5),
           "--threads 3: all delivered")
        # the receiver has the posts a moment before ternd has their answers
        def listed():
            st, lst = t.call("GET", "/webhooks")
            return st == 200 and len(lst) == 1 and lst[0]["delivered"] == 10
        ok(wait_for(listed, 5), "--threads 3: one hook, listed with its counts")
    finally:
        t.stop()


def main():
    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="ternd_hooks_")
    rx = Receiver()
    t = Ternd(os.path.join(tmp, "a"))
    try:
        check_api(t, rx)
        check_challenge(t, rx)
        check_batching(t, rx)
        check_retry(t, rx)
        check_disable(t, rx)
    finally:
        t.stop()
    ok(t.p.returncode == 0, "ternd exits 0 on SIGTERM with hooks")
    check_restart(os.path.join(tmp, "b"), rx)
    check_threads(os.path.join(tmp, "c"), rx)
    rx.server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - start
    ok(elapsed < 60, "ran in %.1f s" % elapsed)
    tap.plan()
    if tap.failed() and t.lines:
        sys.stderr.write("".join(t.lines))
    return tap.exit_status()


if __name__ == "__main__":
    sys.exit(main())
