"""An agent harness on oanix: give an agent a task, let it act through files, grade it.

    python examples/harness.py [TASK_DIR]      (default: examples/tasks/hello-world)

The "agent" here is a scripted stand-in for a model: it reads its task through the
namespace, looks around with shell commands, writes a plan to /logs, and acts. A real
harness calls its model where ``decide`` is, with the same ``env``. Needs the
``oanix[tasks]`` extra for the verifier's sandboxed pytest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oanix.env import OanixEnv
from oanix.tasks.runner import run_trial


def decide(instruction: str, observation: str) -> list[str]:
    """Stand-in for a model call: the shell commands to run next."""
    if "hello.txt" in instruction:
        return ['echo "Hello, world!" > hello.txt', "cat hello.txt"]
    return ["ls -la"]


def agent(env: OanixEnv, instruction: str) -> None:
    spec = json.loads(env.namespace.read_text("/task/spec.json"))
    look = env.exec("pwd; ls")
    env.logs.event("info", "observed the workspace", task=spec["id"], ls=look.stdout_text)
    for command in decide(instruction, look.stdout_text):
        result = env.exec(command)
        env.logs.event("info", "ran a command", command=command, status=result.exit_code,
                       stdout=result.stdout_text[-500:])
    print("agent log:")
    for event in env.logs.events():
        print(f"  {event.level}: {event.message} {event.data.get('command', '')}")


def main() -> int:
    task = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).parent / "tasks" / "hello-world")
    result = run_trial(task, agent)
    print(f"{result.task}: {result.status}, reward {result.reward}")
    for name, outcome in result.tests:
        print(f"  {outcome:7} {name}")
    print("workspace changes:", ", ".join(result.changes.added + result.changes.modified))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
