"""A pull re-fetches each changed record whole: its rows replace what earlier pulls stored for it.

The adapters stamp a record's current attributes (owner, first response) on all its events, so a
record whose owner changed would otherwise be stored twice (exact duplicates differ in the owner).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from funnelboard.core.config import load_config
from funnelboard.warehouse.pipeline import PullMarks, load_files
from tests.conftest import HEADER, NOW, rows, write

TOML = """
[source.wide]
id = "deal_id"
stages = { mql = "mql_date", sql = "sql_date", won = "won_date" }
attributes = { owner = "Owner", channel = "Source" }
"""


def pull(db: Path, path: Path, config, mark: str):
    return load_files(db, [path], config, source="wide", now=NOW, marks=PullMarks("test", {"deals": mark}))


@pytest.mark.slow
def test_a_pulled_record_replaces_its_earlier_rows_and_nothing_else(tmp_path):
    config = load_config(write(tmp_path / "funnel.toml", TOML))
    db = tmp_path / "w.duckdb"
    # a canonical file knows D1 too: its rows are not the pull's to replace
    load_files(db, [write(tmp_path / "c.csv", HEADER + "\nD1,mql,2024-01-01,,web,carol\n")], config, now=NOW)
    first = write(tmp_path / "p1.csv", "deal_id,mql_date,sql_date,won_date,Owner,Source\n"
                                       "D1,2024-01-02,,,ann,web\nD2,2024-01-03,2024-01-05,,ann,event\n")
    pull(db, first, config, "2024-01-05T00:00:00.000Z")
    # D1 moved on and changed owner; D2 did not change, so it is not in the next pull
    second = write(tmp_path / "p2.csv", "deal_id,mql_date,sql_date,won_date,Owner,Source\nD1,2024-01-02,2024-01-09,,bob,web\n")
    report = pull(db, second, config, "2024-01-09T00:00:00.000Z")
    assert report.files[0].rows_replaced == 1  # D1's one event from the first pull
    assert rows(db, "select lead_id, stage, entered_at::date::varchar, owner from raw_events order by all") == [
        ("D1", "mql", "2024-01-01", "carol"),  # the canonical file's row stays
        ("D1", "mql", "2024-01-02", "bob"),
        ("D1", "sql", "2024-01-09", "bob"),
        ("D2", "mql", "2024-01-03", "ann"),
        ("D2", "sql", "2024-01-05", "ann"),
    ]
    assert rows(db, "select lead_id, owner from fct_leads order by lead_id") == [("D1", "bob"), ("D2", "ann")]
    assert rows(db, "select object, mark from pull_marks order by load_id") == [
        ("deals", "2024-01-05T00:00:00.000Z"), ("deals", "2024-01-09T00:00:00.000Z")]


@pytest.mark.slow
def test_a_plain_load_of_the_same_export_still_only_collapses_exact_duplicates(tmp_path):
    config = load_config(write(tmp_path / "funnel.toml", TOML))
    db = tmp_path / "w.duckdb"
    load_files(db, [write(tmp_path / "a.csv", "deal_id,mql_date,sql_date,won_date,Owner,Source\nD1,2024-01-02,,,ann,web\n")], config, source="wide", now=NOW)
    load_files(db, [write(tmp_path / "b.csv", "deal_id,mql_date,sql_date,won_date,Owner,Source\nD1,2024-01-02,,,bob,web\n")], config, source="wide", now=NOW)
    assert rows(db, "select owner from raw_events order by all") == [("ann",), ("bob",)]
