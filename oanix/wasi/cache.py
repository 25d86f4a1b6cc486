"""ModuleCache: compiled wasm modules, kept in memory and precompiled on disk.

Compiling is the expensive step of running wasm (CPython for WASI takes ~7 s with fuel and
epochs on); loading a precompiled artifact with ``Module.deserialize_file`` takes about a
millisecond. An entry is keyed by the sha256 of the wasm bytes, the wasmtime version, the
machine and a fingerprint of the engine configuration, so an artifact is only ever loaded
into an engine that can run it; wasmtime checks the artifact again when loading it, and
an entry it refuses (corrupt, truncated, another configuration) is deleted and rebuilt.

Disk layout: ``<directory>/<wasm sha256>-<config hash>.cwasm``. Writes go to a temporary
file in the same directory renamed into place (``os.replace``), so another process never
sees a partial entry; concurrent writers of one entry each write a complete artifact and
the last rename wins. The directory is bounded by ``max_bytes``: after each write the least
recently used entries (by mtime; a disk hit touches its entry) are deleted.

Loading a precompiled artifact runs native code produced from it, so the directory must be
writable by this user only: it is created with mode 0700, and one owned by someone else or
writable by group or others is not used (the cache then works in memory only and
``statistics().disk_enabled`` is False). Every load (``ModuleCache.load``, also used for
the private engines of ``PythonSession``) checks again that the directory is still so and
that the entry is a regular file of this user writable by no one else, never a link.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Final

import attrs
import wasmtime

from ..errors import ModuleError

__all__ = ["DEFAULT_MAX_BYTES", "CacheStatistics", "ModuleCache", "default_cache_dir",
           "file_sha256", "wasmtime_message"]

DEFAULT_MAX_BYTES: Final = 1 << 30
_SUFFIX: Final = ".cwasm"
_TEMP_PREFIX: Final = ".tmp-"
_STALE_TEMP_SECONDS: Final = 3600.0
_RACY_NS: Final = 2_000_000_000  # a file changed this close to its hashing is re-hashed


def wasmtime_message(error: BaseException) -> str:
    """A wasmtime error or trap as one line: its headline and its cause, no backtrace."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if not lines:
        return type(error).__name__
    head = "" if lines[0].startswith("error while executing") else lines[0]
    cause = ""
    if "Caused by:" in lines:
        rest = lines[lines.index("Caused by:") + 1:]
        cause = "; ".join(ln.removeprefix("wasm trap: ") for ln in rest)
    if head and cause:
        return f"{head}: {cause}"
    return head or cause or lines[-1]


