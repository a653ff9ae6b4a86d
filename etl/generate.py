"""Deterministic demo CRM stage history for a BPO sales funnel, optionally carrying the mess of real exports.

The journey of every lead is simulated as a Markov chain over stages whose
transition probabilities and durations depend on the lead's segments and a
latent quality (which also drives its lead score). All leads move one step at
a time together, so the work is a few dozen numpy passes, whatever the size.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_END = date(2026, 11, 20)
FORMATS = ("csv", "parquet", "jsonl")
COLUMNS = (
    "lead_id", "stage", "entered_at", "reason", "channel", "industry", "service_line", "region",
    "company_size", "owner", "buyer_role", "decision_makers", "lead_score", "last_activity_at", "first_response_at", "amount",
    "close_date", "currency",
)

LEAD, MQL, SQL, OPP, PROP, WON, NUR, DQ, RR, LOST, STAY = range(11)
CANONICAL_STAGES = (
    "lead", "mql", "sql", "opportunity", "proposal", "won", "nurture", "disqualified", "rerouted", "lost"
)
STAGE_LABELS = (
    "New Lead", "Marketing Qualified", "Sales Qualified", "Scoping", "Proposal Sent", "Closed Won", "Nurture",
    "Disqualified", "Re-routed", "Closed Lost",
)
UNKNOWN_STAGE_LABELS = ("Discovery Call", "Demo Scheduled", "Contract Review")
UNPARSEABLE_TIMESTAMPS = (
    "31/02/2024", "yesterday", "2024-13-45", "n/a", "2024-02-30 10:00:00", "TBD", "0000-00-00 00:00:00",
    "2025-06-31T09:00:00",
)

CHANNELS = ("inbound", "outbound", "referral", "self-identified", "events", "partners")
CHANNEL_MIX = (0.30, 0.25, 0.10, 0.12, 0.12, 0.11)
INDUSTRIES = (
    "healthcare", "financial services", "retail & e-commerce", "telecom", "technology", "travel & hospitality",
    "insurance", "utilities",
)
INDUSTRY_MIX = (0.14, 0.15, 0.16, 0.10, 0.15, 0.09, 0.11, 0.10)
REGULATED = (True, True, False, False, False, False, True, False)
SERVICE_LINES = (
    "customer support", "back office", "finance & accounting", "IT helpdesk", "HR operations", "data entry"
)
SERVICE_MIX = (0.32, 0.18, 0.15, 0.14, 0.11, 0.10)
SERVICE_ACV = (420_000, 240_000, 310_000, 280_000, 170_000, 110_000)
REGIONS = ("North America", "EMEA", "APAC", "LATAM")
REGION_MIX = (0.45, 0.30, 0.15, 0.10)
COMPANY_SIZES = ("1-50", "51-200", "201-1000", "1001-5000", "5000+")
SIZE_MIX = (0.22, 0.30, 0.26, 0.14, 0.08)
SIZE_ACV = (0.12, 0.35, 1.0, 2.4, 5.5)
SDRS = (
    "Maya Patel", "Jordan Brooks", "Luis Fernandez", "Aisha Okafor", "Ethan Walsh", "Priya Raman",
    "Tomás Ortega", "Grace Liu",
)
SDR_MIX = (0.15, 0.14, 0.13, 0.13, 0.12, 0.12, 0.11, 0.10)
AES = ("Daniel Kim", "Sarah Mitchell", "Oliver Bennett", "Sofia Rossi", "Hiroshi Tanaka", "Camila Duarte")
AE_REGION = (0, 0, 1, 1, 2, 3)
AE_WIN_LOGIT = (0.25, -0.10, 0.10, -0.25, 0.05, 0.0)

_S = 86_400
_MAX_STEPS = 32

# Transition model: from each open stage a lead advances with a per-lead
# probability (logit = base + segment effects + quality); otherwise it takes one
# of the "other" outcomes with fixed weights. STAY means no further event.
_ADV_P = {LEAD: 0.60, MQL: 0.22, SQL: 0.66, OPP: 0.66, PROP: 0.34, NUR: 0.30}
_ADV_TO = {LEAD: MQL, MQL: SQL, SQL: OPP, OPP: PROP, PROP: WON, NUR: MQL}
_SKIP_TO = {LEAD: SQL, MQL: OPP}
_OTHER = {
    LEAD: ((DQ, 0.38), (NUR, 0.22), (RR, 0.10), (STAY, 0.30)),
    MQL: ((DQ, 0.33), (NUR, 0.32), (RR, 0.07), (STAY, 0.28)),
    SQL: ((DQ, 0.30), (LOST, 0.30), (NUR, 0.18), (STAY, 0.22)),
    OPP: ((LOST, 0.45), (DQ, 0.12), (SQL, 0.13), (STAY, 0.30)),
    PROP: ((LOST, 0.68), (OPP, 0.14), (SQL, 0.05), (STAY, 0.13)),
    NUR: ((STAY, 1.0),),
}
_QUALITY_COEF = {LEAD: 0.45, MQL: 0.6, SQL: 0.35, OPP: 0.3, PROP: 0.3, NUR: 0.3}
_CHANNEL_LOGIT = {
    LEAD: (0.15, -0.55, 0.6, 0.9, -0.15, 0.25),
    MQL: (0.0, -0.85, 1.25, 0.3, -0.35, 0.35),
    SQL: (0.0, -0.2, 0.3, 0.1, 0.0, 0.1),
    OPP: (0.0, -0.1, 0.2, 0.0, 0.0, 0.1),
    PROP: (0.0, -0.1, 0.2, 0.0, 0.0, 0.1),
}
_CHANNEL_SKIP_P = (0.015, 0.01, 0.30, 0.02, 0.01, 0.08)
_MQL_SKIP_P = 0.07
_INDUSTRY_LOGIT = {MQL: (-0.1, 0.0, 0.1, 0.1, 0.15, 0.0, -0.05, -0.1)}
_SIZE_LOGIT = {SQL: (-0.2, -0.05, 0.05, 0.1, 0.1), PROP: (0.15, 0.1, 0.0, -0.15, -0.3)}
_SERVICE_LOGIT = {PROP: (0.1, 0.05, -0.7, -0.55, 0.0, 0.15)}
_RETURN_LOGIT = -0.4

# Durations: lognormal, per from-stage ({to: median days}, median for other targets, sigma),
# times segment multipliers; counted in working days.
_MEDIAN = {
    LEAD: ({MQL: 1.5, SQL: 4.0}, 6.0, 0.9),
    MQL: ({SQL: 9.0, OPP: 12.0}, 16.0, 0.85),
    SQL: ({OPP: 8.0}, 18.0, 0.8),
    OPP: ({PROP: 15.0, SQL: 12.0}, 22.0, 0.65),
    PROP: ({WON: 20.0, OPP: 12.0, SQL: 15.0}, 24.0, 0.6),
    NUR: ({MQL: 75.0}, 75.0, 0.45),
}
_CHANNEL_DUR = {LEAD: (1.0, 1.5, 0.6, 0.8, 1.2, 0.9), MQL: (1.0, 1.7, 0.45, 0.8, 1.25, 0.85)}
_SIZE_DUR = {
    MQL: (0.9, 0.95, 1.0, 1.1, 1.2),
    SQL: (0.7, 0.85, 1.0, 1.3, 1.7),
    OPP: (0.7, 0.85, 1.0, 1.3, 1.7),
    PROP: (0.7, 0.85, 1.0, 1.3, 1.7),
}
_SERVICE_DUR = {OPP: (1.0, 1.0, 1.3, 1.2, 1.0, 0.9), PROP: (1.0, 1.0, 2.3, 2.0, 1.1, 0.8)}
_NURTURE_MIN_DAYS = 21.0

# Reasons: normalised category -> free-text variants reps type (keys of [reasons]).
_REASON_TEXTS = (
    ("No timeline", "timeline unclear", "Not now / no timeline"),
    ("Unclear process needs", "Process not documented"),
    ("Compliance mismatch", "Mismatched compliance requirements", "Needs HIPAA / PCI we can't meet"),
    ("Wrong service line", "Service not offered"),
    ("No decision maker", "No decision-maker involved"),
    ("Budget too low", "No budget", "Budget"),
    ("Re-routed to another team", "Sent to partner team"),
    ("Lost to competitor", "Chose offshore competitor"),
    ("Kept in-house", "Decided to keep in-house"),
    ("Pricing too high", "Price"),
    ("No decision", "Went dark"),
    ("Not ready yet", "Re-engage next quarter"),
)
_COMPLIANCE, _IN_HOUSE = 2, 8
_IN_HOUSE_LINES = (SERVICE_LINES.index("finance & accounting"), SERVICE_LINES.index("IT helpdesk"))
_REASON_WEIGHTS = (  # rows: dq early, dq late, rerouted, lost from sql, lost later, nurture
    (0.18, 0.15, 0.12, 0.22, 0.13, 0.20, 0, 0, 0, 0, 0, 0),
    (0.15, 0.20, 0.20, 0.05, 0.20, 0.20, 0, 0, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0, 0, 0.20, 0.20, 0.10, 0.50, 0),
    (0, 0, 0, 0, 0, 0, 0, 0.35, 0.20, 0.30, 0.15, 0),
    (0.40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.60),
)
_CASE_STYLES_P = (0.75, 0.12, 0.08, 0.05)
_MISSING_REASON_P = 0.05

_ADDED_KINDS = (
    "duplicate", "unknown_stage", "unparseable_timestamp", "future_timestamp", "before_1990", "missing_lead_id"
)
_DIRT_RATES = {
    "duplicate": (0.01, 1),
    "unknown_stage": (0.002, 1),
    "unparseable_timestamp": (0.002, 1),
    "future_timestamp": (0.001, 1),
    "before_1990": (0.00005, 2),
    "missing_lead_id": (0.002, 1),
    "messy_label": (0.02, 1),
    "raw_line": (0.00005, 3),
}


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote: where, how many rows and leads, and the dirt added per kind."""

    path: Path
    format: str
    rows: int
    leads: int
    seed: int
    dirty: dict[str, int]


