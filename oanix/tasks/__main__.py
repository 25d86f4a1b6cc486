"""Run Terminal-Bench / Harbor tasks without Docker.

    oanix-tasks [-v] run TASK_DIR [--agent oracle|nop|module:callable] [--json]
    oanix-tasks [-v] batch DIR [--agent ...] [--concurrency N] [--output DIR] [--json]
                               [--task-name GLOB]... [--exclude GLOB]... [--n-attempts N]

(``python -m oanix.tasks`` is the same.) ``run`` prints the reward and exits 0 only when
the trial passed (reward 1.0, or every named reward 1); 1 when it did not; 2 when the
task or the arguments are unusable, or the trial could not run (one line on stderr).
``batch`` runs every task below DIR, N at a time, with a progress line on a terminal
(trials in the order they finish), prints a table, and writes ``results.json`` and one
folder per trial (the agent's log, the verifier's output, the workspace diff) under
``--output`` (``jobs/<timestamp>/`` by default); a task that cannot load is one error row.
``--task-name`` keeps only the tasks whose directory name matches one of its globs,
``--exclude`` drops those matching one of its; ``--n-attempts N`` runs each task N times,
every row carrying its attempt number (the folders are ``<task>__<attempt>`` then).
It exits 0 when every trial passed. With ``--json`` the standard output is the JSON
document alone: what an agent prints goes to its trial's log. An agent that cannot be
loaded (a missing module or attribute, a module raising on import) is one line on stderr
and exit 2; ``batch`` still writes its results, every trial an error row. ``-v`` (before
or after the command) logs each trial's phases to stderr, ``-vv`` every command too.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import attrs
import trio

from .._verbose import add_verbose_flag, configure_logging
from ..errors import OanixError
from ..sched import JobSpec, Scheduler
from ..values import dumps_pretty
from ..wasi import WasiRuntime
from .formats import find_tasks, load_task
from .runner import TrialResult, failed_trial, resolve_agent, run_trial

PROG = "oanix-tasks"
EXIT_FAILED = 1
EXIT_USAGE = 2
_AGENT_HELP = ("oracle (runs the task's solution), nop (does nothing) or module:callable "
               "(a function agent(env, instruction)); default: oracle")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = _Parser(prog=prog, description=__doc__.splitlines()[0])
    add_verbose_flag(ap)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one task and print its reward")
    run.add_argument("task", type=Path, help="the task directory (task.toml or task.yaml)")
    run.add_argument("--agent", default="oracle", help=_AGENT_HELP)
    run.add_argument("--json", action="store_true",
                     help="print only the whole result as one JSON document")
    batch = sub.add_parser("batch", help="run every task below a directory")
    batch.add_argument("root", type=Path, help="a directory holding task directories")
    batch.add_argument("--agent", default="oracle", help=_AGENT_HELP)
    batch.add_argument("--concurrency", type=int, default=2,
                       help="how many trials run at once (default: 2)")
    batch.add_argument("--output", type=Path, default=None,
                       help="where results.json and the trials' folders go "
                            "(default: jobs/<timestamp>/)")
    batch.add_argument("--json", action="store_true",
                       help="print only the results as one JSON document")
    batch.add_argument("--task-name", action="append", default=[], metavar="GLOB",
                       help="run only the tasks whose directory name matches (repeatable)")
    batch.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="skip the tasks whose directory name matches (repeatable)")
    batch.add_argument("--n-attempts", type=int, default=1, metavar="N",
                       help="run each task N times (default: 1)")
    for p in (run, batch):
        add_verbose_flag(p, default=argparse.SUPPRESS)  # after the command too
        p.error = _Parser.error.__get__(p)  # type: ignore[method-assign]
    return ap


def _line(r: TrialResult, attempts: bool = False) -> str:
    reward = "-" if r.reward is None else f"{r.reward:g}"
    note = f"  ({r.error})" if r.error else ""
    if r.unsupported:
        note = "  (" + "; ".join(r.unsupported[:2]) + ")"
    attempt = f" {r.attempt:>7}" if attempts else ""
    return f"{r.task:32}{attempt} {r.status:24} {reward:>6} {r.total_seconds:7.1f}s{note}"


def _select(dirs: list[Path], names: Sequence[str], excludes: Sequence[str]) -> list[Path]:
    """The task directories a batch's ``--task-name`` / ``--exclude`` globs keep."""
    return [d for d in dirs
            if (not names or any(fnmatch.fnmatchcase(d.name, g) for g in names))
            and not any(fnmatch.fnmatchcase(d.name, g) for g in excludes)]


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = _parser(prog).parse_args(argv)
    configure_logging(args.verbose)
    try:
        if args.command == "run":
            resolve_agent(args.agent)
            return _run(args.task, args.agent, args.json, prog)
        return _batch(args.root, args.agent, args.concurrency, args.output, args.json,
                      _Pick(args.task_name, args.exclude, args.n_attempts))
    except OanixError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    """The ``oanix-tasks`` console script."""
    sys.exit(main())


