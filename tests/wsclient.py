"""A small WebSocket client (RFC 6455) on the standard library alone, for
the tests: ternd_test.py drives ternd's /ws with it, ternd_browser_test.py
speaks the Chrome DevTools Protocol over it.

The handshake is written by hand (the key is fixed, so a test can check the
server's accept value); client frames are masked; server frames may be
fragmented and of any length.  Nothing here checks the server's framing
strictly: the tests that care look at the frames themselves.
"""
import os
import socket

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="          # RFC 6455's example key
WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="    # and its answer

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_open(port, path, protocol=None, version="13", host="127.0.0.1",
            timeout=5):
    """Connects and sends the upgrade: (socket, status, headers, rest), the
    headers' names lower case, rest the bytes read past the head."""
    s = socket.create_connection((host, port), timeout=timeout)
    head = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
            "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: %s\r\n" % (path, host, port, WS_KEY,
                                                version))
    if protocol:
        head += "Sec-WebSocket-Protocol: %s\r\n" % protocol
    s.sendall((head + "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        status = 0
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return s, status, hdrs, rest


def ws_send(s, opcode, payload):
    """One unfragmented, masked frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(head + mask + masked)


def read_frame(s, rest):
    """One server frame: (fin, opcode, payload, rest), rest what was read
    past it; raises EOFError when the connection ends first."""
    buf = rest

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
    need(2)
    fin, op, n = bool(buf[0] & 0x80), buf[0] & 0x0f, buf[1] & 0x7f
    off = 2
    if n == 126:
        need(4)
        n, off = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        need(10)
        n, off = int.from_bytes(buf[2:10], "big"), 10
    need(off + n)
    return fin, op, buf[off:off + n], buf[off + n:]


def ws_recv(s, rest):
    """One server frame: (opcode, payload, rest)."""
    _, op, data, rest = read_frame(s, rest)
    return op, data, rest


def ws_next_text(s, rest):
    """The next data or close frame, answering pings on the way:
    (opcode, payload, rest)."""
    while True:
        op, data, rest = ws_recv(s, rest)
        if op == OP_PING:
            ws_send(s, OP_PONG, data)
            continue
        return op, data, rest


class Connection:
    """A client connection that reads whole messages (fragments joined)."""

    def __init__(self, port, path, protocol=None, host="127.0.0.1",
                 timeout=10):
        self.s, self.status, self.headers, self.rest = ws_open(
            port, path, protocol, host=host, timeout=timeout)
        if self.status != 101:
            self.s.close()
            raise ConnectionError("WebSocket upgrade answered %d" %
                                  self.status)

    def send_text(self, text):
        ws_send(self.s, OP_TEXT, text.encode())

    def recv_message(self):
        """The next text or binary message, as bytes; raises EOFError on a
        close or the end of the connection."""
        parts = []
        while True:
            first = self._frame()
            if first is None:
                continue
            op, fin, data = first
            if op == OP_CONT and not parts:
                continue  # a stray continuation: nothing to join it to
            parts.append(data)
            if fin:
                return b"".join(parts)

    def _frame(self):
        fin, op, data, self.rest = read_frame(self.s, self.rest)
        if op == OP_PING:
            ws_send(self.s, OP_PONG, data)
            return None
        if op == OP_PONG:
            return None
        if op == OP_CLOSE:
            raise EOFError
        return op, fin, data

    def settimeout(self, seconds):
        self.s.settimeout(seconds)

    def close(self):
        try:
            ws_send(self.s, OP_CLOSE, (1000).to_bytes(2, "big"))
        except OSError:
            pass
        self.s.close()
