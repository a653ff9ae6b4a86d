"""The stalled page: the stage x owner board drills to exactly its cell's leads, ?stage= filters the
list and its export (byte for byte the CLI's), bad stages are named, and the list's cells read well."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import dash
import pytest
from click.testing import CliRunner
from dash import dcc, html

from funnelboard.cli import main
from funnelboard.dashboard import state
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric


def walk(component):
    """Every component under one (itself included)."""
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if isinstance(child, dash.development.base_component.Component):
            yield from walk(child)


def links(board) -> dict[tuple[str | None, str | None], dcc.Link]:
    """The board's links by the (stage, owner) their address sets."""
    out = {}
    for part in board:
        for c in walk(part):
            if isinstance(c, dcc.Link):
                query = dict(parse_qsl(urlsplit(c.href).query))
                out[(query.get("stage"), query.get("owner"))] = c
    return out


def cli_csv(db, *args) -> str:
    result = CliRunner().invoke(main, ["query", "stalled", *args, "--db", str(db), "--format", "csv"])
    assert result.exit_code == 0, result.output
    return result.output


def count(link: dcc.Link) -> int:
    return int(link.children[0].children.replace(",", ""))


@pytest.mark.slow
def test_every_board_cell_drills_to_exactly_its_leads(app, db):
    import funnelboard.dashboard.pages.stalled as page

    whole = run_metric(Gateway(db), "stalled", MetricRequest(filters=(("channel", "referral"),)))
    with app.server.test_request_context():
        summary, _body = page.update("?channel=referral")
        board, options, picked = page.update_board("?channel=referral")
        cells = links(board)
        assert [o["value"] for o in options] == ["lead", "mql", "sql", "opportunity", "proposal"] and picked == []
        # every owner of a stalled lead has a column (14 owners: 12 and "Other", which is not a link)
        stages = [k[0] for k in cells if k[0] and k[1] is None]
        assert stages == sorted(stages, key=["lead", "mql", "sql", "opportunity", "proposal"].index)
        assert count(cells[(None, None)]) == len(whole) and summary.startswith(f"{len(whole):,} leads stalled")
        for (stage, owner), link in cells.items():
            search = urlsplit(link.href).query
            assert link.href.startswith("/stalled?channel=referral")
            _rows, total = page.stalled_window("?" + search, page.Slice(limit=0))
            expected = [r for r in whole if stage in (None, r["stage"]) and owner in (None, r["owner"])]
            assert count(link) == total == len(expected), (stage, owner)
        # the chosen cell is marked, and the board stays whole
        stage, owner = next(k for k in cells if None not in k)
        chosen_board, _options, picked = page.update_board(f"?channel=referral&stage={stage}&owner={owner}")
    assert picked == [stage]
    assert links(chosen_board).keys() == cells.keys()
    marked = [c for part in chosen_board for c in walk(part) if isinstance(c, html.Td) and "board-chosen" in (c.className or "")]
    assert len(marked) == 1 and marked[0].children.href == cells[(stage, owner)].href


@pytest.mark.slow
def test_the_stage_filter_reaches_the_list_the_export_and_the_cli(app, db):
    import funnelboard.dashboard.pages.stalled as page

    whole = run_metric(Gateway(db), "stalled", MetricRequest())
    owner = next(r["owner"] for r in whole if r["stage"] == "proposal")
    client = app.server.test_client()
    download = client.get(f"/export/stalled.csv?stage=proposal&owner={owner}")
    assert download.status_code == 200
    cli = cli_csv(db, "--filter", "stage=proposal", "--filter", f"owner={owner}")
    assert download.get_data(as_text=True) == cli
    assert len(cli.splitlines()) - 1 == len([r for r in whole if (r["stage"], r["owner"]) == ("proposal", owner)]) > 0
    # repeated: any of the stages
    both = client.get("/export/stalled.csv?stage=sql&stage=proposal").get_data(as_text=True)
    assert both == cli_csv(db, "--filter", "stage=sql", "--filter", "stage=proposal")
    assert len(both.splitlines()) - 1 == len([r for r in whole if r["stage"] in ("sql", "proposal")])
    # an unknown stage: named under the filter bar, the page ignores it, the export refuses it
    refused = client.get("/export/stalled.csv?stage=negotiation")
    assert refused.status_code == 400 and "Stage 'negotiation' is not a stage of this funnel" in refused.get_data(as_text=True)
    view = state.parse("?stage=negotiation", Gateway(db).config())
    assert view.stages == () and "Stage 'negotiation' is not a stage of this funnel" in state.problem_line(view.problems)
    with app.server.test_request_context():
        summary, _body = page.update("?stage=negotiation")
    assert summary.startswith(f"{len(whole):,} leads stalled")
    assert state.to_search(state.parse("?stage=sql&stage=proposal", Gateway(db).config())) == "?stage=sql&stage=proposal"


