"""Attack: a child process plants symbolic links in its parent's directories.

A process that sandboxed Python starts (``subprocess`` through ``/cap/proc``) works in the
directories of the parent's run, as they are. Its own run does not walk them afterwards:
the parent's sync does. So a link the child leaves there must still be removed and
reported refused when the parent's run ends, whether the directory is a staged copy or a
host directory shown as it is, and no link may reach the namespace or the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oanix import OanixEnv
from oanix.fs.workspace import WorkspaceFs
from oanix.wasi import WasiRuntime

CHILD = """
import os
os.makedirs("deeper")
os.symlink("../../../../../../etc/passwd", "config.yaml")
os.symlink("../../../../../../etc/shadow", "deeper/settings.toml")
os.symlink("..", "deeper/up")
open("kept.txt", "w").write("plain file")
"""
PARENT = f"""
import subprocess, sys
r = subprocess.run([sys.executable, "-c", {CHILD!r}], capture_output=True, text=True)
print(r.returncode, r.stderr)
"""
PLANTED = {"/workspace/config.yaml", "/workspace/deeper/settings.toml",
           "/workspace/deeper/up"}


@pytest.fixture(params=["staged", "host"])
def env(request: pytest.FixtureRequest, rt: WasiRuntime, tmp_path: Path
        ) -> Iterator[tuple[OanixEnv, Path | None]]:
    host = tmp_path / "ws" if request.param == "host" else None
    if host is not None:
        host.mkdir()
    ws = WorkspaceFs(host) if host is not None else None
    with OanixEnv(runtime=rt, workspace=ws) as e:
        yield e, host


def test_links_a_child_plants_are_removed_by_the_parents_run(
        env: tuple[OanixEnv, Path | None]) -> None:
    e, host = env
    res = e.run_python(code=PARENT)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.split()[0] == b"0", res.stdout  # the child did plant them
    refused = {path for path, _reason in res.changes.refused}
    assert refused >= PLANTED, res.changes
    assert e.namespace.read_text("/workspace/kept.txt") == "plain file"
    assert sorted(e.namespace.listdir("/workspace")) == ["deeper", "kept.txt"]
    assert e.namespace.listdir("/workspace/deeper") == []
    if host is not None:
        assert not [p for p in host.rglob("*") if p.is_symlink()]
