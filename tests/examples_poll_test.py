#!/usr/bin/env python3
"""examples/embed_poll over loopback, with tcp_receiver as the receiver.

    examples_poll_test.py EMBED_POLL TCP_RECEIVER

embed_poll publishes m1..mCOUNT to session r0, one every INTERVAL ms, from
its poll() loop; tcp_receiver connects while it does (so some messages wait
in the hub and some are sent live), stops after COUNT messages and says
goodbye.  Then:

  - the receiver got m1..mCOUNT, each once and undamaged (it checks the
    payload "<id> for r0" itself and exits 1 otherwise);
  - embed_poll saw an ACKED event for every message (it prints
    "acked <id>"), so acks went back through tern_conn_read;
  - a second receiver on another session gets nothing foreign and the
    server keeps serving after the first one left;
  - embed_poll printed the HELLO events of both ("hello <key>");
  - a connection that never sends HELLO is closed by the hub's timer
    (tern_hub_handle_expiry) after a GOAWAY written by the end-event path,
    and embed_poll printed its end event ("closed, reason 3": TIMEOUT);
  - SIGTERM ends embed_poll with status 0 after "bye", and the receiver
    still connected was told GOAWAY RESTART (not just a closed socket),
    an end event embed_poll printed too ("closed, reason 0": RESTART).

TAP output.
"""
import signal
import socket
import subprocess
import sys
import threading
import time

COUNT = 40
INTERVAL_MS = 10
TIMEOUT = 30


class Proc:
    """A child whose stdout lines are collected by a thread."""

    def __init__(self, argv):
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

    def wait_for(self, pred, timeout):
        """Waits until pred(lines) is true; returns it."""
        end = time.monotonic() + timeout
        with self.cond:
            while not pred(self.lines):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def finish(self, sig=None, timeout=10):
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.thread.join(timeout)
        return rc


def ids(lines, prefix):
    return [l.split()[1] for l in lines if l.startswith(prefix)]


def main():
    server_exe, receiver_exe = sys.argv[1], sys.argv[2]
    print("1..9")
    n = 0
    failed = False

    def check(ok, what):
        nonlocal n, failed
        n += 1
        failed |= not ok
        print(f"{'ok' if ok else 'not ok'} {n} - {what}")
        sys.stdout.flush()

    want = [f"m{i}" for i in range(1, COUNT + 1)]
    server = Proc([server_exe, "0", str(COUNT), str(INTERVAL_MS)])  # r0
    procs = [server]
    try:
        if not server.wait_for(
                lambda ls: any(l.startswith("listening on ") for l in ls), 10):
            print("Bail out! embed_poll did not start")
            return 1
        port = [l for l in server.lines
                if l.startswith("listening on ")][0].rsplit(":", 1)[1]
        # Connects and says nothing: the hub's timer (no HELLO within
        # liveness_timeout, 7 s) must close it with a GOAWAY.
        silent = socket.create_connection(("127.0.0.1", int(port)))
        silent_since = time.monotonic()
        recv = Proc([receiver_exe, "--key", "r0", "--port", port,
                     "--expect", str(COUNT)])
        procs.append(recv)
        other = Proc([receiver_exe, "--key", "r9", "--port", port])
        procs.append(other)
        rc = recv.finish(timeout=TIMEOUT)
        got = ids(recv.lines, "got ")
        check(rc == 0 and sorted(got) == sorted(want) and
              len(got) == len(set(got)),
              f"the receiver got m1..m{COUNT} once each, undamaged "
              f"(status {rc}, {len(got)} messages)")
        server.wait_for(lambda ls: len(set(ids(ls, "acked "))) >= COUNT, 10)
        acked = set(ids(server.lines, "acked "))
        missing = [i for i in want if i not in acked]
        check(not missing, "embed_poll saw every message acked"
              + (f" (missing {missing[:10]})" if missing else ""))
        pub = ids(server.lines, "published ")
        bad = [l for l in server.lines
               if l.startswith("published ") and not l.endswith(": ok")]
        check(len(pub) == COUNT and not bad,
              f"every publish succeeded ({len(pub)}, bad {bad[:3]})")
        check(server.p.poll() is None and other.p.poll() is None,
              "the server serves on after the first receiver left")
        hellos = sorted(ids(server.lines, "hello "))
        check(hellos[:1] == ["r0"] and "r9" in hellos,
              f"embed_poll saw the HELLO events of r0 and r9 ({hellos})")
        silent.settimeout(20)
        got_bytes, eof = b"", False
        try:
            while not eof:
                chunk = silent.recv(4096)
                got_bytes += chunk
                eof = not chunk
        except OSError:
            pass
        silent.close()
        waited = time.monotonic() - silent_since
        server.wait_for(lambda ls: "closed, reason 3" in ls, 5)
        timeout_ends = server.lines.count("closed, reason 3")
        check(got_bytes and eof and waited < 15 and timeout_ends == 1,
              f"a connection without HELLO got a GOAWAY and was closed by "
              f"the hub's timer ({len(got_bytes)} bytes, EOF {eof}, "
              f"after {waited:.1f} s, {timeout_ends} TIMEOUT end events)")
        src = server.finish(signal.SIGTERM)
        check(src == 0 and server.lines[-1:] == ["bye"],
              f"SIGTERM ends embed_poll cleanly (status {src})")
        # GOAWAY RESTART (0) rather than a lost transport.
        check(other.wait_for(
                  lambda ls: "disconnected (reason 0)" in ls, 10) and
              "closed, reason 0" in server.lines,
              "the receiver still connected got a GOAWAY at the shutdown")
        orc = other.finish(signal.SIGTERM)
        check(orc == 0 and not ids(other.lines, "got "),
              f"a receiver of another session got nothing (status {orc})")
    finally:
        for p in procs:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
    if failed:
        for name, p in (("embed_poll", server),):
            print(f"# {name}: last lines {p.lines[-5:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
