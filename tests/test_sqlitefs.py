"""SqliteFs: the conformance suite, atomic writes, crashes, concurrent readers, reopening
in another process, a wasm run over it, and refused databases."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import oanix
from oanix import Namespace, NotFound, SqliteFs
from oanix.errors import InvalidContent
from oanix.fs import sqlite as sqlite_mod
from oanix.testing import FileServiceTests
from oanix.wasi import RunConfig, WasiRuntime

ROOT = Path(__file__).resolve().parent.parent
Wasm = Callable[[str], str]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "home.db")


@pytest.fixture
def fs(db: str) -> Iterator[SqliteFs]:
    with SqliteFs(db) as service:
        yield service


class TestSqliteFsConformance(FileServiceTests):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> Iterator[None]:
        self._tmp = tmp_path
        self._made: list[SqliteFs] = []
        yield
        for service in self._made:
            service.close()

    def make_service(self) -> SqliteFs:
        service = SqliteFs(str(self._tmp / f"fs{len(self._made)}.db"))
        self._made.append(service)
        return service


def test_exported() -> None:
    assert oanix.SqliteFs is SqliteFs and "SqliteFs" in oanix.__all__
    from oanix.fs import SqliteFs as from_fs
    assert from_fs is SqliteFs


def test_schema_is_plain_sql(fs: SqliteFs, db: str) -> None:
    fs.makedirs("/a/b")
    fs.write_bytes("/a/b/f", b"hello")
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA user_version").fetchone()[0] == sqlite_mod.SCHEMA_VERSION
        assert con.execute("PRAGMA application_id").fetchone()[0] == sqlite_mod.APPLICATION_ID
        rows = con.execute("SELECT path, parent, is_dir, data FROM node ORDER BY path").fetchall()
    finally:
        con.close()
    assert rows == [("/", None, 1, None), ("/a", "/", 1, None), ("/a/b", "/a", 1, None),
                    ("/a/b/f", "/a/b", 0, b"hello")]


def test_rename_directory_moves_everything_below(fs: SqliteFs) -> None:
    fs.makedirs("/a/b/c")
    fs.write_bytes("/a/b/c/f", b"1")
    fs.write_bytes("/a/x", b"2")
    fs.write_bytes("/a0", b"sibling")  # sorts right after "/a/...": must not move
    fs.write_bytes("/ab", b"sibling")
    fs.rename("/a", "/z/../q")
    assert fs.read_bytes("/q/b/c/f") == b"1" and fs.read_bytes("/q/x") == b"2"
    assert sorted(fs.listdir("/")) == ["a0", "ab", "q"]
    assert fs.stat("/q").size == 2 and fs.listdir("/q/b") == ["c"]


def test_write_visible_only_at_close(fs: SqliteFs, db: str) -> None:
    fs.write_bytes("/f", b"old")
    other = SqliteFs(db)
    try:
        with fs.open("/f", "wb") as f:
            f.write(b"new content")
            assert other.read_bytes("/f") == b"old"  # truncation not visible either
            assert fs.read_bytes("/f") == b"old"
        assert other.read_bytes("/f") == b"new content"
    finally:
        other.close()


def test_handle_survives_rename_and_unlink(fs: SqliteFs) -> None:
    fs.write_bytes("/a", b"")
    with fs.open("/a", "r+b") as f:
        fs.rename("/a", "/b")
        f.write(b"followed the rename")
    assert fs.read_bytes("/b") == b"followed the rename"
    with fs.open("/b", "wb") as f:
        fs.remove("/b")
        fs.write_bytes("/b", b"a new file")  # a new node: the old handle must not hit it
        f.write(b"lost, as for an unlinked file")
    assert fs.read_bytes("/b") == b"a new file"


def test_exclusive_create_at_open(fs: SqliteFs) -> None:
    with fs.open("/x", "xb"):
        assert fs.exists("/x")
        with pytest.raises(oanix.AlreadyExists):
            fs.open("/x", "xb")


def test_closed_service(db: str) -> None:
    fs = SqliteFs(db)
    fs.write_bytes("/f", b"1")
    fs.close()
    fs.close()
    with pytest.raises(oanix.FsError, match="closed"):
        fs.read_bytes("/f")
    with pytest.raises(oanix.FsError, match="closed"):
        fs.write_bytes("/f", b"2")


# -- refused databases ------------------------------------------------------------------------


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(InvalidContent) as exc:
        SqliteFs(str(bad))
    assert exc.value.path == str(bad) and "not an SQLite database" in str(exc.value)
    assert bad.read_bytes().startswith(b"this is not")  # left alone


def test_another_programs_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(InvalidContent, match="not an oanix SqliteFs database") as exc:
        SqliteFs(str(path))
    assert exc.value.path == str(path)


def test_newer_schema_version(db: str) -> None:
    SqliteFs(db).close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {sqlite_mod.SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(InvalidContent, match="newer than this oanix reads") as exc:
        SqliteFs(db)
    assert exc.value.path == db


def test_missing_directory(tmp_path: Path) -> None:
    path = str(tmp_path / "no" / "such" / "dir" / "x.db")
    with pytest.raises(NotFound) as exc:
        SqliteFs(path)
    assert exc.value.path == path
    with pytest.raises(oanix.IsADirectory) as dir_exc:
        SqliteFs(str(tmp_path))
    assert dir_exc.value.path == str(tmp_path)


# -- processes --------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from oanix import SqliteFs
    fs = SqliteFs(sys.argv[1])
    fs.makedirs("/out", exist_ok=True)
    i = 0
    while True:
        data = (b"%d:" % i) * (1 + i % 300)
        with fs.open(f"/out/f{i}", "wb") as f:
            f.write(data[: len(data) // 2])
            f.write(data[len(data) // 2:])
        print(i, flush=True)
        i += 1
""")


