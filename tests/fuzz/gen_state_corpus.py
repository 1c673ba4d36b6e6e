#!/usr/bin/env python3
"""Writes the seed corpus of state_fuzz.c (corpus/state/): resume state
blobs of format 1 for the key "fz", valid and not, each after the target's
header byte (bit 0 recompute the checksum, bits 1-2 dedup_max, bit 3 a
10 s dedup window, bits 4-7 the allocation to fail)."""
import os
import struct


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def blob(epoch=7, last_seq=10, ids=(), key=b"fz", version=1, flags=0,
         nids=None):
    b = b"TRNC" + bytes([version, flags, len(key)]) + key
    b += struct.pack(">QQI", epoch, last_seq, len(ids) if nids is None else nids)
    for i, age in ids:
        b += bytes([len(i)]) + i + struct.pack(">I", age)
    return b + struct.pack(">I", crc32c(b))


IDS = [(b"m%d" % i, 9000 - i * 1000) for i in range(8)]

seeds = {
    "empty": (0x06, blob(epoch=0, last_seq=0)),
    "seq": (0x06, blob()),
    "ids": (0x06, blob(ids=IDS)),
    "ids_max1": (0x02, blob(ids=IDS)),
    "ids_window": (0x0e, blob(ids=[(b"old", 60000)] + IDS)),
    "ids_nomem": (0x36, blob(ids=IDS)),
    "long_id": (0x06, blob(ids=[(b"x" * 64, 5)])),
    "other_key": (0x06, blob(key=b"fy")),
    "version2": (0x06, blob(version=2)),
    "dup_ids": (0x07, blob(ids=[(b"a", 5), (b"a", 4)])),
    "bad_order": (0x07, blob(ids=[(b"a", 4), (b"b", 5)])),
    "short": (0x06, blob(ids=IDS)[:-9]),
    "fixcrc": (0x07, blob(ids=IDS, nids=9)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "state")
os.makedirs(out, exist_ok=True)
for name, (h, data) in seeds.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes([h]) + data)