def generate_events(
    *,
    n_events: int | None = None,
    n_leads: int | None = None,
    seed: int = 7,
    end: date = DEFAULT_END,
    weeks: int = 78,
    dirty: bool = False,
) -> pa.Table:
    """A demo stage history as an Arrow table of text columns, sorted by lead then time.

    Give exactly one of n_events (exactly that many clean rows) or n_leads. With
    dirty=True, of n clean rows 2 % get a messy stage label and about 1.7 % more
    rows are added, each right after the row it copies: round(1 % of n) duplicates,
    0.2 % unknown stage, 0.2 % unparseable timestamp, 0.1 % dated 2099, 0.2 %
    missing lead_id (each at least 1) and 0.005 % dated 1970 (at least 2). Wrong
    column counts and malformed JSON exist only in files (see `generate`).
    """
    return _build(n_events=n_events, n_leads=n_leads, seed=seed, end=end, weeks=weeks, dirty=dirty)[0]


def write_events(table: pa.Table, path: Path, fmt: str) -> None:
    """Write a table as CSV (header, comma, minimal quoting), Parquet or JSON Lines; a '.gz' name is gzipped."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
        return
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("events", table)
        target = str(path).replace("'", "''")
        compression = "gzip" if path.name.endswith(".gz") else "none"
        if fmt == "csv":
            options = "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', NEW_LINE '\\n'"
        else:
            options = "FORMAT json"
        con.execute(f"COPY events TO '{target}' ({options}, COMPRESSION {compression})")
    finally:
        con.close()


def generate(
    *,
    out: Path,
    fmt: str = "csv",
    n_events: int | None = None,
    n_leads: int | None = None,
    seed: int = 7,
    end: date = DEFAULT_END,
    weeks: int = 78,
    dirty: bool = False,
) -> GenerateSummary:
    """Generate the demo history and write it to `out`; dirty files also get raw broken lines.

    Dirty CSV gets max(3, 5 per 100k clean rows) lines with a wrong number of
    fields (in turn: an extra field, a missing field, an owner split by an
    unquoted comma, which ends in an empty field when the row has no amount),
    dirty JSON Lines as many malformed JSON lines, each right after the row it was
    made from; Parquet gets none.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    table, counts, raw_rows, leads = _build(
        n_events=n_events, n_leads=n_leads, seed=seed, end=end, weeks=weeks, dirty=dirty
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if not dirty or fmt == "parquet":
        write_events(table, out, fmt)
        return GenerateSummary(out, fmt, table.num_rows, leads, seed, counts)
    if fmt == "csv":
        lines = _wrong_column_lines(table, raw_rows)
        counts["wrong_column_count"] = len(lines)
        first_data_line = 1
    else:
        lines = _malformed_json_lines(table, raw_rows)
        counts["malformed_json"] = len(lines)
        first_data_line = 0
    inserts = [(int(r) + first_data_line, line) for r, line in zip(raw_rows, lines)]
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=".generate-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_events(table, tmp, fmt)
        with open(out, "wb") as raw:
            if out.name.endswith(".gz"):
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as sink:
                    _splice_lines(tmp, sink, inserts)
            else:
                _splice_lines(tmp, raw, inserts)
    finally:
        tmp.unlink(missing_ok=True)
    return GenerateSummary(out, fmt, table.num_rows + len(lines), leads, seed, counts)


# --------------------------------------------------------------------------- building


def _build(
    *, n_events: int | None, n_leads: int | None, seed: int, end: date, weeks: int, dirty: bool
) -> tuple[pa.Table, dict[str, int], np.ndarray, int]:
    if (n_events is None) == (n_leads is None):
        raise ValueError("give exactly one of n_events or n_leads")
    size = n_events if n_events is not None else n_leads
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"n_events / n_leads must be a positive integer, got {size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(weeks, bool) or not isinstance(weeks, (int, np.integer)) or weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks!r}")
    calendar = _Calendar(end.date() if isinstance(end, datetime) else end, weeks)
    if n_leads is not None:
        rng = np.random.default_rng([seed, 0, 0])
        leads = _draw_leads(rng, int(n_leads), calendar.day_p(extra=0.0), calendar)
        events = _simulate(rng, leads, calendar.cutoff)
    else:
        events, leads = _events_for_count(int(n_events), seed, calendar)
    columns = _to_columns(np.random.default_rng([seed, 3]), events, leads)
    n_distinct = int(events.lead[-1]) + 1
    if not dirty:
        return pa.table(columns), {}, np.empty(0, np.int64), n_distinct
    table, counts, raw_rows = _add_dirt(np.random.default_rng([seed, 2]), columns, events)
    return table, counts, raw_rows, n_distinct


