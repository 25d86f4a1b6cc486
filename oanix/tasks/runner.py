"""Trials: a task's environment, an agent, then the verifier, to a reward, without Docker.

1. The environment is built from the task's Dockerfile as far as it can be honoured
   (``dockerfile``): build-context files are copied into an image tree and ``RUN`` lines
   run with the oanix shell. Anything that cannot be honoured ends the trial as
   ``environment_unsupported``, with the lines.
2. The agent works in an ``OanixEnv`` whose root is a copy-on-write layer over the image,
   in the image's ``WORKDIR``: ``agent(env, instruction)``. The oracle agent runs the
   task's solution script; the nop agent does nothing. The agent timeout applies to the
   environment: each command and run gets at most the time left, and when it is up the
   environment is cancelled (running commands stop, later calls raise ``TimedOut``), the
   trial fails and the environment is closed.
3. The verifier runs in a fresh namespace: another copy-on-write layer over the agent's
   final tree, ``/tests``, and a ``/logs/verifier`` that only it can write (the verifier
   view of the trial's TaskFs; the agent saw that area read-only). The test script runs
   with the shell; its uv/pytest preamble runs pytest in the sandbox (``verifier``).
4. The reward comes from ``reward.txt`` / ``reward.json`` (Harbor), or from the tests'
   outcomes as the verifier's pytest reported them (Terminal-Bench 1: every test passed).
"""

from __future__ import annotations

import importlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal

import attrs
import yaml

from .. import paths
from ..changes import Changes
from ..env import Limits, OanixEnv
from ..errors import InvalidArgument, OanixError
from ..fs.cow import CowFs
from ..fs.func import FuncFs
from ..fs.mem import MemFs
from ..fs.workspace import WorkspaceFs
from ..services.task import TaskFs, TaskInfo
from ..wasi import WasiRuntime
from ..wasi.python import NO_DIST_PACKAGES
from ..wasi.receipt import now_utc
from .base_image import seed_base
from .capture import captured_prints
from .dockerfile import Copy, RunStep, parse_dockerfile
from .formats import TaskSpec, load_task
from .receipt import TrialReceipt, trial_receipt
from .standins import Userland
from .verifier import install_verifier_tools

__all__ = ["Agent", "TrialResult", "TrialStatus", "failed_trial", "resolve_agent", "run_trial"]

log = logging.getLogger(__name__)

Agent = Callable[[OanixEnv, str], object]
TrialStatus = Literal["passed", "failed", "agent_timeout", "verifier_timeout",
                      "environment_unsupported", "error"]


@attrs.frozen
class TrialResult:
    """What a trial gave: the reward, how each test went, timings, logs, the agent's diff.

    ``reward`` is the main number (reward.txt, or the mean of reward.json's metrics, or
    1.0/0.0 from pytest for Terminal-Bench 1); ``rewards`` are the named metrics.
    ``attempt`` numbers the runs of one task in a batch (1 when it runs once).
    ``passed`` is true when the reward is 1.0, or every named reward is 1.
    """

    task: str
    agent: str
    status: TrialStatus
    reward: float | None
    rewards: Mapping[str, float]
    tests: tuple[tuple[str, str], ...]
    agent_seconds: float
    verifier_seconds: float
    total_seconds: float
    changes: Changes
    agent_output: str
    verifier_output: str
    unsupported: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    steps: tuple[Mapping[str, Any], ...] = ()
    attempt: int = 1
    receipt: TrialReceipt | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        d = attrs.asdict(self, recurse=False)
        d["rewards"] = dict(self.rewards)
        d["tests"] = [list(t) for t in self.tests]
        d["changes"] = {"added": list(self.changes.added),
                        "modified": list(self.changes.modified),
                        "deleted": list(self.changes.deleted)}
        d["unsupported"], d["notes"] = list(self.unsupported), list(self.notes)
        d["steps"] = [dict(s) for s in self.steps]
        d["receipt"] = None if self.receipt is None else self.receipt.to_json()
        d["passed"] = self.passed
        return d


