"""A drafted funnel.toml: what `funnelboard init --from FILE` found in an export, and its TOML text.

funnelboard.etl.draft reads the export and fills a `Draft`; `render` writes it as a funnel.toml
that loads (`load_config`) and says, with a `# CHECK:` comment on the line, every guess the user
must confirm; `write_draft` checks that before the file is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from funnelboard.core.config import KeyRate, check_config, stage_label

CHECK = "# CHECK:"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# Column kinds a DraftColumn may have: the four the load reads itself, then attribute kinds.
ROLE_KINDS = {"lead_id": "the lead id", "stage": "the stage labels", "entered_at": "when each stage was entered",
              "reason": "the exit reason"}
ATTRIBUTE_KINDS = ("segment", "text", "numeric", "date", "constant", "empty")


@dataclass(frozen=True)
class DraftLabel:
    """One stage label found: as most often written, its canonical name and how much of the export it is."""

    label: str
    name: str
    rows: int
    leads: int
    outcome: bool = False
    spellings: int = 1  # written forms that differ only in case or spaces


@dataclass(frozen=True)
class DraftColumn:
    """One column of the export and what the draft makes of it (kind: a ROLE_KINDS key or an ATTRIBUTE_KINDS one)."""

    header: str
    name: str
    kind: str
    distinct: int = 0
    filled: int = 0
    top: tuple[tuple[str, int], ...] = ()  # (value, leads) for a column with few values
    detail: str = ""  # the range of a date or numeric column, why a text column is not a segment


@dataclass(frozen=True)
class Entry:
    """One `key = value` line of a table and its comment."""

    key: str
    value: object
    comment: str = ""


@dataclass(frozen=True)
class DraftTable:
    """One `[source.wide]` table (or `[[source.wide.tables]]` entry): its lines, then its sub-tables."""

    name: str
    match: str
    entries: tuple[Entry, ...]
    tables: tuple[tuple[str, tuple[Entry, ...]], ...] = ()
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Draft:
    """Everything a drafted funnel.toml says, gathered from the export(s)."""

    inputs: tuple[str, ...]
    source: str
    stages: tuple[str, ...]
    outcomes: tuple[str, ...]
    labels: tuple[DraftLabel, ...]
    columns: tuple[DraftColumn, ...]
    key_rate: KeyRate
    lost: tuple[str, ...] = ()
    renames: dict[str, str] = field(default_factory=dict)
    delimiter: str | None = None
    delimiter_note: str = ""
    timezone_note: str = ""  # why the time zone needs checking; "" when every timestamp has its offset
    score: str | None = None
    amount: str | None = None
    stage_notes: tuple[str, ...] = ()
    wide: tuple[DraftTable, ...] = ()
    reasons: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def segments(self) -> tuple[DraftColumn, ...]:
        """The columns proposed as [segments]."""
        return tuple(c for c in self.columns if c.kind == "segment")

    @property
    def numeric(self) -> tuple[str, ...]:
        """The columns proposed as [attributes] numeric."""
        return tuple(c.name for c in self.columns if c.kind == "numeric")


def toml_string(text: str) -> str:
    """`text` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A TOML key: bare when it can be, else a quoted string."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(value: object) -> str:
    """A TOML value for a str, bool, int, float, list or dict (an inline table)."""
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def comment_text(text: str, limit: int = 0) -> str:
    """Text made safe for a one-line comment: whitespace and control characters collapsed, optionally cut."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return flat if not limit or len(flat) <= limit else flat[: limit - 1] + "…"


def _line(key: str, value: object, comment: str = "") -> str:
    text = f"{toml_key(key)} = {toml_value(value)}"
    return f"{text}  # {comment_text(comment)}" if comment else text


def plural(count: int, noun: str) -> str:
    """'1 row', '2 rows'."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def top_values(column: DraftColumn, n: int = 4) -> str:
    """'a 12, b 3, ...': a column's commonest values with their leads, for a comment or the console."""
    shown = ", ".join(f"{comment_text(v, 24)} {count:,}" for v, count in column.top[:n])
    return shown + (", ..." if column.distinct > n else "")


def render(draft: Draft) -> str:
    """The drafted funnel.toml as text."""
    parts = [
        _header(draft),
        _funnel(draft),
        _input(draft),
        _columns(draft),
        _labels(draft),
        _segments(draft),
        _attributes(draft),
        _review(draft),
        _reasons(draft),
        _sla_days(draft),
        _sources(draft),
    ]
    return "\n".join(p for p in parts if p)


