"""Attacks on the MCP server's paths: a client tries to reach host files outside what
the environment mounts, through the tools and the resource URIs, and to change a
read-only mount. Each attack is performed in process against ``OanixMCPServer`` (the
same handlers the transports call) over a real host workspace; it must fail and leave
the host as it was."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, TextContent

from oanix.env import OanixEnv
from oanix.fs.workspace import WorkspaceFs
from oanix.mcp import OanixMCPServer

SECRET = "host secret 7f3a"

TRAVERSALS = ["../../../../../../etc/passwd", "/workspace/../../../etc/passwd",
              "//etc/passwd", "/./etc/../etc/passwd", "/workspace/" + "../" * 200 + "etc/passwd",
              "../outside/secret.txt", "/workspace/../outside/secret.txt",
              "escape", "outdir/secret.txt", "/workspace/outdir/secret.txt"]


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "ok.txt").write_text("fine")
    (ws / "escape").symlink_to(outside / "secret.txt")
    (ws / "outdir").symlink_to(outside)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "data.txt").write_text("original")
    return tmp_path


@pytest.fixture()
def server(host: Path) -> Iterator[OanixMCPServer]:
    with OanixEnv(workspace=WorkspaceFs(host / "ws"),
                  mounts={"/ro": WorkspaceFs(host / "ro", readonly=True)}) as env:
        yield OanixMCPServer(env, timeout=10)


def call(server: OanixMCPServer, name: str, **arguments: Any) -> CallToolResult:
    """The result a client gets (a refusal is ``is_error``, as the server sends it)."""
    try:
        res = anyio.run(server.call_tool, name, arguments)
    except ToolError as e:
        return CallToolResult(content=[TextContent(type="text", text=str(e))], is_error=True)
    assert isinstance(res, CallToolResult)
    return res


def text(res: CallToolResult) -> str:
    return "".join(b.text for b in res.content if isinstance(b, TextContent))


def host_unchanged(host: Path) -> None:
    assert (host / "outside" / "secret.txt").read_text() == SECRET
    assert sorted(p.name for p in (host / "outside").iterdir()) == ["secret.txt"]
    assert (host / "ro" / "data.txt").read_text() == "original"
    assert sorted(p.name for p in (host / "ro").iterdir()) == ["data.txt"]


def test_reads_outside_the_namespace_fail(server: OanixMCPServer, host: Path) -> None:
    for path in TRAVERSALS:
        for name, args in (("read", {"path": path}), ("stat", {"path": path}),
                           ("list", {"path": path})):
            res = call(server, name, **args)
            assert res.is_error, (name, path, res.structured_content)
            assert SECRET not in text(res) and "root:" not in text(res)
    assert call(server, "read", path="ok.txt").structured_content["content"] == "fine"  # type: ignore[index]


def test_writes_outside_the_namespace_fail(server: OanixMCPServer, host: Path) -> None:
    for path in [*TRAVERSALS, "outdir/new.txt", "../outside/new.txt", "/outside/new.txt"]:
        for append in (False, True):
            res = call(server, "write", path=path, content="pwned", append=append)
            assert res.is_error, (path, res.structured_content)
    host_unchanged(host)


def test_nul_bytes_in_paths_are_refused(server: OanixMCPServer) -> None:
    for name in ("read", "stat", "list"):
        res = call(server, name, path="ok.txt\x00/../../outside/secret.txt")
        assert res.is_error and "InvalidPath" in text(res)


def test_glob_finds_nothing_outside(server: OanixMCPServer) -> None:
    """A pattern matches namespace paths only; a walk that meets a symlink out of the
    host workspace fails with the typed error naming it, and shows nothing beyond."""
    for pattern in ("/**", "/**/secret.txt", "../*/*", "/etc/*", "outdir/*", "/*/*.txt"):
        res = call(server, "glob", pattern=pattern)
        if res.is_error:
            assert "PermissionDenied" in text(res) and SECRET not in text(res), pattern
            continue
        found = res.structured_content["paths"]  # type: ignore[index]
        assert not any(p.startswith(("/etc", "/outside")) or "secret" in p for p in found)
    res = call(server, "glob", pattern="/*/*.txt")
    assert res.structured_content["paths"] == [  # type: ignore[index]
        "/ro/data.txt", "/workspace/ok.txt"]


def test_the_read_only_mount_stays_unchanged(server: OanixMCPServer, host: Path) -> None:
    attempts = [{"path": "/ro/data.txt", "content": "x"},
                {"path": "/ro/data.txt", "content": "x", "append": True},
                {"path": "/ro/new.txt", "content": "x"},
                {"path": "/ro/../ro/data.txt", "content": base64.b64encode(b"x").decode(),
                 "base64": True}]
    for args in attempts:
        res = call(server, "write", **args)
        assert res.is_error and "ReadOnly" in text(res), args
    res = call(server, "exec", command="echo x > /ro/data.txt; rm /ro/data.txt; "
               "mv /ro/data.txt /tmp/; touch /ro/new")
    assert res.structured_content["exit_status"] != 0  # type: ignore[index]
    host_unchanged(host)


def test_commands_reach_nothing_outside(server: OanixMCPServer, host: Path) -> None:
    outside = host / "outside" / "secret.txt"
    for command, cwd in (("cat /etc/passwd", None), ("cat passwd", "/etc"),
                         (f"cat {outside}", None), ("cat escape; cat outdir/secret.txt", None),
                         ("echo pwned > outdir/new.txt", None)):
        res = call(server, "exec", command=command, cwd=cwd)
        out = res.structured_content or {}
        assert SECRET not in str(out) and "root:" not in str(out), command
        assert res.is_error or out["exit_status"] != 0, command
    host_unchanged(host)


def test_resource_uris_outside_the_namespace_fail(server: OanixMCPServer) -> None:
    uris = ["oanix:///etc/passwd", "oanix:///workspace/%2e%2e/%2e%2e/etc/passwd",
            "oanix:///workspace/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "oanix:///%252e%252e/etc",
            "oanix:///workspace/escape", "oanix:///workspace/outdir/secret.txt",
            "oanix://localhost/etc/passwd", "oanix:etc/passwd", "file:///etc/passwd",
            "oanix:///workspace/ok.txt%00/../../../outside/secret.txt"]
    for uri in uris:
        with pytest.raises(ResourceError) as info:
            anyio.run(server.read_resource, uri)
        assert SECRET not in str(info.value), uri
    listed = anyio.run(server.list_resources)
    assert {str(r.uri) for r in listed} >= {"oanix:///workspace/ok.txt", "oanix:///ro/data.txt"}
    assert not any("secret" in str(r.uri) for r in listed)
