"""Spell-level marks drill to the spells they count: a click on a stage-accounting bar, a disqualifier
bar or trend point, a duration-histogram bar or a survival point opens /spells with exactly the mark's
number of rows; the list says what it is, its export is what the CLI prints, a bad value is named."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from funnelboard.dashboard.tables import window_rows
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.dashboard.test_lists import cli_csv, listed


def opened(app, mapper, point: dict, search: str) -> tuple[str, int]:
    """The address a click on the mark opens and the length of the list there."""
    from funnelboard.dashboard import spell_drill
    from funnelboard.dashboard.pages import spells

    with app.server.test_request_context():
        target = spell_drill.click_target(mapper, {"points": [{"customdata": point}]}, search)
        assert target and target.startswith("/spells?"), target
        query = "?" + target.split("?", 1)[1]
        response, _count = window_rows(spells.TABLE, query, {"startRow": 0, "endRow": 100})
    return query, response["rowCount"]


def marks(fig, every: int = 1):
    """(customdata, number) of every bar or point with a number, every `every`-th of a trace."""
    for trace in fig.data:
        values = trace.x if getattr(trace, "orientation", None) == "h" else trace.y
        for i, (point, value) in enumerate(zip(trace.customdata or (), values)):
            if isinstance(point, dict) and i % every == 0:
                yield point, value


@pytest.mark.slow
def test_every_stage_accounting_bar_opens_its_spells(app):
    from funnelboard.dashboard import spell_drill
    from funnelboard.dashboard.pages import funnel

    search = "?from=2026-06-01&to=2026-09-30&channel=referral"
    with app.server.test_request_context():
        fig = funnel.update_accounting(search)
    checked = 0
    for point, value in marks(fig):
        query, n = opened(app, spell_drill.accounting_bar, point, search)
        assert n == value, (point, query)
        assert dict(parse_qsl(query[1:]))["channel"] == "referral"
        checked += 1
    assert checked >= 20 and any(v for _, v in marks(fig))


@pytest.mark.slow
def test_every_disqualifier_bar_and_some_trend_points_open_their_spells(app):
    from funnelboard.dashboard import spell_drill
    from funnelboard.dashboard.pages import disqualifiers

    search = "?from=2026-03-01&to=2026-10-31"
    with app.server.test_request_context():
        pareto, trend = disqualifiers.update(search), disqualifiers.update_trend(search)
    bars = [(p, v) for p, v in marks(pareto) if p.get("reason") is not None and pareto.data[0].customdata is not None]
    for point, value in bars[: len(pareto.data[0].x)]:
        _query, n = opened(app, spell_drill.disqualifier_mark, point, search)
        assert n == value, point
    points = [(p, v) for p, v in marks(trend, every=5) if "reason" in p and v]
    assert bars and points
    for point, value in points[:12]:
        query, n = opened(app, spell_drill.disqualifier_mark, point, search)
        assert n == value and "week=" in query, point
    others = [(p, v) for p, v in marks(trend, every=4) if "reason" not in p and v]
    assert others and all(p["other_than_top"] == 5 for p, _ in others)
    for point, value in others[:8]:  # "Other reasons": the week's exits outside the top 5, no more, no fewer
        query, n = opened(app, spell_drill.disqualifier_mark, point, search)
        assert n == value and "other_than_top=5" in query and "reason=" not in query, point


@pytest.mark.slow
def test_other_reasons_rank_under_the_same_lead_filters(app, db):
    """The top 5 of referral leads' exits are not the top 5 of all exits: the list ranks as the chart did."""
    from funnelboard.dashboard import spell_drill
    from funnelboard.dashboard.pages import disqualifiers, spells

    search = "?from=2026-01-01&to=2026-10-31&channel=referral"
    with app.server.test_request_context():
        trend = disqualifiers.update_trend(search)
    others = [(p, v) for p, v in marks(trend) if "reason" not in p and v]
    assert others
    total = sum(v for _, v in others)
    for point, value in others[:6]:
        query, n = opened(app, spell_drill.disqualifier_mark, point, search)
        assert n == value, point
    query = "?from=2026-01-01&to=2026-10-31&channel=referral&other_than_top=5"
    with app.server.test_request_context():
        header, _body = spells.update(query)
    assert f"{total:,} spells" in str(header) and "exits for reasons outside the top 5" in str(header)
    printed = cli_csv(db, "spells", "--filter", "channel=referral", "--filter", "other_than_top=5",
                      "--from", "2026-01-01", "--to", "2026-10-31")
    assert len(printed.splitlines()) - 1 == total


