"""WasiRuntime: exits, output, argv/env/stdin, limits, parallel runs, bad modules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from oanix import InvalidArgument, MemFs, Namespace, NotFound
from oanix.errors import ModuleError, WasiError
from oanix.wasi import NamespacePath, RunConfig, RunResult, WasiRuntime

Wasm = Callable[[str], str]

HI_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi from wat\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 12))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 7))))
"""


def assert_usable(rt: WasiRuntime, wasm: Wasm) -> None:
    res = rt.run(wasm("hello"))
    assert res.ok and res.stdout == b"hello, wasi\n"


# -- exits and output --------------------------------------------------------------------


def test_hello(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("hello"))
    assert isinstance(res, RunResult)
    assert (res.exit_code, res.trap, res.stdout, res.stderr) == (0, None, b"hello, wasi\n", b"")
    assert res.ok and res.stdout_text == "hello, wasi\n" and res.stderr_text == ""
    assert not res.stdout_truncated and not res.stderr_truncated
    assert res.fuel_consumed > 0 and res.duration > 0
    assert not res.changes


@pytest.mark.parametrize("code", [0, 1, 3, 42, 125])
def test_exit_codes(runtime: WasiRuntime, wasm: Wasm, code: int) -> None:
    res = runtime.run(wasm("exit"), config=RunConfig(argv=[str(code)]))
    assert res.exit_code == code and res.trap is None
    assert res.stderr == b"bye\n"
    assert res.ok == (code == 0)


def test_exit_status_outside_wasi_range_is_a_trap(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("exit"), config=RunConfig(argv=["126"]))
    assert res.exit_code is None
    assert res.trap is not None and res.trap.kind == "wasm"
    assert "exit status" in res.trap.message
    assert_usable(runtime, wasm)


def test_wat_module_and_exit_trap(runtime: WasiRuntime) -> None:
    res = runtime.run(HI_WAT.encode())
    assert (res.exit_code, res.stdout) == (7, b"hi from wat\n")


def test_unreachable_trap(runtime: WasiRuntime, wasm: Wasm) -> None:
    wat = b'(module (memory (export "memory") 1) (func (export "_start") unreachable))'
    res = runtime.run(wat)
    assert res.exit_code is None and res.trap is not None
    assert (res.trap.kind, res.trap.code) == ("wasm", "UNREACHABLE")
    assert "unreachable" in res.trap.message and "\n" not in res.trap.message
    assert_usable(runtime, wasm)


# -- argv, env, stdin --------------------------------------------------------------------


def test_argv_and_env(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("args"), config=RunConfig(argv=["a b", "", "ü"],
                                                     env={"X": "1", "EMPTY": "", "U": "é"}))
    assert res.stdout_text.splitlines() == [
        "argv[0]=args.wasm", "argv[1]=a b", "argv[2]=", "argv[3]=ü",
        "env X=1", "env EMPTY=", "env U=é"]


def test_argv0_override_and_no_host_env(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("args"), config=RunConfig(argv0="prog"))
    assert res.stdout == b"argv[0]=prog\n"  # nothing inherited from the host


def test_cwd_is_passed_as_pwd(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("args"), config=RunConfig(cwd="/data/x/../y"))
    assert res.stdout_text.splitlines()[1:] == ["env PWD=/data/y"]


@pytest.mark.parametrize("stdin, expected", [
    (b"\x00binary\xff\n", b"\x00binary\xff\n"),
    ("text ü", "text ü".encode()),
    (None, b""),
    (b"", b""),
    (bytes(range(256)) * 1000, bytes(range(256)) * 1000),
])
def test_stdin(runtime: WasiRuntime, wasm: Wasm, stdin: bytes | str | None,
               expected: bytes) -> None:
    res = runtime.run(wasm("cat"), config=RunConfig(stdin=stdin))
    assert res.ok and res.stdout == expected


def test_stdin_from_namespace_path(runtime: WasiRuntime, wasm: Wasm) -> None:
    ns = Namespace()
    fs = MemFs()
    ns.mount("/in", fs)
    fs.write_bytes("/data.bin", b"from the namespace\n")
    res = runtime.run(wasm("cat"), ns, RunConfig(stdin=NamespacePath("/in/data.bin")))
    assert res.stdout == b"from the namespace\n"
    with pytest.raises(NotFound):
        runtime.run(wasm("cat"), ns, RunConfig(stdin=NamespacePath("/in/missing")))
    with pytest.raises(InvalidArgument):
        runtime.run(wasm("cat"), None, RunConfig(stdin=NamespacePath("/in/data.bin")))


# -- limits --------------------------------------------------------------------------------


def test_timeout(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("loop"), config=RunConfig(timeout=0.1))
    assert res.exit_code is None and res.trap is not None
    assert (res.trap.kind, res.trap.code) == ("timeout", "INTERRUPT")
    assert_usable(runtime, wasm)


