"""Read a user's own export and draft the funnel.toml for it (`funnelboard init --from FILE...`).

The files are read the way `funnelboard load` reads them: canonical files through readers.inspect
and the pinned dialect (the delimiter taken from the header line, and said so), CRM exports through
their adapter (`wide` after its mapping is drafted from the columns). What comes out is a `Draft`
(funnelboard.core.draft_toml): labels in journey order, guessed exits, the columns by kind.

Ordering. Each label is mapped to a stage name; each lead's events are ordered by time (then file
and line) and each stage is placed at the lead's first entry of it. For every pair of stages, the
leads that entered both vote for the one they entered first; a stage's score is the share of the
stages it shares leads with that it comes before (a tied vote counts a half). Stages are ordered by
score, then by the median of their relative position in the journeys, then by where they first
appear in the file. Skipped stages, loops and journeys of different lengths do not move a stage;
only a majority of the leads concerned doing it the other way round does.
"""

from __future__ import annotations

import csv
import glob
import gzip
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import combinations
from pathlib import Path

import duckdb
import pyarrow as pa

from funnelboard.core.config import FunnelConfig, default_key_rate, load_config, normalise_label
from funnelboard.core.draft_toml import Draft, DraftColumn, DraftLabel, DraftTable, Entry, comment_text, plural
from funnelboard.core.errors import UserError
from funnelboard.etl.readers import UNNAMED, column_name, detect_format, inspect, lines_sql, source_sql
from funnelboard.etl.sources.base import ISO, ISO_TIMESTAMP, Translation, is_attribute_name, read_table
from funnelboard.etl.sources.registry import ADAPTERS, get_adapter

DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
SEGMENT_MAX = 50  # a text column with more distinct values than this is not proposed as a segment
ROLES = ("lead_id", "stage", "entered_at")
OUTCOME_NAMES = ("lost", "disqualified", "nurture", "rerouted")
# Exit guesses, tried in this order on a label's words; the outcome takes the canonical name, so
# "lost", "disqualified" and "rerouted" end a journey as the models expect.
EXITS = (
    ("lost", re.compile(r"\b(lost|dead|churn\w*|cancel\w*|declined|no decision|not interested|abandon\w*)\b")),
    ("disqualified", re.compile(r"\b(disqualif\w*|unqualif\w*|not qualified|non qualified|dq|junk|spam|invalid|duplicate"
                                r"|bad fit|no fit|not a fit|not converted|rejected|unreachable|bad data)\b")),
    ("nurture", re.compile(r"\b(nurtur\w*|recycl\w*|bad timing|not now|on hold|parked|dormant)\b")),
    ("rerouted", re.compile(r"\b(re ?routed|transferred|referred out)\b")),
)
WIN = re.compile(r"\b(won|win|customer|signed)\b")
SYNONYMS = {
    "marketing qualified lead": "mql", "marketing qualified": "mql", "sales qualified lead": "sql",
    "sales qualified": "sql", "sales accepted lead": "sal", "sales accepted": "sal",
    "product qualified lead": "pql", "closed won": "won",
}
LEAD_NAMES = ("lead_id", "leadid", "lead", "id", "record_id", "deal_id", "dealid", "opportunity_id", "opportunityid",
              "contact_id", "contactid", "hs_object_id", "object_id", "mql_id")
STAGE_NAMES = ("stage", "stage_name", "stagename", "status", "lead_status", "deal_stage", "dealstage", "lifecycle_stage",
               "lifecyclestage", "to_stage", "new_stage", "new_value", "funnel_stage", "pipeline_stage", "phase", "step")
TIME_NAMES = ("entered_at", "entered", "entered_on", "entered_date", "date_entered", "changed_at", "changed_on",
              "changed_date", "change_date", "stage_date", "stage_changed_at", "moved_at", "event_time", "event_date",
              "timestamp", "occurred_at", "date", "time", "datetime", "created_at", "created_date", "createddate")
# Dates in other forms than ISO, for telling date columns (DuckDB strptime, which the wide adapter's
# Python strptime agrees with on these).
OTHER_DATES = ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S",
               "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%m/%d/%Y %I:%M %p", "%d/%m/%y", "%m/%d/%y"]
# What a value must look like before strptime is tried on it (strptime with a list of formats is slow).
_DATEISH = r"[0-9]{1,4}[./-][0-9]{1,2}[./-][0-9]{1,4}.*"
# date_format candidates for a wide export, in order of preference when several read the same dates.
WIDE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", *OTHER_DATES)
NOT_SEGMENT = re.compile(r"(^|_)(id|email|e_mail|phone|mobile|url|website|description|note|notes|comment|comments"
                         r"|address|street|title|subject|name_full|first_name|last_name)($|_)")
