import threading
from pathlib import Path

import pytest

from oanix import (
    AlreadyExists,
    BadFileMode,
    CrossMount,
    InvalidArgument,
    IsADirectory,
    MemFs,
    Namespace,
    NoSpace,
    NotFound,
    PermissionDenied,
    ReadOnly,
    WorkspaceFs,
)
from oanix.testing import FileServiceTests


class TestNamespaceOverMemFs(FileServiceTests):
    def make_service(self) -> Namespace:
        ns = Namespace()
        ns.mount("/", MemFs())
        return ns


class TestNamespaceInsideNamespace(FileServiceTests):
    def make_service(self) -> Namespace:
        inner = Namespace()
        inner.mount("/", MemFs())
        outer = Namespace()
        outer.mount("/", inner)
        return outer


class TestBindOfSubdirectory(FileServiceTests):
    def make_service(self) -> Namespace:
        fs = MemFs()
        fs.makedirs("/deep/root")
        ns = Namespace()
        ns.mount("/m", fs)
        ns.bind("/m/deep/root", "/")
        return ns


def test_resolution_is_by_components() -> None:
    ns = Namespace()
    tmp, root = MemFs(), MemFs()
    ns.mount("/", root)
    ns.mount("/tmp", tmp)
    ns.write_bytes("/tmpfoo", b"root")
    ns.write_bytes("/tmp/foo", b"tmp")
    assert root.read_bytes("/tmpfoo") == b"root"
    assert tmp.read_bytes("/foo") == b"tmp"
    assert not root.exists("/tmp")


def test_longest_mount_point_wins() -> None:
    ns = Namespace()
    a, b = MemFs(), MemFs()
    ns.mount("/a", a)
    ns.mount("/a/b", b)
    ns.write_bytes("/a/b/x", b"1")
    ns.write_bytes("/a/x", b"2")
    assert b.read_bytes("/x") == b"1" and a.read_bytes("/x") == b"2"


def test_mount_points_appear_in_parent_listings() -> None:
    ns = Namespace()
    ns.mount("/a/b/c", MemFs())
    ns.mount("/cap/http", MemFs())
    assert ns.listdir("/") == ["a", "cap"]
    assert ns.listdir("/a") == ["b"]
    assert ns.listdir("/a/b") == ["c"]
    assert ns.stat("/a").is_dir and ns.stat("/a/b/c").is_dir
    assert ns.listdir("/a/b/c") == []
    with pytest.raises(NotFound):
        ns.stat("/zzz")
    with pytest.raises(IsADirectory):
        ns.open("/a", "rb")
    with pytest.raises(ReadOnly):
        ns.write_bytes("/a/new", b"")
    assert [m.path for m in ns.mounts()] == ["/a/b/c", "/cap/http"]


def test_mount_point_merges_with_service_listing() -> None:
    ns = Namespace()
    root = MemFs()
    root.mkdir("/etc")
    ns.mount("/", root)
    ns.mount("/tmp", MemFs())
    assert ns.listdir("/") == ["etc", "tmp"]
    with pytest.raises(PermissionDenied):
        ns.rmdir("/tmp")
    with pytest.raises(AlreadyExists):
        ns.mkdir("/tmp")


def test_errors_name_namespace_paths() -> None:
    fs = MemFs()
    fs.makedirs("/inner/dir")
    ns = Namespace()
    ns.mount("/work", fs)
    ns.bind("/work/inner", "/b")
    with pytest.raises(NotFound) as exc:
        ns.read_bytes("/b/dir/missing")
    assert exc.value.path == "/b/dir/missing"
    with pytest.raises(NotFound) as exc:
        ns.read_bytes("/work/nope/x")
    assert exc.value.path == "/work/nope/x"
    assert "/work/nope/x" in str(exc.value)


