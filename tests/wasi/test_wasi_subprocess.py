"""subprocess in the sandbox: CPython for WASI starts processes through /cap/proc.

Every test runs real sandboxed Python in a real ``OanixEnv``; the child processes are
real runs too (sandboxed interpreters and shell commands over the parent's files).
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
from collections.abc import Iterator

import pytest

from oanix import OanixEnv
from oanix.errors import InvalidContent, PermissionDenied
from oanix.services.proc import ProcFs, ProcRequest, ProcResult
from oanix.wasi import WasiRuntime


@pytest.fixture()
def env(rt: WasiRuntime) -> Iterator[OanixEnv]:
    with OanixEnv(runtime=rt) as e:
        yield e


def py(env: OanixEnv, code: str) -> tuple[int, str, str]:
    r = env.exec("python3 -c " + shlex.quote(code))
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def test_run_a_python_child_that_writes_a_file_the_parent_reads(env: OanixEnv) -> None:
    env.namespace.write_text("/workspace/child.py",
                             "import sys\nprint('args', sys.argv[1:])\n"
                             "open('made.txt', 'w').write('from the child')\n")
    status, out, err = py(env, (
        "import subprocess, sys\n"
        "r = subprocess.run([sys.executable, 'child.py', 'a b'], capture_output=True,"
        " text=True)\n"
        "print(r.returncode, repr(r.stdout), open('made.txt').read())\n"))
    assert status == 0, err
    assert out == "0 \"args ['a b']\\n\" from the child\n"
    # and the child's file is in the namespace once the parent's run is over
    assert env.namespace.read_text("/workspace/made.txt") == "from the child"


def test_a_child_sees_what_the_parent_wrote_during_its_run(env: OanixEnv) -> None:
    status, out, err = py(env, (
        "import subprocess\n"
        "open('p.txt', 'w').write('parent wrote this')\n"
        "print(subprocess.check_output(['cat', 'p.txt']))\n"
        "print(subprocess.check_output('wc -c < p.txt', shell=True, text=True))\n"))
    assert (status, out) == (0, "b'parent wrote this'\n17\n\n"), err


def test_check_and_called_process_error(env: OanixEnv) -> None:
    status, out, err = py(env, (
        "import subprocess\n"
        "try:\n"
        "    subprocess.run('echo oops >&2; exit 3', shell=True, check=True,"
        " capture_output=True)\n"
        "except subprocess.CalledProcessError as e:\n"
        "    print('cpe', e.returncode, e.stderr)\n"
        "print(subprocess.call(['false']), subprocess.call(['true']))\n"))
    assert (status, out) == (0, "cpe 3 b'oops\\n'\n1 0\n"), err


def test_popen_communicate_with_input_and_stderr_to_stdout(env: OanixEnv) -> None:
    status, out, err = py(env, (
        "import subprocess\n"
        "p = subprocess.Popen(['python3', '-c', 'import sys; "
        "print(sys.stdin.read().upper()); print(\"e\", file=sys.stderr)'],"
        " stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,"
        " text=True)\n"
        "print(repr(p.communicate('abc')), p.returncode, p.wait())\n"))
    assert (status, out) == (0, "('ABC\\ne\\n', None) 0 0\n"), err


def test_inherited_output_devnull_and_os_system(env: OanixEnv) -> None:
    status, out, err = py(env, (
        "import os, subprocess, sys\n"
        "print('before', flush=True)\n"
        "subprocess.run(['echo', 'inherited'])\n"
        "subprocess.run(['echo', 'dropped'], stdout=subprocess.DEVNULL)\n"
        "print(os.system('echo from system; exit 2') >> 8)\n"
        "print(os.popen('echo popen').read().strip())\n"))
    assert (status, out) == (0, "before\ninherited\nfrom system\n2\npopen\n"), err


def test_cwd_and_env_reach_the_child(env: OanixEnv) -> None:
    env.namespace.makedirs("/workspace/sub")
    status, out, err = py(env, (
        "import subprocess\n"
        "print(subprocess.run('pwd; echo $GREETING', shell=True, cwd='sub', text=True,"
        " capture_output=True, env={'GREETING': 'hello'}).stdout)\n"))
    assert (status, out) == (0, "/workspace/sub\nhello\n\n"), err


def test_a_child_past_its_timeout_is_stopped_and_raises_timeout_expired(
        env: OanixEnv) -> None:
    status, out, err = py(env, (
        "import subprocess, time\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    subprocess.run('echo started; sleep 30', shell=True, timeout=1,"
        " capture_output=True, text=True)\n"
        "except subprocess.TimeoutExpired as e:\n"
        "    print('expired', repr(e.output), time.monotonic() - t < 10)\n"))
    assert (status, out) == (0, "expired 'started\\n' True\n"), err


def test_what_cannot_be_emulated_says_so(env: OanixEnv) -> None:
    status, out, err = py(env, (
        "import subprocess\n"
        "try:\n"
        "    subprocess.Popen(['true'], preexec_fn=lambda: None)\n"
        "except OSError as e:\n"
        "    print('refused:', e)\n"))
    assert status == 0, err
    assert out.startswith("refused:") and "preexec_fn" in out


def test_processes_nest_to_a_bounded_depth(env: OanixEnv) -> None:
    # Each level starts the next; past the bound the start fails with a message instead
    # of recursing for ever.
    env.namespace.write_text("/workspace/nest.py", (
        "import subprocess, sys\n"
        "depth = int(sys.argv[1])\n"
        "r = subprocess.run([sys.executable, 'nest.py', str(depth + 1)], text=True,"
        " capture_output=True)\n"
        "print(depth, r.returncode, r.stderr.strip())\n"
        "print(r.stdout, end='')\n"))
    status, out, err = py(env, "import runpy, sys; sys.argv = ['nest.py', '0'];"
                               " runpy.run_path('nest.py')")
    assert status == 0, err
    assert out.splitlines() == [
        "0 0 ", "1 0 ", "2 0 ", "3 0 ", "4 126 python3: processes nest at most 4 deep"]


def test_without_the_service_subprocess_says_so(rt: WasiRuntime) -> None:
    from oanix import MemFs, Namespace
    from oanix.wasi import run_python

    ns = Namespace()
    ns.mount("/w", MemFs())
    res = run_python(code="import subprocess\ntry:\n    subprocess.run(['true'])\n"
                          "except OSError as e:\n    print(type(e).__name__, e)",
                     namespace=ns, cwd="/w", runtime=rt)
    assert res.stdout.decode().startswith("SandboxUnsupported"), res.stderr
    assert b"no process service at /cap/proc" in res.stdout


# -- the service itself ---------------------------------------------------------------------


def _service() -> tuple[ProcFs, list[ProcRequest]]:
    seen: list[ProcRequest] = []

    def runner(req: ProcRequest) -> ProcResult:
        seen.append(req)
        return ProcResult(7, b"out:" + req.stdin, b"")

    return ProcFs(runner), seen


def test_procfs_runs_a_request_and_keeps_its_result_until_removed() -> None:
    fs, seen = _service()
    fs.write_bytes("/request", json.dumps({"id": "r1", "argv": ["x", "y"], "cwd": "/w",
                                           "env": {"A": "1"}, "stdin_b64": "aGk=",
                                           "timeout": 2}).encode())
    assert seen == [ProcRequest("r1", ("x", "y"), None, "/w", {"A": "1"}, b"hi", 2.0)]
    doc = json.loads(fs.read_bytes("/done/r1.json"))
    assert (doc["status"], doc["stdout_b64"], doc["error"]) == (7, "b3V0Omhp", None)
    assert fs.listdir("/done") == ["r1.json"]
    fs.remove("/done/r1.json")
    assert fs.listdir("/done") == []


@pytest.mark.parametrize(("request_doc", "field"), [
    ({"id": "a"}, "argv"),
    ({"id": "a", "argv": [], }, "argv"),
    ({"id": "a", "argv": ["x"], "command": "x"}, "argv"),
    ({"id": "a", "argv": ["x"], "cwd": "rel"}, "cwd"),
    ({"id": "a", "argv": ["x"], "env": {"A": 1}}, "env"),
    ({"id": "a", "argv": ["x"], "timeout": -1}, "timeout"),
    ({"id": "a", "argv": ["x"], "stdin_b64": "***"}, "stdin_b64"),
])
def test_procfs_a_bad_request_with_an_id_ends_in_its_done_file(
        request_doc: dict[str, object], field: str) -> None:
    fs, seen = _service()
    fs.write_bytes("/request", json.dumps(request_doc).encode())
    doc = json.loads(fs.read_bytes("/done/a.json"))
    assert seen == [] and doc["status"] == 127 and repr(field) in doc["error"]


@pytest.mark.parametrize("data", [b"not json", b"[1]", b'{"argv": ["x"]}',
                                  b'{"id": "../x", "argv": ["x"]}', b"[" * 100_000])
def test_procfs_a_request_without_a_usable_id_is_refused(data: bytes) -> None:
    fs, seen = _service()
    with pytest.raises(InvalidContent):
        fs.write_bytes("/request", data)
    assert seen == [] and fs.listdir("/done") == []


def test_procfs_only_the_service_writes_results() -> None:
    fs, _ = _service()
    with pytest.raises(PermissionDenied):
        fs.write_bytes("/done/forged.json", b"{}")
    with pytest.raises(PermissionDenied):
        fs.read_bytes("/request")


def _take_every_inotify_instance() -> list[int]:
    """Every inotify instance this user may still create (the per-user limit, 128 by
    default): the real failure a busy machine meets."""
    libc = ctypes.CDLL(None, use_errno=True)
    fds: list[int] = []
    while len(fds) < 1 << 16:
        fd = libc.inotify_init1(os.O_CLOEXEC)
        if fd < 0:
            return fds
        fds.append(fd)
    for fd in fds:
        os.close(fd)
    pytest.skip("the inotify instance limit is too high to reach")


def test_without_inotify_a_child_process_fails_at_once_instead_of_waiting(
        rt: WasiRuntime) -> None:
    # /cap/proc answers only while the guest runs (through inotify); where no instance
    # can be had, the guest's view leaves it out, so subprocess fails with a clear
    # error at once rather than waiting, unbounded, for an answer that never comes.
    fds = _take_every_inotify_instance()
    try:
        with OanixEnv(runtime=rt) as env:
            r = env.exec("python3 -c 'import subprocess; subprocess.run([\"echo\", \"hi\"])'",
                         timeout=60)
    finally:
        for fd in fds:
            os.close(fd)
    assert not r.timed_out
    assert r.exit_code != 0 and "cannot start processes" in r.stderr_text, r.stderr_text