SCORE = re.compile(r"(score|rating|grade)")
AMOUNT = re.compile(r"(amount|value|revenue|price|deal_size|acv|arr|mrr|budget|contract)")
# A date column of a wide export that is a plan or bookkeeping, not the day a stage was entered.
NOT_A_STAGE = re.compile(r"\b(expected|due|planned|forecast|next|birth|birthday|updated|modified|last|edited)\b")
_DATE_WORDS = {"date", "time", "timestamp", "datetime", "dt", "at", "on", "entered", "reached", "of", "the"}
_GENERATED = re.compile(r"^[a-z_][a-z0-9_]*$")
# An adapter run for a draft sees a funnel of this first stage and the win, and no label map, so
# what it emits is the export's own labels; events it puts in "your first stage" (a Pipedrive
# deal's creation) carry this name, and are the drafted funnel's first stage when loaded.
FIRST_STAGE = "draft_first_stage"


def _sql_name(name: str) -> str:
    """A relation or column name this module generated (never text from a file), checked to be one."""
    if not _GENERATED.match(name):
        raise RuntimeError(f"not a generated SQL name: {name!r}")
    return name


def words(text: str) -> str:
    """A label's words: accents dropped, lower case, anything but letters and digits as one space."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", plain.lower()).strip()


def exit_kind(label: str) -> str | None:
    """The outcome a label looks like ('lost', 'disqualified', 'nurture', 'rerouted'), or None."""
    text = words(label)
    return next((kind for kind, pattern in EXITS if pattern.search(text)), None)


def stage_name(label: str) -> str:
    """A canonical stage name made from a label: a known acronym, else its words in lower snake_case."""
    text = words(label)
    return SYNONYMS.get(text) or column_name(text) or "stage"


def order_names(names: list[str], before: dict[tuple[str, str], int], median: dict[str, float] | None = None) -> list[str]:
    """`names` in journey order. before[(a, b)] = leads that entered a first of those that entered both; a name's score
    is the share of the names it shares leads with that it comes before (a tie counts a half); ties by median, then as given."""
    median = median or {}
    won = dict.fromkeys(names, 0.0)
    met = dict.fromkeys(names, 0)
    for a, b in combinations(names, 2):
        ab, ba = before.get((a, b), 0), before.get((b, a), 0)
        if not ab and not ba:
            continue
        met[a] += 1
        met[b] += 1
        if ab == ba:
            won[a] += 0.5
            won[b] += 0.5
        else:
            won[a if ab > ba else b] += 1
    index = {n: i for i, n in enumerate(names)}
    score = {n: won[n] / met[n] if met[n] else 0.5 for n in names}
    return sorted(names, key=lambda n: (-score[n], median.get(n, 0.5), index[n]))


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attr:
    """An attribute column to describe: where its values are (a generated relation and column)."""

    header: str
    name: str
    relation: str
    column: str
    lead: str | None
    profile: _Profile | None = None  # when reading already profiled it


@dataclass
class _Reading:
    """What reading the exports gave: `draft_events` filled, columns to describe, what the draft writes of them."""

    attributes: list[_Attr] = field(default_factory=list)
    roles: list[DraftColumn] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    wide: tuple[DraftTable, ...] = ()
    reasons: tuple[tuple[str, int], ...] = ()
    notes: list[str] = field(default_factory=list)


def _first_line(path: Path) -> str:
    if not path.is_file():
        return ""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            head = fh.read(1 << 16)
    except (OSError, EOFError) as exc:
        raise UserError(f"export file '{path}' cannot be read: {exc}.") from None
    return head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


def detect_delimiter(paths: list[Path]) -> tuple[str | None, str]:
    """The delimiter of the .csv files' header lines (the commonest of , ; and tab) and a note saying so;
    None when no file is a .csv (a .tsv is always read as tab-separated)."""
    found: dict[str, str] = {}
    for p in paths:
        if not p.name.lower().endswith((".csv", ".csv.gz")):
            continue
        line = _first_line(p)
        counts = {d: _count_outside_quotes(line, d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        found[p.name] = best if counts[best] else ","
    if not found:
        return None, ""
    if len(set(found.values())) > 1:
        shown = ", ".join(f"'{n}' {DELIMITERS[d]}" for n, d in found.items())
        raise UserError(f"the files use different delimiters ({shown}): draft each kind with its own `funnelboard init --from`.")
    d = next(iter(found.values()))
    return d, f"{DELIMITERS[d]}, counted in the header line of {', '.join(found)}"


def _header(path: Path, config: FunnelConfig, con: duckdb.DuckDBPyConnection) -> list[str]:
    """The column names of a file, or [] when they cannot be read (readers.inspect then says why)."""
    fmt, _ = detect_format(path)
    if not path.is_file():
        return []
    if fmt == "csv":
        delimiter = "\t" if ".tsv" in path.name.lower() else config.delimiter
        try:
            return [h.strip() for h in next(csv.reader([_first_line(path)], delimiter=delimiter, quotechar=config.quote)) if h.strip()]
        except (csv.Error, StopIteration):
            return []
    try:
        if fmt == "parquet":
            return [r[0] for r in con.execute("describe select * from read_parquet($path)", {"path": str(path)}).fetchall()]
        sql = (f"select k from (select unnest(json_keys(_raw)) as k, min(_line) as first from ({lines_sql()}) "
               "where case when json_valid(_raw) then json_type(_raw) = 'OBJECT' else false end group by k) order by first, k")
        compression = "gzip" if path.name.lower().endswith(".gz") else "none"
        return [r[0] for r in con.execute(sql, {"path": str(path), "compression": compression}).fetchall()]
    except duckdb.Error:
        return []


def _probe_renames(header: list[str]) -> dict[str, str]:
    """Stand-in [columns] renames that let readers.inspect read a file before its roles are known."""
    have = {column_name(h) for h in header}
    spare = [h for h in header if column_name(h) not in ROLES]
    return {role: spare.pop(0) for role in ROLES if role not in have and spare}


def _materialise(con: duckdb.DuckDBPyConnection, f, table: str) -> int:
    """Copy one inspected file into a temporary table (c0..cN as text); the number of rows the parser rejected."""
    sql, params = source_sql(f, f"{table}_rejects")
    try:
        con.execute(f"create temp table {_sql_name(table)} as select * from ({sql})", params)
    except duckdb.Error as exc:
        raise UserError(f"export file '{f.path}' cannot be read: {str(exc).splitlines()[0]}") from None
    if f.fmt != "csv":
        return 0
    return con.execute(f"select count(*) from {_sql_name(table)}_rejects").fetchall()[0][0]


def _read_canonical(paths: list[Path], config: FunnelConfig, con: duckdb.DuckDBPyConnection) -> _Reading:
    """Read canonical files into `draft_rows` (file, ord, g0..) and `draft_events`; choose the role columns."""
    reading = _Reading()
    keys: dict[str, str] = {}  # column key (lower snake) -> header as first written
    per_file: list[dict[str, str]] = []
    for i, path in enumerate(paths):
        header = _header(path, config, con)
        if 0 < len(header) < 3:
            raise UserError(f"events file '{path}' has {len(header)} column(s) ({', '.join(header)}): expected at least the "
                            "lead id, the stage and when it was entered.")
        f = inspect(path, "events", replace(config, columns=_probe_renames(header)), con)
        rejected = _materialise(con, f, f"draft_file_{i}")
        if rejected:
            reading.notes.append(f"{rejected:,} rows of '{path.name}' cannot be read as CSV (wrong column count, a broken "
                                 "quote): the load quarantines them.")
        cols = {}
        for j, h in enumerate(f.header):
            if not f.names[j].startswith(UNNAMED):
                keys.setdefault(column_name(h), h)
                cols[column_name(h)] = f"c{j}"
        per_file.append(cols)
    index = {k: f"g{n}" for n, k in enumerate(keys)}
    selects = []
    for i, cols in enumerate(per_file):
        values = ", ".join(f"{cols[k]} as {g}" if k in cols else f"null::varchar as {g}" for k, g in index.items())
        selects.append(f"select {i} as file, _ord as ord, {values} from draft_file_{i}")
    con.execute("create temp table draft_rows as " + " union all ".join(selects))
    profiles = {k: _profile(con, "draft_rows", index[k]) for k in keys}
    roles = _roles(keys, profiles)
    reading.renames = {r: keys[k] for r, k in roles.items() if k != r}
    final = replace(config, columns=reading.renames)
    attributes: set[str] = set()
    for i, (path, cols) in enumerate(zip(paths, per_file)):
        missing = [keys[k] for k in roles.values() if k not in cols]
        if missing:
            raise UserError(f"events file '{path}' has no '{missing[0]}' column, which '{paths[0].name}' has: "
                            "draft files with the same columns together.")
        attributes.update(inspect(path, "events", final, con).attributes)
    con.execute(f"create temp table draft_events as select file, ord, {index[roles['lead_id']]} as lead_id, "
                f"{index[roles['stage']]} as label, {index[roles['entered_at']]} as entered from draft_rows")
    lead = index[roles["lead_id"]]
    chosen = set(roles.values())
    reading.attributes = [_Attr(keys[k], k, "draft_rows", index[k], lead, profiles[k]) for k in keys
                          if k not in chosen and k in attributes]
    reading.roles = [DraftColumn(keys[k], role, role, profiles[k].distinct, profiles[k].filled, (), _range(profiles[k]))
                     for role, k in roles.items()]
    if "reason" in roles:
        reading.reasons = tuple(_top(con, "draft_rows", index[roles["reason"]], lead, 5)[1])
    reading.notes += _timestamp_notes(con)
    return reading


def _pick(keys: dict[str, str], names: tuple[str, ...], taken: set[str], fallback=lambda k: False) -> str | None:
    """The first free key named exactly as one of `names` (in that order), else the first free key `fallback` accepts."""
    free = [k for k in keys if k not in taken]
    exact = [n for n in names if n in free]
    if exact:
        return exact[0]
    return next((k for k in free if fallback(k)), None)


def _id_like(key: str) -> bool:
    return key == "id" or key.endswith("_id") or key.startswith("id_")


def _roles(keys: dict[str, str], profiles: dict[str, _Profile]) -> dict[str, str]:
    """Which column holds the lead id, the stage, the time it was entered (and the reason): column keys by role."""
    found = ", ".join(keys.values())
    lead = _pick(keys, LEAD_NAMES, set(), _id_like)
    if lead is None:
        raise UserError(f"cannot tell which column holds the lead id (a name such as lead_id, id or deal_id); found {found}.")
    stage = _pick(keys, STAGE_NAMES, {lead}, lambda k: any(w in k for w in ("stage", "status", "phase")))
    if stage is None:
        raise UserError(f"cannot tell which column holds the stage labels (a name with stage or status); found {found}.")
    taken = {lead, stage}
    dates = {k: keys[k] for k in keys if k not in taken and profiles[k].kind == "date"}
    at = _pick(dates, TIME_NAMES, taken, lambda k: any(w in k for w in ("enter", "chang", "moved", "event", "stage")))
    at = at or next(iter(dates), None) or _pick(keys, TIME_NAMES, taken, lambda k: "date" in k or "time" in k or k.endswith("_at"))
    if at is None:
        raise UserError(f"cannot tell which column holds when each stage was entered (a column of dates); found {found}.")
    roles = {"lead_id": lead, "stage": stage, "entered_at": at}
    reason = _pick(keys, ("reason",), {lead, stage, at}, lambda k: "reason" in k)
    if reason:
        roles["reason"] = reason
    return roles


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> dict[str, str]:
    """Register an adapter's table under `name` with generated column names (g0..) and an `ord`; name -> g."""
    generated = {c: f"g{i}" for i, c in enumerate(table.column_names)}
    renamed = table.rename_columns(list(generated.values())).append_column("ord", pa.array(range(table.num_rows), pa.int64()))
    con.register(_sql_name(name), renamed)
    return generated


