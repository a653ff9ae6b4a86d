"""Pipeline value of docs/metrics.md computed again from an Oracle's event log, written from the doc.

M1  A deal's values after an event: the latest non-empty amount (a number), close date (the date
    its text begins with), currency (a deal without one is in the reporting currency) and CRM
    forecast category (read case- and underscore-blind; omit, bestcase and forecast are omitted, best
    case and commit) among its events so far,
    in event order (entered_at, stage rank, file, line).
M2  In the pipeline after an event: its stage is a funnel stage from [pipeline] from_stage on (every
    funnel stage without one) before the last, and the deal has an amount. Before a deal's first
    event it is out.
M3  Counted after an event, given a close window [first, last] (days): in the pipeline with a close
    date in it; without a window, in the pipeline. The window of --closing month/quarter/year is the
    calendar one of the period's last local day (for snapshots, the last week end's).
M4  A currency's rate at a moment: 1 for the reporting currency; else the rates file's rate of the
    local month of the last instant before the moment, or of the latest earlier month; else the fixed
    rate. Worth = amount x the rate of the deal's currency then. A figure at a moment is refused when
    any currency a deal ever had in the pipeline (the whole log) has no rate then.
M5  pipeline_changes over [start, end) as of as_of, priced at end: the events with entered_at < end and
    <= as_of. start / end = the worth after the deal's last such event before start / end, when
    counted. Each event in the period: uncounted -> counted is created (out of the pipeline before)
    or pulled_in (in it, its close date outside the window), with the worth after; counted before
    with another worth after is increased / decreased by the difference; counted -> uncounted then
    leaves with the worth after: won (the last stage), lost ([review] lost), pushed_out (still in the
    pipeline) or exited. Per segment value, over the deals counted at the start or the end or with
    an event in the period counted before or after it.
M6  pipeline_snapshot: for each week, at its end (the next local Monday 00:00, or as_of + 1 us when
    that is earlier), the deals counted after their last event before that moment, by the stage of
    that event: how many and their worth at the moment's rates; weighted by [pipeline] probability.
M7  forecast: at the same moments, the counted deals' worth per category (the CRM's when the column
    is configured and set, else [pipeline] forecast of the stage, else pipeline), and closed: the
    events in the week (from its Monday to the moment) that leave the count to the won stage, with
    the worth after. A row per week, segment value seen and category (omitted ... closed).
M8  forecast_moves over [start, end): per deal, its category when counted at start ('(new)' when not)
    against its category when counted at end or, when not, the way out of its last event in the
    period that left the count (closed, lost, pushed out, exited); pairs that differ.
M9  deal_value over [start, end): the events in the period that leave the count to the won stage or a
    lost outcome: per segment value the won and lost deals and their worth after (at end's rates),
    the win rates by count and by value, the average won deal, and the median of the won deals' days
    from the deal's first event into the pipeline (in the whole log) to the win.
"""

from __future__ import annotations

import calendar
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta

from tests.oracle.oracle import Oracle, _number

US = timedelta(microseconds=1)
CATEGORIES = ("omitted", "pipeline", "best case", "commit", "closed")
_EVENTS: dict[int, tuple[Oracle, dict]] = {}


class NoRate(Exception):
    """A currency without a rate: the metric must refuse."""


def _by_lead(oracle: Oracle) -> dict:
    """The oracle's whole log per lead in event order, worked out once per oracle."""
    if id(oracle) not in _EVENTS or _EVENTS[id(oracle)][0] is not oracle:
        _EVENTS[id(oracle)] = (oracle, oracle._events_by_lead(oracle.all_events))
    return _EVENTS[id(oracle)][1]


def _day(text):
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _category(text):
    if not text:
        return None
    key = text.replace("_", " ").strip().lower()
    return {"omit": "omitted", "bestcase": "best case", "forecast": "commit"}.get(key, key)


