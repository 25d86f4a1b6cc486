"""Run a WASI module from the command line, over host directories and memory mounts.

    python -m oanix.run_wasi [FLAGS] MODULE.wasm [ARGS...]      (or: oanix-run ...)

Flags shared with ``wasmtime run``: ``--dir HOST[::GUEST]`` (a host directory, mounted as
a WorkspaceFs; GUEST defaults to HOST, a relative HOST such as ``.`` to ``/HOST``) and
``--env NAME=VALUE`` (``--env NAME`` copies the host's value). oanix adds ``--mem GUEST``
(an empty in-memory directory), ``--fuel N`` (``1e6``, ``1_000_000``), ``--timeout
SECONDS`` (``2.5``, ``500ms``, ``1m``), ``--memory BYTES`` (``64k``, ``1.5G``, ``256MiB``:
K = 1024), ``--stdin FILE`` (``-`` reads this process's stdin; otherwise the guest's stdin
is empty) and ``--max-output BYTES`` (kept of each of stdout and stderr). Numbers are read
by ``oanix.values``, as a manifest's limits are. Everything after MODULE goes to the guest.
``-v`` logs the run to stderr (what ran, how it ended, how long it took), ``-vv`` also its
limits.

The guest's stdout and stderr are written out unchanged once it ends, and the exit status
is the guest's own (0-125), or:

    124  the time limit (--timeout) was hit
    125  oanix could not run the module: missing or invalid module, bad flag or value
    126  the fuel (--fuel) ran out
    134  another wasm trap (unreachable, out-of-bounds access, stack overflow, ...)
    137  the memory limit (--memory) was hit
    153  a writable directory went over its disk budget (``RunConfig.max_disk``)

Each of these prints one line on stderr, starting with ``oanix-run:``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from . import paths
from ._verbose import add_verbose_flag, configure_logging
from .errors import InvalidArgument, OanixError
from .fs.mem import MemFs
from .fs.workspace import WorkspaceFs
from .namespace import Namespace
from .values import check_unicode, parse_count, parse_duration, parse_size
from .wasi import Preopen, RunConfig, RunResult, WasiRuntime
from .wasi.records import TRAP_STATUS

__all__ = ["EXIT_FUEL", "EXIT_MEMORY", "EXIT_TIMEOUT", "EXIT_TRAP", "EXIT_UNRUNNABLE", "main"]

PROG = "oanix-run"
EXIT_UNRUNNABLE = 125
EXIT_TIMEOUT = TRAP_STATUS["timeout"]
EXIT_FUEL = TRAP_STATUS["fuel"]
EXIT_TRAP = TRAP_STATUS["wasm"]
EXIT_MEMORY = TRAP_STATUS["memory"]

_EPILOG = """\
exit status: the guest's own (0-125), or
  124  time limit (--timeout) hit
  125  oanix could not run the module (missing/invalid module, bad flag or value)
  126  fuel (--fuel) exhausted
  134  another wasm trap
  137  memory limit (--memory) hit
