"""Input files: tell their format, check them at the file level, and turn each into one SQL source.

Every source yields the same shape: `_line` (the row's line in the file, header = line 1;
for Parquet the row number), `_raw` (the row as text, for the quarantine) and the file's
columns as VARCHAR under positional names `c0, c1, ...`, so no text from the file ever
becomes SQL (a Parquet column is selected by its name, quoted by `identifiers.ident`). Rows
the parser itself rejects (wrong column count, unterminated quote, invalid encoding,
malformed JSON) come back separately (`jsonl_rejects_sql`, DuckDB's CSV rejects table).
Before DuckDB reads a file, `scan.scan` has read all of it once (gzip checksum, NUL bytes,
line endings).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from funnelboard.core.config import REQUIRED_EVENT_COLUMNS, FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.etl.identifiers import ident
from funnelboard.etl.scan import JSONL_LINE_MAX, LINE_LIMIT, RAW_KEPT, Scan, lf_copy, scan, unreadable

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
    # fmt "jsonl": per column, the keys that hold it (keys are matched without regard to case,
    # so "lead_id" in one line and "Lead_ID" in another fill one column)
    json_keys: tuple[tuple[str, ...], ...] = field(default=())
    json_duplicate_lines: tuple[int, ...] = ()  # fmt "jsonl": lines with two keys for one column
    longest_line: int = 0  # fmt "jsonl": bytes of its longest line (a bound: exact above 1 MiB)
    relation: str = ""  # fmt "arrow": the registered relation holding an adapter's records
    has_raw: bool = False  # fmt "arrow": the relation has a `_raw` column
    notes: tuple[str, ...] = ()  # what the checks accepted and the user should know (an unnamed empty column)
    mtime_ns: int = 0  # when the file was last changed, as checked: a file changed since is not loaded
    # A CSV file with mixed line endings is read from a copy with LF endings (scan.lf_copy):
    # its path, and the temporary folder holding it (deleted when the last reference goes).
    read_path: Path | None = None
    scratch: object = field(default=None, compare=False, repr=False)

    @property
    def attributes(self) -> tuple[str, ...]:
        core = set(REQUIRED_EVENT_COLUMNS) | {"reason", "created_at"}
        return tuple(n for n in self.names if n not in core and not n.startswith(UNNAMED))

    def column(self, name: str) -> str | None:
        """The positional SQL name (c3) of a warehouse column, or None when the file lacks it."""
        return f"c{self.names.index(name)}" if name in self.names else None

    @property
    def what(self) -> str:
        """How messages name the file's role: "events file" or "leads file"."""
        return "leads file" if self.role == "leads" else "events file"

    def read_params(self) -> dict:
        """$path and $compression of what DuckDB reads: the file, or its copy with LF line endings."""
        if self.read_path is not None:
            return {"path": str(self.read_path), "compression": "none"}
        return {"path": str(self.path), "compression": self.compression or "none"}


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
    """The SHA-256 of a file's bytes, as the ledger records it."""
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
    stat = path.stat()
    if stat.st_size == 0:
        raise UserError(f"{what} '{path}' is empty: expected a header row and at least one data row.")
    text = fmt in ("csv", "jsonl")
    expected = "one JSON object per line" if fmt == "jsonl" else "a header row and at least one data row"
    head = _text_head(path, compression, config, what, expected) if text else b""
    scanned = scan(path, compression, what, text=text)
    notes: tuple[str, ...] = ()
    json_keys: tuple[tuple[str, ...], ...] = ()
    duplicate_lines: tuple[int, ...] = ()
    delimiter = config.delimiter
    if fmt == "csv":
        delimiter = "\t" if ".tsv" in path.name.lower() else config.delimiter
        header, has_data, first_row = _csv_header(path, head, delimiter, config, what)
        header, notes = unnamed_columns(path, header, first_row, what)
    elif fmt == "jsonl":
        with reading(path, what):
            header, json_keys, duplicate_lines = _jsonl_columns(path, compression, scanned, config, con, what)
        has_data = True
    else:
        header, has_data = _parquet_columns(path, con, what)
    if not has_data:
        raise UserError(f"{what} '{path}' has no data rows: expected at least one row after the header.")
    names = _map_columns(path, header, role, config, what)
    scratch, read_path = lf_copy(path, compression, what) if fmt == "csv" and scanned.mixed_endings else (None, None)
    f = InputFile(
        path=path.resolve(),
        role=role,
        fmt=fmt,
        compression=compression,
        header=tuple(header),
        names=names,
        size=stat.st_size,
        sha256=scanned.sha256,
        delimiter=delimiter,
        quote=config.quote,
        encoding=config.encoding,
        json_keys=json_keys,
        json_duplicate_lines=duplicate_lines,
        longest_line=scanned.longest,
        notes=notes + ((_MIXED_NOTE.format(name=path.name),) if read_path else ()),
        mtime_ns=stat.st_mtime_ns,
        read_path=read_path,
        scratch=scratch,
    )
    if any(n.startswith(UNNAMED) for n in names):
        with reading(path, what):
            _check_unnamed_empty(f, con, what)
    return f


