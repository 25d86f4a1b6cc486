"""Archives and compression: ``tar`` (c/x/t with gzip, bzip2, xz), ``gzip``/``gunzip``/
``zcat`` and ``zip``/``unzip``, over the namespace.

Extraction never leaves its target directory: leading ``/`` is stripped and members
whose path holds ``..`` are skipped, as GNU tar does. The namespace has no links:
a hard link is extracted as a copy, a symbolic link as a copy of what it points to
inside the archive (skipped with a warning otherwise). Files are stored with mode 0644,
directories 0755 (the namespace keeps no modes).
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO

from ... import paths
from ...errors import FsError
from ..context import Ctx, strerror
from ..patterns import glob_regex
from ..table import COMMANDS, command, getopts
from ._util import CHUNK, Usage, chunks

__all__: list[str] = []


# -- gzip -----------------------------------------------------------------------------------


def _gzip_stream(ctx: Ctx, pieces: Iterator[bytes], write: Callable[[bytes], object],
                 level: int, name: str = "", mtime: int = 0) -> None:
    """gzip ``pieces`` into ``write`` as one member (with ``name`` and ``mtime``)."""
    flags = 0x08 if name else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + mtime.to_bytes(4, "little") + bytes(
        [2 if level == 9 else (4 if level == 1 else 0), 3])
    if name:
        header += name.encode("latin-1", "replace") + b"\0"
    write(header)
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    crc = 0
    size = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
        size += len(piece)
        out = comp.compress(piece)
        if out:
            write(out)
    write(comp.flush() + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))


class NotGzip(Exception):
    """The input is not (entirely) in gzip format."""


def _gunzip_stream(ctx: Ctx, pieces: Iterator[bytes], write: Callable[[bytes], object]
                   ) -> None:
    """Decompress concatenated gzip members; raises NotGzip (after writing what was good).
    Bytes after the last member that are not gzip are ignored, as gzip does."""
    dec = zlib.decompressobj(31)
    started = False  # inside a member
    members = 0
    for piece in pieces:
        while piece:
            if not started:
                if not piece.startswith(b"\x1f\x8b"[:len(piece)]):
                    if members:
                        return
                    raise NotGzip("not in gzip format")
                started = True
            try:
                write(dec.decompress(piece))
            except zlib.error as e:
                raise NotGzip(f"invalid compressed data--{e}") from None
            if dec.eof:
                members += 1
                piece = dec.unused_data
                dec = zlib.decompressobj(31)
                started = False
            else:
                piece = b""
    if started or not members:
        raise NotGzip("unexpected end of file")


_GZ_SUFFIXES = (".gz", ".tgz", ".z", "-gz", "-z", "_z", ".taz")


@command("gzip gunzip zcat", COMMANDS)
def _gzip(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "cdfkqnNrtlv123456789", "S", longs={
        "stdout": "c", "to-stdout": "c", "decompress": "d", "uncompress": "d",
        "force": "f", "keep": "k", "quiet": "q", "no-name": "n", "name": "N",
        "test": "t", "suffix": "S", "fast": "1", "best": "9"})
    decompress = bool(opts.get("d") or opts.get("t")) or argv[0] in ("gunzip", "zcat")
    to_stdout = bool(opts.get("c")) or argv[0] == "zcat" or bool(opts.get("t"))
    level = next((int(c) for c in "123456789" if opts.get(c)), 6)
    suffix = str(opts.get("S", ".gz"))
    if opts.get("l"):
        return _gzip_list(ctx, files or ["-"])
    status = 0
    for name in files or ["-"]:
        ctx.check()
        if name == "-":
            out = ctx.stdout.write if not opts.get("t") else (lambda b: len(b))
            try:
                if decompress:
                    _gunzip_stream(ctx, chunks(ctx, "-"), out)
                else:
                    _gzip_stream(ctx, chunks(ctx, "-"), out, level)
            except NotGzip as e:
                ctx.error(f"stdin: {e}")
                status = 1
            continue
        status = max(status, _gzip_file(ctx, name, decompress, to_stdout, level, suffix,
                                        opts))
    return status


def _gzip_list(ctx: Ctx, files: list[str]) -> int:
    """``gzip -l``: sizes and ratio per file (the ratio counts the deflate data only)."""
    rows = ["         compressed        uncompressed  ratio uncompressed_name"]
    status = 0
    for name in files:
        try:
            data = ctx.read_file(name)
        except FsError as e:
            ctx.error(f"{name}: {strerror(e)}")
            status = 1
            continue
        if len(data) < 18 or not data.startswith(b"\x1f\x8b"):
            ctx.error(f"{name}: not in gzip format")
            status = 1
            continue
        size = int.from_bytes(data[-4:], "little")
        head = 10
        flags = data[3]
        if flags & 0x04:
            head += 2 + int.from_bytes(data[10:12], "little")
        for bit in (0x08, 0x10):
            if flags & bit:
                head = data.index(b"\0", head) + 1
        if flags & 0x02:
            head += 2
        packed = len(data) - head - 8
        ratio = (size - packed) / size * 100 if size else 0.0
        shown = "stdout" if name == "-" else next(
            (name[:-len(s)] for s in _GZ_SUFFIXES if name.endswith(s)), name)
        rows.append(f"{len(data):>19} {size:>19} {ratio:5.1f}% {shown}")
    ctx.stdout.write(("\n".join(rows) + "\n").encode("utf-8", "surrogateescape"))
    return status


def _gzip_file(ctx: Ctx, name: str, decompress: bool, to_stdout: bool, level: int,
               suffix: str, opts: dict[str, str | bool]) -> int:
    ns = ctx.namespace
    src = ctx.resolve(name)
    try:
        st = ns.stat(src)
    except FsError as e:
        ctx.error(f"{name}: {strerror(e)}")
        return 1
    if st.is_dir:
        ctx.error(f"{name} is a directory -- ignored")
        return 2
    if decompress:
        target = next((name[:-len(s)] + (".tar" if s in (".tgz", ".taz") else "")
                       for s in (suffix, *_GZ_SUFFIXES) if name.lower().endswith(s)), None)
        if target is None and not to_stdout:
            ctx.error(f"{name}: unknown suffix -- ignored")
            return 2
    else:
        if name.endswith(suffix) and not to_stdout and not opts.get("f"):
            ctx.error(f"{name} already has {suffix} suffix -- unchanged")
            return 2
        target = name + suffix
    if to_stdout:
        write: Callable[[bytes], object] = ((lambda b: len(b)) if opts.get("t")
                                            else ctx.stdout.write)
        try:
            if decompress:
                _gunzip_stream(ctx, chunks(ctx, name), write)
            else:
                _gzip_stream(ctx, chunks(ctx, name), write, level,
                             "" if opts.get("n") else paths.basename(name), int(st.mtime))
        except NotGzip as e:
            ctx.error(f"{name}: {e}")
            return 1
        except FsError as e:
            ctx.error(f"{name}: {strerror(e)}")
            return 1
        return 0
    assert target is not None
    dst = ctx.resolve(target)
    if ns.exists(dst) and not opts.get("f"):
        ctx.error(f"{target} already exists; not overwritten")
        return 2
    try:
        with ns.open(dst, "wb") as f:
            if decompress:
                _gunzip_stream(ctx, chunks(ctx, name), f.write)
            else:
                _gzip_stream(ctx, chunks(ctx, name), f.write, level,
                             "" if opts.get("n") else paths.basename(name), int(st.mtime))
    except NotGzip as e:
        ns.remove(dst)
        ctx.error(f"{name}: {e}")
        return 1
    except FsError as e:
        ctx.error(f"{target}: {strerror(e)}")
        return 1
    if not opts.get("k"):
        ns.remove(src)
    return 0


# -- tar ------------------------------------------------------------------------------------

_TAR_LONGS = {"create": "c", "extract": "x", "get": "x", "list": "t", "file": "f",
              "gzip": "z", "gunzip": "z", "ungzip": "z", "bzip2": "j", "xz": "J",
              "verbose": "v", "directory": "C", "to-stdout": "O", "auto-compress": "a",
              "exclude": "*exclude", "strip-components": "*strip", "no-same-owner": "",
              "no-same-permissions": "", "same-permissions": "", "preserve-permissions": "",
              "overwrite": "", "numeric-owner": "", "owner": "*owner", "group": "*group",
              "mode": "*mode", "mtime": "*mtime", "sort": "*sort", "wildcards": "",
              "keep-old-files": "k", "skip-old-files": "", "append": "r",
              "no-overwrite-dir": "", "warning": "*warning", "totals": "",
              "dereference": "h", "gnu": "", "posix": "", "format": "*format"}


def _tar_argv(argv: list[str]) -> list[str]:
    """``tar xzf a.tgz`` (old style, first argument without a dash) as ``tar -xzf``."""
    if len(argv) > 1 and argv[1] and not argv[1].startswith("-"):
        return [argv[0], "-" + argv[1], *argv[2:]]
    return argv


def _compression(opts: dict[str, str | bool], name: str | None) -> str:
    if opts.get("z"):
        return "gz"
    if opts.get("j"):
        return "bz2"
    if opts.get("J"):
        return "xz"
    if opts.get("a") and name:
        for suf, kind in ((".tgz", "gz"), (".gz", "gz"), (".bz2", "bz2"), (".tbz2", "bz2"),
                          (".xz", "xz"), (".txz", "xz")):
            if name.endswith(suf):
                return kind
    return ""


@command("tar", COMMANDS)
def _tar(ctx: Ctx, argv: list[str]) -> int:
    opts, operands = getopts(_tar_argv(argv), "cxtrzjJvOakhpPomsSwBUW", "fCT",
                             longs=_TAR_LONGS)
    modes = [m for m in "cxtr" if opts.get(m)]
    if len(modes) != 1:
        raise Usage("You must specify one of the '-Acdtrux', '--delete' or '--test-label' "
                    "options" if not modes else "You may not specify more than one "
                    "'-Acdtrux', '--delete' or  '--test-label' option")
    archive = str(opts.get("f", "-"))
    base = str(opts.get("C", "."))
    excludes = [glob_regex([(p, False)]) for p in str(opts.get("*exclude", "")).split("\0")
                if p]
    try:
        strip = int(str(opts.get("*strip", "\0")).split("\0")[-1] or 0)
    except ValueError:
        raise Usage("invalid --strip-components value") from None
    if modes[0] == "r":
        ctx.error("-r (append) is not supported: create the archive again with -c")
        return 2
    if modes[0] == "c":
        if not operands:
            ctx.error("Cowardly refusing to create an empty archive")
            return 2
        return _tar_create(ctx, archive, base, operands, _compression(opts, archive),
                           excludes, bool(opts.get("v")))
    return _tar_read(ctx, archive, base, operands, modes[0] == "x", bool(opts.get("v")),
                     bool(opts.get("O")), excludes, strip, bool(opts.get("k")))


def _excluded(name: str, excludes: list[str]) -> bool:
    parts = name.rstrip("/").split("/")
    return any(re.fullmatch(rx, name.rstrip("/")) or re.fullmatch(rx, parts[-1])
               for rx in excludes)


def _tar_create(ctx: Ctx, archive: str, base: str, operands: list[str], comp: str,
                excludes: list[str], verbose: bool) -> int:
    ns = ctx.namespace
    buf: BinaryIO
    to_stdout = archive == "-"
    status = 0
    if to_stdout:
        buf = io.BytesIO()
    else:
        try:
            buf = ns.open(ctx.resolve(archive), "wb")
        except FsError as e:
            ctx.error(f"{archive}: Cannot open: {strerror(e)}")
            return 2
    try:
        mode: Any = "w|" + comp
        with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tf:
            root = ctx.resolve(base)
            for op in operands:
                name = op.lstrip("/") or "."
                if name != op:
                    ctx.error("Removing leading `/' from member names")
                src = paths.join(root, op) if not op.startswith("/") else paths.normalize(op)
                try:
                    st = ns.stat(src)
                except FsError as e:
                    ctx.error(f"{op}: Cannot stat: {strerror(e)}")
                    status = 2
                    continue
                for member, path, mst in _walk(ns, name, src, st):
                    ctx.check()
                    if _excluded(member, excludes):
                        continue
                    info = tarfile.TarInfo(member)
                    info.mtime = int(mst.mtime or time.time())
                    info.uname = info.gname = "root"
                    if verbose:
                        ctx.stderr.write((member + ("/" if mst.is_dir else "") + "\n")
                                         .encode())
                    if mst.is_dir:
                        info.type = tarfile.DIRTYPE
                        info.mode = 0o755
                        tf.addfile(info)
                        continue
                    info.mode = 0o644
                    try:
                        with ns.open(path, "rb") as f:
                            info.size = mst.size
                            tf.addfile(info, _Exact(f, mst.size))
                    except FsError as e:
                        ctx.error(f"{member}: Cannot open: {strerror(e)}")
                        status = 2
    finally:
        if not to_stdout:
            buf.close()
    if to_stdout:
        assert isinstance(buf, io.BytesIO)
        ctx.stdout.write(buf.getvalue())
    return status


class _Exact(io.RawIOBase):
    """A file read as exactly ``size`` bytes (padded with zeros if it shrank)."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f = f
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        want = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(want)[:want]
        if len(data) < want:
            data += b"\0" * (want - len(data))
        self.left -= len(data)
        return data


