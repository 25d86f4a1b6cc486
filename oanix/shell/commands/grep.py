"""``grep``/``egrep``/``fgrep``: POSIX basic, extended and fixed patterns, run under the
regex time limit (``oanix.shell.rx``).
"""

from __future__ import annotations

import re
from collections import deque

from .. import rx as timed_rx
from ..context import Ctx, stat_or_none
from ..patterns import glob_regex, posix_regex
from ..table import COMMANDS, Usage, command, getopts
from ._util import input_streams, text, to_bytes
from .files import find_walk


def _grep_regex(patterns: list[str], opts: dict[str, str | bool]
                ) -> timed_rx.TimedPattern[bytes]:
    parts = []
    for p in patterns:
        if opts.get("F"):
            rx = re.escape(p)
        elif opts.get("P"):  # Perl regex: Python's re is close enough
            rx = p
        else:
            rx = posix_regex(p, bool(opts.get("E")))
        if opts.get("w"):
            rx = r"(?<!\w)(?:" + rx + r")(?!\w)"
        if opts.get("x"):
            rx = "(?:" + rx + r")\Z"
        parts.append(rx)
    flags = re.IGNORECASE if opts.get("i") else 0
    try:
        return timed_rx.compile(to_bytes("|".join(f"(?:{p})" for p in parts)),
                                flags | re.MULTILINE)
    except (re.error, timed_rx.error) as e:
        raise Usage(f"invalid regular expression: {e}") from None


@command("grep egrep fgrep", COMMANDS)
def _grep(ctx: Ctx, argv: list[str]) -> int:
    opts, rest = getopts(argv, "ivcnqEFrRlLoswxhHaIzP", "emfABC")
    if argv[0] == "egrep":
        opts["E"] = True
    if argv[0] == "fgrep":
        opts["F"] = True
    if "e*" in opts:
        patterns = str(opts["e*"]).split("\0")[1:]
    elif "f" in opts:
        patterns = text(ctx.read_file(str(opts["f"]))).splitlines()
    elif rest:
        patterns = [rest.pop(0)]
    else:
        raise Usage("no pattern given")
    patterns = [q for p in patterns for q in p.split("\n")]
    rx = _grep_regex(patterns, opts)
    recursive = bool(opts.get("r") or opts.get("R"))
    files = rest or (["."] if recursive else [])
    targets: list[str] = []
    status = 1
    errors = False
    include = [g for g in str(opts.get("*include", "")).split("\0") if g]
    exclude = [g for g in str(opts.get("*exclude", "")).split("\0") if g]
    exclude_dir = [g for g in str(opts.get("*exclude-dir", "")).split("\0") if g]

    def matches(name: str, globs: list[str]) -> bool:
        return any(re.fullmatch(glob_regex([(g, False)]), name, re.DOTALL) for g in globs)
    for f in files:
        st = stat_or_none(ctx, f)
        if recursive and st is not None and st.is_dir:
            for shown, entry, _ in find_walk(ctx, f, st, 0, 1 << 30):
                parts = shown.split("/")[:-1]
                if entry.is_dir or any(matches(d, exclude_dir) for d in parts[1:]):
                    continue
                name = (parts and shown.rsplit("/", 1)[-1]) or shown
                if (include and not matches(name, include)) or matches(name, exclude):
                    continue
                targets.append(shown)
        elif st is not None and st.is_dir:
            ctx.error(f"{f}: Is a directory")
            errors = True
        else:
            targets.append(f)
    show_name = ((len(targets) > 1 or recursive) and not opts.get("h")) or bool(opts.get("H"))
    maxcount = int(str(opts["m"])) if "m" in opts else -1
    after = int(str(opts.get("A", opts.get("C", 0))))
    before = int(str(opts.get("B", opts.get("C", 0))))
    last_shown = 0  # line number of the last line written (for context and "--")
    any_shown = False
    for name, stream in (input_streams(ctx, targets) if (targets or not files) else iter(())):
        if stream is None:
            errors = True
            continue
        count = 0
        pending_after = 0
        recent: deque[tuple[int, bytes]] = deque(maxlen=before or 1)
        last_shown = 0

        def show(lineno: int, line: bytes, sep: bytes, name: str = name) -> None:
            nonlocal last_shown, any_shown
            if (after or before) and ((last_shown and lineno > last_shown + 1)
                                      or (not last_shown and any_shown)):
                ctx.write(b"--\n")
            any_shown = True
            pre = (to_bytes(name) + sep) if show_name and files else b""
            num = f"{lineno}".encode() + sep if opts.get("n") else b""
            ctx.write(pre + num + line + b"\n")
            last_shown = lineno
        for lineno, raw in enumerate(stream.lines(), 1):
            ctx.check()
            if count == maxcount:
                break
            line = raw[:-1] if raw.endswith(b"\n") else raw
            found = rx.search(line) is not None
            if found == bool(opts.get("v")):
                if pending_after > 0:
                    show(lineno, line, b"-")
                    pending_after -= 1
                if before:
                    recent.append((lineno, line))
                continue
            count += 1
            if opts.get("q"):
                return 0
            if opts.get("c") or opts.get("l") or opts.get("L"):
                continue
            for k, kept in recent:
                if k > last_shown and k >= lineno - before:
                    show(k, kept, b"-")
            recent.clear()
            pending_after = after
            if opts.get("o") and not opts.get("v"):
                for m in rx.finditer(line):
                    if m.group():
                        pre = (to_bytes(name) + b":") if show_name and files else b""
                        num = f"{lineno}:".encode() if opts.get("n") else b""
                        ctx.write(pre + num + m.group() + b"\n")
            else:
                show(lineno, line, b":")
        if count:
            status = 0
        if opts.get("c"):
            prefix = (to_bytes(name) + b":") if show_name and files else b""
            ctx.write(prefix + f"{count}\n".encode())
        if opts.get("l") and count:
            ctx.write(name + "\n")
        if opts.get("L") and not count:
            ctx.write(name + "\n")
    return 2 if errors and not (opts.get("q") and status == 0) else status
