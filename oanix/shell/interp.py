"""The shell interpreter: runs parsed scripts over a Namespace (word expansion is
``oanix.shell.expand``'s ``Expander``, mixed in).

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
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

import attrs

from .. import paths
from ..errors import FsError
from ..service import FileService
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
    strerror,
)
from .expand import Expander
from .jobs import Jobs, Threads
from .lexer import ShellSyntaxError
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
from .rx import RegexTimeout
from .table import COMMANDS, SPECIAL

__all__ = ["Interp", "MAX_DEPTH", "STANDARD_DIRS"]

STANDARD_DIRS = frozenset(["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"])
MAX_DEPTH = 60  # nested commands (function calls, substitutions, eval)

_COND_OPS = frozenset(["&&", "||", "!", "(", ")", "==", "=", "!=", "=~", "<", ">", "-eq",
                       "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef", "-e", "-f",
                       "-d", "-s", "-z", "-n", "-r", "-w", "-x", "-L", "-h"])


# -- the interpreter -------------------------------------------------------------------


class Interp(Expander):
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
        self.jobs = Jobs()  # `cmd &`: shared by every copy (stages, jobs) of this shell
        self.threads = Threads()  # what stages and jobs hold, shared the same way
        self.procsub_files = []  # shared the same way too

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
                    self.jobs.wait(None, mine)  # the line is done when its jobs are
                    # a program stopped by the time left (wasm) ends the line as it stops
                    timed_out = status == 124 and mine.expired_scope() is not None
                except Cancelled as c:
                    timed_out, status = True, 124
                    self.st.status = status
                    self.st.exit_trap = None
                    err.write(f"{self.st.name}: {c.scope.reason}\n".encode())
                    self.jobs.wait(None, None)  # stopping with the line, as stages do
        finally:
            for f in self._exec_files:
                with suppress(FsError):
                    f.close()
            self._exec_files.clear()
            for path in self.procsub_files:
                with suppress(FsError):
                    self.namespace.remove(path)
            self.procsub_files.clear()
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
            status = self._start_job(item, io) if item.background else self.run_and_or(
                item, io)
        return status

    def _start_job(self, a: AndOr, io: IO) -> int:
        """``a &``: start it as a background job (see ``oanix.shell.jobs``); status 0."""
        if not self.threads.take(1):
            return self._no_thread(io)
        child = self._stage_interp()
        child.cond_depth = 0
        job_io = IO(Input(b""), dict(io.out))
        plain = attrs.evolve(a, background=False)

        def run() -> int:
            try:
                return child._run_alone(lambda: child.run_and_or(plain, job_io))
            finally:
                self.threads.give(1)

        self.st.last_job = self.jobs.start(run, current(), _WORKERS.submit)
        self.st.status = 0
        return 0

    def _no_thread(self, io: IO) -> int:
        """What ``&`` or a pipeline does past ``MAX_THREADS``: fail, as fork would."""
        io.stderr.write(f"{self.st.name}: fork: too many processes ({self.threads.limit} "
                        "stages and jobs running)\n".encode())
        return 1

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
        if not self.threads.take(n - 1):
            return self._no_thread(io)
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
            self.threads.give(n - 1)
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
        return self._run_alone(functools.partial(self.run_command, cmd, io))

    def _run_alone(self, fn: Callable[[], int]) -> int:
        """``fn`` in this copy of the shell (a stage, a job): its status, ``exit`` and a
        closed pipe included; the files its ``exec`` opened are closed after."""
        try:
            return self._catch_exit(fn)
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

    def run_substitution(self, body: Script, io: IO) -> int:
        with self.subshell():
            self.cond_depth = 0
            try:
                return self._catch_exit(lambda: self.run_script(body, io))
            except PipeClosed:
                return 141

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
            self.check_size("here-document", text)
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

    # -- assignments ---------------------------------------------------------------------

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
            self.check_size(f"{a.name}: value", value)
            array[i] = value
            return value
        if a.append:
            value = (self.get_param(a.name) or "") + value
        self.set_var(a.name, value)
        return value


_SAFE = re.compile(r"[A-Za-z0-9_./=:,+@%^-]+\Z")


def _quote(word: str) -> str:
    return word if _SAFE.match(word) else "'" + word.replace("'", "'\\''") + "'"
