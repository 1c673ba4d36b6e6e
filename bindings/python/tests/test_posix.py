"""libtern-posix from Python: subscriber tokens, tern.Workers (native
threads serving the binary framing over TCP) and the HTTP server on them,
over real sockets on 127.0.0.1."""

import gc
import http.client
import json
import os
import select
import socket
import sys
import threading
import time
import tracemalloc
import unittest

import tern

SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")
DEADLINE = 20.0  # seconds any single wait may take (a loaded 2-core box)


def now_ns():
    return time.monotonic_ns()


class Receiver:
    """A tern.Client driven over a blocking socket with a timeout."""

    def __init__(self, port, key, token=None, **settings):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.settimeout(0.05)
        self.client = tern.Client(key, token, now=now_ns(), **settings)
        self.client.connect(now=now_ns())
        self.events = []

    def send(self):
        try:
            out = self.client.write(now=now_ns())
        except tern.StateError:  # disconnected: nothing to send
            return
        if out:
            self.sock.sendall(out)

    def pump(self):
        self.send()
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            data = None
        if data == b"":
            raise ConnectionError("the server closed the connection")
        if data:
            self.client.read(data, now=now_ns())
        while True:
            ev = self.client.next_event()
            if ev is None:
                break
            self.events.append(ev)
        self.send()

    def until(self, pred, what):
        end = time.monotonic() + DEADLINE
        while not pred():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events[-5:]}")
            try:
                self.pump()
            except ConnectionError:
                if pred():
                    return
                raise
        return

    def messages(self):
        return [e for e in self.events if e.type == tern.ClientEventType.MESSAGE]

    def close(self):
        self.client.release()
        self.sock.close()


def wait_for(pred, what):
    end = time.monotonic() + DEADLINE
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@unittest.skipUnless(tern.HAVE_POSIX, "built without libtern-posix")
class TokenTest(unittest.TestCase):
    def test_round_trip(self):
        exp = int(time.time()) + 60
        tok = tern.token_make(b"secret", "alice", exp)
        self.assertIsInstance(tok, str)
        self.assertLessEqual(len(tok), tern.TOKEN_MAX)
        self.assertTrue(tok.startswith(f"{exp}."))
        self.assertIsNone(tern.token_check(tok, b"secret", "alice"))
        self.assertIsNone(tern.token_check(tok.encode(), "secret", b"alice", now=exp - 1))
        self.assertEqual(tern.token_make("secret", b"alice", exp), tok)  # str is its UTF-8

    def test_failures(self):
        tok = tern.token_make(b"secret", "alice", 1000)
        with self.assertRaises(tern.StateError) as cm:
            tern.token_check(tok, b"secret", "alice", now=1000)  # expiry not after now
        self.assertEqual(cm.exception.code, tern.ErrorCode.STATE)
        with self.assertRaises(tern.InvalidError) as cm:
            tern.token_check(tok, b"other", "alice", now=1)
        self.assertEqual(cm.exception.code, tern.ErrorCode.INVALID)
        with self.assertRaises(tern.InvalidError):
            tern.token_check(tok, b"secret", "bob", now=1)
        for bad in ["", "x", "1000.", "1000.zz", tok[:-1], tok + "0", "." + tok]:
            with self.assertRaises(tern.InvalidError, msg=bad):
                tern.token_check(bad, b"secret", "alice", now=1)
        self.assertIsInstance(cm.exception, ValueError)

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            tern.token_make(1, "a", 10)
        with self.assertRaises(TypeError):
            tern.token_make(b"s", None, 10)
        with self.assertRaises(TypeError):
            tern.token_make(b"s", "a", 1.5)
        with self.assertRaises(ValueError):
            tern.token_make(b"s", "a", 0)
        with self.assertRaises(ValueError):
            tern.token_make(b"s", "a", -1)
        with self.assertRaises(ValueError):
            tern.token_make(b"s", "a", 2 ** 64)
        with self.assertRaises(TypeError):
            tern.token_check(None, b"s", "a")
        with self.assertRaises(TypeError):
            tern.token_check("1.a", b"s", "a", now="x")
        with self.assertRaises(TypeError):
            tern.token_make(b"s", "a")


