"""``diff``: GNU's normal output, or unified (``-u``/``-U``); ``-q``, ``-w``, ``-N``, ``-r``;
of two files or two folders."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator

from ... import paths
from ...errors import NotFound
from ..context import Ctx, stat_or_none
from ..table import COMMANDS, Usage, command, getopts
from ._util import text


@command("diff", COMMANDS)
def _diff(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "uqbBwirN", "U")
    if len(files) != 2:
        raise Usage("missing operand")
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
            data.append(text(ctx.read_file(f)))
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
    if header:
        ctx.write(f"diff {' '.join(a for a in ('-u', '-r') if opts.get(a[1]))} "
                  f"{files[0]} {files[1]}\n".replace("  ", " "))
    lines_a, lines_b = a.splitlines(keepends=True), b.splitlines(keepends=True)
    if opts.get("u") or "U" in opts:
        out: Iterable[str] = difflib.unified_diff(lines_a, lines_b, files[0], files[1],
                                                  n=int(str(opts.get("U", 3))))
    else:
        out = _normal(lines_a, lines_b)
    for line in out:
        ctx.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return 1


def _normal(a: list[str], b: list[str]) -> Iterator[str]:
    """GNU diff's normal format: ``2,3c2``, then ``< `` old lines, ``---``, ``> `` new."""

    def span(lo: int, hi: int) -> str:
        return str(lo + 1) if hi - lo == 1 else f"{lo + 1},{hi}"

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b,
                                                       autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace":
            yield f"{span(i1, i2)}c{span(j1, j2)}\n"
        elif tag == "delete":
            yield f"{span(i1, i2)}d{j1}\n"
        else:
            yield f"{i1}a{span(j1, j2)}\n"
        yield from ("< " + line for line in a[i1:i2])
        if tag == "replace":
            yield "---\n"
        yield from ("> " + line for line in b[j1:j2])
