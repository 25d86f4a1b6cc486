"""Word expansion: parameters, command substitution, arithmetic, field splitting,
globbing, quote removal (and bash's brace expansion), in the order POSIX gives.

``Expander`` is mixed into the interpreter (``oanix.shell.interp.Interp``): expansion
reads and sets the shell state, and a command substitution runs a script through the
interpreter's ``run_substitution``. Nothing here runs a command itself.
"""

from __future__ import annotations

import random
import re
import secrets

from .. import paths
from ..errors import FsError
from ..service import FileService
from .arith import arith_eval
from .context import IO, Input, Output, ShellExit, State, Writer, resolve, size_text, strerror
from .lexer import DQ, SQ, CmdSub, Lit, Param, Part, ProcSub, Word, merge_parts
from .parser import Script, Simple
from .patterns import GLOB_MAGIC, glob_regex

__all__ = ["MAX_BRACE_WORDS", "MAX_VALUE", "PROCSUB_DIR", "BraceLimit", "Expander",
           "brace_expand"]

MAX_VALUE = 64 << 20  # characters of a variable, a substitution, a here-document
PROCSUB_DIR = "/tmp/.oanix-procsub"  # where <(...) puts its output for the command to read


class Expander:
    """Word expansion over the shell state ``st`` and the ``namespace``; expansion errors
    go to ``err``. The interpreter this is mixed into provides ``run_substitution``.

    Locking: that of the interpreter (not thread-safe; one per thread).
    """

    namespace: FileService
    st: State
    err: Writer
    _cmdsub_status: int | None
    procsub_files: list[str]  # written by <(...), removed when the command line ends

    def run_substitution(self, body: Script, io: IO) -> int:
        """Run a command substitution's ``body`` in a subshell; returns its status."""
        raise NotImplementedError

    # -- parameters ----------------------------------------------------------------------

    def set_var(self, name: str, value: str) -> None:
        self.check_size(f"{name}: value", value)
        array = self.st.arrays.get(name)
        if array is not None:
            array[0] = value
        else:
            self.st.vars[name] = value

    def _element_index(self, name: str, text: str) -> int:
        i = self.arith(text)
        if i < 0:
            i += max(self.st.arrays.get(name, {}), default=-1) + 1
        return i

    def array_values(self, name: str) -> list[str]:
        """The elements of array ``name`` in index order (a scalar is a 1-element array)."""
        array = self.st.arrays.get(name)
        if array is None:
            value = self.st.vars.get(name)
            return [] if value is None else [value]
        return [array[k] for k in sorted(array)]

    def get_param(self, name: str) -> str | None:
        st = self.st
        if name in st.vars:
            return st.vars[name]
        if name in st.arrays:
            return st.arrays[name].get(0)
        if name.isdigit():
            n = int(name)
            if n == 0:
                return st.name
            return st.positional[n - 1] if n <= len(st.positional) else None
        if name == "?":
            return str(st.status)
        if name == "#":
            return str(len(st.positional))
        if name in "@*" and name:
            return " ".join(st.positional)
        if name == "$":
            return "4242"
        if name == "RANDOM":
            return str(random.randrange(32768))
        if name == "!":
            return "" if st.last_job is None else str(st.last_job)
        if name == "-":
            return "".join(sorted(o[0] for o in st.options
                                  if o in ("errexit", "xtrace", "nounset")))
        return None

    # -- expansion -----------------------------------------------------------------------

    def expand_words(self, words: tuple[Word, ...]) -> list[str]:
        """Words to fields: expansion, field splitting, pathname expansion."""
        out: list[str] = []
        for w in words:
            try:
                expanded = brace_expand(w)
            except BraceLimit as e:
                raise self._fatal(f"brace expansion: {e}", 2) from None
            for bw in expanded:
                for field in self._fields(bw):
                    out.extend(self._glob(field))
        return out

    def expand_string(self, word: Word) -> str:
        """A word expanded without splitting or globbing (assignments, targets)."""
        return "".join(self._part_text(p, quoted=True) for p in word.parts)

    def expand_pattern(self, word: Word) -> str:
        """A word as a regex of its glob pattern (quoted parts match literally)."""
        chunks: list[tuple[str, bool]] = []
        for p in word.parts:
            if isinstance(p, Lit):
                chunks.append((p.text, False))
            elif isinstance(p, (SQ, DQ)):
                chunks.append((self._part_text(p, True), True))
            else:
                chunks.append((self._part_text(p, True), False))
        return glob_regex(chunks)

    def _fields(self, word: Word) -> list[list[tuple[str, bool]]]:
        fb = _FieldBuilder(self.st.vars.get("IFS", " \t\n"))
        for i, p in enumerate(word.parts):
            if isinstance(p, Lit):
                text = p.text
                if i == 0 and (text == "~" or text.startswith("~/")):
                    fb.add(self.st.vars.get("HOME", "/"), True)
                    text = text[1:]
                fb.add(text, False)
            elif isinstance(p, SQ):
                fb.add(p.text, True)
            elif isinstance(p, ProcSub):
                fb.add(self._process_substitution(p), True)  # a path: never split
            elif isinstance(p, DQ):
                self._dq_fields(p, fb)
            elif isinstance(p, Param) and (args := self._positional_list(p)) is not None:
                for j, arg in enumerate(args):
                    if j:
                        fb.split_break()
                    fb.add_split(arg)
            else:
                fb.add_split(self._part_text(p, quoted=False))
        return fb.finish()

    def _list_kind(self, p: Param) -> str | None:
        """``@`` or ``*`` when ``p`` expands to a list (``$@``, ``${a[*]}``), else None."""
        if p.op not in ("", ":"):
            return None
        if p.index is None:
            return p.name if p.name in ("@", "*") else None
        index = p.index.literal()
        return index if index in ("@", "*") else None

    def _positional_list(self, p: Param) -> list[str] | None:
        """The fields of ``$@``, ``${a[@]}`` and their ``:offset:length`` slices; None for
        a param that is not a list."""
        if self._list_kind(p) is None:
            return None
        if p.index is None:
            args, first = [self.st.name, *self.st.positional], 1
        else:
            args, first = self.array_values(p.name), 0
        if p.op == "":
            return args[first:]
        spec = self._arg(p).split(":", 1)
        start = self.arith(spec[0])
        start = max(len(args) + start, first) if start < 0 else start
        if len(spec) == 1:
            return args[start:]
        return args[start:start + max(self.arith(spec[1]), 0)]

    def _dq_fields(self, p: DQ, fb: _FieldBuilder) -> None:
        only = p.parts[0] if len(p.parts) == 1 else None
        fb.started = fb.started or not (isinstance(only, Param)
                                        and self._list_kind(only) == "@")
        for q in p.parts:
            args = (self._positional_list(q) if isinstance(q, Param)
                    and self._list_kind(q) == "@" else None)
            if args is not None:
                for i, arg in enumerate(args):
                    if i:
                        fb.force_break()
                    fb.add(arg, True)
                    fb.started = True
            elif isinstance(q, Param) and (args := self._positional_list(q)) is not None:
                fb.add(self.st.vars.get("IFS", " ")[:1].join(args), True)
            else:
                fb.add(self._part_text(q, quoted=True), True)

    def _part_text(self, p: Part, quoted: bool) -> str:
        if isinstance(p, (Lit, SQ)):
            return p.text
        if isinstance(p, DQ):
            return "".join(self._part_text(q, True) for q in p.parts)
        if isinstance(p, Param):
            return self._param(p, quoted)
        if isinstance(p, CmdSub):
            return self._command_substitution(p.body)
        if isinstance(p, ProcSub):
            return self._process_substitution(p)
        return str(self.arith(self.expand_string(p.expr)))

    def arith(self, expr: str) -> int:
        """Evaluate an arithmetic expression; an error is fatal (status 1)."""
        try:
            return arith_eval(expr, self._arith_get, self.set_var)
        except (ValueError, ZeroDivisionError, RecursionError) as e:
            raise self._fatal(f"arithmetic expression: {e}: \"{expr.strip()}\"", 1) from None

    def _arith_get(self, name: str) -> str:
        value = self.get_param(name)
        if value is None and "nounset" in self.st.options:
            raise self._fatal(f"{name}: unbound variable", 127)
        return value or ""

    def check_size(self, what: str, text: str) -> None:
        """A value past ``MAX_VALUE`` characters is a fatal error (status 2)."""
        if len(text) > MAX_VALUE:
            raise self._fatal(f"{what} larger than {size_text(MAX_VALUE)}", 2)

    def _fatal(self, message: str, status: int) -> ShellExit:
        """Report a fatal expansion error; the caller raises the returned exit."""
        self.err.write(f"{self.st.name}: {message}\n".encode("utf-8", "surrogateescape"))
        return ShellExit(status)

    def _param(self, p: Param, quoted: bool) -> str:
        op = p.op
        if p.index is None:
            value = self.get_param(p.name)
        else:
            index = self.expand_string(p.index)
            if index in ("@", "*"):
                values = self.array_values(p.name)
                if op == "len":
                    return str(len(values))
                value = " ".join(values) if values else None
            else:
                value = self.st.arrays.get(p.name, {}).get(
                    self._element_index(p.name, index)) if p.name in self.st.arrays else (
                    self.st.vars.get(p.name) if self.arith(index) == 0 else None)
        if op == "len":
            if p.name in ("@", "*") and p.index is None:
                return str(len(self.st.positional))
            return str(len(self._required(p.name, value)))
        if op in ("", "#", "##", "%", "%%", "/", "//", ":", ",,", "^^", ",", "^"):
            value = self._required(p.name, value)
        if op == "":
            return value or ""
        colon = op.startswith(":")
        empty = value is None or (colon and value == "")
        base = op.lstrip(":")
        if base == "-":
            return self._arg(p) if empty else value or ""
        if base == "=":
            if empty:
                self.set_var(p.name, self._arg(p))
                return self.st.vars[p.name]
            return value or ""
        if base == "+":
            return "" if empty else self._arg(p)
        if base == "?":
            if empty:
                msg = self._arg(p) or "parameter null or not set"
                raise self._fatal(f"{p.name}: {msg}", 1)
            return value or ""
        assert value is not None and p.arg is not None
        rx = re.compile(self.expand_pattern(p.arg), re.DOTALL)
        if base in ("#", "##"):
            rng = range(len(value) + 1) if base == "#" else range(len(value), -1, -1)
            for i in rng:
                if rx.fullmatch(value, 0, i):
                    return value[i:]
            return value
        if base in ("%", "%%"):
            rng = range(len(value), -1, -1) if base == "%" else range(len(value) + 1)
            for i in rng:
                if rx.fullmatch(value, i):
                    return value[:i]
            return value
        if base in (",,", "^^", ",", "^"):
            conv = str.lower if base[0] == "," else str.upper
            return conv(value) if len(base) == 2 else conv(value[:1]) + value[1:]
        if op == ":":
            spec = self._arg(p).split(":", 1)
            start = self.arith(spec[0])
            start = max(len(value) + start, 0) if start < 0 else start
            if len(spec) == 1:
                return value[start:]
            length = self.arith(spec[1])
            return value[start:start + length] if length >= 0 else value[start:length]
        repl = self.expand_string(p.arg2) if p.arg2 is not None else ""
        if not rx.pattern:
            return value
        return rx.sub(lambda _m: repl, value, count=0 if base == "//" else 1)

    def _arg(self, p: Param) -> str:
        return self.expand_string(p.arg) if p.arg is not None else ""

    def _required(self, name: str, value: str | None) -> str:
        if value is None:
            if "nounset" in self.st.options and name not in "@*":
                raise self._fatal(f"{name}: unbound variable", 127)
            return ""
        return value

    def _command_substitution(self, body: Script) -> str:
        only = body.items[0].first.commands[0] if len(body.items) == 1 else None
        if (isinstance(only, Simple) and not only.words and not only.assigns
                and len(only.redirs) == 1 and only.redirs[0].op == "<"):
            # $(< file): the file's content.
            target = self.expand_string(only.redirs[0].target)
            try:
                data = self.namespace.read_bytes(resolve(self.st.cwd, target))
            except FsError as e:
                self.err.write(f"{self.st.name}: {target}: {strerror(e)}\n".encode())
                self._cmdsub_status = self.st.status = 1
                return ""
            return data.decode("utf-8", "surrogateescape").rstrip("\n")
        out, status = self._captured(body, "command substitution")
        self._cmdsub_status = status
        return out.decode("utf-8", "surrogateescape").rstrip("\n")

    def _captured(self, body: Script, what: str) -> tuple[bytes, int]:
        """The output and status of ``body`` run in a subshell (a substitution), at most
        ``MAX_VALUE`` bytes of it (a fatal error past that, naming ``what``)."""
        out = Output(MAX_VALUE, overflow_closes=True)
        err = self.err
        status = self.run_substitution(body, IO(Input(b""), {1: out, 2: err}))
        self.err = err
        if out.truncated:
            raise self._fatal(f"{what}: output larger than {size_text(MAX_VALUE)}", 2)
        self.st.status = status
        return bytes(out.buf), status

    def _process_substitution(self, p: ProcSub) -> str:
        """``<(cmd)``: ``cmd`` run to its end (not beside the command, as bash does), its
        output in a file under ``PROCSUB_DIR``, whose path replaces the word; the files
        are removed when the command line ends. ``>(cmd)`` is refused."""
        if p.direction == ">":
            raise self._fatal("process substitution >(...) is not supported: write to a "
                              "file, then give it to the command", 2)
        out, _status = self._captured(p.body, "process substitution")
        path = paths.join(PROCSUB_DIR, f"sub-{secrets.token_hex(6)}")
        try:
            self.namespace.makedirs(PROCSUB_DIR, exist_ok=True)
            self.namespace.write_bytes(path, out)
        except FsError as e:
            raise self._fatal(f"process substitution: {PROCSUB_DIR}: {strerror(e)}", 1) \
                from None
        self.procsub_files.append(path)
        return path

    # -- globbing ------------------------------------------------------------------------

    def _glob(self, field: list[tuple[str, bool]]) -> list[str]:
        text = "".join(t for t, _ in field)
        if not any(not q and GLOB_MAGIC.search(t) for t, q in field):
            return [text]
        # A pattern string with quoted characters escaped, split into components.
        pattern = "".join(t if not q else re.sub(r"([*?\[\\])", r"\\\1", t)
                          for t, q in field)
        absolute = pattern.startswith("/")
        comps = [c for c in pattern.split("/") if c]
        found: list[str] = []
        self._glob_walk("/" if absolute else self.st.cwd, "/" if absolute else "", comps,
                        found)
        return sorted(found) if found else [text]

    def _glob_walk(self, base: str, shown: str, comps: list[str], found: list[str]) -> None:
        if not comps:
            found.append(shown)
            return
        head, rest = comps[0], comps[1:]
        sep = "" if shown in ("", "/") else "/"
        if not GLOB_MAGIC.search(head):
            name = re.sub(r"\\(.)", r"\1", head)
            child = paths.join(base, name)
            if (rest and self.namespace.is_dir(child)) or (not rest and
                                                          self.namespace.exists(child)):
                self._glob_walk(child, shown + sep + name, rest, found)
            return
        rx = re.compile(glob_regex([(head, False)]), re.DOTALL)
        try:
            entries = self.namespace.scandir(base)
        except FsError:
            return
        for st in entries:
            if st.name.startswith(".") and not head.startswith("."):
                continue
            if rx.fullmatch(st.name) and (not rest or st.is_dir):
                self._glob_walk(paths.join(base, st.name), shown + sep + st.name, rest, found)


