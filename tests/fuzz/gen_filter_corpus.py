#!/usr/bin/env python3
"""Writes the seed corpus of filter_fuzz.c (corpus/filter/): filters that
use every construct of tern-filter(7), a few bad ones, and topic patterns,
each with attributes to match against (and topic names among them).

Input format (see filter_fuzz.c): byte 0 allocation to fail (low 2 bits),
bytes 1-2 text length (little-endian), the text, then NUL-separated
"key=value" records.  Deterministic; re-run after changing the format:

    python3 tests/fuzz/gen_filter_corpus.py
"""
import os

def seed(text, attrs=(), fail=0):
    t = text.encode() if isinstance(text, str) else text
    recs = b"\0".join(a.encode() if isinstance(a, str) else a for a in attrs)
    return bytes([fail, len(t) & 0xff, len(t) >> 8]) + t + recs

ITEM = ["status=ItemAdd", "price=150.5", "a.b.c=x.y.z"]
seeds = {
    "issue": seed("status in (ItemAdd, ItemUpdate) and price > 100", ITEM),
    "issue_nomem": seed("status in (ItemAdd, ItemUpdate) and price > 100", ITEM, fail=1),
    "precedence": seed("a = 1 or b = 1 and not c = 1", ["b=1", "c=2"]),
    "parens": seed("not (a = 1 or (b = 2 and (c = 3 or d = 4)))", ["a=2", "b=2", "d=4"]),
    "numbers": seed("n > -1.5 and n <= 100.00 and m = 0", ["n=99.999", "m=-0"]),
    "strings": seed('s = "say \\"hi\\"" or t = "\\x41\\xff" or u = "caf\xc3\xa9"'.encode("latin-1"),
                    [b"s=say \"hi\"", b"t=A\xff", "u=café"]),
    "notin": seed("k not in (x, \"1\", 2, -3.0) and exists k", ["k=-3"]),
    "keywords": seed('"and" = "or" AND EXISTS "not" Or "in" In (x)', ["and=or", "not=", "in=x"]),
    "missing": seed("a != 1 or not a = 1 or a not in (1)", ["b=1"]),
    "dates": seed("d >= 2024-01-01 and d < 2024-02-01", ["d=2024-01-15"]),
    "bad_eq": seed("a == 1", ["a=1"]),
    "bad_paren": seed("(a = 1 and (b = 2)", []),
    "bad_string": seed('a = "x\\q"', []),
    "bad_list": seed("a in (1, 2", []),
    "bad_utf8": seed(b'a = "\xc3"', []),
    "deep": seed("(" * 30 + "not not a = 1" + ")" * 30, ["a=1"]),
    "pattern_hash": seed("a.#.b", ["k=a.x.y.b", "a.b=a.b.c"]),
    "pattern_star": seed("trade.*", ["trade.usd=trade", "x=trade.usd.nyse"]),
    "pattern_many": seed("#.a.#.b.#", ["x.a.y.b.z=b.a", "a.b=a.a.a.a.b"]),
    "pattern_hashhash": seed("#.#", ["a=a.b.c"]),
    "pattern_bad": seed("a..b*", ["a=b"]),
    "pattern_exact": seed("order.new", ["order.new=order.new.eu"]),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "filter")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
