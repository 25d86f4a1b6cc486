import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from oanix import errors, paths
from oanix.changes import Changes
from oanix.fs.cow import CowFs
from oanix.fs.map import MapFs
from oanix.fs.mem import MemFs
from oanix.service import FileService
from oanix.testing import FileServiceTests

# A snapshot of a tree: path -> bytes for a file, None for a directory (root excluded).
Snapshot = dict[str, bytes | None]


def snapshot(fs: FileService) -> Snapshot:
    snap: Snapshot = {}
    for top, dirs, files in fs.walk("/"):
        for d in dirs:
            snap[paths.join(top, d)] = None
        for f in files:
            snap[paths.join(top, f)] = fs.read_bytes(paths.join(top, f))
    return snap


def memfs_from(snap: Snapshot) -> MemFs:
    fs = MemFs()
    for path in sorted(snap):
        data = snap[path]
        if data is None:
            fs.mkdir(path)
        else:
            fs.write_bytes(path, data)
    return fs


def expected_changes(base: Snapshot, visible: Snapshot) -> Changes:
    """The changes computed by brute force from two snapshots."""

    def kind(snap: Snapshot, p: str) -> str | None:
        if p not in snap:
            return None
        return "dir" if snap[p] is None else "file"

    added = {p for p in visible if kind(base, p) != kind(visible, p)}
    deleted = {p for p in base if kind(base, p) != kind(visible, p)}
    modified = {p for p in visible
                if kind(base, p) == kind(visible, p) == "file" and base[p] != visible[p]}
    return Changes(tuple(sorted(added)), tuple(sorted(modified)), tuple(sorted(deleted)),
                   added_dirs=tuple(sorted(p for p in added if visible[p] is None)),
                   deleted_dirs=tuple(sorted(p for p in deleted if base[p] is None)))


def apply_changes(ch: Changes, base: Snapshot, overlay: FileService) -> Snapshot:
    """Apply ``ch`` to a copy of ``base`` using the overlay's content, as a consumer would."""
    target = memfs_from(base)
    for p in reversed(ch.deleted):
        if target.is_dir(p):
            target.rmdir(p)
        else:
            target.remove(p)
    for p in ch.added:
        if overlay.is_dir(p):
            target.mkdir(p)
        else:
            target.write_bytes(p, overlay.read_bytes(p))
    for p in ch.modified:
        target.write_bytes(p, overlay.read_bytes(p))
    return snapshot(target)


BASE: Snapshot = {
    "/docs": None,
    "/docs/a.txt": b"alpha",
    "/docs/sub": None,
    "/docs/sub/deep": b"deep",
    "/empty": None,
    "/top": b"top",
}


def populated() -> CowFs:
    """A CowFs over a MemFs base holding BASE."""
    return CowFs(memfs_from(BASE))


# -- conformance --------------------------------------------------------------------------


class TestCowFs(FileServiceTests):
    def make_service(self) -> CowFs:
        return CowFs(MemFs())


class TestCowFsOverReadOnlyBase(FileServiceTests):
    def make_service(self) -> CowFs:
        return CowFs(MapFs())


# -- overlay semantics ----------------------------------------------------------------------


def test_reads_come_from_the_base() -> None:
    fs = populated()
    assert snapshot(fs) == BASE
    assert fs.listdir("/") == ["docs", "empty", "top"]
    assert fs.stat("/docs").size == 2 and fs.stat("/top").size == 3
    assert not fs.stat("/top").readonly
    assert fs.changes() == Changes()
    assert len(fs.upper.listdir("/")) == 0


def test_writes_leave_the_base_untouched() -> None:
    fs = populated()
    base = fs.base
    fs.write_bytes("/docs/a.txt", b"ALPHA")
    with fs.open("/top", "ab") as f:
        f.write(b"!")
    fs.write_bytes("/docs/sub/new", b"new")
    fs.mkdir("/docs/newdir")
    fs.remove("/docs/sub/deep")
    fs.rmdir("/empty")
    fs.rename("/docs", "/papers")
    assert snapshot(base) == BASE
    assert fs.read_bytes("/papers/a.txt") == b"ALPHA"
    assert fs.read_bytes("/top") == b"top!"
    assert fs.listdir("/") == ["papers", "top"]
    assert fs.listdir("/papers") == ["a.txt", "newdir", "sub"]
    assert fs.listdir("/papers/sub") == ["new"]


