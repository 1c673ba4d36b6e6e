#!/usr/bin/env python3
"""The TCP examples over loopback, with the server killed and restarted.

    examples_tcp_test.py TCP_SERVER TCP_RECEIVER [--seed N]

tcp_server publishes m1..mCOUNT with TERN_MSG_SYNC to two sessions and
prints "confirmed <id>" for each message the hub says is durable; two
tcp_receivers (one acking automatically, one with --manual-ack) print "got
<id>" for each message delivered to them.  While that runs the server is
SIGKILLed KILLS times and started again on the same directory and port; the
receivers live through it, reconnecting with their backoff.  Then:

  - every id any server life confirmed arrived at its receiver;
  - every id m1..mCOUNT arrived (what a killed server had not stored, the
    restarted generator published again);
  - no receiver got an id twice or a damaged payload;
  - a SIGTERM ends the server and the receivers cleanly (status 0).

TAP output.  A failure prints the seed; --seed replays the kill times.
"""
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

COUNT = 4000
SESSIONS = 2
KILLS = 4
RATE = 1500  # messages per second while the generator runs
TIMEOUT = 90  # seconds for the whole run, generous for valgrind-slow days


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, argv):
        self.argv = argv
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, pred, timeout):
        """Waits until a line satisfies pred; returns it or None."""
        end = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def stop(self, sig, timeout=10):
        """Sends sig, waits for the exit and the last line; the status."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.thread.join(timeout)
        return rc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ids_from(lines, prefix):
    out = []
    for line in lines:
        if line.startswith(prefix):
            out.append(line.split()[1])
    return out


def main():
    server_exe, receiver_exe = sys.argv[1], sys.argv[2]
    seed = int(time.time() * 1000) & 0xffffffff
    if "--seed" in sys.argv:
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
    rnd = random.Random(seed)
    print("1..6")
    print(f"# seed {seed}")
    results = []

    def check(ok, what):
        results.append(ok)
        print(f"{'ok' if ok else 'not ok'} {len(results)} - {what}")
        sys.stdout.flush()

    tmp = tempfile.mkdtemp(prefix="tern-examples-")
    port = free_port()
    server_argv = [server_exe, "--dir", os.path.join(tmp, "data"),
                   "--port", str(port), "--count", str(COUNT),
                   "--rate", str(RATE), "--sessions", str(SESSIONS)]
    servers = []
    receivers = []
    try:
        servers.append(Proc(server_argv))
        servers[-1].wait_line(lambda l: l.startswith("listening"), 10)
        receivers.append(Proc([receiver_exe, "--key", "r0",
                               "--port", str(port)]))
        receivers.append(Proc([receiver_exe, "--key", "r1",
                               "--port", str(port), "--manual-ack"]))
        kills = 0
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.2, 0.6))
            servers[-1].stop(signal.SIGKILL)
            kills += 1
            time.sleep(rnd.uniform(0.0, 0.3))
            servers.append(Proc(server_argv))
            if not servers[-1].wait_line(
                    lambda l: l.startswith("listening"), 10):
                break
        check(kills == KILLS and servers[-1].p.poll() is None,
              f"server SIGKILLed {kills} times and restarted on the same "
              "directory")

        # The last life finishes the generator, then every stored message
        # reaches its receiver.
        deadline = time.monotonic() + TIMEOUT
        done = servers[-1].wait_line(lambda l: l.startswith("generator done"),
                                     TIMEOUT)
        confirmed = set()
        for s in servers:
            confirmed.update(ids_from(s.lines, "confirmed "))
        want = {f"m{n}" for n in range(1, COUNT + 1)}
        got = [set(), set()]
        while time.monotonic() < deadline:
            for k, r in enumerate(receivers):
                with r.cond:
                    got[k] = set(ids_from(r.lines, "got "))
            if got[0] | got[1] >= want:
                break
            time.sleep(0.1)
        print(f"# {len(confirmed)} ids confirmed over {len(servers)} server "
              f"lives; receivers got {len(got[0])} + {len(got[1])}")

        missing = [i for i in confirmed
                   if i not in got[int(i[1:]) % SESSIONS]]
        check(done is not None and confirmed and not missing,
              "every confirmed message arrived at its receiver"
              + (f" (missing {sorted(missing)[:10]})" if missing else ""))
        unstored = want - (got[0] | got[1])
        check(not unstored, f"every message m1..m{COUNT} arrived"
              + (f" (missing {sorted(unstored)[:10]})" if unstored else ""))

        src = servers[-1].stop(signal.SIGTERM)
        check(src == 0 and servers[-1].lines[-1:] == ["bye"],
              f"the server ends cleanly at SIGTERM (status {src})")
        statuses = [r.stop(signal.SIGTERM) for r in receivers]
        check(statuses == [0, 0],
              f"the receivers end cleanly at SIGTERM (status {statuses})")

        bad = []
        for k, r in enumerate(receivers):
            ids = ids_from(r.lines, "got ")
            if len(ids) != len(set(ids)):
                bad.append(f"r{k} got an id twice")
            bad += [l for l in r.lines
                    if l.startswith(("DUPLICATE", "DAMAGED"))][:5]
            wrong = [i for i in ids if int(i[1:]) % SESSIONS != k]
            bad += [f"r{k} got {i}" for i in wrong[:5]]
        check(not bad, "no message delivered twice, damaged or misrouted"
              + (f": {bad[:10]}" if bad else ""))
    finally:
        for p in servers + receivers:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        subprocess.run(["rm", "-rf", tmp], check=False)
    if not all(results):
        print(f"# replay: {sys.argv[0]} {server_exe} {receiver_exe} "
              f"--seed {seed}")
        for i, s in enumerate(servers):
            print(f"# server life {i}: last lines {s.lines[-3:]}")
        for k, r in enumerate(receivers):
            print(f"# receiver r{k}: last lines {r.lines[-3:]}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
