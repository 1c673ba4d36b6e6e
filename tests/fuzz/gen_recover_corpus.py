#!/usr/bin/env python3
"""Writes the seed corpus of recover_fuzz.c (corpus/recover/): store
directories described as in that file's header comment.  Deterministic;
re-run after changing the description:

    python3 tests/fuzz/gen_recover_corpus.py
"""
import os

SEG, RAW, DIR, FIFO, DANGLING, LINK, TMP, KEPT = range(8)
BASE, V1, PREV, PREV4096, BAD1, BAD2 = 1, 2, 4, 8, 16, 32
MAX = 0xff  # 4294967295


def seg(number, flags=0, salt=7, recs=(), damage=(), cut=0):
    out = bytes([SEG, number, flags, salt, len(recs)])
    for key, vlen in recs:
        out += bytes([key, vlen])
    out += bytes([len(damage)])
    for off, x in damage:
        out += bytes([off & 0xff, off >> 8, x])
    return out + bytes([cut])


def raw(kind, number, data):
    return bytes([kind, number, len(data)]) + data


def other(kind, number):
    return bytes([kind, number])


R = [(0, 10), (1, 20), (2, 0), (0x80, 0), (3, 200), (1, 5)]

corpus = {
    "one": bytes([0]) + seg(1, recs=R),
    "three": bytes([0]) + seg(1, recs=R[:2]) + seg(2, PREV, 9, R[2:4])
    + seg(3, PREV, 11, R[4:]),
    "base": bytes([1]) + seg(1, recs=R) + seg(2, recs=R[:1])
    + seg(3, BASE, 5, R[3:]) + seg(4, PREV, 6, R[:2]),
    "gap": bytes([0]) + seg(1, recs=R[:3]) + seg(3, PREV4096, 2, R[3:]),
    "short_predecessor": bytes([0]) + seg(1, recs=R, cut=128)
    + seg(2, PREV, 3, R[:2]),
    "v1": bytes([2]) + seg(1, V1, 4, R) + seg(2, V1 | PREV, 8, R[:3]),
    "v1_then_v2": bytes([0]) + seg(1, V1, 4, R) + seg(2, PREV, 8, R[:3]),
    "damaged": bytes([0]) + seg(1, 0, 3, R, damage=[(130, 0x40)])
    + seg(2, PREV, 1, R, damage=[(200, 1), (96, 0xff)]),
    "torn_tail": bytes([0]) + seg(1, recs=R, cut=200),
    "headers": bytes([0]) + seg(1, BAD1, 2, R) + seg(2, BAD1 | BAD2, 3, R)
    + seg(3, PREV, 4, R[:2]),
    "junk": bytes([3]) + seg(1, recs=R) + other(FIFO, 2) + other(DIR, 3)
    + other(DANGLING, 4) + raw(TMP, 5, b"half a segment")
    + other(DIR, 6) + seg(7, recs=R[:2]),
    "junk_tmp_dir": bytes([0]) + seg(1, recs=R) + bytes([DIR, 2])
    + raw(KEPT, 1, b"kept") + bytes([TMP, 3, 0]),
    "max_number": bytes([0]) + seg(1, recs=R) + raw(RAW, MAX, b""),
    "max_segment": bytes([0]) + seg(MAX, recs=R),
    "max_segment_full": bytes([0]) + seg(MAX, recs=[(3, 200)] * 6),
    "link": bytes([0]) + seg(1, recs=R) + other(LINK, 2),
    "raw_only": bytes([0]) + raw(RAW, 1, b"TERNLOG\0" + bytes(60)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                   "recover")
os.makedirs(out, exist_ok=True)
for name, data in sorted(corpus.items()):
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
