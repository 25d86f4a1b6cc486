"""Task directories of Terminal-Bench 1 and Harbor (Terminal-Bench 2), read into one TaskSpec.

Terminal-Bench 1: ``task.yaml`` (``instruction``, or the older ``descriptions`` list with a
``base`` entry; ``max_agent_timeout_sec``, ``max_test_timeout_sec``), a ``Dockerfile`` at
the top, ``solution.sh``, ``run-tests.sh`` and ``tests/``. A trial passes when every test
in pytest's ``-rA`` summary passed.

Harbor: ``task.toml`` (``version = "1.0"`` with ``[metadata] [verifier] [agent]
[environment]``, or ``schema_version = "1.1"`` adding ``[task]``, ``[environment.env]``
and ``[[steps]]``), ``instruction.md``, ``environment/Dockerfile`` and its build context,
``solution/solve.sh``, ``tests/test.sh``. The verifier writes ``/logs/verifier/reward.txt``
or ``reward.json``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml

from ..errors import InvalidArgument, TaskError
from ..values import parse_duration

__all__ = ["Step", "TaskSpec", "find_tasks", "load_task"]

DEFAULT_AGENT_TIMEOUT = 600.0
DEFAULT_VERIFIER_TIMEOUT = 300.0

Format = Literal["terminal-bench-1", "harbor"]


@attrs.frozen
class Step:
    """One step of a multi-step task (``steps/<name>/``): its instruction, agent timeout,
    and what it has of its own: tests (laid over the task's), solution, ``workdir/``
    files (and ``setup.sh``) put in the working directory first, verifier env and
    timeout, and ``min_reward`` (the trial stops after a step below it)."""

    name: str
    instruction: str
    agent_timeout_sec: float
    verifier_timeout_sec: float | None = None
    verifier_env: tuple[tuple[str, str], ...] = ()
    min_reward: float | dict[str, float] | None = None
    tests_dir: Path | None = None
    solution: Path | None = None
    workdir: Path | None = None


@attrs.frozen
class TaskSpec:
    """A task, whichever format it came in."""

    name: str
    path: Path
    format: Format
    instruction: str
    agent_timeout_sec: float
    verifier_timeout_sec: float
    build_context: Path
    dockerfile: Path | None
    solution: Path | None
    test_script: Path | None
    tests_dir: Path | None
    verifier_env: tuple[tuple[str, str], ...] = ()
    environment_env: tuple[tuple[str, str], ...] = ()
    steps: tuple[Step, ...] = ()
    metadata: dict[str, Any] = attrs.field(factory=dict, eq=False)
    reward_strategy: Literal["mean", "final"] = "mean"
    docker_image: str | None = None
    services: tuple[str, ...] = ()
    compose_file: Path | None = None


def _file(path: Path) -> Path | None:
    return path if path.is_file() else None


def _number(value: Any, where: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskError(f"{where}: expected a positive number of seconds, got {value!r}")
    try:  # finite, more than 0, not absurdly large
        return parse_duration(value, where)
    except InvalidArgument as e:
        raise TaskError(str(e)) from None


def _str_map(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise TaskError(f"{where}: expected a table of strings")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def load_task(path: str | Path) -> TaskSpec:
    """Load the task in directory ``path`` (either format).

    Raises:
        TaskError: no task file, or a malformed field (the message names both).
    """
    root = Path(path)
    if (root / "task.toml").is_file():
        return _load_harbor(root)
    if (root / "task.yaml").is_file():
        return _load_tb1(root)
    raise TaskError(f"{root}: no task.toml (Harbor) or task.yaml (Terminal-Bench 1) found")


def find_tasks(root: str | Path) -> list[Path]:
    """Every task directory at or below ``root``, sorted."""
    base = Path(root)
    found = {p.parent for pattern in ("task.toml", "task.yaml") for p in base.rglob(pattern)}
    return sorted(found)


def _load_tb1(root: Path) -> TaskSpec:
    where = root / "task.yaml"
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: not UTF-8
        raise TaskError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise TaskError(f"{where}: expected a mapping at the top level")
    instruction = data.get("instruction")
    if instruction is None:
        for entry in data.get("descriptions") or []:
            if isinstance(entry, dict) and entry.get("key") == "base":
                instruction = entry.get("description")
    if not isinstance(instruction, str) or not instruction.strip():
        raise TaskError(f"{where}: field 'instruction' (or descriptions[key=base]) is missing")
    dockerfile = _file(root / "Dockerfile")
    return TaskSpec(
        name=root.name,
        path=root,
        format="terminal-bench-1",
        instruction=instruction,
        agent_timeout_sec=_number(data.get("max_agent_timeout_sec"),
                                  f"{where}: max_agent_timeout_sec", DEFAULT_AGENT_TIMEOUT),
        verifier_timeout_sec=_number(data.get("max_test_timeout_sec"),
                                     f"{where}: max_test_timeout_sec",
                                     DEFAULT_VERIFIER_TIMEOUT),
        build_context=root,
        dockerfile=dockerfile,
        solution=_file(root / "solution.sh") or _file(root / "solution.yaml"),
        test_script=_file(root / "run-tests.sh") or (
            _default_run_tests() if (root / "tests" / "test_outputs.py").is_file() else None),
        tests_dir=root / "tests" if (root / "tests").is_dir() else None,
        metadata={k: v for k, v in data.items()
                  if k not in ("instruction", "descriptions")},
        **read_compose(root / "docker-compose.yaml", root / "docker-compose.yml"),
    )


def _default_run_tests() -> Path:
    """Terminal-Bench 1's harness runs pytest on tests/test_outputs.py when a task has no
    run-tests.sh; this script does the same."""
    return Path(__file__).with_name("tb1_run_tests.sh")


def read_compose(*candidates: Path) -> dict[str, Any]:
    """The services of a task's docker-compose file, and the file."""
    for path in candidates:
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as e:
                raise TaskError(f"{path}: not valid YAML: {e}") from None
            services = data.get("services") if isinstance(data, dict) else None
            names = tuple(sorted(map(str, services))) if isinstance(services, dict) else ()
            return {"services": names, "compose_file": path}
    return {}


def _load_harbor(root: Path) -> TaskSpec:
    where = root / "task.toml"
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # TOMLDecodeError, not UTF-8, a huge int
        raise TaskError(f"{where}: not valid TOML: {e}") from None
    for section in ("metadata", "verifier", "agent", "environment", "task"):
        if section in data and not isinstance(data[section], dict):
            raise TaskError(f"{where}: [{section}] must be a table")
    agent = data.get("agent", {})
    verifier = data.get("verifier", {})
    environment = data.get("environment", {})
    agent_timeout = _number(agent.get("timeout_sec"), f"{where}: agent.timeout_sec",
                            DEFAULT_AGENT_TIMEOUT)
    steps = tuple(_harbor_step(root, where, i, raw, agent_timeout)
                  for i, raw in enumerate(data.get("steps", [])))
    instruction_file = root / "instruction.md"
    if instruction_file.is_file():
        instruction = instruction_file.read_text(encoding="utf-8")
    elif steps:
        instruction = steps[0].instruction
    else:
        raise TaskError(f"{root}: instruction.md is missing")
    strategy = data.get("multi_step_reward_strategy") or "mean"
    if strategy not in ("mean", "final"):
        raise TaskError(f"{where}: multi_step_reward_strategy: expected 'mean' or 'final', "
                        f"got {strategy!r}")
    services = environment.get("services")
    extra: dict[str, Any] = read_compose(root / "environment" / "docker-compose.yaml",
                                     root / "environment" / "docker-compose.yml")
    if isinstance(services, (dict, list)) and services:
        extra["services"] = tuple(sorted({*extra.get("services", ()), *map(str, services)}))
    image = environment.get("docker_image")
    context = root / "environment"
    test_script = _file(root / "tests" / "test.sh")
    return TaskSpec(
        name=str(data.get("task", {}).get("name") or root.name),
        path=root,
        format="harbor",
        instruction=instruction,
        agent_timeout_sec=agent_timeout,
        verifier_timeout_sec=_number(verifier.get("timeout_sec"),
                                     f"{where}: verifier.timeout_sec",
                                     DEFAULT_VERIFIER_TIMEOUT),
        build_context=context,
        dockerfile=_file(context / "Dockerfile"),
        solution=_file(root / "solution" / "solve.sh"),
        test_script=test_script,
        tests_dir=root / "tests" if (root / "tests").is_dir() else None,
        verifier_env=_str_map(verifier.get("env"), f"{where}: verifier.env"),
        environment_env=_str_map(environment.get("env"), f"{where}: environment.env"),
        steps=steps,
        metadata=dict(data.get("metadata", {})),
        reward_strategy="final" if strategy == "final" else "mean",
        docker_image=str(image) if image else None,
        **extra,
    )


def _harbor_step(root: Path, where: Path, i: int, raw: Any, agent_timeout: float) -> Step:
    """``[[steps]]`` entry ``i``: its table and its ``steps/<name>/`` directory."""
    if not isinstance(raw, dict):
        raise TaskError(f"{where}: steps[{i}] must be a table")
    name = str(raw.get("name", f"step-{i + 1}"))
    if not name or "/" in name or name in (".", ".."):
        raise TaskError(f"{where}: steps[{i}].name: {name!r} is not a directory name")
    step_dir = root / "steps" / name
    text = raw.get("instruction")
    if text is None and isinstance(raw.get("instruction_path"), str):
        step_file = root / raw["instruction_path"]
        if not step_file.is_file():
            raise TaskError(f"{where}: steps[{i}].instruction_path: {step_file} is missing")
        text = step_file.read_text(encoding="utf-8")
    if text is None and (step_dir / "instruction.md").is_file():
        text = (step_dir / "instruction.md").read_text(encoding="utf-8")
    if not isinstance(text, str):
        raise TaskError(f"{where}: steps[{i}] ({name}): {step_dir}/instruction.md is missing")
    step_agent: dict[str, Any] = raw["agent"] if isinstance(raw.get("agent"), dict) else {}
    step_verifier: dict[str, Any] = (raw["verifier"] if isinstance(raw.get("verifier"), dict)
                                     else {})
    min_reward = raw.get("min_reward")
    if min_reward is not None and not (
            (isinstance(min_reward, (int, float)) and not isinstance(min_reward, bool))
            or (isinstance(min_reward, dict)
                and all(isinstance(v, (int, float)) for v in min_reward.values()))):
        raise TaskError(f"{where}: steps[{i}].min_reward: expected a number or a table of "
                        f"numbers, got {min_reward!r}")
    timeout = step_verifier.get("timeout_sec")
    return Step(
        name, text,
        _number(step_agent.get("timeout_sec"), f"{where}: steps[{i}].agent.timeout_sec",
                agent_timeout),
        verifier_timeout_sec=None if timeout is None else _number(
            timeout, f"{where}: steps[{i}].verifier.timeout_sec", DEFAULT_VERIFIER_TIMEOUT),
        verifier_env=_str_map(step_verifier.get("env"), f"{where}: steps[{i}].verifier.env"),
        min_reward=(float(min_reward) if isinstance(min_reward, (int, float))
                    else {str(k): float(v) for k, v in min_reward.items()}
                    if isinstance(min_reward, dict) else None),
        tests_dir=step_dir / "tests" if (step_dir / "tests").is_dir() else None,
        solution=_file(step_dir / "solution" / "solve.sh"),
        workdir=step_dir / "workdir" if (step_dir / "workdir").is_dir() else None,
    )
