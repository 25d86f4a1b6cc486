"""Helpers shared by the utilities: chunked input, usage errors, text/bytes."""

from __future__ import annotations

from collections.abc import Iterator

from ...errors import FsError
from ..context import Ctx
from ..table import _Usage as Usage

__all__ = ["CHUNK", "Usage", "chunks", "read_input", "text", "to_bytes"]

CHUNK = 1 << 20


def chunks(ctx: Ctx, name: str, size: int = CHUNK) -> Iterator[bytes]:
    """The content of ``name`` (``-`` is stdin) piece by piece; raises FsError.

    Files are read ``size`` bytes at a time so a large file never sits in memory whole;
    ``ctx.check()`` runs between pieces.
    """
    if name in ("-", "/dev/stdin"):
        data = ctx.stdin_stream.read_all()
        for i in range(0, len(data), size):
            ctx.check()
            yield data[i:i + size]
        return
    if name == "/dev/null":
        return
    with ctx.namespace.open(ctx.resolve(name), "rb") as f:
        while True:
            ctx.check()
            piece = f.read(size)
            if not piece:
                return
            yield piece


def read_input(ctx: Ctx, name: str) -> bytes | None:
    """The whole content of ``name`` (``-`` is stdin), or None after reporting an error."""
    try:
        return ctx.read_file(name)
    except FsError as e:
        ctx.fs_error(e, name)
        return None


def text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def to_bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")
