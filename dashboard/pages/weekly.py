"""Weekly review (home): the review week's KPI cards against last week and the 4-week mean, each
earlier week seen at the same point; the key rate's trend; stalled leads; the top movers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.core.errors import UserError
from funnelboard.dashboard import figures, note_editor
from funnelboard.dashboard.a11y import chart
from funnelboard.dashboard.drill import leads_href, week_span, weekly_point
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.figures.weekly import changes_table
from funnelboard.dashboard.notes import empty_for, review_notes, week_notes
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.state import keep_global, replace_keys
from funnelboard.dashboard.theme import fmt_count, fmt_pct, fmt_signed_count, stage_label
from funnelboard.dashboard.views import empty_state, guarded, view_request
from funnelboard.warehouse.metrics import run_metric
from funnelboard.warehouse.metrics.base import Context, local_time
from funnelboard.warehouse.metrics.stalled import SUMMARY_COUNTS, stalled_by_stage

dash.register_page(__name__, path="/", name="Weekly review", order=0, title="funnelboard · weekly review")

CARDS = "weekly-cards"
WEEK = "weekly-week"
MOVERS = "weekly-movers"
TOP_MOVERS = 8
TREND = "weekly-trend"
STALLED = "weekly-stalled"
RESPONSE = "weekly-response"
CRITERIA = "weekly-criteria"
CHECK_NAMES = {"too_broad": "Criteria too broad", "too_loose": "Criteria too loose", "checklist_gap": "Checklist gap",
               "targeting": "Targeting"}
STATUS_WORDS = {"fires": "fires", "ok": "ok", "too_few": "too few to judge", "not_applicable": "does not apply"}
CHANGES = "weekly-changes"


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Weekly review", className="page-title"),
            html.P(
                "The review week against last week and the mean of the 4 weeks before, each seen at the same point of its week.",
                className="page-subtitle",
            ),
            html.Div(id=WEEK, className="week-line"),
            dcc.Loading(html.Div(id=CARDS, className="cards")),
            html.Div(id=STALLED, className="notice"),
            html.Div(id=RESPONSE, className="notice"),
            html.Div(id=CHANGES, className="panel changes"),
            html.Div(id=MOVERS, className="panel movers"),
            html.Div(id=CRITERIA, className="panel criteria"),
            html.Div([chart(TREND), note_editor.control()], className="panel"),
        ]
    )


@callback(Output(MOVERS, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_movers(search: str | None):
    """The segment values whose count at the key rate's second stage changed most against last week,
    each a link to those leads."""
    g = gateway()
    req, _view = view_request(g, search)
    config = g.config()
    key = config.review_rate
    target, source = stage_label(key.to_stage), stage_label(key.from_stage)
    rows = [r for r in run_metric(g, "movers", req) if r["delta_to"]][:TOP_MOVERS]
    title = html.H2(f"Top movers: reached {target} this week against last week", className="panel-title")
    if not rows:
        return [title, html.P(f"No segment value's count of leads reaching {target} changed against last week.", className="muted")]
    following = config.stages[min(config.stages.index(key.to_stage) + 1, len(config.stages) - 1)]
    items = []
    for r in rows:
        changes = {**week_span(r["week"].isoformat()), "from_stage": key.to_stage, "to_stage": following, "which": None,
                   r["segment"]: r["value"]}
        tone = "tone-good" if r["delta_to"] > 0 else "tone-bad"
        items.append(html.Li([
            html.Span(r["segment"].replace("_", " "), className="mover-col"),
            dcc.Link(r["value"], href=leads_href(search, changes, config), className="mover-value",
                     title=f"{r['value']}: the {r['to_this_week']} leads that reached {target} this week"),
            html.Span(fmt_signed_count(r["delta_to"]), className=f"mover-delta {tone}"),
            html.Span(f"{r['to_this_week']:,} reached {target} vs {r['to_last_week']:,} · "
                      f"{source} {r['from_this_week']:,} vs {r['from_last_week']:,}", className="mover-detail"),
        ]))
    return [title, html.Ul(items, className="mover-list")]


@callback(Output(CARDS, "children"), Output(TREND, "figure"), Output(WEEK, "children"), Input(URL, "search"),
          Input(note_editor.CHANGED, "data"))
@guarded(outputs=3)
def update(search: str | None, _notes_changed: int | None = None):
    """The cards, the trend (redrawn when a note is added or removed below it) and the week's line."""
    g = gateway()
    req, view = view_request(g, search)
    config = g.config()
    names = figures.kpi_names(config)
    key = config.review_rate
    rows = run_metric(g, "weekly_kpis", req)
    (week,) = run_metric(g, "review_week", req)
    notes = review_notes(g, req, week)
    if any(r["kpi"] == "immature" and r["value"] for r in rows):
        notes += [" ", _cohorts_switch(search, view.cohorts != "all")]
    # the trend: the key rate's two stages (new leads when it starts at the first stage) and the rate
    first = "new_leads" if key.from_stage == config.stages[0] else f"reached_{key.from_stage}"
    trend_kpis = (first, f"reached_{key.to_stage}", "key_rate")
    mature_only = view.cohorts != "all"
    empty = empty_for(g, view)
    trend = figures.weekly_trend_figure(rows, trend_kpis, names=names, mature_only=mature_only, title=f"{key.name} and its stages, week by week", empty=empty)
    if rows:  # the notes of the weeks drawn, for these filters
        weeks = sorted({r["week"] for r in rows})
        figures.add_notes(trend, week_notes(g, view.filters, weeks[0], weeks[-1] + timedelta(days=6)), rows=len(trend_kpis))
    if not rows or not any(r["value"] for r in rows if r["week"] == week["week"]):
        return empty_state(empty_for(g, view, week=week["week"])), trend, notes
    values = {r["kpi"]: r["value"] for r in rows if r["week"] == week["week"]}
    # the count each rate is of: the week's cohort of the key rate's first stage, the week's closes
    of = {"key_rate": values.get("new_leads" if key.from_stage == config.stages[0] else f"reached_{key.from_stage}"),
          "win_rate": (values.get(f"reached_{config.won_stage}") or 0) + (values.get("lost") or 0)}
    monday = week["week"]
    links = {card["kpi"]: card_links(card["kpi"], search, config, monday, view.window_days) for card in figures.kpi_card_values(rows, monday)}
    cards = [_card(card, key, of.get(card["kpi"]), config.min_sample, links.get(card["kpi"]))
             for card in figures.kpi_card_values(rows, monday, names=names)]
    if all(r["value"] is None for r in rows if r["kpi"] == "win_rate"):
        cards.append(_note_card("Win rate", "—", config.unnamed_losses() or "this data records no lost deal to weigh wins against"))
    return cards, trend, notes


