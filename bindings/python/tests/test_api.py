"""The tern package: every public class, error paths, bad arguments."""

import enum
import gc
import os
import pickle
import shutil
import tempfile
import unittest
import weakref

import tern

S = 1_000_000_000  # one second in ns


def handshake(hub, key, now=1, **client_settings):
    """A Conn bound to key by a real Client's HELLO, WELCOME delivered."""
    client = tern.Client(key, seed=3, now=now, **client_settings)
    ev = client.next_event()
    assert ev.type == tern.ClientEventType.CONNECT
    client.connect(now=now)
    conn = hub.open_conn(now=now)
    conn.read(client.write(now=now), now=now)
    client.read(conn.write(now=now), now=now)
    ev = client.next_event()
    assert ev.type == tern.ClientEventType.CONNECTED, ev
    return conn, client


def shuttle(conn, client, now=1):
    """Moves bytes both ways until both sides are quiet; returns the
    client's events."""
    events = []
    for _ in range(100):
        moved = False
        data = conn.write(now=now)
        if data:
            client.read(data, now=now)
            moved = True
        while (ev := client.next_event()) is not None:
            events.append(ev)
        data = client.write(now=now)
        if data:
            conn.read(data, now=now)
            moved = True
        if not moved:
            return events
    raise AssertionError("the link never went quiet")


def send_by_peeks(test, side, ref):
    """Sends everything a Conn or Client has through a socket that takes 7
    bytes at a time, and returns the bytes sent, which must be what write()
    gives its twin |ref| (more than one peek's worth).  Along the way: a
    peek gives the same bytes until consumed; write and write_into wait
    while bytes are held; no peek is over CONN_PEEK_MAX; there are several;
    then nothing is held and write works again."""
    expected = b""
    while data := ref.write(now=1):
        expected += data
    test.assertGreater(len(expected), tern.CONN_PEEK_MAX)
    sent = bytearray()
    peeks = 0
    while data := side.peek_output(now=1):
        peeks += 1
        test.assertIsInstance(data, bytes)
        test.assertLessEqual(len(data), tern.CONN_PEEK_MAX)
        while data:
            test.assertTrue(side.want_write)
            test.assertEqual(side.peek_output(now=1), data)
            with test.assertRaises(tern.StateError):
                side.write(now=1)
            with test.assertRaises(tern.StateError):
                side.write_into(bytearray(64), now=1)
            taken = data[:7]
            side.consume(len(taken))
            sent += taken
            data = data[len(taken):]
    test.assertGreater(peeks, 1)
    test.assertFalse(side.want_write)
    test.assertEqual(side.peek_output(now=1), b"")
    test.assertEqual(side.write(now=1), b"")
    test.assertEqual(bytes(sent), expected)
    return bytes(sent)


def check_consume_errors(test, side, data):
    """A Conn or Client holding |data| (over 2 bytes) from a peek refuses a
    consume of more, and bad arguments, taking nothing; then takes 2."""
    with test.assertRaises(tern.InvalidError) as cm:
        side.consume(len(data) + 1)
    test.assertIsInstance(cm.exception, ValueError)
    test.assertEqual(cm.exception.code, tern.ErrorCode.INVALID)
    for bad in (-1, 2**70):
        with test.assertRaises(ValueError):
            side.consume(bad)
    for bad in ("1", 1.0, None, True):
        with test.assertRaises(TypeError):
            side.consume(bad)
    with test.assertRaises(TypeError):
        side.peek_output(1)  # now is keyword-only
    test.assertEqual(side.peek_output(now=1), data)  # nothing was taken
    side.consume(2)


class ModuleTest(unittest.TestCase):
    def test_version(self):
        self.assertEqual(tern.version(), tern.__version__)
        self.assertEqual(tern.version_info()[:2], (0, 3))

    def test_strerror_and_fatal(self):
        self.assertEqual(tern.strerror(0), "success")
        self.assertEqual(tern.strerror(12345), "unknown error")
        self.assertEqual(tern.strerror(2**80), "unknown error")
        self.assertTrue(tern.err_is_fatal(tern.ErrorCode.CLOSED))
        self.assertFalse(tern.err_is_fatal(tern.ErrorCode.FULL))
        self.assertFalse(tern.err_is_fatal(-2**70))
        with self.assertRaises(TypeError):
            tern.strerror("x")

    def test_shard_of(self):
        for key in (b"alice", "alice", bytearray(b"alice"), memoryview(b"alice")):
            self.assertEqual(tern.shard_of(key, 16), tern.shard_of(b"alice", 16))
        self.assertEqual(tern.shard_of(b"x", 0), 0)
        self.assertTrue(all(0 <= tern.shard_of(b"k%d" % i, 7) < 7 for i in range(100)))
        with self.assertRaises(ValueError):
            tern.shard_of(b"x", 2**32)
        with self.assertRaises(TypeError):
            tern.shard_of(5, 2)

    def test_pattern_and_filter_check(self):
        tern.topic_pattern_check("trade.*.nyse")
        tern.topic_pattern_check(b"order.#")
        with self.assertRaises(tern.InvalidError) as cm:
            tern.topic_pattern_check("a..b")
        self.assertEqual(cm.exception.position, 2)
        with self.assertRaises(tern.InvalidError):
            tern.topic_pattern_check("")
        with self.assertRaises(tern.InvalidError):
            tern.topic_pattern_check("a\0b")
        tern.filter_check("price > 100 and status in (a, b)")
        with self.assertRaises(tern.InvalidError) as cm:
            tern.filter_check("price >")
        self.assertIsInstance(cm.exception.position, int)
        with self.assertRaises(tern.TooLargeError):
            tern.filter_check("a = " + "x" * 2000)
        with self.assertRaises(TypeError):
            tern.filter_check(None)

    def test_parse_resume_and_content_type(self):
        self.assertEqual(tern.parse_resume("12.34"), (12, 34))
        self.assertEqual(tern.parse_resume("34"), (0, 34))
        for bad in ("", "x", "1.", "-1", "1.2.3", "99999999999999999999999"):
            with self.assertRaises(tern.InvalidError, msg=bad):
                tern.parse_resume(bad)
        self.assertEqual(tern.framing_content_type(tern.Framing.SSE), "text/event-stream")
        self.assertEqual(tern.framing_content_type(tern.Framing.NDJSON), "application/x-ndjson")
        self.assertIsNone(tern.framing_content_type(tern.Framing.BINARY))
        self.assertIsNone(tern.framing_content_type(2**70))

    def test_errors(self):
        for cls, code in ((tern.InvalidError, -501), (tern.NoMemoryError, -502),
                          (tern.TooLargeError, -503), (tern.DuplicateError, -504),
                          (tern.FullError, -505), (tern.NotFoundError, -506),
                          (tern.ProtocolError, -507), (tern.ClosedError, -508),
                          (tern.StoreError, -509), (tern.LimitError, -510),
                          (tern.StateError, -511)):
            e = cls("why")
            self.assertIsInstance(e, tern.Error)
            self.assertEqual(e.code, code)
            self.assertEqual(e.message, "why")
            e2 = pickle.loads(pickle.dumps(e))
            self.assertEqual((type(e2), e2.code, e2.message), (cls, code, "why"))
        self.assertTrue(issubclass(tern.InvalidError, ValueError))
        self.assertTrue(issubclass(tern.TooLargeError, ValueError))
        self.assertTrue(issubclass(tern.NotFoundError, LookupError))
        self.assertTrue(issubclass(tern.NoMemoryError, MemoryError))
        self.assertEqual(tern.Error("x", -999).code, -999)