def failed_trial(task: str, agent: str, error: str) -> TrialResult:
    """The result of a trial of ``task`` (its name) that could not run at all."""
    return TrialResult(task, agent, "error", None, {}, (), 0.0, 0.0, 0.0, Changes(),
                       "", "", error=error)


# -- agents ---------------------------------------------------------------------------------


def nop_agent(env: OanixEnv, instruction: str) -> None:
    """Does nothing: a task must fail with it."""


def resolve_agent(name: str | Agent) -> tuple[str, Agent | None]:
    """``"oracle"``, ``"nop"``, ``"module:callable"`` or a callable -> (name, agent);
    the oracle is ``None`` (the runner gives it the solution).

    Raises:
        InvalidArgument: a malformed name, a module that cannot be imported (or raises
            while it is), a missing or non-callable attribute.
    """
    if callable(name):
        return getattr(name, "__name__", "agent"), name
    if name == "oracle":
        return "oracle", None
    if name == "nop":
        return "nop", nop_agent
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise InvalidArgument(f"agent {name!r}: use oracle, nop or module:callable")
    try:
        loaded = importlib.import_module(module)
    except ImportError as e:
        raise InvalidArgument(f"agent {name!r}: {e}") from None
    except (Exception, SystemExit) as e:  # the module's own code failed: say so, briefly
        raise InvalidArgument(f"agent {name!r}: importing {module} raised "
                              f"{type(e).__name__}: {e}") from None
    fn = getattr(loaded, attr, None)
    if fn is None:
        raise InvalidArgument(f"agent {name!r}: module {module} has no {attr!r}")
    if not callable(fn):
        raise InvalidArgument(f"agent {name!r} is not callable")
    return name, fn


# -- the environment ------------------------------------------------------------------------


def _host_tree(path: Path, rel: str = "") -> tuple[list[tuple[Path, str]], list[str]]:
    """The directories (named with a trailing ``/``) and regular files below directory
    ``path``, relative to it, and what was left out: a symbolic link is never followed
    (the image tree has no links to copy it as), nor is a special file read."""
    entries: list[tuple[Path, str]] = []
    refused: list[str] = []
    with os.scandir(path) as it:
        found = sorted(it, key=lambda e: e.name)
    for e in found:
        name = f"{rel}/{e.name}" if rel else e.name
        if e.is_symlink():
            refused.append(f"{name} is a symbolic link")
        elif e.is_dir(follow_symlinks=False):
            entries.append((Path(e.path), name + "/"))
            more, bad = _host_tree(Path(e.path), name)
            entries += more
            refused += bad
        elif e.is_file(follow_symlinks=False):
            entries.append((Path(e.path), name))
        else:
            refused.append(f"{name} is not a regular file or a directory")
    return entries, refused


def _context_path(context: Path, src: str) -> tuple[Path | None, str]:
    """Where build-context source ``src`` is, or None and why: a source climbing out
    of the context (``..``), missing, or reached through a symbolic link is refused."""
    where = context
    for part in PurePosixPath(src).parts:
        if part in ("/", "."):
            continue
        if part == "..":
            if where == context:
                return None, "outside the build context"
            where = where.parent
            continue
        where = where / part
        try:
            mode = where.lstat().st_mode
        except OSError:
            return None, "not in the build context"
        if stat.S_ISLNK(mode):
            shown = where.relative_to(context).as_posix()
            return None, f"{shown} is a symbolic link, which is not followed"
    return where, ""


def _read_regular(host: Path) -> bytes:
    """A regular file's bytes; a link or special file put there since is refused."""
    fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{host} is not a regular file")
        return f.read()


