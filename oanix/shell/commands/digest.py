"""Checksums and encodings: ``md5sum``/``sha1sum``/``sha224sum``/``sha256sum``/``sha384sum``/
``sha512sum`` (with ``-c``) and ``base64``, each reading its input in chunks."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re

from ...errors import FsError
from ..context import Ctx, strerror
from ..table import COMMANDS, command, getopts
from ._util import Usage, chunks, to_bytes

__all__: list[str] = []

_LONGS = {"check": "c", "quiet": "Q", "status": "S", "strict": "T", "warn": "w",
          "tag": "G", "binary": "b", "text": "t", "ignore-missing": "I", "zero": "z"}
_TAG_NAMES = {"md5": "MD5", "sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256",
              "sha384": "SHA384", "sha512": "SHA512"}


def _digest(ctx: Ctx, algo: str, name: str) -> str:
    """The hex digest of file ``name``; raises FsError."""
    h = hashlib.new(algo)
    for piece in chunks(ctx, name):
        h.update(piece)
    return h.hexdigest()


def _escape(name: str) -> tuple[str, str]:
    """GNU's escaping of a file name in a checksum line: (prefix, escaped name)."""
    if "\\" not in name and "\n" not in name:
        return "", name
    return "\\", name.replace("\\", "\\\\").replace("\n", "\\n")


@command("md5sum sha1sum sha224sum sha256sum sha384sum sha512sum", COMMANDS)
def _sum(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "cbtwzQSTGI", longs=_LONGS)
    algo = argv[0][:-3]
    if opts.get("c"):
        return _check(ctx, algo, files, opts)
    status = 0
    for name in files or ["-"]:
        try:
            digest = _digest(ctx, algo, name)
        except FsError as e:
            ctx.error(f"{name}: {strerror(e)}")
            status = 1
            continue
        prefix, shown = _escape(name)
        if opts.get("G"):
            line = f"{prefix}{_TAG_NAMES[algo]} ({shown}) = {digest}\n"
        else:
            line = f"{prefix}{digest} {'*' if opts.get('b') else ' '}{shown}\n"
        ctx.stdout.write(to_bytes(line))
    return status


_LINE = re.compile(r"(\\?)([0-9a-fA-F]+) [ *](.+)")
_TAG_LINE = re.compile(r"(\\?)(\w+) \((.+)\) = ([0-9a-fA-F]+)")


def _parse_line(line: str, algo: str) -> tuple[str, str] | None:
    """(expected digest, file name) of a checksum line, or None if malformed."""
    size = hashlib.new(algo).digest_size * 2
    m = _TAG_LINE.fullmatch(line)
    if m is not None and m.group(2) == _TAG_NAMES[algo]:
        esc, name, digest = m.group(1), m.group(3), m.group(4)
    else:
        m = _LINE.fullmatch(line)
        if m is None:
            return None
        esc, digest, name = m.group(1), m.group(2), m.group(3)
    if len(digest) != size:
        return None
    if esc:
        name = re.sub(r"\\(.)", lambda c: "\n" if c.group(1) == "n" else c.group(1), name)
    return digest.lower(), name


def _check(ctx: Ctx, algo: str, files: list[str], opts: dict[str, str | bool]) -> int:
    status = 0
    quiet, silent = bool(opts.get("Q")), bool(opts.get("S"))
    for listing in files or ["-"]:
        try:
            data = ctx.read_file(listing)
        except FsError as e:
            ctx.error(f"{listing}: {strerror(e)}")
            status = 1
            continue
        bad_format = unreadable = mismatched = good = 0
        for lineno, raw in enumerate(data.decode("utf-8", "surrogateescape").splitlines(), 1):
            ctx.check()
            parsed = _parse_line(raw.rstrip("\r"), algo)
            if parsed is None:
                bad_format += 1
                if opts.get("w"):
                    ctx.error(f"{listing}: {lineno}: improperly formatted "
                              f"{_TAG_NAMES[algo]} checksum line")
                continue
            good += 1
            expected, name = parsed
            try:
                actual = _digest(ctx, algo, name)
            except FsError as e:
                if opts.get("I") and isinstance(e, FileNotFoundError):
                    continue
                ctx.error(f"{name}: {strerror(e)}")
                unreadable += 1
                if not silent:
                    ctx.stdout.write(to_bytes(f"{name}: FAILED open or read\n"))
                continue
            if actual != expected:
                mismatched += 1
                if not silent:
                    ctx.stdout.write(to_bytes(f"{name}: FAILED\n"))
            elif not (quiet or silent):
                ctx.stdout.write(to_bytes(f"{name}: OK\n"))
        shown = "'standard input'" if listing == "-" else listing
        if not good:
            ctx.error(f"{shown}: no properly formatted checksum lines found")
            status = 1
            continue
        if not silent:
            for n, what in ((bad_format, "line is improperly formatted"),
                            (unreadable, "listed file could not be read"),
                            (mismatched, "computed checksum did NOT match")):
                if n:
                    plural = what.replace("line is", "lines are").replace(
                        "file could", "files could").replace("checksum did", "checksums did")
                    ctx.error(f"WARNING: {n} {what if n == 1 else plural}")
        if unreadable or mismatched or (bad_format and opts.get("T")):
            status = 1
    return status


