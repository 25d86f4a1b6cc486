"""Commands about the shell's own state: ``which``, ``command -v/-V``, ``type``, ``env``,
``pushd``/``popd``/``dirs`` and ``getopts``.

These read or change the session (``ctx.shell.st``: variables, cwd, functions), so they
register as state builtins. Utilities are reported where scripts expect them,
``/usr/bin/<name>``, and that path runs them (``Interp.standard_command``); programs in
the namespace's ``PATH`` are reported by their path.
"""

from __future__ import annotations

from ..context import Ctx, State, strerror
from ..interp import Interp
from ..table import COMMANDS, SPECIAL, command, getopts
from ._util import Usage, to_bytes

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


@command("which", SPECIAL)
def _which(ctx: Ctx, argv: list[str]) -> int:
    opts, names = getopts(argv, "as")
    status = 0
    for name in names:
        found = locate(ctx.shell, name)
        if found is None or found[0] in ("keyword", "function") or name in SPECIAL:
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
