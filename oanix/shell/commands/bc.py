"""Calculators: ``bc`` (arbitrary precision with ``scale``, ``ibase``/``obase``, variables,
arrays, ``define``, ``if``/``while``/``for``, ``-l``'s math library) and ``expr``.

bc numbers are exact decimals (``decimal.Decimal``) with a scale, truncated as bc does:
``*`` keeps ``min(a+b, max(scale, a, b))`` digits, ``/`` and ``%`` use ``scale``, ``^``
takes an integer exponent.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ..context import Ctx
from ..patterns import posix_regex
from ..table import COMMANDS, command, getopts
from ._util import text, to_bytes

__all__: list[str] = []

_CTX = decimal.Context(prec=4000, rounding=ROUND_DOWN, Emax=10**9, Emin=-10**9)

Num = tuple[Decimal, int]  # value, scale


class BcError(Exception):
    """A bc syntax or runtime error (reported, then bc goes on with the next line)."""


class _Quit(Exception):
    pass


class _Return(Exception):
    def __init__(self, value: Num) -> None:
        super().__init__()
        self.value = value


class _LoopCtl(Exception):
    def __init__(self, brk: bool) -> None:
        super().__init__()
        self.brk = brk


def _trunc(v: Decimal, scale: int) -> Decimal:
    return v.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_DOWN, context=_CTX)


def _scale_of(v: Decimal) -> int:
    exp = v.as_tuple().exponent
    return max(-int(exp), 0) if isinstance(exp, int) else 0


# -- lexer ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+|\\\n|/\*.*?\*/|\#[^\n]*)
  | (?P<nl>[\n;])
  | (?P<num>[0-9A-F]+(?:\.[0-9A-F]*)?|\.[0-9A-F]+)
  | (?P<str>"[^"]*")
  | (?P<name>[a-z_][a-z0-9_]*)
  | (?P<op>\+\+|--|\+=|-=|\*=|/=|%=|\^=|==|<=|>=|!=|&&|\|\||[-+*/%^=<>!(){}\[\],.])
""", re.VERBOSE | re.DOTALL)

_KEYWORDS = frozenset(["if", "else", "while", "for", "break", "continue", "quit", "halt",
                       "return", "define", "auto", "print", "length", "scale", "sqrt",
                       "read", "limits", "warranty"])


