"""Storage services: trees of files held in memory, computed, layered, on the host or in
an SQLite database.

``FsspecFs`` and ``SqliteFs`` are imported on first use: fsspec takes longer to import than
the rest of oanix together, and most programs (``oanix-run``, a sandboxed run) need
neither.
"""

from typing import TYPE_CHECKING, Any

from .cow import CowFs
from .func import FuncFs
from .map import MapFs
from .mem import MemFs
from .workspace import WorkspaceFs

if TYPE_CHECKING:
    from .fsspec import FsspecFs
    from .sqlite import SqliteFs

__all__ = ["CowFs", "FsspecFs", "FuncFs", "MapFs", "MemFs", "SqliteFs", "WorkspaceFs"]


def __getattr__(name: str) -> Any:
    if name == "FsspecFs":
        from .fsspec import FsspecFs

        return FsspecFs
    if name == "SqliteFs":
        from .sqlite import SqliteFs

        return SqliteFs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
