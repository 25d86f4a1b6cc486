"""Evaluation of ``test``/``[`` and ``[[ ]]`` expressions."""

from __future__ import annotations

import re

from . import rx as timed_rx
from .context import Ctx, stat_or_none
from .patterns import posix_regex
from .table import Usage

_UNARY = frozenset(["-e", "-f", "-d", "-s", "-z", "-n", "-r", "-w", "-x", "-L", "-h", "-p",
                    "-S", "-b", "-c", "-t", "-g", "-u", "-k", "-O", "-G"])
_BINARY = frozenset(["=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "<", ">",
                     "-nt", "-ot", "-ef"])


class TestParser:
    """The ``test`` expression grammar: ``-o`` over ``-a`` over ``!`` over primaries.

    Locking: none; one evaluation.
    """

    def __init__(self, ctx: Ctx, args: list[str]) -> None:
        self.ctx = ctx
        self.args = args
        self.i = 0

    def parse(self) -> bool:
        if not self.args:
            return False
        v = self.or_()
        if self.i < len(self.args):
            raise Usage(f"{self.args[self.i]}: unexpected operator")
        return v

    def or_(self) -> bool:
        v = self.and_()
        while self.peek() == "-o":
            self.i += 1
            v = self.and_() or v
        return v

    def and_(self) -> bool:
        v = self.not_()
        while self.peek() == "-a":
            self.i += 1
            v = self.not_() and v
        return v

    def not_(self) -> bool:
        if self.peek() == "!" and self.i + 1 < len(self.args):
            self.i += 1
            return not self.not_()
        return self.primary()

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.args[j] if j < len(self.args) else None

    def primary(self) -> bool:
        a = self.peek()
        if a is None:
            raise Usage("argument expected")
        if (a == "(" and self.peek(2) == ")") or (a == "(" and self.peek(1) not in _BINARY):
            self.i += 1
            v = self.or_()
            if self.peek() != ")":
                raise Usage("')' expected")
            self.i += 1
            return v
        b = self.peek(1)
        if b in _BINARY and self.peek(2) is not None:
            c = self.args[self.i + 2]
            self.i += 3
            return self.binary(a, b, c)
        if a in _UNARY and b is not None:
            self.i += 2
            return self.unary(a, b)
        self.i += 1
        return a != ""

    def unary(self, op: str, x: str) -> bool:
        if op == "-z":
            return x == ""
        if op == "-n":
            return x != ""
        if op == "-t":
            return False
        st = stat_or_none(self.ctx, x) if x else None
        if op in ("-e", "-r", "-w", "-x"):
            return st is not None and (op != "-w" or not st.readonly)
        if op == "-f":
            return st is not None and not st.is_dir
        if op == "-d":
            return st is not None and st.is_dir
        if op == "-s":
            return st is not None and st.size > 0 and not st.is_dir
        return False

    def binary(self, a: str, op: str, b: str) -> bool:
        if op in ("=", "=="):
            return a == b
        if op == "!=":
            return a != b
        if op in ("<", ">"):
            return a < b if op == "<" else a > b
        if op in ("-nt", "-ot", "-ef"):
            sa, sb = stat_or_none(self.ctx, a), stat_or_none(self.ctx, b)
            if op == "-ef":
                return sa is not None and self.ctx.resolve(a) == self.ctx.resolve(b)
            if op == "-nt":
                return sa is not None and (sb is None or sa.mtime > sb.mtime)
            return sb is not None and (sa is None or sa.mtime < sb.mtime)
        x, y = self.num(a), self.num(b)
        return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y,
                "-ge": x >= y}[op]

    def num(self, s: str) -> int:
        try:
            return int(s.strip())
        except ValueError:
            raise Usage(f"{s}: integer expression expected") from None


def cond_eval(ctx: Ctx, items: list[tuple[str, bool]]) -> int:
    """Evaluate ``[[ ... ]]`` items (text, is an operator); the operand after ``==``,
    ``=`` or ``!=`` is a regex (from the pattern), after ``=~`` an ERE."""
    pos = 0
    tester = TestParser(ctx, [])

    def peek() -> tuple[str, bool] | None:
        return items[pos] if pos < len(items) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(items):
            raise Usage("syntax error in conditional expression")
        pos += 1
        return items[pos - 1][0]

    def is_op(*ops: str) -> bool:
        item = peek()
        return item is not None and item[1] and item[0] in ops

    def or_() -> bool:
        v = and_()
        while is_op("||"):
            take()
            v = and_() or v
        return v

    def and_() -> bool:
        v = not_()
        while is_op("&&"):
            take()
            v = not_() and v
        return v

    def not_() -> bool:
        if is_op("!"):
            take()
            return not not_()
        if is_op("("):
            take()
            v = or_()
            if take() != ")":
                raise Usage("expected ')'")
            return v
        return primary()

    def primary() -> bool:
        nonlocal pos
        if is_op(*_UNARY) and pos + 1 < len(items) and not (
                pos + 2 < len(items) and items[pos + 1][1] is False
                and items[pos + 2][1] and items[pos + 2][0] in _BINARY | {"=~"}):
            op = take()
            return tester.unary(op, take())
        a = take()
        if not is_op(*_BINARY, "=~"):
            return a != ""
        op = take()
        b = take()
        if op in ("==", "=", "!="):
            return (re.fullmatch(b, a, re.DOTALL) is not None) == (op != "!=")
        if op == "=~":
            try:
                m = timed_rx.compile(posix_regex(b, True)).search(a)
            except (re.error, timed_rx.error):
                raise Usage(f"invalid regex '{b}'") from None
            ctx.shell.st.vars["BASH_REMATCH"] = m.group(0) if m else ""
            return m is not None
        return tester.binary(a, op, b)

    try:
        result = or_()
        if pos != len(items):
            raise Usage(f"syntax error near '{items[pos][0]}'")
    except Usage as e:
        ctx.error(str(e))
        return 2
    return 0 if result else 1
