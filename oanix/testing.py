"""Conformance tests every file service runs.

Mix ``FileServiceTests`` into a pytest class and supply ``make_service()`` returning a new,
empty, writable service::

    class TestMyFs(FileServiceTests):
        def make_service(self):
            return MyFs()

``ReadOnlyServiceTests`` is the same for read-only services: ``make_service(files)`` gets a
``{path: bytes}`` dict the service must present.
"""

from __future__ import annotations

import io
import threading
from typing import ClassVar, cast

import pytest

from . import errors, paths
from .service import FileService

__all__ = ["FileServiceTests", "ReadOnlyServiceTests"]


class FileServiceTests:
    """The contract of a writable FileService, as pytest tests."""

    def make_service(self) -> FileService:
        raise NotImplementedError

    # -- files --------------------------------------------------------------------------

    def test_write_then_read(self) -> None:
        fs = self.make_service()
        fs.write_bytes("/a.txt", b"hello")
        assert fs.read_bytes("/a.txt") == b"hello"
        assert fs.read_text("a.txt") == "hello"
        fs.write_text("/a.txt", "héllo")
        assert fs.read_bytes("/a.txt") == "héllo".encode()

    def test_stat_file_and_dir(self) -> None:
        fs = self.make_service()
        fs.mkdir("/d")
        fs.write_bytes("/d/f", b"12345")
        st = fs.stat("/d/f")
        assert (st.name, st.size, st.is_dir, st.is_file) == ("f", 5, False, True)
        st = fs.stat("/d")
        assert st.is_dir and st.name == "d"
        assert fs.stat("/").is_dir

    def test_missing_paths(self) -> None:
        fs = self.make_service()
        with pytest.raises(errors.NotFound) as exc:
            fs.stat("/nope/x")
        assert exc.value.path == "/nope/x" and exc.value.errno == 2
        with pytest.raises(FileNotFoundError):
            fs.read_bytes("/nope")
        with pytest.raises(errors.NotFound):
            fs.listdir("/nope")
        with pytest.raises(errors.NotFound):
            fs.write_bytes("/nope/x", b"")
        assert not fs.exists("/nope") and not fs.is_dir("/nope") and not fs.is_file("/nope")

    def test_through_a_file(self) -> None:
        fs = self.make_service()
        fs.write_bytes("/f", b"x")
        with pytest.raises(errors.NotADirectory):
            fs.listdir("/f")
        with pytest.raises((errors.NotADirectory, errors.NotFound)):
            fs.stat("/f/g")
        with pytest.raises((errors.NotADirectory, errors.NotFound)):
            fs.write_bytes("/f/g", b"")

    def test_open_modes(self) -> None:
        fs = self.make_service()
        with fs.open("/f", "wb") as f:
            assert f.write(b"hello world") == 11
            assert f.tell() == 11
        with fs.open("/f", "rb") as f:
            assert f.read(5) == b"hello"
            f.seek(6)
            assert f.read() == b"world"
            with pytest.raises(errors.BadFileMode):
                f.write(b"x")
        with fs.open("/f", "ab") as f:
            f.write(b"!")
            with pytest.raises(io.UnsupportedOperation):
                f.read()
        assert fs.read_bytes("/f") == b"hello world!"
        with fs.open("/f", "r+b") as f:
            f.seek(0)
            f.write(b"J")
            f.seek(0, io.SEEK_END)
            assert f.tell() == 12
        assert fs.read_bytes("/f") == b"Jello world!"
        with fs.open("/f", "w+") as f:
            assert f.read() == b""
            f.write(b"abc")
            f.seek(0)
            assert f.read() == b"abc"
        with fs.open("/f", "a+") as f:
            f.write(b"d")
            f.seek(0)
            assert f.read() == b"abcd"
        with pytest.raises(errors.AlreadyExists):
            fs.open("/f", "x")
        with fs.open("/g", "xb") as f:
            f.write(b"new")
        assert fs.read_bytes("/g") == b"new"
        with pytest.raises(errors.NotFound):
            fs.open("/missing", "r")
        with pytest.raises(errors.NotFound):
            fs.open("/missing", "r+")
        with pytest.raises(errors.InvalidArgument):
            fs.open("/f", "rt")

    def test_truncate_and_lines(self) -> None:
        fs = self.make_service()
        fs.write_bytes("/f", b"one\ntwo\nthree")
        with fs.open("/f", "r+") as f:
            assert list(f) == [b"one\n", b"two\n", b"three"]
            f.truncate(3)
        assert fs.read_bytes("/f") == b"one"
        with fs.open("/f", "rb") as f:
            buf = bytearray(2)
            assert cast(io.RawIOBase, f).readinto(buf) == 2 and buf == b"on"

    def test_closed_file(self) -> None:
        fs = self.make_service()
        f = fs.open("/f", "w")
        f.close()
        assert f.closed
        with pytest.raises(ValueError):
            f.write(b"x")

    def test_open_directory(self) -> None:
        fs = self.make_service()
        fs.mkdir("/d")
        with pytest.raises(errors.IsADirectory):
            fs.open("/d", "rb")
        with pytest.raises(errors.IsADirectory):
            fs.open("/d", "wb")
        with pytest.raises(errors.IsADirectory):
            fs.read_bytes("/d")

    # -- directories --------------------------------------------------------------------

    def test_mkdir_listdir_rmdir(self) -> None:
        fs = self.make_service()
        fs.mkdir("/d")
        with pytest.raises(errors.AlreadyExists):
            fs.mkdir("/d")
        with pytest.raises(errors.NotFound):
            fs.mkdir("/x/y")
        fs.write_bytes("/d/b", b"")
        fs.write_bytes("/d/a", b"")
        assert sorted(fs.listdir("/d")) == ["a", "b"]
        assert sorted(st.name for st in fs.scandir("/d")) == ["a", "b"]
        with pytest.raises(errors.NotEmpty):
            fs.rmdir("/d")
        with pytest.raises(errors.NotADirectory):
            fs.rmdir("/d/a")
        fs.remove("/d/a")
        fs.remove("/d/b")
        fs.rmdir("/d")
        assert not fs.exists("/d")
        with pytest.raises(errors.NotFound):
            fs.rmdir("/d")

    def test_remove(self) -> None:
        fs = self.make_service()
        fs.mkdir("/d")
        with pytest.raises(errors.IsADirectory):
            fs.remove("/d")
        with pytest.raises(errors.NotFound):
            fs.remove("/nope")

    def test_makedirs_rmtree(self) -> None:
        fs = self.make_service()
        fs.makedirs("/a/b/c")
        with pytest.raises(errors.AlreadyExists):
            fs.makedirs("/a/b/c")
        fs.makedirs("/a/b/c", exist_ok=True)
        fs.write_bytes("/a/b/c/f", b"x")
        fs.write_bytes("/a/g", b"y")
        with pytest.raises(errors.AlreadyExists):
            fs.makedirs("/a/g", exist_ok=True)
        fs.rmtree("/a")
        assert not fs.exists("/a")

    def test_walk_and_glob(self) -> None:
        fs = self.make_service()
        fs.makedirs("/src/pkg")
        fs.write_bytes("/src/a.py", b"")
        fs.write_bytes("/src/pkg/b.py", b"")
        fs.write_bytes("/src/pkg/c.txt", b"")
        walked = {d: (sorted(ds), sorted(fs_)) for d, ds, fs_ in fs.walk("/src")}
        assert walked == {"/src": (["pkg"], ["a.py"]), "/src/pkg": ([], ["b.py", "c.txt"])}
        assert fs.glob("/src/*.py") == ["/src/a.py"]
        assert fs.glob("/src/**/*.py") == ["/src/a.py", "/src/pkg/b.py"]
        assert fs.glob("/src/pkg/?.*") == ["/src/pkg/b.py", "/src/pkg/c.txt"]

    # -- rename and copy ----------------------------------------------------------------

    def test_rename(self) -> None:
        fs = self.make_service()
        fs.write_bytes("/a", b"1")
        fs.rename("/a", "/b")
        assert not fs.exists("/a") and fs.read_bytes("/b") == b"1"
        fs.write_bytes("/c", b"2")
        fs.rename("/c", "/b")  # replaces a file
        assert fs.read_bytes("/b") == b"2"
        fs.makedirs("/d/e")
        fs.write_bytes("/d/e/f", b"3")
        fs.rename("/d", "/D")
        assert fs.read_bytes("/D/e/f") == b"3" and not fs.exists("/d")
        with pytest.raises(errors.InvalidPath):
            fs.rename("/D", "/D/e/x")
        with pytest.raises(errors.NotFound):
            fs.rename("/nope", "/x")
        fs.mkdir("/empty")
        with pytest.raises(errors.IsADirectory):
            fs.rename("/b", "/empty")
        with pytest.raises(errors.NotADirectory):
            fs.rename("/empty", "/b")
        with pytest.raises(errors.NotEmpty):
            fs.rename("/empty", "/D")
        fs.rename("/D", "/empty")  # a directory replaces an empty one
        assert fs.read_bytes("/empty/e/f") == b"3"

    def test_copy_and_move(self) -> None:
        fs = self.make_service()
        fs.makedirs("/src/sub")
        fs.write_bytes("/src/sub/f", b"data")
        fs.copy("/src", "/dst")
        assert fs.read_bytes("/dst/sub/f") == b"data"
        assert fs.read_bytes("/src/sub/f") == b"data"
        fs.move("/dst", "/moved")
        assert fs.read_bytes("/moved/sub/f") == b"data" and not fs.exists("/dst")

    def test_bad_paths(self) -> None:
        fs = self.make_service()
        with pytest.raises(errors.InvalidPath):
            fs.write_bytes("/a\x00b", b"")
        with pytest.raises(errors.InvalidPath):
            fs.stat(3)  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidArgument):
            fs.write_bytes("/s", "text")  # type: ignore[arg-type]
        fs.write_bytes("/../../x", b"1")
        assert fs.read_bytes("/x") == b"1"

    def test_threads(self) -> None:
        fs = self.make_service()
        errs: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                fs.makedirs(f"/t{i % 3}", exist_ok=True)
                for j in range(100):
                    fs.write_bytes(f"/t{i % 3}/{i}-{j}", str(j).encode())
                    fs.listdir(f"/t{i % 3}")
                for j in range(100):
                    assert fs.read_bytes(f"/t{i % 3}/{i}-{j}") == str(j).encode()
            except BaseException as e:  # reported below
                errs.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errs, errs
        assert sum(len(fs.listdir(f"/t{k}")) for k in range(3)) == 600


