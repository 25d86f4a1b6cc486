"""NIP-01 subscription filters: checking what an agent writes, and matching events.

Pure functions: safe to call from any thread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ...errors import InvalidArgument
from .event import HEX64, Event, check_int

__all__ = ["filter_matches", "validate_filters"]

_TAG_KEY: Final = re.compile(r"^#[A-Za-z]$")


def validate_filters(obj: object) -> list[dict[str, Any]]:
    """Check a NIP-01 filter list (a single filter object is taken as a list of one).

    Raises:
        InvalidArgument: naming the filter and key that is wrong.
    """
    filters = [obj] if isinstance(obj, dict) else obj
    if not isinstance(filters, list) or not filters:
        raise InvalidArgument("a subscription is a non-empty JSON list of filter objects")
    for n, f in enumerate(filters):
        if not isinstance(f, dict):
            raise InvalidArgument(f"filter {n} must be a JSON object")
        for key, value in f.items():
            where = f"filter {n} key {key!r}"
            if key in ("ids", "authors"):
                if not isinstance(value, list) or not all(
                        isinstance(v, str) and HEX64.match(v) for v in value):
                    raise InvalidArgument(f"{where} must be a list of 64-char lowercase hex")
            elif key == "kinds":
                if not isinstance(value, list):
                    raise InvalidArgument(f"{where} must be a list of integers")
                for v in value:
                    check_int(where, v, 0, 65535)
            elif key in ("since", "until", "limit"):
                check_int(where, value, 0, 2**63 - 1)
            elif _TAG_KEY.match(key):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InvalidArgument(f"{where} must be a list of strings")
            else:
                raise InvalidArgument(f"{where} is unknown; use ids authors kinds #<letter> "
                                      "since until limit")
    return filters


def filter_matches(f: Mapping[str, Any], ev: Event) -> bool:
    """Whether ``ev`` matches NIP-01 filter ``f`` (``limit`` is ignored)."""
    if "ids" in f and ev.id not in f["ids"]:
        return False
    if "authors" in f and ev.pubkey not in f["authors"]:
        return False
    if "kinds" in f and ev.kind not in f["kinds"]:
        return False
    if "since" in f and ev.created_at < f["since"]:
        return False
    if "until" in f and ev.created_at > f["until"]:
        return False
    for key, values in f.items():
        if key.startswith("#"):
            found = {t[1] for t in ev.tags if len(t) >= 2 and t[0] == key[1:]}
            if not found.intersection(values):
                return False
    return True
