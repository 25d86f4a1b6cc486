"""Regular expressions from scripts (grep, sed, awk, ``[[ =~ ]]``), bounded in time.

A backtracking match holds the GIL, so no cancel scope can stop it from outside: a
pattern like ``^(a|aa)+b$`` on a long line would hang the process. Patterns given by a
script are compiled with the ``regex`` package, whose matcher takes a ``timeout``: each
call gets the time left to the command line, at most ``MATCH_LIMIT`` seconds. When the
command line's time is up the shell's cancellation is raised; otherwise
``RegexTimeout`` (the command reports it and fails with status 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, AnyStr, Generic

import regex  # type: ignore[import-untyped]

from .cancel import Cancelled, current

__all__ = ["MATCH_LIMIT", "RegexTimeout", "TimedPattern", "compile", "error"]

MATCH_LIMIT = 10.0  # seconds one match call may take
error = regex.error


class RegexTimeout(Exception):
    """One match of a script's regular expression ran past ``MATCH_LIMIT``."""


def _budget() -> float:
    scope = current()
    left = scope.remaining() if scope is not None else None
    return MATCH_LIMIT if left is None else max(min(left, MATCH_LIMIT), 1e-3)


def _timed_out(pattern: object) -> BaseException:
    scope = current()
    hit = scope.expired_scope() if scope is not None else None
    if hit is not None:
        return Cancelled(hit)
    return RegexTimeout(f"regular expression {pattern!r}: a match took more than "
                        f"{MATCH_LIMIT:g} s")


class TimedPattern(Generic[AnyStr]):
    """A compiled pattern whose every call is bounded in time (see the module).

    The methods are those of ``re.Pattern`` that the shell uses.

    Locking: none needed; a compiled pattern is immutable and thread-safe.
    """

    def __init__(self, pattern: AnyStr, flags: int = 0) -> None:
        self._rx: Any = regex.compile(pattern, flags)
        self.pattern: AnyStr = pattern

    def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, timeout=_budget(), **kw)
        except TimeoutError:
            raise _timed_out(self.pattern) from None

    def search(self, string: AnyStr, pos: int = 0, endpos: int | None = None) -> Any:
        return self._call(self._rx.search, string, pos, endpos)

    def match(self, string: AnyStr, pos: int = 0, endpos: int | None = None) -> Any:
        return self._call(self._rx.match, string, pos, endpos)

    def fullmatch(self, string: AnyStr, pos: int = 0, endpos: int | None = None) -> Any:
        return self._call(self._rx.fullmatch, string, pos, endpos)

    def finditer(self, string: AnyStr) -> Iterator[Any]:
        it = self._call(self._rx.finditer, string)
        while True:
            try:
                m = next(it)
            except StopIteration:
                return
            except TimeoutError:
                raise _timed_out(self.pattern) from None
            yield m

    def split(self, string: AnyStr, maxsplit: int = 0) -> list[Any]:
        result: list[Any] = self._call(self._rx.split, string, maxsplit)
        return result

    def sub(self, repl: Any, string: AnyStr, count: int = 0) -> AnyStr:
        result: AnyStr = self._call(self._rx.sub, repl, string, count)
        return result

    def subn(self, repl: Any, string: AnyStr, count: int = 0) -> tuple[AnyStr, int]:
        result: tuple[AnyStr, int] = self._call(self._rx.subn, repl, string, count)
        return result


def compile(pattern: AnyStr, flags: int = 0) -> TimedPattern[AnyStr]:
    """``pattern`` (Python ``re`` syntax, ``re`` flags) compiled with a time bound.

    Raises:
        regex.error (``rx.error``): the pattern is invalid.
    """
    return TimedPattern(pattern, flags)
