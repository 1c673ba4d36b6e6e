#!/usr/bin/env python3
"""Writes the seed corpus of the HTTP response parser fuzz target
(tests/fuzz/corpus/http_response).

Each file is two control bytes (read-size seed; limits selector: 0 for the
client's defaults, anything else for small limits, bit 7 for an answer to
HEAD) followed by what a server sent: answers written by Python's
http.server, chunked and close-delimited bodies, interim 1xx answers,
Retry-After, and malformed ones for every error class.  Deterministic:

    python3 tests/fuzz/gen_http_response_corpus.py
"""

import os

OK = b"HTTP/1.1 200 OK\r\n"

CASES = {
    "ok_length": OK + b"Content-Length: 2\r\n\r\nok",
    "ok_python": (b"HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.12\r\n"
                  b"Date: Sat, 05 Dec 2026 11:00:00 GMT\r\n"
                  b"Content-Length: 2\r\n\r\nok"),
    "no_content": b"HTTP/1.1 204 No Content\r\n\r\n",
    "no_reason": b"HTTP/1.1 202\r\nContent-Length: 0\r\n\r\n",
    "retry_after": (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
                    b"Content-Length: 0\r\n\r\n"),
    "retry_after_date": (b"HTTP/1.1 503 Service Unavailable\r\n"
                         b"Retry-After: Sat, 05 Dec 2026 11:00:05 GMT\r\n"
                         b"Content-Length: 4\r\n\r\nbusy"),
    "chunked": (OK + b"Transfer-Encoding: chunked\r\n\r\n"
                b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n"),
    "chunked_upper": (OK + b"Transfer-Encoding: Chunked\r\n\r\n"
                      b"A\r\n0123456789\r\n0\r\n\r\n"),
    "close_body": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    "http10_close": b"HTTP/1.0 500 Internal Server Error\r\n\r\nboom",
    "interim": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                + OK + b"Content-Length: 3\r\n\r\nyes"),
    "challenge": OK + b"Content-Type: text/plain\r\nContent-Length: 32\r\n\r\n"
                 + b"0123456789abcdef0123456789abcdef",
    "keep_alive_10": (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                      b"Content-Length: 1\r\n\r\nx"),
    "trailing_bytes": OK + b"Content-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
    "bad_bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "bad_cr": b"HTTP/1.1 200 OK\rX\r\n\r\n",
    "bad_version": b"HTTP/2.0 200 OK\r\n\r\n",
    "bad_status": b"HTTP/1.1 20x OK\r\n\r\n",
    "bad_status_range": b"HTTP/1.1 600 Nope\r\n\r\n",
    "bad_switch": b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "bad_fold": OK + b"X-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
    "bad_name": OK + b"X A: 1\r\n\r\n",
    "bad_cl": OK + b"Content-Length: 1,1\r\n\r\nx",
    "bad_cl_disagree": OK + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    "bad_te": OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "bad_te_cl": (OK + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                  b"0\r\n\r\n"),
    "bad_chunk_size": OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "bad_chunk_end": OK + b"Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
    "bad_chunk_huge": (OK + b"Transfer-Encoding: chunked\r\n\r\n"
                       b"ffffffffffffffff\r\n"),
    "cut_short": OK + b"Content-Length: 10\r\n\r\nabc",
    "cut_head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "empty": b"",
    "big_body": OK + b"Content-Length: 100\r\n\r\n" + b"b" * 100,
    "many_headers": OK + b"".join(b"X-%d: v\r\n" % i for i in range(8))
                    + b"Content-Length: 0\r\n\r\n",
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "corpus", "http_response")
    os.makedirs(out, exist_ok=True)
    for name, body in sorted(CASES.items()):
        for suffix, sel in (("", 0), ("_small", 0x35), ("_head", 0x80)):
            if suffix == "_head" and not name.startswith("ok"):
                continue
            with open(os.path.join(out, name + suffix + ".bin"), "wb") as f:
                f.write(bytes([len(name) & 0xff, sel]) + body)


if __name__ == "__main__":
    main()
