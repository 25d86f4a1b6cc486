"""Executors: trio tasks that carry out what capability services queue.

The WebSocket and Nostr connectors use ``websockets.trio`` (websockets 17 and later):
they are imported on first use, so the rest works with an older websockets (the one
Harbor's dependencies pin, for ``oanix[harbor]``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .http import HttpExecutor
from .manager import ExecutorManager
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .nostr import NostrRelayConnector
    from .ws import WsConnector

__all__ = ["ExecutorManager", "HttpExecutor", "NostrRelayConnector", "RetryPolicy",
           "WsConnector"]

_LAZY = {"NostrRelayConnector": ".nostr", "WsConnector": ".ws"}


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
                          "pip install 'websockets>=17'") from None
    globals()[name] = value
    return value
