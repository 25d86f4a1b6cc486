"""The shell parser: tokens to an AST of attrs frozen classes, and ``unparse`` back.

Grammar (a POSIX sh subset)::

    script    := list
    list      := and_or ((';' | '&' | NEWLINE) and_or)*
    and_or    := pipeline (('&&' | '||') pipeline)*
    pipeline  := ['!'] command ('|' command)*
    command   := simple | compound redirect* | NAME '(' ')' compound
    compound  := '{' list '}' | '(' list ')' | if | while | until | for | case
               | '((' arith '))' | 'for ((' init; cond; step '))' | '[[' words ']]'

All AST classes are attrs frozen: immutable, comparable, safe to share between threads.
"""

from __future__ import annotations

import re

import attrs

from .lexer import (
    DQ,
    SQ,
    CmdSub,
    Lexer,
    Lit,
    Param,
    Part,
    ProcSub,
    ShellSyntaxError,
    Token,
    Word,
    merge_parts,
)

__all__ = ["AndOr", "ArithCmd", "Assign", "Case", "CaseArm", "Command", "For", "ForArith",
           "FuncDef", "Group", "If", "Pipeline", "Redir", "SCRIPTS", "Script", "Simple", "Subshell",
           "While", "parse", "parse_substitution", "unparse"]

RESERVED = frozenset(["if", "then", "else", "elif", "fi", "do", "done", "case", "esac",
                      "while", "until", "for", "in", "{", "}", "!", "function"])
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PAREN = re.compile(r"[ \t]*\(")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
REDIR_OPS = frozenset(["<", ">", ">>", ">|", "<>", ">&", "<&", "&>", "&>>", "<<", "<<-", "<<<"])


@attrs.frozen
class Redir:
    """A redirection: ``fd`` (None: the default for ``op``), ``op`` and its target word;
    a here-document keeps its body text in ``heredoc`` (and ``body``, the parsed body, for
    an unquoted delimiter)."""

    fd: int | None
    op: str
    target: Word
    heredoc: str | None = None
    body: Word | None = None


@attrs.frozen
class Assign:
    """``name=value`` (``append``: ``name+=value``); ``name[index]=value`` sets an array
    element and ``name=(words)`` (``array``) a whole array."""

    name: str
    value: Word
    append: bool = False
    index: Word | None = None
    array: tuple[Word, ...] | None = None


@attrs.frozen
class Simple:
    """A simple command: assignments, words and redirections."""

    assigns: tuple[Assign, ...]
    words: tuple[Word, ...]
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class Group:
    """``{ body; }``."""

    body: Script
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class Subshell:
    """``( body )``: runs in a copy of the shell state."""

    body: Script
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class If:
    """``if c1; then b1; elif c2; then b2; else e; fi``: ``clauses`` are (cond, body)."""

    clauses: tuple[tuple[Script, Script], ...]
    orelse: Script | None = None
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class While:
    """``while cond; do body; done`` (``until``: loop while cond fails)."""

    cond: Script
    body: Script
    until: bool = False
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class For:
    """``for var in items; do body; done`` (``items`` None: the positional parameters)."""

    var: str
    items: tuple[Word, ...] | None
    body: Script
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class ForArith:
    """``for ((init; cond; step)); do body; done`` (an empty cond is true)."""

    init: Word
    cond: Word
    step: Word
    body: Script
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class CaseArm:
    """``pat1 | pat2) body ;;``."""

    patterns: tuple[Word, ...]
    body: Script


@attrs.frozen
class Case:
    """``case word in arms esac``."""

    word: Word
    arms: tuple[CaseArm, ...]
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class ArithCmd:
    """``(( expr ))``: status 0 when the expression is not zero."""

    expr: Word
    redirs: tuple[Redir, ...] = ()


@attrs.frozen
class FuncDef:
    """``name() compound``."""

    name: str
    body: Command


Command = (Simple | Group | Subshell | If | While | For | ForArith | Case | ArithCmd
           | FuncDef)


