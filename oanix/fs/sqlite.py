"""SqliteFs: a whole file tree in one SQLite database, a durable home for an agent.

The database (WAL mode) is readable without oanix. ``PRAGMA application_id`` is
``0x6F614653`` ("oaFS") and ``PRAGMA user_version`` the schema version, 1::

    CREATE TABLE node (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an open file keeps it
        path   TEXT NOT NULL UNIQUE,   -- normalised absolute path; the root is "/"
        parent TEXT,                   -- the path of the directory holding it; NULL: root
        is_dir INTEGER NOT NULL,       -- 1 directory, 0 file
        mtime  REAL NOT NULL,          -- seconds since the epoch (time.time())
        data   BLOB                    -- a file's bytes; NULL for a directory
    );
    CREATE INDEX node_parent ON node (parent, path);

so ``SELECT path, length(data) FROM node WHERE is_dir = 0`` lists every file. Paths are
stored in full, so finding a file is one index lookup; renaming a directory rewrites
the paths below it in the same transaction.

Promises:

* Atomic writes. A file opened for writing is created at ``open`` (as POSIX does, so
  ``x`` mode is exclusive), but its content changes only when it is closed: the bytes
  written through the handle replace the file's in one transaction. A reader (another
  handle, thread or process) sees the old content or the new one, never a mix. A handle
  reads the content as it was when it was opened. Two handles writing one file: the last
  to close wins. Every other primitive (mkdir, remove, rmdir, rename, ``write_bytes``)
  is one transaction.
* Crashes. A write whose ``close`` returned survives the process being killed; the
  database is never left corrupt (WAL). ``durable=True`` sets ``PRAGMA synchronous=FULL``
  so it also survives a power loss, at the cost of an fsync per write; the default
  (``NORMAL``) may lose the last writes to a power loss, never the database.
* Sharing. Several SqliteFs (in this process or others) may open one database: each
  sees the others' committed writes on its next call. A writer waits up to
  ``BUSY_TIMEOUT`` seconds for another process's transaction.

Errors: a file that is not an SQLite database, a database of another program, or one
written by a newer oanix (a higher ``user_version``) raise ``InvalidContent`` naming the
path when the SqliteFs is created.

Locking: one writer connection, guarded by a lock that each mutating primitive holds
for its one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so writes in this process
queue on the lock instead of spinning on SQLite's busy handler; reads use a pool of
read-only connections (one per concurrent reader, reused), so in WAL mode they never
wait for the writer or for each other. One connection per thread was the alternative;
it leaks a connection per thread that ever touched the service, and the pool does not.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import ClassVar, Final

from .. import paths
from .._sqlite import connect, open_store, translate
from ..errors import (
    AlreadyExists,
    FsError,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotEmpty,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile
from ..service import FileService, OpenMode, Stat, check_open

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteFs"]

APPLICATION_ID: Final = 0x6F614653  # "oaFS"
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = (
    """CREATE TABLE node (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        path   TEXT NOT NULL UNIQUE,
        parent TEXT,
        is_dir INTEGER NOT NULL,
        mtime  REAL NOT NULL,
        data   BLOB)""",
    "CREATE INDEX node_parent ON node (parent, path)",
    "INSERT INTO node (path, parent, is_dir, mtime, data) VALUES ('/', NULL, 1, "
    "CAST(strftime('%s', 'now') AS REAL), NULL)",
)

# The stat of one node: its size is the length of a file, the entry count of a directory.
_STAT_COLS: Final = ("path, is_dir, mtime, CASE WHEN is_dir THEN (SELECT count(*) FROM node "
                     "AS c WHERE c.parent = node.path) ELSE length(data) END")
_STAT: Final = f"SELECT {_STAT_COLS} FROM node WHERE path = ?"
_SCAN: Final = f"SELECT {_STAT_COLS} FROM node WHERE parent = ? ORDER BY path"
_KIND: Final = "SELECT id, is_dir FROM node WHERE path = ?"
_INSERT: Final = "INSERT INTO node (path, parent, is_dir, mtime, data) VALUES (?, ?, ?, ?, ?)"
_TOUCH: Final = "UPDATE node SET mtime = ? WHERE path = ?"


class SqliteFs(FileService):
    """A file tree stored in the SQLite database at ``path`` (created if missing); see
    the module docstring for the schema, the promises and the locking rule.

    Use it as a context manager, or call ``close`` to release the database.
    """

    # mtimes come from time.time(): the WASI sync trusts them to this resolution.
    mtime_resolution: ClassVar[float] = 1e-6

    def __init__(self, path: str, *, durable: bool = False) -> None:
        if path == ":memory:":
            raise InvalidPath(path, "SqliteFs needs a database file (use MemFs in memory)")
        self.path = path
        self._writer = open_store(path, kind="SqliteFs", application_id=APPLICATION_ID,
                                  version=SCHEMA_VERSION, schema=_SCHEMA,
                                  synchronous="FULL" if durable else "NORMAL")
        self._lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._all_readers: list[sqlite3.Connection] = []
        self._closed = False

    def close(self) -> None:
        """Close the database; open files lose what they did not write yet. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._all_readers:
                conn.close()
            self._writer.close()

    def __enter__(self) -> SqliteFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteFs({self.path!r})"

    # -- connections ----------------------------------------------------------------------

    def _closed_error(self, path: str) -> FsError:
        return FsError(path, f"the SqliteFs of {self.path} is closed")

    @contextlib.contextmanager
    def _reading(self, path: str) -> Iterator[sqlite3.Connection]:
        """A read-only connection from the pool, for one read."""
        try:
            conn = self._readers.pop()  # list.pop is atomic
        except IndexError:
            conn = self._new_reader(path)
        try:
            yield conn
        except sqlite3.Error as exc:
            if self._closed:
                raise self._closed_error(path) from None
            raise translate(exc, self.path, path) from None
        finally:
            if not conn.in_transaction:
                self._readers.append(conn)

    def _new_reader(self, path: str) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise self._closed_error(path)
            conn = connect(self.path, create=False)
            conn.execute("PRAGMA query_only = ON")
            self._all_readers.append(conn)
            return conn

    @contextlib.contextmanager
    def _writing(self, path: str) -> Iterator[sqlite3.Connection]:
        """The writer connection in one transaction, committed when the block ends."""
        with self._lock:
            if self._closed:
                raise self._closed_error(path)
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path, path) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, path) from None
                raise

    # -- lookup (any connection) ----------------------------------------------------------

    @staticmethod
    def _missing(conn: sqlite3.Connection, path: str) -> FsError:
        """Why ``path`` is not there: NotADirectory when an ancestor is a file."""
        ancestors = []
        p = paths.dirname(path)
        while p != "/":
            ancestors.append(p)
            p = paths.dirname(p)
        if ancestors:
            marks = ",".join("?" * len(ancestors))
            if conn.execute(f"SELECT 1 FROM node WHERE is_dir = 0 AND path IN ({marks}) "
                            "LIMIT 1", ancestors).fetchone():
                return NotADirectory(path)
        return NotFound(path)

    def _parent_dir(self, conn: sqlite3.Connection, path: str) -> str:
        """The parent of ``path``, checked to be a directory."""
        parent = paths.dirname(path)
        row = conn.execute(_KIND, (parent,)).fetchone()
        if row is None:
            raise self._missing(conn, path)
        if not row[1]:
            raise NotADirectory(path)
        return parent

    @staticmethod
    def _stat_of(row: tuple[str, int, float, int | None]) -> Stat:
        p, is_dir, mtime, size = row
        return Stat(p[p.rfind("/") + 1:], size or 0, bool(is_dir), mtime)

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        with self._reading(path) as conn:
            row = conn.execute(_STAT, (path,)).fetchone()
            if row is None:
                raise self._missing(conn, path)
        return self._stat_of(row)

    def _listdir(self, path: str) -> list[str]:
        return [st.name for st in self._scandir(path)]

    def _scandir(self, path: str) -> list[Stat]:
        with self._reading(path) as conn:
            conn.execute("BEGIN")  # one snapshot: the directory and its entries
            try:
                row = conn.execute(_KIND, (path,)).fetchone()
                if row is None:
                    raise self._missing(conn, path)
                if not row[1]:
                    raise NotADirectory(path)
                rows = conn.execute(_SCAN, (path,)).fetchall()
            finally:
                conn.execute("COMMIT")
        return [self._stat_of(r) for r in rows]

    def _read_bytes(self, path: str) -> bytes:
        with self._reading(path) as conn:
            row = conn.execute("SELECT is_dir, data FROM node WHERE path = ?",
                               (path,)).fetchone()
            if row is None:
                raise self._missing(conn, path)
        if row[0]:
            raise IsADirectory(path)
        return bytes(row[1])

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        if not mode.write:
            return BufferFile(self._read_bytes(path), mode, path)
        with self._writing(path) as conn:
            if path == "/":
                raise IsADirectory(path)
            parent = self._parent_dir(conn, path)
            row = conn.execute("SELECT id, is_dir, data FROM node WHERE path = ?",
                               (path,)).fetchone()
            st = None if row is None else Stat(paths.basename(path), 0, bool(row[1]))
            check_open(path, mode, st)
            if row is None:
                now = time.time()
                cur = conn.execute(_INSERT, (path, parent, 0, now, b""))
                conn.execute(_TOUCH, (now, parent))
                node_id, data = cur.lastrowid, b""
            else:
                node_id, data = row[0], row[2]
        assert node_id is not None
        return _SqliteFile(self, node_id, bytearray(data), mode, path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        with self._writing(path) as conn:
            if path == "/":
                raise IsADirectory(path)
            now = time.time()
            cur = conn.execute("UPDATE node SET data = ?, mtime = ? WHERE path = ? AND "
                               "is_dir = 0", (data, now, path))
            if cur.rowcount:
                return
            parent = self._parent_dir(conn, path)
            if conn.execute(_KIND, (path,)).fetchone() is not None:
                raise IsADirectory(path)
            conn.execute(_INSERT, (path, parent, 0, now, data))
            conn.execute(_TOUCH, (now, parent))

    def _store(self, node_id: int, data: bytes, path: str) -> None:
        """Replace the content of the file ``node_id`` (gone: nothing to do, as a write
        to an unlinked file on POSIX)."""
        with self._writing(path) as conn:
            conn.execute("UPDATE node SET data = ?, mtime = ? WHERE id = ? AND is_dir = 0",
                         (data, time.time(), node_id))

    def _mkdir(self, path: str) -> None:
        with self._writing(path) as conn:
            if path == "/":
                raise AlreadyExists(path)
            parent = self._parent_dir(conn, path)
            if conn.execute(_KIND, (path,)).fetchone() is not None:
                raise AlreadyExists(path)
            now = time.time()
            conn.execute(_INSERT, (path, parent, 1, now, None))
            conn.execute(_TOUCH, (now, parent))

    def _remove(self, path: str) -> None:
        with self._writing(path) as conn:
            parent = self._parent_dir(conn, path) if path != "/" else "/"
            row = conn.execute(_KIND, (path,)).fetchone()
            if row is None:
                raise NotFound(path)
            if row[1]:
                raise IsADirectory(path)
            conn.execute("DELETE FROM node WHERE id = ?", (row[0],))
            conn.execute(_TOUCH, (time.time(), parent))

    def _rmdir(self, path: str) -> None:
        with self._writing(path) as conn:
            if path == "/":
                raise PermissionDenied(path, "cannot remove the root")
            parent = self._parent_dir(conn, path)
            row = conn.execute(_KIND, (path,)).fetchone()
            if row is None:
                raise NotFound(path)
            if not row[1]:
                raise NotADirectory(path)
            if conn.execute("SELECT 1 FROM node WHERE parent = ? LIMIT 1",
                            (path,)).fetchone():
                raise NotEmpty(path)
            conn.execute("DELETE FROM node WHERE id = ?", (row[0],))
            conn.execute(_TOUCH, (time.time(), parent))

    def _rename(self, src: str, dst: str) -> None:
        with self._writing(src) as conn:
            if src == "/" or dst == "/":
                raise PermissionDenied(src, "cannot rename the root", dst)
            sparent = self._parent_dir(conn, src)
            dparent = self._parent_dir(conn, dst)
            node = conn.execute(_KIND, (src,)).fetchone()
            if node is None:
                raise NotFound(src, None, dst)
            if src == dst:
                return
            if node[1] and paths.is_within(dst, src):
                raise InvalidPath(src, "cannot move a directory into itself", dst)
            if paths.is_within(src, dst):  # dst is an ancestor of src, so not empty
                raise NotEmpty(dst)
            target = conn.execute(_KIND, (dst,)).fetchone()
            if target is not None:
                if not node[1] and target[1]:
                    raise IsADirectory(dst)
                if node[1] and not target[1]:
                    raise NotADirectory(dst)
                if target[1] and conn.execute("SELECT 1 FROM node WHERE parent = ? LIMIT 1",
                                              (dst,)).fetchone():
                    raise NotEmpty(dst)
                conn.execute("DELETE FROM node WHERE id = ?", (target[0],))
            conn.execute("UPDATE node SET path = ?, parent = ? WHERE id = ?",
                         (dst, dparent, node[0]))
            if node[1]:
                # every path below src: those from "src/" up to (not including) "src0",
                # '0' being the character after '/' (paths compare as UTF-8 bytes)
                n = len(src) + 1
                conn.execute(
                    "UPDATE node SET path = ?1 || substr(path, ?3), "
                    "parent = ?1 || substr(parent, ?3) "
                    "WHERE path >= ?2 || '/' AND path < ?2 || '0'", (dst, src, n))
            now = time.time()
            conn.execute(_TOUCH, (now, sparent))
            conn.execute(_TOUCH, (now, dparent))


class _SqliteFile(BufferFile):
    """An open SqliteFs file: a private copy of the content, stored when closed."""

    def __init__(self, fs: SqliteFs, node_id: int, buf: bytearray, mode: OpenMode,
                 name: str) -> None:
        self._fs = fs
        self._node_id = node_id
        self._dirty = False
        super().__init__(buf, mode, name)

    def _changed(self) -> None:
        self._dirty = True

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._dirty:
                self._fs._store(self._node_id, bytes(self._buf), self.name)
        finally:
            super().close()
