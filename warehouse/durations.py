"""Time in stage from one sorted key array: the DuckDB fast path of `time_in_stage`, `survival`
and `duration_distribution` (docs/metrics.md).

`queries/metrics/stage_durations.sql` selects exactly the spells those metrics' SQL reads and turns
each into one 64-bit key, ((group * 2^50) + duration in microseconds) * 2 + completed, with group =
stage_order * segment_count + the segment value's number; DuckDB sorts the keys. Sorted, the array
holds each (stage, segment value) group's durations in ascending order, so the Kaplan-Meier steps,
the quantiles, the survival grid and the histogram bins are linear numpy passes here, where the SQL
needs a GROUP BY over every distinct duration and two window sorts (seconds at 10M spells).

The arithmetic follows the SQL files step for step (same doubles: a duration in days is its
microseconds / 86400000000.0, as `fct_spells.duration_days`), and tests hold the two to 1e-9 on
generated data (tests/queries/test_time_fast_path.py). Pure functions: arrays in, rows out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

US_BITS = 50  # a duration takes the key's bits 1..50: up to 2^50 us, 35 years
GROUP_LIMIT = 1 << 12  # groups take bits 51..62: stage_order * segment_count + segment number below this
US_PER_DAY = 86_400_000_000
KM_EPSILON = 1e-12  # S(t) at or below 1 - p + this counts as reaching the p-quantile (as the SQL)
QUANTILES = (("p50", 0.5), ("p75", 0.75), ("p90", 0.9))


@dataclass(frozen=True)
class Group:
    """The spells of one stage and segment value: durations ascending, and which are completed."""

    stage_order: int
    segment: str
    us: np.ndarray  # int64, ascending
    completed: np.ndarray  # bool

    @property
    def days(self) -> np.ndarray:
        return self.us / US_PER_DAY


def fits(stage_count: int, segment_count: int) -> bool:
    """Whether every group number of a request fits the key (else the SQL path computes it)."""
    return (stage_count + 1) * segment_count < GROUP_LIMIT


def groups(keys: np.ndarray, segments: Sequence[str], stage_orders: Sequence[int]) -> list[Group]:
    """Split sorted keys into their (stage, segment value) groups, in stage order then segment order.
    A group's keys lie between the first possible keys of it and of the next group, found by binary
    search: no array of group numbers the size of the keys is made."""
    keys = np.asarray(keys, dtype=np.int64)
    if keys.size and keys[0] < 0:
        raise ValueError("a negative duration key: a spell ends before it starts")
    out = []
    shift = US_BITS + 1
    for stage_order in stage_orders:
        for segment_no, segment in enumerate(segments):
            group = stage_order * len(segments) + segment_no
            a, b = np.searchsorted(keys, [group << shift, (group + 1) << shift])
            if b > a:
                chunk = keys[a:b]
                us = np.right_shift(chunk, 1)
                np.bitwise_and(us, (1 << US_BITS) - 1, out=us)
                out.append(Group(stage_order, segment, us, _low_bit(chunk)))
    if sum(g.us.size for g in out) != keys.size:
        raise ValueError("a duration key outside the request's stages and segment values")
    return out


def _low_bit(values: np.ndarray) -> np.ndarray:
    """The lowest bit of int64 values as booleans, through their lowest byte: a temporary of one byte
    a value instead of eight (the server's memory budget; a stage can hold 3.6M spells at 10M events)."""
    if np.little_endian:
        return (values.view(np.uint8)[::8] & 1).astype(bool)
    return (values & 1).astype(bool)


# --- quantiles and Kaplan-Meier ---------------------------------------------------------------


def quantile_cont(sorted_values: np.ndarray, q: float) -> float | None:
    """Linear interpolation between the closest ranks at (n - 1) * q (DuckDB's quantile_cont)."""
    n = sorted_values.size
    if n == 0:
        return None
    position = (n - 1) * q
    lo, hi = math.floor(position), math.ceil(position)
    low = float(sorted_values[lo])
    return low if lo == hi else low + (float(sorted_values[hi]) - low) * (position - lo)


def quantile_disc(values: np.ndarray, q: float) -> float:
    """DuckDB's quantile_disc of unsorted values: the value at sorted index max(1, n - floor(n - n q)) - 1,
    the ceil(q n)-th smallest."""
    n = values.size
    i = max(1, n - math.floor(n - n * q)) - 1
    return float(np.partition(values, i)[i])


@dataclass(frozen=True)
class Steps:
    """A group's distinct durations t (days, ascending) with the running counts and KM S after t."""

    days: np.ndarray
    completed_by: np.ndarray  # spells completed with duration <= t
    left_by: np.ndarray  # spells (completed or open) with duration <= t
    survival: np.ndarray  # S(t) = prod over distinct t_i <= t of (1 - d_i / n_i)
    spells: int

    def quantile_index(self, p: float) -> int | None:
        """Index of the KM p-quantile: the first t with S(t) <= 1 - p + 1e-12, None when S stays above."""
        reached = np.flatnonzero(self.survival <= 1 - p + KM_EPSILON)
        return int(reached[0]) if reached.size else None


def km_steps(g: Group) -> Steps:
    n = g.us.size
    first = np.flatnonzero(np.r_[True, g.us[1:] != g.us[:-1]])
    leaving = np.diff(np.r_[first, n])
    completions = np.add.reduceat(g.completed.astype(np.int64), first)
    left_by = np.cumsum(leaving)
    at_risk = n - left_by + leaving  # spells with duration >= t
    return Steps(
        days=g.us[first] / US_PER_DAY,
        completed_by=np.cumsum(completions),
        left_by=left_by,
        survival=np.cumprod(1.0 - completions / at_risk),
        spells=n,
    )


@dataclass(frozen=True)
class LogRank:
    """The log-rank test of two groups' curves: the second group's completions observed and
    expected (were both to leave alike), and the two-sided p-value (None when nothing completed)."""

    observed: float
    expected: float
    p_value: float | None


def log_rank(a: Group, b: Group) -> LogRank:
    """The (Mantel) log-rank test of whether spells of `a` and `b` leave the stage alike: at each
    distinct duration t with completions, d of the n at risk (duration >= t, open ones censored at
    their age) complete; b is expected d * n_b / n of them with variance d (n_b / n)(1 - n_b / n)(n - d) / (n - 1).
    chi2 = (O_b - E_b)^2 / V on 1 degree of freedom. O_b < E_b: b leaves slower."""
    us = np.concatenate([a.us, b.us])
    order = np.argsort(us, kind="stable")
    us = us[order]
    completed = np.concatenate([a.completed, b.completed])[order].astype(np.int64)
    in_b = np.concatenate([np.zeros(a.us.size, np.int64), np.ones(b.us.size, np.int64)])[order]
    n = us.size
    if n == 0:
        return LogRank(0.0, 0.0, None)
    first = np.flatnonzero(np.r_[True, us[1:] != us[:-1]])
    leaving = np.diff(np.r_[first, n])
    leaving_b = np.add.reduceat(in_b, first)
    at_risk = (n - np.cumsum(leaving) + leaving).astype(float)
    at_risk_b = (b.us.size - np.cumsum(leaving_b) + leaving_b).astype(float)
    d = np.add.reduceat(completed, first).astype(float)
    d_b = np.add.reduceat(completed * in_b, first).astype(float)
    share_b = at_risk_b / at_risk
    expected = float(np.sum(d * share_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(at_risk > 1, d * share_b * (1 - share_b) * (at_risk - d) / (at_risk - 1), 0.0)
    variance = float(np.sum(var))
    observed = float(np.sum(d_b))
    if variance <= 0:
        return LogRank(observed, expected, None)
    chi2 = (observed - expected) ** 2 / variance
    return LogRank(observed, expected, math.erfc(math.sqrt(chi2 / 2)))


# --- the three metrics' rows ----------------------------------------------------------------


def time_in_stage_rows(gs: list[Group], stage_names: dict[int, str]) -> list[dict]:
    """time_in_stage.sql's rows: per group, completed-only and Kaplan-Meier p50 / p75 / p90."""
    rows = []
    for g in gs:
        completed = g.us[g.completed] / US_PER_DAY
        steps = km_steps(g)
        row = {"stage": stage_names[g.stage_order], "segment": g.segment,
               "n_completed": int(completed.size), "n_open": int(g.us.size - completed.size)}
        for name, p in QUANTILES:
            row[name] = quantile_cont(completed, p)
        for name, p in QUANTILES:
            i = steps.quantile_index(p)
            row[f"km_{name}"] = None if i is None else float(steps.days[i])
        rows.append(row)
    return rows


def _horizons(gs: list[Group]) -> dict[int, float]:
    """Per stage, every segment value: the p99 (quantile_disc) of completed durations, of all when none is."""
    out = {}
    for stage_order in dict.fromkeys(g.stage_order for g in gs):
        of_stage = [g for g in gs if g.stage_order == stage_order]
        completed = np.concatenate([g.us[g.completed] for g in of_stage])
        chosen = completed if completed.size else np.concatenate([g.us for g in of_stage])
        out[stage_order] = quantile_disc(chosen, 0.99) / US_PER_DAY
    return out


def _width(horizon: float, widths: Sequence[float], count, limit: int) -> float | None:
    """The smallest width whose count of steps or bins for the horizon is within the limit."""
    return next((w for w in widths if count(horizon, w) <= limit), None)


def _steps(horizon: float, width: float, slack: float) -> int:
    return max(math.ceil(horizon / width - slack), 0)


def _bins(horizon: float, width: float, slack: float) -> int:
    return math.floor(horizon / width + slack) + 1


def survival_rows(gs: list[Group], stage_names: dict[int, str], *, widths: Sequence[float], max_steps: int, slack: float) -> list[dict]:
    """survival.sql's rows: each curve's exact KM S(t) on its stage's grid, plus its KM quantile points."""
    horizons = _horizons(gs)
    rows = []
    for g in gs:
        steps = km_steps(g)
        width = _width(horizons[g.stage_order], widths, lambda h, w: _steps(h, w, slack), max_steps)
        marks: dict[int, list[str]] = {}
        for name, p in QUANTILES:
            i = steps.quantile_index(p)
            if i is not None:
                marks.setdefault(i, []).append(name)
        points = [(float(steps.days[i]), i, " ".join(sorted(names))) for i, names in marks.items()]
        if width is not None:
            mark_days = [days for days, _i, _names in points]
            # a distinct duration counts at the first grid point at or after it (within the slack)
            k_of = np.maximum(np.ceil(steps.days / width - slack), 0).astype(np.int64)
            for k in range(_steps(horizons[g.stage_order], width, slack) + 1):
                days = k * width
                if any(abs(m - days) <= slack * width for m in mark_days):
                    continue  # a grid point within the slack of a quantile point gives way to it
                last = int(np.searchsorted(k_of, k, side="right")) - 1
                points.append((days, last, None))
        for days, i, mark in sorted(points, key=lambda p: p[0]):
            completed = int(steps.completed_by[i]) if i >= 0 else 0
            left = int(steps.left_by[i]) if i >= 0 else 0
            rows.append({
                "stage": stage_names[g.stage_order],
                "segment": g.segment,
                "days": days,
                "at_risk": steps.spells - left,
                "completed": completed,
                "censored": left - completed,
                "survival": float(steps.survival[i]) if i >= 0 else 1.0,
                "km_quantile": mark,
            })
    return rows


def distribution_rows(gs: list[Group], stage_names: dict[int, str], *, widths: Sequence[float], max_bins: int, slack: float) -> list[dict]:
    """duration_distribution.sql's rows: completed and open spells per bin [k w, (k + 1) w), and one
    open-ended bin past the stage's p99 when it has spells."""
    horizons = _horizons(gs)
    rows = []
    for g in gs:
        horizon = horizons[g.stage_order]
        width = _width(horizon, widths, lambda h, w: _bins(h, w, slack), max_bins)
        if width is None:
            continue
        bins = _bins(horizon, width, slack)
        k = np.minimum(np.floor(g.days / width + slack).astype(np.int64), bins)
        completed = np.bincount(k[g.completed], minlength=bins + 1)
        open_ = np.bincount(k[~g.completed], minlength=bins + 1)
        for i in range(bins + 1):
            if i == bins and completed[i] + open_[i] == 0:
                continue
            rows.append({
                "stage": stage_names[g.stage_order],
                "segment": g.segment,
                "bin_start": i * width,
                "bin_end": (i + 1) * width if i < bins else None,
                "completed": int(completed[i]),
                "open": int(open_[i]),
            })
    return rows
