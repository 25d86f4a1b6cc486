"""A small awk: the subset shell scripts use.

Supported: ``BEGIN``/``END``, ``/re/``, expression and range patterns; ``print`` (also
``> file``, ``>> file``), ``printf``, assignments (``= += -= *= /= %= ^= ++ --``),
``if/else``, ``while``, ``do/while``, ``for (;;)``, ``for (k in a)``, ``next``, ``exit``,
``break``, ``continue``, ``delete``; associative arrays and ``in``; fields (``$0``,
``$n``, assignable), ``NR NF FNR FS OFS ORS FILENAME RSTART RLENGTH SUBSEP``; the functions
``length substr index split sub gsub match sprintf tolower toupper int sqrt exp log sin
cos atan2 rand srand system close fflush``; ``-F fs``, ``-v var=value``, ``-f progfile``.
Not supported: ``getline``, user-defined functions, output pipes, ``RS`` other than a
newline.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ...errors import FsError
from ..cancel import check
from ..context import Ctx, Input
from ..patterns import posix_regex
from ..rx import TimedPattern
from ..rx import compile as timed_compile
from ..rx import error as rx_error
from ..table import COMMANDS, command

__all__ = ["awk_main"]


class AwkError(Exception):
    """A syntax or runtime error in an awk program."""


class _Uninit(str):
    """An uninitialised value: both "" and 0."""

    __slots__ = ()


class _StrNum(str):
    """Input data (fields, -v values): a number when it looks like one."""

    __slots__ = ()


UNINIT = _Uninit("")
Value = Any  # float | str (with the subclasses above)
_NUM = re.compile(r"\s*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)")
_LOOKS_NUMERIC = re.compile(r"\s*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)\s*\Z")


def to_num(v: Value) -> float:
    if isinstance(v, float):
        return v
    m = _NUM.match(v)
    return float(m.group()) if m else 0.0


def to_str(v: Value, fmt: str = "%.6g") -> str:
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e16:
            return str(int(v))
        return fmt % v
    return str(v)


def _is_numeric(v: Value) -> bool:
    return isinstance(v, (float, _Uninit)) or (
        isinstance(v, _StrNum) and _LOOKS_NUMERIC.match(v) is not None)


# -- lexer ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+|\\\n|\#[^\n]*)
  | (?P<nl>\n)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\+\+|--|\+=|-=|\*=|/=|%=|\^=|==|<=|>=|!=|!~|&&|\|\||>>|[-+*/%^<>!~?:=(){}\[\],;$|])
""", re.VERBOSE)
_KEYWORDS = frozenset(["BEGIN", "END", "if", "else", "while", "for", "do", "in", "next",
                       "exit", "print", "printf", "delete", "break", "continue", "getline",
                       "function", "return"])
_REGEX_AFTER = frozenset(["(", ",", "{", "}", ";", "\n", "!", "~", "!~", "&&", "||", "==",
                          "!=", "<", "<=", ">", ">=", "=", "+=", "-=", "*=", "/=", "%=", "^=",
                          "?", ":", "print", "printf", "return", "in", None])
_STR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "/": "/", "a": "\a",
                "b": "\b", "f": "\f", "v": "\v"}


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: _STR_ESCAPES.get(m.group(1), "\\" + m.group(1)), s)