def _lex(src: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    i = 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if m is None:
            raise BcError(f"illegal character: {src[i]}")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append((kind, m.group()))
        i = m.end()
    toks.append(("eof", ""))
    return toks


# -- parser ---------------------------------------------------------------------------------

Node = tuple[Any, ...]


class _Parser:
    """Statements and expressions, with GNU bc's precedence (lowest first): ``||``,
    ``&&``, ``!``, relations, assignment, ``+ -``, ``* / %``, ``^``, unary ``-``,
    ``++ --``."""

    def __init__(self, src: str) -> None:
        self.toks = _lex(src)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i]

    def at(self, *vals: str) -> bool:
        return self.toks[self.i][1] in vals and self.toks[self.i][0] in ("op", "name", "nl")

    def take(self) -> tuple[str, str]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, v: str) -> None:
        t = self.take()
        if t[1] != v:
            raise BcError(f"syntax error: expected {v!r}, got {t[1]!r}")

    def skip_nl(self) -> None:
        while self.peek()[0] == "nl":
            self.i += 1

    def program(self) -> list[Node]:
        """Top-level statements; a syntax error skips to the next line."""
        out: list[Node] = []
        while True:
            self.skip_nl()
            if self.peek()[0] == "eof":
                return out
            start = self.i
            try:
                out.append(self.statement())
                if self.peek()[0] not in ("nl", "eof"):
                    raise BcError("syntax error")
            except BcError as e:
                out.append(("error", str(e)))
                self.i = max(self.i, start + 1)
                while self.peek()[0] != "eof" and self.peek() != ("nl", "\n"):
                    self.i += 1

    def block(self) -> Node:
        self.expect("{")
        return self.block_body()

    def block_body(self) -> Node:
        """Statements up to the ``}`` closing a block whose ``{`` was read."""
        body: list[Node] = []
        while True:
            self.skip_nl()
            if self.at("}"):
                self.take()
                return ("block", body)
            body.append(self.statement())

    def statement(self) -> Node:
        kind, v = self.peek()
        if kind == "str":
            self.take()
            return ("str", v[1:-1])
        if v == "{" and kind == "op":
            return self.block()
        if kind == "name" and v in _KEYWORDS:
            if v == "if":
                self.take()
                self.expect("(")
                cond = self.expr()
                self.expect(")")
                self.skip_nl()
                then = self.statement()
                save = self.i
                self.skip_nl()
                if self.at("else"):
                    self.take()
                    self.skip_nl()
                    return ("if", cond, then, self.statement())
                self.i = save
                return ("if", cond, then, None)
            if v == "while":
                self.take()
                self.expect("(")
                cond = self.expr()
                self.expect(")")
                self.skip_nl()
                return ("while", cond, self.statement())
            if v == "for":
                self.take()
                self.expect("(")
                init: Node | None = None if self.at(";") else self.expr()
                self.expect(";")
                test: Node | None = None if self.at(";") else self.expr()
                self.expect(";")
                step: Node | None = None if self.at(")") else self.expr()
                self.expect(")")
                self.skip_nl()
                return ("for", init, test, step, self.statement())
            if v in ("break", "continue", "quit", "halt", "limits", "warranty"):
                self.take()
                return (v,)
            if v == "return":
                self.take()
                if self.at("("):
                    self.take()
                    if self.at(")"):
                        self.take()
                        return ("return", None)
                    e = self.expr()
                    self.expect(")")
                    return ("return", e)
                if self.peek()[0] in ("nl", "eof") or self.at("}"):
                    return ("return", None)
                return ("return", self.expr())
            if v == "print":
                self.take()
                items: list[Node] = []
                while True:
                    k, t = self.peek()
                    if k == "str":
                        self.take()
                        items.append(("str", t[1:-1]))
                    else:
                        items.append(self.expr())
                    if not self.at(","):
                        return ("print", items)
                    self.take()
            if v == "define":
                return self.define()
        return ("expr", self.expr())

    def define(self) -> Node:
        self.expect("define")
        name = self.take()[1]
        self.expect("(")
        params: list[str] = []
        while not self.at(")"):
            p = self.take()[1]
            if self.at("["):
                self.take()
                self.expect("]")
                p += "[]"
            params.append(p)
            if self.at(","):
                self.take()
        self.take()
        self.skip_nl()
        self.expect("{")
        self.skip_nl()
        autos: list[str] = []
        if self.at("auto"):
            self.take()
            while True:
                a = self.take()[1]
                if self.at("["):
                    self.take()
                    self.expect("]")
                    a += "[]"
                autos.append(a)
                if not self.at(","):
                    break
                self.take()
        return ("define", name, params, autos, self.block_body())

    def expr(self) -> Node:
        return self.or_()

    def or_(self) -> Node:
        n = self.and_()
        while self.at("||"):
            self.take()
            n = ("or", n, self.and_())
        return n

    def and_(self) -> Node:
        n = self.not_()
        while self.at("&&"):
            self.take()
            n = ("and", n, self.not_())
        return n

    def not_(self) -> Node:
        if self.at("!"):
            self.take()
            return ("not", self.not_())
        return self.rel()

    def rel(self) -> Node:
        n = self.assign()
        if self.at("<", "<=", ">", ">=", "==", "!="):
            op = self.take()[1]
            return ("rel", op, n, self.assign())
        return n

    def assign(self) -> Node:
        n = self.add()
        if self.at("=", "+=", "-=", "*=", "/=", "%=", "^="):
            if n[0] not in ("var", "elem"):
                raise BcError("syntax error: assignment to a non-variable")
            op = self.take()[1]
            return ("assign", op, n, self.assign())
        return n

    def add(self) -> Node:
        n = self.mul()
        while self.at("+", "-"):
            op = self.take()[1]
            n = ("bin", op, n, self.mul())
        return n

    def mul(self) -> Node:
        n = self.pow_()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            n = ("bin", op, n, self.pow_())
        return n

    def pow_(self) -> Node:
        n = self.unary()
        if self.at("^"):
            self.take()
            return ("bin", "^", n, self.pow_())
        return n

    def unary(self) -> Node:
        if self.at("-"):
            self.take()
            return ("neg", self.unary())
        return self.incdec()

    def incdec(self) -> Node:
        if self.at("++", "--"):
            op = self.take()[1]
            target = self.primary()
            return ("pre", op, target)
        n = self.primary()
        if self.at("++", "--") and n[0] in ("var", "elem"):
            return ("post", self.take()[1], n)
        return n

    def primary(self) -> Node:
        kind, v = self.take()
        if kind == "num":
            return ("num", v)
        if kind == "op" and v == "(":
            n = self.expr()
            self.expect(")")
            return ("paren", n)
        if kind == "op" and v == ".":
            return ("var", "last")
        if kind == "name":
            if v in ("length", "scale", "sqrt") and self.at("("):
                self.take()
                arg = self.expr()
                self.expect(")")
                return ("builtin", v, arg)
            if v == "read" and self.at("("):
                self.take()
                self.expect(")")
                return ("num", "0")
            if self.at("("):
                self.take()
                args: list[Node] = []
                while not self.at(")"):
                    if self.peek()[0] == "name" and self.toks[self.i + 1][1] == "[":
                        name = self.take()[1]
                        self.take()
                        self.expect("]")
                        args.append(("arrayref", name))
                    else:
                        args.append(self.expr())
                    if self.at(","):
                        self.take()
                self.take()
                return ("call", v, args)
            if self.at("["):
                self.take()
                idx = self.expr()
                self.expect("]")
                return ("elem", v, idx)
            return ("var", v)
        raise BcError(f"syntax error: unexpected {v!r}" if v else "syntax error")


