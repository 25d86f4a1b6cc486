"""Values parsed from users and guests: sizes, durations, counts and JSON, in one place.

Everything a manifest, a command line or a guest's request file gives oanix as text goes
through these parsers, so one spelling means the same everywhere and every refusal is a
typed error naming the field (or file) it came from:

* ``parse_size``: bytes, ``64k``, ``256M``, ``1.5GiB``, ``1_000_000``, ``1e6``. The
  suffixes K M G T P (any case) are binary (K = 1024), with or without ``B``/``iB``
  (``256M`` = ``256MB`` = ``256MiB``), as oanix has always read them; write digits for a
  decimal size. There is no E: ``1e6`` is an exponent. A fraction of a byte is dropped.
* ``parse_duration``: seconds (``2.5``) or ``500ms``, ``2s``, ``1m``, ``1.5h``, ``1d``.
* ``parse_count``: ``10_000``, ``1e6``; integral only.

Each takes an int, a finite float (for a count an integral one, as TOML gives ``1e9``)
or a str, refuses bools, negatives, NaN, infinities, empty text and anything
above its maximum (``2**63 - 1`` by default for sizes and counts, ``MAX_SECONDS`` for
durations), and raises ``InvalidArgument``. Exponents are bounded before any arithmetic,
so ``1e999999999`` costs nothing.

JSON: ``load_json`` is the one reader of JSON that came from outside. It refuses, as
``InvalidContent`` naming the file or field: text over ``max_bytes``, bytes that are not
UTF-8, nesting deeper than ``max_depth``, integers of more than ``MAX_INT_DIGITS`` digits,
``NaN``/``Infinity`` and numbers that overflow a float, and strings holding a lone
surrogate (``"\\ud800"``, which no UTF-8 writer can store). It never raises anything else
(no ``RecursionError``, no bare ``ValueError``). The writers (``dumps_pretty``,
``dumps_line``, ``dumps_compact``) never raise ``UnicodeEncodeError``: a lone surrogate in
a value built by the host is written escaped.

Locking: nothing here has state.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any, Final, NoReturn

from .errors import InvalidArgument, InvalidContent

__all__ = ["MAX_COUNT", "MAX_INT_DIGITS", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_SECONDS",
           "MAX_SIZE", "check_unicode", "copy_json", "dumps_compact", "dumps_line",
           "dumps_pretty", "expect_bool", "expect_int", "expect_number", "expect_str",
           "expect_strs", "expect_table", "finite_number", "load_json", "parse_count",
           "parse_duration", "parse_size"]

MAX_SIZE: Final = 2**63 - 1
MAX_COUNT: Final = 2**63 - 1
MAX_SECONDS: Final = 10**9  # about 31 years: beyond it a duration is a mistake
MAX_JSON_DEPTH: Final = 64
MAX_JSON_BYTES: Final = 64 << 20
MAX_INT_DIGITS: Final = 128
_MAX_TEXT: Final = 64  # characters of a size, duration or count
_MAX_EXPONENT: Final = 40

# no E (exa): "1e6" is an exponent, and "1e" would be a trap
_SIZE_UNITS: Final = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
                      "p": 1 << 50}
_TIME_UNITS: Final = {"": Fraction(1), "s": Fraction(1), "ms": Fraction(1, 1000),
                      "us": Fraction(1, 10**6), "m": Fraction(60), "h": Fraction(3600),
                      "d": Fraction(86400)}
_DIGITS = r"[0-9]+(?:_[0-9]+)*"
_NUMBER: Final = re.compile(
    rf"(?P<int>{_DIGITS})?(?:\.(?P<frac>{_DIGITS})?)?(?:[eE](?P<exp>[+-]?{_DIGITS}))?")
_SIZE_SUFFIX: Final = re.compile(r"(?P<unit>[kmgtp]?)(?:i?b)?", re.IGNORECASE)
_TIME_SUFFIX: Final = re.compile(r"(?P<unit>|s|ms|us|m|h|d)")
_NO_SUFFIX: Final = re.compile(r"(?P<unit>)")


def _number(text: str) -> tuple[Fraction, str] | None:
    """The leading decimal number of ``text`` exactly, and the rest; None if none."""
    m = _NUMBER.match(text)
    if m is None or (m["int"] is None and m["frac"] is None):
        return None
    digits = (m["int"] or "").replace("_", "")
    frac = (m["frac"] or "").replace("_", "")
    exp = int(m["exp"].replace("_", "")) if m["exp"] else 0
    if abs(exp) > _MAX_EXPONENT:
        return None
    value = Fraction(int(digits + frac or "0")) * Fraction(10) ** (exp - len(frac))
    return value, text[m.end():]


def _refuse(field: str, what: str, value: object) -> NoReturn:
    raise InvalidArgument(f"{field}: expected {what}, got {value!r}")


def _scaled(value: object, field: str, what: str, suffix: re.Pattern[str],
            units: Mapping[str, int | Fraction], fold: bool) -> Fraction:
    """``value`` (an int, a float, or a number with a unit suffix) as an exact Fraction."""
    if isinstance(value, bool):
        _refuse(field, what, value)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse(field, what, value)
        return Fraction(value)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        _refuse(field, what, value)
    text = value.strip()
    parsed = _number(text)
    if parsed is None:
        _refuse(field, what, value)
    number, rest = parsed
    m = suffix.fullmatch(rest.strip())
    if m is None:
        _refuse(field, what, value)
    unit = m["unit"].lower() if fold else m["unit"]
    return number * units[unit]


def _bounded_int(n: Fraction, field: str, what: str, value: object, minimum: int,
                 maximum: int, integral: bool = False) -> int:
    if integral and n.denominator != 1:
        _refuse(field, what, value)
    whole = math.floor(n)
    if whole < minimum or whole > maximum:
        raise InvalidArgument(f"{field}: {value!r} is out of range [{minimum}, {maximum}]")
    return whole


def parse_size(value: object, field: str, *, minimum: int = 0,
               maximum: int = MAX_SIZE) -> int:
    """A number of bytes: an int, or text like ``512``, ``64k``, ``1.5G``, ``256MiB``,
    ``1_000_000``, ``1e6``; suffixes K M G T P are binary, ``B``/``iB`` optional.
    A fraction of a byte is dropped (``1.1k`` is 1126).

    Raises:
        InvalidArgument: naming ``field``: not a size, or outside [minimum, maximum].
    """
    what = "a size in bytes like 4096, 64k, 1.5G or 256MiB"
    n = _scaled(value, field, what, _SIZE_SUFFIX, _SIZE_UNITS, fold=True)
    return _bounded_int(n, field, what, value, minimum, maximum)


def parse_count(value: object, field: str, *, minimum: int = 0,
                maximum: int = MAX_COUNT) -> int:
    """A whole number: an int, an integral float, or text like ``10_000`` or ``1e6``.

    Raises:
        InvalidArgument: naming ``field``: not a whole number, or outside [minimum, maximum].
    """
    what = "a count (a whole number like 1000, 10_000 or 1e6)"
    n = _scaled(value, field, what, _NO_SUFFIX, {"": 1}, fold=False)
    return _bounded_int(n, field, what, value, minimum, maximum, integral=True)


def parse_duration(value: object, field: str, *, allow_zero: bool = False,
                   maximum: float = MAX_SECONDS) -> float:
    """Seconds: a number, or text like ``2.5``, ``500ms``, ``2s``, ``1m``, ``1.5h``, ``1d``.

    Raises:
        InvalidArgument: naming ``field``: not a duration, negative, zero (unless
            ``allow_zero``) or above ``maximum``.
    """
    what = "a duration like 2.5, 500ms, 2s, 1m or 1.5h"
    n = _scaled(value, field, what, _TIME_SUFFIX, _TIME_UNITS, fold=False)
    if n < 0 or (n == 0 and not allow_zero) or n > Fraction(maximum):
        low = "[0" if allow_zero else "(0"
        raise InvalidArgument(f"{field}: {value!r} is out of range {low}, {maximum:g}] seconds")
    return float(n)


def check_unicode(text: str, field: str) -> str:
    """``text`` if it can be written as UTF-8 (no lone surrogate), else InvalidArgument."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgument(f"{field}: a lone surrogate {text[e.start]!r} at {e.start} "
                              "cannot be stored as UTF-8") from None
    return text


