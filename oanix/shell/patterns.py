"""Pattern translation to Python regexes: shell globs, bracket expressions, POSIX regexes."""

from __future__ import annotations

import re


def glob_regex(chunks: list[tuple[str, bool]]) -> str:
    """A regex for a glob pattern given as (text, quoted) chunks; quoted text is literal."""
    out: list[str] = []
    for text, quoted in chunks:
        if quoted:
            out.append(re.escape(text))
            continue
        i = 0
        while i < len(text):
            c = text[i]
            if c == "*":
                out.append(".*")
            elif c == "?":
                out.append(".")
            elif c == "\\" and i + 1 < len(text):
                i += 1
                out.append(re.escape(text[i]))
            elif c == "[":
                end = bracket_end(text, i)
                if end < 0:
                    out.append("\\[")
                else:
                    out.append(bracket_regex(text[i + 1:end]))
                    i = end
            else:
                out.append(re.escape(c))
            i += 1
    return "".join(out)


def bracket_end(text: str, i: int) -> int:
    """The index of the ``]`` closing the bracket expression at ``text[i]``, or -1."""
    j = i + 1
    if j < len(text) and text[j] in "!^":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text) and text[j] != "]":
        if text.startswith("[:", j):
            end = text.find(":]", j + 2)
            if end > 0:
                j = end + 2
                continue
        j += 1
    return j if j < len(text) else -1


def bracket_regex(body: str) -> str:
    """A regex class for the inside of a bracket expression (``!``/``^`` negates)."""
    neg = body[:1] in ("!", "^")
    if neg:
        body = body[1:]
    out = []
    i = 0
    while i < len(body):
        m = _CLASS.match(body, i)
        if m is not None and m.group(1) in _POSIX_CLASSES:
            out.append(_POSIX_CLASSES[m.group(1)])
            i = m.end()
            continue
        c = body[i]
        out.append("\\" + c if c in "\\[]^" else c)
        i += 1
    return "[" + ("^" if neg else "") + "".join(out) + "]"


_POSIX_CLASSES = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
                  "lower": "a-z", "space": r" \t\n\r\f\v", "blank": r" \t",
                  "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f", "print": r" -~",
                  "graph": r"!-~", "cntrl": r"\x00-\x1f\x7f"}
_CLASS = re.compile(r"\[:(\w+):\]")
GLOB_MAGIC = re.compile(r"[*?\[]")


UTF8_CONTINUATION = re.compile(rb"[\x80-\xbf]")


def posix_regex(pat: str, extended: bool) -> str:
    """A Python regex for a POSIX basic (or ``extended``) regular expression."""
    out: list[str] = []
    i = 0
    n = len(pat)
    while i < n:
        c = pat[i]
        if c == "\\" and i + 1 < n:
            d = pat[i + 1]
            i += 2
            if not extended and d in "(){}|+?":
                out.append(d)
            elif d.isdigit():
                out.append("\\" + d)
            elif d in "<>":
                out.append(r"\b")
            elif d in "wWsSbB":
                out.append("\\" + d)
            elif d == "n":
                out.append("\n")
            elif d == "t":
                out.append("\t")
            else:
                out.append(re.escape(d))
            continue
        if c == "[":
            end = bracket_end(pat, i)
            if end < 0:
                out.append(r"\[")
                i += 1
            else:
                out.append(bracket_regex(pat[i + 1:end]))
                i = end + 1
            continue
        if c in "(){}|+?":
            if extended:
                out.append(c if c != "{" or re.match(r"\{\d", pat[i:]) else r"\{")
            else:
                out.append("\\" + c)
        elif c == "*" and (not out or out[-1] in ("^", "(", "|")) and not extended:
            out.append(r"\*")
        elif c in ".^$*":
            out.append(c)
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
