"""The filter bar: period, as-of date and one drop-down per segment column, all kept in the URL.

Two callbacks keep the bar and the address bar in step without a loop: a control change writes
the query string (a new history entry, so back and forward work); a query string the controls do
not already show (back, forward, a pasted link, a drill-down) rebuilds the bar from it. Keys the
bar does not own (segment, from_stage, which, ...) pass through untouched. The navigation links
carry the bar's part of the query, so a filter follows the user from page to page.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from sqlglot import exp

from funnelboard.core import periods
from funnelboard.core.days import parse_day
from funnelboard.core.errors import UserError
from funnelboard.dashboard import state
from funnelboard.dashboard.runtime import URL, current_scope, gateway
from funnelboard.warehouse.metrics import MetricRequest
from funnelboard.warehouse.metrics.base import scoped

BAR = "filter-bar"
PROBLEMS = "filter-problems"
DATE, CHOICE, NAV, RESET = "fb-date", "fb-choice", "fb-nav", "fb-reset"
RESOLVED = "fb-period-dates"
PARAM = "fb-param"  # a page's own control (segment column, stage pair): written to the URL like the bar's
PERIOD = "fb-period"  # the date preset (?period=), resolved against the data's as-of day
DATE_KEYS = (("from", "From"), ("to", "To"), ("as_of", "As of"))
MAX_VALUES = 300  # per drop-down, the most frequent first
VALUE_KEYS = 16  # published files x scopes whose drop-down values are kept
_values_cache: dict = {}
_values_lock = threading.Lock()


def segment_values(g) -> dict[str, list[str]]:
    """Each segment column's values, most leads first, of the leads the user may see (read once per
    published warehouse and scope)."""
    scope = current_scope()
    key = (str(g.db), g._stamp(), scope)
    cached = _values_cache.get(key)
    if cached is not None:
        return cached
    out = {}
    for col in g.config().segments:
        name = exp.column(col, quoted=True).sql("duckdb")  # col is from the config's allow-list
        sql, params = scoped(
            # a missing value is '(none)', as the metrics label it (and as a filter on it means)
            f"select coalesce(cast({name} as varchar), '(none)') as v, count(*) as n from fct_leads group by 1 order by 2 desc, 1 limit {MAX_VALUES}",
            MetricRequest(scope=scope),
        )
        out[col] = [str(v) for v, _ in g.query(sql, params).rows]
    with _values_lock:
        while len(_values_cache) >= VALUE_KEYS:
            _values_cache.pop(next(iter(_values_cache)))
        _values_cache[key] = out
    return out


def bar_placeholder() -> html.Div:
    """The filter bar and, under it, the line that says which values of the address were ignored and why."""
    return html.Div([html.Div(id=BAR, className="filter-bar"), html.Div(id=PROBLEMS, className="filter-problems", role="status")])


def nav_link(page: dict) -> dcc.Link:
    return dcc.Link(page["name"], href=page["relative_path"], id={"type": NAV, "path": page["relative_path"]}, className="nav-link")


def _label(text: str, control) -> html.Label:
    return html.Label([html.Span(text, className="filter-label"), control], className="filter-item")


def build_bar(search: str | None) -> list:
    """The controls, showing what the query string says."""
    g = gateway()
    config = g.config()
    view = state.parse(search, config)
    explicit = state.parse(state.replace_keys(search, {"period": None}), config)  # the dates typed, not the preset's
    facts = g.facts()
    first, last = facts["first_event"], facts["last_event"]
    dates = {"from": explicit.start, "to": explicit.end, "as_of": explicit.as_of}
    resolved = {"from": view.start, "to": view.end}
    as_of_day = view.as_of or periods.as_of_day(last, config.timezone)
    controls = [period_control(view, as_of_day)]
    controls += [
        _label(
            text,
            dcc.DatePickerSingle(
                id={"type": DATE, "key": key},
                date=dates[key],
                min_date_allowed=first.date() if first else None,
                max_date_allowed=last.date() if last else None,
                initial_visible_month=dates[key] or resolved.get(key) or (last.date() if last else None),
                display_format="YYYY-MM-DD",
                # a preset's date shows as the placeholder: the box stays empty, so the preset keeps following the data
                placeholder=_placeholder(key, resolved.get(key) if view.period else None),
                clearable=True,
                first_day_of_week=1,
            ),
        )
        for key, text in DATE_KEYS
    ]
    chosen = dict(view.filters)
    for col, values in segment_values(g).items():
        controls.append(
            _label(
                col.replace("_", " ").capitalize(),
                dcc.Dropdown(
                    id={"type": CHOICE, "key": col},
                    options=[{"label": v, "value": v} for v in values],
                    value=chosen.get(col),
                    placeholder="all",
                    clearable=True,
                    className="filter-dropdown",
                ),
            )
        )
    controls.append(html.A("Reset", href="?", id=RESET, className="filter-reset", title="Clear every filter"))
    return controls


def _placeholder(key: str, resolved) -> str:
    if resolved is not None:
        return resolved.isoformat()
    return "latest" if key == "as_of" else ("start" if key == "from" else "end")


def resolved_text(view: state.ViewState, as_of_day) -> str:
    """What the period stands for on this data: a preset's dates and the as-of day, or the typed dates."""
    if view.period:
        shown = f"{periods.span_text(view.start, view.end)} (as of {as_of_day:%Y-%m-%d})" if as_of_day else ""
    elif view.start or view.end:
        shown = f"{view.start or 'start'} – {view.end or 'end'}"
    else:
        shown = "all dates"
    return shown


