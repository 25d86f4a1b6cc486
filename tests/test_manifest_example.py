"""The example manifest (examples/env.toml) loads, builds what it says, and is the one the
README shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oanix import CowFs, NoSpace, WorkspaceFs
from oanix.env import OanixEnv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "env.toml"


def test_the_example_manifest_builds_its_environment() -> None:
    with OanixEnv.from_manifest(EXAMPLE) as env:
        assert (env.id, env.cwd, env.vars["LANG"]) == ("example-agent", "/workspace",
                                                       "C.UTF-8")
        lim = env.limits
        assert (lim.fuel, lim.memory_limit, lim.timeout, lim.max_output, lim.max_disk,
                lim.max_disk_files) == (10**10, 256 << 20, 30.0, 4 << 20, 512 << 20, 10_000)
        assert isinstance(env.workspace, CowFs)
        assert isinstance(env.workspace.base, WorkspaceFs)
        assert sorted(env.namespace.listdir("/cap")) == ["http", "nostr", "proc"]
        r = env.exec("cat /data/rows.csv; ls task.yaml; echo hi > note.txt")
        assert r.stdout == b"a,b\n1,2\ntask.yaml\n"
        for quota, where in ((64 << 20, "/tmp/big"), (16 << 20, "/scratch/big")):
            with pytest.raises(NoSpace):
                env.namespace.write_bytes(where, bytes(quota + 1))
        assert env.workspace.changes().added == ("/note.txt",)
        assert not (ROOT / "examples" / "tasks" / "hello-world" / "note.txt").exists()


def test_the_readme_shows_the_example_manifest() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```toml\n(.*?)^```$", readme, re.M | re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks


def test_overrides_win_over_the_manifest() -> None:
    with OanixEnv.from_manifest(EXAMPLE, id="run-7", cwd="/data", network=None) as env:
        assert (env.id, env.cwd) == ("run-7", "/data")
        assert "http" not in env.namespace.listdir("/cap")
