"""An export's rows as a DuckDB table, numbered and kept as text exactly as `read_table` reads them.

`read_rows` gives what `base.read_table` gives (the same rows, lines, raw text, rejections,
`source_rows` and file-level errors) as a table in a DuckDB connection, for adapters that translate
in SQL: `_line` (BIGINT), `_raw` and one VARCHAR column per named header column. CSV and TSV in a
single-byte encoding or UTF-8 are split and parsed in DuckDB: records without quotes and records
with every value quoted by splitting, other well-formed quoted records with a regular expression;
a record none of these fits exactly (a quote inside an unquoted value, a stray carriage return, a
value longer than the csv module allows) is parsed by the csv module as `read_table` parses it.
Parquet files, files that do not decode, and headers with unnamed columns are read by
`read_table` itself and copied into the table.

`py_strip(x)` (created by `connect`) is Python's `str.strip()` in SQL: it removes the characters
`str.isspace` calls whitespace, not only spaces.
"""

from __future__ import annotations

import codecs
import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.etl.readers import parse_header
from funnelboard.etl.sources.base import SourceTable, Translation, file_key, read_table

# The characters str.isspace() is true for, as an RE2 character class.
PY_SPACE = r"[\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
# Encodings in which a line feed byte is always a line feed, so decoding the whole file and then
# splitting it gives what splitting the bytes and decoding each record gives.
_SPLITTABLE = {"utf-8", "iso8859-1", "cp1252", "ascii"}
_FIELD_LIMIT = 131072  # csv.field_size_limit(): a longer value is an error the csv module words


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the macros adapters use."""
    con = duckdb.connect(":memory:")
    con.execute(
        f"""create macro py_strip(x) as case when x = '' then x
                when regexp_matches(x, '^{PY_SPACE}|{PY_SPACE}$')
                then regexp_replace(x, '^{PY_SPACE}+|{PY_SPACE}+$', '', 'g') else x end"""
    )
    return con


@dataclass
class RowTable(SourceTable):
    """An export read into DuckDB: the header as written and the name of its table of rows.

    `rows` stays empty; `sql_columns` maps each header name to its column in `name`.
    """

    name: str = ""
    sql_columns: dict[str, str] | None = None

    def col(self, header: str) -> str:
        """The quoted SQL column of a header name as written."""
        return self.sql_columns[header]


def read_rows(con: duckdb.DuckDBPyConnection, path: Path, config: FunnelConfig, translation: Translation, name: str,
              *, what: str = "export") -> RowTable:
    """Read an export into table `name` of `con`: what read_table gives, with the same checks and rejections."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist.")
    if not path.is_file():
        raise UserError(f"{what} '{path}' is not a file.")
    if path.stat().st_size == 0:
        raise UserError(f"{what} '{path}' is empty: expected a header row and at least one data row.")
    lower = path.name.lower()
    if not lower.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        return _copy(con, read_table(path, config, translation, what=what), name)
    delimiter = "\t" if ".tsv" in lower else config.delimiter
    encoding = config.encoding.replace("latin-1", "latin_1")
    try:
        data = gzip.open(path, "rb").read() if lower.endswith(".gz") else path.read_bytes()
        fast = (codecs.lookup(encoding).name in _SPLITTABLE and delimiter.isascii() and config.quote.isascii()
                and delimiter not in ("\r", "\n", config.quote) and config.quote not in ("\r", "\n"))
    except (OSError, EOFError, LookupError):
        fast = False
    if fast and not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in data[: 1 << 16]:
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            text = None
        if text is not None:
            head, newline, body = text.partition("\n")
            if head.strip(" \t\n\r\x0b\x0c"):
                full = parse_header(path, head.rstrip("\r"), delimiter, config.quote, what)
                header = tuple(full)
                if all(header) and len(set(h.lower() for h in header)) == len(header):
                    del data
                    return _read_text(con, path, config, translation, name, header, body, delimiter, what)
    return _copy(con, read_table(path, config, translation, what=what), name)


def _copy(con: duckdb.DuckDBPyConnection, table: SourceTable, name: str) -> RowTable:
    """A table read by read_table, copied into DuckDB."""
    columns = {h: f'"c{i}"' for i, h in enumerate(table.header)}
    arrays = {"_line": pa.array([r[0] for r in table.rows], pa.int64()), "_raw": pa.array([r[2] for r in table.rows], pa.string())}
    for i, h in enumerate(table.header):
        arrays[f"c{i}"] = pa.array([r[1][h] for r in table.rows], pa.string())
    arrow = pa.table(arrays)
    con.register("_copy_rows", arrow)
    con.execute(f'create or replace temp table "{name}" as select * from _copy_rows')
    con.unregister("_copy_rows")
    return RowTable(table.path, table.header, [], table.delimiter, name, columns)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _regex_char(c: str) -> str:
    return f"\\x{{{ord(c):x}}}"