class HubTest(unittest.TestCase):
    def test_settings(self):
        with tern.Hub(seed=5, max_conns=3, inflight_window=8, default_ttl=1.5,
                      overflow=(tern.Overflow.REFUSE,) * 3, trace=True,
                      max_pool_bytes=0, topic_rate=10) as hub:
            self.assertIsInstance(hub.epoch, int)
            self.assertFalse(hub.closed)
        self.assertTrue(hub.closed)
        # the same seed draws the same epoch
        with tern.Hub(seed=5) as a, tern.Hub(seed=5) as b:
            self.assertEqual(a.epoch, b.epoch)

    def test_bad_settings(self):
        with self.assertRaises(TypeError):
            tern.Hub(1)
        with self.assertRaises(TypeError):
            tern.Hub(nope=1)
        with self.assertRaises(TypeError):
            tern.Hub(max_conns="3")
        with self.assertRaises(TypeError):
            tern.Hub(max_conns=True)
        with self.assertRaises(ValueError):
            tern.Hub(max_conns=-1)
        with self.assertRaises(ValueError):
            tern.Hub(max_conns=2**32)
        with self.assertRaises(ValueError):
            tern.Hub(default_ttl=-1)
        with self.assertRaises(ValueError):
            tern.Hub(default_ttl=float("nan"))
        with self.assertRaises(ValueError):
            tern.Hub(overflow=(0, 1))
        with self.assertRaises(ValueError):
            tern.Hub(overflow=(0, 1, 3))
        with self.assertRaises(tern.InvalidError):
            tern.Hub(max_conns=0)
        with self.assertRaises(tern.InvalidError):
            tern.Hub(heartbeat_interval=10, liveness_timeout=5)

    def test_closed_hub_raises(self):
        hub = tern.Hub()
        hub.close()
        hub.close()  # twice is fine
        calls = [
            lambda: hub.publish("k", b"x"), lambda: hub.publish_batch("k", [b"x"]),
            lambda: hub.publish_many(["k"], b"x"), lambda: hub.stats(),
            lambda: hub.next_event(), lambda: hub.next_ready(), lambda: hub.epoch,
            lambda: hub.expiry, lambda: hub.handle_expiry(), lambda: hub.open_conn(),
            lambda: hub.open_stream("k"), lambda: hub.session_info("k"),
            lambda: hub.session_keys(), lambda: hub.delete_session("k"),
            lambda: hub.purge_session("k"), lambda: hub.cancel("k", "i"),
            lambda: hub.ack("k", 1), lambda: hub.subscribe("k", "a"),
            lambda: hub.unsubscribe("k", "a"), lambda: hub.create_topic("a"),
            lambda: hub.topic("a"), lambda: hub.flush(), lambda: hub.goaway_all(),
            lambda: hub.set_store(tern.DictStore()), lambda: hub.set_wallclock(),
            lambda: hub.store_done(1), lambda: hub.__enter__(),
        ]
        for call in calls:
            with self.assertRaises(tern.ClosedError):
                call()
        self.assertEqual(repr(hub), "<tern.Hub closed>")

    def test_publish(self):
        with tern.Hub(seed=1) as hub:
            r = hub.publish("alice", b"hello", id="m1", priority=tern.Priority.HIGH,
                            ttl=30, content_type="text/plain", attrs={"a": "1"},
                            cookie=7, now=1)
            self.assertEqual(r.id, b"m1")
            self.assertEqual(r.outcome, tern.PublishOutcome.QUEUED)
            self.assertEqual(r.evicted, 0)
            gen = hub.publish(b"alice", bytearray(b"x"), now=1).id
            self.assertEqual(len(gen), 32)
            hub.publish(memoryview(b"alice"), memoryview(b"abcdef")[1:3], now=1)
            hub.publish("alice", "text payload", attrs=[("k", "v")], now=1)
            info = hub.session_info("alice")
            self.assertEqual((info.key, info.pending, info.pending_bytes), (b"alice", 4, 20))
            self.assertEqual(hub.stats().published, 4)
            with self.assertRaises(tern.DuplicateError) as cm:
                hub.publish("alice", b"again", id="m1", now=1)
            self.assertEqual(cm.exception.id, b"m1")
            r = hub.publish("alice", b"c1", collapse_key="score", now=1)
            r = hub.publish("alice", b"c2", collapse_key="score", now=1)
            self.assertTrue(r.outcome & tern.PublishOutcome.REPLACED)

    def test_publish_bad_arguments(self):
        with tern.Hub() as hub:
            bad = [
                (TypeError, lambda: hub.publish("k")),
                (TypeError, lambda: hub.publish("k", 5)),
                (TypeError, lambda: hub.publish(5, b"x")),
                (TypeError, lambda: hub.publish("k", b"x", nope=1)),
                (TypeError, lambda: hub.publish("k", b"x", 1)),
                (TypeError, lambda: hub.publish("k", b"x", id=5)),
                (TypeError, lambda: hub.publish("k", b"x", content_type=b"x"[0])),
                (TypeError, lambda: hub.publish("k", b"x", attrs=5)),
                (TypeError, lambda: hub.publish("k", b"x", attrs=[("a",)])),
                (TypeError, lambda: hub.publish("k", b"x", attrs={"a": 1})),
                (TypeError, lambda: hub.publish("k", b"x", now="now")),
                (TypeError, lambda: hub.publish("k", b"x", ttl="1")),
                (ValueError, lambda: hub.publish("k", b"x", now=-1)),
                (ValueError, lambda: hub.publish("k", b"x", priority=3)),
                (ValueError, lambda: hub.publish("k", b"x", ttl=-0.5)),
                (ValueError, lambda: hub.publish("k", b"x", cookie=-1)),
                (tern.InvalidError, lambda: hub.publish("", b"x")),
                (tern.InvalidError, lambda: hub.publish("k", b"x", attrs={"a\0": "b"})),
                (tern.InvalidError, lambda: hub.publish("k", b"x", content_type="a\0")),
                (tern.TooLargeError, lambda: hub.publish("k" * 129, b"x")),
                (tern.TooLargeError, lambda: hub.publish("k", b"x", id="i" * 65)),
                (tern.TooLargeError, lambda: hub.publish("k", b"x", collapse_key="c" * 65)),
                (tern.TooLargeError, lambda: hub.publish("k", b"x", attrs={"a" * 65: "b"})),
                (tern.TooLargeError, lambda: hub.publish("k", b"x", attrs={"a": "b" * 257})),
                (tern.TooLargeError, lambda: hub.publish("k", b"x", attrs=[("a", "b")] * 9)),
                (tern.TooLargeError, lambda: hub.publish("k", b"x", content_type="c" * 129)),
                (tern.TooLargeError, lambda: hub.publish("k", b"x" * (1024 * 1024 + 1))),
            ]
            for exc, call in bad:
                with self.assertRaises(exc):
                    call()
            # nothing changed
            self.assertEqual(hub.stats().published, 0)

    def test_full(self):
        with tern.Hub(max_pending=1, retry_after=2.5,
                      overflow=(tern.Overflow.REJECT,) * 3) as hub:
            hub.publish("k", b"1", now=1)
            with self.assertRaises(tern.FullError) as cm:
                hub.publish("k", b"2", now=1)
            self.assertEqual(cm.exception.retry_after, 2.5)
            self.assertTrue(cm.exception.outcome & tern.PublishOutcome.REJECTED)
        with tern.Hub(max_pending=1, overflow=(tern.Overflow.REFUSE,) * 3) as hub:
            hub.publish("k", b"1", now=1)
            with self.assertRaises(tern.FullError) as cm:
                hub.publish("k", b"2", now=1)
            self.assertTrue(cm.exception.outcome & tern.PublishOutcome.REFUSED)
            self.assertEqual(hub.session_info("k").dropped, 1)
        with tern.Hub(max_pending=1) as hub:  # EVICT
            hub.publish("k", b"1", now=1)
            r = hub.publish("k", b"2", now=1)
            self.assertEqual(r.evicted, 1)
            self.assertTrue(r.outcome & tern.PublishOutcome.EVICTED)

    def test_limit(self):
        with tern.Hub(max_sessions=1) as hub:
            hub.publish("a", b"1", now=1)
            with self.assertRaises(tern.LimitError):
                hub.publish("b", b"1", now=1)

    def test_publish_batch(self):
        with tern.Hub(max_payload=10) as hub:
            self.assertEqual(hub.publish_batch("k", [b"a", bytearray(b"b"), "c"], now=1), 3)
            self.assertEqual(hub.publish_batch("k", (), now=1), 0)
            with self.assertRaises(tern.TooLargeError) as cm:
                hub.publish_batch("k", [b"d", b"e" * 11, b"f"], now=1)
            self.assertEqual(cm.exception.index, 1)
            with self.assertRaises(TypeError) as cm:
                hub.publish_batch("k", [b"g", None], now=1)
            self.assertEqual(cm.exception.index, 1)
            with self.assertRaises(TypeError):
                hub.publish_batch("k", 5)
            with self.assertRaises(TypeError):
                hub.publish_batch("k", [b"x"], id="no ids in a batch")
            self.assertEqual(hub.session_info("k").pending, 5)  # a, b, c, d, g

    def test_publish_many(self):
        with tern.Hub(max_sessions=3) as hub:
            queued, mid, failed = hub.publish_many(["a", b"b", "c", "d" * 200], b"fan", id="f1", now=1)
            self.assertEqual((queued, mid), (3, b"f1"))
            self.assertEqual(failed, {b"d" * 200: tern.ErrorCode.TOO_LARGE})
            queued, mid, failed = hub.publish_many(["a", "zz"], b"fan", id="f1", now=1)
            self.assertEqual(queued, 0)
            self.assertEqual(failed, {b"a": tern.ErrorCode.DUPLICATE, b"zz": tern.ErrorCode.LIMIT})
            with self.assertRaises(TypeError):
                hub.publish_many([1], b"x")
            with self.assertRaises(TypeError):
                hub.publish_many(5, b"x")

    def test_expiry_and_events(self):
        with tern.Hub(trace=True) as hub:
            self.assertIsNone(hub.expiry)
            hub.publish("k", b"x", id="m", ttl=1, cookie=9, now=0)
            ev = hub.next_event()
            self.assertEqual((ev.type, ev.session_key, ev.msg_id, ev.cookie),
                             (tern.EventType.ACCEPTED, b"k", b"m", 9))
            self.assertIsNone(ev.conn)
            self.assertLessEqual(hub.expiry, S)
            hub.handle_expiry(now=2 * S)
            types = [e.type for e in hub.events()]
            self.assertIn(tern.EventType.EXPIRED, types)
            self.assertEqual(hub.stats().expired, 1)
            self.assertIsNone(hub.next_event())


