"""One lead: its attributes and every spell on a timeline, with durations and reasons."""

from __future__ import annotations

from urllib.parse import unquote

import dash
from dash import Input, Output, callback, html

from funnelboard.core.errors import UserError
from funnelboard.dashboard import figures, theme
from funnelboard.dashboard.a11y import chart
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import column, exports, grid_ids, grid_rows, table_block
from funnelboard.dashboard.views import guarded, view_request
from funnelboard.warehouse.metrics import Context, run_metric
from funnelboard.warehouse.metrics.leads import lead_attributes

dash.register_page(
    __name__, path_template="/lead/<lead_id>", path="/lead/example", name="Lead", title="funnelboard · lead", hidden=True
)

TABLE = "lead-history"
HEADER = "lead-header"
TIMELINE = "lead-timeline"
GRID, COUNT = grid_ids(TABLE)
PREFIX = "/lead/"

COLUMNS = [
    column("spell_no", "#", kind="int", width=60),
    column("stage", "Stage", width=120),
    column("entered_at", "Entered (UTC)", width=160),
    column("exited_at", "Left (UTC)", width=160),
    column("next_stage", "Moved to", width=120),
    column("days", "Days", kind="number", width=90),
    column("current", "Current", width=90),
    column("reason", "Reason", width=220),
]


def layout(lead_id: str | None = None, **_query) -> html.Div:
    return html.Div(
        [
            html.Div(id=HEADER),
            html.Div(chart(TIMELINE), className="panel"),
            table_block(TABLE, "Spells", COLUMNS, height=360),
        ]
    )


def lead_of(pathname: str | None) -> str:
    if not pathname or not pathname.startswith(PREFIX) or len(pathname) <= len(PREFIX):
        raise UserError("no lead in the address: open a lead from a list, e.g. /lead/L0000001.")
    return unquote(pathname[len(PREFIX):])


@exports(TABLE)
def history_rows(pathname, search):
    g = gateway()
    req, _view = view_request(g, search)
    lead_id = lead_of(pathname)
    return f"lead-{lead_id}", run_metric(g, "lead_history", req.__class__(**{**req.__dict__, "lead_id": lead_id}))


@callback(
    Output(HEADER, "children"),
    Output(TIMELINE, "figure"),
    Output(GRID, "rowData"),
    Output(COUNT, "children"),
    Input(URL, "pathname"),
    Input(URL, "search"),
)
@guarded(outputs=4)
def update(pathname: str | None, search: str | None):
    if not (pathname or "").startswith(PREFIX):
        return dash.no_update, dash.no_update, dash.no_update, dash.no_update  # another page is showing
    g = gateway()
    req, view = view_request(g, search)
    _name, rows = history_rows(pathname, search)
    lead_id = lead_of(pathname)
    ctx = Context(g)
    resolved = ctx.resolve(req)
    config = ctx.config
    attrs = lead_attributes(ctx, lead_id, resolved) or {}
    facts = [("Created", attrs.get("created_at"))] + [
        (col.replace("_", " ").capitalize(), attrs.get(col)) for col in config.segments
    ]
    if config.amount_column and config.amount_column not in config.segments:
        code = (attrs.get(config.deal_currency_column) if config.deal_currency_column else None) or config.currency  # the deal's own
        facts.append((config.amount_column.capitalize(), theme.fmt_money(attrs.get(config.amount_column), code)))
    if config.close_date_column and attrs.get(config.close_date_column):
        facts.append(("Close date", str(attrs.get(config.close_date_column))[:10]))
    if config.close_date_column and attrs.get("close_pushes") is not None:
        slipped = attrs.get("days_slipped")
        facts.append(("Close date pushes", f"{attrs['close_pushes']}" + (f" (slipped {slipped} days)" if slipped else "")))
    now = rows[-1]["stage"] if rows else None
    header = html.Div(
        [
            html.H1(["Lead ", html.Code(lead_id)], className="page-title"),
            html.P(
                f"Now in {theme.stage_label(now)} · {len(rows)} spells by {resolved.as_of:%Y-%m-%d %H:%M} UTC"
                if now else "No events by the as-of date.",
                className="page-subtitle",
            ),
            html.Dl(
                [html.Div([html.Dt(label), html.Dd("—" if value in (None, "") else str(value))]) for label, value in facts],
                className="facts",
            ),
        ]
    )
    figure = figures.lead_timeline_figure(rows, resolved.as_of, config.stages, config.outcomes, business_days=view.business_days)
    data, count = grid_rows(rows)
    return header, figure, data, count
