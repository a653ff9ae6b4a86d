"""Load canonical event (and lead) files into the raw tables, losing nothing.

Every row read ends up loaded, quarantined with a reason, or collapsed as an exact
duplicate of a row already loaded:  rows read = loaded + quarantined + duplicates.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from etl import raw_schema
from etl.readers import InputFile, inspect, jsonl_rejects_sql, raw_sql, source_sql
from funnelboard.config import FunnelConfig
from funnelboard.errors import UserError
from funnelboard.progress import Progress
from warehouse.build import build_models
from warehouse.publish import building, load_lock, open_read_only

# ISO-8601 date or date-time, optional fraction and offset; anything else is unparseable.
ISO_TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?: ?(?:[Zz]|[+-]\d{2}(?::?\d{2})?))?)?"
)

# Trimmed from every value: spaces, tabs, line breaks (plain trim() only strips spaces).
WHITESPACE = "e' \\t\\r\\n\\f\\x0b'"

REJECT_REASONS = {
    "TOO MANY COLUMNS": "wrong_column_count",
    "MISSING COLUMNS": "wrong_column_count",
    "UNQUOTED VALUE": "malformed_csv",
    "INVALID ENCODING": "invalid_encoding",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
}


@dataclass
class FileReport:
    """What happened to one input file."""

    path: Path
    role: str
    status: str  # loaded | skipped
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_replaced: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    first_entered_at: datetime | None = None
    last_entered_at: datetime | None = None
    note: str = ""

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate


@dataclass
class LoadReport:
    db: Path
    load_id: int | None
    files: list[FileReport]
    published: bool
    seconds: float


def load_files(
    db: Path,
    events: list[Path],
    config: FunnelConfig,
    *,
    leads: list[Path] = (),
    replace: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> LoadReport:
    """Check every file, then load the new ones into a fresh copy of the warehouse and publish it."""
    started = time.monotonic()
    progress = progress or Progress(enabled=False)
    db = Path(db)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    if not events and not leads:
        raise UserError("nothing to load: give at least one events file (or --leads FILE).")
    scratch = duckdb.connect()
    try:
        inputs = [inspect(p, "events", config, scratch) for p in events]
        inputs += [inspect(p, "leads", config, scratch) for p in leads]
    finally:
        scratch.close()

    with load_lock(db):
        already = _loaded_hashes(db)
        todo: list[InputFile] = []
        reports: list[FileReport] = []
        for f in inputs:
            earlier = already.get((f.role, f.sha256))
            if earlier and not replace:
                reports.append(FileReport(f.path, f.role, "skipped", note=f"already loaded in load {earlier[0]} on {earlier[1]:%Y-%m-%d %H:%M} UTC; use --replace to load it again"))
            else:
                todo.append(f)
        if not todo:
            return LoadReport(db, None, reports, False, time.monotonic() - started)

        with building(db) as con:
            raw_schema.ensure_schema(con)
            load_id = con.execute("select coalesce(max(load_id), 0) + 1 from load_ledger").fetchall()[0][0]
            _create_label_table(con, config)
            for f in todo:
                label = f"{f.role} {f.path.name}"
                progress.note(f"loading {label} ({f.size / 1e6:.1f} MB, {f.fmt})")
                replaced = _remove_earlier(con, f, load_id) if replace else 0
                report = _load_one(con, f, load_id, config, now, progress)
                report.rows_replaced = replaced
                if not report.balanced:  # a bug, never a user mistake: refuse to publish
                    raise RuntimeError(f"row accounting does not balance for {f.path}: {report}")
                reports.append(report)
            raw_schema.set_meta(con, "config", config.to_json())
            raw_schema.set_meta(con, "config_source", config.source)
            raw_schema.set_meta(con, "published_at", now.isoformat(timespec="seconds"))
            from funnelboard import __version__

            raw_schema.set_meta(con, "funnelboard_version", __version__)
            con.execute("drop table if exists _labels")
            build_models(con, config, progress)
            progress.note("publishing warehouse")
        return LoadReport(db, load_id, reports, True, time.monotonic() - started)


def _loaded_hashes(db: Path) -> dict[tuple[str, str], tuple[int, datetime]]:
    if not db.exists():
        return {}
    con = open_read_only(db)
    try:
        has_ledger = con.execute(
            "select count(*) from information_schema.tables where table_name = 'load_ledger'"
        ).fetchall()[0][0]
        if not has_ledger:
            return {}
        rows = con.execute(
            "select role, sha256, load_id, loaded_at from load_ledger where superseded_by is null"
        ).fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def _create_label_table(con: duckdb.DuckDBPyConnection, config: FunnelConfig) -> None:
    con.execute("create or replace temp table _labels (label_key varchar, stage varchar)")
    con.executemany("insert into _labels values (?, ?)", sorted(config.label_map().items()))


def _remove_earlier(con: duckdb.DuckDBPyConnection, f: InputFile, load_id: int) -> int:
    """For --replace: drop the rows of earlier loads of this file (same path or same content)."""
    ids = [
        r[0]
        for r in con.execute(
            "select file_id from load_ledger where role = $role and superseded_by is null "
            "and (source_file = $path or sha256 = $sha)",
            {"role": f.role, "path": str(f.path), "sha": f.sha256},
        ).fetchall()
    ]
    if not ids:
        return 0
    table = "raw_leads" if f.role == "leads" else "raw_events"
    removed = con.execute(f"select count(*) from {table} where list_contains($ids, file_id)", {"ids": ids}).fetchall()[0][0]
    for t in (table, "quarantine"):
        con.execute(f"delete from {t} where list_contains($ids, file_id)", {"ids": ids})
    con.execute(
        "update load_ledger set superseded_by = $load where list_contains($ids, file_id)",
        {"load": load_id, "ids": ids},
    )
    return removed


def _timestamp_sql(text: str, config: FunnelConfig) -> str:
    """SQL turning trimmed ISO text into a naive UTC timestamp (NULL when it is not a real instant)."""
    naive = f"try_cast({text} as timestamp)"
    if config.timezone != "UTC":
        naive = f"timezone('UTC', timezone($tz, {naive}))"
    return (
        f"case when length({text}) > 10 and regexp_matches(substr({text}, 11), '[Zz+-]') "
        f"then timezone('UTC', try_cast({text} as timestamptz)) else {naive} end"
    )


def _load_one(
    con: duckdb.DuckDBPyConnection,
    f: InputFile,
    load_id: int,
    config: FunnelConfig,
    now: datetime,
    progress: Progress,
) -> FileReport:
    file_id = con.execute("select coalesce(max(file_id), 0) + 1 from load_ledger").fetchall()[0][0]
    events = f.role == "events"
    table = "raw_events" if events else "raw_leads"
    attrs = f.attributes
    raw_schema.add_attribute_columns(con, table, attrs)
    rejects = f"_rejects_{file_id}"
    src, params = source_sql(f, rejects)
    raw_expr, raw_params = raw_sql(f)
    params.update(raw_params)
    params.update(
        {
            "iso": ISO_TIMESTAMP,
            "min_ts": datetime.fromisoformat(config.min_date),
            "max_ts": now + timedelta(days=config.max_future_days),
        }
    )
    if config.timezone != "UTC":
        params["tz"] = config.timezone

    def col(name: str) -> str:
        c = f.column(name)
        return f"nullif(trim({c}, {WHITESPACE}), '')" if c else "null::varchar"

    ts_name = "entered_at" if events else "created_at"
    ts_text = col(ts_name)
    attr_select = "".join(f', {col(a)} as "{a}"' for a in attrs)
    if events:
        problem = """case
            when lead_id is null then 'missing_lead_id'
            when ts_text is null then 'missing_timestamp'
            when not regexp_full_match(ts_text, $iso) then 'unparseable_timestamp'
            when ts is null then 'impossible_timestamp'
            when ts < $min_ts then 'timestamp_too_old'
            when ts > $max_ts then 'timestamp_in_future'
            when stage_label is null then 'missing_stage'
            when stage is null then 'unknown_stage'
        end"""
        stage_cols = f", {col('stage')} as stage_label"
        label_join = "left join _labels lm on lm.label_key = lower(regexp_replace(p.stage_label, '\\s+', ' ', 'g'))"
        stage_out = ", lm.stage as stage"
        reason_sel = f", {col('reason')} as reason"
    else:
        problem = """case
            when lead_id is null then 'missing_lead_id'
            when ts_text is not null and not regexp_full_match(ts_text, $iso) then 'unparseable_timestamp'
            when ts_text is not null and ts is null then 'impossible_timestamp'
            when ts < $min_ts then 'timestamp_too_old'
            when ts > $max_ts then 'timestamp_in_future'
        end"""
        stage_cols = label_join = stage_out = reason_sel = ""
    stage_details = (
        "when 'missing_stage' then 'stage is empty' "
        "when 'unknown_stage' then 'stage label \"' || stage_label || '\" is not in the label map'"
        if events
        else ""
    )
    detail = f"""case problem
            when 'missing_lead_id' then 'lead_id is empty'
            when 'missing_timestamp' then '{ts_name} is empty'
            when 'unparseable_timestamp' then '{ts_name} "' || ts_text || '" is not an ISO-8601 date or timestamp'
            when 'impossible_timestamp' then '{ts_name} "' || ts_text || '" is not a real date or time'
            when 'timestamp_too_old' then '{ts_name} ' || ts_text || ' is before ' || strftime($min_ts, '%Y-%m-%d')
            when 'timestamp_in_future' then '{ts_name} ' || ts_text || ' is after the load time'
            {stage_details}
        end"""
    value_cols = (["lead_id", "stage", "stage_label", "ts", "reason"] if events else ["lead_id", "ts"]) + list(attrs)
    target_cols = (["lead_id", "stage", "stage_label", "entered_at", "reason"] if events else ["lead_id", "created_at"]) + list(attrs)
    quoted_values = ", ".join(f'"{c}"' for c in value_cols)
    # CSV rows keep file order in the table DuckDB builds from them, so rowid + 1 is the
    # row's ordinal; numbering them during the read would cost as much again as the read.
    ordinal = "_ord, " if f.fmt != "csv" else ""
    incoming = f"""
        create or replace table _incoming as
        with src as ({src}),
        trimmed as (
            select *, {col('lead_id')} as lead_id{stage_cols},
                   {ts_text} as ts_text{reason_sel}{attr_select}
            from src
        ),
        parsed as (
            select p.*{stage_out}, {_timestamp_sql('p.ts_text', config)} as ts
            from trimmed p {label_join}
        ),
        checked as (select *, {problem} as problem from parsed)
        select {ordinal}{quoted_values}, problem,
               case when problem is null then hash({quoted_values}) end as _h,
               case when problem is not null then {detail} end as detail,
               case when problem is not null then {raw_expr} end as _raw
        from checked
    """
    progress.execute(con, f"reading and checking {f.path.name}", incoming, params)

    ord_expr = "(i.rowid + 1)" if f.fmt == "csv" else "i._ord"
    line_expr = ord_expr
    lines_from = "_incoming i"
    if f.fmt == "csv":
        line_expr = _csv_line_fixup(con, rejects, ord_expr)
        if con.execute("select exists (select 1 from _reject_offsets)").fetchall()[0][0]:
            lines_from += f" asof left join _reject_offsets r on {ord_expr} > r.valid_before"
        else:
            line_expr = f"{ord_expr} + 1"
    elif f.fmt == "jsonl":
        con.execute(
            f"create or replace temp table {rejects}_j as {jsonl_rejects_sql()}",
            {"path": str(f.path), "compression": f.compression or "none"},
        )

    con.execute(
        f"""insert into quarantine (file_id, line, reason, detail, raw)
            select $file_id, {line_expr}, problem, detail, _raw from {lines_from} where problem is not null""",
        {"file_id": file_id},
    )
    if f.fmt == "csv":
        con.execute(
            f"""insert into quarantine (file_id, line, reason, detail, raw)
                select $file_id, line,
                       case error_type {''.join(f" when '{k}' then '{v}'" for k, v in REJECT_REASONS.items())} else 'malformed_csv' end,
                       case when error_type = 'UNQUOTED VALUE' then
                              'unterminated quote: the record runs over ' || n || ' line(s), from line ' || line || ', and the rows inside it were not loaded'
                            else error_message end,
                       csv_line
                from _reject_lines""",
            {"file_id": file_id},
        )
    elif f.fmt == "jsonl":
        con.execute(
            f"insert into quarantine (file_id, line, reason, detail, raw) select $file_id, line, reason, detail, raw from {rejects}_j",
            {"file_id": file_id},
        )

    progress.execute(
        con,
        f"finding exact duplicates in {f.path.name}",
        _duplicates_sql(con, table, value_cols, target_cols),
    )
    before = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    has_dups = con.execute("select exists (select 1 from _dups)").fetchall()[0][0]
    dup_filter = " and i.rowid not in (select rid from _dups)" if has_dups else ""
    progress.execute(
        con,
        f"storing {f.path.name}",
        f"""insert into {table} (file_id, source_line, {', '.join(f'"{c}"' for c in target_cols)})
            select $file_id, {line_expr}, {', '.join(f'i."{c}"' for c in value_cols)}
            from {lines_from}
            where i.problem is null{dup_filter}""",
        {"file_id": file_id},
    )
    after = con.execute(f"select count(*) from {table}").fetchall()[0][0]

    stats = con.execute(
        "select count(*), count(*) filter (where problem is null), min(ts) filter (where problem is null), "
        "max(ts) filter (where problem is null) from _incoming"
    ).fetchall()[0]
    parsed_rows, valid_rows, first_ts, last_ts = stats
    reasons = dict(
        con.execute(
            "select reason, count(*) from quarantine where file_id = $f group by reason order by 2 desc, 1",
            {"f": file_id},
        ).fetchall()
    )
    unknown = {}
    if events:
        unknown = dict(
            con.execute(
                "select stage_label, count(*) from _incoming where problem = 'unknown_stage' "
                "group by stage_label order by 2 desc, 1"
            ).fetchall()
        )
    quarantined = sum(reasons.values())
    report = FileReport(
        path=f.path,
        role=f.role,
        status="loaded",
        rows_read=parsed_rows + quarantined - (parsed_rows - valid_rows),
        rows_loaded=after - before,
        rows_quarantined=quarantined,
        rows_duplicate=valid_rows - (after - before),
        reasons=reasons,
        unknown_labels=unknown,
        first_entered_at=first_ts,
        last_entered_at=last_ts,
    )
    con.execute(
        """insert into load_ledger values ($file_id, $load_id, $role, $path, $fmt, $sha, $size, $loaded_at,
           $read, $loaded, $quarantined, $dup, $first, $last, $unknown, null, $fp)""",
        {
            "file_id": file_id,
            "load_id": load_id,
            "role": f.role,
            "path": str(f.path),
            "fmt": f.fmt + (f"+{f.compression}" if f.compression else ""),
            "sha": f.sha256,
            "size": f.size,
            "loaded_at": now,
            "read": report.rows_read,
            "loaded": report.rows_loaded,
            "quarantined": report.rows_quarantined,
            "dup": report.rows_duplicate,
            "first": first_ts,
            "last": last_ts,
            "unknown": json.dumps(unknown),
            "fp": config.fingerprint(),
        },
    )
    for t in ("_incoming", "_dups", "_reject_lines", "_reject_offsets", rejects, f"{rejects}_scan", f"{rejects}_j"):
        con.execute(f"drop table if exists {t}")
    return report


def _duplicates_sql(con: duckdb.DuckDBPyConnection, table: str, value_cols: list[str], target_cols: list[str]) -> str:
    """SQL creating `_dups(rid)`: the valid incoming rows that repeat a kept row exactly.

    A 64-bit hash finds the candidates cheaply; every candidate is then compared on all
    value columns, so a hash collision can never drop a row. Within the file the first
    occurrence is kept; across files, a row equal to one already stored is dropped (an
    attribute the other side lacks compares as NULL).
    """
    cols = ", ".join(f'"{c}"' for c in value_cols)
    within = f"""
        select rid from (
            select rowid as rid, row_number() over (partition by {cols} order by rowid) as rn
            from _incoming
            where problem is null
              and _h in (select _h from _incoming where problem is null group by _h having count(*) > 1)
        ) where rn > 1"""
    existing = [c for c in raw_schema.table_columns(con, table) if c not in ("file_id", "source_line")]
    has_rows = con.execute(f"select exists (select 1 from {table})").fetchall()[0][0]
    if not has_rows:
        return f"create or replace temp table _dups as {within}"
    name = dict(zip(target_cols, value_cols))
    match = " and ".join(
        f'r."{c}" = i."{name[c]}"' if c in ("lead_id", "entered_at", "created_at") and c in name
        else (f'r."{c}" is not distinct from i."{name[c]}"' if c in name else f'r."{c}" is null')
        for c in existing
    )
    across = f"""
        select i.rowid as rid from _incoming i
        where i.problem is null and exists (select 1 from {table} r where {match})"""
    return f"create or replace temp table _dups as {within} union {across}"


def _csv_line_fixup(con: duckdb.DuckDBPyConnection, rejects: str, ord_expr: str) -> str:
    """Build the tables that turn a CSV row's ordinal into its line; return the line expression.

    DuckDB numbers the rows it accepts (1, 2, ...) and reports the line of each row it
    rejects. A row's line is its ordinal + 1 (the header) + the lines taken by rejected
    records before it; exact unless quoted values or blank lines span extra lines.
    """
    con.execute(
        f"""create or replace temp table _reject_lines as
            select line, error_type, error_message, csv_line,
                   length(ltrim(csv_line, chr(10))) - length(replace(ltrim(csv_line, chr(10)), chr(10), '')) + 1 as n
            from (select *, row_number() over (partition by line order by column_idx) as k from {rejects}) where k = 1"""
    )
    con.execute(
        """create or replace temp table _reject_offsets as
           select valid_before, max(cum_n) as cum_n from (
               select line - 2 - coalesce(sum(n) over (order by line rows between unbounded preceding and 1 preceding), 0) as valid_before,
                      sum(n) over (order by line) as cum_n
               from _reject_lines
           ) group by valid_before"""
    )
    return f"{ord_expr} + 1 + coalesce(r.cum_n, 0)"