def test_timeout_stops_a_guest_that_sleeps(runtime: WasiRuntime, wasm: Wasm) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs())
    res = runtime.run(wasm("poll"), ns, RunConfig(
        argv=["/tmp/req", "ping", "/tmp/resp", "600000"], timeout=0.1))
    assert res.trap is not None and res.trap.kind == "timeout"
    assert ns.read_bytes("/tmp/req") == b"ping"  # its write before the trap is kept


def _ticking(rt: WasiRuntime) -> bool:
    return rt._clock._thread is not None


def _wait_idle(rt: WasiRuntime) -> None:
    deadline = time.monotonic() + 10
    while _ticking(rt) and time.monotonic() < deadline:
        time.sleep(0.005)


def test_clock_runs_only_for_timed_or_capped_runs(wasi_cache_dir: Path, wasm: Wasm) -> None:
    with WasiRuntime(cache_dir=wasi_cache_dir) as rt:
        assert rt.run(wasm("hello")).ok
        assert not _ticking(rt)  # untimed, uncapped runs start no thread
        assert rt.run(wasm("hello"), config=RunConfig(timeout=5)).ok
        assert _ticking(rt)  # it lingers a while for the next run
        _wait_idle(rt)
        assert not _ticking(rt)  # idle again: the thread has stopped
        res = rt.run(wasm("loop"), config=RunConfig(timeout=0.05))
        assert res.trap is not None and res.trap.kind == "timeout"
        _wait_idle(rt)
        assert rt.run(wasm("hello"), config=RunConfig(max_output=4)).stdout == b"hell"
        assert _ticking(rt) == rt._outputs._use_files  # memory files are trimmed by it
    assert not _ticking(rt)


def test_fuel(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("loop"), config=RunConfig(fuel=100_000))
    assert res.trap is not None
    assert (res.trap.kind, res.trap.code) == ("fuel", "OUT_OF_FUEL")
    assert res.fuel_consumed == 100_000
    assert_usable(runtime, wasm)


def test_fuel_enough(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("hello"), config=RunConfig(fuel=100_000))
    assert res.ok and 0 < res.fuel_consumed < 100_000


def test_memory_limit_refused_grow(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("memhog"), config=RunConfig(memory_limit=16 << 20))
    assert res.exit_code == 2  # the guest saw malloc fail and exited on its own
    assert res.trap is not None and res.trap.kind == "memory"
    assert res.stderr == b"malloc failed after 7 MiB\n"  # zig's malloc: 2 MiB per 1 MiB
    assert_usable(runtime, wasm)


def test_memory_limit_below_initial_memory(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("hello"), config=RunConfig(memory_limit=1 << 20))
    assert res.exit_code is None and res.trap is not None and res.trap.kind == "memory"
    assert_usable(runtime, wasm)


def test_memory_limit_not_reached(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("memhog"), config=RunConfig(argv=["4"], memory_limit=64 << 20))
    assert res.ok and res.stdout == b"allocated 4 MiB\n"


def test_guest_failure_far_from_the_limit_is_not_memory(runtime: WasiRuntime,
                                                        wasm: Wasm) -> None:
    res = runtime.run(wasm("exit"), config=RunConfig(argv=["3"], memory_limit=64 << 20))
    assert res.exit_code == 3 and res.trap is None


def test_output_cap(runtime: WasiRuntime, wasm: Wasm) -> None:
    res = runtime.run(wasm("flood"), config=RunConfig(argv=["1000000"], max_output=1000))
    assert res.stdout == b"x" * 1000 and res.stdout_truncated
    assert res.stderr == b"done\n" and not res.stderr_truncated
    assert res.ok
    res = runtime.run(wasm("flood"), config=RunConfig(argv=["1000000"], max_output=0))
    assert res.stdout == b"" and res.stderr == b"" and res.stdout_truncated
    res = runtime.run(wasm("flood"), config=RunConfig(argv=["300000"]))
    assert res.stdout == b"x" * 300_000 and not res.stdout_truncated


def test_limits_together_and_reuse_after_each(runtime: WasiRuntime, wasm: Wasm) -> None:
    cfg = RunConfig(fuel=10**9, timeout=30, memory_limit=64 << 20, max_output=10)
    for name in ("loop", "memhog", "hello", "loop"):
        res = runtime.run(wasm(name), config=cfg)
        assert res.trap is not None or res.ok
    res = runtime.run(wasm("hello"), config=cfg)
    assert res.ok and res.stdout == b"hello, was" and res.stdout_truncated


# -- bad input -----------------------------------------------------------------------------


def test_missing_module(runtime: WasiRuntime, tmp_path: Path, wasm: Wasm) -> None:
    with pytest.raises(ModuleError, match=r"nope\.wasm"):
        runtime.run(tmp_path / "nope.wasm")
    assert_usable(runtime, wasm)


