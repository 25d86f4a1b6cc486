"""Stop-and-copy migration: move a running environment to another process.

::

    # process 1
    oanix.migrate(env, "/shared/agent.oanix")          # drain, snapshot, close
    # process 2
    env = oanix.resume("/shared/agent.oanix",
                       executors=lambda caps: [HttpExecutor(caps["http"], policy)])

``migrate`` drains every capability service that can drain (``HttpFs``): from then on a
write to its request file (or ``submit``) raises ``Draining`` and no pending request is
handed to an executor; it waits up to ``timeout`` for the requests in flight to finish
here, snapshots the environment and closes it. ``resume`` restores it and starts it, so
the new executors perform the requests that were still pending. Each request is
performed once: pending ones only in the new process; in-flight ones only in the old
(one still in flight when ``timeout`` passes is recorded as failed with ``shutdown`` in
the new process, since it may have been performed, and is never retried).

If the snapshot cannot be written, the capabilities accept work again and the
environment is left running, as it was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..env import OanixEnv
from ..namespace import Namespace
from ..service import FileService

__all__ = ["Drainable", "drain", "migrate", "resume"]


@runtime_checkable
class Drainable(Protocol):
    """A capability service that can stop taking work (``HttpFs``)."""

    def drain(self) -> None: ...

    def undrain(self) -> None: ...

    def wait_in_flight(self, timeout: float | None = None) -> bool: ...


def _services(ns: Namespace) -> Iterator[FileService]:
    """Every service mounted in ``ns`` and the namespaces in it, each once."""
    seen: set[int] = set()
    stack: list[FileService] = [ns]
    while stack:
        svc = stack.pop()
        if id(svc) in seen:
            continue
        seen.add(id(svc))
        if isinstance(svc, Namespace):
            stack.extend(m.service for m in svc.mounts())
        else:
            yield svc


def drain(env: OanixEnv, timeout: float = 30.0) -> list[Drainable]:
    """Drain ``env``'s capabilities and wait up to ``timeout`` seconds for their requests
    in flight; return the drained services (``undrain`` them to give up)."""
    drained: list[Drainable] = [s for s in _services(env.namespace)
                                if isinstance(s, Drainable)]
    for svc in drained:
        svc.drain()
    deadline = time.monotonic() + timeout
    for svc in drained:
        svc.wait_in_flight(max(0.0, deadline - time.monotonic()))
    return drained


def migrate(env: OanixEnv, path: str | os.PathLike[str], *, timeout: float = 30.0,
            inline_workspace: bool = False) -> Path:
    """Drain ``env``, snapshot it to ``path`` and close it (see the module docstring).

    Raises:
        Unsnapshottable, SnapshotError: as ``OanixEnv.snapshot``; the environment then
            accepts work again and stays open.
    """
    drained = drain(env, timeout)
    try:
        env.snapshot(path, inline_workspace=inline_workspace)
    except BaseException:
        for svc in drained:
            svc.undrain()
        raise
    env.close()
    return Path(path)


def resume(path: str | os.PathLike[str], **restore: Any) -> OanixEnv:
    """``OanixEnv.restore(path, **restore)``, started: its executors perform the requests
    the snapshot holds as pending."""
    env = OanixEnv.restore(path, **restore)
    env.start()
    return env