def period_control(view: state.ViewState, as_of_day) -> html.Label:
    """The preset drop-down and, beside it, the dates it stands for on this data (or the typed ones)."""
    shown = resolved_text(view, as_of_day)
    return html.Label(
        [
            html.Span("Period", className="filter-label"),
            dcc.Dropdown(
                id={"type": PERIOD, "key": "period"},
                options=[{"label": text, "value": key} for key, text in periods.PRESETS.items()],
                value=view.period or ("custom" if view.start or view.end else None),
                placeholder="all dates",
                clearable=True,
                className="filter-dropdown",
            ),
            html.Span(shown, className="filter-resolved", id={"type": RESOLVED, "key": "period"}),
        ],
        className="filter-item filter-period",
    )


def _bar_search(current: str | None, dates: dict[str, str | None], choices: dict[str, str | None]) -> str:
    """The query string with the bar's keys replaced by the controls' values, other keys kept in place.
    A "custom" period is no preset: the dates stand alone."""
    if "period" in choices and choices["period"] == "custom":
        choices = {**choices, "period": None}
    return state.replace_keys(current, {**{k: v[:10] if v else None for k, v in dates.items()}, **choices})


def _same(search_a: str | None, search_b: str | None) -> bool:
    return sorted(parse_qsl((search_a or "").lstrip("?"))) == sorted(parse_qsl((search_b or "").lstrip("?")))


@callback(
    Output(BAR, "children"),
    Input(URL, "search"),
    State({"type": DATE, "key": ALL}, "date"),
    State({"type": CHOICE, "key": ALL}, "value"),
    State({"type": PERIOD, "key": ALL}, "value"),
)
def show_bar(search, dates, choices, period=()):
    """Rebuild the bar when the URL says something its controls do not (first load, back, a link)."""
    ids_dates = [i["id"]["key"] for i in ctx.states_list[0]]
    ids_choices = [i["id"]["key"] for i in ctx.states_list[1]] + [i["id"]["key"] for i in (ctx.states_list[2:] or [[]])[0]]
    if ids_dates:
        shown = _bar_search(search, dict(zip(ids_dates, dates)), dict(zip(ids_choices, list(choices) + list(period))))
        if _same(shown, search):
            return dash.no_update
    try:
        return build_bar(search)
    except UserError:
        return []  # no warehouse yet: the page says how to load one


@callback(Output({"type": RESOLVED, "key": ALL}, "children"), Input(URL, "search"), State({"type": RESOLVED, "key": ALL}, "id"))
def show_resolved(search, ids):
    """The preset's dates beside it, on every address change (the bar itself is not rebuilt for a
    preset its drop-down already shows)."""
    if not ids:
        return []
    try:
        g = gateway()
        config = g.config()
    except UserError:
        return ["" for _ in ids]
    view = state.parse(search, config)
    return [resolved_text(view, view.as_of or periods.as_of_day(g.facts()["last_event"], config.timezone)) for _ in ids]


