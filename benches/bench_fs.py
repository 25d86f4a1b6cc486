"""Small-file workload on oanix and on what a user would pick instead, in one run.

    python benches/bench_fs.py [--files 10000] [--dirs 100] [--repeat 3]

The workload: create N files of 1 KiB in D directories, read them all, stat them all,
list every directory, delete them all. It runs on a Namespace with a MemFs at /, a MemFs
alone, fsspec's MemoryFileSystem, a plain dict of dicts (the floor: no checks, no
locking), the OS on a temporary directory, and SqliteFs (a durable tree in one SQLite
file: one transaction per write) beside the OS, the durable alternative. Then the
per-operation cost through a namespace with 1 and with 100 mounts. Each figure is the
best of ``--repeat`` runs; compare the ratios, which come from one run, not absolute
times across runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from fsspec.implementations.memory import MemoryFileSystem

from oanix import MemFs, Namespace, SqliteFs

DATA = b"x" * 1024


def layout(n_files: int, n_dirs: int) -> tuple[list[str], list[str]]:
    dirs = [f"/d{i:03d}" for i in range(n_dirs)]
    files = [f"{dirs[i % n_dirs]}/f{i:05d}.txt" for i in range(n_files)]
    return dirs, files


def run_fileservice(fs: Any, dirs: list[str], files: list[str]) -> None:
    for d in dirs:
        fs.mkdir(d)
    for f in files:
        fs.write_bytes(f, DATA)
    for f in files:
        fs.read_bytes(f)
    for f in files:
        fs.stat(f)
    for d in dirs:
        fs.listdir(d)
    for f in files:
        fs.remove(f)
    for d in dirs:
        fs.rmdir(d)


def run_fsspec(dirs: list[str], files: list[str]) -> None:
    kwargs: dict[str, Any] = {"skip_instance_cache": True}
    try:
        fs = MemoryFileSystem(global_store=False, **kwargs)
    except TypeError:  # an fsspec without per-instance stores
        fs = MemoryFileSystem(**kwargs)
        fs.store.clear()
        fs.pseudo_dirs[:] = [""]
    for d in dirs:
        fs.mkdir(d)
    for f in files:
        fs.pipe_file(f, DATA)
    for f in files:
        fs.cat_file(f)
    for f in files:
        fs.info(f)
    for d in dirs:
        fs.ls(d, detail=False)
    for f in files:
        fs.rm_file(f)
    for d in dirs:
        fs.rmdir(d)


def run_dict(dirs: list[str], files: list[str]) -> None:
    root: dict[str, Any] = {}
    for d in dirs:
        root[d[1:]] = {}
    for f in files:
        _, d, name = f.split("/")
        root[d][name] = DATA
    for f in files:
        _, d, name = f.split("/")
        bytes(root[d][name])
    for f in files:
        _, d, name = f.split("/")
        len(root[d][name])
    for d in dirs:
        sorted(root[d[1:]])
    for f in files:
        _, d, name = f.split("/")
        del root[d][name]
    for d in dirs:
        del root[d[1:]]


def run_os(dirs: list[str], files: list[str]) -> None:
    base = tempfile.mkdtemp(prefix="oanix-bench-")
    try:
        for d in dirs:
            os.mkdir(base + d)
        for f in files:
            with open(base + f, "wb") as fh:
                fh.write(DATA)
        for f in files:
            with open(base + f, "rb") as fh:
                fh.read()
        for f in files:
            os.stat(base + f)
        for d in dirs:
            os.listdir(base + d)
        for f in files:
            os.unlink(base + f)
        for d in dirs:
            os.rmdir(base + d)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_sqlitefs(dirs: list[str], files: list[str]) -> None:
    base = tempfile.mkdtemp(prefix="oanix-bench-")
    try:
        with SqliteFs(os.path.join(base, "fs.db")) as fs:
            run_fileservice(fs, dirs, files)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def best(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def namespace_with(mounts: int) -> Namespace:
    ns = Namespace()
    work = MemFs()
    work.makedirs("/src/pkg")
    work.write_bytes("/src/pkg/mod.py", DATA)
    ns.mount("/workspace", work)
    for i in range(mounts - 1):
        ns.mount(f"/m{i:03d}/sub", MemFs())
    return ns


def per_op(ns: Namespace, n: int, repeat: int) -> float:
    path = "/workspace/src/pkg/mod.py"

    def ops() -> None:
        for _ in range(n):
            ns.stat(path)
            ns.read_bytes(path)

    return best(ops, repeat) / (2 * n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--dirs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    dirs, files = layout(args.files, args.dirs)
    n_ops = 3 * len(files) + len(files) + 2 * len(dirs) + len(dirs)

    def ns_memfs() -> None:
        ns = Namespace()
        ns.mount("/", MemFs())
        run_fileservice(ns, dirs, files)

    candidates: list[tuple[str, Callable[[], None]]] = [
        ("oanix Namespace+MemFs", ns_memfs),
        ("oanix MemFs alone", lambda: run_fileservice(MemFs(), dirs, files)),
        ("fsspec MemoryFileSystem", lambda: run_fsspec(dirs, files)),
        ("dict of dicts (floor)", lambda: run_dict(dirs, files)),
        ("OS, temp directory", lambda: run_os(dirs, files)),
        ("oanix SqliteFs", lambda: run_sqlitefs(dirs, files)),
    ]
    results = {name: best(fn, args.repeat) for name, fn in candidates}
    print(f"workload: {args.files} files of 1 KiB in {args.dirs} dirs: create, read, stat, "
          f"list, delete ({n_ops} ops), best of {args.repeat}")
    print(f"{'implementation':28} {'seconds':>9} {'ops/s':>12}")
    for name, secs in results.items():
        print(f"{name:28} {secs:9.3f} {n_ops / secs:12,.0f}")
    ours = results["oanix Namespace+MemFs"]
    vs_fsspec = results["fsspec MemoryFileSystem"] / ours
    vs_floor = ours / results["dict of dicts (floor)"]
    print(f"\nNamespace+MemFs vs fsspec memory: {vs_fsspec:.1f}x faster  (target >= 10x)")
    print(f"Namespace+MemFs vs dict floor:    {vs_floor:.1f}x slower  (target <= 10x)")
    vs_os = results["oanix SqliteFs"] / results["OS, temp directory"]
    print(f"SqliteFs vs OS temp directory:    {vs_os:.1f}x slower  (durable in one file)")

    one, hundred = per_op(namespace_with(1), 20_000, args.repeat), per_op(
        namespace_with(100), 20_000, args.repeat)
    print(f"\nper operation (stat + read) through a namespace: 1 mount {one * 1e6:.2f} us, "
          f"100 mounts {hundred * 1e6:.2f} us, ratio {hundred / one:.2f}x  (target <= 1.2x)")


if __name__ == "__main__":
    main()