def test_union_lookup_listing_and_create() -> None:
    first, second, third = MemFs(), MemFs(), MemFs()
    first.write_bytes("/shared", b"first")
    second.write_bytes("/shared", b"second")
    second.write_bytes("/only2", b"2")
    third.mkdir("/dir")
    ns = Namespace()
    ns.mount("/bin", first)
    ns.mount("/bin", second, "after", create=True)
    ns.mount("/bin", third, "before")
    assert ns.listdir("/bin") == ["dir", "shared", "only2"]
    assert ns.read_bytes("/bin/shared") == b"first"
    assert ns.read_bytes("/bin/only2") == b"2"
    ns.write_bytes("/bin/new", b"n")
    assert second.read_bytes("/new") == b"n" and not first.exists("/new")
    # a create below an existing directory goes where the walk lands
    ns.write_bytes("/bin/dir/x", b"x")
    assert third.read_bytes("/dir/x") == b"x"
    # writing an existing name goes to the member that has it
    ns.write_bytes("/bin/shared", b"changed")
    assert first.read_bytes("/shared") == b"changed"
    assert second.read_bytes("/shared") == b"second"


def test_failing_create_does_not_fall_through() -> None:
    quota = MemFs(max_bytes=1)
    other = MemFs()
    ns = Namespace()
    ns.mount("/u", quota, create=True)
    ns.mount("/u", other, "after")
    with pytest.raises(OSError):
        ns.write_bytes("/u/big", b"too big")
    assert not other.exists("/big")


def test_union_without_create_member_refuses_creates() -> None:
    ns = Namespace()
    ns.mount("/u", MemFs())
    ns.mount("/u", MemFs(), "after")
    with pytest.raises(ReadOnly):
        ns.write_bytes("/u/x", b"")


def test_union_with_what_was_there() -> None:
    root = MemFs()
    root.makedirs("/bin")
    root.write_bytes("/bin/ls", b"ls")
    extra = MemFs()
    extra.write_bytes("/python3", b"py")
    ns = Namespace()
    ns.mount("/", root)
    ns.mount("/bin", extra, "after")
    assert ns.listdir("/bin") == ["ls", "python3"]


def test_bind_is_resolved_when_called() -> None:
    a, b = MemFs(), MemFs()
    a.write_bytes("/f", b"a")
    b.write_bytes("/f", b"b")
    ns = Namespace()
    ns.mount("/src", a)
    ns.bind("/src", "/alias")
    ns.mount("/src", b)  # replaces /src; the alias still shows a
    assert ns.read_bytes("/alias/f") == b"a"
    assert ns.read_bytes("/src/f") == b"b"


def test_bind_of_a_file_and_of_a_tree_with_mounts() -> None:
    fs = MemFs()
    fs.write_bytes("/config.json", b"{}")
    ns = Namespace()
    ns.mount("/etc", fs)
    ns.mount("/etc/sub", MemFs())
    ns.bind("/etc/config.json", "/cfg")
    assert ns.read_bytes("/cfg") == b"{}"
    ns.bind("/etc", "/etc2")
    assert ns.listdir("/etc2") == ["config.json", "sub"]
    with pytest.raises(NotFound):
        ns.bind("/missing", "/x")


def test_readonly_mount() -> None:
    fs = MemFs()
    fs.write_bytes("/f", b"1")
    ns = Namespace()
    ns.mount("/ro", fs, readonly=True)
    assert ns.stat("/ro/f").readonly and ns.stat("/ro").readonly
    for op in (lambda: ns.write_bytes("/ro/f", b"2"), lambda: ns.open("/ro/f", "r+"),
               lambda: ns.mkdir("/ro/d"), lambda: ns.remove("/ro/f"),
               lambda: ns.rename("/ro/f", "/ro/g")):
        with pytest.raises(ReadOnly):
            op()
    assert fs.read_bytes("/f") == b"1"


def test_unmount() -> None:
    a, b = MemFs(), MemFs()
    ns = Namespace()
    ns.mount("/u", a)
    ns.mount("/u", b, "after")
    ns.unmount("/u", a)
    assert [m.service for m in ns.mounts()] == [b]
    with pytest.raises(NotFound):
        ns.unmount("/u", a)
    ns.unmount("/u")
    assert ns.mounts() == []
    with pytest.raises(NotFound):
        ns.unmount("/u")


