"""oanix's poll_oneoff (``oanix.wasi.deadline``) answers as wasmtime's does.

Each case is a WAT guest that calls ``poll_oneoff`` once with subscriptions that are
ready at once (so wasmtime's own does not wait either) and prints the errno, the number
of events and the events. The same module runs under plain wasmtime-py
and under a WasiRuntime; the outputs must match.
"""

from __future__ import annotations

import struct
import tempfile
import time
from pathlib import Path

import pytest
import wasmtime

from oanix.wasi import RunConfig, WasiRuntime

CLOCK, FD_READ, FD_WRITE = 0, 1, 2
REALTIME, MONOTONIC = 0, 1
ABSTIME = 1


def clock(userdata: int, clock_id: int, timeout_ns: int, flags: int = 0) -> bytes:
    return struct.pack("<QB7xI4xQQH6x", userdata, CLOCK, clock_id, timeout_ns, 0, flags)


def fd(userdata: int, kind: int, fd_number: int) -> bytes:
    return struct.pack("<QB7xI28x", userdata, kind, fd_number)


def guest(subs: bytes, count: int | None = None, subs_at: int = 1024,
          events_at: int = 4096) -> str:
    """A module that polls ``subs`` (at ``subs_at``) and prints errno and nevents (u32
    each) and the events."""
    n = len(subs) // 48 if count is None else count
    data = "".join(f"\\{b:02x}" for b in subs)
    return f"""
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{data}")
  (func (export "_start") (local $n i32)
    (i32.store (i32.const 0) (call $poll (i32.const {subs_at}) (i32.const {events_at})
                                         (i32.const {n}) (i32.const 4)))
    (if (i32.load (i32.const 0)) (then (i32.store (i32.const 4) (i32.const 0))))
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (i32.const 8))
    (i32.store (i32.const 24) (i32.const {events_at}))
    (i32.store (i32.const 28) (i32.mul (i32.load (i32.const 4)) (i32.const 32)))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 2) (i32.const 32)))))
"""


def plain_run(engine: wasmtime.Engine, wat: str, tmp: Path) -> bytes:
    """The module under wasmtime-py's own WASI, as oanix's engine has it configured."""
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    store.set_fuel(10**9)
    store.set_epoch_deadline(1 << 62)
    wasi = wasmtime.WasiConfig()
    out = tmp / "out"
    wasi.stdout_file = str(out)
    store.set_wasi(wasi)
    start = linker.instantiate(store, wasmtime.Module(engine, wat)).exports(store)["_start"]
    assert isinstance(start, wasmtime.Func)
    start(store)
    return out.read_bytes()


def errno_and_count(stdout: bytes) -> tuple[int, int]:
    return struct.unpack_from("<II", stdout)


def past_realtime() -> int:
    return time.time_ns() - 10**9


CASES = {
    "no subscriptions": (b"", 0),
    "one short clock": (clock(7, MONOTONIC, 1_000_000), None),
    "only the due clock is reported": (clock(1, MONOTONIC, 1_000_000)
                                       + clock(2, MONOTONIC, 60 * 10**9), None),
    "an absolute realtime clock in the past": (clock(3, REALTIME, 0, ABSTIME), None),
    "an absolute monotonic clock at zero": (clock(4, MONOTONIC, 0, ABSTIME), None),
    "an unknown clock": (clock(5, 9, 1000), None),
    "stdout is writable": (fd(6, FD_WRITE, 1) + clock(9, MONOTONIC, 60 * 10**9), None),
    "stdin is readable": (fd(8, FD_READ, 0) + clock(9, MONOTONIC, 60 * 10**9), None),
    "a bad descriptor": (fd(10, FD_READ, 77) + clock(9, MONOTONIC, 60 * 10**9), None),
    "an unknown subscription kind": (struct.pack("<QB39x", 11, 9), None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_poll_oneoff_answers_as_wasmtime_does(runtime: WasiRuntime, name: str,
                                              tmp_path: Path) -> None:
    subs, count = CASES[name]
    wat = guest(subs, count)
    expected = plain_run(runtime.engine, wat, tmp_path)
    res = runtime.run(wasmtime.wat2wasm(wat), config=RunConfig(timeout=30))
    assert res.ok, res.trap
    assert res.stdout == expected, (errno_and_count(res.stdout), errno_and_count(expected))


def test_out_of_bounds_subscriptions_are_refused(runtime: WasiRuntime) -> None:
    """A pointer past the guest's memory is EFAULT (wasmtime's own traps instead); the
    host never reads or writes outside the guest's memory."""
    res = runtime.run(wasmtime.wat2wasm(guest(clock(1, MONOTONIC, 0), 1,
                                              subs_at=2 * 65536 - 8)),
                      config=RunConfig(timeout=30))
    assert res.ok, res.trap
    assert errno_and_count(res.stdout) == (21, 0)


def test_many_fd_subscriptions(runtime: WasiRuntime) -> None:
    """More subscriptions than the helper's first memory page holds."""
    subs = b"".join(fd(i, FD_WRITE, 1) for i in range(1000))
    wat = guest(subs, events_at=65536)
    with tempfile.TemporaryDirectory() as tmp:
        expected = plain_run(runtime.engine, wat, Path(tmp))
    res = runtime.run(wasmtime.wat2wasm(wat), config=RunConfig(timeout=30))
    assert res.ok, res.trap
    assert res.stdout == expected
    assert errno_and_count(expected) == (0, 1000)
