"""WebSocket echo round trips: through WsFs files vs a direct websockets.trio client.

    python benches/bench_ws.py [--count 2000] [--size 64] [--repeat 3]

One websockets.trio echo server on 127.0.0.1 (its own trio run on a thread) serves both:

* files: an agent thread writes each message to ``/cap/ws/conns/<id>/out`` through a
  Namespace, blocks in ``WsFs.wait`` until the echo is in, and reads ``.../in``; a
  WsConnector in an ExecutorManager thread holds the socket. One message in flight.
* direct: a websockets.trio client in its own trio run does ``send`` then ``recv``.

Both send ``--count`` text messages of ``--size`` bytes, one at a time, and check each
echo. Each figure is the best of ``--repeat`` runs; compare the ratio, which comes from
one run, not absolute times across machines.
"""

from __future__ import annotations

import argparse
import functools
import threading
import time

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection, serve

from oanix import Namespace
from oanix.cap import ExecutorManager, WsConnector
from oanix.cap.policy import CapabilityPolicy
from oanix.cap.ws import WsFs


class EchoServer:
    """A websockets.trio echo server on its own thread."""

    def __init__(self) -> None:
        self.port = 0
        self._started = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(
                serve, self._echo, 0, host="127.0.0.1", compression=None))
            self.port = server.listeners[0].socket.getsockname()[1]
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _echo(ws: ServerConnection) -> None:
        try:
            while True:
                await ws.send(await ws.recv())
        except ConnectionClosed:
            pass


def run_files(url: str, messages: list[bytes]) -> float:
    """Seconds for the round trips through WsFs files (connection set up beforehand)."""
    fs = WsFs()
    ns = Namespace()
    ns.mount("/cap/ws", fs)
    policy = CapabilityPolicy(schemes={"ws"}, hosts={"127.0.0.1"})
    manager = ExecutorManager(WsConnector(fs, policy))
    manager.start_thread()
    try:
        with ns.open("/cap/ws/control", "r+b") as ctl:
            ctl.write(f'{{"op": "open", "url": "{url}"}}\n'.encode())
            cid = ctl.read().decode().strip()
        assert fs.wait_state(cid, ("open",), 10) == "open"
        out, inp = f"/cap/ws/conns/{cid}/out", f"/cap/ws/conns/{cid}/in"
        start = time.perf_counter()
        for msg in messages:
            ns.write_bytes(out, msg)
            if not fs.wait(cid, 10):
                raise RuntimeError(f"no echo: {fs.status(cid)}")
            if ns.read_bytes(inp) != msg:
                raise RuntimeError("echo differs")
        return time.perf_counter() - start
    finally:
        manager.stop()


def run_direct(url: str, messages: list[bytes]) -> float:
    """Seconds for the same round trips with a websockets.trio client."""
    texts = [m.decode() for m in messages]

    async def main() -> float:
        async with connect(url, compression=None) as ws:
            start = time.perf_counter()
            for text in texts:
                await ws.send(text)
                if await ws.recv() != text:
                    raise RuntimeError("echo differs")
            return time.perf_counter() - start

    return trio.run(main)


def report(count: int = 2000, size: int = 64, repeat: int = 3) -> None:
    """Run the comparison and print it."""
    messages = [f"{i:08d}".encode().ljust(size, b".") for i in range(count)]
    with EchoServer() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        files = min(run_files(url, messages) for _ in range(repeat))
        direct = min(run_direct(url, messages) for _ in range(repeat))
    n = count
    print(f"WebSocket, {n} echo round trips of {size} B, best of {repeat}:")
    print(f"  WsFs files (Namespace)  {files * 1000:8.1f} ms  {files / n * 1e6:7.1f} us/trip")
    print(f"  websockets.trio direct  {direct * 1000:8.1f} ms  {direct / n * 1e6:7.1f} us/trip")
    print(f"  ratio files/direct      {files / direct:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report(args.count, args.size, args.repeat)


if __name__ == "__main__":
    main()
