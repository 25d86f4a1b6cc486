"""An OanixEnv to a snapshot file and back (``env.snapshot`` and ``OanixEnv.restore``).

The ``root`` meta row is a JSON object::

    {"id": str, "workspace_at": path, "cwd": path, "vars": {name: value},
     "limits": {"fuel", "memory_limit", "timeout", "max_output", "max_disk",
                "max_disk_files", "receipts"},
     "namespace": id,   the environment's namespace (its table in ``mounts``)
     "workspace": id, "tmp": id, "logs": id, "receipts": id, "task": id | null,
     "proc": id}        the process service, kind "procfs": the restoring environment's
                        own takes its place

Not in a snapshot: capability policies and secrets (given again to ``restore`` with the
executors), subscribers of the logs, running programs and sessions, the environment's
status (a restored environment starts ``created``) and its deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .. import __version__
from ..errors import CorruptSnapshot, OanixError, SnapshotError
from ..service import FileService
from ..services.logs import LogsFs
from ..services.proc import ProcFs
from ..services.task import TaskFs
from .format import MAX_SNAPSHOT_BYTES, read_snapshot, write_snapshot
from .protocol import SnapshotReader, SnapshotWriter
from .registry import NAMESPACE, PROCFS

if TYPE_CHECKING:
    from ..env import OanixEnv

__all__ = ["restore_env", "snapshot_env"]


def _proc(env: OanixEnv) -> FileService:
    """The environment's own process service."""
    from ..env import PROC_AT

    for m in env.namespace.mounts():
        if m.path == PROC_AT and isinstance(m.service, ProcFs):
            return m.service
    raise SnapshotError(f"environment {env.id}: no process service at {PROC_AT}")


def snapshot_env(env: OanixEnv, path: str | os.PathLike[str], *,
                 inline_workspace: bool = False) -> None:
    """Write ``env`` to ``path`` (see ``OanixEnv.snapshot``)."""
    w = SnapshotWriter(inline_workspace=inline_workspace)
    proc = _proc(env)
    w.adopt(proc, PROCFS)
    root: dict[str, Any] = {"namespace": w.ref(env.namespace, "/")}
    root.update(
        id=env.id, workspace_at=env.workspace_at, cwd=env.cwd, vars=dict(env.vars),
        limits=attrs.asdict(env.limits), proc=w.ref(proc, "/cap/proc"),
        workspace=w.ref(env.workspace, env.workspace_at), tmp=w.ref(env.tmp, "/tmp"),
        logs=w.ref(env.logs, "/logs"), receipts=w.ref(env.receipts, "/logs/receipts"),
        task=None if env.task is None else w.ref(env.task, "/task"))
    w.data.root = json.dumps(root, sort_keys=True, ensure_ascii=False, allow_nan=False)
    write_snapshot(path, w.data, __version__)


def restore_env(cls: type[OanixEnv], path: str | os.PathLike[str], *,
                workspaces: Mapping[str, str | os.PathLike[str]] | None = None,
                workspace_roots: Sequence[str | os.PathLike[str]] | None = None,
                accept_changed: bool = False, keys: Sequence[bytes | str] = (),
                max_bytes: int = MAX_SNAPSHOT_BYTES, **env_kwargs: Any) -> OanixEnv:
    """The environment in ``path`` (see ``OanixEnv.restore``); on any error, nothing is
    left open and nothing was written."""
    name = os.fspath(path)
    data = read_snapshot(path, max_bytes=max_bytes)
    r = SnapshotReader(data, name, workspaces=workspaces, workspace_roots=workspace_roots,
                       accept_changed=accept_changed, keys=tuple(keys))
    env: OanixEnv | None = None
    try:
        env = _build(cls, r, data.root, env_kwargs)
        return env
    except SnapshotError:
        raise
    except (OanixError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise CorruptSnapshot(f"{name}: malformed snapshot: {e}") from None
    finally:
        if env is None:
            for cleanup in reversed(r.cleanups):
                with contextlib.suppress(Exception):
                    cleanup()


def _build(cls: type[OanixEnv], r: SnapshotReader, root_text: str,
           env_kwargs: dict[str, Any]) -> OanixEnv:
    from ..env import Limits

    try:
        root = json.loads(root_text)
    except (ValueError, RecursionError) as e:
        raise r.fail("root", f"not JSON: {e}") from None
    if not isinstance(root, dict):
        raise r.fail("root", "not a JSON object")
    workspace_at = r.path(root.get("workspace_at"), "root workspace_at")
    cwd = r.path(root.get("cwd"), "root cwd")
    env_id = r.field(root, "id", str, "root")
    variables = r.field(root, "vars", dict, "root")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
        raise r.fail("root vars", "not a map of strings")
    limits_d = r.field(root, "limits", dict, "root")
    if set(limits_d) != {a.name for a in attrs.fields(Limits)}:
        raise r.fail("root limits", f"fields {sorted(limits_d)} are not Limits' fields")
    limits = Limits(**limits_d)
    if r.kind(root.get("namespace"), "root namespace") != NAMESPACE:
        raise r.fail("root namespace", "is not a namespace")
    if r.kind(root.get("proc"), "root proc") != PROCFS:
        raise r.fail("root proc", "is not the process service")
    workspace = r.obj(root.get("workspace"), workspace_at, FileService)
    logs = r.obj(root.get("logs"), "/logs", LogsFs)
    tmp = r.obj(root.get("tmp"), "/tmp", FileService)
    receipts = r.obj(root.get("receipts"), "/logs/receipts", FileService)
    task = None if root.get("task") is None else r.obj(root["task"], "/task", TaskFs)
    env = cls(workspace=workspace, workspace_at=workspace_at, task=task, logs=logs,
              tmp_bytes=None, cwd=cwd, limits=limits, id=env_id, **env_kwargs)
    try:
        env.vars = dict(variables)
        env.tmp = tmp
        env.receipts = receipts
        r.adopt(root["proc"], _proc(env))
        r.adopt(root["namespace"], env.namespace)
        r.fill_namespace(root["namespace"], env.namespace, "/")
    except BaseException:
        env.close()
        raise
    return env

