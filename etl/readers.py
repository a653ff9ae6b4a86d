"""Input files: tell their format, check them at the file level, and turn each into one SQL source.

Every source yields the same shape: `_line` (the row's line in the file, header = line 1;
for Parquet the row number), `_raw` (the row as text, for the quarantine) and the file's
columns as VARCHAR under positional names `c0, c1, ...`, so no text from the file ever
becomes SQL. Rows the parser itself rejects (wrong column count, unterminated quote,
invalid encoding, malformed JSON) come back separately through `rejected_sql`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from funnelboard.core.config import REQUIRED_EVENT_COLUMNS, FunnelConfig
from funnelboard.core.errors import UserError

FORMATS = {
    ".csv": ("csv", None),
    ".csv.gz": ("csv", "gzip"),
    ".tsv": ("csv", None),
    ".tsv.gz": ("csv", "gzip"),
    ".parquet": ("parquet", None),
    ".pq": ("parquet", None),
    ".jsonl": ("jsonl", None),
    ".ndjson": ("jsonl", None),
    ".jsonl.gz": ("jsonl", "gzip"),
    ".ndjson.gz": ("jsonl", "gzip"),
}
RESERVED = {"load_id", "file_id", "source_line", "stage_label", "_line", "_raw"}
_NOT_IDENT = re.compile(r"[^a-z0-9]+")
_HEAD_BYTES = 1 << 16
# A column with no name in the header (a trailing delimiter) is read under this name and never
# becomes an attribute; column_name() never makes a name that starts with an underscore.
UNNAMED = "_unnamed"
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class InputFile:
    """One checked input file: where it is, what it holds and how its columns map."""

    path: Path
    role: str  # "events" or "leads"
    fmt: str  # "csv", "parquet" or "jsonl"
    compression: str | None
    header: tuple[str, ...]  # column names as written in the file
    names: tuple[str, ...]  # the same columns as warehouse names (lead_id, stage, ..., attributes)
    size: int
    sha256: str
    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    json_keys: tuple[str, ...] = field(default=())
    relation: str = ""  # fmt "arrow": the registered relation holding an adapter's records
    has_raw: bool = False  # fmt "arrow": the relation has a `_raw` column
    notes: tuple[str, ...] = ()  # what the checks accepted and the user should know (an unnamed empty column)

    @property
    def attributes(self) -> tuple[str, ...]:
        core = set(REQUIRED_EVENT_COLUMNS) | {"reason", "created_at"}
        return tuple(n for n in self.names if n not in core and not n.startswith(UNNAMED))

    def column(self, name: str) -> str | None:
        """The positional SQL name (c3) of a warehouse column, or None when the file lacks it."""
        return f"c{self.names.index(name)}" if name in self.names else None


def detect_format(path: Path) -> tuple[str, str | None]:
    """The format and compression a file's name says it has."""
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    raise UserError(
        f"cannot tell the format of '{path}': expected a name ending in .csv, .csv.gz, .tsv, "
        f".parquet, .jsonl or .ndjson, found '{path.suffix or 'no extension'}'."
    )


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def column_name(header: str) -> str:
    """A file's column header as a warehouse column name: lower snake_case."""
    name = _NOT_IDENT.sub("_", header.strip().lower()).strip("_")
    if not name:
        return ""
    return f"col_{name}" if name[0].isdigit() else name


def inspect(path: Path, role: str, config: FunnelConfig, con) -> InputFile:
    """Check one input at the file level and describe it; raise UserError naming the file otherwise."""
    path = Path(path)
    what = "leads file" if role == "leads" else "events file"
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist.")
    if not path.is_file():
        raise UserError(f"{what} '{path}' is not a file.")
    fmt, compression = detect_format(path)
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{what} '{path}' is empty: expected a header row and at least one data row.")
    notes: tuple[str, ...] = ()
    if fmt == "csv":
        delimiter = "\t" if ".tsv" in path.name.lower() else config.delimiter
        header, has_data, first_row = _csv_header(path, compression, delimiter, config, what)
        header, notes = unnamed_columns(path, header, first_row, what)
        json_keys: tuple[str, ...] = ()
    elif fmt == "jsonl":
        delimiter = config.delimiter
        header, has_data = _jsonl_keys(path, compression, con, what)
        json_keys = header
    else:
        delimiter = config.delimiter
        header, has_data = _parquet_columns(path, con, what)
        json_keys = ()
    if not has_data:
        raise UserError(f"{what} '{path}' has no data rows: expected at least one row after the header.")
    names = _map_columns(path, header, role, config, what)
    f = InputFile(
        path=path.resolve(),
        role=role,
        fmt=fmt,
        compression=compression,
        header=tuple(header),
        names=names,
        size=size,
        sha256=file_sha256(path),
        delimiter=delimiter,
        quote=config.quote,
        encoding=config.encoding,
        json_keys=json_keys,
        notes=notes,
    )
    if any(n.startswith(UNNAMED) for n in names):
        _check_unnamed_empty(f, con, what)
    return f


