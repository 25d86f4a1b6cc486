"""An ``OanixEnv`` as an MCP server, on the official SDK's ``MCPServer``: the tools of
``oanix.mcp.tools`` and the namespace's files as resources (``oanix.mcp.resources``).

Each tool call runs in a worker thread (``anyio.to_thread``), so a long command leaves
the server answering other requests; at most ``max_workers`` calls run at once and the
others wait for a worker. A thread is not interrupted: a call the client gives up on
runs on until its work ends (a command or a Python run at its timeout). A call that
fails with an oanix error (a path outside the namespace, a read-only mount, a bad
argument) is a tool error (``isError``) whose text names the error's type and message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import InputRequiredResult, Resource, ResourceTemplate
from pydantic.networks import AnyUrl

from ..env import OanixEnv
from ..errors import InvalidArgument, NotFound, OanixError
from ..service import FileService
from .resources import SCHEME, list_files, path_of, uri_of
from .tools import EnvTools

__all__ = ["DEFAULT_WORKERS", "MAX_RESOURCE_BYTES", "OanixMCPServer"]

DEFAULT_WORKERS = 4
"""Tool calls that run at once (each in its own thread)."""


MAX_RESOURCE_BYTES = 16 << 20
"""The largest file a resource read returns (the ``read`` tool reads any file in parts)."""


def _message(e: OanixError) -> str:
    return f"{type(e).__name__}: {e}"


def _read_resource(ns: FileService, path: str) -> bytes:
    size = ns.stat(path).size
    if size > MAX_RESOURCE_BYTES:
        raise InvalidArgument(f"{path}: {size} bytes, over the {MAX_RESOURCE_BYTES} a "
                              "resource read returns (the read tool reads it in parts)")
    return ns.read_bytes(path)


class OanixMCPServer(MCPServer):
    """``env`` served over MCP: tools ``exec``, ``read``, ``write``, ``list``, ``stat``,
    ``glob``, ``run_python``; resources ``oanix:///<path>`` for the namespace's files.

    ``timeout`` bounds each command line and Python run (see ``EnvTools``). The server
    does not close ``env``: its owner does.

    Locking: tool calls and resource reads run in worker threads, at most
    ``max_workers`` at once, and call the environment concurrently, which it allows
    (see ``EnvTools``); the server keeps no state of its own beyond the SDK's.
    """

    def __init__(self, env: OanixEnv, *, timeout: float | None = None,
                 max_workers: int = DEFAULT_WORKERS, name: str = "oanix") -> None:
        super().__init__(name, instructions=(
            "An oanix agent environment: a namespace of files (the workspace, /tmp, "
            "/logs, /cap/<capability>) and a shell over it. Paths are namespace paths."),
                         log_level="WARNING")
        self.env = env
        self.tools = EnvTools(env, timeout=timeout)
        self._limiter = anyio.CapacityLimiter(max_workers)
        for name_, fn in (("exec", self.tools.exec), ("read", self.tools.read),
                          ("write", self.tools.write), ("list", self.tools.list_dir),
                          ("stat", self.tools.stat), ("glob", self.tools.glob),
                          ("run_python", self.tools.run_python)):
            self.add_tool(self._threaded(fn), name=name_, structured_output=True)

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def _threaded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` as an async tool with its signature (the SDK reads the schema from
        it), run in a worker thread; an oanix error becomes a tool error."""
        @functools.wraps(fn)
        async def tool(**kwargs: Any) -> Any:
            try:
                return await self._in_thread(functools.partial(fn, **kwargs))
            except OanixError as e:
                raise ToolError(_message(e)) from None
        return tool

    # -- resources ---------------------------------------------------------------------

    async def list_resources(self) -> list[Resource]:
        """The namespace's files (bounded: see ``oanix.mcp.resources``)."""
        files = await self._in_thread(functools.partial(list_files, self.env.namespace))
        return [Resource(uri=uri_of(f.path), name=f.path, size=f.size) for f in files]

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return [ResourceTemplate(uri_template=f"{SCHEME}://{{+path}}", name="file",
                                 description="a file of the namespace by its path")]

    async def read_resource(self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
                            ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        """The file ``oanix:///<path>``: text if it is UTF-8, else bytes (as ``read``).

        Raises:
            ResourceNotFoundError: no such file in the namespace.
            ResourceError: not an oanix URI, a file over ``MAX_RESOURCE_BYTES``, or
                another oanix error (naming it).
        """
        try:
            path = path_of(str(uri))
            data = await self._in_thread(functools.partial(_read_resource,
                                                           self.env.namespace, path))
        except NotFound as e:
            raise ResourceNotFoundError(_message(e)) from None
        except OanixError as e:
            raise ResourceError(_message(e)) from None
        try:
            return [ReadResourceContents(data.decode("utf-8"), "text/plain")]
        except UnicodeDecodeError:
            return [ReadResourceContents(data, "application/octet-stream")]
