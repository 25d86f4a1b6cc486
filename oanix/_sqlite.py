"""Opening the SQLite databases oanix keeps its stores in (SqliteFs, KvFs, SqlFs).

One place for what every store does the same way: the connection settings, the schema
version check (``PRAGMA application_id`` says which oanix store a file is, ``PRAGMA
user_version`` which version of its schema) and the translation of ``sqlite3`` errors into
oanix's typed errors naming the database's path.

Locking: nothing here has state; a connection is the caller's to guard.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

from .errors import (
    FsError,
    InvalidContent,
    IsADirectory,
    NoSpace,
    NotFound,
    PermissionDenied,
    ReadOnly,
)

__all__ = ["BUSY_TIMEOUT", "connect", "open_store", "translate"]

BUSY_TIMEOUT: Final = 10.0
"""Seconds a connection waits for another one's write lock before giving up."""


def translate(exc: sqlite3.Error, path: str, what: str = "") -> FsError:
    """The oanix error for ``exc``, raised by SQLite on the database at ``path``."""
    text = str(exc)
    where = f"{what}: " if what else ""
    if "file is not a database" in text:
        return InvalidContent(path, f"{where}not an SQLite database")
    if "database or disk is full" in text:
        return NoSpace(path, f"{where}the database or its disk is full")
    if "readonly database" in text:
        return ReadOnly(path, f"{where}the database is read-only")
    if "unable to open database file" in text:
        if os.path.isdir(path):
            return IsADirectory(path, f"{where}a directory, not a database file")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent) or not os.path.exists(path):
            return NotFound(path, f"{where}cannot open the database: no such file or "
                                  "directory")
        return PermissionDenied(path, f"{where}cannot open the database: {text}")
    return FsError(path, f"{where}SQLite: {text}")


def connect(path: str, *, readonly: bool = False, create: bool = True) -> sqlite3.Connection:
    """A connection to the database at ``path`` (``":memory:"`` for a private one) in
    autocommit mode (transactions are explicit), usable from any thread one at a time.

    ``readonly`` opens it with ``mode=ro`` (SQLite refuses every write); otherwise
    ``create`` says whether a missing file may be created.

    Raises:
        NotFound, PermissionDenied: the file cannot be opened.
    """
    if path == ":memory:":
        target = "file::memory:"
    else:
        mode = "ro" if readonly else ("rwc" if create else "rw")
        target = f"file:{quote(os.path.abspath(path))}?mode={mode}"
    try:
        return sqlite3.connect(target, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False, cached_statements=256)
    except sqlite3.Error as exc:
        raise translate(exc, path) from None


def open_store(path: str, *, kind: str, application_id: int, version: int,
               schema: Sequence[str], synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection to the ``kind`` store at ``path``, created with ``schema`` (statements
    run in one transaction) when the database is new, in WAL mode.

    A database is new when it has no tables; otherwise its ``application_id`` must be
    ``application_id`` and its ``user_version`` at most ``version``.

    Raises:
        InvalidContent: naming ``path``: not an SQLite database, another program's (or
            another oanix store's) database, or a newer schema than ``version``.
        NotFound, PermissionDenied: the file cannot be opened.
    """
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # reads the header: "not a database" here
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _check_or_create(conn, path, kind, application_id, version, schema)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path, f"opening a {kind}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _check_or_create(conn: sqlite3.Connection, path: str, kind: str, application_id: int,
                     version: int, schema: Sequence[str]) -> None:
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    ver = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
    if not tables and app == 0 and ver == 0:
        for statement in schema:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {int(application_id)}")
        conn.execute(f"PRAGMA user_version = {int(version)}")
        return
    if app != application_id:
        shown = ", ".join(tables[:5]) or "none"
        raise InvalidContent(path, f"not an oanix {kind} database (application_id {app}, "
                                   f"tables: {shown})")
    if ver > version:
        raise InvalidContent(path, f"{kind} schema version {ver} is newer than this oanix "
                                   f"reads ({version}): upgrade oanix to open it")
    if ver < 1:
        raise InvalidContent(path, f"not an oanix {kind} database (user_version {ver})")
