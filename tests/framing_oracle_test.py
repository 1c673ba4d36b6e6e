#!/usr/bin/env python3
"""The web framings (lib/deliver/framing.c) read by independent parsers.

    framing_oracle_test.py FRAMING_TOOL [--seed N]

Publishes random messages through tests/framing_tool.c (payloads of text
with quotes, backslashes, control characters, line breaks, non-ASCII and
astral characters, and bytes that are not UTF-8), and reads what it wrote:
the SSE stream with an event-stream parser written here from the WHATWG
rules (line ends CR LF, LF or CR; comments; "field: value" with one space
stripped; events dispatched at blank lines; data lines joined by LF; the
last event id), NDJSON line by line and the poll body whole, each JSON
value with Python's json.  Every message must come back exactly once with
its id, priority, content type and payload (text, or base64 with
"enc":"base64"), in priority then publish order, with seqs 1, 2, ...; the
SSE ids must be "<epoch>.<seq>".  Random inputs from a fixed seed; TAP.
"""
import base64
import json
import random
import subprocess
import sys

ROUNDS = 40
PRIOS = {0: "low", 1: "normal", 2: "high"}


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

    def done(self):
        print(f"1..{self.n}")
        return 1 if self.failed else 0


def rand_text(rng, n):
    pool = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\r', '\t', '\x00',
            '\x1f', '\x7f', 'é', '€', '\u2028', '😀', '{', '}', ':', ',']
    return "".join(rng.choice(pool) for _ in range(n))


def rand_payload(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return b""
    if kind == 1:
        return rand_text(rng, rng.randrange(1, 40)).encode()
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    # mostly text with one invalid byte
    t = bytearray(rand_text(rng, rng.randrange(1, 20)).encode())
    t.insert(rng.randrange(len(t) + 1), rng.choice([0x80, 0xc3, 0xff, 0xed]))
    return bytes(t)


def messages(rng, n):
    out = []
    for i in range(n):
        idt = f"m{i}-" + rand_text(rng, rng.randrange(0, 4)).replace("\x00", "")
        ct = rng.choice(["", "text/plain", "application/json",
                         "x/\"q\\"])
        out.append((rng.randrange(3), idt, ct, rand_payload(rng)))
    return out


def run_tool(tool, framing, cap, msgs):
    lines = []
    for prio, idt, ct, payload in msgs:
        lines.append(" ".join([str(prio), idt.encode().hex() or "-",
                               ct.encode().hex() or "-",
                               payload.hex() or "-"]))
    p = subprocess.run([tool, framing, str(cap)],
                       input=("\n".join(lines) + "\n").encode(),
                       capture_output=True, check=True)
    epoch = int(p.stderr.decode().split("\n")[0])
    return p.stdout, epoch


def sse_parse(text):
    """The event-stream interpretation of the WHATWG HTML standard,
    section 9.2.6: returns (events, retry, comments, last_event_id)."""
    events, retry, comments = [], None, 0
    data, etype, last_id = "", "", ""
    if text.startswith("\ufeff"):
        text = text[1:]
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j] not in "\r\n":
            j += 1
        if j == n:
            break  # an incomplete line at the end is not processed
        line = text[i:j]
        i = j + 2 if text[j] == "\r" and j + 1 < n and text[j + 1] == "\n" \
            else j + 1
        if line == "":
            if data:
                if data.endswith("\n"):
                    data = data[:-1]
                events.append((etype or "message", data, last_id))
            data, etype = "", ""
            continue
        if line.startswith(":"):
            comments += 1
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            etype = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\x00" not in value:
                last_id = value
        elif field == "retry":
            if value.isdigit():
                retry = int(value)
    return events, retry, comments, last_id


def expected_order(msgs):
    idx = sorted(range(len(msgs)), key=lambda k: (-msgs[k][0], k))
    return [msgs[k] for k in idx]


def check_envelopes(tap, envs, msgs, label):
    want = expected_order(msgs)
    ok = len(envs) == len(want)
    detail = f"{len(envs)} envelopes for {len(want)} messages"
    for k, (env, (prio, idt, ct, payload)) in enumerate(zip(envs, want)):
        if env.get("seq") != k + 1 or env.get("id") != idt or \
                env.get("prio") != PRIOS[prio] or env.get("ct", "") != ct:
            ok, detail = False, f"envelope {k}: {env!r}"
            break
        if env.get("enc") == "base64":
            got = base64.b64decode(env["data"], validate=True)
            try:
                payload.decode("utf-8")
                ok, detail = False, f"UTF-8 payload sent as base64: {env!r}"
                break
            except UnicodeDecodeError:
                pass
        else:
            got = env["data"].encode("utf-8", "surrogatepass")
        if got != payload:
            ok, detail = False, f"payload {k}: {got!r} != {payload!r}"
            break
    tap.check(ok, f"{label}: every message once, in order, intact", detail)


def main():
    if len(sys.argv) < 2:
        print("usage: framing_oracle_test.py FRAMING_TOOL [--seed N]")
        return 2
    tool = sys.argv[1]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    rng = random.Random(seed)
    tap = Tap()
    for r in range(ROUNDS):
        msgs = messages(rng, rng.randrange(0, 12))
        cap = rng.choice([1, 3, 17, 64, 4096])
        framing = ["sse", "ndjson", "poll"][r % 3]
        raw, epoch = run_tool(tool, framing, cap, msgs)
        label = f"round {r} {framing} cap {cap}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            tap.check(False, f"{label}: UTF-8", str(e))
            continue
        if framing == "sse":
            events, retry, comments, last_id = sse_parse(text)
            tap.check(retry == 2500 if True else False,
                      f"{label}: retry fields (1500, then the goodbye's)",
                      f"retry {retry}")
            tap.check(comments == 1, f"{label}: one heartbeat comment",
                      f"{comments}")
            msgev = [e for e in events if e[0] == "msg"]
            others = [e for e in events if e[0] != "msg"]
            envs = []
            ids_ok = True
            for _, data, eid in msgev:
                env = json.loads(data)
                envs.append(env)
                if eid != f"{epoch}.{env['seq']}":
                    ids_ok = False
            tap.check(ids_ok, f"{label}: event ids are <epoch>.<seq>")
            check_envelopes(tap, envs, msgs, label)
            tap.check(len(others) == 1 and others[0][0] == "goaway" and
                      json.loads(others[0][1]) ==
                      {"reason": "restart", "retry": 2500},
                      f"{label}: goaway event", repr(others))
            want_last = f"{epoch}.{len(msgs)}" if msgs else ""
            tap.check(last_id == want_last, f"{label}: Last-Event-ID",
                      f"{last_id!r}")
            tap.check(text.startswith("retry: 1500\n"),
                      f"{label}: the retry hint first")
        elif framing == "ndjson":
            ok = text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
            tap.check(ok, f"{label}: lines end with CR LF, no bare LF")
            vals = [json.loads(line) for line in text.split("\r\n")[:-1]]
            envs = [v for v in vals if "seq" in v]
            rest = [v for v in vals if "seq" not in v]
            check_envelopes(tap, envs, msgs, label)
            tap.check(rest == [{"hb": 1000},
                               {"goaway": {"reason": "restart",
                                           "retry": 2500}}],
                      f"{label}: heartbeat and goaway lines", repr(rest))
        else:
            if not msgs:
                tap.check(raw == b"", f"{label}: empty answer (204)")
                continue
            body = json.loads(text)
            tap.check(isinstance(body, list), f"{label}: one JSON array")
            check_envelopes(tap, body, msgs, label)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
