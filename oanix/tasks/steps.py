"""Harbor multi-step tasks: one agent environment, a verifier after every step.

``[[steps]]`` with ``steps/<name>/{instruction.md, tests/, solution/, workdir/}``. Each
step, in order: its ``workdir/`` files are put in the working directory and its
``setup.sh`` run; the agent works on the step's instruction (the oracle runs the step's
solution); the verifier runs the step's test script with the task's tests and the
step's laid over them, with the step's env and timeout. A step below its ``min_reward``
(a number gates the ``reward`` key, a table each of its keys; a missing key counts as
-inf) stops the trial, as does a step whose agent failed without a verdict. The
trial's rewards are, as in Harbor, the per-key mean over the steps that have a verdict
(missing keys count 0), or with ``multi_step_reward_strategy = "final"`` the last
step's.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import paths
from ..env import OanixEnv
from ..fs.cow import CowFs
from ..wasi import WasiRuntime
from .formats import Step, TaskSpec
from .runner import Agent, TrialStatus, run_phase

__all__ = ["below_min_reward", "combine_rewards", "run_steps"]


def below_min_reward(rewards: Mapping[str, float] | None,
                     min_reward: float | Mapping[str, float] | None) -> str | None:
    """Why ``rewards`` fail the step's ``min_reward``, or None when they pass."""
    if min_reward is None:
        return None
    gates = {"reward": min_reward} if isinstance(min_reward, float | int) else min_reward
    for key, threshold in gates.items():
        actual = rewards.get(key, float("-inf")) if rewards else float("-inf")
        if actual < threshold:
            return f"{key}={actual:g} below min_reward {threshold:g}"
    return None


def combine_rewards(per_step: list[dict[str, float] | None],
                    strategy: str) -> dict[str, float] | None:
    """The trial's rewards from each step's (None: the step had no verdict)."""
    if not per_step:
        return None
    if strategy == "final":
        return per_step[-1]
    valid = [r for r in per_step if r is not None]
    keys = {k for r in valid for k in r}
    if not keys:
        return None
    return {k: sum(r.get(k, 0.0) for r in valid) / len(valid) for k in sorted(keys)}


def _step_spec(spec: TaskSpec, step: Step, tests: Path | None) -> TaskSpec:
    script = tests / "test.sh" if tests is not None and (tests / "test.sh").is_file() else None
    return attrs.evolve(
        spec, instruction=step.instruction, agent_timeout_sec=step.agent_timeout_sec,
        verifier_timeout_sec=step.verifier_timeout_sec or spec.verifier_timeout_sec,
        verifier_env=tuple(sorted({**dict(spec.verifier_env),
                                   **dict(step.verifier_env)}.items())),
        solution=step.solution or spec.solution, test_script=script, tests_dir=tests,
        steps=())


def _merged_tests(spec: TaskSpec, step: Step, into: Path) -> Path | None:
    """The task's tests with the step's laid over them, in ``into``."""
    sources = [d for d in (spec.tests_dir, step.tests_dir) if d is not None]
    if not sources:
        return None
    for src in sources:
        shutil.copytree(src, into, dirs_exist_ok=True, symlinks=False)
    return into


def _prepare(step: Step, workdir: str) -> Any:
    """A step's setup: its ``workdir/`` files in the working directory, then
    ``setup.sh``; returns the error that stops the step, or None."""

    def prepare(env: OanixEnv) -> str | None:
        if step.workdir is None:
            return None
        for host in sorted(step.workdir.rglob("*")):
            if host.is_symlink() or not host.is_file():
                continue
            target = paths.join(workdir, host.relative_to(step.workdir).as_posix())
            env.namespace.makedirs(paths.dirname(target), exist_ok=True)
            env.namespace.write_bytes(target, host.read_bytes())
        if (step.workdir / "setup.sh").is_file():
            res = env.exec(f"bash {paths.join(workdir, 'setup.sh')}")
            if res.exit_code != 0:
                return (f"step {step.name}: setup.sh exited {res.exit_code}: "
                        f"{res.stderr_text.strip()[-300:]}")
        return None

    return prepare


def run_steps(spec: TaskSpec, agent_fn: Agent | None, workspace: CowFs, workdir: str,
              env_vars: dict[str, str], rt: WasiRuntime, agent_timeout: float | None
              ) -> tuple[TrialStatus, dict[str, Any]]:
    """Run every step of ``spec`` in turn: the trial's status and result fields."""
    records: list[dict[str, Any]] = []
    per_step: list[dict[str, float] | None] = []
    outputs: list[str] = []
    verifier_outputs: list[str] = []
    totals = {"agent_seconds": 0.0, "verifier_seconds": 0.0}
    last: tuple[TrialStatus, dict[str, Any]] = ("error", {})
    for step in spec.steps:
        with tempfile.TemporaryDirectory(prefix="oanix-step-") as tmp:
            tests = _merged_tests(spec, step, Path(tmp) / "tests")
            status, kw = run_phase(_step_spec(spec, step, tests), agent_fn,
                                   step.instruction, workspace, workdir, env_vars, rt,
                                   agent_timeout or step.agent_timeout_sec,
                                   prepare=_prepare(step, workdir))
        last = (status, kw)
        for key in totals:
            totals[key] += float(kw.get(key, 0.0))
        outputs.append(f"--- step {step.name}\n{kw.get('agent_output', '')}")
        verifier_outputs.append(f"--- step {step.name}\n{kw.get('verifier_output', '')}")
        rewards: dict[str, float] | None = None
        if status in ("passed", "failed") and kw.get("reward") is not None:
            rewards = dict(kw.get("rewards") or {}) or {"reward": float(kw["reward"])}
        per_step.append(rewards)
        records.append({"name": step.name, "status": status, "reward": kw.get("reward"),
                        "rewards": rewards or {}, "error": kw.get("error")})
        if status == "environment_unsupported":
            return status, {**kw, "steps": tuple(records)}
        if rewards is None:
            break
        failure = below_min_reward(rewards, step.min_reward)
        if failure is not None:
            records[-1]["stopped"] = failure
            break
    combined = combine_rewards(per_step, spec.reward_strategy)
    fields = {**last[1], **totals, "steps": tuple(records),
              "agent_output": "".join(outputs),
              "verifier_output": "".join(verifier_outputs)}
    if combined is None:
        status = last[0] if last[0] not in ("passed", "failed") else "failed"
        return status, {**fields, "reward": 0.0, "rewards": {}}
    reward = combined.get("reward", sum(combined.values()) / len(combined))
    passed = (len(records) == len(spec.steps)
              and (reward == 1.0 if len(combined) <= 1
                   else all(v == 1 for v in combined.values())))
    return ("passed" if passed else "failed"), {**fields, "reward": reward,
                                                "rewards": combined}
