"""WebSockets as files: WsFs (the service) and WsConnector (the trio task holding the
sockets; it needs ``websockets.trio``, websockets 17 and later: the ``ws`` extra, so it
is imported from ``oanix.cap.ws.connector`` or lazily from ``oanix.cap``)."""

from .service import WsFs

__all__ = ["WsFs"]
