"""The snapshot file: one SQLite 3 database, written and read whole.

Why SQLite (the stdlib ``sqlite3``) rather than a tar with a JSON manifest: nothing in the
file ever becomes a host path, so the classic archive attacks (``../`` and absolute member
names, symlink and hardlink members, device files) have nothing to act on; a file's
content is a row, found by key, not by walking members; the database checks its own
page structure; and anyone can read a snapshot with the ``sqlite3`` shell and a JSON
parser, without oanix. The file is built in memory and written to a temporary name then
renamed, so a snapshot is never seen half-written; it is read whole into memory
(``sqlite3.deserialize``), so reading writes nothing next to it (no journal, no lock
file) and cannot see it change under it.

Format version 1
================

The SQLite header's ``application_id`` is ``0x4F414E58`` ("OANX") and ``user_version``
is the format version. Four tables::

    meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
        format      "oanix-snapshot"
        version     "1": a reader refuses a greater version (SnapshotVersionError)
        created_at  seconds since the epoch, as decimal text
        oanix       the oanix version that wrote it
        root        JSON object: the environment: {"id", "workspace_at": path, "cwd":
                    path, "vars": {name: value}, "limits": {"fuel", "memory_limit",
                    "timeout", "max_output", "max_disk", "max_disk_files"} (null: none)
                    and "receipts" (bool), "namespace": id, "workspace": id, "tmp": id,
                    "logs": id, "receipts": id (the run receipts' store at
                    /logs/receipts), "task": id | null, "proc": id}
        digest      hex SHA-256 of the canonical content (below)

    objects(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL)
        One row per stateful object (a service, a task, a namespace). ``kind`` names
        its type (below) and ``state`` is a JSON object. In a state,
        ``{"$blob": "<sha256>"}`` stands for the bytes of that blob, and a field marked
        "id" holds another object's id.

    mounts(namespace INTEGER, seq INTEGER, path TEXT, object INTEGER, root TEXT,
           create_ INTEGER, readonly INTEGER, PRIMARY KEY (namespace, seq))
        The mount table of each namespace object: mount points in path order and the
        members of a union in lookup order (``seq`` orders them); ``root`` is the path
        inside the service that appears at ``path`` (``/`` unless bound); ``create_``
        and ``readonly`` are 0 or 1.

    blobs(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL)
        File contents, by the lowercase hex SHA-256 of ``data`` (equal contents are
        stored once); ``size`` is ``length(data)``.

Object states, by kind (version 1). A tree's ``entries`` is a list, parents before
children, of ``[path, "d", mtime]`` (a directory) or ``[path, "f", mtime, blob]`` (a file);
the root is implied::

    namespace    {}: its mount table is the mounts rows whose namespace is its id
    procfs       {}: the environment's process service; a restoring environment puts
                 its own in its place
    memfs        {"max_bytes": int | null, "max_files": int | null, "mtime": the root's,
                  "entries": tree}
    mapfs        {"mtime", "entries": tree}  (read-only; every entry has this mtime)
    cowfs        {"base": id, "upper": id, "whiteouts": [path, ...]}
    workspacefs  {"root": absolute host path, "readonly": bool, "sha256": content hash,
                  "entries": tree (only when inlined)}; the content hash is the SHA-256
                 over a walk from the root, each directory's entries in the order of
                 their names' UTF-8 bytes then its subdirectories in that order, of
                 "d <path>\n" per directory, "f <path> <hex sha256 of content>\n" per
                 file, "x <path>\n" per entry that cannot be read (symlink, special)
    taskfs       {"spec": spec.json's object, "meta": meta.json's object ({"created_at",
                  "version", "metadata"}), "status": status's object ({"state",
                  "created_at", "started_at", "finished_at", "error"}), "status_mtime",
                  "result": blob of result.json | null, "result_mtime",
                  "verifier": id of a memfs (the /verifier area)}
    taskview     {"task": id of a taskfs, "role": "agent" | "verifier"}
    logsfs       {"max_bytes": int | null, "created_at", "files": {"/stdout.log" |
                  "/stderr.log" | "/events.jsonl": [mtime, blob]}}  (events.jsonl is
                 JSON Lines of {"ts", "level", "message", "data"?})
    httpfs       {"default_timeout", "max_timeout", "max_file_bytes", "next": the next
                  request id, "last": str | null, "created_at", "completed", "failed",
                  "pending": [request], "in_flight": [request], "finished": [{"id",
                  "kind": "responses" | "errors", "mtime", "content": blob of the file}]}
                 request: {"id", "method", "url", "headers": [[name, value]], "body":
                  blob, "timeout", "created_at"}; pending requests are performed after a
                 restore, in-flight ones are recorded as failed ("shutdown": they may
                 have been performed) and never performed again
    nostrfs      {"pubkey": hex, "relays": [url], "max_file_bytes", "outbox": [{"event",
                  "queued_at", "answers": [[relay url, accepted, message]]}], "inbox":
                  [event], "removed_inbox": [event id], "subscriptions": {name: [filter]},
                  "jobs": [{"request": event, "results": [event], "feedback": [event]}],
                  "dropped": {"bad_id", "bad_signature", "malformed", "unsolicited"},
                  "duplicates", "last", "last_error", "created_at"}; events are NIP-01
                 JSON objects; the secret key is never in the file
    wsfs         {"max_connections", "max_queue", "max_message_bytes", "max_log", "next":
                  the next connection id, "last", "created_at", "conns": [{"id", "url",
                  "state": "closed" | "failed", "reconnect", "error", "message",
                  "close_code", "close_reason", "closed_by", "sent", "sent_bytes",
                  "received", "received_bytes", "unsent", "reconnects", "log_dropped",
                  "created_at", "opened_at", "closed_at", "log": blob (JSON Lines),
                  "inbox": [["text" | "binary", blob]] (not read yet)}]}; only finished
                 connections: a live socket cannot move, so a snapshot refuses it

JSON is UTF-8, without NaN or infinities. Paths are absolute, normalised POSIX paths
(``oanix.paths.normalize`` leaves them unchanged: no ``.``, ``..``, empty component or
NUL). Times are float seconds since the epoch.

The digest is the SHA-256 of the UTF-8 JSON (keys sorted, no spaces) of
``{"meta": {every meta row but digest}, "objects": [[id, kind, state], ...],
"mounts": [[namespace, seq, path, object, root, create_, readonly], ...],
"blobs": [[sha256, size], ...]}``, each list sorted; each blob is checked against its
own key. A reader checks, in order: the SQLite header and that the file is as long as
the header says (a truncated file), the tables, ``format``, ``version``, the digest,
every blob; only then does it build anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import struct
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ..errors import CorruptSnapshot, SnapshotError, SnapshotVersionError

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_SNAPSHOT_BYTES", "ObjectRow", "MountRow",
           "SnapshotData", "read_snapshot", "write_snapshot"]

FORMAT: Final = "oanix-snapshot"
FORMAT_VERSION: Final = 1
APPLICATION_ID: Final = 0x4F414E58
MAX_SNAPSHOT_BYTES: Final = 4 << 30
"""The largest snapshot ``read_snapshot`` reads unless told otherwise: 4 GiB."""
_MAGIC: Final = b"SQLite format 3\x00"
_SCHEMA: Final = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE mounts(namespace INTEGER NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL,
                    object INTEGER NOT NULL, root TEXT NOT NULL, create_ INTEGER NOT NULL,
                    readonly INTEGER NOT NULL, PRIMARY KEY (namespace, seq));
CREATE TABLE blobs(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL);
"""
_TABLES: Final = {"meta": ("key", "value"), "objects": ("id", "kind", "state"),
                  "mounts": ("namespace", "seq", "path", "object", "root", "create_",
                             "readonly"),
                  "blobs": ("sha256", "size", "data")}