@contextlib.contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Turn DuckDB's refusal to read a checked file into a UserError naming it: the file changed or went
    away since it was checked, or it holds what the parser cannot read (never a traceback)."""
    try:
        yield
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        if not Path(path).is_file():
            raise UserError(f"{what} '{path}' disappeared while it was being loaded: nothing was loaded.") from None
        raise UserError(f"{what} '{path}' cannot be read: {duckdb_reason(exc)}.") from None


def duckdb_reason(exc: Exception) -> str:
    """The first line of a DuckDB error without its kind ("Invalid Input Error: ") or final period."""
    return str(exc).splitlines()[0].split(" Error: ", 1)[-1].rstrip(".")


_MIXED_NOTE = ("'{name}' mixes CRLF and LF line endings; it was read as if every line ended in LF "
               "(a line break inside a quoted value is stored as LF).")


def _text_head(path: Path, compression: str | None, config: FunnelConfig, what: str, expected: str) -> bytes:
    """The first 64 KB of a text file; UserError when it is UTF-16 (a byte-order mark) or holds nothing."""
    head = _open_head(path, compression, what)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(
            f"{what} '{path}' is UTF-16 encoded, which funnelboard does not read: save it as UTF-8 "
            "(such as Excel's \"CSV UTF-8\")."
        )
    if not head.strip():
        raise UserError(f"{what} '{path}' is empty: expected {expected}.")
    return head


def _open_head(path: Path, compression: str | None, what: str) -> bytes:
    """The first 64 KB of a file (decompressed); UserError when even they cannot be read."""
    try:
        if compression == "gzip":
            with gzip.open(path, "rb") as fh:
                return fh.read(_HEAD_BYTES)
        with open(path, "rb") as fh:
            return fh.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(unreadable(path, compression, what, exc)) from None


def _csv_header(path: Path, head: bytes, delimiter: str, config: FunnelConfig, what: str):
    """The header's column names, whether data follows it, and the first data row (for unnamed columns)."""
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
    toml = json.dumps(sep)  # a TOML basic string: "\t" for a tab
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


def _jsonl_columns(path: Path, compression: str | None, scanned: Scan, config: FunnelConfig, con, what: str):
    """The columns of a JSON Lines file: its objects' keys in order of first use, the keys that name one
    column (lead_id, Lead_ID) together; and the lines holding two keys for one column (quarantined)."""
    if scanned.longest > JSONL_LINE_MAX:
        raise UserError(f"{what} '{path}' has a line of {scanned.longest:,} bytes (line {scanned.longest_line:,}): "
                        f"expected JSON Lines, one object of at most {JSONL_LINE_MAX >> 20} MB per line.")
    params = {"path": str(path), "compression": compression or "none", "line_limit": LINE_LIMIT}
    lines = f"select _line, _raw from ({lines_sql(scanned.longest)}) where {jsonl_problem(False)} is null"
    renames = _renames(config)
    columns = _group_keys(con, lines, params, renames)
    keys = [k for variants in columns.values() for k in variants]
    same = "lambda k: map($keys, $names)[k]" if len(keys) > len(columns) else "lambda k: k"
    params.update(keys=keys, names=[n for n, variants in columns.items() for _ in variants])
    duplicates = tuple(r[0] for r in con.execute(
        *bound(f"select _line from ({lines}) where len(list_distinct(list_transform(json_keys(_raw), {same}))) "
               "< len(json_keys(_raw)) order by _line", params)).fetchall())
    if duplicates:  # keys only those lines have make no column
        params["duplicate_lines"] = list(duplicates)
        columns = _group_keys(con, f"select * from ({lines}) where not list_contains($duplicate_lines, _line)", params, renames)
    return [variants[0] for variants in columns.values()], tuple(tuple(v) for v in columns.values()), duplicates


