"""Line numbers of a CSV that DuckDB reads in parallel chunks: every stored row points at its own line.

The loader numbers CSV rows by the order DuckDB stores them in; a join in the read (the label
map once was one) let DuckDB store them out of file order, and 200,000 rows were enough for
every source_line to name another row's line.
"""

from __future__ import annotations

import csv

import pytest

from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows


@pytest.mark.slow
def test_source_lines_of_a_many_chunk_csv_point_at_their_own_rows(tmp_path, config):
    summary = generate(out=tmp_path / "events.csv", fmt="csv", n_events=200_000, seed=3)
    db = tmp_path / "wh.duckdb"
    report = load_files(db, [summary.path], config, now=NOW).files[0]
    assert report.rows_loaded == 200_000

    with open(summary.path, newline="", encoding="utf-8") as fh:
        in_file = {line: (r[0], r[1]) for line, r in enumerate(csv.reader(fh), start=1) if line > 1}
    stored = rows(db, "select source_line, lead_id, stage_label from raw_events")
    wrong = [(line, lead, label) for line, lead, label in stored if in_file.get(line) != (lead, label)]
    assert not wrong, f"{len(wrong):,} of {len(stored):,} rows point at another line, e.g. {wrong[:3]}"
