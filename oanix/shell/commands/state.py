"""Commands about the shell's own state, registered as state builtins (``SPECIAL``):
``cd``, ``pwd``, ``export``/``readonly``, ``declare``, ``local``, ``unset``, ``exit``,
``return``, ``break``/``continue``, ``set``, ``shift``, ``read``, ``eval``, ``.``/``source``,
``exec``, ``trap``, ``sh``/``bash``, ``which``, ``command -v/-V``, ``type``, ``env``,
``pushd``/``popd``/``dirs`` and ``getopts``.

These read or change the session (``ctx.shell.st``: variables, cwd, functions).
Utilities are reported where scripts expect them, ``/usr/bin/<name>``, and that path runs
them (``Interp.standard_command``); programs in the namespace's ``PATH`` are reported by
their path.
"""

from __future__ import annotations

import re

from ...errors import FsError
from ..cancel import current
from ..context import Ctx, ShellExit, State, _LoopJump, _Return, strerror
from ..interp import Interp
from ..table import COMMANDS, SPECIAL, Usage, command, getopts
from ._util import (
    int_arg,
    text,
    to_bytes,
)

__all__ = ["BASH_BUILTINS", "KEYWORDS", "locate"]

# Commands bash itself implements: `type` calls them builtins, `command -v` prints the name.
BASH_BUILTINS = frozenset([
    ".", ":", "[", "alias", "bg", "break", "builtin", "caller", "cd", "command", "compgen",
    "complete", "continue", "declare", "dirs", "disown", "echo", "enable", "eval", "exec",
    "exit", "export", "false", "fc", "fg", "getopts", "hash", "help", "history", "jobs",
    "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd", "pwd", "read",
    "readarray", "readonly", "return", "set", "shift", "shopt", "source", "suspend",
    "test", "times", "trap", "true", "type", "typeset", "ulimit", "umask", "unalias",
    "unset", "wait"])
KEYWORDS = frozenset(["if", "then", "else", "elif", "fi", "case", "esac", "for", "select",
                      "while", "until", "do", "done", "in", "function", "time", "{", "}",
                      "!", "[[", "]]", "coproc"])


def locate(sh: Interp, name: str) -> tuple[str, str] | None:
    """How ``name`` would run: ``(kind, detail)`` with kind ``keyword``, ``function``,
    ``builtin`` (detail: the name) or ``file`` (detail: its path); None if not found."""
    if name in KEYWORDS:
        return "keyword", name
    if name in sh.st.functions:
        return "function", name
    known = name in SPECIAL or name in sh.commands or name in COMMANDS
    if known and name in BASH_BUILTINS:
        return "builtin", name
    path = sh.find_program(name)
    if path is not None:
        return "file", path
    if known:
        return "file", "/usr/bin/" + name
    if "/" in name and sh.standard_command(name) is not None:
        return "file", name
    return None


@command("command", SPECIAL)
def _command(ctx: Ctx, argv: list[str]) -> int:
    opts, rest = getopts(argv, "vVp", permute=False)
    if not rest:
        return 0
    if opts.get("v") or opts.get("V"):
        status = 0
        for name in rest:
            found = locate(ctx.shell, name)
            if found is None:
                status = 1
                if opts.get("V"):
                    ctx.error(f"{name}: not found")
                continue
            kind, detail = found
            if opts.get("V"):
                ctx.stdout.write(to_bytes(_describe(name, kind, detail) + "\n"))
            else:
                ctx.stdout.write(to_bytes(detail + "\n"))
        return status
    func = ctx.shell.st.functions.pop(rest[0], None)  # `command f` skips functions
    try:
        return ctx.run(rest)
    finally:
        if func is not None:
            ctx.shell.st.functions[rest[0]] = func


def _describe(name: str, kind: str, detail: str) -> str:
    if kind == "file":
        return f"{name} is {detail}"
    if kind == "function":
        return f"{name} is a function"
    return f"{name} is a shell {kind}"


@command("type", SPECIAL)
def _type(ctx: Ctx, argv: list[str]) -> int:
    opts, names = getopts(argv, "atpPf")
    status = 0
    for name in names:
        found = locate(ctx.shell, name)
        if opts.get("P") or opts.get("p"):
            if found is not None and found[0] == "file":
                ctx.stdout.write(to_bytes(found[1] + "\n"))
            elif opts.get("P") or found is None:
                status = 1
            continue
        if found is None:
            if not opts.get("t"):
                ctx.error(f"{name}: not found")
            status = 1
            continue
        kind, detail = found
        line = kind if opts.get("t") else _describe(name, kind, detail)
        ctx.stdout.write(to_bytes(line + "\n"))
    return status