def _group_keys(con, lines: str, params: dict, renames: dict[str, str]) -> dict[str, list[str]]:
    """Warehouse column name -> the JSON keys that name it, in order of first use."""
    rows = con.execute(*bound(
        f"select k from (select unnest(json_keys(_raw)) as k, min(_line) as first_line from ({lines}) "
        "group by k) order by first_line, k", params)).fetchall()
    columns: dict[str, list[str]] = {}
    for (key,) in rows:
        columns.setdefault(warehouse_name(key, renames), []).append(key)
    return columns


def _parquet_columns(path: Path, con, what: str):
    try:
        rows = con.execute("describe select * from read_parquet($path)", {"path": str(path)}).fetchall()
        count = con.execute("select num_rows from parquet_file_metadata($path)", {"path": str(path)}).fetchall()[0][0]
    except Exception as exc:  # duckdb raises several types for a corrupt file
        raise UserError(f"{what} '{path}' is not a readable Parquet file: {duckdb_reason(exc)}.") from None
    return [r[0] for r in rows], bool(count)


def _renames(config: FunnelConfig) -> dict[str, str]:
    """[columns] as header text (lower case, trimmed) -> the column it names."""
    return {v.strip().lower(): k for k, v in config.columns.items()}


def warehouse_name(header: str, renames: dict[str, str]) -> str:
    """The warehouse name of a column as the file names it: its [columns] rename, else lower snake_case."""
    if header.startswith(UNNAMED):
        return header
    return renames.get(header.strip().lower()) or column_name(header)


def _map_columns(path: Path, header: list[str], role: str, config: FunnelConfig, what: str) -> tuple[str, ...]:
    """The warehouse names of a file's columns; UserError for an empty, reserved or repeated name or a missing one."""
    renames = _renames(config)
    names: list[str] = []
    for raw in header:
        name = warehouse_name(raw, renames)
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


def bound(sql: str, params: dict) -> tuple[str, dict]:
    """`sql` and the values of `params` it names as $parameters (DuckDB refuses values it does not use)."""
    used = set(re.findall(r"\$(\w+)", sql))
    return sql, {k: v for k, v in params.items() if k in used}


def lines_sql(longest: int = 0) -> str:
    """Every line of a text file as (_line, _raw), a blank one as NULL; $path and $compression are bound.

    `longest` is the longest line's length in bytes (scan.Scan.longest): a line longer than the
    reader's max_line_size would be skipped, and every later line numbered one too low.
    """
    max_line = max(LINE_LIMIT, int(longest)) + 1024
    return (
        "select ordinality as _line, line as _raw from read_csv($path, columns={'line': 'VARCHAR'}, "
        "auto_detect=false, header=false, delim=e'\\x1f', quote='', escape='', strict_mode=false, "
        f"compression=$compression, max_line_size={max_line}, ignore_errors=true) with ordinality"
    )