def _child_data(i: int) -> bytes:
    return (b"%d:" % i) * (1 + i % 300)


def _python(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *args], env=env, text=True, cwd=ROOT,
                            **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("round_", range(3))
def test_survives_sigkill(db: str, round_: int) -> None:
    child = _python("-c", CHILD, db, stdout=subprocess.PIPE)
    assert child.stdout is not None
    done: list[int] = []
    deadline = time.monotonic() + 30
    want = 40 + 60 * round_  # kill at a different moment each round
    while len(done) < want and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        done.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert len(done) >= want, "the writer did not get going"
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    with SqliteFs(db) as fs:
        for i in done:
            assert fs.read_bytes(f"/out/f{i}") == _child_data(i), i
        for name in fs.listdir("/out"):  # anything beyond: complete or empty, never torn
            i = int(name[1:])
            assert fs.read_bytes(f"/out/{name}") in (b"", _child_data(i))


def test_reopen_in_a_new_process(db: str) -> None:
    with SqliteFs(db) as fs:
        fs.makedirs("/home/agent/src")
        fs.write_bytes("/home/agent/src/main.py", b"print('hi')\n")
        fs.write_bytes("/home/agent/notes.md", "naïve ✓".encode())
        fs.mkdir("/empty")
        expected = fs.tree()
        mtime = fs.stat("/home/agent/notes.md").mtime
    code = ("import sys; from oanix import SqliteFs\n"
            "fs = SqliteFs(sys.argv[1]); sys.stdout.write(fs.tree());"
            "print(repr(fs.stat('/home/agent/notes.md').mtime))")
    proc = _python("-c", code, db, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out == expected + repr(mtime) + "\n"


def test_readers_while_one_writes(db: str) -> None:
    """Threads (each with the writer's SqliteFs) and a process read while one thread
    rewrites files of 64 KiB: every read is one whole version, never a mix."""
    versions = 60
    blobs = [bytes([v]) * 65536 for v in range(versions)]
    fs = SqliteFs(db)
    try:
        for k in range(4):
            fs.write_bytes(f"/f{k}", blobs[0])
        stop = threading.Event()
        errs: list[str] = []
        reads = [0]

        def reader() -> None:
            while not stop.is_set():
                for k in range(4):
                    data = fs.read_bytes(f"/f{k}")
                    if data != bytes([data[0]]) * 65536:
                        errs.append(f"torn read of /f{k}")
                    with fs.open(f"/f{k}") as f:
                        if f.read() not in blobs:
                            errs.append(f"torn open of /f{k}")
                    reads[0] += 1

        code = textwrap.dedent("""
            import sys
            from oanix import SqliteFs
            fs = SqliteFs(sys.argv[1])
            n = bad = 0
            for _ in range(300):
                for k in range(4):
                    data = fs.read_bytes(f"/f{k}")
                    bad += data != bytes([data[0]]) * 65536
                    n += 1
            print(n, bad)
        """)
        proc = _python("-c", code, db, stdout=subprocess.PIPE)
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for v in range(1, versions):
            for k in range(4):
                with fs.open(f"/f{k}", "wb") as f:
                    f.write(blobs[v][:1000])
                    f.write(blobs[v][1000:])
        out, _ = proc.communicate(timeout=120)
        stop.set()
        for t in threads:
            t.join()
        assert not errs, errs[:5]
        assert reads[0] > 0
        assert proc.returncode == 0 and out.split() == ["1200", "0"]
        assert all(fs.read_bytes(f"/f{k}") == blobs[-1] for k in range(4))
    finally:
        fs.close()


def test_two_services_share_one_database(db: str) -> None:
    a, b = SqliteFs(db), SqliteFs(db)
    try:
        errs: list[BaseException] = []

        def writer(fs: SqliteFs, tag: str) -> None:
            try:
                for i in range(100):
                    fs.write_bytes(f"/{tag}{i}", tag.encode())
            except BaseException as e:  # reported below
                errs.append(e)

        threads = [threading.Thread(target=writer, args=(s, t)) for s, t in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errs
        assert len(a.listdir("/")) == len(b.listdir("/")) == 200
    finally:
        a.close()
        b.close()


# -- mounted, and a wasm guest over it ---------------------------------------------------------


def test_wasm_run_over_a_mounted_sqlitefs(runtime: WasiRuntime, wasm: Wasm, db: str) -> None:
    with SqliteFs(db) as fs:
        fs.makedirs("/src")
        fs.write_bytes("/src/in.txt", b"from sqlite")
        ns = Namespace()
        ns.mount("/data", fs)
        argv = ["read", "/data/src/in.txt", "--", "write", "/data/src/out.txt", "from wasm",
                "--", "mkdir", "/data/new", "--", "mv", "/data/src/in.txt", "/data/new/moved",
                "--", "ls", "/data/new"]
        res = runtime.run(wasm("fsops"), ns, RunConfig(argv=argv))
        assert res.ok, res.stderr
        assert res.stdout == b"from sqlitemoved\n"
        assert ns.read_bytes("/data/src/out.txt") == b"from wasm"
    with SqliteFs(db) as again:  # it is all in the database
        assert again.read_bytes("/src/out.txt") == b"from wasm"
        assert again.read_bytes("/new/moved") == b"from sqlite"
        assert not again.exists("/src/in.txt")
