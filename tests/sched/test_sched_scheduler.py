"""Scheduler: ordering, aging, limits, cancellation, timeouts, failures, threads.

The ``@pytest.mark.anyio`` tests run under asyncio and trio alike (``anyio_backend`` in
conftest.py); their jobs sleep a few milliseconds at most. The tests that measure time
(aging, timeouts, the limit model) run under trio's MockClock (autojump), so no
wall-clock time is measured or waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from oanix.errors import InvalidArgument
from oanix.sched import (
    JobHandle,
    JobResult,
    JobSpec,
    JobState,
    PythonCall,
    Scheduler,
    SchedulerClosed,
)


def run(main: Callable[[], Awaitable[Any]], *, mock_clock: bool = True) -> Any:
    clock = trio.testing.MockClock(autojump_threshold=0) if mock_clock else None
    return trio.run(main, clock=clock)


class Gate:
    """An async job body that records its start and waits until opened."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.event = log, name, anyio.Event()

    async def __call__(self) -> str:
        self.log.append(self.name)
        await self.event.wait()
        return self.name


def recorder(log: list[str], name: str) -> Callable[[], Awaitable[str]]:
    async def job() -> str:
        log.append(name)
        return name
    return job


# --------------------------------------------------------------------------- ordering

@pytest.mark.anyio
async def test_priority_order_and_fifo_within_a_priority() -> None:
    log: list[str] = []

    async def main() -> None:
        async with Scheduler(max_concurrent=1, aging=None) as sched:
            gate = Gate(log, "blocker")
            sched.submit(JobSpec.python(gate))
            await anyio.wait_all_tasks_blocked()
            for name, prio in [("a0", 0), ("b5", 5), ("c0", 0), ("d5", 5), ("e9", 9),
                               ("f-1", -1)]:
                sched.submit(JobSpec.python(recorder(log, name), priority=prio))
            gate.event.set()

    await main()
    assert log == ["blocker", "e9", "b5", "d5", "a0", "c0", "f-1"]


@pytest.mark.anyio
async def test_a_burst_submitted_in_one_turn_is_ordered_as_a_whole() -> None:
    log: list[str] = []

    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            sched.submit(JobSpec.python(recorder(log, "low")))
            sched.submit(JobSpec.python(recorder(log, "high"), priority=5))

    await main()
    assert log == ["high", "low"]


ops_strategy = st.lists(st.one_of(st.tuples(st.just("submit"), st.integers(-3, 3)),
                                  st.just(("finish", 0))), max_size=30)


@settings(max_examples=100, deadline=None)
@given(ops_strategy)
def test_start_order_matches_a_sorted_list_model(ops: list[tuple[str, int]]) -> None:
    """Random submits and finishes with one slot; the model is a sorted pending list."""
    started: list[int] = []
    model_started: list[int] = []

    async def main() -> None:
        gates: dict[int, anyio.Event] = {}
        pending: list[tuple[int, int]] = []  # model: (-priority, seq)
        running: int | None = None

        def job(i: int) -> Callable[[], Awaitable[None]]:
            async def body() -> None:
                started.append(i)
                await gates[i].wait()
            return body

        async with Scheduler(max_concurrent=1, aging=None) as sched:
            for seq, (op, prio) in enumerate(ops):
                if op == "submit":
                    gates[seq] = anyio.Event()
                    sched.submit(JobSpec.python(job(seq), priority=prio))
                    pending.append((-prio, seq))
                elif running is not None:
                    gates[running].set()
                    running = None
                if running is None and pending:
                    pending.sort()
                    running = pending.pop(0)[1]
                    model_started.append(running)
                await anyio.wait_all_tasks_blocked()
                assert started == model_started
                assert sched.statistics().pending == len(pending)
            for gate in gates.values():
                gate.set()

    run(main)
    assert started[:len(model_started)] == model_started


# ------------------------------------------------------------------------------ aging

def _starvation_run(aging: float | None) -> tuple[float, float, list[str]]:
    """A low job against a stream of high ones (1 s each, two submitted per second)."""
    order: list[str] = []
    times: dict[str, float] = {}

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def body() -> None:
            order.append(name)
            times[name] = anyio.current_time()
            await anyio.sleep(1)
        return body

    async def main() -> None:
        async with Scheduler(max_concurrent=1, aging=aging) as sched:
            start = anyio.current_time()
            sched.submit(JobSpec.python(job("low"), priority=0))
            for i in range(100):
                sched.submit(JobSpec.python(job(f"high{i}"), priority=10))
                await anyio.sleep(0.5)
            times["stream_end"] = anyio.current_time()
            for key in times:
                times[key] -= start

    run(main)
    return times["low"], times["stream_end"], order