# Special builtins that are also program files on Debian (/usr/bin/bash, ...).
_PROGRAM_FILES_TOO = frozenset({"sh", "bash", "dash", "which"})


@command("which", SPECIAL)
def _which(ctx: Ctx, argv: list[str]) -> int:
    opts, names = getopts(argv, "as")
    status = 0
    for name in names:
        found = locate(ctx.shell, name)
        if found is None or found[0] in ("keyword", "function") or (
                name in SPECIAL and name not in _PROGRAM_FILES_TOO):
            status = 1  # no program file does what a state builtin (cd, export) does
            continue
        kind, detail = found
        if not opts.get("s"):
            ctx.stdout.write(to_bytes((detail if kind == "file" else "/usr/bin/" + name)
                                      + "\n"))
    return status


# -- env ------------------------------------------------------------------------------------


@command("env printenv", COMMANDS)
def _env(ctx: Ctx, argv: list[str]) -> int:
    env = dict(ctx.env)
    args = argv[1:]
    if argv[0] == "printenv":
        nul = bool(args) and args[0] in ("-0", "--null")
        args = args[1:] if nul else args
        end = "\0" if nul else "\n"
        if args:
            vals = [env[a] for a in args if a in env]
            ctx.stdout.write(to_bytes("".join(v + end for v in vals)))
            return 0 if len(vals) == len(args) else 1
        ctx.stdout.write(to_bytes("".join(f"{k}={v}{end}" for k, v in env.items())))
        return 0
    end = "\n"
    cwd: str | None = None
    while args:
        a = args[0]
        if a in ("-i", "-", "--ignore-environment"):
            env = {}
        elif a in ("-0", "--null"):
            end = "\0"
        elif a in ("-u", "--unset", "-C", "--chdir", "-S", "--split-string"):
            if len(args) < 2:
                raise Usage(f"option requires an argument -- '{a.lstrip('-')[0]}'")
            val = args[1]
            args = args[1:]
            if a in ("-u", "--unset"):
                env.pop(val, None)
            elif a in ("-C", "--chdir"):
                cwd = val
            else:  # -S "python3 -u": split the string into words (shebang lines use it)
                args = ["", *val.split(), *args[1:]]
        elif a.startswith("--unset="):
            env.pop(a.split("=", 1)[1], None)
        elif a.startswith("--chdir="):
            cwd = a.split("=", 1)[1]
        elif a.startswith("-S") and len(a) > 2:
            args = ["", *a[2:].split(), *args[1:]]
        elif a.startswith("-u") and len(a) > 2:
            env.pop(a[2:], None)
        elif a == "--":
            args = args[1:]
            break
        elif "=" in a and not a.startswith("="):
            k, _, v = a.partition("=")
            env[k] = v
        elif a.startswith("-") and len(a) > 1:
            raise Usage(f"invalid option -- '{a.lstrip('-')}'")
        else:
            break
        args = args[1:]
    if not args:
        ctx.stdout.write(to_bytes("".join(f"{k}={v}{end}" for k, v in env.items())))
        return 0
    sh = ctx.shell
    saved = dict(sh.st.vars), set(sh.st.exported), sh.st.cwd
    if cwd is not None:
        target = ctx.resolve(cwd)
        if not ctx.namespace.is_dir(target):
            ctx.error(f"cannot change directory to '{cwd}': No such file or directory")
            return 125
        sh.st.cwd = target
    keep = {k: v for k, v in sh.st.vars.items() if k not in sh.st.exported}
    sh.st.vars = {**keep, **env}
    sh.st.exported = set(env)
    try:
        return sh.run_argv(args, ctx.io, env)
    finally:
        sh.st.vars, sh.st.exported, sh.st.cwd = saved


# -- the directory stack --------------------------------------------------------------------


def _stack(ctx: Ctx) -> list[str]:
    """The saved directories (top first), kept in ``DIRSTACK[1..]`` as bash does."""
    arr = ctx.shell.st.arrays.get("DIRSTACK", {})
    return [arr[i] for i in sorted(arr) if i > 0]


