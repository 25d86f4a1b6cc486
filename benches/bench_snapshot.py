"""Snapshot and restore of an environment vs what a user would do instead, in one run.

    python benches/bench_snapshot.py [--files 10000] [--size 200] [--repeat 3]

The environment's workspace is a MemFs of ``--files`` small files (``--size`` bytes each,
100 per directory). Three ways to save them and get them back, each timed as save +
restore (best of ``--repeat``):

* oanix: ``env.snapshot(path)`` then ``OanixEnv.restore(path)`` (the whole environment:
  mount table, logs, task, checks on read);
* tar: the same files on the OS file system (tmpfs when /dev/shm exists), saved with
  ``tarfile`` and extracted again (only the files);
* pickle: ``pickle.dump`` of the files as a ``{path: bytes}`` dict (a MemFs holds a
  lock, so the object itself does not pickle), ``pickle.load`` and a new MemFs written
  from it (only the files, nothing checked: loading a pickle runs whatever code it
  names, so it is no format for a file from elsewhere).

Prints each time, the file sizes, and the ratios (oanix time / alternative time).
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from oanix import MemFs, OanixEnv


def _best(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _content(i: int, size: int) -> bytes:
    return (f"file {i}: ".encode() * (size // 8 + 1))[:size]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    base = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        ws = MemFs()
        for d in range((args.files + 99) // 100):
            ws.mkdir(f"/d{d}")
        for i in range(args.files):
            ws.write_bytes(f"/d{i // 100}/f{i}.txt", _content(i, args.size))
        env = OanixEnv(workspace=ws)
        snap = base / "env.oanix"

        def oanix_round() -> None:
            env.snapshot(snap)
            back = OanixEnv.restore(snap)
            assert back.workspace.read_bytes("/d0/f0.txt") == _content(0, args.size)
            back.close()

        tree = base / "tree"
        for d in range((args.files + 99) // 100):
            (tree / f"d{d}").mkdir(parents=True)
        for i in range(args.files):
            (tree / f"d{i // 100}" / f"f{i}.txt").write_bytes(_content(i, args.size))
        archive = base / "tree.tar"

        def tar_round() -> None:
            with tarfile.open(archive, "w") as tf:
                tf.add(tree, arcname=".")
            out = base / "untar"
            shutil.rmtree(out, ignore_errors=True)
            with tarfile.open(archive) as tf:
                tf.extractall(out, filter="data")
            assert (out / "d0" / "f0.txt").read_bytes() == _content(0, args.size)

        pickled = base / "memfs.pickle"

        def pickle_round() -> None:
            tree = {f"{d}/{n}": ws.read_bytes(f"{d}/{n}")
                    for d, _, names in ws.walk("/") for n in names}
            with open(pickled, "wb") as f:
                pickle.dump(tree, f, protocol=pickle.HIGHEST_PROTOCOL)
            with open(pickled, "rb") as f:
                loaded = pickle.load(f)
            back = MemFs()
            for path, data in loaded.items():
                back.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                back.write_bytes(path, data)
            assert back.read_bytes("/d0/f0.txt") == _content(0, args.size)

        ours = _best(oanix_round, args.repeat)
        tar = _best(tar_round, args.repeat)
        snap_only = _best(lambda: env.snapshot(snap), args.repeat)
        pick = _best(pickle_round, args.repeat)
        print(f"{args.files} files of {args.size} B, save + restore (best of {args.repeat})")
        print(f"  oanix snapshot+restore  {ours * 1000:8.1f} ms  file "
              f"{snap.stat().st_size / 1e6:6.2f} MB  (snapshot alone "
              f"{snap_only * 1000:.1f} ms)")
        print(f"  tarfile on the OS fs    {tar * 1000:8.1f} ms  file "
              f"{archive.stat().st_size / 1e6:6.2f} MB  ratio {ours / tar:.2f}x")
        print(f"  pickle of the files     {pick * 1000:8.1f} ms  file "
              f"{pickled.stat().st_size / 1e6:6.2f} MB  ratio {ours / pick:.2f}x")
        env.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