class _Calendar:
    """The days leads are created on: weekday pattern, mild upward trend, holiday dip."""

    def __init__(self, end: date, weeks: int) -> None:
        self.window = weeks * 7
        self.extra = math.ceil(0.25 * self.window) + 14
        self.first = end - timedelta(days=self.window + self.extra - 1)
        self.cutoff = (end + timedelta(days=1) - date(1970, 1, 1)).days * _S
        day0 = (self.first - date(1970, 1, 1)).days
        self.days = np.arange(day0, day0 + self.window + self.extra, dtype=np.int64)
        rel = (np.arange(self.days.size) - self.extra) / self.window
        weekday = (self.days + 3) % 7
        w = (1.0 + 0.35 * rel) * np.array([1.2, 1.15, 1.1, 1.0, 0.8, 0.12, 0.08])[weekday]
        month_day = self.days.astype("datetime64[D]")
        md = (month_day - month_day.astype("datetime64[M]")).astype(np.int64) + 1
        month = month_day.astype("datetime64[M]").astype(np.int64) % 12 + 1
        holiday = ((month == 12) & (md >= 20)) | ((month == 1) & (md <= 3))
        self.weights = np.where(holiday, 0.6 * w, w)

    def day_p(self, extra: float) -> np.ndarray:
        """Day probabilities covering the window plus `extra` of its weight before it."""
        w = self.weights.copy()
        from_end = np.cumsum(w[::-1])[::-1]
        after = from_end - w
        w[after >= (1.0 + extra) * from_end[self.extra] * (1.0 - 1e-9)] = 0.0
        return w / w.sum()


@dataclass
class _Leads:
    created: np.ndarray
    channel: np.ndarray
    industry: np.ndarray
    service: np.ndarray
    region: np.ndarray
    size: np.ndarray
    sdr: np.ndarray
    ae: np.ndarray
    quality: np.ndarray
    score: np.ndarray
    amount: np.ndarray

    def take(self, idx: np.ndarray) -> "_Leads":
        return _Leads(**{k: v[idx] for k, v in self.__dict__.items()})


@dataclass
class _Events:
    lead: np.ndarray
    stage: np.ndarray
    time: np.ndarray
    k: np.ndarray
    counts: np.ndarray
    k_sql: np.ndarray
    k_opp: np.ndarray


def _events_for_count(n_events: int, seed: int, calendar: _Calendar) -> tuple[_Events, _Leads]:
    pilot_rng = np.random.default_rng([seed, 1])
    pilot_n = 50_000
    pilot = _simulate(pilot_rng, _draw_leads(pilot_rng, pilot_n, calendar.day_p(0.0), calendar), calendar.cutoff)
    per_lead = pilot.lead.size / pilot_n
    extra = 0.05
    for attempt in range(20):
        rng = np.random.default_rng([seed, 0, attempt])
        n = math.ceil((1.0 + extra) * n_events / per_lead)
        leads = _draw_leads(rng, n, calendar.day_p(extra), calendar)
        events = _simulate(rng, leads, calendar.cutoff)
        if events.lead.size >= n_events:
            return _keep_newest(events, leads, n_events)
        extra += 0.1
    raise RuntimeError("could not generate enough events")  # pragma: no cover


def _keep_newest(events: _Events, leads: _Leads, n_events: int) -> tuple[_Events, _Leads]:
    """Keep the newest leads (whole) until n_events rows, cutting the oldest kept lead's last events."""
    from_newest = np.cumsum(events.counts[::-1])
    b = int(np.searchsorted(from_newest, n_events))
    first = events.counts.size - 1 - b
    keep_first = int(events.counts[first] - (from_newest[b] - n_events))
    offsets = np.concatenate(([0], np.cumsum(events.counts)))
    start = int(offsets[first])
    rows = np.concatenate(
        (np.arange(start, start + keep_first), np.arange(int(offsets[first + 1]), events.lead.size))
    )
    counts = events.counts[first:].copy()
    counts[0] = keep_first
    k_sql = events.k_sql[first:].copy()
    k_opp = events.k_opp[first:].copy()
    kept = _Events(
        lead=events.lead[rows] - first,
        stage=events.stage[rows],
        time=events.time[rows],
        k=events.k[rows],
        counts=counts,
        k_sql=k_sql,
        k_opp=k_opp,
    )
    return kept, leads.take(np.arange(first, events.counts.size))