def _events_from(con: duckdb.DuckDBPyConnection, events: pa.Table, paths: list[Path]) -> dict[str, str]:
    """Fill `draft_events` from an adapter's events table; the generated name of each of its columns."""
    g = _register(con, "draft_adapter_events", events)
    files = {str(p): i for i, p in enumerate(paths)}
    con.register("draft_files", pa.table({"f": list(files), "n": list(files.values())}))
    con.execute(f"create temp table draft_events as select coalesce(n, 0) as file, ord, {g['lead_id']} as lead_id, "
                f"{g['stage']} as label, {g['entered_at']} as entered from draft_adapter_events "
                f"left join draft_files on f = {g['_file']}")
    return g


def _read_adapter(source: str, paths: list[Path], config: FunnelConfig, con: duckdb.DuckDBPyConnection) -> _Reading:
    """Run the adapter as `load --source` would (no [source] options) and read what it made."""
    for p in paths:
        if not p.is_file():
            raise UserError(f"export file '{p}' {'is not a file' if p.exists() else 'does not exist'}.")
    neutral = replace(config, stages=(FIRST_STAGE, "won"), outcomes=(), labels={})
    t = get_adapter(source)(paths, neutral, {})
    reading = _adapter_notes(t, source)
    skip = {"lead_id", "stage", "entered_at", "reason", "created_at", "_file", "_line", "_raw"}
    g = _events_from(con, t.events, paths)
    leads: dict[str, str] = {}
    if t.leads is not None and t.leads.num_rows:
        leads = _register(con, "draft_adapter_leads", t.leads)
        reading.attributes = [_Attr(c, c, "draft_adapter_leads", leads[c], leads["lead_id"]) for c in leads if c not in skip]
    reading.attributes += [_Attr(c, c, "draft_adapter_events", g[c], g["lead_id"]) for c in g if c not in skip and c not in leads]
    if "reason" in g:
        reading.reasons = tuple(_top(con, "draft_adapter_events", g["reason"], g["lead_id"], 5)[1])
    first = con.execute("select count(*) from draft_events where label = $s", {"s": FIRST_STAGE}).fetchall()[0][0]
    if first:
        con.execute("delete from draft_events where label = $s", {"s": FIRST_STAGE})
        reading.notes.append(f"the {source} adapter puts {plural(first, 'event')} (such as a deal's creation) in your first "
                             "funnel stage, whichever it is: they are no label to map; [source.pipedrive] created_stage names "
                             "another stage.")
    reading.notes += _timestamp_notes(con)
    return reading


