#!/usr/bin/env python3
"""Writes the seed corpus of the frame fuzz target (tests/fuzz/corpus/frame).

One small file per frame type, a stream of several frames, and a few
malformed frames, encoded here from tern-protocol(7) independently of the C
encoder.  The output is deterministic; re-run after changing the format:

    python3 tests/fuzz/gen_corpus.py
"""

import os
import struct

HELLO, WELCOME, MSG, ACK, PING, PONG, DROPPED, GOAWAY = range(1, 9)
VERSION = 1


def varint(v, width=None):
    """QUIC varint; |width| forces a (possibly non-shortest) length."""
    if width is None:
        width = 1 if v < 1 << 6 else 2 if v < 1 << 14 else 4 if v < 1 << 30 else 8
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[width]
    return (v | prefix << (8 * width - 2)).to_bytes(width, "big")


def u64(v):
    return struct.pack(">Q", v)


def field(b):
    return varint(len(b)) + b


def frame(ftype, body):
    return bytes([ftype]) + varint(len(body)) + body


def hello(key=b"user-42/phone", token=b"secret", last_seq=0, epoch=0, hb=0):
    return frame(HELLO, varint(VERSION) + varint(last_seq) + u64(epoch) +
                 varint(hb) + field(key) + field(token))


def welcome(epoch=0x1122334455667788, flags=3, hb=4000, live=7000,
            window=256, retry=0):
    return frame(WELCOME, varint(VERSION) + u64(epoch) + varint(flags) +
                 varint(hb) + varint(live) + varint(window) + varint(retry))


def msg(seq=1, ttl=0, prio=1, mid=b"m-1", ckey=b"", ctype=b"", attrs=(),
        payload=b""):
    flags = prio | (4 if ckey else 0) | (8 if ctype else 0)
    body = varint(seq) + varint(ttl) + varint(flags) + field(mid)
    if ckey:
        body += field(ckey)
    if ctype:
        body += field(ctype)
    body += varint(len(attrs))
    for k, v in attrs:
        body += field(k) + field(v)
    return frame(MSG, body + payload)


def goaway(reason=0, retry=1500, text=b"restarting"):
    return frame(GOAWAY, varint(reason) + varint(retry) + field(text))


def seeds():
    full = msg(seq=70000, ttl=60000, prio=2, mid=b"order-1234",
               ckey=b"order-status", ctype=b"application/json",
               attrs=((b"lang", b"en"), (b"region", b"eu")),
               payload=b'{"status":"shipped"}')
    yield "hello", hello(last_seq=300, epoch=0x0102030405060708, hb=4000)
    yield "hello_first", hello(token=b"")
    yield "welcome", welcome()
    yield "msg_min", msg(payload=b"hi")
    yield "msg_full", full
    yield "ack", frame(ACK, varint(16384))
    yield "ping", frame(PING, u64(123456789))
    yield "pong", frame(PONG, u64(123456789))
    yield "dropped", frame(DROPPED, varint(12) + varint(1))
    yield "goaway", goaway()
    yield "stream", (welcome() + full + msg(seq=70001, payload=b"x" * 100) +
                     frame(DROPPED, varint(3) + varint(2)) +
                     frame(PING, u64(1)) + goaway(reason=1, text=b""))
    yield "client_stream", (hello() + frame(ACK, varint(5)) +
                            frame(PONG, u64(7)) + goaway(reason=7, text=b""))
    # Malformed input.
    yield "bad_type", bytes([0x09, 0x01, 0x00])
    yield "bad_length_not_shortest", bytes([ACK]) + varint(1, 2) + varint(5)
    yield "bad_seq_not_shortest", frame(ACK, varint(5, 4))
    yield "bad_truncated", full[:-5]
    yield "bad_leftover", frame(ACK, varint(5) + b"\0")
    yield "bad_ping_short", frame(PING, b"\1\2\3\4\5\6\7")
    yield "bad_priority", frame(MSG, varint(1) + varint(0) + varint(3) +
                                field(b"id") + varint(0))
    yield "bad_key_too_long", hello(key=b"k" * 129)
    yield "bad_attrs_too_many", msg(attrs=((b"k", b"v"),) * 9)
    yield "bad_field_past_body", frame(GOAWAY, varint(1) + varint(0) +
                                       varint(20) + b"short")
    yield "bad_version", frame(HELLO, varint(2) + b"\0" + u64(0) + b"\0" +
                               field(b"k") + field(b""))
    yield "bad_body_too_large", bytes([HELLO]) + varint(1 << 30)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "corpus", "frame")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
