"""The steady state: the ``Staged`` of the last run, handed out again as it is while every
staged copy in it is checked by its service's change journal alone and that journal has
not moved, so a run over an unchanged namespace costs a few attribute reads.

Locking: none of its own; it belongs to one ``NamespaceStaging``, used under the
namespace's lock (``lock``).
"""

from __future__ import annotations

from ...service import ChangeJournal
from .manifest import Subtree
from .plan import Plan, Staged

__all__ = ["SteadyState"]


class SteadyState:
    """The last run's ``Staged`` (``staged``), while it may be reused."""

    def __init__(self) -> None:
        self.staged: Staged | None = None
        self._plans: list[Plan] | None = None
        self._checks: list[tuple[ChangeJournal, Subtree]] = []

    def keep(self, plans: list[Plan], staged: Staged) -> None:
        """Keep ``staged`` for the next runs when each of its copies is checked by its
        service's journal alone (and nothing is shown directly, which is scanned per run):
        then ``reuse`` tells in a few attribute reads that nothing is to be done."""
        checks: list[tuple[ChangeJournal, Subtree]] = []
        for plan, (sub, _) in zip((p for p in plans if p.direct is None), staged.subtrees,
                                  strict=True):
            if plan.source is None or plan.source.journal is None:
                break
            checks.append((plan.source.journal, sub))
        if staged.direct or len(checks) != len(staged.subtrees):
            self._plans, self.staged = None, None
        else:
            self._plans, self.staged, self._checks = plans, staged, checks

    def forget(self) -> None:
        self.staged = self._plans = None
        self._checks = []

    def reuse(self, plans: list[Plan], root_watched: bool) -> Staged | None:
        """The kept ``Staged`` when ``plans`` are the ones it was made for, the guest's
        root (if any) is watched, and every staged copy is in line and watched."""
        if plans is not self._plans or not root_watched:
            return None
        for journal, sub in self._checks:
            last = sub.journal
            if (last is None or last.pending or sub.watched is None
                    or journal.generation != last.gen):
                return None
        return self.staged
