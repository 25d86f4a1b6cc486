"""LogsFs: append-only output logs and validated structured events, with live subscribers.

::

    /stdout.log     append-only bytes
    /stderr.log     append-only bytes
    /events.jsonl   JSON Lines; each line {"ts": number, "level": "debug"|"info"|"warning"|
                    "error", "message": str, "data"?: object}, validated when written

The host writes with ``write_stdout``, ``write_stderr`` and ``event``, reads with
``events``, ``tail`` and the files, and follows progress with ``subscribe``.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NoReturn, Self

import attrs

from .. import paths
from ..errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidContent,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile
from ..service import FileService, OpenMode, Stat, check_open
from ..values import copy_json, dumps_compact, dumps_line, finite_number, load_json

if TYPE_CHECKING:
    from ..snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["DEFAULT_MAX_LOG_BYTES", "LEVELS", "LogEvent", "LogsFs", "Subscription",
           "parse_event_lines"]

Level = Literal["debug", "info", "warning", "error"]
LEVELS: Final = ("debug", "info", "warning", "error")
DEFAULT_MAX_LOG_BYTES: Final = 16 << 20
"""The cap of each log of a ``LogsFs`` unless one is given: 16 MiB."""
STDOUT: Final = "/stdout.log"
STDERR: Final = "/stderr.log"
EVENTS: Final = "/events.jsonl"
_KEYS: Final = frozenset({"ts", "level", "message", "data"})
_BLANK: Final = " \t\r"  # JSON whitespace other than the newline that ends a line

_log = logging.getLogger(__name__)


@attrs.frozen
class LogEvent:
    """One structured event: a line of ``events.jsonl``. Do not mutate ``data``."""

    ts: float
    level: Level
    message: str
    data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as its JSON object (``data`` left out when None)."""
        d: dict[str, Any] = {"ts": self.ts, "level": self.level, "message": self.message}
        if self.data is not None:
            d["data"] = self.data
        return d

    def to_json(self) -> str:
        """The event as one compact JSON line, without the newline."""
        return dumps_compact(self.to_dict())

    def to_line(self) -> bytes:
        """The event as stored in ``events.jsonl``: ``to_json`` in UTF-8 with a newline (a
        lone surrogate stays escaped, so the line is always valid UTF-8)."""
        return dumps_line(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Any, where: str = "event") -> LogEvent:
        """Check ``obj`` against the event schema; an int ``ts`` becomes a float.

        Raises:
            InvalidArgument: prefixed by ``where``: not an object, an unknown key, a
                missing or mistyped field.
        """
        if not isinstance(obj, dict):
            raise InvalidArgument(f"{where}: an event must be a JSON object, "
                                  f"not {type(obj).__name__}")
        unknown = sorted(set(obj) - _KEYS)
        if unknown:
            raise InvalidArgument(f"{where}: unknown key(s) {unknown}; an event has "
                                  f"ts, level, message and optionally data")
        for key in ("ts", "level", "message"):
            if key not in obj:
                raise InvalidArgument(f"{where}: missing {key!r}")
        ts = finite_number(obj["ts"])
        if ts is None:
            raise InvalidArgument(f"{where}: 'ts' must be a finite number, not {obj['ts']!r}")
        level = obj["level"]
        if not isinstance(level, str) or level not in LEVELS:
            raise InvalidArgument(f"{where}: 'level' must be one of {', '.join(LEVELS)}, "
                                  f"not {level!r}")
        if not isinstance(obj["message"], str):
            raise InvalidArgument(f"{where}: 'message' must be a string, "
                                  f"not {type(obj['message']).__name__}")
        data = obj.get("data")
        if "data" in obj and not isinstance(data, dict):
            raise InvalidArgument(f"{where}: 'data' must be a JSON object, "
                                  f"not {type(data).__name__}")
        return cls(ts, level, obj["message"], data)  # type: ignore[arg-type]


