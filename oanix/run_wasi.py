"""Run a WASI module from the command line, over host directories and memory mounts.

    python -m oanix.run_wasi [FLAGS] MODULE.wasm [ARGS...]      (or: oanix-run ...)

Flags shared with ``wasmtime run``: ``--dir HOST[::GUEST]`` (a host directory, mounted as
a WorkspaceFs; GUEST defaults to HOST, a relative HOST such as ``.`` to ``/HOST``) and
``--env NAME=VALUE`` (``--env NAME`` copies the host's value). oanix adds ``--mem GUEST``
(an empty in-memory directory), ``--fuel N``, ``--timeout SECONDS``, ``--memory BYTES``
(suffixes K, M, G), ``--stdin FILE`` (``-`` reads this process's stdin; otherwise the
guest's stdin is empty) and ``--max-output BYTES`` (kept of each of stdout and stderr).
Everything after MODULE goes to the guest.

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
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import paths
from .errors import OanixError
from .fs.mem import MemFs
from .fs.workspace import WorkspaceFs
from .namespace import Namespace
from .wasi import Preopen, RunConfig, RunResult, WasiRuntime
from .wasi.run import TRAP_STATUS

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


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _size(text: str) -> int:
    m = _SIZE.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size in bytes (e.g. 512M): {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _positive_size(text: str) -> int:
    n = _size(text)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return n


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return n


def _seconds(text: str) -> float:
    try:
        n = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not n > 0 or n == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return n


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
                   help="instructions the guest may execute")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="wall-clock limit")
    p.add_argument("--memory", type=_positive_size, metavar="BYTES",
                   help="linear memory limit (suffixes K, M, G)")
    p.add_argument("--stdin", metavar="FILE", help="feed FILE to the guest's stdin ('-': "
                   "this process's stdin; default: empty)")
    p.add_argument("--max-output", type=_size, metavar="BYTES",
                   help="bytes kept of each of stdout and stderr")
    p.add_argument("module", metavar="MODULE", help="the .wasm file to run")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for the guest")
    return p


def _namespace(dirs: Sequence[str], mems: Sequence[str]) -> tuple[Namespace, dict[str, Preopen]]:
    ns = Namespace()
    preopens: dict[str, Preopen] = {}
    for spec in dirs:
        host, sep, guest = spec.partition("::")
        if not host:
            raise _UsageError(f"--dir {spec!r}: no host directory")
        if not sep:
            guest = host if os.path.isabs(host) else "/" + host
        guest = paths.normalize(guest)
        ns.mount(guest, WorkspaceFs(host))
        preopens[guest] = Preopen(guest)
    for guest in mems:
        guest = paths.normalize(guest)
        ns.mount(guest, MemFs())
        preopens[guest] = Preopen(guest)
    return ns, preopens


def _env(specs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not name:
            raise _UsageError(f"--env {spec!r}: no variable name")
        if not sep:
            host = os.environ.get(name)
            if host is None:
                continue
            value = host
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
        ns, preopens = _namespace(args.dir, args.mem)
        config = RunConfig(argv=args.args, env=_env(args.env), stdin=_stdin(args.stdin),
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
