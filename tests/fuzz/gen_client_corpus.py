#!/usr/bin/env python3
"""Writes the seed corpus of client_fuzz.c (corpus/client/): short scripts
that connect, get WELCOME, receive messages and duplicates, ack, lose the
connection, reconnect and let time pass, so the fuzzer starts from deep
states.  Opcodes are those of client_fuzz.c."""
import os

# header: h0 (bit 0 manual ack, bit 1 adaptive, bits 2-4 ack_every - 1),
#         h1 (bits 0-2 dedup_max, bit 3 dedup window, bits 4-5 max_attempts,
#             bits 6-7 heartbeat s), h2 (allocation to fail, 0 none)
def header(manual=0, adaptive=0, ack_every=3, dedup=4, window=0, attempts=0,
           fail=0):
    h0 = manual | (adaptive << 1) | ((ack_every - 1) << 2)
    h1 = dedup | (8 if window else 0) | (attempts << 4)
    return [h0, h1, fail]

RAW = lambda data: [0, len(data)] + list(data)
WELCOME = lambda epoch=1, flags=0, hb=4, window=16: [1, epoch | (flags << 2), hb, window]
MSG = lambda idx=0, step=0, big=0, extra=0, payload=0: [2, (step & 3) | (payload << 4), (idx << 5) | (0x10 if extra else 0)]
MSG_SEQ = lambda seq, idx=0: [2, 0x80 | seq, idx << 5]
PING = lambda v: [3, 0, v]
PONG_NOW = [3, 1, 1]
DROPPED = lambda n, reason=1: [3, 2 | (reason << 2), n]
GOAWAY = lambda reason=0, retry=10: [3, 3 | (reason << 2), retry]
TIME = lambda ticks: [4, ticks]
NEXT = [5]
WRITE = lambda cap=63: [6, cap]
TAKE = lambda n=7: [7, n]
ACK_LAST = [8, 1]
LOST = [9]
CONNECT = [10]
CLOSE = [11, 0x5a]
ALL = [12]
SAVE = [13]
PEEK = lambda k: [14, k]  # k & 0x80: the socket takes all; else k % (n+1)
PUBLISH = lambda a: [15, a]  # a: id, SYNC, payload size (a >> 5) * 140

scripts = {
    "basic": header() + WRITE() + WELCOME() + MSG(0) + MSG(1, extra=1) + TAKE() + WRITE()
             + PING(7) + WRITE(),
    "dups": header() + WRITE() + WELCOME() + MSG(0) + MSG(0) + MSG(1) + MSG(0) + TAKE() + WRITE()
            + TIME(8) + WRITE(),
    "manual": header(manual=1, ack_every=1) + WRITE() + WELCOME() + MSG(0) + MSG(1) + TAKE()
              + ACK_LAST + WRITE() + LOST + NEXT + ALL + WRITE() + WELCOME() + MSG(0) + MSG(1)
              + TAKE() + ACK_LAST + WRITE(),
    "resync": header() + WRITE() + WELCOME(epoch=1, flags=2) + MSG(2) + TAKE() + GOAWAY(0, 5)
              + TAKE() + NEXT + ALL + WRITE() + WELCOME(epoch=2, flags=2) + MSG(2) + TAKE(),
    "session": header() + WELCOME(epoch=1, flags=2) + MSG(3) + TAKE() + LOST + NEXT + ALL
               + WELCOME(epoch=1, flags=0) + TAKE(),
    "gap": header() + WELCOME() + DROPPED(3, 2) + DROPPED(1, 1) + TAKE(),
    "liveness": header() + WRITE() + WELCOME(hb=2) + TIME(40) + ALL + NEXT + ALL + WRITE(),
    "adaptive": header(adaptive=1) + WRITE() + WELCOME(hb=200) + WRITE() + PONG_NOW + NEXT
                + WRITE() + PONG_NOW + NEXT + WRITE() + NEXT + ALL,
    "backoff": header(attempts=2) + LOST + NEXT + ALL + LOST + NEXT + ALL + NEXT + ALL
               + CONNECT + WRITE(),
    "split": header() + RAW([0x02, 0x10, 0x01, 0, 0, 0, 0, 0, 0, 0, 9]) + RAW([0, 0x44, 0xa0])
             + RAW([0x5b, 0xb8, 0x10, 0x00]) + MSG(4) + TAKE() + WRITE(1) + WRITE(1),
    "garbage": header() + WELCOME() + RAW([0x03, 0x80, 0x00, 0x40, 0x00]) + TAKE() + NEXT + ALL,
    "close": header() + WRITE() + WELCOME() + MSG(0) + TAKE() + CLOSE + WRITE() + WRITE() + LOST,
    "nomem": header(fail=9) + WRITE() + WELCOME() + MSG(0) + MSG(1) + MSG(2) + TAKE() + NEXT
             + ALL + WRITE() + WELCOME() + MSG(3) + TAKE(),
    "save": header(dedup=5, window=1) + WRITE() + WELCOME() + MSG(0) + MSG(1) + MSG(0) + TAKE(2)
            + SAVE + TAKE() + SAVE + TIME(12) + SAVE + LOST + NEXT + ALL + WRITE() + WELCOME()
            + MSG(2) + SAVE,
    "save_manual": header(manual=1, dedup=7) + WRITE() + WELCOME() + MSG(0) + MSG(1) + MSG(2)
                   + TAKE() + SAVE + ACK_LAST + SAVE + WRITE() + GOAWAY(0, 5) + SAVE + ALL,
    "peek": header() + PEEK(5) + PEEK(0x80) + WELCOME() + PUBLISH(0x60) + PUBLISH(0xe0)
            + PUBLISH(0x41) + PEEK(100) + WRITE() + PEEK(0x80) + MSG(0) + TAKE() + PEEK(0x80)
            + CLOSE + PEEK(1) + PEEK(0x80) + TAKE() + LOST,
    "peek_lost": header() + PEEK(3) + LOST + NEXT + ALL + PEEK(0x80) + WELCOME()
                 + PUBLISH(0xff) + PEEK(9) + LOST + NEXT + ALL + PEEK(0x80) + WRITE(),
    "bigmsg": header() + WELCOME() + MSG(5, payload=3) + MSG(6, payload=2, extra=1) + TAKE()
              + WRITE(),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "client")
os.makedirs(out, exist_ok=True)
for name, data in scripts.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes(data))
