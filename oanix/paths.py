"""Namespace paths: POSIX-style, absolute, normalised in one place.

A normalised path starts with ``/``, has no empty, ``.`` or ``..`` components and no
trailing slash (except the root ``/`` itself). ``..`` never climbs above the root, as in
Plan 9: ``/../etc`` is ``/etc``. A relative path is taken from the root.
"""

from __future__ import annotations

from .errors import InvalidPath

__all__ = ["ROOT", "basename", "dirname", "is_within", "join", "normalize", "parts",
           "relative_to", "split"]

ROOT = "/"


def normalize(path: str) -> str:
    """Return the normal form of ``path``.

    Raises:
        InvalidPath: ``path`` is not a str or contains a NUL byte.
    """
    if type(path) is not str:
        if isinstance(path, str):
            path = str(path)
        else:
            raise InvalidPath(repr(path), "path must be a str")
    if "\x00" in path:
        raise InvalidPath(path.replace("\x00", "\\x00"), "NUL byte in path")
    # Fast path: most paths are already normal.
    if (path[:1] == "/" and "//" not in path and "/." not in path
            and (path[-1] != "/" or len(path) == 1)):
        return path
    out: list[str] = []
    for part in path.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def split(path: str) -> tuple[str, str]:
    """Split a normalised path into ``(parent, name)``; the root splits into ``("/", "")``."""
    i = path.rfind("/")
    return (path[:i] or "/", path[i + 1:])


def dirname(path: str) -> str:
    """The parent of a normalised path (the root is its own parent)."""
    return split(path)[0]


def basename(path: str) -> str:
    """The last component of a normalised path (``""`` for the root)."""
    return path[path.rfind("/") + 1:]


def join(base: str, *names: str) -> str:
    """Join ``base`` and names below it, normalising the result.

    Unlike ``os.path.join`` a name that starts with ``/`` does not restart from the root:
    every name is taken relative to what precedes it.
    """
    return normalize("/".join((base, *names)))


def parts(path: str) -> list[str]:
    """The components of a normalised path (``[]`` for the root)."""
    return path.split("/")[1:] if path != "/" else []


def is_within(path: str, ancestor: str) -> bool:
    """Whether normalised ``path`` is ``ancestor`` or lies below it, by components."""
    if ancestor == "/":
        return True
    return path == ancestor or path.startswith(ancestor + "/")


def relative_to(path: str, ancestor: str) -> str:
    """``path`` re-rooted at ``ancestor``: ``relative_to("/a/b/c", "/a")`` is ``"/b/c"``."""
    if ancestor == "/":
        return path
    return path[len(ancestor):] or "/"
