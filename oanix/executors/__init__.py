"""Executors: trio tasks that carry out what capability services queue."""

from .http import HttpExecutor
from .manager import ExecutorManager
from .nostr import NostrRelayConnector
from .retry import RetryPolicy
from .ws import WsConnector

__all__ = ["ExecutorManager", "HttpExecutor", "NostrRelayConnector", "RetryPolicy",
           "WsConnector"]
