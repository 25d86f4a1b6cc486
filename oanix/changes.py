"""Changes: what a run or an overlay changed in a tree, as namespace paths; and
``unified_diff``, the content of those changes as ``diff -u`` shows it."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .service import FileService

__all__ = ["Changes", "unified_diff"]


@attrs.frozen
class Changes:
    """Paths added, modified and deleted, each sorted; ``refused`` lists the changes a
    service would not take, as ``(path, reason)`` pairs, so nothing is lost silently.

    Every path is listed, files and directories: a deleted directory comes with everything
    that was below it, and a path whose kind changed (a file replaced by a directory or
    the reverse) is both deleted and added. To apply the changes elsewhere: remove
    ``deleted`` deepest first (reverse sorted order), create ``added`` in sorted order
    (parents first), then rewrite ``modified``.

    ``added_dirs`` and ``deleted_dirs`` (sorted) are the directories among ``added`` and
    ``deleted``; every other path there is a file, and ``modified`` holds files only.
    ``CowFs.changes()`` fills them; a WASI run's changes (``RunResult.changes``) leave
    them empty. They tell kinds apart and are not compared: two Changes are equal when
    their paths are.
    """

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    added_dirs: tuple[str, ...] = attrs.field(default=(), eq=False)
    deleted_dirs: tuple[str, ...] = attrs.field(default=(), eq=False)

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted or self.refused)


_NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(before: FileService, after: FileService, changes: Changes, *,
                 context: int = 3) -> str:
    """The files of ``changes`` as a unified diff from ``before`` to ``after``: for each
    file, in path order, what ``diff -u --label a/<path> --label b/<path>`` prints (the
    side where the file does not exist is ``/dev/null``), hunks as ``difflib`` finds
    them, with ``context`` lines around each.

    A file is text when it is UTF-8 without a NUL byte; any other file is the one line
    ``Binary files a/<path> and b/<path> differ``. Directories, and empty files added or
    deleted, have no lines: ``changes`` lists them (``added_dirs``, ``deleted_dirs``).
    ``CowFs.diff()`` is this for an overlay (``before`` its base).
    """
    added = set(changes.added) - set(changes.added_dirs)
    deleted = set(changes.deleted) - set(changes.deleted_dirs)
    out: list[str] = []
    for path in sorted(added | deleted | set(changes.modified)):
        old = None if path in added and path not in deleted else before.read_bytes(path)
        new = None if path in deleted and path not in added else after.read_bytes(path)
        out.extend(_file_diff(path.lstrip("/"), old, new, context))
    return "".join(out)


def _file_diff(name: str, old: bytes | None, new: bytes | None, context: int) -> list[str]:
    """``diff -u`` of one file (None: it does not exist on that side)."""
    a = "/dev/null" if old is None else f"a/{name}"
    b = "/dev/null" if new is None else f"b/{name}"
    old_text, new_text = _text(old or b""), _text(new or b"")
    if old_text is None or new_text is None:
        return [f"Binary files {a} and {b} differ\n"]
    out = []
    for line in difflib.unified_diff(_lines(old_text), _lines(new_text), a, b, n=context):
        out.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE)
    return out


def _text(data: bytes) -> str | None:
    """``data`` as text, or None when it is binary."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _lines(text: str) -> list[str]:
    """The lines of ``text`` as diff splits them: at ``\\n`` only, each keeping it."""
    lines = [line + "\n" for line in text.split("\n")]
    if text.endswith("\n") or not text:
        lines.pop()
    else:
        lines[-1] = lines[-1][:-1]
    return lines
