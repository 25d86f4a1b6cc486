"""Scheduler overhead: N no-op jobs through oanix's Scheduler vs a bare trio nursery.

    python benches/bench_sched.py [--jobs 10000] [--concurrency 4] [--repeat 3]

The workload: N no-op ``async def`` callables. Through the scheduler: submit them all as
``python`` jobs inside ``async with Scheduler(max_concurrent=C)`` and drain it (every job
gets an id, a queue entry, a task, a cancel scope and a JobResult). The floor: the same N
functions started in a bare trio nursery, each taking a ``trio.CapacityLimiter(C)``
slot first. Each figure is the best of ``--repeat`` runs; compare the ratio, not
absolute times across machines.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import trio

from oanix.sched import JobSpec, JobState, Scheduler


async def noop() -> None:
    pass


async def through_scheduler(n: int, concurrency: int) -> None:
    async with Scheduler(max_concurrent=concurrency) as sched:
        handles = [sched.submit(JobSpec.python(noop)) for _ in range(n)]
        await sched.drain()
        stats = sched.statistics()
    assert stats.completed == n and handles[-1].state is JobState.COMPLETED


async def bare_nursery(n: int, concurrency: int) -> None:
    limiter = trio.CapacityLimiter(concurrency)
    done = 0

    async def one() -> None:
        nonlocal done
        async with limiter:
            await noop()
            done += 1

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    assert done == n


def best_of(repeat: int, fn: Callable[[int, int], Awaitable[None]], n: int, c: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        trio.run(fn, n, c)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, c = args.jobs, args.concurrency
    sched = best_of(args.repeat, through_scheduler, n, c)
    floor = best_of(args.repeat, bare_nursery, n, c)
    print(f"{n} no-op async jobs, concurrency {c}, best of {args.repeat}")
    print(f"  {'scheduler':<28}{n / sched:>12,.0f} jobs/s  {sched * 1e6 / n:8.1f} us/job")
    print(f"  {'nursery + CapacityLimiter':<28}{n / floor:>12,.0f} jobs/s  "
          f"{floor * 1e6 / n:8.1f} us/job")
    print(f"  ratio (scheduler / floor time): {sched / floor:.2f}x")


if __name__ == "__main__":
    main()