def moves(oracle: Oracle, lead_id: str, until) -> list[dict]:
    """Per event of the deal with entered_at <= until: its stage, values before and after, in/out."""
    cfg = oracle.config
    first = oracle.stages.index(cfg.pipeline_from) if cfg.pipeline_from else 0
    open_stages = set(oracle.stages[first:-1])
    out, now = [], {"amount": None, "close": None, "currency": None, "category": None}
    was_in = False
    for e in _by_lead(oracle).get(lead_id, []):
        if e.entered_at > until:
            break
        read = {"amount": _number(e.attrs.get(cfg.amount_column)) if cfg.amount_column else None,
                "close": _day(e.attrs.get(cfg.close_date_column)) if cfg.close_date_column else None,
                "currency": e.attrs.get(cfg.deal_currency_column) or None if cfg.deal_currency_column else None,
                "category": _category(e.attrs.get(cfg.forecast_column)) if cfg.forecast_column else None}
        before = dict(now)
        now = {k: (v if v is not None else now[k]) for k, v in read.items()}
        is_in = e.stage in open_stages and now["amount"] is not None
        out.append({"at": e.entered_at, "stage": e.stage, "was_in": was_in, "is_in": is_in, "before": before, "after": dict(now)})
        was_in = is_in
    return out


def window(oracle: Oracle, closing, last_moment):
    """(first, last) days of the close window, or None."""
    if closing in (None, "all"):
        return None
    if ":" in closing:
        a, b = closing.split(":")
        return date.fromisoformat(a), date.fromisoformat(b)
    day = oracle._local(last_moment - US).date()
    months = {"month": (day.month, day.month), "quarter": ((day.month - 1) // 3 * 3 + 1, (day.month - 1) // 3 * 3 + 3), "year": (1, 12)}[closing]
    return date(day.year, months[0], 1), date(day.year, months[1], calendar.monthrange(day.year, months[1])[1])


def rate(oracle: Oracle, currency, moment) -> float:
    cfg = oracle.config
    if currency is None or currency == cfg.currency:
        return 1.0
    month = oracle._local(moment - US).strftime("%Y-%m")
    found = None
    for code, m, r in cfg.monthly_rates:
        if code == currency and m <= month and (found is None or m > found[0]):
            found = (m, r)
    if found:
        return found[1]
    if currency in cfg.fixed_rates:
        return cfg.fixed_rates[currency]
    raise NoRate(currency)


def check_rates(oracle: Oracle, moment) -> None:
    """NoRate when a currency of the log's pipeline has no rate at the moment."""
    for lead in oracle._leads(None):
        for m in moves(oracle, lead, datetime.max):
            if m["was_in"] or m["is_in"]:
                rate(oracle, m["after"]["currency"], moment)


def _counted(m, side, win) -> bool:
    inside = m["is_in"] if side == "after" else m["was_in"]
    close = m[side]["close"]
    return inside and (win is None or (close is not None and win[0] <= close <= win[1]))


def _worth(oracle, m, side, moment) -> float:
    return m[side]["amount"] * rate(oracle, m[side]["currency"], moment)


def _held(ms, moment):
    """The deal's last move before the moment (as_of already applied), or None."""
    before = [m for m in ms if m["at"] < moment]
    return before[-1] if before else None


def _category_of(oracle, m) -> str:
    return m["after"]["category"] or oracle.config.forecast_by_stage.get(m["stage"]) or "pipeline"


def _way_out(oracle, m) -> str:
    return "won" if m["stage"] == oracle.stages[-1] else "lost" if m["stage"] in oracle.config.lost else "pushed_out" if m["is_in"] else "exited"


KINDS = ("created", "pulled_in", "increased", "decreased", "pushed_out", "won", "lost", "exited")


def pipeline_changes(oracle: Oracle, start, end, *, closing=None, segment=None, filters=None) -> list[dict]:
    check_rates(oracle, end)
    win = window(oracle, closing, end)
    groups: dict[str, dict] = {}
    for lead in oracle._leads(filters):
        ms = [m for m in moves(oracle, lead, oracle.as_of) if m["at"] < end]
        s, e = _held(ms, start), _held(ms, end)
        s = s if s and _counted(s, "after", win) else None
        e = e if e and _counted(e, "after", win) else None
        in_period = [m for m in ms if m["at"] >= start and (_counted(m, "before", win) or _counted(m, "after", win))]
        if not (s or e or in_period):
            continue
        g = groups.setdefault(oracle._segment_value(lead, segment) if segment else "(all)",
                              {"start_deals": 0, "start": 0.0, **{k: v for kind in KINDS for k, v in ((f"n_{kind}", 0), (kind, 0.0))},
                               "end_deals": 0, "end": 0.0})
        if s:
            g["start_deals"] += 1
            g["start"] += _worth(oracle, s, "after", end)
        for m in in_period:
            was, now = _counted(m, "before", win), _counted(m, "after", win)
            if not was and now:
                kind = "pulled_in" if m["was_in"] else "created"
                g[f"n_{kind}"] += 1
                g[kind] += _worth(oracle, m, "after", end)
            if was:
                diff = _worth(oracle, m, "after", end) - _worth(oracle, m, "before", end)
                if diff != 0:
                    kind = "increased" if diff > 0 else "decreased"
                    g[f"n_{kind}"] += 1
                    g[kind] += abs(diff)
            if was and not now:
                kind = _way_out(oracle, m)
                g[f"n_{kind}"] += 1
                g[kind] += _worth(oracle, m, "after", end)
        if e:
            g["end_deals"] += 1
            g["end"] += _worth(oracle, e, "after", end)
    if segment is None and not groups:
        groups["(all)"] = {"start_deals": 0, "start": 0, **{k: 0 for kind in KINDS for k in (f"n_{kind}", kind)}, "end_deals": 0, "end": 0}
    extra = {"period_from": start, "period_to": end, "as_of": oracle.as_of, "closing_from": win[0] if win else None,
             "closing_to": win[1] if win else None, "currency": oracle.config.currency}
    return [{**({segment: value} if segment else {}), **groups[value], **extra} for value in sorted(groups)]


def _moments(oracle, weeks):
    return [min(oracle._utc_monday(w + timedelta(weeks=1)), oracle.as_of + US) for w in weeks]


def _weekly(oracle, weeks, closing, segment, filters):
    """Per (week, segment value): the counted deals' (stage, category, worth) at the week's end and the
    worth of the deals won in the week."""
    moments = _moments(oracle, weeks)
    for moment in moments:
        check_rates(oracle, moment)
    win = window(oracle, closing, moments[-1]) if moments else None
    open_deals, won = defaultdict(list), defaultdict(list)
    for lead in oracle._leads(filters):
        ms = moves(oracle, lead, oracle.as_of)
        value = oracle._segment_value(lead, segment) if segment else "(all)"
        for week, moment in zip(weeks, moments):
            h = _held(ms, moment)
            if h and _counted(h, "after", win):
                open_deals[(week, value)].append((h["stage"], _category_of(oracle, h), _worth(oracle, h, "after", moment)))
            for m in ms:
                if oracle._utc_monday(week) <= m["at"] < moment and _counted(m, "before", win) and m["stage"] == oracle.stages[-1]:
                    won[(week, value)].append(_worth(oracle, m, "after", moment))
    return open_deals, won, win


def pipeline_snapshot(oracle: Oracle, weeks, *, closing=None, segment=None, filters=None) -> list[dict]:
    open_deals, _, win = _weekly(oracle, weeks, closing, segment, filters)
    cells: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for (week, value), deals in open_deals.items():
        for stage, _, worth in deals:
            cell = cells[(week, oracle.stages.index(stage), value)]
            cell[0] += 1
            cell[1] += worth
    rows = []
    for (week, order, value), (deals, total) in sorted(cells.items()):
        stage = oracle.stages[order]
        share = oracle.config.stage_probability.get(stage)
        rows.append({"week": week, "stage": stage, **({segment: value} if segment else {}), "deals": deals, "value": total, "probability": share,
                     "weighted_value": total * (share or 0.0), "closing_from": win[0] if win else None, "closing_to": win[1] if win else None,
                     "currency": oracle.config.currency})
    return rows


def forecast(oracle: Oracle, weeks, *, closing=None, segment=None, filters=None) -> list[dict]:
    open_deals, won, win = _weekly(oracle, weeks, closing, segment, filters)
    values = sorted({v for (_, v) in list(open_deals) + list(won)}) if segment else ["(all)"]
    rows = []
    for week in weeks:
        for value in values:
            for category in CATEGORIES:
                if category == "closed":
                    worths = won.get((week, value), [])
                else:
                    worths = [w for _, c, w in open_deals.get((week, value), []) if c == category]
                rows.append({"week": week, **({segment: value} if segment else {}), "category": category, "deals": len(worths),
                             "value": sum(worths, 0.0), "closing_from": win[0] if win else None, "closing_to": win[1] if win else None,
                             "currency": oracle.config.currency})
    return rows


def forecast_moves(oracle: Oracle, start, end, *, closing=None, segment=None, filters=None) -> list[dict]:
    check_rates(oracle, end)
    win = window(oracle, closing, end)
    cells: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0])
    names = {"won": "closed", "lost": "lost", "pushed_out": "pushed out", "exited": "exited"}
    for lead in oracle._leads(filters):
        ms = [m for m in moves(oracle, lead, oracle.as_of) if m["at"] < end]
        s, e = _held(ms, start), _held(ms, end)
        s = s if s and _counted(s, "after", win) else None
        e = e if e and _counted(e, "after", win) else None
        outs = [m for m in ms if m["at"] >= start and _counted(m, "before", win) and not _counted(m, "after", win)]
        if e:
            to, to_value = _category_of(oracle, e), _worth(oracle, e, "after", end)
        elif outs:
            to, to_value = names[_way_out(oracle, outs[-1])], _worth(oracle, outs[-1], "after", end)
        else:
            continue
        source = _category_of(oracle, s) if s else "(new)"
        if source == to:
            continue
        cell = cells[(oracle._segment_value(lead, segment) if segment else "(all)", source, to)]
        cell[0] += 1
        cell[1] += _worth(oracle, s, "after", end) if s else 0.0
        cell[2] += to_value
    extra = {"period_from": start, "period_to": end, "as_of": oracle.as_of, "closing_from": win[0] if win else None,
             "closing_to": win[1] if win else None, "currency": oracle.config.currency}
    return [{**({segment: k[0]} if segment else {}), "from_category": k[1], "to_category": k[2], "deals": v[0], "from_value": v[1], "to_value": v[2], **extra}
            for k, v in sorted(cells.items())]


