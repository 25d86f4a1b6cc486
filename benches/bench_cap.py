"""Capability overhead, in one run: HTTP, WebSocket and Nostr through files vs directly.

    python benches/bench_cap.py [--requests 1000] [--concurrency 10] [--repeat 3]
                                [--http-only]

After the HTTP comparison below it runs ``bench_ws.report()`` (WebSocket echo round trips
through WsFs vs websockets.trio) and ``bench_nostr`` (sign and verify per event against
pynostr; publish throughput to a local nostr-relay through NostrFs vs a raw client).

Both sides send the same GETs to the same local server (a minimal asyncio HTTP/1.1
keep-alive server in another process, so it is not the bottleneck and shares no GIL), with
the same concurrency:

* direct: ``concurrency`` trio tasks share one ``httpx.AsyncClient``;
* HttpFs: an ``HttpExecutor`` (``max_concurrent=concurrency``) serves an HttpFs mounted at
  ``/cap/http`` in a Namespace; ``concurrency`` trio tasks each write a request file
  through the namespace, read ``last``, await ``wait_async``, read and parse
  ``responses/<id>.json`` and remove it.

Prints both throughputs (best of ``--repeat``) and the ratio (target: >= 0.7x direct).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import trio

from oanix import Namespace
from oanix.cap import HttpExecutor
from oanix.cap.http import HttpFs
from oanix.cap.policy import CapabilityPolicy

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")


class _Proto(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            self.transport.write(RESPONSE)


def serve() -> None:
    """Run the server and print its port (the child process)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Proto, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


async def fan_out(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> float:
    """Run ``one()`` ``n`` times from ``concurrency`` tasks; the elapsed seconds."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return time.perf_counter() - start


async def direct(url: str, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        async def one() -> None:
            resp = await client.get(url)
            assert resp.status_code == 200 and resp.content == b"ok"

        return await fan_out(n, concurrency, one)


async def through_httpfs(url: str, n: int, concurrency: int) -> float:
    fs = HttpFs()
    ns = Namespace()
    ns.mount("/cap/http", fs)
    policy = CapabilityPolicy(schemes={"http"}, hosts={"127.0.0.1"},
                              max_connections=concurrency)
    executor = HttpExecutor(fs, policy, max_concurrent=concurrency)
    request = json.dumps({"url": url}).encode()

    async def one() -> None:
        ns.write_bytes("/cap/http/request", request)
        rid = ns.read_text("/cap/http/last").strip()  # no checkpoint since the write
        await fs.wait_async(rid)
        path = f"/cap/http/responses/{rid}.json"
        res = json.loads(ns.read_bytes(path))
        assert res["status"] == 200 and res["body"] == "ok"
        ns.remove(path)

    async with trio.open_nursery() as nursery:
        await nursery.start(executor.run)
        elapsed = await fan_out(n, concurrency, one)
        await executor.aclose()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--http-only", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        url = f"http://127.0.0.1:{int(child.stdout.readline())}/ok"
        n, c = args.requests, args.concurrency
        trio.run(direct, url, 50, c)  # warm up
        best_direct = min(trio.run(direct, url, n, c) for _ in range(args.repeat))
        best_fs = min(trio.run(through_httpfs, url, n, c) for _ in range(args.repeat))
    finally:
        child.terminate()
        child.wait()
    rate_direct, rate_fs = n / best_direct, n / best_fs
    print(f"HTTP, {n} GETs, concurrency {c}, best of {args.repeat}:")
    print(f"  httpx.AsyncClient direct : {rate_direct:8.0f} req/s")
    print(f"  HttpFs + HttpExecutor    : {rate_fs:8.0f} req/s")
    print(f"  ratio                    : {rate_fs / rate_direct:8.2f}x direct (target >= 0.7)")
    if args.http_only:
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_nostr
    import bench_ws

    print()
    bench_ws.report(repeat=args.repeat)
    print()
    bench_nostr.bench_crypto()
    bench_nostr.bench_publish(500, args.repeat)


if __name__ == "__main__":
    main()