class ReadOnlyServiceTests:
    """The contract of a read-only FileService, as pytest tests."""

    FILES: ClassVar[dict[str, bytes]] = {
        "/a.txt": b"alpha", "/d/b.bin": b"\x00\x01", "/d/e/c": b"deep"}

    def make_service(self, files: dict[str, bytes]) -> FileService:
        raise NotImplementedError

    def test_reads(self) -> None:
        fs = self.make_service(self.FILES)
        for path, data in self.FILES.items():
            assert fs.read_bytes(path) == data
            assert fs.stat(path).size == len(data)
        assert sorted(fs.listdir("/")) == ["a.txt", "d"]
        assert fs.is_dir("/d/e") and fs.stat("/d").is_dir
        found = sorted(paths.join(d, n) for d, _, names in fs.walk("/") for n in names)
        assert found == sorted(self.FILES)
        with fs.open("/d/e/c") as f:
            f.seek(2)
            assert f.read() == b"ep"

    def test_writes_refused(self) -> None:
        fs = self.make_service(self.FILES)
        with pytest.raises(errors.ReadOnly):
            fs.write_bytes("/a.txt", b"x")
        with pytest.raises(errors.ReadOnly):
            fs.write_bytes("/new", b"x")
        with pytest.raises(errors.ReadOnly):
            fs.open("/a.txt", "r+")
        with pytest.raises(errors.ReadOnly):
            fs.mkdir("/x")
        with pytest.raises(errors.ReadOnly):
            fs.remove("/a.txt")
        with pytest.raises(errors.ReadOnly):
            fs.rmdir("/d/e")
        with pytest.raises(errors.ReadOnly):
            fs.rename("/a.txt", "/b")
        assert fs.read_bytes("/a.txt") == b"alpha"
        with fs.open("/a.txt") as f, pytest.raises(errors.BadFileMode):
            f.write(b"x")

    def test_missing(self) -> None:
        fs = self.make_service(self.FILES)
        with pytest.raises(errors.NotFound):
            fs.read_bytes("/nope")
        with pytest.raises(errors.NotADirectory):
            fs.listdir("/a.txt")