def _adapter_notes(t: Translation, source: str) -> _Reading:
    reading = _Reading()
    rejected = Counter(r.reason for r in t.rejected)
    if rejected:
        shown = ", ".join(f"{k} {v:,}" for k, v in rejected.most_common())
        reading.notes.append(f"the {source} adapter could not make an event of some rows ({shown}): the load quarantines them.")
    reading.notes += list(dict.fromkeys(t.notes))
    return reading


# -- wide exports ----------------------------------------------------------------------------------


def _read_wide(paths: list[Path], config: FunnelConfig, con: duckdb.DuckDBPyConnection) -> _Reading:
    """Draft `[source.wide]` from the columns of each file, then run the wide adapter with it."""
    reading = _Reading()
    specs: list[tuple[DraftTable, dict]] = []
    names = _unique([column_name(p.name.split(".")[0]) or "table" for p in paths]) if len(paths) > 1 else [None]
    for i, path in enumerate(paths):
        table = read_table(path, config, Translation(), what="export file")
        relation = f"draft_wide_{i}"
        cols = {h: f"g{j}" for j, h in enumerate(table.header)}
        con.register(relation, pa.table({g: [row[h] for _, row, _ in table.rows] for h, g in cols.items()}))
        profiles = {h: _profile(con, relation, g) for h, g in cols.items()}
        spec, options = _wide_table(path, table.header, table.rows, profiles, names[i])
        specs.append((spec, options))
        reading.attributes += [_Attr(c, name, relation, cols[c], cols[options["id"]], profiles[c])
                               for name, c in options.get("attributes", {}).items()]
    reading.wide = tuple(s for s, _ in specs)
    options = specs[0][1] if len(specs) == 1 else {"tables": [o for _, o in specs]}
    t = get_adapter("wide")(paths, replace(config, sources={"wide": options}), options)
    extra = _adapter_notes(t, "wide")
    reading.notes += extra.notes
    _events_from(con, t.events, paths)
    reading.notes += _timestamp_notes(con)
    return reading


