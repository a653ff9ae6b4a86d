"""Exports never hand a spreadsheet a formula: text cells that start like one are written behind a ',
the same in the web download and in `funnelboard query --format csv`."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.export import cell, rows_to_csv
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import HEADER, NOW, write
from tests.dashboard.test_lists import cli_csv

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd"]


def test_a_cell_that_starts_a_formula_is_text_and_numbers_stay_numbers():
    assert [cell(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert [cell(v) for v in (-5, -0.5, 3, None, "Maya", "a=b", date(2026, 1, 2))] == [-5, -0.5, 3, "", "Maya", "a=b", "2026-01-02"]
    text = rows_to_csv([{"owner": v, "n": -1} for v in HOSTILE])
    assert [r["owner"] for r in csv.DictReader(io.StringIO(text))] == ["'" + v for v in HOSTILE]
    assert all(r["n"] == "-1" for r in csv.DictReader(io.StringIO(text)))


@pytest.mark.slow
def test_web_and_cli_exports_defuse_the_same_cells_byte_for_byte(tmp_path):
    from funnelboard.dashboard.app import create_app

    hostile = HOSTILE[:4]  # the loader trims a leading tab or CR from a value; the unit test above covers them
    lines = [HEADER]
    for i, owner in enumerate(hostile):
        lead = f"=L{i}" if i % 2 else f"L{i}"
        lines.append(f'"{lead}",mql,2026-03-0{i + 1},,"{owner.replace(chr(34), chr(34) * 2)}","{owner.replace(chr(34), chr(34) * 2)}"')
        lines.append(f'"{lead}",disqualified,2026-03-1{i + 1},"{owner.replace(chr(34), chr(34) * 2)}",,')
    db = tmp_path / "wh.duckdb"
    load_files(db, [write(tmp_path / "e.csv", "\n".join(lines) + "\n")], load_config(None), now=NOW)
    app = create_app(db)
    with app.server.test_client().get("/export/leads.csv") as response:
        web = response.get_data(as_text=True)
    assert response.status_code == 200
    assert web == cli_csv(db, "leads")
    owners = [r["owner"] for r in csv.DictReader(io.StringIO(web))]
    assert sorted(owners) == sorted("'" + v for v in hostile), web
    ids = [r["lead_id"] for r in csv.DictReader(io.StringIO(web))]
    assert all(i.startswith("'=L") for i in ids if "=" in i) and len(ids) == len(hostile)
    reasons = cli_csv(db, "disqualifiers")
    assert all(not line.startswith(("=", "+", "-", "@")) for row in csv.reader(io.StringIO(reasons)) for line in row)
