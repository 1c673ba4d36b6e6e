"""bench.py: publish -> write -> ack from Python, 64-byte payloads.

    python3 bench.py [messages] [batch]

One session, one binary connection bound by a real tern.Client HELLO, like
bench/core's "single" mode.  Each round publishes `batch` messages with
Hub.publish_batch, writes them with one Conn.write_into into a reused
bytearray, and acks them with one ACK frame through Conn.read (the
receiver's batching; the frames are not parsed, as in bench/core, since
the receiver's cost is not the hub's).  Five runs, every run and the
median printed, then the per-call cost of a single Hub.publish (the
result object included) and of a single publish -> write -> ack round.
"""

import statistics
import sys
import time

import tern

PAYLOAD = b"x" * 64
RUNS = 5


def ack_frame(seq: int) -> bytes:
    """ACK (0x04) with a QUIC varint seq, as tern-protocol(7) spells it."""
    if seq < 1 << 6:
        body = bytes([seq])
    elif seq < 1 << 14:
        body = (0x4000 | seq).to_bytes(2, "big")
    elif seq < 1 << 30:
        body = (0x80000000 | seq).to_bytes(4, "big")
    else:
        body = (0xC000000000000000 | seq).to_bytes(8, "big")
    return bytes([0x04, len(body)]) + body


def connect(hub: tern.Hub, key: bytes, now: int) -> tern.Conn:
    """A connection bound to key by a client's HELLO, WELCOME flushed."""
    client = tern.Client(key, seed=7, now=now)
    client.next_event()  # CONNECT
    client.connect(now=now)
    conn = hub.open_conn(now=now)
    conn.read(client.write(now=now), now=now)
    client.read(conn.write(now=now), now=now)
    ev = client.next_event()
    assert ev.type == tern.ClientEventType.CONNECTED, ev
    client.release()
    for _ in hub.events():
        pass
    return conn


def run_batched(count: int, batch: int) -> float:
    with tern.Hub(seed=1, inflight_window=max(batch, 256)) as hub:
        key = b"user-00000000001"
        now = 1
        conn = connect(hub, key, now)
        payloads = [PAYLOAD] * batch
        buf = bytearray(batch * (len(PAYLOAD) + 32) + 4096)
        publish_batch = hub.publish_batch
        write_into = conn.write_into
        read = conn.read
        rounds = count // batch
        acks = [ack_frame(batch * (i + 1)) for i in range(rounds)]
        t0 = time.perf_counter()
        for i in range(rounds):
            publish_batch(key, payloads, ttl=60, now=now)
            if write_into(buf, now=now) <= 0:
                raise SystemExit("bench: nothing written")
            read(acks[i], now=now)
        t1 = time.perf_counter()
        st = hub.stats()
        if st.acked != rounds * batch or st.messages != 0:
            raise SystemExit(f"bench: acked {st.acked} of {rounds * batch}")
        conn.close()
        return rounds * batch / (t1 - t0)


def per_call(n: int) -> tuple:
    """ns per Hub.publish alone, and per single publish -> write -> ack."""
    with tern.Hub(seed=1) as hub:
        key = b"user-00000000002"
        conn = connect(hub, key, 1)
        publish = hub.publish
        t0 = time.perf_counter_ns()
        for _ in range(n):
            publish(key, PAYLOAD, ttl=60, now=1)
        t1 = time.perf_counter_ns()
        hub.purge_session(key, now=1)
        buf = bytearray(4096)
        base = hub.session_info(key).next_seq - 1
        acks = [ack_frame(base + i + 1) for i in range(n)]
        write_into = conn.write_into
        read = conn.read
        t2 = time.perf_counter_ns()
        for i in range(n):
            publish(key, PAYLOAD, ttl=60, now=1)
            write_into(buf, now=1)
            read(acks[i], now=1)
        t3 = time.perf_counter_ns()
        if hub.stats().messages != 0:
            raise SystemExit("bench: single round trips left messages")
        conn.close()
        return (t1 - t0) / n, (t3 - t2) / n


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    rates = [run_batched(count, batch) for _ in range(RUNS)]
    med = statistics.median(rates)
    print(f"python publish_batch -> write_into -> ACK, 64 B, batch {batch}, "
          f"{count} messages x {RUNS}")
    print("  runs: " + ", ".join(f"{r / 1e6:.2f}M" for r in rates) + " msg/s")
    print(f"  median: {med:,.0f} messages/s "
          f"({'meets' if med >= 1e6 else 'BELOW'} the 1,000,000/s target)")
    one, trip = per_call(200_000)
    print(f"  single Hub.publish: {one:.0f} ns per call "
          f"(PublishResult included); single publish -> write -> ACK: "
          f"{trip:.0f} ns per message")


if __name__ == "__main__":
    main()
