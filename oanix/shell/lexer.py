"""The shell lexer: source text to tokens, and words to their parts.

Words are split into parts as they are read (literal text, quotes, ``$`` expansions,
command substitutions), so the parser never looks at characters. A command substitution
``$(...)`` is parsed by a recursive call of the parser on the same source, so quotes,
``case`` patterns and here-documents inside it need no special scanning. The lexer does
not import the parser (which reads words through it): whoever makes a lexer hands it a
``ScriptReader``, the parser's entry points.

Here-documents: when the word after ``<<`` is read, the lexer finds where the current
line ends (by lexing the rest of it), reads the body from the next line and, on reaching
that newline, jumps over the body.

All word-part and token classes are attrs frozen: immutable and safe to share.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from .parser import Script

__all__ = ["DQ", "SQ", "Arith", "CmdSub", "Lit", "Param", "Part", "ProcSub", "ScriptReader",
           "ShellSyntaxError", "Token", "Word", "Lexer", "position"]


class ShellSyntaxError(Exception):
    """A script could not be parsed; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"syntax error at line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


# -- word parts --------------------------------------------------------------------------


@attrs.frozen
class Lit:
    """Unquoted literal text (subject to globbing, not to field splitting)."""

    text: str


@attrs.frozen
class SQ:
    """Single-quoted text, or one backslash-escaped character: taken literally."""

    text: str


@attrs.frozen
class DQ:
    """A double-quoted string: literal text and expansions, never split or globbed."""

    parts: tuple[Part, ...]


@attrs.frozen
class Param:
    """``$name`` or ``${name<op><arg>}``; ``op`` is ``""``, ``len`` (``${#name}``),
    one of ``- := + ? :- := :+ :?``, ``# ## % %%``, ``/ //`` (``arg2`` is the
    replacement), ``:`` (substring ``offset[:length]``) or ``,, ^^ , ^`` (case)."""

    name: str
    op: str = ""
    arg: Word | None = None
    arg2: Word | None = None
    index: Word | None = None  # ${name[index]}: an array element (@ or * for all)


@attrs.frozen
class CmdSub:
    """``$(...)`` or a backquoted command: replaced by the command's output."""

    body: Script


@attrs.frozen
class ProcSub:
    """``<(...)`` (``direction`` ``<``) or ``>(...)``: replaced by a file's path."""

    body: Script
    direction: str


@attrs.frozen
class Arith:
    """``$((expr))``: the expression is expanded and then evaluated as integers."""

    expr: Word


Part = Lit | SQ | DQ | Param | CmdSub | ProcSub | Arith
_QUOTING = "'\"$`"  # what starts a quoted or expanded part of a word


