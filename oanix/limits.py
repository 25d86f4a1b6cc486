"""Limits: what an environment allows each program it runs, a value of its own so that the
environment and its manifest both build it."""

from __future__ import annotations

from typing import Any

import attrs

from .wasi.records import DEFAULT_MAX_DISK, DEFAULT_MAX_DISK_FILES, RunConfig

__all__ = ["Limits"]


@attrs.frozen
class Limits:
    """Limits of every program an environment runs (see ``RunConfig``). ``timeout`` also
    bounds each ``exec`` command line as a whole, and ``max_output`` what ``exec`` keeps
    of its stdout and of its stderr.

    ``max_disk`` / ``max_disk_files``: the most a program may hold in any one writable
    directory while it runs, where the quotas of the mounts there do not say less
    (default 1 GiB and 100,000 entries; passing either stops the program with
    ``Trap(kind="disk")``, see ``oanix.wasi.quota``).

    ``receipts``: record every run in a receipt (``RunConfig.receipt``), kept by the
    environment at ``/logs/receipts/<id>.json``, read-only to the agent.
    """

    fuel: int | None = None
    memory_limit: int | None = 512 << 20
    timeout: float | None = None
    max_output: int | None = 16 << 20
    max_disk: int | None = DEFAULT_MAX_DISK
    max_disk_files: int | None = DEFAULT_MAX_DISK_FILES
    receipts: bool = False

    def config(self, **fields: Any) -> RunConfig:
        """A RunConfig with these limits and ``fields``."""
        return RunConfig(fuel=self.fuel, memory_limit=self.memory_limit,
                         timeout=self.timeout, max_output=self.max_output,
                         max_disk=self.max_disk, max_disk_files=self.max_disk_files,
                         receipt=self.receipts, **fields)