def _wide_table(path: Path, header: tuple[str, ...], rows: list, profiles: dict[str, _Profile],
                name: str | None) -> tuple[DraftTable, dict]:
    """One file's `[source.wide]` table: id, stage date columns, date_format, reasons, attributes."""
    id_col = _wide_id(path, header, profiles, len(rows))
    dated = [h for h in header if h != id_col and _is_date(h, profiles[h])]
    stage_cols = [h for h in dated if not NOT_A_STAGE.search(words(h))]
    if not stage_cols:
        raise UserError(f"export file '{path}' has no column of dates to make a stage of: expected one date column "
                        f"per stage; found {', '.join(header)}.")
    labels = _unique([_wide_label(h) for h in stage_cols])
    stages = dict(zip(labels, stage_cols))
    formats, format_note = date_formats([row[h] for _, row, _ in rows for h in stage_cols])
    reasons = _wide_reasons(header, stages)
    used = {id_col, *stage_cols, *reasons.values()}
    attributes = _unique_attrs([h for h in header if h not in used and profiles[h].kind != "empty"])
    options: dict = {"id": id_col, "stages": stages}
    entries = [Entry("id", id_col, f"CHECK: the lead id column ({profiles[id_col].distinct:,} values in {len(rows):,} rows)")]
    if formats:
        options["date_format"] = list(formats) if len(formats) > 1 else formats[0]
        entries.append(Entry("date_format", options["date_format"], f"CHECK: {format_note}"))
    if name:
        options = {"name": name, "match": glob.escape(path.name), **options}
    tables = [("stages", tuple(Entry(lab, col, f"CHECK: a stage; {profiles[col].filled:,} dates") for lab, col in stages.items()))]
    if reasons:
        options["reasons"] = reasons
        tables.append(("reasons", tuple(Entry(s, c, "CHECK: the reason of this exit") for s, c in reasons.items())))
    if attributes:
        options["attributes"] = attributes
        tables.append(("attributes", tuple(Entry(a, c) for a, c in attributes.items())))
    plans = [h for h in dated if h not in stage_cols]
    empty = [h for h in header if profiles[h].kind == "empty"]
    comments = ((f"Not stages: {', '.join(plans)} (dates that look like a plan or bookkeeping): kept as attributes.",) if plans else ())
    comments += ((f"Not read: {', '.join(empty)} (empty in every row).",) if empty else ())
    if not formats:
        comments += (f"Dates: {format_note}.",)
    spec = DraftTable(options.get("name", "wide"), options.get("match", "*"), tuple(entries), tuple(tables), comments)
    return spec, options


