"""Trial receipts: what a trial was given (the task directory, by content address, and the
agent) and what it gave (the files the agent left changed, by sha256, the status and the
rewards), with its timing and the versions of oanix and wasmtime.

JSON form (version 1)::

    {"version": 1, "task": {"name", "sha256"}, "agent": str, "status": str,
     "reward": number | null, "rewards": {name: number},
     "outputs": [{"path", "kind": "file" | "dir" | "deleted", "size", "sha256" | null}],
     "started": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "duration": seconds,
     "versions": {"oanix", "wasmtime", "python"}}

The task's sha256 covers every file below its directory: the sha256 of the lines
``<relative path> <sha256 of the content>`` (a link: of its target text) in path order.
Values here are frozen: safe to share between threads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ..changes import Changes
from ..service import FileService
from ..values import dumps_compact
from ..wasi.receipt import FileDigest, digest_outputs, sha256, versions

__all__ = ["TRIAL_RECEIPT_VERSION", "TrialReceipt", "task_sha256", "trial_receipt"]

TRIAL_RECEIPT_VERSION: Final = 1


@attrs.frozen
class TrialReceipt:
    """The record of one trial (see the module docstring for the JSON form)."""

    task: str
    task_sha256: str
    agent: str
    status: str
    reward: float | None
    rewards: Mapping[str, float]
    outputs: tuple[FileDigest, ...]
    started: str
    duration: float
    versions: Mapping[str, str]
    version: int = TRIAL_RECEIPT_VERSION

    @property
    def id(self) -> str:
        """The receipt's own content address: the sha256 of its canonical JSON."""
        return sha256(dumps_compact(self.to_json(), sort_keys=True).encode("utf-8"))

    def to_json(self) -> dict[str, Any]:
        """The receipt as a JSON-ready dict."""
        return {"version": self.version,
                "task": {"name": self.task, "sha256": self.task_sha256},
                "agent": self.agent, "status": self.status, "reward": self.reward,
                "rewards": dict(self.rewards), "outputs": [f.to_json() for f in self.outputs],
                "started": self.started, "duration": self.duration,
                "versions": dict(self.versions)}


def task_sha256(directory: Path) -> str:
    """The content address of a task directory (see the module docstring); links are
    never followed."""
    lines: list[str] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, directory)
            if os.path.islink(full):
                digest = sha256(os.readlink(full).encode("utf-8", "surrogateescape"))
            else:
                with open(full, "rb") as f:
                    digest = sha256(f.read())
            lines.append(f"{rel} {digest}\n")
    return sha256("".join(sorted(lines)).encode("utf-8", "surrogateescape"))


def trial_receipt(task: str, directory: Path, agent: str, status: str,
                  reward: float | None, rewards: Mapping[str, float], changes: Changes,
                  workspace: FileService | None, started: str, duration: float
                  ) -> TrialReceipt:
    """The receipt of a finished trial: ``workspace`` holds what the agent left (None
    when the trial stopped before it had one)."""
    outputs = () if workspace is None else digest_outputs(workspace, changes)
    return TrialReceipt(task, task_sha256(directory), agent, status, reward, dict(rewards),
                        outputs, started, round(duration, 6), versions())