class ConnTest(unittest.TestCase):
    def test_round_trip(self):
        with tern.Hub(seed=1) as hub:
            hub.publish("alice", b"low", priority=tern.Priority.LOW, now=1)
            hub.publish("alice", b"high", id="h", priority=tern.Priority.HIGH,
                        attrs={"k": "v"}, content_type="text/plain", now=1)
            conn, client = handshake(hub, "alice")
            self.assertEqual(conn.session_key, b"alice")
            self.assertEqual(conn.framing, tern.Framing.BINARY)
            self.assertIs(conn.hub, hub)
            msgs = [e for e in shuttle(conn, client) if e.type == tern.ClientEventType.MESSAGE]
            self.assertEqual([m.payload for m in msgs], [b"high", b"low"])
            self.assertEqual(msgs[0].attrs, {"k": "v"})
            self.assertEqual(msgs[0].content_type, "text/plain")
            self.assertEqual(msgs[0].priority, tern.Priority.HIGH)
            self.assertEqual(msgs[0].id, b"h")
            client.handle_expiry(now=2 * S)  # the ack delay passes
            shuttle(conn, client, now=2 * S)
            self.assertEqual(hub.stats().acked, 2)
            info = conn.info()
            self.assertFalse(info.closed)
            self.assertEqual(info.inflight, 0)
            conn.close()
            client.release()

    def test_write_into(self):
        with tern.Hub() as hub:
            conn, client = handshake(hub, "k")
            hub.publish_batch("k", [b"m%d" % i for i in range(10)], now=1)
            self.assertTrue(conn.want_write)
            buf = bytearray(4096)
            n = conn.write_into(memoryview(buf)[100:], now=1)
            self.assertGreater(n, 10 * 3)
            self.assertFalse(conn.want_write)
            client.read(memoryview(buf)[100:100 + n], now=1)
            got = [e.payload for e in iter(client.next_event, None)
                   if e.type == tern.ClientEventType.MESSAGE]
            self.assertEqual(got, [b"m%d" % i for i in range(10)])
            self.assertEqual(conn.write_into(bytearray(0), now=1), 0)
            with self.assertRaises(TypeError):
                conn.write_into(b"read-only bytes")
            with self.assertRaises(TypeError):
                conn.write_into("str")
            with self.assertRaises(ValueError):
                conn.write(size=0)

    def test_peek_output_and_consume(self):
        """A send loop whose socket takes 7 bytes at a time sends exactly
        what write() gives on an identical hub."""
        payloads = [b"%03d" % i + b"x" * 997 for i in range(40)]  # > CONN_PEEK_MAX
        sides = []
        for _ in range(2):
            hub = tern.Hub(seed=1)
            self.addCleanup(hub.close)
            conn, client = handshake(hub, "k")
            hub.publish_batch("k", payloads, now=1)
            sides.append((hub, conn, client))
        (_, conn, client), (_, ref_conn, _) = sides
        sent = send_by_peeks(self, conn, ref_conn)
        client.read(sent, now=1)
        got = [e.payload for e in iter(client.next_event, None)
               if e.type == tern.ClientEventType.MESSAGE]
        self.assertEqual(got, payloads)

    def test_consume_errors(self):
        with tern.Hub() as hub:
            conn, _ = handshake(hub, "k")
            with self.assertRaises(tern.InvalidError):
                conn.consume(1)  # nothing held
            conn.consume(0)
            hub.publish("k", b"hello", now=1)
            data = conn.peek_output(now=1)
            self.assertTrue(data)
            check_consume_errors(self, conn, data)
            self.assertEqual(conn.peek_output(now=1), data[2:])
            conn.consume(len(data) - 2)
            self.assertEqual(conn.peek_output(now=1), b"")

    def test_peek_output_closed(self):
        with tern.Hub() as hub:
            conn, client = handshake(hub, "k")
            conn.goaway(tern.GoawayReason.RESTART, now=1)
            self.assertTrue(conn.closed)
            data = conn.peek_output(now=1)  # the GOAWAY is still sent
            self.assertTrue(data)
            conn.consume(len(data))
            with self.assertRaises(tern.ClosedError):
                conn.peek_output(now=1)  # closed and everything consumed
            with self.assertRaises(tern.InvalidError):
                conn.consume(1)
            client.read(data, now=1)
            ev = client.next_event()
            self.assertEqual((ev.type, ev.reason), (tern.ClientEventType.DISCONNECTED,
                                                    tern.GoawayReason.RESTART))
            # held bytes go with the connection
            conn2, _ = handshake(hub, "k2")
            hub.publish("k2", b"x" * 100, now=1)
            self.assertTrue(conn2.peek_output(now=1))
            conn2.close()
            for call in (lambda: conn2.peek_output(now=1), lambda: conn2.consume(0)):
                with self.assertRaises(tern.ClosedError):
                    call()

    def test_protocol_error_closes(self):
        with tern.Hub() as hub:
            conn = hub.open_conn(now=1)
            with self.assertRaises(tern.ProtocolError):
                conn.read(b"\xff\x01\x00", now=1)
            self.assertTrue(conn.closed)
            ev = hub.next_event()
            self.assertEqual(ev.type, tern.EventType.CONN_CLOSED)
            self.assertIs(ev.conn, conn)
            self.assertEqual(ev.reason, tern.GoawayReason.PROTO)
            conn.write(now=1)  # the GOAWAY
            with self.assertRaises(tern.ClosedError):
                conn.write(now=1)
            with self.assertRaises(tern.ClosedError):
                conn.read(b"x", now=1)
            with self.assertRaises(TypeError):
                conn.read(None)

    def test_conn_lifetime(self):
        hub = tern.Hub()
        conn = hub.open_conn(now=1)
        ref = weakref.ref(hub)
        conn.data = {"socket": "mine"}
        del hub
        gc.collect()
        self.assertIsNotNone(ref())  # the Conn keeps its Hub alive
        self.assertEqual(conn.data, {"socket": "mine"})
        self.assertFalse(conn.closed)
        conn.hub.close()  # closing the hub invalidates the conn
        self.assertTrue(conn.closed)
        self.assertTrue(conn.released)
        for call in (lambda: conn.write(), lambda: conn.read(b"x"),
                     lambda: conn.write_into(bytearray(8)), lambda: conn.info(),
                     lambda: conn.want_write, lambda: conn.accept(),
                     lambda: conn.goaway(), lambda: conn.allow_publish(),
                     lambda: conn.session_key, lambda: conn.__enter__(),
                     lambda: conn.peek_output(), lambda: conn.consume(0)):
            with self.assertRaises(tern.ClosedError):
                call()
        conn.close()
        del conn
        gc.collect()
        self.assertIsNone(ref())

    def test_conn_close_and_with(self):
        with tern.Hub() as hub:
            with hub.open_conn(now=1) as conn:
                self.assertEqual(hub.stats().conns, 1)
            self.assertTrue(conn.released)
            self.assertEqual(hub.stats().conns, 0)
            with self.assertRaises(tern.ClosedError):
                conn.write()
            with self.assertRaises(TypeError):
                tern.Conn()
            # a cycle through conn.data is collected
            c = hub.open_conn(now=1)
            c.data = c
            r = weakref.ref(c)
            del c
            gc.collect()
            self.assertIsNone(r())

    def test_next_ready_and_goaway(self):
        with tern.Hub() as hub:
            conn, client = handshake(hub, "k")
            list(hub.events())
            self.assertIsNone(hub.next_ready())
            hub.publish("k", b"x", now=1)
            self.assertIs(hub.next_ready(), conn)
            self.assertEqual(list(hub.ready()), [])
            self.assertEqual(hub.goaway_all(tern.GoawayReason.RESTART, 1.0, now=1), 1)
            ev = hub.next_event()
            self.assertEqual((ev.type, ev.reason), (tern.EventType.CONN_CLOSED, tern.GoawayReason.RESTART))
            events = shuttle_until_closed(conn, client)
            self.assertIn(tern.ClientEventType.DISCONNECTED, [e.type for e in events])
            conn2, _ = handshake(hub, "k2")
            conn2.goaway(tern.GoawayReason.REPLACED, retry_after=0.5, now=1)
            with self.assertRaises(tern.ClosedError):
                conn2.goaway(now=1)

    def test_hello_accept(self):
        with tern.Hub(hello_accept=True) as hub:
            client = tern.Client("k", token=b"secret", now=1)
            client.next_event()
            client.connect(now=1)
            conn = hub.open_conn(now=1)
            conn.read(client.write(now=1), now=1)
            ev = hub.next_event()
            self.assertEqual((ev.type, ev.session_key, ev.aux), (tern.EventType.CONN_HELLO, b"k", b"secret"))
            self.assertIs(ev.conn, conn)
            conn.accept(now=1)
            with self.assertRaises(tern.StateError):
                conn.accept(now=1)
            client.read(conn.write(now=1), now=1)
            self.assertEqual(client.next_event().type, tern.ClientEventType.CONNECTED)

    def test_limit_conns(self):
        with tern.Hub(max_conns=1) as hub:
            first = handshake(hub, "k")
            client = tern.Client("k", now=1)
            client.connect(now=1)
            conn = hub.open_conn(now=1)
            with self.assertRaises(tern.LimitError):
                conn.read(client.write(now=1), now=1)
            self.assertTrue(conn.closed)
            first[0].close()  # dropping a Conn deletes it: room again
            handshake(hub, "k")


