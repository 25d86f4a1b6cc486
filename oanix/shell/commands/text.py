"""Text utilities: ``echo``, ``printf``, ``cat``, ``head``, ``tail``, ``wc``, ``xargs``,
``tr``, ``cut``, ``tac``/``rev``, ``paste``, ``seq`` (``-f``/``-s``/``-w``), ``date``
(``-d``, ``-u``, ``-r``, ``-I``, ``-R``, ``+FORMAT``) and ``file`` (the common types).
"""

from __future__ import annotations

import codecs
import datetime as dt
import itertools
import json
import random
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...errors import FsError
from ..context import Ctx, Input, strerror
from ..patterns import UTF8_CONTINUATION
from ..table import COMMANDS, Usage, command, getopts
from ._util import (
    file_inputs,
    input_streams,
    read_input,
    split_lines,
    text,
    to_bytes,
)

__all__: list[str] = []


# -- paste ----------------------------------------------------------------------------------


def _delimiters(spec: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(spec):
        c = spec[i]
        if c == "\\" and i + 1 < len(spec):
            e = spec[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", "0": ""}.get(e, e))
            i += 2
            continue
        out.append(c)
        i += 1
    return out or [""]


@command("paste", COMMANDS)
def _paste(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "sz", "d", longs={"serial": "s", "delimiters": "d",
                                                  "zero-terminated": "z"})
    delims = _delimiters(str(opts.get("d", "\t")))
    eol = "\0" if opts.get("z") else "\n"
    columns: list[list[str]] = []
    stdin_lines: list[str] | None = None
    stdin_users = sum(1 for f in files or ["-"] if f == "-")
    stdin_index = 0
    status = 0
    for name in files or ["-"]:
        if name == "-":
            if stdin_lines is None:
                stdin_lines = _split_lines(text(ctx.stdin), eol)
            # several "-" operands take the lines of stdin in turn
            columns.append(stdin_lines[stdin_index::stdin_users]
                           if not opts.get("s") else (stdin_lines if stdin_index == 0
                                                      else []))
            stdin_index += 1
            continue
        data = read_input(ctx, name)
        if data is None:
            return 1
        columns.append(_split_lines(text(data), eol))
    out: list[str] = []
    if opts.get("s"):
        for col in columns:
            ctx.check()
            out.append(_join_cycling(col, delims) + eol)
    else:
        rows = max((len(c) for c in columns), default=0)
        for r in range(rows):
            ctx.check()
            out.append(_join_cycling([c[r] if r < len(c) else "" for c in columns],
                                     delims) + eol)
    ctx.stdout.write(to_bytes("".join(out)))
    return status


def _split_lines(s: str, eol: str) -> list[str]:
    lines = s.split(eol)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _join_cycling(items: list[str], delims: list[str]) -> str:
    out: list[str] = []
    for i, item in enumerate(items):
        if i:
            out.append(delims[(i - 1) % len(delims)])
        out.append(item)
    return "".join(out)


# -- seq ------------------------------------------------------------------------------------

_SEQ_FMT = re.compile(r"%[-+ #0']*\d*(?:\.\d*)?[eEfFgGaA]")


def _seq_number(s: str) -> Decimal:
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise Usage(f"invalid floating point argument: '{s}'") from None
    if not d.is_finite():
        raise Usage(f"invalid floating point argument: '{s}'")
    return d


def _precision(s: str) -> int:
    """Digits after the point that ``s`` asks for (``1.25`` 2, ``1e2`` 0, ``1.5e-1`` 2)."""
    mant, _, exp = s.lower().partition("e")
    frac = len(mant.partition(".")[2])
    return max(frac - (int(exp) if exp else 0), 0)


@command("seq", COMMANDS)
def _seq(ctx: Ctx, argv: list[str]) -> int:
    try:
        return _seq_run(ctx, argv)
    except Usage as e:  # seq's usage errors exit 1
        ctx.error(str(e))
        return 1


def _seq_run(ctx: Ctx, argv: list[str]) -> int:
    opts, nums = getopts(argv, "w", "sf",  # `-5` is an operand, not an option
                         longs={"separator": "s", "format": "f", "equal-width": "w"})
    if not 1 <= len(nums) <= 3:
        raise Usage("missing operand" if not nums else f"extra operand '{nums[3]}'")
    first_s, step_s, last_s = (["1", "1", nums[0]] if len(nums) == 1 else
                               [nums[0], "1", nums[1]] if len(nums) == 2 else nums)
    first, step, last = (_seq_number(x) for x in (first_s, step_s, last_s))
    if step == 0:
        raise Usage(f"invalid Zero increment value: '{step_s}'")
    fmt = opts.get("f")
    if isinstance(fmt, str) and len(_SEQ_FMT.findall(fmt.replace("%%", ""))) != 1:
        raise Usage(f"format '{fmt}' has no % directive" if "%" not in fmt
                    else f"format '{fmt}' has too many % directives")
    prec = max(_precision(first_s), _precision(step_s))
    sep = str(opts.get("s", "\n"))
    width = 0
    if opts.get("w") and not isinstance(fmt, str):
        count = int((last - first) / step) + 1 if (last - first) * step >= 0 else 0
        ends = [first, first + max(count - 1, 0) * step, last]
        width = max(len(format(x, f".{prec}f")) for x in ends)
    batch: list[str] = []
    i = 0
    while True:  # written in batches: `seq 1 10000000 | head` must not build a list first
        x = first + i * step
        if (x > last) if step > 0 else (x < last):
            break
        if isinstance(fmt, str):
            batch.append(_printf_one(fmt, float(x)))
        else:
            batch.append(format(x, f"0{width}.{prec}f" if width else f".{prec}f"))
        i += 1
        if len(batch) == 4096:
            ctx.check()
            ctx.stdout.write(to_bytes((sep if i > 4096 else "") + sep.join(batch)))
            batch.clear()
    if batch:
        ctx.stdout.write(to_bytes((sep if i > len(batch) else "") + sep.join(batch)))
    if i:
        ctx.stdout.write(b"\n")
    return 0


def _printf_one(fmt: str, x: float) -> str:
    m = _SEQ_FMT.search(fmt.replace("%%", "\0\0"))
    assert m is not None
    spec = fmt[m.start():m.end()].replace("'", "")
    return (fmt[:m.start()] + (spec % x) + fmt[m.end():]).replace("%%", "%")


# -- date -----------------------------------------------------------------------------------

_UNITS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "day": 86400,
          "week": 7 * 86400, "fortnight": 14 * 86400}
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_REL = re.compile(r"([+-]?\s*\d+)?\s*(second|sec|minute|min|hour|day|week|fortnight|month|"
                  r"year)s?\b(\s+ago\b)?")
_ABS = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm)?", re.IGNORECASE)


