"""The loader on the generator's dirty exports: each kind of dirt has its exact outcome."""

from __future__ import annotations

import pytest

from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_every_kind_of_dirt_lands_where_it_should(tmp_path, config, fmt):
    clean_rows = 30_000
    summary = generate(out=tmp_path / f"events.{fmt}", fmt=fmt, n_events=clean_rows, seed=11, dirty=True)
    dirt = summary.dirty
    db = tmp_path / "wh.duckdb"
    f = load_files(db, [summary.path], config, now=NOW).files[0]

    assert f.rows_read == summary.rows
    assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
    assert f.rows_loaded == clean_rows, "every clean row loads, messy labels included"
    assert f.rows_duplicate == dirt["duplicate"]
    expected = {
        "unknown_stage": dirt["unknown_stage"],
        "missing_lead_id": dirt["missing_lead_id"],
        "timestamp_in_future": dirt["future_timestamp"],
        "timestamp_too_old": dirt["before_1990"],
    }
    if fmt == "csv":
        expected["wrong_column_count"] = dirt["wrong_column_count"]
    if fmt == "jsonl":
        expected["malformed_json"] = dirt["malformed_json"]
    reasons = dict(f.reasons)
    bad_time = reasons.pop("unparseable_timestamp", 0) + reasons.pop("impossible_timestamp", 0)
    assert bad_time == dirt["unparseable_timestamp"]
    assert reasons == expected
    assert sum(f.unknown_labels.values()) == dirt["unknown_stage"]
    assert set(f.unknown_labels) <= {"Discovery Call", "Demo Scheduled", "Contract Review"}
    # Messy labels were mapped, not quarantined: every stored stage is canonical.
    assert {r[0] for r in rows(db, "select distinct stage from raw_events")} <= set(config.all_stages)
    assert rows(db, "select count(*) from raw_events where stage_label <> trim(stage_label)") == [(0,)]