def shuttle_until_closed(conn, client, now=1):
    events = []
    try:
        for _ in range(10):
            client.read(conn.write(now=now), now=now)
            events.extend(iter(client.next_event, None))
    except tern.ClosedError:
        events.extend(iter(client.next_event, None))
        return events
    raise AssertionError("the connection did not close")


class StreamTest(unittest.TestCase):
    def test_sse_stream_and_ack(self):
        with tern.Hub(seed=1) as hub:
            hub.publish("bob", b"one", id="m1", now=1)
            conn = hub.open_stream("bob", tern.Framing.SSE, retry=2, now=1)
            self.assertEqual(conn.content_type, "text/event-stream")
            self.assertEqual(conn.framing, tern.Framing.SSE)
            body = conn.write(now=1)
            self.assertIn(b"retry: 2000\n", body)
            self.assertIn(b"id: %d.1\n" % hub.epoch, body)
            self.assertIn(b'"data":"one"', body)
            with self.assertRaises(tern.StateError):
                conn.read(b"x", now=1)  # one-way
            self.assertEqual(hub.ack("bob", 1, now=2), 1)
            self.assertEqual(hub.stats().acked, 1)
            with self.assertRaises(tern.InvalidError):
                hub.ack("bob", 5, now=2)  # not sent yet
            with self.assertRaises(tern.NotFoundError):
                hub.ack("nobody", 1, now=2)
            hub.publish("bob", b"two", now=3)
            conn.close()  # two was sent, not acked: it comes again on resume
            again = hub.open_stream("bob", tern.Framing.NDJSON, resume_epoch=hub.epoch,
                                    resume_seq=1, now=4)
            self.assertIn(b'"data":"two"', again.write(now=4))

    def test_stream_peek_output(self):
        with tern.Hub(seed=1) as hub:
            hub.publish("bob", b"one", now=1)
            conn = hub.open_stream("bob", tern.Framing.SSE, now=1)
            body = conn.peek_output(now=1)
            self.assertIn(b'"data":"one"', body)
            conn.consume(5)
            hub.publish("bob", b"two", now=1)
            self.assertEqual(conn.peek_output(now=1), body[5:])  # not "two" yet
            conn.consume(len(body) - 5)
            self.assertIn(b'"data":"two"', conn.peek_output(now=1))

    def test_poll(self):
        with tern.Hub() as hub:
            hub.publish("p", b"x", now=1)
            conn = hub.open_stream("p", tern.Framing.POLL, poll_hold=0, now=1)
            self.assertTrue(conn.write(now=1).startswith(b"[{"))
            with self.assertRaises(tern.ClosedError):
                conn.write(now=1)
            ev = hub.next_event()
            self.assertEqual((ev.type, ev.reason), (tern.EventType.CONN_CLOSED, tern.GoawayReason.DONE))

    def test_bad_streams(self):
        with tern.Hub() as hub:
            with self.assertRaises(tern.InvalidError):
                hub.open_stream("k", tern.Framing.BINARY)
            with self.assertRaises(tern.InvalidError):
                hub.open_stream("k", 99)
            with self.assertRaises(tern.InvalidError):
                hub.open_stream("")
            with self.assertRaises(tern.TooLargeError):
                hub.open_stream("k" * 129)
            with self.assertRaises(tern.InvalidError):
                hub.open_stream("k", retry=25 * 3600)
            with self.assertRaises(TypeError):
                hub.open_stream(None)
            with self.assertRaises(ValueError):
                hub.open_stream("k", heartbeat_interval=-1)
            self.assertEqual(hub.stats().conns, 0)


