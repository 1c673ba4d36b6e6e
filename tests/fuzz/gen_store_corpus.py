#!/usr/bin/env python3
"""Writes the seed corpus of the store fuzz target (tests/fuzz/corpus/store).

The segment files are encoded here from the format described in
lib/store/format.h, independently of the C encoder (the CRC-32C too), so
the corpus also checks that the two agree: store_fuzz.c decodes them.  The
first byte of each input picks the fuzz target's mode (even: a segment
image; odd: records to encode, then damage).  The output is deterministic;
re-run after changing the format:

    python3 tests/fuzz/gen_store_corpus.py
"""

import os
import struct

SET, DEL = 1, 2
BASE = 1


def crc32c(data, crc=0):
    """CRC-32C, reflected polynomial 0x82F63B78, extendable like the C one."""
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


VERSION = 2  # the files without a "_v1" name; main() writes both


def header(number, salt, flags=0, prev_size=0):
    body = b"TERNLOG\0" + struct.pack("<IIQIIQI", VERSION, flags, number,
                                      salt, 0, prev_size, 0)
    one = body + struct.pack("<I", crc32c(body))
    assert len(one) == 48
    return one + one


HEAD_SEED = 0x48454144


def record(salt, op, key, value=b""):
    if VERSION == 1:
        length = 3 + len(key) + len(value)
        lb = struct.pack("<I", length)
        rest = bytes([op]) + struct.pack("<H", len(key)) + key + value
        crc = crc32c(rest, crc32c(lb, salt))
        return lb + struct.pack("<I", crc) + rest
    length = 7 + len(key) + len(value)
    lb = struct.pack("<I", length)
    opk = bytes([op]) + struct.pack("<H", len(key))
    crc = crc32c(key + value, crc32c(opk, crc32c(lb, salt)))
    head = lb + struct.pack("<I", crc) + opk
    check = crc32c(head, salt ^ HEAD_SEED)
    return head + struct.pack("<I", check) + key + value


def image(mode_byte, data):
    return bytes([mode_byte]) + data


def main():
    global VERSION
    for VERSION in (1, 2):
        write_all()


def write_all():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                       "store")
    os.makedirs(out, exist_ok=True)
    salt = 0x1234ABCD
    recs = [
        record(salt, SET, b"S/session-1", b"\x00" * 8),
        record(salt, SET, b"M/\x00\x00\x00\x00\x00\x00\x00\x01", b"hello" * 10),
        record(salt, DEL, b"M/\x00\x00\x00\x00\x00\x00\x00\x01"),
        record(salt, SET, b"E", struct.pack(">Q", 42)),
        record(salt, SET, b"k" * 256, bytes(range(256))),
    ]
    seg = header(1, salt) + b"".join(recs)
    files = {
        "empty.bin": image(0, header(7, salt)),
        "records.bin": image(0, seg),
        "base.bin": image(0, header(3, salt, BASE) + b"".join(recs[:2])),
        "successor.bin": image(0, header(2, salt, 0, 4096) + recs[3]),
    }
    # A damaged record in the middle: a good one follows.
    bad = bytearray(seg)
    bad[96 + len(recs[0]) + 20] ^= 0x40
    files["middle_damage.bin"] = image(0, bytes(bad))
    # A torn tail: the last record cut short.
    files["torn_tail.bin"] = image(0, seg[:-7])
    # The first header copy damaged: the second serves.
    two = bytearray(seg)
    two[5] ^= 1
    files["second_header.bin"] = image(0, bytes(two))
    # Both copies damaged: scanned from 0 with salt 0.
    both = bytearray(seg)
    both[5] ^= 1
    both[53] ^= 1
    # Without a header, an image is scanned as version 2, or as version 1
    # when bit 1 of the mode byte is set.
    files["no_header.bin"] = image(0 if VERSION == 2 else 2, bytes(both))
    # A record hidden in a value, encoded with salt 0; the outer record's
    # length is damaged.
    hidden = record(0, SET, b"evil", b"0123456789")
    outer = bytearray(record(salt, SET, b"victim", hidden))
    outer[0] ^= 4
    files["hidden_record.bin"] = image(
        0, header(1, salt) + recs[0] + bytes(outer) + recs[3])
    # Zeros where records should be (a hole left by a lost page).
    files["zero_hole.bin"] = image(0, header(1, salt) + recs[0] +
                                   b"\0" * 300 + recs[3])

    # Mode 1: [op][keylen - 1][vlen (2)][key][value] ... 0xff damage.
    def desc(op, key, value=b""):
        return bytes([0 if op == SET else 1, len(key) - 1]) + \
            struct.pack("<H", len(value)) + key + value

    recs1 = (desc(SET, b"a", b"1") + desc(SET, b"bb", b"22" * 40) +
             desc(DEL, b"a") + desc(SET, b"ccc", b"x" * 300) +
             desc(SET, b"d", b""))
    if VERSION == 2:
        files["struct_clean.bin"] = bytes([1, 7]) + recs1
        files["struct_damaged.bin"] = (bytes([1, 9]) + recs1 + b"\xff" +
                                       struct.pack("<HB", 100, 0x10) +
                                       struct.pack("<HB", 250, 0x01))
    else:
        files = {k.replace(".bin", "_v1.bin"): v for k, v in files.items()}
    for name, data in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