def parse_event_lines(data: bytes, name: str = EVENTS, first_line: int = 1) -> list[LogEvent]:
    """The events in JSON Lines ``data``: one event object per line.

    Lines are split on ``\\n``; a blank line (only spaces, tabs, ``\\r``) is skipped; every
    other line must be UTF-8, one JSON value (no NaN or Infinity) and match the event
    schema (see ``LogEvent.from_dict``). The first line is numbered ``first_line``.

    Raises:
        InvalidArgument: at the first bad line, naming ``name`` and the line number.
    """
    events: list[LogEvent] = []
    for lineno, raw in enumerate(data.split(b"\n"), first_line):
        where = f"{name} line {lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"{where}: not UTF-8: {exc}") from None
        if not line.strip(_BLANK):
            continue
        try:
            obj = load_json(line, where)
        except InvalidContent as exc:
            raise InvalidArgument(f"{where}: {exc.strerror}") from None
        events.append(LogEvent.from_dict(obj, where))
    return events


Payload = bytes | LogEvent
Callback = Callable[[str, Payload], object]


class Subscription:
    """A live subscription to a LogsFs; ``unsubscribe()`` (or leaving a ``with``) ends it.

    Locking: unsubscribing takes the LogsFs lock; it may be called from any thread, also
    from inside a callback, and more than once.
    """

    def __init__(self, logs: LogsFs, callback: Callback) -> None:
        self._logs = logs
        self.callback = callback

    @property
    def active(self) -> bool:
        """Whether the callback still receives new output."""
        with self._logs._lock:
            return self in self._logs._subs

    def unsubscribe(self) -> None:
        """Stop calling the callback for output stored from now on."""
        logs = self._logs
        with logs._lock:
            logs._subs = tuple(s for s in logs._subs if s is not self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()


class LogsFs(FileService):
    """Append-only logs and structured events of one agent run.

    ``stdout.log`` and ``stderr.log`` are append-only for every writer: a file opened for
    writing in any mode (``w`` does not truncate) starts at the end and every write lands at
    the end. ``truncate``, ``remove`` and ``rename`` raise ``PermissionDenied`` naming the
    path, and so does a write after a ``seek`` before the end (an attempt to overwrite;
    ``seek(0, SEEK_END)`` makes writing possible again). Readers see everything stored so
    far, also through a file opened earlier.

    ``events.jsonl`` takes JSON Lines (see ``parse_event_lines``). Each ``write`` call
    parses the complete lines it ends, all or nothing: a bad line raises
    ``InvalidArgument`` naming the file and the line number (counted from the open) and
    nothing of that call is stored (a following write may go on). An unfinished last line
    is parsed when the file closes, and ``write_bytes`` parses its whole data as one unit.
    Events are stored, and read back, in their compact canonical form.

    ``max_bytes`` caps each file (``DEFAULT_MAX_LOG_BYTES``, 16 MiB, unless given; None:
    no cap): a write that would take a file past it raises ``NoSpace`` naming the file
    and stores nothing of that write; so does a write that makes an unfinished line of
    ``events.jsonl`` longer than the cap (it could never be stored). The structure is
    fixed: creating, ``mkdir``, ``remove``, ``rmdir`` and ``rename`` raise
    ``PermissionDenied``.

    Subscribers: ``subscribe(callback)`` calls ``callback(name, payload)`` for all output
    stored afterwards: the bytes appended to ``stdout.log`` / ``stderr.log``, or each
    ``LogEvent`` of ``events.jsonl`` (``name`` is the file name without ``/``). Callbacks
    run outside the state lock, one at a time, in the order the output was stored, in a
    writing thread, before that write returns (except a write made by a callback, which is
    delivered right after the current callback round). A callback that raises is logged
    (``logging``) and skipped; it must not wait for another thread that writes here.

    Locking: ``_lock`` guards the buffers, the events and the subscriber list; every
    primitive and host method holds it only to read or append. Open files share the
    buffers under the same lock. A separate delivery lock serialises the callbacks and is
    never taken while ``_lock`` is held.
    """

    def __init__(self, *, max_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        if max_bytes is not None and (isinstance(max_bytes, bool)
                                      or not isinstance(max_bytes, int) or max_bytes < 0):
            raise InvalidArgument(f"max_bytes must be an int >= 0 or None, not {max_bytes!r}")
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        now = float(clock())
        self._created = now
        self._bufs: dict[str, bytearray] = {EVENTS: bytearray(), STDERR: bytearray(),
                                            STDOUT: bytearray()}
        self._mtimes = dict.fromkeys(self._bufs, now)
        self._events: list[LogEvent] = []
        self._subs: tuple[Subscription, ...] = ()
        # Output waiting for its callbacks, with the subscribers at the time it was stored.
        self._pending: deque[tuple[str, Payload, tuple[Subscription, ...]]] = deque()
        self._delivery = threading.Lock()
        self._local = threading.local()

    # -- host API -----------------------------------------------------------------------------

    def write_stdout(self, data: str | bytes | bytearray) -> None:
        """Append ``data`` (a str is encoded as UTF-8) to ``stdout.log``. Raises NoSpace."""
        self._append(STDOUT, _as_bytes(data, "write_stdout"), STDOUT)

    def write_stderr(self, data: str | bytes | bytearray) -> None:
        """Append ``data`` (a str is encoded as UTF-8) to ``stderr.log``. Raises NoSpace."""
        self._append(STDERR, _as_bytes(data, "write_stderr"), STDERR)

    def event(self, level: Level, message: str, **data: Any) -> LogEvent:
        """Record an event stamped with the clock; ``data`` must be plain JSON data.

        Raises:
            InvalidArgument: a bad level, message or data. NoSpace: over the cap.
        """
        obj: dict[str, Any] = {"ts": float(self._clock()), "level": level, "message": message}
        if data:
            obj["data"] = copy_json(data, "event data")
        ev = LogEvent.from_dict(obj, "LogsFs.event")
        self._append_events([ev], EVENTS)
        return ev

    def events(self) -> list[LogEvent]:
        """Every event stored so far, in order."""
        with self._lock:
            return list(self._events)

    def stdout(self) -> bytes:
        """Everything in ``stdout.log``."""
        return self._read_bytes(STDOUT)

    def stderr(self) -> bytes:
        """Everything in ``stderr.log``."""
        return self._read_bytes(STDERR)

    def tail(self, name: str, n: int = 10) -> list[str]:
        """The last ``n`` lines of file ``name`` (``"stdout.log"`` or ``"/stdout.log"``),
        decoded as UTF-8 (bad bytes replaced), without line ends. An unfinished last line
        counts as a line.

        Raises:
            InvalidArgument: an unknown file name or a negative ``n``.
        """
        key = paths.normalize(name) if isinstance(name, str) else ""
        if key not in self._bufs:
            raise InvalidArgument(f"tail: no log named {name!r}; use one of "
                                  f"{', '.join(p[1:] for p in sorted(self._bufs))}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidArgument(f"tail: n must be an int >= 0, not {n!r}")
        with self._lock:
            buf = self._bufs[key]
            if n == 0 or not buf:
                return []
            end = len(buf) - 1 if buf[-1] == 0x0A else len(buf)
            start = pos = end
            for _ in range(n):
                nl = buf.rfind(b"\n", 0, pos)
                if nl < 0:
                    start = 0
                    break
                start, pos = nl + 1, nl
            chunk = bytes(buf[start:end])
        return chunk.decode("utf-8", "replace").split("\n")

    def subscribe(self, callback: Callback) -> Subscription:
        """Call ``callback(name, payload)`` for all output stored from now on (see the class
        docstring). Raises InvalidArgument if ``callback`` is not callable."""
        if not callable(callback):
            raise InvalidArgument(f"subscribe: {callback!r} is not callable")
        sub = Subscription(self, callback)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "logsfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"max_bytes": int | null, "created_at", "files": {"/stdout.log" |
        "/stderr.log" | "/events.jsonl": [mtime, blob]}}``; subscribers are not kept."""
        with self._lock:
            files = {k: [self._mtimes[k], w.blob(buf)] for k, buf in self._bufs.items()}
            return {"max_bytes": self.max_bytes, "created_at": self._created, "files": files}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The logs of ``state``; the events are parsed again from ``events.jsonl``.

        Raises:
            CorruptSnapshot: a bad field, a bad event line, a log over its cap.
        """
        where = "logsfs"
        cap = state.get("max_bytes")
        if cap is not None and (type(cap) is not int or cap < 0):
            raise r.fail(where, f"max_bytes is {cap!r}")
        logs = cls(max_bytes=cap)
        logs._created = r.field(state, "created_at", float, where)
        files = r.field(state, "files", dict, where)
        if set(files) != set(logs._bufs):
            raise r.fail(where, f"files are {sorted(files)!r:.80}, not {sorted(logs._bufs)}")
        for key, value in files.items():
            if not isinstance(value, list) or len(value) != 2:
                raise r.fail(where, f"{key}: not [mtime, blob]")
            data = r.blob(value[1], f"{where} {key}")
            if cap is not None and len(data) > cap:
                raise r.fail(where, f"{key}: {len(data)} bytes, over the cap of {cap}")
            logs._bufs[key] = bytearray(data)
            logs._mtimes[key] = r.field({"mtime": value[0]}, "mtime", float, where)
        try:
            logs._events = parse_event_lines(bytes(logs._bufs[EVENTS]))
        except InvalidArgument as e:
            raise r.fail(where, str(e)) from None
        return logs

    # -- storing --------------------------------------------------------------------------------

    def _check_cap(self, name: str, key: str, extra: int) -> None:
        """Raise NoSpace if ``extra`` more bytes do not fit in ``key``; hold the lock."""
        size = len(self._bufs[key])
        if self.max_bytes is not None and size + extra > self.max_bytes:
            raise NoSpace(name, f"log capped at {self.max_bytes} bytes: {size} used, "
                                f"a write of {extra} bytes does not fit; nothing stored")

    def _append(self, key: str, data: bytes, name: str) -> int:
        """Append ``data`` to log ``key``; return its new size."""
        with self._lock:
            self._check_cap(name, key, len(data))
            buf = self._bufs[key]
            buf += data
            self._mtimes[key] = float(self._clock())
            subs = self._subs if data else ()
            if subs:
                self._pending.append((key[1:], data, subs))
            end = len(buf)
        if subs:
            self._deliver()
        return end

    def _append_events(self, events: list[LogEvent], name: str) -> int:
        """Store ``events`` (already valid), all or nothing; return the file's new size."""
        rendered = b"".join(ev.to_line() for ev in events)
        with self._lock:
            self._check_cap(name, EVENTS, len(rendered))
            buf = self._bufs[EVENTS]
            buf += rendered
            self._events.extend(events)
            self._mtimes[EVENTS] = float(self._clock())
            subs = self._subs if events else ()
            if subs:
                self._pending.extend((EVENTS[1:], ev, subs) for ev in events)
            end = len(buf)
        if subs:
            self._deliver()
        return end

    def _deliver(self) -> None:
        """Run the callbacks for the pending output, in order, outside ``_lock``."""
        if getattr(self._local, "delivering", False):
            return  # a callback wrote: the round in progress delivers it next
        with self._delivery:
            self._local.delivering = True
            try:
                while True:
                    with self._lock:
                        if not self._pending:
                            return
                        name, payload, subs = self._pending.popleft()
                    for sub in subs:
                        if not sub.active:
                            continue  # unsubscribed by an earlier callback of this round
                        try:
                            sub.callback(name, payload)
                        except Exception:
                            _log.exception("LogsFs subscriber %r failed on %s",
                                           sub.callback, name)
            finally:
                self._local.delivering = False

    # -- primitives -----------------------------------------------------------------------------

    def _missing(self, path: str) -> NoReturn:
        top = "/" + paths.parts(path)[0] if path != "/" else "/"
        if top != path and top in self._bufs:
            raise NotADirectory(path)
        raise NotFound(path)

    def _refused(self, path: str, op: str) -> PermissionDenied:
        return PermissionDenied(path, f"LogsFs structure is fixed: {op} is not allowed")

    def _stat(self, path: str) -> Stat:
        if path == "/":
            return Stat("", len(self._bufs), True, self._created, True)
        if path in self._bufs:
            with self._lock:
                return Stat(path[1:], len(self._bufs[path]), False, self._mtimes[path])
        self._missing(path)

    def _listdir(self, path: str) -> list[str]:
        if path == "/":
            return sorted(p[1:] for p in self._bufs)
        if path in self._bufs:
            raise NotADirectory(path)
        self._missing(path)

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        if path in self._bufs:
            check_open(path, mode, self._stat(path))
            cls = _EventsFile if path == EVENTS else _LogFile
            return cls(self, path, mode)
        if path == "/":
            raise IsADirectory(path)
        if mode.create and paths.dirname(path) == "/":
            raise self._refused(path, "creating a file")
        self._missing(path)

    def _read_bytes(self, path: str) -> bytes:
        if path in self._bufs:
            with self._lock:
                return bytes(self._bufs[path])
        return super()._read_bytes(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == EVENTS:
            self._append_events(parse_event_lines(data, path), path)
        elif path in self._bufs:
            self._append(path, data, path)
        else:
            super()._write_bytes(path, data)

    def _mkdir(self, path: str) -> None:
        if path == "/" or path in self._bufs:
            raise AlreadyExists(path)
        if paths.dirname(path) == "/":
            raise self._refused(path, "mkdir")
        self._missing(path)

    def _remove(self, path: str) -> None:
        if path == "/":
            raise IsADirectory(path)
        if path in self._bufs:
            raise PermissionDenied(path, "append-only log: cannot remove")
        self._missing(path)

    def _rmdir(self, path: str) -> None:
        if path == "/":
            raise PermissionDenied(path, "cannot remove the root")
        if path in self._bufs:
            raise NotADirectory(path)
        self._missing(path)

    def _rename(self, src: str, dst: str) -> None:
        try:
            self._stat(src)
        except (NotFound, NotADirectory) as e:
            raise e.with_paths(src, dst) from None
        raise PermissionDenied(src, "append-only log: cannot rename", dst)


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise InvalidArgument(f"{what} needs str or bytes, not {type(data).__name__}")


class _LogFile(BufferFile):
    """An open log: reads the live buffer; every write appends through the LogsFs."""

    def __init__(self, logs: LogsFs, key: str, mode: OpenMode) -> None:
        self._logs = logs
        self._key = key
        self._seeked_back = False
        # Never truncate at open; a writer starts at the end.
        super().__init__(logs._bufs[key], attrs.evolve(mode, truncate=False, append=mode.write),
                         key, lock=logs._lock)

    def write(self, b: Any) -> int:
        self._check_writable()
        data = bytes(memoryview(b).cast("B"))
        if self._seeked_back:
            raise PermissionDenied(self.name, "append-only log: cannot overwrite; "
                                              "seek to the end before writing")
        if data:
            self._pos = self._store(data)
        return len(data)

    def _store(self, data: bytes) -> int:
        return self._logs._append(self._key, data, self.name)

    def truncate(self, size: int | None = None) -> int:
        self._check_writable()
        raise PermissionDenied(self.name, "append-only log: cannot truncate")

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        pos = super().seek(offset, whence)
        if self._mode.write:
            with self._lock:
                self._seeked_back = pos < len(self._buf)
        return pos


class _EventsFile(_LogFile):
    """An open ``events.jsonl``: complete lines are parsed per write, the rest on close."""

    def __init__(self, logs: LogsFs, key: str, mode: OpenMode) -> None:
        super().__init__(logs, key, mode)
        self._partial = b""
        self._lines = 0  # complete lines taken so far

    def _store(self, data: bytes) -> int:
        buf = self._partial + data
        cut = buf.rfind(b"\n")
        cap = self._logs.max_bytes
        if cap is not None and len(buf) - cut - 1 > cap:
            raise NoSpace(self.name, f"log capped at {cap} bytes: an unfinished line of "
                                     f"{len(buf) - cut - 1} bytes cannot fit; nothing of "
                                     "this write stored")
        if cut < 0:
            self._partial = buf
            return self._pos
        complete = buf[:cut]
        events = parse_event_lines(complete, self.name, self._lines + 1)
        end = self._logs._append_events(events, self.name)
        self._partial = buf[cut + 1:]
        self._lines += complete.count(b"\n") + 1
        return end

    def close(self) -> None:
        if self.closed:
            return
        try:
            rest, self._partial = self._partial, b""
            if self._mode.write and rest.strip(_BLANK.encode()):
                events = parse_event_lines(rest, self.name, self._lines + 1)
                self._logs._append_events(events, self.name)
        finally:
            super().close()