class SessionTest(unittest.TestCase):
    def test_session_handle(self):
        with tern.Hub(trace=True) as hub:
            s = hub.session("carol")
            self.assertFalse(s.exists)
            with self.assertRaises(tern.NotFoundError):
                s.info()
            s.publish(b"1", id="a", now=1)
            s.publish_batch([b"2", b"3"], now=1)
            self.assertTrue(s.exists)
            self.assertEqual(s.info().pending, 3)
            self.assertEqual(s, hub.session(b"carol"))
            self.assertEqual(len({s, hub.session("carol")}), 1)
            self.assertEqual(list(hub.sessions()), [s])
            self.assertEqual(hub.session_keys(), [b"carol"])
            self.assertFalse(s.cancel("a", now=1))
            with self.assertRaises(tern.NotFoundError):
                s.cancel("a", now=1)
            with self.assertRaises(tern.InvalidError):
                s.cancel("i" * 65, now=1)
            self.assertEqual(s.purge(unsent_only=True, now=1), 2)
            list(hub.events())
            conn, client = handshake(hub, "carol")
            s.delete(now=1)
            self.assertFalse(s.exists)
            with self.assertRaises(tern.NotFoundError):
                s.delete(now=1)
            ev = [e for e in hub.events() if e.type == tern.EventType.CONN_CLOSED][0]
            self.assertEqual((ev.reason, ev.conn), (tern.GoawayReason.REPLACED, conn))
            self.assertEqual(hub.stats().sessions_deleted, 1)
            with self.assertRaises(tern.NotFoundError):
                hub.purge_session("nobody")
            with self.assertRaises(tern.InvalidError):
                hub.purge_session("")
            self.assertEqual(repr(s), "<tern.Session b'carol'>")


    def test_session_data(self):
        class Record:
            pass
        with tern.Hub(session_ttl=1) as hub:
            s = hub.session("u")
            with self.assertRaises(tern.NotFoundError):
                s.data = Record()
            hub.publish("u", b"x", now=0)
            self.assertIsNone(s.data)
            rec = Record()
            s.data = rec
            self.assertIs(s.data, rec)
            r = weakref.ref(rec)
            del rec
            self.assertIsNotNone(r())  # the hub holds it
            hub.handle_expiry(now=2 * S)  # the session expires
            ev = [e for e in hub.events() if e.type == tern.EventType.SESSION_EXPIRED][0]
            self.assertIs(ev.cookie, r())  # handed over in the event
            self.assertEqual(ev.count, 1)
            del ev
            gc.collect()
            self.assertIsNone(r())
            # delete_session drops it
            hub.publish("v", b"x", now=3 * S)
            rec = Record()
            r = weakref.ref(rec)
            hub.set_session_data("v", rec)
            del rec
            hub.delete_session("v", now=3 * S)
            self.assertIsNone(r())
            # so does closing the hub (sessions, and unread SESSION_EXPIRED)
            hub.publish("w", b"x", now=3 * S)
            hub.publish("z", b"x", now=3 * S)
            rw, rz = Record(), Record()
            hub.set_session_data("w", rw)
            hub.set_session_data("z", rz)
            hub.set_session_data("z", None)
            refs = weakref.ref(rw), weakref.ref(rz)
            del rw, rz
            self.assertIsNone(refs[1]())
            hub.publish("y", b"x", now=3 * S)
            ry = Record()
            hub.set_session_data("y", ry)
            refs = refs + (weakref.ref(ry),)
            del ry
        self.assertEqual([x() for x in refs], [None, None, None])
        with tern.Hub(session_ttl=1) as hub:
            hub.publish("e", b"x", now=0)
            rec = Record()
            hub.set_session_data("e", rec)
            r = weakref.ref(rec)
            del rec
            hub.handle_expiry(now=2 * S)  # the event stays unread
        self.assertIsNone(r())


