"""Changes: what a run or an overlay changed in a tree, as namespace paths."""

from __future__ import annotations

import attrs

__all__ = ["Changes"]


@attrs.frozen
class Changes:
    """Paths added, modified and deleted, each sorted; ``refused`` lists the changes a
    service would not take, as ``(path, reason)`` pairs, so nothing is lost silently.

    Every path is listed, files and directories: a deleted directory comes with everything
    that was below it, and a path whose kind changed (a file replaced by a directory or
    the reverse) is both deleted and added. To apply the changes elsewhere: remove
    ``deleted`` deepest first (reverse sorted order), create ``added`` in sorted order
    (parents first), then rewrite ``modified``.
    """

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted or self.refused)
