"""A corrupt, truncated, foreign or newer snapshot fails with a typed error and changes
nothing: no environment, no file written, no descriptor left open."""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from oanix import (
    CorruptSnapshot,
    CowFs,
    MemFs,
    OanixEnv,
    SnapshotError,
    SnapshotVersionError,
    TaskFs,
    TaskInfo,
    WorkspaceChanged,
    WorkspaceFs,
)

from .helpers import env_files, set_meta


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def snap(tmp_path: Path) -> Iterator[tuple[Path, dict[str, bytes | None]]]:
    ws = MemFs()
    for i in range(40):
        ws.makedirs(f"/d{i % 4}", exist_ok=True)
        ws.write_text(f"/d{i % 4}/f{i}.txt", f"content {i}\n" * 20)
    with OanixEnv(workspace=ws, task=TaskFs(TaskInfo(id="e", instruction="i"))) as env:
        env.logs.event("info", "x")
        path = tmp_path / "s.oanix"
        env.snapshot(path)
        yield path, env_files(env)


def _refused(path: Path, error: type[Exception] = CorruptSnapshot) -> None:
    listing = sorted(os.listdir(path.parent))
    fds = _open_fds()
    with pytest.raises(error):
        OanixEnv.restore(path)
    assert sorted(os.listdir(path.parent)) == listing  # nothing written beside it
    assert _open_fds() <= fds


def test_a_truncated_file_at_any_length(snap: tuple[Path, dict[str, bytes | None]]) -> None:
    path, _ = snap
    image = path.read_bytes()
    for n in sorted({0, 1, 50, 99, 100, 4096, len(image) // 2, len(image) - 4096,
                     len(image) - 1}):
        path.write_bytes(image[:n])
        _refused(path)


def test_damage_anywhere_is_refused_or_harmless(
        snap: tuple[Path, dict[str, bytes | None]]) -> None:
    path, files = snap
    image = path.read_bytes()
    rng = random.Random(7)
    refused = 0
    for pos in rng.sample(range(len(image)), 150):
        damaged = bytearray(image)
        damaged[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        try:
            env = OanixEnv.restore(path)
        except CorruptSnapshot:
            refused += 1
            continue
        # a bit in unused space: what comes back is exactly the original
        assert env_files(env) == files
        env.close()
    assert refused > 0


def test_a_newer_version_is_refused_by_name(snap: tuple[Path, dict[str, bytes | None]]
                                             ) -> None:
    path, _ = snap
    set_meta(path, "version", "2")
    with pytest.raises(SnapshotVersionError, match="format version 2; this oanix reads up "
                                                   "to version 1"):
        OanixEnv.restore(path)
    _refused(path, SnapshotVersionError)


def test_a_changed_row_is_caught_by_the_digest(snap: tuple[Path, dict[str, bytes | None]]
                                               ) -> None:
    path, _ = snap
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE meta SET value = 'someone' WHERE key = 'oanix'")
    con.close()
    with pytest.raises(CorruptSnapshot, match="digest differs"):
        OanixEnv.restore(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"SQLite format 3\x00" + b"\x00" * 200,
                                     b"\x00" * 8192])
def test_not_a_snapshot(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.oanix"
    path.write_bytes(content)
    _refused(path)


def test_another_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    _refused(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read"):
        OanixEnv.restore(tmp_path / "nope.oanix")


def test_a_file_over_the_size_limit(snap: tuple[Path, dict[str, bytes | None]]) -> None:
    from oanix.snapshot.env import restore_env

    path, _ = snap
    with pytest.raises(SnapshotError, match="over the limit"):
        restore_env(OanixEnv, path, max_bytes=1000)


def test_a_failed_workspace_check_leaves_no_descriptor(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a").write_text("1")
    with OanixEnv(workspace=CowFs(WorkspaceFs(root))) as env:
        env.snapshot(tmp_path / "s.oanix")
    (root / "a").write_text("2")
    _refused(tmp_path / "s.oanix", WorkspaceChanged)
    (root / "a").unlink()
    root.rmdir()
    with pytest.raises(WorkspaceChanged, match="is missing"):
        OanixEnv.restore(tmp_path / "s.oanix")


def test_snapshot_replaces_atomically(snap: tuple[Path, dict[str, bytes | None]]) -> None:
    """Writing over an existing snapshot leaves the old one or the new one, whole."""
    path, _ = snap
    with OanixEnv() as env:
        env.namespace.write_text("/workspace/new", "new")
        env.snapshot(path)
    back = OanixEnv.restore(path)
    assert back.namespace.read_text("/workspace/new") == "new"
    back.close()
    assert [p.name for p in path.parent.iterdir()] == [path.name]
