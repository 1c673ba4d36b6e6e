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

def tail(msgid, payload, prio=1, attrs=()):
    t = bytes([prio, len(msgid)]) + msgid
    if attrs:
        t += bytes([len(attrs)])
        for k, v in attrs:
            t += bytes([len(k)]) + k + bytes([len(v)]) + v
    else:
        t += b"\x00"
    return t + payload

def topic(sid, name, end=1, max_messages=10000, max_bytes=64 << 20, max_age=0):
    v = bytes([1]) + struct.pack(">IQQII", max_messages, max_bytes, max_age, 0, 0)
    v += struct.pack(">Q", end) + bytes([len(name)]) + bytes(8) + name
    return rec(b"T" + struct.pack(">Q", sid), v)

def tmsg(sid, offset, serial, t, expiry=2**64 - 1, published=0):
    v = bytes([1, 0]) + struct.pack(">QQQ", expiry, published, serial) + bytes([0]) + t
    return rec(b"U" + struct.pack(">QQ", sid, offset), v)

def cursor(sid, key, acked, lost=0, flt=b""):
    v = bytes([1]) + struct.pack(">QIH", acked, lost, len(flt)) + flt
    return rec(b"C" + struct.pack(">Q", sid) + key, v)

def psubs(key, subs):
    v = bytes([1]) + struct.pack(">H", len(subs))
    for pat, flt in subs:
        v += bytes([len(pat)]) + pat + struct.pack(">H", len(flt)) + flt
    return rec(b"W" + key, v)

def payload(serial, t):
    return rec(b"P" + struct.pack(">Q", serial), bytes([1]) + t)

def shared(serial, key, pserial, expiry=2**64 - 1):
    v = bytes([len(key)]) + key + bytes([0]) + struct.pack(">H", 0)
    v += struct.pack(">Q", expiry) + bytes([1]) + struct.pack(">Q", pserial)
    return rec(b"M" + struct.pack(">Q", serial), v)

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
    "topic": bytes([1]) + epoch(7) + session(b"a") + session(b"b")
    + topic(5, b"news", end=3) + tmsg(5, 3, 10, tail(b"t3", b"hello"))
    + tmsg(5, 4, 11, tail(b"t4", b"world", attrs=((b"price", b"150"),)))
    + cursor(5, b"a", 4) + cursor(5, b"b", 1, lost=2, flt=b"price > 100"),
    "topic_gap": bytes([50]) + session(b"a") + topic(9, b"g", end=1, max_messages=4)
    + tmsg(9, 2, 20, tail(b"x", b"1")) + tmsg(9, 5, 21, tail(b"y", b"2"), expiry=10 * SEC)
    + tmsg(9, 9, 22, tail(b"z", b"3")) + cursor(9, b"a", 12),
    "topic_orphans": bytes([1]) + session(b"a") + tmsg(77, 1, 1, tail(b"o", b"x"))
    + cursor(77, b"a", 1) + cursor(5, b"ghost", 1) + topic(5, b"t") + psubs(b"nobody", [(b"t.*", b"")]),
    "patterns": bytes([1]) + session(b"p") + topic(3, b"trade.usd")
    + psubs(b"p", [(b"trade.*", b"price > 100"), (b"order.#", b"")]),
    "shared": bytes([1]) + session(b"a") + session(b"b")
    + payload(40, tail(b"many", b"once")) + shared(40, b"a", 40) + shared(41, b"b", 40)
    + shared(42, b"b", 40, expiry=0),
    "shared_missing": bytes([1]) + session(b"a") + shared(40, b"a", 99),
    "topic_bad": bytes([1]) + session(b"a") + rec(b"T" + bytes(8), b"\x01")
    + rec(b"C" + struct.pack(">Q", 1) + b"a", b"\x02" + bytes(14)),
    "garbage": bytes([1]) + rec(b"M" + b"\x00" * 8, b"\xff" * 30) + rec(b"S", b"") + rec(b"Zq", b"1"),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "load")
os.makedirs(out, exist_ok=True)
for name, data in corpus.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