def _tz(ctx: Ctx, utc: bool) -> dt.tzinfo:
    name = "UTC" if utc else (ctx.env.get("TZ") or "UTC").lstrip(":")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def parse_date(s: str, now: dt.datetime) -> dt.datetime:
    """A date string as ``date -d`` reads the common forms: ``@EPOCH``, ISO dates and
    times (with ``Z`` or an offset), ``now``/``today``/``yesterday``/``tomorrow``,
    weekday names, ``HH:MM[:SS]`` and relative terms (``+3 days``, ``2 hours ago``)."""
    s = s.strip()
    if s.startswith("@"):
        try:
            return dt.datetime.fromtimestamp(float(s[1:]), now.tzinfo)
        except ValueError:
            raise ValueError(f"invalid date '{s}'") from None
    rest = s.lower()
    base = now
    m = _ABS.match(s)
    if m is not None:
        y, mo, d, hh, mm, ss, frac, zone = m.groups()
        tz = now.tzinfo
        if zone:
            z = zone.upper()
            if z in ("Z", "UTC", "GMT"):
                tz = dt.UTC
            else:
                sign = -1 if z[0] == "-" else 1
                digits = z[1:].replace(":", "")
                tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]),
                                                     minutes=int(digits[2:])))
        base = dt.datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0),
                           int(ss or 0), int((frac or "0")[:6].ljust(6, "0")), tz)
        rest = s[m.end():].lower()
    elif (m2 := re.match(r"(\d{4})(\d{2})(\d{2})\b", s)) is not None:
        base = now.replace(year=int(m2.group(1)), month=int(m2.group(2)),
                           day=int(m2.group(3)), hour=0, minute=0, second=0, microsecond=0)
        rest = s[m2.end():].lower()
    words = rest
    for word, days in (("yesterday", -1), ("tomorrow", 1), ("today", 0), ("now", 0)):
        if re.search(rf"\b{word}\b", words):
            base = base + dt.timedelta(days=days)
            words = re.sub(rf"\b{word}\b", " ", words)
    for i, day in enumerate(_DAYS):
        mday = re.search(rf"\b(next\s+|last\s+)?({day}|{day[:3]})\b", words)
        if mday is not None:
            delta = (i - base.weekday()) % 7
            if mday.group(1) and mday.group(1).strip() == "last":
                delta = delta - 7 if delta else -7
            elif mday.group(1) and delta == 0:
                delta = 7
            base = (base + dt.timedelta(days=delta)).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)
            words = words[:mday.start()] + " " + words[mday.end():]
    mt = _TIME.search(words)
    if mt is not None:
        h = int(mt.group(1))
        if mt.group(4):
            h = h % 12 + (12 if mt.group(4).lower() == "pm" else 0)
        base = base.replace(hour=h, minute=int(mt.group(2)), second=int(mt.group(3) or 0),
                            microsecond=0)
        words = words[:mt.start()] + " " + words[mt.end():]
    words = re.sub(r"\bnext\s+(?=[a-z])", "+1 ", words)
    words = re.sub(r"\blast\s+(?=[a-z])", "-1 ", words)
    for mr in _REL.finditer(words):
        n = int((mr.group(1) or "1").replace(" ", ""))
        if mr.group(3):
            n = -n
        unit = mr.group(2)
        if unit in ("month", "year"):
            months = n * (12 if unit == "year" else 1)
            total = base.month - 1 + months
            year, month = base.year + total // 12, total % 12 + 1
            mday_n = min(base.day, _month_days(year, month))
            base = base.replace(year=year, month=month, day=mday_n)
        else:
            base = base + dt.timedelta(seconds=n * _UNITS[unit])
    leftover = _REL.sub(" ", words).strip()
    if leftover and not re.fullmatch(r"[\s,]*(utc|gmt|z)?[\s,]*", leftover):
        raise ValueError(f"invalid date '{s}'")
    return base