# -- evaluation -----------------------------------------------------------------------------


class Bc:
    """One bc session: variables, arrays, functions and the output.

    Locking: none; one command invocation.
    """

    def __init__(self, out: Callable[[str], None], err: Callable[[str], None],
                 check: Callable[[], None], mathlib: bool) -> None:
        self.out = out
        self.err = err
        self.check = check
        self.vars: dict[str, Num] = {}
        self.arrays: dict[str, dict[int, Num]] = {}
        self.funcs: dict[str, Node] = {}
        self.scale = 20 if mathlib else 0
        self.ibase = 10
        self.obase = 10
        self.last: Num = (Decimal(0), 0)
        if mathlib:
            self._define_mathlib()

    def _define_mathlib(self) -> None:
        for name in ("s", "c", "a", "l", "e", "j"):
            self.funcs[name] = ("native", name)

    def run(self, src: str) -> None:
        """Run a program; operators use bc's exact context (not Python's 28 digits)."""
        with decimal.localcontext(_CTX):
            self._run(src)

    def _run(self, src: str) -> None:
        for stmt in _Parser(src).program():
            try:
                self.stmt(stmt)
            except BcError as e:
                self.err(str(e))
            except (_Return, _LoopCtl):
                self.err("Return outside of a function.")

    # -- statements -----------------------------------------------------------------------

    def stmt(self, n: Node) -> None:
        op = n[0]
        if op == "error":
            self.err(n[1])
        elif op == "expr":
            e = n[1]
            v = self.ev(e)
            if e[0] != "assign":
                self.last = v
                self.out(self.fmt(v) + "\n")
        elif op == "str":
            self.out(n[1])
        elif op == "print":
            for item in n[1]:
                if item[0] == "str":
                    self.out(_print_escapes(item[1]))
                else:
                    v = self.ev(item)
                    self.last = v
                    self.out(self.fmt(v))
        elif op == "block":
            for s in n[1]:
                self.stmt(s)
        elif op == "if":
            if self.truth(n[1]):
                self.stmt(n[2])
            elif n[3] is not None:
                self.stmt(n[3])
        elif op == "while":
            while self.truth(n[1]):
                self.check()
                try:
                    self.stmt(n[2])
                except _LoopCtl as c:
                    if c.brk:
                        break
        elif op == "for":
            if n[1] is not None:
                self.ev(n[1])
            while n[2] is None or self.truth(n[2]):
                self.check()
                try:
                    self.stmt(n[4])
                except _LoopCtl as c:
                    if c.brk:
                        break
                if n[3] is not None:
                    self.ev(n[3])
        elif op in ("break", "continue"):
            raise _LoopCtl(op == "break")
        elif op in ("quit", "halt"):
            raise _Quit
        elif op == "return":
            raise _Return(self.ev(n[1]) if n[1] is not None else (Decimal(0), 0))
        elif op == "define":
            self.funcs[n[1]] = n
        elif op in ("limits", "warranty"):
            pass

    def truth(self, n: Node) -> bool:
        return self.ev(n)[0] != 0

    # -- expressions ----------------------------------------------------------------------

    def ev(self, n: Node) -> Num:
        op = n[0]
        if op == "num":
            return self.number(n[1])
        if op == "paren":
            return self.ev(n[1])
        if op == "var":
            return self.get(n[1])
        if op == "elem":
            idx = int(self.ev(n[2])[0])
            return self.arrays.get(n[1], {}).get(idx, (Decimal(0), 0))
        if op == "neg":
            v, s = self.ev(n[1])
            return (-v, s)
        if op == "bin":
            return self.binop(n[1], self.ev(n[2]), self.ev(n[3]))
        if op == "rel":
            a, b = self.ev(n[2])[0], self.ev(n[3])[0]
            r = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b,
                 "!=": a != b}[n[1]]
            return (Decimal(int(r)), 0)
        if op == "and":
            return (Decimal(int(self.truth(n[1]) and self.truth(n[2]))), 0)
        if op == "or":
            return (Decimal(int(self.truth(n[1]) or self.truth(n[2]))), 0)
        if op == "not":
            return (Decimal(int(not self.truth(n[1]))), 0)
        if op == "assign":
            val = self.ev(n[3])
            if n[1] != "=":
                val = self.binop(n[1][0], self.ev(n[2]), val)
            self.set(n[2], val)
            return self.ev(n[2])
        if op in ("pre", "post"):
            old = self.ev(n[2])
            new = self.binop("+" if n[1] == "++" else "-", old, (Decimal(1), 0))
            self.set(n[2], new)
            return new if op == "pre" else old
        if op == "builtin":
            v, s = self.ev(n[2])
            if n[1] == "length":
                digits = v.as_tuple().digits
                return (Decimal(max(len(digits), s) if v != 0 else max(s, 1)), 0)
            if n[1] == "scale":
                return (Decimal(s), 0)
            if v < 0:
                raise BcError("Runtime error (func=(main), adr=0): square root of a "
                              "negative number")
            sc = max(self.scale, s)
            return (_trunc(v.sqrt(_CTX), sc), sc)
        if op == "call":
            return self.call(n[1], n[2])
        raise BcError(f"cannot evaluate {op}")

    def number(self, lit: str) -> Num:
        if self.ibase == 10 and re.fullmatch(r"[0-9]*\.?[0-9]*", lit):
            v = Decimal(lit if lit != "." else "0")
            return (v, _scale_of(v) if "." in lit else 0)
        whole, _, frac = lit.partition(".")
        base = self.ibase if len(lit) > 1 else 16
        value = Decimal(0)
        for c in whole:
            value = value * base + int(c, 16)
        scale = len(frac)
        f = Decimal(0)
        for c in reversed(frac):
            f = (f + int(c, 16)) / base
        return (_trunc(value + f, scale), scale)

    def get(self, name: str) -> Num:
        if name == "scale":
            return (Decimal(self.scale), 0)
        if name == "ibase":
            return (Decimal(self.ibase), 0)
        if name == "obase":
            return (Decimal(self.obase), 0)
        if name == "last":
            return self.last
        return self.vars.get(name, (Decimal(0), 0))

    def set(self, target: Node, val: Num) -> None:
        if target[0] == "elem":
            idx = int(self.ev(target[2])[0])
            self.arrays.setdefault(target[1], {})[idx] = val
            return
        name = target[1]
        if name == "scale":
            self.scale = max(0, int(val[0]))
        elif name == "ibase":
            self.ibase = min(max(2, int(val[0])), 16)
        elif name == "obase":
            self.obase = max(2, int(val[0]))
        elif name == "last":
            self.last = val
        else:
            self.vars[name] = val

    def binop(self, op: str, a: Num, b: Num) -> Num:
        (x, sa), (y, sb) = a, b
        if op == "+" or op == "-":
            s = max(sa, sb)
            return ((x + y if op == "+" else x - y), s)
        if op == "*":
            s = min(sa + sb, max(self.scale, sa, sb))
            return (_trunc(x * y, s), s)
        if op == "/":
            if y == 0:
                raise BcError("Runtime error (func=(main), adr=0): Divide by zero")
            return (_trunc(_CTX.divide(x, y), self.scale), self.scale)
        if op == "%":
            if y == 0:
                raise BcError("Runtime error (func=(main), adr=0): Modulo by zero")
            q = _trunc(_CTX.divide(x, y), self.scale)
            s = max(self.scale + sb, sa)
            return (_trunc(x - q * y, s), s)
        if op == "^":
            if y != y.to_integral_value(rounding=ROUND_DOWN):
                self.err("Runtime warning (func=(main), adr=0): non-zero scale in exponent")
            e = int(y)
            if e >= 0:
                s = min(sa * e, max(self.scale, sa))
                return (_trunc(_CTX.power(x, e), s), s)
            if x == 0:
                raise BcError("Runtime error (func=(main), adr=0): divide by zero")
            return (_trunc(_CTX.divide(1, _CTX.power(x, -e)), self.scale), self.scale)
        raise BcError(f"unknown operator {op}")

    def call(self, name: str, args: list[Node]) -> Num:
        fn = self.funcs.get(name)
        if fn is None:
            raise BcError(f"Runtime error (func=(main), adr=0): Function {name} not defined.")
        if fn[0] == "native":
            vals = [self.ev(a) for a in args]
            return self.mathlib(name, vals)
        _, _, params, autos, body = fn
        if len(params) != len(args):
            raise BcError(f"Runtime error (func={name}, adr=0): Parameter number mismatch")
        saved_vars: dict[str, Num | None] = {}
        saved_arrays: dict[str, dict[int, Num] | None] = {}
        values: list[Any] = []
        for p, a in zip(params, args, strict=True):
            if p.endswith("[]"):
                src = a[1] if a[0] == "arrayref" else ""
                values.append(dict(self.arrays.get(src, {})))
            else:
                values.append(self.ev(a))
        for p, v in zip(params, values, strict=True):
            if p.endswith("[]"):
                saved_arrays.setdefault(p[:-2], self.arrays.get(p[:-2]))
                self.arrays[p[:-2]] = v
            else:
                saved_vars.setdefault(p, self.vars.get(p))
                self.vars[p] = v
        for a in autos:
            if a.endswith("[]"):
                saved_arrays.setdefault(a[:-2], self.arrays.get(a[:-2]))
                self.arrays[a[:-2]] = {}
            else:
                saved_vars.setdefault(a, self.vars.get(a))
                self.vars[a] = (Decimal(0), 0)
        try:
            self.stmt(body)
            return (Decimal(0), 0)
        except _Return as r:
            return r.value
        finally:
            for k, old in saved_vars.items():
                if old is None:
                    self.vars.pop(k, None)
                else:
                    self.vars[k] = old
            for k, olda in saved_arrays.items():
                if olda is None:
                    self.arrays.pop(k, None)
                else:
                    self.arrays[k] = olda

    def mathlib(self, name: str, vals: list[Num]) -> Num:
        sc = self.scale
        work = decimal.Context(prec=sc + 30, rounding=decimal.ROUND_HALF_EVEN)
        if name == "j":
            raise BcError("j(n,x) is not supported")
        if len(vals) != 1:
            raise BcError(f"Runtime error (func={name}, adr=0): Parameter number mismatch")
        x = vals[0][0]
        if name == "e":
            r = x.exp(work)
        elif name == "l":
            if x <= 0:
                return (Decimal(0), sc) if x == 0 else (Decimal(0), 0)
            r = x.ln(work)
        elif name in ("s", "c"):
            r = _sin_cos(x, name == "c", work)
        else:
            r = _atan(x, work)
        return (_trunc(r, sc), sc)

    # -- output ---------------------------------------------------------------------------

    def fmt(self, num: Num) -> str:
        v, s = num
        v = _trunc(v, s)
        if self.obase != 10:
            return _wrap(_in_base(v, s, self.obase))
        if v == 0:
            return "0"
        sign = "-" if v < 0 else ""
        digits = format(abs(v), "f")
        whole, _, frac = digits.partition(".")
        whole = whole.lstrip("0")
        frac = (frac + "0" * s)[:s]
        return _wrap(sign + whole + ("." + frac if s else ""))