def _open_head(path: Path, compression: str | None, what: str) -> bytes:
    try:
        if compression == "gzip":
            with gzip.open(path, "rb") as fh:
                return fh.read(_HEAD_BYTES)
        with open(path, "rb") as fh:
            return fh.read(_HEAD_BYTES)
    except (OSError, EOFError) as exc:
        raise UserError(f"{what} '{path}' cannot be read as {compression or 'plain'} data: {exc}.") from None


def _csv_header(path: Path, compression: str | None, delimiter: str, config: FunnelConfig, what: str):
    head = _open_head(path, compression, what)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(
            f"{what} '{path}' is UTF-16 encoded: expected {config.encoding} text (save it as UTF-8 CSV, "
            "or set encoding = \"utf-16\" under [input] in funnel.toml)."
        )
    if b"\x00" in head:
        raise UserError(f"{what} '{path}' contains NUL bytes: expected {config.encoding} CSV text, found binary data.")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    first, _, rest = head.partition(b"\n")
    try:
        text = first.decode(config.encoding.replace("latin-1", "latin_1")).rstrip("\r")
    except (UnicodeDecodeError, LookupError):
        raise UserError(f"{what} '{path}' has a header row that is not valid {config.encoding}: expected {config.encoding} CSV text.") from None
    if not text.strip():
        raise UserError(f"{what} '{path}' is empty: expected a header row and at least one data row.")
    header = parse_header(path, text, delimiter, config.quote, what)
    first_row = None
    for line in rest.split(b"\n"):
        if line.strip():
            try:
                first_row = next(csv.reader([line.decode(config.encoding.replace("latin-1", "latin_1"), errors="replace").rstrip("\r")],
                                            delimiter=delimiter, quotechar=config.quote))
            except csv.Error:
                first_row = None
            break
    return header, bool(rest.strip()), first_row


def parse_header(path: Path, text: str, delimiter: str, quote: str, what: str) -> list[str]:
    """The column names of a CSV header line; a UserError naming the delimiter when the file uses another one.

    A semicolon- or tab-separated export read as comma-separated has its whole header in one field
    (or, when the names are quoted, a header the CSV parser refuses): say so, and how to set it.
    """
    try:
        fields = next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote, strict=True))
    except (csv.Error, StopIteration) as exc:
        _wrong_delimiter(path, text, delimiter, what)
        raise UserError(f"{what} '{path}' has a header row that cannot be read as CSV ({exc}): "
                        f"expected column names separated by {SEPARATORS.get(delimiter, repr(delimiter))}s.") from None
    if len(fields) == 1:
        _wrong_delimiter(path, fields[0], delimiter, what)
    return [h.strip() for h in fields]


def _wrong_delimiter(path: Path, text: str, delimiter: str, what: str) -> None:
    """UserError when `text` (a header read as one field) holds another separator than `delimiter`."""
    found = [d for d in SEPARATORS if d != delimiter and d in text]
    if not found:
        return
    sep = max(found, key=text.count)
    toml = '"\\t"' if sep == "\t" else f'"{sep}"'
    fix = f"set delimiter = {toml} under [input] in funnel.toml"
    if path.name.lower().endswith((".tsv", ".tsv.gz")):
        fix = "rename it to .csv (a .tsv file is always read as tab-separated)" + ("" if sep == "," else f" and {fix}")
    shown = (text if len(text) <= 60 else text[:57] + "...").replace("\t", "\\t")
    raise UserError(
        f"{what} '{path}' has its whole header in one column ('{shown}'): it looks {SEPARATORS[sep]}-separated, "
        f"but it was read as {SEPARATORS.get(delimiter, repr(delimiter))}-separated; {fix}."
    )


