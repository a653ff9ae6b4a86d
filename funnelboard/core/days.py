"""Dates a user types (on the command line, in a URL): read strictly, within the years funnelboard can
compute with, or refused in one sentence. Year 1 or 9999 would overflow the day arithmetic of a period."""

from __future__ import annotations

from datetime import date, datetime

from funnelboard.core.errors import UserError

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def parse_day(text: str, what: str) -> date:
    """A YYYY-MM-DD date between FIRST_DAY and LAST_DAY, else UserError naming `what`."""
    try:
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        raise UserError(f"{what} '{text}' is not a date: expected YYYY-MM-DD.") from None
    return within(day, what, text)


def parse_moment(text: str, what: str) -> datetime:
    """A date or an ISO date-time (with or without offset) within the same years."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise UserError(f"{what} '{text}' is not a date or timestamp: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM.") from None
    within(moment.date(), what, text)
    return moment


def within(day: date, what: str, text: str) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UserError(f"{what} '{text}' is out of range: expected a date from {FIRST_DAY} to {LAST_DAY}.")
    return day
