"""The async API under asyncio and trio alike (anyio): ``aexec``, ``arun_wasi``,
``arun_python``, ``WasiRuntime.arun`` and ``async with OanixEnv``.

A cancellation must stop the work, not leave it running in its worker thread: the tests
cancel with ``anyio.fail_after`` and then check the work's own traces (a file that no
longer grows, a runtime that closes with no run left going).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from oanix import MemFs, OanixEnv
from oanix.env import EnvStatus, Limits
from oanix.wasi import RunConfig, WasiRuntime

WAIT = 20.0  # generous: bounds a hang, never asserted as a timing


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


async def _stays(read: Callable[[], int]) -> tuple[int, int]:
    """The size now and a while later (the work, if stopped, adds nothing between)."""
    before = read()
    await anyio.sleep(0.3)
    return before, read()


@pytest.mark.anyio
async def test_aexec_runs_a_command_like_exec() -> None:
    async with OanixEnv(env={"WHO": "anyio"}) as env:
        res = await env.aexec("echo hi $WHO; cat", stdin="in")
        assert (res.exit_code, res.stdout) == (0, b"hi anyio\nin")
        assert res == env.exec("echo hi $WHO; cat", stdin="in")
        timed = await env.aexec("while true; do :; done", timeout=0.2)
        assert timed.timed_out and timed.exit_code == 124
    assert env.status is EnvStatus.CLOSED


@pytest.mark.anyio
async def test_cancelling_aexec_stops_the_command() -> None:
    async with OanixEnv() as env:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await env.aexec("while true; do echo x >> /tmp/grow; done")
        assert time.monotonic() - started < WAIT
        before, after = await _stays(lambda: len(env.namespace.read_bytes("/tmp/grow")))
        assert before > 0 and before == after
        # only that command was cancelled: the environment goes on
        assert not env.timed_out
        assert (await env.aexec("echo still here")).stdout == b"still here\n"


@pytest.mark.anyio
async def test_cancelling_aexec_stops_a_wasm_program_it_runs(wasm: Callable[[str], str]
                                                             ) -> None:
    async with OanixEnv() as env:
        env.namespace.write_bytes("/bin/loop", Path(wasm("loop")).read_bytes())
        with pytest.raises(TimeoutError), anyio.fail_after(0.5):
            await env.aexec("loop")
        assert (await env.aexec("echo after")).stdout == b"after\n"


@pytest.mark.anyio
async def test_async_with_fails_the_environment_on_an_error() -> None:
    with pytest.raises(ZeroDivisionError):
        async with OanixEnv() as env:
            await env.aexec("true")
            1 / 0  # noqa: B018
    assert env.status is EnvStatus.CLOSED and env.error == "division by zero"


@pytest.mark.anyio
async def test_arun_runs_a_module(runtime: WasiRuntime, wasm: Callable[[str], str]) -> None:
    res = await runtime.arun(wasm("hello"))
    assert (res.exit_code, res.stdout) == (0, b"hello, wasi\n")
    ns = MemFs()
    ns.mkdir("/data")
    res = await runtime.arun(wasm("fsops"), ns, RunConfig(
        argv=["write", "/data/a", "hi"], preopens={"/data": "/data"}))
    assert res.exit_code == 0 and ns.read_bytes("/data/a") == b"hi"


@pytest.mark.anyio
async def test_cancelling_arun_stops_a_spinning_guest(wasi_cache_dir: Path,
                                                      wasm: Callable[[str], str]) -> None:
    """No timeout and no namespace: only the cancellation can stop it."""
    rt = WasiRuntime(cache_dir=wasi_cache_dir)
    try:
        with pytest.raises(TimeoutError), anyio.fail_after(0.3):
            await rt.arun(wasm("loop"))
    finally:
        rt.close(wait=0)  # warns (an error here) if a run were still going


@pytest.mark.anyio
async def test_cancelling_arun_wasi_wakes_a_guest_that_waits(wasm: Callable[[str], str]
                                                             ) -> None:
    """The guest sleeps in ``poll_oneoff`` between looks at a file that never comes."""
    async with OanixEnv() as env:
        started = time.monotonic()
        with pytest.raises(TimeoutError), anyio.fail_after(0.3):
            await env.arun_wasi(wasm("poll"), ["/tmp/req", "go", "/tmp/never", "600000"])
        assert time.monotonic() - started < WAIT  # not the guest's own 600 s
        res = await env.arun_wasi(wasm("hello"))
        assert res.stdout == b"hello, wasi\n"


@pytest.mark.anyio
async def test_arun_python_and_its_cancellation(rt: WasiRuntime) -> None:
    async with OanixEnv(runtime=rt, limits=Limits(timeout=None)) as env:
        res = await env.arun_python("print(6 * 7)")
        assert res.stdout == b"42\n"
        with pytest.raises(TimeoutError), anyio.fail_after(2):
            await env.arun_python(
                "import time\nwhile True:\n    open('/tmp/beat', 'a').write('x')\n"
                "    time.sleep(0.01)")
        res = await env.arun_python("print('again')")
        assert res.stdout == b"again\n"
