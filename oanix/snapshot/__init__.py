"""Snapshots: an environment in one portable file, restored in another process.

``env.snapshot(path)`` writes the mount table and the state of every stateful service to
one SQLite file (the format is documented, table by table, in ``oanix.snapshot.format``);
``OanixEnv.restore(path)`` builds the same environment back. ``oanix.migrate`` moves a
running environment to another process: drain, snapshot, resume there
(``oanix.snapshot.migrate``). How a service takes part: ``oanix.snapshot.protocol``.
"""

from __future__ import annotations

from .format import FORMAT, FORMAT_VERSION, MAX_SNAPSHOT_BYTES, read_snapshot
from .protocol import SnapshotReader, Snapshottable, SnapshotWriter
from .registry import KINDS
from .tree import Entry, content_hash

__all__ = ["FORMAT", "FORMAT_VERSION", "KINDS", "MAX_SNAPSHOT_BYTES", "Entry",
           "SnapshotReader", "SnapshotWriter", "Snapshottable", "content_hash",
           "read_snapshot"]
