"""Leak checks over long loops.  A release build has no
sys.gettotalrefcount, so three other gauges are used: the reference counts
of the objects passed in (a leaked reference to an argument shows up at
once), tracemalloc (Python-side allocations, exception objects and
results included), and the process's resident size together with the
hub's own gauges (native memory: hubs, conns, messages)."""

import gc
import os
import sys
import tracemalloc
import unittest

import tern

# Under AddressSanitizer (build-asan) freed memory sits in quarantine, so
# RSS is no gauge there: the other two still are, over fewer rounds.
SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")
WARMUP = 2_000
ROUNDS = 5_000 if SANITIZED else 20_000


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def ack_frame(seq):
    body = seq.to_bytes(1, "big") if seq < 64 else (0x4000 | seq).to_bytes(2, "big") \
        if seq < 16384 else (0x80000000 | seq).to_bytes(4, "big")
    return bytes([0x04, len(body)]) + body


class CountingStore:
    """A store that keeps nothing: the bridge is exercised, and nothing
    the store legitimately keeps counts as growth."""

    def __init__(self):
        self.records = 0
        self.data = ()

    def append(self, batch, records, sync):
        self.records += len(records)

    def load(self):
        return []


class Workload:
    """One round touches every wrapper: publish (good and bad), batches,
    conns (binary and streams), events, client events, topics, a Python
    store, and error paths."""

    def __init__(self):
        self.store = CountingStore()
        # dedup ids live 1 s: the store's dict stays bounded as time moves
        self.hub = tern.Hub(seed=1, trace=True, max_pending=64, max_payload=4096,
                            dedup_window=1)
        self.hub.set_store(self.store, now=1)
        self.topic = self.hub.create_topic("leak.t", max_messages=16, now=1)
        self.hub.subscribe("member", "leak.*", "n > 1", now=1)
        self.payload = b"p" * 64
        self.view = memoryview(bytearray(b"v" * 64))
        self.key = "leak-key"
        self.attrs = {"n": "2", "kind": "leak"}
        self.buf = bytearray(1 << 16)
        self.client = tern.Client(self.key, seed=2, now=1)
        self.client.next_event()
        self.client.connect(now=1)
        self.conn = self.hub.open_conn(now=1)
        self.conn.read(self.client.write(now=1), now=1)
        self.client.read(self.conn.write(now=1), now=1)
        self.seq = 0
        self.now = 1

    def round(self, i):
        hub, now = self.hub, self.now
        hub.publish(self.key, self.payload, attrs=self.attrs, content_type="text/plain", now=now)
        hub.publish(self.key, self.view, id=b"id-%d" % i, collapse_key="c", now=now)
        hub.publish_batch(self.key, [self.payload, self.view], now=now)
        self.topic.publish(self.payload, attrs=self.attrs, now=now)
        n = self.conn.write_into(self.buf, now=now)
        self.client.read(memoryview(self.buf)[:n], now=now)
        for ev in iter(self.client.next_event, None):
            if ev.type == tern.ClientEventType.MESSAGE:
                self.seq = ev.seq
        self.conn.read(ack_frame(self.seq), now=now)
        # the client's ACKs through peek: half consumed, then the rest
        data = self.client.peek_output(now=now)
        self.client.consume(len(data) // 2)
        self.client.consume(len(self.client.peek_output(now=now)))
        for _ in hub.events():
            pass
        # a stream conn, opened, written, dropped
        s = hub.open_stream("member", tern.Framing.SSE, now=now)
        s.data = self
        if i % 2:
            s.write(now=now)
        else:  # peeked bytes, half consumed, the rest freed by close
            data = s.peek_output(now=now)
            s.consume(len(data) // 2)
            s.peek_output(now=now)
        s.close()
        hub.ack("member", hub.session_info("member").next_seq - 1, now=now)
        # error paths
        # (every call gets now: the hub's clock may not go backwards)
        for call in (lambda: hub.publish(self.key, self.payload, id="i" * 65, now=now),
                     lambda: hub.publish(self.key, 12, now=now),
                     lambda: hub.publish(self.key, self.payload, attrs=[("a", "b")] * 9,
                                         now=now),
                     lambda: hub.publish(self.key, self.payload, id=b"id-%d" % i, now=now),
                     lambda: hub.publish_batch(self.key, [self.payload, b"x" * 5000],
                                               now=now),
                     lambda: s.write(now=now),
                     lambda: s.peek_output(now=now),
                     lambda: self.conn.consume(1 << 20),
                     lambda: self.client.consume(1 << 20),
                     lambda: hub.session_info("nobody"),
                     lambda: tern.parse_resume("junk")):
            try:
                call()
            except (tern.Error, TypeError):
                pass
        hub.purge_session(self.key, unsent_only=True, now=now)
        hub.handle_expiry(now=now)
        if i % 50 == 0:
            with tern.Hub() as h2:  # hubs come and go
                c = h2.open_conn(now=now)
                h2.publish_many(["a", "b", "c"], self.payload, now=now)
            try:
                c.write()
            except tern.ClosedError:
                pass
        self.now += 1_000_000  # 1 ms a round


class HookWorkload:
    """One round drives web hooks through every wrapper: add, enqueue
    (good and bad), requests (delivery and challenge), answers (200, 500,
    no answer, 400), info, listing, events, the receiving side's checks,
    removal, and error paths."""

    S = 1_000_000_000

    def __init__(self):
        self.store = CountingStore()
        self.hub = tern.Hub(seed=3)
        self.hub.set_wallclock(now=1, wall_ns=1_700_000_000 * self.S)
        self.hub.set_store(self.store, now=1)
        self.target = "http://127.0.0.1:9/hook"
        self.secret = b"s3cret"
        self.token = "tok"
        self.fields = ["name", "picture"]
        self.data = '{"v": [1, 2, 3]}'
        self.key = "user-1"
        self.body = bytearray(b"challenge")
        self.now = 1

    def round(self, i):
        hub, now, S = self.hub, self.now, self.S
        hook = hub.add_hook(self.target, self.secret, verified=True, max_items=2,
                            max_delay=0, retry_base=0.001, retry_cap=0.001, now=now)
        hook.enqueue(self.key, self.fields, time=i, data=self.data, now=now)
        hook.enqueue(b"user-2", self.fields, time=i, now=now)
        req = hub.next_hook_request(now=now)
        tern.check_hook_signature(self.secret, req.headers["X-Tern-Timestamp"],
                                  req.headers["X-Tern-Signature"], req.body,
                                  now_s=req.timestamp)
        hub.hook_done(req, 500, retry_after="1", body=self.body, now=now)
        req = hub.next_hook_request(now=now + 2_000_000)
        hub.hook_done(req, None, now=now + 2_000_000)
        req = hub.next_hook_request(now=now + 4_000_000)
        hub.hook_done((req.hook, req.delivery), 200, now=now + 4_000_000)
        hook.enqueue(self.key, self.fields, time=i, now=now + 4_000_000)
        req = hub.next_hook_request(now=now + 4_000_000)
        hub.hook_done(req, 400, now=now + 4_000_000)
        hook.info()
        # a challenged hook
        ch = hub.add_hook(self.target, self.secret, verify_token=self.token, now=now)
        req = hub.next_hook_request(now=now + 4_000_000)
        answer = tern.check_hook_challenge(req.query, self.token)
        hub.hook_done(req, 200, body=answer, now=now + 4_000_000)
        for h in hub.hooks():
            h.info()
        list(hub.events())
        # error paths
        for call in (lambda: hook.enqueue("", now=now + 4_000_000),
                     lambda: hook.enqueue("k", data="{", now=now + 4_000_000),
                     lambda: hook.enqueue("k", "str", now=now + 4_000_000),
                     lambda: hook.enqueue("k", ["f"] * 40, now=now + 4_000_000),
                     lambda: hub.hook_done((hook.id, 999999), 200, now=now + 4_000_000),
                     lambda: hub.hook_done(req, 99, now=now + 4_000_000),
                     lambda: hub.add_hook("", self.secret, now=now),
                     lambda: hub.add_hook(self.target, self.secret, max_items=0, now=now),
                     lambda: hub.add_hook(self.target, self.secret, bogus=1, now=now),
                     lambda: hub.hook_info(0),
                     lambda: tern.check_hook_signature(self.secret, "1", "sha256=00", b"x"),
                     lambda: tern.check_hook_challenge("hub.mode=x", self.token)):
            try:
                call()
            except (tern.Error, TypeError, ValueError):
                pass
        hook.remove()
        ch.remove()
        self.now += 10_000_000


class LeakTest(unittest.TestCase):
    def test_hooks_loop(self):
        w = HookWorkload()
        rounds = ROUNDS // 4
        for i in range(WARMUP // 4):
            w.round(i)
        gc.collect()
        objs = (w.hub, w.store, w.target, w.secret, w.token, w.fields, w.data, w.key, w.body)
        refs = [sys.getrefcount(o) for o in objs]
        rss0 = rss_kib()
        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
        traced0 = tracemalloc.get_traced_memory()[0]
        for i in range(rounds):
            w.round(i)
        gc.collect()
        traced1 = tracemalloc.get_traced_memory()[0]
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        rss1 = rss_kib()
        self.assertEqual(refs, [sys.getrefcount(o) for o in objs],
                         "a reference to an argument leaked")
        growth = traced1 - traced0
        top = "\n".join(str(s) for s in snap1.compare_to(snap0, "lineno")[:5])
        self.assertLess(growth, 64 * 1024, "Python memory grew:\n" + top)
        self.assertEqual(w.hub.hook_ids(), [])
        if not SANITIZED:
            self.assertLess(rss1 - rss0, 4096, f"RSS grew {rss1 - rss0} KiB")
        print(f"\n{rounds} hook rounds: tracemalloc {growth:+d} B, RSS {rss1 - rss0:+d} KiB, "
              f"store records {w.store.records}", file=sys.stderr)
        w.hub.close()


    def test_long_loop(self):
        w = Workload()
        for i in range(WARMUP):
            w.round(i)
        gc.collect()
        refs = [sys.getrefcount(o) for o in (w.payload, w.view, w.key, w.attrs, w.hub,
                                             w.store, w.buf, w.conn, w.topic)]
        rss0 = rss_kib()
        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
        traced0 = tracemalloc.get_traced_memory()[0]
        for i in range(WARMUP, WARMUP + ROUNDS):
            w.round(i)
        gc.collect()
        traced1 = tracemalloc.get_traced_memory()[0]
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        rss1 = rss_kib()
        after = [sys.getrefcount(o) for o in (w.payload, w.view, w.key, w.attrs, w.hub,
                                              w.store, w.buf, w.conn, w.topic)]
        self.assertEqual(refs, after, "a reference to an argument leaked")
        growth = traced1 - traced0
        top = "\n".join(str(s) for s in snap1.compare_to(snap0, "lineno")[:5])
        # 20,000 rounds of ~30 calls: 64 KiB is about 3 bytes a round
        # (5,000 under ASan: 13)
        self.assertLess(growth, 64 * 1024, "Python memory grew:\n" + top)
        # native memory: the same messages held, no conn left, RSS flat
        st = w.hub.stats()
        self.assertEqual(st.conns, 1)
        self.assertLessEqual(st.messages, 64 + 16)
        self.assertGreater(w.store.records, ROUNDS)
        if not SANITIZED:
            self.assertLess(rss1 - rss0, 4096, f"RSS grew {rss1 - rss0} KiB")
        print(f"\n{ROUNDS} rounds: tracemalloc {growth:+d} B, RSS {rss1 - rss0:+d} KiB, "
              f"published {st.published}, acked {st.acked}", file=sys.stderr)
        w.conn.close()
        w.hub.close()

    def test_hub_churn(self):
        """Hubs with conns, events and stores, created and dropped."""
        for _ in range(500):
            self._churn()
        gc.collect()
        rss0 = rss_kib()
        for _ in range(5000):
            self._churn()
        gc.collect()
        if not SANITIZED:
            self.assertLess(rss_kib() - rss0, 4096)

    def _churn(self):
        hub = tern.Hub()
        hub.set_store(tern.DictStore(), now=1)
        conn = hub.open_stream("k", tern.Framing.NDJSON, now=1)
        conn.data = hub  # a cycle: Conn -> data -> Hub; collected by gc
        hub.publish("k", b"x" * 100, sync=True, now=1)
        hub.flush()
        conn.write(now=1)
        cl = tern.Client("k", now=1)
        cl.next_event()
        cl.connect(now=1)
        cl.peek_output(now=1)  # held bytes, freed with the client


if __name__ == "__main__":
    unittest.main()