def default_cache_dir() -> Path:
    """``$OANIX_CACHE_DIR``, else ``$XDG_CACHE_HOME/oanix/modules``, else
    ``~/.cache/oanix/modules``."""
    env = os.environ.get("OANIX_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "oanix" / "modules"


_digest_lock = threading.Lock()
# (dev, ino, size, mtime_ns) -> (sha256 hex, time_ns when hashed)
_digests: dict[tuple[int, int, int, int], tuple[str, int]] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of the file at ``path``, remembered per (device, inode, size,
    mtime) for this process.

    A remembered digest is trusted only when the file's mtime was safely older than the
    moment it was hashed (the racy-git rule), so a same-size rewrite within one clock
    tick is still seen. Raises OSError.
    """
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _digest_lock:
        known = _digests.get(key)
    if known is not None and st.st_mtime_ns + _RACY_NS < known[1]:
        return known[0]
    hashed_at = time.time_ns()
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with _digest_lock:
        if len(_digests) > 4096:
            _digests.clear()
        _digests[key] = (digest, hashed_at)
    return digest


@attrs.frozen
class CacheStatistics:
    """Counters of a ModuleCache since it was made.

    ``memory_hits`` and ``disk_hits`` found a compiled module; ``misses`` compiled one;
    ``corrupt`` counts disk entries wasmtime refused (deleted, then rebuilt);
    ``evictions`` disk entries deleted to stay under ``max_bytes``; ``write_errors`` disk
    writes that failed (the module still works, from memory).
    """

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    corrupt: int = 0
    evictions: int = 0
    write_errors: int = 0
    disk_enabled: bool = True

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime-py version (part of every cache key).

    Read from the one ``wasmtime-*.dist-info`` beside the package when there is one:
    importing ``importlib.metadata`` would cost a tenth of ``oanix-run``'s start. A wrong
    answer only costs a rebuild: wasmtime refuses an artifact of another version.
    """
    site = os.path.dirname(os.path.dirname(os.path.abspath(wasmtime.__file__)))
    with contextlib.suppress(OSError):
        found = [e.name[len("wasmtime-"):-len(".dist-info")] for e in os.scandir(site)
                 if e.name.startswith("wasmtime-") and e.name.endswith(".dist-info")]
        if len(found) == 1:
            return found[0]
    try:
        return metadata.version("wasmtime")
    except metadata.PackageNotFoundError:  # pragma: no cover - vendored wasmtime
        return getattr(wasmtime, "__version__", "unknown")


class ModuleCache:
    """Compiled modules for one engine, in memory (LRU, ``memory_entries``) and on disk.

    ``fingerprint`` must describe the engine's configuration (for ``WasiRuntime`` it is
    ``"consume_fuel=1;epoch_interruption=1"``); ``directory=None`` uses
    ``default_cache_dir()``; ``disk=False`` keeps the cache in memory only.

    Locking: one lock guards the in-memory table and the counters; compiling or loading
    one entry holds a per-entry lock, so threads asking for the same module wait for one
    compilation while other modules load in parallel.
    """

    def __init__(self, engine: wasmtime.Engine, directory: str | os.PathLike[str] | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, *, fingerprint: str,
                 memory_entries: int = 64, disk: bool = True) -> None:
        self._engine = engine
        self.max_bytes = max_bytes
        self._memory_entries = memory_entries
        self._lock = threading.Lock()
        self._entry_locks: dict[str, threading.Lock] = {}
        self._memory: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._stats = CacheStatistics()
        ident = f"wasmtime={wasmtime_version()};machine={platform.machine()};{fingerprint}"
        self._config_hash = hashlib.sha256(ident.encode()).hexdigest()[:16]
        self._directory = Path(directory) if directory is not None else default_cache_dir()
        self._disk = disk and self._prepare_directory()
        if not self._disk:
            self._count(disk_enabled=False)

    @property
    def directory(self) -> Path:
        """Where precompiled modules are stored (even when the disk cache is off)."""
        return self._directory

    def statistics(self) -> CacheStatistics:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats

    def entry_path(self, sha256: str) -> Path:
        """The disk entry for wasm bytes whose sha256 (hex) is ``sha256``."""
        return self._directory / f"{sha256}-{self._config_hash}{_SUFFIX}"

    def clear_memory(self) -> None:
        """Forget the in-memory modules (disk entries stay)."""
        with self._lock:
            self._memory.clear()

    # -- lookups ---------------------------------------------------------------------------

    def get(self, source: str | os.PathLike[str] | bytes | bytearray,
            name: str | None = None) -> tuple[wasmtime.Module, str]:
        """The compiled module for a wasm file path or wasm bytes, and its sha256.

        Raises:
            ModuleError: the file is missing or unreadable, or the bytes are not a valid
                module for this engine (the message names ``name`` or the path).
        """
        data: bytes | None
        if isinstance(source, bytes | bytearray):
            data = bytes(source)
            label = name or "<wasm bytes>"
            sha = hashlib.sha256(data).hexdigest()
        else:
            label = name or os.fspath(source)
            try:
                sha = file_sha256(source)
            except OSError as e:
                raise ModuleError(f"{os.fspath(source)}: cannot read module: "
                                  f"{e.strerror or e}") from None
            data = None
        key = f"{sha}-{self._config_hash}"
        with self._lock:
            module = self._memory.get(key)
            if module is not None:
                self._memory.move_to_end(key)
                self._bump("memory_hits")
                return module, sha
            entry_lock = self._entry_locks.setdefault(key, threading.Lock())
        with entry_lock:
            with self._lock:
                module = self._memory.get(key)
                if module is not None:
                    self._bump("memory_hits")
                    return module, sha
            module = self._load(sha)
            if module is None:
                if data is None:
                    data = self._read(source, sha)  # type: ignore[arg-type]
                module = self._compile(data, label)
                with self._lock:
                    self._bump("misses")
                self._store(sha, module)
            with self._lock:
                self._memory[key] = module
                while len(self._memory) > self._memory_entries:
                    self._memory.popitem(last=False)
                self._entry_locks.pop(key, None)
        return module, sha

    def by_digest(self, sha256: str) -> wasmtime.Module | None:
        """The module of wasm bytes whose sha256 is ``sha256``, from memory or from disk
        (the cache as a content-addressed store), or None when neither has it."""
        key = f"{sha256}-{self._config_hash}"
        with self._lock:
            module = self._memory.get(key)
            if module is not None:
                self._memory.move_to_end(key)
                return module
        return self._load(sha256)

    def _read(self, source: str | os.PathLike[str], sha: str) -> bytes:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ModuleError(f"{os.fspath(source)}: cannot read module: "
                              f"{e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise ModuleError(f"{os.fspath(source)}: module changed while being loaded")
        return data

    def _compile(self, data: bytes, label: str) -> wasmtime.Module:
        try:
            return wasmtime.Module(self._engine, data)
        except wasmtime.WasmtimeError as e:
            why = wasmtime_message(e)
            if not data.startswith(b"\0asm"):
                why = f"no wasm header, and not WAT text either ({why})"
            raise ModuleError(f"{label}: not a valid wasm module: {why}") from None

    # -- disk --------------------------------------------------------------------------------

    def _prepare_directory(self) -> bool:
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return False
        return self._trusted(self._directory)

    @classmethod
    def _trusted(cls, directory: Path) -> bool:
        """Whether ``directory`` is a real directory only this user can write in."""
        try:
            st = os.stat(directory)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode) and cls._owned(st)

    @staticmethod
    def _owned(st: os.stat_result) -> bool:
        """Owned by this user (where there are users) and writable by no one else."""
        getuid = getattr(os, "getuid", None)
        if getuid is not None and st.st_uid != getuid():
            return False
        return not st.st_mode & 0o022

    def _load(self, sha: str) -> wasmtime.Module | None:
        module = self.load(self._engine, sha)
        if module is not None:
            with self._lock:
                self._bump("disk_hits")
        return module

    def load(self, engine: wasmtime.Engine, sha256: str) -> wasmtime.Module | None:
        """The disk entry for wasm bytes of sha256 ``sha256`` loaded into ``engine`` (of
        this cache's configuration), or None: the disk cache is off, the directory or the
        entry is no longer one this cache trusts, there is no entry, or wasmtime refused
        it (a refused entry is deleted and counted ``corrupt``).

        The one way a precompiled artifact is loaded, for this cache's engine and for any
        other: an artifact is native code, so it is loaded only from a directory still
        owned by this user and writable by no one else, and only when the entry itself is
        a regular file (never a link) with the same owner and mode rules; the checks and
        the load name one open descriptor, so nothing can be swapped in between.
        """
        if not self._disk or not self._trusted(self._directory):
            return None
        path = self.entry_path(sha256)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None  # missing, or a link (refused by O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not self._owned(st):
                return None
            by_fd = f"/proc/self/fd/{fd}"
            try:
                module = wasmtime.Module.deserialize_file(
                    engine, by_fd if os.path.exists(by_fd) else str(path))
            except wasmtime.WasmtimeError:
                with self._lock:
                    self._bump("corrupt")
                with contextlib.suppress(OSError):
                    if os.stat(path, follow_symlinks=False).st_ino == st.st_ino:
                        path.unlink()
                return None
            with contextlib.suppress(OSError):
                os.utime(fd)  # a hit: the entry is recently used
            return module
        finally:
            os.close(fd)

    def _store(self, sha: str, module: wasmtime.Module) -> None:
        if not self._disk:
            return
        path = self.entry_path(sha)
        tmp = None
        try:
            blob = module.serialize()
            fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_SUFFIX,
                                       dir=self._directory)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
            tmp = None
        except (OSError, wasmtime.WasmtimeError):
            with self._lock:
                self._bump("write_errors")
            return
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        entries: list[tuple[float, int, Path]] = []
        now = time.time()
        try:
            with os.scandir(self._directory) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.name.startswith(_TEMP_PREFIX):
                        if now - st.st_mtime > _STALE_TEMP_SECONDS:
                            with contextlib.suppress(OSError):
                                os.unlink(e.path)
                        continue
                    if e.name.endswith(_SUFFIX) and e.is_file(follow_symlinks=False):
                        entries.append((st.st_mtime, st.st_size, Path(e.path)))
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        for _mtime, size, path in sorted(entries, key=lambda t: t[0]):
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            with self._lock:
                self._bump("evictions")

    # -- counters (call with self._lock held) ------------------------------------------------

    def _bump(self, field: str) -> None:
        self._stats = attrs.evolve(self._stats, **{field: getattr(self._stats, field) + 1})

    def _count(self, **values: object) -> None:
        with self._lock:
            self._stats = attrs.evolve(self._stats, **values)  # type: ignore[arg-type]
