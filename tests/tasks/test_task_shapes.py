"""Task shapes: Harbor multi-step tasks, Terminal-Bench 1 defaults, compose services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from taskmaker import CHECK, harbor_task

from oanix.tasks import load_task
from oanix.tasks.runner import run_trial
from oanix.tasks.steps import below_min_reward, combine_rewards
from oanix.wasi import WasiRuntime


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    with WasiRuntime() as rt:
        yield rt


def multi_step(root: Path, min_reward: str = "", strategy: str = "") -> Path:
    """Two steps: write one.txt, then two.txt from one.txt; a third never reached
    when step two fails its min_reward."""
    root.mkdir()
    (root / "task.toml").write_text(
        f'schema_version = "1.1"\n{strategy}\n[agent]\ntimeout_sec = 60\n'
        '[[steps]]\nname = "one"\n'
        f'[[steps]]\nname = "two"\n{min_reward}\n'
        '[steps.verifier]\ntimeout_sec = 90\nenv = { WANT = "2" }\n'
        '[[steps]]\nname = "three"\n')
    (root / "environment").mkdir()
    (root / "environment" / "Dockerfile").write_text("FROM ubuntu:24.04\nWORKDIR /app\n")
    for name, solve, cond in [
            ("one", "echo 1 > one.txt", "grep -q 1 /app/one.txt"),
            ("two", "cat seed.txt one.txt > two.txt",
             'grep -q seed /app/two.txt && [ "$WANT" = 2 ] && [ -f /tests/shared.txt ]'),
            ("three", "echo 3 > three.txt", "grep -q 3 /app/three.txt")]:
        d = root / "steps" / name
        for sub in ("tests", "solution"):
            (d / sub).mkdir(parents=True)
        (d / "instruction.md").write_text(f"Step {name}.\n")
        (d / "solution" / "solve.sh").write_text(solve + "\n")
        (d / "tests" / "test.sh").write_text(CHECK.format(cond=cond))
    (root / "steps" / "two" / "workdir").mkdir()
    (root / "steps" / "two" / "workdir" / "seed.txt").write_text("seed\n")
    (root / "steps" / "two" / "workdir" / "setup.sh").write_text(  # as Harbor's recipe does
        "set -e\nmkdir -p /logs/artifacts\necho ran > /logs/artifacts/setup-marker.txt\n"
        'rm -- "$0"\n')
    (root / "tests").mkdir()
    (root / "tests" / "shared.txt").write_text("shared\n")
    return root


def test_harbor_reward_rules() -> None:
    assert below_min_reward({"reward": 0.5}, 1.0) == "reward=0.5 below min_reward 1"
    assert below_min_reward({"reward": 1.0}, 1.0) is None
    assert below_min_reward({"a": 1.0}, {"a": 0.5, "b": 0.1}) is not None
    assert below_min_reward(None, None) is None
    assert combine_rewards([{"reward": 1.0}, {"reward": 0.0}, None], "mean") == {
        "reward": 0.5}
    assert combine_rewards([{"a": 1.0}, {"b": 1.0}], "mean") == {"a": 0.5, "b": 0.5}
    assert combine_rewards([{"reward": 1.0}, {"reward": 0.0}], "final") == {"reward": 0.0}


def test_multi_step_task(tmp_path: Path, runtime: WasiRuntime) -> None:
    task = multi_step(tmp_path / "ms")
    spec = load_task(task)
    assert [s.name for s in spec.steps] == ["one", "two", "three"]
    assert spec.steps[1].verifier_timeout_sec == 90.0
    good = run_trial(task, "oracle", runtime=runtime)
    assert good.status == "passed", (good.error, good.steps, good.verifier_output[-1500:])
    assert [s["reward"] for s in good.steps] == [1.0, 1.0, 1.0] and good.reward == 1.0
    nop = run_trial(task, "nop", runtime=runtime)
    assert nop.status == "failed" and nop.reward == 0.0 and len(nop.steps) == 3

    def half(env: object, instruction: str) -> None:
        if "one" in instruction:
            env.exec("echo 1 > one.txt")  # type: ignore[attr-defined]

    gated = run_trial(multi_step(tmp_path / "gated", "min_reward = 1.0"), half,
                      runtime=runtime)
    assert [s["name"] for s in gated.steps] == ["one", "two"]  # three never ran
    assert gated.steps[1]["stopped"] and gated.reward == 0.5 and gated.status == "failed"
    final = run_trial(multi_step(tmp_path / "final",
                                 strategy='multi_step_reward_strategy = "final"'), half,
                      runtime=runtime)
    assert final.reward == 0.0 and [s["reward"] for s in final.steps] == [1.0, 0.0, 0.0]


def tb1(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


TEST_OUTPUTS = ("from pathlib import Path\n\n"
                "def test_out():\n    assert Path('/app/out.txt').read_text() == 'ok\\n'\n")


def test_tb1_defaults(tmp_path: Path, runtime: WasiRuntime) -> None:
    task = tb1(tmp_path / "tb1", {
        "task.yaml": "descriptions:\n  - key: base\n    description: write ok\n",
        "Dockerfile": "FROM python:3.13\nWORKDIR /app\n",
        "solution.yaml": "- command: echo ok > out.txt\n  min_timeout_sec: 1\n",
        "tests/test_outputs.py": TEST_OUTPUTS})
    spec = load_task(task)
    assert spec.instruction == "write ok" and spec.test_script is not None
    good = run_trial(task, "oracle", runtime=runtime)
    assert good.status == "passed", (good.error, good.verifier_output[-1500:])
    assert run_trial(task, "nop", runtime=runtime).status == "failed"
    (task / "solution.yaml").unlink()
    none = run_trial(task, "oracle", runtime=runtime)
    assert none.status == "error" and "no solution" in (none.error or "")


def test_compose_services_are_unsupported_unless_only_main(tmp_path: Path,
                                                           runtime: WasiRuntime) -> None:
    task = harbor_task(tmp_path / "c", "FROM x\nWORKDIR /app\n", "true", "true",
                       files={"docker-compose.yaml":
                              "services:\n  main:\n    build: .\n  db:\n    image: pg\n"})
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    assert any("services: db, main" in u for u in result.unsupported)
    (task / "environment" / "docker-compose.yaml").write_text(
        "services:\n  main:\n    build: .\n")
    assert run_trial(task, "oracle", runtime=runtime).status == "passed"
    toml = harbor_task(tmp_path / "t", "FROM x\n", "true", "true",
                       toml="[environment.services.redis]\nimage = 'redis'\n"
                            "[environment.services.main]\nimage = 'x'\n")
    result = run_trial(toml, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    assert any("redis" in u for u in result.unsupported)