@unittest.skipUnless(tern.HAVE_POSIX, "built without libtern-posix")
class WorkersTest(unittest.TestCase):
    def test_publish_from_threads_to_a_client(self):
        with tern.Workers(threads=2, events=[tern.EventType.ACKED], heartbeat_interval=5) as w:
            self.assertEqual(w.count, 2)
            port = w.listen("127.0.0.1", 0)
            self.assertGreater(port, 0)
            w.start()
            self.assertTrue(w.running)
            keys = ["alice", "bob"]
            rx = {k: Receiver(port, k) for k in keys}
            for r in rx.values():
                r.until(lambda r=r: any(e.type == tern.ClientEventType.CONNECTED for e in r.events),
                        "CONNECTED")
            n_threads, per = 4, 25

            def producer(t):
                for i in range(per):
                    for k in keys:
                        w.publish(k, f"{k}-{t}-{i}".encode(), id=f"{t}.{i}",
                                  cookie=1 + t * per + i, trace=True)

            threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            total = n_threads * per
            for k, r in rx.items():
                r.until(lambda r=r: len(r.messages()) >= total, f"{total} messages for {k}")
                got = sorted(e.payload for e in r.messages())
                want = sorted(f"{k}-{t}-{i}".encode() for t in range(n_threads) for i in range(per))
                self.assertEqual(got, want)
                seqs = [e.seq for e in r.messages()]
                self.assertEqual(seqs, sorted(seqs))
            # Results: every publish had a cookie, so each reports success.
            results = []
            wait_for(lambda: results.extend(w.results()) or len(results) >= 2 * total, "results")
            self.assertEqual(len(results), 2 * total)
            self.assertTrue(all(r.ok and r.error is None for r in results))
            self.assertEqual(sorted({r.cookie for r in results}), list(range(1, total + 1)))
            self.assertEqual({r.worker for r in results} <= {0, 1}, True)
            # The receivers acked (ack_every): ACKED events come through the queue.
            acked = []

            def more_acks():
                for r in rx.values():
                    r.pump()
                acked.extend(w.events())
                return len(acked) >= 2 * total

            wait_for(more_acks, "ACKED events")
            for worker, ev in acked:
                self.assertEqual(ev.type, tern.EventType.ACKED)
                self.assertIsNone(ev.conn)
                self.assertEqual(worker, w.shard_of(ev.session_key))
            self.assertEqual(w.dropped, 0)
            for r in rx.values():
                r.close()
            w.stop()
            self.assertFalse(w.running)
            st = [w.stats(i) for i in range(w.count)]
            self.assertEqual(sum(s.acked for s in st), 2 * total)
            with self.assertRaises(ValueError):
                w.stats(2)
        self.assertTrue(w.closed)

    def test_publish_before_start_and_restart(self):
        with tern.Workers() as w:
            port = w.listen()
            w.publish("k", b"early")  # waits in the inbox for start
            w.start()
            r = Receiver(port, "k")
            r.until(lambda: len(r.messages()) == 1, "the early message")
            self.assertEqual(r.messages()[0].payload, b"early")
            w.stop()
            w.publish("k", b"while stopped")
            w.start()
            r.until(lambda: len(r.messages()) == 2, "the message published while stopped")
            self.assertEqual(r.messages()[1].payload, b"while stopped")
            r.close()

    def test_publish_failures_are_results(self):
        with tern.Workers(max_pending=1, overflow=(tern.Overflow.REJECT,) * 3) as w:
            w.start()
            w.publish("k", b"1")
            w.publish("k", b"2")  # no receiver: the queue is full
            res = []
            wait_for(lambda: res.extend(w.results()) or res, "a failure result")
            self.assertEqual(res[0].error, tern.ErrorCode.FULL)
            self.assertFalse(res[0].ok)
            self.assertEqual(res[0].cookie, 0)

    def test_fileno_and_dropped(self):
        with tern.Workers(max_queue=2) as w:
            fd = w.fileno()
            self.assertEqual(select.select([fd], [], [], 0)[0], [])
            w.start()
            for i in range(5):
                w.publish("k", b"x", cookie=i + 1)
            self.assertEqual(select.select([fd], [], [], DEADLINE)[0], [fd])
            wait_for(lambda: w.dropped == 3, "3 dropped")
            self.assertEqual(len(list(w.results())), 2)
            self.assertEqual(select.select([fd], [], [], 0)[0], [])

    def test_token_secret(self):
        secret = b"s3cret"
        with tern.Workers(threads=2, token_secret=secret, events=[tern.EventType.CONN_DEAD,
                                                                 tern.EventType.CONN_CLOSED]) as w:
            port = w.listen()
            w.start()
            good = Receiver(port, "alice", tern.token_make(secret, "alice", int(time.time()) + 60))
            good.until(lambda: any(e.type == tern.ClientEventType.CONNECTED for e in good.events),
                       "CONNECTED with a good token")
            for tok in [None, tern.token_make(secret, "bob", int(time.time()) + 60),
                        tern.token_make(secret, "alice", int(time.time()) - 1),
                        tern.token_make(b"other", "alice", int(time.time()) + 60)]:
                bad = Receiver(port, "alice", tok, max_attempts=1)

                def refused():
                    return any(e.type in (tern.ClientEventType.DISCONNECTED,
                                          tern.ClientEventType.GIVE_UP) for e in bad.events)

                try:
                    bad.until(refused, "the refusal")
                except ConnectionError:
                    pass
                self.assertFalse(any(e.type == tern.ClientEventType.CONNECTED for e in bad.events))
                dis = [e for e in bad.events if e.type == tern.ClientEventType.DISCONNECTED]
                if dis:
                    self.assertEqual(dis[0].reason, tern.GoawayReason.REJECTED)
                bad.close()
            w.publish("alice", b"for the good one")
            good.until(lambda: good.messages(), "the message")
            good.close()

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            tern.Workers(threads=0)
        with self.assertRaises(ValueError):
            tern.Workers(threads=1025)
        with self.assertRaises(TypeError):
            tern.Workers(threads="2")
        with self.assertRaises(TypeError):
            tern.Workers(no_such_setting=1)
        with self.assertRaises(TypeError):
            tern.Workers(events=[object()])
        with self.assertRaises(TypeError):
            tern.Workers(events=5)
        with self.assertRaises(tern.InvalidError):
            tern.Workers(hello_accept=True)
        with self.assertRaises(tern.InvalidError):
            tern.Workers(max_payload=0)
        with self.assertRaises(TypeError):
            tern.Workers(token_secret=5)
        with self.assertRaises(ValueError):
            tern.Workers(max_queue=-1)
        with tern.Workers() as w:
            with self.assertRaises(tern.InvalidError):
                w.listen("not an address")
            with self.assertRaises(ValueError):
                w.listen(port=70000)
            with self.assertRaises(TypeError):
                w.listen(5)
            with self.assertRaises(tern.InvalidError):
                w.publish("", b"x")
            with self.assertRaises(TypeError):
                w.publish("k", 5)
            with self.assertRaises(TypeError):
                w.publish("k")
            with self.assertRaises(TypeError):
                w.publish("k", b"x", nope=1)
            with self.assertRaises(tern.TooLargeError):
                w.publish("k" * (tern.MAX_SESSION_KEY + 1), b"x")
            with self.assertRaises(tern.TooLargeError):
                w.publish("k", b"x", id="i" * (tern.MAX_ID + 1))
            with self.assertRaises(ValueError):
                w.publish("k", b"x", priority=7)
            with self.assertRaises(ValueError):
                w.publish("k", b"x", ttl=-1)
            with self.assertRaises(TypeError):
                w.serve_http(None)
            w.start()
            with self.assertRaises(tern.StateError):
                w.start()
            with self.assertRaises(tern.StateError):
                w.listen()
            with self.assertRaises(tern.StateError):
                w.serve_http(lambda r: None)
            with self.assertRaises(tern.StateError):
                w.stats(0)
            w.stop()
            w.stop()  # stopping a stopped one does nothing

    def test_closed_raises(self):
        w = tern.Workers()
        w.listen()
        w.start()
        w.close()
        self.assertTrue(w.closed)
        self.assertFalse(w.running)
        w.close()  # idempotent
        for call in [lambda: w.publish("k", b"x"), w.start, w.stop, w.listen, w.fileno,
                     lambda: w.stats(0), w.next_result, w.next_event,
                     lambda: w.serve_http(lambda r: None), w.__enter__]:
            with self.assertRaises(tern.ClosedError):
                call()
        self.assertIn("closed", repr(w))

    def test_dropped_while_running_is_kept_alive(self):
        w = tern.Workers()
        port = w.listen()
        w.start()
        del w
        gc.collect()
        r = Receiver(port, "k")  # still served
        r.until(lambda: any(e.type == tern.ClientEventType.CONNECTED for e in r.events),
                "CONNECTED")
        r.close()
        for x in list(tern._running):
            x.close()