def _read_text(con: duckdb.DuckDBPyConnection, path: Path, config: FunnelConfig, translation: Translation, name: str,
               header: tuple[str, ...], body: str, delimiter: str, what: str) -> RowTable:
    key = file_key(path)
    quote, n = config.quote, len(header)
    q, d = _sql_text(quote), _sql_text(delimiter)
    rq, rd = _regex_char(quote), _regex_char(delimiter)
    if body.endswith("\n"):
        body = body[:-1]
    lines = f"_lines_{name}"
    con.execute(f'create or replace temp table "{lines}" (line bigint, t varchar, q bigint)')
    if body:
        con.execute(
            f"""insert into "{lines}"
                select line, t, length(t) - length(replace(t, {q}, '')) from (
                    select unnest(s) as t, unnest(range(2, len(s) + 2)) as line from (select string_split($body, chr(10)) as s))""",
            {"body": body},
        )
    del body
    # A record continues while its quotes are unbalanced: it starts where the quotes before it balance.
    odd = con.execute(f'select count(*) from "{lines}" where q % 2 = 1').fetchall()[0][0]
    records = f"_records_{name}"
    if odd:
        con.execute(
            f"""create or replace temp table "{records}" as
                with marked as (
                    select line, t, q,
                           coalesce(sum(q) over (order by line rows between unbounded preceding and 1 preceding), 0) % 2 = 0 as starts
                    from "{lines}"),
                numbered as (select *, sum(starts::int) over (order by line) as rec from marked)
                select min(line) as line, rtrim(string_agg(t, chr(10) order by line), chr(13)) as t, sum(q) as q, count(*) as n
                from numbered group by rec"""
        )
    else:
        con.execute(f'create or replace temp table "{records}" as select line, rtrim(t, chr(13)) as t, q, 1 as n from "{lines}"')
    con.execute(f'drop table "{lines}"')
    field = f'{rq}(?:[^{rq}]|{rq}{rq})*{rq}|[^{rd}{rq}\\r\\n]*'
    qq = _sql_text(quote * 2)
    split_quoted = _sql_text(quote + delimiter + quote)
    parsed = f"_parsed_{name}"
    con.execute(
        f"""create or replace temp table "{parsed}" as
            select line, t, q, n,
                   case when q % 2 = 1 then 'open'
                        when length(t) > {_FIELD_LIMIT} then 'python'
                        when q = 0 and strpos(t, chr(13)) = 0 then 'plain'
                        when starts_with(t, {q}) and ends_with(t, {q}) and length(t) >= 2
                             and q = 2 * len(string_split(substr(t, 2, length(t) - 2), {split_quoted})) then 'quoted'
                        when regexp_full_match(t, '(?:{field})(?:{rd}(?:{field}))*') then 'mixed'
                        else 'python' end as how
            from "{records}"
            where not regexp_full_match(t, '{PY_SPACE}*')"""
    )
    con.execute(f'drop table "{records}"')
    rejected: list[tuple[int, str, str, str]] = []
    for line, t, lines_in in con.execute(f"""select line, t, n from "{parsed}" where how = 'open' order by line""").fetchall():
        rejected.append((line, "malformed_csv", f"unterminated quote: the record runs from line {line} to the end of the file "
                                                f"({lines_in} line(s)) and was not loaded", t))
    python_rows: list[tuple[int, str, list[str]]] = []
    for line, t in con.execute(f"""select line, t from "{parsed}" where how = 'python' order by line""").fetchall():
        try:
            fields = next(csv.reader([t], delimiter=delimiter, quotechar=quote, strict=True))
        except csv.Error as exc:
            rejected.append((line, "malformed_csv", f"the row cannot be parsed as CSV: {exc}", t))
            continue
        python_rows.append((line, t, fields))
    con.register("_python_rows", pa.table({"line": pa.array([r[0] for r in python_rows], pa.int64()),
                                           "t": pa.array([r[1] for r in python_rows], pa.string()),
                                           "f": pa.array([r[2] for r in python_rows], pa.list_(pa.string()))}))
    fields = f"_fields_{name}"
    con.execute(
        f"""create or replace temp table "{fields}" as
            select line, t, case how when 'plain' then string_split(t, {d})
                                     when 'quoted' then string_split(substr(t, 2, length(t) - 2), {split_quoted})
                                     else list_transform(regexp_extract_all(t || {d}, '({field}){rd}', 1), lambda x:
                                                         case when starts_with(x, {q}) then replace(substr(x, 2, length(x) - 2), {qq}, {q})
                                                                   else x end) end as f
            from "{parsed}" where how in ('plain', 'quoted', 'mixed')
            union all select line, t, f from _python_rows"""
    )
    con.unregister("_python_rows")
    con.execute(f'drop table "{parsed}"')
    for line, t, found in con.execute(f'select line, t, len(f) from "{fields}" where len(f) <> {n} order by line').fetchall():
        rejected.append((line, "wrong_column_count", f"expected {n} fields, found {found}", t))
    columns = {h: f'"c{i}"' for i, h in enumerate(header)}
    picks = ", ".join(f"f[{i + 1}] as c{i}" for i in range(n))
    con.execute(f'create or replace temp table "{name}" as select line as _line, t as _raw, {picks} from "{fields}" where len(f) = {n}')
    con.execute(f'drop table "{fields}"')
    for line, reason, detail, t in sorted(rejected):
        translation.reject(key, line, reason, detail, t)
    rows = con.execute(f'select count(*) from "{name}"').fetchall()[0][0]
    if not rows and not any(r.file == key for r in translation.rejected):
        raise UserError(f"{what} '{path}' has no data rows: expected at least one row after the header.")
    translation.source_rows[key] = rows + sum(1 for r in translation.rejected if r.file == key)
    return RowTable(path, header, [], delimiter, name, columns)
