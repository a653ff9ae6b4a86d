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
import numpy as np
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
_WINDOW = 1 << 30  # string views point into windows of the file this far apart (each twice as long)
_FIELD_LIMIT = 131072  # csv.field_size_limit(): a longer value is an error the csv module words


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the macros adapters use."""
    con = duckdb.connect(":memory:")
    con.execute(
        """create macro py_space(c) as (c <= 32 and (c between 9 and 13 or c >= 28))
               or (c >= 133 and (c in (133, 160, 5760, 8232, 8233, 8239, 8287, 12288) or c between 8192 and 8202))"""
    )
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
        data = _utf8(data, encoding)
        if data is not None:
            head = data.split(b"\n", 1)[0]
            if head.strip():
                full = parse_header(path, head.decode("utf-8").rstrip("\r"), delimiter, config.quote, what)
                header = tuple(full)
                if all(header) and len(set(h.lower() for h in header)) == len(header):
                    return _read_text(con, path, config, translation, name, header, data, delimiter, what)
    return _copy(con, read_table(path, config, translation, what=what), name)


def _utf8(data: bytes, encoding: str) -> bytes | None:
    """The text as UTF-8 bytes, or None when it does not decode (read_table then says which rows)."""
    if codecs.lookup(encoding).name == "utf-8":
        try:
            pa.Array.from_buffers(pa.large_string(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int64)),
                                                         pa.py_buffer(data)]).validate(full=True)
        except pa.ArrowInvalid:
            return None
        return data
    try:
        return data.decode(encoding).encode("utf-8")
    except UnicodeDecodeError:
        return None


def _views(data: bytes, u8: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """Arrow string views of data[starts[i]:ends[i]], without copying the text (DuckDB reads them as its own strings).

    A view is 16 bytes: the length, then up to 12 bytes inline, or the first 4 bytes, the buffer and the offset. Buffers
    are 2 GiB windows of the data starting every GiB, so each text lies whole in the window its start is in.
    """
    window = _WINDOW
    count = len(starts)
    lengths = (ends - starts).astype(np.int32)
    views = np.zeros((count, 16), np.uint8)
    views[:, 0:4] = lengths.view(np.uint8).reshape(count, 4)
    short = lengths <= 12
    at = np.minimum(starts[short, None] + np.arange(12), max(len(u8) - 1, 0))
    views[short, 4:16] = np.where(np.arange(12) < lengths[short, None], u8[at] if len(u8) else 0, 0)
    long = ~short
    views[long, 4:8] = u8[starts[long, None] + np.arange(4)]
    views[long, 8:12] = (starts[long] // window).astype(np.int32).view(np.uint8).reshape(-1, 4)
    views[long, 12:16] = (starts[long] % window).astype(np.int32).view(np.uint8).reshape(-1, 4)
    whole = pa.py_buffer(data)
    buffers = [whole.slice(i * window, min(2 * window, len(data) - i * window)) for i in range(max(1, -(-len(data) // window)))]
    return pa.Array.from_buffers(pa.string_view(), count, [None, pa.py_buffer(views), *buffers])


def _positions(u8: np.ndarray, byte: int) -> np.ndarray:
    """Where a byte occurs, found a few megabytes at a time (a comparison of the whole file would double its memory)."""
    step = 1 << 24
    return np.concatenate([np.flatnonzero(u8[i:i + step] == byte) + i for i in range(0, len(u8), step)] or [np.zeros(0, np.int64)])


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


def _rows_in_python(con: duckdb.DuckDBPyConnection, name: str, n: int, delimiter: str, quote: str) -> list[tuple[int, str, str, str]]:
    """Records SQL could not split (an open quote, a shape it does not read, another field count) are read
    by Python's csv module: put back in table `name` when they have `n` fields, else returned as
    rejections (line, reason, detail, text)."""
    rejected: list[tuple[int, str, str, str]] = []
    python_rows: list[tuple] = []
    for line, t, how, lines_in, found in con.execute(
        f"""select _line, _raw, _how, _lines, _fields from "{name}" where _how in ('open', 'python') or _fields <> {n} order by _line"""
    ).fetchall():
        if how == "open":
            rejected.append((line, "malformed_csv", f"unterminated quote: the record runs from line {line} to the end of the file "
                                                    f"({lines_in} line(s)) and was not loaded", t))
            continue
        if how == "python":
            try:
                fields = next(csv.reader([t], delimiter=delimiter, quotechar=quote, strict=True))
            except csv.Error as exc:
                rejected.append((line, "malformed_csv", f"the row cannot be parsed as CSV: {exc}", t))
                continue
            found = len(fields)
            if found == n:
                python_rows.append((line, t, *fields))
                continue
        rejected.append((line, "wrong_column_count", f"expected {n} fields, found {found}", t))
    if rejected or python_rows:
        con.execute(f"""delete from "{name}" where _how in ('open', 'python') or _fields <> {n}""")
    if python_rows:
        con.register("_python_rows", pa.table({"line": pa.array([r[0] for r in python_rows], pa.int64()),
                                               "t": pa.array([r[1] for r in python_rows], pa.string()),
                                               **{f"c{i}": pa.array([r[2 + i] for r in python_rows], pa.string()) for i in range(n)}}))
        con.execute(f"""insert into "{name}" select line, t, 'python', 1, {n}, {', '.join(f'c{i}' for i in range(n))} from _python_rows""")
        con.unregister("_python_rows")
    return rejected


def _read_text(con: duckdb.DuckDBPyConnection, path: Path, config: FunnelConfig, translation: Translation, name: str,
               header: tuple[str, ...], data: bytes, delimiter: str, what: str) -> RowTable:
    key = file_key(path)
    quote, n = config.quote, len(header)
    q, d = _sql_text(quote), _sql_text(delimiter)
    rq, rd = _regex_char(quote), _regex_char(delimiter)
    # Physical lines as in read_table (split at line feeds, a last empty piece dropped): Arrow string views over the
    # file's own bytes, without the line feed and the carriage returns before it (what a one-line record's text is).
    u8 = np.frombuffer(data, np.uint8)
    starts = _positions(u8, 10) + 1
    if len(starts) and starts[-1] == len(data):
        starts = starts[:-1]
    count = len(starts)
    ends = np.append(starts[1:] - 1, len(data) - 1 if data.endswith(b"\n") else len(data))
    full_ends = np.append(starts[1:], len(data))
    trimmed = ends.copy()
    while True:
        returns = (trimmed > starts) & (u8[np.maximum(trimmed - 1, 0)] == 13)
        if not returns.any():
            break
        trimmed[returns] -= 1
    if count and int((full_ends - starts).max()) >= _WINDOW:
        return _copy(con, read_table(path, config, translation, what=what), name)  # a line of a gigabyte: no views
    quotes = np.bincount(np.searchsorted(starts, _positions(u8, ord(quote)), "right"), minlength=count + 1)[1:]
    # A record continues while its quotes are unbalanced: it starts where the quotes before it balance.
    odd = bool((quotes & 1).any())
    columns: dict[str, pa.Array] = {"line": pa.array(np.arange(2, count + 2, dtype=np.int64)), "t": _views(data, u8, starts, trimmed),
                                    "q": pa.array(quotes.astype(np.int64))}
    if odd:
        before = np.concatenate(([0], np.cumsum(quotes)[:-1]))
        record = np.cumsum(before % 2 == 0) - 1
        columns["rec"] = pa.array(record)
        columns["multi"] = pa.array(np.bincount(record)[record] > 1)
        columns["whole"] = _views(data, u8, starts, full_ends)  # with its line feed: the text between lines of a record
    con.register("_physical", pa.table(columns))
    # One record per row: its first line, text (without the line feed and carriage returns that end it) and quotes.
    records = """select line, t, q, 1 as n from _physical"""
    if odd:
        records = f"""{records} where not multi
            union all
            select min(line), rtrim(string_agg(case when last then t else whole end, '' order by line), chr(13)), sum(q), count(*)
            from (select *, line = max(line) over (partition by rec) as last from _physical where multi) group by rec"""
    field = f'{rq}(?:[^{rq}]|{rq}{rq})*{rq}|[^{rd}{rq}\\r\\n]*'
    qq = _sql_text(quote * 2)
    split_quoted = _sql_text(quote + delimiter + quote)
    picks = ", ".join(f"f[{i + 1}] as c{i}" for i in range(n))
    con.execute(
        f"""create or replace temp table "{name}" as
            select line as _line, t as _raw, how as _how, n as _lines, len(f) as _fields, {picks} from (
                select line, t, how, n,
                       case how when 'plain' then string_split(t, {d})
                                when 'quoted' then string_split(substr(t, 2, length(t) - 2), {split_quoted})
                                when 'mixed' then list_transform(regexp_extract_all(t || {d}, '({field}){rd}', 1), lambda x:
                                                  case when starts_with(x, {q}) then replace(substr(x, 2, length(x) - 2), {qq}, {q})
                                                       else x end) end as f
                from (select line, t, n,
                             case when q % 2 = 1 then 'open'
                                  when length(t) > {_FIELD_LIMIT} then 'python'
                                  when q = 0 and strpos(t, chr(13)) = 0 then 'plain'
                                  when starts_with(t, {q}) and ends_with(t, {q}) and length(t) >= 2
                                       and q = 2 * len(string_split(substr(t, 2, length(t) - 2), {split_quoted})) then 'quoted'
                                  when regexp_full_match(t, '(?:{field})(?:{rd}(?:{field}))*') then 'mixed'
                                  else 'python' end as how
                      from ({records})
                      where t <> '' and not (py_space(ascii(t)) and regexp_full_match(t, '{PY_SPACE}*'))))"""
    )
    con.unregister("_physical")
    del columns
    rejected = _rows_in_python(con, name, n, delimiter, quote)
    for line, reason, detail, t in sorted(rejected):
        translation.reject(key, line, reason, detail, t)
    columns = {h: f'"c{i}"' for i, h in enumerate(header)}
    rows = con.execute(f'select count(*) from "{name}"').fetchall()[0][0]
    if not rows and not any(r.file == key for r in translation.rejected):
        raise UserError(f"{what} '{path}' has no data rows: expected at least one row after the header.")
    translation.source_rows[key] = rows + sum(1 for r in translation.rejected if r.file == key)
    return RowTable(path, header, [], delimiter, name, columns)
