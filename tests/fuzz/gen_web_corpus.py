#!/usr/bin/env python3
"""Writes the seed corpora of the ws and json fuzz targets
(tests/fuzz/corpus/ws and tests/fuzz/corpus/json), encoded here from RFC 6455
and the envelope format independently of the C code.  Deterministic; re-run
after changing a format:

    python3 tests/fuzz/gen_web_corpus.py
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- ws: 4 settings bytes, then the stream -------------------------------
# byte 0: bit 0 role (0 server, 1 client), bits 1-3 max_frame and bits 4-6
# max_message as indexes into {0, 1, 5, 125, 126, 1000, 65536, 2^64-1};
# bytes 1-3: seed for chunking.
BIG = 7 << 1 | 7 << 4
SMALL = 2 << 1 | 2 << 4  # max_frame 5, max_message 5


def settings(role=0, limits=BIG, seed=0x123456):
    return bytes([role | limits, seed & 255, seed >> 8 & 255, seed >> 16 & 255])


def frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0,
          force_len=None):
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload) if force_len is None else force_len
    m = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + body


TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10

ws = {
    "hello": settings() + frame(TEXT, b"Hello"),
    "fragments_ping": settings() + frame(TEXT, b"Hel", fin=False)
    + frame(PING, b"ping") + frame(CONT, b"lo"),
    "close_reason": settings() + frame(TEXT, b"a")
    + frame(CLOSE, struct.pack(">H", 1000) + b"bye"),
    "close_empty": settings() + frame(CLOSE, b""),
    "ping_pong": settings() + frame(PING, b"") + frame(PONG, b"x" * 125),
    "binary_300": settings() + frame(BINARY, bytes(range(256)) + b"z" * 44),
    "binary_70000": settings() + frame(BINARY, b"q" * 70000),
    "utf8_split": settings() + frame(TEXT, b"\xe2\x82", fin=False)
    + frame(CONT, b"\xac!"),
    "utf8_bad": settings() + frame(TEXT, b"\xed\xa0\x80"),
    "opcode_bad": settings() + frame(3, b""),
    "rsv_bad": settings() + frame(TEXT, b"a", rsv=4),
    "unmasked_to_server": settings() + frame(TEXT, b"a", mask=None),
    "client_unmasked": settings(role=1) + frame(TEXT, b"Hello", mask=None)
    + frame(BINARY, b"\x00\x01", mask=None),
    "limits_small": settings(limits=SMALL) + frame(BINARY, b"12345")
    + frame(BINARY, b"123", fin=False) + frame(CONT, b"456"),
    "len16_not_shortest": settings() + bytes([0x82, 0x80 | 126, 0, 5])
    + b"\0\0\0\0" + b"abcde",
    "close_code_bad": settings() + frame(CLOSE, struct.pack(">H", 1005)),
    "after_close": settings() + frame(CLOSE, struct.pack(">H", 4000))
    + frame(TEXT, b"late"),
    "empty_fragments": settings() + frame(BINARY, b"", fin=False)
    + frame(CONT, b"", fin=False) + frame(CONT, b"x"),
}

# ---- json: mode byte, then the mode's input ------------------------------


def envelope(seq, prio, id_, ct, payload):
    return (bytes([0]) + struct.pack(">Q", seq)
            + bytes([prio | len(id_) << 2, len(ct)]) + id_ + ct + payload)


json = {
    "env_text": envelope(7, 2, b"order-1", b"application/json", b'{"a":1}'),
    "env_escapes": envelope(0, 1, b"id\"\\", b"", b'a"b\\c\n\x01\x7f\xc3\xa9'),
    "env_binary": envelope(2**64 - 1, 0, b"\xff\xfe", b"t\xc0",
                           b"\x00\xff\xfe\xfd"),
    "env_surrogate": envelope(3, 1, b"x", b"", b"\xed\xa0\x80"),
    "env_bad_prio": envelope(1, 3, b"x", b"", b"y"),
    "ack": b"\x01" + b'{"ack":42}',
    "ack_ws": b"\x01" + b' { "ack" :\t0 }\r\n',
    "ack_max": b"\x01" + b'{"ack":4611686018427387903}',
    "ack_over": b"\x01" + b'{"ack":4611686018427387904}',
    "ack_extra": b"\x01" + b'{"ack":1,"x":2}',
    "ack_float": b"\x01" + b'{"ack":1.5}',
    "dropped": b"\x02" + struct.pack(">Q", 12) + b"\x02",
    "dropped_retention": b"\x02" + struct.pack(">Q", 2**64 - 1) + b"\x04",
    "dropped_bad": b"\x02" + struct.pack(">Q", 1) + b"\x05",
    "b64": b"\x03" + b"Zm9vYmFy",
    "b64_pad": b"\x03" + b"Zm9vYg==",
    "b64_noncanonical": b"\x03" + b"Zh==",
}


def write(name, files):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for k, v in files.items():
        with open(os.path.join(d, k + ".bin"), "wb") as f:
            f.write(v)


write("ws", ws)
write("json", json)
