"""The built-in executors (python, shell, wasi) and custom executors.

``DictEnv`` is a stand-in for the agent environment that is still to be built: it offers
the two methods the shell and wasi executors call, ``exec(command)`` and
``run_wasi(module, **params)``, doing real work over a dict instead of a sandbox. Its
"shell" understands ``set K V``, ``get K``, ``del K`` and ``keys``; its "wasm modules"
are Python functions ``module(store, args) -> exit code``, run under a fuel budget
derived from the timeout, the way the real WASI runtime enforces its own deadline.
The async tests run under asyncio and trio alike (``anyio_backend`` in conftest.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest

from oanix import OanixEnv
from oanix.errors import InvalidArgument
from oanix.sched import (
    ExecutorRegistry,
    JobContext,
    JobKind,
    JobSpec,
    JobState,
    PythonCall,
    PythonExecutor,
    Scheduler,
    ShellExecutor,
    WasiRun,
)


class OutOfFuel(Exception):
    """The stand-in runtime stopped a module that ran past its budget."""


class DictEnv:
    """A stand-in environment over a dict (see the module docstring). Thread-safe."""

    FUEL_PER_SECOND = 1000

    def __init__(self) -> None:
        self.store: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.threads: set[int] = set()
        self.lock = threading.Lock()
        self.started = threading.Event()
        self.release: threading.Event | None = None

    def exec(self, command: str, **kwargs: Any) -> str:
        with self.lock:
            self.calls.append((command, kwargs))
            self.threads.add(threading.get_ident())
        self.started.set()
        if self.release is not None:
            self.release.wait()
        op, *args = command.split()
        with self.lock:
            if op == "set":
                self.store[args[0]] = " ".join(args[1:])
                return ""
            if op == "get":
                return self.store[args[0]]
            if op == "del":
                del self.store[args[0]]
                return ""
            if op == "keys":
                return "\n".join(sorted(self.store))
        raise ValueError(f"unknown command {op!r}")

    def run_wasi(self, module: Callable[[dict[str, str], tuple[str, ...]],
                                        Generator[None, None, int | None]],
                 *, args: tuple[str, ...] = (), timeout: float | None = None) -> int:
        with self.lock:
            self.calls.append(("run_wasi", {"args": args, "timeout": timeout}))
            self.threads.add(threading.get_ident())
        fuel = None if timeout is None else int(timeout * self.FUEL_PER_SECOND)
        steps = module(self.store, args)  # a generator: one yield per unit of work
        try:
            while True:
                next(steps)
                if fuel is not None:
                    fuel -= 1
                    if fuel < 0:
                        raise OutOfFuel(f"module ran out of fuel after {timeout} s worth")
        except StopIteration as stop:
            return int(stop.value or 0)


def count_words(store: dict[str, str], args: tuple[str, ...]) -> Generator[None, None, int]:
    for key in args:
        store[f"words:{key}"] = str(len(store.get(key, "").split()))
        yield
    return 0


def spin(store: dict[str, str], args: tuple[str, ...]) -> Iterator[None]:
    while True:
        yield


# ------------------------------------------------------------------------------ python

@pytest.mark.anyio
async def test_python_sync_callables_run_in_a_worker_thread_async_ones_in_the_loop() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()

        def sync_job(a: int, b: int, *, scale: int) -> tuple[int, int]:
            return (a + b) * scale, threading.get_ident()

        async def async_job(x: int) -> tuple[int, int]:
            await anyio.sleep(0)
            return x * 2, threading.get_ident()

        async with Scheduler() as sched:
            s = sched.submit(JobSpec(JobKind.PYTHON, PythonCall(sync_job, (1, 2), {"scale": 3})))
            a = sched.submit(JobSpec.python(async_job, 21))
            bare = sched.submit(JobSpec("python", lambda: "bare"))
            s_value, s_thread = (await s.wait()).value
            a_value, a_thread = (await a.wait()).value
            assert (s_value, a_value) == (9, 42)
            assert s_thread != loop_thread and a_thread == loop_thread
            assert (await bare.wait()).value == "bare"

    await main()


@pytest.mark.anyio
async def test_python_job_with_a_bad_payload_fails() -> None:
    async def main() -> None:
        async with Scheduler() as sched:
            res = await sched.submit(JobSpec("python", 42)).wait()
            assert res.state is JobState.FAILED
            assert isinstance(res.exception, InvalidArgument)

    await main()


@pytest.mark.anyio
async def test_python_executor_that_waits_for_its_thread() -> None:
    release = threading.Event()

    async def main() -> None:
        async with Scheduler(executors={"python": PythonExecutor(abandon_on_cancel=False)}
                             ) as sched:
            h = sched.submit(JobSpec.python(release.wait))
            await anyio.wait_all_tasks_blocked()
            h.cancel()
            await anyio.wait_all_tasks_blocked()
            assert h.state is JobState.RUNNING  # a thread cannot be killed: it waits
            release.set()
            res = await h.wait()
            assert res.state is JobState.CANCELLED and res.value is None  # late value dropped

    await main()


# ------------------------------------------------------------------------------- shell

@pytest.mark.anyio
async def test_shell_jobs_call_env_exec_in_a_worker_thread() -> None:
    env = DictEnv()

    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            sched.register_env("box", env)
            for cmd in ["set greeting hello world", "set x 1"]:
                sched.submit(JobSpec.shell(cmd, env_id="box"))
            got = sched.submit(JobSpec.shell("get greeting", env_id="box", timeout=30))
            keys = sched.submit(JobSpec.shell("keys", env_id="box"))
            bad = sched.submit(JobSpec.shell("frobnicate", env_id="box"))
            assert (await got.wait()).value == "hello world"
            assert (await keys.wait()).value == "greeting\nx"
            res = await bad.wait()
            assert res.state is JobState.FAILED and res.error is not None
            assert "unknown command" in res.error
        assert threading.get_ident() not in env.threads
        # the job timeout is passed down to the environment
        assert ("get greeting", {"timeout": 30}) in env.calls
        assert ("keys", {}) in env.calls

    await main()


@pytest.mark.anyio
async def test_shell_job_without_a_registered_env_fails() -> None:
    async def main() -> None:
        async with Scheduler() as sched:
            res = await sched.submit(JobSpec.shell("keys", env_id="missing")).wait()
            assert res.state is JobState.FAILED
            assert isinstance(res.exception, InvalidArgument)
            assert "missing" in (res.error or "")
            res = await sched.submit(JobSpec("shell", "keys")).wait()  # no env_id at all
            assert "needs an env_id" in (res.error or "")
            res = await sched.submit(JobSpec("shell", ["keys"], env_id="x")).wait()
            assert res.state is JobState.FAILED

    await main()


@pytest.mark.anyio
async def test_cancelling_a_running_shell_job_waits_for_exec_to_return() -> None:
    env = DictEnv()
    env.release = threading.Event()

    async def main() -> None:
        async with Scheduler() as sched:
            sched.register_env("box", env)
            h = sched.submit(JobSpec.shell("set k v", env_id="box"))
            await anyio.to_thread.run_sync(env.started.wait)
            assert h.cancel()
            await anyio.wait_all_tasks_blocked()
            assert h.state is JobState.RUNNING
            assert sched.statistics().running_per_env == {"box": 1}  # slot still held
            assert env.release is not None
            env.release.set()
            res = await h.wait()
            assert res.state is JobState.CANCELLED

    await main()
    assert env.store == {"k": "v"}  # the command did run to its end


# -------------------------------------------------------------------------------- wasi

@pytest.mark.anyio
async def test_wasi_jobs_call_env_run_wasi_with_params_and_the_timeout() -> None:
    env = DictEnv()
    env.store["doc"] = "one two three"

    async def main() -> None:
        async with Scheduler() as sched:
            sched.register_env("box", env)
            ok = sched.submit(JobSpec.wasi(count_words, env_id="box",
                                           params={"args": ("doc",)}, timeout=10))
            res = await ok.wait()
            assert res.state is JobState.COMPLETED and res.value == 0
            assert env.store["words:doc"] == "3"
            # The runtime's own limit stops a runaway module; the loop's deadline
            # (far later in real time) never fires.
            runaway = await sched.submit(JobSpec.wasi(spin, env_id="box", timeout=2)).wait()
            assert runaway.state is JobState.FAILED
            assert isinstance(runaway.exception, OutOfFuel)
            bad = await sched.submit(JobSpec("wasi", spin, env_id="box")).wait()
            assert bad.state is JobState.FAILED
            assert isinstance(bad.exception, InvalidArgument)

    await main()
    assert ("run_wasi", {"args": ("doc",), "timeout": 10}) in env.calls
    assert ("run_wasi", {"args": (), "timeout": 2}) in env.calls
    assert WasiRun(count_words, {"args": ("doc",)}).params == {"args": ("doc",)}


# ------------------------------------------------------------------------------ custom

class Echo:
    """A custom executor: returns its payload, job id and the env it was given."""

    async def run(self, job: JobSpec, context: JobContext) -> Any:
        await anyio.sleep(0)
        env = context.env() if job.env_id is not None else None
        return job.payload, context.job_id, env, context.timeout


@pytest.mark.anyio
async def test_custom_executors_through_the_registry() -> None:
    async def main() -> None:
        async with Scheduler() as sched:
            sched.register_executor("echo", Echo())
            sched.register_env("e", {"name": "env-e"})
            h = sched.submit(JobSpec("echo", {"x": 1}, env_id="e", timeout=9))
            res = await h.wait()
            assert res.value == ({"x": 1}, h.id, {"name": "env-e"}, 9)
            with pytest.raises(InvalidArgument):
                sched.register_executor("echo", Echo())
            sched.register_executor("echo", Echo(), replace=True)
            with pytest.raises(InvalidArgument):
                sched.register_executor("nope", object())  # type: ignore[arg-type]
            sched.executors.unregister("echo")
            with pytest.raises(InvalidArgument):
                sched.submit(JobSpec("echo"))

    await main()


def test_registry_and_env_registry_basics() -> None:
    reg = ExecutorRegistry()
    assert reg.kinds() == ["python", "shell", "wasi"]
    assert isinstance(reg.get("shell"), ShellExecutor)
    with pytest.raises(InvalidArgument):
        reg.get("nope")
    with pytest.raises(InvalidArgument):
        reg.unregister("nope")
    with pytest.raises(InvalidArgument):
        reg.register("", Echo())
    assert ExecutorRegistry({}).kinds() == []

    sched = Scheduler()
    sched.register_env("a", 1)
    with pytest.raises(InvalidArgument):
        sched.register_env("a", 2)
    sched.register_env("a", 2, replace=True)
    assert sched.get_env("a") == 2
    assert sched.unregister_env("a") == 2
    with pytest.raises(InvalidArgument):
        sched.get_env("a")
    with pytest.raises(InvalidArgument):
        sched.unregister_env("a")
    with pytest.raises(InvalidArgument):
        sched.register_env("", 1)
    assert sched.env_limit("a") is None
    sched.set_env_limit("a", 2)
    assert sched.env_limit("a") == 2
    sched.set_env_limit("a", None)
    assert sched.env_limit("a") is None


@pytest.mark.anyio
async def test_cancelling_a_shell_job_on_an_oanix_env_stops_the_command() -> None:
    """A real environment: the executor awaits ``aexec``, so the cancel reaches the shell
    (the file the command appends to stops growing) before the job ends ``cancelled``."""
    with OanixEnv() as env:
        async with Scheduler(max_concurrent=1) as sched:
            sched.register_env("box", env)
            job = sched.submit(JobSpec.shell("while true; do echo x >> /tmp/grow; done",
                                             env_id="box"))
            while not env.namespace.exists("/tmp/grow"):
                await anyio.sleep(0.01)
            job.cancel()
            assert (await job.wait()).state is JobState.CANCELLED
            size = len(env.namespace.read_bytes("/tmp/grow"))
            await anyio.sleep(0.3)
            assert len(env.namespace.read_bytes("/tmp/grow")) == size
            done = await sched.submit(JobSpec.shell("echo next", env_id="box")).wait()
            assert done.value.stdout == b"next\n"