_BRACE = re.compile(r"\{([^{}]*,[^{}]*|-?\d+\.\.-?\d+(?:\.\.-?\d+)?|[a-zA-Z]\.\.[a-zA-Z])\}")
MAX_BRACE_WORDS = 100_000


class BraceLimit(ValueError):
    """A brace expansion would make more than ``MAX_BRACE_WORDS`` words."""


def brace_expand(word: Word) -> list[Word]:
    """bash brace expansion within unquoted literal text: ``a{b,c}`` and ``{1..3}``."""
    for i, p in enumerate(word.parts):
        if not isinstance(p, Lit):
            continue
        m = _BRACE.search(p.text)
        if m is None:
            continue
        body = m.group(1)
        if "," in body:
            alts = body.split(",")
        elif body[0].isalpha():
            a, b = ord(body[0]), ord(body[-1])
            alts = [chr(c) for c in (range(a, b + 1) if a <= b else range(a, b - 1, -1))]
        else:
            nums = [int(x) for x in re.findall(r"-?\d+", body)]
            step = abs(nums[2]) if len(nums) > 2 and nums[2] else 1
            lo, hi = nums[0], nums[1]
            seq = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
            if len(seq) > MAX_BRACE_WORDS:
                raise BraceLimit(f"{{{body}}}: more than {MAX_BRACE_WORDS} words")
            width = max(len(x) for x in re.findall(r"-?\d+", body)[:2])
            pad = any(re.fullmatch(r"-?0\d+", x) for x in re.findall(r"-?\d+", body)[:2])
            alts = [str(n).zfill(width) if pad else str(n) for n in seq]
        out: list[Word] = []
        for alt in alts:
            text = p.text[:m.start()] + alt + p.text[m.end():]
            out.extend(brace_expand(Word(merge_parts([*word.parts[:i], Lit(text),
                                                      *word.parts[i + 1:]]))))
            if len(out) > MAX_BRACE_WORDS:
                raise BraceLimit(f"{{{body}}}: more than {MAX_BRACE_WORDS} words")
        return out
    return [word]


