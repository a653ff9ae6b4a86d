"""The load-floor benchmark runs end to end on a small warehouse and copies every model table whole (no timed assertions)."""

import json
import subprocess
import sys
import tempfile

import duckdb
import pytest

from benchmarks import load_floor


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    work = tmp_path_factory.mktemp("floor")
    events, db = work / "events.csv", work / "w.duckdb"
    for args in (["generate", "--events", "6000", "--out", str(events)], ["load", "--quiet", "--db", str(db), str(events)]):
        subprocess.run([sys.executable, "-m", "funnelboard", *args], check=True, capture_output=True)
    return events, db


def test_the_narrow_spells_keep_every_spell_column_and_drop_only_what_fct_leads_holds(loaded):
    _events, db = loaded
    with duckdb.connect(str(db), read_only=True) as con:
        narrow = load_floor.narrow_spells_columns(con)
        spells = [r[0] for r in con.execute("describe fct_spells").fetchall()]
        leads = {r[0] for r in con.execute("describe fct_leads").fetchall()}
    dropped = set(spells) - set(narrow)
    assert {"channel", "owner", "close_pushes", "days_slipped"} <= dropped
    assert dropped <= leads and "lead_id" in narrow
    assert [c for c in spells if c in narrow] == narrow  # in the table's order
    assert {"stage", "entered_at", "exited_at", "duration_days", "sla_due_us", "entered_week"} <= set(narrow)


@pytest.mark.slow
def test_the_floor_copies_every_model_table_and_reports_its_ratio(loaded, tmp_path, capsys, monkeypatch):
    events, db = loaded
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the copies are written, then removed
    raw = tmp_path / "floor.json"
    assert load_floor.main(["--db", str(db), "--source", str(events), "--repeat", "2", "--json", str(raw)]) == 0
    res = json.loads(raw.read_text())
    with duckdb.connect(str(db), read_only=True) as con:
        rows = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in load_floor.model_tables()}
    assert list(res["tables"]) == [*load_floor.model_tables(), load_floor.NARROW]
    assert {"fct_spells", "fct_leads"} <= set(rows) and "int_spells" not in rows  # temporary models are not stored
    for name, table in res["tables"].items():
        assert table["rows"] == rows.get(name, rows["fct_spells"]) > 0
        assert len(table["runs"]) == 2 and table["seconds"] > 0
    bare = res["bare_read"]["seconds"]
    assert len(res["bare_read"]["runs"]) == 2
    writes = sum(t["seconds"] for name, t in res["tables"].items() if name != load_floor.NARROW)
    assert res["writes"] == pytest.approx(writes)
    assert res["floor_ratio"] == pytest.approx((bare + writes) / bare)
    narrow = writes - res["tables"]["fct_spells"]["seconds"] + res["tables"][load_floor.NARROW]["seconds"]
    assert res["floor_ratio_narrow_spells"] == pytest.approx((bare + narrow) / bare)
    text = capsys.readouterr().out
    assert f"**{res['floor_ratio']:.2f}x** the bare read (goal 3.0x)" in text
    assert "| fct_spells without the lead's columns | " in text
    assert list(tmp_path.glob("fbfloor-*")) == [] and list(tmp_path.glob("*.duckdb")) == []