def test_rename_across_mounts_and_move() -> None:
    a, b = MemFs(), MemFs()
    a.makedirs("/d/e")
    a.write_bytes("/d/e/f", b"data")
    ns = Namespace()
    ns.mount("/a", a)
    ns.mount("/b", b)
    with pytest.raises(CrossMount) as exc:
        ns.rename("/a/d", "/b/d")
    assert exc.value.filename == "/a/d" and exc.value.filename2 == "/b/d"
    ns.move("/a/d", "/b/d")
    assert b.read_bytes("/d/e/f") == b"data" and not a.exists("/d")
    ns.copy("/b/d", "/a/copy")
    assert a.read_bytes("/copy/e/f") == b"data"
    # the same service at two places renames directly
    ns.mount("/a2", a)
    ns.rename("/a/copy", "/a2/renamed")
    assert a.exists("/renamed")


def test_fork_is_independent() -> None:
    ns = Namespace()
    shared = MemFs()
    ns.mount("/shared", shared)
    child = ns.fork()
    child.mount("/extra", MemFs())
    child.unmount("/shared")
    assert [m.path for m in ns.mounts()] == ["/shared"]
    assert [m.path for m in child.mounts()] == ["/extra"]
    grandchild = ns.fork()
    grandchild.write_bytes("/shared/x", b"1")
    assert ns.read_bytes("/shared/x") == b"1"  # services are shared


def test_bad_mount_arguments() -> None:
    ns = Namespace()
    with pytest.raises(InvalidArgument):
        ns.mount("/x", MemFs(), "sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        ns.mount("/x", object())  # type: ignore[arg-type]


def test_tree_tags_mount_points() -> None:
    ns = Namespace()
    fs = MemFs()
    fs.write_bytes("/hello.txt", b"hi")
    ns.mount("/workspace", fs)
    ns.mount("/logs", MemFs(), readonly=True)
    tree = ns.tree()
    assert "workspace/  [MemFs]" in tree
    assert "logs/  [MemFs ro]" in tree
    assert "hello.txt  (2 B)" in tree


def test_mounting_while_other_threads_work() -> None:
    ns = Namespace()
    ns.mount("/stable", MemFs())
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        i = 0
        try:
            while not stop.is_set():
                ns.write_bytes(f"/stable/{i % 50}", b"x")
                assert ns.read_bytes(f"/stable/{i % 50}") == b"x"
                ns.listdir("/")
                i += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(200):
        ns.mount(f"/m{i % 10}", MemFs())
        if i % 3 == 0:
            ns.unmount(f"/m{i % 10}")
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors


def test_errors_of_open_files_name_namespace_paths() -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_bytes=4))
    with ns.open("/tmp/f", "wb") as f:
        assert f.name == "/tmp/f"
        with pytest.raises(NoSpace) as exc:
            f.write(b"too long")
        assert exc.value.path == "/tmp/f"
        f.write(b"ok")
    with ns.open("/tmp/f", "rb") as f:
        assert list(f) == [b"ok"] and f.seek(0) == 0 and f.read(1) == b"o"
        with pytest.raises(BadFileMode) as bad:
            f.write(b"x")
        assert bad.value.path == "/tmp/f"


def test_scandir_of_a_mount_point_is_the_services_own(tmp_path: Path) -> None:
    """At a mount point as below it: the service's scandir answers, so an entry its stat
    refuses (a host symlink out of a WorkspaceFs root) is listed, not fatal."""
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "out").symlink_to("/")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "out").symlink_to("/")
    ns = Namespace()
    ns.mount("/w", WorkspaceFs(tmp_path))
    top = {st.name: st for st in ns.scandir("/w")}
    below = {st.name: st for st in ns.scandir("/w/sub")}
    assert sorted(top) == ["a.txt", "out", "sub"]
    assert top["out"] == below["out"] and top["out"].readonly
    with pytest.raises(PermissionDenied):
        ns.stat("/w/out")