def _walk(ns: Any, name: str, path: str, st: Any) -> Iterator[tuple[str, str, Any]]:
    """(member name, namespace path, Stat) for ``path`` and, if a directory, below it."""
    yield name, path, st
    if st.is_dir:
        for child in sorted(ns.listdir(path)):
            cpath = paths.join(path, child)
            try:
                cst = ns.stat(cpath)
            except FsError:
                continue
            yield from _walk(ns, name.rstrip("/") + "/" + child if name != "." else child,
                             cpath, cst)


def _safe_member(name: str, strip: int) -> str | None:
    """The relative path a member extracts to, or None if it must be skipped."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    parts = parts[strip:]
    return "/".join(parts) if parts else None


def _open_archive(ctx: Ctx, archive: str) -> BinaryIO:
    """The archive's bytes, decompressed if they are gzip, bzip2 or xz."""
    data = ctx.read_file(archive)
    if data.startswith(b"\x1f\x8b"):
        out = io.BytesIO()
        _gunzip_stream(ctx, iter([data]), out.write)
        data = out.getvalue()
    elif data.startswith(b"BZh"):
        data = bz2.decompress(data)
    elif data.startswith(b"\xfd7zXZ\0"):
        data = lzma.decompress(data)
    return io.BytesIO(data)


def _tar_read(ctx: Ctx, archive: str, base: str, members: list[str], extract: bool,
              verbose: bool, to_stdout: bool, excludes: list[str], strip: int,
              keep_old: bool) -> int:
    ns = ctx.namespace
    try:
        tf = tarfile.open(fileobj=_open_archive(ctx, archive), mode="r:")  # noqa: SIM115
    except FsError as e:
        ctx.error(f"{archive}: Cannot open: {strerror(e)}")
        return 2
    except (tarfile.TarError, NotGzip, OSError, EOFError, lzma.LZMAError) as e:
        ctx.error(f"This does not look like a tar archive ({e})")
        return 2
    root = ctx.resolve(base)
    status = 0
    wanted = [m.rstrip("/") for m in members]
    found = set()
    links: list[tuple[str, str]] = []
    with tf:
        for info in tf:
            ctx.check()
            name = info.name
            if wanted:
                hit = next((w for w in wanted if name.rstrip("/") == w
                            or name.startswith(w + "/")), None)
                if hit is None:
                    continue
                found.add(hit)
            if _excluded(name, excludes):
                continue
            if not extract:
                ctx.stdout.write((_tar_listing(info) if verbose else
                                  name + ("/" if info.isdir() and not name.endswith("/")
                                          else "")).encode("utf-8", "surrogateescape")
                                 + b"\n")
                continue
            rel = _safe_member(name, strip)
            if rel is None:
                if ".." in name.split("/"):
                    ctx.error(f"{name}: Member name contains '..'")
                    status = 2
                continue
            if name.startswith("/"):
                ctx.error("Removing leading `/' from member names")
            if verbose:
                ctx.stdout.write((name + "\n").encode("utf-8", "surrogateescape"))
            dst = paths.join(root, rel)
            try:
                if to_stdout:
                    if info.isfile():
                        f = tf.extractfile(info)
                        if f is not None:
                            ctx.stdout.write(f.read())
                    continue
                if info.isdir():
                    ns.makedirs(dst, exist_ok=True)
                    continue
                ns.makedirs(paths.dirname(dst), exist_ok=True)
                if keep_old and ns.exists(dst):
                    ctx.error(f"{rel}: Cannot open: File exists")
                    status = 2
                    continue
                if info.issym() or info.islnk():
                    target = info.linkname
                    if info.issym():
                        target = paths.join(paths.dirname(rel), target)
                    links.append((dst, target))
                    continue
                if not info.isfile():
                    ctx.error(f"{name}: special files are not supported; skipped")
                    continue
                src = tf.extractfile(info)
                assert src is not None
                with ns.open(dst, "wb") as out:
                    while piece := src.read(CHUNK):
                        ctx.check()
                        out.write(piece)
            except FsError as e:
                ctx.error(f"{rel}: Cannot open: {strerror(e)}")
                status = 2
    for dst, target in links:
        rel_target = _safe_member(target, 0)
        link_src = paths.join(root, rel_target) if rel_target else None
        try:
            if link_src is None or not ns.is_file(link_src):
                raise FileNotFoundError(target)
            ns.write_bytes(dst, ns.read_bytes(link_src))
        except (FsError, FileNotFoundError):
            ctx.error(f"{dst}: links are not supported and the target {target!r} is not "
                      "a file in the archive; skipped")
            status = 2
    for w in wanted:
        if w not in found:
            ctx.error(f"{w}: Not found in archive")
            status = 2
    if status == 2 and wanted and found != set(wanted):
        ctx.error("Exiting with failure status due to previous errors")
    return status