def unnamed_columns(path: Path, header: list[str], first_row: list[str] | None, what: str) -> tuple[list[str], tuple[str, ...]]:
    """The header with each column that has no name (a trailing delimiter) named `_unnamed<i>`, and a note.

    When the data rows lack the trailing unnamed columns (only the header ends in a delimiter), they
    are dropped from the header instead. The columns kept must be empty in every row (checked by
    the reader), else the file is refused.
    """
    unnamed = [i for i, h in enumerate(header) if not h]
    if not unnamed:
        return header, ()
    named = [i for i, h in enumerate(header) if h]
    if not named:
        raise UserError(f"{what} '{path}' has a header row with no column names: expected names such as lead_id.")
    last_named = named[-1]
    if first_row is not None and len(first_row) == last_named + 1 and all(i > last_named for i in unnamed):
        header = header[: last_named + 1]
    else:
        header = [h or f"{UNNAMED}{i}" for i, h in enumerate(header)]
    columns = ", ".join(str(i + 1) for i in unnamed)
    note = (f"'{path.name}' has {'a column' if len(unnamed) == 1 else 'columns'} with no name in its header "
            f"(column {columns}, such as a trailing delimiter makes); it holds no values and was not read.")
    return header, (note,)


def _check_unnamed_empty(f: InputFile, con, what: str) -> None:
    """UserError when a column with no name holds a value in some row: it cannot be named, so it cannot be read."""
    sql, params = source_sql(f, "_unnamed_rejects")
    for i, name in enumerate(f.names):
        if not name.startswith(UNNAMED):
            continue
        found = con.execute(f"select c{i} from ({sql}) where trim(c{i}) <> '' limit 1", params).fetchall()
        if found:
            raise UserError(
                f"{what} '{f.path}' has a column with no name (column {i + 1}) that holds values ('{found[0][0][:40]}' "
                "is one): name that column in the header, or delete it."
            )


def _jsonl_keys(path: Path, compression: str | None, con, what: str):
    head = _open_head(path, compression, what)
    if not head.strip():
        raise UserError(f"{what} '{path}' is empty: expected one JSON object per line.")
    rows = con.execute(
        f"select k from (select unnest(json_keys(_raw)) as k, min(_line) as first_line from ({lines_sql()}) "
        f"where {_IS_OBJECT} group by k) order by first_line, k",
        {"path": str(path), "compression": compression or "none"},
    ).fetchall()
    return [r[0] for r in rows], bool(head.strip())