def test_copy_up_keeps_content_for_r_plus_and_not_for_w() -> None:
    fs = populated()
    with fs.open("/docs/a.txt", "r+b") as f:
        f.write(b"A")
    assert fs.read_bytes("/docs/a.txt") == b"Alpha"
    with fs.open("/docs/sub/deep", "wb") as f:
        assert f.tell() == 0
    assert fs.read_bytes("/docs/sub/deep") == b""
    assert fs.upper.is_dir("/docs/sub")  # parents copied up
    with pytest.raises(errors.AlreadyExists):
        fs.open("/top", "x")
    assert not fs.upper.exists("/top")  # a refused open copies nothing up


def test_copied_up_but_unchanged_is_not_modified() -> None:
    fs = populated()
    with fs.open("/docs/a.txt", "ab"):
        pass
    fs.write_bytes("/top", b"top")
    assert fs.upper.exists("/docs/a.txt") and fs.upper.exists("/top")
    assert fs.changes() == Changes()


def test_changes_are_exact() -> None:
    fs = populated()
    fs.write_bytes("/docs/a.txt", b"changed")
    fs.write_bytes("/new", b"n")
    fs.makedirs("/nd/inner")
    fs.rmtree("/docs/sub")
    fs.remove("/top")
    fs.mkdir("/top")  # a file replaced by a directory
    assert fs.changes() == Changes(
        added=("/nd", "/nd/inner", "/new", "/top"),
        modified=("/docs/a.txt",),
        deleted=("/docs/sub", "/docs/sub/deep", "/top"),
    )
    assert fs.changes() == expected_changes(BASE, snapshot(fs))


def test_deleting_a_directory_lists_everything_below_it() -> None:
    fs = populated()
    fs.rmtree("/docs")
    assert fs.changes() == Changes(
        deleted=("/docs", "/docs/a.txt", "/docs/sub", "/docs/sub/deep"))
    assert fs.whiteouts == frozenset({"/docs"})


def test_removed_and_recreated_directory_is_opaque() -> None:
    fs = populated()
    fs.rmtree("/docs")
    fs.mkdir("/docs")
    assert fs.listdir("/docs") == []
    assert not fs.exists("/docs/a.txt") and not fs.exists("/docs/sub/deep")
    with pytest.raises(errors.NotFound):
        fs.read_bytes("/docs/a.txt")
    fs.write_bytes("/docs/a.txt", b"alpha")  # same content as the base: not a change
    assert fs.listdir("/docs") == ["a.txt"]
    assert fs.changes() == Changes(deleted=("/docs/sub", "/docs/sub/deep"))


def test_file_replaced_by_directory_and_back() -> None:
    fs = populated()
    fs.rmtree("/docs")
    fs.write_bytes("/docs", b"now a file")
    with pytest.raises(errors.NotADirectory):
        fs.stat("/docs/a.txt")
    with pytest.raises(errors.NotADirectory):
        fs.listdir("/docs")
    assert fs.changes() == Changes(
        added=("/docs",),
        deleted=("/docs", "/docs/a.txt", "/docs/sub", "/docs/sub/deep"))


def test_rename_directory_mixing_base_and_upper() -> None:
    fs = populated()
    base = fs.base
    fs.write_bytes("/docs/sub/extra", b"x")
    fs.remove("/docs/a.txt")
    fs.rename("/docs", "/moved")
    assert not fs.exists("/docs")
    assert snapshot(fs) == {
        "/empty": None, "/top": b"top",
        "/moved": None, "/moved/sub": None,
        "/moved/sub/deep": b"deep", "/moved/sub/extra": b"x",
    }
    fs.rename("/moved/sub", "/empty")  # a directory replaces an empty one
    assert fs.listdir("/empty") == ["deep", "extra"]
    fs.rename("/empty", "/docs")  # back to the name the base has
    assert fs.read_bytes("/docs/deep") == b"deep"
    assert fs.listdir("/docs") == ["deep", "extra"]  # opaque: base /docs/* stays hidden
    assert snapshot(base) == BASE
    assert fs.changes() == expected_changes(BASE, snapshot(fs))


