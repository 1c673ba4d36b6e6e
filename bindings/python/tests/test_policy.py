"""Delivery policies: quiet hours, frequency caps, fallback deadlines,
accept_rate, the zone callback, and bad arguments."""

import sys
import unittest

import tern

S = 1_000_000_000  # one second in ns
DAY = 86400
# A wall clock at 12:00:00 UTC on some day: hub time 0 is this moment.
NOON = (20_000 * DAY + 12 * 3600) * S


def handshake(hub, key, now=1):
    client = tern.Client(key, seed=3, now=now)
    client.next_event()
    client.connect(now=now)
    conn = hub.open_conn(now=now)
    conn.read(client.write(now=now), now=now)
    client.read(conn.write(now=now), now=now)
    return conn, client


def shuttle(conn, client, now):
    """Moves bytes both ways until quiet; returns the payloads received."""
    got = []
    for _ in range(100):
        moved = False
        data = conn.write(now=now)
        if data:
            client.read(data, now=now)
            moved = True
        while (ev := client.next_event()) is not None:
            if ev.type == tern.ClientEventType.MESSAGE:
                got.append(ev.payload)
        data = client.write(now=now)
        if data:
            conn.read(data, now=now)
            moved = True
        if not moved:
            return got
    raise AssertionError("the link never went quiet")


def advance(hub, conn, client, t0, t1, step=S):
    """Runs both sides' timers from t0 to t1 in steps, shuttling bytes;
    returns the payloads received."""
    got = []
    t = t0
    while t < t1:
        t = min(t + step, t1)
        hub.handle_expiry(now=t)
        client.handle_expiry(now=t)
        got += shuttle(conn, client, t)
    return got