def _set_stack(ctx: Ctx, saved: list[str]) -> None:
    ctx.shell.st.arrays["DIRSTACK"] = {i: d for i, d in enumerate([ctx.cwd, *saved])}


def _tilde(ctx: Ctx, path: str) -> str:
    home = ctx.shell.st.vars.get("HOME", "")
    if home and home != "/" and (path == home or path.startswith(home.rstrip("/") + "/")):
        return "~" + path[len(home.rstrip("/")):]
    return path


def _print_stack(ctx: Ctx, lines: bool = False, numbered: bool = False,
                 long: bool = False) -> None:
    entries = [ctx.cwd, *_stack(ctx)]
    shown = [e if long else _tilde(ctx, e) for e in entries]
    if numbered:
        out = "".join(f"{i:2d}  {d}\n" for i, d in enumerate(shown))
    elif lines:
        out = "".join(d + "\n" for d in shown)
    else:
        out = " ".join(shown) + "\n"
    ctx.stdout.write(to_bytes(out))


def _chdir(ctx: Ctx, target: str) -> bool:
    st = ctx.shell.st
    path = ctx.resolve(target)
    try:
        if not ctx.namespace.stat(path).is_dir:
            ctx.error(f"{target}: Not a directory")
            return False
    except OSError as e:
        ctx.error(f"{target}: {strerror(e)}")
        return False
    st.vars["OLDPWD"] = st.cwd
    st.cwd = path
    st.vars["PWD"] = path
    return True


def _rotation(arg: str, size: int) -> int | None:
    """The index ``+N`` (from the top) or ``-N`` (from the bottom) names, or None."""
    if len(arg) < 2 or arg[0] not in "+-" or not arg[1:].isdigit():
        return None
    n = int(arg[1:])
    idx = n if arg[0] == "+" else size - 1 - n
    return idx if 0 <= idx < size else -1


@command("pushd", SPECIAL)
def _pushd(ctx: Ctx, argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "-n"]
    saved = _stack(ctx)
    if not args:
        if not saved:
            ctx.error("no other directory")
            return 1
        top, old = saved[0], ctx.cwd
        if not _chdir(ctx, top):
            return 1
        _set_stack(ctx, [old, *saved[1:]])
    elif (idx := _rotation(args[0], len(saved) + 1)) is not None:
        if idx < 0:
            ctx.error(f"{args[0]}: directory stack index out of range")
            return 1
        entries = [ctx.cwd, *saved]
        entries = entries[idx:] + entries[:idx]
        if not _chdir(ctx, entries[0]):
            return 1
        _set_stack(ctx, entries[1:])
    else:
        old = ctx.cwd
        if not _chdir(ctx, args[0]):
            return 1
        _set_stack(ctx, [old, *saved])
    _print_stack(ctx)
    return 0


@command("popd", SPECIAL)
def _popd(ctx: Ctx, argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "-n"]
    saved = _stack(ctx)
    if not saved:
        ctx.error("directory stack empty")
        return 1
    if args:
        idx = _rotation(args[0], len(saved) + 1)
        if idx is None or idx < 0:
            ctx.error(f"{args[0]}: directory stack index out of range" if idx is not None
                      else f"{args[0]}: invalid argument")
            return 1
        if idx > 0:
            del saved[idx - 1]
            _set_stack(ctx, saved)
            _print_stack(ctx)
            return 0
    if not _chdir(ctx, saved[0]):
        return 1
    _set_stack(ctx, saved[1:])
    _print_stack(ctx)
    return 0


@command("dirs", SPECIAL)
def _dirs(ctx: Ctx, argv: list[str]) -> int:
    opts, _rest = getopts(argv, "clpv")
    if opts.get("c"):
        _set_stack(ctx, [])
        return 0
    _print_stack(ctx, lines=bool(opts.get("p")), numbered=bool(opts.get("v")),
                 long=bool(opts.get("l")))
    return 0


# -- getopts --------------------------------------------------------------------------------

# Where getopts is inside a bundle of options (`-abc`): per session state, keyed by the
# State object's id, with the OPTIND and word it belongs to so a reset starts afresh; an
# entry lives only while a bundle is half read. Locking: none needed; a key belongs to
# one session (whose Shell serialises its exec calls) and dict operations are atomic.
_POSITIONS: dict[int, tuple[int, str, int]] = {}


