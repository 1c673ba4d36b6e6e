#!/usr/bin/env python3
"""ternd's live page (GET /) in a real browser: headless Chromium, driven
over the Chrome DevTools Protocol with the standard library alone.

    ternd_browser_test.py TERND CHROMIUM

Starts ternd with a file store on a free port and Chromium on a fresh
profile, opens the page with its SSE pane on one session and its
WebSocket pane (tern.json) on another, and publishes to both with
durable=sync.  ternd is SIGKILLed and later SIGTERMed, each time restarted
on the same directory and port; the page must come back by itself
(EventSource with Last-Event-ID, the WebSocket pane with ?seq=).  The page
exposes its state in window.ternState, read with Runtime.evaluate; the
test checks that every message shows exactly once per pane in seq order,
that the page acks what it shows (the hub holds nothing at the end), that
no message acked before a restart is delivered again after it, and that
the page shows its counters and the hub's.

TAP output.  Chromium that does not start is a failure, not a skip: meson
defines this test only when it finds chromium.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from wsclient import Connection

TERND = sys.argv[1]
CHROMIUM = sys.argv[2]
SSE_KEY = "page-sse"
WS_KEY = "page-ws"

n_tests = 0
failed = 0


def ok(cond, name):
    global n_tests, failed
    n_tests += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n_tests, name))
    if not cond:
        failed += 1
    sys.stdout.flush()
    return cond


def wait_for(cond, timeout):
    """Polls cond() every 0.1 s until it is true or timeout passes;
    returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


class Ternd:
    """One ternd process on a data directory; port 0 picks a free one, and
    a restart asks for the same again."""

    def __init__(self, data, port=0):
        self.data = data
        argv = [TERND, "--listen", "127.0.0.1:%d" % port, "--data", data]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        line = self.p.stdout.readline()
        if "listening on http://127.0.0.1:" not in line:
            self.p.wait(10)
            raise RuntimeError("ternd did not start: " + line +
                               self.p.stdout.read())
        self.port = int(line.split("127.0.0.1:")[1].split()[0].rstrip(","))
        threading.Thread(target=self.p.stdout.read, daemon=True).start()

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stats(self):
        return json.loads(self.req("GET", "/stats")[1])["hub"]

    def stop(self, sig):
        self.p.send_signal(sig)
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def restart(old, sig):
    """Stops |old| with |sig| and starts ternd again on its directory and
    port (retrying while the port is not free yet)."""
    code = old.stop(sig)
    for _ in range(50):
        try:
            return code, Ternd(old.data, old.port)
        except RuntimeError:
            time.sleep(0.2)
    return code, Ternd(old.data, old.port)


