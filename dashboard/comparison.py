"""A segment's rate against the period of the same length before (`?compare=previous`): the change and
whether it stands out of the noise of the two Wilson intervals (Newcombe's hybrid score interval)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import sqrt
from typing import Any


def difference_interval(now: Mapping[str, Any], before: Mapping[str, Any]) -> tuple[float, float] | None:
    """The 95 % interval of rate(now) - rate(before) from each rate's Wilson interval (Newcombe 1998,
    method 10); None when either side has no leads."""
    if not now.get("n") or not before.get("n") or now.get("rate") is None or before.get("rate") is None:
        return None
    p1, l1, u1 = now["rate"], now["wilson_low"], now["wilson_high"]
    p2, l2, u2 = before["rate"], before["wilson_low"], before["wilson_high"]
    d = p1 - p2
    return d - sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def compare_rows(current: Sequence[Mapping[str, Any]], previous: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[tuple, dict]:
    """Per segment value (the tuple of `columns`' values) of the current rows: the previous period's n
    and rate, the change in rate, its interval and whether that interval holds 0 (within noise)."""
    before = {tuple(r[c] for c in columns): r for r in previous}
    out = {}
    for row in current:
        key = tuple(row[c] for c in columns)
        old = before.get(key)
        interval = difference_interval(row, old) if old else None
        out[key] = {
            "previous_n": old["n"] if old else 0,
            "previous_rate": old["rate"] if old else None,
            "change": None if interval is None else row["rate"] - old["rate"],
            "change_low": None if interval is None else interval[0],
            "change_high": None if interval is None else interval[1],
            "within_noise": None if interval is None else interval[0] <= 0 <= interval[1],
        }
    return out
