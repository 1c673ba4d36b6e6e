#!/usr/bin/env python3
"""Writes the seed corpus of the tern_http fuzz target
(tests/fuzz/corpus/http_server).

Each file is one control byte (the chunk-size seed) followed by what a
client sent on one connection: keep-alive and pipelined requests, requests
left unanswered with others behind them ("/d"), forwarded ones ("/f"),
streams ("/s", "/p"), bodies, 100-continue, and malformed requests.
Deterministic:

    python3 tests/fuzz/gen_http_server_corpus.py
"""
import os

H = b" HTTP/1.1\r\nHost: x\r\n"


def get(path, extra=b""):
    return b"GET " + path + H + extra + b"\r\n"


def post(path, body, extra=b""):
    return (b"POST " + path + H + b"Content-Length: %d\r\n" % len(body) +
            extra + b"\r\n" + body)


SEEDS = {
    "get": get(b"/a"),
    "keepalive": get(b"/a") + get(b"/b") + get(b"/c"),
    "deferred_pipelined": get(b"/d1") + get(b"/x") + post(b"/y", b"body"),
    "deferred_twice": get(b"/d1") + get(b"/d2") + get(b"/z"),
    "forward": get(b"/f?a=1") + get(b"/after"),
    "forward_body": post(b"/f", b"x" * 300) + get(b"/next"),
    "deferred_then_forward": get(b"/d") + get(b"/f") + get(b"/g"),
    "sse": get(b"/s?session=k") + get(b"/ignored"),
    "poll": get(b"/p"),
    "head": b"HEAD /h" + H + b"\r\n",
    "continue": post(b"/c", b"abc", b"Expect: 100-continue\r\n"),
    "close": get(b"/a", b"Connection: close\r\n") + get(b"/never"),
    "http10": b"GET /old HTTP/1.0\r\n\r\n",
    "bad_line": b"GARBAGE\r\n\r\n",
    "bad_after_good": get(b"/a") + b"GET /b HTTP/9.9\r\n\r\n",
    "big_body": post(b"/big", b"y" * 3000),
    "big_head": get(b"/a", b"X: " + b"z" * 1100 + b"\r\n"),
    "chunked": b"POST /t" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                       "http_server")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        for seed in (0, 7):
            with open(os.path.join(out, "%s_%d.bin" % (name, seed)),
                      "wb") as f:
                f.write(bytes([seed]) + data)


if __name__ == "__main__":
    main()