def _wrap(s: str, width: int = 68) -> str:
    """bc breaks long numbers into lines of ``width`` characters and a ``\\``."""
    if len(s) <= width:
        return s
    parts = [s[i:i + width] for i in range(0, len(s), width)]
    return "\\\n".join(parts)


def _in_base(v: Decimal, scale: int, base: int) -> str:
    sign = "-" if v < 0 else ""
    v = abs(v)
    whole = int(v)
    digits = []
    while True:
        whole, d = divmod(whole, base)
        digits.append(d)
        if whole == 0:
            break

    def digit(d: int) -> str:
        return "0123456789ABCDEF"[d] if base <= 16 else f" {d:0{len(str(base - 1))}d}"
    out = "".join(digit(d) for d in reversed(digits))
    if scale:
        frac = v - int(v)
        fd = []
        need = Decimal(1).scaleb(-scale)
        place = Decimal(1)
        while place > need:
            frac *= base
            d = int(frac)
            fd.append(digit(d))
            frac -= d
            place /= base
        out += "." + "".join(fd)
    return sign + out.lstrip() if base > 16 else sign + out


def _print_escapes(s: str) -> str:
    table = {"n": "\n", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "q": '"',
             "\\": "\\", "e": "\\"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), m.group(1)), s)


def _sin_cos(x: Decimal, cos: bool, work: decimal.Context) -> Decimal:
    pi = _pi(work)
    x = work.remainder(x, 2 * pi)
    term = Decimal(1) if cos else x
    total = term
    n = 0 if cos else 1
    eps = Decimal(10) ** -(work.prec - 2)
    while abs(term) > eps:
        term = work.divide(work.multiply(-term, x * x), Decimal((n + 1) * (n + 2)))
        total = work.add(total, term)
        n += 2
    return total