def test_invalid_module(runtime: WasiRuntime, tmp_path: Path, wasm: Wasm) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\x00asm\x01\x00\x00\x00garbage")
    with pytest.raises(ModuleError, match=r"bad\.wasm"):
        runtime.run(bad)
    with pytest.raises(ModuleError, match="not a valid wasm module"):
        runtime.run(b"not wasm at all")
    assert_usable(runtime, wasm)


def test_module_without_start(runtime: WasiRuntime, wasm: Wasm) -> None:
    with pytest.raises(ModuleError, match="_start"):
        runtime.run(b'(module (func (export "main")))')
    assert_usable(runtime, wasm)


def test_module_with_unknown_import(runtime: WasiRuntime, wasm: Wasm) -> None:
    with pytest.raises(ModuleError, match="env::f"):
        runtime.run(b'(module (import "env" "f" (func)) (func (export "_start")))')
    assert_usable(runtime, wasm)


def test_bad_configs() -> None:
    for kwargs in ({"fuel": 0}, {"fuel": -1}, {"fuel": 1.5}, {"timeout": 0},
                   {"timeout": float("inf")}, {"memory_limit": True}, {"max_output": -1},
                   {"argv": "abc"}, {"argv": ["a\x00"]}, {"env": {"A=B": "x"}},
                   {"env": {"A": 1}}, {"stdin": 12}, {"preopens": ["/x"]},
                   {"preopens": {"/a": "/g", "/b": "/g"}}):
        with pytest.raises(InvalidArgument):
            RunConfig(**kwargs)


def test_preopens_need_a_namespace(runtime: WasiRuntime, wasm: Wasm) -> None:
    with pytest.raises(InvalidArgument):
        runtime.run(wasm("hello"), None, RunConfig(preopens={"/x": "/x"}))


def test_compiled_handle(runtime: WasiRuntime, wasm: Wasm, wasi_cache_dir: Path) -> None:
    handle = runtime.compile(wasm("hello"))
    assert handle.name == "hello.wasm" and len(handle.sha256) == 64
    assert runtime.run(handle).stdout == b"hello, wasi\n"
    assert runtime.compile(handle) is handle
    with WasiRuntime(cache_dir=wasi_cache_dir) as other, pytest.raises(ModuleError):
        other.run(handle)


def test_closed_runtime(wasi_cache_dir: Path, wasm: Wasm) -> None:
    rt = WasiRuntime(cache_dir=wasi_cache_dir)
    ns = Namespace()
    ns.mount("/data", MemFs())
    assert rt.run(wasm("hello"), ns).ok
    rt.close()
    rt.close()
    assert rt.closed
    with pytest.raises(WasiError):
        rt.run(wasm("hello"), ns)


def test_one_engine_with_fuel_and_epochs(runtime: WasiRuntime) -> None:
    store = wasmtime.Store(runtime.engine)
    store.set_fuel(5)  # raises if the engine had no fuel
    assert store.get_fuel() == 5
    store.close()


# -- threads ---------------------------------------------------------------------------------


def _in_threads(n: int, fn: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            fn(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_parallel_runs_over_different_namespaces(runtime: WasiRuntime, wasm: Wasm) -> None:
    namespaces = []
    for _ in range(4):
        ns = Namespace()
        ns.mount("/data", MemFs())
        namespaces.append(ns)

    def work(i: int) -> None:
        ns = namespaces[i]
        for j in range(5):
            res = runtime.run(wasm("fsops"), ns, RunConfig(
                argv=["append", "/data/log", f"{i}:{j}\n"], timeout=60))
            assert res.ok, res.stderr
            timed = runtime.run(wasm("loop"), config=RunConfig(fuel=50_000 + i))
            assert timed.trap is not None and timed.trap.kind == "fuel"

    _in_threads(4, work)
    for i, ns in enumerate(namespaces):
        assert ns.read_text("/data/log") == "".join(f"{i}:{j}\n" for j in range(5))


def test_parallel_runs_over_one_namespace_are_serialised(runtime: WasiRuntime,
                                                          wasm: Wasm) -> None:
    ns = Namespace()
    ns.mount("/data", MemFs())

    def work(i: int) -> None:
        for j in range(5):
            res = runtime.run(wasm("fsops"), ns, RunConfig(
                argv=["append", "/data/log", f"{i}:{j}\n"]))
            assert res.ok, res.stderr

    _in_threads(4, work)
    lines = ns.read_text("/data/log").splitlines()
    assert sorted(lines) == sorted(f"{i}:{j}" for i in range(4) for j in range(5))


def test_parallel_timeouts(runtime: WasiRuntime, wasm: Wasm) -> None:
    results: list[RunResult] = []

    def work(i: int) -> None:
        results.append(runtime.run(wasm("loop"), config=RunConfig(timeout=0.05 * (i + 1))))

    _in_threads(3, work)
    assert [r.trap.kind for r in results if r.trap] == ["timeout"] * 3
    assert_usable(runtime, wasm)