def test_rename_errors() -> None:
    fs = populated()
    with pytest.raises(errors.NotEmpty):
        fs.rename("/empty", "/docs")
    with pytest.raises(errors.IsADirectory):
        fs.rename("/top", "/empty")
    with pytest.raises(errors.NotADirectory):
        fs.rename("/empty", "/top")
    with pytest.raises(errors.InvalidPath):
        fs.rename("/docs", "/docs/sub/x")
    with pytest.raises(errors.NotEmpty):  # the target contains the source, as on Linux
        fs.rename("/docs/a.txt", "/docs")
    with pytest.raises(errors.NotADirectory):
        fs.rename("/nope", "/top/x")  # both parents are checked before the source
    with pytest.raises(errors.NotFound) as exc:
        fs.rename("/nope", "/x")
    assert exc.value.path == "/nope"
    with pytest.raises(errors.PermissionDenied):
        fs.rename("/", "/x")
    fs.rename("/docs", "/docs")
    assert snapshot(fs) == BASE and fs.changes() == Changes()


def test_rename_file_over_base_file() -> None:
    fs = populated()
    fs.rename("/top", "/docs/a.txt")
    assert fs.read_bytes("/docs/a.txt") == b"top"
    assert not fs.exists("/top")
    assert fs.changes() == Changes(modified=("/docs/a.txt",), deleted=("/top",))


def test_commit_writes_into_the_base_then_resets() -> None:
    fs = populated()
    base = fs.base
    fs.write_bytes("/docs/a.txt", b"changed")
    fs.rmtree("/docs/sub")
    fs.makedirs("/new/dir")
    fs.write_bytes("/new/dir/f", b"f")
    fs.remove("/top")
    fs.makedirs("/top/x")
    visible = snapshot(fs)
    applied = fs.commit()
    assert applied == expected_changes(BASE, visible)
    assert snapshot(base) == visible
    assert snapshot(fs) == visible
    assert fs.changes() == Changes()
    assert fs.upper.listdir("/") == [] and fs.whiteouts == frozenset()


def test_reset_drops_every_change() -> None:
    fs = populated()
    fs.write_bytes("/docs/a.txt", b"changed")
    fs.rmtree("/docs")
    fs.write_bytes("/x", b"x")
    fs.reset()
    assert snapshot(fs) == BASE and fs.changes() == Changes()


def test_custom_upper_is_emptied_in_place() -> None:
    upper = MemFs()
    fs = CowFs(memfs_from(BASE), upper)
    fs.write_bytes("/docs/new", b"n")
    assert upper.read_bytes("/docs/new") == b"n"
    fs.reset()
    assert upper.listdir("/") == [] and fs.upper is upper


def test_read_only_base() -> None:
    base = MapFs({"/etc/conf": "a=1", "/bin/tool": b"\x7f", "/keep": b"k"})
    fs = CowFs(base)
    fs.write_text("/etc/conf", "a=2")
    fs.remove("/bin/tool")
    fs.mkdir("/tmp")
    fs.rename("/keep", "/tmp/kept")
    assert fs.read_text("/etc/conf") == "a=2"
    assert fs.listdir("/") == ["bin", "etc", "tmp"]
    assert fs.read_bytes("/tmp/kept") == b"k"
    before = snapshot(fs)
    changes = fs.changes()
    with pytest.raises(errors.ReadOnly) as exc:
        fs.commit()
    assert exc.value.path == "/keep"  # deletions come first, in reverse sorted order
    assert snapshot(fs) == before and fs.changes() == changes
    assert base.read_bytes("/etc/conf") == b"a=1"


def test_commit_with_nothing_to_do_on_a_read_only_base() -> None:
    fs = CowFs(MapFs({"/f": b"x"}))
    fs.write_bytes("/f", b"x")
    assert fs.commit() == Changes()


