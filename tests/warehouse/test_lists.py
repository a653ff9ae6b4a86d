"""List windows (warehouse/lists.py): a window cut in SQL is exactly that slice of the whole list."""

from __future__ import annotations

from datetime import datetime

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.lists import Slice
from funnelboard.warehouse.metrics import MetricRequest, run_list, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("lists")
    path = generate(out=folder / "events.csv", n_leads=2500, seed=21).path
    load_files(folder / "wh.duckdb", [path], load_config(None), now=NOW)
    return Gateway(folder / "wh.duckdb")


REQUESTS = {
    "leads": [
        MetricRequest(),
        MetricRequest(which="converted", filters=(("channel", "referral"),)),
        MetricRequest(from_stage="sql", to_stage="opportunity", start=datetime(2026, 6, 1), end=datetime(2026, 9, 1)),
    ],
    "stalled": [MetricRequest(), MetricRequest(filters=(("owner", "Ethan Walsh"),)), MetricRequest(segment="channel")],
}


def windows(gw: Gateway, name: str, req: MetricRequest, size: int, sort=()) -> tuple[list[dict], set[int]]:
    rows, totals, offset = [], set(), 0
    while True:
        part, total = run_list(gw, name, req, Slice(offset=offset, limit=size, sort=sort))
        totals.add(total)
        rows += part
        offset += size
        if offset >= total:
            return rows, totals


@pytest.mark.slow
@pytest.mark.parametrize("name", ["leads", "stalled"])
@pytest.mark.parametrize("size", [1, 7, 100])
def test_windows_put_together_are_the_whole_list(gw, name, size):
    for req in REQUESTS[name]:
        whole = run_metric(gw, name, req)
        if size == 1 and len(whole) > 60:
            whole = whole[:60]  # one row a query: enough to cross ties, not the whole list
            parts = [run_list(gw, name, req, Slice(offset=i, limit=1))[0][0] for i in range(60)]
            assert parts == whole
            continue
        together, totals = windows(gw, name, req, size)
        assert whole, req
        assert together == whole
        assert totals == {len(whole)}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "column"), [("leads", "amount"), ("leads", "channel"), ("stalled", "age_days"), ("stalled", "owner")])
@pytest.mark.parametrize("desc", [False, True])
def test_a_sorted_window_is_the_list_sorted_in_python(gw, name, column, desc):
    req = REQUESTS[name][0]
    whole = run_metric(gw, name, req)
    present = sorted((r for r in whole if r[column] is not None), key=lambda r: r[column], reverse=desc)  # stable: list order within ties
    expected = present + [r for r in whole if r[column] is None]  # nulls last either way
    got, _ = windows(gw, name, req, 250, sort=((column, desc),))
    assert [r[column] for r in got] == [r[column] for r in expected]
    assert got == expected


@pytest.mark.slow
def test_a_window_past_the_end_is_empty_and_still_counts_the_list(gw):
    for name in ("leads", "stalled"):
        total = len(run_metric(gw, name, MetricRequest()))
        rows, counted = run_list(gw, name, MetricRequest(), Slice(offset=total + 10, limit=50))
        assert rows == [] and counted == total > 0


def test_only_the_lists_own_columns_sort(gw):
    with pytest.raises(UserError, match="cannot sort by 'stage_now'"):
        run_list(gw, "leads", MetricRequest(), Slice(limit=10, sort=(("stage_now", False),)))
    with pytest.raises(UserError, match="cannot sort by"):
        run_list(gw, "stalled", MetricRequest(), Slice(limit=10, sort=(('lead_id"; drop table fct_leads; --', False),)))
    with pytest.raises(UserError, match="not a list"):
        run_list(gw, "funnel", MetricRequest(), Slice(limit=10))


def test_stalled_summary_counts_the_filtered_list(gw):
    req = REQUESTS["stalled"][1]
    summary = run_metric(gw, "stalled_summary", req)[0]
    rows = run_metric(gw, "stalled", req)
    assert summary["stalled"] == len(rows) > 0
    assert summary["newly_stalled"] == sum(r["newly_stalled"] for r in rows)


@pytest.mark.parametrize("name,req", [
    ("stalled", MetricRequest()),
    ("stalled", MetricRequest(segment="channel", filters=(("region", "EMEA"),))),
    ("leads", MetricRequest()),
    ("leads", MetricRequest(which="converted", from_stage="sql", to_stage="won", filters=(("channel", "referral"),))),
])
def test_a_list_as_a_table_has_the_rows_of_run_metric(gw, name, req):
    from funnelboard.warehouse.metrics import list_table

    table = list_table(gw, name, req)
    rows = run_metric(gw, name, req)
    assert table.num_rows == len(rows) > 0
    assert table.column_names == list(rows[0])
    assert table.to_pylist() == rows