def _month_days(year: int, month: int) -> int:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


_DIRECTIVE = re.compile(r"%([-_0^#]?)(\d*)(:{0,3}[a-zA-Z%+])")


def format_date(fmt: str, t: dt.datetime) -> str:
    """``strftime`` with GNU's extras: ``%N``, ``%s``, ``%:z``, ``%q``, ``%-d`` padding."""
    def one(m: re.Match[str]) -> str:
        flag, width, conv = m.groups()
        if conv == "N":
            out = f"{t.microsecond * 1000:09d}"
            return out[:int(width)] if width else out
        if conv == "s":
            out = str(int(t.timestamp()))
        elif conv == ":z":
            off = t.strftime("%z")
            out = off[:3] + ":" + off[3:]
        elif conv == "q":
            out = str((t.month - 1) // 3 + 1)
        elif conv == "P":
            out = t.strftime("%p").lower()
        elif conv == "+":
            out = t.strftime("%a %b %e %H:%M:%S %Z %Y")
        else:
            out = t.strftime("%" + conv)
        if flag == "-":
            out = out.lstrip("0 ") or "0"
        elif flag == "_":
            stripped = out.lstrip("0") or "0"
            out = stripped.rjust(len(out))
        elif flag == "0":
            out = out.replace(" ", "0")
        elif flag == "^":
            out = out.upper()
        if width:
            out = out.rjust(int(width), "0" if flag != "_" and out.isdigit() else " ")
        return out
    return _DIRECTIVE.sub(one, fmt)


_ISO = {"date": "%Y-%m-%d", "hours": "%Y-%m-%dT%H%:z", "minutes": "%Y-%m-%dT%H:%M%:z",
        "seconds": "%Y-%m-%dT%H:%M:%S%:z", "ns": "%Y-%m-%dT%H:%M:%S,%N%:z"}


@command("date", COMMANDS)
def _date(ctx: Ctx, argv: list[str]) -> int:
    fmt = "%a %b %e %H:%M:%S %Z %Y"
    utc = False
    when: str | None = None
    ref: str | None = None
    args = argv[1:]
    while args:
        a = args.pop(0)
        if a.startswith("+"):
            fmt = a[1:]
        elif a in ("-u", "--utc", "--universal"):
            utc = True
        elif a in ("-d", "--date") or a.startswith("--date="):
            if "=" in a:
                when = a.split("=", 1)[1]
            elif args:
                when = args.pop(0)
            else:
                raise Usage("option requires an argument -- 'd'")
        elif a.startswith("-d") and len(a) > 2:
            when = a[2:]
        elif a in ("-r", "--reference") or a.startswith("--reference="):
            ref = a.split("=", 1)[1] if "=" in a else (args.pop(0) if args else "")
        elif a == "-R" or a == "--rfc-email":
            fmt = "%a, %d %b %Y %H:%M:%S %z"
        elif a.startswith("-I") or a.startswith("--iso-8601"):
            kind = a[2:] if a.startswith("-I") else a.partition("=")[2]
            fmt = _ISO.get(kind or "date", "")
            if not fmt:
                raise Usage(f"invalid argument '{kind}' for '--iso-8601'")
        elif a.startswith("--rfc-3339="):
            kind = a.partition("=")[2]
            fmt = {"date": "%Y-%m-%d", "seconds": "%Y-%m-%d %H:%M:%S%:z",
                   "ns": "%Y-%m-%d %H:%M:%S.%N%:z"}.get(kind, "")
            if not fmt:
                raise Usage(f"invalid argument '{kind}' for '--rfc-3339'")
        elif a in ("-s", "--set") or a.startswith("--set="):
            ctx.error("cannot set date: Operation not permitted")
            return 1
        else:
            raise Usage(f"invalid option -- '{a.lstrip('-')}'" if a.startswith("-")
                        else f"invalid date '{a}'")
    tz = _tz(ctx, utc)
    now = dt.datetime.now(tz)
    if ref is not None:
        try:
            now = dt.datetime.fromtimestamp(ctx.namespace.stat(ctx.resolve(ref)).mtime, tz)
        except FsError as e:
            ctx.error(f"{ref}: {strerror(e)}")
            return 1
    if when is not None:
        try:
            now = parse_date(when, now).astimezone(tz)
        except (ValueError, OverflowError):
            ctx.error(f"invalid date '{when}'")
            return 1
    ctx.stdout.write(to_bytes(format_date(fmt, now) + "\n"))
    return 0


# -- file -----------------------------------------------------------------------------------

GLOB_MAGIC: list[tuple[bytes, str, str]] = [
    (b"\x1f\x8b", "gzip compressed data", "application/gzip"),
    (b"PK\x03\x04", "Zip archive data", "application/zip"),
    (b"PK\x05\x06", "Zip archive data (empty)", "application/zip"),
    (b"\x89PNG\r\n\x1a\n", "PNG image data", "image/png"),
    (b"\xff\xd8\xff", "JPEG image data", "image/jpeg"),
    (b"GIF87a", "GIF image data, version 87a", "image/gif"),
    (b"GIF89a", "GIF image data, version 89a", "image/gif"),
    (b"%PDF-", "PDF document", "application/pdf"),
    (b"\x7fELF", "ELF executable", "application/x-executable"),
    (b"\0asm\x01\0\0\0", "WebAssembly (wasm) binary module version 0x1 (MVP)",
     "application/wasm"),
    (b"BZh", "bzip2 compressed data", "application/x-bzip2"),
    (b"\xfd7zXZ\0", "XZ compressed data", "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", "7-zip archive data", "application/x-7z-compressed"),
    (b"SQLite format 3\0", "SQLite 3.x database", "application/vnd.sqlite3"),
    (b"\xca\xfe\xba\xbe", "compiled Java class data", "application/x-java-applet"),
]
_SHEBANGS = {"bash": "Bourne-Again shell script", "sh": "POSIX shell script",
             "dash": "POSIX shell script", "python": "Python script",
             "python3": "Python script", "node": "Node.js script", "perl": "Perl script",
             "ruby": "Ruby script"}


def describe_file(data: bytes) -> tuple[str, str]:
    """(description, MIME type) of content ``data``, as ``file`` names common types."""
    if not data:
        return "empty", "inode/x-empty"
    for magic, desc, mime in GLOB_MAGIC:
        if data.startswith(magic):
            if magic == b"%PDF-":
                version = data[5:8].decode("ascii", "replace")
                return f"{desc}, version {version}", mime
            return desc, mime
    if len(data) > 262 and data[257:262] == b"ustar":
        gnu = data[257:265] == b"ustar  \0"
        return "POSIX tar archive" + (" (GNU)" if gnu else ""), "application/x-tar"
    if b"\0" in data[:8192]:
        return "data", "application/octet-stream"
    try:
        s = data.decode("ascii")
        enc = "ASCII text"
    except UnicodeDecodeError:
        try:
            s = data.decode("utf-8")
            enc = "Unicode text, UTF-8 text"
        except UnicodeDecodeError:
            return "ISO-8859 text", "text/plain; charset=iso-8859-1"
    if any(ord(c) < 32 and c not in "\n\r\t\f\b\x1b" for c in s[:8192]):
        return "data", "application/octet-stream"
    kind, mime = enc, "text/plain"
    head = s.lstrip()[:256]
    if s.startswith("#!"):
        interp = s[2:].split("\n", 1)[0].split()
        name = interp[-1] if interp and interp[0].endswith("/env") else (
            interp[0].rsplit("/", 1)[-1] if interp else "")
        name = name.rsplit("/", 1)[-1]
        label = _SHEBANGS.get(re.sub(r"[\d.]+$", "", name) if name not in _SHEBANGS
                              else name)
        if label:
            kind = f"{label}, {enc} executable"
            mime = "text/x-shellscript" if "shell" in label else (
                "text/x-script.python" if "Python" in label else "text/plain")
    elif head.startswith("<?xml"):
        kind, mime = f"XML 1.0 document, {enc}", "text/xml"
    elif re.match(r"(?i)<!doctype html|<html", head):
        kind, mime = f"HTML document, {enc}", "text/html"
    elif head[:1] in ("{", "["):
        try:
            json.loads(s)
            kind, mime = "JSON text data", "application/json"
        except ValueError:
            pass
    notes = []
    if "\r\n" in s:
        notes.append("with CRLF line terminators")
    elif "\r" in s and "\n" not in s:
        notes.append("with CR line terminators")
    if not s.endswith(("\n", "\r")) and "\n" not in s and "\r" not in s:
        notes.append("with no line terminators")
    longest = max((len(line) for line in s.splitlines()), default=0)
    if longest > 300 and not kind.startswith("JSON"):
        notes.insert(0, f"with very long lines ({longest})")
    if notes and not kind.startswith("JSON"):
        kind += ", " + ", ".join(notes)
    return kind, mime


@command("file", COMMANDS)
def _file(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "biLzM", longs={"brief": "b", "mime": "i",
                                               "mime-type": "M", "dereference": "L"})
    if not files:
        raise Usage("Usage: file [-bi] [--mime-type] file ...")
    width = max(len(f) for f in files) + 1
    out: list[str] = []
    for name in files:
        ctx.check()
        path = ctx.resolve(name)
        try:
            st = ctx.namespace.stat(path)
            if st.is_dir:
                desc, mime = "directory", "inode/directory"
            else:
                with ctx.namespace.open(path, "rb") as f:
                    desc, mime = describe_file(f.read(65536))
        except FsError as e:
            desc, mime = f"cannot open `{name}' ({strerror(e)})", "cannot open"
        if opts.get("M"):
            desc = mime.split(";")[0]
        elif opts.get("i"):
            desc = mime if ";" in mime or not mime.startswith("text/") else (
                mime + "; charset=" + ("utf-8" if "UTF-8" in desc else "us-ascii"))
            if "charset" not in desc:
                desc += "; charset=binary"
        out.append(desc if opts.get("b") else (name + ":").ljust(width) + " " + desc)
    ctx.stdout.write(to_bytes("".join(line + "\n" for line in out)))
    return 0


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r",
            "v": "\v", "e": "\x1b", '"': '"', "'": "'"}


