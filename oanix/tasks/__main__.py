"""Run Terminal-Bench / Harbor tasks without Docker.

    python -m oanix.tasks run TASK_DIR [--agent oracle|nop|module:callable] [--json]
    python -m oanix.tasks batch DIR [--agent ...] [--concurrency N] [--output results.json]

``run`` prints the reward and exits 0 only when the trial passed (reward 1.0, or every
named reward 1); 1 when it did not; 2 when the task or the arguments are unusable (one
line on stderr). ``batch`` runs every task below DIR, N at a time, with a progress bar,
prints a table and writes the results as JSON; it exits 0 when every trial passed. An
agent that cannot be loaded (a missing module or attribute, a module raising on import)
is one line on stderr and exit 2; ``batch`` still writes its table and results, every
trial an error row.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import trio

from ..errors import OanixError
from ..sched import JobSpec, Scheduler
from ..values import dumps_pretty
from ..wasi import WasiRuntime
from .formats import TaskSpec, find_tasks, load_task
from .runner import TrialResult, failed_trial, resolve_agent, run_trial

PROG = "python -m oanix.tasks"
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one task")
    run.add_argument("task", type=Path)
    run.add_argument("--agent", default="oracle")
    run.add_argument("--json", action="store_true", help="print the whole result as JSON")
    batch = sub.add_parser("batch", help="run every task below a directory")
    batch.add_argument("root", type=Path)
    batch.add_argument("--agent", default="oracle")
    batch.add_argument("--concurrency", type=int, default=2)
    batch.add_argument("--output", type=Path, default=Path("results.json"))
    for p in (run, batch):
        p.error = _Parser.error.__get__(p)  # type: ignore[method-assign]
    return ap


def _line(r: TrialResult) -> str:
    reward = "-" if r.reward is None else f"{r.reward:g}"
    note = f"  ({r.error})" if r.error else ""
    if r.unsupported:
        note = "  (" + "; ".join(r.unsupported[:2]) + ")"
    return f"{r.task:32} {r.status:24} {reward:>6} {r.total_seconds:7.1f}s{note}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            resolve_agent(args.agent)
            return _run(args.task, args.agent, args.json)
        return _batch(args.root, args.agent, args.concurrency, args.output)
    except OanixError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _run(task: Path, agent: str, as_json: bool) -> int:
    spec = load_task(task)
    result = run_trial(spec, agent)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(_line(result))
        print(f"reward: {'-' if result.reward is None else f'{result.reward:g}'}")
    return 0 if result.passed else EXIT_FAILED


def _batch(root: Path, agent: str, concurrency: int, output: Path) -> int:
    if concurrency < 1:
        raise OanixError(f"--concurrency must be at least 1, not {concurrency}")
    dirs = find_tasks(root)
    if not dirs:
        raise OanixError(f"no task (task.toml or task.yaml) below {root}")
    specs = [load_task(d) for d in dirs]
    try:
        resolve_agent(agent)
    except OanixError as e:
        unusable: OanixError | None = e
        results = [failed_trial(spec, agent, str(e)) for spec in specs]
    else:
        unusable = None
        results = trio.run(_run_all, specs, agent, concurrency)
    print(f"{'task':32} {'status':24} {'reward':>6} {'time':>8}")
    for r in results:
        print(_line(r))
    passed = sum(r.passed for r in results)
    print(f"\n{passed}/{len(results)} passed")
    output.write_bytes(dumps_pretty([r.to_json() for r in results]))
    print(f"results written to {output}")
    if unusable is not None:
        raise unusable
    return 0 if passed == len(results) else EXIT_FAILED


async def _run_all(specs: list[TaskSpec], agent: str, concurrency: int) -> list[TrialResult]:
    done = 0
    started = time.monotonic()

    def progress() -> None:
        width = 30
        filled = width * done // len(specs)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{len(specs)} "
                         f"{time.monotonic() - started:5.1f}s")
        sys.stderr.flush()

    with WasiRuntime() as runtime:
        async with Scheduler(max_concurrent=concurrency) as sched:
            trial = functools.partial(run_trial, runtime=runtime)
            handles = [sched.submit(JobSpec.python(trial, spec, agent, name=spec.name))
                       for spec in specs]
            results: list[TrialResult] = []
            progress()
            for spec, h in zip(specs, handles, strict=True):
                r = await h.wait()
                results.append(r.value if isinstance(r.value, TrialResult)
                               else failed_trial(spec, agent, r.error or "did not finish"))
                done += 1
                progress()
    sys.stderr.write("\n")
    return results


if __name__ == "__main__":
    sys.exit(main())
