"""Web hooks (tern_hub_add_hook(3)) through the binding: registering,
batches, signatures checked with hmac/hashlib, retries at the backoff
deadline, giving up, disabling and enabling, the challenge, restarts from a
store, the receiving side's checks, and bad arguments."""

import hashlib
import hmac
import json
import unittest

import tern

S = 1_000_000_000  # one second in ns
T0 = 1_000 * S     # the hubs' monotonic start
WALL0 = 1_700_000_000  # Unix seconds at T0
SECRET = b"s3cret"
TARGET = "https://example.test/hook"


def new_hub(**settings):
    hub = tern.Hub(seed=7, **settings)
    hub.set_wallclock(now=T0, wall_ns=WALL0 * S)
    return hub


def python_signature(secret, timestamp, body):
    """The X-Tern-Signature a receiver computes with the standard library."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class RegisterTest(unittest.TestCase):
    def test_add_list_info_remove(self):
        with new_hub() as hub:
            self.assertEqual(list(hub.hooks()), [])
            a = hub.add_hook(TARGET, SECRET, verified=True, now=T0)
            b = hub.add_hook(TARGET.encode() + b"/b", "other", now=T0)
            self.assertIsInstance(a, tern.Hook)
            self.assertGreater(a.id, 0)
            self.assertGreater(b.id, a.id)
            self.assertEqual(int(a), a.id)
            self.assertEqual(list(hub.hooks()), [a, b])
            self.assertEqual(hub.hook_ids(), [a.id, b.id])
            self.assertEqual(hub.hook(a.id), a)
            self.assertEqual(len({a, hub.hook(a.id), b}), 2)
            self.assertIn("Hook", repr(a))
            info = a.info()
            self.assertIsInstance(info, tern.HookInfo)
            self.assertEqual(info.id, a.id)
            self.assertEqual(info.target, TARGET.encode())
            self.assertEqual(info.state, tern.HookState.VERIFIED)
            self.assertEqual((info.failures, info.queued, info.outstanding, info.delivered,
                              info.dropped, info.attempts), (0, 0, 0, 0, 0, 0))
            self.assertNotIn(tern.HookState.VERIFIED, b.info().state)
            self.assertTrue(a.exists)
            a.remove()
            self.assertFalse(a.exists)
            self.assertFalse(hub.has_hook(a.id))
            self.assertFalse(hub.has_hook(0))
            self.assertEqual(list(hub.hooks()), [b])
            with self.assertRaises(tern.NotFoundError):
                a.info()
            with self.assertRaises(tern.NotFoundError):
                a.remove()
            with self.assertRaises(tern.NotFoundError):
                hub.hook(a.id)
            c = hub.add_hook(TARGET, SECRET, now=T0)
            self.assertGreater(c.id, b.id, "a removed id is not given again")

    def test_enums_and_constants(self):
        self.assertEqual(tern.EventType.HOOK_DROPPED, 32)
        self.assertEqual(tern.EventType.HOOK_DISABLED, 33)
        self.assertEqual(tern.EventType.HOOK_VERIFIED, 34)
        self.assertEqual(tern.HookKind.DELIVERY, 1)
        self.assertEqual(tern.HookKind.CHALLENGE, 2)
        self.assertEqual(tern.HOOK_NO_ANSWER, 0)
        self.assertEqual(tern.MAX_HOOK_TARGET, 2048)
        self.assertEqual(tern.MAX_HOOK_SECRET, 256)
        self.assertEqual(tern.MAX_HOOK_FIELDS, 32)
        self.assertGreater(tern.MAX_HOOK_KEY, 0)
        self.assertGreater(tern.MAX_HOOK_FIELD, 0)
        self.assertGreater(tern.MAX_HOOK_OBJECT, 0)


class DeliveryTest(unittest.TestCase):
    def test_batch_signature_and_success(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_items=2, object="user",
                                now=T0)
            self.assertIsNone(hub.next_hook_request(now=T0))
            hook.enqueue("u1", ["name", "picture"], time=11, data='{"v": 1}', now=T0)
            self.assertEqual(hub.expiry, T0 + 5 * S, "one entry: due after max_delay")
            self.assertIsNone(hub.next_hook_request(now=T0 + S))
            hook.enqueue(b"u2", (b"friends",), time=12, now=T0 + S)
            self.assertEqual(hook.info().queued, 2)
            req = hub.next_hook_request(now=T0 + S)
            self.assertIsInstance(req, tern.HookRequest)
            self.assertEqual(req.kind, tern.HookKind.DELIVERY)
            self.assertEqual((req.hook, req.attempt, req.entries), (hook.id, 1, 2))
            self.assertEqual(req.method, "POST")
            self.assertEqual(req.target, TARGET.encode())
            self.assertEqual(req.query, "")
            self.assertEqual(req.timestamp, WALL0 + 1)
            body = json.loads(req.body)
            self.assertEqual(body["object"], "user")
            self.assertEqual(body["delivery"], str(req.delivery))
            self.assertEqual(body["entry"], [
                {"id": "u1", "changed_fields": ["name", "picture"], "time": 11,
                 "data": {"v": 1}},
                {"id": "u2", "changed_fields": ["friends"], "time": 12}])
            h = req.headers
            self.assertEqual(h["Content-Type"], "application/json")
            self.assertEqual(h["X-Tern-Timestamp"], str(WALL0 + 1))
            self.assertEqual(h["X-Tern-Delivery"], str(req.delivery))
            self.assertEqual(h["X-Tern-Attempt"], "1")
            # the receiver's check, in plain Python
            want = python_signature(SECRET, h["X-Tern-Timestamp"], req.body)
            self.assertTrue(hmac.compare_digest(h["X-Tern-Signature"], want))
            # and with the library's
            tern.check_hook_signature(SECRET, h["X-Tern-Timestamp"], h["X-Tern-Signature"],
                                      req.body, now_s=WALL0 + 60)
            self.assertEqual(hook.info().outstanding, 1)
            self.assertEqual(list(hub.hook_requests(now=T0 + 100 * S)), [],
                             "one batch in flight at a time")
            hub.hook_done(req, 200, now=T0 + 2 * S)
            info = hook.info()
            self.assertEqual((info.delivered, info.queued, info.outstanding, info.attempts),
                             (2, 0, 0, 1))
            self.assertEqual(list(hub.events()), [], "success queues no event")
            with self.assertRaises(tern.NotFoundError):
                hub.hook_done(req, 200, now=T0 + 2 * S)  # answered twice

    def test_500_then_retry_at_the_backoff_deadline(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, retry_base=2,
                                retry_cap=60, now=T0)
            hook.enqueue("k", ["f"], time=1, now=T0)
            first = hub.next_hook_request(now=T0)
            self.assertEqual(first.attempt, 1)
            hub.hook_done(first, 500, now=T0)
            self.assertEqual(hook.info().outstanding, 1, "a retried batch stays outstanding")
            self.assertEqual(list(hub.events()), [])
            due = hub.expiry
            self.assertIsNotNone(due)
            self.assertTrue(T0 <= due <= T0 + 2 * S, "attempt 1 waits within [0, retry_base]")
            if due > T0:
                self.assertIsNone(hub.next_hook_request(now=due - 1), "not before the deadline")
            again = hub.next_hook_request(now=due)
            self.assertIsNotNone(again)
            self.assertEqual(again.attempt, 2)
            self.assertEqual(again.delivery, first.delivery, "same delivery id")
            self.assertEqual(again.body, first.body)
            self.assertEqual(again.headers["X-Tern-Attempt"], "2")
            # no answer at all (a transport error) retries too
            hub.hook_done(again, None, now=due)
            due2 = hub.expiry
            self.assertTrue(due <= due2 <= due + 4 * S, "attempt 2 waits within [0, 2 * base]")
            third = hub.next_hook_request(now=due2)
            self.assertEqual((third.attempt, third.delivery), (3, first.delivery))
            hub.hook_done((third.hook, third.delivery), 204, now=due2)
            info = hook.info()
            self.assertEqual((info.delivered, info.outstanding, info.attempts), (1, 0, 3))
            self.assertIsNone(hub.expiry)

    def test_429_honours_retry_after(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, now=T0)
            hook.enqueue("k", ["f"], time=1, now=T0)
            req = hub.next_hook_request(now=T0)
            hub.hook_done(req, 429, retry_after="120", now=T0)
            self.assertEqual(hub.expiry, T0 + 120 * S)
            req = hub.next_hook_request(now=T0 + 120 * S)
            hub.hook_done(req, 429, retry_after=30, now=T0 + 120 * S)  # int seconds
            self.assertEqual(hub.expiry, T0 + 150 * S)

    def test_400_gives_up(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, now=T0)
            hook.enqueue("a", ["f"], time=1, now=T0)
            hook.enqueue("b", ["f"], time=1, now=T0)
            req = hub.next_hook_request(now=T0)
            self.assertEqual(req.entries, 2)
            hub.hook_done(req, 400, body=b"bad request", now=T0)
            ev = hub.next_event()
            self.assertEqual(ev.type, tern.EventType.HOOK_DROPPED)
            self.assertEqual((ev.seq, ev.cookie, ev.count, ev.reason),
                             (hook.id, req.delivery, 2, 400))
            self.assertIsNone(hub.next_event())
            info = hook.info()
            self.assertEqual((info.dropped, info.delivered, info.outstanding, info.failures),
                             (2, 0, 0, 1))
            self.assertIsNone(hub.next_hook_request(now=T0 + 3600 * S), "nothing retried")

    def test_disable_and_enable(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, max_attempts=2,
                                disable_after=2, retry_cap=10, now=T0)
            now = T0
            for batch in range(2):
                hook.enqueue("k%d" % batch, ["f"], time=1, now=now)
                for attempt in (1, 2):
                    now += 3600 * S
                    req = hub.next_hook_request(now=now)
                    self.assertEqual(req.attempt, attempt)
                    hub.hook_done(req, 503, now=now)
                ev = hub.next_event()
                self.assertEqual(ev.type, tern.EventType.HOOK_DROPPED)
                self.assertEqual(ev.reason, 503)
            ev = hub.next_event()
            self.assertEqual(ev.type, tern.EventType.HOOK_DISABLED)
            self.assertEqual((ev.seq, ev.count, ev.cookie), (hook.id, 2, 0))
            self.assertIn(tern.HookState.DISABLED, hook.info().state)
            hook.enqueue("kept", ["f"], time=1, now=now)  # a disabled hook still queues
            self.assertIsNone(hub.next_hook_request(now=now + 100 * S))
            self.assertIsNone(hub.expiry)
            self.assertEqual(hook.info().queued, 1)
            hook.enable(now=now)
            info = hook.info()
            self.assertNotIn(tern.HookState.DISABLED, info.state)
            self.assertEqual(info.failures, 0)
            req = hub.next_hook_request(now=now)
            self.assertEqual(json.loads(req.body)["entry"][0]["id"], "kept")
            hub.hook_done(req, 200, now=now)
            hook.enable(now=now)  # enabling an enabled hook does nothing

    def test_coalesce(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, coalesce=True, now=T0)
            hook.enqueue("u1", ["name"], time=10, data="1", now=T0)
            hook.enqueue("u2", ["friends"], time=11, now=T0)
            hook.enqueue("u1", ["email"], time=15, data="[3]", now=T0)
            self.assertEqual(hook.info().queued, 2)
            req = hub.next_hook_request(now=T0 + 5 * S)
            self.assertEqual(json.loads(req.body)["entry"][0],
                             {"id": "u1", "changed_fields": ["name", "email"], "time": 15,
                              "data": [3]})

    def test_default_time_is_the_wall_clock(self):
        import time
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, now=T0)
            before = int(time.time())
            hook.enqueue("k", now=T0)
            entry = json.loads(hub.next_hook_request(now=T0).body)["entry"][0]
            self.assertEqual(entry["changed_fields"], [])
            self.assertTrue(before <= entry["time"] <= int(time.time()) + 1)

    def test_remove_with_a_request_out(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, now=T0)
            hook.enqueue("k", ["f"], time=1, now=T0)
            req = hub.next_hook_request(now=T0)
            hook.remove()
            with self.assertRaises(tern.NotFoundError):
                hub.hook_done(req, 200, now=T0)
            self.assertEqual(req.body[:1], b"{", "the request's copy outlives the hook")


class WallClockTest(unittest.TestCase):
    def test_add_hook_sets_a_missing_wall_clock(self):
        import time
        with tern.Hub() as hub:  # no set_wallclock
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0)
            hook.enqueue("k", ["f"], time=1)
            req = hub.next_hook_request()
            self.assertLess(abs(req.timestamp - time.time()), 5)
            tern.check_hook_signature(SECRET, req.headers["X-Tern-Timestamp"],
                                      req.headers["X-Tern-Signature"], req.body)
        with new_hub() as hub:  # a wall clock of the host's is kept
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, now=T0)
            hook.enqueue("k", ["f"], time=1, now=T0)
            self.assertEqual(hub.next_hook_request(now=T0).timestamp, WALL0)


class ChallengeTest(unittest.TestCase):
    def test_challenge_flow(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verify_token="tok en&1", max_delay=0, now=T0)
            hook.enqueue("k", ["f"], time=1, now=T0)
            req = hub.next_hook_request(now=T0)
            self.assertEqual(req.kind, tern.HookKind.CHALLENGE)
            self.assertEqual(req.method, "GET")
            self.assertEqual(req.body, b"")
            self.assertIn("hub.mode=subscribe", req.query)
            self.assertIsNone(hub.next_hook_request(now=T0), "no delivery while unverified")
            # the endpoint's side
            challenge = tern.check_hook_challenge(req.query, "tok en&1")
            self.assertIsInstance(challenge, str)
            self.assertTrue(challenge.isalnum())
            self.assertEqual(tern.check_hook_challenge(req.query.encode(), b"tok en&1"),
                             challenge)
            with self.assertRaises(tern.ProtocolError):
                tern.check_hook_challenge(req.query, "wrong")
            with self.assertRaises(tern.ProtocolError):
                tern.check_hook_challenge(
                    "hub.mode=unsubscribe&hub.challenge=a&hub.verify_token=")
            with self.assertRaises(tern.InvalidError):
                tern.check_hook_challenge("hub.mode=subscribe&hub.challenge=a")
            with self.assertRaises(tern.InvalidError):
                tern.check_hook_challenge("")
            # a wrong answer fails it
            hub.hook_done(req, 200, body=b"nope", now=T0)
            ev = hub.next_event()
            self.assertEqual(ev.type, tern.EventType.HOOK_VERIFIED)
            self.assertEqual((ev.seq, ev.reason), (hook.id, tern.ErrorCode.PROTO))
            self.assertIsNone(hub.next_hook_request(now=T0))
            # challenged again, answered right
            hook.verify(now=T0)
            req = hub.next_hook_request(now=T0)
            self.assertEqual(req.kind, tern.HookKind.CHALLENGE)
            challenge = tern.check_hook_challenge(req.query, "tok en&1")
            hub.hook_done(req, 200, body=challenge, now=T0)
            ev = hub.next_event()
            self.assertEqual((ev.type, ev.reason), (tern.EventType.HOOK_VERIFIED, 0))
            self.assertIn(tern.HookState.VERIFIED, hook.info().state)
            req = hub.next_hook_request(now=T0)
            self.assertEqual(req.kind, tern.HookKind.DELIVERY)
            with self.assertRaises(tern.StateError):
                hook.verify(now=T0)  # a batch is out


class SignatureTest(unittest.TestCase):
    BODY = b'{"object":"object","delivery":"1","entry":[]}'
    TS = "1700000010"

    def sig(self, secret=SECRET, ts=TS, body=BODY):
        return python_signature(secret, ts, body)

    def test_checks(self):
        check = tern.check_hook_signature
        check(SECRET, self.TS, self.sig(), self.BODY, now_s=1700000020)
        check("s3cret", int(self.TS), self.sig().encode(), bytearray(self.BODY),
              now_s=1700000020, tolerance=10)
        with self.assertRaises(tern.ProtocolError):
            check(SECRET, self.TS, self.sig(), self.BODY + b" ", now_s=1700000020)
        with self.assertRaises(tern.ProtocolError):
            check(b"other", self.TS, self.sig(), self.BODY, now_s=1700000020)
        with self.assertRaises(tern.ProtocolError):
            check(SECRET, "1700000011", self.sig(), self.BODY, now_s=1700000020)
        with self.assertRaises(tern.StateError):
            check(SECRET, self.TS, self.sig(), self.BODY, now_s=1700000311)  # a replay
        with self.assertRaises(tern.StateError):
            check(SECRET, self.TS, self.sig(), self.BODY, now_s=1700000020, tolerance=5)
        with self.assertRaises(tern.InvalidError):
            check(SECRET, self.TS, self.sig()[1:], self.BODY, now_s=1700000020)
        with self.assertRaises(tern.InvalidError):
            check(SECRET, "17x", self.sig(), self.BODY, now_s=1700000020)
        with self.assertRaises(tern.ProtocolError):
            check(b"", self.TS, self.sig(), self.BODY, now_s=1700000020)
        check(SECRET, self.TS, python_signature(SECRET, self.TS, b""), None,
              now_s=1700000020)  # an empty body
        # the default now_s is the wall clock: a 2023 timestamp is stale
        with self.assertRaises(tern.StateError):
            check(SECRET, self.TS, self.sig(), self.BODY)
        import time
        ts = str(int(time.time()))
        check(SECRET, ts, self.sig(ts=ts), self.BODY)


class StoreTest(unittest.TestCase):
    def test_hooks_survive_a_restart(self):
        store = tern.DictStore()
        hub = new_hub()
        hub.set_store(store, now=T0)
        hook = hub.add_hook(TARGET, SECRET, verified=True, disable_after=0, now=T0)
        hook.enqueue("k1", ["f"], time=1, now=T0)
        hook.enqueue("k2", ["g"], time=2, data='"x"', now=T0)
        hub.flush()
        hub.close()
        with new_hub() as hub2:
            hub2.set_store(store, now=T0 + S)
            hooks = list(hub2.hooks())
            self.assertEqual([h.id for h in hooks], [hook.id])
            info = hooks[0].info()
            self.assertEqual((info.target, info.queued), (TARGET.encode(), 2))
            self.assertIn(tern.HookState.VERIFIED, info.state)
            req = hub2.next_hook_request(now=T0 + 10 * S)
            self.assertEqual([e["id"] for e in json.loads(req.body)["entry"]], ["k1", "k2"])
            hub2.hook_done(req, 200, now=T0 + 10 * S)


class BadArgumentsTest(unittest.TestCase):
    def test_add_hook(self):
        with new_hub() as hub:
            for kw, exc in (({"max_items": 0}, tern.InvalidError),
                            ({"max_items": -1}, ValueError),
                            ({"max_items": 2**40}, ValueError),
                            ({"max_items": "3"}, TypeError),
                            ({"max_bytes": 10}, tern.InvalidError),
                            ({"max_delay": -1}, ValueError),
                            ({"max_delay": "soon"}, TypeError),
                            ({"retry_base": 10, "retry_cap": 1}, tern.InvalidError),
                            ({"max_inflight": 0}, tern.InvalidError),
                            ({"object": 'a"b'}, tern.InvalidError),
                            ({"object": 5}, TypeError),
                            ({"object": "a\0b"}, tern.InvalidError),
                            ({"verify_token": 5}, TypeError),
                            ({"verify_token": "t" * 257}, tern.TooLargeError),
                            ({"no_such_option": 1}, TypeError),
                            ({"now": -1}, ValueError),
                            ({"now": "x"}, TypeError)):
                with self.assertRaises(exc, msg=str(kw)):
                    hub.add_hook(TARGET, SECRET, **kw)
            with self.assertRaises(tern.InvalidError):
                hub.add_hook("", SECRET)
            with self.assertRaises(tern.InvalidError):
                hub.add_hook(TARGET, b"")
            with self.assertRaises(tern.TooLargeError):
                hub.add_hook("u" * 2049, SECRET)
            with self.assertRaises(tern.TooLargeError):
                hub.add_hook(TARGET, "s" * 257)
            with self.assertRaises(TypeError):
                hub.add_hook(TARGET)
            with self.assertRaises(TypeError):
                hub.add_hook(5, SECRET)
            with self.assertRaises(TypeError):
                hub.add_hook(TARGET, None)
            with self.assertRaises(TypeError):
                hub._add_hook(TARGET, SECRET, TARGET)
            with self.assertRaises(TypeError):
                hub._add_hook(TARGET, SECRET, target=TARGET)
            self.assertEqual(list(hub.hooks()), [], "refused hooks left nothing")
            # InvalidError is a ValueError too
            with self.assertRaises(ValueError):
                hub.add_hook(TARGET, SECRET, max_items=0)

    def test_enqueue(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_queued=2, now=T0)
            before = hook.info()
            for args, kw, exc in (
                    (("",), {}, tern.InvalidError),
                    (("k", [""]), {}, tern.InvalidError),
                    ((b"\xff",), {}, tern.InvalidError),
                    (("k", ["f"]), {"data": '{"a":}'}, tern.InvalidError),
                    (("k", ["f"]), {"data": "1 2"}, tern.InvalidError),
                    (("k", ["f"]), {"data": ""}, tern.InvalidError),
                    (("k" * 256,), {}, tern.TooLargeError),
                    (("k", ["f" * 65]), {}, tern.TooLargeError),
                    (("k", ["f%d" % i for i in range(33)]), {}, tern.TooLargeError),
                    (("k", "name"), {}, TypeError),
                    (("k", [5]), {}, TypeError),
                    (("k", 5), {}, TypeError),
                    (("k", ["a\0b"]), {}, tern.InvalidError),
                    ((5,), {}, TypeError),
                    (("k",), {"time": -1}, ValueError),
                    (("k",), {"time": 1.5}, TypeError),
                    (("k",), {"data": 5}, TypeError)):
                with self.assertRaises(exc, msg=repr((args, kw))):
                    hook.enqueue(*args, now=T0, **kw)
            self.assertEqual(hook.info(), before, "refused entries changed nothing")
            with self.assertRaises(tern.NotFoundError):
                hub.hook_enqueue(hook.id + 100, "k", now=T0)
            with self.assertRaises(ValueError):
                hub.hook_enqueue(0, "k", now=T0)
            with self.assertRaises(ValueError):
                hub.hook_enqueue(-1, "k", now=T0)
            with self.assertRaises(TypeError):
                hub.hook_enqueue("1", "k", now=T0)
            hook.enqueue("a", now=T0)
            hook.enqueue("b", now=T0)
            with self.assertRaises(tern.FullError):
                hook.enqueue("c", now=T0)

    def test_hook_done(self):
        with new_hub() as hub:
            hook = hub.add_hook(TARGET, SECRET, verified=True, max_delay=0, now=T0)
            hook.enqueue("k", ["f"], time=1, now=T0)
            req = hub.next_hook_request(now=T0)
            for status in (99, 600, -1, 2**70, 1):
                with self.assertRaises(tern.InvalidError, msg=status):
                    hub.hook_done(req, status, now=T0)
            for status in ("200", 200.0, True, b"200"):
                with self.assertRaises(TypeError, msg=repr(status)):
                    hub.hook_done(req, status, now=T0)
            for request in (None, 5, "req", (1,), (1, 2, 3), [req.hook, req.delivery]):
                with self.assertRaises(TypeError, msg=repr(request)):
                    hub.hook_done(request, 200, now=T0)
            with self.assertRaises(ValueError):
                hub.hook_done((0, req.delivery), 200, now=T0)
            with self.assertRaises(tern.NotFoundError):
                hub.hook_done((req.hook, req.delivery + 1), 200, now=T0)
            with self.assertRaises(tern.NotFoundError):
                hub.hook_done((req.hook + 1, req.delivery), 200, now=T0)
            with self.assertRaises(TypeError):
                hub.hook_done(req, 200, body=5, now=T0)
            with self.assertRaises(TypeError):
                hub.hook_done(req, 200, retry_after=1.5, now=T0)
            with self.assertRaises(TypeError):
                hub.hook_done(req)
            self.assertEqual(hook.info().outstanding, 1, "still waiting for its answer")
            hub.hook_done(req, 200, retry_after=b"junk", body=memoryview(b"ok"), now=T0)
            self.assertEqual(hook.info().delivered, 1)

    def test_ids_and_closed_hub(self):
        hub = new_hub()
        hook = hub.add_hook(TARGET, SECRET, now=T0)
        for bad, exc in ((0, ValueError), (-5, ValueError), (2**64, ValueError),
                         ("1", TypeError), (None, TypeError), (True, TypeError)):
            for call in (hub.hook_info, hub.remove_hook, hub.enable_hook, hub.verify_hook):
                with self.assertRaises(exc, msg=(call.__name__, bad)):
                    call(bad)
        with self.assertRaises(tern.NotFoundError):
            hub.enable_hook(hook.id + 1, now=T0)
        with self.assertRaises(tern.NotFoundError):
            hub.verify_hook(hook.id + 1, now=T0)
        with self.assertRaises(tern.NotFoundError):
            hub.hook_info(hook.id + 1)
        with self.assertRaises(TypeError):
            hub.next_hook_request(now="x")
        hub.close()
        for call in (lambda: hub.add_hook(TARGET, SECRET), lambda: hook.info(),
                     lambda: hook.enqueue("k"), lambda: hook.remove(), lambda: hook.enable(),
                     lambda: hook.verify(), lambda: list(hub.hooks()),
                     lambda: hub.next_hook_request(), lambda: hub.hook_done((1, 1), 200),
                     lambda: hook.exists):
            with self.assertRaises(tern.ClosedError):
                call()


class ReadmeTest(unittest.TestCase):
    def test_readme_hooks_example_runs(self):
        import os
        import re
        readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
        with open(readme) as f:
            text = f.read()
        section = text[text.index("## Web hooks"):]
        host, endpoint = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
        posted = []

        def http_post(target, body, headers):
            posted.append((target, body, headers))
            return 200, None, b""

        with tern.Hub() as hub:
            env = {"hub": hub, "tern": tern, "http_post": http_post}
            exec(compile(host, "README.md", "exec"), env)
            hook = env["hook"]
            self.assertEqual(hook.info().queued, 1, "waits for max_delay")
            due = hub.expiry
            req = hub.next_hook_request(now=due)
            secret, headers, body = b"secret", req.headers, req.body
            query_string = "hub.mode=subscribe&hub.challenge=abc&hub.verify_token=t"
            exec(compile(endpoint, "README.md", "exec"),
                 {"tern": tern, "secret": secret, "headers": headers, "body": body,
                  "query_string": query_string, "verify_token": "t"})
            hub.hook_done(req, 200, now=due)
            self.assertEqual(hook.info().delivered, 1)


if __name__ == "__main__":
    unittest.main()
