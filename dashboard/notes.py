"""What a page says about its numbers: which week the review shows and why, what a conversion window
or the maturity horizon does to a rate, and why a chart is empty. Plain sentences from the
warehouse's facts; no figure, no layout."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dash import html

from funnelboard.dashboard.state import ViewState
from funnelboard.dashboard.theme import stage_label
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.base import local_time
from funnelboard.warehouse.metrics.conversion import window_left_out


def _day(moment: datetime | date) -> str:
    return f"{moment:%a %d %b %Y}"


def review_notes(g: Gateway, req: MetricRequest, week: dict) -> list:
    """The line above the cards: the week, how far into it as_of is, why this week, the window."""
    if g.facts()["first_event"] is None:  # no week to show: a week of 1970 would be read as data
        return ["The warehouse holds no events yet: load an events file (every row of those loaded so far is in "
                "the quarantine, on the Data quality page)."]
    tz = ZoneInfo(g.config().timezone)
    monday = week["week"]
    sunday = monday + timedelta(days=6)
    as_of = local_time(week["as_of"], tz)
    line: list = [html.Strong(f"Week of {_day(monday)} to {sunday:%a %d %b}"), f" · as of {as_of:%a %d %b %Y %H:%M}"]
    if week["partial"]:
        line += [" · ", html.Span(f"week to date: {week['days_in']:.1f} of 7 days", className="wtd"),
                 ", compared with the same point of the weeks before."]
    if week["reason"] == "last_full_week" and week["data_end"] is not None:
        data_end = local_time(week["data_end"], tz)
        feed = local_time(week["new_leads_end"], tz) if week["new_leads_end"] else data_end
        line += [html.Br(), f"The data ends on {_day(data_end)}"]
        if feed.date() < data_end.date():
            line.append(f" (new leads until {_day(feed)})")
        line.append(": this is the last full week of new leads. Pick another week with the As of date.")
    line += [html.Br(), window_note(g, req)]
    return line


def window_note(g: Gateway, req: MetricRequest) -> str:
    """What counts as a conversion of the key rate and when its cohorts count as settled, in a sentence or two."""
    config = g.config()
    key = config.review_rate
    pair = f"{stage_label(key.from_stage)} → {stage_label(key.to_stage)}"
    row = run_metric(g, "conversion", MetricRequest(
        start=req.start, end=req.end, as_of=req.as_of, window_days=req.window_days,
        from_stage=key.from_stage, to_stage=key.to_stage))[0]
    window, horizon = row["window_days"], row["maturity_days"]
    if window:
        text = f"{key.name} counts a conversion within {window} days (the conversion window)"
        left_out = window_left_out(g, req.as_of)
        if left_out:
            n, total = left_out["left_out"], left_out["conversions"]
            text += f"; the window leaves out {n:,} of {total:,} {pair} conversions ({n / total:.0%})"
        return text + "."
    if not horizon:
        return f"{key.name} counts every {pair} conversion, however long it takes (no window)."
    return (f"{key.name} counts every {pair} conversion, however long it takes (no window); a week's leads count as "
            f"still converting for {horizon:.0f} days, the time 90 % of {pair} conversions took.")


def empty_for(g: Gateway, view: ViewState, none: str | None = None, week: date | None = None) -> str:
    """Why a chart of this view has nothing to show, in one sentence: filters that match nothing, a
    period with no data (and where the data is), or data in the period with nothing of the chart's
    kind (`none`, e.g. "No lead left the funnel to an outcome"). "this period" only when the view
    has one; without dates the view is the whole data, unless the chart shows one `week` (the
    weekly review's, chosen from the data when the address names none)."""
    if week is not None and view.start is None and view.end is None:
        view = replace(view, start=week, end=week + timedelta(days=6))
    dated = view.start is not None or view.end is not None
    where = f"in the week of {_day(week)}" if week is not None else "in this period" if dated else "in the data"
    if view.filters:
        shown = ", ".join(f"{column} = {value}" for column, value in view.filters)
        return f"No leads match the filters ({shown}) {where}."
    facts = g.facts()
    first, last = facts["first_event"], facts["last_event"]
    if first is None:
        return "The warehouse holds no events yet."
    tz = ZoneInfo(g.config().timezone)
    first, last = local_time(first, tz).date(), local_time(last, tz).date()
    if not dated or ((view.start is None or view.start <= last) and (view.end is None or view.end >= first)):
        return f"{none or 'Nothing to draw'} {where}."
    return f"No data in this period: the data runs from {_day(first)} to {_day(last)}."


def week_notes(g, filters, first, last, scope=None) -> list:
    """The annotations beside the warehouse for a view's filters and days (none for marts without a
    file), as the signed-in user may see them (`scope`: the request's user's, by default)."""
    from funnelboard.core import annotations
    from funnelboard.dashboard.runtime import current_scope

    db = getattr(g, "db", None)
    if db is None:
        return []
    scope = current_scope() if scope is None else scope
    return annotations.for_view(annotations.read(annotations.notes_path(db)), tuple(filters), first, last, scope)
