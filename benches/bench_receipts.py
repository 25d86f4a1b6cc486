"""Benchmark of run receipts: the same run with receipts on and off, in one process.

    .venv/bin/python benches/bench_receipts.py

A receipt hashes every input file below the run's preopens before the run and every
output after it, so its cost grows with the namespace: fsops writing one file over a
namespace of N files of 1 KiB, for N in 10, 100 and 1,000, receipts off against on
(median of 30 runs each, warm), and the ratio. The alternative a user would pick for the
same record is hashing the files themselves around the run: that is what the receipt
does, so the ratio is the price of the record.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oanix import MemFs, Namespace  # noqa: E402
from oanix.wasi import RunConfig, WasiRuntime  # noqa: E402

FSOPS = str(ROOT / "wasi_fixtures" / "fsops.wasm")


def median_ms(rt: WasiRuntime, ns: Namespace, receipt: bool, n: int = 30) -> float:
    config = RunConfig(argv=["write", "/data/out.txt", "x"], receipt=receipt)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        res = rt.run(FSOPS, ns, config)
        times.append(time.perf_counter() - t0)
        assert res.ok and (res.receipt is not None) == receipt
    return statistics.median(times) * 1e3


def main() -> None:
    with WasiRuntime() as rt:
        for files in (10, 100, 1000):
            ns = Namespace()
            data = MemFs()
            for i in range(files):
                data.write_bytes(f"/f{i:04d}", bytes([i % 256]) * 1024)
            ns.mount("/data", data)
            rt.run(FSOPS, ns, RunConfig(argv=["write", "/data/out.txt", "x"]))  # stage
            off = median_ms(rt, ns, False)
            on = median_ms(rt, ns, True)
            print(f"{files:5d} files of 1 KiB: receipts off {off:7.2f} ms, on {on:7.2f} ms, "
                  f"ratio {on / off:.2f}x")


if __name__ == "__main__":
    main()
