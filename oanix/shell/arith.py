"""Shell arithmetic (``$(( ))``, ``(( ))``, ``for ((;;))``): 64-bit wrapping integers like bash."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

_ARITH_TOKEN = re.compile(r"\s*(\d+#[0-9a-zA-Z@_]+|0[xX][0-9a-fA-F]+|\d+|[A-Za-z_][A-Za-z0-9_]*|"
                          r"<<=|>>=|\+\+|--|\*\*|&&|\|\||<<|>>|<=|>=|==|!=|[-+*/%&^|]=|"
                          r"[-+*/%<>&^|!~?:=()])")
_BINOPS: list[set[str]] = [{"||"}, {"&&"}, {"|"}, {"^"}, {"&"}, {"==", "!="},
                           {"<", "<=", ">", ">="}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "%"},
                           {"**"}]


def _wrap(v: int) -> int:
    """``v`` as a 64-bit signed integer (two's complement wrap-around, as sh does)."""
    return ((v + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _shift_op(a: int, b: int, left: bool) -> int:
    b &= 63  # the shift count taken modulo the width, as the hardware sh runs on does
    return _wrap(a << b) if left else a >> b


_OPS: dict[str, Callable[[int, int], int]] = {
    "||": lambda a, b: int(bool(a) or bool(b)), "&&": lambda a, b: int(bool(a) and bool(b)),
    "|": operator.or_, "^": operator.xor, "&": operator.and_,
    "==": lambda a, b: int(a == b), "!=": lambda a, b: int(a != b),
    "<": lambda a, b: int(a < b), "<=": lambda a, b: int(a <= b),
    ">": lambda a, b: int(a > b), ">=": lambda a, b: int(a >= b),
    "<<": lambda a, b: _shift_op(a, b, True), ">>": lambda a, b: _shift_op(a, b, False),
    "+": operator.add, "-": operator.sub,
    "*": operator.mul, "/": _c_div, "%": lambda a, b: a - b * _c_div(a, b),
    "**": lambda a, b: pow(a, b, 1 << 64)}


def _binop(op: str, a: int, b: int) -> int:
    if op in ("/", "%") and b == 0:
        raise ZeroDivisionError("division by zero")
    if op == "**" and b < 0:
        raise ValueError("exponent less than 0")
    return _wrap(_OPS[op](a, b))


def arith_eval(expr: str, get: Callable[[str], str], setv: Callable[[str, str], None],
               depth: int = 0) -> int:
    """Evaluate a shell arithmetic expression (C integer semantics, assignments)."""
    toks: list[str] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _ARITH_TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"syntax error: invalid token at '{expr[pos:].strip()}'")
        toks.append(m.group(1))
        pos = m.end()
    if not toks:
        return 0
    i = 0

    def peek() -> str | None:
        return toks[i] if i < len(toks) else None

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise ValueError("syntax error: operand expected")
        i += 1
        return toks[i - 1]

    def value(name: str) -> int:
        raw = get(name).strip()
        if not raw:
            return 0
        try:
            return _wrap(int(raw, 0) if not re.fullmatch(r"0\d+", raw) else int(raw, 8))
        except ValueError:
            if depth > 20:
                raise ValueError("expression recursion level exceeded") from None
            return arith_eval(raw, get, setv, depth + 1)

    def assign() -> int:
        nonlocal i
        if i + 1 < len(toks) and re.match(r"[A-Za-z_]", toks[i]) and \
                re.fullmatch(r"(<<|>>|[-+*/%&^|])?=", toks[i + 1]):
            name, op = toks[i], toks[i + 1]
            i += 2
            rhs = assign()
            v = rhs if op == "=" else _binop(op[:-1], value(name), rhs)
            setv(name, str(v))
            return v
        return ternary()

    def ternary() -> int:
        cond = binary(0)
        if peek() == "?":
            take()
            a = assign()
            if take() != ":":
                raise ValueError("syntax error: ':' expected")
            b = assign()
            return a if cond else b
        return cond

    def binary(level: int) -> int:
        if level == len(_BINOPS):
            return unary()
        left = binary(level + 1)
        while peek() in _BINOPS[level]:
            op = take()
            right = binary(level + 1) if op != "**" else binary(level)
            left = _binop(op, left, right)
        return left

    def unary() -> int:
        t = peek()
        if t in ("-", "+", "!", "~"):
            take()
            v = unary()
            return _wrap({"-": -v, "+": v, "!": int(not v), "~": ~v}[t])
        if t in ("++", "--"):
            take()
            name = take()
            v = _wrap(value(name) + (1 if t == "++" else -1))
            setv(name, str(v))
            return v
        return postfix()

    def postfix() -> int:
        t = take()
        if t == "(":
            v = assign()
            if take() != ")":
                raise ValueError("syntax error: ')' expected")
            return v
        if "#" in t:
            base, _, digits = t.partition("#")
            try:
                return _wrap(int(digits, int(base)))
            except ValueError:
                raise ValueError(f"value too great for base (error token is \"{t}\")") from None
        if t[0].isdigit():
            return _wrap(int(t, 0) if not re.fullmatch(r"0\d+", t) else int(t, 8))
        if re.match(r"[A-Za-z_]", t):
            v = value(t)
            if peek() in ("++", "--"):
                op = take()
                setv(t, str(_wrap(v + (1 if op == "++" else -1))))
            return v
        raise ValueError(f"syntax error: operand expected (error token is \"{t}\")")

    result = assign()
    if i != len(toks):
        raise ValueError(f"syntax error in expression (error token is \"{toks[i]}\")")
    return result