@callback(Output(PROBLEMS, "children"), Input(URL, "search"))
def show_problems(search):
    """One line naming every value of the address that was ignored (a bad date, an unknown key), or nothing."""
    try:
        config = gateway().config()
    except UserError:
        return None  # no warehouse yet: the page says how to load one
    problems = state.parse(search, config).problems
    return state.problem_line(problems) if problems else None


def page_control(key: str, label: str, options: list[tuple[str, str]], value: str | None, *, clearable: bool = False, placeholder: str = "") -> html.Label:
    """A page's drop-down whose value lives in the URL under `key` (pages build it from layout(**query))."""
    return _label(
        label,
        dcc.Dropdown(
            id={"type": PARAM, "key": key},
            options=[{"label": text, "value": v} for v, text in options],
            value=value,
            clearable=clearable,
            placeholder=placeholder,
            className="filter-dropdown",
        ),
    )


def _reads_as_day(text: str) -> bool:
    try:
        parse_day(text, "date")
    except UserError:
        return False
    return True


@callback(
    Output(URL, "href", allow_duplicate=True),
    Input({"type": DATE, "key": ALL}, "date"),
    Input({"type": CHOICE, "key": ALL}, "value"),
    Input({"type": PARAM, "key": ALL}, "value"),
    Input({"type": PERIOD, "key": ALL}, "value"),
    State(URL, "pathname"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def write_url(dates, choices, params, period, pathname, search):
    """A control changed: write the address (the pages redraw from its query string).

    It writes `href`, not `search`: Dash holds back a callback whose input another pending
    callback writes, and drops it when that one answers no_update, so a page reading `search`
    would stay blank whenever its controls appear. Nothing reads `href`. Only the control that
    fired is written: a control mounted by a page (a drill-down opening /leads) fires with its
    value while the other controls may still show the page before.
    """
    trigger = ctx.triggered_id
    lists = {DATE: (0, dates), CHOICE: (1, choices), PARAM: (2, params), PERIOD: (3, period)}
    if not isinstance(trigger, dict) or trigger.get("type") not in lists:
        return dash.no_update
    index, values = lists[trigger["type"]]
    value = next((v for i, v in zip(ctx.inputs_list[index], values) if i["id"]["key"] == trigger["key"]), None)
    changes = _changes(search, trigger["type"], trigger["key"], value)
    if not changes:
        return dash.no_update
    new = state.replace_keys(search, changes)
    return dash.no_update if _same(new, search) else (pathname or "/") + new


def _changes(search: str | None, kind: str, key: str, value) -> dict[str, str | None]:
    """The keys one control's value changes in the address ({} when it already says that).

    A preset picked clears the typed from/to (the preset's dates apply); "custom" picked writes the
    preset's dates as typed ones to start from; a date typed under a preset turns it into custom
    dates. An empty date control over a date the address could not read leaves that value where it
    is, so the line under the bar keeps naming it (a chosen date, or Reset, replaces it)."""
    written = dict(parse_qsl((search or "").lstrip("?")))
    preset = written.get("period") if written.get("period") in periods.PRESETS and written.get("period") != "custom" else None

    def as_dates() -> dict[str, str | None]:
        view = state.parse(search, gateway().config())
        return {"period": None, **{k: (v.isoformat() if v else None) for k, v in (("from", view.start), ("to", view.end))}}

    if kind == PERIOD:
        if (value or None) == (written.get("period") or None) or (value == "custom" and not preset):
            return {}
        if value and value != "custom":
            return {"period": value, "from": None, "to": None}
        return as_dates() if value == "custom" else {"period": None}
    if kind == DATE:
        day = value[:10] if value else None
        if day == written.get(key) or (not day and written.get(key) and not _reads_as_day(written[key])):
            return {}
        if preset and key in ("from", "to"):
            return {**as_dates(), key: day}
        return {key: day}
    return {} if (value or None) == (written.get(key) or None) else {key: value}


@callback(Output({"type": NAV, "path": ALL}, "href"), Input(URL, "search"), State({"type": NAV, "path": ALL}, "id"))
def carry_filters(search, ids):
    """Navigation links keep the period, as-of and segment filters, and drop page-specific keys."""
    try:
        segments = gateway().config().segments
    except UserError:
        segments = ()
    query = state.keep_global(search, segments)
    return [i["path"] + query for i in ids]