def unescape(s: str, stop_at_c: bool = False) -> tuple[str, bool]:
    """Backslash escapes of echo -e / printf; returns (text, stopped by \\c)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\" or i + 1 >= len(s):
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        if n in _ESCAPES:
            out.append(_ESCAPES[n])
            i += 2
        elif n == "c" and stop_at_c:
            return "".join(out), True
        elif n in "01234567":
            j = i + 1 + (n == "0")
            digits = re.match(r"[0-7]{1,3}", s[j:])
            if digits:
                out.append(chr(int(digits.group(), 8)))
                i = j + len(digits.group())
            else:
                out.append("\0")
                i = j
        elif n == "x" and re.match(r"[0-9a-fA-F]", s[i + 2:i + 3]):
            digits = re.match(r"[0-9a-fA-F]{1,2}", s[i + 2:])
            assert digits
            out.append(chr(int(digits.group(), 16)))
            i += 2 + len(digits.group())
        else:
            out.append("\\" + n)
            i += 2
    return "".join(out), False


@command("echo", COMMANDS)
def _echo(ctx: Ctx, argv: list[str]) -> int:
    args = argv[1:]
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] or (escapes and "E" not in args[0])
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stopped = unescape(text, stop_at_c=True)
        newline = newline and not stopped
    ctx.write(text + ("\n" if newline else ""))
    return 0


_FMT = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


@command("printf", COMMANDS)
def _printf(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.error("usage: printf format [arguments]")
        return 2
    fmt, args = argv[1], argv[2:]
    status = 0
    out: list[str] = []
    while True:
        used = 0
        pos = 0
        for m in _FMT.finditer(fmt):
            out.append(unescape(fmt[pos:m.start()])[0])
            pos = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue

            def take(args: list[str] = args) -> str:
                nonlocal used
                used += 1
                return args[used - 1] if used <= len(args) else ""
            if width == "*":
                width = take() or "0"
            if prec == "*":
                prec = take() or "0"
            arg = take()
            spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
            if conv in "diouxXc" and conv != "c":
                try:
                    n = _c_int(arg)
                except ValueError:
                    ctx.error(f"'{arg}': expected a numeric value")
                    status = 1
                    n = 0
                conv2 = "d" if conv in "iu" else conv
                out.append((spec + conv2) % n)
            elif conv in "eEfFgG":
                try:
                    x = float(arg or 0)
                except ValueError:
                    ctx.error(f"'{arg}': expected a numeric value")
                    status, x = 1, 0.0
                out.append((spec + conv) % x)
            elif conv == "c":
                out.append((spec + "s") % arg[:1])
            elif conv == "b":
                out.append((spec + "s") % unescape(arg, stop_at_c=True)[0])
            elif conv == "q":
                out.append(arg)
            else:
                out.append((spec + "s") % arg)
        out.append(unescape(fmt[pos:])[0])
        if used == 0 or used >= len(args):
            break
        args = args[used:]
    ctx.write("".join(out))
    return status


def _c_int(s: str) -> int:
    s = s.strip()
    if not s:
        return 0
    if s[0] in "'\"" and len(s) > 1:
        return ord(s[1])
    return int(s, 0) if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", s) else (
        int(s, 8) if re.fullmatch(r"[-+]?0[0-7]+", s) else int(s))


@command("cat", COMMANDS)
def _cat(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "nuAEv")
    status = 0
    n = 0
    for _name, stream in input_streams(ctx, files):
        if stream is None:
            status = 1
            continue
        if opts.get("n"):
            for line in stream.lines():
                n += 1
                ctx.write(f"{n:6}\t".encode() + line)
        else:
            for chunk in stream.chunks():
                ctx.check()
                ctx.write(chunk)
    return status


def _legacy_count(argv: list[str]) -> list[str]:
    """``head -5`` is ``head -n 5``."""
    out = [argv[0]]
    for i, a in enumerate(argv[1:], 1):
        if re.fullmatch(r"-\d+", a) and argv[i - 1] not in ("-n", "-c"):
            out += ["-n", a[1:]]
        else:
            out.append(a)
    return out


def _count_arg(opts: dict[str, str | bool], argv: list[str]) -> tuple[str, int, bool]:
    """head/tail: ('n' or 'c', count, from-start '+N')."""
    kind = "c" if "c" in opts else "n"
    raw = str(opts.get(kind, "10"))
    plus = raw.startswith("+")
    neg = raw.startswith("-")
    try:
        n = int(raw.lstrip("+-"))
    except ValueError:
        raise Usage(f"invalid number of lines: '{raw}'") from None
    return kind, -n if neg else n, plus


@command("head", COMMANDS)
def _head(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(_legacy_count(argv), "qv", "nc")
    kind, n, _ = _count_arg(opts, argv)
    status = 0
    for i, (name, stream) in enumerate(input_streams(ctx, files)):
        if stream is None:
            status = 1
            continue
        if len(files) > 1:
            ctx.write(("\n" if i else "") + f"==> {name} <==\n")
        if n < 0:  # all but the last -n: needs the whole input
            data = stream.read_all()
            if kind == "c":
                ctx.write(data[:len(data) + n])
            else:
                lines = split_lines(data)
                ctx.write(b"".join(lines[:len(lines) + n]))
        elif kind == "c":
            left = n
            while left > 0 and (chunk := stream.read(left)):
                ctx.write(chunk)
                left -= len(chunk)
        else:
            for _ in range(n):
                line = stream.readline()
                if not line:
                    break
                ctx.write(line)
    return status


@command("tail", COMMANDS)
def _tail(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(_legacy_count(argv), "qvfF", "nc")
    kind, n, plus = _count_arg(opts, argv)
    n = abs(n)
    status = 0
    for i, (name, stream) in enumerate(input_streams(ctx, files)):
        if stream is None:
            status = 1
            continue
        if len(files) > 1:
            ctx.write(("\n" if i else "") + f"==> {name} <==\n")
        if plus:  # from the n-th line (byte) on: skip, then copy
            if kind == "c":
                skip = max(n - 1, 0)
                while skip > 0 and (chunk := stream.read(skip)):
                    skip -= len(chunk)
            else:
                for _ in range(max(n - 1, 0)):
                    if not stream.readline():
                        break
            for chunk in stream.chunks():
                ctx.write(chunk)
        else:
            ctx.write(_last(stream, kind, n))
    return status


def _last(stream: Input, kind: str, n: int) -> bytes:
    """The last ``n`` lines (``kind`` "n") or bytes ("c") of ``stream``, read through in
    chunks while keeping only a window of a few times the answer's size."""
    buf = bytearray()
    floor = 1 << 20
    for chunk in stream.chunks():
        buf += chunk
        if len(buf) > floor:
            buf = bytearray(_cut_last(bytes(buf), kind, n))
            floor = max(1 << 20, 4 * len(buf))
    return _cut_last(bytes(buf), kind, n)