def _tar_listing(info: tarfile.TarInfo) -> str:
    kind = "d" if info.isdir() else ("l" if info.issym() else ("h" if info.islnk() else "-"))
    perms = "".join(c if info.mode & (1 << (8 - i)) else "-"
                    for i, c in enumerate("rwxrwxrwx"))
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.mtime))
    owner = f"{info.uname or info.uid}/{info.gname or info.gid}"
    name = info.name + (f" -> {info.linkname}" if info.issym() else (
        f" link to {info.linkname}" if info.islnk() else ""))
    return f"{kind}{perms} {owner} {info.size:>{max(0, 19 - len(owner))}} {when} {name}"


# -- zip ------------------------------------------------------------------------------------


@command("zip", COMMANDS)
def _zip(ctx: Ctx, argv: list[str]) -> int:
    opts, rest = getopts(argv, "rqjvmD0123456789", "x", longs={"recurse-paths": "r",
                                                              "quiet": "q",
                                                              "junk-paths": "j"})
    if not rest:
        raise Usage("nothing to do!")
    archive, *operands = rest
    if "." not in paths.basename(archive):
        archive += ".zip"
    ns = ctx.namespace
    dst = ctx.resolve(archive)
    level = next((int(c) for c in "0123456789" if opts.get(c)), 6)
    excludes = [glob_regex([(p, False)]) for p in str(opts.get("x", "")).split("\0") if p]
    status = 0
    entries: dict[str, tuple[zipfile.ZipInfo, bytes]] = {}
    for op in operands:
        src = ctx.resolve(op)
        try:
            st = ns.stat(src)
        except FsError:
            ctx.error(f"warning: name not matched: {op}")
            status = 12
            continue
        items = _walk(ns, op.lstrip("/"), src, st) if opts.get("r") else iter(
            [(op.lstrip("/"), src, st)])
        for member, path, mst in items:
            ctx.check()
            if opts.get("j"):
                if mst.is_dir:
                    continue
                member = paths.basename(member)
            if any(re.fullmatch(rx, member) for rx in excludes):
                continue
            arcname = member + "/" if mst.is_dir else member
            info = zipfile.ZipInfo(arcname, time.gmtime(max(mst.mtime, 315532800))[:6])
            info.external_attr = (0o40755 << 16 | 0x10) if mst.is_dir else 0o100644 << 16
            info.compress_type = (zipfile.ZIP_STORED if mst.is_dir or level == 0
                                  else zipfile.ZIP_DEFLATED)
            entries[arcname] = (info, b"" if mst.is_dir else ns.read_bytes(path))
    if not entries:
        ctx.error("zip error: Nothing to do! (" + archive + ")")
        return 12
    old: list[tuple[zipfile.ZipInfo, bytes]] = []
    if ns.is_file(dst):
        with zipfile.ZipFile(io.BytesIO(ns.read_bytes(dst))) as zold:
            old = [(i, zold.read(i)) for i in zold.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compresslevel=level or None) as zf:
        for info, data in old:  # members not given again stay as they were
            if info.filename not in entries:
                zf.writestr(info, data)
        for arcname, (info, data) in entries.items():
            zf.writestr(info, data)
            if not opts.get("q"):
                verb = "updating" if any(i.filename == arcname for i, _ in old) else "  adding"
                how = ("stored 0%" if info.compress_type == zipfile.ZIP_STORED or not data
                       else "deflated")
                ctx.stdout.write(f"{verb}: {arcname} ({how})\n".encode())
    ns.write_bytes(dst, buf.getvalue())
    return status


