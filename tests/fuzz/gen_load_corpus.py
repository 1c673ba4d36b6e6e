#!/usr/bin/env python3
"""Writes the seed corpus of load_fuzz.c (corpus/load/): store contents in
the record format of lib/deliver/persist.c, as [keylen][key][valuelen:2]
[value] after a first byte giving the load time in seconds."""
import os, struct

SEC = 1000000000

def rec(key, value):
    return bytes([len(key)]) + key + struct.pack(">H", len(value)) + value

def epoch(e):
    return rec(b"E", struct.pack(">Q", e))

def session(key, reserved=2048, losses=None):
    v = struct.pack(">Q", reserved)
    if losses is not None:  # losses to tell, by drop reason (20-byte form)
        v += struct.pack(">III", *losses)
    return rec(b"S" + key, v)

def message(serial, key, msgid, payload, prio=1, expiry=2**64 - 1, ck=b""):
    flags = prio | (4 if ck else 0)
    tail = bytes([flags, len(msgid)]) + msgid
    if ck:
        tail += bytes([len(ck)]) + ck
    tail += b"\x00" + payload
    v = bytes([len(key)]) + key + bytes([0]) + struct.pack(">H", 1)
    v += struct.pack(">Q", expiry) + bytes([0]) + tail
    return rec(b"M" + struct.pack(">Q", serial), v)

def dedup(serial, key, msgid, expires):
    v = struct.pack(">Q", expires) + bytes([len(key)]) + key + msgid
    return rec(b"D" + struct.pack(">Q", serial), v)

corpus = {
    "empty": bytes([1]),
    "epoch": bytes([1]) + epoch(0x1234),
    "one": bytes([1]) + epoch(7) + session(b"alice") + message(1, b"alice", b"m1", b"hello"),
    "many": bytes([1]) + epoch(7) + session(b"alice") + session(b"bob", 4096)
    + message(3, b"alice", b"a", b"x", prio=2) + message(1, b"alice", b"b", b"y", prio=0)
    + message(2, b"bob", b"c", b"z") + dedup(3, b"alice", b"a", 100 * SEC),
    "expired": bytes([50]) + session(b"k") + message(1, b"k", b"old", b"x", expiry=10 * SEC)
    + message(2, b"k", b"new", b"y", expiry=100 * SEC) + dedup(1, b"k", b"old", 20 * SEC),
    "collapse": bytes([1]) + session(b"k") + message(1, b"k", b"s1", b"1-0", ck=b"score")
    + message(2, b"k", b"s2", b"2-0", ck=b"score"),
    "orphans": bytes([1]) + message(1, b"ghost", b"m", b"x") + dedup(1, b"ghost", b"m", 99 * SEC),
    "losses": bytes([50]) + epoch(7) + session(b"k", losses=(3, 0, 1))
    + session(b"full", losses=(0xffffffff, 0xffffffff, 0xffffffff))
    + message(1, b"full", b"gone", b"x", expiry=10 * SEC)
    + message(2, b"k", b"live", b"y"),
    "garbage": bytes([1]) + rec(b"M" + b"\x00" * 8, b"\xff" * 30) + rec(b"S", b"") + rec(b"Zq", b"1"),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "load")
os.makedirs(out, exist_ok=True)
for name, data in corpus.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