def _cut_last(data: bytes, kind: str, n: int) -> bytes:
    if kind == "c":
        return data[len(data) - n:] if n else b""
    if n == 0:
        return b""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(n):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return data
    return data[end + 1:]


@command("wc", COMMANDS)
def _wc(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "lwcmL", longs={"lines": "l", "words": "w", "bytes": "c",
                                                 "chars": "m"})
    keys = [k for k in "lwc" if opts.get(k) or (k == "c" and opts.get("m"))] or ["l", "w", "c"]
    status = 0
    rows: list[tuple[list[int], str | None]] = []
    size = 0
    for name, stream in input_streams(ctx, files):
        if stream is None:
            status = 1
            continue
        found = {"l": 0, "w": 0, "c": 0}
        in_word = False
        for chunk in stream.chunks():
            ctx.check()
            size += len(chunk)
            found["l"] += chunk.count(b"\n")
            words = len(chunk.split())
            if in_word and words and not chunk[:1].isspace():
                words -= 1  # a word cut by the chunk boundary
            found["w"] += words
            in_word = not chunk[-1:].isspace()
            found["c"] += (len(chunk) - len(UTF8_CONTINUATION.findall(chunk)) if opts.get("m")
                           else len(chunk))
        rows.append(([found[k] for k in keys], name if files else None))
    if len(files) > 1:
        rows.append(([sum(r[0][i] for r in rows) for i in range(len(keys))], "total"))
    # GNU wc: one column unpadded; stdin 7 wide; files as wide as their total size.
    width = 1 if len(keys) == 1 and len(rows) == 1 else (7 if not files else len(str(size)))
    for counts, label in rows:
        line = " ".join(f"{c:{width}}" for c in counts)
        ctx.write(line + (f" {label}" if label is not None else "") + "\n")
    return status