class QuietHoursTest(unittest.TestCase):
    def test_hold_normal_pass_high_release_after(self):
        with tern.Hub(seed=1) as hub:
            hub.set_wallclock(now=0, wall_ns=NOON)
            # quiet from 12:00:00 to 12:00:10 UTC, offset 0
            hub.set_policy("k", quiet_start=12 * 3600, quiet_end=12 * 3600 + 10,
                           now=1)
            conn, client = handshake(hub, "k")
            shuttle(conn, client, 1)
            hub.publish("k", b"normal", now=1)
            hub.publish("k", b"low", priority=tern.Priority.LOW, now=1)
            hub.publish("k", b"high", priority=tern.Priority.HIGH, now=1)
            self.assertEqual(shuttle(conn, client, 2), [b"high"])
            st = hub.stats()
            self.assertEqual(st.policy_holds, 1)
            self.assertEqual(st.policy_releases, 0)
            # the hub's expiry includes the end of the hold
            self.assertIsNotNone(hub.expiry)
            self.assertLessEqual(hub.expiry, 10 * S)
            self.assertEqual(advance(hub, conn, client, 2, 9 * S), [])
            self.assertEqual(advance(hub, conn, client, 9 * S, 10 * S),
                             [b"normal", b"low"])
            self.assertEqual(hub.stats().policy_releases, 1)
            conn.close()
            client.release()

    def test_utc_offset_shifts_the_window(self):
        with tern.Hub(seed=1) as hub:
            hub.set_wallclock(now=0, wall_ns=NOON)
            # local 20:00 at UTC+8: quiet 19:00-21:00 local holds
            hub.set_policy(b"k", quiet_start=19 * 3600, quiet_end=21 * 3600,
                           utc_offset=8 * 3600, now=1)
            conn, client = handshake(hub, b"k")
            hub.publish(b"k", b"m", now=1)
            self.assertEqual(shuttle(conn, client, 1), [])
            hub.clear_policy(b"k", now=2)  # released at once
            self.assertEqual(shuttle(conn, client, 2), [b"m"])
            conn.close()
            client.release()

    def test_zone_callback(self):
        calls = []

        def zone(z, wall_seconds):
            calls.append((z, wall_seconds))
            return 8 * 3600 if z == 7 else 0

        with tern.Hub(seed=1) as hub:
            hub.set_wallclock(now=0, wall_ns=NOON)
            hub.set_zone_callback(zone)
            hub.set_policy(b"k", quiet_start=19 * 3600, quiet_end=21 * 3600,
                           zone=7, now=1)
            conn, client = handshake(hub, b"k")
            hub.publish(b"k", b"m", now=1)
            self.assertEqual(shuttle(conn, client, 1), [])
            self.assertTrue(calls)
            self.assertEqual(calls[0][0], 7)
            self.assertEqual(calls[0][1], NOON // S)
            hub.set_zone_callback(None)  # back to utc_offset 0: not quiet
            hub.set_policy(b"k", quiet_start=19 * 3600, quiet_end=21 * 3600,
                           zone=7, now=2)
            self.assertEqual(shuttle(conn, client, 2), [b"m"])
            conn.close()
            client.release()

    def test_zone_callback_errors_count_as_utc(self):
        seen = []
        old = sys.unraisablehook
        sys.unraisablehook = lambda u: seen.append(u.exc_type)
        try:
            with tern.Hub(seed=1) as hub:
                hub.set_wallclock(now=0, wall_ns=NOON)

                def bad(z, w):
                    raise RuntimeError("no zone database")
                hub.set_zone_callback(bad)
                # quiet at local 12:00 only if the offset is 0
                hub.set_policy(b"k", quiet_start=11 * 3600, quiet_end=13 * 3600,
                               zone=1, now=1)
                conn, client = handshake(hub, b"k")
                hub.publish(b"k", b"m", now=1)
                self.assertEqual(shuttle(conn, client, 1), [])
                self.assertIn(RuntimeError, seen)
                seen.clear()

                def reenter(z, w):
                    hub.stats()  # may not use the hub
                    return 0
                hub.set_zone_callback(reenter)
                hub.set_policy(b"k2", quiet_start=11 * 3600, quiet_end=13 * 3600,
                               zone=1, now=2)
                hub.publish(b"k2", b"m", now=2)
                c2, cl2 = handshake(hub, b"k2", now=2)
                self.assertEqual(shuttle(c2, cl2, 2), [])
                self.assertIn(tern.StateError, seen)
                seen.clear()
                hub.set_zone_callback(lambda z, w: "eight")
                hub.set_policy(b"k3", quiet_start=11 * 3600, quiet_end=13 * 3600,
                               zone=1, now=3)
                c3, cl3 = handshake(hub, b"k3", now=3)
                hub.publish(b"k3", b"m", now=3)
                self.assertEqual(shuttle(c3, cl3, 3), [])
                self.assertIn(TypeError, seen)
                # closing the hub or a Conn in there raises; a Conn that
                # goes away is deleted after the hub call, not during it
                held = [handshake(hub, b"k4", now=4)]

                def drop(z, w):
                    c, cl = held.pop()
                    cl.release()
                    try:
                        c.close()
                    except tern.StateError:
                        seen.append("close")
                    del c
                    import gc
                    gc.collect()
                    hub.close()
                hub.set_zone_callback(drop)
                hub.set_policy(b"k5", quiet_start=11 * 3600, quiet_end=13 * 3600,
                               zone=1, now=5)
                c5, cl5 = handshake(hub, b"k5", now=5)
                hub.publish(b"k5", b"m", now=5)
                shuttle(c5, cl5, 5)
                self.assertEqual(held, [])
                self.assertIn("close", seen)
                self.assertIn(tern.StateError, seen)
                self.assertFalse(hub.closed)
                hub.set_zone_callback(None)
                hub.handle_expiry(now=6)  # deletes the deferred connection
                self.assertEqual(hub.stats().conns, 4)
                with self.assertRaises(TypeError):
                    hub.set_zone_callback(5)
                for c, cl in ((conn, client), (c2, cl2), (c3, cl3), (c5, cl5)):
                    c.close()
                    cl.release()
        finally:
            sys.unraisablehook = old


class CapTest(unittest.TestCase):
    def test_cap_holds_the_excess(self):
        with tern.Hub(seed=1) as hub:
            hub.set_policy(b"k", cap_count=2, cap_window=60, now=1)
            conn, client = handshake(hub, b"k")
            for i in range(4):
                hub.publish(b"k", b"m%d" % i, now=1)
            hub.publish(b"k", b"h", priority=tern.Priority.HIGH, now=1)
            got = shuttle(conn, client, 1)
            self.assertEqual(sorted(got), [b"h", b"m0", b"m1"])
            self.assertEqual(hub.stats().policy_holds, 1)
            self.assertEqual(advance(hub, conn, client, 1, 59 * S), [])
            self.assertEqual(advance(hub, conn, client, 59 * S, 1 + 60 * S),
                             [b"m2", b"m3"])
            conn.close()
            client.release()


class FallbackTest(unittest.TestCase):
    def test_fallback_event_carries_the_message(self):
        with tern.Hub(seed=1) as hub:
            r = hub.publish(b"k", b"urgent", id=b"id1", fallback=5, cookie=9, now=1)
            self.assertEqual(r.id, b"id1")
            list(hub.events())
            hub.handle_expiry(now=1 + 5 * S)
            evs = [e for e in hub.events() if e.type == tern.EventType.FALLBACK]
            self.assertEqual(len(evs), 1)
            ev = evs[0]
            self.assertEqual((ev.msg_id, ev.session_key, ev.aux, ev.seq, ev.count,
                              ev.cookie), (b"id1", b"k", b"urgent", 0, 0, 9))
            self.assertEqual(hub.stats().fallbacks, 1)
            self.assertTrue(hub.session_info(b"k").pending >= 1)

    def test_acked_in_time_no_event(self):
        with tern.Hub(seed=1) as hub:
            conn, client = handshake(hub, b"k")
            hub.publish(b"k", b"m", fallback=5.0, now=1)
            self.assertEqual(shuttle(conn, client, 1), [b"m"])
            client.handle_expiry(now=2 * S)
            shuttle(conn, client, 2 * S)
            hub.handle_expiry(now=10 * S)
            self.assertEqual([e for e in hub.events()
                              if e.type == tern.EventType.FALLBACK], [])
            self.assertEqual(hub.stats().fallbacks, 0)
            conn.close()
            client.release()

    def test_publish_many_fallback(self):
        with tern.Hub(seed=1) as hub:
            hub.publish_many([b"a", b"b"], b"p", fallback=1, now=1)
            hub.handle_expiry(now=1 + S)
            keys = sorted(e.session_key for e in hub.events()
                          if e.type == tern.EventType.FALLBACK)
            self.assertEqual(keys, [b"a", b"b"])

    def test_publish_batch_and_session(self):
        with tern.Hub(seed=1) as hub:
            hub.publish_batch(b"a", [b"x", b"y"], fallback=1, now=1)
            s = hub.session(b"b")
            s.publish(b"z", fallback=1, now=1)
            s.set_policy(cap_count=1, cap_window=10, now=1)
            s.clear_policy(now=1)
            hub.handle_expiry(now=1 + S)
            got = sorted(e.aux for e in hub.events()
                         if e.type == tern.EventType.FALLBACK)
            self.assertEqual(got, [b"x", b"y", b"z"])

    def test_bad_fallback(self):
        with tern.Hub() as hub:
            with self.assertRaises(ValueError):
                hub.publish(b"k", b"p", fallback=-1)
            with self.assertRaises(TypeError):
                hub.publish(b"k", b"p", fallback="5")


class AcceptRateTest(unittest.TestCase):
    def test_accept_rate_defers(self):
        with tern.Hub(seed=1, accept_rate=1, accept_burst=1,
                      accept_max_retry=2) as hub:
            c1, cl1 = handshake(hub, b"a")
            c2, cl2 = handshake(hub, b"b")
            self.assertEqual(hub.stats().accepts_deferred, 1)
            # the deferred one is welcomed, then told to come back later
            self.assertFalse(c1.info().closed)
            self.assertTrue(c2.info().closed)
            evs = list(iter(cl2.next_event, None))
            self.assertEqual([e.type for e in evs],
                             [tern.ClientEventType.CONNECTED,
                              tern.ClientEventType.DISCONNECTED])
            self.assertEqual(evs[1].reason, tern.GoawayReason.LIMIT)
            self.assertTrue(0 < evs[1].retry_after <= 2, evs[1])
            for c, cl in ((c1, cl1), (c2, cl2)):
                c.close()
                cl.release()

    def test_bad_settings(self):
        with self.assertRaises(ValueError):
            tern.Hub(accept_rate=-1)
        with self.assertRaises(TypeError):
            tern.Hub(accept_burst="x")
        with self.assertRaises(ValueError):
            tern.Hub(accept_max_retry=-1)


class BadPolicyTest(unittest.TestCase):
    def test_bad_arguments(self):
        with tern.Hub(max_sessions=1) as hub:
            bad_value = [dict(quiet_start=86400, quiet_end=0),
                         dict(quiet_start=0, quiet_end=-1),
                         dict(utc_offset=64801), dict(utc_offset=-2**70),
                         dict(cap_count=tern.MAX_CAP + 1, cap_window=1),
                         dict(cap_count=3), dict(cap_window=-1)]
            for kw in bad_value:
                with self.assertRaises(ValueError, msg=kw):
                    hub.set_policy(b"k", **kw)
            bad_type = [dict(quiet_start=1), dict(quiet_end=1),
                        dict(quiet_start="1", quiet_end=2), dict(utc_offset=1.5),
                        dict(zone=True), dict(cap_count=None, cap_window="x"),
                        dict(now="x"), dict(bogus=1)]
            for kw in bad_type:
                with self.assertRaises(TypeError, msg=kw):
                    hub.set_policy(b"k", **kw)
            with self.assertRaises(TypeError):
                hub.set_policy(None, cap_count=1, cap_window=1)
            with self.assertRaises(TypeError):
                hub.set_policy(b"k", 1)
            with self.assertRaises(tern.TooLargeError):
                hub.set_policy(b"x" * (tern.MAX_SESSION_KEY + 1), cap_count=1,
                               cap_window=1)
            with self.assertRaises(tern.InvalidError):
                hub.set_policy(b"", cap_count=1, cap_window=1)
            hub.set_policy(b"k", cap_count=1, cap_window=1, now=1)
            self.assertTrue(hub.has_session(b"k"))
            with self.assertRaises(tern.LimitError):
                hub.set_policy(b"other", cap_count=1, cap_window=1, now=1)
            hub.set_policy(b"k", now=1)  # no rules: removes it
            hub.clear_policy(b"k", now=1)
        with self.assertRaises(tern.ClosedError):
            hub.set_policy(b"k", cap_count=1, cap_window=1)
        with self.assertRaises(tern.ClosedError):
            hub.clear_policy(b"k")
        with self.assertRaises(tern.ClosedError):
            hub.set_zone_callback(None)


if __name__ == "__main__":
    unittest.main()
