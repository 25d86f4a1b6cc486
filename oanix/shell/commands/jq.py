"""``jq``: the command around the jq subset of ``jqlang`` (options, inputs, output)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ...errors import FsError
from ..context import Ctx, strerror
from ..table import COMMANDS, command
from ._util import Usage, text, to_bytes
from .jq_values import _Break, _num
from .jqlang import JqError, JqSyntaxError, compile_filter, dumps, run, truthy

__all__: list[str] = []

_FLAGS = {"r": "raw", "j": "join", "c": "compact", "s": "slurp", "n": "null", "e": "exit",
          "S": "sort", "a": "ascii", "R": "rawin", "C": "", "M": "", "h": "help"}
_LONG_FLAGS = {"--raw-output": "raw", "--join-output": "join", "--compact-output": "compact",
               "--slurp": "slurp", "--null-input": "null", "--exit-status": "exit",
               "--sort-keys": "sort", "--ascii-output": "ascii", "--raw-input": "rawin",
               "--tab": "tab", "--color-output": "", "--monochrome-output": "",
               "--unbuffered": "", "--stream-errors": "", "--seq": ""}


class _Opts:
    """Parsed command line. Locking: none; one invocation."""

    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.indent = 2
        self.named: dict[str, Any] = {}
        self.positional: list[Any] = []
        self.filter: str | None = None
        self.files: list[str] = []


def _parse_args(ctx: Ctx, argv: list[str]) -> _Opts:
    o = _Opts()
    args = argv[1:]
    rest_mode: str | None = None
    i = 0

    def value(n: int) -> list[str]:
        if i + n > len(args):
            raise Usage(f"{args[i - 1]} takes {n} parameter(s)")
        return args[i:i + n]

    while i < len(args):
        a = args[i]
        i += 1
        if rest_mode is not None and not (a.startswith("-") and len(a) > 1):
            if o.filter is None:
                o.filter = a
            elif rest_mode == "args":
                o.positional.append(a)
            else:
                o.positional.append(_json_arg(a, "--jsonargs"))
            continue
        if a == "--args" or a == "--jsonargs":
            rest_mode = a[2:]
        elif a in _LONG_FLAGS:
            if _LONG_FLAGS[a]:
                o.flags.add(_LONG_FLAGS[a])
        elif a == "--indent":
            o.indent = int(value(1)[0])
            i += 1
        elif a in ("--arg", "--argjson", "--slurpfile", "--rawfile"):
            name, val = value(2)
            i += 2
            if a == "--arg":
                o.named[name] = val
            elif a == "--argjson":
                o.named[name] = _json_arg(val, a)
            else:
                try:
                    data = text(ctx.read_file(val))
                except FsError as e:
                    raise Usage(f"{a}: {val}: {strerror(e)}") from None
                o.named[name] = data if a == "--rawfile" else list(_parse_stream(data))
        elif a in ("-f", "--from-file"):
            name = value(1)[0]
            i += 1
            o.filter = text(ctx.read_file(name))
        elif a.startswith("-") and not a.startswith("--") and len(a) > 1:
            for c in a[1:]:
                if c not in _FLAGS:
                    raise Usage(f"Unknown option: {a}")
                if _FLAGS[c]:
                    o.flags.add(_FLAGS[c])
        elif a.startswith("--"):
            raise Usage(f"Unknown option: {a}")
        elif o.filter is None:
            o.filter = a
        elif rest_mode == "args":
            o.positional.append(a)
        elif rest_mode == "jsonargs":
            o.positional.append(_json_arg(a, "--jsonargs"))
        else:
            o.files.append(a)
    return o


def _json_arg(s: str, opt: str) -> Any:
    try:
        return json.loads(s, parse_float=lambda f: _num(float(f)))
    except ValueError:
        raise Usage(f"{opt}: invalid JSON text passed: {s}") from None


class _ParseError(Exception):
    pass


def _parse_stream(data: str) -> Iterator[Any]:
    """The JSON values in ``data``, one after another (whitespace between them)."""
    dec = json.JSONDecoder(parse_float=lambda f: _num(float(f)))
    i, n = 0, len(data)
    while True:
        while i < n and data[i] in " \t\r\n":
            i += 1
        if i >= n:
            return
        try:
            v, i = dec.raw_decode(data, i)
        except ValueError as e:
            line = data.count("\n", 0, i) + 1
            raise _ParseError(f"{e.args[0].split(':')[0]} at line {line}") from None
        yield v


@command("jq", COMMANDS)
def _jq(ctx: Ctx, argv: list[str]) -> int:
    o = _parse_args(ctx, argv)
    if "help" in o.flags:
        ctx.stdout.write(b"Usage: jq [OPTIONS] FILTER [FILES...]\n")
        return 0
    if o.filter is None:
        raise Usage("no filter given (Usage: jq [OPTIONS] FILTER [FILES...])")
    try:
        tree = compile_filter(o.filter)
    except (JqSyntaxError, JqError, ValueError) as e:
        ctx.stderr.write(to_bytes(f"jq: error: {e}\njq: 1 compile error\n"))
        return 3
    filename: list[str | None] = [None]
    try:
        texts = [(f, text(ctx.read_file(f))) for f in o.files] if o.files else [
            (None, text(ctx.stdin))]
    except FsError as e:
        ctx.error(f"error: Could not open {e.filename}: {strerror(e)}")
        return 2
    flags = o.flags

    def values() -> Iterator[Any]:
        for name, data in texts:
            filename[0] = name
            if "rawin" in flags:
                yield from data.splitlines()
            else:
                yield from _parse_stream(data)

    inputs: Iterator[Any]
    if "slurp" in flags:
        try:
            inputs = iter(["".join(t for _, t in texts)] if "rawin" in flags
                          else [list(values())])
        except _ParseError as e:
            ctx.stderr.write(to_bytes(f"jq: error (at <stdin>:0): Cannot parse: {e}\n"))
            return 2
    else:
        inputs = values()
    variables: dict[str, Any] = dict(o.named)
    variables["ENV"] = dict(ctx.env)
    variables["ARGS"] = {"positional": o.positional, "named": dict(o.named)}
    variables["*inputs*"] = inputs
    variables["*filename*"] = filename
    variables["*stderr*"] = lambda s: ctx.stderr.write(to_bytes(s))
    indent: int | str = "\t" if "tab" in flags else (0 if "compact" in flags else o.indent)
    status = 0
    last: Any = _NONE
    sources: Iterator[Any] = iter([None]) if "null" in flags else inputs
    while True:
        try:
            value = next(sources)
        except StopIteration:
            break
        except _ParseError as e:
            ctx.stderr.write(to_bytes(f"jq: error (at <stdin>:0): Cannot parse: {e}\n"))
            return 2
        try:
            for out in run(tree, value, variables, ctx.check):
                last = out
                if isinstance(out, str) and flags & {"raw", "join"}:
                    s = out
                else:
                    s = dumps(out, indent, "sort" in flags, "ascii" in flags)
                ctx.stdout.write(to_bytes(s if "join" in flags else s + "\n"))
        except JqError as e:
            msg = e.value if isinstance(e.value, str) else (
                f"{dumps(e.value)} (not a string)")
            ctx.stderr.write(to_bytes(f"jq: error (at <stdin>:0): {msg}\n"))
            status = 5
        except _Break:
            ctx.stderr.write(b"jq: error (at <stdin>:0): break\n")
            status = 5
        except _ParseError as e:
            ctx.stderr.write(to_bytes(f"jq: error (at <stdin>:0): Cannot parse: {e}\n"))
            return 2
        except RecursionError:
            ctx.stderr.write(b"jq: error: filter nests too deeply\n")
            return 5
    if status:
        return status
    if "exit" in flags:
        return 4 if last is _NONE else (0 if truthy(last) else 1)
    return 0


_NONE = object()