def _cohorts_switch(search: str | None, mature_only: bool) -> dcc.Link:
    """The trend shows mature weeks of the key rate only, by default; this link shows all, or back."""
    if mature_only:
        return dcc.Link("Show the immature weeks in the trend too.", href="/" + replace_keys(search, {"cohorts": "all"}))
    return dcc.Link("Show mature weeks only.", href="/" + replace_keys(search, {"cohorts": None}))


def card_target(kpi: str, config, window_days: int | None = None) -> tuple[str, dict[str, str | None]] | None:
    """The list behind a KPI card's number, without its week: (/leads or /changes, the keys to set).

    A count of leads reaching a stage is that stage's cohort on /leads; the key rate's number is of
    its first stage's cohort (the converted ones are a tab of it); the median days to the key stage
    are over the leads reaching it; new leads, exits, losses and the win rate's closes are changes
    (docs/metrics.md, Changes)."""
    key = config.review_rate
    window = None if window_days is None else str(window_days)

    def cohort(stage: str) -> dict[str, str | None]:
        following = config.stages[min(config.stages.index(stage) + 1, len(config.stages) - 1)]
        return {"from_stage": stage, "to_stage": following, "which": None, "window": None}

    if kpi == "key_rate":
        return "/leads", {"from_stage": key.from_stage, "to_stage": key.to_stage, "which": None, "window": window}
    if kpi == "median_days_to_target":
        return "/leads", cohort(key.to_stage)
    stage = kpi.removeprefix("reached_")
    if kpi.startswith("reached_") and stage in config.stages:
        return "/leads", cohort(stage)
    change = {"new_leads": "new", "exits": "exited", "lost": "lost", "win_rate": "closed"}.get(kpi)
    return None if change is None else ("/changes", {"change": change, "stage": None, "outcome": None, "reason": None})


