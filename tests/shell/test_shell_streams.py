"""Pipelines stream: concurrent stages, bounded pipes with back-pressure, SIGPIPE, exact
data through them, output caps that drop but never alter; programs run where the shell is.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from oanix import MemFs, Namespace
from oanix.env import Limits, OanixEnv
from oanix.errors import PythonUnavailable
from oanix.shell import Shell
from oanix.shell.context import Pipe, PipeClosed, PipeInput

FIXTURES = Path(__file__).resolve().parents[2] / "wasi_fixtures"


@pytest.fixture
def sh() -> Shell:
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.makedirs("/work")
    return Shell(ns, cwd="/work")


def seq_bytes(a: int, b: int) -> bytes:
    return "".join(f"{i}\n" for i in range(a, b + 1)).encode()


# -- the pipe ------------------------------------------------------------------------------


def test_pipe_write_blocks_while_full_and_resumes_when_read() -> None:
    pipe = Pipe(capacity=1024)
    wrote: list[int] = []

    def writer() -> None:
        for _ in range(8):
            pipe.write(b"x" * 512)
            wrote.append(1)
        pipe.close_write()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(0.3)
    assert t.is_alive() and len(wrote) == 2  # blocked: the buffer holds its capacity
    got = PipeInput(pipe).read_all()
    t.join(5)
    assert got == b"x" * 4096 and not t.is_alive()


def test_pipe_write_after_the_reader_closed_is_a_broken_pipe() -> None:
    pipe = Pipe(capacity=16)
    pipe.write(b"a" * 16)
    blocked: list[BaseException] = []

    def writer() -> None:
        try:
            pipe.write(b"more")
        except PipeClosed as e:
            blocked.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(0.1)
    PipeInput(pipe).close()  # wakes the blocked writer
    t.join(5)
    assert blocked and not t.is_alive()
    with pytest.raises(PipeClosed):
        pipe.write(b"x")


# -- pipelines -----------------------------------------------------------------------------


def test_big_pipelines_are_exact(sh: Shell) -> None:
    res = sh.exec("seq 1 3000000 | wc -l")
    assert res.stdout == b"3000000\n" and res.exit_code == 0
    res = sh.exec("seq 1 300000 | cat | cat -n | tail -c 1000000 | md5sum")
    numbered = b"".join(f"{i:6}\t{i}\n".encode() for i in range(1, 300001))
    assert res.stdout.split()[0].decode() == hashlib.md5(numbered[-1000000:]).hexdigest()
    assert sh.exec("seq 1 300000 | tail -n 2").stdout == b"299999\n300000\n"
    assert sh.exec("seq 1 300000 | tail -n +299999").stdout == b"299999\n300000\n"
    assert sh.exec("seq 1 300000 | head -n 2").stdout == b"1\n2\n"
    assert sh.exec("seq 1 300000 | grep -c 7").stdout == str(
        sum("7" in str(i) for i in range(1, 300001))).encode() + b"\n"
    assert sh.exec("seq 1 200000 | sort -rn | head -1").stdout == b"200000\n"
    assert sh.exec("seq 1 100000 | while read l; do :; done; echo $l").stdout == b"\n"


def test_readers_that_stop_early_end_infinite_writers(sh: Shell) -> None:
    res = sh.exec("yes | head -3", timeout=30)
    assert res.stdout == b"y\ny\ny\n" and res.exit_code == 0 and not res.timed_out
    res = sh.exec("set -o pipefail; yes | head -1; x=$?; set +o pipefail; exit $x",
                  timeout=30)
    assert res.exit_code == 141  # the writer got SIGPIPE
    res = sh.exec("yes | grep -q y; echo $?", timeout=30)
    assert res.stdout == b"0\n"
    res = sh.exec("yes abc | tee /tmp/t | head -c 8; echo; seq 5 | (read a; echo $a)",
                  timeout=30)
    assert res.stdout == b"abc\nabc\n\n1\n"
    res = sh.exec("while :; do echo line; done | head -2", timeout=30)
    assert res.stdout == b"line\nline\n" and not res.timed_out


def test_stages_run_at_once(sh: Shell) -> None:
    # the reader answers while the writer still sleeps: run one after the other, the
    # writer would use up the time and the reader never run
    res = sh.exec("(echo first; sleep 30; echo never) | (read x; echo got $x)", timeout=1)
    assert res.stdout == b"got first\n" and res.timed_out


def test_stage_state_stays_in_its_subshell(sh: Shell) -> None:
    res = sh.exec("x=1; echo 2 | read x; echo $x; cd /tmp | true; pwd")
    assert res.stdout == b"1\n/work\n"
    assert sh.exec("f() { echo in f; }; echo | f | cat").stdout == b"in f\n"
    res = sh.exec("set -o pipefail; false | true; echo $?; true | false | true; echo $?")
    assert res.stdout == b"1\n1\n"


def test_stderr_of_all_stages_is_kept(sh: Shell) -> None:
    res = sh.exec("echo a >&2 | echo b >&2 | cat nosuch")
    assert sorted(res.stderr.splitlines()) == [b"a", b"b", b"cat: nosuch: No such file or "
                                               b"directory"]


# -- output caps ---------------------------------------------------------------------------


def test_output_cap_drops_without_altering(sh: Shell) -> None:
    capped = Shell(Namespace(), max_output=1000)
    res = capped.exec("seq 1 100000; seq 1 10000 >&2")
    assert res.stdout == seq_bytes(1, 100000)[:1000] and res.stdout_truncated
    assert res.stderr == seq_bytes(1, 10000)[:1000] and res.stderr_truncated
    assert res.exit_code == 0
    res = capped.exec("seq 1 10")
    assert res.stdout == seq_bytes(1, 10) and not res.stdout_truncated
    # an intermediate stage is never cut: the cap is on what exec keeps
    assert capped.exec("seq 1 3000000 | tail -1").stdout == b"3000000\n"


def test_env_exec_applies_max_output() -> None:
    with OanixEnv(limits=Limits(max_output=64)) as env:
        res = env.exec("seq 1 1000")
        assert res.stdout == seq_bytes(1, 1000)[:64] and res.stdout_truncated
    with OanixEnv(limits=Limits(max_output=None)) as env:
        res = env.exec("seq 1 3000000")
        assert len(res.stdout) == len(seq_bytes(1, 3000000)) and not res.stdout_truncated


# -- programs: the shell's cwd and exported variables; refused write-backs ------------------


@pytest.fixture
def env() -> OanixEnv:
    e = OanixEnv(limits=Limits(timeout=60))
    for name in ("fsops", "args", "loop"):
        e.namespace.write_bytes(f"/bin/{name}", (FIXTURES / f"{name}.wasm").read_bytes())
    return e


def test_wasm_sees_exported_variables(env: OanixEnv) -> None:
    res = env.exec("export FOO=bar; LOCAL=1; cd /tmp; args x")
    assert b"argv[1]=x" in res.stdout and b"env FOO=bar" in res.stdout
    assert b"env PWD=/tmp" in res.stdout and b"LOCAL" not in res.stdout
    env.close()


def test_refused_write_back_is_reported_and_fails_the_command(env: OanixEnv) -> None:
    res = env.exec("fsops write /outside.txt hi; echo status $?")
    assert res.stdout == b"status 1\n"
    assert b"/outside.txt" in res.stderr and b"written outside every mount" in res.stderr
    assert not env.namespace.exists("/outside.txt")
    res = env.exec("fsops write /workspace/in.txt hi && cat /workspace/in.txt")
    assert res.stdout == b"hi" and res.exit_code == 0 and res.stderr == b""
    env.close()


def test_wasm_program_runs_in_the_working_directory(env: OanixEnv) -> None:
    res = env.exec("cd /workspace; fsops write x.txt hi; mkdir sub; cd sub; "
                   "fsops write y.txt there -- read ../x.txt")
    assert res.exit_code == 0 and res.stderr == b"" and res.stdout == b"hi"
    assert env.namespace.read_bytes("/workspace/x.txt") == b"hi"
    assert env.namespace.read_bytes("/workspace/sub/y.txt") == b"there"
    assert not env.namespace.exists("/x.txt")
    env.close()


def test_relative_write_of_a_program_that_ignores_pwd_fails_loudly(env: OanixEnv) -> None:
    # "cd /" first: the program resolves relative paths from the guest root, as a
    # wasi-libc program that never reads PWD does
    res = env.exec("cd /workspace; fsops cd / -- write x.txt hi; echo status $?")
    assert res.stdout == b"status 1\n"
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fsops: /x.txt: not written back: ")
    assert "ignores PWD" in lines[0] and "/workspace" in lines[0]
    assert not env.namespace.exists("/x.txt")
    assert not env.namespace.exists("/workspace/x.txt")
    env.close()


def test_wasm_run_gets_the_time_left(env: OanixEnv) -> None:
    t0 = time.monotonic()
    res = env.exec("echo before; loop; echo after", timeout=0.5)
    assert res.exit_code == 124 and res.timed_out and res.stdout == b"before\n"
    assert time.monotonic() - t0 < 5.0
    env.close()


def test_python_runs_in_the_shell_cwd_with_its_exports() -> None:
    with OanixEnv(limits=Limits(timeout=120)) as env:
        try:
            env.run_python("pass")
        except PythonUnavailable:
            pytest.skip("needs oanix[python]")
        res = env.exec("mkdir -p /workspace/sub && cd /workspace/sub && export V=42 && "
                       "python3 -c 'import os; print(os.getcwd(), os.environ[\"V\"]); "
                       "open(\"made.txt\", \"w\").write(\"x\")'")
        assert res.stdout == b"/workspace/sub 42\n", res
        assert env.namespace.read_bytes("/workspace/sub/made.txt") == b"x"
