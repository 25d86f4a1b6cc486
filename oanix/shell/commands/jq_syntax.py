"""jq syntax: the lexer and the parser, giving a filter as a tree of tuples."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from .jq_values import _CMP_OPS, JqSyntaxError, Node, _num

__all__ = ["parse"]

# -- lexer ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>")
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\$(?:__loc__|[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*))
  | (?P<fmt>@[A-Za-z0-9_]+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>\?//|\|=|\+=|-=|\*=|/=|%=|//=|==|!=|<=|>=|//|\.\.|[.\[\]{}()|,:;=<>+\-*/%?])
""", re.VERBOSE)

_KEYWORDS = frozenset(["if", "then", "elif", "else", "end", "as", "def", "reduce", "foreach",
                       "try", "catch", "label", "import", "include", "and", "or", "__loc__"])


def _lex(src: str) -> list[tuple[str, Any]]:
    toks: list[tuple[str, Any]] = []
    i = 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if m is None:
            raise JqSyntaxError(f"unexpected character {src[i]!r} at position {i}")
        kind = m.lastgroup or ""
        if kind == "ws":
            i = m.end()
            continue
        if kind == "str":
            parts, i = _lex_string(src, m.end())
            toks.append(("str", parts))
            continue
        text = m.group()
        if kind == "num":
            toks.append(("num", _num(float(text)) if re.search(r"[.eE]", text)
                         else int(text)))
        elif kind == "ident" and text in _KEYWORDS:
            toks.append(("kw", text))
        else:
            toks.append((kind, text))
        i = m.end()
    toks.append(("eof", None))
    return toks


def _lex_string(src: str, i: int) -> tuple[list[str | Node], int]:
    """The parts of a string literal starting after its quote: text and ``\\(...)`` trees."""
    parts: list[str | Node] = []
    buf: list[str] = []
    while True:
        if i >= len(src):
            raise JqSyntaxError("unterminated string literal")
        c = src[i]
        if c == '"':
            if buf or not parts:
                parts.append("".join(buf))
            return parts, i + 1
        if c != "\\":
            buf.append(c)
            i += 1
            continue
        e = src[i + 1:i + 2]
        if e == "(":
            depth, j = 1, i + 2
            while j < len(src) and depth:
                if src[j] == '"':
                    _, j = _lex_string(src, j + 1)
                    continue
                depth += {"(": 1, ")": -1}.get(src[j], 0)
                j += 1
            if depth:
                raise JqSyntaxError("unterminated string interpolation")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(_Parser(src[i + 2:j - 1]).parse())
            i = j
        elif e == "u":
            code = int(src[i + 2:i + 6], 16)
            i += 6
            if 0xD800 <= code < 0xDC00 and src[i:i + 2] == "\\u":
                low = int(src[i + 2:i + 6], 16)
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            buf.append(chr(code))
        elif e in _UNESC:
            buf.append(_UNESC[e])
            i += 2
        else:
            raise JqSyntaxError(f"invalid escape \\{e} in string literal")


_UNESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
          "t": "\t"}


# -- parser ---------------------------------------------------------------------------------

_ASSIGN_OPS = frozenset(["=", "|=", "+=", "-=", "*=", "/=", "%=", "//="])