def test_failed_commit_can_be_retried() -> None:
    class Flaky(MemFs):
        fail = True

        def _mkdir(self, path: str) -> None:
            if self.fail:
                raise errors.NoSpace(path)
            super()._mkdir(path)

    base = Flaky()
    base.write_bytes("/old", b"o")
    fs = CowFs(base)
    fs.remove("/old")
    fs.makedirs("/a/b")
    fs.write_bytes("/a/b/f", b"f")
    visible = snapshot(fs)
    with pytest.raises(errors.NoSpace):
        fs.commit()
    assert not base.exists("/old")  # applied before the failure
    assert snapshot(fs) == visible
    base.fail = False
    fs.commit()
    assert snapshot(base) == visible == snapshot(fs)


def test_reading_a_base_file_while_it_is_copied_up() -> None:
    fs = populated()
    with fs.open("/top", "rb") as reader:
        fs.write_bytes("/top", b"new")
        assert reader.read() == b"top"  # a base reader keeps reading the base, as overlayfs
    assert fs.read_bytes("/top") == b"new"


def test_concurrent_copy_ups_over_a_populated_base() -> None:
    base = memfs_from({"/d": None, "/d/e": None,
                       **{f"/d/e/f{i}": str(i).encode() for i in range(40)}})
    fs = CowFs(base)
    errs: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(k, 40, 4):
                with fs.open(f"/d/e/f{i}", "ab") as f:
                    f.write(b"+")
                fs.listdir("/d/e")
                fs.rename(f"/d/e/f{i}", f"/d/g{i}")
        except BaseException as e:  # reported below
            errs.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errs, errs
    assert fs.listdir("/d/e") == []
    assert all(fs.read_bytes(f"/d/g{i}") == f"{i}+".encode() for i in range(40))
    ch = fs.changes()
    assert ch.added == tuple(sorted(f"/d/g{i}" for i in range(40)))
    assert ch.deleted == tuple(sorted(f"/d/e/f{i}" for i in range(40)))
    assert ch.modified == ()


# -- random operations compared with a real directory ---------------------------------------

NAMES = "abc"
path_st = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(
    lambda parts: "/" + "/".join(parts))
data_st = st.binary(max_size=4)
tree_st = st.lists(st.tuples(path_st, st.one_of(st.none(), data_st)), max_size=12)

Outcome = tuple[str, Any]


def outcome(fn: Callable[[], Any]) -> Outcome:
    """``("ok", result)`` or ``("err", errno)``: both sides compare errno values."""
    try:
        return ("ok", fn())
    except OSError as e:  # every oanix FsError is an OSError with the POSIX errno
        return ("err", errno.errorcode.get(e.errno or 0, e.errno))


