"""``sed``: addresses, ranges, ``s///`` with flags, ``-n``, ``-E``, ``-i``, hold space."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import cast

from ...errors import FsError
from .. import rx as timed_rx
from ..cancel import check
from ..context import Ctx, Input, strerror
from ..patterns import posix_regex
from ..table import COMMANDS, Usage, command
from ._util import input_streams, text, to_bytes
from .text import unescape


class _SedCmd:
    """One sed command with up to two addresses.

    Locking: none; one sed run.
    """

    def __init__(self, a1: object, a2: object, neg: bool, cmd: str, arg: object) -> None:
        self.a1, self.a2, self.neg, self.cmd, self.arg = a1, a2, neg, cmd, arg
        self.active = False


def _sed_parse(script: str, extended: bool) -> list[_SedCmd]:
    cmds: list[_SedCmd] = []
    i = 0
    n = len(script)

    def addr() -> object:
        nonlocal i
        if i < n and script[i].isdigit():
            j = i
            while j < n and script[j].isdigit():
                j += 1
            v = int(script[i:j])
            i = j
            return v
        if i < n and script[i] == "$":
            i += 1
            return "$"
        if i < n and script[i] in "/\\":
            delim = "/"
            if script[i] == "\\":
                i += 1
                delim = script[i]
            body, i = _sed_until(script, i + 1, delim)
            flags = 0
            if i < n and script[i] == "I":
                flags = re.IGNORECASE
                i += 1
            return timed_rx.compile(posix_regex(body, extended), flags)
        return None

    while i < n:
        while i < n and script[i] in " \t\n;":
            i += 1
        if i >= n:
            break
        a1 = addr()
        a2 = None
        if a1 is not None and i < n and script[i] == ",":
            i += 1
            a2 = addr()
        while i < n and script[i] in " \t":
            i += 1
        neg = False
        if i < n and script[i] == "!":
            neg = True
            i += 1
        if i >= n:
            raise Usage("missing command")
        c = script[i]
        i += 1
        arg: object = None
        if c == "s":
            delim = script[i]
            pat, i = _sed_until(script, i + 1, delim)
            rep, i = _sed_until(script, i, delim)
            j = i
            while i < n and script[i] not in ";\n}":
                i += 1
            flags = script[j:i].strip()
            rflags = re.IGNORECASE if ("i" in flags or "I" in flags) else 0
            nth = int(re.sub(r"\D", "", flags) or 1)
            # count: replace the nth match (n), every match (0), or from the nth on (-n).
            count = (-nth if nth > 1 else 0) if "g" in flags else nth
            arg = (timed_rx.compile(posix_regex(pat, extended), rflags | re.MULTILINE), rep,
                   count, "p" in flags)
        elif c == "y":
            delim = script[i]
            src, i = _sed_until(script, i + 1, delim)
            dst, i = _sed_until(script, i, delim)
            arg = str.maketrans(src, dst)
        elif c in "aic":
            rest = script[i:]
            m = re.match(r"\\?\n?[ \t]*", rest) if rest.startswith("\\") else re.match(
                r"[ \t]*", rest)
            assert m is not None
            start = i + m.end()
            end = script.find("\n", start)
            end = n if end < 0 else end
            arg = unescape(script[start:end])[0]
            i = end
        elif c in "dpqQ=nNhHgGxlD{}":
            pass
        else:
            raise Usage(f"unknown command: '{c}'")
        cmds.append(_SedCmd(a1, a2, neg, c, arg))
    return cmds


def _sed_until(s: str, i: int, delim: str) -> tuple[str, int]:
    out: list[str] = []
    while i < len(s) and s[i] != delim:
        if s[i] == "\\" and i + 1 < len(s):
            out.append(s[i + 1] if s[i + 1] == delim else s[i:i + 2])
            i += 2
            continue
        if s[i] == "\n" and delim != "\n":
            pass
        out.append(s[i])
        i += 1
    if i >= len(s):
        raise Usage(f"unterminated address or command: '{s}'")
    return "".join(out), i + 1


def _sed_repl(rep: str) -> Callable[[re.Match[str]], str]:
    def fn(m: re.Match[str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(rep):
            c = rep[i]
            if c == "\\" and i + 1 < len(rep):
                d = rep[i + 1]
                out.append(m.group(int(d)) or "" if d.isdigit() else
                           {"n": "\n", "t": "\t"}.get(d, d))
                i += 2
                continue
            out.append(m.group(0) if c == "&" else c)
            i += 1
        return "".join(out)
    return fn


def _sed_match(a: object, lineno: int, line: str, last: bool) -> bool:
    if a == "$":
        return last
    if isinstance(a, int):
        return lineno == a
    assert isinstance(a, timed_rx.TimedPattern)
    return a.search(line) is not None


def _sed_selected(c: _SedCmd, lineno: int, line: str, last: bool) -> bool:
    if c.a1 is None:
        hit = True
    elif c.a2 is None:
        hit = _sed_match(c.a1, lineno, line, last)
    elif c.active:
        hit = True
        if (isinstance(c.a2, int) and lineno >= c.a2) or (
                not isinstance(c.a2, int) and _sed_match(c.a2, lineno, line, last)):
            c.active = False
    else:
        hit = _sed_match(c.a1, lineno, line, last)
        if hit:
            c.active = not (isinstance(c.a2, int) and c.a2 <= lineno)
    return hit != c.neg


class _SedLines:
    """sed's input: lines read one ahead (to know the last one) from streams joined as
    one. Locking: none; one sed run."""

    def __init__(self, streams: Iterator[Input]) -> None:
        self.streams = streams
        self.current: Input | None = next(streams, None)
        self.count = 0  # lines taken
        self.trailing = False  # whether the last line taken ended with a newline
        self.ahead = self._read()

    def _read(self) -> bytes | None:
        while self.current is not None:
            raw = self.current.readline()
            if raw:
                return raw
            self.current = next(self.streams, None)
        return None

    def take(self) -> str | None:
        raw = self.ahead
        if raw is None:
            return None
        self.count += 1
        self.ahead = self._read()
        self.trailing = raw.endswith(b"\n")
        return text(raw.removesuffix(b"\n"))

    @property
    def more(self) -> bool:
        return self.ahead is not None


def _sed_run(cmds: list[_SedCmd], source: _SedLines, quiet: bool,
             write: Callable[[str], object]) -> None:
    """Run the script over ``source``'s lines, writing each output line as it is made
    (the last one held back: it ends with a newline only as the input did)."""
    out: list[str] = []
    written = 0
    for c in cmds:
        c.active = False
    hold = ""
    while (first := source.take()) is not None:
        line = first
        lineno = source.count
        last = not source.more
        if len(out) > 1:
            write("".join(o + "\n" for o in out[:-1]))
            written += len(out) - 1
            del out[:-1]
        append: list[str] = []
        deleted = False
        quit_now = False
        pc = 0
        while pc < len(cmds):
            check()
            c = cmds[pc]
            pc += 1
            if c.cmd == "}" or not _sed_selected(c, lineno, line, last):
                if c.cmd == "{":
                    depth = 1
                    while pc < len(cmds) and depth:
                        depth += (cmds[pc].cmd == "{") - (cmds[pc].cmd == "}")
                        pc += 1
                continue
            if c.cmd == "s":
                rx, rep, count, pflag = cast(
                    tuple[timed_rx.TimedPattern[str], str, int, bool], c.arg)
                if count in (0, 1):
                    new, k = rx.subn(_sed_repl(rep), line, count=count)
                else:
                    matches = list(rx.finditer(line))
                    chosen = matches[count - 1:count] if count > 0 else matches[-count - 1:]
                    k = len(chosen)
                    new = line
                    for m in reversed(chosen):
                        new = new[:m.start()] + _sed_repl(rep)(m) + new[m.end():]
                line = new
                if k and pflag:
                    out.append(line)
            elif c.cmd == "y":
                line = line.translate(c.arg)  # type: ignore[arg-type]
            elif c.cmd == "d" or c.cmd == "D":
                deleted = True
                break
            elif c.cmd == "p":
                out.append(line)
            elif c.cmd == "=":
                out.append(str(lineno))
            elif c.cmd == "a":
                append.append(str(c.arg))
            elif c.cmd == "i":
                out.append(str(c.arg))
            elif c.cmd == "c":
                out.append(str(c.arg))
                deleted = True
                break
            elif c.cmd == "n":
                if not quiet:
                    out.append(line)
                following = source.take()
                if following is None:
                    deleted = quiet
                    break
                line = following
                lineno = source.count
                last = not source.more
            elif c.cmd == "N":
                following = source.take()
                if following is None:
                    break
                line += "\n" + following
                lineno = source.count
                last = not source.more
            elif c.cmd == "h":
                hold = line
            elif c.cmd == "H":
                hold += "\n" + line
            elif c.cmd == "g":
                line = hold
            elif c.cmd == "G":
                line += "\n" + hold
            elif c.cmd == "x":
                line, hold = hold, line
            elif c.cmd in "qQ":
                quit_now = True
                deleted = c.cmd == "Q"
                break
        if not deleted and not quiet:
            out.append(line)
        out.extend(append)
        if quit_now:
            break
    if out:
        total = written + len(out)
        end = source.trailing or source.more or total > source.count
        write("\n".join(out) + ("\n" if end else ""))


@command("sed", COMMANDS)
def _sed(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    scripts: list[str] = []
    files: list[str] = []
    quiet = extended = False
    inplace = False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "-e" or a == "--expression":
            scripts.append(args[i] if i < len(args) else "")
            i += 1
        elif a == "-f":
            scripts.append(text(ctx.read_file(args[i])))
            i += 1
        elif a.startswith("-i") or a.startswith("--in-place"):
            inplace = True
        elif a.startswith("-") and len(a) > 1 and not a.startswith("--"):
            for ch in a[1:]:
                if ch == "n":
                    quiet = True
                elif ch in "Er":
                    extended = True
                elif ch == "i":
                    inplace = True
                elif ch not in "us":
                    raise Usage(f"invalid option -- '{ch}'")
        elif a in ("--quiet", "--silent"):
            quiet = True
        elif a == "--regexp-extended":
            extended = True
        else:
            files.append(a)
    if not scripts:
        if not files:
            raise Usage("no script specified")
        scripts.append(files.pop(0))
    try:
        cmds = _sed_parse("\n".join(scripts), extended)
    except (re.error, timed_rx.error, IndexError) as e:
        raise Usage(f"-e expression #1: {e}") from None
    status = 0
    if inplace:
        for f in files:
            try:
                old = ctx.read_file(f)
                parts: list[str] = []
                _sed_run(cmds, _SedLines(iter([Input(old)])), quiet, parts.append)
                ctx.namespace.write_bytes(ctx.resolve(f), to_bytes("".join(parts)))
            except FsError as e:
                ctx.error(f"can't read {f}: {strerror(e)}")
                status = 2
        return status
    failed: list[str] = []

    def streams() -> Iterator[Input]:
        for name, stream in input_streams(ctx, files):
            if stream is None:
                failed.append(name)
            else:
                yield stream
    _sed_run(cmds, _SedLines(streams()), quiet, ctx.write)
    return 2 if failed else status