# -- base64 -----------------------------------------------------------------------------------

_B64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/=]")
_ENC_CHUNK = 3 * 256 * 1024  # a multiple of 3: pieces encode without padding in between


@command("base64", COMMANDS)
def _base64(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "di", "w", longs={"decode": "d", "ignore-garbage": "i",
                                                   "wrap": "w"})
    if len(files) > 1:
        raise Usage(f"extra operand '{files[1]}'")
    name = files[0] if files else "-"
    try:
        width = int(str(opts.get("w", 76)))
    except ValueError:
        raise Usage(f"invalid wrap size: '{opts['w']}'") from None
    try:
        if opts.get("d"):
            return _decode(ctx, name, bool(opts.get("i")))
        _encode(ctx, name, width)
    except FsError as e:
        ctx.error(f"{name}: {strerror(e)}")
        return 1
    return 0


def _encode(ctx: Ctx, name: str, width: int) -> None:
    column = 0
    carry = b""
    for piece in chunks(ctx, name, _ENC_CHUNK):
        piece = carry + piece
        cut = len(piece) - len(piece) % 3
        carry = piece[cut:]
        column = _emit(ctx, base64.b64encode(piece[:cut]), width, column)
    column = _emit(ctx, base64.b64encode(carry), width, column)
    if width > 0 and column:
        ctx.stdout.write(b"\n")


def _emit(ctx: Ctx, enc: bytes, width: int, column: int) -> int:
    """Write ``enc`` wrapped at ``width`` starting at ``column``; the column after it."""
    if width <= 0:
        ctx.stdout.write(enc)
        return column
    out = bytearray()
    i = 0
    while i < len(enc):
        take = width - column
        out += enc[i:i + take]
        got = min(take, len(enc) - i)
        i += got
        column += got
        if column == width:
            out += b"\n"
            column = 0
    ctx.stdout.write(bytes(out))
    return column


def _decode(ctx: Ctx, name: str, ignore_garbage: bool) -> int:
    pending = b""
    for piece in chunks(ctx, name):
        piece = b"".join(piece.split())
        if ignore_garbage:
            piece = _B64_ALPHABET.sub(b"", piece)
        pending += piece
        cut = len(pending) - len(pending) % 4
        block, pending = pending[:cut], pending[cut:]
        if not _decode_block(ctx, block):
            return 1
    if pending:  # unpadded input: decode what it holds, and say it is invalid
        if len(pending) % 4 != 1 and _B64_ALPHABET.search(pending) is None:
            with contextlib.suppress(binascii.Error, ValueError):
                ctx.stdout.write(base64.b64decode(pending + b"=" * (-len(pending) % 4)))
        ctx.error("invalid input")
        return 1
    return 0


def _decode_block(ctx: Ctx, block: bytes) -> bool:
    """Decode whole quanta; report ``invalid input`` (after the valid prefix) on error."""
    try:
        ctx.stdout.write(base64.b64decode(block, validate=True))
        return True
    except (binascii.Error, ValueError):
        pass
    bad = _B64_ALPHABET.search(block)
    prefix = block[:bad.start() if bad else len(block)].split(b"=")[0]
    if len(prefix) % 4 == 1:  # a lone sextet decodes to nothing
        prefix = prefix[:-1]
    with contextlib.suppress(binascii.Error, ValueError):
        ctx.stdout.write(base64.b64decode(prefix + b"=" * (-len(prefix) % 4)))
    ctx.error("invalid input")
    return False
