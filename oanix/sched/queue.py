"""JobQueue: a priority queue with aging, split into groups (one per environment).

Order: higher priority first, first in first out within a priority. With aging, a job's
*effective priority* grows with the time it has waited::

    effective(now) = priority + (now - enqueued_at) / aging

so a job waiting ``aging`` seconds gains one priority level and no job waits forever
behind a stream of higher-priority ones (a job of priority ``p`` is overtaken by at most
the jobs submitted up to ``(p_high - p) * aging`` seconds after it). The growth is the
same for every waiting job, so the order of two waiting jobs never changes over time: it
is the order of their *virtual submission time* ``enqueued_at - priority * aging``
(earliest first, ties by arrival). One static heap per group therefore suffices; pushes
and pops cost O(log n), plus O(groups) per pop to pick the best eligible group head.

``pop`` takes an ``eligible(group)`` predicate, so a group at its concurrency limit is
skipped without disturbing its order. ``discard`` removes an entry lazily (O(1)); dead
entries are dropped when they reach the head of their heap.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Final, Generic, TypeVar, final

from ..errors import InvalidArgument

__all__ = ["JobQueue", "QueueEntry"]

T = TypeVar("T")
G = TypeVar("G", bound=Hashable)

_REMOVED: Final = object()

# An entry is a list [sort_key, seq, item, group]: lists compare in C, and (sort_key, seq)
# is unique, so items are never compared. ``discard`` overwrites the item with _REMOVED.
QueueEntry = list[Any]


@final
class JobQueue(Generic[T, G]):
    """Priority queue with aging over groups of items (see the module docstring).

    ``aging`` is the number of seconds of waiting worth one priority level; None disables
    aging (pure priority, then FIFO). Times are passed in by the caller (``now``), so the
    queue works with any clock.

    Locking: one lock guards the heaps and the counts; every method is safe from any
    thread. ``eligible`` is called with the lock held and must not use the queue.
    """

    def __init__(self, aging: float | None = None) -> None:
        if aging is not None and not aging > 0:
            raise InvalidArgument(f"aging must be a positive number of seconds or None, "
                                  f"not {aging!r}")
        self._aging = aging
        self._lock = threading.Lock()
        self._heaps: dict[G, list[QueueEntry]] = {}
        self._live: dict[G, int] = {}
        self._seq = itertools.count()

    @property
    def aging(self) -> float | None:
        """Seconds of waiting worth one priority level, or None."""
        return self._aging

    def sort_key(self, priority: int, enqueued_at: float) -> float:
        """The static rank of a job: smaller runs first (ties: arrival order)."""
        if self._aging is None:
            return float(-priority)
        return enqueued_at - priority * self._aging

    def effective_priority(self, priority: int, enqueued_at: float, now: float) -> float:
        """``priority`` plus one level per ``aging`` seconds waited (no aging: priority)."""
        if self._aging is None:
            return float(priority)
        return priority + max(0.0, now - enqueued_at) / self._aging

    def push(self, item: T, priority: int, group: G, now: float) -> QueueEntry:
        """Add ``item`` to ``group``, enqueued at time ``now``; returns its entry."""
        entry: QueueEntry = [self.sort_key(priority, now), next(self._seq), item, group]
        with self._lock:
            heap = self._heaps.get(group)
            if heap is None:
                heap = self._heaps[group] = []
                self._live[group] = 0
            heapq.heappush(heap, entry)
            self._live[group] += 1
        return entry

    def discard(self, entry: QueueEntry) -> bool:
        """Remove ``entry``; False if it was already popped or discarded."""
        with self._lock:
            if entry[2] is _REMOVED:
                return False
            entry[2] = _REMOVED
            self._live[entry[3]] -= 1
            return True

    def pop(self, eligible: Callable[[G], bool] | None = None) -> T | None:
        """Remove and return the first item of the eligible groups, or None."""
        with self._lock:
            best: list[QueueEntry] | None = None
            empty: list[G] = []
            for group, heap in self._heaps.items():
                while heap and heap[0][2] is _REMOVED:
                    heapq.heappop(heap)
                if not heap:
                    empty.append(group)
                    continue
                if (best is None or heap[0] < best[0]) and (eligible is None
                                                            or eligible(group)):
                    best = heap
            for group in empty:
                del self._heaps[group]
                del self._live[group]
            if best is None:
                return None
            entry = heapq.heappop(best)
            item: T = entry[2]
            entry[2] = _REMOVED
            self._live[entry[3]] -= 1
            return item

    def __len__(self) -> int:
        with self._lock:
            return sum(self._live.values())

    def count(self, group: G) -> int:
        """How many items ``group`` holds."""
        with self._lock:
            return self._live.get(group, 0)

    def groups(self) -> dict[G, int]:
        """Item count per non-empty group."""
        with self._lock:
            return {g: n for g, n in self._live.items() if n}

    def ordered(self) -> list[T]:
        """Every item, in the order ``pop`` would return them with no group blocked."""
        with self._lock:
            entries = [e for heap in self._heaps.values() for e in heap if e[2] is not _REMOVED]
        entries.sort()
        return [e[2] for e in entries]

    def __iter__(self) -> Iterator[T]:
        return iter(self.ordered())
