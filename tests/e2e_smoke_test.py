#!/usr/bin/env python3
"""bench/e2e run tiny against bench/e2e_server, over loopback.

    e2e_smoke_test.py E2E E2E_SERVER

Each case runs the generator for one row and checks its exit status and
the row it prints: every message published was delivered (the published
and delivered columns), and the row says ok.  One case runs it against an
e2e_server whose sessions hold 16 messages, so that the hub evicts: the
row must say FAIL and the generator exit 1, which is what makes the other
cases mean something.  Rows the server cannot serve (no HTTP listener)
must say n/a and exit 0.  TAP output.
"""
import re
import subprocess
import sys

E2E, SERVER = sys.argv[1], sys.argv[2]
SERVER_CMD = SERVER + " --listen 127.0.0.1:{http} --bin-listen 127.0.0.1:{bin}"

CASES = [
    # (name, args, expected exit, expected result, published, delivered)
    ("1to1 bin, 1 subscriber, 1000 messages",
     ["--mode", "1to1", "--kind", "bin", "-k", "1", "-n", "1000"],
     0, "ok", 1000, 1000),
    ("1to1 bin over 3 sessions, 2 publishers",
     ["--mode", "1to1", "--kind", "bin", "-k", "3", "-n", "1000",
      "--publishers", "2"],
     0, "ok", 1000, 1000),
    ("1to1 bin, published over HTTP",
     ["--mode", "1to1", "--kind", "bin", "--pub", "http", "-k", "1",
      "-n", "1000"],
     0, "ok", 1000, 1000),
    ("1to1 sse, acks over POST /ack",
     ["--mode", "1to1", "--kind", "sse", "-k", "1", "-n", "1000"],
     0, "ok", 1000, 1000),
    ("1to1 ws (tern.bin)",
     ["--mode", "1to1", "--kind", "ws", "-k", "1", "-n", "1000"],
     0, "ok", 1000, 1000),
    ("fanout bin, 4 members",
     ["--mode", "fanout", "--kind", "bin", "-k", "4", "-n", "1000"],
     0, "ok", 1000, 4000),
    ("fanout sse, 4 members",
     ["--mode", "fanout", "--kind", "sse", "-k", "4", "-n", "1000"],
     0, "ok", 1000, 4000),
    ("1to1 bin at a fixed rate",
     ["--mode", "1to1", "--kind", "bin", "-k", "1", "-n", "200",
      "--rate", "2000"],
     0, "ok", 200, 200),
    ("idle sse, 50 subscribers",
     ["--mode", "idle", "--kind", "sse", "-k", "50"], 0, "ok", None, None),
    ("idle bin, 50 subscribers",
     ["--mode", "idle", "--kind", "bin", "-k", "50"], 0, "ok", None, None),
    ("idle ws, 50 subscribers",
     ["--mode", "idle", "--kind", "ws", "-k", "50"], 0, "ok", None, None),
    ("a server that evicts: the row fails",
     ["--server", SERVER + " --max-pending 16 --listen 127.0.0.1:{http}"
      " --bin-listen 127.0.0.1:{bin}",
      "--mode", "1to1", "--kind", "bin", "-k", "1", "-n", "1000",
      "--window", "4096"],
     1, "FAIL", None, None),
    ("no HTTP listener: sse is n/a",
     ["--server", SERVER + " --bin-listen 127.0.0.1:{bin}",
      "--mode", "1to1", "--kind", "sse", "-k", "1", "-n", "100"],
     0, "n/a", None, None),
]

ROW = re.compile(r"^(\S.*?)\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s+.*\s(ok|FAIL|n/a)\b")


def main():
    print("1..%d" % len(CASES))
    failed = 0
    for i, (name, args, want_rc, want_result, pub, dlv) in enumerate(CASES, 1):
        cmd = [E2E] + args
        if "--server" not in args:
            cmd += ["--server", SERVER_CMD]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=60)
            out, rc = p.stdout, p.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode(errors="replace"), "timeout"
        rows = [m for m in (ROW.match(l) for l in out.splitlines()) if m]
        why = []
        if rc != want_rc:
            why.append("exit %s, want %d" % (rc, want_rc))
        if len(rows) != 1:
            why.append("%d rows" % len(rows))
        else:
            r = rows[0]
            if r.group(5) != want_result:
                why.append("result %s, want %s" % (r.group(5), want_result))
            if pub is not None and r.group(3) != str(pub):
                why.append("published %s, want %d" % (r.group(3), pub))
            if dlv is not None and r.group(4) != str(dlv):
                why.append("delivered %s, want %d" % (r.group(4), dlv))
        if why:
            failed += 1
            print("not ok %d - %s: %s" % (i, name, "; ".join(why)))
            for line in (out + (p.stderr if rc != "timeout" else "")
                         ).splitlines():
                print("# " + line)
        else:
            print("ok %d - %s" % (i, name))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
