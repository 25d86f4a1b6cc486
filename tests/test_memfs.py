from collections.abc import Callable
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oanix import MemFs, NoSpace, paths
from oanix.errors import AlreadyExists, FsError
from oanix.fs.cow import CowFs
from oanix.fs.map import MapFs
from oanix.fs.mem import JOURNAL_SIZE
from oanix.service import FileService
from oanix.testing import FileServiceTests


class TestMemFs(FileServiceTests):
    def make_service(self) -> MemFs:
        return MemFs()


def test_quota_bytes_is_enforced_and_released() -> None:
    fs = MemFs(max_bytes=10)
    fs.write_bytes("/a", b"12345")
    with pytest.raises(NoSpace) as exc:
        fs.write_bytes("/b", b"123456")
    assert exc.value.path == "/b"
    assert not fs.exists("/b")
    with fs.open("/a", "ab") as f, pytest.raises(NoSpace):
        f.write(b"123456")
    assert fs.read_bytes("/a") == b"12345"
    fs.remove("/a")
    assert fs.usage == (0, 0)
    fs.write_bytes("/b", b"1234567890")
    assert fs.usage == (10, 1)


def test_quota_files() -> None:
    fs = MemFs(max_files=2)
    fs.mkdir("/d")
    fs.write_bytes("/d/a", b"")
    with pytest.raises(NoSpace):
        fs.write_bytes("/d/b", b"")
    with pytest.raises(NoSpace):
        fs.mkdir("/e")
    fs.rmtree("/d")
    assert fs.usage == (0, 0)


def test_open_file_sees_writes_and_survives_remove() -> None:
    fs = MemFs()
    fs.write_bytes("/f", b"one")
    reader = fs.open("/f", "rb")
    fs.write_bytes("/f", b"two")
    assert reader.read() == b"two"
    fs.remove("/f")
    reader.seek(0)
    assert reader.read() == b"two"
    reader.close()
    assert not fs.exists("/f")


def test_rename_over_file_releases_quota() -> None:
    fs = MemFs(max_bytes=8)
    fs.write_bytes("/a", b"1234")
    fs.write_bytes("/b", b"5678")
    fs.rename("/a", "/b")
    assert fs.usage == (4, 1)


# -- change journal ---------------------------------------------------------------------------


def test_journal_names_each_mutation() -> None:
    fs = MemFs()
    fs.mkdir("/d")
    cases: list[tuple[Callable[[], object], list[str]]] = [
        (lambda: fs.write_bytes("/d/f", b"new"), ["/d/f"]),  # create
        (lambda: fs.write_bytes("/d/f", b"old"), ["/d/f"]),  # same-size rewrite
        (lambda: fs.open("/d/g", "wb").close(), ["/d/g"]),  # create by open
        (lambda: _write_through(fs, "/d/g", "ab", b"xy"), ["/d/g"]),
        (lambda: _truncate(fs, "/d/g", 1), ["/d/g"]),
        (lambda: fs.open("/d/g", "wb").close(), ["/d/g"]),  # truncate on open
        (lambda: fs.mkdir("/e"), ["/e"]),
        (lambda: fs.rename("/d", "/e/d"), ["/d", "/e/d"]),
        (lambda: fs.remove("/e/d/f"), ["/e/d/f"]),
        (lambda: fs.rmtree("/e"), ["/e", "/e/d", "/e/d/g"]),
    ]
    for change, expected in cases:
        g = fs.generation
        change()
        assert fs.generation > g
        assert fs.changed_since(g) == expected
        assert fs.changed_since(fs.generation) == []


def test_journal_ignores_reads_and_failures() -> None:
    fs = MemFs(max_bytes=4)
    fs.write_bytes("/f", b"1234")
    g = fs.generation
    fs.read_bytes("/f")
    fs.stat("/f")
    fs.listdir("/")
    with fs.open("/f", "rb") as f:
        f.read()
    with pytest.raises(NoSpace):
        fs.write_bytes("/f", b"12345")
    with pytest.raises(AlreadyExists):
        fs.mkdir("/f")
    assert fs.generation == g
    assert fs.changed_since(g) == []


def test_journal_write_through_a_file_opened_before_a_rename() -> None:
    fs = MemFs()
    fs.mkdir("/d")
    fs.write_bytes("/d/f", b"x")
    f = fs.open("/d/f", "r+b")
    g0 = fs.generation
    fs.rename("/d", "/e")
    g1 = fs.generation
    f.write(b"y")  # the file is /e/f now, but it was opened as /d/f
    assert fs.changed_since(g0) is None
    assert fs.changed_since(g1) is None
    g2 = fs.generation
    assert fs.changed_since(g2) == []
    fs.write_bytes("/e/f", b"z")
    assert fs.changed_since(g2) == ["/e/f"]
    f.close()
    with fs.open("/e/f", "r+b") as f2:  # opened after the rename: its path is known
        g3 = fs.generation
        f2.write(b"w")
    assert fs.changed_since(g3) == ["/e/f"]


