"""Named periods resolve against the data's as-of day; checked against a day-by-day computation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnelboard.core.errors import UserError
from funnelboard.core.periods import PRESETS, apply, previous, resolve


def unit(name: str, day: date) -> tuple:
    """The calendar unit a day belongs to, for each preset (an ISO week, a month, a quarter, a year)."""
    return {
        "week": day.isocalendar()[:2],
        "month": (day.year, day.month),
        "quarter": (day.year, (day.month - 1) // 3),
        "year": (day.year,),
    }[name]


def days_of(name: str, key: tuple, around: date) -> list[date]:
    """Every day within ~400 days of `around` whose unit is `key`."""
    return [d for d in (around + timedelta(days=i) for i in range(-400, 400)) if unit(name, d) == key]


def oracle(preset: str, as_of: date) -> tuple[date, date]:
    """The preset from its definition in docs/dashboard.md, one day at a time."""
    if preset == "last_4_weeks":
        days = [as_of - timedelta(days=i) for i in range(28)]
        return min(days), max(days)
    if preset == "last_full_week":
        # the latest week all of whose seven days are on or before as_of
        day = as_of
        while not all(d <= as_of for d in days_of("week", unit("week", day), day)):
            day -= timedelta(days=1)
        week = days_of("week", unit("week", day), day)
        return min(week), max(week)
    kind, which = {
        "this_month": ("month", "this"), "last_month": ("month", "last"),
        "this_quarter": ("quarter", "this"), "last_quarter": ("quarter", "last"),
        "year_to_date": ("year", "this"),
    }[preset]
    if which == "this":
        days = [d for d in days_of(kind, unit(kind, as_of), as_of) if d <= as_of]
        return min(days), max(days)
    before = min(days_of(kind, unit(kind, as_of), as_of)) - timedelta(days=1)
    days = days_of(kind, unit(kind, before), before)
    return min(days), max(days)


NAMED = [p for p in PRESETS if p != "custom"]


@pytest.mark.parametrize(
    ("preset", "as_of", "expected"),
    [
        ("last_quarter", date(2018, 11, 14), (date(2018, 7, 1), date(2018, 9, 30))),  # Olist's latest event
        ("last_quarter", date(2018, 1, 1), (date(2017, 10, 1), date(2017, 12, 31))),  # across a year
        ("last_quarter", date(2018, 3, 31), (date(2017, 10, 1), date(2017, 12, 31))),  # a quarter's last day
        ("this_quarter", date(2018, 3, 31), (date(2018, 1, 1), date(2018, 3, 31))),
        ("last_month", date(2024, 3, 1), (date(2024, 2, 1), date(2024, 2, 29))),  # leap year
        ("last_month", date(2023, 3, 31), (date(2023, 2, 1), date(2023, 2, 28))),
        ("last_month", date(2026, 1, 15), (date(2025, 12, 1), date(2025, 12, 31))),
        ("this_month", date(2024, 2, 29), (date(2024, 2, 1), date(2024, 2, 29))),
        ("year_to_date", date(2024, 12, 31), (date(2024, 1, 1), date(2024, 12, 31))),
        ("year_to_date", date(2025, 1, 1), (date(2025, 1, 1), date(2025, 1, 1))),
        ("last_full_week", date(2026, 11, 22), (date(2026, 11, 16), date(2026, 11, 22))),  # a Sunday ends its own week
        ("last_full_week", date(2026, 11, 21), (date(2026, 11, 9), date(2026, 11, 15))),  # a Saturday does not
        ("last_full_week", date(2026, 11, 16), (date(2026, 11, 9), date(2026, 11, 15))),  # nor a Monday
        ("last_4_weeks", date(2024, 3, 1), (date(2024, 2, 3), date(2024, 3, 1))),
    ],
)
def test_presets_on_fixed_days(preset, as_of, expected):
    assert resolve(preset, as_of) == expected == oracle(preset, as_of)


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2998, 1, 1)), st.sampled_from(NAMED))
def test_presets_equal_the_day_by_day_definition(as_of, preset):
    start, end = resolve(preset, as_of)
    assert (start, end) == oracle(preset, as_of)
    assert start <= end <= as_of


def test_custom_is_the_typed_dates_and_explicit_dates_win():
    assert resolve("custom", date(2026, 1, 1)) is None
    assert apply("custom", date(2026, 1, 5), None, date(2026, 3, 1)) == (date(2026, 1, 5), None)
    assert apply("last_month", date(2026, 2, 10), None, date(2026, 3, 1)) == (date(2026, 2, 10), date(2026, 2, 28))
    assert apply("last_month", None, None, None) == (None, None), "no as-of day: nothing to resolve against"


def test_an_unknown_preset_is_one_sentence():
    with pytest.raises(UserError, match="period 'last_decade' is not one of last_full_week"):
        resolve("last_decade", date(2026, 1, 1))


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2998, 1, 1)), st.integers(0, 800))
def test_the_previous_period_has_the_same_length_and_ends_the_day_before(start, days):
    end = start + timedelta(days=days)
    before = previous(start, end)
    assert before[1] == start - timedelta(days=1)
    assert (before[1] - before[0]).days == (end - start).days
