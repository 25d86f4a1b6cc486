"""Run an ``OanixMCPServer`` over stdio or streamable HTTP (the SDK's transports).

HTTP binds its socket before serving, so ``port=0`` picks a free port and ``ready`` is
told the address once connections are accepted (the command line prints it).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from .server import OanixMCPServer

__all__ = ["MCP_PATH", "serve_http", "serve_stdio"]

MCP_PATH = "/mcp"


async def serve_stdio(server: OanixMCPServer) -> None:
    """Serve one client on this process's stdin and stdout until stdin closes."""
    await server.run_stdio_async()


async def serve_http(server: OanixMCPServer, host: str, port: int,
                     ready: Callable[[str], None] = lambda url: None) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until SIGINT or SIGTERM; every
    client session works in the same environment.

    With a loopback ``host`` the SDK refuses requests whose Host or Origin header is
    not loopback (DNS rebinding). There is no authentication: anyone who can connect
    can use the environment.

    Raises:
        OSError: the address cannot be bound.
    """
    sock = socket.create_server((host, port))
    bound = sock.getsockname()[1]
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    shown = f"[{host}]" if ":" in host else host
    ready(f"http://{shown}:{bound}{MCP_PATH}")
    await uvicorn.Server(config).serve(sockets=[sock])
