from pathlib import Path

import pytest

from oanix import TaskError
from oanix.tasks import Copy, find_tasks, load_task, parse_dockerfile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"


def test_examples_load_in_both_formats() -> None:
    tasks = {p.name: load_task(p) for p in find_tasks(EXAMPLES)}
    assert len(tasks) >= 6
    formats = {t.format for t in tasks.values()}
    assert formats == {"harbor", "terminal-bench-1"}
    hello = tasks["hello-world"]
    assert hello.instruction.startswith("Create a file called hello.txt")
    assert (hello.agent_timeout_sec, hello.verifier_timeout_sec) == (360.0, 60.0)
    assert hello.solution and hello.solution.name == "solution.sh"
    assert hello.test_script and hello.test_script.name == "run-tests.sh"
    fib = tasks["fibonacci-module"]
    assert "fib(n)" in fib.instruction  # from the older descriptions list
    logs = tasks["log-errors"]
    assert logs.format == "harbor" and logs.environment_env == (("LOG_DIR", "/app/logs"),)
    assert logs.agent_timeout_sec == 300.0 and logs.verifier_timeout_sec == 120.0
    assert logs.dockerfile and logs.dockerfile.name == "Dockerfile"


def test_harbor_steps_and_errors(tmp_path: Path) -> None:
    (tmp_path / "task.toml").write_text(
        'schema_version = "1.1"\n[agent]\ntimeout_sec = 10\n'
        '[[steps]]\nname = "one"\ninstruction = "do one"\n'
        '[[steps]]\ninstruction = "do two"\nagent = { timeout_sec = 5 }\n')
    (tmp_path / "instruction.md").write_text("overall")
    task = load_task(tmp_path)
    assert [(s.name, s.instruction, s.agent_timeout_sec) for s in task.steps] == [
        ("one", "do one", 10.0), ("step-2", "do two", 5.0)]
    (tmp_path / "task.toml").write_text("[agent]\ntimeout_sec = -1\n")
    with pytest.raises(TaskError, match=r"agent\.timeout_sec"):
        load_task(tmp_path)
    (tmp_path / "task.toml").write_text("[agent\n")
    with pytest.raises(TaskError, match="not valid TOML"):
        load_task(tmp_path)
    (tmp_path / "task.toml").unlink()
    with pytest.raises(TaskError, match=r"no task\.toml"):
        load_task(tmp_path)


@pytest.mark.parametrize("name, text, why", [
    ("task.toml", b"[agent]\ntimeout_sec = nan\n", r"agent\.timeout_sec"),
    ("task.toml", b"[agent]\ntimeout_sec = inf\n", r"agent\.timeout_sec"),
    ("task.toml", b"[verifier]\ntimeout_sec = 1e308\n", r"verifier\.timeout_sec"),
    ("task.toml", b"[agent]\ntimeout_sec = " + b"9" * 5000 + b"\n", "not valid TOML"),
    ("task.toml", b"a = " + b"[" * 5000, "not valid TOML"),
    ("task.toml", b'[task]\nname = "\xff"\n', "not valid TOML"),
    ("task.yaml", b"instruction: \xff\n", "not valid YAML"),
    ("task.yaml", b"a: " + b"[" * 5000, "not valid YAML"),
])
def test_malformed_task_files_are_task_errors(tmp_path: Path, name: str, text: bytes,
                                              why: str) -> None:
    (tmp_path / name).write_bytes(text)
    (tmp_path / "instruction.md").write_text("do it")
    with pytest.raises(TaskError, match=why):
        load_task(tmp_path)


def test_tb1_missing_instruction(tmp_path: Path) -> None:
    (tmp_path / "task.yaml").write_text("difficulty: easy\n")
    with pytest.raises(TaskError, match="instruction"):
        load_task(tmp_path)


def test_dockerfile_plan() -> None:
    plan = parse_dockerfile(
        "# comment\nFROM python:3.13-slim AS base\nARG VER=1\nWORKDIR /app\n"
        "ENV A=1 B=\"two words\"\nENV LEGACY some value\n"
        "COPY --chown=1000 src/ lib/\nADD data.txt /data/\n"
        "RUN echo $A \\\n  && mkdir -p x\nWORKDIR sub\nRUN [\"touch\", \"f\"]\n"
        "EXPOSE 80\nCMD [\"bash\"]\nCOPY --from=builder /x /y\n"
        "ADD https://example.com/f /f\nRUN --mount=type=cache,target=/c true\nFOO bar\n")
    assert plan.base_image == "python:3.13-slim"
    assert plan.workdir == "/app/sub"
    assert dict(plan.env) == {"A": "1", "B": "two words", "LEGACY": "some value"}
    assert plan.steps[0] == Copy(("src/",), "/app/lib/")
    assert plan.steps[1] == Copy(("data.txt",), "/data/")
    run1, run2 = plan.steps[2], plan.steps[3]
    assert isinstance(run1, tuple) and run1[1] == "echo $A && mkdir -p x" and run1[2] == "/app"
    assert isinstance(run2, tuple) and run2[1] == "touch f" and run2[2] == "/app/sub"
    assert len(plan.unsupported) == 4
    assert any("line 15" in u and "--from" in u for u in plan.unsupported)
    assert any("FOO" in u and "unknown instruction" in u for u in plan.unsupported)