def _atan(x: Decimal, work: decimal.Context) -> Decimal:
    if x < 0:
        return -_atan(-x, work)
    if x > 1:
        return work.subtract(_pi(work) / 2, _atan(work.divide(1, x), work))
    # halve the argument twice for fast convergence: atan x = 2 atan(x / (1 + sqrt(1+x²)))
    halvings = 0
    while x > Decimal("0.2"):
        x = work.divide(x, 1 + (1 + x * x).sqrt(work))
        halvings += 1
    term, total, n = x, x, 1
    eps = Decimal(10) ** -(work.prec - 2)
    while abs(term) > eps:
        term = work.multiply(-term, x * x)
        n += 2
        total = work.add(total, work.divide(term, n))
    return work.multiply(total, Decimal(2 ** halvings))


def _pi(work: decimal.Context) -> Decimal:
    """pi by Machin's formula at the context's precision."""
    def arctan_inv(k: int) -> Decimal:
        x = work.divide(1, k)
        term, total, n = x, x, 1
        eps = Decimal(10) ** -(work.prec + 2)
        while abs(term) > eps:
            term = work.divide(-term, k * k)
            n += 2
            total = work.add(total, work.divide(term, n))
        return total
    return 4 * (4 * arctan_inv(5) - arctan_inv(239))


