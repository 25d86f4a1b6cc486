"""RetryPolicy: exponential backoff with jitter, shared by every executor."""

from __future__ import annotations

import random
from typing import Literal

import attrs

from ..errors import InvalidArgument

__all__ = ["RetryPolicy"]


def _nonneg(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise InvalidArgument(f"{attribute.name} must be >= 0, not {value!r}")


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before trying again (a request, a connection).

    ``max_attempts`` counts every attempt (1 = no retry; a reconnecting executor may ignore
    it and retry for ever). The wait before attempt ``n+1`` is drawn from
    ``[0, d]`` ("full" jitter) or ``[d/2, d]`` ("equal" jitter, which never spins) with
    ``d = min(max_delay, initial_delay * factor ** (n - 1))``, or is the server's
    ``Retry-After`` seconds capped at ``max_delay``.
    """

    max_attempts: int = attrs.field(default=3)
    initial_delay: float = attrs.field(default=0.1, validator=_nonneg)
    max_delay: float = attrs.field(default=10.0, validator=_nonneg)
    factor: float = attrs.field(default=2.0, validator=_nonneg)
    retry_statuses: frozenset[int] = attrs.field(default=frozenset({429, 502, 503, 504}),
                                                 converter=frozenset)
    jitter: Literal["full", "equal"] = attrs.field(
        default="full", validator=attrs.validators.in_(("full", "equal")))

    @max_attempts.validator
    def _check_attempts(self, _attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise InvalidArgument(f"max_attempts must be >= 1, not {value!r}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay))
        ceiling = min(self.max_delay, self.initial_delay * self.factor ** max(0, attempt - 1))
        return random.uniform(ceiling / 2 if self.jitter == "equal" else 0.0, ceiling)
