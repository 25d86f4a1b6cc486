"""The report of a sync's changes (``oanix.changes.Changes``), gathered as it goes.

Locking: none; a ``ChangeLog`` lives for one write-back, under the namespace's lock.
"""

from __future__ import annotations

from typing import Final

from ...changes import Changes
from ...errors import FsError

__all__ = ["NO_CHANGES", "ChangeLog", "reason"]


def reason(e: BaseException) -> str:
    """Why a change was refused, as ``Changes.refused`` says it."""
    if isinstance(e, FsError):
        return f"{type(e).__name__}: {e.strerror}"
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {e.strerror or e}"
    return f"{type(e).__name__}: {e}"


NO_CHANGES: Final = Changes()


class ChangeLog:
    """The added, modified, deleted and refused paths of one write-back."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.modified: list[str] = []
        self.deleted: list[str] = []
        self.refused: list[tuple[str, str]] = []

    def result(self) -> Changes:
        if not (self.added or self.modified or self.deleted or self.refused):
            return NO_CHANGES
        return Changes(tuple(sorted(set(self.added))), tuple(sorted(set(self.modified))),
                       tuple(sorted(set(self.deleted))),
                       tuple(sorted(set(self.refused))))
