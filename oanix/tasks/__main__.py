"""Run Terminal-Bench / Harbor tasks without Docker.

    oanix-tasks [-v] run TASK_DIR [--agent oracle|nop|module:callable] [--json]
    oanix-tasks [-v] batch DIR [--agent ...] [--concurrency N] [--output DIR] [--json]
                               [--task-name GLOB]... [--exclude GLOB]... [--n-attempts N]
                               [--receipts] [--ray [ADDRESS]]

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
``--ray`` runs each trial as a Ray task (``oanix.tasks.on_ray``), on a local Ray or on the
cluster at ADDRESS; the results and the output folder are the same as a local batch's.
It exits 0 when every trial passed. With ``--json`` the standard output is the JSON
document alone: what an agent prints goes to its trial's log. An agent that cannot be
loaded (a missing module or attribute, a module raising on import) is one line on stderr
and exit 2; ``batch`` still writes its results, every trial an error row. ``-v`` (before
or after the command) logs each trial's phases to stderr, ``-vv`` every command too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import attrs

from .._verbose import add_verbose_flag, configure_logging
from ..errors import OanixError
from ..values import dumps_pretty
from .batch import Pick, plan_runs, run_batch, write_results
from .formats import load_task
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
    batch.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run each trial as a Ray task: on a local Ray started for the "
                            "batch, or on the cluster at ADDRESS (auto, ray://host:port); "
                            "needs oanix[ray]")
    for p in (run, batch):
        p.add_argument("--receipts", action="store_true",
                       help="give each trial a receipt (the task's content address, the "
                            "agent's outputs by sha256, status, rewards): in the JSON "
                            "result and, in a batch, receipt.json in each trial's folder")
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


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = _parser(prog).parse_args(argv)
    configure_logging(args.verbose)
    try:
        if args.command == "run":
            resolve_agent(args.agent)
            return _run(args.task, args.agent, args.json, prog, args.receipts)
        return _batch(args.root, args.agent, args.concurrency, args.output, args.json,
                      Pick(args.task_name, args.exclude, args.n_attempts), args.ray,
                      args.receipts)
    except OanixError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    """The ``oanix-tasks`` console script."""
    sys.exit(main())


def _run(task: Path, agent: str, as_json: bool, prog: str, receipts: bool = False) -> int:
    spec = load_task(task)
    result = run_trial(spec, agent, receipt=receipts)
    if as_json:
        sys.stdout.buffer.write(dumps_pretty(result.to_json()))
    else:
        print(_line(result))
        print(f"reward: {'-' if result.reward is None else f'{result.reward:g}'}")
    if result.status == "error":
        print(f"{prog}: error: {result.error}", file=sys.stderr)
        return EXIT_USAGE
    return 0 if result.passed else EXIT_FAILED


def _batch(root: Path, agent: str, concurrency: int, output: Path | None,
           as_json: bool, pick: Pick | None = None, ray: str | None = None,
           receipts: bool = False) -> int:
    if concurrency < 1:
        raise OanixError(f"--concurrency must be at least 1, not {concurrency}")
    pick = pick or Pick()
    runs = plan_runs(root, pick)
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
        bar = _ProgressBar(len(runs), sys.stderr.isatty())
        results = run_batch(runs, agent, concurrency=concurrency,
                            ray=None if ray is None else (ray or True),
                            receipts=receipts, progress=bar)
        bar.finish()
    write_results(out, results, pick.attempts > 1)
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


class _ProgressBar:
    """The progress line a batch draws on a terminal (trials in the order they finish)."""

    def __init__(self, total: int, draw: bool) -> None:
        self.total, self.draw, self.done = total, draw, 0
        self.started = time.monotonic()
        self._show()

    def __call__(self, result: TrialResult) -> None:
        self.done += 1
        self._show(result.task)

    def _show(self, last: str = "") -> None:
        if not self.draw:
            return
        width = 30
        filled = width * self.done // self.total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                         f" {time.monotonic() - self.started:5.1f}s {last[:40]:40}")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.draw:
            sys.stderr.write("\n")


def _module_entry() -> int:
    return main(prog="python -m oanix.tasks")


__all__ = ["entry", "main"]

if __name__ == "__main__":
    sys.exit(_module_entry())