@command("getopts", SPECIAL)
def _getopts(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 3:
        ctx.error("usage: getopts optstring name [arg ...]")
        return 2
    spec, var = argv[1], argv[2]
    st = ctx.shell.st
    args = argv[3:] if len(argv) > 3 else list(st.positional)
    silent = spec.startswith(":")
    spec = spec.lstrip(":")
    try:
        optind = max(int(st.vars.get("OPTIND", "1")), 1)
    except ValueError:
        optind = 1
    key = id(st)
    pos = 1
    saved = _POSITIONS.get(key)
    if saved is not None and saved[0] == optind and optind - 1 < len(args) and (
            saved[1] == args[optind - 1]):
        pos = saved[2]
    _POSITIONS.pop(key, None)
    st.vars.pop("OPTARG", None)
    if optind - 1 >= len(args):
        return _getopts_end(st, var, optind)
    word = args[optind - 1]
    if word == "--":
        return _getopts_end(st, var, optind + 1)
    if not word.startswith("-") or word == "-":
        return _getopts_end(st, var, optind)
    c = word[pos]
    nxt = pos + 1
    at_end = nxt >= len(word)
    if c not in spec or c == ":":
        if silent:
            st.vars["OPTARG"] = c
        else:
            ctx.stderr.write(to_bytes(f"{st.name}: illegal option -- {c}\n"))
        st.vars[var] = "?"
    elif spec[spec.index(c) + 1:spec.index(c) + 2] == ":":
        if not at_end:
            st.vars["OPTARG"] = word[nxt:]
            optind += 1
        elif optind < len(args):
            st.vars["OPTARG"] = args[optind]
            optind += 2
        else:
            if silent:
                st.vars["OPTARG"] = c
                st.vars[var] = ":"
            else:
                ctx.stderr.write(to_bytes(f"{st.name}: option requires an argument -- {c}\n"))
                st.vars[var] = "?"
            st.vars["OPTIND"] = str(optind + 1)
            return 0
        st.vars[var] = c
        st.vars["OPTIND"] = str(optind)
        return 0
    else:
        st.vars[var] = c
    if at_end:
        optind += 1
    else:
        _POSITIONS[key] = (optind, word, nxt)
    st.vars["OPTIND"] = str(optind)
    return 0


def _getopts_end(st: State, var: str, optind: int) -> int:
    st.vars[var] = "?"
    st.vars["OPTIND"] = str(optind)
    return 1


@command("cd", SPECIAL)
def _cd(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    target = argv[1] if len(argv) > 1 else st.vars.get("HOME", "/")
    if target == "-":
        target = st.vars.get("OLDPWD", st.cwd)
        ctx.write(target + "\n")
    path = ctx.resolve(target)
    try:
        if not ctx.namespace.stat(path).is_dir:
            ctx.error(f"{target}: Not a directory")
            return 1
    except FsError as e:
        ctx.error(f"{target}: {strerror(e)}")
        return 1
    st.vars["OLDPWD"] = st.cwd
    st.cwd = path
    st.vars["PWD"] = path
    return 0


@command("export readonly", SPECIAL)
def _export(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    names = [a for a in argv[1:] if not a.startswith("-")]
    if not names:
        for k in sorted(st.exported):
            if k in st.vars:
                ctx.write(f"export {k}='{st.vars[k]}'\n")
        return 0
    for a in names:
        name, eq, value = a.partition("=")
        if eq:
            st.vars[name] = value
        if argv[0] == "export" or "-x" in argv:
            st.exported.add(name)
    return 0


@command("declare typeset", SPECIAL)
def _declare(ctx: Ctx, argv: list[str]) -> int:
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-"))
    names = [a for a in argv[1:] if not a.startswith(("-", "+"))]
    if ctx.shell.st.locals and "g" not in flags:
        status = _local(ctx, ["local", *names])
    else:
        status = 0
        for a in names:
            name, eq, value = a.partition("=")
            if eq:
                ctx.shell.st.vars[name] = value
            else:
                ctx.shell.st.vars.setdefault(name, "")
    if "x" in flags:
        ctx.shell.st.exported.update(a.partition("=")[0] for a in names)
    if "a" in flags or "A" in flags:  # indexed arrays only
        for a in names:
            name = a.partition("=")[0]
            if not ctx.shell.st.vars.get(name):
                ctx.shell.st.vars.pop(name, None)
                ctx.shell.st.arrays.setdefault(name, {})
    return status


@command("local", SPECIAL)
def _local(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    if not st.locals:
        ctx.error("can only be used in a function")
        return 1
    frame = st.locals[-1]
    for a in argv[1:]:
        name, eq, value = a.partition("=")
        if name not in frame:
            frame[name] = st.vars.get(name)
        if eq:
            st.vars[name] = value
        else:
            st.vars.setdefault(name, "")
    return 0


@command("unset", SPECIAL)
def _unset(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    opts, names = getopts(argv, "vf")
    for n in names:
        m = re.fullmatch(r"(\w+)\[(.*)\]", n)
        if opts.get("f"):
            st.functions.pop(n, None)
        elif m is not None:
            if m.group(1) in st.arrays:
                st.arrays[m.group(1)].pop(ctx.shell.arith(m.group(2)), None)
        else:
            st.vars.pop(n, None)
            st.arrays.pop(n, None)
            st.exported.discard(n)
    return 0


@command("exit", SPECIAL)
def _exit(ctx: Ctx, argv: list[str]) -> int:
    raise ShellExit(int_arg(ctx, argv[1]) & 255 if len(argv) > 1 else ctx.shell.st.status)


@command("return", SPECIAL)
def _return(ctx: Ctx, argv: list[str]) -> int:
    raise _Return(int_arg(ctx, argv[1]) & 255 if len(argv) > 1 else ctx.shell.st.status)


@command("break continue", SPECIAL)
def _break(ctx: Ctx, argv: list[str]) -> int:
    raise _LoopJump(int_arg(ctx, argv[1]) if len(argv) > 1 else 1, argv[0] == "break")


_OPTION_LETTERS = {"e": "errexit", "x": "xtrace", "u": "nounset", "f": "noglob",
                   "v": "verbose", "C": "noclobber", "a": "allexport", "h": "hashall",
                   "b": "notify", "m": "monitor", "n": "noexec"}


def set_options(opts: set[str], argv: list[str]) -> list[str] | None:
    """Apply ``-e``/``+e``/``-o name`` options from ``argv``; return the remaining
    positional arguments (None if no ``--`` or operand was given)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return argv[i + 1:]
        if a in ("-o", "+o"):
            if i + 1 < len(argv):
                (opts.add if a == "-o" else opts.discard)(argv[i + 1])
            i += 2
            continue
        if len(a) > 1 and a[0] in "-+":
            i += 1
            for c in a[1:]:
                if c == "o":  # -euo pipefail
                    name = argv[i] if i < len(argv) else ""
                    i += 1
                else:
                    name = _OPTION_LETTERS.get(c, "")
                if not name:
                    raise Usage(f"-{c}: invalid option")
                (opts.add if a[0] == "-" else opts.discard)(name)
            continue
        return argv[i:]
    return None


@command("set", SPECIAL)
def _set(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    if len(argv) == 1:
        for k in sorted(st.vars):
            ctx.write(f"{k}='{st.vars[k]}'\n")
        return 0
    rest = set_options(st.options, argv[1:])
    if rest is not None:
        st.positional = rest
    return 0


@command("shift", SPECIAL)
def _shift(ctx: Ctx, argv: list[str]) -> int:
    st = ctx.shell.st
    n = int_arg(ctx, argv[1]) if len(argv) > 1 else 1
    if n > len(st.positional):
        return 1
    st.positional = st.positional[n:]
    return 0


@command("read", SPECIAL)
def _read(ctx: Ctx, argv: list[str]) -> int:
    opts, names = getopts(argv, "rs", "pdntu", permute=False)
    delim = to_bytes(str(opts["d"]))[:1] or b"\0" if "d" in opts else b"\n"
    raw = ctx.stdin_stream.readline(delim)
    if not opts.get("r"):
        while raw.endswith(b"\\" + delim):
            raw = raw[:-2] + ctx.stdin_stream.readline(delim)
    eof = not raw.endswith(delim)
    line = text(raw[:-1] if not eof else raw)
    if not opts.get("r"):
        line = re.sub(r"\\(.)", r"\1", line)
    st = ctx.shell.st
    ifs = st.vars.get("IFS", " \t\n")
    if not names:  # REPLY keeps the line as read
        names = ["REPLY"]
        values = [line]
    else:
        ws = "".join(c for c in ifs if c in " \t\n")
        line = line.strip(ws) if ws else line
        values = []
        for i in range(len(names)):
            if i == len(names) - 1 or not ifs:
                values.append(line.rstrip(ws) if ws else line)
                break
            m = re.search("[" + re.escape(ifs) + "]", line)
            if m is None:
                values.append(line)
                line = ""
                continue
            values.append(line[:m.start()])
            line = line[m.end():]
            line = line.lstrip(ws) if ws else line
            if m.group() in ws and line[:1] and line[0] in ifs and line[0] not in ws:
                line = line[1:].lstrip(ws)
    for i, name in enumerate(names):
        st.vars[name] = values[i] if i < len(values) else ""
    return 1 if eof and not raw else (1 if eof else 0)


@command("eval", SPECIAL)
def _eval(ctx: Ctx, argv: list[str]) -> int:
    return ctx.shell.run_nested(" ".join(argv[1:]), ctx.io)


@command(". source", SPECIAL)
def _source(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.error("filename argument required")
        return 2
    try:
        src = text(ctx.read_file(argv[1]))
    except FsError as e:
        return ctx.fs_error(e, argv[1])
    st = ctx.shell.st
    saved = st.positional
    if len(argv) > 2:
        st.positional = argv[2:]
    try:
        return ctx.shell.run_nested(src, ctx.io)
    finally:
        if len(argv) > 2:
            st.positional = saved


@command("exec", SPECIAL)
def _exec(ctx: Ctx, argv: list[str]) -> int:
    if len(argv) == 1:
        return 0
    raise ShellExit(ctx.run(argv[1:]))


@command("trap", SPECIAL)
def _trap(ctx: Ctx, argv: list[str]) -> int:
    """Only the EXIT trap runs: when the script (an ``exec`` call, ``sh file``) ends.
    Other traps are accepted and ignored, as no signals reach the shell."""
    args = argv[1:]
    if len(args) >= 2 and any(a in ("EXIT", "0") for a in args[1:]):
        ctx.shell.st.exit_trap = None if args[0] in ("-", "") else args[0]
    return 0


@command("wait", SPECIAL)
def _wait(ctx: Ctx, argv: list[str]) -> int:
    """``wait [ID...]``: every background job, or each one named (``$!``); the status of
    the last named, 127 for one this shell did not start."""
    status = 0
    named: list[str | None] = list(argv[1:])
    for arg in named or [None]:
        if arg is not None and not arg.isdigit():
            ctx.error(f"`{arg}': not a pid or valid job spec")
            return 1
        got = ctx.shell.jobs.wait(None if arg is None else int(arg), current())
        if got is None:
            ctx.error(f"pid {arg} is not a child of this shell")
        status = 127 if got is None else got
    return status


@command("umask alias unalias hash ulimit shopt disown", SPECIAL)
def _noop(ctx: Ctx, argv: list[str]) -> int:
    return 0


@command("sh bash dash", SPECIAL)
def _sh(ctx: Ctx, argv: list[str]) -> int:
    """``sh [-eux] [-o opt] (-c cmd [name [args]] | file [args] | < script)``."""
    opts: set[str] = set()
    args = argv[1:]
    command_mode = False
    while args and args[0][:1] in ("-", "+") and args[0] not in ("-", "--"):
        a = args.pop(0)
        flags = a[1:]
        command_mode = command_mode or "c" in flags
        shell_flags = "".join(f for f in flags if f in _OPTION_LETTERS)
        if shell_flags:
            set_options(opts, [a[0] + shell_flags])
        if "o" in flags and args:
            set_options(opts, [a[0] + "o", args.pop(0)])
    if args and args[0] in ("-", "--"):
        args.pop(0)
    if command_mode:
        if not args:
            raise Usage("-c: option requires an argument")
        src, args = args[0], args[1:]
        name = args.pop(0) if args else argv[0]
    elif args:
        name = args.pop(0)
        try:
            src = text(ctx.read_file(name))
        except FsError as e:
            ctx.error(f"{name}: {strerror(e)}")
            return 127
    else:
        src, name = text(ctx.stdin), argv[0]
    return ctx.shell.run_child(src, name, args, opts, ctx.io, ctx.env)


@command("pwd", COMMANDS)
def _pwd(ctx: Ctx, argv: list[str]) -> int:
    ctx.write(ctx.cwd + "\n")
    return 0