"""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message.replace("MODULE, ARGS", "MODULE"))


def _flag_type(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    """An argparse type from a ``values`` parser: its refusal becomes a usage error."""
    def convert(text: str) -> object:
        try:
            return parse(text)
        except InvalidArgument as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value: ")) from None
    convert.__name__ = name  # argparse names the type in its messages
    return convert


_size = _flag_type(lambda t: parse_size(t, "value"), "size")
_positive_size = _flag_type(lambda t: parse_size(t, "value", minimum=1), "size")
_positive_int = _flag_type(lambda t: parse_count(t, "value", minimum=1), "count")
_seconds = _flag_type(lambda t: parse_duration(t, "value"), "duration")


def _parser() -> _Parser:
    p = _Parser(prog=PROG, description="Run a WASI (preview 1) module over host directories "
                "and memory mounts, with limits.", epilog=_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                   help="mount host directory HOST at GUEST (default: HOST)")
    p.add_argument("--mem", action="append", default=[], metavar="GUEST",
                   help="mount an empty in-memory directory at GUEST")
    p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="set a guest environment variable (NAME alone: the host's value)")
    p.add_argument("--fuel", type=_positive_int, metavar="N",
                   help="instructions the guest may execute (1000000, 1e6, 1_000_000)")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="wall-clock limit (2.5, 500ms, 2s, 1m, 1.5h)")
    p.add_argument("--memory", type=_positive_size, metavar="BYTES",
                   help="linear memory limit (suffixes K, M, G, T; KiB, MB, ...; K = 1024)")
    p.add_argument("--stdin", metavar="FILE", help="feed FILE to the guest's stdin ('-': "
                   "this process's stdin; default: empty)")
    p.add_argument("--max-output", type=_size, metavar="BYTES",
                   help="bytes kept of each of stdout and stderr")
    add_verbose_flag(p)
    p.add_argument("module", metavar="MODULE", help="the .wasm file to run")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for the guest")
    return p


def _text(text: str, what: str) -> str:
    """``text`` (from argv or the environment) if it is UTF-8, which WASI passes on."""
    try:
        return check_unicode(text, what)
    except InvalidArgument:
        raise _UsageError(f"{what}: not valid UTF-8: {text!r}") from None


def _namespace(dirs: Sequence[str], mems: Sequence[str]) -> tuple[Namespace, dict[str, Preopen]]:
    ns = Namespace()
    preopens: dict[str, Preopen] = {}
    for spec in dirs:
        host, sep, guest = _text(spec, "--dir").partition("::")
        if not host:
            raise _UsageError(f"--dir {spec!r}: no host directory")
        if not sep:
            guest = host if os.path.isabs(host) else "/" + host
        guest = paths.normalize(guest)
        ns.mount(guest, WorkspaceFs(host))
        preopens[guest] = Preopen(guest)
    for guest in mems:
        guest = paths.normalize(_text(guest, "--mem"))
        ns.mount(guest, MemFs())
        preopens[guest] = Preopen(guest)
    return ns, preopens


def _env(specs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for spec in specs:
        name, sep, value = _text(spec, "--env").partition("=")
        if not name:
            raise _UsageError(f"--env {spec!r}: no variable name")
        if not sep:
            host = os.environ.get(name)
            if host is None:
                continue
            value = _text(host, f"--env {name} (the host's value)")
        env[name] = value
    return env


def _stdin(spec: str | None) -> bytes | None:
    if spec is None:
        return None
    if spec == "-":
        return sys.stdin.buffer.read()
    try:
        with open(spec, "rb") as f:
            return f.read()
    except OSError as e:
        raise _UsageError(f"--stdin {spec}: {e.strerror or e}") from None


def _describe(res: RunResult, args: argparse.Namespace) -> str:
    trap = res.trap
    assert trap is not None
    if trap.kind == "timeout":
        return f"time limit of {args.timeout:g} s exceeded"
    if trap.kind == "fuel":
        return f"fuel of {args.fuel} instructions exhausted"
    if trap.kind == "memory":
        status = "" if res.exit_code is None else f" (the guest exited with {res.exit_code})"
        return f"memory limit of {args.memory} bytes reached{status}"
    if trap.kind == "disk":
        return trap.message
    return f"wasm trap: {trap.message}" + (f" ({trap.code})" if trap.code else "")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (see the module docstring)."""
    try:
        args = _parser().parse_args(argv)
        configure_logging(args.verbose)
        ns, preopens = _namespace(args.dir, args.mem)
        guest_args = [_text(a, f"argument {i}") for i, a in enumerate(args.args, 1)]
        config = RunConfig(argv=guest_args, env=_env(args.env), stdin=_stdin(args.stdin),
                           preopens=preopens, fuel=args.fuel, memory_limit=args.memory,
                           timeout=args.timeout, max_output=args.max_output)
        if not os.path.isfile(args.module):
            raise _UsageError(f"{args.module}: no such module file")
        with WasiRuntime(scan_limit=0) as rt:  # no change report: nobody reads it here
            res = rt.run(args.module, ns, config)
    except _UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_UNRUNNABLE
    except OanixError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_UNRUNNABLE
    sys.stdout.buffer.write(res.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(res.stderr)
    sys.stderr.buffer.flush()
    if res.trap is not None:
        print(f"{PROG}: {_describe(res, args)}", file=sys.stderr)
    return res.status


if __name__ == "__main__":
    sys.exit(main())