def _parquet_columns(path: Path, con, what: str):
    try:
        rows = con.execute("describe select * from read_parquet($path)", {"path": str(path)}).fetchall()
        count = con.execute("select num_rows from parquet_file_metadata($path)", {"path": str(path)}).fetchall()[0][0]
    except Exception as exc:  # duckdb raises several types for a corrupt file
        raise UserError(f"{what} '{path}' is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    return [r[0] for r in rows], bool(count)


def _map_columns(path: Path, header: list[str], role: str, config: FunnelConfig, what: str) -> tuple[str, ...]:
    renames = {v.strip().lower(): k for k, v in config.columns.items()}
    names: list[str] = []
    for raw in header:
        key = raw.strip().lower()
        name = raw if raw.startswith(UNNAMED) else renames.get(key) or column_name(raw)
        if not name:
            raise UserError(f"{what} '{path}' has a column with an empty name: expected a name for every column.")
        if name in RESERVED:
            raise UserError(f"{what} '{path}' has a column named '{raw}', which funnelboard reserves: rename it.")
        if name in names:
            raise UserError(f"{what} '{path}' has two columns named '{name}': expected unique column names.")
        names.append(name)
    required = ("lead_id",) if role == "leads" else REQUIRED_EVENT_COLUMNS
    missing = [c for c in required if c not in names]
    if missing:
        renamed = [config.columns.get(c, c) for c in required]
        raise UserError(
            f"{what} '{path}' has no '{config.columns.get(missing[0], missing[0])}' column: expected "
            f"{', '.join(renamed)}; found {', '.join(header) if header else 'no columns'}."
        )
    return tuple(names)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lines_sql() -> str:
    """Every non-blank line of a text file as (_line, _raw); $path and $compression are bound."""
    return (
        "select ordinality as _line, line as _raw from read_csv($path, columns={'line': 'VARCHAR'}, "
        "auto_detect=false, header=false, delim=e'\\x1f', quote='', escape='', strict_mode=false, "
        "compression=$compression, ignore_errors=true) with ordinality"
    )


def source_sql(f: InputFile, rejects_table: str) -> tuple[str, dict]:
    """SELECT yielding (_ord, c0..cN[, _raw]) for a file; $-parameters bound in the returned dict."""
    params: dict = {"path": str(f.path)}
    cols = [f"c{i}" for i in range(len(f.names))]
    if f.fmt == "csv":
        params["compression"] = f.compression or "none"
        struct = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
        sql = (
            f"select ordinality as _ord, {', '.join(cols)} from read_csv($path, columns={struct}, "
            f"auto_detect=false, header=true, delim={_sql_str(f.delimiter)}, quote={_sql_str(f.quote)}, "
            f"escape={_sql_str(f.quote)}, encoding={_sql_str(f.encoding)}, compression=$compression, strict_mode=true, "
            # An empty field must stay '' (not NULL): with NULLs DuckDB silently drops trailing
            # empty fields, so "a,b,c," would pass as three columns.
            "nullstr=e'\\x01', "
            f"null_padding=false, ignore_errors=true, store_rejects=true, rejects_table='{rejects_table}', "
            f"rejects_scan='{rejects_table}_scan') with ordinality"
        )
        return sql, params
    if f.fmt == "jsonl":
        params["compression"] = f.compression or "none"
        extracts = []
        for i, key in enumerate(f.json_keys):
            params[f"k{i}"] = "/" + key.replace("~", "~0").replace("/", "~1")
            extracts.append(f"json_extract_string(_raw, $k{i}) as c{i}")
        sql = f"select _line as _ord, {', '.join(extracts)}, _raw from ({lines_sql()}) where {_IS_OBJECT}"
        return sql, params
    selects = ", ".join(
        f"cast(\"{h.replace(chr(34), chr(34) * 2)}\" as varchar) as c{i}" for i, h in enumerate(f.header)
    )
    if f.fmt == "arrow":  # an adapter's records (etl/sources): `_line` is the source line
        raw = ", _raw" if f.has_raw else ""
        return f"select _line as _ord, {selects}{raw} from {f.relation}", {}
    sql = (
        f"select file_row_number + 1 as _ord, {selects} "
        "from read_parquet($path, file_row_number=true)"
    )
    return sql, params


def raw_sql(f: InputFile) -> tuple[str, dict]:
    """An expression over c0..cN giving a row's text as the file held it (for the quarantine)."""
    cols = [f"c{i}" for i in range(len(f.names))]
    if f.fmt == "csv":
        quote = f.quote.replace("'", "''")
        parts = [
            f"coalesce(case when strpos({c}, '{quote}') > 0 or strpos({c}, {_sql_str(f.delimiter)}) > 0 "
            f"or strpos({c}, chr(10)) > 0 or strpos({c}, chr(13)) > 0 "
            f"then '{quote}' || replace({c}, '{quote}', '{quote}{quote}') || '{quote}' else {c} end, '')"
            for c in cols
        ]
        return f" || {_sql_str(f.delimiter)} || ".join(parts), {}
    if f.fmt == "jsonl":
        return "_raw", {}
    params = {f"h{i}": h for i, h in enumerate(f.header)}
    pairs = ", ".join(f"$h{i}, c{i}" for i in range(len(cols)))
    if f.fmt == "arrow" and f.has_raw:
        return f"coalesce(_raw, json_object({pairs})::varchar)", params
    return f"json_object({pairs})::varchar", params


_IS_OBJECT = "(case when json_valid(_raw) then json_type(_raw) = 'OBJECT' else false end)"


def jsonl_rejects_sql() -> str:
    """Lines of a JSON Lines file that are not one JSON object, as (line, reason, detail, raw)."""
    return (
        "select _line as line, case when json_valid(_raw) then 'not_a_json_object' else 'malformed_json' end as reason, "
        "case when json_valid(_raw) then 'the line is valid JSON but not an object' else 'the line is not valid JSON' end as detail, "
        f"_raw as raw from ({lines_sql()}) where not {_IS_OBJECT}"
    )