@command("xargs", COMMANDS)
def _xargs(ctx: Ctx, argv: list[str]) -> int:
    opts, cmd = getopts(argv, "0rt", "nIdL", permute=False)
    cmd = cmd or ["echo"]
    data = text(ctx.stdin)
    if opts.get("0"):
        items = [x for x in data.split("\0") if x]
    elif "d" in opts:
        items = [x for x in data.split(unescape(str(opts["d"]))[0]) if x]
    elif "I" in opts or "L" in opts:
        items = [x for x in data.split("\n") if x.strip()]
    else:
        items = _xargs_split(data)
    if not items and (opts.get("r") or "I" in opts):
        return 0
    status = 0
    if "I" in opts:
        rep = str(opts["I"])
        batches = [[a.replace(rep, item) for a in cmd] for item in items]
    else:
        n = int(str(opts.get("n", opts.get("L", 0)))) or max(len(items), 1)
        batches = [cmd + items[i:i + n] for i in range(0, max(len(items), 1), n)]
    for b in batches:
        rc = ctx.run(b, b"")
        if rc:
            status = 123 if rc < 126 else rc
    return status


def _xargs_split(data: str) -> list[str]:
    items: list[str] = []
    for m in re.finditer(r"""'([^']*)'|"([^"]*)"|((?:\\.|[^\s'"])+)""", data):
        if m.group(3) is not None:
            items.append(re.sub(r"\\(.)", r"\1", m.group(3)))
        else:
            items.append(m.group(1) if m.group(1) is not None else m.group(2))
    return items


