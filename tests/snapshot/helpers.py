"""Shared helpers of the snapshot tests: the files of an environment, and crafting a
snapshot's rows as an attacker would (the digest is recomputed: it detects damage, it is
not a signature)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from oanix import FileService, OanixEnv
from oanix.snapshot.format import (
    FORMAT_VERSION,
    MountRow,
    ObjectRow,
    SnapshotData,
    _digest,
    blob_key,
    read_snapshot,
    write_snapshot,
)

SKIP = ("/cap/proc",)  # computed per open: a listing of the process service itself


def files(ns: FileService, top: str = "/") -> dict[str, bytes | None]:
    """Every path below ``top`` -> its bytes (None for a directory)."""
    out: dict[str, bytes | None] = {}
    for dirpath, _dirnames, filenames in ns.walk(top):
        if dirpath.startswith(SKIP):
            continue
        out[dirpath] = None
        for name in filenames:
            p = dirpath.rstrip("/") + "/" + name
            out[p] = ns.read_bytes(p)
    return out


def env_files(env: OanixEnv) -> dict[str, bytes | None]:
    return files(env.namespace)


def rewrite(path: Path, change: Callable[[SnapshotData], None]) -> None:
    """Change the rows of the snapshot at ``path`` and write it back with a valid digest."""
    data = read_snapshot(path)
    change(data)
    write_snapshot(path, data, "test")


def set_meta(path: Path, key: str, value: str) -> None:
    """Set one meta row in place and fix the digest (a raw SQLite edit)."""
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        meta = dict(con.execute("SELECT key, value FROM meta"))
        objects = [ObjectRow(*r) for r in con.execute("SELECT id, kind, state FROM objects")]
        mounts = [MountRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6])) for r in
                  con.execute("SELECT * FROM mounts")]
        sizes = list(con.execute("SELECT sha256, size FROM blobs"))
        con.execute("UPDATE meta SET value = ? WHERE key = 'digest'",
                    (_digest(meta, objects, mounts, sizes),))
    con.close()


__all__ = ["FORMAT_VERSION", "blob_key", "env_files", "files", "rewrite", "set_meta"]