def _header(draft: Draft) -> str:
    lines = [
        "# funnel.toml DRAFTED by `funnelboard init --from` from "
        + comment_text(", ".join(draft.inputs))
        + (f" (--source {draft.source})" if draft.source != "canonical" else "") + ".",
        "# It loads as it is, but it is a starting point: every line marked '# CHECK:' is a guess",
        "# from the data. Check them, then run `funnelboard check-config --config <this file>`.",
    ]
    lines += [f"# Note: {comment_text(n)}" for n in draft.notes]
    return "\n".join(lines) + "\n"


def _funnel(draft: Draft) -> str:
    lines = [
        "[funnel]",
        f"{CHECK} the funnel stages in the order leads move through them; the first is where leads",
        "# enter, the LAST IS THE WIN. Ordered as observed: a stage comes before another when, of the",
        "# leads that entered both, more entered it first (ties: by median position in the journeys).",
        "# Several labels that are one stage? Map them to one name under [labels] and drop the others here.",
    ]
    lines += [f"{CHECK} {comment_text(n)}" for n in draft.stage_notes]
    lines.append(_line("stages", list(draft.stages), "CHECK: order, and the win last"))
    lines += [
        f"{CHECK} a guess from the labels' words (lost, disqualified, unqualified, junk, nurture, recycled...):",
        "# ways out of the funnel. \"lost\", \"disqualified\" and \"rerouted\" end a journey; \"nurture\" parks",
        "# a lead, which may come back. Other names are outcomes that do not end it.",
        _line("outcomes", list(draft.outcomes), "CHECK: exits guessed from the labels" if draft.outcomes else
              "CHECK: no label looked like an exit"),
    ]
    if draft.timezone_note:
        lines.append(_line("timezone", "UTC", f"CHECK: {draft.timezone_note}"))
    else:
        lines.append(_line("timezone", "UTC", "every timestamp found carries its offset; this zone reads any that does not"))
    lines += [
        '# "count": a lead that skips a stage counts as reaching it; "strict": only stages entered count.',
        'skipped_stages = "count"',
        "# A conversion counts only within this many days (0 = no window).",
        "conversion_window_days = 0",
        "# Segments with fewer leads than this are marked \"too few to judge\".",
        "min_sample = 30",
    ]
    return "\n".join(lines) + "\n"


def _input(draft: Draft) -> str:
    if draft.delimiter is None:
        return ""
    return "\n".join([
        "[input]",
        "# The CSV dialect is pinned, never sniffed at load time.",
        _line("delimiter", draft.delimiter, f"CHECK: {draft.delimiter_note}"),
        "quote = '\"'",
        'encoding = "utf-8"',
    ]) + "\n"


def _columns(draft: Draft) -> str:
    if draft.source != "canonical":
        return ""
    lines = ["[columns]", "# The export's columns and what the load does with each:"]
    for c in draft.columns:
        lines.append(f"#   {comment_text(c.header, 40)} -> {c.name}: {_kind_text(c)}")
    if not draft.renames:
        lines.append("# The required columns already have the names the load expects: nothing to rename.")
    for canonical, header in draft.renames.items():
        lines.append(_line(canonical, header, f"CHECK: the column holding {ROLE_KINDS[canonical]}"))
    return "\n".join(lines) + "\n"


def _kind_text(c: DraftColumn) -> str:
    if c.kind in ROLE_KINDS:
        return ROLE_KINDS[c.kind] + (f" ({c.detail})" if c.detail else "")
    if c.kind == "segment":
        return f"a segment candidate, {c.distinct:,} values"
    if c.kind == "numeric":
        return "numbers" + (f" ({c.detail})" if c.detail else "")
    if c.kind == "date":
        return "dates, kept as text" + (f" ({c.detail})" if c.detail else "")
    if c.kind == "constant":
        return "one value only" + (f" ({c.detail})" if c.detail else "")
    if c.kind == "empty":
        return "empty in every row"
    return f"text, {c.distinct:,} values" + (f" ({c.detail})" if c.detail else "")


def _labels(draft: Draft) -> str:
    lines = [
        "[labels]",
        "# CRM stage label = canonical stage, one line per label found (matching ignores case and spaces).",
    ]
    for lab in draft.labels:
        count = f"{plural(lab.rows, 'row')}, {plural(lab.leads, 'lead')}" + (f", {lab.spellings} spellings" if lab.spellings > 1 else "")
        comment = f"CHECK: looks like an exit (a guess); {count}" if lab.outcome else count
        lines.append(_line(lab.label, lab.name, comment))
    return "\n".join(lines) + "\n"


