"""Named periods (`?period=last_quarter`, `--period last_quarter`): local dates relative to the data's
as-of day, not to the wall clock, so "last quarter" on an export that ends in 2018 is a quarter of 2018.

One implementation for the dashboard and the CLI: both resolve a preset here, and an explicit
from/to date still wins over the preset's.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from funnelboard.core.errors import UserError

# name -> label, in the order the filter bar offers them ("custom": the from/to dates as typed)
PRESETS: dict[str, str] = {
    "last_full_week": "Last full week",
    "last_4_weeks": "Last 4 weeks",
    "this_month": "This month",
    "last_month": "Last month",
    "this_quarter": "This quarter",
    "last_quarter": "Last quarter",
    "year_to_date": "Year to date",
    "custom": "Custom",
}
COMPARE = ("previous",)  # ?compare=previous: the period of the same length just before


def as_of_day(moment_utc: datetime | None, tz: str) -> date | None:
    """The local day of a naive UTC moment (the latest event) in the configured time zone."""
    if moment_utc is None:
        return None
    return moment_utc.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).date()


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_before(first: date) -> date:
    """The first day of the month before the month starting at `first`."""
    return date(first.year - 1, 12, 1) if first.month == 1 else date(first.year, first.month - 1, 1)


def resolve(name: str, as_of: date) -> tuple[date, date] | None:
    """A preset's first and last day (both inclusive) for an as-of day; None for "custom".

    "this ..." and "year to date" end at the as-of day; "last ..." are the whole calendar unit
    before the as-of day's; "last full week" is the latest Monday-Sunday week that ends on or
    before the as-of day (a Sunday as-of ends its own week); "last 4 weeks" is the 28 days
    ending at the as-of day. An unknown name is a UserError naming the presets.
    """
    if name not in PRESETS:
        raise UserError(f"period '{name}' is not one of {', '.join(PRESETS)}.")
    if name == "custom":
        return None
    if name == "last_full_week":
        end = as_of - timedelta(days=(as_of.weekday() + 1) % 7)  # the latest Sunday on or before as_of
        return end - timedelta(days=6), end
    if name == "last_4_weeks":
        return as_of - timedelta(days=27), as_of
    if name == "this_month":
        return as_of.replace(day=1), as_of
    if name == "last_month":
        first = _month_before(as_of.replace(day=1))
        return first, as_of.replace(day=1) - timedelta(days=1)
    if name == "this_quarter":
        return _quarter_start(as_of), as_of
    if name == "last_quarter":
        this = _quarter_start(as_of)
        return _quarter_start(this - timedelta(days=1)), this - timedelta(days=1)
    return date(as_of.year, 1, 1), as_of  # year_to_date


def apply(name: str | None, start: date | None, end: date | None, as_of: date | None) -> tuple[date | None, date | None]:
    """The period's dates: the preset's, each replaced by an explicit date when one is given."""
    if not name or as_of is None:
        return start, end
    span = resolve(name, as_of)
    if span is None:
        return start, end
    return start or span[0], end or span[1]


def previous(start: date, end: date) -> tuple[date, date]:
    """The period of the same number of days that ends the day before `start`."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def span_text(start: date | None, end: date | None) -> str:
    """'1 Jul – 30 Sep 2018' (years shown once when they are the same)."""
    if start is None or end is None:
        return ""
    if start.year == end.year:
        return f"{start.day} {start:%b} – {end.day} {end:%b %Y}"
    return f"{start.day} {start:%b %Y} – {end.day} {end:%b %Y}"
