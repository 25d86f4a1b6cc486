"""jq values: errors, jq's order and equality, number and JSON text as jq 1.6 prints
them, and the primitive operations (indexing, slicing, arithmetic, paths)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

__all__ = ["JqError", "JqSyntaxError", "dumps", "equal", "fmt_number", "sort_key", "truthy",
           "type_name"]

Node = tuple[Any, ...]
MISSING: Any = object()  # "no value" where None is jq's null
_CMP_OPS = frozenset(["==", "!=", "<", "<=", ">", ">="])

class JqError(Exception):
    """A jq runtime error; ``value`` is what ``catch`` receives."""

    def __init__(self, value: Any) -> None:
        super().__init__(value if isinstance(value, str) else dumps(value))
        self.value = value


class JqSyntaxError(Exception):
    """The filter does not parse."""


class _Break(Exception):
    def __init__(self, label: int) -> None:
        super().__init__(label)
        self.label = label


# -- values ---------------------------------------------------------------------------------


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _short(v: Any) -> str:
    s = dumps(v)
    return s if len(s) < 11 else s[:10] + "..."


def _desc(v: Any) -> str:
    return f"{type_name(v)} ({_short(v)})"


def sort_key(v: Any) -> tuple[Any, ...]:
    """jq's total order: null < false < true < numbers < strings < arrays < objects."""
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (1 + v,)
    if isinstance(v, int | float):
        return (3, v)
    if isinstance(v, str):
        return (4, v)
    if isinstance(v, list):
        return (5, tuple(sort_key(x) for x in v))
    keys = sorted(v)
    return (6, tuple(keys), tuple(sort_key(v[k]) for k in keys))


def equal(a: Any, b: Any) -> bool:
    return sort_key(a) == sort_key(b)


def truthy(v: Any) -> bool:
    return v is not None and v is not False


def _num(x: float | int) -> float | int:
    """Integral floats become ints (jq prints 4/2 as 2)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 2 ** 63 and (
            x != 0 or math.copysign(1, x) > 0):
        return int(x)
    return x


def fmt_number(x: float | int) -> str:
    """A number printed as jq 1.6 does (doubles, shortest round-trip digits)."""
    f = float(x)
    if math.isnan(f):
        return "null"
    if math.isinf(f):
        f = math.copysign(1.7976931348623157e308, f)
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    sign, digits_t, exp = Decimal(repr(f)).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    exp = int(exp) + len("".join(map(str, digits_t))) - len(digits)
    decpt = len(digits) + exp
    neg = "-" if sign else ""
    if decpt <= -4 or decpt - len(digits) > 15:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        e = decpt - 1
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if decpt <= 0:
        return f"{neg}0.{'0' * -decpt}{digits}"
    if decpt >= len(digits):
        return neg + digits + "0" * (decpt - len(digits))
    return f"{neg}{digits[:decpt]}.{digits[decpt:]}"


_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
        "\f": "\\f", "\x7f": "\\u007f"}
_NEEDS_ESC = re.compile(r'["\\\x00-\x1f\x7f]')


def _dump_str(s: str, ascii_only: bool = False) -> str:
    out = _NEEDS_ESC.sub(lambda m: _ESC.get(m.group(), f"\\u{ord(m.group()):04x}"), s)
    if ascii_only:
        out = "".join(c if ord(c) < 128 else _ascii_escape(c) for c in out)
    return '"' + out + '"'


def _ascii_escape(c: str) -> str:
    n = ord(c)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


def dumps(v: Any, indent: int | str = 0, sort_keys: bool = False, ascii_only: bool = False,
          _level: int = 0) -> str:
    """JSON text as jq prints it: compact (``indent`` 0) or indented."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int | float):
        return fmt_number(v)
    if isinstance(v, str):
        return _dump_str(v, ascii_only)
    if not v:
        return "[]" if isinstance(v, list) else "{}"
    unit = indent if isinstance(indent, str) else " " * indent
    pad, inner = ("\n" + unit * _level, "\n" + unit * (_level + 1)) if unit else ("", "")
    sep = ":" if not unit else ": "
    if isinstance(v, list):
        items = [dumps(x, indent, sort_keys, ascii_only, _level + 1) for x in v]
        return "[" + inner + ("," + inner).join(items) + pad + "]"
    keys = sorted(v) if sort_keys else list(v)
    items = [_dump_str(k, ascii_only) + sep + dumps(v[k], indent, sort_keys, ascii_only,
                                                    _level + 1) for k in keys]
    return "{" + inner + ("," + inner).join(items) + pad + "}"