def build_image(task: TaskSpec, runtime: WasiRuntime) -> tuple[MemFs, str, dict[str, str],
                                                                list[str]]:
    """The task's image tree, its WORKDIR, its ENV, and what could not be honoured."""
    if task.dockerfile is None:
        image = MemFs()
        seed_base(image, None)
        image.makedirs("/app")
        return image, "/app", {}, []
    plan = parse_dockerfile(task.dockerfile.read_text(encoding="utf-8"))
    unsupported = list(plan.unsupported)
    trees: list[MemFs] = []
    for stage in plan.stages:
        base = stage.base or ""
        tree = MemFs()
        if base.startswith("stage:"):
            copy_tree(trees[int(base[6:])], "/", tree, "/")
        else:
            seed_base(tree, base)
        tree.makedirs(stage.workdir, exist_ok=True)
        _build_stage(task, stage.steps, tree, trees, runtime, unsupported)
        trees.append(tree)
    return trees[-1], plan.workdir, dict(plan.env), unsupported


def _build_stage(task: TaskSpec, steps: Sequence[Copy | RunStep], image: MemFs,
                 stages: list[MemFs], runtime: WasiRuntime, unsupported: list[str]) -> None:
    """Run one stage's COPY and RUN steps over ``image``, with the Debian stand-ins."""
    land = Userland(("python3", "python"))
    for step in steps:
        if isinstance(step, Copy):
            if step.content is not None:
                image.makedirs(paths.dirname(step.dest), exist_ok=True)
                image.write_bytes(step.dest, step.content.encode())
            elif step.from_stage is not None:
                for src in step.sources:
                    _copy_from_stage(stages[step.from_stage], src, image, step.dest,
                                     unsupported)
            else:
                for src in step.sources:
                    _copy_in(image, task.build_context, src, step.dest, unsupported)
            continue
        _, command, workdir, env = step
        image.makedirs(workdir, exist_ok=True)
        before = len(land.unsupported)
        with OanixEnv(workspace=image, workspace_at="/", env={"HOME": "/root", **dict(env)},
                      cwd=workdir, runtime=runtime, limits=Limits(timeout=300.0),
                      commands=land.commands()) as build:
            res = build.exec(command)
        unsupported.extend(u for u in land.unsupported[before:] if u not in unsupported)
        if res.exit_code != 0 and len(land.unsupported) == before:
            unsupported.append(f"RUN {command} (exit {res.exit_code}: "
                               f"{res.stderr_text.strip().splitlines()[-1:] or ''})")


def _copy_from_stage(stage: MemFs, src: str, image: MemFs, dest: str,
                     unsupported: list[str]) -> None:
    """``COPY --from=<stage> src dest``: Docker's rules for a directory or a file."""
    src = paths.normalize(src)
    if not stage.exists(src):
        unsupported.append(f"COPY --from {src}: not in that stage")
        return
    if stage.is_dir(src):
        copy_tree(stage, src, image, dest)
        return
    target = paths.join(dest, paths.basename(src)) if (
        dest.endswith("/") or image.is_dir(dest)) else paths.normalize(dest)
    image.makedirs(paths.dirname(target), exist_ok=True)
    image.write_bytes(target, stage.read_bytes(src))


def copy_tree(src_fs: MemFs, src: str, dst_fs: MemFs, dest: str) -> None:
    """Copy the files and directories below ``src`` in ``src_fs`` to ``dest``."""
    for top, dirs, files in src_fs.walk(src):
        rel = paths.normalize(top)[len(paths.normalize(src)):].lstrip("/")
        here = paths.join(dest, rel) if rel else paths.normalize(dest)
        dst_fs.makedirs(here, exist_ok=True)
        for d in dirs:
            dst_fs.makedirs(paths.join(here, d), exist_ok=True)
        for f in files:
            dst_fs.write_bytes(paths.join(here, f), src_fs.read_bytes(paths.join(top, f)))