class TopicTest(unittest.TestCase):
    def test_topic(self):
        with tern.Hub() as hub:
            t = hub.create_topic("trade.usd", max_messages=2, max_age=60, now=1)
            self.assertTrue(t.exists)
            self.assertEqual(hub.topic("trade.usd"), t)
            with self.assertRaises(tern.DuplicateError):
                hub.create_topic("trade.usd")
            self.assertEqual(hub.subscribe("dan", "trade.*", "price > 100", now=1), 1)
            self.assertEqual(hub.session("eve").subscribe("trade.usd", now=1), 1)
            conn = hub.open_stream("dan", tern.Framing.NDJSON, now=1)
            self.assertEqual(t.publish(b"cheap", attrs={"price": "5"}, now=1), 1)
            self.assertEqual(t.publish(b"dear", attrs={"price": "500"}, now=1), 2)
            body = conn.write(now=1)
            self.assertIn(b"dear", body)
            self.assertNotIn(b"cheap", body)
            rc = t.receipt(2)
            self.assertEqual((rc.offset, rc.subscribed, rc.acked), (2, 2, 0))
            self.assertEqual(hub.ack("dan", 1, now=1), 1)
            self.assertEqual(t.receipt(2).acked, 1)
            with self.assertRaises(tern.NotFoundError):
                t.receipt(99)
            info = t.info()
            self.assertEqual((info.name, info.messages, info.members, info.end_offset),
                             ("trade.usd", 2, 2, 3))
            t.publish(b"third", now=1)  # retention: max_messages 2
            self.assertEqual(t.info().first_offset, 2)
            self.assertEqual(hub.unsubscribe("eve", "trade.usd"), 1)
            with self.assertRaises(tern.NotFoundError):
                hub.unsubscribe("eve", "trade.usd")
            t.delete()
            self.assertFalse(t.exists)
            for call in (lambda: t.publish(b"x"), t.info, lambda: t.receipt(1), t.delete):
                with self.assertRaises(tern.NotFoundError):
                    call()

    def test_topic_errors(self):
        with tern.Hub() as hub:
            for bad in ("", "a..b", "a.*", "x" * 256):
                with self.assertRaises(tern.InvalidError):
                    hub.create_topic(bad)
            with self.assertRaises(TypeError):
                hub.create_topic(5)
            with self.assertRaises(TypeError):
                hub.create_topic("t", nope=1)
            with self.assertRaises(tern.NotFoundError):
                hub.topic("none")
            with self.assertRaises(tern.NotFoundError):
                hub.subscribe("k", "none")
            with self.assertRaises(tern.InvalidError) as cm:
                hub.subscribe("k", "a.#", "price >")
            self.assertEqual(cm.exception.position, 7)
            with self.assertRaises(tern.InvalidError) as cm:
                hub.subscribe("k", "a..#")
            self.assertEqual(cm.exception.position, 2)
            t = hub.create_topic("t")
            with self.assertRaises(TypeError):
                t.publish(None)
            with self.assertRaises(tern.TooLargeError):
                t.publish(b"x", id="i" * 65)