@settings(max_examples=100, stateful_step_count=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
class CowAgainstRealDirectory(RuleBasedStateMachine):
    """Random operations on a CowFs over a MemFs base and on a temporary directory."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.base = MemFs()
        self.fs = CowFs(self.base)
        self.base_snap: Snapshot = {}

    def teardown(self) -> None:
        self.tmp.cleanup()

    def real(self, path: str) -> str:
        return self.root + path

    @initialize(tree=tree_st)
    def populate(self, tree: list[tuple[str, bytes | None]]) -> None:
        snap: Snapshot = {}
        for path, data in tree:  # skip entries that conflict with earlier ones
            parts = paths.parts(path)
            ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
            if path in snap or any(snap.get(a) is not None for a in ancestors):
                continue
            if data is not None and any(paths.is_within(p, path) for p in snap):
                continue
            for a in ancestors:
                snap[a] = None
            snap[path] = data
        self.base_snap = snap
        self.base = memfs_from(snap)
        self.fs = CowFs(self.base)
        self.write_real(snap)

    def write_real(self, snap: Snapshot) -> None:
        for path in sorted(snap):
            data = snap[path]
            if data is None:
                os.mkdir(self.real(path))
            else:
                with open(self.real(path), "wb") as f:
                    f.write(data)

    def same(self, ours: Callable[[], Any], real: Callable[[], Any]) -> None:
        assert outcome(ours) == outcome(real)

    # -- operations --

    @rule(path=path_st, data=data_st)
    def write(self, path: str, data: bytes) -> None:
        def real() -> None:
            with open(self.real(path), "wb") as f:
                f.write(data)

        self.same(lambda: self.fs.write_bytes(path, data), real)

    @rule(path=path_st, data=data_st, mode=st.sampled_from(["ab", "r+b", "xb"]))
    def write_mode(self, path: str, data: bytes, mode: str) -> None:
        def ours() -> None:
            with self.fs.open(path, mode) as f:
                f.write(data)

        def real() -> None:
            with open(self.real(path), mode) as f:
                f.write(data)

        self.same(ours, real)

    @rule(path=path_st)
    def read(self, path: str) -> None:
        def real() -> bytes:
            with open(self.real(path), "rb") as f:
                return f.read()

        self.same(lambda: self.fs.read_bytes(path), real)

    @rule(path=st.one_of(st.just("/"), path_st))
    def listdir(self, path: str) -> None:
        self.same(lambda: self.fs.listdir(path), lambda: sorted(os.listdir(self.real(path))))

    @rule(path=path_st)
    def stat(self, path: str) -> None:
        def ours() -> tuple[bool, int | None]:
            s = self.fs.stat(path)
            return s.is_dir, None if s.is_dir else s.size

        def real() -> tuple[bool, int | None]:
            s = os.stat(self.real(path))
            is_dir = os.path.isdir(self.real(path))
            return is_dir, None if is_dir else s.st_size

        self.same(ours, real)

    @rule(path=path_st)
    def mkdir(self, path: str) -> None:
        self.same(lambda: self.fs.mkdir(path), lambda: os.mkdir(self.real(path)))

    @rule(path=path_st)
    def remove(self, path: str) -> None:
        self.same(lambda: self.fs.remove(path), lambda: os.remove(self.real(path)))

    @rule(path=path_st)
    def rmdir(self, path: str) -> None:
        self.same(lambda: self.fs.rmdir(path), lambda: os.rmdir(self.real(path)))

    @rule(src=path_st, dst=path_st)
    def rename(self, src: str, dst: str) -> None:
        self.same(lambda: self.fs.rename(src, dst),
                  lambda: os.rename(self.real(src), self.real(dst)))

    @rule()
    def commit(self) -> None:
        visible = snapshot(self.fs)
        self.fs.commit()
        self.base_snap = visible
        assert snapshot(self.base) == visible
        assert self.fs.changes() == Changes()

    @rule()
    def reset(self) -> None:
        self.fs.reset()
        for name in os.listdir(self.root):
            real = os.path.join(self.root, name)
            if os.path.isdir(real):
                shutil.rmtree(real)
            else:
                os.remove(real)
        self.write_real(self.base_snap)

    # -- invariants --

    @invariant()
    def trees_agree_and_changes_reproduce_them(self) -> None:
        visible = snapshot(self.fs)
        real: Snapshot = {}
        for top, dirs, files in os.walk(self.root):
            rel = "/" + os.path.relpath(top, self.root) if top != self.root else "/"
            for d in dirs:
                real[paths.join(rel, d)] = None
            for name in files:
                with open(os.path.join(top, name), "rb") as f:
                    real[paths.join(rel, name)] = f.read()
        assert visible == real
        assert snapshot(self.base) == self.base_snap  # only commit changes the base
        changes = self.fs.changes()
        expected = expected_changes(self.base_snap, visible)
        assert changes == expected
        assert (changes.added_dirs, changes.deleted_dirs) == (expected.added_dirs,
                                                              expected.deleted_dirs)
        assert apply_changes(changes, self.base_snap, self.fs) == visible
        forked = self.fs.fork()  # a fork shows the same tree, with the same changes
        assert snapshot(forked) == visible and forked.changes() == changes


TestCowAgainstRealDirectory = CowAgainstRealDirectory.TestCase


# -- change journal ---------------------------------------------------------------------------


def _journaled_cow() -> CowFs:
    return CowFs(MapFs({"/d/f": b"base", "/d/sub/g": b"g", "/top": b"t"}))


def test_journal_names_overlay_changes() -> None:
    cow = _journaled_cow()
    cases: list[tuple[Callable[[], object], list[str]]] = [
        (lambda: cow.remove("/top"), ["/top"]),  # a whiteout only: the upper is untouched
        (lambda: cow.write_bytes("/d/f", b"upper"), ["/d", "/d/f"]),  # copy-up
        (lambda: cow.write_bytes("/d/f", b"UPPER"), ["/d/f"]),
        (lambda: cow.rename("/d/sub", "/moved"), ["/d/sub", "/moved", "/moved/g"]),
        (lambda: cow.mkdir("/d/sub"), ["/d/sub"]),  # opaque again
        (lambda: cow.upper.write_bytes("/new", b"n"), ["/new"]),  # the upper, directly
        (lambda: cow.reset(), ["/d", "/d/f", "/d/sub", "/moved", "/moved/g", "/new",
                               "/top"]),
    ]
    for change, expected in cases:
        g = cow.generation
        change()
        assert cow.generation > g
        assert cow.changed_since(g) == expected
        assert cow.changed_since(cow.generation) == []


def test_journal_is_lost_when_the_base_changes() -> None:
    base = MemFs()
    base.write_bytes("/f", b"1")
    cow = CowFs(base)
    g = cow.generation
    cow.write_bytes("/g", b"2")
    assert cow.changed_since(g) == ["/g"]
    base.write_bytes("/f", b"3")
    assert cow.changed_since(g) is None
    g = cow.generation
    assert cow.changed_since(g) == []
    cow.commit()  # writes the base
    assert cow.changed_since(g) is None


def test_journal_needs_journaled_layers(tmp_path: Any) -> None:
    from oanix.fs import WorkspaceFs
    cow = CowFs(WorkspaceFs(tmp_path))
    g = cow.generation
    assert cow.changed_since(g) is None
    cow = CowFs(MapFs({"/f": b"x"}), WorkspaceFs(tmp_path))
    assert cow.changed_since(cow.generation) is None


def test_journal_unknown_generation() -> None:
    cow = _journaled_cow()
    assert cow.changed_since(12345) is None
    first = cow.generation
    for i in range(100):  # only the last generations handed out are remembered
        cow.write_bytes(f"/f{i}", b"")
        cow.generation  # noqa: B018
    assert cow.changed_since(first) is None


def test_mapfs_journal_is_empty() -> None:
    fs = MapFs({"/f": b"x"})
    assert fs.generation == 0
    assert fs.changed_since(0) == []
    assert fs.changed_since(1) is None


# -- forks ------------------------------------------------------------------------------------


def test_fork_starts_from_the_overlay_then_changes_apart() -> None:
    base = memfs_from(BASE)
    fs = CowFs(base)
    fs.write_bytes("/docs/a.txt", b"mine")
    fs.rmtree("/docs/sub")
    fs.mkdir("/docs/sub")  # opaque: the base's entries below stay hidden in the fork too
    child = fs.fork()
    assert snapshot(child) == snapshot(fs) and child.base is base
    assert child.whiteouts == fs.whiteouts and child.upper is not fs.upper
    fs.write_bytes("/p", b"parent")
    child.remove("/docs/a.txt")
    assert not child.exists("/p") and fs.read_bytes("/docs/a.txt") == b"mine"
    assert fs.changes().added == ("/p",) and "/docs/a.txt" in child.changes().deleted
    assert snapshot(base) == BASE
    upper = MemFs(max_bytes=10)
    with pytest.raises(OSError):  # the fork's upper is the one given, with its quota
        fs.fork(upper).write_bytes("/big", b"x" * 100)


def test_changes_tell_files_and_directories_apart() -> None:
    fs = CowFs(memfs_from(BASE))
    fs.rmtree("/docs/sub")
    fs.makedirs("/new/inner")
    fs.write_bytes("/new/f", b"f")
    fs.remove("/top")
    fs.mkdir("/top")  # a file replaced by a directory: deleted (a file), added (a dir)
    ch = fs.changes()
    assert ch.added == ("/new", "/new/f", "/new/inner", "/top")
    assert ch.added_dirs == ("/new", "/new/inner", "/top")
    assert ch.deleted == ("/docs/sub", "/docs/sub/deep", "/top")
    assert ch.deleted_dirs == ("/docs/sub",)
    assert ch == Changes(ch.added, ch.modified, ch.deleted)  # kinds are not compared
