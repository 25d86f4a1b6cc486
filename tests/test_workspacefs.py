"""WorkspaceFs: conformance, confinement to the root, special files, atomic writes.

Every confinement test runs in a ``box``: the workspace root sits next to a directory
``outside`` holding a secret and a sentinel file; the fixture snapshots everything outside
the root before the test and asserts at teardown that nothing there changed or appeared.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import io
import os
import resource
import socket
import stat
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from oanix import errors
from oanix.fs.workspace import WorkspaceFs
from oanix.service import FileService
from oanix.testing import FileServiceTests, ReadOnlyServiceTests

SECRET = b"top secret: outside the workspace"
MiB = 1 << 20
OPEN_MODES = ("rb", "r+b", "wb", "w+b", "ab", "a+b", "xb", "x+b")
WRITE_MODES = ("r+b", "wb", "w+b", "ab", "a+b", "xb", "x+b")
JOIN_TIMEOUT = 60.0  # generous: only a hang (a blocking FIFO open) ever reaches it


# -- conformance ------------------------------------------------------------------------


class TestWorkspaceFs(FileServiceTests):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> Iterator[None]:
        self.tmp = tmp_path
        self.opened: list[WorkspaceFs] = []
        yield
        for fs in self.opened:
            fs.close()

    def make_service(self) -> WorkspaceFs:
        fs = WorkspaceFs(tempfile.mkdtemp(dir=self.tmp))
        self.opened.append(fs)
        return fs


class TestReadOnlyWorkspaceFs(ReadOnlyServiceTests):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> Iterator[None]:
        self.tmp = tmp_path
        self.opened: list[WorkspaceFs] = []
        yield
        for fs in self.opened:
            fs.close()

    def make_service(self, files: dict[str, bytes]) -> WorkspaceFs:
        root = Path(tempfile.mkdtemp(dir=self.tmp))
        for path, data in files.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        fs = WorkspaceFs(root, readonly=True)
        self.opened.append(fs)
        return fs


# -- the box ------------------------------------------------------------------------------


@dataclasses.dataclass
class Box:
    fs: WorkspaceFs
    base: Path
    root: Path
    outside: Path
    secret: Path


def _snapshot(base: Path, skip: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Everything below ``base`` except ``skip``, without following symlinks."""
    out: dict[str, tuple[str, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            p = here / name
            key = str(p.relative_to(base))
            if p.is_symlink():
                out[key] = ("link", os.readlink(p))
            elif p.is_dir():
                out[key] = ("dir", None)
            elif p.is_file():
                out[key] = ("file", p.read_bytes())
            else:
                out[key] = ("special", None)
    return out


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    root = tmp_path / "ws"
    root.mkdir()
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    (tmp_path / "sentinel.txt").write_bytes(b"sentinel")
    before = _snapshot(tmp_path, root)
    fs = WorkspaceFs(root)
    yield Box(fs, tmp_path, root, outside, secret)
    fs.close()
    assert _snapshot(tmp_path, root) == before, "something outside the workspace changed"


def _refused(fn: Callable[[], object], message: str = "symlink") -> errors.PermissionDenied:
    """Call ``fn``, which must raise PermissionDenied with ``message``; close any file."""
    with pytest.raises(errors.PermissionDenied) as exc:
        result = fn()
        if isinstance(result, io.IOBase):
            result.close()
    assert exc.value.strerror == message
    return exc.value


def _all_refused(fs: FileService, path: str, message: str) -> None:
    """Every way of reaching file ``path`` is refused with ``message``, naming ``path``."""
    for mode in OPEN_MODES:
        err = _refused(lambda m=mode: fs.open(path, m), message)  # type: ignore[misc]
        assert err.path == path
    _refused(lambda: fs.read_bytes(path), message)
    _refused(lambda: fs.write_bytes(path, b"pwned"), message)
    _refused(lambda: fs.stat(path), message)


# -- path escapes ---------------------------------------------------------------------------


def test_dotdot_never_leaves_the_root(box: Box) -> None:
    fs = box.fs
    fs.write_bytes("../x", b"1")
    fs.write_bytes("/../../y", b"2")
    fs.write_bytes("a/../../z", b"3")
    assert sorted(os.listdir(box.root)) == ["x", "y", "z"]
    for path in ("/../../etc/passwd", "../outside/secret.txt", "/../sentinel.txt",
                 "a/../../outside/secret.txt"):
        with pytest.raises(errors.NotFound):
            fs.read_bytes(path)
    with pytest.raises(errors.NotFound):
        fs.rename("../outside/secret.txt", "/stolen")


def test_absolute_host_paths_are_inside_the_root(box: Box) -> None:
    fs = box.fs
    host = str(box.secret)
    with pytest.raises(errors.NotFound) as exc:
        fs.read_bytes(host)
    assert exc.value.path == host
    for call in (lambda: fs.stat(host), lambda: fs.stat(str(box.base)),
                 lambda: fs.listdir(str(box.outside)), lambda: fs.remove(host),
                 lambda: fs.write_bytes(host, b"pwned"), lambda: fs.open(host, "ab"),
                 lambda: fs.rename(host, "/stolen")):
        with pytest.raises(errors.NotFound):
            call()
    fs.makedirs(str(box.outside))
    fs.write_bytes(host, b"inside")
    assert (box.root / host.lstrip("/")).read_bytes() == b"inside"


def test_nul_bytes_and_bad_names(box: Box) -> None:
    fs = box.fs
    for call in (lambda: fs.read_bytes("/a\x00b"), lambda: fs.write_bytes("/a\x00", b""),
                 lambda: fs.mkdir("/\x00"), lambda: fs.open("/x\x00/../y", "wb"),
                 lambda: fs.rename("/a", "/b\x00"), lambda: fs.stat("/" + "n" * 300)):
        with pytest.raises(errors.InvalidPath):
            call()
    # The primitives check their input again, whoever calls them.
    for bad in ("/a\x00b", "/a/../b", "/a/./b", "relative", "/a//b"):
        with pytest.raises(errors.InvalidPath):
            fs._stat(bad)
        with pytest.raises(errors.InvalidPath):
            fs._write_bytes(bad, b"x")
    assert os.listdir(box.root) == []


# -- symlinks ---------------------------------------------------------------------------


def test_symlink_as_last_component(box: Box) -> None:
    fs = box.fs
    (box.root / "link").symlink_to(box.secret)
    (box.root / "dangling").symlink_to(box.outside / "new.txt")
    _all_refused(fs, "/link", "symlink")
    _all_refused(fs, "/dangling", "symlink")  # never creates the target outside
    # Listed, shown as an empty read-only file, never followed; removing drops the link.
    assert fs.listdir("/") == ["dangling", "link"]
    entry = fs.scandir("/")[1]
    assert (entry.name, entry.size, entry.is_dir, entry.readonly) == ("link", 0, False, True)
    fs.remove("/link")
    fs.rename("/dangling", "/renamed")  # moves the link itself
    assert fs.listdir("/") == ["renamed"]
    assert os.readlink(box.root / "renamed") == str(box.outside / "new.txt")


def test_symlink_as_parent_component(box: Box) -> None:
    fs = box.fs
    (box.root / "ld").symlink_to(box.outside)
    fs.makedirs("/d/e")
    (box.root / "d" / "e" / "deep").symlink_to(box.outside)
    fs.write_bytes("/mine", b"mine")
    for p in ("/ld", "/d/e/deep"):
        calls: list[Callable[[], object]] = [
            lambda p=p: fs.read_bytes(f"{p}/secret.txt"),  # type: ignore[misc]
            lambda p=p: fs.stat(f"{p}/secret.txt"),  # type: ignore[misc]
            lambda p=p: fs.open(f"{p}/secret.txt", "r+b"),  # type: ignore[misc]
            lambda p=p: fs.open(f"{p}/new.txt", "wb"),  # type: ignore[misc]
            lambda p=p: fs.write_bytes(f"{p}/new.txt", b"x"),  # type: ignore[misc]
            lambda p=p: fs.write_bytes(f"{p}/dir/new.txt", b"x"),  # type: ignore[misc]
            lambda p=p: fs.mkdir(f"{p}/sub"),  # type: ignore[misc]
            lambda p=p: fs.makedirs(f"{p}/a/b"),  # type: ignore[misc]
            lambda p=p: fs.remove(f"{p}/secret.txt"),  # type: ignore[misc]
            lambda p=p: fs.rmdir(f"{p}/dir"),  # type: ignore[misc]
            lambda p=p: fs.rename(f"{p}/secret.txt", "/stolen"),  # type: ignore[misc]
            lambda p=p: fs.rename("/mine", f"{p}/mine"),  # type: ignore[misc]
            lambda p=p: fs.listdir(p),  # type: ignore[misc]
            lambda p=p: fs.scandir(p),  # type: ignore[misc]
            lambda p=p: fs.copy("/mine", f"{p}/copy"),  # type: ignore[misc]
        ]
        for call in calls:
            err = _refused(call)
            assert err.path is not None and err.path.startswith(p)
    # walk lists the links as files and does not descend; rmtree removes only the links.
    walked = {d: (sorted(ds), sorted(fs_)) for d, ds, fs_ in fs.walk("/")}
    assert walked == {"/": (["d"], ["ld", "mine"]), "/d": (["e"], []), "/d/e": ([], ["deep"])}
    fs.rmtree("/d")
    fs.remove("/ld")
    assert fs.listdir("/") == ["mine"]


def test_symlink_inside_the_root_is_not_followed_either(box: Box) -> None:
    fs = box.fs
    fs.makedirs("/d")
    fs.write_bytes("/d/f", b"inside")
    (box.root / "dlink").symlink_to("d")
    (box.root / "flink").symlink_to("d/f")
    _all_refused(fs, "/flink", "symlink")
    _all_refused(fs, "/dlink/f", "symlink")
    _refused(lambda: fs.listdir("/dlink"))
    _refused(lambda: fs.stat("/dlink"))
    assert fs.read_bytes("/d/f") == b"inside"


def test_symlink_swapped_in_between_calls(box: Box) -> None:
    fs = box.fs
    fs.makedirs("/d")
    fs.write_bytes("/d/secret.txt", b"inside")
    with fs.open("/d/secret.txt", "r+b") as f:
        os.rename(box.root / "d", box.root / "moved")
        (box.root / "d").symlink_to(box.outside)
        # The open file is the inside file: writes through it stay inside.
        f.write(b"handle")
        _all_refused(fs, "/d/secret.txt", "symlink")
        _refused(lambda: fs.listdir("/d"))
    assert (box.root / "moved" / "secret.txt").read_bytes() == b"handle"


def test_root_is_pinned_by_its_descriptor(box: Box) -> None:
    fs = box.fs
    fs.write_bytes("/f", b"inside")
    aside = box.base / "ws-aside"
    os.rename(box.root, aside)
    box.root.symlink_to(box.outside)  # the old root path now leads outside
    try:
        assert fs.read_bytes("/f") == b"inside"
        assert fs.listdir("/") == ["f"]
        fs.write_bytes("/new", b"x")
        with pytest.raises(errors.NotFound):
            fs.read_bytes("/secret.txt")
        assert sorted(os.listdir(aside)) == ["f", "new"]
    finally:
        box.root.unlink()
        os.rename(aside, box.root)


def test_hardlinks_are_out_of_scope_but_write_bytes_does_not_write_through(box: Box) -> None:
    fs = box.fs
    os.link(box.secret, box.root / "hard")
    # Documented: a hardlink is the same file (so reading it reads it); write_bytes
    # replaces the name with a new file and leaves the linked file alone.
    assert fs.read_bytes("/hard") == SECRET
    fs.write_bytes("/hard", b"replaced")
    assert fs.read_bytes("/hard") == b"replaced"


# -- races ----------------------------------------------------------------------------


def _run_race(swap: Callable[[], None], work: Callable[[int], None], rounds: int = 500) -> None:
    """Run ``swap`` in a loop in one thread while another calls ``work(i)`` ``rounds``
    times; re-raise the first failure of either."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def swapper() -> None:
        try:
            while not stop.is_set():
                swap()
        except BaseException as e:  # reported below
            failures.append(e)

    def worker() -> None:
        try:
            for i in range(rounds):
                work(i)
        except BaseException as e:  # reported below
            failures.append(e)
        finally:
            stop.set()

    threads = [threading.Thread(target=swapper, daemon=True),
               threading.Thread(target=worker, daemon=True)]
    # Switch threads often, so that the swapper interleaves with single operations
    # instead of waiting for the worker to give up the GIL.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT)
    finally:
        stop.set()
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads), "an operation hung"
    if failures:
        raise failures[0]


_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _exchange(a: Path, b: Path) -> None:
    """Swap the names ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    if _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), _RENAME_EXCHANGE):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _check(ok: bool) -> None:
    assert ok


