"""Commands whose exit status is their answer: ``test``/``[``, ``true``/``:``, ``false``.

The expression grammar is ``oanix.shell.cond``'s, shared with ``[[ ]]``.
"""

from __future__ import annotations

from ..cond import TestParser
from ..context import Ctx
from ..table import COMMANDS, Usage, command


@command("true :", COMMANDS)
def _true(ctx: Ctx, argv: list[str]) -> int:
    return 0


@command("false", COMMANDS)
def _false(ctx: Ctx, argv: list[str]) -> int:
    return 1


@command("test [", COMMANDS)
def _test(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            ctx.error("missing ']'")
            return 2
        args = args[:-1]
    try:
        return 0 if TestParser(ctx, args).parse() else 1
    except Usage as e:
        ctx.error(str(e))
        return 2