def _copy_in(image: MemFs, context: Path, src: str, dest: str, unsupported: list[str]) -> None:
    root = context.resolve()
    origin, why = _context_path(root, src)
    if origin is None:
        unsupported.append(f"COPY {src}: {why}")
        return
    try:
        is_dir = stat.S_ISDIR(origin.lstat().st_mode)
        entries, refused = _host_tree(origin) if is_dir else ([(origin, "")], [])
        if refused:
            at = origin.relative_to(root).as_posix()
            unsupported.extend(f"COPY {src}: {paths.join(at, r).lstrip('/')}, which is not "
                               "copied" for r in refused)
            return
        dest_is_dir = dest.endswith("/") or is_dir or image.is_dir(dest)
        if is_dir:
            image.makedirs(dest, exist_ok=True)
        for host, rel in entries:
            target = paths.join(dest, rel) if dest_is_dir and rel else (
                paths.join(dest, host.name) if dest_is_dir else paths.normalize(dest))
            if rel.endswith("/"):
                image.makedirs(target, exist_ok=True)
                continue
            image.makedirs(paths.dirname(target), exist_ok=True)
            image.write_bytes(target, _read_regular(host))
    except OSError as e:
        unsupported.append(f"COPY {src}: {e.strerror or e}")


# -- the trial ------------------------------------------------------------------------------


_GRACE = 2.0  # seconds a cancelled worker gets to return


def _run_with_timeout(fn: Callable[[], object], timeout: float, env: OanixEnv
                      ) -> tuple[bool, str | None]:
    """Run ``fn`` (working in ``env``) in a worker thread: ``(finished, error)``.

    ``env`` expires after ``timeout``: its commands and runs get at most the time left.
    At the timeout the environment is cancelled, which stops its shell work at the next
    check and makes every later call on it raise ``TimedOut``; the worker is given a
    short grace to return (a thread cannot be killed: one that keeps going without
    calling the environment is abandoned)."""
    box: dict[str, str] = {}

    def target() -> None:
        try:
            fn()
        except BaseException as e:  # reported to the caller
            box["error"] = f"{type(e).__name__}: {e}"

    env.expire_after(timeout)
    t = threading.Thread(target=target, daemon=True, name="oanix-trial")
    t.start()
    t.join(timeout)
    # the work ends at the deadline (its last command stopped): that is a timeout too
    finished = not t.is_alive() and not env.timed_out
    if not finished:
        env.cancel("timed out")
        t.join(_GRACE)
    return (finished, box.get("error"))


def run_trial(task: TaskSpec | str | Path, agent: str | Agent = "oracle", *,
              runtime: WasiRuntime | None = None,
              agent_timeout: float | None = None, receipt: bool = False) -> TrialResult:
    """Run one trial of ``task`` with ``agent`` and return its result; with ``receipt``
    the result carries a ``TrialReceipt`` (see ``oanix.tasks.receipt``).

    Raises:
        TaskError: the task directory cannot be loaded.
        InvalidArgument: an unknown agent.
    """
    spec = task if isinstance(task, TaskSpec) else load_task(task)
    agent_name, agent_fn = resolve_agent(agent)
    own_runtime = runtime is None
    rt = runtime or WasiRuntime()
    t0 = time.monotonic()
    started = now_utc()
    workspace: CowFs | None = None

    def result(status: TrialStatus, **kw: Any) -> TrialResult:
        base: dict[str, Any] = dict(task=spec.name, agent=agent_name, status=status,
                                    reward=None, rewards={}, tests=(), agent_seconds=0.0,
                                    verifier_seconds=0.0, changes=Changes(),
                                    agent_output="", verifier_output="")
        base.update(kw)
        total = time.monotonic() - t0
        if receipt:
            base["receipt"] = trial_receipt(spec.name, spec.path, agent_name, status,
                                            base["reward"], base["rewards"],
                                            base["changes"], workspace, started, total)
        res = TrialResult(total_seconds=total, **base)
        log.info("trial %s (agent %s): result %s, reward %s, in %.2f s%s", spec.name,
                 agent_name, res.status, res.reward, res.total_seconds,
                 f": {res.error}" if res.error else "")
        return res

    try:
        problem = _no_solution(spec) if agent_fn is None else None
        if problem:
            return result("error", error=problem)
        log.info("trial %s: build: the image", spec.name)
        t_build = time.monotonic()
        image, workdir, env_vars, unsupported = build_image(spec, rt)
        log.info("trial %s: build: done in %.2f s", spec.name, time.monotonic() - t_build)
        unsupported.extend(environment_problems(spec))
        if unsupported:
            return result("environment_unsupported", unsupported=tuple(unsupported))
        env_vars = {"HOME": "/root", **env_vars, **dict(spec.environment_env)}
        workspace = CowFs(image)
        notes = start_entrypoint(spec, workspace, workdir, env_vars, rt)
        if spec.steps:
            from .steps import run_steps

            status, kw = run_steps(spec, agent_fn, workspace, workdir, env_vars, rt,
                                   agent_timeout)
        else:
            status, kw = run_phase(spec, agent_fn, spec.instruction, workspace, workdir,
                                   env_vars, rt, agent_timeout or spec.agent_timeout_sec)
        kw["notes"] = (*notes, *kw.get("notes", ()))
        if notes and status in _MAYBE_THE_ENVIRONMENTS:
            # The image's ENTRYPOINT/CMD did not run as under Docker (a server the tests
            # reach, most often): a failing verifier may be the environment's doing, so
            # the trial is not charged to the agent. A pass stands.
            status, kw["unsupported"] = "environment_unsupported", tuple(notes)
        return result(status, **kw)
    except OanixError as e:
        return result("error", error=f"{type(e).__name__}: {e}")
    finally:
        if own_runtime:
            rt.close()


