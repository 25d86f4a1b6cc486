"""Capabilities: the network as files. One folder per capability (``http/``, ``ws/``,
``nostr/``), each holding its file service and the trio task that carries out what the
service queues; beside them what they share: the policy, the retry rule, the wakeup, the
run-once lifecycle, and the manager that runs the executors.

The executors are imported on first use. The WebSocket and Nostr connectors use
``websockets.trio`` (websockets 17 and later, the ``ws`` extra), so the rest works with an
older websockets (the one Harbor's dependencies pin, for ``oanix[harbor]``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .http import HttpFs
from .nostr import NostrFs
from .policy import CapabilityPolicy
from .retry import RetryPolicy
from .wakeup import Wakeup
from .ws import WsFs

if TYPE_CHECKING:
    from .http.executor import HttpExecutor
    from .manager import ExecutorManager
    from .nostr.connector import NostrRelayConnector
    from .ws.connector import WsConnector

__all__ = ["CapabilityPolicy", "ExecutorManager", "HttpExecutor", "HttpFs", "NostrFs",
           "NostrRelayConnector", "RetryPolicy", "Wakeup", "WsConnector", "WsFs"]

# Executors are imported on first use: httpx and websockets cost more to import than the
# services, and the connectors need websockets.trio.
_LAZY = {"ExecutorManager": ".manager", "HttpExecutor": ".http.executor",
         "NostrRelayConnector": ".nostr.connector", "WsConnector": ".ws.connector"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(import_module(module, __name__), name)
    except ModuleNotFoundError as e:
        if e.name != "websockets.trio":
            raise
        raise ImportError(f"{name} needs websockets>=17 (websockets.trio); "
                          "pip install 'oanix[ws]'") from None
    globals()[name] = value
    return value