@attrs.frozen
class Pipeline:
    """``[!] cmd | cmd ...``."""

    commands: tuple[Command, ...]
    negated: bool = False


@attrs.frozen
class AndOr:
    """``p1 && p2 || p3``: ``rest`` holds (operator, pipeline) pairs; ``background``
    marks a list ended by ``&``."""

    first: Pipeline
    rest: tuple[tuple[str, Pipeline], ...] = ()
    background: bool = False


@attrs.frozen
class Script:
    """A list of and-or lists, run in order."""

    items: tuple[AndOr, ...]


# -- parsing -----------------------------------------------------------------------------


class _Parser:
    """Recursive descent over a Lexer with one token of lookahead.

    Locking: none; one parse, one thread.
    """

    def __init__(self, src: str, pos: int = 0) -> None:
        self.lexer = Lexer(src, pos, scripts=SCRIPTS)
        self.tok = self.lexer.next()

    def advance(self) -> Token:
        tok = self.tok
        self.tok = self.lexer.next()
        return tok

    def error(self, tok: Token | None = None) -> ShellSyntaxError:
        tok = tok or self.tok
        if tok.kind == "EOF":
            return self.lexer.error("unexpected end of file", tok.pos)
        shown = "newline" if tok.kind == "NEWLINE" else tok.value
        return self.lexer.error(f"unexpected token '{shown}'", tok.pos)

    def is_kw(self, *words: str) -> bool:
        tok = self.tok
        return tok.kind == "WORD" and tok.word is not None and tok.word.literal() in words

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "OP" and self.tok.value in ops

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.error()
        self.advance()

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.error()
        self.advance()

    def linebreak(self) -> None:
        while self.tok.kind == "NEWLINE":
            self.advance()

    # -- lists ---------------------------------------------------------------------------

    def script(self, stop_kws: tuple[str, ...] = (), stop_ops: tuple[str, ...] = (),
               allow_empty: bool = False) -> Script:
        items: list[AndOr] = []
        self.linebreak()
        while True:
            if self.tok.kind == "EOF" or self.is_kw(*stop_kws) or self.is_op(*stop_ops):
                break
            item = self.and_or()
            if self.is_op("&"):
                self.advance()
                item = attrs.evolve(item, background=True)
            elif self.is_op(";"):
                self.advance()
            elif self.tok.kind == "NEWLINE":
                pass
            else:
                items.append(item)
                break
            items.append(item)
            self.linebreak()
        if not items and not allow_empty:
            raise self.error()
        return Script(tuple(items))

    def and_or(self) -> AndOr:
        first = self.pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while self.is_op("&&", "||"):
            op = self.advance().value
            self.linebreak()
            rest.append((op, self.pipeline()))
        return AndOr(first, tuple(rest))

    def pipeline(self) -> Pipeline:
        negated = False
        if self.is_kw("!"):
            self.advance()
            negated = True
        cmds = [self.command()]
        while self.is_op("|"):
            self.advance()
            self.linebreak()
            cmds.append(self.command())
        return Pipeline(tuple(cmds), negated)

    # -- commands ------------------------------------------------------------------------

    def command(self) -> Command:
        tok = self.tok
        if tok.kind == "OP" and tok.value == "(" and self.lexer.src.startswith("(", tok.pos + 1):
            self.lexer.pos = tok.pos + 2
            expr = self.lexer.arith_body(tok.pos)
            self.advance()
            return ArithCmd(expr, self.redirs())
        if tok.kind == "OP" and tok.value == "(":
            self.advance()
            body = self.script(stop_ops=(")",))
            self.expect_op(")")
            return Subshell(body, self.redirs())
        if tok.kind == "WORD" and tok.word is not None:
            kw = tok.word.literal()
            if kw == "{":
                self.advance()
                body = self.script(stop_kws=("}",))
                self.expect_kw("}")
                return Group(body, self.redirs())
            if kw == "if":
                return self.if_clause()
            if kw in ("while", "until"):
                self.advance()
                cond = self.script(stop_kws=("do",))
                body = self.do_group()
                return While(cond, body, kw == "until", self.redirs())
            if kw == "for":
                return self.for_clause()
            if kw == "case":
                return self.case_clause()
            if kw == "function":
                self.advance()
                name_tok = self.advance()
                name = name_tok.word.literal() if name_tok.word else None
                if name is None or not _NAME.match(name):
                    raise self.error(name_tok)
                if self.is_op("("):
                    self.advance()
                    self.expect_op(")")
                return self.funcdef_body(name)
            if kw in RESERVED and kw != "!":
                raise self.error()
            # A function definition is NAME '(' ')': peek at the source after NAME.
            if kw is not None and _NAME.match(kw) and _PAREN.match(self.lexer.src,
                                                                   self.lexer.pos):
                    self.advance()
                    self.advance()
                    self.expect_op(")")
                    return self.funcdef_body(kw)
        return self.simple()

    def funcdef_body(self, name: str) -> FuncDef:
        self.linebreak()
        body = self.command()
        if isinstance(body, (Simple, FuncDef)):
            raise self.error()
        return FuncDef(name, body)

    def do_group(self) -> Script:
        self.expect_kw("do")
        body = self.script(stop_kws=("done",))
        self.expect_kw("done")
        return body

    def if_clause(self) -> If:
        self.advance()
        clauses: list[tuple[Script, Script]] = []
        orelse = None
        while True:
            cond = self.script(stop_kws=("then",))
            self.expect_kw("then")
            body = self.script(stop_kws=("elif", "else", "fi"))
            clauses.append((cond, body))
            if self.is_kw("elif"):
                self.advance()
                continue
            if self.is_kw("else"):
                self.advance()
                orelse = self.script(stop_kws=("fi",))
            self.expect_kw("fi")
            return If(tuple(clauses), orelse, self.redirs())

    def for_clause(self) -> For | ForArith:
        self.advance()
        if self.is_op("(") and self.lexer.src.startswith("(", self.tok.pos + 1):
            start = self.tok.pos
            self.lexer.pos = start + 2
            expr = self.lexer.arith_body(start)
            self.advance()
            exprs = _split_word(expr, ";")
            if len(exprs) != 3:
                raise self.lexer.error("expected 'for ((init; cond; step))'", start)
            if self.is_op(";"):
                self.advance()
            self.linebreak()
            body = self.do_group()
            return ForArith(exprs[0], exprs[1], exprs[2], body, self.redirs())
        tok = self.advance()
        var = tok.word.literal() if tok.kind == "WORD" and tok.word else None
        if var is None or not _NAME.match(var):
            raise self.error(tok)
        items: tuple[Word, ...] | None = None
        if self.is_op(";"):
            self.advance()
        self.linebreak()
        if self.is_kw("in"):
            self.advance()
            words: list[Word] = []
            while self.tok.kind == "WORD" and self.tok.word is not None:
                words.append(self.tok.word)
                self.advance()
            items = tuple(words)
            if self.is_op(";"):
                self.advance()
            elif self.tok.kind != "NEWLINE":
                raise self.error()
            self.linebreak()
        body = self.do_group()
        return For(var, items, body, self.redirs())

    def case_clause(self) -> Case:
        self.advance()
        tok = self.advance()
        if tok.kind != "WORD" or tok.word is None:
            raise self.error(tok)
        word = tok.word
        self.linebreak()
        self.expect_kw("in")
        self.linebreak()
        arms: list[CaseArm] = []
        while not self.is_kw("esac"):
            if self.is_op("("):
                self.advance()
            pats: list[Word] = []
            while True:
                ptok = self.advance()
                if ptok.kind != "WORD" or ptok.word is None:
                    raise self.error(ptok)
                pats.append(ptok.word)
                if self.is_op("|"):
                    self.advance()
                    continue
                self.expect_op(")")
                break
            body = self.script(stop_kws=("esac",), stop_ops=(";;",), allow_empty=True)
            arms.append(CaseArm(tuple(pats), body))
            if self.is_op(";;"):
                self.advance()
                self.linebreak()
            elif not self.is_kw("esac"):
                raise self.error()
        self.advance()
        return Case(word, tuple(arms), self.redirs())

    def redirs(self) -> tuple[Redir, ...]:
        out: list[Redir] = []
        while self.tok.kind == "IO_NUMBER" or self.is_op(*REDIR_OPS):
            out.append(self.redir())
        return tuple(out)

    def redir(self) -> Redir:
        fd = None
        if self.tok.kind == "IO_NUMBER":
            fd = int(self.advance().value)
        if not self.is_op(*REDIR_OPS):
            raise self.error()
        op = self.advance().value
        tok = self.advance()
        if tok.kind != "WORD" or tok.word is None:
            raise self.error(tok)
        if op in ("<<", "<<-"):
            text = tok.heredoc or ""
            quoted = any(not isinstance(p, Lit) for p in tok.word.parts)
            body = None
            if not quoted:
                sub = Lexer(text, scripts=SCRIPTS)
                body = Word(sub.read_dq_parts(None))
            return Redir(fd, op, tok.word, text, body)
        return Redir(fd, op, tok.word)

    def cond_words(self) -> list[Word]:
        """The words of ``[[ ... ]]`` through ``]]``: operators become plain words, and
        the regex after ``=~`` is taken as written (up to ``]]``, ``&&`` or ``||``)."""
        words: list[Word] = []
        while True:
            tok = self.tok
            if tok.kind in ("EOF", "NEWLINE"):
                raise self.error()
            if tok.kind == "WORD" and tok.word is not None and tok.word.literal() == "]]":
                self.advance()
                words.append(tok.word)
                return words
            if words and words[-1].literal() == "=~":
                words.append(self.cond_regex())
                continue
            self.advance()
            if tok.kind == "WORD" and tok.word is not None:
                words.append(tok.word)
            else:
                words.append(Word((Lit(tok.value),)))

    def cond_regex(self) -> Word:
        first = self.advance()
        parts: list[Part] = list(first.word.parts) if first.word else [Lit(first.value)]
        end = self.lexer.pos if first.kind != "EOF" else first.pos
        while not (self.is_kw("]]") or self.is_op("&&", "||")
                   or self.tok.kind in ("EOF", "NEWLINE")):
            tok = self.advance()
            gap = self.lexer.src[end:tok.pos]
            parts.append(Lit(gap))
            parts.extend(tok.word.parts if tok.word else [Lit(tok.value)])
            end = tok.pos + len(tok.value)
        return Word(merge_parts(parts))

    def array_words(self) -> tuple[Word, ...]:
        """The words of ``name=( ... )`` after the ``(``, through ``)``."""
        self.advance()
        words: list[Word] = []
        while True:
            self.linebreak()
            if self.is_op(")"):
                self.advance()
                return tuple(words)
            if self.tok.kind != "WORD" or self.tok.word is None:
                raise self.error()
            words.append(self.tok.word)
            self.advance()

    def simple(self) -> Simple:
        assigns: list[Assign] = []
        words: list[Word] = []
        redirs: list[Redir] = []
        while True:
            tok = self.tok
            if tok.kind == "IO_NUMBER" or self.is_op(*REDIR_OPS):
                redirs.append(self.redir())
            elif tok.kind == "WORD" and tok.word is not None:
                self.advance()
                if not words and tok.word.literal() == "[[":
                    return Simple(tuple(assigns), (tok.word, *self.cond_words()),
                                  tuple(redirs) + self.redirs())
                assign = None if words else _as_assign(tok.word)
                if (assign is not None and not assign.value.parts and assign.index is None
                        and self.is_op("(") and self.tok.pos == tok.pos + len(tok.value)):
                    assign = attrs.evolve(assign, array=self.array_words())
                if assign is not None:
                    assigns.append(assign)
                else:
                    words.append(tok.word)
            else:
                break
        if not (assigns or words or redirs):
            raise self.error()
        return Simple(tuple(assigns), tuple(words), tuple(redirs))


