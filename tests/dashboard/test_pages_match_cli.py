"""The numbers on the Weekly review, Funnel and Segments pages equal `funnelboard query` for the same filters.

Each page callback is called with a URL query; the same filters go to the CLI in a real
subprocess-free CliRunner call with --format json; the shown numbers must be the CLI's.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from funnelboard.cli import main

SEARCH = "?from=2026-05-01&to=2026-09-30&channel=inbound"
CLI_FILTERS = ["--from", "2026-05-01", "--to", "2026-09-30", "--filter", "channel=inbound"]


def cli(db, *args) -> list[dict]:
    result = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
def test_weekly_cards_equal_the_cli(app, db):
    import funnelboard.dashboard.pages.weekly as weekly
    from funnelboard.core.config import load_config
    from funnelboard.dashboard.figures import kpi_names

    names = kpi_names(load_config(None))

    def weekly_cards(cards):
        """The cards' kpi and value, told apart by their labels (the config's names)."""
        by_label = {label: kpi for kpi, label in names.items()}
        out = []
        for card in cards:
            label = card.children[0].children
            label = label[0] if isinstance(label, list) else label
            if label in by_label:
                value = card.children[1].children[0]  # the number, a link to its leads
                out.append({"kpi": by_label[label], "value_text": getattr(value, "children", value)})
        return out
    from funnelboard.dashboard.theme import fmt_count, fmt_pct

    with app.server.test_request_context():
        cards, figure, _week = weekly.update(SEARCH)
    rows = cli(db, "weekly_kpis", *CLI_FILTERS)
    last = rows[-1]["week"]
    values = {r["kpi"]: r["value"] for r in rows if r["week"] == last}
    shown = {card["kpi"]: card["value_text"] for card in weekly_cards(cards)}
    for kpi in ("new_leads", "reached_mql", "reached_sql", "reached_won"):
        assert shown[kpi] == fmt_count(values[kpi]), kpi
    assert shown["key_rate"] == fmt_pct(values["key_rate"]) and shown["win_rate"] == fmt_pct(values["win_rate"])
    sql_trace = next(t for t in figure.data if t.name == "reached_sql")
    assert list(sql_trace.y) == [r["value"] for r in rows if r["kpi"] == "reached_sql"]


def test_funnel_bars_equal_the_cli(app, db):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        figure = funnel.update(SEARCH)
    rows = cli(db, "funnel", *CLI_FILTERS)
    bars = next(t for t in figure.data if t.type == "funnel")
    assert list(bars.x) == [r["reached"] for r in rows]


def test_segment_points_equal_the_cli(app, db):
    import funnelboard.dashboard.pages.segments as segments

    with app.server.test_request_context():
        conversion_fig = segments.update(SEARCH.replace("channel=inbound", "region=EMEA") + "&segment=industry&from_stage=sql&to_stage=won")
    rows = cli(db, "segment_conversion", "--segment", "industry", "--from-stage", "sql", "--to-stage", "won",
               "--from", "2026-05-01", "--to", "2026-09-30", "--filter", "region=EMEA")
    shown = {}
    for trace in conversion_fig.data:
        if trace.customdata is None:
            continue
        rates = trace.x  # rates run along x, the segment values down y
        for c, rate in zip(trace.customdata, rates):
            shown[c["industry"]] = rate
    assert shown and shown == pytest.approx({r["industry"]: r["rate"] for r in rows}, abs=1e-12)
