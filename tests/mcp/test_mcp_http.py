"""The server over streamable HTTP on 127.0.0.1 (a free port it picks and prints), the
default in-memory environment, driven by the SDK's client."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from mcp_client import Client, http_client_for, http_server


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with http_server("--timeout", "30") as u:
        yield u


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[Client]:
    with http_client_for(url) as c:
        yield c


def test_serves_loopback_at_mcp(url: str) -> None:
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")


def test_tools_and_a_command(client: Client) -> None:
    names = {t.name for t in client.portal.call(client.session.list_tools).tools}
    assert names == {"exec", "read", "write", "list", "stat", "glob", "run_python"}
    out = client.ok("exec", command="echo hi; pwd")
    assert (out["exit_status"], out["stdout"]) == (0, "hi\n/workspace\n")


def test_write_read_and_resources(client: Client) -> None:
    client.ok("write", path="a.txt", content="in memory\n")
    assert client.ok("read", path="/workspace/a.txt")["content"] == "in memory\n"
    uris = {str(r.uri) for r in client.portal.call(client.session.list_resources).resources}
    assert "oanix:///workspace/a.txt" in uris
    res = client.portal.call(client.session.read_resource, "oanix:///workspace/a.txt")
    assert res.contents[0].text == "in memory\n"  # type: ignore[union-attr]


def test_refusals(client: Client) -> None:
    assert "NotFound" in client.error("read", path="/etc/passwd")
    assert "NotFound" in client.error("write", path="/etc/passwd", content="x")
    assert "ReadOnly" in client.error("write", path="/passwd", content="x")
    assert "PermissionDenied" in client.error("write", path="/logs/new", content="x")


def test_a_runaway_command_times_out(client: Client) -> None:
    out = client.ok("exec", command="while true; do :; done", timeout=1)
    assert out["timed_out"] and out["exit_status"] == 124


def test_the_server_answers_while_a_command_runs(client: Client) -> None:
    """A long command runs in a worker thread: once it has started (it says so in a
    file), the server still answers a call, before the command ends."""
    order: list[str] = []

    async def both() -> None:
        async def long() -> None:
            await client.session.call_tool("exec", {
                "command": "echo > /tmp/started; while true; do :; done", "timeout": 3})
            order.append("long")

        async with anyio.create_task_group() as tg:
            tg.start_soon(long)
            for _ in range(400):  # polls while the command runs, each one answered
                res = await client.session.call_tool("stat", {"path": "/tmp/started"})
                if not res.is_error:
                    order.append("stat")
                    break
                await anyio.sleep(0.01)

    client.portal.call(both)
    assert order == ["stat", "long"]
