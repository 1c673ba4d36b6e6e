"""A store written in Python: the tern.Store protocol over a dict."""

import sys
import unittest

import tern

S = 1_000_000_000


class RecordingStore(tern.DictStore):
    """A DictStore that can fail, complete later, or misbehave on demand."""

    def __init__(self, data=None):
        super().__init__(data)
        self.fail_append = None   # an exception to raise from append
        self.fail_load = None
        self.later = []           # batches answered with STORE_LATER
        self.answer_later = False
        self.hub = None
        self.reentry = None       # what calling the hub from append raised
        self.sync_flags = []

    def append(self, batch, records, sync):
        self.sync_flags.append(sync)
        if self.hub is not None and self.reentry is None:
            try:
                self.hub.publish("inside", b"x")
            except tern.Error as e:
                self.reentry = e
        if self.fail_append is not None:
            raise self.fail_append
        super().append(batch, records, sync)
        if self.answer_later:
            self.later.append(batch)
            return tern.STORE_LATER
        return None

    def load(self):
        if self.fail_load is not None:
            raise self.fail_load
        return super().load()


def persisted(hub):
    return [e for e in hub.events() if e.type == tern.EventType.PERSISTED]


class PythonStoreTest(unittest.TestCase):
    def test_protocol(self):
        self.assertIsInstance(tern.DictStore(), tern.Store)
        self.assertNotIsInstance(object(), tern.Store)

    def test_restart_on_the_same_dict(self):
        store = RecordingStore()
        with tern.Hub(seed=1) as hub:
            hub.set_wallclock(now=1)
            hub.set_store(store, now=1)
            r = hub.publish("ann", b"kept across restarts", id="k1", sync=True,
                            priority=tern.Priority.HIGH, attrs={"a": "b"}, cookie=3, now=1)
            self.assertEqual(r.id, b"k1")
            hub.publish("ann", b"second", id="k2", now=1)
            self.assertEqual(persisted(hub), [])  # not yet: the batch waits
            self.assertEqual(hub.expiry, 0)       # ... and says so
            hub.handle_expiry(now=1)
            ev = persisted(hub)
            self.assertEqual([(e.msg_id, e.reason, e.cookie) for e in ev], [(b"k1", 0, 3)])
            self.assertIn(True, store.sync_flags)
            epoch = hub.epoch
        self.assertGreater(len(store.data), 0)
        self.assertTrue(all(isinstance(k, bytes) and isinstance(v, bytes)
                            for k, v in store.data.items()))
        # a new hub, as after a restart, on the same dict
        with tern.Hub(seed=2) as hub:
            hub.set_wallclock(now=5)
            hub.set_store(store, now=5)
            self.assertEqual(hub.epoch, epoch)
            self.assertEqual(hub.session_info("ann").pending, 2)
            client = tern.Client("ann", now=5)
            client.next_event()
            client.connect(now=5)
            conn = hub.open_conn(now=5)
            conn.read(client.write(now=5), now=5)
            client.read(conn.write(now=5), now=5)
            events = list(iter(client.next_event, None))
            msgs = [e for e in events if e.type == tern.ClientEventType.MESSAGE]
            self.assertEqual([(m.id, m.payload) for m in msgs],
                             [(b"k1", b"kept across restarts"), (b"k2", b"second")])
            self.assertEqual(msgs[0].attrs, {"a": "b"})
            with self.assertRaises(tern.DuplicateError):  # dedup survived too
                hub.publish("ann", b"again", id="k1", now=5)
            conn.close()

    def test_ttl_across_restart(self):
        store = tern.DictStore()
        with tern.Hub() as hub:
            hub.set_wallclock(now=0, wall_ns=1_000 * S)
            hub.set_store(store, now=0)
            hub.publish("t", b"short", ttl=10, now=0)
            hub.flush()
        with tern.Hub(trace=True) as hub:  # 20 s later on the wall clock
            hub.set_wallclock(now=0, wall_ns=1_020 * S)
            hub.set_store(store, now=0)
            info = hub.session_info("t")
            self.assertEqual((info.pending, info.dropped), (0, 1))

    def test_append_failure(self):
        store = RecordingStore()
        caught = []
        old = sys.unraisablehook
        sys.unraisablehook = caught.append
        try:
            with tern.Hub() as hub:
                hub.set_store(store, now=1)
                store.fail_append = RuntimeError("disk on fire")
                hub.publish("f", b"x", id="s1", sync=True, now=1)
                with self.assertRaises(tern.StoreError) as cm:
                    hub.flush()
                self.assertIsInstance(cm.exception.__cause__, RuntimeError)
                events = list(hub.events())
                failed = [e for e in events if e.type == tern.EventType.STORE_FAILED]
                self.assertEqual(len(failed), 1)
                self.assertEqual(failed[0].reason, tern.ErrorCode.STORE)
                p = [e for e in events if e.type == tern.EventType.PERSISTED]
                self.assertEqual([(e.msg_id, e.reason) for e in p], [(b"s1", tern.ErrorCode.STORE)])
                # a tern.Error raised by the store is chained as it is
                store.fail_append = tern.NoMemoryError("full")
                hub.publish("f", b"y", id="s2", sync=True, now=1)
                with self.assertRaises(tern.StoreError) as cm:
                    hub.flush()
                self.assertIsInstance(cm.exception.__cause__, tern.NoMemoryError)
                failed = [e for e in hub.events() if e.type == tern.EventType.STORE_FAILED]
                self.assertEqual(len(failed), 1)
                # a failure inside handle_expiry goes to sys.unraisablehook
                hub.publish("f", b"z", now=1)
                hub.handle_expiry(now=2)
                self.assertEqual(len(caught), 1)
                self.assertIsInstance(caught[0].exc_value, tern.NoMemoryError)
                store.fail_append = None
                hub.publish("f", b"w", now=3)
                hub.flush()
        finally:
            sys.unraisablehook = old

    def test_load_failure(self):
        store = RecordingStore()
        store.fail_load = KeyError("gone")
        with tern.Hub() as hub:
            with self.assertRaises(tern.StoreError) as cm:
                hub.set_store(store)
            self.assertIsInstance(cm.exception.__cause__, KeyError)
            with self.assertRaises(tern.StateError):
                hub.set_store(tern.DictStore())  # a hub takes one store

        class BadLoad:
            def append(self, batch, records, sync):
                pass

            def load(self):
                return [("not", "a", "pair")]
        with tern.Hub() as hub:
            with self.assertRaises(tern.StoreError) as cm:
                hub.set_store(BadLoad())
            self.assertIsInstance(cm.exception.__cause__, TypeError)

    def test_not_a_store(self):
        with tern.Hub() as hub:
            with self.assertRaises(TypeError):
                hub.set_store(object())
            with self.assertRaises(TypeError):
                hub.set_store(5)
            hub.set_store(tern.DictStore())  # still storeless: this works

    def test_store_later(self):
        store = RecordingStore()
        store.answer_later = True
        with tern.Hub() as hub:
            hub.set_store(store, now=1)
            hub.publish("l", b"x", id="late", sync=True, now=1)
            hub.flush()
            self.assertEqual(persisted(hub), [])
            for batch in store.later:
                hub.store_done(batch)
            store.later.clear()
            self.assertEqual([e.msg_id for e in persisted(hub)], [b"late"])
            with self.assertRaises(tern.StateError):
                hub.store_done(12345)
            with self.assertRaises(ValueError):
                hub.store_done(1, 5)

    def test_reentry_refused(self):
        store = RecordingStore()
        with tern.Hub() as hub:
            hub.set_store(store, now=1)
            store.hub = hub
            hub.publish("r", b"x", now=1)
            hub.flush()
            self.assertIsInstance(store.reentry, tern.StateError)
            self.assertFalse(hub.has_session("inside"))
            store.hub = None

    def test_conn_dropped_inside_store(self):
        """A Conn whose last reference goes away while a store method runs
        is deleted after the hub call, not inside it."""
        holder = {}

        class DropStore(tern.DictStore):
            def append(self, batch, records, sync):
                holder.pop("conn", None)
                super().append(batch, records, sync)

        with tern.Hub() as hub:
            hub.set_store(DropStore(), now=1)
            holder["conn"] = hub.open_stream("d", tern.Framing.SSE, now=1)
            hub.publish("d", b"x", now=1)
            hub.flush()
            self.assertNotIn("conn", holder)
            self.assertEqual(hub.stats().conns, 0)
            self.assertIsNone(hub.next_ready())


if __name__ == "__main__":
    unittest.main()