def card_links(kpi: str, search: str | None, config, monday, window_days: int | None = None) -> dict[str, str] | None:
    """The addresses of a card's leads in the review week and in the week before, or None."""
    target = card_target(kpi, config, window_days)
    if target is None:
        return None
    path, changes = target
    base = keep_global(search, config.segments)
    return {
        when: path + replace_keys(base, {**changes, **week_span((monday - timedelta(weeks=back)).isoformat())})
        for when, back in (("this", 0), ("last", 1))
    }


def _card(card: dict, key, of: int | None, min_sample: int, links: dict[str, str] | None = None) -> html.Div:
    tag = []
    if card["immature"]:
        tag = [html.Span("still converting", className="immature", title=card["immature_note"])]
    if of is not None:
        tag.append(html.Span(f" of {of:,}", className="card-of"))
        if of < min_sample:
            tag.append(html.Span("too few to judge", className="too-few", title=f"Fewer than {min_sample} ([funnel] min_sample)."))
    few = of is not None and of < min_sample
    tone = "neutral" if few else card["tone"]  # a change in a handful of leads is no news, good or bad
    label = [card["label"]]
    pair = f"{stage_label(key.from_stage)} → {stage_label(key.to_stage)}"
    if card["kpi"] == "key_rate" and pair not in card["label"]:  # a name made of the pair says it already
        label.append(html.Span(f" {pair}", className="card-sub"))
    return html.Div(
        [
            html.Div(label, className="card-label"),
            html.Div([dcc.Link(card["value_text"], href=links["this"], className="card-link",
                               title="The leads behind this number, this week") if links else card["value_text"], *tag],
                     className="card-value"),
            html.Div(
                [html.Span(card["delta_week_text"], className=f"tone-{tone}"), " vs last week · ", card["delta_4w_text"], " vs 4-wk mean"],
                className="card-delta",
            ),
            html.Div([dcc.Link("this week's leads", href=links["this"]), " · ", dcc.Link("last week's", href=links["last"])],
                     className="card-links") if links else None,
            html.Div(card["footnote"], className="card-foot") if card["footnote"] else None,
        ],
        className="card",
    )


def _note_card(label: str, value: str, note: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="card-label"), html.Div(value, className="card-value"), html.Div(note, className="card-delta")],
        className="card",
    )


@callback(Output(STALLED, "children"), Input(URL, "search"))
def update_stalled(search: str | None):
    """The stalled line under the cards: its own callback, so the cards never wait for it. With stage
    SLAs configured ([sla], [sla_days]) it adds the SLA breaches per stage, each a link to its leads
    (/stalled?over=sla&stage=...). A user error (no warehouse, a bad filter) leaves it empty: the
    cards above already say what is wrong."""
    try:
        g = gateway()
        config = g.config()
        req, _state = view_request(g, search)
        ctx = Context(g)
        rows = stalled_by_stage(ctx, req)
        as_of = local_time(ctx.resolve(req).as_of, ZoneInfo(config.timezone))
    except UserError:
        return ""
    total = {k: sum(r[k] for r in rows) for k in SUMMARY_COUNTS}
    kept = keep_global(search, config.segments)
    # "this week" would be the review week's, which on older data is not the 7 days before as_of
    line = [dcc.Link(
        f"{total['stalled']:,} leads stalled at {as_of:%a %d %b %Y} · {total['newly_stalled']:,} newly stalled in the 7 days "
        f"before · {total['recovered']:,} recovered",
        href="/stalled" + kept,
    )]
    per_stage = [r for r in rows if r["over"] == "sla" and r["stalled"]]
    if config.stage_slas:
        line.append(html.Span(" · Stage-SLA breaches: " + ("none" if not per_stage else ""), className="sla-breaches"))
        for i, r in enumerate(per_stage):
            new = f" (+{r['newly_stalled']:,} new)" if r["newly_stalled"] else ""
            line += [" · " if i else "", dcc.Link(f"{stage_label(r['stage'])} {r['stalled']:,}{new}",
                                               href="/stalled" + replace_keys(kept, {"over": "sla", "stage": r["stage"]}))]
    return line


