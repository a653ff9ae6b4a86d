"""Date presets in the URL, the bar and the CLI (one resolution), and the segment rates against the period before."""

from __future__ import annotations

import json
import math
from datetime import date
from urllib.parse import parse_qsl

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core import periods
from funnelboard.dashboard import state
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import run_metric
from tests.oracle.oracle import wilson_interval


def cli_json(db, *args) -> list[dict]:
    result = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def latest(db) -> date:
    g = Gateway(db)
    return periods.as_of_day(g.facts()["last_event"], g.config().timezone)


def test_a_preset_in_the_url_resolves_against_the_data_and_round_trips(config):
    view = state.parse("?period=last_quarter&channel=referral", config, latest=date(2018, 11, 14))
    assert (view.start, view.end, view.period) == (date(2018, 7, 1), date(2018, 9, 30), "last_quarter")
    assert state.parse(state.to_search(view), config, latest=date(2018, 11, 14)) == view
    # ?as_of moves the preset with it; an explicit date wins over the preset's
    assert state.parse("?period=last_month&as_of=2026-03-10", config).start == date(2026, 2, 1)
    assert state.parse("?period=last_month&as_of=2026-03-10&to=2026-02-14", config).end == date(2026, 2, 14)
    assert state.parse("?period=custom", config) == state.ViewState()


def test_an_unknown_preset_or_comparison_is_named_under_the_bar(config):
    view = state.parse("?period=last_decade&compare=yoy", config, latest=date(2026, 1, 1))
    assert view.start is None and view.period is None and view.compare is None
    assert [p.split(" is not")[0] for p in view.problems] == ["period 'last_decade'", "compare 'yoy'"]


def test_the_bar_shows_the_preset_and_its_dates_and_the_nav_keeps_it(app, db):
    from funnelboard.dashboard import filters

    day = latest(db)
    first, last = periods.resolve("last_quarter", day)
    with app.server.test_request_context():
        bar = filters.build_bar("?period=last_quarter&segment=channel")
        period = bar[0]
        assert period.children[1].value == "last_quarter"
        assert period.children[2].children == f"{periods.span_text(first, last)} (as of {day:%Y-%m-%d})"
        pickers = {c.children[1].id["key"]: c.children[1] for c in bar[1:4]}
        assert pickers["from"].date is None and pickers["from"].placeholder == first.isoformat()
        assert pickers["to"].placeholder == last.isoformat()
        hrefs = filters.carry_filters("?period=last_quarter&channel=referral&segment=channel&from_stage=mql", [{"path": "/funnel"}])
    assert dict(parse_qsl(hrefs[0].split("?", 1)[1])) == {"period": "last_quarter", "channel": "referral"}


def test_picking_a_preset_clears_typed_dates_and_typing_a_date_ends_the_preset(app):
    from funnelboard.dashboard.filters import CHOICE, DATE, PARAM, PERIOD, _changes

    with app.server.test_request_context():
        assert _changes("?from=2026-01-01&to=2026-01-31", PERIOD, "period", "last_month") == {"period": "last_month", "from": None, "to": None}
        assert _changes("?period=last_month&as_of=2026-03-10", DATE, "from", "2026-02-05") == {"period": None, "from": "2026-02-05", "to": "2026-02-28"}
        assert _changes("?period=last_month&as_of=2026-03-10", PERIOD, "period", "custom") == {"period": None, "from": "2026-02-01", "to": "2026-02-28"}
        # a control redrawn (or mounted by the next page) with what the address says changes nothing
        assert _changes("?period=last_month", PERIOD, "period", "last_month") == {}
        assert _changes("?period=last_month", DATE, "from", None) == {}
        assert _changes("?channel=referral", CHOICE, "channel", "referral") == {}
        assert _changes("?channel=referral", PARAM, "from_stage", None) == {}
        assert _changes("?channel=referral", PARAM, "from_stage", "sql") == {"from_stage": "sql"}


@pytest.mark.slow
def test_the_cli_period_is_the_page_period(app, db):
    """`query --period` and `?period=` resolve by the same function: same request, same rows."""
    from funnelboard.dashboard.views import view_request

    for preset in ("last_quarter", "last_4_weeks", "year_to_date"):
        with app.server.test_request_context():
            req, _view = view_request(Gateway(db), f"?period={preset}&segment=channel")
            page = run_metric(Gateway(db), "segment_conversion", req)
        cli = cli_json(db, "segment_conversion", "--period", preset, "--segment", "channel")
        assert [(r["channel"], r["n"], r["converted"]) for r in page] == [(r["channel"], r["n"], r["converted"]) for r in cli]
        assert sum(r["n"] for r in cli) > 0, preset
        first, last = periods.resolve(preset, latest(db))
        explicit = cli_json(db, "segment_conversion", "--from", first.isoformat(), "--to", last.isoformat(), "--segment", "channel")
        assert explicit == cli


def test_a_cli_period_with_an_explicit_date_lets_the_date_win(db):
    first, last = periods.resolve("last_quarter", latest(db))
    a = cli_json(db, "conversion", "--period", "last_quarter", "--to", first.replace(day=15).isoformat())
    b = cli_json(db, "conversion", "--from", first.isoformat(), "--to", first.replace(day=15).isoformat())
    assert a == b


def newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Newcombe's method 10 from the counts: the difference's interval from each side's Wilson interval."""
    (l1, u1), (l2, u2) = wilson_interval(x1, n1), wilson_interval(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    return p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2)


def test_segment_rates_against_the_previous_period_equal_the_cli_and_the_oracle(app, db):
    import funnelboard.dashboard.pages.segments as page

    first, last = periods.resolve("last_quarter", latest(db))
    before = periods.previous(first, last)
    now_rows = cli_json(db, "segment_conversion", "--period", "last_quarter", "--segment", "channel")
    old_rows = {r["channel"]: r for r in cli_json(db, "segment_conversion", "--from", before[0].isoformat(), "--to", before[1].isoformat(), "--segment", "channel")}
    with app.server.test_request_context():
        fig = page.update("?period=last_quarter&compare=previous&segment=channel")
    assert periods.span_text(*before) in fig.layout.title.text
    previous_trace = next(t for t in fig.data if t.name.startswith("Previous period"))
    shown = {c["channel"]: x for c, x in zip(previous_trace.customdata, previous_trace.x)}
    assert shown == {k: r["rate"] for k, r in old_rows.items() if r["n"]}
    hovers = {c["channel"]: h for t in fig.data if not t.name.startswith("Previous") for c, h in zip(t.customdata, t.hovertext)}
    verdicts = set()
    for r in now_rows:
        old = old_rows[r["channel"]]
        low, high = newcombe(r["converted"], r["n"], old["converted"], old["n"])
        verdict = "within the intervals' noise" if low <= 0 <= high else "beyond the intervals' noise"
        assert verdict in hovers[r["channel"]], (r, old, low, high)
        verdicts.add(verdict)
    assert len(now_rows) == len(hovers) == 6


def test_without_compare_the_segment_rates_show_no_previous_period(app):
    import funnelboard.dashboard.pages.segments as page

    with app.server.test_request_context():
        fig = page.update("?period=last_quarter&segment=channel")
    assert not any(t.name.startswith("Previous") for t in fig.data)
