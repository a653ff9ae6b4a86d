"""Hypothesis strategies: small, nasty event logs and funnel.toml variants for the oracle and the SQL.

``event_logs()`` draws ``(events, leads)``: 1-12 leads with 1-10 events each, on a grid of whole
minutes over about 120 days of 2024 so that ties happen, with skipped stages, re-entries, backward
moves, exits with and without reasons, two events at one instant (the same stage twice too), open
leads, leads that start in an outcome, attributes that change along a journey and optional leads
rows that override them. Every ``(file_id, source_line)`` is unique and file order is shuffled
against time order, as in a real export.

``config_variants()`` draws FunnelConfig objects through ``funnelboard.core.config.load_config`` on
small funnel.toml texts.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st

from funnelboard.core.config import FunnelConfig, load_config
from tests.oracle.oracle import Event, LeadRow

DEFAULT = load_config(None)
STAGES = DEFAULT.stages            # lead, mql, sql, opportunity, proposal, won
OUTCOMES = DEFAULT.outcomes        # nurture, disqualified, rerouted, lost
BASE = datetime(2024, 1, 1)
HORIZON_MINUTES = 120 * 24 * 60
EVENT_FILES = (1, 2)
LEADS_FILE = 10

CHANNELS = ("inbound", "outbound", "referral", "events", "partners")
OWNERS = ("ana", "ben", "chloe")
SCORES = ("0", "5", "9", "10", "42", "55", "90", "99", "100")
AMOUNTS = ("1000", "2500.5", "120000")
# close dates around the log's quarters and month ends, deal currencies, CRM forecast categories as CRMs write them
CLOSE_DATES = ("2024-01-20", "2024-02-29", "2024-03-31", "2024-04-01", "2024-06-30T12:00:00Z")
CURRENCIES = ("USD", "EUR", "GBP")
CATEGORIES = ("Commit", "BEST_CASE", "pipeline", "Omit", "BestCase", "Forecast")
UNMAPPED_REASONS = ("Moved to Mars", "chose  a freelancer", "Other")

# Gaps between two events of a lead, in minutes: 0 makes a tie; the rest spread journeys out.
GAPS = st.one_of(
    st.sampled_from([0, 0, 1, 60, 24 * 60, 7 * 24 * 60]),
    st.integers(min_value=0, max_value=30 * 24 * 60),
)


@st.composite
def odd_spelling(draw, text: str) -> str:
    """The same text in odd case and spacing (still the same key for normalise_label)."""
    words = text.split(" ")
    cased = [draw(st.sampled_from([w, w.upper(), w.title(), w.lower()])) for w in words]
    spaces = [draw(st.sampled_from([" ", "  ", "\t"])) for _ in words[1:]]
    out = cased[0]
    for space, word in zip(spaces, cased[1:]):
        out += space + word
    if draw(st.booleans()):
        out = draw(st.sampled_from(["  ", " ", "\t"])) + out + draw(st.sampled_from(["", " ", "  "]))
    return out


def reasons() -> st.SearchStrategy[str | None]:
    mapped = st.sampled_from(sorted(DEFAULT.reasons)).flatmap(odd_spelling)
    return st.one_of(st.none(), st.just(""), mapped, st.sampled_from(UNMAPPED_REASONS))


def attribute_values() -> st.SearchStrategy[dict[str, str | None]]:
    return st.fixed_dictionaries({
        "channel": st.one_of(st.none(), st.sampled_from(CHANNELS)),
        "owner": st.one_of(st.none(), st.sampled_from(OWNERS)),
        "lead_score": st.one_of(st.none(), st.sampled_from(SCORES)),
        "amount": st.one_of(st.none(), st.sampled_from(AMOUNTS)),
        "close_date": st.one_of(st.none(), st.sampled_from(CLOSE_DATES)),
        "currency": st.one_of(st.none(), st.sampled_from(CURRENCIES)),
        "forecast_category": st.one_of(st.none(), st.sampled_from(CATEGORIES)),
    })


MOVES = ("next", "next", "next", "skip", "back", "same", "outcome", "outcome", "back_to_mql", "any")


def next_stage(move: str, current: str, pick: str) -> str:
    """The stage after `current` for one kind of move (`pick` is a random stage for 'any')."""
    if current in OUTCOMES:
        # From an outcome: nurture comes back to mql, anything else re-enters somewhere.
        return "mql" if move in ("next", "back_to_mql") else pick
    i = STAGES.index(current)
    if move == "next":
        return STAGES[min(i + 1, len(STAGES) - 1)]
    if move == "skip":
        return STAGES[min(i + 2, len(STAGES) - 1)]
    if move == "back":
        return STAGES[max(i - 1, 0)]
    if move == "same":
        return current
    if move == "outcome":
        return pick if pick in OUTCOMES else "nurture"
    if move == "back_to_mql":
        return "mql"
    return pick


@st.composite
def journey(draw, lead_id: str) -> list[tuple]:
    """(lead_id, stage, minute, reason, attrs) tuples of one lead, in time order."""
    n_events = draw(st.integers(min_value=1, max_value=10))
    first = draw(st.sampled_from(["lead"] * 6 + ["mql", "sql", "nurture", "disqualified"]))
    minute = draw(st.integers(min_value=0, max_value=HORIZON_MINUTES // 60)) * 60
    minute += draw(st.sampled_from([0, 0, 1, 30]))
    attrs = draw(attribute_values())
    stage = first
    rows = []
    for k in range(n_events):
        if k > 0:
            move = draw(st.sampled_from(MOVES))
            stage = next_stage(move, stage, draw(st.sampled_from(STAGES + OUTCOMES)))
            minute += draw(GAPS)
            if draw(st.integers(0, 3)) == 0:  # attributes change along the journey
                attrs = {**attrs, **draw(attribute_values())}
        is_exit = stage in OUTCOMES
        reason = draw(reasons()) if is_exit or draw(st.integers(0, 9)) == 0 else None
        rows.append((lead_id, stage, min(minute, HORIZON_MINUTES), reason, dict(attrs)))
    return rows


@st.composite
def event_logs(draw, max_leads: int = 12) -> tuple[list[Event], list[LeadRow]]:
    n_leads = draw(st.integers(min_value=1, max_value=max_leads))
    lead_ids = [f"L{i:02d}" for i in range(1, n_leads + 1)]
    rows = [row for lead_id in lead_ids for row in draw(journey(lead_id))]
    # Shuffle file order against time order; source lines are unique (header is line 1).
    order = draw(st.permutations(range(len(rows))))
    events = []
    for line, index in enumerate(order, start=2):
        lead_id, stage, minute, reason, attrs = rows[index]
        events.append(Event(
            lead_id=lead_id, stage=stage, entered_at=BASE + timedelta(minutes=minute), reason=reason,
            file_id=draw(st.sampled_from(EVENT_FILES)), source_line=line, attrs=attrs,
        ))
    leads = []
    line = 2
    extra_ids = [f"X{i:02d}" for i in range(draw(st.integers(0, 1)))]  # a lead with no events
    for lead_id in lead_ids + extra_ids:
        n_rows = draw(st.sampled_from([0, 0, 1, 1, 2])) if lead_id in lead_ids else 1
        for _ in range(n_rows):
            created = draw(st.one_of(
                st.none(), st.integers(0, HORIZON_MINUTES).map(lambda m: BASE + timedelta(minutes=m))
            ))
            attrs = draw(attribute_values())
            leads.append(LeadRow(lead_id=lead_id, created_at=created, file_id=LEADS_FILE, source_line=line,
                                 attrs=attrs))
            line += 1
    # A leads file that dates none of its leads (no created_at, no events under its ids) is refused
    # by the loader: such a file gets one date, on its lead without events.
    if leads and not any(r.created_at is not None or r.lead_id in lead_ids for r in leads):
        leads[-1] = LeadRow(leads[-1].lead_id, BASE + timedelta(days=3), leads[-1].file_id, leads[-1].source_line, leads[-1].attrs)
    return events, leads


# ---------------------------------------------------------------------------------------------
# Config variants
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def config_from_toml(text: str) -> FunnelConfig:
    """load_config on a funnel.toml text (written to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "funnel.toml"
        path.write_text(text, "utf-8")
        (Path(tmp) / RATES_FILE).write_text(RATES, "utf-8")  # read into the config: gone with the folder
        return load_config(path)


def config_text(timezone: str, rule: str, window: int, min_sample: int, sql_sla: float | None, key: tuple[str, str] | None = None,
                sla: str | None = None, pipeline_from: str | None = "opportunity", money: str = "demo") -> str:
    lines = [
        "[funnel]",
        f'timezone = "{timezone}"',
        f'skipped_stages = "{rule}"',
        f"conversion_window_days = {window}",
        f"min_sample = {min_sample}",
    ]
    if sql_sla is not None:
        lines += ["", "[sla_days]", f"sql = {sql_sla}"]
    if sla is not None:  # hours per stage on a clock, inbound with an SLA of its own
        lines += ["", "[sla]", f'clock = "{sla}"', "hours = { mql = 12, lead = 30 }", 'by = "channel"', "hours_by = { inbound = { mql = 4 } }"]
    if key is not None:  # a key rate of the team's own instead of MQL -> SQL
        lines += ["", "[review]", f'key_rate = {{ from = "{key[0]}", to = "{key[1]}", name = "Our rate" }}']
    if pipeline_from != "opportunity" or money != "demo":  # the pipeline from another stage, or (None) every stage before the win
        lines += ["", "[pipeline]", "probability = { sql = 0.1, proposal = 0.5 }", 'close_date = "close_date"', 'deal_currency = "currency"']
        lines += [f'from_stage = "{pipeline_from}"'] if pipeline_from else []
        if money == "crm":  # the CRM's forecast categories; monthly rates (GBP: a fixed rate before its first month)
            lines += ['forecast_category = "forecast_category"', "rates = { GBP = 1.25 }", f'rates_file = "{RATES_FILE}"']
        else:
            lines += ["rates = { EUR = 1.1, GBP = 1.3 }", 'forecast = { sql = "omitted", proposal = "commit" }']
    return "\n".join(lines) + "\n"


def config_variants() -> st.SearchStrategy[FunnelConfig]:
    return st.builds(
        config_text,
        timezone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
        rule=st.sampled_from(["count", "strict"]),
        window=st.sampled_from([0, 7, 30]),
        min_sample=st.sampled_from([2, 30]),
        sql_sla=st.one_of(st.none(), st.sampled_from([3, 10.5])),
        key=st.sampled_from([None, None, ("lead", "sql"), ("sql", "won")]),
        sla=st.sampled_from([None, None, "business", "calendar"]),
        pipeline_from=st.sampled_from(["opportunity", "opportunity", "sql", None]),
        money=st.sampled_from(["demo", "demo", "crm", "fixed"]),
    ).map(config_from_toml)


RATES_FILE = "fx.csv"
RATES = "currency,month,rate\nEUR,2024-01,1.09\nEUR,2024-03,1.12\nGBP,2024-02,1.28\n"


@dataclass(frozen=True)
class Window:
    """A request's period, as_of (None: the latest event) and channel filter, drawn over BASE's 120 days."""

    start: datetime
    end: datetime
    as_of: datetime | None
    filters: dict[str, str]
    closing: str | None = None  # the pipeline's close window


@st.composite
def request_windows(draw) -> Window:
    start = BASE + timedelta(days=draw(st.integers(0, 60)))
    end = start + timedelta(days=draw(st.integers(1, 90)))
    as_of_day = draw(st.one_of(st.none(), st.integers(10, 120)))
    channel = draw(st.one_of(st.none(), st.sampled_from(["referral", "inbound"])))
    as_of = None if as_of_day is None else BASE + timedelta(days=as_of_day, minutes=7)
    closing = draw(st.sampled_from([None, None, "quarter", "month", "2024-02-01:2024-03-31"]))
    return Window(start, end, as_of, {"channel": channel} if channel else {}, closing)
