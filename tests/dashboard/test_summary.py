"""The weekly summary's sentences on hand-made weeks: up, down, flat, no data, a change inside what
chance gives, too few leads, a partial week; each figure is the rows', and a change is claimed only
when the test says so (the p-value checked by hand)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from funnelboard.core.config import load_config
from funnelboard.dashboard.summary import week_summary

MONDAY = date(2026, 11, 9)
CONFIG = load_config(None)  # the demo funnel: SQL rate = MQL -> SQL, min_sample 30


def week(sql_rate=None, mql=(0, 0), sqls=(0, 0), new=(0, 0), immature=0):
    """weekly_kpis rows of one week: (this week, last week) per KPI; the rate as (x, n, x_before, n_before)."""
    rows = [
        {"week": MONDAY, "kpi": "new_leads", "value": new[0], "previous": new[1]},
        {"week": MONDAY, "kpi": "reached_mql", "value": mql[0], "previous": mql[1]},
        {"week": MONDAY, "kpi": "reached_sql", "value": sqls[0], "previous": sqls[1]},
        {"week": MONDAY, "kpi": "immature", "value": immature, "previous": 0},
    ]
    if sql_rate:
        x1, n1, x2, n2 = sql_rate
        rows.append({"week": MONDAY, "kpi": "key_rate", "value": x1 / n1 if n1 else None, "previous": x2 / n2 if n2 else None})
        rows[1] = {**rows[1], "value": n1, "previous": n2}
    return rows


def pooled_p(x1, n1, x2, n2):
    p = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def test_a_rate_up_beyond_chance_is_said_with_its_counts_and_p():
    (rate,) = [s for s in week_summary(week((60, 100, 30, 100)), MONDAY, CONFIG) if s.startswith("SQL rate")]
    assert rate == (f"SQL rate (MQL → SQL) 60.0% (60 of 100), up 30.0 points on 30.0% (30 of 100) last week: "
                    f"more than chance gives (p = {pooled_p(60, 100, 30, 100):.3f}).")


def test_a_rate_down_beyond_chance():
    lines = week_summary(week((30, 100, 60, 100)), MONDAY, CONFIG)
    assert "down 30.0 points on 60.0% (60 of 100) last week" in lines[0]
    assert "Nothing changed beyond chance this week." not in lines


def test_a_change_inside_what_chance_gives_is_not_a_change():
    lines = week_summary(week((33, 100, 30, 100)), MONDAY, CONFIG)
    assert lines[0] == (f"SQL rate (MQL → SQL) 33.0% (33 of 100) against 30.0% (30 of 100) last week: within what chance gives "
                        f"(p = {pooled_p(33, 100, 30, 100):.2f}), not a change to act on.")
    assert lines[-1] == "Nothing changed beyond chance this week."


def test_a_flat_week_and_an_empty_one():
    assert week_summary(week((30, 100, 30, 100)), MONDAY, CONFIG)[-1] == "Nothing changed beyond chance this week."
    assert week_summary(week(), MONDAY, CONFIG) == ["No lead came in or moved this week."]
    assert week_summary([], MONDAY, CONFIG) == ["No lead came in or moved this week."]


@pytest.mark.parametrize("now,before,claimed", [(200, 100, True), (110, 100, False), (100, 200, True), (6, 1, False)])
def test_counts_are_named_only_beyond_chance(now, before, claimed):
    lines = week_summary(week((30, 100, 30, 100), new=(now, before)), MONDAY, CONFIG)
    said = [s for s in lines if s.startswith("Beyond chance:")]
    assert bool(said) is claimed, lines
    if claimed:
        assert f"{now:,} new leads, {'up' if now > before else 'down'} from {before:,} last week" in said[0]


def test_too_few_leads_and_a_week_to_date_say_so():
    lines = week_summary(week((5, 10, 1, 12), immature=1), MONDAY, CONFIG, partial=True, days_in=3.5)
    assert lines[0] == "The week is to date (3.5 of 7 days), compared with last week at the same point."
    assert lines[1] == "SQL rate (MQL → SQL) 50.0% (5 of 10): too few leads to judge. Its leads are still converting: the rate will rise."


def test_the_demo_pack_s_summary_reads_the_cli_s_numbers(app, db):
    import json

    from click.testing import CliRunner

    from funnelboard.cli import main
    from funnelboard.dashboard.report import render
    from tests.dashboard.test_report import last_full_week

    monday = last_full_week(db)
    pack = render(app, monday)
    out = CliRunner().invoke(main, ["query", "weekly_kpis", "--to", str(date.fromordinal(monday.toordinal() + 6)),
                                    "--db", str(db), "--format", "json"])
    rows = {r["kpi"]: r for r in json.loads(out.output) if r["week"] == monday.isoformat()}
    rate, mql = rows["key_rate"], rows["reached_mql"]
    assert pack.summary[0].startswith(f"SQL rate (MQL → SQL) {rate['value']:.1%} ({round(rate['value'] * mql['value']):,} of {mql['value']:,})")
    assert all(s in pack.html for s in pack.summary)