@attrs.frozen
class Word:
    """A shell word: a sequence of parts (adjacent ``Lit`` parts are always merged)."""

    parts: tuple[Part, ...]

    def literal(self) -> str | None:
        """The text of a word made of one unquoted literal, else None."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Lit):
            return self.parts[0].text
        return None


def merge_parts(parts: list[Part]) -> tuple[Part, ...]:
    """``parts`` with adjacent literals joined and empty literals dropped."""
    out: list[Part] = []
    for p in parts:
        if isinstance(p, Lit):
            if not p.text:
                continue
            if out and isinstance(out[-1], Lit):
                out[-1] = Lit(out[-1].text + p.text)
                continue
        out.append(p)
    return tuple(out)


# -- tokens ------------------------------------------------------------------------------


@attrs.frozen
class Token:
    """A token: ``kind`` is WORD, OP, IO_NUMBER, NEWLINE or EOF; ``pos`` its offset."""

    kind: str
    value: str
    pos: int
    word: Word | None = None
    heredoc: str | None = None  # the body, on the delimiter word after << or <<-


OPERATORS = sorted(["&&", "||", ";;", "<<-", "<<<", "<<", ">>", "&>>", "&>", ">&", "<&", ">|",
                    "<>", "|", "&", ";", "<", ">", "(", ")"], key=len, reverse=True)
_META = frozenset(" \t\n|&;<>()")
_SPECIAL_PARAMS = frozenset("@*#?$!-")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_PARAM_OPS = (":-", ":=", ":+", ":?", ":", "-", "=", "+", "?", "##", "#", "%%", "%", "//",
              "/", ",,", "^^", ",", "^")
_ANSI_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                 "e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def position(src: str, pos: int) -> tuple[int, int]:
    """The 1-based (line, column) of offset ``pos`` in ``src``."""
    line = src.count("\n", 0, pos) + 1
    col = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return line, col


class ScriptReader(Protocol):
    """How a lexer reads the script inside a command substitution (the parser's entry
    points, ``oanix.shell.parser.SCRIPTS``).

    Locking: none needed; a reader keeps no state between calls.
    """

    def parse(self, src: str) -> Script:
        """The whole script ``src`` (a backquoted command's body)."""
        ...

    def parse_substitution(self, src: str, pos: int) -> tuple[Script, int]:
        """The script of ``$(...)`` whose body starts at ``pos``, and the offset after the
        closing ``)``."""
        ...


class Lexer:
    """Tokens of ``src`` from offset ``pos``, one at a time (``next``); ``scripts`` reads
    the scripts of command substitutions.

    Locking: none; a Lexer belongs to the one parse that created it.
    """

    def __init__(self, src: str, pos: int = 0, heredocs: bool = True, *,
                 scripts: ScriptReader) -> None:
        self.src = src
        self.pos = pos
        self.scripts = scripts
        self._heredocs = heredocs
        self._want_delim: str | None = None  # "<<" or "<<-" just seen
        self._jump_nl: int | None = None  # the newline after which bodies start
        self._body_end: int | None = None  # where the last read body ends

    def error(self, message: str, pos: int | None = None) -> ShellSyntaxError:
        """A syntax error at ``pos`` (default: the current offset)."""
        line, col = position(self.src, self.pos if pos is None else pos)
        return ShellSyntaxError(message, line, col)

    # -- tokens -------------------------------------------------------------------------

    def next(self) -> Token:
        """The next token."""
        src = self.src
        while True:
            while self.pos < len(src) and src[self.pos] in " \t":
                self.pos += 1
            if src.startswith("\\\n", self.pos):
                self.pos += 2
                continue
            if self.pos < len(src) and src[self.pos] == "#":
                end = src.find("\n", self.pos)
                self.pos = len(src) if end < 0 else end
            break
        start = self.pos
        if start >= len(src):
            return Token("EOF", "", start)
        c = src[start]
        if c == "\n":
            self.pos += 1
            if self._jump_nl == start:
                assert self._body_end is not None
                self.pos = self._body_end
                self._jump_nl = self._body_end = None
            return Token("NEWLINE", "\n", start)
        for op in () if src.startswith(("<(", ">("), start) else OPERATORS:
            if src.startswith(op, start):
                self.pos += len(op)
                if op in ("<<", "<<-"):
                    self._want_delim = op
                return Token("OP", op, start)
        word = self.read_word()
        text = word.literal()
        if text is not None and text.isdigit() and self.pos < len(src) \
                and src[self.pos] in "<>":
            return Token("IO_NUMBER", text, start, word)
        if self._want_delim is not None:
            strip = self._want_delim == "<<-"
            self._want_delim = None
            if self._heredocs:
                return Token("WORD", src[start:self.pos], start, word,
                             self._read_heredoc(word, strip))
        return Token("WORD", src[start:self.pos], start, word)

    # -- here-documents -----------------------------------------------------------------

    def _read_heredoc(self, delim_word: Word, strip: bool) -> str:
        delim = "".join(_plain_text(p) for p in delim_word.parts)
        if self._jump_nl is None:
            probe = Lexer(self.src, self.pos, heredocs=False, scripts=self.scripts)
            while (tok := probe.next()).kind not in ("NEWLINE", "EOF"):
                pass
            if tok.kind == "EOF":
                return ""
            self._jump_nl = tok.pos
            body_start = tok.pos + 1
        else:
            assert self._body_end is not None
            body_start = self._body_end
        lines: list[str] = []
        pos = body_start
        src = self.src
        while pos < len(src):
            end = src.find("\n", pos)
            nxt = len(src) if end < 0 else end + 1
            line = src[pos:len(src) if end < 0 else end]
            if strip:
                line = line.lstrip("\t")
            pos = nxt
            if line == delim:
                break
            lines.append(line + "\n")
        self._body_end = pos
        return "".join(lines)

    # -- words --------------------------------------------------------------------------

    def read_word(self) -> Word:
        """Read an unquoted-context word up to a metacharacter."""
        parts: list[Part] = []
        src = self.src
        while self.pos < len(src):
            c = src[self.pos]
            if c in "<>" and src.startswith("(", self.pos + 1):
                body, self.pos = self.scripts.parse_substitution(src, self.pos + 2)
                parts.append(ProcSub(body, c))
                continue
            if c in _META:
                break
            if c == "\\":
                if self.pos + 1 >= len(src):
                    parts.append(Lit("\\"))
                    self.pos += 1
                elif src[self.pos + 1] == "\n":
                    self.pos += 2
                else:
                    parts.append(SQ(src[self.pos + 1]))
                    self.pos += 2
            elif c in _QUOTING:
                parts.append(self._quoting(c))
            else:
                start = self.pos
                while self.pos < len(src) and src[self.pos] not in _META \
                        and src[self.pos] not in "\\'\"$`":
                    self.pos += 1
                parts.append(Lit(src[start:self.pos]))
        return Word(merge_parts(parts))

    def _quoting(self, c: str) -> Part:
        """The part that starts at ``c``, one of ``_QUOTING``, outside double quotes."""
        if c == "'":
            return self._single_quoted()
        if c == '"':
            return self._double_quoted()
        if c == "$":
            return self._dollar()
        return self._backquoted(in_dq=False)

    def _single_quoted(self) -> SQ:
        start = self.pos
        end = self.src.find("'", start + 1)
        if end < 0:
            raise self.error("unterminated single quote", start)
        self.pos = end + 1
        return SQ(self.src[start + 1:end])

    def _double_quoted(self) -> DQ:
        start = self.pos
        self.pos += 1
        parts = self.read_dq_parts('"')
        if self.pos >= len(self.src):
            raise self.error("unterminated double quote", start)
        self.pos += 1
        return DQ(parts)

    def read_dq_parts(self, stop: str | None) -> tuple[Part, ...]:
        """Double-quote content up to ``stop`` (None: the end, as in a here-document)."""
        parts: list[Part] = []
        src = self.src
        escapable = "$`\"\\\n" if stop == '"' else "$`\\\n"
        while self.pos < len(src):
            c = src[self.pos]
            if c == stop:
                break
            if c == "\\" and self.pos + 1 < len(src) and src[self.pos + 1] in escapable:
                if src[self.pos + 1] != "\n":
                    parts.append(Lit(src[self.pos + 1]))
                self.pos += 2
            elif c == "$":
                parts.append(self._dollar())
            elif c == "`":
                parts.append(self._backquoted(in_dq=stop == '"'))
            else:
                parts.append(Lit(c))
                self.pos += 1
        return merge_parts(parts)

    def _backquoted(self, in_dq: bool) -> CmdSub:
        start = self.pos
        self.pos += 1
        src = self.src
        buf: list[str] = []
        while True:
            if self.pos >= len(src):
                raise self.error("unterminated backquote", start)
            c = src[self.pos]
            if c == "`":
                self.pos += 1
                break
            if c == "\\" and self.pos + 1 < len(src) and (
                    src[self.pos + 1] in "$`\\" or (in_dq and src[self.pos + 1] == '"')):
                buf.append(src[self.pos + 1])
                self.pos += 2
                continue
            buf.append(c)
            self.pos += 1
        try:
            return CmdSub(self.scripts.parse("".join(buf)))
        except ShellSyntaxError as e:
            raise self.error(f"in backquoted command: {e.message}", start) from None

    def _dollar(self) -> Part:
        src = self.src
        start = self.pos
        nxt = src[start + 1:start + 2]
        if src.startswith("$((", start):
            self.pos += 3
            return Arith(self.arith_body(start))
        if nxt == "(":
            body, self.pos = self.scripts.parse_substitution(src, start + 2)
            return CmdSub(body)
        if nxt == "{":
            return self._braced_param()
        if nxt == "'":
            return self._ansi_c_quoted()
        if nxt and nxt in _NAME_START:
            end = start + 1
            while end < len(src) and src[end] in _NAME_CHARS:
                end += 1
            self.pos = end
            return Param(src[start + 1:end])
        if nxt and (nxt.isdigit() or nxt in _SPECIAL_PARAMS):
            self.pos += 2
            return Param(nxt)
        self.pos += 1
        return Lit("$")

    def _ansi_c_quoted(self) -> SQ:
        """``$'...'``: backslash escapes are decoded, the result is literal."""
        src = self.src
        start = self.pos
        i = start + 2
        out: list[str] = []
        while True:
            if i >= len(src):
                raise self.error("unterminated $' quote", start)
            c = src[i]
            if c == "'":
                break
            if c == "\\" and i + 1 < len(src):
                d = src[i + 1]
                m = re.match(r"x([0-9a-fA-F]{1,2})|([0-7]{1,3})", src[i + 1:i + 5])
                if d in _ANSI_ESCAPES:
                    out.append(_ANSI_ESCAPES[d])
                    i += 2
                elif m is not None:
                    out.append(chr(int(m.group(1), 16) if m.group(1) else int(m.group(2), 8)))
                    i += 1 + m.end()
                else:
                    out.append(c + d)
                    i += 2
                continue
            out.append(c)
            i += 1
        self.pos = i + 1
        return SQ("".join(out))

    def arith_body(self, start: int) -> Word:
        """The expression of ``$((...))`` from the current offset through ``))``."""
        parts: list[Part] = []
        src = self.src
        depth = 0
        while True:
            if self.pos >= len(src):
                raise self.error("unterminated arithmetic expansion", start)
            c = src[self.pos]
            if c == ")" and depth == 0:
                if not src.startswith("))", self.pos):
                    raise self.error("bad arithmetic expansion", start)
                self.pos += 2
                return Word(merge_parts(parts))
            if c == "$":
                parts.append(self._dollar())
                continue
            if c == "`":
                parts.append(self._backquoted(in_dq=False))
                continue
            depth += (c == "(") - (c == ")")
            parts.append(Lit(c))
            self.pos += 1

    def _braced_param(self) -> Param:
        src = self.src
        start = self.pos
        self.pos += 2
        length = False
        if src.startswith("#", self.pos) and not src.startswith("#}", self.pos):
            length = True
            self.pos += 1
        name_start = self.pos
        if self.pos < len(src) and src[self.pos] in _NAME_START:
            while self.pos < len(src) and src[self.pos] in _NAME_CHARS:
                self.pos += 1
        elif self.pos < len(src) and src[self.pos].isdigit():
            while self.pos < len(src) and src[self.pos].isdigit():
                self.pos += 1
        elif self.pos < len(src) and src[self.pos] in _SPECIAL_PARAMS:
            self.pos += 1
        name = src[name_start:self.pos]
        if not name:
            raise self.error("bad substitution", start)
        index = None
        if name[0] in _NAME_START and src.startswith("[", self.pos):
            self.pos += 1
            index = self._param_word(start, "]")
            self.pos += 1
        if length:
            if not src.startswith("}", self.pos):
                raise self.error("bad substitution", start)
            self.pos += 1
            return Param(name, "len", index=index)
        if src.startswith("}", self.pos):
            self.pos += 1
            return Param(name, index=index)
        for op in _PARAM_OPS:
            if src.startswith(op, self.pos):
                self.pos += len(op)
                break
        else:
            raise self.error("bad substitution", start)
        if op in ("/", "//"):
            arg = self._param_word(start, "/}")
            arg2 = None
            if src.startswith("/", self.pos):
                self.pos += 1
                arg2 = self._param_word(start, "}")
            self.pos += 1
            return Param(name, op, arg, arg2, index)
        arg = self._param_word(start, "}")
        self.pos += 1
        return Param(name, op, arg, index=index)

    def _param_word(self, start: int, stops: str) -> Word:
        """The argument of a ``${...}`` operator up to one of ``stops`` (not consumed)."""
        parts: list[Part] = []
        src = self.src
        while True:
            if self.pos >= len(src):
                raise self.error("unterminated parameter expansion", start)
            c = src[self.pos]
            if c in stops:
                return Word(merge_parts(parts))
            if c == "\\" and self.pos + 1 < len(src):
                parts.append(SQ(src[self.pos + 1]))
                self.pos += 2
            elif c in _QUOTING:
                parts.append(self._quoting(c))
            else:
                parts.append(Lit(c))
                self.pos += 1


def _plain_text(p: Part) -> str:
    """The text of a here-document delimiter part after quote removal."""
    if isinstance(p, (Lit, SQ)):
        return p.text
    if isinstance(p, DQ):
        return "".join(_plain_text(q) for q in p.parts)
    if isinstance(p, Param):
        return "$" + p.name
    return ""
