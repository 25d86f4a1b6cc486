"""Commands about time and processes: ``yes``, ``sleep``, ``timeout``, ``nice``/``nohup``,
``kill`` (of the shell's background jobs: the only processes it has)."""

from __future__ import annotations

import re
import time

from ..cancel import Cancelled, CancelScope, current, entered
from ..context import Ctx
from ..table import COMMANDS, Usage, command, getopts
from ._util import to_bytes


@command("yes", COMMANDS)
def _yes(ctx: Ctx, argv: list[str]) -> int:
    line = to_bytes((" ".join(argv[1:]) if len(argv) > 1 else "y") + "\n")
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
        raise Usage(f"invalid time interval '{text}'")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@command("timeout", COMMANDS)
def _timeout(ctx: Ctx, argv: list[str]) -> int:
    """``timeout [-s SIG] [-k T] [--preserve-status] [--foreground] N cmd``: runs ``cmd``
    under a cancel scope of N seconds (0: none); status 124 when it expires."""
    _opts, rest = getopts(argv, "v", "sk", permute=False,
                          longs={"signal": "s", "kill-after": "k", "preserve-status": "",
                                 "foreground": "", "verbose": "v"})
    if not rest:
        raise Usage("missing operand")
    seconds = _duration(rest[0])
    if len(rest) < 2:
        raise Usage("missing operand")
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


_SIGNALS = ("HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
            "USR2", "PIPE", "ALRM", "TERM")


@command("kill", COMMANDS)
def _kill(ctx: Ctx, argv: list[str]) -> int:
    """``kill [-s SIG | -SIG] ID...`` stops background jobs (``$!``; every signal stops);
    ``kill -0 ID`` asks whether one still runs; ``kill -l`` lists the signals."""
    args = argv[1:]
    if args[:1] == ["-l"]:
        ctx.stdout.write(to_bytes(" ".join(_SIGNALS) + "\n"))
        return 0
    probe = False
    if args[:1] == ["-s"] and len(args) > 1:
        args = args[2:]
    elif args and args[0].startswith("-") and args[0] != "--":
        probe = args[0] == "-0"
        args = args[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise Usage("not enough arguments")
    status = 0
    for arg in args:
        if not arg.isdigit():
            ctx.error(f"{arg}: arguments must be process or job IDs")
            status = 1
            continue
        jobs = ctx.shell.jobs
        running = jobs.is_running(int(arg)) if probe else jobs.kill(int(arg))
        if not running:  # unknown, or finished already
            if not probe:
                ctx.error(f"({arg}) - No such process")
            status = 1
    return status
