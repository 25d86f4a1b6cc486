"""Storage services: trees of files held in memory, computed, layered or on the host."""

from .cow import CowFs
from .fsspec import FsspecFs
from .func import FuncFs
from .map import MapFs
from .mem import MemFs
from .workspace import WorkspaceFs

__all__ = ["CowFs", "FsspecFs", "FuncFs", "MapFs", "MemFs", "WorkspaceFs"]