class Browser:
    """Headless Chromium on a profile of its own, in its own process group
    so that every process it starts goes with it."""

    def __init__(self, profile):
        self.profile = profile
        self.log = open(os.path.join(profile, "..", "chromium.log"), "wb")
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile, "--remote-debugging-port=0",
                "about:blank"]
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                  start_new_session=True)
        port_file = os.path.join(profile, "DevToolsActivePort")
        # Chromium writes the file once it listens: the port, then the
        # browser's path.
        self.port = None
        if wait_for(lambda: self._read_port(port_file), 40):
            self.port = self._read_port(port_file)

    @staticmethod
    def _read_port(path):
        try:
            with open(path) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def page_target(self):
        """The DevTools WebSocket path of the first page."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/json/list")
        targets = json.loads(c.getresponse().read())
        c.close()
        for t in targets:
            if t.get("type") == "page":
                url = t["webSocketDebuggerUrl"]
                return url[url.index("/devtools/"):]
        return None

    def close(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait()
        self.log.close()


class DevTools:
    """The DevTools protocol on one page: commands with ids, answers
    matched by id, events kept in |events| as (method, params)."""

    def __init__(self, port, path):
        self.ws = Connection(port, path, timeout=30)
        self.next_id = 0
        self.events = []

    def call(self, method, params=None):
        self.next_id += 1
        want = self.next_id
        self.ws.send_text(json.dumps({"id": want, "method": method,
                                      "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv_message())
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {})))
            elif msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def evaluate(self, expr):
        """The JSON value of a JavaScript expression in the page."""
        r = self.call("Runtime.evaluate", {"expression": expr,
                                           "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def close(self):
        self.ws.close()


def resumes(pane, events):
    """For each connection a pane made, in order, the seq it resumed from
    (None for none): the seq of an SSE request's Last-Event-ID as sent, or
    a WebSocket URL's ?seq=.  Requests that never reached the network
    (ternd was down) have no headers and are left out."""
    out = []
    if pane == "sse":
        sent = {}
        for method, p in events:
            if method == "Network.requestWillBeSentExtraInfo":
                sent[p["requestId"]] = dict(
                    (k.lower(), v) for k, v in p.get("headers", {}).items())
        for method, p in events:
            if (method == "Network.requestWillBeSent" and
                    "/stream?" in p["request"]["url"] and
                    p["requestId"] in sent):
                lei = sent[p["requestId"]].get("last-event-id")
                out.append(int(lei.split(".")[-1]) if lei else None)
    else:
        for method, p in events:
            if method == "Network.webSocketCreated":
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(
                    p["url"]).query)
                out.append(int(q["seq"][0]) if "seq" in q else None)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="ternd_browser.")
    cleanup = []
    try:
        run(tmp, cleanup)
    finally:
        for done in reversed(cleanup):
            done()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n_tests)
    return 1 if failed else 0


def run(tmp, cleanup):
    t0 = time.monotonic()
    profile = os.path.join(tmp, "profile")
    os.mkdir(profile)
    browser = Browser(profile)
    cleanup.append(browser.close)
    if not ok(browser.port, "Chromium starts and writes DevToolsActivePort "
              "(%.1f s)" % (time.monotonic() - t0)):
        with open(os.path.join(tmp, "chromium.log"), "rb") as f:
            sys.stdout.write("# " + f.read()[-2000:].decode(
                "utf-8", "replace").replace("\n", "\n# ") + "\n")
        return
    dt = DevTools(browser.port, browser.page_target())
    cleanup.append(dt.close)

    t = Ternd(os.path.join(tmp, "data"))
    servers = [t]  # the one running now
    cleanup.append(lambda: servers[0].stop(signal.SIGKILL))

    def state():
        try:
            return dt.evaluate("window.ternState || null")
        except RuntimeError:
            return None  # the page is loading

    # The Network domain reports each request with the headers that went
    # out (Last-Event-ID among them) and each WebSocket with its URL.
    dt.call("Network.enable")
    dt.call("Page.navigate", {"url": "http://127.0.0.1:%d/?session=%s&ws=%s"
                              % (t.port, SSE_KEY, WS_KEY)})
    s = wait_for(lambda: (lambda st: st if st and st["sse"]["state"] == "open"
                          and st["ws"]["state"] == "open" else None)(state()),
                 20)
    if not ok(s, "the page opens its SSE and WebSocket panes"):
        print("# state: %s" % json.dumps(state()))
        return

    published = []

    def publish(first, last):
        good = True
        for i in range(first, last + 1):
            mid = "m%02d" % i
            for key in (SSE_KEY, WS_KEY):
                st, _ = servers[0].req(
                    "POST", "/publish?session=%s&id=%s&durable=sync" %
                    (key, mid), ("message %d" % i).encode())
                good = good and st == 202
            published.append(mid)
        return good

    def all_shown_and_acked():
        st = state()
        if not st:
            return None
        for name in ("sse", "ws"):
            p = st[name]
            if ([m["id"] for m in p["shown"]] != published or
                    p["ackedSeq"] != p["lastSeq"]):
                return None
        hub = servers[0].stats()
        return st if hub["messages"] == 0 and hub["inflight"] == 0 else None

    ok(publish(1, 8), "8 messages published to each pane's session, "
       "durable=sync")
    s = wait_for(all_shown_and_acked, 15)
    ok(s, "both panes show them and ack them: the hub holds nothing")

    # What was acked (and is on disk, under the SYNC publishes that
    # follow) must not be delivered again: nothing of it in the deliveries
    # from here on.
    def checkpoint(st):
        st = st or state() or {}
        return (set(published), {k: len(st.get(k, {}).get("got", []))
                                 for k in ("sse", "ws")})
    checkpoints = [checkpoint(s)]

    # Some published just before the kill: shown, maybe not yet acked.
    ok(publish(9, 12), "4 more, just before the SIGKILL")
    port = t.port
    code, t = restart(t, signal.SIGKILL)
    servers[0] = t
    ok(code == -signal.SIGKILL and t.port == port,
       "ternd SIGKILLed and restarted on its directory and port %d" %
       t.port)

    def reopened(n):
        st = state()
        return st if st and all(st[k]["opens"] >= n and
                                st[k]["state"] == "open"
                                for k in ("sse", "ws")) else None
    ok(wait_for(lambda: reopened(2), 20),
       "both panes reconnect by themselves")
    ok(publish(13, 16), "4 more after the restart")
    s = wait_for(all_shown_and_acked, 15)
    ok(s, "after the restart, both panes show all 16 and ack them")
    checkpoints.append(checkpoint(s))
    before_term = {k: (s or {}).get(k, {}).get("lastSeq")
                   for k in ("sse", "ws")}
    events_before_term = len(dt.events)

    code, t = restart(t, signal.SIGTERM)
    servers[0] = t
    ok(code == 0, "ternd SIGTERMed (exit 0) and restarted")
    ok(wait_for(lambda: reopened(3), 25),
       "both panes reconnect after the goodbye")
    ok(publish(17, 20), "4 more after the second restart")
    s = wait_for(all_shown_and_acked, 15)
    ok(s, "both panes show all 20 and ack them")
    s = s or state() or {}

    for name, what in (("sse", "SSE"), ("ws", "WebSocket")):
        p = s.get(name)
        if not p:
            ok(False, "%s: the page's state" % what)
            continue
        shown = [m["id"] for m in p["shown"]]
        seqs = [m["seq"] for m in p["shown"]]
        ok(shown == published,
           "%s: every message shown exactly once, in publish order "
           "(%d shown)" % (what, len(shown)))
        ok(all(a < b for a, b in zip(seqs, seqs[1:])),
           "%s: in seq order %s" % (what, seqs))
        got = [m["id"] for m in p["got"]]
        again = sorted(set(i for acked, at in checkpoints
                           for i in got[at[name]:] if i in acked))
        ok(not again, "%s: no message acked before a restart came back "
           "after it %s (%d deliveries, %d repeats)" %
           (what, again, len(got), p["dups"]))
        # Each connection after the first resumed the stream: EventSource
        # with Last-Event-ID, the WebSocket pane with ?seq=; those after
        # the SIGTERM from the last seq the pane had.
        early = resumes(name, dt.events[:events_before_term])
        late = resumes(name, dt.events)[len(early):]
        ok(early[:1] == [None] and len(early) >= 2 and
           None not in early[1:] and late and
           all(r == before_term[name] for r in late),
           "%s: reconnects resume with %s, the last seq it got: %s, then "
           "%s (%d)" % (what, "Last-Event-ID" if name == "sse" else "?seq=",
                        early, late, before_term[name]))
        # EventSource reconnects by itself (with Last-Event-ID); the
        # WebSocket pane makes a new WebSocket each time (with ?seq=).
        starts = 1 if name == "sse" else 3
        ok(p["opens"] == 3 and p["starts"] == starts and
           p["session"] == (SSE_KEY if name == "sse" else WS_KEY),
           "%s: three connections, one per server run, from %d %s "
           "(%d opened, %d made)" % (what, starts, "EventSource"
                                     if name == "sse" else "WebSockets",
                                     p["opens"], p["starts"]))
        text = dt.evaluate("document.getElementById('%s-count').textContent"
                           % name)
        ok(text.startswith("shown 20, last seq %d, acked" % p["lastSeq"]),
           "%s: the page shows its counters: %s" % (what, text))
        lines = dt.evaluate("document.querySelectorAll('#%s-log .m').length"
                            % name)
        ok(lines == 20, "%s: 20 message lines in the log (%s)" %
           (what, lines))

    # The hub's counters: the table follows GET /stats (refreshed every
    # second); this run of ternd published 8 messages.
    def table():
        rows = dt.evaluate(
            "[...document.querySelectorAll('#stats tr')].map("
            "r => [...r.cells].map(c => c.textContent))")
        return dict(rows or [])
    hub = t.stats()
    want = {k: str(hub[k]) for k in ("published", "acked", "messages")}
    tb = wait_for(lambda: (lambda r: r if all(r.get(k) == v for k, v in
                                              want.items()) else None)(
                                                  table()), 5)
    ok(tb and want == {"published": "8", "acked": "8", "messages": "0"},
       "the hub's counters are shown: %s" % (tb or table()))
    print("# all in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    sys.exit(main())
