import threading
from collections.abc import Callable

import pytest

from oanix import errors
from oanix.fs.map import MapFs
from oanix.testing import ReadOnlyServiceTests


class TestMapFs(ReadOnlyServiceTests):
    def make_service(self, files: dict[str, bytes]) -> MapFs:
        return MapFs(files)


def test_builder_with_empty_dirs_and_text() -> None:
    fs = (MapFs.builder()
          .file("/etc/motd", "héllo")
          .file("bin/tool", b"\x7fELF")
          .dir("/tmp/empty")
          .dir("/etc")
          .build(mtime=42.0))
    assert fs.read_bytes("/etc/motd") == "héllo".encode()
    assert fs.read_text("/etc/motd") == "héllo"
    assert fs.read_bytes("/bin/tool") == b"\x7fELF"
    assert fs.listdir("/") == ["bin", "etc", "tmp"]
    assert fs.listdir("/tmp/empty") == []
    st = fs.stat("/etc/motd")
    assert (st.size, st.is_dir, st.readonly, st.mtime) == (6, False, True, 42.0)
    assert [(s.name, s.is_dir, s.size) for s in fs.scandir("/etc")] == [("motd", False, 6)]
    root = fs.stat("/")
    assert root.is_dir and root.size == 3 and root.readonly and root.mtime == 42.0


def test_default_mtime_is_zero_and_empty_map() -> None:
    assert MapFs({"/f": b""}).stat("/f").mtime == 0.0
    empty = MapFs()
    assert empty.listdir("/") == []
    assert empty.stat("/").is_dir


def test_str_content_is_utf8() -> None:
    fs = MapFs({"/t": "€"})
    assert fs.read_bytes("/t") == b"\xe2\x82\xac"
    assert fs.stat("/t").size == 3


def test_open_reads_like_a_file() -> None:
    fs = MapFs({"/f": b"one\ntwo\n"})
    with fs.open("/f", "rb") as f:
        assert list(f) == [b"one\n", b"two\n"]
        f.seek(0)
        assert f.read(3) == b"one"
    with pytest.raises(errors.IsADirectory):
        fs.open("/", "rb")
    with pytest.raises(errors.NotADirectory):
        fs.stat("/f/x")
    with pytest.raises(errors.NotFound):
        fs.open("/nope", "rb")


@pytest.mark.parametrize("mode", ["w", "wb", "a", "x", "r+", "w+", "a+", "x+"])
def test_every_write_mode_is_refused_naming_the_path(mode: str) -> None:
    fs = MapFs({"/f": b"data"})
    for path in ("/f", "/new", "/missing/dir/f"):
        with pytest.raises(errors.ReadOnly) as exc:
            fs.open(path, mode)
        assert exc.value.path == path
    assert fs.read_bytes("/f") == b"data"


def test_write_operations_name_the_path() -> None:
    fs = MapFs({"/d/f": b"x"})
    ops: list[tuple[Callable[[], object], str]] = [
        (lambda: fs.write_bytes("/d/f", b"y"), "/d/f"),
        (lambda: fs.write_text("/d/g", "y"), "/d/g"),
        (lambda: fs.mkdir("/e"), "/e"),
        (lambda: fs.makedirs("/e/f"), "/e"),
        (lambda: fs.remove("/d/f"), "/d/f"),
        (lambda: fs.rmdir("/d"), "/d"),
        (lambda: fs.rename("/d/f", "/g"), "/d/f"),
        (lambda: fs.rmtree("/d"), "/d/f"),
    ]
    for op, path in ops:
        with pytest.raises(errors.ReadOnly) as exc:
            op()
        assert exc.value.path == path and exc.value.errno == errors.ReadOnly.errno_code
    assert fs.read_bytes("/d/f") == b"x"


def test_file_and_directory_conflicts_are_invalid() -> None:
    with pytest.raises(errors.InvalidArgument, match="'/a'"):
        MapFs({"/a": b"x", "/a/b": b"y"})
    with pytest.raises(errors.InvalidArgument, match="'/a'"):
        MapFs({"/a/b": b"y", "/a": b"x"})
    with pytest.raises(errors.InvalidArgument, match="'/a'"):
        MapFs({"/a": b"x"}, dirs=["/a/sub"])
    with pytest.raises(errors.InvalidArgument, match="'/a'"):
        MapFs({"/a": b"x"}, dirs=["/a"])
    with pytest.raises(errors.InvalidArgument, match="'/a'"):
        MapFs.builder().file("/a", b"x").file("/a/b/c", b"y").build()
    with pytest.raises(errors.InvalidArgument, match="root"):
        MapFs({"/": b"x"})


def test_duplicate_paths_are_invalid() -> None:
    with pytest.raises(errors.InvalidArgument, match="'/a' is given twice"):
        MapFs({"/a": b"1", "a": b"2"})
    with pytest.raises(errors.InvalidArgument, match="'/a' is given twice"):
        MapFs.builder().file("/a", b"1").file("/x/../a", b"2")


def test_bad_values_and_paths_are_invalid() -> None:
    with pytest.raises(errors.InvalidArgument, match=r"'/a'.*int"):
        MapFs({"/a": 3})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidArgument, match="bytearray"):
        MapFs({"/a": bytearray(b"x")})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidArgument, match="NUL"):
        MapFs({"/a\x00": b"x"})
    with pytest.raises(errors.InvalidArgument):
        MapFs({7: b"x"})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidArgument):
        MapFs.builder().dir(None)  # type: ignore[arg-type]


def test_listing_touches_only_the_directory() -> None:
    files = {f"/big/{i:04d}": b"" for i in range(2000)}
    files["/small/x"] = b"x"
    fs = MapFs(files)
    assert fs.listdir("/small") == ["x"]
    assert len(fs.listdir("/big")) == 2000
    assert fs.stat("/big").size == 2000


def test_shared_between_threads() -> None:
    fs = MapFs({f"/d{i}/f": str(i) for i in range(20)})
    errs: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(50):
                for i in range(20):
                    with fs.open(f"/d{i}/f") as f:
                        assert f.read() == str(i).encode()
        except BaseException as e:  # reported below
            errs.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errs, errs