def _run(task: Path, agent: str, as_json: bool, prog: str) -> int:
    spec = load_task(task)
    result = run_trial(spec, agent)
    if as_json:
        sys.stdout.buffer.write(dumps_pretty(result.to_json()))
    else:
        print(_line(result))
        print(f"reward: {'-' if result.reward is None else f'{result.reward:g}'}")
    if result.status == "error":
        print(f"{prog}: error: {result.error}", file=sys.stderr)
        return EXIT_USAGE
    return 0 if result.passed else EXIT_FAILED


@attrs.frozen
class _Pick:
    """Which tasks of a batch run, and how many times each."""

    names: Sequence[str] = ()
    excludes: Sequence[str] = ()
    attempts: int = 1


def _batch(root: Path, agent: str, concurrency: int, output: Path | None,
           as_json: bool, pick: _Pick = _Pick()) -> int:
    if concurrency < 1:
        raise OanixError(f"--concurrency must be at least 1, not {concurrency}")
    if pick.attempts < 1:
        raise OanixError(f"--n-attempts must be at least 1, not {pick.attempts}")
    found = find_tasks(root)
    if not found:
        raise OanixError(f"no task (task.toml or task.yaml) below {root}")
    dirs = _select(found, pick.names, pick.excludes)
    if not dirs:
        raise OanixError(f"no task below {root} matches --task-name/--exclude")
    runs = [(d, n) for d in dirs for n in range(1, pick.attempts + 1)]
    out = output or Path("jobs") / time.strftime("%Y-%m-%d__%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    try:
        resolve_agent(agent)
    except OanixError as e:
        unusable: OanixError | None = e
        results = [attrs.evolve(failed_trial(d.name, agent, str(e)), attempt=n)
                   for d, n in runs]
    else:
        unusable = None
        results = trio.run(_run_all, runs, agent, concurrency, sys.stderr.isatty())
    _write(out, results, pick.attempts > 1)
    passed = sum(r.passed for r in results)
    if as_json:
        sys.stdout.buffer.write(dumps_pretty([r.to_json() for r in results]))
    else:
        many = pick.attempts > 1
        attempt = f" {'attempt':>7}" if many else ""
        print(f"{'task':32}{attempt} {'status':24} {'reward':>6} {'time':>8}")
        for r in sorted(results, key=lambda r: (r.task, r.attempt)):
            print(_line(r, many))
        print(f"\n{passed}/{len(results)} passed")
        print(f"results in {out}")
    if unusable is not None:
        raise unusable
    return 0 if passed == len(results) else EXIT_FAILED


def _write(out: Path, results: list[TrialResult], attempts: bool = False) -> None:
    """``results.json`` and a folder per trial: agent.log, verifier.log, changes.json
    (``<task>__<attempt>`` when tasks run more than once)."""
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


async def _run_all(runs: list[tuple[Path, int]], agent: str, concurrency: int,
                   draw: bool) -> list[TrialResult]:
    results: list[TrialResult] = []
    started = time.monotonic()
    total = len(runs)

    def progress(last: str = "") -> None:
        if not draw:
            return
        width = 30
        filled = width * len(results) // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {len(results)}/{total}"
                         f" {time.monotonic() - started:5.1f}s {last[:40]:40}")
        sys.stderr.flush()

    with WasiRuntime() as runtime:
        trial = functools.partial(run_trial, runtime=runtime)
        async with Scheduler(max_concurrent=concurrency) as sched:
            async def one(path: Path, attempt: int) -> None:
                try:
                    spec = load_task(path)
                except OanixError as e:
                    results.append(attrs.evolve(failed_trial(path.name, agent, str(e)),
                                                attempt=attempt))
                    progress(path.name)
                    return
                h = sched.submit(JobSpec.python(trial, spec, agent, name=spec.name))
                r = await h.wait()
                res = (r.value if isinstance(r.value, TrialResult)
                       else failed_trial(path.name, agent, r.error or "did not finish"))
                results.append(attrs.evolve(res, attempt=attempt))
                progress(spec.name)

            progress()
            async with trio.open_nursery() as nursery:
                for path, attempt in runs:
                    nursery.start_soon(one, path, attempt)
    if draw:
        sys.stderr.write("\n")
    return results


def _module_entry() -> int:
    return main(prog="python -m oanix.tasks")


__all__ = ["entry", "main"]

if __name__ == "__main__":
    sys.exit(_module_entry())
