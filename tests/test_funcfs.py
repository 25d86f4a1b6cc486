import threading
from collections.abc import Callable

import pytest

from oanix import errors
from oanix.fs.func import FuncFs


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.n}\n"


def test_is_computed_marker() -> None:
    assert FuncFs.is_computed is True
    assert FuncFs().is_computed


def test_content_is_recomputed_per_open_and_snapshot_per_open() -> None:
    counter = Counter()
    fs = FuncFs().read_only("/count", counter)
    f1 = fs.open("/count")
    f2 = fs.open("/count")
    assert f1.read(1) == b"1"
    assert fs.read_bytes("/count") == b"3\n"
    assert f1.read() == b"\n"  # f1 keeps its snapshot
    f1.seek(0)
    assert f1.read() == b"1\n"
    assert f2.read() == b"2\n"
    f1.close()
    f2.close()
    assert counter.n == 3


def test_read_callable_may_return_bytes_or_str() -> None:
    fs = (FuncFs()
          .read_only("/b", lambda: b"\x00\xff")
          .read_only("/s", lambda: "€")
          .read_only("/ba", lambda: bytearray(b"ba")))  # type: ignore[arg-type,return-value]
    assert fs.read_bytes("/b") == b"\x00\xff"
    assert fs.read_bytes("/s") == "€".encode()
    assert fs.read_bytes("/ba") == b"ba"
    with fs.open("/s") as f:
        assert f.read() == b"\xe2\x82\xac"


def test_stat() -> None:
    fs = (FuncFs()
          .read_only("/d/r", lambda: "abc")
          .write_only("/d/w", lambda data: None)
          .read_write("/d/rw", lambda: "12345", lambda data: None))
    r, rw, w = fs.scandir("/d")
    assert (r.name, r.size, r.is_dir, r.readonly) == ("r", 3, False, True)
    assert (w.name, w.size, w.is_dir, w.readonly) == ("w", 0, False, False)
    assert (rw.name, rw.size, rw.is_dir, rw.readonly) == ("rw", 5, False, False)
    assert fs.stat("/d/rw") == rw
    d = fs.stat("/d")
    assert d.is_dir and d.size == 3 and d.readonly
    assert fs.listdir("/d") == ["r", "rw", "w"]


def test_write_only_gets_the_whole_content_once_on_close() -> None:
    got: list[bytes] = []
    fs = FuncFs().write_only("/ctl", got.append)
    f = fs.open("/ctl", "wb")
    f.write(b"hello ")
    f.write(b"world")
    assert got == []
    f.close()
    f.close()
    assert got == [b"hello world"]
    with fs.open("/ctl", "w") as f:
        f.writelines([b"a", b"b", b"c"])
        f.seek(0)
        f.write(b"A")
    assert got == [b"hello world", b"Abc"]
    fs.write_bytes("/ctl", b"direct")
    fs.write_text("/ctl", "text")
    assert got[2:] == [b"direct", b"text"]
    with fs.open("/ctl", "ab") as f:
        f.write(b"appended")
    assert got[4:] == [b"appended"]


def test_open_for_writing_without_writing_still_delivers() -> None:
    got: list[bytes] = []
    fs = FuncFs().write_only("/ctl", got.append)
    fs.open("/ctl", "w").close()
    assert got == [b""]


def test_read_write_round_trip() -> None:
    state = {"value": b"start"}

    def write(data: bytes) -> None:
        state["value"] = data

    fs = FuncFs().read_write("/var", lambda: state["value"], write)
    assert fs.read_bytes("/var") == b"start"
    fs.write_bytes("/var", b"new value")
    assert state["value"] == b"new value"
    assert fs.read_bytes("/var") == b"new value"
    with fs.open("/var", "ab") as f:
        f.write(b"!")
    assert state["value"] == b"new value!"
    with fs.open("/var", "r+b") as f:
        assert f.read(3) == b"new"
        f.seek(0)
        f.write(b"NEW")
    assert state["value"] == b"NEW value!"
    with fs.open("/var", "w+b") as f:
        assert f.read() == b""
        f.write(b"x")
    assert state["value"] == b"x"
    with pytest.raises(errors.AlreadyExists):
        fs.open("/var", "x")


