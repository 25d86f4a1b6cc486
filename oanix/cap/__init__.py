"""Capability services: the network as files (HTTP, WebSocket, Nostr) and their policy."""

from .http import HttpFs
from .nostr import NostrFs
from .policy import CapabilityPolicy
from .wakeup import Wakeup
from .ws import WsFs

__all__ = ["CapabilityPolicy", "HttpFs", "NostrFs", "Wakeup", "WsFs"]