def test_aging_lets_a_low_priority_job_through_a_stream_of_higher_ones() -> None:
    low_start, stream_end, order = _starvation_run(aging=1.0)
    assert low_start < stream_end
    # It overtook the high jobs submitted after its effective priority passed 10.
    assert 0 < order.index("low") < len(order) - 1
    assert low_start == pytest.approx(20.0)


def test_without_aging_the_low_priority_job_waits_for_the_stream() -> None:
    low_start, stream_end, order = _starvation_run(aging=None)
    assert order[-1] == "low"
    assert low_start > stream_end


# ----------------------------------------------------------------------------- limits

@settings(max_examples=100, deadline=None)
@given(jobs=st.lists(st.tuples(st.sampled_from([None, "a", "b", "c"]), st.integers(0, 3),
                               st.integers(-2, 2)), max_size=25),
       max_concurrent=st.integers(1, 4),
       per_env_limit=st.one_of(st.none(), st.integers(1, 3)),
       override=st.one_of(st.none(), st.integers(1, 2)))
def test_global_and_per_env_limits_are_never_exceeded(
        jobs: list[tuple[str | None, int, int]], max_concurrent: int,
        per_env_limit: int | None, override: int | None) -> None:
    running: dict[str | None, int] = {}
    peak: dict[str | None, int] = {}
    total = [0, 0]  # now, peak

    def limit(env: str | None) -> int | None:
        return override if env == "c" and override is not None else per_env_limit

    async def body(env: str | None, ticks: int) -> None:
        total[0] += 1
        total[1] = max(total[1], total[0])
        running[env] = running.get(env, 0) + 1
        peak[env] = max(peak.get(env, 0), running[env])
        await anyio.sleep(ticks)
        running[env] -= 1
        total[0] -= 1

    async def main() -> None:
        async with Scheduler(max_concurrent=max_concurrent, per_env_limit=per_env_limit,
                             aging=1.0) as sched:
            if override is not None:
                sched.set_env_limit("c", override)
            handles = [sched.submit(JobSpec(
                "python", PythonCall(body, (env, ticks)), env_id=env, priority=prio))
                for env, ticks, prio in jobs]
            # Work conservation: between job ends (they fall on whole ticks) a job waits
            # only if the global limit or its environment's limit is reached.
            for _ in range(sum(t for _, t, _ in jobs) + 1):
                await anyio.sleep(0.5)
                await anyio.wait_all_tasks_blocked()
                stats = sched.statistics()
                waiting = {h.spec.env_id for h in handles if h.state is JobState.PENDING}
                if waiting and stats.running < max_concurrent:
                    for env in waiting:
                        lim = limit(env)
                        assert env is not None and lim is not None
                        assert stats.running_per_env.get(env, 0) == lim
            await sched.drain()
            assert all(h.state is JobState.COMPLETED for h in handles)
            stats = sched.statistics()
            assert (stats.completed, stats.pending, stats.running) == (len(jobs), 0, 0)

    run(main)
    assert total[1] <= max_concurrent
    for env, n in peak.items():
        lim = limit(env)
        if env is not None and lim is not None:
            assert n <= lim, (env, n, lim)


@pytest.mark.anyio
async def test_a_blocked_env_does_not_block_other_envs() -> None:
    log: list[str] = []

    async def main() -> None:
        async with Scheduler(max_concurrent=3, per_env_limit=1) as sched:
            gate = Gate(log, "a1")
            sched.submit(JobSpec.python(gate, env_id="a"))
            await anyio.wait_all_tasks_blocked()
            sched.submit(JobSpec.python(recorder(log, "a2"), env_id="a", priority=9))
            sched.submit(JobSpec.python(recorder(log, "b1"), env_id="b"))
            await anyio.wait_all_tasks_blocked()
            assert log == ["a1", "b1"]
            stats = sched.statistics()
            assert dict(stats.running_per_env) == {"a": 1}
            assert dict(stats.pending_per_env) == {"a": 1}
            gate.event.set()

    await main()
    assert log == ["a1", "b1", "a2"]


# ----------------------------------------------------------------------- cancellation

@pytest.mark.anyio
async def test_cancel_a_pending_job() -> None:
    log: list[str] = []

    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            gate = Gate(log, "blocker")
            sched.submit(JobSpec.python(gate))
            await anyio.wait_all_tasks_blocked()
            victim = sched.submit(JobSpec.python(recorder(log, "victim")))
            after = sched.submit(JobSpec.python(recorder(log, "after")))
            assert victim.cancel()
            assert victim.state is JobState.CANCELLED
            assert sched.statistics().pending == 1
            result = await victim.wait()
            assert result.state is JobState.CANCELLED and result.started_at is None
            assert not victim.cancel()
            gate.event.set()
            assert (await after.wait()).state is JobState.COMPLETED
            assert sched.statistics().cancelled == 1

    await main()
    assert log == ["blocker", "after"]


