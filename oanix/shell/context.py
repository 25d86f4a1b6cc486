"""What a command runs with: its context (``Ctx``), streams (``IO``, ``Input``, ``Output``,
``Pipe``), the shell state, the control-flow exceptions, and path helpers.

The bottom floor of the shell: of the other shell modules it imports only ``cancel`` and
``parser`` (the syntax tree a function body is).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

import attrs

from .. import paths
from ..errors import FsError
from ..service import FileService, Stat
from .cancel import check, wait
from .parser import Command

if TYPE_CHECKING:
    from .interp import Interp


OUTPUT_CAP = 16 << 20  # what Shell.exec keeps of stdout and of stderr by default
MAX_SLURP = 512 << 20  # bytes a command may gather of a pipe at once (sort, uniq, ...)

RunProgram = Callable[[str, list[str], dict[str, str], str, bytes], tuple[int, bytes, bytes]]


@attrs.frozen
class ExecResult:
    """What ``Shell.exec`` returns: the collected output and the exit status.

    Locking: none needed; immutable.
    """

    stdout: bytes
    stderr: bytes
    exit_code: int
    timed_out: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """Whether the command line exited with status 0 (so did not time out)."""
        return self.exit_code == 0

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


# -- streams ---------------------------------------------------------------------------


class Writer(Protocol):
    def write(self, data: bytes) -> object: ...


class PipeClosed(BaseException):
    """A write to a pipe whose reader has gone (SIGPIPE): the writing stage ends, status
    141. A ``BaseException`` so that no command's ``except Exception`` swallows it."""


class InputTooLarge(Exception):
    """A command gathered more than ``MAX_SLURP`` bytes of a pipe (status 2)."""


class Output:
    """An in-memory output stream keeping at most ``cap`` bytes (None: all).

    What goes past the cap is dropped and ``truncated`` says so; the kept bytes are never
    altered. With ``overflow_closes`` a write past the cap raises ``PipeClosed`` instead,
    ending the writer (a command substitution's capture).

    Locking: one lock, since the stages of a pipeline may share a stream (stderr).
    """

    def __init__(self, cap: int | None = OUTPUT_CAP, overflow_closes: bool = False) -> None:
        self.buf = bytearray()
        self.cap = cap
        self.truncated = False
        self.overflow_closes = overflow_closes
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            if self.cap is None or len(self.buf) + len(data) <= self.cap:
                self.buf += data
                return len(data)
            self.buf += data[:max(self.cap - len(self.buf), 0)]
            self.truncated = True
        if self.overflow_closes:
            raise PipeClosed()
        return len(data)


class _Null:
    """/dev/null. Locking: none needed; stateless."""

    def write(self, data: bytes) -> int:
        return len(data)


class Input:
    """A command's stdin: bytes given at once, or (``_more``) a stream read in chunks.

    Each read consumes (``read`` shares one loop's input). ``read_all`` gathers the rest;
    ``read`` and ``readline`` take only what they need, so a command can stream.

    Locking: none; one reader at a time (the stage that owns it).
    """

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.pos = 0

    def _more(self) -> bytes:
        """The next chunk of the stream, b"" at its end (bytes given at once: none)."""
        return b""

    def _fill(self) -> bool:
        """Get the next chunk into the buffer; False at the end."""
        chunk = self._more()
        if not chunk:
            return False
        self.data = self.data[self.pos:] + chunk if self.pos < len(self.data) else chunk
        self.pos = 0
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (-1: what is buffered, or the next chunk); b"" at the end."""
        if self.pos >= len(self.data) and not self._fill():
            return b""
        end = len(self.data) if n < 0 else min(self.pos + n, len(self.data))
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def read_all(self) -> bytes:
        """The rest of the input; from a stream at most ``MAX_SLURP`` bytes (a command
        that needs its whole input cannot take an endless one).

        Raises:
            InputTooLarge: the stream went past ``MAX_SLURP``.
        """
        parts = [self.data[self.pos:]]
        size = len(parts[0])
        self.pos = len(self.data)
        while chunk := self._more():
            check()
            size += len(chunk)
            if size > MAX_SLURP:
                raise InputTooLarge(f"standard input larger than {size_text(MAX_SLURP)}")
            parts.append(chunk)
        self.data, self.pos = b"", 0
        return b"".join(parts)

    def readline(self, delim: bytes = b"\n") -> bytes:
        parts: list[bytes] = []
        while True:
            end = self.data.find(delim, self.pos)
            if end >= 0:
                end += len(delim)
                parts.append(self.data[self.pos:end])
                self.pos = end
                return b"".join(parts)
            parts.append(self.data[self.pos:])
            self.pos = len(self.data)
            self.data, self.pos = b"", 0
            chunk = self._more()
            if not chunk:
                return b"".join(parts)
            self.data = chunk

    def chunks(self) -> Iterator[bytes]:
        """The rest of the input, chunk by chunk."""
        while chunk := self.read():
            yield chunk

    def lines(self) -> Iterator[bytes]:
        """The rest of the input, line by line (each keeping its newline)."""
        while line := self.readline():
            yield line

    def close(self) -> None:
        """The reader is done: a pipe's writer gets SIGPIPE from now on."""