# What an operation may raise when its path changes under it: never anything else.
RACE_ERRORS = (errors.NotFound, errors.PermissionDenied, errors.NotADirectory,
               errors.AlreadyExists, errors.IsADirectory, errors.NotEmpty)


def test_race_directory_swapped_with_symlink(box: Box) -> None:
    fs = box.fs
    fs.makedirs("/d")
    fs.write_bytes("/d/secret.txt", b"inside")
    link = box.root / "link"
    link.symlink_to(box.outside)

    def swap() -> None:  # "/d" is always the real directory or the link, never missing
        _exchange(box.root / "d", link)

    def rw(f: BinaryIO) -> None:
        with f:
            assert f.read() != SECRET
            f.write(b"!")

    def work(i: int) -> None:
        ops: list[Callable[[], object]] = [
            lambda: fs.write_bytes("/d/secret.txt", b"written"),
            lambda: fs.write_bytes(f"/d/new{i % 7}", b"new"),
            lambda: fs.mkdir(f"/d/sub{i}"),
            lambda: fs.rmdir(f"/d/sub{i}"),
            lambda: fs.rename(f"/d/new{i % 7}", f"/d/old{i % 7}"),
            lambda: fs.remove(f"/d/old{i % 7}"),
            lambda: rw(fs.open("/d/secret.txt", "r+b")),
            lambda: _check(fs.read_bytes("/d/secret.txt") != SECRET),
            lambda: _check("dir" not in fs.listdir("/d")),
        ]
        for op in ops:
            with contextlib.suppress(*RACE_ERRORS):
                op()

    _run_race(swap, work)


