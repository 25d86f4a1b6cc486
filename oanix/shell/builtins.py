"""The shell's commands: state builtins (``SPECIAL``) and utilities (``COMMANDS``).

Each command is a ``CommandFn``: ``fn(ctx, argv) -> exit status``. Files are reached only
through ``ctx`` (the namespace, relative to the shell's cwd); a file error is reported
like coreutils does (``cat: x: No such file or directory``) with status 1.
"""

from __future__ import annotations

import codecs
import difflib
import functools
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, cast

import attrs

from .. import paths
from ..errors import FsError, IsADirectory, NotFound
from ..service import Stat
from . import rx as timed_rx
from .awk import awk_main
from .cancel import Cancelled, CancelScope, check, current, entered
from .cond import _TestParser
from .context import Ctx, Input, ShellExit, _LoopJump, _Return, stat_or_none, strerror
from .patterns import _CONTINUATION, glob_regex, posix_regex
from .table import COMMANDS, SPECIAL, _Usage, command, getopts


def _int(ctx: Ctx, s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise _Usage(f"invalid number: '{s}'") from None



def _lines(data: bytes) -> list[bytes]:
    """``data`` split into lines, each keeping its newline."""
    return data.splitlines(keepends=True)


def _inputs(ctx: Ctx, files: list[str]) -> Iterator[tuple[str, bytes | None]]:
    """(name, content) for each operand (stdin if none); content None after an error."""
    for f in files or ["-"]:
        try:
            yield f, ctx.read_file(f)
        except FsError as e:
            ctx.fs_error(e, f)
            yield f, None


_CHUNK = 64 << 10


class _FileInput(Input):
    """A namespace file read chunk by chunk. Locking: none; one command."""

    def __init__(self, f: Any) -> None:
        super().__init__(b"")
        self.f = f

    def _more(self) -> bytes:
        check()
        data: bytes = self.f.read(_CHUNK)
        return data

    def close(self) -> None:
        self.f.close()


def _streams(ctx: Ctx, files: list[str]) -> Iterator[tuple[str, Input | None]]:
    """(name, stream) for each operand (stdin if none), read piecewise; the stream is
    None after an error (reported)."""
    for f in files or ["-"]:
        if f in ("-", "/dev/stdin"):
            yield f, ctx.stdin_stream
            continue
        if f == "/dev/null":
            yield f, Input(b"")
            continue
        try:
            path = ctx.resolve(f)
            if ctx.namespace.is_dir(path):
                raise IsADirectory(path)
            handle = ctx.namespace.open(path, "rb")
        except FsError as e:
            ctx.fs_error(e, f)
            yield f, None
            continue
        stream = _FileInput(handle)
        try:
            yield f, stream
        finally:
            stream.close()


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


# == state builtins ========================================================================


@command("cd", SPECIAL)
def _cd(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    target = argv[1] if len(argv) > 1 else st.vars.get("HOME", "/")
    if target == "-":
        target = st.vars.get("OLDPWD", st.cwd)
        ctx.write(target + "\n")
    path = ctx.resolve(target)
    try:
        if not ctx.namespace.stat(path).is_dir:
            ctx.error(f"{target}: Not a directory")
            return 1
    except FsError as e:
        ctx.error(f"{target}: {strerror(e)}")
        return 1
    st.vars["OLDPWD"] = st.cwd
    st.cwd = path
    st.vars["PWD"] = path
    return 0


@command("export readonly", SPECIAL)
def _export(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    names = [a for a in argv[1:] if not a.startswith("-")]
    if not names:
        for k in sorted(st.exported):
            if k in st.vars:
                ctx.write(f"export {k}='{st.vars[k]}'\n")
        return 0
    for a in names:
        name, eq, value = a.partition("=")
        if eq:
            st.vars[name] = value
        if argv[0] == "export" or "-x" in argv:
            st.exported.add(name)
    return 0


@command("declare typeset", SPECIAL)
def _declare(ctx: Ctx, argv: list[str]) -> int:
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-"))
    names = [a for a in argv[1:] if not a.startswith(("-", "+"))]
    if ctx.shell.st.locals and "g" not in flags:
        status = _local(ctx, ["local", *names])
    else:
        status = 0
        for a in names:
            name, eq, value = a.partition("=")
            if eq:
                ctx.shell.st.vars[name] = value
            else:
                ctx.shell.st.vars.setdefault(name, "")
    if "x" in flags:
        ctx.shell.st.exported.update(a.partition("=")[0] for a in names)
    if "a" in flags or "A" in flags:  # indexed arrays only
        for a in names:
            name = a.partition("=")[0]
            if not ctx.shell.st.vars.get(name):
                ctx.shell.st.vars.pop(name, None)
                ctx.shell.st.arrays.setdefault(name, {})
    return status


@command("local", SPECIAL)
def _local(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    if not st.locals:
        ctx.error("can only be used in a function")
        return 1
    frame = st.locals[-1]
    for a in argv[1:]:
        name, eq, value = a.partition("=")
        if name not in frame:
            frame[name] = st.vars.get(name)
        if eq:
            st.vars[name] = value
        else:
            st.vars.setdefault(name, "")
    return 0


@command("unset", SPECIAL)
def _unset(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    opts, names = getopts(argv, "vf")
    for n in names:
        m = re.fullmatch(r"(\w+)\[(.*)\]", n)
        if opts.get("f"):
            st.functions.pop(n, None)
        elif m is not None:
            if m.group(1) in st.arrays:
                st.arrays[m.group(1)].pop(ctx.shell.arith(m.group(2)), None)
        else:
            st.vars.pop(n, None)
            st.arrays.pop(n, None)
            st.exported.discard(n)
    return 0


@command("exit", SPECIAL)
def _exit(ctx: Ctx, argv: list[str]) -> int:
    raise ShellExit(_int(ctx, argv[1]) & 255 if len(argv) > 1 else ctx.shell.st.status)


@command("return", SPECIAL)
def _return(ctx: Ctx, argv: list[str]) -> int:
    raise _Return(_int(ctx, argv[1]) & 255 if len(argv) > 1 else ctx.shell.st.status)


@command("break continue", SPECIAL)
def _break(ctx: Ctx, argv: list[str]) -> int:
    raise _LoopJump(_int(ctx, argv[1]) if len(argv) > 1 else 1, argv[0] == "break")


_OPTION_LETTERS = {"e": "errexit", "x": "xtrace", "u": "nounset", "f": "noglob",
                   "v": "verbose", "C": "noclobber", "a": "allexport", "h": "hashall",
                   "b": "notify", "m": "monitor", "n": "noexec"}


def set_options(opts: set[str], argv: list[str]) -> list[str] | None:
    """Apply ``-e``/``+e``/``-o name`` options from ``argv``; return the remaining
    positional arguments (None if no ``--`` or operand was given)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return argv[i + 1:]
        if a in ("-o", "+o"):
            if i + 1 < len(argv):
                (opts.add if a == "-o" else opts.discard)(argv[i + 1])
            i += 2
            continue
        if len(a) > 1 and a[0] in "-+":
            i += 1
            for c in a[1:]:
                if c == "o":  # -euo pipefail
                    name = argv[i] if i < len(argv) else ""
                    i += 1
                else:
                    name = _OPTION_LETTERS.get(c, "")
                if not name:
                    raise _Usage(f"-{c}: invalid option")
                (opts.add if a[0] == "-" else opts.discard)(name)
            continue
        return argv[i:]
    return None


@command("set", SPECIAL)
def _set(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    if len(argv) == 1:
        for k in sorted(st.vars):
            ctx.write(f"{k}='{st.vars[k]}'\n")
        return 0
    rest = set_options(st.options, argv[1:])
    if rest is not None:
        st.positional = rest
    return 0


@command("shift", SPECIAL)
def _shift(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    n = _int(ctx, argv[1]) if len(argv) > 1 else 1
    if n > len(st.positional):
        return 1
    st.positional = st.positional[n:]
    return 0


@command("read", SPECIAL)
def _read(ctx: Ctx, argv: list[str]) -> int:
    opts, names = getopts(argv, "rs", "pdntu", permute=False)
    delim = _bytes(str(opts["d"]))[:1] or b"\0" if "d" in opts else b"\n"
    raw = ctx.stdin_stream.readline(delim)
    if not opts.get("r"):
        while raw.endswith(b"\\" + delim):
            raw = raw[:-2] + ctx.stdin_stream.readline(delim)
    eof = not raw.endswith(delim)
    line = _text(raw[:-1] if not eof else raw)
    if not opts.get("r"):
        line = re.sub(r"\\(.)", r"\1", line)
    st = ctx.shell.st
    ifs = st.vars.get("IFS", " \t\n")
    if not names:  # REPLY keeps the line as read
        names = ["REPLY"]
        values = [line]
    else:
        ws = "".join(c for c in ifs if c in " \t\n")
        line = line.strip(ws) if ws else line
        values = []
        for i in range(len(names)):
            if i == len(names) - 1 or not ifs:
                values.append(line.rstrip(ws) if ws else line)
                break
            m = re.search("[" + re.escape(ifs) + "]", line)
            if m is None:
                values.append(line)
                line = ""
                continue
            values.append(line[:m.start()])
            line = line[m.end():]
            line = line.lstrip(ws) if ws else line
            if m.group() in ws and line[:1] and line[0] in ifs and line[0] not in ws:
                line = line[1:].lstrip(ws)
    for i, name in enumerate(names):
        st.vars[name] = values[i] if i < len(values) else ""
    return 1 if eof and not raw else (1 if eof else 0)


@command("eval", SPECIAL)
def _eval(ctx: Ctx, argv: list[str]) -> int:
    return ctx.shell.run_nested(" ".join(argv[1:]), ctx.io)


@command(". source", SPECIAL)
def _source(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.error("filename argument required")
        return 2
    try:
        src = _text(ctx.read_file(argv[1]))
    except FsError as e:
        return ctx.fs_error(e, argv[1])
    st = ctx.shell.st
    saved = st.positional
    if len(argv) > 2:
        st.positional = argv[2:]
    try:
        return ctx.shell.run_nested(src, ctx.io)
    finally:
        if len(argv) > 2:
            st.positional = saved


@command("exec", SPECIAL)
def _exec(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) == 1:
        return 0
    raise ShellExit(ctx.run(argv[1:]))


@command("trap", SPECIAL)
def _trap(ctx: Ctx, argv: list[str]) -> int:
    """Only the EXIT trap runs: when the script (an ``exec`` call, ``sh file``) ends.
    Other traps are accepted and ignored, as no signals reach the shell."""
    args = argv[1:]
    if len(args) >= 2 and any(a in ("EXIT", "0") for a in args[1:]):
        ctx.shell.st.exit_trap = None if args[0] in ("-", "") else args[0]
    return 0


@command("wait umask alias unalias hash ulimit shopt", SPECIAL)
def _noop(ctx: Ctx, argv: list[str]) -> int:
    return 0


@command("sh bash dash", SPECIAL)
def _sh(ctx: Ctx, argv: list[str]) -> int:
    """``sh [-eux] [-o opt] (-c cmd [name [args]] | file [args] | < script)``."""
    opts: set[str] = set()
    args = argv[1:]
    command_mode = False
    while args and args[0][:1] in ("-", "+") and args[0] not in ("-", "--"):
        a = args.pop(0)
        flags = a[1:]
        command_mode = command_mode or "c" in flags
        shell_flags = "".join(f for f in flags if f in _OPTION_LETTERS)
        if shell_flags:
            set_options(opts, [a[0] + shell_flags])
        if "o" in flags and args:
            set_options(opts, [a[0] + "o", args.pop(0)])
    if args and args[0] in ("-", "--"):
        args.pop(0)
    if command_mode:
        if not args:
            raise _Usage("-c: option requires an argument")
        src, args = args[0], args[1:]
        name = args.pop(0) if args else argv[0]
    elif args:
        name = args.pop(0)
        try:
            src = _text(ctx.read_file(name))
        except FsError as e:
            ctx.error(f"{name}: {strerror(e)}")
            return 127
    else:
        src, name = _text(ctx.stdin), argv[0]
    return ctx.shell.run_child(src, name, args, opts, ctx.io, ctx.env)


# == simple utilities ======================================================================


@command("true :", COMMANDS)
def _true(ctx: Ctx, argv: list[str]) -> int:
    return 0


@command("false", COMMANDS)
def _false(ctx: Ctx, argv: list[str]) -> int:
    return 1


@command("pwd", COMMANDS)
def _pwd(ctx: Ctx, argv: list[str]) -> int:
    ctx.write(ctx.cwd + "\n")
    return 0


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r",
            "v": "\v", "e": "\x1b", '"': '"', "'": "'"}


def _unescape(s: str, stop_at_c: bool = False) -> tuple[str, bool]:
    """Backslash escapes of echo -e / printf; returns (text, stopped by \\c)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\" or i + 1 >= len(s):
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        if n in _ESCAPES:
            out.append(_ESCAPES[n])
            i += 2
        elif n == "c" and stop_at_c:
            return "".join(out), True
        elif n in "01234567":
            j = i + 1 + (n == "0")
            digits = re.match(r"[0-7]{1,3}", s[j:])
            if digits:
                out.append(chr(int(digits.group(), 8)))
                i = j + len(digits.group())
            else:
                out.append("\0")
                i = j
        elif n == "x" and re.match(r"[0-9a-fA-F]", s[i + 2:i + 3]):
            digits = re.match(r"[0-9a-fA-F]{1,2}", s[i + 2:])
            assert digits
            out.append(chr(int(digits.group(), 16)))
            i += 2 + len(digits.group())
        else:
            out.append("\\" + n)
            i += 2
    return "".join(out), False


@command("echo", COMMANDS)
def _echo(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] or (escapes and "E" not in args[0])
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stopped = _unescape(text, stop_at_c=True)
        newline = newline and not stopped
    ctx.write(text + ("\n" if newline else ""))
    return 0


_FMT = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


@command("printf", COMMANDS)
def _printf(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.error("usage: printf format [arguments]")
        return 2
    fmt, args = argv[1], argv[2:]
    status = 0
    out: list[str] = []
    while True:
        used = 0
        pos = 0
        for m in _FMT.finditer(fmt):
            out.append(_unescape(fmt[pos:m.start()])[0])
            pos = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue

            def take(args: list[str] = args) -> str:
                nonlocal used
                used += 1
                return args[used - 1] if used <= len(args) else ""
            if width == "*":
                width = take() or "0"
            if prec == "*":
                prec = take() or "0"
            arg = take()
            spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
            if conv in "diouxXc" and conv != "c":
                try:
                    n = _c_int(arg)
                except ValueError:
                    ctx.error(f"'{arg}': expected a numeric value")
                    status = 1
                    n = 0
                conv2 = "d" if conv in "iu" else conv
                out.append((spec + conv2) % n)
            elif conv in "eEfFgG":
                try:
                    x = float(arg or 0)
                except ValueError:
                    ctx.error(f"'{arg}': expected a numeric value")
                    status, x = 1, 0.0
                out.append((spec + conv) % x)
            elif conv == "c":
                out.append((spec + "s") % arg[:1])
            elif conv == "b":
                out.append((spec + "s") % _unescape(arg, stop_at_c=True)[0])
            elif conv == "q":
                out.append(arg)
            else:
                out.append((spec + "s") % arg)
        out.append(_unescape(fmt[pos:])[0])
        if used == 0 or used >= len(args):
            break
        args = args[used:]
    ctx.write("".join(out))
    return status


def _c_int(s: str) -> int:
    s = s.strip()
    if not s:
        return 0
    if s[0] in "'\"" and len(s) > 1:
        return ord(s[1])
    return int(s, 0) if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", s) else (
        int(s, 8) if re.fullmatch(r"[-+]?0[0-7]+", s) else int(s))


@command("cat", COMMANDS)
def _cat(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "nuAEv")
    status = 0
    n = 0
    for _name, stream in _streams(ctx, files):
        if stream is None:
            status = 1
            continue
        if opts.get("n"):
            for line in stream.lines():
                n += 1
                ctx.write(f"{n:6}\t".encode() + line)
        else:
            for chunk in stream.chunks():
                ctx.check()
                ctx.write(chunk)
    return status


@command("basename", COMMANDS)
def _basename(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.error("missing operand")
        return 1
    name = argv[1].rstrip("/")
    name = name[name.rfind("/") + 1:] if name else "/"
    if len(argv) > 2 and name != argv[2] and name.endswith(argv[2]):
        name = name[:-len(argv[2])]
    ctx.write(name + "\n")
    return 0


@command("dirname", COMMANDS)
def _dirname(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.error("missing operand")
        return 1
    for p in argv[1:]:
        p = p.rstrip("/") or "/"
        if "/" not in p:
            ctx.write(".\n")
            continue
        ctx.write((p[:p.rfind("/")].rstrip("/") or "/") + "\n")
    return 0


@command("yes", COMMANDS)
def _yes(ctx: Ctx, argv: list[str]) -> int:
    line = _bytes((" ".join(argv[1:]) if len(argv) > 1 else "y") + "\n")
    block = line * max(1, 8192 // len(line))
    while True:
        ctx.check()
        ctx.write(block)


@command("sleep", COMMANDS)
def _sleep(ctx: Ctx, argv: list[str]) -> int:
    total = sum(_duration(a) for a in argv[1:])
    scope = current()
    if scope is None:
        time.sleep(total)
    else:
        scope.sleep(total)
    return 0


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)")


def _duration(text: str) -> float:
    m = _DURATION.fullmatch(text)
    if m is None:
        raise _Usage(f"invalid time interval '{text}'")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@command("timeout", COMMANDS)
def _timeout(ctx: Ctx, argv: list[str]) -> int:
    """``timeout [-s SIG] [-k T] [--preserve-status] [--foreground] N cmd``: runs ``cmd``
    under a cancel scope of N seconds (0: none); status 124 when it expires."""
    _opts, rest = getopts(argv, "v", "sk", permute=False,
                          longs={"signal": "s", "kill-after": "k", "preserve-status": "",
                                 "foreground": "", "verbose": "v"})
    if not rest:
        raise _Usage("missing operand")
    seconds = _duration(rest[0])
    if len(rest) < 2:
        raise _Usage("missing operand")
    scope = CancelScope(current(), seconds or None, reason="timeout")
    try:
        with entered(scope):
            return ctx.run(rest[1:])
    except Cancelled as c:
        if c.scope is not scope:
            raise  # an enclosing scope: the whole command line stops
        return 124


@command("nice nohup", COMMANDS)
def _nice(ctx: Ctx, argv: list[str]) -> int:
    _opts, rest = getopts(argv, "", "n", permute=False)
    return ctx.run(rest) if rest else 0


@command("chmod chown chgrp sync", COMMANDS)
def _chmod(ctx: Ctx, argv: list[str]) -> int:
    _opts, rest = getopts(argv, "Rfv")
    for f in rest[1:] if argv[0] != "sync" else []:
        if not ctx.namespace.exists(ctx.resolve(f)):
            ctx.error(f"cannot access '{f}': No such file or directory")
            return 1
    return 0


# == files =================================================================================


def _each(ctx: Ctx, operands: list[str], failure: str,
          action: Callable[[str], object]) -> int:
    """Apply ``action`` to each operand's resolved path, as coreutils do: report each
    failure as ``<failure> '<operand>': <reason>`` and go on; status 1 if any failed."""
    status = 0
    for operand in operands:
        try:
            action(ctx.resolve(operand))
        except FsError as e:
            ctx.error(f"{failure} '{operand}': {strerror(e)}")
            status = 1
    return status


@command("mkdir", COMMANDS)
def _mkdir(ctx: Ctx, argv: list[str]) -> int:
    opts, dirs = getopts(argv, "pv", "m")
    ns = ctx.namespace
    make: Callable[[str], object] = (
        (lambda p: ns.makedirs(p, exist_ok=True)) if opts.get("p") else ns.mkdir)
    return _each(ctx, dirs, "cannot create directory", make)


@command("rmdir", COMMANDS)
def _rmdir(ctx: Ctx, argv: list[str]) -> int:
    _opts, dirs = getopts(argv, "p")
    return _each(ctx, dirs, "failed to remove", ctx.namespace.rmdir)


@command("rm", COMMANDS)
def _rm(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "rRfdiv")
    ns = ctx.namespace

    def remove(path: str) -> None:
        try:
            st = ns.stat(path)
        except FsError:
            if opts.get("f"):
                return
            raise NotFound(path) from None
        if not st.is_dir:
            ns.remove(path)
        elif opts.get("r") or opts.get("R"):
            ns.rmtree(path)
        elif opts.get("d"):
            ns.rmdir(path)
        else:
            raise IsADirectory(path)

    return _each(ctx, files, "cannot remove", remove)


@command("touch", COMMANDS)
def _touch(ctx: Ctx, argv: list[str]) -> int:
    _opts, files = getopts(argv, "acm", "dtr")
    ns = ctx.namespace

    def touch(path: str) -> None:
        if ns.exists(path):
            ns.open(path, "ab").close()
        else:
            ns.write_bytes(path, b"")

    return _each(ctx, files, "cannot touch", touch)


def _two_paths(ctx: Ctx, files: list[str], verb: str) -> list[tuple[str, str, str]] | None:
    """(operand, src path, dst path) pairs of cp/mv, or None after a usage error."""
    if len(files) < 2:
        ctx.error("missing file operand" if not files else
                  f"missing destination file operand after '{files[0]}'")
        return None
    *srcs, dst = files
    dst_path = ctx.resolve(dst)
    dst_st = stat_or_none(ctx, dst)
    if len(srcs) > 1 and (dst_st is None or not dst_st.is_dir):
        ctx.error(f"target '{dst}': Not a directory")
        return None
    out = []
    for s in srcs:
        src_path = ctx.resolve(s)
        target = dst_path
        if dst_st is not None and dst_st.is_dir:
            target = paths.join(dst_path, paths.basename(src_path))
        out.append((s, src_path, target))
    return out


@command("cp", COMMANDS)
def _cp(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "rRafpvnT")
    pairs = _two_paths(ctx, files, "copy")
    if pairs is None:
        return 1
    status = 0
    fs = ctx.namespace
    for s, src, dst in pairs:
        st = stat_or_none(ctx, s)
        try:
            if st is None:
                ctx.error(f"cannot stat '{s}': No such file or directory")
                status = 1
            elif st.is_dir and not (opts.get("r") or opts.get("R") or opts.get("a")):
                ctx.error(f"-r not specified; omitting directory '{s}'")
                status = 1
            elif st.is_dir:
                if fs.is_dir(dst):
                    for child in fs.listdir(src):
                        _copy_into(fs, paths.join(src, child), paths.join(dst, child))
                else:
                    fs.copy(src, dst)
            elif not (opts.get("n") and fs.exists(dst)):
                if src == dst:
                    ctx.error(f"'{s}' and '{s}' are the same file")
                    status = 1
                    continue
                fs.write_bytes(dst, fs.read_bytes(src))
        except FsError as e:
            ctx.error(f"cannot copy '{s}': {strerror(e)}")
            status = 1
    return status


def _copy_into(fs: object, src: str, dst: str) -> None:
    """Copy ``src`` over ``dst``, merging into the directories both have (any depth)."""
    from ..service import FileService

    assert isinstance(fs, FileService)
    stack = [(src, dst)]
    while stack:
        src, dst = stack.pop()
        if fs.is_dir(src) and fs.is_dir(dst):
            stack.extend((paths.join(src, child), paths.join(dst, child))
                         for child in reversed(fs.listdir(src)))
        elif fs.is_dir(src):
            fs.copy(src, dst)
        else:
            fs.write_bytes(dst, fs.read_bytes(src))


@command("mv", COMMANDS)
def _mv(ctx: Ctx, argv: list[str]) -> int:
    _opts, files = getopts(argv, "fivnT")
    pairs = _two_paths(ctx, files, "move")
    if pairs is None:
        return 1
    status = 0
    for s, src, dst in pairs:
        try:
            if src == dst:
                ctx.error(f"'{s}' and '{s}' are the same file")
                status = 1
                continue
            if ctx.namespace.is_file(dst) and ctx.namespace.is_file(src):
                ctx.namespace.remove(dst)
            ctx.namespace.move(src, dst)
        except FsError as e:
            ctx.error(f"cannot move '{s}': {strerror(e)}")
            status = 1
    return status


@command("ls", COMMANDS)
def _ls(ctx: Ctx, argv: list[str]) -> int:
    opts, targets = getopts(argv, "laA1RdhFtrS")
    status = 0
    files: list[tuple[str, Stat]] = []
    dirs: list[tuple[str, Stat]] = []
    for t in targets or ["."]:
        st = stat_or_none(ctx, t)
        if st is None:
            ctx.error(f"cannot access '{t}': No such file or directory")
            status = 2
        elif st.is_dir and not opts.get("d"):
            dirs.append((t, st))
        else:
            files.append((t, st))
    files.sort(key=lambda x: x[0])
    dirs.sort(key=lambda x: x[0])
    shown = bool(files) or len(dirs) > 1 or bool(opts.get("R"))
    _ls_print(ctx, opts, [(n, st) for n, st in files])
    first = not files
    queue = list(dirs)
    while queue:
        name, _st = queue.pop(0)
        try:
            entries = sorted(ctx.namespace.scandir(ctx.resolve(name)), key=lambda s: s.name)
        except FsError as e:
            ctx.error(f"cannot open directory '{name}': {strerror(e)}")
            status = 2
            continue
        if not opts.get("a") and not opts.get("A"):
            entries = [e for e in entries if not e.name.startswith(".")]
        items = [(e.name, e) for e in entries]
        if opts.get("a"):
            items = [(".", Stat(".", 0, True)), ("..", Stat("..", 0, True)), *items]
        if shown:
            ctx.write(("" if first else "\n") + f"{name}:\n")
        first = False
        if opts.get("l"):
            ctx.write(f"total {sum((e.size + 1023) // 1024 for e in entries if e.is_file)}\n")
        _ls_print(ctx, opts, items)
        if opts.get("R"):
            sub = [(name.rstrip("/") + "/" + e.name, e) for e in entries if e.is_dir]
            queue[0:0] = sub
    return status


def _ls_print(ctx: Ctx, opts: dict[str, str | bool], items: list[tuple[str, Stat]]) -> None:
    for name, st in items:
        suffix = "/" if opts.get("F") and st.is_dir else ""
        if opts.get("l"):
            mode = "drwxr-xr-x" if st.is_dir else ("-r--r--r--" if st.readonly
                                                   else "-rw-r--r--")
            when = time.strftime("%b %e %H:%M", time.gmtime(st.mtime))
            ctx.write(f"{mode} 1 user user {st.size:8} {when} {name}{suffix}\n")
        else:
            ctx.write(name + suffix + "\n")


@command("find", COMMANDS)
def _find(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    roots: list[str] = []
    while args and not args[0].startswith("-") and args[0] not in ("!", "("):
        roots.append(args.pop(0))
    tests: list[tuple[str, str]] = []
    maxdepth, mindepth = 1 << 30, 0
    exec_cmd: list[str] | None = None
    negate = False
    while args:
        a = args.pop(0)
        if a in ("!", "-not"):
            negate = True
            continue
        if a in ("-print", "-a", "-and"):
            continue
        if a in ("-delete", "-empty"):
            tests.append((("!" if negate else "") + a, ""))
            negate = False
            continue
        if a == "-exec":
            exec_cmd = []
            while args and args[0] not in (";", "+"):
                exec_cmd.append(args.pop(0))
            if args:
                args.pop(0)
            continue
        if not args:
            raise _Usage(f"missing argument to '{a}'")
        v = args.pop(0)
        if a == "-maxdepth":
            maxdepth = _int(ctx, v)
        elif a == "-mindepth":
            mindepth = _int(ctx, v)
        elif a in ("-name", "-iname", "-type", "-path", "-wholename"):
            tests.append((("!" if negate else "") + a, v))
        else:
            raise _Usage(f"unknown predicate '{a}'")
        negate = False
    status = 0
    for root in roots or ["."]:
        st = stat_or_none(ctx, root)
        if st is None:
            ctx.error(f"'{root}': No such file or directory")
            status = 1
            continue
        delete = any(t == "-delete" for t, _ in tests)
        found = list(_find_walk(ctx, root, st, 0, maxdepth))
        for shown, entry, depth in reversed(found) if delete else found:
            if depth < mindepth or not all(_find_test(t, v, shown, entry) for t, v in tests):
                continue
            if delete:
                try:
                    ctx.namespace.rmtree(ctx.resolve(shown))
                except FsError as e:
                    ctx.error(f"cannot delete '{shown}': {strerror(e)}")
                    status = 1
            elif exec_cmd is not None:
                status = max(status, int(ctx.run([shown if x == "{}" else x
                                                  for x in exec_cmd]) != 0))
            else:
                ctx.write(shown + "\n")
    return status


def _find_walk(ctx: Ctx, shown: str, st: Stat, depth: int,
               maxdepth: int) -> Iterator[tuple[str, Stat, int]]:
    """``(shown path, stat, depth)`` top-down in name order, with an explicit stack."""
    stack = [(shown, st, depth)]
    while stack:
        shown, st, depth = stack.pop()
        yield shown, st, depth
        if st.is_dir and depth < maxdepth:
            try:
                entries = sorted(ctx.namespace.scandir(ctx.resolve(shown)),
                                 key=lambda s: s.name, reverse=True)
            except FsError:
                continue
            stack.extend((shown.rstrip("/") + "/" + e.name, e, depth + 1) for e in entries)


def _find_test(test: str, value: str, shown: str, st: Stat) -> bool:
    neg = test.startswith("!")
    test = test.lstrip("!")
    if test == "-empty":
        ok = st.size == 0
    elif test == "-delete":
        ok = True
    elif test == "-type":
        ok = st.is_dir if value == "d" else (not st.is_dir if value == "f" else False)
    elif test in ("-name", "-iname"):
        name = paths.basename(paths.normalize(shown)) or "/"
        if shown in (".", ".."):
            name = shown
        flags = re.DOTALL | (re.IGNORECASE if test == "-iname" else 0)
        ok = re.fullmatch(glob_regex([(value, False)]), name, flags) is not None
    else:
        ok = re.fullmatch(glob_regex([(value, False)]), shown, re.DOTALL) is not None
    return ok != neg


# == text ==================================================================================


def _legacy_count(argv: list[str]) -> list[str]:
    """``head -5`` is ``head -n 5``."""
    out = [argv[0]]
    for i, a in enumerate(argv[1:], 1):
        if re.fullmatch(r"-\d+", a) and argv[i - 1] not in ("-n", "-c"):
            out += ["-n", a[1:]]
        else:
            out.append(a)
    return out


def _count_arg(opts: dict[str, str | bool], argv: list[str]) -> tuple[str, int, bool]:
    """head/tail: ('n' or 'c', count, from-start '+N')."""
    kind = "c" if "c" in opts else "n"
    raw = str(opts.get(kind, "10"))
    plus = raw.startswith("+")
    neg = raw.startswith("-")
    try:
        n = int(raw.lstrip("+-"))
    except ValueError:
        raise _Usage(f"invalid number of lines: '{raw}'") from None
    return kind, -n if neg else n, plus


@command("head", COMMANDS)
def _head(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(_legacy_count(argv), "qv", "nc")
    kind, n, _ = _count_arg(opts, argv)
    status = 0
    for i, (name, stream) in enumerate(_streams(ctx, files)):
        if stream is None:
            status = 1
            continue
        if len(files) > 1:
            ctx.write(("\n" if i else "") + f"==> {name} <==\n")
        if n < 0:  # all but the last -n: needs the whole input
            data = stream.read_all()
            if kind == "c":
                ctx.write(data[:len(data) + n])
            else:
                lines = _lines(data)
                ctx.write(b"".join(lines[:len(lines) + n]))
        elif kind == "c":
            left = n
            while left > 0 and (chunk := stream.read(left)):
                ctx.write(chunk)
                left -= len(chunk)
        else:
            for _ in range(n):
                line = stream.readline()
                if not line:
                    break
                ctx.write(line)
    return status


@command("tail", COMMANDS)
def _tail(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(_legacy_count(argv), "qvfF", "nc")
    kind, n, plus = _count_arg(opts, argv)
    n = abs(n)
    status = 0
    for i, (name, stream) in enumerate(_streams(ctx, files)):
        if stream is None:
            status = 1
            continue
        if len(files) > 1:
            ctx.write(("\n" if i else "") + f"==> {name} <==\n")
        if plus:  # from the n-th line (byte) on: skip, then copy
            if kind == "c":
                skip = max(n - 1, 0)
                while skip > 0 and (chunk := stream.read(skip)):
                    skip -= len(chunk)
            else:
                for _ in range(max(n - 1, 0)):
                    if not stream.readline():
                        break
            for chunk in stream.chunks():
                ctx.write(chunk)
        else:
            ctx.write(_last(stream, kind, n))
    return status


def _last(stream: Input, kind: str, n: int) -> bytes:
    """The last ``n`` lines (``kind`` "n") or bytes ("c") of ``stream``, read through in
    chunks while keeping only a window of a few times the answer's size."""
    buf = bytearray()
    floor = 1 << 20
    for chunk in stream.chunks():
        buf += chunk
        if len(buf) > floor:
            buf = bytearray(_cut_last(bytes(buf), kind, n))
            floor = max(1 << 20, 4 * len(buf))
    return _cut_last(bytes(buf), kind, n)


def _cut_last(data: bytes, kind: str, n: int) -> bytes:
    if kind == "c":
        return data[len(data) - n:] if n else b""
    if n == 0:
        return b""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(n):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return data
    return data[end + 1:]


@command("wc", COMMANDS)
def _wc(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "lwcmL", longs={"lines": "l", "words": "w", "bytes": "c",
                                                 "chars": "m"})
    keys = [k for k in "lwc" if opts.get(k) or (k == "c" and opts.get("m"))] or ["l", "w", "c"]
    status = 0
    rows: list[tuple[list[int], str | None]] = []
    size = 0
    for name, stream in _streams(ctx, files):
        if stream is None:
            status = 1
            continue
        found = {"l": 0, "w": 0, "c": 0}
        in_word = False
        for chunk in stream.chunks():
            ctx.check()
            size += len(chunk)
            found["l"] += chunk.count(b"\n")
            words = len(chunk.split())
            if in_word and words and not chunk[:1].isspace():
                words -= 1  # a word cut by the chunk boundary
            found["w"] += words
            in_word = not chunk[-1:].isspace()
            found["c"] += (len(chunk) - len(_CONTINUATION.findall(chunk)) if opts.get("m")
                           else len(chunk))
        rows.append(([found[k] for k in keys], name if files else None))
    if len(files) > 1:
        rows.append(([sum(r[0][i] for r in rows) for i in range(len(keys))], "total"))
    # GNU wc: one column unpadded; stdin 7 wide; files as wide as their total size.
    width = 1 if len(keys) == 1 and len(rows) == 1 else (7 if not files else len(str(size)))
    for counts, label in rows:
        line = " ".join(f"{c:{width}}" for c in counts)
        ctx.write(line + (f" {label}" if label is not None else "") + "\n")
    return status



def _grep_regex(patterns: list[str], opts: dict[str, str | bool]
                ) -> timed_rx.TimedPattern[bytes]:
    parts = []
    for p in patterns:
        if opts.get("F"):
            rx = re.escape(p)
        elif opts.get("P"):  # Perl regex: Python's re is close enough
            rx = p
        else:
            rx = posix_regex(p, bool(opts.get("E")))
        if opts.get("w"):
            rx = r"(?<!\w)(?:" + rx + r")(?!\w)"
        if opts.get("x"):
            rx = "(?:" + rx + r")\Z"
        parts.append(rx)
    flags = re.IGNORECASE if opts.get("i") else 0
    try:
        return timed_rx.compile(_bytes("|".join(f"(?:{p})" for p in parts)),
                                flags | re.MULTILINE)
    except (re.error, timed_rx.error) as e:
        raise _Usage(f"invalid regular expression: {e}") from None


@command("grep egrep fgrep", COMMANDS)
def _grep(ctx: Ctx, argv: list[str]) -> int:
    opts, rest = getopts(argv, "ivcnqEFrRlLoswxhHaIzP", "emfABC")
    if argv[0] == "egrep":
        opts["E"] = True
    if argv[0] == "fgrep":
        opts["F"] = True
    if "e*" in opts:
        patterns = str(opts["e*"]).split("\0")[1:]
    elif "f" in opts:
        patterns = _text(ctx.read_file(str(opts["f"]))).splitlines()
    elif rest:
        patterns = [rest.pop(0)]
    else:
        raise _Usage("no pattern given")
    patterns = [q for p in patterns for q in p.split("\n")]
    rx = _grep_regex(patterns, opts)
    recursive = bool(opts.get("r") or opts.get("R"))
    files = rest or (["."] if recursive else [])
    targets: list[str] = []
    status = 1
    errors = False
    include = [g for g in str(opts.get("*include", "")).split("\0") if g]
    exclude = [g for g in str(opts.get("*exclude", "")).split("\0") if g]
    exclude_dir = [g for g in str(opts.get("*exclude-dir", "")).split("\0") if g]

    def matches(name: str, globs: list[str]) -> bool:
        return any(re.fullmatch(glob_regex([(g, False)]), name, re.DOTALL) for g in globs)
    for f in files:
        st = stat_or_none(ctx, f)
        if recursive and st is not None and st.is_dir:
            for shown, entry, _ in _find_walk(ctx, f, st, 0, 1 << 30):
                parts = shown.split("/")[:-1]
                if entry.is_dir or any(matches(d, exclude_dir) for d in parts[1:]):
                    continue
                name = (parts and shown.rsplit("/", 1)[-1]) or shown
                if (include and not matches(name, include)) or matches(name, exclude):
                    continue
                targets.append(shown)
        elif st is not None and st.is_dir:
            ctx.error(f"{f}: Is a directory")
            errors = True
        else:
            targets.append(f)
    show_name = ((len(targets) > 1 or recursive) and not opts.get("h")) or bool(opts.get("H"))
    maxcount = int(str(opts["m"])) if "m" in opts else -1
    after = int(str(opts.get("A", opts.get("C", 0))))
    before = int(str(opts.get("B", opts.get("C", 0))))
    last_shown = 0  # line number of the last line written (for context and "--")
    any_shown = False
    for name, stream in (_streams(ctx, targets) if (targets or not files) else iter(())):
        if stream is None:
            errors = True
            continue
        count = 0
        pending_after = 0
        recent: deque[tuple[int, bytes]] = deque(maxlen=before or 1)
        last_shown = 0

        def show(lineno: int, line: bytes, sep: bytes, name: str = name) -> None:
            nonlocal last_shown, any_shown
            if (after or before) and ((last_shown and lineno > last_shown + 1)
                                      or (not last_shown and any_shown)):
                ctx.write(b"--\n")
            any_shown = True
            pre = (_bytes(name) + sep) if show_name and files else b""
            num = f"{lineno}".encode() + sep if opts.get("n") else b""
            ctx.write(pre + num + line + b"\n")
            last_shown = lineno
        for lineno, raw in enumerate(stream.lines(), 1):
            ctx.check()
            if count == maxcount:
                break
            line = raw[:-1] if raw.endswith(b"\n") else raw
            found = rx.search(line) is not None
            if found == bool(opts.get("v")):
                if pending_after > 0:
                    show(lineno, line, b"-")
                    pending_after -= 1
                if before:
                    recent.append((lineno, line))
                continue
            count += 1
            if opts.get("q"):
                return 0
            if opts.get("c") or opts.get("l") or opts.get("L"):
                continue
            for k, kept in recent:
                if k > last_shown and k >= lineno - before:
                    show(k, kept, b"-")
            recent.clear()
            pending_after = after
            if opts.get("o") and not opts.get("v"):
                for m in rx.finditer(line):
                    if m.group():
                        pre = (_bytes(name) + b":") if show_name and files else b""
                        num = f"{lineno}:".encode() if opts.get("n") else b""
                        ctx.write(pre + num + m.group() + b"\n")
            else:
                show(lineno, line, b":")
        if count:
            status = 0
        if opts.get("c"):
            prefix = (_bytes(name) + b":") if show_name and files else b""
            ctx.write(prefix + f"{count}\n".encode())
        if opts.get("l") and count:
            ctx.write(name + "\n")
        if opts.get("L") and not count:
            ctx.write(name + "\n")
    return 2 if errors and not (opts.get("q") and status == 0) else status


@attrs.frozen
class _SortKey:
    """One ``-k POS1[,POS2][flags]``: fields ``start`` (0-based) to ``end`` (inclusive,
    1-based; None: end of line), compared numerically, reversed or case-folded."""

    start: int | None
    end: int | None
    numeric: bool
    reverse: bool
    fold: bool


def _sort_keys(opts: dict[str, str | bool]) -> list[_SortKey]:
    numeric = bool(opts.get("n") or opts.get("g"))
    fold = bool(opts.get("f"))
    specs = [k for k in str(opts.get("k*", "")).split("\0") if k]
    if not specs:
        return [_SortKey(None, None, numeric, False, fold)]
    keys = []
    for spec in specs:
        m = re.fullmatch(r"(\d+)(?:\.\d+)?([a-zA-Z]*)(?:,(\d+)(?:\.\d+)?([a-zA-Z]*))?", spec)
        if m is None or int(m.group(1)) < 1:
            raise _Usage(f"invalid key '{spec}'")
        flags = (m.group(2) or "") + (m.group(4) or "")
        own = bool(set(flags) & set("nrfg"))
        keys.append(_SortKey(int(m.group(1)) - 1, int(m.group(3)) if m.group(3) else None,
                             ("n" in flags or "g" in flags) if own else numeric,
                             "r" in flags, ("f" in flags) if own else fold))
    return keys


def _sort_cmp(keys: list[_SortKey], sep: bytes | None, reverse: bool, stable: bool
              ) -> Callable[[bytes, bytes], int]:
    """GNU sort's order: each key in turn, then the whole line (unless ``-s``)."""

    def field(line: bytes, key: _SortKey) -> bytes:
        if key.start is None:
            return line
        if sep is not None:
            return sep.join(line.split(sep)[key.start:key.end])
        return b"".join(re.findall(rb"\s*\S+", line)[key.start:key.end]).lstrip()

    def value(line: bytes, key: _SortKey) -> Any:
        f = field(line, key)
        if key.numeric:
            m = re.match(rb"\s*(-?\d+(?:\.\d*)?)", f)
            return float(m.group(1)) if m else 0.0
        return f.lower() if key.fold else f

    def cmp(a: bytes, b: bytes) -> int:
        check()
        for key in keys:
            va, vb = value(a, key), value(b, key)
            if va != vb:
                c = -1 if va < vb else 1
                return -c if key.reverse != reverse else c
        if stable or a == b:
            return 0
        return (1 if a > b else -1) * (-1 if reverse else 1)

    return cmp


@command("sort", COMMANDS)
def _sort(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "rnufgbhsVcm", "ktoS")
    data = b""
    status = 0
    for _n, d in _inputs(ctx, files):
        if d is None:
            status = 2
        else:
            data += d if not d or d.endswith(b"\n") else d + b"\n"
    lines = data.split(b"\n")[:-1]
    keys = _sort_keys(opts)
    sep = _bytes(str(opts["t"])) if "t" in opts else None
    cmp = _sort_cmp(keys, sep, bool(opts.get("r")), bool(opts.get("s") or opts.get("u")))
    lines.sort(key=functools.cmp_to_key(cmp))
    if opts.get("u"):
        unique_cmp = _sort_cmp(keys, sep, False, True)
        uniq: list[bytes] = []
        for line in lines:
            if not uniq or unique_cmp(uniq[-1], line) != 0:
                uniq.append(line)
        lines = uniq
    out = b"".join(line + b"\n" for line in lines)
    if "o" in opts:
        ctx.namespace.write_bytes(ctx.resolve(str(opts["o"])), out)
    else:
        ctx.write(out)
    return status


@command("uniq", COMMANDS)
def _uniq(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "cdui")
    data = ctx.read_file(files[0]) if files else ctx.stdin
    groups: list[list[bytes]] = []
    for line in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
        if not line and not data:
            continue
        same = groups and (groups[-1][0].lower() == line.lower() if opts.get("i")
                           else groups[-1][0] == line)
        if same:
            groups[-1].append(line)
        else:
            groups.append([line])
    out: list[bytes] = []
    for g in groups:
        if (opts.get("d") and len(g) < 2) or (opts.get("u") and len(g) > 1):
            continue
        out.append((f"{len(g):7} ".encode() if opts.get("c") else b"") + g[0] + b"\n")
    data_out = b"".join(out)
    if len(files) > 1:
        ctx.namespace.write_bytes(ctx.resolve(files[1]), data_out)
    else:
        ctx.write(data_out)
    return 0


@command("xargs", COMMANDS)
def _xargs(ctx: Ctx, argv: list[str]) -> int:
    opts, cmd = getopts(argv, "0rt", "nIdL", permute=False)
    cmd = cmd or ["echo"]
    data = _text(ctx.stdin)
    if opts.get("0"):
        items = [x for x in data.split("\0") if x]
    elif "d" in opts:
        items = [x for x in data.split(_unescape(str(opts["d"]))[0]) if x]
    elif "I" in opts or "L" in opts:
        items = [x for x in data.split("\n") if x.strip()]
    else:
        items = _xargs_split(data)
    if not items and (opts.get("r") or "I" in opts):
        return 0
    status = 0
    if "I" in opts:
        rep = str(opts["I"])
        batches = [[a.replace(rep, item) for a in cmd] for item in items]
    else:
        n = int(str(opts.get("n", opts.get("L", 0)))) or max(len(items), 1)
        batches = [cmd + items[i:i + n] for i in range(0, max(len(items), 1), n)]
    for b in batches:
        rc = ctx.run(b, b"")
        if rc:
            status = 123 if rc < 126 else rc
    return status


def _xargs_split(data: str) -> list[str]:
    items: list[str] = []
    for m in re.finditer(r"""'([^']*)'|"([^"]*)"|((?:\\.|[^\s'"])+)""", data):
        if m.group(3) is not None:
            items.append(re.sub(r"\\(.)", r"\1", m.group(3)))
        else:
            items.append(m.group(1) if m.group(1) is not None else m.group(2))
    return items


def _tr_set(s: str) -> list[str]:
    s, _ = _unescape(s)
    classes = {"[:upper:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               "[:lower:]": "abcdefghijklmnopqrstuvwxyz", "[:digit:]": "0123456789",
               "[:space:]": " \t\n\r\f\v", "[:blank:]": " \t", "[:punct:]":
               "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}
    classes["[:alpha:]"] = classes["[:upper:]"] + classes["[:lower:]"]
    classes["[:alnum:]"] = classes["[:alpha:]"] + classes["[:digit:]"]
    out: list[str] = []
    i = 0
    while i < len(s):
        for name, chars in classes.items():
            if s.startswith(name, i):
                out.extend(chars)
                i += len(name)
                break
        else:
            if i + 2 < len(s) and s[i + 1] == "-":
                out.extend(chr(c) for c in range(ord(s[i]), ord(s[i + 2]) + 1))
                i += 3
            else:
                out.append(s[i])
                i += 1
    return out


@command("tr", COMMANDS)
def _tr(ctx: Ctx, argv: list[str]) -> int:
    opts, sets = getopts(argv, "dscC")
    if not sets:
        raise _Usage("missing operand")
    s1 = _tr_set(sets[0])
    if opts.get("c") or opts.get("C"):
        members = set(s1)
        s1 = [chr(c) for c in range(256) if chr(c) not in members]
    table: dict[int, str | None]
    if opts.get("d"):
        table = dict.fromkeys(map(ord, s1))
        squeeze = set(_tr_set(sets[1])) if len(sets) > 1 else set()
    elif len(sets) > 1:
        s2 = _tr_set(sets[1])
        s2 += [s2[-1]] * (len(s1) - len(s2)) if s2 else []
        table = {ord(a): b for a, b in zip(s1, s2, strict=False)}
        squeeze = set(s2)
    else:
        table = {}
        squeeze = set(s1)
    runs = (re.compile("(" + "|".join(re.escape(c) for c in squeeze) + r")\1+")
            if opts.get("s") and squeeze else None)
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    last = ""  # the last character written: a squeezed run may go on in the next chunk
    for chunk in itertools.chain(ctx.stdin_stream.chunks(), [b""]):
        ctx.check()
        text = decoder.decode(chunk, final=not chunk).translate(table)
        if runs is not None and text:
            text = runs.sub(r"\1", text)
            if last in squeeze:
                text = text.lstrip(last)
        if text:
            last = text[-1]
            ctx.write(text)
    return 0


def _ranges(spec: str) -> Callable[[int], bool]:
    rngs: list[tuple[int, int]] = []
    for part in spec.split(","):
        a, dash, b = part.partition("-")
        try:
            lo = int(a) if a else 1
            hi = (int(b) if b else 1 << 30) if dash else lo
        except ValueError:
            raise _Usage(f"invalid field value '{part}'") from None
        rngs.append((lo, hi))
    return lambda i: any(lo <= i <= hi for lo, hi in rngs)


@command("cut", COMMANDS)
def _cut(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "s", "dfcb")
    status = 0
    for _name, stream in _streams(ctx, files):
        if stream is None:
            status = 1
            continue
        for raw in stream.lines():
            ctx.check()
            line = _text(raw).removesuffix("\n")
            if "f" in opts:
                sel = _ranges(str(opts["f"]))
                d = str(opts.get("d", "\t"))
                if d not in line:
                    if not opts.get("s"):
                        ctx.write(line + "\n")
                    continue
                fields = line.split(d)
                ctx.write(d.join(f for i, f in enumerate(fields, 1) if sel(i)) + "\n")
            else:
                sel = _ranges(str(opts.get("c", opts.get("b", "1-"))))
                ctx.write("".join(c for i, c in enumerate(line, 1) if sel(i)) + "\n")
    return status


@command("diff", COMMANDS)
def _diff(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "uqbBwirN", "U")
    if len(files) != 2:
        raise _Usage("missing operand")
    st1, st2 = stat_or_none(ctx, files[0]), stat_or_none(ctx, files[1])
    if st1 is not None and st2 is not None and st1.is_dir and st2.is_dir:
        return _diff_dirs(ctx, opts, files[0], files[1])
    if st1 is not None and st2 is not None and st1.is_dir != st2.is_dir:
        d, f = (files[0], files[1]) if st1.is_dir else (files[1], files[0])
        inside = d.rstrip("/") + "/" + paths.basename(ctx.resolve(f))
        files = [inside, f] if st1.is_dir else [f, inside]
    return _diff_files(ctx, opts, files)


def _diff_dirs(ctx: Ctx, opts: dict[str, str | bool], a: str, b: str) -> int:
    """``diff`` of two directories; with ``-r`` their subdirectories too, in name order
    (an explicit stack of the directories being compared: any depth)."""
    status = 0
    stack: list[tuple[str, str, set[str], set[str], Iterator[str]]] = []

    def enter(a: str, b: str) -> None:
        names_a = set(ctx.namespace.listdir(ctx.resolve(a)))
        names_b = set(ctx.namespace.listdir(ctx.resolve(b)))
        stack.append((a, b, names_a, names_b, iter(sorted(names_a | names_b))))

    enter(a, b)
    while stack:
        a, b, names_a, names_b, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        pa, pb = a.rstrip("/") + "/" + name, b.rstrip("/") + "/" + name
        if name not in names_b or name not in names_a:
            ctx.write(f"Only in {a if name in names_a else b}: {name}\n")
            status = 1
            continue
        da, db = ctx.namespace.is_dir(ctx.resolve(pa)), ctx.namespace.is_dir(ctx.resolve(pb))
        if da and db:
            if opts.get("r"):
                enter(pa, pb)
            else:
                ctx.write(f"Common subdirectories: {pa} and {pb}\n")
        elif da or db:
            ctx.write(f"File {pa if da else pb} is a directory while file "
                      f"{pb if da else pa} is a regular file\n")
            status = 1
        else:
            status = max(status, _diff_files(ctx, opts, [pa, pb], header=True))
    return status


def _diff_files(ctx: Ctx, opts: dict[str, str | bool], files: list[str],
                header: bool = False) -> int:
    data = []
    for f in files:
        try:
            data.append(_text(ctx.read_file(f)))
        except NotFound:
            if opts.get("N"):
                data.append("")
                continue
            ctx.error(f"{f}: No such file or directory")
            return 2
    a, b = data
    if opts.get("w"):
        a, b = re.sub(r"[ \t]+", "", a), re.sub(r"[ \t]+", "", b)
    if a == b:
        return 0
    if opts.get("q"):
        ctx.write(f"Files {files[0]} and {files[1]} differ\n")
        return 1
    n = int(str(opts.get("U", 3)))
    if header:
        ctx.write(f"diff {' '.join(a for a in ('-u', '-r') if opts.get(a[1]))} "
                  f"{files[0]} {files[1]}\n".replace("  ", " "))
    out = difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                               files[0], files[1], n=n)
    for line in out:
        ctx.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return 1


@command("tac rev", COMMANDS)
def _tac(ctx: Ctx, argv: list[str]) -> int:
    _opts, files = getopts(argv, "")
    status = 0
    for _name, data in _inputs(ctx, files):
        if data is None:
            status = 1
            continue
        lines = [ln.rstrip(b"\n") for ln in _lines(data)]
        if argv[0] == "tac":
            ctx.write(b"".join(ln + b"\n" for ln in reversed(lines)))
        else:
            ctx.write(b"".join(_bytes(_text(ln)[::-1]) + b"\n" for ln in lines))
    return status


# == test / [ ==============================================================================


@command("test [", COMMANDS)
def _test(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            ctx.error("missing ']'")
            return 2
        args = args[:-1]
    try:
        return 0 if _TestParser(ctx, args).parse() else 1
    except _Usage as e:
        ctx.error(str(e))
        return 2


# == sed ===================================================================================


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
            raise _Usage("missing command")
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
            arg = _unescape(script[start:end])[0]
            i = end
        elif c in "dpqQ=nNhHgGxlD{}":
            pass
        else:
            raise _Usage(f"unknown command: '{c}'")
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
        raise _Usage(f"unterminated address or command: '{s}'")
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
        return _text(raw.removesuffix(b"\n"))

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
            scripts.append(_text(ctx.read_file(args[i])))
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
                    raise _Usage(f"invalid option -- '{ch}'")
        elif a in ("--quiet", "--silent"):
            quiet = True
        elif a == "--regexp-extended":
            extended = True
        else:
            files.append(a)
    if not scripts:
        if not files:
            raise _Usage("no script specified")
        scripts.append(files.pop(0))
    try:
        cmds = _sed_parse("\n".join(scripts), extended)
    except (re.error, timed_rx.error, IndexError) as e:
        raise _Usage(f"-e expression #1: {e}") from None
    status = 0
    if inplace:
        for f in files:
            try:
                old = ctx.read_file(f)
                parts: list[str] = []
                _sed_run(cmds, _SedLines(iter([Input(old)])), quiet, parts.append)
                ctx.namespace.write_bytes(ctx.resolve(f), _bytes("".join(parts)))
            except FsError as e:
                ctx.error(f"can't read {f}: {strerror(e)}")
                status = 2
        return status
    failed: list[str] = []

    def streams() -> Iterator[Input]:
        for name, stream in _streams(ctx, files):
            if stream is None:
                failed.append(name)
            else:
                yield stream
    _sed_run(cmds, _SedLines(streams()), quiet, ctx.write)
    return 2 if failed else status



command("awk gawk mawk", COMMANDS)(awk_main)
