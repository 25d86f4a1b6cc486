"""What an in-process agent prints goes to its trial's log, not to the standard output.

An agent is a Python function; its ``print`` calls would mix with the CLI's output
(``--json`` must be the JSON document alone) and with other trials running at the same
time. ``sys.stdout`` is replaced, once, by a router that sends a thread's writes to the
sink that thread set, and every other write where it went before.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["captured_prints"]

_local = threading.local()
_install_lock = threading.Lock()


class _Router(io.TextIOBase):
    """``sys.stdout`` for the whole process. Locking: each thread writes its own sink;
    the fallback stream is the one it replaced."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, s: str) -> int:
        sink: io.StringIO | None = getattr(_local, "sink", None)
        return (sink or self.fallback).write(s)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self.fallback.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)


@contextlib.contextmanager
def captured_prints() -> Iterator[io.StringIO]:
    """Within this block, what this thread prints goes to the yielded buffer."""
    _install()
    sink = io.StringIO()
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = previous
