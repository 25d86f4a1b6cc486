"""fsspec interop both ways: OanixFileSystem (oanix as fsspec) and FsspecFs (fsspec as oanix)."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import fsspec  # type: ignore[import-untyped]
import pytest
from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]
from fsspec.implementations.memory import MemoryFileSystem  # type: ignore[import-untyped]
from fsspec.implementations.zip import ZipFileSystem  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from oanix import (
    AlreadyExists,
    BadFileMode,
    FsError,
    InvalidArgument,
    MemFs,
    Namespace,
    NotADirectory,
    NotEmpty,
    NotFound,
    PermissionDenied,
    ReadOnly,
    Unsupported,
)
from oanix.as_fsspec import OanixFileSystem
from oanix.fs.fsspec import FsspecFs
from oanix.testing import FileServiceTests, ReadOnlyServiceTests


def memory() -> MemoryFileSystem:
    """A MemoryFileSystem with its own store (the default store is process-global)."""
    return MemoryFileSystem(global_store=False, skip_instance_cache=True)


def make_zip(files: dict[str, bytes], mode: str = "r") -> ZipFileSystem:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, data in files.items():
            z.writestr(path.lstrip("/"), data)
    buf.seek(0)
    return ZipFileSystem(buf, mode=mode)


def mem_namespace() -> Namespace:
    ns = Namespace()
    ns.mount("/tmp", MemFs())
    return ns


# -- FsspecFs: conformance ----------------------------------------------------------------


class TestFsspecOverMemory(FileServiceTests):
    def make_service(self) -> FsspecFs:
        return FsspecFs(memory())


class TestFsspecOverMemoryWithRoot(FileServiceTests):
    def make_service(self) -> FsspecFs:
        fs = memory()
        fs.pipe_file("/elsewhere/f", b"outside the root")
        return FsspecFs(fs, "/mnt/oanix", create_root=True)


class TestFsspecOverLocal(FileServiceTests):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    def make_service(self) -> FsspecFs:
        return FsspecFs(LocalFileSystem(), str(self.tmp))


class TestFsspecOverOanixFileSystem(FileServiceTests):
    """The double wrap: a MemFs seen through fsspec, seen through oanix again."""

    def make_service(self) -> FsspecFs:
        ns = Namespace()
        ns.mount("/data", MemFs())
        return FsspecFs(OanixFileSystem(namespace=ns), "/data")


class TestFsspecOverZip(ReadOnlyServiceTests):
    def make_service(self, files: dict[str, bytes]) -> FsspecFs:
        fs = FsspecFs(make_zip(files))
        assert fs.readonly
        return fs


# -- FsspecFs: specifics ------------------------------------------------------------------


def test_errors_name_the_service_path_not_the_backend_path() -> None:
    fs = FsspecFs(memory(), "/secret/root", create_root=True)
    with pytest.raises(NotFound) as exc:
        fs.read_bytes("/missing")
    assert exc.value.path == "/missing" and "/secret" not in str(exc.value)
    assert isinstance(exc.value.__cause__, FileNotFoundError)
    ns = Namespace()
    ns.mount("/m", fs)
    with pytest.raises(NotFound) as exc:
        ns.stat("/m/a/b")
    assert exc.value.path == "/m/a/b"


def test_root_must_exist_unless_created(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        FsspecFs(memory(), "/nope")
    m = memory()
    m.pipe_file("/file", b"x")
    with pytest.raises(NotADirectory):
        FsspecFs(m, "/file")
    fs = FsspecFs(m, "/made/here", create_root=True)
    assert fs.stat("/").is_dir and m.isdir("/made/here")
    assert fs.root == "/made/here"
    with pytest.raises(InvalidArgument):
        FsspecFs(LocalFileSystem(), "relative/dir")
    with pytest.raises(InvalidArgument):
        FsspecFs(MemFs())


def test_root_is_a_boundary() -> None:
    m = memory()
    m.pipe_file("/outside", b"secret")
    m.pipe_file("/jail/inside", b"ok")
    fs = FsspecFs(m, "/jail")
    assert fs.listdir("/") == ["inside"]
    assert fs.read_bytes("/../inside") == b"ok"
    with pytest.raises(NotFound):
        fs.read_bytes("/../outside")


def test_memory_quirks_are_hidden() -> None:
    m = memory()
    fs = FsspecFs(m)
    with pytest.raises(NotFound):  # memory would create /no/such/f without a parent
        fs.write_bytes("/no/such/f", b"x")
    assert not m.exists("/no/such/f")
    fs.mkdir("/d")
    fs.write_bytes("/d/f", b"x")
    with pytest.raises(NotEmpty):  # memory's rmdir would raise a bare OSError
        fs.rmdir("/d")
    fs.remove("/d/f")
    assert fs.listdir("/d") == [] and fs.is_dir("/d")  # an empty directory stays
    with pytest.raises(AlreadyExists):
        fs.mkdir("/d")
    # Memory hands the same object to every opener: positions stay independent.
    fs.write_bytes("/shared", b"0123456789")
    with fs.open("/shared") as a, fs.open("/shared") as b:
        assert a.read(3) == b"012"
        assert b.read(5) == b"01234"
        assert a.read(2) == b"34"
        assert a.readline() == b"56789" and b.read() == b"56789"


def test_plus_modes_buffer_and_write_back() -> None:
    m = memory()
    fs = FsspecFs(m)
    fs.write_bytes("/f", b"hello")
    with fs.open("/f", "r+b") as f:
        f.seek(1)
        f.write(b"EL")
        assert m.cat_file("/f") == b"hello"  # written back on close
    assert m.cat_file("/f") == b"hELlo"
    with fs.open("/new", "x+") as f:
        assert m.cat_file("/new") == b""  # created at open, as POSIX does
        f.write(b"n")
    assert fs.read_bytes("/new") == b"n"
    with fs.open("/f", "ab") as f:
        f.write(b"!")
    assert fs.read_bytes("/f") == b"hELlo!"


def test_streaming_writer_only_moves_forward() -> None:
    fs = FsspecFs(memory())
    with fs.open("/f", "wb") as f:
        f.write(b"abc")
        assert f.seek(0, io.SEEK_END) == 3 and f.seek(3) == 3
        with pytest.raises(Unsupported):
            f.seek(0)
        with pytest.raises(Unsupported):
            f.truncate(1)
        with pytest.raises(BadFileMode):
            f.read()
        assert not f.seekable() and f.writable() and not f.readable()
    assert fs.read_bytes("/f") == b"abc"


def test_readonly_flag_and_zip_detection() -> None:
    m = memory()
    m.pipe_file("/f", b"x")
    fs = FsspecFs(m, readonly=True)
    assert fs.stat("/f").readonly
    with pytest.raises(ReadOnly):
        fs.write_bytes("/f", b"y")
    with pytest.raises(ReadOnly):
        fs.open("/g", "wb")
    assert m.cat_file("/f") == b"x" and not m.exists("/g")
    assert not FsspecFs(memory()).readonly
    assert not FsspecFs(make_zip({}, mode="w")).readonly
    empty = FsspecFs(make_zip({}))
    assert empty.readonly and empty.listdir("/") == [] and empty.stat("/").is_dir
    sub = FsspecFs(make_zip({"d/e/c": b"deep", "top": b"t"}), "d")
    assert sub.listdir("/") == ["e"] and sub.read_bytes("/e/c") == b"deep"


def test_unimplemented_backend_operation_is_unsupported() -> None:
    # A zip forced writable: zip has no rm_file (NotImplementedError in fsspec).
    fs = FsspecFs(make_zip({"a": b"1"}), readonly=False)
    with pytest.raises(Unsupported) as exc:
        fs.remove("/a")
    assert exc.value.path == "/a" and exc.value.errno == errno.EOPNOTSUPP
    with pytest.raises(FsError) as err:  # zip refuses writes in read mode: a typed error
        fs.write_bytes("/b", b"x")
    assert err.value.path == "/b"


def test_local_special_files_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"via link")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "pipe")
    fs = FsspecFs(LocalFileSystem(), str(tmp_path))
    kinds = {st.name: st.is_dir for st in fs.scandir("/")}
    assert kinds == {"link": True, "pipe": False, "real": True}
    assert fs.read_bytes("/link/f") == b"via link"  # documented: links are followed
    with pytest.raises(PermissionDenied):
        fs.open("/pipe", "rb")
    with pytest.raises(PermissionDenied):
        fs.write_bytes("/pipe", b"x")


def test_stat_mtime_from_backends(tmp_path: Path) -> None:
    local = FsspecFs(LocalFileSystem(), str(tmp_path))
    local.write_bytes("/f", b"x")
    assert local.stat("/f").mtime == pytest.approx((tmp_path / "f").stat().st_mtime)
    mem = FsspecFs(memory())
    mem.write_bytes("/f", b"x")
    assert mem.stat("/f").mtime > 0 and mem.stat("/").mtime == 0.0
    zipped = FsspecFs(make_zip({"f": b"x"}))
    assert zipped.stat("/f").mtime > 0


@settings(max_examples=100, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"\n", b"bc", b"\x00"]), max_size=100).map(b"".join),
       ops=st.lists(st.tuples(st.sampled_from(["read", "seek", "readline", "tell"]),
                              st.integers(-1, 320)), max_size=12))
def test_reader_matches_bytesio(data: bytes, ops: list[tuple[str, int]]) -> None:
    fs = FsspecFs(memory())
    fs.write_bytes("/f", data)
    model = io.BytesIO(data)
    with fs.open("/f", "rb") as f:
        for op, n in ops:
            if op == "read":
                assert f.read(n) == model.read(n)
            elif op == "readline":
                assert f.readline(n) == model.readline(n)
            elif op == "seek":
                assert f.seek(max(n, 0)) == model.seek(max(n, 0))
            else:
                assert f.tell() == model.tell()


# -- OanixFileSystem ----------------------------------------------------------------------


def test_entry_point_resolves_without_importing_the_module() -> None:
    code = (
        "import fsspec, oanix\n"
        "from fsspec.registry import known_implementations, registry\n"
        "assert 'oanix' not in registry  # nothing registered by hand\n"
        "assert known_implementations['oanix']['class'] == 'oanix.as_fsspec.OanixFileSystem'\n"
        "ns = oanix.Namespace(); ns.mount('/tmp', oanix.MemFs())\n"
        "fs = fsspec.filesystem('oanix', namespace=ns)\n"
        "assert type(fs).__module__ == 'oanix.as_fsspec', type(fs)\n"
        "with fsspec.open('oanix:///tmp/a.txt', 'wb', namespace=ns) as f:\n"
        "    f.write(b'hi')\n"
        "with fsspec.open('oanix:///tmp/a.txt', 'rb', namespace=ns) as f:\n"
        "    assert f.read() == b'hi'\n"
        "assert ns.read_bytes('/tmp/a.txt') == b'hi'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert fsspec.get_filesystem_class("oanix") is OanixFileSystem


def test_fsspec_open_reads_and_writes_a_namespace() -> None:
    ns = mem_namespace()
    with fsspec.open("oanix:///tmp/a.txt", "wb", namespace=ns) as f:
        f.write(b"written by fsspec\n")
    assert ns.read_bytes("/tmp/a.txt") == b"written by fsspec\n"
    with fsspec.open("oanix:///tmp/a.txt", "rb", namespace=ns) as f:
        assert f.read() == b"written by fsspec\n"
    with fsspec.open("oanix:///tmp/t.txt", "w", namespace=ns) as f:
        f.write("héllo\nworld\n")
    with fsspec.open("oanix:///tmp/t.txt", "r", namespace=ns) as f:
        assert f.readlines() == ["héllo\n", "world\n"]
    fs = fsspec.filesystem("oanix", namespace=ns)
    with fs.open("/tmp/a.txt", "ab") as f:
        f.write(b"more")
    assert ns.read_bytes("/tmp/a.txt") == b"written by fsspec\nmore"


def test_oanix_writes_fsspec_reads() -> None:
    ns = mem_namespace()
    ns.makedirs("/tmp/src/pkg")
    ns.write_bytes("/tmp/src/a.py", b"print(1)\n")
    ns.write_bytes("/tmp/src/pkg/b.py", b"")
    ns.write_bytes("/tmp/src/pkg/c.txt", b"ccc")
    fs = fsspec.filesystem("oanix", namespace=ns)
    assert fs.cat("/tmp/src/a.py") == b"print(1)\n"
    assert fs.cat_file("oanix:///tmp/src/pkg/c.txt", start=1) == b"cc"
    with fs.open("/tmp/src/a.py") as f:
        assert f.read(5) == b"print" and f.size == 9
    assert fs.tail("/tmp/src/pkg/c.txt", 2) == b"cc"
    assert fs.find("/") == ["/tmp/src/a.py", "/tmp/src/pkg/b.py", "/tmp/src/pkg/c.txt"]
    assert fs.glob("/tmp/**/*.py") == ["/tmp/src/a.py", "/tmp/src/pkg/b.py"]
    assert fs.glob("oanix:///tmp/src/*") == ["/tmp/src/a.py", "/tmp/src/pkg"]
    assert list(fs.walk("/tmp/src")) == [("/tmp/src", ["pkg"], ["a.py"]),
                                        ("/tmp/src/pkg", [], ["b.py", "c.txt"])]
    assert fs.du("/tmp/src") == 12
    entries = {e["name"]: e for e in fs.ls("/tmp/src", detail=True)}
    assert set(entries) == {"/tmp/src/a.py", "/tmp/src/pkg"}
    assert entries["/tmp/src/a.py"]["size"] == 9 and entries["/tmp/src/a.py"]["type"] == "file"
    assert entries["/tmp/src/pkg"]["type"] == "directory"
    assert fs.ls("/tmp/src", detail=False) == ["/tmp/src/a.py", "/tmp/src/pkg"]
    assert fs.ls("/tmp/src/a.py", detail=False) == ["/tmp/src/a.py"]
    info = fs.info("/tmp/src/a.py")
    assert info["mtime"] > 0 and info["readonly"] is False
    assert fs.modified("/tmp/src/a.py") == datetime.fromtimestamp(info["mtime"]).astimezone()
    assert fs.exists("/tmp/src") and fs.isdir("/tmp/src") and fs.isfile("/tmp/src/a.py")
    assert not fs.exists("/nope") and not fs.isdir("/tmp/src/a.py") and not fs.isfile("/nope")


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=64), start=st.none() | st.integers(-80, 80),
       end=st.none() | st.integers(-80, 80))
def test_cat_file_ranges_are_python_slices(data: bytes, start: int | None,
                                           end: int | None) -> None:
    ns = mem_namespace()
    ns.write_bytes("/tmp/f", data)
    fs = OanixFileSystem(namespace=ns)
    assert fs.cat_file("/tmp/f", start, end) == data[start:end]


def test_directory_operations_through_fsspec() -> None:
    ns = mem_namespace()
    fs = fsspec.filesystem("oanix", namespace=ns)
    fs.mkdir("/tmp/a/b")  # create_parents by default
    fs.makedirs("/tmp/a/b", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.mkdir("/tmp/a/b")
    with pytest.raises(FileNotFoundError):
        fs.mkdir("/tmp/x/y", create_parents=False)
    fs.pipe_file("/tmp/a/b/f", b"1")
    fs.pipe({"/tmp/a/g": b"2"})
    with pytest.raises(FileExistsError):
        fs.pipe_file("/tmp/a/g", b"3", mode="create")
    fs.cp_file("/tmp/a/g", "/tmp/a/h")
    fs.copy("/tmp/a", "/tmp/c", recursive=True)
    assert ns.read_bytes("/tmp/c/b/f") == b"1" and ns.read_bytes("/tmp/c/h") == b"2"
    fs.mv("/tmp/c/h", "/tmp/c/b")  # into an existing directory, like mv and shutil
    assert ns.read_bytes("/tmp/c/b/h") == b"2"
    fs.mv("/tmp/c", "/tmp/moved")
    assert ns.listdir("/tmp/moved") == ["b", "g"] and not ns.exists("/tmp/c")
    with pytest.raises(OSError) as exc:
        fs.rmdir("/tmp/moved")
    assert exc.value.errno == errno.ENOTEMPTY
    with pytest.raises(IsADirectoryError):
        fs.rm("/tmp/moved")
    fs.rm("/tmp/moved", recursive=True)
    assert not ns.exists("/tmp/moved")
    fs.rm_file("/tmp/a/h")
    with pytest.raises(IsADirectoryError):  # b is a directory: nothing is removed
        fs.rm("/tmp/a/*")
    assert ns.listdir("/tmp/a") == ["b", "g"]
    fs.rm("/tmp/a/g*")
    assert ns.listdir("/tmp/a") == ["b"]
    with pytest.raises(FileNotFoundError):
        fs.rm("/tmp/none*")
    fs.touch("/tmp/a/t")
    assert ns.read_bytes("/tmp/a/t") == b""


def test_errors_are_builtin_oserrors() -> None:
    ns = mem_namespace()
    ns.mount("/ro", MemFs(), readonly=True)
    fs = OanixFileSystem(namespace=ns)
    with pytest.raises(FileNotFoundError) as exc:
        fs.cat("/tmp/nope")
    assert isinstance(exc.value, NotFound) and exc.value.filename == "/tmp/nope"
    with pytest.raises(FileNotFoundError):
        fs.open("/tmp/nope", "rb")
    with pytest.raises(FileNotFoundError):
        fs.info("/tmp/nope")
    with pytest.raises(IsADirectoryError):
        fs.open("/tmp", "rb")
    ns.write_bytes("/tmp/f", b"")
    with pytest.raises(NotADirectoryError):
        fs.ls("/tmp/f/x")
    with pytest.raises(FileExistsError):
        fs.open("/tmp/f", "xb")
    with pytest.raises(OSError) as err:
        fs.pipe_file("/ro/x", b"")
    assert err.value.errno == errno.EROFS and fs.info("/ro")["readonly"] is True
    with pytest.raises(Unsupported), fs.transaction:
        fs.open("/tmp/t", "wb")


def test_instances_are_never_cached() -> None:
    a, b = mem_namespace(), mem_namespace()
    a.write_bytes("/tmp/only-in-a", b"a")
    fa = fsspec.filesystem("oanix", namespace=a)
    fb = fsspec.filesystem("oanix", namespace=b)
    assert fa is not fb and fa.namespace is a and fb.namespace is b
    assert fa.exists("/tmp/only-in-a") and not fb.exists("/tmp/only-in-a")
    assert fsspec.filesystem("oanix", namespace=a) is not fa
    bare = fsspec.filesystem("oanix")
    assert bare.ls("/") == [] and not bare.exists("/tmp")
    with pytest.raises(InvalidArgument):
        OanixFileSystem(namespace="not a service")  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["oanix:///a/b", "oanix://a/b", "a/b", "/a/b/", "oanix::/a/b",
                                 "/x/../a/./b"])
def test_strip_protocol(url: str) -> None:
    assert OanixFileSystem._strip_protocol(url) == "/a/b"


def test_root_and_unstrip() -> None:
    assert OanixFileSystem._strip_protocol("oanix://") == "/"
    assert OanixFileSystem._strip_protocol(["oanix:///x", "y"]) == ["/x", "/y"]
    assert OanixFileSystem().unstrip_protocol("/a/b") == "oanix:///a/b"


# -- both directions ------------------------------------------------------------------------


def test_copy_and_move_across_an_fsspec_mount_and_a_memfs() -> None:
    backend = memory()
    ns = Namespace()
    ns.mount("/mem", MemFs())
    ns.mount("/fss", FsspecFs(backend))
    ns.makedirs("/mem/dir/sub")
    ns.write_bytes("/mem/dir/sub/f", b"from memfs")
    ns.copy("/mem/dir", "/fss/dir")
    assert backend.cat_file("/dir/sub/f") == b"from memfs"
    ns.move("/fss/dir", "/mem/back")
    assert ns.read_bytes("/mem/back/sub/f") == b"from memfs" and not backend.exists("/dir")
    backend.pipe_file("/g", b"from fsspec")
    ns.move("/fss/g", "/mem/g")
    assert ns.read_bytes("/mem/g") == b"from fsspec" and not backend.exists("/g")
    ns.copy("/mem/g", "/fss/g2")
    assert backend.cat_file("/g2") == b"from fsspec"


def test_double_wrap_reads_and_writes() -> None:
    inner = mem_namespace()
    inner.write_bytes("/tmp/in", b"inner")
    outer = Namespace()
    outer.mount("/home", MemFs())
    outer.mount("/remote", FsspecFs(fsspec.filesystem("oanix", namespace=inner), "/tmp"))
    assert outer.read_bytes("/remote/in") == b"inner"
    outer.write_bytes("/remote/out", b"outer")
    assert inner.read_bytes("/tmp/out") == b"outer"
    outer.makedirs("/remote/d/e")
    with outer.open("/remote/d/e/f", "w+b") as f:
        f.write(b"plus")
        f.seek(0)
        assert f.read() == b"plus"
    assert inner.read_bytes("/tmp/d/e/f") == b"plus"
    outer.copy("/remote/d", "/home/d")
    assert outer.read_bytes("/home/d/e/f") == b"plus"
    outer.rename("/remote/out", "/remote/d/out")
    assert inner.listdir("/tmp/d") == ["e", "out"]
    with pytest.raises(NotFound) as exc:
        outer.read_bytes("/remote/missing")
    assert exc.value.path == "/remote/missing"
    # And once more around: the outer namespace through fsspec.
    fs = OanixFileSystem(namespace=outer)
    assert fs.cat("/remote/d/out") == b"outer"
    assert fs.find("/remote") == ["/remote/d/e/f", "/remote/d/out", "/remote/in"]