# -- JSON -------------------------------------------------------------------------------------

class _Refused(Exception):
    """Raised from the json hooks; becomes InvalidContent."""


def _no_constant(name: str) -> NoReturn:
    raise _Refused(f"{name} is not valid JSON")


def _int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 2 * MAX_INT_DIGITS:
        raise _Refused(f"a number of {len(text)} characters (at most {2 * MAX_INT_DIGITS})")
    f = float(text)
    if not math.isfinite(f):
        raise _Refused(f"the number {text[:40]} does not fit a float")
    return f


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _depth_over(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        children = v.values() if isinstance(v, dict) else v
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def load_json(data: bytes | str, what: str, *, max_bytes: int = MAX_JSON_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The one JSON value in ``data``, strictly (see the module docstring).

    Raises:
        InvalidContent: ``what`` (a file path or a field name) as its path and the reason,
            starting "not valid JSON", as its message (``e.strerror``).
    """
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidContent(what, "not valid JSON: a lone surrogate in the text") from None
    if len(data) > max_bytes:
        raise InvalidContent(what, f"not valid JSON: {len(data)} bytes (at most {max_bytes})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidContent(what, f"not valid JSON: not UTF-8: {e}") from None
    return _parse(text, what, max_depth, surrogates=False)


def _parse(text: str, what: str, max_depth: int, surrogates: bool) -> Any:
    """``text`` parsed; lone surrogate escapes refused unless ``surrogates``."""
    def refuse(reason: str) -> NoReturn:
        raise InvalidContent(what, f"not valid JSON: {reason}")

    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=_int,
                           parse_float=_float)
    except RecursionError:
        refuse(f"nested deeper than {max_depth}")
    except (_Refused, ValueError) as e:  # ValueError: JSONDecodeError
        refuse(str(e))
    if (text.count("[") + text.count("{") > max_depth and isinstance(value, dict | list)
            and _depth_over(value, max_depth)):
        refuse(f"nested deeper than {max_depth}")
    if not surrogates and _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            refuse("a string holds a lone surrogate (an unpaired \\ud800-\\udfff escape)")
    return value


def _dumps(value: Any, **kw: Any) -> str:
    """``json.dumps`` with non-ASCII kept, except lone surrogates: then all escaped."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, **kw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it escaped
        return json.dumps(value, ensure_ascii=True, allow_nan=False, **kw)
    return text


def dumps_pretty(value: Any, indent: int = 2) -> bytes:
    """``value`` as UTF-8 JSON indented by ``indent``, with a final newline."""
    return (_dumps(value, indent=indent) + "\n").encode("utf-8")


def dumps_line(value: Any) -> bytes:
    """``value`` as one compact UTF-8 JSON line, with its newline."""
    return (_dumps(value, separators=(",", ":")) + "\n").encode("utf-8")


def dumps_compact(value: Any, sort_keys: bool = False) -> str:
    """``value`` as compact one-line JSON (a JSON Lines record, without the newline); its
    ``.encode("utf-8")`` never fails."""
    return _dumps(value, separators=(",", ":"), sort_keys=sort_keys)


def copy_json(value: Any, what: str) -> Any:
    """A deep copy of ``value``, which must be plain JSON data: dicts with str keys, lists,
    str, int, finite float, bool, None (a tuple or an int key would change on the way
    through JSON, so it is refused rather than converted).

    Raises:
        InvalidArgument: naming ``what``.
    """
    try:
        # host data: a lone surrogate is kept (and written escaped), not refused
        copied = _parse(json.dumps(value, allow_nan=False), what, MAX_JSON_DEPTH,
                        surrogates=True)
    except InvalidContent as exc:
        raise InvalidArgument(f"{what} is not JSON data: {exc.strerror}") from None
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


# -- fields of parsed documents (manifests, receipts) --------------------------------------
# Each checks one field of a document already parsed and names it (``where``) when it is
# the wrong type: ``InvalidArgument: manifest limits.fuel: expected an integer, got 'x'``.

def expect_str(value: object, where: str) -> str:
    """``value`` when it is a string."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}: expected a string, got {value!r}")
    return value


def expect_bool(value: object, where: str) -> bool:
    """``value`` when it is true or false."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{where}: expected true or false, got {value!r}")
    return value


def expect_int(value: object, where: str) -> int:
    """``value`` when it is an integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{where}: expected an integer, got {value!r}")
    return value


def expect_number(value: object, where: str) -> int | float:
    """``value`` when it is a number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{where}: expected a number, got {value!r}")
    return value


def expect_strs(value: object, where: str) -> tuple[str, ...]:
    """``value`` when it is a list of strings, as a tuple."""
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise InvalidArgument(f"{where}: expected a list of strings, got {value!r}")
    return tuple(expect_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def expect_table(value: object, where: str, known: Iterable[str] | None = None,
                 required: Iterable[str] = ()) -> dict[str, Any]:
    """``value`` as a dict when it is a table (a JSON object) with no key outside
    ``known`` (when given) and every key of ``required``."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{where}: expected a table, got {type(value).__name__}")
    table = dict(value)
    if known is not None:
        allowed = frozenset(known)
        unknown = set(table) - allowed
        if unknown:
            raise InvalidArgument(f"{where}: unknown key(s) {sorted(unknown)}; "
                                  f"known: {sorted(allowed)}")
    missing = [k for k in required if k not in table]
    if missing:
        raise InvalidArgument(f"{where}: missing {missing[0]!r}")
    return table
