"""The kinds of object a snapshot holds, and the type each is rebuilt as.

A kind maps to ``"module:Class"``, imported only when a snapshot holds it (so reading a
snapshot of plain files never imports the capabilities). The type must define
``snapshot_kind`` as its key here, ``snapshot_state`` and ``restore_state`` (see
``oanix.snapshot.protocol``), except the two the writer and the restoring environment
handle themselves: ``namespace`` and ``procfs``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["KINDS", "NAMESPACE", "PROCFS"]

NAMESPACE: Final = "namespace"
PROCFS: Final = "procfs"

KINDS: Final[dict[str, str]] = {
    NAMESPACE: "oanix.namespace:Namespace",
    PROCFS: "oanix.services.proc:ProcFs",
    "memfs": "oanix.fs.mem:MemFs",
    "mapfs": "oanix.fs.map:MapFs",
    "cowfs": "oanix.fs.cow:CowFs",
    "workspacefs": "oanix.fs.workspace:WorkspaceFs",
    "taskfs": "oanix.services.task:TaskFs",
    "taskview": "oanix.services.task:_TaskView",
    "logsfs": "oanix.services.logs:LogsFs",
    "httpfs": "oanix.cap.http.service:HttpFs",
    "nostrfs": "oanix.cap.nostr.service:NostrFs",
    "wsfs": "oanix.cap.ws.service:WsFs",
}
