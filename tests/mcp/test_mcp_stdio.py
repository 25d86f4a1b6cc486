"""The server over stdio, from a manifest (a host workspace, a read-only mount, an HTTP
capability), driven by the SDK's client: every tool, the refusals, resources."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import MCPError
from mcp_client import Client, host_tree, stdio_client_for

__all__ = ["host_tree"]  # a fixture, used by name

TOOLS = {"exec", "read", "write", "list", "stat", "glob", "run_python"}


@pytest.fixture(scope="module")
def client(host_tree: Path) -> Iterator[Client]:
    with stdio_client_for("--manifest", str(host_tree / "env.toml"), "--timeout", "30") as c:
        yield c


def test_lists_the_tools_with_their_schemas(client: Client) -> None:
    tools = {t.name: t for t in client.portal.call(client.session.list_tools).tools}
    assert set(tools) == TOOLS
    assert tools["exec"].input_schema["required"] == ["command"]
    assert tools["write"].input_schema["required"] == ["path", "content"]


def test_exec_runs_a_command_line_in_the_workspace(client: Client) -> None:
    out = client.ok("exec", command="pwd; cat hello.txt | tr a-z A-Z; echo oops >&2; exit 3")
    assert out["exit_status"] == 3
    assert out["stdout"] == "/workspace\nHELLO FROM THE HOST\n"
    assert out["stderr"] == "oops\n"
    assert not out["timed_out"] and not out["stdout_truncated"]


def test_exec_takes_stdin_and_cwd(client: Client) -> None:
    out = client.ok("exec", command="wc -c; pwd", stdin="abc", cwd="/tmp")
    assert out["stdout"].split() == ["3", "/tmp"]


def test_write_then_read_and_what_the_host_sees(client: Client, host_tree: Path) -> None:
    assert client.ok("write", path="notes/../new.txt", content="one\n")["size"] == 4
    assert client.ok("write", path="new.txt", content="two\n", append=True)["size"] == 8
    out = client.ok("read", path="/workspace/new.txt")
    assert (out["encoding"], out["content"], out["eof"]) == ("utf-8", "one\ntwo\n", True)
    assert (host_tree / "ws" / "new.txt").read_text() == "one\ntwo\n"
    part = client.ok("read", path="new.txt", offset=4, length=2)
    assert (part["content"], part["size"], part["eof"]) == ("tw", 8, False)


def test_binary_content_goes_as_base64(client: Client) -> None:
    data = bytes(range(256))
    client.ok("write", path="/tmp/b.bin", content=base64.b64encode(data).decode(),
              base64=True)
    out = client.ok("read", path="/tmp/b.bin")
    assert out["encoding"] == "base64"
    assert base64.b64decode(out["content"]) == data
    assert "not valid base64" in client.error("write", path="/tmp/c", content="@@",
                                              base64=True)


def test_list_stat_glob(client: Client) -> None:
    names = {e["name"] for e in client.ok("list", path="/")["entries"]}
    assert {"workspace", "ro", "tmp", "logs", "bin", "cap"} <= names
    st = client.ok("stat", path="/ro/data.txt")
    assert (st["is_dir"], st["size"], st["readonly"]) == (False, 15, True)
    assert client.ok("glob", pattern="/ro/*.txt")["paths"] == ["/ro/data.txt"]


def test_paths_outside_the_namespace_are_refused(client: Client) -> None:
    for path in ("/etc/passwd", "../../../../etc/passwd", "/workspace/../../etc/passwd"):
        assert "NotFound" in client.error("read", path=path), path
    assert "NotFound" in client.error("stat", path="/etc")
    assert "NotFound" in client.error("list", path="/home")
    assert client.ok("glob", pattern="/etc/*")["paths"] == []
    out = client.ok("exec", command="cat /etc/passwd")
    assert out["exit_status"] != 0 and out["stdout"] == ""


def test_a_symlink_out_of_the_host_workspace_is_refused(client: Client) -> None:
    text = client.error("read", path="escape")
    assert "host secret" not in text and "escape" in text
    out = client.ok("exec", command="cat escape")
    assert out["exit_status"] != 0 and "host secret" not in out["stdout"]


def test_writes_to_a_read_only_mount_fail_with_the_typed_error(
        client: Client, host_tree: Path) -> None:
    text = client.error("write", path="/ro/data.txt", content="changed")
    assert "ReadOnly" in text and "/ro/data.txt" in text
    assert "ReadOnly" in client.error("write", path="/ro/new.txt", content="x")
    assert (host_tree / "ro" / "data.txt").read_text() == "read-only data\n"
    assert not (host_tree / "ro" / "new.txt").exists()


def test_exec_follows_the_capability_policy(client: Client) -> None:
    out = client.ok("exec", command="curl -s -S http://127.0.0.1:9/")
    assert out["exit_status"] != 0 and "not allowed" in out["stderr"]


def test_a_runaway_command_times_out(client: Client) -> None:
    out = client.ok("exec", command="while true; do :; done", timeout=1)
    assert out["timed_out"] and out["exit_status"] == 124


def test_run_python_over_the_namespace(client: Client) -> None:
    out = client.ok("run_python", code="import sys\nprint(open('hello.txt').read().upper())\n"
                    "sys.stdout.write(sys.stdin.read())", stdin="piped")
    assert out["exit_status"] == 0, out["stderr"]
    assert out["stdout"] == "HELLO FROM THE HOST\n\npiped"
    out = client.ok("run_python", code="while True: pass", timeout=1)
    assert out["timed_out"] and out["trap"] is not None


def test_bad_arguments_are_tool_errors(client: Client) -> None:
    assert "command" in client.error("exec", command=3)
    assert "timeout" in client.error("exec", command="true", timeout=-1)


def test_resources_list_and_read(client: Client) -> None:
    listed = client.portal.call(client.session.list_resources).resources
    uris = {str(r.uri) for r in listed}
    assert "oanix:///workspace/hello.txt" in uris and "oanix:///ro/data.txt" in uris
    assert not any(u.startswith("oanix:///cap/") for u in uris)
    res = client.portal.call(client.session.read_resource, "oanix:///ro/data.txt")
    assert res.contents[0].text == "read-only data\n"  # type: ignore[union-attr]


def test_resources_outside_the_namespace_are_refused(client: Client) -> None:
    for uri in ("oanix:///etc/passwd", "oanix:///workspace/%2e%2e/%2e%2e/etc/passwd",
                "oanix:///workspace/escape", "file:///etc/passwd", "oanix://host/etc"):
        with pytest.raises(MCPError) as info:
            client.portal.call(client.session.read_resource, uri)
        assert "host secret" not in str(info.value) and "root:" not in str(info.value)


def test_list_shows_a_directory_holding_a_refused_symlink(client: Client) -> None:
    listed = {e["name"]: e for e in client.ok("list", path="/workspace")["entries"]}
    assert "hello.txt" in listed and listed["escape"]["readonly"]