def test_implied_directories() -> None:
    fs = FuncFs().read_only("/a/b/c", lambda: "c").read_only("/a/d", lambda: "d")
    assert fs.listdir("/") == ["a"]
    assert fs.listdir("/a") == ["b", "d"]
    assert fs.is_dir("/a/b") and fs.is_file("/a/b/c")
    walked = sorted((d, sorted(ds), sorted(fs_)) for d, ds, fs_ in fs.walk("/"))
    assert walked == [("/", ["a"], []), ("/a", ["b"], ["d"]), ("/a/b", [], ["c"])]


def test_registering_again_replaces() -> None:
    fs = FuncFs().read_only("/f", lambda: "old")
    fs.read_only("f", lambda: "new")
    assert fs.read_bytes("/f") == b"new"


def test_registration_conflicts() -> None:
    fs = FuncFs().read_only("/a/b", lambda: "")
    with pytest.raises(errors.InvalidArgument, match="'/a'"):
        fs.read_only("/a", lambda: "")
    with pytest.raises(errors.InvalidArgument, match="'/a/b'"):
        fs.write_only("/a/b/c", lambda data: None)
    with pytest.raises(errors.InvalidArgument, match="root"):
        fs.read_only("/", lambda: "")
    with pytest.raises(errors.InvalidArgument, match="not callable"):
        fs.read_only("/x", b"not a function")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument, match="not callable"):
        fs.read_write("/x", lambda: "", None)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument):
        fs.read_only("/x\x00", lambda: "")
    assert fs.listdir("/") == ["a"]
    assert fs.listdir("/a") == ["b"]


def test_modes_refused_by_kind() -> None:
    got: list[bytes] = []
    fs = FuncFs().read_only("/r", lambda: "r").write_only("/w", got.append)
    for mode in ("w", "a", "r+", "w+", "a+"):
        with pytest.raises(errors.ReadOnly) as ro:
            fs.open("/r", mode)
        assert ro.value.path == "/r"
    with pytest.raises(errors.ReadOnly):
        fs.write_bytes("/r", b"x")
    for mode in ("r", "rb", "r+", "w+", "a+"):
        with pytest.raises(errors.PermissionDenied) as pd:
            fs.open("/w", mode)
        assert pd.value.path == "/w"
    with pytest.raises(errors.PermissionDenied):
        fs.read_bytes("/w")
    assert got == []
    with fs.open("/r") as f, pytest.raises(errors.BadFileMode):
        f.write(b"x")
    with fs.open("/w", "wb") as f, pytest.raises(errors.BadFileMode):
        f.read()
    assert got == [b""]


def test_structure_is_fixed() -> None:
    fs = FuncFs().read_only("/d/f", lambda: "x")
    ops: list[tuple[Callable[[], object], str]] = [
        (lambda: fs.mkdir("/e"), "/e"),
        (lambda: fs.remove("/d/f"), "/d/f"),
        (lambda: fs.rmdir("/d"), "/d"),
        (lambda: fs.rename("/d/f", "/d/g"), "/d/f"),
        (lambda: fs.open("/d/new", "w"), "/d/new"),
        (lambda: fs.write_bytes("/new", b""), "/new"),
    ]
    for op, path in ops:
        with pytest.raises(errors.Unsupported, match="FuncFs structure is fixed") as exc:
            op()
        assert exc.value.path == path
    assert fs.listdir("/") == ["d"] and fs.listdir("/d") == ["f"]


def test_lookup_errors() -> None:
    fs = FuncFs().read_only("/d/f", lambda: "x")
    with pytest.raises(errors.NotFound):
        fs.open("/nope", "r")
    with pytest.raises(errors.NotFound):
        fs.open("/nope/f", "w")
    with pytest.raises(errors.NotADirectory):
        fs.open("/d/f/g", "r")
    with pytest.raises(errors.NotADirectory):
        fs.listdir("/d/f")
    with pytest.raises(errors.IsADirectory):
        fs.open("/d", "r")
    with pytest.raises(errors.IsADirectory):
        fs.read_bytes("/d")


