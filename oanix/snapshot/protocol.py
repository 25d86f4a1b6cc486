"""The snapshot protocol: how a stateful object puts itself into a snapshot and comes back.

A type takes part by defining, in its own module::

    snapshot_kind: ClassVar[str] = "memfs"        # its name in the file (registry.KINDS)

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        ...  # a JSON object; bytes go in as w.blob(data), other objects as w.ref(obj, where)

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        ...  # check every field (r.field, r.blob, r.obj raise CorruptSnapshot)

Only the exact registered type is accepted: a subclass, or any object whose type is not
in ``registry.KINDS``, raises ``Unsnapshottable`` naming the mount point, so nothing is
skipped silently. Namespaces are written by the writer itself (their mount tables go to
the ``mounts`` table).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from .. import paths
from ..errors import CorruptSnapshot, InvalidPath, OanixError, Unsnapshottable
from ..namespace import Mount, Namespace
from ..service import FileService
from .format import MountRow, ObjectRow, SnapshotData, blob_key
from .registry import KINDS, NAMESPACE

__all__ = ["SnapshotReader", "SnapshotWriter", "Snapshottable"]

T = TypeVar("T")


@runtime_checkable
class Snapshottable(Protocol):
    """What a stateful object implements to be snapshotted (see the module docstring)."""

    snapshot_kind: ClassVar[str]

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]: ...

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> object: ...


def kind_of(obj: object) -> str | None:
    """The registered kind of ``obj``'s exact type, or None."""
    kind = getattr(type(obj), "snapshot_kind", None)
    if not isinstance(kind, str) or kind not in KINDS:
        return None
    return kind if _load(kind) is type(obj) else None


def _load(kind: str) -> type:
    module, _, name = KINDS[kind].partition(":")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