def test_the_weekly_sla_breaches_drill_to_exactly_their_leads(app, db):
    """The weekly review's stage-SLA breaches ([sla] of the demo config): one link per stage, its count
    the board's (over=sla), its address the list of exactly those leads; the export is the CLI's."""
    import funnelboard.dashboard.pages.stalled as page
    import funnelboard.dashboard.pages.weekly as weekly

    gw = Gateway(db)
    board = run_metric(gw, "stalled_board", MetricRequest(filters=(("channel", "referral"), ("over", "sla"))))
    per_stage = {r["stage"]: r for r in board if r["owner"] == "(all)" and r["stage"] != "(all)"}
    assert set(per_stage) == {"mql", "sql"}  # the stages the demo config gives an SLA
    with app.server.test_request_context():
        line = weekly.update_stalled("?channel=referral")
        breaches = [c for c in line[1:] if isinstance(c, dcc.Link)]
        assert [dict(parse_qsl(urlsplit(b.href).query))["stage"] for b in breaches] == list(per_stage)
        for link in breaches:
            query = dict(parse_qsl(urlsplit(link.href).query))
            assert link.href.startswith("/stalled?") and query["over"] == "sla" and query["channel"] == "referral"
            rows, total = page.stalled_window("?" + urlsplit(link.href).query, page.Slice())
            r = per_stage[query["stage"]]
            assert total == len(rows) == r["stalled"] and f" {r['stalled']:,}" in link.children
            assert sum(x["newly_stalled"] for x in rows) == r["newly_stalled"]
            assert {x["threshold_source"] for x in rows} <= {"sla", "sla segment"} and {x["stage"] for x in rows} == {query["stage"]}
            assert all(x["breached_at"] < x["entered_at"] + (x["age_days"] + 1e-9) * __import__("datetime").timedelta(days=1) for x in rows)
    # the SLA breaches and the p90 stalls split the list
    everyone = run_metric(gw, "stalled_summary", MetricRequest())[0]["stalled"]
    split = [run_metric(gw, "stalled_summary", MetricRequest(filters=(("over", v),)))[0]["stalled"] for v in ("sla", "p90")]
    assert sum(split) == everyone and min(split) > 0
    with app.server.test_request_context():
        summary, _body = page.update("?over=sla")
    assert summary.startswith(f"{split[0]:,} leads stalled past their stage SLA")  # the list says what it holds
    client = app.server.test_client()
    download = client.get("/export/stalled.csv?over=sla&stage=mql")
    assert download.status_code == 200 and download.get_data(as_text=True) == cli_csv(db, "--filter", "over=sla", "--filter", "stage=mql")
    refused = client.get("/export/stalled.csv?over=sometimes")
    assert refused.status_code == 400 and "Over 'sometimes' is not one of sla, p90" in refused.get_data(as_text=True)
    bad = CliRunner().invoke(main, ["query", "stalled_summary", "--filter", "over=late", "--db", str(db)])
    assert bad.exit_code != 0 and "unknown over 'late'; expected sla" in bad.output and "Traceback" not in bad.output


def test_the_stage_picker_writes_the_address():
    import funnelboard.dashboard.pages.stalled as page

    assert page.pick_stages(["sql", "proposal"], "/stalled", "?channel=referral&stage=lead") == "/stalled?channel=referral&stage=sql&stage=proposal"
    assert page.pick_stages([], "/stalled", "?stage=lead") == "/stalled"
    assert page.pick_stages(["lead"], "/stalled", "?stage=lead") is dash.no_update


def test_list_cells_are_formatted_for_reading_not_for_the_file():
    import funnelboard.dashboard.pages.stalled as page
    from funnelboard.core.config import load_config
    from funnelboard.dashboard import tables

    config = load_config()  # the demo's: amounts in each deal's currency, USD where it has none
    cols = {c["field"]: c for c in page.columns(config)}
    assert cols["newly_stalled"]["valueFormatter"] == tables.YES_NO
    assert cols["age_days"]["valueFormatter"] == cols["threshold_days"]["valueFormatter"] == tables.DAYS
    assert cols["sla_hours"]["valueFormatter"] == tables.NUMBER and "clock" in cols  # the demo's SLAs are in business hours
    assert cols["amount"]["valueFormatter"] == {"function": "fbMoney(params.value, params.data.amount_currency || 'USD')"}
    assert cols["close_pushes"]["valueFormatter"] == cols["days_slipped"]["valueFormatter"] == tables.INTEGER
    assert tables.money("USD") == {"function": "fbMoney(params.value, 'USD')"}
    assert cols["lead_id"]["tooltipField"] == "lead_id" and cols["lead_id"]["maxWidth"] == tables.ID_WIDTH
    assert cols["channel"]["valueFormatter"] == tables.TEXT  # a boolean in any text column reads Yes/No
    # each formatter names a function the asset defines
    from pathlib import Path

    script = (Path(tables.__file__).parents[1] / "assets" / "dashAgGridFunctions.js").read_text()
    for formatter in (tables.TEXT, tables.YES_NO, tables.DAYS, tables.money(None)):
        name = formatter["function"].split("(")[0]
        assert f"dagfuncs.{name} = function" in script