@command("unzip", COMMANDS)
def _unzip(ctx: Ctx, argv: list[str]) -> int:
    opts, rest = getopts(argv, "lqoncjpvtZ1", "dx", longs={})
    quiet = bool(opts.get("q"))
    if not rest:
        raise Usage("no archive given")
    archive, *members = rest
    ns = ctx.namespace
    try:
        data = ctx.read_file(archive)
    except FsError:
        try:
            data = ctx.read_file(archive + ".zip")
        except FsError:
            ctx.error(f"cannot find or open {archive}, {archive}.zip or {archive}.ZIP.")
            return 9
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        ctx.error(f"cannot find zipfile directory in {archive}")
        return 9
    target = ctx.resolve(str(opts.get("d", ".")))
    status = 0
    with zf:
        infos = [i for i in zf.infolist() if not members or any(
            re.fullmatch(glob_regex([(m, False)]), i.filename) for m in members)]
        if opts.get("Z") and opts.get("1"):  # zipinfo -1: the names only
            ctx.stdout.write("".join(i.filename + "\n" for i in infos).encode())
            return 0
        if opts.get("l"):
            _unzip_list(ctx, archive, infos)
            return 0
        if opts.get("t"):
            bad = zf.testzip()
            ctx.stdout.write(f"No errors detected in compressed data of {archive}.\n"
                             .encode() if bad is None else f"error in {bad}\n".encode())
            return 0 if bad is None else 2
        if not quiet and not opts.get("p"):
            ctx.stdout.write(f"Archive:  {archive}\n".encode())
        for info in infos:
            ctx.check()
            rel = _safe_member(info.filename, 0)
            if rel is None:
                ctx.error(f"skipping: {info.filename} (a path outside the target)")
                status = 1
                continue
            if opts.get("j"):
                if info.is_dir():
                    continue
                rel = paths.basename(rel)
            if opts.get("p"):
                if not info.is_dir():
                    ctx.stdout.write(zf.read(info))
                continue
            dst = paths.join(target, rel)
            try:
                if info.is_dir():
                    ns.makedirs(dst, exist_ok=True)
                    if not quiet:
                        ctx.stdout.write(f"   creating: {rel}/\n".encode())
                    continue
                if ns.exists(dst) and not opts.get("o"):
                    if opts.get("n"):
                        continue
                    ctx.error(f"{rel} exists: use -o to overwrite (no prompt here)")
                    status = 1
                    continue
                ns.makedirs(paths.dirname(dst), exist_ok=True)
                with zf.open(info) as src, ns.open(dst, "wb") as out:
                    while piece := src.read(CHUNK):
                        out.write(piece)
                if not quiet:
                    verb = "inflating" if info.compress_type else "extracting"
                    ctx.stdout.write(f"  {verb}: {rel}\n".encode())
            except FsError as e:
                ctx.error(f"{rel}: {strerror(e)}")
                status = 1
    return status


def _unzip_list(ctx: Ctx, archive: str, infos: list[zipfile.ZipInfo]) -> None:
    lines = [f"Archive:  {archive}", "  Length      Date    Time    Name",
             "---------  ---------- -----   ----"]
    total = 0
    for i in infos:
        y, mo, d, h, mi, _ = i.date_time
        lines.append(f"{i.file_size:>9}  {mo:02d}-{d:02d}-{y:04d} {h:02d}:{mi:02d}   "
                     f"{i.filename}")
        total += i.file_size
    n = len(infos)
    lines += ["---------                     -------",
              f"{total:>9}                     {n} file{'s' if n != 1 else ''}"]
    ctx.stdout.write(("\n".join(lines) + "\n").encode())