class _FieldBuilder:
    """Accumulates expanded text into fields of (text, quoted) chunks.

    Locking: none; one word expansion.
    """

    def __init__(self, ifs: str) -> None:
        self.fields: list[list[tuple[str, bool]]] = []
        self.cur: list[tuple[str, bool]] = []
        self.started = False  # the current field exists even if empty ("" seen)
        ws = "".join(c for c in ifs if c in " \t\n")
        other = "".join(c for c in ifs if c not in " \t\n")
        seps = []
        if other:
            seps.append(f"[{re.escape(ws)}]*[{re.escape(other)}][{re.escape(ws)}]*"
                        if ws else f"[{re.escape(other)}]")
        if ws:
            seps.append(f"[{re.escape(ws)}]+")
        self.splitter = re.compile("|".join(seps)) if seps else None

    def add(self, text: str, quoted: bool) -> None:
        if text:
            self.cur.append((text, quoted))
        if quoted:
            self.started = True

    def add_split(self, text: str) -> None:
        if self.splitter is None:
            self.add(text, False)
            return
        for i, piece in enumerate(self.splitter.split(text)):
            if i:
                self.split_break()
            self.add(piece, False)

    def split_break(self) -> None:
        if self.cur or self.started:
            self.force_break()

    def force_break(self) -> None:
        self.fields.append(self.cur)
        self.cur = []
        self.started = False

    def finish(self) -> list[list[tuple[str, bool]]]:
        self.split_break()
        return self.fields