def tokenize(src: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: num, str, re, name, func, kw, op, nl."""
    toks: list[tuple[str, str]] = []
    pos = 0
    while pos < len(src):
        prev = toks[-1][1] if toks else None
        if src[pos] == "/" and (prev in _REGEX_AFTER or (toks and toks[-1][0] == "kw")):
            end = pos + 1
            while end < len(src) and src[end] != "/":
                end += 2 if src[end] == "\\" else 1
            if end >= len(src):
                raise AwkError("unterminated regex")
            toks.append(("re", src[pos + 1:end].replace("\\/", "/")))
            pos = end + 1
            continue
        m = _TOKEN.match(src, pos)
        if m is None:
            raise AwkError(f"syntax error at source: {src[pos:pos + 10]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind == "ws":
            continue
        if kind == "nl":
            toks.append(("nl", "\n"))
        elif kind == "str":
            toks.append(("str", _unescape(text[1:-1])))
        elif kind == "name":
            if text in _KEYWORDS:
                toks.append(("kw", text))
            elif text in _FUNCS and (text == "length" or src.startswith("(", pos)):
                toks.append(("func", text))
            else:
                toks.append(("name", text))
        else:
            toks.append((kind or "op", text))
    return toks


# -- parser (to nested tuples) ---------------------------------------------------------------


class _Parser:
    """Recursive descent over awk tokens; nodes are tuples ``(kind, ...)``.

    Locking: none; one parse.
    """

    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "")

    def at(self, *texts: str) -> bool:
        kind, text = self.peek()
        return kind in ("op", "kw", "nl") and text in texts

    def take(self, text: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if text is not None and tok[1] != text:
            raise AwkError(f"syntax error: expected '{text}', got '{tok[1] or 'end'}'")
        self.i += 1
        return tok

    def newlines(self) -> None:
        while self.peek()[0] == "nl" or self.at(";"):
            self.i += 1

    def opt_nl(self) -> None:
        while self.peek()[0] == "nl":
            self.i += 1

    def program(self) -> list[tuple[Any, ...]]:
        items: list[tuple[Any, ...]] = []
        self.newlines()
        while self.peek()[0] != "eof":
            if self.at("BEGIN", "END"):
                kind = self.take()[1]
                self.opt_nl()
                items.append((kind, None, self.block()))
            elif self.at("function"):
                raise AwkError("user-defined functions are not supported")
            else:
                pat: Any = None
                if not self.at("{"):
                    pat = self.expr()
                    if self.at(","):
                        self.take()
                        self.opt_nl()
                        pat = ("range", pat, self.expr(), [False])
                body = self.block() if self.at("{") else None
                items.append(("main", pat, body))
            self.newlines()
        return items

    def block(self) -> list[Any]:
        self.take("{")
        stmts = []
        self.newlines()
        while not self.at("}"):
            stmts.append(self.stmt())
            self.newlines()
        self.take("}")
        return stmts

    def simple_end(self) -> None:
        if self.at(";") or self.peek()[0] == "nl":
            self.take()
        elif not self.at("}") and self.peek()[0] != "eof":
            raise AwkError(f"syntax error near '{self.peek()[1]}'")

    def stmt(self) -> Any:
        kind, text = self.peek()
        if self.at("{"):
            return ("block", self.block())
        if kind == "kw":
            if text == "if":
                self.take()
                self.take("(")
                cond = self.expr()
                self.take(")")
                self.opt_nl()
                then = self.stmt()
                j = self.i
                self.newlines()
                if self.at("else"):
                    self.take()
                    self.opt_nl()
                    return ("if", cond, then, self.stmt())
                self.i = j
                return ("if", cond, then, None)
            if text == "while":
                self.take()
                self.take("(")
                cond = self.expr()
                self.take(")")
                if self.at(";"):
                    self.take()
                    return ("while", cond, ("block", []))
                self.opt_nl()
                return ("while", cond, self.stmt())
            if text == "do":
                self.take()
                self.opt_nl()
                body = self.stmt()
                self.newlines()
                self.take("while")
                self.take("(")
                cond = self.expr()
                self.take(")")
                self.simple_end()
                return ("do", body, cond)
            if text == "for":
                self.take()
                self.take("(")
                if self.peek()[0] == "name" and self.peek(1) == ("kw", "in"):
                    var = self.take()[1]
                    self.take("in")
                    arr = self.take()[1]
                    self.take(")")
                    self.opt_nl()
                    return ("forin", var, arr, self.stmt())
                init = None if self.at(";") else self.expr()
                self.take(";")
                self.opt_nl()
                cond = None if self.at(";") else self.expr()
                self.take(";")
                self.opt_nl()
                step = None if self.at(")") else self.expr()
                self.take(")")
                if self.at(";"):
                    self.take()
                    return ("for", init, cond, step, ("block", []))
                self.opt_nl()
                return ("for", init, cond, step, self.stmt())
            if text in ("next", "break", "continue"):
                self.take()
                self.simple_end()
                return (text,)
            if text in ("exit", "return"):
                self.take()
                val = None if self.at(";", "}", "\n") or self.peek()[0] == "eof" \
                    else self.expr()
                self.simple_end()
                return ("exit", val)
            if text == "delete":
                self.take()
                name = self.take()[1]
                idx = None
                if self.at("["):
                    self.take()
                    idx = self.subscript()
                self.simple_end()
                return ("delete", name, idx)
            if text in ("print", "printf"):
                self.take()
                args: list[Any] = []
                parens = self.at("(") and self._parenthesized_list()
                if parens:
                    self.take("(")
                    args = self.expr_list(no_gt=False)
                    self.take(")")
                elif not (self.at(";", "}", ">", ">>", "|") or self.peek()[0] in ("nl", "eof")):
                    args = self.expr_list(no_gt=True)
                dest = None
                if self.at(">", ">>"):
                    mode = self.take()[1]
                    dest = (mode, self.concat(no_gt=True))
                elif self.at("|"):
                    raise AwkError("output pipes are not supported")
                self.simple_end()
                return (text, args, dest)
            if text == "getline":
                raise AwkError("getline is not supported")
        e = self.expr()
        self.simple_end()
        return ("expr", e)

    def _parenthesized_list(self) -> bool:
        """Whether ``print (a, b)`` parentheses enclose the whole argument list."""
        depth = 0
        j = self.i
        while j < len(self.toks):
            kind, text = self.toks[j]
            if kind == "op" and text in "([":
                depth += 1
            elif kind == "op" and text in ")]":
                depth -= 1
                if depth == 0:
                    nxt = self.toks[j + 1] if j + 1 < len(self.toks) else ("eof", "")
                    return nxt[0] in ("nl", "eof") or nxt[1] in (";", "}", ">", ">>", "|")
            j += 1
        return False

    def expr_list(self, no_gt: bool) -> list[Any]:
        out = [self.expr(no_gt)]
        while self.at(","):
            self.take()
            self.opt_nl()
            out.append(self.expr(no_gt))
        return out

    def subscript(self) -> Any:
        parts = self.expr_list(no_gt=False)
        self.take("]")
        return parts[0] if len(parts) == 1 else ("subsep", parts)

    def expr(self, no_gt: bool = False) -> Any:
        return self.ternary(no_gt)

    def ternary(self, no_gt: bool) -> Any:
        cond = self.or_(no_gt)
        if self.at("?"):
            self.take()
            self.opt_nl()
            a = self.ternary(no_gt)
            self.opt_nl()
            self.take(":")
            self.opt_nl()
            b = self.ternary(no_gt)
            return ("?", cond, a, b)
        if self.at("=", "+=", "-=", "*=", "/=", "%=", "^=") and cond[0] in ("var", "idx",
                                                                            "field"):
            op = self.take()[1]
            self.opt_nl()
            return ("assign", op, cond, self.ternary(no_gt))
        return cond

    def or_(self, no_gt: bool) -> Any:
        left = self.and_(no_gt)
        while self.at("||"):
            self.take()
            self.opt_nl()
            left = ("||", left, self.and_(no_gt))
        return left

    def and_(self, no_gt: bool) -> Any:
        left = self.in_(no_gt)
        while self.at("&&"):
            self.take()
            self.opt_nl()
            left = ("&&", left, self.in_(no_gt))
        return left

    def in_(self, no_gt: bool) -> Any:
        left = self.match(no_gt)
        while self.at("in"):
            self.take()
            left = ("in", left, self.take()[1])
        return left

    def match(self, no_gt: bool) -> Any:
        left = self.compare(no_gt)
        while self.at("~", "!~"):
            op = self.take()[1]
            left = (op, left, self.compare(no_gt))
        return left

    def compare(self, no_gt: bool) -> Any:
        left = self.concat(no_gt)
        ops = ("<", "<=", "==", "!=", ">=") if no_gt else ("<", "<=", "==", "!=", ">=", ">")
        if self.at(*ops):
            op = self.take()[1]
            return ("cmp", op, left, self.concat(no_gt))
        return left

    def concat(self, no_gt: bool = False) -> Any:
        left = self.additive()
        while True:
            kind, text = self.peek()
            starts = kind in ("num", "str", "re", "name", "func") or ((
                kind == "op" and text in ("$", "(", "!", "++", "--")) and text != "in")
            if not starts or (kind == "op" and text == "!" and self.peek(1)[1] == "="):
                return left
            left = ("concat", left, self.additive())

    def additive(self) -> Any:
        left = self.mul()
        while self.at("+", "-"):
            op = self.take()[1]
            left = ("arith", op, left, self.mul())
        return left

    def mul(self) -> Any:
        left = self.unary()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            left = ("arith", op, left, self.unary())
        return left

    def unary(self) -> Any:
        if self.at("!"):
            self.take()
            return ("not", self.unary())
        if self.at("-", "+"):
            op = self.take()[1]
            return ("neg" if op == "-" else "pos", self.unary())
        return self.power()

    def power(self) -> Any:
        base = self.postfix()
        if self.at("^"):
            self.take()
            return ("arith", "^", base, self.unary())
        return base

    def postfix(self) -> Any:
        if self.at("++", "--"):
            op = self.take()[1]
            return ("preinc", 1.0 if op == "++" else -1.0, self.postfix())
        e = self.primary()
        if self.at("++", "--") and e[0] in ("var", "idx", "field"):
            op = self.take()[1]
            return ("postinc", 1.0 if op == "++" else -1.0, e)
        return e

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return ("num", float(text))
        if kind == "str":
            return ("str", text)
        if kind == "re":
            return ("re", text)
        if kind == "op" and text == "$":
            return ("field", self.postfix_operand())
        if kind == "op" and text == "(":
            e = self.expr()
            if self.at(","):  # (a, b) in arr
                parts = [e]
                while self.at(","):
                    self.take()
                    parts.append(self.expr())
                self.take(")")
                self.take("in")
                return ("in", ("subsep", parts), self.take()[1])
            self.take(")")
            return ("group", e)
        if kind == "func":
            args: list[Any] = []
            if self.at("("):
                self.take()
                if not self.at(")"):
                    args = self.expr_list(no_gt=False)
                self.take(")")
            return ("call", text, args)
        if kind == "name":
            if self.at("["):
                self.take()
                return ("idx", text, self.subscript())
            return ("var", text)
        raise AwkError(f"syntax error near '{text or 'end of program'}'")

    def postfix_operand(self) -> Any:
        if self.at("++", "--"):
            return self.postfix()
        return self.primary()


# -- interpreter ----------------------------------------------------------------------------


class _Next(Exception):
    pass


class _Exit(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Awk:
    """Runs a parsed program over input records.

    Locking: none; one awk invocation.
    """

    def __init__(self, ctx: Ctx, items: list[tuple[Any, ...]], variables: dict[str, Value]
                 ) -> None:
        self.ctx = ctx
        self.items = items
        self.vars: dict[str, Value] = {"FS": " ", "OFS": " ", "ORS": "\n", "NR": 0.0,
                                       "NF": 0.0, "FNR": 0.0, "SUBSEP": "\x1c", "RSTART": 0.0,
                                       "RLENGTH": -1.0, "FILENAME": "", "OFMT": "%.6g",
                                       "CONVFMT": "%.6g", "RS": "\n"}
        self.vars.update(variables)
        self.arrays: dict[str, dict[str, Value]] = {}
        self.fields: list[str] = [""]
        self.outputs: dict[str, bytearray] = {}
        self.exit_code = 0
        self._regex_cache: dict[str, TimedPattern[str]] = {}

    # -- records ---------------------------------------------------------------------------

    def set_record(self, line: str) -> None:
        fs = to_str(self.vars["FS"])
        if fs == " ":
            parts = line.split()
        elif len(fs) == 1 and fs != "\\":
            parts = line.split(fs) if line else []
        else:
            parts = self.regex(fs).split(line) if line else []
        self.fields = [line, *parts]
        self.vars["NF"] = float(len(parts))

    def get_field(self, i: int) -> Value:
        if i < 0:
            raise AwkError(f"trying to access out of range field {i}")
        return _StrNum(self.fields[i]) if i < len(self.fields) else UNINIT

    def set_field(self, i: int, value: str) -> None:
        if i == 0:
            self.set_record(value)
            return
        while len(self.fields) <= i:
            self.fields.append("")
        self.fields[i] = value
        self.vars["NF"] = float(len(self.fields) - 1)
        self.fields[0] = to_str(self.vars["OFS"]).join(self.fields[1:])

    def regex(self, pat: str) -> TimedPattern[str]:
        rx = self._regex_cache.get(pat)
        if rx is None:

            try:
                rx = timed_compile(posix_regex(pat, True))
            except (re.error, rx_error) as e:
                raise AwkError(f"bad regex '{pat}': {e}") from None
            self._regex_cache[pat] = rx
        return rx

    # -- running ---------------------------------------------------------------------------

    def run(self, inputs: list[tuple[str, Input]]) -> int:
        try:
            for kind, _pat, body in self.items:
                if kind == "BEGIN":
                    self.exec_block(body)
            if any(k in ("main", "END") for k, _, _ in self.items):
                for name, stream in inputs:
                    self.vars["FILENAME"] = name
                    self.vars["FNR"] = 0.0
                    for raw in stream.lines():  # streamed: stdin may be endless
                        check()
                        line = raw.decode("utf-8", "surrogateescape").removesuffix("\n")
                        self.vars["NR"] = to_num(self.vars["NR"]) + 1
                        self.vars["FNR"] = to_num(self.vars["FNR"]) + 1
                        self.set_record(line)
                        try:
                            self.record()
                        except _Next:
                            continue
        except _Exit:
            pass
        try:
            for kind, _pat, body in self.items:
                if kind == "END":
                    self.exec_block(body)
        except _Exit:
            pass
        for path, buf in self.outputs.items():
            self.ctx.namespace.write_bytes(self.ctx.resolve(path), bytes(buf))
        return self.exit_code

    def record(self) -> None:
        for kind, pat, body in self.items:
            if kind != "main":
                continue
            if pat is not None and not self.pattern(pat):
                continue
            if body is None:
                self.emit(self.fields[0] + to_str(self.vars["ORS"]), None)
            else:
                self.exec_block(body)

    def pattern(self, pat: Any) -> bool:
        if pat[0] == "range":
            state = pat[3]
            if not state[0]:
                if self.truth(self.eval(pat[1])):
                    state[0] = not self.truth(self.eval(pat[2]))
                    return True
                return False
            if self.truth(self.eval(pat[2])):
                state[0] = False
            return True
        return self.truth(self.eval(pat))

    def emit(self, text: str, dest: tuple[str, Any] | None) -> None:
        data = text.encode("utf-8", "surrogateescape")
        if dest is None:
            self.ctx.write(data)
            return
        mode, target = dest
        path = to_str(self.eval(target))
        if path in ("/dev/stdout", "-"):
            self.ctx.write(data)
        elif path == "/dev/stderr":
            self.ctx.stderr.write(data)
        else:
            if path not in self.outputs:
                self.outputs[path] = bytearray()
                if mode == ">>":
                    with suppress(FsError):
                        self.outputs[path] += self.ctx.read_file(path)
            self.outputs[path] += data

    def exec_block(self, stmts: list[Any]) -> None:
        for s in stmts:
            self.exec(s)

    def exec(self, s: Any) -> None:
        check()
        kind = s[0]
        if kind == "expr":
            self.eval(s[1])
        elif kind in ("print", "printf"):
            if kind == "print":
                vals = [self.eval(a) for a in s[1]] or [self.fields[0]]
                ofmt = to_str(self.vars["OFMT"])
                text = to_str(self.vars["OFS"]).join(to_str(v, ofmt) for v in vals)
                self.emit(text + to_str(self.vars["ORS"]), s[2])
            else:
                vals = [self.eval(a) for a in s[1]]
                if not vals:
                    raise AwkError("printf: no format")
                self.emit(sprintf(to_str(vals[0]), vals[1:]), s[2])
        elif kind == "block":
            self.exec_block(s[1])
        elif kind == "if":
            if self.truth(self.eval(s[1])):
                self.exec(s[2])
            elif s[3] is not None:
                self.exec(s[3])
        elif kind == "while":
            while self.truth(self.eval(s[1])):
                if self.loop_body(s[2]):
                    break
        elif kind == "do":
            while True:
                if self.loop_body(s[1]) or not self.truth(self.eval(s[2])):
                    break
        elif kind == "for":
            if s[1] is not None:
                self.eval(s[1])
            while s[2] is None or self.truth(self.eval(s[2])):
                if self.loop_body(s[4]):
                    break
                if s[3] is not None:
                    self.eval(s[3])
        elif kind == "forin":
            for key in list(self.arrays.get(s[2], {})):
                self.vars[s[1]] = _StrNum(key)
                if self.loop_body(s[3]):
                    break
        elif kind == "next":
            raise _Next
        elif kind == "exit":
            if s[1] is not None:
                self.exit_code = int(to_num(self.eval(s[1])))
            raise _Exit
        elif kind == "break":
            raise _Break
        elif kind == "continue":
            raise _Continue
        elif kind == "delete":
            if s[2] is None:
                self.arrays.pop(s[1], None)
            else:
                self.arrays.get(s[1], {}).pop(self.key(s[2]), None)

    def loop_body(self, body: Any) -> bool:
        """Run a loop body; True when it breaks."""
        try:
            self.exec(body)
        except _Break:
            return True
        except _Continue:
            pass
        return False

    # -- expressions -------------------------------------------------------------------------

    def truth(self, v: Value) -> bool:
        if isinstance(v, float):
            return v != 0
        if _is_numeric(v):
            return to_num(v) != 0
        return bool(v != "")

    def key(self, e: Any) -> str:
        if e[0] == "subsep":
            return to_str(self.vars["SUBSEP"]).join(to_str(self.eval(x)) for x in e[1])
        return to_str(self.eval(e), to_str(self.vars["CONVFMT"]))

    def array(self, name: str) -> dict[str, Value]:
        return self.arrays.setdefault(name, {})

    def get(self, lv: Any) -> Value:
        if lv[0] == "var":
            return self.vars.get(lv[1], UNINIT)
        if lv[0] == "idx":
            return self.array(lv[1]).setdefault(self.key(lv[2]), UNINIT)
        return self.get_field(int(to_num(self.eval(lv[1]))))

    def set(self, lv: Any, value: Value) -> Value:
        if lv[0] == "var":
            if lv[1] == "NF":
                n = int(to_num(value))
                self.fields = (self.fields + [""] * n)[:n + 1]
                self.fields[0] = to_str(self.vars["OFS"]).join(self.fields[1:])
            self.vars[lv[1]] = value
        elif lv[0] == "idx":
            self.array(lv[1])[self.key(lv[2])] = value
        else:
            self.set_field(int(to_num(self.eval(lv[1]))), to_str(value))
        return value

    def eval(self, e: Any) -> Value:
        kind = e[0]
        if kind == "num":
            return e[1]
        if kind == "str":
            return e[1]
        if kind == "re":
            return float(self.regex(e[1]).search(self.fields[0]) is not None)
        if kind in ("var", "idx", "field"):
            return self.get(e)
        if kind == "group":
            return self.eval(e[1])
        if kind == "assign":
            op, lv, rhs = e[1], e[2], self.eval(e[3])
            if op != "=":
                rhs = _arith(op[0], to_num(self.get(lv)), to_num(rhs))
            return self.set(lv, rhs)
        if kind == "concat":
            fmt = to_str(self.vars["CONVFMT"])
            return to_str(self.eval(e[1]), fmt) + to_str(self.eval(e[2]), fmt)
        if kind == "arith":
            return _arith(e[1], to_num(self.eval(e[2])), to_num(self.eval(e[3])))
        if kind == "neg":
            return -to_num(self.eval(e[1]))
        if kind == "pos":
            return to_num(self.eval(e[1]))
        if kind == "not":
            return float(not self.truth(self.eval(e[1])))
        if kind == "&&":
            return float(self.truth(self.eval(e[1])) and self.truth(self.eval(e[2])))
        if kind == "||":
            return float(self.truth(self.eval(e[1])) or self.truth(self.eval(e[2])))
        if kind == "?":
            return self.eval(e[2]) if self.truth(self.eval(e[1])) else self.eval(e[3])
        if kind == "cmp":
            return float(self.compare(e[1], self.eval(e[2]), self.eval(e[3])))
        if kind in ("~", "!~"):
            rx = e[2]
            pat = rx[1] if rx[0] == "re" else to_str(self.eval(rx))
            hit = self.regex(pat).search(to_str(self.eval(e[1]))) is not None
            return float(hit == (kind == "~"))
        if kind == "in":
            return float(self.key(e[1]) in self.arrays.get(e[2], {}))
        if kind in ("preinc", "postinc"):
            old = to_num(self.get(e[2]))
            self.set(e[2], old + e[1])
            return old + e[1] if kind == "preinc" else old
        if kind == "call":
            return self.call(e[1], e[2])
        if kind == "subsep":
            return self.key(e)
        raise AwkError(f"cannot evaluate {kind}")

    def compare(self, op: str, a: Value, b: Value) -> bool:
        if _is_numeric(a) and _is_numeric(b):
            x: Any = to_num(a)
            y: Any = to_num(b)
        else:
            fmt = to_str(self.vars["CONVFMT"])
            x, y = to_str(a, fmt), to_str(b, fmt)
        result: bool = {"<": x < y, "<=": x <= y, "==": x == y, "!=": x != y, ">": x > y,
                        ">=": x >= y}[op]
        return result

    def call(self, name: str, args: list[Any]) -> Value:
        if name == "length":
            if not args:
                return float(len(self.fields[0]))
            if args[0][0] == "var" and args[0][1] in self.arrays:
                return float(len(self.arrays[args[0][1]]))
            return float(len(to_str(self.eval(args[0]))))
        if name in ("sub", "gsub"):
            return self.substitute(name == "gsub", args)
        if name == "split":
            s = to_str(self.eval(args[0]))
            arr = args[1][1]
            fs = to_str(self.eval(args[2])) if len(args) > 2 else to_str(self.vars["FS"])
            if fs == " ":
                parts = s.split()
            elif len(fs) == 1:
                parts = s.split(fs) if s else []
            else:
                parts = self.regex(fs).split(s) if s else []
            self.arrays[arr] = {str(i): _StrNum(p) for i, p in enumerate(parts, 1)}
            return float(len(parts))
        vals = [self.eval(a) for a in args]
        if name == "substr":
            s = to_str(vals[0])
            start = _round(to_num(vals[1]))
            end = len(s) + 1 if len(vals) < 3 else start + _round(to_num(vals[2]))
            start = max(start, 1)
            return s[start - 1:max(end - 1, start - 1)]
        if name == "index":
            return float(to_str(vals[0]).find(to_str(vals[1])) + 1)
        if name == "match":
            pat = args[1][1] if args[1][0] == "re" else to_str(vals[1])
            m = self.regex(pat).search(to_str(vals[0]))
            self.vars["RSTART"] = float(m.start() + 1) if m else 0.0
            self.vars["RLENGTH"] = float(m.end() - m.start()) if m else -1.0
            return self.vars["RSTART"]
        if name == "sprintf":
            return sprintf(to_str(vals[0]), vals[1:]) if vals else ""
        if name in ("tolower", "toupper"):
            s = to_str(vals[0])
            return s.lower() if name == "tolower" else s.upper()
        if name == "int":
            return float(int(to_num(vals[0])))
        if name == "system":
            return float(self.ctx.run(["sh", "-c", to_str(vals[0])]))
        if name in ("close", "fflush"):
            return 0.0
        if name == "rand":
            return random.random()
        if name == "srand":
            random.seed(to_num(vals[0]) if vals else None)
            return 0.0
        fn = _MATH[name]
        return float(fn(*(to_num(v) for v in vals)))

    def substitute(self, glob: bool, args: list[Any]) -> Value:
        pat = args[0][1] if args[0][0] == "re" else to_str(self.eval(args[0]))
        repl = to_str(self.eval(args[1]))
        target = args[2] if len(args) > 2 else ("field", ("num", 0.0))
        text = to_str(self.get(target))

        def one(m: re.Match[str]) -> str:
            return re.sub(r"\\\\&|\\&|&", lambda r: {"\\\\&": "\\&", "\\&": "&"}.get(
                r.group(), m.group()), repl)
        new, n = self.regex(pat).subn(one, text, count=0 if glob else 1)
        if n:
            self.set(target, new)
        return float(n)


_MATH: dict[str, Callable[..., float]] = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log,
                                          "sin": math.sin, "cos": math.cos,
                                          "atan2": math.atan2}
_FUNCS = frozenset(["length", "substr", "index", "split", "sub", "gsub", "match", "sprintf",
                    "tolower", "toupper", "int", "system", "rand", "srand", "close", "fflush",
                    *_MATH])


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _arith(op: str, a: float, b: float) -> float:
    if op in "/%" and b == 0:
        raise AwkError("division by zero")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "%":
        return math.fmod(a, b)
    return float(a ** b)


_FMT = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


def sprintf(fmt: str, vals: list[Value]) -> str:
    """awk's sprintf: %d %i %o %x %X %u %c %s %e %f %g %%."""
    out: list[str] = []
    pos = 0
    it = iter(vals)

    def nxt() -> Value:
        return next(it, UNINIT)
    for m in _FMT.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, conv = m.groups()
        if conv == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(int(to_num(nxt())))
        if prec == "*":
            prec = str(int(to_num(nxt())))
        spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
        v = nxt()
        if conv in "dioxXu":
            out.append((spec + ("d" if conv in "iu" else conv)) % int(to_num(v)))
        elif conv in "eEfFgG":
            out.append((spec + conv) % to_num(v))
        elif conv == "c":
            c = chr(int(v)) if isinstance(v, float) else to_str(v)[:1]
            out.append((spec + "s") % c)
        else:
            out.append((spec + "s") % to_str(v))
    out.append(fmt[pos:])
    return "".join(out)


def awk_main(ctx: Ctx, argv: list[str]) -> int:
    """``awk [-F fs] [-v var=value] [-f file | 'program'] [file ...]``."""
    args = argv[1:]
    variables: dict[str, Value] = {}
    program: str | None = None
    while args and args[0].startswith("-") and args[0] != "-":
        a = args.pop(0)
        if a == "--":
            break
        if a.startswith("-F"):
            fs = a[2:] or (args.pop(0) if args else " ")
            variables["FS"] = "\t" if fs == "t" else _unescape(fs)
        elif a.startswith("-v"):
            assign = a[2:] or (args.pop(0) if args else "")
            name, _, value = assign.partition("=")
            variables[name] = _StrNum(_unescape(value))
        elif a.startswith("-f"):
            path = a[2:] or (args.pop(0) if args else "")
            program = ctx.read_file(path).decode("utf-8", "surrogateescape")
        else:
            ctx.error(f"unknown option {a}")
            return 2
    if program is None:
        if not args:
            ctx.error("usage: awk [-F fs] [-v var=value] 'program' [file ...]")
            return 2
        program = args.pop(0)
    try:
        items = _Parser(tokenize(program)).program()
    except AwkError as e:
        ctx.error(str(e))
        return 2
    files: list[str] = []
    for a in args:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", a, re.DOTALL)
        if m:
            variables[m.group(1)] = _StrNum(m.group(2))
        else:
            files.append(a)
    inputs: list[tuple[str, Input]] = []
    status = 0
    for f in files or ["-"]:
        try:
            inputs.append((f if f != "-" else "", ctx.stdin_stream if f in ("-", "/dev/stdin")
                           else Input(ctx.read_file(f))))
        except FsError as e:
            ctx.error(f"cannot open \"{f}\": {e.strerror}")
            status = 2
    try:
        code = _Awk(ctx, items, variables).run(inputs)
    except (AwkError, RecursionError) as e:
        ctx.error(str(e))
        return 2
    return code or status


command("awk gawk mawk", COMMANDS)(awk_main)
