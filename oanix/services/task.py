"""TaskFs: the task an agent works on, its status, its result, and the verifier's reward.

One ``TaskFs`` holds the state of one task; it is not mounted itself. It hands out two
views, file services over the same state that differ only in what they may write::

    task = TaskFs(TaskInfo(id="hello", instruction="Create /app/hello.txt"))
    agent_ns.mount("/task", task.agent_view())        # the agent's namespace
    verifier_ns.mount("/task", task.verifier_view())  # the verifier's namespace
    verifier_ns.bind("/task/verifier", "/logs/verifier")  # Harbor's layout, if wanted

The tree, the same in both views::

    /spec.json        read-only  the TaskInfo, pretty JSON
    /meta.json        read-only  {"created_at", "version", "metadata"}
    /status           read-only  {"state", "created_at", "started_at", "finished_at",
                                  "error"}, computed at each open
    /result.json      the agent's result: written by the agent view only
    /verifier/        written by the verifier view only: reward.txt (a number),
                      reward.json ({name: number}), ctrf.json, tests/..., any files

Reward forgery (Harbor #2551, an agent pre-seeding ``/logs/verifier/reward.txt``) is
impossible by construction: the service, not a mount flag a harness might forget, refuses
every write the agent view is given under ``/verifier`` (open for writing in any mode,
``write_bytes``, ``mkdir``, ``remove``, ``rmdir``, ``rename`` to or from it) with
``ReadOnly``, whether or not the path exists (only a mode that would not create a missing
file reports ``NotFound``, as on any read-only file system). ``bind`` and unions in a
namespace can only narrow what a view may do, never widen it: an agent that shadows
``/task/verifier`` with its own writable service changes only its own namespace.
``clear_verifier`` resets the area between two verifier runs.
"""

from __future__ import annotations

import io
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NoReturn, Self

import attrs

from .. import paths
from ..errors import (
    AlreadyExists,
    FsError,
    IllegalTransition,
    InvalidArgument,
    InvalidContent,
    IsADirectory,
    NotADirectory,
    NotFound,
    ReadOnly,
)
from ..files import BufferFile
from ..fs.mem import MemFs
from ..service import FileService, OpenMode, Stat, check_open
from ..values import copy_json, dumps_pretty, finite_number, load_json

if TYPE_CHECKING:
    from ..snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["Reward", "TaskFs", "TaskInfo", "TaskState", "TaskStatus"]

TaskState = Literal["pending", "running", "completed", "failed", "cancelled"]
FINAL_STATES: Final = frozenset({"completed", "failed", "cancelled"})

VERIFIER: Final = "/verifier"
RESULT: Final = "/result.json"
_FIXED: Final = ("/meta.json", "/spec.json", "/status")


# -- the spec ---------------------------------------------------------------------------------

def _check_str(name: str, *, nonempty: bool = False) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if not isinstance(value, str):
            raise InvalidArgument(f"TaskInfo.{name} must be a str, not {type(value).__name__}")
        if nonempty and not value.strip():
            raise InvalidArgument(f"TaskInfo.{name} must not be empty")
    return check


def _to_input(value: Any) -> Any:
    if not isinstance(value, dict):
        raise InvalidArgument(f"TaskInfo.input must be a dict, not {type(value).__name__}")
    return copy_json(value, "TaskInfo.input")


def _to_tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidArgument(
            f"TaskInfo.tags must be a list or tuple of str, not {type(value).__name__}")
    for tag in value:
        if not isinstance(tag, str):
            raise InvalidArgument(f"TaskInfo.tags must hold str only, found {tag!r}")
    return tuple(value)


def _timeout(name: str, value: Any) -> float | None:
    if value is None:
        return None
    f = finite_number(value)
    if f is None or f <= 0:
        raise InvalidArgument(
            f"TaskInfo.{name} must be a positive number of seconds or None, not {value!r}")
    return f


def _agent_timeout(value: Any) -> float | None:
    return _timeout("agent_timeout_sec", value)


