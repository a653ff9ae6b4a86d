"""The weekly review's notes: add a dated note from the page, see the notes of the weeks shown, remove one.

Storage and its rules are in funnelboard/core/annotations.py (the file beside the warehouse, written
whole under a lock); here are the control and its two callbacks. `change` adds or removes and says
what it did in the status line; `show` lists the notes and sets the form for the address. A note
list holds the remove buttons, so the callback that draws it does not also listen to them (it would
run again for every list it draws). Each change bumps CHANGED, which the trend listens to.

With accounts, a scoped user's note always carries their scope (annotations.filters_for_new), so it
never shows on the views of other leads; such a user removes only notes within their scope.
"""

from __future__ import annotations

from datetime import timedelta

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from funnelboard.core import annotations
from funnelboard.core.errors import UserError
from funnelboard.dashboard import state
from funnelboard.dashboard.runtime import URL, current_scope, gateway
from funnelboard.dashboard.views import public, view_request
from funnelboard.warehouse.metrics import run_metric

PANEL, LIST, DAY, TEXT, ONLY, ADD, MESSAGE, SCOPE_LINE, CHANGED = (
    "ne-panel", "ne-list", "ne-day", "ne-text", "ne-only", "ne-add", "ne-message", "ne-scope", "ne-changed")
REMOVE = "ne-remove"  # a remove button's id: {"type": REMOVE, "note": id}
ONLY_VIEW = "only"


def control() -> html.Div:
    """The disclosure under the trend, and the counter of changes the trend listens to."""
    return html.Div(
        [
            html.Details(
                [
                    html.Summary("Notes on this chart", className="ne-summary"),
                    html.Div(
                        [
                            html.Div(id=LIST, className="ne-list"),
                            html.Div(
                                [
                                    html.Div([html.Label("Day", htmlFor=DAY, className="ne-label"),
                                              dcc.DatePickerSingle(id=DAY, display_format="YYYY-MM-DD", first_day_of_week=1,
                                                                   clearable=False, placeholder="YYYY-MM-DD")],
                                             className="ne-field ne-day"),
                                    html.Div([html.Label("Note", htmlFor=TEXT, className="ne-label"),
                                              dcc.Input(id=TEXT, type="text", maxLength=annotations.MAX_TEXT,
                                                        placeholder="e.g. launched the healthcare campaign")],
                                             className="ne-field ne-text"),
                                    html.Button("Add note", id=ADD, n_clicks=0, className="ne-add"),
                                ],
                                className="ne-form",
                            ),
                            dcc.Checklist(id=ONLY, options=[], value=[], className="ne-only"),
                            html.Div(id=SCOPE_LINE, className="ne-scope"),
                            html.Div(id=MESSAGE, className="ne-message", role="status"),
                        ],
                        className="ne-body",
                    ),
                ],
                id=PANEL,
                className="note-editor",
            ),
            dcc.Store(id=CHANGED, data=0),
        ]
    )


def _sentence(exc: Exception) -> str:
    text = public(exc) if isinstance(exc, UserError) else str(exc)
    return text[:1].upper() + text[1:]


def _filters_text(filters) -> str:
    return ", ".join(f"{column} = {value}" for column, value in filters)


