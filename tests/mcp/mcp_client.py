"""Real servers (``python -m oanix.mcp`` in a subprocess) and the SDK's own client.

A ``Client`` keeps one MCP session open on a background event loop (an anyio blocking
portal), so a module's tests share one server and call it synchronously. Import what a
module uses from here (``from mcp_client import Client, stdio_client_for``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

ROOT = Path(__file__).resolve().parents[2]
READY = "oanix-mcp: serving "


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def server_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "oanix.mcp", *args]


class Client:
    """One open session; every method blocks until the server answers."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def call(self, name: str, **arguments: Any) -> CallToolResult:
        return self.portal.call(self.session.call_tool, name, arguments)

    def ok(self, name: str, **arguments: Any) -> dict[str, Any]:
        """The structured result of a call that must succeed."""
        res = self.call(name, **arguments)
        assert not res.is_error, res.content
        assert res.structured_content is not None
        return res.structured_content

    def error(self, name: str, **arguments: Any) -> str:
        """The text of a call that must fail (``isError``)."""
        res = self.call(name, **arguments)
        assert res.is_error, res.structured_content
        block = res.content[0]
        assert isinstance(block, TextContent)
        return block.text


@contextlib.asynccontextmanager
async def _stdio_session(args: list[str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=args[1:], env=child_env(),
                                   cwd=str(ROOT))
    async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def _http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        yield session


@contextlib.contextmanager
def stdio_client_for(*args: str) -> Iterator[Client]:
    """A session with ``python -m oanix.mcp ARGS`` over its stdin and stdout."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            _stdio_session(server_args(*args))) as session:
        yield Client(portal, session)


@contextlib.contextmanager
def http_server(*args: str) -> Iterator[str]:
    """``python -m oanix.mcp --transport http --port 0 ARGS``; yields its URL, read from
    the line it prints once it accepts connections."""
    proc = subprocess.Popen(server_args("--transport", "http", "--port", "0", *args),
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=child_env(), cwd=ROOT)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # EOF ('') if the server dies first
        assert line.startswith(READY), line + proc.stderr.read()
        yield line.removeprefix(READY).strip()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.contextmanager
def http_client_for(url: str) -> Iterator[Client]:
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            _http_session(url)) as session:
        yield Client(portal, session)


@pytest.fixture(scope="module")
def host_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory with a workspace, a read-only directory, a secret outside both
    and a manifest mounting the two (and an HTTP capability allowing one host)."""
    root = tmp_path_factory.mktemp("mcp")
    (root / "secret.txt").write_text("host secret\n")
    ws = root / "ws"
    ws.mkdir()
    (ws / "hello.txt").write_text("hello from the host\n")
    (ws / "escape").symlink_to(root / "secret.txt")
    ro = root / "ro"
    ro.mkdir()
    (ro / "data.txt").write_text("read-only data\n")
    (root / "env.toml").write_text(
        'cwd = "/workspace"\n'
        "[workspace]\n"
        'dir = "ws"\n'
        "[[mounts]]\n"
        'path = "/ro"\n'
        'dir = "ro"\n'
        "readonly = true\n"
        "[capabilities.http]\n"
        'hosts = ["example.invalid"]\n')
    return root
