#!/usr/bin/env python3
"""The web codecs (lib/web) against independent implementations.

    web_oracle_test.py WEB_CODEC_TOOL [--seed N]

Drives tests/web_codec_tool.c over a pipe and compares its answers with
Python's hashlib (SHA-1, SHA-256), hmac, base64 (including what the strict
decoder must refuse: anything that does not re-encode to itself), json
(every envelope parses, and gives back seq, id, prio, ct and the payload,
as text or base64) and an RFC 6455 frame encoder and decoder written here.
Random inputs from a fixed seed; TAP output.
"""
import base64
import binascii
import codecs
import hashlib
import hmac
import json
import random
import struct
import subprocess
import sys

ROUNDS = 200


class Tool:
    def __init__(self, path):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def ask(self, *args):
        self.p.stdin.write(" ".join(args) + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().rstrip("\n")

    def close(self):
        self.p.stdin.close()
        return self.p.wait()


def hx(b):
    return b.hex() if b else "-"


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        self.n += 1
        if not ok:
            self.failed += 1
            print(f"not ok {self.n} - {what}")
            if detail:
                print(f"#   {detail}")
        else:
            print(f"ok {self.n} - {what}")
        sys.stdout.flush()


def rand_bytes(rng, n, kind):
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(n))
    if kind == 1:  # text, including escapes and non-ASCII
        alphabet = 'ab"\\\n\t\x01\x1f/\x7f é€😀\u2028'
        return "".join(rng.choice(alphabet) for _ in range(n)).encode()
    # mostly text with one bad byte
    b = bytearray("".join(rng.choice("xyzé€") for _ in range(n)).encode())
    if b:
        b[rng.randrange(len(b))] = rng.choice([0x80, 0xc0, 0xed, 0xff, 0xf4])
    return bytes(b)


def _latin1_bytes(err):
    """Decode error handler: each invalid byte as the code point of its
    value (what the envelope's \\u00XX escapes of id and ct mean)."""
    return ("".join(chr(c) for c in err.object[err.start:err.end]), err.end)


codecs.register_error("tern_latin1", _latin1_bytes)


def latin1_fallback(b):
    return b.decode("utf-8", errors="tern_latin1")


def ws_frame(opcode, payload, fin=True, mask=None):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def ws_parse_server_frame(b):
    """Parses one unmasked frame; returns (fin, opcode, payload, rest)."""
    fin, opcode = b[0] >> 7, b[0] & 15
    assert b[1] & 0x80 == 0
    n = b[1] & 127
    at = 2
    if n == 126:
        n, at = struct.unpack(">H", b[2:4])[0], 4
        assert n >= 126
    elif n == 127:
        n, at = struct.unpack(">Q", b[2:10])[0], 10
        assert n >= 65536
    return fin, opcode, b[at:at + n], b[at + n:]


