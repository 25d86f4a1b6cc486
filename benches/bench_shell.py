"""The shell's data commands on a large file, oanix against the host's tools, in one run.

    python benches/bench_shell.py [--mb 10] [--repeat 3]

``sha256sum`` and ``gzip -c`` of an N MB file (random bytes and text, half each): in the
oanix shell over a Namespace with a MemFs, and the host's coreutils/gzip on a temporary
file (each host run includes starting the process, as a shell script pays it). Each
figure is the best of ``--repeat`` runs; the ratio is oanix time over host time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

from oanix import MemFs, Namespace
from oanix.shell import Shell


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    half = args.mb << 19
    data = os.urandom(half) + b"".join(b"line %d of some text\n" % i
                                       for i in range(half // 20))[:half]
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.write_bytes("/big", data)
    sh = Shell(ns)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big")
        with open(path, "wb") as f:
            f.write(data)
        print(f"{args.mb} MB file, best of {args.repeat}")
        print(f"{'command':<16} {'oanix':>10} {'host':>10} {'ratio':>7}")
        for cmd in ("sha256sum big", "gzip -c big"):
            tool = cmd.split()[0]
            ours = best(lambda cmd=cmd: _check(sh.exec(cmd.replace("big", "/big"))), args.repeat)
            host: float | None = None
            if shutil.which(tool):
                host = best(lambda cmd=cmd: subprocess.run(
                    cmd.split(), cwd=tmp, stdout=subprocess.DEVNULL, check=True), args.repeat)
            shown = f"{host * 1000:8.1f}ms" if host else "   missing"
            ratio = f"{ours / host:6.2f}x" if host else "      -"
            print(f"{cmd:<16} {ours * 1000:8.1f}ms {shown} {ratio}")


def _check(res: object) -> None:
    code = getattr(res, "exit_code", 1)
    if code != 0:
        raise SystemExit(f"command failed: {getattr(res, 'stderr', b'')!r}")


if __name__ == "__main__":
    main()