def test_journal_overflow() -> None:
    fs = MemFs()
    g = fs.generation
    for i in range(JOURNAL_SIZE):
        fs.write_bytes(f"/f{i % 7}", b"x")
    assert fs.changed_since(g) == [f"/f{i}" for i in range(7)]
    fs.write_bytes("/f0", b"y")
    assert fs.changed_since(g) is None
    assert fs.changed_since(g + 1) is not None
    assert fs.changed_since(fs.generation + 1) is None  # a generation it never had


def _write_through(fs: FileService, path: str, mode: str, data: bytes) -> None:
    with fs.open(path, mode) as f:
        f.write(data)


def _truncate(fs: FileService, path: str, size: int) -> None:
    with fs.open(path, "r+b") as f:
        f.truncate(size)


_NAMES = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z"]
_OPS = st.tuples(
    st.sampled_from(["write", "write", "mkdir", "mkdir", "remove", "rmdir", "rename",
                     "rename", "append", "truncate", "open_w", "hold", "held_write",
                     "held_write"]),
    st.sampled_from(_NAMES), st.sampled_from(_NAMES), st.binary(max_size=3))
_Op = tuple[str, str, str, bytes]


class _Applier:
    """Applies random operations, ignoring refused ones; tracks whether a file held open
    since before a rename was written (then the journal may not tell)."""

    def __init__(self, fs: FileService) -> None:
        self.fs = fs
        self.held: list[tuple[BinaryIO, bool]] = []  # (file, renamed since opened)
        self.stale_write = False

    def apply(self, op: _Op) -> None:
        kind, a, b, data = op
        fs = self.fs
        try:
            if kind == "write":
                fs.write_bytes(a, data)
            elif kind == "mkdir":
                fs.mkdir(a)
            elif kind == "remove":
                fs.remove(a)
            elif kind == "rmdir":
                fs.rmdir(a)
            elif kind == "rename":
                fs.rename(a, b)
                self.held = [(f, True) for f, _ in self.held]
            elif kind == "append":
                _write_through(fs, a, "ab", data)
            elif kind == "truncate":
                _truncate(fs, a, len(data))
            elif kind == "open_w":
                fs.open(a, "wb").close()
            elif kind == "hold":
                self.held.append((fs.open(a, "r+b"), False))
            elif kind == "held_write" and self.held:
                f, stale = self.held[-1]
                f.seek(len(data) % 2)
                if f.write(data) and stale:
                    self.stale_write = True
        except FsError:
            pass

    def close(self) -> None:
        for f, _ in self.held:
            f.close()


def _differences(before: dict[str, bytes | None], after: dict[str, bytes | None]) -> set[str]:
    missing = object()
    return {p for p in before.keys() | after.keys()
            if before.get(p, missing) != after.get(p, missing)}


def _snapshot(fs: FileService) -> dict[str, bytes | None]:
    snap: dict[str, bytes | None] = {}
    for top, dirs, files in fs.walk("/"):
        snap.update((paths.join(top, d), None) for d in dirs)
        snap.update((paths.join(top, f), fs.read_bytes(paths.join(top, f))) for f in files)
    return snap


JOURNALED: dict[str, Callable[[], FileService]] = {
    "memfs": MemFs,
    "cow-over-mapfs": lambda: CowFs(MapFs({"/a/x": b"base", "/b/q": b"q"}, dirs=["/c"])),
    "cow-over-memfs-upper": lambda: CowFs(MapFs({"/a/y/z": b"1"}), MemFs()),
}


@pytest.mark.parametrize("make", JOURNALED.values(), ids=JOURNALED.keys())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(_OPS, max_size=12), after=st.lists(_OPS, max_size=12))
@example(before=[("mkdir", "/a", "", b""), ("write", "/a/y", "", b"1"),
                 ("hold", "/a/y", "", b""), ("rename", "/a", "/b", b"")],
         after=[("held_write", "", "", b"22")])
def test_journal_covers_every_difference(make: Callable[[], FileService],
                                         before: list[_Op], after: list[_Op]) -> None:
    fs = make()
    applier = _Applier(fs)
    for op in before:
        applier.apply(op)
    g = fs.generation  # type: ignore[attr-defined]
    snap = _snapshot(fs)
    applier.stale_write = False
    for op in after:
        applier.apply(op)
    changed = fs.changed_since(g)  # type: ignore[attr-defined]
    applier.close()
    if changed is None:
        assert applier.stale_write
        return
    for p in _differences(snap, _snapshot(fs)):
        assert any(paths.is_within(p, c) for c in changed), (p, changed)