def _dumps(value: Any, where: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Unsnapshottable(where, f"state is not plain JSON: {e}") from None


class SnapshotWriter:
    """Collects objects, mount tables and blobs into a ``SnapshotData``.

    Each object is written once (by identity); ``ref`` returns its id. ``adopt`` gives an
    object a kind of its own choosing with a fixed state (the environment's process
    service, which the restoring environment supplies).

    Locking: none; one thread writes a snapshot. Each object's ``snapshot_state`` takes
    that object's own lock, so each object is consistent in itself.
    """

    def __init__(self, *, inline_workspace: bool = False) -> None:
        self.inline_workspace = inline_workspace
        self._ids: dict[int, int] = {}
        self._keep: list[object] = []  # keeps ids stable while writing
        self._adopted: dict[int, tuple[str, dict[str, Any]]] = {}
        self._within: list[str] = []  # the mount points being written, innermost last
        self.data = SnapshotData(root="")

    def adopt(self, obj: object, kind: str, state: dict[str, Any] | None = None) -> None:
        """Write ``obj`` as ``kind`` with ``state`` instead of asking it."""
        self._adopted[id(obj)] = (kind, state or {})

    def blob(self, data: bytes | bytearray) -> dict[str, str]:
        """The JSON stand-in of ``data`` (stored once per content)."""
        raw = bytes(data)
        key = blob_key(raw)
        self.data.blobs.setdefault(key, raw)
        return {"$blob": key}

    def ref(self, obj: object, where: str) -> int:
        """The id of ``obj`` in the snapshot, writing it first if needed.

        Raises:
            Unsnapshottable: ``obj``'s type keeps no portable state (``where`` names it).
        """
        oid = self._ids.get(id(obj))
        if oid is not None:
            return oid
        # the mount point an object belongs to, and what it is inside (a CowFs's base)
        mount = self._within[-1] if self._within else where
        inside = f" ({where})" if self._within and where != mount else ""
        oid = len(self._ids) + 1
        self._ids[id(obj)] = oid
        self._keep.append(obj)
        adopted = self._adopted.get(id(obj))
        if adopted is not None:
            kind, state = adopted
        elif type(obj) is Namespace:
            kind, state = NAMESPACE, {}
            self._mounts(oid, obj, mount)
        else:
            found = kind_of(obj)
            if found is None:
                raise Unsnapshottable(mount, f"a {type(obj).__name__}{inside} cannot be "
                                      f"snapshotted: its state is not portable")
            kind = found
            self._within.append(mount)
            try:
                state = obj.snapshot_state(self)  # type: ignore[attr-defined]
            except Unsnapshottable:
                raise
            except OanixError as e:
                raise Unsnapshottable(mount, f"{type(obj).__name__}{inside}: {e}") from None
            finally:
                self._within.pop()
        self.data.objects.append(ObjectRow(oid, kind, _dumps(state, mount)))
        return oid

    def _mounts(self, oid: int, ns: Namespace, where: str) -> None:
        for seq, m in enumerate(ns.mounts()):
            at = m.path if where == "/" else paths.join(where, m.path.lstrip("/"))
            self._within.append(at)
            try:
                target = self.ref(m.service, at)
            finally:
                self._within.pop()
            self.data.mounts.append(MountRow(oid, seq, m.path, target, m.root, m.create,
                                             m.readonly))


class SnapshotReader:
    """Builds objects back from checked ``SnapshotData``, each once, refusing cycles.

    ``options`` carries restore choices the objects read (for WorkspaceFs: the host
    directories to use, whether a changed one is accepted, the allowed roots).
    ``adopt(id, obj)`` supplies an object instead of building it (the new environment's
    namespace and process service). ``cleanups`` run if the restore fails, so a failed
    restore leaves nothing open.

    Locking: none; one thread restores a snapshot.
    """

    def __init__(self, data: SnapshotData, name: str, **options: Any) -> None:
        self.name = name
        self.options = options
        self._data = data
        self._rows = {o.id: o for o in data.objects}
        if len(self._rows) != len(data.objects):
            raise CorruptSnapshot(f"{name}: an object id appears twice")
        self._mounts: dict[int, list[MountRow]] = {}
        for m in sorted(data.mounts, key=lambda m: (m.namespace, m.seq)):
            self._mounts.setdefault(m.namespace, []).append(m)
        self._built: dict[int, object] = {}
        self._building: set[int] = set()
        self.cleanups: list[Callable[[], None]] = []

    def fail(self, where: str, message: str) -> CorruptSnapshot:
        """The error for a malformed field ``where`` (an object and field name)."""
        return CorruptSnapshot(f"{self.name}: {where}: {message}")

    def adopt(self, oid: int, obj: object) -> None:
        self._built[oid] = obj

    def kind(self, ref: object, where: str) -> str:
        """The kind of object ``ref`` without building it."""
        if type(ref) is not int or ref not in self._rows:
            raise self.fail(where, f"no object {ref!r}")
        return self._rows[ref].kind

    def obj(self, ref: object, where: str, expect: type[T] | None = None) -> T:
        """Object ``ref`` (built on first use), of type ``expect`` if given.

        Raises:
            CorruptSnapshot: no such object, an unknown kind, a cycle, a bad state.
        """
        if type(ref) is not int or ref not in self._rows:
            raise self.fail(where, f"no object {ref!r}")
        if ref not in self._built:
            if ref in self._building:
                raise self.fail(where, f"object {ref} refers back to itself")
            self._building.add(ref)
            try:
                self._built[ref] = self._build(self._rows[ref], where)
            finally:
                self._building.discard(ref)
        out = self._built[ref]
        if expect is not None and not isinstance(out, expect):
            raise self.fail(where, f"object {ref} is a {type(out).__name__}, "
                                   f"not a {expect.__name__}")
        return out  # type: ignore[return-value]

    def _build(self, row: ObjectRow, where: str) -> object:
        if row.kind not in KINDS:
            raise self.fail(where, f"object {row.id} has an unknown kind {row.kind!r}")
        try:
            state = json.loads(row.state, parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:
            raise self.fail(where, f"object {row.id}: state is not JSON: {e}") from None
        if not isinstance(state, dict):
            raise self.fail(where, f"object {row.id}: state is not a JSON object")
        if row.kind == NAMESPACE:
            return self._namespace(row.id, where)
        cls = _load(row.kind)
        if not hasattr(cls, "restore_state"):
            raise self.fail(where, f"object {row.id}: a {row.kind} is supplied by the "
                                   f"restoring environment, not built")
        built: object = cls.restore_state(state, self)
        return built

    def _namespace(self, oid: int, where: str) -> object:
        ns = Namespace()
        self.fill_namespace(oid, ns, where)
        return ns

    def fill_namespace(self, oid: int, ns: Namespace, where: str) -> None:
        """Give ``ns`` the mount table of namespace ``oid``, its services built."""
        try:
            ns.restore_mounts(self._mounts_of(oid))
        except OanixError as e:
            if isinstance(e, CorruptSnapshot):
                raise
            raise self.fail(where, f"mount table refused: {e}") from None

    def _mounts_of(self, oid: int) -> list[Mount]:
        out = []
        for m in self._mounts.get(oid, []):
            at = f"mount {m.path!r}"
            path = self.path(m.path, at)
            root = self.path(m.root, f"{at} root")
            service = self.obj(m.object, at, FileService)
            out.append(Mount(path, service, root, m.create, m.readonly))
        return out

    # -- checked fields --------------------------------------------------------------------

    def field(self, state: Mapping[str, Any], key: str, kind: type[T] | tuple[type, ...],
              where: str) -> T:
        """``state[key]``, which must be of ``kind`` (bool is not an int; an int is a
        float; floats must be finite)."""
        if key not in state:
            raise self.fail(where, f"field {key!r} is missing")
        value = state[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(where, f"field {key!r} is {value!r}")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            raise self.fail(where, f"field {key!r} is a {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(where, f"field {key!r} is not finite")
        return value  # type: ignore[return-value]

    def blob(self, value: object, where: str) -> bytes:
        """The bytes a ``{"$blob": key}`` stands for."""
        if not (isinstance(value, dict) and len(value) == 1
                and isinstance(value.get("$blob"), str)):
            raise self.fail(where, f"expected a blob reference, found {value!r:.60}")
        data = self._data.blobs.get(value["$blob"])
        if data is None:
            raise self.fail(where, f"blob {value['$blob']!r} is missing")
        return data

    def path(self, value: object, where: str) -> str:
        """``value``, which must be an absolute normalised path (as stored)."""
        if not isinstance(value, str):
            raise self.fail(where, f"path {value!r:.60} is not a string")
        try:
            norm = paths.normalize(value)
        except InvalidPath:
            norm = None
        if norm != value or not value.startswith("/"):
            raise self.fail(where, f"path {value!r:.80} is not an absolute normalised path")
        return value

    def strings(self, value: object, where: str) -> Sequence[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "expected a list of strings")
        return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