def source_sql(f: InputFile, rejects_table: str) -> tuple[str, dict]:
    """SELECT yielding (_ord, c0..cN[, _raw]) for a file; $-parameters bound in the returned dict."""
    params: dict = {"path": str(f.path)}
    cols = [f"c{i}" for i in range(len(f.names))]
    if f.fmt == "csv":
        params.update(f.read_params(), delim=f.delimiter, quote=f.quote, encoding=f.encoding,
                      rejects=rejects_table, rejects_scan=f"{rejects_table}_scan")
        struct = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
        sql = (
            f"select ordinality as _ord, {', '.join(cols)} from read_csv($path, columns={struct}, "
            "auto_detect=false, header=true, delim=$delim, quote=$quote, escape=$quote, encoding=$encoding, "
            "compression=$compression, strict_mode=true, "
            # An empty field must stay '' (not NULL): with NULLs DuckDB silently drops trailing
            # empty fields, so "a,b,c," would pass as three columns.
            "nullstr=e'\\x01', "
            "null_padding=false, ignore_errors=true, store_rejects=true, rejects_table=$rejects, "
            "rejects_scan=$rejects_scan) with ordinality"
        )
        return sql, params
    if f.fmt == "jsonl":
        params.update(jsonl_params(f))
        extracts = []
        for i, keys in enumerate(f.json_keys):
            values = []
            for j, key in enumerate(keys):
                params[f"k{i}_{j}"] = "/" + key.replace("~", "~0").replace("/", "~1")
                values.append(f"json_extract_string(_raw, $k{i}_{j})")
            extracts.append((values[0] if len(values) == 1 else f"coalesce({', '.join(values)})") + f" as c{i}")
        problem = jsonl_problem(bool(f.json_duplicate_lines))
        sql = f"select _line as _ord, {', '.join(extracts)}, _raw from ({lines_sql(f.longest_line)}) where {problem} is null"
        return sql, params
    selects = ", ".join(f"cast({ident(h)} as varchar) as c{i}" for i, h in enumerate(f.header))
    if f.fmt == "arrow":  # an adapter's records (etl/sources): `_line` is the source line
        raw = ", _raw" if f.has_raw else ""
        return f"select _line as _ord, {selects}{raw} from {ident(f.relation)}", {}
    sql = (
        f"select file_row_number + 1 as _ord, {selects} "
        "from read_parquet($path, file_row_number=true)"
    )
    return sql, params


def raw_sql(f: InputFile) -> tuple[str, dict]:
    """An expression over c0..cN giving a row's text as the file held it (for the quarantine)."""
    cols = [f"c{i}" for i in range(len(f.names))]
    if f.fmt == "csv":
        parts = [
            f"coalesce(case when strpos({c}, $raw_quote) > 0 or strpos({c}, $raw_delim) > 0 "
            f"or strpos({c}, chr(10)) > 0 or strpos({c}, chr(13)) > 0 "
            f"then $raw_quote || replace({c}, $raw_quote, $raw_quote || $raw_quote) || $raw_quote else {c} end, '')"
            for c in cols
        ]
        return " || $raw_delim || ".join(parts), {"raw_quote": f.quote, "raw_delim": f.delimiter}
    if f.fmt == "jsonl":
        return "_raw", {}
    params = {f"h{i}": h for i, h in enumerate(f.header)}
    pairs = ", ".join(f"$h{i}, c{i}" for i in range(len(cols)))
    if f.fmt == "arrow" and f.has_raw:
        return f"coalesce(_raw, json_object({pairs})::varchar)", params
    return f"json_object({pairs})::varchar", params


def jsonl_problem(duplicates: bool) -> str:
    """SQL naming the problem of a JSON Lines line (NULL: an object to read); binds $line_limit, and
    $duplicate_lines when the file has lines with two keys for one column (`duplicates`)."""
    duplicate = "when list_contains($duplicate_lines, _line) then 'duplicate_keys' " if duplicates else ""
    return (
        "(case when strlen(_raw) > $line_limit then 'line_too_long' "
        "when not coalesce(json_valid(_raw), false) then 'malformed_json' "
        f"when json_type(_raw) <> 'OBJECT' then 'not_a_json_object' {duplicate}end)"
    )


def jsonl_params(f: InputFile) -> dict:
    """The values jsonl_problem and lines_sql bind for one file."""
    params = {**f.read_params(), "line_limit": LINE_LIMIT}
    if f.json_duplicate_lines:
        params["duplicate_lines"] = list(f.json_duplicate_lines)
    return params


def jsonl_rejects_sql(f: InputFile) -> tuple[str, dict]:
    """Lines of a JSON Lines file that are not one JSON object to read, as (line, reason, detail, raw)."""
    detail = (
        "case problem when 'line_too_long' then 'the line is ' || strlen(_raw) || ' bytes long: at most ' "
        "|| $line_limit || ' are read' "
        "when 'malformed_json' then 'the line is not valid JSON' "
        "when 'not_a_json_object' then 'the line is valid JSON but not an object' "
        "else 'the object has two keys for one column (keys are matched without regard to case)' end"
    )
    sql = (
        f"select _line as line, problem as reason, {detail} as detail, left(_raw, {RAW_KEPT}) as raw "
        f"from (select *, {jsonl_problem(bool(f.json_duplicate_lines))} as problem from ({lines_sql(f.longest_line)})) "
        "where problem is not null"
    )
    return sql, jsonl_params(f)