@attrs.frozen
class ObjectRow:
    id: int
    kind: str
    state: str  # JSON text


@attrs.frozen
class MountRow:
    namespace: int
    seq: int
    path: str
    object: int
    root: str
    create: bool
    readonly: bool


@attrs.define
class SnapshotData:
    """A snapshot's rows, checked (when read) against the digest and the blob keys.

    Locking: none; one thread builds or reads it.
    """

    root: str  # JSON text
    objects: list[ObjectRow] = attrs.field(factory=list)
    mounts: list[MountRow] = attrs.field(factory=list)
    blobs: dict[str, bytes] = attrs.field(factory=dict)
    meta: dict[str, str] = attrs.field(factory=dict)


def blob_key(data: bytes) -> str:
    """The key of ``data`` in the blobs table: its lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def _digest(meta: Mapping[str, str], objects: list[ObjectRow], mounts: list[MountRow],
            sizes: list[tuple[str, int]]) -> str:
    doc = {"meta": {k: v for k, v in meta.items() if k != "digest"},
           "objects": sorted([o.id, o.kind, o.state] for o in objects),
           "mounts": sorted([m.namespace, m.seq, m.path, m.object, m.root, int(m.create),
                             int(m.readonly)] for m in mounts),
           "blobs": sorted([k, n] for k, n in sizes)}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- writing ----------------------------------------------------------------------------------

def write_snapshot(path: str | os.PathLike[str], data: SnapshotData, oanix_version: str
                   ) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it).

    Raises:
        SnapshotError: the file cannot be written (naming it).
    """
    meta = {"format": FORMAT, "version": str(FORMAT_VERSION),
            "created_at": repr(time.time()), "oanix": oanix_version, "root": data.root}
    meta["digest"] = _digest(meta, data.objects, data.mounts,
                             [(k, len(v)) for k, v in data.blobs.items()])
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(_SCHEMA)
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        with con:
            con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            con.executemany("INSERT INTO objects VALUES (?, ?, ?)",
                            [(o.id, o.kind, o.state) for o in data.objects])
            con.executemany("INSERT INTO mounts VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(m.namespace, m.seq, m.path, m.object, m.root, int(m.create),
                              int(m.readonly)) for m in data.mounts])
            con.executemany("INSERT INTO blobs VALUES (?, ?, ?)",
                            [(k, len(v), v) for k, v in data.blobs.items()])
        image = con.serialize()
    finally:
        con.close()
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent)
    except OSError as e:
        raise SnapshotError(f"{target}: cannot write the snapshot: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(image)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SnapshotError(f"{target}: cannot write the snapshot: {e.strerror}") from None


# -- reading ----------------------------------------------------------------------------------

def read_snapshot(path: str | os.PathLike[str], *, max_bytes: int = MAX_SNAPSHOT_BYTES
                  ) -> SnapshotData:
    """The checked rows of the snapshot at ``path`` (see the module docstring).

    Raises:
        SnapshotError: the file cannot be read, or is larger than ``max_bytes``.
        CorruptSnapshot: not a snapshot, truncated, damaged, or a digest that differs.
        SnapshotVersionError: a newer format version.
    """
    name = os.fspath(path)
    image = _read_file(name, max_bytes)
    _check_header(name, image)
    try:
        con = sqlite3.connect(":memory:")
    except sqlite3.Error as e:  # pragma: no cover - out of memory
        raise SnapshotError(f"{name}: {e}") from None
    try:
        try:
            con.deserialize(image)
            return _read_rows(name, con)
        except (sqlite3.DatabaseError, OverflowError, MemoryError) as e:
            raise CorruptSnapshot(f"{name}: damaged snapshot: {e}") from None
    finally:
        con.close()


def _read_file(name: str, max_bytes: int) -> bytes:
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise SnapshotError(f"{name}: {size} bytes, over the limit of {max_bytes}")
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise SnapshotError(f"{name}: cannot read the snapshot: {e.strerror}") from None
    if len(data) > max_bytes:
        raise SnapshotError(f"{name}: over the limit of {max_bytes} bytes")
    return data


def _check_header(name: str, image: bytes) -> None:
    """A SQLite image whose length is what its header says (a truncated file is not)."""
    if len(image) < 100 or not image.startswith(_MAGIC):
        raise CorruptSnapshot(f"{name}: not a snapshot (no SQLite header)")
    (page_size,) = struct.unpack(">H", image[16:18])
    page_size = 65536 if page_size == 1 else page_size
    (change, pages, valid_for) = struct.unpack(">II60xI", image[24:96])
    (app_id,) = struct.unpack(">I", image[68:72])
    if app_id != APPLICATION_ID:
        raise CorruptSnapshot(f"{name}: an SQLite file, but not an oanix snapshot")
    if page_size < 512 or page_size & (page_size - 1):
        raise CorruptSnapshot(f"{name}: damaged header (page size {page_size})")
    if change != valid_for or pages * page_size != len(image):
        raise CorruptSnapshot(f"{name}: truncated or damaged: {len(image)} bytes, the "
                              f"header says {pages} pages of {page_size}")


def _rows(con: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(_TABLES[table])
    return con.execute(f"SELECT {cols} FROM {table}").fetchall()


def _read_rows(name: str, con: sqlite3.Connection) -> SnapshotData:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        raise CorruptSnapshot(f"{name}: no meta table")
    meta: dict[str, str] = {}
    for key, value in _rows(con, "meta"):
        if not isinstance(key, str) or not isinstance(value, str):
            raise CorruptSnapshot(f"{name}: meta: a row that is not text")
        meta[key] = value
    if meta.get("format") != FORMAT:
        raise CorruptSnapshot(f"{name}: meta.format is {meta.get('format')!r}, not {FORMAT!r}")
    version = meta.get("version", "")
    if not version.isdigit() or int(version) < 1:
        raise CorruptSnapshot(f"{name}: meta.version {version!r} is not a version")
    if int(version) > FORMAT_VERSION:
        raise SnapshotVersionError(f"{name}: format version {version}; this oanix reads "
                                   f"up to version {FORMAT_VERSION}")
    missing = sorted(set(_TABLES) - tables)
    if missing:
        raise CorruptSnapshot(f"{name}: missing table(s) {missing}")
    objects = [_object_row(name, r) for r in _rows(con, "objects")]
    mounts = [_mount_row(name, r) for r in _rows(con, "mounts")]
    blobs: dict[str, bytes] = {}
    for key, size, data in _rows(con, "blobs"):
        if not isinstance(data, bytes) or not isinstance(size, int) or size != len(data):
            raise CorruptSnapshot(f"{name}: blob {key!r}: declared size {size!r} is not "
                                  f"its length")
        if not isinstance(key, str) or blob_key(data) != key:
            raise CorruptSnapshot(f"{name}: blob {key!r}: content does not match its key")
        blobs[key] = data
    digest = _digest(meta, objects, mounts, [(k, len(v)) for k, v in blobs.items()])
    if meta.get("digest") != digest:
        raise CorruptSnapshot(f"{name}: digest differs: the file was changed or damaged")
    if "root" not in meta:
        raise CorruptSnapshot(f"{name}: meta.root is missing")
    return SnapshotData(meta["root"], objects, mounts, blobs, meta)


def _object_row(name: str, row: tuple[Any, ...]) -> ObjectRow:
    oid, kind, state = row
    if not isinstance(oid, int) or not isinstance(kind, str) or not isinstance(state, str):
        raise CorruptSnapshot(f"{name}: objects: a malformed row {row[:2]!r}")
    return ObjectRow(oid, kind, state)


def _mount_row(name: str, row: tuple[Any, ...]) -> MountRow:
    ns, seq, path, obj, root, create, readonly = row
    if not (all(isinstance(v, int) for v in (ns, seq, obj, create, readonly))
            and isinstance(path, str) and isinstance(root, str)
            and create in (0, 1) and readonly in (0, 1)):
        raise CorruptSnapshot(f"{name}: mounts: a malformed row {row[:3]!r}")
    return MountRow(ns, seq, path, obj, root, bool(create), bool(readonly))