@pytest.mark.anyio
async def test_cancel_a_running_job_and_the_next_one_runs() -> None:
    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            forever = sched.submit(JobSpec.python(anyio.sleep_forever))
            nxt = sched.submit(JobSpec.python(anyio.sleep, 0.01))
            await anyio.wait_all_tasks_blocked()
            assert forever.state is JobState.RUNNING
            assert forever.cancel()
            result = await forever.wait()
            assert result.state is JobState.CANCELLED
            assert result.started_at is not None and result.finished_at is not None
            assert (await nxt.wait()).state is JobState.COMPLETED

    await main()


@pytest.mark.anyio
async def test_cancel_a_running_thread_job_abandons_the_thread() -> None:
    release = threading.Event()

    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            h = sched.submit(JobSpec.python(release.wait))
            await anyio.wait_all_tasks_blocked()
            assert h.state is JobState.RUNNING
            h.cancel()
            assert (await h.wait()).state is JobState.CANCELLED
            assert sched.statistics().running == 0  # the slot is free again
        release.set()  # let the abandoned thread finish

    await main()


# ------------------------------------------------------------------ timeouts, failures

def test_timeout_ends_timed_out_and_the_next_job_runs() -> None:
    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            slow = sched.submit(JobSpec.python(anyio.sleep, 100, timeout=2.5))
            nxt = sched.submit(JobSpec.python(anyio.sleep, 1, timeout=5))
            result = await slow.wait()
            assert result.state is JobState.TIMED_OUT
            assert result.error is not None and "timed out" in result.error
            assert result.started_at is not None and result.finished_at is not None
            assert result.finished_at - result.started_at == pytest.approx(2.5)  # mock time
            assert (await nxt.wait()).state is JobState.COMPLETED
            assert sched.statistics().timed_out == 1

    run(main)


@pytest.mark.anyio
async def test_a_failing_job_fails_and_the_others_continue() -> None:
    def boom() -> None:
        raise KeyError("nope")

    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            bad = sched.submit(JobSpec.python(boom))
            good = sched.submit(JobSpec.python(lambda: 42))
            result = await bad.wait()
            assert result.state is JobState.FAILED
            assert result.error == "KeyError: 'nope'"
            assert isinstance(result.exception, KeyError)
            assert not result.ok
            good_result = await good.wait()
            assert good_result.ok and good_result.value == 42
            stats = sched.statistics()
            assert (stats.failed, stats.completed) == (1, 1)

    await main()


# --------------------------------------------------------------------------- lifecycle

@pytest.mark.anyio
async def test_leaving_normally_waits_for_every_job() -> None:
    handles: list[JobHandle] = []

    async def main() -> None:
        async with Scheduler(max_concurrent=2) as sched:
            handles.extend(sched.submit(JobSpec.python(anyio.sleep, i / 100))
                           for i in range(5))

    await main()
    assert [h.state for h in handles] == [JobState.COMPLETED] * 5


@pytest.mark.anyio
async def test_leaving_with_an_error_cancels_pending_and_running_jobs() -> None:
    handles: list[JobHandle] = []

    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            async with Scheduler(max_concurrent=1) as sched:
                handles.append(sched.submit(JobSpec.python(anyio.sleep_forever)))
                handles.append(sched.submit(JobSpec.python(anyio.sleep_forever)))
                await anyio.wait_all_tasks_blocked()
                1 / 0  # noqa: B018
        assert [h.state for h in handles] == [JobState.CANCELLED] * 2
        assert handles[0].result is not None and handles[0].result.started_at is not None
        assert handles[1].result is not None and handles[1].result.started_at is None

    await main()


@pytest.mark.anyio
async def test_an_outer_cancel_cancels_the_jobs() -> None:
    handles: list[JobHandle] = []

    async def main() -> None:
        with anyio.move_on_after(0.2):
            async with Scheduler(max_concurrent=1) as sched:
                handles.append(sched.submit(JobSpec.python(anyio.sleep_forever)))
                handles.append(sched.submit(JobSpec.python(anyio.sleep_forever)))
        assert [h.state for h in handles] == [JobState.CANCELLED] * 2

    await main()


@pytest.mark.anyio
async def test_submit_outside_the_running_scheduler_raises() -> None:
    sched = Scheduler()
    with pytest.raises(SchedulerClosed):
        sched.submit(JobSpec.python(print))

    async def main() -> None:
        async with sched:
            pass
        with pytest.raises(SchedulerClosed):
            sched.submit(JobSpec.python(print))
        with pytest.raises(SchedulerClosed):
            async with sched:
                pass

    await main()


