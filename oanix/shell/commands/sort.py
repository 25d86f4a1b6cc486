"""``sort`` (keys ``-k``/``-t``, numeric, fold case, reverse, stable, unique) and ``uniq``."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import attrs

from ..cancel import check
from ..context import Ctx
from ..table import COMMANDS, Usage, command, getopts
from ._util import file_inputs, to_bytes


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
            raise Usage(f"invalid key '{spec}'")
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
    for _n, d in file_inputs(ctx, files):
        if d is None:
            status = 2
        else:
            data += d if not d or d.endswith(b"\n") else d + b"\n"
    lines = data.split(b"\n")[:-1]
    keys = _sort_keys(opts)
    sep = to_bytes(str(opts["t"])) if "t" in opts else None
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
