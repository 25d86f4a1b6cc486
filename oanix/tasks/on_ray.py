"""A batch's trials as Ray tasks: the distributed engine behind ``oanix-tasks batch --ray``.

Each trial is one Ray task. The task directory travels with it (packed into a gzip tar in
memory, unpacked on the worker into a private temporary directory with tarfile's "data"
filter), so workers need oanix installed but not the tasks; the worker runs the trial
exactly as a local batch does and returns its ``TrialResult``. At most ``concurrency``
trials are in flight; results come back in the order they finish.

A worker that dies in the middle of a trial (killed, out of memory, its node lost) is a
system failure: Ray runs the task again, up to ``RETRIES`` times; a trial is a pure
function of its task directory and agent, so a retry is safe. A trial that raises is not
retried (the runner turns what a trial does wrong into a result row already); one that
still fails after the retries is an error row naming Ray's reason.

``ray`` is an extra (``pip install 'oanix[ray]'``), imported on first use. ``address``
None starts a local Ray for the batch (``concurrency`` CPUs) and stops it afterwards;
otherwise it joins that cluster (``"auto"``, ``"ray://head:10001"``) and leaves it up.
An agent given as ``module:callable`` must be importable on the workers.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import attrs

from ..errors import OanixError
from .formats import load_task
from .runner import TrialResult, failed_trial, run_trial

__all__ = ["RETRIES", "pack_task", "run_on_ray", "unpack_and_run"]

RETRIES: Final = 3
"""How many times Ray runs a trial again after its worker died."""


def _ray() -> ModuleType:
    try:
        return import_module("ray")
    except ImportError:
        raise OanixError("--ray needs Ray: pip install 'oanix[ray]'") from None


def pack_task(path: Path) -> bytes:
    """The task directory ``path`` as a gzip tar (links kept as links, never followed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(path, arcname=path.name)
    return buf.getvalue()


def unpack_and_run(packed: bytes, name: str, agent: str, attempt: int) -> TrialResult:
    """What a Ray worker does: unpack the task, run the trial, return its result."""
    with tempfile.TemporaryDirectory(prefix="oanix-ray-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        try:
            spec = load_task(Path(tmp) / name)
        except OanixError as e:
            return attrs.evolve(failed_trial(name, agent, str(e)), attempt=attempt)
        return attrs.evolve(run_trial(spec, agent), attempt=attempt)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what is written to file descriptor 1 to 2 meanwhile: Ray's driver threads and
    the processes it starts print notices (a worker died, a task is retried) on standard
    output, which belongs to the batch's own report (``--json``: the document alone)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_on_ray(runs: Sequence[tuple[Path, int]], agent: str, concurrency: int,
               address: str | None, report: Callable[[TrialResult], None]
               ) -> list[TrialResult]:
    """Run ``runs`` as Ray tasks (see the module docstring); ``report`` sees each result
    as it arrives.

    Raises:
        OanixError: Ray is not installed or the cluster cannot be reached.
    """
    ray = _ray()
    with _stdout_to_stderr():
        return _run(ray, runs, agent, concurrency, address, report)


def _run(ray: ModuleType, runs: Sequence[tuple[Path, int]], agent: str, concurrency: int,
         address: str | None, report: Callable[[TrialResult], None]) -> list[TrialResult]:
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address is None:
                ray.init(num_cpus=concurrency, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise OanixError(f"cannot reach Ray at {address or 'a local Ray'}: {e}") from None
    remote = ray.remote(num_cpus=1, max_retries=RETRIES,
                        retry_exceptions=False)(unpack_and_run)
    results: list[TrialResult] = []
    try:
        todo = list(runs)
        in_flight: dict[Any, tuple[Path, int]] = {}
        while todo or in_flight:
            while todo and len(in_flight) < concurrency:
                path, attempt = todo.pop(0)
                in_flight[remote.remote(pack_task(path), path.name, agent, attempt)] = (
                    path, attempt)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                path, attempt = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as e:
                    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    result = attrs.evolve(failed_trial(path.name, agent,
                                                       f"on Ray: {reason}"), attempt=attempt)
                results.append(result)
                report(result)
    finally:
        if started_here:
            ray.shutdown()
    return results