def _tr_set(s: str) -> list[str]:
    s, _ = unescape(s)
    classes = {"[:upper:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               "[:lower:]": "abcdefghijklmnopqrstuvwxyz", "[:digit:]": "0123456789",
               "[:space:]": " \t\n\r\f\v", "[:blank:]": " \t", "[:punct:]":
               "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}
    classes["[:alpha:]"] = classes["[:upper:]"] + classes["[:lower:]"]
    classes["[:alnum:]"] = classes["[:alpha:]"] + classes["[:digit:]"]
    out: list[str] = []
    i = 0
    while i < len(s):
        for name, chars in classes.items():
            if s.startswith(name, i):
                out.extend(chars)
                i += len(name)
                break
        else:
            if i + 2 < len(s) and s[i + 1] == "-":
                out.extend(chr(c) for c in range(ord(s[i]), ord(s[i + 2]) + 1))
                i += 3
            else:
                out.append(s[i])
                i += 1
    return out


@command("tr", COMMANDS)
def _tr(ctx: Ctx, argv: list[str]) -> int:
    opts, sets = getopts(argv, "dscC")
    if not sets:
        raise Usage("missing operand")
    s1 = _tr_set(sets[0])
    if opts.get("c") or opts.get("C"):
        members = set(s1)
        s1 = [chr(c) for c in range(256) if chr(c) not in members]
    table: dict[int, str | None]
    if opts.get("d"):
        table = dict.fromkeys(map(ord, s1))
        squeeze = set(_tr_set(sets[1])) if len(sets) > 1 else set()
    elif len(sets) > 1:
        s2 = _tr_set(sets[1])
        s2 += [s2[-1]] * (len(s1) - len(s2)) if s2 else []
        table = {ord(a): b for a, b in zip(s1, s2, strict=False)}
        squeeze = set(s2)
    else:
        table = {}
        squeeze = set(s1)
    runs = (re.compile("(" + "|".join(re.escape(c) for c in squeeze) + r")\1+")
            if opts.get("s") and squeeze else None)
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    last = ""  # the last character written: a squeezed run may go on in the next chunk
    for chunk in itertools.chain(ctx.stdin_stream.chunks(), [b""]):
        ctx.check()
        text = decoder.decode(chunk, final=not chunk).translate(table)
        if runs is not None and text:
            text = runs.sub(r"\1", text)
            if last in squeeze:
                text = text.lstrip(last)
        if text:
            last = text[-1]
            ctx.write(text)
    return 0


def _ranges(spec: str) -> Callable[[int], bool]:
    rngs: list[tuple[int, int]] = []
    for part in spec.split(","):
        a, dash, b = part.partition("-")
        try:
            lo = int(a) if a else 1
            hi = (int(b) if b else 1 << 30) if dash else lo
        except ValueError:
            raise Usage(f"invalid field value '{part}'") from None
        rngs.append((lo, hi))
    return lambda i: any(lo <= i <= hi for lo, hi in rngs)


@command("cut", COMMANDS)
def _cut(ctx: Ctx, argv: list[str]) -> int:
    opts, files = getopts(argv, "s", "dfcb")
    status = 0
    for _name, stream in input_streams(ctx, files):
        if stream is None:
            status = 1
            continue
        for raw in stream.lines():
            ctx.check()
            line = text(raw).removesuffix("\n")
            if "f" in opts:
                sel = _ranges(str(opts["f"]))
                d = str(opts.get("d", "\t"))
                if d not in line:
                    if not opts.get("s"):
                        ctx.write(line + "\n")
                    continue
                fields = line.split(d)
                ctx.write(d.join(f for i, f in enumerate(fields, 1) if sel(i)) + "\n")
            else:
                sel = _ranges(str(opts.get("c", opts.get("b", "1-"))))
                ctx.write("".join(c for i, c in enumerate(line, 1) if sel(i)) + "\n")
    return status


@command("tac rev", COMMANDS)
def _tac(ctx: Ctx, argv: list[str]) -> int:
    _opts, files = getopts(argv, "")
    status = 0
    for _name, data in file_inputs(ctx, files):
        if data is None:
            status = 1
            continue
        lines = [ln.rstrip(b"\n") for ln in split_lines(data)]
        if argv[0] == "tac":
            ctx.write(b"".join(ln + b"\n" for ln in reversed(lines)))
        else:
            ctx.write(b"".join(to_bytes(text(ln)[::-1]) + b"\n" for ln in lines))
    return status


# -- shuf, column ---------------------------------------------------------------------------


@command("shuf", COMMANDS)
def _shuf(ctx: Ctx, argv: list[str]) -> int:
    """``shuf [-n N] [-r] (-e ARG... | -i LO-HI | [FILE])``: lines in random order."""
    opts, rest = getopts(argv, "erz", "ni", longs={"echo": "e", "repeat": "r",
                                                  "head-count": "n", "input-range": "i"})
    if opts.get("e"):
        items = [to_bytes(a) for a in rest]
    elif "i" in opts:
        m = re.fullmatch(r"(\d+)-(\d+)", str(opts["i"]))
        if m is None or int(m.group(1)) > int(m.group(2)) + 1:
            raise Usage(f"invalid input range: '{opts['i']}'")
        items = [str(i).encode() for i in range(int(m.group(1)), int(m.group(2)) + 1)]
    else:
        if len(rest) > 1:
            raise Usage(f"extra operand '{rest[1]}'")
        _name, data = next(file_inputs(ctx, rest))
        if data is None:
            return 1
        items = [ln.rstrip(b"\n") for ln in split_lines(data)]
    count = len(items) if "n" not in opts else int(str(opts["n"]))
    if opts.get("r") and items:
        chosen = [random.choice(items) for _ in range(count)]
    else:
        chosen = random.sample(items, min(count, len(items)))
    ctx.write(b"".join(item + b"\n" for item in chosen))
    return 0


@command("column", COMMANDS)
def _column(ctx: Ctx, argv: list[str]) -> int:
    """``column -t [-s SEPS] [-o SEP] [FILE...]``: a table, each column as wide as its
    widest cell (only the table mode)."""
    opts, files = getopts(argv, "tn", "so", longs={"table": "t", "separator": "s",
                                                    "output-separator": "o"})
    if not opts.get("t"):
        raise Usage("only the table mode (-t) is supported")
    seps = str(opts.get("s", " \t"))
    out_sep = str(opts.get("o", "  "))
    split = re.compile("[" + re.escape(seps) + "]+")
    rows: list[list[str]] = []
    status = 0
    for _name, data in file_inputs(ctx, files):
        if data is None:
            status = 1
            continue
        for ln in split_lines(data):
            line = text(ln).rstrip("\n")
            if line.strip(seps):
                rows.append(split.split(line.strip(seps)))
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell))
    for row in rows:  # a short row gets empty cells: every column but the last is padded
        cells = [*row, *[""] * (len(widths) - len(row))]
        ctx.write(to_bytes(out_sep.join(c.ljust(widths[i]) if i < len(widths) - 1 else c
                                        for i, c in enumerate(cells)) + "\n"))
    return status
