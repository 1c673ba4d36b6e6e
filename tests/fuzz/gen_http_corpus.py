#!/usr/bin/env python3
"""Writes the seed corpus of the HTTP parser fuzz target (tests/fuzz/corpus/http).

Each file is two control bytes (read-size seed, limits selector: 0 for the
defaults, anything else for small limits) followed by what a client sent:
the requests ternd's API uses, requests written by Python's http.client,
pipelined and keep-alive streams, and malformed ones for every error class.
Deterministic; re-run after changing the parser's rules:

    python3 tests/fuzz/gen_http_corpus.py
"""

import http.client
import os

H = b" HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"


class Capture:
    """A socket stand-in that keeps what http.client sends."""

    def __init__(self):
        self.data = b""

    def sendall(self, b):
        self.data += bytes(b)

    def makefile(self, *a, **k):
        raise OSError("no responses here")

    def close(self):
        pass


def httpclient(method, url, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", 8080)
    c.sock = Capture()
    c.request(method, url, body=body, headers=headers or {})
    return c.sock.data


SEEDS = {
    "get_root": b"GET /" + H + b"\r\n",
    "publish": b"POST /publish?session=user-42&id=o-1&prio=high&ttl=60" + H +
               b"Authorization: Bearer s3cret\r\n"
               b"Content-Type: application/json\r\n"
               b"Content-Length: 17\r\n\r\n{\"order\":\"paid\"}\n",
    "stream_sse": b"GET /stream?session=demo&seq=3&token=1700000000.ab12" + H +
                  b"Accept: text/event-stream\r\nLast-Event-ID: 9.3\r\n\r\n",
    "ws": b"GET /ws?session=k" + H + b"Upgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          b"Sec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Protocol: tern.json, tern.bin\r\n\r\n",
    "pipelined": b"POST /ack?session=a&seq=1" + H + b"Content-Length: 0\r\n\r\n"
                 b"GET /poll?session=a&seq=2&timeout=0" + H + b"\r\n"
                 b"POST /subscribe?session=a&topic=t&filter=prio%3Dhigh" + H +
                 b"Connection: close\r\n\r\n",
    "http10_keepalive": b"GET /stats HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                        b"GET /metrics HTTP/1.0\r\n\r\n",
    "expect_continue": b"POST /publish?topic=news" + H +
                       b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd",
    "webhook_delete": b"DELETE /webhooks/h1" + H +
                      b"Authorization: Bearer s3cret\r\n\r\n",
    "query_encoding": b"GET /x%20y?a+b=c%2Bd&&e&=f&g=%C3%A9" + H + b"\r\n",
    "leading_crlf": b"\r\n\r\nOPTIONS /publish" + H + b"\r\n",
    "httpclient_get": httpclient("GET", "/stream?session=py&seq=1"),
    "httpclient_post": httpclient("POST", "/publish?session=py&id=1",
                                  body=b"payload",
                                  headers={"Content-Type": "text/plain"}),
    "decoded_lf": b"GET /a%0AHost:%20evil?x=%0D%0AHost:%20evil" + H +
                  b"Content-Length: 0\r\n\r\n",
    "bad_bare_lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "bad_obs_fold": b"GET /" + H + b"X-A: b\r\n c\r\n\r\n",
    "bad_space_colon": b"GET /" + H + b"X-A : b\r\n\r\n",
    "bad_absolute": b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_escape": b"GET /a?x=%zz" + H + b"\r\n",
    "bad_cl": b"POST /" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bad_te": b"POST /" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad_method": b"PUT /" + H + b"\r\n",
    "bad_version": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "bad_no_host": b"GET / HTTP/1.1\r\n\r\n",
    "bad_expect": b"POST /" + H + b"Expect: nope\r\n\r\n",
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                       "http")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(bytes([sum(name.encode()) & 0xff, 0]) + data)
        # the same bytes under small limits
        with open(os.path.join(out, name + "_small.bin"), "wb") as f:
            f.write(bytes([(sum(name.encode()) * 7) & 0xff, 0x5b]) + data)


if __name__ == "__main__":
    main()
