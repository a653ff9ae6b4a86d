"""Spells (docs/metrics.md, `spells`): the list behind a mark that counts spells, one row per spell.

The stage-accounting bars, the disqualifier bars and points, the duration histogram's bars and the
survival curves' points count spells, not leads; `spells` lists exactly the spells such a mark
counts. Every spell entered in the period (and by as_of) is in the list; the mark's filters narrow
it. They are not lead attributes, so they come as `--filter KEY=VALUE` (or the address's
`?KEY=VALUE`) beside the segment filters, each checked here and bound as a value:

- `stage` (repeatable; also `--stage`): the spell's funnel stage; `--outcome` / `?outcome=`: a
  spell in that outcome (with `stage`, either);
- `next`: what came next by as_of, as stage_accounting splits it (advanced, exited, regressed,
  open; returned and terminal for later spells; closed: anything but open); `left_to`: the next
  spell's stage or outcome;
- `--reason` / `?reason=`, `stage_left`, `week`: the disqualifier chart's reason (recorded by
  as_of, '(no reason recorded)' for none), latest funnel stage before the spell ('(none)') and
  local ISO week entered (its Monday);
- `other_than_top`: N, the disqualifier trend's "Other reasons": exits (spells in an outcome) whose
  outcome and reason are not among the N with the most exits in the period under the same lead
  filters (disqualifiers.top_reasons, the trend's own ranking);
- `min_days`, `max_days`, `longer_than`, `step`: the length (calendar or business days, completed
  spells by duration, open ones by age at as_of) in a histogram bin [min_days, max_days) or over t
  days (survival's at_risk), by the chart's own rounding rule when the chart's `step` (bin width or
  grid step) is given.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

from sqlglot import exp

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.warehouse.build import attribute_columns
from funnelboard.warehouse.lists import EVERYTHING, Slice, cut, ordering, with_total
from funnelboard.warehouse.metrics.base import OWNER, Context, MetricRequest, amount_columns, business_day_clock, period_params
from funnelboard.warehouse.metrics.disqualifiers import disqualifiers, top_reasons

STAGE = "stage"
NUMBERS = ("min_days", "max_days", "longer_than", "step")
KEYS = ("next", "left_to", "stage_left", "week", "other_than_top", *NUMBERS)  # the filter keys besides stage and the segments
NEXT_KINDS = ("advanced", "exited", "regressed", "returned", "terminal", "open", "closed")
NO_REASON = "(no reason recorded)"
NO_STAGE = "(none)"
SLACK = 1e-6  # the time charts' GRID_SLACK (warehouse/metrics/time.py)


def check(key: str, value: str, config: FunnelConfig) -> str:
    """A spell filter's value as the metric binds it, or a UserError naming the problem."""
    if key == "next":
        if value not in NEXT_KINDS:
            raise UserError(f"next '{value}' is not one of {', '.join(NEXT_KINDS)}.")
    elif key == "left_to":
        if value not in (*config.stages, *config.outcomes):
            raise UserError(f"left_to '{value}' is not a stage or outcome of this funnel ({', '.join((*config.stages, *config.outcomes))}).")
    elif key == "stage_left":
        if value not in (*config.stages, NO_STAGE):
            raise UserError(f"stage_left '{value}' is not a stage of this funnel or {NO_STAGE} ({', '.join(config.stages)}).")
    elif key == "week":
        try:
            date.fromisoformat(value)
        except ValueError:
            raise UserError(f"week '{value}' is not a date (YYYY-MM-DD).") from None
    elif key == "other_than_top":
        if not (value.isascii() and value.isdigit() and 0 < int(value) <= 1000):
            raise UserError(f"other_than_top '{value}' is not a whole number of reasons from 1 to 1000.")
    elif key in NUMBERS:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0 or (key == "step" and number == 0):
            need = "a positive number of days" if key == "step" else "a number of days, 0 or more"
            raise UserError(f"{key} '{value}' is not {need}.")
    else:
        raise UserError(f"'{key}' is not a spell filter ({', '.join(KEYS)}).")
    return value


