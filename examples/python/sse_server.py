#!/usr/bin/env python3
"""sse_server.py: a Server-Sent Events push server on asyncio and libtern.

    python3 sse_server.py [--host 127.0.0.1] [--port 8080] [--store DIR]

Routes (KEY is a session key, one per receiver):
    GET  /events/KEY           text/event-stream; resumes from Last-Event-ID
    POST /publish/KEY?id=&ttl= the body is the message (202, {"id": ...})
    POST /ack/KEY?seq=N        acks up to N on the stream that carried N
    GET  /stats                the hub's counters as JSON

The hub does the delivery: queueing, priorities, seqs, resends of what a
dropped stream did not ack, heartbeats, TTLs.  This file only moves bytes:
request in, hub call, hub.ready() -> conn.write() -> the socket.  Run it
with PYTHONPATH pointing at the built binding (build/bindings/python).
"""

import argparse
import asyncio
import json
import signal
import time
import urllib.parse

import tern

SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
STATUS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
          503: "Service Unavailable"}


def respond(writer, status, body, headers=""):
    data = json.dumps(body).encode()
    writer.write(f"HTTP/1.1 {status} {STATUS[status]}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: "
                 f"{len(data)}\r\nConnection: close\r\n{headers}\r\n"
                 .encode() + data)


class PushServer:
    def __init__(self, hub):
        self.hub = hub
        self.wake = asyncio.Event()

    def flush(self, conn):
        """Writes what the hub has for conn; closes the socket at its end."""
        writer = conn.data
        try:
            while data := conn.write():
                writer.write(data)
        except tern.ClosedError:  # the hub ended it and it is all written
            writer.close()

    def pump(self):
        """After every hub call: ready connections, end events, timers."""
        for conn in self.hub.ready():
            if conn.data is not None:
                self.flush(conn)
        for ev in self.hub.events():
            if ev.type in (tern.EventType.CONN_CLOSED,
                           tern.EventType.CONN_DEAD) and ev.conn:
                self.flush(ev.conn)
        self.wake.set()

    async def timers(self):
        """Heartbeats, TTLs, resends and store batches run at hub.expiry."""
        while True:
            self.wake.clear()
            expiry = self.hub.expiry
            delay = 60.0 if expiry is None else max(
                0.0, (expiry - time.monotonic_ns()) / 1e9)
            try:
                await asyncio.wait_for(self.wake.wait(), min(delay, 60.0))
            except asyncio.TimeoutError:
                pass
            self.hub.handle_expiry()
            self.pump()

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:] if line)}
            url = urllib.parse.urlsplit(target)
            query = dict(urllib.parse.parse_qsl(url.query))
            route = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
            if method == "GET" and route[0] == "events" and len(route) == 2:
                return await self.stream(route[1], headers, reader, writer)
            body = await reader.readexactly(
                int(headers.get("content-length", "0")))
            await self.request(method, route, query, body, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        except (ValueError, IndexError, tern.Error) as e:  # a bad request
            respond(writer, 400, {"error": str(e)})
        writer.close()

    async def request(self, method, route, query, body, writer):
        try:
            if method == "POST" and route[0] == "publish" and len(route) == 2:
                r = self.hub.publish(route[1], body, id=query.get("id"),
                                     ttl=float(query.get("ttl", 0)))
                respond(writer, 202, {"id": r.id.decode("latin-1")})
            elif method == "POST" and route[0] == "ack" and len(route) == 2:
                n = self.hub.ack(route[1], int(query["seq"]))
                respond(writer, 200, {"acked": n})
            elif method == "GET" and route == ["stats"]:
                st = self.hub.stats()
                respond(writer, 200, dict(zip(type(st).__match_args__, st)))
            else:
                respond(writer, 404, {"error": "no such route"})
        except tern.NotFoundError as e:
            respond(writer, 404, {"error": str(e)})
        except tern.FullError as e:
            respond(writer, 503, {"error": str(e)},
                    f"Retry-After: {max(1, round(e.retry_after))}\r\n")
        except (tern.Error, KeyError) as e:
            respond(writer, 400, {"error": str(e)})
        self.pump()

    async def stream(self, key, headers, reader, writer):
        epoch, seq = 0, 0
        if "last-event-id" in headers:
            epoch, seq = tern.parse_resume(headers["last-event-id"])
        conn = self.hub.open_stream(key, tern.Framing.SSE, resume_epoch=epoch,
                                    resume_seq=seq, retry=1)
        conn.data = writer
        writer.write(SSE_HEAD)
        self.flush(conn)
        self.pump()
        try:
            await reader.read()  # nothing comes but the end of the request
        finally:
            conn.close()  # what it did not get goes back to its session
            writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--store", help="a FileStore directory (survives restarts)")
    args = ap.parse_args()
    with tern.Hub() as hub:
        store = None
        if args.store:
            store = tern.FileStore(args.store)
            hub.set_wallclock()
            hub.set_store(store)
        push = PushServer(hub)
        server = await asyncio.start_server(push.handle, args.host, args.port)
        port = server.sockets[0].getsockname()[1]
        print(f"listening on http://{args.host}:{port}", flush=True)
        timers = asyncio.create_task(push.timers())
        # SIGTERM closes the hub in order: what waits is stored first
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM,
                                                      server.close)
        try:
            async with server:
                await server.serve_forever()
        except asyncio.CancelledError:
            pass
        finally:
            timers.cancel()
            hub.close()
            if store:
                store.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
