"""The Segments page's lead-score threshold chart, its callback called directly (no browser): the points
are `funnelboard query score_threshold`'s, the configured threshold is the vertical line, and a funnel
without a score says so instead of drawing."""

from __future__ import annotations

import json

import plotly.graph_objects as go
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.dashboard.figures.segments import score_threshold_figure
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


def traces(fig: go.Figure) -> dict[str, go.Scatter]:
    return {t.name.split(" (")[0]: t for t in fig.data}


def test_the_chart_draws_the_cli_numbers_and_the_configured_threshold(app, db):
    import funnelboard.dashboard.pages.segments as segments

    with app.server.test_request_context():
        fig = segments.update_score_threshold("?segment=channel")
        filtered = segments.update_score_threshold("?channel=referral")
        quarter = segments.update_score_threshold("?period=last_quarter")
    out = CliRunner().invoke(main, ["query", "score_threshold", "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)
    current = [r for r in printed if r["period"] == "current"]
    previous = [r for r in printed if r["period"] == "previous"]
    shown = traces(fig)
    assert set(shown) == {"Precision, this period", "Recall, this period", "Precision, period before", "Recall, period before"}
    assert list(shown["Precision, this period"].x) == [r["threshold"] for r in current] and 45.0 in shown["Precision, this period"].x
    assert list(shown["Precision, this period"].y) == [r["precision"] for r in current]
    assert list(shown["Recall, period before"].y) == [r["recall"] for r in previous]
    assert list(shown["Precision, this period"].error_y.array) == [r["precision_high"] - r["precision"] for r in current]
    line = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert len(line) == 1 and line[0].x0 == load_config(None).score_threshold == 45.0
    assert any(a.text == "current threshold 45" for a in fig.layout.annotations)
    at_45 = next(i for i, r in enumerate(current) if r["configured"])
    at_60 = next(i for i, r in enumerate(current) if r["threshold"] == 60)
    assert "reached SQL" in shown["Precision, this period"].hovertext[at_45]
    assert f"{current[at_60]['leads_removed']:,} fewer leads pass" in shown["Precision, this period"].hovertext[at_60]
    referral = run_metric(Gateway(db), "score_threshold", MetricRequest(filters=(("channel", "referral"),)))
    assert list(traces(filtered)["Recall, this period"].y) == [r["recall"] for r in referral if r["period"] == "current"]
    assert traces(quarter)["Precision, this period"].name == shown["Precision, this period"].name  # the default is the last quarter


def test_the_figure_without_rows_or_a_configured_threshold():
    empty = score_threshold_figure([], empty="No leads in this period")
    assert not empty.data and "No leads in this period" in empty.layout.annotations[0].text
    row = {"period": "current", "period_start": NOW.date(), "period_end": NOW.date(), "threshold": 50.0, "configured": False,
           "to_stage": "demo", "leads": 4, "reached": 2, "won": 1, "passed": 2, "passed_reached": 1, "passed_won": 1,
           **{f"{m}{e}": 0.5 for m in ("precision", "recall", "won_precision", "won_recall") for e in ("", "_low", "_high")},
           **{f"{k}_{d}": None for k in ("leads", "reached", "won") for d in ("added", "removed")}}
    fig = score_threshold_figure([row])
    assert not fig.layout.shapes and [t.name.split(" (")[0] for t in fig.data] == ["Precision, this period", "Recall, this period"]
    assert "reached Demo" in fig.data[0].hovertext[0] and "Against" not in fig.data[0].hovertext[0]


def test_a_funnel_without_a_score_says_so_instead_of_drawing(tmp_path):
    import funnelboard.dashboard.pages.segments as segments
    from funnelboard.dashboard.app import create_app

    events = tmp_path / "events.csv"
    events.write_text("lead_id,stage,entered_at,channel\nA,mql,2024-01-02,web\nA,won,2024-02-01,web\n", "utf-8")
    config = tmp_path / "funnel.toml"
    config.write_text('[funnel]\nstages = ["mql", "won"]\noutcomes = ["lost"]\n\n[segments]\nchannel = "Channel"\n', "utf-8")
    load_files(tmp_path / "wh.duckdb", [events], load_config(config), now=NOW)
    app = create_app(tmp_path / "wh.duckdb")
    with app.server.test_request_context():
        fig = segments.update_score_threshold("")
    assert not fig.data and "No lead score in this data" in fig.layout.annotations[0].text