def _pick(rng: np.random.Generator, n: int, p: tuple[float, ...], dtype=np.int8) -> np.ndarray:
    cum = np.cumsum(p)
    return np.minimum(np.searchsorted(cum / cum[-1], rng.random(n), side="right"), len(p) - 1).astype(dtype)


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the day: mostly 08:00-18:00 with a midday peak, some at any hour."""
    business = 8 * 3600 + (rng.random(n) + rng.random(n)) * 5 * 3600
    anytime = rng.random(n) * _S
    return np.where(rng.random(n) < 0.94, business, anytime).astype(np.int64)


def _draw_leads(rng: np.random.Generator, n: int, day_p: np.ndarray, calendar: _Calendar) -> _Leads:
    day = calendar.days[np.minimum(np.searchsorted(np.cumsum(day_p), rng.random(n), side="right"), day_p.size - 1)]
    created = np.sort(day * _S + _time_of_day(rng, n))
    channel = _pick(rng, n, CHANNEL_MIX)
    region = _pick(rng, n, REGION_MIX)
    region_aes = [np.flatnonzero(np.array(AE_REGION) == r) for r in range(len(REGIONS))]
    ae_choice = rng.random(n)
    ae = np.empty(n, np.int8)
    for r, members in enumerate(region_aes):
        m = region == r
        ae[m] = members[np.minimum((ae_choice[m] * members.size).astype(np.int64), members.size - 1)]
    size = _pick(rng, n, SIZE_MIX)
    service = _pick(rng, n, SERVICE_MIX)
    quality = rng.standard_normal(n).astype(np.float32)
    bonus = np.array([3.0, -6.0, 8.0, 6.0, -2.0, 4.0])[channel]
    score = np.clip(np.rint(50 + 16 * quality + bonus + 7 * rng.standard_normal(n)), 0, 100).astype(np.int16)
    acv = np.array(SERVICE_ACV, float)[service] * np.array(SIZE_ACV)[size] * np.exp(0.45 * rng.standard_normal(n))
    amount = (np.maximum(np.rint(acv / 1000.0), 5) * 1000).astype(np.int64)
    return _Leads(
        created=created,
        channel=channel,
        industry=_pick(rng, n, INDUSTRY_MIX),
        service=service,
        region=region,
        size=size,
        sdr=_pick(rng, n, SDR_MIX),
        ae=ae,
        quality=quality,
        score=score,
        amount=amount,
    )


def _tables() -> dict[str, np.ndarray]:
    """The transition and duration model as lookup arrays indexed by stage (and segment)."""
    n = STAY + 1
    t: dict[str, np.ndarray] = {
        "base": np.zeros(n),
        "adv_to": np.full(n, STAY, np.int8),
        "skip_to": np.full(n, STAY, np.int8),
        "skip_p": np.zeros((n, len(CHANNELS))),
        "q": np.zeros(n),
        "ch_logit": np.zeros((n, len(CHANNELS))),
        "ind_logit": np.zeros((n, len(INDUSTRIES))),
        "size_logit": np.zeros((n, len(COMPANY_SIZES))),
        "svc_logit": np.zeros((n, len(SERVICE_LINES))),
        "ae_logit": np.zeros((n, len(AES))),
        "other_cum": np.ones((n, 4)),
        "other_to": np.full((n, 4), STAY, np.int8),
        "median": np.ones((n, n)),
        "sigma": np.full(n, 0.5),
        "ch_dur": np.ones((n, len(CHANNELS))),
        "size_dur": np.ones((n, len(COMPANY_SIZES))),
        "svc_dur": np.ones((n, len(SERVICE_LINES))),
    }
    for s, p in _ADV_P.items():
        t["base"][s] = math.log(p / (1 - p))
        t["adv_to"][s] = _ADV_TO[s]
        t["q"][s] = _QUALITY_COEF[s]
        others = _OTHER[s]
        cum = np.cumsum([w for _, w in others])
        t["other_cum"][s, : len(others)] = cum / cum[-1]
        t["other_to"][s, : len(others)] = [o for o, _ in others]
        by_to, default, sigma = _MEDIAN[s]
        t["median"][s, :] = default
        for to, days in by_to.items():
            t["median"][s, to] = days
        t["sigma"][s] = sigma
    for s, to in _SKIP_TO.items():
        t["skip_to"][s] = to
    t["skip_p"][LEAD] = _CHANNEL_SKIP_P
    t["skip_p"][MQL] = _MQL_SKIP_P
    t["ae_logit"][PROP] = AE_WIN_LOGIT
    for key, spec in (
        ("ch_logit", _CHANNEL_LOGIT),
        ("ind_logit", _INDUSTRY_LOGIT),
        ("size_logit", _SIZE_LOGIT),
        ("svc_logit", _SERVICE_LOGIT),
        ("ch_dur", _CHANNEL_DUR),
        ("size_dur", _SIZE_DUR),
        ("svc_dur", _SERVICE_DUR),
    ):
        for s, row in spec.items():
            t[key][s] = row
    return t


_ORDER = np.array([0, 1, 2, 3, 4, 5, -1, -1, -1, -1, -1])
_TERMINAL = np.array([False] * 5 + [True, False, True, True, True, True])
_NEVER = np.iinfo(np.int16).max


def _snap(rng: np.random.Generator, prev: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The time `days` calendar days after prev, counted in working days, at a working hour, after prev."""
    prev_day, prev_sec = np.divmod(prev, _S)
    week, weekday = np.divmod(prev_day + 3, 7)
    workday = week * 5 + np.minimum(weekday, 5) + np.where(weekday < 5, prev_sec / _S, 0.0)
    week, weekday = np.divmod(np.floor(workday + days * 5 / 7).astype(np.int64), 5)
    weekend = rng.random(prev.size) < 0.03
    day = week * 7 + np.where(weekend, 5 + (weekday & 1), weekday) - 3
    t = day * _S + _time_of_day(rng, prev.size)
    return np.maximum(t, prev + 60 + rng.integers(0, 3 * 3600, prev.size))


def _simulate(rng: np.random.Generator, leads: _Leads, cutoff: int) -> _Events:
    model = _tables()
    n = leads.created.size
    counts = np.ones(n, np.int16)
    k_sql = np.full(n, _NEVER, np.int16)
    k_opp = np.full(n, _NEVER, np.int16)
    n_back = np.zeros(n, np.int8)
    n_return = np.zeros(n, np.int8)
    out_lead = [np.arange(n, dtype=np.int64)]
    out_stage = [np.zeros(n, np.int8)]
    out_time = [leads.created]
    out_k = [np.zeros(n, np.int16)]

    act = np.arange(n, dtype=np.int64)
    state = np.zeros(n, np.int8)
    now = leads.created.copy()
    for _ in range(_MAX_STEPS):
        if act.size == 0:
            break
        nxt, back, days = _step(rng, model, leads, act, state, n_back, n_return)
        when = _snap(rng, now, days)

        emit = (nxt != STAY) & (when < cutoff)
        lid = act[emit]
        stage = nxt[emit]
        k = counts[lid]
        out_lead.append(lid)
        out_stage.append(stage)
        out_time.append(when[emit])
        out_k.append(k)
        counts[lid] += 1
        reached_sql = (_ORDER[stage] >= SQL) & (k_sql[lid] == _NEVER)
        k_sql[lid[reached_sql]] = k[reached_sql]
        reached_opp = (_ORDER[stage] >= OPP) & (k_opp[lid] == _NEVER)
        k_opp[lid[reached_opp]] = k[reached_opp]
        n_back[act[emit & back]] += 1
        n_return[act[emit & (state == NUR)]] += 1

        going = emit & ~_TERMINAL[nxt]
        act, state, now = act[going], nxt[going], when[going]

    lead, stage, time, k = _in_lead_order(out_lead, out_stage, out_time, out_k, counts)
    return _Events(lead, stage, time, k, counts, k_sql, k_opp)