def _segments(draft: Draft) -> str:
    lines = [
        "[segments]",
        "# Columns the dashboard may break conversion down by (column = display name): text columns with",
        "# few distinct values. Values shown with their number of leads.",
    ]
    for c in draft.segments:
        display = c.header if c.header != c.name else stage_label(c.name)
        lines.append(_line(c.name, display, f"CHECK: {c.distinct:,} values: {top_values(c)}"))
    others = [c for c in draft.columns if c.kind in ("text", "constant")]
    if others:
        lines.append("# Not proposed: " + "; ".join(f"{comment_text(c.name)} ({_kind_text(c)})" for c in others))
    return "\n".join(lines) + "\n"


def _attributes(draft: Draft) -> str:
    lines = ["[attributes]", "# Columns holding numbers, then the lead-score and deal-amount columns among them."]
    numeric = [c for c in draft.columns if c.kind == "numeric"]
    ranges = "; ".join(f"{c.name} {c.detail}" for c in numeric if c.detail)
    lines.append(_line("numeric", list(draft.numeric), f"CHECK: {ranges}" if ranges else "no column holds only numbers"))
    for key, value in (("score", draft.score), ("amount", draft.amount)):
        if value:
            lines.append(_line(key, value, "CHECK: a guess from the column's name"))
        else:
            lines.append(f'# {key} = "<column>"   (no numeric column is named like a {key})')
    if draft.amount:
        lines.append('# currency = "USD"   (CHECK: the ISO 4217 code the amounts are in; unset, none is shown)')
    dates = [c for c in draft.columns if c.kind == "date"]
    if dates:
        lines.append("# Date columns (loaded as text attributes): "
                     + "; ".join(f"{comment_text(c.header, 40)}" + (f" {c.detail}" if c.detail else "") for c in dates))
    return "\n".join(lines) + "\n"


def _review(draft: Draft) -> str:
    rate = draft.key_rate
    lines = [
        "[review]",
        f"{CHECK} the weekly review's headline rate: the step your team watches most (e.g. MQL -> SQL).",
        _line("key_rate", {"from": rate.from_stage, "to": rate.to_stage, "name": rate.name}, "CHECK: the headline step"),
        "# Outcomes that are a lost deal in the win rate, won / (won + lost).",
    ]
    if draft.lost:
        lines.append(_line("lost", list(draft.lost), "CHECK: the exits that count as a lost deal"))
    else:
        lines.append("# lost = [\"lost\"]   (no outcome looked like a lost deal)")
    return "\n".join(lines) + "\n"


def _reasons(draft: Draft) -> str:
    lines = ["[reasons]", "# Free-text reason = normalised reason (case- and space-insensitive); others are kept as written."]
    if draft.reasons:
        lines.append("# Commonest reasons found: " + ", ".join(f"{comment_text(r, 30)} ({n:,})" for r, n in draft.reasons))
    return "\n".join(lines) + "\n"


def _sla_days(draft: Draft) -> str:
    example = draft.stages[min(1, len(draft.stages) - 1)]
    return (
        f"[sla_days]\n# Days a lead may sit in a stage before it counts as stalled (else the stage's p90), e.g.\n# {example} = 14\n"
        "# Or in hours, on business hours (Monday to Friday within [response] business_hours) or the calendar,\n"
        "# and per value of a segment column: a section of its own, a stage in one of the two only.\n"
        f'# [sla]\n# clock = "business"\n# hours = {{ {example} = 16 }}\n'
    )


def _sources(draft: Draft) -> str:
    if draft.source in ("canonical",) or (draft.source == "wide" and not draft.wide):
        return ""
    if draft.source != "wide":
        return (f"[source.{draft.source}]\n# Options of the {draft.source} adapter, all optional: see docs/sources.md.\n")
    lines = ["[source.wide]", "# How the wide export becomes events: one column of dates per stage (docs/sources.md)."]
    if len(draft.wide) == 1:
        lines += _table_lines(draft.wide[0], "source.wide")
        return "\n".join(lines) + "\n"
    for t in draft.wide:
        lines += ["", "[[source.wide.tables]]", _line("name", t.name), _line("match", t.match, "the file name")]
        lines += _table_lines(t, "source.wide.tables")
    return "\n".join(lines) + "\n"


def _table_lines(t: DraftTable, prefix: str) -> list[str]:
    lines = [f"# {comment_text(c)}" for c in t.comments]
    lines += [_line(e.key, e.value, e.comment) for e in t.entries]
    for name, entries in t.tables:
        if entries:
            lines += ["", f"[{prefix}.{name}]"] + [_line(e.key, e.value, e.comment) for e in entries]
    return lines


def write_draft(draft: Draft, path: Path) -> None:
    """Write the draft to `path` once it has been checked to load (a draft that does not is a bug)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.draft-{os.getpid()}")
    tmp.write_text(render(draft), encoding="utf-8")
    try:
        _, problems = check_config(tmp)
        if problems:
            raise RuntimeError(f"the drafted funnel.toml does not load: {problems[0]}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
