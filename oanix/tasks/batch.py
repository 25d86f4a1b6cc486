"""A batch of trials: which tasks run (and how often), where they run, what is written.

``run_batch`` is the Python face of ``oanix-tasks batch``. A batch is a list of runs, one
per (task directory, attempt); an engine runs them and gives back one ``TrialResult``
each, in the order they finish:

- locally (the default): ``concurrency`` trials at a time on oanix's scheduler, sharing
  one ``WasiRuntime`` (its module cache) in this process;
- on Ray (``ray=`` an address, or ``True`` for a Ray started here): each trial is a Ray
  task; see ``oanix.tasks.on_ray``.

Either way a task that cannot be loaded is one error row, never an exception that loses
the rest of the batch. ``write_results`` lays the results out on disk the same way for
both engines.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import trio

from ..errors import OanixError
from ..sched import JobSpec, Scheduler
from ..values import dumps_pretty
from ..wasi import WasiRuntime
from .formats import find_tasks, load_task
from .on_ray import run_on_ray
from .runner import TrialResult, failed_trial, run_trial

__all__ = ["Pick", "Progress", "Run", "plan_runs", "run_batch", "write_results"]

Run = tuple[Path, int]
"""One trial of a batch: the task directory and the attempt number (from 1)."""
Progress = Callable[[TrialResult], None]
"""Called with each result as its trial finishes (on the caller's thread)."""


@attrs.frozen
class Pick:
    """Which tasks of a batch run, and how many times each: ``names`` and ``excludes`` are
    globs on the task directory's name (``--task-name``, ``--exclude``)."""

    names: Sequence[str] = ()
    excludes: Sequence[str] = ()
    attempts: int = 1


def plan_runs(root: Path, pick: Pick = Pick()) -> list[Run]:
    """The runs of a batch over the task directories below ``root``.

    Raises:
        OanixError: no task below ``root``, none left after ``pick``, or attempts < 1.
    """
    if pick.attempts < 1:
        raise OanixError(f"--n-attempts must be at least 1, not {pick.attempts}")
    found = find_tasks(root)
    if not found:
        raise OanixError(f"no task (task.toml or task.yaml) below {root}")
    dirs = [d for d in found
            if (not pick.names or any(fnmatch.fnmatchcase(d.name, g) for g in pick.names))
            and not any(fnmatch.fnmatchcase(d.name, g) for g in pick.excludes)]
    if not dirs:
        raise OanixError(f"no task below {root} matches --task-name/--exclude")
    return [(d, n) for d in dirs for n in range(1, pick.attempts + 1)]


def run_batch(runs: Sequence[Run], agent: str = "oracle", *, concurrency: int = 2,
              ray: str | bool | None = None,
              progress: Progress | None = None) -> list[TrialResult]:
    """Run every trial of ``runs`` (see ``plan_runs``) with ``agent`` (a name the task
    runner resolves: ``oracle``, ``nop`` or ``module:callable``), ``concurrency`` at a
    time, here or on Ray (``ray``: an address such as ``"auto"`` or
    ``"ray://head:10001"``, or ``True`` to start a local Ray). Results come back in the
    order the trials finished, each carrying its attempt number.

    Raises:
        OanixError: ``concurrency`` below 1; with ``ray``, Ray missing or unreachable.
    """
    if concurrency < 1:
        raise OanixError(f"--concurrency must be at least 1, not {concurrency}")
    report = progress or (lambda _result: None)
    if ray is not None and ray is not False:
        return run_on_ray(runs, agent, concurrency, None if ray is True else ray, report)
    return trio.run(_run_local, runs, agent, concurrency, report)


def load_failure(path: Path, agent: str, attempt: int, error: OanixError) -> TrialResult:
    """The error row of a run whose task directory could not be loaded."""
    return attrs.evolve(failed_trial(path.name, agent, str(error)), attempt=attempt)


async def _run_local(runs: Sequence[Run], agent: str, concurrency: int,
                     report: Progress) -> list[TrialResult]:
    results: list[TrialResult] = []

    def done(result: TrialResult) -> None:
        results.append(result)
        report(result)

    with WasiRuntime() as runtime:
        trial = functools.partial(run_trial, runtime=runtime)
        async with Scheduler(max_concurrent=concurrency) as sched:
            async def one(path: Path, attempt: int) -> None:
                try:
                    spec = load_task(path)
                except OanixError as e:
                    done(load_failure(path, agent, attempt, e))
                    return
                r = await sched.submit(JobSpec.python(trial, spec, agent,
                                                      name=spec.name)).wait()
                res = (r.value if isinstance(r.value, TrialResult)
                       else failed_trial(path.name, agent, r.error or "did not finish"))
                done(attrs.evolve(res, attempt=attempt))

            async with trio.open_nursery() as nursery:
                for path, attempt in runs:
                    nursery.start_soon(one, path, attempt)
    return results


def write_results(out: Path, results: Sequence[TrialResult], attempts: bool = False) -> None:
    """``results.json`` and a folder per trial under ``out``: agent.log, verifier.log,
    changes.json, result.json (``<task>__<attempt>`` when tasks run more than once)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(dumps_pretty([r.to_json() for r in results]))
    seen: set[str] = set()
    for r in results:
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", r.task) or "task"
        if attempts:
            name += f"__{r.attempt}"
        while name in seen:
            name += "_"
        seen.add(name)
        folder = out / name
        folder.mkdir(exist_ok=True)
        (folder / "agent.log").write_text(r.agent_output)
        (folder / "verifier.log").write_text(r.verifier_output)
        changes = r.to_json()["changes"]
        (folder / "changes.json").write_bytes(dumps_pretty(changes))
        (folder / "result.json").write_bytes(dumps_pretty(r.to_json()))