@pytest.mark.slow
@pytest.mark.parametrize("search", ["?channel=referral", "?from=2026-01-01&to=2026-10-31&days=business"])
def test_histogram_bars_open_their_spells_completed_or_open(app, search):
    from funnelboard.dashboard import spell_drill
    from funnelboard.dashboard.pages import time_in_stage

    with app.server.test_request_context():
        fig = time_in_stage.update_distribution(search)
    bars = [(p, v) for p, v in marks(fig) if v]
    picked = bars[::7] + [(p, v) for p, v in bars if p["max_days"] is None]
    assert any(p["max_days"] is None for p, _ in picked) and any(p["open"] for p, _ in picked)
    for point, value in picked:
        query, n = opened(app, spell_drill.histogram_bar, point, search)
        assert n == value, (point, query)
        assert ("days=business" in query) == ("business" in search)


@pytest.mark.slow
def test_survival_points_open_the_spells_still_in_the_stage(app, db):
    from funnelboard.dashboard import spell_drill
    from funnelboard.dashboard.pages import time_in_stage

    search = "?segment=channel"
    with app.server.test_request_context():
        fig = time_in_stage.update_survival(search)
    at_risk = {(r["stage"], r["channel"], r["days"]): r["at_risk"]
               for r in run_metric(Gateway(db), "survival", MetricRequest(segment="channel"))}
    points = [p for p, _ in marks(fig, every=40)] + [p for p, _ in marks(fig) if "step" not in p][:6]
    assert any("step" not in p for p in points) and len(points) > 12
    for point in points:
        query, n = opened(app, spell_drill.survival_point, point, search)
        assert n == at_risk[(point["stage"], point["channel"], point["days"])], (point, query)
        assert dict(parse_qsl(query[1:]))["channel"] == point["channel"]


def test_the_list_says_what_it_is_links_its_leads_and_exports_what_the_cli_prints(app, db):
    from funnelboard.dashboard.pages import spells

    search = "?stage=mql&next=exited&left_to=disqualified&channel=referral"
    with app.server.test_request_context():
        header, _body = spells.update(search)
        rows, count = listed(spells.TABLE, search)
    line = header.children[0].children
    leads = len({r["lead_id"] for r in rows})
    assert line == f"{len(rows):,} spells of {leads:,} leads" and rows
    assert "in MQL" in header.children[1] and "exited to disqualified" in header.children[1] and "channel = referral" in header.children[1]
    assert all(r["stage"] == "mql" and r["left_to"] == "disqualified" for r in rows)
    assert spells.columns(None)[0]["cellClass"] == "link-cell"  # the grid's cell click opens /lead/<id>
    download = app.server.test_client().get("/export/spells.csv" + search)
    assert download.status_code == 200
    assert download.get_data(as_text=True) == cli_csv(db, "spells", "--filter", "stage=mql", "--filter", "next=exited",
                                                      "--filter", "left_to=disqualified", "--filter", "channel=referral")


def test_a_bad_value_is_named_on_the_page_and_refused_by_the_export(app):
    from funnelboard.dashboard import state
    from funnelboard.dashboard.runtime import gateway

    search = "?stage=mql&next=sideways&min_days=-2"
    with app.server.test_request_context():
        problems = state.parse(search, gateway().config()).problems
    assert any("next 'sideways'" in p for p in problems) and any("min_days '-2'" in p for p in problems)
    refused = app.server.test_client().get("/export/spells.csv" + search)
    assert refused.status_code == 400 and "Next 'sideways'" in refused.get_data(as_text=True)