def main():
    tool_path = sys.argv[1]
    seed = 20261204
    if "--seed" in sys.argv:
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
    rng = random.Random(seed)
    tool = Tool(tool_path)
    tap = Tap()
    print(f"# seed {seed}")

    # Hashes and HMAC over lengths around the block edges and random ones.
    bad = []
    lengths = list(range(0, 130)) + [rng.randrange(0, 5000) for _ in range(40)]
    for n in lengths:
        d = rand_bytes(rng, n, 0)
        if tool.ask("sha1", hx(d)) != hashlib.sha1(d).hexdigest():
            bad.append(("sha1", n))
        if tool.ask("sha256", hx(d)) != hashlib.sha256(d).hexdigest():
            bad.append(("sha256", n))
        k = rand_bytes(rng, rng.choice([0, 1, 32, 63, 64, 65, 200]), 0)
        if tool.ask("hmac", hx(k), hx(d)) != hmac.new(k, d, "sha256").hexdigest():
            bad.append(("hmac", n, len(k)))
    tap.check(not bad, f"sha1, sha256, hmac-sha256 equal hashlib/hmac on "
              f"{len(lengths)} lengths", str(bad[:5]))

    # Tokens: E.hex(HMAC(secret, KEY "." E)).
    bad = []
    for _ in range(50):
        secret = rand_bytes(rng, rng.randrange(1, 80), 0)
        key = rand_bytes(rng, rng.randrange(1, 40), 1)
        e = rng.choice([0, 1, 1700000000, 2**64 - 1, rng.getrandbits(40)])
        want = f"{e}." + hmac.new(secret, key + b"." + str(e).encode(),
                                  "sha256").hexdigest()
        if tool.ask("token", hx(secret), hx(key), str(e)) != want:
            bad.append(e)
    tap.check(not bad, "tokens equal E.hex(HMAC(secret, KEY.E))", str(bad[:3]))

    # base64: encodings equal, decodes equal, and what Python would decode
    # but does not re-encode to the same text is refused.
    bad = []
    for n in list(range(0, 40)) + [rng.randrange(0, 3000) for _ in range(20)]:
        d = rand_bytes(rng, n, 0)
        enc = base64.b64encode(d).decode()
        if tool.ask("b64e", hx(d)) != enc:
            bad.append(("enc", n))
        if tool.ask("b64d", hx(enc.encode())) != hx(d):
            bad.append(("dec", n))
    for _ in range(ROUNDS * 3):
        n = rng.choice([0, 1, 2, 3, 4, 5, 8, 12])
        text = "".join(rng.choice("AQgw+/=Zz0 \n-_") for _ in range(n))
        got = tool.ask("b64d", hx(text.encode()))
        try:
            ref = base64.b64decode(text, validate=True)
            canonical = base64.b64encode(ref).decode() == text
        except binascii.Error:
            canonical = False
        if canonical != (not got.startswith("ERR")) or (
                canonical and got != hx(ref)):
            bad.append(text)
    tap.check(not bad, "base64 equals Python's; strict decoder refuses "
              "non-canonical input", str(bad[:5]))

    # Sec-WebSocket-Accept.
    bad = []
    for _ in range(50):
        key = base64.b64encode(rand_bytes(rng, 16, 0))
        want = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        if tool.ask("accept", hx(key)) != want:
            bad.append(key)
    tap.check(not bad, "Sec-WebSocket-Accept equals Python's", str(bad[:3]))

    # Envelopes parse with json.loads and give back every field.
    bad = []
    prios = {0: "low", 1: "normal", 2: "high"}
    for i in range(ROUNDS):
        seq = rng.choice([0, 1, 2**62 - 1, 2**64 - 1, rng.getrandbits(32)])
        prio = rng.randrange(3)
        id_ = rand_bytes(rng, rng.randrange(0, 65), rng.randrange(3))
        ct = rand_bytes(rng, rng.choice([0, 0, 5, 30]), rng.randrange(3))
        payload = rand_bytes(rng, rng.choice([0, 1, 10, 100, 2000]),
                             rng.randrange(3))
        out = tool.ask("env", str(seq), str(prio), hx(id_), hx(ct),
                       hx(payload))
        try:
            raw = bytes.fromhex(out) if out != "-" else b""
            text = raw.decode("utf-8")
            assert "\n" not in text and "\r" not in text
            obj = json.loads(text)
            assert obj["seq"] == seq
            assert obj["prio"] == prios[prio]
            assert obj["id"] == latin1_fallback(id_)
            if ct:
                assert obj["ct"] == latin1_fallback(ct)
            else:
                assert "ct" not in obj
            try:
                as_text = payload.decode("utf-8")
            except UnicodeDecodeError:
                as_text = None
            if as_text is None:
                assert obj["enc"] == "base64"
                assert base64.b64decode(obj["data"], validate=True) == payload
            else:
                assert "enc" not in obj
                assert obj["data"] == as_text
            keys = list(obj.keys())
            assert keys[:3] == ["seq", "id", "prio"] and keys[-1] == "data"
        except Exception as e:  # noqa: BLE001
            bad.append((i, repr(e), out[:80]))
    tap.check(not bad, f"{ROUNDS} envelopes parse with json.loads and give "
              "back every field", str(bad[:3]))

    # Acks: whatever the strict parser accepts, json.loads reads as
    # {"ack": N} with the same N; what json.loads reads as one ack with an
    # int in range and no escapes or extras is accepted.
    bad = []
    forms = ['{"ack":%s}', ' {"ack" : %s}\n', '{"ack":%s,"x":1}', '{"ack":[%s]}',
             '{"ack":%s', '{"ack":%s}}', '{"ack":"%s"}', '{"ack":%s.0}']
    for _ in range(ROUNDS):
        v = rng.choice(["0", "1", "42", "007", "-1", "1e2", "4611686018427387903",
                        "4611686018427387904", str(rng.getrandbits(62))])
        text = rng.choice(forms) % v
        got = tool.ask("ack", hx(text.encode()))
        try:
            obj = json.loads(text)
            ref_ok = (isinstance(obj, dict) and list(obj) == ["ack"]
                      and type(obj["ack"]) is int and 0 <= obj["ack"] < 2**62
                      and text.count(":") == 1)
        except ValueError:
            ref_ok = False
        if ref_ok != got.startswith("OK") or (
                ref_ok and got != f"OK {obj['ack']}"):
            bad.append((text, got))
    tap.check(not bad, "ack parser agrees with json.loads", str(bad[:5]))

    # WebSocket: frames made here decode to the same messages; the
    # server's frames parse here.
    bad = []
    for i in range(ROUNDS):
        stream = b""
        want = []
        for _ in range(rng.randrange(1, 6)):
            kind = rng.randrange(4)
            mask = bytes(rng.getrandbits(8) for _ in range(4))
            if kind <= 1:
                opcode = 1 if kind == 0 else 2
                msg = rand_bytes(rng, rng.choice([0, 5, 125, 126, 300, 0, 5, 300, 1000,
                                                  70000]),
                                 1 if opcode == 1 else 0)
                cuts = sorted(rng.randrange(len(msg) + 1)
                              for _ in range(rng.randrange(3)))
                parts = [msg[a:b] for a, b in zip([0] + cuts, cuts + [len(msg)])]
                for k, part in enumerate(parts):
                    stream += ws_frame(opcode if k == 0 else 0, part,
                                       fin=k == len(parts) - 1, mask=mask)
                    if k == 0 and len(parts) > 1 and rng.random() < 0.5:
                        # A ping between fragments is reported first.
                        stream += ws_frame(9, b"hb", mask=mask)
                        want.append("P " + hx(b"hb"))
                want.append(("T " if opcode == 1 else "B ") + hx(msg))
            elif kind == 2:
                p = rand_bytes(rng, rng.randrange(0, 126), 0)
                stream += ws_frame(10, p, mask=mask)
                want.append("O " + hx(p))
            else:
                p = rand_bytes(rng, rng.randrange(0, 126), 0)
                stream += ws_frame(9, p, mask=mask)
                want.append("P " + hx(p))
        got = tool.ask("ws", hx(stream))
        if got != "".join(w + ";" for w in want):
            bad.append(i)
    tap.check(not bad, f"{ROUNDS} masked client streams decode to the "
              "messages encoded here", str(bad[:5]))
    bad = []
    for n in [0, 1, 125, 126, 65535, 65536, 70000]:
        d = rand_bytes(rng, n, 0)
        fin, opcode, payload, rest = ws_parse_server_frame(
            bytes.fromhex(tool.ask("wsenc", "2", hx(d)).replace("-", "")))
        if not (fin and opcode == 2 and payload == d and rest == b""):
            bad.append(n)
    tap.check(not bad, "server frames of 0..70000 bytes parse here",
              str(bad))

    tap.check(tool.close() == 0, "tool exits 0")
    print(f"1..{tap.n}")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