@command("bc", COMMANDS)
def _bc(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "lqswiv", longs={"mathlib": "l", "quiet": "q",
                                                "standard": "s", "warn": "w",
                                                "interactive": "i", "version": "v"})
    if opts.get("v"):
        ctx.stdout.write(b"bc 1.07.1 (oanix)\n")
        return 0
    err_count = [0]

    def err(msg: str) -> None:
        err_count[0] += 1
        ctx.stderr.write(to_bytes(f"(standard_in) 1: {msg}\n" if not msg.startswith(
            "Runtime") else msg + "\n"))

    def out(s: str) -> None:
        ctx.stdout.write(to_bytes(s))

    bc = Bc(out, err, ctx.check, bool(opts.get("l")))
    sources = [text(ctx.read_file(f)) for f in files] + [text(ctx.stdin)]
    try:
        for src in sources:
            bc.run(src)
    except _Quit:
        pass
    return 0


# -- expr -----------------------------------------------------------------------------------


class ExprError(Exception):
    def __init__(self, msg: str, status: int = 2) -> None:
        super().__init__(msg)
        self.status = status


def _expr_int(s: str) -> int | None:
    return int(s) if re.fullmatch(r"\s*[-+]?\d+\s*", s) else None


class _Expr:
    """``expr``'s grammar (lowest first): ``|``, ``&``, comparisons, ``+ -``,
    ``* / %``, ``:``, then ``match``/``substr``/``index``/``length``/``+``/parentheses.

    Locking: none; one invocation.
    """

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.i = 0

    def peek(self) -> str | None:
        return self.args[self.i] if self.i < len(self.args) else None

    def take(self) -> str:
        if self.i >= len(self.args):
            raise ExprError("syntax error: missing argument after '" + (
                self.args[-1] if self.args else "") + "'")
        self.i += 1
        return self.args[self.i - 1]

    def parse(self) -> str:
        v = self.or_()
        if self.i != len(self.args):
            raise ExprError(f"syntax error: unexpected argument '{self.args[self.i]}'")
        return v

    def or_(self) -> str:
        v = self.and_()
        while self.peek() == "|":
            self.take()
            w = self.and_()
            v = v if _truthy(v) else (w if _truthy(w) else "0")
        return v

    def and_(self) -> str:
        v = self.cmp()
        while self.peek() == "&":
            self.take()
            w = self.cmp()
            v = v if _truthy(v) and _truthy(w) else "0"
        return v

    def cmp(self) -> str:
        v = self.add()
        while self.peek() in ("=", "==", "!=", "<", "<=", ">", ">="):
            op = self.take()
            w = self.add()
            a, b = _expr_int(v), _expr_int(w)
            pair: tuple[Any, Any] = (a, b) if a is not None and b is not None else (v, w)
            x, y = pair
            r = {"=": x == y, "==": x == y, "!=": x != y, "<": x < y, "<=": x <= y,
                 ">": x > y, ">=": x >= y}[op]
            v = "1" if r else "0"
        return v

    def add(self) -> str:
        v = self.mul()
        while self.peek() in ("+", "-"):
            op = self.take()
            w = self.mul()
            a, b = self.ints(v, w)
            v = str(a + b if op == "+" else a - b)
        return v

    def mul(self) -> str:
        v = self.match()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            w = self.match()
            a, b = self.ints(v, w)
            if op != "*" and b == 0:
                raise ExprError("division by zero")
            if op == "*":
                v = str(a * b)
            else:
                q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
                v = str(q if op == "/" else a - q * b)
        return v

    def match(self) -> str:
        v = self.primary()
        while self.peek() == ":":
            self.take()
            v = _expr_match(v, self.primary())
        return v

    def primary(self) -> str:
        t = self.take()
        if t == "(":
            v = self.or_()
            if self.peek() != ")":
                raise ExprError("syntax error: expecting ')'" + (
                    f" after '{self.args[self.i - 1]}'" if self.i else ""))
            self.take()
            return v
        if t == "match":
            return _expr_match(self.primary(), self.primary())
        if t == "substr":
            s, pos, length = self.primary(), self.primary(), self.primary()
            p, n = _expr_int(pos), _expr_int(length)
            if p is None or n is None or p < 1 or n < 1:
                return ""
            return s[p - 1:p - 1 + n]
        if t == "index":
            s, chars = self.primary(), self.primary()
            return str(next((i + 1 for i, c in enumerate(s) if c in chars), 0))
        if t == "length":
            return str(len(self.primary()))
        if t == "+":
            return self.take()
        return t

    @staticmethod
    def ints(a: str, b: str) -> tuple[int, int]:
        x, y = _expr_int(a), _expr_int(b)
        if x is None or y is None:
            raise ExprError("non-integer argument")
        return x, y


def _truthy(v: str) -> bool:
    return v != "" and _expr_int(v) != 0


def _expr_match(s: str, pattern: str) -> str:
    try:
        rx = re.compile(posix_regex(pattern, False))
    except re.error as e:
        raise ExprError(f"invalid regular expression: {e}") from None
    m = rx.match(s)
    if rx.groups:
        return (m.group(1) or "") if m else ""
    return str(m.end()) if m else "0"


@command("expr", COMMANDS)
def _expr(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        ctx.error("missing operand")
        return 2
    try:
        v = _Expr(args).parse()
    except ExprError as e:
        ctx.error(str(e))
        return e.status
    ctx.stdout.write(to_bytes(v + "\n"))
    return 0 if _truthy(v) else 1