# -- primitive operations -------------------------------------------------------------------


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _index(t: Any, k: Any) -> Any:
    if isinstance(k, dict) and isinstance(t, list | str | type(None)) and (
            set(k) <= {"start", "end"}):
        return _slice(t, k.get("start"), k.get("end"))
    if t is None and (isinstance(k, str) or _is_num(k) or k is None):
        return None
    if isinstance(t, dict) and isinstance(k, str):
        return t.get(k)
    if isinstance(t, list) and _is_num(k):
        i = math.floor(k)
        if i < 0:
            i += len(t)
        return t[i] if 0 <= i < len(t) else None
    if isinstance(t, list) and isinstance(k, list):
        return _indices(t, k)
    kdesc = f'string "{k}"' if isinstance(k, str) else type_name(k)
    raise JqError(f"Cannot index {type_name(t)} with {kdesc}")


def _slice(t: Any, lo: Any, hi: Any) -> Any:
    if t is None:
        return None
    if not isinstance(t, list | str):
        raise JqError(f"Cannot index {type_name(t)} with object")
    if (lo is not None and not _is_num(lo)) or (hi is not None and not _is_num(hi)):
        raise JqError("Start and end indices of an array slice must be numbers")
    n = len(t)

    def clamp(x: Any, default: int) -> int:
        if x is None:
            return default
        i = int(math.floor(x) if x >= 0 else -math.ceil(-x))
        i = i + n if i < 0 else i
        return min(max(i, 0), n)
    a, b = clamp(lo, 0), clamp(hi, n)
    return t[a:max(a, b)]


def _iterate(t: Any) -> Iterator[Any]:
    if isinstance(t, list):
        yield from t
    elif isinstance(t, dict):
        yield from t.values()
    else:
        raise JqError(f"Cannot iterate over {_desc(t)}" if t is not None
                      else "Cannot iterate over null")


def _binop(op: str, a: Any, b: Any) -> Any:
    if op in _CMP_OPS:
        if op == "==":
            return equal(a, b)
        if op == "!=":
            return not equal(a, b)
        ka, kb = sort_key(a), sort_key(b)
        return {"<": ka < kb, "<=": ka <= kb, ">": ka > kb, ">=": ka >= kb}[op]
    if op == "+":
        if a is None:
            return b
        if b is None:
            return a
        if _is_num(a) and _is_num(b):
            return _num(a + b)
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, list) and isinstance(b, list):
            return a + b
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **b}
        raise JqError(f"{_desc(a)} and {_desc(b)} cannot be added")
    if op == "-":
        if _is_num(a) and _is_num(b):
            return _num(a - b)
        if isinstance(a, list) and isinstance(b, list):
            return [x for x in a if not any(equal(x, y) for y in b)]
        raise JqError(f"{_desc(a)} and {_desc(b)} cannot be subtracted")
    if op == "*":
        if _is_num(a) and _is_num(b):
            return _num(a * b)
        if (isinstance(a, str) and _is_num(b)) or (isinstance(b, str) and _is_num(a)):
            s, k = (a, b) if isinstance(a, str) else (b, a)
            return None if k <= 0 else s * max(1, math.ceil(k) if k < 1 else int(k))
        if isinstance(a, dict) and isinstance(b, dict):
            return _deep_merge(a, b)
        raise JqError(f"{_desc(a)} and {_desc(b)} cannot be multiplied")
    if op == "/":
        if _is_num(a) and _is_num(b):
            if b == 0:
                raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided because the "
                              "divisor is zero")
            return _num(a / b)
        if isinstance(a, str) and isinstance(b, str):
            return _split(a, b)
        raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided")
    if op == "%":
        if _is_num(a) and _is_num(b):
            ia, ib = int(a), int(b)
            if ib == 0:
                raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided because the "
                              "divisor is zero")
            r = abs(ia) % abs(ib)
            return -r if ia < 0 else r
        raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided")
    raise JqError(f"unknown operator {op}")


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(
            v, dict) else v
    return out