PIPE_CAPACITY = 256 << 10


class Pipe:
    """A bounded byte pipe between two pipeline stages (threads).

    A write blocks while ``capacity`` bytes are buffered (back-pressure) and raises
    ``PipeClosed`` once the reader has closed; a read blocks until data or the writer's
    close. Every wait checks the waiting thread's cancel scope.

    Locking: one condition guards the buffer and both closed flags.
    """

    def __init__(self, capacity: int = PIPE_CAPACITY) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.write_closed = False
        self.read_closed = False

    def write(self, data: bytes) -> int:
        if not data:
            return 0
        with self._cond:
            while self._size >= self.capacity and not self.read_closed:
                wait(self._cond)
            if self.read_closed:
                raise PipeClosed()
            self._chunks.append(bytes(data))
            self._size += len(data)
            self._cond.notify_all()
        return len(data)

    def read_chunk(self) -> bytes:
        with self._cond:
            while not self._chunks and not self.write_closed:
                wait(self._cond)
            if not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            self._size -= len(chunk)
            self._cond.notify_all()
            return chunk

    def close_write(self) -> None:
        with self._cond:
            self.write_closed = True
            self._cond.notify_all()

    def close_read(self) -> None:
        with self._cond:
            self.read_closed = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()


class _Workers:
    """Daemon threads kept for pipeline stages: starting a thread waits until it runs,
    which costs a GIL hand-off per stage; an idle worker takes a job at once. A worker
    idle for ``linger`` seconds exits; there is never a wait for a free one.

    Locking: one lock guards the idle list; each worker's queue is thread-safe.
    """

    def __init__(self, linger: float = 30.0) -> None:
        self.linger = linger
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []

    def submit(self, fn: Callable[[], None]) -> threading.Event:
        """Run ``fn`` on a worker; the event is set when it has returned."""
        done = threading.Event()

        def job() -> None:
            try:
                fn()
            finally:
                done.set()

        with self._lock:
            jobs = self._idle.pop() if self._idle else None
        if jobs is None:
            jobs = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(jobs,), daemon=True,
                             name="oanix-shell-stage").start()
        jobs.put(job)
        return done

    def _work(self, jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            try:
                job = jobs.get(timeout=self.linger)
            except queue.Empty:
                with self._lock:
                    if jobs in self._idle:  # else it was just taken: a job is coming
                        self._idle.remove(jobs)
                        return
                continue
            job()
            with self._lock:
                self._idle.append(jobs)


_WORKERS = _Workers()


class PipeInput(Input):
    """The read end of a ``Pipe``. Locking: see ``Input``."""

    def __init__(self, pipe: Pipe) -> None:
        super().__init__(b"")
        self.pipe = pipe

    def _more(self) -> bytes:
        check()
        return self.pipe.read_chunk()

    def close(self) -> None:
        self.pipe.close_read()


@attrs.define
class IO:
    """The streams of a command: fd 0 and the output fds (1, 2, and any others).

    Locking: none; belongs to one running command.
    """

    stdin: Input
    out: dict[int, Writer]

    @property
    def stdout(self) -> Writer:
        return self.out[1]

    @property
    def stderr(self) -> Writer:
        return self.out[2]


# -- control flow ----------------------------------------------------------------------


class ControlFlow(Exception):
    """Base of the exceptions that carry shell control flow (never errors)."""


class ShellExit(ControlFlow):
    """``exit`` (or a fatal error): leaves the shell or the current subshell."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _LoopJump(ControlFlow):
    def __init__(self, count: int, is_break: bool) -> None:
        super().__init__(count)
        self.count = count
        self.is_break = is_break


class _Return(ControlFlow):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _CommandError(Exception):
    """A command could not be set up (a redirection failed): message, status 1."""


# -- state -----------------------------------------------------------------------------


@attrs.define
class State:
    """Everything a subshell copies: variables, exports, functions, cwd, options.

    Locking: none; owned by one Interp, guarded by the Shell's lock.
    """

    vars: dict[str, str]
    exported: set[str]
    functions: dict[str, Command] = attrs.field(factory=dict)
    positional: list[str] = attrs.field(factory=list)
    cwd: str = "/"
    options: set[str] = attrs.field(factory=set)
    status: int = 0
    name: str = "sh"
    locals: list[dict[str, str | None]] = attrs.field(factory=list)
    exit_trap: str | None = None
    arrays: dict[str, dict[int, str]] = attrs.field(factory=dict)
    last_job: int | None = None  # $!

    def copy(self) -> State:
        return State(dict(self.vars), set(self.exported), dict(self.functions),
                     list(self.positional), self.cwd, set(self.options), self.status,
                     self.name, [dict(f) for f in self.locals], self.exit_trap,
                     {k: dict(v) for k, v in self.arrays.items()}, self.last_job)

    def env(self) -> dict[str, str]:
        return {k: v for k, v in self.vars.items() if k in self.exported}


# -- commands --------------------------------------------------------------------------


class Ctx:
    """What a command gets: its streams, the namespace, cwd and environment.

    ``stdin`` reads all the remaining input (once); ``stdin_stream`` reads it piecewise.

    Locking: none; one command invocation.
    """

    def __init__(self, shell: Interp, io: IO, env: dict[str, str], name: str) -> None:
        self.shell = shell
        self.io = io
        self.env = env
        self.name = name
        self._stdin: bytes | None = None

    @property
    def namespace(self) -> FileService:
        return self.shell.namespace

    @property
    def cwd(self) -> str:
        return self.shell.st.cwd

    @property
    def stdin(self) -> bytes:
        if self._stdin is None:
            self._stdin = self.io.stdin.read_all()
        return self._stdin

    @property
    def stdin_stream(self) -> Input:
        return self.io.stdin

    @property
    def stdout(self) -> Writer:
        return self.io.stdout

    @property
    def stderr(self) -> Writer:
        return self.io.stderr

    def write(self, data: str | bytes) -> None:
        """Write to stdout (text is UTF-8 encoded)."""
        self.io.stdout.write(data.encode("utf-8", "surrogateescape")
                             if isinstance(data, str) else data)

    def error(self, message: str) -> None:
        """Write ``name: message`` to stderr."""
        self.io.stderr.write(f"{self.name}: {message}\n".encode("utf-8", "surrogateescape"))

    def fs_error(self, e: OSError, path: str | None = None) -> int:
        """Report a file error like coreutils (``cat: x: No such file or directory``)."""
        self.error(f"{path if path is not None else e.filename}: {strerror(e)}")
        return 1

    def resolve(self, path: str) -> str:
        """The namespace path for ``path`` relative to the cwd."""
        return resolve(self.cwd, path)

    def read_file(self, path: str) -> bytes:
        """The content of ``path`` (``-`` is stdin); raises FsError."""
        if path == "-" or path == "/dev/stdin":
            return self.io.stdin.read_all()
        if path == "/dev/null":
            return b""
        return self.namespace.read_bytes(self.resolve(path))

    def check(self) -> None:
        """Raise the shell's cancellation if the command line's time is up (or it was
        cancelled): long-running commands call it between pieces of work."""
        check()

    def run(self, argv: list[str], stdin: bytes | None = None) -> int:
        """Run a command (as the shell would find it) with this command's streams."""
        io = self.io if stdin is None else IO(Input(stdin), self.io.out)
        return self.shell.run_argv(argv, io, self.env)


CommandFn = Callable[[Ctx, list[str]], int]


def strerror(e: OSError) -> str:
    """The strerror of ``e`` capitalised like the C library's."""
    msg = e.strerror or str(e)
    return msg[:1].upper() + msg[1:]


def stat_or_none(ctx: Ctx, path: str) -> Stat | None:
    """The stat of ``path`` (relative to the shell's cwd), or None if it cannot be had."""
    try:
        return ctx.namespace.stat(ctx.resolve(path))
    except FsError:
        return None


def resolve(cwd: str, path: str) -> str:
    """``path`` made absolute against ``cwd`` and normalised."""
    return paths.normalize(path) if path.startswith("/") else paths.join(cwd, path)




def size_text(n: int) -> str:
    """``n`` bytes as the limits are stated (``64 MiB``)."""
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n} bytes"