@pytest.mark.anyio
async def test_bad_arguments_are_rejected() -> None:
    bad: list[dict[str, Any]] = [{"max_concurrent": 0}, {"per_env_limit": 0},
                                 {"aging": -1.0}, {"max_concurrent": True}]
    for kwargs in bad:
        with pytest.raises(InvalidArgument):
            Scheduler(**kwargs)
    with pytest.raises(InvalidArgument):
        JobSpec("python", print, timeout=0)
    with pytest.raises(InvalidArgument):
        JobSpec("", print)
    with pytest.raises(InvalidArgument):
        JobSpec("python", print, priority=1.5)  # type: ignore[arg-type]

    async def main() -> None:
        async with Scheduler() as sched:
            with pytest.raises(InvalidArgument, match="no executor"):
                sched.submit(JobSpec("nosuchkind"))
            with pytest.raises(InvalidArgument):
                sched.submit("python")  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument):
                sched.set_env_limit("a", 0)

    await main()


def test_statistics_is_a_frozen_snapshot_and_drain_waits() -> None:
    async def main() -> None:
        async with Scheduler(max_concurrent=2, per_env_limit=1) as sched:
            for i in range(4):
                sched.submit(JobSpec.python(anyio.sleep, i + 1, env_id=f"e{i % 2}"))
            await anyio.wait_all_tasks_blocked()
            stats = sched.statistics()
            assert (stats.pending, stats.running) == (2, 2)
            assert dict(stats.running_per_env) == {"e0": 1, "e1": 1}
            assert len(sched.jobs()) == 4
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                stats.pending = 0  # type: ignore[misc]
            await sched.drain()
            stats = sched.statistics()
            assert (stats.pending, stats.running, stats.completed) == (0, 0, 4)
            assert sched.jobs() == []

    run(main)


def test_results_carry_ids_and_times() -> None:
    async def main() -> None:
        async with Scheduler() as sched:
            a = sched.submit(JobSpec.python(anyio.sleep, 3))
            b = sched.submit(JobSpec.python(anyio.sleep, 3))
            assert a.id != b.id
            res: JobResult = await a.wait()
            assert res.job_id == a.id and res.state is JobState.COMPLETED
            assert res.submitted_at is not None and res.started_at is not None
            assert res.finished_at is not None
            assert res.submitted_at <= res.started_at
            assert res.finished_at - res.started_at == pytest.approx(3)
            assert a.done and a.result is res

    run(main)


# ---------------------------------------------------------------------------- threads

@pytest.mark.anyio
async def test_submit_and_cancel_from_another_thread() -> None:
    log: list[str] = []

    async def main() -> None:
        async with Scheduler(max_concurrent=1) as sched:
            gate = Gate(log, "blocker")
            sched.submit(JobSpec.python(gate))
            await anyio.wait_all_tasks_blocked()

            def from_thread() -> list[JobHandle]:
                hs = [sched.submit(JobSpec.python(recorder(log, f"t{i}"), priority=i))
                      for i in range(3)]
                assert hs[1].cancel()  # handed to the loop
                return hs

            handles = await anyio.to_thread.run_sync(from_thread)
            await anyio.wait_all_tasks_blocked()
            assert handles[1].state is JobState.CANCELLED
            gate.event.set()
            results = [await h.wait() for h in handles]
            assert [r.state for r in results] == [JobState.COMPLETED, JobState.CANCELLED,
                                                  JobState.COMPLETED]
            # statistics from a thread is a consistent snapshot
            stats = await anyio.to_thread.run_sync(sched.statistics)
            assert stats.cancelled == 1

    await main()
    assert log == ["blocker", "t2", "t0"]


@pytest.mark.anyio
async def test_drain_waits_for_submissions_still_on_their_way_from_threads() -> None:
    async def main() -> None:
        async with Scheduler() as sched:
            hs = await anyio.to_thread.run_sync(
                lambda: [sched.submit(JobSpec.python(anyio.sleep, 0)) for _ in range(20)])
            await sched.drain()
            assert all(h.state is JobState.COMPLETED for h in hs)

    await main()


@pytest.mark.anyio
async def test_the_loop_stays_responsive_while_a_worker_thread_blocks() -> None:
    release = threading.Event()
    ticks: list[JobState] = []

    async def main() -> None:
        async with Scheduler() as sched:
            job = sched.submit(JobSpec.python(release.wait))
            await anyio.wait_all_tasks_blocked()
            for _ in range(200):  # a heartbeat: the loop keeps ticking
                await anyio.sleep(0)
                ticks.append(job.state)
            release.set()
            assert (await job.wait()).value is True

    await main()
    assert ticks == [JobState.RUNNING] * 200