def _split(s: str, sep: str) -> list[str]:
    if s == "":
        return []
    return list(s) if sep == "" else s.split(sep)


def _getpath(v: Any, p: Any) -> Any:
    if not isinstance(p, list | tuple):
        raise JqError("Path must be specified as an array")
    for k in p:
        if v is None:
            return None
        v = _index(v, k)
    return v


def _setpath(v: Any, p: Any, new: Any) -> Any:
    if not p:
        return new
    k, rest = p[0], p[1:]
    if isinstance(k, dict):
        if v is None:
            v = []
        if not isinstance(v, list):
            raise JqError(f"Cannot update field at object index of {type_name(v)}")
        n = len(v)
        cur = _slice(v, k.get("start"), k.get("end"))
        repl = _setpath(cur, rest, new)
        if not isinstance(repl, list):
            raise JqError("A slice of an array can only be assigned another array")
        lo = 0 if k.get("start") is None else _slice_bound(k["start"], n)
        hi = n if k.get("end") is None else max(lo, _slice_bound(k["end"], n))
        return v[:lo] + repl + v[hi:]
    if isinstance(k, str):
        if v is None:
            v = {}
        if not isinstance(v, dict):
            raise JqError(f"Cannot index {type_name(v)} with \"{k}\"")
        out = dict(v)
        out[k] = _setpath(v.get(k), rest, new)
        return out
    if _is_num(k):
        if v is None:
            v = []
        if not isinstance(v, list):
            raise JqError(f"Cannot index {type_name(v)} with number")
        i = int(k)
        if i < 0:
            i += len(v)
            if i < 0:
                raise JqError("Out of bounds negative array index")
        out_l = list(v) + [None] * max(0, i + 1 - len(v))
        out_l[i] = _setpath(out_l[i], rest, new)
        return out_l
    raise JqError(f"Cannot update field at object index of {type_name(v)}")


def _slice_bound(x: Any, n: int) -> int:
    i: int = math.floor(x)
    return min(max(i + n if i < 0 else i, 0), n)


def _delpaths(v: Any, ps: list[Any]) -> Any:
    for p in sorted(ps, key=lambda p: sort_key(list(p)), reverse=True):
        v = _delpath(v, list(p))
    return v


def _delpath(v: Any, p: list[Any]) -> Any:
    if v is None:
        return None
    if not p:
        return None
    k = p[0]
    if len(p) == 1:
        if isinstance(v, dict) and isinstance(k, str):
            return {a: b for a, b in v.items() if a != k}
        if isinstance(v, list) and _is_num(k):
            i = int(k) + (len(v) if k < 0 else 0)
            return v[:i] + v[i + 1:] if 0 <= i < len(v) else v
        if isinstance(v, list) and isinstance(k, dict):
            n = len(v)
            lo = 0 if k.get("start") is None else _slice_bound(k["start"], n)
            hi = n if k.get("end") is None else max(lo, _slice_bound(k["end"], n))
            return v[:lo] + v[hi:]
        raise JqError(f"Cannot delete field at index of {type_name(v)}")
    child = _index(v, k)
    return _setpath(v, [k], _delpath(child, p[1:]))


def _indices(t: Any, x: Any) -> Any:
    if t is None:
        return None
    if isinstance(t, str) and isinstance(x, str):
        if not x:
            return None
        return [m.start() for m in re.finditer("(?=" + re.escape(x) + ")", t)]
    if isinstance(t, list):
        sub = x if isinstance(x, list) else [x]
        if not sub:
            return None
        return [i for i in range(len(t) - len(sub) + 1)
                if all(equal(t[i + j], sub[j]) for j in range(len(sub)))]
    raise JqError(f"Cannot determine indices in {type_name(t)}")


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _contains(a[k], bv) for k, bv in b.items())
    if isinstance(a, list) and isinstance(b, list):
        return all(any(_contains(x, y) for x in a) for y in b)
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    if type_name(a) == type_name(b):
        return equal(a, b)
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot have their containment checked")


