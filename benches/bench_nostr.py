"""Nostr capability costs: signing and verification, and publishing to a real local relay.

    python benches/bench_nostr.py [--events 500] [--repeat 3]

1. Per event: sign (build + id + BIP-340) and verify (id recomputation + signature), oanix's
   coincurve code against pynostr 0.7 (``Event(...).sign``; ``Event.from_dict(d).verify()``,
   which also recomputes the id). Medians of 2000.
2. Publish throughput to a real ``nostr-relay`` (SQLite) on 127.0.0.1: N events written to
   ``/submit`` of a NostrFs (signing included) with a NostrRelayConnector running, until
   every outbox entry is ``completed``; against a raw ``websockets.trio`` client sending the
   same pre-signed events (deterministic signatures: the same ids) pipelined and reading the
   N ``OK``s. Each run gets a fresh relay database, so no event is a duplicate. Best of
   ``--repeat``; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coincurve
import trio
from websockets.trio.client import connect

from oanix.cap import NostrRelayConnector
from oanix.cap.nostr import Event, NostrFs, sign_event, verify_event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cap"))
from nostr_relay_fixture import (  # type: ignore[import-not-found, unused-ignore]
    RelayProcess,
    find_relay_executable,
)

SECRET = bytes.fromhex("d217c1ff2f8a65c3e3a1740db3b9f58b8c848bb45e26d00ed4714e4a0f4ceecf")
TAGS = [["t", "oanix"], ["p", "ab" * 32]]


def median_us(fn: Callable[[], Any], n: int = 2000) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def bench_crypto() -> None:
    from pynostr.event import Event as PyEvent  # type: ignore[import-untyped]
    from pynostr.key import PrivateKey as PyKey  # type: ignore[import-untyped]

    key = coincurve.PrivateKey(SECRET)
    pykey = PyKey(SECRET)
    pyhex = pykey.hex()
    ours_sign = median_us(lambda: sign_event(key, 1, "hello from oanix", TAGS, 1700000000))

    def py_sign() -> None:
        PyEvent(kind=1, content="hello from oanix", tags=[list(t) for t in TAGS],
                created_at=1700000000).sign(pyhex)

    theirs_sign = median_us(py_sign)
    ev = sign_event(key, 1, "hello from oanix", TAGS, 1700000000)
    wire = ev.to_json()
    ours_verify = median_us(lambda: verify_event(Event.from_json(wire)))
    theirs_verify = median_us(lambda: PyEvent.from_dict(wire).verify())
    print("per event (median of 2000)          oanix     pynostr   pynostr/oanix")
    print(f"  sign (build, id, BIP-340)       {ours_sign:7.1f} us {theirs_sign:7.1f} us"
          f"   {theirs_sign / ours_sign:5.2f}x")
    print(f"  verify (parse, id, signature)   {ours_verify:7.1f} us {theirs_verify:7.1f} us"
          f"   {theirs_verify / ours_verify:5.2f}x")


def templates(n: int) -> list[dict[str, Any]]:
    now = int(time.time())
    return [{"kind": 1, "content": f"bench note {i}", "tags": TAGS, "created_at": now}
            for i in range(n)]


async def publish_raw(url: str, events: list[dict[str, Any]]) -> float:
    async with connect(url, ping_interval=None) as ws:
        t0 = time.perf_counter()
        for ev in events:
            await ws.send(json.dumps(["EVENT", ev]))
        acked = 0
        while acked < len(events):
            msg = json.loads(await ws.recv())
            if msg[0] == "OK":
                assert msg[2] is True, msg
                acked += 1
        return time.perf_counter() - t0


async def publish_fs(url: str, tmpl: list[dict[str, Any]]) -> float:
    fs = NostrFs(SECRET, relays=[url])
    conn = NostrRelayConnector(fs, ping_interval=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.run)
        await fs.wait_for_async(lambda s: s.status()["relays"][url]["state"] == "open", 10)
        t0 = time.perf_counter()
        for t in tmpl:
            with fs.open("/submit", "w") as f:
                f.write(json.dumps(t).encode())
        ok = await fs.wait_for_async(
            lambda s: s.status()["outbox"]["completed"] == len(tmpl), 120)
        elapsed = time.perf_counter() - t0
        assert ok, fs.status()
        await conn.aclose()
    return elapsed


def bench_publish(n: int, repeat: int) -> None:
    exe = find_relay_executable()
    if exe is None:
        print("publish: skipped (nostr-relay not found)")
        return
    key = coincurve.PrivateKey(SECRET)
    raw_best = fs_best = float("inf")
    for _ in range(repeat):
        tmpl = templates(n)
        signed = [sign_event(key, t["kind"], t["content"], t["tags"], t["created_at"]).to_json()
                  for t in tmpl]
        for which in ("raw", "fs"):
            with tempfile.TemporaryDirectory() as tmp:
                relay = RelayProcess(exe, Path(tmp))
                relay.start()
                try:
                    if which == "raw":
                        raw_best = min(raw_best, trio.run(publish_raw, relay.url, signed))
                    else:
                        fs_best = min(fs_best, trio.run(publish_fs, relay.url, tmpl))
                finally:
                    relay.stop()
    print(f"publish {n} events to a local nostr-relay (best of {repeat})")
    print(f"  raw websockets client (pre-signed)  {raw_best * 1000:8.1f} ms "
          f"{n / raw_best:8.0f} ev/s")
    print(f"  NostrFs /submit + connector         {fs_best * 1000:8.1f} ms "
          f"{n / fs_best:8.0f} ev/s   ({fs_best / raw_best:.2f}x the raw time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_crypto()
    bench_publish(args.events, args.repeat)


if __name__ == "__main__":
    main()