def _split(ctx: Context, req: MetricRequest) -> tuple[MetricRequest, dict]:
    """The request without the spell filters (segment filters left), and the spell filters' values."""
    cfg = ctx.config
    stages = [v for c, v in req.filters if c == STAGE] + ([req.stage] if req.stage else [])
    for stage in stages:
        if stage not in cfg.stages:
            raise UserError(f"unknown stage '{stage}'; expected one of {', '.join(cfg.stages)}.")
    if req.outcome is not None and req.outcome not in cfg.outcomes:
        raise UserError(f"unknown outcome '{req.outcome}'; expected one of {', '.join(cfg.outcomes)}.")
    values: dict = {key: None for key in KEYS}
    for c, v in req.filters:
        if c in KEYS:
            if values[c] is not None:
                raise UserError(f"{c} is given twice; a spell list takes one value of it.")
            values[c] = check(c, v, cfg)
    for key in NUMBERS:
        values[key] = None if values[key] is None else float(values[key])
    if values["step"] is None and values["min_days"] is not None and values["max_days"] is not None:
        values["step"] = values["max_days"] - values["min_days"] or None  # a bin's own width
    chosen = [*stages, *([req.outcome] if req.outcome else [])]
    rest = replace(req, filters=tuple((c, v) for c, v in req.filters if c != STAGE and c not in KEYS), stage=None, outcome=None, reason=None)
    top = None
    if values["other_than_top"] is not None:  # "Other reasons": exits outside the period's top N
        top = [list(pair) for pair in top_reasons(disqualifiers(ctx, rest), int(values["other_than_top"]))]
        chosen = chosen or list(cfg.outcomes)
    params = {
        "spell_stages": list(dict.fromkeys(chosen)) or None,
        "next_kind": values["next"],
        "left_to": values["left_to"],
        "reason": req.reason,
        "stage_left": values["stage_left"],
        "week": values["week"],
        "not_reasons": top,
        **{k: values[k] for k in NUMBERS},
        "slack": SLACK,
    }
    return rest, params


def _spells_query(ctx: Context, req: MetricRequest) -> tuple[exp.Select, dict]:
    """The filtered spells as a subquery `s`, and its values."""
    req, marks = _split(ctx, req)
    req = ctx.resolve(req)
    params = {
        **period_params(req),
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
        **marks,
    }
    tree, bound = ctx.compile("spells", req, params, {})
    return exp.select().from_(tree.subquery("s")), bound


def spell_columns(ctx: Context) -> dict[str, exp.Expression]:
    """The list's output columns (the sort allow-list): the spell, then owner, the other segments, amount."""
    columns: dict[str, exp.Expression] = {
        name: exp.column(name, table="s")
        for name in ("lead_id", "spell_no", "stage", "entered_at", "left_at", "left_to", "next_kind", "reason", "stage_left", "duration_days")
    }
    has_owner = OWNER in attribute_columns(ctx.config)
    columns[OWNER] = exp.column(OWNER, table="s", quoted=True) if has_owner else exp.cast(exp.null(), "varchar")
    columns.update({c: exp.column(c, table="s", quoted=True) for c in ctx.config.segments if c != OWNER})
    columns.update(amount_columns(ctx, "s"))
    return columns


SPELLS_ORDER = [("entered_at", False), ("lead_id", False), ("spell_no", False)]


def spells_query(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING):
    """The spell list's query for a window (by entered_at, lead, spell), its values and row shaper."""
    select, params = _spells_query(ctx, req)
    columns = spell_columns(ctx)
    select = select.select(*(exp.alias_(e, name, quoted=True) for name, e in columns.items()), copy=False)
    select = select.order_by(*ordering(sl, columns, SPELLS_ORDER), copy=False)
    cut(select, sl, params)
    return select, params, dict


def spells_page(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING) -> tuple[list[dict], int]:
    """The spells of the window and the list's length."""
    select, params, _shape = spells_query(ctx, req, sl)
    rows = ctx.run_tree("spells", select, params)
    return with_total(rows, sl, lambda: spells_count(ctx, req)["spells"])


def spells(ctx: Context, req: MetricRequest) -> list[dict]:
    """The spells behind a spell-level mark: every spell entered in the period with where it went, its
    reason and length (--business-days), narrowed by --stage, --outcome, --reason and --filter
    next=, left_to=, stage_left=, week=, min_days=, max_days=, longer_than=, step=."""
    return spells_page(ctx, req)[0]


def spells_count(ctx: Context, req: MetricRequest) -> dict:
    """How many spells the list has, and of how many leads."""
    select, params = _spells_query(ctx, req)
    select = select.select(
        exp.alias_(exp.Count(this=exp.Star()), "spells"),
        exp.alias_(exp.Count(this=exp.Distinct(expressions=[exp.column("lead_id", table="s")])), "leads"),
        copy=False,
    )
    return ctx.run_tree("spells_count", select, params)[0]