class ClientTest(unittest.TestCase):
    def test_client(self):
        with tern.Client("k", token="t", manual_ack=True, seed=1, now=1) as c:
            self.assertEqual(c.next_event().type, tern.ClientEventType.CONNECT)
            self.assertIsNone(c.next_event())
            with self.assertRaises(tern.StateError):
                c.write(now=1)
            with self.assertRaises(tern.StateError):
                c.publish("k", b"x", now=1)
            state = c.save_state()
            self.assertIsInstance(state, bytes)
            with self.assertRaises(tern.ProtocolError):
                c.restore_state(b"not a state", now=1)
            c.restore_state(state, now=1)
            self.assertIsInstance(c.stats().received, int)
            c.connect(now=1)
            self.assertIsNotNone(c.expiry)
            with self.assertRaises(tern.StateError):
                c.connect(now=1)
            self.assertTrue(c.want_write)
            c.conn_lost(now=1)
            c.close(now=1)
            c.handle_expiry(now=1)
        self.assertTrue(c.released)
        for call in (c.next_event, c.stats, c.save_state, lambda: c.connect(),
                     lambda: c.read(b"x"), lambda: c.write(), lambda: c.ack(1),
                     lambda: c.peek_output(), lambda: c.consume(0),
                     lambda: c.want_write, lambda: c.__enter__()):
            with self.assertRaises(tern.ClosedError):
                call()
        c.release()

    def test_peek_output_and_consume(self):
        """A producer's send loop whose socket takes 7 bytes at a time
        sends exactly what write() gives an identical client, and the hub
        gets every message."""
        payloads = [b"%03d" % i + b"x" * 997 for i in range(40)]  # > 16 KiB
        sides = []
        for _ in range(2):
            hub = tern.Hub(seed=1)
            self.addCleanup(hub.close)
            conn, client = handshake(hub, "producer")
            self.addCleanup(client.release)
            conn.allow_publish()
            for p in payloads:
                client.publish("sink", p, now=1)
            sides.append((hub, conn, client))
        (hub, conn, client), (_, _, ref) = sides
        sent = send_by_peeks(self, client, ref)
        conn.read(sent, now=1)
        self.assertEqual(hub.session_info("sink").pending, len(payloads))

    def test_client_consume_errors(self):
        with tern.Client("k", token=b"t", now=1) as c:
            with self.assertRaises(tern.StateError):
                c.peek_output(now=1)  # no transport
            with self.assertRaises(tern.InvalidError):
                c.consume(1)  # nothing held
            c.consume(0)
            c.connect(now=1)
            data = c.peek_output(now=1)  # the HELLO
            self.assertGreater(len(data), 2)
            check_consume_errors(self, c, data)
            self.assertEqual(c.peek_output(now=1), data[2:])  # the rest offered
            with self.assertRaises(tern.StateError):
                c.write(now=1)
            # a lost transport drops what was held; the next one sends a
            # whole HELLO
            c.conn_lost(now=1)
            self.assertFalse(c.want_write)
            with self.assertRaises(tern.InvalidError):
                c.consume(1)
            c.connect(now=1)
            self.assertEqual(c.peek_output(now=1), data)
            c.consume(len(data))
            self.assertEqual(c.peek_output(now=1), b"")

    def test_client_peek_output_closing(self):
        """A closing client is closed once its GOAWAY is consumed."""
        with tern.Hub() as hub:
            conn, client = handshake(hub, "k")
            with client:
                client.close(now=1)
                sent = b""
                while True:
                    try:
                        data = client.peek_output(now=1)
                    except tern.ClosedError:
                        break
                    self.assertTrue(data)
                    client.consume(len(data))
                    sent += data
                self.assertTrue(sent)
                ev = client.next_event()
                self.assertEqual((ev.type, ev.reason), (tern.ClientEventType.DISCONNECTED,
                                                        tern.GoawayReason.CLIENT))
                conn.read(sent, now=1)
                self.assertTrue(conn.closed)

    def test_client_bad_arguments(self):
        with self.assertRaises(tern.InvalidError):
            tern.Client("")
        with self.assertRaises(tern.TooLargeError):
            tern.Client("k" * 129)
        with self.assertRaises(tern.TooLargeError):
            tern.Client("k", b"t" * 1025)
        with self.assertRaises(TypeError):
            tern.Client(None)
        with self.assertRaises(TypeError):
            tern.Client("k", nope=1)
        with self.assertRaises(tern.InvalidError):
            tern.Client("k", ack_every=0)
        with tern.Client("k") as c:
            with self.assertRaises(tern.InvalidError):
                c.ack(0)
            with self.assertRaises(TypeError):
                c.write_into(b"ro")

    def test_producer(self):
        with tern.Hub() as hub:
            conn, client = handshake(hub, "producer")
            conn.allow_publish()
            req = client.publish("frank", b"from a producer", id="p1", now=1)
            req2 = client.publish("ticker", b"t", topic=True, now=1)
            events = shuttle(conn, client)
            acks = [(e.seq, e.reason) for e in events if e.type == tern.ClientEventType.PUBACK]
            self.assertEqual(acks, [(req, tern.PubackStatus.ACCEPTED), (req2, tern.PubackStatus.NOT_FOUND)])
            self.assertEqual(hub.session_info("frank").pending, 1)
            with self.assertRaises(tern.InvalidError):
                client.publish("frank", b"x", sync=True, volatile=True, now=1)


class FileStoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tern-py-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_restart(self):
        path = os.path.join(self.dir, "store")
        with tern.FileStore(path) as fs:
            self.assertEqual(fs.path, path)
            self.assertEqual(fs.fd, -1)
            with tern.Hub() as hub:
                hub.set_wallclock()
                hub.set_store(fs)
                with self.assertRaises(tern.StateError):
                    hub.set_store(fs)
                hub.publish("gina", b"durable", id="d1", sync=True, cookie=4)
                hub.flush()
                ev = [e for e in hub.events() if e.type == tern.EventType.PERSISTED][0]
                self.assertEqual((ev.msg_id, ev.reason, ev.cookie), (b"d1", 0, 4))
                with self.assertRaises(tern.StateError):
                    fs.close()  # the hub still uses it
                self.assertGreater(fs.stats().records, 0)
                epoch = hub.epoch
            fs.sync()
            fs.compact()
            self.assertEqual(fs.error, "")
        self.assertTrue(fs.closed)
        with self.assertRaises(tern.ClosedError):
            fs.stats()
        with tern.FileStore(path) as fs, tern.Hub() as hub:
            with self.assertRaises(tern.StateError):
                tern.FileStore(path)  # locked
            hub.set_wallclock()
            hub.set_store(fs)
            self.assertEqual(hub.epoch, epoch)
            self.assertEqual(hub.session_info("gina").pending, 1)
            other = tern.Hub()
            with self.assertRaises(tern.StateError):
                other.set_store(fs)  # attached elsewhere
            other.close()

    def test_bad_paths(self):
        with self.assertRaises(tern.StoreError) as cm:
            tern.FileStore(os.path.join(self.dir, "no", "such", "parent"))
        self.assertIn("No such file", str(cm.exception))
        with self.assertRaises(TypeError):
            tern.FileStore(5)
        with self.assertRaises(ValueError):
            tern.FileStore("a\0b")
        with self.assertRaises(tern.InvalidError):
            tern.FileStore(self.dir, segment_size=1)
        with self.assertRaises(TypeError):
            tern.FileStore(self.dir, nope=True)

    def test_sync_thread(self):
        with tern.FileStore(self.dir, sync_thread=True) as fs, tern.Hub() as hub:
            self.assertGreaterEqual(fs.fd, 0)
            with self.assertRaises(tern.StateError):
                fs.complete()  # not attached yet
            hub.set_store(fs)
            hub.publish("h", b"x", sync=True)
            hub.flush()
            import select
            types = []
            for _ in range(100):  # the set_store batch, then the publish's
                if select.select([fs.fd], [], [], 0.1)[0]:
                    self.assertGreaterEqual(fs.complete(), 1)
                types += [e.type for e in hub.events()]
                if tern.EventType.PERSISTED in types:
                    break
            self.assertIn(tern.EventType.PERSISTED, types)


