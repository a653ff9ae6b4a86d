"""One rule for spaces: the Python (normalise_label) and the loader's SQL trim and collapse the same characters.

Python's str.split() folds a no-break space while SQL's \\s+ does not, so a label listed under
[labels] with one could not be mapped, and a lead id was not trimmed of it.
"""

from __future__ import annotations

import csv
import io
import json
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from funnelboard.core.config import SPACE_RUN, SPACES, load_config, normalise_label
from funnelboard.etl.load import label_key_sql, stage_sql
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows, write

# (name, character): every one must be trimmed from values and collapse inside labels.
SPACE_CASES = [
    ("no-break space", "\u00a0"),
    ("figure space", "\u2007"),
    ("narrow no-break space", "\u202f"),
    ("em space", "\u2003"),
    ("ideographic space", "\u3000"),
    ("next line", "\u0085"),
    ("line separator", "\u2028"),
    ("tab", "\t"),
    ("carriage return", "\r"),
    ("line feed", "\n"),
    ("vertical tab", "\x0b"),
    ("form feed", "\x0c"),
    ("space", " "),
]
IDS = [name for name, _ in SPACE_CASES]


def test_spaces_are_unicodes_white_space():
    white_space = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()} - {"\x1c", "\x1d", "\x1e", "\x1f"}
    assert set(SPACES) == white_space, "Python's isspace() less the information separators is Unicode's White_Space"


@pytest.mark.parametrize("sp", [c for _, c in SPACE_CASES], ids=IDS)
def test_normalise_label_trims_and_collapses_each_space(sp):
    assert normalise_label(f"{sp}Closed{sp}{sp}WON {sp}") == "closed won"


@pytest.mark.slow
def test_the_sql_key_of_every_character_is_the_python_key():
    """normalise_label and the loader's SQL (trim, collapse, lower) agree on every code point."""
    chars = [chr(c) for c in range(1, 0x30000) if not 0xD800 <= c < 0xE000]
    texts = [f" Ab{c}{c}Cd{c} " for c in chars] + [f"{c}x" for c in chars]
    con = duckdb.connect()
    sql_keys = con.execute(
        f"select {label_key_sql('trim(x, $spaces)')} from unnest($texts) with ordinality as t(x, i) order by i",
        {"texts": texts, "spaces": SPACES, "space_run": SPACE_RUN},
    ).fetchall()
    wrong = [(t, k[0], normalise_label(t)) for t, k in zip(texts, sql_keys) if k[0] != normalise_label(t)]
    assert not wrong, f"{len(wrong)} disagree, e.g. {wrong[:3]}"


def test_the_stage_lookup_finds_a_label_written_with_any_space():
    keys = ["closed won", "demo booked"]
    labels = ["Closed Won", "closed\u00a0won", "CLOSED \u2007 WON", "Demo\u202fBooked", "demo", "closed  won"]
    found = duckdb.connect().execute(
        f"select {stage_sql('x')} from unnest($labels) with ordinality as t(x, i) order by i",
        {"labels": labels, "label_keys": keys, "label_stages": ["won", "sql"], "space_run": SPACE_RUN},
    ).fetchall()
    assert [f[0] for f in found] == ["won", "won", "won", "sql", None, "won"]


def _events_csv(sp: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(["lead_id", "stage", "entered_at", "owner"])
    w.writerow([f"{sp}L1{sp}", f"{sp}Demo{sp}Booked{sp}", "2024-01-02", f"Ann{sp}"])
    w.writerow([f"L2{sp}", "demo booked", f"{sp}2024-01-03{sp}", "Bo"])
    w.writerow([f"{sp}{sp}", "mql", "2024-01-04", "Cy"])
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("sp", [c for _, c in SPACE_CASES], ids=IDS)
def test_labels_ids_and_values_with_each_space_load_mapped_and_trimmed(tmp_path, sp, fmt):
    config = load_config(write(tmp_path / "funnel.toml", f'[labels]\n{json.dumps(f"Demo{sp}Booked")} = "sql"\n'))
    table = list(csv.DictReader(io.StringIO(_events_csv(sp))))
    src = tmp_path / f"e.{fmt}"
    if fmt == "csv":
        write(src, _events_csv(sp))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(table), src)
    else:
        write(src, "".join(json.dumps(r) + "\n" for r in table))
    db = tmp_path / "wh.duckdb"
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (3, 2, 1)
    assert rows(db, "select lead_id, stage, stage_label, owner from raw_events order by 1") == [
        ("L1", "sql", f"Demo{sp}Booked", "Ann"),
        ("L2", "sql", "demo booked", "Bo"),
    ]
    assert rows(db, "select reason from quarantine") == [("missing_lead_id",)]
