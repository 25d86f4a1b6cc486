"""Helpers shared by the utilities: chunked input, usage errors, text/bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...errors import FsError, IsADirectory
from ..cancel import check
from ..context import Ctx, Input
from ..table import Usage

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


def int_arg(ctx: Ctx, s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise Usage(f"invalid number: '{s}'") from None



def split_lines(data: bytes) -> list[bytes]:
    """``data`` split into lines, each keeping its newline."""
    return data.splitlines(keepends=True)


def file_inputs(ctx: Ctx, files: list[str]) -> Iterator[tuple[str, bytes | None]]:
    """(name, content) for each operand (stdin if none); content None after an error."""
    for f in files or ["-"]:
        try:
            yield f, ctx.read_file(f)
        except FsError as e:
            ctx.fs_error(e, f)
            yield f, None


STREAM_CHUNK = 64 << 10


class FileInput(Input):
    """A namespace file read chunk by chunk. Locking: none; one command."""

    def __init__(self, f: Any) -> None:
        super().__init__(b"")
        self.f = f

    def _more(self) -> bytes:
        check()
        data: bytes = self.f.read(STREAM_CHUNK)
        return data

    def close(self) -> None:
        self.f.close()


def input_streams(ctx: Ctx, files: list[str]) -> Iterator[tuple[str, Input | None]]:
    """(name, stream) for each operand (stdin if none), read piecewise; the stream is
    None after an error (reported)."""
    for f in files or ["-"]:
        if f in ("-", "/dev/stdin"):
            yield f, ctx.stdin_stream
            continue
        if f == "/dev/null":
            yield f, Input(b"")
            continue
        try:
            path = ctx.resolve(f)
            if ctx.namespace.is_dir(path):
                raise IsADirectory(path)
            handle = ctx.namespace.open(path, "rb")
        except FsError as e:
            ctx.fs_error(e, f)
            yield f, None
            continue
        stream = FileInput(handle)
        try:
            yield f, stream
        finally:
            stream.close()