def http_get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        c.request("GET", path, headers=headers or {})
        resp = c.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        c.close()


def read_until(sock, marker):
    data = b""
    end = time.monotonic() + DEADLINE
    while marker not in data:
        if time.monotonic() > end:
            raise AssertionError(f"no {marker!r} in {data!r}")
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            raise AssertionError(f"closed before {marker!r}: {data!r}")
        data += chunk
    return data


@unittest.skipUnless(tern.HAVE_POSIX, "built without libtern-posix")
class HttpTest(unittest.TestCase):
    def setUp(self):
        self.kept = []
        self.seen = []

        def handler(req):
            self.seen.append((req.worker, threading.current_thread() is threading.main_thread()))
            path = req.path
            if path == "/":
                req.respond(200, "hello " + req.method, headers={"X-Test": "1"})
            elif path == "/json":
                body = json.dumps({"q": req.param("q"), "params": req.params(),
                                   "ua": req.header("user-agent", "none"),
                                   "missing": req.header("x-missing", "dflt")})
                req.respond(200, body, content_type="application/json")
            elif path == "/echo":
                req.respond(201, req.body, content_type="application/octet-stream",
                            headers=[("X-Len", str(len(req.body)))])
            elif path.startswith("/events/"):
                req.respond_stream(path[len("/events/"):], tern.Framing.SSE, retry=2)
            elif path.startswith("/ndjson/"):
                req.respond_stream(path[len("/ndjson/"):], tern.Framing.NDJSON)
            elif path.startswith("/ws/"):
                self.ws_result = req.respond_websocket(path[len("/ws/"):])
            elif path == "/raise":
                raise RuntimeError("boom")
            elif path == "/silent":
                pass  # never answers: the binding answers 500
            elif path == "/keep":
                self.kept.append(req)
                req.respond(204)
            elif path == "/twice":
                req.respond(200, b"one")
                try:
                    req.respond(200, b"two")
                except tern.StateError:
                    self.twice_refused = True
            elif path == "/badargs":
                errs = []
                for f in [lambda: req.respond(99), lambda: req.respond(600),
                          lambda: req.respond("200"), lambda: req.respond(200, 5),
                          lambda: req.respond(200, headers=5),
                          lambda: req.respond(200, headers={"X": 5}),
                          lambda: req.respond(200, headers={"Bad\r\nName": "v"}),
                          lambda: req.respond(200, headers={"X": "a\r\nInjected: 1"}),
                          lambda: req.respond_stream(""),
                          lambda: req.respond_stream("k", 99),
                          lambda: req.respond_stream("k", resume="nope"),
                          lambda: req.respond_stream("k", resume=(1,)),
                          lambda: req.respond_stream("k" * 200),
                          lambda: req.stop_me()]:
                    try:
                        f()
                        errs.append(None)
                    except Exception as e:  # noqa: BLE001
                        errs.append(type(e).__name__)
                try:
                    self.workers.stop()
                except tern.StateError:
                    errs.append("StateError")
                req.respond(200, json.dumps(errs))
            else:
                req.respond_error(404, "no route " + path)

        self.workers = tern.Workers(threads=2)
        self.port = self.workers.serve_http(handler, "127.0.0.1", 0, request_timeout=10)
        self.workers.start()
        self.addCleanup(self.workers.close)

    def test_routes(self):
        status, headers, body = http_get(self.port, "/")
        self.assertEqual((status, body), (200, b"hello GET"))
        self.assertEqual(headers["X-Test"], "1")
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        status, headers, body = http_get(self.port, "/nowhere")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body), {"error": "no route /nowhere"})
        status, headers, body = http_get(self.port, "/json?q=a+b&x=%2F&q=2",
                                         {"User-Agent": "tester"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {"q": "a b", "params": [["q", "a b"], ["x", "/"], ["q", "2"]],
                                            "ua": "tester", "missing": "dflt"})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        c.request("POST", "/echo", body=b"\x00\x01payload")
        resp = c.getresponse()
        self.assertEqual((resp.status, resp.read(), resp.getheader("X-Len")), (201, b"\x00\x01payload", "9"))
        c.request("GET", "/")  # keep-alive: a second request on the connection
        self.assertEqual(c.getresponse().read(), b"hello GET")
        c.close()
        # The handler ran on worker threads, never the main one.
        self.assertTrue(self.seen)
        self.assertTrue(all(not main for _, main in self.seen))

    def test_handler_failures_answer_500(self):
        old = sys.unraisablehook
        caught = []
        sys.unraisablehook = lambda u: caught.append(u.exc_type)
        try:
            status, _, body = http_get(self.port, "/raise")
            self.assertEqual(status, 500)
            status, _, body = http_get(self.port, "/silent")
            self.assertEqual(status, 500)
            self.assertIn(b"did not answer", body)
        finally:
            sys.unraisablehook = old
        self.assertEqual(caught, [RuntimeError])
        status, _, body = http_get(self.port, "/twice")
        self.assertEqual((status, body, self.twice_refused), (200, b"one", True))

    def test_request_dies_with_its_handler(self):
        self.assertEqual(http_get(self.port, "/keep")[0], 204)
        req = self.kept[0]
        self.assertTrue(req.answered)
        self.assertIn(req.worker, (0, 1))
        with self.assertRaises(TypeError):
            tern.Request()
        self.workers.close()
        self.assertIn(req.worker, (0, 1))  # still readable after close
        for f in [lambda: req.path, lambda: req.method, lambda: req.body,
                  lambda: req.header("host"), lambda: req.param("x"), req.params,
                  lambda: req.respond(200), lambda: req.respond_error(500),
                  lambda: req.respond_stream("k")]:
            with self.assertRaises(tern.StateError):
                f()

    def test_bad_arguments_in_handler(self):
        status, _, body = http_get(self.port, "/badargs")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), [
            "ValueError", "ValueError", "TypeError", "TypeError", "TypeError", "TypeError",
            "InvalidError", "InvalidError", "InvalidError", "ValueError", "InvalidError",
            "TypeError", "TooLargeError", "AttributeError", "StateError"])

    def test_sse_stream(self):
        # Sessions on both workers: one request lands on the wrong one and
        # is forwarded to the owner.
        keys = [f"user{i}" for i in range(8)]
        self.assertEqual({self.workers.shard_of(k) for k in keys}, {0, 1})
        socks = {}
        for k in keys:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
            s.settimeout(0.1)
            s.sendall(f"GET /events/{k} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = read_until(s, b"retry: 2000")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            self.assertIn(b"text/event-stream", head)
            socks[k] = s
        for k in keys:
            self.workers.publish(k, f"hello {k}".encode(), id="m1")
        for k, s in socks.items():
            data = read_until(s, f"hello {k}".encode())
            self.assertIn(b"event: msg", data)
            s.close()
        # Resume with Last-Event-ID after the first message: the second only.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        s.settimeout(0.1)
        self.workers.publish("alice", b"second", id="m2")
        s.sendall(b"GET /ndjson/alice HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until(s, b"second")
        self.assertIn(b"application/x-ndjson", data)
        s.close()

    def test_websocket_refusal(self):
        self.ws_result = None
        status, _, _ = http_get(self.port, "/ws/alice")  # no Upgrade headers
        self.assertIn(status, (400, 426))
        self.assertIs(self.ws_result, False)

    def test_websocket_upgrade(self):
        self.ws_result = None
        key = self.workers_key = "alice"
        s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        s.settimeout(0.1)
        s.sendall(f"GET /ws/{key} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Protocol: tern.json\r\n\r\n".encode())
        head = read_until(s, b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.assertIn(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head)
        self.workers.publish(key, b"over ws")
        read_until(s, b"over ws")
        s.close()


@unittest.skipUnless(tern.HAVE_POSIX, "built without libtern-posix")
class ReadmeTest(unittest.TestCase):
    def test_workers_example(self):
        """README's "Native workers and HTTP" example runs as written (on
        free ports), and its routes answer."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
        with open(path) as f:
            text = f.read()
        start = text.index("```python\nimport tern\n\nSECRET")
        code = text[start + len("```python\n"):text.index("```\n", start + 10)]
        code = code.replace("7400", "0").replace("8080", "0")
        probe = """
    status = {}
    for p in ("/health", "/nowhere", "/events/alice?token=bad"):
        status[p] = http_get(http_port, p)[0]
    s = socket.create_connection(("127.0.0.1", http_port), timeout=20)
    s.settimeout(0.1)
    tok = tern.token_make(SECRET, "alice", int(time.time()) + 60)
    s.sendall(f"GET /events/alice?token={tok} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode())
    read_until(s, b'"id":"m1"')
    s.close()
    r = Receiver(tcp_port, "alice", tok)
    r.until(lambda: r.messages(), "the message over TCP")
    r.close()
"""
        self.assertIn("    ...  ", code)
        code = code.replace("    ...  ", probe + "    #", 1)
        env = {"http_get": http_get, "socket": socket, "time": time, "read_until": read_until,
               "Receiver": Receiver}
        exec(compile(code, "README.md", "exec"), env)
        self.assertEqual(env["status"], {"/health": 200, "/nowhere": 404,
                                         "/events/alice?token=bad": 403})


@unittest.skipUnless(tern.HAVE_POSIX, "built without libtern-posix")
class LeakTest(unittest.TestCase):
    def test_loops(self):
        rounds = 20 if SANITIZED else 60

        def handler(req):
            req.respond(200, b"ok")

        def one():
            with tern.Workers(threads=2, events=[tern.EventType.ACCEPTED]) as w:
                w.listen()
                port = w.serve_http(handler)
                w.start()
                for i in range(50):
                    w.publish(f"k{i % 5}", b"x" * 100, id=str(i), cookie=i, trace=bool(i % 2))
                self.assertEqual(http_get(port, "/")[2], b"ok")
                wait_for(lambda: w.fileno() and select.select([w.fileno()], [], [], 0)[0], "results")
                list(w.results())
                # events and results left in the queue are freed by close
            for i in range(200):
                t = tern.token_make(b"secret", f"k{i}", 10 + i)
                try:
                    tern.token_check(t, b"secret", f"k{i}", now=20 + i)
                except tern.StateError:
                    pass

        rc_handler = sys.getrefcount(handler)
        for _ in range(5):
            one()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(rounds):
            one()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        self.assertLess(grown, 64 * 1024, f"{grown} bytes of Python memory kept over {rounds} rounds")
        self.assertEqual(sys.getrefcount(handler), rc_handler)
        self.assertEqual(len(tern._running), 0)


if __name__ == "__main__":
    unittest.main()
