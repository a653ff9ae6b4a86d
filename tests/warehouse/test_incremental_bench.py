"""The incremental-refresh benchmark runs end to end on a small input and reports every part (no timed assertions)."""

import json

import pytest

from benchmarks import incremental


@pytest.mark.slow
def test_the_benchmark_appends_the_latest_percent_and_compares_with_a_full_load(tmp_path, capsys):
    raw = tmp_path / "raw.json"
    assert incremental.main(["--events", "20000", "--repeat", "1", "--workdir", str(tmp_path), "--json", str(raw)]) == 0
    text = capsys.readouterr().out
    assert "| append the batch |" in text and "append / full:" in text and "| fct_open_spells (window refresh) |" in text
    res = json.loads(raw.read_text())
    assert res["events"] == 20000 and res["week_events"] == 200 and 0 < res["week_leads"] <= 200
    assert res["first_load"]["build"] == "full" and res["full"]["build"] == "full"
    assert res["append"]["build"] == f"incremental: {res['week_leads']} leads"
    assert res["same_rows"] is True and res["ratio"] > 0
    steps = res["append"]["steps"]
    assert steps["reading + checking the file"] > 0 and steps["by_lead models: replacing them"] > 0
    assert steps["models built whole"] == 0, "no model is rebuilt whole when the batch is the latest events"
    assert list(tmp_path.glob("fbinc-*")) == []  # the work folder removed