def test_failing_read_callable_is_wrapped() -> None:
    def boom() -> bytes:
        raise RuntimeError("sensor offline")

    fs = FuncFs().read_only("/temp", boom)
    for op in (lambda: fs.open("/temp"), lambda: fs.read_bytes("/temp"),
               lambda: fs.stat("/temp")):
        with pytest.raises(errors.FsError) as exc:
            op()
        assert type(exc.value) is errors.FsError
        assert exc.value.path == "/temp" and exc.value.errno == errors.FsError.errno_code
        assert "read callable failed: sensor offline" in str(exc.value)
        assert isinstance(exc.value.__cause__, RuntimeError)


def test_read_callable_returning_a_bad_type() -> None:
    fs = FuncFs().read_only("/n", lambda: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(errors.FsError, match="returned int"):
        fs.read_bytes("/n")


def test_fs_errors_from_callables_pass_through() -> None:
    def denied() -> bytes:
        raise errors.PermissionDenied("/secret", "ask first")

    def full(data: bytes) -> None:
        raise errors.NoSpace("/queue")

    fs = FuncFs().read_only("/secret", denied).write_only("/queue", full)
    with pytest.raises(errors.PermissionDenied, match="ask first"):
        fs.read_bytes("/secret")
    with pytest.raises(errors.NoSpace):
        fs.write_bytes("/queue", b"x")


def test_failing_write_callable_raises_on_close_once() -> None:
    calls: list[bytes] = []

    def reject(data: bytes) -> None:
        calls.append(data)
        raise ValueError("bad command")

    fs = FuncFs().write_only("/ctl", reject)
    f = fs.open("/ctl", "w")
    f.write(b"frobnicate")
    with pytest.raises(errors.FsError) as exc:
        f.close()
    assert exc.value.path == "/ctl" and "write callable failed: bad command" in str(exc.value)
    assert isinstance(exc.value.__cause__, ValueError)
    assert f.closed
    f.close()
    assert calls == [b"frobnicate"]
    with pytest.raises(errors.FsError), fs.open("/ctl", "w") as g:
        g.write(b"again")
    assert calls == [b"frobnicate", b"again"]


def test_callables_may_use_the_funcfs() -> None:
    fs = FuncFs().read_only("/a", lambda: "A")
    fs.read_only("/b", lambda: fs.read_bytes("/a") * 2)
    assert fs.read_bytes("/b") == b"AA"


def test_registration_concurrent_with_reads() -> None:
    fs = FuncFs()
    errs: list[BaseException] = []
    done = threading.Event()

    def content(i: int) -> Callable[[], str]:
        return lambda: str(i)

    def register(k: int) -> None:
        try:
            for i in range(200):
                fs.read_only(f"/r{k}/d{i % 7}/f{i}", content(i))
        except BaseException as e:  # reported below
            errs.append(e)

    def read() -> None:
        try:
            while not done.is_set():
                for dirpath, _dirs, files in fs.walk("/"):
                    for name in files:
                        path = f"{dirpath}/{name}"
                        assert fs.read_bytes(path) == name[1:].encode()
                        assert fs.stat(path).size == len(name) - 1
                    fs.scandir(dirpath)
        except BaseException as e:  # reported below
            errs.append(e)

    writers = [threading.Thread(target=register, args=(k,)) for k in range(3)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert not errs, errs
    assert sum(1 for _d, _ds, files in fs.walk("/") for _ in files) == 600


def test_concurrent_writers_each_deliver_their_content() -> None:
    got: list[bytes] = []
    lock = threading.Lock()

    def collect(data: bytes) -> None:
        with lock:
            got.append(data)

    fs = FuncFs().write_only("/ctl", collect)

    def worker(k: int) -> None:
        for i in range(50):
            with fs.open("/ctl", "wb") as f:
                f.write(f"{k}:".encode())
                f.write(str(i).encode())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"{k}:{i}".encode() for k in range(4) for i in range(50))
