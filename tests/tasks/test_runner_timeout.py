"""An agent past its timeout is stopped, not abandoned: its shell work ends, its later
calls raise TimedOut, and no thread keeps burning CPU after the trial."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oanix.env import OanixEnv
from oanix.errors import TimedOut
from oanix.tasks.runner import run_trial
from oanix.wasi import WasiRuntime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    with WasiRuntime() as rt:
        yield rt


def spin_in_shell(env: OanixEnv, instruction: str) -> None:
    env.exec("while :; do :; done")


def spin_in_pipeline(env: OanixEnv, instruction: str) -> None:
    env.exec("yes | while read l; do :; done")


def call_forever(env: OanixEnv, instruction: str) -> None:
    while True:  # ends when the environment refuses: TimedOut
        env.exec("x=1")


def spin_in_wasm(env: OanixEnv, instruction: str) -> None:
    loop = (Path(__file__).resolve().parents[2] / "wasi_fixtures" / "loop.wasm").read_bytes()
    env.namespace.write_bytes("/bin/loop", loop)
    while True:
        env.exec("loop")


def cpu_over(seconds: float) -> float:
    t0 = time.process_time()
    time.sleep(seconds)
    return time.process_time() - t0


@pytest.mark.parametrize("agent", [spin_in_shell, spin_in_pipeline, call_forever,
                                   spin_in_wasm])
def test_timed_out_agent_stops_burning_cpu(agent: Callable[[OanixEnv, str], None],
                                           runtime: WasiRuntime) -> None:
    seen: list[OanixEnv] = []

    def wrapped(env: OanixEnv, instruction: str) -> None:
        seen.append(env)
        agent(env, instruction)

    t0 = time.monotonic()
    result = run_trial(EXAMPLES / "hello-world", wrapped, runtime=runtime,
                       agent_timeout=1.0)
    assert result.status == "agent_timeout" and result.reward == 0.0
    assert time.monotonic() - t0 < 30.0
    # the agent's thread returned (the grace sufficed): the error it saw is recorded
    # nowhere else, so look at the process: over a second it uses next to no CPU
    assert cpu_over(1.0) < 0.3
    with pytest.raises(TimedOut):
        seen[0].exec("echo more")
