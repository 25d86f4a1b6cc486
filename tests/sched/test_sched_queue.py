"""JobQueue alone: priority order, FIFO within a priority, aging, groups, discard."""

from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oanix.errors import InvalidArgument
from oanix.sched import JobQueue

T = TypeVar("T")


def drain(q: JobQueue[T, str | None]) -> list[T]:
    out: list[T] = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


@given(st.lists(st.integers(-5, 5), max_size=40))
def test_priority_then_fifo_without_aging(priorities: list[int]) -> None:
    q: JobQueue[int, str | None] = JobQueue(aging=None)
    for i, p in enumerate(priorities):
        q.push(i, p, None, now=float(i))  # time does not matter without aging
    expected = sorted(range(len(priorities)), key=lambda i: (-priorities[i], i))
    assert q.ordered() == expected
    assert len(q) == len(priorities)
    assert drain(q) == expected
    assert len(q) == 0


@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 50)), max_size=40),
       st.integers(50, 200))
def test_aging_orders_by_effective_priority_at_any_later_time(
        jobs: list[tuple[int, int]], now: int) -> None:
    q: JobQueue[int, str | None] = JobQueue(aging=2.0)
    for i, (p, t) in enumerate(jobs):
        q.push(i, p, None, now=float(t))
    # Highest effective priority at `now` first; ties in arrival order.
    expected = sorted(range(len(jobs)), key=lambda i: (
        -q.effective_priority(jobs[i][0], float(jobs[i][1]), float(now)), i))
    assert drain(q) == expected


def test_a_long_wait_overtakes_higher_priorities() -> None:
    q: JobQueue[str, str | None] = JobQueue(aging=1.0)
    q.push("low", 0, None, now=0.0)
    q.push("high-early", 10, None, now=9.0)   # effective at t: 10 + (t - 9) > 0 + t
    q.push("high-late", 10, None, now=11.0)   # effective at t: 10 + (t - 11) < 0 + t
    assert q.ordered() == ["high-early", "low", "high-late"]
    assert q.effective_priority(0, 0.0, 25.0) == 25.0
    assert q.effective_priority(3, 5.0, 1.0) == 3.0  # never below the base priority


def test_pop_skips_ineligible_groups_and_keeps_their_order() -> None:
    q: JobQueue[str, str | None] = JobQueue()
    q.push("a1", 5, "a", now=0.0)
    q.push("b1", 1, "b", now=0.0)
    q.push("a2", 4, "a", now=0.0)
    q.push("n1", 3, None, now=0.0)
    assert q.pop(lambda g: g != "a") == "n1"
    assert q.pop(lambda g: g != "a") == "b1"
    assert q.pop(lambda g: g != "a") is None
    assert q.groups() == {"a": 2}
    assert q.count("a") == 2
    assert drain(q) == ["a1", "a2"]
    assert q.groups() == {}


def test_discard_is_lazy_and_idempotent() -> None:
    q: JobQueue[str, str | None] = JobQueue()
    e1 = q.push("x", 1, "g", now=0.0)
    q.push("y", 0, "g", now=0.0)
    assert q.discard(e1)
    assert not q.discard(e1)
    assert len(q) == 1
    assert q.ordered() == ["y"]
    assert q.pop() == "y"
    assert q.pop() is None


@pytest.mark.parametrize("aging", [0, -1.0, float("nan")])
def test_bad_aging_is_rejected(aging: float) -> None:
    with pytest.raises(InvalidArgument):
        JobQueue(aging=aging)