class RobustnessTest(unittest.TestCase):
    """Garbage in: a clean exception out, never a crash."""

    BAD = [None, -1, 2**70, 1.5, float("nan"), "", "x" * 5000, b"\0" * 300, object(),
           [], {}, (1, 2), bytearray(3), memoryview(b"ab"), True]
    OK = (TypeError, ValueError, OverflowError, tern.Error)

    def call_all(self, obj, skip=()):
        for name in dir(obj):
            if name.startswith("_") or name in skip:
                continue
            attr = getattr(obj, name, None)
            if not callable(attr):
                continue
            for bad in self.BAD:
                for args in ((bad,), (bad, bad), ("k", bad), (bad, b"x"), ("k", b"x", bad)):
                    try:
                        attr(*args)
                    except self.OK:
                        pass
                for kw in ("now", "id", "ttl", "priority", "attrs", "payload", "size"):
                    try:
                        attr("k", b"x", **{kw: bad})
                    except self.OK:
                        pass

    def test_methods_with_bad_arguments(self):
        with tern.Hub() as hub:
            conn = hub.open_conn(now=1)
            stream = hub.open_stream("k", now=1)
            self.call_all(hub, skip=("close", "__exit__"))
            self.call_all(conn, skip=("close",))
            self.call_all(stream, skip=("close",))
            self.call_all(hub.session("k"))
            t = hub.create_topic("t") if not hub._has_topic("t") else hub.topic("t")
            self.call_all(t, skip=("delete",))
            with tern.Client("k") as c:
                self.call_all(c, skip=("release",))
            hook = hub.add_hook("http://h", "secret", verified=True, max_delay=0)
            hook.enqueue("k", ["f"], time=1)
            req = hub.next_hook_request()
            self.call_all(hook, skip=("remove",))
            for bad in self.BAD:
                for call in (lambda: hub.hook_done(req, bad), lambda: hub.hook_done(bad, 200),
                             lambda: hub.hook_done(req, 200, retry_after=bad),
                             lambda: hub.hook_done(req, 200, body=bad),
                             lambda: hub.add_hook(bad, bad), lambda: hub.add_hook("t", bad),
                             lambda: hub.add_hook("t", "s", object=bad),
                             lambda: hub.add_hook("t", "s", verify_token=bad),
                             lambda: hub.add_hook("t", "s", max_delay=bad),
                             lambda: hook.enqueue("k", bad), lambda: hook.enqueue("k", [bad]),
                             lambda: hook.enqueue("k", data=bad),
                             lambda: hook.enqueue("k", time=bad)):
                    try:
                        call()
                    except self.OK:
                        pass
        for fn in (tern.strerror, tern.err_is_fatal, tern.shard_of, tern.topic_pattern_check,
                   tern.filter_check, tern.parse_resume, tern.framing_content_type,
                   tern.check_hook_signature, tern.check_hook_challenge):
            for bad in self.BAD:
                for args in ((bad,), (bad, bad), (bad, bad, bad, bad), ("s", "1", bad, bad),
                             ("s", bad, "sha256=" + "0" * 64, b"")):
                    try:
                        fn(*args)
                    except self.OK:
                        pass

    def test_random_bytes(self):
        import random
        rng = random.Random(12345)
        with tern.Hub() as hub:
            for i in range(3000):
                data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
                if i % 3 == 0:
                    data = bytes([1]) + data  # a HELLO type byte first
                conn = hub.open_conn(now=1)
                try:
                    conn.read(data, now=1)
                    conn.write(now=1)
                except tern.Error:
                    pass
                conn.close()
                with tern.Client("k", now=1) as c:
                    c.connect(now=1)
                    for call in (lambda: c.read(data, now=1),
                                 lambda: c.restore_state(data, now=1)):
                        try:
                            call()
                        except tern.Error:
                            pass
                try:
                    tern.parse_resume(data)
                except (tern.Error, TypeError, ValueError):
                    pass
            list(hub.events())
            self.assertEqual(hub.stats().conns, 0)


class ReadmeTest(unittest.TestCase):
    def test_readme_example_runs(self):
        import contextlib
        import io
        import re
        readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
        with open(readme) as f:
            code = re.findall(r"```python\n(.*?)```", f.read(), re.S)[0]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
        self.assertEqual(out.getvalue().split("\n"),
                         ["ACCEPTED b'm1'", "SENT b'm1'", "ACKED b'm1'", "1", ""])


class StubTest(unittest.TestCase):
    """tern/__init__.pyi declares the whole public API."""

    def test_stub_covers_the_api(self):
        import ast
        path = os.path.join(os.path.dirname(tern.__file__), "__init__.pyi")
        with open(path) as f:
            tree = ast.parse(f.read())
        declared = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                declared[node.name] = {
                    n.name if isinstance(n, (ast.FunctionDef, ast.ClassDef)) else
                    n.target.id if isinstance(n, ast.AnnAssign) else None
                    for n in node.body}
            elif isinstance(node, ast.FunctionDef):
                declared[node.name] = set()
            elif isinstance(node, (ast.AnnAssign, ast.Assign)):
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    declared[t.id] = set()
        public = [n for n in dir(tern) if not n.startswith("_") and n not in
                  ("annotations", "enum", "runtime_checkable", "Protocol")]
        for name in public:
            obj = getattr(tern, name)
            if isinstance(obj, type(tern)) or name in ("Any", "Dict", "Iterable", "Iterator",
                                                       "List", "Optional", "Tuple", "Union"):
                continue
            self.assertIn(name, declared, f"{name} is not in the stub")
            if isinstance(obj, type) and not issubclass(obj, (enum.Enum, BaseException, tuple)):
                for attr in dir(obj):
                    if attr.startswith("_") and attr not in ("__enter__", "__exit__"):
                        continue
                    self.assertIn(attr, declared[name], f"{name}.{attr} is not in the stub")


if __name__ == "__main__":
    unittest.main()
