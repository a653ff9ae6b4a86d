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

from funnelboard.core.days import parse_day
from funnelboard.core.errors import UserError
from funnelboard.dashboard import state
from funnelboard.dashboard.runtime import URL, current_scope, gateway
from funnelboard.warehouse.metrics import MetricRequest
from funnelboard.warehouse.metrics.base import scoped

BAR = "filter-bar"
PROBLEMS = "filter-problems"
DATE, CHOICE, NAV, RESET = "fb-date", "fb-choice", "fb-nav", "fb-reset"
PARAM = "fb-param"  # a page's own control (segment column, stage pair): written to the URL like the bar's
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
            f"select {name} as v, count(*) as n from fct_leads where {name} is not null group by 1 order by 2 desc, 1 limit {MAX_VALUES}",
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
    facts = g.facts()
    first, last = facts["first_event"], facts["last_event"]
    dates = {"from": view.start, "to": view.end, "as_of": view.as_of}
    controls = [
        _label(
            text,
            dcc.DatePickerSingle(
                id={"type": DATE, "key": key},
                date=dates[key],
                min_date_allowed=first.date() if first else None,
                max_date_allowed=last.date() if last else None,
                initial_visible_month=dates[key] or (last.date() if last else None),
                display_format="YYYY-MM-DD",
                placeholder="latest" if key == "as_of" else ("start" if key == "from" else "end"),
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


def _bar_search(current: str | None, dates: dict[str, str | None], choices: dict[str, str | None]) -> str:
    """The query string with the bar's keys replaced by the controls' values, other keys kept in place."""
    return state.replace_keys(current, {**{k: v[:10] if v else None for k, v in dates.items()}, **choices})


def _same(search_a: str | None, search_b: str | None) -> bool:
    return sorted(parse_qsl((search_a or "").lstrip("?"))) == sorted(parse_qsl((search_b or "").lstrip("?")))


@callback(
    Output(BAR, "children"),
    Input(URL, "search"),
    State({"type": DATE, "key": ALL}, "date"),
    State({"type": CHOICE, "key": ALL}, "value"),
)
def show_bar(search, dates, choices):
    """Rebuild the bar when the URL says something its controls do not (first load, back, a link)."""
    ids_dates = [i["id"]["key"] for i in ctx.states_list[0]]
    ids_choices = [i["id"]["key"] for i in ctx.states_list[1]]
    if ids_dates:
        shown = _bar_search(search, dict(zip(ids_dates, dates)), dict(zip(ids_choices, choices)))
        if _same(shown, search):
            return dash.no_update
    try:
        return build_bar(search)
    except UserError:
        return []  # no warehouse yet: the page says how to load one


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
    State(URL, "pathname"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def write_url(dates, choices, params, pathname, search):
    """A control changed: write the address (the pages redraw from its query string).

    It writes `href`, not `search`: Dash holds back a callback whose input another pending
    callback writes, and drops it when that one answers no_update, so a page reading `search`
    would stay blank whenever its controls appear. Nothing reads `href`.
    """
    ids_dates = [i["id"]["key"] for i in ctx.inputs_list[0]]
    ids_choices = [i["id"]["key"] for i in ctx.inputs_list[1]] + [i["id"]["key"] for i in ctx.inputs_list[2]]
    # an empty date control over a date the address could not read leaves that value where it is, so
    # the line under the bar keeps naming it (a chosen date, or Reset, replaces it)
    written = dict(parse_qsl((search or "").lstrip("?")))
    dates = {k: v for k, v in zip(ids_dates, dates) if v or not written.get(k) or _reads_as_day(written[k])}
    new = _bar_search(search, dates, dict(zip(ids_choices, choices + params)))
    return dash.no_update if _same(new, search) else (pathname or "/") + new


@callback(Output({"type": NAV, "path": ALL}, "href"), Input(URL, "search"), State({"type": NAV, "path": ALL}, "id"))
def carry_filters(search, ids):
    """Navigation links keep the period, as-of and segment filters, and drop page-specific keys."""
    try:
        segments = gateway().config().segments
    except UserError:
        segments = ()
    query = state.keep_global(search, segments)
    return [i["path"] + query for i in ids]

