"""The shell interpreter: runs parsed scripts over a Namespace.

Every command runs in this process: the stages of a pipeline run at once, each on a
thread with its own copy of the interpreter, joined by bounded pipes (``Pipe``); a
subshell runs on a copy of the shell state. Work stops when the thread's cancel scope
(``oanix.shell.cancel``) expires: it is checked at every command and loop iteration, in
every blocking wait, and by long builtins through ``Ctx.check()``.
Files are only ever reached through the namespace. Programs found in the ``PATH``
directories of the namespace run through the ``run_program`` hook (wasm) or, for shell
scripts, in a child shell.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

from .. import paths
from ..errors import FsError
from ..service import FileService
from .arith import arith_eval
from .cancel import Cancelled, CancelScope, check, current, entered
from .cond import cond_eval
from .context import (
    _WORKERS,
    IO,
    OUTPUT_CAP,
    CommandFn,
    ControlFlow,
    Ctx,
    ExecResult,
    Input,
    InputTooLarge,
    Output,
    Pipe,
    PipeClosed,
    PipeInput,
    RunProgram,
    ShellExit,
    State,
    Writer,
    _CommandError,
    _LoopJump,
    _Null,
    _Return,
    resolve,
    size_text,
    strerror,
)
from .lexer import DQ, SQ, CmdSub, Lit, Param, Part, ShellSyntaxError, Word, merge_parts
from .parser import (
    AndOr,
    ArithCmd,
    Assign,
    Case,
    Command,
    For,
    ForArith,
    FuncDef,
    Group,
    If,
    Pipeline,
    Redir,
    Script,
    Simple,
    Subshell,
    While,
    parse,
)
from .patterns import GLOB_MAGIC, glob_regex
from .rx import RegexTimeout
from .table import COMMANDS, SPECIAL

__all__ = ["Interp", "MAX_DEPTH", "MAX_VALUE", "STANDARD_DIRS"]

STANDARD_DIRS = frozenset(["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"])
MAX_DEPTH = 60  # nested commands (function calls, substitutions, eval)
MAX_VALUE = 64 << 20  # characters of a variable, a substitution, a here-document

_COND_OPS = frozenset(["&&", "||", "!", "(", ")", "==", "=", "!=", "=~", "<", ">", "-eq",
                       "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef", "-e", "-f",
                       "-d", "-s", "-z", "-n", "-r", "-w", "-x", "-L", "-h"])


# -- the interpreter -------------------------------------------------------------------


class Interp:
    """Runs scripts; holds the shell state between ``exec`` calls.

    Locking: not thread-safe by design; ``Shell`` serialises calls with a lock, and each
    pipeline stage runs on a copy of its own (``_stage_interp``): the copies share only
    the namespace, the command tables and the output streams (which lock).
    """

    def __init__(self, namespace: FileService, env: dict[str, str], cwd: str,
                 commands: dict[str, CommandFn], run_program: RunProgram | None) -> None:
        self.namespace = namespace
        self.commands = commands
        self.utilities = COMMANDS
        self.run_program = run_program
        env = dict(env)
        env.setdefault("PATH", "/bin")
        env.setdefault("IFS", " \t\n")
        self.st = State(env, set(env) - {"IFS"}, cwd=paths.normalize(cwd))
        self.st.vars["PWD"] = self.st.cwd
        self.st.exported.add("PWD")
        self.cond_depth = 0
        self.depth = 0
        self.err: Writer = _Null()  # stderr for expansion errors and substitutions
        self._cmdsub_status: int | None = None
        self._exec_files: list[BinaryIO] = []  # opened by `exec >file`, closed after exec()

    # -- entry points --------------------------------------------------------------------

    def exec(self, src: str, stdin: bytes, timeout: float | None = None,
             scope: CancelScope | None = None, max_output: int | None = OUTPUT_CAP
             ) -> ExecResult:
        """Run ``src`` under a new cancel scope (a child of ``scope``) ending after
        ``timeout`` seconds: then the work stops and the status is 124."""
        out, err = Output(max_output), Output(max_output)
        io = IO(Input(stdin), {1: out, 2: err})
        mine = CancelScope(scope, timeout, reason="timed out")
        timed_out = False
        try:
            with entered(mine):
                try:
                    status = self.run_source(src, io)
                    trap, self.st.exit_trap = self.st.exit_trap, None
                    if trap:  # an EXIT trap set by this script runs when it ends
                        self.run_source(trap, io)
                        self.st.status = status
                    # a program stopped by the time left (wasm) ends the line as it stops
                    timed_out = status == 124 and mine.expired_scope() is not None
                except Cancelled as c:
                    timed_out, status = True, 124
                    self.st.status = status
                    self.st.exit_trap = None
                    err.write(f"{self.st.name}: {c.scope.reason}\n".encode())
        finally:
            for f in self._exec_files:
                with suppress(FsError):
                    f.close()
            self._exec_files.clear()
        return ExecResult(bytes(out.buf), bytes(err.buf), status, timed_out,
                          out.truncated, err.truncated)

    def run_source(self, src: str, io: IO) -> int:
        """Parse and run ``src`` in the current state; ``exit`` ends it."""
        try:
            script = parse(src)
        except ShellSyntaxError as e:
            io.stderr.write(f"{self.st.name}: {e}\n".encode())
            self.st.status = 2
            return 2
        except RecursionError:
            io.stderr.write(f"{self.st.name}: syntax error: nesting too deep\n".encode())
            self.st.status = 2
            return 2
        self.cond_depth = 0
        self.err = io.stderr
        try:
            return self.run_script(script, io)
        except ShellExit as e:
            self.st.status = e.status
            return e.status
        except (_LoopJump, _Return):
            return self.st.status
        except RecursionError:
            io.stderr.write(f"{self.st.name}: maximum nesting depth exceeded\n".encode())
            self.st.status = 2
            return 2

    def run_nested(self, src: str, io: IO) -> int:
        """Parse and run ``src`` in the current state (``eval``, ``.``)."""
        try:
            script = parse(src)
        except ShellSyntaxError as e:
            io.stderr.write(f"{self.st.name}: {e}\n".encode())
            return 2
        except RecursionError:
            io.stderr.write(f"{self.st.name}: syntax error: nesting too deep\n".encode())
            return 2
        try:
            return self.run_script(script, io)
        except _Return as r:
            return r.status

    # -- lists and pipelines -------------------------------------------------------------

    def run_script(self, script: Script, io: IO) -> int:
        status = 0
        for item in script.items:
            status = self.run_and_or(item, io)
        return status

    def run_and_or(self, a: AndOr, io: IO) -> int:
        last = len(a.rest)
        status = self.run_pipeline(a.first, io, cond=last > 0)
        for i, (op, p) in enumerate(a.rest, 1):
            if (op == "&&") == (status == 0):
                status = self.run_pipeline(p, io, cond=i < last)
        return status

    def run_pipeline(self, p: Pipeline, io: IO, cond: bool = False) -> int:
        quiet = cond or p.negated
        self.cond_depth += quiet
        try:
            if len(p.commands) == 1:
                status = self.run_command(p.commands[0], io)
            else:
                status = self._run_stages(p.commands, io)
        finally:
            self.cond_depth -= quiet
        if p.negated:
            status = int(status == 0)
        self.st.status = status
        if status and not quiet and self.cond_depth == 0 and "errexit" in self.st.options:
            raise ShellExit(status)
        return status

    def _run_stages(self, commands: tuple[Command, ...], io: IO) -> int:
        """Run the stages at once, each on a copy of the state and (but the last) on a
        thread of its own, joined by bounded pipes."""
        n = len(commands)
        pipes = [Pipe() for _ in range(n - 1)]
        statuses = [0] * n
        errors: list[BaseException] = []
        scope = current() or CancelScope()

        def stage(i: int) -> None:
            stdin = io.stdin if i == 0 else PipeInput(pipes[i - 1])
            out = dict(io.out)
            if i < n - 1:
                out[1] = pipes[i]
            child = self._stage_interp()
            try:
                with entered(scope):
                    statuses[i] = child._run_stage(commands[i], IO(stdin, out))
            except BaseException as e:  # re-raised on the calling thread
                errors.append(e)
                statuses[i] = 1
            finally:
                if i < n - 1:
                    pipes[i].close_write()
                if i > 0:
                    stdin.close()

        done = [_WORKERS.submit(functools.partial(stage, i)) for i in range(n - 1)]
        try:
            stage(n - 1)
        finally:
            for d in done:
                d.wait()
        cancelled = next((e for e in errors if isinstance(e, Cancelled)), None)
        if cancelled is not None:
            raise cancelled
        if errors:
            raise errors[0]
        if "pipefail" in self.st.options:
            return next((s for s in reversed(statuses) if s), 0)
        return statuses[-1]

    def _stage_interp(self) -> Interp:
        """A copy of this interpreter for one pipeline stage: its own state (a subshell),
        the same namespace and commands."""
        child = Interp.__new__(Interp)
        child.__dict__.update(self.__dict__)
        child.st = self.st.copy()
        child._exec_files = []
        return child

    def _run_stage(self, cmd: Command, io: IO) -> int:
        try:
            return self._catch_exit(functools.partial(self.run_command, cmd, io))
        except PipeClosed:
            return 141
        finally:
            for f in self._exec_files:
                with suppress(FsError):
                    f.close()

    @contextmanager
    def subshell(self) -> Iterator[None]:
        """Run the block on a copy of the state (restored afterwards)."""
        saved, depth = self.st, self.cond_depth
        self.st = saved.copy()
        try:
            yield
        finally:
            self.st, self.cond_depth = saved, depth

    def _catch_exit(self, fn: Callable[[], int]) -> int:
        try:
            return fn()
        except ShellExit as e:
            return e.status
        except _Return as e:
            return e.status
        except _LoopJump:
            return self.st.status

    # -- commands ------------------------------------------------------------------------

    def run_command(self, cmd: Command, io: IO) -> int:
        check()
        self.err = io.stderr
        if isinstance(cmd, Simple):
            return self.run_simple(cmd, io)
        if isinstance(cmd, FuncDef):
            self.st.functions[cmd.name] = cmd.body
            return 0
        try:
            with self.redirected(cmd.redirs, io) as rio:
                return self._run_compound(cmd, rio)
        except _CommandError as e:
            io.stderr.write(f"{self.st.name}: {e}\n".encode())
            return 1

    def _run_compound(self, cmd: Command, io: IO) -> int:
        if isinstance(cmd, Group):
            return self.run_script(cmd.body, io)
        if isinstance(cmd, Subshell):
            with self.subshell():
                return self._catch_exit(lambda: self.run_script(cmd.body, io))
        if isinstance(cmd, If):
            for cond, body in cmd.clauses:
                if self._condition(cond, io) == 0:
                    return self.run_script(body, io)
            return self.run_script(cmd.orelse, io) if cmd.orelse is not None else 0
        if isinstance(cmd, While):
            return self._loop(cmd, io)
        if isinstance(cmd, For):
            items = (list(self.st.positional) if cmd.items is None
                     else self.expand_words(cmd.items))
            status = 0
            for item in items:
                check()
                self.set_var(cmd.var, item)
                jump = self._loop_body(cmd.body, io)
                status = self.st.status
                if jump == "break":
                    break
            return status
        if isinstance(cmd, ForArith):
            return self._for_arith(cmd, io)
        if isinstance(cmd, ArithCmd):
            self.err = io.stderr
            return int(self.arith(self.expand_string(cmd.expr)) == 0)
        assert isinstance(cmd, Case)
        subject = self.expand_string(cmd.word)
        for arm in cmd.arms:
            for pat in arm.patterns:
                if re.fullmatch(self.expand_pattern(pat), subject, re.DOTALL):
                    return self.run_script(arm.body, io)
        return 0

    def _for_arith(self, cmd: ForArith, io: IO) -> int:
        self.err = io.stderr
        self.arith(self.expand_string(cmd.init))
        status = 0
        while True:
            check()
            cond = self.expand_string(cmd.cond)
            if cond.strip() and self.arith(cond) == 0:
                break
            jump = self._loop_body(cmd.body, io)
            status = self.st.status
            if jump == "break":
                break
            self.arith(self.expand_string(cmd.step))
        return status

    def _condition(self, script: Script, io: IO) -> int:
        self.cond_depth += 1
        try:
            return self.run_script(script, io)
        finally:
            self.cond_depth -= 1

    def _loop(self, cmd: While, io: IO) -> int:
        status = 0
        while (self._condition(cmd.cond, io) == 0) != cmd.until:
            check()
            jump = self._loop_body(cmd.body, io)
            status = self.st.status
            if jump == "break":
                break
        return status

    def _loop_body(self, body: Script, io: IO) -> str | None:
        try:
            self.st.status = self.run_script(body, io)
        except _LoopJump as j:
            if j.count > 1:
                j.count -= 1
                raise
            return "break" if j.is_break else "continue"
        return None

    # -- simple commands -----------------------------------------------------------------

    def run_simple(self, cmd: Simple, io: IO) -> int:
        self._cmdsub_status = None
        self.err = io.stderr
        if cmd.words and cmd.words[0].literal() == "[[":
            return self._run_cond(cmd, io)
        argv = self.expand_words(cmd.words)
        if argv == ["exec"] and cmd.redirs and "exec" not in self.st.functions:
            # `exec >log 2>&1`: the redirections stay for the rest of this script.
            try:
                for r in cmd.redirs:
                    self._redirect(r, io, self._exec_files)
            except _CommandError as e:
                io.stderr.write(f"{self.st.name}: {e}\n".encode())
                return 1
            return 0
        if not argv:
            # Assignments happen in order: `a=1 b=$a` sets b to 1.
            for a in cmd.assigns:
                value = self.assign(a)
                if "xtrace" in self.st.options:
                    self._trace([f"{a.name}={value}"], io)
            status = self._cmdsub_status or 0
            if cmd.redirs:
                try:
                    with self.redirected(cmd.redirs, io):
                        pass
                except _CommandError as e:
                    io.stderr.write(f"{self.st.name}: {e}\n".encode())
                    return 1
            return status
        saved: dict[str, tuple[str | None, bool]] = {}
        shown: list[str] = []
        for a in cmd.assigns:  # `NAME=value cmd`: set for the command only
            value = self.expand_string(a.value)
            saved.setdefault(a.name, (self.st.vars.get(a.name), a.name in self.st.exported))
            self.st.vars[a.name] = value
            self.st.exported.add(a.name)
            shown.append(f"{a.name}={value}")
        if "xtrace" in self.st.options:
            self._trace(shown + argv, io)
        try:
            with self.redirected(cmd.redirs, io) as rio:
                return self.run_argv(argv, rio, self.st.env())
        except _CommandError as e:
            io.stderr.write(f"{self.st.name}: {e}\n".encode())
            return 1
        finally:
            for name, (old, was_exported) in saved.items():
                if old is None:
                    self.st.vars.pop(name, None)
                else:
                    self.st.vars[name] = old
                if not was_exported:
                    self.st.exported.discard(name)

    def _run_cond(self, cmd: Simple, io: IO) -> int:
        """``[[ ... ]]``: words are not split or globbed; ``==`` matches a pattern."""
        items: list[tuple[str, bool]] = []
        words = cmd.words[1:-1]
        for i, w in enumerate(words):
            lit = w.literal()
            prev = words[i - 1].literal() if i else None
            if lit is not None and lit in _COND_OPS:
                items.append((lit, True))
            elif prev in ("==", "=", "!="):
                items.append((self.expand_pattern(w), False))
            else:
                items.append((self.expand_string(w), False))
        if "xtrace" in self.st.options:
            self._trace(["[[", *(t for t, _ in items), "]]"], io)
        ctx = Ctx(self, io, self.st.env(), "[[")
        return cond_eval(ctx, items)

    def _trace(self, words: list[str], io: IO) -> None:
        io.stderr.write(("+ " + " ".join(_quote(w) for w in words) + "\n").encode())

    def run_argv(self, argv: list[str], io: IO, env: dict[str, str]) -> int:
        """Find and run command ``argv[0]``: a function, a builtin, a command given to
        the shell, or a program in ``PATH``."""
        name = argv[0]
        check()
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                io.stderr.write(f"{self.st.name}: {name}: maximum recursion depth\n".encode())
                return 2
            func = self.st.functions.get(name)
            if func is not None:
                return self._call_function(func, argv, io)
            fn = SPECIAL.get(name) or self.commands.get(name) or self.utilities.get(name)
            if fn is not None:
                return self._call(fn, argv, io, env)
            return self._run_external(argv, io, env)
        finally:
            self.depth -= 1

    def _call(self, fn: CommandFn, argv: list[str], io: IO, env: dict[str, str]) -> int:
        ctx = Ctx(self, io, env, argv[0])
        try:
            return fn(ctx, argv)
        except (ControlFlow, RecursionError):
            raise
        except FsError as e:
            return ctx.fs_error(e)
        except (RegexTimeout, InputTooLarge) as e:
            ctx.error(str(e))
            return 2
        except Exception as e:  # a command's bug must not take the shell down
            ctx.error(f"{type(e).__name__}: {e}")
            return 1

    def _call_function(self, body: Command, argv: list[str], io: IO) -> int:
        saved = self.st.positional
        self.st.positional = argv[1:]
        self.st.locals.append({})
        try:
            return self.run_command(body, io)
        except _Return as r:
            return r.status
        finally:
            self.st.positional = saved
            frame = self.st.locals.pop()
            for name, old in frame.items():
                if old is None:
                    self.st.vars.pop(name, None)
                else:
                    self.st.vars[name] = old

    def find_program(self, name: str) -> str | None:
        """The namespace path of program ``name`` (searched in ``PATH``), or None."""
        if "/" in name:
            path = resolve(self.st.cwd, name)
            return path if self.namespace.exists(path) else None
        for d in self.st.vars.get("PATH", "/bin").split(":"):
            path = resolve(self.st.cwd, d or ".") + "/" + name
            try:
                if self.namespace.is_file(path):
                    return paths.normalize(path)
            except FsError:
                continue
        return None

    def standard_command(self, name: str) -> CommandFn | None:
        """The command a usual path names (``/usr/bin/env``, ``/bin/sh``) when the namespace
        has no such file: the builtin of that name, or None."""
        folder, base = paths.split(resolve(self.st.cwd, name))
        if folder not in STANDARD_DIRS:
            return None
        return SPECIAL.get(base) or self.commands.get(base) or self.utilities.get(base)

    def _run_external(self, argv: list[str], io: IO, env: dict[str, str]) -> int:
        name = argv[0]
        path = self.find_program(name)
        err = io.stderr
        if path is None and (fn := self.standard_command(name)) is not None:
            return self._call(fn, [paths.basename(name), *argv[1:]], io, env)
        if path is None:
            msg = "No such file or directory" if "/" in name else "command not found"
            err.write(f"{self.st.name}: {name}: {msg}\n".encode())
            return 127
        try:
            if self.namespace.is_dir(path):
                err.write(f"{self.st.name}: {name}: Is a directory\n".encode())
                return 126
            head = self.namespace.read_bytes(path)
        except FsError as e:
            err.write(f"{self.st.name}: {name}: {strerror(e)}\n".encode())
            return 126
        if head.startswith(b"\0asm"):
            if self.run_program is None:
                err.write(f"{self.st.name}: {name}: cannot execute: no program runner\n"
                          .encode())
                return 126
            code, out, errb = self.run_program(path, argv, env, self.st.cwd,
                                               io.stdin.read_all())
            io.stdout.write(out)
            err.write(errb)
            return code
        if head.startswith(b"#!"):
            line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
            if line and line[0].endswith("/env"):
                line = line[1:] if line[1:2] != ["-S"] else line[2:]
            interp = paths.basename(line[0]) if line else "sh"
            if interp not in ("sh", "bash", "dash", "ash"):
                return self.run_argv([interp, *line[1:], path, *argv[1:]], io, env)
            return self.run_argv(["sh", *line[1:], path, *argv[1:]], io, env)
        if b"\0" in head[:1024]:
            err.write(f"{self.st.name}: {name}: cannot execute binary file\n".encode())
            return 126
        return self.run_argv(["sh", path, *argv[1:]], io, env)

    def run_child(self, src: str, name: str, args: list[str], options: set[str],
                  io: IO, env: dict[str, str]) -> int:
        """Run ``src`` in a child shell: exported variables only, no functions."""
        child = State(dict(env), set(env), cwd=self.st.cwd, positional=list(args),
                      options=options, name=name)
        child.vars.setdefault("IFS", " \t\n")
        saved, depth = self.st, self.cond_depth
        self.st = child
        try:
            status = self.run_source(src, io)
            trap, child.exit_trap = child.exit_trap, None
            if trap:
                self.run_source(trap, io)
            return status
        finally:
            self.st, self.cond_depth = saved, depth

    # -- redirections --------------------------------------------------------------------

    @contextmanager
    def redirected(self, redirs: tuple[Redir, ...], io: IO) -> Iterator[IO]:
        if not redirs:
            yield io
            return
        opened: list[BinaryIO] = []
        new = IO(io.stdin, dict(io.out))
        try:
            for r in redirs:
                self._redirect(r, new, opened)
            yield new
        finally:
            for f in opened:
                with suppress(FsError):
                    f.close()

    def _redirect(self, r: Redir, io: IO, opened: list[BinaryIO]) -> None:
        op = r.op
        if op in ("<<", "<<-"):
            text = self.expand_string(r.body) if r.body is not None else r.heredoc or ""
            if len(text) > MAX_VALUE:
                raise self._fatal(f"here-document larger than {size_text(MAX_VALUE)}", 2)
            io.stdin = Input(text.encode("utf-8", "surrogateescape"))
            return
        target = self.expand_string(r.target)
        if op == "<<<":
            io.stdin = Input((target + "\n").encode("utf-8", "surrogateescape"))
            return
        if op in (">&", "<&") and (target.isdigit() or target == "-"):
            fd = r.fd if r.fd is not None else (1 if op == ">&" else 0)
            if op == "<&" or fd == 0:
                return
            if target == "-":
                io.out[fd] = _Null()
            elif int(target) in io.out:
                io.out[fd] = io.out[int(target)]
            else:
                raise _CommandError(f"{target}: Bad file descriptor")
            return
        if op in ("<", "<>"):
            if r.fd not in (None, 0):
                return
            try:
                if target in ("/dev/null", "/dev/stdin"):
                    data = b"" if target == "/dev/null" else io.stdin.read_all()
                else:
                    data = self.namespace.read_bytes(resolve(self.st.cwd, target))
            except FsError as e:
                raise _CommandError(f"{target}: {strerror(e)}") from None
            io.stdin = Input(data)
            return
        append = op in (">>", "&>>")
        writer = self._open_out(target, append, io, opened)
        if op in ("&>", "&>>", ">&"):
            io.out[1] = io.out[2] = writer
        else:
            io.out[1 if r.fd is None else r.fd] = writer

    def _open_out(self, target: str, append: bool, io: IO,
                  opened: list[BinaryIO]) -> Writer:
        if target == "/dev/null":
            return _Null()
        if target in ("/dev/stdout", "/dev/stderr"):
            return io.out[1 if target == "/dev/stdout" else 2]
        try:
            f = self.namespace.open(resolve(self.st.cwd, target), "ab" if append else "wb")
        except FsError as e:
            raise _CommandError(f"{target}: {strerror(e)}") from None
        opened.append(f)
        return f

    # -- variables -----------------------------------------------------------------------

    def set_var(self, name: str, value: str) -> None:
        if len(value) > MAX_VALUE:
            raise self._fatal(f"{name}: value larger than {size_text(MAX_VALUE)}", 2)
        array = self.st.arrays.get(name)
        if array is not None:
            array[0] = value
        else:
            self.st.vars[name] = value

    def assign(self, a: Assign) -> str:
        """Perform assignment ``a`` in the shell; returns the value (for tracing)."""
        st = self.st
        if a.array is not None:
            items = self.expand_words(a.array)
            array = st.arrays.get(a.name, {}) if a.append else {}
            if a.append and a.name in st.vars and not array:
                array = {0: st.vars[a.name]}
            start = max(array, default=-1) + 1
            array.update(enumerate(items, start))
            st.arrays[a.name] = array
            st.vars.pop(a.name, None)
            return "(" + " ".join(items) + ")"
        value = self.expand_string(a.value)
        if a.index is not None:
            array = st.arrays.setdefault(a.name, {})
            if a.name in st.vars:
                array[0] = st.vars.pop(a.name)
            i = self._element_index(a.name, self.expand_string(a.index))
            value = array.get(i, "") + value if a.append else value
            if len(value) > MAX_VALUE:
                raise self._fatal(f"{a.name}: value larger than {size_text(MAX_VALUE)}", 2)
            array[i] = value
            return value
        if a.append:
            value = (self.get_param(a.name) or "") + value
        self.set_var(a.name, value)
        return value

    def _element_index(self, name: str, text: str) -> int:
        i = self.arith(text)
        if i < 0:
            i += max(self.st.arrays.get(name, {}), default=-1) + 1
        return i

    def array_values(self, name: str) -> list[str]:
        """The elements of array ``name`` in index order (a scalar is a 1-element array)."""
        array = self.st.arrays.get(name)
        if array is None:
            value = self.st.vars.get(name)
            return [] if value is None else [value]
        return [array[k] for k in sorted(array)]

    def get_param(self, name: str) -> str | None:
        st = self.st
        if name in st.vars:
            return st.vars[name]
        if name in st.arrays:
            return st.arrays[name].get(0)
        if name.isdigit():
            n = int(name)
            if n == 0:
                return st.name
            return st.positional[n - 1] if n <= len(st.positional) else None
        if name == "?":
            return str(st.status)
        if name == "#":
            return str(len(st.positional))
        if name in "@*" and name:
            return " ".join(st.positional)
        if name == "$":
            return "4242"
        if name == "RANDOM":
            return str(random.randrange(32768))
        if name == "!":
            return ""
        if name == "-":
            return "".join(sorted(o[0] for o in st.options
                                  if o in ("errexit", "xtrace", "nounset")))
        return None

    # -- expansion -----------------------------------------------------------------------

    def expand_words(self, words: tuple[Word, ...]) -> list[str]:
        """Words to fields: expansion, field splitting, pathname expansion."""
        out: list[str] = []
        for w in words:
            try:
                expanded = brace_expand(w)
            except BraceLimit as e:
                raise self._fatal(f"brace expansion: {e}", 2) from None
            for bw in expanded:
                for field in self._fields(bw):
                    out.extend(self._glob(field))
        return out

    def expand_string(self, word: Word) -> str:
        """A word expanded without splitting or globbing (assignments, targets)."""
        return "".join(self._part_text(p, quoted=True) for p in word.parts)

    def expand_pattern(self, word: Word) -> str:
        """A word as a regex of its glob pattern (quoted parts match literally)."""
        chunks: list[tuple[str, bool]] = []
        for p in word.parts:
            if isinstance(p, Lit):
                chunks.append((p.text, False))
            elif isinstance(p, (SQ, DQ)):
                chunks.append((self._part_text(p, True), True))
            else:
                chunks.append((self._part_text(p, True), False))
        return glob_regex(chunks)

    def _fields(self, word: Word) -> list[list[tuple[str, bool]]]:
        fb = _FieldBuilder(self.st.vars.get("IFS", " \t\n"))
        for i, p in enumerate(word.parts):
            if isinstance(p, Lit):
                text = p.text
                if i == 0 and (text == "~" or text.startswith("~/")):
                    fb.add(self.st.vars.get("HOME", "/"), True)
                    text = text[1:]
                fb.add(text, False)
            elif isinstance(p, SQ):
                fb.add(p.text, True)
            elif isinstance(p, DQ):
                self._dq_fields(p, fb)
            elif isinstance(p, Param) and (args := self._positional_list(p)) is not None:
                for j, arg in enumerate(args):
                    if j:
                        fb.split_break()
                    fb.add_split(arg)
            else:
                fb.add_split(self._part_text(p, quoted=False))
        return fb.finish()

    def _list_kind(self, p: Param) -> str | None:
        """``@`` or ``*`` when ``p`` expands to a list (``$@``, ``${a[*]}``), else None."""
        if p.op not in ("", ":"):
            return None
        if p.index is None:
            return p.name if p.name in ("@", "*") else None
        index = p.index.literal()
        return index if index in ("@", "*") else None

    def _positional_list(self, p: Param) -> list[str] | None:
        """The fields of ``$@``, ``${a[@]}`` and their ``:offset:length`` slices; None for
        a param that is not a list."""
        if self._list_kind(p) is None:
            return None
        if p.index is None:
            args, first = [self.st.name, *self.st.positional], 1
        else:
            args, first = self.array_values(p.name), 0
        if p.op == "":
            return args[first:]
        spec = self._arg(p).split(":", 1)
        start = self.arith(spec[0])
        start = max(len(args) + start, first) if start < 0 else start
        if len(spec) == 1:
            return args[start:]
        return args[start:start + max(self.arith(spec[1]), 0)]

    def _dq_fields(self, p: DQ, fb: _FieldBuilder) -> None:
        only = p.parts[0] if len(p.parts) == 1 else None
        fb.started = fb.started or not (isinstance(only, Param)
                                        and self._list_kind(only) == "@")
        for q in p.parts:
            args = (self._positional_list(q) if isinstance(q, Param)
                    and self._list_kind(q) == "@" else None)
            if args is not None:
                for i, arg in enumerate(args):
                    if i:
                        fb.force_break()
                    fb.add(arg, True)
                    fb.started = True
            elif isinstance(q, Param) and (args := self._positional_list(q)) is not None:
                fb.add(self.st.vars.get("IFS", " ")[:1].join(args), True)
            else:
                fb.add(self._part_text(q, quoted=True), True)

    def _part_text(self, p: Part, quoted: bool) -> str:
        if isinstance(p, (Lit, SQ)):
            return p.text
        if isinstance(p, DQ):
            return "".join(self._part_text(q, True) for q in p.parts)
        if isinstance(p, Param):
            return self._param(p, quoted)
        if isinstance(p, CmdSub):
            return self._command_substitution(p.body)
        return str(self.arith(self.expand_string(p.expr)))

    def arith(self, expr: str) -> int:
        """Evaluate an arithmetic expression; an error is fatal (status 1)."""
        try:
            return arith_eval(expr, self._arith_get, self.set_var)
        except (ValueError, ZeroDivisionError, RecursionError) as e:
            raise self._fatal(f"arithmetic expression: {e}: \"{expr.strip()}\"", 1) from None

    def _arith_get(self, name: str) -> str:
        value = self.get_param(name)
        if value is None and "nounset" in self.st.options:
            raise self._fatal(f"{name}: unbound variable", 127)
        return value or ""

    def _fatal(self, message: str, status: int) -> ShellExit:
        """Report a fatal expansion error; the caller raises the returned exit."""
        self.err.write(f"{self.st.name}: {message}\n".encode("utf-8", "surrogateescape"))
        return ShellExit(status)

    def _param(self, p: Param, quoted: bool) -> str:
        op = p.op
        if p.index is None:
            value = self.get_param(p.name)
        else:
            index = self.expand_string(p.index)
            if index in ("@", "*"):
                values = self.array_values(p.name)
                if op == "len":
                    return str(len(values))
                value = " ".join(values) if values else None
            else:
                value = self.st.arrays.get(p.name, {}).get(
                    self._element_index(p.name, index)) if p.name in self.st.arrays else (
                    self.st.vars.get(p.name) if self.arith(index) == 0 else None)
        if op == "len":
            if p.name in ("@", "*") and p.index is None:
                return str(len(self.st.positional))
            return str(len(self._required(p.name, value)))
        if op in ("", "#", "##", "%", "%%", "/", "//", ":", ",,", "^^", ",", "^"):
            value = self._required(p.name, value)
        if op == "":
            return value or ""
        colon = op.startswith(":")
        empty = value is None or (colon and value == "")
        base = op.lstrip(":")
        if base == "-":
            return self._arg(p) if empty else value or ""
        if base == "=":
            if empty:
                self.set_var(p.name, self._arg(p))
                return self.st.vars[p.name]
            return value or ""
        if base == "+":
            return "" if empty else self._arg(p)
        if base == "?":
            if empty:
                msg = self._arg(p) or "parameter null or not set"
                raise self._fatal(f"{p.name}: {msg}", 1)
            return value or ""
        assert value is not None and p.arg is not None
        rx = re.compile(self.expand_pattern(p.arg), re.DOTALL)
        if base in ("#", "##"):
            rng = range(len(value) + 1) if base == "#" else range(len(value), -1, -1)
            for i in rng:
                if rx.fullmatch(value, 0, i):
                    return value[i:]
            return value
        if base in ("%", "%%"):
            rng = range(len(value), -1, -1) if base == "%" else range(len(value) + 1)
            for i in rng:
                if rx.fullmatch(value, i):
                    return value[:i]
            return value
        if base in (",,", "^^", ",", "^"):
            conv = str.lower if base[0] == "," else str.upper
            return conv(value) if len(base) == 2 else conv(value[:1]) + value[1:]
        if op == ":":
            spec = self._arg(p).split(":", 1)
            start = self.arith(spec[0])
            start = max(len(value) + start, 0) if start < 0 else start
            if len(spec) == 1:
                return value[start:]
            length = self.arith(spec[1])
            return value[start:start + length] if length >= 0 else value[start:length]
        repl = self.expand_string(p.arg2) if p.arg2 is not None else ""
        if not rx.pattern:
            return value
        return rx.sub(lambda _m: repl, value, count=0 if base == "//" else 1)

    def _arg(self, p: Param) -> str:
        return self.expand_string(p.arg) if p.arg is not None else ""

    def _required(self, name: str, value: str | None) -> str:
        if value is None:
            if "nounset" in self.st.options and name not in "@*":
                raise self._fatal(f"{name}: unbound variable", 127)
            return ""
        return value

    def _command_substitution(self, body: Script) -> str:
        only = body.items[0].first.commands[0] if len(body.items) == 1 else None
        if (isinstance(only, Simple) and not only.words and not only.assigns
                and len(only.redirs) == 1 and only.redirs[0].op == "<"):
            # $(< file): the file's content.
            target = self.expand_string(only.redirs[0].target)
            try:
                data = self.namespace.read_bytes(resolve(self.st.cwd, target))
            except FsError as e:
                self.err.write(f"{self.st.name}: {target}: {strerror(e)}\n".encode())
                self._cmdsub_status = self.st.status = 1
                return ""
            return data.decode("utf-8", "surrogateescape").rstrip("\n")
        out = Output(MAX_VALUE, overflow_closes=True)
        err = self.err
        io = IO(Input(b""), {1: out, 2: err})
        with self.subshell():
            self.cond_depth = 0
            try:
                status = self._catch_exit(lambda: self.run_script(body, io))
            except PipeClosed:
                status = 141
        self.err = err
        if out.truncated:
            raise self._fatal(f"command substitution: output larger than {size_text(MAX_VALUE)}",
                              2)
        self.st.status = status
        self._cmdsub_status = status
        return bytes(out.buf).decode("utf-8", "surrogateescape").rstrip("\n")

    # -- globbing ------------------------------------------------------------------------

    def _glob(self, field: list[tuple[str, bool]]) -> list[str]:
        text = "".join(t for t, _ in field)
        if not any(not q and GLOB_MAGIC.search(t) for t, q in field):
            return [text]
        # A pattern string with quoted characters escaped, split into components.
        pattern = "".join(t if not q else re.sub(r"([*?\[\\])", r"\\\1", t)
                          for t, q in field)
        absolute = pattern.startswith("/")
        comps = [c for c in pattern.split("/") if c]
        found: list[str] = []
        self._glob_walk("/" if absolute else self.st.cwd, "/" if absolute else "", comps,
                        found)
        return sorted(found) if found else [text]

    def _glob_walk(self, base: str, shown: str, comps: list[str], found: list[str]) -> None:
        if not comps:
            found.append(shown)
            return
        head, rest = comps[0], comps[1:]
        sep = "" if shown in ("", "/") else "/"
        if not GLOB_MAGIC.search(head):
            name = re.sub(r"\\(.)", r"\1", head)
            child = paths.join(base, name)
            if (rest and self.namespace.is_dir(child)) or (not rest and
                                                          self.namespace.exists(child)):
                self._glob_walk(child, shown + sep + name, rest, found)
            return
        rx = re.compile(glob_regex([(head, False)]), re.DOTALL)
        try:
            entries = self.namespace.scandir(base)
        except FsError:
            return
        for st in entries:
            if st.name.startswith(".") and not head.startswith("."):
                continue
            if rx.fullmatch(st.name) and (not rest or st.is_dir):
                self._glob_walk(paths.join(base, st.name), shown + sep + st.name, rest, found)


_BRACE = re.compile(r"\{([^{}]*,[^{}]*|-?\d+\.\.-?\d+(?:\.\.-?\d+)?|[a-zA-Z]\.\.[a-zA-Z])\}")
MAX_BRACE_WORDS = 100_000


class BraceLimit(ValueError):
    """A brace expansion would make more than ``MAX_BRACE_WORDS`` words."""


def brace_expand(word: Word) -> list[Word]:
    """bash brace expansion within unquoted literal text: ``a{b,c}`` and ``{1..3}``."""
    for i, p in enumerate(word.parts):
        if not isinstance(p, Lit):
            continue
        m = _BRACE.search(p.text)
        if m is None:
            continue
        body = m.group(1)
        if "," in body:
            alts = body.split(",")
        elif body[0].isalpha():
            a, b = ord(body[0]), ord(body[-1])
            alts = [chr(c) for c in (range(a, b + 1) if a <= b else range(a, b - 1, -1))]
        else:
            nums = [int(x) for x in re.findall(r"-?\d+", body)]
            step = abs(nums[2]) if len(nums) > 2 and nums[2] else 1
            lo, hi = nums[0], nums[1]
            seq = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
            if len(seq) > MAX_BRACE_WORDS:
                raise BraceLimit(f"{{{body}}}: more than {MAX_BRACE_WORDS} words")
            width = max(len(x) for x in re.findall(r"-?\d+", body)[:2])
            pad = any(re.fullmatch(r"-?0\d+", x) for x in re.findall(r"-?\d+", body)[:2])
            alts = [str(n).zfill(width) if pad else str(n) for n in seq]
        out: list[Word] = []
        for alt in alts:
            text = p.text[:m.start()] + alt + p.text[m.end():]
            out.extend(brace_expand(Word(merge_parts([*word.parts[:i], Lit(text),
                                                      *word.parts[i + 1:]]))))
            if len(out) > MAX_BRACE_WORDS:
                raise BraceLimit(f"{{{body}}}: more than {MAX_BRACE_WORDS} words")
        return out
    return [word]


class _FieldBuilder:
    """Accumulates expanded text into fields of (text, quoted) chunks.

    Locking: none; one word expansion.
    """

    def __init__(self, ifs: str) -> None:
        self.fields: list[list[tuple[str, bool]]] = []
        self.cur: list[tuple[str, bool]] = []
        self.started = False  # the current field exists even if empty ("" seen)
        ws = "".join(c for c in ifs if c in " \t\n")
        other = "".join(c for c in ifs if c not in " \t\n")
        seps = []
        if other:
            seps.append(f"[{re.escape(ws)}]*[{re.escape(other)}][{re.escape(ws)}]*"
                        if ws else f"[{re.escape(other)}]")
        if ws:
            seps.append(f"[{re.escape(ws)}]+")
        self.splitter = re.compile("|".join(seps)) if seps else None

    def add(self, text: str, quoted: bool) -> None:
        if text:
            self.cur.append((text, quoted))
        if quoted:
            self.started = True

    def add_split(self, text: str) -> None:
        if self.splitter is None:
            self.add(text, False)
            return
        for i, piece in enumerate(self.splitter.split(text)):
            if i:
                self.split_break()
            self.add(piece, False)

    def split_break(self) -> None:
        if self.cur or self.started:
            self.force_break()

    def force_break(self) -> None:
        self.fields.append(self.cur)
        self.cur = []
        self.started = False

    def finish(self) -> list[list[tuple[str, bool]]]:
        self.split_break()
        return self.fields


_SAFE = re.compile(r"[A-Za-z0-9_./=:,+@%^-]+\Z")


def _quote(word: str) -> str:
    return word if _SAFE.match(word) else "'" + word.replace("'", "'\\''") + "'"
