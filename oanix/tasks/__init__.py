"""Terminal-Bench and Harbor tasks: load them, build their environment, run trials."""

from .dockerfile import Copy, DockerfilePlan, parse_dockerfile
from .formats import Step, TaskSpec, find_tasks, load_task

__all__ = ["Copy", "DockerfilePlan", "Step", "TaskSpec", "find_tasks", "load_task",
           "parse_dockerfile"]
