"""Drill-downs complete and consistent: a "(none)" value, a matrix cell and the stage pickers open exactly
the leads their number counts; the list shows what narrows it as removable chips."""

from __future__ import annotations

import csv
from urllib.parse import parse_qsl

import pytest

from funnelboard.core.config import load_config
from funnelboard.dashboard import state
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.dashboard.test_any_funnel import olist  # noqa: F401 - the Olist warehouse and app
from tests.dashboard.test_lists import listed


@pytest.fixture(scope="module")
def holes(tmp_path_factory):
    """The demo with the channel of every 7th lead left blank: a '(none)' channel of a few hundred leads."""
    folder = tmp_path_factory.mktemp("holes")
    events = generate(out=folder / "events.csv", n_leads=2000, seed=3).path
    with open(events, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if int(row["lead_id"][1:]) % 7 == 0:
            row["channel"] = ""
    with open(folder / "holes.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    db = folder / "wh.duckdb"
    load_files(db, [folder / "holes.csv"], load_config(None), now=NOW)
    from funnelboard.dashboard.app import create_app

    return db, create_app(db)


def drilled(app, mapper, point: dict, search: str) -> list[dict]:
    import funnelboard.dashboard.pages.leads as leads_page
    from funnelboard.dashboard import drill

    with app.server.test_request_context():
        target = drill.click_target(mapper, {"points": [{"customdata": point}]}, search)
        assert target and target.startswith("/leads?"), target
        rows, _count = listed(leads_page.TABLE, "?" + target.split("?", 1)[1])
    return rows


@pytest.mark.slow
@pytest.mark.parametrize(("which", "column"), [("holes", "channel"), ("olist", "channel"), ("olist", "business_segment")])
def test_a_none_value_drills_to_exactly_its_leads(request, which, column):
    from funnelboard.dashboard import drill

    db, app = request.getfixturevalue(which)
    rows = run_metric(Gateway(db), "segment_conversion", MetricRequest(segment=column))
    none = next(r for r in rows if r[column] == "(none)")
    assert none["n"] > 0
    listed_rows = drilled(app, drill.segment_point, {column: "(none)"}, f"?segment={column}")
    assert len(listed_rows) == none["n"] and sum(r["converted"] for r in listed_rows) == none["converted"]
    assert all(r[column] in (None, "") for r in listed_rows)
    # and the filter bar offers '(none)' for that column, so its drop-down shows the drilled value
    with app.server.test_request_context():
        from funnelboard.dashboard.filters import segment_values
        from funnelboard.dashboard.runtime import gateway

        assert "(none)" in segment_values(gateway())[column]


def test_every_matrix_cell_drills_to_its_n(app, db):
    """The crossed view's cells, (none) and too-few ones included: the list has the cell's n."""
    import funnelboard.dashboard.pages.segments as page
    from funnelboard.dashboard import drill

    search = "?segment=channel&segment2=company_size&from_stage=sql&to_stage=won"
    with app.server.test_request_context():
        fig = page.update(search)
    cells = [(c, t.text[i][j]) for t in fig.data for i, row in enumerate(t.customdata) for j, c in enumerate(row) if t.z[i][j] is not None]
    metric = {(r["channel"], r["company_size"]): r for r in run_metric(
        Gateway(db), "segment_conversion", MetricRequest(segment="channel", segment2="company_size", from_stage="sql", to_stage="won"))}
    assert len(cells) == sum(1 for r in metric.values() if r["n"]) > 12
    for cell, text in cells[:: max(1, len(cells) // 8)]:
        expected = metric[(cell["channel"], cell["company_size"])]
        assert f"n={expected['n']:,}" in text
        rows = drilled(app, drill.segment_point, cell, search)
        assert len(rows) == expected["n"] and sum(r["converted"] for r in rows) == expected["converted"]


def test_the_stage_pickers_write_the_url_and_unknown_stages_are_named(app, config):
    import funnelboard.dashboard.pages.leads as page
    from funnelboard.dashboard.filters import PARAM

    with app.server.test_request_context():
        pickers = page.stage_pickers({"from_stage": "sql", "to_stage": "nope"})
    dropdowns = {c.children[1].id["key"]: c.children[1] for c in pickers.children}
    assert all(d.id["type"] == PARAM for d in dropdowns.values()), "written to the URL by the bar's write_url"
    assert dropdowns["from_stage"].value == "sql" and dropdowns["to_stage"].value is None
    assert [o["value"] for o in dropdowns["to_stage"].options] == list(config.stages)
    problems = state.parse("?from_stage=sql&to_stage=nope", config).problems
    assert problems == ("to_stage 'nope' is not a stage of this funnel (its stages: lead, mql, sql, opportunity, proposal, won).",)
    view = state.parse("?from_stage=proposal&to_stage=mql", config)
    assert view.from_stage is None and view.to_stage is None
    assert view.problems == ("to_stage 'mql' comes before from_stage 'proposal' in the funnel (lead, mql, sql, opportunity, proposal, won).",)
    assert "comes before" in state.parse("?from_stage=proposal", config).problems[0], "against the key rate's to stage"
    assert state.parse("?from_stage=won&to_stage=won", config).problems == ()


def test_the_list_shows_what_narrows_it_as_chips_that_remove_one_key_each(app):
    import funnelboard.dashboard.pages.leads as page

    search = "?from=2026-10-05&to=2026-10-11&channel=referral&from_stage=mql&to_stage=sql&which=converted&window=0&as_of=2026-11-01"
    with app.server.test_request_context():
        header, _body = page.update(search)
    chips = next(c for c in header if getattr(c, "className", None) == "chips")
    shown = {}
    for chip in chips.children:
        text, link = chip.children
        shown[text.split(":")[0]] = dict(parse_qsl(link.href.split("?", 1)[1]))
        assert link.href.startswith("/leads?") and link.children == "×"
    full = dict(parse_qsl(search[1:]))
    assert set(shown) == {"from", "to", "channel", "from stage", "to stage", "which", "window"}
    for name, remaining in shown.items():
        key = name.replace(" ", "_")
        assert remaining == {k: v for k, v in full.items() if k != key}


def test_an_attribute_known_only_at_a_later_stage_is_named(olist, app):  # noqa: F811
    """Olist's business segment is set only on closed deals: its rates to won are 100 % / 0 % by construction."""
    import funnelboard.dashboard.pages.segments as page

    db, olist_app = olist
    with olist_app.server.test_request_context():
        note = page.update_note("?segment=business_segment&segment2=channel")
        assert page.update_note("?segment=channel") is None
    texts = [p.children for p in note]
    assert len(texts) == 1 and texts[0].startswith("Business segment is known only for leads that reached Won (841 of the 842")
    with app.server.test_request_context():
        assert all(page.update_note(f"?segment={c}") is None for c in ("channel", "industry", "owner"))


def test_a_heatmap_click_without_customdata_drills_by_its_axis_values(app):
    """Dash drops a heatmap cell's customdata (its point index is a pair): the matrix and the cohort
    heatmap drill from the cell's x and y (escaped as the axis shows them) instead."""
    from funnelboard.dashboard import drill

    matrix = {"points": [{"curveNumber": 0, "x": "retail &amp; e-commerce", "y": "inbound", "z": 0.3}]}
    cohort = {"points": [{"curveNumber": 0, "x": "2026-10-05", "y": "MQL → SQL", "z": 0.4}]}
    with app.server.test_request_context():
        target = drill.click_target(drill.segment_point, matrix, "?segment2=industry&period=last_quarter")
        assert dict(parse_qsl(target.split("?", 1)[1])) == {"period": "last_quarter", "channel": "inbound", "industry": "retail & e-commerce"}
        target = drill.click_target(drill.cohort_cell, cohort, "")
        assert dict(parse_qsl(target.split("?", 1)[1])) == {"from": "2026-10-05", "to": "2026-10-11", "from_stage": "mql", "to_stage": "sql"}
        assert drill.click_target(drill.segment_point, {"points": [{"x": "a", "y": "b", "z": None}]}, "?segment2=industry") is None