@callback(Output(RESPONSE, "children"), Input(URL, "search"))
def update_response(search: str | None):
    """Speed to lead in the review week against the week before: leads in, SLA breaches, the p50 wait,
    a link to the page for the week. Empty when the data has no first response ([attributes]
    first_response) or on a user error (the cards say what is wrong)."""
    try:
        g = gateway()
        config = g.config()
        if not config.first_response_column:
            return ""
        req, _view = view_request(g, search)
        (week,) = run_metric(g, "review_week", req)
        this, last = (view_request(g, replace_keys(keep_global(search, config.segments), week_span((week["week"] - timedelta(weeks=k)).isoformat())))[0]
                      for k in (0, 1))
        (now,) = run_metric(g, "speed_to_lead", replace(this, as_of=week["as_of"]))
        (before,) = run_metric(g, "speed_to_lead", replace(last, as_of=week["as_of"] - timedelta(weeks=1)))  # seen at the same point
    except UserError:
        return ""
    business = config.response.business
    p50 = now["p50_business_hours" if business else "p50_hours"]
    wait = "" if p50 is None else f" · p50 wait {p50:,.1f} {'business hours' if business else 'hours'}"
    href = "/speed-to-lead" + replace_keys(keep_global(search, config.segments), week_span(week["week"].isoformat()))
    return dcc.Link(
        f"Speed to lead this week: {now['leads']:,} leads came in · {now['breaches']:,} response-SLA breaches "
        f"({fmt_signed_count(now['breaches'] - before['breaches'])} vs last week){wait}",
        href=href, className="response-line",
    )


@callback(Output(CRITERIA, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_criteria(search: str | None):
    """Criteria health ([criteria_health]): each check's figure against its threshold, its status, its
    last 8 weeks and its one-sentence reading, the ones that fire first (`funnelboard query criteria_health`)."""
    g = gateway()
    req, _view = view_request(g, search)
    rows = run_metric(g, "criteria_health", req)
    order = {"fires": 0, "ok": 1, "too_few": 2, "not_applicable": 3}
    rows = sorted(rows, key=lambda r: order.get(r["status"], 9))
    fired = sum(r["status"] == "fires" for r in rows)
    ran = sum(r["status"] != "not_applicable" for r in rows)
    if not ran:  # a close-rate funnel (Olist): nothing was judged, which "none fires" would hide
        title = f"Criteria health: none of {len(rows)} checks applies to this funnel until [criteria_health] names its stages"
    else:
        title = f"Criteria health: {fired} of {ran} checks fire" if fired else f"Criteria health: none of {ran} checks fires"
        if ran < len(rows):
            title += f" ({len(rows) - ran} do not apply)"
    head = html.H2(title, className="panel-title")
    head_row = html.Tr([html.Th(h, scope="col") for h in ("Check", "Figure", "Threshold", "n", "Status", "Last 8 weeks", "Reading")])
    body = []
    for r in rows:
        name = CHECK_NAMES.get(r["check"], r["check"]) + (f" · {r['subject']}" if r.get("subject") else "")
        trend = [r.get(f"trend_w{k}") for k in range(1, 9)]
        shown = [fmt_pct(v) for v in trend if v is not None]
        body.append(html.Tr([
            html.Td(name),
            html.Td(fmt_pct(r["figure"]), className="num"),
            html.Td(f"{r['fires_when']} {fmt_pct(r['threshold'])}" if r["threshold"] is not None else "—"),
            html.Td(fmt_count(r["n"]), className="num"),
            html.Td(STATUS_WORDS.get(r["status"], r["status"]), className=f"status-{r['status']}"),
            html.Td(f"{shown[0]} → {shown[-1]}" if len(shown) > 1 else (shown[0] if shown else "—"),
                    title=" · ".join(shown) or None),
            html.Td(r["reading"], className="reading"),
        ]))
    table = html.Table([html.Thead(head_row), html.Tbody(body)], className="changes-table criteria-table")
    return [head, html.Div(table, className="changes-scroll")]


register_drill(TREND, weekly_point)


@callback(Output(CHANGES, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_changes(search: str | None):
    """Changes this week: per stage the leads that entered, advanced, went back, exited, newly stalled
    and recovered in the review week, exits by reason under it, each count a link to its list. Its own
    callback, so the cards never wait for it."""
    g = gateway()
    req, _view = view_request(g, search)
    config = g.config()
    (week,) = run_metric(g, "review_week", req)
    week_search = replace_keys(keep_global(search, config.segments), week_span(week["week"].isoformat()))
    week_req, _week_view = view_request(g, week_search)
    rows = run_metric(g, "changes", week_req)
    exits = run_metric(g, "change_exits", week_req)
    return changes_table(rows, exits, lambda keys: "/changes" + replace_keys(week_search, keys),
                                 partial=week["partial"])
