"""The URL is the filter state: parse, write back, and turn into a metric request."""

from __future__ import annotations

from datetime import date, datetime

from funnelboard.core.config import load_config
from funnelboard.dashboard.state import ViewState, parse, to_search
from tests.conftest import write


def test_round_trip(config):
    search = "?from=2026-10-01&to=2026-10-31&as_of=2026-11-01&channel=referral&owner=Maya+Patel&segment=channel&from_stage=mql&to_stage=sql"
    state = parse(search, config)
    assert state == ViewState(
        start=date(2026, 10, 1), end=date(2026, 10, 31), as_of=date(2026, 11, 1),
        filters=(("channel", "referral"), ("owner", "Maya Patel")), segment="channel", from_stage="mql", to_stage="sql",
    )
    assert parse(to_search(state), config) == state


def test_names_outside_the_allow_lists_are_dropped_and_said(config):
    state = parse("?lead_id=L1&segment=lead_id&from_stage=nope&from=yesterday&channel=x'%20OR%201=1", config)
    assert state.filters == (("channel", "x' OR 1=1"),), "a hostile value stays a value"
    assert state.segment is None and state.from_stage is None and state.start is None
    assert len(state.problems) == 4
    assert any("'lead_id' is not a filter" in p for p in state.problems)


def test_dates_are_local_days_in_the_configured_zone(tmp_path):
    config = load_config(write(tmp_path / "f.toml", '[funnel]\ntimezone = "America/New_York"\n'))
    req = parse("?from=2026-07-01&to=2026-07-31&as_of=2026-08-01", config).request(config)
    assert req.start == datetime(2026, 7, 1, 4)  # EDT midnight in UTC
    assert req.end == datetime(2026, 8, 1, 4)
    assert req.as_of == datetime(2026, 8, 2, 3, 59, 59, 999999)


def test_empty_search_is_the_default_view(config):
    assert parse("", config) == ViewState()
    assert to_search(ViewState()) == ""