def _wide_id(path: Path, header: tuple[str, ...], profiles: dict[str, _Profile], rows: int) -> str:
    keys = {column_name(h): h for h in header if not _is_date(h, profiles[h])}
    full = {k for k, h in keys.items() if profiles[h].filled == rows}
    unique = {k for k in full if profiles[keys[k]].distinct == rows}
    for pool in (unique, full, set(keys)):
        found = _pick({k: keys[k] for k in pool}, LEAD_NAMES, set(), _id_like)
        if found:
            return keys[found]
    if unique:
        return keys[next(k for k in keys if k in unique)]
    raise UserError(f"export file '{path}' has no column that could be the lead id (such as deal_id, or a value unique to each row); "
                    f"found {', '.join(header)}.")


def _is_date(header: str, p: _Profile) -> bool:
    if p.kind == "date":
        return True
    epoch = p.low is not None and ((9.5e8 <= float(p.low) and float(p.high) <= 4.2e9) or (9.5e11 <= float(p.low) and float(p.high) <= 4.2e12))
    return p.kind == "numeric" and epoch and bool(re.search(r"\b(date|time|at|timestamp)\b", words(header)))


def _wide_label(header: str) -> str:
    kept = [w for w in words(header).split() if w not in _DATE_WORDS]
    return column_name(" ".join(kept)) or column_name(header) or "stage"


def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        candidate, i = n, 2
        while candidate in out:
            candidate, i = f"{n}_{i}", i + 1
        out.append(candidate)
    return out


def _unique_attrs(headers: list[str]) -> dict[str, str]:
    names = [column_name(h) or "column" for h in headers]
    names = [n if is_attribute_name(n) else f"{n}_value" for n in names]
    return dict(zip(_unique(names), headers))


def _wide_reasons(header: tuple[str, ...], stages: dict[str, str]) -> dict[str, str]:
    """Reason columns by the exit stage they explain: the exit their name says, else the first exit."""
    exits = {label: exit_kind(label) for label in stages if exit_kind(label)}
    reasons: dict[str, str] = {}
    for h in header:
        if "reason" not in words(h).split() or not exits:
            continue
        kind = exit_kind(h)
        stage = next((s for s, k in exits.items() if k == kind), next(iter(exits)))
        reasons.setdefault(stage, h)
    return reasons


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def date_formats(values: list[str]) -> tuple[tuple[str, ...], str]:
    """The date_format list that reads the most of a wide export's dates (() when all are ISO already) and a note."""
    values = sorted({v.strip() for v in values if v.strip()})[:5000]
    if all(ISO.fullmatch(v) for v in values):
        return (), "all ISO-8601 already, so no date_format is needed"
    if all(v.isdigit() for v in values):
        fmt = "epoch_ms" if all(len(v) >= 12 for v in values) else "epoch_s"
        return (fmt,), f"every date is a number: read as {fmt}"
    chosen: list[str] = []
    left = values
    while left:
        counts = {f: sum(_parses(v, f) for v in left) for f in WIDE_FORMATS if f not in chosen}
        best = max(counts, key=counts.get)
        if not counts[best]:
            break
        chosen.append(best)
        left = [v for v in left if not _parses(v, best)]
    note = f"reads {len(values) - len(left):,} of the {len(values):,} distinct dates"
    if left:
        note += f"; {len(left):,} read under no format (such as '{comment_text(left[0], 30)}'): the load quarantines them"
    swapped = [f.replace("%d/%m", "%m/%d") for f in chosen if "%d/%m" in f]
    if any(all(_parses(v, s) for v in values if _parses(v, s.replace("%m/%d", "%d/%m"))) for s in swapped):
        note += "; the dates read as day/month and as month/day alike: day/month chosen"
    return tuple(chosen), note


# -- describing columns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    """What one column holds: its non-empty values counted by what they look like."""

    filled: int = 0
    distinct: int = 0
    iso: int = 0
    dates: int = 0
    numeric: int = 0
    low: str | None = None
    high: str | None = None

    @property
    def kind(self) -> str:
        """'empty', 'date' (most values), 'numeric' (every value) or 'text'."""
        if not self.filled:
            return "empty"
        if self.iso + self.dates > 0.5 * self.filled:  # most values: an export has some impossible dates
            return "date"
        if self.numeric == self.filled:
            return "numeric"
        return "text"


_PROFILE_SQL = """
select count(*) filter (where v <> ''),
       count(distinct v) filter (where v <> ''),
       count(*) filter (where regexp_full_match(v, $iso)),
       count(*) filter (where case when regexp_full_match(v, $dateish) and not regexp_full_match(v, $iso)
                              then try_strptime(v, $formats) is not null else false end),
       count(*) filter (where v <> '' and try_cast(v as double) is not null),
       coalesce(min(v) filter (where regexp_full_match(v, $iso) and try_cast(left(v, 10) as date) is not null),
                min(try_cast(v as double))::varchar),
       coalesce(max(v) filter (where regexp_full_match(v, $iso) and try_cast(left(v, 10) as date) is not null),
                max(try_cast(v as double))::varchar)
from (select coalesce(trim({column}), '') as v from {relation})
"""


