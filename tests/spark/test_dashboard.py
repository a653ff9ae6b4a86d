"""The dashboard serves the Spark-built marts: real callbacks over HTTP show run_metric's numbers.

The app is created on the marts directory's DuckDB catalog (what `funnelboard serve --marts DIR`
does); each callback is fired the way the browser fires it, POST /_dash-update-component.
"""

from __future__ import annotations

import json

import pytest

from funnelboard.dashboard.views import view_request
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import run_metric

SEARCH = "?from=2026-03-01&to=2026-10-31&channel=inbound"


@pytest.fixture(scope="module")
def app(built):
    from funnelboard.dashboard.app import create_app

    return create_app(built.catalog)


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def fire(client, outputs: list[tuple[str, str]], inputs: list[dict]) -> dict:
    """POST one callback as the renderer does; returns {component id: {property: value}}."""
    many = len(outputs) > 1
    payload = {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".." if many else f"{outputs[0][0]}.{outputs[0][1]}",
        "outputs": [{"id": i, "property": p} for i, p in outputs] if many else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": inputs,
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code == 200, response.data[:500]
    return response.json["response"]


def url(prop: str, value: str) -> list[dict]:
    return [{"id": "url", "property": prop, "value": value}]


@pytest.fixture(scope="module")
def expected(built):
    g = Gateway(built.catalog)
    req, _view = view_request(g, SEARCH)
    return {name: run_metric(g, name, req) for name in ("funnel", "weekly_kpis")}, req


def test_the_funnel_page_shows_run_metric_numbers(client, expected, built):
    from funnelboard.dashboard.pages import funnel

    response = fire(client, [(funnel.FUNNEL, "figure")], url("search", SEARCH))
    accounting = fire(client, [(funnel.ACCOUNTING, "figure")], url("search", SEARCH))[funnel.ACCOUNTING]["figure"]
    assert accounting["data"]
    bars = next(t for t in response[funnel.FUNNEL]["figure"]["data"] if t["type"] == "funnel")
    metrics, req = expected
    assert list(bars["x"]) == [r["reached"] for r in metrics["funnel"]]
    assert sum(bars["x"]) > 0
    # and the numbers are those of the DuckDB warehouse built from the same file
    assert [r["reached"] for r in run_metric(Gateway(built.db), "funnel", req)] == list(bars["x"])


def test_the_weekly_page_shows_run_metric_numbers(client, expected):
    from funnelboard.dashboard import note_editor
    from funnelboard.dashboard.pages import weekly

    outputs = [(weekly.CARDS, "children"), (weekly.TREND, "figure"), (weekly.WEEK, "children")]
    # as the renderer sends it: the address and the notes' change counter the trend redraws on
    response = fire(client, outputs, url("search", SEARCH) + [{"id": note_editor.CHANGED, "property": "data", "value": 0}])
    response.update(fire(client, [(weekly.STALLED, "children")], url("search", SEARCH)))
    traces = {t["name"]: t for t in response[weekly.TREND]["figure"]["data"] if t.get("name")}
    rows = expected[0]["weekly_kpis"]
    for kpi in ("reached_mql", "reached_sql"):
        assert list(traces[kpi]["y"]) == [r["value"] for r in rows if r["kpi"] == kpi], kpi
    assert any(r["value"] for r in rows if r["kpi"] == "reached_sql")
    assert "leads stalled" in json.dumps(response[weekly.STALLED]["children"])


def test_the_data_quality_page_says_spark_built_it(app, client):
    from funnelboard.dashboard.app import BADGE
    from funnelboard.dashboard.pages import data_quality

    badge = fire(client, [(BADGE, "children"), (BADGE, "className")], url("pathname", "/data-quality"))
    assert badge[BADGE]["children"] == "data clean"
    with app.server.test_request_context():
        message, hidden, _summary, ledger, _count, *_rest = data_quality.update("/data-quality")
    assert message is None and hidden is False
    assert [r["format"] for r in ledger] == ["csv (spark)", "csv (spark)"]
    assert all(r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"] + r["rows_duplicate"] for r in ledger)
