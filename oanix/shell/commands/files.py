"""File utilities: ``ls``, ``cp``, ``mv``, ``rm``, ``mkdir``, ``rmdir``, ``touch``,
``find``, ``chmod``/``chown`` (accepted, no effect), ``basename``, ``dirname``, ``stat``,
``du``, ``df``, ``ln``, ``mktemp``, ``realpath``/``readlink``, ``tee`` and ``cmp``.

The namespace keeps no modes, owners, inodes or links, so these commands report what a
fresh Linux file would show: files 0644 and directories 0755 owned by root, one link,
directories 4096 bytes, blocks of 4 KiB. A hard link (``ln``) is a copy; symbolic links
are refused with a message saying the namespace has none.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from typing import Any

from ... import paths
from ...errors import AlreadyExists, FsError, IsADirectory, NotFound
from ...service import FileService, Stat
from ..context import Ctx, stat_or_none, strerror
from ..patterns import glob_regex
from ..table import COMMANDS, Usage, command, getopts
from ._util import (
    CHUNK,
    int_arg,
    to_bytes,
)

__all__: list[str] = []

DIR_SIZE = 4096
BLOCK = 4096


def _blocks(st: Stat) -> int:
    """512-byte blocks the file would take on a 4 KiB-block file system."""
    size = DIR_SIZE if st.is_dir else st.size
    return -(-size // BLOCK) * (BLOCK // 512)


def _apparent(st: Stat) -> int:
    return DIR_SIZE if st.is_dir else st.size


def _mode(st: Stat) -> tuple[str, str]:
    return ("755", "drwxr-xr-x") if st.is_dir else ("644", "-rw-r--r--")


def _when(st: Stat) -> str:
    t = dt.datetime.fromtimestamp(st.mtime, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond * 1000:09d} +0000"


# -- stat -----------------------------------------------------------------------------------


def _stat_field(c: str, name: str, st: Stat, links: int) -> str | None:
    octal, sym = _mode(st)
    kind = "directory" if st.is_dir else ("regular empty file" if st.size == 0
                                          else "regular file")
    fields: dict[str, Callable[[], str]] = {
        "n": lambda: name, "N": lambda: f"'{name}'", "s": lambda: str(_apparent(st)),
        "F": lambda: kind, "a": lambda: octal, "A": lambda: sym,
        "f": lambda: "41ed" if st.is_dir else "81a4", "U": lambda: "root",
        "G": lambda: "root", "u": lambda: "0", "g": lambda: "0", "h": lambda: str(links),
        "i": lambda: "0", "b": lambda: str(_blocks(st)), "B": lambda: "512",
        "o": lambda: str(BLOCK), "d": lambda: "0", "D": lambda: "0", "t": lambda: "0",
        "T": lambda: "0", "Y": lambda: str(int(st.mtime)), "X": lambda: str(int(st.mtime)),
        "Z": lambda: str(int(st.mtime)), "W": lambda: "0", "y": lambda: _when(st),
        "x": lambda: _when(st), "z": lambda: _when(st), "w": lambda: "-",
        "m": lambda: "/", "C": lambda: "?",
    }
    fn = fields.get(c)
    return fn() if fn is not None else None


def _stat_format(fmt: str, name: str, st: Stat, escapes: bool, links: int = 1) -> str:
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            j = i + 1
            while j < len(fmt) and fmt[j] in "-+ #0123456789.":
                j += 1
            if j >= len(fmt):
                out.append(fmt[i:])
                break
            spec, conv = fmt[i + 1:j], fmt[j]
            if conv == "%":
                out.append("%")
            else:
                val = _stat_field(conv, name, st, links)
                if val is None:
                    out.append(fmt[i:j + 1])
                else:
                    width = int(spec.lstrip("-0") or 0) if spec.lstrip("-0").isdigit() else 0
                    out.append(val.ljust(width) if spec.startswith("-") else val.rjust(
                        width, "0" if spec.startswith("0") and val.isdigit() else " "))
            i = j + 1
            continue
        if escapes and c == "\\" and i + 1 < len(fmt):
            out.append({"n": "\n", "t": "\t", "\\": "\\", "r": "\r", "0": "\0",
                        '"': '"'}.get(fmt[i + 1], "\\" + fmt[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


@command("stat", COMMANDS)
def _stat(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "LtfF", "cP", longs={"format": "c", "printf": "P",
                                                    "dereference": "L", "terse": "t"})
    if not files:
        raise Usage("missing operand")
    status = 0
    for name in files:
        ctx.check()
        try:
            st = ctx.namespace.stat(ctx.resolve(name))
        except FsError as e:
            ctx.error(f"cannot statx '{name}': {strerror(e)}")
            status = 1
            continue
        links = _links(ctx, ctx.resolve(name), st)
        if "P" in opts:
            ctx.stdout.write(to_bytes(_stat_format(str(opts["P"]), name, st, True, links)))
        elif "c" in opts:
            ctx.stdout.write(to_bytes(_stat_format(str(opts["c"]), name, st, False, links) + "\n"))
        elif opts.get("t"):
            ctx.stdout.write(to_bytes(_stat_format(
                "%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o", name, st, False, links) + "\n"))
        else:
            ctx.stdout.write(to_bytes(_stat_format(
                "  File: %n\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\n"
                "Device: 0,0\tInode: %-11i Links: %h\n"
                "Access: (0%a/%A)  Uid: (    0/    root)   Gid: (    0/    root)\n"
                "Access: %x\nModify: %y\nChange: %z\n Birth: -\n", name, st, True, links)))
    return status


def _links(ctx: Ctx, path: str, st: Stat) -> int:
    """The link count Linux shows: 1 for a file, 2 + subdirectories for a directory."""
    if not st.is_dir:
        return 1
    return 2 + sum(1 for e in ctx.namespace.scandir(path) if e.is_dir)


# -- du / df --------------------------------------------------------------------------------


def _human(n: float) -> str:
    """``du -h``/``df -h`` sizes: 1 decimal below 10, rounded up, K M G T."""
    for unit in ("", "K", "M", "G", "T", "P"):
        if n < 1024 or unit == "P":
            if unit == "":
                return str(int(n))
            if n < 10:
                tenths = -(-n * 10 // 1) / 10
                return (f"{tenths:.1f}" if tenths < 10 else str(int(-(-n // 1)))) + unit
            return str(int(-(-n // 1))) + unit
        n /= 1024
    return str(n)


@command("du", COMMANDS)
def _du(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "ashbkmcSxL0", "d", longs={
        "summarize": "s", "bytes": "b", "total": "c", "max-depth": "d",
        "apparent-size": "A", "separate-dirs": "S", "one-file-system": "x",
        "null": "0", "block-size": "*bs", "si": "H", "all": "a"})
    depth_limit = 0 if opts.get("s") else (int(str(opts["d"])) if "d" in opts else None)
    apparent = bool(opts.get("b") or opts.get("A"))
    unit = 1 if opts.get("b") else (1 << 20 if opts.get("m") else 1024)
    eol = "\0" if opts.get("0") else "\n"

    def show(size: int, name: str) -> None:
        if opts.get("h"):
            text = _human(size)
        elif unit == 1:
            text = str(size)
        else:
            text = str(-(-size // unit))
        ctx.stdout.write(to_bytes(f"{text}\t{name}{eol}"))

    status = 0
    total = 0
    for name in files or ["."]:
        try:
            st = ctx.namespace.stat(ctx.resolve(name))
        except FsError as e:
            ctx.error(f"cannot access '{name}': {strerror(e)}")
            status = 1
            continue
        size = _du_walk(ctx, name, ctx.resolve(name), st, 0, depth_limit, apparent,
                        bool(opts.get("a")), show)
        total += size
    if opts.get("c"):
        show(total, "total")
    return status


def _du_walk(ctx: Ctx, shown: str, path: str, st: Stat, depth: int, limit: int | None,
             apparent: bool, all_files: bool, show: Callable[[int, str], None]) -> int:
    ctx.check()
    own = _apparent(st) if apparent else _blocks(st) * 512
    if not st.is_dir:
        if depth == 0 or (all_files and (limit is None or depth <= limit)):
            show(own, shown)
        return own
    size = own
    for child in sorted(ctx.namespace.listdir(path)):
        cpath = paths.join(path, child)
        try:
            cst = ctx.namespace.stat(cpath)
        except FsError:
            continue
        size += _du_walk(ctx, shown.rstrip("/") + "/" + child if shown != "/" else "/" + child,
                         cpath, cst, depth + 1, limit, apparent, all_files, show)
    if limit is None or depth <= limit:
        show(size, shown)
    return size


_DF_SIZE = 1 << 40  # what df reports: the namespace has no capacity of its own


@command("df", COMMANDS)
def _df(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "hkPTaHil", longs={"human-readable": "h",
                                                   "portability": "P", "print-type": "T",
                                                   "output": "*output", "all": "a"})
    mounts = sorted({m.path for m in getattr(ctx.namespace, "mounts", list)()} | {"/"})
    points: list[str] = []
    status = 0
    for name in files or mounts:
        path = ctx.resolve(name)
        if files and not ctx.namespace.exists(path):
            ctx.error(f"{name}: No such file or directory")
            status = 1
            continue
        point = max((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")),
                    key=len)
        if point not in points:
            points.append(point)
    size = _DF_SIZE // 1024
    head = ("Filesystem", "Size" if opts.get("h") else "1K-blocks", "Used", "Avail",
            "Use%", "Mounted on")
    rows = [head] + [("oanix", _human(_DF_SIZE) if opts.get("h") else str(size), "0",
                      _human(_DF_SIZE) if opts.get("h") else str(size), "0%", p)
                     for p in points]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 5)]
        ctx.stdout.write(to_bytes(" ".join(cells) + " " + r[5] + "\n"))
    return status


# -- ln -------------------------------------------------------------------------------------


@command("ln", COMMANDS)
def _ln(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "sfnvTLPr", "t", longs={"symbolic": "s", "force": "f",
                                                       "no-dereference": "n",
                                                       "target-directory": "t",
                                                       "no-target-directory": "T",
                                                       "relative": "r"})
    kind = "symbolic link" if opts.get("s") else "hard link"
    if not files:
        raise Usage("missing file operand")
    targets = files if "t" in opts else (files[:-1] if len(files) > 1 else files)
    dest = str(opts["t"]) if "t" in opts else (files[-1] if len(files) > 1 else ".")
    ns = ctx.namespace
    dest_path = ctx.resolve(dest)
    into = ns.is_dir(dest_path) and not opts.get("T")
    if len(targets) > 1 and not into:
        ctx.error(f"target '{dest}' is not a directory")
        return 1
    status = 0
    for t in targets:
        link = dest.rstrip("/") + "/" + paths.basename(t.rstrip("/")) if into else dest
        if opts.get("s"):
            ctx.error(f"failed to create {kind} '{link}': symbolic links are not supported "
                      "by the namespace (copy the file, or refer to it by its path)")
            status = 1
            continue
        src = ctx.resolve(t)
        dst = ctx.resolve(link)
        try:
            st = ns.stat(src)
        except FsError as e:
            ctx.error(f"failed to access '{t}': {strerror(e)}")
            status = 1
            continue
        if st.is_dir:
            ctx.error(f"'{t}': hard link not allowed for directory")
            status = 1
            continue
        if ns.exists(dst):
            if src == dst:
                ctx.error(f"'{t}' and '{link}' are the same file")
                status = 1
                continue
            if not opts.get("f"):
                ctx.error(f"failed to create {kind} '{link}': File exists")
                status = 1
                continue
        try:
            _copy_file(ctx, src, dst)  # the namespace has no links: a copy stands in
        except FsError as e:
            ctx.error(f"failed to create {kind} '{link}': {strerror(e)}")
            status = 1
            continue
        if opts.get("v"):
            ctx.stdout.write(to_bytes(f"'{link}' => '{t}'\n"))
    return status


def _copy_file(ctx: Ctx, src: str, dst: str) -> None:
    with ctx.namespace.open(src, "rb") as fin, ctx.namespace.open(dst, "wb") as fout:
        while piece := fin.read(CHUNK):
            ctx.check()
            fout.write(piece)


# -- mktemp ---------------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


@command("mktemp", COMMANDS)
def _mktemp(ctx: Ctx, argv: list[str]) -> int:
    opts, rest = getopts(argv, "duqt", "p", longs={"directory": "d", "dry-run": "u",
                                                   "quiet": "q", "tmpdir": "p",
                                                   "suffix": "*suffix"})
    if len(rest) > 1:
        raise Usage("too many templates")
    template = rest[0] if rest else "tmp.XXXXXXXXXX"
    suffix = str(opts.get("*suffix", "")).split("\0")[-1]
    stem = template[:len(template) - len(suffix)] if suffix and template.endswith(
        suffix) else template
    if not rest:
        opts.setdefault("p", "")
    xs = len(stem) - len(stem.rstrip("X"))
    if xs < 3:
        ctx.error(f"too few X's in template '{template}'")
        return 1
    if "p" in opts or opts.get("t"):
        if "/" in template and (opts.get("t") or not opts.get("p")) and template[0] != "/":
            ctx.error(f"invalid template, '{template}', contains directory separator")
            return 1
        base = str(opts.get("p") or ctx.env.get("TMPDIR") or "/tmp")
        stem = base.rstrip("/") + "/" + stem if stem[0] != "/" else stem
    ns = ctx.namespace
    for _ in range(100):
        ctx.check()
        name = stem[:len(stem) - xs] + "".join(secrets.choice(_ALNUM) for _ in range(xs))
        path = ctx.resolve(name + suffix)
        try:
            if opts.get("u"):
                if ns.exists(path):
                    continue
            elif opts.get("d"):
                ns.mkdir(path)
            else:
                with ns.open(path, "xb"):
                    pass
        except AlreadyExists:
            continue
        except FsError as e:
            if not opts.get("q"):
                ctx.error(f"failed to create {'directory' if opts.get('d') else 'file'} "
                          f"via template '{template}': {strerror(e)}")
            return 1
        shown = name + suffix
        ctx.stdout.write(to_bytes(shown + "\n"))
        return 0
    ctx.error(f"failed to create file via template '{template}': File exists")
    return 1


# -- realpath / readlink --------------------------------------------------------------------


def _canonical(ctx: Ctx, name: str, need: str) -> str:
    """``name`` made absolute and normalised; raises NotFound as ``need`` asks: ``all``
    components must exist, all but the ``last``, or ``none``."""
    path = ctx.resolve(name)
    if need == "none":
        return path
    ns = ctx.namespace
    check = path if need == "all" else paths.dirname(path)
    # every directory on the way must exist (and be a directory), as the kernel walks it
    if need == "last" and not ns.is_dir(check):
        raise NotFound(name)
    if need == "all" and not ns.exists(check):
        raise NotFound(name)
    parts = [p for p in name.split("/") if p]
    if need != "none" and ".." in parts:
        walked = ctx.cwd if not name.startswith("/") else "/"
        for p in parts[:-1]:
            walked = paths.join(walked, p)
            if p != ".." and not ns.is_dir(walked):
                raise NotFound(name)
    return path


def _relative(path: str, base: str) -> str:
    a = [p for p in path.split("/") if p]
    b = [p for p in base.split("/") if p]
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return "/".join([".."] * (len(b) - n) + a[n:]) or "."


@command("realpath readlink", COMMANDS)
def _realpath(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "femsqnzPLv", longs={
        "canonicalize": "f", "canonicalize-existing": "e", "canonicalize-missing": "m",
        "strip": "s", "no-symlinks": "s", "quiet": "q", "silent": "q", "no-newline": "n",
        "zero": "z", "relative-to": "*rel", "relative-base": "*base", "logical": "L",
        "physical": "P", "verbose": "v"})
    if not files:
        raise Usage("missing operand")
    is_readlink = argv[0] == "readlink"
    if is_readlink and not (opts.get("f") or opts.get("e") or opts.get("m")):
        for f in files:  # nothing in the namespace is a symbolic link
            if not opts.get("q") and opts.get("v"):
                ctx.error(f"{f}: Invalid argument")
        return 1
    # -e: every component must exist; -m: none; else all but the last (as GNU does)
    need = "all" if opts.get("e") else ("none" if opts.get("m") else "last")
    rel_to = str(opts.get("*rel", "")).split("\0")[-1]
    eol = "\0" if opts.get("z") else ("" if opts.get("n") else "\n")
    status = 0
    for f in files:
        try:
            out = _canonical(ctx, f, need)
        except FsError as e:
            if not opts.get("q"):
                ctx.error(f"{f}: {strerror(e)}")
            status = 1
            continue
        if rel_to:
            out = _relative(out, ctx.resolve(rel_to))
        ctx.stdout.write(to_bytes(out + eol))
    return status


# -- tee ------------------------------------------------------------------------------------


def _lines(ctx: Ctx) -> Iterator[bytes]:
    """stdin piece by piece (line by line when it streams)."""
    stream = ctx.stdin_stream
    while True:
        ctx.check()
        piece = stream.readline()
        if not piece:
            return
        yield piece


@command("tee", COMMANDS)
def _tee(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "aip", longs={"append": "a", "ignore-interrupts": "i",
                                              "output-error": "*oe"})
    status = 0
    sinks: list[Any] = []
    opened: list[Any] = []
    for f in files:
        if f == "/dev/null":
            continue
        if f == "/dev/stdout":
            sinks.append(ctx.stdout)
            continue
        if f == "/dev/stderr":
            sinks.append(ctx.stderr)
            continue
        try:
            fh = ctx.namespace.open(ctx.resolve(f), "ab" if opts.get("a") else "wb")
        except FsError as e:
            ctx.fs_error(e, f)
            status = 1
            continue
        opened.append(fh)
        sinks.append(fh)
    try:
        buf = bytearray()
        for piece in _lines(ctx):
            buf += piece
            if len(buf) >= CHUNK or piece.endswith(b"\n"):
                _tee_flush(ctx, bytes(buf), sinks)
                buf.clear()
        if buf:
            _tee_flush(ctx, bytes(buf), sinks)
    finally:
        for fh in opened:
            try:
                fh.close()
            except FsError as e:
                ctx.fs_error(e)
                status = 1
    return status


def _tee_flush(ctx: Ctx, data: bytes, sinks: list[Any]) -> None:
    ctx.stdout.write(data)
    for s in sinks:
        s.write(data)


# -- cmp ------------------------------------------------------------------------------------


@command("cmp", COMMANDS)
def _cmp(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "sl", longs={"silent": "s", "quiet": "s", "verbose": "l"})
    if len(files) < 2:
        files = [*files, "-"] if files else []
    if len(files) != 2:
        ctx.error("missing operand after 'cmp'" if not files else "extra operand")
        return 2
    datas: list[bytes] = []
    for f in files:
        try:
            datas.append(ctx.read_file(f))
        except FsError as e:
            ctx.error(f"{f}: {strerror(e)}")
            return 2
    a, b = datas
    if a == b:
        return 0
    if opts.get("s"):
        return 1
    n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    line = a[:n].count(b"\n") + 1
    if n == min(len(a), len(b)):
        short = files[0] if len(a) < len(b) else files[1]
        ctx.error(f"EOF on {short} after byte {n}, line {line}" if n
                  else f"EOF on {short} which is empty")
        return 1
    ctx.stdout.write(to_bytes(f"{files[0]} {files[1]} differ: byte {n + 1}, line {line}\n"))
    return 1


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


@command("chmod chown chgrp sync", COMMANDS)
def _chmod(ctx: Ctx, argv: list[str]) -> int:
    _opts, rest = getopts(argv, "Rfv")
    for f in rest[1:] if argv[0] != "sync" else []:
        if not ctx.namespace.exists(ctx.resolve(f)):
            ctx.error(f"cannot access '{f}': No such file or directory")
            return 1
    return 0


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
    opts, files = getopts(argv, "acm", "dtr", longs={"no-create": "c", "date": "d",
                                                      "reference": "r"})
    ns = ctx.namespace
    if any(k in opts for k in "dtr"):  # said, not silently dropped
        ctx.error("a file's times cannot be set in the namespace: they become the "
                  "current time")

    def touch(path: str) -> None:
        if ns.exists(path):
            ns.open(path, "ab").close()
        elif not opts.get("c"):
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
        # `cp -r dir/. dest`: the last name is ".", so the contents go into dest itself
        dot = verb == "copy" and (s == "." or s.rstrip("/").endswith("/."))
        if dst_st is not None and dst_st.is_dir and not dot:
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
            raise Usage(f"missing argument to '{a}'")
        v = args.pop(0)
        if a == "-maxdepth":
            maxdepth = int_arg(ctx, v)
        elif a == "-mindepth":
            mindepth = int_arg(ctx, v)
        elif a in ("-name", "-iname", "-type", "-path", "-wholename"):
            tests.append((("!" if negate else "") + a, v))
        else:
            raise Usage(f"unknown predicate '{a}'")
        negate = False
    status = 0
    for root in roots or ["."]:
        st = stat_or_none(ctx, root)
        if st is None:
            ctx.error(f"'{root}': No such file or directory")
            status = 1
            continue
        delete = any(t == "-delete" for t, _ in tests)
        found = list(find_walk(ctx, root, st, 0, maxdepth))
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


def find_walk(ctx: Ctx, shown: str, st: Stat, depth: int,
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