def _profile(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> _Profile:
    sql = _PROFILE_SQL.format(column=_sql_name(column), relation=_sql_name(relation))
    params = {"iso": ISO_TIMESTAMP, "formats": OTHER_DATES, "dateish": _DATEISH}
    return _Profile(*con.execute(sql, params).fetchall()[0])


def _top(con: duckdb.DuckDBPyConnection, relation: str, column: str, lead: str | None, n: int) -> tuple[int, list[tuple[str, int]]]:
    """(leads with a value, the `n` values with the most leads) of a column."""
    who = f"nullif(trim({_sql_name(lead)}), '')" if lead else "null"
    base = f"select coalesce(trim({_sql_name(column)}), '') as v, {who} as lead from {_sql_name(relation)}"
    leads = con.execute(f"select count(distinct lead) from ({base}) where v <> ''").fetchall()[0][0]
    top = con.execute(f"select v, count(distinct lead) as n from ({base}) where v <> '' group by v order by n desc, v limit $n",
                      {"n": n}).fetchall()
    return leads, [(v, int(c)) for v, c in top]


def _describe(con: duckdb.DuckDBPyConnection, attr: _Attr) -> DraftColumn:
    """One attribute column as the draft proposes it: a segment, numbers, dates, or text that is not a segment."""
    p = attr.profile or _profile(con, attr.relation, attr.column)
    kind, detail, top = p.kind, _range(p), ()
    if kind == "text":
        leads, top = _top(con, attr.relation, attr.column, attr.lead, 5)
        if p.distinct == 1:
            kind, detail = "constant", f"'{comment_text(top[0][0], 24)}'"
        elif p.distinct > SEGMENT_MAX:
            detail = "too many to compare"
        elif NOT_SEGMENT.search(attr.name):
            detail = "its name says it is an id or free text"
        elif p.distinct == leads and leads > 5:
            detail = "one per lead"
        else:
            kind = "segment"
    return DraftColumn(attr.header, attr.name, kind, p.distinct, p.filled, tuple(top), detail)


def _range(p: _Profile) -> str:
    """'2024-01-02 .. 2024-06-30' for dates, '0 .. 100' for numbers, '' otherwise."""
    if p.kind not in ("date", "numeric") or p.low is None:
        return ""
    return f"{_short(p.low)} .. {_short(p.high)}"


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value[:10] if ISO.fullmatch(value) else value
    return f"{number:g}"


def _timestamp_notes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A note when entered_at values are not ISO-8601 (the load quarantines them)."""
    bad, example = con.execute(
        "select count(*), min(v) from (select trim(entered) as v from draft_events) where v <> '' and not regexp_full_match(v, $iso)",
        {"iso": ISO_TIMESTAMP}).fetchall()[0]
    if not bad:
        return []
    return [(f"{bad:,} entered_at values are not ISO-8601 dates (such as '{comment_text(example, 30)}'): the load quarantines "
             "them as unparseable_timestamp; export ISO dates (2024-01-31 or 2024-01-31 10:00).")]


def _timezone_note(con: duckdb.DuckDBPyConnection) -> str:
    naive = con.execute(
        "select count(*) from (select trim(entered) as v from draft_events) where v <> '' "
        "and not regexp_full_match(v, '.*[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? ?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)')"
    ).fetchall()[0][0]
    if not naive:
        return ""
    return f"{naive:,} timestamps carry no offset and are read in this zone: set your CRM's (an IANA name such as Europe/Berlin)"


# -- labels ----------------------------------------------------------------------------------------

_ORDER_SQL = """
with e as (
    select trim(d.lead_id) as lead_id, m.name, d.file, d.ord,
           try_cast(regexp_replace(trim(d.entered), ' ([+-][0-9])', '\\1') as timestamptz) as t
    from draft_events d join draft_label_map m on m.label = trim(d.label)
    where coalesce(trim(d.lead_id), '') <> ''
),
seq as (
    select lead_id, name, row_number() over (partition by lead_id order by t nulls last, file, ord) as pos,
           count(*) over (partition by lead_id) as n
    from e
),
firsts as (select lead_id, name, min(pos) as pos from seq group by lead_id, name)
"""


def _labels(con: duckdb.DuckDBPyConnection) -> tuple[list[DraftLabel], list[str], dict[str, list[str]]]:
    """The labels found (one per normalised label), the names in journey order, and each name's labels."""
    rows = con.execute(
        "select trim(label) as label, count(*), count(distinct nullif(trim(lead_id), '')), min(file), min(ord) "
        "from draft_events where coalesce(trim(label), '') <> '' group by 1 order by 4, 5").fetchall()
    if not rows:
        raise UserError("the export has no stage labels: every row's stage is empty.")
    forms: dict[str, Counter] = {}
    leads: dict[str, int] = Counter()
    for label, n, lead_count, _, _ in rows:
        forms.setdefault(normalise_label(label), Counter())[label] += n
        leads[normalise_label(label)] += lead_count
    found: list[DraftLabel] = []
    for key, written in forms.items():
        shown = written.most_common(1)[0][0]
        kind = exit_kind(shown)
        name = kind or stage_name(shown)
        name = f"{name}_stage" if not kind and name in OUTCOME_NAMES else name
        found.append(DraftLabel(shown, name, sum(written.values()), leads[key], kind is not None, len(written)))
    by_name: dict[str, list[str]] = {}
    for lab in found:
        by_name.setdefault(lab.name, []).append(lab.label)
    mapping = {label: lab.name for lab in found for label in forms[normalise_label(lab.label)]}
    con.register("draft_label_map", pa.table({"label": list(mapping), "name": list(mapping.values())}))
    pairs = con.execute(_ORDER_SQL + "select a.name, b.name, count(*) from firsts a join firsts b "
                        "on a.lead_id = b.lead_id and a.pos < b.pos and a.name <> b.name group by all").fetchall()
    median = dict(con.execute(_ORDER_SQL + "select name, median((pos - 1) / greatest(n - 1, 1)) from seq group by name").fetchall())
    names = order_names(list(by_name), {(a, b): n for a, b, n in pairs}, median)
    return found, names, by_name


def _arrange(found: list[DraftLabel], names: list[str], by_name: dict[str, list[str]]) -> tuple[list[str], list[str], list[str]]:
    """Funnel stages (the win moved last when one label looks like it), outcomes, and notes on them."""
    outcome = {lab.name for lab in found if lab.outcome}
    stages = [n for n in names if n not in outcome]
    outcomes = [n for n in names if n in outcome]
    notes: list[str] = []
    wins = [n for n in stages if any(WIN.search(words(label)) for label in by_name[n])]
    if len(wins) == 1 and stages[-1] != wins[0]:
        after = stages[stages.index(wins[0]) + 1:]
        stages = [s for s in stages if s != wins[0]] + wins
        notes.append(f"'{wins[0]}' looks like the win, so it is last; {', '.join(after)} came after it in the data: "
                     f"map such labels to {wins[0]} if they are part of the win.")
    elif not wins:
        notes.append(f"no label looks like a win (won, customer, signed): the last stage, '{stages[-1] if stages else '?'}', "
                     "is taken as the win.")
    elif len(wins) > 1:
        notes.append(f"several labels look like a win ({', '.join(wins)}): map them to one stage, the last.")
    if len(stages) < 2:
        shown = ", ".join(f"'{lab.label}'" for lab in found)
        raise UserError(f"the export has fewer than two stages that are not exits ({shown}): a funnel needs where leads "
                        "enter and the win.")
    return stages, outcomes, notes


# -- the draft -------------------------------------------------------------------------------------


def draft_config(paths: list[Path], source: str = "canonical") -> Draft:
    """Read the export(s) and draft their funnel.toml: labels in journey order, exits, columns by kind."""
    if source not in ADAPTERS:
        raise UserError(f"unknown --source '{source}': expected one of {', '.join(sorted(ADAPTERS))}.")
    paths = [Path(p) for p in paths]
    delimiter, delimiter_note = detect_delimiter(paths)
    config = replace(load_config(None), delimiter=delimiter or ",")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        if source == "canonical":
            reading = _read_canonical(paths, config, con)
        elif source == "wide":
            reading = _read_wide(paths, config, con)
        else:
            reading = _read_adapter(source, paths, config, con)
        found, names, by_name = _labels(con)
        columns = [_describe(con, a) for a in reading.attributes]
        timezone_note = _timezone_note(con)
    finally:
        con.close()
    stages, outcomes, stage_notes = _arrange(found, names, by_name)
    order = {n: i for i, n in enumerate(stages + outcomes)}
    numeric = [c.name for c in columns if c.kind == "numeric"]
    return Draft(
        inputs=tuple(p.name for p in paths),
        source=source,
        stages=tuple(stages),
        outcomes=tuple(outcomes),
        labels=tuple(sorted(found, key=lambda lab: order[lab.name])),
        columns=tuple(reading.roles + [c for i, c in enumerate(columns) if c.name not in {d.name for d in columns[:i]}]),
        key_rate=default_key_rate(tuple(stages)),
        lost=("lost",) if "lost" in outcomes else (),
        renames=reading.renames,
        delimiter=delimiter,
        delimiter_note=delimiter_note,
        timezone_note=timezone_note,
        score=next((n for n in numeric if SCORE.search(n)), None),
        amount=next((n for n in numeric if AMOUNT.search(n)), None),
        stage_notes=tuple(stage_notes),
        wide=reading.wide,
        reasons=reading.reasons,
        notes=tuple(reading.notes),
    )