def _split_word(word: Word, sep: str) -> list[Word]:
    """``word`` split at ``sep`` in its literal parts."""
    out: list[list[Part]] = [[]]
    for p in word.parts:
        if isinstance(p, Lit):
            pieces = p.text.split(sep)
            out[-1].append(Lit(pieces[0]))
            out.extend([Lit(x)] for x in pieces[1:])
        else:
            out[-1].append(p)
    return [Word(merge_parts(ps)) for ps in out]


def _as_assign(word: Word) -> Assign | None:
    first = word.parts[0] if word.parts else None
    if not isinstance(first, Lit):
        return None
    m = _ASSIGN.match(first.text)
    if m is None:
        return _as_element_assign(word)
    rest = first.text[m.end():]
    value = Word(merge_parts([Lit(rest), *word.parts[1:]]))
    return Assign(m.group(1), value, bool(m.group(2)))


_ELEMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[")
_ELEMENT_END = re.compile(r"\](\+?)=")


def _as_element_assign(word: Word) -> Assign | None:
    """``name[index]=value``, the index possibly holding expansions."""
    first = word.parts[0]
    assert isinstance(first, Lit)
    m = _ELEMENT.match(first.text)
    if m is None:
        return None
    parts: list[Part] = [Lit(first.text[m.end():]), *word.parts[1:]]
    index: list[Part] = []
    for k, p in enumerate(parts):
        end = _ELEMENT_END.search(p.text) if isinstance(p, Lit) else None
        if end is not None and isinstance(p, Lit):
            index.append(Lit(p.text[:end.start()]))
            value = Word(merge_parts([Lit(p.text[end.end():]), *parts[k + 1:]]))
            return Assign(m.group(1), value, bool(end.group(1)), Word(merge_parts(index)))
        index.append(p)
    return None


def parse(src: str) -> Script:
    """Parse a whole script.

    Raises:
        ShellSyntaxError: with the line and column of the offending token.
    """
    p = _Parser(src)
    script = p.script(allow_empty=True)
    if p.tok.kind != "EOF":
        raise p.error()
    return script


def parse_substitution(src: str, pos: int) -> tuple[Script, int]:
    """Parse the command substitution whose body starts at ``pos`` (after ``$(``);
    returns the body and the offset after the closing ``)``."""
    p = _Parser(src, pos)
    script = p.script(stop_ops=(")",), allow_empty=True)
    if not p.is_op(")"):
        raise p.error()
    return script, p.tok.pos + 1


class _Scripts:
    """The parser's entry points as the lexers' ``ScriptReader``.

    Locking: none needed; it keeps no state.
    """

    def parse(self, src: str) -> Script:
        return parse(src)

    def parse_substitution(self, src: str, pos: int) -> tuple[Script, int]:
        return parse_substitution(src, pos)


SCRIPTS = _Scripts()


# -- unparsing ---------------------------------------------------------------------------


class _Unparser:
    """Prints an AST as source that parses back to it; here-document bodies are written
    after the next newline.

    Locking: none; one call of ``unparse``.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []

    def newline(self) -> str:
        out = "\n"
        for body, delim in self.pending:
            out += body + delim + "\n"
        self.pending.clear()
        return out

    def script(self, s: Script) -> str:
        out = ""
        for item in s.items:
            out += self.and_or(item) + (" &" if item.background else "") + self.newline()
        return out

    def and_or(self, a: AndOr) -> str:
        out = self.pipeline(a.first)
        for op, p in a.rest:
            out += f" {op} " + self.pipeline(p)
        return out

    def pipeline(self, p: Pipeline) -> str:
        return ("! " if p.negated else "") + " | ".join(self.command(c) for c in p.commands)

    def command(self, c: Command) -> str:
        if isinstance(c, Simple):
            items = [self.assign(a) for a in c.assigns]
            items += [self.word(w) for w in c.words]
            items += [self.redir(r) for r in c.redirs]
            return " ".join(items)
        if isinstance(c, FuncDef):
            return f"{c.name}() " + self.command(c.body)
        if isinstance(c, ArithCmd):
            return "((" + self.word(c.expr) + "))" + "".join(" " + self.redir(r)
                                                          for r in c.redirs)
        nl = self.newline
        if isinstance(c, Group):
            body = "{" + nl() + self.script(c.body) + "}"
        elif isinstance(c, Subshell):
            body = "(" + nl() + self.script(c.body) + ")"
        elif isinstance(c, If):
            body = ""
            for i, (cond, then) in enumerate(c.clauses):
                body += ("if" if i == 0 else "elif") + nl() + self.script(cond)
                body += "then" + nl() + self.script(then)
            if c.orelse is not None:
                body += "else" + nl() + self.script(c.orelse)
            body += "fi"
        elif isinstance(c, While):
            body = ("until" if c.until else "while") + nl() + self.script(c.cond)
            body += "do" + nl() + self.script(c.body) + "done"
        elif isinstance(c, ForArith):
            body = "for ((" + ";".join(self.word(w) for w in (c.init, c.cond, c.step))
            body += "))" + nl() + "do" + nl() + self.script(c.body) + "done"
        elif isinstance(c, For):
            body = f"for {c.var}"
            if c.items is not None:
                body += " in " + " ".join(self.word(w) for w in c.items)
            body += nl() + "do" + nl() + self.script(c.body) + "done"
        else:
            body = f"case {self.word(c.word)} in" + nl()
            for arm in c.arms:
                body += "(" + " | ".join(self.word(p) for p in arm.patterns) + ")"
                body += nl() + self.script(arm.body) + ";;" + nl()
            body += "esac"
        redirs = c.redirs
        return body + "".join(" " + self.redir(r) for r in redirs)

    def assign(self, a: Assign) -> str:
        index = "" if a.index is None else "[" + self.word(a.index) + "]"
        value = self.word(a.value) if a.array is None else (
            "(" + " ".join(self.word(w) for w in a.array) + ")")
        return f"{a.name}{index}{'+' if a.append else ''}={value}"

    def redir(self, r: Redir) -> str:
        fd = "" if r.fd is None else str(r.fd)
        if r.heredoc is not None:
            delim = "".join(p.text for p in r.target.parts if isinstance(p, (Lit, SQ)))
            self.pending.append((r.heredoc, delim))
        return f"{fd}{r.op}{self.word(r.target)}"

    def word(self, w: Word) -> str:
        return "".join(self.part(p, False) for p in w.parts)

    def part(self, p: Part, in_dq: bool) -> str:
        if isinstance(p, Lit):
            if in_dq:
                return re.sub(r'([$`"\\])', r"\\\1", p.text)
            return p.text
        if isinstance(p, SQ):
            if "'" in p.text:
                return "$'" + p.text.replace("\\", "\\\\").replace("'", "\\'") + "'"
            return "'" + p.text + "'"
        if isinstance(p, DQ):
            return '"' + "".join(self.part(q, True) for q in p.parts) + '"'
        if isinstance(p, Param):
            name = p.name if p.index is None else p.name + "[" + self.word(p.index) + "]"
            if p.op == "":
                return "${" + name + "}"
            if p.op == "len":
                return "${#" + name + "}"
            arg = self.word(p.arg) if p.arg is not None else ""
            if p.arg2 is not None:
                arg += "/" + self.word(p.arg2)
            return "${" + name + p.op + arg + "}"
        if isinstance(p, CmdSub | ProcSub):
            # Here-documents pending outside the substitution start after its end.
            outer, self.pending = self.pending, []
            opening = "$(" if isinstance(p, CmdSub) else p.direction + "("
            text = opening + self.newline() + self.script(p.body) + ")"
            self.pending = outer
            return text
        return "$((" + self.word(p.expr) + "))"


def unparse(node: Script) -> str:
    """Shell source for ``node``; ``parse(unparse(node)) == node``."""
    return _Unparser().script(node)
