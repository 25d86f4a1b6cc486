"""KvFs: a key-value store as files, kept in SQLite. Mounted at ``/cap/kv``::

    <key>          a key's value: cat it, write it (the new value replaces the old one
                   when the file is closed, in one transaction), rm it to delete the key
    .cas           write-only: each open-write-close is ONE compare-and-set request (JSON)
    .cas.result    read-only: the outcome of this KvFs's latest request (JSON)

Listing the directory lists the keys (sorted) and the two control files, which ``ls``
hides as dot files. Keys are flat names: no ``/``, no NUL, no leading ``.`` (the control
files' names), at most ``MAX_KEY_BYTES`` bytes of UTF-8; a write naming anything else
fails with ``InvalidPath`` (``NameTooLong`` for length) naming the path, and ``mkdir``
with ``PermissionDenied``. A value is at most ``max_value_bytes`` (``NoSpace`` past it;
nothing is stored).

Atomic: a reader never sees half a value. A key written through a file appears or changes
only when the file is closed; a handle reads the value as it was when it was opened; two
writers of one key: the last to close wins. Use ``.cas`` to update without losing a
concurrent write::

    {"key": "counter",
     "expect": "41",        required: the value the key must hold now (UTF-8 text), or
                            null: the key must not exist; "expect_base64" for bytes
     "value": "42"}         required: the new value (text), or null to delete the key;
                            "value_base64" for bytes

The swap happens when the file is closed, in one transaction. ``.cas.result`` then holds
``{"id": n, "key": "counter", "swapped": true|false, "value": ...}``, where ``value`` (or
``value_base64``, or null when the key does not exist) is the key's value after the
request, so an agent whose swap failed can retry from what is there. A malformed request
still gets an id and a result: ``{"id": n, "swapped": false, "error": "invalid_request",
"message": "..."}``; closing the file succeeds. ``id`` counts this KvFs's requests
(1, 2, ...); an empty write is ignored. The result is per KvFs: give each agent its own
KvFs (several may share one database file) or call ``cas`` from host code.

In a wasm run the store is staged like any directory: the keys a guest writes or removes
and its ``.cas`` request reach the database after the run, in path order (``.cas``
first), so a guest's request cannot depend on its own writes of the same run.

The database (``":memory:"`` for a private one) is readable without oanix:
``PRAGMA application_id`` is ``0x6F614B56`` ("oaKV"), ``PRAGMA user_version`` 1, and::

    CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, mtime REAL NOT NULL)

Locking: one lock guards the SQLite connection; each call holds it for its one statement
or transaction, so every operation is atomic. Other processes sharing the file see a
write once it is committed (WAL).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Final

from .. import paths
from .._sqlite import open_store, translate
from ..errors import (
    AlreadyExists,
    FsError,
    InvalidArgument,
    InvalidContent,
    InvalidPath,
    IsADirectory,
    NameTooLong,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile, CappedFile, check_capped
from ..service import FileService, OpenMode, Stat, check_open
from ..values import dumps_pretty, load_json

__all__ = ["APPLICATION_ID", "CAS", "CAS_RESULT", "MAX_KEY_BYTES", "SCHEMA_VERSION", "KvFs",
           "check_key"]

APPLICATION_ID: Final = 0x6F614B56  # "oaKV"
SCHEMA_VERSION: Final = 1
MAX_KEY_BYTES: Final = 255
CAS: Final = ".cas"
CAS_RESULT: Final = ".cas.result"
_CONTROL: Final = (CAS, CAS_RESULT)
_SCHEMA: Final = ("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
                  "mtime REAL NOT NULL)",)
_CAS_KEYS: Final = frozenset({"key", "expect", "expect_base64", "value", "value_base64"})


def check_key(key: object, path: str | None = None) -> str:
    """``key`` if it can name a KvFs key (``path``: the file path it came from).

    Raises:
        InvalidPath: not a str, empty, holding ``/`` or NUL, a leading ``.``, or a lone
            surrogate.
        NameTooLong: more than ``MAX_KEY_BYTES`` bytes of UTF-8.
    """
    where = path if path is not None else repr(key)
    if not isinstance(key, str) or not key:
        raise InvalidPath(where, f"a KvFs key must be a non-empty str, not {key!r}")
    if "/" in key:
        raise InvalidPath(where, "KvFs keys are flat names: a key cannot hold '/'")
    if "\x00" in key:
        raise InvalidPath(where, "a KvFs key cannot hold a NUL character")
    if key.startswith("."):
        raise InvalidPath(where, "KvFs keys cannot start with '.': such names are its "
                                 "control files (.cas, .cas.result)")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidPath(where, "a KvFs key must be valid UTF-8 (a lone surrogate)") from None
    if size > MAX_KEY_BYTES:
        raise NameTooLong(where, f"a KvFs key is at most {MAX_KEY_BYTES} bytes of UTF-8, "
                                 f"not {size}")
    return key


def _text_or_base64(name: str, data: bytes | None) -> dict[str, str | None]:
    """``{name: text}``, ``{name + "_base64": ...}`` for bytes that are not UTF-8, or
    ``{name: None}`` for no value."""
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


class _Invalid(Exception):
    """A ``.cas`` request that cannot be carried out; the message tells the agent why."""


def _field(obj: dict[str, Any], name: str) -> bytes | None:
    """The bytes of ``name`` (text) or ``name_base64``; None for an explicit null."""
    b64 = f"{name}_base64"
    if (name in obj) == (b64 in obj):
        raise _Invalid(f"give exactly one of {name!r} (text or null) and {b64!r}")
    if name in obj:
        value = obj[name]
        if value is None:
            return None
        if not isinstance(value, str):
            raise _Invalid(f"{name} must be a string or null (use {b64} for bytes), "
                           f"not {value!r}")
        return value.encode("utf-8")
    value = obj[b64]
    if not isinstance(value, str):
        raise _Invalid(f"{b64} must be a base64 string, not {value!r}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise _Invalid(f"{b64} is not valid base64: {e}") from None


class KvFs(FileService):
    """A key-value store at ``path`` (an SQLite file, created if missing, or
    ``":memory:"``); see the module docstring for the files, the protocol and the schema.

    ``max_value_bytes`` caps a value (default 16 MiB). Use it as a context manager, or
    call ``close``.

    Raises:
        InvalidContent: ``path`` is not a KvFs database (or a newer one).
    """

    # mtimes come from time.time(): the WASI sync trusts them to this resolution.
    mtime_resolution: ClassVar[float] = 1e-6

    def __init__(self, path: str = ":memory:", *, max_value_bytes: int = 16 << 20) -> None:
        if isinstance(max_value_bytes, bool) or not isinstance(max_value_bytes, int) or (
                max_value_bytes < 0):
            raise InvalidArgument(f"max_value_bytes must be an int >= 0, not "
                                  f"{max_value_bytes!r}")
        self.path = path
        self.max_value_bytes = max_value_bytes
        self._conn = open_store(path, kind="KvFs", application_id=APPLICATION_ID,
                                version=SCHEMA_VERSION, schema=_SCHEMA)
        self._lock = threading.Lock()
        self._closed = False
        self._requests = 0
        self._result = b""
        self._result_id = 0
        self._result_mtime = self._created = time.time()

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> KvFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KvFs({self.path!r})"

    @contextlib.contextmanager
    def _db(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; sqlite3 errors become oanix errors."""
        with self._lock:
            if self._closed:
                raise FsError(what, f"the KvFs of {self.path} is closed")
            try:
                yield self._conn
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, what) from None
                raise

    # -- host API -------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it does not exist."""
        return self._get(check_key(key))

    def _get(self, key: str) -> bytes | None:
        with self._db(key) as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes) -> None:
        """Create or replace ``key`` with ``value``.

        Raises:
            NoSpace: ``value`` is larger than ``max_value_bytes``.
        """
        check_key(key)
        self._check_size(key, value)
        with self._db(key) as conn:
            conn.execute("INSERT INTO kv (key, value, mtime) VALUES (?, ?, ?) ON CONFLICT "
                         "(key) DO UPDATE SET value = excluded.value, mtime = excluded.mtime",
                         (key, bytes(value), time.time()))

    def delete(self, key: str) -> bool:
        """Delete ``key``; whether it existed."""
        return self._delete(check_key(key))

    def _delete(self, key: str) -> bool:
        with self._db(key) as conn:
            return conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    def keys(self) -> list[str]:
        """Every key, sorted."""
        with self._db("/") as conn:
            return [r[0] for r in conn.execute("SELECT key FROM kv ORDER BY key")]

    def cas(self, key: str, expect: bytes | None, value: bytes | None) -> bool:
        """Set ``key`` to ``value`` (None: delete it) if it holds ``expect`` now (None: if
        it does not exist), atomically; whether it swapped."""
        return self._cas(key, expect, value)[0]

    def _cas(self, key: str, expect: bytes | None, value: bytes | None
             ) -> tuple[bool, bytes | None]:
        """``(swapped, the value after)``."""
        check_key(key)
        if value is not None:
            self._check_size(key, value)
        with self._db(key) as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            current = None if row is None else bytes(row[0])
            swapped = current == expect
            if swapped:
                if value is None:
                    conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                else:
                    conn.execute("INSERT OR REPLACE INTO kv (key, value, mtime) VALUES "
                                 "(?, ?, ?)", (key, bytes(value), time.time()))
                current = value
            conn.execute("COMMIT")
        return swapped, current

    def _check_size(self, key: str, value: bytes) -> None:
        if len(value) > self.max_value_bytes:
            raise NoSpace(key, f"a KvFs value is at most {self.max_value_bytes} bytes, "
                               f"not {len(value)}; nothing stored")

    # -- the .cas request file ------------------------------------------------------------

    @property
    def _request_cap(self) -> int:
        """The largest ``.cas`` request: two values in base64, and room for the rest."""
        return self.max_value_bytes * 3 + 4096

    def _request(self, data: bytes) -> None:
        """Carry out one ``.cas`` request and record its result."""
        if not data.strip():
            return
        with self._lock:
            self._requests += 1
            rid = self._requests
        result: dict[str, Any] = {"id": rid}
        try:
            key, expect, value = self._parse(data)
            swapped, now = self._cas(key, expect, value)
            result.update(key=key, swapped=swapped)
            result.update(_text_or_base64("value", now))
        except (_Invalid, InvalidPath, NameTooLong) as e:
            message = e.strerror if isinstance(e, FsError) else str(e)
            result.update(swapped=False, error="invalid_request", message=message)
        except FsError as e:  # NoSpace: a value over the cap; a database error
            result.update(swapped=False, error="refused", message=e.strerror)
        content = dumps_pretty(result, indent=1)
        with self._lock:
            if rid > self._result_id:  # requests finishing out of order: keep the latest
                self._result, self._result_id = content, rid
                self._result_mtime = time.time()

    @staticmethod
    def _parse(data: bytes) -> tuple[str, bytes | None, bytes | None]:
        try:
            obj = load_json(data, CAS)
        except InvalidContent as e:
            raise _Invalid(f"the request is {e.strerror}") from None
        if not isinstance(obj, dict):
            raise _Invalid(f"the request must be a JSON object, not {type(obj).__name__}")
        unknown = set(obj) - _CAS_KEYS
        if unknown:
            raise _Invalid(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_CAS_KEYS)}")
        if "key" not in obj:
            raise _Invalid('missing "key": the request needs "key", "expect" and "value"')
        key = check_key(obj["key"], f"{CAS}: key {obj['key']!r}")
        return key, _field(obj, "expect"), _field(obj, "value")

    # -- files ----------------------------------------------------------------------------

    def _key_of(self, path: str, *, writing: bool = False) -> str:
        """The key a file path names (control files included).

        Raises:
            NotFound, NotADirectory: a nested path, for a read.
            InvalidPath, NameTooLong: a nested path or a bad name, for a write.
        """
        parent, name = paths.split(path)
        if parent == "/":
            if writing and name not in _CONTROL:
                check_key(name, path)
            return name
        if writing:
            raise InvalidPath(path, "KvFs keys are flat names: a key cannot hold '/'")
        first = paths.parts(path)[0]
        if first in _CONTROL or self._stat_key(first) is not None:
            raise NotADirectory(path)
        raise NotFound(path)

    def _stat_key(self, key: str) -> Stat | None:
        with self._db(key) as conn:
            row = conn.execute("SELECT length(value), mtime FROM kv WHERE key = ?",
                               (key,)).fetchone()
        return None if row is None else Stat(key, row[0], False, row[1])

    def _stat(self, path: str) -> Stat:
        if path == "/":
            with self._db(path) as conn:
                n = conn.execute("SELECT count(*) FROM kv").fetchone()[0]
            return Stat("", n + len(_CONTROL), True, self._created)
        key = self._key_of(path)
        if key == CAS:
            return Stat(CAS, 0, False, self._created)
        if key == CAS_RESULT:
            with self._lock:
                return Stat(CAS_RESULT, len(self._result), False, self._result_mtime,
                            readonly=True)
        st = self._stat_key(key)
        if st is None:
            raise NotFound(path)
        return st

    def _listdir(self, path: str) -> list[str]:
        if path != "/":
            self._stat(path)  # NotFound / NotADirectory
            raise NotADirectory(path)
        return sorted([*_CONTROL, *self.keys()])

    def _read_bytes(self, path: str) -> bytes:
        if path == "/":
            raise IsADirectory(path)
        key = self._key_of(path)
        if key == CAS:
            raise PermissionDenied(path, f"{CAS} is write-only: read {CAS_RESULT}")
        if key == CAS_RESULT:
            with self._lock:
                return self._result
        value = self._get(key)
        if value is None:
            raise NotFound(path)
        return value

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        if path == "/":
            check_open(path, mode, Stat("", 0, True))
        key = self._key_of(path, writing=mode.write)
        if key == CAS:
            check_open(path, mode, Stat(CAS, 0, False))
            if mode.read:
                raise PermissionDenied(path, f"{CAS} is write-only: read {CAS_RESULT}")
            return CappedFile(self._request_cap, mode, path,
                              f"a {CAS} request", on_close=self._request)
        if key == CAS_RESULT:
            if mode.write:
                raise PermissionDenied(path, f"{CAS_RESULT} is read-only: write {CAS}")
            return BufferFile(self._read_bytes(path), mode, path)
        current = self._get(key)
        check_open(path, mode, None if current is None else Stat(key, len(current), False))
        if not mode.write:
            assert current is not None
            return BufferFile(current, mode, path)

        def store(data: bytes) -> None:
            if mode.exclusive:
                if not self._cas(key, None, data)[0]:
                    raise AlreadyExists(path)
            else:
                self.set(key, data)

        return CappedFile(self.max_value_bytes, mode, path,
                          "a KvFs value", on_close=store, initial=current or b"")

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == "/":
            raise IsADirectory(path)
        key = self._key_of(path, writing=True)
        if key == CAS:
            check_capped(path, len(data), self._request_cap, f"a {CAS} request")
            self._request(data)
        elif key == CAS_RESULT:
            raise PermissionDenied(path, f"{CAS_RESULT} is read-only: write {CAS}")
        else:
            self.set(key, data)

    def _remove(self, path: str) -> None:
        if path == "/":
            raise IsADirectory(path)
        key = self._key_of(path)
        if key in _CONTROL:
            raise PermissionDenied(path, f"{key} is a KvFs control file: it cannot be removed")
        if not self._delete(key):
            raise NotFound(path)

    def _rename(self, src: str, dst: str) -> None:
        if src == "/" or dst == "/":
            raise PermissionDenied(src, "cannot rename the root", dst)
        skey = self._key_of(src)
        dkey = self._key_of(dst, writing=True)
        if skey in _CONTROL or dkey in _CONTROL:
            raise PermissionDenied(src, "the KvFs control files cannot be renamed", dst)
        with self._db(src) as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (skey,)).fetchone()
            if row is None:
                raise NotFound(src, None, dst)
            if skey != dkey:
                conn.execute("DELETE FROM kv WHERE key = ?", (skey,))
                conn.execute("INSERT OR REPLACE INTO kv (key, value, mtime) VALUES (?, ?, ?)",
                             (dkey, row[0], time.time()))
            conn.execute("COMMIT")

    def _refused(self, path: str, op: str) -> FsError:
        return PermissionDenied(path, f"KvFs keys are flat: {op} is not supported")
