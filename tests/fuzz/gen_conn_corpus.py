#!/usr/bin/env python3
"""Writes the seed corpus of conn_fuzz.c (corpus/conn/): short scripts that
connect, publish, write, ack, lose connections and let time pass, so the
fuzzer starts from deep states.  Opcodes are those of conn_fuzz.c."""
import os

HELLO = lambda key, last_seq=0, epoch=1, hb=0: [1, (key << 1) | (2 if epoch else 0), last_seq, hb]
ACK = lambda seq: [1, 1, seq]
PUB = lambda a, b: [2, a, b]
WRITE = lambda cap: [3, cap]
TIME = lambda ticks: [4, ticks]
LOST = [5]
ACCEPT = [6, 1]
REJECT = [6, 0]
GOAWAY_ALL = [7]

scripts = {
    "basic": [0, 0, 0, 0] + HELLO(0) + PUB(1, 0) + PUB(2, 0) + WRITE(255) + ACK(2),
    "resume": [0, 0, 0, 0] + HELLO(0) + PUB(1, 0) + PUB(1, 0) + PUB(0, 0) + WRITE(255)
              + ACK(1) + LOST + HELLO(0, last_seq=2) + WRITE(255) + ACK(5),
    "expire": [1, 0, 0, 0] + PUB(0x11, 0x01) + PUB(0x10, 0x03) + TIME(20) + HELLO(0) + WRITE(255),
    "collapse": [1, 0, 0, 0] + HELLO(0) + PUB(0x08, 0x00) + WRITE(255) + PUB(0x08, 0x00) + LOST
                + HELLO(0) + WRITE(255),
    "overflow": [0, 0, 0, 2] + [x for i in range(10) for x in PUB(0x20, 0)] + HELLO(0) + WRITE(4),
    "ackto": [1, 1, 0, 0] + HELLO(0) + PUB(1, 0) + WRITE(255) + TIME(15) + WRITE(255) + TIME(15)
             + TIME(15) + TIME(15) + TIME(15) + WRITE(255),
    "accept": [0, 0, 1, 0] + HELLO(1) + ACCEPT + PUB(1, 1) + WRITE(255) + [0x80 | 1, 2, 0, 0]
              + [0x80 | 6, 0],
    "partial": [0, 0, 0, 0] + HELLO(0) + PUB(0xe1, 0) + WRITE(1) + WRITE(2) + WRITE(3) + LOST,
    "liveness": [0, 0, 0, 0] + HELLO(0) + TIME(50) + WRITE(255) + TIME(50) + WRITE(255),
    "goaway": [0, 0, 0, 0] + HELLO(0) + [0x80 | 1, 4, 0, 0] + PUB(1, 0) + PUB(1, 1)
              + GOAWAY_ALL + WRITE(255),
    "raw": [0, 0, 0, 0] + [0, 9, 0x01, 0x07, 0x01, 0x00] + [0] * 8 + [0, 3, 0x04, 0x01, 0x00],
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "conn")
os.makedirs(out, exist_ok=True)
for name, data in scripts.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes(data))
