"""Who and where the sandbox is: ``uname``, ``whoami``, ``id``, ``hostname``, ``nproc``.

Agents ask these first. The answers describe the sandbox as a task image would look from
inside, as far as that is true: Linux (scripts test ``uname -s``), the user ``root``
(tasks run as root; ``$USER`` when set), the host name ``$HOSTNAME`` or ``oanix``, one
processor (what the sandbox's Python reports too), and ``wasm32`` as the machine, since
that is what its programs are: a binary for ``x86_64`` would not run here.
"""

from __future__ import annotations

from ..context import Ctx
from ..table import COMMANDS, Usage, command, getopts
from ._util import to_bytes

SYSNAME = "Linux"
RELEASE = "6.1.0-oanix"
VERSION = "#1 SMP oanix"
MACHINE = "wasm32"
OPERATING_SYSTEM = "GNU/Linux"
NPROC = 1


def _hostname(ctx: Ctx) -> str:
    return ctx.env.get("HOSTNAME") or "oanix"


def _user(ctx: Ctx) -> str:
    return ctx.env.get("USER") or "root"


@command("uname", COMMANDS)
def _uname(ctx: Ctx, argv: list[str]) -> int:
    """``uname [-asnrvmpio]``: ``-s`` alone by default."""
    opts, rest = getopts(argv, "asnrvmpio", longs={
        "all": "a", "kernel-name": "s", "nodename": "n", "kernel-release": "r",
        "kernel-version": "v", "machine": "m", "processor": "p", "hardware-platform": "i",
        "operating-system": "o"})
    if rest:
        raise Usage(f"extra operand '{rest[0]}'")
    fields = [("s", SYSNAME), ("n", _hostname(ctx)), ("r", RELEASE), ("v", VERSION),
              ("m", MACHINE), ("p", "unknown"), ("i", "unknown"), ("o", OPERATING_SYSTEM)]
    if opts.get("a"):  # GNU leaves out -p and -i when unknown
        chosen = [v for k, v in fields if k not in "pi"]
    else:
        chosen = [v for k, v in fields if opts.get(k)] or [SYSNAME]
    ctx.stdout.write(to_bytes(" ".join(chosen) + "\n"))
    return 0


@command("whoami", COMMANDS)
def _whoami(ctx: Ctx, argv: list[str]) -> int:
    ctx.stdout.write(to_bytes(_user(ctx) + "\n"))
    return 0


@command("id", COMMANDS)
def _id(ctx: Ctx, argv: list[str]) -> int:
    """``id [-u|-g|-G] [-n]``: the user is uid 0, as in a task image."""
    opts, rest = getopts(argv, "ugGnr")
    if rest and rest[0] != _user(ctx):
        ctx.error(f"'{rest[0]}': no such user")
        return 1
    name = _user(ctx)
    if opts.get("u") or opts.get("g") or opts.get("G"):
        ctx.stdout.write(to_bytes((name if opts.get("n") else "0") + "\n"))
    else:
        ctx.stdout.write(to_bytes(f"uid=0({name}) gid=0({name}) groups=0({name})\n"))
    return 0


@command("hostname", COMMANDS)
def _hostname_cmd(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) > 1 and not argv[1].startswith("-"):
        ctx.error("you must be root to change the host name")
        return 1
    ctx.stdout.write(to_bytes(_hostname(ctx) + "\n"))
    return 0


@command("nproc", COMMANDS)
def _nproc(ctx: Ctx, argv: list[str]) -> int:
    ctx.stdout.write(to_bytes(f"{NPROC}\n"))
    return 0