def _step(
    rng: np.random.Generator, model: dict, leads: _Leads, act: np.ndarray, state: np.ndarray, n_back: np.ndarray, n_return: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One move of every active lead: its next stage (STAY: none), whether that goes back, and the
    days it takes, drawn from the lead's segments, quality and history."""
    m = act.size
    ch, ind, size, svc = leads.channel[act], leads.industry[act], leads.size[act], leads.service[act]
    returned = (n_return[act] > 0) & (state == MQL)
    logit = (
        model["base"][state]
        + model["ch_logit"][state, ch]
        + model["ind_logit"][state, ind]
        + model["size_logit"][state, size]
        + model["svc_logit"][state, svc]
        + model["ae_logit"][state, leads.ae[act]]
        + model["q"][state] * leads.quality[act]
        + _RETURN_LOGIT * returned
    )
    advance = rng.random(m) < 1.0 / (1.0 + np.exp(-logit))
    skip = rng.random(m) < model["skip_p"][state, ch]
    other = (rng.random(m)[:, None] > model["other_cum"][state]).sum(axis=1)
    nxt = np.where(
        advance,
        np.where(skip & (model["skip_to"][state] != STAY), model["skip_to"][state], model["adv_to"][state]),
        model["other_to"][state, np.minimum(other, 3)],
    ).astype(np.int8)

    back = (_ORDER[nxt] >= 0) & (_ORDER[nxt] < _ORDER[state])
    nxt = np.where(back & (n_back[act] >= 1), LOST, nxt).astype(np.int8)
    back &= nxt != LOST
    nxt = np.where((state == NUR) & (nxt == MQL) & (n_return[act] >= 2), STAY, nxt).astype(np.int8)

    days = (
        model["median"][state, nxt]
        * model["ch_dur"][state, ch]
        * model["size_dur"][state, size]
        * model["svc_dur"][state, svc]
        * np.exp(model["sigma"][state] * rng.standard_normal(m))
    )
    return nxt, back, np.where(state == NUR, np.maximum(days, _NURTURE_MIN_DAYS), days)


def _in_lead_order(out_lead: list, out_stage: list, out_time: list, out_k: list, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """The events emitted step by step, placed lead by lead in each lead's own order (k)."""
    lead = np.concatenate(out_lead)
    k = np.concatenate(out_k)
    offsets = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    pos = offsets[lead] + k
    sorted_lead = np.empty_like(lead)
    sorted_stage = np.empty(lead.size, np.int8)
    sorted_time = np.empty(lead.size, np.int64)
    sorted_k = np.empty(lead.size, np.int16)
    sorted_lead[pos] = lead
    sorted_stage[pos] = np.concatenate(out_stage)
    sorted_time[pos] = np.concatenate(out_time)
    sorted_k[pos] = k
    return sorted_lead, sorted_stage, sorted_time, sorted_k


# --------------------------------------------------------------------------- text columns


def _fixed_width(chars: np.ndarray) -> pa.Array:
    """A string array from an (n, width) uint8 matrix of ASCII characters."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + 48).astype(np.uint8)


def _lead_ids(index: np.ndarray, n_leads: int) -> pa.Array:
    width = max(7, len(str(n_leads)))
    chars = np.empty((n_leads, width + 1), np.uint8)
    chars[:, 0] = ord("L")
    chars[:, 1:] = _digits(np.arange(1, n_leads + 1, dtype=np.int64), width)
    return _fixed_width(chars).take(pa.array(index))


def _day_text(days: np.ndarray) -> np.ndarray:
    """(n, 10) ASCII 'YYYY-MM-DD' of epoch days, through a per-day lookup table."""
    first = int(days.min()) if days.size else 0
    span = np.arange(first, (int(days.max()) if days.size else 0) + 1).astype("datetime64[D]")
    day_text = np.frombuffer(np.datetime_as_string(span, unit="D").astype("S10").tobytes(), np.uint8)
    return day_text.reshape(-1, 10)[days - first]


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """'YYYY-MM-DD HH:MM:SS' text of epoch seconds, through per-day and per-second lookup tables."""
    days, rem = np.divmod(seconds, _S)
    clock = np.arange(_S, dtype=np.int64)
    clock_text = np.empty((_S, 8), np.uint8)
    clock_text[:, 0:2] = _digits(clock // 3600, 2)
    clock_text[:, 3:5] = _digits(clock // 60 % 60, 2)
    clock_text[:, 6:8] = _digits(clock % 60, 2)
    clock_text[:, [2, 5]] = ord(":")
    chars = np.empty((seconds.size, 19), np.uint8)
    chars[:, :10] = _day_text(days)
    chars[:, 10] = ord(" ")
    chars[:, 11:] = clock_text[rem]
    return _fixed_width(chars)


def _labels(words: tuple[str, ...], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(words, pa.string()).take(pa.array(index, mask=mask))


def _reason_vocabulary() -> tuple[list[str], np.ndarray]:
    vocab: dict[str, int] = {}
    max_variants = max(len(v) for v in _REASON_TEXTS)
    ids = np.zeros((len(_REASON_TEXTS), max_variants, len(_CASE_STYLES_P)), np.int16)
    for c, variants in enumerate(_REASON_TEXTS):
        for v in range(max_variants):
            text = variants[v % len(variants)]
            for s, styled in enumerate((text, text.lower(), text.capitalize(), text.upper())):
                ids[c, v, s] = vocab.setdefault(styled, len(vocab))
    return list(vocab), ids


def _reasons(rng: np.random.Generator, events: _Events, leads: _Leads) -> pa.Array:
    stage = events.stage
    exit_rows = np.flatnonzero(stage >= NUR)
    prev = stage[exit_rows - 1]
    outcome = stage[exit_rows]
    group = np.select(
        [
            (outcome == DQ) & (prev <= MQL),
            outcome == DQ,
            outcome == RR,
            (outcome == LOST) & (prev == SQL),
            outcome == LOST,
        ],
        [0, 1, 2, 3, 4],
        5,
    )
    lead = events.lead[exit_rows]
    weights = np.array(_REASON_WEIGHTS)[group]
    weights[:, _COMPLIANCE] *= np.where(np.array(REGULATED)[leads.industry[lead]], 3.0, 1.0)
    weights[:, _IN_HOUSE] *= np.where(np.isin(leads.service[lead], _IN_HOUSE_LINES), 1.8, 1.0)
    cum = np.cumsum(weights, axis=1)
    category = (rng.random(exit_rows.size)[:, None] * cum[:, -1:] > cum).sum(axis=1)
    n_variants = np.array([len(v) for v in _REASON_TEXTS])[category]
    variant = np.minimum((rng.random(exit_rows.size) * n_variants).astype(np.int64), n_variants - 1)
    style = _pick(rng, exit_rows.size, _CASE_STYLES_P, np.int64)
    vocab, ids = _reason_vocabulary()
    index = np.zeros(stage.size, np.int16)
    missing = np.ones(stage.size, bool)
    index[exit_rows] = ids[category, variant, style]
    missing[exit_rows] = rng.random(exit_rows.size) < _MISSING_REASON_P
    return _labels(tuple(vocab), index, missing)


def _to_columns(rng: np.random.Generator, events: _Events, leads: _Leads) -> dict[str, pa.Array]:
    lead = events.lead
    is_ae = events.k >= events.k_sql[lead]
    owner = np.where(is_ae, len(SDRS) + leads.ae[lead], leads.sdr[lead])
    no_amount = events.k < events.k_opp[lead]
    activity = _last_activity(rng.spawn(1)[0], events)  # a stream of its own: the other columns stay as they were
    response = _first_response(rng.spawn(1)[0], events, leads)  # the next stream spawned: activity's stays as it was
    role, makers = _buyers(rng.spawn(1)[0], events)
    amount = _amounts(rng.spawn(1)[0], events, leads)  # a stream of its own, spawned last: the columns above stay as they were
    close = _close_dates(rng.spawn(1)[0], events)  # the streams spawned after amount's: the columns above stay as they were
    currency = _currencies(rng.spawn(1)[0], leads.region[: events.counts.size])[lead]
    usd_per_unit = np.array([USD_PER_UNIT[c] for c in CURRENCIES])[currency]
    amount = (np.maximum(np.rint(amount / usd_per_unit / 1000.0), 1) * 1000).astype(np.int64)
    has_amount = np.flatnonzero(~no_amount)
    amount_row = pa.array(np.cumsum(~no_amount) - 1, mask=no_amount)
    return {
        "lead_id": _lead_ids(lead, leads.created.size),
        "stage": _labels(STAGE_LABELS, events.stage),
        "entered_at": _timestamps(events.time),
        "reason": _reasons(rng, events, leads),
        "channel": _labels(CHANNELS, leads.channel[lead]),
        "industry": _labels(INDUSTRIES, leads.industry[lead]),
        "service_line": _labels(SERVICE_LINES, leads.service[lead]),
        "region": _labels(REGIONS, leads.region[lead]),
        "company_size": _labels(COMPANY_SIZES, leads.size[lead]),
        "owner": _labels(SDRS + AES, owner),
        "buyer_role": role,
        "decision_makers": makers,
        "lead_score": pa.array(leads.score).cast(pa.string()).take(pa.array(lead)),
        "last_activity_at": activity,
        "first_response_at": response,
        "amount": pa.array(amount).cast(pa.string()).take(pa.array(np.arange(lead.size), mask=no_amount)),
        "close_date": _fixed_width(_day_text(close[has_amount])).take(amount_row),
        "currency": _labels(CURRENCIES, currency, no_amount),
    }


AMOUNT_REVISION_P = 0.35  # a deal's later stage moves (proposal, the close) that revise its amount
_REVISIONS = np.array([0.6, 0.8, 0.9, 1.1, 1.25, 1.5])  # the factor of a revision


def _amounts(rng: np.random.Generator, events: _Events, leads: _Leads) -> np.ndarray:
    """Per event row, its deal's amount then: the lead's amount at opportunity, revised on a share of the
    later rows (scoped down or up at proposal, negotiated at the close) by a factor that compounds along
    the deal, rounded to thousands. Rows before opportunity get a value too; the caller blanks them."""
    lead = events.lead
    revised = (events.k > events.k_opp[lead]) & (rng.random(lead.size) < AMOUNT_REVISION_P)
    factor = np.where(revised, _REVISIONS[rng.integers(0, _REVISIONS.size, lead.size)], 1.0)
    # The product of the lead's factors so far, multiplied row after row (k = the row's place in its
    # lead): exp() of summed logs rounds differently on CPUs with other vector units, and an amount that
    # lands on half a thousand (5,000 x 1.5) would then round to another thousand on another machine.
    by_place = np.argsort(events.k, kind="stable")
    ends = np.searchsorted(events.k[by_place], np.arange(int(events.k.max(initial=0)) + 2))
    running = factor.copy()
    for place in range(1, ends.size - 1):
        at = by_place[ends[place]:ends[place + 1]]
        running[at] = running[at - 1] * factor[at]
    amount = leads.amount[lead] * running
    return (np.maximum(np.rint(amount / 1000.0), 1) * 1000).astype(np.int64)


# Fixed exchange rates: US dollars per unit of each currency a deal can be in. A deal's amount is drawn
# in USD and written in its currency at these rates, rounded to thousands.
USD_PER_UNIT = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
CURRENCIES = tuple(USD_PER_UNIT)
REGION_CURRENCY_MIX = {"EMEA": {"EUR": 0.75, "GBP": 0.25}}  # the share of a region's deals per currency; else USD


def _currencies(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Per lead, the index in CURRENCIES of its deal's currency, drawn from its region's mix."""
    mix = np.zeros((len(REGIONS), len(CURRENCIES)))
    mix[:, CURRENCIES.index("USD")] = 1.0
    for name, shares in REGION_CURRENCY_MIX.items():
        mix[REGIONS.index(name)] = [shares.get(c, 0.0) for c in CURRENCIES]
    cum = np.cumsum(mix / mix.sum(axis=1, keepdims=True), axis=1)[region]
    return np.minimum((rng.random(region.size)[:, None] >= cum).sum(axis=1), len(CURRENCIES) - 1).astype(np.int8)


CLOSE_PUSH_P = 0.25  # a deal's later stage moves that push its expected close out, besides the overdue ones
CLOSE_PULL_P = 0.05  # and those that pull it in


def _close_dates(rng: np.random.Generator, events: _Events) -> np.ndarray:
    """Per event row, its deal's expected close date then, in days since 1970: set at opportunity 30 to
    120 days out (median about 58), then on each later move pushed out 7 to 60 days (on CLOSE_PUSH_P of
    the moves, and always when the move comes after it: the date slipped), pulled in 1 to 14 days but
    not before the move (CLOSE_PULL_P) or kept; the row that closes the deal (won, lost, disqualified)
    sets it to its own date. Rows before opportunity get 0; the caller blanks them."""
    lead = events.lead
    step = events.k.astype(np.int64) - events.k_opp[lead]
    rows = np.flatnonzero(step >= 0)  # a lead's rows from opportunity on are consecutive
    step, day = step[rows], events.time[rows] // _S
    n = rows.size
    close = day + np.rint(30.0 + 90.0 * rng.beta(2.0, 4.0, n)).astype(np.int64)
    push = np.rint(7.0 + 53.0 * rng.beta(1.3, 2.5, n)).astype(np.int64)
    pull = rng.integers(1, 15, n)
    u = rng.random(n)
    later = np.flatnonzero(step > 0)
    later = later[np.argsort(step[later], kind="stable")]
    bounds = np.searchsorted(step[later], np.arange(1, (int(step.max()) if n else 0) + 2))
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # one pass per move since opportunity, all deals together
        r = later[lo:hi]
        prev, today = close[r - 1], day[r]
        close[r] = np.select(
            [prev < today, u[r] < CLOSE_PUSH_P, u[r] < CLOSE_PUSH_P + CLOSE_PULL_P],
            [today + push[r], prev + push[r], np.maximum(prev - pull[r], today)],
            prev,
        )
    closing = np.isin(events.stage[rows], (WON, LOST, DQ, RR))
    close[closing] = day[closing]
    full = np.zeros(events.lead.size, np.int64)
    full[rows] = close
    return full


LAST_ACTIVITY_P = 0.7  # leads whose CRM records a last activity; the others leave it empty


def _last_activity(rng: np.random.Generator, events: _Events) -> pa.Array:
    """Per event row, its lead's last activity (the same on every row of a lead): a closed lead's is its
    last event; an open lead's falls between its last event and the end of the data, so some stalled
    leads are being worked and some are quiet. 30 % of leads have none."""
    n_leads = events.counts.size
    last = np.full(n_leads, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last, events.lead, events.time.astype(np.int64))
    final_stage = np.full(n_leads, -1, np.int64)
    offsets = np.cumsum(events.counts, dtype=np.int64) - 1
    final_stage[events.lead[offsets]] = events.stage[offsets]
    closed = np.isin(final_stage, (WON, DQ, RR, LOST))
    end = int(events.time.max()) if events.time.size else 0
    when = last + np.where(closed, 0, rng.random(n_leads) * (end - last)).astype(np.int64)
    missing = rng.random(n_leads) >= LAST_ACTIVITY_P
    return _timestamps(when).take(pa.array(events.lead, mask=missing[events.lead]))


# Hours from MQL to the first response, as a log-normal median per channel for leads that went on to
# SQL and for those that did not: a fast answer goes with conversion, and inbound (a form just filled
# in) decays hardest, as the qualification playbook says. Drawn after the history, conditioned on it.
_RESPONSE_MEDIAN_HOURS = {"inbound": (1.0, 6.0), "self-identified": (1.5, 6.0), "referral": (3.0, 8.0),
                          "events": (6.0, 10.0), "outbound": (8.0, 12.0), "partners": (6.0, 10.0)}
NEVER_ANSWERED_P = 0.08  # MQLs that did not go on to SQL and were never answered


def _first_response(rng: np.random.Generator, events: _Events, leads: _Leads) -> pa.Array:
    """Per event row, its lead's first response (the same on every row of a lead): the time it reached
    MQL (a lead that skips MQL reaches it with its first later stage) plus a
    log-normal delay (sigma 1.2) whose median depends on the channel and on whether the lead reached
    SQL; empty for leads that never reached MQL, were never answered, or whose answer falls after the
    data ends."""
    n_leads = events.counts.size
    mql_at = np.full(n_leads, np.iinfo(np.int64).max, np.int64)  # reached MQL: its first event of MQL or later
    qualified = (events.stage >= MQL) & (events.stage <= WON)
    np.minimum.at(mql_at, events.lead[qualified], events.time[qualified].astype(np.int64))
    to_sql = np.zeros(n_leads, bool)
    to_sql[events.lead[events.stage == SQL]] = True
    medians = np.array([_RESPONSE_MEDIAN_HOURS[c] for c in CHANNELS])[leads.channel[:n_leads]]
    median = np.where(to_sql, medians[:, 0], medians[:, 1])
    delay = (median * np.exp(rng.normal(0.0, 1.2, n_leads)) * 3600).astype(np.int64)
    end = int(events.time.max()) if events.time.size else 0
    when = mql_at + delay
    missing = (mql_at == np.iinfo(np.int64).max) | (when > end) | (~to_sql & (rng.random(n_leads) < NEVER_ANSWERED_P))
    when = np.where(missing, 0, when)
    return _timestamps(when).take(pa.array(events.lead, mask=missing[events.lead]))


BUYER_ROLES = ("operations lead", "procurement", "C-level", "IT", "finance", "other")
# The main contact's role by how far the lead went (lead, mql, sql, opportunity, proposal, won): deals
# that close are led by operations and the C-level; IT and "other" contacts stall early. Drawn after
# the history, conditioned on it, as the BPO playbook says fit depends on the contact's role.
_ROLE_WEIGHTS = np.array([
    [2, 1, 1, 3, 1, 4],
    [3, 2, 1, 3, 1, 3],
    [4, 2, 2, 2, 1, 2],
    [5, 3, 3, 1, 2, 1],
    [5, 3, 4, 1, 2, 1],
    [6, 2, 5, 1, 2, 1],
], float)
NO_ROLE_P = 0.25  # leads whose CRM records no contact role


def _buyers(rng: np.random.Generator, events: _Events) -> tuple[pa.Array, pa.Array]:
    """Per event row, its lead's buyer role and number of decision makers engaged (1 + Poisson of a
    mean growing with the furthest funnel stage reached: a won deal has had about 3); both empty for
    25 % of leads."""
    n_leads = events.counts.size
    furthest = np.zeros(n_leads, np.int64)
    funnel = events.stage <= WON
    np.maximum.at(furthest, events.lead[funnel], events.stage[funnel].astype(np.int64))
    cum = np.cumsum(_ROLE_WEIGHTS[furthest], axis=1)
    role = (rng.random(n_leads)[:, None] * cum[:, -1:] > cum).sum(axis=1)
    makers = 1 + rng.poisson(0.2 + 0.4 * furthest)
    missing = (rng.random(n_leads) < NO_ROLE_P)[events.lead]
    row_role, row_makers = role[events.lead], makers[events.lead]
    return _labels(BUYER_ROLES, row_role, missing), pa.array(row_makers, mask=missing).cast(pa.string())


# --------------------------------------------------------------------------- dirt


def _dirt_counts(n_rows: int) -> dict[str, int]:
    return {kind: max(floor, round(rate * n_rows)) for kind, (rate, floor) in _DIRT_RATES.items()}


def _add_dirt(
    rng: np.random.Generator, columns: dict[str, pa.Array], events: _Events
) -> tuple[pa.Table, dict[str, int], np.ndarray]:
    """Add and alter rows, each kind on rows of distinct leads, added rows right after their base row.

    Consumes `columns` (emptied as the dirty table is built, to keep one copy in memory).
    """
    n = events.lead.size
    planned = _dirt_counts(n)
    total = sum(planned.values())
    n_leads = events.counts.size
    if total > n_leads:
        raise ValueError(f"too little data to make dirty: {n} rows of {n_leads} leads, {total} needed")
    picked_leads = rng.choice(n_leads, size=total, replace=False)
    offsets = np.concatenate(([0], np.cumsum(events.counts, dtype=np.int64)))
    base = offsets[picked_leads] + (rng.random(total) * events.counts[picked_leads]).astype(np.int64)
    bases: dict[str, np.ndarray] = {}
    start = 0
    for kind, count in planned.items():
        bases[kind] = np.sort(base[start : start + count])
        start += count

    messy = bases["messy_label"]
    styles = rng.integers(0, 3, messy.size)
    messy_text = [_messy(label, int(s)) for label, s in zip(columns["stage"].take(pa.array(messy)).to_pylist(), styles)]
    index = np.arange(n, dtype=np.int64)
    index[messy] = n + np.arange(messy.size)
    columns["stage"] = pa.concat_arrays([columns["stage"], pa.array(messy_text, pa.string())]).take(pa.array(index))

    added_base = [bases[kind] for kind in _ADDED_KINDS]
    added = [pa.table({name: col.take(pa.array(rows)) for name, col in columns.items()}) for rows in added_base]
    for kind, part in zip(_ADDED_KINDS, added):
        size = part.num_rows
        stamps = part.column("entered_at").to_pylist()
        if kind == "unknown_stage":
            part = part.set_column(1, "stage", _labels(UNKNOWN_STAGE_LABELS, rng.integers(0, 3, size)))
        elif kind == "unparseable_timestamp":
            bad = _labels(UNPARSEABLE_TIMESTAMPS, rng.integers(0, len(UNPARSEABLE_TIMESTAMPS), size))
            part = part.set_column(2, "entered_at", bad)
        elif kind == "future_timestamp":
            future = ["2099" + s[4:].replace("-02-29", "-02-28") for s in stamps]
            part = part.set_column(2, "entered_at", pa.array(future, pa.string()))
        elif kind == "before_1990":
            part = part.set_column(2, "entered_at", pa.array(["1970-01-01" + s[10:] for s in stamps], pa.string()))
        elif kind == "missing_lead_id":
            part = part.set_column(0, "lead_id", pa.nulls(size, pa.string()))
        added[_ADDED_KINDS.index(kind)] = part

    added_base_all = np.concatenate(added_base)
    sorted_bases = np.sort(added_base_all)
    clean_pos = np.arange(n) + np.searchsorted(sorted_bases, np.arange(n))
    added_pos = added_base_all + 1 + np.searchsorted(sorted_bases, added_base_all)
    order = np.empty(n + added_base_all.size, np.int64)
    order[clean_pos] = np.arange(n)
    order[added_pos] = n + np.arange(added_base_all.size)
    order_array = pa.array(order)
    dirty = {}
    for name in COLUMNS:
        pool = pa.concat_arrays([columns.pop(name)] + [part.column(name).combine_chunks() for part in added])
        dirty[name] = pool.take(order_array)
        del pool
        pa.default_memory_pool().release_unused()
    counts = {kind: int(bases[kind].size) for kind in planned if kind != "raw_line"}
    return pa.table(dirty), counts, clean_pos[bases["raw_line"]]


def _messy(label: str, style: int) -> str:
    if style == 0:
        return f"  {label.lower()} "
    if style == 1:
        return label.upper()
    return " " + label.replace(" ", "  ") + "  "


def _row_values(table: pa.Table, rows: np.ndarray) -> list[dict[str, str | None]]:
    return table.take(pa.array(rows, pa.int64())).to_pylist()


def _wrong_column_lines(table: pa.Table, rows: np.ndarray) -> list[bytes]:
    lines = []
    for i, row in enumerate(_row_values(table, rows)):
        values = ["" if row[c] is None else row[c] for c in COLUMNS]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if i % 3 == 0:
            writer.writerow(values + ["see notes"])
        elif i % 3 == 1:
            writer.writerow(values[:-1])
        else:
            first, _, last = values[9].partition(" ")
            values[9] = f"{last}, {first}"
            buf.write(",".join(values) + "\n")
        lines.append(buf.getvalue().encode("utf-8"))
    return lines


def _malformed_json_lines(table: pa.Table, rows: np.ndarray) -> list[bytes]:
    lines = []
    for i, row in enumerate(_row_values(table, rows)):
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        if i % 3 == 0:
            text = text[: len(text) // 2]
        elif i % 3 == 1:
            text = text.replace('"', "'")
        else:
            text = text.replace(',"stage"', ' "stage"', 1)
        lines.append((text + "\n").encode("utf-8"))
    return lines


def _splice_lines(src: Path, sink, inserts: list[tuple[int, bytes]]) -> None:
    """Copy src to sink, writing each extra line after the given (0-based) line of src."""
    inserts = sorted(inserts, key=lambda x: x[0])
    i = 0
    lines_before = 0
    with open(src, "rb") as f:
        while block := f.read(1 << 24):
            newlines = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
            view = memoryview(block)
            start = 0
            while i < len(inserts) and inserts[i][0] < lines_before + newlines.size:
                cut = int(newlines[inserts[i][0] - lines_before]) + 1
                sink.write(view[start:cut])
                sink.write(inserts[i][1])
                start = cut
                i += 1
            sink.write(view[start:])
            lines_before += newlines.size
    for _, line in inserts[i:]:
        sink.write(line)
