"""Guest output: memory files, the cap and its trimming, the callback fallback."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import wasmtime

from oanix.wasi import RunConfig, WasiRuntime
from oanix.wasi.output import OutputPool

Wasm = Callable[[str], str]

needs_memory_files = pytest.mark.skipif(
    not OutputPool()._use_files, reason="memory files (memfd + /proc/self/fd) unavailable")


@needs_memory_files
def test_trim_keeps_the_first_bytes_and_frees_the_rest() -> None:
    """What the clock does to a capped file while a guest floods it, step by step: the
    writer keeps its own offset, as wasmtime's stdout does."""
    pool = OutputPool()
    out = pool.attach(wasmtime.WasiConfig(), limit=1000)
    assert out.trimmed and out.files is not None
    guest = os.open(out.files[0].path, os.O_WRONLY)
    try:
        os.write(guest, b"a" * 1000 + b"b" * (4 << 20))
        pool.trim()
        st = os.fstat(out.files[0].fd)
        assert st.st_size == 1000 and st.st_blocks * 512 <= 64 << 10
        os.write(guest, b"c" * (4 << 20))  # lands past a hole: costs no memory after a trim
        pool.trim()
        assert os.fstat(out.files[0].fd).st_blocks * 512 <= 64 << 10
        os.write(guest, b"d" * 10)
    finally:
        os.close(guest)
    got = pool.finish(out)
    assert got.stdout == b"a" * 1000 and got.stdout_truncated
    assert got.stderr == b"" and not got.stderr_truncated
    pool.close()


@needs_memory_files
def test_a_capped_flood_never_holds_much_more_than_the_cap(wasi_cache_dir: Path,
                                                         wasm: Wasm) -> None:
    total = 256 << 20
    with WasiRuntime(cache_dir=wasi_cache_dir) as rt:
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                with rt._outputs._lock:
                    files = [f for o in rt._outputs._trimmed.values() for f in o.files or ()]
                for f in files:
                    with contextlib.suppress(OSError):  # finished meanwhile
                        peak = max(peak, os.fstat(f.fd).st_blocks * 512)
                done.wait(0.001)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            res = rt.run(wasm("flood"), config=RunConfig(argv=[str(total)], max_output=1000))
        finally:
            done.set()
            watcher.join()
    assert res.ok and res.stdout == b"x" * 1000 and res.stdout_truncated
    assert res.stderr == b"done\n"
    assert 0 < peak < total // 4  # trimmed as it went, not held until the end


@needs_memory_files
def test_large_output_is_read_whole_and_not_kept(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("flood"), config=RunConfig(argv=[str(3 << 20)]))
    assert res.stdout == b"x" * (3 << 20) and not res.stdout_truncated
    free = runtime._outputs._free
    assert free and all(os.fstat(f.fd).st_size <= 1 << 20 for pair in free for f in pair)
    # The next run over the same files sees only its own output.
    assert runtime.run(wasm("hello")).stdout == b"hello, wasi\n"


@pytest.fixture
def callback_runtime(wasi_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> Iterator[WasiRuntime]:
    """A runtime that uses wasmtime's output callbacks, as where memory files do not
    work (a platform we cannot be on here: the class-wide probe result is patched)."""
    monkeypatch.setattr(OutputPool, "_files_work", False)
    with WasiRuntime(cache_dir=wasi_cache_dir) as rt:
        yield rt


def test_callback_fallback(callback_runtime: WasiRuntime, wasm: Wasm) -> None:
    rt = callback_runtime
    assert not rt._outputs._use_files
    assert rt.run(wasm("hello")).stdout == b"hello, wasi\n"
    res = rt.run(wasm("flood"), config=RunConfig(argv=["100000"], max_output=10))
    assert res.stdout == b"x" * 10 and res.stdout_truncated and res.stderr == b"done\n"
    assert not rt._outputs._free  # no memory file was made