def test_race_file_swapped_with_symlink(box: Box) -> None:
    fs = box.fs
    fs.write_bytes("/f", b"inside")
    link, plain = box.root / ".link", box.root / ".plain"

    def swap() -> None:
        link.symlink_to(box.secret)
        os.replace(link, box.root / "f")
        plain.write_bytes(b"inside")
        os.replace(plain, box.root / "f")

    def use(f: BinaryIO) -> None:
        with f:
            if f.readable():
                assert f.read() != SECRET
            if f.writable():
                f.write(b"pwned")

    def work(i: int) -> None:
        ops: list[Callable[[], object]] = [
            lambda: _check(fs.read_bytes("/f") != SECRET),
            lambda: use(fs.open("/f", "rb")),
            lambda: use(fs.open("/f", ("r+b", "ab", "wb")[i % 3])),
            lambda: fs.write_bytes("/f", b"written"),
            lambda: _check(fs.stat("/f").size != len(SECRET)),
        ]
        for op in ops:
            with contextlib.suppress(*RACE_ERRORS):
                op()

    _run_race(swap, work)


def test_race_file_swapped_with_fifo_never_blocks(box: Box) -> None:
    fs = box.fs
    fs.write_bytes("/p", b"plain")
    fifo, plain = box.root / ".fifo", box.root / ".plain"

    def swap() -> None:
        os.mkfifo(fifo)
        os.replace(fifo, box.root / "p")
        plain.write_bytes(b"plain")
        os.replace(plain, box.root / "p")

    def work(i: int) -> None:
        for mode in ("rb", "r+b", "ab", "wb"):
            with contextlib.suppress(*RACE_ERRORS), fs.open("/p", mode) as f:
                assert stat.S_ISREG(os.fstat(f.fileno()).st_mode)
        with contextlib.suppress(*RACE_ERRORS):
            fs.read_bytes("/p")

    _run_race(swap, work)