def _verifier_timeout(value: Any) -> float | None:
    return _timeout("verifier_timeout_sec", value)


@attrs.frozen
class TaskInfo:
    """What the agent is asked to do (Terminal-Bench ``task.yaml`` / Harbor ``task.toml``).

    Validated on construction: every bad field raises ``InvalidArgument`` naming it.
    ``input`` must be plain JSON data and is deep-copied; ``tags`` becomes a tuple;
    timeouts are positive seconds (an int becomes a float) or None.
    """

    id: str = attrs.field(validator=_check_str("id", nonempty=True))
    instruction: str = attrs.field(validator=_check_str("instruction"))
    input: dict[str, Any] = attrs.field(factory=dict, converter=_to_input)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_to_tags)
    agent_timeout_sec: float | None = attrs.field(
        default=None, converter=_agent_timeout)
    verifier_timeout_sec: float | None = attrs.field(
        default=None, converter=_verifier_timeout)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the JSON object ``spec.json`` holds."""
        return {"id": self.id, "instruction": self.instruction,
                "input": copy_json(self.input, "TaskInfo.input"), "tags": list(self.tags),
                "agent_timeout_sec": self.agent_timeout_sec,
                "verifier_timeout_sec": self.verifier_timeout_sec}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskInfo:
        """The spec from a ``to_dict`` object. Raises InvalidArgument (an unknown key too)."""
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"a TaskInfo needs a JSON object, not {type(data).__name__}")
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(f"TaskInfo: unknown field(s) {unknown}")
        for name in ("id", "instruction"):
            if name not in data:
                raise InvalidArgument(f"TaskInfo.{name} is missing")
        return cls(**data)


# -- status and reward ------------------------------------------------------------------------

@attrs.frozen
class TaskStatus:
    """A snapshot of the task's lifecycle, as ``/status`` shows it.

    ``error`` is the failure message (``fail``) or the cancel reason (``cancel``).
    """

    state: TaskState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None

    @property
    def is_finished(self) -> bool:
        """Whether the state is final: completed, failed or cancelled."""
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "running": frozenset({"pending"}),
    "completed": frozenset({"running"}),
    "failed": frozenset({"pending", "running"}),
    "cancelled": frozenset({"pending", "running"}),
}


def _to_metrics(value: Mapping[str, float]) -> Mapping[str, float]:
    return types.MappingProxyType(dict(value))


@attrs.frozen
class Reward:
    """The verifier's grade: ``metrics`` by name, from ``source`` (a path in the task).

    ``reward.txt`` gives ``{"reward": x}``; ``reward.json`` gives its object. ``value`` is
    ``metrics["reward"]`` when present, else the only metric, else None.
    """

    metrics: Mapping[str, float] = attrs.field(converter=_to_metrics)
    source: str

    @property
    def value(self) -> float | None:
        if "reward" in self.metrics:
            return self.metrics["reward"]
        if len(self.metrics) == 1:
            return next(iter(self.metrics.values()))
        return None


def _parse_reward_txt(path: str, data: bytes) -> Reward:
    try:
        text = data.decode("utf-8").strip()
        value = float(text)
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            f"{path}: not a number: {data[:80]!r}") from None
    if finite_number(value) is None:
        raise InvalidArgument(f"{path}: not a finite number: {text!r}")
    return Reward({"reward": value}, path)


def _parse_reward_json(path: str, data: bytes) -> Reward:
    try:
        obj = load_json(data, path)
    except InvalidContent as exc:
        raise InvalidArgument(f"{path}: {exc.strerror}") from None
    if not isinstance(obj, dict) or not obj:
        raise InvalidArgument(f"{path}: must be a non-empty JSON object of numbers")
    metrics: dict[str, float] = {}
    for name, v in obj.items():
        f = finite_number(v)
        if f is None:
            raise InvalidArgument(f"{path}: metric {name!r} is not a finite number: {v!r}")
        metrics[name] = f
    return Reward(metrics, path)


# -- the task ---------------------------------------------------------------------------------

Role = Literal["agent", "verifier"]


class TaskFs:
    """The state of one task, with host methods and two mountable views.

    Status changes go through ``start`` (pending -> running), ``complete`` (running ->
    completed), ``fail`` and ``cancel`` (pending or running -> failed / cancelled); any
    other change raises ``InvalidArgument`` naming both states. ``clock`` gives the
    timestamps (seconds since the epoch).

    ``/result.json`` is committed when the writing file closes, and only if its whole
    content is valid JSON: otherwise ``close`` raises ``InvalidArgument`` naming the file and
    the previous content stays (also when nothing was written: an empty file is not JSON).
    Until then other readers see the previous content. Once the task is finished the
    result is frozen: writes raise ``ReadOnly``, even from a file opened before.

    Locking: ``_lock`` guards the status and the result (the spec and the metadata never
    change); it is held only to read or replace them, never while calling out. The
    ``/verifier`` area is a ``MemFs`` with its own lock, never taken while ``_lock`` is
    held, so the two never nest.
    """

    def __init__(self, spec: TaskInfo, metadata: Mapping[str, Any] | None = None, *,
                 version: int = 1, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(spec, TaskInfo):
            raise InvalidArgument(f"TaskFs needs a TaskInfo, not {type(spec).__name__}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(f"TaskFs version must be a positive int, not {version!r}")
        meta = copy_json(dict(metadata or {}), "TaskFs metadata")
        self._lock = threading.Lock()
        self._clock = clock
        self.spec = spec
        now = float(clock())
        self._meta: dict[str, Any] = {"created_at": now, "version": version, "metadata": meta}
        self._spec_bytes = dumps_pretty(spec.to_dict())
        self._meta_bytes = dumps_pretty(self._meta)
        self._status = TaskStatus("pending", now)
        self._status_mtime = now
        self._result: bytes | None = None
        self._result_mtime = now
        self._verifier = MemFs()
        self._views = {"agent": _TaskView(self, "agent"), "verifier": _TaskView(self, "verifier")}

    # -- views -------------------------------------------------------------------------------

    def agent_view(self) -> FileService:
        """The agent's view: it may write ``/result.json`` and nothing else."""
        return self._views["agent"]

    def verifier_view(self) -> FileService:
        """The verifier's view: it may write below ``/verifier`` and nothing else."""
        return self._views["verifier"]

    # -- status ------------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the free metadata given at construction."""
        meta: dict[str, Any] = copy_json(self._meta["metadata"], "metadata")
        return meta

    def status(self) -> TaskStatus:
        """The current status."""
        with self._lock:
            return self._status

    @property
    def state(self) -> TaskState:
        return self.status().state

    @property
    def is_finished(self) -> bool:
        return self.status().is_finished

    def start(self) -> TaskStatus:
        """pending -> running. Raises InvalidArgument from any other state."""
        return self._move("running")

    def complete(self) -> TaskStatus:
        """running -> completed. Raises InvalidArgument from any other state."""
        return self._move("completed")

    def fail(self, error: str) -> TaskStatus:
        """pending or running -> failed, recording ``error``."""
        if not isinstance(error, str):
            raise InvalidArgument(f"fail: error must be a str, not {type(error).__name__}")
        return self._move("failed", error)

    def cancel(self, reason: str | None = None) -> TaskStatus:
        """pending or running -> cancelled, recording ``reason`` (if any) as the error."""
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgument(f"cancel: reason must be a str, not {type(reason).__name__}")
        return self._move("cancelled", reason)

    def _move(self, to: TaskState, error: str | None = None) -> TaskStatus:
        now = float(self._clock())
        with self._lock:
            cur = self._status
            if cur.state not in _TRANSITIONS[to]:
                allowed = " or ".join(sorted(_TRANSITIONS[to]))
                raise IllegalTransition(f"task {self.spec.id!r}", cur.state, to, allowed)
            if to == "running":
                new = attrs.evolve(cur, state=to, started_at=now)
            else:
                new = attrs.evolve(cur, state=to, finished_at=now, error=error)
            self._status = new
            self._status_mtime = now
            return new

    # -- result and reward -------------------------------------------------------------------

    def result_bytes(self) -> bytes | None:
        """The content of ``/result.json``, or None if the agent wrote none."""
        with self._lock:
            return self._result

    def result(self) -> Any:
        """``/result.json`` parsed, or None if there is none (it is always valid JSON)."""
        data = self.result_bytes()
        return None if data is None else load_json(data, "/result.json")

    def reward(self) -> Reward | None:
        """The reward the verifier wrote, or None if it wrote none.

        ``/verifier/reward.txt`` (one number) is read first, as Harbor does, then
        ``/verifier/reward.json`` (a non-empty object of numbers).

        Raises:
            InvalidArgument: the file is malformed (naming it); NaN and infinities count as
                malformed.
        """
        for name, parse in (("reward.txt", _parse_reward_txt),
                            ("reward.json", _parse_reward_json)):
            path = paths.join(VERIFIER, name)
            try:
                data = self._verifier.read_bytes("/" + name)
            except NotFound:
                continue
            except IsADirectory:
                raise InvalidArgument(f"{path}: is a directory, not a reward file") from None
            return parse(path, data)
        return None

    def clear_verifier(self) -> None:
        """Remove everything below ``/verifier`` (before a new verifier run)."""
        for st in self._verifier.scandir("/"):
            self._verifier.rmtree("/" + st.name)

    # -- what the views use --------------------------------------------------------------------

    def _status_bytes(self) -> tuple[bytes, float]:
        with self._lock:
            return dumps_pretty(self._status.to_dict()), self._status_mtime

    def _fixed(self, path: str) -> tuple[bytes, float]:
        if path == "/status":
            return self._status_bytes()
        created = self._meta["created_at"]
        return (self._spec_bytes if path == "/spec.json" else self._meta_bytes), created

    def _commit_result(self, path: str, data: bytes, exclusive: bool) -> None:
        """Replace the result with ``data`` (the agent view's write, on close)."""
        try:
            load_json(data, path)
        except InvalidContent as exc:
            raise InvalidArgument(f"{path}: {exc.strerror}, not stored") from None
        with self._lock:
            if self._status.is_finished:
                raise ReadOnly(path, f"task is {self._status.state}: the result is frozen")
            if exclusive and self._result is not None:
                raise AlreadyExists(path)
            self._result = bytes(data)
            self._result_mtime = float(self._clock())

    def _remove_result(self, path: str) -> None:
        with self._lock:
            if self._status.is_finished:
                raise ReadOnly(path, f"task is {self._status.state}: the result is frozen")
            if self._result is None:
                raise NotFound(path)
            self._result = None
            self._result_mtime = float(self._clock())


    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "taskfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"spec": TaskInfo.to_dict, "meta": meta.json's object, "status":
        TaskStatus.to_dict, "status_mtime", "result": blob | null, "result_mtime",
        "verifier": object id of the verifier area (a MemFs)}``."""
        with self._lock:
            state: dict[str, Any] = {
                "spec": self.spec.to_dict(), "meta": copy_json(self._meta, "meta"),
                "status": self._status.to_dict(), "status_mtime": self._status_mtime,
                "result": None if self._result is None else w.blob(self._result),
                "result_mtime": self._result_mtime}
        state["verifier"] = w.ref(self._verifier, "task verifier area")
        return state

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The task of ``state``, status and result included (the clock is
        ``time.time``). Raises CorruptSnapshot: a bad field."""
        where = "taskfs"
        meta = r.field(state, "meta", dict, where)
        try:
            task = cls(TaskInfo.from_dict(r.field(state, "spec", dict, where)),
                       r.field(meta, "metadata", dict, where + " meta"),
                       version=r.field(meta, "version", int, where + " meta"))
            status = r.field(state, "status", dict, where)
            if set(status) != {a.name for a in attrs.fields(TaskStatus)} or (
                    status["state"] not in (*_TRANSITIONS, "pending")) or not all(
                    status[k] is None or r.field(status, k, float, where) is not None
                    for k in ("started_at", "finished_at")) or (
                    status["error"] is not None and not isinstance(status["error"], str)):
                raise r.fail(where, f"status {status!r:.80} is not a task status")
            status = {**status, "created_at": r.field(status, "created_at", float, where)}
            task._status = TaskStatus(**status)
        except InvalidArgument as e:
            raise r.fail(where, str(e)) from None
        task._meta["created_at"] = r.field(meta, "created_at", float, where + " meta")
        task._meta_bytes = dumps_pretty(task._meta)
        task._status_mtime = r.field(state, "status_mtime", float, where)
        result = state.get("result")
        task._result = None if result is None else r.blob(result, where + " result")
        if task._result is not None:
            try:
                load_json(task._result, RESULT)
            except InvalidContent as e:
                raise r.fail(where, f"result: {e.strerror}") from None
        task._result_mtime = r.field(state, "result_mtime", float, where)
        task._verifier = r.obj(state.get("verifier"), where + " verifier", MemFs)
        return task