def deal_value(oracle: Oracle, start, end, *, closing=None, segment=None, filters=None) -> list[dict]:
    check_rates(oracle, end)
    win = window(oracle, closing, end)
    groups: dict[str, dict] = {}
    for lead in oracle._leads(filters):
        entered = [m["at"] for m in moves(oracle, lead, datetime.max) if m["is_in"]]
        for m in moves(oracle, lead, oracle.as_of):
            if not (start <= m["at"] < end and _counted(m, "before", win) and not _counted(m, "after", win)):
                continue
            won = m["stage"] == oracle.stages[-1]
            if not (won or m["stage"] in oracle.config.lost):
                continue
            g = groups.setdefault(oracle._segment_value(lead, segment) if segment else "(all)", {"won": [], "lost": [], "cycles": []})
            g["won" if won else "lost"].append(_worth(oracle, m, "after", end))
            if won:
                g["cycles"].append((m["at"] - entered[0]).total_seconds() / 86400)
    if segment is None and not groups:
        groups["(all)"] = {"won": [], "lost": [], "cycles": []}
    rows = []
    for value in sorted(groups):
        g = groups[value]
        won, lost = sum(g["won"], 0.0), sum(g["lost"], 0.0)
        n = len(g["won"]) + len(g["lost"])
        rows.append({**({segment: value} if segment else {}), "won_deals": len(g["won"]), "won_value": won, "lost_deals": len(g["lost"]),
                     "lost_value": lost, "median_cycle_days": statistics.median(g["cycles"]) if g["cycles"] else None,
                     "win_rate": len(g["won"]) / n if n else None, "value_win_rate": won / (won + lost) if won + lost else None,
                     "avg_won_deal": won / len(g["won"]) if g["won"] else None, "period_from": start, "period_to": end, "as_of": oracle.as_of,
                     "closing_from": win[0] if win else None, "closing_to": win[1] if win else None, "currency": oracle.config.currency})
    return rows


def slips(oracle: Oracle, lead_id: str) -> dict:
    """close_pushes and days_slipped of a lead as loaded (fct_leads): over its events in the pipeline or
    leaving it, how often the close date moved later, and the days from its first close date to its
    latest; both None when it was never in the pipeline, days None without a close date."""
    kept = [m for m in moves(oracle, lead_id, datetime.max) if m["was_in"] or m["is_in"]]
    if not kept:
        return {"close_pushes": None, "days_slipped": None}
    pushes = sum(1 for m in kept if m["before"]["close"] and m["after"]["close"] and m["after"]["close"] > m["before"]["close"])
    closes = [m["after"]["close"] for m in kept if m["after"]["close"]]
    return {"close_pushes": pushes, "days_slipped": (kept[-1]["after"]["close"] - closes[0]).days if closes else None}
