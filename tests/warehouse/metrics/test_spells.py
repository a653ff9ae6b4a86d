"""`spells` (docs/metrics.md): the list behind each spell-level mark has exactly the mark's number of
rows, and its rows are the plain-Python spells of tests/oracle/oracle_spells.py.

Marks checked, on the demo and on a funnel with other stage names: every stage-accounting bar
(advanced, each outcome's exits, went back, still open), every disqualifier bar (outcome and reason)
and trend point (week), every duration-histogram bar (completed and open, the open-ended bin too)
and survival points (grid points and the KM quantile points, per segment value).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.base import Context
from funnelboard.warehouse.metrics.spells import spells_count
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.dashboard.test_any_funnel import RENAMED
from tests.oracle import oracle_spells
from tests.oracle.oracle import Oracle, events_from_warehouse

SPELL_COLUMNS = ("lead_id", "spell_no", "stage", "entered_at", "left_at", "left_to", "next_kind", "reason", "stage_left", "duration_days")


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("renamed-spells")
    events = generate(out=folder / "events.csv", n_leads=1200, seed=12).path
    (folder / "funnel.toml").write_text(RENAMED, "utf-8")
    load_files(folder / "wh.duckdb", [events], load_config(folder / "funnel.toml"), now=NOW)
    return Gateway(folder / "wh.duckdb")


CONTEXTS: dict = {}


def count(g: Gateway, req: MetricRequest, *filters: tuple[str, str], **fields) -> int:
    ctx = CONTEXTS.setdefault(g.db, Context(g))
    return spells_count(ctx, replace(req, filters=(*req.filters, *filters), **fields))["spells"]


def requests(g: Gateway) -> list[MetricRequest]:
    """The whole history; a quarter with a lead filter, in business days."""
    last = g.facts()["last_event"]
    start = datetime(last.year, last.month, 1) - timedelta(days=90)
    owner = g.query("select owner from fct_leads where owner is not null order by lead_id limit 1").rows[0][0]
    return [MetricRequest(), MetricRequest(start=start, end=start + timedelta(days=91), filters=(("owner", owner),), business_days=True)]


def check_accounting(g: Gateway, req: MetricRequest) -> int:
    outcomes = g.config().outcomes
    checked = 0
    for row in run_metric(g, "stage_accounting", req):
        stage = ("stage", row["stage"])
        assert count(g, req, stage) == row["entered"]
        for kind in ("advanced", "exited", "regressed", "open"):
            assert count(g, req, stage, ("next", kind)) == row[kind], (row["stage"], kind)
        for o in outcomes:
            assert count(g, req, stage, ("next", "exited"), ("left_to", o)) == row[f"exited_{o}"], (row["stage"], o)
        checked += 5 + len(outcomes)
    return checked


def check_disqualifiers(g: Gateway, req: MetricRequest) -> int:
    rows = run_metric(g, "disqualifiers", req)
    for row in rows:
        assert count(g, req, outcome=row["outcome"], reason=row["reason"]) == row["exits"], row
    weekly = run_metric(g, "disqualifiers", replace(req, by="week"))
    for row in weekly[:: max(len(weekly) // 15, 1)]:
        n = count(g, req, ("week", row["week"].isoformat()), outcome=row["outcome"], reason=row["reason"])
        assert n == row["exits"], row
    by_stage = run_metric(g, "disqualifiers", replace(req, by="stage_left"))
    for row in by_stage[:: max(len(by_stage) // 15, 1)]:
        assert count(g, req, ("stage_left", row["stage_left"]), outcome=row["outcome"], reason=row["reason"]) == row["exits"], row
    return len(rows) + len(weekly[:: max(len(weekly) // 15, 1)]) + len(by_stage[:: max(len(by_stage) // 15, 1)])


def histogram_marks(rows: list[dict]):
    """(stage, lo, hi, step, completed, open) per bar, the step as the histogram figure takes it."""
    widths = {}
    for r in rows:
        if r["bin_end"] is not None:
            widths.setdefault(r["stage"], r["bin_end"] - r["bin_start"])
    for r in rows:
        yield r["stage"], r["bin_start"], r["bin_end"], widths.get(r["stage"], 1.0), r["completed"], r["open"]


def check_histogram(g: Gateway, req: MetricRequest) -> int:
    rows = run_metric(g, "duration_distribution", req)
    checked = 0
    marks = list(histogram_marks(rows))
    # every 4th bar and every open-ended one (the bins of every stage are checked across the two requests)
    for stage, lo, hi, step, completed, still_open in [m for i, m in enumerate(marks) if i % 4 == 0 or m[2] is None]:
        bounds = [("stage", stage), ("min_days", repr(lo)), ("step", repr(step))] + ([("max_days", repr(hi))] if hi is not None else [])
        assert count(g, req, *bounds, ("next", "closed")) == completed, (stage, lo, hi)
        assert count(g, req, *bounds, ("next", "open")) == still_open, (stage, lo, hi)
        checked += 2
    assert any(r["bin_end"] is None for r in rows) or all(r["completed"] + r["open"] == 0 for r in rows if r["bin_end"] is None)
    return checked


def grid_steps(rows: list[dict]) -> dict[str, float]:
    """A stage's grid step: the smallest gap between its grid points (every segment value's)."""
    points: dict[str, set[float]] = {}
    for r in rows:
        if r["km_quantile"] is None:
            points.setdefault(r["stage"], set()).add(r["days"])
    steps = {}
    for stage, days in points.items():
        ordered = sorted(days)
        gaps = [b - a for a, b in zip(ordered, ordered[1:])]
        steps[stage] = min(gaps) if gaps else 1 / 24
    return steps


def check_survival(g: Gateway, req: MetricRequest, segment: str | None) -> int:
    rows = run_metric(g, "survival", replace(req, segment=segment))
    steps = grid_steps(rows)
    picked = [r for i, r in enumerate(rows) if r["km_quantile"] or i % 25 == 0]
    for r in picked:
        step = None if r["km_quantile"] else steps[r["stage"]]
        marks = [("stage", r["stage"]), ("longer_than", repr(r["days"]))] + ([("step", repr(step))] if step else [])
        if segment:
            marks.append((segment, r[segment]))
        assert count(g, req, *marks) == r["at_risk"], r
    return len(picked)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "renamed"])
def test_every_spell_mark_counts_the_rows_of_its_list(which, demo, renamed):
    g = demo if which == "demo" else renamed
    checked = 0
    for req in requests(g):
        checked += check_accounting(g, req) + check_disqualifiers(g, req) + check_histogram(g, req)
        checked += check_survival(g, req, None) + check_survival(g, req, "channel")
    assert checked > 150


def sql_rows(g: Gateway, req: MetricRequest) -> list[dict]:
    return [{k: r[k] for k in SPELL_COLUMNS} for r in run_metric(g, "spells", req)]


def oracle_rows(g: Gateway, req: MetricRequest, keep=lambda r: True) -> list[dict]:
    events, leads = events_from_warehouse(g.db)
    resolved = Context(g).resolve(replace(req, filters=()))
    oracle = Oracle(events, g.config(), leads, as_of=resolved.as_of)
    rows = oracle_spells.spells(oracle, resolved.start, resolved.end, business_days=req.business_days, filters=dict(req.filters))
    return [{k: r[k] for k in SPELL_COLUMNS} for r in rows if keep(r)]


def assert_same(sql: list[dict], expected: list[dict]) -> None:
    assert len(sql) == len(expected)
    for a, b in zip(sql, expected):
        assert [a[k] for k in SPELL_COLUMNS[:-1]] == [b[k] for k in SPELL_COLUMNS[:-1]], (a, b)
        assert math.isclose(a["duration_days"], b["duration_days"], rel_tol=0, abs_tol=1e-9), (a, b)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "renamed"])
def test_the_rows_are_the_plain_python_spells(which, demo, renamed):
    g = demo if which == "demo" else renamed
    plain, business = requests(g)
    assert_same(sql_rows(g, plain), oracle_rows(g, plain))
    assert_same(sql_rows(g, business), oracle_rows(g, business))
    stage = g.config().stages[1]
    outcome = g.config().outcomes[0]
    # one mark of each kind, filtered in SQL and in Python
    marks = [
        ((("stage", stage), ("next", "open")), {}, lambda r: r["stage"] == stage and r["next_kind"] == "open"),
        ((), {"outcome": outcome, "reason": "(no reason recorded)"}, lambda r: r["stage"] == outcome and r["reason"] is None),
        ((("stage", stage), ("min_days", "2.0"), ("max_days", "3.0")), {},
         lambda r: r["stage"] == stage and oracle_spells.in_bin(r["duration_days"], 2.0, 3.0, 1.0)),
        ((("stage", stage), ("longer_than", "7.0"), ("step", "1.0")), {},
         lambda r: r["stage"] == stage and oracle_spells.longer_than(r["duration_days"], 7.0, 1.0)),
    ]
    whole = replace(plain, business_days=True)
    for filters, fields, keep in marks:
        req = replace(whole, filters=filters, **fields)
        expected = oracle_rows(g, replace(whole, **fields), keep)
        assert expected, filters
        assert_same(sql_rows(g, req), expected)


def test_a_bad_filter_value_is_refused_in_a_sentence(demo):
    for filters, fields, words in (
        ((("next", "sideways"),), {}, "next 'sideways'"),
        ((("min_days", "-1"),), {}, "min_days '-1'"),
        ((("step", "0"),), {}, "step '0'"),
        ((("week", "soon"),), {}, "week 'soon'"),
        ((("left_to", "moon"),), {}, "left_to 'moon'"),
        ((("stage", "moon"),), {}, "unknown stage 'moon'"),
        ((), {"outcome": "moon"}, "unknown outcome 'moon'"),
    ):
        with pytest.raises(UserError, match=words):
            run_metric(demo, "spells", MetricRequest(filters=filters, **fields))


def test_the_cli_prints_the_list_with_the_same_filters(demo):
    out = CliRunner().invoke(main, ["query", "spells", "--db", str(demo.db), "--filter", "stage=mql", "--filter", "next=open",
                                    "--format", "csv"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("lead_id,spell_no,stage,entered_at,left_at,left_to,next_kind,reason,stage_left,duration_days,owner")
    assert len(lines) - 1 == count(demo, MetricRequest(), ("stage", "mql"), ("next", "open")) > 0