class _Parser:
    """Recursive descent following jq's precedence: ``|`` < ``,`` < ``//`` < assignments
    < ``or`` < ``and`` < comparisons < ``+ -`` < ``* / %`` < postfix terms."""

    def __init__(self, src: str) -> None:
        self.toks = _lex(src)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, Any]:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def at(self, *values: str) -> bool:
        kind, v = self.peek()
        return kind in ("op", "kw") and v in values

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, v = self.take()
        if v != value or kind not in ("op", "kw"):
            raise JqSyntaxError(f"syntax error: expected {value!r}, got {v!r}")

    def parse(self) -> Node:
        node = self.pipe()
        if self.peek()[0] != "eof":
            raise JqSyntaxError(f"syntax error: unexpected {self.peek()[1]!r}")
        return node

    def pipe(self) -> Node:
        if self.at("def"):
            name, params, body = self.funcdef()
            return ("def", name, params, body, self.pipe())
        if self.at("label"):
            self.take()
            kind, name = self.take()
            if kind != "var":
                raise JqSyntaxError("syntax error: label needs a $name")
            self.expect("|")
            return ("label", name[1:], self.pipe())
        start = self.i
        if not self.at("-", "reduce", "foreach", "if", "try"):
            with contextlib.suppress(JqSyntaxError):
                term = self.postfix()
                if self.at("as"):
                    self.take()
                    patterns = [self.pattern()]
                    while self.at("?//"):
                        self.take()
                        patterns.append(self.pattern())
                    self.expect("|")
                    return ("bind", term, patterns, self.pipe())
            self.i = start
        lhs = self.comma()
        if self.at("|"):
            self.take()
            return ("pipe", lhs, self.pipe())
        return lhs

    def funcdef(self) -> tuple[str, list[str], Node]:
        self.expect("def")
        kind, name = self.take()
        if kind not in ("ident", "kw"):
            raise JqSyntaxError(f"syntax error: bad function name {name!r}")
        params: list[str] = []
        if self.at("("):
            self.take()
            while True:
                k, p = self.take()
                if k not in ("ident", "var"):
                    raise JqSyntaxError(f"syntax error: bad parameter {p!r}")
                params.append(p)
                if self.at(";"):
                    self.take()
                    continue
                self.expect(")")
                break
        self.expect(":")
        body = self.pipe()
        self.expect(";")
        return name, params, body

    def pattern(self) -> Node:
        kind, v = self.peek()
        if kind == "var":
            self.take()
            return ("pvar", v[1:])
        if self.at("["):
            self.take()
            items = []
            while not self.at("]"):
                items.append(self.pattern())
                if not self.at("]"):
                    self.expect(",")
            self.take()
            return ("parray", items)
        if self.at("{"):
            self.take()
            entries: list[tuple[Node, Node | None]] = []
            while not self.at("}"):
                kind, v = self.take()
                if kind == "var":
                    key: Node = ("literal", v[1:])
                    bind: Node | None = ("pvar", v[1:])
                    if self.at(":"):
                        self.take()
                        entries.append((key, bind))
                        bind = self.pattern()
                    entries.append((key, bind))
                else:
                    if kind in ("ident", "kw"):
                        key = ("literal", v)
                    elif kind == "str":
                        key = ("string", v, None)
                    elif kind == "op" and v == "(":
                        key = self.pipe()
                        self.expect(")")
                    else:
                        raise JqSyntaxError(f"syntax error in object pattern at {v!r}")
                    self.expect(":")
                    entries.append((key, self.pattern()))
                if not self.at("}"):
                    self.expect(",")
            self.take()
            return ("pobject", entries)
        raise JqSyntaxError(f"syntax error: bad pattern at {v!r}")

    def comma(self) -> Node:
        lhs = self.alt()
        while self.at(","):
            self.take()
            lhs = ("comma", lhs, self.alt())
        return lhs

    def alt(self) -> Node:
        lhs = self.assign()
        if self.at("//"):
            self.take()
            return ("alt", lhs, self.alt())
        return lhs

    def assign(self) -> Node:
        lhs = self.or_()
        kind, v = self.peek()
        if kind == "op" and v in _ASSIGN_OPS:
            self.take()
            return ("assign", v, lhs, self.alt())
        return lhs

    def or_(self) -> Node:
        lhs = self.and_()
        while self.at("or"):
            self.take()
            lhs = ("or", lhs, self.and_())
        return lhs

    def and_(self) -> Node:
        lhs = self.cmp()
        while self.at("and"):
            self.take()
            lhs = ("and", lhs, self.cmp())
        return lhs

    def cmp(self) -> Node:
        lhs = self.add()
        kind, v = self.peek()
        if kind == "op" and v in _CMP_OPS:
            self.take()
            return ("binop", v, lhs, self.add())
        return lhs

    def add(self) -> Node:
        lhs = self.mul()
        while self.at("+", "-"):
            op = self.take()[1]
            lhs = ("binop", op, lhs, self.mul())
        return lhs

    def mul(self) -> Node:
        lhs = self.unary()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            lhs = ("binop", op, lhs, self.unary())
        return lhs

    def unary(self) -> Node:
        if self.at("-"):
            self.take()
            return ("neg", self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.term()
        while True:
            kind, v = self.peek()
            if kind == "field":
                self.take()
                node = ("index", node, ("literal", v[1:]))
            elif kind == "op" and v == "." and self.peek(1)[0] == "str":
                self.take()
                node = ("index", node, ("string", self.take()[1], None))
            elif kind == "op" and v == "." and self.peek(1) == ("op", "["):
                self.take()
            elif kind == "op" and v == "[":
                node = self.bracket(node)
            elif kind == "op" and v == "?":
                self.take()
                node = ("try", node, None)
            else:
                return node

    def bracket(self, node: Node) -> Node:
        self.expect("[")
        if self.at("]"):
            self.take()
            return ("iter", node)
        if self.at(":"):
            self.take()
            hi = self.pipe()
            self.expect("]")
            return ("slice", node, None, hi)
        idx = self.pipe()
        if self.at(":"):
            self.take()
            hi2 = None if self.at("]") else self.pipe()
            self.expect("]")
            return ("slice", node, idx, hi2)
        self.expect("]")
        return ("index", node, idx)

    def term(self) -> Node:
        kind, v = self.take()
        if kind == "num":
            return ("literal", v)
        if kind == "str":
            return ("string", v, None)
        if kind == "field":
            return ("index", ("identity",), ("literal", v[1:]))
        if kind == "var":
            return ("var", v[1:])
        if kind == "fmt":
            if self.peek()[0] == "str":
                return ("string", self.take()[1], v[1:])
            return ("format", v[1:])
        if kind == "op":
            if v == ".":
                if self.peek()[0] == "str":
                    return ("index", ("identity",), ("string", self.take()[1], None))
                if self.at("["):
                    return self.bracket(("identity",))
                return ("identity",)
            if v == "..":
                return ("call", "recurse", [])
            if v == "(":
                node = self.pipe()
                self.expect(")")
                return node
            if v == "[":
                if self.at("]"):
                    self.take()
                    return ("array", None)
                node = self.pipe()
                self.expect("]")
                return ("array", node)
            if v == "{":
                return self.object()
            if v == "-":
                return ("neg", self.postfix())
        if kind == "kw":
            if v == "if":
                return self.if_()
            if v == "try":
                body = self.postfix()
                catch = None
                if self.at("catch"):
                    self.take()
                    catch = self.postfix()
                return ("try", body, catch)
            if v in ("reduce", "foreach"):
                src = self.postfix()
                self.expect("as")
                pat = self.pattern()
                self.expect("(")
                init = self.pipe()
                self.expect(";")
                update = self.pipe()
                extract = None
                if v == "foreach" and self.at(";"):
                    self.take()
                    extract = self.pipe()
                self.expect(")")
                return (v, src, pat, init, update, extract)
            if v == "def":
                self.i -= 1
                name, params, body = self.funcdef()
                return ("def", name, params, body, self.pipe())
        if kind == "ident" and v in ("true", "false", "null") and not self.at("("):
            return ("literal", {"true": True, "false": False, "null": None}[v])
        if kind == "ident" and v == "break" and self.peek()[0] == "var":
            return ("break", self.take()[1][1:])
        if kind == "ident":
            args: list[Node] = []
            if self.at("("):
                self.take()
                while True:
                    args.append(self.pipe())
                    if self.at(";"):
                        self.take()
                        continue
                    self.expect(")")
                    break
            return ("call", v, args)
        raise JqSyntaxError(f"syntax error: unexpected {v!r}")

    def if_(self) -> Node:
        cond = self.pipe()
        self.expect("then")
        then = self.pipe()
        if self.at("elif"):
            self.take()
            return ("if", cond, then, self.if_())
        other: Node = ("identity",)
        if self.at("else"):
            self.take()
            other = self.pipe()
        self.expect("end")
        return ("if", cond, then, other)

    def object(self) -> Node:
        entries: list[tuple[Node, Node]] = []
        while not self.at("}"):
            kind, v = self.take()
            if kind == "var":
                key: Node = ("literal", v[1:])
                entries.append((key, ("var", v[1:])))
            elif kind in ("ident", "kw", "str", "num") or (kind == "fmt") or (
                    kind == "op" and v == "("):
                if kind in ("ident", "kw"):
                    key = ("literal", v)
                elif kind == "str":
                    key = ("string", v, None)
                elif kind == "num":
                    key = ("literal", v)
                elif kind == "fmt":
                    key = ("string", self.take()[1], v[1:])
                else:
                    key = self.pipe()
                    self.expect(")")
                if self.at(":"):
                    self.take()
                    entries.append((key, self.objval()))
                else:
                    entries.append((key, ("index", ("identity",), key)))
            else:
                raise JqSyntaxError(f"syntax error in object construction at {v!r}")
            if not self.at("}"):
                self.expect(",")
        self.take()
        return ("object", entries)

    def objval(self) -> Node:
        """An object value: a term chain joined by ``|`` (no bare ``,``)."""
        lhs = self.alt_noncomma()
        while self.at("|"):
            self.take()
            lhs = ("pipe", lhs, self.alt_noncomma())
        return lhs

    def alt_noncomma(self) -> Node:
        return self.alt()



def parse(src: str) -> Node:
    """The tree of filter ``src``; raises JqSyntaxError."""
    return _Parser(src).parse()
