"""Win rate (docs/metrics.md): of the deals that closed, the share won: won / (won + lost)."""

from __future__ import annotations

from datetime import date

from funnelboard.warehouse.metrics.base import Context, MetricRequest, ratio, reached, week_of
from funnelboard.warehouse.stats import wilson_interval

NO_LOSSES = "no lost deal is recorded"


def win_rate(ctx: Context, req: MetricRequest) -> list[dict]:
    """Win rate: won / (won + lost) of the leads that closed in the period, with its Wilson interval,
    and of the period's new leads closed by as-of (--segment)."""
    req = ctx.resolve(req)
    rows = closes(ctx, req)
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.setdefault(r["segment"], {"won": 0, "lost": 0, "cohort_won": 0, "cohort_lost": 0})
        for k in g:
            g[k] += r[k]
    if req.segment is None and not groups:
        groups["(all)"] = {"won": 0, "lost": 0, "cohort_won": 0, "cohort_lost": 0}
    note = None if losses_recorded(ctx) else ctx.config.unnamed_losses() or NO_LOSSES
    out = []
    for value, g in sorted(groups.items()):
        rate = None if note else ratio(g["won"], g["won"] + g["lost"])
        closed = g["won"] + g["lost"]
        low, high = (None, None) if note or not closed else wilson_interval(g["won"], closed)
        row = {} if req.segment is None else {req.segment: value}
        row.update({
            "won": g["won"],
            "lost": g["lost"],
            "closed": g["won"] + g["lost"],
            "win_rate": rate,
            "wilson_low": low,
            "wilson_high": high,
            "too_few": g["won"] + g["lost"] < ctx.config.min_sample,
            "cohort_won": g["cohort_won"],
            "cohort_lost": g["cohort_lost"],
            "cohort_win_rate": None if note else ratio(g["cohort_won"], g["cohort_won"] + g["cohort_lost"]),
            "won_stage": ctx.config.won_stage,
            "lost_outcomes": ", ".join(ctx.config.lost),
            "note": note,
        })
        out.append(row)
    return out


def closes(ctx: Context, req: MetricRequest) -> list[dict]:
    """win_rate.sql's rows for a resolved request: wins and losses per segment value and close week."""
    won = ctx.config.won_stage
    params = {"start": req.start, "end": req.end, "as_of": req.as_of, "lost": list(ctx.config.lost)}
    identifiers = {
        "__first__": reached(ctx.config.stages[0]), "__won__": reached(won), "__won_week__": week_of(won), "__segment__": req.segment,
    }
    return ctx.run_sql("win_rate", req, params, identifiers)


def weekly_closes(ctx: Context, req: MetricRequest) -> dict[date, tuple[int, int]]:
    """(won, lost) per local close week of the request's period (all segment values together)."""
    out: dict[date, tuple[int, int]] = {}
    for r in closes(ctx, req):
        if r["week"] is not None:
            won, lost = out.get(r["week"], (0, 0))
            out[r["week"]] = (won + r["won"], lost + r["lost"])
    return out


def losses_recorded(ctx: Context) -> bool:
    """Whether the warehouse holds any spell of a lost outcome: without one a win rate would be a
    100 % that only says the data records no losses."""
    lost = list(ctx.config.lost)
    if not lost:
        return False

    def any_loss() -> bool:
        rows = ctx.gateway.query("select exists (select 1 from fct_spells where list_contains($lost, stage))", {"lost": lost}).rows
        return bool(rows[0][0])

    return ctx.per_file(("losses_recorded", tuple(lost)), any_loss)
