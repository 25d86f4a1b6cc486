"""Strict JSON helpers shared by the services: no NaN or Infinity, no silent conversions."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from ..errors import InvalidArgument

__all__ = ["copy_json", "dumps_compact", "dumps_line", "dumps_pretty", "finite_number",
           "loads_strict"]


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that also refuses ``NaN``, ``Infinity`` and too deep nesting.

    Raises:
        ValueError: ``text`` is not one valid JSON value (or bytes not UTF-8).
    """
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _utf8(value: Any, end: str, **kw: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, **kw) + end
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (from a "\ud800" escape): keep it escaped
        return (json.dumps(value, ensure_ascii=True, allow_nan=False, **kw) + end).encode()


def dumps_pretty(value: Any) -> bytes:
    """``value`` as UTF-8 JSON indented by 2, with a final newline."""
    return _utf8(value, "\n", indent=2)


def dumps_line(value: Any) -> bytes:
    """``value`` as one compact UTF-8 JSON line, with its newline."""
    return _utf8(value, "\n", separators=(",", ":"))


def dumps_compact(value: Any) -> str:
    """``value`` as compact one-line JSON (a JSON Lines record, without the newline)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def copy_json(value: Any, what: str) -> Any:
    """A deep copy of ``value``, which must be plain JSON data: dicts with str keys, lists,
    str, int, finite float, bool, None (a tuple or an int key would change on the way
    through JSON, so it is refused rather than converted).

    Raises:
        InvalidArgument: naming ``what``.
    """
    try:
        copied = loads_strict(dumps_compact(value))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgument(f"{what} is not JSON data: {exc}") from None
    if copied != value or not _same_types(copied, value):
        raise InvalidArgument(
            f"{what} is not plain JSON data (only dict with str keys, list, str, int, "
            f"float, bool, None): {value!r}")
    return copied


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        # json gives exact builtin types; subclasses (bool vs int, str enums) are refused.
        return False
    if isinstance(a, dict):
        return all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None