# The verdicts a missing ENTRYPOINT/CMD can cause (see run_trial).
_MAYBE_THE_ENVIRONMENTS: Final = ("failed", "verifier_timeout")


def _no_solution(spec: TaskSpec) -> str | None:
    """Why the oracle cannot run on ``spec``, or None."""
    if spec.steps and all(s.solution is not None for s in spec.steps):
        return None
    if spec.solution is None:
        return f"{spec.path}: no solution (solution/solve.sh or solution.sh) for the oracle"
    return None


def environment_problems(spec: TaskSpec) -> list[str]:
    """What of the task's environment (besides its Dockerfile) cannot be provided."""
    out: list[str] = []
    if spec.dockerfile is None and spec.docker_image:
        out.append(f"docker_image {spec.docker_image}: a prebuilt image cannot be used "
                   "without Docker (give the task an environment/Dockerfile)")
    if len(spec.services) > 1:
        where = f" ({spec.compose_file.name})" if spec.compose_file else ""
        out.append(f"services: {', '.join(spec.services)}{where}: only the main container "
                   "is provided, no other service")
    return out


def start_entrypoint(spec: TaskSpec, workspace: CowFs, workdir: str,
                     env_vars: dict[str, str], rt: WasiRuntime) -> list[str]:
    """Run the image's ENTRYPOINT/CMD at environment start, as far as the shell can;
    notes on what it could not run."""
    if spec.dockerfile is None:
        return []
    line = parse_dockerfile(spec.dockerfile.read_text(encoding="utf-8")).start_command
    if line is None:
        return []
    box: dict[str, Any] = {}
    env = OanixEnv(workspace=workspace, workspace_at="/", env=env_vars, cwd=workdir,
                   runtime=rt, limits=Limits(timeout=30.0))
    finished, error = _run_with_timeout(lambda: box.update(res=env.exec(line)), 30.0, env)
    env.close()
    res = box.get("res")
    if not finished:
        return [f"ENTRYPOINT/CMD {line!r} still running after 30 s: stopped"]
    if error or res is None:
        return [f"ENTRYPOINT/CMD {line!r} could not run here: {error}"]
    why = (res.stderr_text.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
    if res.exit_code != 0:
        return [f"ENTRYPOINT/CMD {line!r} could not run here: {why}"]
    if res.stderr.strip():  # a part of it failed (a server started with `&`, most often)
        return [f"ENTRYPOINT/CMD {line!r} reported an error here: {why}"]
    return []


_AGENT_LOG_DIRS = ("/logs/agent", "/logs/artifacts")


def dev_fs() -> FuncFs:
    """The ``/dev`` of a task's agent and verifier: ``null`` (reads empty, writes gone),
    which programs open by name (pytest's logging, ``subprocess.DEVNULL``)."""
    return FuncFs().read_write("/null", lambda: b"", lambda data: None)


def run_phase(spec: TaskSpec, agent_fn: Agent | None, instruction: str, workspace: CowFs,
              workdir: str, env_vars: dict[str, str], rt: WasiRuntime, a_timeout: float,
              prepare: Callable[[OanixEnv], str | None] | None = None
              ) -> tuple[TrialStatus, dict[str, Any]]:
    """One agent turn on ``instruction`` over ``workspace``, then the verifier of ``spec``:
    the status and the result's fields. ``prepare`` runs first in the agent's
    environment (a step's setup); the error it returns ends the phase."""
    taskfs = TaskFs(TaskInfo(spec.name, instruction,
                             agent_timeout_sec=a_timeout,
                             verifier_timeout_sec=spec.verifier_timeout_sec))
    land = Userland(("python3", "python"))
    agent_env = OanixEnv(workspace=workspace, workspace_at="/", task=taskfs,
                         env=env_vars, cwd=workdir, runtime=rt,
                         limits=Limits(timeout=a_timeout), commands=land.commands())
    for d in _AGENT_LOG_DIRS:  # Harbor's plain directories beside oanix's own logs
        agent_env.namespace.mount(d, MemFs())
    agent_env.namespace.mount("/dev", dev_fs())
    transcript: list[str] = []

    def act() -> None:
        if prepare is not None:
            problem = prepare(agent_env)
            if problem:
                raise InvalidArgument(problem)
        if agent_fn is None:
            _oracle(spec, agent_env, transcript)
            return
        with captured_prints() as printed:
            try:
                agent_fn(agent_env, instruction)
            finally:
                transcript.append(printed.getvalue())

    taskfs.start()
    log.info("trial %s: agent: started (timeout %g s)", spec.name, a_timeout)
    t_agent = time.monotonic()
    finished, error = _run_with_timeout(act, a_timeout, agent_env)
    agent_seconds = time.monotonic() - t_agent
    log.info("trial %s: agent: %s in %.2f s%s", spec.name,
             "finished" if finished else "timed out", agent_seconds,
             f" ({error})" if error else "")
    agent_output = "".join(transcript)
    if not finished:
        taskfs.fail(f"agent timed out after {a_timeout:g} s")
        agent_env.fail("agent timeout")
        agent_env.close()
        return "agent_timeout", dict(agent_seconds=agent_seconds, reward=0.0,
                                     agent_output=agent_output,
                                     error=f"the agent did not finish in {a_timeout:g} s")
    taskfs.complete()
    agent_env.close()
    if land.unsupported:
        return "environment_unsupported", dict(agent_seconds=agent_seconds,
                                               agent_output=agent_output,
                                               unsupported=tuple(land.unsupported))
    changes = workspace.changes()
    log.info("trial %s: verify: started", spec.name)
    verdict = _verify(spec, taskfs, workspace, workdir, env_vars, rt)
    log.info("trial %s: verify: %s, reward %s, in %.2f s", spec.name, verdict.status,
             verdict.reward, verdict.seconds)
    return verdict.status, dict(
        reward=verdict.reward, rewards=verdict.rewards, tests=verdict.tests,
        agent_seconds=agent_seconds, verifier_seconds=verdict.seconds, changes=changes,
        agent_output=agent_output, verifier_output=verdict.output,
        unsupported=verdict.unsupported, notes=verdict.notes, error=error or verdict.error)


def _oracle(spec: TaskSpec, env: OanixEnv, transcript: list[str]) -> None:
    """Run the task's solution as the image's shell would: the oracle agent.
    Terminal-Bench 1's ``solution.yaml`` is a list of ``command`` entries, run in turn."""
    if spec.solution is None:
        raise InvalidArgument(f"{spec.path}: no solution script for the oracle agent")
    solution_dir = spec.solution.parent
    at = "/solution" if spec.format == "harbor" else "/oracle"
    env.namespace.mount(at, WorkspaceFs(solution_dir, readonly=True))
    for command in _solution_commands(spec.solution):
        res = env.exec(command)
        transcript.append(res.stdout_text + res.stderr_text)
        if res.exit_code != 0:
            transcript.append(f"[solution exited {res.exit_code}]\n")


def _solution_commands(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix not in (".yaml", ".yml"):
        return [text]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidArgument(f"{path}: not valid YAML: {e}") from None
    entries = data if isinstance(data, list) else [data]
    commands = [e.get("command") if isinstance(e, dict) else e for e in entries]
    if not all(isinstance(c, str) for c in commands):
        raise InvalidArgument(f"{path}: expected a list of entries with a 'command'")
    return [str(c) for c in commands]


@attrs.frozen
class _Verdict:
    status: TrialStatus
    reward: float | None
    rewards: Mapping[str, float]
    tests: tuple[tuple[str, str], ...]
    seconds: float
    output: str
    unsupported: tuple[str, ...]
    notes: tuple[str, ...]
    error: str | None


def _verify(spec: TaskSpec, taskfs: TaskFs, agent_tree: CowFs, workdir: str,
            env_vars: dict[str, str], rt: WasiRuntime) -> _Verdict:
    if spec.test_script is None or spec.tests_dir is None:
        return _Verdict("error", None, {}, (), 0.0, "", (), (),
                        f"{spec.path}: no test script")
    home = MemFs()
    home.makedirs("/.local/bin")
    home.write_bytes("/.local/bin/env", b"")
    venv = OanixEnv(workspace=CowFs(agent_tree), workspace_at="/",
                    mounts={"/tests": WorkspaceFs(spec.tests_dir, readonly=True),
                            "/task": taskfs.verifier_view(), "/root": home, "/dev": dev_fs()},
                    env={**env_vars, **dict(spec.verifier_env), "TEST_DIR": "/tests",
                         "HOME": "/root", NO_DIST_PACKAGES: "1"},
                    cwd=workdir, runtime=rt,
                    limits=Limits(timeout=spec.verifier_timeout_sec, fuel=None,
                                  memory_limit=1 << 30))
    venv.namespace.bind("/task/verifier", "/logs/verifier")
    tools = install_verifier_tools(venv)
    box: dict[str, Any] = {}
    t0 = time.monotonic()
    finished, error = _run_with_timeout(
        lambda: box.update(res=venv.exec(spec.test_script.read_text(encoding="utf-8"))
                           if spec.test_script else None),
        spec.verifier_timeout_sec, venv)
    seconds = time.monotonic() - t0
    venv.close()
    unsupported, notes = tuple(tools.unsupported), tuple(tools.notes)
    if not finished:
        return _Verdict("verifier_timeout", 0.0, {}, (), seconds, "", unsupported, notes,
                        f"the verifier did not finish in {spec.verifier_timeout_sec:g} s")
    res = box.get("res")
    output = (res.stdout_text + res.stderr_text) if res is not None else ""
    tests = tuple(tools.tests)
    if unsupported:
        return _Verdict("environment_unsupported", None, {}, tests, seconds, output,
                        unsupported, notes, error)
    rewards: dict[str, float] = {}
    if spec.format == "harbor":
        try:
            got = taskfs.reward()
        except OanixError as e:
            return _Verdict("failed", 0.0, {}, tests, seconds, output, (), notes,
                            f"malformed reward: {e}")
        if got is None:
            return _Verdict("failed", 0.0, {}, tests, seconds, output, (), notes,
                            "the verifier wrote no reward")
        rewards = dict(got.metrics)
        value = got.value
        reward = float(value) if value is not None else sum(rewards.values()) / len(rewards)
    else:
        ok = bool(tests) and all(o in ("PASSED", "XFAIL", "SKIPPED") for _, o in tests)
        reward = 1.0 if ok else 0.0
    passed = reward == 1.0 if len(rewards) <= 1 else all(v == 1 for v in rewards.values())
    return _Verdict("passed" if passed else "failed", reward, rewards, tests, seconds,
                    output, (), notes, error)