# -- special files ----------------------------------------------------------------------


def _refused_without_blocking(fs: FileService, path: str) -> None:
    """Every access to special file ``path`` is refused, in a thread that must not hang."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            _all_refused(fs, path, "special file")
        except BaseException as e:  # reported below
            failures.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(JOIN_TIMEOUT)
    assert not t.is_alive(), f"opening {path} blocked"
    if failures:
        raise failures[0]


@pytest.mark.timeout(120)
def test_fifo_is_refused_without_blocking(box: Box) -> None:
    os.mkfifo(box.root / "fifo")
    _refused_without_blocking(box.fs, "/fifo")
    assert box.fs.listdir("/") == ["fifo"]
    assert box.fs.scandir("/")[0].readonly
    box.fs.remove("/fifo")
    assert box.fs.listdir("/") == []


def test_device_node_is_refused(box: Box) -> None:
    try:
        os.mknod(box.root / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except OSError as e:
        pytest.skip(f"cannot create a device node here: {e}")
    _refused_without_blocking(box.fs, "/zero")
    box.fs.remove("/zero")


def test_unix_socket_is_refused(box: Box) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(box.root / "sock"))
        _refused_without_blocking(box.fs, "/sock")
    box.fs.remove("/sock")


def test_open_step_refuses_what_is_swapped_in_after_the_check(box: Box) -> None:
    """Opening checks the name with lstat first; the open itself must refuse too, as when
    the name is swapped between the two. Calling the open step directly makes that race
    deterministic."""
    fs = box.fs
    (box.root / "link").symlink_to(box.secret)
    (box.root / "dangling").symlink_to(box.outside / "new.txt")
    os.mkfifo(box.root / "fifo")
    fs.mkdir("/dir")
    flag_sets = (os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 os.O_RDWR | os.O_CREAT | os.O_APPEND)
    expected: dict[str, tuple[type[errors.FsError], str]] = {
        "link": (errors.PermissionDenied, "symlink"),
        "dangling": (errors.PermissionDenied, "symlink"),
        "fifo": (errors.PermissionDenied, "special file"),
        "dir": (errors.IsADirectory, "is a directory"),
    }
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with fs._parent("/x") as (dir_fd, _):
                for name, (cls, message) in expected.items():
                    for flags in flag_sets:
                        with pytest.raises(cls) as exc:
                            os.close(fs._open_fd(dir_fd, name, f"/{name}", flags))
                        assert exc.value.strerror == message
                        assert exc.value.path == f"/{name}"
        except BaseException as e:  # reported below
            failures.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(JOIN_TIMEOUT)
    assert not t.is_alive(), "the open step blocked on a FIFO"
    assert not failures, failures


# -- errors ---------------------------------------------------------------------------


def test_errors_never_show_the_host_path(box: Box) -> None:
    fs = box.fs
    fs.makedirs("/d/e")
    fs.write_bytes("/f", b"x")
    (box.root / "link").symlink_to(box.secret)
    os.mkfifo(box.root / "fifo")
    calls: list[Callable[[], object]] = [
        lambda: fs.stat("/missing/x"), lambda: fs.read_bytes("/d"),
        lambda: fs.listdir("/f"), lambda: fs.mkdir("/d"), lambda: fs.rmdir("/d"),
        lambda: fs.rmdir("/"), lambda: fs.remove("/d"), lambda: fs.open("/f", "xb"),
        lambda: fs.write_bytes("/f/g", b""), lambda: fs.rename("/d", "/d/e/x"),
        lambda: fs.rename("/f", "/d"), lambda: fs.rename("/d", "/f"),
        lambda: fs.rename("/missing", "/y"), lambda: fs.read_bytes("/link"),
        lambda: fs.read_bytes("/link/x"), lambda: fs.open("/fifo", "rb"),
        lambda: fs.stat("/" + "n" * 300), lambda: fs.read_bytes("/a\x00"),
    ]
    hosts = {str(box.root), box.fs.host_path, str(box.base)}
    seen: set[type[BaseException]] = set()
    for call in calls:
        with pytest.raises(errors.FsError) as exc:
            call()
        e = exc.value
        seen.add(type(e))
        text = str(e) + repr(e) + "".join(traceback.format_exception(e))
        assert not any(h in text for h in hosts), text
    assert len(seen) >= 7
    with fs.open("/f", "rb") as f:
        assert f.name == "/f"
        assert not any(h in repr(f) for h in hosts)
    assert not any(h in repr(fs) for h in hosts)


def test_root_must_be_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound):
        WorkspaceFs(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(errors.NotADirectory):
        WorkspaceFs(tmp_path / "file")


def test_close_and_context_manager(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path)
    with WorkspaceFs(tmp_path / "link") as fs:
        assert fs.host_path == os.path.realpath(tmp_path)
        fs.write_bytes("/f", b"x")
        assert "writable" in repr(fs)
    assert fs.closed and "closed" in repr(fs)
    with pytest.raises(errors.BadFileMode):
        fs.read_bytes("/f")
    fs.close()  # idempotent


# -- files ----------------------------------------------------------------------------


def test_open_files_are_host_files(box: Box) -> None:
    fs = box.fs
    with fs.open("/f", "w+b") as f:
        assert f.name == "/f" and f.mode == "rb+"
        f.write(b"abc")
        f.flush()
        assert (box.root / "f").read_bytes() == b"abc"  # straight to the file
        assert fs.read_bytes("/f") == b"abc"
        with pytest.raises(errors.InvalidArgument):
            f.seek(-1)
        with pytest.raises(errors.InvalidArgument):
            f.truncate(-1)
    with fs.open("/f", "ab") as f, pytest.raises(errors.BadFileMode) as exc:
        f.read()
    assert exc.value.path == "/f"
    with fs.open("/f", "rb") as f, pytest.raises(errors.BadFileMode):
        f.truncate(0)


def test_write_bytes_keeps_the_file_mode(box: Box) -> None:
    box.fs.write_bytes("/f", b"old")
    os.chmod(box.root / "f", 0o600)
    box.fs.write_bytes("/f", b"new")
    assert stat.S_IMODE(os.stat(box.root / "f").st_mode) == 0o600


def test_write_bytes_is_atomic_for_a_concurrent_reader(box: Box) -> None:
    fs = box.fs
    contents = (b"A" * MiB, b"B" * MiB)
    fs.write_bytes("/big", contents[0])
    done = threading.Event()
    failures: list[BaseException] = []
    reads = 0

    def writer() -> None:
        try:
            for i in range(60):
                fs.write_bytes("/big", contents[i % 2])
        except BaseException as e:  # reported below
            failures.append(e)
        finally:
            done.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while not done.is_set() or reads == 0:
        data = fs.read_bytes("/big")
        assert data in contents, f"torn read: {len(data)} bytes"
        reads += 1
    t.join(JOIN_TIMEOUT)
    assert not failures, failures
    assert fs.listdir("/") == ["big"]  # no temporary file left


def test_failed_write_leaves_no_temporary_file(box: Box) -> None:
    fs = box.fs
    fs.mkdir("/t")
    with pytest.raises(errors.IsADirectory):
        fs.write_bytes("/t", b"x")
    fs.write_bytes("/keep", b"old")
    # A real failure in the middle of writing: the file size limit (SIGXFSZ is ignored
    # by Python, so the write fails with EFBIG).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(errors.NoSpace) as exc:
            fs.write_bytes("/keep", b"x" * 100_000)
        with pytest.raises(errors.NoSpace):
            fs.write_bytes("/new", b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert exc.value.path == "/keep" and exc.value.errno == errno.ENOSPC
    assert fs.listdir("/") == ["keep", "t"]
    assert fs.read_bytes("/keep") == b"old"


# -- read-only ------------------------------------------------------------------------


def test_readonly_refuses_every_write_and_leaves_the_disk_alone(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "f").write_bytes(b"data")
    (tmp_path / "d" / "g").write_bytes(b"more")
    before = _snapshot(tmp_path, tmp_path / "nothing")
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    with WorkspaceFs(tmp_path, readonly=True) as fs:
        calls: list[Callable[[], object]] = [
            lambda: fs.write_bytes("/f", b"x"), lambda: fs.write_bytes("/new", b"x"),
            lambda: fs.write_bytes("/d", b"x"), lambda: fs.mkdir("/x"),
            lambda: fs.makedirs("/x/y"), lambda: fs.remove("/f"),
            lambda: fs.rmdir("/d/e"), lambda: fs.rename("/f", "/g"),
            lambda: fs.rmtree("/d"), lambda: fs.copy("/f", "/copy"),
            lambda: fs.move("/f", "/moved"), lambda: fs.write_text("/t", "x"),
        ]
        calls += [lambda m=m, p=p: fs.open(p, m)  # type: ignore[misc]
                  for m in WRITE_MODES for p in ("/f", "/new")]
        for call in calls:
            with pytest.raises(errors.ReadOnly):
                call()
        assert fs.stat("/f").readonly and fs.read_bytes("/f") == b"data"
        with fs.open("/f", "rb") as f:
            assert fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
            with pytest.raises(errors.BadFileMode):
                f.write(b"x")
    assert _snapshot(tmp_path, tmp_path / "nothing") == before
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == mtimes
