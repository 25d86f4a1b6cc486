"""Random operation sequences on oanix services, compared with a real directory.

Each rule runs one operation on the service under test and the same operation on a
temporary directory through the os module, and compares the outcome: the value, or the
errno of the error. A read-only prefix models a read-only union member: every write
below it must fail with EROFS, while reads still match the directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from oanix import FileService, MemFs, Namespace, SqliteFs, paths

NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
DATA = st.binary(max_size=8)

Outcome = tuple[str, Any]


def outcome(fn: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno or 0, e.errno))


class FsVersusDirectory(RuleBasedStateMachine):
    """Subclasses set up ``self.fs`` and may set ``self.readonly_prefix``."""

    readonly_prefix: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="oanix-model-")
        self.fs = self.make_service()

    def make_service(self) -> FileService:
        raise NotImplementedError

    def teardown(self) -> None:
        shutil.rmtree(self.dir)

    def host(self, path: str) -> str:
        return self.dir + path

    def _readonly(self, *ps: str) -> bool:
        pre = self.readonly_prefix
        return pre is not None and any(paths.is_within(p, pre) for p in ps)

    def check(self, ours: Callable[[], Any], theirs: Callable[[], Any], *written: str) -> None:
        if self._readonly(*written):
            assert outcome(ours) == ("err", "EROFS")
            return
        a, b = outcome(ours), outcome(theirs)
        assert a == b, (a, b)

    @rule(path=PATHS, data=DATA)
    def write(self, path: str, data: bytes) -> None:
        def theirs() -> None:
            with open(self.host(path), "wb") as f:
                f.write(data)

        self.check(lambda: self.fs.write_bytes(path, data), theirs, path)

    @rule(path=PATHS, data=DATA)
    def append(self, path: str, data: bytes) -> None:
        def ours() -> None:
            with self.fs.open(path, "ab") as f:
                f.write(data)

        def theirs() -> None:
            with open(self.host(path), "ab") as f:
                f.write(data)

        self.check(ours, theirs, path)

    @rule(path=PATHS, data=DATA, offset=st.integers(0, 10))
    def overwrite_at(self, path: str, data: bytes, offset: int) -> None:
        def ours() -> int:
            with self.fs.open(path, "r+b") as f:
                f.seek(offset)
                f.write(data)
                return f.tell()

        def theirs() -> int:
            with open(self.host(path), "r+b") as f:
                f.seek(offset)
                f.write(data)
                return f.tell()

        self.check(ours, theirs, path)

    @rule(path=PATHS)
    def read(self, path: str) -> None:
        def theirs() -> bytes:
            with open(self.host(path), "rb") as f:
                return f.read()

        self.check(lambda: self.fs.read_bytes(path), theirs)

    @rule(path=PATHS)
    def mkdir(self, path: str) -> None:
        self.check(lambda: self.fs.mkdir(path), lambda: os.mkdir(self.host(path)), path)

    @rule(path=PATHS)
    def remove(self, path: str) -> None:
        self.check(lambda: self.fs.remove(path), lambda: os.unlink(self.host(path)), path)

    @rule(path=PATHS)
    def rmdir(self, path: str) -> None:
        self.check(lambda: self.fs.rmdir(path), lambda: os.rmdir(self.host(path)), path)

    @rule(src=PATHS, dst=PATHS)
    def rename(self, src: str, dst: str) -> None:
        self.check(lambda: self.fs.rename(src, dst),
                   lambda: os.rename(self.host(src), self.host(dst)), src, dst)

    @rule(path=PATHS)
    def listdir(self, path: str) -> None:
        self.check(lambda: sorted(self.fs.listdir(path)),
                   lambda: sorted(os.listdir(self.host(path))))

    @rule(path=PATHS)
    def stat(self, path: str) -> None:
        def ours() -> tuple[bool, int | None]:
            s = self.fs.stat(path)
            return (s.is_dir, None if s.is_dir else s.size)

        def theirs() -> tuple[bool, int | None]:
            s = os.stat(self.host(path))
            is_dir = os.path.isdir(self.host(path))
            return (is_dir, None if is_dir else s.st_size)

        self.check(ours, theirs)

    @invariant()
    def same_tree(self) -> None:
        ours = {(d, tuple(sorted(ds)), tuple(sorted(fs))) for d, ds, fs in self.fs.walk("/")}
        theirs = set()
        for d, ds, fs in os.walk(self.dir):
            rel = "/" + os.path.relpath(d, self.dir).lstrip(".")
            theirs.add((paths.normalize(rel), tuple(sorted(ds)), tuple(sorted(fs))))
        assert ours == theirs


class MemFsMachine(FsVersusDirectory):
    def make_service(self) -> FileService:
        return MemFs()


class SqliteFsMachine(FsVersusDirectory):
    """A SqliteFs in a new database; every step also reads the tree back through a
    second SqliteFs on the same file (what another process would see)."""

    def make_service(self) -> FileService:
        self.db = os.path.join(self.dir + "-db", "fs.db")
        os.makedirs(os.path.dirname(self.db))
        self.sqlite = SqliteFs(self.db)
        self.other = SqliteFs(self.db)
        return self.sqlite

    def teardown(self) -> None:
        self.sqlite.close()
        self.other.close()
        shutil.rmtree(os.path.dirname(self.db))
        super().teardown()

    @invariant()
    def same_tree(self) -> None:
        super().same_tree()
        assert self.other.tree() == self.fs.tree()


class NamespaceMachine(FsVersusDirectory):
    """A namespace over a MemFs, itself mounted inside another namespace."""

    def make_service(self) -> FileService:
        inner = Namespace()
        inner.mount("/", MemFs())
        inner.mount("/unrelated/mount", MemFs())
        outer = Namespace()
        outer.mount("/", inner)
        os.makedirs(self.host("/unrelated/mount"))
        return outer

    @invariant()
    def same_tree(self) -> None:
        super().same_tree()


class UnionMachine(FsVersusDirectory):
    """A union: a writable create member before a read-only member that holds ``/c``."""

    readonly_prefix = "/c"

    def make_service(self) -> FileService:
        lower = MemFs()
        lower.makedirs("/c/a")
        lower.write_bytes("/c/b", b"lower")
        lower.write_bytes("/c/a/c", b"deep")
        os.makedirs(self.host("/c/a"))
        with open(self.host("/c/b"), "wb") as f:
            f.write(b"lower")
        with open(self.host("/c/a/c"), "wb") as f:
            f.write(b"deep")
        ns = Namespace()
        ns.mount("/", MemFs(), create=True)
        ns.mount("/", lower, "after", readonly=True)
        return ns


_settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestMemFsModel = MemFsMachine.TestCase
TestMemFsModel.settings = _settings
TestSqliteFsModel = SqliteFsMachine.TestCase
TestSqliteFsModel.settings = _settings
TestNamespaceModel = NamespaceMachine.TestCase
TestNamespaceModel.settings = _settings
TestUnionModel = UnionMachine.TestCase
TestUnionModel.settings = _settings