@callback(
    Output(LIST, "children"),
    Output(ONLY, "options"),
    Output(SCOPE_LINE, "children"),
    Output(DAY, "date"),
    Output(PANEL, "hidden"),
    Input(URL, "search"),
    Input(CHANGED, "data"),
)
def show(search: str | None, _changed: int | None = None):
    """The notes of the weeks the trend draws, each with a remove button; the form's day (the review
    week's Monday) and its scope choice for this address. Hidden where no notes file can be kept."""
    g = gateway()
    if getattr(g, "db", None) is None:
        return None, [], None, None, True
    try:
        req, view = view_request(g, search)
        rows = run_metric(g, "weekly_kpis", req)
        (week,) = run_metric(g, "review_week", req)
    except UserError:  # no warehouse, a bad filter: the cards say what is wrong
        return None, [], None, None, True
    day = week["week"].isoformat() if ctx.triggered_id != CHANGED else dash.no_update
    scope = current_scope()
    options = [{"label": f"only for the current filters ({_filters_text(view.filters)})", "value": ONLY_VIEW}] if view.filters else []
    scope_line = None
    if scope:
        try:
            kept = annotations.filters_for_new(view.filters, scope, only_view=False)
            scope_line = f"Your notes are kept for {_filters_text(kept)} (your account's scope)."
        except UserError as exc:
            scope_line = _sentence(exc)
    weeks = sorted({r["week"] for r in rows})
    if not weeks:
        return html.P("No weeks to note here.", className="ne-empty"), options, scope_line, day, False
    first, last = weeks[0], weeks[-1] + timedelta(days=6)
    try:
        notes = annotations.for_view(annotations.read(annotations.notes_path(g.db)), view.filters, first, last, scope)
    except UserError as exc:
        return html.P(_sentence(exc), className="ne-empty"), options, scope_line, day, False
    if not notes:
        return html.P(f"No notes between {first:%d %b} and {last:%d %b %Y} for this view.", className="ne-empty"), options, scope_line, day, False
    items = [html.Li([html.Span(note.label(), className="ne-note"),
                      html.Button("Remove", id={"type": REMOVE, "note": note.id}, n_clicks=0, className="ne-remove",
                                  title=f"Remove the note {note.label()}", **{"aria-label": f"Remove the note {note.label()}"})
                      if annotations.removable(note, scope) else None])
             for note in notes]
    return html.Ul(items), options, scope_line, day, False


@callback(
    Output(MESSAGE, "children"),
    Output(CHANGED, "data"),
    Output(TEXT, "value"),
    Input(ADD, "n_clicks"),
    Input({"type": REMOVE, "note": ALL}, "n_clicks"),
    Input(URL, "search"),
    State(DAY, "date"),
    State(TEXT, "value"),
    State(ONLY, "value"),
    State(CHANGED, "data"),
    prevent_initial_call=True,
)
def change(_add: int | None, _removes: list | None, search: str | None, day: str | None, text: str | None,
           only: list | None, changed: int | None):
    """Add the note of the form, or remove the note whose button was pressed; a mistake is one sentence."""
    trigger = ctx.triggered_id
    if trigger == URL:  # another address: the last message was about the one before
        return "", dash.no_update, dash.no_update
    removing = isinstance(trigger, dict) and trigger.get("type") == REMOVE
    if not removing and trigger != ADD or not (ctx.triggered and ctx.triggered[0]["value"]):
        raise dash.exceptions.PreventUpdate  # a list just drawn: its buttons are new, none was pressed
    g = gateway()
    if getattr(g, "db", None) is None:
        return "Notes cannot be kept here: this dashboard reads no warehouse file.", dash.no_update, dash.no_update
    path = annotations.notes_path(g.db)
    try:
        if removing:
            if not annotations.remove(path, int(trigger["note"]), current_scope()):
                raise UserError(f"there is no note {trigger['note']} that you may remove; it may be gone already.")
            return f"Removed note {trigger['note']}.", (changed or 0) + 1, dash.no_update
        if not day:
            raise UserError("pick the note's day first.")
        config = g.config()
        view = state.parse(search, config)
        filters = annotations.filters_for_new(view.filters, current_scope(), only_view=ONLY_VIEW in (only or []))
        note = annotations.add(path, annotations.check_day(day), text, filters, config.segments)
    except UserError as exc:
        return _sentence(exc), dash.no_update, dash.no_update
    except OSError as exc:  # a read-only folder, a full disk: the file is as it was
        return (f"The note could not be saved: the warehouse's folder cannot be written ({exc.__class__.__name__}).",
                dash.no_update, dash.no_update)
    return f"Added: {note.label()}.", (changed or 0) + 1, ""
