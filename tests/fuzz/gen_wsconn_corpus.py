#!/usr/bin/env python3
"""Writes the seed corpus of the wsconn fuzz target
(tests/fuzz/corpus/wsconn): scripts for wsconn_fuzz.c that open, publish,
ack, ping, fragment, close and time out tern.bin (peer 0) and tern.json
(peer 1) connections.  Deterministic; re-run after changing the script
format:

    python3 tests/fuzz/gen_wsconn_corpus.py
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "wsconn")

BIN, JSON = 0x00, 0x80  # the peer bit of an opcode byte


def hello(peer=BIN, cut=None, piece=0):
    a = 0 if cut is None else 4 | cut << 3
    return bytes([peer | 1, a, 0, piece])


def ack(seq, peer, cut=None, piece=0):
    a = 1 if cut is None else 1 | 4 | cut << 3
    return bytes([peer | 1, a, seq, piece])


def publish(peer, size=3, prio=1):
    key = 0 if peer == BIN else 1
    return bytes([3, size << 3 | key << 2 | prio])


def write(peer, cap=255):
    return bytes([peer | 4, cap])


def control(peer, kind, payload=b""):
    """kind 0 ping, 1 pong, 2 close with the payload, 3 close 1000."""
    return bytes([peer | 2, len(payload) << 2 | kind]) + payload


def raw(peer, data, piece=0):
    return bytes([peer | 0, len(data), piece]) + data


def time(steps):
    return bytes([5, steps])


def host(peer, a):
    return bytes([peer | 6, a])


SEEDS = {
    "bin_basic": b"\0\0" + hello() + publish(BIN) + write(BIN) + ack(1, BIN)
    + write(BIN),
    "json_basic": b"\0\0" + publish(JSON) + publish(JSON, 9) + write(JSON)
    + ack(2, JSON) + write(JSON),
    "fragments": b"\0\0" + hello(cut=2, piece=1) + publish(JSON) + write(JSON)
    + ack(1, JSON, cut=3, piece=2) + publish(BIN) + write(BIN, 1)
    + write(BIN) + ack(1, BIN, cut=1, piece=1),
    "pings": b"\0\0" + control(JSON, 0, b"hey") + write(JSON)
    + hello() + control(BIN, 0, b"") + write(BIN) + control(JSON, 1, b"x"),
    "peer_close": b"\0\0" + hello() + publish(BIN) + write(BIN)
    + control(BIN, 3) + write(BIN) + control(JSON, 2, b"") + write(JSON)
    + host(BIN, 0) + host(BIN, 0) + hello(),
    "server_close": b"\x01\x01" + hello() + host(BIN, 1) + publish(JSON)
    + host(JSON, 2) + write(JSON, 2) + write(JSON) + host(BIN, 2 | 3 << 4)
    + write(BIN, 1) + write(BIN),
    "heartbeat": b"\0\x01" + hello() + publish(JSON) + write(JSON) + time(45)
    + write(JSON) + write(BIN) + time(45) + write(JSON) + time(90)
    + write(JSON) + write(BIN),
    "bad": b"\0\0" + raw(JSON, b"\x81\x03abc") + write(JSON)
    + raw(BIN, b"\x82\xff\0\0\0\0\0\x10\0\x01\0\0\0\0") + write(BIN),
    "nomem": b"\0\0" + bytes([7, 0]) + hello() + bytes([7, 1]) + publish(JSON)
    + bytes([7, 0]) + write(JSON, 3) + write(JSON) + bytes([7, 2])
    + write(BIN),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
