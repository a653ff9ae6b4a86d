"""read_rows gives what read_table gives: rows, lines, raw text, rejections and source rows, for any text."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import Translation, read_table
from funnelboard.etl.sources.duck_rows import connect, read_rows

# Characters that make CSV hard: quotes, delimiters, line breaks, carriage returns, spaces Python
# strips and DuckDB's trim does not, a multi-byte letter; plain text more often than any of them.
PIECES = ['"', ",", "\n", "\r", "\r\n", " ", "\u00a0", "\u2003", "\x1f", "\t", "é", '""', "x,y", ";", '","', "'"] + ["a", "bc,d", "\n"] * 4


def both(data: bytes, name: str, toml: str = ""):
    """(read_table's outcome, read_rows's outcome) for one file: rows, rejections, source rows, notes, or the error."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "funnel.toml").write_text(toml)
        config = load_config(folder / "funnel.toml")
        path = folder / name
        path.write_bytes(data)
        outcomes = []
        for reader in ("python", "duckdb"):
            t = Translation()
            try:
                if reader == "python":
                    table = read_table(path, config, t)
                    rows = [(line, tuple(values[h] for h in table.header), raw) for line, values, raw in table.rows]
                else:
                    con = connect()
                    table = read_rows(con, path, config, t, "rows")
                    cols = ", ".join(table.col(h) for h in table.header)
                    rows = [(r[0], tuple(r[2:]), r[1]) for r in con.execute(f"select _line, _raw, {cols} from rows order by _line").fetchall()]
            except UserError as exc:
                outcomes.append(("error", str(exc)))
                continue
            outcomes.append((table.header, rows, sorted((r.line, r.reason, r.detail, r.raw) for r in t.rejected), t.source_rows, t.notes))
        return outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.sampled_from(["a,b,c", "id,value", '"x","y ""z""",w', "one", "a;b"]),
       body=st.lists(st.sampled_from(PIECES), max_size=40), name=st.sampled_from(["f.csv", "f.tsv", "f.csv"]),
       toml=st.sampled_from(["", '[input]\ndelimiter = ";"\n', "[input]\nquote = \"'\"\n", '[input]\nencoding = "latin-1"\n']))
@pytest.mark.slow
def test_any_text_reads_as_read_table_reads_it(header, body, name, toml):
    python, duck = both((header + "\n" + "".join(body)).encode("utf-8"), name, toml)
    assert duck == python


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(st.sampled_from(["", "a", "b c", " d ", "e,f", 'g"h', "i\nj", "\u00a0k", "l\r\nm"]), min_size=3, max_size=3),
                     max_size=12),
       quote_all=st.booleans(), crlf=st.booleans())
@pytest.mark.slow
def test_quoted_exports_read_as_read_table_reads_them(rows, quote_all, crlf):
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if quote_all or any(c in v for c in ',"\r\n') else v

    nl = "\r\n" if crlf else "\n"
    text = nl.join([",".join(cell(h) for h in ("id", "name", "note"))] + [",".join(cell(v) for v in r) for r in rows]) + nl
    python, duck = both(text.encode("utf-8"), "f.csv")
    assert duck == python


@pytest.mark.parametrize("data,name", [
    (b"", "f.csv"), (b"\n\n", "f.csv"), (b"a,b\n", "f.csv"), (b"a,b,\n1,2,\n", "f.csv"), (b"a,a\n1,2\n", "f.csv"),
    (b"\xff\xfea\x00", "f.csv"), (b"a,b\n1,\xff\n2,3\n", "f.csv"), (b"\xef\xbb\xbfa,b\n1,2", "f.csv"), (b"a,b\n1,2", "f.csv.gz"),
    (b"a,b\n1,2\n", "f.json"), (b"a,b\r\n1,2\r\n\r\n3,4", "f.txt"), (b"a,b\n" + b"1,2\n" * 20000 + b"3,\x004\n", "f.csv"),
    (b"a,b\n" + b'1,"' + b"x" * 140000 + b'"\n', "f.csv"),
])
def test_edge_files_read_as_read_table_reads_them(data, name):
    if name.endswith(".gz"):
        import gzip

        data = gzip.compress(data)
    python, duck = both(data, name)
    assert duck == python
