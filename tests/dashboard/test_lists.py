"""The lead lists, one lead, the filter bar and drill-down: callbacks called directly, rows equal the metrics."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.export import rows_to_csv
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric


def cli_csv(db, *args) -> str:
    result = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "csv"])
    assert result.exit_code == 0, result.output
    return result.output


def listed(table: str, search: str) -> tuple[list[dict], str]:
    """Every row of a paged grid, fetched block by block as the grid asks, and its count text."""
    from funnelboard.dashboard.tables import BLOCK, window_rows

    rows: list[dict] = []
    while True:
        response, count = window_rows(table, search, {"startRow": len(rows), "endRow": len(rows) + BLOCK})
        rows += response["rowData"]
        if len(rows) >= response["rowCount"] or not response["rowData"]:
            assert len(rows) == response["rowCount"]
            return rows, count


def query(search: str) -> dict:
    return dict(parse_qsl(search.split("?", 1)[1])) if "?" in search else {}


def test_stalled_page_lists_the_metric_newly_stalled_first_and_exports_what_the_cli_prints(app, db):
    import funnelboard.dashboard.pages.stalled as page

    with app.server.test_request_context():
        summary, _body = page.update("?channel=referral")
        data, count = listed(page.TABLE, "?channel=referral")
    download = app.server.test_client().get("/export/stalled.csv?channel=referral")
    metric = run_metric(Gateway(db), "stalled", MetricRequest(filters=(("channel", "referral"),)))
    assert [r["lead_id"] for r in data] == [r["lead_id"] for r in metric]
    assert metric and all(r["channel"] == "referral" for r in metric)
    flags = [r["newly_stalled"] for r in metric]
    assert flags == sorted(flags, reverse=True), "newly stalled first"
    assert count == f"{len(metric):,} rows"
    assert summary.startswith(f"{len(metric):,} leads stalled · {sum(flags):,} newly stalled")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert 'filename="stalled.csv"' in download.headers["Content-Disposition"]
    assert download.get_data(as_text=True) == cli_csv(db, "stalled", "--filter", "channel=referral")


def test_long_lists_download_streamed_and_equal_to_the_cli(app, db, monkeypatch):
    """The leads and stalled CSVs are streamed (a chunk at a time) and are what the CLI prints."""
    from funnelboard.dashboard import tables
    from funnelboard.dashboard.tables import export_href

    monkeypatch.setattr(tables, "CHUNK_ROWS", 300)
    client = app.server.test_client()
    search = "?from=2026-03-01&to=2026-09-30&owner=Maya+Patel&which=not_converted"
    response = client.get(export_href("leads", search))
    assert response.status_code == 200 and response.is_streamed
    expected = cli_csv(db, "leads", "--from", "2026-03-01", "--to", "2026-09-30", "--filter", "owner=Maya Patel", "--which", "not_converted")
    assert response.get_data(as_text=True) == expected and expected.count("\n") > 50
    streamed = client.get("/export/leads.csv", buffered=False)
    chunks = [c.decode() for c in streamed.response]
    whole = "".join(chunks)
    assert whole == cli_csv(db, "leads") and len(chunks) == whole.count("\n") // 300 + 1 > 3
    assert client.get("/export/nope.csv").status_code == 404
    bad = client.get("/export/leads.csv?from=2026-09-01&to=2026-03-01")
    assert bad.status_code == 400 and bad.get_data(as_text=True).startswith("the period is empty")


def test_the_download_links_carry_the_view(app):
    from funnelboard.dashboard.tables import export_links

    with app.server.test_request_context():
        hrefs = export_links("?channel=referral", [{"type": "fb-export-link", "table": "stalled"}])
    assert hrefs == ["/export/stalled.csv?channel=referral"]


def test_leads_page_is_the_conversion_cohort_and_its_tabs_split_it(app, db):
    import funnelboard.dashboard.pages.leads as page

    search = "?from=2026-06-01&to=2026-08-31&channel=inbound&from_stage=mql&to_stage=sql"
    with app.server.test_request_context():
        data, count = listed(page.TABLE, search)
        converted, _c = listed(page.TABLE, search + "&which=converted")
        not_converted, _c = listed(page.TABLE, search + "&which=not_converted")
    conv = CliRunner().invoke(main, ["query", "conversion", "--db", str(db), "--format", "json", "--from", "2026-06-01",
                                     "--to", "2026-08-31", "--filter", "channel=inbound"])
    import json

    numbers = json.loads(conv.output)[0]
    assert len(data) == numbers["cohort"] > 0
    assert len(converted) == numbers["converted"] > 0
    assert len(converted) + len(not_converted) == len(data)
    assert all(r["converted"] for r in converted) and not any(r["converted"] for r in not_converted)
    assert count == f"{numbers['cohort']:,} rows"


def test_lead_page_shows_the_history_and_a_bad_lead_is_a_message(app, db):
    import funnelboard.dashboard.pages.lead as page
    from funnelboard.dashboard.tables import export_rows

    lead = run_metric(Gateway(db), "leads", MetricRequest(which="converted"))[0]["lead_id"]
    history = run_metric(Gateway(db), "lead_history", MetricRequest(lead_id=lead))
    with app.server.test_request_context():
        header, figure, data, count = page.update(f"/lead/{lead}", "")
        _name, rows = export_rows(page.TABLE, f"/lead/{lead}", "")
        missing, *_ = page.update("/lead/NO-SUCH-LEAD", "")
    assert [r["stage"] for r in data] == [r["stage"] for r in history] and len(history) >= 2
    assert len(figure.data) == len(history), "one bar per spell"
    assert [c["spell_no"] for t in figure.data for c in t.customdata] == [r["spell_no"] for r in history]
    assert lead in str(header) and count == f"{len(history)} rows"
    assert rows_to_csv(rows) == cli_csv(db, "lead_history", "--lead-id", lead)
    assert "there is no lead 'NO-SUCH-LEAD'" in str(missing)


def test_the_filter_bar_writes_its_keys_and_keeps_the_others():
    from funnelboard.dashboard.filters import _bar_search, _same

    current = "?segment=industry&channel=referral&from=2026-01-01"
    new = _bar_search(current, {"from": "2026-02-01T00:00:00", "to": None, "as_of": None}, {"channel": None, "region": "EMEA"})
    assert query(new) == {"from": "2026-02-01", "region": "EMEA", "segment": "industry"}
    assert _same("?a=1&b=2", "?b=2&a=1") and not _same("?a=1", "?a=2")


def test_the_filter_bar_rebuilds_only_when_the_url_says_something_else(app):
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    from funnelboard.dashboard import filters

    def states(dates, choices):
        return [
            [{"id": {"type": filters.DATE, "key": k}, "property": "date", "value": v} for k, v in dates.items()],
            [{"id": {"type": filters.CHOICE, "key": k}, "property": "value", "value": v} for k, v in choices.items()],
        ]

    dates = {"from": "2026-03-01", "to": None, "as_of": None}
    choices = {"channel": "referral", "region": None}
    with app.server.test_request_context():
        context_value.set(AttributeDict(states_list=states(dates, choices)))
        same = filters.show_bar("?from=2026-03-01&channel=referral&segment=region", list(dates.values()), list(choices.values()))
        rebuilt = filters.show_bar("?from=2026-04-01", list(dates.values()), list(choices.values()))
    import dash

    assert same is dash.no_update, "the controls already show this URL"
    shown = {c.children[1].id["key"]: getattr(c.children[1], "date", None) or getattr(c.children[1], "value", None)
             for c in rebuilt if hasattr(c, "children") and isinstance(c.children, list)}
    assert shown["from"] == __import__("datetime").date(2026, 4, 1) and shown["channel"] is None


def test_nav_links_carry_the_period_and_filters_but_not_page_keys(app):
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    from funnelboard.dashboard import filters

    ids = [{"type": filters.NAV, "path": "/funnel"}, {"type": filters.NAV, "path": "/"}]
    with app.server.test_request_context():
        context_value.set(AttributeDict())
        hrefs = filters.carry_filters("?from=2026-01-01&channel=referral&segment=region&which=converted&window=0", ids)
    assert [h.split("?")[0] for h in hrefs] == ["/funnel", "/"]
    assert all(query(h) == {"from": "2026-01-01", "channel": "referral"} for h in hrefs)


@pytest.mark.parametrize(
    ("mapper", "point", "search", "expected"),
    [
        ("funnel_bar", {"stage": "proposal", "view": "period"}, "?from=2026-01-01&to=2026-03-31&window=0",
         {"from": "2026-01-01", "to": "2026-03-31", "from_stage": "proposal", "to_stage": "won"}),
        ("funnel_bar", {"stage": "proposal"}, "?from=2026-01-01&to=2026-03-31&segment=region",
         {"from": "2026-01-01", "to": "2026-03-31", "from_stage": "lead", "to_stage": "proposal", "which": "converted", "window": "0"}),
        ("segment_point", {"channel": "referral", "region": "EMEA"}, "?segment=channel&segment2=region&from_stage=sql&to_stage=won",
         {"channel": "referral", "region": "EMEA", "from_stage": "sql", "to_stage": "won"}),
        ("cohort_cell", {"week": "2026-10-05", "from_stage": "mql", "to_stage": "sql", "stage_pair": "MQL → SQL"}, "?owner=Grace+Liu",
         {"owner": "Grace Liu", "from": "2026-10-05", "to": "2026-10-11", "from_stage": "mql", "to_stage": "sql"}),
        ("weekly_point", {"week": "2026-10-05", "kpi": "reached_sql"}, "",
         {"from": "2026-10-05", "to": "2026-10-11", "from_stage": "sql", "to_stage": "opportunity"}),
        ("weekly_point", {"week": "2026-10-05", "kpi": "key_rate"}, "",
         {"from": "2026-10-05", "to": "2026-10-11", "from_stage": "mql", "to_stage": "sql"}),
    ],
)
def test_a_click_opens_the_leads_behind_the_mark(app, mapper, point, search, expected):
    from funnelboard.dashboard import drill

    with app.server.test_request_context():
        target = drill.click_target(getattr(drill, mapper), {"points": [{"customdata": point}]}, search)
    assert target.startswith("/leads?") and query(target) == expected


def test_marks_without_leads_behind_them_do_not_navigate(app):
    from funnelboard.dashboard import drill

    with app.server.test_request_context():
        assert drill.click_target(drill.weekly_point, {"points": [{"customdata": {"week": "2026-10-05", "kpi": "exits"}}]}, "") is None
        assert drill.click_target(drill.funnel_bar, {"points": [{"customdata": {"stage": "nope"}}]}, "") is None
        assert drill.click_target(drill.funnel_bar, None, "") is None


@pytest.mark.slow
def test_the_leads_behind_a_mark_are_as_many_as_the_mark_says(app, db):
    """Funnel bar, weekly point and segment bar: the drilled list has the mark's count."""
    import funnelboard.dashboard.pages.leads as leads_page
    from funnelboard.dashboard import drill

    g = Gateway(db)
    funnel = run_metric(g, "funnel", MetricRequest())
    weekly = run_metric(g, "weekly_kpis", MetricRequest())
    week = weekly[-3]["week"]
    sql_week = next(r["value"] for r in weekly if r["week"] == week and r["kpi"] == "reached_sql")
    segments = run_metric(g, "segment_conversion", MetricRequest(segment="channel"))
    with app.server.test_request_context():
        for stage_row in funnel[1:]:
            target = drill.click_target(drill.funnel_bar, {"points": [{"customdata": {"stage": stage_row["stage"], "view": "cohort"}}]}, "")
            data, _c = listed(leads_page.TABLE, "?" + target.split("?", 1)[1])
            assert len(data) == stage_row["reached"], stage_row
            target = drill.click_target(drill.funnel_bar, {"points": [{"customdata": {"stage": stage_row["stage"], "view": "period"}}]}, "")
            data, _c = listed(leads_page.TABLE, "?" + target.split("?", 1)[1])
            assert len(data) == stage_row["period_reached"], stage_row
        target = drill.click_target(drill.weekly_point, {"points": [{"customdata": {"week": week.isoformat(), "kpi": "reached_sql"}}]}, "")
        data, _c = listed(leads_page.TABLE, "?" + target.split("?", 1)[1])
        assert len(data) == sql_week > 0
        cells = [c for c in run_metric(g, "cohort_conversion", MetricRequest()) if c["cohort"]][:6]
        assert cells
        for cell in cells:
            point = {"week": str(cell["week"]), "from_stage": cell["from_stage"], "to_stage": cell["to_stage"]}
            target = drill.click_target(drill.cohort_cell, {"points": [{"customdata": point}]}, "")
            data, _c = listed(leads_page.TABLE, "?" + target.split("?", 1)[1])
            assert len(data) == cell["cohort"] and sum(r["converted"] for r in data) == cell["converted"], cell
        row = segments[0]
        target = drill.click_target(drill.segment_point, {"points": [{"customdata": {"channel": row["channel"]}}]}, "?segment=channel")
        data, _c = listed(leads_page.TABLE, "?" + target.split("?", 1)[1])
        assert len(data) == row["n"] and sum(r["converted"] for r in data) == row["converted"]


