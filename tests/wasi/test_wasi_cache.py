"""ModuleCache: hits, misses, corrupt and mismatched entries, concurrent writers, eviction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from oanix.errors import ModuleError
from oanix.wasi import ModuleCache, WasiRuntime
from oanix.wasi.cache import default_cache_dir, file_sha256
from oanix.wasi.runtime import ENGINE_FINGERPRINT

Wasm = Callable[[str], str]
ROOT = Path(__file__).resolve().parents[2]


def engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    return wasmtime.Engine(cfg)


def cache(directory: Path, **kw: object) -> ModuleCache:
    return ModuleCache(engine(), directory, fingerprint=ENGINE_FINGERPRINT,
                       **kw)  # type: ignore[arg-type]


def test_miss_then_memory_hit_then_disk_hit(tmp_path: Path, wasm: Wasm) -> None:
    c = cache(tmp_path)
    module, sha = c.get(wasm("hello"))
    assert isinstance(module, wasmtime.Module)
    assert sha == file_sha256(wasm("hello"))
    s = c.statistics()
    assert (s.misses, s.hits, s.corrupt, s.disk_enabled) == (1, 0, 0, True)
    assert c.entry_path(sha).is_file()
    assert c.get(wasm("hello"))[0] is module
    assert c.statistics().memory_hits == 1
    fresh = cache(tmp_path)  # another engine, same configuration: loads from disk
    fresh.get(wasm("hello"))
    s = fresh.statistics()
    assert (s.misses, s.disk_hits, s.memory_hits) == (0, 1, 0)
    with pytest.raises(AttributeError):
        s.misses = 3  # type: ignore[misc]


def test_bytes_and_path_share_entries(tmp_path: Path, wasm: Wasm) -> None:
    c = cache(tmp_path)
    _, sha1 = c.get(Path(wasm("exit")).read_bytes())
    _, sha2 = c.get(wasm("exit"))
    assert sha1 == sha2 and c.statistics().misses == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_config"])
def test_bad_entry_is_rebuilt(tmp_path: Path, wasm: Wasm, damage: str) -> None:
    c = cache(tmp_path)
    _, sha = c.get(wasm("hello"))
    entry = c.entry_path(sha)
    if damage == "garbage":
        entry.write_bytes(b"not an artifact")
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:1000])
    else:  # compiled by an engine without fuel: wasmtime refuses it
        entry.write_bytes(wasmtime.Module(wasmtime.Engine(),
                                          Path(wasm("hello")).read_bytes()).serialize())
    fresh = cache(tmp_path)
    fresh.get(wasm("hello"))
    s = fresh.statistics()
    assert (s.corrupt, s.misses, s.disk_hits) == (1, 1, 0)
    again = cache(tmp_path)
    again.get(wasm("hello"))
    assert (again.statistics().disk_hits, again.statistics().corrupt) == (1, 0)


def test_rebuilt_module_runs(tmp_path: Path, wasm: Wasm) -> None:
    with WasiRuntime(cache_dir=tmp_path) as rt:
        sha = rt.compile(wasm("hello")).sha256
    rt.cache.entry_path(sha).write_bytes(b"\x7fELF junk")
    with WasiRuntime(cache_dir=tmp_path) as rt2:
        assert rt2.run(wasm("hello")).stdout == b"hello, wasi\n"
        assert rt2.cache.statistics().corrupt == 1
    with WasiRuntime(cache_dir=tmp_path) as rt3:
        assert rt3.run(wasm("hello")).ok
        s = rt3.cache.statistics()
        assert (s.disk_hits, s.misses, s.corrupt) == (1, 0, 0)


def test_invalid_and_missing_modules_name_the_path(tmp_path: Path) -> None:
    c = cache(tmp_path)
    bad = tmp_path / "broken.wasm"
    bad.write_bytes(b"\x00asm\x01\x00\x00\x00\xff")
    with pytest.raises(ModuleError, match=r"broken\.wasm: not a valid wasm module"):
        c.get(bad)
    with pytest.raises(ModuleError, match=r"missing\.wasm"):
        c.get(tmp_path / "missing.wasm")
    with pytest.raises(ModuleError, match="<wasm bytes>"):
        c.get(b"\x00asm\x01\x00\x00\x00\xff")
    assert not list(tmp_path.glob("*.cwasm"))


def test_changed_file_is_rehashed(tmp_path: Path, wasm: Wasm) -> None:
    f = tmp_path / "m.wasm"
    f.write_bytes(Path(wasm("exit")).read_bytes())
    first = file_sha256(f)
    st = f.stat()
    other = bytearray(f.read_bytes())
    other[-1] ^= 1  # same size
    f.write_bytes(bytes(other))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime too
    assert file_sha256(f) != first


def test_concurrent_writers_threads(tmp_path: Path, wasm: Wasm) -> None:
    caches = [cache(tmp_path) for _ in range(4)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(c: ModuleCache) -> None:
        try:
            barrier.wait()
            c.get(wasm("fsops"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(list(tmp_path.glob("*.cwasm"))) == 1
    assert not list(tmp_path.glob(".tmp-*"))
    check = cache(tmp_path)
    check.get(wasm("fsops"))
    assert check.statistics().disk_hits == 1


def test_one_compilation_per_cache_for_concurrent_callers(tmp_path: Path, wasm: Wasm) -> None:
    c = cache(tmp_path)
    threads = [threading.Thread(target=c.get, args=(wasm("args"),)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = c.statistics()
    assert (s.misses, s.hits) == (1, 5)


_WRITER = """
import sys, json
from oanix.wasi import WasiRuntime
with WasiRuntime(cache_dir=sys.argv[1]) as rt:
    res = rt.run(sys.argv[2])
    print(json.dumps([res.stdout.decode(), rt.cache.statistics().corrupt]))
"""


def test_concurrent_writers_processes(tmp_path: Path, wasm: Wasm) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), wasm("hello")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
             for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert json.loads(out) == ["hello, wasi\n", 0]
    assert len(list(tmp_path.glob("*.cwasm"))) == 1


def test_eviction_by_size(tmp_path: Path, wasm: Wasm) -> None:
    c = cache(tmp_path)
    _, sha1 = c.get(wasm("hello"))
    size = c.entry_path(sha1).stat().st_size
    os.utime(c.entry_path(sha1), (1_000_000, 1_000_000))  # least recently used
    small = cache(tmp_path, max_bytes=int(size * 1.5))
    _, sha2 = small.get(wasm("exit"))
    assert not c.entry_path(sha1).exists() and c.entry_path(sha2).exists()
    assert small.statistics().evictions == 1


def test_disk_hit_touches_entry(tmp_path: Path, wasm: Wasm) -> None:
    c = cache(tmp_path)
    _, sha = c.get(wasm("hello"))
    os.utime(c.entry_path(sha), (1_000_000, 1_000_000))
    cache(tmp_path).get(wasm("hello"))
    assert c.entry_path(sha).stat().st_mtime > 1_000_000


def test_memory_only_and_unsafe_directory(tmp_path: Path, wasm: Wasm) -> None:
    c = cache(tmp_path / "m", disk=False)
    c.get(wasm("hello"))
    assert not c.statistics().disk_enabled and not (tmp_path / "m").exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    c = cache(shared)
    c.get(wasm("hello"))
    assert not c.statistics().disk_enabled and not list(shared.iterdir())


def test_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OANIX_CACHE_DIR", str(tmp_path / "o"))
    assert default_cache_dir() == tmp_path / "o"
    monkeypatch.delenv("OANIX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "oanix" / "modules"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "oanix" / "modules"
