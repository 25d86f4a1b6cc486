"""The command tables (``SPECIAL`` builtins, ``COMMANDS`` utilities), the ``@command``
decorator that fills them, and ``getopts``, the option parser the commands share.

The tables are filled when ``oanix.shell.commands`` is imported (``oanix.shell`` does).
"""

from __future__ import annotations

from collections.abc import Callable

from .context import CommandFn, Ctx


class Usage(Exception):
    """Bad options: reported as ``name: message`` with status 2."""


# GNU long options shared by several tools: name -> short letter (or "" to ignore).
_LONG = {"all": "a", "recursive": "r", "force": "f", "parents": "p", "verbose": "v",
         "quiet": "q", "silent": "q", "ignore-case": "i", "invert-match": "v", "count": "c",
         "line-number": "n", "files-with-matches": "l", "files-without-match": "L",
         "only-matching": "o", "extended-regexp": "E", "fixed-strings": "F",
         "word-regexp": "w", "line-regexp": "x", "no-filename": "h", "with-filename": "H",
         "reverse": "r", "numeric-sort": "n", "unique": "u", "lines": "n", "bytes": "c",
         "words": "w", "delimiter": "d", "fields": "f", "characters": "c", "unified": "u",
         "brief": "q", "squeeze-repeats": "s", "delete": "d", "no-clobber": "n",
         "color": "", "colour": "", "no-messages": "s", "human-readable": "h",
         "regexp": "e", "max-count": "m", "field-separator": "t", "key": "k", "output": "o",
         "zero-terminated": "z", "null": "0", "dereference": "", "binary-files": "",
         "include": "*include", "exclude": "*exclude", "exclude-dir": "*exclude-dir"}


def getopts(argv: list[str], flags: str, valued: str = "", permute: bool = True,
            longs: dict[str, str] | None = None) -> tuple[dict[str, str | bool], list[str]]:
    """Parse short options: ``flags`` take no value, ``valued`` take one (``-n5``, ``-n 5``).

    Options may follow operands (``permute``) until ``--``. GNU long options in ``_LONG``
    map to their short letter; ``--include=GLOB`` and the like are kept under
    ``*include`` (values joined by NUL).
    """
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            rest.extend(argv[i:])
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            short = (longs or {}).get(name, _LONG.get(name))
            if short is None or (short and short[0] != "*" and short not in flags + valued):
                raise Usage(f"unrecognized option '{a}'")
            if short == "":
                continue
            if short[0] == "*" or short in valued:
                if not eq:
                    if i >= len(argv):
                        raise Usage(f"option '{a}' requires an argument")
                    val, i = argv[i], i + 1
                if short[0] == "*":
                    prev = opts.get(short)
                    opts[short] = (prev if isinstance(prev, str) else "") + "\0" + val
                else:
                    opts[short] = val
            else:
                opts[short] = True
            continue
        if len(a) < 2 or a[0] != "-" or (a[1].isdigit() and not any(
                c in flags + valued for c in a[1:2])):
            rest.append(a)
            if not permute:
                rest.extend(argv[i:])
                break
            continue
        j = 1
        while j < len(a):
            c = a[j]
            if c in valued:
                val = a[j + 1:]
                if not val:
                    if i >= len(argv):
                        raise Usage(f"option requires an argument -- '{c}'")
                    val = argv[i]
                    i += 1
                opts[c] = val
                if c in "ek":  # repeatable (-e PAT -e PAT, -k 1,1nr -k 2)
                    prev = opts.get(c + "*")
                    opts[c + "*"] = (prev if isinstance(prev, str) else "") + "\0" + val
                break
            if c not in flags:
                raise Usage(f"invalid option -- '{c}'")
            opts[c] = True
            j += 1
    return opts, rest


def command(name: str, table: dict[str, CommandFn]) -> Callable[[CommandFn], CommandFn]:
    """Register ``fn`` under ``name`` (space-separated aliases) in ``table``."""
    def deco(fn: CommandFn) -> CommandFn:
        def wrapped(ctx: Ctx, argv: list[str]) -> int:
            try:
                return fn(ctx, argv)
            except Usage as e:
                ctx.error(str(e))
                return 2
        for n in name.split():
            table[n] = wrapped
        return fn
    return deco


# Locking: both tables are filled while ``oanix.shell.commands`` is imported, read-only after.
SPECIAL: dict[str, CommandFn] = {}
COMMANDS: dict[str, CommandFn] = {}