class _TaskView(FileService):
    """One role's view of a TaskFs (see there).

    Locking: none of its own; the TaskFs and its verifier MemFs guard the state.
    """

    def __init__(self, task: TaskFs, role: Role) -> None:
        self._task = task
        self._role = role

    snapshot_kind: ClassVar[str] = "taskview"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"task": object id of the TaskFs, "role": "agent" | "verifier"}``."""
        return {"task": w.ref(self._task, f"task ({self._role} view)"), "role": self._role}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> FileService:
        """The task's view of ``state``'s role (the task's own, shared, view)."""
        role = state.get("role")
        if role not in ("agent", "verifier"):
            raise r.fail("taskview", f"role {role!r} is not agent or verifier")
        task = r.obj(state.get("task"), "taskview task", TaskFs)
        return task.agent_view() if role == "agent" else task.verifier_view()

    def __repr__(self) -> str:
        return f"<TaskFs {self._task.spec.id!r} {self._role} view>"

    # -- routing ---------------------------------------------------------------------------------

    def _writable(self, path: str) -> bool:
        """Whether this role may change ``path``."""
        if self._role == "agent":
            return path == RESULT
        return paths.is_within(path, VERIFIER) and path != VERIFIER

    def _deny(self, path: str, path2: str | None = None) -> ReadOnly:
        where = "/result.json" if self._role == "agent" else "below /verifier"
        return ReadOnly(path, f"the {self._role} may write only {where}", path2)

    @staticmethod
    def _inner(path: str) -> str | None:
        """The path inside the verifier MemFs, or None if ``path`` is not in it."""
        if paths.is_within(path, VERIFIER):
            return paths.relative_to(path, VERIFIER)
        return None

    @contextmanager
    def _verifier_errors(self) -> Iterator[None]:
        """Re-raise the verifier MemFs's errors naming view paths."""
        try:
            yield
        except FsError as e:
            p1 = None if e.filename is None else paths.join(VERIFIER, e.filename)
            p2 = None if e.filename2 is None else paths.join(VERIFIER, e.filename2)
            raise e.with_paths(p1, p2) from None

    def _root_names(self) -> list[str]:
        names = ["meta.json", "spec.json", "status", "verifier"]
        if self._task.result_bytes() is not None:
            names.insert(1, "result.json")
        return names

    # -- primitives ------------------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        task = self._task
        inner = self._inner(path)
        if inner is not None:
            with self._verifier_errors():
                st = task._verifier._stat(inner)
            ro = self._role != "verifier"
            return attrs.evolve(st, name=paths.basename(path), readonly=ro)
        if path == "/":
            return Stat("", len(self._root_names()), True, task._meta["created_at"], True)
        if path in _FIXED:
            data, mtime = task._fixed(path)
            return Stat(paths.basename(path), len(data), False, mtime, True)
        if path == RESULT:
            with task._lock:
                data_or_none, mtime = task._result, task._result_mtime
                frozen = task._status.is_finished
            if data_or_none is None:
                raise NotFound(path)
            ro = self._role != "agent" or frozen
            return Stat("result.json", len(data_or_none), False, mtime, ro)
        self._raise_missing(path)

    def _raise_missing(self, path: str) -> NoReturn:
        """Raise NotADirectory if ``path`` goes through a file, else NotFound."""
        top = "/" + paths.parts(path)[0] if path != "/" else "/"
        if top != path and (top in _FIXED
                            or (top == RESULT and self._task.result_bytes() is not None)):
            raise NotADirectory(path)
        raise NotFound(path)

    def _listdir(self, path: str) -> list[str]:
        inner = self._inner(path)
        if inner is not None:
            with self._verifier_errors():
                return self._task._verifier._listdir(inner)
        if path == "/":
            return self._root_names()
        self._stat(path)  # NotFound / NotADirectory for a missing path
        raise NotADirectory(path)

    def _scandir(self, path: str) -> list[Stat]:
        inner = self._inner(path)
        if inner is not None:
            with self._verifier_errors():
                entries = self._task._verifier._scandir(inner)
            ro = self._role != "verifier"
            return [attrs.evolve(st, readonly=ro) for st in entries]
        return super()._scandir(path)

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        task = self._task
        if mode.write and not self._writable(path):
            try:
                self._stat(path)
            except NotADirectory:
                raise
            except NotFound:
                if not mode.create:
                    raise
            raise self._deny(path)
        inner = self._inner(path)
        if inner is not None:
            with self._verifier_errors():
                return task._verifier._open(inner, mode)
        if path == RESULT:
            return self._open_result(path, mode)
        if path in _FIXED:
            data, _ = task._fixed(path)
            return BufferFile(data, mode, path)
        st = self._stat(path)
        check_open(path, mode, st)
        raise AssertionError(f"unreachable: {path}")  # pragma: no cover

    def _open_result(self, path: str, mode: OpenMode) -> io.RawIOBase:
        task = self._task
        try:
            st: Stat | None = self._stat(path)
        except NotFound:
            st = None
        check_open(path, mode, st)
        if mode.write and task.is_finished:
            raise ReadOnly(path, f"task is {task.state}: the result is frozen")
        current = task.result_bytes() or b""
        if not mode.write:
            return BufferFile(current, mode, path)
        start = b"" if mode.truncate or st is None else current
        return BufferFile(
            bytearray(start), mode, path,
            on_close=lambda data: task._commit_result(path, data, mode.exclusive))

    def _mkdir(self, path: str) -> None:
        if not self._writable(path):
            raise self._deny(path)
        inner = self._inner(path)
        assert inner is not None
        with self._verifier_errors():
            self._task._verifier._mkdir(inner)

    def _remove(self, path: str) -> None:
        if not self._writable(path):
            raise self._deny(path)
        if path == RESULT:
            self._task._remove_result(path)
            return
        inner = self._inner(path)
        assert inner is not None
        with self._verifier_errors():
            self._task._verifier._remove(inner)

    def _rmdir(self, path: str) -> None:
        if not self._writable(path) or path == RESULT:
            raise self._deny(path)
        inner = self._inner(path)
        assert inner is not None
        with self._verifier_errors():
            self._task._verifier._rmdir(inner)

    def _rename(self, src: str, dst: str) -> None:
        for p in (src, dst):
            if not self._writable(p):
                raise self._deny(p, dst if p == src else src)
        if src == RESULT or dst == RESULT:
            if src != dst:
                raise self._deny(src, dst)
            self._stat(src)
            return
        s, d = self._inner(src), self._inner(dst)
        assert s is not None and d is not None
        with self._verifier_errors():
            self._task._verifier._rename(s, d)