def test_top_movers_add_up_to_the_weekly_cards_and_link_to_their_sqls(app, db):
    import funnelboard.dashboard.pages.leads as leads_page
    import funnelboard.dashboard.pages.weekly as weekly

    g = Gateway(db)
    movers = run_metric(g, "movers", MetricRequest())
    weekly_rows = run_metric(g, "weekly_kpis", MetricRequest())
    last = weekly_rows[-1]["week"]
    sqls = next(r["value"] for r in weekly_rows if r["week"] == last and r["kpi"] == "reached_sql")
    mqls = next(r["value"] for r in weekly_rows if r["week"] == last and r["kpi"] == "reached_mql")
    for column in ("channel", "owner"):
        assert sum(r["to_this_week"] for r in movers if r["segment"] == column) == sqls
        assert sum(r["from_this_week"] for r in movers if r["segment"] == column) == mqls
    assert all(r["week"] == last for r in movers)
    with app.server.test_request_context():
        _title, listing = weekly.update_movers("")
        shown = [m for m in movers if m["delta_to"]][: weekly.TOP_MOVERS]
        assert len(listing.children) == len(shown) > 0
        for item, mover in zip(listing.children, shown):
            link = item.children[1]
            assert link.children == mover["value"]
            data, _c = listed(leads_page.TABLE, "?" + link.href.split("?", 1)[1])
            assert len(data) == mover["to_this_week"], mover


def test_a_grid_block_comes_sorted_as_the_grid_asks_and_counts_the_whole_list(app, db):
    from funnelboard.dashboard.tables import window_rows

    whole = run_metric(Gateway(db), "stalled", MetricRequest())
    with app.server.test_request_context():
        block, count = window_rows("stalled", "", {"startRow": 10, "endRow": 30, "sortModel": [{"colId": "age_days", "sort": "asc"}]})
    ages = sorted(r["age_days"] for r in whole)
    assert [r["age_days"] for r in block["rowData"]] == ages[10:30]
    assert block["rowCount"] == len(whole) and count == f"{len(whole):,} rows"
