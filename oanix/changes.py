"""Changes: what a run or an overlay changed in a tree, as namespace paths."""

from __future__ import annotations

import attrs

__all__ = ["Changes"]


@attrs.frozen
class Changes:
    """Paths added, modified and deleted, each sorted; ``refused`` lists the changes a
    service would not take, as ``(path, reason)`` pairs, so nothing is lost silently.

    A directory that appears counts as added; a deleted directory is listed together with
    everything that was below it.
    """

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted or self.refused)
