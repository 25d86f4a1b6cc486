"""Small helpers for the host directories oanix stages into: never follow a link."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as stat_mod

__all__ = ["lstat_or_none", "remove_host"]


def lstat_or_none(path: str) -> os.stat_result | None:
    """``os.lstat(path)``, or None when it cannot be had."""
    try:
        return os.lstat(path)
    except OSError:
        return None


def remove_host(path: str) -> None:
    """Remove ``path``, a whole tree if it is a directory (a link itself, never what it
    points to); nothing if it is already gone."""
    st = lstat_or_none(path)
    if st is None:
        return
    if stat_mod.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
